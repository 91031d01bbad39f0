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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from service.errors import Invalid

if TYPE_CHECKING:
    from arms.base import BaseArm

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


def rank(rec: Recommender, unit_id: str, req: ItemRequest) -> tuple[np.ndarray, np.ndarray]:
    """The ``req.k`` best items of ``rec`` for ``unit_id``, best first (int64), and their
    scores (float64).

    Scores the whole catalogue (or the candidates) for the user, leaves out the items the
    user interacted with at fit time and ``req.exclude``, and sorts by score (ties by item
    id). Raises :class:`Invalid` when fewer than ``k`` items remain.
    """
    arm = rec.arm
    user = user_id(unit_id)
    pool = rec.item_ids if req.candidates is None else np.unique(req.candidates)
    scores = arm.score([user], pool).float().numpy()[0]
    drop = np.isin(pool, req.exclude)
    if req.candidates is None:
        drop |= np.isin(pool, arm.seen_items(user))
    keep = ~drop & np.isfinite(scores)
    pool, scores = pool[keep], scores[keep]
    if len(pool) < req.k:
        raise Invalid(
            f"recommender {rec.name!r} has only {len(pool)} items left for unit "
            f"{unit_id!r} after exclusions, fewer than k = {req.k}"
        )
    order = np.lexsort((pool, -scores))[: req.k]
    return pool[order], scores[order].astype(np.float64)
