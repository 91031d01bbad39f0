"""API schemas (pydantic), kept apart from the ORM models in :mod:`service.models`."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from service.schemas_read import (  # noqa: F401 (re-exported)
    AllocationOut,
    ArmStats,
    HealthOut,
    PositionStats,
    SampleRatioTest,
    StatsOut,
)
from service.validation import MAX_JSON_DEPTH, check_json, check_text

ExperimentKey = str

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
RewardKind = Literal["click", "conversion"]
Scope = Literal["admin", "write", "read"]
Status = Literal["active", "paused", "stopped"]

#: Limits that keep every stored number inside the database's types and the service's
#: arithmetic (datetimes, 32-bit integer columns, sums of squares in float64).
MAX_REWARD_WINDOW_S = 1e9  # about 31.7 years
MAX_BURN_IN = 1_000_000_000  # fits the 32-bit INTEGER column
MAX_REWARD_DEFINITION = 1e9
MAX_OFFSET = 1_000_000_000

#: A string that PostgreSQL and every JSON encoder accept: no NUL, no lone surrogate.
Text = Annotated[str, AfterValidator(check_text)]
#: One share per arm.
Shares = Annotated[list[float], Field(max_length=1000)]


class FieldError(BaseModel):
    """One validation error: where (``loc``), what (``msg``) and its ``type``."""

    type: str
    loc: list[str | int]
    msg: str


class Error(BaseModel):
    """Every error answer (4xx) has this body."""

    detail: str = Field(description="What was wrong, in one line.")
    errors: list[FieldError] | None = Field(
        default=None, description="One entry per invalid field (422 validation errors only)."
    )


class Body(BaseModel):
    """Request bodies: unknown fields, NaN and infinities are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# --------------------------------------------------------------------------- experiments


class PositionCorrection(Body):
    """Position correction of a fuse experiment's slot observations (see
    ``service.store.position`` for the rule)."""

    max_weight: float = Field(
        default=4.0, ge=1.0, le=100.0, description="Largest correction factor (clip)."
    )
    window: int = Field(
        default=5000, ge=10, le=100_000, description="Recent learned decisions in an estimate."
    )
    refresh: int = Field(
        default=50, ge=1, le=1_000_000, description="Policy versions between two estimates."
    )
    min_decisions: int = Field(
        default=200, ge=1, le=100_000, description="Learned decisions before any correction."
    )


class ExperimentCreate(Body):
    """A new experiment: its arms, the policy that allocates traffic and how rewards count."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "key": "homepage-hero",
                    "name": "Homepage hero banner",
                    "arms": ["control", "popular", "personalised"],
                    "policy": "thompson",
                    "params": {},
                    "reward": {"click": 1, "conversion": 5},
                    "floors": 0.05,
                    "control_arm": "control",
                    "control_share": 0.1,
                    "reward_window_s": 86400,
                }
            ]
        },
    )

    key: str = Field(pattern=KEY_PATTERN, description="Unique key used in URLs.")
    name: Text = Field(default="", max_length=200)
    arms: list[Text] = Field(min_length=2, max_length=1000, description="Distinct arm names.")
    policy: Text = Field(
        default="thompson", max_length=64, description="A name from bandit.POLICIES."
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        max_length=64,
        description="Policy hyper-parameters, e.g. {'gamma': 0.999}.",
    )
    seed: int | None = Field(
        default=None, ge=0, lt=2**63, description="Policy seed (random if unset)."
    )
    mode: Literal["allocate", "fuse"] = "allocate"
    reward: dict[RewardKind, float] = Field(
        default_factory=lambda: dict[RewardKind, float]({"click": 1.0}),
        description="Reward definition: the value of each kind (and its maximum). Kinds left "
        "out are stored but not learned, e.g. {'conversion': 1} is conversion-only. The policy "
        "learns value / max(definition) so that rewards fall in [0, 1].",
    )
    floors: float | Shares | None = Field(default=None, description="Minimum share per arm.")
    caps: float | Shares | None = Field(default=None, description="Maximum share per arm.")
    control_arm: Text | None = Field(
        default=None, max_length=200, description="Arm that receives control_share."
    )
    control_share: float = Field(default=0.0, ge=0.0, le=1.0)
    burn_in: int = Field(
        default=0, ge=0, le=MAX_BURN_IN, description="Decisions allocated uniformly at first."
    )
    reward_window_s: float | None = Field(
        default=86400.0,
        gt=0,
        le=MAX_REWARD_WINDOW_S,
        description="Seconds after a decision during which its rewards count. When it closes "
        "the decision is learned once, as the largest value among its rewards (zero if none), "
        "unless it reached the definition's maximum earlier; later rewards are stored as late. "
        "null: no window (a decision is learned at its first reward; nothing is late).",
    )
    learn_late: bool = Field(
        default=False,
        description="Let a reward after the window still count toward its decision if the "
        "decision was not learned yet (the settling pass had not reached it).",
    )
    when_inactive: Literal["fallback", "reject"] = Field(
        default="fallback",
        description="Paused or stopped experiment: answer with fallback_arm, or with 409.",
    )
    fallback_arm: Text | None = Field(
        default=None, max_length=200, description="Defaults to control_arm, else arm 0."
    )
    recommenders: dict[Text, Text] | None = Field(
        default=None,
        max_length=1000,
        description="Arm name -> name of a recommender loaded from the models directory "
        "(GET /v1/models). Decisions then return that arm's items; arms left out answer with "
        "their name only. mode 'fuse' needs one for every arm.",
    )
    fuser: Text | None = Field(
        default=None,
        max_length=32,
        description="mode 'fuse': slot-mix (default), team-draft, weighted-score or "
        "weighted-rrf. The last two are deterministic: a click on an item is credited to the "
        "arms by their share of its fused score.",
    )
    fuser_params: dict[str, Any] | None = Field(
        default=None,
        max_length=8,
        description="mode 'fuse': the fuser's parameters, e.g. {'c': 60} for weighted-rrf or "
        "{'n_samples': 32} for slot-mix and team-draft (max_per_category is not available: "
        "the service has no item categories).",
    )
    position_correction: PositionCorrection | None = Field(
        default=None,
        description="mode 'fuse': divide each slot's click by the examination probability "
        "of its position, estimated from the logged slot clicks (clipped at max_weight).",
    )

    @field_validator("arms")
    @classmethod
    def _distinct_arms(cls, arms: list[str]) -> list[str]:
        seen: set[str] = set()
        dup = sorted({a for a in arms if a in seen or seen.add(a)})  # type: ignore[func-returns-value]
        if dup:
            raise ValueError(f"arms must be distinct; duplicated: {', '.join(dup)}")
        if any(not a or len(a) > 200 for a in arms):
            raise ValueError("arm names must be 1 to 200 characters long")
        return arms

    @field_validator("reward")
    @classmethod
    def _reward_definition(cls, reward: dict[str, float]) -> dict[str, float]:
        if not reward:
            raise ValueError("reward must define at least one of 'click' and 'conversion'")
        for kind, value in reward.items():
            if not (math.isfinite(value) and 0 < value <= MAX_REWARD_DEFINITION):
                raise ValueError(
                    f"reward[{kind!r}] must be a positive finite number up to "
                    f"{MAX_REWARD_DEFINITION:g}, got {value}"
                )
        return reward

    @field_validator("params")
    @classmethod
    def _json_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        check_json(params, "params", MAX_JSON_DEPTH)
        return params

    @model_validator(mode="after")
    def _check(self) -> ExperimentCreate:
        n = len(self.arms)
        for name in ("floors", "caps"):
            v = getattr(self, name)
            if isinstance(v, list) and len(v) != n:
                raise ValueError(f"{name} has {len(v)} entries but there are {n} arms")
            vals = v if isinstance(v, list) else ([v] * n if v is not None else [])
            if any(not (0.0 <= x <= 1.0) for x in vals):
                raise ValueError(f"{name} must lie in [0, 1]")
        if self.floors is not None:
            total = sum(self.floors) if isinstance(self.floors, list) else self.floors * n
            if total > 1.0 + 1e-12:
                raise ValueError(f"floors sum to {total:g} over {n} arms, above 1")
        for name in ("control_arm", "fallback_arm"):
            arm = getattr(self, name)
            if arm is not None and arm not in self.arms:
                raise ValueError(f"{name} {arm!r} is not one of the arms")
        if self.control_share > 0 and self.control_arm is None:
            raise ValueError("control_share > 0 needs a control_arm")
        recs = self.recommenders or {}
        unknown = sorted(set(recs) - set(self.arms))
        if unknown:
            raise ValueError(f"recommenders names arms that are not arms: {', '.join(unknown)}")
        if self.mode == "fuse":
            missing = [a for a in self.arms if a not in recs]
            if missing:
                raise ValueError(
                    "mode 'fuse' needs a recommender for every arm; none for: " + ", ".join(missing)
                )
        else:
            for name in ("fuser", "fuser_params", "position_correction"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} is set but mode is not 'fuse'")
        return self


class ExperimentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    name: str
    arms: list[str]
    policy: str
    params: dict[str, Any]
    seed: int
    mode: str
    reward: dict[str, float]
    floors: list[float] | None
    caps: list[float] | None
    control_arm: str | None
    control_share: float
    burn_in: int
    reward_window_s: float | None
    learn_late: bool
    status: Status
    when_inactive: str
    fallback_arm: str
    recommenders: dict[str, str] | None = None
    fuser: str | None = None
    fuser_params: dict[str, Any] | None = None
    position_correction: dict[str, Any] | None = None
    retired: list[str] = Field(
        default_factory=list,
        description="Arms retired over HTTP: kept with their history, given no more traffic.",
    )
    policy_version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class ArmCreate(Body):
    """An arm added to a running experiment (``POST /v1/experiments/{key}/arms``)."""

    name: Text = Field(min_length=1, max_length=200, description="A name not used yet.")
    recommender: Text | None = Field(
        default=None,
        max_length=200,
        description="A loaded recommender (GET /v1/models) backing the arm; required in "
        "mode 'fuse'.",
    )


class ExperimentPage(BaseModel):
    items: list[ExperimentOut]
    total: int
    limit: int
    offset: int


# --------------------------------------------------------------------------- decisions


ItemId = Annotated[int, Field(ge=0, lt=2**63)]


class DecisionCreate(Body):
    unit_id: Text = Field(min_length=1, max_length=200, description="User / session / request.")
    context: dict[str, Any] | None = Field(
        default=None,
        description="Stored with the decision: any JSON object without NaN or infinities, "
        "at most max_context_bytes (setting) once encoded.",
    )
    served_items: list[Annotated[Text, Field(max_length=200)]] | None = Field(
        default=None, max_length=1000
    )
    k: int | None = Field(
        default=None,
        ge=1,
        description="Items to return (default: setting default_k; at most setting max_k).",
    )
    exclude: list[ItemId] = Field(
        default_factory=list, max_length=10_000, description="Items not to show (e.g. seen)."
    )
    candidates: list[ItemId] | None = Field(
        default=None, max_length=10_000, description="Restrict the list to these items."
    )

    @field_validator("context")
    @classmethod
    def _json_context(cls, context: dict[str, Any] | None) -> dict[str, Any] | None:
        if context is not None:
            check_json(context, "context", MAX_JSON_DEPTH)
        return context


class ItemOut(BaseModel):
    """One item of a decision's list."""

    item_id: int
    position: int = Field(description="0 is the top slot.")
    arm: str = Field(description="The bandit arm whose recommender placed the item.")
    source_prob: float = Field(
        description="Probability that this arm was the source drawn for this slot."
    )
    propensity: float = Field(
        description="Marginal probability that this item is shown at this position."
    )
    credit: dict[str, float] | None = Field(
        default=None,
        description="Deterministic fusers (weighted-score, weighted-rrf): each arm's share of "
        "the item's fused score (sums to 1); a click on the item is credited by these shares. "
        "null for the drawn fusers (the whole slot is the source arm's).",
    )


class DecisionOut(BaseModel):
    decision_id: str
    experiment: str
    unit_id: str
    arm: str
    arm_index: int
    probabilities: dict[str, float] = Field(description="P(arm) for every arm at this decision.")
    policy_version: int
    fallback: bool = Field(description="True when the experiment was paused or stopped.")
    items: list[ItemOut] | None = Field(
        default=None,
        description="The list to show: the chosen arm's top k (allocate) or the fused list "
        "(fuse); null when the arm has no recommender.",
    )
    created_at: dt.datetime


# --------------------------------------------------------------------------- rewards


class RewardCreate(Body):
    decision_id: Text = Field(min_length=1, max_length=64)
    kind: RewardKind = "click"
    value: float | None = Field(
        default=None, description="Defaults to the experiment's value for this kind."
    )
    item: Text | None = Field(default=None, max_length=200)
    item_id: ItemId | None = Field(
        default=None,
        description="The item clicked, for a decision with items: credit goes to the arm "
        "that placed it; an item that was not shown is stored with status 'unshown'.",
    )
    position: int | None = Field(
        default=None, ge=0, lt=10_000, description="The position clicked (0 = top)."
    )
    reward_id: Text | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Idempotency key; the Idempotency-Key header takes precedence.",
    )

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("value must be a finite number")
        return v


class RewardBatch(Body):
    rewards: list[RewardCreate] = Field(
        min_length=1, description="At most max_batch_size (setting) rewards."
    )


RewardStatus = Literal["learned", "pending", "late", "orphan", "unshown", "ignored", "retired"]


class RewardOut(BaseModel):
    reward_id: int
    idempotency_key: str
    decision_id: str
    kind: str
    value: float
    status: RewardStatus = Field(
        description="One observation per decision: a decision's reward is the largest value "
        "among its rewards, learned once, when it reaches the definition's maximum or when the "
        "decision's window closes (at its first reward without a window). learned: part of "
        "its decision's learned observation; pending: stored, learned with its decision later; "
        "late: after the reward window; orphan: unknown decision; ignored: kind not in the "
        "reward definition, fallback decision, stopped experiment, or decision already learned; "
        "unshown: names an item or position that the decision did not show (kept, not "
        "learned); retired: credited to an arm retired since (counted, not learned)."
    )
    replayed: bool = Field(default=False, description="True when answered from the first request.")
    policy_version: int | None = Field(
        default=None, description="Version after this reward's update."
    )


class RewardBatchOut(BaseModel):
    results: list[RewardOut]
    learned: int
    policy_version: int


class ServiceHealth(BaseModel):
    status: Literal["ok"]
    database: str | None = Field(
        default=None, description="The database's dialect; left out in production."
    )


class ModelOut(BaseModel):
    """A recommender loaded from the models directory."""

    name: str = Field(description="Its folder's name; experiments refer to it by this name.")
    arm: str = Field(description="The kind of arm, e.g. 'mf' or 'popularity'.")
    n_items: int = Field(description="Catalogue size.")
    trained_at: dt.datetime | None = Field(description="When it was trained, if recorded.")


class ModelsOut(BaseModel):
    models: list[ModelOut]
