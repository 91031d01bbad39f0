r"""Off-policy estimators of a policy's mean reward per round, one small class each.

Notation: round :math:`i` logged action :math:`a_i` at position :math:`k_i` with reward
:math:`r_i` and logging propensity :math:`p_i`; the evaluation policy puts probability
:math:`\pi_i(a)` on action :math:`a` at that position; :math:`w_i = \pi_i(a_i)/p_i`;
a reward model predicts :math:`\hat q_i(a)`, and :math:`\hat v_i = \sum_a \pi_i(a)\hat q_i(a)`.

=====================  ====================================================================
``Replay``             :math:`\sum_i m_i r_i / \sum_i m_i`, :math:`m_i = 1[\tilde a_i = a_i]`,
                       :math:`\tilde a_i \sim \pi_i` (Li et al. 2011; uniform logs only)
``IPS``                :math:`\frac1n \sum_i w_i r_i`
``SNIPS``              :math:`\sum_i w_i r_i / \sum_i w_i`
``DM``                 :math:`\frac1n \sum_i \hat v_i`
``DR``                 :math:`\frac1n \sum_i \hat v_i + w_i (r_i - \hat q_i(a_i))`
``SwitchDR``           DR with the correction kept only where :math:`w_i \le \tau`
                       (Wang et al. 2017)
``DROS``               DR with :math:`w_i` shrunk to :math:`\lambda w_i / (w_i^2 + \lambda)`
                       (Su et al. 2020)
=====================  ====================================================================

Every estimator returns an :class:`~simulations.ope.base.Estimate` with a seeded,
vectorised bootstrap interval. IPS and SNIPS match Open Bandit Pipeline's ``IPW`` and
``SNIPW`` on the same inputs.
"""

from __future__ import annotations

import numpy as np

from bandit.validation import check_scalar
from simulations.ope.base import Estimator, EvaluationInput, Terms

__all__ = ["DM", "DR", "DROS", "IPS", "SNIPS", "Replay", "SwitchDR"]


class IPS(Estimator[EvaluationInput]):
    """Inverse propensity scoring (Horvitz-Thompson): unbiased when the logging policy
    covers every action the evaluation policy takes.

    >>> from simulations.logged import LoggedFeedback
    >>> from simulations.ope.base import evaluation_input
    >>> log = LoggedFeedback(actions=[0, 1, 0, 1], rewards=[1.0, 0.0, 1.0, 1.0],
    ...                      propensities=[0.5] * 4, n_actions=2)
    >>> IPS().estimate(evaluation_input(log, np.array([1.0, 0.0]))).value  # always action 0
    1.0
    """

    name = "ips"

    def _terms(self, data: EvaluationInput) -> Terms:
        w = data.weights
        return Terms(w * data.log.rewards, None, w)


class SNIPS(Estimator[EvaluationInput]):
    """Self-normalised IPS: IPS divided by the mean weight; biased, lower variance."""

    name = "snips"

    def _terms(self, data: EvaluationInput) -> Terms:
        w = data.weights
        return Terms(w * data.log.rewards, w, w)


class DM(Estimator[EvaluationInput]):
    """Direct method: the reward model's value of the evaluation distribution."""

    name = "dm"

    def _terms(self, data: EvaluationInput) -> Terms:
        q = data.require_model(self.name)
        v = np.einsum("ij,ij->i", data.pi_position, q)
        return Terms(v, None, None)


def _dm_and_residual(data: EvaluationInput, name: str) -> tuple[np.ndarray, np.ndarray]:
    q = data.require_model(name)
    v = np.einsum("ij,ij->i", data.pi_position, q)
    log = data.log
    residual = log.rewards - q[np.arange(log.n_rounds), log.actions]
    return v, residual


class DR(Estimator[EvaluationInput]):
    """Doubly robust: DM plus the importance-weighted residual of the reward model."""

    name = "dr"

    def _terms(self, data: EvaluationInput) -> Terms:
        v, residual = _dm_and_residual(data, self.name)
        w = data.weights
        return Terms(v + w * residual, None, w)


class SwitchDR(Estimator[EvaluationInput]):
    """Switch-DR: DR where ``w <= tau``, DM alone where the weight is larger.

    Parameters
    ----------
    tau
        Weight threshold (default 10).
    """

    name = "switch-dr"

    def __init__(self, *, tau: float = 10.0, **kwargs: int | float) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.tau = float(check_scalar(tau, "tau", min_val=0.0))

    def _terms(self, data: EvaluationInput) -> Terms:
        v, residual = _dm_and_residual(data, self.name)
        w = data.weights
        kept = np.where(w <= self.tau, w, 0.0)
        return Terms(v + kept * residual, None, kept)


class DROS(Estimator[EvaluationInput]):
    """DR with optimistic shrinkage: weights ``lambda w / (w^2 + lambda)``.

    Parameters
    ----------
    lambda_
        Shrinkage strength (default 10); large values recover DR, 0 gives DM.
    """

    name = "dr-os"

    def __init__(self, *, lambda_: float = 10.0, **kwargs: int | float) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.lambda_ = float(check_scalar(lambda_, "lambda_", min_val=0.0))

    def _terms(self, data: EvaluationInput) -> Terms:
        v, residual = _dm_and_residual(data, self.name)
        w = data.weights
        shrunk = self.lambda_ * w / (w * w + self.lambda_) if self.lambda_ > 0 else 0.0 * w
        return Terms(v + shrunk * residual, None, shrunk)


class Replay(Estimator[EvaluationInput]):
    """Replay (Li et al. 2011) of a fixed evaluation distribution on a uniform log.

    Each round draws the evaluation policy's action (seeded by ``seed``) and keeps the round
    when it equals the logged one; the estimate is the mean reward of the kept rounds. It is
    unbiased only when the logging policy was uniform at each position, so a log whose
    propensities differ within a position is rejected. Learning policies are replayed by
    :func:`simulations.replay.replay`.
    """

    name = "replay"

    def _terms(self, data: EvaluationInput) -> Terms:
        log = data.log
        for k in range(log.n_positions):
            p = log.propensities[log.positions == k]
            if p.size and not np.allclose(p, p[0], rtol=1e-9, atol=0.0):
                raise ValueError(
                    "propensities must be equal within each position for replay (a uniform "
                    "logging policy); use IPS, SNIPS or DR on this log."
                )
        # A stream of its own: not that of default_rng(seed), which may have drawn the log.
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(9,)))
        cdf = np.cumsum(data.pi_position, axis=1)
        u = rng.random(log.n_rounds) * cdf[:, -1]
        drawn = (cdf < u[:, None]).sum(axis=1)
        match = (drawn == log.actions).astype(np.float64)
        return Terms(match * log.rewards, match, match)
