"""Diagnostic plots for fitted CLV models, and the small tables behind them.

Every ``plot_*`` function takes ``ax=None`` (a new figure is made when none is given) and
returns the Axes it drew on (an array of Axes for the multi-panel Bayesian diagnostics). The
same functions serve maximum-likelihood and Bayesian models: for a Bayesian model (one with
``is_bayesian``) the model curve is the posterior mean and a shaded band (or error bars) shows
the central ``interval`` (90% by default) of the posterior.

The numbers behind each plot come from a public ``*_table`` function, so holdout metrics
(chi-square, tracking error, Gini, top-decile capture) are computed once, here, and the
report and evaluation code reuse them:

=============================================  =================================================
table                                          plot
=============================================  =================================================
:func:`calibration_histogram_table`            :func:`plot_calibration_histogram`
:func:`conditional_expectation_table`          :func:`plot_conditional_expectation`
:func:`tracking_table`                         :func:`plot_tracking`
:func:`frequency_recency_table`                :func:`plot_frequency_recency_matrix`,
                                               :func:`plot_probability_alive_matrix`
:func:`probability_alive_history`              :func:`plot_probability_alive_history`
:func:`spend_density_table`                    :func:`plot_spend_density`
:func:`lorenz_table`                           :func:`plot_lorenz`, :func:`plot_clv_distribution`
:func:`gains_table`                            :func:`plot_gains`
:func:`posterior_predictive_histogram_table`   :func:`plot_posterior_predictive_histogram`
(ArviZ)                                        :func:`plot_trace`
(the model's priors and posterior)             :func:`plot_prior_posterior`
``model.segment_params_``                      :func:`plot_segment_forest`
=============================================  =================================================

Bayesian quantities that the models do not expose directly (the purchase-count distribution
per posterior draw, the spend density per draw) are computed from the posterior in
``model.idata_`` with the model's own broadcasting functions (the same hooks its
maximum-likelihood twin uses), on an evenly thinned set of at most ``max_draws`` draws.
Everything is vectorised over customers: customers are grouped by the few values a quantity
depends on (T for the calibration histogram, the first-purchase day for tracking, x for the
spend density) and never looped over in Python.

Colours: :data:`ACTUAL_COLOR` for what was observed, :data:`MODEL_COLOR` for the model.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import MatplotlibDeprecationWarning
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, PercentFormatter
from scipy import stats

from clvmodels._validation import ValidationError, require_columns
from clvmodels.models.base import MODEL_LABELS as _MODEL_LABELS
from clvmodels.models.base import rfm_arrays
from clvmodels.rfm import _as_day as _rfm_as_day
from clvmodels.rfm import prepare_transactions, time_unit_days

__all__ = [
    "ACTUAL_COLOR",
    "BAND_ALPHA",
    "DEFAULT_INTERVAL",
    "DEFAULT_MAX_DRAWS",
    "MODEL_COLOR",
    "calibration_histogram_table",
    "conditional_expectation_table",
    "frequency_recency_table",
    "gains_table",
    "lorenz_table",
    "plot_calibration_histogram",
    "plot_clv_distribution",
    "plot_conditional_expectation",
    "plot_frequency_recency_matrix",
    "plot_gains",
    "plot_lorenz",
    "plot_posterior_predictive_histogram",
    "plot_prior_posterior",
    "plot_probability_alive_history",
    "plot_probability_alive_matrix",
    "plot_segment_forest",
    "plot_spend_density",
    "plot_trace",
    "plot_tracking",
    "posterior_predictive_histogram_table",
    "probability_alive_history",
    "spend_density_table",
    "tracking_table",
]

#: Colour of observed data (Okabe-Ito blue).
ACTUAL_COLOR = "#0072B2"
#: Colour of model expectations (Okabe-Ito vermillion).
MODEL_COLOR = "#D55E00"
#: Opacity of the credible-interval bands.
BAND_ALPHA = 0.25
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


def _is_bayesian(model: Any) -> bool:
    """Whether ``model`` is a Bayesian model (posterior draws in ``idata_``)."""
    return bool(getattr(model, "is_bayesian", False))


def _model_label(model: Any, label: str | None = None) -> str:
    """A readable model name for legends ("BG/NBD", "Bayesian BG/NBD", ...)."""
    if label is not None:
        return label
    name = type(model).__name__
    out = _MODEL_LABELS.get(name, name)
    if getattr(model, "segment_col", None):
        out += f" (by {model.segment_col})"
    return out


def _unit_name(unit: str | None, plural: bool = True) -> str:
    """"weeks" for "W" (or "week"); "time units" when the unit is unknown."""
    if unit is None:
        return "time units" if plural else "time unit"
    return (_UNIT_PLURAL if plural else _UNIT_SINGULAR).get(unit, unit)


def _fmt_number(value: float, digits: int = 0) -> str:
    """A number with thousands separators."""
    return f"{value:,.{digits}f}"


def _thousands(axis: Any, digits: int = 0) -> None:
    """Format an axis' tick labels with thousands separators."""
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.{digits}f}"))


def _new_ax(ax: Axes | None, figsize: tuple[float, float] = (8.0, 4.8)) -> Axes:
    """``ax``, or the Axes of a new figure."""
    if ax is not None:
        return ax
    _, new = plt.subplots(figsize=figsize, layout="constrained")
    return new


def _new_axes(ax: Any, n: int, ncols: int | None = None,
              panel: tuple[float, float] = (3.6, 3.0)) -> np.ndarray:
    """``n`` Axes: the given sequence (checked), or a new grid of panels."""
    if ax is not None:
        axes = np.ravel(np.asarray(ax, dtype=object))
        if len(axes) < n:
            raise ValueError(f"ax must hold at least {n} Axes, got {len(axes)}")
        return axes[:n]
    ncols = min(n, ncols or 4)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows),
                             layout="constrained", squeeze=False)
    flat = axes.ravel()
    for extra in flat[n:]:
        fig.delaxes(extra)
    return flat[:n]


def _check_interval(interval: float | None) -> float | None:
    if interval is not None and not 0 < interval < 1:
        raise ValueError(f"interval must be in (0, 1) or None, got {interval!r}")
    return interval


def _interval_label(interval: float | None) -> str:
    """"90% credible interval" for ``interval=0.9``."""
    return f"{round(100 * (interval or DEFAULT_INTERVAL)):g}% credible interval"


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
    col = getattr(model, "segment_col", None)
    if not (_is_bayesian(model) and col):
        return np.zeros(len(frame), dtype=np.int64)
    require_columns(frame, [col], "RFM frame")
    labels = pd.Index(model.segment_labels_)
    codes = labels.get_indexer(frame[col])
    if np.any(codes < 0):
        unseen = sorted({str(v) for v in frame.loc[codes < 0, col].unique()})
        raise ValueError(f"segment(s) {unseen[:10]} in column {col!r} were not seen when the "
                         "model was fitted")
    return codes.astype(np.int64)


def _param_draws(model: Any, codes: np.ndarray, max_draws: int, *, repeat: bool = False
                 ) -> dict[str, np.ndarray]:
    """Parameters per (draw, group): ``{name: (S, len(codes))}``.

    Maximum-likelihood models give one "draw" (the estimate). Bayesian models give ``S`` evenly
    thinned posterior draws (at most ``max_draws``; exactly that many with ``repeat``), each
    group taking its segment's parameters when the model is hierarchical.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if not _is_bayesian(model):
        model._check_fitted()
        return {n: np.full((1, len(codes)), float(v)) for n, v in model.params_.items()}
    model._check_fitted()
    post = model.idata_.posterior
    total = int(post.sizes["chain"] * post.sizes["draw"])
    take = _draw_index(total, max_draws, repeat=repeat)
    out = {}
    for name in model.param_names:
        values = post[name].to_numpy().reshape(total, -1)[take]  # (S, n_segments or 1)
        out[name] = values[:, codes]
    return out


def _with_segment(model: Any, frame: pd.DataFrame, segment: Any) -> dict[str, Any]:
    """For a hierarchical model, add ``segment`` to a constructed frame; the keyword
    arguments its predictions then need (``unseen_segments="population"`` for ``None``)."""
    col = getattr(model, "segment_col", None)
    if not (_is_bayesian(model) and col):
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
    """A required date normalised to its calendar day (tz-naive); see :mod:`clvmodels.rfm`."""
    day = _rfm_as_day(value, name)
    if day is None:
        raise ValueError(f"{name} is missing")
    return day


def _frequency_labels(max_frequency: int) -> list[str]:
    return [str(i) for i in range(max_frequency)] + [f"{max_frequency}+"]


def _check_max_frequency(max_frequency: int) -> int:
    if not isinstance(max_frequency, int | np.integer) or max_frequency < 1:
        raise ValueError(f"max_frequency must be a positive integer, got {max_frequency!r}")
    return int(max_frequency)


def _date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _mark_calibration_end(ax: Axes, when: Any, *, top: bool = True) -> None:
    """A dotted vertical line labelled "end of calibration" (at the top or the bottom)."""
    ax.axvline(when, color="0.35", linestyle=":", linewidth=1.2)
    ax.annotate("end of calibration", xy=(when, 1.0 if top else 0.0),
                xycoords=("data", "axes fraction"), xytext=(4, -4 if top else 4),
                textcoords="offset points", ha="left", va="top" if top else "bottom",
                fontsize="small", color="0.3")


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
    codes = _segment_codes(model, rfm)
    keys = pd.DataFrame({"code": codes, "T": T}).value_counts(sort=False).sort_index()
    g_codes = keys.index.get_level_values("code").to_numpy(np.int64)
    g_T = keys.index.get_level_values("T").to_numpy(float)
    counts = keys.to_numpy(dtype=float)
    n = np.arange(k, dtype=float)
    if _is_bayesian(model):
        pmf = getattr(model, "_pmf", None)
        if pmf is None:
            raise NotImplementedError(f"{type(model).__name__} has no purchase-count "
                                      "distribution")
        draws = _param_draws(model, g_codes, max_draws, repeat=repeat)
        S, G = next(iter(draws.values())).shape
        probs = np.empty((S, G, k))
        step = max(1, _CHUNK_CELLS // max(1, S * k))
        for g0 in range(0, G, step):
            sl = slice(g0, g0 + step)
            p = {name: v[:, sl, None] for name, v in draws.items()}
            probs[:, sl, :] = pmf(p, n[None, None, :], g_T[None, sl, None])
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
    if _is_bayesian(model) and interval is not None:
        out["expected_lower"], out["expected_upper"] = _quantiles(expected_draws, interval)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = float(np.sum((actual - expected) ** 2 / expected))
    dof = len(out) - 1 - len(model.param_names)
    out.attrs.update(
        chi_square=chi2, dof=dof,
        p_value=float(stats.chi2.sf(chi2, dof)) if dof > 0 else float("nan"),
        n_customers=int(counts.sum()),
        time_unit=rfm.attrs.get("time_unit", getattr(model, "time_unit_", None)),
        model=_model_label(model),
    )
    return out


def plot_calibration_histogram(model: Any, rfm: pd.DataFrame, max_frequency: int = 7, *,
                               interval: float | None = DEFAULT_INTERVAL,
                               max_draws: int = DEFAULT_MAX_DRAWS, label: str | None = None,
                               ax: Axes | None = None) -> Axes:
    """Bar chart of customers by repeat purchases 0..k+ in calibration, actual vs model.

    The model's legend entry carries the chi-square statistic and its degrees of freedom
    (:func:`calibration_histogram_table`). Bayesian models: error bars show the ``interval``.
    """
    table = calibration_histogram_table(model, rfm, max_frequency, interval=interval,
                                        max_draws=max_draws)
    ax = _new_ax(ax)
    pos = np.arange(len(table))
    width = 0.4
    ax.bar(pos - width / 2, table["actual"], width, color=ACTUAL_COLOR, label="Actual")
    chi = table.attrs["chi_square"]
    name = f"{_model_label(model, label)} (χ² = {chi:,.1f}, df = {table.attrs['dof']})"
    ax.bar(pos + width / 2, table["expected"], width, color=MODEL_COLOR, label=name)
    if "expected_lower" in table:
        err = np.vstack([table["expected"] - table["expected_lower"],
                         table["expected_upper"] - table["expected"]])
        ax.errorbar(pos + width / 2, table["expected"], yerr=np.clip(err, 0, None), fmt="none",
                    ecolor="0.15", capsize=3, linewidth=1,
                    label=_interval_label(interval))
    ax.set_xticks(pos, table.index)
    ax.set_xlabel("Repeat purchases in the calibration period")
    ax.set_ylabel("Customers")
    _thousands(ax.yaxis)
    ax.set_title(f"Customers by number of repeat purchases "
                 f"({_fmt_number(table.attrs['n_customers'])} customers)")
    ax.legend(frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return ax


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


def plot_posterior_predictive_histogram(model: Any, rfm: pd.DataFrame,
                                        max_frequency: int = 7, *, n_replicates: int = 200,
                                        interval: float = DEFAULT_INTERVAL,
                                        random_seed: int | None = 0,
                                        label: str | None = None,
                                        ax: Axes | None = None) -> Axes:
    """Observed calibration histogram (bars) against replicated data sets (points and
    interval bars): :func:`posterior_predictive_histogram_table`."""
    table = posterior_predictive_histogram_table(model, rfm, max_frequency,
                                                 n_replicates=n_replicates, interval=interval,
                                                 random_seed=random_seed)
    ax = _new_ax(ax)
    pos = np.arange(len(table))
    ax.bar(pos, table["actual"], 0.6, color=ACTUAL_COLOR, alpha=0.85, label="Actual")
    err = np.vstack([table["replicated_mean"] - table["replicated_lower"],
                     table["replicated_upper"] - table["replicated_mean"]])
    ax.errorbar(pos, table["replicated_mean"], yerr=np.clip(err, 0, None), fmt="o",
                color=MODEL_COLOR, ecolor=MODEL_COLOR, capsize=4, linewidth=1.5,
                label=(f"{_model_label(model, label)}: replicated data, mean and "
                       f"{round(100 * interval):g}% interval"))
    ax.set_xticks(pos, table.index)
    ax.set_xlabel("Repeat purchases in the calibration period")
    ax.set_ylabel("Customers")
    _thousands(ax.yaxis)
    check = ("Posterior predictive check" if _is_bayesian(model)
             else "Parametric bootstrap check")
    ax.set_title(f"{check}: {table.attrs['n_replicates']} replicated data sets "
                 f"(χ² p-value {table.attrs['p_value']:.2f})")
    ax.legend(frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return ax


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
    if _is_bayesian(model):
        post = model.idata_.posterior
        S = int(post.sizes["chain"] * post.sizes["draw"])
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


def plot_conditional_expectation(model: Any, split: pd.DataFrame, max_frequency: int = 7, *,
                                 interval: float | None = DEFAULT_INTERVAL,
                                 label: str | None = None, ax: Axes | None = None) -> Axes:
    """Average holdout purchases by calibration frequency, actual vs model
    (:func:`conditional_expectation_table`); Bayesian models get a shaded band."""
    table = conditional_expectation_table(model, split, max_frequency, interval=interval)
    ax = _new_ax(ax)
    pos = np.arange(len(table))
    ax.plot(pos, table["actual"], marker="o", color=ACTUAL_COLOR, linewidth=2, label="Actual")
    ax.plot(pos, table["expected"], marker="s", color=MODEL_COLOR, linewidth=2,
            linestyle="--", label=_model_label(model, label))
    if "expected_lower" in table:
        ax.fill_between(pos, table["expected_lower"], table["expected_upper"],
                        color=MODEL_COLOR, alpha=BAND_ALPHA, linewidth=0,
                        label=_interval_label(interval))
    ticks = [f"{lab}\n(n={_fmt_number(n)})" for lab, n in zip(table.index, table["n_customers"],
                                                               strict=True)]
    ax.set_xticks(pos, ticks, fontsize="small")
    unit = table.attrs["time_unit"]
    duration = table.attrs["duration"]
    ax.set_xlabel("Repeat purchases in the calibration period (customers)")
    ax.set_ylabel(f"Average purchases in the holdout\n({duration:,.4g} {_unit_name(unit)})")
    ax.set_title("Holdout purchases by calibration frequency")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return ax


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
    if not _is_bayesian(model):
        return (W @ np.asarray(model.expected_purchases_new_customer(t), float))[None, :]
    post = model.idata_.posterior
    S = int(post.sizes["chain"] * post.sizes["draw"])
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
                   interval: float | None = DEFAULT_INTERVAL) -> pd.DataFrame:
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
    certain).

    Returns a DataFrame indexed by period number 1..K with ``period_start``, ``period_end``
    (the last day of the period), ``in_holdout``, ``actual``, ``expected`` (per period),
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
    bayes = _is_bayesian(model)
    if bayes and getattr(model, "segment_col", None) and segments is not None:
        labels = pd.Series(segments).reindex(firsts["id"].to_numpy())
        if labels.isna().any():
            missing = labels.index[labels.isna().to_numpy()][:5].tolist()
            raise ValueError(f"segments has no label for customer(s) {missing}")
        codes, uniques = pd.factorize(labels)
        cum_draws = sum(_expected_cumulative(model, first_off[codes == c], boundaries,
                                             unit_days, segment=label)
                        for c, label in enumerate(uniques))
    else:
        cum_draws = _expected_cumulative(model, first_off, boundaries, unit_days)
    cal_draws, cum_draws = cum_draws[:, -1], cum_draws[:, :-1]
    inc_draws = np.diff(cum_draws, axis=1, prepend=0.0)

    out = pd.DataFrame(
        {
            "period_start": start + pd.to_timedelta(starts, unit="D"),
            "period_end": start + pd.to_timedelta(ends, unit="D"),
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
        period=period, period_name=_period_name(period), n_customers=len(firsts),
        calibration_actual=cal_actual, calibration_expected=cal_expected,
        holdout_actual=hold_actual, holdout_expected=hold_expected,
        holdout_percent_error=(100.0 * (hold_expected / hold_actual - 1.0)
                               if hold_actual > 0 else float("nan")),
        model=_model_label(model),
    )
    return out


def plot_tracking(model: Any, transactions: pd.DataFrame, calibration_end: Any,
                  observation_end: Any, period: Period = "W", *,
                  kind: Literal["cumulative", "incremental"] = "cumulative",
                  customer_id_col: str = "customer_id", datetime_col: str = "date",
                  segments: pd.Series | None = None,
                  interval: float | None = DEFAULT_INTERVAL, label: str | None = None,
                  ax: Axes | None = None) -> Axes:
    """Cumulative or per-period (incremental) repeat transactions over calibration +
    holdout, actual vs model, with the end of calibration marked (:func:`tracking_table`;
    ``segments`` as there, for hierarchical models).

    The legend gives the holdout percent error of the model's cumulative forecast.
    """
    if kind not in ("cumulative", "incremental"):
        raise ValueError("kind must be 'cumulative' or 'incremental'")
    table = tracking_table(model, transactions, calibration_end, observation_end, period,
                           customer_id_col=customer_id_col, datetime_col=datetime_col,
                           segments=segments, interval=interval)
    ax = _new_ax(ax, figsize=(9.0, 4.8))
    suffix = "_cumulative" if kind == "cumulative" else ""
    when = table["period_end"]
    err = table.attrs["holdout_percent_error"]
    ax.plot(when, table[f"actual{suffix}"], color=ACTUAL_COLOR, linewidth=2, label="Actual")
    ax.plot(when, table[f"expected{suffix}"], color=MODEL_COLOR, linewidth=2, linestyle="--",
            label=f"{_model_label(model, label)} (holdout error {err:+.1f}%)")
    if f"expected{suffix}_lower" in table:
        ax.fill_between(when, table[f"expected{suffix}_lower"], table[f"expected{suffix}_upper"],
                        color=MODEL_COLOR, alpha=BAND_ALPHA, linewidth=0,
                        label=_interval_label(interval))
    _mark_calibration_end(ax, pd.Timestamp(table.attrs["calibration_end"]))
    name = table.attrs["period_name"]
    if kind == "cumulative":
        ax.set_title(f"Cumulative repeat transactions "
                     f"({_fmt_number(table.attrs['n_customers'])} customers)")
        ax.set_ylabel("Cumulative repeat transactions")
    else:
        ax.set_title(f"Repeat transactions per {name} "
                     f"({_fmt_number(table.attrs['n_customers'])} customers)")
        ax.set_ylabel(f"Repeat transactions per {name}")
    ax.set_xlabel(f"End of {name}")
    ax.set_ylim(bottom=0)
    _thousands(ax.yaxis)
    _date_axis(ax)
    if kind == "cumulative":
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(0.0, 0.93))
    else:
        ax.legend(frameon=False, loc="upper right", bbox_to_anchor=(1.0, 0.93))
    ax.grid(alpha=0.3)
    return ax


# --------------------------------------------------------------------------------------
# frequency / recency matrices
# --------------------------------------------------------------------------------------


def frequency_recency_table(model: Any, rfm: pd.DataFrame, *,
                            kind: Literal["expected_purchases",
                                          "probability_alive"] = "expected_purchases",
                            t: float = 1.0, T: float | None = None,
                            max_frequency: int | None = None, n_recency: int = 50,
                            segment: Any = None) -> pd.DataFrame:
    """Expected purchases in the next ``t`` periods, or P(alive), on a frequency × recency grid.

    Customers have been observed for ``T`` (default: the longest T in ``rfm``); frequency runs
    0..``max_frequency`` (default: the 99th percentile of ``rfm``'s frequencies) and recency
    over ``n_recency`` points from 0 to T. Impossible cells (no repeat purchase but recency
    > 0, or repeat purchases at recency 0) are NaN. Bayesian models give the posterior mean;
    a hierarchical one predicts for ``segment`` (``None``: the population level).

    Returns a DataFrame: index ``frequency``, columns the recency values (in the model's time
    unit); ``attrs`` hold ``kind``, ``t``, ``T`` and ``time_unit``.
    """
    if kind not in ("expected_purchases", "probability_alive"):
        raise ValueError("kind must be 'expected_purchases' or 'probability_alive'")
    x, _, T_data, _ = rfm_arrays(rfm, time_unit=getattr(model, "time_unit_", None))
    T_grid = float(np.max(T_data)) if T is None else float(T)
    if not T_grid > 0:
        raise ValueError(f"T must be positive, got {T_grid!r}")
    if max_frequency is None:
        max_frequency = max(1, math.ceil(float(np.quantile(x, 0.99))))
    if not isinstance(n_recency, int) or n_recency < 2:
        raise ValueError(f"n_recency must be an integer >= 2, got {n_recency!r}")
    freq = np.arange(int(max_frequency) + 1, dtype=float)
    rec = np.linspace(0.0, T_grid, n_recency)
    xx, rr = np.meshgrid(freq, rec, indexing="ij")
    valid = (xx == 0) == (rr == 0)
    frame = pd.DataFrame({"frequency": xx[valid], "recency": rr[valid],
                          "T": np.full(int(valid.sum()), T_grid)})
    frame.attrs["time_unit"] = getattr(model, "time_unit_", None) or rfm.attrs.get("time_unit")
    extra = _with_segment(model, frame, segment)
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


def plot_frequency_recency_matrix(model: Any, rfm: pd.DataFrame, *,
                                  kind: Literal["expected_purchases",
                                                "probability_alive"] = "expected_purchases",
                                  t: float = 1.0, T: float | None = None,
                                  max_frequency: int | None = None, n_recency: int = 50,
                                  segment: Any = None, cmap: str = "viridis",
                                  ax: Axes | None = None) -> Axes:
    """Heat map of expected purchases in the next ``t`` periods (or P(alive)) by frequency
    and recency, for customers observed for ``T`` (:func:`frequency_recency_table`)."""
    table = frequency_recency_table(model, rfm, kind=kind, t=t, T=T,
                                    max_frequency=max_frequency, n_recency=n_recency,
                                    segment=segment)
    ax = _new_ax(ax, figsize=(8.0, 5.5))
    rec = table.columns.to_numpy(float)
    step = rec[1] - rec[0]
    x_edges = np.concatenate([[rec[0] - step / 2], rec + step / 2])
    freq = table.index.to_numpy(float)
    y_edges = np.concatenate([freq - 0.5, [freq[-1] + 0.5]])
    alive = kind == "probability_alive"
    mesh = ax.pcolormesh(x_edges, y_edges, table.to_numpy(), cmap=cmap, shading="flat",
                         vmin=0.0 if alive else None, vmax=1.0 if alive else None)
    unit = table.attrs["time_unit"]
    bar = ax.figure.colorbar(mesh, ax=ax)
    if alive:
        bar.set_label("Probability alive")
        bar.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        title = "Probability that a customer is still active"
    else:
        horizon = f"{t:g} {_unit_name(unit, plural=t != 1)}"
        bar.set_label(f"Expected purchases in the next {horizon}")
        title = f"Expected purchases in the next {horizon}"
    T_val = table.attrs["T"]
    ax.set_title(f"{title}\n(customers observed for {T_val:,.4g} {_unit_name(unit)}; "
                 f"{_model_label(model)})")
    ax.set_xlabel(f"Recency: time from first to last purchase ({_unit_name(unit)})")
    ax.set_ylabel("Frequency: repeat purchases")
    ax.set_xlim(x_edges[0], x_edges[-1])
    ax.set_ylim(y_edges[0], y_edges[-1])
    return ax


def plot_probability_alive_matrix(model: Any, rfm: pd.DataFrame, *, T: float | None = None,
                                  max_frequency: int | None = None, n_recency: int = 50,
                                  segment: Any = None, cmap: str = "viridis",
                                  ax: Axes | None = None) -> Axes:
    """Heat map of P(alive) by frequency and recency
    (:func:`plot_frequency_recency_matrix` with ``kind="probability_alive"``)."""
    return plot_frequency_recency_matrix(model, rfm, kind="probability_alive", T=T,
                                         max_frequency=max_frequency, n_recency=n_recency,
                                         segment=segment, cmap=cmap, ax=ax)


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
                              interval: float | None = DEFAULT_INTERVAL) -> pd.DataFrame:
    """One customer's P(alive) on a date grid from their first purchase to ``observation_end``.

    ``purchases`` is the customer's purchase dates, or a transactions frame with
    ``customer_id``. On each day of the grid (``freq``: a pandas frequency, "D" or "W"; the
    purchase days themselves are always included, so the jumps show) the customer's history
    so far is summarised as (frequency, recency, T) — purchases on the same day count once —
    and passed to the model's ``probability_alive``. Bayesian models add ``lower`` / ``upper``
    (the central ``interval``); a hierarchical one predicts for ``segment`` (``None``:
    population level).

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
    extra = _with_segment(model, frame, segment)
    pred = _predict(model.probability_alive, frame, bayesian=_is_bayesian(model),
                    interval=interval, **extra)
    out = frame[["frequency", "recency", "T"]].copy()
    out["probability_alive"] = pred["value"].to_numpy()
    if "lower" in pred:
        out["lower"], out["upper"] = pred["lower"].to_numpy(), pred["upper"].to_numpy()
    out["is_purchase"] = grid.isin(days)
    out.index = pd.DatetimeIndex(grid, name="date")
    out.attrs.update(time_unit=unit, customer_id=customer_id, model=_model_label(model))
    return out


def plot_probability_alive_history(model: Any,
                                   purchases: pd.DataFrame | Sequence[Any] | pd.Series,
                                   observation_end: Any, *, customer_id: Any = None,
                                   customer_id_col: str = "customer_id",
                                   datetime_col: str = "date", freq: str = "D",
                                   calibration_end: Any = None, segment: Any = None,
                                   interval: float | None = DEFAULT_INTERVAL,
                                   ax: Axes | None = None) -> Axes:
    """One customer's P(alive) over time with their purchases marked
    (:func:`probability_alive_history`); ``calibration_end`` adds a marker line."""
    hist = probability_alive_history(model, purchases, observation_end,
                                     customer_id=customer_id, customer_id_col=customer_id_col,
                                     datetime_col=datetime_col, freq=freq, segment=segment,
                                     interval=interval)
    ax = _new_ax(ax, figsize=(9.0, 4.0))
    when = hist.index
    ax.plot(when, hist["probability_alive"], color=MODEL_COLOR, linewidth=2,
            label=f"P(alive), {_model_label(model)}")
    if "lower" in hist:
        ax.fill_between(when, hist["lower"], hist["upper"], color=MODEL_COLOR,
                        alpha=BAND_ALPHA, linewidth=0,
                        label=_interval_label(interval))
    buys = hist.loc[hist["is_purchase"]]
    ax.vlines(buys.index, 0, 1, colors=ACTUAL_COLOR, linestyles=":", linewidth=1, alpha=0.7)
    ax.plot(buys.index, np.ones(len(buys)), linestyle="none", marker="v", markersize=8,
            color=ACTUAL_COLOR, label=f"Purchase ({len(buys)})", clip_on=False)
    if calibration_end is not None:
        _mark_calibration_end(ax, _as_day(calibration_end, "calibration_end"), top=False)
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("Probability alive")
    ax.set_xlabel("Date")
    who = f"Customer {customer_id}" if customer_id is not None else "One customer"
    ax.set_title(f"{who}: probability of being alive over time")
    _date_axis(ax)
    ax.legend(frameon=False, loc="lower left")
    ax.grid(alpha=0.3)
    return ax


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
    evaluated once per distinct x (and segment).

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
    codes = _segment_codes(model, rep)
    keys = pd.DataFrame({"code": codes, "x": rep["frequency"].to_numpy(float)}
                        ).value_counts(sort=False).sort_index()
    g_codes = keys.index.get_level_values("code").to_numpy(np.int64)
    g_x = keys.index.get_level_values("x").to_numpy(float)
    weights = keys.to_numpy(float) / len(rep)
    draws = _param_draws(model, g_codes, max_draws)
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
    if _is_bayesian(model) and interval is not None:
        out["density_lower"], out["density_upper"] = _quantiles(dens, interval)
    pop = _param_draws(model, np.zeros(1, dtype=np.int64), max_draws) if not getattr(
        model, "segment_col", None) else None
    if pop is not None:
        model_mean = float(np.mean(population_mean_spend(pop["p"], pop["q"], pop["v"])))
    else:
        model_mean = float(model.population_mean_spend())
    out.attrs.update(observed_mean=float(m.mean()), model_mean=model_mean,
                     n_customers=len(rep), max_spend=top, model=_model_label(model),
                     share_above_max=float(np.mean(m > top)))
    return out


def plot_spend_density(model: Any, rfm: pd.DataFrame, *, bins: int = 40,
                       n_points: int = 200, max_spend: float | None = None,
                       interval: float | None = DEFAULT_INTERVAL, currency: str = "",
                       ax: Axes | None = None) -> Axes:
    """Observed distribution of repeat buyers' mean spend (histogram, as a density) against
    the Gamma-Gamma model's (:func:`spend_density_table`), with both means marked.

    The histogram is normalised over *all* repeat buyers, so it compares directly with the
    model density even though the axis stops at ``max_spend``.
    """
    table = spend_density_table(model, rfm, n_points=n_points, max_spend=max_spend,
                                interval=interval)
    top = table.attrs["max_spend"]
    m = rfm.loc[rfm["frequency"] > 0, "monetary_value"].to_numpy(float)
    ax = _new_ax(ax)
    counts, edges = np.histogram(m, bins=bins, range=(0.0, top))
    height = counts / (len(m) * np.diff(edges))
    ax.bar(edges[:-1], height, np.diff(edges), align="edge", color=ACTUAL_COLOR, alpha=0.55,
           label=f"Actual ({_fmt_number(len(m))} repeat buyers)")
    ax.plot(table.index, table["density"], color=MODEL_COLOR, linewidth=2.2,
            label=_model_label(model))
    if "density_lower" in table:
        ax.fill_between(table.index, table["density_lower"], table["density_upper"],
                        color=MODEL_COLOR, alpha=BAND_ALPHA, linewidth=0,
                        label=_interval_label(interval))
    obs, mod = table.attrs["observed_mean"], table.attrs["model_mean"]
    ax.axvline(obs, color=ACTUAL_COLOR, linestyle=":", linewidth=1.5,
               label=f"Actual mean {currency}{obs:,.2f}")
    ax.axvline(mod, color=MODEL_COLOR, linestyle=":", linewidth=1.5,
               label=f"Model mean {currency}{mod:,.2f}")
    ax.set_xlim(0, top)
    ax.set_xlabel(f"Mean spend per repeat transaction ({currency or 'currency'})")
    ax.set_ylabel("Density")
    above = table.attrs["share_above_max"]
    note = f"; {above:.1%} of customers beyond the axis" if above > 0 else ""
    ax.set_title(f"Mean spend per customer: actual vs model{note}")
    _thousands(ax.xaxis)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return ax


# --------------------------------------------------------------------------------------
# CLV: distribution, Lorenz curve, gains
# --------------------------------------------------------------------------------------


def _values(values: Any, name: str = "values") -> np.ndarray:
    """A 1-D float array from a Series, array or CLV frame (its ``clv`` column)."""
    if isinstance(values, pd.DataFrame):
        require_columns(values, ["clv"], "CLV frame")
        values = values["clv"]
    arr = np.asarray(values, dtype=float).reshape(-1)
    if len(arr) == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains missing or infinite values")
    return arr


def _share_grid(n_points: int) -> np.ndarray:
    if not isinstance(n_points, int) or n_points < 2:
        raise ValueError(f"n_points must be an integer >= 2, got {n_points!r}")
    return np.linspace(0.0, 1.0, n_points)


def _cumulative_share(order_values: np.ndarray, weights: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Exact breakpoints (share of customers, share of total) of a ranked curve.

    ``order_values`` are the ranking keys in rank order; customers with equal keys form one
    group whose value is spread evenly along it (so ties have no arbitrary order).
    """
    n = len(order_values)
    ends = np.flatnonzero(np.r_[order_values[1:] != order_values[:-1], True]) + 1
    cum = np.r_[0.0, np.cumsum(weights)[ends - 1]]
    total = cum[-1]
    share_c = np.r_[0.0, ends / n]
    share_v = cum / total if total > 0 else np.full(len(cum), np.nan)
    return share_c, share_v


def lorenz_table(values: Any, *, n_points: int = 101) -> pd.DataFrame:
    """Concentration of value across customers: the Lorenz curve and its Gini coefficient.

    ``values`` (CLV, revenue ...; a Series, array, or a CLV frame's ``clv``) must be
    non-negative. On a grid of ``n_points`` shares of customers F, returns ``lorenz`` — the
    share of value held by the *least* valuable F (the Lorenz curve L(F)) — and ``top_share``
    — the share held by the *most* valuable F, 1 - L(1 - F), the "top 10% of customers hold
    x%" view. ``attrs``: ``gini`` = 1 - 2 ∫ L (exact, from every customer: 0 when all are
    equal, → 1 when one customer holds everything), ``top_10_share`` and ``top_20_share``,
    ``total`` and ``n_customers``.
    """
    arr = _values(values)
    if np.any(arr < 0):
        raise ValueError("values must be non-negative for a Lorenz curve")
    sorted_values = np.sort(arr)
    F, L = _cumulative_share(sorted_values, sorted_values)
    grid = _share_grid(n_points)
    lorenz = np.interp(grid, F, L)
    top = 1.0 - np.interp(1.0 - grid, F, L)
    gini = float(1.0 - np.sum(np.diff(F) * (L[1:] + L[:-1])))
    out = pd.DataFrame({"lorenz": lorenz, "top_share": top},
                       index=pd.Index(grid, name="share_of_customers"))
    out.attrs.update(gini=gini, top_10_share=float(1.0 - np.interp(0.9, F, L)),
                     top_20_share=float(1.0 - np.interp(0.8, F, L)), total=float(arr.sum()),
                     n_customers=len(arr))
    return out


def gains_table(predicted: Any, actual: Any, *, n_points: int = 101) -> pd.DataFrame:
    """Gains curve: share of the actual (e.g. holdout) value captured by the customers ranked
    highest by a prediction.

    Customers are ranked by ``predicted`` (highest first; tied predictions share their actual
    value evenly); ``actual`` must be non-negative. Two Series are aligned on their index;
    otherwise they must have the same length. On a grid of ``n_points`` shares of customers
    returns ``model`` (captured by the prediction's ranking), ``perfect`` (ranking by the
    actual values themselves) and ``random`` (the diagonal).

    ``attrs``: ``top_decile_capture`` (model's share at 10%), ``top_decile_capture_perfect``,
    ``gini`` = 2 × area between the model curve and the diagonal (1 - 1/n-ish for a perfect
    ranking, 0 for a random one), ``normalized_gini`` = gini / perfect gini, ``n_customers``.
    """
    if isinstance(predicted, pd.Series) and isinstance(actual, pd.Series):
        if not predicted.index.equals(actual.index):
            if set(predicted.index) != set(actual.index):
                raise ValueError("predicted and actual must have the same customers (index)")
            actual = actual.reindex(predicted.index)
    pred = _values(predicted, "predicted")
    act = _values(actual, "actual")
    if len(pred) != len(act):
        raise ValueError(f"predicted ({len(pred)}) and actual ({len(act)}) differ in length")
    if np.any(act < 0):
        raise ValueError("actual values must be non-negative for a gains curve")
    grid = _share_grid(n_points)

    def curve(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(-keys, kind="stable")
        return _cumulative_share(-keys[order], act[order])

    Fm, Gm = curve(pred)
    Fp, Gp = curve(act)

    def gini(F: np.ndarray, G: np.ndarray) -> float:
        return float(np.sum(np.diff(F) * (G[1:] + G[:-1])) - 1.0)

    g_model, g_perfect = gini(Fm, Gm), gini(Fp, Gp)
    out = pd.DataFrame({"model": np.interp(grid, Fm, Gm), "perfect": np.interp(grid, Fp, Gp),
                        "random": grid}, index=pd.Index(grid, name="share_of_customers"))
    out.attrs.update(
        top_decile_capture=float(np.interp(0.1, Fm, Gm)),
        top_decile_capture_perfect=float(np.interp(0.1, Fp, Gp)),
        gini=g_model,
        normalized_gini=g_model / g_perfect if g_perfect > 0 else float("nan"),
        n_customers=len(act),
    )
    return out


def plot_clv_distribution(clv: Any, *, bins: int = 50, clip_quantile: float = 0.99,
                          currency: str = "", ax: Axes | None = None) -> Axes:
    """Histogram of customer lifetime values with the mean and median marked.

    ``clv`` is a Series/array or the frame of :func:`clvmodels.customer_lifetime_value` (its
    ``clv`` column; for Bayesian models the posterior means, and the title gives the
    credible interval of the total from ``attrs``). The axis stops at the ``clip_quantile``
    of the values (long tails would squash the bars); the title says how many lie beyond.
    """
    arr = _values(clv, "clv")
    if not 0 < clip_quantile <= 1:
        raise ValueError(f"clip_quantile must be in (0, 1], got {clip_quantile!r}")
    top = float(np.quantile(arr, clip_quantile))
    low = min(0.0, float(arr.min()))
    if top <= low:
        top = low + 1.0
    ax = _new_ax(ax)
    ax.hist(np.clip(arr, low, top), bins=bins, range=(low, top), color=ACTUAL_COLOR,
            alpha=0.8, label=f"{_fmt_number(len(arr))} customers")
    mean, median = float(arr.mean()), float(np.median(arr))
    ax.axvline(mean, color=MODEL_COLOR, linestyle="--", linewidth=1.8,
               label=f"Mean {currency}{mean:,.2f}")
    ax.axvline(median, color="0.2", linestyle=":", linewidth=1.8,
               label=f"Median {currency}{median:,.2f}")
    attrs = getattr(clv, "attrs", {}) or {}
    total = f"total {currency}{arr.sum():,.0f}"
    if "total_clv_lower" in attrs:
        total += (f" ({currency}{attrs['total_clv_lower']:,.0f} – "
                  f"{currency}{attrs['total_clv_upper']:,.0f})")
    horizon = ""
    if "horizon" in attrs and attrs.get("time_unit"):
        horizon = f" over {attrs['horizon']:,.4g} {_unit_name(attrs['time_unit'])}"
    beyond = int(np.sum(arr > top))
    ax.set_title(f"Customer lifetime value{horizon}: {total}"
                 + (f"\n{_fmt_number(beyond)} customers above {currency}{top:,.0f} shown in "
                    "the last bar" if beyond else ""))
    ax.set_xlabel(f"CLV per customer ({currency or 'currency'})")
    ax.set_ylabel("Customers")
    _thousands(ax.xaxis)
    _thousands(ax.yaxis)
    ax.legend(frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return ax


def plot_lorenz(values: Any, *, label: str = "CLV", ax: Axes | None = None) -> Axes:
    """Cumulative share of value held by the top customers (customers ranked from most to
    least valuable), with the line of equality and the Gini coefficient (:func:`lorenz_table`).
    """
    table = lorenz_table(values, n_points=501)
    ax = _new_ax(ax, figsize=(6.0, 5.0))
    grid = table.index.to_numpy()
    ax.plot(grid, table["top_share"], color=ACTUAL_COLOR, linewidth=2.2,
            label=f"{label} (Gini {table.attrs['gini']:.2f})")
    ax.plot([0, 1], [0, 1], color="0.5", linestyle="--", linewidth=1, label="Equal value")
    top10 = table.attrs["top_10_share"]
    ax.plot([0.1], [top10], marker="o", color=MODEL_COLOR, linestyle="none")
    ax.annotate(f"top 10% of customers hold {top10:.0%}", xy=(0.1, top10),
                xytext=(12, -14), textcoords="offset points", fontsize="small")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("Customers, ranked from most to least valuable")
    ax.set_ylabel(f"Cumulative share of {label}")
    ax.set_title(f"Concentration of {label} ({_fmt_number(table.attrs['n_customers'])} "
                 "customers)")
    ax.legend(frameon=False, loc="lower right")
    ax.grid(alpha=0.3)
    return ax


def plot_gains(predicted: Any, actual: Any, *, predicted_label: str = "predicted CLV",
               actual_label: str = "holdout revenue", ax: Axes | None = None) -> Axes:
    """Gains curve: share of ``actual`` captured by customers ranked on ``predicted``,
    against a perfect and a random ranking (:func:`gains_table`)."""
    table = gains_table(predicted, actual, n_points=501)
    ax = _new_ax(ax, figsize=(6.0, 5.0))
    grid = table.index.to_numpy()
    a = table.attrs
    ax.plot(grid, table["model"], color=MODEL_COLOR, linewidth=2.2,
            label=f"Ranked by {predicted_label} (top 10% capture "
                  f"{a['top_decile_capture']:.0%}, Gini {a['gini']:.2f})")
    ax.plot(grid, table["perfect"], color=ACTUAL_COLOR, linewidth=1.5, linestyle="--",
            label=f"Perfect ranking (top 10% {a['top_decile_capture_perfect']:.0%})")
    ax.plot(grid, table["random"], color="0.5", linewidth=1, linestyle=":",
            label="Random ranking")
    ax.axvline(0.1, color="0.75", linewidth=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(f"Customers, ranked by {predicted_label} (highest first)")
    ax.set_ylabel(f"Cumulative share of {actual_label}")
    ax.set_title(f"Gains: {actual_label} captured by top-ranked customers")
    ax.legend(frameon=False, loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    return ax


# --------------------------------------------------------------------------------------
# Bayesian diagnostics
# --------------------------------------------------------------------------------------


def _require_bayesian(model: Any, what: str) -> None:
    if not _is_bayesian(model):
        raise TypeError(f"{what} needs a Bayesian model (fitted with PyMC), got "
                        f"{type(model).__name__}")
    model._check_fitted()


def _default_var_names(model: Any) -> list[str]:
    """Hyperparameters then natural parameters (hierarchical), or the parameters."""
    if getattr(model, "segment_col", None):
        return ([f"mu_{u}" for u in model.latents] + [f"sigma_{u}" for u in model.latents]
                + list(model.param_names))
    return list(model.param_names)


def plot_trace(model: Any, var_names: Sequence[str] | None = None, *,
               kind: Literal["trace", "rank_bars", "rank_vlines"] = "trace",
               ax: Any = None) -> np.ndarray:
    """MCMC diagnostics with ArviZ: trace plots (density + draws per chain) or rank plots.

    ``var_names`` default to the model's parameters (and hyperparameters when hierarchical).
    Returns ArviZ's array of Axes; ``ax`` is passed through (shape ``(n_vars, 2)`` for
    ``"trace"``, ``n_vars`` Axes for rank plots).
    """
    _require_bayesian(model, "plot_trace")
    import arviz as az

    names = list(var_names) if var_names is not None else _default_var_names(model)
    if kind not in ("trace", "rank_bars", "rank_vlines"):
        raise ValueError("kind must be 'trace', 'rank_bars' or 'rank_vlines'")
    with warnings.catch_warnings():
        # ArviZ 0.x calls a matplotlib helper the way matplotlib 3.11 deprecates
        warnings.simplefilter("ignore", MatplotlibDeprecationWarning)
        if kind == "trace":
            axes = az.plot_trace(model.idata_, var_names=names, axes=ax, compact=True,
                                 backend_kwargs={"layout": "constrained"} if ax is None
                                 else None)
        else:
            axes = az.plot_rank(model.idata_, var_names=names, kind=kind.split("_")[1], ax=ax)
    axes = np.asarray(axes)
    fig = np.ravel(axes)[0].figure
    if ax is None:
        what = "Trace" if kind == "trace" else "Rank"
        fig.suptitle(f"{what} plots: {_model_label(model)}")
    return axes


def _prior_logpdf(spec: dict[str, Any], grid: np.ndarray) -> np.ndarray:
    """Log density of a prior spec (``{"dist": "LogNormal", "mu": 0, "sigma": 2}``) on a grid,
    evaluated by PyMC itself so every PyMC distribution is supported."""
    import pymc as pm

    params = {k: v for k, v in spec.items() if k != "dist"}
    rv = getattr(pm, spec["dist"]).dist(**params)
    return np.asarray(pm.logp(rv, grid).eval(), dtype=float)


def plot_prior_posterior(model: Any, var_names: Sequence[str] | None = None, *,
                         bins: int = 30, ax: Any = None) -> np.ndarray:
    """Prior density (line) against the posterior (histogram of the draws) per parameter.

    ``var_names`` default to the parameters that carry a prior (``model.priors_``: the natural
    parameters, or the hyperparameters of a hierarchical model). Each panel spans the
    posterior's range, so a prior that is nearly flat there shows the data dominate. Returns
    the array of Axes (``ax``: a sequence of at least ``len(var_names)`` Axes).
    """
    _require_bayesian(model, "plot_prior_posterior")
    priors = model.priors_
    names = list(var_names) if var_names is not None else list(priors)
    unknown = [n for n in names if n not in priors]
    if unknown:
        raise ValueError(f"no prior for {unknown}; parameters with priors: {list(priors)}")
    axes = _new_axes(ax, len(names))
    post = model.idata_.posterior
    for name, a in zip(names, axes, strict=True):
        draws = post[name].to_numpy().ravel()
        lo, hi = np.quantile(draws, [0.001, 0.999])
        pad = 0.35 * (hi - lo) if hi > lo else 0.5 * max(abs(lo), 1.0)
        left, right = lo - pad, hi + pad
        if _spec_positive(priors[name]):
            left = max(left, 0.0)
        heights, _, _ = a.hist(draws, bins=bins, range=(left, right), density=True,
                               color=ACTUAL_COLOR, alpha=0.6, label="Posterior")
        grid = np.linspace(left, right, 300)
        with np.errstate(all="ignore"):
            dens = np.exp(_prior_logpdf(priors[name], grid))
        spec = priors[name]
        args = ", ".join(f"{k}={v:.3g}" for k, v in spec.items() if k != "dist")
        a.plot(grid, dens, color=MODEL_COLOR, linewidth=2, label="Prior")
        a.set_title(f"{name}\nprior {spec['dist']}({args})", fontsize="medium")
        a.set_xlim(left, right)
        # a prior spiking at the edge (e.g. LogNormal near 0) must not squash the posterior
        peak = float(np.max(heights))
        finite = dens[np.isfinite(dens)]
        prior_peak = float(finite.max()) if len(finite) else 0.0
        a.set_ylim(0, 1.15 * max(peak, min(prior_peak, 2.0 * peak)))
        a.set_yticks([])
    axes[0].legend(frameon=False, fontsize="small", loc="upper left")
    if ax is None:
        axes[0].figure.suptitle(f"Prior vs posterior: {_model_label(model)}")
    return axes


def _spec_positive(spec: dict[str, Any]) -> bool:
    """Whether a prior spec's distribution lives on the positive half-line."""
    return spec["dist"] in {"LogNormal", "Gamma", "HalfNormal", "HalfCauchy", "Exponential",
                            "HalfStudentT", "InverseGamma", "Weibull", "ChiSquared", "Lognormal"}


def plot_segment_forest(model: Any, params: Sequence[str] | None = None, *,
                        ax: Any = None) -> np.ndarray:
    """Forest plot of a hierarchical model's segment parameters: posterior mean and
    credible interval per segment (``model.segment_params_``), one panel per parameter, with
    the typical segment (``model.params_``) as a dashed line. Segment labels carry their
    number of customers. Returns the array of Axes.
    """
    _require_bayesian(model, "plot_segment_forest")
    table = getattr(model, "segment_params_", None)
    if table is None:
        raise TypeError(f"{type(model).__name__} is not hierarchical (no segment_params_): "
                        "fit it with segment_col=... for a forest plot of segments")
    names = list(params) if params is not None else list(model.param_names)
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise ValueError(f"unknown parameter(s) {missing}; choose from {list(model.param_names)}")
    axes = _new_axes(ax, len(names), ncols=len(names),
                     panel=(3.2, max(2.5, 0.45 * len(table) + 1.2)))
    pos = np.arange(len(table))[::-1]
    labels = [f"{seg} (n={_fmt_number(n)})" for seg, n in zip(table.index, table["n_customers"],
                                                              strict=True)]
    for i, (name, a) in enumerate(zip(names, axes, strict=True)):
        mean = table[name].to_numpy(float)
        err = np.vstack([mean - table[f"{name}_lower"].to_numpy(float),
                         table[f"{name}_upper"].to_numpy(float) - mean])
        a.errorbar(mean, pos, xerr=np.clip(err, 0, None), fmt="o", color=MODEL_COLOR,
                   ecolor=MODEL_COLOR, capsize=3)
        a.axvline(float(model.params_[name]), color="0.4", linestyle="--", linewidth=1)
        a.set_yticks(pos, labels if i == 0 else [""] * len(pos))
        a.set_title(name)
        a.grid(axis="x", alpha=0.3)
    if ax is None:
        axes[0].figure.suptitle(f"Segment parameters by {model.segment_col}: posterior mean "
                                f"and 90% interval (dashed: typical segment)")
    return axes
