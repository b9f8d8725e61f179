"""The report's forecast-tracking section: a previous run's forecast against what happened.

:mod:`clvmodels.runs.tracking` computes the tables (predicted vs actual purchases and
revenue, per customer and in total, over the period since the previous run); this module
draws them (:func:`tracking_figure`) and adds a section to a written report page
(:func:`add_tracking_section`, template ``report_tracking.html.j2``), placed before the
page's Configuration section and listed in its contents.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvmodels.report.parts import PALETTE, STYLE, ReportFigure, num, pct, png, template

__all__ = ["add_tracking_section", "tracking_figure"]

_ANCHOR = '<section id="configuration">'
_NAV = '<li><a href="#configuration">'


def tracking_figure(per_customer: pd.DataFrame, totals: pd.DataFrame,
                    about: dict[str, Any]) -> ReportFigure:
    """Left and middle: total purchases and revenue, predicted vs actual, per model. Right:
    customers in deciles of predicted purchases, mean predicted vs mean actual (a calibrated
    forecast lies on the diagonal)."""
    import matplotlib.pyplot as plt

    with plt.rc_context(STYLE):
        fig, (left, middle, right) = plt.subplots(1, 3, figsize=(13.0, 4.0),
                                                  layout="constrained")
        names = list(totals.index)
        x = np.arange(len(names))
        width = 0.38
        for ax, what, title in ((left, "purchases", "Total purchases"),
                                (middle, "revenue", "Total revenue")):
            pred, act = totals[f"predicted_{what}"], totals[f"actual_{what}"]
            ax.bar(x - width / 2, pred.fillna(0.0), width, label="predicted",
                   color=PALETTE[1])
            ax.bar(x + width / 2, act, width, label="actual", color=PALETTE[0])
            ax.set_xticks(x, names)
            ax.set_ylabel(f"{what} in the period")
            ax.set_title(f"{title} since the previous run")
            if pred.isna().all():
                ax.text(0.5, 0.5, "no spend model: no revenue forecast",
                        transform=ax.transAxes, ha="center", color="0.4")
            high = np.nanmax([pred.max(), act.max(), 0.0])
            ax.set_ylim(0, 1.25 * high if high > 0 else 1.0)  # room for the legend
            ax.legend(frameon=False, loc="upper center", ncols=2)
        top = 0.0
        for i, (name, rows) in enumerate(per_customer.groupby("model", sort=False)):
            pred = rows["predicted_purchases"].to_numpy(dtype=float)
            act = rows["actual_purchases"].to_numpy(dtype=float)
            order = np.argsort(pred, kind="stable")
            bins = np.array_split(order, min(10, len(order)))
            mp = [pred[b].mean() for b in bins if len(b)]
            ma = [act[b].mean() for b in bins if len(b)]
            right.plot(mp, ma, "o-", color=PALETTE[i % len(PALETTE)], label=str(name))
            top = max(top, *mp, *ma)
        right.plot([0, top], [0, top], color="0.6", lw=1, ls="--", label="perfect")
        right.set_xlabel("mean predicted purchases (decile of customers)")
        right.set_ylabel("mean actual purchases")
        right.set_title("Per customer, by decile of the forecast")
        right.legend(frameon=False)
    caption = (f"Forecast of run {about['previous_run']} (as of "
               f"{about['previous_observation_end']}) over the "
               f"{about['period_length']:.1f} {about['time_unit']} to "
               f"{about['observation_end']}")
    return ReportFigure(name="tracking", title="Previous forecast vs what happened",
                        section="tracking", png=png(fig), caption=caption)


def _money(value: Any) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:,.0f}"


def tracking_rows(totals: pd.DataFrame) -> list[dict[str, str]]:
    """The totals table formatted for the template."""
    rows = []
    for name, r in totals.iterrows():
        rows.append({"model": str(name), "customers": f"{int(r['customers']):,}",
                     "predicted_purchases": num(r["predicted_purchases"], 1),
                     "actual_purchases": num(r["actual_purchases"], 0),
                     "purchases_error": pct(r["purchases_error"], 1, signed=True),
                     "mae_purchases": num(r["mae_purchases"], 3),
                     "predicted_revenue": _money(r["predicted_revenue"]),
                     "actual_revenue": _money(r["actual_revenue"]),
                     "revenue_error": pct(r["revenue_error"], 1, signed=True)})
    return rows


def add_tracking_section(html: str, totals: pd.DataFrame, figure: ReportFigure,
                         about: dict[str, Any]) -> str:
    """``html`` (a report page) with the tracking section before its Configuration section
    and a line for it in the contents (appended before ``</main>`` if the page has none)."""
    period = f"from {about['previous_observation_end']} (exclusive)"
    section = template("report_tracking.html.j2").render(
        rows=tracking_rows(totals), about={**about, "period": period},
        figure={"src": figure.data_uri, "title": figure.title, "caption": figure.caption})
    if _ANCHOR in html:
        html = html.replace(_ANCHOR, section + _ANCHOR, 1)
    else:
        html = html.replace("</main>", section + "</main>", 1)
    if _NAV in html:
        html = html.replace(_NAV, '<li><a href="#tracking">Forecast tracking</a></li>\n    '
                            + _NAV, 1)
    return html
