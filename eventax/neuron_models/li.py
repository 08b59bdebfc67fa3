"""Leaky integrator: a LIF that never spikes (typical readout layer)."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from .lif import _Leaky


class LI(_Leaky):
    r"""Leaky integrator with a current-based synapse; never spikes.

        dv/dt = (-v + i + ic) / tmem,     di/dt = -i / tsyn.

    Same construction keywords and learnable arrays as `LIF` (`thresh`, `vreset`
    are accepted and unused). `observe` returns `v` and `i`; the membrane `v`
    is the usual readout for state-based losses.
    """

    def spike_condition(self, t, y) -> Float[Array, " neurons"]:
        return jnp.full(y[0].shape, -1.0, y[0].dtype)

    def reset_spiked(self, y, spike_mask: Bool[Array, " neurons"]):
        return y
