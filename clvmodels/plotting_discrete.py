"""Plots of the discrete-time models: this module draws, :mod:`clvmodels.diagnostics_discrete`
computes.

=============================================  =================================================
table                                          plot
=============================================  =================================================
:func:`retention_curve_table`                  :func:`plot_retention_curve`
:func:`survival_projection_table`              :func:`plot_survival_projection`
:func:`probability_alive_table`                :func:`plot_probability_alive_table`
a comparison's ``holdout_retention`` tables    :func:`plot_holdout_retention`
=============================================  =================================================

Every function takes ``ax=None`` (a new figure is made when none is given) and returns the
Axes it drew on; Bayesian models get a shaded band for the central ``interval`` of the
posterior. Colours as in :mod:`clvmodels.plotting`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator, PercentFormatter

from clvmodels.diagnostics import DEFAULT_INTERVAL, _model_label, _unit_name
from clvmodels.diagnostics_discrete import (
    probability_alive_table,
    retention_curve_table,
    survival_projection_table,
)
from clvmodels.plotting import ACTUAL_COLOR, BAND_ALPHA, MODEL_COLOR, _interval_label, _new_ax
from clvmodels.subscription_kpis import cohort_retention_matrix

__all__ = [
    "plot_holdout_retention",
    "plot_probability_alive_table",
    "plot_retention_curve",
    "plot_survival_projection",
    "probability_alive_table",
    "retention_curve_table",
    "survival_projection_table",
]

#: colours of several models on one chart (Okabe-Ito, the report's order)
_PALETTE = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


def _period_axis(ax: Axes, unit: str | None, what: str) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"{what} ({_unit_name(unit)})" if unit else what)


def plot_retention_curve(model: Any, observed: Any, *, horizon: int | None = None,
                         calibrated_through: int | None = None, by_cohort: bool = False,
                         interval: float | None = DEFAULT_INTERVAL, segment: Any = None,
                         label: str | None = None, ax: Axes | None = None,
                         covariates: Any = None) -> Axes:
    """Share of customers still active after t renewals: observed against the model's S(t),
    with the projection beyond the calibration shaded (Fader & Hardie 2007, Figure 3).

    ``observed``: a contract summary (Kaplan-Meier survival; with ``by_cohort`` also a thin
    line per cohort) or an observed curve (shares, or percentages with S(0) = 100); see
    :func:`retention_curve_table` for ``horizon``, ``calibrated_through``, ``segment`` and
    ``covariates`` (a model with covariates: the cohort's customers, or one profile).
    The legend gives the mean absolute error in and beyond the calibration.
    """
    table = retention_curve_table(model, observed, horizon=horizon,
                                  calibrated_through=calibrated_through, interval=interval,
                                  segment=segment, covariates=covariates)
    ax = _new_ax(ax)
    t = table.index.to_numpy()
    if by_cohort:
        if not isinstance(observed, pd.DataFrame):
            raise ValueError("by_cohort needs a contract summary with a cohort column")
        matrix = cohort_retention_matrix(observed)
        for i, (_cohort, row) in enumerate(matrix.iterrows()):
            values = np.r_[1.0, row.to_numpy(float)]
            ax.plot(np.arange(len(values)), values, color=ACTUAL_COLOR, alpha=0.18,
                    linewidth=0.8, label="Cohorts" if i == 0 else None)
    ax.plot(t, table["observed"], color=ACTUAL_COLOR, marker="o", markersize=3.5,
            linewidth=2, label="Observed")
    a = table.attrs
    note = f"MAE {100 * a['calibration_mae']:.1f} pts"
    if np.isfinite(a["projection_mae"]):
        note += f", projected {100 * a['projection_mae']:.1f} pts"
    ax.plot(t, table["model"], color=MODEL_COLOR, linestyle="--", linewidth=2,
            label=f"{_model_label(model, label)} ({note})")
    if "model_lower" in table:
        ax.fill_between(t, table["model_lower"], table["model_upper"], color=MODEL_COLOR,
                        alpha=BAND_ALPHA, linewidth=0, label=_interval_label(interval))
    through = a["calibrated_through"]
    if through is not None and through < t[-1]:
        # named in the legend rather than by a text at the line: nothing to collide with it
        ax.axvspan(through, t[-1], color="0.5", alpha=0.08, linewidth=0,
                   label="Projection (beyond the calibration)")
        ax.axvline(through, color="0.35", linestyle=":", linewidth=1.2)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, t[-1])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    _period_axis(ax, a["time_unit"], "Renewals since acquisition")
    ax.set_ylabel("Customers still active")
    ax.set_title("Retention: observed vs model")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return ax


def plot_survival_projection(model: Any, horizon: int, *,
                             interval: float | None = DEFAULT_INTERVAL, segment: Any = None,
                             retention: bool = True, label: str | None = None,
                             ax: Axes | None = None, covariates: Any = None) -> Axes:
    """A new customer's survival S(t) over ``horizon`` periods (with the posterior band of a
    Bayesian model) and, with ``retention``, the retention rate r(t) on a second axis — rising
    with tenure, the heterogeneity the sBG captures (:func:`survival_projection_table`; a
    model with covariates needs ``covariates``: one profile, or a frame of customers)."""
    table = survival_projection_table(model, horizon, interval=interval, segment=segment,
                                      covariates=covariates)
    ax = _new_ax(ax)
    t = table.index.to_numpy()
    name = _model_label(model, label)
    ax.plot(t, table["survival"], color=MODEL_COLOR, linewidth=2.2, label=f"{name}: survival")
    if "survival_lower" in table:
        ax.fill_between(t, table["survival_lower"], table["survival_upper"],
                        color=MODEL_COLOR, alpha=BAND_ALPHA, linewidth=0,
                        label=_interval_label(interval))
    handles, labels = ax.get_legend_handles_labels()
    if retention:
        twin = ax.twinx()
        line = twin.plot(t[1:], table["retention_rate"].iloc[1:], color=ACTUAL_COLOR,
                         linestyle="--", linewidth=1.8, label="retention rate r(t)")
        if "retention_rate_lower" in table:
            twin.fill_between(t[1:], table["retention_rate_lower"].iloc[1:],
                              table["retention_rate_upper"].iloc[1:], color=ACTUAL_COLOR,
                              alpha=BAND_ALPHA * 0.6, linewidth=0)
        twin.set_ylim(0, 1.02)
        twin.yaxis.set_major_formatter(PercentFormatter(1.0))
        twin.set_ylabel("Retention rate (renewing, of those at risk)", color=ACTUAL_COLOR)
        handles += line
        labels += [line[0].get_label()]
    life, unit = table.attrs["expected_lifetime"], table.attrs["time_unit"]
    life_text = (f"expected lifetime {life:,.1f} {_unit_name(unit)}" if np.isfinite(life)
                 else "unbounded expected lifetime (alpha <= 1)")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, t[-1])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    _period_axis(ax, table.attrs["time_unit"], "Periods since acquisition")
    ax.set_ylabel("Share of a new cohort still active")
    ax.set_title(f"Survival projection ({life_text})")
    ax.legend(handles, labels, frameon=False, loc="upper right")
    ax.grid(alpha=0.3)
    return ax


def plot_probability_alive_table(model: Any, n: int, *, data: pd.DataFrame | None = None,
                                 weights: str | None = None, segment: Any = None,
                                 annotate: bool = True, cmap: str = "viridis",
                                 ax: Axes | None = None, covariates: Any = None) -> Axes:
    """Heat map of P(alive at opportunity n + 1) by recency and frequency (Fader, Hardie &
    Shang 2010, Table 6 as a picture; :func:`probability_alive_table`). Impossible cells stay
    blank; with ``annotate`` each cell shows its probability (and, with ``data``, its
    number of customers). A model with covariates draws one profile, ``covariates`` =
    ``{column: value, ...}`` (refused without)."""
    table = probability_alive_table(model, n, data=data, weights=weights, segment=segment,
                                    covariates=covariates)
    ax = _new_ax(ax, figsize=(7.2, 5.6))
    grid = table.to_numpy(dtype=float)
    image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", cmap=cmap, vmin=0.0,
                      vmax=1.0, aspect="auto")
    bar = ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    bar.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    bar.set_label("P(alive)")
    counts = table.attrs.get("customers")
    if annotate:
        for (i, j), value in np.ndenumerate(grid):
            if not np.isfinite(value):
                continue
            text = f"{value:.2f}"
            if counts is not None:
                text += f"\n({int(counts.iat[i, j]):,})"
            ax.text(j, i, text, ha="center", va="center", fontsize="x-small",
                    color="white" if value < 0.6 else "black")
    ax.set_xticks(range(n + 1))
    ax.set_yticks(range(n + 1))
    ax.set_xlabel("Frequency (transactions in the first n opportunities)")
    ax.set_ylabel("Recency (opportunity of the last transaction)")
    ax.set_title(f"P(alive) after {n} opportunities: {_model_label(model)}")
    return ax


def plot_holdout_retention(tables: Mapping[str, pd.DataFrame], *, baselines: Any = (),
                           unit: str | None = None, ax: Axes | None = None) -> Axes:
    """Customers active at the calibration end still paying after each renewal decision of
    the holdout: actual against every model (a contractual comparison's
    ``tables[name]["holdout_retention"]``, by name). ``baselines`` are drawn in grey."""
    if not tables:
        raise ValueError("no holdout retention tables to draw")
    ax = _new_ax(ax)
    first = next(iter(tables.values()))
    ax.plot(first.index, first["actual_share"], color="0.1", marker="o", markersize=4,
            linewidth=2.2, label="Actual")
    colour = 0
    for name, table in tables.items():
        err = table.attrs.get("tracking_error", float("nan"))
        text = f"{name} (end {100 * err:+.1f}%)" if np.isfinite(err) else name
        if name in baselines:
            style = dict(color="0.55", linestyle=(0, (5, 2)), linewidth=1.6)
        else:
            style = dict(color=_PALETTE[colour % len(_PALETTE)], linestyle="--",
                         linewidth=2.0)
            colour += 1
        ax.plot(table.index, table["expected_share"], label=text, **style)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, first.index.max())
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    _period_axis(ax, unit, "Renewal decisions after the calibration end")
    ax.set_ylabel("Still paying (of those active at the calibration end)")
    ax.set_title("Holdout retention of the active customers")
    ax.legend(frameon=False, fontsize="small")
    ax.grid(alpha=0.3)
    return ax
