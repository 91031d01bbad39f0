"""The registry of arms: :data:`ARMS`, :func:`make_arm` and :func:`load_arm`.

Modules are imported on first use, so ``import arms`` stays light and the BERT arm's
``transformers`` import happens only when a BERT arm is built.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import torch

from arms.base import BaseArm

__all__ = ["ARMS", "arm_class", "load_arm", "make_arm"]

_CLASSES: dict[str, tuple[str, str]] = {
    "mf": ("arms.mf", "MFArm"),
    "bert": ("arms.bert", "BertArm"),
    "popularity": ("arms.popularity", "PopularityArm"),
    "item-knn": ("arms.knn", "ItemKNNArm"),
    "random": ("arms.random_arm", "RandomArm"),
    "ease": ("arms.ease", "EASEArm"),
}

ARMS: tuple[str, ...] = tuple(_CLASSES)
"""Names accepted by :func:`make_arm`."""


def arm_class(name: str) -> type[BaseArm]:
    """The class registered under ``name``.

    >>> arm_class("popularity").__name__
    'PopularityArm'
    """
    if name not in _CLASSES:
        raise ValueError(f"name must be one of {', '.join(ARMS)}; got {name!r}.")
    module, attr = _CLASSES[name]
    cls: type[BaseArm] = getattr(importlib.import_module(module), attr)
    return cls


def make_arm(name: str, **params: Any) -> BaseArm:
    """A new, unfitted arm ``name`` built with ``params``.

    >>> make_arm("mf", factors=8, device="cpu").factors
    8
    """
    return arm_class(name)(**params)


def load_arm(path: str | Path, device: str | torch.device | None = None) -> BaseArm:
    """Read any arm written by :meth:`arms.base.BaseArm.save`."""
    meta = json.loads((Path(path) / "arm.json").read_text())
    return arm_class(str(meta.get("arm"))).load(path, device=device)
