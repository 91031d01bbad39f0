"""The final report of `bandit-fusion demo` in fuse mode: weights, clicks, audit, dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from cli.demo_fuse import LiveRun
    from simulations.movielens.run import FusionRun

FUSED = "bandit fusion (live service)"


def checkpoints(horizon: int) -> list[int]:
    """Indices of the first request and of the last of each quarter of the run."""
    return sorted({0, *(horizon * q // 4 - 1 for q in (1, 2, 3, 4))} - {-1})


def weights_table(live: LiveRun, arms: Sequence[str]) -> Any:
    """Each arm's fusion weight at a few requests, its share of the shown slots and clicks."""
    from rich.table import Table

    horizon = len(live.clicks)
    marks = checkpoints(horizon)
    table = Table(
        title=f"{live.key}: each arm's fusion weight at request 1 .. {horizon:,}, its share of "
        "the shown slots and its credited clicks"
    )
    table.add_column("arm", no_wrap=True)
    for t in marks:
        table.add_column(f"{t + 1:,}", justify="right")
    table.add_column("slots", justify="right")
    table.add_column("clicks", justify="right")
    credited = {row["arm"]: row["clicks"] for row in live.stats["arms"]}
    for a, name in enumerate(arms):
        share = float((live.source == a).mean())
        table.add_row(
            name,
            *(f"{live.weights[t, a]:.3f}" for t in marks),
            f"{share:.1%}",
            f"{credited.get(name, 0):,}",
        )
    return table


def clicks_table(live: LiveRun, runs: Sequence[FusionRun]) -> Any:
    """Clicks per request of the live fused lists against each counterfactual policy."""
    from rich.table import Table

    fused = float(live.clicks.mean())
    table = Table(title="Clicks per request: the same users and click uniforms for every policy")
    table.add_column("policy", no_wrap=True)
    for col in ("clicks / request", "clicks", "fused vs this"):
        table.add_column(col, justify="right")
    table.add_row(FUSED, f"{fused:.4f}", f"{int(live.clicks.sum()):,}", "")
    for run in sorted(runs, key=lambda r: -r.clicks_per_request):
        other = run.clicks_per_request
        gain = f"{fused / other - 1:+.1%}" if other > 0 else "n/a"
        table.add_row(run.policy, f"{other:.4f}", f"{int(run.clicks.sum()):,}", gain)
    return table


def summary(
    live: LiveRun, runs: Sequence[FusionRun], arms: Sequence[str], audit_equal: bool
) -> dict[str, Any]:
    """The report as JSON-safe data (``demo --json``)."""
    marks = checkpoints(len(live.clicks))
    return {
        "experiment": live.key,
        "requests": len(live.clicks),
        "clicks_per_request": {
            FUSED: float(live.clicks.mean()),
            **{run.policy: run.clicks_per_request for run in runs},
        },
        "weights": {
            name: {str(t + 1): float(live.weights[t, a]) for t in marks}
            for a, name in enumerate(arms)
        },
        "slot_share": {name: float((live.source == a).mean()) for a, name in enumerate(arms)},
        "agreement": live.agreement,
        "audit_equal": audit_equal,
    }


def print_report(
    console: Console,
    live: LiveRun,
    runs: Sequence[FusionRun],
    arms: Sequence[str],
    *,
    audit: str,
    audit_command: str,
    dashboard: str,
    read_key: str,
) -> None:
    """Everything the demo shows at the end."""
    console.print(weights_table(live, arms))
    console.print(clicks_table(live, runs))
    console.print(
        f"The service's lists match the offline lists of the arms: {live.agreement:.1%} of "
        "the slots hold an item from their source arm's top k (the counterfactual rows "
        "above are simulated from those lists)."
    )
    console.print(f"Audit the log: {audit_command}\n  -> {audit}")
    console.print(
        f"Dashboard: {dashboard}\n  log in with this read-only key (paste it in the form; "
        f"it is exchanged for a session cookie): {read_key}"
    )
