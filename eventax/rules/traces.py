"""Local eligibility traces: the engine behind e-prop, OSTL, OTTT and RFLO."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, Float, Int

from . import _local
from .base import OnlineRule, Problem

_FEEDBACK = ("symmetric", "random", "adaptive")


class TraceRule(OnlineRule):
    r"""Abstract online rule: neuron-local eligibility traces times a learning signal.

    For parameter entry `p` acting on neuron `j` (its *owner*, found by autodiff
    in `prepare`), with the other neurons' spikes held fixed:

        eps_k = dy_{j,k}/dtheta_p = J_k eps_{k-1} + dy_{j,k}/dtheta_p |direct     (after the reset)
        e_k   = dy_{j,k}^-/dtheta_p,       sd_k = dS_{j,k}/dtheta_p                (before it; the spike)

    `J_k` is neuron `j`'s own `C x C` Jacobian of the step, at the current state
    (`propagation = "state"`) or at rest (`"rest"`: the trace then filters the
    presynaptic spikes with the resting dynamics and ignores resets). Update of
    step `k`, with `lambda_k = dl_k/dy_k^-` (non-zero for output neurons only):

    - output neurons: `g_p += lambda_{j,k} . e_k` (exact for their own state);
    - hidden neurons: the outputs' sensitivity to `theta_p` through `j`'s spikes,

          T_k = J^O T_{k-1} + (dy_{O,k}/dS_{j,k-1}) sd_{k-1},     g_p += lambda_{O,k} . T_k^-

      where `J^O` is the outputs' own Jacobian at the current state
      (`output_propagation = "state"`, exact for a feed-forward net) or at rest
      (`"rest"`: a fixed linear readout filter).

    `dy_O/dS` (how a hidden spike moves the outputs) uses the network's weights
    (`feedback = "symmetric"`), fixed random weights of the same scale
    (`"random"`: every parameter array with two or more axes, i.e. the weight
    matrices, redrawn uniform with the same RMS, zeros kept, seeded by `seed`),
    or such weights moved by every update like the network's and decayed by
    `decay` per update (`"adaptive"`; with the same weight decay on the network
    the two converge).

    Hidden neurons get credit only through direct connections to outputs: a
    network with hidden neurons that reach no output (deeper than one hidden
    layer) raises `ValueError`. The model's state leaves need the neuron axis
    first (`NeuronModel.state_matrix`) and its parameters must be per neuron.
    Cost per sample and step: about `2C + (2C + 1)(1 + n_out)` passes through
    the step; memory `O(P C n_out)` for `P` parameter entries and `C` state
    channels per neuron; both independent of the sequence length.
    """

    propagation: ClassVar[str]
    output_propagation: ClassVar[str]
    feedback: str = eqx.field(static=True, default="symmetric")
    seed: int = eqx.field(static=True, default=0)
    decay: float = eqx.field(static=True, default=0.0)
    active: Int[Array, " A"] | None = None
    owner: Int[Array, " A"] | None = None
    hidden: Int[Array, " H"] | None = None
    fb: Float[Array, " P"] | None = None
    fb_mask: Bool[Array, " P"] | None = None

    def __check_init__(self):
        if self.feedback not in _FEEDBACK:
            raise ValueError(f"`feedback` must be one of {_FEEDBACK}; got {self.feedback!r}.")
        if not 0.0 <= self.decay < 1.0:
            raise ValueError(f"`decay` must be in [0, 1); got {self.decay}.")

    # ------------------------------------------------------------ binding

    def prepare(self, net):
        prob = Problem(net, None)
        name = type(self).__name__
        wmask = np.asarray(net.wmask.value)
        outs = list(net.output_indices)
        deep = [j for j in prob.hidden if not wmask[j, outs].any()]
        if deep:
            raise ValueError(
                f"{name} credits hidden neurons through their direct connections to the outputs "
                f"(one hidden layer); hidden neurons {deep[:8]} reach no output neuron directly. "
                "Use BPTT or RTRL for deeper networks."
            )
        owner = _local.owners(prob, name)
        active = np.flatnonzero(owner >= 0)  # entries that act on no neuron (masked weights) carry no trace
        is_hidden = np.zeros(net.n_neurons, bool)
        is_hidden[list(prob.hidden)] = True
        hidden = np.flatnonzero(is_hidden[owner[active]])
        fb = fb_mask = None
        if self.feedback != "symmetric":
            fb, fb_mask = _random_feedback(prob, jax.random.PRNGKey(self.seed))
        return eqx.tree_at(
            lambda r: (r.active, r.owner, r.hidden, r.fb, r.fb_mask),
            self, tuple(jnp.asarray(a) for a in (active, owner[active], hidden)) + (fb, fb_mask),
            is_leaf=lambda x: x is None,
        )

    def after_update(self, old, new, grads):
        if self.feedback != "adaptive":
            return self
        moved = ravel_pytree(eqx.filter(new, eqx.is_inexact_array))[0] - ravel_pytree(
            eqx.filter(old, eqx.is_inexact_array))[0]
        fb = jnp.where(self.fb_mask, (1.0 - self.decay) * self.fb + moved, self.fb)
        return eqx.tree_at(lambda r: r.fb, self, fb)

    prepared = property(lambda self: self.active is not None)

    # ------------------------------------------------------------ the online form

    def init(self, net, loss):
        self.check_prepared()
        prob = Problem(net, loss)
        y, s = prob.initial()
        C, dtype = prob.model.state_matrix(y).shape[1], prob.theta.dtype
        A, H = self.active.shape[0], self.hidden.shape[0]
        sens = jnp.zeros((H, len(net.output_indices), C), dtype)
        return y, s, jnp.zeros((A, C), dtype), jnp.zeros((H,), dtype), sens

    def step(self, net, loss, traces, t, x_k, label):
        self.check_prepared()
        prob = Problem(net, loss)
        theta, model = prob.theta, prob.model
        y, s_prev, eps, sd_prev, sens = traces
        owner, C = self.owner, eps.shape[1]

        _, (y_new, s_new, y_pre) = _local.outputs(prob, theta, y, s_prev, t, x_k, model.state_matrix(y))
        jac = _local.state_jacobian(prob, theta, y, s_prev, t, x_k)
        rest = None
        if "rest" in (self.propagation, self.output_propagation):  # e-prop never needs it
            y0, s0 = prob.initial()
            rest = _local.state_jacobian(prob, theta, y0, s0, net.t0 + net.dt, jnp.zeros_like(x_k))
        if self.propagation == "rest":
            state_rows = np.r_[0:C, C + 1 : 2 * C + 1]
            jac = jac.at[:, state_rows].set(rest[:, state_rows])
        direct = _local.parameter_jacobian(prob, theta, y, s_prev, t, x_k)[self.active]
        new = jnp.einsum("arc,ac->ar", jac[owner], eps) + direct
        e_pre, sd, eps = new[:, :C], new[:, C], new[:, C + 1 :]

        value, lam = jax.value_and_grad(
            lambda m: prob.step_loss(model.with_state_matrix(y_pre, m), t, label)
        )(model.state_matrix(y_pre))
        g = jnp.sum(lam[owner] * e_pre, axis=1)

        theta_fb = theta if self.fb is None else jnp.where(self.fb_mask, self.fb, theta)
        outs = prob.outs
        moved = jax.jacrev(
            lambda s: _local.outputs(prob, theta_fb, y, s, t, x_k, model.state_matrix(y))[0][outs]
        )(s_prev)  # (n_out, R, n): how last step's spikes move the outputs
        push = jnp.moveaxis(moved[:, :, owner[self.hidden]], -1, 0) * sd_prev[:, None, None]  # (H, n_out, R)
        own = (jac if self.output_propagation == "state" else rest)[outs]  # (n_out, R, C)
        sens_pre = jnp.einsum("krc,hkc->hkr", own[:, :C], sens) + push[..., :C]
        sens = jnp.einsum("krc,hkc->hkr", own[:, C + 1 :], sens) + push[..., C + 1 :]
        g = g.at[self.hidden].add(jnp.einsum("kc,hkc->h", lam[outs], sens_pre))
        grads = jnp.zeros_like(theta).at[self.active].set(g)
        return (y_new, s_new, eps, sd[self.hidden], sens), prob.unravel(grads), value


def _random_feedback(prob: Problem, key) -> tuple[Float[Array, " P"], Bool[Array, " P"]]:
    """Weight matrices (arrays with two or more axes) redrawn uniform with the same RMS; zeros kept."""
    params = prob.unravel(prob.theta)
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, max(len(leaves), 1))
    fb, mask = [], []
    for k, w in zip(keys, leaves):
        is_matrix = w.ndim >= 2
        nonzero = w != 0
        rms = jnp.sqrt(jnp.sum(jnp.where(nonzero, w * w, 0.0)) / jnp.maximum(jnp.sum(nonzero), 1))
        draw = jax.random.uniform(k, w.shape, w.dtype, -1.0, 1.0) * jnp.sqrt(3.0) * rms
        fb.append(jnp.where(nonzero, draw, 0.0) if is_matrix else w)
        mask.append(jnp.full(w.shape, is_matrix))
    return ravel_pytree(jax.tree_util.tree_unflatten(tree, fb))[0], ravel_pytree(jax.tree_util.tree_unflatten(tree, mask))[0]
