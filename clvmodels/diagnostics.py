"""Diagnostics tables: the numbers behind the plots, computed once for plots, metrics and report.

Each function returns a DataFrame (summary statistics in its ``attrs``) that
:mod:`clvmodels.plotting` draws and :mod:`clvmodels.evaluation` reads its holdout metrics from
(chi-square, tracking error, Gini, top-decile capture), so a number in a figure and the same
number in the metrics table can never disagree:

=============================================  =================================================
table                                          drawn by (:mod:`clvmodels.plotting`)
=============================================  =================================================
:func:`calibration_histogram_table`            ``plot_calibration_histogram``
:func:`posterior_predictive_histogram_table`   ``plot_posterior_predictive_histogram``
:func:`conditional_expectation_table`          ``plot_conditional_expectation``
:func:`tracking_table`                         ``plot_tracking``
:func:`frequency_recency_table`                ``plot_frequency_recency_matrix``,
                                               ``plot_probability_alive_matrix``
:func:`probability_alive_history`              ``plot_probability_alive_history``
:func:`spend_density_table`                    ``plot_spend_density``
:func:`lorenz_table`                           ``plot_lorenz`` (``plot_clv_distribution``)
:func:`gains_table`                            ``plot_gains``
=============================================  =================================================

The same functions serve maximum-likelihood and Bayesian models: for a Bayesian model (one
for which :func:`~clvmodels.models.protocol.is_posterior` holds) a table gives the posterior
mean and, where it says so, the central ``interval`` (90% by default) of the posterior.
Bayesian quantities that the models do not expose directly (the purchase-count distribution
per posterior draw, the spend density per draw) are computed from the model's public
``parameter_draws`` with the family's own broadcasting functions (e.g.
``purchase_count_probability_at``), on an evenly thinned set of at most ``max_draws`` draws.
Everything is vectorised over customers: customers are grouped by the few values a quantity
depends on (T for the calibration histogram, the first-purchase day
for tracking, x for the spend density) and never looped over in Python.

This module draws nothing and does not import matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

import clvmodels.diagnostics_covariates as _cov
from clvmodels._summary_rules import as_day
from clvmodels._validation import ValidationError, require_columns
from clvmodels.diagnostics_value import _values, gains_table, lorenz_table  # noqa: F401 (_values: plotting)
from clvmodels.models.base import NotFittedError, rfm_arrays
from clvmodels.models.protocol import is_posterior
from clvmodels.models.registry import label_of
from clvmodels.rfm import prepare_transactions, time_unit_days
from clvmodels.valuation._transaction import covariate_profiles

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_MAX_DRAWS",
    "calibration_histogram_table",
    "conditional_expectation_table",
    "frequency_recency_table",
    "gains_table",
    "lorenz_table",
    "posterior_predictive_histogram_table",
    "probability_alive_history",
    "spend_density_table",
    "tracking_table",
]

#: Default probability mass of the central credible interval drawn for Bayesian models.
DEFAULT_INTERVAL = 0.9
#: Posterior draws (evenly thinned) used where a quantity is computed per draw here.
DEFAULT_MAX_DRAWS = 200
#: draws × groups × points evaluated at once (~16 MB of float64)
_CHUNK_CELLS = 2_000_000

_UNIT_PLURAL = {"D": "days", "W": "weeks", "M": "months", "Y": "years"}
_UNIT_SINGULAR = {"D": "day", "W": "week", "M": "month", "Y": "year"}

Period = str | float


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _model_label(model: Any, label: str | None = None) -> str:
    """A readable model name for legends ("BG/NBD", "Bayesian BG/NBD", ...)."""
    if label is not None:
        return label
    out = label_of(model)
    if getattr(model, "segment_col", None):
        out += f" (by {model.segment_col})"
    return out


def _unit_name(unit: str | None, plural: bool = True) -> str:
    """"weeks" for "W" (or "week"); "time units" when the unit is unknown."""
    if unit is None:
        return "time units" if plural else "time unit"
    return (_UNIT_PLURAL if plural else _UNIT_SINGULAR).get(unit, unit)


def _check_interval(interval: float | None) -> float | None:
    if interval is not None and not 0 < interval < 1:
        raise ValueError(f"interval must be in (0, 1) or None, got {interval!r}")
    return interval


def _quantiles(draws: np.ndarray, interval: float, axis: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
    """Central ``interval`` of ``draws`` along ``axis``: (lower, upper)."""
    q = (1.0 - interval) / 2.0
    lo, hi = np.quantile(draws, [q, 1.0 - q], axis=axis)
    return lo, hi


def _draw_index(total: int, k: int, *, repeat: bool = False) -> np.ndarray:
    """``k`` evenly spaced indices into ``total`` draws (all of them when ``k >= total``,
    unless ``repeat``: then exactly ``k``, repeating draws)."""
    if k >= total and not repeat:
        return np.arange(total)
    return np.round(np.linspace(0, total - 1, k)).astype(np.int64)


def _segment_codes(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """Each customer's segment code for a hierarchical Bayesian model (0 otherwise)."""
    if not (is_posterior(model) and getattr(model, "segment_col", None)):
        return np.zeros(len(frame), dtype=np.int64)
    return model.segment_codes(frame)


def _param_draws(model: Any, codes: np.ndarray, max_draws: int, *, repeat: bool = False,
                 params: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Parameters per (draw, group): ``{name: (S, len(codes))}``.

    Maximum-likelihood models give one "draw" (the estimate). Bayesian models give ``S`` evenly
    thinned posterior draws (at most ``max_draws``; exactly that many with ``repeat``), each
    group taking its segment's parameters when the model is hierarchical (``params``: the
    groups' draws ``{name: (S, G)}`` when given, e.g. per covariate pattern).
    """
    codes = np.asarray(codes, dtype=np.int64)
    if not is_posterior(model):
        if not hasattr(model, "params_"):
            raise NotFittedError(f"this {type(model).__name__} is not fitted yet: call "
                                 "fit(data) first")
        if _cov.has_covariates(model):  # never the base parameters in place of a customer's
            raise ValueError(f"{type(model).__name__} has covariates "
                             f"({', '.join(model.covariate_columns)}): its parameters differ "
                             "by customer")
        return {n: np.full((1, len(codes)), float(model.params_[n]))
                for n in model.param_names}
    if params is None:
        params, _ = model.parameter_draws()  # {name: (S, n_segments or 1)}
    take = _draw_index(model.n_draws, max_draws, repeat=repeat)
    return {name: values[take][:, codes] for name, values in params.items()}


def _with_segment(model: Any, frame: pd.DataFrame, segment: Any,
                  covariates: Any = None) -> dict[str, Any]:
    """For a hierarchical model, add ``segment`` to a constructed frame; the keyword
    arguments its predictions then need (``unseen_segments="population"`` for ``None``).
    A covariate model's profile ``covariates`` goes on every row."""
    _cov.with_profile(model, frame, covariates)
    col = getattr(model, "segment_col", None)
    if not (is_posterior(model) and col):
        return {}
    if segment is None:
        frame[col] = "__population__"  # not a fitted segment: predicted at population level
        return {"unseen_segments": "population"}
    frame[col] = [segment] * len(frame)
    return {}


def _predict(method: Any, frame: pd.DataFrame, *args: Any, bayesian: bool,
             interval: float | None, **kwargs: Any) -> pd.DataFrame:
    """Call a prediction method; always return a frame with ``value`` [, lower, upper]."""
    if bayesian and interval is not None:
        res = method(frame, *args, interval=interval, **kwargs)
        name = res.columns[0]
        return pd.DataFrame({"value": res[name].to_numpy(),
                             "lower": res[f"{name}_lower"].to_numpy(),
                             "upper": res[f"{name}_upper"].to_numpy()}, index=frame.index)
    res = method(frame, *args, **kwargs)
    return pd.DataFrame({"value": np.asarray(res, dtype=float)}, index=frame.index)


def _as_day(value: Any, name: str) -> pd.Timestamp:
    """A required date normalised to its calendar day (tz-naive), as the RFM summary does."""
    day = as_day(value, name)
    if day is None:
        raise ValueError(f"{name} is missing")
    return day


def _frequency_labels(max_frequency: int) -> list[str]:
    return [str(i) for i in range(max_frequency)] + [f"{max_frequency}+"]


def _check_max_frequency(max_frequency: int) -> int:
    if not isinstance(max_frequency, int | np.integer) or max_frequency < 1:
        raise ValueError(f"max_frequency must be a positive integer, got {max_frequency!r}")
    return int(max_frequency)


# --------------------------------------------------------------------------------------
# calibration histogram
# --------------------------------------------------------------------------------------


def _histogram_probabilities(model: Any, rfm: pd.DataFrame, max_frequency: int,
                             max_draws: int, *, repeat: bool = False
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(X(T) = n) for n = 0..k-1 and the k+ remainder, per draw and group of customers.

    Returns ``(probs (S, G, k+1), customers per group (G,), actual counts (k+1,))``; the
    groups are the distinct (segment, T) of ``rfm``.
    """
    k = _check_max_frequency(max_frequency)
    x, _, T, _ = rfm_arrays(rfm, time_unit=getattr(model, "time_unit_", None))
    actual = np.bincount(np.minimum(x, k).astype(np.int64), minlength=k + 1).astype(float)
    groups = _cov.posterior_groups(model, rfm)  # a Bayesian covariate model's (rows, draws)
    found = None if is_posterior(model) else covariate_profiles(model, rfm)
    codes = groups[0] if groups else found[0] if found else _segment_codes(model, rfm)
    keys = pd.DataFrame({"code": codes, "T": T}).value_counts(sort=False).sort_index()
    g_codes = keys.index.get_level_values("code").to_numpy(np.int64)
    g_T = keys.index.get_level_values("T").to_numpy(float)
    counts = keys.to_numpy(dtype=float)
    n = np.arange(k, dtype=float)
    if is_posterior(model):
        pmf = getattr(model, "purchase_count_probability_at", None)
        if pmf is None:
            raise NotImplementedError(f"{type(model).__name__} has no purchase-count "
                                      "distribution")
        draws = _param_draws(model, g_codes, max_draws, repeat=repeat,
                             params=groups[1] if groups else None)
        S, G = next(iter(draws.values())).shape
        probs = np.empty((S, G, k))
        step = max(1, _CHUNK_CELLS // max(1, S * k))
        for g0 in range(0, G, step):
            sl = slice(g0, g0 + step)
            p = {name: v[:, sl, None] for name, v in draws.items()}
            probs[:, sl, :] = pmf(p, n[None, None, :], g_T[None, sl, None])
    elif found is not None:  # each (covariate profile, T) with its own parameters
        probs = _cov.profile_count_probabilities(model, g_codes, found[1], g_T, n)[None]
    else:
        probs = np.asarray(model.purchase_count_probability(n[None, :], g_T[:, None]),
                           dtype=float)[None]
    probs = np.clip(probs, 0.0, 1.0)
    tail = np.clip(1.0 - probs.sum(axis=-1, keepdims=True), 0.0, 1.0)
    return np.concatenate([probs, tail], axis=-1), counts, actual


def calibration_histogram_table(model: Any, rfm: pd.DataFrame, max_frequency: int = 7, *,
                                interval: float | None = DEFAULT_INTERVAL,
                                max_draws: int = DEFAULT_MAX_DRAWS) -> pd.DataFrame:
    """Customers by number of repeat purchases in calibration: actual vs model expected.

    The expected number of customers with n repeat purchases is sum_i P(X(T_i) = n) over the
    customers' own observation lengths T_i (FHL 2005, Figure 1; eq. 8 for the BG/NBD),
    computed once per distinct T. The last row pools ``max_frequency`` and more.

    Returns a DataFrame indexed by ``"0", "1", ..., "7+"`` (index name ``frequency``) with
    columns ``actual`` and ``expected`` (the posterior mean for a Bayesian model, with
    ``expected_lower`` / ``expected_upper``, the central ``interval`` over ``max_draws`` thinned
    posterior draws). ``attrs`` hold the goodness-of-fit statistic
    ``chi_square = sum (actual - expected)^2 / expected``, its degrees of freedom
    ``dof = rows - 1 - number of model parameters``, the ``p_value`` and ``n_customers``.

    On CDNOW (BG/NBD, weeks, calibration to 1997-09-30) the expected counts are 1407.7,
    460.3, 192.5, 101.2, 59.8, 38.1, 25.5, 71.9 against 1411, 439, 214, 100, 62, 38, 29, 64.
    """
    _check_interval(interval)
    probs, counts, actual = _histogram_probabilities(model, rfm, max_frequency, max_draws)
    expected_draws = np.einsum("sgk,g->sk", probs, counts)
    expected = expected_draws.mean(axis=0)
    out = pd.DataFrame({"actual": actual, "expected": expected},
                       index=pd.Index(_frequency_labels(max_frequency), name="frequency"))
    if is_posterior(model) and interval is not None:
        out["expected_lower"], out["expected_upper"] = _quantiles(expected_draws, interval)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = float(np.sum((actual - expected) ** 2 / expected))
    dof = len(out) - 1 - _cov.n_parameters(model)
    out.attrs.update(
        chi_square=chi2, dof=dof,
        p_value=float(stats.chi2.sf(chi2, dof)) if dof > 0 else float("nan"),
        n_customers=int(counts.sum()),
        time_unit=rfm.attrs.get("time_unit", getattr(model, "time_unit_", None)),
        model=_model_label(model),
    )
    return out


# --------------------------------------------------------------------------------------
# posterior predictive check of the calibration histogram
# --------------------------------------------------------------------------------------


def posterior_predictive_histogram_table(model: Any, rfm: pd.DataFrame,
                                         max_frequency: int = 7, *, n_replicates: int = 200,
                                         interval: float = DEFAULT_INTERVAL,
                                         random_seed: int | None = 0) -> pd.DataFrame:
    """Posterior predictive check of the calibration histogram.

    For each of ``n_replicates`` evenly thinned posterior draws, a replicated data set is
    simulated — each customer's number of repeat purchases drawn from the model's P(X(T_i) = n)
    (a multinomial per group of customers sharing T) — and binned 0..k+. For a
    maximum-likelihood model every replicate uses the estimate (a parametric bootstrap).

    Returns a DataFrame indexed like :func:`calibration_histogram_table` with ``actual``,
    ``replicated_mean``, ``replicated_lower`` and ``replicated_upper`` (central ``interval``
    of the replicated counts). ``attrs["p_value"]`` is the posterior predictive p-value of
    the chi-square discrepancy: the share of replicates whose chi-square against that draw's
    expected counts is at least the observed data's (values near 0 flag misfit).
    """
    if not isinstance(n_replicates, int | np.integer) or n_replicates < 2:
        raise ValueError(f"n_replicates must be an integer >= 2, got {n_replicates!r}")
    _check_interval(interval)
    probs, counts, actual = _histogram_probabilities(model, rfm, max_frequency, n_replicates,
                                                     repeat=True)
    if probs.shape[0] == 1:
        probs = np.broadcast_to(probs, (n_replicates, *probs.shape[1:]))
    probs = probs / probs.sum(axis=-1, keepdims=True)
    rng = np.random.default_rng(random_seed)
    reps = rng.multinomial(counts.astype(np.int64)[None, :], probs).sum(axis=1)  # (S, k+1)
    expected = np.einsum("sgk,g->sk", probs, counts)
    with np.errstate(divide="ignore", invalid="ignore"):
        d_rep = np.sum((reps - expected) ** 2 / expected, axis=1)
        d_obs = np.sum((actual[None, :] - expected) ** 2 / expected, axis=1)
    lo, hi = _quantiles(reps, interval)
    out = pd.DataFrame({"actual": actual, "replicated_mean": reps.mean(axis=0),
                        "replicated_lower": lo, "replicated_upper": hi},
                       index=pd.Index(_frequency_labels(max_frequency), name="frequency"))
    out.attrs.update(p_value=float(np.mean(d_rep >= d_obs)), n_replicates=len(reps),
                     interval=interval, n_customers=int(counts.sum()),
                     model=_model_label(model))
    return out


# --------------------------------------------------------------------------------------
# conditional expectation: holdout purchases by calibration frequency
# --------------------------------------------------------------------------------------


def conditional_expectation_table(model: Any, split: pd.DataFrame, max_frequency: int = 7, *,
                                  interval: float | None = DEFAULT_INTERVAL) -> pd.DataFrame:
    """Average holdout purchases per calibration frequency: actual vs model (FHL 2005, Fig. 4).

    ``split`` is a :func:`clvmodels.calibration_holdout_split` frame. Customers are grouped by
    calibration frequency 0..k-1 and k+; per group the actual mean of ``frequency_holdout`` is
    compared with the mean of the model's conditional expectation E[Y(t) | x, t_x, T] over
    the holdout length ``duration_holdout``.

    Returns a DataFrame indexed by ``"0", ..., "7+"`` (name ``frequency``) with
    ``n_customers``, ``actual``, ``expected`` [, ``expected_lower``, ``expected_upper``: the
    central ``interval`` of the group mean over the posterior draws]. ``attrs["duration"]`` is
    the holdout length in the model's time unit.
    """
    _check_interval(interval)
    k = _check_max_frequency(max_frequency)
    require_columns(split, ["frequency", "frequency_holdout", "duration_holdout"],
                    "calibration/holdout frame")
    x = split["frequency"].to_numpy(float)
    groups = np.minimum(x, k).astype(np.int64)
    n_groups = np.bincount(groups, minlength=k + 1).astype(float)
    duration = split["duration_holdout"].to_numpy(float)
    t: float | np.ndarray = float(duration[0]) if np.all(duration == duration[0]) else duration
    actual = np.bincount(groups, weights=split["frequency_holdout"].to_numpy(float),
                         minlength=k + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        actual = actual / n_groups
    out = pd.DataFrame({"n_customers": n_groups.astype(np.int64), "actual": actual},
                       index=pd.Index(_frequency_labels(k), name="frequency"))
    if is_posterior(model):
        S = model.n_draws
        sums = np.zeros((S, k + 1))
        step = max(1, _CHUNK_CELLS // S)
        for c0 in range(0, len(split), step):
            part = split.iloc[c0:c0 + step]
            t_part = t if np.ndim(t) == 0 else t[c0:c0 + step]
            draws = model.expected_purchases_draws(part, t_part).to_numpy().reshape(S, -1)
            onehot = np.eye(k + 1)[groups[c0:c0 + step]]  # (chunk, k+1)
            sums += draws @ onehot
        with np.errstate(divide="ignore", invalid="ignore"):
            means = sums / n_groups
        out["expected"] = means.mean(axis=0)
        if interval is not None:
            out["expected_lower"], out["expected_upper"] = _quantiles(means, interval)
    else:
        expected = model.expected_purchases(split, t).to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["expected"] = np.bincount(groups, weights=expected, minlength=k + 1) / n_groups
    out.attrs.update(duration=float(np.mean(duration)),
                     time_unit=split.attrs.get("time_unit", getattr(model, "time_unit_", None)),
                     model=_model_label(model))
    return out


# --------------------------------------------------------------------------------------
# tracking: repeat transactions per period over calibration + holdout
# --------------------------------------------------------------------------------------


def _period_days(period: Period) -> float:
    if isinstance(period, str):
        return time_unit_days(period)
    value = float(period)
    if not value >= 1:
        raise ValueError(f"period must be a time unit ('D', 'W', 'M', 'Y') or a number of days "
                         f">= 1, got {period!r}")
    return value


def _period_name(period: Period) -> str:
    if isinstance(period, str):
        return _unit_name(period, plural=False)
    return f"{float(period):g} days"


def _expected_cumulative(model: Any, first_offsets: np.ndarray, boundaries: np.ndarray,
                         unit_days: float, segment: Any = None) -> np.ndarray:
    """sum_i E[X(b - first_i)] at each boundary day offset ``b``: shape (S, len(boundaries)).

    E[X] depends on the lag in days alone, so it is evaluated once per distinct lag and
    combined with the (boundary × lag) customer counts ``W`` in one matrix product.
    """
    f_off, f_count = np.unique(first_offsets, return_counts=True)
    lag = np.maximum(boundaries[:, None] - f_off[None, :], 0)  # (B, U) days
    u_lag, inv = np.unique(lag, return_inverse=True)
    n_b, n_l = len(boundaries), len(u_lag)
    rows = np.repeat(np.arange(n_b), len(f_off))
    W = np.bincount(rows * n_l + inv.reshape(-1), weights=np.tile(f_count, n_b).astype(float),
                    minlength=n_b * n_l).reshape(n_b, n_l)
    t = u_lag / unit_days
    if not is_posterior(model):
        return (W @ np.asarray(model.expected_purchases_new_customer(t), float))[None, :]
    S = model.n_draws
    kwargs = {"segment": segment} if segment is not None else {}
    E = np.empty((S, n_l))
    step = max(1, _CHUNK_CELLS // S)
    for j in range(0, n_l, step):
        E[:, j:j + step] = model.expected_purchases_new_customer_draws(
            t[j:j + step], **kwargs).to_numpy().reshape(S, -1)
    return E @ W.T


def tracking_table(model: Any, transactions: pd.DataFrame, calibration_end: Any,
                   observation_end: Any, period: Period = "W", *,
                   customer_id_col: str = "customer_id", datetime_col: str = "date",
                   segments: pd.Series | None = None,
                   interval: float | None = DEFAULT_INTERVAL,
                   covariates: pd.DataFrame | None = None) -> pd.DataFrame:
    """Repeat transactions per period over calibration + holdout: actual vs model.

    The cohort is every customer whose first purchase is on or before ``calibration_end``;
    a transaction is a customer-day (as in :func:`clvmodels.rfm_summary`) and the first one
    of each customer is not a repeat. Periods have a fixed length (``period``: "D", "W", "M"
    = 30.4375 days, "Y", or a number of days) and start on the cohort's first purchase day;
    the last one ends on ``observation_end`` (and may be shorter).

    The model's expected cumulative repeat transactions by the end of day D are
    sum_i E[X(D - first_i)] (FHL 2005, Figure 2; E[X(t)] from
    ``expected_purchases_new_customer``), zero before a customer's first purchase. E[X] is a
    function of the day offset alone, so it is evaluated once per distinct offset and combined
    with the (period × offset) customer counts in one matrix product — no loop over
    customers. Bayesian models use every posterior draw. A hierarchical model uses each
    customer's own segment when ``segments`` (a Series: customer id → segment label, e.g.
    ``split[model.segment_col]``) is given — one evaluation per segment — and otherwise the
    population level (a new segment drawn from the hyperdistribution, which is much less
    certain). A model with covariates tracks every customer with their own attributes:
    ``covariates`` is a frame indexed by customer id with the model's covariate columns
    (e.g. the calibration/holdout split with the customer table joined); without it the
    columns are read from ``transactions`` (each customer's value on their first
    row); a Bayesian model with covariates gives its posterior mean only (no intervals).

    Returns a DataFrame indexed by period number 1..K with ``period_start``, ``period_end``
    (the last day of the period), ``days`` (its length in days), ``complete`` (False for a
    last period cut short by ``observation_end``: its counts cover only ``days`` days, so a
    per-period chart must scale or mark it — :func:`clvmodels.plotting.plot_tracking` plots
    rates per full period), ``in_holdout``, ``actual``, ``expected`` (per period),
    ``actual_cumulative``, ``expected_cumulative`` [and ``*_lower`` / ``*_upper`` for
    ``expected`` and ``expected_cumulative``]. ``attrs``: ``calibration_end``,
    ``observation_end``, ``period``, ``n_customers``, ``calibration_actual`` /
    ``calibration_expected`` (cumulative repeat transactions at ``calibration_end``),
    ``holdout_actual`` / ``holdout_expected`` (repeat transactions after it) and
    ``holdout_percent_error`` = 100 (expected / actual - 1) over the holdout.
    """
    _check_interval(interval)
    cal_end = _as_day(calibration_end, "calibration_end")
    obs_end = _as_day(observation_end, "observation_end")
    if obs_end < cal_end:
        raise ValueError(f"observation_end ({obs_end.date()}) is before calibration_end "
                         f"({cal_end.date()})")
    length = _period_days(period)
    tx = prepare_transactions(transactions, customer_id_col=customer_id_col,
                              datetime_col=datetime_col, monetary_value_col=None)
    tx = tx.loc[tx["day"] <= obs_end, ["id", "day"]].drop_duplicates()
    first = tx.groupby("id")["day"].transform("min")
    cohort = (first <= cal_end).to_numpy()
    if not cohort.any():
        raise ValidationError(f"column {datetime_col!r}: no customer made a first purchase on "
                              f"or before calibration_end={cal_end.date()}")
    tx, first = tx.loc[cohort], first.loc[cohort]
    start = first.min()
    span = int((obs_end - start).days)  # offset of the last day
    n_periods = max(1, math.ceil((span + 1) / length - 1e-9))
    ends = np.minimum(np.floor(np.arange(1, n_periods + 1) * length + 1e-9).astype(np.int64) - 1,
                      span)
    ends[-1] = span
    starts = np.concatenate([[0], ends[:-1] + 1])
    cal_off = int((cal_end - start).days)

    # actual repeat transactions per period
    repeat = (tx["day"] > first).to_numpy()
    rep_off = (tx["day"].to_numpy()[repeat] - np.datetime64(start, "D")).astype(
        "timedelta64[D]").astype(np.int64)
    actual = np.bincount(np.searchsorted(ends, rep_off, side="left"),
                         minlength=n_periods).astype(float)

    # expected: at each period end and at the calibration end (the last boundary)
    firsts = tx.loc[~tx["id"].duplicated(), ["id", "day"]]
    first_off = (firsts["day"].to_numpy() - np.datetime64(start, "D")).astype(
        "timedelta64[D]").astype(np.int64)
    boundaries = np.append(ends, cal_off)
    unit_days = time_unit_days(model.time_unit_ or "D")
    bayes = is_posterior(model) and not _cov.has_covariates(model)  # with: the mean only
    if bayes and getattr(model, "segment_col", None) and segments is not None:
        labels = pd.Series(segments).reindex(firsts["id"].to_numpy())
        if labels.isna().any():
            missing = labels.index[labels.isna().to_numpy()][:5].tolist()
            raise ValueError(f"segments has no label for customer(s) {missing}")
        codes, uniques = pd.factorize(labels)
        cum_draws = sum(_expected_cumulative(model, first_off[codes == c], boundaries,
                                             unit_days, segment=label)
                        for c, label in enumerate(uniques))
    elif _cov.has_covariates(model):
        cum_draws = _cov.tracked_with_covariates(model, covariates, transactions, customer_id_col,
                                            firsts["id"].to_numpy(), first_off, boundaries,
                                            unit_days)
    else:
        cum_draws = _expected_cumulative(model, first_off, boundaries, unit_days)
    cal_draws, cum_draws = cum_draws[:, -1], cum_draws[:, :-1]
    inc_draws = np.diff(cum_draws, axis=1, prepend=0.0)

    out = pd.DataFrame(
        {
            "period_start": start + pd.to_timedelta(starts, unit="D"),
            "period_end": start + pd.to_timedelta(ends, unit="D"),
            "days": ends - starts + 1,
            "complete": ends - starts + 1 >= math.floor(length + 1e-9),
            "in_holdout": ends > cal_off,
            "actual": actual,
            "expected": inc_draws.mean(axis=0),
            "actual_cumulative": np.cumsum(actual),
            "expected_cumulative": cum_draws.mean(axis=0),
        },
        index=pd.RangeIndex(1, n_periods + 1, name="period"),
    )
    if bayes and interval is not None:
        out["expected_lower"], out["expected_upper"] = _quantiles(inc_draws, interval)
        lo, hi = _quantiles(cum_draws, interval)
        out["expected_cumulative_lower"], out["expected_cumulative_upper"] = lo, hi
    cal_actual = float(np.sum(rep_off <= cal_off))
    cal_expected = float(cal_draws.mean())
    hold_actual = float(len(rep_off)) - cal_actual
    hold_expected = float((cum_draws[:, -1] - cal_draws).mean())
    out.attrs.update(
        calibration_end=str(cal_end.date()), observation_end=str(obs_end.date()),
        period=period, period_name=_period_name(period), period_days=float(length),
        n_customers=len(firsts),
        calibration_actual=cal_actual, calibration_expected=cal_expected,
        holdout_actual=hold_actual, holdout_expected=hold_expected,
        holdout_percent_error=(100.0 * (hold_expected / hold_actual - 1.0)
                               if hold_actual > 0 else float("nan")),
        model=_model_label(model),
    )
    return out


# --------------------------------------------------------------------------------------
# frequency / recency matrices
# --------------------------------------------------------------------------------------


def frequency_recency_table(model: Any, rfm: pd.DataFrame, *,
                            kind: Literal["expected_purchases",
                                          "probability_alive"] = "expected_purchases",
                            t: float = 1.0, T: float | None = None,
                            max_frequency: int | None = None, n_recency: int = 50,
                            segment: Any = None, covariates: Any = None) -> pd.DataFrame:
    """Expected purchases in the next ``t`` periods, or P(alive), on a frequency × recency grid.

    Customers have been observed for ``T`` (default: the longest T in ``rfm``); frequency runs
    0..``max_frequency`` (default: the 99th percentile of ``rfm``'s frequencies) and recency
    over ``n_recency`` points from 0 to T. Impossible cells (no repeat purchase but recency
    > 0, or repeat purchases at recency 0) are NaN. Bayesian models give the posterior mean;
    a hierarchical one predicts for ``segment`` (``None``: the population level); a model with
    covariates for the profile ``covariates`` (``{"channel": "web"}``).

    A discrete-time model (BG/BB) reads a ``frequency, recency, periods`` summary: ``T`` is
    then the number of opportunities n (default: the largest ``periods``), recency runs over
    the whole opportunities 0..n (``n_recency`` is not used) and cells with more purchases
    than opportunities up to the last one (x > t_x) are NaN too; ``t`` counts future
    opportunities (Fader, Hardie & Shang 2010, eqs. 5 and 13).

    Returns a DataFrame: index ``frequency``, columns the recency values (in the model's time
    unit); ``attrs`` hold ``kind``, ``t``, ``T`` and ``time_unit``.
    """
    if kind not in ("expected_purchases", "probability_alive"):
        raise ValueError("kind must be 'expected_purchases' or 'probability_alive'")
    discrete = getattr(model, "data_kind", None) == "discrete"
    if not isinstance(n_recency, int) or n_recency < 2:
        raise ValueError(f"n_recency must be an integer >= 2, got {n_recency!r}")
    if discrete:  # BG/BB: whole opportunities, recency 0..n, at most one purchase each
        x, T_grid, rec = _discrete_grid(rfm, T)
    else:
        x, _, T_data, _ = rfm_arrays(rfm, time_unit=getattr(model, "time_unit_", None))
        T_grid = float(np.max(T_data)) if T is None else float(T)
        if not T_grid > 0:
            raise ValueError(f"T must be positive, got {T_grid!r}")
        rec = np.linspace(0.0, T_grid, n_recency)
    if max_frequency is None:
        max_frequency = max(1, math.ceil(float(np.quantile(x, 0.99))))
    freq = np.arange(int(max_frequency) + 1, dtype=float)
    xx, rr = np.meshgrid(freq, rec, indexing="ij")
    valid = (xx == 0) == (rr == 0)
    if discrete:
        valid &= xx <= rr  # x purchases need at least x opportunities up to the last one
    frame = pd.DataFrame({"frequency": xx[valid], "recency": rr[valid],
                          "periods" if discrete else "T": np.full(int(valid.sum()), T_grid)})
    frame.attrs["time_unit"] = getattr(model, "time_unit_", None) or rfm.attrs.get("time_unit")
    extra = _with_segment(model, frame, segment, covariates)
    if kind == "probability_alive":
        values = model.probability_alive(frame, **extra)
    else:
        values = model.expected_purchases(frame, t, **extra)
    grid = np.full(xx.shape, np.nan)
    grid[valid] = np.asarray(values, dtype=float)
    out = pd.DataFrame(grid, index=pd.Index(freq.astype(np.int64), name="frequency"),
                       columns=pd.Index(rec, name="recency"))
    out.attrs.update(kind=kind, t=float(t), T=T_grid, time_unit=frame.attrs["time_unit"],
                     model=_model_label(model))
    return out


def _discrete_grid(data: pd.DataFrame, n: float | None) -> tuple[np.ndarray, float,
                                                                   np.ndarray]:
    """Frequencies, the number of opportunities and the whole recencies 0..n of a discrete
    summary (``frequency``, ``recency``, ``periods`` or ``T``) for
    :func:`frequency_recency_table`."""
    n_col = "periods" if "periods" in data.columns else "T"
    for col in ("frequency", n_col):
        if col not in data.columns:
            raise ValueError(f"a discrete-time model's summary needs the columns 'frequency' "
                             f"and 'periods' (or 'T'); it has {list(map(str, data.columns))}")
    if len(data) == 0:
        raise ValueError("the summary has no customers: nothing to set the grid's number of "
                         "opportunities and frequencies from")
    x = data["frequency"].to_numpy(dtype=float)
    n_grid = float(data[n_col].max()) if n is None else float(n)
    if not (n_grid >= 1 and float(n_grid).is_integer()):
        raise ValueError(f"T (the number of opportunities) must be a whole number >= 1 for a "
                         f"discrete-time model, got {n_grid!r}")
    return x, n_grid, np.arange(int(n_grid) + 1, dtype=float)


# --------------------------------------------------------------------------------------
# one customer's P(alive) over time
# --------------------------------------------------------------------------------------


def _purchase_days(purchases: pd.DataFrame | Sequence[Any] | pd.Series | pd.DatetimeIndex,
                   customer_id: Any, customer_id_col: str, datetime_col: str
                   ) -> pd.DatetimeIndex:
    if isinstance(purchases, pd.DataFrame):
        if customer_id is None:
            raise ValueError("customer_id is required when purchases is a transactions frame")
        tx = prepare_transactions(purchases, customer_id_col=customer_id_col,
                                  datetime_col=datetime_col, monetary_value_col=None)
        days = tx.loc[tx["id"] == customer_id, "day"]
        if days.empty:
            raise ValueError(f"customer {customer_id!r} has no transactions in column "
                             f"{customer_id_col!r}")
        return pd.DatetimeIndex(days.unique()).sort_values().as_unit("ns")
    dates = pd.to_datetime(pd.Series(list(purchases) if not isinstance(purchases, pd.Series)
                                     else purchases), errors="raise")
    if dates.empty or dates.isna().any():
        raise ValueError("purchases must hold at least one date and no missing dates")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    return pd.DatetimeIndex(dates.dt.normalize().unique()).sort_values().as_unit("ns")


def probability_alive_history(model: Any,
                              purchases: pd.DataFrame | Sequence[Any] | pd.Series,
                              observation_end: Any, *, customer_id: Any = None,
                              customer_id_col: str = "customer_id", datetime_col: str = "date",
                              freq: str = "D", segment: Any = None,
                              interval: float | None = DEFAULT_INTERVAL,
                              covariates: Any = None) -> pd.DataFrame:
    """One customer's P(alive) on a date grid from their first purchase to ``observation_end``.

    ``purchases`` is the customer's purchase dates, or a transactions frame with
    ``customer_id``. On each day of the grid (``freq``: a pandas frequency, "D" or "W"; the
    purchase days themselves are always included, so the jumps show) the customer's history
    so far is summarised as (frequency, recency, T) — purchases on the same day count once —
    and passed to the model's ``probability_alive``. Bayesian models add ``lower`` / ``upper``
    (the central ``interval``); a hierarchical one predicts for ``segment`` (``None``:
    population level); a covariate model for the customer's ``covariates`` (a mapping).

    Returns a DataFrame indexed by ``date`` with ``frequency``, ``recency``, ``T``,
    ``probability_alive`` [, ``lower``, ``upper``] and ``is_purchase``.
    """
    _check_interval(interval)
    end = _as_day(observation_end, "observation_end")
    days = _purchase_days(purchases, customer_id, customer_id_col, datetime_col)
    days = days[days <= end]
    if len(days) == 0:
        raise ValueError(f"no purchase on or before observation_end={end.date()}")
    first = days[0]
    grid = (pd.date_range(first, end, freq=freq).as_unit("ns").union(days)
            .union(pd.DatetimeIndex([end]).as_unit("ns")))
    n_before = np.searchsorted(days.to_numpy(), grid.to_numpy(), side="right")
    last = days.to_numpy()[n_before - 1]
    unit = getattr(model, "time_unit_", None) or "D"
    scale = time_unit_days(unit)
    frame = pd.DataFrame({
        "frequency": (n_before - 1).astype(float),
        "recency": (last - first.to_datetime64()).astype("timedelta64[D]").astype(float) / scale,
        "T": (grid.to_numpy() - first.to_datetime64()).astype("timedelta64[D]").astype(float)
        / scale,
    }, index=pd.RangeIndex(len(grid)))
    frame.attrs["time_unit"] = unit
    extra = _with_segment(model, frame, segment, covariates)
    pred = _predict(model.probability_alive, frame, bayesian=is_posterior(model),
                    interval=interval, **extra)
    out = frame[["frequency", "recency", "T"]].copy()
    out["probability_alive"] = pred["value"].to_numpy()
    if "lower" in pred:
        out["lower"], out["upper"] = pred["lower"].to_numpy(), pred["upper"].to_numpy()
    out["is_purchase"] = grid.isin(days)
    out.index = pd.DatetimeIndex(grid, name="date")
    out.attrs.update(time_unit=unit, customer_id=customer_id, model=_model_label(model))
    return out


# --------------------------------------------------------------------------------------
# Gamma-Gamma: spend density
# --------------------------------------------------------------------------------------


def spend_density_table(model: Any, rfm: pd.DataFrame, *, n_points: int = 200,
                        max_spend: float | None = None,
                        interval: float | None = DEFAULT_INTERVAL,
                        max_draws: int = DEFAULT_MAX_DRAWS) -> pd.DataFrame:
    """The Gamma-Gamma model's density of customers' mean repeat spend, on a grid.

    Given x repeat purchases, a customer's mean spend m_x has density
    exp(LL(p, q, v | x, m_x)) (Fader & Hardie 2013, eq. 5), so the model's distribution of
    m_x across the repeat buyers of ``rfm`` is the mixture of those densities over their x —
    directly comparable with a density histogram of the observed ``monetary_value``. It is
    evaluated once per distinct x (and segment). A model with covariates
    (``spend_covariates``) gives each customer their own v_i = v exp(g_s'z_i) (links
    equation (1) of :mod:`clvmodels.models.links`): ``rfm`` carries the covariate columns,
    the mixture runs over the distinct (covariate profile, x), and ``model_mean`` is the
    repeat buyers' mean of p v_i / (q - 1).

    The grid runs up to ``max_spend`` (default: 1.05 × the 99th percentile of the observed
    mean spend). Returns a DataFrame indexed by ``spend`` with ``density``
    [, ``density_lower``, ``density_upper``]; ``attrs``: ``observed_mean``,
    ``model_mean`` (population mean spend p v / (q - 1), posterior mean for Bayesian models),
    ``n_customers`` and ``max_spend``.
    """
    from clvmodels.models.gammagamma import log_likelihood, population_mean_spend

    if tuple(getattr(model, "param_names", ())) != ("p", "q", "v"):
        raise TypeError(f"spend densities need a Gamma-Gamma model, got {type(model).__name__}")
    _check_interval(interval)
    require_columns(rfm, ["frequency", "monetary_value"], "RFM frame")
    rep = rfm.loc[rfm["frequency"] > 0]
    if len(rep) == 0:
        raise ValidationError("column 'frequency': no repeat buyers (frequency > 0)")
    m = rep["monetary_value"].to_numpy(float)
    top = float(np.quantile(m, 0.99)) * 1.05 if max_spend is None else float(max_spend)
    if not top > 0:
        raise ValueError(f"max_spend must be positive, got {top!r}")
    grid = np.linspace(0.0, top, n_points + 1)[1:]
    groups = _cov.posterior_groups(model, rep)  # a Bayesian covariate model's (rows, draws)
    found = None if is_posterior(model) else covariate_profiles(model, rep)
    codes = groups[0] if groups else found[0] if found else _segment_codes(model, rep)
    keys = pd.DataFrame({"code": codes, "x": rep["frequency"].to_numpy(float)}
                        ).value_counts(sort=False).sort_index()
    g_codes = keys.index.get_level_values("code").to_numpy(np.int64)
    g_x = keys.index.get_level_values("x").to_numpy(float)
    weights = keys.to_numpy(float) / len(rep)
    if found is not None:  # each profile's own v (MLE: one "draw")
        own = model._p(found[1])
        draws = {n: np.broadcast_to(np.asarray(own[n], dtype=float).reshape(-1),
                                    (len(found[1]),))[g_codes][None, :] for n in ("p", "q", "v")}
    else:
        draws = _param_draws(model, g_codes, max_draws, params=groups[1] if groups else None)
    S, G = draws["p"].shape
    dens = np.zeros((S, n_points))
    step = max(1, _CHUNK_CELLS // max(1, S * n_points))
    for g0 in range(0, G, step):
        sl = slice(g0, g0 + step)
        p, q, v = (draws[n][:, sl, None] for n in ("p", "q", "v"))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ll = log_likelihood(p, q, v, g_x[None, sl, None], grid[None, None, :])
        dens += np.einsum("sgn,g->sn", np.exp(ll), weights[sl])
    out = pd.DataFrame({"density": dens.mean(axis=0)}, index=pd.Index(grid, name="spend"))
    if is_posterior(model) and interval is not None:
        out["density_lower"], out["density_upper"] = _quantiles(dens, interval)
    pop = _param_draws(model, np.zeros(1, dtype=np.int64), max_draws) if not (getattr(
        model, "segment_col", None) or _cov.has_covariates(model)) else None
    if _cov.has_covariates(model):  # the repeat buyers' own population means, averaged
        per_group = population_mean_spend(draws["p"], draws["q"], draws["v"])  # (S, G)
        model_mean = float(np.mean(per_group @ keys.to_numpy(float)) / len(rep))
    elif pop is not None:
        model_mean = float(np.mean(population_mean_spend(pop["p"], pop["q"], pop["v"])))
    else:
        model_mean = float(model.population_mean_spend())
    out.attrs.update(observed_mean=float(m.mean()), model_mean=model_mean,
                     n_customers=len(rep), max_spend=top, model=_model_label(model),
                     share_above_max=float(np.mean(m > top)))
    return out
