"""API schemas of the read side: allocation, per-arm and per-position statistics, health.

Re-exported by :mod:`service.schemas` (kept apart so that each module stays small).
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

# --------------------------------------------------------------------------- read side


class AllocationOut(BaseModel):
    experiment: str
    policy_version: int
    allocation: dict[str, float]
    updated_at: dt.datetime


class ArmStats(BaseModel):
    arm: str
    decisions: int
    clicks: int = Field(description="Click rewards with a value above 0 (late ones included).")
    conversions: int = Field(description="Conversion rewards with a value above 0.")
    observations: int = Field(description="Rewards the policy learned (incl. implicit zeros).")
    mean_reward: float | None = Field(description="Per observation, in reward-definition units.")
    ci95_low: float | None
    ci95_high: float | None
    prob_best: float
    expected_loss: float
    weight: float = Field(description="Current allocation.")
    retired: bool = Field(
        default=False, description="Retired over HTTP: no more traffic, history kept."
    )
    items_shown: int = Field(default=0, description="Items this arm placed in answered lists.")
    item_clicks: int = Field(
        default=0,
        description="Clicks (value above 0) on items this arm placed (credited; for a "
        "deterministic fuser, the arm with the largest share of the item's score).",
    )
    item_conversions: int = Field(
        default=0, description="Conversions (value above 0) on items this arm placed."
    )
    slot_share: float = Field(
        default=0.0, description="This arm's share of all items shown (0 without items)."
    )


class PositionStats(BaseModel):
    position: int = Field(description="0 is the top of the list.")
    shown: int = Field(description="Decisions that showed an item at this position.")
    clicked: int = Field(description="Of those, decisions with a credited click here.")
    click_rate: float = Field(description="clicked / shown (the position curve).")


class StatsOut(BaseModel):
    experiment: str
    policy: str
    policy_version: int
    status: str
    arms: list[ArmStats]
    positions: list[PositionStats] = Field(
        default_factory=list,
        description="Per position of the answered lists (empty for decisions without items).",
    )


class SampleRatioTest(BaseModel):
    observed: dict[str, int]
    expected: dict[str, float]
    statistic: float
    dof: int
    p_value: float
    mismatch: bool = Field(description="p_value < 0.001")


class HealthOut(BaseModel):
    experiment: str
    status: str
    decisions: int
    fallback_decisions: int
    srm: SampleRatioTest
    pending_decisions: int = Field(description="Unsettled decisions still waiting for a reward.")
    rewards: int
    late_rewards: int
    orphan_rewards: int
    duplicate_rewards: int = Field(description="Retries answered from the first response.")
    ignored_rewards: int
    policy_version: int
    last_policy_update: dt.datetime | None
    background_error: str | None = Field(
        default=None,
        description="Last failure of background work (settling) on this experiment, as seen "
        "by the worker that answers; cleared by the next success.",
    )
    background_error_at: dt.datetime | None = None
