"""Reward models for DM, DR and their variants: a scikit-learn linear model, cross-fitted.

Features of a (round, action, position) triple are the round's context, the action's
features (``action_context``, or a one-hot of the action when the log has none) and a one-hot
of the position, standardised. Binary rewards get a logistic regression, others a ridge
regression. The model is linear in these features, so the predictions for every action of
every round, ``(n_rounds, n_actions)``, are sums of a per-round and a per-action score: no
``n_rounds x n_actions`` design matrix is built. Rounds are split into ``n_folds`` folds and
each fold is predicted by a model fitted on the others (cross-fitting, as Open Bandit
Pipeline's ``RegressionModel.fit_predict`` does), so DR's correction is not fitted on the
rewards it corrects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandit.validation import check_scalar
from simulations.logged import LoggedFeedback

__all__ = ["LinearRewardModel"]


def _standardise(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


@dataclass(frozen=True)
class LinearRewardModel:
    """Cross-fitted linear reward model (scikit-learn).

    Parameters
    ----------
    n_folds
        Folds for cross-fitting (1: fit and predict on all rounds).
    C
        Inverse regularisation strength (logistic) or ``1 / alpha`` (ridge).
    seed
        Seed of the fold assignment and of the solver.
    """

    n_folds: int = 3
    C: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_scalar(self.n_folds, "n_folds", kind=int, min_val=1)
        check_scalar(self.C, "C", min_val=0.0, include_min=False)
        check_scalar(self.seed, "seed", kind=int, min_val=0)

    def fit_predict(self, log: LoggedFeedback) -> np.ndarray:
        """Predicted reward of every action at every round's context and position,
        shape ``(n_rounds, n_actions)``."""
        from sklearn.linear_model import LogisticRegression, Ridge
        from threadpoolctl import threadpool_limits

        n, k = log.n_rounds, log.n_actions
        ctx = np.zeros((n, 0)) if log.context is None else _standardise(log.context)
        act = np.eye(k) if log.action_context is None else log.action_context
        act = _standardise(act)
        pos = _standardise(np.eye(log.n_positions)[log.positions])
        round_x = np.hstack([ctx, pos])  # per-round block
        x = np.hstack([round_x, act[log.actions]])
        y = log.rewards
        binary = bool(np.all((y == 0) | (y == 1)))
        folds = np.random.default_rng(self.seed).permutation(n) % self.n_folds
        out = np.empty((n, k))
        for f in range(self.n_folds):
            test = folds == f
            train = ~test if self.n_folds > 1 else test
            yt = y[train]
            if binary and 0 < yt.sum() < yt.size:
                model = LogisticRegression(C=self.C, max_iter=1000, random_state=self.seed)
                with threadpool_limits(limits=1):  # threads only slow a problem this small
                    model.fit(x[train], yt.astype(int))
                coef, bias = model.coef_[0], float(model.intercept_[0])
            elif binary:  # one class only in the training folds: predict it
                coef, bias = np.zeros(x.shape[1]), float("nan")
                out[test] = float(yt[0]) if yt.size else 0.0
                continue
            else:
                ridge = Ridge(alpha=1.0 / self.C, random_state=self.seed).fit(x[train], yt)
                coef, bias = np.asarray(ridge.coef_), float(ridge.intercept_)
            split = round_x.shape[1]
            score = (round_x[test] @ coef[:split])[:, None] + (act @ coef[split:])[None, :] + bias
            out[test] = 1.0 / (1.0 + np.exp(-score)) if binary else score
        return out
