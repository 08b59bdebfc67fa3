"""Work-precision on yy-5-50-3 (see shared/BENCHMARKS.md): first-spike error against a
float64 reference, and fwd / fwd+bwd samples/s, for solver settings of both engines.

`--model LIF` (the default) uses the saved LIF weights of `benchmark.py`; its reference
is the layered engine in float64 with Tsit5 at step 0.05. `--model QIF|EIF|Izhikevich`
uses the Yin-Yang configs' neuron parameters and weights drawn from their `wmean`/`wlim`
(key 0, float64, the same for every row); the reference is the layered engine in
float64 with Tsit5 and PIDController rtol = atol = 1e-10. Each reference is checked
against the general event loop in float64 with Tsit5 at constant step 0.005 or 0.01
(printed).
Every setting runs on the same saved weights and inputs as `benchmark.py`, each in
its own fresh worker process (as the peer does: a row measured after the float64
reference in the same process ran up to 2x slow), one after the other in the same run.
With `--jaxsnn`
(tmem 10 only: its closed form needs tmem = 2 tsyn) the peer runs right after, in its
own virtual environment (`experiments/bench_jaxsnn.py`), and its spike times are
scored against the same reference; with `--eventax010` (LIF) so does the published
eventax 0.1.0 at Euler 0.01 (`benchmark.py`'s workers).

    python experiments/work_precision.py [--model LIF] [--tmem 10] [--batch 256]
        [--repeats 3] [--jaxsnn ../jaxsnn-ref/bin/python] [--eventax010 ../eventax-ref/bin/python]

Appends one JSON line per setting to `results/work_precision.jsonl` and draws
`results/work_precision_<model>.png` (LIF: `_tmem<T>`; error against fwd+bwd
samples/s, log-log).
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
from common import SCRATCH  # noqa: E402

# (label, engine, solver name, step or PID rtol); `None`: the library defaults
SETTINGS = [
    ("library defaults (layered Tsit5 1.0)", None, None, None),
    ("previous defaults: loop Euler 0.01", "loop", "Euler", 0.01),
    ("loop Euler 0.001", "loop", "Euler", 0.001),
    ("loop Tsit5 0.5", "loop", "Tsit5", 0.5),
    ("loop Tsit5 PID rtol 1e-5", "loop", "Tsit5", "pid1e-5"),
    ("layered Euler 0.01", "layered", "Euler", 0.01),
    ("layered Tsit5 0.5", "layered", "Tsit5", 0.5),
    ("layered Tsit5 2.0", "layered", "Tsit5", 2.0),
]


# The nonlinear models: (parameters of configs/yinyang/<model>_ttfs.toml, extra keywords)
NONLINEAR = {
    "QIF": (dict(tsyn=2.5, tmem=5.0, wmean=1.5, wlim=3.0), {}),
    "EIF": (dict(tsyn=2.5, tmem=5.0, vT=1.0, deltaT=0.2, wmean=3.0, wlim=6.0, bmean=0.3), {}),
    # Izhikevich neurons burst: room for their spikes in both engines
    "Izhikevich": (dict(a=0.02, b=0.2, c=-65.0, d=4.0, v_thresh=30.0, tau_syn=5.0, wmean=15.0, wlim=20.0),
                   dict(layer_capacity=1000, max_event_steps=4000)),
}
NONLINEAR_SETTINGS = [
    ("library defaults (Tsit5, PID 1e-6, the model's engine)", None, None, None),
    ("previous defaults: loop Euler 0.01", "loop", "Euler", 0.01),
    ("loop Tsit5 PID rtol 1e-5", "loop", "Tsit5", "pid1e-5"),
    ("loop Tsit5 PID rtol 1e-6", "loop", "Tsit5", "pid1e-6"),
    ("layered Tsit5 PID rtol 1e-6", "layered", "Tsit5", "pid1e-6"),
    ("layered Tsit5 0.25", "layered", "Tsit5", 0.25),
]


def build(weights, tmem, engine, solver, step, dtype, model="LIF"):
    """The yy-5-50-3 network of `model` with `weights` (`None`: drawn from the model's
    `wmean`/`wlim`); `solver=None`: the library defaults; `step="pid<rtol>"`: Tsit5 with
    a PIDController (first step 0.5)."""
    import diffrax as dfx
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import eventax as ex

    kw = {}
    if solver is not None:
        kw = dict(solver=getattr(dfx, solver)(), engine=engine, solver_stepsize=step)
        if isinstance(step, str):  # "pid<rtol>"
            rtol = float(step[3:])
            kw.update(solver_stepsize=0.5, stepsize_controller=dfx.PIDController(rtol=rtol, atol=rtol))
    if model == "LIF":
        return ex.FFEvNN(
            [50, 3], 5, ex.LIF, 30.0, thresh=1.0, tsyn=5.0, tmem=tmem, vreset=0.0,
            init_weights=weights, init_bias=0.0, dtype=dtype, **kw,
        )
    params, extra = NONLINEAR[model]
    net = ex.FFEvNN([50, 3], 5, getattr(ex, model), 30.0, key=jax.random.PRNGKey(0), dtype=dtype,
                    **params, **extra, **kw)
    return eqx.tree_at(lambda n: n.neuron_model.weights, net, jnp.asarray(weights, dtype))


def model_weights(model):
    """The weights every row of a nonlinear model's study uses (drawn in float64)."""
    import jax
    import jax.numpy as jnp

    import eventax as ex

    params, _ = NONLINEAR[model]
    net = ex.FFEvNN([50, 3], 5, getattr(ex, model), 30.0, key=jax.random.PRNGKey(0),
                    dtype=jnp.float64, **params)
    return np.asarray(net.neuron_model.weights)


def errors(t, ref):
    fin = np.isfinite(ref)
    flips = int(np.sum(np.isfinite(t) != fin))
    both = fin & np.isfinite(t)
    e = np.abs(t[both] - ref[both])
    return float(np.median(e)), float(np.max(e)), flips


def timed(fn, args, repeats, batch):
    """`(samples/s, compile s)` from `benchmark.time_calls`."""
    t = bench.time_calls(fn, args, repeats, batch)
    return t["samples_per_s"], t["compile_s"]


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="LIF", choices=["LIF", *NONLINEAR])
    p.add_argument("--tmem", type=float, default=10.0, help="LIF only")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--jaxsnn", default=None, help="python of jaxsnn's venv (tmem 10 only)")
    p.add_argument("--eventax010", default=None, help="python of eventax 0.1.0's venv (LIF only)")
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    lif = args.model == "LIF"
    settings = SETTINGS if lif else NONLINEAR_SETTINGS
    if args.worker is not None:
        print(json.dumps(_measure(args, settings[args.worker])))
        return
    weights = bench.load_or_write_weights(50)[0] if lif else model_weights(args.model)
    x, labels = bench.make_inputs(args.batch)

    def net(engine, solver, step, dtype):
        return build(weights, args.tmem, engine, solver, step, dtype, args.model)

    ref_net = net("layered", "Tsit5", 0.05 if lif else "pid1e-10", jnp.float64)
    ref = np.asarray(jax.jit(jax.vmap(ref_net.ttfs))(jnp.asarray(x, jnp.float64)))
    check_net = net("loop", "Tsit5", 0.01 if lif else 0.005, jnp.float64)
    check = np.asarray(jax.jit(jax.vmap(check_net.ttfs))(jnp.asarray(x[:64], jnp.float64)))
    print(f"reference vs event loop (float64, 64 samples): median/max/flips {errors(check, ref[:64])}")

    out = SCRATCH / "work_precision.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    print("| setting | median err | max err | flips | fwd /s | fwd+bwd /s | compile fwd+bwd s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rows = []
    for i, (label, *_) in enumerate(settings):
        row = _worker(argv, i)
        med, mx, flips = errors(np.asarray(row.pop("ttfs"), float), ref)
        row.update(setting=label, median_error=med, max_error=mx, flips=flips)
        _emit(out, row, rows)
    if args.jaxsnn and lif and args.tmem == 10.0:
        _emit(out, _jaxsnn(args, ref), rows)
    if args.eventax010 and lif:
        _emit(out, _eventax010(args, ref, weights, x, labels), rows)
    name = f"tmem{args.tmem:g}" if lif else args.model
    _plot(rows, out.parent / f"work_precision_{name}.png")


def _worker(argv, i):
    """Row `i`, measured in a fresh process."""
    import subprocess

    argv = sys.argv[1:] if argv is None else list(argv)
    done = subprocess.run([sys.executable, __file__, *argv, "--worker", str(i)],
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"row {i} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure(args, setting):
    """One row in this process: spike times (float32) and speeds."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    _, engine, solver, step = setting
    lif = args.model == "LIF"
    weights = bench.load_or_write_weights(50)[0] if lif else model_weights(args.model)
    x, labels = bench.make_inputs(args.batch)
    network = build(weights, args.tmem, engine, solver, step, jnp.float32, args.model)

    def loss(net, xb, yb):
        t = jax.vmap(net.ttfs)(xb)
        t = jnp.where(jnp.isfinite(t), t, 30.0)
        return optax.softmax_cross_entropy_with_integer_labels(-t, yb).mean()

    xb, yb = jnp.asarray(x, jnp.float32), jnp.asarray(labels)
    fwd = jax.jit(jax.vmap(network.ttfs))
    ttfs = np.asarray(fwd(xb), float)
    sf, _ = timed(fwd, (xb,), args.repeats, args.batch)
    sb, cb = timed(eqx.filter_jit(eqx.filter_value_and_grad(loss)), (network, xb, yb), args.repeats, args.batch)
    return dict(model=args.model, tmem=args.tmem if lif else None, batch=args.batch,
                fwd_per_s=sf, fwdbwd_per_s=sb, compile_fwdbwd_s=cb, date=time.strftime("%Y-%m-%d"),
                ttfs=ttfs.tolist())  # (json writes inf as Infinity and reads it back)


def _emit(out, row, rows):
    rows.append(row)
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"| {row['setting']} | {row['median_error']:.1e} | {row['max_error']:.1e} | {row['flips']} "
          f"| {row['fwd_per_s']:.0f} | {row['fwdbwd_per_s']:.0f} | {row['compile_fwdbwd_s']:.1f} |", flush=True)


def _jaxsnn(args, ref):
    """jaxsnn 0.3.0 on the same workload, in its own venv, right after ours."""
    import subprocess

    path = Path(__file__).resolve().parents[1] / "results" / "jaxsnn_work_precision.json"
    subprocess.run(
        [args.jaxsnn, str(Path(__file__).with_name("bench_jaxsnn.py")), "--batch", str(args.batch),
         "--repeats", str(args.repeats), "--out", str(path)], check=True,
    )
    d = json.loads(path.read_text())
    med, mx, flips = errors(np.asarray(d["ttfs"], float), ref)
    return dict(setting="jaxsnn 0.3.0 (closed form, EventProp)", model="LIF", tmem=args.tmem, batch=args.batch,
                median_error=med, max_error=mx, flips=flips, fwd_per_s=d["forward"]["samples_per_s"],
                fwdbwd_per_s=d["fwdbwd"]["samples_per_s"], compile_fwdbwd_s=d["fwdbwd"]["compile_s"],
                date=time.strftime("%Y-%m-%d"))


def _eventax010(args, ref, weights, x, labels):
    """The published eventax 0.1.0 at its defaults' solver (Euler 0.01, Newton root finder,
    recursive checkpointing) on the same weights and inputs, in its own venv, through
    `benchmark.py`'s workers (the same timing as every row)."""
    import tempfile

    sub = argparse.Namespace(
        dt=0.01, repeats=args.repeats, baseline_adjoint="recursive", model="lif", tmem=args.tmem,
        segment_max_steps=None, sdt=None, hidden=50,
    )
    with tempfile.TemporaryDirectory(prefix="eventax010-") as tmp_name:
        tmp = Path(tmp_name)
        workload = tmp / "workload.npz"
        np.savez(workload, weights=weights, inputs=x, labels=labels)
        max_events, _ = bench.auto_max_event_steps(sys.executable, sub, workload, tmp)
        bench.spawn(args.eventax010, "check", "baseline", sub, workload, tmp, max_events)
        ttfs = np.load(tmp / "baseline_check.npz")["ttfs"]
        times = {m: bench.spawn(args.eventax010, m, "baseline", sub, workload, tmp, max_events)
                 for m in ("forward", "fwdbwd")}
    med, mx, flips = errors(np.asarray(ttfs, float), ref)
    return dict(setting="eventax 0.1.0 (Euler 0.01)", model="LIF", tmem=args.tmem, batch=args.batch,
                median_error=med, max_error=mx, flips=flips, fwd_per_s=times["forward"]["samples_per_s"],
                fwdbwd_per_s=times["fwdbwd"]["samples_per_s"], compile_fwdbwd_s=times["fwdbwd"]["compile_s"],
                date=time.strftime("%Y-%m-%d"))


def _plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    placed = []
    for r in rows:
        peer = r["setting"].startswith(("jaxsnn", "eventax 0.1.0"))
        xy = (r["fwdbwd_per_s"], max(r["median_error"], 1e-9))
        ax.scatter(*xy, marker="*" if peer else "o", s=120 if peer else 40)
        # (a label near an earlier point's goes below it)
        near = sum(abs(np.log(xy[0] / a)) < 0.5 and abs(np.log(xy[1] / b)) < 0.5 for a, b in placed)
        ax.annotate(r["setting"], xy, fontsize=7, xytext=(4, 3 - 10 * near), textcoords="offset points")
        placed.append(xy)
    what = f"LIF, tmem {rows[0]['tmem']:g}" if rows[0].get("tmem") else rows[0]["model"]
    ax.set(xscale="log", yscale="log", xlabel="fwd+bwd samples/s (batch 256, 2-core CPU)",
           ylabel="median |first-spike time - float64 ref|",
           title=f"yy-5-50-3 {what}: work-precision")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
