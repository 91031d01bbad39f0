"""Benchmark: MF top-k serving throughput against ``implicit`` and the sgemm peak.

Question: how many users per second get their top-10 from a d=64 factor model over a
100,000-item catalogue, and what share of the machine's matmul peak is that?

Compared in one run on the same random factors:

* ``implicit``: ``AlternatingLeastSquares.recommend`` (its blocked BLAS + heap top-k);
* ``torch naive``: ``(U @ V.T).topk(k)``, which materialises users x items;
* ``arms MFArm.top_k``: blocked tiles with group-max selection (``arms.topk.dot_topk``),
  including id mapping;
* on a GPU (when there is one): the same two torch methods on CUDA, the arm in fp16.

Efficiency = ``2 * users * items * d / seconds`` over the sgemm peak (a 2048^3 float32
matmul) measured in the same run. Methods are timed round-robin (best of ``--repeats``),
so load from other processes hits them alike.
Targets: >= 1.5x implicit's users/s and >= 45% of the peak, top-k included.

Quick run: ``python benchmarks/arms_mf_topk.py --users 200 --items 20000``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from arms_common import print_table, time_interleaved, write_json

from arms.mf import MFArm

RESULTS = Path(__file__).resolve().parent / "results" / "arms_mf_topk.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--user-block", type=int, default=512)
    parser.add_argument("--item-block", type=int, default=2048)
    parser.add_argument("--no-implicit", action="store_true", help="skip the implicit baseline")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    gen = torch.Generator().manual_seed(0)
    users = torch.randn(args.users, args.dim, generator=gen) / args.dim**0.5
    items = torch.randn(args.items, args.dim, generator=gen) / args.dim**0.5
    user_ids = np.arange(args.users)
    flops = 2.0 * args.users * args.items * args.dim
    rows: list[dict[str, Any]] = []
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    peaks = {}
    reference = (users @ items.T).topk(args.k).indices

    for device in devices:
        square = (torch.randn(2048, 2048, device=device), torch.randn(2048, 2048, device=device))
        sync = torch.cuda.synchronize if device.type == "cuda" else None
        methods: dict[str, Any] = {}
        if device.type == "cpu" and not args.no_implicit:
            from implicit.cpu.als import AlternatingLeastSquares

            model = AlternatingLeastSquares(factors=args.dim, random_state=0)
            model.user_factors = users.numpy().copy()
            model.item_factors = items.numpy().copy()
            methods["implicit 0.7 recommend"] = lambda m=model: m.recommend(
                user_ids, None, N=args.k, filter_already_liked_items=False
            )[0]
        u_dev, v_dev = users.to(device), items.to(device)
        methods["torch naive matmul+topk"] = lambda u=u_dev, v=v_dev: (u @ v.T).topk(args.k).indices
        arm = MFArm.from_factors(
            users, items, device=device, user_block=args.user_block, item_block=args.item_block
        )
        methods["arms MFArm.top_k (blocked)"] = lambda a=arm: a.top_k(
            user_ids, args.k, exclude_seen=False
        )[0]
        methods["sgemm 2048^3 (peak)"] = lambda a=square[0], b=square[1]: a @ b
        timings = time_interleaved(methods, args.repeats, sync)
        peak = 2 * 2048**3 / timings.pop("sgemm 2048^3 (peak)")["best_s"] / 1e9
        peaks[device.type] = peak
        del methods["sgemm 2048^3 (peak)"]
        for name, fn in methods.items():
            timing = timings[name]
            out = fn()
            ids = out.cpu() if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))
            same = torch.sort(ids, 1).values == torch.sort(reference, 1).values
            rows.append(
                {
                    "device": device.type,
                    "method": name,
                    "best_s": timing["best_s"],
                    "median_s": timing["median_s"],
                    "users_per_s": args.users / timing["best_s"],
                    "gflops": flops / timing["best_s"] / 1e9,
                    "pct_of_sgemm_peak": 100 * flops / timing["best_s"] / 1e9 / peak,
                    "top_k_agreement": float(same.float().mean()),
                }
            )
    base = next((r["users_per_s"] for r in rows if r["method"].startswith("implicit")), None)
    for row in rows:
        row["x_implicit"] = row["users_per_s"] / base if base else None
    load = os.getloadavg()
    title = (
        f"MF top-{args.k}: {args.users:,} users x {args.items:,} items x d={args.dim}; "
        f"sgemm peak {', '.join(f'{d} {p:,.0f} GFLOP/s' for d, p in peaks.items())}; "
        f"{torch.get_num_threads()} threads; best of {args.repeats}, interleaved; "
        f"load average {load[0]:.1f}"
    )
    print_table(
        title,
        rows,
        [
            "device",
            "method",
            "best_s",
            "median_s",
            "users_per_s",
            "gflops",
            "pct_of_sgemm_peak",
            "x_implicit",
            "top_k_agreement",
        ],
    )
    write_json(
        args.out,
        {
            "args": {k: str(v) for k, v in vars(args).items()},
            "sgemm_peak_gflops": peaks,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
