"""The policy base class: validation, burn-in, controls, propensities and state.

Every policy in :mod:`bandit` derives from :class:`Policy`. The public methods here do the
shared work (checking input, applying burn-in and allocation controls, versioning the state,
serialising it) and call one hook per job that each policy writes:

* ``_select_arm()`` -- draw one arm from the current state (the fast path);
* ``_select_batch(n)`` -- draw ``n`` arms from the current state;
* ``_base_allocation()`` -- the probability of choosing each arm now;
* ``_after_update(arm, reward, changed)`` / ``_after_update_batch(arms, rewards, changed)``
  -- refresh what the policy caches beside its statistics (optional).
"""

from __future__ import annotations

import math
import operator
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from numbers import Real
from typing import Any, ClassVar

import numpy as np

from bandit.allocation import Constraints
from bandit.stats import ArmStats, Changed
from bandit.validation import check_arm, check_batch, check_scalar


class StalePropensityError(RuntimeError):
    """The propensity of a selection was read after the policy's state had changed."""


class Selection:
    """One decision: the chosen ``arm`` and its ``propensity`` P(arm | state at decision).

    The propensity is computed only when read, from the policy's allocation at the decision
    (cached until the state changes), so the fast path does not pay for it. Read it before
    the next ``update`` of the policy; afterwards the state it refers to is gone and reading
    it raises :class:`StalePropensityError`.
    """

    __slots__ = ("_policy", "_propensity", "_version", "arm")

    def __init__(
        self, arm: int, policy: Policy, version: int, propensity: float | None = None
    ) -> None:
        self.arm = arm
        self._policy = policy
        self._version = version
        self._propensity = propensity

    @property
    def propensity(self) -> float:
        """Probability that the policy chose ``arm`` in the state it was in."""
        if self._propensity is None:
            if self._policy.version != self._version:
                raise StalePropensityError(
                    "the policy was updated after this selection; read the propensity "
                    "before calling update()."
                )
            self._propensity = float(self._policy.allocation()[self.arm])
        return self._propensity

    def __iter__(self):  # allows ``arm, propensity = policy.select()``
        yield self.arm
        yield self.propensity

    def __repr__(self) -> str:
        try:
            shown = f"{self.propensity:.6g}"
        except StalePropensityError:
            shown = "?"  # the state it refers to is gone
        return f"Selection(arm={self.arm}, propensity={shown})"


class BatchSelection:
    """``n`` decisions drawn from one state: the chosen ``arms`` and their ``propensities``.

    ``arms`` is an int64 array; ``propensities[j]`` is the probability that the policy chose
    ``arms[j]`` in the state that drew the batch (its allocation, controls included, gathered
    at ``arms``). As for :class:`Selection`, the propensities are computed only when first
    read (one :meth:`Policy.allocation` for the whole batch), so a caller that does not read
    them pays nothing; read them before the next ``update`` of the policy, after which
    reading raises :class:`StalePropensityError`.

    >>> from bandit import make_policy
    >>> arms, propensities = make_policy("ucb1", 2, seed=0).select_batch(3)
    >>> arms.tolist(), propensities.tolist()
    ([1, 1, 1], [0.5, 0.5, 0.5])
    """

    __slots__ = ("_policy", "_propensities", "_version", "arms")

    def __init__(
        self,
        arms: np.ndarray,
        policy: Policy | None = None,
        version: int = 0,
        propensities: np.ndarray | None = None,
    ) -> None:
        if policy is None and propensities is None:
            raise ValueError("a BatchSelection needs its policy or its propensities.")
        self.arms = arms
        self._policy = policy
        self._version = version
        self._propensities = propensities

    @property
    def propensities(self) -> np.ndarray:
        """Probability of each decision's arm in the state that chose it (float64 array)."""
        if self._propensities is None:
            policy = self._policy
            assert policy is not None  # checked in __init__
            if policy.version != self._version:
                raise StalePropensityError(
                    "the policy was updated after this batch; read the propensities "
                    "before calling update()."
                )
            self._propensities = policy.allocation()[self.arms]
        return self._propensities

    def __len__(self) -> int:
        return int(self.arms.size)

    def __iter__(self) -> Iterator[np.ndarray]:  # ``arms, props = policy.select_batch(n)``
        yield self.arms
        yield self.propensities

    def __repr__(self) -> str:
        return f"BatchSelection(n={self.arms.size}, arms={self.arms!r})"


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """JSON-safe bit-generator state: 128-bit integers are written as strings."""

    def enc(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: enc(v) for k, v in x.items()}
        if isinstance(x, int) and not isinstance(x, bool):
            return str(x)
        return x

    return enc(rng.bit_generator.state)


def _set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    def dec(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: dec(v) for k, v in x.items()}
        if isinstance(x, str) and x.lstrip("-").isdigit():
            return int(x)
        return x

    rng.bit_generator.state = dec(state)


def draw_from(p: np.ndarray, rng: np.random.Generator) -> int:
    """One index drawn with probabilities ``p`` (inverse CDF with one uniform)."""
    arm = int(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right"))
    return min(arm, p.size - 1)


class Policy(ABC):
    """A multi-armed bandit policy over ``n_arms`` arms indexed ``0..n_arms-1``.

    Parameters
    ----------
    n_arms
        Number of arms (>= 1).
    seed
        Seed of the policy's random generator. ``None`` draws fresh entropy, which is kept
        in :meth:`state_dict` so a restored policy still replays exactly.
    stats
        Per-arm statistics (:mod:`bandit.stats`); cumulative by default.
    constraints
        Floors, caps, control share and burn-in (:class:`bandit.allocation.Constraints`).
    """

    #: Registry name; set by :func:`bandit.make_policy` (adaptive variants share a class).
    name: str = ""
    #: Rewards outside this interval are rejected by ``update``.
    reward_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    #: True when :meth:`allocation` is a closed form; False when it is computed numerically.
    exact_allocation: ClassVar[bool] = True

    def __init__(
        self,
        n_arms: int,
        *,
        seed: int | None = None,
        stats: ArmStats | None = None,
        constraints: Constraints | None = None,
    ) -> None:
        self._n_arms = int(check_scalar(n_arms, "n_arms", kind=int, min_val=1))
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
        self.seed = int(check_scalar(seed, "seed", kind=int, min_val=0))
        self.stats = stats if stats is not None else ArmStats(self._n_arms)
        if self.stats.counts.size != self._n_arms:
            raise ValueError("stats must have one entry per arm.")
        self.constraints = (
            constraints if constraints is not None else Constraints.build(self._n_arms)
        )
        if self.constraints.n_arms != self._n_arms:
            raise ValueError("constraints must have one entry per arm.")
        self.pulls = np.zeros(self._n_arms, dtype=np.int64)
        self.version = 0
        self._rng = np.random.default_rng(self.seed)
        self._low, self._high = self.reward_range
        self._alloc_version = -1
        self._alloc = np.zeros(0)
        self._refresh_control()

    # -- read-only views ---------------------------------------------------------------
    @property
    def n_arms(self) -> int:
        """Number of arms."""
        return self._n_arms

    @property
    def counts(self) -> np.ndarray:
        """Per-arm (effective) number of observed rewards."""
        return self.stats.counts

    @property
    def means(self) -> np.ndarray:
        """Per-arm (effective) mean reward; 0 for an arm with no observation."""
        return self.stats.means

    @property
    def params(self) -> dict[str, Any]:
        """Hyper-parameters: ``make_policy(name, n_arms, **params)`` rebuilds this policy."""
        return {**self._hyper_params(), **self.stats.params}

    def _hyper_params(self) -> dict[str, Any]:
        return {}

    # -- decisions ---------------------------------------------------------------------
    def select(self) -> Selection:
        """Choose an arm for one request; the propensity is computed when read."""
        if self._controlled:
            q = self.allocation()
            arm = draw_from(q, self._rng)
            return Selection(arm, self, self.version, float(q[arm]))
        return Selection(self._select_arm(), self, self.version)

    def select_batch(self, n: int) -> BatchSelection:
        """Choose arms for ``n`` independent requests with the current state.

        Returns a :class:`BatchSelection`: ``.arms`` (int64) and ``.propensities`` (float64,
        computed when first read), so ``arms, propensities = policy.select_batch(n)``.
        """
        n = int(check_scalar(n, "n", kind=int, min_val=0))
        if self._controlled:
            q = self.allocation()
            arms = self._rng.choice(self._n_arms, size=n, p=q).astype(np.int64)
            return BatchSelection(arms, self, self.version, q[arms])
        return BatchSelection(self._select_batch(n), self, self.version)

    def allocation(self) -> np.ndarray:
        """Probability of choosing each arm now (sums to 1), controls included.

        Exact for index policies, epsilon-greedy, softmax and EXP3; computed by quadrature
        for the Thompson family (see :mod:`bandit.thompson`). Cached until the state changes.
        """
        if self._alloc_version != self.version:
            if self._burning:
                under = self.pulls < self.constraints.burn_in
                base = under / under.sum()
            else:
                base = self._base_allocation()
            self._alloc = self.constraints.apply(base) if self.constraints.active else base
            self._alloc_version = self.version
        return self._alloc.copy()

    # -- learning ----------------------------------------------------------------------
    def update(self, arm: int, reward: float) -> None:
        """Learn one observed ``reward`` of ``arm``."""
        if type(arm) is not int:
            if isinstance(arm, (bool, np.bool_)):
                raise ValueError(f"arm must be an integer arm index, got {arm!r}.")
            try:
                arm = operator.index(arm)
            except TypeError:
                raise ValueError(f"arm must be an integer arm index, got {arm!r}.") from None
        a: int = arm
        if not 0 <= a < self._n_arms:
            check_arm(a, self._n_arms)
        if not isinstance(reward, float):  # float and numpy.float64 take the fast path
            if not isinstance(reward, (Real, np.bool_)) or isinstance(reward, str):
                raise ValueError(f"reward must be a number, got {reward!r}.")
            reward = float(reward)
        r = float(reward)
        if not (self._low <= r <= self._high and -math.inf < r < math.inf):
            if not math.isfinite(r):
                raise ValueError(f"reward must be finite, got {r!r}.")
            raise ValueError(
                f"reward must lie in [{self._low}, {self._high}] for {self.name}, got {r!r}."
            )
        changed = self.stats.update(a, r)
        self.pulls[a] += 1
        self.version += 1
        self._after_update(a, r, changed)
        if self._burning:
            self._refresh_control()

    def update_batch(
        self, arms: Sequence[int] | np.ndarray, rewards: Sequence[float] | np.ndarray
    ) -> None:
        """Learn a batch of observations, in order: the statistics equal those of calling
        :meth:`update` on each (up to floating-point rounding); the random stream and so the
        later draws may differ."""
        arms_arr, rewards_arr = check_batch(arms, rewards, self._n_arms, self._low, self._high)
        if arms_arr.size == 0:
            return
        changed = self.stats.update_batch(arms_arr, rewards_arr)
        self.pulls += np.bincount(arms_arr, minlength=self._n_arms)
        self.version += 1
        self._after_update_batch(arms_arr, rewards_arr, changed)
        self._refresh_control()

    # -- arms lifecycle ----------------------------------------------------------------
    def add_arm(self) -> int:
        """Add an arm with no observations and return its index; it will be explored.

        Raises ``ValueError``, changing nothing, when the arm's floor (a scalar ``floors``
        applies to it) would make the controls infeasible."""
        self.constraints = self.constraints.with_arm()
        self.stats.add_arm()
        self.pulls = np.append(self.pulls, 0)
        self._n_arms += 1
        self.version += 1
        self._on_arms_changed()
        self._refresh_control()
        return self._n_arms - 1

    def remove_arm(self, arm: int) -> None:
        """Remove ``arm``; arms above it shift down by one index."""
        arm = check_arm(arm, self._n_arms)
        if self._n_arms == 1:
            raise ValueError("arm cannot be removed: a policy needs at least one arm.")
        self.constraints = self.constraints.without_arm(arm)
        self.stats.remove_arm(arm)
        self.pulls = np.delete(self.pulls, arm)
        self._n_arms -= 1
        self.version += 1
        self._on_arms_changed(removed=arm)
        self._refresh_control()

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """JSON-safe snapshot; :func:`bandit.from_state_dict` restores it exactly."""
        return {
            "format": 1,
            "policy": self.name,
            "n_arms": self._n_arms,
            "seed": str(self.seed),
            "params": self.params,
            "constraints": self.constraints.to_dict(),
            "version": self.version,
            "pulls": self.pulls.tolist(),
            "stats": self.stats.state_dict(),
            "rng": _rng_state(self._rng),
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the learned state saved by :meth:`state_dict` into this policy."""
        if state.get("policy") != self.name or int(state["n_arms"]) != self._n_arms:
            raise ValueError("state does not belong to a policy of this name and size.")
        if state.get("params") != self.params:
            raise ValueError(
                f"state was saved with params {state.get('params')}, this policy has {self.params}."
            )
        self.constraints = Constraints.build(self._n_arms, **state["constraints"])
        self.stats.load_state_dict(state["stats"])
        self.pulls = np.asarray(state["pulls"], dtype=np.int64)
        self.version = int(state["version"])
        _set_rng_state(self._rng, state["rng"])
        self._load_extra_state(state["extra"])
        self._alloc_version = -1
        self._refresh_control()

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        return None

    # -- hooks -------------------------------------------------------------------------
    @abstractmethod
    def _select_arm(self) -> int:
        """Draw one arm from the current state (no controls, no burn-in)."""

    def _select_batch(self, n: int) -> np.ndarray:
        return self._rng.choice(self._n_arms, size=n, p=self._base_allocation()).astype(np.int64)

    @abstractmethod
    def _base_allocation(self) -> np.ndarray:
        """Probability of choosing each arm under the policy alone."""

    def _after_update(self, arm: int, reward: float, changed: Changed) -> None:
        return None

    def _after_update_batch(self, arms: np.ndarray, rewards: np.ndarray, changed: Changed) -> None:
        return None

    def _on_arms_changed(self, removed: int | None = None) -> None:
        return None

    def _refresh_control(self) -> None:
        burn = self.constraints.burn_in
        self._burning = bool(burn and (self.pulls < burn).any())
        self._controlled = self._burning or self.constraints.active

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}(n_arms={self._n_arms}{', ' if params else ''}{params})"
