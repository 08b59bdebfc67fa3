"""`train_online`: parameter updates during the trial, against offline gradients and a Python loop."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import eventax as ex
from eventax import rules

from conftest import ONLINE_RULES, inputs, params


@pytest.mark.parametrize("name", list(ONLINE_RULES))
def test_a_zero_learning_rate_leaves_the_network_unchanged(feedforward, name):
    """lr = 0 with an update at every grid step: the parameters come back
    bit-identical (a NaN or inf in any per-step gradient would break this)."""
    c = feedforward
    state, losses = ex.train_online(c.net, ONLINE_RULES[name](), c.loss, optax.sgd(0.0), [(c.x, c.labels)], every=1)
    np.testing.assert_array_equal(params(state.net), params(c.net))
    assert len(losses) == 1 and np.isfinite(losses[0])


def test_one_update_per_trial_is_the_offline_gradient_step(feedforward):
    """every = n_steps: theta - lr * grad with grad the rule's offline
    `gradient` (e-prop), and the reported loss its mean loss. The update adds the
    same sums in another order: 1e-12."""
    c, lr = feedforward, 0.3
    g, value = c.grad(rules.EProp())
    state, losses = ex.train_online(
        c.net, rules.EProp(), c.loss, optax.sgd(lr), [(c.x, c.labels)], every=c.net.n_steps,
    )
    np.testing.assert_allclose(params(state.net), params(c.net) - lr * g, rtol=0, atol=1e-12)
    np.testing.assert_allclose(losses, [value], rtol=1e-12)


def _python_loop(net, rule, loss, optimizer, batches, every):
    """What `train_online` promises, step by step: per-sample `rule.step`, the
    batch mean, summed over `every` steps (and the rest at the end of a trial),
    then the optimiser, `after_update`; traces restart per batch."""
    rule = rule.prepare(net)
    opt_state = optimizer.init(eqx.filter(net, eqx.is_inexact_array))
    step = eqx.filter_jit(
        lambda rule, net, traces, t, x_k, labels: jax.vmap(rule.step, in_axes=(None, None, 0, None, 0, 0))(
            net, loss, traces, t, x_k, labels
        )
    )
    for x, labels in batches:
        traces = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[rule.init(net, loss) for _ in labels])
        counts = jax.vmap(net.input_counts)(x)
        acc = None
        for k, t in enumerate(net.times):
            traces, g, _ = step(rule, net, traces, t, counts[:, k], labels)
            g = jax.tree_util.tree_map(lambda a: jnp.mean(a, axis=0), g)
            acc = g if acc is None else jax.tree_util.tree_map(jnp.add, acc, g)
            if (k + 1) % every == 0 or k + 1 == net.n_steps:
                p = eqx.filter(net, eqx.is_inexact_array)
                updates, opt_state = optimizer.update(acc, opt_state, p)
                new = eqx.combine(optax.apply_updates(p, updates), net)
                rule, net, acc = rule.after_update(net, new, acc), new, None
    return net, rule, opt_state


def test_updates_within_the_trial_match_a_python_loop(feedforward):
    """every = 6 on 20 steps (updates at steps 6, 12, 18 and the rest at 20), two
    batches, FPTT's regulariser chained before SGD with momentum, e-prop with
    adaptive feedback (so the regulariser's average and the feedback move mid-trial):
    the same as the loop above. The networks move (the rule sees changed weights
    within the trial); float64 with different fusion: 1e-10."""
    c = feedforward
    rule = rules.EProp(feedback="adaptive", decay=0.1)
    optimizer = optax.chain(rules.fptt(0.5), optax.sgd(0.5, momentum=0.5))
    batches = [(c.x, c.labels), (inputs(seed=1), jnp.array([1, 0, 1]))]
    state, _ = ex.train_online(c.net, rule, c.loss, optimizer, batches, every=6)
    net, loop_rule, loop_opt = _python_loop(c.net, rule, c.loss, optimizer, batches, every=6)
    assert np.abs(params(state.net) - params(c.net)).max() > 0.05
    np.testing.assert_allclose(params(state.net), params(net), rtol=0, atol=1e-10)
    assert int(state.opt_state[0].count) == 8  # (4 updates per trial)
    np.testing.assert_allclose(params(state.opt_state[0].average), params(loop_opt[0].average), rtol=0, atol=1e-10)
    np.testing.assert_allclose(state.rule.fb, loop_rule.fb, rtol=0, atol=1e-10)


def test_adaptive_feedback_follows_the_weight_updates(feedforward):
    """feedback="adaptive": B' = (1 - decay) B + (theta_new - theta) on the
    weight-matrix entries; other entries (biases) keep the network's values.
    A few float64 operations: 1e-14."""
    net, decay = feedforward.net, 0.25
    rule = rules.EProp(feedback="adaptive", decay=decay).prepare(net)
    delta = np.random.default_rng(0).normal(size=params(net).shape)
    _, unravel = jax.flatten_util.ravel_pytree(eqx.filter(net, eqx.is_inexact_array))
    new = eqx.combine(unravel(params(net) + delta), net)
    after = rule.after_update(net, new, None)
    mask, fb = np.asarray(rule.fb_mask), np.asarray(rule.fb)
    assert mask.any() and not mask.all()
    np.testing.assert_allclose(after.fb[mask], (1 - decay) * fb[mask] + delta[mask], rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(after.fb[~mask], fb[~mask])
    fixed = rules.EProp(feedback="random").prepare(net)
    np.testing.assert_array_equal(fixed.after_update(net, new, None).fb, fixed.fb)  # random: never moves


def test_train_online_arguments_are_checked(feedforward):
    c = feedforward
    batch = [(c.x, c.labels)]
    with pytest.raises(ValueError, match="online rule"):
        ex.train_online(c.net, rules.BPTT(), c.loss, optax.sgd(0.1), batch)
    for every in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="every"):
            ex.train_online(c.net, rules.RTRL(), c.loss, optax.sgd(0.1), batch, every=every)
    with pytest.raises(ValueError, match="labels"):
        ex.train_online(c.net, rules.RTRL(), c.loss, optax.sgd(0.1), [(c.x, c.labels[:2])])
    with pytest.raises(ValueError, match="in_size"):
        ex.train_online(c.net, rules.RTRL(), c.loss, optax.sgd(0.1), [(c.x[:, :1], c.labels)])
