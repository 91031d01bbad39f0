"""Micro-batching: lists scored together equal lists scored alone; the batcher's waits."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from service.app import create_app
from service.batching import DirectRanker, MicroBatcher, RankJob, score_jobs
from service.errors import Invalid
from service.models import Decision
from service.recommenders import ItemRequest, Recommender, load_models, rank
from service.serving import backing, serve_allocate, serve_fuse
from tests.service.models_fixture import FIRST_ITEM, N_ITEMS, N_USERS, write_models

NO_ITEMS = np.zeros(0, np.int64)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models")
    return write_models(out, tmp_path_factory.mktemp("bert-cache"))


@pytest.fixture(scope="module")
def models(models_dir: Path) -> dict[str, Recommender]:
    return load_models(models_dir)


def random_jobs(models: dict[str, Recommender], n: int, seed: int) -> list[RankJob]:
    """Decisions' lists as they come: known and cold users, various k, exclusions, two
    shared candidate sets."""
    rng = np.random.default_rng(seed)
    shared = [np.sort(rng.choice(N_ITEMS, 25, replace=False)) + FIRST_ITEM for _ in range(2)]
    jobs = []
    for _ in range(n):
        rec = models[str(rng.choice(list(models)))]
        unit = str(rng.integers(N_USERS + 10)) if rng.random() < 0.8 else "visitor"
        k = int(rng.integers(1, 12))
        exclude = rng.choice(N_ITEMS, int(rng.integers(0, 8)), replace=False) + FIRST_ITEM
        cands = shared[int(rng.integers(2))] if rng.random() < 0.3 else None
        jobs.append(RankJob(rec, unit, ItemRequest(k, exclude.astype(np.int64), cands)))
    return jobs


def same(a: Any, b: Any) -> bool:
    """The same list (or error); scores equal up to float32 rounding: a matrix product
    may round differently with another batch shape (BLAS picks kernels by size)."""
    if isinstance(a, Exception) or isinstance(b, Exception):
        return type(a) is type(b) and str(a) == str(b)
    return bool(np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1], rtol=1e-5, atol=1e-7))


def test_rows_scored_together_equal_rows_scored_alone(models):
    jobs = random_jobs(models, 300, seed=1)
    together = score_jobs(jobs)
    for job, got in zip(jobs, together, strict=True):
        try:
            alone: Any = rank(job.rec, job.unit_id, job.req)
        except Invalid as err:
            alone = err
        assert same(got, alone), (job.rec.name, job.unit_id, job.req)
    lists = [r for r in together if not isinstance(r, Exception)]
    assert len(lists) > 250  # the comparison is not about errors
    for (ids, scores), job in zip(together, jobs, strict=True):  # type: ignore[misc]
        assert len(ids) == job.req.k and not np.isin(ids, job.req.exclude).any()
        if job.req.candidates is not None:
            assert np.isin(ids, job.req.candidates).all()
        assert np.all(np.diff(scores) <= 0)  # best first


def test_full_catalogue_list_is_the_arms_top_k_without_seen_items(models):
    for rec in models.values():
        for unit in ("3", "17", "visitor"):
            ids, _ = rank(rec, unit, ItemRequest(5, NO_ITEMS, None))
            top = rec.arm.top_k([int(unit) if unit.isdigit() else -1], 16)[0][0].numpy()
            assert set(ids) <= set(top)
            if unit.isdigit():
                assert not np.isin(ids, rec.arm.seen_items(int(unit))).any()


def test_a_row_with_too_few_items_fails_alone(models):
    rec = models["pop"]
    cands = np.array([FIRST_ITEM, FIRST_ITEM + 1, FIRST_ITEM + 2])
    bad = RankJob(rec, "4", ItemRequest(3, cands[:1].copy(), cands))
    good = RankJob(rec, "5", ItemRequest(2, cands[:1].copy(), cands))
    out = score_jobs([bad, good])
    assert isinstance(out[0], Invalid) and "only 2 items left" in str(out[0])
    assert not isinstance(out[1], Exception) and len(out[1][0]) == 2


def test_concurrent_decisions_are_batched_and_equal_direct(models):
    batcher = MicroBatcher(window_s=0.05, max_requests=8)
    per_request = [random_jobs(models, 4, seed=s) for s in range(40)]
    tickets = [batcher.announce() for _ in per_request]
    results: list[Any] = [None] * len(per_request)
    sizes = [0] * len(per_request)
    start = threading.Barrier(len(per_request))

    def run(i: int) -> None:
        ranker = batcher.ranker(tickets[i])
        start.wait()
        try:
            results[i] = ranker.rank(per_request[i])
        except Invalid as err:
            results[i] = err
        sizes[i] = ranker.batch_size
        batcher.withdraw(tickets[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(per_request))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for jobs, got in zip(per_request, results, strict=True):
        try:
            want: Any = DirectRanker().rank(jobs)
        except Invalid as err:
            want = err
        if isinstance(want, Exception):
            assert same(got, want)
        else:
            assert all(same(g, w) for g, w in zip(got, want, strict=True))
    assert max(sizes) > 1 and max(sizes) <= 8
    assert batcher.requests == 40 and batcher.batches < 40
    assert batcher._expected == 0


def test_a_lone_decision_waits_for_nobody(models):
    job = [RankJob(models["pop"], "1", ItemRequest(3, NO_ITEMS, None))]
    batcher = MicroBatcher(window_s=2.0, max_requests=8)
    t0 = time.monotonic()
    batcher.ranker(batcher.announce()).rank(job)
    assert time.monotonic() - t0 < 1.0  # nobody else announced: scored at once


def test_a_decision_waits_at_most_the_window(models):
    job = [RankJob(models["pop"], "1", ItemRequest(3, NO_ITEMS, None))]
    batcher = MicroBatcher(window_s=0.3, max_requests=8)
    other = batcher.announce()  # on its way, never submits
    t0 = time.monotonic()
    batcher.ranker(batcher.announce()).rank(job)
    waited = time.monotonic() - t0
    assert 0.29 <= waited < 1.5
    batcher.withdraw(other)
    assert batcher._expected == 0
    # once the other withdraws (answered without items), nobody waits for it any longer
    other = batcher.announce()
    timer = threading.Timer(0.1, batcher.withdraw, args=(other,))
    t0 = time.monotonic()
    timer.start()
    batcher.ranker(batcher.announce()).rank(job)
    assert 0.09 <= time.monotonic() - t0 < 0.28


# ---------------------------------------------------------------- through the HTTP API


async def _concurrent_decisions(app: Any, auth: str, bodies: list[tuple[str, dict]]) -> list:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        headers = {"Authorization": f"Bearer {auth}"}
        return await asyncio.gather(
            *(
                client.post(f"/v1/experiments/{key}/decisions", json=body, headers=headers)
                for key, body in bodies
            )
        )


def test_batched_decisions_equal_their_replay_alone(db, keys, models_dir, models, session_factory):
    """Concurrent decisions of a fuse and an allocate experiment, scored in micro-batches;
    each stored list equals the list computed again alone from its logged seed."""
    from fastapi.testclient import TestClient

    settings = db.model_copy(
        update={
            "models_dir": models_dir,
            "models_device": "cpu",
            "decision_batch_window_ms": 20,
            "candidate_cache_depth": 0,  # every list scored live (the cache skips the batcher)
        }
    )
    app = create_app(settings)
    recs = {"a": "mf", "b": "bert", "c": "pop", "d": "knn"}
    with TestClient(app) as client:
        for key, mode in (("f", "fuse"), ("al", "allocate")):
            body = {"key": key, "arms": list(recs), "mode": mode, "recommenders": recs}
            r = client.post(
                "/v1/experiments", json=body, headers={"Authorization": f"Bearer {keys['admin']}"}
            )
            assert r.status_code == 201, r.text
        # inside the app's lifespan: its decision writer (group commit) is open
        rng = np.random.default_rng(2)
        bodies = []
        for i in range(60):
            body: dict[str, Any] = {
                "unit_id": str(rng.integers(N_USERS + 5)),
                "k": int(rng.integers(2, 9)),
            }
            if i % 3 == 0:
                body["exclude"] = [
                    FIRST_ITEM + int(x) for x in rng.choice(N_ITEMS, 3, replace=False)
                ]
            bodies.append(("f" if i % 2 else "al", body))
        answers = asyncio.run(_concurrent_decisions(app, keys["write"], bodies))
    assert [a.status_code for a in answers] == [201] * len(bodies), answers[0].text
    sizes = [int(a.headers["X-Batch-Size"]) for a in answers]
    assert max(sizes) > 1, sizes  # some were scored together
    by_id = {
        a.json()["decision_id"]: (key, body) for a, (key, body) in zip(answers, bodies, strict=True)
    }
    with session_factory() as session:
        stored = session.query(Decision).all()
    assert len(stored) == len(bodies)
    arms = list(recs)
    backed = backing([recs[a] for a in arms], models)
    for d in stored:
        key, body = by_id[d.id]
        req = ItemRequest(body["k"], np.asarray(body.get("exclude", []), np.int64), None)
        if key == "f":
            served = serve_fuse(backed, "slot-mix", d.probabilities, d.seed, d.unit_id, req, 100)
        else:
            served = serve_allocate(backed, d.arm, d.probabilities, d.unit_id, req, 100)
        assert [i.as_json() for i in served.items] == d.items


def test_served_item_json_has_every_field():
    """``as_json`` is written by hand (hot path): it must follow the dataclass."""
    from dataclasses import asdict

    from service.serving import ServedItem

    item = ServedItem(7, 2, 1, 0.25, 0.5)
    assert item.as_json() == {k: v for k, v in asdict(item).items() if k != "credit"}
    credited = ServedItem(7, 2, 1, 0.25, 0.5, [[1, 0.75], [0, 0.25]])
    assert credited.as_json() == asdict(credited)
