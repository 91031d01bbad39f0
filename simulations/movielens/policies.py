"""The policies compared on MovieLens, as controllers that turn candidates into one list each.

A :class:`FusionPolicy` is a small picklable spec; :meth:`FusionPolicy.build` makes the
:class:`Controller` that plays one run.  Kinds:

* ``single`` -- one arm alone: its best unconsumed items;
* ``fixed`` -- a fuser with fixed weights (uniform, or given: the best fixed weights);
* ``allocation`` -- the bandit picks one arm per request (``policy.select_batch``); every slot
  of the list is an observation of that arm;
* ``fusion`` -- the bandit's ``allocation()`` (for Thompson sampling the probability that each
  arm is best) weighs the fuser; every shown slot is an observation of its source arm,
  optionally corrected for position bias;
* ``segmented`` -- one ``fusion`` controller per user segment (activity tertile, cold start);
* ``oracle`` -- plays a given arm in each phase of the environment (the reference for drift).

Policies learn after each micro-batch, from the clicks of the lists they showed: with
per-slot credit (the default) every shown slot is one observation of its source arm; with
per-request credit (``credit="request"``) each request is one observation of each arm that
filled a slot, rewarded with the mean click of its slots
(:func:`bandit.fusion.request_observations`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from simulations.movielens.env import Candidates, MovieLensEnv

__all__ = ["Controller", "Decision", "FusionPolicy", "Kind", "default_policies"]

Kind = Literal["single", "fixed", "allocation", "fusion", "segmented", "oracle"]
Credit = Literal["slot", "request"]
_FUSER_STREAM = 0xF05E


@dataclass(frozen=True, slots=True)
class Decision:
    """The lists shown to one micro-batch.

    ``items`` and ``source`` have shape ``(B, k)`` (catalogue rows, arm index of each slot);
    ``weights`` ``(B, A)`` the mixing weights each list was fused with; ``fused`` the fuser's
    full output when a fuser made the lists (propensities and credit), else None.
    """

    items: np.ndarray
    source: np.ndarray
    weights: np.ndarray
    fused: Any = None


class Controller(ABC):
    """Plays one run: :meth:`decide` for each micro-batch, then :meth:`learn` from its clicks."""

    def __init__(self, n_arms: int, k: int) -> None:
        self.n_arms = n_arms
        self.k = k

    @abstractmethod
    def decide(self, t: int, users: np.ndarray, cands: Candidates) -> Decision:
        """Lists for ``users`` (requests ``t .. t + B - 1``) from the arms' candidates."""

    def learn(self, users: np.ndarray, decision: Decision, clicks: np.ndarray) -> None:  # noqa: B027
        """Learn from the clicks (``(B, k)`` bool) on ``decision`` (fixed controllers do not)."""

    def add_arm(self) -> None:
        """A new arm joins (its candidates come last in later batches)."""
        self.n_arms += 1


def _one_hot(arms: np.ndarray, n_arms: int) -> np.ndarray:
    out = np.zeros((arms.size, n_arms))
    out[np.arange(arms.size), arms] = 1.0
    return out


class SingleArm(Controller):
    """One arm alone."""

    def __init__(self, n_arms: int, k: int, arm: int) -> None:
        super().__init__(n_arms, k)
        self.arm = arm

    def decide(self, t: int, users: np.ndarray, cands: Candidates) -> Decision:
        b, k = users.size, self.k
        items = cands.items[self.arm, :, :k]
        arms = np.full(b, self.arm)
        return Decision(items, np.full((b, k), self.arm), _one_hot(arms, self.n_arms))


class PhaseOracle(Controller):
    """Plays ``schedule[i]`` during phase ``i`` (``starts`` are the phase starts)."""

    def __init__(self, n_arms: int, k: int, schedule: Sequence[int], starts: Sequence[int]) -> None:
        super().__init__(n_arms, k)
        self.schedule = list(schedule)
        self.starts = np.asarray(starts)

    def decide(self, t: int, users: np.ndarray, cands: Candidates) -> Decision:
        arm = self.schedule[int(np.searchsorted(self.starts, t, side="right")) - 1]
        b, k = users.size, self.k
        items = cands.items[arm, :, :k]
        return Decision(items, np.full((b, k), arm), _one_hot(np.full(b, arm), self.n_arms))


class FixedFusion(Controller):
    """A fuser with fixed weights (new arms get weight 0)."""

    def __init__(self, n_arms: int, k: int, fuser: Any, weights: np.ndarray, seed: int) -> None:
        super().__init__(n_arms, k)
        self.fuser = fuser
        self.weights = weights
        self.rng = np.random.default_rng([seed, _FUSER_STREAM])

    def decide(self, t: int, users: np.ndarray, cands: Candidates) -> Decision:
        out = self.fuser.fuse(cands.items, self.weights, scores=cands.scores, rng=self.rng)
        weights = np.broadcast_to(self.weights, (users.size, self.n_arms))
        return Decision(out.items, out.source, weights, out)

    def add_arm(self) -> None:
        super().add_arm()
        self.weights = np.append(self.weights, 0.0)


class BanditAllocation(Controller):
    """One arm per request, drawn by the bandit; all ``k`` slots credit that arm."""

    def __init__(self, n_arms: int, k: int, policy: Any, credit: Credit = "slot") -> None:
        super().__init__(n_arms, k)
        self.policy = policy
        self.credit = credit

    def decide(self, t: int, users: np.ndarray, cands: Candidates) -> Decision:
        arms = self.policy.select_batch(users.size).arms
        k = self.k
        items = cands.items[arms, np.arange(users.size), :k]
        source = np.repeat(arms[:, None], k, axis=1)
        return Decision(items, source, _one_hot(arms, self.n_arms))

    def learn(self, users: np.ndarray, decision: Decision, clicks: np.ndarray) -> None:
        rewards = clicks.astype(np.float64)
        if self.credit == "request":
            from bandit.fusion import request_observations

            self.policy.update_batch(*request_observations(decision.source, rewards, self.n_arms))
        else:
            self.policy.update_batch(decision.source.ravel(), rewards.ravel())

    def add_arm(self) -> None:
        super().add_arm()
        self.policy.add_arm()


class BanditFusion(Controller):
    """The fuser weighted by the bandit's allocation; each shown slot credits its source arm."""

    def __init__(
        self,
        n_arms: int,
        k: int,
        policy: Any,
        fuser: Any,
        seed: int,
        correction: Any = None,
        credit: Credit = "slot",
    ) -> None:
        super().__init__(n_arms, k)
        self.policy = policy
        self.fuser = fuser
        self.correction = correction
        self.credit = credit
        self.rng = np.random.default_rng([seed, _FUSER_STREAM])

    def decide(self, t: int, users: np.ndarray, cands: Candidates) -> Decision:
        w = self.policy.allocation()
        out = self.fuser.fuse(cands.items, w, scores=cands.scores, rng=self.rng)
        return Decision(out.items, out.source, np.broadcast_to(w, (users.size, w.size)), out)

    def learn(self, users: np.ndarray, decision: Decision, clicks: np.ndarray) -> None:
        arms, rewards = _observations(decision.fused, clicks, self.correction)
        if self.credit == "request":
            from bandit.fusion import request_observations

            shape = decision.fused.items.shape
            arms, rewards = request_observations(
                arms.reshape(shape), rewards.reshape(shape), self.n_arms
            )
        self.policy.update_batch(arms, rewards)
        if self.correction is not None:
            self.correction.observe(users, decision.items, clicks)

    def add_arm(self) -> None:
        super().add_arm()
        self.policy.add_arm()


def _observations(fused: Any, clicks: np.ndarray, correction: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot observations (source arm, reward) of a fused micro-batch."""
    from bandit.fusion import slot_observations

    if correction is None:
        return slot_observations(fused, clicks)
    return slot_observations(fused, clicks, examination=correction.examination)


class PositionCorrection:
    """Examination by position (PBM), re-estimated from the run's own logged slot clicks.

    The lists, users and clicks of every batch are kept; the examination is fitted by
    :func:`bandit.fusion.estimate_examination` (attraction per user and item) once
    ``first_fit`` requests are logged and again each time the log doubles.  Until the first
    fit there is no correction.
    """

    def __init__(self, first_fit: int = 1000) -> None:
        self.examination: Any = None
        self._log: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._logged = 0
        self._next_fit = first_fit

    def observe(self, users: np.ndarray, items: np.ndarray, clicks: np.ndarray) -> None:
        """Log one batch; refit when the log has doubled since the last fit."""
        from bandit.fusion import estimate_examination

        self._log.append((users, items, clicks))
        self._logged += users.size
        if self._logged >= self._next_fit:
            users_all, items_all, clicks_all = (
                np.concatenate(x) for x in zip(*self._log, strict=True)
            )
            self.examination = estimate_examination(items_all, clicks_all, contexts=users_all)
            self._next_fit *= 2


class Segmented(Controller):
    """One controller per user segment; each request goes to its user's segment."""

    def __init__(
        self, n_arms: int, k: int, segment_of: np.ndarray, parts: Sequence[Controller]
    ) -> None:
        super().__init__(n_arms, k)
        self.segment_of = segment_of
        self.parts = list(parts)

    def _groups(self, users: np.ndarray) -> list[tuple[int, np.ndarray]]:
        seg = self.segment_of[users]
        return [(s, np.flatnonzero(seg == s)) for s in np.unique(seg).tolist()]

    def decide(self, t: int, users: np.ndarray, cands: Candidates) -> Decision:
        k = self.k
        items = np.empty((users.size, k), dtype=np.int64)
        source = np.empty((users.size, k), dtype=np.int64)
        weights = np.empty((users.size, self.n_arms))
        fused = []
        for s, rows in self._groups(users):
            sub = Candidates(cands.items[:, rows], cands.scores[:, rows])
            d = self.parts[s].decide(t, users[rows], sub)
            items[rows], source[rows], weights[rows] = d.items, d.source, d.weights
            fused.append((s, rows, d))
        return Decision(items, source, weights, fused)

    def learn(self, users: np.ndarray, decision: Decision, clicks: np.ndarray) -> None:
        for s, rows, d in decision.fused:
            self.parts[s].learn(users[rows], d, clicks[rows])

    def add_arm(self) -> None:
        super().add_arm()
        for part in self.parts:
            part.add_arm()


@dataclass(frozen=True, slots=True)
class FusionPolicy:
    """A policy to compare on MovieLens (see the module docstring).

    Parameters
    ----------
    label
        Name in rows, summaries and plots.
    kind
        ``single``, ``fixed``, ``allocation``, ``fusion``, ``segmented`` or ``oracle``.
    arm
        ``single``: the arm's index.
    weights
        ``fixed``: the weights over the initial arms (None: uniform).
    policy, policy_params
        ``allocation``/``fusion``/``segmented``: the bandit policy (``bandit.make_policy``).
    fuser, fuser_params
        The fuser (``bandit.make_fuser``) of ``fixed``/``fusion``/``segmented``.
    position_correction
        ``fusion``/``segmented``: divide slot credit by the estimated examination of its
        position (position-based model, estimated from the logged clicks).
    credit
        ``allocation``/``fusion``/``segmented``: ``"slot"`` (every shown slot is an
        observation of its source arm) or ``"request"`` (one observation per request and
        source arm, the mean of its slots).
    schedule
        ``oracle``: the arm played in each phase.
    """

    label: str
    kind: Kind
    arm: int | None = None
    weights: tuple[float, ...] | None = None
    policy: str = "thompson"
    policy_params: Mapping[str, Any] = field(default_factory=dict)
    fuser: str = "slot-mix"
    fuser_params: Mapping[str, Any] = field(default_factory=dict)
    position_correction: bool = False
    credit: Credit = "slot"
    schedule: tuple[int, ...] = ()

    @property
    def learns(self) -> bool:
        """Whether the policy's weights change with the clicks."""
        return self.kind in ("allocation", "fusion", "segmented")

    def build(self, env: MovieLensEnv, seed: int) -> Controller:
        """A fresh controller for one run of ``env`` with ``seed``."""
        n, k = len(env.initial_arms), env.k
        if self.kind == "single":
            if self.arm is None or not 0 <= self.arm < n:
                raise ValueError(f"{self.label}: arm must index one of {env.initial_arms}.")
            return SingleArm(n, k, self.arm)
        if self.kind == "oracle":
            if len(self.schedule) != len(env.phases):
                raise ValueError(f"{self.label}: schedule must give one arm per phase.")
            return PhaseOracle(n, k, self.schedule, [p.start for p in env.phases])
        if self.credit not in ("slot", "request"):
            raise ValueError(f"{self.label}: credit must be 'slot' or 'request'.")
        if self.kind == "allocation":
            return BanditAllocation(n, k, self._policy(n, seed), self.credit)
        if self.kind == "fixed":
            w = np.full(n, 1.0 / n) if self.weights is None else np.asarray(self.weights, float)
            if w.shape != (n,) or abs(w.sum() - 1.0) > 1e-9 or np.any(w < 0):
                raise ValueError(f"{self.label}: weights must be {n} non-negatives summing to 1.")
            return FixedFusion(n, k, self._fuser(env), w, seed)
        if self.kind == "fusion":
            return self._fusion(env, n, seed)
        if self.kind == "segmented":
            segment_of, names = env.world.segments()
            parts = [self._fusion(env, n, seed * 101 + s + 1) for s in range(len(names))]
            return Segmented(n, k, segment_of, parts)
        raise ValueError(f"{self.label}: unknown kind {self.kind!r}.")

    def _policy(self, n: int, seed: int) -> Any:
        from bandit import make_policy

        return make_policy(self.policy, n, seed=seed, **dict(self.policy_params))

    def _fuser(self, env: MovieLensEnv) -> Any:
        from bandit import make_fuser

        return make_fuser(self.fuser, k=env.k, **dict(self.fuser_params))

    def _fusion(self, env: MovieLensEnv, n: int, seed: int) -> BanditFusion:
        correction = None
        if self.position_correction:
            correction = PositionCorrection()
        return BanditFusion(
            n, env.k, self._policy(n, seed), self._fuser(env), seed, correction, self.credit
        )


def default_policies(
    env: MovieLensEnv, best_weights: Sequence[float] | None = None
) -> list[FusionPolicy]:
    """The policy set of the comparison for ``env``.

    Each initial arm alone, uniform fusion, the best fixed weights (when given), bandit
    allocation (stationary and adaptive), bandit fusion with Thompson P(best) and KL-UCB
    weights (stationary and adaptive, with and without position correction, with per-slot
    and per-request credit) and segmented fusion. Every environment gets the same set.
    """
    out = [FusionPolicy(f"arm:{name}", "single", arm=i) for i, name in enumerate(env.initial_arms)]
    out.append(FusionPolicy("uniform-fusion", "fixed"))
    if best_weights is not None:
        out.append(FusionPolicy("best-fixed-fusion", "fixed", weights=tuple(best_weights)))
    out += [
        FusionPolicy("bandit-allocation", "allocation", policy="thompson"),
        FusionPolicy("bandit-allocation-adaptive", "allocation", policy="discounted-thompson"),
        FusionPolicy("fusion-thompson", "fusion", policy="thompson"),
        FusionPolicy("fusion-thompson-pbm", "fusion", policy="thompson", position_correction=True),
        FusionPolicy("fusion-thompson-request", "fusion", policy="thompson", credit="request"),
        FusionPolicy("fusion-kl-ucb", "fusion", policy="kl-ucb"),
        FusionPolicy("fusion-thompson-adaptive", "fusion", policy="discounted-thompson"),
        FusionPolicy("fusion-ucb-adaptive", "fusion", policy="sliding-window-ucb"),
        FusionPolicy("fusion-kl-ucb-adaptive", "fusion", policy="sliding-window-kl-ucb"),
        FusionPolicy("segmented-fusion", "segmented", policy="thompson"),
    ]
    return out
