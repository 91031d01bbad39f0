"""Summaries, row files and regret plots for finished runs.

* :func:`summarize` -- per (environment, policy): final expected regret, mean and 95%
  t-interval over seeds (:func:`bandit.intervals.mean_interval`), wall time.  Flat dicts,
  ready for JSON.
* :class:`RowWriter` -- streams runs' rows into one CSV or Parquet file as they finish, so
  T = 100,000 x 20 seeds x several policies never has to sit in memory at once.
* :func:`plot_regret` -- cumulative regret over time, mean with a 95% band over seeds, one panel
  per environment: a PNG (matplotlib, Agg backend) and a self-contained HTML page (plotly).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol

import numpy as np

from bandit import intervals
from simulations.runner import RunResult

__all__ = ["RowWriter", "mean_interval", "plot_regret", "summarize"]

RowFormat = Literal["csv", "parquet"]
_RUN_COLUMNS = ("env", "policy", "seed", "step", "arm", "reward", "regret")


class SupportsColumns(Protocol):
    """A finished run that gives its rows as equal-length columns (e.g. :class:`RunResult`)."""

    def columns(self) -> dict[str, np.ndarray]: ...


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of ``values`` (the interval collapses for n < 2).

    >>> mean_interval([1.0, 2.0, 3.0])  # doctest: +ELLIPSIS
    (2.0, -0.484..., 4.484...)
    """
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if x.size < 2 or float(x.std()) == 0.0:
        return mean, mean, mean
    low, high = intervals.mean_interval(mean, float(x.std(ddof=1)), x.size, confidence, "t")
    return mean, float(low), float(high)


def _band(
    curves: np.ndarray, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and t-interval over seeds (axis 0) at every point of the curves."""
    mean = curves.mean(axis=0)
    n = curves.shape[0]
    if n < 2:
        return mean, mean, mean
    low, high = intervals.mean_interval(mean, curves.std(axis=0, ddof=1), n, confidence, "t")
    return mean, low, high


def _group(results: Iterable[RunResult]) -> dict[tuple[str, str], list[RunResult]]:
    groups: dict[tuple[str, str], list[RunResult]] = defaultdict(list)
    for result in results:
        groups[(result.env, result.policy)].append(result)
    return dict(groups)


def summarize(results: Iterable[RunResult], confidence: float = 0.95) -> list[dict[str, Any]]:
    """One flat dict per (environment, policy), in first-seen order.

    Keys: ``env``, ``policy``, ``params``, ``horizon``, ``n_seeds``, ``regret_mean``,
    ``regret_ci_low``, ``regret_ci_high`` (t-interval at ``confidence``), ``regret_std``,
    ``reward_mean`` (total realised reward per run), ``wall_time_s`` (mean per run),
    ``wall_time_total_s`` and ``rounds_per_s``.
    """
    rows = []
    for (env, policy), runs in _group(results).items():
        finals = [r.final_regret for r in runs]
        mean, low, high = mean_interval(finals, confidence)
        walls = [r.wall_time_s for r in runs]
        horizon = runs[0].horizon
        rows.append(
            {
                "env": env,
                "policy": policy,
                "params": dict(runs[0].params),
                "horizon": horizon,
                "n_seeds": len(runs),
                "confidence": confidence,
                "regret_mean": mean,
                "regret_ci_low": low,
                "regret_ci_high": high,
                "regret_std": float(np.std(finals, ddof=1)) if len(finals) > 1 else 0.0,
                "reward_mean": float(np.mean([r.total_reward for r in runs])),
                "wall_time_s": float(np.mean(walls)),
                "wall_time_total_s": float(np.sum(walls)),
                "rounds_per_s": horizon * len(runs) / max(float(np.sum(walls)), 1e-12),
            }
        )
    return rows


class RowWriter:
    """Append runs' rows to one CSV or Parquet file (use as a context manager).

    Columns: ``env, policy, seed, step, arm, reward, regret`` (see :mod:`simulations.runner`),
    or those of whatever ``columns()`` the written runs return (``header`` names them for an
    empty CSV).
    """

    def __init__(
        self, path: str | Path, fmt: RowFormat = "parquet", header: Sequence[str] = _RUN_COLUMNS
    ) -> None:
        if fmt not in ("csv", "parquet"):
            raise ValueError(f"format must be 'csv' or 'parquet', got {fmt!r}.")
        self.path = Path(path)
        self.fmt = fmt
        self.rows_written = 0
        self._parquet: Any = None
        self._header = True
        self._names = tuple(header)

    def write(self, result: SupportsColumns) -> None:
        """Append one run's written rows."""
        import pandas as pd

        frame = pd.DataFrame(result.columns())
        if self.fmt == "csv":
            frame.to_csv(
                self.path, mode="w" if self._header else "a", header=self._header, index=False
            )
            self._header = False
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table)
        self.rows_written += len(frame)

    def close(self) -> None:
        """Finish the file (an empty CSV gets its header)."""
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        elif self.fmt == "csv" and self._header:
            self.path.write_text(",".join(self._names) + "\n")
            self._header = False

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _curves(results: Iterable[RunResult]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """env -> policy -> (steps, curves over seeds with shape (n_seeds, points))."""
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = defaultdict(dict)
    for (env, policy), runs in _group(results).items():
        out[env][policy] = (runs[0].curve_steps, np.stack([r.curve for r in runs]))
    return dict(out)


def plot_regret(
    results: Sequence[RunResult], png: str | Path | None = None, html: str | Path | None = None
) -> None:
    """Plot cumulative expected regret over time: mean with a 95% band over seeds.

    One panel per environment, one line per policy; writes ``png`` (matplotlib) and/or
    ``html`` (plotly, self-contained so it opens offline).
    """
    curves = _curves(results)
    if png is not None:
        _plot_png(curves, Path(png))
    if html is not None:
        _plot_html(curves, Path(html))


def _plot_png(curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(6.5 * len(curves), 4.5), squeeze=False)
    for ax, (env, by_policy) in zip(axes[0], curves.items(), strict=True):
        for policy, (steps, runs) in by_policy.items():
            mean, low, high = _band(runs)
            (line,) = ax.plot(steps, mean, label=f"{policy} (n={runs.shape[0]})")
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_title(env)
        ax.set_xlabel("round")
        ax.set_ylabel("cumulative expected regret")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_html(curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], path: Path) -> None:
    import plotly.colors
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    palette = plotly.colors.qualitative.Plotly
    fig = make_subplots(rows=1, cols=len(curves), subplot_titles=list(curves))
    policies = list(dict.fromkeys(p for by_policy in curves.values() for p in by_policy))
    for col, by_policy in enumerate(curves.values(), start=1):
        for policy, (steps, runs) in by_policy.items():
            color = palette[policies.index(policy) % len(palette)]
            mean, low, high = _band(runs)
            x = steps.tolist()
            fig.add_trace(
                go.Scatter(
                    x=x + x[::-1],
                    y=high.tolist() + low.tolist()[::-1],
                    fill="toself",
                    fillcolor=color,
                    opacity=0.2,
                    line={"width": 0},
                    hoverinfo="skip",
                    legendgroup=policy,
                    showlegend=False,
                ),
                row=1,
                col=col,
            )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=mean.tolist(),
                    mode="lines",
                    name=policy,
                    line={"color": color},
                    legendgroup=policy,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="round", row=1, col=col)
        fig.update_yaxes(title_text="cumulative expected regret", row=1, col=col)
    fig.update_layout(
        title="Cumulative expected regret (mean and 95% band over seeds)", template="plotly_white"
    )
    fig.write_html(path, include_plotlyjs=True, full_html=True)
