"""Shared pieces of the loss tests: a tiny LIF network, one compiled trainer step, LI closed forms.

Compiling a simulation under `grad` is what makes these tests slow, so the TTFS and
regulariser tests share one compiled function (`trainer_heads`), used exactly as a
trainer would: `sim = loss.simulate(net, x, max_spikes)`, then loss and regulariser.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import eventax as ex
from eventax.losses import ActivityRegulariser, TTFSLoss

T_END = 10.0
X = jnp.array([[0.5], [1.5]])  # (in_size=2, K=1)


def tiny_weights():
    """2 inputs -> 3 hidden LIF -> 2 LIF outputs; every neuron spikes on `X`."""
    w = np.zeros((7, 5), np.float32)
    w[5:7, 0:3] = [[6.0, 4.0, 0.0], [2.0, 4.0, 7.0]]
    w[0:3, 3:5] = [[3.0, 2.0], [2.0, 2.5], [3.0, 3.0]]
    return w


def tiny_net():
    return ex.FFEvNN(
        [3, 2], 2, ex.LIF, T_END, key=jax.random.PRNGKey(0), tsyn=2.0, tmem=4.0,
        init_weights=tiny_weights(), solver_stepsize=0.05,
    )


def with_output_weights(net, column, scale):
    """`net` with the input weights of output `column` (0 or 1) multiplied by `scale`."""
    w = net.neuron_model.weights
    return eqx.tree_at(lambda n: n.neuron_model.weights, net, w.at[:, 3 + column].multiply(scale))


def li_membrane(t, spike_times, weights, tsyn, tmem):
    """Closed-form membrane of an LI neuron (v = i = 0 at t = 0) driven by input spikes."""
    t = np.asarray(t, np.float64)[..., None]
    s, w = np.asarray(spike_times, np.float64), np.asarray(weights, np.float64)
    d = np.maximum(t - s, 0.0)
    k = w * tsyn / (tmem - tsyn)
    return np.sum(np.where(t >= s, k * (np.exp(-d / tmem) - np.exp(-d / tsyn)), 0.0), axis=-1)


def li_integral(spike_times, weights, tsyn, tmem, a, b, tau=None):
    """Closed form of `∫_a^b v(t) exp(-(t - a) / tau) dt` (no weight if `tau` is None)."""
    total = 0.0
    for s, w in zip(spike_times, weights):
        lo = max(a, s)
        if lo >= b:
            continue
        k = w * tsyn / (tmem - tsyn)
        for c, sign in ((tmem, 1.0), (tsyn, -1.0)):
            r = 1.0 / c + (0.0 if tau is None else 1.0 / tau)
            scale = np.exp(s / c + (0.0 if tau is None else a / tau))
            total += sign * k * scale * (np.exp(-r * lo) - np.exp(-r * b)) / r
    return total


TAU0, TAU1, ALPHA = 0.8, 5.0, 0.01
GUARD = TTFSLoss(tau0=TAU0, tau1=TAU1, alpha=ALPHA, no_spike_time=T_END, silent_guard=1.0, guard_obs=8)
NO_GUARD = TTFSLoss(tau0=TAU0, tau1=TAU1, alpha=ALPHA, no_spike_time=T_END, silent_guard=0.0)
UPPER = ActivityRegulariser(1.0, upper=1.0, neurons=(0, 1, 2), edge=2.0)
MAX_SPIKES = 64


@eqx.filter_jit
def trainer_heads(net, x, label):
    """`[GUARD(sim, y), NO_GUARD(sim, y), UPPER(sim)]`, their gradients w.r.t. `net`, and `sim`."""

    def heads(net):
        sim = GUARD.simulate(net, x, max_spikes=MAX_SPIKES)
        values = jnp.stack([GUARD(sim, label), NO_GUARD(sim, label), UPPER(sim)])
        return values, (values, sim)

    grads, (values, sim) = eqx.filter_jacrev(heads, has_aux=True)(net)
    return values, grads, sim
