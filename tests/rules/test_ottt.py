"""OTTT against BPTT: an approximation (traces at rest); its defining property is in test_traces.py."""

import numpy as np

from eventax import rules

from conftest import cosine


def test_ottt_is_an_approximation_of_bptt(feedforward):
    g, value = feedforward.grad(rules.OTTT())
    c = cosine(feedforward.bptt, g)
    print(f"\nOTTT, feed-forward LIF: cosine to BPTT {c:.4f}")
    assert np.isfinite(c) and np.isfinite(value)
