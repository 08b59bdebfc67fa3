"""Real-time recurrent learning: exact forward-mode gradients, small networks only."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Int

from . import _local
from .base import OnlineRule, Problem


class RTRL(OnlineRule):
    """Carries the sensitivity of the whole state to every parameter forward in time:

        M_k = dc_k/dtheta = (dF/dc_{k-1}) M_{k-1} + dF/dtheta,
        g_k = dl_k/dtheta = (dl_k/dc_{k-1}) M_{k-1} + dl_k/dtheta

    with `c = (per-neuron state, spikes)` and `l_k` the loss of step `k`. Each
    step pushes the `P` columns of `M` through the linearised step
    (`jax.linearize`, then `vmap` over columns), so `sum_k g_k` equals BPTT's
    gradient to rounding. Online and exact; the price is memory `O(|c| P)` per
    sample (independent of the sequence length `T`) and time `O(P)` step
    evaluations per step, `O(n^4)` for `n` all-to-all neurons. Only entries
    that act on some neuron get a column (`prepare` finds them; masked weights
    do not).
    """

    active: Int[Array, " A"] | None = None

    def prepare(self, net):
        return eqx.tree_at(lambda r: r.active, self, jnp.asarray(_local.active_entries(Problem(net, None))),
                           is_leaf=lambda x: x is None)

    prepared = property(lambda self: self.active is not None)

    def init(self, net, loss):
        prob = Problem(net, loss)
        y, s = prob.initial()
        size = prob.model.state_matrix(y).size + s.size
        self.check_prepared()
        return y, s, jnp.zeros((size, self.active.shape[0]), prob.theta.dtype)

    def step(self, net, loss, traces, t, x_k, label):
        self.check_prepared()
        prob = Problem(net, loss)
        y, s, sens = traces
        model = prob.model
        n_state = model.state_matrix(y).size

        def transition(c, theta):
            y_in = model.with_state_matrix(y, c[:n_state].reshape(-1, n_state // s.size))
            y_new, s_new, y_pre = prob.step(theta, y_in, c[n_state:], t, x_k)
            c_new = jnp.concatenate([model.state_matrix(y_new).ravel(), s_new])
            return (c_new, prob.step_loss(y_pre, t, label)), (y_new, s_new)

        c = jnp.concatenate([model.state_matrix(y).ravel(), s])
        (_, value), linear, (y_new, s_new) = jax.linearize(transition, c, prob.theta, has_aux=True)
        basis = jnp.eye(prob.theta.size, dtype=prob.theta.dtype)[self.active]
        d_c, d_l = jax.vmap(linear, in_axes=(1, 0), out_axes=(1, 0))(sens, basis)
        grads = jnp.zeros_like(prob.theta).at[self.active].set(d_l)
        return (y_new, s_new, d_c), prob.unravel(grads), value
