"""Exponential integrate-and-fire neuron (Fourcaud-Trocme et al. 2003)."""

from __future__ import annotations

from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._params import Parameters, SynapseInit, check_wmask
from .base import ADAPTIVE_NETWORK_DEFAULTS, Constant, CurrentSynapses

# Largest allowed `(v_peak - vT) / deltaT`: keeps `deltaT exp(.)` finite in float32.
_MAX_PEAK_EXPONENT = 50.0


class EIF(CurrentSynapses):
    r"""Exponential integrate-and-fire neuron with a current-based synapse.

        tmem dv/dt = -(v - EL) + deltaT exp((v - vT) / deltaT) + i + ic,
        tsyn di/dt = -i.

    State `(v, i)`: membrane and synaptic current, one `(neurons,)` array each. The
    exponential term makes `v` diverge in finite time once it passes about
    `vT`; the spike is the crossing of the finite cut-off `v_peak`
    (default `vT + 5 deltaT`, where the exponential term is `e^5 ~ 150` times
    `deltaT` and the remaining time to divergence is ~`tmem e^-5`). Reset
    `v -> vreset`, `i` unchanged. A spike of presynaptic row `k` adds
    `weights[k, j]` to `i_j`. A trial starts at `v = EL`, `i = 0`.

    Overflow guard: the exponent is used as is up to one `deltaT` above
    `v_peak` and continued linearly (value and slope matched) beyond, so the
    right-hand side stays finite when a solver stage overshoots the cut-off;
    below that point (every accepted trajectory) the dynamics are exact.
    `v_peak` must lie below `vT + 50 deltaT`.

    Learnable: `weights` `(n_neurons + in_size, n_neurons)`, bias current `ic`
    `(n_neurons,)`; any of `tmem, tsyn, vT, deltaT, EL, vreset, v_peak` named in
    `trainable`.

    | parameter | default | meaning |
    |---|---|---|
    | `tmem`, `tsyn` | 20, 5 | membrane / synaptic time constant (> 0) |
    | `vT` | 1.0 | exponential threshold (soft threshold) |
    | `deltaT` | 0.2 | slope factor (> 0) |
    | `EL` | 0.0 | leak reversal potential, initial `v` |
    | `vreset` | 0.0 | reset potential (< `v_peak`) |
    | `v_peak` | `vT + 5 deltaT` | spike cut-off |

    Weights and bias: the keywords of `SynapseInit` (`wlim` default `4 |vT - EL|`,
    `drive` default `16 |vT - EL|`).
    """

    time_constants: ClassVar[tuple[str, ...]] = ("tsyn", "tmem")

    input_channel: ClassVar[int] = 1
    network_defaults: ClassVar[dict[str, Any]] = ADAPTIVE_NETWORK_DEFAULTS

    weights: Float[Array, "pre neurons"]
    ic: Float[Array, " neurons"]
    tmem: Array | Constant
    tsyn: Array | Constant
    vT: Array | Constant
    deltaT: Array | Constant
    EL: Array | Constant
    vreset: Array | Constant
    v_peak: Array | Constant

    def __init__(
        self,
        key: PRNGKeyArray,
        n_neurons: int,
        in_size: int,
        wmask,
        tmem=20.0,
        tsyn=5.0,
        vT=1.0,
        deltaT=0.2,
        EL=0.0,
        vreset=0.0,
        v_peak=None,
        trainable=(),
        dtype=jnp.float32,
        **synapses,
    ):
        self.dtype = dtype
        voltages = ("vT", "deltaT", "EL", "vreset", "v_peak")
        n = n_neurons
        par = Parameters(n, dtype, trainable, voltages + self.time_constants)

        self.tmem = par("tmem", tmem, positive=True)
        self.tsyn = par("tsyn", tsyn, positive=True)
        self.deltaT = par("deltaT", deltaT, positive=True)
        self.vT = par("vT", vT)
        self.EL = par("EL", EL)
        self.vreset = par("vreset", vreset)
        if v_peak is None:
            v_peak = np.asarray(vT, float) + 5.0 * np.asarray(deltaT, float)
        self.v_peak = par("v_peak", v_peak)
        peak, reset = np.asarray(self.param(self.v_peak)), np.asarray(self.param(self.vreset))
        if not np.all(reset < peak):
            raise ValueError(f"`vreset` ({vreset}) must be below `v_peak` ({v_peak}).")
        exponent = (peak - np.asarray(self.param(self.vT))) / np.asarray(self.param(self.deltaT))
        if not np.all(exponent < _MAX_PEAK_EXPONENT):
            raise ValueError(
                f"`v_peak` ({v_peak}) must be below `vT + {_MAX_PEAK_EXPONENT:g} deltaT` "
                "(the exponential term would overflow)."
            )

        scale = 4.0 * float(np.max(np.abs(np.asarray(self.param(self.vT)) - self.param(self.EL))))
        init = SynapseInit.of(type(self), scale, synapses, default_drive=4.0 * scale)
        self.weights, self.ic = init.draw(key, check_wmask(wmask, n, in_size), dtype)

    def init_state(self, n_neurons: int) -> tuple[Float[Array, " neurons"], Float[Array, " neurons"]]:
        v0 = jnp.broadcast_to(self.param(self.EL), (n_neurons,)).astype(self.dtype)
        return v0, jnp.zeros((n_neurons,), self.dtype)

    def dynamics(self, t, y, args: Any):
        v, i = y
        vT, delta = self.param(self.vT), self.param(self.deltaT)
        exponent = (v - vT) / delta
        cap = (self.param(self.v_peak) - vT) / delta + 1.0
        # exp(x) up to `cap`, then its tangent line: finite for any overshoot.
        growth = jnp.exp(jnp.minimum(exponent, cap)) * (1.0 + jnp.maximum(exponent - cap, 0.0))
        dv = (-(v - self.param(self.EL)) + delta * growth + i + self.ic) / self.param(self.tmem)
        return dv, -i / self.param(self.tsyn)

    def spike_condition(self, t, y) -> Float[Array, " neurons"]:
        return y[0] - self.param(self.v_peak)

    def reset_spiked(self, y, spike_mask: Bool[Array, " neurons"]):
        v, i = y
        return jnp.where(spike_mask, self.param(self.vreset), v), i
