"""How far are surrogate gradients from the exact ones? Yin-Yang, LIF and QIF.

For each config (`configs/yinyang/lif_ttfs.toml`, `qif_ttfs.toml`) the network is
built in float64 (its initial weights, or a trained `best.evnn` given with
`--trained`), and on the first `--batch` validation samples the gradient of the
config's loss is computed by: the exact event mode; central finite differences
on `--fd` random entries; the fixed-step surrogate mode at several `dt` and
surrogate slopes. Per method and parameter group: cosine similarity, relative
error, sign agreement and norm ratio against the exact gradient.

    python experiments/gradient_comparison.py [--batch 32] [--fd 20] [--models lif qif]
        [--trained lif=runs/.../best.evnn] [--out experiments/results]

Writes `<out>/gradient_comparison.md` and `.json` (every row) and
`<out>/gradient_comparison.png` (cosine and norm ratio per method, all parameters).

`--track N` instead trains the LIF config briefly (event mode, float32, 1000 samples,
`--track-epochs` epochs of batch 100) with a `GradientTracker` every N steps (exact vs
surrogate at dt 0.05 and 0.01) and writes `<out>/gradient_tracking.{jsonl,png}`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from eventax import load_evnn, surrogates  # noqa: E402
from eventax.analysis import Exact, FiniteDifferences, SurrogateMode, cast_like, compare_gradients  # noqa: E402
from eventax.config import load_config  # noqa: E402
from eventax.data import load_dataset  # noqa: E402
from eventax.train.build import build_loss, build_network  # noqa: E402

from common import REPO, RESULTS  # noqa: E402
CONFIGS = {"lif": "configs/yinyang/lif_ttfs.toml", "qif": "configs/yinyang/qif_ttfs.toml"}


def methods(fd: int) -> list:
    out = [Exact(), FiniteDifferences(n_entries=fd, seed=0)]
    for dt in (0.1, 0.01):
        for slope in (5.0, 25.0, 100.0):
            out.append(SurrogateMode(dt, surrogates.FastSigmoid(slope=slope)))
    out.append(SurrogateMode(0.01, surrogates.Arctan(slope=2.0)))
    return out


def one_model(name: str, batch: int, fd: int, trained: str | None) -> dict:
    cfg = load_config(REPO / CONFIGS[name], ['model.dtype="float64"'])
    data = load_dataset(cfg.data)
    net = build_network(cfg.model, data.train.x.shape[1], data.n_classes, jax.random.PRNGKey(cfg.train.seed))
    if trained:
        net = cast_like(load_evnn(trained)[0], net)
    loss, _ = build_loss(cfg.loss, cfg.model, data.start_channels, net)
    x = jnp.asarray(data.validation.x[:batch], jnp.float64)
    y = jnp.asarray(data.validation.y[:batch])
    t0 = time.perf_counter()
    result = compare_gradients(net, (x, y), loss, methods(fd))
    return {
        "model": name, "config": CONFIGS[name], "weights": trained or "initial (seed 0)",
        "batch": batch, "seconds": time.perf_counter() - t0, "rows": result.rows,
        "markdown": result.markdown(),
    }


def figure(records: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.8))
    FigureCanvasAgg(fig)
    for col, metric in enumerate(("cosine", "norm_ratio")):
        ax = fig.add_subplot(1, 2, col + 1)
        for k, rec in enumerate(records):
            rows = [r for r in rec["rows"] if r["group"] == "all"]
            labels = [r["method"].replace("surrogate ", "") for r in rows]
            values = [r[metric] for r in rows]
            pos = np.arange(len(rows)) + (k - (len(records) - 1) / 2) * 0.8 / len(records)
            ax.bar(pos, values, width=0.8 / len(records), label=f"{rec['model'].upper()} ({rec['weights']})")
        ax.set_xticks(np.arange(len(labels)), labels, rotation=35, ha="right", fontsize=7)
        ax.set_ylabel(metric.replace("_", " ") + " vs exact")
        if metric == "norm_ratio":
            ax.set_yscale("log")
            ax.axhline(1.0, color="k", lw=0.6)
        else:
            ax.set_ylim(min(-0.4, ax.get_ylim()[0]), 1.05)
        ax.grid(alpha=0.3, axis="y")
    fig.axes[0].legend(fontsize=7)
    fig.suptitle("Yin-Yang 5-50-3, TTFS loss: gradients of each method vs the exact event gradient", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def track(every: int, epochs: int, batch: int, out: Path) -> None:
    from eventax.analysis import GradientTracker, plot_tracker
    from eventax.train import train

    jax.config.update("jax_enable_x64", False)
    overrides = ["data.train_size=1000", "data.val_size=500", "data.test_size=500", f"optim.epochs={epochs}",
                 "optim.batch_size=100", "train.plots=false"]
    cfg = load_config(REPO / CONFIGS["lif"], overrides)
    data = load_dataset(cfg.data)
    net = build_network(cfg.model, data.train.x.shape[1], data.n_classes, jax.random.PRNGKey(0))
    loss, _ = build_loss(cfg.loss, cfg.model, data.start_channels, net)
    path = out / "gradient_tracking.jsonl"
    path.unlink(missing_ok=True)
    methods = [Exact(), SurrogateMode(0.05), SurrogateMode(0.01)]
    batch_xy = (jnp.asarray(data.validation.x[:batch]), jnp.asarray(data.validation.y[:batch]))
    tracker = GradientTracker(path, batch_xy, loss, methods, every=every)
    import tempfile

    with tempfile.TemporaryDirectory() as run_dir:
        tracker(0, net)
        train(cfg, run_dir, progress=False, callbacks=[tracker])
    for group in ("all",):
        plot_tracker(path, out / "gradient_tracking.png", group=group)
    print(f"wrote {path} and gradient_tracking.png")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--fd", type=int, default=20)
    p.add_argument("--models", nargs="+", default=["lif", "qif"], choices=sorted(CONFIGS))
    p.add_argument("--trained", nargs="*", default=[], help="name=path/to/best.evnn")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--track", type=int, default=0, help="track gradients every N training steps instead")
    p.add_argument("--track-epochs", type=int, default=2)
    args = p.parse_args(argv)
    if args.track:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        track(args.track, args.track_epochs, args.batch, Path(args.out))
        return
    trained = dict(t.split("=", 1) for t in args.trained)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for name in args.models:
        rec = one_model(name, args.batch, args.fd, trained.get(name))
        print(f"## {name.upper()} ({rec['weights']}), batch {rec['batch']}, {rec['seconds']:.0f} s\n\n{rec['markdown']}\n", flush=True)
        records.append(rec)
    stem = out / "gradient_comparison"
    stem.with_suffix(".json").write_text(json.dumps(records, indent=1))
    stem.with_suffix(".md").write_text("\n\n".join(
        f"## {r['model'].upper()} ({r['weights']}), batch {r['batch']}\n\n{r['markdown']}" for r in records
    ) + "\n")
    figure(records, stem.with_suffix(".png"))
    print(f"wrote {stem}.md/.json/.png")


if __name__ == "__main__":
    main()
