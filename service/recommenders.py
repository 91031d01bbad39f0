"""Trained recommenders inside the service: load a model directory, rank items for a unit.

A model directory is what ``bandit-fusion arms train --out DIR`` writes: one folder per arm
(``arm.json`` and its state, read by :func:`arms.registry.load_arm`) and ``split.json``
(the training metadata; ``trained_at`` when the trainer recorded it). Each folder is one
*recommender*, named after the folder; an experiment maps its bandit arms to these names.

Units are the service's ``unit_id`` strings; a unit whose id is a decimal integer known to
the arm is that user, any other unit is a cold start and gets the arm's documented
fallback (e.g. the most popular items).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from service.errors import Invalid

if TYPE_CHECKING:
    from arms.base import BaseArm
    from service.candidate_cache import CandidateCache

SPLIT_FILE = "split.json"  # written by `bandit-fusion arms train`
COLD_START_USER = -1  # never a fitted user id: the arm's cold-start fallback


@dataclass(frozen=True)
class Recommender:
    """One loaded arm and what the API shows about it."""

    name: str
    kind: str  # the arm class, e.g. "mf"
    arm: BaseArm
    item_ids: np.ndarray  # sorted catalogue, int64
    trained_at: dt.datetime | None
    path: Path
    cache: CandidateCache | None = None  # precomputed lists (service.candidate_cache)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def knows(self, items: np.ndarray) -> np.ndarray:
        """Boolean mask: which of ``items`` are in this recommender's catalogue."""
        pos = np.clip(np.searchsorted(self.item_ids, items), 0, max(self.n_items - 1, 0))
        return self.item_ids[pos] == items if self.n_items else np.zeros(len(items), bool)


def load_models(folder: Path, device: str | None = "cpu") -> dict[str, Recommender]:
    """Every arm saved under ``folder`` (one sub-folder with an ``arm.json`` each).

    Raises ``ValueError`` naming the folder when it holds no arm or an arm cannot be read.
    """
    from arms.registry import load_arm

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"models_dir {folder} is not a folder.")
    meta_path = folder / SPLIT_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    trained_at = _parse_date(meta.get("trained_at"))
    out: dict[str, Recommender] = {}
    for arm_json in sorted(folder.glob("*/arm.json")):
        sub = arm_json.parent
        try:
            arm = load_arm(sub, device=device)
        except Exception as err:
            raise ValueError(f"models_dir: cannot load the arm in {sub}: {err}") from err
        items = np.asarray(arm.item_ids_, dtype=np.int64)
        out[sub.name] = Recommender(sub.name, arm.name, arm, np.sort(items), trained_at, sub)
    if not out:
        raise ValueError(f"models_dir {folder} holds no saved arms (no */arm.json).")
    return out


def _parse_date(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def user_id(unit_id: str) -> int:
    """The arm's user id for ``unit_id``: its integer value, else the cold-start id."""
    text = unit_id.strip()
    if text.isdigit() and len(text) < 19:
        return int(text)
    return COLD_START_USER


@dataclass(frozen=True)
class ItemRequest:
    """What a decision asks of the recommenders: list length, exclusions, allowed items."""

    k: int
    exclude: np.ndarray  # int64, may be empty
    candidates: np.ndarray | None  # int64, or None for the whole catalogue


def check_request(recs: Sequence[Recommender], req: ItemRequest, max_k: int) -> None:
    """:class:`Invalid` (422) when the request cannot be answered by every one of ``recs``."""
    if req.k > max_k:
        raise Invalid(f"k is {req.k}, above the configured maximum {max_k} (setting max_k)")
    for name, ids in (("exclude", req.exclude), ("candidates", req.candidates)):
        if ids is None or len(ids) == 0:
            continue
        for rec in recs:
            unknown = ids[~rec.knows(ids)]
            if len(unknown):
                shown = ", ".join(str(i) for i in unknown[:5])
                raise Invalid(
                    f"{name} holds {len(unknown)} item id(s) unknown to recommender "
                    f"{rec.name!r} (e.g. {shown})"
                )
    for rec in recs:
        pool = rec.n_items if req.candidates is None else len(np.unique(req.candidates))
        if req.k > pool:
            what = "the catalogue" if req.candidates is None else "the candidates"
            raise Invalid(
                f"k is {req.k}, above the {pool} items of {what} (recommender {rec.name!r})"
            )


Ranked = tuple[np.ndarray, np.ndarray]
"""A ranked list: item ids (int64), best first, and their scores (float64)."""


def depth_bucket(req: ItemRequest, n_items: int) -> int:
    """How deep the arm's ``top_k`` is asked for a full-catalogue request: enough for ``k``
    items after ``exclude`` is dropped, rounded up to a power of two (at least 16), so that
    requests of different ``k`` or ``exclude`` length usually share one batched call, and a
    request asks the arm for the same depth alone or in a batch."""
    need = req.k + len(req.exclude)
    return min(n_items, max(16, 1 << (need - 1).bit_length()))


def rank_rows(
    rec: Recommender, unit_ids: Sequence[str], reqs: Sequence[ItemRequest]
) -> list[Ranked | Invalid]:
    """The ranked list of each (unit, request) pair, scored together: one batched call of
    the arm for all rows (a micro-batch of decisions, or one decision alone).

    Every request must have the same ``candidates`` and, without candidates, the same
    :func:`depth_bucket` (the caller groups them). Without candidates the lists come from
    the arm's ``top_k`` (seen items left out, its own fast selector), with ``exclude``
    dropped; with candidates the candidates are scored (seen items allowed) and
    ``exclude`` dropped. Lists are sorted by score, ties by item id. A row with fewer than
    ``k`` items left gets an :class:`Invalid` instead of a list (the others are unaffected).
    """
    users = [user_id(u) for u in unit_ids]
    candidates = reqs[0].candidates
    if candidates is None:
        depth = depth_bucket(reqs[0], rec.n_items)
        top_ids, top_scores = rec.arm.top_k(users, depth, exclude_seen=True)
        rows = list(zip(top_ids.numpy(), top_scores.float().numpy(), strict=True))
    else:
        pool = np.unique(candidates)
        scores = rec.arm.score(users, pool).float().numpy()
        rows = [(pool, row) for row in scores]
    return [
        take_k(rec, unit, *sort_row(ids, scores), req)
        for (ids, scores), unit, req in zip(rows, unit_ids, reqs, strict=True)
    ]


def sort_row(ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row of the arm's answer as a list: its real items (id >= 0, finite score) sorted by
    score, ties by item id."""
    keep = (ids >= 0) & np.isfinite(scores)
    ids, scores = ids[keep], scores[keep]
    order = np.lexsort((ids, -scores))
    return ids[order], scores[order]


def take_k(
    rec: Recommender, unit: str, ids: np.ndarray, scores: np.ndarray, req: ItemRequest
) -> Ranked | Invalid:
    """The first ``req.k`` items of a sorted row (:func:`sort_row`) once ``req.exclude`` is
    dropped, or :class:`Invalid` when fewer are left."""
    if len(req.exclude):
        keep = ~np.isin(ids, req.exclude)
        ids, scores = ids[keep], scores[keep]
    if len(ids) < req.k:
        return Invalid(
            f"recommender {rec.name!r} has only {len(ids)} items left for unit "
            f"{unit!r} after exclusions, fewer than k = {req.k}"
        )
    return ids[: req.k].astype(np.int64), scores[: req.k].astype(np.float64)


def rank(rec: Recommender, unit_id: str, req: ItemRequest) -> Ranked:
    """The ``req.k`` best items of ``rec`` for ``unit_id`` (see :func:`rank_rows`), alone.

    Raises :class:`Invalid` when fewer than ``k`` items remain.
    """
    result = rank_rows(rec, [unit_id], [req])[0]
    if isinstance(result, Invalid):
        raise result
    return result


def warm_up(models: Mapping[str, Recommender]) -> None:
    """Score one cold-start user with each recommender, so that the arms build their lazy
    tables (device copies, similarity matrices) now rather than in the first decisions."""
    for rec in models.values():
        k = min(rec.n_items, 10)
        rank_rows(rec, ["warm-up"], [ItemRequest(k, np.zeros(0, np.int64), None)])
