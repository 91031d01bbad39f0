"""A/A check: identical arms, many simulated experiments; are the service's verdicts calibrated?

Question: when every arm is the same, (1) are the sample-ratio-test p-values of the health
route uniform, so that an SRM alarm means something, and (2) how often does the probability
of being best declare a (false) winner at 0.95?

Each design is replicated ``--replicates`` times through :func:`service.aa.run_aa`: the
policy's allocation (from :mod:`bandit`), one :func:`service.policies.draw` per decision,
the same click rate on every arm, rewards learned in batches (one policy version per batch),
then :func:`service.stats.sample_ratio_test` on the per-version counts and the exact P(best)
of the Beta posteriors. Designs: adaptive Thompson sampling with 3 arms, and a fixed uniform
split (``epsilon-greedy`` with ``epsilon=1``: every decision explores) with 3 and 2 arms.

Reported per design: the Kolmogorov-Smirnov statistic and p-value of the SRM p-values against
U(0, 1), the share of SRM alarms at 0.05 and at the health route's 1e-3, and the false-winner
rate at the threshold with its 95% Wilson interval. Prints a table, writes
``benchmarks/results/aa_check.json``.

    python benchmarks/aa_check.py                       # 400 replicates per design
    python benchmarks/aa_check.py --replicates 100      # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.aa import AAConfig, run_aa  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "aa_check.json"


def designs(replicates: int, decisions: int, batch: int, threshold: float) -> list[AAConfig]:
    common: dict[str, Any] = {
        "replicates": replicates,
        "decisions": decisions,
        "batch": batch,
        "threshold": threshold,
        "rate": 0.05,
    }
    uniform = {"epsilon": 1.0}
    return [
        AAConfig(policy="thompson", n_arms=3, seed=1, **common),
        AAConfig(policy="epsilon-greedy", params=uniform, n_arms=3, seed=2, **common),
        AAConfig(policy="epsilon-greedy", params=uniform, n_arms=2, seed=3, **common),
    ]


def _table(rows: list[dict[str, Any]]) -> None:
    print(
        "| design | arms | decisions (versions) | replicates | KS D | KS p | SRM alarms p<0.05 "
        "| SRM alarms p<1e-3 | false winners at P(best)>=0.95 (95% CI) | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        name = r["policy"] if r["policy"] != "epsilon-greedy" else "uniform split"
        low, high = r["false_winner_ci95"]
        print(
            f"| {name} | {r['n_arms']} | {r['decisions']} ({r['versions']}) | {r['replicates']} "
            f"| {r['ks_statistic']:.3f} | {r['ks_p_value']:.2f} | {r['srm_alarm_rate_0.05']:.1%} "
            f"| {r['srm_alarm_rate_health']:.1%} | {r['false_winner_rate']:.1%} "
            f"({low:.1%}-{high:.1%}) | {r['seconds']:.0f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--replicates", type=int, default=400)
    ap.add_argument("--decisions", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=400, help="decisions per policy version")
    ap.add_argument("--threshold", type=float, default=0.95)
    ap.add_argument("--json", type=Path, default=RESULTS)
    args = ap.parse_args()

    rows = []
    for config in designs(args.replicates, args.decisions, args.batch, args.threshold):
        start = time.perf_counter()
        result = run_aa(config)
        row = result.summary()
        row["seconds"] = round(time.perf_counter() - start, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    _table(rows)
    out = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 2),
        "designs": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
