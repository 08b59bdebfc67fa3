"""State-based classification: logits read from the output neurons' observed state."""

from __future__ import annotations

from typing import TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._checks import check_int
from ..simulation import Simulation
from .base import Loss

if TYPE_CHECKING:
    from ..evnn import EvNN

_READOUTS = ("max", "integral", "exp_integral")


class StateLoss(Loss):
    r"""Cross-entropy over logits read from the outputs' observed state.

    With `v_j(t) = observe(y)[j, channel]` of output `j` (the membrane of LI
    outputs) on the window `[t_start, t_end]` of length `L`:

    - `"max"`: `logit_j = max_k v_j(t_k)`;
    - `"integral"`: `logit_j = ∫ v_j(t) dt`;
    - `"exp_integral"`: `logit_j = ∫ v_j(t) exp(-(t - t_start) / tau) dt`,
      `tau = L` by default (decay constant `1/T`, as in the Eventax paper).

    `t_k` are `n_obs` equally spaced observation times spanning the window (both
    ends included) and the integrals are the trapezoidal rule on them,
    `h * (v_0/2 + v_1 + ... + v_{n-2} + v_{n-1}/2)` with `h = L / (n_obs - 1)`
    (the exponential weight is applied at each `t_k`). The observed states are
    exact (to solver accuracy) at the `t_k`, so the only approximation is the
    quadrature: second order in `h`, dominated by the kink of `v` at each input
    spike (the synaptic current jumps, so `dv/dt` jumps by `w / tmem`). Against
    closed-form LI integrals it is ~1e-3 per unit of total input weight at
    `n_obs = 31` and ~1e-4 at 101 (medians; `experiments/RESULTS.md`, "State
    losses: quadrature error").

    `start_channels`: the window starts, per sample, at the first input spike
    among these input channels (e.g. the cue of the delayed-XOR task; no such
    spike: `t_start`; one after `t_end`: an empty window at `t_end`), and the
    `n_obs` times then span `[s, t_end]`. A `Simulation` does not carry its
    observation times, so the quadrature weights are those of the nominal
    window: the readouts are taken in window-normalised time, i.e. `"integral"`
    is `(L / (t_end - s)) ∫_s^{t_end} v dt` (the window mean times `L`) and the
    exponential weight decays over the fraction of the window elapsed,
    `exp(-(t - s) / tau * L / (t_end - s))`. For `s = t_start` these are the
    plain integrals; otherwise logits of samples with different windows stay on
    one scale. The observation times are traced values, so this works under
    `jax.vmap`.

    All fields are static hyperparameters; `logits` are `(n_out,)`.
    """

    readout: str = eqx.field(static=True)
    t_end: float = eqx.field(static=True)
    n_obs: int = eqx.field(static=True)
    channel: int = eqx.field(static=True)
    t_start: float = eqx.field(static=True)
    start_channels: tuple[int, ...] | None = eqx.field(static=True)
    tau: float | None = eqx.field(static=True)

    def __init__(
        self,
        readout: str,
        t_end: float,
        n_obs: int = 31,
        channel: int = 0,
        t_start: float = 0.0,
        start_channels: tuple[int, ...] | None = None,
        tau: float | None = None,
    ):
        if readout not in _READOUTS:
            raise ValueError(f"`readout` must be one of {_READOUTS}; got {readout!r}.")
        check_int("n_obs", n_obs, 2)
        check_int("channel", channel, 0)
        if not (np.isfinite(t_start) and np.isfinite(t_end) and t_end > t_start):
            raise ValueError(f"Need finite `t_start` < `t_end`; got t_start={t_start}, t_end={t_end}.")
        if tau is not None and not tau > 0:
            raise ValueError(f"`tau` must be positive (or None for t_end - t_start); got {tau}.")
        if start_channels is not None:
            start_channels = tuple(int(c) for c in np.atleast_1d(start_channels))
            if not start_channels or min(start_channels) < 0:
                raise ValueError(
                    f"`start_channels` must be non-empty input-channel indices; got {start_channels}."
                )
        self.readout = readout
        self.t_end, self.t_start = float(t_end), float(t_start)
        self.n_obs, self.channel = int(n_obs), int(channel)
        self.start_channels = start_channels
        self.tau = None if tau is None else float(tau)

    def window_start(self, x: Float[Array, "in_size K"]) -> Float[Array, ""]:
        """Start `s` of this sample's window (`t_start` unless `start_channels` is set)."""
        if self.start_channels is None:
            return jnp.asarray(self.t_start)
        first = jnp.min(jnp.asarray(x)[jnp.asarray(self.start_channels)])
        s = jnp.where(jnp.isfinite(first), jnp.minimum(first, self.t_end), self.t_start)
        return jax.lax.stop_gradient(s)

    def obs_times(self, x: Float[Array, "in_size K"]) -> Float[Array, " n_obs"]:
        """The `n_obs` observation times spanning `[window_start(x), t_end]`."""
        u = np.linspace(0.0, 1.0, self.n_obs)
        if self.start_channels is None:
            return jnp.asarray(self.t_start + u * (self.t_end - self.t_start))
        s = self.window_start(x)
        return jnp.clip(self.t_end - (1.0 - u) * (self.t_end - s), s, self.t_end)

    def simulate(self, net: EvNN, x: Float[Array, "in_size K"], max_spikes: int = 0) -> Simulation:
        """Observe the outputs on the window; the trial ends at `t_end`."""
        if self.t_end > net.max_solver_time or self.t_start < net.t0:
            raise ValueError(
                f"The window [t_start, t_end] = [{self.t_start}, {self.t_end}] must lie within the "
                f"network's [t0, max_solver_time] = [{net.t0}, {net.max_solver_time}]."
            )
        if self.start_channels is not None and max(self.start_channels) >= net.in_size:
            raise ValueError(
                f"`start_channels` {self.start_channels} must index the {net.in_size} input channels."
            )
        obs = self.obs_times(x).astype(net.dtype)
        return net.run(x, obs_times=obs, max_spikes=max_spikes)

    def weights(self) -> np.ndarray:
        """Quadrature weights on the observation grid (trapezoid, times the exp. decay)."""
        length = self.t_end - self.t_start
        h = length / (self.n_obs - 1)
        w = np.full(self.n_obs, h)
        w[0] = w[-1] = h / 2
        if self.readout == "exp_integral":
            tau = length if self.tau is None else self.tau
            w = w * np.exp(-np.linspace(0.0, length, self.n_obs) / tau)
        return w

    def logits(self, sim: Simulation) -> Float[Array, " n_out"]:
        if sim.states is None:
            raise ValueError(
                "StateLoss reads observed states: simulate with `StateLoss.simulate` "
                "(it sets `obs_times`)."
            )
        if sim.states.shape[1] != self.n_obs:
            raise ValueError(
                f"The simulation holds {sim.states.shape[1]} observation times; this loss "
                f"expects n_obs={self.n_obs}. Simulate with `StateLoss.simulate`."
            )
        v = sim.states[:, :, self.channel]
        if self.readout == "max":
            return jnp.max(v, axis=1)
        return v @ jnp.asarray(self.weights(), v.dtype)
