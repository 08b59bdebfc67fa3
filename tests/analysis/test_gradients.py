"""compare_gradients on a single LIF neuron whose spike-time gradient is known in closed form."""

import json

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eventax as ev
from eventax.analysis import (
    Exact, FiniteDifferences, GradientTracker, SurrogateMode, compare_gradients, gradient_metrics,
    plot_tracker,
)

W, TSYN, TMEM, THRESH = 10.0, 5.0, 20.0, 1.0


class FirstSpikeTime(ev.Loss):
    """L = t*, the first spike time of the single output (the cross-entropy of one class is 0)."""

    def simulate(self, net, x, max_spikes=0):
        return net.run(x, stop_at_first_output=True)

    def logits(self, sim):
        return -sim.first_spikes

    def penalty(self, sim, label):
        return sim.first_spikes[0]


def closed_form():
    """Input spike at 0 of weight W; with ic = 0:
    v(t) = W a (e^{-t/tsyn} - e^{-t/tmem}), a = tsyn / (tsyn - tmem); spike at v(t*) = thresh;
    dt*/dW = -(thresh / W) / v'(t*),  dt*/dic = -(1 - e^{-t*/tmem}) / v'(t*) (dv/dic at ic = 0)."""
    a = TSYN / (TSYN - TMEM)

    def v(t):
        return W * a * (np.exp(-t / TSYN) - np.exp(-t / TMEM))

    lo, hi = 0.0, 9.0  # v rises on [0, 9.24]
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if v(mid) < THRESH else (lo, mid)
    t = 0.5 * (lo + hi)
    dv = W * a * (-np.exp(-t / TSYN) / TSYN + np.exp(-t / TMEM) / TMEM)
    return t, -(THRESH / W) / dv, -(1 - np.exp(-t / TMEM)) / dv


def test_exact_and_finite_differences_match_the_closed_form(x64):
    net = ev.EvNN(
        ev.LIF, 1, 8.0, 1, init_weights=np.array([[0.0], [W]]), thresh=THRESH, tsyn=TSYN,
        tmem=TMEM, dtype=jnp.float64, solver=diffrax.Tsit5(), solver_stepsize=0.01,
    )
    x, y = jnp.zeros((1, 1, 1)), jnp.zeros((1,), int)
    t_star, dt_dw, dt_dic = closed_form()
    assert float(net.ttfs(x[0])[0]) == pytest.approx(t_star, rel=1e-9)
    methods = [Exact(), FiniteDifferences(n_entries=3), SurrogateMode(0.01)]
    result = compare_gradients(net, (x, y), FirstSpikeTime(), methods)
    # Tsit5 at step 0.01 is accurate to ~1e-10 here; the IFT gradient inherits that.
    exact = result.gradients["exact"].neuron_model
    np.testing.assert_allclose(exact.weights[:, 0], [0.0, dt_dw], rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(exact.ic, [dt_dic], rtol=1e-7)
    # Central differences with h = 1e-5: truncation ~h^2 L''' ~ 1e-9 relative.
    fd = result.gradients["finite differences"].neuron_model
    np.testing.assert_allclose(fd.weights[1, 0], dt_dw, rtol=1e-6)
    assert np.isnan(fd.weights[0, 0])  # only entries with a non-zero exact gradient are drawn
    np.testing.assert_allclose(fd.ic, [dt_dic], rtol=1e-6)
    rows = {(r["method"], r["group"]): r for r in result.rows}
    assert rows[("finite differences", "all")]["cosine"] == pytest.approx(1.0, abs=1e-10)
    groups = {g for _, g in rows}
    assert {"all", "neuron_model.weights[input->output]", "neuron_model.weights[output->output]",
            "neuron_model.ic"} <= groups
    # The surrogate's agreement is reported, not asserted to be high.
    r = rows[("surrogate dt=0.01 FastSigmoid(25)", "all")]
    assert -1.0 <= r["cosine"] <= 1.0 and r["norm_ratio"] > 0
    assert "| exact" not in result.markdown() and "surrogate dt=0.01" in result.markdown()


def test_finite_differences_refuse_float32():
    net = ev.EvNN(ev.LIF, 1, 30.0, 1, init_weights=np.array([[0.0], [W]]))
    with pytest.raises(ValueError, match="float64"):
        compare_gradients(net, (jnp.zeros((1, 1, 1)), jnp.zeros((1,), int)), FirstSpikeTime(),
                          [Exact(), FiniteDifferences()])


def test_metrics_on_known_vectors():
    m = gradient_metrics([1.0, 0.0, 2.0], [2.0, 0.0, 4.0])
    assert m.cosine == pytest.approx(1.0) and m.norm_ratio == pytest.approx(2.0)
    assert m.relative_error == pytest.approx(1.0) and m.sign_agreement == 1.0
    m = gradient_metrics([1.0, 1.0, np.nan], [1.0, -1.0, 5.0])
    assert m.cosine == pytest.approx(0.0, abs=1e-12) and m.sign_agreement == 0.5 and m.n_entries == 2


def test_tracker_records_and_plots(tmp_path):
    net = ev.FFEvNN([4, 2], 3, ev.LIF, 10.0, key=jax.random.PRNGKey(0), wmean=3.0, wlim=2.0)
    x = jnp.asarray(np.random.default_rng(0).uniform(0, 5, (2, 3, 1)), jnp.float32)
    tracker = GradientTracker(tmp_path / "g.jsonl", (x, jnp.array([0, 1])), ev.TTFSLoss(no_spike_time=10.0),
                              [Exact(), SurrogateMode(0.1)], every=2)
    for step in range(4):
        tracker(step, net)
    rows = [json.loads(line) for line in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert sorted({r["step"] for r in rows}) == [0, 2]
    assert plot_tracker(tmp_path / "g.jsonl", tmp_path / "g.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="every"):
        GradientTracker(tmp_path / "h.jsonl", (x, x), ev.TTFSLoss(), every=0)
