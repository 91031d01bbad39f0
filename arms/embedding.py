"""Arms whose score is a dot product of a user vector and an item vector (MF, BERT).

Scoring is one batched matrix product, and :meth:`top_k` uses the blocked
group-maximum selector :func:`arms.topk.dot_topk`, so the users x items matrix is never
materialised. On CUDA the vectors are cast to half precision for scoring; on the CPU
they stay in float32.
"""

from __future__ import annotations

from typing import Any

import torch

from arms.base import BaseArm
from arms.topk import ExcludedPairs, dot_topk

__all__ = ["EmbeddingArm"]


class EmbeddingArm(BaseArm):
    """Base of the dot-product arms; subclasses fill ``user_vecs_``, ``item_vecs_``, ``fallback_``.

    Attributes
    ----------
    user_vecs_ : Tensor of float32, shape (n_users, d)
    item_vecs_ : Tensor of float32, shape (n_items, d)
    fallback_ : Tensor of float32, shape (d,)
        The vector an unknown (cold-start) user gets.
    """

    groups: int = 8

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user_vecs_: torch.Tensor | None = None
        self.item_vecs_: torch.Tensor | None = None
        self.fallback_: torch.Tensor | None = None
        self._device_vecs: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def scoring_dtype(self) -> torch.dtype:
        """float16 on CUDA, float32 elsewhere."""
        return torch.float16 if self.device_.type == "cuda" else torch.float32

    def _set_vectors(
        self, user_vecs: torch.Tensor, item_vecs: torch.Tensor, fallback: torch.Tensor
    ) -> None:
        self.user_vecs_ = user_vecs.float().contiguous()
        self.item_vecs_ = item_vecs.float().contiguous()
        self.fallback_ = fallback.float().contiguous()
        self._device_vecs = None

    def _on_device(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._device_vecs is None:
            assert self.user_vecs_ is not None and self.item_vecs_ is not None
            assert self.fallback_ is not None
            users = torch.cat([self.user_vecs_, self.fallback_.unsqueeze(0)])  # row -1: fallback
            self._device_vecs = (
                users.to(self.device_, self.scoring_dtype),
                self.item_vecs_.to(self.device_, self.scoring_dtype),
            )
        return self._device_vecs

    def _user_matrix(self, users: torch.Tensor) -> torch.Tensor:
        user_table, _ = self._on_device()
        return user_table[users.to(self.device_)]  # -1 picks the fallback row

    def _score(self, users: torch.Tensor, items: slice | torch.Tensor) -> torch.Tensor:
        _, item_table = self._on_device()
        chosen = (
            item_table[items] if isinstance(items, slice) else item_table[items.to(self.device_)]
        )
        return self._user_matrix(users) @ chosen.T

    def _top_k_block(
        self, users: torch.Tensor, k: int, excluded: ExcludedPairs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _, item_table = self._on_device()
        return dot_topk(
            self._user_matrix(users), item_table, k, self.item_block, self.groups, excluded
        )

    def _state(self) -> dict[str, torch.Tensor]:
        assert self.user_vecs_ is not None and self.item_vecs_ is not None
        assert self.fallback_ is not None
        return {
            "user_vecs": self.user_vecs_,
            "item_vecs": self.item_vecs_,
            "fallback": self.fallback_,
        }

    def _state_shapes(self) -> dict[str, tuple[int | None, ...]]:
        return {
            "user_vecs": (self.n_users, None),
            "item_vecs": (self.n_items, None),
            "fallback": (None,),
        }

    def _load_state(self, state: dict[str, torch.Tensor]) -> None:
        self._set_vectors(state["user_vecs"], state["item_vecs"], state["fallback"])
