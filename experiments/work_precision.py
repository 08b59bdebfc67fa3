"""Work-precision on yy-5-50-3 (see shared/BENCHMARKS.md): first-spike error against a
float64 reference, and fwd / fwd+bwd samples/s, for solver settings of both engines.

The reference is the layered engine in float64 with Tsit5 at step 0.05; it is checked
against the general event loop in float64 with Tsit5 at step 0.01 (both printed).
Every setting runs on the same saved weights and inputs as `benchmark.py`, in one
process, so the speed ratios between rows are from the same run.

    python experiments/work_precision.py [--tmem 10] [--batch 256] [--repeats 3]

Appends one JSON line per setting to `results/work_precision.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark as bench  # noqa: E402

# (label, engine, solver name, step)
SETTINGS = [
    ("old default: loop Euler 0.01", "loop", "Euler", 0.01),
    ("layered Euler 0.01", "layered", "Euler", 0.01),
    ("layered Tsit5 0.5", "layered", "Tsit5", 0.5),
    ("default: layered Tsit5 1.0", "layered", "Tsit5", 1.0),
    ("layered Tsit5 2.0", "layered", "Tsit5", 2.0),
]


def build(weights, tmem, engine, solver, step, dtype):
    import diffrax as dfx

    import eventax as ex

    return ex.FFEvNN(
        [50, 3], 5, ex.LIF, 30.0, thresh=1.0, tsyn=5.0, tmem=tmem, vreset=0.0,
        init_weights=weights, init_bias=0.0, solver=getattr(dfx, solver)(),
        solver_stepsize=step, engine=engine, dtype=dtype,
    )


def errors(t, ref):
    fin = np.isfinite(ref)
    flips = int(np.sum(np.isfinite(t) != fin))
    both = fin & np.isfinite(t)
    e = np.abs(t[both] - ref[both])
    return float(np.median(e)), float(np.max(e)), flips


def timed(fn, args, repeats, batch):
    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        runs.append(time.perf_counter() - t0)
    steady = float(np.median(runs))
    return batch / steady, first - steady


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--tmem", type=float, default=10.0)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    jax.config.update("jax_enable_x64", True)
    weights, _ = bench.load_or_write_weights(50)
    x, labels = bench.make_inputs(args.batch)
    ref_net = build(weights, args.tmem, "layered", "Tsit5", 0.05, jnp.float64)
    ref = np.asarray(jax.jit(jax.vmap(ref_net.ttfs))(jnp.asarray(x, jnp.float64)))
    check_net = build(weights, args.tmem, "loop", "Tsit5", 0.01, jnp.float64)
    check = np.asarray(jax.jit(jax.vmap(check_net.ttfs))(jnp.asarray(x[:64], jnp.float64)))
    print(f"reference vs event loop (float64, 64 samples): median/max/flips {errors(check, ref[:64])}")

    def loss(net, xb, yb):
        t = jax.vmap(net.ttfs)(xb)
        t = jnp.where(jnp.isfinite(t), t, 30.0)
        return optax.softmax_cross_entropy_with_integer_labels(-t, yb).mean()

    xb, yb = jnp.asarray(x, jnp.float32), jnp.asarray(labels)
    out = Path(__file__).resolve().parents[1] / "results" / "work_precision.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    print("| setting | median err | max err | flips | fwd /s | fwd+bwd /s | compile fwd+bwd s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, engine, solver, step in SETTINGS:
        net = build(weights, args.tmem, engine, solver, step, jnp.float32)
        fwd = jax.jit(jax.vmap(net.ttfs))
        med, mx, flips = errors(np.asarray(fwd(xb)), ref)
        sf, _ = timed(fwd, (xb,), args.repeats, args.batch)
        sb, cb = timed(eqx.filter_jit(eqx.filter_value_and_grad(loss)), (net, xb, yb), args.repeats, args.batch)
        row = dict(setting=label, tmem=args.tmem, batch=args.batch, median_error=med, max_error=mx,
                   flips=flips, fwd_per_s=sf, fwdbwd_per_s=sb, compile_fwdbwd_s=cb,
                   date=time.strftime("%Y-%m-%d"))
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"| {label} | {med:.1e} | {mx:.1e} | {flips} | {sf:.0f} | {sb:.0f} | {cb:.1f} |", flush=True)


if __name__ == "__main__":
    main()
