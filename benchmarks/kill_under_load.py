"""``kill -9`` under load: every acknowledged decision and reward is still stored after a restart.

For each backend: starts ``bandit-fusion serve`` (``--workers``) on a fresh store, drives an
open-loop load of decisions (``--rate`` per second, 32 keep-alive connections) and, for half
of the acknowledged decisions, a click (``reward_id`` = idempotency key), then sends SIGKILL
to the server and all its worker processes at ``--kill-after`` seconds, in the middle of the
load. Requests in flight then fail (not acknowledged). The server is started again on the
same store, and the script compares what was acknowledged (2xx answers) with what is stored:

* lost: acknowledged but not stored (must be 0);
* extra: stored but never acknowledged (requests cut by the kill after their commit: allowed);
* the live policy state equals its rebuild from the log (decisions and rewards);
* the restarted server answers decisions.

Prints a table and writes JSON with ``--json``. Not a test (it takes about a minute per
backend); run it after changing how decisions or rewards are committed::

    python benchmarks/kill_under_load.py --backend both --workers 2 --rate 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from benchmarks.decision_groups import drop_store, fresh_store  # noqa: E402
from benchmarks.service_load import Conn  # noqa: E402
from service.db import make_engine, make_sessionmaker  # noqa: E402
from service.models import Decision, Reward  # noqa: E402
from service.store import audit  # noqa: E402
from service.testing import running_server  # noqa: E402

DECISIONS = "/v1/experiments/bench/decisions"
REWARDS = "/v1/experiments/bench/rewards"


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux ``/proc``), parents first."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return out


def kill_tree(pid: int) -> int:
    """SIGKILL ``pid`` and its descendants at once (no clean shutdown); how many."""
    pids = process_tree(pid)
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    return len(pids)


async def drive(
    port: int, auth: str, rate: float, kill_after: float, tail: float, server_pid: int
) -> dict[str, Any]:
    """Open-loop decisions at ``rate``/s from 32 keep-alive connections (each acknowledged
    decision of even index clicked on the same connection) for ``kill_after + tail`` s;
    kills the server at ``kill_after`` s."""
    acked_decisions: list[str] = []
    acked_rewards: list[str] = []
    sent = {"decisions": 0, "rewards": 0, "failed": 0}
    killed: dict[str, Any] = {}
    tasks: list[asyncio.Task[None]] = []
    idle: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(32):
        idle.put_nowait(Conn("127.0.0.1", port, auth))

    async def one(i: int) -> None:
        conn = await idle.get()
        try:
            sent["decisions"] += 1
            status, data = await conn.request(DECISIONS, b'{"unit_id": "k%d"}' % i)
            if status != 201:
                sent["failed"] += 1
                return
            did = json.loads(data)["decision_id"]
            acked_decisions.append(did)
            if i % 2 == 0:
                sent["rewards"] += 1
                body = json.dumps({"decision_id": did, "kind": "click", "reward_id": f"r{i}"})
                status, _ = await conn.request(REWARDS, body.encode())
                if 200 <= status < 300:
                    acked_rewards.append(f"r{i}")
                else:
                    sent["failed"] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            sent["failed"] += 1  # connection refused or cut by the kill: not acknowledged
            conn.close()
            conn = Conn("127.0.0.1", port, auth)
        finally:
            idle.put_nowait(conn)

    t0 = time.perf_counter()

    def kill() -> None:
        killed["processes"] = kill_tree(server_pid)
        killed["at_s"] = round(time.perf_counter() - t0, 2)
        killed["in_flight"] = sum(not t.done() for t in tasks)

    timer = asyncio.get_running_loop().call_later(kill_after, kill)
    i = 0
    while (now := time.perf_counter() - t0) < kill_after + tail:
        due = i / rate
        if due > now:
            await asyncio.sleep(due - now)
        tasks.append(asyncio.create_task(one(i)))
        i += 1
    if not killed:  # the loop was too busy for the timer: kill now
        timer.cancel()
        kill()
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait().close()
    return {
        "sent": sent,
        "killed": killed,
        "acked_decisions": acked_decisions,
        "acked_rewards": acked_rewards,
    }


async def decide_n(port: int, auth: str, n: int) -> int:
    """``n`` decisions on one connection; how many were acknowledged."""
    conn = Conn("127.0.0.1", port, auth)
    ok = 0
    for i in range(n):
        status, _ = await conn.request(DECISIONS, b'{"unit_id": "after%d"}' % i)
        ok += status == 201
    conn.close()
    return ok


def one_backend(args: argparse.Namespace, backend: str, tmp: Path) -> dict[str, Any]:
    settings, auth = fresh_store(backend, tmp)
    overrides: dict[str, Any] = {"settle_interval_s": 0, "auth_cache_ttl_s": 10}
    if args.group != "default":
        overrides["decision_group_commit"] = args.group == "on"
    try:
        log = tmp / f"server-{backend}.log"
        with running_server(settings, log, workers=args.workers, **overrides) as server:
            load = asyncio.run(
                drive(server.port, auth, args.rate, args.kill_after, args.tail, server.process.pid)
            )
        log = tmp / f"server-{backend}-restarted.log"
        with running_server(settings, log, workers=args.workers, **overrides) as server:
            after = asyncio.run(decide_n(server.port, auth, 20))
        engine = make_engine(settings)
        with make_sessionmaker(engine)() as session:
            decisions = set(session.scalars(select(Decision.id)).all())
            rewards = set(
                session.scalars(select(Reward.idempotency_key).where(Reward.kind == "click"))
            )
            rebuild = audit.rebuild(session, "bench")
        engine.dispose()
    finally:
        drop_store(settings)
    acked_d, acked_r = set(load["acked_decisions"]), set(load["acked_rewards"])
    return {
        "backend": backend,
        "group_commit": args.group,
        "workers": args.workers,
        "rate": args.rate,
        "sent": load["sent"],
        "killed": load["killed"],
        "decisions_acknowledged": len(acked_d),
        "decisions_lost": len(acked_d - decisions),
        "decisions_extra": len(decisions - acked_d) - after,
        "rewards_acknowledged": len(acked_r),
        "rewards_lost": len(acked_r - rewards),
        "rewards_extra": len(rewards - acked_r),
        "live_state_equals_rebuild": rebuild.equal,
        "decisions_after_restart": after,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=200.0, help="decisions per second")
    ap.add_argument("--kill-after", type=float, default=8.0, help="seconds of load before")
    ap.add_argument("--tail", type=float, default=1.0, help="seconds of load after the kill")
    ap.add_argument(
        "--group",
        choices=["default", "on", "off"],
        default="default",
        help="decision_group_commit (default: on for PostgreSQL, off for SQLite)",
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bf-kill-"))
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = []
    for backend in backends:
        results.append(one_backend(args, backend, tmp))
        print(json.dumps(results[-1]), flush=True)
    print()
    print(
        "| backend | group commit | load avg | decisions acked / lost / extra "
        "| rewards acked / lost / extra | processes killed | rebuild equal "
        "| decisions after restart |"
    )
    print("|---|---|---|---|---|---|---|---|")
    load = round(os.getloadavg()[0], 2)
    for r in results:
        dec = f"{r['decisions_acknowledged']} / {r['decisions_lost']} / {r['decisions_extra']}"
        rew = f"{r['rewards_acknowledged']} / {r['rewards_lost']} / {r['rewards_extra']}"
        print(
            f"| {r['backend']} | {r['group_commit']} | {load} | {dec} | {rew} | "
            f"{r['killed'].get('processes')} | {r['live_state_equals_rebuild']} | "
            f"{r['decisions_after_restart']} / 20 |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if any(r["decisions_lost"] or r["rewards_lost"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
