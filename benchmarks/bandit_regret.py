"""How much regret: ours against river and MABWiser, stationary and with the means reversed.

Question: do our policies reach the regret we promise, and do they match or beat the peer
libraries on the same reward tables?

* stationary -- Bernoulli arms with means spread evenly from 0.02 to 0.08 (K = 10,
  T = 100,000): ours (``ucb1``, ``kl-ucb``, ``thompson``; every registered policy with
  ``--all-policies``) and the peers (river UCB and Thompson sampling with a Beta prior, MABWiser
  UCB1 and Thompson sampling, through :mod:`simulations.peers`);
* reversal -- the same means reversed at T/2: the adaptive variants (discounted-thompson,
  discounted-ucb, sliding-window-thompson, sliding-window-ucb, discounted-kl-ucb,
  sliding-window-kl-ucb, glr-thompson) against stationary
  ``thompson``, each with its default parameters.

Final expected regret, mean and 95% t-interval over ``--seeds`` seeds (>= 20 for the targets),
computed by the :mod:`simulations` runner in parallel processes.  Prints a table and which
targets pass, writes ``benchmarks/results/bandit_regret.json``.

    python benchmarks/bandit_regret.py                        # full (MABWiser dominates)
    python benchmarks/bandit_regret.py --peer-seeds 5         # peers on fewer seeds
    python benchmarks/bandit_regret.py --quick                # T = 20,000, 5 seeds, no MABWiser
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from simulations.envs import AnyEnvironment, linear_means, make_env
from simulations.report import summarize
from simulations.runner import PolicySpec, RunResult, run_grid

RESULTS = Path(__file__).resolve().parent / "results" / "bandit_regret.json"
STATIONARY = ["ucb1", "kl-ucb", "thompson"]
ADAPTIVE = [
    "discounted-thompson",
    "discounted-ucb",
    "sliding-window-thompson",
    "sliding-window-ucb",
    "discounted-kl-ucb",
    "sliding-window-kl-ucb",
    "glr-thompson",
]
PEERS = {
    "river": ["river-ucb", "river-thompson"],
    "mabwiser": ["mabwiser-ucb1", "mabwiser-thompson"],
}


def _run(
    env: AnyEnvironment, names: list[str], seeds: int, jobs: int | None, progress: bool
) -> list[RunResult]:
    specs = [PolicySpec(name) for name in names]
    # Only the final regret is needed: keep one written row per run.
    return list(
        run_grid([env], specs, range(seeds), jobs=jobs, record_every=env.horizon, progress=progress)
    )


def targets(summary: list[dict[str, Any]], seeds: int) -> list[dict[str, Any]]:
    """The quality targets, each with the measured value and whether it passes."""
    by = {(s["env"], s["policy"]): s for s in summary}
    out = []

    def check(name: str, value: float | None, ok: bool | None) -> None:
        out.append({"target": name, "value": value, "pass": ok})

    enough = seeds >= 20
    for policy, bound in (("thompson", 260.0), ("kl-ucb", 350.0)):
        row = by.get(("bernoulli-stationary", policy))
        value = row["regret_mean"] if row else None
        check(
            f"stationary {policy} regret <= {bound:g} (>= 20 seeds)",
            value,
            None if value is None or not enough else value <= bound,
        )
    baseline = by.get(("bernoulli-reversal", "thompson"))
    adaptive = [by[("bernoulli-reversal", p)] for p in ADAPTIVE if ("bernoulli-reversal", p) in by]
    if adaptive and baseline:
        best = min(adaptive, key=lambda s: s["regret_mean"])
        value = best["regret_mean"]
        check(
            f"reversal: best adaptive ({best['policy']}) regret <= 850",
            value,
            value <= 850 if enough else None,
        )
        reduction = 1.0 - value / baseline["regret_mean"]
        check(
            f"reversal: best adaptive >= 30% below thompson ({baseline['regret_mean']:.0f})",
            reduction,
            reduction >= 0.30 if enough else None,
        )
    return out


def print_table(summary: list[dict[str, Any]], checks: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in ("env", "policy", "seeds", "regret", "95% interval", "s/run"):
        table.add_column(col, justify="left" if col in ("env", "policy") else "right")
    for s in summary:
        table.add_row(
            s["env"],
            s["policy"],
            str(s["n_seeds"]),
            f"{s['regret_mean']:.1f}",
            f"[{s['regret_ci_low']:.1f}, {s['regret_ci_high']:.1f}]",
            f"{s['wall_time_s']:.2f}",
        )
    console = Console(width=140)
    console.print(table)
    for c in checks:
        status = {True: "PASS", False: "FAIL", None: "n/a (fewer than 20 seeds)"}[c["pass"]]
        value = c["value"]
        shown = (
            "-" if value is None else (f"{value:.1%}" if "30%" in c["target"] else f"{value:.1f}")
        )
        console.print(f"{status:<5}  {c['target']}: {shown}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", type=int, default=10)
    parser.add_argument("--horizon", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument(
        "--peer-seeds",
        type=int,
        default=None,
        help="seeds for the peer libraries (default: --seeds)",
    )
    parser.add_argument(
        "--peers",
        type=lambda s: [p for p in s.split(",") if p],
        default=["river", "mabwiser"],
        help="comma-separated; '' for none",
    )
    parser.add_argument(
        "--all-policies",
        action="store_true",
        help="every registered policy on the stationary environment",
    )
    parser.add_argument("--jobs", type=int, default=None, help="worker processes")
    parser.add_argument(
        "--quick", action="store_true", help="T = 20,000, 5 seeds, river only (targets not judged)"
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.horizon, args.seeds, args.peers = 20_000, 5, ["river"]
    unknown = set(args.peers) - set(PEERS)
    if unknown:
        parser.error(f"unknown peers {sorted(unknown)}; choose from {', '.join(PEERS)}.")
    peer_seeds = args.peer_seeds or args.seeds

    started = time.perf_counter()
    means = linear_means(args.arms, 0.02, 0.08)
    stationary = make_env("bernoulli", means, args.horizon)
    reversal = make_env("bernoulli-reversal", means, args.horizon)
    ours = STATIONARY
    if args.all_policies:
        from bandit import POLICIES

        ours = [p for p in POLICIES if p != "gaussian-thompson"] + ["gaussian-thompson"]
    peers = [name for lib in args.peers for name in PEERS[lib]]

    results = _run(stationary, ours, args.seeds, args.jobs, args.progress)
    if peers:
        results += _run(stationary, peers, peer_seeds, args.jobs, args.progress)
    results += _run(reversal, ["thompson", *ADAPTIVE], args.seeds, args.jobs, args.progress)
    summary = summarize(results)
    checks = targets(summary, args.seeds)
    print_table(
        summary,
        checks,
        f"Final expected regret, K={args.arms}, T={args.horizon:,}, "
        "means 0.02..0.08 (reversal: reversed at T/2)",
    )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "bandit_regret",
                "machine": {"python": platform.python_version(), "platform": platform.platform()},
                "config": {**config, "peer_seeds": peer_seeds, "means": list(means)},
                "summary": summary,
                "targets": checks,
                "all_targets_pass": all(c["pass"] for c in checks),
                "wall_time_s": time.perf_counter() - started,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
