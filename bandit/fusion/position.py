r"""Position bias: examination probabilities of a position-based model, learned from logged
slot-level clicks by expectation-maximisation (Chuklin et al. 2015, Wang et al. 2018).

The model: an item ``x`` shown at position ``j`` to context ``q`` is clicked with probability
:math:`\theta_j \gamma_{q,x}` (examined, and attractive). The same item appearing at several
positions is what identifies :math:`\theta`; ``slot-mix`` and ``team-draft`` provide this by
randomising which arm fills each slot. Only the ratios :math:`\theta_j / \theta_1` are
identified, and they are what the correction in :mod:`bandit.fusion.credit` uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandit.validation import check_scalar


@dataclass(frozen=True)
class Examination:
    """Relative examination probability of each position (the first is 1)."""

    relative: np.ndarray
    n_iter: int
    converged: bool

    def weights(self, k: int, max_weight: float = 4.0) -> np.ndarray:
        """Correction factor ``min(1 / relative_j, max_weight)`` of the first ``k`` positions."""
        cap = float(check_scalar(max_weight, "max_weight", min_val=1.0))
        if k > self.relative.size:
            raise ValueError(
                f"examination covers {self.relative.size} positions, the lists have {k}."
            )
        rel = self.relative[:k]
        with np.errstate(divide="ignore"):
            return np.minimum(np.where(rel > 0, 1.0 / rel, np.inf), cap)


def estimate_examination(
    items: object,
    clicks: object,
    *,
    contexts: object | None = None,
    smoothing: float = 1.0,
    max_iter: int = 500,
    tol: float = 1e-5,
) -> Examination:
    """Fit a position-based model to logged lists and clicks by EM; return the examination.

    Parameters
    ----------
    items : (N, k) int
        Logged lists (e.g. ``FusedLists.items`` of many batches, stacked).
    clicks : (N, k)
        1 where clicked, else 0.
    contexts : (N,) int, optional
        Who saw each list (e.g. the user id); attraction is estimated per (context, item).
        ``None``: one attraction per item.
    smoothing
        Beta(smoothing, smoothing) pseudo-counts on every probability, so that an item seen
        once does not get an attraction of exactly 0 or 1.
    max_iter, tol
        Stop after ``max_iter`` iterations or when no relative examination moves more than
        ``tol`` in an iteration.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> items = np.array([rng.permutation(20)[:5] for _ in range(20000)])
    >>> theta = np.array([1.0, 0.7, 0.5, 0.4, 0.3])
    >>> clicks = rng.random(items.shape) < theta * np.linspace(0.1, 0.9, 20)[items]
    >>> est = estimate_examination(items, clicks)
    >>> bool(np.allclose(est.relative, theta, atol=0.05))
    True
    """
    its = np.asarray(items)
    if its.ndim != 2 or its.dtype.kind not in "iu" or its.size == 0:
        raise ValueError("items must be a non-empty (N, k) integer array.")
    c = np.asarray(clicks, dtype=np.float64)
    if c.shape != its.shape:
        raise ValueError(f"clicks must have the shape of items {its.shape}, got {c.shape}.")
    if not np.all(np.isfinite(c)) or c.min() < 0.0 or c.max() > 1.0:
        raise ValueError("clicks must lie in [0, 1] (1 = clicked).")
    a0 = float(check_scalar(smoothing, "smoothing", min_val=0.0))
    n_iter = int(check_scalar(max_iter, "max_iter", kind=int, min_val=1))
    tolerance = float(check_scalar(tol, "tol", min_val=0.0))
    n, k = its.shape
    if contexts is None:
        pair = its.ravel()
    else:
        ctx = np.asarray(contexts)
        if ctx.shape != (n,) or ctx.dtype.kind not in "iu":
            raise ValueError(f"contexts must be an integer array of shape ({n},).")
        pair = np.stack([np.repeat(ctx, k), its.ravel()], axis=1)
    _, key = np.unique(pair, axis=0 if pair.ndim == 2 else None, return_inverse=True)
    key = key.ravel()
    pos = np.tile(np.arange(k), n)
    flat = c.ravel()
    n_pos = np.bincount(pos, minlength=k) + 2 * a0
    n_key = np.bincount(key) + 2 * a0
    theta = np.full(k, 0.5)
    gamma = np.full(n_key.size, 0.5)
    converged = False
    it = 0
    for it in range(1, n_iter + 1):  # noqa: B007 -- the count is reported
        t = theta[pos]
        g = gamma[key]
        miss = (1.0 - flat) / np.maximum(1.0 - t * g, 1e-12)
        exam = flat + miss * t * (1.0 - g)
        attr = flat + miss * (1.0 - t) * g
        theta_new = (np.bincount(pos, weights=exam, minlength=k) + a0) / n_pos
        gamma_new = (np.bincount(key, weights=attr, minlength=gamma.size) + a0) / n_key
        # theta and gamma are identified only up to a common scale along which EM drifts
        # slowly, so convergence is judged on the reported ratios theta / theta[0]
        delta = np.abs(theta_new / theta_new[0] - theta / theta[0]).max()
        theta, gamma = theta_new, gamma_new
        if delta < tolerance:
            converged = True
            break
    return Examination(theta / theta[0], it, converged)
