"""The contract every trainable neuron model meets in a float32 `FFEvNN` (x64 off).

On 8 Yin-Yang samples (latency-coded, t_max 30), a jitted value-and-grad of a
softmax cross-entropy on `-ttfs` under `vmap` gives a finite float32 loss, finite
gradients, not all zero and non-zero for the case's named leaves, and more than
the case's fraction of outputs spike; `save_evnn` / `load_evnn` restores the
model class, and the loaded network gives identical ttfs and loss.

The same network with the model's *default* initialisation and parameters (only
`trainable` kept, so the compiled program is reused) must make more than half of
its outputs spike with non-zero weight gradients: a new user's first network is
not silent (EGRU's slow cells are checked in a recurrent network, `test_init.py`).
Adding a model is adding one `Case` to `CASES`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eventax as ex
from eventax.data import yin_yang, yin_yang_spikes
from eventax.neuron_models.alif import ALIF
from eventax.neuron_models.dendritic import DendriticNeuron
from eventax.neuron_models.egru import EGRU
from eventax.neuron_models.eif import EIF
from eventax.neuron_models import AMOS, LIF, PLIF, MultiNeuronModel, PIzhikevich, PQIF

T_MAX = 30.0  # simulation end, input latency scale and no-spike value


class Case(NamedTuple):
    model: type
    kwargs: dict[str, Any]  # FFEvNN keywords besides key and output_no_spike_value
    nonzero_grads: tuple[str, ...] = ()  # leaves of grads.neuron_model with some non-zero entry
    sizes: tuple[int, ...] = (50, 3)
    seed: int = 42  # Yin-Yang sample seed
    min_spiked_fraction: float = 0.0  # strictly more of the 8 x 3 outputs must spike
    default_spikes: bool = True  # the network with the model's default init spikes too


CASES = {
    # LIF as the Yin-Yang configs build it (wmean 1.5, wlim 3), with learnable time constants.
    "LIF": Case(PLIF, dict(wmean=1.5, wlim=3.0), ("weights", "ic", "tsyn", "tmem"), min_spiked_fraction=0.25),
    # A mixed network: LIF hidden layer, AMOS(LIF) outputs (one spike each).
    "MultiNeuronModel": Case(
        MultiNeuronModel, dict(neuron_models=[LIF, AMOS(LIF)], neuron_model_kwargs=[dict(wmean=1.5, wlim=3.0)] * 2),
        min_spiked_fraction=0.25,
    ),
    "EIF": Case(
        EIF, dict(tmem=5.0, wlim=6.0, wmean=3.0, bmean=0.3, trainable=("tmem", "vT")),
        seed=0, min_spiked_fraction=0.25,
    ),
    "QIF": Case(PQIF, dict(tmem=5.0, tsyn=2.5, wlim=3.0, wmean=1.5), seed=0, min_spiked_fraction=0.25),
    "Izhikevich": Case(PIzhikevich, dict(wlim=20.0, wmean=15.0), ("a",), seed=0, min_spiked_fraction=0.25),
    # Delta synapses: a spike that an input jump causes is at that input's time, so weights
    # get gradients only through neurons that reach threshold drifting (bias above it);
    # at the default init (no bias) every spike is a jump's: all gradients are exactly 0.
    "DeltaLIF": Case(
        ex.DeltaLIF, dict(bmean=1.2, blim=0.4, trainable=("tmem",)), ("weights", "ic", "tmem"),
        min_spiked_fraction=0.5, default_spikes=False,
    ),
    "ALIF": Case(ALIF, dict(wmean=2.5, wlim=3.0, trainable=("tmem", "ta")), ("weights", "tmem")),
    # FFEvNN([3]): the Yin-Yang configs' network, at the model's default solver settings.
    "Dendritic": Case(
        DendriticNeuron, dict(wmean=1.0, wlim=2.0, trainable=("tsyn", "tden", "gdca", "v1")),
        ("weights", "ic", "tsyn", "tden", "gdca", "v1"), sizes=(3,),
    ),
    "EGRU": Case(
        EGRU, dict(bias_u_mean=0.0, bias_z_mean=0.3, tmem=5.0, wmean=0.5, wlim=2.0, trainable=("tmem", "tsyn")),
        ("W_u", "W_r", "W_z", "b_u", "b_z", "tmem", "tsyn"), default_spikes=False,
    ),
}


def _loss(net, x, labels):
    ttfs = jax.vmap(net.ttfs)(x)
    logp = jax.nn.log_softmax(-ttfs, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1)), ttfs


_value_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(_loss, has_aux=True))


@pytest.mark.parametrize("name, case", CASES.items(), ids=CASES.keys())
def test_ffevnn_float32_training_step_and_save_load(name, case, tmp_path, x32):
    features, labels = yin_yang(8, seed=case.seed)
    x, labels = jnp.asarray(yin_yang_spikes(features, T_MAX), jnp.float32), jnp.asarray(labels)
    net = ex.FFEvNN(
        list(case.sizes), 5, case.model, T_MAX, key=jax.random.PRNGKey(0),
        output_no_spike_value=T_MAX, **case.kwargs,
    )

    (loss, ttfs), grads = _value_and_grad(net, x, labels)
    leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_array))
    spiked = float(jnp.mean(ttfs < T_MAX))
    print(f"\n[{name} FFEvNN] loss={float(loss):.4f}, output spikes {int(jnp.sum(ttfs < T_MAX))}/{ttfs.size} "
          f"(fraction {spiked:.2f})")
    assert ttfs.dtype == jnp.float32 and np.isfinite(float(loss))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert any(float(jnp.max(jnp.abs(g))) > 0 for g in leaves)
    for leaf in case.nonzero_grads:
        assert float(jnp.abs(getattr(grads.neuron_model, leaf)).sum()) > 0, leaf
    assert spiked > case.min_spiked_fraction

    if case.default_spikes:
        _check_default_initialisation(case, x, labels)

    path = tmp_path / f"{name.lower()}.eqx"
    ex.save_evnn(path, net)
    loaded, _ = ex.load_evnn(path)
    assert type(loaded.neuron_model) is case.model
    (loss_loaded, ttfs_loaded), _ = _value_and_grad(loaded, x, labels)
    np.testing.assert_array_equal(np.asarray(ttfs_loaded), np.asarray(ttfs))
    assert float(loss_loaded) == float(loss)


def _check_default_initialisation(case, x, labels):
    keep = ("trainable", "neuron_models")
    net = ex.FFEvNN(list(case.sizes), 5, case.model, T_MAX, key=jax.random.PRNGKey(0), output_no_spike_value=T_MAX,
                    **{k: v for k, v in case.kwargs.items() if k in keep})
    (_, ttfs), grads = _value_and_grad(net, x, labels)
    assert float(jnp.mean(ttfs < T_MAX)) > 0.5
    models = getattr(grads.neuron_model, "submodels", [grads.neuron_model])
    weights = [np.asarray(m.weights) for m in models]
    assert all(np.all(np.isfinite(w)) for w in weights) and all(np.abs(w).sum() > 0 for w in weights)
