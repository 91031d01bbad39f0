"""Estimators on synthetic logs where the truth is known: bias, interval coverage and time.

Five Bernoulli arms, a skewed logging distribution and a different target distribution
(true value ``target @ means``). Over ``--seeds`` logs of ``--rounds`` rounds: mean error
(with its standard error) and how often the 95% bootstrap interval covers the truth. Then
the time of each estimator (point estimate and bootstrap) on one log of ``--big`` rounds.

Run: ``PYTHONPATH=. python benchmarks/ope_synthetic.py``
(writes benchmarks/results/ope_synthetic.json)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from simulations.ope import (
    DM,
    DR,
    DROS,
    IPS,
    SNIPS,
    LinearRewardModel,
    SwitchDR,
    evaluation_input,
)
from simulations.synthetic_logs import bernoulli_log

MEANS = np.array([0.05, 0.10, 0.20, 0.30, 0.50])
LOGGING = np.array([0.40, 0.25, 0.15, 0.12, 0.08])
TARGET = np.array([0.05, 0.05, 0.20, 0.30, 0.40])


def estimators(n_bootstrap: int, seed: int) -> list:
    kw = {"n_bootstrap": n_bootstrap, "seed": seed}
    return [
        IPS(**kw),
        SNIPS(**kw),
        DM(**kw),
        DR(**kw),
        SwitchDR(tau=3.0, **kw),
        DROS(lambda_=5.0, **kw),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--bootstrap", type=int, default=400)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--big-bootstrap", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ope_synthetic.json"))
    args = parser.parse_args()
    truth = float(TARGET @ MEANS)
    values: dict[str, list[float]] = {}
    covered: dict[str, int] = {}
    for seed in range(args.seeds):
        log = bernoulli_log(MEANS, LOGGING, args.rounds, seed=seed)
        data = evaluation_input(log, TARGET, LinearRewardModel(seed=seed).fit_predict(log))
        for est in estimators(args.bootstrap, seed):
            e = est.estimate(data)
            values.setdefault(e.estimator, []).append(e.value)
            covered[e.estimator] = covered.get(e.estimator, 0) + (e.ci_low <= truth <= e.ci_high)
    rows = []
    print(
        f"truth {truth:.4f}; {args.seeds} logs of {args.rounds:,} rounds; "
        f"{args.bootstrap} bootstrap replicates"
    )
    print(
        f"{'estimator':10s} {'mean':>8s} {'bias':>9s} {'se(bias)':>9s} {'rmse':>8s} "
        f"{'coverage':>9s}"
    )
    for name, vals in values.items():
        v = np.asarray(vals)
        row = {
            "estimator": name,
            "mean": float(v.mean()),
            "bias": float(v.mean() - truth),
            "bias_se": float(v.std(ddof=1) / np.sqrt(v.size)),
            "rmse": float(np.sqrt(((v - truth) ** 2).mean())),
            "coverage_95": covered[name] / args.seeds,
        }
        rows.append(row)
        print(
            f"{name:10s} {row['mean']:8.4f} {row['bias']:+9.5f} {row['bias_se']:9.5f} "
            f"{row['rmse']:8.4f} {row['coverage_95']:9.3f}"
        )
    big = bernoulli_log(MEANS, LOGGING, args.big, seed=7)
    t = time.perf_counter()
    q = LinearRewardModel().fit_predict(big)
    model_s = time.perf_counter() - t
    data = evaluation_input(big, TARGET, q)
    timing = []
    for est in estimators(args.big_bootstrap, 0):
        t = time.perf_counter()
        terms = est._terms(data)
        point = time.perf_counter() - t
        t = time.perf_counter()
        est.estimate(data)
        total = time.perf_counter() - t
        timing.append({"estimator": est.name, "point_s": point, "with_bootstrap_s": total})
    print(
        f"\n{args.big:,} rounds: reward model {model_s:.2f} s; "
        f"bootstrap {args.big_bootstrap} replicates"
    )
    print(f"{'estimator':10s} {'point s':>9s} {'+bootstrap s':>13s}")
    for r in timing:
        print(f"{r['estimator']:10s} {r['point_s']:9.3f} {r['with_bootstrap_s']:13.2f}")
    del terms
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "ope_synthetic",
                "truth": truth,
                "seeds": args.seeds,
                "rounds": args.rounds,
                "bootstrap": args.bootstrap,
                "accuracy": rows,
                "big_rounds": args.big,
                "big_bootstrap": args.big_bootstrap,
                "reward_model_s": model_s,
                "timing": timing,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
