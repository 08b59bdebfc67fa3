"""The `LearningRule` contract and the unrolled problem every rule differentiates."""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, Int, PyTree

from ..fixed_step import FixedStepNN
from .objective import Grid, StepLoss

Traces = PyTree[Array]


class Problem:
    """A fixed-step network seen as `c_k = F(c_{k-1}, x_k; theta)` with a per-step loss.

    `theta` is the flat vector of the network's learnable arrays (every
    floating-point array of the `FixedStepNN`, as the trainer uses);
    `step(theta, y, s, t, x_k)` is `FixedStepNN.step` and `step_loss` the loss of
    the state before the reset. Built inside traced code; holds no state.
    """

    def __init__(self, net: FixedStepNN, loss: StepLoss | None):
        if not isinstance(net, FixedStepNN):
            raise ValueError(
                f"Learning rules run on the fixed-step mode; `net` must be a FixedStepNN "
                f"(e.g. `net.fixed_step(dt)`), got {type(net).__name__}."
            )
        if loss is not None and not isinstance(loss, StepLoss):
            raise ValueError(
                f"`loss` must be a per-step `eventax.rules.StepLoss` (e.g. ReadoutCrossEntropy()); "
                f"got {type(loss).__name__}."
            )
        self.net, self.loss = net, loss
        params, self.static = eqx.partition(net, eqx.is_inexact_array)
        self.theta, self.unravel = ravel_pytree(params)
        self.model = net.neuron_model
        self.outs = jnp.asarray(net.output_indices)
        self.times = net.times
        self.grid = Grid(net.t0, net.dt, net.n_steps)
        hidden = [j for j in range(net.n_neurons) if j not in set(net.output_indices)]
        self.hidden = tuple(hidden)

    def network(self, theta: Float[Array, " P"]) -> FixedStepNN:
        return eqx.combine(self.unravel(theta), self.static)

    def step(self, theta, y, s, t, x_k):
        """`(y_k, S_k, y_k^-)` from `(y_{k-1}, S_{k-1})` and the inputs of step `k`."""
        return self.network(theta).step(y, s, t, x_k)

    def step_loss(self, y_pre, t, label) -> Float[Array, ""]:
        """`l(observe(y_k^-)[outputs], t_k, label)`."""
        return self.loss(self.model.observe(y_pre)[self.outs], t, self.grid, label)

    def initial(self):
        """`(y_0, S_0 = 0)`."""
        y0 = self.model.init_state(self.net.n_neurons)
        return y0, jnp.zeros((self.net.n_neurons,), self.net.dtype)


def rollout(
    net: FixedStepNN, loss: StepLoss, x: Float[Array, "in_size K"], label: Int[Array, ""]
) -> tuple[Float[Array, ""], Float[Array, " n_out"]]:
    """One trial: `(L, sum_k weight(t_k) logits(o_k))` (loss and accumulated class scores)."""
    prob = Problem(net, loss)

    def body(carry, xs):
        y, s = carry
        t, x_k = xs
        y, s, y_pre = net.step(y, s, t, x_k)
        o = prob.model.observe(y_pre)[prob.outs]
        return (y, s), (prob.step_loss(y_pre, t, label), loss.weight(t, prob.grid) * loss.logits(o))

    _, (losses, logits) = jax.lax.scan(body, prob.initial(), (prob.times, net.input_counts(x)))
    return jnp.sum(losses), jnp.sum(logits, axis=0)


def evaluate(
    net: FixedStepNN, loss: StepLoss, x: Float[Array, "batch in_size K"], labels: Int[Array, " batch"]
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """Mean loss and accuracy over a batch (prediction: argmax of the accumulated scores)."""
    values, logits = jax.vmap(rollout, in_axes=(None, None, 0, 0))(net, loss, x, labels)
    return jnp.mean(values), jnp.mean(jnp.argmax(logits, axis=-1) == labels)


class LearningRule(eqx.Module):
    """Abstract rule: turns a network, a batch and a `StepLoss` into an update direction.

    `gradient(net, x, labels, loss)` returns `(grads, loss)`: `grads` has the
    structure of `eqx.filter(net, eqx.is_inexact_array)` (so `optax` applies it)
    and estimates `d mean_b L_b / d theta`; `loss` is the batch mean of `L`.

    Rules that hold network-dependent state (feedback weights) build it in
    `prepare(net)`; a trainer calls `after_update` after each optimiser update
    (adaptive feedback follows the weights). The defaults do nothing. What acts on
    the gradient before the update is an Optax transformation (`fptt`), not a rule.
    """

    @abc.abstractmethod
    def gradient(
        self, net: FixedStepNN, x: Float[Array, "batch in_size K"], labels: Int[Array, " batch"], loss: StepLoss
    ) -> tuple[PyTree, Float[Array, ""]]:
        """The update direction for one batch and the batch's mean loss."""

    def prepare(self, net: FixedStepNN) -> LearningRule:
        """This rule bound to `net` (call outside `jit`; `gradient` calls it when needed)."""
        return self

    @property
    def prepared(self) -> bool:
        """Whether `prepare` has run (always, for rules that need nothing)."""
        return True

    def check_prepared(self) -> None:
        if not self.prepared:
            raise ValueError(f"Call `rule = rule.prepare(net)` before using {type(self).__name__} inside jit.")

    def after_update(self, old: FixedStepNN, new: FixedStepNN, grads: PyTree) -> LearningRule:
        """This rule after the optimiser moved `old` to `new` along `grads`."""
        return self


class OnlineRule(LearningRule):
    """Abstract rule with a forward-in-time form: memory independent of the sequence length.

    Subclasses implement, per sample,

    - `init(net, loss)`: the traces at `t0`;
    - `step(net, loss, traces, t, x_k, label)`: advance one grid step; return
      `(traces, g_k, l_k)`, the new traces, this step's share of the update
      (parameter-shaped) and its loss.

    `sum_k g_k` is the rule's estimate of `dL/dtheta` for the trial;
    `gradient` runs that sum over a batch with `vmap`.
    """

    @abc.abstractmethod
    def init(self, net: FixedStepNN, loss: StepLoss) -> Traces:
        """Traces of one sample at `t0`."""

    @abc.abstractmethod
    def step(
        self, net: FixedStepNN, loss: StepLoss, traces: Traces, t: Float[Array, ""],
        x_k: Float[Array, " in_size"], label: Int[Array, ""],
    ) -> tuple[Traces, PyTree, Float[Array, ""]]:
        """One grid step of one sample."""

    def gradient(self, net, x, labels, loss):
        if not self.prepared:
            return self.prepare(net).gradient(net, x, labels, loss)
        prob = Problem(net, loss)
        params = eqx.filter(net, eqx.is_inexact_array)

        def sample(x, label):
            spike_steps = net.input_steps(x)

            def body(carry, _):
                traces, acc, total, k = carry
                t = net.time_of(k)
                traces, g, value = self.step(net, loss, traces, t, step_counts(spike_steps, k, t.dtype), label)
                return (traces, jax.tree_util.tree_map(jnp.add, acc, g), total + value, k + 1), None

            # no per-step arrays: the step index rides in the carry
            zero = jax.tree_util.tree_map(jnp.zeros_like, params)
            carry = (self.init(net, loss), zero, jnp.zeros((), prob.times.dtype), jnp.ones((), jnp.int32))
            (_, acc, total, _), _ = jax.lax.scan(body, carry, None, length=net.n_steps)
            return acc, total

        grads, values = jax.vmap(sample)(x, labels)
        return jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), grads), jnp.mean(values)


def step_counts(spike_steps: Int[Array, "in_size K"], k: Int[Array, ""], dtype) -> Float[Array, " in_size"]:
    """Input spikes of each channel delivered at grid step `k` (see `FixedStepNN.input_steps`)."""
    return jnp.sum(spike_steps == k, axis=1).astype(dtype)


def check_batch(x: Any, labels: Any, net: FixedStepNN) -> None:
    """Shapes of a batch, checked at the edge with errors that name the argument."""
    if jnp.ndim(x) != 3 or jnp.shape(x)[1] != net.in_size:
        raise ValueError(f"`x` must have shape (batch, in_size={net.in_size}, K); got {jnp.shape(x)}.")
    if jnp.shape(labels) != jnp.shape(x)[:1]:
        raise ValueError(f"`labels` must have shape ({jnp.shape(x)[0]},); got {jnp.shape(labels)}.")
