"""Learning rules on the fixed-step mode, all derived from `FixedStepNN.step` by autodiff.

`BPTT` is the reference; `RTRL` equals it online; `EProp`, `OSTL`, `OTTT` and
`RFLO` are local online approximations built on one eligibility-trace engine
(`TraceRule`); `FPTT` regularises any online rule. `train_online` updates the
parameters during a trial.
"""

from .base import LearningRule, OnlineRule, Problem, evaluate, rollout
from .bptt import BPTT
from .eprop import EProp
from .fptt import FPTT
from .objective import Grid, ReadoutCrossEntropy, StepLoss
from .online import OnlineState, train_online
from .ostl import OSTL
from .ottt import OTTT
from .rflo import RFLO
from .rtrl import RTRL
from .traces import TraceRule

__all__ = [
    "BPTT", "EProp", "FPTT", "Grid", "LearningRule", "OSTL", "OTTT", "OnlineRule", "OnlineState", "Problem",
    "RFLO", "RTRL", "ReadoutCrossEntropy", "StepLoss", "TraceRule", "evaluate", "rollout", "train_online",
]
