"""Replay throughput: Thompson sampling replayed on a 100,000-row uniform log, against river.

Same log, same run, interleaved repeats (the machine is shared: compare the ratios):

* ``exact``   -- ``simulations.replay.replay(batch=1)``: per-row semantics (the policy may
  change after every counted row; between counted rows its choices come from
  ``select_batch`` on the unchanged state);
* ``batch=B`` -- the policy learns with ``update_batch`` every B logged rows;
* ``river``   -- ``river.bandit.evaluate_offline`` with ``ThompsonSampling(Beta)``.

Run: ``PYTHONPATH=. python benchmarks/ope_replay.py`` (writes benchmarks/results/ope_replay.json)
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from bandit import make_policy
from simulations.envs import linear_means
from simulations.replay import replay
from simulations.synthetic_logs import bernoulli_log


def run_ours(log: Any, batch: int, seed: int) -> tuple[float, int, float]:
    start = time.perf_counter()
    result = replay(make_policy("thompson", log.n_actions, seed=seed), log, batch=batch)
    return time.perf_counter() - start, result.n_matched, result.value


def run_river(log: Any, seed: int) -> tuple[float, int, float]:
    from river import bandit, proba

    arms = list(range(log.n_actions))
    history = list(
        zip(
            [arms] * log.n_rounds,
            [None] * log.n_rounds,
            log.actions.tolist(),
            log.rewards.tolist(),
            strict=True,
        )
    )
    policy = bandit.ThompsonSampling(reward_obj=proba.Beta(), seed=seed)
    start = time.perf_counter()
    total, used = bandit.evaluate_offline(policy, history)
    elapsed = time.perf_counter() - start
    return elapsed, int(used), float(total.get()) / max(int(used), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--arms", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", default="100,1000")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ope_replay.json"))
    args = parser.parse_args()
    means = np.asarray(linear_means(args.arms))
    log = bernoulli_log(means, np.full(args.arms, 1 / args.arms), args.rows, seed=0)
    methods: dict[str, Any] = {"exact": lambda s: run_ours(log, 1, s)}
    for b in (int(x) for x in args.batches.split(",")):
        methods[f"batch={b}"] = lambda s, b=b: run_ours(log, b, s)
    methods["river"] = lambda s: run_river(log, s)
    times: dict[str, list[float]] = {k: [] for k in methods}
    info: dict[str, tuple[int, float]] = {}
    for rep in range(args.repeats):
        for name, fn in methods.items():
            elapsed, used, value = fn(rep)
            times[name].append(elapsed)
            info[name] = (used, value)
    river_best = min(times["river"])
    rows = []
    for name, ts in times.items():
        best = min(ts)
        rows.append(
            {
                "method": name,
                "best_s": round(best, 4),
                "median_s": round(float(np.median(ts)), 4),
                "rows_per_s": round(args.rows / best),
                "vs_river": round(river_best / best, 1),
                "matched": info[name][0],
                "mean_reward_of_matched": round(info[name][1], 4),
            }
        )
    print(
        f"Thompson replay on {args.rows:,} uniform rows, {args.arms} arms "
        f"(best of {args.repeats}, interleaved)"
    )
    print(f"{'method':12s} {'best s':>8s} {'rows/s':>11s} {'x river':>8s} {'matched':>8s}")
    for r in rows:
        print(
            f"{r['method']:12s} {r['best_s']:8.3f} {r['rows_per_s']:11,d} {r['vs_river']:8.1f} "
            f"{r['matched']:8d}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "ope_replay",
                "rows": args.rows,
                "arms": args.arms,
                "repeats": args.repeats,
                "python": platform.python_version(),
                "results": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
