"""Content arm: all-MiniLM-L6-v2 embeddings of item text, users as recency-weighted item means.

* Item text (title plus genres or attributes, from :class:`arms.data.ItemCatalog`) is
  embedded once by :class:`arms.minilm.MiniLMEncoder` and cached on disk under
  ``cache_dir`` (default ``$BANDIT_FUSION_CACHE`` or ``~/.cache/bandit-fusion``), keyed
  by the SHA-256 of the model hash, the precision and the texts.
* A user's vector is the normalised sum of the embeddings of the items they
  interacted with, weighted ``2 ** (-(t_last - t) / half_life)`` by recency relative to
  their own latest interaction.
* Scoring is one batched product of normalised vectors (cosine similarity).
* Optional popularity prior, off by default: with ``popularity_weight = w > 0`` the
  score is ``cos(u, i) + w * log1p(n_i) / log1p(max_j n_j)`` (``n_i`` the item's
  training interactions). It is folded into the dot product as one extra dimension
  (``w`` on the user side, the scaled log-count on the item side), so scoring and
  top-k stay a single matrix product. Pure content ignores how popular an item is,
  which on MovieLens costs most of its accuracy; the prior is there to measure that.

Cold start: an unknown user gets the normalised mean of all user vectors (the
catalogue's "average taste"). Items absent from the catalogue text get the embedding
of the empty string.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from arms.data import Interactions, ItemCatalog
from arms.embedding import EmbeddingArm
from arms.minilm import MODEL_SHA256, MiniLMEncoder, Precision, resolve_precision

__all__ = ["BertArm", "default_cache_dir"]


def default_cache_dir() -> Path:
    """``$BANDIT_FUSION_CACHE`` or ``~/.cache/bandit-fusion``."""
    env = os.environ.get("BANDIT_FUSION_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "bandit-fusion"


class BertArm(EmbeddingArm):
    """MiniLM content-based arm (see the module docstring).

    Parameters
    ----------
    half_life_days : float or None
        Recency half-life of a history item's weight; None weighs all history equally.
    precision : {"auto", "fp32", "bf16", "fp16"}
        Encoder precision (see :class:`arms.minilm.MiniLMEncoder`).
    batch_size : int
        Texts per encoder batch.
    cache_dir : str, optional
        Where item embeddings are cached; default :func:`default_cache_dir`.
    popularity_weight : float
        Weight ``w`` of the optional log-popularity prior (0: pure content).
    **kwargs
        ``device``, ``user_block``, ``item_block``, ``seed`` (see :class:`arms.base.BaseArm`).
    """

    name = "bert"
    cold_start = "normalised mean of all user vectors"

    def __init__(
        self,
        half_life_days: float | None = 30.0,
        precision: Precision = "auto",
        batch_size: int = 64,
        cache_dir: str | None = None,
        popularity_weight: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if half_life_days is not None and not half_life_days > 0:
            raise ValueError(f"half_life_days must be positive or None, got {half_life_days}.")
        self.half_life_days = None if half_life_days is None else float(half_life_days)
        self.precision = precision
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        if not popularity_weight >= 0:
            raise ValueError(f"popularity_weight must be non-negative, got {popularity_weight}.")
        self.popularity_weight = float(popularity_weight)

    def _params(self) -> dict[str, Any]:
        return {
            **super()._params(),
            "half_life_days": self.half_life_days,
            "precision": self.precision,
            "batch_size": self.batch_size,
            "cache_dir": self.cache_dir,
            "popularity_weight": self.popularity_weight,
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
        item_vecs = self.embed_items(texts)
        last = np.full(self.n_users, np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(last, users, interactions.timestamps)
        if self.half_life_days is None:
            weights = np.ones(len(users))
        else:
            age = (last[users] - interactions.timestamps).astype(np.float64)
            weights = np.exp2(-age / (self.half_life_days * 86_400.0))
        w = torch.from_numpy(weights.astype(np.float32)).unsqueeze(1)
        user_vecs = torch.zeros(self.n_users, item_vecs.shape[1]).index_add_(
            0, torch.from_numpy(users), w * item_vecs[torch.from_numpy(items)]
        )
        user_vecs = torch.nn.functional.normalize(user_vecs, dim=1)
        fallback = torch.nn.functional.normalize(user_vecs.mean(0), dim=0)
        if self.popularity_weight > 0:
            counts = torch.from_numpy(np.bincount(items, minlength=self.n_items)).float().log1p()
            prior = (counts / counts.max().clamp_min(1e-9)).unsqueeze(1)
            item_vecs = torch.cat([item_vecs, prior], dim=1)
            user_vecs = torch.cat(
                [user_vecs, torch.full((self.n_users, 1), self.popularity_weight)], 1
            )
            fallback = torch.cat([fallback, torch.tensor([self.popularity_weight])])
        self._set_vectors(user_vecs, item_vecs, fallback)
