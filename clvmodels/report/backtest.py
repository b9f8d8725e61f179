"""The backtest report: a :class:`~clvmodels.evaluation.BacktestResult` as one page.

The page is the transaction report of the latest cut-off (its comparison in full: data,
metrics, parameters, diagnostics, valuation) with a *Backtest* section added: every metric by
calibration cut-off, a line per model (:func:`clvmodels.plotting.plot_backtest`), the wins
per model and metric (ties shared, see :mod:`clvmodels.evaluation.backtest`) and the
distribution of each metric across the cut-offs (mean ± sd, min – max). Written by
:func:`clvmodels.report.write_report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from clvmodels.evaluation import METRIC_COLUMNS, METRIC_DIRECTIONS
from clvmodels.report.parts import STYLE as _STYLE
from clvmodels.report.parts import ReportFigure, direction_text, format_metric, missing
from clvmodels.report.parts import png as _png
from clvmodels.report.transaction import METRIC_INFO
from clvmodels.report.transaction import build_figures as _page_figures
from clvmodels.report.transaction import render_html as _page_html

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from clvmodels.evaluation import BacktestResult

__all__ = ["METRIC_INFO", "backtest_figure", "backtest_view", "build_figures", "render_html"]

#: the figure of the backtest section (its file stem)
FIGURE_NAME = "backtest"


def _drawn_metrics(result: BacktestResult) -> list[str]:
    """The metrics the figure shows: every metric some model has, but the fit time."""
    present = set(result.metrics.dropna(subset=["value"])["metric"])
    return [m for m in METRIC_COLUMNS if m in present and m != "fit_seconds"]


def backtest_figure(result: BacktestResult) -> Figure:
    """Every metric by calibration cut-off, one panel each, a line per model (one legend,
    in the first panel)."""
    import matplotlib.pyplot as plt

    from clvmodels.plotting import plot_backtest

    metrics = _drawn_metrics(result)
    if not metrics:
        raise ValueError("the backtest has no metric values to plot")
    ncols = min(3, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.3 * nrows),
                             layout="constrained", squeeze=False)
    flat = np.ravel(axes)
    interval = float(result.settings.get("interval", 0.9))
    handles: dict[str, Any] = {}
    for metric, ax in zip(metrics, flat, strict=False):
        plot_backtest(result, metric, ax=ax)
        direction = METRIC_DIRECTIONS[metric]
        label = METRIC_INFO[metric][0]
        ax.set_title(f"{label}: {direction_text(direction, interval)}" if direction else label,
                     fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", labelsize=8, labelrotation=30)
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(text, handle)
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
    spare = flat[len(metrics):]
    for ax in spare:
        ax.set_axis_off()
    if len(spare):  # one legend for every panel, in the first empty slot
        spare[0].legend(list(handles.values()), list(handles), loc="center", frameon=False,
                        title="model")
    else:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncols=min(len(handles), 4), frameon=False)
    return fig


def build_figures(result: BacktestResult) -> list[ReportFigure]:
    """The latest cut-off's figures (:func:`clvmodels.report.transaction.build_figures`)
    and the backtest figure; every figure is closed once saved."""
    import matplotlib.pyplot as plt

    figures = _page_figures(result.last)
    with plt.rc_context(_STYLE):
        fig = backtest_figure(result)
        figures.append(ReportFigure(
            FIGURE_NAME, "Metrics by calibration cut-off", "backtest", _png(fig),
            caption=f"Each model fitted at every cut-off and scored on the "
                    f"{result.settings.get('holdout')} after it; grey dashed lines are the "
                    "baselines. The panel titles say which way is better."))
    return figures


def backtest_view(result: BacktestResult) -> dict[str, Any]:
    """The backtest section's tables, formatted: cut-offs, wins per model and metric (the
    most wins of each metric marked), and each metric's mean ± sd and range per model."""
    interval = float(result.settings.get("interval", 0.9))
    wins = result.win_table()
    win_metrics = [m for m in wins.columns if m != "total"]
    header = [{"key": m, "label": METRIC_INFO[m][0],
               "definition": METRIC_INFO[m][2] + " ("
               + direction_text(METRIC_DIRECTIONS[m], interval) + ")"}
              for m in win_metrics]
    most = {m: wins[m].max() for m in [*win_metrics, "total"]}
    ranked = result.wins["ranked_cutoffs"].groupby(level="metric").first()
    win_rows = []
    for name in wins.index:
        cells = [{"text": f"{wins.at[name, m]:g}",
                  "best": bool(wins.at[name, m] > 0 and np.isclose(wins.at[name, m], most[m]))}
                 for m in [*win_metrics, "total"]]
        win_rows.append({"name": str(name), "cells": cells,
                         "baseline": name in result.settings.get("baselines", [])})
    summary = result.summary
    dist_metrics = [m for m in METRIC_COLUMNS
                    if m in set(summary.index.get_level_values("metric"))]
    dist_rows = []
    for name in dict.fromkeys(summary.index.get_level_values("model")):
        cells = []
        for m in dist_metrics:
            if (name, m) not in summary.index:
                cells.append({"text": "—", "range": "", "missing": True})
                continue
            r = summary.loc[(name, m)]
            sd = "" if missing(r["sd"]) else f" ± {format_metric(m, r['sd']).lstrip('+')}"
            cells.append({"text": f"{format_metric(m, r['mean'])}{sd}",
                          "range": f"{format_metric(m, r['min'])} – "
                                   f"{format_metric(m, r['max'])}",
                          "missing": False})
        dist_rows.append({"name": str(name), "cells": cells,
                          "baseline": name in result.settings.get("baselines", [])})
    s = result.settings
    return {
        "cutoffs": [{"calibration_end": c, "holdout_end": e}
                    for c, e in zip(s.get("calibration_ends", []), s.get("holdout_ends", []),
                                    strict=False)],
        "holdout": str(s.get("holdout")),
        "last": result.cutoffs[-1],
        "win_columns": header,
        "win_rows": win_rows,
        "ranked": {m: int(ranked.get(m, 0)) for m in win_metrics},
        "dist_columns": [{"key": m, "label": METRIC_INFO[m][0]} for m in dist_metrics],
        "dist_rows": dist_rows,
    }


def render_html(result: BacktestResult, figures: Sequence[ReportFigure] | None = None, *,
                title: str | None = None) -> str:
    """The page: the latest cut-off's transaction report with the backtest section."""
    if figures is None:
        figures = build_figures(result)
    return _page_html(result.last, figures, title=title or "CLV model backtest",
                                   backtest=backtest_view(result))
