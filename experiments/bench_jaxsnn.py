"""Peer: the "yy-5-50-3" LIF workload (tsyn 5, tmem 10) in jaxsnn 0.3, event-based, closed form.

jaxsnn's event-based LIF finds each next threshold crossing in closed form, which it can do only
for `tmem = tsyn` or `tmem = 2 tsyn`; so this is the LIF *work-precision* workload of
`shared/BENCHMARKS.md` (`thresh 1, tsyn 5, tmem 10, vreset 0`, no bias, float32), on the saved
weights and the 256 inputs of `experiments/benchmark.py`. Gradients use jaxsnn's EventProp.

Runs in its own virtual environment (never this project's): at module level it imports only the
standard library and NumPy; jaxsnn and JAX are imported inside the functions that use them.

    python3 -m venv ../jaxsnn-ref && ../jaxsnn-ref/bin/pip install jaxsnn==0.3.0

Run (from the repository root; each measurement in its own worker process, so that the peak RSS
is attributable; one JSON line on stdout, progress on stderr):

    ../jaxsnn-ref/bin/python experiments/bench_jaxsnn.py --selfcheck
    nice -n 10 ../jaxsnn-ref/bin/python experiments/bench_jaxsnn.py --batch 256 --repeats 3 \\
        --out results/jaxsnn_yy-5-50-3_tmem10.json [--workload results/workload_yy-5-50-3_b256.npz]
        [--n-steps-hidden N --n-steps-output M] [--cap-margin 1.25] [--v-reset 0] [--only forward]

The workload file (`weights`, `inputs`, `labels`) is written, if missing, by this project's
interpreter (`--project-python`, default `.venv/bin/python`) with `--make-workload`, which
imports `benchmark.py`: `load_or_write_weights(50)` (`results/weights/yy-5-50-3_seed0.npz`) and
`make_inputs(batch)`. It is the same file format `bench_spyx.py` reads.

Model (ours -> jaxsnn):
- ours: `tmem dv/dt = -v + i`, `tsyn di/dt = -i`, a presynaptic spike adds `w` to `i`; at
  `v = thresh`, `v -> vreset` (`i` kept); no refractory period, any number of spikes per neuron.
  jaxsnn's `LIFParameters` / `lif_exponential_flow` / `transition` are the same ODE, jump and reset.
- `Source(5) -> Linear(weights[n:, :50]) -> LIF(50) -> Linear(weights[:50, 50:]) -> LIF(3)`
  (rows of our `(n + 5, n)` weights are presynaptic, neurons then inputs; `n = 53`).
- Inputs: one spike per channel at `[x, y, 1-x, 1-y, 0] * 30`, handed over as a jaxsnn `Spike`
  sorted by time per sample (its input queue assumes time order), `t_max = 30`.
- jaxsnn simulates a layer as a `lax.scan` of `n_steps` event steps; each step handles exactly
  one event (the earliest of: next input spike, next own spike) and records it. So a layer's
  `n_steps` bounds (input events + own spikes); events beyond it are dropped silently. The caps
  here follow `benchmark.py`'s rule for our `max_event_steps`: a probe with generous caps, then
  `1.25 x (most events of the layer in any sample + 2)`, rounded up to 10. The stats worker
  reports whether any sample fills a layer's cap (`cap_hit_samples`).
- First spike time of each output: its earliest recorded own spike; `inf` for no spike (JSON:
  `Infinity`). Loss: softmax cross-entropy over `-t_first` with `inf -> 30`, mean over the batch;
  `jax.value_and_grad` w.r.t. the two weight matrices through jaxsnn's EventProp `custom_vjp`.

Checks (stats worker): an independent float64 reference of the same network (summed closed-form
PSPs minus reset kernels, threshold crossings found on a grid with derivative-based detection of
grazing maxima, then bisection) gives the first-spike-time error; the hidden layer's first spike
times are compared with it too. EventProp gradients are compared with JAX autodiff through
jaxsnn's own closed-form forward and with central differences of the float64 reference.
`--selfcheck`: the PSP kernel against an RK4 integration, and a tiny network's spike times
(first and later, f32 and f64) against the float64 root of the summed PSPs.
"""

from __future__ import annotations

import argparse
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

from common import REPO, SCRATCH  # noqa: E402

DEFAULT_WORKLOAD = SCRATCH / "workload_yy-5-50-3_b256.npz"
DEFAULT_PROJECT_PYTHON = REPO / ".venv" / "bin" / "python"

T_MAX = 30.0
IN_SIZE = 5
N_OUT = 3
THRESH, TSYN, TMEM = 1.0, 5.0, 10.0
GENEROUS_CAPS = (600, 800)  # probe caps (hidden, output) before the 1.25 rule


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ============================================================================ workload


def make_workload(path: Path, batch: int) -> None:
    """Run under this project's interpreter: the benchmark's saved weights and inputs."""
    sys.path.insert(0, str(REPO / "experiments"))
    import benchmark  # noqa: PLC0415  (this project's; imports eventax.data)

    weights, wpath = benchmark.load_or_write_weights(50)
    inputs, labels = benchmark.make_inputs(batch)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, weights=weights, inputs=inputs, labels=labels)
    log(f"wrote {path} (weights from {wpath}, {batch} samples)")


def load_workload(path, batch):
    data = np.load(path)
    x = np.asarray(data["inputs"], np.float32)[:batch, :, 0]  # (batch, 5) spike times
    labels = np.asarray(data["labels"], np.int32)[:batch]
    if x.shape[0] < batch:
        raise ValueError(f"{path} holds {x.shape[0]} samples; asked for {batch}")
    return x, labels, np.asarray(data["weights"], np.float32)


def split_weights(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Our `(n + 5, n)` matrix -> input->hidden `(5, H)` and hidden->output `(H, 3)`."""
    n = weights.shape[1]
    hidden = n - N_OUT
    return weights[n:, :hidden], weights[:hidden, hidden:]


# ============================================================================ float64 reference


def psp(t, tsyn=TSYN, tmem=TMEM):
    """Membrane response to a unit current jump at t=0 (`tmem v' = -v + i`, `tsyn i' = -i`).

    `v(t) = tsyn / (tmem - tsyn) * (exp(-t/tmem) - exp(-t/tsyn))`; for tmem = 2 tsyn the
    prefactor is 1: `v(t) = w (exp(-t/10) - exp(-t/5))`, peak `w/4` at `t = 10 ln 2`.
    Zero for t <= 0.
    """
    t = np.asarray(t, np.float64)
    tp = np.maximum(t, 0.0)
    v = tsyn / (tmem - tsyn) * (np.exp(-tp / tmem) - np.exp(-tp / tsyn))
    return np.where(t > 0, v, 0.0)


def dpsp(t, tsyn=TSYN, tmem=TMEM):
    t = np.asarray(t, np.float64)
    tp = np.maximum(t, 0.0)
    d = tsyn / (tmem - tsyn) * (np.exp(-tp / tsyn) / tsyn - np.exp(-tp / tmem) / tmem)
    return np.where(t > 0, d, 0.0)


def reference_layer(pre_t, pre_w, thresh=THRESH, vreset=0.0, t_max=T_MAX, grid_dt=2e-3,
                    tsyn=TSYN, tmem=TMEM):
    """All spike times of a layer of LIF neurons driven by given presynaptic spikes (float64).

    `pre_t`: `(P,)` presynaptic spike times; `pre_w`: `(P, N)` the weight each of them carries
    to each neuron. Membrane of neuron j: `sum_p pre_w[p, j] psp(t - pre_t[p])` minus
    `(thresh - vreset) exp(-(t - t_k)/tmem)` for each own earlier spike t_k (the reset; `i` is
    kept). Crossings: a grid of step `grid_dt`; an interval counts if it ends at or above
    threshold, or if the derivative turns from + to - inside it and the maximum (found by
    bisection on the derivative) reaches threshold; then bisection on `v` to float64 resolution.
    Returns a list (one per neuron) of sorted spike-time arrays in `(0, t_max)`.
    """
    pre_t = np.asarray(pre_t, np.float64)
    pre_w = np.asarray(pre_w, np.float64)
    grid = np.linspace(0.0, t_max, int(round(t_max / grid_dt)) + 1)
    kern = psp(grid[:, None] - pre_t[None, :], tsyn, tmem)  # (G, P)
    dkern = dpsp(grid[:, None] - pre_t[None, :], tsyn, tmem)
    v_all = kern @ pre_w  # (G, N)
    dv_all = dkern @ pre_w
    jump = thresh - vreset
    out = []
    for j in range(pre_w.shape[1]):
        w = pre_w[:, j]
        spikes: list[float] = []

        def v(t, w=w, spikes=spikes):
            r = psp(t - pre_t, tsyn, tmem) @ w
            for tk in spikes:
                r -= jump * math.exp(-(t - tk) / tmem)
            return r

        def dv(t, w=w, spikes=spikes):
            r = dpsp(t - pre_t, tsyn, tmem) @ w
            for tk in spikes:
                r += jump / tmem * math.exp(-(t - tk) / tmem)
            return r

        vg, dvg = v_all[:, j].copy(), dv_all[:, j].copy()
        start = 0.0  # last spike (or 0): v(start) < thresh
        while True:
            i0 = int(np.searchsorted(grid, start, side="right"))
            pts = np.concatenate([[start], grid[i0:]])
            vals = np.concatenate([[v(start) if spikes else vg[0]], vg[i0:]])
            dvals = np.concatenate([[dv(start) if spikes else dvg[0]], dvg[i0:]])
            hit = None
            for k in np.nonzero((vals[1:] >= thresh) | ((dvals[:-1] > 0) & (dvals[1:] < 0)))[0]:
                a, b = pts[k], pts[k + 1]
                if vals[k + 1] >= thresh:
                    hit = (a, b)
                    break
                lo, hi = a, b  # grazing check: maximum inside (a, b)
                for _ in range(60):
                    mid = 0.5 * (lo + hi)
                    lo, hi = (mid, hi) if dv(mid) > 0 else (lo, mid)
                if v(lo) >= thresh:
                    hit = (a, lo)
                    break
            if hit is None:
                break
            lo, hi = hit
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                if mid in (lo, hi):
                    break
                lo, hi = (mid, hi) if v(mid) < thresh else (lo, mid)
            tk = hi
            if tk >= t_max:
                break
            spikes.append(tk)
            after = grid > tk
            decay = np.exp(-(grid[after] - tk) / tmem)
            vg[after] -= jump * decay
            dvg[after] += jump / tmem * decay
            start = tk
        out.append(np.asarray(spikes))
    return out


def reference_network(x, w_in, w_out, **kw):
    """One sample: `x` (5,) input times -> (hidden spike lists, output spike lists)."""
    hid = reference_layer(x, w_in, **kw)
    times = np.concatenate([s for s in hid]) if hid else np.zeros(0)
    src = np.concatenate([np.full(len(s), j) for j, s in enumerate(hid)]).astype(int)
    out = reference_layer(times, w_out[src], **kw)
    return hid, out


def first_times(spike_lists) -> np.ndarray:
    return np.array([s[0] if len(s) else np.inf for s in spike_lists])


def reference_loss(xs, labels, w_in, w_out, **kw) -> tuple[float, np.ndarray, list]:
    ttfs, hid = [], []
    for x in xs:
        h, o = reference_network(x, w_in, w_out, **kw)
        ttfs.append(first_times(o))
        hid.append(h)
    t = np.where(np.isfinite(ttfs), ttfs, T_MAX)
    z = -t - np.max(-t, axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(labels)), labels])), np.asarray(ttfs), hid


# ============================================================================ jaxsnn model


def build(w_in, w_out, caps, v_reset=0.0, backprop="eventprop"):
    """jaxsnn network with the given weights; `w_out=None`: one layer only.

    Returns `(apply, params, layer_idx_of_input)`; `apply(inputs, params)` is jaxsnn's batched
    apply (it vmaps over the leading axis of the input `Spike` itself).
    """
    import jax
    import jax.numpy as jnp
    from jaxsnn.event.modules import LIF, Linear, Source
    from jaxsnn.event.modules.lif.lif import LIFParameters
    from jaxsnn.event.topology import Topology

    params = LIFParameters(tau_syn=TSYN, tau_mem=TMEM, v_th=THRESH, v_reset=v_reset)
    top = Topology(t_max=T_MAX, backprop_method=backprop)
    dtype = jnp.zeros(()).dtype  # float64 under jax_enable_x64
    modules = {
        "inp": Source(w_in.shape[0]),
        "syn1": Linear(pre_weights=jnp.asarray(w_in, dtype)),
        "lif1": LIF(w_in.shape[1], caps[0], params),
    }
    edges = [("inp", "syn1"), ("syn1", "lif1")]
    if w_out is not None:
        modules.update({
            "syn2": Linear(pre_weights=jnp.asarray(w_out, dtype)),
            "lif2": LIF(w_out.shape[1], caps[1], params),
        })
        edges += [("lif1", "syn2"), ("syn2", "lif2")]
    top.add(modules)
    top.connect(edges)
    init_fn, apply_fn = top.done()
    return apply_fn, init_fn(jax.random.PRNGKey(0)), top.node_index_mapping["inp"]


def input_spikes(x, layer_idx):
    """`(batch, channels)` spike times -> a batched jaxsnn `Spike`, time-sorted per sample."""
    import jax.numpy as jnp
    from jaxsnn.event.types import Spike

    order = np.argsort(x, axis=1, kind="stable")
    dtype = jnp.zeros(()).dtype
    return Spike(
        time=jnp.asarray(np.take_along_axis(x, order, axis=1), dtype),
        idx=jnp.asarray(order, jnp.int32),
        current=jnp.zeros(x.shape, dtype),
        layer_idx=jnp.full(x.shape, layer_idx, jnp.int32),
        internal=jnp.ones(x.shape, bool),
    )


def first_spikes(spikes, n):
    """A layer's recorded events `(batch, n_steps)` -> first own spike per neuron `(batch, n)`."""
    import jax.numpy as jnp

    t = jnp.where(spikes.internal, spikes.time, jnp.inf)
    own = spikes.idx[..., None] == jnp.arange(n)  # (batch, steps, n)
    return jnp.min(jnp.where(own, t[..., None], jnp.inf), axis=1)


def make_functions(apply_fn):
    import jax
    import jax.numpy as jnp

    def ttfs(params, inp):
        return first_spikes(apply_fn({"inp": inp}, params)["lif2"], N_OUT)

    def loss(params, inp, labels):
        t = ttfs(params, inp)
        t = jnp.where(jnp.isfinite(t), t, T_MAX)
        logp = jax.nn.log_softmax(-t, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))

    return jax.jit(ttfs), jax.jit(jax.value_and_grad(loss)), loss


def layer_counts(events, caps) -> dict:
    """Per layer: own spikes and filled event slots per sample; samples that fill the cap."""
    out = {}
    for node, cap in zip(("lif1", "lif2"), caps):
        s = events[node]
        own = np.asarray(s.internal).sum(axis=1)
        used = (np.asarray(s.idx) >= 0).sum(axis=1)
        out[node] = {"cap": int(cap), "own_spikes": own, "events": used,
                     "cap_hit_samples": int((used >= cap).sum())}
    return out


def auto_caps(apply_fn_for, inp, margin: float) -> tuple[tuple[int, int], dict]:
    """Probe with generous caps (doubled until no layer fills them), then the 1.25 rule."""
    import jax

    caps = GENEROUS_CAPS
    while True:
        apply_fn, params, _ = apply_fn_for(caps)
        events = jax.jit(lambda p, i: apply_fn({"inp": i}, p))(params, inp)
        counts = layer_counts(events, caps)
        if all(c["cap_hit_samples"] == 0 for c in counts.values()):
            break
        caps = tuple(2 * c for c in caps)
    need = [int(counts[k]["events"].max()) for k in ("lif1", "lif2")]
    chosen = tuple(int(math.ceil(margin * (n + 2) / 10) * 10) for n in need)
    return chosen, {"probe_caps": list(caps), "max_events_per_layer": need}


# ============================================================================ workers


def time_calls(fn, fn_args, repeats: int, batch: int) -> dict:
    """First (compiling, warm-up) call, then `repeats` timed calls; medians (as benchmark.py)."""
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
        "cpu_s": cpu,
        "first_call_s": first,
        "compile_s": first - steady,
    }


def process_info() -> dict:
    from importlib.metadata import version

    import jax

    return {
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "jaxsnn_version": version("jaxsnn"),
        "jax_version": jax.__version__,
        "jaxlib_version": version("jaxlib"),
        "backend": jax.default_backend(),
        "x64": bool(jax.config.jax_enable_x64),
    }


def run_worker(args) -> None:
    import jax.numpy as jnp

    x, labels, weights = load_workload(args.workload, args.batch)
    w_in, w_out = split_weights(weights)
    caps = (args.n_steps_hidden, args.n_steps_output)
    apply_fn, params, in_idx = build(w_in, w_out, caps, args.v_reset)
    inp = input_spikes(x, in_idx)
    fwd, fwdbwd, _ = make_functions(apply_fn)
    if args.worker == "forward":
        result = time_calls(fwd, (params, inp), args.repeats, args.batch)
    elif args.worker == "fwdbwd":
        result = time_calls(fwdbwd, (params, inp, jnp.asarray(labels)), args.repeats, args.batch)
    else:
        result = stats(args, x, labels, w_in, w_out, inp, in_idx)
    result.update(process_info())
    Path(args.worker_out).write_text(json.dumps(result))


def stats(args, x, labels, w_in, w_out, inp, in_idx) -> dict:
    """Caps, spike times and counts, error against the float64 reference, gradient checks."""
    import jax
    import jax.numpy as jnp

    def builder(caps, backprop="eventprop"):
        return build(w_in, w_out, caps, args.v_reset, backprop)

    result = {}
    if args.n_steps_hidden is None or args.n_steps_output is None:
        caps, result["auto_caps"] = auto_caps(builder, inp, args.cap_margin)
    else:
        caps = (args.n_steps_hidden, args.n_steps_output)
    apply_fn, params, _ = builder(caps)
    fwd, fwdbwd, loss = make_functions(apply_fn)
    events = jax.jit(lambda p, i: apply_fn({"inp": i}, p))(params, inp)
    counts = layer_counts(events, caps)
    t = np.asarray(fwd(params, inp), np.float64)
    t_hid = np.asarray(first_spikes(events["lif1"], w_in.shape[1]), np.float64)
    y = jnp.asarray(labels)
    value, grads = fwdbwd(params, inp, y)
    g_ep = [np.asarray(grads[k], np.float64) for k in ("syn1", "syn2")]
    result.update({
        "caps": {"n_steps_hidden": caps[0], "n_steps_output": caps[1]},
        "ttfs": t.tolist(),  # (batch, 3); inf = no spike within t_max
        "loss": float(value),
        "grad_norms": [float(np.linalg.norm(g)) for g in g_ep],
        "grad_finite": bool(all(np.isfinite(g).all() for g in g_ep)),
        "outputs_spiking_per_sample": float(np.isfinite(t).sum(axis=1).mean()),
        "frac_all_outputs_spiking": float(np.isfinite(t).all(axis=1).mean()),
    })
    for node, c in counts.items():
        own, used = c["own_spikes"], c["events"]
        result[node] = {
            "n_steps_cap": c["cap"], "cap_hit_samples": c["cap_hit_samples"],
            "own_spikes_per_sample_mean": float(own.mean()), "own_spikes_per_sample_max": int(own.max()),
            "events_per_sample_mean": float(used.mean()), "events_per_sample_max": int(used.max()),
        }
    hid_spk = np.asarray(events["lif1"].internal)
    hid_idx = np.asarray(events["lif1"].idx)
    per_neuron = np.stack([(hid_spk & (hid_idx == j)).sum(axis=1) for j in range(w_in.shape[1])], 1)
    result["lif1"]["max_spikes_one_neuron"] = int(per_neuron.max())
    result["lif1"]["frac_neurons_multi_spike"] = float((per_neuron > 1).mean())

    # float64 reference of the same network
    log("stats: float64 reference ...")
    start = time.perf_counter()
    ref_value, ref_t, ref_hid = reference_loss(x, labels, w_in, w_out, grid_dt=args.ref_grid_dt)
    ref_hid_first = np.stack([first_times(h) for h in ref_hid])
    result["reference"] = {
        "grid_dt": args.ref_grid_dt, "seconds": time.perf_counter() - start, "loss": ref_value,
        "output": _compare_times(t, ref_t),
        "hidden_first_spike": _compare_times(t_hid, ref_hid_first),
        "hidden_spikes_per_sample_mean": float(np.mean([sum(len(s) for s in h) for h in ref_hid])),
    }

    # EventProp against autodiff through jaxsnn's own closed-form forward (same forward)
    log("stats: autodiff gradient ...")
    ad_apply, ad_params, _ = builder(caps, backprop="analytical")
    _, _, ad_loss = make_functions(ad_apply)
    ad_value, ad_grads = jax.jit(jax.value_and_grad(ad_loss))(ad_params, inp, y)
    g_ad = [np.asarray(ad_grads[k], np.float64) for k in ("syn1", "syn2")]
    result["grad_vs_autodiff"] = {
        "loss_diff": float(value - ad_value),
        "rel_diff_per_layer": [_rel(a, b) for a, b in zip(g_ep, g_ad)],
        "cosine_per_layer": [_cos(a, b) for a, b in zip(g_ep, g_ad)],
        "autodiff_grad_norms": [float(np.linalg.norm(g)) for g in g_ad],
    }

    # directional central differences of the float64 reference loss on a subset
    log("stats: finite differences ...")
    n_fd, eps = min(args.fd_samples, len(labels)), 1e-4
    rng = np.random.default_rng(0)
    fd = []
    for _ in range(args.fd_directions):
        d_in, d_out = rng.standard_normal(w_in.shape), rng.standard_normal(w_out.shape)
        lp, _, _ = reference_loss(x[:n_fd], labels[:n_fd], w_in + eps * d_in, w_out + eps * d_out)
        lm, _, _ = reference_loss(x[:n_fd], labels[:n_fd], w_in - eps * d_in, w_out - eps * d_out)
        sub_inp = input_spikes(x[:n_fd], in_idx)
        _, gs = fwdbwd(params, sub_inp, y[:n_fd])
        _, ga = jax.jit(jax.value_and_grad(ad_loss))(ad_params, sub_inp, y[:n_fd])
        dot = lambda g: float(np.sum(np.asarray(g["syn1"]) * d_in) + np.sum(np.asarray(g["syn2"]) * d_out))  # noqa: E731
        fd.append({"fd_f64": (lp - lm) / (2 * eps), "eventprop": dot(gs), "autodiff": dot(ga)})
    result["grad_vs_fd"] = {"samples": n_fd, "eps": eps, "directions": fd}
    return result


def _compare_times(t, ref) -> dict:
    both = np.isfinite(t) & np.isfinite(ref)
    d = np.abs(t - ref)[both]
    return {
        "pairs": int(t.size), "both_spike": int(both.sum()),
        "flips": int((np.isfinite(t) != np.isfinite(ref)).sum()),
        "abs_err_median": float(np.median(d)) if d.size else None,
        "abs_err_max": float(d.max()) if d.size else None,
    }


def _rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def _cos(a, b) -> float:
    return float(np.sum(a * b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))


# ============================================================================ self-check


TINY_X = np.array([0.0, 1.5, 4.0, 7.0])
TINY_W = np.array([  # (4 inputs, 5 neurons)
    [6.0, 20.0, 1.0, 3.0, 4.1],
    [0.0, 5.0, 1.0, 3.0, 0.0],
    [0.0, 0.0, 1.0, -2.0, 0.0],
    [0.0, 10.0, 0.5, 4.0, 0.0],
])  # one spike / several spikes (resets) / silent / mixed signs / barely above threshold


def selfcheck_worker(out: Path) -> None:
    import jax

    apply_fn, params, in_idx = build(TINY_W, None, (40, 0))
    ev = jax.jit(lambda p, i: apply_fn({"inp": i}, p))(params, input_spikes(TINY_X[None], in_idx))["lif1"]
    own = np.asarray(ev.internal[0])
    times, idx = np.asarray(ev.time[0], np.float64)[own], np.asarray(ev.idx[0])[own]
    spikes = [np.sort(times[idx == j]).tolist() for j in range(TINY_W.shape[1])]
    out.write_text(json.dumps({"spikes": spikes, **process_info()}))


def selfcheck() -> bool:
    ok = True
    # 1. the PSP kernel against RK4 of the ODE (float64)
    h, n = 1e-4, 300_000
    v, i, vs = 0.0, 1.0, [0.0]
    f = lambda v, i: ((-v + i) / TMEM, -i / TSYN)  # noqa: E731
    for _ in range(n):
        k1 = f(v, i)
        k2 = f(v + h / 2 * k1[0], i + h / 2 * k1[1])
        k3 = f(v + h / 2 * k2[0], i + h / 2 * k2[1])
        k4 = f(v + h * k3[0], i + h * k3[1])
        v += h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        i += h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        vs.append(v)
    tt = np.arange(n + 1) * h
    err = float(np.max(np.abs(np.asarray(vs) - psp(tt))))
    err2 = float(np.max(np.abs(np.asarray(vs) - 2 * (np.exp(-tt / 10) - np.exp(-tt / 5)))))
    print(f"PSP kernel (w=1) vs RK4 over [0, 30]: max |diff| {err:.2e} for exp(-t/10)-exp(-t/5); "
          f"{err2:.2e} for 2(exp(-t/10)-exp(-t/5))")
    ok &= err < 1e-9

    # 2. a tiny network in jaxsnn (f32 and f64) against the float64 root of the summed PSPs
    ref = reference_layer(TINY_X, TINY_W, grid_dt=1e-3)
    first_ref = first_times(ref)
    # the first spike alone: root of the summed PSPs (no reset involved)
    print("float64 reference spikes:", [np.round(s, 9).tolist() for s in ref])
    with tempfile.TemporaryDirectory() as tmp:
        for x64, tol in ((False, 1e-4), (True, 1e-9)):
            path = Path(tmp) / f"tiny_{x64}.json"
            env = {**os.environ, "JAX_ENABLE_X64": "1" if x64 else "0"}
            proc = subprocess.run([sys.executable, __file__, "--selfcheck-worker", str(path)],
                                  capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                print(proc.stdout + proc.stderr)
                return False
            got = json.loads(path.read_text())["spikes"]
            first = np.array([s[0] if s else np.inf for s in got])
            same_count = [len(a) == len(b) for a, b in zip(got, ref)]
            fin = np.isfinite(first_ref) & np.isfinite(first)
            d_first = np.abs(first[fin] - first_ref[fin])
            d_all = [abs(a - b) for g, r in zip(got, ref) if len(g) == len(r) for a, b in zip(g, r)]
            good = (np.array_equal(np.isfinite(first), np.isfinite(first_ref))
                    and d_first.max() <= tol and all(same_count) and max(d_all) <= tol)
            print(f"jaxsnn {'float64' if x64 else 'float32'}: first spikes {np.round(first, 7).tolist()}, "
                  f"max |t - t_ref| first {d_first.max():.2e}, all {max(d_all):.2e}, "
                  f"spike counts {[len(s) for s in got]} vs ref {[len(s) for s in ref]}: "
                  f"{'OK' if good else 'FAIL'} (tol {tol:g})")
            ok &= bool(good)
    print("selfcheck", "passed" if ok else "FAILED")
    return ok


# ============================================================================ orchestration


def spawn(mode: str, args, tmp: Path, caps) -> dict:
    out = tmp / f"{mode}.json"
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--worker-out", str(out),
        "--workload", str(args.workload), "--batch", str(args.batch), "--repeats", str(args.repeats),
        "--v-reset", repr(args.v_reset), "--cap-margin", repr(args.cap_margin),
        "--ref-grid-dt", repr(args.ref_grid_dt), "--fd-samples", str(args.fd_samples),
        "--fd-directions", str(args.fd_directions),
    ]
    if caps[0] is not None:
        cmd += ["--n-steps-hidden", str(caps[0]), "--n-steps-output", str(caps[1])]
    log(f"[jaxsnn] {mode} ... (load {os.getloadavg()[0]:.2f})")
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} worker failed (rc={proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    result = json.loads(out.read_text())
    log(f"[jaxsnn] {mode} done in {time.perf_counter() - start:.1f} s: "
        + ", ".join(f"{k}={v:.4g}" for k, v in result.items()
                    if k in ("samples_per_s", "compile_s", "peak_rss_mb") and isinstance(v, float)))
    return result


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workload", default=str(DEFAULT_WORKLOAD))
    p.add_argument("--project-python", default=str(DEFAULT_PROJECT_PYTHON),
                   help="this project's interpreter, to write a missing workload file")
    p.add_argument("--n-steps-hidden", type=int, default=None, help="jaxsnn event steps of the hidden layer")
    p.add_argument("--n-steps-output", type=int, default=None, help="jaxsnn event steps of the output layer")
    p.add_argument("--cap-margin", type=float, default=1.25)
    p.add_argument("--v-reset", type=float, default=0.0,
                   help="0: our semantics; jaxsnn's examples use -1000 (at most one spike per neuron)")
    p.add_argument("--ref-grid-dt", type=float, default=2e-3)
    p.add_argument("--fd-samples", type=int, default=16)
    p.add_argument("--fd-directions", type=int, default=2)
    p.add_argument("--only", choices=("stats", "forward", "fwdbwd"), action="append",
                   help="run only these workers (repeatable; default: all three)")
    p.add_argument("--out", default=None)
    p.add_argument("--selfcheck", action="store_true", help="kernel and tiny-network checks, then exit")
    p.add_argument("--make-workload", action="store_true", help="(this project's venv) write --workload")
    p.add_argument("--worker", choices=("stats", "forward", "fwdbwd"), help=argparse.SUPPRESS)
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    p.add_argument("--selfcheck-worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.selfcheck_worker:
        selfcheck_worker(Path(args.selfcheck_worker))
        return
    if args.selfcheck:
        sys.exit(0 if selfcheck() else 1)
    if args.make_workload:
        make_workload(Path(args.workload), args.batch)
        return
    if args.worker:
        run_worker(args)
        return
    workload = Path(args.workload)
    if not workload.exists() or len(np.load(workload)["inputs"]) < args.batch:
        subprocess.run([args.project_python, str(Path(__file__).resolve()), "--make-workload",
                        "--workload", str(workload), "--batch", str(max(args.batch, 256))], check=True)
    record = {
        "workload": "yy-5-50-3", "impl": "jaxsnn", "variant": "event, closed-form LIF, EventProp",
        "lif": {"thresh": THRESH, "tsyn": TSYN, "tmem": TMEM, "vreset": args.v_reset},
        "batch": args.batch, "repeats": args.repeats, "dtype": "float32",
        "workload_file": str(workload), "host_cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg()[0], "ttfs_no_spike": "inf",
    }
    caps = (args.n_steps_hidden, args.n_steps_output)
    with tempfile.TemporaryDirectory() as tmp:
        modes = args.only or ("stats", "forward", "fwdbwd")
        if caps[0] is None or caps[1] is None:
            if "stats" not in modes:
                modes = ("stats", *modes)
        for mode in modes:
            record[mode] = spawn(mode, args, Path(tmp), caps)
            if mode == "stats":
                caps = (record[mode]["caps"]["n_steps_hidden"], record[mode]["caps"]["n_steps_output"])
    record["caps"] = {"n_steps_hidden": caps[0], "n_steps_output": caps[1]}
    if "stats" in record:
        record["ttfs"] = record["stats"].pop("ttfs")
    record["loadavg_end"] = os.getloadavg()[0]
    text = json.dumps(record)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
        log(f"wrote {args.out}")
    print(text)


if __name__ == "__main__":
    main()
