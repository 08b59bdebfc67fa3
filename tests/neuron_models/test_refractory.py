"""`Refractory(model_cls)`: closed-form spike trains, blocked inputs, gradients, any model.

Engine tests run in float64 with Tsit5, a Newton root finder (rtol = atol = 1e-13)
and, unless stated, `PIDController(rtol=1e-12, atol=1e-12)`. All nets of one
kind share their structure (only array leaves differ), so each jitted entry
point compiles once.

Closed form: a LIF neuron with bias `ic` (v' = (ic - v)/tmem, v(0) = 0) first
fires at T0 = tmem ln(ic / (ic - thresh)); after each spike v is held at
vreset = 0 for t_refrac, then the same trajectory repeats, so
t_k = T0 + k (t_refrac + T0), k = 0, 1, ...
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import EXACT

import eventax as ex
from eventax.neuron_models.refractory import Refractory, RefractoryState

pytestmark = pytest.mark.usefixtures("x64")


class Integrator(ex.NeuronModel):
    """A user-written model: perfect integrator with a dict state of 1-D leaves.

    dv/dt = drive; an input spike of row k adds weights[k, j] to v_j; spike at
    v = 1, reset to v = 0. Bias-driven period 1/drive.
    """

    weights: jax.Array
    drive: jax.Array

    def __init__(self, key, n_neurons, in_size, wmask, drive=1.0, w=0.5, dtype=jnp.float32):
        self.dtype = dtype
        self.weights = jnp.asarray(np.asarray(wmask, float) * w, dtype)
        self.drive = jnp.full((n_neurons,), drive, dtype)

    def init_state(self, n_neurons):
        return {"v": jnp.zeros((n_neurons,), self.dtype)}

    def dynamics(self, t, y, args):
        return {"v": self.drive}

    def spike_condition(self, t, y):
        return y["v"] - 1.0

    def input_spike(self, y, from_idx, to_idx, valid_mask):
        return {"v": y["v"].at[to_idx].add(jnp.where(valid_mask, self.weights[from_idx, to_idx], 0.0))}

    def reset_spiked(self, y, spike_mask):
        return {"v": jnp.where(spike_mask, 0.0, y["v"])}

    def observe(self, y):
        return y["v"][:, None]


TMEM, THRESH, T_END = 10.0, 1.0, 40.0
NO_INPUT = np.array([[np.inf]])  # float64 whatever x64 is at import


def solver_kwargs(adaptive=True, dt=0.01):
    """`EXACT`, or on constant steps of `dt` (`adaptive=False`)."""
    controller = EXACT["stepsize_controller"] if adaptive else diffrax.ConstantStepSize()
    return {**EXACT, "stepsize_controller": controller, "solver_stepsize": dt}


def lif_net(ic, t_refrac, w=0.0, adaptive=True, dt=0.01):
    """One refractory LIF neuron fed by one input row; `ic`, `t_refrac` learnable."""
    return ex.EvNN(
        Refractory(ex.LIF), 1, T_END, 1, key=jax.random.PRNGKey(0), wmask=np.array([[0], [1]]),
        init_weights=w, init_bias=ic, thresh=THRESH, tsyn=5.0, tmem=TMEM, t_refrac=t_refrac,
        trainable=("t_refrac",), **solver_kwargs(adaptive, dt),
    )


def first_period(ic):
    return TMEM * np.log(ic / (ic - THRESH))


def closed_form_train(ic, t_refrac):
    t0 = first_period(ic)
    return t0 + np.arange(int((T_END - t0) // (t_refrac + t0)) + 1) * (t_refrac + t0)


def _train(net, x):
    return net.spikes_until_t(x, T_END, max_spikes=16)[0]


def _kth(net_and_x, k):
    net, x = net_and_x
    train = _train(net, x)
    return train[k], train


# The adaptive single-neuron nets share one compiled program: value, gradient and
# the whole train (aux) of the k-th spike. Other structures use `_trains_jit`.
_kth_value_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(_kth, has_aux=True))
_trains_jit = eqx.filter_jit(lambda net, x: net.spikes_until_t(x, T_END, max_spikes=16))


def train_of(net, x):
    (_, train), _ = _kth_value_and_grad((net, x), jnp.asarray(0))
    return train


def spikes(train):
    train = np.asarray(train)
    return train[np.isfinite(train)]


# ----------------------------------------------------------------------------- construction


def test_wrapped_class_is_a_cached_picklable_subclass():
    cls = Refractory(ex.LIF)
    assert cls is Refractory(ex.LIF) and issubclass(cls, ex.LIF) and cls.__name__ == "RefractoryLIF"
    assert cls.time_constants == ("tsyn", "tmem", "t_refrac")
    plif = ex.with_trainable(cls, cls.time_constants, "RPLIF")  # composes with learnable.py
    m = plif(
        key=jax.random.PRNGKey(0), n_neurons=3, in_size=2, wmask=np.ones((5, 3)), t_refrac=[1.0, 2.0, 3.0]
    )
    assert m.t_refrac.shape == m.tmem.shape == (3,)  # learnable: plain arrays, next to `weights`
    assert m.weights.shape == (5, 3)


@pytest.mark.parametrize(
    "t_refrac, match",
    [(None, "t_refrac.*required"), (0.0, "t_refrac.*positive"), (-1.0, "t_refrac.*positive"),
     ([1.0, 2.0], "t_refrac.*shape"), (float("nan"), "t_refrac.*finite")],
)
def test_bad_t_refrac_raises_value_error_naming_it(t_refrac, match):
    with pytest.raises(ValueError, match=match):
        ex.EvNN(Refractory(ex.LIF), 3, 10.0, 1, t_refrac=t_refrac)


def test_unwrappable_classes_raise_value_error():
    with pytest.raises(ValueError, match="NeuronModel class"):
        Refractory(ex.LIF(key=jax.random.PRNGKey(0), n_neurons=1, in_size=0, wmask=np.ones((1, 1))))
    with pytest.raises(ValueError, match="sub-models"):
        Refractory(ex.MultiNeuronModel)


def test_hold_block_and_catch_up_at_the_model_level():
    """Refractory neurons: zero dynamics, negative condition, inputs ignored. Free
    neurons see their state advanced by the lag (free time since the release
    minus free time integrated), so d cond / d clock = -f . grad cond."""
    model = Refractory(Integrator)(
        key=None, n_neurons=3, in_size=1, wmask=np.ones((4, 3)), drive=2.0, t_refrac=1.5,
        trainable="t_refrac", dtype=jnp.float64,
    )
    v = jnp.array([0.2, 0.5, 0.9])
    # Neuron 0 refractory for 1 more; 1 free, integrated exactly; 2 free, lagging by 0.05.
    s = RefractoryState({"v": v}, jnp.array([1.0, -2.0, -3.0]), jnp.array([0.0, 2.0, 2.95]))
    f = model.dynamics(0.0, s, None)
    np.testing.assert_array_equal(f.inner["v"], [0.0, 2.0, 2.0])
    np.testing.assert_array_equal(f.clock, [-1.0, -1.0, -1.0])
    np.testing.assert_array_equal(f.free, [0.0, 1.0, 1.0])
    cond = model.spike_condition(0.0, s)
    np.testing.assert_allclose(cond, [0.2 - 1.0 - 1.0, 0.5 - 1.0, 1.0 - 1.0], atol=1e-12)
    np.testing.assert_allclose(model.observe(s)[:, 0], [0.2, 0.5, 1.0], atol=1e-12)
    jac = jax.jacfwd(lambda clock: model.spike_condition(0.0, s._replace(clock=clock)))(s.clock)
    np.testing.assert_allclose(jac, np.diag([-1.0, -2.0, -2.0]), atol=1e-12)

    hit = model.input_spike(s, jnp.asarray(3), jnp.arange(3), jnp.ones(3, bool))
    np.testing.assert_allclose(hit.inner["v"], [0.2, 1.0, 1.5], atol=1e-12)  # lag folded in, then w = 0.5
    np.testing.assert_allclose(hit.free, [0.0, 2.0, 3.0])
    reset = model.reset_spiked(s, jnp.array([False, True, True]))
    np.testing.assert_array_equal(reset.inner["v"], [0.2, 0.0, 0.0])
    np.testing.assert_array_equal(reset.clock, [1.0, 1.5, 1.5])
    np.testing.assert_array_equal(reset.free, [0.0, 0.0, 0.0])


# ----------------------------------------------------------------------------- engine, float64


@pytest.mark.parametrize("ic, t_refrac", [(3.0, 2.5), (20.0, 2.5), (1.5, 0.7)])
def test_bias_driven_train_matches_closed_form(ic, t_refrac):
    """Spikes at t_k = T0 + k (t_refrac + T0), none within t_refrac of the previous.

    ic = 20 alone would fire every T0 = 0.51 < t_refrac: the refractory period
    sets the rate. Tolerance 1e-6 (measured <= 1.2e-9: the adaptive controller
    resolves each release to about its tolerance).
    """
    got = spikes(train_of(lif_net(ic, t_refrac), NO_INPUT))
    expected = closed_form_train(ic, t_refrac)
    assert len(got) == len(expected) >= 3
    err = np.max(np.abs(got - expected))
    print(f"\nic={ic} t_refrac={t_refrac}: {len(got)} spikes, max |t_k - closed form| = {err:.2e}")
    assert err <= 1e-6
    assert np.all(np.diff(got) > t_refrac)


def test_inputs_during_refractoriness_have_no_effect():
    """A strong input (w = 5) inside the refractory window [t_0, t_0 + t_refrac]
    leaves the train unchanged (<= 1e-9); the same input before the first spike
    or after the release changes it."""
    ic, t_refrac = 3.0, 2.5
    net = lif_net(ic, t_refrac, w=5.0)
    quiet = spikes(train_of(net, NO_INPUT))
    t0 = first_period(ic)
    for t_in in [t0 + 1e-3, t0 + 1.0, t0 + t_refrac - 1e-3]:
        got = spikes(train_of(net, jnp.array([[t_in]])))
        assert len(got) == len(quiet) and np.max(np.abs(got - quiet)) <= 1e-9, t_in
    for t_in in [1.0, t0 + t_refrac + 0.5]:
        got = spikes(train_of(net, jnp.array([[t_in]])))
        assert len(got) != len(quiet) or np.max(np.abs(got - quiet)) > 0.1, t_in


def test_gradients_through_refractory_periods_match_closed_form_and_finite_differences():
    """d t_k / d ic, d t_k / d t_refrac and d t_k / d t_in vs central FD (step 1e-3).

    Without input: d t_k/d ic = (k+1) dT0/dic, d t_k/d t_refrac = k (checked to
    1e-7 relative; measured ~5e-11). With an input at 7.3 (after the first
    release) every gradient is checked against FD to 1e-5 relative (t_k is
    linear in t_refrac and FD truncation in ic is ~1e-7; the adaptive solver's
    ~1e-10 noise on t_k contributes ~1e-7). An input inside a refractory window
    has zero gradient.
    """
    ic, t_refrac = 3.0, 2.5
    net = lif_net(ic, t_refrac, w=0.5)
    d_t0 = TMEM * (1.0 / ic - 1.0 / (ic - THRESH))
    _, (_, grad_x) = _kth_value_and_grad((net, jnp.array([[5.0]])), jnp.asarray(1))
    assert abs(float(grad_x[0, 0])) < 1e-8, "an input during refractoriness has no gradient"

    params = {
        "ic": lambda p: p[0].neuron_model.ic,
        "t_refrac": lambda p: p[0].neuron_model.t_refrac,
        "t_in": lambda p: p[1],
    }
    for x, checked in [(NO_INPUT, ("ic", "t_refrac")), (jnp.array([[7.3]]), ("ic", "t_refrac", "t_in"))]:
        for k in range(4):
            (t_k, _), grads = _kth_value_and_grad((net, x), jnp.asarray(k))
            ad = {name: float(where(grads).reshape(-1)[0]) for name, where in params.items()}
            if x is NO_INPUT:
                assert abs(float(t_k) - closed_form_train(ic, t_refrac)[k]) < 1e-6
                np.testing.assert_allclose([ad["ic"], ad["t_refrac"]], [(k + 1) * d_t0, k], rtol=1e-7)
                assert ad["t_in"] == 0.0
            for name in checked:
                fd = central_difference(net, x, k, params[name])
                err = abs(ad[name] - fd)
                print(f"\nt_in={float(x[0, 0])} k={k} d t_k/d {name}: AD {ad[name]:.10f} FD {fd:.10f}"
                      f" |AD-FD| {err:.1e}")
                assert err <= 1e-5 * abs(fd) + 1e-9  # (d t_0/d t_refrac = 0 exactly)


def central_difference(net, x, k, where, h=1e-3):
    up = eqx.tree_at(where, (net, x), replace_fn=lambda v: v + h)
    down = eqx.tree_at(where, (net, x), replace_fn=lambda v: v - h)
    return (float(train_of(*up)[k]) - float(train_of(*down)[k])) / (2 * h)


def test_constant_steps_resolve_the_release_to_second_order():
    """Documented accuracy on constant steps (Tsit5): the step straddling a release
    mixes held and free stages; the lag correction leaves O(dt^2) per release.
    Worst case of those tried, a release 1e-9 before a step boundary: per
    refractory period 5.4e-5 at dt = 0.01, 1.35e-5 at dt = 0.005 (order 2). The
    first spike (no release before it) is exact."""
    ic, t_refrac = 3.0, 2.5 - 1e-9
    expected = closed_form_train(ic, t_refrac)
    errors = []
    for dt in [0.01, 0.005]:
        got = spikes(_trains_jit(lif_net(ic, t_refrac, adaptive=False, dt=dt), NO_INPUT)[0])
        assert len(got) == len(expected)
        assert abs(got[0] - expected[0]) < 1e-12
        errors.append(np.max(np.abs(got - expected)[1:] / np.arange(1, len(got))))
        print(f"\nconstant steps dt={dt}: error per refractory period {errors[-1]:.2e}"
              f" = {errors[-1] / dt**2:.2f} dt^2")
        assert errors[-1] <= dt**2
    assert errors[0] / errors[1] > 3.0


def test_user_model_and_multi_neuron_model():
    """`Refractory` of a user-written model (dict state, 1-D leaves) and of LIF, as
    sub-models of a MultiNeuronModel beside a plain LIF: each neuron follows its
    own closed form (Integrator: t_k = (k + 1)/drive + k t_refrac)."""
    net = ex.EvNN(
        ex.MultiNeuronModel, 3, T_END, 1, key=jax.random.PRNGKey(1), wmask=np.zeros((4, 3)),
        neuron_models=[Refractory(Integrator), Refractory(ex.LIF), ex.LIF],
        neuron_type_ids=[0, 1, 2],
        neuron_model_kwargs=[
            {"drive": 0.25, "t_refrac": 1.25},
            {"init_bias": 3.0, "tmem": TMEM, "t_refrac": 2.5, "init_weights": 0.0},
            {"init_bias": 3.0, "tmem": TMEM, "init_weights": 0.0},
        ],
        **solver_kwargs(),
    )
    trains = np.asarray(_trains_jit(net, NO_INPUT))
    integ = spikes(trains[0])
    np.testing.assert_allclose(integ, 4.0 + np.arange(len(integ)) * 5.25, atol=1e-6)
    assert len(integ) == 7
    np.testing.assert_allclose(spikes(trains[1]), closed_form_train(3.0, 2.5), atol=1e-6)
    plain = spikes(trains[2])
    np.testing.assert_allclose(plain, first_period(3.0) * np.arange(1, len(plain) + 1), atol=1e-6)


def test_save_load_round_trip(tmp_path):
    net = lif_net(3.0, 2.5)
    ex.save_evnn(tmp_path / "net.eqx", net)
    loaded, _ = ex.load_evnn(tmp_path / "net.eqx")
    assert type(loaded.neuron_model) is Refractory(ex.LIF)
    assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(net)
    np.testing.assert_array_equal(train_of(loaded, NO_INPUT), train_of(net, NO_INPUT))
