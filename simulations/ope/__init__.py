"""Off-policy evaluation: estimators over :class:`simulations.logged.LoggedFeedback`.

>>> import numpy as np
>>> from simulations.logged import LoggedFeedback
>>> from simulations.ope import IPS, SNIPS, evaluation_input
>>> log = LoggedFeedback(actions=[0, 1, 0, 1], rewards=[1.0, 0.0, 0.0, 1.0],
...                      propensities=[0.5] * 4, n_actions=2)
>>> data = evaluation_input(log, np.array([0.8, 0.2]))
>>> round(IPS().estimate(data).value, 3), round(SNIPS().estimate(data).value, 3)
(0.5, 0.5)
"""

from simulations.ope.base import (
    Estimate,
    Estimator,
    EvaluationInput,
    bootstrap_interval,
    evaluation_input,
    rows_input,
)
from simulations.ope.estimators import DM, DR, DROS, IPS, SNIPS, Replay, SwitchDR
from simulations.ope.reward_model import LinearRewardModel
from simulations.ope.slate import IndependentIPS, RewardInteractionIPS, SlateInput

ESTIMATORS: dict[str, type[Estimator]] = {
    cls.name: cls for cls in (Replay, IPS, SNIPS, DM, DR, SwitchDR, DROS)
}
#: Estimators that need a reward model.
MODEL_BASED = frozenset({"dm", "dr", "switch-dr", "dr-os"})

__all__ = [
    "DM",
    "DR",
    "DROS",
    "ESTIMATORS",
    "IPS",
    "MODEL_BASED",
    "SNIPS",
    "Estimate",
    "Estimator",
    "EvaluationInput",
    "IndependentIPS",
    "LinearRewardModel",
    "Replay",
    "RewardInteractionIPS",
    "SlateInput",
    "SwitchDR",
    "bootstrap_interval",
    "evaluation_input",
    "rows_input",
]
