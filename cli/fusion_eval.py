"""``bandit-fusion arms evaluate --fusions``: ranking metrics of fixed-weight fusions of the arms.

Parses the fusion options, reloads the saved arms and prints one row per (fuser, weights)
from :func:`simulations.movielens.evaluate.evaluate_fusions`.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

__all__ = ["parse_weights", "report_fusions"]


def parse_weights(specs: list[str] | None, arm_names: list[str]) -> list[tuple[str, list[float]]]:
    """``["mf=0.6,item-knn=0.4"]`` -> ``[("mf=0.6,item-knn=0.4", [0.6, 0.4, 0, ...])]``.

    Arms left out get weight 0; the weights must sum to 1.

    >>> parse_weights(["a=0.25,b=0.75"], ["a", "b"])
    [('a=0.25,b=0.75', [0.25, 0.75])]
    """
    out = []
    for spec in specs or []:
        weights = dict.fromkeys(arm_names, 0.0)
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, eq, value = part.partition("=")
            if not eq or name.strip() not in weights:
                raise typer.BadParameter(
                    f"expected ARM=WEIGHT with ARM in {', '.join(arm_names)}, got {part!r}.",
                    param_hint="--fusion-weights",
                )
            try:
                weights[name.strip()] = float(value)
            except ValueError:
                raise typer.BadParameter(
                    f"weight of {name.strip()!r} must be a number, got {value!r}.",
                    param_hint="--fusion-weights",
                ) from None
        if abs(sum(weights.values()) - 1.0) > 1e-6 or min(weights.values()) < 0:
            raise typer.BadParameter(
                f"weights must be non-negative and sum to 1, got {spec!r}.",
                param_hint="--fusion-weights",
            )
        out.append((spec, list(weights.values())))
    return out


def report_fusions(
    folders: list[Path],
    test: Any,
    items: Any,
    *,
    fusions: str,
    weights: list[str] | None,
    k: int,
    device: str | None,
    json_file: Path | None,
) -> None:
    """Evaluate the fusers named in ``fusions`` (comma-separated, or ``all``) and print them."""
    from rich.console import Console
    from rich.table import Table

    from arms.registry import load_arm
    from bandit import FUSERS
    from simulations.movielens.evaluate import evaluate_fusions

    names = list(FUSERS) if fusions.strip() == "all" else [f.strip() for f in fusions.split(",")]
    unknown = [n for n in names if n not in FUSERS]
    if unknown or not names:
        raise typer.BadParameter(
            f"unknown fuser(s) {unknown}; choose from {', '.join(FUSERS)} or 'all'.",
            param_hint="--fusions",
        )
    arms = [load_arm(folder, device=device) for folder in folders]
    arm_names = [arm.name for arm in arms]
    try:
        scores = evaluate_fusions(
            arms, test, items, fusers=names, weights=parse_weights(weights, arm_names), k=k
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    table = Table(title=f"Fixed-weight fusions of {', '.join(arm_names)} ({scores[0].users} users)")
    columns = (
        "fuser",
        "weights",
        f"P@{k}",
        f"R@{k}",
        f"F1@{k}",
        f"NDCG@{k}",
        "coverage",
        "diversity",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("fuser", "weights") else "right")
    for s in scores:
        table.add_row(
            s.fuser,
            s.weights_label,
            *(f"{v:.4f}" for v in (s.precision, s.recall, s.f1, s.ndcg, s.coverage, s.diversity)),
        )
    console = Console()
    (console if console.is_terminal else Console(width=140)).print(table)
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps([asdict(s) for s in scores], indent=2))
        typer.echo(f"wrote {json_file}")
