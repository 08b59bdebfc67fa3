"""OSTL (Bohnstingl et al. 2022): online spatio-temporal learning."""

from __future__ import annotations

from typing import ClassVar

from .traces import TraceRule


class OSTL(TraceRule):
    r"""OSTL: the gradient split into temporal eligibility and a spatial learning signal.

    Temporal: each neuron's eligibility of its own state, carried forward with
    its Jacobian at the current state (as `EProp`). Spatial: the loss's
    derivative with respect to the state where a parameter acts,
    `dl_k/dy_{j,k}^-` for output neurons; for a hidden neuron, its spikes'
    effect on the outputs through the real weights (backpropagation through
    the output layer), carried through the outputs' dynamics linearised at rest
    (`output_propagation = "rest"`): the temporal dependence of the output
    layer's state on the hidden layer is kept only to first order, which is
    OSTL's approximation across layers (a spike reaches the outputs one grid
    step later and their observed channel possibly later still, so a purely
    instantaneous signal would vanish for current-based synapses).

    Exact for a single layer (every neuron an output) without connections among
    its neurons; approximate across layers. Memory `O(P C n_out)` per sample,
    time `O(C + n_out C)` step evaluations per step, independent of `T`.
    """

    propagation: ClassVar[str] = "state"
    output_propagation: ClassVar[str] = "rest"
