"""Data-parallel training: one process vs two processes (gloo over 127.0.0.1) at the same global batch.

    python experiments/data_parallel.py [--configs configs/yinyang/lif_ttfs.toml ...] [--epochs 3]

For each config, `eventax train CONFIG` runs for `--epochs` epochs twice, one
after the other: in one process on one CPU device, then as two processes with
one CPU device each (`JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`,
`JAX_PROCESS_ID`), every process feeding its half of each batch. Epoch 1
(compilation) is dropped; the table gives the median epoch time of the others
(training steps plus validation, as `metrics.jsonl` records it), that time per
training step, and the two-process / one-process ratio. The two runs must also
agree on the validation accuracy of every epoch up to float rounding: they train the
same network, and differ only in how the gradient's batch mean is summed, a few
ulp per step that may flip the odd validation sample after some epochs.

Writes `experiments/results/data_parallel.md` and `.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, RESULTS  # noqa: E402


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    env["JAX_PLATFORMS"] = "cpu"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(config: str, epochs: int, out: Path, processes: int) -> tuple[list[dict], float]:
    """Run `eventax train` as `processes` processes; returns process 0's history and the wall time."""
    argv = [sys.executable, "-m", "eventax", "train", config, "--quiet", "--out", str(out),
            "--set", f"optim.epochs={epochs}", "train.plots=false"]
    if processes == 1:
        envs = [_env()]
    else:
        address = f"127.0.0.1:{_port()}"
        envs = [_env(JAX_COORDINATOR_ADDRESS=address, JAX_NUM_PROCESSES=processes, JAX_PROCESS_ID=i)
                for i in range(processes)]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(argv, env=e, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for e in envs]
    outputs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - t0
    for p, text in zip(procs, outputs):
        if p.returncode:
            raise RuntimeError(f"`{' '.join(argv)}` ({processes} processes) failed:\n{text[-4000:]}")
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return history, wall


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else 0.5 * (xs[len(xs) // 2 - 1] + xs[len(xs) // 2])


def measure(config: str, epochs: int) -> dict:
    from eventax.config import load_config
    from eventax.data import load_dataset

    cfg = load_config(config)
    steps = -(-len(load_dataset(cfg.data).train.y) // cfg.optim.batch_size)
    row = {"config": config, "batch_size": cfg.optim.batch_size, "epochs": epochs}
    accuracies = {}
    with tempfile.TemporaryDirectory() as tmp:
        for processes in (1, 2):
            history, wall = _launch(config, epochs, Path(tmp) / f"p{processes}", processes)
            times = [r["time_s"] for r in history if r["epoch"] >= 2]
            row[f"epoch_s_{processes}"] = _median(times)
            row[f"wall_s_{processes}"] = wall
            row[f"step_s_{processes}"] = _median(times) / steps
            accuracies[processes] = [r.get("val_accuracy") for r in history]
    row["ratio"] = row["epoch_s_2"] / row["epoch_s_1"]
    row["val_accuracy_1"], row["val_accuracy_2"] = accuracies[1], accuracies[2]
    return row


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["configs/yinyang/lif_ttfs.toml", "configs/yinyang/qif_ttfs.toml"])
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error("--epochs must be at least 2 (epoch 1 includes compilation)")
    rows = []
    for config in args.configs:
        row = measure(config, args.epochs)
        print(json.dumps(row), flush=True)
        rows.append(row)
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / "data_parallel.jsonl"
    with open(log, "a") as f:
        for row in rows:
            f.write(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), **row}) + "\n")
    latest = {}  # the table: the latest run of every config measured so far
    for line in log.read_text().splitlines():
        row = json.loads(line)
        latest[row["config"]] = row
    rows = list(latest.values())
    lines = [
        "# Data-parallel training: 1 process vs 2 processes x 1 CPU device (gloo), same global batch",
        "",
        "`python experiments/data_parallel.py [--configs ...]` (latest run per config, its date in",
        "`data_parallel.jsonl`); epoch time = training steps + validation,",
        "median over epochs 2.. (epoch 1 compiles). Both runs train the same network; `val accuracy` gives",
        "each run's validation accuracy at the last epoch (equal up to float rounding of the batch mean).",
        "",
        "| config | batch | epochs | 1 process: s/epoch | s/step | 2 processes: s/epoch | s/step | ratio 2/1 | val accuracy 1 / 2 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['config']}` | {r['batch_size']} | {r['epochs']} | {r['epoch_s_1']:.2f} | {r['step_s_1']:.3f} "
            f"| {r['epoch_s_2']:.2f} | {r['step_s_2']:.3f} | {r['ratio']:.2f} | {r['val_accuracy_1'][-1]:.3f} / {r['val_accuracy_2'][-1]:.3f} |"
        )
    (RESULTS / "data_parallel.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
