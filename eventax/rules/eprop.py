"""e-prop (Bellec et al. 2020): eligibility traces times a broadcast learning signal."""

from __future__ import annotations

from typing import ClassVar

from .traces import TraceRule


class EProp(TraceRule):
    r"""e-prop: `dL/dtheta_ji ~ sum_k L_{j,k} ebar_{ji,k}` with local eligibility traces.

    Eligibility (neuron `j`'s own state `h_j`, other neurons' spikes fixed):

        eps_{ji,k} = (dh_{j,k}/dh_{j,k-1}) eps_{ji,k-1} + dh_{j,k}/dtheta_{ji},
        e_{ji,k}   = (dS_{j,k}/dh_{j,k}) eps_{ji,k}                (surrogate in dS/dh)

    at the current state (for LIF this is the filtered presynaptic trace times
    the pseudo-derivative; any model gets its traces from autodiff of its step;
    ALIF's adaptation trace appears when the reset keeps its derivative,
    `detach_reset=False`, because the adaptation jump happens in `reset_spiked`). The learning signal of a
    hidden neuron is its effect on the outputs through `feedback` weights —
    `"symmetric"` (the readout weights themselves), `"random"` or `"adaptive"` —
    with the outputs' own dynamics applied to the trace (the low-pass filter of
    the paper, here the outputs' own Jacobian at their current state, exact for
    any output model). Output neurons learn from their exact local traces.

    Exact (equal to BPTT) when the hidden neurons have no connections among
    themselves, outputs none among themselves or back to hidden neurons, and
    `feedback = "symmetric"`; approximate otherwise (recurrent spikes are
    treated as inputs in the traces). Memory `O(P C n_out)` per sample, time
    `O(C + n_out C)` step evaluations per step; both independent of `T`.
    """

    propagation: ClassVar[str] = "state"
    output_propagation: ClassVar[str] = "state"
