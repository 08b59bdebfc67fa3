"""The eligibility-trace engine (`TraceRule`): locality, resting traces, memory, binding errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eventax as ex
from eventax import rules
from eventax.rules.base import Problem
from eventax.rules.traces import _random_feedback

from conftest import DT, LIF_KW, LOSS, N_IN, ONLINE_RULES, build, feedforward_mask, index_tree, inputs, params



@eqx.filter_jit
def _trace_history(rule, net, x, label):
    """The traces after every grid step of one sample: `eps` `(K, A, C)`, `sd` `(K, H)`."""

    def body(traces, xs):
        traces, _, _ = rule.step(net, LOSS, traces, *xs, label)
        return traces, traces[2:4]

    _, history = jax.lax.scan(body, rule.init(net, LOSS), (net.times, net.input_counts(x)))
    return history


@pytest.fixture(scope="module")
def history(recurrent):
    """EProp, OTTT and RFLO traces of sample 0 on the all-to-all network, and
    what drove each neuron: `drive[k]` = (spikes of step k-1, inputs of step k)."""
    net, x = recurrent.net, recurrent.x[0]
    spikes = np.asarray(net.spike_trains(x))
    drive = np.concatenate([np.vstack([np.zeros((1, net.n_neurons)), spikes[:-1]]), net.input_counts(x)], axis=1)
    out = {"drive": drive, "spikes": spikes}
    for name in ("EProp", "OTTT", "RFLO"):
        rule = ONLINE_RULES[name]().prepare(net)
        out[name] = _by_parameter(rule, *_trace_history(rule, net, x, recurrent.labels[0]), params(net).size)
    return out


def _by_parameter(rule, eps, sd, P):
    """The traces with one row per flat parameter entry (NaN where the rule keeps
    none): `eps` has a row per entry that acts on a neuron (`rule.active`), `sd`
    one per entry of a hidden neuron (`rule.hidden`, positions in `active`)."""
    active = np.asarray(rule.active)
    full_eps = np.full((eps.shape[0], P, eps.shape[2]), np.nan)
    full_eps[:, active] = eps
    full_sd = np.full((sd.shape[0], P), np.nan)
    full_sd[:, active[np.asarray(rule.hidden)]] = sd
    return full_eps, full_sd


def _isolated_neuron(proto, w, b, drive):
    """One neuron of the same kind fed `drive` as its inputs, with incoming
    weights `w` and bias `b`: its state `(K, C)` and spikes `(K,)` after each step."""
    single = eqx.tree_at(
        lambda f: (f.net.neuron_model.weights, f.net.neuron_model.ic),
        proto, (jnp.concatenate([jnp.zeros(1), w])[:, None], b[None]),
    )
    model = single.neuron_model

    def body(carry, xs):
        y, s, _ = single.step(*carry, *xs)
        return (y, s), (model.state_matrix(y)[0], s[0])

    start = (model.init_state(1), jnp.zeros(1))
    return jax.lax.scan(body, start, (single.times, drive))[1]


def test_eprop_traces_are_an_isolated_neurons_exact_sensitivities(recurrent, history):
    """Locality, on a recurrent network: the trace of every incoming parameter of
    neuron j (weights from all neurons and inputs, bias) equals d(state_j)/d(theta)
    of a lone copy of j driven by the spike trains the network produced, by
    forward-mode autodiff through that lone simulation. Nothing of another
    neuron's state enters the update. Same float64 recurrences, another
    order: 1e-9 relative (1e-12 absolute for entries that are 0)."""
    net = recurrent.net
    n, n_in = net.n_neurons, net.in_size
    eps, sd = history["EProp"]
    W = np.asarray(net.neuron_model.weights)
    ic = np.asarray(net.neuron_model.ic)
    idx = index_tree(net).net.neuron_model
    mask = np.ones((1 + n + n_in, 1), bool)
    mask[0] = False  # no self-connection: the neuron's own spikes arrive as input rows too
    proto = ex.EvNN(
        ex.LIF, 1, net.max_solver_time, n + n_in, wmask=mask, dtype=jnp.float64, init_weights=0.0, **LIF_KW,
    ).fixed_step(DT)
    drive = jnp.asarray(history["drive"])
    # forward mode through the lone simulation; its outputs ride along as aux
    sens = eqx.filter_jit(jax.jacfwd(lambda *a: (_isolated_neuron(*a),) * 2, argnums=(1, 2), has_aux=True))
    for j in range(n):
        ((dy_dw, dy_db), (ds_dw, ds_db)), (_, spikes) = sens(proto, jnp.asarray(W[:, j]), jnp.asarray(ic[j]), drive)
        np.testing.assert_array_equal(spikes, history["spikes"][:, j])  # it is neuron j
        rows = idx.weights[:, j]
        np.testing.assert_allclose(eps[:, rows, :], np.moveaxis(dy_dw, 2, 1), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(eps[:, idx.ic[j], :], dy_db, rtol=1e-9, atol=1e-12)
        if j < n - len(net.output_indices):  # hidden neurons carry the spike's sensitivity too
            np.testing.assert_allclose(sd[:, rows], ds_dw, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(sd[:, idx.ic[j]], ds_db, rtol=1e-9, atol=1e-12)
            assert np.abs(ds_dw).max() > 1e-3  # the surrogate is active: not a comparison of zeros
        assert np.abs(dy_dw).max() > 0.1


@pytest.mark.parametrize("name", ["OTTT", "RFLO"])
def test_resting_traces_filter_the_presynaptic_spikes(recurrent, history, name):
    """propagation = "rest": the trace of W[i, j] is presynaptic row i's counts
    c_k passed through the LIF's resting Euler step (state (v, i)):

        e_k = A e_{k-1} + (0, c_k),    A = [[1 - dt/tmem, dt/tmem], [0, 1 - dt/tsyn]]

    computed here in NumPy; no postsynaptic quantity enters (the same for every j).
    e-prop's traces, propagated at the current state, differ wherever the
    neuron was reset, which shows that the comparison can fail. 1e-10: float64."""
    net = recurrent.net
    tmem, tsyn = LIF_KW["tmem"], LIF_KW["tsyn"]
    A = np.array([[1 - DT / tmem, DT / tmem], [0.0, 1 - DT / tsyn]])
    drive = history["drive"]
    expected = np.zeros((drive.shape[0], drive.shape[1], 2))
    e = np.zeros((drive.shape[1], 2))
    for k, c in enumerate(drive):
        e = e @ A.T + np.stack([np.zeros_like(c), c], axis=1)
        expected[k] = e
    eps = history[name][0]
    state_eps = history["EProp"][0]
    rows = index_tree(net).net.neuron_model.weights  # (pre, n) flat indices
    for j in range(net.n_neurons):
        np.testing.assert_allclose(eps[:, rows[:, j], :], expected, rtol=1e-10, atol=1e-12)
    assert np.abs(state_eps[:, rows, :] - expected[:, :, None, :]).max() > 0.1


def test_trace_memory_does_not_grow_with_the_sequence(x64):
    """Online memory: every online rule's traces have the same shapes for 20 and
    200 grid steps (compared abstractly, with eval_shape), and a step returns
    traces of the shapes it was given."""
    short, long = (build(feedforward_mask(), key=4, T=T) for T in (2.0, 20.0))
    assert (short.n_steps, long.n_steps) == (20, 200)

    def shapes(tree):
        return jax.tree_util.tree_structure(tree), [(a.shape, a.dtype) for a in jax.tree_util.tree_leaves(tree)]

    for name, make in ONLINE_RULES.items():
        rule = make().prepare(short)
        init = jax.eval_shape(rule.init, short, LOSS)
        assert shapes(init) == shapes(jax.eval_shape(make().prepare(long).init, long, LOSS)), name
        after = jax.eval_shape(lambda tr: rule.step(short, LOSS, tr, short.times[0], jnp.zeros(N_IN), 0)[0], init)
        assert shapes(after) == shapes(init), name


def test_a_hidden_neuron_that_reaches_no_output_is_an_error(x64):
    """in -> h1 -> h2 -> out: h1's credit would need two layers of feedback."""
    n = 4
    w = np.zeros((n + N_IN, n), bool)
    w[n:, 0] = w[0, 1] = w[1, 2:] = True
    net = build(w, outputs=[2, 3])
    with pytest.raises(ValueError, match=r"hidden neurons \[0\] reach no output"):
        rules.EProp().prepare(net)


class SharedTauLIF(ex.LIF):
    """A LIF whose membrane time constant is one trainable number for all neurons."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tmem = jnp.asarray(1.0, self.dtype)


def test_a_shared_trainable_parameter_is_an_error(x64):
    net = build(feedforward_mask(), model=SharedTauLIF, key=4, **LIF_KW)
    assert net.neuron_model.tmem.shape == ()
    with pytest.raises(ValueError, match=r"tmem.*shared parameter"):
        rules.OSTL().prepare(net)
    rules.RTRL().prepare(net).init(net, LOSS)  # exact rules do not need per-neuron parameters


def test_binding_errors(feedforward):
    with pytest.raises(ValueError, match="feedback"):
        rules.EProp(feedback="bogus")
    with pytest.raises(ValueError, match="decay"):
        rules.EProp(feedback="adaptive", decay=1.0)
    with pytest.raises(ValueError, match="prepare"):
        rules.EProp().init(feedforward.net, LOSS)


def test_random_feedback_keeps_the_connectivity_and_scale(feedforward):
    """`feedback="random"`: weight matrices redrawn, zeros kept, other leaves
    (biases) the network's own, reproducible from the seed."""
    net = feedforward.net
    rule = rules.EProp(feedback="random", seed=7).prepare(net)
    idx = index_tree(net).net.neuron_model
    W = np.asarray(net.neuron_model.weights)
    fb = np.asarray(rule.fb)
    assert np.all(fb[idx.weights][W == 0] == 0)
    assert np.all(fb[idx.weights][W != 0] != 0)
    np.testing.assert_array_equal(fb[idx.ic], np.asarray(net.neuron_model.ic))
    np.testing.assert_array_equal(np.asarray(rule.fb_mask)[idx.weights], True)
    np.testing.assert_array_equal(np.asarray(rule.fb_mask)[idx.ic], False)
    rms = np.sqrt(np.mean(W[W != 0] ** 2))
    assert np.abs(fb[idx.weights]).max() <= np.sqrt(3) * rms * (1 + 1e-12)  # uniform on +-sqrt(3) rms
    assert not np.allclose(fb[idx.weights], W)
    np.testing.assert_array_equal(rules.EProp(feedback="random", seed=7).prepare(net).fb, fb)
    assert not np.array_equal(rules.EProp(feedback="random", seed=8).prepare(net).fb, fb)


def test_random_feedback_rms_matches_the_weights(feedforward):
    """Same RMS as the weight matrix within sampling error, centred: pooled over
    40 seeds of the 12 nonzero weights, the mean square of uniform draws has
    relative s.d. sqrt(0.8 / 480) ~ 4%, so 15% is > 3.5 s.d.; the mean's s.d. is
    rms / sqrt(480) ~ 0.05 rms (bound 0.15 rms). The private helper is called
    directly: `prepare` would find the owners 40 times."""
    net = feedforward.net
    W = np.asarray(net.neuron_model.weights)
    prob = Problem(net, None)
    fb = np.array([_random_feedback(prob, jax.random.PRNGKey(seed))[0] for seed in range(40)])
    F = fb[:, index_tree(net).net.neuron_model.weights]  # (seeds, pre, n)
    nonzero = W != 0
    assert np.all((F != 0) == nonzero)
    ratio = np.mean(F[:, nonzero] ** 2) / np.mean(W[nonzero] ** 2)
    assert abs(ratio - 1) < 0.15, ratio
    assert abs(np.mean(F[:, nonzero])) < 0.15 * np.sqrt(np.mean(W[nonzero] ** 2))  # unlike W (wmean > 0)
