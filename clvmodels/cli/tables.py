"""The tables the commands print, readable in an 80-column terminal.

Every column folds its cells instead of cutting them to ``b…``; headers are words that wrap
("expected purchases"); tables too wide for the console (the metrics of a comparison) are
drawn transposed — one row per metric, one column per model — when the wide layout does not
fit (:class:`Adaptive`, decided at print time from the console's width).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

__all__ = [
    "Adaptive",
    "contractual_overview",
    "discrete_overview",
    "fmt",
    "forecast_overview",
    "metrics_table",
    "new_table",
    "params_table",
    "rfm_overview",
    "tiers_table",
]


def new_table(title: str, columns: Sequence[str], *, numeric: Iterable[str] = (),
              show_header: bool = True, caption: str | None = None) -> Table:
    """A left-titled table whose cells fold (never ``…``); ``numeric`` columns right-aligned."""
    right = set(numeric)
    table = Table(title=title, title_justify="left", show_header=show_header,
                  caption=caption, caption_justify="left")
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left", overflow="fold")
    return table


class Adaptive:
    """The ``wide`` renderable when it fits the console's width, else ``narrow``."""

    def __init__(self, wide: Any, narrow: Any) -> None:
        self.wide = wide
        self.narrow = narrow

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        needed = Measurement.get(console, options.update_width(1_000_000), self.wide).maximum
        yield self.wide if needed <= options.max_width else self.narrow


def table_of(title: str, index_header: str, rows: list[tuple[str, dict[str, str]]],
             columns: dict[str, str], *, narrow: Sequence[str] | None = None,
             caption: str | None = None) -> Table | Adaptive:
    """A table of labelled rows of formatted cells (right-aligned), given as
    ``(label, {column: text})``; ``columns`` maps each column to its header.

    With ``narrow`` (a subset of the columns), the table is drawn with only those columns
    when all of them do not fit the console: an 80-column terminal gets fewer columns, each
    shown in full, rather than every column cut or folded.
    """

    def build(cols: Sequence[str]) -> Table:
        headers = [columns[c] for c in cols]
        table = new_table(title, [index_header, *headers], numeric=headers, caption=caption)
        for label, cells in rows:
            table.add_row(label, *(cells[c] for c in cols))
        return table

    wide = build(list(columns))
    if narrow is None:
        return wide
    return Adaptive(wide, build([c for c in columns if c in narrow]))


def fmt(value: object) -> str:
    """A number for a table: integers with separators, 4 significant digits below 10."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        v = float(value)
        if not np.isfinite(v):
            return "–"
        return f"{v:,.4g}" if abs(v) < 10 else f"{v:,.2f}"
    return str(value)


def rfm_overview(rfm: pd.DataFrame, title: str = "RFM summary") -> Group:
    """Customers, repeat transactions, one-time buyers, and the histogram of frequency."""
    x = rfm["frequency"].to_numpy(dtype=np.int64)
    n = len(x)
    unit = rfm.attrs.get("time_unit", "?")
    table = new_table(title, ["what", "value"], numeric=["value"], show_header=False)
    table.add_row("customers", f"{n:,}")
    table.add_row("repeat transactions", f"{int(x.sum()):,}")
    share = float((x == 0).mean()) if n else float("nan")
    table.add_row("one-time buyers (frequency 0)", f"{int((x == 0).sum()):,} ({share:.1%})")
    if "observation_end" in rfm.attrs:
        table.add_row("observation end", str(rfm.attrs["observation_end"]))
    table.add_row("time unit", str(unit))
    if "frequency_holdout" in rfm.columns:
        table.add_row("holdout repeat transactions", f"{int(rfm['frequency_holdout'].sum()):,}")
        if "duration_holdout" in rfm.columns and n:
            table.add_row("holdout length", f"{float(rfm['duration_holdout'].iloc[0]):g} {unit}")
    counts = np.bincount(np.minimum(x, 7), minlength=8) if n else np.zeros(8, dtype=np.int64)
    labels = [*map(str, range(7)), "7+"]
    histogram = new_table("customers by frequency (repeat transactions)", labels,
                          numeric=labels)
    histogram.add_row(*(f"{int(c):,}" for c in counts))
    return Group(table, histogram)


def params_table(model: Any, title: str) -> Table:
    """A fitted model's parameters: estimate, standard error (or sd) and the 95% interval.

    Maximum-likelihood and Bayesian models share the summary schema; Bayesian ones add R-hat
    and ESS columns, shown when present.
    """
    summary = model.summary()
    cols = [c for c in ("estimate", "se", "lower 95%", "upper 95%", "r_hat", "ess_bulk")
            if c in summary.columns]
    if "estimate" not in cols and "mean" in summary.columns:  # the posterior's own names
        cols = [c for c in ("mean", "sd", "hdi_3%", "hdi_97%", "r_hat", "ess_bulk")
                if c in summary.columns]
    headers = {"lower 95%": "lower 95%", "upper 95%": "upper 95%", "r_hat": "R-hat",
               "ess_bulk": "ESS"}
    table = new_table(title, ["parameter", *(headers.get(c, c) for c in cols)],
                      numeric=[headers.get(c, c) for c in cols])
    for name, row in summary.iterrows():
        # escaped: an indicator's name, "purchase:channel[web]", is not rich markup
        table.add_row(escape(str(name)), *(f"{row[c]:.4g}" if pd.notna(row[c]) else "–"
                                   for c in cols))
    a = summary.attrs
    parts = []
    if a.get("log_likelihood") is not None and np.isfinite(a.get("log_likelihood", np.nan)):
        parts.append(f"log-likelihood {a['log_likelihood']:.2f}")
    if a.get("aic") is not None and np.isfinite(a.get("aic", np.nan)):
        parts.append(f"AIC {a['aic']:.1f}")
    if a.get("n_customers"):
        parts.append(f"{int(a['n_customers']):,} customers")
    unit = a.get("time_unit") or getattr(model, "time_unit_", None)
    if unit:
        parts.append(f"time unit {unit}")
    table.caption = ", ".join(parts) or None
    return table


def tiers_table(tiers: pd.DataFrame, title: str = "Value tiers (by CLV)") -> Table | Adaptive:
    """The value-tier summary (:func:`clvmodels.kpis.value_tiers`); shares as percentages.

    In a narrow console the minimum and maximum value columns are left out.
    """

    def cell(column: str, value: object) -> str:
        if str(column).startswith("share") and isinstance(value, float | np.floating):
            return f"{float(value):.1%}" if np.isfinite(value) else "–"
        return fmt(value)

    columns = {str(c): str(c).replace("_", " ") for c in tiers.columns}
    rows = [(str(name), {str(c): cell(str(c), tiers[c].iloc[i]) for c in tiers.columns})
            for i, name in enumerate(tiers.index)]
    narrow = [c for c in columns if c not in ("min_value", "max_value")]
    return table_of(title, "tier", rows, columns, narrow=narrow)


#: Per-customer columns of the top-customers table, with their (wrappable) headers.
_TOP_COLUMNS = {
    "frequency": "frequency", "recency": "recency", "T": "T", "periods": "periods",
    "probability_alive": "P(alive)", "probability_active": "P(active)",
    "expected_purchases": "expected purchases", "expected_periods": "expected periods",
    "expected_spend": "expected spend", "revenue_per_period": "revenue per period",
    "derl": "DERL", "clv": "CLV",
}


def _settings_rows(table: Table, s: dict[str, Any]) -> None:
    if "horizon" in s:
        units = s.get("horizon_units")
        unit = s.get("time_unit", "")
        shown = str(s["horizon"])
        if units is not None and np.isfinite(units):
            shown += f" ({units:.4g} {unit})"
        elif units is not None:
            shown = "the whole remaining lifetime"
        table.add_row("horizon", shown)
    if "discount_rate" in s:
        table.add_row("discount rate (annual)", f"{s['discount_rate']:.1%}")
    if "margin" in s:
        table.add_row("margin", f"{s['margin']:.0%}")


def forecast_overview(result: Any, top: int = 10, *, weights: Any = None) -> Group:
    """Totals, tiers and the top customers of a :class:`clvmodels.workflow.ForecastResult`.

    ``weights``: the number of identical customers each row stands for (pre-aggregated
    rows); totals and means are then per customer, not per row.
    """
    fc = result.forecast
    s = result.settings
    w = np.ones(len(fc)) if weights is None else np.asarray(weights, dtype=float)
    n = float(w.sum())
    totals = new_table("Customer lifetime value", ["what", "value"], numeric=["value"],
                       show_header=False)
    _settings_rows(totals, s)
    totals.add_row("customers", f"{n:,.0f}")
    if weights is not None:
        totals.add_row("distinct rows", f"{len(fc):,}")
    total = float((w * fc["clv"].to_numpy(dtype=float)).sum())
    totals.add_row("total CLV", f"{total:,.2f}")
    totals.add_row("mean CLV", f"{total / n:,.2f}" if n else "–")
    if "expected_purchases" in fc.columns:
        expected = float((w * fc["expected_purchases"].to_numpy(dtype=float)).sum())
        totals.add_row("expected purchases (total)", f"{expected:,.1f}")
    if "churned" in fc.columns:
        active = float(w[~fc["churned"].to_numpy(dtype=bool)].sum())
        totals.add_row("active customers", f"{active:,.0f}")
    cols = [c for c in _TOP_COLUMNS if c in fc.columns]
    if "expected_spend" in cols and not s.get("spend", True):
        cols.remove("expected_spend")  # no spend model: a constant 1 per transaction
    best = fc.nlargest(top, "clv")[cols]
    id_header = str(fc.index.name or "row").replace("_", " ")
    unit = "rows" if weights is not None else "customers"
    rows = [(str(cid), {c: fmt(best[c].iloc[i]) for c in cols})
            for i, cid in enumerate(best.index)]
    top_table = table_of(f"Top {min(top, len(fc))} {unit} by CLV", id_header, rows,
                         {c: _TOP_COLUMNS[c] for c in cols},
                         narrow=[c for c in cols if c not in ("recency", "T")])
    parts: list[Any] = [totals]
    if getattr(result, "tiers", None) is not None:
        parts.append(tiers_table(result.tiers))  # (counted in customers when weighted)
    parts.append(top_table)
    return Group(*parts)


def discrete_overview(data: pd.DataFrame, weights: np.ndarray, title: str) -> Table:
    """A discrete-time summary (BG/BB): customers, opportunities, repeat transactions."""
    table = new_table(title, ["what", "value"], numeric=["value"], show_header=False)
    n = int(weights.sum())
    x = data["frequency"].to_numpy(dtype=float)
    table.add_row("customers", f"{n:,}")
    table.add_row("distinct rows", f"{len(data):,}")
    table.add_row("transactions", f"{float((x * weights).sum()):,.0f}")
    periods = data["periods"] if "periods" in data.columns else data["T"]
    table.add_row("opportunities", f"{int(periods.min()):,}–{int(periods.max()):,}"
                  if periods.min() != periods.max() else f"{int(periods.iloc[0]):,}")
    return table


def contractual_overview(data: pd.DataFrame, weights: np.ndarray, title: str) -> Table:
    """A contractual summary (sBG): customers, active and churned, periods paid."""
    table = new_table(title, ["what", "value"], numeric=["value"], show_header=False)
    churned = data["churned"].to_numpy(dtype=bool)
    n = int(weights.sum())
    table.add_row("customers", f"{n:,}")
    active = int(weights[~churned].sum())
    table.add_row("active", f"{active:,} ({active / n:.1%})" if n else "0")
    table.add_row("churned", f"{n - active:,}")
    periods = data["periods"].to_numpy(dtype=float)
    table.add_row("mean periods paid", f"{float((periods * weights).sum()) / n:.2f}"
                  if n else "–")
    if "period" in data.attrs or "time_unit" in data.attrs:
        table.add_row("period", str(data.attrs.get("period") or data.attrs.get("time_unit")))
    return table


def metrics_table(comparison: Any, title: str = "Model comparison on the holdout",
                  columns: Sequence[str] | None = None) -> Adaptive:
    """The comparison's metrics, the best value of each metric in bold.

    One row per model when that fits the console, else one row per metric (the transposed
    layout an 80-column terminal needs for a dozen metrics).
    """
    from clvmodels.report import format_metric, metric_info

    info = metric_info(comparison)  # the report's labels, for this kind of comparison
    metrics = comparison.metrics
    best = comparison.best
    wanted = columns if columns is not None else list(metrics.columns)
    cols = [c for c in wanted if c in metrics.columns and metrics[c].notna().any()]
    caption = "bold: best of each metric (see the report for the definitions)"

    def label(c: str) -> str:
        return info[c][0] if c in info else c.replace("_", " ")

    def cell(name: Any, c: str) -> str:
        value = metrics.at[name, c]
        text = format_metric(c, value) if c in info else fmt(value)
        return f"[bold green]{text}[/]" if str(name) in best.get(c, []) else text

    names = [str(n) for n in metrics.index]
    wide = new_table(title, ["model", *(label(c) for c in cols)],
                     numeric=[label(c) for c in cols], caption=caption)
    for name in metrics.index:
        wide.add_row(str(name), *(cell(name, c) for c in cols))
    narrow = new_table(title, ["metric", *names], numeric=names, caption=caption)
    for c in cols:
        narrow.add_row(label(c), *(cell(name, c) for name in metrics.index))
    return Adaptive(wide, narrow)
