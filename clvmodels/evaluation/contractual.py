"""Contractual holdout: fit subscription models on the renewals seen by a calibration date and
score them on the later renewal periods.

:func:`compare_contractual` summarises the subscription records at ``calibration_end``
(:func:`clvmodels.contract.contract_summary`), fits every model on that summary, and follows
the customers who were still active then through the renewal decisions that fall in the
holdout ``(calibration_end, observation_end]`` — the projection Fader & Hardie (2007) make
from years 1-7 to years 8-12. The result, a :class:`ContractualComparison`, holds one row of
metrics per model; :func:`clvmodels.report.write_report` renders it.

Metric definitions
------------------
Customer i, active at ``calibration_end`` after paying ``n_i`` periods, meets ``k_i`` renewal
decisions in the holdout (the anniversaries of their start that fall in it: the periods an
active customer would have paid by ``observation_end`` minus ``n_i``) and makes ``r_i <= k_i``
of them (their periods paid by ``observation_end`` minus ``n_i``; a customer who gave notice
after their last anniversary in the holdout made all ``k_i``). The model's P(customer i pays
j more periods) is its ``conditional_survival`` ``c_i(j)`` = S(n_i + j - 1) / S(n_i - 1)
[F&H 2007 eq. 9 for the sBG: the survival of a new customer with beta + n_i - 1 in place of
beta]; its expected holdout renewals are ``expected_renewals(data, k_i)`` = sum_{j<=k_i}
c_i(j). A Bayesian model gives posterior means (posterior predictive probabilities).

Fit (calibration summary)
    ``log_likelihood, aic, bic`` (maximum-likelihood fits and the baseline), ``elpd_loo``
    (Bayesian fits: PSIS-LOO, same scale as the log-likelihood).
Holdout (per customer)
    ``holdout_log_likelihood``: sum_i log P(r_i | history) with P(r) = c_i(r) - c_i(r + 1)
    for r < k_i (renewed r times, then left) and c_i(k_i) for r = k_i — a proper score of the
    whole predictive distribution (higher is better).
    ``mae``, ``rmse``, ``correlation``, ``aggregate_bias`` of r_i against the expected
    renewals (:func:`clvmodels.evaluation.count_metrics`).
Retention (aggregate)
    ``tracking_error``: customers expected to be paying after their last holdout decision,
    sum_i c_i(k_i), over those who were, minus 1. ``retention_mae``: mean absolute error, over
    the holdout decisions j = 1..max k, of the share of the customers at risk (k_i >= j)
    still paying after j decisions (the table :attr:`ContractualComparison.tables`
    ``["holdout_retention"]``).

Baseline
--------
``constant-churn``: every customer leaves with the same probability c at each renewal
decision, c = the pooled churn rate of the calibration summary
(:func:`clvmodels.subscription_kpis.churn_rate`, the maximum-likelihood estimate of this
geometric model): c_i(j) = (1 - c)^j whatever the history. It is the sBG without
heterogeneity (alpha, beta -> inf at alpha / (alpha + beta) = c), the "our churn is x% a
month" projection; Fader & Hardie (2010) show it understates the value of an existing base,
because the customers who stay are the low-churn ones.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clvmodels._contract_rules import observation_end_day, parse_days
from clvmodels._validation import ValidationError, require_columns
from clvmodels.contract import contract_summary, paid_periods
from clvmodels.diagnostics_discrete import retention_curve_table
from clvmodels.evaluation.fitting import (
    DEFAULT_BAYES_KWARGS,
    attach_covariates,
    covariate_columns_of,
    first_value,
    fit_model,
    loo_or_nan,
    resolve_models,
)
from clvmodels.evaluation.metrics import best_by_metric, count_metrics
from clvmodels.models.protocol import is_posterior
from clvmodels.subscription_kpis import churn_rate

__all__ = [
    "CONTRACTUAL_BASELINES",
    "CONTRACTUAL_METRIC_COLUMNS",
    "CONTRACTUAL_METRIC_DIRECTIONS",
    "DEFAULT_CONTRACTUAL_MODELS",
    "ConstantChurn",
    "ContractualComparison",
    "compare_contractual",
]

#: Metric columns of :attr:`ContractualComparison.metrics`, in order.
CONTRACTUAL_METRIC_COLUMNS: tuple[str, ...] = (
    "log_likelihood", "aic", "bic", "elpd_loo", "holdout_log_likelihood",
    "mae", "rmse", "correlation", "aggregate_bias", "tracking_error", "retention_mae",
    "fit_seconds",
)

#: Which value of each metric is best (see :func:`clvmodels.evaluation.best_by_metric`).
CONTRACTUAL_METRIC_DIRECTIONS: dict[str, str | None] = {
    "log_likelihood": "max", "aic": "min", "bic": "min", "elpd_loo": "max",
    "holdout_log_likelihood": "max", "mae": "min", "rmse": "min", "correlation": "max",
    "aggregate_bias": "zero", "tracking_error": "zero", "retention_mae": "min",
    "fit_seconds": None,
}

#: The baseline row added by ``baselines=True``.
CONTRACTUAL_BASELINES: tuple[str, ...] = ("constant-churn",)

#: Models compared when none are named.
DEFAULT_CONTRACTUAL_MODELS: tuple[str, ...] = ("sbg",)

_RESERVED = ("periods", "churned", "cohort", "tenures")


# --------------------------------------------------------------------------------------
# the baseline: a constant churn rate (the geometric model)
# --------------------------------------------------------------------------------------


class ConstantChurn:
    """Every customer leaves with probability c at each renewal decision (geometric
    lifetimes, no heterogeneity), c fitted as the pooled churn rate of a contract summary.

    The contractual predictions a comparison needs — ``survival(t)`` = (1 - c)^t,
    ``retention_rate``, ``churn_probability``, ``expected_lifetime`` = 1 / c,
    ``conditional_survival``, ``expected_renewals`` — and the fit statistics of the
    maximum-likelihood estimate c = churns / decisions at risk.
    """

    name = "constant-churn"
    label = "constant churn rate"
    data_kind = "contractual"
    param_names = ("churn",)

    def fit(self, data: pd.DataFrame) -> ConstantChurn:
        """Estimate c from ``data`` (``periods``, ``churned``); returns ``self``."""
        c = float(churn_rate(data))
        if not 0 < c < 1:
            raise ValidationError("column 'churned': a constant churn rate needs both churns "
                                  "and renewals in the data")
        periods = data["periods"].to_numpy(dtype=float)
        churned = data["churned"].to_numpy(dtype=bool)
        decisions = float(np.where(churned, periods, periods - 1.0).sum())
        lost = float(churned.sum())
        self.params_ = pd.Series({"churn": c}, name="estimate")
        se = math.sqrt(c * (1.0 - c) / decisions)
        self.standard_errors_ = pd.Series({"churn": se}, name="se")
        self.log_likelihood_ = (decisions - lost) * math.log1p(-c) + lost * math.log(c)
        self.n_customers_ = len(data)
        self.aic_ = 2.0 - 2.0 * self.log_likelihood_
        self.bic_ = math.log(len(data)) - 2.0 * self.log_likelihood_
        self.time_unit_ = data.attrs.get("time_unit")
        return self

    @property
    def _keep(self) -> float:
        return 1.0 - float(self.params_["churn"])

    def survival(self, t: float | np.ndarray) -> np.ndarray:
        """S(t) = (1 - c)^t."""
        return np.asarray(self._keep ** np.asarray(t, dtype=float))

    def retention_rate(self, t: float | np.ndarray) -> np.ndarray:
        """r(t) = 1 - c at every t >= 1."""
        return np.full(np.shape(t), self._keep)

    def churn_probability(self, t: float | np.ndarray) -> np.ndarray:
        """P(T = t) = (1 - c)^(t - 1) c."""
        return np.asarray(self._keep ** (np.asarray(t, dtype=float) - 1.0) * (1.0 - self._keep))

    def expected_lifetime(self) -> float:
        """E[T] = 1 / c."""
        return 1.0 / (1.0 - self._keep)

    def conditional_survival(self, data: pd.DataFrame, t: float) -> pd.Series:
        """P(pays t more periods) = (1 - c)^t for active customers, 0 for churned ones."""
        out = np.where(data["churned"].to_numpy(dtype=bool) & (t > 0), 0.0, self._keep ** t)
        return pd.Series(out, index=data.index, name="conditional_survival")

    def expected_renewals(self, data: pd.DataFrame, t: int) -> pd.Series:
        """sum_{j=1..t} (1 - c)^j for active customers, 0 for churned ones."""
        q = self._keep
        total = q * (1.0 - q ** int(t)) / (1.0 - q)
        out = np.where(data["churned"].to_numpy(dtype=bool), 0.0, total)
        return pd.Series(out, index=data.index, name="expected_renewals")

    def summary(self) -> pd.DataFrame:
        """Parameter table: estimate, standard error (binomial), 95% interval."""
        c, se = float(self.params_["churn"]), float(self.standard_errors_["churn"])
        out = pd.DataFrame({"estimate": [c], "se": [se], "lower 95%": [c - 1.959964 * se],
                            "upper 95%": [c + 1.959964 * se]}, index=["churn"])
        out.attrs.update(log_likelihood=self.log_likelihood_, aic=self.aic_, bic=self.bic_,
                         n_customers=self.n_customers_, converged=True,
                         time_unit=self.time_unit_)
        return out


# --------------------------------------------------------------------------------------
# the comparison
# --------------------------------------------------------------------------------------


@dataclass
class ContractualComparison:
    """What :func:`compare_contractual` produced.

    Attributes
    ----------
    metrics
        One row per model (index: the names given) and per baseline, the columns of
        :data:`CONTRACTUAL_METRIC_COLUMNS` (NaN where a metric does not apply).
    calibration
        The contract summary at ``calibration_end`` the models were fitted on (and the
        segment column).
    holdout
        One row per customer active at ``calibration_end``: ``periods`` (paid by then),
        ``decisions`` (k: renewal decisions in the holdout), ``renewals`` (r: made),
        ``paying_at_end`` (r = k) and ``churned`` (by ``observation_end``).
    models
        Fitted models by name (the baselines are in :attr:`baselines`).
    baselines
        Fitted baselines by name (:class:`ConstantChurn`).
    predictions
        Per name, per holdout customer: ``expected_renewals``, ``expected_paying_at_end``
        (c_i(k_i)) and ``probability`` (of the observed r_i).
    tables
        Per name: ``holdout_retention`` (per holdout decision j: ``at_risk``, ``actual`` and
        ``expected`` customers still paying, their ``*_share`` of those at risk, ``error``)
        and ``survival`` (:func:`clvmodels.diagnostics_discrete.retention_curve_table`: the
        calibration customers' Kaplan-Meier survival through ``observation_end`` against the
        model's S(t), calibrated through the last decision seen by ``calibration_end``).
    segment_metrics
        With ``segment_col``: holdout metrics per (model, segment).
    data_summary
        Headline numbers (customers, active, churned, cohorts, renewals, churn rates).
    settings
        The run's configuration.
    fit_warnings
        Warnings raised while fitting, as ``(model, message)`` pairs.
    final
        The contract summary at ``observation_end`` of the calibration customers.
    """

    metrics: pd.DataFrame
    calibration: pd.DataFrame
    holdout: pd.DataFrame
    models: dict[str, Any]
    baselines: dict[str, Any]
    predictions: dict[str, pd.DataFrame]
    tables: dict[str, dict[str, pd.DataFrame]]
    segment_metrics: pd.DataFrame | None
    data_summary: dict[str, Any]
    settings: dict[str, Any]
    fit_warnings: list[tuple[str, str]] = field(default_factory=list)
    final: pd.DataFrame | None = None
    #: what the report renders: a comparison of contractual models
    kind: ClassVar[str] = "contractual"

    @property
    def best(self) -> dict[str, list[str]]:
        """Best row(s) per ranked metric column."""
        return best_by_metric(self.metrics, directions=CONTRACTUAL_METRIC_DIRECTIONS)


def _read(path: str | os.PathLike, start_col: str, end_col: str) -> pd.DataFrame:
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"no such file: {p}")
    if p.lower().endswith((".parquet", ".pq", ".parq")):
        return pd.read_parquet(p)
    header = pd.read_csv(p, nrows=0).columns
    return pd.read_csv(p, dtype={c: "string" for c in (start_col, end_col) if c in header})


def _day_number(day: pd.Timestamp) -> int:
    return int((day - pd.Timestamp("1970-01-01")).days)


def _survival_matrix(model: Any, active: pd.DataFrame, K: int) -> np.ndarray:
    """c_i(j) for j = 0..K: (customers, K + 1), column 0 = 1."""
    out = np.ones((len(active), K + 1))
    for j in range(1, K + 1):
        out[:, j] = np.asarray(model.conditional_survival(active, j), dtype=float)
    return out


def _expected_renewals(model: Any, active: pd.DataFrame, k: np.ndarray) -> np.ndarray:
    """``model.expected_renewals`` over each customer's own number of decisions."""
    out = np.zeros(len(active))
    for kv in np.unique(k):
        sel = np.flatnonzero(k == kv)
        if kv > 0:
            out[sel] = np.asarray(model.expected_renewals(active.iloc[sel], int(kv)), float)
    return out


def _holdout_retention(cs: np.ndarray, k: np.ndarray, r: np.ndarray) -> pd.DataFrame:
    """Per holdout decision j: customers at risk (k >= j), actual and expected paying."""
    K = cs.shape[1] - 1
    j = np.arange(K + 1)
    at_risk = (k[:, None] >= j[None, :])
    actual = (at_risk & (r[:, None] >= j[None, :])).sum(axis=0).astype(float)
    expected = np.where(at_risk, cs, 0.0).sum(axis=0)
    n = at_risk.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        a_share, e_share = actual / n, expected / n
    return pd.DataFrame({"at_risk": n, "actual": actual, "expected": expected,
                         "actual_share": a_share, "expected_share": e_share,
                         "error": e_share - a_share},
                        index=pd.RangeIndex(0, K + 1, name="decision"))


def _score(model: Any, active: pd.DataFrame, k: np.ndarray, r: np.ndarray
           ) -> tuple[dict[str, float], pd.DataFrame, pd.DataFrame]:
    """Holdout metrics, per-customer predictions and the holdout retention table."""
    K = int(k.max())
    cs = _survival_matrix(model, active, K)
    expected = _expected_renewals(model, active, k)
    rows = np.arange(len(active))
    nxt = np.where(r < k, cs[rows, np.minimum(r + 1, K)], 0.0)
    prob = np.clip(cs[rows, r] - nxt, 0.0, 1.0)
    paying = cs[rows, k]
    out = count_metrics(r, expected)
    out["holdout_log_likelihood"] = float(np.sum(np.log(np.maximum(prob, 1e-300))))
    n_paying = float(np.sum(r == k))
    out["tracking_error"] = paying.sum() / n_paying - 1.0 if n_paying > 0 else float("nan")
    table = _holdout_retention(cs, k, r)
    steps = table.iloc[1:]
    steps = steps.loc[steps["at_risk"] > 0]
    out["retention_mae"] = float(steps["error"].abs().mean()) if len(steps) else float("nan")
    table.attrs.update(tracking_error=out["tracking_error"])
    pred = pd.DataFrame({"expected_renewals": expected, "expected_paying_at_end": paying,
                         "probability": prob}, index=active.index)
    return out, pred, table


def compare_contractual(
    subscriptions: pd.DataFrame | str | os.PathLike,
    *,
    calibration_end: object,
    observation_end: object,
    models: Sequence[Any] | Mapping[str, Any] = DEFAULT_CONTRACTUAL_MODELS,
    period: str = "M",
    customer_id_col: str = "customer_id",
    start_col: str = "start",
    end_col: str = "end",
    segment_col: str | None = None,
    baselines: bool = True,
    bayes_kwargs: Mapping[str, Any] | None = None,
    penalizer: float = 0.0,
    date_format: str | None = None,
    max_gap_days: int = 0,
    engine: str = "pandas",
    progress: Callable[[str], None] | None = None,
    customers: pd.DataFrame | str | os.PathLike | None = None,
    customers_id_col: str | None = None,
) -> ContractualComparison:
    """Fit contractual models on the renewals seen by ``calibration_end`` and score them on
    the renewal decisions up to ``observation_end``.

    Parameters
    ----------
    subscriptions
        One row per subscription record (customer id, start date, end date or empty while
        active): a DataFrame, or a CSV / Parquet path. Records starting after
        ``observation_end`` are left out.
    calibration_end, observation_end
        The calibration date (the models see the subscriptions as they stood on it; records
        starting later are left out, so customers acquired later are not scored) and the end
        of the holdout (both inclusive).
    models
        Registry names of contractual models ("sbg", "bayes-sbg"), model objects (fitted on
        this calibration summary, or unfitted), or a dict name → either; the baseline's
        name ("constant-churn") may be listed too.
    period
        Length of a period ("M": monthly calendar anniversaries, "Y", "W", "D"), as in
        :func:`clvmodels.contract.contract_summary`.
    customer_id_col, start_col, end_col, date_format, max_gap_days, engine
        Passed to :func:`clvmodels.contract.contract_summary`.
    segment_col
        Column of ``subscriptions`` with each customer's segment (its value on their first
        record): Bayesian models named here become hierarchical over it, maximum-likelihood
        ones are pooled; adds :attr:`ContractualComparison.segment_metrics`.
    baselines
        Add the ``constant-churn`` row.
    bayes_kwargs
        Sampler settings of the Bayesian models fitted here (defaults
        :data:`clvmodels.evaluation.DEFAULT_BAYES_KWARGS`).
    penalizer
        L2 penalty of the maximum-likelihood models named here.
    progress
        Called with a short message before each step.
    customers, customers_id_col
        Customer attributes for models with covariates (e.g.
        ``{"sbg+cov": ShiftedBetaGeo(dropout_covariates=["plan"])}``): a table (frame, or
        CSV / Parquet file) keyed by its index or its column ``customers_id_col`` (default
        ``customer_id_col`` when it has one), joined onto the calibration summary with
        :func:`clvmodels.join_customers`. A covariate column not in ``customers`` is read
        from ``subscriptions`` (each customer's value on their first record, as
        ``segment_col``). :attr:`ContractualComparison.calibration` then carries the
        covariate columns; every holdout prediction uses each subscriber's own attributes,
        and a covariate model's survival curve (the ``survival`` table) is the calibration
        customers' mean S_i(t) (:func:`clvmodels.diagnostics_discrete.retention_curve_table`
        with ``covariates``). A customer without attributes, or with a level the fit did
        not see, is refused, naming the column and the customers.

    Returns
    -------
    :class:`ContractualComparison`; the metric definitions are in the module docstring.
    """
    say = progress or (lambda _msg: None)
    cal_day = observation_end_day(calibration_end)
    obs_day = observation_end_day(observation_end)
    if obs_day <= cal_day:
        raise ValueError(f"observation_end ({obs_day.date()}) must be after calibration_end "
                         f"({cal_day.date()}): the holdout is empty")
    if segment_col is not None and segment_col in _RESERVED:
        raise ValueError(f"segment_col {segment_col!r} clashes with a contract summary column")
    resolved, named = resolve_models(models, kinds=("contractual",),
                                     baselines=CONTRACTUAL_BASELINES, segment_col=segment_col,
                                     penalizer=penalizer)
    baseline_names = list(dict.fromkeys([*named, *(CONTRACTUAL_BASELINES if baselines
                                                    else ())]))
    if not isinstance(subscriptions, pd.DataFrame):
        say("Reading subscriptions")
        subscriptions = _read(subscriptions, start_col, end_col)
    options = dict(customer_id_col=customer_id_col, start_col=start_col, end_col=end_col,
                   period=period, engine=engine, date_format=date_format,
                   max_gap_days=max_gap_days)
    require_columns(subscriptions, [customer_id_col, start_col, end_col], "subscriptions")
    start = parse_days(subscriptions[start_col], start_col, date_format).days
    # records starting after the holdout are not part of it (unparseable starts stay, for
    # the summary to name them)
    in_window = np.flatnonzero(start <= _day_number(obs_day))
    subscriptions, start = subscriptions.iloc[in_window], start[in_window]
    say("Summarising the subscriptions at the end of the holdout")
    final = contract_summary(subscriptions, observation_end=obs_day, **options)  # validates
    keep = np.flatnonzero(start <= _day_number(cal_day))
    if len(keep) == 0:
        raise ValidationError(f"column {start_col!r}: no subscription starts on or before "
                              f"calibration_end={cal_day.date()}")
    early = subscriptions.iloc[keep]
    say("Summarising the subscriptions at the calibration end")
    calib = contract_summary(early, observation_end=cal_day, **options)
    ids = early[customer_id_col].to_numpy()
    first_start = pd.Series(start[keep]).groupby(ids).min().reindex(calib.index)
    if segment_col is not None:
        seg = first_value(early, value_col=segment_col, customer_id_col=customer_id_col,
                          order=pd.Series(start[keep]), what="subscriptions")
        calib[segment_col] = seg.reindex(calib.index).to_numpy()
    covariate_cols = covariate_columns_of(resolved.values())
    clash = [c for c in covariate_cols if c in _RESERVED]
    if clash:
        raise ValueError(f"covariate column(s) {clash} clash with contract summary columns")
    if covariate_cols:
        say("Joining the customer attributes")
        calib = attach_covariates(calib, covariate_cols, customers=customers,
                                  customers_id_col=customers_id_col, transactions=early,
                                  customer_id_col=customer_id_col,
                                  order=pd.Series(start[keep]))
    elif customers is not None:
        raise ValueError("customers= is an attribute table for models with covariates, and "
                         "none of the models has covariates")
    final = final.loc[calib.index]

    is_active = ~calib["churned"].to_numpy(dtype=bool)
    active = calib.loc[is_active]
    if len(active) == 0:
        raise ValidationError(f"column {end_col!r}: nobody is active at calibration_end="
                              f"{cal_day.date()}, so there are no renewals to forecast")
    s_first = first_start.to_numpy()[is_active].astype(np.int64)
    never = np.zeros(len(active), dtype=bool)
    k = (paid_periods(s_first, np.full(len(active), _day_number(obs_day)), never, period)
         - paid_periods(s_first, np.full(len(active), _day_number(cal_day)), never, period))
    if k.max() < 1:
        raise ValueError(f"no renewal decision falls in the holdout: observation_end "
                         f"({obs_day.date()}) is less than one period ({period}) after "
                         f"calibration_end ({cal_day.date()})")
    r = np.clip(final["periods"].to_numpy()[is_active] - active["periods"].to_numpy(), 0, k)
    holdout = pd.DataFrame({"periods": active["periods"].to_numpy(), "decisions": k,
                            "renewals": r, "paying_at_end": r == k,
                            "churned": final["churned"].to_numpy()[is_active]},
                           index=active.index)
    if segment_col is not None:
        holdout[segment_col] = active[segment_col].to_numpy()
    seen = np.where(calib["churned"], calib["periods"], calib["periods"] - 1)
    through = int(seen.max())

    caught: list[tuple[str, str]] = []
    rows: dict[str, dict[str, float]] = {}
    predictions: dict[str, pd.DataFrame] = {}
    tables: dict[str, dict[str, pd.DataFrame]] = {}
    fitted: dict[str, Any] = {}
    fitted_baselines: dict[str, Any] = {}
    candidates = [(n, m, False) for n, m in resolved.items()] + [
        (n, ConstantChurn(), True) for n in baseline_names]
    for name, model, is_baseline in candidates:
        say(f"Fitting {name}")
        row = {c: float("nan") for c in CONTRACTUAL_METRIC_COLUMNS}
        if is_baseline:
            started = time.perf_counter()
            model.fit(calib)
            row["fit_seconds"] = time.perf_counter() - started
            fitted_baselines[name] = model
        else:
            model, row["fit_seconds"] = fit_model(model, calib, bayes_kwargs or {}, name,
                                                  caught)
            fitted[name] = model
        if is_posterior(model):
            row["elpd_loo"] = loo_or_nan(model, name, caught)
        else:
            row.update(log_likelihood=float(model.log_likelihood_), aic=float(model.aic_),
                       bic=float(model.bic_))
        say(f"Scoring {name}")
        scores, predictions[name], retention = _score(model, active, k, r)
        row.update(scores)
        survival = retention_curve_table(
            model, final, calibrated_through=through,
            covariates=calib if getattr(model, "has_covariates", False) else None)
        tables[name] = {"holdout_retention": retention, "survival": survival}
        rows[name] = row
    metrics = pd.DataFrame.from_dict(rows, orient="index",
                                     columns=list(CONTRACTUAL_METRIC_COLUMNS))
    metrics.index.name = "model"
    segment_metrics = (None if segment_col is None else
                       _segment_metrics(holdout, predictions, segment_col))
    settings = {
        "calibration_end": str(cal_day.date()), "observation_end": str(obs_day.date()),
        "period": period, "time_unit": period, "models": list(resolved),
        "model_classes": {n: type(m).__name__ for n, m in fitted.items()},
        "baselines": baseline_names, "segment_col": segment_col,
        "bayes_kwargs": {**DEFAULT_BAYES_KWARGS, **dict(bayes_kwargs or {})},
        "penalizer": penalizer, "customer_id_col": customer_id_col, "start_col": start_col,
        "end_col": end_col, "engine": engine, "max_gap_days": max_gap_days,
        "calibrated_through": through,
        "covariates": {n: m.covariate_groups for n, m in fitted.items()
                       if getattr(m, "has_covariates", False)},
    }
    summary = _data_summary(calib, final, holdout, subscriptions, customer_id_col)
    return ContractualComparison(
        metrics=metrics, calibration=calib, holdout=holdout, models=fitted,
        baselines=fitted_baselines, predictions=predictions, tables=tables,
        segment_metrics=segment_metrics, data_summary=summary, settings=settings,
        fit_warnings=caught, final=final)


def _data_summary(calib: pd.DataFrame, final: pd.DataFrame, holdout: pd.DataFrame,
                  subscriptions: pd.DataFrame, customer_id_col: str) -> dict[str, Any]:
    active = holdout
    n_all = subscriptions[customer_id_col].nunique()
    seen = np.where(calib["churned"], calib["periods"], calib["periods"] - 1)
    cohorts = calib["cohort"].astype(str)
    return {
        "customers": len(calib),
        "customers_acquired_later": int(n_all - len(calib)),
        "active_at_calibration_end": len(active),
        "churned_by_calibration_end": int(calib["churned"].sum()),
        "cohorts": int(cohorts.nunique()),
        "first_cohort": str(cohorts.min()),
        "last_cohort": str(cohorts.max()),
        "calibration_end": calib.attrs.get("observation_end"),
        "observation_end": final.attrs.get("observation_end"),
        "period": calib.attrs.get("period"),
        "renewal_decisions_calibration": int(seen.sum()),
        "churn_rate_calibration": float(churn_rate(calib)),
        "holdout_decisions": int(active["decisions"].max()),
        "holdout_decisions_at_risk": int(active["decisions"].sum()),
        "renewals_holdout": int(active["renewals"].sum()),
        "paying_at_end": int(active["paying_at_end"].sum()),
        "churned_in_holdout": int((active["renewals"] < active["decisions"]).sum()),
        "churn_rate_holdout": float(
            (active["renewals"] < active["decisions"]).sum()
            / max(int(np.minimum(active["renewals"] + 1, active["decisions"]).sum()), 1)),
    }


def _segment_metrics(holdout: pd.DataFrame, predictions: dict[str, pd.DataFrame],
                     segment_col: str) -> pd.DataFrame:
    """Holdout renewal metrics per (model, segment)."""
    r = holdout["renewals"].to_numpy(dtype=float)
    paying = holdout["paying_at_end"].to_numpy(dtype=bool)
    seg = holdout[segment_col].to_numpy()
    labels = pd.unique(seg)
    try:
        labels = sorted(labels)
    except TypeError:  # labels of mixed types: keep order of appearance
        pass
    records = []
    for name, pred in predictions.items():
        expected = pred["expected_renewals"].to_numpy(dtype=float)
        end = pred["expected_paying_at_end"].to_numpy(dtype=float)
        for label in labels:
            mask = seg == label
            rec: dict[str, Any] = {"model": name, "segment": label,
                                   "customers": int(mask.sum()), "actual": float(r[mask].sum()),
                                   "predicted": float(expected[mask].sum())}
            rec.update(count_metrics(r[mask], expected[mask]))
            n_paying = float(paying[mask].sum())
            rec["tracking_error"] = (float(end[mask].sum()) / n_paying - 1.0 if n_paying > 0
                                     else float("nan"))
            rec["holdout_log_likelihood"] = float(np.sum(np.log(np.maximum(
                pred["probability"].to_numpy(dtype=float)[mask], 1e-300))))
            records.append(rec)
    return pd.DataFrame.from_records(records).set_index(["model", "segment"])
