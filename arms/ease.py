"""EASE: closed-form item-item regression (Steck, "Embarrassingly Shallow Autoencoders", 2019).

With ``X`` the binary user-item matrix and ``G = X^T X``, EASE solves

.. math::

    \\min_B \\|X - X B\\|_F^2 + \\lambda \\|B\\|_F^2 \\quad \\text{s.t. } \\mathrm{diag}(B) = 0,

whose solution is ``P = (G + \\lambda I)^{-1}``, ``B_{ij} = -P_{ij} / P_{jj}`` (``B_{jj} = 0``).
A user's scores are ``x_u B`` (plus a popularity tie-break): for a block of users, the
dense history rows times ``B``, one item tile at a time, with a running top-k
(:func:`arms.topk.tiled_topk`). ``G`` and ``P`` are float32.

The one parameter, ``regularization`` (``lambda``), is chosen on the nested validation
split by default (``regularization=None``): each value of ``regularization_grid`` is
fitted on the inner-train part and scored by NDCG@10 on the validation part
(:func:`arms.tune.tune`), then the arm is refitted on all its training data with the
best value, which :attr:`EASEArm.regularization_` holds (and ``arm.json`` records).

Memory: ``B`` is a dense ``n_items x n_items`` float32 matrix (11 MB for MovieLens-100K's
1,682 items, 1.6 GB for 20,000 items). Cold start: an unknown user has an empty history
and gets the popularity ranking (a tie-break term of at most ``1e-6``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from arms.base import BaseArm
from arms.data import Interactions, ItemCatalog
from arms.knn import TIE_BREAK, _sparse_mm
from arms.topk import ExcludedPairs, tiled_topk

__all__ = ["DEFAULT_GRID", "EASEArm", "ease_weights"]

DEFAULT_GRID: tuple[float, ...] = (50.0, 100.0, 200.0, 400.0, 800.0, 1600.0)
"""Values of ``lambda`` tried on the validation split when ``regularization`` is None."""


def ease_weights(gram: torch.Tensor, regularization: float) -> torch.Tensor:
    """EASE's ``B`` (float32) from the Gram matrix ``X^T X``, in the Gram matrix's dtype.

    >>> g = torch.tensor([[2.0, 1.0], [1.0, 2.0]])
    >>> ease_weights(g, 1.0).tolist()
    [[0.0, 0.3333333432674408], [0.3333333432674408, 0.0]]
    """
    n = gram.shape[0]
    p = torch.linalg.inv(gram + regularization * torch.eye(n, dtype=gram.dtype))
    b = -p / torch.diagonal(p).unsqueeze(0)
    b.fill_diagonal_(0.0)
    return b.float()


class EASEArm(BaseArm):
    """EASE item-item regression (see the module docstring).

    Parameters
    ----------
    regularization : float or None
        ``lambda``; None picks it from ``regularization_grid`` on the nested validation split.
    regularization_grid : sequence of float
        Candidates when ``regularization`` is None.
    **kwargs
        ``device``, ``user_block``, ``item_block``, ``seed`` (see :class:`arms.base.BaseArm`).

    Examples
    --------
    >>> from arms.data import Interactions
    >>> inter = Interactions([0, 0, 1, 1, 2], [1, 2, 1, 2, 1])
    >>> EASEArm(regularization=1.0, device="cpu").fit(inter).top_k([2], k=1)[0].tolist()
    [[2]]
    """

    name = "ease"
    cold_start = "item popularity (the tie-break term alone)"

    def __init__(
        self,
        regularization: float | None = None,
        regularization_grid: Sequence[float] = DEFAULT_GRID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if regularization is not None and not regularization > 0:
            raise ValueError(f"regularization must be positive or None, got {regularization}.")
        grid = tuple(float(v) for v in regularization_grid)
        if not grid or not all(v > 0 for v in grid):
            raise ValueError(
                f"regularization_grid must hold positive values, got {regularization_grid}."
            )
        self.regularization = None if regularization is None else float(regularization)
        self.regularization_grid = grid
        self.regularization_: float | None = None
        self.weights_: torch.Tensor | None = None
        self.popularity_: torch.Tensor | None = None
        self._cache: torch.Tensor | None = None

    def _params(self) -> dict[str, Any]:
        return {
            **super()._params(),
            "regularization": self.regularization,
            "regularization_grid": list(self.regularization_grid),
        }

    def _fitted(self) -> dict[str, Any]:
        return {"regularization": self.regularization_}

    def _fit(
        self,
        users: np.ndarray,
        items: np.ndarray,
        interactions: Interactions,
        catalog: ItemCatalog | None,
    ) -> None:
        lam = self.regularization
        if lam is None:
            lam = self._select_regularization(interactions, catalog)
        pairs = np.unique(users * self.n_items + items)
        u, i = np.divmod(pairs, self.n_items)
        x = torch.sparse_coo_tensor(
            torch.from_numpy(np.stack([u, i])),
            torch.ones(len(u)),
            (self.n_users, self.n_items),
            check_invariants=True,
        ).coalesce()
        gram = _sparse_mm(x.t().coalesce(), x).to_dense()
        self.weights_ = ease_weights(gram, lam)
        counts = torch.from_numpy(np.bincount(i, minlength=self.n_items).astype(np.float32))
        self.popularity_ = counts / counts.max().clamp_min(1.0)
        self.regularization_ = float(lam)
        self._cache = None

    def _select_regularization(
        self, interactions: Interactions, catalog: ItemCatalog | None
    ) -> float:
        from arms.tune import tune  # imported here: arms.tune imports the registry

        fixed = {
            "device": self.device_,
            "user_block": self.user_block,
            "item_block": self.item_block,
            "seed": self.seed,
        }
        grid: dict[str, list[Any]] = {"regularization": list(self.regularization_grid)}
        result = tune(self.name, interactions, catalog, grid, fixed=fixed)
        return float(result.best.params["regularization"])

    def _item_table(self) -> torch.Tensor:
        """``[B^T | tie-break popularity]`` on the device, shape (n_items, n_items + 1)."""
        if self._cache is None:
            assert self.weights_ is not None and self.popularity_ is not None
            table = torch.cat([self.weights_.T, TIE_BREAK * self.popularity_.unsqueeze(1)], 1)
            self._cache = table.contiguous().to(self.device_)
        return self._cache

    def _user_matrix(self, users: torch.Tensor) -> torch.Tensor:
        """``[x_u | 1]``: dense binary histories plus a ones column, shape (n, n_items + 1)."""
        excluded = self._excluded(users)
        out = torch.zeros((len(users), self.n_items + 1), device=self.device_)
        rows = torch.from_numpy(excluded.rows).to(self.device_)
        cols = torch.from_numpy(excluded.cols).to(self.device_)
        out[rows, cols] = 1.0
        out[:, -1] = 1.0
        return out

    def _score(self, users: torch.Tensor, items: slice | torch.Tensor) -> torch.Tensor:
        table = self._item_table()
        chosen = table[items] if isinstance(items, slice) else table[items.to(self.device_)]
        return self._user_matrix(users) @ chosen.T

    def _top_k_block(
        self, users: torch.Tensor, k: int, excluded: ExcludedPairs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # A running top-k over tiles of one product per tile. (The group-maximum selector
        # of the factor arms re-scores k * groups candidates per user with n_items-long
        # vectors here, which costs more than it saves.)
        table, history = self._item_table(), self._user_matrix(users)
        return tiled_topk(
            lambda start, stop: history @ table[start:stop].T,
            len(users),
            self.n_items,
            k,
            self.item_block,
            excluded,
            self.device_,
        )

    def _state(self) -> dict[str, torch.Tensor]:
        assert self.weights_ is not None and self.popularity_ is not None
        assert self.regularization_ is not None
        return {
            "weights": self.weights_,
            "popularity": self.popularity_,
            "regularization": torch.tensor([self.regularization_], dtype=torch.float64),
        }

    def _state_shapes(self) -> dict[str, tuple[int | None, ...]]:
        n = self.n_items
        return {"weights": (n, n), "popularity": (n,), "regularization": (1,)}

    def _load_state(self, state: dict[str, torch.Tensor]) -> None:
        self.weights_ = state["weights"]
        self.popularity_ = state["popularity"]
        self.regularization_ = float(state["regularization"][0])
        self._cache = None
