"""Decision counts of the past, kept per process so that a page does not recount them.

The dashboard and ``/stats`` need every decision counted per policy version and arm (and per
day). Read from ``decisions`` each time, that is a scan of the experiment's whole index:
about a second for a million decisions. But the counts of the past do not change:

* a decision carries the policy version it read, and it must store its row within
  :data:`~service.store.common.DECISION_DEADLINE_S` (5 s) of that read or it is refused
  (503, nothing stored), so once update ``v + 1`` is older than :data:`SEAL_S` no decision
  of version ``v`` or below can still arrive;
* a decision's ``created_at`` is taken after that read, so a UTC day that ended more than
  :data:`SEAL_S` ago is complete.

:class:`SealedCounts` keeps those final counts per experiment and reads from the database
only the versions and days after them: an index range of the recent decisions. Nothing
deletes decisions, so a kept count is never stale. Each worker process has its own copy
(``app.state.sealed_counts``); the first read of an experiment in a process is a full one.

:data:`SEAL_S` (30 s) is the deadline plus 25 s for what the deadline's check cannot see: a
stall between the check and the commit, the end of the update's own transaction after its
time stamp, and the difference between the clocks of replicas (an update's time and the
reader's clock may come from different hosts). The recent range that every ``/health``
reads is then the decisions of the last half minute of updates, whatever the log's length.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import String, bindparam, cast, func, select
from sqlalchemy.orm import Session

from service.models import Decision, PolicyUpdate, utcnow
from service.stats import SRMSums
from service.store.common import CHUNK, DECISION_DEADLINE_S

SEAL_S = DECISION_DEADLINE_S + 25.0

# Built once: every /stats and /health runs them.
_BY_VERSION = (  # versions [lo, hi): per version, arm and fallback
    select(Decision.policy_version, Decision.arm, Decision.fallback, func.count())
    .where(
        Decision.experiment_id == bindparam("e"),
        Decision.policy_version >= bindparam("lo"),
        Decision.policy_version < bindparam("hi"),
    )
    .group_by(Decision.policy_version, Decision.arm, Decision.fallback)
)
_TOTALS = (  # versions >= lo: per arm and fallback only (a few rows, whatever the versions)
    select(Decision.arm, Decision.fallback, func.count())
    .where(Decision.experiment_id == bindparam("e"), Decision.policy_version >= bindparam("lo"))
    .group_by(Decision.arm, Decision.fallback)
)
_NO_LIMIT = 2**62  # an upper bound above every version
_SEALED_BELOW = select(func.max(PolicyUpdate.seq)).where(
    PolicyUpdate.experiment_id == bindparam("e"), PolicyUpdate.created_at < bindparam("cutoff")
)
_ALLOCATIONS = select(PolicyUpdate.seq, cast(PolicyUpdate.allocation, String)).where(
    PolicyUpdate.experiment_id == bindparam("e"),
    PolicyUpdate.seq.in_(bindparam("seqs", expanding=True)),
)


@dataclass
class _Kept:
    """One experiment's final counts."""

    below: int = 0  # versions < below are summed in ``per_arm``, ``srm`` and ``fallback``
    per_arm: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    srm: SRMSums = field(default_factory=lambda: SRMSums.zeros(0))  # with their allocations
    fallback: int = 0
    days_before: dt.date | None = None  # days < days_before are counted in ``days``
    days: dict[dt.date, int] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionCounts:
    """Decisions per arm (fallback answers apart): the sealed versions' sums (with their
    sample-ratio sums), and the recent versions' (``>= recent_from``) totals."""

    sealed_per_arm: np.ndarray
    sealed_srm: SRMSums
    recent_per_arm: np.ndarray
    recent_from: int
    fallback: int

    @property
    def per_arm(self) -> np.ndarray:
        return self.sealed_per_arm + self.recent_per_arm


class SealedCounts:
    """Per experiment, the decision counts of sealed versions and days, and the allocations
    of recent versions (thread-safe)."""

    def __init__(self) -> None:
        self._kept: dict[int, _Kept] = {}
        self._allocations: dict[int, dict[int, list[float]]] = {}  # exp -> version -> probs
        self._lock = threading.Lock()

    def versions(self, session: Session, exp_id: int, n_arms: int) -> VersionCounts:
        """Every decision counted per arm: the sealed versions from the kept sums (versions
        that seal now are read per version once, with their allocations), the recent ones
        by one grouped count."""
        with self._lock:
            kept = self._kept.setdefault(exp_id, _Kept())
            below, fallback = kept.below, kept.fallback
            per_arm, srm = _padded(kept.per_arm, n_arms), kept.srm.padded(n_arms)
        seal = max(_sealed_below(session, exp_id), below)
        if seal > below:
            rows = _rows(session, _BY_VERSION, {"e": exp_id, "lo": below, "hi": seal}, 4)
            version, arm, fb, n = rows.T
            sealing_fallback = int(n[fb != 0].sum())
            versions, counts = _by_version(version, arm, n, fb == 0, n_arms)
            per_arm = per_arm + counts.sum(axis=0)
            srm = srm + self._srm(session, exp_id, versions, counts, n_arms)
            with self._lock:
                if kept.below == below:  # no other thread sealed meanwhile
                    kept.per_arm, kept.srm = per_arm, srm
                    kept.fallback += sealing_fallback
                    kept.below = seal
                    cached = self._allocations.get(exp_id, {})
                    self._allocations[exp_id] = {v: p for v, p in cached.items() if v >= seal}
            fallback += sealing_fallback
        arm, fb, n = _rows(session, _TOTALS, {"e": exp_id, "lo": seal}, 3).T
        recent = np.zeros(n_arms, dtype=np.int64)
        np.add.at(recent, arm[fb == 0], n[fb == 0])
        return VersionCounts(per_arm, srm, recent, seal, fallback + int(n[fb != 0].sum()))

    def srm(self, session: Session, exp_id: int, counts: VersionCounts, n_arms: int) -> SRMSums:
        """The sample-ratio sums of every decision: the sealed ones kept, the recent ones
        (read per version) against their versions' allocations (read once per process)."""
        params = {"e": exp_id, "lo": counts.recent_from, "hi": _NO_LIMIT}
        version, arm, fb, n = _rows(session, _BY_VERSION, params, 4).T
        versions, per_version = _by_version(version, arm, n, fb == 0, n_arms)
        recent = self._srm(session, exp_id, versions, per_version, n_arms)
        return counts.sealed_srm.padded(n_arms) + recent

    def _srm(
        self,
        session: Session,
        exp_id: int,
        versions: np.ndarray,
        counts: np.ndarray,
        n_arms: int,
    ) -> SRMSums:
        """Sums of ``counts[i]`` drawn from the allocation of ``versions[i]`` (a version
        without a logged allocation is left out)."""
        wanted = versions.tolist()
        with self._lock:  # (another thread only adds to this dict, or replaces it)
            known = self._allocations.get(exp_id, {})
            missing = [v for v in wanted if v not in known]
        fetched = _allocations(session, exp_id, missing)
        if fetched:
            with self._lock:
                self._allocations.setdefault(exp_id, {}).update(fetched)
        found = [fetched[v] if v in fetched else known.get(v) for v in wanted]
        keep = [i for i, allocation in enumerate(found) if allocation is not None]
        rows = [allocation for allocation in found if allocation is not None]
        if not keep:
            return SRMSums.zeros(n_arms)
        if all(len(r) == n_arms for r in rows):  # (as long as no arm was added since)
            probs = np.array(rows, dtype=float)
        else:
            probs = np.array([_padded(np.asarray(r, dtype=float), n_arms) for r in rows])
        return SRMSums.of(counts[keep], probs)

    def days(self, session: Session, exp_id: int, first: dt.date, last: dt.date) -> list[int]:
        """Decisions on each UTC day from ``first`` to ``last``; only unsealed days are read
        (one ``count`` per day over ``ix_decisions_experiment_created``: an index range)."""
        sealed_to = (utcnow() - dt.timedelta(seconds=SEAL_S)).date()  # days before: complete
        with self._lock:
            kept = self._kept.setdefault(exp_id, _Kept())
            known = dict(kept.days)
            known_before = kept.days_before
        out, new = [], {}
        day = first
        while day <= last:
            if known_before is not None and day < known_before:
                out.append(known.get(day, 0))
            else:
                lo = dt.datetime.combine(day, dt.time(), dt.UTC)
                c = int(
                    session.scalar(
                        select(func.count()).where(
                            Decision.experiment_id == exp_id,
                            Decision.created_at >= lo,
                            Decision.created_at < lo + dt.timedelta(days=1),
                        )
                    )
                    or 0
                )
                out.append(c)
                if day < sealed_to:
                    new[day] = c
            day += dt.timedelta(days=1)
        with self._lock:
            if new and kept.days_before == known_before:
                kept.days.update(new)
                kept.days_before = max(new) + dt.timedelta(days=1)
        return out


def _rows(session: Session, statement: Any, params: dict[str, Any], width: int) -> np.ndarray:
    """The integer rows of a grouped count, as an array (rows become tuples first: numpy
    reads SQLAlchemy rows element by element, a hundred times slower)."""
    rows = session.connection().execute(statement, params).all()  # Core: no ORM loading
    return np.array([tuple(r) for r in rows], dtype=np.int64).reshape(-1, width)


def _by_version(
    version: np.ndarray, arm: np.ndarray, n: np.ndarray, mask: np.ndarray, n_arms: int
) -> tuple[np.ndarray, np.ndarray]:
    """The rows under ``mask`` as (versions, counts per version and arm)."""
    versions, where = np.unique(version[mask], return_inverse=True)
    counts = np.zeros((len(versions), n_arms), dtype=np.int64)
    np.add.at(counts, (where, arm[mask]), n[mask])
    return versions, counts


def _allocations(session: Session, exp_id: int, versions: list[int]) -> dict[int, list[float]]:
    """The logged allocation of each of ``versions`` that has one."""
    out: dict[int, list[float]] = {}
    for j in range(0, len(versions), CHUNK):
        rows = session.execute(_ALLOCATIONS, {"e": exp_id, "seqs": versions[j : j + CHUNK]}).all()
        # one JSON parse for the chunk: per-row decoding is most of the cost of a long log
        parsed = json.loads("[" + ",".join(text for _, text in rows) + "]")
        out.update(
            (int(seq), allocation) for (seq, _), allocation in zip(rows, parsed, strict=True)
        )
    return out


def _sealed_below(session: Session, exp_id: int) -> int:
    """Versions below this one are final: the update after them is older than SEAL_S."""
    cutoff = utcnow() - dt.timedelta(seconds=SEAL_S)
    seq = session.connection().execute(_SEALED_BELOW, {"e": exp_id, "cutoff": cutoff}).scalar()
    return 0 if seq is None else int(seq)


def _padded(values: np.ndarray, n_arms: int) -> np.ndarray:
    """A copy over ``n_arms`` arms, of the same dtype: counts, or a version's allocation
    (arms added since were not counted, or had probability 0: zeros)."""
    out = np.zeros(n_arms, dtype=values.dtype)
    m = min(len(values), n_arms)  # (a reader of the arms before an add: fewer arms)
    out[:m] = values[:m]
    return out
