"""Update rules for analog, on-device training, as Optax transformations: they apply to
exact, surrogate and learning-rule gradients alike and compose with `optax.chain`,
`optax.masked` (e.g. only the weights) and `optax.MultiSteps`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax


def manhattan(learning_rate: float) -> optax.GradientTransformation:
    """The Manhattan rule (Zamanidoost et al. 2015): every parameter moves by a fixed
    step along the sign of its gradient, `Δw = -learning_rate · sign(g)` (0 where
    `g = 0`), as one programming pulse of fixed size moves a memristor's conductance.
    Optax's `sign_sgd`."""
    return optax.sign_sgd(learning_rate)


def keep_params_in_range(lower: Any, upper: Any) -> optax.GradientTransformation:
    """Shortens each update so that the parameters stay in `[lower, upper]` (scalars, or
    pytrees shaped like the parameters): `u -> clip(w + u, lower, upper) - w`, and, where
    rounding of `w + u` would still leave the range, the update moved to the next
    float towards it. Needs `params` in `update`; parameters that start outside the
    range are moved onto its boundary."""

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("keep_params_in_range needs the parameters: call `update(updates, state, params)`.")
        lo, hi = _like(lower, params), _like(upper, params)
        return jax.tree.map(_inside, updates, params, lo, hi), state

    return optax.GradientTransformation(init, update)


def _like(bound, params):
    """`bound` (a scalar, or a pytree shaped like `params`) as one array per parameter."""
    if jax.tree.structure(bound) != jax.tree.structure(params):
        bound = jax.tree.map(lambda _: bound, params)
    return jax.tree.map(lambda b, p: jnp.broadcast_to(jnp.asarray(b, p.dtype), p.shape), bound, params)


def _inside(u, w, lo, hi):
    u = jnp.clip(w + u, lo, hi) - w
    u = jnp.where(w + u > hi, jnp.nextafter(u, -jnp.inf), u)
    return jnp.where(w + u < lo, jnp.nextafter(u, jnp.inf), u)


def bounded_manhattan(learning_rate: float, lower: Any, upper: Any) -> optax.GradientTransformation:
    """The Manhattan rule with the conductance range of a crossbar: fixed-size sign
    steps that stop at `[lower, upper]` (e.g. `±(g_max - g_min)` for a weight stored as
    the difference of two conductances in `[g_min, g_max]`). Apply it to the weights
    alone with `optax.masked`."""
    return optax.chain(manhattan(learning_rate), keep_params_in_range(lower, upper))
