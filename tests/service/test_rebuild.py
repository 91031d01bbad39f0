"""The live policy state equals the one rebuilt from the stored decisions and rewards."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from service.models import utcnow
from service.policies import PolicyCache
from service.store import audit, learning

POLICIES = [
    ("thompson", {}),
    ("ucb1", {}),
    ("discounted-thompson", {"gamma": 0.99}),
    ("sliding-window-ucb", {"window": 20}),
    ("glr-thompson", {}),
    ("exp3", {}),
    ("gaussian-thompson", {}),
]


@pytest.mark.parametrize(("policy", "params"), POLICIES, ids=[p for p, _ in POLICIES])
def test_rebuild_equals_live(api, session_factory, policy, params):
    api.experiment(
        policy=policy,
        params=params,
        reward={"click": 1, "conversion": 5},
        burn_in=2,
        floors=0.02,
        reward_window_s=3600,
    )
    rng = np.random.default_rng(0)
    decisions = [api.decide(unit=f"u{i}") for i in range(60)]
    batch = []
    for i, d in enumerate(decisions):
        if rng.random() < 0.5:
            batch.append({"decision_id": d["decision_id"], "kind": "click", "reward_id": f"c{i}"})
        if rng.random() < 0.2:
            batch.append(
                {
                    "decision_id": d["decision_id"],
                    "kind": "conversion",
                    "value": float(rng.choice([rng.uniform(0, 5), 5.0])),
                    "reward_id": f"v{i}",
                }
            )
    for j in range(0, len(batch), 7):  # several updates, some single, one with a retry
        chunk = batch[j : j + 7]
        if j % 2:
            for item in chunk:
                api.post("/v1/experiments/exp/rewards", item, scope="write")
        else:
            api.post(
                "/v1/experiments/exp/rewards/batch", {"rewards": chunk + chunk[:1]}, scope="write"
            )
    with session_factory() as session:  # zero rewards for the rest, an hour later
        learning.settle(session, "exp", PolicyCache(), now=utcnow() + dt.timedelta(hours=2))
    with session_factory() as session:
        result = audit.rebuild(session, "exp")
    assert result.version > 5
    assert result.updates == result.version
    assert result.equal, "rebuilt state differs from the live one"


def test_rebuild_detects_and_repairs_a_corrupted_state(api, session_factory):
    from sqlalchemy import update

    from service.models import PolicyState

    api.experiment()
    d = api.decide()
    api.post("/v1/experiments/exp/rewards", {"decision_id": d["decision_id"]}, scope="write")
    with session_factory() as session:
        live = audit.rebuild(session, "exp").live_state
        broken = {**live, "pulls": [p + 1 for p in live["pulls"]]}
        session.execute(update(PolicyState).values(state=broken))
        session.commit()
        assert not audit.rebuild(session, "exp").equal
        audit.rebuild(session, "exp", write=True)
        assert audit.rebuild(session, "exp").equal
