"""Learning rules on the fixed-step mode, all derived from `FixedStepNN.step` by autodiff.

`BPTT` is the reference; `RTRL` equals it online; `EProp`, `OSTL`, `OTTT` and
`RFLO` are local online approximations built on one eligibility-trace engine
(`TraceRule`). Rules own only gradient estimation; what acts on the gradient is an
Optax transformation chained before the optimiser (`fptt`, FPTT's regulariser).
`train_online` updates the parameters during a trial.
"""

from .base import LearningRule, OnlineRule, Problem, evaluate, rollout
from .bptt import BPTT
from .eprop import EProp
from .fptt import FPTTState, fptt
from .objective import Grid, ReadoutCrossEntropy, StepLoss
from .online import OnlineState, train_online
from .ostl import OSTL
from .ottt import OTTT
from .rflo import RFLO
from .rtrl import RTRL
from .traces import TraceRule

__all__ = [
    "BPTT", "EProp", "FPTTState", "Grid", "LearningRule", "OSTL", "OTTT", "OnlineRule", "OnlineState", "Problem",
    "RFLO", "RTRL", "ReadoutCrossEntropy", "StepLoss", "TraceRule", "evaluate", "fptt", "rollout", "train_online",
]
