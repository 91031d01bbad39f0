"""Offline evaluation of candidate policies on one log: every candidate x every estimator.

A candidate is either a fixed distribution over actions and slots (``uniform``, a ranking
distribution, an array given by the user) or a learning policy from :mod:`bandit`, which is
replayed on the log (:func:`simulations.replay.replay`) with its allocation before every row
recorded; the estimators then weigh that allocation. ``Replay`` needs a uniform logging
policy and is skipped (with a note) on other logs. One reward model is fitted per log and
shared by the model-based estimators.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bandit.base import Policy
from simulations.logged import LoggedFeedback
from simulations.ope import (
    ESTIMATORS,
    MODEL_BASED,
    EvaluationInput,
    LinearRewardModel,
    evaluation_input,
    rows_input,
)
from simulations.ope.base import Terms, bootstrap_interval
from simulations.replay import ReplayResult, replay

__all__ = ["Candidate", "OfflineResult", "OfflineRow", "evaluate_offline"]


@dataclass(frozen=True)
class Candidate:
    """A policy to evaluate: ``distribution`` ``(n_actions, n_positions)`` (or
    ``(n_rounds, n_actions, n_positions)``) for a fixed one, ``make_policy`` for a learning one."""

    name: str
    distribution: np.ndarray | None = None
    make_policy: Callable[[], Policy] | None = None

    def __post_init__(self) -> None:
        if (self.distribution is None) == (self.make_policy is None):
            raise ValueError(
                f"candidate {self.name!r} needs exactly one of distribution and make_policy."
            )


@dataclass(frozen=True, slots=True)
class OfflineRow:
    """One estimate of one candidate's mean reward per round."""

    policy: str
    estimator: str
    value: float
    ci_low: float
    ci_high: float
    ess: float
    max_weight: float
    n_rounds: int
    seconds: float


@dataclass
class OfflineResult:
    """All rows, notes on skipped estimators and timings."""

    log_name: str
    n_rounds: int
    on_policy_mean: float
    rows: list[OfflineRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (nan written as None)."""

        def clean(v: Any) -> Any:
            return None if isinstance(v, float) and not np.isfinite(v) else v

        return {
            "log": self.log_name,
            "n_rounds": self.n_rounds,
            "logged_mean_reward": self.on_policy_mean,
            "estimates": [{k: clean(v) for k, v in asdict(r).items()} for r in self.rows],
            "notes": self.notes,
            "seconds": self.seconds,
        }


def _replay_row(result: ReplayResult, log: LoggedFeedback, est: Any, seconds: float) -> OfflineRow:
    m = result.matched.astype(np.float64)
    terms = Terms(m * log.rewards, m, m)
    low, high = bootstrap_interval(
        terms.num, terms.den, n_bootstrap=est.n_bootstrap, confidence=est.confidence, seed=est.seed
    )
    return OfflineRow(
        result.policy, "replay", result.value, low, high, float(m.sum()), 1.0, log.n_rounds, seconds
    )


def _uniform_log(log: LoggedFeedback) -> bool:
    for k in range(log.n_positions):
        p = log.propensities[log.positions == k]
        if p.size and not np.allclose(p, p[0], rtol=1e-9, atol=0.0):
            return False
    return True


def evaluate_offline(
    log: LoggedFeedback,
    candidates: Sequence[Candidate],
    estimators: Sequence[str] = ("replay", "ips", "snips", "dm", "dr", "switch-dr", "dr-os"),
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    batch: int = 1,
    reward_model: LinearRewardModel | None = None,
    progress: Callable[[int], None] | None = None,
    on_replay_start: Callable[[str], None] | None = None,
) -> OfflineResult:
    """Estimate every candidate's mean reward per round with every estimator.

    ``batch`` is the replay's update period for learning candidates (1: exact per-row
    replay). ``progress`` receives rows replayed. Raises ``ValueError`` for an unknown
    estimator or a candidate that does not fit the log.
    """
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown:
        raise ValueError(
            f"estimators must be among {', '.join(ESTIMATORS)}; unknown: {', '.join(unknown)}."
        )
    result = OfflineResult(log.name, log.n_rounds, float(log.rewards.mean()))
    q_hat = None
    if any(e in MODEL_BASED for e in estimators):
        start = time.perf_counter()
        q_hat = (reward_model or LinearRewardModel(seed=seed)).fit_predict(log)
        result.seconds["reward_model"] = time.perf_counter() - start
    uniform = _uniform_log(log)
    if "replay" in estimators and not uniform:
        result.notes.append("replay skipped: the logging policy was not uniform.")
    kwargs: dict[str, Any] = {"n_bootstrap": n_bootstrap, "confidence": confidence, "seed": seed}
    for cand in candidates:
        start = time.perf_counter()
        data: EvaluationInput
        replayed = None
        if cand.make_policy is not None:
            if on_replay_start is not None:
                on_replay_start(cand.name)
            replayed = replay(
                cand.make_policy(), log, batch=batch, record_allocation=True, progress=progress
            )
            data = rows_input(log, replayed.allocation_per_row(), q_hat)
        else:
            assert cand.distribution is not None
            data = evaluation_input(log, cand.distribution, q_hat)
        result.seconds[f"prepare:{cand.name}"] = time.perf_counter() - start
        for name in estimators:
            if name == "replay" and not uniform:
                continue
            est = ESTIMATORS[name](**kwargs)
            t = time.perf_counter()
            if name == "replay" and replayed is not None:
                row = _replay_row(replayed, log, est, replayed.wall_time_s)
                result.rows.append(
                    OfflineRow(cand.name, *[getattr(row, f) for f in OfflineRow.__slots__[1:]])
                )
                continue
            e = est.estimate(data)
            result.rows.append(
                OfflineRow(
                    cand.name,
                    e.estimator,
                    e.value,
                    e.ci_low,
                    e.ci_high,
                    e.ess,
                    e.max_weight,
                    e.n_rounds,
                    time.perf_counter() - t,
                )
            )
    return result
