"""Turn a `Config` into the objects a run needs: network, loss, optimiser (the data: `eventax.data.load_dataset`)."""

from __future__ import annotations

import inspect
import re

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import neuron_models, surrogates
from .._structure import import_path
from ..config import ConfigError, LossConfig, ModelConfig, OptimConfig
from ..evnn import EvNN, FFEvNN
from ..fixed_step import FixedStepNN
from ..optim import keep_params_in_range, manhattan
from ..losses import ActivityRegulariser, Loss, StateLoss, TTFSLoss

_WRAPPERS = {"AMOS": neuron_models.AMOS, "Refractory": neuron_models.Refractory}
_STATE_READOUTS = ("max", "integral", "exp_integral")


def neuron_class(name: str, key: str = "model.neuron"):
    """`"LIF"` -> `eventax.LIF`; `"AMOS(Refractory(QIF))"` -> the wrapped class;
    `"my_neurons:AdEx"` -> the class `AdEx` of the importable module `my_neurons`
    (wrapped too: `"AMOS(my_neurons:AdEx)"`)."""
    m = re.fullmatch(r"\s*(\w+)\s*\((.*)\)\s*", name)
    if m:
        wrapper, inner = m.groups()
        if wrapper not in _WRAPPERS:
            raise ConfigError(f"`{key}`: unknown wrapper {wrapper!r}; choose from {sorted(_WRAPPERS)}.")
        return _WRAPPERS[wrapper](neuron_class(inner, key))
    if ":" in name:
        return _imported_class(name.strip(), key)
    cls = getattr(neuron_models, name.strip(), None)
    if not (inspect.isclass(cls) and issubclass(cls, neuron_models.NeuronModel)) or cls is neuron_models.NeuronModel:
        models = [n for n in neuron_models.__all__ if n not in ("NeuronModel", "Constant", "MultiNeuronModel", "RefractoryState")]
        models = [n for n in models if n not in _WRAPPERS and n != "with_trainable"]
        raise ConfigError(f"`{key}`: unknown neuron model {name!r}; choose from {models}.")
    return cls


def _imported_class(path: str, key: str):
    """The `NeuronModel` subclass at `"package.module:Class"`."""
    try:
        cls = import_path(path)
    except ImportError as e:
        raise ConfigError(f"`{key}`: {e}") from None
    if not (inspect.isclass(cls) and issubclass(cls, neuron_models.NeuronModel)):
        raise ConfigError(f"`{key}`: {path!r} is {cls!r}, not a subclass of eventax.NeuronModel.")
    return cls


def build_network(cfg: ModelConfig, in_size: int, n_out: int, key) -> EvNN | FixedStepNN:
    """A feed-forward `FFEvNN` (or, with `recurrent`, an `EvNN` with one recurrent
    hidden layer) of `cfg.neuron` with `n_out` outputs of `cfg.output_neuron`;
    with `mode = "surrogate"` that network's `FixedStepNN`. A model keyword or value
    that the model refuses is a `ConfigError` (the model's message, e.g. the unknown
    keyword with its closest match)."""
    try:
        net = _build_evnn(cfg, in_size, n_out, key)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"`model` ({cfg.neuron}): {e}") from e
    if cfg.mode == "event":
        return net
    if cfg.mode != "surrogate":
        raise ConfigError(f"`model.mode` must be 'event' or 'surrogate'; got {cfg.mode!r}.")
    surrogate = getattr(surrogates, cfg.surrogate, None)
    if not (inspect.isclass(surrogate) and issubclass(surrogate, surrogates.Surrogate)):
        raise ConfigError(
            f"`model.surrogate` must name a class of eventax.surrogates {surrogates.__all__}; "
            f"got {cfg.surrogate!r}."
        )
    try:
        return FixedStepNN(
            net, cfg.dt, surrogate=surrogate(**cfg.surrogate_params),
            solver=net.solver if cfg.solver else dfx.Euler(),
            reset=cfg.reset, detach_reset=cfg.detach_reset,
        )
    except (TypeError, ValueError) as e:
        raise ConfigError(f"`model` (surrogate mode): {e}") from e


def _solver_settings(cfg: ModelConfig) -> dict:
    """The `EvNN` solver keywords the config sets (the others: the model's defaults)."""
    out = {}
    if cfg.solver:
        solver = getattr(dfx, cfg.solver, None)
        if not (inspect.isclass(solver) and issubclass(solver, dfx.AbstractSolver)):
            raise ConfigError(
                f"`model.solver` must name a Diffrax solver (e.g. 'Euler', 'Tsit5'); got {cfg.solver!r}."
            )
        out["solver"] = solver()
    if cfg.solver_stepsize is not None:
        out["solver_stepsize"] = cfg.solver_stepsize
    if (cfg.rtol is None) != (cfg.atol is None):
        raise ConfigError("`model.rtol` and `model.atol` go together (a PIDController); give both.")
    if cfg.rtol is not None:
        out["stepsize_controller"] = dfx.PIDController(rtol=cfg.rtol, atol=cfg.atol)
    if cfg.engine:
        out["engine"] = cfg.engine
    if cfg.layer_capacity is not None:
        out["layer_capacity"] = cfg.layer_capacity
    return out


def _build_evnn(cfg: ModelConfig, in_size: int, n_out: int, key) -> EvNN:
    hidden = tuple(cfg.hidden)
    if any(h < 1 for h in hidden):
        raise ConfigError(f"`model.hidden` sizes must be positive; got {list(hidden)}.")
    dtype = {"float32": jnp.float32, "float64": jnp.float64}.get(cfg.dtype)
    if dtype is None:
        raise ConfigError(f"`model.dtype` must be 'float32' or 'float64'; got {cfg.dtype!r}.")
    hidden_cls = neuron_class(cfg.neuron)
    out_cls = neuron_class(cfg.output_neuron, "model.output_neuron") if cfg.output_neuron else hidden_cls
    common = dict(
        max_solver_time=cfg.max_solver_time, key=key, dtype=dtype,
        max_event_steps=cfg.max_event_steps, **_solver_settings(cfg),
    )
    same = out_cls is hidden_cls and cfg.output_params == cfg.params
    layers = list(hidden) + [n_out]
    if same and not cfg.recurrent:
        return FFEvNN(layers, in_size, hidden_cls, **common, **cfg.params)
    kinds = [hidden_cls] * len(hidden) + [out_cls]
    kw = [cfg.params] * len(hidden) + [cfg.output_params or cfg.params]
    if not cfg.recurrent:
        return FFEvNN(
            layers, in_size, neuron_models.MultiNeuronModel, **common,
            neuron_models=kinds, neuron_model_kwargs=kw,
        )
    if len(hidden) != 1:
        raise ConfigError(f"`model.recurrent` needs exactly one hidden layer; got {list(hidden)}.")
    (h,) = hidden
    n = h + n_out
    wmask = np.zeros((n + in_size, n), bool)
    wmask[:h, :h] = True
    if not cfg.self_connections:
        wmask[np.arange(h), np.arange(h)] = False
    wmask[:h, h:] = True
    wmask[n:, :h] = True
    ids = np.repeat([0, 1], [h, n_out])
    return EvNN(
        neuron_models.MultiNeuronModel, n, in_size=in_size, wmask=wmask,
        output_neurons=np.arange(h, n), **common, neuron_models=[hidden_cls, out_cls],
        neuron_model_kwargs=[cfg.params, cfg.output_params or cfg.params], neuron_type_ids=ids,
    )


def build_loss(cfg: LossConfig, model: ModelConfig, start_channels=None, net=None) -> tuple[Loss, tuple]:
    """The loss and the activity regularisers of `cfg` (bound to `net`'s neurons if given)."""
    params = dict(cfg.params)
    if cfg.kind == "ttfs":
        params.setdefault("no_spike_time", model.max_solver_time)
        loss = _construct(TTFSLoss, params, "loss.params")
    elif cfg.kind in _STATE_READOUTS:
        params.setdefault("t_end", model.max_solver_time)
        if start_channels is not None:
            params.setdefault("start_channels", tuple(start_channels))
        loss = _construct(StateLoss, {"readout": cfg.kind, **params}, "loss.params")
    else:
        raise ConfigError(f"`loss.kind` must be 'ttfs' or one of {list(_STATE_READOUTS)}; got {cfg.kind!r}.")
    regs = tuple(_construct(ActivityRegulariser, r, f"loss.regularisers[{i}]") for i, r in enumerate(cfg.regularisers))
    if net is not None:
        regs = tuple(r.bind(net) for r in regs)
    return loss, regs


def build_optimiser(cfg: OptimConfig) -> optax.GradientTransformation:
    """Global-norm clipping, then AdamW; or the Manhattan rule (see `OptimConfig`)."""
    if not cfg.lr > 0:
        raise ConfigError(f"`optim.lr` must be positive; got {cfg.lr}.")
    if cfg.rule == "manhattan":
        if cfg.weight_range > 0:
            keep = keep_params_in_range(-cfg.weight_range, cfg.weight_range)
            return optax.chain(manhattan(cfg.lr), optax.masked(keep, _weights))
        return manhattan(cfg.lr)
    if cfg.rule != "adamw":
        raise ConfigError(f"`optim.rule` must be 'adamw' or 'manhattan'; got {cfg.rule!r}.")
    parts = [optax.clip_by_global_norm(cfg.clip_norm)] if cfg.clip_norm > 0 else []
    parts.append(optax.adamw(cfg.lr, b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay))
    return optax.chain(*parts)


_WEIGHTS = ("weights", "W_u", "W_r", "W_z")


def _weights(params):
    """Which leaves of `params` are synaptic weights (a model's `weights`, EGRU's gates')."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: getattr(path[-1], "name", None) in _WEIGHTS, params
    )


def _construct(cls, params, key):
    try:
        inspect.signature(cls).bind(**params)
    except TypeError as e:
        raise ConfigError(f"`{key}` does not fit {cls.__name__}: {e}.") from None
    return cls(**params)
