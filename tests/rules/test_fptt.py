"""`rules.fptt`: FPTT's regulariser as an Optax transformation, against its recursion in NumPy.

(Its use mid-trial with an online rule and `train_online`: test_online.py.)
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from eventax import rules

ALPHA = 0.7
SHAPES = {"w": (3, 2), "b": (2,)}


def _tree(seed):
    rng = np.random.default_rng(seed)
    return {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in SHAPES.items()}


def _np(tree):
    return {k: np.asarray(v, np.float64) for k, v in tree.items()}


def test_three_updates_follow_the_recursion():
    """out_n = g_n + alpha (theta_n - thetabar_n) - g_{n-1} / 2 with
    thetabar_n = (thetabar_{n-1} + theta_n) / 2 - g_{n-1} / (2 alpha), thetabar_0 = theta_0,
    g_{-1} = 0: the first update passes the gradient through. float32 transformation
    against float64 NumPy: 1e-5 relative to the values' scale (a few roundings of O(1))."""
    fptt = rules.fptt(ALPHA)
    thetas, grads = [_tree(s) for s in (0, 1, 2)], [_tree(s) for s in (3, 4, 5)]
    state = fptt.init(thetas[0])
    average, previous = _np(thetas[0]), {k: np.zeros(s) for k, s in SHAPES.items()}
    for n, (theta, g) in enumerate(zip(thetas, grads)):
        out, state = fptt.update(g, state, theta)
        t, gn = _np(theta), _np(g)
        if n > 0:
            average = {k: 0.5 * (average[k] + t[k]) - previous[k] / (2 * ALPHA) for k in SHAPES}
        expected = {k: gn[k] + ALPHA * (t[k] - average[k]) - 0.5 * previous[k] for k in SHAPES}
        for k in SHAPES:
            np.testing.assert_allclose(out[k], expected[k], rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(state.average[k], average[k], rtol=1e-5, atol=1e-5)
        if n == 0:
            for k in SHAPES:
                np.testing.assert_array_equal(out[k], g[k])
        previous = gn
    assert int(state.count) == 3


def test_chained_before_an_optimiser_under_jit():
    """`optax.chain(fptt, sgd(lr))` under jit, two steps with the same gradient `g`:
    theta_1 = theta_0 - lr g (the first step passes `g` through), then the step is
    -lr (g + alpha (theta_1 - thetabar_1) - g / 2), thetabar_1 = (theta_0 + theta_1) / 2 - g / (2 alpha)."""
    lr = 0.1
    opt = optax.chain(rules.fptt(ALPHA), optax.sgd(lr))
    theta0, g = _tree(0), _tree(1)
    step = jax.jit(opt.update)
    first, state = step(g, opt.init(theta0), theta0)
    theta1 = optax.apply_updates(theta0, first)
    second, _ = step(g, state, theta1)
    t0, t1, gn = _np(theta0), _np(theta1), _np(g)
    for k in SHAPES:
        np.testing.assert_allclose(first[k], -lr * gn[k], rtol=1e-6)
        average = 0.5 * (t0[k] + t1[k]) - gn[k] / (2 * ALPHA)
        np.testing.assert_allclose(second[k], -lr * (0.5 * gn[k] + ALPHA * (t1[k] - average)), rtol=1e-5, atol=1e-6)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="alpha"):
        rules.fptt(0.0)
    fptt = rules.fptt()
    with pytest.raises(ValueError, match="parameters"):
        fptt.update(_tree(0), fptt.init(_tree(0)))
