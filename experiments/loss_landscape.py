"""Loss landscape around a trained Yin-Yang network: exact event loss vs surrogate-mode loss.

Trains the Yin-Yang config (default `configs/yinyang/lif_ttfs.toml`) briefly in the
event mode on a subset, recording the parameters every `--snapshot-every` steps.
Around the final network it evaluates the loss on `--batch` validation samples along
filter-normalised random directions (Li et al. 2018): a 1-D slice and a 2-D plane,
once with the exact event-driven simulation and once with the fixed-step surrogate
mode at `--dt` (the same parameters, the same loss), and projects the training
trajectory onto the plane.

    python experiments/loss_landscape.py [--config configs/yinyang/lif_ttfs.toml]
        [--train-size 1000] [--epochs 3] [--batch 64] [--dt 0.05] [--grid 13]
        [--out experiments/results]

Writes `<out>/landscape_1d.png`, `<out>/landscape_2d_{event,surrogate}.png` (random
plane), `<out>/landscape_pca_{event,surrogate}.png` (the plane of the trajectory's two
principal directions, with the trajectory) and `<out>/landscape.json` (all values, plus the
roughness of each 1-D slice: the mean |second difference| relative to the range).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from eventax import FixedStepNN
from eventax.analysis import (
    pca_directions, plot_slice_1d, plot_slice_2d, project_trajectory, random_direction, slice_1d, slice_2d,
)
from eventax.analysis.gradients import batch_loss
from eventax.config import load_config
from eventax.train import train
from eventax.data import load_dataset
from eventax.train.build import build_loss, build_network

from common import REPO, RESULTS  # noqa: E402


def roughness(values) -> float:
    """Mean |second difference| / (max - min): 0 for a straight line, large for a jagged curve."""
    v = np.asarray(values, np.float64)
    span = v.max() - v.min()
    return float(np.mean(np.abs(np.diff(v, 2))) / span) if span > 0 else 0.0


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/yinyang/lif_ttfs.toml")
    p.add_argument("--train-size", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--snapshot-every", type=int, default=3)
    p.add_argument("--batch", type=int, default=64, help="validation samples in the landscape loss")
    p.add_argument("--dt", type=float, default=0.05, help="grid step of the surrogate mode")
    p.add_argument("--grid", type=int, default=13, help="points per axis of the 2-D plane")
    p.add_argument("--span", type=float, default=1.0, help="alphas in [-span, span]")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    overrides = [f"data.train_size={args.train_size}", "data.val_size=500", "data.test_size=500",
                 f"optim.epochs={args.epochs}", f"optim.batch_size={args.batch_size}", "train.plots=false"]
    cfg = load_config(REPO / args.config, overrides)
    snapshots = []

    def snapshot(step, net):
        if step % args.snapshot_every == 0:
            snapshots.append(net)

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        results = train(cfg, run_dir, progress=False, callbacks=[snapshot])
    train_s = time.perf_counter() - t0
    data = load_dataset(cfg.data)
    net = snapshots[-1]
    loss, _ = build_loss(cfg.loss, cfg.model, data.start_channels,
                         build_network(cfg.model, data.train.x.shape[1], data.n_classes, jax.random.PRNGKey(0)))
    x = jnp.asarray(data.validation.x[: args.batch])
    y = jnp.asarray(data.validation.y[: args.batch])
    views = {"event (exact)": lambda n: n, f"surrogate dt={args.dt}": lambda n: FixedStepNN(n, args.dt)}

    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    d1, d2 = random_direction(k1, net), random_direction(k2, net)
    alphas = np.linspace(-args.span, args.span, 41)
    grid = np.linspace(-args.span, args.span, args.grid)
    record = {"config": args.config, "train_results": results.get("test"), "train_s": train_s,
              "alphas": alphas.tolist(), "grid": grid.tolist(), "slices": {}, "planes": {}, "roughness": {}}
    # The trajectory lives in a tiny part of a random plane; Li et al. plot it in the
    # plane of its two principal directions, on a grid 1.3x its extent.
    pca = pca_directions(snapshots, net)
    traj = project_trajectory(snapshots, net, pca.d1, pca.d2)
    extent = 1.3 * np.max(np.abs(traj.coords), axis=0)
    pca_grid = [np.linspace(-e, e, args.grid) for e in extent]
    record["trajectory"] = {"coords": traj.coords.tolist(), "residual": traj.residual.tolist(),
                            "explained": np.asarray(pca.explained).tolist(), "grid": [g.tolist() for g in pca_grid]}
    for name, view in views.items():
        def f(n, view=view):
            return batch_loss(view(n), loss, x, y)

        t0 = time.perf_counter()
        line = np.asarray(slice_1d(f, net, d1, alphas))
        plane = np.asarray(slice_2d(f, net, d1, d2, grid, grid))
        pca_plane = np.asarray(slice_2d(f, net, pca.d1, pca.d2, *pca_grid))
        record["slices"][name] = line.tolist()
        record["planes"][name] = plane.tolist()
        record.setdefault("pca_planes", {})[name] = pca_plane.tolist()
        record["roughness"][name] = roughness(line)
        record.setdefault("seconds", {})[name] = time.perf_counter() - t0
        tag = "event" if name.startswith("event") else "surrogate"
        plot_slice_2d(grid, grid, plane, out / f"landscape_2d_{tag}.png",
                      title=f"{name}: random filter-normalised plane (log10 loss)", log=True)
        plot_slice_2d(*pca_grid, pca_plane, out / f"landscape_pca_{tag}.png", trajectory=traj,
                      title=f"{name}: training trajectory in its PCA plane (log10 loss)", log=True,
                      xlabel="PCA direction 1", ylabel="PCA direction 2")
        print(f"{name}: roughness {record['roughness'][name]:.4f}, {record['seconds'][name]:.0f} s", flush=True)
    plot_slice_1d(alphas, record["slices"], out / "landscape_1d.png",
                  title="Yin-Yang LIF-TTFS: loss along one filter-normalised direction")
    (out / "landscape.json").write_text(json.dumps(record, indent=1))
    print(f"wrote {out}/landscape_*.png and landscape.json")


if __name__ == "__main__":
    main()
