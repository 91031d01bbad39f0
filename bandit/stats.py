"""Per-arm sufficient statistics: cumulative, discounted, sliding-window and change-point.

A policy reads its arms through one of these objects, so an adaptive variant is the same
policy over other statistics (``discounted-thompson`` is Thompson sampling over
:class:`DiscountedStats`), not a copy of it. Every class keeps numpy arrays indexed by arm:

* ``counts[i]``  -- (effective) number of observations of arm ``i``;
* ``sums[i]``    -- (effective) sum of its rewards;
* ``sumsq[i]``   -- (effective) sum of the squared deviations of its rewards from
  ``shift[i]``, the first reward the arm got since it had none (a shifted sum: the variance
  stays accurate when the mean is large against the spread, e.g. 1e8 +- 1);
* ``means[i]``   -- ``sums[i] / counts[i]`` (0 where ``counts[i] == 0``);
* ``total``      -- the (effective) number of observations over all arms.

``update`` returns the arms whose statistics changed (``None`` for "all of them"), which
lets a policy keep caches of the arms that did not change.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bandit import glr
from bandit.validation import check_scalar

Changed = tuple[int, ...] | None


class ArmStats:
    """Cumulative statistics: every observation counts forever.

    >>> s = ArmStats(2)
    >>> s.update(1, 1.0); s.update(1, 0.0)
    (1,)
    (1,)
    >>> s.counts.tolist(), s.means.tolist(), s.total
    ([0.0, 2.0], [0.0, 0.5], 2.0)
    """

    kind: ClassVar[str] = "cumulative"
    #: True when one update changes the statistics of every arm (discounting).
    changes_all: ClassVar[bool] = False

    def __init__(self, n_arms: int) -> None:
        self.counts = np.zeros(n_arms)
        self.sums = np.zeros(n_arms)
        self.sumsq = np.zeros(n_arms)
        self.shift = np.zeros(n_arms)
        self.means = np.zeros(n_arms)
        self.total = 0.0
        #: number of arms with no (effective) observation; kept as an int for the fast path
        self.unseen = n_arms

    # -- parameters and serialisation ------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        """Hyper-parameters of these statistics (empty for cumulative ones)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe copy of the statistics."""
        return {
            "counts": self.counts.tolist(),
            "sums": self.sums.tolist(),
            "sumsq": self.sumsq.tolist(),
            "shift": self.shift.tolist(),
            "total": self.total,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.counts = np.asarray(state["counts"], dtype=np.float64)
        self.sums = np.asarray(state["sums"], dtype=np.float64)
        self.sumsq = np.asarray(state["sumsq"], dtype=np.float64)
        # states saved before the shift existed hold plain sums of squares: a shift of 0
        self.shift = np.asarray(state.get("shift", np.zeros(self.counts.size)), dtype=np.float64)
        self.total = float(state["total"])
        self._refresh_means()

    # -- updates ---------------------------------------------------------------------
    def update(self, arm: int, reward: float) -> Changed:
        """Add one observation of ``arm``; return the arms whose statistics changed."""
        n = self.counts[arm] + 1.0
        self.counts[arm] = n
        s = self.sums[arm] + reward
        self.sums[arm] = s
        if n == 1.0:
            self.unseen -= 1
            self.shift[arm] = reward  # its deviation, and so its sumsq term, is 0
        else:
            dev = reward - self.shift[arm]
            self.sumsq[arm] += dev * dev
        self.means[arm] = s / n
        self.total += 1.0
        return (arm,)

    def update_batch(self, arms: np.ndarray, rewards: np.ndarray) -> Changed:
        """Add observations in order; equal to calling :meth:`update` on each pair (up to
        floating-point rounding)."""
        k = self.counts.size
        present = self._shift_new_arms(arms, rewards)
        dev = rewards - self.shift[arms]
        self.counts += np.bincount(arms, minlength=k)
        self.sums += np.bincount(arms, weights=rewards, minlength=k)
        self.sumsq += np.bincount(arms, weights=dev * dev, minlength=k)
        self.total += float(arms.size)
        self._refresh_means()
        return tuple(present.tolist())

    def _shift_new_arms(self, arms: np.ndarray, rewards: np.ndarray) -> np.ndarray:
        """Set the shift of each arm that has no observation to its first reward in the
        batch; return the distinct arms of the batch."""
        present, first = np.unique(arms, return_index=True)
        fresh = self.counts[present] == 0.0
        if fresh.any():
            self.shift[present[fresh]] = rewards[first[fresh]]
        return present

    def reset_arm(self, arm: int) -> None:
        """Forget every observation of ``arm`` (a change point was detected on it)."""
        self.total -= float(self.counts[arm])
        self.counts[arm] = self.sums[arm] = self.sumsq[arm] = self.means[arm] = 0.0
        self.shift[arm] = 0.0
        self.unseen = self.counts.size - int(np.count_nonzero(self.counts))

    # -- arm lifecycle ---------------------------------------------------------------
    def add_arm(self) -> None:
        """Append an arm with no observations."""
        for name in ("counts", "sums", "sumsq", "shift", "means"):
            setattr(self, name, np.append(getattr(self, name), 0.0))
        self.unseen += 1

    def remove_arm(self, arm: int) -> None:
        """Delete ``arm``; the arms above it shift down by one."""
        self.total -= float(self.counts[arm])
        for name in ("counts", "sums", "sumsq", "shift", "means"):
            setattr(self, name, np.delete(getattr(self, name), arm))
        self.unseen = self.counts.size - int(np.count_nonzero(self.counts))

    # -- helpers ---------------------------------------------------------------------
    def _refresh_means(self) -> None:
        self.means = np.divide(
            self.sums, self.counts, out=np.zeros_like(self.sums), where=self.counts > 0
        )
        self.unseen = self.counts.size - int(np.count_nonzero(self.counts))

    def beta_posterior(
        self, prior_alpha: float, prior_beta: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-arm Beta posterior ``(alpha, beta)`` for rewards in [0, 1] under a Beta prior:
        successes are the reward sums, failures the counts minus the sums."""
        return prior_alpha + self.sums, prior_beta + np.maximum(self.counts - self.sums, 0.0)

    @property
    def variances(self) -> np.ndarray:
        """Per-arm (biased) sample variance; 0 where an arm has no observation.

        Computed from the shifted sums, ``sumsq / n - (mean - shift)**2``, so it keeps its
        precision when the mean is large against the spread."""
        second = np.divide(
            self.sumsq, self.counts, out=np.zeros_like(self.sumsq), where=self.counts > 0
        )
        offset = np.where(self.counts > 0, self.means - self.shift, 0.0)
        return np.maximum(second - offset**2, 0.0)


class DiscountedStats(ArmStats):
    r"""Exponentially discounted statistics (Garivier & Moulines, 2011).

    Every observation multiplies all statistics by ``gamma`` before adding itself, so an
    observation made ``m`` updates ago weighs :math:`\gamma^m`:

    .. math:: N_i = \sum_k \gamma^{n-k} 1[a_k = i], \qquad S_i = \sum_k \gamma^{n-k} r_k 1[a_k = i].

    ``1 / (1 - gamma)`` is the effective memory in observations.

    >>> s = DiscountedStats(2, gamma=0.5)
    >>> _ = s.update(0, 1.0); _ = s.update(1, 1.0)
    >>> s.counts.tolist(), s.sums.tolist()
    ([0.5, 1.0], [0.5, 1.0])
    """

    kind: ClassVar[str] = "discounted"
    changes_all: ClassVar[bool] = True

    def __init__(self, n_arms: int, gamma: float = 0.999) -> None:
        super().__init__(n_arms)
        self.gamma = float(
            check_scalar(gamma, "gamma", min_val=0.0, max_val=1.0, include_min=False)
        )

    @property
    def params(self) -> dict[str, Any]:
        return {"gamma": self.gamma}

    def update(self, arm: int, reward: float) -> Changed:
        g = self.gamma
        if self.counts[arm] == 0.0:
            self.shift[arm] = reward
        dev = reward - self.shift[arm]
        self.counts *= g
        self.sums *= g
        self.sumsq *= g
        self.counts[arm] += 1.0
        self.sums[arm] += reward
        self.sumsq[arm] += dev * dev
        self.total = self.total * g + 1.0
        self._refresh_means()
        return None

    def update_batch(self, arms: np.ndarray, rewards: np.ndarray) -> Changed:
        m = arms.size
        if m == 0:
            return ()
        k = self.counts.size
        self._shift_new_arms(arms, rewards)
        dev = rewards - self.shift[arms]
        decay = self.gamma ** np.arange(m - 1, -1, -1, dtype=np.float64)
        scale = self.gamma**m
        self.counts = self.counts * scale + np.bincount(arms, weights=decay, minlength=k)
        self.sums = self.sums * scale + np.bincount(arms, weights=decay * rewards, minlength=k)
        self.sumsq = self.sumsq * scale + np.bincount(arms, weights=decay * dev * dev, minlength=k)
        self.total = self.total * scale + float(decay.sum())
        self._refresh_means()
        return None


class SlidingWindowStats(ArmStats):
    """Statistics over the last ``window`` observations (all arms together).

    The observations are kept in a ring buffer; the one that leaves the window is
    subtracted from its arm (Garivier & Moulines' sliding-window UCB, 2011).

    >>> s = SlidingWindowStats(2, window=2)
    >>> _ = s.update(0, 1.0); _ = s.update(1, 0.0); _ = s.update(1, 1.0)
    >>> s.counts.tolist(), s.sums.tolist()
    ([0.0, 2.0], [0.0, 1.0])
    """

    kind: ClassVar[str] = "sliding-window"

    def __init__(self, n_arms: int, window: int = 20_000) -> None:
        super().__init__(n_arms)
        self.window = int(check_scalar(window, "window", kind=int, min_val=1, max_val=10_000_000))
        self._arms = np.full(self.window, -1, dtype=np.int64)
        self._rewards = np.zeros(self.window)
        self._pos = 0  # next slot to write
        self._size = 0  # observations currently in the window

    @property
    def params(self) -> dict[str, Any]:
        return {"window": self.window}

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        order = (self._pos - self._size + np.arange(self._size)) % self.window
        state["window_arms"] = self._arms[order].tolist()
        state["window_rewards"] = self._rewards[order].tolist()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        arms = np.asarray(state["window_arms"], dtype=np.int64)
        self._arms = np.full(self.window, -1, dtype=np.int64)
        self._rewards = np.zeros(self.window)
        self._size = arms.size
        self._arms[: self._size] = arms
        self._rewards[: self._size] = np.asarray(state["window_rewards"], dtype=np.float64)
        self._pos = self._size % self.window

    def update(self, arm: int, reward: float) -> Changed:
        pos = self._pos
        old = int(self._arms[pos])
        if self._size < self.window:
            self._size += 1
        elif old >= 0:  # the oldest observation leaves the window
            r_old = self._rewards[pos]
            n = self.counts[old] - 1.0
            self.counts[old] = n
            self.sums[old] -= r_old
            dev = r_old - self.shift[old]
            self.sumsq[old] -= dev * dev
            if n <= 0.0:  # clear rounding residue when an arm leaves the window entirely
                self.counts[old] = self.sums[old] = self.sumsq[old] = self.means[old] = 0.0
                self.unseen += 1
            else:
                self.means[old] = self.sums[old] / n
            self.total -= 1.0
        # else: the slot held an observation of a removed or restarted arm, already forgotten
        self._arms[pos] = arm
        self._rewards[pos] = reward
        self._pos = (pos + 1) % self.window
        changed = super().update(arm, reward)
        return changed if old < 0 or old == arm else (arm, old)

    def update_batch(self, arms: np.ndarray, rewards: np.ndarray) -> Changed:
        for a, r in zip(arms.tolist(), rewards.tolist(), strict=True):
            self.update(a, r)
        return None

    def reset_arm(self, arm: int) -> None:
        super().reset_arm(arm)
        mask = self._arms == arm
        self._arms[mask] = -1
        self.total = float(self.counts.sum())

    def remove_arm(self, arm: int) -> None:
        super().remove_arm(arm)
        self._arms[self._arms == arm] = -1
        self._arms[self._arms > arm] -= 1


class ChangePointStats(ArmStats):
    """Cumulative statistics that restart when a GLR test detects a change in an arm's mean.

    After each observation of an arm (every ``check_every`` observations), a Bernoulli
    generalized likelihood ratio test (Besson et al., 2022, "Efficient change-point
    detection for tackling piecewise-stationary bandits", JMLR) compares the arm's
    history since its last restart split at every candidate point against a single
    mean; when the statistic exceeds ``log(3 n^1.5 / delta)`` the statistics of that arm
    (``restart="local"``) or of every arm (``restart="global"``) are forgotten. The test looks
    at the latest ``max_history // 2`` to ``max_history`` observations of each arm, which
    bounds memory and the saved state on arms that never change.
    """

    kind: ClassVar[str] = "change-point"

    def __init__(
        self,
        n_arms: int,
        delta: float = 0.01,
        restart: str = "local",
        check_every: int = 10,
        max_history: int = 5000,
    ) -> None:
        super().__init__(n_arms)
        self.delta = float(
            check_scalar(delta, "delta", min_val=0.0, max_val=1.0, include_min=False)
        )
        if restart not in ("local", "global"):
            raise ValueError(f"restart must be 'local' or 'global', got {restart!r}.")
        self.restart = restart
        self.check_every = int(check_scalar(check_every, "check_every", kind=int, min_val=1))
        self.max_history = int(
            check_scalar(max_history, "max_history", kind=int, min_val=100, max_val=10_000_000)
        )
        self.histories = [glr.History(self.max_history) for _ in range(n_arms)]
        self.n_restarts = 0

    @property
    def params(self) -> dict[str, Any]:
        return {
            "delta": self.delta,
            "restart": self.restart,
            "check_every": self.check_every,
            "max_history": self.max_history,
        }

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["histories"] = [h.state_dict() for h in self.histories]
        state["n_restarts"] = self.n_restarts
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.histories = [
            glr.History.from_state_dict(h, self.max_history) for h in state["histories"]
        ]
        self.n_restarts = int(state["n_restarts"])

    def update(self, arm: int, reward: float) -> Changed:
        super().update(arm, reward)
        history = self.histories[arm]
        history.append(reward)
        if history.n % self.check_every == 0 and glr.detect(history, self.delta):
            self.n_restarts += 1
            if self.restart == "global":
                for i in range(self.counts.size):
                    self.reset_arm(i)
                return None
            self.reset_arm(arm)
        return (arm,)

    def update_batch(self, arms: np.ndarray, rewards: np.ndarray) -> Changed:
        changed: set[int] = set()
        for a, r in zip(arms.tolist(), rewards.tolist(), strict=True):
            c = self.update(a, r)
            if c is None:
                changed = set(range(self.counts.size))
            else:
                changed.update(c)
        return tuple(sorted(changed))

    def reset_arm(self, arm: int) -> None:
        super().reset_arm(arm)
        self.histories[arm] = glr.History(self.max_history)

    def add_arm(self) -> None:
        super().add_arm()
        self.histories.append(glr.History(self.max_history))

    def remove_arm(self, arm: int) -> None:
        super().remove_arm(arm)
        del self.histories[arm]
