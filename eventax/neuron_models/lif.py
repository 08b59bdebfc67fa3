"""Current-based leaky integrate-and-fire neuron."""

from __future__ import annotations

from typing import Any, ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._params import Parameters, SynapseInit, check_wmask
from .base import LINEAR_NETWORK_DEFAULTS, Constant, CurrentSynapses


def init_leaky(model, key, n_neurons, in_size, wmask, time_constants: dict, *, thresh, vreset, trainable, dtype,
               synapses, wlim: float, drive: float) -> None:
    """Set what every leaky current-synapse model has: `thresh`, `vreset` (checked below
    `thresh`), the `time_constants` (positive) as parameters, and `weights`, `ic` drawn by
    `SynapseInit` with default width `wlim thresh` and default drive `drive thresh`."""
    model.dtype = dtype
    par = Parameters(n_neurons, dtype, trainable, ("thresh", "vreset") + tuple(time_constants))
    model.thresh = par("thresh", thresh)
    model.vreset = par("vreset", vreset)
    for name, value in time_constants.items():
        setattr(model, name, par(name, value, positive=True))
    if not jnp.all(model.param(model.vreset) < model.param(model.thresh)):
        raise ValueError(f"`vreset` ({vreset}) must be below `thresh` ({thresh}).")
    scale = float(jnp.max(model.param(model.thresh)))
    init = SynapseInit.of(type(model), wlim * scale, synapses, default_drive=drive * scale)
    model.weights, model.ic = init.draw(key, check_wmask(wmask, n_neurons, in_size), dtype)


class _Leaky(CurrentSynapses):
    """What `LIF` and `LI` share: the leaky membrane driven by a current-based
    synapse (fields, construction, dynamics); they differ in whether it spikes."""

    time_constants: ClassVar[tuple[str, ...]] = ("tsyn", "tmem")

    input_channel: ClassVar[int] = 1
    # Default `drive` in units of the default `wlim` (see `SynapseInit`).
    drive_per_wlim: ClassVar[float] = 0.0
    network_defaults: ClassVar[dict[str, Any]] = LINEAR_NETWORK_DEFAULTS

    weights: Float[Array, "pre neurons"]
    ic: Float[Array, " neurons"]
    thresh: Array | Constant
    tsyn: Array | Constant
    tmem: Array | Constant
    vreset: Array | Constant

    def __init__(
        self,
        key: PRNGKeyArray,
        n_neurons: int,
        in_size: int,
        wmask,
        thresh=1.0,
        tsyn=5.0,
        tmem=20.0,
        vreset=0.0,
        trainable=(),
        dtype=jnp.float32,
        **synapses,
    ):
        init_leaky(self, key, n_neurons, in_size, wmask, dict(tsyn=tsyn, tmem=tmem), thresh=thresh, vreset=vreset,
                   trainable=trainable, dtype=dtype, synapses=synapses, wlim=4.0, drive=4.0 * self.drive_per_wlim)

    def init_state(self, n_neurons: int) -> tuple[Float[Array, " neurons"], Float[Array, " neurons"]]:
        # One array per channel, not (n, 2): a fixed-step scan over an interleaved
        # layout ran 1.6-2x slower per step (XLA vectorises contiguous channels).
        zeros = jnp.zeros((n_neurons,), self.dtype)
        return zeros, zeros

    def dynamics(self, t, y, args: Any):
        v, i = y
        dv = (-v + i + self.ic) / self.param(self.tmem)
        di = -i / self.param(self.tsyn)
        return dv, di


class LIF(_Leaky):
    r"""Current-based leaky integrate-and-fire neuron.

    State `y = (v, i)`, membrane and synaptic current, each `(n_neurons,)`
    (`observe` stacks them into channels 0 and 1):

        dv/dt = (-v + i + ic) / tmem,     di/dt = -i / tsyn.

    Spike when `v` crosses `thresh` upwards; reset `v -> vreset`. A spike of
    presynaptic row `k` adds `weights[k, j]` to `i_j`.

    Learnable: `weights` `(n_neurons + in_size, n_neurons)`, bias current `ic`
    `(n_neurons,)`; any of `thresh, tsyn, tmem, vreset` named in `trainable`.

    | parameter | default | meaning |
    |---|---|---|
    | `thresh` | 1 | firing threshold |
    | `tsyn`, `tmem` | 5, 20 | synaptic / membrane time constant (> 0) |
    | `vreset` | 0 | reset potential (< thresh) |

    Weights and bias: the keywords of `SynapseInit` (`wlim` default `4 thresh`;
    `drive` default `12 thresh`, with which a small network spikes on Yin-Yang inputs).
    """

    drive_per_wlim: ClassVar[float] = 3.0

    def spike_condition(self, t, y) -> Float[Array, " neurons"]:
        return y[0] - self.param(self.thresh)

    def reset_spiked(self, y, spike_mask: Bool[Array, " neurons"]):
        v, i = y
        return jnp.where(spike_mask, self.param(self.vreset), v), i

