"""``arm_series``: per policy update and arm, the cumulative learned aggregates after it.

The dashboard draws its time series (cumulative mean reward with its interval, probability
of being best) from these rows instead of reading the log. They are written by the learning
transaction itself (:func:`snapshot`, under the policy-state lock, right after
``arm_stats`` was bumped), so the row of the last update always equals ``arm_stats``.

The probability of being best costs about ten milliseconds of quadrature for twenty arms,
too much for every update of a busy experiment and for hundreds of points at page time, so
it is stored only at the updates :func:`keeps_prob_best` names: every update up to 99, then
every 10th up to 999, every 100th up to 9,999 and so on (about 90 per decade, a negligible
share of the updates once an experiment is busy).

:class:`SeriesBuilder` computes the same rows from the log, in the order the live learners
applied the observations (per update, each arm's delta summed in ``update_pos`` order, then
added to the running total, exactly the floating-point operations of
:func:`service.store.rows.bump_arm_stats`), so the rebuild and the migration's backfill give
the live rows bit for bit.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, bindparam, delete, insert, select
from sqlalchemy.orm import Session

from service import stats
from service.models import ArmSeries, ArmStat


def keeps_prob_best(seq: int) -> bool:
    """Whether update ``seq`` stores the probability of being best (see the module doc)."""
    if seq < 1:
        return False
    step = 10 ** max(0, len(str(seq)) - 2)
    return seq % step == 0


def prob_best_seqs(last: int) -> list[int]:
    """The updates up to ``last`` that keep the probability of being best, in order."""
    out = list(range(1, min(last, 99) + 1))
    lo, step = 100, 10
    while lo <= last:
        out.extend(range(lo, min(last, lo * 10 - 1) + 1, step))
        lo, step = lo * 10, step * 10
    return out


def _prob_best(seq: int, n: list[int], sums: list[float]) -> list[float | None]:
    if not keeps_prob_best(seq):
        return [None] * len(n)
    return list(stats.prob_best(np.asarray(n, dtype=float), np.asarray(sums, dtype=float)))


_ARM_STATS = ArmStat.__table__
_LEARNED_AGGREGATES = (  # built once: every policy update runs it
    select(
        _ARM_STATS.c.arm,
        _ARM_STATS.c.n_learned,
        _ARM_STATS.c.reward_sum,
        _ARM_STATS.c.reward_sq_sum,
    )
    .where(_ARM_STATS.c.experiment_id == bindparam("e"))
    .order_by(_ARM_STATS.c.arm)
)
_INSERT = insert(ArmSeries.__table__)  # type: ignore[arg-type]


def snapshot(conn: Connection, experiment_id: int, seq: int) -> None:
    """Copy the experiment's ``arm_stats`` learned aggregates as the rows of update ``seq``
    (with the probability of being best at the updates that keep it)."""
    rows = conn.execute(_LEARNED_AGGREGATES, {"e": experiment_id}).all()
    best = _prob_best(seq, [r[1] for r in rows], [r[2] for r in rows])
    _insert(conn, experiment_id, [SeriesRow(seq, *r, best[i]) for i, r in enumerate(rows)])


@dataclass(frozen=True, slots=True)
class SeriesRow:
    """One ``arm_series`` row."""

    seq: int
    arm: int
    n_learned: int
    reward_sum: float
    reward_sq_sum: float
    prob_best: float | None = None


class SeriesBuilder:
    """Accumulates observations (in ``(update_seq, update_pos)`` order) into series rows.

    Every update that learned anything gets one row per arm the experiment had then, as the
    live snapshot does: ``n_initial`` arms at creation (default all ``n_arms``), one more
    after each version in ``added`` (arms added over HTTP are appended, never re-indexed).
    """

    def __init__(
        self, n_arms: int, n_initial: int | None = None, added: Sequence[int] = ()
    ) -> None:
        self.n_initial = n_arms if n_initial is None else n_initial
        self.added = sorted(added)
        self.n = [0] * n_arms
        self.s = [0.0] * n_arms
        self.q = [0.0] * n_arms
        self._seq: int | None = None
        self._dn: dict[int, int] = {}
        self._ds: dict[int, float] = {}
        self._dq: dict[int, float] = {}
        self.rows: list[SeriesRow] = []

    def add(self, seq: int, arm: int, reward: float) -> None:
        """One observation of ``arm`` (normalised ``reward``) learned at update ``seq``."""
        if seq != self._seq:
            self.flush()
            self._seq = seq
        self._dn[arm] = self._dn.get(arm, 0) + 1
        self._ds[arm] = self._ds.get(arm, 0.0) + reward
        self._dq[arm] = self._dq.get(arm, 0.0) + reward * reward

    def flush(self) -> None:
        """Close the current update: add its deltas and emit its rows."""
        if self._seq is None or not self._dn:
            return
        for arm in sorted(self._dn):
            self.n[arm] += self._dn[arm]
            self.s[arm] += self._ds[arm]
            self.q[arm] += self._dq[arm]
        seq = self._seq
        n_arms = self.n_initial + bisect.bisect_left(self.added, seq)
        best = _prob_best(seq, self.n[:n_arms], self.s[:n_arms])
        self.rows.extend(
            SeriesRow(seq, a, self.n[a], self.s[a], self.q[a], best[a]) for a in range(n_arms)
        )
        self._dn.clear()
        self._ds.clear()
        self._dq.clear()


def build(log: Iterable[tuple[int, int, float]], n_arms: int) -> list[SeriesRow]:
    """Series rows of ``(update_seq, arm, normalised reward)`` observations in log order."""
    b = SeriesBuilder(n_arms)
    for seq, arm, reward in log:
        b.add(seq, arm, reward)
    b.flush()
    return b.rows


def differences(a: list[SeriesRow], b: list[SeriesRow]) -> int:
    """How many ``(seq, arm)`` keys have a different row (or none) in ``a`` and ``b``."""
    left = {(r.seq, r.arm): r for r in a}
    right = {(r.seq, r.arm): r for r in b}
    return sum(left.get(k) != right.get(k) for k in left.keys() | right.keys())


def stored(session: Session, experiment_id: int) -> list[SeriesRow]:
    """The stored rows of an experiment, ordered by ``(seq, arm)``."""
    return [
        SeriesRow(int(seq), int(arm), int(n), float(s), float(q), p)
        for seq, arm, n, s, q, p in session.execute(
            select(
                ArmSeries.seq,
                ArmSeries.arm,
                ArmSeries.n_learned,
                ArmSeries.reward_sum,
                ArmSeries.reward_sq_sum,
                ArmSeries.prob_best,
            )
            .where(ArmSeries.experiment_id == experiment_id)
            .order_by(ArmSeries.seq, ArmSeries.arm)
        )
    ]


def replace(conn: Connection, experiment_id: int, rows: list[SeriesRow]) -> None:
    """Make ``rows`` the experiment's series (delete, then insert in bulk)."""
    t = ArmSeries.__table__
    conn.execute(delete(t).where(t.c.experiment_id == experiment_id))  # type: ignore[arg-type]
    for j in range(0, len(rows), 10_000):
        _insert(conn, experiment_id, rows[j : j + 10_000])


def _insert(conn: Connection, experiment_id: int, rows: list[SeriesRow]) -> None:
    if rows:
        conn.execute(
            _INSERT,
            [
                {
                    "experiment_id": experiment_id,
                    "seq": r.seq,
                    "arm": r.arm,
                    "n_learned": r.n_learned,
                    "reward_sum": r.reward_sum,
                    "reward_sq_sum": r.reward_sq_sum,
                    "prob_best": r.prob_best,
                }
                for r in rows
            ],
        )
