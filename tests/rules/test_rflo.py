"""RFLO against BPTT: an approximation (random feedback, traces at rest); see also test_traces.py."""

import numpy as np

from eventax import rules

from conftest import cosine


def test_rflo_is_an_approximation_of_bptt(feedforward):
    rule = rules.RFLO()
    assert rule.feedback == "random"  # RFLO's default, unlike the other trace rules
    g, value = feedforward.grad(rule)
    c = cosine(feedforward.bptt, g)
    print(f"\nRFLO, feed-forward LIF: cosine to BPTT {c:.4f}")
    assert np.isfinite(c) and np.isfinite(value)
