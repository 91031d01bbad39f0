"""Optional position correction of fuse experiments: the examination estimate, the clipped
correction of each slot's click, and rebuild equal to live."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from bandit.fusion.position import Examination
from service.models import PolicyState, Reward, utcnow
from service.policies import PolicyCache
from service.store import audit, learning
from tests.service.test_serving import (  # noqa: F401 (fixtures)
    decide,
    models_dir,
    sapi,
    seeded,
)

RECS = {"a": "pop", "b": "mf", "c": "knn"}
THETA = np.array([1.0, 0.5, 0.25])  # examination by position


def round_of(api: Any, rng: np.random.Generator, n: int, tag: str) -> list[dict[str, Any]]:
    """``n`` fused decisions of 3 items; clicks drawn from the position-based model."""
    batch: list[dict[str, Any]] = []
    for u in range(n):
        d = decide(api, unit_id=str(u % 30), k=3)
        for i in d["items"]:
            attraction = 0.2 + 0.7 * (i["item_id"] % 7) / 6
            if rng.random() < THETA[i["position"]] * attraction:
                batch.append(
                    {
                        "decision_id": d["decision_id"],
                        "item_id": i["item_id"],
                        "reward_id": f"{tag}{u}-{i['position']}",
                    }
                )
    for j in range(0, len(batch), 100):
        r = api.post(
            "/v1/experiments/exp/rewards/batch", {"rewards": batch[j : j + 100]}, scope="write"
        )
        assert r.status_code == 200, r.text
    return batch


def test_bad_position_correction_is_422(sapi):  # noqa: F811
    body = {"key": "x", "arms": ["a", "b"], "position_correction": {}}
    r = sapi.post("/v1/experiments", body)
    assert r.status_code == 422 and "mode is not 'fuse'" in r.text
    body = {
        "key": "x",
        "arms": list(RECS),
        "mode": "fuse",
        "recommenders": RECS,
        "position_correction": {"max_weight": 0.5},
    }
    r = sapi.post("/v1/experiments", body)
    assert r.status_code == 422 and "max_weight" in r.text
    assert sapi.get("/v1/experiments").json()["total"] == 0


@pytest.mark.slow
def test_corrected_clicks_follow_the_estimated_examination(sapi, session_factory, seeded):  # noqa: F811
    cfg = {"max_weight": 3.0, "window": 2000, "refresh": 1, "min_decisions": 100}
    out = sapi.experiment(
        mode="fuse", recommenders=RECS, reward_window_s=3600.0, position_correction=cfg
    )
    assert out["position_correction"] == cfg
    rng = np.random.default_rng(21)
    cache = PolicyCache()
    hour = dt.timedelta(hours=1)
    round_of(sapi, rng, 400, "r1")
    with session_factory() as session:  # nothing learned before: no estimate, no correction
        # the window closes for the decisions so far (not for the next round's)
        assert learning.settle(session, "exp", cache, now=utcnow() + hour) == 400 * 3
        first = session.query(Reward).filter(Reward.kind == "decision").all()
        assert {r.normalized for r in first} <= {0.0, 1.0}
        assert session.scalar(select(PolicyState.examination)) is None
    round_of(sapi, rng, 150, "r2")
    with session_factory() as session:
        assert learning.settle(session, "exp", cache, now=utcnow() + 2 * hour) == 450
        stored = session.scalar(select(PolicyState.examination))
        rows = session.query(Reward).filter(Reward.kind == "decision", Reward.update_seq == 2).all()
    assert stored["version"] == 1 and stored["decisions"] == 400
    relative = np.asarray(stored["relative"])
    # the estimate recovers the simulated examination (400 lists of 3: loose tolerance)
    assert relative[0] == 1.0
    assert abs(relative[1] - THETA[1]) < 0.15 and abs(relative[2] - THETA[2]) < 0.12
    w = Examination(relative, 0, True).weights(3, 3.0)
    assert w.max() <= 3.0
    expected = w / w.max()
    clicked = [r for r in rows if r.value > 0]
    assert len(clicked) > 50
    for r in clicked:
        assert r.normalized == pytest.approx(expected[r.position])  # corrected, clipped
    assert all(r.normalized == 0.0 for r in rows if r.value == 0)
    with session_factory() as session:
        result = audit.rebuild(session, "exp")
    assert result.updates == result.version == 2
    assert result.equal, "rebuilt state differs from the live one"
