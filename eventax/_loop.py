"""A while loop whose reverse-mode derivative replays saved iterations.

`saved_while_loop(cond, body, init, max_steps=N)` computes `while cond(c): c = body(c)`
(at most `N` times). Differentiated in reverse mode, its forward pass stores the carry
that enters each iteration, and its backward pass walks them from the last to the
first, pulling the cotangent back through `jax.vjp` of one `body` at a time:

    c_bar_k = (d body / d c)(c_k)^T c_bar_{k+1},
    theta_bar += (d body / d theta)(c_k)^T c_bar_{k+1},

where `theta` are the arrays `body` closes over (a network's weights, a layer's input
times). Nothing is recomputed but the step being transposed, so the backward costs about
one forward plus its transpose, and the compiled program holds `body` three times (the
loop, its saving forward pass, the pullback); Equinox's checkpointed loop transforms it
several times over, which was most of a layered network's compile time.

Memory is one carry per saved iteration. Where `N` carries are too many, only the first
`saved` iterations are saved one by one; the rest, which a run rarely reaches, are saved
every `K = ceil(sqrt(N - saved))` iterations, and the backward pass reruns each such
segment (saving its iterations) just before pulling back through it: `saved + 2 K`
carries for one extra forward pass of the tail (a fourth copy of `body`).

Leaves that `body` only writes (a log whose every slot is set at most once and never
read in the loop) are `buffers`: they are not saved, because the transpose of a write
does not depend on what was overwritten.

Under `vmap` every sample takes as many iterations as the slowest, the finished ones
idle (`cond` false: the carry passes through unchanged), so the loop's count is one
scalar and the saved carries are written and read in place. Forward-mode
differentiation (`jax.jvp`) of the loop is not supported.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import jax.tree_util as jtu

_C = TypeVar("_C")


def saved_while_loop(
    cond: Callable[[_C], jax.Array],
    body: Callable[[_C], _C],
    init: _C,
    *,
    max_steps: int,
    saved: int | None = None,
    buffers: Callable[[_C], object] | None = None,
) -> _C:
    """`while cond(c): c = body(c)`, at most `max_steps` iterations, differentiable in
    reverse mode by replaying saved iterations (module docstring).

    `saved`: iterations saved one by one (default: all); later ones are recomputed.
    `buffers(c)` picks the leaves of the carry that `body` writes but never reads.
    """
    # (integer leaves carry no gradient, even where they come out of another loop)
    diff, rest = eqx.partition(jtu.tree_map(jnp.asarray, init), eqx.is_inexact_array)
    init = eqx.combine(diff, jax.lax.stop_gradient(rest))
    body = eqx.filter_closure_convert(body, init)
    # (nor does the condition, whatever its arrays do)
    arrays, rest = eqx.partition(eqx.filter_closure_convert(cond, init), eqx.is_array)
    cond = eqx.combine(jax.lax.stop_gradient(arrays), rest)
    mask = jtu.tree_map(lambda _: False, init)
    if buffers is not None:
        mask = eqx.tree_at(buffers, mask, replace_fn=lambda _: True)
    saved = max_steps if saved is None else max(1, min(saved, max_steps))
    tail = max_steps - saved
    segment = math.isqrt(tail - 1) + 1 if tail else 0
    out = _loop((body, init), cond, mask, (max_steps, saved, segment))
    # (and none comes out of it: a custom derivative's integer outputs would otherwise
    # carry nonzero float0 tangents into primitives that have no derivative rule)
    diff, rest = eqx.partition(out, eqx.is_inexact_array)
    return eqx.combine(diff, jax.lax.stop_gradient(rest))


def _guarded(cond, body):
    """`body` where `cond` holds, the identity elsewhere."""

    def step(c):
        going = cond(c)
        return jtu.tree_map(lambda new, old: jnp.where(going, new, old), body(c), c)

    return step


def _kept(c, mask):
    """The carry without its buffers (what is saved)."""
    return eqx.filter(c, mask, inverse=True)


def _put(stack, k, x, where=None):
    """Write `x` into slot `k` of the stacked carries `stack` (in place; where `where`
    is false: leave it)."""
    k = jnp.clip(k, 0, jtu.tree_leaves(stack)[0].shape[0] - 1)
    if where is None:
        return jtu.tree_map(lambda s, v: s.at[k].set(v), stack, x)
    return jtu.tree_map(lambda s, v: s.at[k].set(jnp.where(where, v, s[k])), stack, x)


def _take(stack, k):
    return jtu.tree_map(lambda s: s[jnp.clip(k, 0, s.shape[0] - 1)], stack)


def _empty(like, n):
    # (from `like`, so that under `vmap` the stack is batched from the start)
    return jtu.tree_map(lambda x: jnp.broadcast_to(jnp.zeros_like(x), (n,) + x.shape), like)


def _run(cond, body, init, max_steps, save=None, stacks=None):
    """Iterate `body` while some sample's `cond` holds; `save(i, c, stacks)` stores the
    carry entering iteration `i`. Returns `(iterations, carry, stacks)`."""
    step = _guarded(cond, body)

    def running(state):
        i, c, _ = state
        return (i < max_steps) & eqxi.unvmap_any(cond(c))

    def iteration(state):
        i, c, stacks = state
        return i + 1, step(c), None if save is None else save(i, c, stacks)

    return jax.lax.while_loop(running, iteration, (jnp.asarray(0), *_batched_together((init, stacks), body)))


def _batched_together(tree, *others):
    """`tree` unchanged in value, each array leaf made to depend on all of them and
    on the arrays of `others` (what the loop's body closes over).

    Under `vmap`, JAX batches a while loop by finding which carry leaves end up
    batched: one trace of the body per step by which batchedness spreads through
    the carry (4 for a layer's loop), each re-batching the loops nested inside.
    A carry that is batched as a whole from the start takes one. `where(False, x, x)`
    with a flag that depends on every leaf does it; XLA folds it away.
    """
    leaves = [x for x in jtu.tree_leaves((tree, others)) if eqx.is_array(x)]
    if not leaves:
        return tree
    flag = jnp.zeros((), bool)
    for x in leaves:
        flag = flag | jnp.where(jnp.any(x != x), False, False)
    return jtu.tree_map(lambda x: jnp.where(flag, x, x) if eqx.is_array(x) else x, tree)


@eqx.filter_custom_vjp
def _loop(vjp_arg, cond, mask, sizes):
    body, init = vjp_arg
    return _run(cond, body, init, sizes[0])[1]


@_loop.def_fwd
def _loop_fwd(perturbed, vjp_arg, cond, mask, sizes):
    body, init = vjp_arg
    max_steps, saved, segment = sizes
    kept = _kept(init, mask)

    def save(i, c, stacks):
        each, checkpoints = stacks
        c = _kept(c, mask)
        each = _put(each, i, c, (i < saved) if segment else None)
        if segment:
            into = (i - saved) // segment
            checkpoints = _put(checkpoints, into, c, (i >= saved) & ((i - saved) % segment == 0))
        return each, checkpoints

    checkpoints = _empty(kept, -(-(max_steps - saved) // segment)) if segment else None
    n, out, stacks = _run(cond, body, init, max_steps, save, (_empty(kept, saved), checkpoints))
    return out, (n, stacks, eqx.filter(out, mask))


@_loop.def_bwd
def _loop_bwd(residuals, grad_out, perturbed, vjp_arg, cond, mask, sizes):
    n, (each, checkpoints), written = residuals
    body, init = vjp_arg
    max_steps, saved, segment = sizes
    # cotangents of the carry's inexact leaves (zeros where the output was not used)
    ct = jtu.tree_map(
        lambda g, x: (jnp.zeros_like(x) if g is None else g) if eqx.is_inexact_array(x) else None,
        grad_out, init, is_leaf=lambda g: g is None,
    )
    theta, theta_static = eqx.partition(body, perturbed[0])
    step = _guarded(cond, body)

    def pullback(c, ct_next):
        c_diff, c_static = eqx.partition(c, eqx.is_inexact_array)

        def f(c_diff, theta):
            out = _guarded(cond, eqx.combine(theta, theta_static))(eqx.combine(c_diff, c_static))
            return eqx.filter(out, eqx.is_inexact_array)

        return jax.vjp(f, c_diff, theta)[1](ct_next)

    def rerun(i, recent):
        """The segment holding iteration `i >= saved`, rerun from its checkpoint when
        `i` is the last iteration of the run or of its segment (no work otherwise)."""
        start = saved + (i - saved) // segment * segment
        due = (i >= saved) & ((i == n - 1) | ((i - saved) % segment == segment - 1))
        length = jnp.where(due, i + 1 - start, 0)

        def again(state):
            j, c, recent = state
            return j + 1, step(c), _put(recent, j, _kept(c, mask))

        first = eqx.combine(_take(checkpoints, (i - saved) // segment), written)
        return jax.lax.while_loop(lambda s: s[0] < length, again, (jnp.asarray(0), first, recent))[2]

    def iteration(state):
        i, ct_c, ct_theta, recent = state
        i = i - 1
        c = _take(each, i)
        if segment:
            recent = rerun(i, recent)
            c = jtu.tree_map(
                lambda a, b: jnp.where(i >= saved, a, b), _take(recent, (i - saved) % segment), c
            )
        ct_prev, ct_theta_i = pullback(eqx.combine(c, written), ct_c)
        return i, ct_prev, jtu.tree_map(jnp.add, ct_theta, ct_theta_i), recent

    zeros = jtu.tree_map(jnp.zeros_like, theta)
    recent = _empty(_kept(init, mask), segment) if segment else None
    _, ct_init, ct_theta, _ = jax.lax.while_loop(
        lambda s: s[0] > 0, iteration, (n, *_batched_together((ct, zeros, recent), residuals, body))
    )
    return ct_theta, ct_init
