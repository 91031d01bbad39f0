"""``team-draft``: team-draft interleaving (Radlinski et al. 2008), the classical baseline.

In each round every arm with positive weight picks once, in a random order, its
highest-ranked item not already in the list; the order is drawn from the weights without
replacement (a Plackett-Luce draw; uniform weights give the classical uniformly random
order). The multileaving form follows Schuth et al. (2014).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bandit.fusion.base import Candidates, FusedLists, Fuser
from bandit.fusion.draft import draw_lists
from bandit.validation import check_scalar


class TeamDraft(Fuser):
    """Rounds in which each arm with positive weight places one item, in a weighted order.

    ``source_prob`` (marginal probability of the source arm at the slot) and ``propensity``
    are Rao-Blackwellised estimates (:mod:`bandit.fusion.draft`): unbiased, standard error at
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
            rounds=True,
            max_per_category=self.max_per_category,
        )
