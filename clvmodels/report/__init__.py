"""The HTML comparison reports: one self-contained page, plus the metrics and figures.

:func:`write_report` turns a comparison into

* ``report.html`` — a single file with inline CSS and every figure embedded as a base64 PNG
  (no network access needed to view it);
* ``metrics.csv`` — the metrics table;
* ``figures/*.png`` — every figure of the report.

A :class:`~clvmodels.evaluation.ModelComparison` (transaction models: ``compare_models``,
``compare_discrete``) is laid out by :mod:`clvmodels.report.transaction`, a
:class:`~clvmodels.evaluation.ContractualComparison` (``compare_contractual``) by
:mod:`clvmodels.report.contractual` — chosen by the comparison's ``kind`` — in the same style
(:mod:`clvmodels.report.parts`); a :class:`~clvmodels.evaluation.BacktestResult`
(``backtest``) is the latest cut-off's transaction report with a backtest section
(:mod:`clvmodels.report.backtest`) and the backtest's tables as CSV. Every file is written
atomically (:mod:`clvmodels._io`) and none is replaced without ``force``; all clashes are
reported before anything is written.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from clvmodels._io import check_output_path, write_text, write_with
from clvmodels.diagnostics_covariates import coefficient_table
from clvmodels.report import backtest, contractual, transaction
from clvmodels.report.contractual import METRIC_INFO as CONTRACTUAL_METRIC_INFO
from clvmodels.report.parts import ReportFigure, format_metric
from clvmodels.report.transaction import METRIC_INFO

__all__ = ["CONTRACTUAL_METRIC_INFO", "METRIC_INFO", "ReportFigure", "build_figures",
           "coefficients_frame", "format_metric", "metric_info", "render_html", "write_html",
           "write_report"]


def coefficients_frame(comparison: Any) -> pd.DataFrame | None:
    """Every covariate coefficient of the compared models (and the spend model), one row per
    (model, coefficient) with :func:`clvmodels.diagnostics_covariates.coefficient_table`'s
    columns (95% intervals); None when no model has covariates."""
    from clvmodels.report.covariates import INTERVAL, covariate_models

    if getattr(comparison, "kind", None) == "backtest":
        comparison = comparison.last  # the page details the latest cut-off
    models = covariate_models(comparison) if hasattr(comparison, "models") else {}
    if not models:
        return None
    return pd.concat({name: coefficient_table(m, INTERVAL) for name, m in models.items()},
                     names=["model", "coefficient"])


def _layout(comparison: Any) -> ModuleType:
    """The module that lays out this kind of comparison."""
    kind = getattr(comparison, "kind", "transaction")
    if kind == "contractual":
        return contractual
    if kind == "transaction":
        return transaction
    if kind == "backtest":
        return backtest
    raise TypeError(f"no report for a comparison of kind {kind!r}")


def metric_info(comparison: Any) -> dict[str, tuple[str, str, str]]:
    """Label, group and definition of each metric column of this comparison's kind."""
    return dict(_layout(comparison).METRIC_INFO)


def build_figures(comparison: Any) -> list[ReportFigure]:
    """Render every figure of the comparison's report (PNG bytes), in report order; every
    figure is closed once saved."""
    return _layout(comparison).build_figures(comparison)


def render_html(comparison: Any, figures: Sequence[ReportFigure] | None = None, *,
                title: str | None = None) -> str:
    """The report page as a string (figures rendered here unless given)."""
    return _layout(comparison).render_html(comparison, figures, title=title)


def write_html(comparison: Any, path: str | os.PathLike, *, force: bool = False,
               title: str | None = None) -> Path:
    """Write the self-contained report page to ``path`` atomically (refusing to replace an
    existing file unless ``force``)."""
    check_output_path(path, force=force)
    return write_text(render_html(comparison, title=title), path, force=force)


def write_report(comparison: Any, out_dir: str | os.PathLike, *,
                 force: bool = False, title: str | None = None) -> dict[str, Path]:
    """Write ``report.html``, ``metrics.csv`` and ``figures/<name>.png`` into ``out_dir``
    (and ``coefficients.csv`` — every covariate coefficient of every model, by model — when
    a compared model has covariates). For a backtest: ``metrics.csv`` is the latest
    cut-off's table (the one the page shows), and ``backtest_metrics.csv`` (the long table),
    ``backtest_summary.csv`` and ``backtest_wins.csv`` are added.

    Every existing output is refused unless ``force`` — all of them are checked before
    anything is written — and each file is written atomically. Returns the paths by role
    (``report``, ``metrics``, ``figure:<name>``).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {os.fspath(out)!r} exists and is not a directory")
    report_path, metrics_path = out / "report.html", out / "metrics.csv"
    coefs = coefficients_frame(comparison)
    coef_path = out / "coefficients.csv" if coefs is not None else None
    tables: dict[str, pd.DataFrame] = {}
    if getattr(comparison, "kind", None) == "backtest":
        tables = {"backtest_metrics": comparison.metrics.set_index("calibration_end"),
                  "backtest_summary": comparison.summary, "backtest_wins": comparison.wins}
    table_paths = {k: out / f"{k}.csv" for k in tables}
    for p in (report_path, metrics_path, coef_path, *table_paths.values()):
        if p is not None:
            check_output_path(p, force=force)
    figures = build_figures(comparison)
    fig_paths = {f.name: out / "figures" / f"{f.name}.png" for f in figures}
    for p in fig_paths.values():
        check_output_path(p, force=force)
    page = render_html(comparison, figures, title=title)
    written: dict[str, Path] = {}
    for f in figures:
        written[f"figure:{f.name}"] = write_with(
            lambda tmp, data=f.png: Path(tmp).write_bytes(data), fig_paths[f.name],
            force=force)
    shown = comparison.last.metrics if tables else comparison.metrics
    written["metrics"] = write_with(lambda tmp: shown.to_csv(tmp), metrics_path, force=force)
    for key, frame in tables.items():
        written[key] = write_with(lambda tmp, f=frame: f.to_csv(tmp), table_paths[key],
                                  force=force)
    if coefs is not None and coef_path is not None:
        written["coefficients"] = write_with(lambda tmp: coefs.to_csv(tmp), coef_path,
                                             force=force)
    written["report"] = write_text(page, report_path, force=force)
    return written
