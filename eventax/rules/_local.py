"""Per-neuron Jacobians of the one-step transition, and which neuron owns each parameter.

Everything here is in the per-neuron view `Y = state_matrix(y)`, `(n, C)`. With
the incoming spikes held fixed, the transition is block-diagonal: neuron `j`'s
next state depends only on its own row. Its per-neuron output is stacked as

    Q_j = [y_j^- (C), S_j (1), y_j (C)]          (R = 2C + 1 rows)

(before the reset, the spike, after the reset).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .base import Problem


def outputs(prob: Problem, theta, y, s_in, t, x_k, Y):
    """`Q(Y)`, `(n, R)`, and the full step's `(y_k, S_k, y_k^-)` at `Y`."""
    model = prob.model
    y_new, s_new, y_pre = prob.step(theta, model.with_state_matrix(y, Y), s_in, t, x_k)
    q = jnp.concatenate([model.state_matrix(y_pre), s_new[:, None], model.state_matrix(y_new)], axis=1)
    return q, (y_new, s_new, y_pre)


def state_jacobian(prob: Problem, theta, y, s_in, t, x_k) -> jnp.ndarray:
    """`dQ_j/dY_j`, `(n, R, C)`: `C` forward passes with channel `c` of every neuron as tangent."""
    Y = prob.model.state_matrix(y)
    f = lambda Y: outputs(prob, theta, y, s_in, t, x_k, Y)[0]  # noqa: E731
    tangents = jnp.eye(Y.shape[1], dtype=Y.dtype)[:, None, :] * jnp.ones_like(Y)[None]
    cols = jax.vmap(lambda v: jax.jvp(f, (Y,), (v,))[1])(tangents)  # (C, n, R)
    return jnp.moveaxis(cols, 0, -1)


def parameter_jacobian(prob: Problem, theta, y, s_in, t, x_k) -> jnp.ndarray:
    """`sum_j dQ_j/dtheta`, `(P, R)`: `R` reverse passes, row `r` of every neuron as cotangent.

    Where each parameter entry moves one neuron only (see `owners`), entry `p`
    of row `r` is `dQ_{owner(p), r}/dtheta_p`.
    """
    Y = prob.model.state_matrix(y)
    q, vjp = jax.vjp(lambda th: outputs(prob, th, y, s_in, t, x_k, Y)[0], theta)
    cot = jnp.eye(q.shape[1], dtype=q.dtype)[:, None, :] * jnp.ones_like(q)[None]
    (rows,) = jax.vmap(vjp)(cot)  # (R, P)
    return rows.T


def _moved(prob: Problem) -> np.ndarray:
    """`(n, P)`: which neurons each parameter entry moves, from `dQ/dtheta` at a random
    state with every presynaptic row spiking (exact zeros are structural)."""
    net = prob.net
    y, _ = prob.initial()
    Y = prob.model.state_matrix(y)
    Y = Y + 0.1 * (1.0 + jnp.abs(Y)) * jax.random.normal(jax.random.PRNGKey(0), Y.shape, Y.dtype)
    s_in = jnp.ones((net.n_neurons,), Y.dtype)
    x_k = jnp.ones((net.in_size,), Y.dtype)
    t = jnp.asarray(net.t0 + net.dt, Y.dtype)
    # jitted: eager jacrev dispatches op by op (12 s on a small heterogeneous net; 2x faster compiled)
    jac = jax.jit(jax.jacrev(lambda th: outputs(prob, th, y, s_in, t, x_k, Y)[0]))(prob.theta)  # (n, R, P)
    return np.asarray(jnp.any(jac != 0, axis=1))


def active_entries(prob: Problem) -> np.ndarray:
    """Indices of the parameter entries that move any neuron (masked weights do not)."""
    return np.flatnonzero(_moved(prob).any(axis=0))


def owners(prob: Problem, rule: str) -> np.ndarray:
    """The neuron each parameter entry acts on, `(P,)` (`-1`: none), found by autodiff.

    Probes `dQ/dtheta` at a random state with every presynaptic row spiking.
    Raises `ValueError` if an entry moves several neurons (a shared parameter),
    naming the array. Call outside `jit`.
    """
    moved = _moved(prob)
    count = moved.sum(axis=0)
    if np.any(count > 1):
        p = int(np.flatnonzero(count > 1)[0])
        raise ValueError(
            f"{rule} needs per-neuron parameters (each entry acting on one neuron); "
            f"{_leaf_name(prob, p)} moves {int(count[p])} neurons at once (a shared parameter). "
            "Make it per-neuron or non-trainable, or use BPTT or RTRL."
        )
    return np.where(count == 0, -1, moved.argmax(axis=0)).astype(np.int32)


def _leaf_name(prob: Problem, p: int) -> str:
    params = prob.unravel(prob.theta)
    start = 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if p < start + leaf.size:
            return f"`{jax.tree_util.keystr(path)}` entry {np.unravel_index(p - start, leaf.shape)}"
        start += leaf.size
    return f"entry {p}"
