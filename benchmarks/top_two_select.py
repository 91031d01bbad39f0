"""Cost of one ``select()`` of top-two Thompson sampling against plain Thompson sampling.

Question: does a single top-two decision cost about one Thompson draw plus a few resamples,
whatever the number of arms?  Both policies learn the same 20,000 Bernoulli observations
(means spread evenly from 0.02 to 0.08, arms played round-robin), then ``--decisions``
single ``select()`` calls are timed (best of ``--repeat``), with K = 10 and K = 100, and
reported with their ratio measured in the same run.  Half the top-two decisions redraw until
another arm leads, so the ratio grows with the leader's probability of being best (about
1 / (1 - P(leader best)) redraws).  Prints a table and writes
``benchmarks/results/top_two_select.json``.

    python benchmarks/top_two_select.py
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from simulations.envs import linear_means

RESULTS = Path(__file__).resolve().parent / "results" / "top_two_select.json"


def time_select(name: str, k: int, decisions: int, repeat: int, seed: int) -> float:
    """Best microseconds per ``select()`` of ``name`` over ``k`` trained arms."""
    from bandit import make_policy

    policy = make_policy(name, k, seed=seed)
    rng = np.random.default_rng(seed)
    arms = np.arange(20_000) % k
    means = np.asarray(linear_means(k))
    policy.update_batch(arms, (rng.random(arms.size) < means[arms]).astype(float))
    select = policy.select
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(decisions):
            select()
        best = min(best, (time.perf_counter() - start) / decisions)
    return best * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", type=lambda s: [int(x) for x in s.split(",")], default=[10, 100])
    parser.add_argument("--decisions", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    rows: list[dict[str, Any]] = []
    for k in args.arms:
        ts = time_select("thompson", k, args.decisions, args.repeat, args.seed)
        tt = time_select("top-two-thompson", k, args.decisions, args.repeat, args.seed)
        rows.append(
            {
                "arms": k,
                "thompson_us": ts,
                "top_two_us": tt,
                "ratio": tt / ts,
            }
        )
    print(f"{'K':>4} {'thompson us':>12} {'top-two us':>11} {'ratio':>6}")
    for r in rows:
        print(
            f"{r['arms']:>4} {r['thompson_us']:>12.1f} {r['top_two_us']:>11.1f} {r['ratio']:>6.2f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "top_two_select",
                "machine": {"python": platform.python_version(), "platform": platform.platform()},
                "config": config,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
