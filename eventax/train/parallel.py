"""Data parallelism with JAX's own machinery: one mesh axis over all devices of all processes.

Parameters and optimiser state are replicated; each batch is split along its
batch axis across devices. With several processes (`jax.distributed.initialize()`),
every process holds the whole dataset, builds the same global batch from the
same seed, and feeds only its own devices' slices of it.

Each device simulates its own slice in its own program (`DataParallel.map`),
and the devices meet once per training step, to average the gradient. A single
program over the sharded batch would not do: `jax.vmap` turns the per-sample
event loops into one loop that runs while any sample is still running, so over
a sharded batch every solver step of every loop would end in an all-reduce of
the stopping flag across devices (milliseconds each over gloo). `jax.shard_map`
would keep the loops apart, but differentiating Optimistix's root finds under
it fails (Equinox's closure conversion sees the manual mesh in one abstract
value and not in the other), and the event loop uses them.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


BATCH_AXIS = "batch"


def _on(a, device):
    """`a` on `device`: its copy there if it is a replicated array, else put there."""
    if not isinstance(a, (jax.Array, np.ndarray, np.generic)):
        return a
    if isinstance(a, jax.Array) and a.is_fully_replicated:
        for shard in a.addressable_shards:
            if shard.device == device:
                return shard.data
    return jax.device_put(a, device)


def initialize_distributed() -> None:
    """Join a multi-process run when the environment describes one.

    Explicit launch (any launcher, or by hand): set on every process

    - `JAX_COORDINATOR_ADDRESS`: `host:port` of process 0 (it listens there);
    - `JAX_NUM_PROCESSES`: the number of processes;
    - `JAX_PROCESS_ID`: this process's index, `0 .. JAX_NUM_PROCESSES - 1`.

    JAX itself reads only the address from the environment, so the count and
    index are passed to `jax.distributed.initialize` explicitly (a missing one
    is left to JAX's cluster detection). Without `JAX_COORDINATOR_ADDRESS`,
    `jax.distributed.initialize()` is called when a SLURM or Open MPI launch of
    more than one task is detected (JAX reads those variables itself). An
    ordinary single-process run, or one already initialised, is left alone.

    On CPU the processes exchange gradients through the collectives named by
    `jax_cpu_collectives_implementation` (default "gloo"); it must be set
    before the first JAX computation.
    """
    env = os.environ
    if jax.distributed.is_initialized():
        return
    if env.get("JAX_COORDINATOR_ADDRESS"):
        kwargs = {}
        for key, name in (("JAX_NUM_PROCESSES", "num_processes"), ("JAX_PROCESS_ID", "process_id")):
            if env.get(key, "").strip():
                try:
                    kwargs[name] = int(env[key])
                except ValueError:
                    raise ValueError(f"`{key}` must be an integer; got {env[key]!r}.") from None
        if kwargs.get("num_processes") == 1:
            return
        jax.distributed.initialize(env["JAX_COORDINATOR_ADDRESS"], **kwargs)
        return
    for key in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"):
        if key in env:
            if env[key].strip() not in ("", "1"):
                jax.distributed.initialize()
            return


class DataParallel:
    """Places parameters (replicated) and batches (split over devices)."""

    def __init__(self, devices=None):
        devices = jax.devices() if devices is None else devices
        self.mesh = Mesh(np.asarray(devices), (BATCH_AXIS,))
        # The placement of parameters and of the update's outputs; `None` with one device,
        # where arrays keep JAX's default placement (a constraint to the one-device mesh
        # would change the parameters' type after the first step and recompile).
        self.replicated = NamedSharding(self.mesh, PartitionSpec()) if len(devices) > 1 else None
        self.n_devices = len(devices)
        # (position in the mesh, device) of this process's devices
        self._local = [(k, d) for k, d in enumerate(devices) if d.process_index == jax.process_index()]
        self.n_processes = jax.process_count()
        self.process = jax.process_index()

    @property
    def is_main(self) -> bool:
        """Only process 0 logs and writes files."""
        return self.process == 0

    def check_batch_size(self, batch_size: int, name: str = "optim.batch_size") -> None:
        """Raise `ValueError` unless `batch_size` splits evenly over the devices."""
        n = self.n_devices
        if batch_size % n:
            where = f"{self.n_processes} processes" if self.n_processes > 1 else "this process"
            lower = batch_size - batch_size % n
            options = (f"{lower} or {lower + n}" if lower else f"{n}")
            raise ValueError(
                f"`{name}` ({batch_size}) must be divisible by the number of devices ({n}, over {where}): "
                f"every batch is split evenly across them. Use e.g. {options}."
            )

    def replicate(self, tree):
        """The same value on every device (every process passes the same value)."""
        if self.n_devices == 1:
            return tree
        return jax.tree_util.tree_map(lambda a: self._put(a, self.replicated), tree)

    def _put(self, a, sharding: NamedSharding):
        if isinstance(a, jax.Array) and a.sharding.is_equivalent_to(sharding, a.ndim):
            return a  # already placed so (e.g. replicated parameters sliced under jit)
        if self.n_processes == 1:
            return jax.device_put(a, sharding)
        a = np.asarray(a)
        return jax.make_array_from_callback(a.shape, sharding, lambda index: a[index])

    def map(self, fn, shared, batch, axis: int = 0):
        """`fn(shared, part)` on every device, each on its own part of `batch`.

        `batch`: arrays split along `axis` into one equal part per device (the
        same global batch on every process); `shared`: passed whole to every
        device (replicated arrays are read from that device's copy). Each call
        is an ordinary single-device program, dispatched asynchronously, so the
        devices run side by side without meeting. Returns the outputs stacked
        along a new leading axis of length `n_devices`, split over the devices
        (reduce it under `jit`, or bring it back with `gather`).
        """
        if self.n_devices == 1:
            return jax.tree_util.tree_map(lambda a: a[None], fn(shared, batch))
        size = jax.tree_util.tree_leaves(batch)[0].shape[axis] // self.n_devices
        outs = []
        for k, device in self._local:
            rows = (slice(None),) * axis + (slice(k * size, (k + 1) * size),)
            part = jax.tree_util.tree_map(lambda a: jax.device_put(np.asarray(a)[rows], device), batch)
            outs.append(fn(jax.tree_util.tree_map(lambda a: _on(a, device), shared), part))
        stacked = NamedSharding(self.mesh, PartitionSpec(BATCH_AXIS))
        return jax.tree_util.tree_map(
            lambda *parts: jax.make_array_from_single_device_arrays(
                (self.n_devices, *parts[0].shape), stacked, [p[None] for p in parts]),
            *outs,
        )

    def local(self, tree):
        """Replicated arrays as this process's own copy (NumPy), e.g. to save them."""
        if self.n_processes == 1:
            return tree
        return jax.tree_util.tree_map(lambda a: np.asarray(a.addressable_data(0)), tree)

    def gather(self, x) -> np.ndarray:
        """A (possibly multi-process) array as one NumPy array on every process."""
        if self.n_processes > 1:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)
