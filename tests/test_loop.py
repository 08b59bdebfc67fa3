"""`saved_while_loop` against the same loop unrolled in Python (float64): values and
reverse-mode gradients, with every iteration saved and with recomputed segments, under
`vmap` with samples of different lengths, with write-only buffers and integer leaves."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eventax._loop import saved_while_loop

pytestmark = pytest.mark.usefixtures("x64")  # (float64 for this module's tests only)

STEPS = 40  # the loop's bound (the samples below stop after 9 to 31 iterations)


def _body(w):
    def body(c):
        i, x, log = c
        x_new = x + 0.05 * (w[0] * jnp.sin(x[::-1]) + w[1]) + 0.01 * x * x
        return i + 1, x_new, log.at[i].set(x[0] * w[1])  # every slot written once

    return body


def _cond(c):
    return c[1][0] < 2.0


def _loss(c):
    i, x, log = c
    return jnp.sum(x**2) + jnp.sum(jnp.sin(log) * jnp.arange(1.0, STEPS + 1)) + 0.0 * i


def _loop_loss(w, x0, saved):
    init = (jnp.asarray(0), x0, jnp.zeros(STEPS))
    out = saved_while_loop(_cond, _body(w), init, max_steps=STEPS, saved=saved, buffers=lambda c: c[2])
    return _loss(out)


def _unrolled_loss(w, x0):
    body, c = _body(w), (0, x0, jnp.zeros(STEPS))
    while c[0] < STEPS and bool(_cond(c)):
        c = body(c)
    return _loss(c)


W = np.array([0.7, 1.1])  # (float64: jnp turns them into float64 under the x64 fixture)
X0 = np.array([[0.3, 0.5], [1.2, -0.4], [-0.6, 0.9]])


def _iterations(w, x0):
    body, c = _body(w), (0, x0, jnp.zeros(STEPS))
    while bool(_cond(c)):
        c = body(c)
    return c[0]


def test_samples_run_different_numbers_of_iterations():
    counts = [_iterations(W, x0) for x0 in X0]
    assert len(set(counts)) == 3 and max(counts) < STEPS


@pytest.mark.parametrize("saved", [None, 1, 4, 10, 17])
def test_value_and_gradient_match_the_unrolled_loop(saved):
    for x0 in X0:
        value, grads = jax.value_and_grad(_loop_loss, (0, 1))(W, x0, saved)
        ref_value, ref_grads = jax.value_and_grad(_unrolled_loss, (0, 1))(W, x0)
        np.testing.assert_allclose(value, ref_value, rtol=1e-13)
        for g, r in zip(grads, ref_grads):
            np.testing.assert_allclose(g, r, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("saved", [None, 3])
def test_vmap_gives_each_sample_its_own_gradient(saved):
    """Samples that finish early idle while the others run: their gradients are those
    of their own loop."""
    ws = jnp.stack([W, W * 1.1, W * 0.9])
    grad = jax.jit(jax.vmap(jax.grad(_loop_loss, (0, 1)), (0, 0, None)), static_argnums=2)
    got = grad(ws, X0, saved)
    for k in range(3):
        ref = jax.grad(_unrolled_loss, (0, 1))(ws[k], X0[k])
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g[k], r, rtol=1e-11, atol=1e-12)


def test_gradient_of_a_batch_mean_with_shared_parameters():
    def mean_loss(w, saved):
        return jnp.mean(jax.vmap(lambda x0: _loop_loss(w, x0, saved))(X0))

    ref = np.mean([jax.grad(_unrolled_loss)(W, x0) for x0 in X0], axis=0)
    for saved in (None, 2):
        np.testing.assert_allclose(jax.grad(mean_loss)(W, saved), ref, rtol=1e-11)


def test_stops_at_max_steps():
    init = (jnp.asarray(0), X0[0], jnp.zeros(STEPS))
    out = saved_while_loop(lambda c: c[1][0] < 1e9, _body(W), init, max_steps=7, buffers=lambda c: c[2])
    assert int(out[0]) == 7
