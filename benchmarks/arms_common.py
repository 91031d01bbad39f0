"""Helpers shared by the benchmark scripts: timing, the sgemm peak, tables and JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def time_it(
    fn: Callable[[], Any], repeats: int, sync: Callable[[], None] | None = None
) -> dict[str, float]:
    """Run ``fn`` once to warm up, then ``repeats`` times; best and median seconds."""
    fn()
    if sync:
        sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return {"best_s": min(times), "median_s": statistics.median(times)}


def time_interleaved(
    fns: dict[str, Callable[[], Any]], repeats: int, sync: Callable[[], None] | None = None
) -> dict[str, dict[str, float]]:
    """Like :func:`time_it` for several methods, alternating them round by round.

    On a shared machine a burst of load then hits every method alike instead of
    whichever happened to run during it.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            if sync:
                sync()
            start = time.perf_counter()
            fn()
            if sync:
                sync()
            times[name].append(time.perf_counter() - start)
    return {n: {"best_s": min(t), "median_s": statistics.median(t)} for n, t in times.items()}


def sgemm_peak(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a square float32 matmul of side ``n`` (best of ``repeats``) on ``device``."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    best = time_it(lambda: a @ b, repeats, sync)["best_s"]
    return 2 * n**3 / best / 1e9


def machine() -> dict[str, Any]:
    """Where the figures were taken."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_1_5_15": os.getloadavg(),
    }


def print_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A plain fixed-width table (copy-pastes into a Markdown note)."""
    print(f"\n{title}")
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns]
    print(" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(_fmt(row.get(c)).ljust(w) for c, w in zip(columns, widths, strict=True)))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"
    return "" if value is None else str(value)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` with the machine description to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2))
    print(f"\nwrote {path}")
