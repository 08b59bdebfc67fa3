"""Construction helpers shared by the built-in models: parameters and initial weights."""

from __future__ import annotations

from collections.abc import Iterable

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
    shape = (n_neurons + in_size, n_neurons)
    wmask = np.asarray(wmask)
    if wmask.shape != shape:
        raise ValueError(
            f"`wmask` must have shape (n_neurons + in_size, n_neurons) = {shape}; got {wmask.shape}."
        )
    return wmask != 0


def init_weights(key, wmask, dtype, *, wlim=None, wmean=0.0, init_weights=None, fan_in_mode=None):
    """Weights of shape `(n_neurons + in_size, n_neurons)`, zero where `wmask` is.

    `init_weights` (scalar or full array) wins; otherwise uniform on
    `wmean ± wlim/2`, scaled per postsynaptic neuron by `1/sqrt(fan_in)`
    (`fan_in_mode="sqrt"`) or `1/fan_in` (`"linear"`).
    """
    mask = np.asarray(wmask, dtype=bool)
    if init_weights is not None:
        w = np.broadcast_to(np.asarray(init_weights, dtype=np.dtype(dtype)), mask.shape)
        return jnp.asarray(w * mask, dtype=dtype)
    if wlim is None:
        raise ValueError("Set `wlim` (width of the uniform weight init) or `init_weights`.")
    if fan_in_mode not in (None, "sqrt", "linear"):
        raise ValueError(f"`fan_in_mode` must be None, 'sqrt' or 'linear'; got {fan_in_mode!r}.")
    w = jax.random.uniform(key, mask.shape, dtype, wmean - wlim / 2, wmean + wlim / 2)
    fan_in = np.maximum(mask.sum(axis=0), 1)
    scale = {None: np.ones_like(fan_in, float), "sqrt": 1 / np.sqrt(fan_in), "linear": 1 / fan_in}
    return w * jnp.asarray(scale[fan_in_mode] * mask, dtype=dtype)


def init_bias(key, n_neurons, dtype, *, blim=None, bmean=0.0, init_bias=None):
    """Bias currents of shape `(n_neurons,)`: `init_bias`, else uniform `bmean ± blim/2`, else 0."""
    if init_bias is not None:
        b = np.broadcast_to(np.asarray(init_bias, dtype=np.dtype(dtype)), (n_neurons,))
        return jnp.asarray(b, dtype=dtype)
    if blim is None:
        return jnp.full((n_neurons,), bmean, dtype=dtype)
    return jax.random.uniform(key, (n_neurons,), dtype, bmean - blim / 2, bmean + blim / 2)
