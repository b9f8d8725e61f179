"""Holdout metrics: plain arrays in, numbers out, for every comparison of the package.

The metric functions know nothing of model families: a model enters only through the
protocol (:mod:`clvmodels.models.protocol`) — its expectations, and for interval coverage its
``conditional_purchase_count_probability`` (the predictive count distribution, averaged over
the posterior draws by a Bayesian model). The definitions are in
:mod:`clvmodels.evaluation.comparison`'s docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from clvmodels.diagnostics import gains_table

__all__ = [
    "METRIC_COLUMNS",
    "METRIC_DIRECTIONS",
    "best_by_metric",
    "count_metrics",
    "interval_coverage",
    "predictive_count_pmf",
    "tracking_error",
    "value_metrics",
]

#: Metric columns of :attr:`clvmodels.evaluation.ModelComparison.metrics`, in order.
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


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def count_metrics(actual: np.ndarray | pd.Series, predicted: np.ndarray | pd.Series
                  ) -> dict[str, float]:
    """Individual-level accuracy of holdout count forecasts (transactions, renewals).

    Returns ``mae``, ``rmse``, ``correlation`` (Pearson; NaN when either side is constant)
    and ``aggregate_bias`` = sum predicted / sum actual - 1 (NaN when the actual total is 0).
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


def best_by_metric(metrics: pd.DataFrame, *, interval: float = 0.9,
                   directions: Mapping[str, str | None] | None = None
                   ) -> dict[str, list[str]]:
    """The best row(s) of each ranked metric column.

    ``directions`` maps a column to "max", "min", "zero" or "nominal" (None: not ranked);
    default :data:`METRIC_DIRECTIONS`. Lowest error, highest fit / correlation / ranking
    quality, bias closest to zero, coverage closest to the nominal ``interval``. All-NaN
    columns and unranked columns (``fit_seconds``) are left out; exact ties all count as best.
    """
    out: dict[str, list[str]] = {}
    for col, direction in (METRIC_DIRECTIONS if directions is None else directions).items():
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


def predictive_count_pmf(model: Any, rfm: pd.DataFrame, t: float,
                         max_count: int | np.ndarray) -> np.ndarray | None:
    """Predictive pmf of each customer's repeat transactions in (T, T + t].

    The model's own ``conditional_purchase_count_probability`` (the transaction protocol):
    ``P(Y = y) = P(alive) P_new(y; updated parameters, t) + (1 - P(alive)) 1{y = 0}``,
    averaged over the posterior draws by a Bayesian model (plug-in for MLE). Returns an
    array ``(n, K + 1)`` over the counts 0..K, K the largest ``max_count``; ``max_count`` may
    give one value per customer, and a customer's entries above their own ``max_count`` are
    NaN (not computed: customers are grouped by the power of two above their own count, so
    the many who need P(0) alone cost one count). None for a model without a closed-form
    conditional count distribution.
    """
    conditional = getattr(model, "conditional_purchase_count_probability", None)
    if conditional is None:
        return None
    n = len(rfm)
    need = np.broadcast_to(np.asarray(max_count, dtype=np.int64), (n,))
    if n and need.min() < 0:
        raise ValueError("max_count must be >= 0")
    K = int(need.max()) + 1 if n else 1
    out = np.full((n, K), np.nan)
    bucket = np.ceil(np.log2(need + 1.0)).astype(np.int64)
    for b in np.unique(bucket):
        width = min(K, 2 ** int(b))
        cust = np.nonzero(bucket == b)[0]
        counts = np.arange(width)
        try:
            probs = conditional(rfm.iloc[cust], counts, float(t))
        except NotImplementedError:
            return None
        probs = np.asarray(probs, dtype=float)
        keep = counts[None, :] <= need[cust, None]
        out[cust, :width] = np.where(keep, probs, np.nan)
    return out


def tracking_error(table: pd.DataFrame) -> float:
    """Holdout tracking error of a :func:`clvmodels.diagnostics.tracking_table`: the cohort's
    expected repeat transactions over the holdout (the model's *unconditional* forecast, each
    customer from their first purchase) / the actual ones - 1.

    The same number as the tracking figure's legend (``attrs["holdout_percent_error"]`` / 100),
    so the metrics table and the figure agree. It differs from ``aggregate_bias``, which sums
    each customer's expectation *given their calibration history* (the conditional
    expectation behind MAE). NaN when nobody repeated in the holdout.
    """
    actual = float(table.attrs["holdout_actual"])
    expected = float(table.attrs["holdout_expected"])
    return expected / actual - 1.0 if actual > 0 else float("nan")
