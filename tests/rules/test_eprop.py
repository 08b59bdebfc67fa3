"""e-prop against BPTT: exact on feed-forward networks, an approximation elsewhere."""

import jax.numpy as jnp
import numpy as np

import eventax as ex
from eventax import rules

from conftest import LIF_KW, Case, build, cosine, feedforward_mask, inputs, rel_err


def test_symmetric_eprop_equals_bptt_on_a_feedforward_lif_network(feedforward):
    """inputs -> hidden -> outputs with no lateral or backward connections: a
    hidden neuron's spikes reach the loss only through its direct synapses to
    the outputs, which the rule's output sensitivities carry exactly. Same
    float64 products in another order: 1e-8 relative leaves ~1e7 ulps of slack;
    a missing term would be O(1)."""
    g, value = feedforward.grad(rules.EProp())
    bptt, bptt_value = feedforward.grad(rules.BPTT())
    assert np.count_nonzero(bptt) > 10
    assert rel_err(bptt, g) <= 1e-8
    np.testing.assert_allclose(value, bptt_value, rtol=1e-12)


def test_symmetric_eprop_equals_bptt_with_adaptive_hidden_neurons(x64):
    """ALIF (state v, i, a): with `detach_reset=False` each spike raises the
    adaptation `a` differentiably, so the eligibility needs e-prop's adaptation
    trace; the rule gets it from autodiff of the step alone. Tolerance as above."""
    net = build(
        feedforward_mask(), model=ex.ALIF, key=4, fixed=dict(detach_reset=False),
        **{**LIF_KW, "wmean": 2.0}, ta=1.0, beta=0.5,
    )
    case = Case(net, inputs(), jnp.array([0, 1, 1]))
    assert np.all(case.spikes >= 6), case.spikes  # several spikes per neuron: the threshold adapts
    assert rel_err(case.bptt, case.grad(rules.EProp())[0]) <= 1e-8


def test_eprop_on_a_recurrent_network_is_an_approximation(recurrent):
    """Recurrent spikes are inputs to the traces: no agreement is claimed (the
    cosine to BPTT is reported, not asserted)."""
    g, value = recurrent.grad(rules.EProp())
    c = cosine(recurrent.bptt, g)
    print(f"\nEProp, recurrent LIF: cosine to BPTT {c:.4f}, rel. error {rel_err(recurrent.bptt, g):.3g}")
    assert np.isfinite(c) and np.isfinite(value)


def test_random_feedback_eprop_is_an_approximation(feedforward):
    g, value = feedforward.grad(rules.EProp(feedback="random", seed=3))
    c = cosine(feedforward.bptt, g)
    print(f"\nEProp(random), feed-forward LIF: cosine to BPTT {c:.4f}")
    assert np.isfinite(c) and np.isfinite(value)
