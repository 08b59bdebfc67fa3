"""`train_online`: parameter updates while the trial runs, every `every` grid steps."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PyTree

from .._checks import check_int
from ..fixed_step import FixedStepNN
from .base import OnlineRule, check_batch, step_counts
from .objective import StepLoss


class OnlineState(NamedTuple):
    """What online training carries from batch to batch."""

    net: FixedStepNN
    rule: OnlineRule
    opt_state: PyTree


def train_online(
    net: FixedStepNN,
    rule: OnlineRule,
    loss: StepLoss,
    optimizer: optax.GradientTransformation,
    batches: Iterable[tuple[Float[Array, "batch in_size K"], Int[Array, " batch"]]],
    *,
    every: int = 1,
    state: OnlineState | None = None,
) -> tuple[OnlineState, list[float]]:
    """Train `net` with an online rule, updating the parameters during each trial.

    For each batch (all samples step in lock-step), the rule's per-step
    gradients are averaged over the batch and summed over `every` grid steps;
    then the optimiser (with any transformation chained before it, e.g.
    `optax.chain(rules.fptt(0.5), optax.sgd(0.1))`) updates the parameters and
    `rule.after_update` sees the move (an interval left over at the end of the
    trial is applied too). Traces continue across updates within a trial and
    start afresh with each batch. With `every = n_steps` this is one update per
    batch with the rule's offline `gradient`.

    Returns the final `OnlineState` (pass it back as `state` to continue) and
    the mean loss of each batch.
    """
    if not isinstance(rule, OnlineRule):
        raise ValueError(f"`rule` must be an online rule (BPTT is offline); got {type(rule).__name__}.")
    check_int("every", every, 1)  # (grid steps per update)
    if state is None:
        state = OnlineState(net, rule.prepare(net), optimizer.init(eqx.filter(net, eqx.is_inexact_array)))
    losses = []
    for x, labels in batches:
        check_batch(x, labels, state.net)
        state, value = _online_batch(state, loss, optimizer, jnp.asarray(x), jnp.asarray(labels), every)
        losses.append(float(value))
    return state, losses


@eqx.filter_jit
def _online_batch(state: OnlineState, loss: StepLoss, optimizer, x, labels, every: int):
    net0 = state.net
    spike_steps = jax.vmap(net0.input_steps)(x)  # (batch, in_size, K): memory independent of n_steps
    params0, static = eqx.partition(net0, eqx.is_inexact_array)
    n_steps = net0.n_steps
    zero = jax.tree_util.tree_map(jnp.zeros_like, params0)

    def update(params, rule, opt_state, acc):
        old = eqx.combine(params, static)
        updates, opt_state = optimizer.update(acc, opt_state, params)
        params = eqx.apply_updates(params, updates)
        return params, rule.after_update(old, eqx.combine(params, static), acc), opt_state

    def body(carry, _):
        params, rule, opt_state, traces, acc, total, k = carry
        t = net0.time_of(k + 1)
        x_k = jax.vmap(step_counts, in_axes=(0, None, None))(spike_steps, k + 1, t.dtype)
        net = eqx.combine(params, static)
        traces, g, values = jax.vmap(rule.step, in_axes=(None, None, 0, None, 0, 0))(
            net, loss, traces, t, x_k, labels
        )
        acc = jax.tree_util.tree_map(lambda a, b: a + jnp.mean(b, axis=0), acc, g)
        due = ((k + 1) % every == 0) | (k + 1 == n_steps)
        params, rule, opt_state, acc = jax.lax.cond(
            due,
            lambda: (*update(params, rule, opt_state, acc), zero),
            lambda: (params, rule, opt_state, acc),
        )
        return (params, rule, opt_state, traces, acc, total + jnp.mean(values), k + 1), None

    traces = jax.vmap(lambda _: state.rule.init(net0, loss))(labels)
    zero_loss = jnp.zeros((), net0.dtype)
    carry = (params0, state.rule, state.opt_state, traces, zero, zero_loss, jnp.zeros((), jnp.int32))
    (params, rule, opt_state, _, _, total, _), _ = jax.lax.scan(body, carry, None, length=n_steps)
    return OnlineState(eqx.combine(params, static), rule, opt_state), total
