"""End to end: ``bandit-fusion serve`` with 4 worker processes, thousands of requests.

Decisions and rewards (single and batch, with retried and duplicated rewards) are sent
concurrently from several client threads. Afterwards the database holds exactly what was
acknowledged, every reward was learned once, and the live policy state equals the rebuild.
"""

from __future__ import annotations

import datetime as dt
import random
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from service.models import ArmStat, Decision, Reward, utcnow
from service.policies import PolicyCache
from service.schemas import ExperimentCreate
from service.store import learning
from service.testing import running_server
from tests.service.conftest import assert_log_replays, migrated_experiment

N_DECISIONS = 2000
THREADS = 8


@pytest.mark.slow
def test_four_workers_lose_nothing(settings, tmp_path):
    factory, key = migrated_experiment(
        settings,
        ExperimentCreate(
            key="mp",
            arms=["a", "b", "c", "d"],
            policy="discounted-thompson",
            params={"gamma": 0.999},
            seed=1,
            reward={"click": 1, "conversion": 5},
            reward_window_s=3600,
        ),
    )
    with running_server(
        settings,
        tmp_path / "server.log",
        workers=4,
        settle_interval_s=0,
        auth_cache_ttl_s=10,
        pool_size=4,
    ) as server:
        base = server.base_url
        headers = {"Authorization": f"Bearer {key}"}

        def worker(t: int) -> tuple[list[str], dict[str, float], int]:
            rng = random.Random(t)
            decided: list[str] = []
            acked: dict[str, float] = {}  # idempotency key -> value, for acknowledged rewards
            replays = 0
            pending: list[dict] = []
            with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
                for i in range(N_DECISIONS // THREADS):
                    r = c.post("/v1/experiments/mp/decisions", json={"unit_id": f"t{t}-{i}"})
                    assert r.status_code == 201, r.text
                    did = r.json()["decision_id"]
                    decided.append(did)
                    if rng.random() < 0.4:  # a click, sent once or retried
                        k = f"click-{did}"
                        for attempt in range(rng.choice([1, 1, 2, 3])):
                            rr = c.post(
                                "/v1/experiments/mp/rewards",
                                json={"decision_id": did, "kind": "click"},
                                headers={"Idempotency-Key": k},
                            )
                            assert rr.status_code == 200, rr.text
                            assert rr.json()["replayed"] == (attempt > 0)
                            replays += attempt > 0
                        acked[k] = 1.0
                    if rng.random() < 0.2:
                        pending.append(
                            {
                                "decision_id": did,
                                "kind": "conversion",
                                "value": round(rng.uniform(0.5, 5), 3),
                                "reward_id": f"conv-{did}",
                            }
                        )
                    if len(pending) >= 20:
                        batch = pending + rng.sample(pending, 3)  # duplicated inside the batch
                        for _ in range(rng.choice([1, 2])):  # and the whole batch retried
                            rr = c.post("/v1/experiments/mp/rewards/batch", json={"rewards": batch})
                            assert rr.status_code == 200, rr.text
                        acked.update({p["reward_id"]: p["value"] for p in pending})
                        pending = []
                if pending:
                    rr = c.post("/v1/experiments/mp/rewards/batch", json={"rewards": pending})
                    assert rr.status_code == 200, rr.text
                    acked.update({p["reward_id"]: p["value"] for p in pending})
            return decided, acked, replays

        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(worker, range(THREADS)))

    decided = [d for r in results for d in r[0]]
    acked = {k: v for r in results for k, v in r[1].items()}
    assert len(decided) == N_DECISIONS
    best: dict[str, float] = {}  # decision id -> largest acknowledged value
    for k, v in acked.items():
        did = k.split("-", 1)[1]
        best[did] = max(best.get(did, 0.0), v)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Decision)) == N_DECISIONS
        rows = session.execute(
            select(Reward.idempotency_key, Reward.value, Reward.status).where(
                Reward.kind != "decision"
            )
        ).all()
        assert {k: v for k, v, _ in rows} == acked  # exactly what was acknowledged, once each
        assert {s for _, _, s in rows} <= {"learned", "pending"}
        dups = session.scalar(select(func.sum(Reward.duplicates)))
        assert dups and dups >= sum(r[2] for r in results)
        stats = session.scalars(select(ArmStat)).all()
        assert sum(s.clicks for s in stats) == sum(k.startswith("click-") for k in acked)
        # windows close: every decision is learned exactly once, as its largest value
        later = utcnow() + dt.timedelta(hours=2)
        learning.settle(session, "mp", PolicyCache(), now=later)
    with factory() as session:
        statuses = session.scalars(select(Reward.status).where(Reward.kind != "decision")).all()
        assert set(statuses) == {"learned"}
        stats = session.scalars(select(ArmStat)).all()
        assert sum(s.n_learned for s in stats) == N_DECISIONS
        assert abs(sum(s.raw_sum for s in stats) - sum(best.values())) < 1e-6
        assert_log_replays(session, "mp", N_DECISIONS)  # one observation per decision
