"""``bandit-fusion demo``: the main job on the embedded default (SQLite), nothing to download.

``--mode fuse`` (the default) runs the fusion engine end to end (:mod:`cli.demo_fuse`): a
generated catalogue and population (or ``--data`` MovieLens-100K), the arms trained on it, a
``fuse`` experiment on the real HTTP API, simulated users clicking, and a report against
each arm alone and a uniform blend. ``--mode allocate`` is the allocation demo
(:mod:`cli.demo_allocate`): one arm per request, hidden click rates.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.demo_allocate import run_allocation

if TYPE_CHECKING:
    from rich.console import Console

    from cli.demo_fuse import FuseOptions


def demo(
    mode: Annotated[
        str, typer.Option(help="fuse: fused lists of the trained arms; allocate: one arm each.")
    ] = "fuse",
    requests: Annotated[
        int | None,
        typer.Option(min=100, help="Requests to simulate (default: fuse 1,500, allocate 10,000)."),
    ] = None,
    policy: Annotated[str, typer.Option(help="Policy name (see `bandit-fusion policies`).")] = (
        "thompson"
    ),
    batch: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="fuse: requests per micro-batch, after which the clicks are posted (default "
            "50); allocate: rewards per batch request (default 500).",
        ),
    ] = None,
    database: Annotated[Path, typer.Option(help="SQLite file (created if absent).")] = Path(
        "bandit_fusion_demo.db"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the data, the users, clicks and policy.")] = 0,
    data: Annotated[
        Path | None,
        typer.Option(
            help="fuse: a MovieLens-100K folder (e.g. ../shared/data/ml-100k) instead of the "
            "synthetic catalogue.",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    users: Annotated[int, typer.Option(min=50, help="fuse: synthetic users.")] = 600,
    items: Annotated[int, typer.Option(min=100, help="fuse: synthetic items.")] = 1000,
    k: Annotated[int, typer.Option(min=1, max=50, help="fuse: items per list.")] = 10,
    fuser: Annotated[str, typer.Option(help="fuse: slot-mix or team-draft.")] = "slot-mix",
    workdir: Annotated[
        Path, typer.Option(help="fuse: folder for the generated data and the model directory.")
    ] = Path("bandit_fusion_demo"),
    port: Annotated[
        int | None, typer.Option(help="fuse: port of the demo server (default: a free one).")
    ] = None,
    serve: Annotated[
        bool, typer.Option("--serve", help="fuse: keep the server (and dashboard) running.")
    ] = False,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="fuse: also write the report here.")
    ] = None,
    rates: Annotated[
        str, typer.Option(help="allocate: hidden click rate of each arm, comma-separated.")
    ] = "0.02,0.035,0.05,0.065,0.08",
) -> None:
    """Run the engine end to end on SQLite: fused lists of trained arms, or live allocation."""
    if mode == "allocate":
        run_allocation(requests or 10_000, policy, rates, batch or 500, database, seed)
        return
    if mode != "fuse":
        raise typer.BadParameter(f"must be fuse or allocate, got {mode!r}", param_hint="--mode")
    if data is None and (batch or 50) > users:
        raise typer.BadParameter(f"must be at most --users ({users})", param_hint="--batch")
    from rich.console import Console

    from cli.demo_fuse import FuseOptions

    opts = FuseOptions(
        data=data,
        users=users,
        items=items,
        requests=requests or 1_500,
        batch=batch or 50,
        k=k,
        policy=policy,
        fuser=fuser,
        seed=seed,
        database=database,
        workdir=workdir,
        port=port,
        serve=serve,
        json_file=json_file,
    )
    run_fusion(opts, Console(soft_wrap=True))  # commands stay on one line (copy, paste)


def run_fusion(opts: FuseOptions, console: Console) -> None:
    """Data and arms, the live ``fuse`` experiment, the counterfactuals and the report."""
    import httpx

    from cli.demo_fuse import (
        ThreadedServer,
        baselines,
        create_experiment,
        prepare,
        run_live,
    )
    from cli.demo_report import print_report, summary
    from service.db import make_engine, make_sessionmaker, upgrade
    from service.settings import Settings
    from service.store import audit, keys
    from service.testing import free_port

    started = time.perf_counter()
    env, models, _ = prepare(opts, console)
    settings = Settings(
        database_url=None, sqlite_path=opts.database, settle_interval_s=0, models_dir=models
    )
    upgrade(settings)
    engine = make_engine(settings)
    with make_sessionmaker(engine)() as session:
        admin_key, _ = keys.create_api_key(session, "admin", name="demo")
        read_key, _ = keys.create_api_key(session, "read", name="demo dashboard")
        session.commit()
    admin = {"Authorization": f"Bearer {admin_key}"}
    server = ThreadedServer(settings, opts.port or free_port())
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            loaded = client.get("/v1/models", headers=admin).json()["models"]
            console.print(
                "service loaded: "
                + ", ".join(f"{m['name']} ({m['n_items']:,} items)" for m in loaded)
            )
            key = create_experiment(client, admin, opts, env.world.arm_names)
            live_start = time.perf_counter()
            live = run_live(client, admin, key, env, opts.seed, console)
            live_s = time.perf_counter() - live_start
        console.print(
            f"{env.horizon:,} fused decisions and {int(live.clicks.sum()):,} clicks through "
            f"the HTTP API in {live_s:.1f} s ({1000 * live_s / env.horizon:.1f} ms per request "
            "with its share of the reward batches)"
        )
        runs = baselines(env, opts.seed)
        with make_sessionmaker(engine)() as session:
            res = audit.rebuild(session, key)
        engine.dispose()
        verdict = "equal" if res.equal else "DIFFERS"
        if opts.json_file is not None:
            report = summary(live, runs, env.world.arm_names, res.equal)
            opts.json_file.write_text(json.dumps(report, indent=2))
        dashboard = f"{server.url}/dashboard/experiments/{key}"
        print_report(
            console,
            live,
            runs,
            env.world.arm_names,
            audit=f"{key}: {verdict} (version {res.version}, {res.updates} updates, "
            f"{res.observations} observations)",
            audit_command=f"BANDIT_FUSION_SQLITE_PATH={opts.database} bandit-fusion rebuild "
            f"--experiment {key}",
            dashboard=dashboard,
            read_key=read_key,
        )
        console.print(f"demo finished in {time.perf_counter() - started:.0f} s")
        if opts.serve:
            console.print(f"Serving on {server.url} until Ctrl-C.")
            server.wait()
        else:
            console.print(
                f"(The server stops with the demo: add --serve, or run "
                f"BANDIT_FUSION_SQLITE_PATH={opts.database} bandit-fusion serve --models "
                f"{models} --port {server.port}.)"
            )
    finally:
        server.stop()
