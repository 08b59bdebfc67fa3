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


# The messages of the value checks made at run time: a compiled forward function called
# from outside `jit` raises the failure of one of them as the `ValueError` it stands for.
VALUE_CHECKS: set[str] = set()


def check_values(x, bad, msg: str):
    """Raise `ValueError(msg)` now if `x` is concrete and any `bad`; under `jit`,
    return `x` guarded by `eqx.error_if` (the same message, at run time)."""
    try:
        is_bad = bool(jnp.any(bad))
    except jax.errors.ConcretizationTypeError:
        VALUE_CHECKS.add(msg)
        return eqx.error_if(x, jnp.any(bad), msg)
    if is_bad:
        raise ValueError(msg)
    return x
