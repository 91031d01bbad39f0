"""Item-kNN: score an item by its co-occurrence similarity to the items the user interacted with.

Similarity is the cosine of the binary item columns of the user-item matrix,

.. math::

    S_{ij} = \\frac{|U_i \\cap U_j|}{\\sqrt{|U_i| |U_j|}}, \\qquad
    s_{ui} = \\sum_{j \\in H_u} S_{ji},

keeping only each item's ``neighbours`` most similar items (a sparse S). A tiny
popularity term (at most ``1e-6``) breaks ties, so an unknown user (cold start, empty
history) gets the popularity ranking.

Memory: scoring materialises one (user_block x n_items) block at a time.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from arms.base import BaseArm, IdsLike, _check_int
from arms.data import Interactions, ItemCatalog
from arms.topk import ExcludedPairs, tiled_topk

__all__ = ["ItemKNNArm"]

TIE_BREAK = 1e-6


def _sparse_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``torch.sparse.mm`` without the beta warning torch raises for its internal CSR path."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
        return torch.sparse.mm(a, b)


class ItemKNNArm(BaseArm):
    """Item-item co-occurrence kNN (see the module docstring).

    Parameters
    ----------
    neighbours : int
        Similar items kept per item (default 200, chosen by ``bandit-fusion arms tune``
        on MovieLens-100K).
    **kwargs
        ``device``, ``user_block``, ``item_block``, ``seed`` (see :class:`arms.base.BaseArm`).

    Examples
    --------
    >>> from arms.data import Interactions
    >>> inter = Interactions([0, 0, 1, 1, 2], [1, 2, 1, 2, 1])
    >>> ItemKNNArm(device="cpu").fit(inter).top_k([2], k=1)[0].tolist()
    [[2]]
    """

    name = "item-knn"
    cold_start = "item popularity (the tie-break term alone)"

    def __init__(self, neighbours: int = 200, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.neighbours = _check_int(neighbours, "neighbours", 1)
        self.sim_indices_: torch.Tensor | None = None  # (2, nnz) rows, cols of S
        self.sim_values_: torch.Tensor | None = None
        self.popularity_: torch.Tensor | None = None
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "neighbours": self.neighbours}

    def _fit(
        self,
        users: np.ndarray,
        items: np.ndarray,
        interactions: Interactions,
        catalog: ItemCatalog | None,
    ) -> None:
        pairs = np.unique(users * self.n_items + items)
        u, i = np.divmod(pairs, self.n_items)
        x = torch.sparse_coo_tensor(
            torch.from_numpy(np.stack([u, i])),
            torch.ones(len(u)),
            (self.n_users, self.n_items),
            check_invariants=True,
        ).coalesce()
        counts = torch.from_numpy(np.bincount(i, minlength=self.n_items).astype(np.float32))
        norm = counts.clamp_min(1.0).rsqrt()
        rows, cols, vals = [], [], []
        xt = x.t().coalesce()
        keep = min(self.neighbours, self.n_items)
        block = max(1, 2**24 // max(self.n_items, 1))
        for start in range(0, self.n_items, block):  # co-occurrence rows in bounded blocks
            stop = min(start + block, self.n_items)
            sub = torch.index_select(xt, 0, torch.arange(start, stop))
            co = _sparse_mm(sub, x).to_dense()  # (block, n_items)
            co = co * norm[start:stop, None] * norm[None, :]
            co[torch.arange(stop - start), torch.arange(start, stop)] = 0.0
            v, c = co.topk(keep, dim=1)
            nz = v > 0
            rows.append(torch.arange(start, stop).unsqueeze(1).expand_as(c)[nz])
            cols.append(c[nz])
            vals.append(v[nz])
        self.sim_indices_ = torch.stack([torch.cat(rows), torch.cat(cols)])
        self.sim_values_ = torch.cat(vals).float()
        self.popularity_ = counts / counts.max().clamp_min(1.0)
        self._cache = None

    def _operators(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cache is None:
            assert self.sim_indices_ is not None and self.sim_values_ is not None
            assert self.popularity_ is not None
            sim = torch.sparse_coo_tensor(
                self.sim_indices_,
                self.sim_values_,
                (self.n_items, self.n_items),
                check_invariants=True,
            ).coalesce()
            self._cache = (sim.to(self.device_), (TIE_BREAK * self.popularity_).to(self.device_))
        return self._cache

    def _history(self, users: torch.Tensor) -> torch.Tensor:
        """Sparse (len(users), n_items) binary history of a block of users."""
        assert self.seen_indptr_ is not None and self.seen_indices_ is not None
        excluded = self._excluded(users)
        idx = torch.from_numpy(np.stack([excluded.rows, excluded.cols]))
        return torch.sparse_coo_tensor(
            idx, torch.ones(idx.shape[1]), (len(users), self.n_items), check_invariants=True
        ).to(self.device_)

    def _block_scores(self, users: torch.Tensor) -> torch.Tensor:
        sim, pop = self._operators()
        return _sparse_mm(self._history(users), sim).to_dense() + pop

    def _score(self, users: torch.Tensor, items: slice | torch.Tensor) -> torch.Tensor:
        full = self._block_scores(users)
        return full[:, items] if isinstance(items, slice) else full[:, items.to(self.device_)]

    def score(self, user_ids: IdsLike, item_ids: IdsLike) -> torch.Tensor:
        """As :meth:`BaseArm.score`, but builds each user block's scores once, not per item tile."""
        users = self._user_rows(user_ids)
        items = self._item_rows(item_ids).to(self.device_)
        out = torch.empty((len(users), len(items)), dtype=torch.float32)
        for u0 in range(0, len(users), self.user_block):
            ub = users[u0 : u0 + self.user_block]
            full = self._block_scores(ub)
            for i0 in range(0, len(items), self.item_block):
                ib = items[i0 : i0 + self.item_block]
                out[u0 : u0 + len(ub), i0 : i0 + len(ib)] = full[:, ib].float().cpu()
        return out

    def _top_k_block(
        self, users: torch.Tensor, k: int, excluded: ExcludedPairs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        full = self._block_scores(users)
        return tiled_topk(
            lambda a, b: full[:, a:b],
            len(users),
            self.n_items,
            k,
            self.item_block,
            excluded,
            self.device_,
        )

    def _state(self) -> dict[str, torch.Tensor]:
        assert self.sim_indices_ is not None and self.sim_values_ is not None
        assert self.popularity_ is not None
        return {
            "sim_indices": self.sim_indices_,
            "sim_values": self.sim_values_,
            "popularity": self.popularity_,
        }

    def _state_shapes(self) -> dict[str, tuple[int | None, ...]]:
        return {"sim_indices": (2, None), "sim_values": (None,), "popularity": (self.n_items,)}

    def _load_state(self, state: dict[str, torch.Tensor]) -> None:
        self.sim_indices_ = state["sim_indices"]
        self.sim_values_ = state["sim_values"]
        self.popularity_ = state["popularity"]
        self._cache = None
