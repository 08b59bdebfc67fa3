"""Time-to-first-spike loss (Wunderlich & Pehle 2021) with a guard for silent targets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from .._checks import check_int
from ..simulation import Simulation
from .base import Loss

if TYPE_CHECKING:
    from ..evnn import EvNN


class TTFSLoss(Loss):
    r"""First-spike classification: the earliest output spike names the class.

    With `t` the first spike time of each output (a silent output, or one that
    spikes after `no_spike_time`, counts as spiking at `no_spike_time`, with zero
    gradient through that replacement) and `y` the label:

        logits = -t / tau0
        L = -log softmax(-t / tau0)[y] + alpha * (exp(t_y / tau1) - 1) + G

    The first two terms are the loss of Wunderlich & Pehle (2021), as used by the
    Eventax paper; the `alpha` term keeps the target spiking early. Neither gives
    a gradient to a *silent* target (its time is the constant `no_spike_time`), and
    cross-entropy alone rewards silencing the other outputs, so training can drift
    into silent outputs. The guard `G` gives a silent target a gradient:

        G = silent_guard * [t_y silent] * relu(guard_level - max_k v_y(s_k))

    with `v_y = observe(y)[target, guard_channel]` (the membrane for LIF and its
    relatives, whose threshold is `guard_level`) at `guard_obs` times `s_k`
    equally spaced in `(t0, no_spike_time]`. It pulls the target's highest
    membrane value towards threshold and vanishes once the target spikes.
    `silent_guard` is per unit of that channel: the default suits channels whose
    rest-to-threshold distance is about 1 (LIF with `thresh = 1`); divide it by
    that distance for other units (e.g. ~95 for Izhikevich in mV).
    `silent_guard=0.0` switches the guard off.

    The guard's cost: a trial no longer stops at the last output's first spike
    but runs to `no_spike_time` (plus `guard_obs` observation stops). Its effect on
    accuracy and silent outputs is measured in `experiments/RESULTS.md` ("TTFS
    loss: silent-output guard").

    Defaults are for the Yin-Yang workload (30-unit window, `tsyn = 5`,
    `tmem = 20`). W&P give `tau0 = 0.5`, `tau1 = 6.4`, `alpha = 3e-3` in ms for
    LIF neurons with time constants of a few to tens of ms; our time unit plays
    the role of their ms, so the values are kept. `tau0 = 0.5` is a sharp
    softmax (one output spiking one unit before another wins by a logit margin
    of 2); the `alpha` term, `exp(t / 6.4)`, costs 0.003 at t = 0 and 0.32 at
    t = 30. `no_spike_time` should be the end of the trial (the trainer sets it).

    All fields are static hyperparameters.
    """

    tau0: float = eqx.field(static=True, converter=float, default=0.5)
    tau1: float = eqx.field(static=True, converter=float, default=6.4)
    alpha: float = eqx.field(static=True, converter=float, default=3e-3)
    no_spike_time: float = eqx.field(static=True, converter=float, default=30.0)
    silent_guard: float = eqx.field(static=True, converter=float, default=10.0)
    guard_obs: int = eqx.field(static=True, default=16)
    guard_channel: int = eqx.field(static=True, default=0)
    guard_level: float = eqx.field(static=True, converter=float, default=1.0)

    def __check_init__(self):
        for name in ("tau0", "tau1"):
            if not getattr(self, name) > 0:
                raise ValueError(f"`{name}` must be positive; got {getattr(self, name)}.")
        for name in ("alpha", "silent_guard"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"`{name}` must be >= 0; got {getattr(self, name)}.")
        if not np.isfinite(self.no_spike_time):
            raise ValueError(f"`no_spike_time` must be finite; got {self.no_spike_time}.")
        check_int("guard_obs", self.guard_obs, 1)

    def simulate(self, net: EvNN, x: Float[Array, "in_size K"], max_spikes: int = 0) -> Simulation:
        """Run until every output has spiked (and, with the guard, to `no_spike_time`)."""
        obs_times = None
        if self.silent_guard:
            t_end = min(self.no_spike_time, net.max_solver_time)
            if not t_end > net.t0:
                raise ValueError(
                    f"`no_spike_time` ({self.no_spike_time}) must exceed the network's t0 ({net.t0})."
                )
            obs_times = np.linspace(net.t0, t_end, self.guard_obs + 1)[1:].astype(net.dtype)
        return net.run(x, obs_times=obs_times, max_spikes=max_spikes, stop_at_first_output=True)

    def spike_times(self, sim: Simulation) -> Float[Array, " n_out"]:
        """First output spike times, silent (or later than `no_spike_time`) -> `no_spike_time`."""
        t = sim.first_spikes
        return jnp.where(t < self.no_spike_time, t, self.no_spike_time)

    def logits(self, sim: Simulation) -> Float[Array, " n_out"]:
        return -self.spike_times(sim) / self.tau0

    def penalty(self, sim: Simulation, label: Int[ArrayLike, ""]) -> Float[Array, ""]:
        """`alpha * (exp(t_y / tau1) - 1)` plus the silent-target guard."""
        t_y = self.spike_times(sim)[label]
        value = self.alpha * jnp.expm1(t_y / self.tau1)
        if self.silent_guard:
            if sim.states is None:
                raise ValueError(
                    "TTFSLoss with `silent_guard` > 0 reads observed states: simulate with "
                    "`TTFSLoss.simulate` (it sets `obs_times`), or set `silent_guard=0.0`."
                )
            v_max = jnp.max(sim.states[label, :, self.guard_channel])
            silent = ~(sim.first_spikes[label] < self.no_spike_time)
            gap = jax.nn.relu(self.guard_level - v_max)
            value = value + self.silent_guard * jnp.where(silent, gap, 0.0)
        return value
