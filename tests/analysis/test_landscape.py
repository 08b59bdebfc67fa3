"""Loss-landscape slices against closed forms and NumPy float64 truths.

Tolerances: every computed quantity is a float32 sum of at most ~30 terms, whose
relative rounding error is below ~30 * 6e-8 ~ 2e-6; we use rtol 1e-5.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from eventax.analysis import (
    Projection,
    add_scaled,
    pca_directions,
    plot_slice_1d,
    plot_slice_2d,
    project_trajectory,
    random_direction,
    slice_1d,
    slice_2d,
)

RTOL = 1e-5


class Tiny(eqx.Module):
    w: jax.Array  # (pre, post); column 1 is all zero (a neuron without inputs)
    w3: jax.Array  # (2, 3, 4): filters are w3[:, j, k]
    b: jax.Array  # (post,)
    counts: jax.Array  # integer array: not a parameter
    tau: float  # Python float: not an array, not a parameter
    name: str = eqx.field(static=True)


def tiny() -> Tiny:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 3)) * np.array([1.0, 0.0, 7.0])  # columns of very different norm
    w3 = rng.normal(size=(2, 3, 4)) * np.array([0.1, 1.0, 3.0, 10.0])
    return Tiny(
        w=jnp.asarray(w, jnp.float32),
        w3=jnp.asarray(w3, jnp.float32),
        b=jnp.asarray([0.5, -2.0, 3.0], jnp.float32),
        counts=jnp.arange(3),
        tau=2.0,
        name="tiny",
    )


def flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


# ------------------------------------------------------------------ directions


def test_random_direction_matches_parameter_filter_norms():
    p = tiny()
    d = random_direction(jr.key(0), p)
    w, dw = np.asarray(p.w, np.float64), np.asarray(d.w, np.float64)
    np.testing.assert_allclose(np.linalg.norm(dw, axis=0), np.linalg.norm(w, axis=0), rtol=RTOL)
    assert np.all(dw[:, 1] == 0)  # zero filter -> zero direction
    # Filters are columns, not rows: the row norms of the direction do not follow the parameter's.
    assert not np.allclose(np.linalg.norm(dw, axis=1), np.linalg.norm(w, axis=1), rtol=0.05)
    w3, dw3 = np.asarray(p.w3, np.float64), np.asarray(d.w3, np.float64)
    np.testing.assert_allclose(np.linalg.norm(dw3, axis=0), np.linalg.norm(w3, axis=0), rtol=RTOL)
    # Random, not a rescaled copy of the parameters.
    assert abs(np.dot(dw.ravel(), w.ravel())) < 0.99 * np.linalg.norm(dw) * np.linalg.norm(w)
    assert np.all(np.asarray(d.b) == 0)  # ignore_1d


def test_random_direction_1d_leaves_and_structure():
    p = tiny()
    d = random_direction(jr.key(0), p, ignore_1d=False)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(d.b)), np.linalg.norm(np.asarray(p.b)), rtol=RTOL)
    assert np.all(np.asarray(d.b) != 0)
    assert d.counts is None and d.tau is None and d.name == "tiny"
    moved = add_scaled(p, d, 0.5)
    assert moved.name == "tiny" and moved.tau == 2.0
    np.testing.assert_array_equal(np.asarray(moved.counts), np.arange(3))
    assert moved.w.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(moved.w), np.asarray(p.w) + 0.5 * np.asarray(d.w), rtol=1e-6)


def test_random_direction_is_reproducible_per_key():
    p = tiny()
    same = [flat(random_direction(jr.key(3), p)) for _ in range(2)]
    np.testing.assert_array_equal(same[0], same[1])
    assert not np.allclose(same[0], flat(random_direction(jr.key(4), p)))


def test_random_direction_rejects_params_without_floats():
    with pytest.raises(ValueError, match="params"):
        random_direction(jr.key(0), {"n": jnp.arange(3)})


# ---------------------------------------------------------------------- slices


def quadratic(target: Tiny):
    """L(m) = |m - target|^2 over w, w3, b, plus the untouched integer leaf."""

    def loss(m: Tiny):
        sq = sum(jnp.sum((x - y) ** 2) for x, y in ((m.w, target.w), (m.w3, target.w3), (m.b, target.b)))
        sq = sq + 0.0 * jnp.sum(m.counts) * m.tau
        return eqx.error_if(sq, ~jnp.isfinite(sq), "non-finite loss")

    return loss


def params_and_target():
    p = tiny()
    t = eqx.tree_at(lambda m: (m.w, m.w3, m.b), p, replace_fn=lambda x: x + 0.3)
    return p, t


@pytest.mark.parametrize("batch_size", [None, 2])
def test_slice_1d_matches_closed_form(batch_size):
    p, t = params_and_target()
    d = random_direction(jr.key(1), p, ignore_1d=False)
    alphas = np.linspace(-1.0, 1.0, 5)
    got = np.asarray(slice_1d(quadratic(t), p, d, alphas, batch_size=batch_size))
    r = flat(eqx.filter(p, eqx.is_inexact_array)) - flat(eqx.filter(t, eqx.is_inexact_array))
    dv = flat(d)
    want = r @ r + 2 * alphas * (r @ dv) + alphas**2 * (dv @ dv)
    np.testing.assert_allclose(got, want, rtol=RTOL)


def test_slice_2d_matches_closed_form_on_a_non_square_grid():
    p, t = params_and_target()
    d1, d2 = random_direction(jr.key(1), p, ignore_1d=False), random_direction(jr.key(2), p)
    alphas, betas = np.array([-1.0, 0.0, 0.5]), np.array([-0.5, 0.0, 0.25, 1.0])
    got = np.asarray(slice_2d(quadratic(t), p, d1, d2, alphas, betas))
    r = flat(eqx.filter(p, eqx.is_inexact_array)) - flat(eqx.filter(t, eqx.is_inexact_array))
    u, v = flat(d1), flat(d2)
    a, b = alphas[:, None], betas[None, :]
    want = r @ r + 2 * a * (r @ u) + 2 * b * (r @ v) + a**2 * (u @ u) + b**2 * (v @ v) + 2 * a * b * (u @ v)
    assert got.shape == (3, 4)
    np.testing.assert_allclose(got, want, rtol=RTOL)


def test_slice_errors():
    p, t = params_and_target()
    d = random_direction(jr.key(1), p)
    with pytest.raises(ValueError, match="alphas"):
        slice_1d(quadratic(t), p, d, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="scalar"):
        slice_1d(lambda m: m.b, p, d, [0.0, 1.0])
    with pytest.raises(ValueError, match="direction"):
        slice_1d(quadratic(t), p, {"w": d.w}, [0.0, 1.0])
    with pytest.raises(ValueError, match="d2"):
        slice_2d(quadratic(t), p, d, eqx.tree_at(lambda m: m.w, d, d.w[:2]), [0.0], [0.0])
    with pytest.raises(Exception, match="negative loss"):  # eqx.error_if inside the loss still raises
        jax.block_until_ready(slice_1d(lambda m: eqx.error_if(-1.0 + 0.0 * m.b.sum(), True, "negative loss"),
                                       p, d, [0.0]))


# ------------------------------------------------------------------ trajectories


def plane():
    """A centre and two non-orthogonal directions (cos = 0.6) as dict pytrees."""
    rng = np.random.default_rng(1)
    shapes = {"w": (6, 4), "b": (4,)}
    center = {k: rng.normal(size=s) for k, s in shapes.items()}
    u = {k: rng.normal(size=s) for k, s in shapes.items()}
    n = {k: rng.normal(size=s) for k, s in shapes.items()}
    # Make n orthogonal to u and both unit norm, then v = 0.6 u + 0.8 n.
    uu = np.sqrt(sum(np.sum(x**2) for x in u.values()))
    u = {k: x / uu for k, x in u.items()}
    un = sum(np.sum(u[k] * n[k]) for k in shapes)
    n = {k: n[k] - un * u[k] for k in shapes}
    nn = np.sqrt(sum(np.sum(x**2) for x in n.values()))
    n = {k: x / nn for k, x in n.items()}
    v = {k: 0.6 * u[k] + 0.8 * n[k] for k in shapes}
    return center, u, v, n


def f32(tree):
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), tree)


def combo(center, u, v, a, b, e=None, s=0.0):
    return f32({k: center[k] + a * u[k] + b * v[k] + (s * e[k] if e is not None else 0.0) for k in center})


def test_project_trajectory_recovers_known_coefficients():
    center, u, v, n = plane()
    # An off-plane unit vector: orthogonal to u and n (hence to v), by Gram-Schmidt in float64.
    rng = np.random.default_rng(2)
    e = {k: rng.normal(size=x.shape) for k, x in center.items()}
    for basis in (u, n):
        c = sum(np.sum(e[k] * basis[k]) for k in e)
        e = {k: e[k] - c * basis[k] for k in e}
    en = np.sqrt(sum(np.sum(x**2) for x in e.values()))
    e = {k: x / en for k, x in e.items()}
    coeffs = np.array([[0.0, 0.0], [1.0, -2.0], [-0.5, 0.25], [3.0, 1.5]])
    traj = [combo(center, u, v, a, b) for a, b in coeffs] + [combo(center, u, v, 1.0, 1.0, e, 0.5)]
    coords, residual = project_trajectory(traj, f32(center), f32(u), f32(v))
    # float32 rounding of the points (|centre| ~ 1 per entry) moves each coordinate by
    # ~ eps32 * |centre| / sin(angle(u, v)) ~ 1e-7 * 5; atol 1e-5 leaves a wide margin.
    np.testing.assert_allclose(coords, np.vstack([coeffs, [1.0, 1.0]]), atol=1e-5)
    np.testing.assert_allclose(residual[:4], 0.0, atol=1e-5)
    # Off-plane point: x = u + v + 0.5 e with e orthogonal to the plane.
    x_norm = np.sqrt(sum(np.sum((u[k] + v[k] + 0.5 * e[k]) ** 2) for k in e))
    np.testing.assert_allclose(residual[4], 0.5 / x_norm, rtol=1e-4)


def test_project_trajectory_errors():
    center, u, v, _ = plane()
    with pytest.raises(ValueError, match="linearly independent"):
        project_trajectory([f32(center)], f32(center), f32(u), f32({k: 2 * x for k, x in u.items()}))
    with pytest.raises(ValueError, match=r"trajectory\[1\]"):
        project_trajectory([f32(center), {"w": center["w"]}], f32(center), f32(u), f32(v))


def test_pca_directions_find_the_plane_of_the_path():
    center, u, _, n = plane()
    # Displacements a_i u + b_i n with sum(a b) = 0: the uncentred principal axes are u and n.
    a, b = np.array([4.0, 2.0, -2.0, -4.0]), np.array([1.0, -1.0, -1.0, 1.0])
    traj = [combo(center, u, n, ai, bi) for ai, bi in zip(a, b)]
    d1, d2, explained = pca_directions(traj, f32(center))
    # trajectory[0] = centre + 4u + n lies at non-positive coordinates: d1 = -u, d2 = -n.
    np.testing.assert_allclose(flat(d1), -flat(u), atol=1e-5)
    np.testing.assert_allclose(flat(d2), -flat(n), atol=1e-5)
    np.testing.assert_allclose(explained, [40 / 44, 4 / 44], rtol=1e-5)
    coords, residual = project_trajectory(traj, f32(center), d1, d2)
    np.testing.assert_allclose(coords, -np.stack([a, b], axis=1), atol=1e-5)
    np.testing.assert_allclose(residual, 0.0, atol=1e-5)
    with pytest.raises(ValueError, match="trajectory"):
        pca_directions(traj[:1], f32(center))


# ------------------------------------------------------------------------ plots


def is_png(path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_write_png(tmp_path):
    alphas, betas = np.linspace(-1, 1, 7), np.linspace(-1, 1, 5)
    curves = {"event": alphas**2, "surrogate dt=0.01": alphas**2 + 0.1}
    out = plot_slice_1d(alphas, curves, tmp_path / "one" / "slice.png", title="1-D", log=True)
    assert out == tmp_path / "one" / "slice.png" and is_png(out)
    surface = alphas[:, None] ** 2 + 2 * betas[None, :] ** 2 + 0.01
    surface[0, 0] = np.nan  # blank, not an error
    traj = Projection(np.array([[-0.8, 0.9], [-0.3, 0.2], [0.0, 0.0]]), np.array([0.1, 0.05, 0.0]))
    assert is_png(plot_slice_2d(alphas, betas, surface, tmp_path / "plane.png", trajectory=traj, log=True))
    assert is_png(plot_slice_2d(alphas, betas, surface, tmp_path / "raw.png", trajectory=traj.coords))
    with pytest.raises(ValueError, match="surface"):
        plot_slice_2d(alphas, betas, surface.T, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="event"):
        plot_slice_1d(alphas, {"event": alphas[:3]}, tmp_path / "bad.png")
