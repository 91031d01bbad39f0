"""Server-side render time of the dashboard's experiment and list pages on a large log.

Fills a fresh store (a temporary SQLite file, or a new schema on PostgreSQL) with one
experiment of ``--arms`` arms (Thompson sampling, a reward window), ``--decisions``
decisions spread over ``--days`` days and learned in ``--updates`` settling updates. The real
policy is driven: each block of decisions is drawn from the allocation in force and its
observations (a click of value 1 or a zero) are learned with ``update_batch``, so every
table holds what the service would have written (decisions with their probabilities, click
rows and observation rows, ``policy_updates``, ``policy_states``, ``arm_stats`` and
``arm_series``; ``--check`` runs the audit's rebuild to confirm it). Rows go in with the
backends' bulk paths (COPY on PostgreSQL, executemany on SQLite), then the tables are
analysed (and vacuumed on PostgreSQL, as autovacuum would). Then logs in through the page's
form and times ``GET /dashboard/experiments/bench`` and ``GET /dashboard`` (in-process
TestClient, so the figure is the server's work: queries, statistics, template),
``--repeat`` times each. Prints a table; writes JSON to
``benchmarks/results/dashboard_render_<backend>.json``. Not a test: figures depend on the
machine. Example::

    python benchmarks/dashboard_render.py --backend sqlite --decisions 1000000 --arms 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Connection, create_engine, text, update  # noqa: E402

from service import policies  # noqa: E402
from service.app import create_app  # noqa: E402
from service.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from service.models import ArmStat, Experiment, PolicyState  # noqa: E402
from service.schemas import ExperimentCreate  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.store import audit, experiments, keys, series  # noqa: E402
from service.store.common import jsonable  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _stamp(t: dt.datetime, sqlite: bool) -> Any:
    """A timestamp as the backend's driver takes it in bulk (SQLite: SQLAlchemy's text form)."""
    return t.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else t


def bulk(
    conn: Connection, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` with the backend's fastest path (COPY, or the driver's executemany)."""
    cols = ", ".join(columns)
    raw: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in columns)
        raw.cursor().executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)


DEC_COLS = (
    "id", "experiment_id", "unit_id", "arm", "probabilities", "policy_version", "seed",
    "fallback", "created_at",
)  # fmt: skip
REW_COLS = (
    "experiment_id", "idempotency_key", "request_hash", "decision_id", "arm", "kind", "value",
    "status", "late", "orphan", "learned", "normalized", "update_seq", "update_pos",
    "duplicates", "created_at",
)  # fmt: skip
UPD_COLS = ("experiment_id", "seq", "kind", "n_rewards", "allocation", "created_at")


def fill(settings: Settings, args: argparse.Namespace) -> str:
    """Create the experiment and its log; return a read key."""
    n_dec, n_arms, n_upd = args.decisions, args.arms, args.updates
    upgrade(settings)
    engine = make_engine(settings)
    sqlite = settings.is_sqlite
    with make_sessionmaker(engine)() as session:
        spec = ExperimentCreate(
            key="bench",
            arms=[f"arm{i}" for i in range(n_arms)],
            policy="thompson",
            seed=args.seed,
            reward={"click": 1},
            reward_window_s=3600,
        )
        experiments.create_experiment(session, spec)
        raw, _ = keys.create_api_key(session, "read", "bench")
        exp = session.query(Experiment).one()
        exp_id, policy = exp.id, policies.build_policy(exp)
        allocation = policies.allocation_of(policy)
    rng = np.random.default_rng(args.seed)
    rates = rng.uniform(0.02, 0.08, n_arms)
    step = args.days * 86400 / n_dec
    bounds = np.linspace(0, n_dec, n_upd + 1).astype(np.int64)
    builder = series.SeriesBuilder(n_arms)
    clicks = np.zeros(n_arms, dtype=np.int64)
    state: dict[str, Any] = {}
    upd_rows: list[tuple[Any, ...]] = []
    with engine.begin() as conn:
        for v0 in range(0, n_upd, 100):  # in blocks of 100 updates, to bound the memory
            dec_rows: list[tuple[Any, ...]] = []
            rew_rows: list[tuple[Any, ...]] = []
            for v in range(v0, min(v0 + 100, n_upd)):  # decided under v, learned by v + 1
                lo, hi = int(bounds[v]), int(bounds[v + 1])
                arms = np.minimum(
                    np.searchsorted(np.cumsum(allocation), rng.random(hi - lo)), n_arms - 1
                )
                hit = (rng.random(hi - lo) < rates[arms]).astype(float)
                probs = json.dumps(allocation)
                seen = _stamp(START + dt.timedelta(seconds=hi * step + 1), sqlite)
                for k, i in enumerate(range(lo, hi)):
                    did = f"{i:032x}"
                    a = int(arms[k])
                    made = _stamp(START + dt.timedelta(seconds=i * step), sqlite)
                    dec_rows.append((did, exp_id, f"u{i}", a, probs, v, i, False, made))
                    r = float(hit[k])
                    rew_rows.append(
                        (exp_id, f"settle:{did}", "", did, a, "decision", r, "learned", False,
                         False, True, r, v + 1, k, 0, seen)
                    )  # fmt: skip
                    if r:
                        rew_rows.append(
                            (exp_id, f"r{i}", "0" * 64, did, a, "click", 1.0, "learned", False,
                             False, False, None, v + 1, None, 0, made)
                        )  # fmt: skip
                    builder.add(v + 1, a, r)
                np.add.at(clicks, arms, hit.astype(np.int64))
                policy.update_batch(arms.astype(np.int64), hit)
                allocation, state = policies.checked_result(policy)
                upd_rows.append((exp_id, v + 1, "settle", hi - lo, json.dumps(allocation), seen))
            bulk(conn, "decisions", DEC_COLS, dec_rows)
            bulk(conn, "rewards", REW_COLS, rew_rows)
        builder.flush()
        bulk(conn, "policy_updates", UPD_COLS, upd_rows)
        series.replace(conn, exp_id, builder.rows)
        stats = ArmStat.__table__
        for a in range(n_arms):
            conn.execute(
                update(stats)  # type: ignore[arg-type]
                .where(stats.c.experiment_id == exp_id, stats.c.arm == a)
                .values(
                    clicks=int(clicks[a]),
                    raw_sum=builder.s[a],
                    n_learned=builder.n[a],
                    reward_sum=builder.s[a],
                    reward_sq_sum=builder.q[a],
                )
            )
        states = PolicyState.__table__
        conn.execute(
            update(states)  # type: ignore[arg-type]
            .where(states.c.experiment_id == exp_id)
            .values(
                version=n_upd,
                state=jsonable(state),
                allocation=allocation,
                settled_until=START + dt.timedelta(days=args.days),
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE" if sqlite else "VACUUM ANALYZE"))
    if args.check:
        with make_sessionmaker(engine)() as session:
            res = audit.rebuild(session, "bench")
            assert res.equal, f"rebuild differs ({res.series_differences} series rows)"
            print("rebuild equals the filled state (policy and arm_series)")
    engine.dispose()
    return raw


def timed(client: TestClient, url: str, repeat: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds (this process: server and client) of ``repeat`` GETs.

    The CPU time is the figure to read on a busy machine, where the wall clock also counts
    the time other processes held the cores."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        r = client.get(url)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        assert r.status_code == 200, r.text[:300]
    return wall, cpu


def parts(settings: Settings, repeat: int) -> dict[str, float]:
    """Median wall-clock seconds of each read behind the experiment page, called directly."""
    from service.store import dashboard, insights

    engine = make_engine(settings)
    calls = {
        "stats": lambda s: insights.experiment_stats(s, "bench"),
        "health": lambda s: insights.health(s, "bench"),
        "time series": lambda s: dashboard.time_series(
            s, "bench", insights.experiment_stats(s, "bench")
        ),
        "list rows": lambda s: dashboard.experiment_rows(s, None, None),
    }
    out = {}
    with make_sessionmaker(engine)() as session:
        for name, call in calls.items():
            xs = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                call(session)
                xs.append(time.perf_counter() - t0)
                session.rollback()
            out[name] = float(np.median(xs))
    engine.dispose()
    return out


def settings_for(args: argparse.Namespace, tmp: str) -> tuple[Settings, bool]:
    """The store to fill (a temporary one, or ``--keep``'s); True when it is already filled."""
    base: dict[str, Any] = {"settle_interval_s": 0, "auth_cache_ttl_s": 0}
    if args.backend == "sqlite":
        path = Path(args.keep) if args.keep else Path(tmp) / "bench.db"
        filled = path.exists()
        return Settings(_env_file=None, sqlite_path=path, **base), filled  # type: ignore[call-arg]
    schema = args.keep or f"bf_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        filled = bool(
            conn.execute(
                text("SELECT count(*) FROM information_schema.schemata WHERE schema_name = :s"),
                {"s": schema},
            ).scalar()
        )
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    admin.dispose()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=PG_URL,
        database_schema=schema,
        **base,
    )
    return settings, filled


def drop(settings: Settings) -> None:
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{settings.database_schema}" CASCADE'))
    admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--decisions", type=int, default=1_000_000)
    ap.add_argument("--arms", type=int, default=20)
    ap.add_argument("--updates", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true", help="confirm with the audit's rebuild")
    ap.add_argument(
        "--keep",
        help="SQLite file / PostgreSQL schema to fill and keep (reused as is when it exists)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings, filled = settings_for(args, tmp)
        try:
            t0 = time.perf_counter()
            if filled:
                engine = make_engine(settings)
                with make_sessionmaker(engine)() as session:
                    raw, _ = keys.create_api_key(session, "read", "bench")
                engine.dispose()
            else:
                raw = fill(settings, args)
            fill_s = time.perf_counter() - t0
            with TestClient(create_app(settings)) as client:
                form = client.get("/dashboard/login").text  # the login form's CSRF token
                csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
                login = {"key": raw, "csrf": csrf}
                r = client.post("/dashboard/login", data=login, follow_redirects=False)
                assert r.status_code == 303
                # the first view in a new process: imports, and the final counts of the
                # past (service.store.sealed_counts) read once
                t1 = time.perf_counter()
                client.get("/dashboard/experiments/bench")
                first_s = time.perf_counter() - t1
                page = timed(client, "/dashboard/experiments/bench", args.repeat)
                listing = timed(client, "/dashboard", args.repeat)
            split = parts(settings, args.repeat)
        finally:
            if settings.database_schema and not args.keep:
                drop(settings)
    result = {
        "backend": args.backend,
        "decisions": args.decisions,
        "arms": args.arms,
        "policy_updates": args.updates,
        "fill_s": None if filled else round(fill_s, 1),
        "experiment_page_first_view_s": round(first_s, 3),
        "experiment_page_s": {"median": float(np.median(page[0])), "max": max(page[0])},
        "experiment_page_cpu_s": {"median": float(np.median(page[1])), "max": max(page[1])},
        "list_page_s": {"median": float(np.median(listing[0])), "max": max(listing[0])},
        "list_page_cpu_s": {"median": float(np.median(listing[1])), "max": max(listing[1])},
        "load_average": os.getloadavg()[0],
        "parts_median_s": split,
        "repeat": args.repeat,
    }
    print(f"{args.backend}: {args.decisions:,} decisions, {args.arms} arms, {args.updates} updates")
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("page                      median s   max s   median CPU s")
    for name, (xs, cs) in (("experiment", page), ("experiments list", listing)):
        print(f"{name:<24} {np.median(xs):9.3f} {max(xs):7.3f} {np.median(cs):14.3f}")
    print(f"experiment, first view in a new process: {first_s:.3f} s")
    print("part of the experiment page, uncached  median s")
    for name, x in split.items():
        print(f"  {name:<26} {x:8.3f}")
    out = ROOT / "benchmarks" / "results" / f"dashboard_render_{args.backend}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
