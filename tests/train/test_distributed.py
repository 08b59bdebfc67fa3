"""Data parallelism for real: two processes talking over gloo on 127.0.0.1, and two
devices in one process, train the tiny Yin-Yang config to the same parameters and
validation metrics as one process on one device.

All runs are subprocesses (`_dp_worker.py`) started together, each in its own
session under one hard deadline: if any of them fails, the others of its group
are killed at once (a lone rank would otherwise wait for its peer until the
distributed-runtime timeouts); on the deadline every process group is killed;
either way the test fails showing each process's output.

Tolerance: 1e-5 relative to each array's largest magnitude, on parameters and
optimiser state. The runs differ only in how the gradient's sum over the batch
is associated (one device: one reduction over 16 samples; two: partial sums of
8 added by an all-reduce), a float32 rounding difference of a few ulp (~1e-7
relative) in the gradient; Adam turns it into a relative difference of the same
order in each update, so after 4 steps the O(1) parameters differ by ~1e-7.
1e-5 leaves a 100x margin and is still ~100x below one step's update (lr 5e-3).

Adam's update does not depend on the gradient's scale, so equal parameters do
not prove the gradient is the batch *mean* (a sum, or an all-reduce applied
twice, would train the same); its moments `mu`, `nu` in the checkpoint do
carry the scale, hence they are compared too, with gradient clipping off
(`optim.clip_norm = 0`; clipping would hide the scale as well).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import numpy as np
import pytest

from eventax.config import from_dict
from eventax.train import DataParallel, initialize_distributed, load_checkpoint, read_history

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("_dp_worker.py")
DEADLINE_S = 900  # every process of the module together; a normal run takes a fraction of it
TOL = 1e-5

TINY = {
    "name": "dp",
    "data": {"name": "yinyang", "train_size": 64, "val_size": 32, "test_size": 32},
    # wmean 2.5: with the suggested 1.5 every output of this seed is silent at init;
    # here all outputs spike, so the gradient reaches every layer.
    "model": {"neuron": "LIF", "params": {"wmean": 2.5, "wlim": 3.0}, "hidden": [6],
              "max_event_steps": 100, "solver_stepsize": 0.25},
    "optim": {"batch_size": 16, "epochs": 1, "clip_norm": 0.0},
    "train": {"plots": False, "eval_batch_size": 32},
}

# Compiles dominate the run time; these flags cut the train step's XLA compile from
# ~26 to ~8 CPU-s (tracing, ~15 CPU-s, is untouched). Every run uses the same flags.
_XLA_FLAGS = ("--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
              " --xla_cpu_use_fusion_emitters=false")


def _env(devices: int = 1, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JAX_", "XLA_", "SLURM_", "OMPI_", "PMI_", "TPU_"))}
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = _XLA_FLAGS + (f" --xla_force_host_platform_device_count={devices}" if devices > 1 else "")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Run(NamedTuple):
    code: int | None  # exit status; negative: killed by that signal
    output: str
    note: str  # why the test killed it, if it did


def _run_all(jobs: dict, logs: Path, deadline_s: float) -> dict[str, Run]:
    """Start every job `{name: (group, argv, env)}` at once, each in its own session.

    When a job fails, the rest of its group (the ranks of one distributed run)
    is killed at once; at the deadline every process group still running is.
    """
    logs.mkdir(parents=True, exist_ok=True)
    procs, files, notes = {}, {}, {}
    for name, (_, argv, env) in jobs.items():
        files[name] = open(logs / f"{name}.log", "w")
        procs[name] = subprocess.Popen(
            argv, env=env, cwd=REPO, stdout=files[name], stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill(names, why):
        for n in names:
            if procs[n].poll() is None:
                notes[n] = why
                try:
                    os.killpg(procs[n].pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for n in names:
            procs[n].wait()

    end = time.monotonic() + deadline_s
    try:
        while any(p.poll() is None for p in procs.values()):
            for n, p in procs.items():
                if p.poll() not in (None, 0) and n not in notes:
                    notes[n] = ""
                    kill([m for m in procs if jobs[m][0] == jobs[n][0]], f"killed by the test: {n} failed")
            if time.monotonic() > end:
                kill(list(procs), f"killed by the test at the deadline of {deadline_s:.0f} s")
            time.sleep(0.2)
    finally:
        kill(list(procs), "killed by the test: interrupted")
        for f in files.values():
            f.close()
    return {n: Run(procs[n].returncode, (logs / f"{n}.log").read_text(), notes.get(n, "")) for n in jobs}


def _outputs(runs: dict[str, Run], *names: str) -> list[str]:
    """The outputs of `names`; fails the test, showing them, unless all exited cleanly."""
    if any(runs[n].code != 0 for n in names):
        shown = "\n".join(
            f"----- {n}: exit {runs[n].code} {runs[n].note} -----\n{runs[n].output[-6000:]}" for n in names
        )
        pytest.fail(f"Data-parallel run failed:\n{shown}", pytrace=False)
    return [runs[n].output for n in names]


def _line(output: str, tag: str):
    lines = [ln for ln in output.splitlines() if ln.startswith(tag + " ")]
    assert lines, f"no `{tag}` line in:\n{output[-4000:]}"
    return json.loads(lines[-1][len(tag) + 1:])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One device (reference), two local devices, and two processes: all at once."""
    root = tmp_path_factory.mktemp("dp")
    config = json.dumps(TINY)
    py = [sys.executable, str(WORKER), config]
    port = _free_port()
    dist = {"JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": 2}
    # Each rank gets its own run directory, as hosts without a shared file system
    # would: rank 1 must neither write nor need anything of rank 0's.
    jobs = {
        "rank0": ("dist", [*py, str(root / "dist" / "rank0")], _env(**dist, JAX_PROCESS_ID=0)),
        "rank1": ("dist", [*py, str(root / "dist" / "rank1"), "--watch", str(root / "dist")],
                  _env(**dist, JAX_PROCESS_ID=1)),
        "two_devices": ("two", [*py, str(root / "two"), "--bad-batch", str(root / "bad")], _env(devices=2)),
        "one_device": ("one", [*py, str(root / "one")], _env()),
    }
    t0 = time.monotonic()
    runs = _run_all(jobs, root / "logs", DEADLINE_S)
    print(f"data-parallel subprocesses: {time.monotonic() - t0:.1f} s")
    return root, runs


def _like():
    from eventax.train.build import build_network, build_optimiser

    cfg = from_dict(TINY)
    net = build_network(cfg.model, 5, 3, jax.random.PRNGKey(cfg.train.seed))
    params, _ = eqx.partition(net, eqx.is_inexact_array)
    params = jax.tree_util.tree_map(lambda a: a[None], params)
    return params, jax.vmap(build_optimiser(cfg.optim).init)(params)


def _final_state(run_dir: Path):
    (params, opt_state), meta = load_checkpoint(run_dir / "checkpoint.zip", _like())
    assert meta["epoch"] == TINY["optim"]["epochs"]
    return params, opt_state


def _compare(tree, ref) -> dict:
    """Every float leaf within TOL of its reference, relative to the leaf's largest
    magnitude (so Adam's small second moments are held to their own scale);
    integer leaves (step counts) equal. Returns the largest differences found."""
    worst = {"abs": 0.0, "rel": 0.0}
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(tree), jax.tree_util.tree_leaves(ref)):
        a, b = np.asarray(a), np.asarray(b)
        where = jax.tree_util.keystr(path)
        if not np.issubdtype(b.dtype, np.inexact):
            np.testing.assert_array_equal(a, b, err_msg=where)
            continue
        scale = float(np.max(np.abs(b), initial=0.0))
        np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL * scale, err_msg=where)
        d = float(np.max(np.abs(a - b), initial=0.0))
        worst = {"abs": max(worst["abs"], d), "rel": max(worst["rel"], d / scale if scale else 0.0)}
    return worst


def _assert_same_training(run_dir: Path, ref_dir: Path) -> dict:
    """Parameters and optimiser state close, validation metrics equal; returns the
    largest differences."""
    (p, s), (p_ref, s_ref) = _final_state(run_dir), _final_state(ref_dir)
    moved = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                for a, b in zip(jax.tree_util.tree_leaves(p_ref), jax.tree_util.tree_leaves(_like()[0])))
    assert moved > 100 * TOL, "training did not move the parameters: the comparison would prove nothing"
    diff = {"params": _compare(p, p_ref), "opt_state": _compare(s, s_ref)}
    history, ref = read_history(run_dir), read_history(ref_dir)
    assert [r["epoch"] for r in history] == [r["epoch"] for r in ref] == [0, 1]
    for row, ref_row in zip(history, ref):
        for key, value in ref_row.items():
            if key == "time_s":
                continue
            if isinstance(value, float):  # losses and means: same samples, parameters equal up to TOL
                assert row[key] == pytest.approx(value, rel=TOL, abs=TOL), (row["epoch"], key)
            else:  # accuracies of 32 samples, counts, None
                assert row[key] == value, (row["epoch"], key)
    return diff


def _untimed(results: dict) -> dict:
    return {k: v for k, v in results.items() if k != "train_time_s"}


def _same_results(a: dict, b: dict) -> None:
    a, b = _untimed(a), _untimed(b)
    for key in ("test",):
        for k, v in b[key].items():
            assert a[key][k] == (pytest.approx(v, rel=TOL, abs=TOL) if isinstance(v, float) else v), k
        a.pop(key), b.pop(key)
    assert a == b


def test_two_processes_train_like_one(runs):
    """Two processes (one CPU device each, gloo all-reduce over 127.0.0.1), each feeding
    its half of every batch: same parameters and metrics as one process."""
    root, done = runs
    out0, out1, out_one = _outputs(done, "rank0", "rank1", "one_device")
    rank0, rank1, one = (_line(o, "DONE") for o in (out0, out1, out_one))
    assert [(r["process"], r["processes"], r["devices"], r["local_devices"]) for r in (rank0, rank1)] == [
        (0, 2, 2, 1), (1, 2, 2, 1)]
    print("largest differences, 2 processes vs 1:", _assert_same_training(root / "dist" / "rank0", root / "one"))
    # Only process 0 writes: rank 1 created nothing, under its own run directory or rank 0's.
    assert _line(out1, "WRITES") == []
    assert not (root / "dist" / "rank1").exists()
    for f in ("config.toml", "metrics.jsonl", "metrics.csv", "checkpoint.zip", "best.evnn", "results.json"):
        assert (root / "dist" / "rank0" / f).is_file(), f
    # Both ranks return the results process 0 wrote, and they match the one-device run.
    written = json.loads((root / "dist" / "rank0" / "results.json").read_text())
    assert rank0["results"] == written
    assert _untimed(rank1["results"]) == _untimed(written)  # times are measured per process
    _same_results(rank0["results"], one["results"])


def test_two_local_devices_train_like_one(runs):
    """One process, two (forced host) CPU devices, batch split by `NamedSharding`."""
    root, done = runs
    two, one = (_line(o, "DONE") for o in _outputs(done, "two_devices", "one_device"))
    assert (two["processes"], two["devices"], one["devices"]) == (1, 2, 1)
    print("largest differences, 2 devices vs 1:", _assert_same_training(root / "two", root / "one"))
    _same_results(two["results"], one["results"])


def test_batch_size_must_split_over_devices(runs):
    """With two devices a batch of 5 is refused, with a message naming the key, the
    sizes and valid choices, before `train` creates anything."""
    root, done = runs
    bad = _line(done["two_devices"].output, "BAD_BATCH")  # printed before training starts
    assert bad["devices"] == 2 and bad["batch_size"] == 5
    for message in (bad["check_batch_size"], bad["train"]):
        assert message is not None, "no ValueError"
        assert "`optim.batch_size` (5)" in message and "number of devices (2" in message and "4 or 6" in message
    assert not bad["wrote"]


def test_check_batch_size_with_a_given_device_list():
    cpu = jax.devices("cpu")[0]
    dp = DataParallel(devices=[cpu] * 4)
    dp.check_batch_size(12)
    with pytest.raises(ValueError, match=r"`optim.batch_size` \(10\) must be divisible by the number of devices \(4"):
        dp.check_batch_size(10)
    with pytest.raises(ValueError, match=r"`train.eval_batch_size` \(3\).*Use e.g. 4\."):
        dp.check_batch_size(3, "train.eval_batch_size")


def test_initialize_distributed_reads_the_environment(monkeypatch):
    calls = []
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **k: calls.append((a, k)))
    for key in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "SLURM_NTASKS",
                "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    initialize_distributed()  # an ordinary run
    monkeypatch.setenv("SLURM_NTASKS", "1")
    initialize_distributed()  # a one-task SLURM job
    assert calls == []
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1234")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    monkeypatch.setenv("JAX_PROCESS_ID", "1")
    initialize_distributed()
    assert calls == [(("127.0.0.1:1234",), {"num_processes": 2, "process_id": 1})]
    monkeypatch.setenv("JAX_PROCESS_ID", "one")
    with pytest.raises(ValueError, match="JAX_PROCESS_ID"):
        initialize_distributed()
