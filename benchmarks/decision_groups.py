"""Decision latency with and without group commit, in one run (same machine, same load).

For each round and each mode (``ungrouped``: one INSERT and commit per decision;
``grouped``: setting ``decision_group_commit``, see :mod:`service.store.decision_groups`)
this starts ``bandit-fusion serve`` (``--workers``) on a fresh store, warms it up, then sends
``--rate`` decisions/s for ``--duration`` s open-loop (latency counted from each request's due
time: no coordinated omission; the generator of :mod:`benchmarks.service_load`). Modes
alternate within each round, so that a change in the machine's load hits both. Reports per
run p50 / p99 / max, errors, server CPU per decision and the load average, then the median
over rounds of each mode and the ratio grouped / ungrouped; checks that the store holds
exactly the acknowledged decisions. Not a test: figures depend on the machine. Example::

    python benchmarks/decision_groups.py --backend postgresql --workers 2 --rate 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from benchmarks.service_load import PG_URL, _tree_cpu, decisions_load  # noqa: E402
from service.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from service.models import Decision  # noqa: E402
from service.schemas import ExperimentCreate  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.store import experiments, keys  # noqa: E402
from service.testing import running_server  # noqa: E402

MODES = {
    "ungrouped": {"decision_group_commit": False},
    "grouped": {"decision_group_commit": True},
}


def fresh_store(backend: str, tmp: Path) -> tuple[Settings, str]:
    """A migrated empty store with experiment ``bench`` (5 arms, Thompson); its write key."""
    if backend == "sqlite":
        settings = Settings(_env_file=None, sqlite_path=tmp / f"{uuid.uuid4().hex}.db")  # type: ignore[call-arg]
    else:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=PG_URL,
            database_schema=f"bf_bench_{uuid.uuid4().hex[:12]}",
        )
    upgrade(settings)
    engine = make_engine(settings)
    with make_sessionmaker(engine)() as session:
        auth, _ = keys.create_api_key(session, "write", "bench")
        experiments.create_experiment(
            session,
            ExperimentCreate(key="bench", arms=[f"arm{i}" for i in range(5)], seed=0),
        )
    engine.dispose()
    return settings, auth


def drop_store(settings: Settings) -> None:
    if settings.database_schema:
        eng = create_engine(PG_URL)
        with eng.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{settings.database_schema}" CASCADE'))
        eng.dispose()


def one_run(args: argparse.Namespace, mode: str, tmp: Path) -> dict[str, Any]:
    settings, auth = fresh_store(args.backend, tmp)
    overrides: dict[str, Any] = {"settle_interval_s": 0, "auth_cache_ttl_s": 10, **MODES[mode]}
    if mode == "grouped":
        overrides["decision_group_wait_ms"] = args.wait_ms
    try:
        with running_server(
            settings, tmp / f"server-{mode}.log", workers=args.workers, **overrides
        ) as server:
            warm = asyncio.run(decisions_load(server.port, auth, 200, 2, 8))
            load = os.getloadavg()[0]
            cpu0 = _tree_cpu(server.process.pid)
            dec = asyncio.run(
                decisions_load(server.port, auth, args.rate, args.duration, args.connections)
            )
            cpu = _tree_cpu(server.process.pid) - cpu0
        engine = make_engine(settings)
        with engine.connect() as conn:
            stored = conn.scalar(select(func.count()).select_from(Decision))
        engine.dispose()
    finally:
        drop_store(settings)
    dec.pop("decision_ids")
    dec.update(
        mode=mode,
        load_average_before=round(load, 2),
        server_cpu_ms_per_decision=round(cpu * 1000 / max(dec["ok"], 1), 3),
        stored_equal_acknowledged=stored == dec["ok"] + warm["ok"],
    )
    return dec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=500.0, help="decisions per second")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds of load per run")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2, help="runs of each mode, alternated")
    ap.add_argument("--wait-ms", type=float, default=0.0, help="decision_group_wait_ms")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bf-groups-"))
    runs = []
    for r in range(args.rounds):
        order = list(MODES) if r % 2 == 0 else list(reversed(MODES))
        for mode in order:
            runs.append(one_run(args, mode, tmp))
            print(json.dumps(runs[-1]), flush=True)
    summary = {}
    for mode in MODES:
        mine = [x for x in runs if x["mode"] == mode]
        summary[mode] = {
            k: round(float(np.median([x[k] for x in mine])), 2)
            for k in ("p50_ms", "p99_ms", "max_ms", "throughput_rps", "server_cpu_ms_per_decision")
        }
    ratio = {
        k: round(summary["grouped"][k] / summary["ungrouped"][k], 2)
        for k in ("p50_ms", "p99_ms", "server_cpu_ms_per_decision")
    }
    result = {
        "backend": args.backend,
        "workers": args.workers,
        "rate": args.rate,
        "wait_ms": args.wait_ms,
        "cpus": os.cpu_count(),
        "runs": runs,
        "median": summary,
        "ratio_grouped_over_ungrouped": ratio,
    }
    _table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


def _table(r: dict[str, Any]) -> None:
    print()
    print(
        f"{r['backend']}, {r['workers']} workers, {r['rate']:g} decisions/s, "
        f"group wait {r['wait_ms']:g} ms"
    )
    print(
        "| mode | load avg | p50 ms | p99 ms | max ms | req/s | CPU ms/decision | errors | exact |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for x in r["runs"]:
        print(
            f"| {x['mode']} | {x['load_average_before']} | {x['p50_ms']} | {x['p99_ms']} | "
            f"{x['max_ms']} | {x['throughput_rps']} | {x['server_cpu_ms_per_decision']} | "
            f"{x['errors']} | {'yes' if x['stored_equal_acknowledged'] else 'NO'} |"
        )
    print("median, grouped / ungrouped:", json.dumps(r["ratio_grouped_over_ungrouped"]))


if __name__ == "__main__":
    main()
