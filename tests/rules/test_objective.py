"""`ReadoutCrossEntropy` and `evaluate` against hand computations on the recorded states."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import logsumexp

from eventax import rules

from conftest import DT


@pytest.mark.parametrize(
    "first, last", [(None, None), (5, 12), (None, 3), (3, 3), (7, None), (6, 12)],
)
def test_window_weights_average_over_the_grid_points_inside(grid, first, last):
    """The window [first dt, last dt], given as the decimals a user writes (0.3,
    1.2), holds grid steps first..last (integers, so the count is exact); each
    gets 1/count and the weights sum to 1, although the grid time 0.1 * 3 =
    0.30000000000000004 > 0.3 and 0.1 * 12 > 1.2 in float64."""
    net, grid = grid
    loss = rules.ReadoutCrossEntropy(
        t_start=None if first is None else round(first * DT, 12),
        t_end=None if last is None else round(last * DT, 12),
    )
    k = np.arange(1, net.n_steps + 1)
    inside = (k >= (first or 1)) & (k <= (last or net.n_steps))
    w = np.array([loss.weight(t, grid) for t in net.times])
    np.testing.assert_allclose(w, inside / inside.sum(), rtol=1e-15, atol=0)
    np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-14)


@pytest.fixture
def grid(feedforward):
    """The network and its `Grid`; the loss counts the window on `Grid.times`
    and tests each step's `net.times` entry, so the two must round alike."""
    net = feedforward.net
    grid = rules.Grid(net.t0, net.dt, net.n_steps)
    np.testing.assert_array_equal(grid.times, net.times)
    assert grid.times[2] > 0.3 and grid.times[11] > 1.2  # the float rounding the window has to forgive
    return net, grid


def test_evaluate_matches_a_hand_computation_on_the_observed_states(feedforward):
    """Loss and accuracy of `evaluate` from the states `FixedStepNN.run` observes
    at every grid point (before the reset): logits = sum_k w_k scale o_k[:, channel]
    over the window, L = sum_k w_k CE, prediction argmax. Labels are chosen to
    make two of three predictions right (accuracy 2/3 exactly); the loss is the
    same float64 sums in another order (1e-12)."""
    net, x = feedforward.net, feedforward.x
    loss = rules.ReadoutCrossEntropy(channel=1, t_start=0.5, t_end=1.5, scale=2.0)
    states = eqx.filter_jit(jax.vmap(lambda xi: net.run(xi, obs_times=net.times).states))(x)
    o = 2.0 * np.asarray(states)[..., 1]  # (batch, n_out, K)
    k = np.arange(1, net.n_steps + 1)
    w = ((k >= 5) & (k <= 15)) / 11.0
    logits = np.einsum("bok,k->bo", o, w)
    pred = logits.argmax(axis=1)
    assert np.all(np.abs(np.diff(logits, axis=1)) > 1e-6)  # no ties
    labels = np.array([pred[0], 1 - pred[1], pred[2]])
    ce = logsumexp(o, axis=1) - np.take_along_axis(o, labels[:, None, None], axis=1)[:, 0]
    value, accuracy = eqx.filter_jit(rules.evaluate)(net, loss, x, jnp.asarray(labels))
    np.testing.assert_allclose(value, np.mean(ce @ w), rtol=1e-12)
    assert float(accuracy) == pytest.approx(2 / 3, rel=1e-7)  # jnp.mean of booleans is float32, even in x64


def test_readout_cross_entropy_arguments_are_checked():
    with pytest.raises(ValueError, match="channel"):
        rules.ReadoutCrossEntropy(channel=-1)
    with pytest.raises(ValueError, match="scale"):
        rules.ReadoutCrossEntropy(scale=0.0)
    with pytest.raises(ValueError, match="t_end"):
        rules.ReadoutCrossEntropy(t_start=1.0, t_end=0.5)
