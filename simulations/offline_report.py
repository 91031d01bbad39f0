"""Write an offline evaluation: ``summary.json`` and a chart of the estimates with their
intervals (``estimates.png`` with matplotlib, ``estimates.html`` with plotly, self-contained)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from simulations.offline import OfflineResult

__all__ = ["OfflineReport", "write_offline_report"]


@dataclass(frozen=True, slots=True)
class OfflineReport:
    """Paths written by :func:`write_offline_report`."""

    summary: Path
    png: Path | None
    html: Path | None


def write_offline_report(
    result: OfflineResult, out: str | Path, plots: bool = True
) -> OfflineReport:
    """Write ``summary.json`` (and the charts) to the folder ``out``."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    summary = folder / "summary.json"
    summary.write_text(json.dumps(result.to_dict(), indent=2))
    if not plots or not result.rows:
        return OfflineReport(summary, None, None)
    png, html = folder / "estimates.png", folder / "estimates.html"
    _png(result, png)
    _html(result, html)
    return OfflineReport(summary, png, html)


def _groups(result: OfflineResult) -> tuple[list[str], list[str]]:
    policies = list(dict.fromkeys(r.policy for r in result.rows))
    estimators = list(dict.fromkeys(r.estimator for r in result.rows))
    return policies, estimators


def _png(result: OfflineResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies, estimators = _groups(result)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(policies) * len(estimators) ** 0.5), 4.5))
    width = 0.8 / max(len(estimators), 1)
    for j, est in enumerate(estimators):
        xs, ys, lo, hi = [], [], [], []
        for i, pol in enumerate(policies):
            for r in result.rows:
                if r.policy == pol and r.estimator == est:
                    xs.append(i - 0.4 + width * (j + 0.5))
                    ys.append(r.value)
                    lo.append(r.value - r.ci_low)
                    hi.append(r.ci_high - r.value)
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", capsize=3, label=est)
    ax.axhline(
        result.on_policy_mean, color="grey", linestyle="--", linewidth=1, label="logged mean"
    )
    ax.set_xticks(range(len(policies)), policies)
    ax.set_ylabel("estimated mean reward per round")
    ax.set_title(f"{result.log_name}: estimates with bootstrap intervals")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _html(result: OfflineResult, path: Path) -> None:
    import plotly.graph_objects as go

    policies, estimators = _groups(result)
    fig = go.Figure()
    for est in estimators:
        rows = [r for r in result.rows if r.estimator == est]
        fig.add_trace(
            go.Scatter(
                x=[r.policy for r in rows],
                y=[r.value for r in rows],
                mode="markers",
                name=est,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [r.ci_high - r.value for r in rows],
                    "arrayminus": [r.value - r.ci_low for r in rows],
                },
            )
        )
    fig.add_hline(y=result.on_policy_mean, line_dash="dash", annotation_text="logged mean")
    fig.update_layout(
        title=f"{result.log_name}: estimates with bootstrap intervals",
        scattermode="group",
        yaxis_title="estimated mean reward per round",
        xaxis={"categoryorder": "array", "categoryarray": policies},
        template="plotly_white",
    )
    fig.write_html(path, include_plotlyjs=True, full_html=True)
