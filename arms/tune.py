"""Grid search of an arm's parameters on the nested validation split.

The training interactions are split again in time (:func:`arms.splits.nested_split`):
each candidate is fitted on the inner-train part and scored by mean NDCG@k on the
validation part, with the evaluation protocol of :mod:`arms.evaluate` (seen items
excluded, relevant = distinct unseen held-out items). The test interactions are never
touched, so the chosen parameters can be evaluated on test without bias.

>>> parse_grid(["factors=32,64", "alpha=1.0"])
{'factors': [32, 64], 'alpha': [1.0]}
>>> expand_grid({"factors": [32, 64], "alpha": [1.0]})
[{'factors': 32, 'alpha': 1.0}, {'factors': 64, 'alpha': 1.0}]
"""

from __future__ import annotations

import inspect
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np

from arms.data import Interactions, ItemCatalog
from arms.evaluate import held_out_users, recommend
from arms.metrics import ndcg_per_user
from arms.registry import arm_class, make_arm
from arms.splits import nested_split

__all__ = ["Trial", "TuneResult", "expand_grid", "parse_grid", "tune", "validation_ndcg"]


@dataclass(frozen=True, slots=True)
class Trial:
    """One grid point: its parameters, validation NDCG@k and fit-plus-score seconds."""

    params: dict[str, Any]
    ndcg: float
    seconds: float


@dataclass(frozen=True, slots=True)
class TuneResult:
    """Every trial of a grid search and the best one (highest validation NDCG@k).

    Attributes
    ----------
    arm : str
    k : int
    trials : list of Trial
        In grid order.
    best : Trial
    validation_users : int
        Users of the validation split with at least one relevant item.
    """

    arm: str
    k: int
    trials: list[Trial]
    best: Trial
    validation_users: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``bandit-fusion arms tune`` writes)."""
        return {
            "arm": self.arm,
            "k": self.k,
            "metric": f"validation ndcg@{self.k}",
            "validation_users": self.validation_users,
            "best": asdict(self.best),
            "trials": [asdict(t) for t in self.trials],
        }


def parse_grid(specs: list[str]) -> dict[str, list[Any]]:
    """``["NAME=V1,V2", ...]`` -> ``{NAME: [V1, V2]}``; each value is read as JSON if it can be."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, raw = spec.partition("=")
        name = name.strip()
        if not sep or not name or not raw.strip():
            raise ValueError(f"grid must look like NAME=V1,V2,..., got {spec!r}.")
        values = []
        for token in raw.split(","):
            try:
                values.append(json.loads(token))
            except json.JSONDecodeError:
                values.append(token.strip())
        grid[name] = values
    return grid


def expand_grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the last name varying fastest."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def validation_ndcg(
    factory: Callable[[], Any],
    inner: Interactions,
    valid: Interactions,
    items: ItemCatalog | None,
    k: int = 10,
) -> tuple[float, int]:
    """Mean NDCG@k on ``valid`` of the arm ``factory()`` fitted on ``inner``, and the user count."""
    users = held_out_users(inner, valid)
    keep = np.array([len(r) > 0 for r in users.relevant], dtype=bool)
    if not keep.any():
        raise ValueError("valid must hold at least one unseen item for a user in inner.")
    arm = factory().fit(inner, items)
    k = min(k, arm.n_items)
    ids = users.users[keep]
    lists = recommend(arm, ids, k)
    values = ndcg_per_user(lists, [r for r, kept in zip(users.relevant, keep, strict=True) if kept])
    return float(np.mean(values)), int(keep.sum())


def tune(
    name: str,
    train: Interactions,
    items: ItemCatalog | None,
    grid: dict[str, list[Any]],
    k: int = 10,
    fixed: dict[str, Any] | None = None,
    progress: Callable[[Trial], None] | None = None,
) -> TuneResult:
    """Fit arm ``name`` for every point of ``grid`` on the nested split of ``train``.

    Parameters
    ----------
    name : str
        A registered arm.
    train : Interactions
        The training interactions; the validation split is cut from them.
    items : ItemCatalog or None
    grid : dict
        Parameter name -> candidate values (see :func:`parse_grid`).
    k : int
        List length of the NDCG.
    fixed : dict, optional
        Parameters passed to every candidate (device, seed, blocks ...).
    progress : callable, optional
        Called with each finished :class:`Trial`.
    """
    cls = arm_class(name)
    if not grid:
        raise ValueError("grid must name at least one parameter.")
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    accepted |= {"device", "user_block", "item_block", "seed"}
    unknown = sorted(set(grid) - accepted)
    if unknown:
        raise ValueError(f"grid names parameters the {name!r} arm does not take: {unknown}.")
    inner, valid = nested_split(train)
    trials = []
    n_users = 0
    for point in expand_grid(grid):
        params = {**(fixed or {}), **point}
        start = time.perf_counter()
        score, n_users = validation_ndcg(partial(make_arm, name, **params), inner, valid, items, k)
        trial = Trial(point, round(score, 6), round(time.perf_counter() - start, 2))
        trials.append(trial)
        if progress is not None:
            progress(trial)
    best = max(trials, key=lambda t: t.ndcg)
    return TuneResult(name, k, trials, best, n_users)
