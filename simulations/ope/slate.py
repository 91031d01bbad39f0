r"""Slate (list) estimators: the expected sum of rewards over the slots of one impression.

The log's rows are (impression, slot) pairs grouped by ``LoggedFeedback.slates``. With
:math:`p_{ik}` the logging probability of the item shown in slot :math:`k` of impression
:math:`i` and :math:`\pi_{ik}` the evaluation policy's:

``IndependentIPS``        :math:`\frac1n \sum_i \sum_k \frac{\pi_{ik}}{p_{ik}} r_{ik}` with
                          item-position marginals; unbiased when each slot's reward depends
                          on that slot's item only (Li et al. 2018).
``RewardInteractionIPS``  the same with the probabilities of the whole prefix of the list up to
                          slot :math:`k` (cascade propensities); unbiased when a slot's reward
                          depends on the items above it (McInerney et al. 2020).

Both return an :class:`~simulations.ope.base.Estimate` whose value is per impression and
whose bootstrap resamples impressions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulations.logged import LoggedFeedback
from simulations.ope.base import Estimator, Terms

__all__ = ["IndependentIPS", "RewardInteractionIPS", "SlateInput"]


def _check(values: np.ndarray | None, name: str, n: int) -> np.ndarray | None:
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}.")
    if np.any(arr < 0) or np.any(arr > 1) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be probabilities in [0, 1].")
    return arr


@dataclass(frozen=True, slots=True)
class SlateInput:
    """A slate log with the evaluation policy's probabilities of its rows.

    Attributes
    ----------
    log
        Logged rows with ``slates`` (and ``cascade_propensities`` for reward interaction).
    pi_position
        ``(n,)`` evaluation probability of each row's item at its slot (marginal).
    pi_cascade
        ``(n,)`` evaluation probability of the list prefix up to each row's slot.
    """

    log: LoggedFeedback
    pi_position: np.ndarray
    pi_cascade: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.log.slates is None:
            raise ValueError("log.slates is required by the slate estimators.")
        n = self.log.n_rounds
        object.__setattr__(self, "pi_position", _check(self.pi_position, "pi_position", n))
        object.__setattr__(self, "pi_cascade", _check(self.pi_cascade, "pi_cascade", n))

    def per_slate(self, row_values: np.ndarray) -> np.ndarray:
        """Sum ``row_values`` within each impression."""
        assert self.log.slates is not None
        _, inverse = np.unique(self.log.slates, return_inverse=True)
        return np.bincount(inverse, weights=row_values)


class IndependentIPS(Estimator[SlateInput]):
    """Independent-item IPS with item-position marginal propensities."""

    name = "iips"

    def _terms(self, data: SlateInput) -> Terms:
        w = data.pi_position / data.log.propensities
        return Terms(data.per_slate(w * data.log.rewards), None, w)


class RewardInteractionIPS(Estimator[SlateInput]):
    """Reward-interaction IPS with cascade (list-prefix) propensities."""

    name = "rips"

    def _terms(self, data: SlateInput) -> Terms:
        log = data.log
        if data.pi_cascade is None or log.cascade_propensities is None:
            raise ValueError(
                "pi_cascade and log.cascade_propensities are required by reward-interaction IPS."
            )
        w = data.pi_cascade / log.cascade_propensities
        return Terms(data.per_slate(w * log.rewards), None, w)
