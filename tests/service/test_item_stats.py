"""/stats per arm (items shown, credited clicks and conversions, slot share) and per
position (the click rate), on lists answered in both modes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from tests.service.test_serving import (  # noqa: F401 (fixtures)
    decide,
    fuse_experiment,
    models_dir,
    reward,
    sapi,
)


@pytest.mark.parametrize("mode", ["fuse", "allocate"])
def test_item_stats_match_the_answered_lists_and_rewards(sapi, mode):  # noqa: F811
    if mode == "fuse":
        fuse_experiment(sapi, reward={"click": 1, "conversion": 3})
    else:
        sapi.experiment(
            recommenders={"a": "pop", "b": "mf", "c": "knn"},
            reward_window_s=None,
            reward={"click": 1, "conversion": 3},
        )
    rng = np.random.default_rng(11)
    shown: Counter[str] = Counter()
    clicks: Counter[str] = Counter()
    conversions: Counter[str] = Counter()
    pos_shown: Counter[int] = Counter()
    pos_clicked: Counter[int] = Counter()
    for u in range(25):
        k = 3 + u % 3
        d = decide(sapi, unit_id=str(u), k=k)
        assert len(d["items"]) == k
        shown.update(i["arm"] for i in d["items"])
        pos_shown.update(i["position"] for i in d["items"])
        clicked = [i for i in d["items"] if rng.random() < 0.3]
        for i in clicked:
            r = reward(sapi, d, item_id=i["item_id"], reward_id=f"c{u}-{i['position']}")
            assert r.status_code == 200, r.text
            clicks[i["arm"]] += 1
            pos_clicked[i["position"]] += 1
        if clicked:  # a repeated click on the same item: counted, one decision per position
            i = clicked[0]
            reward(sapi, d, item_id=i["item_id"], reward_id=f"again{u}")
            clicks[i["arm"]] += 1
            top = d["items"][0]
            reward(sapi, d, kind="conversion", position=0, reward_id=f"v{u}")
            conversions[top["arm"]] += 1
        # not credited: a zero-valued click, and a position that was not shown
        reward(sapi, d, position=1, value=0, reward_id=f"z{u}")
        reward(sapi, d, position=9, reward_id=f"x{u}")
    st = sapi.get("/v1/experiments/exp/stats").json()
    arms = {a["arm"]: a for a in st["arms"]}
    total = sum(shown.values())
    for name in "abc":
        a = arms[name]
        assert a["items_shown"] == shown[name]
        assert a["item_clicks"] == clicks[name]
        assert a["item_conversions"] == conversions[name]
        assert a["slot_share"] == pytest.approx(shown[name] / total)
    assert sum(clicks.values()) > 10
    curve = st["positions"]
    assert [p["position"] for p in curve] == list(range(5))
    for p in curve:
        j = p["position"]
        assert p["shown"] == pos_shown[j] and p["clicked"] == pos_clicked[j]
        assert p["click_rate"] == pytest.approx(pos_clicked[j] / pos_shown[j])


def test_stats_without_items_have_no_positions(api):
    api.experiment()
    api.decide()
    st = api.get("/v1/experiments/exp/stats").json()
    assert st["positions"] == []
    assert all(a["items_shown"] == 0 and a["slot_share"] == 0.0 for a in st["arms"])
