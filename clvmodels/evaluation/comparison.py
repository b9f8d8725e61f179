"""Holdout evaluation: fit models on a calibration period, score them on the holdout.

:func:`compare_models` splits the transactions at ``calibration_end``
(:func:`clvmodels.calibration_holdout_split`), fits every model on the calibration period and
compares its forecasts for the holdout period ``(calibration_end, observation_end]`` with
what the customers actually did — the comparisons the literature makes (Fader, Hardie & Lee
2005; Batislam et al. 2007; see ``REFERENCE.md``). The result, a :class:`ModelComparison`,
holds one row of metrics per model; :func:`clvmodels.report.write_report` renders it (this
module never imports the report). Models are named as the registry names them; only
continuous-time transaction models are taken here (:func:`clvmodels.evaluation.compare_discrete`
takes the BG/BB, :func:`clvmodels.evaluation.compare_contractual` the sBG).

Metric definitions
------------------
Notation: customer i has ``x_i`` repeat transactions in calibration and ``y_i`` in the
holdout of length ``h`` (time units); ``yhat_i`` is the model's conditional expectation
``E[Y_i(h) | x_i, t_x,i, T_i]`` (the posterior mean for a Bayesian model).

Fit (calibration data)
    ``log_likelihood, aic, bic``: maximum-likelihood fits only (NaN otherwise).
    ``elpd_loo``: Bayesian fits only, PSIS-LOO expected log predictive density summed over
    customers (:meth:`~clvmodels.models.bayes.BayesianModel.loo`); on the same scale as the
    log-likelihood (higher is better).
    ``chi_square``: sum over the bins 0, 1, ..., ``max_frequency - 1`` and
    ``max_frequency``+ of (observed - expected)^2 / expected, where expected is the number
    of customers the model expects with that calibration frequency given their own T
    (FHL 2005, Figure 1; :func:`clvmodels.diagnostics.calibration_histogram_table`).
Holdout transactions (per customer)
    ``mae`` = mean |y - yhat|, ``rmse`` = sqrt(mean (y - yhat)^2), ``correlation`` =
    Pearson correlation of y and yhat (the published CDNOW figures: BG/NBD 0.626, Pareto/NBD
    0.630), ``aggregate_bias`` = sum yhat / sum y - 1 (negative: the model under-forecasts).
Tracking (aggregate)
    ``tracking_error`` = predicted / actual - 1 for the repeat transactions of the whole
    cohort *in the holdout*: the model's unconditional expectation
    ``sum_i (E[X(T_i + h)] - E[X(T_i)])`` (each customer from their first purchase, ignoring
    their own history, as in the tracking plots of FHL 2005, Figures 2-3) against
    ``sum_i y_i`` — the ``holdout_percent_error`` of
    :func:`clvmodels.diagnostics.tracking_table` / 100, the number in the tracking figure's
    legend. ``aggregate_bias`` compares the same actual total with the *conditional*
    expectations (each customer's own history), so the two differ by what conditioning on
    the calibration record adds. Models only; a hierarchical Bayesian model is tracked at
    its population level.
Value (ranking quality)
    A model's predicted value of customer i over the holdout is
    ``yhat_i × E[M_i]`` — expected holdout transactions times the spend model's expected
    spend per transaction, **undiscounted** (computed as
    :func:`clvmodels.customer_lifetime_value` with horizon ``h``, one period and a zero
    discount rate) — and the actual value is the holdout revenue
    ``frequency_holdout × monetary_value_holdout``, undiscounted as well.
    ``spearman_clv``: Spearman rank correlation of predicted and actual value.
    ``gini_clv``: normalised Gini of the predicted ranking — the area between the
    cumulative-gains (Lorenz / CAP) curve of actual revenue, customers sorted by predicted
    value, and the diagonal, divided by the same area for the perfect ranking (1 = perfect,
    0 = random). Customers with tied predictions share their revenue evenly (the curve is
    linear across a tie), so ties earn no credit (:func:`clvmodels.diagnostics.gains_table`).
    ``top_decile_capture``: share of the total holdout revenue that comes from the 10 % of
    customers with the highest predicted value (ties shared pro rata).
Intervals
    ``interval_coverage``: share of customers whose holdout count y lies inside the central
    ``interval`` (default 90 %) *predictive* interval of their holdout count — the
    distribution of the count itself, not the (much narrower) credible interval of its
    expectation. Given a customer's history, a customer alive at T behaves as a new customer
    with updated parameters (BG/NBD: r + x, alpha + T, a, b + x; MBG/NBD: b + x + 1;
    Pareto/NBD: r + x, alpha + T, s, beta + T), so
    ``P(Y(h) = y | history) = P(alive) P_new(y; updated, h) + (1 - P(alive)) 1{y = 0}``
    — the model's own ``conditional_purchase_count_probability`` (the transaction protocol).
    For a Bayesian model this is averaged over the posterior draws (the posterior
    predictive); for a maximum-likelihood model the point estimate is plugged in (parameter
    uncertainty ignored). The interval is
    ``[F^-1(q), F^-1(1 - q)]``, ``q = (1 - interval) / 2``; for a discrete count a calibrated
    model covers *at least* ``interval`` of the customers.
``fit_seconds``
    Wall time of the fit (MLE: optimiser and Hessian; Bayesian: compiling, sampling and the
    pointwise log-likelihood); for a baseline, the time to compute it.

Baselines (rows beside the models)
----------------------------------
``historic-clv``: the KPI formula of :func:`clvmodels.kpis.historic_clv` on the calibration
transactions — each customer's own average order value × own annual order rate (orders,
first purchase included, per year of exposure, exposure floored at one year) — over the
holdout: predicted transactions = annual rate × holdout years, predicted value =
:func:`~clvmodels.kpis.historic_clv` with ``lifespan`` = the holdout length in years.
``calibration-rate``: every customer repeats at their calibration rate: yhat = x / T × h
(0 when T = 0) and value = yhat × their mean repeat spend (``monetary_value``).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clvmodels.diagnostics import calibration_histogram_table, tracking_table
from clvmodels.evaluation.fitting import (
    DEFAULT_BAYES_KWARGS,
    attach_covariates,
    covariate_columns_of,
    first_value,
    fit_model,
    instantiate,
    loo_or_nan,
    resolve_models,
    short_name,
)
from clvmodels.evaluation.metrics import (
    METRIC_COLUMNS,
    best_by_metric,
    count_metrics,
    interval_coverage,
    predictive_count_pmf,
    tracking_error,
    value_metrics,
)
from clvmodels.models.protocol import is_posterior
from clvmodels.rfm import (
    _parse_dates,
    calibration_holdout_split,
    prepare_transactions,
    read_transactions,
    time_unit_days,
)

__all__ = [
    "BASELINES",
    "DEFAULT_MODELS",
    "ModelComparison",
    "compare_models",
]

#: The baseline rows added by ``baselines=True``.
BASELINES: tuple[str, ...] = ("historic-clv", "calibration-rate")

#: Models compared when none are named.
DEFAULT_MODELS: tuple[str, ...] = ("bgnbd", "pnbd", "mbgnbd", "bayes-bgnbd")

#: the data kinds compare_models takes (transactions in continuous time)
_KINDS = ("continuous",)


# --------------------------------------------------------------------------------------
# the comparison
# --------------------------------------------------------------------------------------


@dataclass
class ModelComparison:
    """What :func:`compare_models` produced.

    Attributes
    ----------
    metrics
        One row per model (index: the names given) and per baseline, the columns of
        :data:`METRIC_COLUMNS` (NaN where a metric does not apply).
    rfm
        Calibration RFM + holdout columns (and the segment column), one row per customer.
    models
        Fitted transaction models by name.
    spend_model
        The fitted spend model (None without amounts or with ``spend_model=None``).
    predictions
        Per name, a per-customer frame: ``expected_purchases`` (holdout), ``predicted_value``
        (holdout, undiscounted), and for models ``in_interval`` (holdout count inside its
        predictive interval) where known.
    valuations
        Per model, the forward-looking CLV of every customer as of ``calibration_end``
        (:func:`clvmodels.customer_lifetime_value` over ``clv_horizon``).
    tables
        Per model, the tables behind the fit metrics: ``calibration_histogram``
        (:func:`clvmodels.diagnostics.calibration_histogram_table`, with the chi-square in its
        ``attrs``) and ``tracking`` (:func:`clvmodels.diagnostics.tracking_table`, weekly).
    segment_metrics
        With ``segment_col``: holdout metrics per (model, segment).
    data_summary
        Headline numbers of the data (customers, transactions, periods, revenue).
    kpis
        :func:`clvmodels.kpis.kpi_summary` of the calibration transactions (or None).
    settings
        The run's configuration.
    fit_warnings
        Warnings raised while fitting, as ``(model, message)`` pairs.
    transactions
        The transactions as given (read from the file when a path was given).
    """

    metrics: pd.DataFrame
    rfm: pd.DataFrame
    models: dict[str, Any]
    spend_model: Any
    predictions: dict[str, pd.DataFrame]
    valuations: dict[str, pd.DataFrame]
    tables: dict[str, dict[str, pd.DataFrame]]
    segment_metrics: pd.DataFrame | None
    data_summary: dict[str, Any]
    kpis: pd.DataFrame | None
    settings: dict[str, Any]
    fit_warnings: list[tuple[str, str]] = field(default_factory=list)
    transactions: pd.DataFrame | None = None
    #: what the report renders: a comparison of transaction models
    kind: ClassVar[str] = "transaction"

    @property
    def best(self) -> dict[str, list[str]]:
        """Best row(s) per ranked metric column (see :func:`best_by_metric`)."""
        return best_by_metric(self.metrics, interval=self.settings.get("interval", 0.9))

    @property
    def valuation_model(self) -> str | None:
        """Name of the model whose valuation the report details (the first model)."""
        return self.settings.get("valuation_model")


def fit_and_score_counts(model: Any, rfm: pd.DataFrame, y: np.ndarray, h: float, *,
                         name: str, bayes_kwargs: Mapping[str, Any] | None,
                         caught: list[tuple[str, str]], max_frequency: int, interval: float,
                         say: Callable[[str], None]
                         ) -> tuple[Any, dict[str, float], pd.DataFrame, pd.DataFrame]:
    """Fit ``model`` (unless fitted) and score its counts: the fit's log-likelihood/AIC/BIC
    (ELPD for a posterior), the calibration histogram's chi-square, the holdout count metrics
    of ``expected_purchases(rfm, h)`` against ``y`` and the coverage of the predictive pmf —
    what every transaction comparison (continuous or discrete time) measures.

    Returns ``(fitted model, metrics row, per-customer predictions, calibration histogram)``
    (the histogram None — chi-square NaN, a note in ``caught`` — where the model cannot
    compute it, e.g. a Bayesian model with covariates).
    """
    say(f"Fitting {name}")
    model, seconds = fit_model(model, rfm, bayes_kwargs or {}, name, caught)
    say(f"Scoring {name}")
    row = {c: float("nan") for c in METRIC_COLUMNS}
    row["fit_seconds"] = seconds
    if is_posterior(model):
        row["elpd_loo"] = loo_or_nan(model, name, caught)
    else:
        row.update(log_likelihood=float(model.log_likelihood_), aic=float(model.aic_),
                   bic=float(model.bic_))
    hist = unless_unavailable(lambda: calibration_histogram_table(
        model, rfm, max_frequency=max_frequency, interval=interval), name, caught)
    if hist is not None:
        row["chi_square"] = float(hist.attrs["chi_square"])
    yhat = model.expected_purchases(rfm, float(h))
    yhat = yhat["expected_purchases"] if isinstance(yhat, pd.DataFrame) else yhat
    pred = pd.DataFrame({"expected_purchases": np.asarray(yhat, dtype=float)},
                        index=rfm.index)
    row.update(count_metrics(y, pred["expected_purchases"].to_numpy()))
    pmf = predictive_count_pmf(model, rfm, float(h), y.astype(np.int64))
    if pmf is not None:
        covered = interval_coverage(pmf, y, interval)
        pred["in_interval"] = covered
        row["interval_coverage"] = float(covered.mean())
    return model, row, pred, hist


def unless_unavailable(compute: Callable[[], Any], name: str,
                       caught: list[tuple[str, str]]) -> Any:
    """``compute()``, or None with a note in ``caught`` when the model cannot compute it
    (``NotImplementedError``: e.g. a diagnostic not yet available for that kind of model)."""
    try:
        return compute()
    except NotImplementedError as exc:
        caught.append((name, f"not computed: {exc}"))
        return None


def _segments(transactions: pd.DataFrame, *, segment_col: str, customer_id_col: str,
              datetime_col: str) -> pd.Series:
    """Each customer's segment: the value on their first transaction (acquisition)."""
    days = _parse_dates(transactions[datetime_col])  # the RFM summary's own date parsing
    return first_value(transactions, value_col=segment_col, customer_id_col=customer_id_col,
                       order=pd.Series(days), what="transactions")


def _baseline_predictions(
    name: str, rfm: pd.DataFrame, calib: pd.DataFrame | None, *, time_unit: str,
    with_value: bool,
) -> pd.DataFrame:
    """Per-customer holdout predictions of a baseline (see the module docstring)."""
    h = float(rfm["duration_holdout"].iloc[0])
    out = pd.DataFrame(index=rfm.index)
    if name == "calibration-rate":
        x = rfm["frequency"].to_numpy(dtype=float)
        T = rfm["T"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(T > 0, x / np.where(T > 0, T, 1.0), 0.0)
        out["expected_purchases"] = rate * h
        if with_value:
            out["predicted_value"] = out["expected_purchases"] * rfm["monetary_value"]
        return out
    # historic-clv: the KPI formula on the calibration transactions, over the holdout
    from clvmodels.kpis import historic_clv, purchase_frequency

    if calib is None:
        raise ValueError("the historic-clv baseline needs the transactions")
    years = h * time_unit_days(time_unit) / time_unit_days("Y")
    cols = dict(customer_id_col="id", datetime_col="day")
    freq = purchase_frequency(calib, per_customer=True, monetary_value_col=None, **cols)
    out["expected_purchases"] = freq["orders_per_year"].reindex(rfm.index).to_numpy() * years
    if with_value:
        value = historic_clv(calib, per_customer=True, lifespan=years,
                             monetary_value_col="amount", **cols)
        out["predicted_value"] = value.reindex(rfm.index).to_numpy()
    return out


def _next_day(day: Any) -> str | None:
    """The calendar day after ``day`` as ``YYYY-MM-DD`` (None when unknown)."""
    if day is None:
        return None
    return str((pd.Timestamp(day).normalize() + pd.Timedelta(days=1)).date())


def _data_summary(rfm: pd.DataFrame, calib: pd.DataFrame, holdout_tx: pd.DataFrame,
                  with_value: bool) -> dict[str, Any]:
    x = rfm["frequency"].to_numpy(dtype=float)
    y = rfm["frequency_holdout"].to_numpy(dtype=float)
    out: dict[str, Any] = {
        "customers": len(rfm),
        "calibration_transactions": len(calib.drop_duplicates(["id", "day"])),
        "first_transaction": str(calib["day"].min().date()),
        "calibration_end": rfm.attrs.get("calibration_end"),
        # the holdout is (calibration_end, observation_end]: its first day is the next one
        "holdout_start": _next_day(rfm.attrs.get("calibration_end")),
        "holdout_end": rfm.attrs.get("holdout_end"),
        "time_unit": rfm.attrs.get("time_unit"),
        "holdout_length": float(rfm["duration_holdout"].iloc[0]),
        "repeat_transactions_calibration": int(x.sum()),
        "repeat_transactions_holdout": int(y.sum()),
        "one_time_buyers": int((x == 0).sum()),
        "share_one_time_buyers": float(np.mean(x == 0)),
        "customers_active_in_holdout": int((y > 0).sum()),
        "frequency_histogram": np.bincount(np.minimum(x, 7).astype(np.int64),
                                           minlength=8).tolist(),
    }
    if with_value:
        out["revenue_calibration"] = float(calib["amount"].sum())
        out["revenue_holdout"] = float(holdout_tx["amount"].sum())
        repeat = rfm.loc[rfm["frequency"] > 0, "monetary_value"]
        out["mean_repeat_spend"] = float(repeat.mean()) if len(repeat) else float("nan")
    return out


def compare_models(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    calibration_end: object = None,
    observation_end: object = None,
    time_unit: str = "W",
    models: Sequence[Any] | Mapping[str, Any] = DEFAULT_MODELS,
    segment_col: str | None = None,
    spend_model: str | Any | None = "gammagamma",
    baselines: bool = True,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str | None = "amount",
    negative_amounts: str = "raise",
    bayes_kwargs: Mapping[str, Any] | None = None,
    penalizer: float = 0.0,
    interval: float = 0.9,
    max_frequency: int = 7,
    clv_horizon: str | float = "12M",
    discount_rate: float = 0.10,
    margin: float = 1.0,
    progress: Callable[[str], None] | None = None,
    customers: pd.DataFrame | str | os.PathLike | None = None,
    customers_id_col: str | None = None,
    calibration_ends: Sequence[object] | None = None,
) -> ModelComparison:
    """Fit models on the calibration period and compare their holdout forecasts.

    Parameters
    ----------
    transactions
        One row per transaction (DataFrame, or a CSV / Parquet path).
    calibration_end, observation_end
        End of the calibration period and of the holdout (dates, both inclusive). Customers
        are those first seen by ``calibration_end``.
    time_unit
        Time unit of the models ("D", "W", "M").
    models
        Names ("bgnbd", "pnbd", "mbgnbd", "bayes-bgnbd"), model objects (fitted on this
        calibration data, or unfitted: they are fitted here), or a dict name → either. The
        metrics are indexed by these names (an object's name is its ``short_name``). The
        baselines' names may be listed too.
    segment_col
        Column of ``transactions`` with each customer's segment (its value on the
        customer's first transaction is used). Bayesian models named here become
        hierarchical over it; maximum-likelihood models are pooled. Adds
        :attr:`ModelComparison.segment_metrics`.
    spend_model
        "gammagamma", "bayes-gammagamma", a spend model object, or None (no value metrics).
        Without ``monetary_value_col`` there are no value metrics either.
    baselines
        Add the two baseline rows (``historic-clv`` and ``calibration-rate``).
    bayes_kwargs
        Sampler settings for the Bayesian models fitted here; defaults
        ``{"draws": 500, "tune": 500, "chains": 2, "random_seed": 0}``.
    penalizer
        L2 penalty for the maximum-likelihood models named here.
    interval
        Probability of the predictive intervals scored by ``interval_coverage``.
    max_frequency
        Last bin (``max_frequency``+) of the calibration histogram and its chi-square.
    clv_horizon, discount_rate, margin
        Forward-looking valuation as of ``calibration_end``, shown in the report: horizon
        ("12M", "52W", ... or model time units), **annual** discount rate and margin.
    progress
        Called with a short message before each step.
    customers, customers_id_col
        Customer attributes for models with covariates (e.g.
        ``{"pnbd+cov": ParetoNBD(purchase_covariates=["channel"])}``, or a spend model with
        ``spend_covariates``): a table (frame, or CSV / Parquet file) keyed by its index or
        its column ``customers_id_col`` (default ``customer_id_col`` when it has one),
        joined onto the calibration/holdout frame with :func:`clvmodels.join_customers`.
        A covariate column not in ``customers`` is read from ``transactions`` (each
        customer's value on their first transaction, as ``segment_col``). The frame
        (:attr:`ModelComparison.rfm`) then carries the covariate columns, and every
        prediction, tracking curve and histogram uses each customer's own attributes.
    calibration_ends
        Not taken here: a comparison at several cut-offs is
        :func:`clvmodels.evaluation.backtest` (the same settings, plus ``holdout``), which
        returns a :class:`~clvmodels.evaluation.BacktestResult`. It is a function of its own,
        not a mode of this one, so that ``compare_models`` keeps one return type and the
        backtest, built on ``compare_models``, is not imported back by it (the package's
        modules form no import cycle); naming it here raises an error that says so.

    Returns
    -------
    :class:`ModelComparison`; see the module docstring for the metric definitions.
    """
    from clvmodels.valuation import customer_lifetime_value, parse_horizon

    if calibration_ends is not None:
        raise ValueError("compare_models compares at one cut-off (calibration_end); for "
                         "several, use clvmodels.backtest(transactions, calibration_ends=[...], "
                         "holdout='39W', ...) with the same settings")
    if calibration_end is None or observation_end is None:
        raise ValueError("compare_models needs calibration_end and observation_end")
    say = progress or (lambda _msg: None)
    if not 0 < interval < 1:
        raise ValueError(f"interval must be in (0, 1), got {interval!r}")
    if not (isinstance(max_frequency, int | np.integer) and max_frequency >= 1):
        raise ValueError(f"max_frequency must be a positive integer, got {max_frequency!r}")
    time_unit_days(time_unit)
    if segment_col is not None and segment_col in ("frequency", "recency", "T",
                                                   "monetary_value", "frequency_holdout",
                                                   "monetary_value_holdout",
                                                   "duration_holdout"):
        raise ValueError(f"segment_col {segment_col!r} clashes with an RFM column name")
    resolved, named_baselines = resolve_models(models, kinds=_KINDS, baselines=BASELINES,
                                               segment_col=segment_col, penalizer=penalizer)
    baseline_names = list(dict.fromkeys([*named_baselines, *(BASELINES if baselines else ())]))
    horizon = parse_horizon(clv_horizon, time_unit)

    say("Reading transactions")
    if not isinstance(transactions, pd.DataFrame):
        transactions = read_transactions(transactions)
    with_value = monetary_value_col is not None
    say("Summarising calibration and holdout")
    rfm = calibration_holdout_split(
        transactions, calibration_end=calibration_end, observation_end=observation_end,
        customer_id_col=customer_id_col, datetime_col=datetime_col,
        monetary_value_col=monetary_value_col, time_unit=time_unit,
        negative_amounts=negative_amounts,  # type: ignore[arg-type]
    )
    if segment_col is not None:
        seg = _segments(transactions, segment_col=segment_col,
                        customer_id_col=customer_id_col, datetime_col=datetime_col)
        rfm[segment_col] = seg.reindex(rfm.index).to_numpy()
    spend_obj = None if isinstance(spend_model, str) else spend_model
    covariate_cols = covariate_columns_of([*resolved.values(), spend_obj])
    if covariate_cols:
        say("Joining the customer attributes")
        rfm = attach_covariates(
            rfm, covariate_cols, customers=customers, customers_id_col=customers_id_col,
            transactions=transactions, customer_id_col=customer_id_col,
            order=pd.Series(_parse_dates(transactions[datetime_col])))
    elif customers is not None:
        raise ValueError("customers= is an attribute table for models with covariates, and "
                         "none of the models has covariates")
    tx = prepare_transactions(transactions, customer_id_col=customer_id_col,
                              datetime_col=datetime_col, monetary_value_col=monetary_value_col,
                              negative_amounts=negative_amounts)  # type: ignore[arg-type]
    cal_end = pd.Timestamp(rfm.attrs["calibration_end"])
    hold_end = pd.Timestamp(rfm.attrs["holdout_end"])
    calib = tx.loc[tx["day"] <= cal_end]
    holdout_tx = tx.loc[(tx["day"] > cal_end) & (tx["day"] <= hold_end)
                        & tx["id"].isin(rfm.index)]
    h = float(rfm["duration_holdout"].iloc[0])
    if not h > 0:
        raise ValueError("the holdout is empty: observation_end must be after calibration_end")
    y = rfm["frequency_holdout"].to_numpy(dtype=float)
    actual_value = (rfm["frequency_holdout"] * rfm["monetary_value_holdout"]).to_numpy(float) \
        if with_value else None

    caught: list[tuple[str, str]] = []
    spend: Any = None
    if with_value and spend_model is not None:
        spend = (instantiate(spend_model, kinds=("spend",), segment_col=segment_col,
                             penalizer=penalizer)
                 if isinstance(spend_model, str) else spend_model)
        if not hasattr(spend, "expected_spend"):
            raise ValueError("spend_model must be 'gammagamma', 'bayes-gammagamma' or a "
                             "spend model (with expected_spend)")
        say(f"Fitting the spend model ({short_name(spend)})")
        spend, _ = fit_model(spend, rfm, bayes_kwargs or {}, "spend model", caught)

    rows: dict[str, dict[str, float]] = {}
    predictions: dict[str, pd.DataFrame] = {}
    valuations: dict[str, pd.DataFrame] = {}
    tables: dict[str, dict[str, pd.DataFrame]] = {}
    fitted: dict[str, Any] = {}
    for name, model in resolved.items():
        model, row, pred, hist = fit_and_score_counts(
            model, rfm, y, h, name=name, bayes_kwargs=bayes_kwargs, caught=caught,
            max_frequency=max_frequency, interval=interval, say=say)
        fitted[name] = model
        track = unless_unavailable(lambda m=model: tracking_table(
            m, transactions, cal_end, hold_end, period="W", customer_id_col=customer_id_col,
            datetime_col=datetime_col, interval=interval,
            covariates=rfm if covariate_cols else None), name, caught)
        if track is not None:
            row["tracking_error"] = tracking_error(track)
        tables[name] = {k: v for k, v in (("calibration_histogram", hist), ("tracking", track))
                        if v is not None}
        if spend is not None and actual_value is not None:
            value = customer_lifetime_value(model, spend, rfm, horizon=h, discount_rate=0.0,
                                            margin=1.0, period=h)
            pred["predicted_value"] = value["clv"].to_numpy(dtype=float)
            row.update(value_metrics(pred["predicted_value"].to_numpy(), actual_value))
            say(f"Valuing customers with {name}")
            valuations[name] = customer_lifetime_value(
                model, spend, rfm, horizon=horizon, discount_rate=discount_rate,
                margin=margin, period="M")
        predictions[name] = pred
        rows[name] = row

    for name in baseline_names:
        say(f"Computing the {name} baseline")
        started = time.perf_counter()
        pred = _baseline_predictions(name, rfm, calib, time_unit=time_unit,
                                     with_value=actual_value is not None)
        row = {c: float("nan") for c in METRIC_COLUMNS}
        row.update(count_metrics(y, pred["expected_purchases"].to_numpy()))
        if actual_value is not None:
            row.update(value_metrics(pred["predicted_value"].to_numpy(), actual_value))
        row["fit_seconds"] = time.perf_counter() - started
        predictions[name] = pred
        rows[name] = row

    metrics = pd.DataFrame.from_dict(rows, orient="index", columns=list(METRIC_COLUMNS))
    metrics.index.name = "model"

    segment_metrics = None
    if segment_col is not None:
        segment_metrics = _segment_metrics(rfm, predictions, segment_col, actual_value)

    kpis = None
    if with_value:
        from clvmodels.kpis import kpi_summary

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            kpis = kpi_summary(calib, customer_id_col="id", datetime_col="day",
                               monetary_value_col="amount", lifespan_method="span")
    settings = {
        "calibration_end": rfm.attrs.get("calibration_end"),
        "observation_end": rfm.attrs.get("holdout_end"),
        "time_unit": time_unit,
        "holdout_length": h,
        "models": list(resolved),
        "model_classes": {n: type(m).__name__ for n, m in fitted.items()},
        "baselines": baseline_names,
        "segment_col": segment_col,
        "spend_model": type(spend).__name__ if spend is not None else None,
        "bayes_kwargs": {**DEFAULT_BAYES_KWARGS, **dict(bayes_kwargs or {})},
        "penalizer": penalizer,
        "interval": interval,
        "max_frequency": int(max_frequency),
        "clv_horizon": str(clv_horizon),
        "clv_horizon_units": horizon,
        "discount_rate": discount_rate,
        "margin": margin,
        "valuation_model": next(iter(valuations), None),
        "covariates": {n: m.covariate_groups for n, m in fitted.items()
                       if getattr(m, "has_covariates", False)},
        "customer_id_col": customer_id_col,
        "datetime_col": datetime_col,
        "monetary_value_col": monetary_value_col,
        "value_definition": "holdout: expected transactions x expected spend, undiscounted",
    }
    return ModelComparison(
        metrics=metrics, rfm=rfm, models=fitted, spend_model=spend, predictions=predictions,
        valuations=valuations, tables=tables,
        segment_metrics=segment_metrics,
        data_summary=_data_summary(rfm, calib, holdout_tx, with_value), kpis=kpis,
        settings=settings, fit_warnings=caught, transactions=transactions,
    )


def _segment_metrics(rfm: pd.DataFrame, predictions: dict[str, pd.DataFrame],
                     segment_col: str, actual_value: np.ndarray | None) -> pd.DataFrame:
    """Holdout count metrics (and value ranking) per (model, segment)."""
    y = rfm["frequency_holdout"].to_numpy(dtype=float)
    seg = rfm[segment_col].to_numpy()
    records = []
    for name, pred in predictions.items():
        yhat = pred["expected_purchases"].to_numpy(dtype=float)
        labels = pd.unique(seg)
        try:
            labels = sorted(labels)
        except TypeError:  # labels of mixed types: keep order of appearance
            pass
        for label in labels:
            mask = seg == label
            rec: dict[str, Any] = {"model": name, "segment": label,
                                   "customers": int(mask.sum()),
                                   "actual": float(y[mask].sum()),
                                   "predicted": float(yhat[mask].sum())}
            rec.update(count_metrics(y[mask], yhat[mask]))
            if actual_value is not None and "predicted_value" in pred:
                rec["spearman_clv"] = value_metrics(
                    pred["predicted_value"].to_numpy()[mask], actual_value[mask]
                )["spearman_clv"]
            records.append(rec)
    return pd.DataFrame.from_records(records).set_index(["model", "segment"])

