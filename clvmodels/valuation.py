"""Customer lifetime value: expected purchases × expected spend × margin, discounted.

Knows nothing of how a model was fitted: it needs a transaction model with
``cumulative_expected_purchases(rfm, times)`` and ``probability_alive(rfm)``, and a spend
model with ``expected_spend(rfm)`` (or a constant spend).

How the future is discounted (``discount_rate`` is an **annual** rate d):

* ``"period"`` (default): purchases expected in each period of length ``period`` are
  discounted at the period's end, with factor (1 + d)^-(end in years);
* ``"continuous"``: each purchase is discounted at the moment it is expected, e^{-delta tau}
  with delta = ln(1 + d) per year, integrated numerically over a fine (daily) grid — or in
  closed form (DERT) when ``horizon=np.inf`` and the model has one (Pareto/NBD).

The cumulative expected purchases are evaluated at every period boundary in one broadcast
over the *unique* (frequency, recency, T) rows (customers × boundaries) and differenced — no
loop over periods — in chunks of rows so memory stays bounded.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import numpy as np
import pandas as pd

from clvmodels.rfm import TIME_UNITS, compress_rfm, time_unit_days

__all__ = ["customer_lifetime_value", "discount_factors", "parse_horizon", "period_length"]

_CHUNK_CELLS = 4_000_000  # unique rows × boundaries evaluated at once (~32 MB of float64)


def period_length(period: str | float, time_unit: str) -> float:
    """Length of ``period`` ("D", "W", "M", "Y", or a number of model time units) in units."""
    if isinstance(period, str):
        return time_unit_days(period) / time_unit_days(time_unit)
    value = float(period)
    if not value > 0:
        raise ValueError(f"period must be positive, got {period!r}")
    return value


_HORIZON = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([DWMY]?)\s*$", re.IGNORECASE)


def parse_horizon(text: str | float, time_unit: str) -> float:
    """A horizon such as "12M", "52W", "90D", "2Y" or a bare number (model time units),
    converted to ``time_unit`` with the fixed day counts of :data:`clvmodels.TIME_UNITS`."""
    if isinstance(text, int | float):
        value, unit = float(text), ""
    else:
        match = _HORIZON.match(str(text))
        if not match:
            raise ValueError(f"cannot read horizon {text!r}: write e.g. 12M, 52W, 365D or 1Y")
        value, unit = float(match.group(1)), match.group(2).upper()
    if not value > 0:
        raise ValueError(f"horizon must be positive, got {text!r}")
    if not unit:
        return value
    return value * time_unit_days(unit) / time_unit_days(time_unit)


def discount_factors(times: np.ndarray, discount_rate: float, time_unit: str) -> np.ndarray:
    """(1 + d)^-(t in years) for times in ``time_unit`` and an annual rate d."""
    years = np.asarray(times, dtype=float) * time_unit_days(time_unit) / TIME_UNITS["Y"]
    return np.exp(-math.log1p(discount_rate) * years)


def _boundaries(horizon: float, step: float) -> np.ndarray:
    k = math.ceil(horizon / step - 1e-9)
    b = np.arange(1, k + 1, dtype=float) * step
    b[-1] = horizon  # a last, partial period ends at the horizon
    return b


def _discount_grid(horizon: float, period: str | float, discounting: str,
                   discount_rate: float, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Period boundaries in (0, horizon] and the discount factor applied to each period."""
    if discounting == "period":
        times = _boundaries(horizon, period_length(period, unit))
        weights = discount_factors(times, discount_rate, unit)
    else:
        # continuous: daily grid, each day's purchases discounted at its midpoint
        times = _boundaries(horizon, 1.0 / time_unit_days(unit))
        mids = times - 0.5 * np.diff(np.concatenate([[0.0], times]))
        weights = discount_factors(mids, discount_rate, unit)
    return times, weights


def _abel_coefficients(weights: np.ndarray) -> np.ndarray:
    """Coefficients c with sum_k c_k E(t_k) = sum_k f_k (E(t_k) - E(t_{k-1})), E(t_0) = 0.

    Abel summation: c_k = f_k - f_{k+1} for k < K and c_K = f_K.
    """
    coef = np.array(weights, dtype=float)
    coef[:-1] -= weights[1:]
    return coef


def _discounted_purchases(
    model: Any, rows: pd.DataFrame, times: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: sum_k f_k (E(t_k) - E(t_{k-1})) and E(t_K).

    The discounted sum is taken by Abel summation, f_K E_K + sum_{k<K} (f_k - f_{k+1}) E_k,
    so that all f = 1 (no discounting) gives exactly E(horizon).
    """
    coef = _abel_coefficients(weights)
    disc, total = np.empty(len(rows)), np.empty(len(rows))
    chunk = max(1, _CHUNK_CELLS // len(times))
    for start in range(0, len(rows), chunk):
        part = rows.iloc[start:start + chunk]
        cum = model.cumulative_expected_purchases(part, times)  # (rows, K)
        disc[start:start + chunk] = cum @ coef
        total[start:start + chunk] = cum[:, -1]
    return disc, total


def customer_lifetime_value(
    transaction_model: Any,
    spend_model: Any,
    rfm: pd.DataFrame,
    *,
    horizon: float,
    discount_rate: float,
    margin: float = 1.0,
    period: str | float = "M",
    discounting: Literal["period", "continuous"] = "period",
    acquisition_cost: float | pd.Series | None = None,
    interval: float = 0.9,
) -> pd.DataFrame:
    """Per-customer CLV: the present value of future margin.

    Parameters
    ----------
    transaction_model
        A fitted BG/NBD, MBG/NBD or Pareto/NBD model.
    spend_model
        A fitted :class:`~clvmodels.GammaGamma`, or a number (the same spend for everyone).
    rfm
        Customers to value (``frequency, recency, T`` [, ``monetary_value``]), in the model's
        time unit. Not modified.
    horizon
        How far ahead, in the model's time unit (e.g. 52 weeks). ``np.inf`` is allowed when
        the model has a closed form for it (Pareto/NBD's DERT, continuous discounting).
    discount_rate
        **Annual** discount rate, e.g. 0.10.
    margin
        Share of revenue that is profit (1.0 = value revenue).
    period
        Bucket length for ``discounting="period"``: "D", "W", "M" (30.4375 days), "Y", or a
        number of model time units.
    discounting
        "period" (discount at each period's end) or "continuous".
    acquisition_cost
        Optional cost to acquire each customer (scalar or Series on the rfm index); adds
        ``clv_to_cac``.
    interval
        Bayesian transaction models only: probability of the central credible intervals
        ``clv_lower`` / ``clv_upper`` and of the base's total (default 0.9).

    Returns
    -------
    DataFrame on ``rfm``'s index: ``expected_purchases`` (undiscounted, over the horizon),
    ``probability_alive``, ``expected_spend``, ``clv`` [, ``clv_to_cac``].

    With a Bayesian transaction model (``BayesianBetaGeo``) every column is a posterior mean
    and ``clv_lower`` / ``clv_upper`` are added; the spend model's draws (a
    ``BayesianGammaGamma``) are paired with the transaction model's, so the interval includes
    spend uncertainty. ``attrs`` then carry ``total_clv`` (posterior mean of the base's
    total) and ``total_clv_lower`` / ``total_clv_upper``. The same period boundaries and
    discount factors are used as for maximum-likelihood models; the draws are processed in
    chunks of customers (the model's ``discounted_purchase_chunks``), so memory stays
    bounded whatever the number of customers and draws.
    """
    unit = getattr(transaction_model, "time_unit_", None) or rfm.attrs.get("time_unit")
    if unit is None:
        raise ValueError("the time unit is unknown: fit the model on an rfm_summary() frame")
    if not (isinstance(discount_rate, int | float) and discount_rate > -1):
        raise ValueError(f"discount_rate must be an annual rate > -1, got {discount_rate!r}")
    if not (isinstance(margin, int | float) and margin >= 0):
        raise ValueError(f"margin must be a non-negative number, got {margin!r}")
    if discounting not in ("period", "continuous"):
        raise ValueError("discounting must be 'period' or 'continuous'")
    horizon = float(horizon)
    if not horizon > 0:
        raise ValueError(f"horizon must be positive, got {horizon!r}")

    if getattr(transaction_model, "is_bayesian", False):
        return _posterior_lifetime_value(
            transaction_model, spend_model, rfm, unit=unit, horizon=horizon,
            discount_rate=discount_rate, margin=margin, period=period, discounting=discounting,
            acquisition_cost=acquisition_cost, interval=interval)
    p_alive = transaction_model.probability_alive(rfm)  # also validates rfm and time unit
    if isinstance(spend_model, int | float):
        spend = pd.Series(float(spend_model), index=rfm.index)
    else:
        spend = spend_model.expected_spend(rfm)

    comp = compress_rfm(rfm, validate=False)
    rows = comp.to_frame().drop(columns="weight")
    rows.attrs["time_unit"] = unit
    if math.isinf(horizon):
        dert = getattr(transaction_model, "expected_discounted_transactions", None)
        if dert is None or discounting != "continuous":
            raise ValueError(
                "horizon=np.inf needs a closed form: use a Pareto/NBD model with "
                "discounting='continuous' (DERT), or give a finite horizon"
            )
        disc = comp.expand(dert(rows, discount_rate).to_numpy())
        expected = comp.expand(
            transaction_model.cumulative_expected_purchases(rows, np.array([np.inf]))[:, 0])
    else:
        times, weights = _discount_grid(horizon, period, discounting, discount_rate, unit)
        disc_rows, total_rows = _discounted_purchases(transaction_model, rows, times, weights)
        disc, expected = comp.expand(disc_rows), comp.expand(total_rows)
    out = pd.DataFrame(index=rfm.index)
    out["expected_purchases"] = expected.to_numpy()
    out["probability_alive"] = p_alive.to_numpy()
    out["expected_spend"] = spend.to_numpy()
    out["clv"] = margin * spend.to_numpy() * disc.to_numpy()
    if acquisition_cost is not None:
        from clvmodels.kpis import clv_to_cac

        out["clv_to_cac"] = clv_to_cac(out["clv"], acquisition_cost)
    out.attrs.update(time_unit=unit, horizon=horizon, discount_rate=discount_rate,
                     margin=margin, period=period, discounting=discounting)
    return out


def _posterior_lifetime_value(
    transaction_model: Any,
    spend_model: Any,
    rfm: pd.DataFrame,
    *,
    unit: str,
    horizon: float,
    discount_rate: float,
    margin: float,
    period: str | float,
    discounting: str,
    acquisition_cost: float | pd.Series | None,
    interval: float,
) -> pd.DataFrame:
    """:func:`customer_lifetime_value` for a Bayesian transaction model (posterior draws)."""
    if math.isinf(horizon):
        raise ValueError("Bayesian models need a finite horizon")
    if not 0 < interval < 1:
        raise ValueError(f"interval must be in (0, 1), got {interval!r}")
    times, weights = _discount_grid(horizon, period, discounting, discount_rate, unit)
    cols, total = _posterior_clv(transaction_model, spend_model, rfm, times,
                                 _abel_coefficients(weights), margin=margin, interval=interval)
    out = pd.DataFrame(cols, index=rfm.index)
    if acquisition_cost is not None:
        from clvmodels.kpis import clv_to_cac

        out["clv_to_cac"] = clv_to_cac(out["clv"], acquisition_cost)
    q = (1 - interval) / 2
    lo, hi = np.quantile(total, [q, 1 - q])
    out.attrs.update(time_unit=unit, horizon=horizon, discount_rate=discount_rate,
                     margin=margin, period=period, discounting=discounting, interval=interval,
                     total_clv=float(total.mean()), total_clv_lower=float(lo),
                     total_clv_upper=float(hi), n_draws=len(total))
    return out


def _even_draws(n: int, k: int) -> np.ndarray:
    """k evenly spaced indices out of n draws (all of them, in order, when k == n)."""
    return np.arange(n) if k == n else np.round(np.linspace(0, n - 1, k)).astype(np.int64)


def _posterior_clv(
    transaction_model: Any,
    spend_model: Any,
    rfm: pd.DataFrame,
    times: np.ndarray,
    coef: np.ndarray,
    *,
    margin: float,
    interval: float,
    n_jobs: int | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-customer CLV draws reduced on the fly: ``(columns, total CLV draws)``.

    For each posterior draw s and customer i,
    ``CLV_i^s = margin · E[M_i]^s · sum_k coef_k E[Y_i(t_k)]^s`` — the discounted sum of the
    cumulative expected purchases at the period boundaries ``times`` by Abel summation — with
    the spend model's draws paired with the transaction model's (evenly thinned to the
    smaller number when they differ). The transaction model hands its draws over in chunks of
    customers (``discounted_purchase_chunks``), the spend model for the customers asked for
    (``spend_draws_by_customer``); each chunk is reduced to mean and central ``interval`` —
    never customers × draws × periods at once. ``n_jobs`` threads (default: one per CPU)
    process the blocks in parallel (numpy releases the GIL in the heavy loops).

    Returns the columns ``expected_purchases``, ``probability_alive`` and ``expected_spend``
    (posterior means), ``clv``, ``clv_lower``, ``clv_upper`` and the draws of the base's
    total CLV.
    """
    import os

    n = len(rfm)
    S_t = transaction_model.n_draws
    bayes_spend = hasattr(spend_model, "spend_draws_by_customer")
    S_s = spend_model.n_draws if bayes_spend else S_t
    S = min(S_t, S_s)
    chunks = transaction_model.discounted_purchase_chunks(rfm, times, coef,
                                                          draws=_even_draws(S_t, S))
    spend_draws = None
    spend_fixed: np.ndarray | None = None
    if isinstance(spend_model, int | float):
        spend_fixed = np.full(n, float(spend_model))
    elif bayes_spend:
        spend_draws = spend_model.spend_draws_by_customer(rfm, draws=_even_draws(S_s, S))
    else:
        spend_fixed = spend_model.expected_spend(rfm).to_numpy(dtype=float)
    q = (1 - interval) / 2
    out = {name: np.empty(n) for name in ("expected_purchases", "probability_alive",
                                           "expected_spend", "clv", "clv_lower", "clv_upper")}

    def block(i: int) -> np.ndarray:
        part = np.zeros(S)
        for chunk in chunks.block(i):
            cust = chunk.customers
            if spend_draws is None:
                spend = spend_fixed[cust][None, :]  # type: ignore[index]
                out["expected_spend"][cust] = spend_fixed[cust]  # type: ignore[index]
            else:
                spend = spend_draws.take(cust)
                out["expected_spend"][cust] = spend.mean(axis=0)
            clv = margin * spend * chunk.discounted
            out["clv"][cust] = clv.mean(axis=0)
            lo, hi = np.quantile(clv, [q, 1 - q], axis=0)
            out["clv_lower"][cust], out["clv_upper"][cust] = lo, hi
            out["expected_purchases"][cust] = chunk.expected_purchases
            out["probability_alive"][cust] = chunk.probability_alive
            part += clv.sum(axis=1)
        return part

    # blocks write disjoint customers, so they run in threads without locks
    blocks = range(len(chunks))
    workers = max(1, min(n_jobs or (os.cpu_count() or 1), len(blocks)))
    if workers == 1:
        total = sum((block(i) for i in blocks), np.zeros(S))
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            total = sum(pool.map(block, blocks), np.zeros(S))
    return out, total
