"""Run MovieLens fusion policies: one run, the parallel grid, and the tuned baselines.

One *run* plays a :class:`~simulations.movielens.policies.FusionPolicy` on a
:class:`~simulations.movielens.env.MovieLensEnv` with one seed: for every micro-batch of
:meth:`MovieLensEnv.requests`, the environment hands over each arm's unconsumed candidates,
the controller returns one list per request, the click state draws the clicks with the
seed's shared uniforms, and the controller learns.  New arms join at their phase start
(``add_arm()``).

:func:`tune_fixed_weights` and :func:`tune_phase_oracle` choose the "best fixed weights" and
the per-phase best arm on a separate seed, so the compared policies are never tuned on the
seeds they are judged on.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from simulations.movielens.clicks import ClickState
from simulations.movielens.env import MovieLensEnv, Phase
from simulations.movielens.policies import FusionPolicy

__all__ = [
    "FusionRun",
    "run_grid",
    "run_one",
    "simplex_grid",
    "truncate",
    "tune_fixed_weights",
    "tune_phase_oracle",
]


@dataclass(frozen=True, slots=True)
class FusionRun:
    """One run's outcome.

    Attributes
    ----------
    env, policy, seed, horizon
        What ran.
    users : ndarray of int32, shape (T,)
        The user of each request (the same for every policy of the seed).
    segments : ndarray of int8, shape (T,)
        The user's segment (see :meth:`World.segments`); ``segment_names`` names them.
    clicks : ndarray of int8, shape (T,)
        Clicks on each request's list.
    weights : ndarray of float32, shape (T, A)
        The mixing weights each request was served with (NaN for arms not yet added).
    arm_names : tuple of str
        Names of the weight columns.
    phase_starts : tuple of int
        First request of each phase of the environment.
    learns : bool
        Whether the policy learns from clicks.
    wall_time_s : float
        Seconds the run took (the world's lists are already cached).
    """

    env: str
    policy: str
    seed: int
    horizon: int
    users: np.ndarray
    segments: np.ndarray
    segment_names: tuple[str, ...]
    clicks: np.ndarray
    weights: np.ndarray
    arm_names: tuple[str, ...]
    phase_starts: tuple[int, ...]
    learns: bool
    wall_time_s: float

    @property
    def clicks_per_request(self) -> float:
        """Mean clicks per request over the run."""
        return float(self.clicks.mean())

    def columns(self, record_every: int = 1) -> dict[str, np.ndarray]:
        """Rows ``env, policy, seed, step, user, segment, clicks`` (every ``record_every``-th)."""
        steps = np.arange(record_every, self.horizon + 1, record_every, dtype=np.int64)
        if steps.size == 0 or steps[-1] != self.horizon:
            steps = np.append(steps, np.int64(self.horizon))
        n = steps.size
        names = np.asarray(self.segment_names, dtype=object)
        return {
            "env": np.full(n, self.env, dtype=object),
            "policy": np.full(n, self.policy, dtype=object),
            "seed": np.full(n, self.seed, dtype=np.int64),
            "step": steps,
            "user": self.users[steps - 1].astype(np.int64),
            "segment": names[self.segments[steps - 1]],
            "clicks": self.clicks[steps - 1].astype(np.int64),
        }


def run_one(env: MovieLensEnv, spec: FusionPolicy, seed: int) -> FusionRun:
    """Play ``spec`` on ``env`` with ``seed`` (arrivals and click uniforms from ``seed``)."""
    requests = env.requests(seed)
    state = ClickState(env.clicks, env.clicks.attraction_table(env.world))
    controller = spec.build(env, seed)
    n_max = len(env.arm_names)
    clicks = np.zeros(env.horizon, dtype=np.int8)
    weights = np.full((env.horizon, n_max), np.nan, dtype=np.float32)
    bounds = requests.bounds.tolist()
    start = time.perf_counter()
    phase: Phase = env.phases[0]
    for t0, t1 in itertools.pairwise(bounds):
        if not phase.start <= t0 < phase.stop:
            phase = env.phase_at(t0)
        while controller.n_arms < len(phase.rows):
            controller.add_arm()
        users = requests.users[t0:t1]
        cands = env.candidates(phase, users, state.consumed, state.consumed_count)
        decision = controller.decide(t0, users, cands)
        shown = state.show(users, decision.items, requests.uniforms[t0:t1])
        controller.learn(users, decision, shown)
        clicks[t0:t1] = shown.sum(axis=1)
        weights[t0:t1, : decision.weights.shape[1]] = decision.weights
    wall = time.perf_counter() - start
    segment_of, names = env.world.segments()
    return FusionRun(
        env=env.name,
        policy=spec.label,
        seed=seed,
        horizon=env.horizon,
        users=requests.users.astype(np.int32),
        segments=segment_of[requests.users].astype(np.int8),
        segment_names=names,
        clicks=clicks,
        weights=weights,
        arm_names=env.arm_names,
        phase_starts=tuple(p.start for p in env.phases),
        learns=spec.learns,
        wall_time_s=wall,
    )


def _run_task(task: tuple[MovieLensEnv, FusionPolicy, int]) -> FusionRun:
    return run_one(*task)


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_grid(
    tasks: Sequence[tuple[MovieLensEnv, FusionPolicy, int]],
    *,
    jobs: int | None = None,
    progress: bool = True,
    desc: str = "simulate",
) -> Iterator[FusionRun]:
    """Run every ``(env, policy, seed)`` task in ``jobs`` processes; yield results in order."""
    from tqdm.auto import tqdm

    jobs = _cores() if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}.")
    bar = tqdm(total=len(tasks), desc=desc, unit="run", disable=not progress)
    try:
        if jobs == 1 or len(tasks) <= 1:
            for task in tasks:
                yield _run_task(task)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
                for result in pool.map(_run_task, tasks):
                    yield result
                    bar.update()
    finally:
        bar.close()


def simplex_grid(n_arms: int, steps: int) -> np.ndarray:
    """Every weight vector over ``n_arms`` arms with entries in multiples of ``1/steps``.

    >>> simplex_grid(2, 2).tolist()
    [[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]
    """
    if n_arms < 1 or steps < 1:
        raise ValueError(f"n_arms and steps must be at least 1, got {n_arms} and {steps}.")
    rows = [c for c in itertools.product(range(steps + 1), repeat=n_arms) if sum(c) == steps]
    return np.asarray(rows, dtype=np.float64) / steps


def truncate(env: MovieLensEnv, stop: int) -> MovieLensEnv:
    """``env`` cut to its first ``stop`` requests (phases starting later are dropped)."""
    if not 0 < stop <= env.horizon:
        raise ValueError(f"stop must lie in (0, {env.horizon}], got {stop}.")
    phases = tuple(replace(p, stop=min(p.stop, stop)) for p in env.phases if p.start < stop)
    return replace(env, horizon=stop, phases=phases)


def tune_fixed_weights(
    env: MovieLensEnv,
    seeds: Iterable[int],
    *,
    steps: int = 3,
    fuser: str = "slot-mix",
    jobs: int | None = None,
    progress: bool = True,
) -> tuple[float, ...]:
    """The fixed weights over the initial arms with the most clicks in the first phase.

    Every point of :func:`simplex_grid` is played on ``seeds`` (keep them apart from the
    evaluation seeds) over the first phase of ``env`` (the whole run when it has one phase).
    """
    first = truncate(env, env.phases[0].stop)
    grid = simplex_grid(len(env.initial_arms), steps)
    seeds = list(seeds)
    tasks = [
        (first, FusionPolicy(f"w{i}", "fixed", weights=tuple(w), fuser=fuser), s)
        for i, w in enumerate(grid)
        for s in seeds
    ]
    totals = np.zeros(len(grid))
    for result in run_grid(tasks, jobs=jobs, progress=progress, desc="tuning fixed weights"):
        totals[int(result.policy[1:])] += result.clicks.sum()
    return tuple(float(w) for w in grid[int(np.argmax(totals))])


def tune_phase_oracle(
    env: MovieLensEnv,
    seeds: Iterable[int],
    *,
    jobs: int | None = None,
    progress: bool = True,
) -> tuple[int, ...]:
    """The best arm of each phase, chosen greedily phase by phase on ``seeds``.

    For phase ``i`` every available arm is played after the arms already chosen for the
    earlier phases; the one with the most clicks within phase ``i`` is kept.
    """
    seeds = list(seeds)
    chosen: list[int] = []
    for i, phase in enumerate(env.phases):
        head = truncate(env, phase.stop)
        arms = range(len(phase.rows))
        tasks = [
            (head, FusionPolicy(f"a{a}", "oracle", schedule=(*chosen, a)), s)
            for a in arms
            for s in seeds
        ]
        totals = np.zeros(len(phase.rows))
        for result in run_grid(tasks, jobs=jobs, progress=progress, desc=f"tuning phase {i}"):
            totals[int(result.policy[1:])] += result.clicks[phase.start : phase.stop].sum()
        chosen.append(int(np.argmax(totals)))
    return tuple(chosen)
