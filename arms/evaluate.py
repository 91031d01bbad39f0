"""Train arms on a temporal split and evaluate their top-k lists against the held-out interactions.

Protocol (what the ``bandit-fusion arms`` commands run): every interaction is an
implicit positive; :func:`arms.data.temporal_split` holds out each user's latest 20%;
each arm recommends ``k`` items per test user from the whole catalogue, excluding the
user's training items; the relevant items are the user's distinct held-out items that are
not among their training items (with ``min_rating``: only those rated at least that), and
users left with none are skipped by the metrics.

:func:`evaluate_lists` turns the lists of several arms into a :class:`Report`: per user
group (all, warm, cold-start, new, activity tertiles) and per arm, precision@k, true
recall@k and NDCG@k with a paired bootstrap interval over users, and the paired
difference of every arm to the group's best arm (by NDCG@k).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from arms.base import BaseArm
from arms.bootstrap import Estimate, bootstrap_differences, bootstrap_means
from arms.data import Interactions, ItemCatalog
from arms.metrics import (
    catalogue_coverage,
    intra_list_diversity,
    list_overlap,
    ndcg_at_k,
    ndcg_per_user,
    precision_per_user,
    recall_at_k,
    recall_per_user,
)
from arms.registry import make_arm

__all__ = [
    "COLD_MAX",
    "EvalUsers",
    "GroupReport",
    "Report",
    "evaluate_arm",
    "evaluate_arms",
    "evaluate_lists",
    "held_out_users",
    "recommend",
    "saved_lists",
    "train_arms",
    "user_groups",
]

COLD_MAX = 5
"""Users with 1 to ``COLD_MAX`` training interactions form the cold-start group."""


@dataclass(frozen=True, slots=True)
class EvalUsers:
    """The users a split evaluates, with what counts as relevant for each.

    Attributes
    ----------
    users : numpy.ndarray of int64, shape (n,)
        Every user with a held-out interaction, ascending.
    relevant : list of numpy.ndarray
        Per user, the distinct relevant held-out items (may be empty).
    n_train : numpy.ndarray of int64, shape (n,)
        Training interactions per user (0: a user new at test time).
    """

    users: np.ndarray
    relevant: list[np.ndarray]
    n_train: np.ndarray


@dataclass(frozen=True, slots=True)
class GroupReport:
    """Metrics of every arm on one group of users.

    Attributes
    ----------
    name : str
    users : int
        Users in the group with at least one relevant item.
    best : str
        The arm with the highest mean NDCG@k in this group.
    metrics : dict
        ``metrics[arm][metric]``: :class:`~arms.bootstrap.Estimate`.
    differences : dict
        ``differences[arm][metric]``: paired ``arm - best`` with its interval.
    """

    name: str
    users: int
    best: str
    metrics: dict[str, dict[str, Estimate]]
    differences: dict[str, dict[str, Estimate]]


@dataclass(frozen=True, slots=True)
class Report:
    """Everything :func:`evaluate_lists` measured (see :meth:`as_dict` for the JSON layout)."""

    k: int
    metric_names: tuple[str, ...]
    groups: list[GroupReport]
    group_sizes: dict[str, int]
    lists: dict[str, dict[str, float]]
    overlap: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``groups[group]["arms"][arm][metric] = {mean, low, high, n}``."""
        return {
            "k": self.k,
            "group_sizes": self.group_sizes,
            "groups": {
                g.name: {
                    "users": g.users,
                    "best": g.best,
                    "arms": {
                        arm: {m: e.as_dict() for m, e in per.items()}
                        for arm, per in g.metrics.items()
                    },
                    "difference_to_best": {
                        arm: {m: e.as_dict() for m, e in per.items()}
                        for arm, per in g.differences.items()
                    },
                }
                for g in self.groups
            },
            "lists": self.lists,
            "overlap": self.overlap,
        }


def train_arms(
    names: Iterable[str],
    train: Interactions,
    items: ItemCatalog,
    params: dict[str, dict[str, Any]] | None = None,
    progress: bool = False,
) -> Iterator[BaseArm]:
    """Build each named arm with ``params[name]`` and fit it on ``train``; yields fitted arms."""
    names = list(names)
    for name in tqdm(names, desc="training arms", disable=not progress):
        yield make_arm(name, **(params or {}).get(name, {})).fit(train, items)


def held_out_users(
    train: Interactions, test: Interactions, min_rating: float | None = None
) -> EvalUsers:
    """The test users of a split and their relevant items (see the module docstring)."""
    held = test if min_rating is None else test.subset(test.values >= min_rating)
    users = np.unique(test.users)
    seen = {u: s for u, s in _grouped(train.users, train.items)}
    kept = dict(_grouped(held.users, held.items))
    empty = np.zeros(0, dtype=np.int64)
    relevant = [
        np.setdiff1d(kept.get(int(u), empty), seen.get(int(u), empty)) for u in users.tolist()
    ]
    counts = dict(zip(*np.unique(train.users, return_counts=True), strict=True))
    n_train = np.array([counts.get(u, 0) for u in users.tolist()], dtype=np.int64)
    return EvalUsers(users, relevant, n_train)


def _grouped(users: np.ndarray, items: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    order = np.argsort(users, kind="stable")
    su, si = users[order], items[order]
    cuts = np.flatnonzero(np.diff(su)) + 1
    for chunk_u, chunk_i in zip(np.split(su, cuts), np.split(si, cuts), strict=True):
        if len(chunk_u):
            yield int(chunk_u[0]), chunk_i


def user_groups(n_train: np.ndarray, cold_max: int = COLD_MAX) -> dict[str, np.ndarray]:
    """Boolean masks of the user groups, by training interactions per user.

    ``all``; ``warm`` (more than ``cold_max``); ``cold-start`` (1 to ``cold_max``);
    ``new`` (none); ``activity-low|mid|high``: tertiles of the training counts of the
    users with at least one (cut at the 1/3 and 2/3 quantiles).

    >>> {k: v.tolist() for k, v in user_groups(np.array([0, 2, 10, 30, 90])).items()}["warm"]
    [False, False, True, True, True]
    """
    n_train = np.asarray(n_train)
    groups = {
        "all": np.ones(len(n_train), dtype=bool),
        "warm": n_train > cold_max,
        "cold-start": (n_train >= 1) & (n_train <= cold_max),
        "new": n_train == 0,
    }
    active = n_train[n_train > 0]
    if len(active):
        q1, q2 = np.quantile(active, [1 / 3, 2 / 3])
        groups["activity-low"] = (n_train > 0) & (n_train <= q1)
        groups["activity-mid"] = (n_train > q1) & (n_train <= q2)
        groups["activity-high"] = n_train > q2
    return groups


def recommend(
    arm: BaseArm, users: np.ndarray, k: int, batch_size: int = 512, progress: bool = False
) -> np.ndarray:
    """Top-``k`` item ids of ``arm`` for ``users`` (seen items excluded), shape (n, k)."""
    lists = []
    for start in tqdm(
        range(0, len(users), batch_size),
        desc=f"scoring {arm.name}",
        disable=not progress,
        leave=False,
    ):
        ids, _ = arm.top_k(users[start : start + batch_size], k, exclude_seen=True)
        lists.append(ids.numpy())
    return np.concatenate(lists) if lists else np.zeros((0, k), dtype=np.int64)


def evaluate_lists(
    lists: dict[str, np.ndarray],
    users: EvalUsers,
    items: ItemCatalog,
    k: int,
    n_resamples: int = 2000,
    seed: int = 0,
    cold_max: int = COLD_MAX,
) -> Report:
    """Per group and arm: precision, recall, NDCG at ``k`` with paired bootstrap intervals.

    Parameters
    ----------
    lists : dict
        Arm name -> recommended ids, shape (len(users.users), k), rows in ``users`` order.
    users : EvalUsers
    items : ItemCatalog
        For the genre intra-list diversity.
    k : int
    n_resamples, seed : int
        Bootstrap resamples; the same users are drawn for every arm (paired).
    cold_max : int
        Upper bound of the cold-start group (see :func:`user_groups`).
    """
    if not lists:
        raise ValueError("lists must name at least one arm.")
    names = list(lists)
    metric_names = (f"precision@{k}", f"recall@{k}", f"ndcg@{k}")
    per_user = {
        name: np.stack(
            [
                precision_per_user(rec, users.relevant),
                recall_per_user(rec, users.relevant),
                ndcg_per_user(rec, users.relevant),
            ],
            axis=1,
        )
        for name, rec in lists.items()
    }
    has_relevant = np.array([len(r) > 0 for r in users.relevant])
    masks = user_groups(users.n_train, cold_max)
    reports, overlap = [], {}
    for group, mask in masks.items():
        rows = mask & has_relevant
        if not rows.any():
            continue
        reports.append(_group_report(group, per_user, rows, metric_names, n_resamples, seed))
        if group in ("all", "warm", "cold-start"):
            overlap[group] = {
                a: {b: round(list_overlap(lists[a][rows], lists[b][rows]), 4) for b in names}
                for a in names
            }
    features = dict(zip(items.item_ids.tolist(), items.genres.astype(np.float64), strict=True))
    list_stats = {
        name: {
            "coverage": round(catalogue_coverage(rec, len(items)), 4),
            "diversity": round(intra_list_diversity(rec, features), 4)
            if items.genres.shape[1]
            else 0.0,
        }
        for name, rec in lists.items()
    }
    sizes = {g: int((m & has_relevant).sum()) for g, m in masks.items()}
    sizes["test users"] = len(users.users)
    sizes["without a relevant item"] = int((~has_relevant).sum())
    return Report(k, metric_names, reports, sizes, list_stats, overlap)


def _group_report(
    group: str,
    per_user: dict[str, np.ndarray],
    rows: np.ndarray,
    metric_names: tuple[str, ...],
    n_resamples: int,
    seed: int,
) -> GroupReport:
    names = list(per_user)
    n_metrics = len(metric_names)
    # users x (arms * metrics), arm-major: one bootstrap draw shared by every column
    matrix = np.concatenate([per_user[n][rows] for n in names], axis=1)
    estimates = bootstrap_means(matrix, n_resamples, seed=seed)
    primary = n_metrics - 1  # NDCG@k
    means = [estimates[a * n_metrics + primary].mean for a in range(len(names))]
    best = int(np.argmax(means))
    diffs: list[Estimate] = []
    for m in range(n_metrics):
        cols = matrix[:, m::n_metrics]
        diffs.extend(bootstrap_differences(cols, best, n_resamples, seed=seed))
    metrics = {
        n: {metric_names[m]: estimates[a * n_metrics + m] for m in range(n_metrics)}
        for a, n in enumerate(names)
    }
    differences = {
        n: {metric_names[m]: diffs[m * len(names) + a] for m in range(n_metrics)}
        for a, n in enumerate(names)
    }
    return GroupReport(group, int(rows.sum()), names[best], metrics, differences)


def evaluate_arm(
    arm: BaseArm,
    test: Interactions,
    items: ItemCatalog,
    k: int = 10,
    batch_size: int = 512,
    progress: bool = False,
) -> dict[str, float]:
    """Recall@k (true recall), NDCG@k, catalogue coverage and genre diversity of one fitted arm.

    Relevant items are computed from the arm's own record of seen items, so this needs
    no training table. Returns ``{"recall@k", "ndcg@k", "coverage", "diversity", "users"}``.
    """
    users = np.unique(test.users)
    grouped = dict(_grouped(test.users, test.items))
    relevant = [np.setdiff1d(grouped[int(u)], arm.seen_items(int(u))) for u in users]
    recommended = recommend(arm, users, k, batch_size, progress)
    features = dict(zip(items.item_ids.tolist(), items.genres.astype(np.float64), strict=True))
    return {
        f"recall@{k}": recall_at_k(recommended, relevant),
        f"ndcg@{k}": ndcg_at_k(recommended, relevant),
        "coverage": catalogue_coverage(recommended, len(items)),
        "diversity": intra_list_diversity(recommended, features) if items.genres.shape[1] else 0.0,
        "users": float(len(users)),
    }


def evaluate_arms(
    arms: Iterable[BaseArm],
    test: Interactions,
    items: ItemCatalog,
    k: int = 10,
    progress: bool = False,
) -> Iterator[dict[str, Any]]:
    """One flat row per arm: ``{"arm": name, "recall@k": ..., ...}`` (ready for a DataFrame)."""
    for arm in arms:
        yield {"arm": arm.name, **evaluate_arm(arm, test, items, k=k, progress=progress)}


def saved_lists(
    folders: Iterable[Path],
    users: np.ndarray,
    k: int,
    device: str | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Arm name -> top-``k`` lists for ``users`` of every arm saved under ``folders``."""
    from arms.registry import load_arm

    lists = {}
    for folder in folders:
        arm = load_arm(folder, device=device)
        lists[arm.name] = recommend(arm, users, k, progress=progress)
    return lists
