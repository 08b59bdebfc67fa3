"""Locating a crossing on the step's interpolant when the largest condition changes hands."""

import diffrax as dfx
import jax.numpy as jnp
import numpy as np

import eventax as ex
from eventax._segment import _locate, _Step


def test_crossing_neuron_sets_the_time_scale_of_the_root_find():
    """Neuron A sits just below threshold (the largest condition at the step start,
    rising slowly); neuron B rises steeply and crosses within the Euler step. The
    secant slope of `max_k cond_k` over the step is ~1e-3, B's is ~0.5, so scaling by
    the former inflated float32 rounding of B's condition past the root finder's
    tolerance (a reported failure in a training run). The root must be found and equal
    B's line crossing, which is exact for Euler's linear interpolant, to float32 time
    resolution (a few ulp of t ~ 24: 1e-5)."""
    net = ex.EvNN(ex.LIF, 2, 30.0, 1, wmask=np.ones((3, 2)), init_weights=0.0, solver_stepsize=0.01)
    dt, t0 = 0.01, 24.0
    v = np.array([1.0 - 1e-5, 0.995], np.float32)
    dvdt = np.array([1e-4, (1.0 + 2e-6 - 0.995) / dt], np.float32)   # B ends 2e-6 above threshold
    i = v + 20.0 * dvdt                                                  # tmem v' = -v + i
    y_prev = (jnp.asarray(v), jnp.asarray(i))  # the LIF state (v, i)
    terms = dfx.ODETerm(net.neuron_model.dynamics)
    t_prev, t = jnp.float32(t0), jnp.float32(t0 + dt)
    state = net.solver.init(terms, t_prev, t, y_prev, None)
    y1, *_ = net.solver.step(terms, t_prev, t, y_prev, None, state, False)
    cond = np.asarray(net.neuron_model.spike_condition(t, y1))
    assert np.argmax(cond) == 1 and cond[1] > 0
    assert np.argmax(np.asarray(net.neuron_model.spike_condition(t_prev, y_prev))) == 0
    step = _Step(n=jnp.asarray(1), t_prev=t_prev, y_prev=y_prev, t=t, y=y1, solver_state=state,
                 crossed=jnp.asarray(True), failed=jnp.asarray(False))
    t_root, y_root, failed = _locate(net, terms, step)
    assert not bool(failed)
    v_b, slope_b = float(y_prev[0][1]), float((y1[0][1] - y_prev[0][1]) / dt)
    expected = t0 + (1.0 - v_b) / slope_b
    assert abs(float(t_root) - expected) < 1e-5


def test_bracketed_newton_never_stops_on_an_infinite_derivative():
    """A derivative that comes out infinite (as the jvp of `max_k cond_k` did in one
    XLA build) made the Newton step zero, which the root finder took for convergence
    at a point that was no root. Here `f(t) = t - 0.3` on `[0, 1]` reports an infinite
    derivative for `t > 0.5`: the first iterate (the bracket's upper end) lies there.
    The root must still be found, to the tolerance (1e-6 on a float32 scale of 1)."""
    import jax
    import optimistix as optx

    from eventax._segment import BracketedNewton

    @jax.custom_jvp
    def f(t):
        return t - 0.3

    @f.defjvp
    def f_jvp(primals, tangents):
        (t,), (dt,) = primals, tangents
        return f(t), jnp.where(t > 0.5, jnp.inf, 1.0) * dt

    sol = optx.root_find(lambda t, _: f(t), BracketedNewton(rtol=0.0, atol=1e-6), jnp.float32(1.0),
                         options={"lower": jnp.float32(0.0), "upper": jnp.float32(1.0)}, throw=False)
    assert sol.result == optx.RESULTS.successful
    assert abs(float(sol.value) - 0.3) < 1e-6
