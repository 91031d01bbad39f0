"""Load test of decisions with items: the ml-100k arms loaded, both modes, batching on and off.

For each backend (SQLite, PostgreSQL) and each micro-batching setting (on, off), starts
``bandit-fusion serve --models DIR`` on a fresh store with three experiments:

* ``names``: five arms without recommenders (today's name-only decision, the peer);
* ``alloc``: arms backed by mf, bert, popularity and item-knn, ``allocate`` mode;
* ``fuse``: the same four, ``fuse`` mode (slot-mix);

then, at each rate (100, 200, 500 requests/s), sends an open-loop stream of decisions to each
experiment in turn (``k = 10``; units drawn from the trained users plus 10 % unknown
visitors; a third of the requests exclude 3 random items). Latency counts from each
request's due time (no coordinated omission). Per cell: p50 / p99, server CPU per decision,
the mean micro-batch size (decisions per scoring batch, from the ``X-Batch-Size`` header)
and errors. At the end, per server: the store holds exactly the acknowledged decisions, and
each decision with items stores its ``k`` items (``lost = 0``).

Targets, as ratios within one run (the noise of a shared machine hits both alike): a
``fuse`` decision costs at most 2x the server CPU of a name-only decision, and at 200
requests/s its p99 is at most 2x the name-only p99.

The models are trained once with ``bandit-fusion arms train`` into ``--models`` (default
``$BANDIT_FUSION_CACHE/service-load/ml-100k``, else ``~/.cache/bandit-fusion/...``) and
reused. Examples::

    python benchmarks/service_load.py items --short
    python benchmarks/service_load.py items --json benchmarks/results/service_load_items.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.service_load import PG_URL, Conn, _drop_schema, _open_loop, _tree_cpu  # noqa: E402
from service.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from service.models import Decision, Experiment  # noqa: E402
from service.schemas import ExperimentCreate  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.store import experiments, keys  # noqa: E402
from service.testing import running_server  # noqa: E402

ARMS = ("mf", "bert", "popularity", "item-knn")
KINDS = ("names", "alloc", "fuse")
K = 10


def default_models_dir() -> Path:
    env = os.environ.get("BANDIT_FUSION_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "bandit-fusion"
    return base / "service-load" / "ml-100k"


def cached_models(data: Path, out: Path) -> Path:
    """``out``, after training the four arms into it with ``arms train`` unless all are there."""
    if all((out / arm / "arm.json").is_file() for arm in ARMS) and (out / "split.json").is_file():
        return out
    command = [sys.executable, "-m", "cli.main", "arms", "train", "--data", str(data)]
    command += ["--out", str(out), "--arms", ",".join(ARMS), "--device", "cpu"]
    print("training the arms once:", " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)
    return out


def population(models: Path) -> tuple[np.ndarray, np.ndarray]:
    """Trained user ids and catalogue item ids (read from the popularity arm's state)."""
    state = load_file(str(models / "popularity" / "state.safetensors"))
    return state["base.user_ids"], state["base.item_ids"]


def bodies(n: int, users: np.ndarray, items: np.ndarray, seed: int) -> list[bytes]:
    """Request bodies: a trained user (90 %) or a visitor; a third exclude 3 items."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        unit = str(int(rng.choice(users))) if rng.random() < 0.9 else f"visitor-{seed}-{i}"
        body: dict[str, Any] = {"unit_id": unit, "k": K}
        if rng.random() < 1 / 3:
            body["exclude"] = [int(x) for x in rng.choice(items, 3, replace=False)]
        out.append(json.dumps(body).encode())
    return out


async def cell(
    port: int, auth: str, kind: str, rate: float, duration: float, payloads: list[bytes]
) -> dict[str, Any]:
    """One open-loop stream of decisions to experiment ``kind``; latency from due times."""
    n = int(rate * duration)
    idle: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(64):
        idle.put_nowait(Conn("127.0.0.1", port, auth))
    lat = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    sizes: list[int] = []
    path = f"/v1/experiments/{kind}/decisions"

    async def one(i: int, due: float) -> None:
        conn = await idle.get()
        try:
            status, _ = await conn.request(path, payloads[i % len(payloads)])
            lat[i] = time.perf_counter() - due
            ok[i] = status == 201
            if "x-batch-size" in conn.headers:
                sizes.append(int(conn.headers["x-batch-size"]))
        except Exception:
            conn.close()
            conn = Conn("127.0.0.1", port, auth)
        finally:
            idle.put_nowait(conn)

    await _open_loop(n, rate, one)
    while not idle.empty():
        idle.get_nowait().close()
    ms = lat[ok] * 1000
    return {
        "ok": int(ok.sum()),
        "errors": int(n - ok.sum()),
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if ms.size else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if ms.size else None,
        # decisions per batch: n requests over the batches they formed (sum of 1/size)
        "mean_batch": round(len(sizes) / sum(1 / s for s in sizes), 2) if sizes else None,
        # decisions whose lists were (partly) scored live, not all from the candidate cache
        "scored_live": round(len(sizes) / max(int(ok.sum()), 1), 3),
    }


def scoring_only(models: Path, device: str | None, users: np.ndarray) -> list[dict[str, Any]]:
    """In-process, no HTTP or database: CPU and wall time per decision of the scoring part of
    a ``fuse`` decision (the four lists, ``k = 10``) when decisions are scored in batches of
    1, 8, 32 (what micro-batching buys), and when answered from the candidate cache (row
    ``batch: "cache"``, with the time and memory to build it); torch with one thread, as the
    service runs it."""
    import torch

    from service.batching import DirectRanker, RankJob, score_jobs
    from service.candidate_cache import with_caches
    from service.recommenders import ItemRequest, load_models, warm_up

    torch.set_num_threads(1)
    recs = load_models(models, device=device)
    warm_up(recs)
    req = ItemRequest(K, np.zeros(0, np.int64), None)
    units = [str(int(u)) for u in np.random.default_rng(0).choice(users, 256)]
    out = []
    for batch in (1, 8, 32):
        jobs = [[RankJob(r, u, req) for r in recs.values()] for u in units]
        cpu0, t0 = time.process_time(), time.perf_counter()
        for start in range(0, len(jobs), batch):
            score_jobs([j for group in jobs[start : start + batch] for j in group])
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        out.append(
            {
                "batch": batch,
                "device": str(next(iter(recs.values())).arm.device_),
                "cpu_ms_per_decision": round((time.process_time() - cpu0) * 1000 / len(units), 3),
                "wall_ms_per_decision": round((time.perf_counter() - t0) * 1000 / len(units), 3),
            }
        )
    t0 = time.perf_counter()
    cached = with_caches(recs, Settings.model_fields["candidate_cache_depth"].default, 10**9)
    build_s = time.perf_counter() - t0
    jobs = [[RankJob(r, u, req) for r in cached.values()] for u in units]
    cpu0, t0 = time.process_time(), time.perf_counter()
    for group in jobs:
        DirectRanker().rank(group)
    out.append(
        {
            "batch": "cache",
            "device": str(next(iter(recs.values())).arm.device_),
            "cpu_ms_per_decision": round((time.process_time() - cpu0) * 1000 / len(units), 3),
            "wall_ms_per_decision": round((time.perf_counter() - t0) * 1000 / len(units), 3),
            "build_s": round(build_s, 2),
            "cache_mb": round(sum(r.cache.nbytes for r in cached.values() if r.cache) / 2**20, 2),
        }
    )
    return out


def make_store(backend: str, tmp: Path) -> tuple[Settings, str | None]:
    if backend == "sqlite":
        return Settings(_env_file=None, sqlite_path=tmp / "bench.db"), None  # type: ignore[call-arg]
    schema = f"bf_items_{uuid.uuid4().hex[:12]}"
    return Settings(_env_file=None, database_url=PG_URL, database_schema=schema), schema  # type: ignore[call-arg]


def prepare(settings: Settings) -> tuple[str, str]:
    """Migrate, create the three experiments; a write key and an admin key."""
    upgrade(settings)
    factory = make_sessionmaker(make_engine(settings))
    recs = dict(zip(["a", "b", "c", "d"], ARMS, strict=True))
    with factory() as session:
        write, _ = keys.create_api_key(session, "write", "bench")
        admin, _ = keys.create_api_key(session, "admin", "bench")
        for key, spec in (
            ("names", {"arms": [f"arm{i}" for i in range(5)]}),
            ("alloc", {"arms": list(recs), "recommenders": recs}),
            ("fuse", {"arms": list(recs), "recommenders": recs, "mode": "fuse"}),
        ):
            body = ExperimentCreate(key=key, seed=0, reward_window_s=None, **spec)  # type: ignore[arg-type]
            experiments.create_experiment(session, body, ARMS)
    return write, admin


def stored(settings: Settings) -> dict[str, tuple[int, int]]:
    """Per experiment: decisions stored, and those among them with ``K`` items."""
    factory = make_sessionmaker(make_engine(settings))
    out = {}
    with factory() as session:
        for key in KINDS:
            rows = (
                session.query(Decision.items)
                .join(Experiment, Experiment.id == Decision.experiment_id)
                .filter(Experiment.key == key)
                .all()
            )
            out[key] = (len(rows), sum(1 for (items,) in rows if items and len(items) == K))
    return out


def run_server(
    backend: str, batching: bool, args: argparse.Namespace, models: Path, population_: Any
) -> dict[str, Any]:
    """One server (backend x batching): every rate x kind, then the lost-nothing check."""
    tmp = Path(tempfile.mkdtemp(prefix="bf-items-"))
    settings, schema = make_store(backend, tmp)
    write, _admin = prepare(settings)
    users, items = population_
    overrides: dict[str, Any] = {
        "settle_interval_s": 0,
        "auth_cache_ttl_s": 10,
        "models_dir": models,
        "decision_batching": batching,
        "candidate_cache_depth": args.candidate_cache_depth,
    }
    if args.device:
        overrides["models_device"] = args.device
    cells = []
    acked = dict.fromkeys(KINDS, 0)
    with running_server(settings, tmp / "server.log", workers=args.workers, **overrides) as srv:
        pid = srv.process.pid
        for kind in KINDS:  # warm-up: imports, connections, the arms' lazy tables
            w = asyncio.run(cell(srv.port, write, kind, 100, 2, bodies(200, users, items, 99)))
            acked[kind] += w["ok"]
        for rate in args.rates:
            for kind in KINDS:
                payloads = bodies(int(rate * args.duration), users, items, int(rate))
                load = os.getloadavg()[0]
                cpu0 = _tree_cpu(pid)
                c = asyncio.run(cell(srv.port, write, kind, rate, args.duration, payloads))
                c["cpu_ms_per_decision"] = round(
                    (_tree_cpu(pid) - cpu0) * 1000 / max(c["ok"], 1), 3
                )
                c.update(backend=backend, batching=batching, rate=rate, kind=kind)
                c["load_average_before"] = round(load, 2)
                acked[kind] += c["ok"]
                cells.append(c)
                print(json.dumps(c), flush=True)
        health = httpx.get(f"{srv.base_url}/v1/health", timeout=10).status_code
    counts = stored(settings)
    lost = sum(acked[k] - counts[k][0] for k in KINDS) + sum(
        counts[k][0] - counts[k][1] for k in ("alloc", "fuse")
    )
    _drop_schema(schema)
    return {"cells": cells, "acknowledged": acked, "stored": counts, "lost": lost, "health": health}


def ratios(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (backend, batching, rate): fuse and alloc against names, CPU and p99."""
    out = []
    index = {(c["backend"], c["batching"], c["rate"], c["kind"]): c for c in cells}
    for (backend, batching, rate, kind), c in index.items():
        if kind == "names":
            continue
        peer = index[(backend, batching, rate, "names")]
        out.append(
            {
                "backend": backend,
                "batching": batching,
                "rate": rate,
                "kind": kind,
                "cpu_ratio": round(c["cpu_ms_per_decision"] / peer["cpu_ms_per_decision"], 2),
                "p99_ratio": round(c["p99_ms"] / peer["p99_ms"], 2) if c["p99_ms"] else None,
            }
        )
    return out


def table(cells: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    print()
    print(
        "| backend | batching | req/s | kind | load avg | p50 ms | p99 ms | CPU ms/decision "
        "| mean batch | scored live | errors | CPU / names | p99 / names |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    ratio = {(r["backend"], r["batching"], r["rate"], r["kind"]): r for r in rows}
    for c in cells:
        r = ratio.get((c["backend"], c["batching"], c["rate"], c["kind"]), {})
        print(
            f"| {c['backend']} | {'on' if c['batching'] else 'off'} | {c['rate']:g} | {c['kind']} "
            f"| {c['load_average_before']} | {c['p50_ms']} | {c['p99_ms']} "
            f"| {c['cpu_ms_per_decision']} | {c['mean_batch'] or '-'} | {c['scored_live']} "
            f"| {c['errors']} "
            f"| {r.get('cpu_ratio', '-')} | {r.get('p99_ratio', '-')} |"
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ml-100k")
    ap.add_argument("--models", type=Path, default=None, help="trained arms (cached here)")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--rates", default="100,200,500")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default=None, help="models_device of the server (default: auto)")
    ap.add_argument("--short", action="store_true", help="3 s per cell")
    ap.add_argument(
        "--candidate-cache-depth",
        type=int,
        default=Settings.model_fields["candidate_cache_depth"].default,
        help="the server's candidate_cache_depth (0: every list scored live)",
    )
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--scoring-only", action="store_true", help="only the in-process scoring table (no server)"
    )
    args = ap.parse_args(argv)
    args.rates = [float(r) for r in args.rates.split(",")]
    if args.short:
        args.duration = 3.0
    models = cached_models(args.data, args.models or default_models_dir())
    pop = population(models)
    scoring = scoring_only(models, args.device, pop[0])
    print("\nscoring part of a fuse decision (4 lists, in-process):")
    for row in scoring:
        print(json.dumps(row))
    if args.scoring_only:
        return
    servers = []
    for backend in args.backends.split(","):
        for batching in (True, False):
            servers.append(run_server(backend, batching, args, models, pop))
    cells = [c for s in servers for c in s["cells"]]
    rows = ratios(cells)
    result = {
        "cpus": os.cpu_count(),
        "workers": args.workers,
        "duration_s": args.duration,
        "k": K,
        "candidate_cache_depth": args.candidate_cache_depth,
        "load_average_end": os.getloadavg(),
        "scoring_only": scoring,
        "cells": cells,
        "ratios": rows,
        "lost": [s["lost"] for s in servers],
        "stored": [s["stored"] for s in servers],
    }
    table(cells, rows)
    print(
        f"\nlost (acknowledged but not stored, or stored without its {K} items): {result['lost']}"
    )
    print(f"load average at the end: {result['load_average_end']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
