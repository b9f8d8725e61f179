"""The contractual report: a :class:`~clvmodels.evaluation.ContractualComparison` as one
self-contained page in the style of the transaction report.

Data cards (customers, cohorts, churn before and in the holdout), the metrics table with the
best value in each column highlighted, parameter cards (the baseline's churn rate among them)
with what the first model implies for a new cohort, the covariate coefficients (table,
likelihood-ratio tests and forest plot, :mod:`clvmodels.report.covariates`) of models with
covariates, the retention figures — the active
customers through the holdout's renewal decisions, and each model's survival curve against
the observed one with the projection beyond the calibration (Fader & Hardie 2007, Figure 3)
— segments, warnings and the configuration. Rendered with Jinja2 from
``clvmodels/templates/report_contractual.html.j2``; written by
:func:`clvmodels.report.write_report`.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from clvmodels.diagnostics_discrete import cohort_expected_lifetime
from clvmodels.evaluation import (
    CONTRACTUAL_METRIC_COLUMNS,
    CONTRACTUAL_METRIC_DIRECTIONS,
)
from clvmodels.models.protocol import is_posterior
from clvmodels.models.registry import label_of
from clvmodels.report.covariates import coefficients_figure, covariates_view
from clvmodels.report.parts import (
    STYLE,
    UNIT_NAMES,
    ReportFigure,
    bayes_figures,
    figure_context,
    format_metric,
    metrics_view,
    next_day,
    num,
    param_card,
    pct,
    png,
    template,
    unique_stem,
    versions,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from clvmodels.evaluation import ContractualComparison

__all__ = ["METRIC_INFO", "build_figures", "render_html"]

#: Label, group and one-line definition of each metric column, for the table and glossary.
METRIC_INFO: dict[str, tuple[str, str, str]] = {
    "log_likelihood": ("Log-lik.", "Fit (calibration)",
                       "Maximised log-likelihood of the calibration summary (MLE models and "
                       "the baseline)."),
    "aic": ("AIC", "Fit (calibration)", "Akaike information criterion, 2k − 2 LL."),
    "bic": ("BIC", "Fit (calibration)", "Bayesian information criterion, k ln n − 2 LL."),
    "elpd_loo": ("ELPD (LOO)", "Fit (calibration)",
                 "PSIS-LOO expected log predictive density, summed over customers "
                 "(Bayesian models; same scale as the log-likelihood)."),
    "holdout_log_likelihood": ("Holdout LL", "Holdout renewals",
                               "Log probability the model gave each active customer's "
                               "holdout renewals (renewed r times then left, or renewed at "
                               "every decision), summed."),
    "mae": ("MAE", "Holdout renewals",
            "Mean absolute error of each active customer's renewals in the holdout."),
    "rmse": ("RMSE", "Holdout renewals", "Root mean squared error of the same."),
    "correlation": ("Corr.", "Holdout renewals",
                    "Pearson correlation of actual and expected holdout renewals."),
    "aggregate_bias": ("Bias", "Holdout renewals",
                       "Σ expected / Σ actual renewals − 1 (negative: too few)."),
    "tracking_error": ("Tracking", "Retention",
                       "Customers expected to be paying after the holdout's last renewal "
                       "decision / those who were − 1."),
    "retention_mae": ("Retention MAE", "Retention",
                      "Mean absolute error of the share of active customers still paying "
                      "after each holdout renewal decision (percentage points)."),
    "fit_seconds": ("Fit (s)", "Time", "Wall time of the fit (baseline: to compute)."),
}

_BASELINE_LABELS = {"constant-churn": "constant churn rate"}


def _unit(comparison: ContractualComparison) -> str:
    unit = comparison.settings.get("period")
    return UNIT_NAMES.get(unit, unit or "periods")


# --------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------


def _holdout_figure(comparison: ContractualComparison) -> Figure:
    import matplotlib.pyplot as plt

    from clvmodels.plotting_discrete import plot_holdout_retention

    fig, ax = plt.subplots(figsize=(8.5, 5.0), layout="constrained")
    tables = {n: t["holdout_retention"] for n, t in comparison.tables.items()}
    plot_holdout_retention(tables, baselines=list(comparison.baselines),
                           unit=comparison.settings.get("period"), ax=ax)
    return fig


def _survival_figure(comparison: ContractualComparison) -> Figure:
    """One panel per model and baseline: observed survival through the observation end
    against the model's S(t), projected beyond the calibration."""
    import matplotlib.pyplot as plt

    from clvmodels.plotting_discrete import plot_retention_curve

    items = [*comparison.models.items(), *comparison.baselines.items()]
    ncols = min(len(items), 2)
    nrows = math.ceil(len(items) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.4 * ncols, 4.4 * nrows),
                             layout="constrained", squeeze=False)
    for (name, model), ax in zip(items, axes.ravel(), strict=False):
        plot_retention_curve(model, comparison.final,
                             calibrated_through=comparison.settings["calibrated_through"],
                             ax=ax, covariates=_cohort(comparison, model))
        ax.set_title(f"{name}: retention observed vs model")
    for extra in axes.ravel()[len(items):]:
        fig.delaxes(extra)
    return fig


def _cohort(comparison: ContractualComparison, model: Any) -> Any:
    """The customers whose attributes a covariate model's curves are drawn for (the
    calibration summary: a cohort like them); None for a model without covariates."""
    return comparison.calibration if getattr(model, "has_covariates", False) else None


def _projection_figure(comparison: ContractualComparison, model: Any, horizon: int) -> Figure:
    import matplotlib.pyplot as plt

    from clvmodels.plotting_discrete import plot_survival_projection

    fig, ax = plt.subplots(figsize=(8.5, 4.8), layout="constrained")
    plot_survival_projection(model, horizon, ax=ax, covariates=_cohort(comparison, model))
    return fig


def build_figures(comparison: ContractualComparison) -> list[ReportFigure]:
    """Render every figure of the contractual report (PNG bytes), in report order."""
    import matplotlib.pyplot as plt

    figures: list[ReportFigure] = []
    stems: set[str] = set()
    unit = _unit(comparison)
    with plt.rc_context(STYLE):
        figures.append(ReportFigure(
            "holdout-retention", "Active customers through the holdout", "retention",
            png(_holdout_figure(comparison)),
            caption="Customers active at the calibration end still paying after each "
                    "renewal decision of the holdout, actual (black) and expected by each "
                    "model; the baseline in grey. The legend gives the error at the end."))
        figures.append(ReportFigure(
            "survival", "Retention curves: observed vs model", "retention",
            png(_survival_figure(comparison)),
            caption=f"Share of the calibration customers still active after t renewals "
                    f"({unit}), Kaplan-Meier through the observation end, against each "
                    f"model's survival S(t) fitted on the calibration period; the shaded "
                    f"part is the projection beyond the renewals seen at the calibration end."))
        first = next(iter(comparison.models.items()), None)
        if first is not None:
            horizon = max(24, 2 * int(comparison.settings.get("calibrated_through", 12)))
            figures.append(ReportFigure(
                "projection", f"What {first[0]} implies for a new cohort", "parameters",
                png(_projection_figure(comparison, first[1], horizon)),
                caption="Survival of a new customer and the retention rate among those "
                        "still active, which rises with tenure when customers differ"
                        + (" (with covariates: a new cohort with the calibration customers' "
                           "attributes)" if _cohort(comparison, first[1]) is not None
                           else "") + "."))
        coefficients = coefficients_figure(comparison)
        if coefficients is not None:
            figures.append(ReportFigure(
                "coefficients", "Covariate coefficients", "covariates", png(coefficients),
                caption="Point: estimate (Bayesian: posterior mean); bar: 95% interval. "
                        "Right of zero, the attribute raises the churn probability against "
                        "the reference level."))
        for name, model in comparison.models.items():
            if is_posterior(model):
                stem = unique_stem(name, stems)
                for kind, title, fig in bayes_figures(model):
                    figures.append(ReportFigure(f"{kind}-{stem}", f"{name}: {title}",
                                                "retention", png(fig), model=name,
                                                collapsed=kind == "trace"))
    return figures


# --------------------------------------------------------------------------------------
# the page's content, formatted
# --------------------------------------------------------------------------------------


def _metrics_view(comparison: ContractualComparison) -> dict[str, Any]:
    def row_kind(name: str) -> tuple[str, str]:
        model = comparison.models.get(name)
        if model is None:
            return "baseline", _BASELINE_LABELS.get(name, "baseline")
        return ("Bayesian" if is_posterior(model) else "MLE"), label_of(model)

    return metrics_view(comparison.metrics, comparison.best,
                        columns=CONTRACTUAL_METRIC_COLUMNS, info=METRIC_INFO,
                        directions=CONTRACTUAL_METRIC_DIRECTIONS, interval=0.9,
                        row_kind=row_kind)


def _findings(comparison: ContractualComparison) -> list[str]:
    best, m = comparison.best, comparison.metrics
    d = comparison.data_summary
    out = []
    if "holdout_log_likelihood" in best:
        name = best["holdout_log_likelihood"][0]
        out.append(f"Most probable holdout renewals: <b>{html.escape(name)}</b> "
                   f"(log-likelihood {m.at[name, 'holdout_log_likelihood']:,.1f}).")
    active = d["active_at_calibration_end"]
    paying = d["paying_at_end"]
    parts = []
    for name, pred in comparison.predictions.items():
        expected = float(pred["expected_paying_at_end"].sum())
        parts.append(f"{html.escape(name)} {expected:,.0f}")
    out.append(f"Of the {active:,} customers active at the calibration end, {paying:,} were "
               f"still paying after the holdout's last renewal decision; expected: "
               f"{', '.join(parts)}.")
    models = [n for n in m.index if n in comparison.models]
    base = [n for n in m.index if n in comparison.baselines]
    if models and base and m["mae"].notna().any():
        best_model, best_base = m.loc[models, "mae"].min(), m.loc[base, "mae"].min()
        if np.isfinite(best_model) and np.isfinite(best_base):
            verdict = "beat" if best_model < best_base else "do not beat"
            out.append(f"The models {verdict} the constant churn rate on the renewals of "
                       f"each customer (MAE {best_model:.3f} vs {best_base:.3f}).")
    cal, hold = d["churn_rate_calibration"], d["churn_rate_holdout"]
    if np.isfinite(cal) and np.isfinite(hold):
        out.append(f"Pooled churn per renewal decision: {cal:.1%} in the calibration data, "
                   f"{hold:.1%} among the active customers in the holdout"
                   + (" — those who stay churn less (heterogeneity)." if hold < cal else "."))
    if "aic" in best:
        out.append(f"Best calibration fit by AIC: <b>{html.escape(best['aic'][0])}</b>.")
    return out


def _data_view(comparison: ContractualComparison) -> dict[str, Any]:
    d = comparison.data_summary
    unit = _unit(comparison)
    later = d["customers_acquired_later"]
    cards = [
        ("Customers", f"{d['customers']:,}",
         f"acquired by {d['calibration_end']}" + (f"; {later:,} later ones are not scored"
                                                  if later else "")),
        ("Cohorts", f"{d['first_cohort']} – {d['last_cohort']}",
         f"{d['cohorts']:,} cohorts, renewing every {unit[:-1] if unit.endswith('s') else unit}"),
        ("Calibration", f"to {d['calibration_end']}",
         f"{d['renewal_decisions_calibration']:,} renewal decisions seen"),
        ("Active at calibration end", f"{d['active_at_calibration_end']:,}",
         f"{d['active_at_calibration_end'] / max(d['customers'], 1):.1%} of customers; "
         f"{d['churned_by_calibration_end']:,} had churned"),
        ("Holdout", f"{next_day(d['calibration_end'])} – {d['observation_end']}",
         f"up to {d['holdout_decisions']} renewal decisions per customer"),
        ("Holdout renewals", f"{d['renewals_holdout']:,} of {d['holdout_decisions_at_risk']:,}",
         f"{d['churned_in_holdout']:,} churned, {d['paying_at_end']:,} paying at the end"),
        ("Churn per renewal", f"{d['churn_rate_calibration']:.1%} → "
                              f"{d['churn_rate_holdout']:.1%}", "calibration → holdout"),
    ]
    return {"cards": [{"label": a, "value": b, "note": c, "small": len(b) > 14}
                      for a, b, c in cards]}


def _retention_table(comparison: ContractualComparison) -> dict[str, Any]:
    names = list(comparison.tables)
    first = comparison.tables[names[0]]["holdout_retention"]
    rows = []
    for j in first.index[1:]:
        cells = [f"{int(first.at[j, 'at_risk']):,}", f"{first.at[j, 'actual']:,.0f}",
                 pct(first.at[j, "actual_share"])]
        for name in names:
            table = comparison.tables[name]["holdout_retention"]
            cells.append(f"{table.at[j, 'expected']:,.1f} ({pct(table.at[j, 'expected_share'])})")
        rows.append({"decision": str(j), "cells": cells})
    return {"columns": ["at risk", "still paying", "share", *names], "rows": rows}


def _params_view(comparison: ContractualComparison) -> list[dict[str, Any]]:
    out = [param_card(name, model) for name, model in comparison.models.items()]
    for name, model in comparison.baselines.items():
        out.append(param_card(name, model, label=_BASELINE_LABELS.get(name, name),
                              note="The pooled churn rate of the calibration summary: churns "
                                   "/ renewal decisions at risk (the geometric model)."))
    for card in out:
        model = comparison.models.get(card["name"]) or comparison.baselines[card["name"]]
        life = cohort_expected_lifetime(model, covariates=_cohort(comparison, model))
        card["stats"].append({"name": "expected lifetime",
                              "value": f"{life:,.1f}" if np.isfinite(life) else "unbounded"})
    return out


def _segments_view(comparison: ContractualComparison) -> dict[str, Any] | None:
    seg = comparison.segment_metrics
    if seg is None or seg.empty:
        return None
    cols = ["customers", "actual", "predicted", "mae", "aggregate_bias", "tracking_error",
            "holdout_log_likelihood"]
    labels = ["active customers", "renewals", "expected", "MAE", "Bias", "Tracking",
              "Holdout LL"]
    rows = []
    for (model, segment), row in seg.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if c == "customers":
                cells.append(f"{int(v):,}")
            elif c in ("actual", "predicted"):
                cells.append(num(v, 1))
            else:
                cells.append(format_metric(c, v))
        rows.append({"model": str(model), "segment": str(segment), "cells": cells})
    return {"column": comparison.settings.get("segment_col"), "columns": labels, "rows": rows}


def _config_view(comparison: ContractualComparison) -> dict[str, Any]:
    s = comparison.settings
    shown = {
        "calibration end": s.get("calibration_end"),
        "observation (holdout) end": s.get("observation_end"),
        "period": f"{s.get('period')} ({_unit(comparison)})",
        "models": ", ".join(f"{n} ({c})" for n, c in s.get("model_classes", {}).items()),
        "baselines": ", ".join(s.get("baselines", [])) or "none",
        "segment column": s.get("segment_col") or "none",
        "Bayesian sampler settings": ", ".join(f"{k}={v}" for k, v in
                                               s.get("bayes_kwargs", {}).items()),
        "penalizer (MLE)": s.get("penalizer"),
        "calibrated through": f"renewal decision {s.get('calibrated_through')}",
        "columns": (f"customer id {s.get('customer_id_col')!r}, start "
                    f"{s.get('start_col')!r}, end {s.get('end_col')!r}"),
        "summary engine": s.get("engine"),
    }
    return {"settings": [{"name": k, "value": str(v)} for k, v in shown.items()],
            **versions()}


def render_html(comparison: ContractualComparison,
                figures: Sequence[ReportFigure] | None = None, *,
                title: str | None = None) -> str:
    """The contractual report page as a string (figures rendered here unless given)."""
    from markupsafe import Markup

    if figures is None:
        figures = build_figures(comparison)
    s, d = comparison.settings, comparison.data_summary
    covariates = covariates_view(comparison)
    sections = [("summary", "Summary"), ("data", "Data"), ("metrics", "Model comparison"),
                ("parameters", "Parameters"),
                *([("covariates", "Covariates")] if covariates is not None else []),
                ("retention", "Retention")]
    segments = _segments_view(comparison)
    if segments is not None:
        sections.append(("segments", "Segments"))
    if comparison.fit_warnings:
        sections.append(("warnings", "Warnings"))
    sections.append(("configuration", "Configuration"))
    config = _config_view(comparison)
    context = {
        "title": title or "Subscription model comparison",
        "subtitle": (f"Subscriptions to {s['calibration_end']}, holdout to "
                     f"{s['observation_end']} · {d['customers']:,} customers · "
                     f"period {s['period']}"),
        "generated": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "sections": [{"id": a, "title": b} for a, b in sections],
        "findings": [Markup(f) for f in _findings(comparison)],
        "data": _data_view(comparison),
        "metrics": _metrics_view(comparison),
        "params": _params_view(comparison),
        "covariates": covariates,
        "retention": _retention_table(comparison),
        "figures": figure_context(figures),
        "segments": segments,
        "warnings": [{"model": m, "message": w} for m, w in comparison.fit_warnings],
        "config": config,
        "version": next((v["value"] for v in config["versions"] if v["name"] == "clvmodels"),
                        ""),
    }
    return template("report_contractual.html.j2").render(**context)
