"""Fusion: blend the arms' ranked lists into one list per request, with propensities and
per-slot credit for the bandit (numpy only, vectorised over a micro-batch of requests).

>>> import numpy as np
>>> from bandit.fusion import make_fuser
>>> items = np.array([[[1, 2, 3, 4]], [[4, 3, 9, 8]]])  # (n_arms=2, B=1, C=4)
>>> out = make_fuser("slot-mix", k=3).fuse(items, [0.7, 0.3], seed=1)
>>> out.items.shape, out.credit.shape
((1, 3), (1, 3, 2))
"""

from bandit.fusion.base import FusedLists, Fuser
from bandit.fusion.credit import request_observations, slot_observations
from bandit.fusion.position import Examination, estimate_examination
from bandit.fusion.registry import FUSER_CLASSES, FUSERS, make_fuser

__all__ = [
    "FUSERS",
    "FUSER_CLASSES",
    "Examination",
    "FusedLists",
    "Fuser",
    "estimate_examination",
    "make_fuser",
    "request_observations",
    "slot_observations",
]
