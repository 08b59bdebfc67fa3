"""Event semantics of `EvNN` / `FFEvNN` with the default float32 settings.

Default settings: float32, `diffrax.Euler()` with a constant step
(`solver_stepsize`, 0.001 for `EvNN`, 0.01 for `FFEvNN`), Newton root finder.
Where a test compares with an exact answer it uses the closed form of the LIF
equations or `lif_reference` below (an independent float64 event-driven LIF
simulator), with a tolerance that covers the Euler error.
"""

from __future__ import annotations

from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eventax as ex


@pytest.fixture(autouse=True)
def _float32_mode():
    """These tests use the float32 defaults: run them with x64 off.

    (test_exactness.py switches x64 on for its own tests; a float32 network with
    x64 on is tested by `test_float32_network_with_x64_enabled`.)
    """
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    yield
    jax.config.update("jax_enable_x64", previous)


class VoltageJumpLIF(ex.LIF):
    """A LIF whose input spikes jump the membrane `v` (not the current `i`).

    With the built-in LIF an input only changes `i`, so `v` is continuous; this
    variant lets one input lift a neuron above threshold instantly.
    """

    input_channel: ClassVar[int] = 0  # spikes add their weight to channel 0, `v`


def lif_reference(weights, wmask, ic, thresh, tsyn, tmem, in_times, t_end, grid=1e-3):
    """Exact event-driven simulation of a LIF network (no delays, vreset = 0), float64.

    Between events every neuron follows the closed form (s = time since the event)
        i(s) = i0 e^{-s/tsyn},
        v(s) = ic + A e^{-s/tsyn} + (v0 - ic - A) e^{-s/tmem},  A = i0 tsyn/(tsyn - tmem).
    The first threshold crossing is bracketed on a `grid` and refined by
    bisection; a spike resets v to 0 and is delivered to its targets at once.
    Returns the list of (time, neuron) in time order.
    """
    weights = np.where(np.asarray(wmask) != 0, np.asarray(weights, float), 0.0)
    n = weights.shape[1]
    ic = np.broadcast_to(np.asarray(ic, float), (n,))
    pending = sorted(
        (float(t), n + k)
        for k in range(weights.shape[0] - n)
        for t in np.atleast_1d(in_times[k])
        if np.isfinite(t)
    )
    v, i, t = np.zeros(n), np.zeros(n), 0.0
    spikes = []

    def evolve(v, i, s):
        a = i * tsyn / (tsyn - tmem)
        return ic + a * np.exp(-s / tsyn) + (v - ic - a) * np.exp(-s / tmem), i * np.exp(-s / tsyn)

    while t < t_end:
        t_next = min(pending[0][0] if pending else np.inf, t_end)
        s_grid = np.append(np.arange(grid, t_next - t, grid), t_next - t)
        above = evolve(v[None], i[None], s_grid[:, None])[0] >= thresh
        if above.any():
            k = int(np.argmax(above.any(axis=1)))
            lo, hi = (0.0 if k == 0 else s_grid[k - 1]), s_grid[k]
            for _ in range(100):
                mid = 0.5 * (lo + hi)
                if np.any(evolve(v, i, mid)[0] >= thresh):
                    hi = mid
                else:
                    lo = mid
            v, i = evolve(v, i, hi)
            j = int(np.argmax(v))
            t += hi
            v[j] = 0.0
            spikes.append((t, j))
            i = i + weights[j]
            continue
        v, i = evolve(v, i, t_next - t)
        t = t_next
        while pending and pending[0][0] <= t:
            i = i + weights[pending.pop(0)[1]]
    return spikes


def euler_spike_time(ic, tmem, thresh, h):
    """Where Euler (step h from t = 0) plus linear interpolation crosses thresh."""
    v, n = 0.0, 0
    while True:
        v_next = v + h * (ic - v) / tmem
        if v_next >= thresh:
            return n * h + (thresh - v) / (v_next - v) * h
        v, n = v_next, n + 1


NO_INPUT = np.array([[np.inf]])


def bias_neurons(ics, max_solver_time, **kwargs):
    ics = np.atleast_1d(ics)
    n = len(ics)
    return ex.EvNN(
        ex.LIF, n, max_solver_time, 1, wmask=np.zeros((n + 1, n)), init_weights=0.0,
        init_bias=ics, thresh=1.0, tsyn=5.0, tmem=10.0, **kwargs,
    )


# ------------------------------------------------------------------ root finding


@pytest.mark.parametrize("ic", [1.2, 1.5, 2.5])
def test_spike_time_is_root_found_not_on_the_step_grid(ic):
    """With Euler step 0.5 the spike time lies between grid points.

    It equals the root of the Euler solution's linear interpolant (tolerance
    1e-4: float32 resolution and the root finder's tolerance of a few ulp of
    t_end; measured <= 4e-6), is not a multiple of 0.5, and is within the Euler
    error of the closed form T = tmem ln(ic/(ic - 1)): Euler's relative error
    here is ~h/(2 tmem) = 2.5% (measured 2.5%), tolerance 5% of T. Nothing
    happens before the first spike, so the Euler grid is k * 0.5.
    """
    h = 0.5
    net = bias_neurons(ic, 30.0, solver_stepsize=h)
    t = float(net.ttfs(NO_INPUT)[0])
    t_euler = euler_spike_time(ic, 10.0, 1.0, h)
    t_exact = 10.0 * np.log(ic / (ic - 1.0))
    print(f"\nic={ic}: t={t:.6f} Euler interpolant root={t_euler:.6f} (err {t - t_euler:.1e}),"
          f" closed form={t_exact:.6f}")
    assert abs(t - t_euler) < 1e-4
    assert abs(t / h - round(t / h)) > 0.01
    assert abs(t - t_exact) < 0.05 * t_exact


def test_default_step_converges_to_closed_form():
    """With the default EvNN step (0.001) the Euler error is small.

    Tolerance 5e-3 absolute on a spike at ~11 (Euler O(h); measured ~3e-4).
    """
    t = float(bias_neurons(1.5, 15.0).ttfs(NO_INPUT)[0])
    print(f"\nstep 0.001: t={t:.6f}, closed form={10 * np.log(3):.6f}")
    assert abs(t - 10.0 * np.log(3.0)) < 5e-3


# ------------------------------------------------------------------ input spikes


def test_input_lifting_above_threshold_spikes_at_the_input_time():
    """An input that lifts v above threshold makes the neuron spike at that instant.

    The spike time equals the (float32) input time exactly; a sub-threshold
    input gives no spike.
    """
    t_in = 2.37
    for w, spikes in [(1.5, True), (0.6, False)]:
        net = ex.EvNN(VoltageJumpLIF, 1, 10.0, 1, wmask=np.array([[0], [1]]),
                      init_weights=w, init_bias=0.0, thresh=1.0, tsyn=5.0, tmem=10.0)
        x = jnp.array([[t_in]])
        t = net.ttfs(x)[0]
        rec = net.record(x, max_spikes=4)
        if spikes:
            assert t == jnp.float32(t_in)
            assert int(rec.n_spikes) == 1 and rec.times[0] == jnp.float32(t_in)
        else:
            assert jnp.isinf(t) and int(rec.n_spikes) == 0


def test_simultaneous_inputs_are_all_delivered():
    """Several input spikes at the same time (K > 1 and several channels) all arrive.

    LIF: after 5 simultaneous spikes at t = 1 (channel weights 0.5, 0.25, 1.0;
    channels 0 and 2 twice) i(t) = 3.25 e^{-(t-1)/tsyn}; at t = 1 itself the
    observation is the left limit (0). Tolerance: 1e-3 relative (Euler with
    step h = 0.001 on i' = -i/tsyn has relative error ~ h (t-1) / (2 tsyn^2)
    <= 1e-4; measured ~1e-4).
    VoltageJumpLIF: two jumps of 0.6 at the same time reach threshold, one
    does not.
    """
    w = np.array([[0.0], [0.5], [0.25], [1.0]])
    net = ex.EvNN(ex.LIF, 1, 10.0, 3, wmask=np.array([[0], [1], [1], [1]]), init_weights=w,
                  init_bias=0.0, thresh=100.0, tsyn=5.0, tmem=10.0)
    x = jnp.array([[1.0, 1.0], [1.0, jnp.inf], [1.0, 1.0]])
    times = jnp.array([0.5, 1.0, 3.0, 6.0])
    states = np.asarray(net.state_at_t(x, times))[0]
    expected_i = np.array([0.0, 0.0, 3.25 * np.exp(-2.0 / 5.0), 3.25 * np.exp(-5.0 / 5.0)])
    rel = np.max(np.abs(states[2:, 1] - expected_i[2:]) / expected_i[2:])
    print(f"\nsimultaneous inputs: i = {states[:, 1]}, expected {expected_i}, rel err {rel:.1e}")
    assert np.all(states[:2] == 0.0)
    assert rel < 1e-3

    jump = dict(init_bias=0.0, thresh=1.0, tsyn=5.0, tmem=10.0, init_weights=0.6)
    two_channels = ex.EvNN(VoltageJumpLIF, 1, 10.0, 2, wmask=np.array([[0], [1], [1]]), **jump)
    assert two_channels.ttfs(jnp.array([[2.0], [2.0]]))[0] == 2.0
    assert jnp.isinf(two_channels.ttfs(jnp.array([[2.0], [jnp.inf]]))[0])
    one_channel = ex.EvNN(VoltageJumpLIF, 1, 10.0, 1, wmask=np.array([[0], [1]]), **jump)
    assert one_channel.ttfs(jnp.array([[2.0, 2.0]]))[0] == 2.0
    assert jnp.isinf(one_channel.ttfs(jnp.array([[2.0, jnp.inf]]))[0])


def test_inf_inputs_mean_no_spike():
    """`inf` input times are absent spikes.

    All-inf input: no spike at all, outputs `inf`. Padding with inf changes
    nothing: x = [[1, inf]] gives exactly the result of x = [[1]].
    """
    net = ex.EvNN(ex.LIF, 1, 10.0, 1, wmask=np.array([[0], [1]]), init_weights=6.0,
                  init_bias=0.0, thresh=1.0, tsyn=2.0, tmem=4.0, solver_stepsize=0.01)
    assert int(net.record(jnp.array([[jnp.inf, jnp.inf]]), max_spikes=4).n_spikes) == 0
    assert jnp.isinf(net.ttfs(jnp.array([[jnp.inf]]))[0])
    t_plain = net.ttfs(jnp.array([[1.0]]))
    t_padded = net.ttfs(jnp.array([[1.0, jnp.inf]]))
    assert jnp.isfinite(t_plain[0]) and t_plain[0] == t_padded[0]
    ts = jnp.array([2.0, 5.0])
    assert jnp.array_equal(net.state_at_t(jnp.array([[1.0]]), ts),
                           net.state_at_t(jnp.array([[1.0, jnp.inf]]), ts))


# ------------------------------------------------------------------ ordering


@pytest.mark.parametrize("ics", [(1.5, 1.5005), (1.5005, 1.5)])
def test_two_crossings_in_one_solver_step_are_ordered(ics):
    """Two neurons crossing inside one Euler step (0.5) are reported earlier first.

    The neuron with the larger bias crosses first (whatever its index); both
    spikes lie in the same step [10.5, 11]; the first equals its Euler
    interpolant root (1e-4), the second is within 1e-3 of its own (the solve
    restarts at the first spike).
    """
    h = 0.5
    net = bias_neurons(np.array(ics), 20.0, solver_stepsize=h)
    rec = net.record(NO_INPUT, max_spikes=8)
    n = int(rec.n_spikes)
    times, neurons = np.asarray(rec.times[:n]), np.asarray(rec.neurons[:n])
    first = int(np.argmax(ics))
    print(f"\nics={ics}: record {list(zip(times.round(6), neurons))}")
    assert n == 2
    assert neurons.tolist() == [first, 1 - first]
    assert times[0] < times[1]
    assert 10.5 < times[0] and times[1] < 11.0
    assert abs(times[0] - euler_spike_time(max(ics), 10.0, 1.0, h)) < 1e-4
    assert abs(times[1] - euler_spike_time(min(ics), 10.0, 1.0, h)) < 1e-3
    np.testing.assert_array_equal(np.asarray(net.ttfs(NO_INPUT))[[first, 1 - first]], times)


def test_earlier_crossing_wins_over_steeper_later_crossing():
    """The earliest crossing in a step is found even if another neuron ends the step higher.

    Neuron 0 (ic = 10, slow tmem) crosses steeply 0.1 after neuron 1 (ic = 1.01,
    tmem = 2) crosses shallowly, inside the same Euler step (0.5); at the end of
    that step neuron 0's spike condition is the larger one. The record must
    still list neuron 1 first, at its Euler interpolant root (tolerance 1e-4).
    """
    h = 0.5
    t_slow = euler_spike_time(1.01, 2.0, 1.0, h)
    lo, hi = 1.0, 200.0  # tmem of the steep neuron: its Euler root at t_slow + 0.1
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if euler_spike_time(10.0, mid, 1.0, h) < t_slow + 0.1 else (lo, mid)
    tmem_steep = lo
    step_end = h * np.ceil(t_slow / h)
    assert euler_spike_time(10.0, tmem_steep, 1.0, h) < step_end  # same step
    v_end = lambda ic, tm: ic * (1 - (1 - h / tm) ** round(step_end / h))  # Euler v at step end
    assert v_end(10.0, tmem_steep) > v_end(1.01, 2.0) > 1.0

    net = ex.EvNN(ex.LIF, 2, 20.0, 1, wmask=np.zeros((3, 2)), init_weights=0.0,
                  init_bias=np.array([10.0, 1.01]), thresh=1.0, tsyn=5.0,
                  tmem=np.array([tmem_steep, 2.0]), solver_stepsize=h)
    rec = net.record(NO_INPUT, max_spikes=8)
    times, neurons = np.asarray(rec.times[:2]), np.asarray(rec.neurons[:2])
    print(f"\nsteep-vs-shallow: record {list(zip(times.round(6), neurons))}, expected first {t_slow:.6f}")
    assert neurons.tolist() == [1, 0]
    assert abs(times[0] - t_slow) < 1e-4
    assert times[0] < times[1] < step_end


def test_identical_neurons_all_spike_at_the_same_time():
    """Three identical neurons cross together: all three spikes are recorded."""
    net = bias_neurons(np.array([1.5, 1.5, 1.5]), 12.0, solver_stepsize=0.5)
    rec = net.record(NO_INPUT, max_spikes=8)
    assert int(rec.n_spikes) == 3
    assert sorted(np.asarray(rec.neurons[:3]).tolist()) == [0, 1, 2]
    assert np.all(np.asarray(rec.times[:3]) == rec.times[0])
    assert np.all(np.asarray(net.ttfs(NO_INPUT)) == rec.times[0])


# ------------------------------------------------------------------ no-spike value


def test_output_no_spike_value():
    """A silent output gives `output_no_spike_value`: inf by default, or e.g. 30.

    Output 0 is driven above threshold (bias 1.5), output 1 is not (bias 0.5).
    """
    kwargs = dict(wmask=np.zeros((3, 2)), init_weights=0.0, init_bias=np.array([1.5, 0.5]),
                  thresh=1.0, tsyn=5.0, tmem=10.0, solver_stepsize=0.01)
    default = ex.EvNN(ex.LIF, 2, 20.0, 1, **kwargs).ttfs(NO_INPUT)
    custom = ex.EvNN(ex.LIF, 2, 20.0, 1, output_no_spike_value=30.0, **kwargs).ttfs(NO_INPUT)
    assert jnp.isfinite(default[0]) and jnp.isinf(default[1])
    assert custom[0] == default[0] and custom[1] == 30.0


# ------------------------------------------------------------------ transformations


def _ff_net(**kwargs):
    rng = np.random.default_rng(1)
    net = ex.FFEvNN([3, 2], 2, ex.LIF, 10.0, key=jax.random.PRNGKey(0), thresh=1.0, tsyn=2.0,
                    tmem=4.0, init_bias=0.1, **kwargs)
    weights = jnp.asarray(rng.uniform(1.5, 4.0, net.wmask.value.shape) * net.wmask.value, jnp.float32)
    return eqx.tree_at(lambda n: n.neuron_model.weights, net, weights)


def test_jit_vmap_and_grad_compose():
    """`jit(vmap(...))` over a batch equals a per-sample loop; grads compose.

    Forward: ttfs and state_at_t on a batch of 4 (one sample without input,
    so its outputs do not spike) equal the per-sample results (rtol 1e-6; states
    atol 1e-5: float32 rounding of differently vectorised programs).
    Gradient: the gradient of the batch-mean loss, taken through jit and vmap,
    equals the mean of per-sample gradients (rtol 1e-5, atol 2e-5), is finite
    although one sample has silent outputs (output_no_spike_value = 10), and is
    nonzero for the weights.
    """
    net = _ff_net(output_no_spike_value=10.0)
    xb = jnp.array([
        [[0.5, 2.0], [1.0, jnp.inf]],
        [[1.5, jnp.inf], [0.2, 0.4]],
        [[3.0, 3.0], [2.5, jnp.inf]],
        [[jnp.inf, jnp.inf], [jnp.inf, jnp.inf]],
    ])
    ts = jnp.array([4.0, 8.0])

    # One compiled program per side: the forward values ride along as auxiliary outputs.
    def sample(n, x):
        t, states = n.ttfs(x), n.state_at_t(x, ts)
        return jnp.sum(t) + 0.1 * jnp.sum(states[..., 0]), (t, states)

    def batch_loss(n):
        losses, aux = jax.vmap(lambda x: sample(n, x))(xb)
        return jnp.mean(losses), aux

    grad_batch, batched = eqx.filter_jit(eqx.filter_grad(batch_loss, has_aux=True))(net)
    grad_one = eqx.filter_jit(eqx.filter_grad(sample, has_aux=True))
    per_sample, looped = zip(*[grad_one(net, x) for x in xb])
    for b in range(xb.shape[0]):
        np.testing.assert_allclose(batched[0][b], looped[b][0], rtol=1e-6)
        # float32: XLA vectorises the batched and the single program differently, so
        # spike times may differ by an ulp, which moves later states by up to ~3e-6
        # (with this network's defaults, Tsit5; in float64 both agree to 1e-14).
        np.testing.assert_allclose(batched[1][b], looped[b][1], rtol=1e-6, atol=1e-5)
    assert np.all(np.asarray(batched[0][3]) == 10.0)
    assert np.all(np.isfinite(np.asarray(batched[0][:3])))
    assert np.any(np.asarray(batched[0][:3]) < 10.0)

    for get in (lambda g: g.neuron_model.weights, lambda g: g.neuron_model.ic):
        mean = np.mean([np.asarray(get(g)) for g in per_sample], axis=0)
        got = np.asarray(get(grad_batch))
        assert np.all(np.isfinite(got))
        # float32 rounding as above (up to ~9e-6 here; 4e-15 in float64)
        np.testing.assert_allclose(got, mean, rtol=1e-5, atol=2e-5)
    assert np.any(np.asarray(grad_batch.neuron_model.weights) != 0)


# ------------------------------------------------------------------ connectivity


def test_recurrent_two_neuron_loop():
    """A 2-neuron loop (0 -> 1 excitatory, 1 -> 0 inhibitory) matches the reference.

    Neuron 0 has a bias (periodic firing) and an input at t = 1; each of its
    spikes drives neuron 1, whose spikes delay neuron 0's next spike. Same
    spike sequence as `lif_reference`; times within 2e-2 (Euler step 0.001
    over 30 time units; measured ~7e-3). Removing the feedback weight changes
    neuron 0's spike train, so the recurrent synapse really acts.
    """
    mask = np.array([[0, 1], [1, 0], [1, 0]])
    ic = np.array([1.3, 0.0])
    x = np.array([[1.0]])
    trains = {}
    for feedback in (-3.0, 0.0):
        w = np.array([[0.0, 6.0], [feedback, 0.0], [5.0, 0.0]])
        net = ex.EvNN(ex.LIF, 2, 30.0, 1, wmask=mask, init_weights=w, init_bias=ic,
                      thresh=1.0, tsyn=2.0, tmem=4.0)
        rec = net.record(jnp.asarray(x), max_spikes=64)
        n = int(rec.n_spikes)
        times, neurons = np.asarray(rec.times[:n]), np.asarray(rec.neurons[:n])
        ref = lif_reference(w, mask, ic, 1.0, 2.0, 4.0, x, 30.0)
        assert neurons.tolist() == [j for _, j in ref]
        err = np.max(np.abs(times - np.array([t for t, _ in ref])))
        print(f"\nfeedback {feedback}: {n} spikes, max |t - reference| = {err:.1e}")
        assert err < 2e-2
        assert np.all(np.diff(times) >= 0)
        assert np.count_nonzero(neurons == 1) >= 2
        trains[feedback] = times[neurons == 0]
    assert len(trains[-3.0]) < len(trains[0.0])


def test_sparse_mask():
    """A sparse mask with a skip connection and a dead input matches the reference.

    Rows: neurons 0-3, inputs 4-6. Connections: in4 -> n0; in5 -> n1, n3;
    n0 -> n2; n1 -> n2; n2 -> n3; in6 -> nothing. A huge weight written into a
    masked entry is ignored, and masked entries get zero gradient.
    """
    mask = np.zeros((7, 4), bool)
    mask[4, 0] = mask[5, 1] = mask[5, 3] = mask[0, 2] = mask[1, 2] = mask[2, 3] = True
    w = np.where(mask, 5.0, 0.0)
    w[5, 3] = 1.5
    kwargs = dict(thresh=1.0, tsyn=2.0, tmem=4.0, init_bias=0.0)
    net = ex.EvNN(ex.LIF, 4, 15.0, 3, wmask=mask, init_weights=w, **kwargs)
    assert np.all(np.asarray(net.neuron_model.weights)[~mask] == 0.0)
    x = np.array([[1.0], [2.0], [0.5]])
    rec = net.record(jnp.asarray(x), max_spikes=16)
    n = int(rec.n_spikes)
    times, neurons = np.asarray(rec.times[:n]), np.asarray(rec.neurons[:n])
    ref = lif_reference(w, mask, 0.0, 1.0, 2.0, 4.0, x, 15.0)
    print(f"\nsparse: record {list(zip(times.round(4), neurons))}")
    assert neurons.tolist() == [j for _, j in ref]
    assert sorted(set(neurons.tolist())) == [0, 1, 2, 3]
    assert np.max(np.abs(times - np.array([t for t, _ in ref]))) < 1e-2

    # Weights outside the mask are never delivered, even if set.
    hacked = eqx.tree_at(lambda m: m.neuron_model.weights, net,
                         net.neuron_model.weights.at[6, :].set(100.0).at[3, :].set(100.0))
    rec2 = hacked.record(jnp.asarray(x), max_spikes=16)
    assert int(rec2.n_spikes) == n
    np.testing.assert_array_equal(np.asarray(rec2.times), np.asarray(rec.times))

    grads = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.sum(m.ttfs(jnp.asarray(x)))))(net)
    g = np.asarray(grads.neuron_model.weights)
    assert np.all(g[~mask] == 0.0)
    assert np.all(g[mask] != 0.0), "every real synapse carries a spike that shapes an output time"


# ------------------------------------------------------------------ float32 with x64 on


@pytest.mark.parametrize("adaptive", [False, True], ids=["fixed-step", "adaptive"])
def test_float32_network_with_x64_enabled(adaptive):
    """A float32 network also runs when jax_enable_x64 is on (tolerance 1e-2 on a
    spike at ~11: float32 Euler step 0.01, or Tsit5 at rtol = atol = 1e-5)."""
    jax.config.update("jax_enable_x64", True)  # the autouse fixture restores it
    kwargs = {}
    if adaptive:
        kwargs = dict(solver=diffrax.Tsit5(), stepsize_controller=diffrax.PIDController(rtol=1e-5, atol=1e-5))
    net = bias_neurons(1.5, 15.0, solver_stepsize=0.01, **kwargs)
    t = net.ttfs(jnp.array([[jnp.inf]], jnp.float32))[0]
    assert t.dtype == jnp.float32
    assert abs(float(t) - 10.0 * np.log(3.0)) < 1e-2


_first_spike_grad = eqx.filter_jit(eqx.filter_grad(lambda n: n.ttfs(jnp.array([[1.0]]))[0]))


def test_gradient_with_respect_to_a_zero_delay_is_the_right_derivative():
    """d t_spike / d delay = 1 at delay 0: the clamp of negative delays (which
    training can produce) must not halve it. Negative initial delays are refused."""
    def spike_time_grad(d):
        net = ex.EvNN(
            ex.LIF, 1, 30.0, 1, wmask=np.ones((2, 1)), init_weights=5.0, init_bias=0.0, tmem=10.0,
            init_delays=d, init_axonal_delays=d, solver_stepsize=0.01,
        )
        g = _first_spike_grad(net)
        return float(g.delays[1, 0]), float(g.axonal_delays[1])

    np.testing.assert_allclose(spike_time_grad(0.0), (1.0, 1.0), atol=1e-5)
    np.testing.assert_allclose(spike_time_grad(0.5), (1.0, 1.0), atol=1e-5)
    with pytest.raises(ValueError, match="init_delays"):
        spike_time_grad(-0.5)
