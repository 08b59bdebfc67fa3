"""The training loop on a tiny Yin-Yang subset: it learns, resumes exactly, trains seeds at once."""

import json
import logging
import re

import equinox as eqx
import jax
import numpy as np
import pytest

from eventax.cli import main as cli_main
from eventax.config import from_dict, load_config
from eventax.train import load_checkpoint, read_history, sweep, train

TINY = {
    "name": "tiny",
    "data": {"name": "yinyang", "train_size": 96, "val_size": 64, "test_size": 64},
    "model": {"neuron": "LIF", "params": {"wmean": 1.5, "wlim": 3.0}, "hidden": [8]},
    "optim": {"batch_size": 32, "epochs": 2, "lr": 0.02},
    "train": {"plots": False, "eval_batch_size": 64},
}


def _cfg(**changes):
    raw = json.loads(json.dumps(TINY))
    for key, value in changes.items():
        section, name = key.split("__")
        raw[section][name] = value
    return from_dict(raw)


class _Compilations(logging.Handler):
    """Collects the names of the programs JAX compiles (with `jax.log_compiles`)."""

    def __init__(self):
        super().__init__()
        self.names = []

    def emit(self, record):
        found = re.search(r"Finished XLA compilation of (\S+)", record.getMessage())
        if found:
            self.names.append(found.group(1))


_COMPILED: list[str] = []  # programs compiled during `full_run`


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    compilations, logger = _Compilations(), logging.getLogger("jax")
    logger.addHandler(compilations)
    try:
        with jax.log_compiles(True):
            results = train(_cfg(), out, progress=False)
    finally:
        logger.removeHandler(compilations)
    _COMPILED[:] = compilations.names
    return out, results


def test_each_part_of_a_run_compiles_once(full_run):
    """The gradient and the evaluation compile once per run: an optimiser step must not
    hand back parameters of another type or placement (one device: the update carried
    the device mesh, and the gradient compiled a second time at the second step)."""
    names = _COMPILED
    assert names.count("jit(gradient)") == 1, names
    assert names.count("jit(_batch_outputs)") == 1, names


def test_two_epochs_improve_the_loss(full_run):
    out, results = full_run
    history = read_history(out)
    assert [r["epoch"] for r in history] == [0, 1, 2]
    assert history[2]["val_loss"] < history[0]["val_loss"]
    assert history[2]["train_loss"] < history[1]["train_loss"] + 0.05
    for f in ("config.toml", "metrics.jsonl", "metrics.csv", "checkpoint.zip", "best.evnn", "results.json"):
        assert (out / f).is_file(), f
    assert results["test"]["accuracy"] == json.loads((out / "results.json").read_text())["test"]["accuracy"]
    assert 0.0 <= results["test"]["silent_outputs"] <= 1.0
    assert results["spike_metrics_until"] == "first output spike"  # (a TTFS loss: see metrics.py)
    assert load_config(out / "config.toml") == _cfg()


class _Killed(Exception):
    """Stands in for the process dying in the middle of a run."""


def test_resume_equals_uninterrupted(full_run, tmp_path):
    """A run killed during epoch 2 (after epoch 1's checkpoint, one optimiser step
    into epoch 2) and resumed ends with bit-identical parameters, optimiser state
    and metrics (batches depend on (seed, epoch) only).

    The run is killed from a callback rather than trained with `epochs = 1`: the
    config is then the uninterrupted run's, so its compiled step is reused (a
    config with other `epochs` compiles the step again, ~70 s)."""
    out_full, _ = full_run

    def kill_in_epoch_2(step, net):
        if step == 4:  # 96 samples / batch 32: steps 1-3 are epoch 1
            raise _Killed

    with pytest.raises(_Killed):
        train(_cfg(), tmp_path, progress=False, callbacks=[kill_in_epoch_2])
    assert load_checkpoint(tmp_path / "checkpoint.zip", _like())[1]["epoch"] == 1
    (tmp_path / "checkpoint.zip.partial.tmp").write_bytes(b"junk")  # a write killed midway
    train(_cfg(), tmp_path, resume=True, progress=False)
    (a, meta_a), (b, meta_b) = (
        load_checkpoint(p / "checkpoint.zip", _like()) for p in (out_full, tmp_path)
    )
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    strip = lambda h: [{k: v for k, v in r.items() if k != "time_s"} for r in h]
    assert strip(meta_a["histories"][0]) == strip(meta_b["histories"][0])


def _like():
    from eventax.train.build import build_network, build_optimiser

    cfg = _cfg()
    net = build_network(cfg.model, 5, 3, jax.random.PRNGKey(0))
    params, _ = eqx.partition(net, eqx.is_inexact_array)
    params = jax.tree_util.tree_map(lambda a: a[None], params)
    return params, jax.vmap(build_optimiser(cfg.optim).init)(params)


def test_refuses_to_overwrite_and_to_resume_nothing(full_run, tmp_path):
    out, _ = full_run
    with pytest.raises(FileExistsError, match="resume"):
        train(_cfg(), out, progress=False)
    with pytest.raises(FileNotFoundError, match="resume"):
        train(_cfg(), tmp_path / "empty", resume=True, progress=False)


def test_cli_resume_without_a_run_says_there_is_nothing_to_resume(tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text('name = "x"\n')
    assert cli_main(["train", str(p), "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_cli_reports_config_errors(tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text('name = "x"\n[optim]\nlearning_rate = 0.1\n')
    assert cli_main(["train", str(p), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "optim.learning_rate" in err and "Valid keys" in err


def test_cli_reads_every_set_flag(tmp_path, capsys):
    """`--set a=1 --set b=2` applies both (argparse's default kept only the last, so
    the first override was silently dropped): the first, misspelt key is reported."""
    p = tmp_path / "c.toml"
    p.write_text('name = "x"\n')
    args = ["--set", "optim.learning_rate=0.1", "--set", "optim.step_size=0.1"]
    assert cli_main(["train", str(p), "--out", str(tmp_path / "r"), *args]) == 2
    assert "optim.learning_rate" in capsys.readouterr().err
    assert cli_main(["sweep", str(p), "--seeds", "0", "--out", str(tmp_path / "s"), *args]) == 2
    assert "optim.learning_rate" in capsys.readouterr().err


def test_cli_reports_a_failed_simulation_in_one_line(tmp_path, capsys):
    """A check that fails inside the compiled simulation (here more spikes than
    `layer_capacity`) ends the command with its one-line message, not a traceback."""
    cfg = _cfg(model__hidden=[4], model__layer_capacity=1, model__params={"wmean": 3.0, "wlim": 3.0},
               data__train_size=32, data__val_size=32, data__test_size=32)
    from eventax.config import dumps

    (tmp_path / "c.toml").write_text(dumps(cfg))
    assert cli_main(["train", str(tmp_path / "c.toml"), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eventax train: Layer 0 (4 neurons) emitted more than layer_capacity=1")
    assert len(err.splitlines()) == 1


def test_cli_eval(full_run, capsys):
    out, results = full_run
    assert cli_main(["eval", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["accuracy"] == pytest.approx(results["test"]["accuracy"])


def test_sweep_trains_seeds_at_once(full_run, tmp_path):
    """Seeds trained together under vmap: seed 0 matches the one-seed run, seed 1 differs,
    and the summary table aggregates both."""
    out_full, _ = full_run
    table = sweep(_cfg(optim__epochs=1), [0, 1], tmp_path, progress=False)
    one = read_history(out_full)[1]
    both = [read_history(tmp_path / f"seed{s}")[1] for s in (0, 1)]
    assert both[0]["train_loss"] == pytest.approx(one["train_loss"], rel=1e-5)
    assert both[1]["train_loss"] != pytest.approx(one["train_loss"], rel=1e-5)
    assert "n seeds" in table or "2" in table
    assert (tmp_path / "summary.md").is_file() and (tmp_path / "summary.csv").is_file()


def test_surrogate_mode_trains_from_the_same_config_and_calls_back(tmp_path):
    """One key switches the mode; the loss falls; callbacks see every step's network."""
    seen = []
    cfg = _cfg(model__mode="surrogate", model__dt=0.25)
    train(cfg, tmp_path, progress=False, callbacks=[lambda step, net: seen.append((step, net))])
    history = read_history(tmp_path)
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert [s for s, _ in seen] == [1, 2, 3, 4, 5, 6]  # 96 samples / batch 32, two epochs
    assert all(type(n).__name__ == "FixedStepNN" for _, n in seen)
    first, last = (jax.tree_util.tree_leaves(eqx.filter(n, eqx.is_inexact_array)) for _, n in (seen[0], seen[-1]))
    assert any(not np.array_equal(a, b) for a, b in zip(first, last))


def test_cli_sweep_resumes_from_the_sweeps_own_config(tmp_path, monkeypatch, capsys):
    """`eventax sweep --resume` continues the sweep in --out with the config it started with
    (a changed file beside it is not read) and passes `resume` on."""
    import eventax.train

    calls = []
    monkeypatch.setattr(eventax.train, "sweep", lambda cfg, seeds, out, **kw: calls.append((cfg, seeds, out, kw)) or "")
    monkeypatch.setattr(eventax.train, "initialize_distributed", lambda: None)
    from eventax.config import dumps

    started, changed = _cfg(optim__epochs=3), _cfg(optim__epochs=7)
    (tmp_path / "sweep" / "seed1").mkdir(parents=True)
    (tmp_path / "sweep" / "seed1" / "config.toml").write_text(dumps(started))
    (tmp_path / "changed.toml").write_text(dumps(changed))
    args = ["sweep", str(tmp_path / "changed.toml"), "--seeds", "1", "2", "--out", str(tmp_path / "sweep"), "--quiet"]
    assert cli_main(args + ["--resume"]) == 2  # no checkpoint yet
    assert "nothing to resume" in capsys.readouterr().err
    (tmp_path / "sweep" / "checkpoint.zip").write_text("")
    assert cli_main(args + ["--resume"]) == 0
    assert "differs from the run's own config" in capsys.readouterr().err
    assert cli_main(args) == 0
    (resumed, seeds, out, kw), (fresh, _, _, fresh_kw) = calls
    assert resumed.optim.epochs == 3 and seeds == [1, 2] and out == tmp_path / "sweep" and kw["resume"]
    assert fresh.optim.epochs == 7 and not fresh_kw["resume"]
