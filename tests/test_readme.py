"""The README's code blocks run as written."""

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_quickstart_block_runs_spikes_and_gives_nonzero_finite_gradients():
    ns = {}
    exec(_python_blocks()[0], ns)
    assert ns["t_first"].shape == (3,)
    assert ns["batch"].shape == (2, 3)
    leaves = [ns["grads"].neuron_model.weights, ns["grads"].neuron_model.ic]
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    # the example's network spikes, so its gradients are not all zero
    assert bool(jnp.all(jnp.isfinite(ns["t_first"]))) and float(jnp.abs(leaves[0]).sum()) > 0


def test_surrogate_block_runs_on_the_quickstart_network():
    ns = {}
    exec(_python_blocks()[0], ns)
    exec(_python_blocks()[1], ns)
    assert ns["t_grid"].shape == (3,)
    gs, ge = ns["g_surrogate"].net.neuron_model.weights, ns["g_exact"].neuron_model.weights
    assert gs.shape == ge.shape and bool(jnp.all(jnp.isfinite(gs)))


def test_custom_neuron_block_runs_and_spikes():
    ns = {}
    exec(_python_blocks()[2], ns)
    net = ns["net"]
    t = net.ttfs(jnp.array([[1.0], [2.0], [5.0]]))
    assert t.shape == (2,)
    assert np.all(np.isfinite(np.asarray(t))), "the README's custom model should make both outputs spike"
    # Its state is a tuple (v, g): the default `observe` puts the channels side by side;
    # v and g are 0 before the first input, and g > 0 after an output spiked.
    at = jnp.array([0.5, float(jnp.max(t)) + 1.0])
    states = np.asarray(net.state_at_t(jnp.array([[1.0], [2.0], [5.0]]), at))
    assert states.shape == (2, 2, 2)  # (outputs, times, channels)
    np.testing.assert_array_equal(states[:, 0], 0.0)
    assert np.all(states[:, 1, 1] > 0), "an output that spiked has received input"


def test_learning_rules_block_runs_and_eprop_equals_bptt():
    """The README's claim that e-prop equals BPTT on its feed-forward network, to float32
    rounding (rel. 1e-4: both sum ~40 steps of float32 terms)."""
    ns = {}
    exec(_python_blocks()[3], ns)
    flat = lambda g: np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(g)])  # noqa: E731
    a, b = flat(ns["g_bptt"]), flat(ns["g_eprop"])
    assert np.linalg.norm(a) > 0
    assert np.linalg.norm(a - b) <= 1e-4 * np.linalg.norm(a)
    assert len(ns["losses"]) == 3 and np.all(np.isfinite(ns["losses"]))
