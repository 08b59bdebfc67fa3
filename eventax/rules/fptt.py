"""FPTT (Kag & Saligrama 2021): forward propagation through time, as an Optax transformation."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Int


class FPTTState(NamedTuple):
    average: optax.Params  # the running average thetabar_n
    previous: optax.Updates  # the previous gradient g_{n-1}
    count: Int[Array, ""]  # updates so far


def fptt(alpha: float = 0.5) -> optax.GradientTransformation:
    r"""FPTT's dynamic regulariser, chained before an optimiser:
    `optax.chain(rules.fptt(0.5), optax.adam(1e-3))`.

    With `g_n` the incoming gradient of the `n`-th update (an online rule's, summed
    over its update interval, or any other) at the parameters `theta_n`,

        thetabar_n = (thetabar_{n-1} + theta_n) / 2 - g_{n-1} / (2 alpha)    (thetabar_0 = theta_0)
        out_n      = g_n + alpha (theta_n - thetabar_n) - g_{n-1} / 2         (g_{-1} = 0),

    the gradient of `alpha/2 |theta - thetabar_n - g_{n-1}/(2 alpha)|^2` added to `g_n`
    (`g_n` taken at `theta_n`, as the algorithm is used in practice). Pulling the
    parameters towards their running average keeps frequent online updates of a
    recurrent network stable. State: `thetabar` and `g_{n-1}`, `2 P` numbers,
    independent of the sequence length. Needs `params` in `update`.
    """
    if not alpha > 0:
        raise ValueError(f"`alpha` must be positive; got {alpha}.")

    def init(params):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return FPTTState(params, zeros, jnp.zeros((), jnp.int32))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("fptt needs the parameters: `optimizer.update(grads, state, params)`.")
        first = state.count == 0
        average = jax.tree_util.tree_map(
            lambda a, w, p: jnp.where(first, a, 0.5 * (a + w) - p / (2.0 * alpha)), state.average, params, state.previous
        )
        out = jax.tree_util.tree_map(
            lambda g, w, a, p: g + alpha * (w - a) - 0.5 * p, updates, params, average, state.previous
        )
        return out, FPTTState(average, updates, state.count + 1)

    return optax.GradientTransformation(init, update)
