"""Deterministic fusers in the service: weighted-score and weighted-rrf with fractional
credit, their parameters, and rebuild equal to live."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest

from service.models import Reward, utcnow
from service.policies import PolicyCache
from service.store import audit, learning
from tests.service.test_serving import (  # noqa: F401 (fixtures)
    decide,
    models_dir,
    reward,
    reward_random_items,
    sapi,
)

RECS = {"a": "pop", "b": "mf", "c": "knn"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"fuser": "weighted-rrf", "fuser_params": {"c": -1}}, "in [0, 1e+06]"),
        ({"fuser": "weighted-rrf", "fuser_params": {"zz": 1}}, "unknown parameter 'zz'"),
        ({"fuser": "weighted-score", "fuser_params": {"max_per_category": 2}}, "categories"),
        ({"fuser": "slot-mix", "fuser_params": {"n_samples": 0}}, "invalid fuser_params"),
        ({"fuser": "team-draft", "fuser_params": {"n_samples": 10**9}}, "in [0, 1000]"),
        ({"fuser": "weighted-rrf", "fuser_params": {"c": "x"}}, "must be a number"),
        ({"fuser": "nope"}, "cannot be served"),
    ],
)
def test_bad_fuser_params_are_422(sapi, spec, message):  # noqa: F811
    body = {"key": "x", "arms": list(RECS), "mode": "fuse", "recommenders": RECS, **spec}
    r = sapi.post("/v1/experiments", body)
    assert r.status_code == 422 and message in r.text, r.text
    assert sapi.get("/v1/experiments").json()["total"] == 0
    r = sapi.post("/v1/experiments", {"key": "y", "arms": ["a", "b"], "fuser_params": {"c": 1}})
    assert r.status_code == 422 and "mode is not 'fuse'" in r.text


@pytest.mark.parametrize("fuser", ["weighted-score", "weighted-rrf"])
def test_click_is_credited_by_score_share(sapi, session_factory, fuser):  # noqa: F811
    params = {"c": 5.0} if fuser == "weighted-rrf" else None
    out = sapi.experiment(
        mode="fuse", recommenders=RECS, reward_window_s=None, fuser=fuser, fuser_params=params
    )
    assert out["fuser"] == fuser and out["fuser_params"] == params
    d = decide(sapi, k=6)
    for i in d["items"]:
        assert i["source_prob"] == 1.0 and i["propensity"] == 1.0
        assert sum(i["credit"].values()) == pytest.approx(1.0)
        assert i["arm"] == max(i["credit"], key=lambda a: (i["credit"][a], -"abc".index(a)))
    shared = [i for i in d["items"] if len(i["credit"]) > 1]
    assert shared, "the three lists overlap: some item is ranked by several arms"
    clicked = shared[0]
    r = reward(sapi, d, item_id=clicked["item_id"])
    assert r.status_code == 200 and r.json()["status"] == "learned", r.text
    with session_factory() as session:
        obs = session.query(Reward).filter(Reward.kind == "decision").all()
    per_slot: dict[int, dict[int, float]] = defaultdict(dict)
    for o in obs:
        per_slot[o.position][o.arm] = o.normalized
    assert sorted(per_slot) == list(range(6))
    for i in d["items"]:
        want = {"abc".index(a): w for a, w in i["credit"].items()}
        got = per_slot[i["position"]]
        assert set(got) == set(want)
        clicked_here = i["position"] == clicked["position"]
        for a, w in want.items():
            assert got[a] == pytest.approx(w if clicked_here else 0.0)
    # the weights of the clicked item sum to the click
    assert sum(per_slot[clicked["position"]].values()) == pytest.approx(1.0)
    health = sapi.get("/v1/experiments/exp/health").json()
    assert health["srm"]["dof"] == 0 and not health["srm"]["mismatch"]


@pytest.mark.parametrize("window", [None, 3600.0])
def test_scored_fuser_rebuild_equals_live(sapi, session_factory, window):  # noqa: F811
    sapi.experiment(
        mode="fuse",
        recommenders=RECS,
        reward_window_s=window,
        fuser="weighted-rrf",
        fuser_params={"c": 2},
        reward={"click": 1, "conversion": 5},
    )
    reward_random_items(sapi, [str(u) for u in range(30)], seed=8, chunk=7)
    if window is not None:
        with session_factory() as session:
            learning.settle(session, "exp", PolicyCache(), now=utcnow() + dt.timedelta(hours=2))
    with session_factory() as session:
        result = audit.rebuild(session, "exp")
        rows = session.query(Reward).filter(Reward.kind == "decision").all()
    assert result.observations == len(rows) > 4 * 10
    assert len(rows) > len({(r.decision_id, r.position) for r in rows})  # some slots split
    assert result.updates == result.version >= 1
    assert result.equal, "rebuilt state differs from the live one"


def test_shared_item_of_a_retired_source_still_credits_the_other_arms(sapi, session_factory):  # noqa: F811
    sapi.experiment(mode="fuse", recommenders=RECS, reward_window_s=None, fuser="weighted-rrf")
    d = decide(sapi, k=6)
    shared = next(i for i in d["items"] if len(i["credit"]) > 1)
    assert sapi.post(f"/v1/experiments/exp/arms/{shared['arm']}/retire").status_code == 200
    r = reward(sapi, d, item_id=shared["item_id"])
    assert r.status_code == 200 and r.json()["status"] == "learned", r.text
    gone = "abc".index(shared["arm"])
    with session_factory() as session:
        rows = [
            (r.arm, r.position, r.normalized)
            for r in session.query(Reward).filter(Reward.kind == "decision")
        ]
        result = audit.rebuild(session, "exp")
    here = {a: n for a, p, n in rows if p == shared["position"]}
    want = {"abc".index(a): w for a, w in shared["credit"].items() if a != shared["arm"]}
    assert gone not in {a for a, _, _ in rows} and here == pytest.approx(want)
    assert result.equal
