"""Construction keywords: one `SynapseInit` for every current-based model.

The draws are checked against their definitions (uniform on `wmean ± wlim/2`, scaled
by `1/sqrt(fan_in)` when `wlim` is unset, zero off the mask, bias from its own key),
and a keyword no model takes is a `ValueError` that names it and its closest match.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import eventax as ex

N, IN = 6, 4
MASK = np.zeros((N + IN, N), bool)
MASK[N:, :] = True  # inputs -> every neuron (fan-in 4)
MASK[0, 1:] = True  # neuron 0 -> neurons 1..5 (fan-in 5)
KEY = jax.random.PRNGKey(7)
CURRENT = [ex.LIF, ex.LI, ex.ALIF, ex.QIF, ex.EIF, ex.Izhikevich]


@pytest.mark.parametrize("cls", CURRENT, ids=lambda c: c.__name__)
def test_default_weights_are_uniform_within_the_scaled_width(cls):
    """Uniform on `drive / fan_in ± wlim / (2 sqrt(fan_in))` (MASK is feed-forward:
    neuron 0 feeds only higher-numbered neurons), with each model's defaults."""
    model = cls(KEY, N, IN, MASK)
    w = np.asarray(model.weights)
    assert np.all(w[~MASK] == 0) and np.all(w[MASK] != 0)
    fan_in = MASK.sum(axis=0)
    wlim = {"LIF": 4.0, "LI": 4.0, "ALIF": 4.0, "QIF": 4.0, "EIF": 4.0, "Izhikevich": 40.0}[cls.__name__]
    drive = {"LIF": 12.0, "LI": 0.0, "ALIF": 12.0, "QIF": 24.0, "EIF": 16.0, "Izhikevich": 40.0}[cls.__name__]
    half, centre = wlim / 2 / np.sqrt(fan_in), drive / fan_in
    offset = np.where(MASK, w - centre[None, :], 0.0)
    assert np.all(np.abs(offset) <= half[None, :] + 1e-5)
    assert np.abs(offset).max() > 0.5 * half.min()  # (36 draws: the width is used)
    np.testing.assert_array_equal(np.asarray(model.ic), 0.0)


@pytest.mark.parametrize("cls", CURRENT, ids=lambda c: c.__name__)
def test_given_width_mean_and_bias(cls):
    model = cls(KEY, N, IN, MASK, wlim=0.5, wmean=2.0, blim=0.2, bmean=-1.0)
    w = np.asarray(model.weights)[MASK]
    assert np.all((w >= 1.75) & (w <= 2.25))  # no fan-in scale once `wlim` is given
    b = np.asarray(model.ic)
    assert np.all((b >= -1.1) & (b <= -0.9)) and len(set(b.tolist())) == N
    fixed = cls(KEY, N, IN, MASK, init_weights=0.3, init_bias=0.1, wlim=9.0)
    np.testing.assert_array_equal(np.asarray(fixed.weights), np.where(MASK, np.float32(0.3), 0))
    np.testing.assert_array_equal(np.asarray(fixed.ic), np.float32(0.1))


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: ex.LIF(KEY, N, IN, MASK, tmen=5.0), r"LIF got unknown keyword\(s\) `tmen` \(did you mean `tmem`\?\)"),
        (lambda: ex.QIF(KEY, N, IN, MASK, wlimit=1.0), r"`wlimit` \(did you mean `wlim`\?\).*tsyn"),
        (lambda: ex.Refractory(ex.LIF)(KEY, N, IN, MASK, t_refrac=1.0, t_refact=2.0), r"did you mean `t_refrac`"),
        (lambda: ex.EGRU(KEY, N, IN, MASK, bmean=0.1), "per gate"),
        (lambda: ex.FFEvNN([3], 2, ex.EIF, 10.0, deltat=0.3), r"EIF got unknown.*`deltat` \(did you mean `deltaT`\?\)"),
    ],
)
def test_unknown_keywords_are_named_with_the_closest_match(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_the_keywords_listed_are_constructor_keywords():
    """The list names what the constructor takes, not fields of a base class's
    generated `__init__` (`weights` and `input_channel` were listed)."""
    with pytest.raises(ValueError) as error:
        ex.LIF(KEY, N, IN, MASK, tmen=5.0)
    listed = str(error.value).split("it takes ")[1].rstrip(".").split(", ")
    assert listed == ["thresh", "tsyn", "tmem", "vreset", "trainable", "dtype", "wlim", "wmean", "init_weights",
                      "fan_in_mode", "blim", "bmean", "init_bias", "drive"]


class _UserModel(ex.LIF):
    """(LIF's dynamics; its own constructor takes the shared keywords, as the README shows)."""

    def __init__(self, key, n_neurons, in_size, wmask, gain=1.0, dtype=np.float32, **kwargs):
        ex.LIF.__init__(self, key, n_neurons, in_size, wmask, dtype=dtype, init_weights=0.0)
        self.weights, self.ic = ex.SynapseInit.of(type(self), 2.0 * gain, kwargs).draw(key, wmask, dtype)


def test_a_user_model_takes_the_shared_keywords():
    model = _UserModel(KEY, N, IN, MASK, gain=2.0, bmean=0.5)
    half = 4.0 / 2 / np.sqrt(MASK.sum(axis=0))
    w = np.asarray(model.weights)
    assert np.all(np.abs(w) <= half + 1e-6) and np.all(w[~MASK] == 0)
    np.testing.assert_array_equal(np.asarray(model.ic), np.float32(0.5))
    with pytest.raises(ValueError, match=r"`gian` \(did you mean `gain`\?\)"):
        _UserModel(KEY, N, IN, MASK, gian=2.0)


def test_a_model_needs_no_key_when_every_array_is_given():
    """`key=None` (eventax 0.1.0 allowed it) builds a model whose weights and bias are
    given; a random draw without a key names the missing array."""
    model = ex.LIF(None, 2, 1, np.ones((3, 2)), init_weights=0.5, init_bias=0.1)
    np.testing.assert_array_equal(model.weights, np.full((3, 2), 0.5, np.float32))
    with pytest.raises(ValueError, match="`key` is None, but the weights are drawn at random"):
        ex.LIF(None, 2, 1, np.ones((3, 2)), init_bias=0.1)
    with pytest.raises(ValueError, match="`key` is None, but the bias is drawn"):
        ex.LIF(None, 2, 1, np.ones((3, 2)), init_weights=0.5, blim=1.0)
