"""Per-sample evaluation and the paper's spike metrics over a dataset.

For a network and a loss, `evaluate` runs every sample once and reports:

- `loss`, `accuracy` (argmax of the loss's logits);
- `max_firing`: mean over samples of the largest spike count of any neuron;
- `dead_neurons`: hidden neurons that never spike on the whole set;
- `fire_count`: mean total number of spikes per sample;
- `t_first_output`: mean time of the first output spike (samples with one);
- `silent_outputs`: fraction of (sample, output) pairs without an output spike
  (`None` when the outputs cannot spike, e.g. leaky-integrator readouts).

Spikes are counted until the first output spike for time-to-first-spike losses
(the trial ends there as far as the decision is concerned), else until the end
of the trial.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..losses import TTFSLoss, spike_counts
from .parallel import DataParallel


def spike_window(loss) -> str:
    """Until when `sample_outputs` counts spikes for `loss`: the first output spike for
    a TTFS loss, else the trial end (the label logs and plots carry)."""
    return "first output spike" if isinstance(loss, TTFSLoss) else "trial end"


def sample_outputs(net, loss, regularisers, x, y):
    """Loss value, logits, first output spikes and spike counts of one sample."""
    sim = loss.simulate(net, x, max_spikes=net.max_event_steps)
    value = loss(sim, y) + sum((r(sim) for r in regularisers), 0.0)
    times = sim.spikes.times
    if spike_window(loss) == "first output spike":
        window_end = jnp.min(sim.first_spikes)
        window_end = jnp.where(jnp.isinf(window_end), sim.t_stop, window_end)
        times = jnp.where(times <= window_end, times, jnp.inf)
    counts = spike_counts(sim.spikes._replace(times=times), net.n_neurons)
    return value, loss.logits(sim), sim.first_spikes, counts


@eqx.filter_jit
def _batch_outputs(shared, batch):
    (net, loss, regularisers), (x, y) = shared, batch
    return jax.vmap(lambda xi, yi: sample_outputs(net, loss, regularisers, xi, yi))(x, y)


def evaluate(net, loss, regularisers, x, y, batch_size: int = 500, dp: DataParallel | None = None) -> dict:
    """Metrics of `net` on the samples `x` `(n, in_size, K)`, labels `y` `(n,)`.

    `dp`: data parallel, each device on its own slice of every chunk. The last
    chunk is padded by repeating samples, which are dropped from the metrics.
    """
    n = len(y)
    parts = []
    for start in range(0, n, batch_size):
        idx = np.arange(start, start + batch_size) % n
        if dp is None:
            out = jax.tree_util.tree_map(np.asarray, _batch_outputs((net, loss, regularisers), (x[idx], y[idx])))
        else:
            out = dp.map(_batch_outputs, (net, loss, regularisers), (x[idx], y[idx]))
            out = jax.tree_util.tree_map(lambda a: dp.gather(a).reshape(-1, *a.shape[2:]), out)
        take = min(batch_size, n - start)
        parts.append(jax.tree_util.tree_map(lambda a: a[:take], out))
    values, logits, first, counts = (np.concatenate(p) for p in zip(*parts))
    return summarise(values, logits, first, counts, np.asarray(y), net, loss)


def summarise(values, logits, first, counts, y, net, loss) -> dict:
    """The metric dictionary from per-sample outputs (NumPy)."""
    outputs = np.asarray(net.output_indices)
    hidden = np.setdiff1d(np.arange(net.n_neurons), outputs)
    t_first = np.min(first, axis=1)
    outputs_can_spike = isinstance(loss, TTFSLoss)
    return {
        "loss": float(np.mean(values)),
        "accuracy": float(np.mean(np.argmax(logits, axis=1) == y)),
        "max_firing": float(np.mean(np.max(counts, axis=1))),
        "dead_neurons": int(np.sum(counts[:, hidden].sum(axis=0) == 0)),
        "fire_count": float(np.mean(counts.sum(axis=1))),
        "t_first_output": float(np.mean(t_first[np.isfinite(t_first)])) if np.isfinite(t_first).any() else None,
        "silent_outputs": float(np.mean(np.isinf(first))) if outputs_can_spike else None,
    }
