"""Decisions with items: recommenders loaded from a models directory, both modes, credit.

The arms are trained here on a small synthetic interactions frame (no shared data needed).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from arms.data import Interactions, ItemCatalog
from arms.registry import make_arm
from service.app import create_app
from service.models import ArmStat, Decision, Reward, utcnow
from service.policies import PolicyCache
from service.store import audit, decisions, learning
from tests.service.conftest import Api

N_USERS, N_ITEMS = 30, 40
ARMS = {"pop": ("popularity", {}), "mf": ("mf", {"factors": 4}), "knn": ("item-knn", {})}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three arms trained on synthetic interactions, saved as 'arms train' saves them."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(N_USERS):
        taste = rng.dirichlet(np.ones(N_ITEMS) * 0.3)
        for i in rng.choice(N_ITEMS, size=8, replace=False, p=taste):
            rows.append((u, 100 + int(i), int(rng.integers(1_000_000)), 1.0))
    frame = pd.DataFrame(rows, columns=["user", "item", "timestamp", "value"])
    inter = Interactions.from_frame(frame)
    items = ItemCatalog(np.arange(100, 100 + N_ITEMS), tuple(f"item {i}" for i in range(N_ITEMS)))
    out = tmp_path_factory.mktemp("models")
    for folder, (name, params) in ARMS.items():
        make_arm(name, device="cpu", seed=0, **params).fit(inter, items).save(out / folder)
    (out / "split.json").write_text(json.dumps({"trained_at": "2026-12-01T10:00:00+00:00"}))
    return out


@pytest.fixture
def sapi(db: Any, keys: dict[str, str], models_dir: Path) -> Any:
    settings = db.model_copy(update={"models_dir": models_dir, "max_k": 20})
    with TestClient(create_app(settings)) as client:
        yield Api(client, keys)


@pytest.fixture
def seeded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decision seeds from a fixed generator (the service draws them from `secrets`)."""
    gen = random.Random(1234)
    monkeypatch.setattr(decisions, "new_seed", lambda: gen.getrandbits(63))


def decide(api: Api, key: str = "exp", **body: Any) -> dict[str, Any]:
    r = api.post(f"/v1/experiments/{key}/decisions", {"unit_id": "3", **body}, scope="write")
    assert r.status_code == 201, r.text
    return dict(r.json())


def reward(api: Api, decision: dict[str, Any], key: str = "exp", **body: Any) -> Any:
    return api.post(
        f"/v1/experiments/{key}/rewards",
        {"decision_id": decision["decision_id"], **body},
        scope="write",
    )


def fuse_experiment(api: Api, **spec: Any) -> dict[str, Any]:
    recs = {"a": "pop", "b": "mf", "c": "knn"}
    return api.experiment(mode="fuse", recommenders=recs, reward_window_s=None, **spec)


def test_models_are_listed(sapi):
    models = {m["name"]: m for m in sapi.get("/v1/models").json()["models"]}
    assert set(models) == set(ARMS)
    assert models["mf"]["arm"] == "mf" and models["knn"]["arm"] == "item-knn"
    assert models["pop"]["n_items"] == N_ITEMS
    assert models["pop"]["trained_at"].startswith("2026-12-01T10:00:00")


def test_recommender_not_loaded_is_422(sapi):
    r = sapi.post(
        "/v1/experiments", {"key": "x", "arms": ["a", "b"], "recommenders": {"a": "bert"}}
    )
    assert r.status_code == 422 and "not loaded: bert; loaded: knn, mf, pop" in r.text
    assert sapi.get("/v1/experiments").json()["total"] == 0


def test_allocate_returns_the_chosen_arms_top_k_and_credits_it(sapi, models_dir):
    sapi.experiment(recommenders={"a": "pop", "b": "mf"}, reward_window_s=None)
    from service.recommenders import ItemRequest, load_models, rank

    models = load_models(models_dir)
    req = ItemRequest(5, np.array([], dtype=np.int64), None)
    seen: Counter[str] = Counter()
    for _ in range(12):
        d = decide(sapi, k=5)
        seen[d["arm"]] += 1
        if d["arm"] == "c":  # no recommender: the answer names the arm only
            assert d["items"] is None
            continue
        rec = models[{"a": "pop", "b": "mf"}[d["arm"]]]
        assert [i["item_id"] for i in d["items"]] == rank(rec, "3", req)[0].tolist()
        assert [i["position"] for i in d["items"]] == list(range(5))
        p = d["probabilities"]
        for i in d["items"]:
            assert i["arm"] == d["arm"] and i["source_prob"] == pytest.approx(p[d["arm"]])
            assert p[d["arm"]] - 1e-9 <= i["propensity"] <= 1 + 1e-9
    assert seen["a"] and seen["b"]
    d = next(d for d in (decide(sapi) for _ in range(30)) if d["items"])
    r = reward(sapi, d, item_id=d["items"][2]["item_id"])
    assert r.status_code == 200 and r.json()["status"] == "learned", r.text
    stats = {a["arm"]: a for a in sapi.get("/v1/experiments/exp/stats").json()["arms"]}
    assert stats[d["arm"]]["clicks"] == 1 and stats[d["arm"]]["observations"] == 1


def test_cold_start_and_exclude_and_candidates(sapi, models_dir):
    sapi.experiment(recommenders={"a": "pop", "b": "pop", "c": "pop"})
    from service.recommenders import load_models

    pop = load_models(models_dir)["pop"].arm
    cold = decide(sapi, unit_id="new-visitor", k=4)
    top = pop.top_k([-1], 4, exclude_seen=False)[0][0].tolist()
    assert [i["item_id"] for i in cold["items"]] == top  # the arm's cold-start fallback
    assert all(i["propensity"] == pytest.approx(1.0) for i in cold["items"])
    ex = decide(sapi, unit_id="new-visitor", k=4, exclude=top[:2])
    assert [i["item_id"] for i in ex["items"]][:2] == top[2:4]
    cand = decide(sapi, unit_id="new-visitor", k=2, candidates=[101, 102, 103])
    assert {i["item_id"] for i in cand["items"]} <= {101, 102, 103}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"exclude": [100, 99999]}, "exclude holds 1 item id(s) unknown"),
        ({"candidates": [5]}, "candidates holds 1 item id(s) unknown"),
        ({"k": 21}, "above the configured maximum 20"),
        ({"k": 3, "candidates": [100, 101]}, "above the 2 items of the candidates"),
        ({"k": 0}, "k"),
    ],
)
def test_bad_item_requests_store_nothing(sapi, session_factory, body, message):
    fuse_experiment(sapi)
    r = sapi.post("/v1/experiments/exp/decisions", {"unit_id": "3", **body}, scope="write")
    assert r.status_code == 422 and message in r.json()["detail"], r.text
    with session_factory() as session:
        assert session.query(Decision).count() == 0


def test_fuse_decision_to_credited_reward(sapi, session_factory):
    fuse_experiment(sapi)
    d = decide(sapi, k=6)
    assert d["items"] and len({i["item_id"] for i in d["items"]}) == 6
    assert d["arm"] == d["items"][0]["arm"]
    for i in d["items"]:
        assert 0 < i["source_prob"] <= 1 and 0 < i["propensity"] <= 1
    clicked = d["items"][3]
    r = reward(sapi, d, item_id=clicked["item_id"])
    assert r.status_code == 200 and r.json()["status"] == "learned", r.text
    with session_factory() as session:
        obs = session.query(Reward).filter(Reward.kind == "decision").all()
        assert sorted(o.position for o in obs) == list(range(6))  # one per shown slot
        by_pos = {o.position: o for o in obs}
        for i in d["items"]:
            assert by_pos[i["position"]].arm == ["a", "b", "c"].index(i["arm"])
            assert by_pos[i["position"]].value == (1.0 if i is clicked else 0.0)
        stats = {s.arm: s for s in session.query(ArmStat)}
    source = ["a", "b", "c"].index(clicked["arm"])
    assert stats[source].clicks == 1
    shares = Counter(["a", "b", "c"].index(i["arm"]) for i in d["items"])
    assert {a: s.n_learned for a, s in stats.items() if s.n_learned} == dict(shares)
    # a reward naming a fused decision's item is needed to credit an arm
    r = reward(sapi, d)
    assert r.status_code == 422 and "must name its item_id or position" in r.text


def test_click_on_an_item_not_shown_is_an_unshown_orphan(sapi, session_factory):
    fuse_experiment(sapi)
    d = decide(sapi, k=3)
    other = next(
        i for i in range(100, 100 + N_ITEMS) if i not in {x["item_id"] for x in d["items"]}
    )
    r = reward(sapi, d, item_id=other)
    assert r.status_code == 404 and "was not shown" in r.text
    r = sapi.post(
        "/v1/experiments/exp/rewards/batch",
        {"rewards": [{"decision_id": d["decision_id"], "position": 7, "reward_id": "p7"}]},
        scope="write",
    )
    assert r.json()["results"][0]["status"] == "unshown" and r.json()["learned"] == 0
    with session_factory() as session:
        rows = session.query(Reward).all()
        assert {r.status for r in rows} == {"unshown"} and all(r.orphan for r in rows)


def test_fuse_propensities_match_empirical_frequencies(sapi, session_factory, seeded):
    """Over many fused decisions for one user (the same three lists, fixed weights), the
    share of decisions showing item i at position j matches its logged propensity.

    slot-mix logs the exact propensity of the first slot and an unbiased estimate (32
    replays, standard error at most sqrt(p (1 - p) / 32)) where the arms' lists overlap, so
    the mean of the logged values is compared, within 4 standard errors of both."""
    fuse_experiment(sapi, floors=[0.6, 0.1, 0.1])  # unequal weights, fixed without rewards
    n = 1500
    counts: Counter[tuple[int, int]] = Counter()
    logged: dict[tuple[int, int], list[float]] = {}
    sources: Counter[tuple[int, str]] = Counter()
    source_prob: dict[tuple[int, str], float] = {}
    for _ in range(n):
        d = decide(sapi, k=3)
        for i in d["items"]:
            key = (i["position"], i["item_id"])
            counts[key] += 1
            logged.setdefault(key, []).append(i["propensity"])
            sources[(i["position"], i["arm"])] += 1
            assert source_prob.setdefault((i["position"], i["arm"]), i["source_prob"]) == (
                pytest.approx(i["source_prob"])
            )
    assert len(counts) > 3  # the lists differ: several items per position
    for key, values in logged.items():
        p = float(np.mean(values))
        if key[0] == 0:  # exact for the first slot: one value
            assert np.ptp(values) == pytest.approx(0.0, abs=1e-12)
        sd = np.sqrt(p * (1 - p) / n) + np.sqrt(p * (1 - p) / 32 / len(values))
        assert abs(counts[key] / n - p) < 4 * sd + 1e-9, (key, counts[key] / n, p)
    # the top slot's source is drawn from the weights (the policy's allocation)
    w = d["probabilities"]["a"]
    assert w > 0.6 and source_prob[(0, "a")] == pytest.approx(w)
    assert abs(sources[(0, "a")] / n - w) < 4 * np.sqrt(w * (1 - w) / n)


def reward_random_items(sapi: Api, units: list[str], seed: int, chunk: int) -> list[dict[str, Any]]:
    """A list of 4 for each unit; about 30% of its items clicked, a third of those as
    conversions, sent in reward batches of ``chunk``. Returns the rewards sent."""
    rng = np.random.default_rng(seed)
    batch = []
    for u, unit in enumerate(units):
        d = decide(sapi, unit_id=unit, k=4)
        for i in d["items"]:
            if rng.random() < 0.3:
                kind = "conversion" if rng.random() < 0.3 else "click"
                batch.append(
                    {
                        "decision_id": d["decision_id"],
                        "kind": kind,
                        "item_id": i["item_id"],
                        "reward_id": f"{u}-{i['position']}-{kind}",
                    }
                )
    for j in range(0, len(batch), chunk):
        r = sapi.post(
            "/v1/experiments/exp/rewards/batch", {"rewards": batch[j : j + chunk]}, scope="write"
        )
        assert r.status_code == 200, r.text
    return batch


@pytest.mark.parametrize("window", [None, 3600.0])
def test_fuse_rebuild_equals_live(sapi, session_factory, seeded, window):
    recs = {"a": "pop", "b": "mf", "c": "knn"}
    sapi.experiment(
        mode="fuse", recommenders=recs, reward_window_s=window, reward={"click": 1, "conversion": 5}
    )
    batch = reward_random_items(sapi, [str(u % N_USERS) for u in range(40)], seed=3, chunk=9)
    if window is not None:
        with session_factory() as session:
            learned = learning.settle(
                session, "exp", PolicyCache(), now=utcnow() + dt.timedelta(hours=2)
            )
        assert learned == 40 * 4  # every shown slot of every decision, once
    with session_factory() as session:
        result = audit.rebuild(session, "exp")
        n_obs = session.query(Reward).filter(Reward.kind == "decision").count()
    # without a window a decision is learned at its first reward (unrewarded ones never)
    rewarded = len({b["decision_id"] for b in batch})
    assert n_obs == 4 * (40 if window is not None else rewarded) and 0 < rewarded < 40
    assert result.observations == n_obs
    assert result.version >= 1 and result.updates == result.version
    assert result.equal, "rebuilt state differs from the live one"


def test_serve_refuses_a_models_folder_without_arms(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BANDIT_FUSION_DATABASE_URL", raising=False)
    monkeypatch.setenv("BANDIT_FUSION_MODELS_DIR", "")  # restored afterwards (serve sets it)
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(app, ["serve", "--models", str(tmp_path / "empty"), "--no-migrate"])
    assert r.exit_code == 2 and "holds no saved arms" in r.output


def test_grouped_decisions_with_items_skip_the_plain_pass(sapi, session_factory, backend):
    """With group commit (PostgreSQL's default), the writer reads an items experiment once,
    says it must be scored, and its later decisions go straight to scoring: one pass
    through the writer each (its row), not two. A plain experiment stays in the group."""
    writer = sapi.client.app.state.decision_writer
    if backend != "postgresql":
        assert writer is None
        return
    fuse_experiment(sapi)
    sapi.experiment("plain")
    asked: list[str] = []
    plain = writer.decide
    writer.decide = lambda key, body: asked.append(key) or plain(key, body)
    made = [decide(sapi, unit_id=str(u))["decision_id"] for u in range(4)]
    made += [decide(sapi, "plain", unit_id=str(u))["decision_id"] for u in range(2)]
    assert asked == ["exp", "plain", "plain"]
    with session_factory() as session:
        stored = session.query(Decision).filter(Decision.id.in_(made)).all()
    assert len(stored) == 6
    assert sum(d.items is not None for d in stored) == 4
