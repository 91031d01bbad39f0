"""Allocation controls the service uses: per-arm floors and caps, a control arm, burn-in.

A policy proposes a base allocation ``p`` (its probability of choosing each arm); the
:class:`Constraints` turn it into the allocation ``q`` that is actually served:

1. a control arm, if any, gets exactly ``control_share``; the other arms share the rest in
   proportion to ``p`` (uniformly if ``p`` put everything on the control arm);
2. floors are mixed in: ``q_i = f_i + (1 - c - sum f) * p_i`` over the non-control arms
   (``c`` the control share), so every arm gets at least its floor;
3. caps are enforced by moving the excess of a capped arm to the uncapped arms in
   proportion to their share above their floor (evenly if none has any), until no cap is
   exceeded.

Floors and caps are fractions of all traffic. A floor or cap given as one number applies to
every arm, including arms added later; per-arm lists give a new arm no floor and no cap.
Burn-in is applied by the policy: while some
arm has fewer than ``burn_in`` observations, ``p`` is uniform over those arms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bandit.validation import check_arm, check_per_arm, check_scalar

_TOL = 1e-12


@dataclass
class Constraints:
    """Floors, caps, a control arm's fixed share and a burn-in, checked for feasibility.

    >>> c = Constraints.build(3, floors=0.1, control_arm=0, control_share=0.2)
    >>> c.apply(np.array([0.0, 1.0, 0.0])).round(3).tolist()
    [0.2, 0.7, 0.1]
    """

    n_arms: int
    floors: np.ndarray = field(default_factory=lambda: np.zeros(0))
    caps: np.ndarray = field(default_factory=lambda: np.ones(0))
    control_arm: int | None = None
    control_share: float = 0.0
    burn_in: int = 0
    #: The floor and cap given as one number for every arm (``None``: per-arm lists); arms
    #: added later get them.
    scalar_floor: float | None = None
    scalar_cap: float | None = None

    @classmethod
    def build(
        cls,
        n_arms: int,
        *,
        floors: float | Sequence[float] | None = None,
        caps: float | Sequence[float] | None = None,
        control_arm: int | None = None,
        control_share: float = 0.0,
        burn_in: int = 0,
    ) -> Constraints:
        """Validate the controls and return them; raise ``ValueError`` naming the argument."""
        f = check_per_arm(floors, "floors", n_arms, 0.0)
        u = check_per_arm(caps, "caps", n_arms, 1.0)
        share = float(check_scalar(control_share, "control_share", min_val=0.0, max_val=1.0))
        burn = int(check_scalar(burn_in, "burn_in", kind=int, min_val=0))
        if control_arm is not None:
            control_arm = check_arm(control_arm, n_arms, "control_arm")
            f[control_arm] = 0.0
            u[control_arm] = 1.0
        elif share > 0.0:
            raise ValueError("control_share needs a control_arm.")
        c = cls(n_arms, f, u, control_arm, share, burn, _scalar(floors), _scalar(caps))
        c.check()
        return c

    def check(self) -> None:
        """Raise ``ValueError`` if no allocation can satisfy the controls."""
        others = self._others()
        rest = 1.0 - self.control_share
        if np.any(self.floors > self.caps + _TOL):
            i = int(np.argmax(self.floors - self.caps))
            raise ValueError(f"floors[{i}] = {self.floors[i]} exceeds caps[{i}] = {self.caps[i]}.")
        if self.floors[others].sum() > rest + _TOL:
            raise ValueError(
                f"floors sum to {self.floors[others].sum():.6g}, above the {rest:.6g} of traffic "
                "left after the control share."
            )
        if others.size and self.caps[others].sum() < rest - _TOL:
            raise ValueError(
                f"caps sum to {self.caps[others].sum():.6g}, below the {rest:.6g} of traffic "
                "that must be served."
            )
        if self.control_arm is not None and self.n_arms == 1 and self.control_share < 1.0:
            raise ValueError("control_share must be 1 when the control arm is the only arm.")

    @property
    def active(self) -> bool:
        """True when the controls can change a policy's allocation (burn-in aside)."""
        return bool(self.control_arm is not None or self.floors.any() or (self.caps < 1.0).any())

    def _others(self) -> np.ndarray:
        idx = np.arange(self.n_arms)
        return idx if self.control_arm is None else idx[idx != self.control_arm]

    def apply(self, p: np.ndarray) -> np.ndarray:
        """Turn a base allocation ``p`` (sums to 1) into the served allocation."""
        q = np.zeros(self.n_arms)
        others = self._others()
        rest = 1.0 - self.control_share
        if self.control_arm is not None:
            q[self.control_arm] = self.control_share
        if others.size == 0:
            return q
        base = p[others].astype(np.float64)
        mass = base.sum()
        base = base / mass if mass > _TOL else np.full(others.size, 1.0 / others.size)
        floors = self.floors[others]
        caps = self.caps[others]
        share = floors + (rest - floors.sum()) * base
        for _ in range(others.size + 1):
            excess = np.maximum(share - caps, 0.0)
            total_excess = excess.sum()
            if total_excess <= _TOL:
                break
            share = share - excess
            open_ = share < caps - _TOL
            weights = np.where(open_, share - floors, 0.0)
            if weights.sum() <= _TOL:
                weights = open_.astype(np.float64)
            share = share + total_excess * weights / weights.sum()
        q[others] = share
        return q / q.sum()

    def with_arm(self) -> Constraints:
        """The controls once an arm is appended: it gets the scalar floor and cap if they
        were given as one number, else none; raises ``ValueError`` if that is infeasible."""
        floor = 0.0 if self.scalar_floor is None else self.scalar_floor
        cap = 1.0 if self.scalar_cap is None else self.scalar_cap
        grown = Constraints(
            self.n_arms + 1,
            np.append(self.floors, floor),
            np.append(self.caps, cap),
            self.control_arm,
            self.control_share,
            self.burn_in,
            self.scalar_floor,
            self.scalar_cap,
        )
        grown.check()
        return grown

    def without_arm(self, arm: int) -> Constraints:
        """The controls once ``arm`` is removed (a removed control arm ends the control
        share); raises ``ValueError``, changing nothing, if they would be infeasible."""
        control, share = self.control_arm, self.control_share
        if control == arm:
            control, share = None, 0.0
        elif control is not None and control > arm:
            control -= 1
        reduced = Constraints(
            self.n_arms - 1,
            np.delete(self.floors, arm),
            np.delete(self.caps, arm),
            control,
            share,
            self.burn_in,
            self.scalar_floor,
            self.scalar_cap,
        )
        reduced.check()
        return reduced

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, accepted by :meth:`build` as keyword arguments."""
        return {
            "floors": self.floors.tolist() if self.scalar_floor is None else self.scalar_floor,
            "caps": self.caps.tolist() if self.scalar_cap is None else self.scalar_cap,
            "control_arm": self.control_arm,
            "control_share": self.control_share,
            "burn_in": self.burn_in,
        }


def _scalar(value: object) -> float | None:
    """``value`` as a float when it is one number (already validated), else ``None``."""
    return float(value) if isinstance(value, (int, float, np.number)) else None
