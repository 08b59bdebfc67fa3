"""Event-based gated recurrent unit (EGRU) in continuous time."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax import random
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from ._params import Parameters, SynapseInit, check_wmask
from .base import Constant, NeuronModel

_GATES = ("u", "r", "z")


class EGRU(NeuronModel):
    r"""Continuous-time event-based GRU (Subramoney et al., ICLR 2023) with spike inputs.

    Each cell keeps a cell state `c` and one input current per gate; cells
    exchange binary spikes only, never `c`. Between events (`σ` the logistic
    function):

        tsyn di_g/dt = -i_g                       (g = u, r, z)
        u = σ(i_u + b_u),  r = σ(i_r + b_r),  z = tanh(b_z + r i_z)
        tmem dc/dt = u (z - c)

    so `c` relaxes towards the candidate `z` at a rate set by the update gate
    `u`, linearly in `c` (the continuous-time limit of the GRU update
    `c <- u z + (1 - u) c`). The reset gate `r` of the receiving cell scales
    its spike-driven candidate drive, as in the "reset-after" GRU
    `z = tanh(b + r ⊙ W h)`; the paper's events carry `c` (graded), here they
    are binary, so a cell never reads another cell's state.
    State `(c, i_u, i_r, i_z)`, one `(neurons,)` array each, all 0 at `t0`; `observe` returns
    `(c, u, r, z)`.

    Event: `c` crosses `thresh` (ϑ) upwards; reset by subtraction `c -> c - ϑ`
    (gates and currents are unchanged). A spike of presynaptic row `k`
    (neurons first, then inputs) adds `W_u[k, j], W_r[k, j], W_z[k, j]` to
    `i_u, i_r, i_z` of neuron `j`.

    Learnable: `W_u, W_r, W_z` `(n_neurons + in_size, n_neurons)`, `b_u, b_r,
    b_z` `(n_neurons,)`; any of `thresh, tsyn, tmem` named in `trainable`.

    | parameter | default | meaning |
    |---|---|---|
    | `thresh` | 0.5 | event threshold ϑ on `c`, in (0, 1) since `|z| < 1` |
    | `tsyn`, `tmem` | 5, 20 | gate-current / cell time constant (> 0) |
    | `bias_u_mean`, `bias_r_mean`, `bias_z_mean` | -2, 1, 0 | bias centres |

    Weights and biases of each gate: the keywords of `SynapseInit` (`wlim` default 4,
    `drive` default 32 on every gate: a cell of a recurrent network spikes about once
    per 30 time units of Yin-Yang-like input; `blim` around the gate's bias centre);
    `init_weights` / `init_bias` set all three gates, or per gate as a mapping
    `{"u": ..., "r": ..., "z": ...}` (a missing gate gets the default init).
    The cell is slow by design (`c` relaxes at rate `u / tmem <= 1 / tmem`): at the
    defaults a driven cell first spikes after ~15-25 time units, so each feed-forward
    layer of EGRUs adds about that much latency.
    """

    time_constants: ClassVar[tuple[str, ...]] = ("tsyn", "tmem")

    W_u: Float[Array, "pre neurons"]
    W_r: Float[Array, "pre neurons"]
    W_z: Float[Array, "pre neurons"]
    b_u: Float[Array, " neurons"]
    b_r: Float[Array, " neurons"]
    b_z: Float[Array, " neurons"]
    thresh: Array | Constant
    tsyn: Array | Constant
    tmem: Array | Constant

    def __init__(
        self,
        key: PRNGKeyArray,
        n_neurons: int,
        in_size: int,
        wmask,
        thresh=0.5,
        tsyn=5.0,
        tmem=20.0,
        bias_u_mean: float = -2.0,
        bias_r_mean: float = 1.0,
        bias_z_mean: float = 0.0,
        init_weights=None,
        init_bias=None,
        trainable=(),
        dtype=jnp.float32,
        **synapses,
    ):
        self.dtype = dtype
        n = n_neurons
        par = Parameters(n, dtype, trainable, ("thresh",) + self.time_constants)
        self.thresh = par("thresh", thresh)
        self.tsyn = par("tsyn", tsyn, positive=True)
        self.tmem = par("tmem", tmem, positive=True)
        theta = np.asarray(self.param(self.thresh))
        if not np.all((theta > 0) & (theta < 1)):
            raise ValueError(
                f"`thresh` must lie in (0, 1): the reset c -> c - thresh must fall below it, and "
                f"c never exceeds |z| < 1; got {thresh}."
            )
        if "bmean" in synapses:
            raise ValueError("EGRU sets its bias centres per gate: `bias_u_mean`, `bias_r_mean`, `bias_z_mean`.")
        mask = check_wmask(wmask, n, in_size)
        shared = SynapseInit.of(type(self), 4.0, synapses, default_drive=32.0)
        w_init = _per_gate("init_weights", init_weights)
        b_init = _per_gate("init_bias", init_bias)
        means = {"u": bias_u_mean, "r": bias_r_mean, "z": bias_z_mean}
        for g_idx, g in enumerate(_GATES):
            k_w, k_b = random.split(random.fold_in(key, g_idx))
            gate = dataclasses.replace(shared, init_weights=w_init[g], bmean=means[g], init_bias=b_init[g])
            setattr(self, f"W_{g}", gate.weights(k_w, mask, dtype))
            setattr(self, f"b_{g}", gate.bias(k_b, n, dtype))

    def init_state(self, n_neurons: int) -> tuple[Float[Array, " neurons"], ...]:
        zeros = jnp.zeros((n_neurons,), self.dtype)
        return zeros, zeros, zeros, zeros

    def gates(self, y) -> tuple[Array, Array, Array]:
        """Update, reset and candidate gates `(u, r, z)`, each `(n_neurons,)`."""
        _, i_u, i_r, i_z = y
        u = jax.nn.sigmoid(i_u + self.b_u)
        r = jax.nn.sigmoid(i_r + self.b_r)
        return u, r, jnp.tanh(self.b_z + r * i_z)

    def dynamics(self, t, y, args: Any):
        u, _, z = self.gates(y)
        tsyn = self.param(self.tsyn)
        return (u * (z - y[0]) / self.param(self.tmem),) + tuple(-i / tsyn for i in y[1:])

    def spike_condition(self, t, y) -> Float[Array, " neurons"]:
        return y[0] - self.param(self.thresh)

    def input_spike(
        self, y, from_idx: Int[Array, ""], to_idx: Int[Array, " targets"], valid_mask: Bool[Array, " targets"]
    ):
        jumps = (self.W_u, self.W_r, self.W_z)
        return (y[0],) + tuple(
            i.at[to_idx].add(jnp.where(valid_mask, w[from_idx, to_idx], 0.0)) for i, w in zip(y[1:], jumps)
        )

    def reset_spiked(self, y, spike_mask: Bool[Array, " neurons"]):
        c = jnp.where(spike_mask, y[0] - self.param(self.thresh), y[0])
        return (c,) + tuple(y[1:])

    def observe(self, y) -> Float[Array, "neurons 4"]:
        u, r, z = self.gates(y)
        return jnp.stack([y[0], u, r, z], axis=1)


def _per_gate(name, value) -> dict:
    """`value` for every gate, or a `{"u", "r", "z"}` mapping (missing gates: None)."""
    if not isinstance(value, Mapping):
        return dict.fromkeys(_GATES, value)
    unknown = set(value) - set(_GATES)
    if unknown:
        raise ValueError(f"`{name}` keys must be among {_GATES}; got {sorted(unknown)}.")
    return {g: value.get(g) for g in _GATES}
