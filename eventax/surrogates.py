"""Surrogate gradients: a Heaviside step forward, a smooth pseudo-derivative backward.

A `Surrogate` is a small module with one abstract method, `derivative(x)`: the
function that replaces the Heaviside's derivative (a Dirac delta) in every
derivative taken through `surrogate(x)`. Calling it returns `H(x) = [x >= 0]`.
The replacement is a custom JVP, so forward mode (`jax.jvp`) and reverse mode
(`jax.grad`, by transposition) see the same surrogate. A new surrogate is a
subclass with `derivative` (of `SlopedSurrogate` if it has a positive `slope`):

    class Gaussian(SlopedSurrogate):
        slope: float = eqx.field(static=True, default=5.0)

        def derivative(self, x):
            return self.slope / jnp.sqrt(jnp.pi) * jnp.exp(-(self.slope * x) ** 2)
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["Arctan", "FastSigmoid", "Sigmoid", "SlopedSurrogate", "StraightThrough", "Surrogate", "Triangular"]


class Surrogate(eqx.Module):
    """Abstract base: `H(x)` forward, `derivative(x)` in place of its derivative."""

    @abc.abstractmethod
    def derivative(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """The pseudo-derivative `dH/dx` used by every differentiation rule."""

    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """`H(x) = 1` where `x >= 0`, else `0`, in the dtype of `x`."""

        @jax.custom_jvp
        def heaviside(x):
            return (x >= 0).astype(x.dtype)

        @heaviside.defjvp
        def _jvp(primals, tangents):
            (x,), (dx,) = primals, tangents
            return heaviside(x), self.derivative(x) * dx

        return heaviside(jnp.asarray(x))


class SlopedSurrogate(Surrogate):
    """Abstract base of surrogates with a sharpness `slope` (> 0, checked)."""

    slope: eqx.AbstractVar[float]

    def __check_init__(self):
        if not float(self.slope) > 0:
            raise ValueError(f"`slope` must be positive; got {float(self.slope)}.")


class FastSigmoid(SlopedSurrogate):
    r"""SuperSpike (Zenke & Ganguli 2018): `H'(x) ~ 1 / (1 + slope |x|)^2`."""

    slope: float = eqx.field(static=True, default=25.0)

    def derivative(self, x):
        return 1.0 / (1.0 + self.slope * jnp.abs(x)) ** 2


class Arctan(SlopedSurrogate):
    r"""Derivative of `arctan(pi slope x / 2) / pi`: `H'(x) ~ (slope/2) / (1 + (pi slope x / 2)^2)`."""

    slope: float = eqx.field(static=True, default=2.0)

    def derivative(self, x):
        return 0.5 * self.slope / (1.0 + (0.5 * jnp.pi * self.slope * x) ** 2)


class Sigmoid(SlopedSurrogate):
    r"""Derivative of the logistic `sigma(slope x)`: `H'(x) ~ slope sigma(slope x) (1 - sigma(slope x))`."""

    slope: float = eqx.field(static=True, default=5.0)

    def derivative(self, x):
        # sigma(z) sigma(-z) == sigma(z) (1 - sigma(z)), accurate in both tails
        z = self.slope * x
        return self.slope * jax.nn.sigmoid(z) * jax.nn.sigmoid(-z)


class Triangular(SlopedSurrogate):
    r"""Triangle of half-width `1/slope` and unit area: `H'(x) ~ slope * max(0, 1 - slope |x|)`."""

    slope: float = eqx.field(static=True, default=1.0)

    def derivative(self, x):
        return self.slope * jnp.maximum(0.0, 1.0 - self.slope * jnp.abs(x))


class StraightThrough(Surrogate):
    r"""Straight-through estimator: `H'(x) ~ 1` (the identity's derivative)."""

    def derivative(self, x):
        return jnp.ones_like(x)
