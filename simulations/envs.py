"""Synthetic bandit environments: seeded reward tables and the expected means behind them.

Every environment is a small frozen dataclass (picklable, so the runner can ship it to a worker
process) that answers two questions:

* ``mean_table()`` -- the expected reward of every arm at every round, shape ``(T, K)``.
  Regret is computed from these means, never from realised rewards.
* ``reward_table(seed)`` -- the realised rewards, pre-drawn as one ``(T, K)`` table.  Drawing
  the whole table up front is what makes comparisons fair: every policy (ours or a peer
  library's) run with the same seed sees exactly the same reward for the same (round, arm).

The reward stream uses its own seed sequence (``[seed, 0x5EED]``), so a policy seeded with the
same integer does not share random numbers with the environment.

>>> env = reversal(linear_means(3, 0.2, 0.8), horizon=4)
>>> env.mean_table()
array([[0.2, 0.5, 0.8],
       [0.2, 0.5, 0.8],
       [0.8, 0.5, 0.2],
       [0.8, 0.5, 0.2]])
>>> env.reward_table(seed=0).shape
(4, 3)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = [
    "ENVIRONMENTS",
    "AnyEnvironment",
    "Delayed",
    "Drift",
    "Environment",
    "Piecewise",
    "Stationary",
    "linear_means",
    "make_env",
    "parse_means",
    "reversal",
]

Noise = Literal["bernoulli", "gaussian"]
_ENV_STREAM = 0x5EED


def linear_means(n_arms: int, low: float = 0.02, high: float = 0.08) -> tuple[float, ...]:
    """Return ``n_arms`` means spread evenly from ``low`` to ``high`` (click-rate-like defaults).

    >>> linear_means(3, 0.0, 1.0)
    (0.0, 0.5, 1.0)
    """
    if n_arms < 1:
        raise ValueError(f"n_arms must be at least 1, got {n_arms}.")
    return tuple(float(m) for m in np.linspace(low, high, n_arms))


def parse_means(spec: str, n_arms: int) -> tuple[float, ...]:
    """Parse ``"low:high"`` (a linear spread over ``n_arms``) or ``"m1,m2,..."`` (explicit means).

    >>> parse_means("0.1:0.3", 3)
    (0.1, 0.2, 0.3)
    >>> parse_means("0.5,0.4", 2)
    (0.5, 0.4)
    """
    try:
        if ":" in spec:
            low, _, high = spec.partition(":")
            bounds = float(low), float(high)
        else:
            means = tuple(float(m) for m in spec.split(","))
    except ValueError:
        raise ValueError(
            f"means must be 'low:high' or comma-separated numbers 'm1,m2,...', got {spec!r}."
        ) from None
    if ":" in spec:
        return linear_means(n_arms, *bounds)
    if len(means) != n_arms:
        raise ValueError(f"means lists {len(means)} values but arms is {n_arms}; give one per arm.")
    return means


def _env_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, _ENV_STREAM])


def _draw(means: np.ndarray, noise: Noise, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Draw one reward per cell of ``means`` (shape ``(T, K)`` or broadcastable to it)."""
    if noise == "bernoulli":
        return (rng.random(means.shape) < means).astype(np.float64)
    return means + sigma * rng.standard_normal(means.shape)


def _check_means(means: tuple[float, ...], noise: Noise) -> None:
    if len(means) < 1:
        raise ValueError("means must list at least one arm.")
    if noise == "bernoulli" and not all(0.0 <= m <= 1.0 for m in means):
        raise ValueError(f"Bernoulli means must lie in [0, 1], got {means}.")


@dataclass(frozen=True, slots=True)
class Environment:
    """Base class: ``horizon`` rounds over ``len(means)`` arms with Bernoulli or Gaussian noise.

    Subclasses override ``mean_table``; the reward table is drawn from it.  ``delay`` is the
    number of rounds before a reward reaches the policy (0: at once, see :class:`Delayed`).
    """

    means: tuple[float, ...]
    horizon: int
    noise: Noise = "bernoulli"
    sigma: float = 0.1
    label: str | None = None
    kind: str = field(default="environment", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "means", tuple(float(m) for m in self.means))
        if self.horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {self.horizon}.")
        if self.noise not in ("bernoulli", "gaussian"):
            raise ValueError(f"noise must be 'bernoulli' or 'gaussian', got {self.noise!r}.")
        if self.sigma <= 0:
            raise ValueError(f"sigma must be positive, got {self.sigma}.")
        _check_means(self.means, self.noise)

    @property
    def n_arms(self) -> int:
        """Number of arms K."""
        return len(self.means)

    @property
    def delay(self) -> int:
        """Rounds between a decision and the arrival of its reward (0 for immediate feedback)."""
        return 0

    @property
    def batch(self) -> int:
        """Rewards reach the policy every ``batch`` rounds (1: after every round)."""
        return 1

    @property
    def name(self) -> str:
        """Short label used in rows, summaries and plots (``label`` when given)."""
        return self.label or f"{self.noise}-{self.kind}"

    def mean_table(self) -> np.ndarray:
        """Expected reward of each arm at each round, shape ``(T, K)`` (may be a read-only view)."""
        return np.broadcast_to(np.asarray(self.means), (self.horizon, self.n_arms))

    def best_means(self) -> np.ndarray:
        """Best expected reward at each round, shape ``(T,)``."""
        return np.asarray(self.mean_table().max(axis=1))

    def reward_table(self, seed: int) -> np.ndarray:
        """Pre-draw every round's reward for every arm, shape ``(T, K)``, float64.

        The same ``seed`` always gives the same table, whichever policy reads it.
        """
        return _draw(self.mean_table(), self.noise, self.sigma, _env_rng(seed))

    def regret(self, arms: np.ndarray) -> np.ndarray:
        """Per-round expected regret ``best_mean[t] - mean[t, arms[t]]``, shape ``(T,)``."""
        arms = np.asarray(arms, dtype=np.int64)
        if arms.shape != (self.horizon,):
            raise ValueError(f"arms must have shape ({self.horizon},), got {arms.shape}.")
        table = self.mean_table()
        return self.best_means() - table[np.arange(self.horizon), arms]


@dataclass(frozen=True, slots=True)
class Stationary(Environment):
    """Arms whose means never change."""

    kind: str = field(default="stationary", init=False)


@dataclass(frozen=True, slots=True)
class Piecewise(Environment):
    """Abrupt changes: piecewise-constant means.

    ``changes`` lists ``(start_round, means)`` pairs; ``means`` (the base field) holds from round
    0 until the first change.  :func:`reversal` builds the usual "reversed at T/2" case.
    """

    changes: tuple[tuple[int, tuple[float, ...]], ...] = ()
    kind: str = field(default="piecewise", init=False)

    def __post_init__(self) -> None:
        Environment.__post_init__(self)
        changes = tuple(
            (int(start), tuple(float(m) for m in means))
            for start, means in sorted(self.changes, key=lambda c: c[0])
        )
        for start, means in changes:
            if not 0 < start < self.horizon:
                raise ValueError(f"change round must lie in (0, horizon), got {start}.")
            if len(means) != self.n_arms:
                raise ValueError(f"each change must give {self.n_arms} means, got {len(means)}.")
            _check_means(means, self.noise)
        object.__setattr__(self, "changes", changes)

    def mean_table(self) -> np.ndarray:
        """Expected means, switching at each change round."""
        table = np.empty((self.horizon, self.n_arms))
        table[:] = self.means
        for start, means in self.changes:
            table[start:] = means
        return table


def reversal(
    means: tuple[float, ...],
    horizon: int,
    at: float = 0.5,
    noise: Noise = "bernoulli",
    sigma: float = 0.1,
) -> Piecewise:
    """Means that reverse order (best arm becomes worst) at round ``int(at * horizon)``."""
    start = int(at * horizon)
    return Piecewise(
        means=means,
        horizon=horizon,
        noise=noise,
        sigma=sigma,
        label=f"{noise}-reversal",
        changes=((start, tuple(reversed(means))),),
    )


def two_changes(
    means: tuple[float, ...],
    horizon: int,
    noise: Noise = "bernoulli",
    sigma: float = 0.1,
) -> Piecewise:
    """Two change points: means reversed at round ``T // 3`` and restored at ``2 * T // 3``.

    >>> two_changes((0.1, 0.2), 9).mean_table()[:, 0].tolist()
    [0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1]
    """
    return Piecewise(
        means=means,
        horizon=horizon,
        noise=noise,
        sigma=sigma,
        label=f"{noise}-two-changes",
        changes=((horizon // 3, tuple(reversed(means))), (2 * horizon // 3, tuple(means))),
    )


@dataclass(frozen=True, slots=True)
class Drift(Environment):
    """Gradual drift: each arm's mean moves linearly from ``means`` to ``end_means`` over T rounds.

    ``end_means`` defaults to the reversed ``means``, so the best arm changes smoothly and the
    arms cross in the middle of the run.
    """

    end_means: tuple[float, ...] | None = None
    kind: str = field(default="drift", init=False)

    def __post_init__(self) -> None:
        Environment.__post_init__(self)
        end = tuple(reversed(self.means)) if self.end_means is None else self.end_means
        if len(end) != self.n_arms:
            raise ValueError(f"end_means must give {self.n_arms} means, got {len(end)}.")
        _check_means(tuple(end), self.noise)
        object.__setattr__(self, "end_means", tuple(float(m) for m in end))

    def mean_table(self) -> np.ndarray:
        """Linear interpolation between the start and end means, one row per round."""
        w = np.linspace(0.0, 1.0, self.horizon)[:, None]
        return (1.0 - w) * np.asarray(self.means) + w * np.asarray(self.end_means)


@dataclass(frozen=True, slots=True)
class Delayed:
    """Delayed feedback around another environment.

    The reward of the decision at round ``t`` arrives at round ``t + delay``; the policy receives
    the rewards that have arrived in one batch every ``batch`` rounds (default: ``delay``).  Means
    and rewards are those of ``base``.
    """

    base: Environment
    delay_rounds: int
    batch_every: int | None = None

    def __post_init__(self) -> None:
        if self.delay_rounds < 1:
            raise ValueError(f"delay must be at least 1, got {self.delay_rounds}.")
        if self.batch_every is not None and self.batch_every < 1:
            raise ValueError(f"batch must be at least 1, got {self.batch_every}.")

    @property
    def means(self) -> tuple[float, ...]:
        """The base environment's initial means."""
        return self.base.means

    @property
    def horizon(self) -> int:
        """Number of rounds T."""
        return self.base.horizon

    @property
    def n_arms(self) -> int:
        """Number of arms K."""
        return self.base.n_arms

    @property
    def delay(self) -> int:
        """Rounds between a decision and the arrival of its reward."""
        return self.delay_rounds

    @property
    def batch(self) -> int:
        """Rounds between two deliveries of arrived rewards."""
        return self.delay_rounds if self.batch_every is None else self.batch_every

    @property
    def name(self) -> str:
        """Label: the base environment's name with the delay."""
        return f"{self.base.name}-delay{self.delay_rounds}"

    def mean_table(self) -> np.ndarray:
        """The base environment's expected means, shape ``(T, K)``."""
        return self.base.mean_table()

    def best_means(self) -> np.ndarray:
        """The base environment's best mean per round, shape ``(T,)``."""
        return self.base.best_means()

    def reward_table(self, seed: int) -> np.ndarray:
        """The base environment's reward table for ``seed``, shape ``(T, K)``."""
        return self.base.reward_table(seed)

    def regret(self, arms: np.ndarray) -> np.ndarray:
        """Per-round expected regret, shape ``(T,)``."""
        return self.base.regret(arms)


AnyEnvironment = Environment | Delayed
"""Anything the runner accepts: an environment, possibly with delayed feedback."""


ENVIRONMENTS: tuple[str, ...] = (
    "bernoulli",
    "bernoulli-reversal",
    "gaussian",
    "gaussian-reversal",
    "two-changes",
    "drift",
    "delayed",
)
"""Environment names accepted by :func:`make_env` (and ``bandit-fusion simulate --env``)."""


def make_env(
    kind: str,
    means: tuple[float, ...],
    horizon: int,
    *,
    sigma: float = 0.1,
    change_at: float = 0.5,
    delay: int = 100,
    batch: int | None = None,
) -> AnyEnvironment:
    """Build a named environment.

    ``bernoulli`` / ``gaussian``: stationary; ``*-reversal``: means reversed at
    ``change_at * horizon``; ``two-changes``: Bernoulli means reversed at ``T // 3`` and
    restored at ``2 * T // 3``; ``drift``: Bernoulli means drifting linearly to their reverse;
    ``delayed``: stationary Bernoulli whose rewards arrive ``delay`` rounds late, delivered
    every ``batch`` rounds (default ``delay``).

    >>> make_env("delayed", (0.1, 0.2), 1000, delay=10).name
    'bernoulli-stationary-delay10'
    """
    if kind == "bernoulli":
        return Stationary(means, horizon)
    if kind == "gaussian":
        return Stationary(means, horizon, noise="gaussian", sigma=sigma)
    if kind == "bernoulli-reversal":
        return reversal(means, horizon, at=change_at)
    if kind == "gaussian-reversal":
        return reversal(means, horizon, at=change_at, noise="gaussian", sigma=sigma)
    if kind == "two-changes":
        return two_changes(means, horizon)
    if kind == "drift":
        return Drift(means, horizon)
    if kind == "delayed":
        return Delayed(Stationary(means, horizon), delay, batch)
    raise ValueError(f"unknown environment {kind!r}; choose one of {', '.join(ENVIRONMENTS)}.")
