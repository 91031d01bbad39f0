"""Cost of the experiment page's panels on a large log: decision panel and the uncached
counterfactual panel (the newest ``CAP`` settled decisions, SNIPS and IPS per policy).

Fills a temporary SQLite store as ``benchmarks/dashboard_render.py`` does (one experiment,
``--arms`` arms, ``--decisions`` decisions with their learned observations), marks every
decision settled (in the session, not committed) and times each panel ``--repeat`` times.
Prints a table; writes JSON to ``benchmarks/results/dashboard_panels.json``. Not a test::

    python benchmarks/dashboard_panels.py --decisions 200000 --arms 20
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.dashboard_render import fill  # noqa: E402
from service import web_counterfactual, web_panels  # noqa: E402
from service.db import make_engine, make_sessionmaker  # noqa: E402
from service.models import utcnow  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.store import insights  # noqa: E402
from service.store.common import load  # noqa: E402


def timed(f: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=200_000)
    ap.add_argument("--arms", type=int, default=20)
    ap.add_argument("--updates", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, sqlite_path=Path(tmp) / "b.db", settle_interval_s=0)  # type: ignore[call-arg]
        fill(settings, args.decisions, args.arms, args.updates, 0)
        engine = make_engine(settings)
        with make_sessionmaker(engine)() as session:
            stats = insights.experiment_stats(session, "bench")
            exp, state = load(session, "bench")
            state.settled_until = utcnow()  # every window closed (not committed)
            times = {
                "decision panel": timed(
                    lambda: web_panels.decision_panel(session, exp, stats), args.repeat
                ),
                f"counterfactual, uncached ({web_counterfactual.CAP:,} decisions)": timed(
                    lambda: web_counterfactual.counterfactual(session, exp, state), args.repeat
                ),
            }
            session.rollback()
        engine.dispose()
    print(f"sqlite: {args.decisions:,} decisions, {args.arms} arms")
    print(f"{'panel':<44} median s   max s")
    for name, xs in times.items():
        print(f"{name:<44} {np.median(xs):8.3f} {max(xs):7.3f}")
    result = {
        "decisions": args.decisions,
        "arms": args.arms,
        "panels_s": {k: {"median": float(np.median(v)), "max": max(v)} for k, v in times.items()},
    }
    out = ROOT / "benchmarks" / "results" / "dashboard_panels.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
