"""Baseline: the "yy-5-50-3" workload (see BENCHMARKS.md) in spyx, time-stepped with surrogate gradients.

Runs in its own virtual environment (never this project's): it imports only the standard
library, NumPy, JAX, Flax (NNX) and spyx -- never `eventax`.

    python3 -m venv ../spyx-ref && ../spyx-ref/bin/pip install spyx==1.0.0

spyx 1.0 is built on Flax NNX (no dm-haiku any more): the network is a
`spyx.nn.Sequential(nnx.Linear, spyx.nn.CuBaLIF, nnx.Linear, spyx.nn.CuBaLIF)` driven over time
by `spyx.nn.run` (a time-major `jax.lax.scan`), and jitted the way `spyx.bench.benchmark` does it:
`nnx.split(model, nnx.Param, ...)`, then `jax.jit` of a pure function of the params.

Workload file (inputs, labels and weights written by this project's venv, so that the inputs
and weights are the very ones `experiments/benchmark.py` uses; `ttfs_ref` is optional -- our
event-based first-spike times at dt 0.01, used only to report how far spyx's grid times lie):

    .venv/bin/python -c "import sys; sys.path.insert(0, 'experiments'); \\
    import benchmark as b, numpy as np, jax.numpy as jnp; w, _ = b.load_or_write_weights(50); \\
    x, y = b.make_inputs(256); net = b.build_network('ours', w, {'dt': 0.01, 'max_event_steps': 1000}); \\
    t = np.asarray(b.forward_fn()(net, jnp.asarray(x))); \\
    np.savez('results/workload_yy-5-50-3_b256.npz', weights=w, inputs=x, labels=y, ttfs_ref=t, ttfs_ref_dt=0.01)"

Run (each measurement in its own worker process, so the peak RSS is attributable):

    nice -n 10 ../spyx-ref/bin/python experiments/bench_spyx.py --dt 0.01 --batch 256 \\
        --repeats 3 --out results/spyx_dt0.01.json [--workload results/workload_yy-5-50-3_b256.npz]
        [--fwdbwd-batch N] [--surrogate superspike|arctan] [--slope 25]

Model (the mapping from our ODE onto spyx's discrete neuron):
- ours: `dv/dt = (-v + i)/tmem`, `di/dt = -i/tsyn`, a presynaptic spike adds `w` to `i`,
  reset `v -> 0` at `v = thresh`.
- spyx `CuBaLIF` per step k: `S_k = H(V_{k-1} - thresh)`; `V' = V_{k-1} - thresh * S_k`
  (subtractive reset); `I_k = alpha * I_{k-1} + x_k`; `V_k = beta * V' + I_k`.
- Euler-consistent decays `beta = 1 - dt/tmem`, `alpha = 1 - dt/tsyn` (the same convention
  spyx's own NIR export uses: `tau = dt / (1 - beta)`), and `I = (dt/tmem) * i`, i.e. the
  `nnx.Linear` kernels hold our weights times `dt/tmem` (otherwise V would integrate the raw
  current at gain 1 per step and the network would not be the same one).
- Kernels: input->hidden = `weights[n:, :H]`, hidden->output = `weights[:H, H:]`
  (`n = H + 3`; rows presynaptic, neurons first then inputs; columns postsynaptic).
- Input spike at time s goes into step `k = max(1, ceil(s/dt))`; step k covers
  `(t_{k-1}, t_k]`, `t_k = k dt`, so a spike at exactly 0 goes into step 1. The dense
  `(T/dt, batch, 5)` raster is built once in NumPy, outside the timed functions (as a spyx
  data loader would hand it over).
- First spike time: the output spike of step k was decided on the state at `t_{k-1}`, so
  `t_first = t_{k-1} = (k-1) dt` for the first k with `S_k = 1`, 30 if none; computed
  differentiably as `sum_k t_{k-1} S_k prod_{j<k}(1 - S_j) + 30 prod_k (1 - S_k)`.
- Loss: softmax cross-entropy over `-t_first`, mean over the batch; gradient w.r.t. all
  `nnx.Param`s (the two kernels and the four scalar decays alpha/beta, which spyx stores as
  parameters).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import SCRATCH  # noqa: E402

DEFAULT_WORKLOAD = SCRATCH / "workload_yy-5-50-3_b256.npz"

T_MAX = 30.0
IN_SIZE = 5
N_OUT = 3
THRESH, TSYN, TMEM = 1.0, 5.0, 20.0


# ============================================================================ inputs and model


def load_workload(path, batch):
    data = np.load(path)
    x = np.asarray(data["inputs"], np.float32)[:batch]  # (batch, 5, 1) spike times
    labels = np.asarray(data["labels"], np.int32)[:batch]
    if x.shape[0] < batch:
        raise ValueError(f"{path} holds {x.shape[0]} samples; asked for {batch}")
    ref = np.asarray(data["ttfs_ref"])[:batch] if "ttfs_ref" in data else None
    return x, labels, np.asarray(data["weights"], np.float32), ref


def n_steps(dt: float) -> int:
    n = round(T_MAX / dt)
    if abs(n * dt - T_MAX) > 1e-6 * T_MAX:
        raise ValueError(f"T={T_MAX} is not a whole number of steps of {dt}")
    return n


def raster(spike_times: np.ndarray, dt: float) -> np.ndarray:
    """Time-major `(T/dt, batch, 5)` float32 spike counts; step k covers `(t_{k-1}, t_k]`."""
    n = n_steps(dt)
    s = spike_times[..., 0].astype(np.float64)  # one spike per channel
    k = np.clip(np.ceil(s / dt), 1, n).astype(np.int64)  # 1-based step
    out = np.zeros((n,) + s.shape, np.float32)
    b, c = np.indices(s.shape)
    np.add.at(out, (k - 1, b, c), 1.0)
    return out


def build_model(weights: np.ndarray, dt: float, surrogate: str, slope: float):
    import jax.numpy as jnp
    import spyx
    from flax import nnx

    hidden = weights.shape[1] - N_OUT
    n = hidden + N_OUT
    gain = dt / TMEM
    w_in = weights[n:, :hidden] * gain  # (5, H): inputs -> hidden
    w_out = weights[:hidden, hidden:] * gain  # (H, 3): hidden -> output
    act = {"superspike": spyx.axn.superspike, "arctan": spyx.axn.arctan}[surrogate](slope)
    alpha, beta = 1.0 - dt / TSYN, 1.0 - dt / TMEM
    rngs = nnx.Rngs(0)

    def const(w):
        return lambda key, shape, dtype=jnp.float32: jnp.asarray(w, dtype).reshape(shape)

    layers = [
        nnx.Linear(IN_SIZE, hidden, use_bias=False, kernel_init=const(w_in), rngs=rngs),
        spyx.nn.CuBaLIF((hidden,), alpha=alpha, beta=beta, threshold=THRESH, activation=act, rngs=rngs),
        nnx.Linear(hidden, N_OUT, use_bias=False, kernel_init=const(w_out), rngs=rngs),
        spyx.nn.CuBaLIF((N_OUT,), alpha=alpha, beta=beta, threshold=THRESH, activation=act, rngs=rngs),
    ]
    return spyx.nn.Sequential(*layers), layers


def first_spike_times(spikes, dt):
    """`(T/dt, batch, 3)` output spikes -> `(batch, 3)` first spike times (30 if none)."""
    import jax.numpy as jnp

    n = spikes.shape[0]
    t = (jnp.arange(n, dtype=spikes.dtype) * dt)[:, None, None]  # t_{k-1} for step k
    alive = jnp.cumprod(1.0 - spikes, axis=0)  # prod_{j<=k} (1 - S_j)
    before = jnp.concatenate([jnp.ones_like(alive[:1]), alive[:-1]], axis=0)
    return jnp.sum(t * spikes * before, axis=0) + T_MAX * alive[-1]


def make_functions(model, dt):
    """`jit` forward (first spike times) and `jit(value_and_grad(loss))`, spyx.bench style."""
    import jax
    import jax.numpy as jnp
    import spyx
    from flax import nnx

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def ttfs(params, xs):
        m = nnx.merge(graphdef, params, rest)
        spikes, _ = spyx.nn.run(m, xs)  # time-major (T/dt, batch, 3)
        return first_spike_times(spikes, dt)

    def loss(params, xs, labels):
        logp = jax.nn.log_softmax(-ttfs(params, xs), axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))

    return params, jax.jit(ttfs), jax.jit(jax.value_and_grad(loss))


# ============================================================================ workers


def time_calls(fn, fn_args, repeats: int, batch: int) -> dict:
    """First (compiling, warm-up) call, then `repeats` timed calls; medians (as benchmark.py).

    Also records the process CPU time of each timed call: on a shared machine wall time
    includes waiting for a core.
    """
    import jax

    start = time.perf_counter()
    jax.block_until_ready(fn(*fn_args))
    first = time.perf_counter() - start
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn(*fn_args))
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    steady = statistics.median(times)
    return {
        "batch": batch,
        "samples_per_s": batch / steady,
        "steady_s": steady,
        "times_s": times,
        "cpu_s": cpu,  # process CPU time per timed call (all threads): less sensitive to load
        "first_call_s": first,
        "compile_s": first - steady,
    }


def process_info() -> dict:
    from importlib.metadata import version

    import jax

    return {
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "spyx_version": version("spyx"),
        "flax_version": version("flax"),
        "jax_version": jax.__version__,
        "jaxlib_version": version("jaxlib"),
        "backend": jax.default_backend(),
    }


def run_worker(args) -> None:
    import jax.numpy as jnp

    batch = args.fwdbwd_batch if args.worker == "fwdbwd" else args.batch
    x, labels, weights, ref = load_workload(args.workload, batch)
    xs = jnp.asarray(raster(x, args.dt))
    model, layers = build_model(weights, args.dt, args.surrogate, args.slope)
    params, fwd, fwdbwd = make_functions(model, args.dt)
    labels = jnp.asarray(labels)
    if args.worker == "forward":
        result = time_calls(fwd, (params, xs), args.repeats, batch)
    elif args.worker == "fwdbwd":
        result = time_calls(fwdbwd, (params, xs, labels), args.repeats, batch)
    else:
        result = stats(args, model, layers, params, fwd, fwdbwd, xs, labels, ref)
    result.update(process_info())
    Path(args.worker_out).write_text(json.dumps(result))


def stats(args, model, layers, params, fwd, fwdbwd, xs, labels, ref) -> dict:
    """Spike statistics, loss and gradient of the workload; distance to our reference times."""
    import jax
    import jax.numpy as jnp
    import spyx

    hidden = layers[0].kernel.shape[1]
    counting = spyx.nn.Sequential(
        layers[0], layers[1], spyx.nn.ActivityRegularization((hidden,)),
        layers[2], layers[3], spyx.nn.ActivityRegularization((N_OUT,)),
    )

    @jax.jit
    def counts(xs):
        _, state = spyx.nn.run(counting, xs)
        return state[2], state[5]  # (batch, H), (batch, 3) spike counts

    hid, out = (np.asarray(c) for c in counts(xs))
    t = np.asarray(fwd(params, xs))
    fb = min(args.fwdbwd_batch, xs.shape[1])  # loss/gradient on the fwd+bwd batch (memory)
    value, grads = fwdbwd(params, xs[:, :fb], labels[:fb])
    leaves = jax.tree_util.tree_leaves(grads)
    kernel_norms = [float(jnp.linalg.norm(grads["layers"][i]["kernel"][...])) for i in (0, 2)]
    result = {
        "hidden_spikes_per_sample": float(hid.sum(axis=1).mean()),
        "output_spikes_per_sample": float(out.sum(axis=1).mean()),
        "max_spikes_per_sample": int((hid.sum(axis=1) + out.sum(axis=1)).max()),
        "hidden_neurons_silent_frac": float((hid == 0).mean()),
        "outputs_spiking_per_sample": float((t < T_MAX).sum(axis=1).mean()),
        "frac_all_outputs_spiking": float((t < T_MAX).all(axis=1).mean()),
        "mean_first_spike": float(t[t < T_MAX].mean()) if (t < T_MAX).any() else None,
        "loss_grad_batch": fb,
        "loss": float(value),
        "grad_norm": float(np.sqrt(sum(float(jnp.sum(g * g)) for g in leaves))),
        "grad_finite": bool(all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)),
        # d loss / d kernel (input->hidden, hidden->output), and the same w.r.t. our unscaled
        # weights (kernel = weights * dt/tmem, so d/dweights = d/dkernel * dt/tmem)
        "grad_kernel_norms": kernel_norms,
        "grad_weight_norms": [g * args.dt / TMEM for g in kernel_norms],
    }
    if ref is not None:
        r = np.where(np.isfinite(ref), ref, T_MAX)
        both = (r < T_MAX) & (t < T_MAX)
        d = np.abs(t - r)[both]
        result["vs_ref"] = {
            "note": "spyx grid first-spike times vs our event-based times (ttfs_ref, dt 0.01)",
            "same_spiking_frac": float(((r < T_MAX) == (t < T_MAX)).mean()),
            "abs_diff_mean": float(d.mean()) if d.size else None,
            "abs_diff_median": float(np.median(d)) if d.size else None,
            "abs_diff_max": float(d.max()) if d.size else None,
            "signed_diff_mean": float((t - r)[both].mean()) if d.size else None,
            "same_argmin_frac": float((np.argmin(t, 1) == np.argmin(r, 1)).mean()),
        }
    return result


# ============================================================================ orchestration


def spawn(mode: str, args, tmp: Path) -> dict:
    out = tmp / f"{mode}.json"
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--worker-out", str(out),
        "--workload", str(args.workload), "--dt", repr(args.dt), "--batch", str(args.batch),
        "--fwdbwd-batch", str(args.fwdbwd_batch), "--repeats", str(args.repeats),
        "--surrogate", args.surrogate, "--slope", repr(args.slope),
    ]
    print(f"[spyx dt={args.dt}] {mode} ... (load {os.getloadavg()[0]:.2f})", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} worker failed (rc={proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    result = json.loads(out.read_text())
    print(f"[spyx dt={args.dt}] {mode} done in {time.perf_counter() - start:.1f} s: "
          + ", ".join(f"{k}={v:.4g}" for k, v in result.items()
                      if k in ("samples_per_s", "compile_s", "peak_rss_mb") and isinstance(v, float)),
          flush=True)
    return result


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dt", type=float, default=0.01)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--fwdbwd-batch", type=int, default=None, help="batch of fwd+bwd (default: --batch)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workload", default=str(DEFAULT_WORKLOAD))
    p.add_argument("--surrogate", choices=("superspike", "arctan"), default="superspike")
    p.add_argument("--slope", type=float, default=25.0)
    p.add_argument("--only", choices=("stats", "forward", "fwdbwd"), action="append",
                   help="run only these workers (repeatable; default: all three)")
    p.add_argument("--out", default=None)
    p.add_argument("--worker", choices=("stats", "forward", "fwdbwd"), help=argparse.SUPPRESS)
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.fwdbwd_batch is None:
        args.fwdbwd_batch = args.batch
    if args.worker:
        run_worker(args)
        return
    record = {
        "workload": "yy-5-50-3", "impl": "spyx", "dt": args.dt, "steps": n_steps(args.dt),
        "batch": args.batch, "fwdbwd_batch": args.fwdbwd_batch, "repeats": args.repeats,
        "surrogate": f"{args.surrogate}({args.slope:g})", "neuron": "spyx.nn.CuBaLIF",
        "alpha": 1 - args.dt / TSYN, "beta": 1 - args.dt / TMEM, "kernel_gain": args.dt / TMEM,
        "workload_file": str(args.workload), "host_cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.only or ("stats", "forward", "fwdbwd"):
            record[mode] = spawn(mode, args, Path(tmp))
    record["loadavg_end"] = os.getloadavg()[0]
    text = json.dumps(record, indent=1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
        print(f"wrote {args.out}")
    else:
        print(text)


if __name__ == "__main__":
    main()
