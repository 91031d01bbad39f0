"""``bandit-fusion arms ...``: train, tune and evaluate the base recommenders.

``train`` fits the arms on the training part of a temporal split and saves each under
``OUT/<arm>/`` (with the best parameters ``tune`` stored in ``OUT/params.json``);
``evaluate`` reloads them, recomputes the same split (refusing data that gives another
one) and reports per user group precision@k, recall@k and NDCG@k with bootstrap
intervals (:mod:`arms.evaluate`); ``tune`` grid-searches one arm on the nested
validation split (:mod:`arms.tune`). The logic lives in ``arms``; these commands parse
options and print. torch and the ``arms`` package are imported inside the commands so
``--help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="Train and evaluate the recommender arms.", no_args_is_help=True)

ALL_ARMS = "mf,bert,popularity,item-knn,random,ease"

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
    """``["mf.factors=128", "bert.top_m=3"]`` -> ``{"mf": {"factors": 128}, ...}``."""
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


def _spec(test_fraction: float, split: str, cold_users: float, cold_history: int, seed: int) -> Any:
    """The :class:`arms.splits.SplitSpec`, or a usage error naming the option."""
    if split not in ("user", "global"):
        raise typer.BadParameter(
            f"must be 'user' or 'global', got {split!r}.", param_hint="'--split'"
        )
    if not 0.0 < test_fraction < 1.0:
        raise typer.BadParameter(
            f"must lie strictly between 0 and 1, got {test_fraction}.",
            param_hint="'--test-fraction'",
        )
    if not 0.0 <= cold_users < 1.0:
        raise typer.BadParameter(
            f"must lie in [0, 1), got {cold_users}.", param_hint="'--cold-users'"
        )
    if cold_history < 1:
        raise typer.BadParameter(
            f"must be at least 1, got {cold_history}.", param_hint="'--cold-history'"
        )
    from arms.splits import SplitSpec

    return SplitSpec(test_fraction, split, cold_users, cold_history, seed)


def _split(data: Path, spec: Any) -> tuple[Any, Any, Any]:
    from arms.data import load_dataset
    from arms.splits import make_split

    dataset = load_dataset(data)
    train, test = make_split(dataset.interactions, spec)
    return dataset.items, train, test


def _arm_names(arms: str) -> list[str]:
    from arms.registry import ARMS

    names = [n.strip() for n in arms.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ARMS))
    if unknown:
        raise typer.BadParameter(f"unknown arm(s) {unknown}; choose from {', '.join(ARMS)}.")
    return names


TestFractionOpt = Annotated[
    float, typer.Option(help="Share of each user's latest interactions held out")
]
SplitOpt = Annotated[str, typer.Option(help="'user' (per-user cut) or 'global' (one cut-off time)")]
ColdUsersOpt = Annotated[
    float,
    typer.Option(
        help="Share of test users whose training history is cut to --cold-history "
        "interactions (simulated cold start; 0: none)"
    ),
]
ColdHistoryOpt = Annotated[int, typer.Option(help="Training interactions a cold user keeps")]
DeviceOpt = Annotated[
    str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: CUDA if available)")
]


@app.command()
def train(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", help="Folder to write one sub-folder per arm into")],
    arms: Annotated[str, typer.Option(help="Comma-separated arm names")] = ALL_ARMS,
    test_fraction: TestFractionOpt = 0.2,
    split: SplitOpt = "user",
    cold_users: ColdUsersOpt = 0.0,
    cold_history: ColdHistoryOpt = 3,
    param: Annotated[
        list[str] | None, typer.Option(help="ARM.NAME=VALUE (JSON value), repeatable")
    ] = None,
    device: DeviceOpt = None,
    seed: Annotated[int, typer.Option(help="Seed for every arm and the cold-start users")] = 0,
) -> None:
    """Fit the arms on the training part of the temporal split and save them under OUT.

    Parameters found by 'arms tune' in OUT/params.json are used; --param overrides them.
    """
    spec = _spec(test_fraction, split, cold_users, cold_history, seed)
    from tqdm.auto import tqdm

    from arms.modeldir import SplitRecord, read_params, write_split
    from arms.registry import make_arm
    from arms.splits import split_fingerprint

    names = _arm_names(arms)
    params = read_params(out)
    overrides = _parse_params(param or [])
    _check_params(overrides, names)
    for arm_name, values in overrides.items():
        params.setdefault(arm_name, {}).update(values)
    items, train_set, test_set = _split(data, spec)
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
    record = SplitRecord(
        spec,
        split_fingerprint(train_set, test_set),
        str(data),
        names,
        timings,
        trained_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    write_split(out, record)
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
    min_rating: Annotated[
        float | None,
        typer.Option(help="Only held-out interactions with value >= this are relevant"),
    ] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples over users")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed")] = 0,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the report here")
    ] = None,
    fusions: Annotated[
        str | None,
        typer.Option(
            help="Also score fixed-weight fusions of the arms: fusers, comma-separated, or 'all'"
        ),
    ] = None,
    fusion_weights: Annotated[
        list[str] | None,
        typer.Option(help="Weights besides uniform, 'ARM=W,ARM=W' (repeatable); with --fusions"),
    ] = None,
    fusions_json: Annotated[
        Path | None, typer.Option("--fusions-json", help="Also write the fusion metrics here")
    ] = None,
    device: DeviceOpt = None,
) -> None:
    """Precision, recall and NDCG at k per arm and user group, with 95% bootstrap intervals.

    With --fusions, also precision@k, recall@k, F1@k, NDCG@k, coverage and diversity of the
    arms' lists fused by each named fuser, with uniform and with the given weights.
    """
    if k < 1:
        raise typer.BadParameter(f"must be at least 1, got {k}.", param_hint="'--k'")
    if resamples < 1:
        raise typer.BadParameter(
            f"must be at least 1, got {resamples}.", param_hint="'--resamples'"
        )
    from arms.evaluate import evaluate_lists, held_out_users, saved_lists
    from arms.modeldir import SplitMismatchError, arm_folders, read_split
    from arms.splits import split_fingerprint

    folders = arm_folders(models)
    if not folders:
        raise typer.BadParameter(
            f"{models} holds no saved arms (no */arm.json).", param_hint="'--models'"
        )
    record = read_split(models)
    items, train_set, test_set = _split(data, record.spec)
    try:
        record.check(split_fingerprint(train_set, test_set), str(data))
    except SplitMismatchError as err:
        raise typer.BadParameter(str(err), param_hint="'--data'") from err
    users = held_out_users(train_set, test_set, min_rating)
    lists = saved_lists(folders, users.users, k, device=device, progress=True)
    report = evaluate_lists(lists, users, items, k, n_resamples=resamples, seed=seed)
    _print_report(report, record, min_rating)
    if json_file is not None:
        payload = {
            "split": {**asdict(record.spec), "data": str(data)},
            "min_rating": min_rating,
            "resamples": resamples,
            "seed": seed,
            **report.as_dict(),
        }
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(payload, indent=2))
        typer.echo(f"wrote {json_file}")
    if fusions:
        from cli.fusion_eval import report_fusions

        report_fusions(
            folders,
            test_set,
            items,
            fusions=fusions,
            weights=fusion_weights,
            k=k,
            device=device,
            json_file=fusions_json,
        )


def _print_report(report: Any, record: Any, min_rating: float | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    sizes = report.group_sizes
    spec = record.spec
    console.print(
        f"{spec.by} temporal split, {spec.test_fraction:g} held out"
        + (
            f", {spec.cold_users:g} of test users cut to {spec.cold_history}"
            if spec.cold_users
            else ""
        )
        + f"; relevant: unseen held-out items{f' rated >= {min_rating:g}' if min_rating else ''}."
    )
    console.print(
        f"test users: {sizes['test users']}, of which {sizes['new']} new (no training "
        f"interaction), {sizes['cold-start']} cold-start (1-5), {sizes['warm']} warm; "
        f"{sizes['without a relevant item']} without a relevant item are left out."
    )
    for group in report.groups:
        table = Table(
            title=f"{group.name}: {group.users} users; mean [95% bootstrap interval]; "
            f"difference to the best arm ({group.best}) is paired"
        )
        table.add_column("arm")
        for metric in report.metric_names:
            table.add_column(metric, justify="right")
        table.add_column(f"{report.metric_names[-1]} - best", justify="right")
        for arm, per in group.metrics.items():
            diff = group.differences[arm][report.metric_names[-1]]
            table.add_row(
                arm,
                *(f"{e.mean:.4f} [{e.low:.4f}, {e.high:.4f}]" for e in per.values()),
                f"{diff.mean:+.4f} [{diff.low:+.4f}, {diff.high:+.4f}]",
            )
        console.print(table)
    lists = Table(title="lists (all test users)")
    lists.add_column("arm")
    lists.add_column("coverage", justify="right")
    lists.add_column("diversity", justify="right")
    for arm, stats in report.lists.items():
        lists.add_row(arm, f"{stats['coverage']:.4f}", f"{stats['diversity']:.4f}")
    console.print(lists)


@app.command()
def tune(
    data: DataOpt,
    arm: Annotated[str, typer.Option("--arm", help="The arm to tune")],
    grid: Annotated[
        list[str],
        typer.Option(help="NAME=V1,V2,... (JSON values), repeatable; every combination is fitted"),
    ],
    models: Annotated[
        Path, typer.Option("--models", help="Model folder: best parameters go to params.json")
    ],
    k: Annotated[int, typer.Option(help="List length of the validation NDCG")] = 10,
    test_fraction: TestFractionOpt = 0.2,
    split: SplitOpt = "user",
    cold_users: ColdUsersOpt = 0.0,
    cold_history: ColdHistoryOpt = 3,
    param: Annotated[
        list[str] | None, typer.Option(help="NAME=VALUE fixed for every candidate, repeatable")
    ] = None,
    device: DeviceOpt = None,
    seed: Annotated[int, typer.Option(help="Seed for the arm and the cold-start users")] = 0,
) -> None:
    """Grid-search ARM on the nested validation split of the training data (test is not used).

    Writes the best parameters into MODELS/params.json ('arms train --out MODELS' uses
    them) and every trial into MODELS/tuning/ARM.json.
    """
    spec = _spec(test_fraction, split, cold_users, cold_history, seed)
    names = _arm_names(arm)
    if len(names) != 1:
        raise typer.BadParameter("give exactly one arm.", param_hint="'--arm'")
    from arms.modeldir import write_params
    from arms.tune import parse_grid
    from arms.tune import tune as run_tune

    try:
        candidates = parse_grid(grid)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="'--grid'") from err
    fixed = {"seed": seed, "device": device}
    for pair in param or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(
                f"must look like NAME=VALUE, got {pair!r}.", param_hint="'--param'"
            )
        fixed[key.strip()] = _json_or_text(raw)
    items, train_set, _ = _split(data, spec)
    try:
        result = run_tune(
            names[0],
            train_set,
            items,
            candidates,
            k=k,
            fixed=fixed,
            progress=lambda t: typer.echo(
                f"  {t.params}: validation ndcg@{k} {t.ndcg:.4f} ({t.seconds:.1f} s)"
            ),
        )
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="'--grid'") from err
    best = {**{n: v for n, v in fixed.items() if n not in ("seed", "device")}, **result.best.params}
    tuning = {**result.as_dict(), "split": {**asdict(spec), "data": str(data)}}
    write_params(models, names[0], best, tuning)
    typer.echo(
        f"best {names[0]} {result.best.params}: validation ndcg@{k} {result.best.ndcg:.4f} "
        f"({result.validation_users} users); wrote {models / 'params.json'}"
    )


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


@app.command("list")
def list_arms() -> None:
    """Name every arm with its cold-start fallback."""
    from arms.registry import ARMS, arm_class

    for name in ARMS:
        typer.echo(f"{name:12s} cold start: {arm_class(name).cold_start}")
