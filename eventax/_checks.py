"""Argument checks shared across the package: exceptions at the edge, errors as values inside jit."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def check_int(name: str, value, minimum: int) -> None:
    """Raise `ValueError` unless `value` is an integer (not a bool) `>= minimum`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")


def check_values(x, bad, msg: str):
    """Raise `ValueError(msg)` now if `x` is concrete and any `bad`; under `jit`,
    return `x` guarded by `eqx.error_if` (the same message, at run time)."""
    try:
        is_bad = bool(jnp.any(bad))
    except jax.errors.ConcretizationTypeError:
        return eqx.error_if(x, jnp.any(bad), msg)
    if is_bad:
        raise ValueError(msg)
    return x
