"""Replay a learning policy from :mod:`bandit` on a logged uniform log (Li et al. 2011).

At every logged round the policy chooses an arm; when it equals the logged action, the round
counts and the policy learns its reward; otherwise the round is skipped. On a log collected
by a uniform logging policy the counted rounds are distributed as an online run of the
policy (Li et al., "Unbiased offline evaluation of contextual-bandit-based news article
recommendation algorithms", WSDM 2011). On a list log each row is a decision for its own
slot.

Two paths:

``batch=1`` (exact)
    The per-row semantics: ``select`` on every row and ``update`` on every counted one,
    so the policy may change after every counted round.
``batch=B > 1``
    The policy learns every ``B`` logged rows with ``update_batch`` (as a service that
    applies rewards in batches does): one ``select_batch(B)`` per block.

With ``record_allocation=True`` the policy's allocation before every row is kept (one
allocation per state), so IPS, DR and the other estimators can weigh the same trajectory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bandit.base import Policy
from bandit.validation import check_scalar
from simulations.logged import LoggedFeedback

__all__ = ["ReplayResult", "replay"]

_PROGRESS_EVERY = 8192  # rows between progress callbacks


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """Outcome of replaying one policy on one log.

    Attributes
    ----------
    matched
        ``(n,)`` True where the policy's choice equalled the logged action.
    value
        Mean reward over the matched rounds (nan when none matched).
    allocations
        ``(n_states, n_actions)`` the policy's allocation in each state it went through
        (only with ``record_allocation``).
    state_of_row
        ``(n,)`` index into ``allocations`` of the state before each row.
    wall_time_s
        Seconds spent replaying.
    """

    policy: str
    matched: np.ndarray
    value: float
    allocations: np.ndarray | None
    state_of_row: np.ndarray | None
    wall_time_s: float

    @property
    def n_matched(self) -> int:
        """Number of counted rounds."""
        return int(self.matched.sum())

    def allocation_per_row(self) -> np.ndarray:
        """``(n, n_actions)`` the policy's distribution before each row."""
        if self.allocations is None or self.state_of_row is None:
            raise ValueError("allocations were not recorded: replay with record_allocation=True.")
        return self.allocations[self.state_of_row]


def replay(
    policy: Policy,
    log: LoggedFeedback,
    *,
    batch: int = 1,
    record_allocation: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Replay ``policy`` (which learns as it goes) on ``log``; see the module docstring.

    ``progress`` is called with the number of rows done since the previous call.
    """
    batch = int(check_scalar(batch, "batch", kind=int, min_val=1))
    if policy.n_arms != log.n_actions:
        raise ValueError(
            f"policy has {policy.n_arms} arms but the log has {log.n_actions} actions."
        )
    start = time.perf_counter()
    n = log.n_rounds
    actions, rewards = log.actions, log.rewards
    matched = np.zeros(n, dtype=bool)
    allocations: list[np.ndarray] = []
    state_of_row = np.zeros(n, dtype=np.int64) if record_allocation else None
    if record_allocation:
        allocations.append(policy.allocation())
    if batch == 1:
        select, update = policy.select, policy.update
        acts, rews = actions.tolist(), rewards.tolist()
        for lo in range(0, n, _PROGRESS_EVERY):
            hi = min(n, lo + _PROGRESS_EVERY)
            for i in range(lo, hi):
                a = acts[i]
                if select().arm == a:
                    update(a, rews[i])
                    matched[i] = True
                    if record_allocation:
                        allocations.append(policy.allocation())
            if progress is not None:
                progress(hi - lo)
        if state_of_row is not None:
            state_of_row[1:] = np.cumsum(matched)[:-1]
    else:
        for i in range(0, n, batch):
            m = min(batch, n - i)
            hit = policy.select_batch(m).arms == actions[i : i + m]
            matched[i : i + m] = hit
            if state_of_row is not None:
                state_of_row[i : i + m] = len(allocations) - 1
            if hit.any():
                policy.update_batch(actions[i : i + m][hit], rewards[i : i + m][hit])
                if record_allocation:
                    allocations.append(policy.allocation())
            if progress is not None:
                progress(m)
    count = int(matched.sum())
    value = float(rewards[matched].mean()) if count else float("nan")
    return ReplayResult(
        policy=policy.name or type(policy).__name__,
        matched=matched,
        value=value,
        allocations=np.stack(allocations) if record_allocation else None,
        state_of_row=state_of_row,
        wall_time_s=time.perf_counter() - start,
    )
