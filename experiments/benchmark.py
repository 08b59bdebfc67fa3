"""Benchmark "yy-5-50-3" (see `shared/BENCHMARKS.md`, beside the project): our eventax against the published eventax 0.1.0.

Workload: the first `--batch` Yin-Yang training samples (seed 42) as 5 input spikes each
(`[x, y, 1-x, 1-y, 0] * 30`), a feed-forward 5 -> H -> 3 LIF network (`thresh=1, tsyn=5,
tmem=20, vreset=0`, no bias current, no delays), float32, Euler with constant step `--dt`,
a Newton root finder, `max_solver_time = 30`. Both simulators get the same saved weights
(`results/weights/yy-5-H-3_seed0.npz`, written once from a fixed seed) and the same inputs.

Figures per implementation:
- forward: `jit(vmap(ttfs))` on the batch, samples/s;
- fwd+bwd: `jit(value_and_grad(loss))`, loss = softmax cross-entropy over `-t_first`
  (no spike -> 30), gradients w.r.t. the network (compared on the weights);
- compile time (first call minus the median steady call), peak RSS of the process;
- spike statistics of the workload.

Every measurement runs in its own worker process (so peak RSS is attributable); the
baseline's workers run under `--baseline-python`, executing this same file with
`--impl baseline`. Before any timing, both implementations' first-spike times, losses and
gradients are compared; timing is skipped if they disagree (unless `--allow-mismatch`).

    python experiments/benchmark.py [--dt 0.01] [--batch 256] [--repeats 3] [--hidden 50]
        [--only ours|baseline] [--baseline-python ../eventax-ref/bin/python]
        [--baseline-adjoint recursive|eventprop]

Appends one JSON line per run to `results/benchmark.jsonl`; writes `results/benchmark.md`
(latest run of every configuration) and prints the table of this run.

Known difference between the two: with a constant step, our integrator steps exactly `dt`
(the last step before an event is shortened), while the baseline's `diffrax.ConstantStepSize`
spreads `ceil(T/dt)` steps evenly over each inter-event interval `T`. The two Euler grids
give first-spike times that differ by ~1e-5 (median, also in float64); a spike that barely
reaches threshold amplifies this (and f32 rounding) into a large gradient difference for
that sample, which the check reports as its "worst sample".

`--model qif`: the same network of QIF neurons. The two QIF formulations differ (ours: the
theta neuron `tmem theta' = 1 - cos theta + (1 + cos theta) I`; 0.1.0: its own scaled phase
equation), so their spike times are not expected to agree; the check is reported, the
timing is taken with `--allow-mismatch`, and the spike statistics show the work each did.

Only the standard library and NumPy are imported at module level: the baseline's worker
must never import this project's `eventax`, and each implementation is imported inside the
functions that use it.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import REPO, peer_python  # noqa: E402
from common import SCRATCH as RESULTS  # noqa: E402

T_MAX = 30.0
IN_SIZE = 5
N_OUT = 3
LIF_PARAMS = {"thresh": 1.0, "tsyn": 5.0, "tmem": 20.0, "vreset": 0.0}
QIF_PARAMS = {"tsyn": 5.0, "tmem": 5.0}  # tmem 20: no output spikes within 30 in either
ROOT_TOL = 1e-5  # Newton rtol = atol, the same for both implementations
WEIGHT_SEED = 0
# Weights uniform on mean ± width/2, scaled by 1/sqrt(fan_in): most hidden neurons fire and
# all three outputs fire for almost every sample.
HIDDEN_INIT = (4.0, 6.0)
OUTPUT_INIT = (3.0, 8.0)

# Agreement needed before any speed is reported (f32).
TIME_ATOL = 1e-3
REL_TOL = 1e-2

# ============================================================================ weights and inputs


def make_weights(hidden: int, seed: int = WEIGHT_SEED) -> np.ndarray:
    """Weights `(n + 5, n)`, `n = hidden + 3`; rows: neurons, then inputs (both layouts)."""
    rng = np.random.default_rng(seed)
    n = hidden + N_OUT
    w = np.zeros((n + IN_SIZE, n), np.float32)
    w[n:, :hidden] = _uniform(rng, HIDDEN_INIT, (IN_SIZE, hidden)) / math.sqrt(IN_SIZE)
    w[:hidden, hidden:] = _uniform(rng, OUTPUT_INIT, (hidden, N_OUT)) / math.sqrt(hidden)
    return w


def _uniform(rng, mean_width, shape):
    mean, width = mean_width
    return rng.uniform(mean - width / 2, mean + width / 2, shape)


def weights_path(hidden: int) -> Path:
    return RESULTS / "weights" / f"yy-5-{hidden}-3_seed{WEIGHT_SEED}.npz"


def load_or_write_weights(hidden: int) -> tuple[np.ndarray, Path]:
    """The saved weights for this network size; written once, then always read back."""
    path = weights_path(hidden)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, weights=make_weights(hidden), seed=WEIGHT_SEED)
        print(f"wrote {path}")
    weights = np.load(path)["weights"]
    expected = (hidden + N_OUT + IN_SIZE, hidden + N_OUT)
    if weights.shape != expected:
        raise ValueError(f"{path} holds weights of shape {weights.shape}; expected {expected}.")
    return weights, path


def make_inputs(batch: int) -> tuple[np.ndarray, np.ndarray]:
    """First `batch` training samples (seed 42) as `(batch, 5, 1)` float32 spike times."""
    from eventax.data import yin_yang, yin_yang_spikes

    features, labels = yin_yang(size=max(5000, batch), seed=42)
    spikes = yin_yang_spikes(features[:batch], t_max=T_MAX).astype(np.float32)
    return spikes, labels[:batch].astype(np.int32)


# ============================================================================ networks


def build_network(impl: str, weights: np.ndarray, cfg: dict):
    """The 5 -> H -> 3 LIF network of either implementation, with the given weights
    (`"surrogate"`: ours in the fixed-step surrogate mode at `cfg["sdt"]`)."""
    if impl == "ours":
        return _build_ours(weights, cfg)
    if impl == "surrogate":
        return _build_ours(weights, cfg).fixed_step(cfg["sdt"])
    if impl == "baseline":
        return _build_baseline(weights, cfg)
    raise ValueError(f"unknown implementation {impl!r}")


def _build_ours(weights, cfg):
    import diffrax as dfx
    import optimistix as optx

    import eventax as ev

    model, params = (ev.QIF, QIF_PARAMS) if cfg.get("model") == "qif" else (ev.LIF, _lif_params(cfg))
    return ev.FFEvNN(
        [_hidden(weights), N_OUT], IN_SIZE, model, T_MAX,
        solver_stepsize=cfg["dt"], max_event_steps=cfg["max_event_steps"],
        solver=dfx.Euler(), stepsize_controller=dfx.ConstantStepSize(),
        root_finder=optx.Newton(rtol=ROOT_TOL, atol=ROOT_TOL), dtype=_dtype(cfg),
        init_weights=weights, init_bias=0.0, **_segment_kwargs(cfg), **params,
    )


def _lif_params(cfg):
    """`LIF_PARAMS` with `cfg["tmem"]` (the work-precision study's tmem 10) where given."""
    return {**LIF_PARAMS, "tmem": cfg.get("tmem") or LIF_PARAMS["tmem"]}


def _dtype(cfg):
    """float32; a diagnostic script may set `cfg["dtype"] = "float64"` (with `jax_enable_x64`)."""
    import jax.numpy as jnp

    return jnp.dtype(cfg.get("dtype", "float32"))


def _segment_kwargs(cfg) -> dict:
    """Our solver-steps-per-segment bound (`None`: our default)."""
    steps = cfg.get("segment_max_steps")
    return {} if steps is None else {"segment_max_steps": steps}


def _build_baseline(weights, cfg):
    import diffrax as dfx
    import jax
    import jax.numpy as jnp
    import optimistix as optx
    from eventax.evnn import FFEvNN
    from eventax.neuron_models import LIF, QIF

    model, params = (QIF, QIF_PARAMS) if cfg.get("model") == "qif" else (LIF, _lif_params(cfg))
    return FFEvNN(
        [_hidden(weights), N_OUT], IN_SIZE, model, T_MAX, key=jax.random.PRNGKey(0),
        solver_stepsize=cfg["dt"], max_event_steps=cfg["max_event_steps"],
        solver=dfx.Euler(), stepsize_controller=dfx.ConstantStepSize(),
        root_finder=optx.Newton(rtol=ROOT_TOL, atol=ROOT_TOL), dtype=_dtype(cfg),
        adjoint=_baseline_adjoint(cfg["baseline_adjoint"]),
        init_weights=jnp.asarray(weights, _dtype(cfg)), init_bias=0.0, **params,
    )


def _baseline_adjoint(name: str):
    import diffrax as dfx

    if name == "recursive":
        return dfx.RecursiveCheckpointAdjoint()  # the baseline's default
    if name == "eventprop":
        from eventax.adjoint import EventPropAdjoint

        return EventPropAdjoint()
    raise ValueError(f"unknown baseline adjoint {name!r}")


def _hidden(weights) -> int:
    return weights.shape[1] - N_OUT


# ============================================================================ jitted workloads


def forward_fn():
    """`jit(vmap(ttfs))` as a function of `(net, inputs)`."""
    import equinox as eqx
    import jax

    return eqx.filter_jit(lambda net, x: jax.vmap(net.ttfs)(x))


def loss(net, x, labels):
    """Softmax cross-entropy over `-t_first` (no spike -> `T_MAX`), mean over the batch."""
    import jax
    import jax.numpy as jnp

    t = jax.vmap(net.ttfs)(x)
    t = jnp.where(jnp.isfinite(t), t, T_MAX)
    logp = jax.nn.log_softmax(-t, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def fwdbwd_fn():
    """`jit(value_and_grad(loss))` as a function of `(net, inputs, labels)`."""
    import equinox as eqx

    return eqx.filter_jit(eqx.filter_value_and_grad(loss))


def per_sample_weight_grads(net, x, labels) -> np.ndarray:
    """`d loss_i / d weights` for every sample `i`, shape `(batch, pre, neurons)`."""
    import equinox as eqx
    import jax

    def one(n, xi, yi):
        return loss(n, xi[None], yi[None])

    grads = eqx.filter_jit(jax.vmap(eqx.filter_grad(one), in_axes=(None, 0, 0)))(net, x, labels)
    return np.asarray(grads.neuron_model.weights)


def spike_counts(impl: str, net, x, hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: all spikes and output spikes in `[0, T_MAX]`."""
    import equinox as eqx
    import jax

    if impl == "ours":
        rec = eqx.filter_jit(lambda n, s: jax.vmap(n.record)(s))(net, x)
        neurons = np.asarray(rec.neurons)
        valid = neurons >= 0
    else:
        times, ids, _ = eqx.filter_jit(lambda n, s: jax.vmap(n.record)(s))(net, x)
        valid = np.isfinite(np.asarray(times))
        neurons = np.asarray(ids).astype(np.int64)
    return valid.sum(axis=1), (valid & (neurons >= hidden)).sum(axis=1)


# ============================================================================ workers


def run_worker(args) -> None:
    """One measurement in this process; writes its result as JSON to `args.out`."""
    data = np.load(args.workload_file)
    cfg = {
        "dt": args.dt,
        "max_event_steps": args.max_event_steps,
        "baseline_adjoint": args.baseline_adjoint,
        "segment_max_steps": args.segment_max_steps,
        "model": args.model,
        "tmem": args.tmem,
        "sdt": args.sdt,
    }
    net = build_network(args.impl, data["weights"], cfg)
    import jax.numpy as jnp

    x, labels = jnp.asarray(data["inputs"]), jnp.asarray(data["labels"])
    worker = {"check": _check_worker, "forward": _forward_worker, "fwdbwd": _fwdbwd_worker}
    result = worker[args.worker](args, net, x, labels, data)
    result.update(_process_info())
    Path(args.out).write_text(json.dumps(result))


def _check_worker(args, net, x, labels, data):
    """Outputs for the agreement check, plus spike statistics of the workload."""
    ttfs = np.asarray(forward_fn()(net, x))
    value, grads = fwdbwd_fn()(net, x, labels)
    grad_w = np.asarray(grads.neuron_model.weights)
    grad_w_samples = per_sample_weight_grads(net, x, labels)
    np.savez(
        Path(args.out).with_suffix(".npz"),
        ttfs=ttfs, loss=float(value), grad_w=grad_w, grad_w_samples=grad_w_samples,
    )
    total, outputs = spike_counts(args.impl, net, x, _hidden(data["weights"]))
    finite = np.isfinite(ttfs)
    return {
        "loss": float(value),
        "grad_w_norm": float(np.linalg.norm(grad_w)),
        "grad_w_finite": bool(np.all(np.isfinite(grad_w))),
        "outputs_spiking_per_sample": float(finite.sum(axis=1).mean()),
        "frac_all_outputs_spiking": float(finite.all(axis=1).mean()),
        "spikes_per_sample": float(total.mean()),
        "max_spikes_per_sample": int(total.max()),
        "output_spikes_per_sample": float(outputs.mean()),
    }


def _forward_worker(args, net, x, labels, data):
    return time_calls(forward_fn(), (net, x), args.repeats, x.shape[0])


def _fwdbwd_worker(args, net, x, labels, data):
    return time_calls(fwdbwd_fn(), (net, x, labels), args.repeats, x.shape[0])


def time_calls(fn, fn_args, repeats: int, batch: int) -> dict:
    """First (compiling) call, one untimed warm-up call, then `repeats` timed calls;
    medians. (Without the warm-up, the first case a process measured ran up to 2x slow:
    the first calls after a compilation still allocate and fault in memory.)"""
    import jax

    start = time.perf_counter()
    jax.block_until_ready(fn(*fn_args))
    first = time.perf_counter() - start
    jax.block_until_ready(fn(*fn_args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*fn_args))
        times.append(time.perf_counter() - start)
    steady = statistics.median(times)
    return {
        "samples_per_s": batch / steady,
        "steady_s": steady,
        "times_s": times,
        "first_call_s": first,
        "compile_s": first - steady,
    }


def _process_info() -> dict:
    from importlib.metadata import version

    import eventax
    import jax

    return {
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "eventax_version": version("eventax"),
        "eventax_path": str(Path(eventax.__file__).parent),
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
    }


# ============================================================================ orchestration


def spawn(python: str, mode: str, impl: str, args, workload_file: Path, tmp: Path, max_events: int):
    """Run one worker process and return its JSON result (raise with its output on failure)."""
    out = tmp / f"{impl}_{mode}.json"
    cmd = [
        python, str(Path(__file__).resolve()), "--worker", mode, "--impl", impl,
        "--workload-file", str(workload_file), "--out", str(out), "--dt", str(args.dt),
        "--repeats", str(args.repeats), "--max-event-steps", str(max_events),
        "--baseline-adjoint", args.baseline_adjoint, "--model", args.model,
        "--tmem", str(args.tmem),
    ]
    if impl == "surrogate":
        cmd += ["--sdt", repr(args.sdt)]
    if args.segment_max_steps is not None:
        cmd += ["--segment-max-steps", str(args.segment_max_steps)]
    print(f"[{impl}] {mode} ...", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tempfile.gettempdir())
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        raise RuntimeError(f"{impl} {mode} worker failed (rc={proc.returncode}):\n{tail}")
    result = json.loads(out.read_text())
    print(f"[{impl}] {mode} done in {time.perf_counter() - start:.1f} s", flush=True)
    return result


def auto_max_event_steps(python, args, workload_file, tmp) -> tuple[int, dict]:
    """Enough event steps for every sample: 1.25 x (most spikes + inputs + 2), to a 10.

    The probe is our check run under a generous bound (the bound does not change any
    result as long as it suffices), so it doubles as our side of the agreement check.
    """
    generous = max(1000, 10 * (args.hidden + N_OUT))
    probe = spawn(python, "check", "ours", args, workload_file, tmp, generous)
    needed = probe["max_spikes_per_sample"] + IN_SIZE + 2
    return int(math.ceil(1.25 * needed / 10) * 10), probe


def compare(tmp: Path) -> dict:
    """Agreement of first-spike times, losses and weight gradients (ours vs baseline).

    The time gate, like the gradient gate, leaves out the ill-conditioned samples
    (`well_conditioned_gradients`): a spike that barely reaches threshold moves by far
    more than the two Euler grids' difference. (On the saved yy-5-50-3 workload, sample
    237's output 2 is one: its true first spike is at 20.78, Euler 0.01 puts it at 19.08,
    our own float32 and float64 results differ by 2e-4 there, and the two implementations
    by 1.1e-3, against 1.6e-4 at most on every other sample.) The largest difference
    over all samples is reported next to it.
    """
    a = np.load(tmp / "ours_check.npz")
    b = np.load(tmp / "baseline_check.npz")
    fa, fb = np.isfinite(a["ttfs"]), np.isfinite(b["ttfs"])
    both = fa & fb
    diff = np.where(both, np.abs(np.where(both, a["ttfs"], 0.0) - np.where(both, b["ttfs"], 0.0)), 0.0)
    dt_max = float(np.max(diff, initial=0.0))
    na, nb = np.linalg.norm(a["grad_w"]), np.linalg.norm(b["grad_w"])
    out = {
        "max_abs_dt_first_spike": dt_max,
        "inf_mismatches": int(np.sum(fa != fb)),
        "finite_entries": int(both.sum()),
        "loss_ours": float(a["loss"]),
        "loss_baseline": float(b["loss"]),
        "loss_rel_diff": _rel(float(a["loss"]), float(b["loss"])),
        "grad_norm_ours": float(na),
        "grad_norm_baseline": float(nb),
        "grad_norm_rel_diff": _rel(float(na), float(nb)),
        "grad_rel_l2_diff": float(np.linalg.norm(a["grad_w"] - b["grad_w"]) / max(nb, 1e-30)),
        "median_abs_dt_first_spike": float(np.median(diff[both])) if both.any() else 0.0,
        **worst_sample(a, b),
    }
    out.update(well_conditioned_gradients(a, b))
    ill = out.pop("ill_conditioned")
    out["max_abs_dt_well_conditioned"] = float(np.max(diff[~ill], initial=0.0))
    out["agree"] = bool(
        out["max_abs_dt_well_conditioned"] <= TIME_ATOL
        and out["inf_mismatches"] == 0
        and out["loss_rel_diff"] <= REL_TOL
        and out["grad_rel_l2_diff_well_conditioned"] <= REL_TOL
        and out["median_sample_grad_cosine"] >= 0.999
        and np.all(np.isfinite(a["grad_w"]))
        and np.all(np.isfinite(b["grad_w"]))
    )
    return out


def well_conditioned_gradients(a, b, factor: float = 20.0) -> dict:
    """Gradient agreement that the two Euler grids can be expected to meet.

    A sample whose per-sample gradient norm exceeds `factor` x the median (in either
    implementation) has a spike that barely reaches threshold: its `dt/dw` is huge
    and amplifies the O(1e-5) difference between the two step grids. The gate uses
    the batch gradient without those samples and the median per-sample cosine; the
    full-batch figures are reported next to it.
    """
    ga = a["grad_w_samples"].reshape(len(a["grad_w_samples"]), -1)
    gb = b["grad_w_samples"].reshape(len(b["grad_w_samples"]), -1)
    na, nb = np.linalg.norm(ga, axis=1), np.linalg.norm(gb, axis=1)
    ill = (na > factor * np.median(na)) | (nb > factor * np.median(nb))
    ma, mb = ga[~ill].mean(axis=0), gb[~ill].mean(axis=0)
    cos = np.sum(ga * gb, axis=1) / np.maximum(na * nb, 1e-30)
    return {
        "ill_conditioned": ill,
        "ill_conditioned_samples": int(ill.sum()),
        "grad_rel_l2_diff_well_conditioned": float(np.linalg.norm(ma - mb) / max(np.linalg.norm(mb), 1e-30)),
        "median_sample_grad_cosine": float(np.median(cos[(na > 0) & (nb > 0)])),
    }


def worst_sample(a, b) -> dict:
    """Diagnostic: the sample whose gradient differs most, and the batch without it.

    One ill-conditioned sample (a spike that barely reaches threshold has a huge
    `d t / d w`) can dominate the batch gradient and its f32 / discretisation noise.
    """
    ga, gb = a["grad_w_samples"], b["grad_w_samples"]
    diff = np.linalg.norm((ga - gb).reshape(len(ga), -1), axis=1)
    i = int(np.argmax(diff))
    keep = np.arange(len(ga)) != i
    ma, mb = ga[keep].mean(axis=0), gb[keep].mean(axis=0)
    finite = np.isfinite(a["ttfs"][i]) & np.isfinite(b["ttfs"][i])
    return {
        "worst_sample": i,
        "worst_sample_grad_norm_ours": float(np.linalg.norm(ga[i])),
        "worst_sample_grad_norm_baseline": float(np.linalg.norm(gb[i])),
        "median_sample_grad_norm_baseline": float(np.median(np.linalg.norm(gb.reshape(len(gb), -1), axis=1))),
        "worst_sample_max_abs_dt": float(np.max(np.abs(a["ttfs"][i] - b["ttfs"][i])[finite], initial=0.0)),
        "grad_rel_l2_diff_without_worst": float(np.linalg.norm(ma - mb) / max(np.linalg.norm(mb), 1e-30)),
    }


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-30)


def print_check(check: dict) -> None:
    print(
        f"agreement: max |t_ours - t_baseline| = {check['max_abs_dt_first_spike']:.3g} "
        f"({check['max_abs_dt_well_conditioned']:.3g} without the ill-conditioned samples, limit {TIME_ATOL}) "
        f"over {check['finite_entries']} finite entries, inf mismatches = {check['inf_mismatches']}; "
        f"loss {check['loss_ours']:.6g} vs {check['loss_baseline']:.6g} "
        f"(rel {check['loss_rel_diff']:.2g}); |grad W| {check['grad_norm_ours']:.6g} vs "
        f"{check['grad_norm_baseline']:.6g} (rel {check['grad_norm_rel_diff']:.2g}, "
        f"rel L2 of the difference {check['grad_rel_l2_diff']:.2g}) -> "
        f"{'AGREE' if check['agree'] else 'DISAGREE'}",
        flush=True,
    )
    print(
        f"  worst sample {check['worst_sample']}: |grad W| {check['worst_sample_grad_norm_ours']:.4g} vs "
        f"{check['worst_sample_grad_norm_baseline']:.4g} (median sample "
        f"{check['median_sample_grad_norm_baseline']:.3g}), max |dt| {check['worst_sample_max_abs_dt']:.2g}; "
        f"batch gradient without it: rel L2 diff {check['grad_rel_l2_diff_without_worst']:.2g}\n"
        f"  gate: without {check['ill_conditioned_samples']} ill-conditioned sample(s) the batch gradient "
        f"differs by {check['grad_rel_l2_diff_well_conditioned']:.2g} (rel L2, limit {REL_TOL}); median "
        f"per-sample cosine {check['median_sample_grad_cosine']:.6f} (limit 0.999)",
        flush=True,
    )


def run_benchmark(args) -> dict:
    """Checks, then timings; returns the JSON record of this configuration."""
    weights, wpath = load_or_write_weights(args.hidden)
    inputs, labels = make_inputs(args.batch)
    impls = ["ours", "baseline"] if args.only is None else [args.only]
    pythons = {"ours": sys.executable, "baseline": args.baseline_python}
    record = _config(args, wpath)
    with tempfile.TemporaryDirectory(prefix="eventax-bench-") as tmp_name:
        tmp = Path(tmp_name)
        workload = tmp / "workload.npz"
        np.savez(workload, weights=weights, inputs=inputs, labels=labels)
        max_events, probe = _max_events(args, workload, tmp)
        record["max_event_steps"] = max_events
        stats = {"ours": probe} if probe else {}
        if not args.skip_check:
            for impl in ("ours", "baseline"):
                if impl not in stats:  # the probe already was our check run
                    stats[impl] = spawn(pythons[impl], "check", impl, args, workload, tmp, max_events)
            record["check"] = compare(tmp)
            print_check(record["check"])
        for impl, impl_stats in stats.items():
            record[impl] = {"stats": impl_stats}
        if "check" in record and not record["check"]["agree"] and not args.allow_mismatch:
            print("implementations disagree: no speed reported (--allow-mismatch to time anyway)")
            return record
        for impl in impls:
            record.setdefault(impl, {})
            for mode in ("forward", "fwdbwd"):
                record[impl][mode] = spawn(pythons[impl], mode, impl, args, workload, tmp, max_events)
        for sdt in args.surrogate_dt:
            record.setdefault("surrogate", {})[repr(sdt)] = _surrogate_and_spyx(args, sdt, workload, tmp, max_events)
    return record


def _surrogate_and_spyx(args, sdt: float, workload: Path, tmp: Path, max_events: int) -> dict:
    """Our fixed-step mode at `sdt`, and spyx 1.0 (own venv) on the same weights and inputs."""
    sub = argparse.Namespace(**{**vars(args), "sdt": sdt})
    out = {mode: spawn(sys.executable, mode, "surrogate", sub, workload, tmp, max_events)
           for mode in ("forward", "fwdbwd")}
    if args.spyx_python and Path(args.spyx_python).exists():
        path = tmp / f"spyx_{sdt}.json"
        cmd = [args.spyx_python, str(REPO / "experiments" / "bench_spyx.py"), "--workload", str(workload),
               "--dt", repr(sdt), "--batch", str(args.batch), "--repeats", str(args.repeats),
               "--only", "forward", "--only", "fwdbwd", "--out", str(path)]
        print(f"[spyx] dt={sdt} ...", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"spyx benchmark failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
        out["spyx"] = json.loads(path.read_text())
    return out


def _max_events(args, workload, tmp):
    if args.max_event_steps is not None:
        return args.max_event_steps, None
    return auto_max_event_steps(sys.executable, args, workload, tmp)


def _config(args, wpath: Path) -> dict:
    return {
        "workload": f"yy-5-{args.hidden}-3",
        "model": args.model.upper(),
        "dt": args.dt,
        "batch": args.batch,
        "hidden": args.hidden,
        "repeats": args.repeats,
        "dtype": "float32",
        "solver": "Euler, constant step",
        "root_finder": f"optx.Newton(rtol={ROOT_TOL}, atol={ROOT_TOL})",
        "baseline_adjoint": args.baseline_adjoint,
        "ours_segment_max_steps": args.segment_max_steps,
        "only": args.only,
        "surrogate_dts": args.surrogate_dt,
        "weights_file": str(wpath.relative_to(REPO)),
        "weights_sha256": hashlib.sha256(wpath.read_bytes()).hexdigest()[:16],
        "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "command": "python experiments/benchmark.py " + " ".join(sys.argv[1:]),
    }


# ============================================================================ reporting

# (label, getter on one implementation's record, format)
FIGURES = [
    ("forward throughput (samples/s)", ("forward", "samples_per_s"), "{:.1f}"),
    ("fwd+bwd throughput (samples/s)", ("fwdbwd", "samples_per_s"), "{:.1f}"),
    ("forward compile time (s)", ("forward", "compile_s"), "{:.1f}"),
    ("fwd+bwd compile time (s)", ("fwdbwd", "compile_s"), "{:.1f}"),
    ("forward steady call (s)", ("forward", "steady_s"), "{:.3f}"),
    ("fwd+bwd steady call (s)", ("fwdbwd", "steady_s"), "{:.3f}"),
    ("forward peak RSS (MB)", ("forward", "peak_rss_mb"), "{:.0f}"),
    ("fwd+bwd peak RSS (MB)", ("fwdbwd", "peak_rss_mb"), "{:.0f}"),
    ("loss", ("stats", "loss"), "{:.5f}"),
    ("weight-gradient norm", ("stats", "grad_w_norm"), "{:.5f}"),
    ("outputs spiking per sample (of 3)", ("stats", "outputs_spiking_per_sample"), "{:.3f}"),
    ("fraction with all outputs spiking", ("stats", "frac_all_outputs_spiking"), "{:.3f}"),
    ("spikes per sample (all neurons, t<=30)", ("stats", "spikes_per_sample"), "{:.2f}"),
    ("output spikes per sample (t<=30)", ("stats", "output_spikes_per_sample"), "{:.2f}"),
]


def _figure(impl_record, path):
    value = impl_record
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return value


def markdown(record: dict) -> str:
    """Readable table of one configuration: ours, baseline, ours / baseline."""
    lines = [
        f"### {record['workload']} {record.get('model', 'LIF')}, dt={record['dt']}, batch={record['batch']}, "
        f"baseline adjoint={record['baseline_adjoint']} ({record['timestamp']})",
        "",
        f"`{record['command']}`; {record['repeats']} timed runs (median) after a warm-up call; "
        f"{record['root_finder']}; max_event_steps={record.get('max_event_steps')}; "
        f"weights {record['weights_file']} (sha256 {record['weights_sha256']}); "
        f"{record['cpu_count']} CPUs.",
        "",
    ]
    lines += _agreement_lines(record)
    lines += ["| figure | ours | baseline | ours / baseline |", "|---|---:|---:|---:|"]
    for label, path, fmt in FIGURES:
        a = _figure(record.get("ours"), path)
        b = _figure(record.get("baseline"), path)
        ratio = a / b if a is not None and b not in (None, 0) else None
        cells = [fmt.format(v) if v is not None else "—" for v in (a, b)]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | "
                     f"{'—' if ratio is None else f'{ratio:.2f}'} |")
    lines += _surrogate_lines(record)
    return "\n".join(lines) + "\n"


SURROGATE_FIGURES = [
    ("forward (samples/s)", ("forward", "samples_per_s"), "{:.0f}"),
    ("fwd+bwd (samples/s)", ("fwdbwd", "samples_per_s"), "{:.0f}"),
    ("forward compile (s)", ("forward", "compile_s"), "{:.1f}"),
    ("fwd+bwd compile (s)", ("fwdbwd", "compile_s"), "{:.1f}"),
    ("fwd+bwd peak RSS (MB)", ("fwdbwd", "peak_rss_mb"), "{:.0f}"),
]


def _surrogate_lines(record: dict) -> list[str]:
    """Event mode vs our surrogate mode vs spyx 1.0 (and the baseline's event mode)."""
    runs = record.get("surrogate") or {}
    if not runs:
        return []
    head = ["event (ours)", "event (0.1.0)"]
    cols = []
    for sdt, run in runs.items():
        cols.append((f"surrogate dt={sdt} (ours)", run))
        cols.append((f"spyx 1.0 dt={sdt}", run.get("spyx")))
    lines = ["", "Fixed-step surrogate mode (same weights and inputs; spyx in its own venv; "
             "ratio = ours / spyx at the same dt):", "",
             "| figure | " + " | ".join(head + [c for c, _ in cols]) + " | " +
             " | ".join(f"ours/spyx dt={sdt}" for sdt in runs) + " |",
             "|---|" + "---:|" * (len(head) + len(cols) + len(runs))]
    for label, path, fmt in SURROGATE_FIGURES:
        vals = [_figure(record.get("ours"), path), _figure(record.get("baseline"), path)]
        vals += [_figure(r, path) for _, r in cols]
        cells = [fmt.format(v) if v is not None else "—" for v in vals]
        ratios = []
        for run in runs.values():
            a, b = _figure(run, path), _figure(run.get("spyx"), path)
            ratios.append(f"{a / b:.2f}" if a is not None and b else "—")
        lines.append(f"| {label} | " + " | ".join(cells + ratios) + " |")
    return lines


def _agreement_lines(record: dict) -> list[str]:
    check = record.get("check")
    if not check:
        return ["Agreement: not checked (--skip-check).", ""]
    verdict = "agree" if check["agree"] else "DISAGREE"
    if not check["agree"] and _timed(record):
        verdict += "; timed anyway (--allow-mismatch)"
    lines = [
        f"Agreement: max |Δt_first| = {check['max_abs_dt_first_spike']:.2g} (median "
        f"{check.get('median_abs_dt_first_spike', float('nan')):.2g}; without the ill-conditioned samples "
        f"{check.get('max_abs_dt_well_conditioned', float('nan')):.2g}, limit {TIME_ATOL}) over {check['finite_entries']} "
        f"finite entries, {check['inf_mismatches']} inf mismatches; loss rel diff "
        f"{check['loss_rel_diff']:.2g}; |∇W| rel diff {check['grad_norm_rel_diff']:.2g} (rel L2 of "
        f"the ∇W difference {check['grad_rel_l2_diff']:.2g}) → **{verdict}**.",
    ]
    if "worst_sample" in check:
        lines.append(
            f"Worst sample {check['worst_sample']}: |∇W| {check['worst_sample_grad_norm_ours']:.4g} "
            f"(ours) vs {check['worst_sample_grad_norm_baseline']:.4g} (baseline; median sample "
            f"{check['median_sample_grad_norm_baseline']:.3g}), max |Δt_first| "
            f"{check['worst_sample_max_abs_dt']:.2g}; without it the batch ∇W differs by "
            f"{check['grad_rel_l2_diff_without_worst']:.2g} (rel L2)."
        )
    if "ill_conditioned_samples" in check:
        lines.append(
            f"Gradient gate: without the {check['ill_conditioned_samples']} ill-conditioned sample(s) "
            f"(per-sample |∇W| > 20× median) the batch ∇W differs by "
            f"{check['grad_rel_l2_diff_well_conditioned']:.2g} (rel L2, limit {REL_TOL}); median "
            f"per-sample cosine {check['median_sample_grad_cosine']:.6f} (limit 0.999)."
        )
    return lines + [""]


def _timed(record: dict) -> bool:
    return any((record.get(impl) or {}).get("forward") for impl in ("ours", "baseline"))


def write_results(record: dict) -> None:
    """Append the JSON line; rewrite the Markdown file from the latest run per configuration."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    jsonl = RESULTS / "benchmark.jsonl"
    with jsonl.open("a") as f:
        f.write(json.dumps(record) + "\n")
    latest = {}
    for line in jsonl.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            latest[_config_key(rec)] = rec
    body = "\n".join(markdown(rec) for rec in latest.values())
    (RESULTS / "benchmark.md").write_text(
        "# Benchmark results (generated by experiments/benchmark.py)\n\n" + body
    )


def _config_key(rec: dict) -> tuple:
    keys = ("workload", "model", "dt", "batch", "hidden", "baseline_adjoint", "ours_segment_max_steps", "only",
            "surrogate_dts")
    return tuple(tuple(v) if isinstance(v, list) else v for v in (rec.get(k) for k in keys))


# ============================================================================ command line


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dt", type=float, default=0.01, help="Euler step (also 0.001, 0.05)")
    p.add_argument("--batch", type=int, default=256, help="number of samples (batch size)")
    p.add_argument("--hidden", type=int, default=50, help="hidden layer size")
    p.add_argument("--model", choices=["lif", "qif"], default="lif",
                   help="neuron model; QIF formulations differ between the two, see module docstring")
    p.add_argument("--tmem", type=float, default=LIF_PARAMS["tmem"], help="LIF membrane time constant")
    p.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up")
    p.add_argument("--only", choices=["ours", "baseline"], help="time only this implementation")
    p.add_argument("--baseline-python", default=peer_python("eventax"))
    p.add_argument("--baseline-adjoint", choices=["recursive", "eventprop"], default="recursive")
    p.add_argument("--max-event-steps", type=int, default=None,
                   help="event-loop bound for both (default: 1.25 x the most needed)")
    p.add_argument("--segment-max-steps", type=int, default=None,
                   help="our solver steps per segment (default: our default)")
    p.add_argument("--surrogate-dt", type=float, action="append", default=[],
                   help="also time our fixed-step surrogate mode (and spyx) at this dt (repeatable)")
    p.add_argument("--spyx-python", default=peer_python("spyx"),
                   help="interpreter with spyx 1.0 (see bench_spyx.py); skipped if missing")
    p.add_argument("--skip-check", action="store_true", help="time without the agreement check")
    p.add_argument("--allow-mismatch", action="store_true", help="time even if the check fails")
    # internal: one measurement in a worker process
    p.add_argument("--worker", choices=["check", "forward", "fwdbwd"], help=argparse.SUPPRESS)
    p.add_argument("--impl", choices=["ours", "baseline", "surrogate"], help=argparse.SUPPRESS)
    p.add_argument("--sdt", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--workload-file", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1 (BENCHMARKS.md asks for 3 or more)")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return
    record = run_benchmark(args)
    write_results(record)
    print()
    print(markdown(record))
    print(f"appended to {RESULTS / 'benchmark.jsonl'}; table in {RESULTS / 'benchmark.md'}")


if __name__ == "__main__":
    main()
