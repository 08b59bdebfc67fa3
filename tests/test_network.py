"""The forward functions written once on top of `run` (`eventax._network`), for both networks.

Each forward function must equal what one `run` records, and `run`'s recorders
must agree with each other: the trains' first entries are the first spikes, the
trains are the spike log's entries of each output, and `until` cuts both. Exact
equality where one program records both; a relative 1e-6 (a few float32 ulp)
between two programs that take the same steps (XLA may order their arithmetic
differently: a forward function is compiled on its own, without the outputs it
does not return).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eventax as ex
from eventax._network import AbstractNetwork

X = jnp.array([[3.0], [10.0], [20.0], [5.0], [0.0]])


def _networks():
    net = ex.FFEvNN([10, 3], 5, ex.LIF, 30.0, key=jax.random.PRNGKey(0), wmean=2.0, wlim=3.0)
    return {"event": net, "fixed_step": net.fixed_step(0.05)}


@pytest.fixture(params=["event", "fixed_step"], scope="module")
def net(request):
    return _networks()[request.param]


def test_both_networks_share_the_forward_functions(net):
    assert isinstance(net, AbstractNetwork)
    for name in ("ttfs", "state_at_t", "spikes_until_t", "record"):
        assert getattr(type(net), name) is getattr(AbstractNetwork, name), name


def test_trains_are_the_outputs_spikes_in_the_log(net):
    sim = net.run(X, max_spikes=200, train_length=4)
    log = sim.spikes
    assert int(log.n_spikes) > 3, "the network must spike for this test to mean anything"
    for slot, neuron in enumerate(net.output_indices):
        own = np.sort(np.asarray(log.times)[np.asarray(log.neurons) == neuron])[:4]
        expected = np.full(4, np.inf)
        expected[: own.size] = own
        np.testing.assert_array_equal(np.asarray(sim.trains[slot]), expected)
        assert sim.trains[slot, 0] == sim.first_spikes[slot]
    assert np.isfinite(np.asarray(sim.trains)).sum() >= 2


def test_until_ends_the_trial(net):
    full = net.run(X, train_length=4)
    first = np.asarray(full.trains)
    cut = float(np.min(first[np.isfinite(first)])) + 0.5  # after the earliest output spike
    part = net.run(X, until=cut, train_length=4)
    # The same steps up to `cut`, in another compiled program: equal up to a few ulp.
    np.testing.assert_allclose(np.asarray(part.trains), np.where(first <= cut, first, np.inf), rtol=1e-6)
    assert float(part.t_stop) == pytest.approx(cut)
    np.testing.assert_allclose(
        np.asarray(net.spikes_until_t(X, cut, 4)),
        np.where(first <= cut, first, net.output_no_spike_value), rtol=1e-6,
    )


def test_forward_functions_are_runs(net):
    times = jnp.array([4.0, 12.0])
    observed = net.run(X, obs_times=times)
    # Two programs: a few-ulp difference of an O(1) state early on is an absolute one
    # later (a membrane near 0 after a reset), hence atol as in test_semantics.
    np.testing.assert_allclose(np.asarray(net.state_at_t(X, times)), np.asarray(observed.states),
                               rtol=1e-6, atol=1e-5)
    logged = net.run(X, max_spikes=200)
    rec = net.record(X, 200)
    np.testing.assert_allclose(np.asarray(rec.times), np.asarray(logged.spikes.times), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(rec.neurons), np.asarray(logged.spikes.neurons))
    first = np.asarray(net.run(X, stop_at_first_output=True).first_spikes)
    np.testing.assert_allclose(np.asarray(net.ttfs(X)), np.where(np.isinf(first), net.output_no_spike_value, first),
                               rtol=1e-6)


def test_bad_run_arguments_name_themselves(net):
    with pytest.raises(ValueError, match="train_length"):
        net.run(X, train_length=-1)
    with pytest.raises(ValueError, match="`until` must be finite and within"):
        net.run(X, until=31.0)


def test_observations_after_until_are_refused():
    net = _networks()["event"]
    with pytest.raises(ValueError, match="`obs_times` must not be later than `until`"):
        net.run(X, obs_times=jnp.array([5.0, 20.0]), until=10.0)
