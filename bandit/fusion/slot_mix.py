"""``slot-mix``: probabilistic multileaving, one bandit trial per slot.

For each of the ``k`` slots the source arm is drawn from the weights, and it places its
highest-ranked item not already in the list. Every slot is one observation for its source
arm (:func:`bandit.fusion.credit.slot_observations`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np
from scipy import stats

from bandit.fusion.base import Candidates, FusedLists
from bandit.fusion.draft import DrawnFuser, draw_lists


class SlotMix(DrawnFuser):
    """Draw each slot's source arm from the weights; it places its best unplaced item.

    ``source_prob`` is the weight of the source arm, exactly (with a category cap an arm
    that has run out of eligible items drops out and the rest are renormalised, so it is
    then an estimate). ``propensity`` is exact (:func:`disjoint_propensity`) for requests
    whose arms share no item in their top ``k`` (without a diversity constraint); otherwise
    it is the Rao-Blackwellised estimate of :mod:`bandit.fusion.draft`: unbiased, standard
    error at most ``sqrt(p (1 - p) / n_samples)`` and exact for the first slot.

    Parameters
    ----------
    k
        Slots per list.
    n_samples
        Replays per request used to estimate the propensities.
    max_per_category
        At most this many items of one category per list (needs ``categories``).
    mmr_weight
        Maximal marginal relevance instead (needs ``features``; :mod:`bandit.fusion.mmr`).

    Examples
    --------
    >>> import numpy as np
    >>> items = np.array([[[1, 2, 3]], [[3, 4, 5]]])  # 2 arms, 1 request, 3 candidates
    >>> out = SlotMix(k=2).fuse(items, [0.5, 0.5], seed=0)
    >>> out.items.shape, float(out.propensity[0, 0])
    ((1, 2), 0.5)
    """

    name: ClassVar[str] = "slot-mix"
    stochastic: ClassVar[bool] = True

    def _fuse(self, cand: Candidates, rng: np.random.Generator) -> FusedLists:
        out = draw_lists(
            cand,
            self.k,
            self.n_samples,
            rng,
            rounds=False,
            max_per_category=self.max_per_category,
            mmr_weight=self.mmr_weight,
        )
        if self.max_per_category is not None or self.mmr_weight is not None:
            return out
        _, a, d = cand.shape
        disjoint = (cand.unique() >= 0).sum(axis=1) == a * d
        if not disjoint.any():
            return out
        exact = disjoint_propensity(out.source[disjoint], cand.weights[disjoint])
        propensity = out.propensity.copy()
        propensity[disjoint] = exact
        return replace(out, propensity=propensity)


def disjoint_propensity(source: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Exact propensities of slot-mix lists whose arms share no item in their top ``k``.

    The item at slot ``j`` from arm ``a`` is then the arm's item of rank ``r`` (counted from
    0), where ``r`` is the number of earlier slots drawn from ``a``, so
    ``P(item at j) = w_a * Binomial(j, w_a).pmf(r)``.

    >>> disjoint_propensity(np.array([[0, 0, 1]]), np.array([[0.5, 0.5]])).round(6).tolist()
    [[0.5, 0.25, 0.125]]
    """
    k = source.shape[1]
    a = weights.shape[1]
    onehot = source[:, :, None] == np.arange(a)
    earlier = np.cumsum(onehot, axis=1) - onehot  # (b, k, a) draws of each arm before j
    r = np.take_along_axis(earlier, source[:, :, None], axis=2)[:, :, 0]
    w = np.take_along_axis(weights, source, axis=1)
    return w * stats.binom.pmf(r, np.arange(k), w)
