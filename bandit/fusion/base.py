"""What every fuser shares: the output rows, input checks, candidate deduplication, the base class.

Shapes used throughout: ``A`` arms, ``B`` requests in a micro-batch, ``C`` candidates per arm
and request, ``k`` slots in the fused list. Input arrays are arm-major, ``(A, B, C)``, as each
arm produces its own ranked lists; the fusers work request-major, ``(B, A, D)``, on the first
``D`` candidates of each arm (the only ones a fuser can reach; ``D = k`` for the draft
fusers without a category cap, because an arm's next unplaced item is always among its top
``k`` while fewer than ``k`` items are placed).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from bandit.fusion.diversity import CategoryCodes, encode_categories
from bandit.fusion.mmr import encode_features
from bandit.validation import check_scalar

#: Weights must sum to 1 within this tolerance.
WEIGHT_SUM_TOL = 1e-6
#: Larger micro-batches are fused in chunks of this many requests (the work arrays of a
#: chunk stay in cache; the result is the same). Fusers may set a smaller ``chunk``.
CHUNK = 256
#: Score fusers index items directly (no sort) when ids are below this many times the
#: candidates of a request (e.g. a 1,682-item catalogue and 4 arms x 200 candidates).
DENSE_FACTOR = 8


@dataclass(frozen=True)
class FusedLists:
    """One fused list per request, with what learning and off-policy evaluation need.

    Attributes
    ----------
    items : (B, k) int64
        The fused list, best first; no item appears twice in a row.
    source : (B, k) int64
        The arm that placed the item (deterministic fusers: the arm with the largest share
        of the item's credit, the lowest index on ties).
    source_prob : (B, k) float64
        Probability that ``source`` is the arm drawn for this slot (1 for deterministic
        fusers). See each fuser for whether it is exact.
    propensity : (B, k) float64
        Marginal probability that this item is shown at this position (1 for deterministic
        fusers). See each fuser for whether it is exact.
    credit : (B, k, A) float64
        Each arm's share of the credit for the item; every row sums to 1 (one-hot for the
        draft fusers ``slot-mix`` and ``team-draft``).
    """

    items: np.ndarray
    source: np.ndarray
    source_prob: np.ndarray
    propensity: np.ndarray
    credit: np.ndarray

    @property
    def batch_size(self) -> int:
        """Number of requests ``B``."""
        return int(self.items.shape[0])

    @property
    def k(self) -> int:
        """Slots per list."""
        return int(self.items.shape[1])

    @property
    def n_arms(self) -> int:
        """Number of arms ``A``."""
        return int(self.credit.shape[2])


@dataclass(frozen=True)
class Candidates:
    """Checked, request-major candidates of one micro-batch (internal to the fusers).

    ``uid[b, a, d]`` numbers the distinct items of request ``b`` as ``0..n_unique[b]-1`` (in
    increasing item id), so an item ranked by several arms has one id; ``unique_items[b, u]``
    maps it back (padded with -1 after ``n_unique[b]``). When ``unique_items`` is None the
    ids are dense (``uid`` is the item id itself, below ``n_ids``) and repeats within an arm
    are left to the fuser to detect.
    """

    items: np.ndarray  # (B, A, D) int64
    weights: np.ndarray  # (B, A) float64
    scores: np.ndarray | None  # (B, A, D) float64
    uid: np.ndarray  # (B, A, D) int64
    unique_items: np.ndarray | None  # (B, U) int64
    n_ids: int  # U: number of columns of the per-request id space
    categories: CategoryCodes | None  # category of each unique item
    features: np.ndarray | None = None  # (B, U, F) unit feature vectors of the unique items

    def rows(self, lo: int, hi: int) -> Candidates:
        """The requests ``lo:hi`` of the batch."""
        cats = self.categories
        if cats is not None:
            cats = CategoryCodes(cats.codes[lo:hi], cats.n_categories)
        return Candidates(
            self.items[lo:hi],
            self.weights[lo:hi],
            None if self.scores is None else self.scores[lo:hi],
            self.uid[lo:hi],
            None if self.unique_items is None else self.unique_items[lo:hi],
            self.n_ids,
            cats,
            None if self.features is None else self.features[lo:hi],
        )

    def unique(self) -> np.ndarray:
        """``unique_items`` of a deduplicated batch (the draft fusers always are)."""
        if self.unique_items is None:
            raise RuntimeError("this batch was not deduplicated.")
        return self.unique_items

    @property
    def shape(self) -> tuple[int, int, int]:
        b, a, d = self.items.shape
        return int(b), int(a), int(d)


def check_items(items: object) -> np.ndarray:
    """Return ``items`` as an int64 ``(A, B, C)`` array of non-negative ids."""
    try:
        arr = np.asarray(items)
    except ValueError:
        raise ValueError(
            "items must be a rectangular (n_arms, B, C) array: the candidate lists are ragged."
        ) from None
    if arr.dtype == object:
        raise ValueError(
            "items must be a rectangular (n_arms, B, C) array: the candidate lists are ragged."
        )
    if arr.ndim != 3:
        raise ValueError(f"items must have shape (n_arms, B, C), got {arr.ndim} dimension(s).")
    if min(arr.shape) == 0:
        raise ValueError(f"items must be non-empty in every dimension, got shape {arr.shape}.")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"items must hold integer item ids, got dtype {arr.dtype}.")
    arr = arr.astype(np.int64, copy=False)
    if arr.min() < 0:
        raise ValueError("items must be non-negative item ids.")
    return arr


def check_weights(weights: object, n_arms: int, batch: int) -> np.ndarray:
    """Return ``weights`` as a ``(B, A)`` float64 array of probability vectors."""
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("weights must be an array of numbers.") from None
    if w.ndim == 1:
        if w.shape != (n_arms,):
            raise ValueError(f"weights must have {n_arms} entries (one per arm), got {w.size}.")
        w = np.broadcast_to(w, (batch, n_arms))
    elif w.ndim != 2 or w.shape != (batch, n_arms):
        raise ValueError(
            f"weights must have shape ({n_arms},) or ({batch}, {n_arms}), got {w.shape}."
        )
    if not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite: found NaN or infinity.")
    if w.min() < 0.0:
        raise ValueError("weights must be non-negative.")
    sums = w.sum(axis=1)
    if np.any(np.abs(sums - 1.0) > WEIGHT_SUM_TOL):
        bad = float(sums[np.argmax(np.abs(sums - 1.0))])
        raise ValueError(f"weights must sum to 1 for every request, got a sum of {bad:.6g}.")
    return np.ascontiguousarray(w / sums[:, None])


def check_scores(scores: object, shape: tuple[int, ...]) -> np.ndarray:
    """Return ``scores`` as a finite float64 array of the items' shape."""
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("scores must be a rectangular (n_arms, B, C) array of numbers.") from None
    if s.shape != shape:
        raise ValueError(f"scores must have the shape of items {shape}, got {s.shape}.")
    # one sum is finite when every score is (an overflowing sum falls back to the full check)
    if not np.isfinite(s.sum()) and not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite: found NaN or infinity.")
    return s


def make_rng(rng: np.random.Generator | None, seed: int | None) -> np.random.Generator:
    """The generator to draw from: ``rng`` itself, a new one seeded with ``seed``, or fresh."""
    if rng is not None and seed is not None:
        raise ValueError("rng and seed are alternatives: pass one of them.")
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}.")
        return rng
    if seed is not None:
        return np.random.default_rng(int(check_scalar(seed, "seed", kind=int, min_val=0)))
    return np.random.default_rng()


def deduplicate(items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Number the distinct items of each request: ``(uid, unique_items, n_unique)``.

    ``items`` is ``(B, A, D)``. One sort of packed keys ``item | arm | rank`` per request
    brings equal items together (and repeats within one arm next to each other, which raise
    ``ValueError``).
    """
    b, a, d = items.shape
    d_bits = max(1, int(d - 1).bit_length())
    bits = d_bits + max(1, int(a - 1).bit_length())
    if int(items.max()) >= (1 << (62 - bits)):
        raise ValueError(f"items must be below 2**{62 - bits} to be fused.")
    slots = 1 << bits  # (arm, rank) positions, ranks padded to a power of two
    pos = (np.arange(a, dtype=np.int64)[:, None] << d_bits) | np.arange(d, dtype=np.int64)
    keys = np.left_shift(items, bits).reshape(b, a * d)
    keys |= pos.ravel()
    keys.sort(axis=1)
    owner = keys >> d_bits  # item and arm
    repeat = owner[:, 1:] == owner[:, :-1]
    if repeat.any():
        row = int(np.argmax(repeat.any(axis=1)))
        raise ValueError(f"items must not repeat an item within one arm's list (request {row}).")
    item_sorted = keys >> bits
    gid = np.empty(keys.shape, dtype=np.int64)
    gid[:, 0] = 0
    np.cumsum(item_sorted[:, 1:] != item_sorted[:, :-1], axis=1, out=gid[:, 1:])
    n_unique = gid[:, -1] + 1
    keys &= slots - 1
    keys += np.arange(b, dtype=np.int64)[:, None] * slots
    uid = np.empty(b * slots, dtype=np.int64)
    uid[keys.ravel()] = gid.ravel()
    u_max = int(n_unique.max())
    unique_items = np.full(b * u_max, -1, dtype=np.int64)
    gid += np.arange(b, dtype=np.int64)[:, None] * u_max
    unique_items[gid.ravel()] = item_sorted.ravel()
    uid_padded = uid.reshape(b, slots >> d_bits, 1 << d_bits)[:, :a, :d]
    return np.ascontiguousarray(uid_padded), unique_items.reshape(b, u_max), n_unique


def prepare(
    items: object,
    weights: object,
    scores: object | None,
    *,
    k: int,
    depth: int | None,
    categories: np.ndarray | Mapping[Any, Any] | None,
    need_scores: bool,
    dense_ok: bool = False,
    features: np.ndarray | Mapping[Any, Any] | None = None,
) -> Candidates:
    """Check one micro-batch and build its :class:`Candidates` on the first ``depth``
    candidates of each arm (all of them if ``depth`` is None).

    With ``dense_ok`` and neither categories nor features, item ids below ``DENSE_FACTOR``
    times the number of candidates are used as they are (no sort); otherwise each request
    is deduplicated."""
    arr = check_items(items)
    n_arms, batch, n_cand = arr.shape
    if k > n_cand:
        raise ValueError(f"k ({k}) must not exceed the {n_cand} candidates of each arm's list.")
    w = check_weights(weights, n_arms, batch)
    d = n_cand if depth is None else min(depth, n_cand)
    s = None
    if need_scores:
        if scores is None:
            raise ValueError("scores are required by this fuser: pass an (n_arms, B, C) array.")
        s = check_scores(scores, arr.shape)
        s = np.ascontiguousarray(s[:, :, :d].transpose(1, 0, 2))
    req = np.ascontiguousarray(arr[:, :, :d].transpose(1, 0, 2))
    if dense_ok and categories is None and features is None:
        n_ids = int(req.max()) + 1
        if n_ids <= DENSE_FACTOR * n_arms * d:
            return Candidates(req, w, s, req, None, n_ids, None)
    uid, unique_items, n_unique = deduplicate(req)
    codes = None
    if categories is not None:
        codes = encode_categories(categories, unique_items, n_unique)
    vectors = None if features is None else encode_features(features, unique_items)
    return Candidates(req, w, s, uid, unique_items, unique_items.shape[1], codes, vectors)


class Fuser(ABC):
    """Blends the arms' ranked lists into one list of ``k`` items per request.

    Parameters
    ----------
    k
        Slots in each fused list.
    max_per_category
        Diversity constraint: at most this many items of one category in a list (the
        ``categories`` of :meth:`fuse` must then be given). ``None``: no constraint.
    mmr_weight
        The other diversity constraint, maximal marginal relevance: the weight ``theta`` in
        [0, 1) of the similarity penalty (see :mod:`bandit.fusion.mmr`; the ``features`` of
        :meth:`fuse` must then be given). ``None``: no MMR. The two constraints are
        alternatives: set at most one.
    """

    #: Registry name.
    name: ClassVar[str] = ""
    #: True when the list is drawn at random (propensities below 1).
    stochastic: ClassVar[bool] = False
    #: True when :meth:`fuse` needs ``scores``.
    needs_scores: ClassVar[bool] = False
    #: True when the fuser can work on undeduplicated, densely numbered items.
    dense_ids: ClassVar[bool] = False
    #: Requests fused at once; larger micro-batches are split (same result).
    chunk: ClassVar[int] = CHUNK

    def __init__(
        self, k: int, *, max_per_category: int | None = None, mmr_weight: float | None = None
    ) -> None:
        self.k = int(check_scalar(k, "k", kind=int, min_val=1))
        self.max_per_category = (
            None
            if max_per_category is None
            else int(check_scalar(max_per_category, "max_per_category", kind=int, min_val=1))
        )
        self.mmr_weight = (
            None
            if mmr_weight is None
            else float(
                check_scalar(mmr_weight, "mmr_weight", min_val=0.0, max_val=1.0, include_max=False)
            )
        )
        if self.max_per_category is not None and self.mmr_weight is not None:
            raise ValueError(
                "max_per_category and mmr_weight are alternative diversity constraints: "
                "set at most one."
            )

    @property
    def params(self) -> dict[str, Any]:
        """Constructor arguments: ``make_fuser(name, **params)`` rebuilds this fuser."""
        return {
            "k": self.k,
            "max_per_category": self.max_per_category,
            "mmr_weight": self.mmr_weight,
            **self._extra_params(),
        }

    def _extra_params(self) -> dict[str, Any]:
        return {}

    def _depth(self) -> int | None:
        """How many candidates of each arm the fuser reads (None: all)."""
        return None

    def fuse(
        self,
        items: object,
        weights: object,
        scores: object | None = None,
        *,
        rng: np.random.Generator | None = None,
        seed: int | None = None,
        categories: np.ndarray | Mapping[Any, Any] | None = None,
        features: np.ndarray | Mapping[Any, Any] | None = None,
    ) -> FusedLists:
        """Fuse one micro-batch.

        Parameters
        ----------
        items : (A, B, C) int
            Each arm's ranked candidates per request, best first, no repeat within a row.
        weights : (A,) or (B, A) float
            Non-negative arm weights summing to 1 (e.g. ``policy.allocation()``).
        scores : (A, B, C) float, optional
            The arms' scores of ``items``: needed by ``weighted-score``, ignored (and not
            checked) by the other fusers.
        rng, seed
            Randomness for the stochastic fusers: a generator, or a seed for a new one.
        categories
            Item -> category, as an array indexed by item id or a mapping; read only when
            ``max_per_category`` is set.
        features
            Item -> feature vector, as an ``(n_items, F)`` array indexed by item id or a
            mapping; read only when ``mmr_weight`` is set (similarity is their cosine).
        """
        if self.max_per_category is not None and categories is None:
            raise ValueError("categories are required when max_per_category is set.")
        if self.mmr_weight is not None and features is None:
            raise ValueError("features are required when mmr_weight is set.")
        generator = make_rng(rng, seed)
        cand = prepare(
            items,
            weights,
            scores,
            k=self.k,
            depth=self._depth(),
            categories=categories if self.max_per_category is not None else None,
            need_scores=self.needs_scores,
            dense_ok=self.dense_ids,
            features=features if self.mmr_weight is not None else None,
        )
        if cand.categories is not None and self.max_per_category is not None:
            cand.categories.check_fillable(self.k, self.max_per_category)
        batch, chunk = cand.shape[0], self.chunk
        if batch <= chunk:
            return self._fuse(cand, generator)
        parts = [self._fuse(cand.rows(lo, lo + chunk), generator) for lo in range(0, batch, chunk)]
        return FusedLists(
            *(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(FusedLists))
        )

    @abstractmethod
    def _fuse(self, cand: Candidates, rng: np.random.Generator) -> FusedLists:
        """Fuse checked candidates."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"
