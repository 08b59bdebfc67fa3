"""Surrogates: Heaviside forward; their derivative, in forward and reverse mode, is the formula."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eventax import surrogates as sg

X = np.linspace(-3.0, 3.0, 601)

# The formulas, written independently of the implementation.
CASES = [
    (sg.FastSigmoid(slope=10.0), lambda x: 1.0 / (1.0 + 10.0 * np.abs(x)) ** 2, 2.0 / 10.0),
    (sg.Arctan(slope=2.0), lambda x: 1.0 / (1.0 + (np.pi * x) ** 2), 1.0),
    (sg.Sigmoid(slope=4.0), lambda x: 4.0 * np.exp(-4.0 * x) / (1.0 + np.exp(-4.0 * x)) ** 2, 1.0),
    (sg.Triangular(slope=2.0), lambda x: np.maximum(0.0, 2.0 - 4.0 * np.abs(x)), 1.0),
    (sg.StraightThrough(), lambda x: np.ones_like(x), None),
]


@pytest.mark.parametrize("surrogate, formula, area", CASES, ids=lambda c: type(c).__name__)
def test_forward_is_heaviside_and_derivative_is_the_formula(surrogate, formula, area):
    x = jnp.asarray(X, jnp.float32)
    np.testing.assert_array_equal(surrogate(x), (X >= 0).astype(np.float32))
    # reverse mode, elementwise
    grad = jax.vmap(jax.grad(surrogate))(x)
    np.testing.assert_allclose(grad, formula(X), rtol=1e-5, atol=1e-7)
    # forward mode with a random tangent equals the reverse-mode vector-Jacobian product
    tangent = jnp.asarray(np.random.default_rng(0).normal(size=X.shape), jnp.float32)
    _, jvp = jax.jvp(surrogate, (x,), (tangent,))
    _, vjp_fn = jax.vjp(surrogate, x)
    np.testing.assert_allclose(jvp, vjp_fn(tangent)[0], rtol=1e-6)
    np.testing.assert_allclose(jvp, formula(X) * np.asarray(tangent), rtol=1e-5, atol=1e-7)
    if area is not None:  # integral of the pseudo-derivative over a wide range
        wide = np.linspace(-200.0, 200.0, 400_001)
        d = np.asarray(surrogate.derivative(jnp.asarray(wide, jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)))
        assert np.trapezoid(d, wide) == pytest.approx(area, rel=2e-2)


def test_second_order_and_under_jit_vmap():
    s = sg.Sigmoid(slope=3.0)
    f = jax.jit(jax.vmap(jax.grad(lambda x: s(x) * x)))
    x = jnp.array([-0.5, 0.2])
    # d/dx [H(x) x] = H'(x) x + H(x)
    expected = 3 * jax.nn.sigmoid(3 * x) * (1 - jax.nn.sigmoid(3 * x)) * x + (x >= 0)
    np.testing.assert_allclose(f(x), expected, rtol=1e-6)


def test_user_surrogate_in_a_few_lines():
    class Gaussian(sg.Surrogate):
        width: float = eqx.field(static=True, default=0.5)

        def derivative(self, x):
            return jnp.exp(-0.5 * (x / self.width) ** 2) / (self.width * jnp.sqrt(2 * jnp.pi))

    g = jax.grad(Gaussian())(0.0)
    assert g == pytest.approx(1 / (0.5 * np.sqrt(2 * np.pi)), rel=1e-6)


@pytest.mark.parametrize("cls", [sg.FastSigmoid, sg.Arctan, sg.Sigmoid, sg.Triangular])
def test_bad_slope_is_named(cls):
    with pytest.raises(ValueError, match="slope"):
        cls(slope=0.0)
