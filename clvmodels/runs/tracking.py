"""Forecast tracking between runs: how the previous run's forecast compares with what happened.

A run directory is ``<runs_dir>/<name>/<run_id>/`` (:mod:`clvmodels.runs.execute`). The
*previous run* of a new run is the sibling directory (not hidden, with a ``manifest.json`` of
the same ``name``) whose observation end is the latest one before the new run's. Its
forecast was made as of its observation end ``t0``; the new run's data reach ``t1 > t0``, so
the overlapping period is ``(t0, t1]``, of length ``h = (t1 - t0)`` in the previous run's
time unit.

For every model the previous run saved (its ``models/<model>.json|.nc``, loaded with
:func:`clvmodels.load_model`) and every customer of its forecast (their ``frequency,
recency, T`` and covariates as of ``t0``, from ``forecasts/<model>.parquet``):

* predicted purchases: ``E[Y(h) | x, t_x, T]`` — the model's conditional expectation
  (FHL 2005, eq. (10) for the BG/NBD; the posterior mean for a Bayesian model), the
  quantity :func:`clvmodels.compare_models` scores on a holdout;
* predicted revenue: predicted purchases × the previous forecast's ``expected_spend`` (the
  spend model's expected spend per transaction ``E[M | x, m_x]``, Fader & Hardie 2013,
  eq. (6)); none without a spend model (``spend.family = "none"``);
* actual purchases and revenue: :func:`clvmodels.calibration_holdout_split` of the new
  run's transactions at ``calibration_end = t0``, ``observation_end = t1`` —
  ``frequency_holdout`` (transaction days in the period: all repeat purchases) and
  ``frequency_holdout × monetary_value_holdout``. It runs on the run's engine: the pandas
  frame, or the input files read by DuckDB or Spark, which materialise only the
  per-customer result (with Spark: the id and the two holdout columns are collected).

``tracking.csv`` holds one row per (model, customer); the report's tracking section shows
the totals per model (predicted, actual, error = predicted / actual - 1, mean absolute error
per customer) and a figure (:mod:`clvmodels.report.tracking`). Customers first seen after
``t0`` were not in the previous forecast and are left out.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["find_previous", "tracking_tables", "write_tracking"]


def _manifest(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def find_previous(run_dir: Path, name: str, observation_end: pd.Timestamp) -> Path | None:
    """The sibling run of the same ``name`` with the latest observation end before
    ``observation_end`` (None when there is none)."""
    parent = run_dir.parent
    if not parent.is_dir():
        return None
    best: tuple[pd.Timestamp, Path] | None = None
    for child in parent.iterdir():
        if child.name.startswith(".") or not child.is_dir() or child.name == run_dir.name:
            continue
        manifest = _manifest(child)
        if manifest is None or manifest.get("name") != name:
            continue
        try:
            end = pd.Timestamp(manifest["observation_end"])
        except (KeyError, ValueError, TypeError):
            continue
        if end < observation_end and (best is None or end > best[0]):
            best = (end, child)
    return best[1] if best else None


def _actuals(transactions: Any, config: Any, t0: pd.Timestamp, t1: pd.Timestamp,
             unit: str) -> pd.DataFrame:
    """Per customer: ``frequency_holdout[, monetary_value_holdout]`` in ``(t0, t1]``, from a
    pandas frame of transactions or (DuckDB, Spark) the input files."""
    from clvmodels.rfm import calibration_holdout_split

    inp = config.input
    split = calibration_holdout_split(
        transactions, calibration_end=t0, observation_end=t1,
        customer_id_col=inp.customer_id_col, datetime_col=inp.datetime_col,
        monetary_value_col=inp.monetary_value_col or None, time_unit=unit,
        engine=inp.engine if not isinstance(transactions, pd.DataFrame) else "pandas",
        negative_amounts=inp.negative_amounts,
        date_format=(inp.date_format or None) if not isinstance(transactions, pd.DataFrame)
        else None)
    if isinstance(split, pd.DataFrame):
        return split
    from clvmodels.engines.spark import quiet_pandas_warnings

    id_col = split.columns[0]
    cols = [c for c in ("frequency_holdout", "monetary_value_holdout") if c in split.columns]
    with quiet_pandas_warnings():
        return split.select(id_col, *cols).toPandas().set_index(id_col)


def tracking_tables(previous: Path, transactions: Any, config: Any,
                    observation_end: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame,
                                                             dict[str, Any]]:
    """``(per customer, totals per model, about)`` for the previous run's forecasts over
    the period since it (module docstring). ``transactions``: a pandas frame, or the input
    files (a path or a list) for the configuration's engine."""
    from clvmodels.models.persistence import load_model
    from clvmodels.rfm import time_unit_days

    manifest = _manifest(previous)
    if manifest is None:
        raise ValueError(f"previous run {os.fspath(previous)!r}: unreadable manifest.json")
    t0 = pd.Timestamp(manifest["observation_end"])
    unit = manifest.get("time_unit", "W")
    h = (observation_end - t0).days / time_unit_days(unit)
    actual = _actuals(transactions, config, t0, observation_end, unit)
    y = actual["frequency_holdout"].astype(float)
    if "monetary_value_holdout" in actual.columns:
        revenue = (y * actual["monetary_value_holdout"].astype(float).fillna(0.0))
    else:
        revenue = pd.Series(np.nan, index=actual.index)
    rows = []
    for label, info in manifest.get("models", {}).items():
        if not info.get("file") or not info.get("forecast"):
            continue
        model = load_model(previous / info["file"])
        parts = [pd.read_parquet(previous / f) for f in info["forecast"]]
        before = pd.concat(parts) if len(parts) > 1 else parts[0]
        id_col = config.input.customer_id_col
        if before.index.name != id_col and id_col in before.columns:  # a Spark forecast
            before = before.set_index(id_col)
        before.attrs = {"time_unit": unit, "observation_end": str(t0.date())}
        yhat = model.expected_purchases(before, float(h))
        yhat = yhat["expected_purchases"] if isinstance(yhat, pd.DataFrame) else yhat
        yhat = np.asarray(yhat, dtype=float)
        spend = (before["expected_spend"].to_numpy(dtype=float)
                 if manifest.get("spend_model") and "expected_spend" in before.columns
                 else np.full(len(before), np.nan))  # CLV in transactions: no revenue
        ids = before.index
        rows.append(pd.DataFrame({
            "model": label, "customer_id": ids,
            "predicted_purchases": yhat,
            "actual_purchases": y.reindex(ids).fillna(0.0).to_numpy(),
            "predicted_revenue": yhat * spend,
            "actual_revenue": revenue.reindex(ids).fillna(0.0).to_numpy(),
        }))
    if not rows:
        raise ValueError(f"previous run {os.fspath(previous)!r} saved no model to track "
                         "(output.save_models = false)")
    per_customer = pd.concat(rows, ignore_index=True)
    totals = per_customer.groupby("model", sort=False).agg(
        customers=("customer_id", "size"),
        predicted_purchases=("predicted_purchases", "sum"),
        actual_purchases=("actual_purchases", "sum"),
        predicted_revenue=("predicted_revenue", "sum"),
        actual_revenue=("actual_revenue", "sum"))
    err = per_customer.assign(
        abs_purchases=(per_customer["predicted_purchases"]
                       - per_customer["actual_purchases"]).abs(),
        abs_revenue=(per_customer["predicted_revenue"]
                     - per_customer["actual_revenue"]).abs())
    totals["purchases_error"] = _ratio(totals["predicted_purchases"],
                                       totals["actual_purchases"])
    totals["revenue_error"] = _ratio(totals["predicted_revenue"], totals["actual_revenue"])
    totals["mae_purchases"] = err.groupby("model", sort=False)["abs_purchases"].mean()
    totals["mae_revenue"] = err.groupby("model", sort=False)["abs_revenue"].mean()
    about = {"previous_run": previous.name, "previous_observation_end": str(t0.date()),
             "observation_end": str(observation_end.date()), "period_length": h,
             "time_unit": unit}
    return per_customer, totals, about


def _ratio(pred: pd.Series, actual: pd.Series) -> pd.Series:
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.Series(np.where(actual > 0, pred / actual.where(actual > 0) - 1, np.nan),
                         index=pred.index)


def write_tracking(previous: Path, out_dir: Path, run: Any, config: Any,
                   observation_end: pd.Timestamp) -> dict[str, Any]:
    """Write ``tracking.csv``, ``figures/tracking.png`` and the report's tracking section
    (when ``out_dir/report/report.html`` exists); return what was written and the totals.
    ``run``: the run's :class:`~clvmodels.runs.inputs.RunInput` (its pandas transactions,
    or else its input files, read by the engine)."""
    from clvmodels.report.tracking import add_tracking_section, tracking_figure
    from clvmodels.runs.config import input_files

    transactions: Any = run.frame
    if transactions is None:
        files = [os.fspath(p) for p in input_files(config)]
        transactions = files[0] if len(files) == 1 else files
    per_customer, totals, about = tracking_tables(previous, transactions, config,
                                                  observation_end)
    per_customer.to_csv(out_dir / "tracking.csv", index=False)
    figure = tracking_figure(per_customer, totals, about)
    (out_dir / "figures").mkdir(exist_ok=True)
    (out_dir / "figures" / "tracking.png").write_bytes(figure.png)
    report = out_dir / "report" / "report.html"
    if report.is_file():
        html = report.read_text(encoding="utf-8")
        report.write_text(add_tracking_section(html, totals, figure, about), encoding="utf-8")
    return {"csv": "tracking.csv", "figure": "figures/tracking.png", **about,
            "totals": totals.reset_index().to_dict(orient="records")}
