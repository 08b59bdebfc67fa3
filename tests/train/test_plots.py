"""Run plots and the summary table over seeds (`eventax/train/plots.py`)."""

import csv
import io

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eventax
from eventax.config import Config, DataConfig
from eventax.data import yin_yang, yin_yang_spikes
from eventax.train import plots
from eventax.data import Dataset, Split

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class FirstSpikeLoss(eqx.Module):
    """Only what `plots` may use of a loss: `simulate` and `logits` (earliest spike wins)."""

    def simulate(self, net, x, max_spikes=0):
        return net.run(x, max_spikes=max_spikes, stop_at_first_output=True)

    def logits(self, sim):
        return -jnp.where(jnp.isinf(sim.first_spikes), 30.0, sim.first_spikes)


def _result(seed, acc, val, firing, dead, count, t_first, silent, time_s):
    test = {"accuracy": acc, "loss": 0.3, "max_firing": firing, "dead_neurons": dead,
            "fire_count": count, "t_first_output": t_first, "silent_outputs": silent}
    return {"name": "yy", "seed": seed, "best_epoch": 4, "val_accuracy": val, "test": test,
            "epochs": 5, "train_time_s": time_s}


RESULTS = [
    _result(2, 0.951, 0.94, 3.0, 2, 41.5, 11.0, 0.05, 100.0),
    _result(0, 0.962, 0.95, 2.5, 0, 40.0, None, 0.0, 90.0),
    _result(1, 0.930, 0.91, 4.0, 5, 47.0, 12.5, None, 110.0),
    _result(7, 0.944, 0.93, 3.5, 1, 44.0, 10.0, None, 95.0),
]


def _csv(text):
    rows = list(csv.DictReader(io.StringIO(text)))
    stats = {(r["metric"], r["statistic"]): r["value"] for r in rows if r["seed"] == ""}
    seeds = {(r["metric"], int(r["seed"])): r["value"] for r in rows if r["seed"] != ""}
    return stats, seeds


def test_summary_table_statistics():
    markdown, text = plots.summary_table(RESULTS)
    stats, seeds = _csv(text)
    acc = 100 * np.array([r["test"]["accuracy"] for r in RESULTS])
    count = np.array([r["test"]["fire_count"] for r in RESULTS])
    for key, values in (("test_accuracy_pct", acc), ("fire_count", count)):
        assert float(stats[key, "mean"]) == pytest.approx(np.mean(values))
        assert float(stats[key, "std"]) == pytest.approx(np.std(values, ddof=1))
        assert float(stats[key, "median"]) == pytest.approx(np.median(values))
        assert float(stats[key, "min"]) == pytest.approx(np.min(values))
        assert float(stats[key, "max"]) == pytest.approx(np.max(values))
        assert int(stats[key, "n"]) == 4
    line = f"| test accuracy (%) | {np.mean(acc):.2f} ± {np.std(acc, ddof=1):.2f} | {np.median(acc):.2f} |"
    assert line in markdown
    # one row per seed and metric
    assert float(seeds["test_accuracy_pct", 7]) == pytest.approx(94.4)
    assert float(seeds["dead_neurons", 1]) == 5
    assert len(seeds) == 8 * 4


def test_summary_table_skips_none():
    markdown, text = plots.summary_table(RESULTS)
    stats, seeds = _csv(text)
    t_first = np.array([11.0, 12.5, 10.0])  # seed 0 has None
    assert int(stats["t_first_output", "n"]) == 3
    assert float(stats["t_first_output", "mean"]) == pytest.approx(np.mean(t_first))
    assert float(stats["t_first_output", "std"]) == pytest.approx(np.std(t_first, ddof=1))
    assert seeds["t_first_output", 0] == ""
    assert int(stats["silent_outputs", "n"]) == 2

    only_none = [dict(r, test=dict(r["test"], silent_outputs=None)) for r in RESULTS]
    markdown, text = plots.summary_table(only_none)
    stats, _ = _csv(text)
    assert "| silent outputs (fraction) | n/a | n/a | n/a | n/a | 0 |" in markdown
    assert stats["silent_outputs", "mean"] == "" and stats["silent_outputs", "n"] == "0"


def test_summary_table_one_seed():
    _, text = plots.summary_table(RESULTS[:1])
    stats, _ = _csv(text)
    assert float(stats["test_accuracy_pct", "mean"]) == pytest.approx(95.1)
    assert float(stats["test_accuracy_pct", "std"]) == 0.0


def _history(silent=True):
    rows = [{"epoch": 0, "val_loss": 1.1, "val_accuracy": 0.3, "val_silent_outputs": 0.6 if silent else None,
             "val_fire_count": 4.0, "val_max_firing": 1.0, "val_dead_neurons": 2,
             "val_t_first_output": None, "time_s": 0.0}]
    for e in (1, 2, 3):
        row = {"epoch": e, "train_loss": 1.0 - 0.1 * e, "train_accuracy": 0.4 + 0.1 * e, "time_s": 1.0}
        if e != 2:  # eval_every > 1: epoch 2 has no validation
            row.update(val_loss=1.0 - 0.1 * e, val_accuracy=0.35 + 0.1 * e,
                       val_silent_outputs=(0.5 - 0.1 * e) if silent else None, val_fire_count=4.0 + e,
                       val_max_firing=1.0 + e, val_dead_neurons=1, val_t_first_output=20.0 - e)
        rows.append(row)
    return rows


def _is_png(path):
    return path.is_file() and path.stat().st_size > len(PNG_MAGIC) and path.read_bytes()[:8] == PNG_MAGIC


def test_write_run_plots(tmp_path):
    feats, labels = yin_yang(size=6, seed=41)
    split = Split(yin_yang_spikes(feats, 30.0), labels)
    data = Dataset(split, split, split, n_classes=3)
    net = eventax.FFEvNN([4, 3], 5, eventax.LIF, 30.0, key=jax.random.PRNGKey(0), wmean=1.5, wlim=3.0)
    cfg = Config(data=DataConfig(name="yinyang", t_max=30.0))

    paths = plots.write_run_plots(cfg, tmp_path / "plots", _history(), net, FirstSpikeLoss(), data, grid=8)
    assert sorted(p.name for p in paths) == ["curves.png", "decision_map.png", "raster.png"]
    assert all(p.parent == tmp_path / "plots" and _is_png(p) for p in paths)


def test_raster_and_decision_map_say_what_they_show(tmp_path, monkeypatch):
    """The raster gives the inputs a panel of their own (one row per channel, one tick
    per input spike), names the output rows and gives the time axis a unit; the decision
    map says that its agreement is an area measure, not the accuracy."""
    drawn = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.setdefault(path.name, fig) and path)
    feats, labels = yin_yang(size=6, seed=41)
    x = yin_yang_spikes(feats, 30.0)
    net = eventax.FFEvNN([4, 3], 5, eventax.LIF, 30.0, key=jax.random.PRNGKey(0), wmean=1.5, wlim=3.0)
    plots.spike_raster(net, x[0], tmp_path / "raster.png")
    ax_in, ax_net, ax_v = drawn["raster.png"].axes[:3]
    assert ax_in.get_ylabel() == "input channel" and sorted(ax_in.get_ylim()) == [-0.5, 4.5]
    assert len(ax_in.collections[0].get_offsets()) == int(np.isfinite(x[0]).sum()) == 5
    labels_right = [t.get_text() for a in ax_net.child_axes for t in a.get_yticklabels()]
    assert labels_right == ["output 0", "output 1", "output 2"]
    assert "time (" in ax_v.get_xlabel()
    plots.yin_yang_decision_map(net, FirstSpikeLoss(), tmp_path / "map.png", t_max=30.0, grid=6)
    assert "area measure" in drawn["map.png"].axes[0].get_title()


class BrokenLoss(FirstSpikeLoss):
    def simulate(self, net, x, max_spikes=0):
        raise RuntimeError("simulation failed")


def test_failed_plot_is_skipped_with_a_warning(tmp_path):
    # no samples: no raster; the decision map fails; curves without silent-output values
    empty = Split(np.zeros((0, 5, 1)), np.zeros(0, int))
    data = Dataset(empty, empty, empty, n_classes=3)
    net = eventax.FFEvNN([2, 3], 5, eventax.LIF, 30.0, key=jax.random.PRNGKey(0))
    cfg = Config(data=DataConfig(name="yinyang"))
    with pytest.warns(UserWarning, match="decision_map.png not written: RuntimeError"):
        paths = plots.write_run_plots(cfg, tmp_path, _history(silent=False), net, BrokenLoss(), data, grid=4)
    assert [p.name for p in paths] == ["curves.png"] and _is_png(paths[0])


def test_sweep_curves(tmp_path):
    histories = {0: _history(), 3: _history()[:2], 5: _history(silent=False)}
    path = plots.sweep_curves(histories, tmp_path / "sweep" / "val_accuracy.png")
    assert _is_png(path)
