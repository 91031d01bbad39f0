"""Logged bandit feedback: what a logging policy did, with what probability, and what it earned.

:class:`LoggedFeedback` is the one container every offline-evaluation piece reads (the Open
Bandit Dataset loader, the service-log loader, the estimators and the replay). It is frozen
and validated at construction, so an estimator never meets a propensity of 0 or a NaN reward.

Rows are rounds. For list (slate) logs a row is one (impression, position) pair: ``positions``
says which slot it was, and ``slates`` (optional) groups the rows shown together.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["LoggedFeedback"]


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def _as_1d(values: object, name: str, dtype: type, n: int | None) -> np.ndarray:
    try:
        arr: np.ndarray = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold numbers ({dtype.__name__}).") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}.")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must have one entry per round ({n}), got {arr.shape[0]}.")
    return arr


def _as_index(values: object, name: str, n: int, upper: int) -> np.ndarray:
    raw = np.asarray(values)
    if raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)):
            raise ValueError(f"{name} must be integers.")
    elif raw.dtype.kind not in "iub":
        raise ValueError(f"{name} must be integers, got dtype {raw.dtype}.")
    arr = _as_1d(raw, name, np.int64, n)
    if arr.size and (arr.min() < 0 or arr.max() >= upper):
        bad = arr[(arr < 0) | (arr >= upper)][0]
        raise ValueError(f"{name} must lie in [0, {upper}), got {bad}.")
    return arr


@dataclass(frozen=True, slots=True)
class LoggedFeedback:
    """Logged bandit feedback of ``n`` rounds, checked at construction.

    Parameters
    ----------
    actions
        ``(n,)`` the logged action (arm / item index) of each round, in ``[0, n_actions)``.
    rewards
        ``(n,)`` the observed reward of each round; finite.
    propensities
        ``(n,)`` the logging policy's probability of the logged action (at the logged
        position), in ``(0, 1]``.
    n_actions
        Number of actions.
    positions
        ``(n,)`` the slot of each row in ``[0, n_positions)``; all 0 when omitted.
    n_positions
        Number of slots (list length); 1 for a single choice.
    context
        ``(n, d)`` features of each round (optional; used by reward models).
    action_context
        ``(n_actions, d_a)`` features of each action (optional; one-hot when absent).
    logging_distribution
        ``(n, n_actions, n_positions)`` the logging policy's full distribution (optional).
    slates
        ``(n,)`` integer id of the impression each row belongs to (optional; slate
        estimators group by it).
    cascade_propensities
        ``(n,)`` the logging policy's probability of the whole list prefix up to and
        including this row's slot (optional; reward-interaction IPS divides by it).
    name
        A label for reports.

    Examples
    --------
    >>> log = LoggedFeedback(actions=[0, 1, 1], rewards=[1.0, 0.0, 1.0],
    ...                      propensities=[0.5, 0.5, 0.5], n_actions=2)
    >>> log.n_rounds, float(log.rewards.mean())
    (3, 0.6666666666666666)
    >>> LoggedFeedback(actions=[0], rewards=[1.0], propensities=[0.0], n_actions=2)
    Traceback (most recent call last):
    ...
    ValueError: propensities must lie in (0, 1]; round 0 has 0.0.
    """

    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray
    n_actions: int
    positions: np.ndarray | None = None
    n_positions: int = 1
    context: np.ndarray | None = None
    action_context: np.ndarray | None = None
    logging_distribution: np.ndarray | None = None
    slates: np.ndarray | None = None
    cascade_propensities: np.ndarray | None = None
    name: str = ""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if isinstance(self.n_actions, bool) or not isinstance(self.n_actions, int | np.integer):
            raise ValueError(f"n_actions must be an integer, got {self.n_actions!r}.")
        if self.n_actions < 1:
            raise ValueError(f"n_actions must be at least 1, got {self.n_actions}.")
        if isinstance(self.n_positions, bool) or not isinstance(self.n_positions, int | np.integer):
            raise ValueError(f"n_positions must be an integer, got {self.n_positions!r}.")
        if not 1 <= self.n_positions <= self.n_actions:
            raise ValueError(f"n_positions must lie in [1, n_actions], got {self.n_positions}.")
        rewards = _as_1d(self.rewards, "rewards", np.float64, None)
        n = rewards.shape[0]
        if n == 0:
            raise ValueError("rewards must hold at least one round.")
        if not np.all(np.isfinite(rewards)):
            bad = int(np.flatnonzero(~np.isfinite(rewards))[0])
            raise ValueError(f"rewards must be finite; round {bad} has {rewards[bad]}.")
        actions = _as_index(self.actions, "actions", n, int(self.n_actions))
        propensities = _as_1d(self.propensities, "propensities", np.float64, n)
        ok = (propensities > 0) & (propensities <= 1)
        if not ok.all():
            bad = int(np.flatnonzero(~ok)[0])
            raise ValueError(
                f"propensities must lie in (0, 1]; round {bad} has {propensities[bad]}."
            )
        if self.positions is None:
            positions = np.zeros(n, dtype=np.int64)
        else:
            positions = _as_index(self.positions, "positions", n, int(self.n_positions))
        set_(self, "n_actions", int(self.n_actions))
        set_(self, "n_positions", int(self.n_positions))
        set_(self, "rewards", _frozen(rewards))
        set_(self, "actions", _frozen(actions))
        set_(self, "propensities", _frozen(propensities))
        set_(self, "positions", _frozen(positions))
        if self.context is not None:
            ctx = np.asarray(self.context, dtype=np.float64)
            if ctx.ndim == 1:
                ctx = ctx[:, None]
            if ctx.ndim != 2 or ctx.shape[0] != n:
                raise ValueError(f"context must have shape ({n}, d), got {ctx.shape}.")
            if not np.all(np.isfinite(ctx)):
                raise ValueError("context must be finite.")
            set_(self, "context", _frozen(ctx))
        if self.action_context is not None:
            actx = np.asarray(self.action_context, dtype=np.float64)
            if actx.ndim != 2 or actx.shape[0] != self.n_actions:
                raise ValueError(
                    f"action_context must have shape ({self.n_actions}, d), got {actx.shape}."
                )
            if not np.all(np.isfinite(actx)):
                raise ValueError("action_context must be finite.")
            set_(self, "action_context", _frozen(actx))
        if self.logging_distribution is not None:
            dist = np.asarray(self.logging_distribution, dtype=np.float64)
            shape = (n, self.n_actions, self.n_positions)
            if dist.shape != shape:
                raise ValueError(f"logging_distribution must have shape {shape}, got {dist.shape}.")
            if np.any(dist < 0) or not np.allclose(dist.sum(axis=1), 1.0, atol=1e-6):
                raise ValueError(
                    "logging_distribution must be non-negative and sum to 1 over actions."
                )
            set_(self, "logging_distribution", _frozen(dist))
        if self.slates is not None:
            set_(self, "slates", _frozen(_as_1d(self.slates, "slates", np.int64, n)))
        if self.cascade_propensities is not None:
            cascade = _as_1d(self.cascade_propensities, "cascade_propensities", np.float64, n)
            ok = (cascade > 0) & (cascade <= 1)
            if not ok.all():
                bad = int(np.flatnonzero(~ok)[0])
                raise ValueError(
                    f"cascade_propensities must lie in (0, 1]; round {bad} has {cascade[bad]}."
                )
            set_(self, "cascade_propensities", _frozen(cascade))

    @property
    def n_rounds(self) -> int:
        """Number of logged rounds (rows)."""
        return int(self.rewards.shape[0])

    def subset(self, rows: np.ndarray) -> LoggedFeedback:
        """The rounds selected by ``rows`` (a boolean mask or indices), as a new container."""
        idx = np.asarray(rows)

        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]

        return replace(
            self,
            actions=self.actions[idx],
            rewards=self.rewards[idx],
            propensities=self.propensities[idx],
            positions=take(self.positions),
            context=take(self.context),
            logging_distribution=take(self.logging_distribution),
            slates=take(self.slates),
            cascade_propensities=take(self.cascade_propensities),
        )
