"""A fusion :class:`~simulations.movielens.data.World` from arms that are already trained.

:func:`simulations.movielens.data.build_world` trains the arms itself; the demo instead trains
them once with ``bandit-fusion arms train`` (a model directory the service loads) and needs
the *same* arms' lists offline, to simulate the counterfactual policies (each arm alone, a
uniform blend) on the users and click uniforms the live service saw.

The lists follow the ordering rule of the service's recommenders
(:func:`service.recommenders.rank`): every item of the catalogue is scored for the user, the
user's training items are left out, and items are sorted by decreasing score, ties by item
id. So the top ``k`` unconsumed items of an arm's cached list are the items the
service answers for that arm with ``exclude`` = the consumed items.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from arms.data import Interactions
from simulations.movielens.data import World

__all__ = ["ranked_lists", "world_from_arms"]


def ranked_lists(
    arm: Any, user_ids: np.ndarray, item_ids: np.ndarray, depth: int, block: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Each user's ``depth`` best unseen items by ``arm`` (dense rows of ``item_ids``).

    ``item_ids`` must be sorted (raw ids). Users are scored ``block`` at a time. Returns
    ``lists`` (int32, ``(U, depth)``, ``-1`` in empty slots) and ``scores`` (float32,
    ``-inf`` in empty slots).
    """
    if np.any(np.diff(item_ids) <= 0):
        raise ValueError("item_ids must be sorted and distinct.")
    depth = min(depth, len(item_ids))
    lists = np.full((len(user_ids), depth), -1, dtype=np.int32)
    scores = np.full((len(user_ids), depth), -np.inf, dtype=np.float32)
    for u0 in range(0, len(user_ids), block):
        users = user_ids[u0 : u0 + block]
        s = arm.score(users, item_ids).float().numpy()
        for r, user in enumerate(users.tolist()):
            seen = np.searchsorted(item_ids, arm.seen_items(user))
            s[r, seen[seen < len(item_ids)]] = -np.inf
        s[~np.isfinite(s)] = -np.inf
        order = np.argsort(-s, axis=1, kind="stable")[:, :depth]  # ties: smaller id first
        top = np.take_along_axis(s, order, axis=1)
        keep = np.isfinite(top)
        lists[u0 : u0 + len(users)] = np.where(keep, order, -1)
        scores[u0 : u0 + len(users)] = np.where(keep, top, -np.inf)
    return lists, scores


def world_from_arms(
    arms: Mapping[str, Any],
    train: Interactions,
    test: Interactions,
    item_ids: np.ndarray,
    *,
    genres: np.ndarray,
    n_candidates: int = 50,
    attraction: np.ndarray | None = None,
    scenario: str = "main",
) -> World:
    """The world of ``arms`` (name -> fitted arm, in arm order) trained on ``train``.

    Parameters
    ----------
    train, test
        The split the arms were trained on; users are the users of ``train`` (sorted),
        ``test`` holds the held-out ratings that drive the clicks when ``attraction`` is None.
    item_ids
        The catalogue's raw ids (sorted); ``genres`` their flags, shape ``(I, G)``.
    n_candidates
        Items listed per arm and user (the lists lose the items a user consumes).
    attraction
        ``(U, I)`` click probability of each (user, item) once examined (a synthetic
        population); None: from the held-out ratings (:class:`ClickModel`).
    """
    if len(arms) < 2:
        raise ValueError("arms must hold at least two fitted arms.")
    item_ids = np.asarray(item_ids, dtype=np.int64)
    user_ids = np.unique(train.users)
    if attraction is not None and attraction.shape != (len(user_ids), len(item_ids)):
        raise ValueError(
            f"attraction must have shape ({len(user_ids)}, {len(item_ids)}), "
            f"got {attraction.shape}."
        )
    pairs = [ranked_lists(arm, user_ids, item_ids, n_candidates) for arm in arms.values()]
    in_test = np.isin(test.users, user_ids) & np.isin(test.items, item_ids)
    return World(
        scenario=scenario,
        arm_names=tuple(arms),
        lists=np.stack([p[0] for p in pairs]),
        scores=np.stack([p[1] for p in pairs]),
        user_ids=user_ids,
        item_ids=item_ids,
        test_users=np.searchsorted(user_ids, test.users[in_test]).astype(np.int64),
        test_items=np.searchsorted(item_ids, test.items[in_test]).astype(np.int64),
        test_ratings=test.values[in_test].astype(np.float32),
        history_users=np.searchsorted(user_ids, train.users).astype(np.int64),
        history_items=np.searchsorted(item_ids, train.items).astype(np.int64),
        train_counts=np.bincount(np.searchsorted(user_ids, train.users), minlength=len(user_ids)),
        cold=np.zeros(len(user_ids), dtype=bool),
        genres=np.asarray(genres, dtype=bool),
        attraction=attraction,
    )
