"""`AMOS(model_cls)`: at most one spike per neuron, first spikes unchanged, any model.

Exactness checks run in float64 with Tsit5 on constant steps of 0.01 and a
Newton root finder (rtol = atol = 1e-13): near-exact for these smooth LIF
trajectories (spike times to ~1e-14, see tests/test_exactness.py), so the
wrapped and unwrapped models can be compared to 1e-9. The training smoke test
runs with the float32 defaults.
"""

from __future__ import annotations

import subprocess
import sys

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest

import eventax as ex
from eventax.neuron_models._built import built_by
from eventax.neuron_models.amos import AMOS
from eventax.neuron_models.refractory import Refractory


class Ramp(ex.NeuronModel):
    """A user-written model: state `(n, 1)`, dv/dt = drive, an input adds 0.5 to v,
    spike at v = 1, reset to 0. Bias-driven period 1/drive."""

    drive: jax.Array

    def __init__(self, key, n_neurons, in_size, wmask, drive=1.0, dtype=jnp.float32):
        self.dtype = dtype
        self.drive = jnp.full((n_neurons,), drive, dtype)

    def init_state(self, n_neurons):
        return jnp.zeros((n_neurons, 1), self.dtype)

    def dynamics(self, t, y, args):
        return self.drive[:, None] * jnp.ones_like(y)

    def spike_condition(self, t, y):
        return y[:, 0] - 1.0

    def input_spike(self, y, from_idx, to_idx, valid_mask):
        return y.at[to_idx, 0].add(jnp.where(valid_mask, 0.5, 0.0))

    def reset_spiked(self, y, spike_mask):
        return jnp.where(spike_mask[:, None], 0.0, y)


N, IN, T_END = 4, 2, 60.0
BIAS = np.array([1.5, 2.0, 3.0, 5.0])


def exact_net(model, **kwargs):
    """4 neurons driven by biases and 2 inputs, no recurrent synapses (so the
    first spike of each neuron does not depend on others' later spikes)."""
    wmask = np.zeros((N + IN, N))
    wmask[N:] = 1
    return ex.EvNN(
        model, N, T_END, IN, key=jax.random.PRNGKey(3), wmask=wmask, dtype=jnp.float64,
        solver=diffrax.Tsit5(), root_finder=optx.Newton(rtol=1e-13, atol=1e-13),
        solver_stepsize=0.01, **kwargs,
    )


X = np.array([[2.0, 9.0], [5.0, np.inf]])
_record = eqx.filter_jit(lambda net, x: net.record(x, max_spikes=128))


def spikes_per_neuron(rec, n=N):
    k = int(rec.n_spikes)
    times, neurons = np.asarray(rec.times[:k]), np.asarray(rec.neurons[:k])
    return [times[neurons == j] for j in range(n)]


# ----------------------------------------------------------------------------- construction


def test_wrapped_classes_are_cached_subclasses_and_compose():
    cls = AMOS(Refractory(ex.LIF))
    assert cls is AMOS(Refractory(ex.LIF)) and cls.__name__ == "AMOSRefractoryLIF"
    assert issubclass(cls, Refractory(ex.LIF)) and issubclass(cls, ex.LIF)
    assert built_by(cls) == (AMOS, (Refractory(ex.LIF),)) and built_by(ex.LIF) is None
    assert AMOS(AMOS(ex.LIF)) is not AMOS(ex.LIF)  # legal, if pointless
    with pytest.raises(ValueError, match="sub-models"):
        AMOS(ex.MultiNeuronModel)
    with pytest.raises(ValueError, match="NeuronModel class"):
        AMOS("LIF")


def test_silenced_neuron_at_the_model_level(x64):
    """After its spike a neuron is held, deaf to inputs and its condition is the
    finite constant far below threshold."""
    model = AMOS(Ramp)(key=None, n_neurons=3, in_size=1, wmask=np.ones((4, 3)), drive=2.0, dtype=jnp.float64)
    y = model.reset_spiked(model.init_state(3), jnp.array([True, False, False]))
    y = (y[0].at[:, 0].set(jnp.array([0.0, 0.5, 1.5])), y[1])
    f = model.dynamics(0.0, y, None)
    np.testing.assert_array_equal(f[0][:, 0], [0.0, 2.0, 2.0])
    cond = np.asarray(model.spike_condition(0.0, y))
    assert cond[0] == -1e30 and np.all(np.isfinite(cond))
    np.testing.assert_array_equal(cond[1:], [-0.5, 0.5])
    hit = model.input_spike(y, jnp.asarray(3), jnp.arange(3), jnp.ones(3, bool))
    np.testing.assert_array_equal(hit[0][:, 0], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(model.observe(hit)[:, 0], [0.0, 1.0, 2.0])


# ----------------------------------------------------------------------------- engine, float64


def test_at_most_one_spike_and_first_spikes_unchanged(x64):
    """Strong biases make every LIF fire 4-24 times in 60; AMOS(LIF) and
    AMOS(Refractory(LIF)) fire exactly once each, at the LIF's first spike time
    (<= 1e-9; measured ~1e-14)."""
    common = dict(init_bias=BIAS, tmem=10.0, init_weights=0.6)
    lif = spikes_per_neuron(_record(exact_net(ex.LIF, **common), X))
    assert min(len(s) for s in lif) >= 4
    for model, extra in [(AMOS(ex.LIF), {}), (AMOS(Refractory(ex.LIF)), {"t_refrac": 1.0})]:
        once = spikes_per_neuron(_record(exact_net(model, **common, **extra), X))
        assert [len(s) for s in once] == [1] * N, model.__name__
        err = max(abs(s[0] - t[0]) for s, t in zip(once, lif))
        print(f"\n{model.__name__}: max |first spike - LIF first spike| = {err:.1e}")
        assert err <= 1e-9


def test_user_written_model(x64):
    """AMOS(Ramp): one spike at 1/drive, although inputs keep arriving."""
    net = exact_net(AMOS(Ramp), drive=0.25)
    x = np.array([[1.0, 6.0], [8.0, 30.0]])
    once = spikes_per_neuron(_record(net, x))
    for s in once:
        np.testing.assert_allclose(s, [2.0], atol=1e-9)  # v = 0.25 t, +0.5 at t = 1


def test_save_load_round_trip_in_this_and_a_fresh_process(x64, tmp_path):
    net = exact_net(AMOS(Refractory(ex.LIF)), init_bias=BIAS, t_refrac=1.0, trainable="t_refrac")
    path = tmp_path / "net.eqx"
    ex.save_evnn(path, net)
    loaded, _ = ex.load_evnn(path)
    assert type(loaded.neuron_model) is AMOS(Refractory(ex.LIF))
    assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(net)
    np.testing.assert_array_equal(loaded.neuron_model.t_refrac, net.neuron_model.t_refrac)
    np.testing.assert_array_equal(_record(loaded, X).times, _record(net, X).times)
    code = (
        "import sys, eventax as ex; m, _ = ex.load_evnn(sys.argv[1]); "
        "print(type(m.neuron_model).__name__, m.neuron_model.t_refrac.shape)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["AMOSRefractoryLIF", "(4,)"]


# ----------------------------------------------------------------------------- training, float32


def test_ffevnn_under_jit_vmap_grad_float32(x32):
    """FFEvNN([50, 3], 5, AMOS(LIF), 30): a batched TTFS loss and its gradient are
    finite and nonzero, and no neuron of any trial spikes twice (with LIF, the
    bias 3 alone makes neurons fire up to 4 times)."""
    net = ex.FFEvNN(
        [50, 3], 5, AMOS(ex.LIF), 30.0, key=jax.random.PRNGKey(0), bmean=3.0, output_no_spike_value=30.0
    )
    xs = jax.random.uniform(jax.random.PRNGKey(1), (8, 5, 1), minval=0.0, maxval=10.0)

    @eqx.filter_jit
    @eqx.filter_value_and_grad
    def loss(net, xs):
        return jnp.mean(jax.vmap(net.ttfs)(xs))

    value, grads = loss(net, xs)
    leaves = jax.tree_util.tree_leaves(grads)
    assert np.isfinite(float(value)) and all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert float(jnp.abs(grads.neuron_model.weights).max()) > 0
    def counts(x):
        neurons = net.record(x, 200).neurons  # -1 in unused slots
        return jnp.zeros(53, jnp.int32).at[jnp.where(neurons >= 0, neurons, 53)].add(1, mode="drop")

    counts = eqx.filter_jit(jax.vmap(counts))(xs)
    assert int(counts.max()) == 1 and int(counts[:, :50].sum()) > 0
