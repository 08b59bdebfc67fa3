"""Absolute refractoriness for any neuron model: `Refractory(model_cls)`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PyTree

from ._params import parameter
from ._wrap import (
    base_view,
    check_state_layout,
    check_wrappable,
    n_neurons_arg,
    per_neuron,
    select,
    wrapper_class,
)
from .base import Constant, NeuronModel


def Refractory(model_cls: type[NeuronModel]) -> type[NeuronModel]:
    r"""`model_cls` with an absolute refractory period `t_refrac` after each spike.

    Returns a subclass of `model_cls` (cached: `Refractory(LIF) is Refractory(LIF)`)
    that takes `model_cls`'s constructor arguments plus `t_refrac` (> 0, scalar or
    per neuron; required). For `t_refrac` after its spike a neuron holds the state
    its reset left it in (`dynamics` is zero), ignores input spikes and cannot
    spike. E.g. a bias-driven LIF then fires with period
    `t_refrac + tmem ln(ic / (ic - thresh))`.

    State: `(inner, r)`, `inner` the wrapped model's state, `r` `(n_neurons,)` a
    clock set to `t_refrac` by a spike and running down at rate 1 for ever
    (`r > 0`: refractory for `r` more; `r <= 0`: free for `-r`):

        d inner/dt = [r <= 0] f(inner),    dr/dt = -1,
        spike_condition = cond(inner) - max(r, 0).

    The condition stays negative while refractory (the held state is a reset
    state, `cond < 0`) and is continuous in time at the release, so the engine's
    event function `max_k cond_k` has no jump there.

    The release is a jump of the vector field at the state-dependent time
    `t_spike + t_refrac`. The clock is linear, so every solver stage sees the
    exact time to the release; the switch itself is hard (no smoothing, the
    state is held exactly). Accuracy:

    - adaptive steps (`diffrax.PIDController`): a step that straddles the
      release has a large error estimate and is rejected until it is within
      tolerance, so the release is resolved to about the controller's tolerance
      (a dozen extra, mostly rejected, steps per spike; measured ~1e-10 in
      float64 at rtol = atol = 1e-12, see tests/neuron_models/test_refractory.py);
    - constant steps: the step holding the release mixes held and free stages,
      a local error O(dt |f|) once per spike (with Euler, the release moves to
      the next step boundary); spike times after a refractory period are
      accurate to O(dt) whatever the solver's order.

    Gradients: through the held state and the clock as usual (inputs, weights,
    biases, earlier spike times). `jax.grad` cannot see a hard switch move, so
    the dependence on `t_refrac` (learnable if `trainable` names it) is put in
    by the time-shift identity: releasing `d` later is, for autonomous dynamics,
    the same as holding `inner - d f(inner)`. The reset adds
    `-(t_refrac - stop_gradient(t_refrac)) f(inner)`, zero in value, with the
    exact continuous-time derivative (also on constant steps, where the
    discretised forward map is locally flat in `t_refrac`). `f` is evaluated
    at `t = 0`: for dynamics that depend on `t` explicitly this gradient is
    approximate.

    Needs a state whose leaves have leading axis `n_neurons` (every built-in
    model but `MultiNeuronModel`; wrap its sub-models instead). Learnable arrays
    stay where `model_cls` has them (`net.neuron_model.weights`);
    `trainable` names other than `"t_refrac"` go to `model_cls` (if none remain,
    `model_cls` keeps its default).
    """
    check_wrappable("Refractory", model_cls)
    name = f"Refractory{model_cls.__name__}"
    return wrapper_class(Refractory, model_cls, name, lambda: _methods(model_cls))


def _methods(base: type[NeuronModel]) -> dict[str, Any]:
    """The namespace of `Refractory(base)`; `base`'s methods run on a base view."""

    def __init__(self, *args, t_refrac=None, **kwargs):
        if t_refrac is None:
            raise ValueError("`t_refrac` (the refractory period, > 0) is required.")
        n = n_neurons_arg(args, kwargs)
        train = False
        if "trainable" in kwargs:
            names = kwargs.pop("trainable")
            names = (names,) if isinstance(names, str) else tuple(names or ())
            train = "t_refrac" in names
            rest = tuple(name for name in names if name != "t_refrac")
            if rest or not train:
                kwargs["trainable"] = rest
        base.__init__(self, *args, **kwargs)
        self.t_refrac = parameter("t_refrac", t_refrac, n, self.dtype, trainable=train, positive=True)

    def init_state(self, n_neurons: int) -> tuple[PyTree[Array], Float[Array, " neurons"]]:
        inner = base_view(self, base).init_state(n_neurons)
        check_state_layout("Refractory", inner, n_neurons)
        return inner, jnp.zeros((n_neurons,), self.dtype)

    def dynamics(self, t, y, args: Any):
        inner, r = y
        f = base_view(self, base).dynamics(t, inner, args)
        f = select(r <= 0, f, jax.tree_util.tree_map(jnp.zeros_like, f))
        return f, -jnp.ones_like(r)

    def spike_condition(self, t, y) -> Float[Array, " neurons"]:
        inner, r = y
        return base_view(self, base).spike_condition(t, inner) - jnp.maximum(r, 0.0)

    def input_spike(
        self,
        y,
        from_idx: Int[Array, ""],
        to_idx: Int[Array, " targets"],
        valid_mask: Bool[Array, " targets"],
    ):
        inner, r = y
        free = valid_mask & (r[to_idx] <= 0)
        return base_view(self, base).input_spike(inner, from_idx, to_idx, free), r

    def reset_spiked(self, y, spike_mask: Bool[Array, " neurons"]):
        inner, r = y
        model = base_view(self, base)
        inner = model.reset_spiked(inner, spike_mask)
        if not isinstance(self.t_refrac, Constant):
            # Zero in value; d/dt_refrac = -f(held state): a later release is a time shift.
            shift = jnp.broadcast_to(self.t_refrac - jax.lax.stop_gradient(self.t_refrac), r.shape)
            f = model.dynamics(jnp.zeros((), self.dtype), inner, None)
            shifted = jax.tree_util.tree_map(lambda a, da: a - per_neuron(shift, a) * da, inner, f)
            inner = select(spike_mask, shifted, inner)
        r = jnp.where(spike_mask, jnp.broadcast_to(self.param(self.t_refrac), r.shape), r)
        return inner, r

    def observe(self, y) -> Float[Array, "neurons channels"]:
        return base_view(self, base).observe(y[0])

    return {
        "__annotations__": {"t_refrac": Float[Array, " neurons"] | Constant},
        "__doc__": f"`{base.__name__}` with a refractory period `t_refrac`; see `Refractory`.",
        "time_constants": tuple(getattr(base, "time_constants", ())) + ("t_refrac",),
        "__init__": __init__,
        "init_state": init_state,
        "dynamics": dynamics,
        "spike_condition": spike_condition,
        "input_spike": input_spike,
        "reset_spiked": reset_spiked,
        "observe": observe,
    }
