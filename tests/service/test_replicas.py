"""Two ``bandit-fusion serve`` replicas on different ports share one PostgreSQL database.

Clients spread decisions over both replicas, report each click to the replica that did *not*
make the decision, and retry some clicks on the other replica with the same idempotency key.
Afterwards the totals are exact (every acknowledged decision and reward stored once, each
reward learned once, retries recognised across replicas), both replicas report the same
statistics, and the live policy state equals the rebuild from the log.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from service.models import ArmStat, Decision, Reward
from service.schemas import ExperimentCreate
from service.testing import running_server
from tests.service.conftest import assert_log_replays, migrated_experiment

N_DECISIONS = 400
THREADS = 4


@pytest.mark.slow
@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_two_replicas_on_one_postgres_keep_exact_totals(settings, tmp_path):
    factory, key = migrated_experiment(
        settings,
        ExperimentCreate(
            key="rep",
            arms=["a", "b", "c"],
            policy="thompson",
            seed=3,
            reward={"click": 1},
            reward_window_s=None,
        ),
    )
    common = {"settle_interval_s": 0, "auth_cache_ttl_s": 10, "pool_size": 4}
    headers = {"Authorization": f"Bearer {key}"}
    with (
        running_server(settings, tmp_path / "a.log", **common) as a,
        running_server(settings, tmp_path / "b.log", **common) as b,
    ):
        assert a.port != b.port
        replicas = (a.base_url, b.base_url)

        def client(t: int) -> tuple[list[tuple[int, str]], set[str], int]:
            rng = random.Random(t)
            decided: list[tuple[int, str]] = []  # (replica that decided, decision id)
            clicked: set[str] = set()
            replays = 0
            with (
                httpx.Client(base_url=replicas[0], headers=headers, timeout=30) as c0,
                httpx.Client(base_url=replicas[1], headers=headers, timeout=30) as c1,
            ):
                clients = (c0, c1)
                for i in range(N_DECISIONS // THREADS):
                    side = (t + i) % 2
                    r = clients[side].post(
                        "/v1/experiments/rep/decisions", json={"unit_id": f"t{t}-{i}"}
                    )
                    assert r.status_code == 201, r.text
                    did = r.json()["decision_id"]
                    decided.append((side, did))
                    if rng.random() < 0.5:
                        # the click goes to the other replica; a retry goes to the deciding one
                        order = [1 - side, side][: rng.choice([1, 1, 2])]
                        for attempt, target in enumerate(order):
                            rr = clients[target].post(
                                "/v1/experiments/rep/rewards",
                                json={"decision_id": did, "kind": "click"},
                                headers={"Idempotency-Key": f"click-{did}"},
                            )
                            assert rr.status_code == 200, rr.text
                            assert rr.json()["replayed"] == (attempt > 0)
                            replays += attempt > 0
                        clicked.add(did)
            return decided, clicked, replays

        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(client, range(THREADS)))
        stats_a = httpx.get(f"{a.base_url}/v1/experiments/rep/stats", headers=headers).json()
        stats_b = httpx.get(f"{b.base_url}/v1/experiments/rep/stats", headers=headers).json()

    decided = [d for r in results for d in r[0]]
    clicked = set().union(*(r[1] for r in results))
    replays = sum(r[2] for r in results)
    assert len(decided) == N_DECISIONS
    assert {side for side, _ in decided} == {0, 1}  # both replicas decided
    assert replays > 0  # some retries crossed replicas
    assert stats_a == stats_b
    assert sum(arm["decisions"] for arm in stats_a["arms"]) == N_DECISIONS
    assert sum(arm["clicks"] for arm in stats_a["arms"]) == len(clicked)
    with factory() as session:
        stored = set(session.scalars(select(Decision.id)))
        assert stored == {did for _, did in decided}
        rows = session.execute(  # the posted clicks; kind 'decision' rows are observations
            select(Reward.decision_id, Reward.status).where(Reward.kind != "decision")
        ).all()
        assert len(rows) == len(clicked)
        assert {d for d, _ in rows} == clicked
        assert all(status == "learned" for _, status in rows)
        assert session.scalar(select(func.sum(Reward.duplicates))) == replays
        arm_stats = session.scalars(select(ArmStat)).all()
        assert sum(s.clicks for s in arm_stats) == len(clicked)
        assert_log_replays(session, "rep", len(clicked))
