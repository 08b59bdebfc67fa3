"""FPTT (Kag & Saligrama 2021): forward propagation through time, a dynamic regulariser."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PyTree

from .base import OnlineRule


class FPTT(OnlineRule):
    r"""FPTT on top of an online rule: each update also pulls `theta` to a running average.

    With `g_n` the wrapped rule's gradient over the `n`-th update interval,

        grad_n  = g_n + alpha (theta_n - thetabar_n) - g_{n-1} / 2
                  (the gradient of  alpha/2 |theta - thetabar_n - g_{n-1}/(2 alpha)|^2)
        thetabar_{n+1} = (thetabar_n + theta_{n+1}) / 2 - g_n / (2 alpha)

    (`g_n` is the rule's gradient at `theta_n`, as the algorithm is used in
    practice, not re-evaluated at `theta_{n+1}`). The regulariser keeps the
    trajectory of per-step updates close to its average, which is what makes
    frequent online updates of a recurrent network stable. Traces and the
    per-step gradient are those of `rule`; `thetabar` and `g_{n-1}` add
    `2 P` numbers of memory, independent of the sequence length.
    """

    rule: OnlineRule
    alpha: float = eqx.field(static=True, default=0.5)
    average: PyTree | None = None
    previous: PyTree | None = None

    def __check_init__(self):
        if not isinstance(self.rule, OnlineRule) or isinstance(self.rule, FPTT):
            raise ValueError(f"`rule` must be an online rule (not FPTT); got {type(self.rule).__name__}.")
        if not self.alpha > 0:
            raise ValueError(f"`alpha` must be positive; got {self.alpha}.")

    def prepare(self, net):
        params = eqx.filter(net, eqx.is_inexact_array)
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return FPTT(self.rule.prepare(net), self.alpha, params, zeros)

    def init(self, net, loss):
        return self.rule.init(net, loss)

    def step(self, net, loss, traces, t, x_k, label):
        return self.rule.step(net, loss, traces, t, x_k, label)

    prepared = property(lambda self: self.average is not None)

    def gradient(self, net, x, labels, loss):
        if not self.prepared:
            return self.prepare(net).gradient(net, x, labels, loss)
        grads, value = self.rule.gradient(net, x, labels, loss)
        return self.regularise(net, grads), value

    def regularise(self, net, grads):
        params = eqx.filter(net, eqx.is_inexact_array)
        return jax.tree_util.tree_map(
            lambda g, w, a, p: g + self.alpha * (w - a) - 0.5 * p, grads, params, self.average, self.previous
        )

    def after_update(self, old, new, grads):
        params = eqx.filter(new, eqx.is_inexact_array)
        average = jax.tree_util.tree_map(
            lambda a, w, g: 0.5 * (a + w) - g / (2.0 * self.alpha), self.average, params, grads
        )
        return FPTT(self.rule.after_update(old, new, grads), self.alpha, average, grads)
