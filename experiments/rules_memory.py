"""Memory of each learning rule against the sequence length (100, 1 000, 10 000 grid steps).

    python experiments/rules_memory.py [--config configs/rules/randman.toml] [--batch 8]
        [--steps 100 1000 10000] [--run BPTT EProp ...] [--out experiments/results]

The config's network with `max_solver_time` stretched to `steps * dt` (inputs
unchanged, the rest of the trial is silent). Two measures per rule and length:

- `xla_mb`: the peak buffer memory XLA plans for `jit(rule.gradient)` on a
  batch (`memory_analysis()`: temporaries + arguments + outputs), exact and
  noise-free, from compilation alone;
- `rss_mb` (rules named in `--run`): the peak resident memory of a fresh process
  that builds the network, compiles and runs the gradient once (the same work
  at every length but the gradient, so differences between lengths are the
  gradient's).

Writes `<out>/rules_memory.json` and `.md`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

from eventax import rules
from eventax.config import load_config
from eventax.data import load_dataset
from eventax.train.build import build_network

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rules import build_rule  # noqa: E402

from common import REPO, RESULTS  # noqa: E402
NAMES = ("BPTT", "RTRL", "EProp", "OSTL", "OTTT", "RFLO", "FPTT")


def setup(config: str, steps: int, batch: int, name: str):
    cfg = load_config(config)
    horizon = cfg.model.dt * steps
    cfg = load_config(config, [f"model.max_solver_time={horizon}"])
    data = load_dataset(cfg.data)
    net = build_network(cfg.model, data.train.x.shape[1], data.n_classes, jax.random.PRNGKey(0))
    assert net.n_steps == steps, (net.n_steps, steps)
    loss = rules.ReadoutCrossEntropy(**cfg.rules.readout)
    rule = build_rule(name, cfg.rules.params).prepare(net)
    x, y = jnp.asarray(data.train.x[:batch]), jnp.asarray(data.train.y[:batch])
    fn = eqx.filter_jit(lambda rule, net, x, y: rule.gradient(net, x, y, loss))
    return fn, (rule, net, x, y)


def xla_mb(config, steps, batch, name) -> float:
    fn, args = setup(config, steps, batch, name)
    arrays, static = eqx.partition(args, eqx.is_array)
    lowered = jax.jit(lambda arrays: fn(*eqx.combine(arrays, static))).lower(arrays)
    mem = lowered.compile().memory_analysis()
    return (mem.temp_size_in_bytes + mem.argument_size_in_bytes + mem.output_size_in_bytes) / 2**20


def rss_mb(config, steps, batch, name) -> float:
    fn, args = setup(config, steps, batch, name)
    jax.block_until_ready(fn(*args))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "configs" / "rules" / "randman.toml"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, nargs="*", default=[100, 1000, 10000])
    ap.add_argument("--rules", nargs="*", default=list(NAMES))
    ap.add_argument("--run", nargs="*", default=[], help="rules whose gradient is also run for a measured RSS")
    ap.add_argument("--child", nargs=2, metavar=("RULE", "STEPS"), help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(rss_mb(args.config, int(args.child[1]), args.batch, args.child[0])))
        return
    rows = []
    for name in args.rules:
        for steps in args.steps:
            row = {"rule": name, "steps": steps, "xla_mb": xla_mb(args.config, steps, args.batch, name)}
            if name in args.run:
                cmd = [sys.executable, __file__, "--config", args.config, "--batch", str(args.batch),
                       "--child", name, str(steps)]
                row["rss_mb"] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            rows.append(row)
            print(row, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rules_memory.json").write_text(json.dumps({"config": args.config, "batch": args.batch, "rows": rows}, indent=1))
    lines = [f"Peak memory of `rule.gradient` on a batch of {args.batch} ({args.config}); MB.", "",
             "| rule | " + " | ".join(f"XLA {s} steps" for s in args.steps) + " | "
             + " | ".join(f"RSS {s} steps" for s in args.steps) + " |",
             "|---|" + "---:|" * (2 * len(args.steps))]
    for name in args.rules:
        mine = {r["steps"]: r for r in rows if r["rule"] == name}
        xla = " | ".join(f"{mine[s]['xla_mb']:.2f}" for s in args.steps)
        rss = " | ".join(f"{mine[s]['rss_mb']:.0f}" if "rss_mb" in mine[s] else "—" for s in args.steps)
        lines.append(f"| {name} | {xla} | {rss} |")
    (out / "rules_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
