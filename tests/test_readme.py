"""The README's code blocks run as written."""

import json
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def quickstart():
    """The namespace after the quickstart block (run once: it compiles for ~30 s)."""
    ns = {}
    exec(_python_blocks()[0], ns)
    return ns


def test_quickstart_block_runs_spikes_and_gives_nonzero_finite_gradients(quickstart):
    ns = quickstart
    assert ns["t_first"].shape == (3,)
    assert ns["batch"].shape == (2, 3)
    leaves = [ns["grads"].neuron_model.weights, ns["grads"].neuron_model.ic]
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    # the example's network spikes, so its gradients are not all zero
    assert bool(jnp.all(jnp.isfinite(ns["t_first"]))) and float(jnp.abs(leaves[0]).sum()) > 0


def test_surrogate_block_runs_on_the_quickstart_network(quickstart):
    ns = dict(quickstart)
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


def test_nir_block_round_trips_the_quickstart_network(quickstart, tmp_path, monkeypatch):
    """The NIR example writes the quickstart network and reads it back: same first spikes."""
    ns = dict(quickstart)
    monkeypatch.chdir(tmp_path)
    exec(next(b for b in _python_blocks() if "to_nir" in b), ns)
    assert (tmp_path / "net.nir").is_file()
    np.testing.assert_array_equal(ns["net2"].ttfs(ns["x"]), ns["t_first"])


def test_own_model_trains_from_a_config_and_evaluates_in_a_new_process(tmp_path, monkeypatch, capsys):
    """The README's config naming `my_neurons:CondLIF` (the custom-neuron block saved as a
    module) trains with `eventax train` (here one step on 32 samples) and `eventax eval`
    in a fresh process loads the saved network by that path and gives the same accuracy;
    where the module cannot be imported, eval says which class to make importable."""
    from eventax.cli import main as cli_main

    model_source = _python_blocks()[2].split("net = ")[0]
    (tmp_path / "my_neurons.py").write_text(model_source)
    config = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)[0]
    (tmp_path / "condlif.toml").write_text(config)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # (the CLI adds the current directory)
    tiny = ["optim.epochs=1", "optim.batch_size=32", "data.train_size=32", "data.val_size=32",
            "data.test_size=32", "train.plots=false", "model.hidden=[8]"]
    assert cli_main(["train", "condlif.toml", "--quiet", "--set", *tiny]) == 0
    run = tmp_path / "runs" / "yinyang-condlif" / "seed0"
    trained = json.loads((run / "results.json").read_text())["test"]
    capsys.readouterr()

    def evaluate(cwd):
        return subprocess.run([sys.executable, "-m", "eventax", "eval", str(run)], cwd=cwd,
                              capture_output=True, text=True, timeout=600)

    done = evaluate(tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accuracy"] == trained["accuracy"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    failed = evaluate(elsewhere)
    assert failed.returncode == 2 and "my_neurons:CondLIF" in failed.stderr and "importable" in failed.stderr
    assert "Traceback" not in failed.stderr


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
