"""Adaptive leaky integrate-and-fire neuron: a LIF whose threshold rises with each spike."""

from __future__ import annotations

from typing import Any, ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._params import Parameters, SynapseInit, check_wmask
from .base import LINEAR_NETWORK_DEFAULTS, Constant, CurrentSynapses


class ALIF(CurrentSynapses):
    r"""Current-based LIF neuron with a spike-triggered adaptive threshold.

    State `(v, i, a)`, one `(neurons,)` array each: membrane, synaptic current,
    adaptation trace (starts at 0):

        tmem dv/dt = -v + i + ic,     tsyn di/dt = -i,     ta da/dt = -a.

    Spike when `v` crosses the moving threshold `thresh + beta * a` upwards;
    reset `v -> vreset` and `a -> a + 1`, so every spike raises the threshold by
    `beta`, and the increase decays with `ta`. A spike of presynaptic row `k`
    (neurons first, then inputs) adds `weights[k, j]` to `i_j`.
    `observe` returns `(v, i, a)`.

    Learnable: `weights` `(n_neurons + in_size, n_neurons)`, bias current `ic`
    `(n_neurons,)`; any of `thresh, vreset, beta, tsyn, tmem, ta` named in
    `trainable` (they become per-neuron arrays).

    | parameter | default | meaning |
    |---|---|---|
    | `thresh` | 1 | baseline firing threshold (0.1.0 name: `b0`) |
    | `beta` | 0.5 | threshold increase per spike (>= 0) |
    | `tsyn`, `tmem` | 5, 20 | synaptic / membrane time constant (> 0) |
    | `ta` | 100 | adaptation time constant (> 0) |
    | `vreset` | 0 | reset potential (< thresh) |

    Weights and bias: the keywords of `SynapseInit` (`wlim` default `4 thresh`,
    `drive` default `12 thresh`).

    Unlike eventax 0.1.0 (threshold jump `beta/ta`, input jumps `v`), the jump
    is `beta` and inputs enter through the synaptic current.
    """

    time_constants: ClassVar[tuple[str, ...]] = ("tsyn", "tmem", "ta")

    input_channel: ClassVar[int] = 1
    network_defaults: ClassVar[dict[str, Any]] = LINEAR_NETWORK_DEFAULTS

    weights: Float[Array, "pre neurons"]
    ic: Float[Array, " neurons"]
    thresh: Array | Constant
    beta: Array | Constant
    tsyn: Array | Constant
    tmem: Array | Constant
    ta: Array | Constant
    vreset: Array | Constant

    def __init__(
        self,
        key: PRNGKeyArray,
        n_neurons: int,
        in_size: int,
        wmask,
        thresh=None,
        beta=0.5,
        tsyn=5.0,
        tmem=20.0,
        ta=100.0,
        vreset=0.0,
        trainable=(),
        dtype=jnp.float32,
        b0=None,
        **synapses,
    ):
        self.dtype = dtype
        if thresh is not None and b0 is not None:
            raise ValueError("Give the baseline threshold as `thresh` or `b0`, not both.")
        thresh = 1.0 if thresh is None and b0 is None else (b0 if thresh is None else thresh)
        n = n_neurons
        par = Parameters(n, dtype, trainable, ("thresh", "vreset", "beta") + self.time_constants)

        self.thresh = par("thresh", thresh)
        self.vreset = par("vreset", vreset)
        self.beta = par("beta", beta)
        self.tsyn = par("tsyn", tsyn, positive=True)
        self.tmem = par("tmem", tmem, positive=True)
        self.ta = par("ta", ta, positive=True)
        if not jnp.all(self.param(self.vreset) < self.param(self.thresh)):
            raise ValueError(f"`vreset` ({vreset}) must be below `thresh` ({thresh}).")
        if not jnp.all(self.param(self.beta) >= 0):
            raise ValueError(f"`beta` must be non-negative (the threshold only rises); got {beta}.")
        scale = 4.0 * float(jnp.max(self.param(self.thresh)))
        init = SynapseInit.of(type(self), scale, synapses, default_drive=3.0 * scale)
        self.weights, self.ic = init.draw(key, check_wmask(wmask, n, in_size), dtype)

    def init_state(self, n_neurons: int) -> tuple[Float[Array, " neurons"], ...]:
        zeros = jnp.zeros((n_neurons,), self.dtype)
        return zeros, zeros, zeros

    def dynamics(self, t, y, args: Any):
        v, i, a = y
        dv = (-v + i + self.ic) / self.param(self.tmem)
        return dv, -i / self.param(self.tsyn), -a / self.param(self.ta)

    def spike_condition(self, t, y) -> Float[Array, " neurons"]:
        v, _, a = y
        return v - (self.param(self.thresh) + self.param(self.beta) * a)

    def reset_spiked(self, y, spike_mask: Bool[Array, " neurons"]):
        v, i, a = y
        return jnp.where(spike_mask, self.param(self.vreset), v), i, a + spike_mask.astype(a.dtype)
