"""The items of a decision: the chosen arm's top k (allocate) or the fused list (fuse).

Runs in the request's worker thread (never on the event loop). Everything here is computed
before the decision is stored, so a request that cannot be answered stores nothing.

Logged per item (see :class:`ServedItem`): its position, the bandit arm that placed it, the
probability that this arm was the source of the slot, and the item's marginal propensity
at that position:

* ``allocate``: the source is the drawn arm, ``source_prob`` its allocation, and the
  propensity of item ``i`` at position ``j`` is the sum of the allocations of the arms whose
  list has ``i`` at ``j`` (exact: every backed arm's list is computed);
* ``fuse``: what the fuser returns (:class:`bandit.fusion.FusedLists`), with the policy's
  allocation as the weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.batching import DirectRanker, Ranker, RankJob
from service.errors import Invalid
from service.recommenders import ItemRequest, Recommender, check_request


@dataclass(frozen=True, slots=True)
class ServedItem:
    """One item of a decision's list, as stored in ``decisions.items``."""

    item: int
    position: int
    arm: int
    source_prob: float
    propensity: float
    # deterministic fusers: [[arm, share], ...] of the item's fused score (shares sum to 1)
    credit: list[list[float]] | None = None

    def as_json(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict deep-copies field by field (a hot path, k per decision)
        return {
            "item": self.item,
            "position": self.position,
            "arm": self.arm,
            "source_prob": self.source_prob,
            "propensity": self.propensity,
        } | ({} if self.credit is None else {"credit": self.credit})


@dataclass(frozen=True, slots=True)
class Served:
    """A decision's list and the arm the decision is logged with."""

    arm: int  # allocate: the drawn arm; fuse: the source of the top slot
    items: list[ServedItem]


def backing(
    recommenders: Sequence[str | None], models: Mapping[str, Recommender]
) -> list[Recommender | None]:
    """The loaded recommender of each arm (None for an arm without one).

    Raises :class:`Invalid` when an experiment names a recommender that is no longer loaded
    (the service was restarted with another models directory).
    """
    out: list[Recommender | None] = []
    for name in recommenders:
        if name is None:
            out.append(None)
        elif name not in models:
            raise Invalid(f"recommender {name!r} of this experiment is not loaded")
        else:
            out.append(models[name])
    return out


def serve_allocate(
    recs: Sequence[Recommender | None],
    arm: int,
    probabilities: Sequence[float],
    unit_id: str,
    req: ItemRequest,
    max_k: int,
    ranker: Ranker | None = None,
) -> Served:
    """The drawn ``arm``'s top k, with exact propensities over every backed arm's list.

    ``ranker`` scores the lists (default: at once, alone; the service passes its
    micro-batcher)."""
    backed = [r for r in recs if r is not None]
    check_request(backed, req, max_k)
    rec = recs[arm]
    if rec is None:
        return Served(arm, [])
    used = [
        (a, r) for a, r in enumerate(recs) if r is not None and (a == arm or probabilities[a] > 0)
    ]
    ranked = (ranker or DirectRanker()).rank([RankJob(r, unit_id, req) for _, r in used])
    lists = {a: items for (a, _), (items, _) in zip(used, ranked, strict=True)}
    chosen = lists[arm]
    out = []
    for j, item in enumerate(chosen.tolist()):
        prop = sum(probabilities[a] for a, ranked in lists.items() if ranked[j] == item)
        out.append(ServedItem(int(item), j, arm, float(probabilities[arm]), float(prop)))
    return Served(arm, out)


def serve_fuse(
    recs: Sequence[Recommender | None],
    fuser_name: str,
    probabilities: Sequence[float],
    seed: int,
    unit_id: str,
    req: ItemRequest,
    max_k: int,
    ranker: Ranker | None = None,
    params: Mapping[str, Any] | None = None,
) -> Served:
    """The fused list of every arm's top k, weighted by the allocation, drawn with ``seed``
    (``ranker`` as in :func:`serve_allocate`; ``params``: the fuser's). A deterministic
    fuser's items carry their credit shares."""
    from bandit import make_fuser

    if any(r is None for r in recs):
        raise Invalid("mode 'fuse' needs a recommender for every arm")
    backed = [r for r in recs if r is not None]
    check_request(backed, req, max_k)
    ranked = (ranker or DirectRanker()).rank([RankJob(r, unit_id, req) for r in backed])
    items = np.stack([i for i, _ in ranked])[:, None, :]  # (A, 1, k)
    scores = np.stack([s for _, s in ranked])[:, None, :]
    weights = np.asarray(probabilities, dtype=np.float64)
    weights = weights / weights.sum()
    fuser = make_fuser(fuser_name, k=req.k, **(params or {}))
    fused = fuser.fuse(items, weights, scores, seed=seed)
    fractional = not fuser.stochastic
    out = [
        ServedItem(
            int(fused.items[0, j]),
            j,
            int(fused.source[0, j]),
            float(fused.source_prob[0, j]),
            float(fused.propensity[0, j]),
            [[a, float(fused.credit[0, j, a])] for a in np.flatnonzero(fused.credit[0, j]).tolist()]
            if fractional
            else None,
        )
        for j in range(fused.k)
    ]
    return Served(out[0].arm, out)
