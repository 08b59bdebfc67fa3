"""Event-driven networks: `EvNN` (any connectivity) and `FFEvNN` (layered)."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, Float, PRNGKeyArray

from ._checks import check_int, check_values
from ._layered import Layered
from ._network import AbstractNetwork, forward
from ._simulate import EventLoop
from .fixed_step import FixedStepNN
from .neuron_models._params import check_wmask
from .neuron_models.base import Constant, NeuronModel
from .simulation import Recorders, Simulation, SpikeRecord


class EvNN(AbstractNetwork):
    """A network of event-driven neurons simulated exactly between events.

    Between events a Diffrax solver integrates `neuron_model.dynamics`; a
    Diffrax `Event` root-finds the first upward zero crossing of any neuron's
    `spike_condition`. The spiking neuron is reset and its spike enters the
    `SpikeBuffer`, which delivers it to each target after the axonal plus
    synaptic delay. `jax.grad` differentiates the spike times exactly (implicit
    function theorem on the root find).

    Connectivity: `wmask[k, j] != 0` connects presynaptic row `k` (neurons
    `0..n_neurons-1`, then inputs) to neuron `j`. Learnable: the neuron
    model's arrays, `delays` `(n_neurons + in_size, n_neurons)` and
    `axonal_delays` `(n_neurons + in_size,)` when given.
    """

    neuron_model: NeuronModel
    delays: Float[Array, "pre neurons"] | None
    axonal_delays: Float[Array, " pre"] | None
    wmask: Constant = eqx.field(static=True)
    output_indices: tuple[int, ...] = eqx.field(static=True)
    n_neurons: int = eqx.field(static=True)
    in_size: int = eqx.field(static=True)
    t0: float = eqx.field(static=True)
    max_solver_time: float = eqx.field(static=True)
    solver_stepsize: float = eqx.field(static=True)
    max_event_steps: int = eqx.field(static=True)
    buffer_capacity: int = eqx.field(static=True)
    segment_max_steps: int = eqx.field(static=True)
    checkpoints: int | None = eqx.field(static=True)
    output_no_spike_value: float = eqx.field(static=True)
    solver: dfx.AbstractSolver = eqx.field(static=True)
    stepsize_controller: dfx.AbstractStepSizeController = eqx.field(static=True)
    root_finder: Any = eqx.field(static=True)
    adjoint: dfx.AbstractAdjoint | None = eqx.field(static=True)
    layer_capacity: int | None = eqx.field(static=True)
    engine: str = eqx.field(static=True)
    dtype: Any = eqx.field(static=True)

    def __init__(
        self,
        neuron_model: type[NeuronModel] | NeuronModel,
        n_neurons: int,
        max_solver_time: float,
        in_size: int,
        key: PRNGKeyArray | None = None,
        t0: float = 0.0,
        wmask=None,
        init_delays=None,
        dlim: float | None = None,
        init_axonal_delays=None,
        axonal_dlim: float | None = None,
        output_neurons=None,
        input_neurons=None,
        buffer_capacity: int | None = None,
        max_event_steps: int = 1000,
        solver_stepsize: float = 0.001,
        output_no_spike_value: float = float("inf"),
        root_finder=None,
        stepsize_controller=None,
        solver=None,
        adjoint=None,
        dtype=jnp.float32,
        segment_max_steps: int = 64,
        checkpoints: int | None = None,
        layer_capacity: int | None = None,
        engine: str = "loop",
        **neuron_kwargs,
    ):
        check_int("n_neurons", n_neurons, 1)
        check_int("in_size", in_size, 0)
        check_int("max_event_steps", max_event_steps, 1)
        check_int("segment_max_steps", segment_max_steps, 1)
        if not max_solver_time > t0:
            raise ValueError(f"`max_solver_time` ({max_solver_time}) must exceed `t0` ({t0}).")
        if not solver_stepsize > 0:
            raise ValueError(f"`solver_stepsize` must be positive; got {solver_stepsize}.")
        dtype = jnp.dtype(dtype)
        if dtype == jnp.float64 and not jax.config.jax_enable_x64:
            raise ValueError(
                "`dtype=float64` needs `jax.config.update('jax_enable_x64', True)` first."
            )
        key = jax.random.PRNGKey(0) if key is None else key
        k_model, k_delay, k_axon = jax.random.split(key, 3)
        n_pre = n_neurons + in_size
        inputs_to = _index_mask("input_neurons", input_neurons, n_neurons)
        if wmask is None:
            wmask = np.ones((n_pre, n_neurons), bool)
            wmask[n_neurons:] = inputs_to[None, :]
        self.wmask = Constant(check_wmask(wmask, n_neurons, in_size))

        if inspect.isclass(neuron_model):
            neuron_model = neuron_model(
                key=k_model, n_neurons=n_neurons, in_size=in_size, wmask=wmask, dtype=dtype,
                **neuron_kwargs,
            )
        elif neuron_kwargs:
            raise ValueError(
                f"Neuron keyword arguments {sorted(neuron_kwargs)} were given with a model "
                "instance; pass the model class instead, or drop them."
            )
        if not isinstance(neuron_model, NeuronModel):
            raise ValueError(f"`neuron_model` must be a NeuronModel; got {type(neuron_model)}.")
        self.neuron_model = neuron_model
        self.delays = _init_delays("init_delays", init_delays, dlim, (n_pre, n_neurons), k_delay, dtype)
        self.axonal_delays = _init_delays(
            "init_axonal_delays", init_axonal_delays, axonal_dlim, (n_pre,), k_axon, dtype
        )
        outputs = _index_mask("output_neurons", output_neurons, n_neurons)
        self.output_indices = tuple(int(i) for i in np.flatnonzero(outputs))
        if not self.output_indices:
            raise ValueError("`output_neurons` selects no neuron.")

        if buffer_capacity is None:
            buffer_capacity = 4 * n_neurons + 16 if self.use_delays else n_neurons
        check_int("buffer_capacity", buffer_capacity, 1)
        self.n_neurons, self.in_size, self.t0 = n_neurons, in_size, float(t0)
        self.max_solver_time = float(max_solver_time)
        self.solver_stepsize = float(solver_stepsize)
        self.max_event_steps = max_event_steps
        self.buffer_capacity = buffer_capacity
        self.segment_max_steps = segment_max_steps
        self.checkpoints = checkpoints
        self.output_no_spike_value = float(output_no_spike_value)
        self.dtype = dtype
        self.solver = dfx.Euler() if solver is None else solver
        self.stepsize_controller = (
            dfx.ConstantStepSize() if stepsize_controller is None else stepsize_controller
        )
        self.root_finder = _root_finder(root_finder, dtype, max(abs(t0), abs(max_solver_time)))
        self.adjoint = adjoint
        if layer_capacity is not None:
            check_int("layer_capacity", layer_capacity, 1)
        self.layer_capacity = layer_capacity
        if engine not in ("auto", "layered", "loop"):
            raise ValueError(f"`engine` must be 'auto', 'layered' or 'loop'; got {engine!r}.")
        self.engine = engine
        if engine == "layered" and not self.layered:
            raise ValueError(
                "`engine='layered'` needs a network without recurrent connections, no "
                "`adjoint`, and a constant step size or a `PIDController` with its default "
                "(integral) coefficients and norm on an explicit Runge-Kutta solver with an "
                "error estimate (Heun, Bosh3, Tsit5, Dopri5, ...)."
            )

    @property
    def use_delays(self) -> bool:
        """Whether spikes arrive late: synaptic `delays` or `axonal_delays` are set
        (also eventax 0.1.0's name)."""
        return self.delays is not None or self.axonal_delays is not None

    @property
    def layered(self) -> bool:
        """Whether the layered engine can run this network (acyclic; constant steps,
        or adaptive ones it can take per neuron)."""
        return Layered().can_run(self)

    def _engine(self, recorders: Recorders):
        """Which engine runs: `engine="auto"` takes the layered one where it can run,
        except for runs that stop at the outputs' first spikes (and observe nothing
        after them) with adaptive steps. There the event loop stops the whole
        network at once, while the layered engine finishes every hidden layer first
        (yy-5-50-3 EIF, TTFS: the loop is 3.5x faster; over the whole trial the
        layered engine is 3-10x faster)."""
        if self.engine == "loop" or not self.layered:
            return EventLoop()
        adaptive = not isinstance(self.stepsize_controller, dfx.ConstantStepSize)
        stops_early = recorders.stop_at_first_output and recorders.obs_times is None
        return Layered() if self.engine == "layered" or not (stops_early and adaptive) else EventLoop()

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
        """One simulation that records several things at once (see `Simulation`).

        `obs_times`: observe the outputs there; `max_spikes > 0`: log every spike
        (an error if more occur); `train_length > 0`: keep each output's first
        spike times; `stop_at_first_output`: end the trial once every output has
        spiked and every `obs_times` entry is observed. Otherwise the trial ends
        at `until`, else at the last `obs_times` entry, else at `max_solver_time`.
        """
        check_int("max_spikes", max_spikes, 0)
        check_int("train_length", train_length, 0)
        x = self._inputs(in_spike_times)
        t_end = None if until is None else self._times("until", until).reshape(())
        if obs_times is not None:
            obs_times = self._times("obs_times", obs_times)
            if until is not None:
                obs_times = check_values(
                    obs_times, obs_times > t_end, "`obs_times` must not be later than `until`."
                )
            elif not stop_at_first_output:
                t_end = jnp.max(obs_times)
        recorders = Recorders(
            stop_at_first_output=stop_at_first_output, obs_times=obs_times,
            train_length=train_length, log_length=max_spikes,
        )
        out = self._engine(recorders).run(self, x, recorders, t_end)
        return Simulation(
            out.first_spike[jnp.asarray(self.output_indices)],
            None if obs_times is None else jnp.swapaxes(out.observations, 0, 1),
            SpikeRecord(out.log_times, out.log_neurons, out.log_count) if max_spikes else None,
            out.t,
            out.trains if train_length else None,
        )

    def fixed_step(self, dt: float, **kwargs):
        """This network in the fixed-step surrogate-gradient mode: `FixedStepNN(self, dt, ...)`."""
        return FixedStepNN(self, dt, **kwargs)


class FFEvNN(EvNN):
    """Layered feed-forward `EvNN`: inputs -> layers[0] -> ... -> layers[-1] (outputs)."""

    def __init__(
        self,
        layers,
        in_size: int,
        neuron_model,
        max_solver_time: float,
        key: PRNGKeyArray | None = None,
        max_event_steps: int = 1000,
        solver_stepsize: float | None = None,
        solver=None,
        engine: str | None = None,
        **kwargs,
    ):
        check_int("in_size", in_size, 1)  # (a feed-forward network is driven by its inputs)
        layers = [int(n) for n in layers]
        if not layers or min(layers) < 1:
            raise ValueError(f"`layers` must be a non-empty list of positive sizes; got {layers}.")
        for name in ("wmask", "output_neurons", "input_neurons"):
            if name in kwargs:
                raise ValueError(f"FFEvNN builds `{name}` from `layers`; use EvNN to set it.")
        n = sum(layers)
        wmask = np.zeros((n + in_size, n), bool)
        starts = np.cumsum([0] + layers)
        for a, b, c in zip(starts[:-2], starts[1:-1], starts[2:]):
            wmask[a:b, b:c] = True
        wmask[n:, : layers[0]] = True
        outputs = np.zeros(n, bool)
        outputs[-layers[-1] :] = True
        if _is_multi(neuron_model) and "neuron_type_ids" not in kwargs:
            n_models = len(kwargs.get("neuron_models", ()))
            if n_models != len(layers):
                raise ValueError(
                    f"MultiNeuronModel in FFEvNN: give one of `neuron_models` per layer "
                    f"({len(layers)}), or `neuron_type_ids`; got {n_models} models."
                )
            kwargs["neuron_type_ids"] = np.repeat(np.arange(len(layers)), layers)
        super().__init__(
            neuron_model, n, max_solver_time, in_size, key=key, wmask=wmask,
            output_neurons=outputs, max_event_steps=max_event_steps,
            **_settings(
                neuron_model, kwargs, solver=solver, solver_stepsize=solver_stepsize, engine=engine,
                stepsize_controller=kwargs.pop("stepsize_controller", None),
            ),
            **kwargs,
        )


# ---------------------------------------------------------------------- helpers


# The bundle an FFEvNN uses where neither the user nor the model's `network_defaults` say
# anything (a user's model, a wrapper): adaptive Tsit5 in the event loop, accurate for any
# smooth ODE (the layered engine asks more of a model, see `engine`).
_FF_DEFAULTS = {
    "solver": dfx.Tsit5(), "solver_stepsize": 0.5,
    "stepsize_controller": dfx.PIDController(rtol=1e-6, atol=1e-6), "engine": "loop",
}
# What completes a bundle, or the user's partial choice (`solver=Euler()` alone: constant steps).
_FILL = {"solver": dfx.Euler(), "solver_stepsize": 0.01, "stepsize_controller": None, "engine": "loop"}


def _settings(neuron_model, kwargs, **given) -> dict[str, Any]:
    """Solver settings: the user's, else the model's `network_defaults`, else
    `_FF_DEFAULTS`. Each default is one bundle (its step and engine belong to its
    solver): it applies only where the user gives no solver, step or controller; what
    a bundle or the user's partial choice leaves out comes from `_FILL`."""
    from .neuron_models.multi import agreed_defaults

    if _is_multi(neuron_model) and inspect.isclass(neuron_model):
        model = dict(agreed_defaults(kwargs.get("neuron_models", ())))
    else:
        model = dict(neuron_model.network_defaults)
    if any(given[k] is not None for k in ("solver", "solver_stepsize", "stepsize_controller")):
        model = {}  # the user chose the solver settings: nothing of a default bundle
    elif not model:
        model = _FF_DEFAULTS
    return {key: value if value is not None else model.get(key, _FILL[key]) for key, value in given.items()}


def _is_multi(model) -> bool:
    from .neuron_models.multi import MultiNeuronModel

    return isinstance(model, MultiNeuronModel) or (
        inspect.isclass(model) and issubclass(model, MultiNeuronModel)
    )


def _index_mask(name, value, n):
    if value is None:
        return np.ones(n, bool)
    arr = np.asarray(value)
    if arr.dtype == bool or (arr.shape == (n,) and set(np.unique(arr)) <= {0, 1} and arr.dtype != int):
        if arr.shape != (n,):
            raise ValueError(f"`{name}` as a mask must have shape ({n},); got {arr.shape}.")
        return arr.astype(bool)
    if arr.ndim != 1 or (arr.size and (arr.min() < 0 or arr.max() >= n)):
        raise ValueError(f"`{name}` must be a boolean mask of shape ({n},) or indices in [0, {n}).")
    mask = np.zeros(n, bool)
    mask[arr.astype(int)] = True
    return mask


def _init_delays(name, init, lim, shape, key, dtype):
    if init is None and lim is None:
        return None
    if init is None:
        if not lim > 0:
            raise ValueError(f"The delay limit for `{name}` must be positive; got {lim}.")
        return jax.random.uniform(key, shape, dtype, 0.0, lim)
    d = np.broadcast_to(np.asarray(init, dtype=np.dtype(dtype)), shape) if np.ndim(init) == 0 else np.asarray(init)
    if d.shape != shape:
        raise ValueError(f"`{name}` must have shape {shape}; got {d.shape}.")
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ValueError(f"`{name}` must be finite and non-negative.")
    return jnp.asarray(d, dtype)


def _root_finder(root_finder, dtype, t_scale):
    """Default Newton root finder; raise tolerances the dtype cannot resolve.

    Spike times near `t_scale` are only resolvable to a few ulp of `t_scale`; a
    Newton tolerance `atol + rtol*t` below that can never be met and would turn
    every spike into a root-finding failure. Such tolerances are raised to the
    floor `4 * eps * max(1, t_scale)` with a warning.
    """
    eps = float(jnp.finfo(dtype).eps)
    floor = 4 * eps * max(1.0, t_scale)
    if root_finder is None:
        return optx.Newton(rtol=4 * eps, atol=floor)
    if hasattr(root_finder, "atol") and hasattr(root_finder, "rtol"):
        atol, rtol = float(root_finder.atol), float(root_finder.rtol)
        if atol + rtol * t_scale < floor:
            warnings.warn(
                f"Root-finder tolerances (rtol={rtol}, atol={atol}) are below what {dtype} "
                f"resolves at t={t_scale}; atol raised to {floor:.2e}.",
                stacklevel=3,
            )
            root_finder = eqx.tree_at(lambda r: r.atol, root_finder, floor)
    return root_finder
