"""Run policies x environments x seeds, online, in parallel processes; yield flat rows.

One *run* is one policy on one environment with one seed.  The policy plays the pre-drawn
reward table of that (environment, seed) -- the same table every other policy sees -- one
``select()`` and one ``update()`` per round.  With delayed feedback (``env.delay > 0``) the
runner buffers the decisions and hands the arrived rewards over with ``update_batch`` every
``env.batch`` rounds.

Expected regret is computed on every round from the environment's means,
``regret_t = max_k mu_t[k] - mu_t[arm_t]``; only the *written* rows are thinned by
``record_every``.  Each :class:`RunResult` holds its rows as numpy columns (cheap to ship
between processes and to write); :meth:`RunResult.rows` and :func:`iter_rows` give the flat
dict rows ``{env, policy, seed, step, arm, reward, regret}`` (``regret`` is cumulative up to
and including ``step``, steps count from 1).

Runs are independent, so they go to a ``ProcessPoolExecutor``; results come back in the order
of the grid (environment, seed, policy), whatever order the workers finish in.  Past one
machine, ``backend="ray"`` sends the same runs to a Ray cluster (:mod:`simulations.parallel`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from simulations.envs import AnyEnvironment
from simulations.parallel import Backend, map_ordered

__all__ = [
    "PolicySpec",
    "RunResult",
    "SupportsPolicy",
    "curve_grid",
    "iter_rows",
    "run_grid",
    "run_one",
]


class _SupportsArm(Protocol):
    @property
    def arm(self) -> int: ...


class SupportsPolicy(Protocol):
    """What the runner needs from a policy (``bandit.Policy`` and the peer adapters have it)."""

    def select(self) -> _SupportsArm: ...

    def update(self, arm: int, reward: float) -> None: ...

    def update_batch(self, arms: np.ndarray, rewards: np.ndarray) -> None: ...


PolicyFactory = Callable[..., SupportsPolicy]


def _default_factory(name: str, n_arms: int, seed: int, **params: Any) -> SupportsPolicy:
    """``bandit.make_policy``, or a peer library's adapter (``river-*``, ``mabwiser-*``)."""
    if name.startswith(("river-", "mabwiser-")):
        from simulations.peers import make_peer

        return make_peer(name, n_arms=n_arms, seed=seed, **params)
    from bandit import make_policy

    policy: SupportsPolicy = make_policy(name, n_arms=n_arms, seed=seed, **params)
    return policy


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A policy to run: its registered ``name``, hyper-parameter overrides and a display label.

    ``factory`` (a picklable top-level callable ``factory(name, n_arms=, seed=, **params)``)
    replaces ``bandit.make_policy``; tests use it for stand-in policies.
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    label: str | None = None
    factory: PolicyFactory | None = None

    @property
    def display(self) -> str:
        """The label used in rows and summaries (defaults to ``name``)."""
        return self.label or self.name

    def build(self, n_arms: int, seed: int) -> SupportsPolicy:
        """Create a fresh policy over ``n_arms`` arms seeded with ``seed``."""
        factory = self.factory or _default_factory
        return factory(self.name, n_arms=n_arms, seed=seed, **dict(self.params))


def curve_grid(horizon: int, points: int = 500) -> np.ndarray:
    """At most ``points`` 1-based steps spread evenly over ``[1, horizon]``, ending at ``horizon``.

    >>> curve_grid(10, 4).tolist()
    [1, 4, 7, 10]
    """
    n = max(2, min(points, horizon))
    return np.unique(np.linspace(1, horizon, n).round().astype(np.int64))


def _recorded_steps(horizon: int, record_every: int) -> np.ndarray:
    """1-based steps whose rows are written: every ``record_every``-th and always the last."""
    steps = np.arange(record_every, horizon + 1, record_every, dtype=np.int64)
    if steps.size == 0 or steps[-1] != horizon:
        steps = np.append(steps, np.int64(horizon))
    return steps


@dataclass(frozen=True, slots=True)
class RunResult:
    """One run's outcome, as numpy columns.

    ``steps``, ``arms``, ``rewards`` and ``regret`` are the written (thinned) rows;
    ``curve_steps``/``curve`` the cumulative regret on a fixed grid for plots;
    ``final_regret`` the cumulative expected regret after the last round; ``params`` the
    hyper-parameters the policy ran with (defaults included when the policy reports them).
    """

    env: str
    policy: str
    seed: int
    horizon: int
    steps: np.ndarray
    arms: np.ndarray
    rewards: np.ndarray
    regret: np.ndarray
    curve_steps: np.ndarray
    curve: np.ndarray
    final_regret: float
    total_reward: float
    wall_time_s: float
    params: Mapping[str, Any] = field(default_factory=dict)

    def rows(self) -> Iterator[dict[str, Any]]:
        """Yield one flat dict per written step."""
        for step, arm, reward, regret in zip(
            self.steps.tolist(),
            self.arms.tolist(),
            self.rewards.tolist(),
            self.regret.tolist(),
            strict=True,
        ):
            yield {
                "env": self.env,
                "policy": self.policy,
                "seed": self.seed,
                "step": step,
                "arm": arm,
                "reward": reward,
                "regret": regret,
            }

    def columns(self) -> dict[str, np.ndarray]:
        """The written rows as equal-length columns (for a DataFrame or an Arrow table)."""
        n = self.steps.size
        return {
            "env": np.full(n, self.env, dtype=object),
            "policy": np.full(n, self.policy, dtype=object),
            "seed": np.full(n, self.seed, dtype=np.int64),
            "step": self.steps,
            "arm": self.arms,
            "reward": self.rewards,
            "regret": self.regret,
        }


@functools.lru_cache(maxsize=2)
def _tables(env: AnyEnvironment, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Reward table and per-round regret of every arm, cached for consecutive runs."""
    rewards = np.ascontiguousarray(env.reward_table(seed), dtype=np.float64)
    means = env.mean_table()
    gaps = np.ascontiguousarray(env.best_means()[:, None] - means)
    rewards.flags.writeable = False
    gaps.flags.writeable = False
    return rewards, gaps


def _play_online(policy: SupportsPolicy, rewards: np.ndarray) -> np.ndarray:
    """One ``select`` and one ``update`` per round; returns the chosen arms."""
    horizon = rewards.shape[0]
    table = rewards.data  # a memoryview: its 2-D indexing is much cheaper than ndarray's
    select, update = policy.select, policy.update
    arms = [0] * horizon
    for t in range(horizon):
        arm = select().arm
        update(arm, table[t, arm])
        arms[t] = arm
    return np.asarray(arms, dtype=np.int64)


def _play_delayed(
    policy: SupportsPolicy, rewards: np.ndarray, delay: int, batch: int
) -> np.ndarray:
    """Select every round; every ``batch`` rounds deliver the rewards that have arrived.

    The reward of decision ``s`` arrives at round ``s + delay``: before deciding round ``t`` the
    policy may have seen decisions ``s <= t - delay``, delivered in one ``update_batch``.
    """
    horizon = rewards.shape[0]
    arms = np.zeros(horizon, dtype=np.int64)
    select = policy.select
    delivered = 0
    for t in range(horizon):
        if t and t % batch == 0 and (upto := t - delay + 1) > delivered:
            chunk = arms[delivered:upto]
            policy.update_batch(chunk, rewards[np.arange(delivered, upto), chunk])
            delivered = upto
        arms[t] = select().arm
    return arms


def run_one(
    env: AnyEnvironment,
    policy: PolicySpec,
    seed: int,
    record_every: int = 1,
    curve_points: int = 500,
) -> RunResult:
    """Play ``policy`` on ``env``'s reward table for ``seed`` and measure its expected regret.

    Parameters
    ----------
    env
        The environment; its reward table for ``seed`` is shared with every other policy.
    policy
        What to build, seeded with ``seed``.
    seed
        Seeds both the reward table and the policy (on separate random streams).
    record_every
        Keep every ``record_every``-th row (and the last); regret still uses every round.
    curve_points
        Points of the cumulative-regret curve kept for plots.
    """
    if record_every < 1:
        raise ValueError(f"record_every must be at least 1, got {record_every}.")
    rewards, gaps = _tables(env, seed)
    agent = policy.build(env.n_arms, seed)
    start = time.perf_counter()
    if env.delay > 0:
        arms = _play_delayed(agent, rewards, env.delay, env.batch)
    else:
        arms = _play_online(agent, rewards)
    wall = time.perf_counter() - start
    rounds = np.arange(env.horizon)
    cumulative = np.cumsum(gaps[rounds, arms])
    realised = rewards[rounds, arms]
    steps = _recorded_steps(env.horizon, record_every)
    grid = curve_grid(env.horizon, curve_points)
    return RunResult(
        env=env.name,
        policy=policy.display,
        seed=seed,
        horizon=env.horizon,
        steps=steps,
        arms=arms[steps - 1],
        rewards=realised[steps - 1],
        regret=cumulative[steps - 1],
        curve_steps=grid,
        curve=cumulative[grid - 1],
        final_regret=float(cumulative[-1]),
        total_reward=float(realised.sum()),
        wall_time_s=wall,
        params=_effective_params(agent, policy),
    )


def _effective_params(agent: object, spec: PolicySpec) -> dict[str, Any]:
    """The hyper-parameters the policy ran with: its ``params`` (defaults included) if any."""
    params = getattr(agent, "params", None)
    return dict(params) if isinstance(params, Mapping) else dict(spec.params)


def _run_task(task: tuple[AnyEnvironment, PolicySpec, int, int, int]) -> RunResult:
    return run_one(*task)


def run_grid(
    envs: Sequence[AnyEnvironment],
    policies: Sequence[PolicySpec],
    seeds: Iterable[int],
    *,
    jobs: int | None = None,
    record_every: int = 1,
    curve_points: int = 500,
    progress: bool = True,
    backend: Backend = "local",
) -> Iterator[RunResult]:
    """Run every (environment, seed, policy) and yield the results in that order.

    ``backend="local"``: ``jobs`` worker processes (default: all cores; 1 runs in this
    process); ``backend="ray"``: one Ray task per run, on the connected Ray cluster or a
    local instance (see :mod:`simulations.parallel`).  A progress bar counts finished runs
    unless ``progress`` is false.
    """
    from tqdm.auto import tqdm

    seeds = list(seeds)
    tasks = [
        (env, spec, seed, record_every, curve_points)
        for env in envs
        for seed in seeds
        for spec in policies
    ]
    results = map_ordered(_run_task, tasks, jobs=jobs, backend=backend)
    bar = tqdm(total=len(tasks), desc="simulate", unit="run", disable=not progress)
    try:
        for result in results:
            yield result
            bar.update()
    finally:
        bar.close()


def iter_rows(
    envs: Sequence[AnyEnvironment],
    policies: Sequence[PolicySpec],
    seeds: Iterable[int],
    **kwargs: Any,
) -> Iterator[dict[str, Any]]:
    """Flat dict rows ``{env, policy, seed, step, arm, reward, regret}`` of :func:`run_grid`."""
    for result in run_grid(envs, policies, seeds, **kwargs):
        yield from result.rows()
