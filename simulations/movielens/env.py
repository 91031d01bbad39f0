"""MovieLens fusion environments: which arms play when, who arrives, and the shared uniforms.

An environment is a frozen, picklable description of one scenario: the :class:`World` (the
arms' cached candidate lists), the click model, the horizon ``T`` and a schedule of *phases*.
Each phase names, for every arm the policy knows, the row of ``world.lists`` that serves it:

* ``movielens`` and ``movielens-cold-start`` -- one phase, every arm of the world;
* ``movielens-drift`` -- the first arm goes stale at ``stale_at * T`` (its lists switch to the
  stale copy's, behind the same arm index) and ``new_arm`` is added at ``add_at * T`` (the
  policy learns of it through ``add_arm()``).

Common random numbers: :meth:`MovieLensEnv.requests` draws, from the seed alone, the
micro-batches of arriving users (users at random, no user twice in a batch, so consumption is
exact inside a batch) and one click uniform per request and position.  Every policy run with
that seed reads the same draws.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from simulations.movielens.clicks import ClickModel
from simulations.movielens.data import STALE_SUFFIX, World

__all__ = ["ENVIRONMENTS", "Candidates", "MovieLensEnv", "Phase", "Requests", "make_env"]

ENVIRONMENTS: tuple[str, ...] = ("movielens", "movielens-cold-start", "movielens-drift")
"""Environment names accepted by ``bandit-fusion simulate --env``."""

_SCENARIO = {
    "movielens": "main",
    "movielens-cold-start": "cold-start",
    "movielens-drift": "drift",
}
_REQUEST_STREAM = 0x4D4C


@dataclass(frozen=True, slots=True)
class Phase:
    """Requests ``[start, stop)`` during which arm ``i`` is served by ``world.lists[rows[i]]``."""

    start: int
    stop: int
    rows: tuple[int, ...]
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Requests:
    """The draws shared by every policy of one seed.

    ``users`` (T,) the arriving user of each request; ``uniforms`` (T, k) the click uniforms;
    ``bounds`` the micro-batch edges (``bounds[j]:bounds[j+1]``), never crossing a phase.
    """

    users: np.ndarray
    uniforms: np.ndarray
    bounds: np.ndarray


@dataclass(frozen=True, slots=True)
class Candidates:
    """Each arm's ranked candidates for one micro-batch, consumed items left out.

    ``items`` and ``scores`` have shape ``(A, B, C)``: arm, request, rank.
    """

    items: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True, slots=True)
class MovieLensEnv:
    """One MovieLens scenario (see the module docstring).

    Parameters
    ----------
    name
        ``movielens``, ``movielens-cold-start`` or ``movielens-drift``.
    world
        The arms' candidate lists for the scenario.
    horizon
        Requests T.
    clicks
        The click model (``clicks.k`` items per list).
    n_fused
        Candidates per arm handed to the fuser (after consumed items are left out).
    max_batch
        Largest micro-batch; policies learn after each micro-batch.
    phases
        The arm schedule; built by :func:`make_env`.
    """

    name: str
    world: World
    horizon: int
    clicks: ClickModel = field(default_factory=ClickModel)
    n_fused: int = 50
    max_batch: int = 200
    phases: tuple[Phase, ...] = ()

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {self.horizon}.")
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {self.max_batch}.")
        if not self.clicks.k <= self.n_fused <= self.world.n_candidates:
            raise ValueError(
                f"n_fused must lie in [k={self.clicks.k}, n_candidates="
                f"{self.world.n_candidates}], got {self.n_fused}."
            )
        if not self.phases:
            rows = tuple(range(len(self.world.arm_names)))
            names = self.world.arm_names
            object.__setattr__(self, "phases", (Phase(0, self.horizon, rows, names),))

    @property
    def k(self) -> int:
        """Items per list."""
        return self.clicks.k

    @property
    def arm_names(self) -> tuple[str, ...]:
        """Every arm the policy ever knows, in index order, by the name it joined under."""
        names: list[str] = []
        for phase in self.phases:
            names.extend(phase.names[len(names) :])
        return tuple(names)

    @property
    def initial_arms(self) -> tuple[str, ...]:
        """Arms of the first phase (the ones that can be played alone for the whole run)."""
        return self.phases[0].names

    def phase_at(self, t: int) -> Phase:
        """The phase request ``t`` falls in."""
        for phase in self.phases:
            if phase.start <= t < phase.stop:
                return phase
        raise ValueError(f"t must lie in [0, {self.horizon}), got {t}.")

    def requests(self, seed: int) -> Requests:
        """Arrivals, click uniforms and micro-batches for ``seed`` (the same for every policy).

        Micro-batches hold ``max_batch`` requests (fewer where a phase starts); each draws its
        users at random without replacement, so no user appears twice in a batch.
        """
        rng = np.random.default_rng([seed, _REQUEST_STREAM])
        cuts = sorted({p.start for p in self.phases} | {self.horizon})
        bounds = [0]
        for stop in cuts[1:]:
            bounds.extend(range(bounds[-1] + self.max_batch, stop, self.max_batch))
            bounds.append(stop)
        sizes = np.diff(bounds)
        if sizes.max() > self.world.n_users:
            raise ValueError(f"max_batch must be at most the {self.world.n_users} users.")
        users = np.concatenate(
            [rng.choice(self.world.n_users, size=n, replace=False) for n in sizes]
        )
        uniforms = rng.random((self.horizon, self.k), dtype=np.float32)
        return Requests(users.astype(np.int64), uniforms, np.asarray(bounds, dtype=np.int64))

    def candidates(
        self,
        phase: Phase,
        users: np.ndarray,
        consumed: np.ndarray,
        consumed_count: np.ndarray,
    ) -> Candidates:
        """Each arm's best ``n_fused`` items for ``users`` that they have not consumed.

        ``consumed`` is the ``(U, I)`` consumption mask, ``consumed_count`` its row sums.

        Raises ``RuntimeError`` when a list runs short of ``k`` unconsumed items (raise
        ``n_candidates`` when building the world).
        """
        # A list loses at most the user's consumed items: look no deeper than that.
        depth = min(self.world.n_candidates, self.n_fused + int(consumed_count[users].max()))
        rows, who = np.asarray(phase.rows)[:, None], users[None, :]
        lists = self.world.lists[rows, who, :depth]  # (A, B, depth)
        scores = self.world.scores[rows, who, :depth]
        free = (lists >= 0) & ~consumed[users[None, :, None], np.maximum(lists, 0)]
        width = min(self.n_fused, int(free.sum(axis=2).min()))
        if width < self.k:
            raise RuntimeError(
                f"a candidate list has only {width} unconsumed items for k={self.k}; "
                "build the world with more n_candidates."
            )
        order = np.argsort(~free, axis=2, kind="stable")[:, :, :width]
        items = np.take_along_axis(lists, order, axis=2).astype(np.int64)
        return Candidates(items, np.take_along_axis(scores, order, axis=2))


def make_env(
    name: str,
    world: World,
    horizon: int,
    *,
    clicks: ClickModel | None = None,
    n_fused: int = 50,
    max_batch: int = 200,
    new_arm: str | None = "item-knn",
    stale_at: float = 0.5,
    add_at: float = 0.75,
) -> MovieLensEnv:
    """Build the named environment on ``world`` (whose scenario must match ``name``).

    In ``movielens-drift`` the world's first arm goes stale at ``stale_at * horizon`` and
    ``new_arm`` (one of the world's arms, absent until then) joins at ``add_at * horizon``.
    """
    if name not in ENVIRONMENTS:
        raise ValueError(f"env must be one of {', '.join(ENVIRONMENTS)}, got {name!r}.")
    if world.scenario != _SCENARIO[name]:
        raise ValueError(f"{name} needs a {_SCENARIO[name]!r} world, got {world.scenario!r}.")
    model = clicks or ClickModel()
    if name != "movielens-drift":
        return MovieLensEnv(name, world, horizon, model, n_fused, max_batch)
    return MovieLensEnv(
        name,
        world,
        horizon,
        model,
        n_fused,
        max_batch,
        _drift_phases(world, horizon, new_arm, stale_at, add_at),
    )


def _drift_phases(
    world: World, horizon: int, new_arm: str | None, stale_at: float, add_at: float
) -> tuple[Phase, ...]:
    base = [n for n in world.arm_names if not n.endswith(STALE_SUFFIX)]
    stale = base[0]
    if new_arm is not None and (new_arm not in base or new_arm == stale):
        raise ValueError(f"new_arm must be one of {base[1:]}, got {new_arm!r}.")
    if not 0.0 < stale_at < 1.0 or not 0.0 < add_at < 1.0:
        raise ValueError("stale_at and add_at must lie strictly between 0 and 1.")
    start = [n for n in base if n != new_arm]
    events = {int(stale_at * horizon): "stale"}
    if new_arm is not None:
        events[int(add_at * horizon)] = events.get(int(add_at * horizon), "") + "add"
    phases = []
    names = list(start)
    rows = [world.list_index(n) for n in start]
    edges = [0, *sorted(t for t in events if 0 < t < horizon), horizon]
    for begin, end in itertools.pairwise(edges):
        what = events.get(begin, "")
        if "stale" in what:
            rows[0] = world.list_index(stale + STALE_SUFFIX)
            names[0] = stale + STALE_SUFFIX
        if "add" in what and new_arm is not None:
            rows.append(world.list_index(new_arm))
            names.append(new_arm)
        phases.append(Phase(begin, end, tuple(rows), tuple(names)))
    return tuple(phases)
