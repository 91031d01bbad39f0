"""``bandit-fusion demo --mode allocate``: live allocation end to end on the embedded default.

It runs the real HTTP API in-process (no server to start) on a local SQLite file, creates an
experiment, sends synthetic traffic whose arms have hidden click rates, reports every
click (and every impression without one as a zero-valued click) through the batch reward
endpoint, and prints what the controller learned: traffic shares, observed click rates with
95% intervals, probability of being best, and the regret against always serving the best
arm, beside what uniform A/B splitting would have cost.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer


def run_allocation(
    requests: int, policy: str, rates: str, batch: int, database: Path, seed: int
) -> None:
    """Run live allocation through the HTTP API in-process on SQLite with synthetic clicks."""
    import numpy as np
    from fastapi.testclient import TestClient
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from service.app import create_app
    from service.db import make_engine, make_sessionmaker, upgrade
    from service.settings import Settings
    from service.store import keys

    console = Console(soft_wrap=True)  # commands stay on one line (copy, paste)
    try:
        true_rates = np.array([float(r) for r in rates.split(",")])
    except ValueError:
        raise typer.BadParameter(
            "rates must be comma-separated numbers", param_hint="--rates"
        ) from None
    if true_rates.size < 2 or true_rates.min() < 0 or true_rates.max() > 1:
        raise typer.BadParameter("give at least two rates in [0, 1]", param_hint="--rates")

    settings = Settings(sqlite_path=database, settle_interval_s=0)
    upgrade(settings)
    engine = make_engine(settings)
    with make_sessionmaker(engine)() as session:
        raw_key, _ = keys.create_api_key(session, "admin", name="demo")
        session.commit()
    engine.dispose()

    arms = [f"arm-{i}" for i in range(true_rates.size)]
    key = f"demo-{policy}-{int(time.time())}"
    headers = {"Authorization": f"Bearer {raw_key}"}
    rng = np.random.default_rng([seed, 0xC11C])
    chosen = np.zeros(requests, dtype=np.int64)
    with TestClient(create_app(settings)) as client:
        created = client.post(
            "/v1/experiments",
            headers=headers,
            json={
                "key": key,
                "name": "bandit-fusion demo",
                "arms": arms,
                "policy": policy,
                "seed": seed,
                "reward": {"click": 1},
                "reward_window_s": None,
            },
        )
        if created.status_code != 201:
            raise typer.BadParameter(created.json().get("detail", created.text))
        base = f"/v1/experiments/{key}"
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"{policy}: deciding and rewarding", total=requests)
            for start in range(0, requests, batch):
                rewards = []
                for i in range(start, min(start + batch, requests)):
                    d = client.post(f"{base}/decisions", headers=headers, json={"unit_id": f"u{i}"})
                    d.raise_for_status()
                    body = d.json()
                    arm = int(body["arm_index"])
                    chosen[i] = arm
                    click = float(rng.random() < true_rates[arm])
                    rewards.append(
                        {"decision_id": body["decision_id"], "kind": "click", "value": click}
                    )
                client.post(
                    f"{base}/rewards/batch", headers=headers, json={"rewards": rewards}
                ).raise_for_status()
                progress.advance(task, len(rewards))
        stats = client.get(f"{base}/stats", headers=headers).json()

    table = Table(title=f"{key}: {requests:,} decisions on {database}")
    for col in ("arm", "true rate", "traffic", "observed rate (95% CI)", "P(best)", "weight"):
        table.add_column(col, justify="right")
    for i, row in enumerate(stats["arms"]):
        mean, lo, hi = (row[k] or 0.0 for k in ("mean_reward", "ci95_low", "ci95_high"))
        table.add_row(
            row["arm"],
            f"{true_rates[i]:.3f}",
            f"{(chosen == i).mean():.1%}",
            f"{mean:.4f} ({lo:.4f}, {hi:.4f})",
            f"{row['prob_best']:.3f}",
            f"{row['weight']:.3f}",
        )
    console.print(table)
    regret = float((true_rates.max() - true_rates[chosen]).sum())
    uniform = float(requests * (true_rates.max() - true_rates.mean()))
    console.print(
        f"expected regret {regret:,.1f} clicks vs {uniform:,.1f} for a uniform A/B split "
        f"({1 - regret / uniform:.0%} fewer clicks lost)."
    )
    console.print(
        f"Audit it: BANDIT_FUSION_SQLITE_PATH={database} bandit-fusion rebuild --experiment {key}"
    )
