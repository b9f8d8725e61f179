"""The backtest plot: one metric of :func:`clvmodels.evaluation.backtest` by calibration
cut-off, a line per model.

Kept apart from :mod:`clvmodels.plotting` (which re-exports :func:`plot_backtest`) so that
module stays within the package's size limit; it imports nothing from it (no cycle), and
draws only what the backtest computed — ``result.metrics``, the long table
(``calibration_end``, ``model``, ``metric``, ``value``), ``result.summary`` for which way a
metric is better and ``result.settings`` for the baselines, holdout and interval. It never
imports the evaluation (a higher layer): the result is read by its attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

from clvmodels.diagnostics import DEFAULT_INTERVAL

__all__ = ["plot_backtest"]

#: Okabe-Ito colours and markers, one per model (as :mod:`clvmodels.plotting` uses them)
_COLORS = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
_MARKERS = ("o", "s", "D", "^", "v", "P")

#: metrics drawn as percentages
_PERCENT = {"aggregate_bias", "tracking_error", "top_decile_capture", "interval_coverage"}
_DIRECTION = {"max": "higher is better", "min": "lower is better",
              "zero": "closer to 0 is better", "nominal": "closest to nominal is best"}
def plot_backtest(result: Any, metric: str = "mae", *, models: Sequence[str] | None = None,
                  ax: Axes | None = None) -> Axes:
    """One metric of a backtest by calibration cut-off: a line with markers per model
    (baselines grey and dashed), from ``result.metrics`` — the long table of
    :func:`clvmodels.evaluation.backtest` (columns ``calibration_end``, ``model``, ``metric``,
    ``value``). ``models``: the rows to draw (default: all). The y label says which way is
    better; bias and tracking error get a line at 0, interval coverage one at the nominal
    level. Returns the Axes.
    """
    table = result.metrics
    if metric not in set(table["metric"]):
        raise ValueError(f"the backtest has no metric {metric!r}; one of "
                         f"{', '.join(dict.fromkeys(table['metric']))}")
    rows = table.loc[table["metric"] == metric]
    order = list(dict.fromkeys(rows["model"]))
    if models is not None:
        unknown = [m for m in models if m not in order]
        if unknown:
            raise ValueError(f"the backtest has no model {unknown[0]!r}; one of "
                             f"{', '.join(order)}")
        order = list(models)
    wide = rows.pivot(index="calibration_end", columns="model", values="value")
    wide = wide.reindex(columns=order).dropna(axis=1, how="all")
    if wide.empty:
        raise ValueError(f"no model has a value of {metric!r} in this backtest")
    wide.index = pd.to_datetime(wide.index)
    wide = wide.sort_index()
    settings = getattr(result, "settings", {}) or {}
    baselines = set(settings.get("baselines", []))
    if ax is None:
        _, ax = plt.subplots(figsize=(8.0, 4.4), layout="constrained")
    i = j = 0
    for name in wide.columns:
        y = wide[name].to_numpy(float)
        if name in baselines:  # grey, told apart by line style and marker
            ax.plot(wide.index, y, color="0.5", linestyle=("--", ":", "-.")[j % 3],
                    marker=("x", "+", "1")[j % 3], linewidth=1.2, label=f"{name} (baseline)")
            j += 1
            continue
        ax.plot(wide.index, y, color=_COLORS[i % len(_COLORS)], marker=_MARKERS[i % 6],
                linewidth=1.8, label=str(name))
        i += 1
    direction = None
    summary = getattr(result, "summary", None)
    if summary is not None and "direction" in getattr(summary, "columns", []):
        found = summary.xs(metric, level="metric")["direction"].dropna()
        direction = found.iloc[0] if len(found) else None
    if direction == "zero":
        ax.axhline(0.0, color="0.3", linewidth=0.8)
    elif direction == "nominal":
        ax.axhline(float(settings.get("interval", DEFAULT_INTERVAL)), color="0.3",
                   linewidth=0.8, linestyle=":")
    if metric in _PERCENT:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xticks(list(wide.index), [d.strftime("%Y-%m-%d") for d in wide.index],
                  rotation=30 if len(wide.index) > 4 else 0, ha="right" if len(wide) > 4
                  else "center")
    ax.set_xlabel("calibration cut-off")
    ax.set_ylabel(metric + (f" ({_DIRECTION[direction]})"
                            if direction in _DIRECTION else ""))
    holdout = settings.get("holdout")
    ax.set_title(f"{metric} by calibration cut-off"
                 + (f", holdout {holdout}" if holdout is not None else ""))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    return ax

