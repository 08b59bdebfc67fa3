"""Default initialisation: a network built with no weight settings spikes, so its
gradients are not all zero (a silent network was the first thing a new user met).

Each feed-forward built-in model is checked in `test_contract.py` (its default
network beside each case, reusing the case's compiled program); EGRU, whose cells
take ~15-25 time units to a first spike, here in a recurrent network of 13 cells
(its use) on 8 Yin-Yang samples (latency-coded, t_max 30): more than half of its
outputs spike and its weight gradients are not all zero. The mechanism (`drive`,
`eventax.neuron_models._params.draw_weights`) is checked on its own: a feed-forward
network's incoming weights sum to `drive` on average; a recurrent one's recurrent
weights stay centred on `wmean` (0), its input weights carry the drive.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eventax as ex
from eventax.data import yin_yang, yin_yang_spikes
from eventax.neuron_models._params import SynapseInit, draw_weights

T_MAX = 30.0


def test_default_recurrent_egru_network_spikes_and_has_gradients():
    features, _ = yin_yang(8, seed=0)
    x = jnp.asarray(yin_yang_spikes(features, T_MAX), jnp.float32)
    net = ex.EvNN(ex.EGRU, 13, T_MAX, 5, output_neurons=np.arange(10, 13), key=jax.random.PRNGKey(0))

    def loss(n):
        t = jax.vmap(n.ttfs)(x)
        return jnp.sum(jnp.where(jnp.isfinite(t), t, T_MAX)), t

    (_, ttfs), grads = eqx.filter_jit(eqx.filter_value_and_grad(loss, has_aux=True))(net)
    assert float(jnp.mean(jnp.isfinite(ttfs))) > 0.5
    g = np.concatenate([np.ravel(getattr(grads.neuron_model, w)) for w in ("W_u", "W_r", "W_z")])
    assert np.all(np.isfinite(g)) and np.abs(g).sum() > 0


def _mask(n, n_in, recurrent):
    mask = np.zeros((n + n_in, n), bool)
    mask[n:, : n // 2] = True  # inputs -> first half
    mask[: n // 2, n // 2:] = True  # first half -> second half (feed-forward)
    if recurrent:
        mask[n // 2:, n // 2:][: n - n // 2] = True  # second half -> itself
    return mask


def test_drive_is_the_mean_summed_input_of_each_neuron():
    """200 draws of a 40-neuron layer pair: the mean column sum is `drive` (feed-forward;
    std of the mean ~ 0.3 / sqrt(200 * 40): 1e-2 is ~5 sigma), and the recurrent rows
    average to 0 while the input rows carry the drive (recurrent)."""
    n, n_in, drive = 80, 10, 6.0
    keys = jax.random.split(jax.random.PRNGKey(0), 200)
    ff = np.stack([np.asarray(draw_weights(k, _mask(n, n_in, False), jnp.float32, wlim=1.0, fan_in_mode="sqrt",
                                           drive=drive)) for k in keys])
    np.testing.assert_allclose(ff.sum(axis=1).mean(), drive, atol=1e-2)
    mask = _mask(n, n_in, True)
    rec = np.stack([np.asarray(draw_weights(k, mask, jnp.float32, wlim=1.0, fan_in_mode="sqrt", drive=drive))
                    for k in keys])
    recurrent = rec[:, n // 2: n, n // 2:]
    assert abs(recurrent.mean()) < 1e-2
    np.testing.assert_allclose(rec[:, n:, : n // 2].sum(axis=1).mean(), drive, atol=1e-2)


def test_the_default_drive_gives_way_to_a_users_wmean():
    """`wmean` (or `wlim`) set: no default drive, as before the default existed."""
    keywords = {"wmean": 0.5}
    assert SynapseInit.of(ex.LIF, 4.0, keywords, default_drive=12.0).drive == 0.0
    assert SynapseInit.of(ex.LIF, 4.0, {"wlim": 2.0}, default_drive=12.0).drive == 0.0
    assert SynapseInit.of(ex.LIF, 4.0, {}, default_drive=12.0).drive == 12.0
