"""The observations of a fused decision: per shown slot, for the arm(s) that earned it.

A stored fused list (``decisions.items``) is turned back into
:class:`bandit.fusion.FusedLists` and handed to :func:`bandit.fusion.slot_observations`
(the one implementation of the credit rules):

* drawn fusers (``slot-mix``, ``team-draft``): each shown slot is one trial for its source
  arm, rewarded with the slot's value;
* deterministic fusers (``weighted-score``, ``weighted-rrf``; their items carry ``credit``):
  a slot is one observation for each arm holding part of the item's fused score, rewarded
  with its share of the slot's value (``split=True``), so the weights of one item sum to 1.

Optional position correction (``examination`` given): see
:mod:`service.store.position` for the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bandit.fusion import FusedLists, slot_observations
from bandit.fusion.position import Examination


@dataclass(frozen=True, slots=True)
class SlotObservation:
    """One observation of a fused decision, before it is queued for the policy."""

    position: int
    arm: int  # experiment arm index
    value: float  # raw value credited to the arm (the slot's value times its share)
    normalized: float  # what the policy learns, in [0, 1]
    split: bool  # one of several arms sharing the slot (deterministic fusers)


def logged_lists(items: list[Any], n_arms: int) -> FusedLists:
    """A stored fused list as :class:`bandit.fusion.FusedLists` (one request): credit from
    the items' ``credit`` shares when they have them, else one-hot on the source arm."""
    k = len(items)
    source = np.array([[int(i["arm"]) for i in items]], dtype=np.int64)
    credit = np.zeros((1, k, n_arms))
    for j, i in enumerate(items):
        if i.get("credit"):
            for a, w in i["credit"]:
                credit[0, j, int(a)] = float(w)
        else:
            credit[0, j, source[0, j]] = 1.0
    return FusedLists(
        items=np.array([[int(i["item"]) for i in items]], dtype=np.int64),
        source=source,
        source_prob=np.array([[float(i["source_prob"]) for i in items]]),
        propensity=np.array([[float(i["propensity"]) for i in items]]),
        credit=credit,
    )


def slot_values(
    items: list[Any],
    values: dict[int, float],
    scale: float,
    n_arms: int,
    examination: Examination | None = None,
    max_weight: float = 4.0,
) -> list[SlotObservation]:
    """The observations of one fused decision, slot by slot (arms in index order within a
    slot). ``values`` maps a position to the largest value among its rewards (other slots:
    0); ``scale`` is the reward definition's maximum."""
    fused = logged_lists(items, n_arms)
    split = any(i.get("credit") for i in items)
    raw = np.array([[values.get(j, 0.0) for j in range(fused.k)]])
    arms, rewards = slot_observations(
        fused, raw / scale, examination=examination, max_weight=max_weight, split=split
    )
    if split:
        slots, which = np.nonzero(fused.credit[0] > 0)  # the order slot_observations uses
        assert np.array_equal(which, arms)
        shares = fused.credit[0, slots, which]
    else:
        slots, shares = np.arange(fused.k), np.ones(fused.k)
    return [
        SlotObservation(int(j), int(a), float(raw[0, j] * w), float(r), split)
        for j, a, w, r in zip(
            slots.tolist(), arms.tolist(), shares.tolist(), rewards.tolist(), strict=True
        )
    ]
