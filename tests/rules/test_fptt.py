"""FPTT: the wrapped rule's gradient plus the dynamic regulariser, and its running average."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eventax import rules

from conftest import _gradient, params

ALPHA = 0.7


def _random_like(tree, seed):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(rng.normal(size=a.shape)) for a in leaves])


def test_fptt_gradient_is_the_rules_gradient_plus_the_regulariser(recurrent):
    """grad = g + alpha (theta - thetabar) - g_prev / 2, with g the wrapped rule's
    gradient (RTRL here, computed separately) and the sum done in NumPy. Right
    after `prepare` (thetabar = theta, g_prev = 0) it is g itself. The same
    compiled RTRL scan runs in both; 1e-12 relative allows for fusion."""
    net = recurrent.net
    g, _ = recurrent.grad(rules.RTRL())
    fresh = rules.FPTT(rules.RTRL(), ALPHA).prepare(net)
    theta = params(net)
    np.testing.assert_array_equal(params(fresh.average), theta)
    np.testing.assert_array_equal(params(fresh.previous), 0.0)
    bound, _ = _gradient(fresh, net, recurrent.x, recurrent.labels, recurrent.loss)
    np.testing.assert_allclose(bound, g, rtol=1e-12, atol=1e-15)

    average = _random_like(fresh.average, 0)
    previous = _random_like(fresh.previous, 1)
    moved = eqx.tree_at(lambda r: (r.average, r.previous), fresh, (average, previous))
    got, _ = _gradient(moved, net, recurrent.x, recurrent.labels, recurrent.loss)
    expected = g + ALPHA * (np.asarray(theta) - params(average)) - 0.5 * params(previous)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_after_update_moves_the_average(feedforward):
    """thetabar' = (thetabar + theta_new) / 2 - g / (2 alpha) and g_prev' = g,
    in NumPy on flat vectors (float64, a few operations: 1e-14)."""
    net = feedforward.net
    rule = rules.FPTT(rules.EProp(), ALPHA).prepare(net)
    average = _random_like(rule.average, 2)
    rule = eqx.tree_at(lambda r: r.average, rule, average)
    new = eqx.combine(_random_like(eqx.filter(net, eqx.is_inexact_array), 3), net)
    grads = _random_like(rule.average, 4)
    after = rule.after_update(net, new, grads)
    expected = 0.5 * (params(average) + params(new)) - params(grads) / (2 * ALPHA)
    np.testing.assert_allclose(params(after.average), expected, rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(params(after.previous), params(grads))
    assert isinstance(after.rule, rules.EProp) and after.alpha == ALPHA
    np.testing.assert_array_equal(after.rule.owner, rule.rule.owner)


def test_fptt_arguments_are_checked():
    with pytest.raises(ValueError, match="online rule"):
        rules.FPTT(rules.BPTT())
    with pytest.raises(ValueError, match="online rule"):
        rules.FPTT(rules.FPTT(rules.EProp()))
    with pytest.raises(ValueError, match="alpha"):
        rules.FPTT(rules.EProp(), alpha=0.0)
