"""Bandit policies and allocation math for bandit-fusion (numpy/scipy, no I/O).

>>> from bandit import make_policy
>>> policy = make_policy("thompson", n_arms=3, seed=0)
>>> choice = policy.select()
>>> policy.update(choice.arm, 1.0)
>>> round(float(policy.allocation().sum()), 6)
1.0
"""

from bandit.allocation import Constraints
from bandit.base import BatchSelection, Policy, Selection, StalePropensityError
from bandit.fusion import FUSERS, FusedLists, Fuser, make_fuser
from bandit.registry import POLICIES, REGISTRY, PolicySpec, from_state_dict, make_policy

__all__ = [
    "FUSERS",
    "POLICIES",
    "REGISTRY",
    "BatchSelection",
    "Constraints",
    "FusedLists",
    "Fuser",
    "Policy",
    "PolicySpec",
    "Selection",
    "StalePropensityError",
    "from_state_dict",
    "make_fuser",
    "make_policy",
]
