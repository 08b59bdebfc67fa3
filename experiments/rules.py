"""Learning-rule study: every rule of a config trained from the same network.

    python experiments/rules.py configs/rules/randman.toml [--set key=value ...] [--only EProp]
        [--out experiments/results]

For each rule in `[rules] names` (each in its own process, so that its peak
memory is its own): train with the config's optimiser for `optim.epochs`
epochs (or `rules.budget[name]` batches), one update per batch (`rules.every =
0`) or every `every` grid steps with `eventax.train_online`; after each epoch
the validation and test accuracy. Every `rules.track_every` batches, on the
first `rules.track_samples` validation samples, the rule's gradient is compared
with BPTT's and with the exact event-mode gradient of the same loss (the
per-step readout loss evaluated on the event-mode trajectory at the grid
times): cosine similarity. Writes `<out>/rules_<config name>.json` (everything),
`.md` (the table) and `.png` (cosines over training); each rule's result is
kept in `<out>/rules_<config name>.parts/` and reused by a rerun (`--force`
recomputes).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from eventax import rules, train_online
from eventax.config import Config, load_config
from eventax.data import load_dataset
from eventax.train.build import build_network, build_optimiser

from common import RESULTS  # noqa: E402


@dataclass(frozen=True)
class RulesConfig:
    """A learning-rule study (`experiments/rules.py`; the model must be in
    `mode = "surrogate"`). `names`: classes of `eventax.rules` to train, each
    from the same initial network; `params`: their keyword arguments by name
    (`{ EProp = { feedback = "random" } }`; `FPTT` takes `rule` = the name of
    the online rule it wraps, and `alpha`). `every`: grid steps between updates
    of online rules (0: one update per batch from the rule's gradient, like
    BPTT). `readout`: `ReadoutCrossEntropy` keyword arguments. Every
    `track_every` batches (0: never) the rules' gradients on `track_samples`
    validation samples are compared with BPTT's and the exact event-mode one.
    `budget`: the most training batches a rule gets, by name (e.g. `{ RTRL = 10 }`
    for a rule too slow for the whole run; absent: all epochs)."""

    names: tuple[str, ...] = ("BPTT", "EProp", "OSTL", "OTTT", "RFLO")
    params: dict = field(default_factory=dict)
    budget: dict = field(default_factory=dict)
    every: int = 0
    readout: dict = field(default_factory=dict)
    track_every: int = 10
    track_samples: int = 32


@dataclass(frozen=True)
class RulesStudy(Config):
    """A training config with the `[rules]` section of this study."""

    rules: RulesConfig = field(default_factory=RulesConfig)


def build_rule(name: str, params: dict) -> tuple[rules.LearningRule, tuple]:
    """The rule `name` and the Optax transformations it chains before the optimiser
    (`FPTT`: the rule `params.FPTT.rule`, default OSTL, with `rules.fptt(alpha)`)."""
    kwargs = dict(params.get(name, {}))
    if name == "FPTT":
        inner, before = build_rule(kwargs.pop("rule", "OSTL"), params)
        return inner, (*before, rules.fptt(**kwargs))
    cls = getattr(rules, name, None)
    if not (isinstance(cls, type) and issubclass(cls, rules.LearningRule)):
        raise SystemExit(f"rules.names: {name!r} is not a rule of eventax.rules")
    return cls(**kwargs), ()


def flat(tree) -> np.ndarray:
    return np.asarray(jax.flatten_util.ravel_pytree(eqx.filter(tree, eqx.is_inexact_array))[0], np.float64)


def cosine(a, b) -> float:
    n = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / n) if n > 0 else float("nan")


def exact_gradient(net, loss, x, labels):
    """The event mode's gradient of the same per-step loss, on the exact trajectory at the grid times."""
    evnn, times, grid = net.net, net.times, rules.Grid(net.t0, net.dt, net.n_steps)

    def mean_loss(evnn):
        def one(x, label):
            states = evnn.state_at_t(x, times)  # (n_out, n_steps, channels)
            steps = jax.vmap(loss, in_axes=(1, 0, None, None))(states, times, grid, label)
            return jnp.sum(steps)

        return jnp.mean(jax.vmap(one)(x, labels))

    return eqx.filter_grad(mean_loss)(evnn)


def run_rule(cfg, name: str) -> dict:
    data = load_dataset(cfg.data)
    net = build_network(cfg.model, data.train.x.shape[1], data.n_classes, jax.random.PRNGKey(cfg.train.seed))
    if not hasattr(net, "step"):
        raise SystemExit("The rule study needs `model.mode = \"surrogate\"`.")
    loss = rules.ReadoutCrossEntropy(**cfg.rules.readout)
    rule, before = build_rule(name, cfg.rules.params)
    rule = rule.prepare(net)
    optimizer = optax.chain(*before, build_optimiser(cfg.optim))
    online = isinstance(rule, rules.OnlineRule) and cfg.rules.every > 0
    state = rules.OnlineState(net, rule, optimizer.init(eqx.filter(net, eqx.is_inexact_array)))

    @eqx.filter_jit
    def offline(state, x, y):
        net, rule, opt_state = state
        grads, value = rule.gradient(net, x, y, loss)
        params = eqx.filter(net, eqx.is_inexact_array)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        new = eqx.apply_updates(net, updates)
        return rules.OnlineState(new, rule.after_update(net, new, grads), opt_state), value

    evaluate = eqx.filter_jit(lambda net, x, y: rules.evaluate(net, loss, x, y))
    grad_of = eqx.filter_jit(lambda rule, net, x, y: rule.gradient(net, x, y, loss)[0])
    exact_of = eqx.filter_jit(lambda net, x, y: exact_gradient(net, loss, x, y))

    def accuracy(split):
        accs = [evaluate(state.net, jnp.asarray(split.x[i : i + 500]), jnp.asarray(split.y[i : i + 500]))[1] * len(split.y[i : i + 500])
                for i in range(0, len(split.y), 500)]
        return float(sum(accs) / len(split.y))

    xt = jnp.asarray(data.validation.x[: cfg.rules.track_samples])
    yt = jnp.asarray(data.validation.y[: cfg.rules.track_samples])

    def track(batch: int) -> dict:
        g = flat(grad_of(state.rule, state.net, xt, yt))
        g_bptt = flat(grad_of(rules.BPTT(), state.net, xt, yt))
        g_exact = flat(exact_of(state.net, xt, yt))
        return {"batch": batch, "cos_bptt": cosine(g, g_bptt), "cos_exact": cosine(g, g_exact),
                "cos_bptt_exact": cosine(g_bptt, g_exact)}

    bs, budget = cfg.optim.batch_size, cfg.rules.budget.get(name)
    rng = np.random.default_rng(cfg.train.seed)
    history, tracked, batch_times, n_batches = [], [], [], 0
    for epoch in range(cfg.optim.epochs):
        order = rng.permutation(len(data.train.y))
        first, losses = len(batch_times), []
        for i in range(0, len(order) - bs + 1, bs):
            if budget is not None and n_batches >= budget:
                break
            if cfg.rules.track_every and n_batches % cfg.rules.track_every == 0:
                tracked.append(track(n_batches))
            x, y = jnp.asarray(data.train.x[order[i : i + bs]]), jnp.asarray(data.train.y[order[i : i + bs]])
            t0 = time.perf_counter()
            if online:
                state, values = train_online(state.net, state.rule, loss, optimizer, [(x, y)],
                                             every=cfg.rules.every, state=state)
                value = values[0]
            else:
                state, value = offline(state, x, y)
                value = float(value)
            batch_times.append(time.perf_counter() - t0)
            losses.append(value)
            n_batches += 1
        if not losses:
            break
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "batches": n_batches,
                        "seconds": float(sum(batch_times[first:])),  # training only, not tracking or evaluation
                        "val_acc": accuracy(data.validation), "test_acc": accuracy(data.test)})
        print(name, history[-1], flush=True)
    steady = float(np.median(batch_times[1:])) if len(batch_times) > 1 else float("nan")
    return {
        "rule": name, "history": history, "tracked": tracked,
        "samples_per_s": bs / steady, "compile_s": batch_times[0] - steady,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "online_every": cfg.rules.every if online else 0,
    }


def table(results: list[dict]) -> str:
    rows = ["| rule | batches | test acc | val acc | s / epoch | samples/s | vs BPTT | peak RSS (MB) | cos BPTT (first → last) | cos exact (first → last) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    base = next((r["samples_per_s"] for r in results if r["rule"] == "BPTT"), float("nan"))
    for r in results:
        h, tr = r["history"][-1], r["tracked"]
        cb = f"{tr[0]['cos_bptt']:.3f} → {tr[-1]['cos_bptt']:.3f}" if tr else "—"
        ce = f"{tr[0]['cos_exact']:.3f} → {tr[-1]['cos_exact']:.3f}" if tr else "—"
        rows.append(f"| {r['rule']} | {h['batches']} | {h['test_acc']:.3f} | {h['val_acc']:.3f} | "
                    f"{np.median([e['seconds'] for e in r['history']]):.1f} | {r['samples_per_s']:.1f} | "
                    f"{r['samples_per_s'] / base:.4f} | {r['peak_rss_mb']:.0f} | {cb} | {ce} |")
    return "\n".join(rows)


def figure(results: list[dict], path: Path, title: str) -> None:
    from eventax._plotting import figure as new_figure, save

    fig = new_figure((10, 4))
    axes = fig.subplots(1, 2, sharey=True)
    for r in results:
        tr = r["tracked"]
        if tr:
            b = [t["batch"] for t in tr]
            axes[0].plot(b, [t["cos_bptt"] for t in tr], marker=".", label=r["rule"])
            axes[1].plot(b, [t["cos_exact"] for t in tr], marker=".", label=r["rule"])
    axes[0].set(title="cosine to BPTT (fixed step)", xlabel="training batch", ylabel="cosine similarity")
    axes[1].set(title="cosine to the exact event-mode gradient", xlabel="training batch")
    axes[1].legend(fontsize=8)
    fig.suptitle(title)
    save(fig, path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--set", nargs="*", default=[], help="config overrides, key=value")
    ap.add_argument("--only", help="run one rule in this process (used by the driver)")
    ap.add_argument("--json", help="with --only: write the result here")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--force", action="store_true", help="rerun rules whose result file exists")
    args = ap.parse_args(argv)
    cfg = load_config(args.config, args.set, schema=RulesStudy)
    if args.only:
        result = run_rule(cfg, args.only)
        Path(args.json).write_text(json.dumps(result)) if args.json else print(json.dumps(result))
        return
    out = Path(args.out)
    stem = out / f"rules_{cfg.name}"
    parts = out / f"rules_{cfg.name}.parts"  # one file per rule: a rerun skips finished rules
    parts.mkdir(parents=True, exist_ok=True)
    results = []
    for name in cfg.rules.names:
        part = parts / f"{name}.json"
        if args.force or not part.exists():
            cmd = [sys.executable, __file__, args.config, "--only", name, "--json", str(part), "--set", *args.set]
            subprocess.run(cmd, check=True)
        results.append(json.loads(part.read_text()))
    Path(f"{stem}.json").write_text(json.dumps({"config": args.config, "overrides": args.set, "results": results}, indent=1))
    Path(f"{stem}.md").write_text(f"{cfg.name} ({args.config} {' '.join(args.set)})\n\n{table(results)}\n")
    figure(results, Path(f"{stem}.png"), cfg.name)
    print(table(results))


if __name__ == "__main__":
    main()
