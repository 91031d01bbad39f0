"""Content arm: all-MiniLM-L6-v2 embeddings of item text, users scored item to item.

* Item text (title plus genres or attributes, from :class:`arms.data.ItemCatalog`) is
  embedded once by :class:`arms.minilm.MiniLMEncoder` and cached on disk under
  ``cache_dir`` (default ``$BANDIT_FUSION_CACHE`` or ``~/.cache/bandit-fusion``), keyed
  by the SHA-256 of the model hash, the precision and the texts.
* A user is their ``history`` most recent distinct training items. An item's score is
  the mean of its ``top_m`` largest cosine similarities to those items (``top_m = 1``:
  the maximum), so a user who watched one horror film and one comedy gets neighbours
  of each rather than of their average, which drifts to generic titles.
* Items with the same title (the text before ``". Genres: "``, the whole text
  otherwise) are one film listed twice: :meth:`BertArm.top_k` never lists two of them,
  and a seen item's twins count as seen.
* Optional popularity prior, off by default: ``popularity_weight = w > 0`` adds
  ``w * log1p(n_i) / log1p(max_j n_j)`` (``n_i`` the item's training interactions).

Scoring is batched: a block of users' history against a tile of items gives a
``users x history x items`` block of similarities, reduced over the history. Up to
:data:`ITEM_TABLE_LIMIT` items the similarities are rows gathered from the item-item
cosine matrix, computed once; beyond it, one batched matrix product of embeddings.
Cold start: an unknown user, with no history, gets the popularity ranking.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from arms.base import BaseArm, _check_int
from arms.data import Interactions, ItemCatalog
from arms.minilm import MODEL_SHA256, MiniLMEncoder, Precision, resolve_precision
from arms.topk import ExcludedPairs, tiled_topk

__all__ = ["BertArm", "default_cache_dir", "title_key"]

SIMILARITY_BUDGET = 1 << 22
"""Most similarities (users x history x items) held at once while scoring."""

ITEM_TABLE_LIMIT = 8192
"""Up to this many items the item-item similarity matrix is computed once (on first
scoring, 256 MiB at the limit) and scoring gathers its rows; above it, similarities are
recomputed from the embeddings per block (``d`` times more arithmetic, no n^2 memory)."""


def default_cache_dir() -> Path:
    """``$BANDIT_FUSION_CACHE`` or ``~/.cache/bandit-fusion``."""
    env = os.environ.get("BANDIT_FUSION_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "bandit-fusion"


def title_key(text: str) -> str:
    """The part of an item text that names the item: the text before ``". Genres: "``.

    >>> title_key("Hugo Pool (1997). Genres: Romance")
    'Hugo Pool (1997)'
    """
    return text.split(". Genres: ", 1)[0].strip()


class BertArm(BaseArm):
    """MiniLM content arm scored item to item (see the module docstring).

    Parameters
    ----------
    history : int
        Most recent distinct training items that represent a user.
    top_m : int
        An item's score is the mean of its ``top_m`` largest similarities to the
        user's history items (1: the maximum).
    popularity_weight : float
        Weight ``w`` of the optional log-popularity prior (0: pure content).
    precision : {"auto", "fp32", "bf16", "fp16"}
        Encoder precision (see :class:`arms.minilm.MiniLMEncoder`).
    batch_size : int
        Texts per encoder batch.
    cache_dir : str, optional
        Where item embeddings are cached; default :func:`default_cache_dir`.
    **kwargs
        ``device``, ``user_block``, ``item_block``, ``seed`` (see :class:`arms.base.BaseArm`).
    """

    name = "bert"
    cold_start = "item popularity (no history to compare with)"

    def __init__(
        self,
        history: int = 20,
        top_m: int = 1,
        popularity_weight: float = 0.0,
        precision: Precision = "auto",
        batch_size: int = 64,
        cache_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.history = _check_int(history, "history", 1)
        self.top_m = _check_int(top_m, "top_m", 1)
        if not popularity_weight >= 0:
            raise ValueError(f"popularity_weight must be non-negative, got {popularity_weight}.")
        self.popularity_weight = float(popularity_weight)
        self.precision = precision
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.item_vecs_: torch.Tensor | None = None
        self.history_: torch.Tensor | None = None
        self.popularity_: torch.Tensor | None = None
        self.title_group_: torch.Tensor | None = None
        self._device_items: torch.Tensor | None = None
        self._item_sims: torch.Tensor | None = None

    def _params(self) -> dict[str, Any]:
        return {
            **super()._params(),
            "history": self.history,
            "top_m": self.top_m,
            "popularity_weight": self.popularity_weight,
            "precision": self.precision,
            "batch_size": self.batch_size,
            "cache_dir": self.cache_dir,
        }

    def embed_items(self, texts: list[str]) -> torch.Tensor:
        """Embeddings of ``texts`` (float32, (n, 384)), read from the disk cache when present."""
        dtype = resolve_precision(self.precision, self.device_)
        key = hashlib.sha256(f"{MODEL_SHA256}\n{dtype}\n".encode())
        for text in texts:
            key.update(text.encode("utf-8") + b"\x00")
        folder = Path(self.cache_dir) if self.cache_dir else default_cache_dir()
        path = folder / f"minilm-{key.hexdigest()[:24]}.safetensors"
        if path.is_file():
            cached = load_file(str(path))["embeddings"]
            if cached.shape[0] == len(texts):
                return cached
        encoder = MiniLMEncoder(
            device=self.device_, precision=self.precision, batch_size=self.batch_size
        )
        vecs = encoder.embed(texts)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file({"embeddings": vecs.contiguous()}, str(tmp))
        tmp.replace(path)
        return vecs

    # ------------------------------------------------------------------ fitting

    def _fit(
        self,
        users: np.ndarray,
        items: np.ndarray,
        interactions: Interactions,
        catalog: ItemCatalog | None,
    ) -> None:
        if catalog is None:
            raise ValueError(
                "items (an ItemCatalog with item text) is required to fit the bert arm."
            )
        assert self.item_ids_ is not None
        text_of = dict(zip(catalog.item_ids.tolist(), catalog.texts, strict=True))
        texts = [text_of.get(int(i), "") for i in self.item_ids_]
        self.item_vecs_ = torch.nn.functional.normalize(self.embed_items(texts).float(), dim=1)
        self.history_ = torch.from_numpy(
            _recent_items(users, items, interactions.timestamps, self.n_users, self.history)
        )
        counts = torch.from_numpy(np.bincount(items, minlength=self.n_items)).float().log1p()
        self.popularity_ = counts / counts.max().clamp_min(1e-9)
        self.title_group_ = torch.from_numpy(_title_groups(texts))
        self._device_items = None
        self._item_sims = None

    # ------------------------------------------------------------------ scoring

    def _items_on_device(self) -> torch.Tensor:
        if self._device_items is None:
            assert self.item_vecs_ is not None
            self._device_items = self.item_vecs_.to(self.device_)
        return self._device_items

    def _similarity_table(self) -> torch.Tensor | None:
        """The (n_items, n_items) cosine matrix when the catalogue is small enough, else None."""
        if self.n_items > ITEM_TABLE_LIMIT:
            return None
        if self._item_sims is None:
            vecs = self._items_on_device()
            self._item_sims = vecs @ vecs.T
        return self._item_sims

    def _score(self, users: torch.Tensor, items: slice | torch.Tensor) -> torch.Tensor:
        assert self.history_ is not None and self.popularity_ is not None
        vecs = self._items_on_device()
        index = items if isinstance(items, slice) else items.to(self.device_)
        chosen = vecs[index]
        prior = self.popularity_.to(self.device_)[index]
        hist = self.history_[users.clamp(min=0)]
        hist[users < 0] = -1
        hist = hist.to(self.device_)
        out = torch.empty((len(users), len(chosen)), device=self.device_)
        step = max(1, SIMILARITY_BUDGET // max(1, hist.shape[1] * len(chosen)))
        m = min(self.top_m, hist.shape[1])
        table = self._similarity_table()
        for start in range(0, len(users), step):
            h = hist[start : start + step]
            pad = h < 0
            if table is None:
                sims = vecs[h.clamp(min=0)] @ chosen.T  # (u, history, items)
            else:
                sims = table[:, index][h.clamp(min=0)]  # (u, history, items)
            sims.masked_fill_(pad.unsqueeze(2), float("-inf"))
            top = sims.topk(m, dim=1).values if m > 1 else sims.amax(1, keepdim=True)
            finite = torch.isfinite(top)
            content = top.where(finite, 0.0).sum(1) / finite.sum(1).clamp_min(1)
            cold = pad.all(1, keepdim=True)
            out[start : start + step] = torch.where(
                cold, prior.unsqueeze(0), content + self.popularity_weight * prior
            )
        return out

    def _top_k_block(
        self, users: torch.Tensor, k: int, excluded: ExcludedPairs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k with one item per title: fetch enough candidates, then drop later twins."""
        assert self.title_group_ is not None
        groups = self.title_group_
        largest = int(torch.bincount(groups).max())
        fetch = min(self.n_items, k * largest)
        rows, vals = tiled_topk(
            lambda start, stop: self._score(users, slice(start, stop)),
            len(users),
            self.n_items,
            fetch,
            self.item_block,
            _with_twins(excluded, groups.numpy()),
            self.device_,
        )
        if largest == 1:
            return rows, vals
        rows, vals = rows.cpu(), vals.cpu()
        key = torch.where(rows >= 0, groups[rows.clamp(min=0)], -1 - torch.arange(fetch))
        earlier = torch.ones(fetch, fetch, dtype=torch.bool).tril(-1)
        dup = ((key.unsqueeze(2) == key.unsqueeze(1)) & earlier).any(2)
        order = torch.sort(dup.to(torch.int8), dim=1, stable=True).indices[:, :k]
        keep_rows, keep_vals = rows.gather(1, order), vals.gather(1, order)
        dropped = dup.gather(1, order)
        keep_rows = keep_rows.masked_fill(dropped, -1)
        keep_vals = keep_vals.masked_fill(dropped, float("-inf"))
        return keep_rows, keep_vals

    # ------------------------------------------------------------------ persistence

    def _state(self) -> dict[str, torch.Tensor]:
        assert self.item_vecs_ is not None and self.history_ is not None
        assert self.popularity_ is not None and self.title_group_ is not None
        return {
            "item_vecs": self.item_vecs_,
            "history": self.history_,
            "popularity": self.popularity_,
            "title_group": self.title_group_,
        }

    def _state_shapes(self) -> dict[str, tuple[int | None, ...]]:
        return {
            "item_vecs": (self.n_items, None),
            "history": (self.n_users, self.history),
            "popularity": (self.n_items,),
            "title_group": (self.n_items,),
        }

    def _load_state(self, state: dict[str, torch.Tensor]) -> None:
        self.item_vecs_ = state["item_vecs"]
        self.history_ = state["history"]
        self.popularity_ = state["popularity"]
        self.title_group_ = state["title_group"]
        self._device_items = None
        self._item_sims = None


def _recent_items(
    users: np.ndarray, items: np.ndarray, times: np.ndarray, n_users: int, length: int
) -> np.ndarray:
    """Rows of each user's ``length`` most recent distinct items, newest first, -1 padded."""
    order = np.lexsort((np.arange(len(users)), -times, users))  # by user, newest first
    u, i = users[order], items[order]
    _, first = np.unique(u * (int(items.max(initial=0)) + 1) + i, return_index=True)
    first = np.sort(first)  # newest occurrence of each (user, item), still in user order
    u, i = u[first], i[first]
    rank = np.arange(len(u)) - np.searchsorted(u, u, side="left")
    keep = rank < length
    out = np.full((n_users, length), -1, dtype=np.int64)
    out[u[keep], rank[keep]] = i[keep]
    return out


def _title_groups(texts: list[str]) -> np.ndarray:
    """Per item, the first item index with the same :func:`title_key` (empty texts stay apart)."""
    first: dict[str, int] = {}
    groups = np.arange(len(texts), dtype=np.int64)
    for j, text in enumerate(texts):
        key = title_key(text)
        if key:
            groups[j] = first.setdefault(key, j)
    return groups


def _with_twins(excluded: ExcludedPairs, groups: np.ndarray) -> ExcludedPairs:
    """``excluded`` plus, for each excluded item, the other items with the same title."""
    size_of = np.bincount(groups, minlength=len(groups))[groups]
    twins = np.flatnonzero(size_of > 1)  # every item that shares its title
    if len(twins) == 0 or len(excluded.rows) == 0:
        return excluded
    twins = twins[np.argsort(groups[twins], kind="stable")]
    g = groups[twins]
    start = np.searchsorted(g, g, side="left")
    size = np.searchsorted(g, g, side="right") - start
    src = np.repeat(twins, size)
    dst = twins[
        np.repeat(start, size) + np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size)
    ]
    same = src != dst
    src, dst = src[same], dst[same]
    order = np.argsort(src, kind="stable")
    src, dst = src[order], dst[order]
    lo = np.searchsorted(src, excluded.cols, side="left")
    hi = np.searchsorted(src, excluded.cols, side="right")
    counts = hi - lo
    if counts.sum() == 0:
        return excluded
    rows = np.repeat(excluded.rows, counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    cols = dst[np.repeat(lo, counts) + offsets]
    keys = np.unique(np.r_[excluded.cols * (1 << 32) + excluded.rows, cols * (1 << 32) + rows])
    return ExcludedPairs(keys % (1 << 32), keys // (1 << 32))
