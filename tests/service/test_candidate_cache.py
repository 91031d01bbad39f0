"""The candidate cache: answers equal the live lists; what it cannot answer is scored live."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from service.app import create_app
from service.batching import DirectRanker, RankJob
from service.candidate_cache import build_cache, cached_depths, with_caches
from service.errors import Invalid
from service.models import Decision
from service.recommenders import ItemRequest, Recommender, rank_rows
from service.serving import backing, serve_allocate, serve_fuse
from tests.service import test_batching
from tests.service.models_fixture import FIRST_ITEM, N_ITEMS, N_USERS
from tests.service.test_batching import _concurrent_decisions, same

NO_ITEMS = np.zeros(0, np.int64)

# the same trained arms as the batching tests (module-scoped fixtures)
models_dir = test_batching.models_dir
models = test_batching.models


def live(rec: Recommender, unit: str, req: ItemRequest) -> Any:
    return rank_rows(rec, [unit], [req])[0]


def test_depth_buckets():
    assert cached_depths(1000, 64) == [16, 32, 64]
    assert cached_depths(1000, 100) == [16, 32, 64]
    assert cached_depths(90, 128) == [16, 32, 64, 90]
    assert cached_depths(10, 64) == [10]
    assert cached_depths(1000, 8) == []


def test_every_user_gets_the_live_list(models):
    """Every known user, two unknown units, k from 1 to 20, with and without exclude (up to
    40 items, so every cached depth is asked for)."""
    rng = np.random.default_rng(3)
    for rec in models.values():
        cache = build_cache(rec, 64, 10_000)
        units = [str(u) for u in rec.arm.user_ids_] + ["visitor", str(N_USERS + 7)]
        answered = 0
        for unit in units:
            for n_ex in (0, 3, 12, 40):
                k = int(rng.integers(1, 21))
                exclude = rng.choice(N_ITEMS, n_ex, replace=False).astype(np.int64) + FIRST_ITEM
                req = ItemRequest(k, exclude, None)
                got = cache.lookup(rec, unit, req)
                assert got is not None, (rec.name, unit, k, n_ex)  # all within depth 64
                answered += not isinstance(got, Exception)
                assert same(got, live(rec, unit, req)), (rec.name, unit, k, n_ex)
        assert answered > 0.9 * 4 * len(units)  # the comparison is not about errors


def test_too_few_items_left_is_the_live_error(models):
    rec = models["pop"]
    cache = build_cache(rec, 128, 10_000)  # every item: the depth bucket is the catalogue
    req = ItemRequest(N_ITEMS - 1, NO_ITEMS, None)
    got = cache.lookup(rec, "0", req)
    assert isinstance(got, Invalid)
    assert same(got, live(rec, "0", req))


def test_what_the_cache_does_not_hold_is_scored_live(models):
    rec = models["mf"]
    cache = build_cache(rec, 32, 10)
    cands = np.arange(FIRST_ITEM, FIRST_ITEM + 30, dtype=np.int64)
    assert cache.lookup(rec, "1", ItemRequest(5, NO_ITEMS, cands)) is None  # candidates
    deep = ItemRequest(30, np.arange(FIRST_ITEM, FIRST_ITEM + 5, dtype=np.int64), None)
    assert cache.lookup(rec, "1", deep) is None  # 35 items: depth 64, not cached
    beyond = str(rec.arm.user_ids_[10])  # an 11th known user: beyond max_users
    assert cache.lookup(rec, beyond, ItemRequest(5, NO_ITEMS, None)) is None
    assert same(
        cache.lookup(rec, "visitor", ItemRequest(5, NO_ITEMS, None)),
        live(rec, "x", ItemRequest(5, NO_ITEMS, None)),
    )
    # the rankers: cached lists and live ones, each in its place
    cached_rec = with_caches({"mf": rec}, 32, 10)["mf"]
    jobs = [
        RankJob(cached_rec, "1", ItemRequest(5, NO_ITEMS, None)),
        RankJob(cached_rec, beyond, ItemRequest(5, NO_ITEMS, None)),
        RankJob(cached_rec, "2", ItemRequest(4, NO_ITEMS, cands)),
    ]
    ranker = DirectRanker()
    got = ranker.rank(jobs)
    assert ranker.batch_size == 1  # two were scored live
    assert all(same(g, live(rec, j.unit_id, j.req)) for g, j in zip(got, jobs, strict=True))
    ranker.rank(jobs[:1])
    assert ranker.batch_size == 0  # all cached: nothing scored


def test_memory_is_the_rows_times_the_depths(models):
    rec = models["knn"]
    cache = build_cache(rec, 64, 10_000)
    rows = len(rec.arm.user_ids_) + 1
    assert cache.nbytes == rows * (16 + 32 + 64) * 8 + rows * 3 * 4 + len(rec.arm.user_ids_) * 8
    assert with_caches(models, 0, 10)["knn"].cache is None


def test_cached_decisions_equal_their_replay(db, keys, models_dir, models, session_factory):
    """Concurrent decisions (fuse and allocate) answered by a service with the cache; each
    stored list equals the list computed again, live, from its logged seed; a reload builds
    the new set's caches."""
    from fastapi.testclient import TestClient

    settings = db.model_copy(update={"models_dir": models_dir, "models_device": "cpu"})
    app = create_app(settings)
    assert all(r.cache is not None for r in app.state.models.values())
    recs = {"a": "mf", "b": "bert", "c": "pop", "d": "knn"}
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    with TestClient(app) as client:
        for key, mode in (("f", "fuse"), ("al", "allocate")):
            body = {"key": key, "arms": list(recs), "mode": mode, "recommenders": recs}
            assert client.post("/v1/experiments", json=body, headers=admin).status_code == 201
        rng = np.random.default_rng(4)
        bodies = []
        for i in range(40):
            body: dict[str, Any] = {"unit_id": str(rng.integers(N_USERS + 5)), "k": 5}
            if i % 3 == 0:
                body["exclude"] = [FIRST_ITEM + int(x) for x in rng.choice(N_ITEMS, 3, False)]
            if i % 10 == 0:
                body["candidates"] = [FIRST_ITEM + x for x in range(20)]
            bodies.append(("f" if i % 2 else "al", body))
        answers = asyncio.run(_concurrent_decisions(app, keys["write"], bodies))
        assert [a.status_code for a in answers] == [201] * len(bodies), answers[0].text
        scored = ["candidates" in b for _, b in bodies]
        assert ["X-Batch-Size" in a.headers for a in answers] == scored
        old = app.state.models
        assert client.post("/v1/admin/models/reload", headers=admin).status_code == 200
        new = app.state.models
        assert all(new[n].cache is not None and new[n].cache is not old[n].cache for n in new)
    by_id = {a.json()["decision_id"]: (k, b) for a, (k, b) in zip(answers, bodies, strict=True)}
    with session_factory() as session:
        stored = session.query(Decision).all()
    assert len(stored) == len(bodies)
    backed = backing([recs[a] for a in recs], models)  # no cache: scored live
    for d in stored:
        key, body = by_id[d.id]
        cands = body.get("candidates")
        req = ItemRequest(
            5,
            np.asarray(body.get("exclude", []), np.int64),
            None if cands is None else np.asarray(cands, np.int64),
        )
        if key == "f":
            served = serve_fuse(backed, "slot-mix", d.probabilities, d.seed, d.unit_id, req, 100)
        else:
            served = serve_allocate(backed, d.arm, d.probabilities, d.unit_id, req, 100)
        assert [i.as_json() for i in served.items] == d.items
