"""The transaction report: a :class:`~clvmodels.evaluation.ModelComparison` (continuous-time or
discrete-time transaction models) as one self-contained page.

Data summary, the metrics table with the best value in each column highlighted, parameter
tables with intervals, the diagnostic figures of each model, the valuation summary (total
CLV, tiers, top customers) and the run's configuration and package versions, rendered with
Jinja2 from ``clvmodels/templates/report.html.j2``. Written by
:func:`clvmodels.report.write_report`.
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clvmodels.evaluation import BASELINES, METRIC_COLUMNS, METRIC_DIRECTIONS
from clvmodels.models.protocol import is_posterior
from clvmodels.models.registry import label_of
from clvmodels.report.covariates import coefficients_figure, covariates_view
from clvmodels.report.parts import PALETTE as _PALETTE
from clvmodels.report.parts import STYLE as _STYLE
from clvmodels.report.parts import UNIT_NAMES as _UNIT_NAMES
from clvmodels.report.parts import (
    ReportFigure,
    bayes_figures,
    figure_context,
    format_metric,
    metrics_view,
    next_day,
    param_card,
    template,
    unique_stem,
    versions,
)
from clvmodels.report.parts import num as _num
from clvmodels.report.parts import pct as _pct
from clvmodels.report.parts import png as _png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from clvmodels.evaluation import ModelComparison

__all__ = ["METRIC_INFO", "build_figures", "render_html"]

#: Label, group and one-line definition of each metric column, for the table and glossary.
METRIC_INFO: dict[str, tuple[str, str, str]] = {
    "log_likelihood": ("Log-lik.", "Fit (calibration)",
                       "Maximised log-likelihood of the calibration data (MLE models)."),
    "aic": ("AIC", "Fit (calibration)", "Akaike information criterion, 2k − 2 LL."),
    "bic": ("BIC", "Fit (calibration)", "Bayesian information criterion, k ln n − 2 LL."),
    "elpd_loo": ("ELPD (LOO)", "Fit (calibration)",
                 "PSIS-LOO expected log predictive density, summed over customers "
                 "(Bayesian models; same scale as the log-likelihood)."),
    "chi_square": ("χ²", "Fit (calibration)",
                   "Chi-square of the calibration histogram of repeat purchases "
                   "(0, 1, …, 7+): Σ (actual − expected)² / expected."),
    "mae": ("MAE", "Holdout transactions",
            "Mean absolute error of each customer's holdout repeat transactions."),
    "rmse": ("RMSE", "Holdout transactions", "Root mean squared error of the same."),
    "correlation": ("Corr.", "Holdout transactions",
                    "Pearson correlation of actual and expected holdout transactions."),
    "aggregate_bias": ("Bias", "Holdout transactions",
                       "Σ expected / Σ actual − 1 of the holdout transactions, each customer's "
                       "expectation given their own calibration history (the forecast behind "
                       "MAE); negative: too low."),
    "tracking_error": ("Tracking", "Holdout transactions",
                       "The cohort's holdout transactions from the model's unconditional "
                       "forecast (each customer from acquisition, ignoring their history): "
                       "expected / actual − 1; the “holdout tracking error” in the tracking "
                       "figures' legends."),
    "spearman_clv": ("Spearman", "Value ranking",
                     "Rank correlation of predicted holdout value (expected transactions × "
                     "expected spend, undiscounted) with actual holdout revenue."),
    "gini_clv": ("Gini", "Value ranking",
                 "Normalised Gini of the ranking by predicted value (1 perfect, 0 random)."),
    "top_decile_capture": ("Top 10%", "Value ranking",
                           "Share of holdout revenue from the 10% of customers with the "
                           "highest predicted value."),
    "interval_coverage": ("Coverage", "Intervals",
                          "Share of customers whose holdout count lies in its central "
                          "predictive interval (posterior predictive for Bayesian models, "
                          "plug-in for MLE); a calibrated model covers at least the nominal "
                          "level."),
    "fit_seconds": ("Fit (s)", "Time", "Wall time of the fit (baselines: to compute)."),
}

def _model_label(model: Any) -> str:
    return label_of(model)


# --------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------


def _diagnostics_figure(comparison: ModelComparison, name: str, model: Any) -> Figure:
    """2 × 2 panel: calibration histogram, conditional expectation, cumulative and weekly
    tracking (from :mod:`clvmodels.plotting`)."""
    import matplotlib.pyplot as plt

    import clvmodels.plotting as plotting

    s = comparison.settings
    rfm = comparison.rfm
    if _is_discrete(comparison):
        return _discrete_diagnostics_figure(comparison, name, model)
    fig, axes = plt.subplots(2, 2, figsize=(13.0, 8.4), layout="constrained")
    interval = s.get("interval", 0.9)
    try:
        plotting.plot_calibration_histogram(model, rfm, s.get("max_frequency", 7),
                                            interval=interval, ax=axes[0, 0])
        plotting.plot_conditional_expectation(model, rfm, s.get("max_frequency", 7),
                                              interval=interval, ax=axes[0, 1])
        tx = comparison.transactions
        for ax, kind in ((axes[1, 0], "cumulative"), (axes[1, 1], "incremental")):
            plotting.plot_tracking(model, tx, s["calibration_end"], s["observation_end"], "W",
                                   kind=kind, customer_id_col=s["customer_id_col"],
                                   datetime_col=s["datetime_col"], interval=interval, ax=ax,
                                   covariates=rfm if getattr(model, "has_covariates", False)
                                   else None)
        fig.suptitle(f"{name}: {_model_label(model)}", fontsize=13, fontweight="bold")
    except NotImplementedError:
        plt.close(fig)  # no half-drawn figure left open
        raise
    return fig


def _diagnostics_caption(comparison: ModelComparison, name: str) -> str:
    """What the diagnostics panel shows, and the legend's holdout error defined."""
    if _is_discrete(comparison):
        return ("Left: customers by transactions in the calibration opportunities (actual vs "
                "expected). Middle: average transactions in the holdout opportunities by "
                "calibration transactions. Right: P(alive) by recency and frequency.")
    err = comparison.metrics.at[name, "tracking_error"] if name in comparison.metrics.index \
        else float("nan")
    value = f" ({format_metric('tracking_error', err)} here)" if np.isfinite(err) else ""
    return ("Top: customers by calibration repeat purchases (actual vs expected) and average "
            "holdout purchases by calibration frequency. Bottom: cumulative and weekly repeat "
            "transactions of the cohort, calibration and holdout (weekly: rates per full "
            "week; a last partial week is scaled and circled). Holdout tracking error in the "
            "legends: the cohort's expected repeat transactions over the holdout from the "
            "unconditional forecast / actual − 1, the metrics table's Tracking column"
            f"{value}; Bias there uses each customer's conditional forecast instead.")


def _is_discrete(comparison: ModelComparison) -> bool:
    """A comparison of discrete-time models (``compare_discrete``: opportunities, no dated
    transactions)."""
    return comparison.settings.get("data_kind") == "discrete"


def _discrete_diagnostics_figure(comparison: ModelComparison, name: str, model: Any
                                 ) -> Figure:
    """1 × 3 panel of a discrete-time model: calibration histogram, holdout transactions by
    calibration frequency, P(alive) by recency and frequency (FHS 2010, Table 6)."""
    import matplotlib.pyplot as plt

    import clvmodels.plotting as plotting
    from clvmodels.plotting_discrete import plot_probability_alive_table

    s, rfm = comparison.settings, comparison.rfm
    interval = s.get("interval", 0.9)
    fig, axes = plt.subplots(1, 3, figsize=(19.0, 5.2), layout="constrained")
    plotting.plot_calibration_histogram(model, rfm, s.get("max_frequency", 7),
                                        interval=interval, ax=axes[0])
    plotting.plot_conditional_expectation(model, rfm, s.get("max_frequency", 7),
                                          interval=interval, ax=axes[1])
    n = int(rfm["T"].max())
    segment = {"segment": None} if getattr(model, "segment_col", None) else {}
    if getattr(model, "has_covariates", False):  # the table differs by covariate profile
        axes[2].axis("off")
        axes[2].text(0.5, 0.5, "P(alive) by recency and frequency depends on each "
                     "customer's covariates:\nsee the model's probability_alive(data)",
                     ha="center", va="center", wrap=True, transform=axes[2].transAxes)
    else:
        plot_probability_alive_table(model, n, data=rfm, annotate=n <= 12, ax=axes[2],
                                     **segment)
    fig.suptitle(f"{name}: {_model_label(model)}", fontsize=13, fontweight="bold")
    return fig


def _gains_figure(comparison: ModelComparison) -> Figure | None:
    """Gains curves of holdout revenue for every model and baseline on one chart."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    from clvmodels.plotting import gains_table

    rfm = comparison.rfm
    if "monetary_value_holdout" not in rfm:
        return None
    actual = (rfm["frequency_holdout"] * rfm["monetary_value_holdout"]).to_numpy(float)
    if actual.sum() <= 0:
        return None
    fig, ax = plt.subplots(figsize=(8.0, 5.6), layout="constrained")
    perfect = None
    n_models = n_baselines = 0
    for name, pred in comparison.predictions.items():
        if "predicted_value" not in pred:
            continue
        table = gains_table(pred["predicted_value"].to_numpy(float), actual, n_points=501)
        perfect = table["perfect"]
        if name in BASELINES:
            style = _gains_style(n_baselines, baseline=True)
            n_baselines += 1
        else:
            style = _gains_style(n_models)
            n_models += 1
        label = (f"{name} (top 10% {table.attrs['top_decile_capture']:.1%}, "
                 f"Gini {table.attrs['normalized_gini']:.3f})")
        ax.plot(table.index, table["model"], label=label, **style)
    if perfect is None:
        plt.close(fig)
        return None
    ax.plot(perfect.index, perfect, color="0.15", linewidth=1.0, label="perfect ranking")
    ax.plot([0, 1], [0, 1], color="0.6", linewidth=1.0, linestyle="--", label="random")
    ax.axvline(0.1, color="0.8", linewidth=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("Customers ranked by predicted holdout value (highest first)")
    ax.set_ylabel("Cumulative share of actual holdout revenue")
    ax.set_title("Gains: holdout revenue captured by the top-ranked customers")
    ax.legend(frameon=False, loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    return fig


#: line patterns and markers of the models on one chart, in order (with the colours of
#: PALETTE, a line width that shrinks and a drawing order that rises, so a model whose
#: curve coincides with an earlier one's still shows: thinner, patterned, with its own
#: markers, on top of the wider line)
_MODEL_LINES: tuple[tuple[Any, str], ...] = (
    ("-", "o"), ((0, (6, 2)), "s"), ((0, (2, 1.5)), "^"), ((0, (6, 2, 1.5, 2)), "D"),
    ((0, (1, 1)), "v"), ((0, (4, 1, 1, 1, 1, 1)), "P"), ((0, (8, 3)), "X"))
#: grey patterns of the baselines (and their markers)
_BASELINE_LINES: tuple[tuple[Any, str], ...] = (
    ((0, (5, 2)), "none"), ((0, (1.5, 1.5)), "none"), ((0, (3, 1, 1, 1)), "none"),
    ((0, (8, 2, 2, 2)), "none"))


def _gains_style(i: int, *, baseline: bool = False, n_points: int = 501) -> dict[str, Any]:
    """Line style of the ``i``-th model (or baseline) on a chart of several gains curves:
    no two of the first seven models (four baselines) share colour, pattern and marker,
    and markers are staggered along the curve so coinciding curves stay visible."""
    if baseline:
        dash, _ = _BASELINE_LINES[i % len(_BASELINE_LINES)]
        return dict(color="0.5", linewidth=1.6, linestyle=dash, zorder=2)
    dash, marker = _MODEL_LINES[i % len(_MODEL_LINES)]
    step = max(1, n_points // 10)
    return dict(color=_PALETTE[i % len(_PALETTE)], linestyle=dash,
                linewidth=max(1.2, 2.8 - 0.5 * i), zorder=3 + i, marker=marker,
                markersize=5.5, markevery=(min(step - 1, (7 * i) % step + 3), step))


def _valuation_figure(comparison: ModelComparison) -> Figure | None:
    """CLV distribution and concentration (Lorenz) of the valuation model."""
    import matplotlib.pyplot as plt

    import clvmodels.plotting as plotting

    name = comparison.valuation_model
    if name is None:
        return None
    value = comparison.valuations[name]
    fig, axes = plt.subplots(1, 2, figsize=(13.0, 4.8), layout="constrained",
                             gridspec_kw={"width_ratios": [1.35, 1]})
    plotting.plot_clv_distribution(value, ax=axes[0])
    plotting.plot_lorenz(value["clv"].clip(lower=0), label="CLV", ax=axes[1])
    return fig


def _spend_figure(comparison: ModelComparison) -> Figure | None:
    import clvmodels.plotting as plotting

    spend = comparison.spend_model
    if spend is None:
        return None
    ax = plotting.plot_spend_density(spend, comparison.rfm)
    return ax.figure


def build_figures(comparison: ModelComparison) -> list[ReportFigure]:
    """Render every figure of the report (PNG bytes), in report order.

    Every figure is closed once saved, so none lingers in an interactive session.
    """
    import matplotlib.pyplot as plt

    figures: list[ReportFigure] = []
    stems: set[str] = set()
    with plt.rc_context(_STYLE):
        for name, model in comparison.models.items():
            stem = unique_stem(name, stems)
            try:
                panel = _diagnostics_figure(comparison, name, model)
            except NotImplementedError:  # e.g. a Bayesian model with covariates, for now
                panel = None
            if panel is not None:
                figures.append(ReportFigure(
                    f"diagnostics-{stem}", f"{name}: fit and holdout diagnostics",
                    "diagnostics", _png(panel), caption=_diagnostics_caption(comparison, name),
                    model=name))
            if is_posterior(model):
                for kind, title, fig in bayes_figures(model):
                    figures.append(ReportFigure(f"{kind}-{stem}", f"{name}: {title}",
                                                "diagnostics", _png(fig), model=name,
                                                collapsed=kind == "trace"))
        coefficients = coefficients_figure(comparison)
        if coefficients is not None:
            figures.append(ReportFigure(
                "coefficients", "Covariate coefficients", "covariates", _png(coefficients),
                caption="Point: estimate (Bayesian: posterior mean); bar: 95% interval. "
                        "Right of zero, the attribute raises the rate of its group "
                        "(purchases, dropout or spend) against the reference level."))
        gains = _gains_figure(comparison)
        if gains is not None:
            figures.append(ReportFigure(
                "gains", "Gains chart of holdout revenue", "ranking", _png(gains),
                caption="Customers ranked by each model's predicted holdout value; the curve "
                        "shows the share of actual holdout revenue they brought. Grey lines "
                        "are the baselines."))
        spend = _spend_figure(comparison)
        if spend is not None:
            figures.append(ReportFigure("spend", "Spend model: mean spend per customer",
                                        "parameters", _png(spend)))
        value = _valuation_figure(comparison)
        if value is not None:
            figures.append(ReportFigure(
                "clv", f"Customer lifetime value ({comparison.valuation_model})",
                "valuation", _png(value)))
    return figures


# --------------------------------------------------------------------------------------
# the page's content, formatted
# --------------------------------------------------------------------------------------


def _metrics_view(comparison: ModelComparison) -> dict[str, Any]:
    def row_kind(name: str) -> tuple[str, str]:
        model = comparison.models.get(name)
        if model is None:
            return "baseline", _baseline_label(name)
        return ("Bayesian" if is_posterior(model) else "MLE"), _model_label(model)

    info = METRIC_INFO
    if _is_discrete(comparison):  # counts of transactions at opportunities, not repeats
        info = {k: (a, b, d.replace("repeat purchases", "transactions")
                    .replace("repeat transactions", "transactions")
                    .replace("first purchase", "acquisition"))
                for k, (a, b, d) in METRIC_INFO.items()}
    return metrics_view(comparison.metrics, comparison.best, columns=METRIC_COLUMNS,
                        info=info, directions=METRIC_DIRECTIONS,
                        interval=comparison.settings.get("interval", 0.9), row_kind=row_kind)


def _words(comparison: ModelComparison) -> dict[str, str]:
    """How the page names the counts: transactions at opportunities (discrete time) or
    repeat purchases in a calibration period."""
    if _is_discrete(comparison):
        return {"count": "transactions", "calibration": "the calibration opportunities",
                "diagnostics": "For each model: the calibration histogram of transactions, "
                               "average holdout transactions by calibration transactions, and "
                               "P(alive) by recency and frequency."}
    return {"count": "repeat purchases", "calibration": "the calibration period",
            "diagnostics": "For each model: the calibration histogram, holdout purchases by "
                           "calibration frequency, and cumulative and weekly tracking of "
                           "repeat transactions (the dotted line marks the end of "
                           "calibration; the legends' holdout tracking error is the Tracking "
                           "column of the metrics table)."}


def _holdout_errors(comparison: ModelComparison) -> list[dict[str, str]]:
    """Short definitions of the holdout-error columns, shown beside the metrics table (and
    why Bias and Tracking differ for one model)."""
    m = comparison.metrics
    shown = [c for c in ("aggregate_bias", "tracking_error")
             if c in m.columns and m[c].notna().any()]
    out = [{"label": METRIC_INFO[c][0], "definition": METRIC_INFO[c][2]} for c in shown]
    if len(shown) == 2:
        out.append({"label": "Why they differ",
                    "definition": "Both compare with the same actual holdout total; Bias "
                                  "conditions each customer's forecast on their calibration "
                                  "record, Tracking does not (it is the cohort-level curve "
                                  "of the tracking figures)."})
    return out


def _baseline_label(name: str) -> str:
    return {"historic-clv": "historic CLV",
            "calibration-rate": "calibration rate"}.get(name, "baseline")


def _summary_findings(comparison: ModelComparison) -> list[str]:
    """A few plain sentences: which model wins which family of metrics."""
    best = comparison.best
    m = comparison.metrics
    out = []
    holdout = [c for c in ("mae", "rmse", "correlation", "aggregate_bias", "tracking_error")
               if c in best]
    if holdout:
        counts = pd.Series([n for c in holdout for n in best[c]]).value_counts()
        top = counts.index[0]
        out.append(f"<b>{html.escape(top)}</b> has the best value in {counts.iloc[0]} of "
                   f"{len(holdout)} holdout-transaction metrics.")
    if "correlation" in best:
        name = best["correlation"][0]
        out.append(f"Highest individual-level correlation with holdout transactions: "
                   f"<b>{html.escape(name)}</b> ({m.at[name, 'correlation']:.3f}).")
    if "aic" in best:
        name = best["aic"][0]
        out.append(f"Best calibration fit by AIC: <b>{html.escape(name)}</b>.")
    if "top_decile_capture" in best:
        name = best["top_decile_capture"][0]
        out.append(f"Best at finding the most valuable customers (top-10% capture of "
                   f"holdout revenue): <b>{html.escape(name)}</b> "
                   f"({m.at[name, 'top_decile_capture']:.1%}).")
    models = [n for n in m.index if n not in BASELINES]
    base = [n for n in m.index if n in BASELINES]
    if models and base and m["mae"].notna().any():
        best_model = m.loc[models, "mae"].min()
        best_base = m.loc[base, "mae"].min()
        if np.isfinite(best_model) and np.isfinite(best_base):
            verdict = "beat" if best_model < best_base else "do not beat"
            out.append(f"The models {verdict} the simple baselines on MAE "
                       f"({best_model:.3f} vs {best_base:.3f}).")
    return out


def _discrete_data_view(comparison: ModelComparison) -> dict[str, Any]:
    d = comparison.data_summary
    n, h = d["opportunities_calibration"], d["holdout_opportunities"]
    cards = [
        ("Customers", f"{d['customers']:,}",
         "one row per customer, counted in opportunities"),
        ("Opportunities", f"{n:,} → {h:,}", "calibration → holdout"
         + (f"; from {d['opportunities_min']:,} for the latest customers"
            if d["opportunities_min"] != n else "")),
        ("Transactions", f"{d['transactions_calibration']:,} → {d['transactions_holdout']:,}",
         "calibration → holdout"),
        ("No transaction", f"{d['share_no_transaction']:.1%}",
         f"{d['no_transaction']:,} customers without a transaction in calibration"),
        ("Active in holdout", f"{d['customers_active_in_holdout']:,}",
         f"{d['customers_active_in_holdout'] / max(d['customers'], 1):.1%} of customers"),
    ]
    hist = d["frequency_histogram"]
    labels = [str(i) for i in range(len(hist) - 1)] + [f"{len(hist) - 1}+"]
    return {"cards": [{"label": a, "value": b, "note": c, "small": len(b) > 14}
                      for a, b, c in cards],
            "histogram": [{"label": lab, "count": f"{c:,}"} for lab, c in zip(labels, hist,
                                                                              strict=True)],
            "kpis": []}


def _holdout_start(summary: dict[str, Any]) -> str:
    """First day of the holdout: the day after the calibration end (the card shows both
    ends of the holdout, inclusive)."""
    return str(summary.get("holdout_start") or next_day(summary["calibration_end"]))


def _data_view(comparison: ModelComparison) -> dict[str, Any]:
    if _is_discrete(comparison):
        return _discrete_data_view(comparison)
    d = comparison.data_summary
    unit = _UNIT_NAMES.get(d["time_unit"], d["time_unit"])
    cards = [
        ("Customers", f"{d['customers']:,}", f"first purchase {d['first_transaction']} "
                                             f"to {d['calibration_end']}"),
        ("Calibration", f"{d['first_transaction']} – {d['calibration_end']}",
         f"{d['calibration_transactions']:,} transactions"),
        ("Holdout", f"{_holdout_start(d)} – {d['holdout_end']}",
         f"{d['holdout_length']:g} {unit}, from the day after the calibration end"),
        ("Repeat transactions", f"{d['repeat_transactions_calibration']:,} → "
                                f"{d['repeat_transactions_holdout']:,}",
         "calibration → holdout"),
        ("One-time buyers", f"{d['share_one_time_buyers']:.1%}",
         f"{d['one_time_buyers']:,} customers with no repeat purchase in calibration"),
        ("Active in holdout", f"{d['customers_active_in_holdout']:,}",
         f"{d['customers_active_in_holdout'] / max(d['customers'], 1):.1%} of customers"),
    ]
    if "revenue_calibration" in d:
        cards.append(("Revenue", f"{d['revenue_calibration']:,.0f} → "
                                 f"{d['revenue_holdout']:,.0f}", "calibration → holdout"))
        cards.append(("Mean repeat spend", f"{d['mean_repeat_spend']:,.2f}",
                      "per repeat transaction, calibration"))
    hist = d["frequency_histogram"]
    labels = [str(i) for i in range(len(hist) - 1)] + [f"{len(hist) - 1}+"]
    kpis = []
    if comparison.kpis is not None:
        keep = ["orders", "revenue", "average_order_value", "orders_per_customer",
                "purchase_frequency_per_year", "repeat_rate", "mean_monthly_retention"]
        for key in keep:
            if key in comparison.kpis.index:
                row = comparison.kpis.loc[key]
                value = float(row["value"])
                text = (f"{value:.1%}" if key in ("repeat_rate", "mean_monthly_retention")
                        else f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}")
                definition = str(row["definition"])
                if key == "purchase_frequency_per_year" and "customer_years" in \
                        comparison.kpis.index:
                    # the exposure rule, with its number, beside the figure
                    years = float(comparison.kpis.at["customer_years", "value"])
                    definition += f"; {years:,.1f} customer-years observed here"
                kpis.append({"name": key.replace("_", " "), "value": text,
                             "definition": definition})
    return {"cards": [{"label": a, "value": b, "note": c, "small": len(b) > 14}
                      for a, b, c in cards],
            "histogram": [{"label": lab, "count": f"{c:,}"} for lab, c in zip(labels, hist,
                                                                              strict=True)],
            "kpis": kpis}


def _params_view(comparison: ModelComparison) -> list[dict[str, Any]]:
    out = [param_card(name, model) for name, model in comparison.models.items()]
    if comparison.spend_model is not None:
        note = ""
        if "monetary_value" in comparison.rfm:
            corr = _frequency_spend_correlation(comparison.rfm)
            if corr is not None:
                note = (f"Correlation between repeat frequency and mean spend "
                        f"(the Gamma-Gamma model assumes none): {corr:.3f}.")
        out.append(param_card("spend model", comparison.spend_model, note))
    return out


def _frequency_spend_correlation(rfm: pd.DataFrame) -> float | None:
    rep = rfm.loc[rfm["frequency"] > 0]
    if len(rep) < 3:
        return None
    return float(np.corrcoef(rep["frequency"], rep["monetary_value"])[0, 1])


def _valuation_view(comparison: ModelComparison, top: int = 10) -> dict[str, Any] | None:
    from clvmodels.kpis import value_tiers

    name = comparison.valuation_model
    if name is None:
        return None
    s = comparison.settings
    totals = []
    for model_name, value in comparison.valuations.items():
        a = value.attrs
        interval = ""
        if "total_clv_lower" in a:
            interval = f"{a['total_clv_lower']:,.0f} – {a['total_clv_upper']:,.0f}"
        totals.append({"name": model_name, "total": _num(value["clv"].sum(), 0),
                       "mean": _num(value["clv"].mean(), 2), "interval": interval or "—",
                       "purchases": _num(value["expected_purchases"].sum(), 0),
                       "selected": model_name == name})
    value = comparison.valuations[name]
    rfm = comparison.rfm
    labels, tiers = value_tiers(value["clv"].rename("clv"))
    revenue = None
    if "monetary_value_holdout" in rfm:
        revenue = rfm["frequency_holdout"] * rfm["monetary_value_holdout"]
    tier_rows = []
    for tier in tiers.index:
        row = tiers.loc[tier]
        share_rev = "—"
        if revenue is not None and revenue.sum() > 0:
            share_rev = _pct(revenue[labels == tier].sum() / revenue.sum())
        tier_rows.append({"tier": str(tier), "customers": f"{int(row['customers']):,}",
                          "share_customers": _pct(row["share_of_customers"], 0),
                          "total": _num(row["total_value"], 0),
                          "share_value": _pct(row["share_of_value"]),
                          "mean": _num(row["mean_value"], 2),
                          "range": f"{_num(row['min_value'], 2)} – {_num(row['max_value'], 2)}",
                          "holdout_revenue": share_rev})
    best = value.nlargest(top, "clv")
    has_interval = "clv_lower" in value.columns
    top_rows = []
    for cid in best.index:
        v = value.loc[cid]
        r = rfm.loc[cid]
        row = {"id": str(cid), "x": f"{int(r['frequency'])}", "recency": _num(r["recency"], 1),
               "T": _num(r["T"], 1), "alive": _pct(v["probability_alive"], 0),
               "purchases": _num(v["expected_purchases"], 2),
               "spend": _num(v["expected_spend"], 2), "clv": _num(v["clv"], 2),
               "interval": (f"{_num(v['clv_lower'], 0)} – {_num(v['clv_upper'], 0)}"
                            if has_interval else ""),
               "holdout": f"{int(r['frequency_holdout'])}",
               "holdout_revenue": _num(revenue.loc[cid], 2) if revenue is not None else "—"}
        top_rows.append(row)
    unit = _UNIT_NAMES.get(s.get("time_unit", ""), s.get("time_unit", ""))
    return {
        "model": name, "horizon": s.get("clv_horizon"),
        "horizon_units": f"{s.get('clv_horizon_units', float('nan')):,.4g} {unit}",
        "discount_rate": _pct(s.get("discount_rate"), 1), "margin": _pct(s.get("margin"), 0),
        "as_of": s.get("calibration_end"), "totals": totals, "tiers": tier_rows,
        "top": top_rows, "has_interval": has_interval,
        "any_interval": any(t["interval"] != "—" for t in totals),
        "total": _num(value["clv"].sum(), 0), "mean": _num(value["clv"].mean(), 2),
        "customers": f"{len(value):,}",
    }


def _segments_view(comparison: ModelComparison) -> dict[str, Any] | None:
    seg = comparison.segment_metrics
    if seg is None or seg.empty:
        return None
    cols = [c for c in ("customers", "actual", "predicted", "mae", "correlation",
                        "aggregate_bias", "spearman_clv") if c in seg.columns]
    rows = []
    for (model, segment), row in seg.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if c == "customers":
                cells.append(f"{int(v):,}")
            elif c in ("actual", "predicted"):
                cells.append(_num(v, 0))
            else:
                cells.append(format_metric(c, v))
        rows.append({"model": str(model), "segment": str(segment), "cells": cells})
    labels = {"customers": "customers", "actual": "actual", "predicted": "expected",
              "mae": "MAE", "correlation": "Corr.", "aggregate_bias": "Bias",
              "spearman_clv": "Spearman (value)"}
    return {"column": comparison.settings.get("segment_col"),
            "columns": [labels[c] for c in cols], "rows": rows}


def _config_view(comparison: ModelComparison) -> dict[str, Any]:
    s = comparison.settings
    if _is_discrete(comparison):
        discrete = {
            "data": "discrete-time summary (opportunities)",
            "holdout length": f"{s.get('holdout_length', float('nan')):g} opportunities",
            "models": ", ".join(f"{n} ({c})" for n, c in s.get("model_classes", {}).items()),
            "baselines": ", ".join(s.get("baselines", [])) or "none",
            "segment column": s.get("segment_col") or "none",
            "Bayesian sampler settings": ", ".join(f"{k}={v}" for k, v in
                                                   s.get("bayes_kwargs", {}).items()),
            "penalizer (MLE)": s.get("penalizer"),
            "predictive interval": _pct(s.get("interval"), 0),
            "calibration histogram bins": f"0 … {s.get('max_frequency', 7) - 1}, "
                                          f"{s.get('max_frequency', 7)}+",
        }
        return {"settings": [{"name": k, "value": str(v)} for k, v in discrete.items()],
                **versions()}
    shown = {
        "calibration end": s.get("calibration_end"),
        "observation (holdout) end": s.get("observation_end"),
        "time unit": s.get("time_unit"),
        "holdout length": f"{s.get('holdout_length', float('nan')):g} "
                          f"{_UNIT_NAMES.get(s.get('time_unit'), s.get('time_unit'))}",
        "models": ", ".join(f"{n} ({c})" for n, c in s.get("model_classes", {}).items()),
        "baselines": ", ".join(s.get("baselines", [])) or "none",
        "spend model": s.get("spend_model") or "none",
        "segment column": s.get("segment_col") or "none",
        "Bayesian sampler settings": ", ".join(f"{k}={v}" for k, v in
                                               s.get("bayes_kwargs", {}).items()),
        "penalizer (MLE)": s.get("penalizer"),
        "predictive interval": _pct(s.get("interval"), 0),
        "calibration histogram bins": f"0 … {s.get('max_frequency', 7) - 1}, "
                                      f"{s.get('max_frequency', 7)}+",
        "holdout value": s.get("value_definition"),
        "valuation": (f"{s.get('clv_horizon')} ahead from {s.get('calibration_end')}, "
                      f"annual discount rate {_pct(s.get('discount_rate'), 1)}, "
                      f"margin {_pct(s.get('margin'), 0)}, monthly periods"),
        "columns": (f"customer id {s.get('customer_id_col')!r}, date "
                    f"{s.get('datetime_col')!r}, amount {s.get('monetary_value_col')!r}"),
    }
    return {"settings": [{"name": k, "value": str(v)} for k, v in shown.items()],
            **versions()}


def _subtitle(comparison: ModelComparison) -> str:
    s, d = comparison.settings, comparison.data_summary
    if _is_discrete(comparison):
        return (f"{d['opportunities_calibration']:,} calibration and "
                f"{d['holdout_opportunities']:,} holdout opportunities · "
                f"{d['customers']:,} customers")
    return (f"Calibration {d['first_transaction']} – {s['calibration_end']}, "
            f"holdout to {s['observation_end']} · {d['customers']:,} customers · "
            f"time unit {s['time_unit']}")


def render_html(comparison: ModelComparison, figures: Sequence[ReportFigure] | None = None, *,
                title: str | None = None, backtest: dict[str, Any] | None = None) -> str:
    """The report page as a string (figures rendered here unless given); ``backtest``: the
    formatted backtest section (:func:`clvmodels.report.backtest.backtest_view`), shown
    after the value ranking."""
    from markupsafe import Markup

    if figures is None:
        figures = build_figures(comparison)
    s = comparison.settings
    by_section = figure_context(figures)
    covariates = covariates_view(comparison)
    sections = [("summary", "Summary"), ("data", "Data"), ("metrics", "Model comparison"),
                ("parameters", "Parameters"),
                *([("covariates", "Covariates")] if covariates is not None else []),
                ("diagnostics", "Diagnostics"), ("ranking", "Value ranking"),
                *([("backtest", "Backtest")] if backtest is not None else [])]
    segments = _segments_view(comparison)
    if segments is not None:
        sections.append(("segments", "Segments"))
    valuation = _valuation_view(comparison)
    if valuation is not None:
        sections.append(("valuation", "Valuation"))
    if comparison.fit_warnings:
        sections.append(("warnings", "Warnings"))
    sections.append(("configuration", "Configuration"))
    config = _config_view(comparison)
    context = {
        "title": title or "CLV model comparison",
        "subtitle": _subtitle(comparison),
        "generated": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "sections": [{"id": a, "title": b} for a, b in sections],
        "findings": [Markup(f) for f in _summary_findings(comparison)],
        "data": _data_view(comparison),
        "metrics": _metrics_view(comparison),
        "holdout_errors": _holdout_errors(comparison),
        "words": _words(comparison),
        "interval": _pct(s.get("interval", 0.9), 0),
        "params": _params_view(comparison),
        "covariates": covariates,
        "figures": by_section,
        "segments": segments,
        "valuation": valuation,
        "warnings": [{"model": m, "message": w} for m, w in comparison.fit_warnings],
        "config": config,
        "backtest": backtest,
        "version": next((v["value"] for v in config["versions"] if v["name"] == "clvmodels"),
                        ""),
    }
    return template("report.html.j2").render(**context)
