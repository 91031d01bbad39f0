"""How fast is fusion: each fuser, vectorised over micro-batches, against a per-request baseline.

Question: can the controller fuse 4 arms x 200 candidates into 10 slots, with propensities,
fast enough to sit in a request path, and how much does vectorising over a micro-batch of
requests buy over a straightforward per-request numpy implementation of the same fuser?

* ours -- ``make_fuser(name, k=10).fuse(...)`` on micro-batches of 1 to 1,024 requests
  (input checks included);
* baseline -- the same fuser written plainly per request in numpy (below: ``np.unique`` and
  ``np.bincount`` for the score fusers; the draft fusers walk the slots with the same
  ``n_samples`` replays, vectorised over the replays of one request), timed in the same run.

Lists: each arm ranks 200 distinct items of a 1,682-item catalogue (MovieLens-100K size),
drawn by popularity (Zipf, exponent 0.8), so the arms' lists overlap as real recommenders' do;
scores decrease along each list. Times are CPU seconds of this process (``time.process_time``,
robust to other load on a shared machine) and wall seconds, best of ``--repeat`` timings, in
microseconds per request. Targets at batch 256: at most 50 us per request and at least 4x the
per-request baseline. Prints a table, writes ``benchmarks/results/fusion_speed.json``.

    python benchmarks/fusion_speed.py            # about a minute
    python benchmarks/fusion_speed.py --quick    # batches 1, 16, 256; one timing each
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bandit import FUSERS, make_fuser

RESULTS = Path(__file__).resolve().parent / "results" / "fusion_speed.json"
N_ARMS, N_CAND, K, CATALOGUE = 4, 200, 10, 1682
TARGET_US, TARGET_RATIO, TARGET_BATCH = 50.0, 4.0, 256


def make_lists(n_requests: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items ``(A, N, C)``, scores and one weight vector, with popularity-skewed overlap."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, CATALOGUE + 1) ** 0.8
    pop /= pop.sum()
    # Gumbel top-C: a weighted draw without replacement, vectorised over all lists
    keys = np.log(pop) + rng.gumbel(size=(N_ARMS, n_requests, CATALOGUE))
    items = np.argsort(-keys, axis=2)[:, :, :N_CAND].astype(np.int64)
    scores = -np.sort(-rng.random((N_ARMS, n_requests, N_CAND)), axis=2)
    weights = np.array([0.4, 0.3, 0.2, 0.1])
    return items, scores, weights


# ------------------------------------------------------------------ per-request baselines


def baseline_scored(
    items: np.ndarray, scores: np.ndarray | None, w: np.ndarray, k: int, c: float = 60.0
) -> tuple[np.ndarray, np.ndarray]:
    """weighted-score (``scores`` given) or weighted-rrf for one request ``(A, C)``."""
    a, n = items.shape
    if scores is None:
        contrib = w[:, None] / (c + np.arange(1, n + 1))
    else:
        low = scores.min(axis=1, keepdims=True)
        span = scores.max(axis=1, keepdims=True) - low
        contrib = w[:, None] * np.divide(
            scores - low, span, out=np.ones_like(scores), where=span > 0
        )
    uniq, inv = np.unique(items, return_inverse=True)
    inv = inv.reshape(a, n)
    per_arm = np.zeros((uniq.size, a))
    for arm in range(a):
        per_arm[inv[arm], arm] = contrib[arm]
    fused = per_arm.sum(axis=1)
    top = np.lexsort((uniq, -fused))[:k]
    share = per_arm[top]
    return uniq[top], share / share.sum(axis=1, keepdims=True)


def baseline_draft(
    items: np.ndarray, w: np.ndarray, k: int, n_samples: int, rng: np.random.Generator, rounds: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """slot-mix (``rounds=False``) or team-draft for one request, with the same estimator:
    the shown draw plus ``n_samples`` replays, walked slot by slot."""
    a = items.shape[0]
    top = items[:, :k]
    uniq, inv = np.unique(top, return_inverse=True)
    inv = inv.reshape(a, k)
    n = n_samples + 1
    ptr = np.zeros((a, n), dtype=np.int64)
    placed = np.zeros((n, uniq.size), dtype=bool)
    left = np.ones((a, n), dtype=bool)
    cols = np.arange(n)
    out_item = np.empty(k, dtype=np.int64)
    out_src = np.empty(k, dtype=np.int64)
    prop = np.empty(k)
    for j in range(k):
        cur = inv[np.arange(a)[:, None], ptr]
        if rounds:
            part = left & (w[:, None] > 0)
            empty = ~part.any(axis=0)
            left[:, empty] = True
            part[:, empty] = (w[:, None] > 0).repeat(empty.sum(), axis=1)
            p = w[:, None] * part
            p = p / p.sum(axis=0)
        else:
            p = np.repeat(w[:, None], n, axis=1)
        cum = np.cumsum(p, axis=0)
        arm = (cum <= rng.random(n) * cum[-1]).sum(axis=0)
        chosen = cur[arm, cols]
        out_item[j], out_src[j] = uniq[chosen[0]], arm[0]
        prop[j] = (p[:, 1:] * (cur[:, 1:] == chosen[0])).sum() / n_samples
        left[arm, cols] = False
        placed[cols, chosen] = True
        for arm_i in range(a):
            while True:
                nxt = inv[arm_i, np.minimum(ptr[arm_i], k - 1)]
                blocked = placed[cols, nxt] & (ptr[arm_i] < k - 1)
                if not blocked.any():
                    break
                ptr[arm_i] += blocked
    return out_item, out_src, prop


def baseline_runner(name: str, n_samples: int) -> Callable[..., None]:
    rng = np.random.default_rng(0)

    def run(items: np.ndarray, scores: np.ndarray, w: np.ndarray) -> None:
        for b in range(items.shape[1]):
            if name == "weighted-rrf":
                baseline_scored(items[:, b], None, w, K)
            elif name == "weighted-score":
                baseline_scored(items[:, b], scores[:, b], w, K)
            else:
                baseline_draft(items[:, b], w, K, n_samples, rng, rounds=name == "team-draft")

    return run


# ------------------------------------------------------------------ timing


def best_time(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Best CPU and best wall seconds of ``repeat`` calls."""
    cpu, wall = np.inf, np.inf
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu, wall = min(cpu, time.process_time() - c0), min(wall, time.perf_counter() - w0)
    return cpu, wall


def time_ours(
    name: str, items: np.ndarray, scores: np.ndarray, w: np.ndarray, batch: int, repeat: int
) -> tuple[float, float]:
    fuser = make_fuser(name, k=K)
    n_req = items.shape[1]
    chunks = [
        (items[:, lo : lo + batch], scores[:, lo : lo + batch]) for lo in range(0, n_req, batch)
    ]
    rng = np.random.default_rng(1)

    def run() -> None:
        for it, sc in chunks:
            fuser.fuse(it, w, sc, rng=rng)

    cpu, wall = best_time(run, repeat)
    return cpu / n_req * 1e6, wall / n_req * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--requests", type=int, default=2048, help="requests timed per cell")
    parser.add_argument("--baseline-requests", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    batches = [1, 16, 256] if args.quick else [1, 4, 16, 64, 256, 1024]
    repeat = 1 if args.quick else args.repeat
    n_req = max(args.requests, max(batches))
    items, scores, w = make_lists(n_req, seed=0)
    n_samples = make_fuser("slot-mix", k=K).params["n_samples"]

    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    for name in FUSERS:
        nb = args.baseline_requests
        base_cpu, base_wall = best_time(
            lambda name=name, nb=nb: baseline_runner(name, n_samples)(
                items[:, :nb], scores[:, :nb], w
            ),
            repeat,
        )
        base_us = base_cpu / nb * 1e6
        for batch in batches:
            cpu_us, wall_us = time_ours(name, items, scores, w, batch, repeat)
            rows.append(
                {
                    "fuser": name,
                    "batch": batch,
                    "us_per_request_cpu": round(cpu_us, 2),
                    "us_per_request_wall": round(wall_us, 2),
                    "baseline_us_per_request_cpu": round(base_us, 2),
                    "baseline_us_per_request_wall": round(base_wall / nb * 1e6, 2),
                    "speedup_cpu": round(base_us / cpu_us, 2),
                }
            )
    load_after = os.getloadavg()

    header = f"{'fuser':15s} {'batch':>5s} {'us/req cpu':>11s} {'us/req wall':>12s} "
    header += f"{'baseline cpu':>13s} {'speed-up':>9s}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['fuser']:15s} {r['batch']:5d} {r['us_per_request_cpu']:11.1f} "
            f"{r['us_per_request_wall']:12.1f} {r['baseline_us_per_request_cpu']:13.1f} "
            f"{r['speedup_cpu']:8.1f}x"
        )
    targets = []
    for r in rows:
        if r["batch"] != TARGET_BATCH:
            continue
        ok_abs = r["us_per_request_cpu"] <= TARGET_US
        ok_ratio = r["speedup_cpu"] >= TARGET_RATIO
        targets.append({"fuser": r["fuser"], "under_50_us": ok_abs, "at_least_4x": ok_ratio})
        print(
            f"target {r['fuser']:15s} batch {TARGET_BATCH}: "
            f"<= {TARGET_US:.0f} us {'PASS' if ok_abs else 'FAIL'} "
            f"({r['us_per_request_cpu']:.1f}), >= {TARGET_RATIO:.0f}x baseline "
            f"{'PASS' if ok_ratio else 'FAIL'} ({r['speedup_cpu']:.1f}x)"
        )
    print(f"load average before {load_before}, after {load_after} (shared machine)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "config": {
                    "arms": N_ARMS,
                    "candidates": N_CAND,
                    "k": K,
                    "catalogue": CATALOGUE,
                    "n_samples": n_samples,
                    "requests": n_req,
                    "baseline_requests": args.baseline_requests,
                    "repeat": repeat,
                    "quick": args.quick,
                },
                "rows": rows,
                "targets": targets,
                "machine": {
                    "python": platform.python_version(),
                    "numpy": np.__version__,
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "load_average_before": load_before,
                    "load_average_after": load_after,
                },
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
