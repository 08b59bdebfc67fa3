"""How the engine scales with hidden size and batch size, on the configs' own networks,
losses and solver settings (the library defaults), float32, this machine's CPU.

Per case, in its own worker process (so its peak RSS is attributable): the config's
network (hidden size overridden), the config's loss over a batch of its training data,
`jit(vmap(loss.simulate))` as the forward and `jit(value_and_grad(mean loss))` as
fwd+bwd; samples/s (median of `--repeats` calls after a compiling call), compile time
(first call minus a steady call), peak RSS.

    python experiments/scale.py [--repeats 3] [--cases yinyang-hidden yinyang-batch mnist]

Writes `results/scale.md` (and one JSON line per case to `results/scale.jsonl`).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark as bench  # noqa: E402  (its `time_calls`)

from common import REPO as ROOT  # noqa: E402
from common import RESULTS  # noqa: E402
YY = "configs/yinyang/lif_ttfs.toml"
QIF = "configs/yinyang/qif_ttfs.toml"
MNIST = "configs/mnist/lif_exp_integral.toml"
CASES = {
    "yinyang-hidden": [(YY, h, 256) for h in (50, 100, 200, 500, 1000)],
    "yinyang-batch": [(YY, 50, b) for b in (1, 16, 64, 256, 1024)],
    "qif": [(QIF, 50, 256)],
    "mnist": [(MNIST, 200, b) for b in (64, 256)],
}


def measure(config: str, hidden: int, batch: int, repeats: int) -> dict:
    """One case, in this process."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from eventax.config import load_config
    from eventax.data import load_dataset
    from eventax.train.build import build_loss, build_network

    cfg = load_config(ROOT / config, [f"model.hidden=[{hidden}]"])
    data = load_dataset(cfg.data)
    x = jnp.asarray(np.resize(data.train.x, (batch, *data.train.x.shape[1:])))
    y = jnp.asarray(np.resize(data.train.y, (batch,)))
    net = build_network(cfg.model, x.shape[1], data.n_classes, jax.random.PRNGKey(0))
    loss, _ = build_loss(cfg.loss, cfg.model, data.start_channels, net)

    def mean_loss(net, x, y):
        return jnp.mean(jax.vmap(lambda xi, yi: loss(loss.simulate(net, xi), yi))(x, y))

    fwd = jax.jit(jax.vmap(lambda xi: loss.simulate(net, xi)))
    fwdbwd = eqx.filter_jit(eqx.filter_value_and_grad(mean_loss))
    row = dict(config=config, hidden=hidden, batch=batch, solver=type(net.solver).__name__,
               engine=net.engine, date=time.strftime("%Y-%m-%d"))
    for name, fn, args in (("fwd", fwd, (x,)), ("fwdbwd", fwdbwd, (net, x, y))):
        timing = bench.time_calls(fn, args, repeats, batch)
        row[f"{name}_per_s"] = timing["samples_per_s"]
        row[f"{name}_compile_s"] = timing["compile_s"]
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--worker", nargs=3, metavar=("CONFIG", "HIDDEN", "BATCH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        config, hidden, batch = args.worker
        print(json.dumps(measure(config, int(hidden), int(batch), args.repeats)))
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    header = ("| config | hidden | batch | fwd /s | fwd+bwd /s | bwd/fwd | compile fwd+bwd s | peak RSS MB |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|")
    print(header)
    for case in args.cases:
        for config, hidden, batch in CASES[case]:
            out = subprocess.run(
                [sys.executable, __file__, "--repeats", str(args.repeats), "--worker", config, str(hidden), str(batch)],
                capture_output=True, text=True, cwd=ROOT,
            )
            if out.returncode:
                lines = out.stderr.strip().splitlines()
                why = next((ln for ln in lines if "RuntimeError:" in ln or ln.startswith("ValueError")), lines[-1])
                print(f"| {config} | {hidden} | {batch} | failed: {why} |")
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            with (RESULTS / "scale.jsonl").open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(_line(row), flush=True)
    text = ("# Scaling (float32, library default solver settings, this machine's CPU)\n\n"
            f"`python experiments/scale.py --cases {' '.join(args.cases)}`\n\n{header}\n"
            + "\n".join(_line(r) for r in rows) + "\n")
    (RESULTS / "scale.md").write_text(text)


def _line(r: dict) -> str:
    return (f"| {r['config']} | {r['hidden']} | {r['batch']} | {r['fwd_per_s']:.0f} | {r['fwdbwd_per_s']:.0f} "
            f"| {r['fwd_per_s'] / r['fwdbwd_per_s']:.1f} | {r['fwdbwd_compile_s']:.1f} | {r['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
