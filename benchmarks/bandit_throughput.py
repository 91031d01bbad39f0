"""How many decisions per second: ours against river and MABWiser, online and batched.

Question: is our ``select``/``update`` hot path fast enough to sit in a request path, and how
does it compare with the peer libraries on the same machine, seeds and reward tables?

* online  -- one ``select`` + one ``update`` per round (river ``pull``/``update``;
  MABWiser ``predict``/``partial_fit``);
* batched -- ``--batch`` decisions, then one update with the whole batch (ours
  ``select_batch(n).arms``/``update_batch``, propensities not read, so never computed;
  MABWiser ``predict`` of many + one ``partial_fit``; river has no batch API, so ``--batch``
  pulls then as many updates);
* batched+p -- ours only: the same, reading every decision's propensity
  (``arms, propensities = select_batch(n)``), as a service logging each decision does.

Bernoulli arms with means spread evenly from 0.02 to 0.08, K = 10 and K = 100.  Peers are slow,
so they play ``--peer-horizon`` rounds while ours plays ``--horizon``; the table reports rounds
per second.  Each cell is the best of ``--repeat`` (ours) or ``--peer-repeat`` (peers)
timings.  Prints a table and the targets (absolute ones were set from peers measured earlier on
the same machine; the "x river" ones compare with river in the same run), and writes
``benchmarks/results/bandit_throughput.json``.

    python benchmarks/bandit_throughput.py                 # full: T = 100,000, peers 20,000
    python benchmarks/bandit_throughput.py --quick         # about 15 s, one timing each
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from simulations.envs import Stationary, linear_means

RESULTS = Path(__file__).resolve().parent / "results" / "bandit_throughput.json"

# (policy, mode, K) -> (target rounds/s or None, required ratio to river or None)
TARGETS: dict[tuple[str, str, int], tuple[float | None, float | None]] = {
    ("ucb1", "online", 10): (240_000, 2.0),
    ("thompson", "online", 10): (100_000, 2.0),
    ("ucb1", "online", 100): (None, 8.0),
    ("thompson", "online", 100): (None, 8.0),
    ("ucb1", "batched", 10): (10_000_000, None),
    ("thompson", "batched", 10): (2_000_000, None),
}
MODES = ("online", "batched", "batched+p")


# --------------------------------------------------------------------------- players
# Each player plays ``rounds`` rounds of ``table`` (shape (T, K)) and returns seconds spent.


def ours_online(name: str, table: np.ndarray, rounds: int, seed: int) -> float:
    from bandit import make_policy

    policy = make_policy(name, n_arms=table.shape[1], seed=seed)
    select, update, rewards = policy.select, policy.update, table.data
    start = time.perf_counter()
    for t in range(rounds):
        arm = select().arm
        update(arm, rewards[t, arm])
    return time.perf_counter() - start


def ours_batched(
    name: str, table: np.ndarray, rounds: int, seed: int, batch: int, propensities: bool = False
) -> float:
    from bandit import make_policy

    policy = make_policy(name, n_arms=table.shape[1], seed=seed)
    logged = 0.0
    start = time.perf_counter()
    for lo in range(0, rounds, batch):
        n = min(batch, rounds - lo)
        chosen = policy.select_batch(n)
        arms = chosen.arms
        if propensities:
            logged += float(chosen.propensities[-1])  # read before the update, as a log would
        policy.update_batch(arms, table[np.arange(lo, lo + n), arms])
    seconds = time.perf_counter() - start
    assert not propensities or logged > 0.0
    return seconds


def ours_batched_propensities(
    name: str, table: np.ndarray, rounds: int, seed: int, batch: int
) -> float:
    return ours_batched(name, table, rounds, seed, batch, propensities=True)


def _river(name: str, seed: int) -> Any:
    from river import bandit, proba

    if name == "ucb1":
        return bandit.UCB(delta=1.0, seed=seed)
    return bandit.ThompsonSampling(reward_obj=proba.Beta(), seed=seed)


def river_online(name: str, table: np.ndarray, rounds: int, seed: int) -> float:
    policy = _river(name, seed)
    ids, rewards = list(range(table.shape[1])), table.data
    pull, update = policy.pull, policy.update
    start = time.perf_counter()
    for t in range(rounds):
        arm = pull(ids)
        update(arm, rewards[t, arm])
    return time.perf_counter() - start


def river_batched(name: str, table: np.ndarray, rounds: int, seed: int, batch: int) -> float:
    policy = _river(name, seed)
    ids, rewards = list(range(table.shape[1])), table.data
    pull, update = policy.pull, policy.update
    start = time.perf_counter()
    for lo in range(0, rounds, batch):
        hi = min(lo + batch, rounds)
        arms = [pull(ids) for _ in range(lo, hi)]
        for t, arm in zip(range(lo, hi), arms, strict=True):
            update(arm, rewards[t, arm])
    return time.perf_counter() - start


def _mabwiser(name: str, table: np.ndarray, seed: int) -> Any:
    """A fitted MAB: MABWiser cannot predict before ``fit``; it sees each arm once (untimed)."""
    from mabwiser.mab import MAB, LearningPolicy

    k = table.shape[1]
    policy = LearningPolicy.UCB1(alpha=1.0) if name == "ucb1" else LearningPolicy.ThompsonSampling()
    mab = MAB(list(range(k)), policy, seed=seed)
    arms = np.arange(k)
    mab.fit(arms, table[arms, arms])
    return mab


def mabwiser_online(name: str, table: np.ndarray, rounds: int, seed: int) -> float:
    mab = _mabwiser(name, table, seed)
    rewards = table.data
    predict, partial_fit = mab.predict, mab.partial_fit
    start = time.perf_counter()
    for t in range(rounds):
        arm = predict()
        partial_fit([arm], [rewards[t, arm]])
    return time.perf_counter() - start


def mabwiser_batched(name: str, table: np.ndarray, rounds: int, seed: int, batch: int) -> float:
    mab = _mabwiser(name, table, seed)
    start = time.perf_counter()
    for lo in range(0, rounds, batch):
        n = min(batch, rounds - lo)
        arms = np.asarray(mab.predict(np.zeros((n, 1))), dtype=np.int64)
        mab.partial_fit(arms, table[np.arange(lo, lo + n), arms])
    return time.perf_counter() - start


PLAYERS: dict[str, dict[str, Callable[..., float]]] = {
    "ours": {
        "online": ours_online,
        "batched": ours_batched,
        "batched+p": ours_batched_propensities,
    },
    "river": {"online": river_online, "batched": river_batched},
    "mabwiser": {"online": mabwiser_online, "batched": mabwiser_batched},
}


# --------------------------------------------------------------------------- driver


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Time every (K, policy, mode, library) cell; best of ``--repeat`` runs each."""
    rows = []
    libraries = ["ours", *args.peers]
    for k in args.arms:
        table = Stationary(linear_means(k), args.horizon).reward_table(args.seed)
        for name in args.policies:
            for mode in args.modes:
                for library in libraries:
                    if mode not in PLAYERS[library]:
                        continue  # peers report no propensities
                    rounds = (
                        args.horizon if library == "ours" else min(args.peer_horizon, args.horizon)
                    )
                    repeat = args.repeat if library == "ours" else args.peer_repeat
                    extra = (args.batch,) if mode != "online" else ()
                    play = PLAYERS[library][mode]
                    seconds = min(
                        play(name, table, rounds, args.seed, *extra) for _ in range(repeat)
                    )
                    rows.append(
                        {
                            "arms": k,
                            "policy": name,
                            "mode": mode,
                            "library": library,
                            "rounds": rounds,
                            "seconds": seconds,
                            "rounds_per_s": rounds / seconds,
                        }
                    )
                    print(
                        f"  K={k:<4} {name:<9} {mode:<8} {library:<9} "
                        f"{rounds / seconds:>14,.0f} rounds/s",
                        flush=True,
                    )
    return rows


def compare(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ours vs the best peer (and river) per cell, with the targets that apply."""
    cells: dict[tuple[int, str, str], dict[str, float]] = {}
    for row in rows:
        cells.setdefault((row["arms"], row["policy"], row["mode"]), {})[row["library"]] = row[
            "rounds_per_s"
        ]
    out = []
    for (k, name, mode), speeds in cells.items():
        peers = {lib: v for lib, v in speeds.items() if lib != "ours"}
        best_peer = max(peers, key=peers.__getitem__) if peers else None
        ours = speeds.get("ours", float("nan"))
        target, river_ratio = TARGETS.get((name, mode, k), (None, None))
        checks = {}
        if target is not None:
            checks[f">= {target:,.0f}/s ({ours / target:.2f}x)"] = ours >= target
        if river_ratio is not None and "river" in speeds:
            checks[f">= {river_ratio:g}x river"] = ours >= river_ratio * speeds["river"]
        out.append(
            {
                "arms": k,
                "policy": name,
                "mode": mode,
                "ours": ours,
                **peers,
                "best_peer": best_peer,
                "ratio_to_best_peer": ours / peers[best_peer] if best_peer else None,
                "ratio_to_river": ours / speeds["river"] if "river" in speeds else None,
                "targets": checks,
                "target": target,
                "margin_to_target": ours / target if target else None,
            }
        )
    return out


def print_table(comparison: list[dict[str, Any]], peers: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Throughput, rounds/s (best of repeats)")
    for col in ("K", "policy", "mode", "ours", *peers, "ours / best peer", "targets"):
        table.add_column(col, justify="left" if col in ("policy", "mode", "targets") else "right")
    for c in comparison:
        ratio = c["ratio_to_best_peer"]
        table.add_row(
            str(c["arms"]),
            c["policy"],
            c["mode"],
            f"{c['ours']:,.0f}",
            *(f"{c[p]:,.0f}" if p in c else "-" for p in peers),
            f"{ratio:.1f}x ({c['best_peer']})" if ratio else "-",
            ", ".join(f"{name} {'PASS' if ok else 'FAIL'}" for name, ok in c["targets"].items())
            or "-",
        )
    Console(width=160).print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", type=lambda s: [int(x) for x in s.split(",")], default=[10, 100])
    parser.add_argument("--policies", type=lambda s: s.split(","), default=["ucb1", "thompson"])
    parser.add_argument("--modes", type=lambda s: s.split(","), default=list(MODES))
    parser.add_argument(
        "--peers",
        type=lambda s: [p for p in s.split(",") if p],
        default=["river", "mabwiser"],
        help="comma-separated; '' for none",
    )
    parser.add_argument("--horizon", type=int, default=100_000, help="rounds for ours")
    parser.add_argument("--peer-horizon", type=int, default=20_000, help="rounds for peers")
    parser.add_argument("--batch", type=int, default=1_000, help="decisions per batched update")
    parser.add_argument("--repeat", type=int, default=3, help="timings of ours (best kept)")
    parser.add_argument("--peer-repeat", type=int, default=3, help="timings of each peer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="T = 20,000 for ours, 5,000 for peers, one timing each"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.horizon, args.peer_horizon, args.repeat, args.peer_repeat = 20_000, 5_000, 1, 1
    unknown = set(args.peers) - {"river", "mabwiser"}
    if unknown:
        parser.error(f"unknown peers {sorted(unknown)}; choose from river, mabwiser.")

    started = time.perf_counter()
    rows = measure(args)
    comparison = compare(rows)
    print_table(comparison, args.peers)
    checks = [(c, name, ok) for c in comparison for name, ok in c["targets"].items()]
    for c, name, ok in checks:
        print(
            f"{'PASS' if ok else 'FAIL'}  K={c['arms']} {c['policy']} {c['mode']}: "
            f"{c['ours']:,.0f} rounds/s {name}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "bandit_throughput",
                "machine": {
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "processor": platform.processor(),
                },
                "config": config,
                "rows": rows,
                "comparison": comparison,
                "all_targets_pass": all(ok for _, _, ok in checks),
                "wall_time_s": time.perf_counter() - started,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
