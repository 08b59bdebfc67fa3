"""Loss-landscape slices along filter-normalised random directions.

Following Li, Xu, Taylor, Studer & Goldstein (2018), "Visualizing the Loss
Landscape of Neural Nets", a slice evaluates a scalar loss on a line or plane
through the parameters `θ`:

    f(α)    = L(θ + α δ)              (`slice_1d`)
    f(α, β) = L(θ + α δ + β η)        (`slice_2d`)

Everything is generic over a pytree of parameters (an `eqx.Module` such as a
whole `EvNN`, or a dict of arrays) and any scalar loss of it, so the exact
event-driven mode and the surrogate-gradient mode are sliced by the same code.
As in `eventax.train`, the parameters are the floating-point array leaves
(`eqx.is_inexact_array`); a direction is the matching `eqx.filter` tree, with
`None` at every other leaf, so static fields and `Constant`s are never moved.

| function | gives |
|---|---|
| `random_direction` | a Gaussian direction, filter-normalised to `params` |
| `add_scaled` | `params + a * direction` |
| `slice_1d`, `slice_2d` | the loss along a line or on a grid of a plane |
| `project_trajectory` | least-squares coordinates of parameter sets in a plane |
| `pca_directions` | the plane that best fits a training trajectory |
| `plot_slice_1d`, `plot_slice_2d` | PNG plots (Agg canvas, no pyplot) |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, PyTree, Scalar

from .._plotting import figure as _figure
from .._plotting import save as _save


# ------------------------------------------------------------------ directions


def random_direction(key: PRNGKeyArray, params: PyTree, *, ignore_1d: bool = True) -> PyTree:
    r"""A Gaussian direction with the filter norms of `params` (Li et al. 2018).

    Each floating-point array leaf `p` gets `d ~ N(0, 1)` of its shape and dtype,
    rescaled filter by filter:

        d_j <- d_j * ||p_j|| / ||d_j||

    - `p.ndim >= 2`: a filter is `p[:, j, ...]`, all entries sharing the indices
      after the first (presynaptic) axis. For `(pre, post)` weights that is
      column `j`, the incoming weights of neuron `j`; for dendritic
      `(pre, post, dendrites)` weights, those of one dendrite of one neuron. So
      each unit's input is perturbed in proportion to its own scale. A
      zero filter (e.g. a neuron without inputs) gets a zero direction.
    - `p.ndim <= 1` (biases, per-neuron thresholds, time constants, scalars): a
      zero direction when `ignore_1d` (Li et al.'s choice for biases), otherwise
      the whole leaf is one filter, `d <- d * ||p|| / ||d||`.

    Returns the `eqx.filter(params, eqx.is_inexact_array)` tree: same structure
    and static fields as `params`, `None` at every non-floating leaf. The same
    key gives the same direction.
    """
    arrays = eqx.filter(params, eqx.is_inexact_array)
    if not jax.tree.leaves(arrays):
        raise ValueError("`params` has no floating-point array leaves to perturb.")
    return _random_direction(key, arrays, ignore_1d)


@eqx.filter_jit
def _random_direction(key, arrays, ignore_1d: bool):
    leaves, treedef = jax.tree.flatten(arrays)
    # One draw for all leaves (a single PRNG kernel compiles much faster than one per leaf).
    sizes = [p.size for p in leaves]
    z = jr.normal(key, (sum(sizes),), jnp.result_type(*leaves))
    parts = jnp.split(z, np.cumsum(sizes)[:-1].tolist()) if len(leaves) > 1 else [z]
    out = [_filter_normalised(d.reshape(p.shape).astype(p.dtype), p, ignore_1d) for d, p in zip(parts, leaves)]
    return jax.tree.unflatten(treedef, out)


def _filter_normalised(d: Array, p: Array, ignore_1d: bool) -> Array:
    if p.ndim <= 1 and ignore_1d:
        return jnp.zeros_like(p)
    axes = (0,) if p.ndim >= 2 else None  # None: the whole leaf is one filter

    def norm(x):
        return jnp.sqrt(jnp.sum(jnp.abs(x) ** 2, axis=axes, keepdims=True))

    p_norm, d_norm = norm(p), norm(d)
    return d * jnp.where(d_norm > 0, p_norm / jnp.where(d_norm > 0, d_norm, 1), 0)


def add_scaled(params: PyTree, direction: PyTree, a: ArrayLike) -> PyTree:
    """`params + a * direction` on the floating-point array leaves of `params`.

    `direction` is shaped like `eqx.filter(params, eqx.is_inexact_array)` (as
    `random_direction` returns); the other leaves and static fields of `params`
    are kept, and every leaf keeps its dtype.
    """
    return _shift(params, (direction,), (a,), ("direction",))


def _shift(params, directions, coefficients, names):
    """`params + sum_k c_k d_k`, in one expression per leaf."""
    arrays, rest = eqx.partition(params, eqx.is_inexact_array)
    directions = [_check_direction(arrays, d, name) for d, name in zip(directions, names, strict=True)]

    def move(p, *ds):
        return (p + sum(c * d for c, d in zip(coefficients, ds))).astype(p.dtype)

    return eqx.combine(jax.tree.map(move, arrays, *directions), rest)


def _check_direction(arrays, direction, name: str):
    """`direction`'s floating leaves, checked against those of `params` (`arrays`)."""
    d_arrays = eqx.filter(direction, eqx.is_inexact_array)
    if jax.tree.structure(d_arrays) != jax.tree.structure(arrays):
        raise ValueError(
            f"`{name}` must have the structure of `eqx.filter(params, eqx.is_inexact_array)` "
            f"(as `random_direction(key, params)` returns); got {jax.tree.structure(d_arrays)}, "
            f"expected {jax.tree.structure(arrays)}."
        )
    for p, d in zip(jax.tree.leaves(arrays), jax.tree.leaves(d_arrays)):
        if p.shape != d.shape:
            raise ValueError(f"`{name}` has a leaf of shape {d.shape} where `params` has {p.shape}.")
    return d_arrays


# ---------------------------------------------------------------------- slices


def slice_1d(
    loss_fn: Callable[[PyTree], Scalar],
    params: PyTree,
    direction: PyTree,
    alphas: Float[ArrayLike, " n"],
    *,
    batch_size: int | None = None,
) -> Float[Array, " n"]:
    r"""The loss along a line: `out[i] = loss_fn(params + alphas[i] * direction)`.

    `loss_fn` maps a pytree like `params` to a scalar and must be traceable: all
    points are evaluated by one `jax.lax.map` inside one `eqx.filter_jit`, one
    after another (`batch_size=None`, for losses too big or not vmappable) or
    `batch_size` at a time under `vmap`. `eqx.error_if` checks inside `loss_fn`
    still raise. Arrays `loss_fn` closes over are compiled in as constants; for
    large data pass an `eqx.Partial(loss, data=...)`, whose arrays are traced.
    """
    alphas = _coefficients(alphas, "alphas")
    return _losses(loss_fn, params, (direction,), ("direction",), alphas[:, None], batch_size)


def slice_2d(
    loss_fn: Callable[[PyTree], Scalar],
    params: PyTree,
    d1: PyTree,
    d2: PyTree,
    alphas: Float[ArrayLike, " n_alpha"],
    betas: Float[ArrayLike, " n_beta"],
    *,
    batch_size: int | None = None,
) -> Float[Array, "n_alpha n_beta"]:
    r"""The loss on a grid of a plane: `out[i, j] = loss_fn(params + alphas[i] d1 + betas[j] d2)`.

    Evaluated as `slice_1d` is (see there for `loss_fn` and `batch_size`), over
    the `n_alpha * n_beta` grid points.
    """
    alphas = _coefficients(alphas, "alphas")
    betas = _coefficients(betas, "betas")
    a, b = jnp.meshgrid(alphas, betas, indexing="ij")
    grid = jnp.stack([a.ravel(), b.ravel()], axis=1)
    out = _losses(loss_fn, params, (d1, d2), ("d1", "d2"), grid, batch_size)
    return out.reshape(alphas.shape[0], betas.shape[0])


def _coefficients(x, name: str) -> Array:
    x = jnp.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D array of step sizes; got shape {x.shape}.")
    return x.astype(jnp.result_type(float)) if not jnp.issubdtype(x.dtype, jnp.floating) else x


@eqx.filter_jit
def _losses(loss_fn, params, directions, names, coefficients, batch_size):
    def one(c):
        loss = jnp.asarray(loss_fn(_shift(params, directions, tuple(c), names)))
        if loss.shape != ():
            raise ValueError(f"`loss_fn` must return a scalar; got shape {loss.shape}.")
        return loss

    return jax.lax.map(one, coefficients, batch_size=batch_size)


# ------------------------------------------------------------------ trajectories


class Projection(NamedTuple):
    """Coordinates of parameter sets in the plane `center + span(d1, d2)`.

    `coords[i] = (a_i, b_i)` minimise `|x_i - a_i d1 - b_i d2|` for the displacement
    `x_i = trajectory[i] - center` (flattened); `residual[i]` is the part off the
    plane, relative: `|x_i - a_i d1 - b_i d2| / |x_i|` (0 for `x_i = 0`). A
    residual near 1 means the path hardly lies in the plotted plane.
    """

    coords: Float[np.ndarray, "n_points 2"]
    residual: Float[np.ndarray, " n_points"]


def project_trajectory(trajectory: Sequence[PyTree], center: PyTree, d1: PyTree, d2: PyTree) -> Projection:
    """Least-squares coordinates of each parameter set of `trajectory` relative to `center`.

    `trajectory` is a sequence of pytrees like `center` (e.g. checkpoints of a
    training run). `d1` and `d2` need not be orthogonal, only linearly
    independent. Computed in float64 NumPy (QR of the `(n_params, 2)` basis), one
    point at a time; returns a `Projection` of NumPy arrays: `coords, residual =
    project_trajectory(...)`.
    """
    flat = _Flattener(center)
    basis = np.stack([flat(d1, "d1"), flat(d2, "d2")], axis=1)
    q, r = np.linalg.qr(basis)
    if not abs(r[1, 1]) > 1e-7 * abs(r[0, 0]):  # also catches d1 == 0 (NaN or 0 <= 0)
        raise ValueError("`d1` and `d2` must be non-zero and linearly independent.")
    coords = np.zeros((len(trajectory), 2))
    residual = np.zeros(len(trajectory))
    for i, point in enumerate(trajectory):
        x = flat(point, f"trajectory[{i}]") - flat.center
        y = q.T @ x
        coords[i] = np.linalg.solve(r, y)
        size = np.linalg.norm(x)
        residual[i] = np.linalg.norm(x - q @ y) / size if size > 0 else 0.0
    return Projection(coords, residual)


class PCADirections(NamedTuple):
    """The plane that best fits a trajectory: orthonormal `d1`, `d2` (pytrees shaped
    like `random_direction`'s) and the fraction of the total squared displacement
    `sum_i |x_i|^2` that each explains."""

    d1: PyTree
    d2: PyTree
    explained: Float[np.ndarray, "2"]


def pca_directions(trajectory: Sequence[PyTree], center: PyTree) -> PCADirections:
    r"""Top two principal directions of the displacements `x_i = trajectory[i] - center`.

    Li et al. (2018) plot training paths in the plane of the first two principal
    components. The displacements are not mean-centred: the top two right
    singular vectors of `X = [x_1; ...; x_n]` span the plane through `center`
    that minimises `sum_i |x_i - proj(x_i)|^2`, i.e. the one that
    `project_trajectory` fits best. Directions have unit norm over all
    floating-point leaves (biases included), so slice step sizes are in
    parameter units; signs are chosen so that `trajectory[0]` has coordinates
    `<= 0` (the path runs towards `+d`). Float64 NumPy SVD of the `(n, n_params)`
    matrix.
    """
    flat = _Flattener(center)
    x = np.stack([flat(p, f"trajectory[{i}]") - flat.center for i, p in enumerate(trajectory)] or [flat.center])
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    if len(trajectory) < 2 or not s[1] > 1e-7 * s[0]:
        raise ValueError(
            "`trajectory` must hold displacements from `center` that span at least two "
            "dimensions (at least two points, not all on one line through `center`)."
        )
    sign = np.where(vt[:2] @ x[0] > 0, -1.0, 1.0)
    d1, d2 = (flat.unflatten(sign[k] * vt[k]) for k in range(2))
    return PCADirections(d1, d2, s[:2] ** 2 / np.sum(s**2))


class _Flattener:
    """Flattens pytrees like `center` (floating leaves only) to float64 vectors and back."""

    def __init__(self, center):
        arrays = eqx.filter(center, eqx.is_inexact_array)
        leaves, self.treedef = jax.tree.flatten(arrays)
        if not leaves:
            raise ValueError("`center` has no floating-point array leaves.")
        self.shapes = [np.shape(p) for p in leaves]
        self.dtypes = [p.dtype for p in leaves]
        self.center = self._ravel(leaves)

    @staticmethod
    def _ravel(leaves):
        return np.concatenate([np.ravel(np.asarray(p, np.float64)) for p in leaves])

    def __call__(self, tree, name: str) -> np.ndarray:
        leaves, treedef = jax.tree.flatten(eqx.filter(tree, eqx.is_inexact_array))
        if treedef != self.treedef or [np.shape(p) for p in leaves] != self.shapes:
            raise ValueError(
                f"`{name}` must have the floating-point leaves (structure and shapes) of `center`."
            )
        return self._ravel(leaves)

    def unflatten(self, vector: np.ndarray) -> PyTree:
        sizes = [int(np.prod(s)) for s in self.shapes]
        parts = np.split(vector, np.cumsum(sizes)[:-1])
        leaves = [jnp.asarray(v.reshape(s), d) for v, s, d in zip(parts, self.shapes, self.dtypes)]
        return jax.tree.unflatten(self.treedef, leaves)


# ------------------------------------------------------------------------ plots


def plot_slice_1d(
    alphas: Float[ArrayLike, " n"],
    curves: Mapping[str, Float[ArrayLike, " n"]],
    path,
    *,
    title: str = "",
    xlabel: str = "step along the direction (α)",
    ylabel: str = "loss",
    log: bool = False,
) -> Path:
    """Several 1-D slices on one axis (e.g. `{"event": ..., "surrogate dt=0.01": ...}`),
    with the centre `α = 0` marked; `log` puts the loss on a log scale. Writes a PNG
    to `path` (parent folders created) and returns it."""
    alphas = np.asarray(alphas)
    if alphas.ndim != 1:
        raise ValueError(f"`alphas` must be 1-D; got shape {alphas.shape}.")
    if not curves:
        raise ValueError("`curves` must hold at least one curve.")
    fig = _figure((6.4, 4.4))
    ax = fig.subplots()
    for name, values in curves.items():
        values = np.asarray(values)
        if values.shape != alphas.shape:
            raise ValueError(f"`curves[{name!r}]` has shape {values.shape}; `alphas` has {alphas.shape}.")
        ax.plot(alphas, values, label=name, marker="o" if alphas.size <= 30 else None, markersize=3)
    ax.axvline(0.0, color="0.6", ls=":", lw=1)
    if log:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_slice_2d(
    alphas: Float[ArrayLike, " n_alpha"],
    betas: Float[ArrayLike, " n_beta"],
    surface: Float[ArrayLike, "n_alpha n_beta"],
    path,
    *,
    trajectory: Projection | Float[ArrayLike, "n_points 2"] | None = None,
    levels: int = 30,
    title: str = "",
    xlabel: str = "α (direction 1)",
    ylabel: str = "β (direction 2)",
    zlabel: str = "loss",
    log: bool = False,
) -> Path:
    """Filled contours of `surface[i, j] = f(alphas[i], betas[j])` (as `slice_2d` returns),
    the centre marked, and optionally a projected `trajectory` (a `Projection`, whose
    mean off-plane residual goes into the legend, or `(n_points, 2)` coordinates).
    `log` contours `log10` of the surface (non-positive values left blank);
    non-finite values are left blank. Writes a PNG and returns its path."""
    alphas, betas = np.asarray(alphas), np.asarray(betas)
    z = np.asarray(surface, np.float64)
    if alphas.ndim != 1 or betas.ndim != 1 or alphas.size < 2 or betas.size < 2:
        raise ValueError("`alphas` and `betas` must be 1-D with at least two values each.")
    if z.shape != (alphas.size, betas.size):
        raise ValueError(f"`surface` must have shape (len(alphas), len(betas)) = "
                         f"{(alphas.size, betas.size)}; got {z.shape}.")
    if log:
        z = np.log10(np.where(z > 0, z, np.nan))
    z = np.ma.masked_invalid(z)
    fig = _figure((6.4, 5.2))
    ax = fig.subplots()
    filled = ax.contourf(alphas, betas, z.T, levels=levels, cmap="viridis")
    ax.contour(alphas, betas, z.T, levels=filled.levels, colors="k", linewidths=0.3, alpha=0.5)
    fig.colorbar(filled, ax=ax, label=f"log10 {zlabel}" if log else zlabel)
    ax.plot([0.0], [0.0], marker="*", color="w", markeredgecolor="k", markersize=12, ls="", label="centre")
    if trajectory is not None:
        label = "trajectory"
        if isinstance(trajectory, Projection):
            label += f" (mean off-plane {100 * float(np.mean(trajectory.residual)):.1f} %)"
            trajectory = trajectory.coords
        xy = np.asarray(trajectory)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"`trajectory` must have shape (n_points, 2); got {xy.shape}.")
        ax.plot(xy[:, 0], xy[:, 1], color="C3", marker="o", markersize=3, lw=1.2, label=label)
        ax.plot(xy[:1, 0], xy[:1, 1], color="C3", marker="s", markersize=7, ls="")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8, loc="upper right")
    return _save(fig, path)
