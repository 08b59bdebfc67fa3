"""`eventax.optim`: the Manhattan rule and its conductance-bounded form, as Optax
transformations."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import eventax as ex
from eventax.optim import bounded_manhattan, keep_params_in_range, manhattan


def test_manhattan_steps_by_the_sign_of_the_gradient():
    f32 = jnp.float32  # (explicit: another test of the worker may have left x64 on)
    params = {"w": jnp.array([0.5, -0.2, 0.0, 1.0], f32), "b": jnp.array(0.3, f32)}
    grads = {"w": jnp.array([2.0, -1e-9, 0.0, -3.0], f32), "b": jnp.array(-0.7, f32)}
    opt = manhattan(0.1)
    updates, _ = opt.update(grads, opt.init(params), params)
    np.testing.assert_array_equal(updates["w"], np.float32([-0.1, 0.1, 0.0, 0.1]))
    np.testing.assert_array_equal(updates["b"], np.float32(0.1))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_a_bounded_update_never_leaves_the_range(dtype, x64):
    """500 random steps of random sizes (up to 10x the range), random gradients and
    per-entry ranges: every parameter stays in its range after every step, exactly
    (no rounding excursion), and inside the range a step is the plain sign step up to
    the rounding of `w + u` (|w| <= 2: 4 eps absolute)."""
    rng = np.random.default_rng(0)
    lower = jnp.asarray(rng.uniform(-2.0, -1e-3, 64), dtype)
    upper = jnp.asarray(rng.uniform(1e-3, 2.0, 64), dtype)
    w = jnp.asarray(rng.uniform(-1.0, 1.0, 64), dtype)
    w = jnp.clip(w, lower, upper)
    for step in range(500):
        lr = float(rng.choice([1e-7, 1e-3, 0.3, 20.0]))
        opt = bounded_manhattan(lr, lower, upper)
        g = jnp.asarray(rng.normal(size=64), dtype)
        u, _ = opt.update(g, opt.init(w), w)
        new = optax.apply_updates(w, u)
        assert new.dtype == dtype
        assert bool(jnp.all((new >= lower) & (new <= upper))), step
        free = (w - lr * jnp.sign(g) >= lower) & (w - lr * jnp.sign(g) <= upper)
        np.testing.assert_allclose(np.asarray(u)[free], -lr * np.sign(np.asarray(g))[free], rtol=0,
                                   atol=4 * float(jnp.finfo(dtype).eps))
        w = new


def test_on_a_network_the_weights_alone_stay_in_range():
    """`optax.masked` applies the bounds to the weights only: after an exact-gradient
    step of a small spiking network the weights (drawn up to ~2.5) lie in [-0.5, 0.5],
    some on its boundary, while the bias moved by the plain step 0.4."""
    net = ex.FFEvNN([4, 2], 3, ex.LIF, 20.0, key=jax.random.PRNGKey(0), init_bias=0.6, wmean=3.0, wlim=2.0)
    x = jnp.array([[1.0], [2.0], [3.0]])
    params = eqx.filter(net, eqx.is_inexact_array)
    mask = jax.tree.map(lambda _: False, params)
    mask = eqx.tree_at(lambda p: p.neuron_model.weights, mask, True)
    opt = optax.chain(optax.masked(bounded_manhattan(0.4, -0.5, 0.5), mask),
                      optax.masked(manhattan(0.4), jax.tree.map(lambda m: not m, mask)))
    grads = eqx.filter_grad(lambda n: jnp.sum(jnp.where(jnp.isinf(t := n.ttfs(x)), 20.0, t)))(net)
    updates, _ = opt.update(grads, opt.init(params), params)
    new = eqx.apply_updates(net, updates)
    w = np.asarray(new.neuron_model.weights)
    assert np.all((w >= -0.5) & (w <= 0.5)) and np.any(np.abs(w) == 0.5)
    assert np.any(np.abs(np.asarray(new.neuron_model.ic) - 0.6) == pytest.approx(0.4))


def test_the_range_needs_the_parameters():
    opt = keep_params_in_range(0.0, 1.0)
    with pytest.raises(ValueError, match="needs the parameters"):
        opt.update(jnp.ones(3), opt.init(jnp.ones(3)))
