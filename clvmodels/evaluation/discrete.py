"""Discrete-time holdout: transactions at opportunities (BG/BB), scored like
:func:`~clvmodels.evaluation.compare_models`.

A discrete-time model counts transaction *opportunities* — the yearly fund drive, the weekly
issue, the annual event — so its comparison starts from a summary counted in them, not from
dated transactions: one row per customer with ``frequency`` (transactions at opportunities
1..n), ``recency`` (the opportunity of the last one, 0 if none), ``T`` (n; ``periods`` is
accepted too) and the holdout ``frequency_holdout`` (transactions at the next ``holdout``
opportunities) — the layout :func:`clvmodels.models.bgbb.simulate_bgbb` produces with
``holdout=`` and that Fader, Hardie & Shang (2010) use (6 calibration and 5 holdout years of
the donations data). Turning dated transactions into opportunities is a business decision
(which day counts as "the" opportunity, what a missed one is) made upstream.

Metrics (the columns of :data:`clvmodels.evaluation.METRIC_COLUMNS`, defined in
:mod:`clvmodels.evaluation.comparison`): the calibration fit (``log_likelihood, aic, bic``
or ``elpd_loo``), ``chi_square`` of the calibration histogram (0..k+ transactions, each
customer's own n; FHS 2010 eq. 8), the holdout accuracy per customer (``mae, rmse,
correlation, aggregate_bias`` of the conditional expectation, eq. 13), ``interval_coverage``
of the predictive count distribution and ``tracking_error``: the cohort's expected
transactions in the ``holdout`` opportunities from the unconditional forecast,
sum_i (E[X(n_i + holdout)] - E[X(n_i)]) (eq. 9; each customer from acquisition, ignoring
their own history), against the actual sum_i y_i, minus 1 — as for continuous-time models,
where it is also the tracking figure's holdout error. No value metrics (the summary has no
spend). The ``calibration-rate`` baseline forecasts x / n per opportunity.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from clvmodels._validation import ValidationError, fail_rows, require_columns
from clvmodels.datakinds import KINDS, validate_kind
from clvmodels.diagnostics import conditional_expectation_table
from clvmodels.evaluation.comparison import (
    ModelComparison,
    _baseline_predictions,
    _segment_metrics,
    fit_and_score_counts,
    unless_unavailable,
)
from clvmodels.evaluation.fitting import (
    DEFAULT_BAYES_KWARGS,
    attach_covariates,
    covariate_columns_of,
    resolve_models,
)
from clvmodels.evaluation.metrics import (
    METRIC_COLUMNS,
    count_metrics,
)
from clvmodels.models.protocol import is_posterior
from clvmodels.valuation._transaction import covariate_profiles

__all__ = ["DEFAULT_DISCRETE_MODELS", "DISCRETE_BASELINES", "compare_discrete"]

#: The baseline row added by ``baselines=True``.
DISCRETE_BASELINES: tuple[str, ...] = ("calibration-rate",)

#: Models compared when none are named.
DEFAULT_DISCRETE_MODELS: tuple[str, ...] = ("bgbb",)

_RESERVED = ("frequency", "recency", "T", "periods", "frequency_holdout", "duration_holdout")


def _prepare(data: pd.DataFrame, holdout: int | None, holdout_col: str,
             segment_col: str | None, keep: Sequence[str] = ()) -> tuple[pd.DataFrame, int]:
    """A validated copy with ``T``, ``frequency_holdout`` and ``duration_holdout`` (and the
    columns ``keep``: the models' covariates, checked by the models)."""
    frame = KINDS["discrete"].conform(data)
    validate_kind(frame, "discrete", "discrete summary")
    cols = ["frequency", "recency", "T", holdout_col] + ([segment_col] if segment_col else [])
    require_columns(frame, cols, "discrete summary")
    if holdout is None:
        if "duration_holdout" not in frame.columns:
            raise ValueError("pass holdout= (the number of holdout opportunities) or a "
                             "duration_holdout column")
        values = pd.unique(frame["duration_holdout"])
        if len(values) != 1:
            raise ValidationError("column 'duration_holdout': the holdout must have the same "
                                  "number of opportunities for every customer")
        holdout = values[0]
    if (isinstance(holdout, bool) or not float(holdout).is_integer() or holdout < 1):
        raise ValueError(f"holdout must be a whole number of opportunities >= 1, got "
                         f"{holdout!r}")
    h = int(holdout)
    y = pd.to_numeric(frame[holdout_col], errors="coerce").to_numpy(dtype=float)
    fail_rows(frame, ~np.isfinite(y) | (y < 0) | (y != np.round(y)) | (y > h), holdout_col,
              f"holdout transactions must be whole numbers from 0 to the {h} holdout "
              "opportunities", cols)
    if segment_col is not None:
        fail_rows(frame, frame[segment_col].isna().to_numpy(), segment_col,
                  "missing segment labels", cols)
    out = frame[cols + [c for c in keep if c not in cols]].copy()
    out.attrs = dict(data.attrs)
    out = out.rename(columns={holdout_col: "frequency_holdout"})
    out["frequency_holdout"] = y.astype(np.int64)
    out["duration_holdout"] = float(h)
    return out, h


def _expected_totals(model: Any, data: pd.DataFrame, h: int) -> float:
    """sum_i E[X(n_i + h)]: the cohort's expected transactions from acquisition to ``h``
    opportunities after the calibration (``h = 0``: to its end; a hierarchical model: each
    segment's own expectation)."""
    profiles = covariate_profiles(model, data)
    if profiles is not None:  # each customer with their own covariates, once per profile
        # (a Bayesian model: the posterior mean, a hierarchical one at the population level)
        uT, t_idx = np.unique(data["T"].to_numpy(dtype=float), return_inverse=True)
        E = np.asarray(model.expected_purchases_new_customer(uT + h, covariates=profiles[1]),
                       float)
        return float(E[profiles[0], t_idx].sum())
    col = getattr(model, "segment_col", None) if is_posterior(model) else None
    groups = [(None, data)] if not col else list(data.groupby(col, sort=False))
    total = 0.0
    for label, part in groups:
        T, counts = np.unique(part["T"].to_numpy(dtype=float), return_counts=True)
        kwargs = {"segment": label} if col else {}
        expected = np.asarray(model.expected_purchases_new_customer(T + h, **kwargs), float)
        total += float(counts @ expected.reshape(-1))
    return total


def compare_discrete(
    data: pd.DataFrame,
    *,
    holdout: int | None = None,
    models: Sequence[Any] | Mapping[str, Any] = DEFAULT_DISCRETE_MODELS,
    holdout_col: str = "frequency_holdout",
    segment_col: str | None = None,
    baselines: bool = True,
    bayes_kwargs: Mapping[str, Any] | None = None,
    penalizer: float = 0.0,
    interval: float = 0.9,
    max_frequency: int | None = None,
    progress: Callable[[str], None] | None = None,
    customers: pd.DataFrame | str | os.PathLike | None = None,
    customers_id_col: str | None = None,
) -> ModelComparison:
    """Fit discrete-time models on the calibration opportunities and compare their forecasts
    of the next ``holdout`` opportunities.

    Parameters
    ----------
    data
        One row per customer: ``frequency``, ``recency``, ``T`` (or ``periods``) counted in
        opportunities, and the holdout transactions (``holdout_col``). A table of distinct
        rows with counts is expanded first (``data.loc[data.index.repeat(data["weights"])]``).
        Not modified.
    holdout
        Number of holdout opportunities (default: the ``duration_holdout`` column).
    models
        Registry names of discrete-time models ("bgbb", "bayes-bgbb"), model objects (fitted
        on this calibration data, or unfitted), or a dict name → either; the baseline's name
        may be listed too.
    segment_col
        Column of ``data`` with each customer's segment: Bayesian models named here become
        hierarchical over it; adds ``segment_metrics``.
    baselines
        Add the ``calibration-rate`` row.
    bayes_kwargs, penalizer
        Sampler settings of the Bayesian models, L2 penalty of the maximum-likelihood ones.
    interval
        Probability of the predictive intervals scored by ``interval_coverage``.
    max_frequency
        Last bin of the calibration histogram (default: the largest n, at most 7).
    customers, customers_id_col
        Attribute table for models with covariates (e.g. ``{"bgbb+cov":
        BetaGeoBetaBinom(purchase_covariates=["channel"])}``), joined on the customer id
        (``data``'s index) as in :func:`~clvmodels.evaluation.compare_models`; covariate
        columns already in ``data`` are used as they are.
    progress
        Called with a short message before each step.

    Returns
    -------
    :class:`~clvmodels.evaluation.ModelComparison` (no transactions, spend or valuations;
    ``settings["data_kind"] == "discrete"``); the metrics are defined in the module
    docstring.
    """
    say = progress or (lambda _msg: None)
    if not 0 < interval < 1:
        raise ValueError(f"interval must be in (0, 1), got {interval!r}")
    if segment_col is not None and segment_col in _RESERVED:
        raise ValueError(f"segment_col {segment_col!r} clashes with a summary column name")
    resolved, named = resolve_models(models, kinds=("discrete",), baselines=DISCRETE_BASELINES,
                                     segment_col=segment_col, penalizer=penalizer)
    baseline_names = list(dict.fromkeys([*named, *(DISCRETE_BASELINES if baselines else ())]))
    covariate_cols = covariate_columns_of(resolved.values())
    if customers is not None and not covariate_cols:
        raise ValueError("customers= is an attribute table for models with covariates, and "
                         "none of the models has covariates")
    if covariate_cols:
        data = attach_covariates(data, covariate_cols, customers=customers,
                                 customers_id_col=customers_id_col)
    rfm, h = _prepare(data, holdout, holdout_col, segment_col, keep=covariate_cols)
    k = int(min(7, rfm["T"].max())) if max_frequency is None else max_frequency
    y = rfm["frequency_holdout"].to_numpy(dtype=float)
    x = rfm["frequency"].to_numpy(dtype=float)
    actual_holdout = float(y.sum())

    caught: list[tuple[str, str]] = []
    rows: dict[str, dict[str, float]] = {}
    predictions: dict[str, pd.DataFrame] = {}
    tables: dict[str, dict[str, pd.DataFrame]] = {}
    fitted: dict[str, Any] = {}
    for name, model in resolved.items():
        model, row, pred, hist = fit_and_score_counts(
            model, rfm, y, float(h), name=name, bayes_kwargs=bayes_kwargs, caught=caught,
            max_frequency=k, interval=interval, say=say)
        fitted[name] = model
        cond = conditional_expectation_table(model, rfm, max_frequency=k, interval=interval)
        tables[name] = {k: v for k, v in (("calibration_histogram", hist),
                                          ("conditional_expectation", cond)) if v is not None}
        holdout_expected = unless_unavailable(
            lambda m=model: _expected_totals(m, rfm, h) - _expected_totals(m, rfm, 0), name,
            caught)
        if holdout_expected is not None:
            row["tracking_error"] = (holdout_expected / actual_holdout - 1.0
                                     if actual_holdout > 0 else float("nan"))
        predictions[name] = pred
        rows[name] = row
    for name in baseline_names:
        started = time.perf_counter()
        pred = _baseline_predictions(name, rfm, None, time_unit="D", with_value=False)
        row = {c: float("nan") for c in METRIC_COLUMNS}
        row.update(count_metrics(y, pred["expected_purchases"].to_numpy()))
        row["fit_seconds"] = time.perf_counter() - started
        predictions[name] = pred
        rows[name] = row
    metrics = pd.DataFrame.from_dict(rows, orient="index", columns=list(METRIC_COLUMNS))
    metrics.index.name = "model"
    segment_metrics = (None if segment_col is None
                       else _segment_metrics(rfm, predictions, segment_col, None))
    T = rfm["T"].to_numpy()
    summary = {
        "customers": len(rfm), "opportunities_calibration": int(T.max()),
        "opportunities_min": int(T.min()), "holdout_opportunities": h,
        "transactions_calibration": int(x.sum()), "transactions_holdout": int(y.sum()),
        "no_transaction": int((x == 0).sum()), "share_no_transaction": float(np.mean(x == 0)),
        "customers_active_in_holdout": int((y > 0).sum()),
        "time_unit": rfm.attrs.get("time_unit"),
        "frequency_histogram": np.bincount(np.minimum(x, k).astype(np.int64),
                                           minlength=k + 1).tolist(),
    }
    settings = {
        "data_kind": "discrete", "holdout_length": float(h), "time_unit":
        rfm.attrs.get("time_unit"), "models": list(resolved),
        "model_classes": {n: type(m).__name__ for n, m in fitted.items()},
        "baselines": baseline_names, "segment_col": segment_col,
        "bayes_kwargs": {**DEFAULT_BAYES_KWARGS, **dict(bayes_kwargs or {})},
        "penalizer": penalizer, "interval": interval, "max_frequency": k,
        "valuation_model": None,
    }
    return ModelComparison(
        metrics=metrics, rfm=rfm, models=fitted, spend_model=None, predictions=predictions,
        valuations={}, tables=tables, segment_metrics=segment_metrics,
        data_summary=summary, kpis=None, settings=settings, fit_warnings=caught,
        transactions=None)
