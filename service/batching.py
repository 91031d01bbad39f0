"""Micro-batching of the recommenders' scoring across concurrent decisions.

A decision with items needs one ranked list per recommender it uses. Scored one decision at
a time, each list is one call of the arm for one user; the arms' batched calls cost little
more for many users, so concurrent decisions are better scored together.

:class:`MicroBatcher` gathers the lists asked for by decisions that arrive within a short
window and scores them with one call per group (:func:`score_jobs`). There is no extra
thread: decisions already run in the threadpool, off the event loop; the first decision of a
batch (its *leader*) waits for the others, scores the whole batch in its own thread and
hands every decision its lists. A batch closes when it holds ``max_requests`` decisions,
when its window has passed, or as soon as no other decision is on its way (the route
announces each decision before it enters the threadpool, see :meth:`MicroBatcher.announce`),
so a lone decision never waits for company that is not coming, and no decision waits more
than the window.

Rows are grouped by recommender object (two model sets during a reload are never mixed),
candidate set and ``top_k`` depth (:func:`service.recommenders.depth_bucket`); ``k`` and
``exclude`` are applied per row. A decision scored alone or in a batch asks the arm the same
question for its row, and the arms score each user independently of the others, so its
lists are the same (tested for mf, bert, popularity and item-knn). One caveat: a matrix
product may round differently for another batch shape (BLAS picks its kernels by size), so
the mf arm's scores can differ in the last bits of float32 (and more in float16 on CUDA); a
list can then differ only where two items' scores tie to within that rounding.

:class:`DirectRanker` scores each decision on its own (the setting ``decision_batching``
off).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from service.errors import Invalid
from service.recommenders import ItemRequest, Ranked, Recommender, depth_bucket, rank_rows


@dataclass(frozen=True, slots=True)
class RankJob:
    """One ranked list a decision needs: a recommender, the unit, the request."""

    rec: Recommender
    unit_id: str
    req: ItemRequest


def _group_key(job: RankJob) -> tuple[int, bytes | None, int]:
    cands = job.req.candidates
    if cands is None:
        return id(job.rec), None, depth_bucket(job.req, job.rec.n_items)
    return id(job.rec), cands.tobytes(), 0


def score_jobs(jobs: Sequence[RankJob]) -> list[Ranked | Exception]:
    """The list of every job, one :func:`rank_rows` call per group (see the module
    docstring); an error while scoring a group is the result of each of its jobs."""
    groups: dict[tuple[int, bytes | None, int], list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(_group_key(job), []).append(i)
    out: list[Ranked | Exception | None] = [None] * len(jobs)
    for members in groups.values():
        rec = jobs[members[0]].rec
        try:
            ranked: Sequence[Ranked | Exception] = rank_rows(
                rec, [jobs[i].unit_id for i in members], [jobs[i].req for i in members]
            )
        except Exception as err:  # handed to every decision of the group
            ranked = [err] * len(members)
        for i, result in zip(members, ranked, strict=True):
            out[i] = result
    return [r if r is not None else RuntimeError("job not scored") for r in out]


def cached(jobs: Sequence[RankJob]) -> list[Ranked | Exception | None]:
    """Each job's answer from its recommender's candidate cache, None where it has none
    (:mod:`service.candidate_cache`)."""
    return [j.rec.cache.lookup(j.rec, j.unit_id, j.req) if j.rec.cache else None for j in jobs]


def _misses(jobs: Sequence[RankJob], hits: Sequence[Ranked | Exception | None]) -> list[RankJob]:
    """The jobs left to score: none when a cached answer is already an error (the decision
    fails with it, as it would live)."""
    if any(isinstance(h, Exception) for h in hits):
        return []
    return [j for j, h in zip(jobs, hits, strict=True) if h is None]


def _merge(
    hits: Sequence[Ranked | Exception | None], scored: Sequence[Ranked]
) -> list[Ranked | Exception]:
    """The cached answers with the scored ones in the places of the misses, in order."""
    it = iter(scored)
    return [next(it) if h is None else h for h in hits if h is not None or scored]


def _unwrap(results: Sequence[Ranked | Exception]) -> list[Ranked]:
    """The lists, or the first error (an :class:`Invalid` before any other)."""
    errors = [r for r in results if isinstance(r, Exception)]
    if errors:
        raise next((e for e in errors if isinstance(e, Invalid)), errors[0])
    return [r for r in results if not isinstance(r, Exception)]


class Ranker(Protocol):
    """Scores the lists one decision needs."""

    def rank(self, jobs: Sequence[RankJob]) -> list[Ranked]:
        """The list of each job, in order; raises :class:`Invalid` for a list that cannot
        be made (fewer than ``k`` items left)."""
        ...

    @property
    def batch_size(self) -> int:
        """Decisions scored together with the last call (1: alone; 0: nothing scored)."""
        ...


class DirectRanker:
    """Scores a decision's lists at once, in the calling thread, without waiting."""

    def __init__(self) -> None:
        self.batch_size = 0

    def rank(self, jobs: Sequence[RankJob]) -> list[Ranked]:
        hits = cached(jobs)
        misses = _misses(jobs, hits)
        self.batch_size = 1 if misses else 0
        return _unwrap(_merge(hits, _unwrap(score_jobs(misses)) if misses else []))


@dataclass
class _Batch:
    deadline: float
    jobs: list[RankJob] = field(default_factory=list)
    requests: int = 0
    results: list[Ranked | Exception] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class Ticket:
    """One announced decision: counted as "on its way" until it submits or withdraws."""

    pending: bool = True


class MicroBatcher:
    """Scores the lists of concurrent decisions together (see the module docstring).

    Parameters
    ----------
    window_s
        Longest time a batch stays open after its first decision arrives.
    max_requests
        Decisions in one batch; a full batch is scored at once.
    """

    def __init__(self, window_s: float, max_requests: int) -> None:
        if window_s < 0:
            raise ValueError(f"window_s must be non-negative, got {window_s}.")
        if max_requests < 1:
            raise ValueError(f"max_requests must be at least 1, got {max_requests}.")
        self.window_s = window_s
        self.max_requests = max_requests
        self._cond = threading.Condition()
        self._open: _Batch | None = None
        self._expected = 0  # announced decisions that have not submitted nor withdrawn
        self.batches = 0
        self.requests = 0

    def announce(self) -> Ticket:
        """Called by the route before a decision enters the threadpool."""
        with self._cond:
            self._expected += 1
        return Ticket()

    def withdraw(self, ticket: Ticket) -> None:
        """Called when the decision is answered: if it never submitted (an experiment
        without recommenders, an error), it stops being waited for."""
        with self._cond:
            if ticket.pending:
                ticket.pending = False
                self._expected -= 1
                self._cond.notify_all()

    def ranker(self, ticket: Ticket | None = None) -> BatchedRanker:
        """The :class:`Ranker` of one decision."""
        return BatchedRanker(self, ticket)

    def submit(self, jobs: Sequence[RankJob], ticket: Ticket | None) -> tuple[list[Ranked], int]:
        """Score ``jobs`` with whatever else arrives within the window; the lists and the
        number of decisions scored together."""
        with self._cond:
            if ticket is not None and ticket.pending:
                ticket.pending = False
                self._expected -= 1
            batch = self._open
            leader = batch is None
            if batch is None:
                batch = self._open = _Batch(time.monotonic() + self.window_s)
            first = len(batch.jobs)
            batch.jobs.extend(jobs)
            batch.requests += 1
            if batch.requests >= self.max_requests:
                self._open = None
            self._cond.notify_all()
        if leader:
            self._lead(batch)
        else:
            batch.done.wait()
        return _unwrap(batch.results[first : first + len(jobs)]), batch.requests

    def _lead(self, batch: _Batch) -> None:
        """Wait for the batch to close, score it, wake its decisions."""
        try:
            with self._cond:
                while self._open is batch and self._expected > 0:
                    left = batch.deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                if self._open is batch:
                    self._open = None
                self.batches += 1
                self.requests += batch.requests
            batch.results = score_jobs(batch.jobs)
        except BaseException as err:
            batch.results = [RuntimeError(f"batch not scored: {err!r}")] * len(batch.jobs)
            raise
        finally:
            batch.done.set()


class BatchedRanker:
    """One decision's view of a :class:`MicroBatcher`."""

    def __init__(self, batcher: MicroBatcher, ticket: Ticket | None) -> None:
        self._batcher = batcher
        self._ticket = ticket
        self.batch_size = 0

    def rank(self, jobs: Sequence[RankJob]) -> list[Ranked]:
        hits = cached(jobs)
        misses = _misses(jobs, hits)
        if not misses:  # all cached: nothing to wait for, and no batch waits for this one
            if self._ticket is not None:
                self._batcher.withdraw(self._ticket)
            return _unwrap(_merge(hits, []))
        scored, self.batch_size = self._batcher.submit(misses, self._ticket)
        return _unwrap(_merge(hits, scored))
