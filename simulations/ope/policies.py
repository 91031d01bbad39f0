"""Evaluation distributions ``(n_actions, n_positions)`` of policies that do not learn.

``uniform`` shows every action with the same probability at every slot; ``beta_thompson``
is Bernoulli Thompson sampling on fixed Beta posteriors filling ``n_positions`` slots, with
its slot probabilities computed exactly by :func:`bandit.ranking.beta_ranking`;
``zozotown_prior`` is that policy with the Beta prior that ZOZOTOWN's production Bernoulli TS
used (published by Open Bandit Pipeline, ``obp/policy/conf/prior_bts.yaml``, Apache-2.0),
the logging policy of the ``bts`` logs of the Open Bandit Dataset.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

from bandit.base import Policy
from bandit.ranking import beta_ranking, policy_ranking

__all__ = ["beta_thompson", "policy_distribution", "uniform", "zozotown_prior"]

PRIOR_FILE = Path(__file__).resolve().parents[1] / "data" / "zozotown_bts_prior.json"


def uniform(n_actions: int, n_positions: int = 1) -> np.ndarray:
    """Every action with probability ``1 / n_actions`` at every slot."""
    return np.full((n_actions, n_positions), 1.0 / n_actions)


def beta_thompson(alpha: np.ndarray, beta: np.ndarray, n_positions: int = 1) -> np.ndarray:
    """Slot probabilities of Thompson sampling on ``Beta(alpha, beta)`` arms."""
    return beta_ranking(alpha, beta, n_positions)


@cache
def _priors() -> dict[str, dict[str, list[float]]]:
    return dict(json.loads(PRIOR_FILE.read_text())["campaigns"])


def zozotown_prior(campaign: str = "all", n_positions: int = 3) -> np.ndarray:
    """Slot probabilities of ZOZOTOWN's Bernoulli TS with its production prior.

    >>> p = zozotown_prior("all", 3)
    >>> p.shape, [round(float(s), 6) for s in p.sum(axis=0)]
    ((80, 3), [1.0, 1.0, 1.0])
    """
    priors = _priors()
    if campaign not in priors:
        raise ValueError(f"campaign must be one of {', '.join(priors)}, got {campaign!r}.")
    prior = priors[campaign]
    return beta_thompson(np.asarray(prior["alpha"]), np.asarray(prior["beta"]), n_positions)


def policy_distribution(policy: Policy, n_positions: int = 1) -> np.ndarray:
    """The slot probabilities of a :mod:`bandit` policy in its current state."""
    return policy_ranking(policy, n_positions)
