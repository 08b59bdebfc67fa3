"""The training loop: epochs of AdamW steps, validation metrics, logs, checkpoints, resume.

Several seeds of one config train at once: their networks are initialised
independently (`PRNGKey(seed)`), stacked along a leading axis, and every step
is `jax.vmap`-ed over that axis (each seed draws its own batches). One
compilation serves all seeds. `train` is the one-seed case.

Files, per seed directory:

| file | content |
|---|---|
| `config.toml` | the resolved config of that seed (file + overrides) |
| `metrics.jsonl`, `metrics.csv` | one row per epoch (epoch 0 = before training) |
| `best.evnn` | the network with the best validation accuracy (`eventax.load_evnn`) |
| `results.json` | the best network's test metrics and the run's timings |
| `plots/` | training curves and, where the task has them, decision map and raster |

and in the run directory `checkpoint.zip` (all seeds' parameters, optimiser
states and histories), written atomically after every epoch. Resuming restarts
after the last completed epoch; batches are ordered by `(seed, epoch)` alone,
so a resumed run computes exactly what an uninterrupted run computes.
"""

from __future__ import annotations

import csv
import functools
import dataclasses
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..config import Config, OptimConfig, dumps, to_dict
from ..data import Batches, load_dataset
from ..io import load_evnn, save_evnn
from .build import build_loss, build_network, build_optimiser
from .checkpoint import load_checkpoint, save_checkpoint
from .metrics import evaluate, spike_window
from .parallel import DataParallel
from .progress import Progress


def make_train_step(loss, regularisers: tuple, optim: OptimConfig, max_spikes: int = 0,
                    dp: DataParallel | None = None):
    """`step(params, static, opt_state, x, y) -> (params, opt_state, loss, accuracy)`.

    All arguments but `static` carry a leading seed axis. Per seed: the batch
    loss is the mean of the per-sample losses (plus regularisers), then one
    optimiser update (`build_optimiser(optim)`) of the network's inexact-array
    leaves. Its two compiled parts are cached, so runs of the same loss and
    optimiser share them.

    `dp`: data parallel; each device computes the gradient of its own slice of
    the batch (`DataParallel.map`), and the update averages the slices' means.
    """
    gradient, update = _gradient(loss, regularisers, max_spikes), _update(optim, dp and dp.replicated)

    def step(params, static, opt_state, x, y):
        if dp is None:
            parts = jax.tree_util.tree_map(lambda a: a[None], gradient((params, static), (x, y)))
        else:
            parts = dp.map(gradient, (params, static), (x, y), axis=1)
        return update(params, opt_state, parts)

    return step


@functools.lru_cache(maxsize=8)
def _gradient(loss, regularisers: tuple, max_spikes: int):
    """`((params, static), (x, y)) -> (loss, accuracy, gradient)` per seed, of a batch's mean."""

    def objective(params, static, x, y):
        net = eqx.combine(params, static)

        def one(xi, yi):
            sim = loss.simulate(net, xi, max_spikes=max_spikes)
            value = loss(sim, yi) + sum((r(sim) for r in regularisers), 0.0)
            return value, loss.predict(sim) == yi

        values, correct = jax.vmap(one)(x, y)
        return jnp.mean(values), jnp.mean(correct)

    def single(params, static, x, y):
        (value, acc), grads = jax.value_and_grad(objective, has_aux=True)(params, static, x, y)
        return value, acc, grads

    @eqx.filter_jit
    def gradient(shared, batch):
        (params, static), (x, y) = shared, batch
        return jax.vmap(single, in_axes=(0, None, 0, 0))(params, static, x, y)

    return gradient


@functools.lru_cache(maxsize=8)
def _update(optim: OptimConfig, replicated=None):
    """`(params, opt_state, parts) -> (params, opt_state, loss, accuracy)`: the mean of
    the parts' `(loss, accuracy, gradient)` (stacked on a leading axis), then one
    optimiser step per seed. `replicated`: the sharding every output must have."""
    optimiser = build_optimiser(optim)

    @eqx.filter_jit
    def update(params, opt_state, parts):
        value, acc, grads = jax.tree_util.tree_map(lambda a: jnp.mean(a, axis=0), parts)
        updates, opt_state = jax.vmap(optimiser.update)(grads, opt_state, params)
        out = (optax.apply_updates(params, updates), opt_state, value, acc)
        return out if replicated is None else jax.lax.with_sharding_constraint(out, replicated)

    return update


def train(cfg: Config, run_dir, *, resume: bool = False, progress: bool = True, callbacks=()) -> dict[str, Any]:
    """Train `cfg` (seed `cfg.train.seed`) in `run_dir`; returns its results.

    `callbacks`: functions `f(step, net)` called after every optimiser step
    (`step` counts from 1 over the whole run) with the updated network.
    """
    return train_seeds(
        cfg, [cfg.train.seed], run_dir, [run_dir], resume=resume, progress=progress, callbacks=callbacks
    )[0]


def train_seeds(cfg: Config, seeds, run_dir, seed_dirs, *, resume=False, progress=True, callbacks=()) -> list[dict]:
    """Train `cfg` for every seed at once; per-seed files go to `seed_dirs`
    (`callbacks` as in `train`, given the first seed's network)."""
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds) or len(seeds) != len(seed_dirs) or not seeds:
        raise ValueError(f"`seeds` must be distinct and match the seed directories; got {seeds}.")
    cfgs = [dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=s)) for s in seeds]
    dp = DataParallel()
    dp.check_batch_size(cfg.optim.batch_size)
    data = load_dataset(cfg.data)
    nets = [build_network(cfg.model, data.train.x.shape[1], data.n_classes, jax.random.PRNGKey(s)) for s in seeds]
    loss, regs = build_loss(cfg.loss, cfg.model, data.start_channels, nets[0])
    params, static = _stack_params(nets)
    log = _RunLog(Path(run_dir), [Path(d) for d in seed_dirs], cfgs, static, dp)
    params, opt_state = log.start(params, jax.vmap(build_optimiser(cfg.optim).init)(params), resume)
    if resume and progress and dp.is_main:
        print(f"resuming {run_dir} from epoch {log.next_epoch}", file=sys.stderr, flush=True)

    step = make_train_step(loss, regs, cfg.optim, net_max_spikes(nets[0], regs), dp)
    params, opt_state = dp.replicate((params, opt_state))
    batches = [Batches(data.train.x, data.train.y, cfg.optim.batch_size, seed=s) for s in seeds]
    eval_size = _eval_batch(cfg, dp, len(data.validation.y))

    def validate(params) -> list[dict]:
        return [
            evaluate(eqx.combine(p, static), loss, regs, data.validation.x, data.validation.y, eval_size, dp)
            for p in _unstack(params, len(seeds))
        ]

    first_epoch = log.next_epoch
    if log.next_epoch == 1:
        if progress and dp.is_main:
            print("validating the untrained network (compiles the simulation first)...", file=sys.stderr, flush=True)
        log.initial(validate(params))
    label = f"seeds {seeds}" if len(seeds) > 1 else f"seed {seeds[0]}"
    for epoch in range(log.next_epoch, cfg.optim.epochs + 1):
        t_start = time.perf_counter()
        bar = Progress(batches[0].n_batches, f"epoch {epoch}/{cfg.optim.epochs} ({label})", progress and dp.is_main,
                       compiles=epoch == first_epoch)
        params, opt_state, losses, accs = _epoch(
            step, (params, static, opt_state), batches, epoch, bar, callbacks, dp, cfg.optim.batch_size
        )
        do_eval = epoch % cfg.train.eval_every == 0 or epoch == cfg.optim.epochs
        val = validate(params) if do_eval else [{} for _ in seeds]
        log.record(epoch, losses, accs, val, time.perf_counter() - t_start, (params, opt_state))
        bar.close(_epoch_summary(log.histories))
    return [
        finish(c, d, dp=dp, built=(data, n, loss, regs), best_net=b, history=h)
        for c, d, n, b, h in zip(cfgs, log.seed_dirs, nets, log.best_nets, log.histories)
    ]


def _epoch(step, state, batches, epoch: int, bar, callbacks, dp: DataParallel, batch_size: int):
    """One epoch of optimiser steps over every seed's batches: `(params, opt_state,
    per-step losses, per-step accuracies)` (the last two with a seed axis)."""
    params, static, opt_state = state
    n_seeds = len(batches)
    losses, accs = [], []
    for i, pairs in enumerate(zip(*(b.epoch(epoch) for b in batches))):
        xb, yb = (np.stack(a) for a in zip(*pairs))
        params, opt_state, value, acc = step(params, static, opt_state, xb, yb)
        if callbacks and dp.is_main:
            net = eqx.combine(_unstack(dp.local(params), n_seeds)[0], static)
            for callback in callbacks:
                callback((epoch - 1) * batches[0].n_batches + i + 1, net)
        losses.append(np.asarray(value))
        accs.append(np.asarray(acc))
        bar.update(i + 1, (i + 1) * batch_size * n_seeds, loss=float(np.mean(losses)), acc=float(np.mean(accs)))
    return params, opt_state, losses, accs


class _RunLog:
    """A run's record across epochs and restarts: each seed's history and best network,
    the logs and `best.evnn` files (process 0 writes them), and the checkpoint that
    `--resume` continues from."""

    def __init__(self, run_dir: Path, seed_dirs: list[Path], cfgs: list[Config], static, dp: DataParallel):
        self.run_dir, self.seed_dirs, self.cfgs, self.static, self.dp = run_dir, seed_dirs, cfgs, static, dp
        self.seeds = [c.train.seed for c in cfgs]
        self.checkpoint = run_dir / "checkpoint.zip"
        self.histories: list[list[dict]] = [[] for _ in cfgs]
        self.best = [{"epoch": 0, "accuracy": -1.0} for _ in cfgs]
        self.best_nets = [None for _ in cfgs]  # on every process: finish() must not read process 0's files
        self.next_epoch = 1

    def start(self, params, opt_state, resume: bool):
        """The parameters and optimiser state to train from: the checkpoint's with
        `resume` (and its history), else the given ones in fresh directories."""
        if resume:
            if not self.checkpoint.is_file():
                raise FileNotFoundError(f"Cannot resume: {self.checkpoint} does not exist (start without --resume).")
            (params, opt_state), meta = load_checkpoint(self.checkpoint, (params, opt_state))
            if meta["seeds"] != self.seeds:
                raise ValueError(f"The checkpoint in {self.run_dir} holds seeds {meta['seeds']}, not {self.seeds}.")
            self.histories, self.best, self.next_epoch = meta["histories"], meta["best"], meta["epoch"] + 1
        elif self.dp.is_main:
            if self.checkpoint.exists():
                raise FileExistsError(f"{self.run_dir} already holds a run; use --resume or another directory.")
            for c, d in zip(self.cfgs, self.seed_dirs):
                d.mkdir(parents=True, exist_ok=True)
                (d / "config.toml").write_text(dumps(c))
            self.run_dir.mkdir(parents=True, exist_ok=True)
        return params, opt_state

    def initial(self, val: list[dict]) -> None:
        """Epoch 0: the validation metrics of the untrained networks."""
        for h, m in zip(self.histories, val):
            h.append({"epoch": 0, **_prefix("val", m), "time_s": 0.0})
        _write_logs(self.seed_dirs, self.histories, self.dp)

    def record(self, epoch: int, losses, accs, val: list[dict], elapsed: float, state) -> None:
        """An epoch's rows, any new best network (`best.evnn`), the logs and the checkpoint."""
        params, n = state[0], len(self.seeds)
        for s, (h, m) in enumerate(zip(self.histories, val)):
            h.append({"epoch": epoch, "train_loss": float(np.mean([v[s] for v in losses])),
                      "train_accuracy": float(np.mean([a[s] for a in accs])), **_prefix("val", m),
                      "time_s": elapsed})
            if m and m["accuracy"] > self.best[s]["accuracy"]:
                self.best[s] = {"epoch": epoch, "accuracy": m["accuracy"]}
                self.best_nets[s] = eqx.combine(_unstack(params, n)[s], self.static)
                if self.dp.is_main:
                    net = eqx.combine(_unstack(self.dp.local(params), n)[s], self.static)
                    save_evnn(self.seed_dirs[s] / "best.evnn", net, to_dict(self.cfgs[s]))
        if self.dp.is_main:
            _write_logs(self.seed_dirs, self.histories, self.dp)
            meta = {"epoch": epoch, "seeds": self.seeds, "best": self.best, "histories": self.histories}
            save_checkpoint(self.checkpoint, self.dp.local(state), meta)


def finish(cfg: Config, run_dir, dp: DataParallel | None = None, built=None, best_net=None,
           history: list[dict] | None = None) -> dict[str, Any]:
    """Test metrics of a seed's best network, its `results.json`, and its plots.

    `built`: `(data, initial network, loss, regularisers)` if already at hand;
    `best_net`, `history`: the best network and the history if at hand (else
    read from `best.evnn` and `metrics.jsonl`, which only process 0 writes).
    """
    run_dir = Path(run_dir)
    dp = dp or DataParallel()
    if built is None:
        data = load_dataset(cfg.data)
        net = build_network(cfg.model, data.train.x.shape[1], data.n_classes, jax.random.PRNGKey(cfg.train.seed))
        built = (data, net, *build_loss(cfg.loss, cfg.model, data.start_channels, net))
    data, net, loss, regs = built
    if best_net is not None:
        net = best_net
    elif (run_dir / "best.evnn").exists():
        net, _ = load_evnn(run_dir / "best.evnn")
    params, rest = eqx.partition(net, eqx.is_inexact_array)
    net = eqx.combine(dp.replicate(params), rest)  # as in validation: no recompile, one value everywhere
    history = read_history(run_dir) if history is None else history
    test = evaluate(net, loss, regs, data.test.x, data.test.y, _eval_batch(cfg, dp, len(data.test.y)), dp)
    trained = [r for r in history if r["epoch"] >= 1] or history
    best_row = max(trained, key=lambda r: r.get("val_accuracy", -1.0))
    results = {
        "name": cfg.name,
        "seed": cfg.train.seed,
        "best_epoch": best_row["epoch"],
        "val_accuracy": best_row.get("val_accuracy"),
        "test": test,
        "spike_metrics_until": spike_window(loss),
        "epochs": history[-1]["epoch"],
        "train_time_s": float(sum(r.get("time_s", 0.0) for r in history)),
    }
    if dp.is_main:
        (run_dir / "results.json").write_text(json.dumps(results, indent=2))
        if cfg.train.plots:
            # this process's own copy: plots run on process 0 alone, so no global arrays
            _plots(cfg, run_dir, history, eqx.combine(dp.local(eqx.filter(net, eqx.is_inexact_array)), rest), loss, data)
    return results


def read_history(run_dir) -> list[dict]:
    """The per-epoch rows of a run directory's `metrics.jsonl`."""
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def net_max_spikes(net, regularisers) -> int:
    """Spike-log length the training step needs: all events if regularisers read spikes."""
    return net.max_event_steps if regularisers else 0


# ---------------------------------------------------------------------- helpers


def _stack_params(nets):
    parts = [eqx.partition(n, eqx.is_inexact_array) for n in nets]
    statics = [s for _, s in parts]
    if any(jax.tree_util.tree_structure(s) != jax.tree_util.tree_structure(statics[0]) for s in statics):
        raise ValueError("Networks of different seeds differ in structure.")
    params = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *(p for p, _ in parts))
    return params, statics[0]


def _unstack(params, n: int) -> list:
    return [jax.tree_util.tree_map(lambda a: a[i], params) for i in range(n)]


def _eval_batch(cfg: Config, dp: DataParallel, n: int) -> int:
    size = min(cfg.train.eval_batch_size, n)
    return max(dp.n_devices, size - size % dp.n_devices)


def _prefix(p: str, d: dict) -> dict:
    return {f"{p}_{k}": v for k, v in d.items()}


def _epoch_summary(histories) -> str:
    accs = [h[-1].get("val_accuracy") for h in histories]
    silent = [h[-1].get("val_silent_outputs") for h in histories]
    if accs[0] is None:
        return ""
    s = "  val acc " + " ".join(f"{a:.4f}" for a in accs)
    if silent[0] is not None:
        s += "  silent outputs " + " ".join(f"{v:.3f}" for v in silent)
    return s


def _write_logs(seed_dirs, histories, dp: DataParallel) -> None:
    if not dp.is_main:
        return
    for d, history in zip(seed_dirs, histories):
        d.mkdir(parents=True, exist_ok=True)
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
        keys = list(dict.fromkeys(k for r in history for k in r))
        with open(d / "metrics.csv", "w", newline="") as f:
            w = csv.DictWriter(f, keys)
            w.writeheader()
            w.writerows(history)


def _plots(cfg, run_dir, history, net, loss, data) -> None:
    try:
        from . import plots
    except ImportError as e:  # matplotlib missing
        warnings.warn(f"No plots written ({e}); install matplotlib.", stacklevel=2)
        return
    plots.write_run_plots(cfg, Path(run_dir) / "plots", history, net, loss, data)
