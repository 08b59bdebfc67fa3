"""Shared pieces of the model tests: an independent SciPy reference, spike lists,
finite differences and the near-exact solver settings.

Imported as `import helpers` (pytest puts `tests/`, the folder of the suite's
conftest.py, on `sys.path`).
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest
from scipy.integrate import solve_ivp

EXACT = dict(
    dtype=jnp.float64,
    solver=diffrax.Tsit5(),
    stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-12),
    root_finder=optx.Newton(1e-13, 1e-13),
    solver_stepsize=0.01,
)
"""Near-exact settings for `EvNN`: float64, Tsit5 with a PID controller at
rtol = atol = 1e-12, Newton root finding at rtol = atol = 1e-13, `solver_stepsize` 0.01.
Needs x64 on (the `x64` fixture)."""


# ----------------------------------------------------------------------------- reference


def event_driven(rhs, condition, reset, deliver, y0, inputs, t_end, max_step=np.inf, max_spikes=1000):
    """Spikes `[(t, neuron)]` in time order of an independent float64 event-driven
    simulation with `scipy.integrate.solve_ivp` (DOP853, rtol 1e-10, atol 1e-12).

    The state `y` has the shape of `y0` (any shape; SciPy sees it flattened).
    `rhs(y)` gives dy/dt (same shape). Between events all neurons are integrated
    together, with one terminal event per neuron: `condition(y)[j]` (shape `(n,)`)
    crossing 0 upwards; when several fire in one solve the earliest is taken.
    At a spike of neuron `j`, `reset(y, j)` and then its zero-delay delivery
    `deliver(y, j)` are applied by hand; input spikes `inputs = [(time, row)]`
    (see `input_rows`) are delivered by hand as `deliver(y, row)` at their times.
    `reset` and `deliver` edit `y` in place. `max_step` bounds the DOP853 steps.
    More than `max_spikes` spikes fail an assertion (a broken reset would otherwise
    fire the same neuron again and again at one time, forever).
    """
    shape = np.shape(y0)
    n = len(condition(np.array(y0, float)))

    def event(j):
        def crossing(t, z):
            return condition(z.reshape(shape))[j]

        crossing.terminal, crossing.direction = True, 1.0
        return crossing

    events = [event(j) for j in range(n)]
    queue = sorted(inputs)
    y, t, spikes = np.array(y0, float), 0.0, []
    while t < t_end:
        t_next = min(queue[0][0], t_end) if queue else t_end
        if t_next > t:
            sol = solve_ivp(
                lambda s, z: np.ravel(rhs(z.reshape(shape))), (t, t_next), y.ravel(), method="DOP853",
                rtol=1e-10, atol=1e-12, events=events, max_step=max_step,
            )
            assert sol.status >= 0, sol.message
            if sol.status == 1:
                t, j = min((te[0], j) for j, te in enumerate(sol.t_events) if len(te))
                y = sol.y_events[j][0].reshape(shape).copy()
                spikes.append((t, j))
                assert len(spikes) <= max_spikes, f"more than {max_spikes} spikes by t = {t}"
                reset(y, j)
                deliver(y, j)
                continue
            t, y = t_next, sol.y[:, -1].reshape(shape).copy()
        while queue and queue[0][0] <= t:
            deliver(y, queue.pop(0)[1])
    return spikes


def input_rows(x, n_neurons):
    """Input spike times `x` `(in_size, k)` (inf: no spike) as `event_driven` inputs
    `[(time, n_neurons + input)]` (input `i` is row `n_neurons + i` of the weights)."""
    return [(float(t), n_neurons + k) for k, ts in enumerate(np.asarray(x)) for t in ts if np.isfinite(t)]


def feed_forward_mask(n_in, n_hidden, n_out):
    """The `wmask` of `n_in` inputs -> `n_hidden` -> `n_out` neurons, all to all
    between consecutive layers (rows: neurons, then inputs)."""
    n = n_hidden + n_out
    mask = np.zeros((n + n_in, n), bool)
    mask[n:, :n_hidden] = True
    mask[:n_hidden, n_hidden:] = True
    return mask


def assert_rejected(model, name, **kwargs):
    """`model`'s constructor, given `kwargs` on top of a valid 2-neuron, 1-input call,
    raises a `ValueError` whose message matches `name`."""
    args = dict(key=jax.random.PRNGKey(0), n_neurons=2, in_size=1, wmask=np.ones((3, 2)))
    with pytest.raises(ValueError, match=name):
        model(**(args | kwargs))


# ----------------------------------------------------------------------------- spikes


def spike_list(rec):
    """The spikes of a `SpikeRecord` as `[(time, neuron)]` in time order; asserts the
    record did not overflow (fewer spikes than slots)."""
    n = int(rec.n_spikes)
    assert n < rec.times.shape[0], "the spike record overflowed"
    return list(zip(np.asarray(rec.times[:n]).tolist(), np.asarray(rec.neurons[:n]).tolist()))


def spike_error(got, ref):
    """Max |t - t_ref| over two spike lists `[(t, neuron)]` (0 when both are empty);
    asserts they name the same neurons in the same order."""
    assert [j for _, j in got] == [j for _, j in ref], (got, ref)
    return max((abs(a - b) for (a, _), (b, _) in zip(got, ref)), default=0.0)


# ----------------------------------------------------------------------------- finite differences


def leaves(model, names):
    """`{name: model.name}` for the given leaf names."""
    return {name: getattr(model, name) for name in names}


def _replace_leaf(net, name, value):
    return eqx.tree_at(lambda n: getattr(n.neuron_model, name), net, value)


def finite_differences(net, names, evaluate, rel_step=1e-5):
    """Central differences of the losses `evaluate(net)[0]` (shape `(k,)`) w.r.t. every
    entry of the neuron model's leaves `names` (of `weights`, only the real synapses
    of `net.wmask`), step `h = rel_step max(1, |p|)`.

    `evaluate(net)` returns `(losses, spike record, ...)`. Returns
    `rows = [(name, index, h)]`, `fd` of shape `(len(rows), k)` and the spike count
    of every perturbed network (two per row).
    """
    mask = np.asarray(net.wmask.value)
    base = {k: np.asarray(v) for k, v in leaves(net.neuron_model, names).items()}
    rows = [
        (name, idx, rel_step * max(1.0, abs(value[idx])))
        for name, value in base.items()
        for idx in zip(*np.nonzero(mask if name == "weights" else np.ones(value.shape, bool)))
    ]
    fd, n_spikes = [], []
    for name, idx, h in rows:
        row = 0.0
        for sign in (1.0, -1.0):
            losses, rec = evaluate(_replace_leaf(net, name, jnp.asarray(base[name]).at[idx].add(sign * h)))[:2]
            row = row + sign * np.asarray(losses) / (2 * h)
            n_spikes.append(int(rec.n_spikes))
        fd.append(row)
    return rows, np.array(fd), np.array(n_spikes)


def check_entrywise_gradients(label, net, grads, rec, names, evaluate, tol, rel_step=1e-5,
                              loss_names=("spike times", "states")):
    """Asserts that AD gradients match `finite_differences(net, names, evaluate, rel_step)`
    entry by entry (default step 1e-5 max(1, |p|)).

    `grads[k]` is the gradient (a network) of loss `k`; `rec` the unperturbed spike
    record: no perturbation may add or remove a spike, and absent synapses have
    zero gradient. Per loss the error of each entry is taken relative to
    `max(|fd|, 1e-3 max |fd|)`; the worst must be below `tol`. Prints the worst
    error overall and per leaf, prefixed `[label]`.
    """
    rows, fd, n_spikes = finite_differences(net, names, evaluate, rel_step)
    assert np.all(n_spikes == int(rec.n_spikes))  # no spike appears or vanishes
    mask = np.asarray(net.wmask.value)
    for loss_idx, loss_name in enumerate(loss_names):
        ad = leaves(grads[loss_idx].neuron_model, names)
        assert np.all(np.asarray(ad["weights"])[~mask] == 0.0)  # absent synapses
        g = np.array([np.asarray(ad[name])[idx] for name, idx, _ in rows])
        floor = 1e-3 * np.max(np.abs(fd[:, loss_idx]))
        rel = np.abs(g - fd[:, loss_idx]) / np.maximum(np.abs(fd[:, loss_idx]), floor)
        worst = {name: max(r for (n, *_), r in zip(rows, rel) if n == name) for name in names}
        print(f"\n[{label}] {loss_name}: {len(rows)} parameters, worst relative error "
              f"{rel.max():.2e}; per parameter " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
        k = int(np.argmax(rel))
        assert rel[k] < tol, (loss_name, rows[k], g[k], fd[k, loss_idx])


def check_directional_derivatives(label, net, grads, names, loss, tol, h=1e-6, seed=4,
                                  loss_names=("spike-time", "state")):
    """Asserts that AD matches central differences along one direction per leaf and loss.

    For each leaf `name` in `names` and loss `k` (`loss(net, k)`, a float; `grads[k]`
    its gradient), the gradient must be nonzero; the directional derivative along
    `d = u * sign(grad)` (u uniform in [0.5, 1.5], drawn from `default_rng(seed)`
    in leaf-then-loss order) is compared with `(loss(p + h d) - loss(p - h d)) / 2h`
    (float64; the FD truncation error, ~h^2, is below 1e-7 relative at h = 1e-6):
    relative error <= `tol`. Prints each comparison and the worst, prefixed `[label]`.
    """
    model, rng, worst = net.neuron_model, np.random.default_rng(seed), 0.0
    for name in names:
        leaf = getattr(model, name)
        for k, loss_name in enumerate(loss_names):
            g = np.asarray(getattr(grads[k].neuron_model, name))
            assert np.any(g != 0), (name, loss_name)
            d = rng.uniform(0.5, 1.5, g.shape) * np.sign(g)
            ad = float(np.sum(g * d))

            def shifted(eps, name=name, leaf=leaf, d=d):
                return _replace_leaf(net, name, leaf + eps * d)

            fd = (loss(shifted(h), k) - loss(shifted(-h), k)) / (2 * h)
            rel = abs(ad - fd) / abs(fd)
            worst = max(worst, rel)
            print(f"\n[{label}] {loss_name:10s} d/d{name:7s}: AD {ad:+.10e} FD {fd:+.10e} rel {rel:.1e}", end="")
            assert rel <= tol, (name, loss_name)
    print(f"\n[{label}] worst relative error {worst:.2e}")


class NetworkLosses:
    """The two losses the model tests differentiate, on a network's run on inputs `x`:

        spike loss  sum_k spike_coef[k] t_k    (the first len(spike_coef) recorded
                                                spikes, hidden and output; unused
                                                slots count 0),
        state loss  sum(state_coef * states)   (the outputs' states at `obs_times`,
                                                `(n_out, times, channels)`, left limits).

    `evaluate(net)` gives `(losses (2,), record, (grad1, grad2))` from one compiled
    program (what `check_entrywise_gradients` takes); `spike_grad(net)` and
    `state_grad(net)` give one loss and its gradient each, compiled on their own, and
    `loss(net, k)` one loss alone (what `check_directional_derivatives` takes: a finite
    difference of one loss need not run the other).
    """

    def __init__(self, x, obs_times, spike_coef, state_coef):
        self.x, self.obs_times = np.asarray(x), np.asarray(obs_times)  # (to JAX when traced: under x64)
        self.spike_coef, self.state_coef = np.asarray(spike_coef), np.asarray(state_coef)
        self.spike_grad = eqx.filter_jit(eqx.filter_value_and_grad(self.spike_loss, has_aux=True))
        self.state_grad = eqx.filter_jit(eqx.filter_value_and_grad(self.state_loss))
        self.evaluate = eqx.filter_jit(self._evaluate)

    def spike_loss(self, net):
        rec = net.record(jnp.asarray(self.x), max_spikes=len(self.spike_coef))
        return jnp.sum(jnp.where(jnp.isfinite(rec.times), rec.times, 0.0) * self.spike_coef), rec

    def state_loss(self, net):
        return jnp.sum(net.state_at_t(jnp.asarray(self.x), jnp.asarray(self.obs_times)) * self.state_coef)

    def _evaluate(self, net):
        (l1, rec), g1 = eqx.filter_value_and_grad(self.spike_loss, has_aux=True)(net)
        l2, g2 = eqx.filter_value_and_grad(self.state_loss)(net)
        return jnp.stack([l1, l2]), rec, (g1, g2)

    def losses_and_grads(self, net):
        (l1, _), g1 = self.spike_grad(net)
        l2, g2 = self.state_grad(net)
        return np.array([float(l1), float(l2)]), (g1, g2)

    def loss(self, net, k: int) -> float:
        return float(self.spike_grad(net)[0][0]) if k == 0 else float(self.state_grad(net)[0])
