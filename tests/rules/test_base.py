"""The edge of every rule (`Problem`): a fixed-step network and a per-step loss, or a clear error."""

import optax
import pytest

import eventax as ex
from eventax import rules


def test_rules_need_a_fixed_step_network(feedforward):
    c = feedforward
    evnn = c.net.net
    with pytest.raises(ValueError, match=r"FixedStepNN.*fixed_step\(dt\)"):
        rules.BPTT().gradient(evnn, c.x, c.labels, c.loss)
    with pytest.raises(ValueError, match="FixedStepNN"):
        rules.EProp().prepare(evnn)
    with pytest.raises(ValueError, match="FixedStepNN"):
        ex.train_online(evnn, rules.RTRL(), c.loss, optax.sgd(0.1), [(c.x, c.labels)])


def test_rules_need_a_per_step_loss(feedforward):
    c = feedforward
    ttfs = ex.TTFSLoss(no_spike_time=2.0)
    with pytest.raises(ValueError, match=r"StepLoss.*TTFSLoss"):
        rules.BPTT().gradient(c.net, c.x, c.labels, ttfs)
    with pytest.raises(ValueError, match=r"StepLoss.*TTFSLoss"):
        rules.EProp().prepare(c.net).init(c.net, ttfs)
    with pytest.raises(ValueError, match=r"StepLoss.*TTFSLoss"):
        ex.train_online(c.net, rules.EProp(), ttfs, optax.sgd(0.1), [(c.x, c.labels)])
