"""RFLO (Murray 2019): random-feedback local online learning."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx

from .traces import TraceRule


class RFLO(TraceRule):
    r"""RFLO: leaky local traces times a randomly fed-back output error.

        p_{ji,k} = (1 - dt/tau) p_{ji,k-1} + (dt/tau) phi'(u_{j,k}) r_{i,k}      (trace)
        dW_ji  += (B err_k)_j p_{ji,k},      B fixed and random

    Here the trace is the neuron's eligibility propagated with its Jacobian at
    rest (`propagation = "rest"`, the leak), and a hidden neuron's signal is the
    output error fed back through random weights of the readout's scale
    (`feedback = "random"` by default), filtered by the outputs' resting
    dynamics. Output neurons learn from their exact local traces (for a linear
    readout: the delta rule).

    Approximate by design (random feedback, resting Jacobians). Memory
    `O(P C n_out)` per sample, time `O(C + n_out C)` step evaluations per step,
    independent of `T`.
    """

    propagation: ClassVar[str] = "rest"
    output_propagation: ClassVar[str] = "rest"
    feedback: str = eqx.field(static=True, default="random")
