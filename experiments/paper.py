"""The paper's results table: train its rows and tabulate them from the run directories.

    python experiments/paper.py run [--seeds 0] [--rows yinyang-lif-ttfs ...] [--out runs/paper]
    python experiments/paper.py table [--out runs/paper] [--write experiments/RESULTS.md]

`run` trains every row's config (in `ROWS` order) for each seed, one `eventax train`
process per run, in `<out>/<config name>/seed<s>`: a finished run (`results.json`) is
skipped, an interrupted one continues with `--resume`, so the command can be killed and
restarted at any time. Seeds go in the order given, all rows of one seed before the next
(`--seeds 0` first, then `--seeds 1 2 3 4`).

`table` reads the run directories and prints the table (Markdown): per row the test
accuracy at the best validation epoch over the finished seeds (mean ± std, median), the
paper's median, the spike metrics of `eventax.train.metrics` on the test set (mean over
seeds), epochs, wall time and the solver settings. `--write FILE` puts it between the
`<!-- paper table -->` markers of FILE.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO  # noqa: E402

# (row, config, the paper's median test accuracy in %: None where it reports none)
ROWS = [
    ("LIF (AMOS) TTFS", "yinyang/lif_ttfs.toml", 90.90),
    ("LIF max", "yinyang/lif_max.toml", 95.20),
    ("LIF integral", "yinyang/lif_integral.toml", 96.70),
    ("LIF exp-integral", "yinyang/lif_exp_integral.toml", 97.10),
    ("QIF TTFS", "yinyang/qif_ttfs.toml", 98.70),
    ("QIF max", "yinyang/qif_max.toml", 98.60),
    ("QIF integral", "yinyang/qif_integral.toml", 99.30),
    ("QIF exp-integral", "yinyang/qif_exp_integral.toml", 99.10),
    ("EIF TTFS", "yinyang/eif_ttfs.toml", 97.20),
    ("EIF max", "yinyang/eif_max.toml", 98.10),
    ("EIF integral", "yinyang/eif_integral.toml", 97.80),
    ("EIF exp-integral", "yinyang/eif_exp_integral.toml", 97.70),
    ("Izhikevich (AMOS) TTFS", "yinyang/izhikevich_ttfs.toml", 97.10),
    ("Izhikevich max", "yinyang/izhikevich_max.toml", 97.70),
    ("Izhikevich integral", "yinyang/izhikevich_integral.toml", 98.10),
    ("Izhikevich exp-integral", "yinyang/izhikevich_exp_integral.toml", 98.10),
    ("multi-compartment, 7 dendrites, TTFS", "yinyang/dendritic_7_ttfs.toml", 96.85),
    ("multi-compartment, 14 dendrites, TTFS", "yinyang/dendritic_14_ttfs.toml", 96.85),
    ("delayed XOR, EGRU, exp-integral", "xor/egru_exp_integral.toml", 100.0),
    ("MNIST 784-200-10 LIF, exp-integral", "mnist/lif_exp_integral.toml", 97.50),
]
METRICS = ("max_firing", "dead_neurons", "fire_count", "t_first_output")
START, END = "<!-- paper table -->", "<!-- /paper table -->"


def config_name(config: str) -> str:
    return tomllib.loads((REPO / "configs" / config).read_text())["name"]


def run(out: Path, seeds, rows) -> None:
    for seed in seeds:
        for label, config, _ in ROWS:
            name = config_name(config)
            if rows and name not in rows:
                continue
            d = out / name / f"seed{seed}"
            if (d / "results.json").is_file():
                continue
            cmd = [sys.executable, "-m", "eventax", "train", str(REPO / "configs" / config),
                   "--set", f"train.seed={seed}", "--out", str(d), "--quiet"]
            if (d / "checkpoint.zip").is_file():
                cmd.append("--resume")
            print(f"[{label}, seed {seed}] {' '.join(cmd[1:])}", flush=True)
            done = subprocess.run(cmd, cwd=REPO)
            if done.returncode:
                print(f"[{label}, seed {seed}] failed with exit status {done.returncode}", flush=True)


def _seed_results(d: Path) -> list[dict]:
    return [json.loads(f.read_text()) for f in sorted(d.glob("seed*/results.json"))]


def _solver(config: str) -> str:
    model = tomllib.loads((REPO / "configs" / config).read_text())["model"]
    if "solver" not in model:
        return "model defaults"
    return f"{model['solver']} {model.get('solver_stepsize', '')}".strip()


def table(out: Path) -> str:
    head = ("| row | seeds | test acc mean ± std | median | paper median | max firing | dead | fire count "
            "| first output spike | epochs | wall time / seed | solver |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for label, config, paper in ROWS:
        res = _seed_results(out / config_name(config))
        if not res:
            lines.append(f"| {label} | 0 | — | — | {paper:.2f} | | | | | | | {_solver(config)} |")
            continue
        acc = [100 * r["test"]["accuracy"] for r in res]
        std = statistics.stdev(acc) if len(acc) > 1 else 0.0
        m = {k: _mean([r["test"].get(k) for r in res]) for k in METRICS}
        epochs = "/".join(sorted({str(r["epochs"]) for r in res}))
        wall = statistics.mean(r["train_time_s"] for r in res) / 60
        lines.append(
            f"| {label} | {len(res)} | {statistics.mean(acc):.2f} ± {std:.2f} | {statistics.median(acc):.2f} "
            f"| {paper:.2f} | {_fmt(m['max_firing'])} | {_fmt(m['dead_neurons'])} | {_fmt(m['fire_count'])} "
            f"| {_fmt(m['t_first_output'])} | {epochs} | {wall:.0f} min | {_solver(config)} |"
        )
    return "\n".join(lines)


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def _fmt(v):
    return "—" if v is None else f"{v:.2f}"


def write(path: Path, text: str) -> None:
    doc = path.read_text()
    if START not in doc or END not in doc:
        raise ValueError(f"{path} has no {START} ... {END} markers.")
    before, rest = doc.split(START, 1)
    path.write_text(before + START + "\n" + text + "\n" + END + rest.split(END, 1)[1])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["run", "table"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--rows", nargs="*", default=[], help="config names (default: every row)")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "paper")
    p.add_argument("--write", type=Path, default=None)
    args = p.parse_args(argv)
    if args.command == "run":
        run(args.out, args.seeds, args.rows)
        return
    text = table(args.out)
    print(text)
    if args.write:
        write(args.write, text)


if __name__ == "__main__":
    main()
