"""CPU per request kind of the allocation service, in-process: what bounds a mixed workload.

Question: how much CPU does each kind of request of the mixed workload
(``service_load.py --mixed``: decisions, single rewards, reads) cost one worker? An
experiment (Thompson sampling, 3 arms, a click worth 1, no reward window) is created on a
fresh SQLite store and ``--requests`` of each kind are sent in turn through FastAPI's
TestClient (so each figure includes the client's own cost, a share of a millisecond), timed
by process CPU and wall clock. Prints a table and writes
``benchmarks/results/request_costs.json``.

    python benchmarks/request_costs.py
    python benchmarks/request_costs.py --history 3000 --json costs_3000.json

``--history N`` first rewards N decisions one by one (N policy versions, all recent): the
reads' cost on a log that has grown.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.app import create_app
from service.db import make_engine, make_sessionmaker, upgrade
from service.settings import Settings
from service.store import keys

RESULTS = Path(__file__).resolve().parent / "results" / "request_costs.json"


def timed(f: Callable[[int], Any], n: int) -> tuple[list[Any], float, float]:
    """``f(0..n-1)``; returns the results and the CPU and wall milliseconds per call."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = [f(i) for i in range(n)]
    return out, 1000 * (time.process_time() - cpu) / n, 1000 * (time.perf_counter() - wall) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=300, help="requests of each kind")
    ap.add_argument(
        "--history",
        type=int,
        default=0,
        help="decisions rewarded one by one before the timing (each a policy version): how the"
        " reads' cost grows with the recent log",
    )
    ap.add_argument("--json", type=Path, default=RESULTS, help="write the results here")
    args = ap.parse_args()
    n = args.requests
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/costs.db", settle_interval_s=0)
        upgrade(settings)
        with make_sessionmaker(make_engine(settings))() as session:
            raw, _ = keys.create_api_key(session, "admin", "request costs")
        auth = {"Authorization": f"Bearer {raw}"}
        spec = {
            "key": "m",
            "arms": ["a", "b", "c"],
            "policy": "thompson",
            "reward": {"click": 1},
            "reward_window_s": None,
        }
        with TestClient(create_app(settings)) as c:
            assert c.post("/v1/experiments", json=spec, headers=auth).status_code == 201
            url = "/v1/experiments/m"

            def decide(i: int) -> str:
                r = c.post(f"{url}/decisions", json={"unit_id": f"u{i}"}, headers=auth)
                return str(r.json()["decision_id"])

            for i in range(args.history):  # one policy update each: as many versions
                c.post(
                    f"{url}/rewards",
                    json={"decision_id": decide(n + i), "kind": "click"},
                    headers=auth,
                )
            made, cpu, wall = timed(decide, n)
            rows["decision"] = {"cpu_ms": cpu, "wall_ms": wall}
            kinds: dict[str, Callable[[int], Any]] = {
                "single reward": lambda i: c.post(
                    f"{url}/rewards", json={"decision_id": made[i], "kind": "click"}, headers=auth
                ),
                "stats": lambda i: c.get(f"{url}/stats", headers=auth),
                "health": lambda i: c.get(f"{url}/health", headers=auth),
                "experiment": lambda i: c.get(url, headers=auth),
                "allocation": lambda i: c.get(f"{url}/allocation", headers=auth),
            }
            for name, f in kinds.items():
                answers, cpu, wall = timed(f, n)
                assert all(a.status_code == 200 for a in answers), name
                rows[name] = {"cpu_ms": cpu, "wall_ms": wall}
    print(
        f"{n} requests of each kind after {args.history} rewarded decisions, in-process, SQLite;"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    print("kind            CPU ms   wall ms")
    for name, r in rows.items():
        print(f"{name:<14} {r['cpu_ms']:7.2f} {r['wall_ms']:9.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "requests": n,
        "history": args.history,
        "load_average": os.getloadavg()[0],
        "kinds": rows,
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
