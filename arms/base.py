"""The :class:`Arm` protocol and :class:`BaseArm`, which does the shared work for every arm.

``BaseArm``'s public methods validate input, map raw ids to rows, pick the device,
block users and items, build the exclude-seen masks, and persist state; a subclass
writes only the hooks ``_fit``, ``_score``, ``_state`` and ``_load_state`` (and may
override ``_top_k_block`` with a faster selector).

Ids: users and items are raw ``int64`` ids. The item catalogue is closed at fit time
(an unknown item id raises :class:`~arms.errors.UnknownItemError`); an unknown user is
a cold start and gets the arm's documented fallback.

Results are returned on the CPU as ``float32`` scores and ``int64`` item ids, whatever
device computed them.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from arms.data import Interactions, ItemCatalog
from arms.errors import NotFittedError, UnknownItemError
from arms.topk import ExcludedPairs, tiled_topk

__all__ = ["FORMAT_VERSION", "Arm", "BaseArm", "resolve_device"]

FORMAT_VERSION = 1
"""Version of the on-disk layout written by :meth:`BaseArm.save`."""

IdsLike = Sequence[int] | np.ndarray | torch.Tensor


@runtime_checkable
class Arm(Protocol):
    """What the bandit needs from a base recommender: batched scores and top-k lists."""

    name: str

    def fit(self, interactions: Interactions, items: ItemCatalog | None = None) -> Any: ...

    def score(self, user_ids: IdsLike, item_ids: IdsLike) -> torch.Tensor: ...

    def top_k(
        self, user_ids: IdsLike, k: int, exclude_seen: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def save(self, path: str | Path) -> None: ...


def resolve_device(device: str | torch.device | None) -> torch.device:
    """CUDA when available and ``device`` is None, else CPU; an explicit device is kept.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device is {device!r} but CUDA is not available.")
    return dev


def _check_int(value: object, name: str, min_val: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    if value < min_val:
        raise ValueError(f"{name} must be at least {min_val}, got {value}.")
    return int(value)


def _as_ids(values: IdsLike, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}.")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer ids, got dtype {array.dtype}.")
    return array.astype(np.int64, copy=False)


def _check_shape(
    file: Path, key: str, tensor: torch.Tensor | None, shape: tuple[int | None, ...]
) -> torch.Tensor:
    """``tensor`` if it has ``shape`` (``None``: any size), else a ValueError naming the field."""
    if tensor is None:
        raise ValueError(f"{file}: field {key!r} is missing.")
    got = tuple(tensor.shape)
    if len(got) != len(shape) or any(
        e is not None and g != e for g, e in zip(got, shape, strict=True)
    ):
        want = tuple("*" if e is None else e for e in shape)
        raise ValueError(
            f"{file}: field {key!r} has shape {got}, expected {want} "
            "to match the saved user and item ids."
        )
    return tensor


def _take(
    state: dict[str, torch.Tensor], file: Path, key: str, shape: tuple[int | None, ...]
) -> torch.Tensor:
    """Pop ``key`` from ``state`` after checking its shape."""
    return _check_shape(file, key, state.pop(key, None), shape)


class BaseArm(ABC):
    """Shared machinery of every arm (see the module docstring).

    Parameters
    ----------
    device : str or torch.device, optional
        Where scoring runs; default CUDA when available, else CPU. On CUDA the
        embedding arms score in half precision.
    user_block : int
        Users scored together in :meth:`top_k`.
    item_block : int
        Items per tile; bounds the working memory to ``user_block * item_block`` scores.
    seed : int
        Seeds everything random in :meth:`fit` (and the random arm's scores).
    """

    name: ClassVar[str]
    cold_start: ClassVar[str] = ""

    def __init__(
        self,
        *,
        device: str | torch.device | None = None,
        user_block: int = 512,
        item_block: int = 2048,
        seed: int = 0,
    ) -> None:
        self.device = device
        self.user_block = user_block
        self.item_block = item_block
        self.seed = seed
        _check_int(user_block, "user_block", 1)
        _check_int(item_block, "item_block", 1)
        _check_int(seed, "seed", 0)
        self.device_ = resolve_device(device)
        self.user_ids_: np.ndarray | None = None
        self.item_ids_: np.ndarray | None = None
        self.seen_indptr_: np.ndarray | None = None
        self.seen_indices_: np.ndarray | None = None

    # ------------------------------------------------------------------ hooks

    @abstractmethod
    def _fit(
        self,
        users: np.ndarray,
        items: np.ndarray,
        interactions: Interactions,
        catalog: ItemCatalog | None,
    ) -> None:
        """Learn from interactions whose ids are already mapped to rows (``users``, ``items``)."""

    @abstractmethod
    def _score(self, users: torch.Tensor, items: slice | torch.Tensor) -> torch.Tensor:
        """Scores, shape (len(users), n_selected_items); ``users`` holds -1 for cold starts."""

    @abstractmethod
    def _state(self) -> dict[str, torch.Tensor]:
        """Learned tensors to persist (besides ids and seen items, which the base saves)."""

    @abstractmethod
    def _load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`_state` returned."""

    def _state_shapes(self) -> dict[str, tuple[int | None, ...]]:
        """Expected shape of each :meth:`_state` tensor (``None``: any size), checked by
        :meth:`load` once the user and item ids are read; keys left out are not checked."""
        return {}

    def _params(self) -> dict[str, Any]:
        """Constructor arguments, JSON-safe (``device`` is left out: it belongs to the host)."""
        return {"user_block": self.user_block, "item_block": self.item_block, "seed": self.seed}

    def _fitted(self) -> dict[str, Any]:
        """What fitting chose by itself (e.g. a regularisation picked on validation), JSON-safe;
        written to ``arm.json`` under ``"fitted"`` for the record (the state holds it too)."""
        return {}

    def _top_k_block(
        self, users: torch.Tensor, k: int, excluded: ExcludedPairs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k for one user block: indices (rows of the catalogue) and scores."""
        return tiled_topk(
            lambda start, stop: self._score(users, slice(start, stop)),
            len(users),
            self.n_items,
            k,
            self.item_block,
            excluded,
            self.device_,
        )

    # ------------------------------------------------------------------ public API

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` or :meth:`load` has run."""
        return self.item_ids_ is not None

    @property
    def n_items(self) -> int:
        """Size of the item catalogue."""
        return 0 if self.item_ids_ is None else len(self.item_ids_)

    @property
    def n_users(self) -> int:
        """Number of users seen at fit time."""
        return 0 if self.user_ids_ is None else len(self.user_ids_)

    def fit(self, interactions: Interactions, items: ItemCatalog | None = None) -> Self:
        """Learn from ``interactions``; the catalogue is ``items`` plus every interacted item.

        Returns the arm itself.
        """
        if not isinstance(interactions, Interactions):
            raise ValueError(
                f"interactions must be an Interactions, got {type(interactions).__name__}."
            )
        if len(interactions) == 0:
            raise ValueError("interactions must not be empty.")
        if items is not None and not isinstance(items, ItemCatalog):
            raise ValueError(f"items must be an ItemCatalog or None, got {type(items).__name__}.")
        self.user_ids_ = np.unique(interactions.users)
        known = interactions.items if items is None else np.r_[items.item_ids, interactions.items]
        self.item_ids_ = np.unique(known)
        users = np.searchsorted(self.user_ids_, interactions.users)
        item_rows = np.searchsorted(self.item_ids_, interactions.items)
        pairs = np.unique(users * self.n_items + item_rows)
        rows, cols = np.divmod(pairs, self.n_items)
        self.seen_indptr_ = np.searchsorted(rows, np.arange(self.n_users + 1)).astype(np.int64)
        self.seen_indices_ = cols.astype(np.int64)
        self._fit(users, item_rows, interactions, items)
        return self

    def score(self, user_ids: IdsLike, item_ids: IdsLike) -> torch.Tensor:
        """Scores of every (user, item) pair.

        Parameters
        ----------
        user_ids : sequence of int, shape (n_users,)
            Unknown users get the arm's cold-start fallback.
        item_ids : sequence of int, shape (n_items,)
            Must all be in the fitted catalogue.

        Returns
        -------
        Tensor of float32, shape (n_users, n_items), on the CPU.
        """
        users = self._user_rows(user_ids)
        items = self._item_rows(item_ids)
        out = torch.empty((len(users), len(items)), dtype=torch.float32)
        for u0 in range(0, len(users), self.user_block):
            ub = users[u0 : u0 + self.user_block]
            for i0 in range(0, len(items), self.item_block):
                ib = items[i0 : i0 + self.item_block]
                out[u0 : u0 + len(ub), i0 : i0 + len(ib)] = self._score(ub, ib).float().cpu()
        return out

    def top_k(
        self, user_ids: IdsLike, k: int, exclude_seen: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` best items per user, best first.

        Parameters
        ----------
        user_ids : sequence of int, shape (n_users,)
        k : int
            ``1 <= k <= n_items``.
        exclude_seen : bool
            Leave out items the user interacted with at fit time. Slots left empty
            (fewer than ``k`` unseen items) hold item id -1 and score ``-inf``.

        Returns
        -------
        item_ids : Tensor of int64, shape (n_users, k), on the CPU
        scores : Tensor of float32, shape (n_users, k), on the CPU
        """
        users = self._user_rows(user_ids)
        _check_int(k, "k", 1)
        if k > self.n_items:
            raise ValueError(f"k must be at most the catalogue size {self.n_items}, got {k}.")
        ids_out = torch.empty((len(users), k), dtype=torch.int64)
        val_out = torch.empty((len(users), k), dtype=torch.float32)
        item_ids = torch.from_numpy(np.asarray(self.item_ids_))
        for u0 in range(0, len(users), self.user_block):
            ub = users[u0 : u0 + self.user_block]
            excluded = self._excluded(ub) if exclude_seen else ExcludedPairs.empty()
            rows, vals = self._top_k_block(ub, k, excluded)
            rows = rows.cpu()
            ids = torch.where(rows >= 0, item_ids[rows.clamp(min=0)], rows)
            ids_out[u0 : u0 + len(ub)] = ids
            val_out[u0 : u0 + len(ub)] = vals.float().cpu()
        return ids_out, val_out

    def seen_items(self, user_id: int) -> np.ndarray:
        """Raw ids of the items ``user_id`` interacted with at fit time (empty if unknown)."""
        row = int(self._user_rows([user_id])[0])
        if row < 0:
            return np.zeros(0, dtype=np.int64)
        assert self.seen_indptr_ is not None and self.seen_indices_ is not None
        cols = self.seen_indices_[self.seen_indptr_[row] : self.seen_indptr_[row + 1]]
        return np.asarray(self.item_ids_)[cols]

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> None:
        """Write ``arm.json`` (name, parameters) and ``state.safetensors`` into folder ``path``."""
        self._require_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            f"arm.{key}": value.detach().cpu().contiguous() for key, value in self._state().items()
        }
        state["base.user_ids"] = torch.from_numpy(np.asarray(self.user_ids_))
        state["base.item_ids"] = torch.from_numpy(np.asarray(self.item_ids_))
        state["base.seen_indptr"] = torch.from_numpy(np.asarray(self.seen_indptr_))
        state["base.seen_indices"] = torch.from_numpy(np.asarray(self.seen_indices_))
        save_file(state, str(folder / "state.safetensors"))
        meta: dict[str, Any] = {
            "arm": self.name,
            "format": FORMAT_VERSION,
            "params": self._params(),
        }
        if self._fitted():
            meta["fitted"] = self._fitted()
        (folder / "arm.json").write_text(json.dumps(meta, indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> Self:
        """Read an arm written by :meth:`save`; ``device`` as in the constructor."""
        folder = Path(path)
        meta = json.loads((folder / "arm.json").read_text())
        if meta.get("arm") != cls.name:
            raise ValueError(f"path holds a {meta.get('arm')!r} arm, not {cls.name!r}.")
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"path holds format {meta.get('format')}, expected {FORMAT_VERSION}.")
        arm = cls(**meta["params"], device=device)
        file = folder / "state.safetensors"
        state = load_file(str(file))
        arm.user_ids_ = _take(state, file, "base.user_ids", (None,)).numpy()
        arm.item_ids_ = _take(state, file, "base.item_ids", (None,)).numpy()
        arm.seen_indptr_ = _take(state, file, "base.seen_indptr", (arm.n_users + 1,)).numpy()
        nnz = int(arm.seen_indptr_[-1])
        arm.seen_indices_ = _take(state, file, "base.seen_indices", (nnz,)).numpy()
        for key, shape in arm._state_shapes().items():
            _check_shape(file, f"arm.{key}", state.get(f"arm.{key}"), shape)
        arm._load_state({key.removeprefix("arm."): value for key, value in state.items()})
        return arm

    # ------------------------------------------------------------------ helpers

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"This {self.name!r} arm is not fitted: call fit() or load() first."
            )

    def _user_rows(self, user_ids: IdsLike) -> torch.Tensor:
        """Rows of the users, -1 for users unknown at fit time (cold start)."""
        self._require_fitted()
        ids = _as_ids(user_ids, "user_ids")
        known = np.asarray(self.user_ids_)
        if len(known) == 0:
            return torch.full((len(ids),), -1, dtype=torch.int64)
        pos = np.clip(np.searchsorted(known, ids), 0, len(known) - 1)
        rows = np.where(known[pos] == ids, pos, -1)
        return torch.from_numpy(rows.astype(np.int64))

    def _item_rows(self, item_ids: IdsLike) -> torch.Tensor:
        self._require_fitted()
        ids = _as_ids(item_ids, "item_ids")
        known = np.asarray(self.item_ids_)
        pos = np.clip(np.searchsorted(known, ids), 0, len(known) - 1)
        bad = known[pos] != ids
        if np.any(bad):
            shown = ", ".join(str(i) for i in ids[bad][:5])
            raise UnknownItemError(
                f"item_ids holds {int(bad.sum())} id(s) unknown to the {self.name!r} arm "
                f"(e.g. {shown}); the catalogue is fixed at fit time."
            )
        return torch.from_numpy(pos.astype(np.int64))

    def _excluded(self, users: torch.Tensor) -> ExcludedPairs:
        assert self.seen_indptr_ is not None and self.seen_indices_ is not None
        rows_np = users.numpy()
        known = rows_np >= 0
        starts = np.where(known, self.seen_indptr_[np.maximum(rows_np, 0)], 0)
        stops = np.where(known, self.seen_indptr_[np.maximum(rows_np, 0) + 1], 0)
        counts = stops - starts
        total = int(counts.sum())
        if total == 0:
            return ExcludedPairs.empty()
        block_rows = np.repeat(np.arange(len(rows_np)), counts)
        offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        cols = self.seen_indices_[np.repeat(starts, counts) + offsets]
        order = np.argsort(cols, kind="stable")
        return ExcludedPairs(block_rows[order].astype(np.int64), cols[order])

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"
