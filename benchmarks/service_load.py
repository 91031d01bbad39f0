"""Load test of the allocation service on loopback: decision latency and reward ingestion.

Starts ``bandit-fusion serve`` (uvicorn, ``--workers``) on a fresh store (a temporary SQLite
file, or a new schema on PostgreSQL), then

1. **decisions**: an open-loop generator sends ``--rate`` requests/s for ``--duration`` s
   (request *i* is due at ``t0 + i / rate``; latency is measured from that due time, so a
   slow server cannot hide queueing: no coordinated omission). Reports p50 / p90 / p99 /
   max latency, achieved throughput and errors.
2. **rewards**: ``--rewards`` clicks over existing decisions sent through the batch endpoint
   (``--batch`` per request, ``--connections`` in flight). Reports rewards/s.

Then checks that nothing was lost: the database holds exactly the acknowledged decisions and
rewards, each rewarded decision learned once, and the live policy equals the rebuild.

The client is a small HTTP/1.1 keep-alive client on asyncio streams (much cheaper than a
full HTTP library, so that on 2 cores the generator does not eat the server's CPU).
Not a test: figures depend on the machine. Examples::

    python benchmarks/service_load.py --backend sqlite
    python benchmarks/service_load.py --backend postgresql --workers 2

Decisions with items (models loaded, both modes, micro-batching on and off, name-only
decisions as the peer): ``python benchmarks/service_load.py items [--short]`` (see
``benchmarks/service_load_items.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402

from service.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from service.models import (  # noqa: E402
    Decision,
    Reward,
    utcnow,
)
from service.schemas import ExperimentCreate  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.store import audit, experiments, keys  # noqa: E402
from service.testing import running_server  # noqa: E402

PG_URL = os.environ.get(
    "BANDIT_FUSION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int, auth: str) -> None:
        self.host, self.port, self.auth = host, port, auth
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.headers: dict[str, str] = {}  # of the last answer, names in lower case

    async def request(self, path: str, body: bytes, method: str = "POST") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Authorization: Bearer {self.auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        self.headers = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            self.headers[name.lower()] = value.strip()
        data = await self.reader.readexactly(int(self.headers.get("content-length", 0)))
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _open_loop(n: int, rate: float, one: Any) -> float:
    """Start ``one(i, due)`` for i < n at ``rate`` per second, each at its due time whatever
    the others are doing (open loop); wait for all and return the seconds it took."""
    t0 = time.perf_counter() + 0.05
    tasks = []
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    return time.perf_counter() - t0


async def decisions_load(
    port: int, auth: str, rate: float, duration: float, connections: int
) -> dict[str, Any]:
    n = int(rate * duration)
    idle: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(Conn("127.0.0.1", port, auth))
    lat = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    ids: list[str] = []
    path = "/v1/experiments/bench/decisions"

    async def one(i: int, due: float) -> None:
        conn = await idle.get()
        try:
            status, data = await conn.request(path, b'{"unit_id": "u%d"}' % i)
            lat[i] = time.perf_counter() - due
            if status == 201:
                ok[i] = True
                ids.append(json.loads(data)["decision_id"])
        except Exception:
            conn.close()
            conn = Conn("127.0.0.1", port, auth)
        finally:
            idle.put_nowait(conn)

    elapsed = await _open_loop(n, rate, one)
    while not idle.empty():
        idle.get_nowait().close()
    ms = lat[ok] * 1000
    return {
        "requests": n,
        "ok": int(ok.sum()),
        "errors": int(n - ok.sum()),
        "throughput_rps": round(float(ok.sum()) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
        "decision_ids": ids,
    }


async def rewards_load(
    port: int, auth: str, decision_ids: list[str], batch: int, connections: int
) -> dict[str, Any]:
    bodies = []
    for j in range(0, len(decision_ids), batch):
        items = [
            {"decision_id": d, "kind": "click", "reward_id": f"r-{d}"}
            for d in decision_ids[j : j + batch]
        ]
        bodies.append(json.dumps({"rewards": items}).encode())
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    acked = 0
    errors = 0

    async def sender() -> None:
        nonlocal acked, errors
        conn = Conn("127.0.0.1", port, auth)
        while not queue.empty():
            body = queue.get_nowait()
            status, data = await conn.request("/v1/experiments/bench/rewards/batch", body)
            if status == 200:
                acked += len(json.loads(data)["results"])
            else:
                errors += 1
        conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(connections)))
    elapsed = time.perf_counter() - t0
    return {
        "rewards": len(decision_ids),
        "acknowledged": acked,
        "failed_requests": errors,
        "batch": batch,
        "seconds": round(elapsed, 2),
        "rewards_per_s": round(acked / elapsed, 1),
    }


MIXED_READS = (
    "/v1/experiments/bench/stats",
    "/v1/experiments/bench/health",
    "/v1/experiments/bench",
    "/v1/experiments/bench/allocation",
)


async def mixed_load(
    port: int,
    auth: str,
    rate: float,
    duration: float,
    connections: int,
    seed_ids: list[str],
    shares: tuple[float, float, float] = (0.5, 0.25, 0.25),
) -> dict[str, Any]:
    """Open-loop mix of decisions, single rewards and reads from ``connections`` clients.

    Request *i* is due at ``t0 + i / rate``; its kind is drawn with probabilities ``shares``
    (decision, reward, read). A reward is a click on a random earlier decision (from
    ``seed_ids`` or this run) with a fresh ``Idempotency-Key``; a read cycles through
    :data:`MIXED_READS` (stats, health, experiment, allocation). Latency counts from the
    due time. Returns overall and per-kind percentiles and every non-2xx status seen.
    """
    n = int(rate * duration)
    rng = np.random.default_rng(0)
    kinds = rng.choice(3, size=n, p=np.asarray(shares) / sum(shares))
    idle: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(Conn("127.0.0.1", port, auth))
    lat = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    ids = list(seed_ids)
    statuses: dict[str, int] = {}

    async def one(i: int, due: float) -> None:
        kind = int(kinds[i])
        if kind == 0:
            path, method = "/v1/experiments/bench/decisions", "POST"
            body = b'{"unit_id": "m%d"}' % i
        elif kind == 1:
            did = ids[int(rng.integers(len(ids)))]
            path, method = "/v1/experiments/bench/rewards", "POST"
            body = json.dumps({"decision_id": did, "kind": "click", "reward_id": f"m{i}"}).encode()
        else:
            path, body, method = MIXED_READS[i % len(MIXED_READS)], b"", "GET"
        conn = await idle.get()
        try:
            status, data = await conn.request(path, body, method)
            lat[i] = time.perf_counter() - due
            if 200 <= status < 300:
                ok[i] = True
                if kind == 0:
                    ids.append(json.loads(data)["decision_id"])
            else:
                statuses[str(status)] = statuses.get(str(status), 0) + 1
        except Exception as err:
            statuses[type(err).__name__] = statuses.get(type(err).__name__, 0) + 1
            conn.close()
            conn = Conn("127.0.0.1", port, auth)
        finally:
            idle.put_nowait(conn)

    elapsed = await _open_loop(n, rate, one)
    while not idle.empty():
        idle.get_nowait().close()

    def pct(mask: np.ndarray) -> dict[str, Any]:
        ms = lat[mask & ok] * 1000
        if ms.size == 0:
            return {"ok": 0}
        return {
            "ok": int(ms.size),
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "max_ms": round(float(ms.max()), 2),
        }

    everything = np.ones(n, dtype=bool)
    window = int(rate * 15)  # requests per 15-second window, by due time
    return {
        "p99_ms_by_15s_window": [
            pct(np.arange(n) // window == w).get("p99_ms") for w in range(-(-n // window))
        ],
        "requests": n,
        "rate": rate,
        "errors": int(n - ok.sum()),
        "error_statuses": statuses,
        "throughput_rps": round(float(ok.sum()) / elapsed, 1),
        "all": pct(everything),
        "decisions": pct(kinds == 0),
        "rewards": pct(kinds == 1),
        "reads": pct(kinds == 2),
    }


def _mixed_table(r: dict[str, Any]) -> None:
    m = r["mixed"]
    print()
    print(
        "| backend | workers | load avg | req/s | all p50 / p99 ms | decisions p99 | "
        "rewards p99 | reads p99 | max ms | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {r['backend']} | {r['workers']} | {m['load_average_before']} | "
        f"{m['throughput_rps']} | {m['all']['p50_ms']} / {m['all']['p99_ms']} | "
        f"{m['decisions']['p99_ms']} | {m['rewards']['p99_ms']} | {m['reads']['p99_ms']} | "
        f"{m['all']['max_ms']} | {m['errors']} |"
    )


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants (Linux)."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, IndexError, ValueError):
            continue
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=500.0, help="decisions per second")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of decision load")
    ap.add_argument("--connections", type=int, default=32, help="decision connections")
    ap.add_argument("--rewards", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--reward-connections", type=int, default=2)
    ap.add_argument("--policy", default="thompson")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument(
        "--mixed",
        action="store_true",
        help="instead of the two phases: decisions, single rewards and reads (stats, health,"
        " experiment, allocation) mixed 50/25/25 at --rate requests/s from --connections clients",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a further server setting (e.g. decision_group_commit=true); repeatable",
    )
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bf-bench-"))
    schema = None
    server_settings: dict[str, Any] = {"settle_interval_s": 0, "auth_cache_ttl_s": 10}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--set takes NAME=VALUE, got {item!r}")
        server_settings[name] = value
    if args.backend == "sqlite":
        settings = Settings(_env_file=None, sqlite_path=tmp / "bench.db", **server_settings)  # type: ignore[call-arg]
    else:
        schema = f"bf_bench_{uuid.uuid4().hex[:12]}"
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=PG_URL,
            database_schema=schema,
            **server_settings,
        )
    upgrade(settings)
    factory = make_sessionmaker(make_engine(settings))
    with factory() as session:
        auth, _ = keys.create_api_key(session, "write", "bench")
        experiments.create_experiment(
            session,
            ExperimentCreate(
                key="bench",
                arms=[f"arm{i}" for i in range(5)],
                policy=args.policy,
                seed=0,
                reward_window_s=None,
            ),
        )
    with running_server(
        settings, tmp / "server.log", workers=args.workers, **server_settings
    ) as server:
        port = server.port
        # warm-up: every worker process imports, connects and fills its caches
        warmup = asyncio.run(decisions_load(port, auth, 200, 2, 8))
        mixed: dict[str, Any] = {}
        if args.mixed:
            load_before = os.getloadavg()[0]
            mixed = asyncio.run(
                mixed_load(
                    port,
                    auth,
                    args.rate,
                    args.duration,
                    args.connections,
                    warmup["decision_ids"],
                )
            )
            mixed["load_average_before"] = round(load_before, 2)
        else:
            load_before = os.getloadavg()[0]
            cpu0 = _tree_cpu(server.process.pid)
            dec = asyncio.run(
                decisions_load(port, auth, args.rate, args.duration, args.connections)
            )
            dec["server_cpu_ms_per_decision"] = round(
                (_tree_cpu(server.process.pid) - cpu0) * 1000 / max(dec["ok"], 1), 3
            )
            dec["load_average_before"] = round(load_before, 2)
            ids = dec.pop("decision_ids")
            # rewards need decisions to point at: log the rest straight into the table
            extra = max(0, args.rewards - len(ids))
            with factory() as session:
                exp_id = session.scalar(text("SELECT id FROM experiments WHERE key = 'bench'"))
                rows = [
                    {
                        "id": uuid.uuid4().hex,
                        "experiment_id": exp_id,
                        "unit_id": f"x{i}",
                        "arm": i % 5,
                        "probabilities": [0.2] * 5,
                        "policy_version": 0,
                        "seed": i,
                        "fallback": False,
                        "context": None,
                        "served_items": None,
                        "created_at": utcnow(),
                    }
                    for i in range(extra)
                ]
                if rows:
                    session.execute(insert(Decision), rows)
                    session.commit()
            reward_ids = ids + [r["id"] for r in rows]
            cpu0 = _tree_cpu(server.process.pid)
            rew = asyncio.run(
                rewards_load(
                    port, auth, reward_ids[: args.rewards], args.batch, args.reward_connections
                )
            )
            rew["server_cpu_ms_per_1000_rewards"] = round(
                (_tree_cpu(server.process.pid) - cpu0) * 1e6 / max(rew["acknowledged"], 1), 1
            )
    if args.mixed:
        _report_mixed(args, mixed, schema)
        return

    with factory() as session:
        n_dec = session.scalar(
            select(func.count()).select_from(Decision).where(Decision.unit_id.like("u%"))
        )
        n_rew = session.scalar(  # not the one observation row of each learned decision
            select(func.count()).select_from(Reward).where(Reward.kind != "decision")
        )
        n_learned = session.scalar(select(func.count()).select_from(Reward).where(Reward.learned))
        rebuild = audit.rebuild(session, "bench")
    warm = 400  # decisions sent by the warm-up
    checks = {
        "decisions_stored_equal_acknowledged": n_dec == dec["ok"] + warm,
        "rewards_stored_equal_acknowledged": n_rew == rew["acknowledged"] == args.rewards,
        "rewards_learned": n_learned,
        "live_state_equals_rebuild": rebuild.equal,
    }
    result = {
        "backend": args.backend,
        "workers": args.workers,
        "policy": args.policy,
        "cpus": os.cpu_count(),
        "decisions": dec,
        "rewards": rew,
        "checks": checks,
    }
    print(json.dumps(result, indent=2))
    _table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    _drop_schema(schema)


def _drop_schema(schema: str | None) -> None:
    if schema:
        eng = create_engine(PG_URL)
        with eng.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        eng.dispose()


def _report_mixed(args: argparse.Namespace, mixed: dict[str, Any], schema: str | None) -> None:
    result = {
        "backend": args.backend,
        "workers": args.workers,
        "settings": args.set,
        "cpus": os.cpu_count(),
        "mixed": mixed,
    }
    print(json.dumps(result, indent=2))
    _mixed_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    _drop_schema(schema)


def _table(r: dict[str, Any]) -> None:
    d, w = r["decisions"], r["rewards"]
    print()
    print(
        "| backend | workers | load avg | decisions/s | p50 ms | p99 ms | server CPU ms/decision "
        f"| errors | rewards/s (batch {w['batch']}) | nothing lost |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    lost = all(v for k, v in r["checks"].items() if k != "rewards_learned")
    print(
        f"| {r['backend']} | {r['workers']} | {d['load_average_before']} | "
        f"{d['throughput_rps']} | {d['p50_ms']} | {d['p99_ms']} | "
        f"{d['server_cpu_ms_per_decision']} | {d['errors']} | {w['rewards_per_s']} | "
        f"{'yes' if lost else 'NO'} |"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["items"]:
        from benchmarks.service_load_items import main as items_main

        items_main(sys.argv[2:])
    else:
        main()
