"""`SpikeBuffer` against a Python priority queue (`heapq`), by property-based tests.

A run pushes batches of spikes (random senders, arrival times on a coarse grid so that
ties are common, one shared time or one per target) and, between batches, delivers
what is due: `next` / `pop` until the earliest pending arrival is past a horizon. The
heap holds every pushed `(time, source, target)`; the buffer must deliver exactly the
heap's arrivals, in time order (any order within a tie), and flag an overflow exactly
when a batch brings more senders than there are free rows (a row is free once all of
its arrivals are delivered).
"""

import heapq

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from eventax.buffer import SpikeBuffer

N_SENDERS, N_TARGETS, CAPACITY = 4, 3, 5

# One compiled program per operation and width (the shapes are fixed).
_next = jax.jit(lambda b: b.next())
_pop = jax.jit(lambda b, row, t: b.pop(row, t, jnp.asarray(True)))
_push = jax.jit(lambda b, mask, arrivals: b.push(mask, arrivals))

times = st.integers(0, 8).map(lambda k: 0.5 * k)  # a coarse grid: ties are common
batch = st.tuples(
    st.lists(st.booleans(), min_size=N_SENDERS, max_size=N_SENDERS),
    st.lists(st.lists(times, min_size=N_TARGETS, max_size=N_TARGETS), min_size=N_SENDERS, max_size=N_SENDERS),
    times,  # the horizon up to which arrivals are delivered after the batch
)


def _deliver(buf, horizon):
    """`next` / `pop` until the earliest arrival is past `horizon`: the deliveries
    `[(t, source, target)]` in the order they were made, and the buffer."""
    out = []
    while True:
        row, t = _next(buf)
        if not (np.isfinite(float(t)) and float(t) <= horizon):  # (inf: empty)
            return out, buf
        source = int(buf.source[row])
        buf, hit = _pop(buf, row, t)
        assert np.any(np.asarray(hit))
        hit = np.asarray(hit)
        targets = range(N_TARGETS) if hit.shape == (1,) else np.flatnonzero(hit)  # (one column: all)
        out += [(float(t), source, int(j)) for j in targets]


def _grouped(deliveries):
    """Deliveries as `[(t, sorted arrivals at t)]`: the order that must hold."""
    groups = {}
    for t, s, j in deliveries:
        groups.setdefault(t, []).append((s, j))
    return [(t, sorted(groups[t])) for t in sorted(groups)]


@settings(max_examples=100, deadline=None)
@given(batches=st.lists(batch, min_size=1, max_size=5), shared=st.booleans())
def test_buffer_delivers_what_a_priority_queue_delivers(batches, shared):
    width = 1 if shared else N_TARGETS
    buf = SpikeBuffer(jnp.full((CAPACITY, width), jnp.inf, jnp.float32), jnp.zeros((CAPACITY,), jnp.int32))
    heap, alive = [], {}  # alive: pushed rows (by push order) -> their undelivered targets
    rows_pushed = 0
    for mask, arrivals, horizon in batches:
        arrivals = np.asarray(arrivals, np.float32)[:, :width]
        senders = [k for k in range(N_SENDERS) if mask[k]]
        free = CAPACITY - sum(1 for left in alive.values() if left)
        buf, overflow = _push(buf, jnp.asarray(mask), jnp.asarray(arrivals))
        assert bool(overflow) == (len(senders) > free)
        for k in senders[:free]:  # the k-th sender takes the k-th free row
            targets = range(N_TARGETS)
            for j in targets:
                heapq.heappush(heap, (float(arrivals[k, 0 if shared else j]), k, j, rows_pushed))
            alive[rows_pushed] = set(targets)
            rows_pushed += 1
        got, buf = _deliver(buf, horizon)
        want = []
        while heap and heap[0][0] <= horizon:
            t, k, j, r = heapq.heappop(heap)
            want.append((t, k, j))
            alive[r].discard(j)
        assert _grouped(got) == _grouped(want)
        assert [t for t, _, _ in got] == sorted(t for t, _, _ in got)  # never out of order
    got, _ = _deliver(buf, np.inf)
    assert _grouped(got) == _grouped([(t, k, j) for t, k, j, _ in heap])
