"""Base recommenders ("arms") that the bandit allocates traffic to and fuses.

Every arm follows :class:`arms.base.Arm`: ``fit(interactions, items)``, batched
``score(user_ids, item_ids)`` and ``top_k(user_ids, k, exclude_seen=True)``, and
``save(path)`` / ``load(path)`` in safetensors plus JSON. Build one by name:

>>> from arms import ARMS, make_arm
>>> ARMS
('mf', 'bert', 'popularity', 'item-knn', 'random', 'ease')
>>> make_arm("popularity", device="cpu").name
'popularity'

This package never imports ``bandit``, ``service``, ``simulations`` or ``cli``.
"""

from arms.base import Arm, BaseArm, resolve_device
from arms.data import Dataset, Interactions, ItemCatalog, load_dataset, temporal_split
from arms.errors import ArmError, ChecksumError, NotFittedError, UnknownItemError
from arms.registry import ARMS, arm_class, load_arm, make_arm

__all__ = [
    "ARMS",
    "Arm",
    "ArmError",
    "BaseArm",
    "ChecksumError",
    "Dataset",
    "Interactions",
    "ItemCatalog",
    "NotFittedError",
    "UnknownItemError",
    "arm_class",
    "load_arm",
    "load_dataset",
    "make_arm",
    "resolve_device",
    "temporal_split",
]
