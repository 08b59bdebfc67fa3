"""Backpropagation through time with surrogate gradients: the reference rule."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .base import LearningRule, rollout


class BPTT(LearningRule):
    """`dL/dtheta` by reverse-mode differentiation of `lax.scan` over `FixedStepNN.step`:

        dL/dtheta = sum_k (dL/dc_k) dF/dtheta |_k,
        dL/dc_{k-1} = (dL/dc_k) dF/dc_{k-1} + dl_{k-1}/dc_{k-1}

    with the spike's derivative replaced by the surrogate's. Exact for the
    fixed-step forward (every other rule is compared with it). Offline: the
    update exists only after the whole sequence. Cost per sample: time
    `O(T * step)`, memory `O(T * |c|)` for the stored states (`T` steps, `|c|`
    state numbers).
    """

    def gradient(self, net, x, labels, loss):
        def mean_loss(net):
            values, _ = jax.vmap(rollout, in_axes=(None, None, 0, 0))(net, loss, x, labels)
            return jnp.mean(values)

        value, grads = eqx.filter_value_and_grad(mean_loss)(net)
        return grads, value
