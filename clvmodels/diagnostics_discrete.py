"""Diagnostics tables of the discrete-time models: the numbers behind their plots.

Two families count time in whole periods: the sBG (contractual: renewal decisions, Fader &
Hardie 2007, 2010) and the BG/BB (transaction opportunities, Fader, Hardie & Shang 2010).
Their tables, drawn by :mod:`clvmodels.plotting_discrete`:

=============================================  =================================================
table                                          drawn by (:mod:`clvmodels.plotting_discrete`)
=============================================  =================================================
:func:`retention_curve_table`                  ``plot_retention_curve``
:func:`survival_projection_table`              ``plot_survival_projection``
:func:`probability_alive_table`                ``plot_probability_alive_table``
=============================================  =================================================

Models enter through the protocol only (``survival``, ``retention_rate``,
``churn_probability``, ``probability_alive``); a Bayesian model
(:func:`~clvmodels.models.protocol.is_posterior`) gives the posterior mean and the central
``interval`` of its posterior. This module draws nothing and does not import matplotlib.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvmodels._validation import ValidationError, require_columns
from clvmodels.diagnostics import (
    DEFAULT_INTERVAL,
    _check_interval,
    _model_label,
    _with_segment,
)
from clvmodels.diagnostics_covariates import has_covariates, with_profile
from clvmodels.models.protocol import is_posterior
from clvmodels.subscription_kpis import renewal_table
from clvmodels.valuation._transaction import covariate_profiles

__all__ = [
    "cohort_expected_lifetime",
    "observed_survival",
    "probability_alive_table",
    "retention_curve_table",
    "survival_projection_table",
]


def _horizon(value: Any, name: str = "horizon") -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a whole number of periods >= 1, got {value!r}")
    return int(value)


def _curve(model: Any, method: str, t: np.ndarray, interval: float | None,
           segment: Any, covariates: Any = None) -> pd.DataFrame:
    """A population curve of the model at whole periods ``t``: ``value`` [, lower, upper].

    A model with covariates gives the curve of its ``covariates`` (see
    :func:`_mixture_survival`), the value only."""
    found = _profiles(model, covariates)
    if found is not None:
        t = np.asarray(t, dtype=np.int64)
        surv = _mixture_survival(model, int(t.max(initial=0)), segment, *found)
        if method == "survival":
            value = surv[t]
        else:  # t >= 1 here: r(t) = S(t) / S(t-1), P(T = t) = S(t-1) - S(t)
            prev = surv[np.maximum(t - 1, 0)]
            with np.errstate(divide="ignore", invalid="ignore"):
                value = surv[t] / prev if method == "retention_rate" else prev - surv[t]
        return pd.DataFrame({"value": value}, index=t)
    fn = getattr(model, method)
    if is_posterior(model):
        kwargs = {"segment": segment} if segment is not None else {}
        res = fn(t, interval=interval, **kwargs)
        if interval is None:
            return pd.DataFrame({"value": np.asarray(res, dtype=float)}, index=t)
        name = res.columns[0]
        return pd.DataFrame({"value": res[name].to_numpy(float),
                             "lower": res[f"{name}_lower"].to_numpy(float),
                             "upper": res[f"{name}_upper"].to_numpy(float)}, index=t)
    if segment is not None:
        raise ValueError("segment= needs a hierarchical Bayesian model")
    return pd.DataFrame({"value": np.asarray(fn(t), dtype=float).reshape(-1)}, index=t)


def _profiles(model: Any, covariates: Any) -> tuple[pd.DataFrame, np.ndarray] | None:
    """The covariate profiles a curve is drawn for and their weights: None for a model
    without covariates (which refuses ``covariates``); one profile for a mapping
    ``{column: value}``; the distinct profiles of a frame (one row per customer) weighted
    by their customers. A model with covariates refuses without ``covariates``, naming its
    columns."""
    if not has_covariates(model):
        if covariates is not None:
            raise ValueError(f"{type(model).__name__} has no covariates: covariates= does not "
                             "apply")
        return None
    if isinstance(covariates, pd.DataFrame):
        codes, profiles = covariate_profiles(model, covariates)  # type: ignore[misc]
        if len(profiles) == 0:
            raise ValidationError("covariates has no rows")
        return profiles, np.bincount(codes, minlength=len(profiles)).astype(float)
    if covariates is None:
        cols = ", ".join(model.covariate_columns)
        raise ValueError(f"{type(model).__name__} has covariates ({cols}): pass "
                         "covariates={column: value, ...} (one customer profile) or a frame "
                         "with those columns, one row per customer (their cohort's curve)")
    frame = pd.DataFrame(index=pd.RangeIndex(1))
    with_profile(model, frame, covariates)
    return frame, np.ones(1)


def _mixture_survival(model: Any, horizon: int, segment: Any, profiles: pd.DataFrame,
                      weights: np.ndarray) -> np.ndarray:
    """S(t), t = 0..``horizon``, of a cohort whose customers have the covariate
    ``profiles`` in proportion to ``weights``: sum_p w_p S_p(t) / sum_p w_p, each profile
    with its own parameters (links equation (1) of :mod:`clvmodels.models.links`; for the
    sBG S_p(t) = B(alpha_p, beta + t) / B(alpha_p, beta), F&H 2007 eq. 7). A Bayesian model
    contributes each profile's posterior mean (no interval)."""
    t = np.arange(horizon + 1)
    if is_posterior(model):
        kwargs = {"segment": segment} if segment is not None else {}
        res = model.survival(t, covariates=profiles, **kwargs)
    else:
        if segment is not None:
            raise ValueError("segment= needs a hierarchical Bayesian model")
        res = model.survival(t, covariates=profiles)
    values = np.asarray(res, dtype=float).reshape(len(profiles), len(t))
    return np.asarray(weights @ values / weights.sum(), dtype=float)


def cohort_expected_lifetime(model: Any, *, segment: Any = None,
                             covariates: Any = None) -> float:
    """E[T] of a new customer [F&H 2007: (alpha + beta - 1) / (alpha - 1) for the sBG; inf
    when it diverges]; a model with covariates needs ``covariates`` (one profile
    ``{column: value}``, or a frame of customers: the mean of their own E[T_i])."""
    kwargs = {"segment": segment} if is_posterior(model) and segment is not None else {}
    found = _profiles(model, covariates)
    if found is None:
        return float(model.expected_lifetime(**kwargs))
    profiles, weights = found
    values = np.asarray(model.expected_lifetime(covariates=profiles, **kwargs), dtype=float)
    with np.errstate(invalid="ignore"):
        return float(weights @ values.reshape(-1) / weights.sum())


# --------------------------------------------------------------------------------------
# observed survival
# --------------------------------------------------------------------------------------


def observed_survival(observed: Any) -> pd.DataFrame:
    """Observed share of a cohort still active after t renewal decisions, t = 0, 1, ...

    ``observed`` is a contract summary (``periods``, ``churned``: Kaplan-Meier survival by
    renewal decision, :func:`clvmodels.subscription_kpis.renewal_table`, with the customers
    ``at_risk`` at each decision), or the curve itself: a Series indexed by t (or a sequence
    for t = 0, 1, ...) of shares with S(0) = 1 — or of percentages with S(0) = 100, as
    Fader & Hardie (2007, Table 1) print them. Returns a frame indexed by ``t`` with
    ``observed`` [and ``at_risk``].
    """
    if isinstance(observed, pd.DataFrame):
        table = renewal_table(observed)
        out = pd.DataFrame({"observed": np.r_[1.0, table["survival"].to_numpy(float)],
                            "at_risk": np.r_[len(observed), table["at_risk"].to_numpy()]},
                           index=pd.RangeIndex(0, len(table) + 1, name="t"))
        return out.loc[out["observed"].notna()]
    series = observed if isinstance(observed, pd.Series) else pd.Series(np.asarray(
        observed, dtype=float))
    if len(series) == 0:
        raise ValidationError("the observed curve is empty")
    t = np.asarray(series.index, dtype=float)
    values = series.to_numpy(dtype=float)
    if np.any(t != np.round(t)) or np.any(t < 0) or len(np.unique(t)) != len(t):
        raise ValidationError("the observed curve must be indexed by distinct whole periods "
                              "t >= 0")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValidationError("the observed curve holds missing, infinite or negative values")
    start = values[t == 0]
    if len(start) and np.isclose(start[0], 100.0):
        values = values / 100.0
    if np.any(values > 1.0 + 1e-12):
        raise ValidationError("the observed curve must be shares (S(0) = 1) or percentages "
                              "(S(0) = 100)")
    order = np.argsort(t)
    return pd.DataFrame({"observed": values[order]},
                        index=pd.Index(t[order].astype(np.int64), name="t"))


# --------------------------------------------------------------------------------------
# sBG: retention curve, survival projection
# --------------------------------------------------------------------------------------


def retention_curve_table(model: Any, observed: Any, *, horizon: int | None = None,
                          calibrated_through: int | None = None,
                          interval: float | None = DEFAULT_INTERVAL,
                          segment: Any = None, covariates: Any = None) -> pd.DataFrame:
    """Observed survival of a cohort against the model's S(t), with the projection beyond
    the data (Fader & Hardie 2007, Figure 3).

    ``observed``: see :func:`observed_survival`. The model's survival S(t) =
    B(alpha, beta + t) / B(alpha, beta) [F&H 2007 eq. 7] for a new customer (the posterior mean
    and central ``interval`` for a Bayesian model; a hierarchical one for ``segment``, or a
    new segment's without one) runs to ``horizon`` (default: the last observed t).
    ``calibrated_through``: the last renewal decision the model was fitted on; later ones
    are a projection.

    A model with covariates needs ``covariates``: a frame with the covariate columns, one row
    per customer of the cohort (e.g. the contract summary ``observed`` itself), for the
    cohort's curve sum_i S_i(t) / n — each customer's survival with their own attributes
    (links equation (1) of :mod:`clvmodels.models.links`), computed once per distinct
    profile — or a mapping ``{column: value}`` for one profile's. A Bayesian model with
    covariates gives the posterior mean only (no interval columns).

    Returns a frame indexed by ``t`` (0..horizon) with ``observed`` (NaN where not observed)
    [``at_risk``], ``model`` [``model_lower``, ``model_upper``], ``error`` = model -
    observed and ``in_calibration``. ``attrs``: ``calibrated_through``, ``calibration_mae`` and
    ``projection_mae`` (mean absolute error of the survival share over the observed t in and
    beyond the calibration; NaN where there are none), ``time_unit`` and ``model``.
    """
    _check_interval(interval)
    obs = observed_survival(observed)
    last = int(obs.index.max())
    h = last if horizon is None else _horizon(horizon)
    through = None if calibrated_through is None else int(calibrated_through)
    if through is not None and through < 0:
        raise ValueError(f"calibrated_through must be >= 0, got {calibrated_through!r}")
    t = np.arange(h + 1)
    curve = _curve(model, "survival", t, interval, segment, covariates)
    out = pd.DataFrame(index=pd.RangeIndex(0, h + 1, name="t"))
    out["observed"] = obs["observed"].reindex(out.index).to_numpy()
    if "at_risk" in obs:
        out["at_risk"] = obs["at_risk"].reindex(out.index).astype("Int64").to_numpy()
    out["model"] = curve["value"].to_numpy()
    if "lower" in curve:
        out["model_lower"] = curve["lower"].to_numpy()
        out["model_upper"] = curve["upper"].to_numpy()
    out["error"] = out["model"] - out["observed"]
    out["in_calibration"] = t <= through if through is not None else True
    err = out["error"].abs()
    seen = out["observed"].notna() & (out.index > 0)
    cal = err[seen & out["in_calibration"]]
    proj = err[seen & ~out["in_calibration"]]
    out.attrs.update(
        calibrated_through=through,
        calibration_mae=float(cal.mean()) if len(cal) else float("nan"),
        projection_mae=float(proj.mean()) if len(proj) else float("nan"),
        time_unit=getattr(model, "time_unit_", None), model=_model_label(model),
        observed_through=last)
    return out


def survival_projection_table(model: Any, horizon: int, *,
                              interval: float | None = DEFAULT_INTERVAL,
                              segment: Any = None, covariates: Any = None) -> pd.DataFrame:
    """A contractual model's survival, retention and churn curves of a new customer.

    For t = 0..``horizon``: ``survival`` S(t) [F&H 2007 eq. 7], ``retention_rate``
    r(t) = S(t) / S(t-1) = (beta + t - 1) / (alpha + beta + t - 1) [eq. 8] and
    ``churn_probability`` P(T = t) [eq. 5] (NaN at t = 0), with ``*_lower`` / ``*_upper`` (the
    central ``interval``) for a Bayesian model (``segment`` as in
    :func:`retention_curve_table`). ``attrs``: ``expected_lifetime`` (E[T], inf when it
    diverges), ``time_unit``, ``model``.

    A model with covariates needs ``covariates``, as :func:`retention_curve_table`: a mapping
    ``{column: value}`` (one customer profile) or a frame of customers (a new cohort like
    them: survival sum_i S_i(t) / n, retention S(t) / S(t-1), churn S(t-1) - S(t), and
    E[T] the mean of the customers' own); posterior means only for a Bayesian model.
    """
    _check_interval(interval)
    h = _horizon(horizon)
    t = np.arange(h + 1)
    out = pd.DataFrame(index=pd.RangeIndex(0, h + 1, name="t"))
    for method, first in (("survival", 0), ("retention_rate", 1), ("churn_probability", 1)):
        curve = _curve(model, method, t[first:], interval, segment, covariates)
        for col in curve.columns:
            name = method if col == "value" else f"{method}_{col}"
            out[name] = np.r_[np.full(first, np.nan), curve[col].to_numpy()]
    out.attrs.update(expected_lifetime=cohort_expected_lifetime(model, segment=segment,
                                                                covariates=covariates),
                     time_unit=getattr(model, "time_unit_", None), model=_model_label(model))
    return out


# --------------------------------------------------------------------------------------
# BG/BB: P(alive) by recency and frequency
# --------------------------------------------------------------------------------------


def probability_alive_table(model: Any, n: int, *, data: pd.DataFrame | None = None,
                            weights: str | None = None, segment: Any = None,
                            covariates: Any = None) -> pd.DataFrame:
    """P(alive at opportunity n + 1) of a discrete-time model for every possible history of
    ``n`` opportunities: by recency (the opportunity of the last transaction, 0..n) and
    frequency (0..n) — Fader, Hardie & Shang (2010), Table 6 (eq. 11 for the BG/BB).

    Impossible cells (more transactions than opportunities up to the last one, or a
    transaction count of 0 with a recency > 0) are NaN. A Bayesian model gives the posterior
    mean (a hierarchical one for ``segment``; ``None``: the population level). With ``data``
    (a discrete summary with ``T`` — or ``periods`` — equal to ``n`` for the customers
    counted; ``weights``: a column of counts per row) ``attrs["customers"]`` is the frame of
    customers in each cell.

    A model with covariates (e.g. ``BetaGeoBetaBinom(dropout_covariates=["channel"])``)
    tabulates one customer profile: ``covariates`` = ``{column: value, ...}`` (every
    covariate column), each cell with that profile's own parameters (links equation (1) of
    :mod:`clvmodels.models.links`); without it the table is refused (naming the columns),
    never filled with the population parameters. ``attrs["customers"]`` then counts the
    customers of ``data`` with that profile only, and ``attrs["covariates"]`` holds it.

    Returns a frame indexed by ``recency`` with one column per ``frequency``; ``attrs``:
    ``n``, ``model``, ``time_unit`` [, ``customers``].
    """
    n = _horizon(n, "n")
    tx, x = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    valid = (x <= tx) & ((x == 0) == (tx == 0))
    frame = pd.DataFrame({"frequency": x[valid], "recency": tx[valid],
                          "T": np.full(int(valid.sum()), n)})
    unit = getattr(model, "time_unit_", None)
    if unit:
        frame.attrs["time_unit"] = unit
    grid = np.full(x.shape, np.nan)
    extra = _with_segment(model, frame, segment, covariates)
    grid[valid] = np.asarray(model.probability_alive(frame, **extra), dtype=float)
    out = pd.DataFrame(grid, index=pd.RangeIndex(0, n + 1, name="recency"),
                       columns=pd.RangeIndex(0, n + 1, name="frequency"))
    out.attrs.update(n=n, model=_model_label(model), time_unit=unit)
    if has_covariates(model):
        out.attrs["covariates"] = dict(covariates)
    if data is not None:
        T = data["T"] if "T" in data else data["periods"]
        keep = T.to_numpy() == n
        if has_covariates(model):
            cols = list(model.covariate_columns)
            require_columns(data, cols, "data")
            for col in cols:
                keep &= (data[col] == covariates[col]).to_numpy(dtype=bool)
        mine = data.loc[keep]
        w = mine[weights].to_numpy(float) if weights else np.ones(len(mine))
        counts = np.zeros(x.shape)
        np.add.at(counts, (mine["recency"].to_numpy(np.int64),
                           mine["frequency"].to_numpy(np.int64)), w)
        out.attrs["customers"] = pd.DataFrame(counts, index=out.index, columns=out.columns)
    return out
