"""Fixed-step surrogate-gradient simulation of an `EvNN`: discrete time, BPTT."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ._checks import check_int
from ._network import AbstractNetwork, forward
from .neuron_models.base import NeuronModel, State
from .simulation import Simulation, SpikeRecord
from .surrogates import FastSigmoid, Surrogate

if TYPE_CHECKING:
    from .evnn import EvNN

_RESETS = ("immediate", "next_step")


class _ScanOutputs(NamedTuple):
    spikes: Float[Array, "n_steps neurons"] | None
    survive: Float[Array, " n_out"]
    soft_first: Float[Array, " n_out"]
    observed: Float[Array, "n_obs n_out channels"]


class FixedStepNN(AbstractNetwork):
    r"""An `EvNN` simulated on the time grid `t_k = t0 + k dt`, with surrogate gradients.

    The same network (neuron model, weights, connectivity), stepped in discrete
    time as the surrogate-gradient literature does. Step `k` (`t_{k-1} -> t_k`):

        y  <- solver step of `dynamics` over `dt`           (Euler by default)
        y  <- input_spikes(y, [S_{k-1}, X_k])               spikes of the previous step
                                                            and inputs in (t_{k-1}, t_k]
        S_k = H(spike_condition(t_k, y))                    surrogate derivative backward
        y  <- y + S_k (reset_spiked(y) - y)                 per neuron

    so a spike reaches its targets one step after it is emitted (a synaptic
    latency of `dt`), inputs at the step that contains them (inputs at `t0`: at
    step 1; a spike less than `1e-4 dt` after a grid point counts as on it, so
    that float rounding of `s / dt` does not move it a step). With `reset="next_step"` the reset of `S_{k-1}` is applied after the
    solver step of step `k` instead, which is the textbook discrete LIF

        U[k] = beta U[k-1] + W X[k] - S[k-1] theta,     S[k] = H(U[k] - theta)

    for a delta-synapse LIF with a subtractive reset and `beta = 1 - dt/tmem`
    (Euler). `detach_reset=True` stops the gradient through `S` in the reset
    term (the common recommendation); gradients still flow through the state.

    First spike times are `sum_k t_k S_k prod_{j<k} (1 - S_j)` (plus
    `t_end + dt` times `prod_k (1 - S_k)`): the grid time forward, a surrogate
    gradient backward; silent outputs report `inf`. Observed states are those at
    the grid point nearest to each requested time, before the reset. Delays are
    not supported (a `ValueError` says so). Gradients of every public method
    are taken by BPTT through `lax.scan`; `jax.jvp` works as well.
    """

    net: EvNN
    dt: float = eqx.field(static=True)
    surrogate: Surrogate = eqx.field(static=True)
    solver: dfx.AbstractSolver = eqx.field(static=True)
    reset: str = eqx.field(static=True)
    detach_reset: bool = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)

    def __init__(
        self,
        net: EvNN,
        dt: float,
        *,
        surrogate: Surrogate | None = None,
        solver: dfx.AbstractSolver | None = None,
        reset: str = "immediate",
        detach_reset: bool = True,
    ):
        if isinstance(net, FixedStepNN):
            net = net.net
        if not isinstance(net, AbstractNetwork):  # (every other network is an EvNN)
            raise ValueError(f"`net` must be an EvNN; got {type(net).__name__}.")
        if net.use_delays:
            raise ValueError(
                "FixedStepNN does not support synaptic or axonal delays; build the EvNN "
                "without `init_delays`/`dlim`/`init_axonal_delays`/`axonal_dlim`."
            )
        dt = float(dt)
        span = net.max_solver_time - net.t0
        if not (math.isfinite(dt) and 0 < dt <= span):
            raise ValueError(f"`dt` must be in (0, max_solver_time - t0 = {span}]; got {dt}.")
        surrogate = FastSigmoid() if surrogate is None else surrogate
        if not isinstance(surrogate, Surrogate):
            raise ValueError(f"`surrogate` must be a Surrogate; got {type(surrogate).__name__}.")
        solver = dfx.Euler() if solver is None else solver
        if not isinstance(solver, dfx.AbstractSolver) or isinstance(solver, dfx.AbstractImplicitSolver):
            raise ValueError(f"`solver` must be an explicit Diffrax solver; got {solver!r}.")
        if reset not in _RESETS:
            raise ValueError(f"`reset` must be one of {_RESETS}; got {reset!r}.")
        if not detach_reset:
            shapes = jax.eval_shape(lambda: net.neuron_model.init_state(net.n_neurons))
            if any(leaf.shape[:1] != (net.n_neurons,) for leaf in jax.tree_util.tree_leaves(shapes)):
                raise ValueError(
                    "`detach_reset=False` needs a state whose leaves all have leading axis "
                    f"n_neurons={net.n_neurons} (not the case for {type(net.neuron_model).__name__})."
                )
        self.net, self.dt, self.surrogate, self.solver = net, dt, surrogate, solver
        self.reset, self.detach_reset = reset, bool(detach_reset)
        # ceil, forgiving float noise: span 30, dt 0.01 -> 3000 steps, not 3001.
        self.n_steps = max(1, math.ceil(span / dt - 1e-6))

    # --------------------------------------------------- the EvNN surface

    neuron_model = property(lambda self: self.net.neuron_model)
    n_neurons = property(lambda self: self.net.n_neurons)
    in_size = property(lambda self: self.net.in_size)
    output_indices = property(lambda self: self.net.output_indices)
    n_outputs = property(lambda self: self.net.n_outputs)
    t0 = property(lambda self: self.net.t0)
    max_solver_time = property(lambda self: self.net.max_solver_time)
    max_event_steps = property(lambda self: self.net.max_event_steps)
    output_no_spike_value = property(lambda self: self.net.output_no_spike_value)
    dtype = property(lambda self: self.net.dtype)
    wmask = property(lambda self: self.net.wmask)

    @property
    def times(self) -> Float[Array, " n_steps"]:
        """The grid `t_1 .. t_K` (the state at `t0` is the initial state)."""
        return self.time_of(jnp.arange(1, self.n_steps + 1))

    def time_of(self, k: Int[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Grid time `t_k = t0 + k dt` (the same rounding as `times`)."""
        return self.t0 + self.dt * jnp.asarray(k).astype(self.dtype)

    @forward
    def run(
        self,
        in_spike_times: Float[Array, "in_size K"],
        *,
        obs_times: Float[Array, " n_times"] | None = None,
        max_spikes: int = 0,
        stop_at_first_output: bool = False,
        until: float | None = None,
        train_length: int = 0,
    ) -> Simulation:
        """Simulate the whole grid once and record what is asked (see `EvNN.run`).

        The grid always runs to `max_solver_time` (its length is static): first
        spikes, observations and the spike log cover all of it; `until` ends the
        output trains and sets `t_stop`, and so does `stop_at_first_output` (the
        last output's first spike, when every output spiked).
        """
        check_int("max_spikes", max_spikes, 0)
        check_int("train_length", train_length, 0)
        obs_steps = None
        if obs_times is not None:
            obs_times = self._times("obs_times", obs_times)
            obs_steps = jnp.round((obs_times - self.t0) / self.dt).astype(jnp.int32)
        t_stop = self.times[-1] if until is None else self._times("until", until).reshape(())
        trace = self._scan(in_spike_times, obs_steps, keep_spikes=max_spikes > 0 or train_length > 0)
        first = jnp.where(trace.survive == 0, trace.soft_first + (self.times[-1] + self.dt) * trace.survive, jnp.inf)
        record = _spike_record(trace.spikes, self.times, max_spikes) if max_spikes else None
        trains = None
        if train_length:
            trains = _trains(trace.spikes[:, jnp.asarray(self.output_indices)], self.times, t_stop, train_length)
        states = None if obs_steps is None else jnp.swapaxes(trace.observed, 0, 1)
        if stop_at_first_output:
            t_stop = jnp.where(jnp.all(jnp.isfinite(first)), jnp.max(first), t_stop)
        return Simulation(first, states, record, t_stop, trains)

    @forward
    def spike_trains(self, in_spike_times: Float[Array, "in_size K"]) -> Float[Array, "n_steps neurons"]:
        """`S[k-1, j] = 1` if neuron `j` spiked at grid time `t_k` (surrogate-differentiable)."""
        return self._scan(in_spike_times, None, keep_spikes=True).spikes

    # --------------------------------------------------- the time loop

    def _scan(self, in_spike_times, obs_steps, keep_spikes: bool) -> _ScanOutputs:
        """Step through the grid, accumulating first spikes and observations.

        First spikes: `soft_first = sum_k t_k S_k prod_{j<k}(1 - S_j)` and
        `survive = prod_k (1 - S_k)` per output; observations: the state at step
        `obs_steps[i]` (step 0: the initial state).
        """
        model, n = self.neuron_model, self.n_neurons
        counts = self._input_counts(self._inputs(in_spike_times))
        wmask = jnp.asarray(self.wmask.value)
        outs = jnp.asarray(self.output_indices)
        y0 = model.init_state(n)
        obs0 = model.observe(y0)[outs]
        n_obs = 0 if obs_steps is None else obs_steps.shape[0]
        observed0 = jnp.broadcast_to(obs0, (n_obs,) + obs0.shape)
        if n_obs:
            observed0 = jnp.where((obs_steps <= 0)[:, None, None], observed0, 0.0)

        def step(carry, xs):
            y, s_prev, survive, soft_first, observed = carry
            k, t, x_k = xs
            y, s, y_pre = self.step(y, s_prev, t, x_k, wmask)
            if n_obs:
                hit = (obs_steps == k) | ((k == self.n_steps) & (obs_steps > k))
                observed = jnp.where(hit[:, None, None], model.observe(y_pre)[outs][None], observed)
            s_out = s[outs]
            soft_first = soft_first + t * s_out * survive
            survive = survive * (1.0 - s_out)
            return (y, s, survive, soft_first, observed), (s if keep_spikes else None)

        n_out = len(self.output_indices)
        ones = jnp.ones((n_out,), self.dtype)
        carry = (y0, jnp.zeros((n,), self.dtype), ones, 0.0 * ones, observed0)
        steps = jnp.arange(1, self.n_steps + 1)
        (_, _, survive, soft_first, observed), spikes = jax.lax.scan(step, carry, (steps, self.times, counts))
        return _ScanOutputs(spikes, survive, soft_first, observed)

    def step(
        self, y: State, s_prev: Float[Array, " neurons"], t: Float[Array, ""],
        x_k: Float[Array, " in_size"], wmask=None,
    ) -> tuple[State, Float[Array, " neurons"], State]:
        """One grid step `t - dt -> t`: the network's one-step transition.

        Takes the state after step `k-1`, its spikes `S_{k-1}` and the input
        counts of `(t - dt, t]`; returns `(y_k, S_k, y_k^-)`: the state after the
        reset, the spikes, and the state before the reset (what is observed).
        Every other method is a `lax.scan` of this function, and so are the
        learning rules of `eventax.rules`, which differentiate it.
        """
        model = self.neuron_model
        wmask = jnp.asarray(self.wmask.value) if wmask is None else wmask
        y = _solver_step(self.solver, dfx.ODETerm(model.dynamics), t - self.dt, t, y)
        if self.reset == "next_step":
            y = self._apply_reset(model, y, s_prev)
        y_pre = model.input_spikes(y, jnp.concatenate([s_prev, x_k]), wmask)
        s = self.surrogate(model.spike_condition(t, y_pre))
        y = self._apply_reset(model, y_pre, s) if self.reset == "immediate" else y_pre
        return y, s, y_pre

    def input_counts(self, in_spike_times: Float[Array, "in_size K"]) -> Float[Array, "n_steps in_size"]:
        """The inputs on the grid: `counts[k-1, i]` spikes of channel `i` in `(t_{k-1}, t_k]`."""
        return self._input_counts(self._inputs(in_spike_times))

    def input_steps(self, in_spike_times: Float[Array, "in_size K"]) -> Int[Array, "in_size K"]:
        """The grid step `k` (`1..n_steps`) that delivers each input spike (`n_steps + 1`:
        never). `counts` of step `k` are `sum(steps == k, axis=1)`: a trial's inputs
        without a `(n_steps, in_size)` array, for rules whose memory must not grow with it."""
        return self._input_steps(self._inputs(in_spike_times))

    def _apply_reset(self, model: NeuronModel, y: State, s) -> State:
        """`reset_spiked(y, S > 0)`; without `detach_reset`, plus the derivative
        `reset_spiked(y) - y` in `S` (per neuron)."""
        reset = model.reset_spiked(y, s > 0)
        if self.detach_reset:
            return reset
        full = model.reset_spiked(y, jnp.ones(s.shape, bool))

        def leaf(r, a, b):
            if not jnp.issubdtype(r.dtype, jnp.inexact):
                return r
            ds = (s - jax.lax.stop_gradient(s)).reshape(s.shape + (1,) * (r.ndim - 1))
            return r + ds * jnp.where(jnp.isfinite(a - b), a - b, 0.0)

        return jax.tree_util.tree_map(leaf, reset, full, y)

    def _input_steps(self, x):
        k = jnp.ceil((x - self.t0) / self.dt - 1e-4)
        return jnp.where(jnp.isfinite(k), jnp.clip(k, 1, self.n_steps + 1), self.n_steps + 1).astype(jnp.int32)

    def _input_counts(self, x) -> Float[Array, "n_steps in_size"]:
        """How many input spikes of each channel fall into each step `(t_{k-1}, t_k]`."""
        k = self._input_steps(x)
        channel = jnp.broadcast_to(jnp.arange(x.shape[0])[:, None], x.shape)
        counts = jnp.zeros((self.n_steps + 2, x.shape[0]), self.dtype)
        return counts.at[k, channel].add(1.0)[1 : self.n_steps + 1]


def _solver_step(solver, term, t0, t1, y):
    state = solver.init(term, t0, t1, y, None)
    y1, *_ = solver.step(term, t0, t1, y, None, state, made_jump=True)
    return y1


def _trains(spikes, times, until, length: int):
    """Each output's first `length` spike times up to `until`, `inf`-padded."""
    hit = jnp.where((spikes > 0) & (times <= until)[:, None], times[:, None], jnp.inf)
    first = jnp.sort(hit, axis=0)[:length].T
    return jnp.pad(first, ((0, 0), (0, max(0, length - first.shape[1]))), constant_values=jnp.inf)


def _spike_record(spikes, times, max_spikes: int) -> SpikeRecord:
    flat = jax.lax.stop_gradient(spikes).reshape(-1) > 0
    count = jnp.sum(flat, dtype=jnp.int32)
    (pos,) = jnp.nonzero(flat, size=max_spikes, fill_value=flat.shape[0])
    n = spikes.shape[1]
    valid = pos < flat.shape[0]
    record = SpikeRecord(
        jnp.where(valid, times[jnp.minimum(pos // n, times.shape[0] - 1)], jnp.inf),
        jnp.where(valid, pos % n, -1).astype(jnp.int32),
        count,
    )
    return eqx.error_if(
        record, count > max_spikes, f"More than max_spikes={max_spikes} spikes occurred; increase `max_spikes`."
    )
