"""``team-draft``: team-draft interleaving (Radlinski et al. 2008), the classical baseline.

In each round every arm with positive weight picks once, in a random order, its
highest-ranked item not already in the list; the order is drawn from the weights without
replacement (a Plackett-Luce draw; uniform weights give the classical uniformly random
order). The multileaving form follows Schuth et al. (2014).
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from itertools import permutations
from typing import ClassVar

import numpy as np

from bandit.fusion.base import Candidates, FusedLists
from bandit.fusion.draft import DrawnFuser, draw_lists


class TeamDraft(DrawnFuser):
    """Rounds in which each arm with positive weight places one item, in a weighted order.

    ``source_prob`` is the marginal probability that the source arm draws this slot: exact
    (Plackett-Luce position probabilities, summed over the arms' orders) for up to
    ``EXACT_MAX_ARMS`` arms without a category cap (MMR keeps it exact: no arm runs out),
    else the Rao-Blackwellised estimate of
    :mod:`bandit.fusion.draft`. ``propensity`` is that estimate: unbiased, standard error at
    most ``0.5 / sqrt(n_samples)``, exact for the first slot.

    Examples
    --------
    >>> import numpy as np
    >>> items = np.array([[[1, 2, 3]], [[3, 4, 5]]])
    >>> out = TeamDraft(k=2).fuse(items, [0.5, 0.5], seed=0)
    >>> sorted(out.source[0].tolist())  # one pick per arm in the first round
    [0, 1]
    """

    name: ClassVar[str] = "team-draft"
    stochastic: ClassVar[bool] = True

    def _fuse(self, cand: Candidates, rng: np.random.Generator) -> FusedLists:
        b, a, _ = cand.shape
        exact = self.max_per_category is None and a <= EXACT_MAX_ARMS
        out = draw_lists(
            cand,
            self.k,
            self.n_samples,
            rng,
            rounds=True,
            max_per_category=self.max_per_category,
            mmr_weight=self.mmr_weight,
            estimate_sources=not exact,
        )
        if not exact:
            return out
        marginal = round_position_probabilities(cand.weights)  # (b, position, arm)
        in_round = (cand.weights > 0).sum(axis=1, keepdims=True)
        position = np.arange(self.k) % in_round
        source_prob = marginal[np.arange(b)[:, None], position, out.source]
        return replace(out, source_prob=source_prob)


#: Largest number of arms for which team-draft enumerates the orders of a round (6! = 720).
EXACT_MAX_ARMS = 6


def round_position_probabilities(weights: np.ndarray) -> np.ndarray:
    """P(arm ``a`` picks ``q``-th in a round), ``(B, A, A)`` indexed ``[b, q, a]``.

    A round's order is a Plackett-Luce draw from the weights: the first arm with probability
    ``w_a``, the next in proportion to the weights of the arms left, and so on; arms of
    weight 0 come after every arm of positive weight. Summed over all ``A!`` orders.

    >>> round_position_probabilities(np.array([[0.5, 0.5]])).tolist()
    [[[0.5, 0.5], [0.5, 0.5]]]
    """
    b, a = weights.shape
    orders, picker = _orders(a)
    w = weights[:, orders]  # (b, P, a)
    left = np.cumsum(w[:, :, ::-1], axis=2)[:, :, ::-1]
    ratio = np.divide(w, left, out=np.ones_like(w), where=left > 0)
    prob = ratio.prod(axis=2)  # (b, P)
    out = np.empty((b, a, a))
    for q in range(a):
        out[:, q, :] = prob @ picker[q]
    return out


@lru_cache(maxsize=EXACT_MAX_ARMS)
def _orders(a: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """The ``A!`` orders of ``a`` arms, ``(P, A)``, and for each position ``q`` the one-hot
    ``(P, A)`` matrix of the arm at ``q`` (built once per number of arms; read-only)."""
    orders = np.array(list(permutations(range(a))), dtype=np.int64)
    orders.flags.writeable = False
    picker = []
    for q in range(a):
        one_hot = np.eye(a)[orders[:, q]]
        one_hot.flags.writeable = False
        picker.append(one_hot)
    return orders, tuple(picker)
