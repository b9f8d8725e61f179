"""What every report page shares: number formatting, figures as embedded PNGs, the metrics
table with the best values marked, parameter cards, software versions and the templates.

The transaction report (:mod:`clvmodels.report.transaction`) and the contractual one
(:mod:`clvmodels.report.contractual`) lay out different content in the same style: the
templates ``clvmodels/templates/report*.html.j2`` include one style sheet
(``_report_style.css``). Numbers are formatted here, so the templates only lay them out.
"""

from __future__ import annotations

import base64
import io
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata, resources
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clvmodels._version import __version__
from clvmodels.models.protocol import is_posterior
from clvmodels.models.registry import label_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "PALETTE",
    "STYLE",
    "UNIT_NAMES",
    "ReportFigure",
    "bayes_figures",
    "direction_text",
    "figure_context",
    "format_metric",
    "metrics_view",
    "missing",
    "next_day",
    "num",
    "param_card",
    "pct",
    "png",
    "safe_stem",
    "sig",
    "template",
    "unique_stem",
    "versions",
]

_PERCENT = {"aggregate_bias", "tracking_error", "top_decile_capture", "interval_coverage"}
_SIGNED = {"aggregate_bias", "tracking_error"}
_POINTS = {"retention_mae"}  # shares of customers: errors in percentage points
_DECIMALS = {"log_likelihood": 1, "aic": 1, "bic": 1, "elpd_loo": 1, "chi_square": 2,
             "mae": 3, "rmse": 3, "correlation": 3, "spearman_clv": 3, "gini_clv": 3,
             "fit_seconds": 2, "holdout_log_likelihood": 1}

#: Okabe-Ito colours for the models in comparison figures (colour-blind safe).
PALETTE = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")

#: matplotlib settings of every report figure
STYLE = {"figure.dpi": 100, "savefig.dpi": 110, "font.size": 10,
         "axes.spines.top": False, "axes.spines.right": False,
         "axes.titleweight": "bold", "axes.titlesize": 11}

_PACKAGES = ("clvmodels", "numpy", "scipy", "pandas", "matplotlib", "pymc", "arviz",
             "nutpie", "pytensor", "jinja2")

#: plural names of the time units
UNIT_NAMES = {"D": "days", "W": "weeks", "M": "months", "Y": "years"}


# --------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------


def missing(value: Any) -> bool:
    """Whether ``value`` is missing or not finite (strings are not missing)."""
    try:
        return value is None or not np.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def next_day(day: Any) -> str:
    """The calendar day after ``day`` as ``YYYY-MM-DD``: the first day of a holdout that
    runs from the day after the calibration end (an em dash when unknown)."""
    if day is None or (isinstance(day, float) and not np.isfinite(day)):
        return "—"
    return str((pd.Timestamp(day).normalize() + pd.Timedelta(days=1)).date())


def num(value: Any, decimals: int = 2) -> str:
    """A number with thousands separators; an em dash when missing."""
    if missing(value):
        return "—"
    return f"{float(value):,.{decimals}f}"


def sig(value: Any, digits: int = 4) -> str:
    """A number to ``digits`` significant figures (parameters); an em dash when missing."""
    if missing(value):
        return "—"
    v = float(value)
    if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
        return f"{v:.{digits - 1}e}"
    out = f"{v:,.{digits}g}" if abs(v) < 10**digits else f"{v:,.0f}"
    return out


def pct(value: Any, decimals: int = 1, signed: bool = False) -> str:
    """A share as a percentage; an em dash when missing."""
    if missing(value):
        return "—"
    return f"{100 * float(value):{'+' if signed else ''}.{decimals}f}%"


def format_metric(column: str, value: Any) -> str:
    """A metric value as shown in the reports (percentages for shares and biases,
    percentage points for errors of shares)."""
    if column in _PERCENT:
        return pct(value, 1, signed=column in _SIGNED)
    if column in _POINTS:
        return "—" if missing(value) else f"{100 * float(value):.1f} pts"
    return num(value, _DECIMALS.get(column, 3))


def direction_text(direction: str | None, interval: float) -> str:
    """"higher is better" … for a metric direction ("max", "min", "zero", "nominal")."""
    return {"max": "higher is better", "min": "lower is better",
            "zero": "closer to 0 is better",
            "nominal": f"closest to {interval:.0%} is best"}.get(direction or "", "not ranked")


# --------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------


@dataclass
class ReportFigure:
    """A rendered figure: file stem, caption, section and PNG bytes."""

    name: str
    title: str
    section: str
    png: bytes
    caption: str = ""
    model: str | None = None
    collapsed: bool = False

    @property
    def data_uri(self) -> str:
        """The PNG as a ``data:`` URI for embedding."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", facecolor="white")  # figures use constrained layout
    finally:
        plt.close(fig)
    return buf.getvalue()


def safe_stem(name: str) -> str:
    """A file stem from a model name (letters, digits, ``-`` and ``_``)."""
    keep = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name.lower())
    return keep.strip("-") or "model"


def unique_stem(name: str, taken: set[str]) -> str:
    """:func:`safe_stem`, made unique among ``taken`` (which it joins)."""
    stem = safe_stem(name)
    while stem in taken:  # names that differ only in punctuation
        stem += "-2"
    taken.add(stem)
    return stem


def bayes_figures(model: Any) -> list[tuple[str, str, Figure]]:
    """A Bayesian model's trace plots (and the segment forest of a hierarchical one), as
    ``(kind, title, figure)``."""
    import clvmodels.plotting as plotting

    out = []
    axes = plotting.plot_trace(model)
    fig = np.ravel(axes)[0].figure
    fig.set_size_inches(11.0, 1.9 * max(1, np.asarray(axes).shape[0]))
    out.append(("trace", "MCMC trace plots", fig))
    if getattr(model, "segment_col", None):
        axes = plotting.plot_segment_forest(model)
        out.append(("segments", f"Segment parameters by {model.segment_col}",
                    np.ravel(axes)[0].figure))
    return out


def figure_context(figures: Sequence[ReportFigure]) -> dict[str, list[dict[str, Any]]]:
    """The figures by section, as the templates read them."""
    by_section: dict[str, list[dict[str, Any]]] = {}
    for f in figures:
        by_section.setdefault(f.section, []).append(
            {"name": f.name, "title": f.title, "src": f.data_uri, "caption": f.caption,
             "model": f.model, "collapsed": f.collapsed})
    return by_section


# --------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------


def metrics_view(metrics: Any, best: Mapping[str, list[str]], *, columns: Sequence[str],
                 info: Mapping[str, tuple[str, str, str]],
                 directions: Mapping[str, str | None], interval: float,
                 row_kind: Callable[[str], tuple[str, str]]) -> dict[str, Any]:
    """The metrics table: column groups, header cells with definitions, and one row per
    model with each value formatted and the best ones marked. ``row_kind(name)`` gives a
    row's (kind, label): ("MLE" | "Bayesian" | "baseline", display name)."""
    shown = [c for c in columns if c in metrics.columns and metrics[c].notna().any()]
    groups: list[dict[str, Any]] = []
    for c in shown:
        group = info[c][1]
        if groups and groups[-1]["name"] == group:
            groups[-1]["span"] += 1
        else:
            groups.append({"name": group, "span": 1})
    rows = []
    for name in metrics.index:
        cells = []
        for c in shown:
            value = metrics.at[name, c]
            cells.append({"text": format_metric(c, value),
                          "best": str(name) in best.get(c, []),
                          "missing": missing(value)})
        kind, label = row_kind(str(name))
        rows.append({"name": str(name), "kind": kind, "label": label, "cells": cells})
    header = [{"key": c, "label": info[c][0], "definition": info[c][2],
               "direction": direction_text(directions.get(c), interval)} for c in shown]
    return {"columns": header, "groups": groups, "rows": rows}


def _hdi_mass(lo: str, hi: str) -> str:
    """"94%" from ArviZ's column names ``hdi_3%`` and ``hdi_97%``."""
    try:
        return f"{float(hi[4:].rstrip('%')) - float(lo[4:].rstrip('%')):g}%"
    except ValueError:
        return ""


def param_card(name: str, model: Any, note: str = "", label: str | None = None
               ) -> dict[str, Any]:
    """A parameter card: the model's ``summary()`` (estimates with standard errors and 95%
    intervals, or posterior means with HDIs, ESS and R-hat) and its fit statistics."""
    bayes = is_posterior(model)
    table = model.summary()
    if bayes:
        lo = next((c for c in table.columns if str(c).startswith("hdi_")), None)
        hi = [c for c in table.columns if str(c).startswith("hdi_")][-1] if lo else None
        cols = [("mean", "posterior mean"), ("sd", "sd")]
        if lo and hi:
            mass = _hdi_mass(lo, hi)
            cols += [(lo, f"lower {mass} HDI"), (hi, f"upper {mass} HDI")]
        cols += [(c, text) for c, text in (("ess_bulk", "ESS bulk"), ("ess_tail", "ESS tail"),
                                           ("r_hat", "R-hat")) if c in table.columns]
    else:
        cols = [("estimate", "estimate"), ("se", "std. error"),
                ("lower 95%", "lower 95%"), ("upper 95%", "upper 95%")]
    rows = []
    for param, row in table.iterrows():
        cells = []
        for c, _ in cols:
            v = row.get(c)
            if c in ("ess_bulk", "ess_tail"):
                cells.append(num(v, 0))
            elif c == "r_hat":
                cells.append(num(v, 3))
            else:
                cells.append(sig(v))
        rows.append({"name": str(param), "cells": cells})
    stats: list[tuple[str, str]]
    if bayes:
        d = getattr(model, "diagnostics_", {})
        stats = [("chains × draws", f"{d.get('chains', '?')} × {d.get('draws', '?')}"),
                 ("divergences", str(d.get("divergences", "—"))),
                 ("max R-hat", num(d.get("max_rhat"), 3)),
                 ("min ESS", num(min(d.get("min_ess_bulk", np.nan),
                                     d.get("min_ess_tail", np.nan)), 0))]
        if getattr(model, "segment_col", None):
            stats.insert(0, ("segments", f"{len(model.segment_labels_)} "
                                         f"({model.segment_col})"))
    else:
        a = table.attrs
        stats = [("log-likelihood", num(a.get("log_likelihood"), 2)),
                 ("AIC", num(a.get("aic"), 1)), ("BIC", num(a.get("bic"), 1)),
                 ("customers", f"{a.get('n_customers', 0):,}"),
                 ("converged", "yes" if a.get("converged") else "no")]
    return {"name": name, "label": label or label_of(model),
            "kind": "Bayesian" if bayes else "maximum likelihood",
            "columns": [text for _, text in cols], "rows": rows,
            "wide": bool(bayes and len(rows) > 6),
            "stats": [{"name": a, "value": b} for a, b in stats], "note": note}


# --------------------------------------------------------------------------------------
# configuration, templates
# --------------------------------------------------------------------------------------


def versions() -> dict[str, Any]:
    """Python, clvmodels and the installed versions of the packages behind the numbers."""
    found = {"python": platform.python_version(), "clvmodels": __version__}
    for pkg in _PACKAGES:
        if pkg in found:
            continue
        try:
            found[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return {"versions": [{"name": k, "value": v} for k, v in found.items()],
            "platform": platform.platform(terse=True)}


def template(name: str) -> Any:
    """The Jinja2 template ``clvmodels/templates/<name>`` (autoescaped, strict), able to
    include the other files of that folder."""
    import jinja2

    folder = resources.files("clvmodels") / "templates"

    def load(file: str) -> str:
        return (folder / file).read_text(encoding="utf-8")

    env = jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template(name)
