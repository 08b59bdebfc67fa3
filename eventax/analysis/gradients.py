"""Compare gradients of one loss on one network: exact event mode, surrogate mode, finite differences.

    result = compare_gradients(net, (x, y), TTFSLoss(), [Exact(), SurrogateMode(0.01), FiniteDifferences(20)])
    print(result.markdown())

Every method returns a gradient shaped like the network's floating-point
parameters (`eqx.filter(net, eqx.is_inexact_array)`); each is compared with the
reference method (the first, by default `Exact`) per parameter group.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PyTree

from .._checks import check_int
from .._plotting import figure, save
from ..evnn import EvNN
from ..fixed_step import FixedStepNN
from ..losses import Loss
from ..surrogates import FastSigmoid

__all__ = [
    "Exact", "FiniteDifferences", "GradientComparison", "GradientMethod", "GradientTracker",
    "SurrogateMode", "cast_like", "compare_gradients", "gradient_metrics", "parameter_groups",
    "plot_tracker",
]


def batch_loss(model, loss: Loss, x, y) -> Float[Array, ""]:
    """Mean of `loss` over the batch, with `model` an `EvNN` or `FixedStepNN`."""
    return jnp.mean(jax.vmap(lambda xi, yi: loss(loss.simulate(model, xi), yi))(x, y))


class GradientMethod(eqx.Module):
    """How to compute `d batch_loss / d params` of an `EvNN`. Subclasses implement
    `name` and `gradient(net, loss, x, y)`; entries a method does not compute
    (finite differences on a subset) are `nan`."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Label in tables and plots."""

    @abc.abstractmethod
    def gradient(self, net: EvNN, loss: Loss, x, y) -> PyTree:
        """The gradient, shaped like `eqx.filter(net, eqx.is_inexact_array)`."""

    def check(self, net: EvNN) -> None:
        """Raise `ValueError` if this method cannot run on `net` (before any work)."""

    def view(self, net: EvNN):
        """The simulator whose loss is differentiated (default: `net` itself)."""
        return net


class Exact(GradientMethod):
    """The event mode's gradient: exact for the simulated spike times (IFT)."""

    @property
    def name(self) -> str:
        return "exact"

    def gradient(self, net, loss, x, y):
        return _grad(self, net, loss, x, y)


class SurrogateMode(GradientMethod):
    """The fixed-step mode's surrogate gradient at grid step `dt`."""

    dt: float = eqx.field(static=True, converter=float)
    surrogate: Any = eqx.field(static=True, default=FastSigmoid())
    reset: str = eqx.field(static=True, default="immediate")
    detach_reset: bool = eqx.field(static=True, default=True)

    @property
    def name(self) -> str:
        s = self.surrogate
        slope = f"({s.slope:g})" if hasattr(s, "slope") else ""
        return f"surrogate dt={self.dt:g} {type(s).__name__}{slope}"

    def view(self, net):
        return FixedStepNN(net, self.dt, surrogate=self.surrogate, reset=self.reset, detach_reset=self.detach_reset)

    def gradient(self, net, loss, x, y):
        return _grad(self, net, loss, x, y)


class FiniteDifferences(GradientMethod):
    """Central differences of the event-mode loss, `(L(p + h) - L(p - h)) / 2h`,
    on `n_entries` parameter entries drawn at random (seeded) from `candidates`
    (`compare_gradients` passes the entries where the reference gradient is
    non-zero, so unconnected weights are not drawn); the rest are `nan`.

    Needs a float64 network: with the float64 root finder, spike times are exact
    to ~1e-12, so the rounding error ~1e-12 / h stays far below the truncation
    error ~h^2 L''' for `h = 1e-5`.
    """

    n_entries: int = eqx.field(static=True, default=20)
    step: float = eqx.field(static=True, default=1e-5)
    seed: int = eqx.field(static=True, default=0)

    @property
    def name(self) -> str:
        return "finite differences"

    def check(self, net):
        if jnp.dtype(net.dtype) != jnp.float64:
            raise ValueError(
                "FiniteDifferences needs a float64 network (dtype=jnp.float64, with "
                "jax_enable_x64); cast a trained one with `eventax.analysis.cast_like`."
            )

    def gradient(self, net, loss, x, y, candidates=None):
        self.check(net)
        params, static = eqx.partition(net, eqx.is_inexact_array)
        leaves, treedef = jax.tree_util.tree_flatten(params)

        def f(p):
            return _loss_jit(p, static, self, loss, x, y)

        sizes = np.array([leaf.size for leaf in leaves])
        rng = np.random.default_rng(self.seed)
        pool = np.arange(sizes.sum())
        if candidates is not None:
            pool = pool[np.concatenate([np.asarray(c).ravel() for c in jax.tree_util.tree_leaves(candidates)])]
        picks = rng.choice(pool, size=min(self.n_entries, pool.size), replace=False)
        out = [np.full(leaf.shape, np.nan) for leaf in leaves]
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        for flat in np.sort(picks):
            k = int(np.searchsorted(offsets, flat, side="right") - 1)
            idx = np.unravel_index(flat - offsets[k], leaves[k].shape)
            shifted = [
                jax.tree_util.tree_unflatten(treedef, [leaf.at[idx].add(s * self.step) if i == k else leaf
                                                       for i, leaf in enumerate(leaves)])
                for s in (1.0, -1.0)
            ]
            out[k][idx] = (float(f(shifted[0])) - float(f(shifted[1]))) / (2 * self.step)
        return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(o) for o in out])


@eqx.filter_jit
def _loss_jit(params, static, method: GradientMethod, loss, x, y):
    return batch_loss(method.view(eqx.combine(params, static)), loss, x, y)


@eqx.filter_jit
def _grad_jit(params, static, method: GradientMethod, loss, x, y):
    return jax.grad(lambda p: batch_loss(method.view(eqx.combine(p, static)), loss, x, y))(params)


def _grad(method: GradientMethod, net, loss, x, y):
    """Compiled once per (network structure, method, loss, batch shape)."""
    params, static = eqx.partition(net, eqx.is_inexact_array)
    return _grad_jit(params, static, method, loss, x, y)


def cast_like(net: EvNN, like: EvNN) -> EvNN:
    """`net`'s parameters in `like`'s structure and dtypes (e.g. a trained float32
    network copied into the same network built with `dtype=float64`)."""
    src, dst = (jax.tree_util.tree_leaves(eqx.filter(n, eqx.is_inexact_array)) for n in (net, like))
    if [a.shape for a in src] != [b.shape for b in dst]:
        raise ValueError("`net` and `like` must have the same parameter shapes.")
    params, static = eqx.partition(like, eqx.is_inexact_array)
    treedef = jax.tree_util.tree_structure(params)
    cast = [jnp.asarray(a, b.dtype) for a, b in zip(src, dst)]
    return eqx.combine(jax.tree_util.tree_unflatten(treedef, cast), static)


# ---------------------------------------------------------------- groups and metrics


def parameter_groups(net: EvNN) -> dict[str, PyTree]:
    """Boolean masks (shaped like the parameters) naming groups of entries.

    Every parameter array is a group (`neuron_model.ic`, ...), except weight
    matrices `(pre, neurons, ...)`, which are split into connectivity blocks:
    `weights[input->hidden]`, `weights[hidden->output]`, `weights[hidden->hidden]`, ...
    (hidden = non-output neurons). Blocks without a connection are left out.
    """
    params = eqx.filter(net, eqx.is_inexact_array)
    paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    n, outs = net.n_neurons, np.zeros(net.n_neurons, bool)
    outs[list(net.output_indices)] = True
    kinds_pre = np.concatenate([np.where(outs, "output", "hidden"), np.full(net.in_size, "input")])
    kinds_post = np.where(outs, "output", "hidden")
    wmask = np.asarray(net.wmask.value)
    groups = {}
    for k, (path, leaf) in enumerate(paths_leaves):
        name = jax.tree_util.keystr(path).lstrip(".")

        def mask_of(m):
            masks = [np.zeros(x.shape, bool) for _, x in paths_leaves]
            masks[k] = np.broadcast_to(m.reshape(m.shape + (1,) * (leaf.ndim - m.ndim)), leaf.shape).copy()
            return jax.tree_util.tree_unflatten(treedef, masks)

        if leaf.ndim >= 2 and leaf.shape[:2] == (n + net.in_size, n):
            for a in ("input", "hidden", "output"):
                for b in ("hidden", "output"):
                    block = (kinds_pre[:, None] == a) & (kinds_post[None, :] == b) & wmask
                    if block.any():
                        groups[f"{name}[{a}->{b}]"] = mask_of(block)
        else:
            groups[name] = mask_of(np.ones(leaf.shape, bool))
    return groups


class Metrics(NamedTuple):
    cosine: float
    relative_error: float
    sign_agreement: float
    norm_ratio: float
    n_entries: int


def gradient_metrics(reference, other) -> Metrics:
    """Cosine similarity, `|g - g_ref| / |g_ref|`, fraction of equal signs (entries
    where either is non-zero) and `|g| / |g_ref|`, over the entries both define."""
    a, b = (np.asarray(v, np.float64).ravel() for v in (reference, other))
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    nonzero = (a != 0) | (b != 0)
    return Metrics(
        cosine=float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan"),
        relative_error=float(np.linalg.norm(b - a) / na) if na > 0 else float("nan"),
        sign_agreement=float(np.mean(np.sign(a[nonzero]) == np.sign(b[nonzero]))) if nonzero.any() else float("nan"),
        norm_ratio=float(nb / na) if na > 0 else float("nan"),
        n_entries=int(keep.sum()),
    )


class GradientComparison(NamedTuple):
    """`gradients[name]`: each method's gradient; `rows`: one dict per (method,
    group) with the `Metrics` against `reference` (group `"all"` = every entry)."""

    reference: str
    gradients: dict[str, PyTree]
    rows: list[dict]

    def markdown(self) -> str:
        head = "| method | group | cosine | rel. error | sign agree | norm ratio | entries |\n|---|---|---:|---:|---:|---:|---:|"
        lines = [head] + [
            f"| {r['method']} | {r['group']} | {r['cosine']:.3f} | {r['relative_error']:.3g} | "
            f"{r['sign_agreement']:.3f} | {r['norm_ratio']:.3g} | {r['n_entries']} |"
            for r in self.rows
        ]
        return "\n".join(lines)


def compare_gradients(
    net: EvNN,
    batch: tuple[Float[Array, "batch in_size K"], Int[Array, " batch"]],
    loss: Loss,
    methods: Sequence[GradientMethod] = (),
    *,
    groups: dict[str, PyTree] | None = None,
) -> GradientComparison:
    """Gradients of the batch-mean `loss` at `net` by every method, compared with
    the first (default methods: `Exact()`, `SurrogateMode(0.01)`)."""
    if not isinstance(net, EvNN):
        raise ValueError(f"`net` must be an EvNN (the parameters); got {type(net).__name__}.")
    methods = list(methods) or [Exact(), SurrogateMode(0.01)]
    if not all(isinstance(m, GradientMethod) for m in methods):
        raise ValueError("`methods` must be GradientMethod instances (Exact(), SurrogateMode(dt), FiniteDifferences()).")
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ValueError(f"`methods` must have distinct names; got {names}.")
    x, y = (jnp.asarray(a) for a in batch)
    if x.ndim != 3 or y.shape != x.shape[:1]:
        raise ValueError(f"`batch` must be (x (batch, in_size, K), labels (batch,)); got {x.shape}, {y.shape}.")
    for m in methods:
        m.check(net)
    grads = {names[0]: methods[0].gradient(net, loss, x, y)}
    nonzero = jax.tree_util.tree_map(lambda g: np.asarray(g) != 0, grads[names[0]])
    for m in methods[1:]:
        extra = {"candidates": nonzero} if isinstance(m, FiniteDifferences) else {}
        grads[m.name] = m.gradient(net, loss, x, y, **extra)
    groups = parameter_groups(net) if groups is None else groups
    ref = names[0]
    rows = []
    for name in names[1:]:
        for group, mask in [("all", None), *groups.items()]:
            a, b = _select(grads[ref], mask), _select(grads[name], mask)
            rows.append({"method": name, "group": group, **gradient_metrics(a, b)._asdict()})
    return GradientComparison(ref, grads, rows)


def _select(grad, mask) -> np.ndarray:
    leaves = [np.asarray(g, np.float64) for g in jax.tree_util.tree_leaves(grad)]
    if mask is None:
        return np.concatenate([g.ravel() for g in leaves])
    masks = jax.tree_util.tree_leaves(mask)
    return np.concatenate([g[m] for g, m in zip(leaves, masks)])


# ---------------------------------------------------------------- over training


class GradientTracker:
    """Training callback: every `every` steps, `compare_gradients` on a fixed batch;
    one JSON line per (step, method, group) appended to `path`.

        tracker = GradientTracker("grads.jsonl", (x, y), loss, methods, every=20)
        train(cfg, run_dir, callbacks=[tracker])
        plot_tracker("grads.jsonl", "grads.png")
    """

    def __init__(self, path, batch, loss: Loss, methods: Sequence[GradientMethod] = (), *, every: int = 50):
        check_int("every", every, 1)
        self.path, self.batch, self.loss = Path(path), batch, loss
        self.methods, self.every = list(methods), every

    def __call__(self, step: int, net: EvNN) -> None:
        if step % self.every:
            return
        result = compare_gradients(net, self.batch, self.loss, self.methods)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            for row in result.rows:
                f.write(json.dumps({"step": step, **row}) + "\n")


def plot_tracker(path, out, *, group: str = "all", metrics=("cosine", "norm_ratio")) -> Path:
    """Plot the tracked `metrics` of `group` over training steps, one line per method."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["group"] == group]
    if not rows:
        raise ValueError(f"{path} holds no rows for group {group!r}.")
    fig = figure((4.5 * len(metrics), 3.4))
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for method in dict.fromkeys(r["method"] for r in rows):
            pts = [(r["step"], r[metric]) for r in rows if r["method"] == method]
            ax.plot(*zip(*pts), marker="o", ms=3, label=method)
        ax.set_xlabel("training step")
        ax.set_ylabel(metric.replace("_", " "))
        if metric == "norm_ratio":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    fig.suptitle(f"gradients vs exact ({group})", fontsize=9)
    return save(fig, out)
