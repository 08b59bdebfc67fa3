"""Tiny spiking networks shared by the learning-rule tests, and their BPTT gradients.

Every rule compiles its own step, which dominates the run time of these tests;
the networks are as small as still makes every neuron spike (2 inputs, 5
neurons, 20 grid steps, batch 3), and gradients are computed once per network
and rule for the whole package.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import eventax as ex
from eventax import rules

DT = 0.1
LIF_KW = dict(wlim=4.0, wmean=1.5, thresh=1.0, tsyn=0.5, tmem=1.0)
N_IN, HIDDEN, OUT = 2, 3, 2
LOSS = rules.ReadoutCrossEntropy(channel=0)
ONLINE_RULES = {
    "RTRL": rules.RTRL, "EProp": rules.EProp, "OSTL": rules.OSTL, "OTTT": rules.OTTT, "RFLO": rules.RFLO,
}


@pytest.fixture(scope="package")
def x64():
    """float64 for the whole package (overrides the suite's per-test fixture): the
    shared networks below are built once, in float64, and must stay so."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


@pytest.fixture(autouse=True, scope="package")
def _fresh_jax_caches():
    """Clear compiled programs once after this package, not after each module
    (overrides the suite's fixture): the modules here share networks of the same
    shapes, and re-tracing their one-off eager ops per module cost ~5 s each."""
    yield
    jax.clear_caches()


def params(net) -> jax.Array:
    """The flat parameter vector, in the order the rules' traces use."""
    return ravel_pytree(eqx.filter(net, eqx.is_inexact_array))[0]


def index_tree(net):
    """`eqx.filter(net, is_inexact_array)` with each entry replaced by its flat index."""
    theta, unravel = ravel_pytree(eqx.filter(net, eqx.is_inexact_array))
    tree = unravel(jnp.arange(theta.size, dtype=theta.dtype))
    return jax.tree_util.tree_map(lambda a: np.asarray(a).astype(int), tree)


def rel_err(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(a)))


def cosine(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def feedforward_mask(n_in=N_IN, hidden=HIDDEN, out=OUT) -> np.ndarray:
    """inputs -> hidden -> outputs; nothing else."""
    n = hidden + out
    w = np.zeros((n + n_in, n), bool)
    w[n:, :hidden] = True
    w[:hidden, hidden:] = True
    return w


def build(wmask, *, model=ex.LIF, outputs=None, T=2.0, key=1, fixed=None, **kw):
    """A float64 `FixedStepNN` with `dt = DT` (outputs: the last `OUT` neurons)."""
    n = wmask.shape[1]
    outputs = list(range(n - OUT, n)) if outputs is None else outputs
    kw = {**LIF_KW, **kw} if model is ex.LIF else kw
    net = ex.EvNN(
        model, n, T, wmask.shape[0] - n, key=jax.random.PRNGKey(key), wmask=wmask,
        output_neurons=outputs, dtype=jnp.float64, **kw,
    )
    return net.fixed_step(DT, **(fixed or {}))


def inputs(batch=3, n_in=N_IN, per_channel=3, T=1.5, seed=0) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).uniform(0.0, T, (batch, n_in, per_channel)))


@eqx.filter_jit
def _gradient(rule, net, x, labels, loss):
    grads, value = rule.gradient(net, x, labels, loss)
    return params(grads), value


@eqx.filter_jit
def _spike_counts(net, x):
    return jnp.sum(jax.vmap(net.spike_trains)(x), axis=(0, 1))


class Case:
    """A network with a batch; `grad(rule)` is the rule's flat gradient, computed once."""

    def __init__(self, net, x, labels, loss=LOSS):
        self.net, self.x, self.labels, self.loss = net, x, labels, loss
        self.spikes = np.asarray(_spike_counts(net, x))
        self._memo = {}

    def grad(self, rule):
        key = repr(rule)
        if key not in self._memo:
            g, value = _gradient(rule.prepare(self.net), self.net, self.x, self.labels, self.loss)
            self._memo[key] = (np.asarray(g), float(value))
        return self._memo[key]

    @property
    def bptt(self) -> np.ndarray:
        return self.grad(rules.BPTT())[0]


def _spiking(case: Case, neurons) -> Case:
    # without spikes every surrogate path is silent and the comparisons are vacuous
    assert np.all(case.spikes[neurons] >= 3), case.spikes
    return case


@pytest.fixture(scope="package")
def feedforward(x64) -> Case:
    """2 inputs -> 3 LIF hidden -> 2 LIF outputs (no lateral or backward connections)."""
    case = Case(build(feedforward_mask(), key=4), inputs(), jnp.array([0, 1, 1]))
    return _spiking(case, slice(None))


@pytest.fixture(scope="package")
def recurrent(x64) -> Case:
    """5 LIF neurons, all-to-all including self-connections and outputs -> hidden."""
    n = HIDDEN + OUT
    case = Case(build(np.ones((n + N_IN, n), bool), wmean=1.0, key=4), inputs(), jnp.array([0, 1, 1]))
    return _spiking(case, slice(None))


@pytest.fixture(scope="package")
def single_layer(x64) -> Case:
    """One layer of 5 LIF neurons, every one an output, driven by the inputs only."""
    n = HIDDEN + OUT
    w = np.zeros((n + N_IN, n), bool)
    w[n:] = True
    case = Case(build(w, outputs=list(range(n)), key=4), inputs(), jnp.array([0, 2, 4]))
    return _spiking(case, slice(None))
