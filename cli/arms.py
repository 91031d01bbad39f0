"""``bandit-fusion arms ...``: train and evaluate the base recommenders.

``train`` fits the arms on the training part of a temporal split and saves each under
``OUT/<arm>/``; ``evaluate`` reloads them, recomputes the same split and reports
Recall@k, NDCG@k, catalogue coverage and genre intra-list diversity per arm. torch and
the ``arms`` package are imported inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="Train and evaluate the recommender arms.", no_args_is_help=True)

ALL_ARMS = "mf,bert,popularity,item-knn,random"
SPLIT_FILE = "split.json"

DataOpt = Annotated[
    Path,
    typer.Option(
        "--data",
        help="Folder: MovieLens-100K (u.data, u.item) or interactions.* + items.*",
        exists=True,
        file_okay=False,
    ),
]


def _parse_params(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``["mf.factors=128", "bert.half_life_days=null"]`` -> ``{"mf": {"factors": 128}, ...}``."""
    params: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        arm, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise typer.BadParameter(f"--param must look like ARM.NAME=VALUE, got {pair!r}.")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        params.setdefault(arm, {})[name] = value
    return params


def _check_params(params: dict[str, dict[str, Any]], names: list[str]) -> None:
    """Refuse ``--param`` values for arms not trained or names their class does not take."""
    import inspect

    from arms.registry import arm_class

    for arm, values in params.items():
        if arm not in names:
            raise typer.BadParameter(
                f"{arm!r} is not among the arms trained ({', '.join(names)}).",
                param_hint="'--param'",
            )
        valid: set[str] = set()
        for cls in arm_class(arm).__mro__:
            if "__init__" not in vars(cls) or cls is object:
                continue
            signature = inspect.signature(cls.__init__)  # type: ignore[misc]
            valid |= {
                p.name
                for p in signature.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            }
            if not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
                break
        unknown = sorted(set(values) - valid)
        if unknown:
            raise typer.BadParameter(
                f"{arm} has no parameter {', '.join(unknown)}; it takes "
                f"{', '.join(sorted(valid))}.",
                param_hint="'--param'",
            )


def _split(data: Path, test_fraction: float, by: str) -> tuple[Any, Any, Any]:
    from arms.data import load_dataset, temporal_split

    dataset = load_dataset(data)
    train, test = temporal_split(dataset.interactions, test_fraction, by=by)  # type: ignore[arg-type]
    return dataset.items, train, test


@app.command()
def train(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", help="Folder to write one sub-folder per arm into")],
    arms: Annotated[str, typer.Option(help="Comma-separated arm names")] = ALL_ARMS,
    test_fraction: Annotated[
        float, typer.Option(help="Share of each user's latest interactions held out")
    ] = 0.2,
    split: Annotated[
        str, typer.Option(help="'user' (per-user cut) or 'global' (one cut-off time)")
    ] = "user",
    param: Annotated[
        list[str] | None, typer.Option(help="ARM.NAME=VALUE (JSON value), repeatable")
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: CUDA if available)")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for every arm")] = 0,
) -> None:
    """Fit the arms on the training part of the temporal split and save them under OUT."""
    if split not in ("user", "global"):
        raise typer.BadParameter(
            f"must be 'user' or 'global', got {split!r}.", param_hint="'--split'"
        )
    if not 0.0 < test_fraction < 1.0:
        raise typer.BadParameter(
            f"must lie strictly between 0 and 1, got {test_fraction}.",
            param_hint="'--test-fraction'",
        )
    from tqdm.auto import tqdm

    from arms.registry import ARMS, make_arm

    names = [n.strip() for n in arms.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ARMS))
    if unknown:
        raise typer.BadParameter(f"unknown arm(s) {unknown}; choose from {', '.join(ARMS)}.")
    params = _parse_params(param or [])
    _check_params(params, names)
    items, train_set, test_set = _split(data, test_fraction, split)
    out.mkdir(parents=True, exist_ok=True)
    typer.echo(
        f"train: {len(train_set):,} interactions, test: {len(test_set):,}, "
        f"catalogue: {len(items):,} items"
    )
    timings = {}
    for name in tqdm(names, desc="training arms"):
        start = time.perf_counter()
        arm = make_arm(name, **{"seed": seed, "device": device, **params.get(name, {})})
        arm.fit(train_set, items)
        arm.save(out / name)
        timings[name] = round(time.perf_counter() - start, 2)
    meta = {
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data": str(data),
        "test_fraction": test_fraction,
        "split": split,
        "arms": names,
        "fit_seconds": timings,
    }
    (out / SPLIT_FILE).write_text(json.dumps(meta, indent=2))
    typer.echo(f"saved {len(names)} arm(s) to {out} (fit seconds: {timings})")


@app.command()
def evaluate(
    data: DataOpt,
    models: Annotated[
        Path,
        typer.Option(
            "--models", help="Folder written by 'arms train'", exists=True, file_okay=False
        ),
    ],
    k: Annotated[int, typer.Option(help="List length")] = 10,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the metrics here")
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, ... (default: CUDA if available)")
    ] = None,
) -> None:
    """Report Recall@k, NDCG@k, coverage and diversity per arm on the held-out interactions."""
    from rich.console import Console
    from rich.table import Table
    from tqdm.auto import tqdm

    from arms.evaluate import evaluate_arm
    from arms.registry import load_arm

    meta_path = models / SPLIT_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    items, _, test_set = _split(
        data, float(meta.get("test_fraction", 0.2)), str(meta.get("split", "user"))
    )
    folders = sorted(p.parent for p in models.glob("*/arm.json"))
    if not folders:
        raise typer.BadParameter(
            f"{models} holds no saved arms (no */arm.json).", param_hint="--models"
        )
    order = {name: i for i, name in enumerate(meta.get("arms", []))}
    folders.sort(key=lambda p: (order.get(p.name, len(order)), p.name))
    results: dict[str, dict[str, float]] = {}
    for folder in tqdm(folders, desc="evaluating arms"):
        arm = load_arm(folder, device=device)
        row = evaluate_arm(arm, test_set, items, k=k, progress=True)
        results[arm.name] = {
            key: round(row[key], 4) for key in (f"recall@{k}", f"ndcg@{k}", "coverage", "diversity")
        }
    table = Table(
        title=f"Arms on the held-out {meta.get('test_fraction', 0.2)} "
        f"({meta.get('split', 'user')} temporal split), {int(row['users'])} users"
    )
    table.add_column("arm")
    for key in (f"recall@{k}", f"ndcg@{k}", "coverage", "diversity"):
        table.add_column(key, justify="right")
    for name, metrics in results.items():
        table.add_row(name, *(f"{v:.4f}" for v in metrics.values()))
    Console().print(table)
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(results, indent=2))
        typer.echo(f"wrote {json_file}")


@app.command("list")
def list_arms() -> None:
    """Name every arm with its cold-start fallback."""
    from arms.registry import ARMS, arm_class

    for name in ARMS:
        typer.echo(f"{name:12s} cold start: {arm_class(name).cold_start}")
