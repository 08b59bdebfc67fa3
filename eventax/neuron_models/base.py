"""The `NeuronModel` contract that every neuron, built-in or user-written, fills."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PyTree

State = PyTree[Array]


class Constant:
    """A fixed (non-trainable) array, hidden from `jax.grad` and optimisers.

    A pytree node without leaves, hashable by value: `jax.grad` and optimisers
    never see it and `jit` caches stay valid.
    `NeuronModel.param` unwraps it; a trainable parameter is a plain array field.
    """

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = np.asarray(value)
        self.value.flags.writeable = False

    def __eq__(self, other):
        return (
            isinstance(other, Constant)
            and self.value.dtype == other.value.dtype
            and self.value.shape == other.value.shape
            and bool(np.all(self.value == other.value))
        )

    def __hash__(self):
        return hash((self.value.shape, str(self.value.dtype), self.value.tobytes()))

    def __repr__(self):
        return f"Constant({self.value!r})"


jax.tree_util.register_pytree_node(Constant, lambda c: ((), c), lambda c, _: c)


class NeuronModel(eqx.Module):
    """Abstract base class of a population of `n_neurons` neurons of one kind.

    A model describes one population; `EvNN` owns the connectivity and the event
    queue. Subclasses implement:

    - `init_state(n_neurons)`: the state at `t0`, any pytree whose leaves have a
      leading axis of size `n_neurons`.
    - `dynamics(t, y, args)`: `dy/dt`, same structure as `y`.
    - `spike_condition(t, y)`: shape `(n_neurons,)`; a neuron spikes when its
      entry crosses zero from below (or is `>= 0` right after an input spike).
    - `input_spike(y, from_idx, to_idx, valid_mask)`: the jump caused by a spike
      of presynaptic row `from_idx` (neurons first, then inputs) arriving at
      the neurons `to_idx`; entries with `valid_mask == False` must be unchanged.
    - `reset_spiked(y, spike_mask)`: the state after the masked neurons spiked.
      After a reset `spike_condition` must be negative for those neurons.

    `observe(y)` returns the observable channels, shape `(n_neurons, channels)`.
    The same methods drive both the event-driven and a fixed-step simulation.
    """

    dtype: Any = eqx.field(static=True, default=jnp.float32, kw_only=True)

    # `FFEvNN` keywords (`solver`, `solver_stepsize`, `stepsize_controller`, `engine`)
    # that a network of this model uses where the user gives none: settings the
    # work-precision study (experiments/work_precision.py) found to keep spike times
    # within 1e-4 at the best speed. Empty: the network's own.
    network_defaults: ClassVar[dict[str, Any]] = {}

    def __call__(self, t, y, args=None):
        return self.dynamics(t, y, args)

    def param(self, value) -> Array:
        """Unwrap a parameter: a `Constant` becomes a (gradient-free) array."""
        if isinstance(value, Constant):
            return jnp.asarray(value.value)
        return value

    @abc.abstractmethod
    def init_state(self, n_neurons: int) -> State:
        """State of all neurons at the start of a trial."""

    @abc.abstractmethod
    def dynamics(self, t: Float[Array, ""], y: State, args: Any) -> State:
        """Right-hand side of the ODE between events."""

    @abc.abstractmethod
    def spike_condition(self, t: Float[Array, ""], y: State) -> Float[Array, " neurons"]:
        """Per-neuron function whose upward zero crossing is a spike."""

    @abc.abstractmethod
    def input_spike(
        self,
        y: State,
        from_idx: Int[Array, ""],
        to_idx: Int[Array, " targets"],
        valid_mask: Bool[Array, " targets"],
    ) -> State:
        """State right after a spike from row `from_idx` reached `to_idx`."""

    @abc.abstractmethod
    def reset_spiked(self, y: State, spike_mask: Bool[Array, " neurons"]) -> State:
        """State right after the neurons in `spike_mask` spiked."""

    def input_spikes(
        self, y: State, counts: Float[Array, " pre"], wmask: Bool[Array, "pre neurons"]
    ) -> State:
        """State after `counts[k]` spikes of every presynaptic row `k` arrived at once.

        The fixed-step mode delivers a whole grid step's spikes with this. The
        default superposes single-spike jumps,

            y + sum_k counts[k] * (input_spike(y, k, all, wmask[k]) - y),

        exact whenever a spike's jump does not depend on the other spikes of the
        step (every current-based synapse). It costs `pre` calls of
        `input_spike` per step; models override it with a cheaper equivalent.
        """
        targets = jnp.arange(wmask.shape[1])

        def jump(k, mask):
            return jax.tree_util.tree_map(jnp.subtract, self.input_spike(y, k, targets, mask), y)

        jumps = jax.vmap(jump)(jnp.arange(wmask.shape[0]), wmask)
        return jax.tree_util.tree_map(
            lambda leaf, j: leaf + jnp.tensordot(counts.astype(j.dtype), j, axes=1), y, jumps
        )

    def observe(self, y: State) -> Float[Array, "neurons channels"]:
        """Observable channels (default: `state_matrix`, every floating-point number of
        each neuron; a state `(n_neurons,)` is one channel)."""
        return self.state_matrix(y)

    def subset(self, neurons: np.ndarray, n_neurons: int, n_pre: int) -> NeuronModel | None:
        """This model restricted to the population `neurons` (indices into
        `0..n_neurons-1`), or `None` if it cannot be.

        The layered engine simulates each layer with it. The default slices every
        array (and `Constant`) whose leading axis is the neuron axis, and the
        postsynaptic axis of every array shaped `(n_pre, n_neurons, ...)`
        (weights: presynaptic rows stay global); other leaves are kept. Override
        it for parameters laid out otherwise.
        """
        idx = np.asarray(neurons, int)

        def take(leaf):
            arr = leaf.value if isinstance(leaf, Constant) else leaf
            shape = getattr(arr, "shape", ())
            if len(shape) >= 2 and shape[:2] == (n_pre, n_neurons):
                arr = arr[:, idx]
            elif len(shape) >= 1 and shape[0] == n_neurons:
                arr = arr[idx]
            else:
                return leaf
            return Constant(arr) if isinstance(leaf, Constant) else arr

        return jax.tree_util.tree_map(take, self, is_leaf=lambda x: isinstance(x, Constant))

    def state_matrix(self, y: State) -> Float[Array, "neurons channels"]:
        """The per-neuron view of the state: row `j` holds every floating-point
        number of neuron `j` (leaves flattened after their neuron axis, in leaf
        order). The learning rules of `eventax.rules` take per-neuron Jacobians
        in this view; integer and boolean leaves are not part of it."""
        leaves = [x for x in jax.tree_util.tree_leaves(y) if jnp.issubdtype(x.dtype, jnp.inexact)]
        n = leaves[0].shape[0]
        if any(x.ndim == 0 or x.shape[0] != n for x in leaves):
            raise ValueError(
                f"{type(self).__name__}: `state_matrix` needs every state leaf to have the neuron "
                f"axis first; got shapes {[x.shape for x in leaves]}. Override `state_matrix` and "
                "`with_state_matrix` for this layout."
            )
        return jnp.concatenate([x.reshape(n, -1) for x in leaves], axis=1)

    def with_state_matrix(self, y: State, m: Float[Array, "neurons channels"]) -> State:
        """The state `y` with its floating-point entries replaced by `m` (the
        inverse of `state_matrix`; other leaves are kept)."""
        leaves, tree = jax.tree_util.tree_flatten(y)
        out, col = [], 0
        for x in leaves:
            if jnp.issubdtype(x.dtype, jnp.inexact):
                width = int(np.prod(x.shape[1:], dtype=int))
                x = m[:, col : col + width].reshape(x.shape).astype(x.dtype)
                col += width
            out.append(x)
        return jax.tree_util.tree_unflatten(tree, out)


class CurrentSynapses(NeuronModel):
    """A model whose synapses are current jumps: a spike of row `k` adds
    `weights[k, j]` to channel `input_channel` of neuron `j`.

    Subclasses declare the field `weights` `(pre, neurons)` and the class
    variable `input_channel`; `input_spike` and `input_spikes` come from here.
    The state is either one `(neurons, channels)` array or a tuple with one
    `(neurons,)` array per channel.
    """

    weights: eqx.AbstractVar[Float[Array, "pre neurons"]]
    input_channel: eqx.AbstractClassVar[int]

    def input_spike(self, y, from_idx, to_idx, valid_mask):
        if isinstance(y, tuple):
            w = jnp.where(valid_mask, self.weights[from_idx, to_idx], 0.0)
            return self._with_channel(y, y[self.input_channel].at[to_idx].add(w))
        return add_weighted_spike(y, self.weights, self.input_channel, from_idx, to_idx, valid_mask)

    def input_spikes(self, y, counts, wmask):
        """`y[:, input_channel] += counts @ weights` over the connected entries."""
        current = counts.astype(self.weights.dtype) @ jnp.where(wmask, self.weights, 0.0)
        if isinstance(y, tuple):
            return self._with_channel(y, y[self.input_channel] + current)
        # an outer product with a one-hot row, not `.at[].add`: a scatter does not
        # fuse with the step's other elementwise work
        channel = jnp.arange(y.shape[1]) == self.input_channel
        return y + current[:, None] * channel

    def _with_channel(self, y: tuple, value) -> tuple:
        k = self.input_channel
        return y[:k] + (value,) + y[k + 1 :]


def add_weighted_spike(y, weights, channel: int, from_idx, to_idx, valid_mask):
    """`y[to_idx, channel] += weights[from_idx, to_idx]` where `valid_mask`: the
    jump of a current-based synapse, shared by the built-in models."""
    w = jnp.where(valid_mask, weights[from_idx, to_idx], 0.0)
    return y.at[to_idx, channel].add(w)


# `network_defaults` of the linear models (LIF, LI, ALIF): between events their ODE is
# smooth and slow, so Tsit5 at constant steps of 1.0 (one per unit of time; the
# layered engine also steps to every arrival) is accurate. yy-5-50-3, float32, against
# float64: median / max first-spike error 5e-7 / 8e-6 (LIF, tmem 10), 9e-7 / 2e-5
# (ALIF).
LINEAR_NETWORK_DEFAULTS: dict[str, Any] = {
    "solver": dfx.Tsit5(), "solver_stepsize": 1.0, "engine": "auto",
}

# `network_defaults` of the nonlinear models (QIF, EIF, Izhikevich): their upswing
# towards the spike needs short steps only near the spike, so the steps are adaptive
# (`solver_stepsize` is the first one). yy-5-50-3, float32, against float64: median
# first-spike error 1.4e-5 (QIF), 2e-5 (EIF), 2e-6 (Izhikevich), 2e-6 (Dendritic).
ADAPTIVE_NETWORK_DEFAULTS: dict[str, Any] = {
    "solver": dfx.Tsit5(),
    "solver_stepsize": 0.5,
    "stepsize_controller": dfx.PIDController(rtol=1e-6, atol=1e-6),
    "engine": "auto",
}
