"""RTRL against BPTT: both are the exact gradient of the same fixed-step forward."""

import jax.numpy as jnp
import numpy as np

import eventax as ex
from eventax import rules

from conftest import HIDDEN, LIF_KW, N_IN, OUT, Case, build, index_tree, inputs, rel_err


def test_rtrl_equals_bptt_on_a_recurrent_lif_network(recurrent):
    """Forward-mode sensitivities summed over the trial equal reverse mode: two
    orderings of the same float64 products, so they agree to rounding (1e-8 is
    ~1e7 ulps of slack; a missing term would be O(1))."""
    g, value = recurrent.grad(rules.RTRL())
    bptt, bptt_value = recurrent.grad(rules.BPTT())
    assert np.all(np.isfinite(bptt)) and np.count_nonzero(bptt) > 10
    assert rel_err(bptt, g) <= 1e-8
    np.testing.assert_allclose(value, bptt_value, rtol=1e-12)


def test_rtrl_equals_bptt_on_a_heterogeneous_network(x64):
    """LIF hidden neurons and LI outputs (MultiNeuronModel: two sub-models, a
    tuple state), all-to-all: RTRL's state vector spans both sub-models."""
    n = HIDDEN + OUT
    net = build(
        np.ones((n + N_IN, n), bool), model=ex.MultiNeuronModel, neuron_models=[ex.LIF, ex.LI], key=3,
        neuron_type_ids=[0] * HIDDEN + [1] * OUT,
        neuron_model_kwargs=[{**LIF_KW, "wmean": 1.0}, dict(wlim=4.0, wmean=0.5, tsyn=0.5, tmem=1.0)],
    )
    case = Case(net, inputs(), jnp.array([0, 1, 1]))
    assert np.all(case.spikes[:HIDDEN] >= 3) and np.all(case.spikes[HIDDEN:] == 0), case.spikes
    g, _ = case.grad(rules.RTRL())
    bptt = case.bptt
    # both sub-models' weights get a gradient (the hidden ones only through spikes)
    subs = index_tree(net).net.neuron_model.submodels
    assert np.any(bptt[subs[0].weights] != 0) and np.any(bptt[subs[1].weights] != 0)
    assert rel_err(bptt, g) <= 1e-8
