"""``slot-mix``: probabilistic multileaving, one bandit trial per slot.

For each of the ``k`` slots the source arm is drawn from the weights, and it places its
highest-ranked item not already in the list. Every slot is one observation for its source
arm (:func:`bandit.fusion.credit.slot_observations`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bandit.fusion.base import Candidates, FusedLists, Fuser
from bandit.fusion.draft import draw_lists
from bandit.validation import check_scalar


class SlotMix(Fuser):
    """Draw each slot's source arm from the weights; it places its best unplaced item.

    ``source_prob`` is the weight of the source arm, exactly (with a category cap an arm
    that has run out of eligible items drops out and the rest are renormalised, so it is
    then an estimate). ``propensity`` is the Rao-Blackwellised estimate of
    :mod:`bandit.fusion.draft`: unbiased, standard error at most ``0.5 / sqrt(n_samples)``
    and exact for the first slot.

    Parameters
    ----------
    k
        Slots per list.
    n_samples
        Replays per request used to estimate the propensities.
    max_per_category
        At most this many items of one category per list (needs ``categories``).

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

    def __init__(self, k: int, *, n_samples: int = 32, max_per_category: int | None = None) -> None:
        super().__init__(k, max_per_category=max_per_category)
        self.n_samples = int(check_scalar(n_samples, "n_samples", kind=int, min_val=1))

    def _extra_params(self) -> dict[str, Any]:
        return {"n_samples": self.n_samples}

    def _depth(self) -> int | None:
        return self.k if self.max_per_category is None else None

    def _fuse(self, cand: Candidates, rng: np.random.Generator) -> FusedLists:
        return draw_lists(
            cand,
            self.k,
            self.n_samples,
            rng,
            rounds=False,
            max_per_category=self.max_per_category,
        )
