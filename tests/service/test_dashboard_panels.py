"""Experiment-page panels: decision, slots (fuse) and counterfactual; numbers checked against
``/stats`` and against computations from the decisions the API returned."""

from __future__ import annotations

import html as htmllib
import re
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bandit.inference import gain_over_equal_split, value_remaining
from service import web_counterfactual
from service.app import create_app
from service.models import Decision
from service.store.common import load
from tests.service.conftest import Api
from tests.service.test_dashboard import clicked, drive, login
from tests.service.test_serving import fuse_experiment, models_dir  # noqa: F401 (fixture)

N_ITEMS_SHOWN = 4


def attr(html: str, element_id: str, name: str) -> str:
    m = re.search(rf'id="{element_id}"[^>]*\b{name}="([^"]*)"', html)
    assert m is not None, (element_id, name)
    return htmllib.unescape(m.group(1))


def test_decision_panel_equals_the_stats(api, session_factory):
    drive(api, session_factory, n=90)
    login(api.client, api.keys["read"])
    page = api.client.get("/dashboard/experiments/exp").text
    stats = api.get("/v1/experiments/exp/stats").json()["arms"]
    n = np.array([a["observations"] for a in stats], dtype=float)
    sums = np.array([a["observations"] * a["mean_reward"] for a in stats])
    # rewards are clicks (0 or 1): the squares are the values
    split = gain_over_equal_split(n, sums, sums)
    assert float(attr(page, "equal-split", "data-actual")) == pytest.approx(split.actual)
    assert float(attr(page, "equal-split", "data-equal")) == pytest.approx(split.equal_split)
    assert float(attr(page, "equal-split", "data-gained")) == pytest.approx(split.gained)
    champion = max(range(3), key=lambda i: stats[i]["prob_best"])
    assert attr(page, "value-remaining", "data-champion") == stats[champion]["arm"]
    vr = value_remaining(1 + sums, 1 + n - sums, 0.95, champion=champion)
    assert float(attr(page, "value-remaining", "data-rel")) == pytest.approx(vr.relative)
    assert float(attr(page, "value-remaining", "data-abs")) == pytest.approx(vr.absolute)
    little = float(attr(page, "value-remaining", "data-rel")) < 0.01
    assert ("little value left" in page) == little
    assert ("Gained against an equal split" in page) == (split.gained >= 0)


def test_empty_experiment_renders_every_panel(api):
    api.experiment(key="empty", reward_window_s=60)
    login(api.client, api.keys["read"])
    assert api.client.get("/dashboard/experiments/empty").status_code == 200
    text = evaluated_page(api, "/dashboard/experiments/empty")
    assert "No observation yet." in text and "No settled decision yet." in text
    assert 'id="slots"' not in text  # allocate experiment: no slots panel


def evaluated_page(api: Any, url: str) -> str:
    """``url`` once the counterfactual evaluation its first view queued is done."""
    first = api.client.get(url).text
    api.client.app.state.counterfactual_cache.wait(60)  # type: ignore[attr-defined]
    assert 'id="counterfactual"' in first
    return str(api.client.get(url).text)


def _snips(probs: np.ndarray, arms: np.ndarray, rewards: np.ndarray, pi: np.ndarray) -> float:
    w = pi[arms] / probs[np.arange(len(arms)), arms]
    return float(np.sum(w * rewards) / np.sum(w))


def test_counterfactual_equals_a_direct_computation(api, session_factory, monkeypatch):
    api.experiment(key="cf", reward={"click": 1}, reward_window_s=None)
    decisions = [api.decide(key="cf", unit=f"u{i}") for i in range(80)]
    items = [
        {"decision_id": d["decision_id"], "kind": "click", "reward_id": f"c{i}"}
        for i, d in enumerate(decisions)
        if clicked(d["arm"], i)
    ]
    for j in range(0, len(items), 10):
        api.post("/v1/experiments/cf/rewards/batch", {"rewards": items[j : j + 10]}, scope="write")
    calls: list[int] = []
    real = web_counterfactual.counterfactual
    monkeypatch.setattr(
        web_counterfactual, "counterfactual", lambda *a: calls.append(1) or real(*a)
    )
    login(api.client, api.keys["read"])
    page = evaluated_page(api, "/dashboard/experiments/cf")
    cache = api.client.app.state.counterfactual_cache  # type: ignore[attr-defined]
    arm_names = ["a", "b", "c"]
    probs = np.array([[d["probabilities"][a] for a in arm_names] for d in decisions])
    arms = np.array([arm_names.index(d["arm"]) for d in decisions])
    rewards = np.array([1.0 if clicked(d["arm"], i) else 0.0 for i, d in enumerate(decisions)])
    values = {
        name: float(v)
        for name, v in re.findall(
            r'data-name="([^"]+)">.*?data-field="snips" data-value="([^"]+)"', page, re.S
        )
    }
    assert values["logged (what it earned)"] == pytest.approx(rewards.mean())
    assert values["uniform"] == pytest.approx(_snips(probs, arms, rewards, np.full(3, 1 / 3)))
    for j, name in enumerate(arm_names):
        if (arms == j).any():
            assert values[f"only {name}"] == pytest.approx(
                _snips(probs, arms, rewards, np.eye(3)[j])
            )
    best = max((n for n in values if n.startswith("only ")), key=values.__getitem__)
    assert re.search(rf'data-name="{best}">\s*<td>{best} <span class="badge">best single arm', page)
    assert "the 80 decisions" in page
    # cached: a reload computes nothing; a new policy version recomputes once the cached
    # answer is older than fresh_s
    api.client.get("/dashboard/experiments/cf")
    assert len(calls) == 1
    d = api.decide(key="cf", unit="late")
    api.post(
        "/v1/experiments/cf/rewards",
        {"decision_id": d["decision_id"], "kind": "click", "reward_id": "late"},
        scope="write",
    )
    assert "the 80 decisions" in api.client.get("/dashboard/experiments/cf").text
    assert len(calls) == 1
    cache.fresh_s = 0.0  # outdated now: the page keeps the old answer while it is redone
    assert "the 81 decisions" in evaluated_page(api, "/dashboard/experiments/cf")
    assert len(calls) == 2


def test_counterfactual_is_capped_to_the_newest_settled_decisions(
    api, session_factory, monkeypatch
):
    monkeypatch.setattr(web_counterfactual, "CAP", 25)
    drive(api, session_factory, n=60)  # window 60 s, settled by drive()
    login(api.client, api.keys["read"])
    page = evaluated_page(api, "/dashboard/experiments/exp")
    assert "the 25 newest decisions" in page
    # only decisions made before the settled watermark count: move it back to the 50th one
    monkeypatch.setattr(web_counterfactual, "CAP", 1000)
    with session_factory() as session:
        exp, state = load(session, "exp")
        made = session.scalars(
            select(Decision.created_at)
            .where(Decision.experiment_id == exp.id)
            .order_by(Decision.created_at)
        ).all()
        state.settled_until = made[49]
        cf = web_counterfactual.counterfactual(session, exp, state)
        session.rollback()
    assert len(set(made)) == 60 and cf.decisions == 49 and not cf.capped


@pytest.fixture
def sapi(db: Any, keys: dict[str, str], models_dir: Any) -> Any:  # noqa: F811
    settings = db.model_copy(update={"models_dir": models_dir, "max_k": 20})
    with TestClient(create_app(settings)) as client:
        yield Api(client, keys)


def test_slots_panel_of_a_fused_experiment(sapi):
    fuse_experiment(sapi)
    rng = np.random.default_rng(5)
    shown: list[dict[str, Any]] = []
    batch = []
    for u in range(40):
        d = sapi.post(
            "/v1/experiments/exp/decisions", {"unit_id": str(u % 30), "k": 4}, scope="write"
        ).json()
        shown.append(d)
        for it in d["items"]:
            if rng.random() < 0.6 / (1 + it["position"]):
                batch.append(
                    {
                        "decision_id": d["decision_id"],
                        "kind": "click",
                        "item_id": it["item_id"],
                        "reward_id": f"{u}-{it['position']}",
                    }
                )
    r = sapi.post("/v1/experiments/exp/rewards/batch", {"rewards": batch}, scope="write")
    assert r.status_code == 200, r.text
    login(sapi.client, sapi.keys["read"])
    page = sapi.client.get("/dashboard/experiments/exp").text
    assert "Fused lists are not evaluated by this panel" in page
    stats = {a["arm"]: a for a in sapi.get("/v1/experiments/exp/stats").json()["arms"]}
    by_pos = dict(re.findall(r'<tr data-position="(\d+)">(.*?)</tr>', page, re.S))
    assert sorted(int(p) for p in by_pos) == list(range(N_ITEMS_SHOWN))
    clicked_at = {(b["decision_id"], b["item_id"]) for b in batch}
    total_clicks = dict.fromkeys(stats, 0)
    for pos, body in by_pos.items():
        p = int(pos)
        items = [next(i for i in d["items"] if i["position"] == p) for d in shown]
        cells = re.findall(r'data-arm="(\w+)" data-field="(\w+)">([^<]*)<', body)
        share = {arm: float(v) for arm, f, v in cells if f == "share"}
        clicks = {arm: int(v) for arm, f, v in cells if f == "clicks"}
        for arm in stats:
            placed = [i for i in items if i["arm"] == arm]
            assert share[arm] == pytest.approx(len(placed) / len(items), abs=5e-4)
            mine = sum(
                (d["decision_id"], i["item_id"]) in clicked_at
                for d, i in zip(shown, items, strict=True)
                if i["arm"] == arm
            )
            assert clicks[arm] == mine
            total_clicks[arm] += clicks[arm]
        rate = re.search(r'data-field="click_rate">([^<]*)<', body)
        assert rate is not None
        hits = sum(
            (d["decision_id"], i["item_id"]) in clicked_at
            for d, i in zip(shown, items, strict=True)
        )
        assert float(rate.group(1)) == pytest.approx(hits / len(items), abs=5e-5)
        assert int(re.search(r'data-field="impressions">(\d+)<', body).group(1)) == 40
    assert total_clicks == {arm: s["clicks"] for arm, s in stats.items()}
    assert 'id="chart-slots"' in page and 'id="slots-data"' in page


def test_an_arm_never_served_has_no_estimate(api, session_factory):
    api.experiment(key="tiny", reward_window_s=None)
    for i in range(2):
        d = api.decide(key="tiny", unit=f"u{i}")
        r = api.post(
            "/v1/experiments/tiny/rewards",
            {"decision_id": d["decision_id"], "kind": "click", "reward_id": f"r{i}"},
            scope="write",
        )
        assert r.status_code == 200
    with session_factory() as session:
        exp, state = load(session, "tiny")
        cf = web_counterfactual.counterfactual(session, exp, state)
    singles = [r for r in cf.rows if r.kind == "arm"]
    unserved = [r for r in singles if r.snips is None]
    assert len(unserved) >= 1 and all(r.ess == 0.0 and not r.best_arm for r in unserved)
    assert sum(r.best_arm for r in singles) == 1
    assert all(r.snips is not None for r in cf.rows if r.kind != "arm")
    login(api.client, api.keys["read"])
    page = evaluated_page(api, "/dashboard/experiments/tiny")
    assert "never served in these decisions" in page and "nan" not in page.lower()
