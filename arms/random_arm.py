"""Random arm: an exploration baseline whose scores are a seeded hash of (seed, user, item).

Scores are uniform on [0, 1), fixed for a given seed, user and item, so ``score`` and
``top_k`` agree and repeated calls return the same lists. Nothing is learned.
Cold start: unknown users share one random ranking per seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from arms.base import BaseArm
from arms.data import Interactions, ItemCatalog

__all__ = ["RandomArm", "hash_uniform"]

_MASK = 0xFFFFFFFF
_MULT = 0x45D9F3B  # < 2**27, so (x < 2**32) * _MULT never overflows int64


def _mix(x: torch.Tensor) -> torch.Tensor:
    x = (((x >> 16) ^ x) * _MULT) & _MASK
    x = (((x >> 16) ^ x) * _MULT) & _MASK
    return (x >> 16) ^ x


def hash_uniform(seed: int, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """Uniform [0, 1) float32 scores, shape (len(users), len(items)), from a 32-bit integer hash.

    >>> s = hash_uniform(0, torch.tensor([0, 1]), torch.tensor([3, 4, 5]))
    >>> s.shape, bool(((s >= 0) & (s < 1)).all())
    (torch.Size([2, 3]), True)
    """
    u = _mix((users.to(torch.int64) + 1 + _mix(torch.tensor(seed & _MASK))) & _MASK)
    h = _mix((u.unsqueeze(1) ^ items.to(torch.int64).unsqueeze(0)) & _MASK)
    return (h >> 8).to(torch.float32) / float(1 << 24)


class RandomArm(BaseArm):
    """Seeded random scores (see the module docstring).

    Examples
    --------
    >>> from arms.data import Interactions
    >>> arm = RandomArm(seed=3, device="cpu").fit(Interactions([0, 1], [10, 11]))
    >>> arm.top_k([0], k=2, exclude_seen=False)[0].shape
    torch.Size([1, 2])
    """

    name = "random"
    cold_start = "one shared random ranking per seed"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def _fit(
        self,
        users: np.ndarray,
        items: np.ndarray,
        interactions: Interactions,
        catalog: ItemCatalog | None,
    ) -> None:
        return None

    def _score(self, users: torch.Tensor, items: slice | torch.Tensor) -> torch.Tensor:
        rows = torch.arange(self.n_items)[items] if isinstance(items, slice) else items
        return hash_uniform(self.seed, users, rows).to(self.device_)

    def _state(self) -> dict[str, torch.Tensor]:
        return {}

    def _load_state(self, state: dict[str, torch.Tensor]) -> None:
        return None
