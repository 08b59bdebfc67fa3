"""Data parallelism with JAX's own machinery: one mesh axis over all devices of all processes.

Parameters and optimiser state are replicated; each batch is split along its
first axis across devices (`NamedSharding(mesh, P("batch"))`), and `jit`
inserts the all-reduce of the gradient. With several processes
(`jax.distributed.initialize()`), every process holds the whole dataset, builds
the same global batch from the same seed, and feeds only its own slice of it.

Cost: `jax.vmap` turns each sample's event loop into one loop that runs while
any sample of the batch is still running. Sharded over devices, that stopping
test is a reduction over the whole batch, so XLA all-reduces a flag across all
devices in every iteration of every loop (forward and backward). The result is
exact; the price is one collective per solver step, cheap between local
devices, slow over a network (gloo on CPU: milliseconds each).
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


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
        self.mesh = Mesh(np.asarray(devices), ("batch",))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.n_devices = len(devices)
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

    def shard(self, tree, axis: int = 1):
        """A global batch (the same on every process), split over the devices along `axis`
        (the training step's batches are `(seeds, batch, ...)`, hence axis 1).

        With several processes each one transfers only the rows of its own
        devices: which rows those are is read off the sharding, so any order of
        the devices in the mesh and any number of devices per process work.
        """
        if self.n_devices == 1:
            return tree
        split = NamedSharding(self.mesh, PartitionSpec(*([None] * axis), "batch"))
        return jax.tree_util.tree_map(lambda a: self._put(a, split), tree)

    def _put(self, a, sharding: NamedSharding):
        if isinstance(a, jax.Array) and a.sharding.is_equivalent_to(sharding, a.ndim):
            return a  # already placed so (e.g. replicated parameters sliced under jit)
        if self.n_processes == 1:
            return jax.device_put(a, sharding)
        a = np.asarray(a)
        return jax.make_array_from_callback(a.shape, sharding, lambda index: a[index])

    def shard_samples(self, tree):
        """A batch of samples `(batch, ...)` split over the devices."""
        return self.shard(tree, axis=0)

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
