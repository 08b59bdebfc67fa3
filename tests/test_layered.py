"""The layered engine (`eventax._layered`) against independent truths.

- the general event loop with a float64 Tsit5 solve at a fine step (every forward
  function, with and without delays, several neuron models);
- the closed form of a LIF neuron with `tmem = 2 tsyn`;
- central finite differences in float64 of the same forward computation, at tied
  input times, tied synaptic delays and simultaneous threshold crossings (for the
  event loop too);
- the quintic Hermite interpolant reproducing a quintic exactly.
"""

from types import SimpleNamespace

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eventax as ex
from eventax import _layered as layered
from eventax._layered import _RETAKE, _interpolate, _Step, layers, step_sizes


def _net(engine, dtype=jnp.float64, h=0.25, model=ex.LIF, layers_=(6, 2), **kw):
    """`h`: the layered engine's constant step, or a `PIDController` (first step 0.5);
    the event loop always takes constant steps of 0.01."""
    params = dict(thresh=1.0, tsyn=5.0, tmem=10.0) if model is ex.LIF else {}
    params.update(kw)
    if engine != "layered":
        h = 0.01
    if isinstance(h, dfx.PIDController):
        params.update(stepsize_controller=h)
        h = 0.5
    return ex.FFEvNN(
        list(layers_), 3, model, 30.0, key=jax.random.PRNGKey(1), solver=dfx.Tsit5(),
        solver_stepsize=h, engine=engine, dtype=dtype, **params,
    )


# Adaptive steps tight enough that the layered solve's error is far below the event
# loop's at constant step 0.01 (the truth these tests compare with).
PID = dfx.PIDController(rtol=1e-10, atol=1e-10)


X = np.array([[1.0], [3.5], [6.0]])
# strong enough that hidden neurons spike several times and both outputs spike
STRONG = dict(wmean=4.0, wlim=2.0)


def test_layers_finds_depths_and_rejects_cycles():
    w = np.zeros((5, 4), bool)
    w[4, 0] = w[0, 1] = w[1, 2] = w[0, 2] = w[4, 3] = True
    got = layers(w, 4)
    assert [list(g) for g in got] == [[0, 3], [1], [2]]
    w[2, 0] = True  # 0 -> 1 -> 2 -> 0
    assert layers(w, 4) is None
    with pytest.raises(ValueError, match="engine='layered'"):
        ex.EvNN(ex.LIF, 4, 10.0, 1, wmask=w, engine="layered")


def test_quintic_interpolant_is_exact_for_quintics(x64):
    # y(s) = sum a_k s^k: values and first two derivatives at 0 and 1 determine it.
    a = np.array([0.3, -1.2, 0.7, 2.0, -0.4, 0.9])
    poly = np.polynomial.Polynomial(a)
    d1, d2 = poly.deriv(), poly.deriv(2)
    one = lambda v: jnp.array([v])  # noqa: E731
    st = _Step(one(poly(1.0)), one(d1(0.0)), one(d1(1.0)), one(d2(0.0)), one(d2(1.0)), (), None)
    for s in (0.0, 0.13, 0.5, 0.77, 1.0):
        got = _interpolate(one(poly(0.0)), st, jnp.array([s]))
        np.testing.assert_allclose(got, [poly(s)], rtol=0, atol=1e-14)


@pytest.mark.parametrize("delays", [False, True])
def test_every_forward_function_matches_the_event_loop(x64, delays):
    kw = dict(STRONG, layer_capacity=200, max_event_steps=2000)
    if delays:  # synaptic and axonal delays together
        kw.update(dlim=3.0, axonal_dlim=3.0)
    fast, ref = _net("layered", **kw), _net("loop", **kw)
    assert fast.layered and fast.engine == "layered"
    x = jnp.asarray(X)
    # Tsit5 at step 0.25 (quintic interpolant) against step 0.01: both far below 1e-6.
    np.testing.assert_allclose(fast.ttfs(x), ref.ttfs(x), atol=1e-6)
    a, b = fast.record(x, 200), ref.record(x, 200)
    assert int(a.n_spikes) == int(b.n_spikes) > 10
    np.testing.assert_array_equal(a.neurons, b.neurons)
    np.testing.assert_allclose(a.times, b.times, atol=1e-6)
    times = jnp.array([0.5, 4.0, 7.25, 20.0])
    np.testing.assert_allclose(fast.state_at_t(x, times), ref.state_at_t(x, times), atol=1e-6)
    np.testing.assert_allclose(
        fast.spikes_until_t(x, 25.0, 6), ref.spikes_until_t(x, 25.0, 6), atol=1e-6
    )


def test_observation_times_in_any_order_with_ties(x64):
    """Each output visits the observation times in time order with a pointer; times
    given out of order and tied come back in the given order, tied ones equal, and
    match the event loop (float64 Tsit5 0.25 against step 0.01: both far below 1e-6),
    with the gradients of their sum of squares with respect to the weights and to
    the (untied) observation times."""
    kw = dict(STRONG, layer_capacity=200, max_event_steps=2000)
    fast, ref = _net("layered", **kw), _net("loop", **kw)
    x = jnp.asarray(X)
    times = jnp.array([20.0, 0.5, 7.25, 4.0, 7.25, 13.0])
    got = np.asarray(fast.state_at_t(x, times))
    np.testing.assert_allclose(got, ref.state_at_t(x, times), atol=1e-6)
    np.testing.assert_array_equal(got[:, 2], got[:, 4])
    assert np.all(np.abs(got[:, [0, 5], 1]) > 1.0)  # (the currents late in the trial: not left at zero)

    def loss(net, times):
        return jnp.sum(net.state_at_t(x, times) ** 2)

    # one program per engine for both gradients (the network's and the times')
    grad = eqx.filter_jit(eqx.filter_grad(lambda both: loss(*both)))
    (g_fast, d_fast), (g_ref, d_ref) = grad((fast, times)), grad((ref, times))
    for a, b in zip(jax.tree_util.tree_leaves(g_fast), jax.tree_util.tree_leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    untied = np.array([0, 1, 3, 5])
    d_fast = np.asarray(d_fast)
    np.testing.assert_allclose(d_fast[untied], np.asarray(d_ref)[untied], rtol=1e-5, atol=1e-6)
    # and against central differences (h = 1e-5 where the state is smooth: error ~1e-10
    # relative); 13.0 and 20.0 lie on the solver's grid, where a tied `minimum` once
    # halved the derivative
    for k in (0, 5):
        e = jnp.zeros_like(times).at[k].set(1e-5)
        fd = (loss(fast, times + e) - loss(fast, times - e)) / 2e-5
        np.testing.assert_allclose(d_fast[k], fd, rtol=1e-5)


@pytest.mark.parametrize("engine", ["layered", "loop"])
def test_an_observation_tied_with_an_arrival(x64, engine):
    """An observation at an input arrival's time is the left limit (before the arrival
    lands); its derivative with respect to the observation time is the left one
    (second-order backward differences, h = 1e-4: error ~1e-8), and a later
    observation's derivative with respect to that arrival time stays the smooth one
    (central differences). A tied `minimum` once split the derivative between them."""
    net = _net(engine, layers_=(2,), max_event_steps=2000)
    x = jnp.asarray(X)  # (an arrival at 3.5)

    def observed(times, x, k):
        return jnp.sum(net.state_at_t(x, times)[:, k] ** 2)

    times = jnp.array([3.5, 10.0])
    d_time = eqx.filter_jit(jax.grad(observed))(times, x, 0)[0]
    h = 1e-4
    g = [observed(times.at[0].add(-j * h), x, 0) for j in range(3)]
    np.testing.assert_allclose(d_time, (3 * g[0] - 4 * g[1] + g[2]) / (2 * h), rtol=1e-6)
    d_input = eqx.filter_jit(jax.grad(observed, argnums=1))(times, x, 1)[1, 0]
    fd = (observed(times, x.at[1, 0].add(h), 1) - observed(times, x.at[1, 0].add(-h), 1)) / (2 * h)
    np.testing.assert_allclose(d_input, fd, rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("engine", ["layered", "loop"])
def test_state_is_recorded_at_an_outputs_spike_time(x64, engine, dtype):
    """Observed at its own spike time, as the last observation (where the trial ends),
    an output's state is recorded: its membrane is at threshold (the left limit) or at
    the reset value (whether the observation falls just before or just after the spike
    is decided at rounding level), and its current is continuous. (The layered engine
    once ended the neuron's clock at the crossing without recording: zeros.)
    Tolerances: v is 1 or 0 to 1e-4: the observed run ends at `t_k`, so its last steps
    differ from the `ttfs` run's and its crossing moves by the solver's error (~1e-6 at
    the defaults, measured 2.4e-6 in v) or float32 rounding; the current changes by
    ~1e-5 relative over 1e-5 time units."""
    nets = [  # (the Tsit5 nets of this file, and the model's own default solver)
        _net(engine, dtype=dtype, **STRONG, max_event_steps=2000),
        ex.FFEvNN([20, 2], 3, ex.LIF, 50.0, key=jax.random.PRNGKey(0), wmean=6.0, wlim=3.0,
                  engine=engine, dtype=dtype),
    ]
    x = jnp.asarray([[1.0], [2.0], [5.0]], dtype)
    ttfs = eqx.filter_jit(lambda net: net.ttfs(x))
    state_at_t = eqx.filter_jit(lambda net, t: net.state_at_t(x, t))  # (compiled once per net)
    for net in nets:
        first = np.asarray(ttfs(net))
        assert np.all(np.isfinite(first))
        for k, t_k in enumerate(first):
            seen = np.asarray(state_at_t(net, jnp.array([t_k - 1e-5, t_k], dtype)))[k]
            assert min(abs(seen[1, 0] - 1.0), abs(seen[1, 0])) <= 1e-4
            assert abs(seen[1, 1]) > 1.0
            np.testing.assert_allclose(seen[1, 1], seen[0, 1], rtol=1e-4)


def test_lif_closed_form(x64):
    """One LIF neuron, tmem = 2 tsyn: v(t) = sum_k w_k (e^{-(t-t_k)/10} - e^{-(t-t_k)/5})
    before its first spike (tmem v' = -v + i, tsyn i' = -i, i jumps by w)."""
    w = np.array([[0.0], [6.6], [4.5], [-1.2]])
    net = ex.FFEvNN(
        [1], 3, ex.LIF, 30.0, thresh=1.0, tsyn=5.0, tmem=10.0, init_weights=w,
        init_bias=0.0, dtype=jnp.float64, solver=dfx.Tsit5(), solver_stepsize=1.0,
        engine="layered",
    )
    t_in = np.array([0.5, 2.0, 3.0])

    def v(t):
        s = np.clip(t - t_in, 0, None)
        return np.sum(w[1:, 0] * (np.exp(-s / 10) - np.exp(-s / 5)) * (t >= t_in))

    grid = np.linspace(0.0, 30.0, 30001)  # first grid point above threshold, then bisect
    above = np.flatnonzero(np.array([v(t) for t in grid]) >= 1.0)
    lo, hi = grid[above[0] - 1], grid[above[0]]
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if v(mid) < 1.0 else (lo, mid)
    got = float(net.ttfs(jnp.asarray(t_in[:, None]))[0])
    # Tsit5 at step 1.0: quintic interpolation error, far below 1e-5
    assert abs(got - lo) < 1e-6


def _fd(f, x, eps=1e-6):
    x = np.asarray(x, float)
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        out[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return out


def _loss(net, x):
    t = net.ttfs(x)
    return jnp.sum(jnp.where(jnp.isfinite(t), t, 30.0) * jnp.array([1.0, -0.7]))


@pytest.mark.parametrize("engine", ["layered", "loop"])
def test_gradient_tied_input_times(x64, engine):
    """Two channels at the same instant: each gets its own derivative."""
    net = _net(engine, wmean=2.0, wlim=2.0)
    x = np.array([[2.0], [2.0], [5.0]])
    grad = jax.jit(jax.grad(lambda x: _loss(net, x)))
    fn = jax.jit(lambda x: _loss(net, x))
    got = np.asarray(grad(jnp.asarray(x)))
    want = _fd(lambda x: float(fn(jnp.asarray(x))), x)
    assert np.all(np.isfinite(got)) and np.abs(want).max() > 0.1
    # central differences of a forward that is smooth here: agreement to FD error
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert abs(got[0, 0] - got[1, 0]) > 1e-3  # different weights: different derivatives


@pytest.mark.parametrize("engine", ["layered", "loop"])
def test_gradient_tied_synaptic_delays(x64, engine):
    """A scalar `init_delays`: every synapse of a source has the same delay."""
    net = _net(engine, wmean=2.0, wlim=2.0, init_delays=1.0)
    x = jnp.asarray(X)
    g = jax.jit(jax.grad(lambda d: _loss(eqx_set(net, "delays", d), x)))(net.delays)
    fn = jax.jit(lambda d: _loss(eqx_set(net, "delays", d), x))
    rows = [(8, 0), (8, 3), (9, 1), (0, 6), (2, 7)]  # input->hidden, hidden->output
    d0 = np.asarray(net.delays)
    for r, c in rows:
        def f(v, r=r, c=c):
            d = d0.copy()
            d[r, c] = v
            return float(fn(jnp.asarray(d)))
        want = (f(d0[r, c] + 1e-6) - f(d0[r, c] - 1e-6)) / 2e-6
        np.testing.assert_allclose(g[r, c], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("engine", ["layered", "loop"])
def test_gradient_simultaneous_crossings(x64, engine):
    """Hidden neurons 0 and 1 share their input weights and cross together."""
    net = _net(engine, wmean=2.0, wlim=2.0)
    w = np.array(net.neuron_model.weights)
    w[8:, 1] = w[8:, 0]
    net = eqx_set(net, "neuron_model.weights", jnp.asarray(w))
    x = jnp.asarray(X)
    fn = jax.jit(lambda w: _loss(eqx_set(net, "neuron_model.weights", w), x))
    g = np.asarray(jax.jit(jax.grad(lambda w: _loss(eqx_set(net, "neuron_model.weights", w), x)))(jnp.asarray(w)))
    for r, c in [(8, 0), (8, 1), (0, 6), (1, 6), (1, 7)]:
        def f(v, r=r, c=c):
            ww = w.copy()
            ww[r, c] = v
            return float(fn(jnp.asarray(ww)))
        want = (f(w[r, c] + 1e-6) - f(w[r, c] - 1e-6)) / 2e-6
        np.testing.assert_allclose(g[r, c], want, rtol=1e-5, atol=1e-6)
    assert abs(g[8, 0] - g[8, 1]) > 1e-3  # not split equally between the tied neurons


def eqx_set(net, path, value):
    import equinox as eqx

    def get(m):
        for name in path.split("."):
            m = getattr(m, name)
        return m

    return eqx.tree_at(get, net, value)


# The step of the layered engine per model: the EIF and Izhikevich upswings are
# stiff (exponential / quadratic blow-up in mV/ms), so they take adaptive steps.
@pytest.mark.parametrize(
    "model, h, kw",
    [
        (ex.QIF, 0.25, dict(tmem=5.0, tsyn=5.0, wmean=1.0, wlim=1.0)),
        (ex.EIF, PID, dict(wmean=3.0, wlim=2.0)),
        (ex.Izhikevich, PID, dict(wmean=40.0, wlim=20.0)),
        (ex.ALIF, 0.25, dict(thresh=1.0, tsyn=5.0, tmem=10.0, wmean=4.0, wlim=2.0)),
        (ex.AMOS(ex.LIF), 0.25, dict(thresh=1.0, tsyn=5.0, tmem=10.0, wmean=4.0, wlim=2.0)),
        (ex.Refractory(ex.LIF), 0.01, dict(thresh=1.0, tsyn=5.0, tmem=10.0, wmean=4.0, wlim=2.0, t_refrac=1.0)),
    ],
    ids=["QIF", "EIF", "Izhikevich", "ALIF", "AMOS", "Refractory"],
)
def test_builtin_models_match_the_event_loop(x64, model, h, kw):
    kw = dict(kw, layer_capacity=200, max_event_steps=3000)
    fast = _net("layered", model=model, h=h, **kw)
    ref = _net("loop", model=model, **kw)
    x = jnp.asarray(X)
    a, b = fast.record(x, 200), ref.record(x, 200)
    assert int(a.n_spikes) == int(b.n_spikes) > 0
    np.testing.assert_array_equal(a.neurons, b.neurons)
    # Izhikevich (mV/ms, quadratic upswing): both solves carry ~1e-5 ms of error.
    # Refractory: the release (clock = 0) falls inside a solver step in both
    # engines and is treated there to first order in the step, O(h) = 1e-3.
    atol = {"Izhikevich": 1e-4, "RefractoryLIF": 1e-3}.get(model.__name__, 1e-5)
    np.testing.assert_allclose(a.times, b.times, atol=atol)


def test_adaptive_steps_gradient_matches_the_event_loop(x64):
    """EIF with adaptive steps: spike times and d loss / d weights of the layered
    engine against the event loop at constant step 0.01 (float64 both)."""
    kw = dict(model=ex.EIF, wmean=3.0, wlim=2.0, layer_capacity=200, max_event_steps=3000)
    fast, ref = _net("layered", h=PID, **kw), _net("loop", **kw)
    x = jnp.asarray(X)

    def value_and_grads(net):
        fn = jax.jit(jax.value_and_grad(lambda m: _loss(eqx_set(net, "neuron_model", m), x)))
        value, g = fn(net.neuron_model)
        return float(value), np.asarray(g.weights)

    (v, g), (v_want, want) = value_and_grads(fast), value_and_grads(ref)
    assert abs(v - v_want) < 1e-6  # spike times within 1e-6 (the loss weights them by 1, -0.7)
    assert np.abs(want).max() > 0.1
    # both are exact derivatives of solves within ~1e-7 of the true trajectory; their
    # difference is of that order relative to the spike times' sensitivity
    np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_loop_continuation_gives_the_same_values_and_gradients(x64, monkeypatch):
    """A layer's loop saves its first iterations for the backward pass and recomputes
    the rest from checkpoints: with only 3 iterations saved (most of the trial
    recomputed) loss and gradient are those of the default split, to rounding."""
    net, x = _net("layered", **STRONG), jnp.asarray(X)

    def value_and_grads():
        fn = jax.jit(jax.value_and_grad(lambda m: _loss(eqx_set(net, "neuron_model", m), x)))
        value, g = fn(net.neuron_model)
        return float(value), np.asarray(g.weights)

    v, g = value_and_grads()
    monkeypatch.setattr(layered, "_MAX_SAVED", 3)
    v3, g3 = value_and_grads()
    assert np.abs(g).max() > 0.01
    assert abs(v3 - v) <= 1e-12
    np.testing.assert_allclose(g3, g, rtol=1e-10, atol=1e-12)


def test_event_loop_recomputation_gives_the_same_values_and_gradients(x64):
    """The event loop with only 2 iterations saved (`checkpoints=2`: the rest of the
    trial recomputed segment by segment in the backward pass) gives the loss and
    gradient of its default (64 saved, the whole trial), to rounding."""

    def value_and_grads(**kw):
        net = _net("loop", **STRONG, **kw)
        value, g = jax.jit(jax.value_and_grad(lambda m: _loss(eqx_set(net, "neuron_model", m), X)))(
            net.neuron_model
        )
        return float(value), np.asarray(g.weights)

    v, g = value_and_grads()
    v2, g2 = value_and_grads(checkpoints=2)
    assert np.abs(g).max() > 0.01
    assert abs(v2 - v) <= 1e-12
    np.testing.assert_allclose(g2, g, rtol=1e-10, atol=1e-12)


def test_adaptive_steps_never_skip_a_spike(x64):
    """A first step far too long (the EIF upswing overflows to its linear
    continuation inside it) in float32: steps are rejected and retaken, and every
    spike of the float64 truth is found, by the same neurons, in the same order."""
    kw = dict(model=ex.EIF, wmean=3.0, wlim=2.0, layer_capacity=200, max_event_steps=3000)
    ref = _net("loop", **kw)
    fast = ex.FFEvNN(
        [6, 2], 3, ex.EIF, 30.0, key=jax.random.PRNGKey(1), solver=dfx.Tsit5(),
        solver_stepsize=10.0, stepsize_controller=dfx.PIDController(rtol=1e-5, atol=1e-5),
        engine="layered", dtype=jnp.float32, wmean=3.0, wlim=2.0, layer_capacity=200,
    )
    fast = eqx_set(fast, "neuron_model.weights", jnp.asarray(ref.neuron_model.weights, jnp.float32))
    a, b = fast.record(jnp.asarray(X, jnp.float32), 200), ref.record(jnp.asarray(X), 200)
    n = int(b.n_spikes)
    assert int(a.n_spikes) == n > 5
    np.testing.assert_array_equal(a.neurons, b.neurons)
    # rtol 1e-5 in float32 on this slowly rising net: spike times to a few 1e-3 (measured
    # 2.7e-3 at most; 1e-2 at rtol 1e-4)
    np.testing.assert_allclose(np.asarray(a.times[:n]), np.asarray(b.times[:n]), atol=1e-2)


def test_adaptive_crossing_that_cannot_be_located_is_retaken_shorter(x64):
    """Where the step's interpolant overflowed (root not found, or not finite), the
    step is rejected and retaken a `factormin` shorter, never accepted past the
    threshold; a crossing inside the step is retaken once, to end just past it."""
    steps = step_sizes(_net("layered", h=PID))
    c = SimpleNamespace(t=jnp.zeros(4), retook=jnp.array([False, False, False, True]))
    dt, h = jnp.full(4, 2.0), jnp.full(4, 3.0)
    sought = jnp.array([True, True, True, True])
    found = jnp.array([False, True, True, True])
    t_x = jnp.array([1.0, jnp.nan, 1.0, 1.0])
    crossed, ok, h_next, retook = steps.settle(sought, found, jnp.ones(4, bool), h, c, dt, t_x)
    np.testing.assert_array_equal(crossed, [False, False, False, True])
    np.testing.assert_array_equal(ok, [False, False, False, True])
    np.testing.assert_allclose(h_next[:3], [2.0 * steps.factormin] * 2 + [1.0 * _RETAKE])
    np.testing.assert_array_equal(retook, [False, False, True, False])


def test_multi_neuron_model_layers(x64):
    kw = dict(
        neuron_model=ex.MultiNeuronModel, neuron_models=[ex.LIF, ex.LI],
        neuron_model_kwargs=[dict(thresh=1.0, tsyn=5.0, tmem=10.0, wmean=4.0, wlim=2.0),
                             dict(tsyn=5.0, tmem=10.0)],
        max_event_steps=2000,
    )
    nets = [ex.FFEvNN([6, 2], 3, max_solver_time=30.0, key=jax.random.PRNGKey(2), dtype=jnp.float64,
                      solver=dfx.Tsit5(), solver_stepsize=h, engine=e, **kw)
            for e, h in (("layered", 0.25), ("loop", 0.01))]
    times = jnp.linspace(0.0, 30.0, 31)
    x = jnp.asarray(X)
    np.testing.assert_allclose(nets[0].state_at_t(x, times), nets[1].state_at_t(x, times), atol=1e-6)


def test_layer_capacity_overflow_is_an_error():
    net = _net("layered", dtype=jnp.float32, layer_capacity=3, **STRONG)
    with pytest.raises(Exception, match="layer_capacity=3"):
        jax.block_until_ready(net.record(jnp.asarray(X, jnp.float32), 50))


def test_auto_engine_choice():
    """`engine="auto"`: layered where it can run, except for runs that stop at the
    outputs' first spikes with adaptive steps (the event loop stops the whole network
    there); observations after the first spikes keep it layered."""
    from eventax._layered import Layered
    from eventax._simulate import EventLoop
    from eventax.simulation import Recorders

    eif, lif = ex.FFEvNN([4, 2], 3, ex.EIF, 30.0), ex.FFEvNN([4, 2], 3, ex.LIF, 30.0, thresh=1.0, tsyn=5.0, tmem=10.0)
    assert eif.engine == lif.engine == "auto" and eif.layered and lif.layered
    first = Recorders(stop_at_first_output=True)
    observed = Recorders(stop_at_first_output=True, obs_times=jnp.array([10.0, 20.0]))
    assert isinstance(eif._engine(first), EventLoop)
    assert isinstance(eif._engine(observed), Layered) and isinstance(eif._engine(Recorders()), Layered)
    assert isinstance(lif._engine(first), Layered)
    recurrent = ex.EvNN(ex.LIF, 3, 10.0, 1, thresh=1.0, tsyn=5.0, tmem=10.0, engine="auto")
    assert not recurrent.layered and isinstance(recurrent._engine(Recorders()), EventLoop)
