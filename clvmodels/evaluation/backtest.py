"""Backtests: the holdout comparison repeated at several calibration cut-offs.

A single calibration cut-off is how most teams choose a model, and it is noisy: the winner
of one holdout may lose the next. :func:`backtest` runs :func:`compare_models` at every
cut-off of ``calibration_ends`` with a holdout of the same length after each (a *rolling
origin* evaluation, Tashman 2000; the origins of the calibration/holdout comparisons of
Fader, Hardie & Lee 2005, moved through time), and collects

* the metrics of every model at every cut-off, one row per (cut-off, model, metric) — a
  tidy long table (:attr:`BacktestResult.metrics`);
* the distribution of each metric per model across the cut-offs (mean, sd, min, max;
  :attr:`BacktestResult.summary`);
* how often each model wins each metric (:attr:`BacktestResult.wins`);
* the :class:`~clvmodels.evaluation.ModelComparison` of every cut-off.

The metrics are those of :mod:`clvmodels.evaluation.comparison` (see its docstring for their
definitions) and a metric's winner at a cut-off is the one
:func:`~clvmodels.evaluation.best_by_metric` names — the highest log-likelihood, correlation,
ranking quality or ELPD, the lowest AIC, BIC, chi-square, MAE or RMSE, the bias closest to
zero, the coverage closest to the nominal interval; ``fit_seconds`` is not ranked.

Wins and ties
-------------
At a cut-off where a metric is ranked (some row has a value), the ``k`` rows that share the
best value each get ``1 / k`` of a win, so a metric's wins add up to the number of cut-offs at
which it was ranked and a tie never counts more than an outright win: ``wins`` is this share,
``outright`` counts the cut-offs a row won alone and ``tied`` those it shared.

The holdout
-----------
``holdout`` is a length such as ``"39W"``, ``"90D"``, ``"9M"``, ``"1Y"`` or a number of model
time units. Days and weeks are added as days; whole months and years as calendar months (a
cut-off on the last day of a month ends its holdout on the last day of a month:
1997-09-30 + 9M = 1998-06-30, 1997-06-30 + 1M = 1997-07-31); fractional months or years
by the fixed day counts of :data:`clvmodels.TIME_UNITS` (rounded to whole days). The holdout
of cut-off ``c`` is ``(c, c + holdout]``, both ends as in :func:`compare_models`.

``compare_models`` itself takes one cut-off: ``compare_models(..., calibration_ends=...)``
raises an error that points here, so that it keeps one return type and this module, built
on it, is not imported back by it (the package's modules form no import cycle).

This module never imports the report or the plots.
"""

from __future__ import annotations

import copy
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clvmodels.evaluation.comparison import (
    DEFAULT_MODELS,
    ModelComparison,
    compare_models,
)
from clvmodels.evaluation.fitting import is_fitted
from clvmodels.evaluation.metrics import METRIC_COLUMNS, METRIC_DIRECTIONS, best_by_metric
from clvmodels.rfm import _parse_dates, read_transactions, time_unit_days

__all__ = ["SUMMARY_COLUMNS", "WIN_COLUMNS", "BacktestResult", "backtest", "holdout_end"]

_LENGTH = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([DWMY])\s*$", re.IGNORECASE)

#: columns of the summary table, per (model, metric)
SUMMARY_COLUMNS: tuple[str, ...] = ("direction", "cutoffs", "mean", "sd", "min", "max")

#: columns of the win table, per (metric, model)
WIN_COLUMNS: tuple[str, ...] = ("ranked_cutoffs", "wins", "outright", "tied", "win_rate")


@dataclass
class BacktestResult:
    """What :func:`backtest` produced.

    Attributes
    ----------
    metrics
        The tidy long table: one row per (cut-off, model, metric) with columns
        ``calibration_end``, ``holdout_end`` (dates, ``YYYY-MM-DD``), ``model``, ``metric``
        and ``value`` (NaN where a metric does not apply to a model, as in
        :attr:`ModelComparison.metrics`), in cut-off, model and
        :data:`~clvmodels.evaluation.METRIC_COLUMNS` order.
    summary
        Per (model, metric), the distribution of the metric across the cut-offs:
        ``direction`` (which value is best, :data:`~clvmodels.evaluation.METRIC_DIRECTIONS`),
        ``cutoffs`` (how many cut-offs gave a value), ``mean``, ``sd`` (sample standard
        deviation, NaN with one value), ``min``, ``max``. Metrics no model has are left out.
    wins
        Per (metric, model), for the ranked metrics: ``ranked_cutoffs`` (cut-offs at which the
        metric was ranked), ``wins`` (the model's share of the wins: 1/k for a k-way tie; a
        metric's wins sum to its ranked cut-offs), ``outright`` and ``tied`` (cut-offs won
        alone or jointly) and ``win_rate`` = wins / ranked cut-offs.
    comparisons
        The :class:`ModelComparison` of every cut-off, by cut-off (``YYYY-MM-DD``), in order.
    settings
        The run's configuration (cut-offs, holdout, time unit, models, interval, ...).
    """

    metrics: pd.DataFrame
    summary: pd.DataFrame
    wins: pd.DataFrame
    comparisons: dict[str, ModelComparison]
    settings: dict[str, Any] = field(default_factory=dict)
    #: what the report renders: a backtest (the last cut-off's comparison and a backtest
    #: section)
    kind: ClassVar[str] = "backtest"

    @property
    def cutoffs(self) -> list[str]:
        """The calibration cut-offs, in order (``YYYY-MM-DD``)."""
        return list(self.comparisons)

    @property
    def last(self) -> ModelComparison:
        """The comparison at the latest cut-off (the one the report details)."""
        return self.comparisons[self.cutoffs[-1]]

    def table(self, metric: str) -> pd.DataFrame:
        """One metric as a wide table: a row per cut-off (index ``calibration_end``), a
        column per model, in the order compared."""
        if metric not in METRIC_COLUMNS:
            raise ValueError(f"unknown metric {metric!r}; one of {', '.join(METRIC_COLUMNS)}")
        rows = self.metrics.loc[self.metrics["metric"] == metric]
        wide = rows.pivot(index="calibration_end", columns="model", values="value")
        order = list(dict.fromkeys(self.metrics["model"]))
        return wide.reindex(index=self.cutoffs, columns=order)

    def win_table(self) -> pd.DataFrame:
        """The wins as a wide table: a row per model, a column per ranked metric (shares of
        wins, ties split evenly), and ``total`` — the model's wins over all metrics."""
        wide = self.wins["wins"].unstack("metric")
        metrics = [m for m in METRIC_COLUMNS if m in wide.columns]
        order = [m for m in dict.fromkeys(self.metrics["model"]) if m in wide.index]
        wide = wide.reindex(index=order, columns=metrics)
        wide["total"] = wide.sum(axis=1)
        wide.index.name = "model"
        return wide


# --------------------------------------------------------------------------------------
# cut-offs and holdouts
# --------------------------------------------------------------------------------------


def holdout_end(cutoff: object, holdout: str | float, time_unit: str = "W") -> pd.Timestamp:
    """The last day of the holdout ``(cutoff, cutoff + holdout]`` (see the module docstring
    for how months and years are added)."""
    cut = pd.Timestamp(cutoff).normalize()  # type: ignore[arg-type]
    time_unit_days(time_unit)
    if isinstance(holdout, bool) or not isinstance(holdout, str | int | float | np.number):
        raise ValueError(f"holdout must be a length such as '39W', '9M' or a number of "
                         f"{time_unit} units, got {holdout!r}")
    if isinstance(holdout, str):
        match = _LENGTH.match(holdout)
        if not match:
            raise ValueError(f"cannot read holdout {holdout!r}: write e.g. 39W, 90D, 9M or 1Y")
        value, unit = float(match.group(1)), match.group(2).upper()
    else:
        value, unit = float(holdout), time_unit.upper()
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"holdout must be a positive length, got {holdout!r}")
    if unit in ("M", "Y") and value == int(value):
        months = int(value) * (12 if unit == "Y" else 1)
        if cut.is_month_end:
            return cut + pd.offsets.MonthEnd(months)
        return cut + pd.DateOffset(months=months)
    days = round(value * time_unit_days(unit))
    if days < 1:
        raise ValueError(f"holdout {holdout!r} is shorter than a day")
    return cut + pd.Timedelta(days=days)


def _cutoffs(calibration_ends: Sequence[object]) -> list[pd.Timestamp]:
    """The cut-offs as days, refusing unreadable, unsorted or repeated ones."""
    if isinstance(calibration_ends, str | bytes) or not isinstance(calibration_ends, Sequence):
        raise ValueError("calibration_ends must be a list of dates, e.g. "
                         "['1997-06-30', '1997-07-31', ...]")
    if len(calibration_ends) == 0:
        raise ValueError("calibration_ends is empty: give at least one cut-off")
    out = []
    for raw in calibration_ends:
        try:
            day = pd.Timestamp(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"calibration_ends: cannot read cut-off {raw!r} as a date") from exc
        if pd.isna(day):
            raise ValueError(f"calibration_ends: cut-off {raw!r} is missing (NaT)")
        if day.tzinfo is not None:
            day = day.tz_localize(None)
        out.append(day.normalize())
    seen: set[pd.Timestamp] = set()
    for day in out:
        if day in seen:
            raise ValueError(f"calibration_ends: cut-off {day.date()} is given twice")
        seen.add(day)
    for i in range(1, len(out)):
        if out[i] < out[i - 1]:
            raise ValueError(f"calibration_ends must be in increasing order: cut-off "
                             f"{out[i].date()} is listed after {out[i - 1].date()}")
    return out


def _unfitted_copies(models: Any) -> Callable[[], Any]:
    """A factory of fresh model specifications for one cut-off: names as given, model
    objects deep-copied (every cut-off fits its own); fitted objects are refused."""
    items: list[tuple[str | None, Any]]
    if isinstance(models, str):
        return lambda: models
    if isinstance(models, Mapping):
        items = [(str(k), v) for k, v in models.items()]
    else:
        items = [(None, m) for m in models]
    for key, m in items:
        if not isinstance(m, str) and not isinstance(m, type) and is_fitted(m):
            label = key or type(m).__name__
            raise ValueError(f"model {label!r} is already fitted: a backtest fits every model "
                             f"at every cut-off, so give it unfitted (or by name)")

    def fresh() -> Any:
        copies = [(k, m if isinstance(m, str | type) else copy.deepcopy(m)) for k, m in items]
        if isinstance(models, Mapping):
            return dict(copies)  # type: ignore[arg-type]
        return [m for _, m in copies]

    return fresh


def _progress(progress: Callable[[str], None] | bool | None) -> Callable[[str], None]:
    if progress is True:
        def say(message: str) -> None:
            print(message, file=sys.stderr, flush=True)
        return say
    if progress is None or progress is False:
        return lambda _msg: None
    return progress


# --------------------------------------------------------------------------------------
# the backtest
# --------------------------------------------------------------------------------------


def backtest(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    calibration_ends: Sequence[object],
    holdout: str | float,
    observation_end: object = None,
    time_unit: str = "W",
    models: Sequence[Any] | Mapping[str, Any] = DEFAULT_MODELS,
    spend_model: str | Any | None = "gammagamma",
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    interval: float = 0.9,
    progress: Callable[[str], None] | bool | None = None,
    **compare_kwargs: Any,
) -> BacktestResult:
    """Fit and score every model at several calibration cut-offs (rolling origin).

    At each cut-off ``c`` of ``calibration_ends`` this is ``compare_models(transactions,
    calibration_end=c, observation_end=c + holdout, ...)`` — the same models, settings and
    metrics (:mod:`clvmodels.evaluation.comparison`; FHL 2005's calibration/holdout
    comparison) — and the result gathers the metrics of every cut-off, their distribution
    per model and the wins (module docstring).

    Parameters
    ----------
    transactions
        One row per transaction (DataFrame, or a CSV / Parquet path, read once).
    calibration_ends
        The cut-offs (dates), in increasing order, none repeated. Each must leave some
        transactions on or before it (a calibration period) and a full holdout inside the
        data.
    holdout
        The holdout's length after every cut-off: ``"39W"``, ``"90D"``, ``"9M"``, ``"1Y"`` or
        a number of ``time_unit`` units.
    observation_end
        The last day the data cover; every holdout must end by it. Default: the day of the
        last transaction.
    time_unit, models, spend_model, customer_id_col, datetime_col, interval
        As in :func:`compare_models`. Models may be names or unfitted model objects (copied
        for every cut-off); a fitted object is refused.
    progress
        A callable given one plain line per cut-off (no carriage returns or colours), or
        True to print those lines on stderr.
    **compare_kwargs
        Every other setting of :func:`compare_models` (``baselines``, ``segment_col``,
        ``bayes_kwargs``, ``penalizer``, ``customers``, ``monetary_value_col``, ...).

    Returns
    -------
    :class:`BacktestResult`.
    """
    for key in ("calibration_end", "calibration_ends"):
        if key in compare_kwargs:
            raise TypeError(f"backtest() takes calibration_ends, not {key}= twice")
    say = _progress(progress)
    cuts = _cutoffs(calibration_ends)
    ends = [holdout_end(c, holdout, time_unit) for c in cuts]
    fresh_models = _unfitted_copies(models)
    fresh_spend = _unfitted_copies([spend_model]) if spend_model is not None and not \
        isinstance(spend_model, str) else None

    if not isinstance(transactions, pd.DataFrame):
        transactions = read_transactions(transactions)
    if datetime_col not in transactions.columns:
        raise ValueError(f"transactions have no column {datetime_col!r} (datetime_col)")
    days = _parse_dates(transactions[datetime_col])
    if days.notna().sum() == 0:
        raise ValueError(f"column {datetime_col!r} holds no dates")
    first, last = days.min(), days.max()
    data_end = last if observation_end is None else \
        pd.Timestamp(observation_end).normalize()  # type: ignore[arg-type]
    if data_end < last:
        raise ValueError(f"observation_end {data_end.date()} is before the last transaction "
                         f"({last.date()})")
    for cut, end in zip(cuts, ends, strict=True):
        if cut < first:
            raise ValueError(f"cut-off {cut.date()} leaves no calibration period: the first "
                             f"transaction is on {first.date()}")
        if end > data_end:
            where = "the last transaction" if observation_end is None else "observation_end"
            raise ValueError(f"cut-off {cut.date()}: its holdout ({holdout!r}) runs to "
                             f"{end.date()}, past the end of the data ({where}, "
                             f"{data_end.date()})")

    comparisons: dict[str, ModelComparison] = {}
    records: list[tuple[str, str, str, str, float]] = []
    for i, (cut, end) in enumerate(zip(cuts, ends, strict=True), start=1):
        label, end_label = str(cut.date()), str(end.date())
        say(f"Backtest cut-off {i}/{len(cuts)}: calibration to {label}, "
            f"holdout to {end_label}")
        spend = fresh_spend()[0] if fresh_spend is not None else spend_model
        try:
            comp = compare_models(
                transactions, calibration_end=label, observation_end=end_label,
                time_unit=time_unit, models=fresh_models(), spend_model=spend,
                customer_id_col=customer_id_col, datetime_col=datetime_col,
                interval=interval, **compare_kwargs)
        except ValueError as exc:
            raise ValueError(f"cut-off {label}: {exc}") from exc
        comparisons[label] = comp
        for model in comp.metrics.index:
            for metric in METRIC_COLUMNS:
                records.append((label, end_label, str(model), metric,
                                float(comp.metrics.at[model, metric])))

    metrics = pd.DataFrame.from_records(
        records, columns=["calibration_end", "holdout_end", "model", "metric", "value"])
    first_comp = next(iter(comparisons.values()))
    settings = {
        "calibration_ends": list(comparisons),
        "holdout_ends": [str(e.date()) for e in ends],
        "holdout": holdout,
        "observation_end": str(data_end.date()),
        "time_unit": time_unit,
        "models": list(first_comp.settings.get("models", [])),
        "baselines": list(first_comp.settings.get("baselines", [])),
        "interval": interval,
    }
    return BacktestResult(metrics=metrics, summary=_summary(metrics),
                          wins=_wins(comparisons, interval), comparisons=comparisons,
                          settings=settings)


def _summary(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per (model, metric): direction, cut-offs with a value, mean, sd, min, max."""
    order = list(dict.fromkeys(metrics["model"]))
    rows = []
    for model in order:
        mine = metrics.loc[metrics["model"] == model]
        for metric in METRIC_COLUMNS:
            values = mine.loc[mine["metric"] == metric, "value"].dropna().to_numpy(float)
            if len(values) == 0:
                continue
            rows.append({
                "model": model, "metric": metric, "direction": METRIC_DIRECTIONS[metric],
                "cutoffs": len(values), "mean": float(values.mean()),
                "sd": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                "min": float(values.min()), "max": float(values.max()),
            })
    out = pd.DataFrame.from_records(rows, columns=["model", "metric", *SUMMARY_COLUMNS])
    return out.set_index(["model", "metric"])


def _wins(comparisons: Mapping[str, ModelComparison], interval: float) -> pd.DataFrame:
    """Per (metric, model): ranked cut-offs, shared wins, outright and tied wins, win rate."""
    models = list(dict.fromkeys(m for c in comparisons.values() for m in c.metrics.index))
    ranked = [m for m in METRIC_COLUMNS if METRIC_DIRECTIONS[m] is not None]
    count = {m: 0 for m in ranked}
    wins = {(m, name): [0.0, 0, 0] for m in ranked for name in models}
    for comp in comparisons.values():
        best = best_by_metric(comp.metrics, interval=interval)
        for metric, winners in best.items():
            if metric not in count or not winners:
                continue
            count[metric] += 1
            for name in winners:
                cell = wins[(metric, name)]
                cell[0] += 1.0 / len(winners)
                cell[1 if len(winners) == 1 else 2] += 1
    rows = []
    for metric in ranked:
        if count[metric] == 0:
            continue
        for name in models:
            share, outright, tied = wins[(metric, name)]
            rows.append({"metric": metric, "model": name, "ranked_cutoffs": count[metric],
                         "wins": share, "outright": outright, "tied": tied,
                         "win_rate": share / count[metric]})
    out = pd.DataFrame.from_records(rows, columns=["metric", "model", *WIN_COLUMNS])
    return out.set_index(["metric", "model"])
