"""`save_evnn` / `load_evnn`: JSON structure plus leaves, no pickle.

Every built-in model, wrapper, mixed network and the fixed-step mode comes back with
the same tree structure (classes, hyperparameters) and bit-identical arrays; a model
written in a script (with a field left at its class default) loads in another process
that defines it, and in one that does not the error names the class to import. The older pickled format loads only when
trusted.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
import zipfile

import diffrax as dfx
import equinox as eqx
import jax
import numpy as np
import pytest

import eventax as ex
from eventax.neuron_models import (
    ALIF, AMOS, EGRU, EIF, LI, LIF, PLIF, PQIF, QIF, DendriticNeuron, Izhikevich,
    MultiNeuronModel, PIzhikevich, Refractory, with_trainable,
)

KEY = jax.random.PRNGKey(0)
X = np.array([[1.0], [2.0], [0.5], [3.0], [0.0]], np.float32)

NETS = {
    "LIF": lambda: ex.FFEvNN([10, 3], 5, LIF, 30.0, key=KEY, wmean=1.5, wlim=3.0),
    "QIF": lambda: ex.FFEvNN([10, 3], 5, QIF, 30.0, key=KEY),
    "EIF": lambda: ex.FFEvNN([10, 3], 5, EIF, 30.0, key=KEY, trainable=("tmem", "vT")),
    "Izhikevich": lambda: ex.FFEvNN([10, 3], 5, Izhikevich, 30.0, key=KEY),
    "ALIF": lambda: ex.FFEvNN([10, 3], 5, ALIF, 30.0, key=KEY),
    "EGRU": lambda: ex.FFEvNN([10, 3], 5, EGRU, 30.0, key=KEY),
    "Dendritic": lambda: ex.FFEvNN([3], 5, DendriticNeuron, 30.0, key=KEY),
    "PLIF / PQIF / PIzhikevich": lambda: ex.FFEvNN(
        [4, 4, 3], 5, MultiNeuronModel, 30.0, key=KEY, neuron_models=[PLIF, PQIF, PIzhikevich]
    ),
    "Refractory(LIF)": lambda: ex.FFEvNN([10, 3], 5, Refractory(LIF), 30.0, key=KEY, t_refrac=1.0),
    "AMOS(Refractory(QIF)), trainable t_refrac": lambda: ex.FFEvNN(
        [10, 3], 5, AMOS(Refractory(QIF)), 30.0, key=KEY, t_refrac=1.0, trainable=("t_refrac",)
    ),
    "mixed LIF / LI": lambda: ex.FFEvNN([10, 3], 5, MultiNeuronModel, 30.0, key=KEY, neuron_models=[LIF, LI]),
    "EvNN, delays, PID": lambda: ex.EvNN(
        LIF, 8, 30.0, 5, key=KEY, init_delays=1.0, dlim=2.0, init_axonal_delays=0.5,
        solver=dfx.Tsit5(), stepsize_controller=dfx.PIDController(rtol=1e-5, atol=1e-6),
    ),
    "FixedStepNN": lambda: ex.FixedStepNN(ex.FFEvNN([10, 3], 5, LIF, 30.0, key=KEY), 0.1),
}


def _round_trip(net, path, config=None):
    ex.save_evnn(path, net, config)
    return ex.load_evnn(path)


def _assert_same(net, loaded):
    assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(net)
    for a, b in zip(jax.tree_util.tree_leaves(net), jax.tree_util.tree_leaves(loaded), strict=True):
        assert type(a) is type(b) and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", NETS)
def test_round_trip_keeps_classes_hyperparameters_and_arrays(name, tmp_path, monkeypatch):
    net = NETS[name]()
    path = tmp_path / "net.evnn"
    ex.save_evnn(path, net, {"note": name})
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["leaves.eqx", "meta.json"]
        json.loads(zf.read("meta.json"))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("load_evnn unpickled"))
    loaded, config = ex.load_evnn(path)
    assert config == {"note": name}
    _assert_same(net, loaded)


def test_a_changed_network_gives_identical_outputs(tmp_path):
    net = NETS["LIF"]()
    weights = net.neuron_model.weights
    noise = jax.random.normal(jax.random.PRNGKey(1), weights.shape, weights.dtype)
    net = eqx.tree_at(lambda n: n.neuron_model.weights, net, weights + 0.1 * noise)
    loaded, _ = _round_trip(net, tmp_path / "net.evnn")
    ttfs = jax.jit(lambda n: n.ttfs(X))
    np.testing.assert_array_equal(ttfs(loaded), ttfs(net))
    assert np.any(np.isfinite(np.asarray(ttfs(net))))


def test_edits_after_construction_are_saved(tmp_path):
    """The file holds the network as it is, not as its constructor made it."""
    net = NETS["LIF"]()
    net = eqx.tree_at(lambda n: n.neuron_model.thresh, net, ex.Constant(0.7))
    loaded, _ = _round_trip(net, tmp_path / "net.evnn")
    assert float(loaded.neuron_model.thresh.value) == pytest.approx(0.7)


def test_a_class_that_cannot_be_imported_is_refused_when_saving(tmp_path):
    class Local(LIF):  # (defined in a function: no import path)
        pass

    net = ex.FFEvNN([3], 5, Local, 30.0, key=KEY)
    with pytest.raises(ValueError, match=r"neuron_model.*'.*Local' is not importable"):
        ex.save_evnn(tmp_path / "net.evnn", net)


def test_a_built_class_without_a_name_is_saved_as_the_call_that_builds_it(tmp_path):
    Mine = with_trainable(AMOS(LIF), ("tmem",), "Mine")  # (a name nothing imports)
    loaded, _ = _round_trip(ex.FFEvNN([3], 5, Mine, 30.0, key=KEY), tmp_path / "net.evnn")
    assert type(loaded.neuron_model) is Mine


def test_a_file_cannot_make_loading_call_other_functions(tmp_path, monkeypatch):
    path = tmp_path / "net.evnn"
    ex.save_evnn(path, NETS["Refractory(LIF)"]())
    with zipfile.ZipFile(path) as zf:
        meta, leaves = json.loads(zf.read("meta.json")), zf.read("leaves.eqx")
    model = meta["network"]["fields"]["neuron_model"]
    assert model["module"]["builder"] == "eventax:Refractory"
    model["module"]["builder"] = "os:getenv"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("meta.json", json.dumps(meta))
        zf.writestr("leaves.eqx", leaves)
    monkeypatch.setattr("os.getenv", lambda *a: pytest.fail("loading called os.getenv"))
    with pytest.raises(ValueError, match="'os:getenv' is not a class builder"):
        ex.load_evnn(path)


def test_a_changed_class_is_reported(tmp_path):
    path = tmp_path / "net.evnn"
    ex.save_evnn(path, NETS["LIF"]())
    with zipfile.ZipFile(path) as zf:
        meta, leaves = json.loads(zf.read("meta.json")), zf.read("leaves.eqx")
    meta["network"]["fields"]["neuron_model"]["fields"]["tau"] = 1.0
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("meta.json", json.dumps(meta))
        zf.writestr("leaves.eqx", leaves)
    with pytest.raises(ValueError, match="saved with another version of that class"):
        ex.load_evnn(path)


def test_a_config_of_constructor_keywords_round_trips(tmp_path):
    """A config that is not plain JSON (a PRNG key, arrays, a model class, a dtype, as
    eventax 0.1.0's scripts save the keywords they built with) comes back equal; a plain
    one is stored as it is. `neuron_model`, if given to `load_evnn`, must be the saved one."""
    import jax.numpy as jnp

    net = NETS["LIF"]()
    config = {"key": KEY, "neuron_model": LIF, "layers": [10, 3], "dtype": jnp.float32,
              "ids": np.arange(3, dtype=np.int32), "tsyn": 5.0, "name": "run"}
    _, back = _round_trip(net, tmp_path / "a.evnn", config)
    assert back.keys() == config.keys() and back["neuron_model"] is LIF and back["layers"] == [10, 3]
    np.testing.assert_array_equal(back["key"], np.asarray(KEY))
    np.testing.assert_array_equal(back["ids"], config["ids"])
    assert back["ids"].dtype == np.int32 and np.dtype(back["dtype"]) == np.float32 and back["tsyn"] == 5.0
    with zipfile.ZipFile(tmp_path / "a.evnn") as zf:
        assert "config" not in json.loads(zf.read("meta.json"))
    plain = {"lr": 0.005, "layers": [10, 3]}
    ex.save_evnn(tmp_path / "b.evnn", net, plain)
    with zipfile.ZipFile(tmp_path / "b.evnn") as zf:
        assert json.loads(zf.read("meta.json"))["config"] == plain
    loaded, _ = ex.load_evnn(tmp_path / "b.evnn", neuron_model=LIF)
    _assert_same(net, loaded)
    with pytest.raises(ValueError, match="holds a LIF network, not the given `neuron_model` QIF"):
        ex.load_evnn(tmp_path / "b.evnn", neuron_model=QIF)


def test_other_files_are_rejected(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("meta.json", '{"format": "something-else"}')
    with pytest.raises(ValueError, match="not an eventax network"):
        ex.load_evnn(path)


def test_the_older_pickled_format_loads_only_when_trusted(tmp_path):
    net = NETS["EvNN, delays, PID"]()
    path = tmp_path / "old.evnn"
    skeleton = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype) if eqx.is_array(x) else x, net
    )
    with zipfile.ZipFile(path, "w") as zf:  # (as the previous `save_evnn` wrote it)
        zf.writestr("meta.json", json.dumps({"format": "eventax-network/1", "config": {"a": 1}}))
        zf.writestr("tree.pkl", pickle.dumps(skeleton))
        with zf.open("leaves.eqx", "w") as f:
            eqx.tree_serialise_leaves(f, net)
    with pytest.raises(ValueError, match=r"older network format.*trust_pickle=True"):
        ex.load_evnn(path)
    loaded, config = ex.load_evnn(path, trust_pickle=True)
    assert config == {"a": 1}
    _assert_same(net, loaded)


_USER_MODEL = textwrap.dedent('''
    import sys
    import jax, jax.numpy as jnp
    import eventax as ex

    class Ramp(ex.NeuronModel):
        """dv/dt = drive + input current; spikes at v = thresh."""
        weights: jax.Array
        drive: float
        thresh: float = 1.0  # (a default `__init__` leaves on the class: not saved, still loads)

        def __init__(self, key, n_neurons, in_size, wmask, dtype=jnp.float32, drive=0.25):
            self.dtype = dtype
            self.weights = jax.random.uniform(key, wmask.shape, dtype) * wmask
            self.drive = drive

        def init_state(self, n):
            return jnp.zeros((n,), self.dtype)

        def dynamics(self, t, y, args):
            return jnp.full_like(y, self.drive)

        def spike_condition(self, t, y):
            return y - self.thresh

        def input_spike(self, y, from_idx, to_idx, valid):
            return y.at[to_idx].add(jnp.where(valid, self.weights[from_idx, to_idx], 0.0))

        def reset_spiked(self, y, spiked):
            return jnp.where(spiked, 0.0, y)
''')


def test_a_user_model_loads_in_a_process_that_defines_it(tmp_path):
    path = tmp_path / "user.evnn"
    save = _USER_MODEL + textwrap.dedent('''
        net = ex.FFEvNN([4, 2], 5, Ramp, 30.0, key=jax.random.PRNGKey(0), drive=0.3)
        ex.save_evnn(sys.argv[1], net)
        print(*net.ttfs(jnp.arange(5.0)[:, None]).tolist())
    ''')
    load = _USER_MODEL + textwrap.dedent('''
        net, _ = ex.load_evnn(sys.argv[1])
        print(*net.ttfs(jnp.arange(5.0)[:, None]).tolist())
    ''')
    unknown = "import sys, eventax as ex\nex.load_evnn(sys.argv[1])\n"
    saved, loaded = (_python(code, path).stdout.split() for code in (save, load))
    assert saved == loaded and len(saved) == 2
    failed = _python(unknown, path, check=False)
    assert failed.returncode != 0 and "'__main__:Ramp' cannot be imported" in failed.stderr


def _python(code, *args, check=True):
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, check=check)
