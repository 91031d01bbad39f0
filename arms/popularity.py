"""Popularity: every user gets the items with the most (time-decayed) interactions.

.. math::

    s_i = \\sum_{(u, i, t) \\in D} 2^{-(t_{max} - t) / h}

with ``t_max`` the latest training timestamp and ``h`` the half-life; ``h = None``
gives plain counts. Cold start: the same list as everyone else (the score ignores the user).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from arms.base import BaseArm
from arms.data import Interactions, ItemCatalog

__all__ = ["PopularityArm"]

SECONDS_PER_DAY = 86_400.0


def decay_weights(
    timestamps: np.ndarray, reference: float, half_life_days: float | None
) -> np.ndarray:
    """``2 ** (-(reference - t) / half_life)`` per timestamp (all 1 if ``half_life_days`` is None).

    >>> decay_weights(np.array([0, 86_400]), 86_400, 1.0).tolist()
    [0.5, 1.0]
    """
    if half_life_days is None:
        return np.ones(len(timestamps), dtype=np.float64)
    age = (reference - timestamps.astype(np.float64)) / (half_life_days * SECONDS_PER_DAY)
    return np.exp2(-np.maximum(age, 0.0))


class PopularityArm(BaseArm):
    """Time-decayed interaction counts (see the module docstring).

    Parameters
    ----------
    half_life_days : float or None
        Half-life of an interaction's weight; None (the default, chosen by
        ``bandit-fusion arms tune`` on MovieLens-100K) counts every interaction as 1.
    **kwargs
        ``device``, ``user_block``, ``item_block``, ``seed`` (see :class:`arms.base.BaseArm`).

    Examples
    --------
    >>> from arms.data import Interactions
    >>> arm = PopularityArm(half_life_days=None, device="cpu")
    >>> arm = arm.fit(Interactions([0, 1, 2, 2], [5, 5, 6, 7]))
    >>> arm.top_k([0, 99], k=1)[0].tolist()
    [[6], [5]]
    """

    name = "popularity"
    cold_start = "the same popularity list as every user"

    def __init__(self, half_life_days: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if half_life_days is not None and not half_life_days > 0:
            raise ValueError(f"half_life_days must be positive or None, got {half_life_days}.")
        self.half_life_days = None if half_life_days is None else float(half_life_days)
        self.scores_: torch.Tensor | None = None

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "half_life_days": self.half_life_days}

    def _fit(
        self,
        users: np.ndarray,
        items: np.ndarray,
        interactions: Interactions,
        catalog: ItemCatalog | None,
    ) -> None:
        ts = interactions.timestamps
        weights = decay_weights(ts, float(ts.max()), self.half_life_days)
        counts = np.bincount(items, weights=weights, minlength=self.n_items)
        self.scores_ = torch.from_numpy(counts.astype(np.float32))

    def _score(self, users: torch.Tensor, items: slice | torch.Tensor) -> torch.Tensor:
        assert self.scores_ is not None
        row = self.scores_[items].to(self.device_)
        return row.unsqueeze(0).expand(len(users), -1)

    def _state(self) -> dict[str, torch.Tensor]:
        assert self.scores_ is not None
        return {"scores": self.scores_}

    def _state_shapes(self) -> dict[str, tuple[int | None, ...]]:
        return {"scores": (self.n_items,)}

    def _load_state(self, state: dict[str, torch.Tensor]) -> None:
        self.scores_ = state["scores"]
