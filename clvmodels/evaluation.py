"""Holdout evaluation: fit models on a calibration period, score them on the holdout.

:func:`compare_models` splits the transactions at ``calibration_end``
(:func:`clvmodels.calibration_holdout_split`), fits every model on the calibration period and
compares its forecasts for the holdout period ``(calibration_end, observation_end]`` with
what the customers actually did — the comparisons the literature makes (Fader, Hardie & Lee
2005; Batislam et al. 2007; see ``REFERENCE.md``). The result, a :class:`ModelComparison`,
holds one row of metrics per model; :func:`clvmodels.report.write_report` renders it (this
module never imports the report).

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
    ``tracking_error`` = predicted / actual - 1 for the *cumulative* repeat transactions of
    the whole cohort (calibration + holdout) at the end of the holdout: the model's
    unconditional expectation ``sum_i E[X(T_i + h)]`` (each customer from their first
    purchase, as in the tracking plots of FHL 2005, Figures 2-3) against
    ``sum_i (x_i + y_i)`` — the last row of :func:`clvmodels.diagnostics.tracking_table`. (The
    tracking figure's legend quotes the stricter holdout-only error, its
    ``holdout_percent_error``.) Models only; a hierarchical Bayesian model is tracked at
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
    with the model module's own new-customer pmf. For a Bayesian model this is averaged over
    the posterior draws (the posterior predictive); for a maximum-likelihood model the point
    estimate is plugged in (parameter uncertainty ignored). The interval is
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
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from clvmodels._validation import fail_rows, require_columns
from clvmodels.diagnostics import calibration_histogram_table, gains_table, tracking_table
from clvmodels.models.base import NotFittedError
from clvmodels.rfm import (
    _parse_dates,
    calibration_holdout_split,
    prepare_transactions,
    read_transactions,
    time_unit_days,
)

__all__ = [
    "BASELINES",
    "BAYESIAN_MODELS",
    "DEFAULT_MODELS",
    "METRIC_COLUMNS",
    "METRIC_DIRECTIONS",
    "ModelComparison",
    "best_by_metric",
    "compare_models",
    "count_metrics",
    "interval_coverage",
    "predictive_count_pmf",
    "tracking_error",
    "value_metrics",
]

#: Metric columns of :attr:`ModelComparison.metrics`, in order.
METRIC_COLUMNS: tuple[str, ...] = (
    "log_likelihood", "aic", "bic", "elpd_loo", "chi_square",
    "mae", "rmse", "correlation", "aggregate_bias", "tracking_error",
    "spearman_clv", "gini_clv", "top_decile_capture", "interval_coverage", "fit_seconds",
)

#: Which value of each metric is best: "max", "min", "zero" (closest to 0), "nominal"
#: (closest to the nominal interval probability) or None (not ranked).
METRIC_DIRECTIONS: dict[str, str | None] = {
    "log_likelihood": "max", "aic": "min", "bic": "min", "elpd_loo": "max",
    "chi_square": "min", "mae": "min", "rmse": "min", "correlation": "max",
    "aggregate_bias": "zero", "tracking_error": "zero", "spearman_clv": "max",
    "gini_clv": "max", "top_decile_capture": "max", "interval_coverage": "nominal",
    "fit_seconds": None,
}

#: The baseline rows added by ``baselines=True``.
BASELINES: tuple[str, ...] = ("historic-clv", "calibration-rate")

#: Bayesian model names accepted in ``models`` → (module, class).
BAYESIAN_MODELS: dict[str, tuple[str, str]] = {
    "bayes-bgnbd": ("clvmodels.models.bayes_bgnbd", "BayesianBetaGeo"),
    "bayes-mbgnbd": ("clvmodels.models.bayes_bgnbd", "BayesianModifiedBetaGeo"),
}
_BAYES_SPEND = {"bayes-gammagamma": ("clvmodels.models.bayes_gammagamma", "BayesianGammaGamma")}

#: Models compared when none are named.
DEFAULT_MODELS: tuple[str, ...] = ("bgnbd", "pnbd", "mbgnbd", "bayes-bgnbd")

#: Sampler settings for Bayesian models fitted here (small: a comparison, not a final fit).
DEFAULT_BAYES_KWARGS: dict[str, Any] = {"draws": 500, "tune": 500, "chains": 2,
                                        "random_seed": 0}

_CHUNK_CELLS = 2_000_000  # draws × rows × counts evaluated at once for the predictive pmf


# --------------------------------------------------------------------------------------
# metric functions (plain arrays in, numbers out)
# --------------------------------------------------------------------------------------


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def count_metrics(actual: np.ndarray | pd.Series, predicted: np.ndarray | pd.Series
                  ) -> dict[str, float]:
    """Individual-level accuracy of holdout transaction forecasts.

    Returns ``mae``, ``rmse``, ``correlation`` (Pearson; NaN when either side is constant)
    and ``aggregate_bias`` = sum predicted / sum actual - 1 (NaN when nothing was bought).
    """
    y = np.asarray(actual, dtype=float)
    yhat = np.asarray(predicted, dtype=float)
    if y.shape != yhat.shape:
        raise ValueError(f"actual and predicted differ in shape: {y.shape} vs {yhat.shape}")
    err = yhat - y
    total = y.sum()
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "correlation": _pearson(y, yhat),
        "aggregate_bias": float(yhat.sum() / total - 1.0) if total > 0 else float("nan"),
    }


def value_metrics(predicted: np.ndarray | pd.Series, actual: np.ndarray | pd.Series
                  ) -> dict[str, float]:
    """Ranking quality of predicted customer value against actual (holdout) revenue.

    ``spearman_clv`` (Spearman rank correlation), and from the gains curve of
    :func:`clvmodels.diagnostics.gains_table` (tied predictions share their actual value
    evenly): ``gini_clv`` (its normalised Gini: 1 = perfect ranking, 0 = random) and
    ``top_decile_capture`` (share of the actual total from the top 10 % by prediction).
    NaN where undefined (constant predictions for Spearman, no revenue at all).
    """
    p = np.asarray(predicted, dtype=float)
    a = np.asarray(actual, dtype=float)
    if len(a) < 2 or np.ptp(p) == 0 or np.ptp(a) == 0:
        rho = float("nan")
    else:
        rho = float(stats.spearmanr(p, a).statistic)
    if len(a) == 0 or a.sum() <= 0:
        return {"spearman_clv": rho, "gini_clv": float("nan"),
                "top_decile_capture": float("nan")}
    gains = gains_table(p, a, n_points=2)
    return {"spearman_clv": rho, "gini_clv": float(gains.attrs["normalized_gini"]),
            "top_decile_capture": float(gains.attrs["top_decile_capture"])}


def interval_coverage(pmf: np.ndarray, observed: np.ndarray | pd.Series,
                      interval: float = 0.9) -> np.ndarray:
    """Whether each observed count lies in the central ``interval`` of its predictive pmf.

    ``pmf`` has one row per customer over the counts 0, 1, ..., K (K at least the largest
    observed count). With F the cumulative distribution and q = (1 - interval) / 2, the
    interval is [F^-1(q), F^-1(1 - q)] and y lies in it exactly when F(y) >= q and
    F(y - 1) < 1 - q, so the pmf above the observed count is never needed.
    """
    if not 0 < interval < 1:
        raise ValueError(f"interval must be in (0, 1), got {interval!r}")
    y = np.asarray(observed, dtype=np.int64)
    if pmf.ndim != 2 or pmf.shape[0] != len(y) or (len(y) and pmf.shape[1] <= y.max()):
        raise ValueError("pmf must have one row per customer and cover the observed counts")
    cdf = np.cumsum(np.nan_to_num(pmf, nan=0.0), axis=1)
    rows = np.arange(len(y))
    at_y = cdf[rows, y]
    below = np.where(y > 0, cdf[rows, np.maximum(y - 1, 0)], 0.0)
    q = (1.0 - interval) / 2.0
    tol = 1e-12
    return (at_y >= q - tol) & (below < 1.0 - q - tol)


def best_by_metric(metrics: pd.DataFrame, *, interval: float = 0.9) -> dict[str, list[str]]:
    """The best row(s) of each ranked metric column (see :data:`METRIC_DIRECTIONS`).

    Lowest error, highest fit / correlation / ranking quality, bias closest to zero,
    coverage closest to the nominal ``interval``. All-NaN columns and unranked columns
    (``fit_seconds``) are left out; exact ties all count as best.
    """
    out: dict[str, list[str]] = {}
    for col, direction in METRIC_DIRECTIONS.items():
        if direction is None or col not in metrics.columns:
            continue
        values = pd.to_numeric(metrics[col], errors="coerce").astype(float)
        if values.notna().sum() == 0:
            continue
        if direction == "max":
            score = -values
        elif direction == "min":
            score = values
        elif direction == "zero":
            score = values.abs()
        else:
            score = (values - interval).abs()
        best = score.min()
        out[col] = [str(i) for i in score.index[np.isclose(score, best, rtol=1e-12, atol=0)]]
    return out


# --------------------------------------------------------------------------------------
# predictive distribution of the holdout count
# --------------------------------------------------------------------------------------


def _family(model: Any) -> str | None:
    """'bg', 'mbg' or 'pnbd' for the transaction models whose conditional count we know."""
    names = tuple(getattr(model, "param_names", ()))
    if names == ("r", "alpha", "s", "beta"):
        return "pnbd"
    if names == ("r", "alpha", "a", "b") and hasattr(model, "_modified"):
        return "mbg" if model._modified else "bg"
    return None


def _updated_new_pmf(family: str, p: dict[str, np.ndarray], x: np.ndarray, T: np.ndarray,
                     n: np.ndarray, t: float) -> np.ndarray:
    """P(Y(t) = n | alive at T, x): a new customer's pmf with the updated parameters."""
    if family == "pnbd":
        from clvmodels.models.paretonbd import purchase_count_probability as pnbd_pmf

        return pnbd_pmf(p["r"] + x, p["alpha"] + T, p["s"], p["beta"] + T, n, t)
    from clvmodels.models.bgnbd import purchase_count_probability as bg_pmf

    extra = 1.0 if family == "mbg" else 0.0
    return bg_pmf(p["r"] + x, p["alpha"] + T, p["a"], p["b"] + x + extra, n, t)


def _is_bayesian(model: Any) -> bool:
    return bool(getattr(model, "is_bayesian", False))


def _param_draws(model: Any, rfm: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Parameter draws ``(S, G)`` and each customer's group (segment code); a
    maximum-likelihood model is one draw of one group."""
    n = len(rfm)
    if not _is_bayesian(model):
        params = {k: np.array([[float(v)]]) for k, v in model.params_.items()}
        return params, np.zeros(n, dtype=np.int64)
    return model.parameter_draws(rfm)


def _alive_draws(model: Any, rfm: pd.DataFrame) -> np.ndarray:
    """P(alive) per draw and customer, ``(S, n)`` (one row for an MLE model)."""
    if not _is_bayesian(model):
        return model.probability_alive(rfm).to_numpy(dtype=float)[None, :]
    draws = model.probability_alive_draws(rfm)
    return draws.to_numpy().reshape(-1, len(rfm))


def _group_params(params: dict[str, np.ndarray], groups: np.ndarray) -> dict[str, np.ndarray]:
    """Draws for the given group codes, shaped ``(S, len(groups), 1)``."""
    return {k: (v[:, groups] if v.shape[1] > 1 else v[:, :1])[:, :, None]
            for k, v in params.items()}


def predictive_count_pmf(model: Any, rfm: pd.DataFrame, t: float,
                         max_count: int | np.ndarray) -> np.ndarray | None:
    """Predictive pmf of each customer's repeat transactions in (T, T + t].

    ``P(Y = y) = P(alive) P_new(y; updated parameters, t) + (1 - P(alive)) 1{y = 0}``,
    averaged over the posterior draws for a Bayesian model (plug-in for MLE); see the
    module docstring. Returns an array ``(n, K + 1)`` over the counts 0..K, K the largest
    ``max_count``; ``max_count`` may give one value per customer, and a customer's entries
    above their own ``max_count`` are NaN (not computed). None for a model whose
    conditional count distribution is not known here.
    """
    family = _family(model)
    if family is None:
        return None
    n = len(rfm)
    need = np.broadcast_to(np.asarray(max_count, dtype=np.int64), (n,))
    if n and need.min() < 0:
        raise ValueError("max_count must be >= 0")
    params, groups = _param_draws(model, rfm)
    alive = _alive_draws(model, rfm)
    S = alive.shape[0]
    x = rfm["frequency"].to_numpy(dtype=float)
    T = rfm["T"].to_numpy(dtype=float)
    K = int(need.max()) + 1 if n else 1
    out = np.full((n, K), np.nan)
    # the updated new-customer pmf depends on (group, x, T) only: evaluate it once per
    # distinct triple, up to the largest count its customers need, then mix it with each
    # customer's P(alive) draws. Triples are bucketed by the number of counts needed
    # (powers of two), so the many customers who need P(0) alone cost one count.
    key = pd.MultiIndex.from_arrays([groups, x, T])
    codes, uniq = pd.factorize(key, sort=True)
    ug = uniq.get_level_values(0).to_numpy(dtype=np.int64)
    ux = uniq.get_level_values(1).to_numpy(dtype=float)
    uT = uniq.get_level_values(2).to_numpy(dtype=float)
    u_need = np.zeros(len(uniq), dtype=np.int64)
    np.maximum.at(u_need, codes, need)
    bucket = np.ceil(np.log2(u_need + 1.0)).astype(np.int64)
    for b in np.unique(bucket):
        width = min(K, 2 ** int(b))
        counts = np.arange(width, dtype=float)
        triples = np.nonzero(bucket == b)[0]
        step = max(1, _CHUNK_CELLS // (S * width))
        for c0 in range(0, len(triples), step):
            chunk = triples[c0:c0 + step]
            p = _group_params(params, ug[chunk])
            with np.errstate(all="ignore"):
                cond = _updated_new_pmf(family, p, ux[chunk, None], uT[chunk, None],
                                        counts[None, None, :], float(t))  # (S, u, k)
            cond = np.broadcast_to(cond, (S, len(chunk), width))
            position = np.full(len(uniq), -1, dtype=np.int64)
            position[chunk] = np.arange(len(chunk))
            cust = np.nonzero(position[codes] >= 0)[0]
            a = alive[:, cust]  # (S, c)
            mixed = np.einsum("sc,sck->ck", a, cond[:, position[codes[cust]], :]) / S
            mixed[:, 0] += 1.0 - a.mean(axis=0)
            keep = counts[None, :] <= need[cust, None]
            out[cust, :width] = np.where(keep, mixed, np.nan)
    return out


# --------------------------------------------------------------------------------------
# model-level diagnostics (calibration histogram, tracking)
# --------------------------------------------------------------------------------------


def tracking_error(table: pd.DataFrame) -> float:
    """Relative error of the cumulative repeat transactions at the end of a
    :func:`clvmodels.diagnostics.tracking_table`: expected / actual - 1 in its last period."""
    actual = float(table["actual_cumulative"].iloc[-1])
    expected = float(table["expected_cumulative"].iloc[-1])
    return expected / actual - 1.0 if actual > 0 else float("nan")


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

    @property
    def best(self) -> dict[str, list[str]]:
        """Best row(s) per ranked metric column (see :func:`best_by_metric`)."""
        return best_by_metric(self.metrics, interval=self.settings.get("interval", 0.9))

    @property
    def valuation_model(self) -> str | None:
        """Name of the model whose valuation the report details (the first model)."""
        return self.settings.get("valuation_model")



def _short_name(model: Any) -> str:
    name = getattr(model, "short_name", "") or type(model).__name__
    return str(name).replace("_", "-")


def _instantiate(name: str, *, segment_col: str | None, penalizer: float) -> Any:
    """A new, unfitted model for a short name."""
    key = name.strip().lower().replace("_", "-")
    if key in BAYESIAN_MODELS or key in _BAYES_SPEND:
        import importlib

        module, cls = {**BAYESIAN_MODELS, **_BAYES_SPEND}[key]
        return getattr(importlib.import_module(module), cls)(segment_col=segment_col)
    from clvmodels.workflow import model_class

    try:
        return model_class(key)(penalizer=penalizer)
    except ValueError:
        known = ", ".join((*_mle_names(), *BAYESIAN_MODELS, *BASELINES))
        raise ValueError(f"unknown model {name!r}; use one of {known}") from None


def _mle_names() -> tuple[str, ...]:
    from clvmodels.workflow import TRANSACTION_MODELS

    return TRANSACTION_MODELS


def _resolve_models(models: Sequence[Any] | Mapping[str, Any], *, segment_col: str | None,
                    penalizer: float) -> tuple[dict[str, Any], list[str]]:
    """(name → model object, baseline names named in ``models``)."""
    if isinstance(models, str):
        models = [m for m in models.split(",") if m.strip()]
    items: list[tuple[str, Any]]
    if isinstance(models, Mapping):
        items = [(str(k), v) for k, v in models.items()]
    else:
        items = [(m.strip() if isinstance(m, str) else _short_name(m), m) for m in models]
    resolved: dict[str, Any] = {}
    baselines: list[str] = []
    for name, spec in items:
        if name in resolved or name in baselines:
            raise ValueError(f"model name {name!r} is given twice; pass a dict to name "
                             "models explicitly")
        if isinstance(spec, str) and spec.strip().lower() in BASELINES:
            baselines.append(spec.strip().lower())
            continue
        model = _instantiate(spec, segment_col=segment_col, penalizer=penalizer) \
            if isinstance(spec, str) else spec
        if not hasattr(model, "expected_purchases"):
            raise ValueError(f"{name!r} is not a transaction model (it has no "
                             "expected_purchases): pass spend models as spend_model=")
        resolved[name] = model
    if not resolved and not baselines:
        raise ValueError("no models to compare")
    return resolved, baselines


def _is_fitted(model: Any) -> bool:
    try:
        model._check_fitted()
    except NotFittedError:
        return False
    return True


def _fit(model: Any, rfm: pd.DataFrame, bayes_kwargs: Mapping[str, Any], name: str,
         caught: list[tuple[str, str]]) -> tuple[Any, float]:
    """Fit ``model`` unless it is fitted already; (model, fit seconds)."""
    if _is_fitted(model):
        return model, _recorded_fit_seconds(model)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        if _is_bayesian(model):
            model.fit(rfm, **{**DEFAULT_BAYES_KWARGS, **dict(bayes_kwargs)})
        else:
            model.fit(rfm)
    elapsed = time.perf_counter() - started
    for w in seen:  # pass every warning on; keep the fit's own for the report
        if not issubclass(w.category, DeprecationWarning | FutureWarning):
            caught.append((name, str(w.message)))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    recorded = _recorded_fit_seconds(model)
    return model, recorded if np.isfinite(recorded) else elapsed


def _recorded_fit_seconds(model: Any) -> float:
    if hasattr(model, "fit_seconds_"):
        return float(model.fit_seconds_)
    timings = getattr(model, "fit_timings_", None)
    if isinstance(timings, Mapping) and "total_s" in timings:
        return float(timings["total_s"])
    return float("nan")


def _segments(transactions: pd.DataFrame, *, segment_col: str, customer_id_col: str,
              datetime_col: str) -> pd.Series:
    """Each customer's segment: the value on their first transaction (acquisition)."""
    require_columns(transactions, [customer_id_col, datetime_col, segment_col], "transactions")
    frame = transactions[[customer_id_col, datetime_col, segment_col]]
    fail_rows(frame, frame[segment_col].isna(), segment_col, "missing segment labels",
              [customer_id_col, datetime_col, segment_col])
    days = _parse_dates(frame[datetime_col])  # the RFM summary's own date parsing
    first = (frame.assign(_day=days).sort_values("_day", kind="stable")
             .drop_duplicates(customer_id_col, keep="first"))
    return first.set_index(customer_id_col)[segment_col]


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


def _data_summary(rfm: pd.DataFrame, calib: pd.DataFrame, holdout_tx: pd.DataFrame,
                  with_value: bool) -> dict[str, Any]:
    x = rfm["frequency"].to_numpy(dtype=float)
    y = rfm["frequency_holdout"].to_numpy(dtype=float)
    out: dict[str, Any] = {
        "customers": len(rfm),
        "calibration_transactions": len(calib.drop_duplicates(["id", "day"])),
        "first_transaction": str(calib["day"].min().date()),
        "calibration_end": rfm.attrs.get("calibration_end"),
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
    calibration_end: object,
    observation_end: object,
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

    Returns
    -------
    :class:`ModelComparison`; see the module docstring for the metric definitions.
    """
    from clvmodels.valuation import customer_lifetime_value, parse_horizon

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
    resolved, named_baselines = _resolve_models(models, segment_col=segment_col,
                                                penalizer=penalizer)
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
        spend = (_instantiate(spend_model, segment_col=segment_col, penalizer=penalizer)
                 if isinstance(spend_model, str) else spend_model)
        if not hasattr(spend, "expected_spend"):
            raise ValueError("spend_model must be 'gammagamma', 'bayes-gammagamma' or a "
                             "spend model (with expected_spend)")
        say(f"Fitting the spend model ({_short_name(spend)})")
        spend, _ = _fit(spend, rfm, bayes_kwargs or {}, "spend model", caught)

    rows: dict[str, dict[str, float]] = {}
    predictions: dict[str, pd.DataFrame] = {}
    valuations: dict[str, pd.DataFrame] = {}
    tables: dict[str, dict[str, pd.DataFrame]] = {}
    fitted: dict[str, Any] = {}
    for name, model in resolved.items():
        say(f"Fitting {name}")
        model, seconds = _fit(model, rfm, bayes_kwargs or {}, name, caught)
        fitted[name] = model
        say(f"Scoring {name}")
        row = {c: float("nan") for c in METRIC_COLUMNS}
        row["fit_seconds"] = seconds
        if _is_bayesian(model):
            try:
                row["elpd_loo"] = float(model.loo()["elpd_loo"])
            except (ValueError, RuntimeError) as exc:  # e.g. saved without its data
                caught.append((name, f"LOO unavailable: {exc}"))
        else:
            row["log_likelihood"] = float(model.log_likelihood_)
            row["aic"] = float(model.aic_)
            row["bic"] = float(model.bic_)
        hist = calibration_histogram_table(model, rfm, max_frequency=max_frequency,
                                           interval=interval)
        row["chi_square"] = float(hist.attrs["chi_square"])
        track = tracking_table(model, transactions, cal_end, hold_end, period="W",
                               customer_id_col=customer_id_col, datetime_col=datetime_col,
                               interval=interval)
        row["tracking_error"] = tracking_error(track)
        tables[name] = {"calibration_histogram": hist, "tracking": track}
        yhat = model.expected_purchases(rfm, h)
        yhat = (yhat["expected_purchases"] if isinstance(yhat, pd.DataFrame) else yhat)
        pred = pd.DataFrame({"expected_purchases": yhat.to_numpy(dtype=float)},
                            index=rfm.index)
        row.update(count_metrics(y, pred["expected_purchases"].to_numpy()))
        pmf = predictive_count_pmf(model, rfm, h, y.astype(np.int64))
        if pmf is not None:
            covered = interval_coverage(pmf, y, interval)
            pred["in_interval"] = covered
            row["interval_coverage"] = float(covered.mean())
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

