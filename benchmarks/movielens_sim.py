"""How long one MovieLens fusion run takes: target T = 20,000 requests of one policy in < 30 s.

Question: is the simulator fast enough to run 10 seeds x a dozen policies x three scenarios on
a laptop?  The arms' candidate lists are built once and cached (``build_world``); the timing
covers the run itself (arrivals, candidates, fusion, clicks, learning), as ``FusionRun``
reports it, plus the whole ``run_one`` call.  Peers measured in the same run: the best arm
alone (no fusion, no learning) and uniform slot-mix fusion (fusion, no learning), so the
cost of the bandit (Thompson P(best) by quadrature after every micro-batch) shows as a ratio.
Each cell is the best of ``--repeat`` runs.  Prints a table, writes
``benchmarks/results/movielens_sim.json``.

    python benchmarks/movielens_sim.py --data ../shared/data/ml-100k
    python benchmarks/movielens_sim.py --data ../shared/data/ml-100k --horizon 5000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from simulations.movielens.data import build_world
from simulations.movielens.env import make_env
from simulations.movielens.policies import FusionPolicy
from simulations.movielens.run import run_one

RESULTS = Path(__file__).resolve().parent / "results" / "movielens_sim.json"
TARGET_S = 30.0

POLICIES = [
    FusionPolicy("arm:mf", "single", arm=0),
    FusionPolicy("uniform-fusion", "fixed"),
    FusionPolicy("fusion-kl-ucb", "fusion", policy="kl-ucb"),
    FusionPolicy("fusion-thompson", "fusion", policy="thompson"),
    FusionPolicy("segmented-fusion", "segmented", policy="thompson"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the ml-100k folder")
    parser.add_argument("--horizon", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    world = build_world(args.data, "main")
    build_s = time.perf_counter() - start
    env = make_env("movielens", world, args.horizon)
    rows = []
    for spec in POLICIES:
        loop, total = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = run_one(env, spec, args.seed)
            total.append(time.perf_counter() - t0)
            loop.append(result.wall_time_s)
        rows.append(
            {
                "policy": spec.label,
                "run_s": min(loop),
                "run_one_s": min(total),
                "requests_per_s": args.horizon / min(total),
            }
        )
    base = next(r for r in rows if r["policy"] == "arm:mf")["run_one_s"]
    print(
        f"MovieLens fusion run, T = {args.horizon:,}, best of {args.repeat} "
        f"(world from cache: {build_s:.1f} s)"
    )
    print(f"{'policy':<20} {'run s':>8} {'run_one s':>10} {'req/s':>9} {'x arm:mf':>9} target")
    for r in rows:
        r["ratio_to_single_arm"] = r["run_one_s"] / base
        r["meets_target"] = bool(r["run_one_s"] < TARGET_S * args.horizon / 20_000)
        print(
            f"{r['policy']:<20} {r['run_s']:>8.2f} {r['run_one_s']:>10.2f} "
            f"{r['requests_per_s']:>9,.0f} {r['ratio_to_single_arm']:>9.1f} "
            f"{'< 30 s: met' if r['meets_target'] else '< 30 s: NOT met'}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "horizon": args.horizon,
                "repeat": args.repeat,
                "target_s_at_20000": TARGET_S,
                "world_load_s": build_s,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
