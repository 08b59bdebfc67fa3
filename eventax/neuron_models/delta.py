"""Leaky integrate-and-fire neuron with instantaneous (delta) synapses."""

from __future__ import annotations

from typing import Any, ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from .base import LINEAR_NETWORK_DEFAULTS, Constant, CurrentSynapses
from .lif import init_leaky


class _DeltaLeaky(CurrentSynapses):
    """What `DeltaLIF` and `DeltaLI` share: a leaky membrane that input spikes
    move directly; they differ in whether it spikes."""

    time_constants: ClassVar[tuple[str, ...]] = ("tmem",)
    input_channel: ClassVar[int] = 0
    network_defaults: ClassVar[dict[str, Any]] = LINEAR_NETWORK_DEFAULTS
    # Default `drive` in units of `thresh` (see `SynapseInit`).
    default_drive: ClassVar[float] = 0.0

    weights: Float[Array, "pre neurons"]
    ic: Float[Array, " neurons"]
    thresh: Array | Constant
    tmem: Array | Constant
    vreset: Array | Constant

    def __init__(
        self,
        key: PRNGKeyArray,
        n_neurons: int,
        in_size: int,
        wmask,
        thresh=1.0,
        tmem=20.0,
        vreset=0.0,
        trainable=(),
        dtype=jnp.float32,
        **synapses,
    ):
        init_leaky(self, key, n_neurons, in_size, wmask, dict(tmem=tmem), thresh=thresh, vreset=vreset,
                   trainable=trainable, dtype=dtype, synapses=synapses, wlim=1.0, drive=self.default_drive)

    def init_state(self, n_neurons: int) -> tuple[Float[Array, " neurons"]]:
        return (jnp.zeros((n_neurons,), self.dtype),)

    def dynamics(self, t, y, args: Any):
        return ((-y[0] + self.ic) / self.param(self.tmem),)


class DeltaLIF(_DeltaLeaky):
    r"""Leaky integrate-and-fire neuron whose input spikes jump the membrane.

    State `y = (v,)`, one `(n_neurons,)` array:

        dv/dt = (-v + ic) / tmem.

    A spike of presynaptic row `k` adds `weights[k, j]` to `v_j` (a neuron that it
    lifts to `thresh` spikes at that instant); spike when `v` reaches `thresh`,
    reset `v -> vreset`. NIR's `LIF` node; the discrete-time "leaky" neuron of
    many surrogate-gradient libraries is its Euler step.

    Exact gradients: a spike that an input jump causes happens at that input's
    arrival time, whatever the weights, so its time has zero derivative with
    respect to every weight (and non-zero ones with respect to input times and
    delays). Weights get spike-time gradients only through neurons that reach
    `thresh` while drifting, i.e. with `ic > thresh`. At the default initialisation
    (no bias) every spike is a jump's: use `LIF` (current synapses) for
    spike-time training, or give a bias.

    Learnable: `weights` `(n_neurons + in_size, n_neurons)`, bias `ic` `(n_neurons,)`;
    any of `thresh, tmem, vreset` named in `trainable`.

    | parameter | default | meaning |
    |---|---|---|
    | `thresh` | 1 | firing threshold |
    | `tmem` | 20 | membrane time constant (> 0) |
    | `vreset` | 0 | reset potential (< thresh) |

    Weights and bias: the keywords of `SynapseInit` (`wlim` default `thresh`, `drive`
    default `2 thresh`: a small network spikes on Yin-Yang inputs).
    """

    default_drive: ClassVar[float] = 2.0

    def spike_condition(self, t, y) -> Float[Array, " neurons"]:
        return y[0] - self.param(self.thresh)

    def reset_spiked(self, y, spike_mask: Bool[Array, " neurons"]):
        return (jnp.where(spike_mask, self.param(self.vreset), y[0]),)


class DeltaLI(_DeltaLeaky):
    r"""Leaky integrator whose input spikes jump the membrane; never spikes.

        dv/dt = (-v + ic) / tmem,   a spike of row `k` adds `weights[k, j]` to `v_j`.

    Same construction keywords and learnable arrays as `DeltaLIF` (`thresh`,
    `vreset` are accepted and unused). NIR's `LI` node.
    """

    def spike_condition(self, t, y) -> Float[Array, " neurons"]:
        return jnp.full(y[0].shape, -1.0, y[0].dtype)

    def reset_spiked(self, y, spike_mask: Bool[Array, " neurons"]):
        return y
