"""Plots of MovieLens runs: clicks per request over time, and each arm's weight over time.

Both are means over seeds of per-bin averages (``bins`` equal windows of requests), the
clicks with a 95% t-band.  Each is written as a PNG (matplotlib, Agg) and a self-contained
HTML page (plotly).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from simulations.movielens.run import FusionRun

__all__ = ["binned", "plot_clicks", "plot_weights"]


def binned(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres (1-based requests) and means of ``values`` (axis 0) over ``bins`` windows.

    >>> binned(np.arange(4.0), 2)[1].tolist()
    [0.5, 2.5]
    """
    n = values.shape[0]
    edges = np.linspace(0, n, min(bins, n) + 1).round().astype(np.int64)
    means = np.stack([np.nanmean(values[a:b], axis=0) for a, b in itertools.pairwise(edges)])
    return (edges[:-1] + edges[1:]) / 2.0, means


def _band(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from bandit.intervals import mean_interval

    mean = curves.mean(axis=0)
    n = curves.shape[0]
    if n < 2:
        return mean, mean, mean
    low, high = mean_interval(mean, curves.std(axis=0, ddof=1), n, 0.95, "t")
    return mean, np.asarray(low), np.asarray(high)


def _click_curves(
    runs: Sequence[FusionRun], bins: int
) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    grouped: dict[str, dict[str, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    centres: dict[str, np.ndarray] = {}
    for run in runs:
        x, y = binned(run.clicks.astype(np.float64), bins)
        grouped[run.env][run.policy].append(y)
        centres[run.env] = x
    return {
        env: {p: (centres[env], np.stack(ys)) for p, ys in by.items()}
        for env, by in grouped.items()
    }


def _weight_curves(
    runs: Sequence[FusionRun], bins: int
) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, tuple[str, ...]]]:
    grouped: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
    meta: dict[tuple[str, str], tuple[np.ndarray, tuple[str, ...]]] = {}
    for run in runs:
        if not run.learns:
            continue
        x, y = binned(run.weights.astype(np.float64), bins)
        grouped[(run.env, run.policy)].append(y)
        meta[(run.env, run.policy)] = (x, run.arm_names)
    return {
        key: (meta[key][0], np.nanmean(np.stack(ys), axis=0), meta[key][1])
        for key, ys in grouped.items()
    }


def plot_clicks(
    runs: Sequence[FusionRun], png: str | Path, html: str | Path, bins: int = 50
) -> None:
    """Clicks per request over time: one panel per environment, one line per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    curves = _click_curves(runs, bins)
    fig, axes = plt.subplots(1, len(curves), figsize=(7 * len(curves), 5), squeeze=False)
    colors = [plt.get_cmap("tab20")(i) for i in range(20)]
    hfig = make_subplots(rows=1, cols=len(curves), subplot_titles=list(curves))
    for col, (ax, (env, by_policy)) in enumerate(
        zip(axes[0], curves.items(), strict=True), start=1
    ):
        for i, (policy, (x, ys)) in enumerate(by_policy.items()):
            mean, low, high = _band(ys)
            (line,) = ax.plot(x, mean, label=policy, linewidth=1.2, color=colors[i % 20])
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
            hfig.add_trace(
                go.Scatter(
                    x=x.tolist(),
                    y=mean.tolist(),
                    mode="lines",
                    name=policy,
                    legendgroup=policy,
                    showlegend=col == 1,
                    error_y={"type": "data", "array": (high - mean).tolist(), "visible": False},
                ),
                row=1,
                col=col,
            )
        ax.set_title(env)
        ax.set_xlabel("request")
        ax.set_ylabel(f"clicks per request (mean of {bins} windows, 95% band)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
        hfig.update_xaxes(title_text="request", row=1, col=col)
        hfig.update_yaxes(title_text="clicks per request", row=1, col=col)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    hfig.update_layout(
        title="Clicks per request over time (mean over seeds)", template="plotly_white"
    )
    hfig.write_html(html, include_plotlyjs=True, full_html=True)


def plot_weights(
    runs: Sequence[FusionRun], png: str | Path, html: str | Path, bins: int = 50
) -> None:
    """Each arm's mean weight over time: one panel per (environment, learning policy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    curves = _weight_curves(runs, bins)
    if not curves:
        return
    envs = list(dict.fromkeys(env for env, _ in curves))
    policies = list(dict.fromkeys(p for _, p in curves))
    shape = (len(envs), len(policies))
    fig, axes = plt.subplots(*shape, figsize=(4 * shape[1], 3.2 * shape[0]), squeeze=False)
    titles = [f"{e} / {p}" for e in envs for p in policies]
    hfig = make_subplots(rows=shape[0], cols=shape[1], subplot_titles=titles)
    palette = plt.get_cmap("tab10")
    for (env, policy), (x, w, names) in curves.items():
        r, c = envs.index(env), policies.index(policy)
        ax = axes[r][c]
        for a, name in enumerate(names):
            ax.plot(x, w[:, a], label=name, color=palette(a))
            hfig.add_trace(
                go.Scatter(
                    x=x.tolist(),
                    y=[None if np.isnan(v) else float(v) for v in w[:, a]],
                    mode="lines",
                    name=name,
                    legendgroup=name,
                    showlegend=(r, c) == (0, 0),
                    line={"color": f"rgb{tuple(int(255 * v) for v in palette(a)[:3])}"},
                ),
                row=r + 1,
                col=c + 1,
            )
        ax.set_title(f"{env}\n{policy}", fontsize="small")
        ax.set_ylim(0, 1)
        ax.set_xlabel("request")
        ax.set_ylabel("weight")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    hfig.update_layout(
        title="Each arm's weight over time (mean over seeds)", template="plotly_white"
    )
    hfig.write_html(html, include_plotlyjs=True, full_html=True)
