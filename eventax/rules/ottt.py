"""OTTT (Xiao et al. 2022): online training through time with presynaptic traces."""

from __future__ import annotations

from typing import ClassVar

from .traces import TraceRule


class OTTT(TraceRule):
    r"""OTTT: instantaneous spatial gradients times traces of the presynaptic activity.

        a_{i,k} = lambda a_{i,k-1} + S_{i,k}                 (presynaptic trace)
        dW_ij  += (dl_k/du_{j,k}) a_{i,k}                     (spatial gradient at step k)

    Here the trace is the neuron's eligibility propagated with its Jacobian at
    rest (`propagation = "rest"`: the leak, `lambda = 1 - dt/tau` for a
    delta-synapse LIF; a current-based LIF gives a two-channel trace), so it
    depends on the presynaptic spikes only and ignores resets, as in OTTT; the
    surrogate derivative is taken at the current step. The spatial signal for
    hidden neurons goes through the real weights and the outputs' resting
    dynamics (as `OSTL`).

    Approximate whenever a neuron's Jacobian departs from rest (after resets,
    for nonlinear dynamics). Memory `O(P C n_out)` per sample (traces are kept
    per weight here, not per presynaptic neuron as in the paper), time
    `O(C + n_out C)` step evaluations per step, independent of `T`.
    """

    propagation: ClassVar[str] = "rest"
    output_propagation: ClassVar[str] = "rest"
