"""Server-side render time of the dashboard's experiment and list pages on a large log.

Fills a fresh store (a temporary SQLite file, or a new schema on PostgreSQL) with one
experiment of ``--arms`` arms, ``--updates`` policy updates and ``--decisions`` decisions,
each with its one learned observation (a click of value 1 or a zero), written in bulk
straight into the tables; ``arm_stats`` holds the matching totals. Then logs in through the
page's form and times ``GET /dashboard/experiments/bench`` and ``GET /dashboard``
(in-process TestClient, so the figure is the server's work: queries, statistics, template),
``--repeat`` times each. Prints a table; writes JSON to
``benchmarks/results/dashboard_render_<backend>.json``. Not a test: figures depend on the
machine. Example::

    python benchmarks/dashboard_render.py --backend sqlite --decisions 200000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, insert, text  # noqa: E402

from service.app import create_app  # noqa: E402
from service.db import make_engine, make_sessionmaker  # noqa: E402
from service.models import ArmStat, Base, Decision, PolicyUpdate, Reward  # noqa: E402
from service.schemas import ExperimentCreate  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.store import experiments, keys  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CHUNK = 20_000


def fill(settings: Settings, n_dec: int, n_arms: int, n_upd: int, seed: int) -> str:
    """Create the experiment and its log; return a read key."""
    engine = make_engine(settings)
    Base.metadata.create_all(engine)
    with make_sessionmaker(engine)() as session:
        spec = ExperimentCreate(
            key="bench",
            arms=[f"arm{i}" for i in range(n_arms)],
            policy="thompson",
            seed=seed,
            reward={"click": 1},
        )
        experiments.create_experiment(session, spec)
        raw, _ = keys.create_api_key(session, "read", "bench")
        exp_id = session.execute(text("SELECT id FROM experiments")).scalar_one()
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.02, 0.08, n_arms)
    start = dt.datetime(2026, 1, 1)
    allocs = rng.dirichlet(np.ones(n_arms) * 5, n_upd)
    with engine.begin() as conn:
        conn.execute(
            insert(PolicyUpdate),
            [
                {
                    "experiment_id": exp_id,
                    "seq": s + 1,
                    "kind": "rewards",
                    "n_rewards": n_dec // n_upd,
                    "allocation": [float(x) for x in allocs[s]],
                    "created_at": start + dt.timedelta(minutes=s + 1),
                }
                for s in range(n_upd)
            ],
        )
        conn.execute(
            text("UPDATE policy_states SET version = :v WHERE experiment_id = :e"),
            {"v": n_upd, "e": exp_id},
        )
    probs = [[round(float(x), 6) for x in a] for a in allocs]
    clicks = np.zeros(n_arms, dtype=np.int64)
    learned = np.zeros(n_arms, dtype=np.int64)
    for lo in range(0, n_dec, CHUNK):
        idx = np.arange(lo, min(n_dec, lo + CHUNK))
        version = idx * n_upd // n_dec  # the update in force when decided
        arms = np.array([rng.choice(n_arms, p=allocs[max(v - 1, 0)]) for v in version])
        hit = rng.random(len(idx)) < rates[arms]
        np.add.at(clicks, arms, hit)
        np.add.at(learned, arms, 1)
        ids = [uuid.uuid4().hex for _ in idx]
        with engine.begin() as conn:
            conn.execute(
                insert(Decision),
                [
                    {
                        "id": ids[k],
                        "experiment_id": exp_id,
                        "unit_id": f"u{i}",
                        "arm": int(arms[k]),
                        "probabilities": probs[max(int(version[k]) - 1, 0)],
                        "policy_version": int(version[k]),
                        "seed": int(i),
                        "fallback": False,
                        "created_at": start + dt.timedelta(seconds=int(i) * 60 * n_upd / n_dec),
                    }
                    for k, i in enumerate(idx)
                ],
            )
            conn.execute(
                insert(Reward),
                [
                    {
                        "experiment_id": exp_id,
                        "idempotency_key": f"settle:{ids[k]}",
                        "request_hash": "0" * 64,
                        "decision_id": ids[k],
                        "arm": int(arms[k]),
                        "kind": "decision",
                        "value": float(hit[k]),
                        "status": "learned",
                        "learned": True,
                        "normalized": float(hit[k]),
                        "update_seq": int(version[k]) + 1,
                        "update_pos": 0,
                    }
                    for k in range(len(idx))
                ],
            )
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM arm_stats WHERE experiment_id = :e"), {"e": exp_id})
        conn.execute(
            insert(ArmStat),
            [
                {
                    "experiment_id": exp_id,
                    "arm": a,
                    "clicks": int(clicks[a]),
                    "conversions": 0,
                    "raw_sum": float(clicks[a]),
                    "n_learned": int(learned[a]),
                    "reward_sum": float(clicks[a]),
                    "reward_sq_sum": float(clicks[a]),
                }
                for a in range(n_arms)
            ],
        )
        if settings.is_sqlite:
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return raw


def timed(client: TestClient, url: str, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.get(url)
        out.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text[:300]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--decisions", type=int, default=1_000_000)
    ap.add_argument("--arms", type=int, default=20)
    ap.add_argument("--updates", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    base: dict[str, Any] = {"settle_interval_s": 0, "auth_cache_ttl_s": 0}
    with tempfile.TemporaryDirectory() as tmp:
        schema = None
        if args.backend == "sqlite":
            settings = Settings(_env_file=None, sqlite_path=Path(tmp) / "bench.db", **base)  # type: ignore[call-arg]
        else:
            schema = f"bf_bench_{uuid.uuid4().hex[:12]}"
            admin = create_engine(PG_URL)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                database_url=PG_URL,
                database_schema=schema,
                **base,
            )
        try:
            t0 = time.perf_counter()
            raw = fill(settings, args.decisions, args.arms, args.updates, args.seed)
            fill_s = time.perf_counter() - t0
            with TestClient(create_app(settings)) as client:
                form = client.get("/dashboard/login").text  # the login form's CSRF token
                csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
                login = {"key": raw, "csrf": csrf}
                r = client.post("/dashboard/login", data=login, follow_redirects=False)
                assert r.status_code == 303
                client.get("/dashboard/experiments/bench")  # warm-up (imports, caches)
                page = timed(client, "/dashboard/experiments/bench", args.repeat)
                listing = timed(client, "/dashboard", args.repeat)
        finally:
            if schema is not None:
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                admin.dispose()
    result = {
        "backend": args.backend,
        "decisions": args.decisions,
        "arms": args.arms,
        "policy_updates": args.updates,
        "fill_s": round(fill_s, 1),
        "experiment_page_s": {"median": float(np.median(page)), "max": max(page)},
        "list_page_s": {"median": float(np.median(listing)), "max": max(listing)},
        "repeat": args.repeat,
    }
    print(f"{args.backend}: {args.decisions:,} decisions, {args.arms} arms, {args.updates} updates")
    print("page                      median s   max s")
    for name, xs in (("experiment", page), ("experiments list", listing)):
        print(f"{name:<24} {np.median(xs):9.3f} {max(xs):7.3f}")
    out = ROOT / "benchmarks" / "results" / f"dashboard_render_{args.backend}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
