"""EvNN construction, validation, error reporting and heterogeneous networks (save/load: test_io.py)."""

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest

import eventax as ex

X = jnp.array([[3.0], [10.0], [20.0], [5.0], [0.0]])


def small_net(**kw):
    kw = {"key": jax.random.PRNGKey(0), "wmean": 1.5, "wlim": 3.0, **kw}
    return ex.FFEvNN([10, 3], 5, ex.LIF, 30.0, **kw)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "x, match",
    [
        (jnp.ones((4, 1)), "in_spike_times"),
        (jnp.ones((5,)), "in_spike_times"),
        (jnp.ones((2, 5, 1)), "in_spike_times"),
        (jnp.array([[jnp.nan], [1.0], [1.0], [1.0], [1.0]]), "NaN"),
        (jnp.array([[-1.0], [1.0], [1.0], [1.0], [1.0]]), "before t0"),
    ],
)
def test_bad_in_spike_times_raise_value_error(x, match):
    with pytest.raises(ValueError, match=match):
        small_net().ttfs(x)


def test_nan_input_inside_jit_is_a_runtime_error_naming_the_argument():
    net = small_net()
    x = X.at[0, 0].set(jnp.nan)
    with pytest.raises(Exception, match="in_spike_times"):
        jax.block_until_ready(eqx.filter_jit(net.ttfs)(x))


def test_forward_functions_jit_as_bound_methods():
    """`jax.jit(net.ttfs)` works as for a plain object's method (it used to fail hashing
    the network's arrays); the bound function is also a pytree argument, hashed and
    compared by the network's identity."""
    net, other = small_net(), small_net()
    expected = eqx.filter_jit(lambda n, x: n.ttfs(x))(net, X)
    np.testing.assert_array_equal(jax.jit(net.ttfs)(X), expected)
    np.testing.assert_array_equal(jax.jit(lambda f, x: f(x))(net.ttfs, X), expected)
    assert net.ttfs == net.ttfs and hash(net.ttfs) == hash(net.ttfs)
    assert net.ttfs != other.ttfs and net.ttfs != net.record
    fixed = net.fixed_step(0.5)
    assert jax.jit(fixed.spike_trains)(X).shape == (fixed.n_steps, net.n_neurons)
    assert ex.FFEvNN.ttfs.__name__ == "ttfs" and "First spike" in net.ttfs.__wrapped__.__doc__


def test_a_direct_call_is_compiled_once_per_network_structure():
    """`net.ttfs(x)` called directly runs one compiled program: again with other input
    times, or with another network of the same structure (other weights), nothing is
    compiled; its result is that of the same function under `jit` (to rtol 1e-6)."""
    import logging

    compiled = []

    class Log(logging.Handler):
        def emit(self, record):
            if "Finished XLA compilation" in record.getMessage():
                compiled.append(record.getMessage())

    net = small_net()
    other = eqx.tree_at(lambda n: n.neuron_model.weights, net, replace_fn=lambda w: 1.1 * w)
    first, later = net.ttfs(X), X + 0.5  # (compiles)
    handler, logger = Log(), logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles(True):
            again, moved = net.ttfs(later), other.ttfs(X)
    finally:
        logger.removeHandler(handler)
    assert compiled == []
    # (two separately compiled programs: equal up to float32 rounding, as in test_network;
    # the first one's closure makes the weights constants that XLA may fold)
    np.testing.assert_allclose(first, jax.jit(lambda x: net.ttfs(x))(X), rtol=1e-6)
    np.testing.assert_allclose(moved, eqx.filter_jit(lambda n: n.ttfs(X))(other), rtol=1e-6)
    assert not np.array_equal(again, first) and not np.array_equal(moved, first)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tmem": -1.0}, "tmem"),
        ({"tsyn": 0.0}, "tsyn"),
        ({"tmem": np.ones(7)}, "tmem"),
        ({"vreset": 2.0}, "vreset"),
        ({"fan_in_mode": "cubic"}, "fan_in_mode"),
        ({"trainable": ["tau"]}, "trainable"),
    ],
)
def test_bad_neuron_parameters_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small_net(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"wmask": np.ones((4, 4))}, "wmask"),
        ({"wmask": np.full((7, 2), 0.5)}, "wmask` must be boolean.*0.5"),
        ({"max_event_steps": 0}, "max_event_steps"),
        ({"init_delays": -np.ones((7, 2))}, "init_delays"),
        ({"init_axonal_delays": np.ones(3)}, "init_axonal_delays"),
        ({"output_neurons": np.zeros(2, bool)}, "output_neurons"),
        ({"solver_stepsize": 0.0}, "solver_stepsize"),
    ],
)
def test_bad_network_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ex.EvNN(ex.LIF, 2, 10.0, 5, key=jax.random.PRNGKey(0), **kwargs)


def test_wmask_of_zeros_and_ones_is_accepted_and_a_feed_forward_net_needs_inputs():
    wmask = np.ones((7, 2))
    net = ex.EvNN(ex.LIF, 2, 10.0, 5, key=jax.random.PRNGKey(0), wmask=wmask)
    assert net.wmask.value.dtype == bool and net.wmask.value.all()
    with pytest.raises(ValueError, match="in_size"):
        ex.FFEvNN([3, 2], 0, ex.LIF, 30.0)


def test_float64_without_x64_is_explained():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(ValueError, match="jax_enable_x64"):
            small_net(dtype=jnp.float64)
    finally:
        jax.config.update("jax_enable_x64", previous)


def test_comp_times_outside_window_raise():
    with pytest.raises(ValueError, match="comp_times"):
        small_net().state_at_t(X, jnp.array([1.0, 40.0]))


# ----------------------------------------------------------------------------- budgets


def test_running_out_of_event_steps_is_an_error():
    """Outside jit the check's message is the whole error (not inside Equinox's notes)."""
    net = small_net(max_event_steps=3, engine="loop")  # the event loop's budget
    with pytest.raises(ex.SimulationError) as e:
        jax.block_until_ready(net.record(X))
    assert str(e.value).startswith("Ran out of max_event_steps=3") and "\n" not in str(e.value)
    with pytest.raises(Exception, match="max_event_steps=3"):  # inside jit: Equinox's error, same message
        jax.block_until_ready(jax.jit(net.record)(X))


def test_buffer_overflow_is_an_error():
    # Hidden spikes travel 10 ms (inputs 0): several are in flight at once,
    # which a one-slot buffer cannot hold.
    delays = np.concatenate([np.full(33, 10.0), np.zeros(5)])
    kw = {"key": jax.random.PRNGKey(0), "wmean": 1.5, "wlim": 3.0, "init_axonal_delays": delays}
    assert int(ex.FFEvNN([30, 3], 5, ex.LIF, 30.0, **kw).record(X).n_spikes) > 12
    net = ex.FFEvNN([30, 3], 5, ex.LIF, 30.0, buffer_capacity=1, engine="loop", **kw)  # the loop's queue
    with pytest.raises(Exception, match="buffer_capacity"):
        jax.block_until_ready(net.record(X))


def test_record_overflow_is_an_error():
    net = small_net()
    assert int(net.record(X).n_spikes) > 2
    with pytest.raises(ex.SimulationError, match="^More than max_spikes=2 spikes"):
        jax.block_until_ready(net.record(X, max_spikes=2))


def test_too_tight_root_finder_tolerance_is_clamped_with_a_warning():
    """float32 cannot resolve 1e-12 at t=30: the tolerance is raised, not left to fail."""
    with pytest.warns(UserWarning, match="Root-finder tolerances"):
        tight = small_net(root_finder=optx.Newton(rtol=1e-12, atol=1e-12))
    default = small_net()
    t_tight, t_default = tight.ttfs(X), default.ttfs(X)
    assert np.any(np.isfinite(t_default))
    np.testing.assert_allclose(t_tight, t_default, atol=1e-4)


@eqx.filter_jit
def _ttfs_and_grad(net):
    """`net.ttfs(X)` and the gradient of its sum, in one program (compiled once
    per network structure: the tests below share `small_net()`'s)."""
    (_, ttfs), grads = eqx.filter_value_and_grad(lambda m: (lambda t: (t.sum(), t))(m.ttfs(X)), has_aux=True)(net)
    return ttfs, grads


def test_diffrax_event_path_agrees_with_fixed_step_path():
    """Same Euler solver through diffeqsolve+Event (user adjoint) and the lean loop.

    The two paths place their last step before a stop slightly differently
    (Diffrax snaps a step that ends within a few ulp of `t1`), so their Euler
    discretisations differ at O(1e-6) in float64; in float64 each path's gradient
    equals central differences of its own forward to ~1e-7. Here (float32) spike
    times must agree to 1e-4 and the gradients to 2% in norm.
    """
    lean = small_net()
    general = small_net(adjoint=dfx.RecursiveCheckpointAdjoint(checkpoints=64))
    (t1, g1), (t2, g2) = _ttfs_and_grad(lean), _ttfs_and_grad(general)
    assert np.any(np.isfinite(t1))
    np.testing.assert_allclose(t1, t2, atol=1e-4)
    g1, g2 = g1.neuron_model.weights, g2.neuron_model.weights
    assert float(jnp.linalg.norm(g1 - g2)) < 2e-2 * float(jnp.linalg.norm(g2))


# ----------------------------------------------------------------------------- models


class _Clock(ex.NeuronModel):
    """A user model whose state is one `(n,)` array: v' = 1, spike at v = 1, reset to 0."""

    def __init__(self, key, n_neurons, in_size, wmask, dtype=jnp.float32):
        self.dtype = dtype

    def init_state(self, n_neurons):
        return jnp.zeros((n_neurons,), self.dtype)

    def dynamics(self, t, y, args):
        return jnp.ones_like(y)

    def spike_condition(self, t, y):
        return y - 1.0

    def input_spike(self, y, from_idx, to_idx, valid_mask):
        return y

    def reset_spiked(self, y, spike_mask):
        return jnp.where(spike_mask, 0.0, y)


def test_a_state_of_one_array_per_neuron_is_one_observed_channel():
    net = ex.FFEvNN([2], 1, _Clock, 5.0, key=jax.random.PRNGKey(0))
    x = jnp.array([[9.0]])
    np.testing.assert_allclose(net.ttfs(x), [1.0, 1.0], atol=1e-5)
    states = net.state_at_t(x, jnp.array([0.5, 2.5]))
    np.testing.assert_allclose(states, [[[0.5], [0.5]], [[0.5], [0.5]]], atol=1e-5)


def test_parameters_are_hidden_unless_trainable():
    grads = _ttfs_and_grad(small_net())[1]
    names = {type(p).__name__ for p in jax.tree_util.tree_leaves(grads)}
    assert len(jax.tree_util.tree_leaves(grads.neuron_model)) == 2  # weights, ic
    trained = small_net(trainable=("tmem", "tsyn"))
    g = _ttfs_and_grad(trained)[1].neuron_model
    assert g.tmem.shape == (13,) and bool(jnp.any(g.tmem != 0)), names


def test_multi_neuron_model_lif_hidden_li_output():
    net = ex.FFEvNN(
        [10, 3], 5, ex.MultiNeuronModel, 30.0, key=jax.random.PRNGKey(0),
        neuron_models=[ex.LIF, ex.LI],
        neuron_model_kwargs=[{"wmean": 1.5, "wlim": 3.0}, {"tmem": 10.0}],
    )
    rec = net.record(X)
    spiking = set(np.asarray(rec.neurons[: int(rec.n_spikes)]).tolist())
    assert spiking and spiking <= set(range(10)), "hidden LIF spike, LI outputs never do"
    v = net.state_at_t(X, jnp.linspace(0.0, 30.0, 16))[..., 0]
    assert v.shape == (3, 16) and bool(jnp.any(v != 0))
    # Equivalent homogeneous check: the hidden layer behaves exactly like a LIF-only net.
    lif = small_net()
    lif = eqx.tree_at(lambda m: m.neuron_model.weights, lif, lif.neuron_model.weights)
    g = eqx.filter_jit(eqx.filter_grad(lambda m: m.state_at_t(X, jnp.array([30.0]))[..., 0].sum()))(net)
    assert all(bool(jnp.all(jnp.isfinite(s.weights))) for s in g.neuron_model.submodels)
    assert bool(jnp.any(g.neuron_model.submodels[0].weights != 0))


def test_multi_neuron_model_matches_single_model_when_all_neurons_share_it():
    kw = {"wmean": 1.5, "wlim": 3.0}
    single = small_net()
    multi = ex.FFEvNN(
        [10, 3], 5, ex.MultiNeuronModel, 30.0, key=jax.random.PRNGKey(0),
        neuron_models=[ex.LIF, ex.LIF], neuron_model_kwargs=[kw, kw],
    )
    w = single.neuron_model.weights
    multi = eqx.tree_at(
        lambda m: (m.neuron_model.submodels[0].weights, m.neuron_model.submodels[1].weights),
        multi, (w[:, :10], w[:, 10:]),
    )
    np.testing.assert_allclose(multi.ttfs(X), single.ttfs(X), atol=1e-5)


def test_multi_neuron_model_dendritic_hidden_li_output_trains():
    """The paper's heterogeneous example: dendritic hidden neurons, LI readout;
    state-based loss gradients reach both populations and are finite."""
    net = ex.FFEvNN(
        [6, 2], 5, ex.MultiNeuronModel, 30.0, key=jax.random.PRNGKey(0),
        neuron_models=[ex.DendriticNeuron, ex.LI],
        neuron_model_kwargs=[{"init_weights": 1.0}, {"tmem": 10.0}],
    )
    times = jnp.linspace(0.0, 30.0, 7)

    def loss(m):
        return jnp.sum(m.state_at_t(X, times)[..., 0] ** 2)

    rec = net.record(X)
    assert int(rec.n_spikes) > 0, "the dendritic hidden layer should spike"
    g = eqx.filter_jit(eqx.filter_grad(loss))(net).neuron_model.submodels  # (jit: a third of the eager time)
    for sub in g:
        leaves = jax.tree_util.tree_leaves(sub)
        assert all(bool(jnp.all(jnp.isfinite(a))) for a in leaves)
    assert bool(jnp.any(g[0].weights != 0)) and bool(jnp.any(g[1].weights != 0))


def test_mixed_models_agree_on_defaults():
    """Mixed models share adaptive settings where they agree on the solver; models whose
    bundles differ only in the engine (QIF runs layered) get `engine="auto"`."""
    from eventax.neuron_models.multi import agreed_defaults

    qif, eif = ex.QIF.network_defaults, ex.EIF.network_defaults
    assert qif["engine"] == "layered" and eif["engine"] == "auto"
    assert agreed_defaults([ex.QIF]) == qif
    assert agreed_defaults([ex.QIF, ex.EIF]) == {**qif, "engine": "auto"} == eif
    assert agreed_defaults([ex.QIF, ex.LI]) == {**qif, "engine": "auto"}
    assert agreed_defaults([ex.EIF, ex.LI]) == eif
    net = ex.FFEvNN([4, 2], 3, ex.QIF, 30.0)
    assert net.engine == "layered" and isinstance(net.stepsize_controller, dfx.PIDController)


def test_use_delays_says_whether_delays_are_set():
    """(eventax 0.1.0's attribute: its scripts read it.)"""
    key = jax.random.PRNGKey(0)
    assert not ex.FFEvNN([3], 2, ex.LIF, 10.0, key=key).use_delays
    assert ex.FFEvNN([3], 2, ex.LIF, 10.0, key=key, init_delays=0.0).use_delays
    assert ex.FFEvNN([3], 2, ex.LIF, 10.0, key=key, init_axonal_delays=np.zeros(5)).use_delays
