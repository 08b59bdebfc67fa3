"""Izhikevich (2003) simple-model neuron with a current-based synapse."""

from __future__ import annotations

from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._params import Parameters, SynapseInit, check_wmask
from .base import ADAPTIVE_NETWORK_DEFAULTS, Constant, CurrentSynapses


class Izhikevich(CurrentSynapses):
    r"""Izhikevich (2003) neuron, in the paper's units (mV, ms), current-based synapse.

        dv/dt      = 0.04 v^2 + 5 v + 140 - u + i + ic,
        du/dt      = a (b v - u),
        tau_syn di/dt = -i.

    State `(v, u, i)`, one `(neurons,)` array each: membrane (mV), recovery variable,
    synaptic current. Spike when `v` crosses `v_thresh` (the
    spike peak, 30 mV), i.e. `spike_condition = (v - v_thresh) / (v_thresh - c)`
    (dimensionless, so that root-finder tolerances mean the same as for the
    other models); reset `v -> c`, `u -> u + d`, `i` unchanged. A spike of
    presynaptic row `k` adds `weights[k, j]` to `i_j`.

    A trial starts at rest: `v` at the stable root of
    `0.04 v^2 + (5 - b) v + 140 = 0` (-70 mV for `b = 0.2`), `u = b v`, `i = 0`.
    Where that root does not exist (`|5 - b| < sqrt(22.4)`, no rest state) it
    starts at `v = c`, `u = b c`.

    Learnable: `weights` `(n_neurons + in_size, n_neurons)`, bias current `ic`
    `(n_neurons,)`; any of `a, b, c, d, v_thresh, tau_syn` named in `trainable`.
    `time_constants` (trained by `PIzhikevich`) are `tau_syn` and the recovery
    rate `a` (the inverse of the recovery time constant).

    | parameter | default | meaning |
    |---|---|---|
    | `a` | 0.02 | recovery rate, 1/ms (> 0) |
    | `b` | 0.2 | sensitivity of `u` to `v` |
    | `c` | -65.0 | reset potential, mV (< `v_thresh`) |
    | `d` | 4.0 | jump of `u` at a spike |
    | `v_thresh` | 30.0 | spike peak (cut-off), mV |
    | `tau_syn` | 5.0 | synaptic time constant, ms (> 0) |

    Weights and bias: the keywords of `SynapseInit` (`wlim` default 40, `drive` default 40).
    """

    time_constants: ClassVar[tuple[str, ...]] = ("tau_syn", "a")

    input_channel: ClassVar[int] = 2
    network_defaults: ClassVar[dict[str, Any]] = ADAPTIVE_NETWORK_DEFAULTS

    weights: Float[Array, "pre neurons"]
    ic: Float[Array, " neurons"]
    a: Array | Constant
    b: Array | Constant
    c: Array | Constant
    d: Array | Constant
    v_thresh: Array | Constant
    tau_syn: Array | Constant

    def __init__(
        self,
        key: PRNGKeyArray,
        n_neurons: int,
        in_size: int,
        wmask,
        a=0.02,
        b=0.2,
        c=-65.0,
        d=4.0,
        v_thresh=30.0,
        tau_syn=5.0,
        trainable=(),
        dtype=jnp.float32,
        **synapses,
    ):
        self.dtype = dtype
        n = n_neurons
        par = Parameters(n, dtype, trainable, ("b", "c", "d", "v_thresh") + self.time_constants)
        self.a = par("a", a)
        if not np.all(np.asarray(self.param(self.a)) > 0):
            raise ValueError(f"`a` (the recovery rate, 1/ms) must be positive; got {a!r}.")
        self.b = par("b", b)
        self.c = par("c", c)
        self.d = par("d", d)
        self.v_thresh = par("v_thresh", v_thresh)
        self.tau_syn = par("tau_syn", tau_syn, positive=True)
        if not np.all(np.asarray(self.param(self.c)) < np.asarray(self.param(self.v_thresh))):
            raise ValueError(f"`c` (reset, {c}) must be below `v_thresh` ({v_thresh}).")

        init = SynapseInit.of(type(self), 40.0, synapses, default_drive=40.0)
        self.weights, self.ic = init.draw(key, check_wmask(wmask, n, in_size), dtype)

    def init_state(self, n_neurons: int) -> tuple[Float[Array, " neurons"], ...]:
        b = jnp.broadcast_to(self.param(self.b), (n_neurons,)).astype(self.dtype)
        c = jnp.broadcast_to(self.param(self.c), (n_neurons,)).astype(self.dtype)
        # Rest: 0.04 v^2 + (5 - b) v + 140 = 0, the lower (stable) root.
        disc = (5.0 - b) ** 2 - 4 * 0.04 * 140.0
        has_rest = disc >= 0
        root = (-(5.0 - b) - jnp.sqrt(jnp.where(has_rest, disc, 1.0))) / (2 * 0.04)
        v0 = jnp.where(has_rest, root, c)
        return v0, b * v0, jnp.zeros_like(v0)

    def dynamics(self, t, y, args: Any):
        v, u, i = y
        dv = 0.04 * v**2 + 5.0 * v + 140.0 - u + i + self.ic
        du = self.param(self.a) * (self.param(self.b) * v - u)
        return dv, du, -i / self.param(self.tau_syn)

    def spike_condition(self, t, y) -> Float[Array, " neurons"]:
        # In units of the reset-to-peak distance: near the peak v rises at
        # ~300 mV/ms, so an unscaled condition (mV) would ask the root finder's
        # absolute tolerance for ~100x the precision the spike time can have.
        peak = self.param(self.v_thresh)
        return (y[0] - peak) / (peak - self.param(self.c))

    def reset_spiked(self, y, spike_mask: Bool[Array, " neurons"]):
        v, u, i = y
        return jnp.where(spike_mask, self.param(self.c), v), jnp.where(spike_mask, u + self.param(self.d), u), i

