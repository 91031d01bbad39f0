"""The fuser registry: names and construction from a name, in the style of ``make_policy``."""

from __future__ import annotations

from typing import Any

from bandit.fusion.base import Fuser
from bandit.fusion.scored import WeightedRRF, WeightedScore
from bandit.fusion.slot_mix import SlotMix
from bandit.fusion.team_draft import TeamDraft

FUSER_CLASSES: dict[str, type[Fuser]] = {
    cls.name: cls for cls in (SlotMix, WeightedScore, WeightedRRF, TeamDraft)
}
#: Names accepted by :func:`make_fuser`.
FUSERS: tuple[str, ...] = tuple(FUSER_CLASSES)


def make_fuser(name: str, k: int, **params: Any) -> Fuser:
    """Build the fuser registered as ``name`` with ``k`` slots per list.

    >>> make_fuser("slot-mix", k=10).params["k"]
    10
    >>> make_fuser("slot-mix", k=10, c=60)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown parameter 'c' for fuser 'slot-mix'; it accepts: ...
    """
    if not isinstance(name, str) or name not in FUSER_CLASSES:
        raise ValueError(f"name {name!r} is not a fuser; choose one of: {', '.join(FUSERS)}.")
    cls = FUSER_CLASSES[name]
    allowed = sorted(set(cls(k=1).params) - {"k"})
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown parameter {unknown[0]!r} for fuser {name!r}; "
            f"it accepts: {', '.join(allowed)}."
        )
    return cls(k, **params)
