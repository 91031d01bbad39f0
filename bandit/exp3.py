"""EXP3: exponential weights for adversarial bandits (Auer et al., 2002)."""

from __future__ import annotations

from typing import Any

import numpy as np

from bandit.base import Policy, draw_from
from bandit.stats import Changed
from bandit.validation import check_scalar


class Exp3(Policy):
    r"""EXP3 with exploration rate ``gamma``.

    .. math:: p_i = (1-\gamma)\frac{w_i}{\sum_j w_j} + \frac{\gamma}{K}, \qquad
              \log w_a \mathrel{+}= \frac{\gamma}{K} \frac{r}{p_a}

    Weights are kept as logarithms so they never overflow. The importance weight of an
    observation uses the served allocation (controls included) at the time it is learned,
    so feed rewards in the order of their decisions; rewards learned during burn-in update
    the statistics but not the weights. An added arm starts at the largest current weight, so it is
    explored at once.
    """

    name = "exp3"

    def __init__(self, n_arms: int, *, gamma: float = 0.05, **kwargs: Any) -> None:
        self.gamma = float(
            check_scalar(gamma, "gamma", min_val=0.0, max_val=1.0, include_min=False)
        )
        super().__init__(n_arms, **kwargs)
        self.log_weights = np.zeros(self._n_arms)

    def _hyper_params(self) -> dict[str, Any]:
        return {"gamma": self.gamma}

    def _probabilities(self) -> np.ndarray:
        w = np.exp(self.log_weights - self.log_weights.max())
        return (1.0 - self.gamma) * w / w.sum() + self.gamma / self._n_arms

    def _base_allocation(self) -> np.ndarray:
        return self._probabilities()

    def _select_arm(self) -> int:
        return draw_from(self._probabilities(), self._rng)

    def _after_update(self, arm: int, reward: float, changed: Changed) -> None:
        # Burn-in traffic (uniform over the arms still short of observations) is not
        # EXP3's, so it updates the statistics only.
        if not self._burning:
            self._learn(arm, reward)

    def _after_update_batch(self, arms: np.ndarray, rewards: np.ndarray, changed: Changed) -> None:
        # As update() one observation at a time: an observation is learned when burn-in had
        # ended before it, counting the pulls of the batch that precede it.
        burn = self.constraints.burn_in
        pulls = self.pulls - np.bincount(arms, minlength=self._n_arms)  # before the batch
        short = int((pulls < burn).sum())
        for a, r in zip(arms.tolist(), rewards.tolist(), strict=True):
            if short == 0:
                self._learn(a, r)
            else:
                pulls[a] += 1
                short -= int(pulls[a] == burn)

    def _learn(self, arm: int, reward: float) -> None:
        # The importance weight divides by the probability the arm was served with: floors,
        # caps and a control share change it.
        p = self._probabilities()
        if self.constraints.active:
            p = self.constraints.apply(p)
        self.log_weights[arm] += self.gamma / self._n_arms * reward / p[arm]

    def _on_arms_changed(self, removed: int | None = None) -> None:
        if removed is None:
            self.log_weights = np.append(self.log_weights, self.log_weights.max())
        else:
            self.log_weights = np.delete(self.log_weights, removed)

    def _extra_state(self) -> dict[str, Any]:
        return {"log_weights": self.log_weights.tolist()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.log_weights = np.asarray(state["log_weights"], dtype=np.float64)
