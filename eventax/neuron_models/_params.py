"""Construction helpers shared by the built-in models: parameters and initial weights."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .base import Constant


def parameter(name, value, n_neurons, dtype, *, trainable=False, positive=False):
    """A scalar or per-neuron parameter, validated.

    Returns a JAX array when `trainable`, otherwise a `Constant`.
    Raises `ValueError` naming `name` for a wrong shape, a non-finite value, or a
    non-positive value where `positive` is required.
    """
    arr = np.asarray(value, dtype=np.dtype(dtype))
    if arr.shape not in ((), (n_neurons,)):
        raise ValueError(
            f"`{name}` must be a scalar or have shape ({n_neurons},); got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite; got {value!r}.")
    if positive and not np.all(arr > 0):
        raise ValueError(f"`{name}` must be positive (a time constant); got {value!r}.")
    if trainable:
        return jnp.broadcast_to(jnp.asarray(arr), (n_neurons,)).astype(dtype)
    return Constant(arr)


class Parameters:
    """A model's parameter maker: `par(name, value, positive=False)` is `parameter(...)`
    for `n_neurons` and `dtype`, trainable if `name` is among `trainable` (which must
    name only parameters in `allowed`)."""

    def __init__(self, n_neurons: int, dtype, trainable, allowed: Iterable[str]):
        self.n_neurons, self.dtype = n_neurons, dtype
        self.trainable = trainable_set(trainable, allowed)

    def __call__(self, name: str, value, positive: bool = False):
        return parameter(name, value, self.n_neurons, self.dtype, trainable=name in self.trainable, positive=positive)


def trainable_set(trainable, allowed: Iterable[str]) -> frozenset:
    """Validate the names a user asked to train."""
    names = frozenset((trainable,) if isinstance(trainable, str) else (trainable or ()))
    unknown = names - frozenset(allowed)
    if unknown:
        raise ValueError(
            f"`trainable` names unknown parameters {sorted(unknown)}; choose from {sorted(allowed)}."
        )
    return names


def check_wmask(wmask, n_neurons, in_size):
    """`wmask` as booleans, after checking its shape and that it holds booleans or 0/1."""
    shape = (n_neurons + in_size, n_neurons)
    wmask = np.asarray(wmask)
    if wmask.shape != shape:
        raise ValueError(
            f"`wmask` must have shape (n_neurons + in_size, n_neurons) = {shape}; got {wmask.shape}."
        )
    odd = wmask[~np.isin(wmask, (0, 1))] if wmask.dtype != bool else wmask[:0]
    if odd.size:
        odd = odd.ravel()[0]
        raise ValueError(f"`wmask` must be boolean (or 0/1: a connection is there or not); got the value {odd!r}.")
    return wmask != 0


def draw_weights(key, wmask, dtype, *, wlim=None, wmean=0.0, init_weights=None, fan_in_mode=None, drive=0.0,
                 n_neurons=None):
    """Weights of shape `(n_neurons + in_size, n_neurons)`, zero where `wmask` is.

    `init_weights` (scalar or full array) wins; otherwise uniform on
    `wmean ± wlim/2`, scaled per postsynaptic neuron by `1/sqrt(fan_in)`
    (`fan_in_mode="sqrt"`) or `1/fan_in` (`"linear"`), plus `drive / n` on each
    of a neuron's `n` driving synapses, so that its incoming weights sum to `drive`
    on average whatever its fan-in. Driving synapses: all, in a feed-forward
    network (see `feed_forward`); else only those from the inputs, so that the
    recurrent ones stay centred on `wmean` (a positive recurrent drive runs away).
    (`n_neurons`: where the columns are several targets per neuron, e.g. dendrites,
    numbered neuron by neuron; default one per column.)
    """
    mask = np.asarray(wmask, dtype=bool)
    if init_weights is not None:
        w = np.broadcast_to(np.asarray(init_weights, dtype=np.dtype(dtype)), mask.shape)
        return jnp.asarray(w * mask, dtype=dtype)
    if wlim is None:
        raise ValueError("Set `wlim` (width of the uniform weight init) or `init_weights`.")
    if fan_in_mode not in (None, "sqrt", "linear"):
        raise ValueError(f"`fan_in_mode` must be None, 'sqrt' or 'linear'; got {fan_in_mode!r}.")
    w = jax.random.uniform(_needed(key, "weights"), mask.shape, dtype, wmean - wlim / 2, wmean + wlim / 2)
    fan_in = np.maximum(mask.sum(axis=0), 1)
    scale = {None: np.ones_like(fan_in, float), "sqrt": 1 / np.sqrt(fan_in), "linear": 1 / fan_in}
    w = w * jnp.asarray(scale[fan_in_mode] * mask, dtype=dtype)
    if drive:
        n = mask.shape[1] if n_neurons is None else n_neurons
        driven = mask.copy()
        if not feed_forward(mask[:n].reshape(n, n, -1).any(axis=-1)):
            driven[:n] = False
        w = w + jnp.asarray(drive * driven / np.maximum(driven.sum(axis=0), 1), dtype=dtype)
    return w


def feed_forward(square) -> bool:
    """Whether no connection goes from a neuron to itself or to one of lower index
    (`square`, the `(n_neurons, n_neurons)` part of a `wmask`, strictly upper
    triangular), so that the network has no loop; an `FFEvNN` numbers its layers
    in order and always is."""
    return not np.any(np.tril(np.asarray(square, bool)))


def draw_bias(key, n_neurons, dtype, *, blim=None, bmean=0.0, init_bias=None):
    """Bias currents of shape `(n_neurons,)`: `init_bias`, else uniform `bmean ± blim/2`, else 0."""
    if init_bias is not None:
        b = np.broadcast_to(np.asarray(init_bias, dtype=np.dtype(dtype)), (n_neurons,))
        return jnp.asarray(b, dtype=dtype)
    if blim is None:
        return jnp.full((n_neurons,), bmean, dtype=dtype)
    return jax.random.uniform(_needed(key, "bias"), (n_neurons,), dtype, bmean - blim / 2, bmean + blim / 2)


def _needed(key, what: str):
    """`key` for a random draw of `what`; a model built with `key=None` (as eventax
    0.1.0 allowed) needs none as long as every array is given."""
    if key is None:
        verb = "are" if what == "weights" else "is"
        raise ValueError(f"`key` is None, but the {what} {verb} drawn at random: pass a PRNG key, or `init_{what}`.")
    return key


@dataclasses.dataclass(frozen=True)
class SynapseInit:
    """How a current-based model draws its weights `(n_neurons + in_size, n_neurons)`
    and bias currents `ic` `(n_neurons,)`: the construction keywords every built-in
    model shares.

    | keyword | default | meaning |
    |---|---|---|
    | `wlim`, `wmean` | the model's scale, 0 | weights uniform on `wmean ± wlim/2` |
    | `fan_in_mode` | `"sqrt"` if `wlim` is unset | weight scale `1/sqrt(fan_in)` (or `"linear"`: `1/fan_in`) |
    | `drive` | the model's if none of `wlim`, `init_weights`, `wmean` is set; else 0 | mean sum of a neuron's input weights, added evenly (see `draw_weights`) |
    | `init_weights` | None | weights given (scalar or full array; wins over `wlim`) |
    | `blim`, `bmean` | None, 0 | bias uniform on `bmean ± blim/2` (else `bmean`) |
    | `init_bias` | None | bias currents given (scalar or `(n_neurons,)`) |
    """

    wlim: float | None = None
    wmean: float = 0.0
    init_weights: Any = None
    fan_in_mode: str | None = None
    blim: float | None = None
    bmean: float = 0.0
    init_bias: Any = None
    drive: float = 0.0

    @classmethod
    def of(cls, model: type, default_wlim: float, keywords: dict[str, Any], default_drive: float = 0.0) -> SynapseInit:
        """From a model constructor's remaining `keywords`; unset `wlim` and
        `init_weights` give `wlim = default_wlim` with the `"sqrt"` fan-in scale, and
        `drive = default_drive` unless `wmean` or `drive` is set: the model's default
        initialisation, which should make a small network spike on typical inputs.
        Raises `ValueError` naming any keyword that is neither the model's nor these."""
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(keywords) - set(known))
        if unknown:
            raise ValueError(unknown_keywords(model, unknown, known))
        init = cls(**keywords)
        if init.wlim is None and init.init_weights is None:
            init = dataclasses.replace(init, wlim=default_wlim, fan_in_mode=init.fan_in_mode or "sqrt")
            if not {"wmean", "drive"} & set(keywords):
                init = dataclasses.replace(init, drive=default_drive)
        return init

    def weights(self, key, wmask, dtype, n_neurons=None):
        return draw_weights(
            key, wmask, dtype, wlim=self.wlim, wmean=self.wmean, init_weights=self.init_weights,
            fan_in_mode=self.fan_in_mode, drive=self.drive, n_neurons=n_neurons,
        )

    def bias(self, key, n_neurons: int, dtype):
        return draw_bias(key, n_neurons, dtype, blim=self.blim, bmean=self.bmean, init_bias=self.init_bias)

    def draw(self, key, wmask, dtype):
        """`(weights, ic)`: the weights from `key`, the bias from `fold_in(key, 1)`."""
        bias_key = None if key is None else jax.random.fold_in(key, 1)
        return self.weights(key, wmask, dtype), self.bias(bias_key, wmask.shape[1], dtype)


_POSITIONAL = ("self", "key", "n_neurons", "in_size", "wmask")


def _generated(cls: type, init) -> bool:
    """Whether `init` is the dataclass-generated constructor of `cls` (it takes the fields)."""
    if not dataclasses.is_dataclass(cls):
        return False
    fields = [f.name for f in dataclasses.fields(cls) if f.init]
    return set(list(inspect.signature(init).parameters)[1:]) == set(fields)


def unknown_keywords(model: type, unknown: list[str], shared: list[str]) -> str:
    """The message for constructor keywords that `model` does not take, with close matches."""
    valid = []
    for cls in model.__mro__:  # (a wrapper's own keywords, then the wrapped model's)
        init = vars(cls).get("__init__")
        if init is None or _generated(cls, init):
            continue  # (a dataclass `__init__`, e.g. `CurrentSynapses`', takes fields such as `weights`)
        for p in inspect.signature(init).parameters.values():
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in _POSITIONAL + tuple(valid):
                valid.append(p.name)
    valid += shared
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, valid, n=1)
        hints.append(f"`{name}`" + (f" (did you mean `{close[0]}`?)" if close else ""))
    return f"{model.__name__} got unknown keyword(s) {', '.join(hints)}; it takes {', '.join(valid)}."
