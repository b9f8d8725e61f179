"""Diagnostic plots for fitted CLV models: this module draws, :mod:`clvmodels.diagnostics`
computes.

Every ``plot_*`` function takes ``ax=None`` (a new figure is made when none is given) and
returns the Axes it drew on (an array of Axes for the multi-panel Bayesian diagnostics). The
same functions serve maximum-likelihood and Bayesian models: for a Bayesian model (one for
which :func:`~clvmodels.models.protocol.is_posterior` holds) the model curve is the posterior
mean and a shaded band (or error bars) shows the central ``interval`` (90% by default) of the
posterior.

The numbers behind each plot come from a public ``*_table`` function of
:mod:`clvmodels.diagnostics` (re-exported here), so holdout metrics (chi-square, tracking
error, Gini, top-decile capture) are computed once, there, and the evaluation and the report
reuse them:

=============================================  =================================================
table                                          plot
=============================================  =================================================
:func:`calibration_histogram_table`            :func:`plot_calibration_histogram`
:func:`conditional_expectation_table`          :func:`plot_conditional_expectation`
:func:`tracking_table`                         :func:`plot_tracking`
:func:`frequency_recency_table`                :func:`plot_frequency_recency_matrix`,
                                               :func:`plot_probability_alive_matrix`
:func:`probability_alive_history`              :func:`plot_probability_alive_history`
:func:`spend_density_table`                    :func:`plot_spend_density`
:func:`lorenz_table`                           :func:`plot_lorenz`, :func:`plot_clv_distribution`
:func:`gains_table`                            :func:`plot_gains`
:func:`posterior_predictive_histogram_table`   :func:`plot_posterior_predictive_histogram`
(ArviZ)                                        :func:`plot_trace`
(the model's priors and posterior)             :func:`plot_prior_posterior`
``model.segment_params_``                      :func:`plot_segment_forest`
:func:`coefficient_table`                      :func:`plot_coefficients`
``BacktestResult.metrics``                     :func:`plot_backtest` (in
                                               :mod:`clvmodels.plotting_backtest`)
=============================================  =================================================

Colours: :data:`ACTUAL_COLOR` for what was observed, :data:`MODEL_COLOR` for the model.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import MatplotlibDeprecationWarning
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, PercentFormatter

from clvmodels.diagnostics import (
    DEFAULT_INTERVAL,
    DEFAULT_MAX_DRAWS,
    Period,
    _as_day,
    _model_label,
    _unit_name,
    _values,
    calibration_histogram_table,
    conditional_expectation_table,
    frequency_recency_table,
    gains_table,
    lorenz_table,
    posterior_predictive_histogram_table,
    probability_alive_history,
    spend_density_table,
    tracking_table,
)
from clvmodels.diagnostics_covariates import coefficient_table
from clvmodels.models.protocol import is_posterior
from clvmodels.plotting_backtest import plot_backtest

__all__ = [
    "ACTUAL_COLOR",
    "BAND_ALPHA",
    "DEFAULT_INTERVAL",
    "DEFAULT_MAX_DRAWS",
    "MODEL_COLOR",
    "calibration_histogram_table",
    "coefficient_table",
    "conditional_expectation_table",
    "frequency_recency_table",
    "gains_table",
    "lorenz_table",
    "plot_backtest",
    "plot_calibration_histogram",
    "plot_clv_distribution",
    "plot_coefficients",
    "plot_conditional_expectation",
    "plot_frequency_recency_matrix",
    "plot_gains",
    "plot_lorenz",
    "plot_posterior_predictive_histogram",
    "plot_prior_posterior",
    "plot_probability_alive_history",
    "plot_probability_alive_matrix",
    "plot_segment_forest",
    "plot_spend_density",
    "plot_trace",
    "plot_tracking",
    "posterior_predictive_histogram_table",
    "probability_alive_history",
    "spend_density_table",
    "tracking_table",
]

#: Colour of observed data (Okabe-Ito blue).
ACTUAL_COLOR = "#0072B2"
#: Colour of model expectations (Okabe-Ito vermillion).
MODEL_COLOR = "#D55E00"
#: Opacity of the credible-interval bands.
BAND_ALPHA = 0.25


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _fmt_number(value: float, digits: int = 0) -> str:
    """A number with thousands separators."""
    return f"{value:,.{digits}f}"


def _thousands(axis: Any, digits: int = 0) -> None:
    """Format an axis' tick labels with thousands separators."""
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.{digits}f}"))


def _new_ax(ax: Axes | None, figsize: tuple[float, float] = (8.0, 4.8)) -> Axes:
    """``ax``, or the Axes of a new figure."""
    if ax is not None:
        return ax
    _, new = plt.subplots(figsize=figsize, layout="constrained")
    return new


def _new_axes(ax: Any, n: int, ncols: int | None = None,
              panel: tuple[float, float] = (3.6, 3.0)) -> np.ndarray:
    """``n`` Axes: the given sequence (checked), or a new grid of panels."""
    if ax is not None:
        axes = np.ravel(np.asarray(ax, dtype=object))
        if len(axes) < n:
            raise ValueError(f"ax must hold at least {n} Axes, got {len(axes)}")
        return axes[:n]
    ncols = min(n, ncols or 4)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows),
                             layout="constrained", squeeze=False)
    flat = axes.ravel()
    for extra in flat[n:]:
        fig.delaxes(extra)
    return flat[:n]


def _interval_label(interval: float | None) -> str:
    """"90% credible interval" for ``interval=0.9``."""
    return f"{round(100 * (interval or DEFAULT_INTERVAL)):g}% credible interval"


def _counts_in(model: Any) -> dict[str, str]:
    """How a model's counts read on an axis: repeat purchases in a calibration period
    (continuous time) or transactions at the calibration opportunities (a discrete-time
    model such as the BG/BB, whose x counts transactions in n opportunities)."""
    if getattr(model, "data_kind", None) == "discrete":
        return {"count": "transactions", "Count": "Transactions",
                "calibration": "the calibration opportunities", "holdout": "transactions"}
    return {"count": "repeat purchases", "Count": "Repeat purchases",
            "calibration": "the calibration period", "holdout": "purchases"}


def _date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _mark_calibration_end(ax: Axes, when: Any, *, top: bool = True) -> None:
    """A dotted vertical line labelled "end of calibration" (at the top or the bottom);
    callers keep their legend at the other end, or outside the axes."""
    ax.axvline(when, color="0.35", linestyle=":", linewidth=1.2)
    ax.annotate("end of calibration", xy=(when, 1.0 if top else 0.0),
                xycoords=("data", "axes fraction"), xytext=(4, -4 if top else 4),
                textcoords="offset points", ha="left", va="top" if top else "bottom",
                fontsize="small", color="0.3")


# --------------------------------------------------------------------------------------
# calibration histogram
# --------------------------------------------------------------------------------------


def plot_calibration_histogram(model: Any, rfm: pd.DataFrame, max_frequency: int = 7, *,
                               interval: float | None = DEFAULT_INTERVAL,
                               max_draws: int = DEFAULT_MAX_DRAWS, label: str | None = None,
                               ax: Axes | None = None) -> Axes:
    """Bar chart of customers by repeat purchases 0..k+ in calibration, actual vs model.

    The model's legend entry carries the chi-square statistic and its degrees of freedom
    (:func:`calibration_histogram_table`). Bayesian models: error bars show the ``interval``.
    """
    table = calibration_histogram_table(model, rfm, max_frequency, interval=interval,
                                        max_draws=max_draws)
    ax = _new_ax(ax)
    pos = np.arange(len(table))
    width = 0.4
    ax.bar(pos - width / 2, table["actual"], width, color=ACTUAL_COLOR, label="Actual")
    chi = table.attrs["chi_square"]
    name = f"{_model_label(model, label)} (χ² = {chi:,.1f}, df = {table.attrs['dof']})"
    ax.bar(pos + width / 2, table["expected"], width, color=MODEL_COLOR, label=name)
    if "expected_lower" in table:
        err = np.vstack([table["expected"] - table["expected_lower"],
                         table["expected_upper"] - table["expected"]])
        ax.errorbar(pos + width / 2, table["expected"], yerr=np.clip(err, 0, None), fmt="none",
                    ecolor="0.15", capsize=3, linewidth=1,
                    label=_interval_label(interval))
    words = _counts_in(model)
    ax.set_xticks(pos, table.index)
    ax.set_xlabel(f"{words['Count']} in {words['calibration']}")
    ax.set_ylabel("Customers")
    _thousands(ax.yaxis)
    ax.set_title(f"Customers by number of {words['count']} "
                 f"({_fmt_number(table.attrs['n_customers'])} customers)")
    ax.legend(frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return ax


# --------------------------------------------------------------------------------------
# posterior predictive check of the calibration histogram
# --------------------------------------------------------------------------------------


def plot_posterior_predictive_histogram(model: Any, rfm: pd.DataFrame,
                                        max_frequency: int = 7, *, n_replicates: int = 200,
                                        interval: float = DEFAULT_INTERVAL,
                                        random_seed: int | None = 0,
                                        label: str | None = None,
                                        ax: Axes | None = None) -> Axes:
    """Observed calibration histogram (bars) against replicated data sets (points and
    interval bars): :func:`posterior_predictive_histogram_table`."""
    table = posterior_predictive_histogram_table(model, rfm, max_frequency,
                                                 n_replicates=n_replicates, interval=interval,
                                                 random_seed=random_seed)
    ax = _new_ax(ax)
    pos = np.arange(len(table))
    ax.bar(pos, table["actual"], 0.6, color=ACTUAL_COLOR, alpha=0.85, label="Actual")
    err = np.vstack([table["replicated_mean"] - table["replicated_lower"],
                     table["replicated_upper"] - table["replicated_mean"]])
    ax.errorbar(pos, table["replicated_mean"], yerr=np.clip(err, 0, None), fmt="o",
                color=MODEL_COLOR, ecolor=MODEL_COLOR, capsize=4, linewidth=1.5,
                label=(f"{_model_label(model, label)}: replicated data, mean and "
                       f"{round(100 * interval):g}% interval"))
    words = _counts_in(model)
    ax.set_xticks(pos, table.index)
    ax.set_xlabel(f"{words['Count']} in {words['calibration']}")
    ax.set_ylabel("Customers")
    _thousands(ax.yaxis)
    check = ("Posterior predictive check" if is_posterior(model)
             else "Parametric bootstrap check")
    ax.set_title(f"{check}: {table.attrs['n_replicates']} replicated data sets "
                 f"(χ² p-value {table.attrs['p_value']:.2f})")
    ax.legend(frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return ax


# --------------------------------------------------------------------------------------
# conditional expectation: holdout purchases by calibration frequency
# --------------------------------------------------------------------------------------


def plot_conditional_expectation(model: Any, split: pd.DataFrame, max_frequency: int = 7, *,
                                 interval: float | None = DEFAULT_INTERVAL,
                                 label: str | None = None, ax: Axes | None = None) -> Axes:
    """Average holdout purchases by calibration frequency, actual vs model
    (:func:`conditional_expectation_table`); Bayesian models get a shaded band."""
    table = conditional_expectation_table(model, split, max_frequency, interval=interval)
    ax = _new_ax(ax)
    pos = np.arange(len(table))
    ax.plot(pos, table["actual"], marker="o", color=ACTUAL_COLOR, linewidth=2, label="Actual")
    ax.plot(pos, table["expected"], marker="s", color=MODEL_COLOR, linewidth=2,
            linestyle="--", label=_model_label(model, label))
    if "expected_lower" in table:
        ax.fill_between(pos, table["expected_lower"], table["expected_upper"],
                        color=MODEL_COLOR, alpha=BAND_ALPHA, linewidth=0,
                        label=_interval_label(interval))
    ticks = [f"{lab}\n(n={_fmt_number(n)})" for lab, n in zip(table.index, table["n_customers"],
                                                               strict=True)]
    ax.set_xticks(pos, ticks, fontsize="small")
    unit = table.attrs["time_unit"]
    duration = table.attrs["duration"]
    words = _counts_in(model)
    length = (f"{duration:,.4g} opportunities" if words["count"] == "transactions"
              else f"{duration:,.4g} {_unit_name(unit)}")
    ax.set_xlabel(f"{words['Count']} in {words['calibration']} (customers)")
    ax.set_ylabel(f"Average {words['holdout']} in the holdout\n({length})")
    ax.set_title(f"Holdout {words['holdout']} by calibration frequency")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return ax


# --------------------------------------------------------------------------------------
# tracking: repeat transactions per period over calibration + holdout
# --------------------------------------------------------------------------------------


def plot_tracking(model: Any, transactions: pd.DataFrame, calibration_end: Any,
                  observation_end: Any, period: Period = "W", *,
                  kind: Literal["cumulative", "incremental"] = "cumulative",
                  customer_id_col: str = "customer_id", datetime_col: str = "date",
                  segments: pd.Series | None = None,
                  interval: float | None = DEFAULT_INTERVAL, label: str | None = None,
                  ax: Axes | None = None, covariates: pd.DataFrame | None = None) -> Axes:
    """Cumulative or per-period (incremental) repeat transactions over calibration +
    holdout, actual vs model, with the end of calibration marked (:func:`tracking_table`;
    ``segments`` as there, for hierarchical models; ``covariates`` as there, for models
    with covariates).

    The legend gives the model's *holdout tracking error*: the cohort's expected repeat
    transactions over the holdout (the unconditional forecast, each customer from their first
    purchase) / the actual ones - 1 — the ``tracking_error`` of
    :func:`clvmodels.evaluation.compare_models`. The per-period chart plots rates per full
    period (count x period length / days covered), so a last period cut short by
    ``observation_end`` is scaled like every other, and it is marked with open circles.
    The end-of-calibration label sits at the bottom of the axes and the legend at the top,
    so the two never overlap.
    """
    if kind not in ("cumulative", "incremental"):
        raise ValueError("kind must be 'cumulative' or 'incremental'")
    table = tracking_table(model, transactions, calibration_end, observation_end, period,
                           customer_id_col=customer_id_col, datetime_col=datetime_col,
                           segments=segments, interval=interval, covariates=covariates)
    ax = _new_ax(ax, figsize=(9.0, 4.8))
    cumulative = kind == "cumulative"
    suffix = "_cumulative" if cumulative else ""
    when = table["period_end"]
    # per-period counts become rates per full period (1 for every complete period)
    scale = (np.ones(len(table)) if cumulative
             else table.attrs["period_days"] / table["days"].to_numpy(float))
    err = table.attrs["holdout_percent_error"]
    actual = table[f"actual{suffix}"].to_numpy(float) * scale
    expected = table[f"expected{suffix}"].to_numpy(float) * scale
    ax.plot(when, actual, color=ACTUAL_COLOR, linewidth=2, label="Actual")
    ax.plot(when, expected, color=MODEL_COLOR, linewidth=2, linestyle="--",
            label=f"{_model_label(model, label)}: holdout tracking error {err:+.1f}%")
    top = float(np.nanmax(np.r_[actual, expected]))
    if f"expected{suffix}_lower" in table:
        upper = table[f"expected{suffix}_upper"].to_numpy(float) * scale
        ax.fill_between(when, table[f"expected{suffix}_lower"].to_numpy(float) * scale, upper,
                        color=MODEL_COLOR, alpha=BAND_ALPHA, linewidth=0,
                        label=_interval_label(interval))
        top = max(top, float(np.nanmax(upper)))
    name = table.attrs["period_name"]
    partial = ~table["complete"].to_numpy(bool)
    if not cumulative and partial.any():
        days = int(table["days"].to_numpy()[partial][-1])
        ax.plot(when[partial], actual[partial], linestyle="none", marker="o", markersize=7,
                markerfacecolor="white", markeredgecolor="0.2", markeredgewidth=1.4,
                zorder=3, label=f"Last {name} partial ({days} of "
                                f"{table.attrs['period_days']:g} days), scaled")
        ax.plot(when[partial], expected[partial], linestyle="none", marker="o", markersize=7,
                markerfacecolor="white", markeredgecolor="0.2", markeredgewidth=1.4, zorder=3)
    _mark_calibration_end(ax, pd.Timestamp(table.attrs["calibration_end"]), top=False)
    if cumulative:
        ax.set_title(f"Cumulative repeat transactions "
                     f"({_fmt_number(table.attrs['n_customers'])} customers)")
        ax.set_ylabel("Cumulative repeat transactions")
    else:
        ax.set_title(f"Repeat transactions per {name} "
                     f"({_fmt_number(table.attrs['n_customers'])} customers)")
        ax.set_ylabel(f"Repeat transactions per {name}")
    ax.set_xlabel(f"End of {name}")
    # headroom for the legend at the top (the calibration label is at the bottom)
    entries = len(ax.get_legend_handles_labels()[1])
    ax.set_ylim(0, max(top, 1e-9) * (1.08 + 0.09 * entries))
    _thousands(ax.yaxis)
    _date_axis(ax)
    ax.legend(frameon=False, loc="upper left" if cumulative else "upper right")
    ax.grid(alpha=0.3)
    return ax


# --------------------------------------------------------------------------------------
# frequency / recency matrices
# --------------------------------------------------------------------------------------


def plot_frequency_recency_matrix(model: Any, rfm: pd.DataFrame, *,
                                  kind: Literal["expected_purchases",
                                                "probability_alive"] = "expected_purchases",
                                  t: float = 1.0, T: float | None = None,
                                  max_frequency: int | None = None, n_recency: int = 50,
                                  segment: Any = None, cmap: str = "viridis",
                                  ax: Axes | None = None, covariates: Any = None) -> Axes:
    """Heat map of expected purchases in the next ``t`` periods (or P(alive)) by frequency
    and recency, for customers observed for ``T`` (:func:`frequency_recency_table`; a
    covariate model's profile ``covariates`` as there)."""
    table = frequency_recency_table(model, rfm, kind=kind, t=t, T=T,
                                    max_frequency=max_frequency, n_recency=n_recency,
                                    segment=segment, covariates=covariates)
    ax = _new_ax(ax, figsize=(8.0, 5.5))
    rec = table.columns.to_numpy(float)
    step = rec[1] - rec[0]
    x_edges = np.concatenate([[rec[0] - step / 2], rec + step / 2])
    freq = table.index.to_numpy(float)
    y_edges = np.concatenate([freq - 0.5, [freq[-1] + 0.5]])
    alive = kind == "probability_alive"
    mesh = ax.pcolormesh(x_edges, y_edges, table.to_numpy(), cmap=cmap, shading="flat",
                         vmin=0.0 if alive else None, vmax=1.0 if alive else None)
    unit = table.attrs["time_unit"]
    bar = ax.figure.colorbar(mesh, ax=ax)
    if alive:
        bar.set_label("Probability alive")
        bar.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        title = "Probability that a customer is still active"
    else:
        horizon = f"{t:g} {_unit_name(unit, plural=t != 1)}"
        bar.set_label(f"Expected purchases in the next {horizon}")
        title = f"Expected purchases in the next {horizon}"
    T_val = table.attrs["T"]
    ax.set_title(f"{title}\n(customers observed for {T_val:,.4g} {_unit_name(unit)}; "
                 f"{_model_label(model)})")
    ax.set_xlabel(f"Recency: time from first to last purchase ({_unit_name(unit)})")
    ax.set_ylabel(f"Frequency: {_counts_in(model)['count']}")
    ax.set_xlim(x_edges[0], x_edges[-1])
    ax.set_ylim(y_edges[0], y_edges[-1])
    return ax


def plot_probability_alive_matrix(model: Any, rfm: pd.DataFrame, *, T: float | None = None,
                                  max_frequency: int | None = None, n_recency: int = 50,
                                  segment: Any = None, cmap: str = "viridis",
                                  ax: Axes | None = None, covariates: Any = None) -> Axes:
    """Heat map of P(alive) by frequency and recency
    (:func:`plot_frequency_recency_matrix` with ``kind="probability_alive"``)."""
    return plot_frequency_recency_matrix(model, rfm, kind="probability_alive", T=T,
                                         max_frequency=max_frequency, n_recency=n_recency,
                                         segment=segment, cmap=cmap, ax=ax,
                                         covariates=covariates)


# --------------------------------------------------------------------------------------
# one customer's P(alive) over time
# --------------------------------------------------------------------------------------


def plot_probability_alive_history(model: Any,
                                   purchases: pd.DataFrame | Sequence[Any] | pd.Series,
                                   observation_end: Any, *, customer_id: Any = None,
                                   customer_id_col: str = "customer_id",
                                   datetime_col: str = "date", freq: str = "D",
                                   calibration_end: Any = None, segment: Any = None,
                                   interval: float | None = DEFAULT_INTERVAL,
                                   ax: Axes | None = None, covariates: Any = None) -> Axes:
    """One customer's P(alive) over time with their purchases marked
    (:func:`probability_alive_history`; ``covariates``: a covariate model's profile of the
    customer); ``calibration_end`` adds a marker line."""
    hist = probability_alive_history(model, purchases, observation_end,
                                     customer_id=customer_id, customer_id_col=customer_id_col,
                                     datetime_col=datetime_col, freq=freq, segment=segment,
                                     interval=interval, covariates=covariates)
    ax = _new_ax(ax, figsize=(9.0, 4.0))
    when = hist.index
    ax.plot(when, hist["probability_alive"], color=MODEL_COLOR, linewidth=2,
            label=f"P(alive), {_model_label(model)}")
    if "lower" in hist:
        ax.fill_between(when, hist["lower"], hist["upper"], color=MODEL_COLOR,
                        alpha=BAND_ALPHA, linewidth=0,
                        label=_interval_label(interval))
    buys = hist.loc[hist["is_purchase"]]
    ax.vlines(buys.index, 0, 1, colors=ACTUAL_COLOR, linestyles=":", linewidth=1, alpha=0.7)
    ax.plot(buys.index, np.ones(len(buys)), linestyle="none", marker="v", markersize=8,
            color=ACTUAL_COLOR, label=f"Purchase ({len(buys)})", clip_on=False)
    if calibration_end is not None:
        _mark_calibration_end(ax, _as_day(calibration_end, "calibration_end"), top=False)
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("Probability alive")
    ax.set_xlabel("Date")
    who = f"Customer {customer_id}" if customer_id is not None else "One customer"
    ax.set_title(f"{who}: probability of being alive over time")
    _date_axis(ax)
    # beside the axes: the end-of-calibration label (bottom) and the purchase marks (top)
    # stay clear of it wherever they fall
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize="small")
    ax.grid(alpha=0.3)
    return ax


# --------------------------------------------------------------------------------------
# Gamma-Gamma: spend density
# --------------------------------------------------------------------------------------


def plot_spend_density(model: Any, rfm: pd.DataFrame, *, bins: int = 40,
                       n_points: int = 200, max_spend: float | None = None,
                       interval: float | None = DEFAULT_INTERVAL, currency: str = "",
                       ax: Axes | None = None) -> Axes:
    """Observed distribution of repeat buyers' mean spend (histogram, as a density) against
    the Gamma-Gamma model's (:func:`spend_density_table`), with both means marked.

    The histogram is normalised over *all* repeat buyers, so it compares directly with the
    model density even though the axis stops at ``max_spend``.
    """
    table = spend_density_table(model, rfm, n_points=n_points, max_spend=max_spend,
                                interval=interval)
    top = table.attrs["max_spend"]
    m = rfm.loc[rfm["frequency"] > 0, "monetary_value"].to_numpy(float)
    ax = _new_ax(ax)
    counts, edges = np.histogram(m, bins=bins, range=(0.0, top))
    height = counts / (len(m) * np.diff(edges))
    ax.bar(edges[:-1], height, np.diff(edges), align="edge", color=ACTUAL_COLOR, alpha=0.55,
           label=f"Actual ({_fmt_number(len(m))} repeat buyers)")
    ax.plot(table.index, table["density"], color=MODEL_COLOR, linewidth=2.2,
            label=_model_label(model))
    if "density_lower" in table:
        ax.fill_between(table.index, table["density_lower"], table["density_upper"],
                        color=MODEL_COLOR, alpha=BAND_ALPHA, linewidth=0,
                        label=_interval_label(interval))
    obs, mod = table.attrs["observed_mean"], table.attrs["model_mean"]
    ax.axvline(obs, color=ACTUAL_COLOR, linestyle=":", linewidth=1.5,
               label=f"Actual mean {currency}{obs:,.2f}")
    ax.axvline(mod, color=MODEL_COLOR, linestyle=":", linewidth=1.5,
               label=f"Model mean {currency}{mod:,.2f}")
    ax.set_xlim(0, top)
    ax.set_xlabel(f"Mean spend per repeat transaction ({currency or 'currency'})")
    ax.set_ylabel("Density")
    above = table.attrs["share_above_max"]
    note = f"; {above:.1%} of customers beyond the axis" if above > 0 else ""
    ax.set_title(f"Mean spend per customer: actual vs model{note}")
    _thousands(ax.xaxis)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return ax


# --------------------------------------------------------------------------------------
# CLV: distribution, Lorenz curve, gains
# --------------------------------------------------------------------------------------


def plot_clv_distribution(clv: Any, *, bins: int = 50, clip_quantile: float = 0.99,
                          currency: str = "", ax: Axes | None = None) -> Axes:
    """Histogram of customer lifetime values with the mean and median marked.

    ``clv`` is a Series/array or the frame of :func:`clvmodels.customer_lifetime_value` (its
    ``clv`` column; for Bayesian models the posterior means, and the title gives the
    credible interval of the total from ``attrs``). The axis stops at the ``clip_quantile``
    of the values (long tails would squash the bars); the title says how many lie beyond.
    """
    arr = _values(clv, "clv")
    if not 0 < clip_quantile <= 1:
        raise ValueError(f"clip_quantile must be in (0, 1], got {clip_quantile!r}")
    top = float(np.quantile(arr, clip_quantile))
    low = min(0.0, float(arr.min()))
    if top <= low:
        top = low + 1.0
    ax = _new_ax(ax)
    ax.hist(np.clip(arr, low, top), bins=bins, range=(low, top), color=ACTUAL_COLOR,
            alpha=0.8, label=f"{_fmt_number(len(arr))} customers")
    mean, median = float(arr.mean()), float(np.median(arr))
    ax.axvline(mean, color=MODEL_COLOR, linestyle="--", linewidth=1.8,
               label=f"Mean {currency}{mean:,.2f}")
    ax.axvline(median, color="0.2", linestyle=":", linewidth=1.8,
               label=f"Median {currency}{median:,.2f}")
    attrs = getattr(clv, "attrs", {}) or {}
    total = f"total {currency}{arr.sum():,.0f}"
    if "total_clv_lower" in attrs:
        total += (f" ({currency}{attrs['total_clv_lower']:,.0f} – "
                  f"{currency}{attrs['total_clv_upper']:,.0f})")
    horizon = ""
    if "horizon" in attrs and attrs.get("time_unit"):
        horizon = f" over {attrs['horizon']:,.4g} {_unit_name(attrs['time_unit'])}"
    beyond = int(np.sum(arr > top))
    ax.set_title(f"Customer lifetime value{horizon}: {total}"
                 + (f"\n{_fmt_number(beyond)} customers above {currency}{top:,.0f} shown in "
                    "the last bar" if beyond else ""))
    ax.set_xlabel(f"CLV per customer ({currency or 'currency'})")
    ax.set_ylabel("Customers")
    _thousands(ax.xaxis)
    _thousands(ax.yaxis)
    ax.legend(frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return ax


def plot_lorenz(values: Any, *, label: str = "CLV", ax: Axes | None = None) -> Axes:
    """Cumulative share of value held by the top customers (customers ranked from most to
    least valuable), with the line of equality and the Gini coefficient (:func:`lorenz_table`).
    """
    table = lorenz_table(values, n_points=501)
    ax = _new_ax(ax, figsize=(6.0, 5.0))
    grid = table.index.to_numpy()
    ax.plot(grid, table["top_share"], color=ACTUAL_COLOR, linewidth=2.2,
            label=f"{label} (Gini {table.attrs['gini']:.2f})")
    ax.plot([0, 1], [0, 1], color="0.5", linestyle="--", linewidth=1, label="Equal value")
    top10 = table.attrs["top_10_share"]
    ax.plot([0.1], [top10], marker="o", color=MODEL_COLOR, linestyle="none")
    ax.annotate(f"top 10% of customers hold {top10:.0%}", xy=(0.1, top10),
                xytext=(12, -14), textcoords="offset points", fontsize="small")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("Customers, ranked from most to least valuable")
    ax.set_ylabel(f"Cumulative share of {label}")
    ax.set_title(f"Concentration of {label} ({_fmt_number(table.attrs['n_customers'])} "
                 "customers)")
    ax.legend(frameon=False, loc="lower right")
    ax.grid(alpha=0.3)
    return ax


def plot_gains(predicted: Any, actual: Any, *, predicted_label: str = "predicted CLV",
               actual_label: str = "holdout revenue", ax: Axes | None = None) -> Axes:
    """Gains curve: share of ``actual`` captured by customers ranked on ``predicted``,
    against a perfect and a random ranking (:func:`gains_table`)."""
    table = gains_table(predicted, actual, n_points=501)
    ax = _new_ax(ax, figsize=(6.0, 5.0))
    grid = table.index.to_numpy()
    a = table.attrs
    ax.plot(grid, table["model"], color=MODEL_COLOR, linewidth=2.2,
            label=f"Ranked by {predicted_label} (top 10% capture "
                  f"{a['top_decile_capture']:.0%}, Gini {a['gini']:.2f})")
    ax.plot(grid, table["perfect"], color=ACTUAL_COLOR, linewidth=1.5, linestyle="--",
            label=f"Perfect ranking (top 10% {a['top_decile_capture_perfect']:.0%})")
    ax.plot(grid, table["random"], color="0.5", linewidth=1, linestyle=":",
            label="Random ranking")
    ax.axvline(0.1, color="0.75", linewidth=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(f"Customers, ranked by {predicted_label} (highest first)")
    ax.set_ylabel(f"Cumulative share of {actual_label}")
    ax.set_title(f"Gains: {actual_label} captured by top-ranked customers")
    ax.legend(frameon=False, loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    return ax


# --------------------------------------------------------------------------------------
# Bayesian diagnostics
# --------------------------------------------------------------------------------------


def _require_bayesian(model: Any, what: str) -> None:
    if not is_posterior(model):
        raise TypeError(f"{what} needs a Bayesian model (fitted with PyMC), got "
                        f"{type(model).__name__}")
    model.n_draws  # noqa: B018 -- the public draws API: raises NotFittedError before a fit


def _default_var_names(model: Any) -> list[str]:
    """Hyperparameters then natural parameters (hierarchical), or the parameters."""
    if getattr(model, "segment_col", None):
        return ([f"mu_{u}" for u in model.latents] + [f"sigma_{u}" for u in model.latents]
                + list(model.param_names))
    return list(model.param_names)


def plot_trace(model: Any, var_names: Sequence[str] | None = None, *,
               kind: Literal["trace", "rank_bars", "rank_vlines"] = "trace",
               ax: Any = None) -> np.ndarray:
    """MCMC diagnostics with ArviZ: trace plots (density + draws per chain) or rank plots.

    ``var_names`` default to the model's parameters (and hyperparameters when hierarchical).
    Returns ArviZ's array of Axes; ``ax`` is passed through (shape ``(n_vars, 2)`` for
    ``"trace"``, ``n_vars`` Axes for rank plots).
    """
    _require_bayesian(model, "plot_trace")
    import arviz as az

    names = list(var_names) if var_names is not None else _default_var_names(model)
    if kind not in ("trace", "rank_bars", "rank_vlines"):
        raise ValueError("kind must be 'trace', 'rank_bars' or 'rank_vlines'")
    with warnings.catch_warnings():
        # ArviZ 0.x calls a matplotlib helper the way matplotlib 3.11 deprecates
        warnings.simplefilter("ignore", MatplotlibDeprecationWarning)
        if kind == "trace":
            axes = az.plot_trace(model.idata_, var_names=names, axes=ax, compact=True,
                                 backend_kwargs={"layout": "constrained"} if ax is None
                                 else None)
        else:
            axes = az.plot_rank(model.idata_, var_names=names, kind=kind.split("_")[1], ax=ax)
    axes = np.asarray(axes)
    fig = np.ravel(axes)[0].figure
    if ax is None:
        what = "Trace" if kind == "trace" else "Rank"
        fig.suptitle(f"{what} plots: {_model_label(model)}")
    return axes


def _prior_logpdf(spec: dict[str, Any], grid: np.ndarray) -> np.ndarray:
    """Log density of a prior spec (``{"dist": "LogNormal", "mu": 0, "sigma": 2}``) on a grid,
    evaluated by PyMC itself so every PyMC distribution is supported."""
    import pymc as pm

    params = {k: v for k, v in spec.items() if k != "dist"}
    rv = getattr(pm, spec["dist"]).dist(**params)
    return np.asarray(pm.logp(rv, grid).eval(), dtype=float)


def plot_prior_posterior(model: Any, var_names: Sequence[str] | None = None, *,
                         bins: int = 30, ax: Any = None) -> np.ndarray:
    """Prior density (line) against the posterior (histogram of the draws) per parameter.

    ``var_names`` default to the parameters that carry a prior (``model.priors_``: the natural
    parameters, or the hyperparameters of a hierarchical model). Each panel spans the
    posterior's range, so a prior that is nearly flat there shows the data dominate. Returns
    the array of Axes (``ax``: a sequence of at least ``len(var_names)`` Axes).
    """
    _require_bayesian(model, "plot_prior_posterior")
    priors = model.priors_
    names = list(var_names) if var_names is not None else list(priors)
    unknown = [n for n in names if n not in priors]
    if unknown:
        raise ValueError(f"no prior for {unknown}; parameters with priors: {list(priors)}")
    axes = _new_axes(ax, len(names))
    post = model.idata_.posterior
    for name, a in zip(names, axes, strict=True):
        draws = post[name].to_numpy().ravel()
        lo, hi = np.quantile(draws, [0.001, 0.999])
        pad = 0.35 * (hi - lo) if hi > lo else 0.5 * max(abs(lo), 1.0)
        left, right = lo - pad, hi + pad
        if _spec_positive(priors[name]):
            left = max(left, 0.0)
        heights, _, _ = a.hist(draws, bins=bins, range=(left, right), density=True,
                               color=ACTUAL_COLOR, alpha=0.6, label="Posterior")
        grid = np.linspace(left, right, 300)
        with np.errstate(all="ignore"):
            dens = np.exp(_prior_logpdf(priors[name], grid))
        spec = priors[name]
        args = ", ".join(f"{k}={v:.3g}" for k, v in spec.items() if k != "dist")
        a.plot(grid, dens, color=MODEL_COLOR, linewidth=2, label="Prior")
        a.set_title(f"{name}\nprior {spec['dist']}({args})", fontsize="medium")
        a.set_xlim(left, right)
        # a prior spiking at the edge (e.g. LogNormal near 0) must not squash the posterior
        peak = float(np.max(heights))
        finite = dens[np.isfinite(dens)]
        prior_peak = float(finite.max()) if len(finite) else 0.0
        a.set_ylim(0, 1.15 * max(peak, min(prior_peak, 2.0 * peak)))
        a.set_yticks([])
    axes[0].legend(frameon=False, fontsize="small", loc="upper left")
    if ax is None:
        axes[0].figure.suptitle(f"Prior vs posterior: {_model_label(model)}")
    return axes


def _spec_positive(spec: dict[str, Any]) -> bool:
    """Whether a prior spec's distribution lives on the positive half-line."""
    return spec["dist"] in {"LogNormal", "Gamma", "HalfNormal", "HalfCauchy", "Exponential",
                            "HalfStudentT", "InverseGamma", "Weibull", "ChiSquared", "Lognormal"}


def plot_segment_forest(model: Any, params: Sequence[str] | None = None, *,
                        ax: Any = None) -> np.ndarray:
    """Forest plot of a hierarchical model's segment parameters: posterior mean and
    credible interval per segment (``model.segment_params_``), one panel per parameter, with
    the typical segment (``model.params_``) as a dashed line. Segment labels carry their
    number of customers. Returns the array of Axes.
    """
    _require_bayesian(model, "plot_segment_forest")
    table = getattr(model, "segment_params_", None)
    if table is None:
        raise TypeError(f"{type(model).__name__} is not hierarchical (no segment_params_): "
                        "fit it with segment_col=... for a forest plot of segments")
    names = list(params) if params is not None else list(model.param_names)
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise ValueError(f"unknown parameter(s) {missing}; choose from {list(model.param_names)}")
    axes = _new_axes(ax, len(names), ncols=len(names),
                     panel=(3.2, max(2.5, 0.45 * len(table) + 1.2)))
    pos = np.arange(len(table))[::-1]
    labels = [f"{seg} (n={_fmt_number(n)})" for seg, n in zip(table.index, table["n_customers"],
                                                              strict=True)]
    for i, (name, a) in enumerate(zip(names, axes, strict=True)):
        mean = table[name].to_numpy(float)
        err = np.vstack([mean - table[f"{name}_lower"].to_numpy(float),
                         table[f"{name}_upper"].to_numpy(float) - mean])
        a.errorbar(mean, pos, xerr=np.clip(err, 0, None), fmt="o", color=MODEL_COLOR,
                   ecolor=MODEL_COLOR, capsize=3)
        a.axvline(float(model.params_[name]), color="0.4", linestyle="--", linewidth=1)
        a.set_yticks(pos, labels if i == 0 else [""] * len(pos))
        a.set_title(name)
        a.grid(axis="x", alpha=0.3)
    if ax is None:
        axes[0].figure.suptitle(f"Segment parameters by {model.segment_col}: posterior mean "
                                f"and 90% interval (dashed: typical segment)")
    return axes


#: the order of the covariate groups in :func:`plot_coefficients`
_GROUP_ORDER = ("purchase", "dropout", "spend")
#: markers of the models of :func:`plot_coefficients`, in turn
_MARKERS = ("o", "s", "D", "^", "v", "P")


def plot_coefficients(models: Any, *, interval: float = 0.95, ax: Axes | None = None
                      ) -> Axes:
    """Forest plot of covariate coefficients: point and interval per coefficient, a zero
    line, coefficients grouped by purchase / dropout / spend (:func:`coefficient_table`).

    ``models``: one fitted model, a sequence of them or a dict name → model (several models
    are drawn side by side, offset vertically, one marker and colour each; models without
    covariates are skipped). Maximum likelihood: estimate and Wald ``interval``; Bayesian:
    posterior mean and central ``interval``. A coefficient right of zero scales the linked
    parameters up (:mod:`clvmodels.models.links`, equation (1)): more purchases (purchase),
    higher spend (spend), earlier drop-out for Pareto/NBD, BG/BB and sBG (dropout); for the
    BG/NBD and MBG/NBD a dropout coefficient scales both beta shapes a and b (CLVTools'
    link), which leaves the mean drop-out probability a/(a+b) unchanged and narrows its
    spread across customers. Returns the Axes.
    """
    if isinstance(models, dict):
        items = [(str(k), v) for k, v in models.items()]
    elif isinstance(models, list | tuple):
        items = [(_model_label(m), m) for m in models]
    else:
        items = [(_model_label(models), models)]
    tables = [(name, coefficient_table(m, interval)) for name, m in items]
    tables = [(name, t) for name, t in tables if len(t)]
    if not tables:
        raise ValueError("no model with covariates to plot")
    keys: list[tuple[str, str]] = []
    for _, t in tables:
        keys += [k for k in zip(t["group"], t["covariate"], strict=True) if k not in keys]
    rank = {g: i for i, g in enumerate(_GROUP_ORDER)}
    keys.sort(key=lambda k: rank.get(k[0], len(rank)))  # stable: model order within groups
    groups = list(dict.fromkeys(g for g, _ in keys))
    pos: dict[tuple[str, str], float] = {}
    y = 0.0
    group_spans = []
    for g in groups:
        top = y
        for k in (k for k in keys if k[0] == g):
            pos[k] = y
            y -= 1.0
        group_spans.append((g, top, y + 1.0))
        y -= 0.6  # a gap between groups
    ax = _new_ax(ax, figsize=(8.0, max(2.5, 0.42 * len(keys) + 0.5 * len(groups) + 1.2)))
    colors = [MODEL_COLOR, ACTUAL_COLOR, "#009E73", "#CC79A7", "#E69F00", "#56B4E9"]
    n = len(tables)
    for i, (name, t) in enumerate(tables):
        shift = (i - (n - 1) / 2) * (0.6 / max(n, 1)) if n > 1 else 0.0
        ys = np.array([pos[k] for k in zip(t["group"], t["covariate"], strict=True)]) - shift
        est = t["estimate"].to_numpy(float)
        err = np.vstack([est - t["lower"].to_numpy(float), t["upper"].to_numpy(float) - est])
        ax.errorbar(est, ys, xerr=np.clip(np.nan_to_num(err), 0, None), fmt=_MARKERS[i % 6],
                    color=colors[i % len(colors)], ecolor=colors[i % len(colors)], capsize=3,
                    label=name if n > 1 else None)
    ax.axvline(0.0, color="0.3", linewidth=1)
    ax.set_yticks([pos[k] for k in keys], [c for _, c in keys])
    for g, top, bottom in group_spans:
        ax.axhspan(bottom - 0.45, top + 0.45, color="0.5",
                   alpha=0.07 if groups.index(g) % 2 == 0 else 0.0, linewidth=0)
        ax.text(1.01, (top + bottom) / 2, g, transform=ax.get_yaxis_transform(),
                rotation=90, va="center", ha="left", fontsize=10, fontweight="bold")
    ax.set_ylim(y + 1.6 - 0.7, 0.7)
    ax.set_xlabel(f"coefficient (log of the multiplicative effect), {interval:.0%} interval")
    ax.grid(axis="x", alpha=0.3)
    if n > 1:
        ax.legend(loc="best", fontsize=9)
    ax.set_title("Covariate coefficients" + ("" if n > 1 else f": {tables[0][0]}"))
    return ax
