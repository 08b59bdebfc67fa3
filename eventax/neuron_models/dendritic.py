"""Two-stage neuron: N active dendrites (dCaAP-like dendritic spikes) driving a LIF soma."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import random
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._checks import check_int
from ._params import Parameters, SynapseInit, check_wmask
from .base import ADAPTIVE_NETWORK_DEFAULTS, Constant, NeuronModel

_DENDRITE_PARAMS = ("tsyn", "tden", "tdca", "gdca", "gc", "v1", "v2", "v3", "v4")


class DendriticNeuron(NeuronModel):
    r"""A LIF soma fed by `n_dendrites` compartments that emit attenuating dendritic spikes.

    Per neuron, dendrite `k` has a synaptic current `i_k`, a membrane `vd_k` and
    a dendritic spike current `d_k`; the soma has a membrane `v`:

        tsyn_k di_k/dt  = -i_k
        tden_k dvd_k/dt = -vd_k + i_k
        tdca_k dd_k/dt  = -d_k + gdca_k m(vd_k) h(vd_k)
        tmem dv/dt      = -v + ic + sum_k (d_k + gc_k vd_k)

    with Morris-Lecar-style steady-state gates

        m(x) = (1 + tanh((x - v1) / v2)) / 2     (activation, opens above v1)
        h(x) = (1 - tanh((x - v3) / v4)) / 2     (inactivation, closes above v3 > v1).

    `m h` is a bump over the window `v1 < vd < v3`: the dendritic spike `d` is
    largest for threshold-level input, whose `vd` peaks inside the window, and
    shrinks for strong input, which drives `vd` through and past it, like the
    dendritic calcium action potentials (dCaAPs) of human L2/3 neurons (Gidon
    et al., Science 2020). So one neuron computes XOR: with the defaults and
    two inputs of weight 3 on one dendrite, one input lifts `vd` to 1.23 and
    the soma spikes; both lift it to 2.46 and the soma stays below threshold.

    State `(v, i, vd, d)`: `v` `(n_neurons,)` and the dendrites' `i`, `vd`, `d`
    `(n_neurons, N)` each, all 0 at `t0`; `observe` returns them side by side,
    `(n_neurons, 1 + 3 N)` = `(v, i_1..i_N, vd_1..vd_N, d_1..d_N)`. Spike when `v` crosses
    `thresh` upwards; reset `v -> vreset` (dendrites are not reset).

    Synapses: `weights[k, j, n]` `(n_neurons + in_size, n_neurons, N)`; a spike
    of presynaptic row `k` (neurons first, then inputs) adds `weights[k, j, n]`
    to `i_n` of neuron `j`, so row `k` has one synapse on each dendrite. With
    `dendrite_map` (ints in `[0, N)`, shape `(n_neurons + in_size,)` or
    `(n_neurons + in_size, n_neurons)`) row `k` contacts only dendrite
    `dendrite_map[k(, j)]` of each target; the other weights stay 0.

    Learnable: `weights`, soma bias `ic` `(n_neurons,)`; any of `thresh,
    vreset, tmem` (per neuron) and `tsyn, tden, tdca, gdca, gc, v1, v2, v3, v4`
    (per neuron and dendrite, `(n_neurons, N)`) named in `trainable`. Dendrite
    parameters accept a scalar, `(N,)` (per dendrite) or `(n_neurons, N)`.

    | parameter | default | meaning |
    |---|---|---|
    | `n_dendrites` | 2 | dendrites per neuron (N) |
    | `thresh`, `vreset` | 1, 0 | somatic threshold, reset (< thresh) |
    | `tmem` | 10 | somatic membrane time constant (> 0) |
    | `tsyn`, `tden` | 5, 4 | synaptic / dendritic membrane time constants (> 0) |
    | `tdca` | 2 | dendritic spike current time constant (> 0) |
    | `gdca` | 4.5 | dendritic spike amplitude (>= 0) |
    | `gc` | 0.1 | passive dendrite-to-soma coupling (>= 0) |
    | `v1`, `v2` | 1, 0.1 | activation midpoint, slope (> 0) |
    | `v3`, `v4` | 1.3, 0.1 | inactivation midpoint (> v1), slope (> 0) |

    Weights and bias: the keywords of `SynapseInit` (`wlim` default `4 v1`, `drive`
    default `16 v1`; the fan-in and the drive are per dendrite).
    """

    time_constants: ClassVar[tuple[str, ...]] = ("tsyn", "tden", "tdca", "tmem")
    # the dendritic spike's steep upswing wants adaptive steps; layered: 4x the event
    # loop's speed on yy-5-3 (7 dendrites) TTFS at the same accuracy
    network_defaults: ClassVar[dict[str, Any]] = {**ADAPTIVE_NETWORK_DEFAULTS, "engine": "layered"}

    weights: Float[Array, "pre neurons dendrites"]
    ic: Float[Array, " neurons"]
    thresh: Array | Constant
    vreset: Array | Constant
    tmem: Array | Constant
    tsyn: Array | Constant
    tden: Array | Constant
    tdca: Array | Constant
    gdca: Array | Constant
    gc: Array | Constant
    v1: Array | Constant
    v2: Array | Constant
    v3: Array | Constant
    v4: Array | Constant
    dendrite_mask: Constant | None
    n_dendrites: int = eqx.field(static=True)

    def __init__(
        self,
        key: PRNGKeyArray,
        n_neurons: int,
        in_size: int,
        wmask,
        n_dendrites: int = 2,
        thresh=1.0,
        vreset=0.0,
        tmem=10.0,
        tsyn=5.0,
        tden=4.0,
        tdca=2.0,
        gdca=4.5,
        gc=0.1,
        v1=1.0,
        v2=0.1,
        v3=1.3,
        v4=0.1,
        dendrite_map=None,
        trainable=(),
        dtype=jnp.float32,
        **synapses,
    ):
        check_int("n_dendrites", n_dendrites, 1)
        self.dtype = dtype
        self.n_dendrites = nd = int(n_dendrites)
        n = n_neurons
        par = Parameters(n, dtype, trainable, ("thresh", "vreset", "tmem") + _DENDRITE_PARAMS)
        self.thresh = par("thresh", thresh)
        self.vreset = par("vreset", vreset)
        self.tmem = par("tmem", tmem, positive=True)
        if not jnp.all(self.param(self.vreset) < self.param(self.thresh)):
            raise ValueError(f"`vreset` ({vreset}) must be below `thresh` ({thresh}).")
        values = dict(tsyn=tsyn, tden=tden, tdca=tdca, gdca=gdca, gc=gc, v1=v1, v2=v2, v3=v3, v4=v4)
        for name in _DENDRITE_PARAMS:
            positive = name in ("tsyn", "tden", "tdca", "v2", "v4")
            p = _dendrite_parameter(name, values[name], n, nd, dtype, name in par.trainable, positive)
            setattr(self, name, p)
        for name in ("gdca", "gc"):
            if not np.all(np.asarray(self.param(getattr(self, name))) >= 0):
                raise ValueError(f"`{name}` must be non-negative; got {values[name]}.")
        if not np.all(np.asarray(self.param(self.v3)) > np.asarray(self.param(self.v1))):
            raise ValueError(
                f"`v3` ({v3}) must exceed `v1` ({v1}): inactivation sits above activation."
            )

        mask = check_wmask(wmask, n, in_size)[:, :, None]
        mask = mask & _dendrite_onehot(dendrite_map, n + in_size, n, nd)
        self.dendrite_mask = None if dendrite_map is None else Constant(mask)
        scale = 4.0 * float(np.max(np.asarray(self.param(self.v1))))
        init = SynapseInit.of(type(self), scale, synapses, default_drive=4.0 * scale)
        self.weights = _dendritic_weights(key, mask, dtype, init)
        self.ic = init.bias(random.fold_in(key, 1), n, dtype)

    def dendritic_drive(
        self, vd: Float[Array, "neurons dendrites"]
    ) -> Float[Array, "neurons dendrites"]:
        """Steady-state dendritic spike current `gdca m(vd) h(vd)`."""
        p = self.param
        m = 0.5 * (1.0 + jnp.tanh((vd - p(self.v1)) / p(self.v2)))
        h = 0.5 * (1.0 - jnp.tanh((vd - p(self.v3)) / p(self.v4)))
        return p(self.gdca) * m * h

    def init_state(self, n_neurons: int) -> tuple[Float[Array, "neurons *dendrites"], ...]:
        dendrites = jnp.zeros((n_neurons, self.n_dendrites), self.dtype)
        return jnp.zeros((n_neurons,), self.dtype), dendrites, dendrites, dendrites

    def dynamics(self, t, y, args: Any):
        p = self.param
        v, i, vd, d = y
        soma_in = jnp.sum(d + p(self.gc) * vd, axis=1)
        dv = (-v + self.ic + soma_in) / p(self.tmem)
        di = -i / p(self.tsyn)
        dvd = (-vd + i) / p(self.tden)
        dd = (-d + self.dendritic_drive(vd)) / p(self.tdca)
        return dv, di, dvd, dd

    def spike_condition(self, t, y) -> Float[Array, " neurons"]:
        return y[0] - self.param(self.thresh)

    def input_spike(
        self, y, from_idx: Int[Array, ""], to_idx: Int[Array, " targets"], valid_mask: Bool[Array, " targets"]
    ):
        w = self.weights[from_idx, to_idx]
        if self.dendrite_mask is not None:
            w = w * jnp.asarray(self.dendrite_mask.value)[from_idx, to_idx]
        w = jnp.where(valid_mask[:, None], w, 0.0)
        v, i, vd, d = y
        return v, i.at[to_idx].add(w), vd, d

    def reset_spiked(self, y, spike_mask: Bool[Array, " neurons"]):
        v, i, vd, d = y
        return jnp.where(spike_mask, self.param(self.vreset), v), i, vd, d


Dendritic = DendriticNeuron


def _dendrite_parameter(name, value, n, nd, dtype, trainable, positive):
    """A scalar, per-dendrite `(nd,)` or per-neuron-and-dendrite `(n, nd)` parameter."""
    arr = np.asarray(value, dtype=np.dtype(dtype))
    if arr.shape not in ((), (nd,), (n, nd)):
        raise ValueError(
            f"`{name}` must be a scalar or have shape ({nd},) (per dendrite) or ({n}, {nd}); "
            f"got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite; got {value!r}.")
    if positive and not np.all(arr > 0):
        raise ValueError(f"`{name}` must be positive; got {value!r}.")
    if trainable:
        return jnp.asarray(np.broadcast_to(arr, (n, nd)), dtype)
    return Constant(arr)


def _dendritic_weights(key, mask, dtype, synapses: SynapseInit):
    """Weights `(pre, neurons, N)`, zero where `mask` is; fan-in counted per dendrite.

    `init_weights` may be a scalar, `(pre, neurons)` (same weight on every contacted
    dendrite) or anything broadcastable to `(pre, neurons, N)`.
    """
    n_pre, n, nd = mask.shape
    init = synapses.init_weights
    if init is not None:
        init = np.asarray(init)
        if init.ndim == 2:
            init = init[:, :, None]
        if init.ndim > 3 or any(a not in (1, b) for a, b in zip(init.shape[::-1], mask.shape[::-1])):
            raise ValueError(
                f"`init_weights` must be a scalar or broadcast to ({n_pre}, {n}) or "
                f"({n_pre}, {n}, {nd}); got shape {init.shape}."
            )
        init = np.broadcast_to(init, mask.shape).reshape(n_pre, n * nd)
    flat = dataclasses.replace(synapses, init_weights=init)
    return flat.weights(key, mask.reshape(n_pre, n * nd), dtype, n_neurons=n).reshape(mask.shape)


def _dendrite_onehot(dendrite_map, n_pre, n, nd):
    """Bool `(n_pre, n, nd)`: which dendrite(s) of each target a presynaptic row contacts."""
    if dendrite_map is None:
        return np.ones((n_pre, n, nd), bool)
    dmap = np.asarray(dendrite_map)
    if dmap.shape == (n_pre,):
        dmap = np.broadcast_to(dmap[:, None], (n_pre, n))
    if dmap.shape != (n_pre, n) or not np.issubdtype(dmap.dtype, np.integer):
        raise ValueError(
            f"`dendrite_map` must be integers of shape ({n_pre},) or ({n_pre}, {n}); "
            f"got {dmap.dtype} of shape {dmap.shape}."
        )
    if dmap.size and (dmap.min() < 0 or dmap.max() >= nd):
        raise ValueError(f"`dendrite_map` entries must lie in [0, n_dendrites={nd}).")
    return dmap[:, :, None] == np.arange(nd)
