"""Plain business KPIs computed from raw transactions, next to the model-based figures.

Every function takes raw transactions (one row per purchase) with the same column keywords
as :func:`clvmodels.rfm_summary` and validates them through
:func:`clvmodels.rfm.prepare_transactions`, so bad input fails with the same
:class:`~clvmodels.ValidationError` naming the column and showing the rows. The caller's frame
is never modified, and everything is one vectorised pass over the orders (no Python loop over
customers or periods).

Definitions
-----------
order
    One customer on one calendar day: purchases by the same customer on the same day are
    merged into one order and their amounts summed, exactly as :mod:`clvmodels.rfm` counts
    transactions. ``orders`` below always means these merged customer-days.
observation window
    From the first to the last transaction day in the data (both inclusive).
exposure
    A customer's exposure is the time from their first purchase to the end of the observation
    window, counting both days, in years of 365.25 days
    (:func:`clvmodels.rfm.time_unit_days`); the total over customers is the data's
    *customer-years*. For a customer's *own* annual rate it is floored at
    ``min_exposure_years`` (default one year) so that a customer seen for a few days is not
    extrapolated to hundreds of orders a year: for a customer seen for less than the floor,
    their "annual" rate is simply their orders so far. Overall rates are not floored: they
    divide by the customer-years actually observed (a floor there would turn "per year" into
    "per customer" whenever the window is shorter than the floor).
purchase frequency per year
    Per customer: orders / floored exposure. Overall: total orders / customer-years (orders
    per customer-year, i.e. the exposure-weighted mean of the customers' unfloored rates).
average order value (AOV)
    Revenue / orders (overall), or a customer's revenue / their orders.
repeat rate
    Share of customers with two or more orders (two or more distinct purchase days).
retention (per calendar period)
    A customer is *active* in a period when they order in it. *Retained* customers in period
    p were active in both p and p-1; *new* customers made their first order in p; *returning*
    customers were active in p, not in p-1, and not new (reactivated). Retention rate =
    retained(p) / active(p-1); churn rate = 1 - retention rate. The first period has no
    rate. Periods are pandas period aliases ("M", "Q", "Y", "W", ...). The first and last
    periods are usually only partly observed (``complete_period`` says which are whole); a
    partial last period understates retention.
average customer lifespan (years)
    ``method="churn"`` (default): the expected lifetime of a customer who churns with the mean
    per-period churn rate c, i.e. 1 / c periods, converted to years (with the default
    ``period="Y"`` this is 1 / mean annual churn rate). ``method="span"``: the mean observed
    span from first to last purchase over all customers (0 for one-time buyers); it is
    censored by the observation window and so a lower bound. In non-contractual businesses the
    churn-based figure depends strongly on the period: a customer who simply does not buy in a
    given month counts as churned that month, so monthly churn gives far shorter lifespans
    than annual churn.
historic CLV
    AOV x purchases per year x lifespan (years) x margin. Overall it uses the overall AOV and
    purchase frequency, which reduces to revenue per customer-year x lifespan x margin; per
    customer it uses the customer's own AOV and own annual purchase rate (their revenue /
    exposure) with the average lifespan. No discounting and no model: it is the baseline that
    model-based CLV (:mod:`clvmodels.valuation`) is compared against.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Literal, NamedTuple, overload

import numpy as np
import pandas as pd

from clvmodels._validation import ValidationError, fail_rows
from clvmodels.rfm import (
    NegativeAmounts,
    prepare_transactions,
    read_transactions,
    time_unit_days,
)

__all__ = [
    "DEFAULT_TIERS",
    "ValueTiers",
    "average_customer_lifespan",
    "average_order_value",
    "clv_to_cac",
    "cohort_retention",
    "historic_clv",
    "kpi_summary",
    "purchase_frequency",
    "repeat_rate",
    "retention_table",
    "value_tiers",
]

Transactions = pd.DataFrame | str | os.PathLike
LifespanMethod = Literal["churn", "span"]

#: Default value tiers, from the highest-value tier down: (name, share of customers).
DEFAULT_TIERS: tuple[tuple[str, float], ...] = (("top", 0.2), ("middle", 0.3), ("low", 0.5))

_YEAR_DAYS = time_unit_days("Y")


# --------------------------------------------------------------------------------------
# orders: validated transactions merged to one row per customer-day
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Orders:
    """Orders (customer-days) sorted by customer then day, with per-customer totals.

    Amounts are only ever needed per customer (revenue) or overall, so orders carry no amount:
    the per-customer revenue is summed straight from the transactions.
    """

    ids: pd.Index  # unique customer ids; position = customer code
    code: np.ndarray  # per order: customer code (non-decreasing)
    day: np.ndarray  # per order: day number since 1970-01-01 (int64, increasing per customer)
    start: np.ndarray  # per customer: position of their first order
    n_orders: np.ndarray  # per customer: number of orders
    revenue: np.ndarray  # per customer: total amount (0 without amounts)
    has_amounts: bool

    @property
    def n_customers(self) -> int:
        return len(self.ids)

    @property
    def total_orders(self) -> int:
        return len(self.day)

    @property
    def first_day(self) -> int:
        return int(self.day.min())

    @property
    def last_day(self) -> int:
        return int(self.day.max())

    def customer_first(self) -> np.ndarray:
        """Day number of each customer's first order."""
        return self.day[self.start]

    def customer_last(self) -> np.ndarray:
        """Day number of each customer's last order."""
        return self.day[self.start + self.n_orders - 1]

    def exposure_years(self, min_exposure_years: float) -> np.ndarray:
        """Years from each customer's first order to the window end (inclusive), floored."""
        days = (self.last_day - self.customer_first() + 1).astype(float)
        return np.maximum(days / _YEAR_DAYS, min_exposure_years)

    def average_order_value(self) -> float:
        return float(self.revenue.sum() / self.total_orders)

    def require_amounts(self, what: str) -> None:
        if not self.has_amounts:
            raise ValueError(f"{what} needs amounts: pass monetary_value_col")


def _load_orders(
    transactions: Transactions,
    *,
    customer_id_col: str,
    datetime_col: str,
    monetary_value_col: str | None,
    negative_amounts: NegativeAmounts,
) -> _Orders:
    """Validate transactions and merge same-day purchases into orders (vectorised)."""
    if not isinstance(transactions, pd.DataFrame):
        transactions = read_transactions(transactions)
    tx = prepare_transactions(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
        negative_amounts=negative_amounts,
    )
    try:
        codes, ids = pd.factorize(tx["id"], sort=True)
    except TypeError:  # ids of mixed, unorderable types: keep order of appearance
        codes, ids = pd.factorize(tx["id"], sort=False)
    codes = codes.astype(np.int64, copy=False)
    days = tx["day"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    d0 = int(days.min())
    width = int(days.max()) - d0 + 1
    # one sorted pass over (customer, day) keys; a plain sort is much faster than a groupby
    key = np.sort(codes * width + (days - d0))
    distinct = np.empty(len(key), dtype=bool)
    distinct[0] = True
    np.not_equal(key[1:], key[:-1], out=distinct[1:])
    key = key[distinct]
    code = key // width
    n_orders = np.bincount(code, minlength=len(ids))
    start = np.zeros(len(ids), dtype=np.int64)
    np.cumsum(n_orders[:-1], out=start[1:])
    revenue = np.bincount(codes, weights=tx["amount"].to_numpy(dtype=float), minlength=len(ids))
    return _Orders(
        ids=pd.Index(ids, name=customer_id_col),
        code=code,
        day=key % width + d0,
        start=start,
        n_orders=n_orders,
        revenue=revenue,
        has_amounts=monetary_value_col is not None,
    )


def _check_min_exposure(min_exposure_years: float) -> float:
    value = float(min_exposure_years)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"min_exposure_years must be a finite number >= 0, got {value!r}")
    return value


# --------------------------------------------------------------------------------------
# periods
# --------------------------------------------------------------------------------------


def _period_freq(period: str) -> str:
    """Check a pandas period alias with a multiple of one ("M", "Q", "Y", "W", "D", ...)."""
    try:
        probe = pd.Period("2000-01-01", freq=period)
    except (ValueError, TypeError):
        raise ValueError(
            f"period={period!r} is not a pandas period alias; use e.g. 'M' (month), "
            "'Q' (quarter), 'Y' (year), 'W' (week)"
        ) from None
    if probe.freq.n != 1:
        raise ValueError(f"period={period!r}: multiples of a period are not supported")
    return period


def _periods_per_year(period: str) -> float:
    """Average number of periods in a year (exact over a 400-year Gregorian cycle)."""
    start = pd.Period("2000-01-01", freq=period).ordinal
    end = pd.Period("2400-01-01", freq=period).ordinal
    return (end - start) / 400.0


@dataclass(frozen=True)
class _Activity:
    """Unique (customer, period) pairs, sorted by customer then period."""

    customer: np.ndarray  # customer code per pair
    offset: np.ndarray  # period offset from the first period, per pair
    first_ordinal: int  # ordinal of the first period
    n_periods: int
    period: str
    complete: np.ndarray  # per period: whole period inside the observation window

    def index(self, name: str) -> pd.PeriodIndex:
        first = pd.Period(ordinal=self.first_ordinal, freq=self.period)
        return pd.period_range(start=first, periods=self.n_periods, freq=self.period, name=name)


def _activity(orders: _Orders, period: str) -> _Activity:
    """Which customer was active in which period (orders are already sorted by customer/day)."""
    _period_freq(period)
    d0, d1 = orders.first_day, orders.last_day
    days = pd.date_range(pd.Timestamp(d0, unit="D"), periods=d1 - d0 + 1, freq="D")
    ordinal_of_day = days.to_period(period).asi8
    p0 = int(ordinal_of_day[0])
    n_periods = int(ordinal_of_day[-1]) - p0 + 1
    offset = ordinal_of_day[orders.day - d0] - p0
    key = orders.code * n_periods + offset  # non-decreasing: orders sorted by (customer, day)
    keep = np.empty(len(key), dtype=bool)
    keep[0] = True
    np.not_equal(key[1:], key[:-1], out=keep[1:])
    key = key[keep]
    periods = pd.period_range(
        start=pd.Period(ordinal=p0, freq=period), periods=n_periods, freq=period
    )
    window_start = pd.Timestamp(d0, unit="D")
    window_end = pd.Timestamp(d1, unit="D")
    complete = (periods.start_time >= window_start) & (
        periods.end_time.normalize() <= window_end
    )
    return _Activity(
        customer=key // n_periods,
        offset=key % n_periods,
        first_ordinal=p0,
        n_periods=n_periods,
        period=period,
        complete=np.asarray(complete, dtype=bool),
    )


def _first_pair_mask(act: _Activity) -> np.ndarray:
    """True for each customer's first (acquisition) pair."""
    mask = np.empty(len(act.customer), dtype=bool)
    mask[0] = True
    np.not_equal(act.customer[1:], act.customer[:-1], out=mask[1:])
    return mask


def _retention(orders: _Orders, period: str) -> pd.DataFrame:
    act = _activity(orders, period)
    n = act.n_periods
    active = np.bincount(act.offset, minlength=n)
    new = np.bincount(act.offset[_first_pair_mask(act)], minlength=n)
    # pairs sorted by (customer, period): a pair is retained when the pair before it is the
    # same customer in the previous period
    retained_mask = np.zeros(len(act.customer), dtype=bool)
    retained_mask[1:] = (act.customer[1:] == act.customer[:-1]) & (
        act.offset[1:] == act.offset[:-1] + 1
    )
    retained = np.bincount(act.offset[retained_mask], minlength=n)
    previous = np.concatenate(([0], active[:-1])).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(previous > 0, retained / previous, np.nan)
    out = pd.DataFrame(
        {
            "active_customers": active,
            "new_customers": new,
            "retained_customers": retained,
            "returning_customers": active - new - retained,
            "retention_rate": rate,
            "churn_rate": 1.0 - rate,
            "complete_period": act.complete,
        },
        index=act.index("period"),
    )
    out.attrs["period"] = period
    return out


def _check_lifespan_args(method: str, period: str) -> None:
    """Fail fast, before the data are read, on a bad lifespan method or period."""
    if method not in ("churn", "span"):
        raise ValueError(f"method must be 'churn' or 'span', got {method!r}")
    if method == "churn":
        _period_freq(period)


def _lifespan(orders: _Orders, method: LifespanMethod, period: str) -> float:
    if method == "span":
        span_days = orders.customer_last() - orders.customer_first()
        return float(span_days.mean() / _YEAR_DAYS)
    if method != "churn":
        raise ValueError(f"method must be 'churn' or 'span', got {method!r}")
    churn = _retention(orders, period)["churn_rate"].mean()  # skips the undefined first rate
    if not np.isfinite(churn):
        warnings.warn(
            f"average customer lifespan: the data cover a single {period!r} period, so there "
            "is no churn rate; the lifespan is NaN (use a shorter period or method='span')",
            RuntimeWarning,
            stacklevel=3,
        )
        return float("nan")
    if churn <= 0:
        return float("inf")
    return float(1.0 / churn / _periods_per_year(period))


# --------------------------------------------------------------------------------------
# public KPIs
# --------------------------------------------------------------------------------------


@overload
def average_order_value(
    transactions: Transactions,
    *,
    per_customer: Literal[False] = ...,
    customer_id_col: str = ...,
    datetime_col: str = ...,
    monetary_value_col: str = ...,
    negative_amounts: NegativeAmounts = ...,
) -> float: ...


@overload
def average_order_value(
    transactions: Transactions,
    *,
    per_customer: Literal[True],
    customer_id_col: str = ...,
    datetime_col: str = ...,
    monetary_value_col: str = ...,
    negative_amounts: NegativeAmounts = ...,
) -> pd.Series: ...


def average_order_value(
    transactions: Transactions,
    *,
    per_customer: bool = False,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str = "amount",
    negative_amounts: NegativeAmounts = "raise",
) -> float | pd.Series:
    """Average order value: revenue / orders.

    Purchases by the same customer on the same calendar day are one order (amounts summed),
    as in :mod:`clvmodels.rfm`.

    Parameters
    ----------
    transactions
        One row per transaction (DataFrame, or a CSV / Parquet path).
    per_customer
        False (default): one number for the whole data set. True: each customer's own AOV,
        a Series indexed by customer id.
    customer_id_col, datetime_col, monetary_value_col
        Column names, as in :func:`clvmodels.rfm_summary`.
    negative_amounts
        "raise" (default) refuses negative amounts; "drop" ignores them.
    """
    orders = _load_orders(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
        negative_amounts=negative_amounts,
    )
    orders.require_amounts("average_order_value")
    if per_customer:
        return pd.Series(
            orders.revenue / orders.n_orders,
            index=orders.ids,
            name="average_order_value",
        )
    return orders.average_order_value()


@overload
def purchase_frequency(
    transactions: Transactions,
    *,
    per_customer: Literal[False] = ...,
    min_exposure_years: float = ...,
    customer_id_col: str = ...,
    datetime_col: str = ...,
    monetary_value_col: str | None = ...,
    negative_amounts: NegativeAmounts = ...,
) -> pd.Series: ...


@overload
def purchase_frequency(
    transactions: Transactions,
    *,
    per_customer: Literal[True],
    min_exposure_years: float = ...,
    customer_id_col: str = ...,
    datetime_col: str = ...,
    monetary_value_col: str | None = ...,
    negative_amounts: NegativeAmounts = ...,
) -> pd.DataFrame: ...


def purchase_frequency(
    transactions: Transactions,
    *,
    per_customer: bool = False,
    min_exposure_years: float = 1.0,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str | None = "amount",
    negative_amounts: NegativeAmounts = "raise",
) -> pd.Series | pd.DataFrame:
    """Orders per customer, over the whole window and per year.

    A customer's annual rate is orders / exposure, where exposure runs from their first
    purchase to the last day of the data (both days counted), in years of 365.25 days, floored
    at ``min_exposure_years``. The overall annual rate is total orders / total exposure, the
    customer-years actually observed (not floored: orders per customer-year).

    Returns
    -------
    ``per_customer=False``: a Series with ``customers``, ``orders``, ``orders_per_customer``,
    ``exposure_years`` (total customer-years, unfloored) and ``orders_per_year``.
    ``per_customer=True``: a DataFrame indexed by customer id with ``orders``,
    ``exposure_years`` (floored) and ``orders_per_year``.
    """
    floor = _check_min_exposure(min_exposure_years)
    orders = _load_orders(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
        negative_amounts=negative_amounts,
    )
    if per_customer:
        exposure = orders.exposure_years(floor)
        return pd.DataFrame(
            {
                "orders": orders.n_orders,
                "exposure_years": exposure,
                "orders_per_year": orders.n_orders / exposure,
            },
            index=orders.ids,
        )
    return _overall_frequency(orders, orders.exposure_years(0.0))


def _overall_frequency(orders: _Orders, exposure: np.ndarray) -> pd.Series:
    n_orders = orders.total_orders
    return pd.Series(
        {
            "customers": float(orders.n_customers),
            "orders": float(n_orders),
            "orders_per_customer": n_orders / orders.n_customers,
            "exposure_years": float(exposure.sum()),
            "orders_per_year": n_orders / float(exposure.sum()),
        },
        name="purchase_frequency",
    )


def repeat_rate(
    transactions: Transactions,
    *,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str | None = "amount",
    negative_amounts: NegativeAmounts = "raise",
) -> float:
    """Share of customers with two or more orders (distinct purchase days)."""
    orders = _load_orders(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
        negative_amounts=negative_amounts,
    )
    return float(np.mean(orders.n_orders >= 2))


def retention_table(
    transactions: Transactions,
    *,
    period: str = "M",
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str | None = "amount",
    negative_amounts: NegativeAmounts = "raise",
) -> pd.DataFrame:
    """Customer activity and retention per calendar period.

    Parameters
    ----------
    period
        A pandas period alias: "M" (calendar month, default), "Q", "Y", "W", "D", ...

    Returns
    -------
    DataFrame indexed by period (a ``PeriodIndex`` covering every period from the first to the
    last transaction, quiet ones included) with

    * ``active_customers``: customers with an order in the period;
    * ``new_customers``: customers whose first order is in the period;
    * ``retained_customers``: active in this period and in the previous one;
    * ``returning_customers``: active, not new, not active in the previous period;
    * ``retention_rate``: retained / active in the previous period (NaN for the first period
      or after a period with no active customer);
    * ``churn_rate``: 1 - retention_rate;
    * ``complete_period``: whether the whole period lies inside the observation window.
    """
    orders = _load_orders(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
        negative_amounts=negative_amounts,
    )
    return _retention(orders, period)


def cohort_retention(
    transactions: Transactions,
    *,
    period: str = "M",
    normalize: bool = True,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str | None = "amount",
    negative_amounts: NegativeAmounts = "raise",
) -> pd.DataFrame:
    """Cohort retention matrix: acquisition cohort x periods since acquisition.

    A customer's cohort is the period of their first order. Cell (c, k) is the share of cohort
    c active (with an order) in period c + k; column 0 is therefore 1. Cells after the last
    observed period are NaN (not observed), not 0.

    Parameters
    ----------
    period
        A pandas period alias: "M" (default), "Q", "Y", "W", ...
    normalize
        True (default): shares of the cohort. False: counts of active customers (column 0 is
        then the cohort size).

    Returns
    -------
    DataFrame indexed by cohort (``PeriodIndex`` of the periods that acquired customers),
    columns ``0, 1, ...`` (periods since acquisition).
    """
    orders = _load_orders(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
        negative_amounts=negative_amounts,
    )
    act = _activity(orders, period)
    n = act.n_periods
    cohort_of_customer = act.offset[_first_pair_mask(act)]  # customers in code order
    cohort = cohort_of_customer[act.customer]
    since = act.offset - cohort
    counts = np.bincount(cohort * n + since, minlength=n * n).reshape(n, n).astype(float)
    observed = np.add.outer(np.arange(n), np.arange(n)) < n
    counts[~observed] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):  # cohorts without customers
        values = counts / counts[:, [0]] if normalize else counts
    has_customers = np.bincount(cohort_of_customer, minlength=n) > 0
    out = pd.DataFrame(
        values[has_customers],
        index=act.index("cohort")[has_customers],
        columns=pd.RangeIndex(n, name="periods_since_acquisition"),
    )
    out.attrs["period"] = period
    return out


def average_customer_lifespan(
    transactions: Transactions,
    *,
    method: LifespanMethod = "churn",
    period: str = "Y",
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str | None = "amount",
    negative_amounts: NegativeAmounts = "raise",
) -> float:
    """Average customer lifespan in years.

    Parameters
    ----------
    method
        "churn" (default): 1 / mean churn rate per ``period`` (from :func:`retention_table`),
        converted to years — with ``period="Y"``, 1 / mean annual churn rate. It is the
        expected lifetime of a customer who leaves with a constant per-period probability.
        Returns inf when no customer ever churns, and NaN (with a warning) when the data
        cover a single period. "span": mean observed time from first to last purchase over
        all customers (0 for one-time buyers), in years of 365.25 days; censored by the
        observation window, so a lower bound.
    period
        Period alias for ``method="churn"`` ("Y" default, "Q", "M", ...); ignored for
        "span". Activity-based churn depends strongly on it in non-contractual settings
        (monthly churn counts every month without a purchase as churn).
    """
    _check_lifespan_args(method, period)
    orders = _load_orders(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
        negative_amounts=negative_amounts,
    )
    return _lifespan(orders, method, period)


def _check_margin(margin: float) -> float:
    value = float(margin)
    if not np.isfinite(value) or value <= 0 or value > 1:
        raise ValueError(f"margin must be in (0, 1], got {margin!r}")
    return value


def _resolve_lifespan(
    orders: _Orders, lifespan: float | None, method: LifespanMethod, period: str
) -> float:
    if lifespan is None:
        return _lifespan(orders, method, period)
    value = float(lifespan)
    if np.isnan(value) or value < 0:
        raise ValueError(f"lifespan must be a number of years >= 0, got {lifespan!r}")
    return value


@overload
def historic_clv(
    transactions: Transactions,
    *,
    per_customer: Literal[False] = ...,
    margin: float = ...,
    lifespan: float | None = ...,
    lifespan_method: LifespanMethod = ...,
    lifespan_period: str = ...,
    min_exposure_years: float = ...,
    customer_id_col: str = ...,
    datetime_col: str = ...,
    monetary_value_col: str = ...,
    negative_amounts: NegativeAmounts = ...,
) -> float: ...


@overload
def historic_clv(
    transactions: Transactions,
    *,
    per_customer: Literal[True],
    margin: float = ...,
    lifespan: float | None = ...,
    lifespan_method: LifespanMethod = ...,
    lifespan_period: str = ...,
    min_exposure_years: float = ...,
    customer_id_col: str = ...,
    datetime_col: str = ...,
    monetary_value_col: str = ...,
    negative_amounts: NegativeAmounts = ...,
) -> pd.Series: ...


def historic_clv(
    transactions: Transactions,
    *,
    per_customer: bool = False,
    margin: float = 1.0,
    lifespan: float | None = None,
    lifespan_method: LifespanMethod = "churn",
    lifespan_period: str = "Y",
    min_exposure_years: float = 1.0,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str = "amount",
    negative_amounts: NegativeAmounts = "raise",
) -> float | pd.Series:
    """Simple historic CLV: AOV x purchases per year x lifespan (years) x margin.

    Undiscounted and model-free: the baseline for model-based CLV.

    Parameters
    ----------
    per_customer
        False (default): one number from the overall AOV and purchase frequency (equal to
        revenue per customer-year actually observed x lifespan x margin). True: a Series
        indexed by customer id, each customer's own AOV x own annual purchase rate (floored
        exposure, see :func:`purchase_frequency`) x the average lifespan x margin.
    margin
        Profit margin in (0, 1]; 1 (default) gives a revenue CLV.
    lifespan
        Average lifespan in years; default: :func:`average_customer_lifespan` with
        ``lifespan_method`` and ``lifespan_period``.
    min_exposure_years
        Floor on a customer's exposure for their own annual purchase rate (default 1 year;
        ``per_customer=True`` only: the overall rate divides by the customer-years observed).
    """
    m = _check_margin(margin)
    floor = _check_min_exposure(min_exposure_years)
    if lifespan is None:
        _check_lifespan_args(lifespan_method, lifespan_period)
    orders = _load_orders(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
        negative_amounts=negative_amounts,
    )
    orders.require_amounts("historic_clv")
    years = _resolve_lifespan(orders, lifespan, lifespan_method, lifespan_period)
    if per_customer:
        aov = orders.revenue / orders.n_orders
        rate = orders.n_orders / orders.exposure_years(floor)
        return pd.Series(aov * rate * years * m, index=orders.ids, name="historic_clv")
    aov_all = orders.average_order_value()
    rate_all = orders.total_orders / orders.exposure_years(0.0).sum()
    return float(aov_all * rate_all * years * m)


def _as_number_or_series(value: object, name: str) -> float | pd.Series:
    if isinstance(value, pd.Series):
        if not value.index.is_unique:
            dup = value.index[value.index.duplicated()].unique()[:5].tolist()
            raise ValidationError(f"{name}: customer ids are not unique, e.g. {dup}")
        numeric = pd.to_numeric(value, errors="coerce")
        frame = pd.DataFrame({name: value})
        fail_rows(frame, numeric.isna() & value.notna(), name, "values are not numbers")
        fail_rows(frame, ~np.isfinite(numeric.to_numpy(dtype=float)), name,
                  "missing or infinite values")
        return numeric.astype(float)
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        raise TypeError(f"{name} must be a number or a pandas Series, got {type(value).__name__}")
    number = float(value)
    if not np.isfinite(number):
        raise ValidationError(f"{name} must be finite, got {value!r}")
    return number


@overload
def clv_to_cac(clv: float, acquisition_cost: float) -> float: ...


@overload
def clv_to_cac(clv: pd.Series, acquisition_cost: float | pd.Series) -> pd.Series: ...


@overload
def clv_to_cac(clv: float | pd.Series, acquisition_cost: pd.Series) -> pd.Series: ...


def clv_to_cac(
    clv: float | pd.Series, acquisition_cost: float | pd.Series
) -> float | pd.Series:
    """CLV / customer acquisition cost (CAC).

    Either argument may be a number or a Series indexed by customer id. Two Series must hold
    the same customer ids (in any order); the result follows ``clv``'s order. Raises
    :class:`ValidationError` when the ids differ or are duplicated, when a value is missing or
    not finite, or when an acquisition cost is <= 0.
    """
    c = _as_number_or_series(clv, "clv")
    cost = _as_number_or_series(acquisition_cost, "acquisition_cost")
    if isinstance(cost, pd.Series):
        fail_rows(cost.to_frame("acquisition_cost"), cost.to_numpy() <= 0, "acquisition_cost",
                  "acquisition costs must be > 0")
    elif cost <= 0:
        raise ValidationError(f"acquisition_cost must be > 0, got {acquisition_cost!r}")
    if isinstance(c, pd.Series) and isinstance(cost, pd.Series):
        only_clv = c.index.difference(cost.index)
        only_cost = cost.index.difference(c.index)
        if len(only_clv) or len(only_cost):
            raise ValidationError(
                "clv and acquisition_cost must cover the same customer ids: "
                f"{len(only_clv)} id(s) only in clv (e.g. {only_clv[:5].tolist()}), "
                f"{len(only_cost)} only in acquisition_cost (e.g. {only_cost[:5].tolist()})"
            )
        cost = cost.reindex(c.index)
    ratio = c / cost
    if isinstance(ratio, pd.Series):
        return ratio.rename("clv_to_cac")
    return float(ratio)


class ValueTiers(NamedTuple):
    """Result of :func:`value_tiers`: per-customer labels and a per-tier summary."""

    labels: pd.Series
    summary: pd.DataFrame


def _check_tiers(tiers: tuple[tuple[str, float], ...]) -> tuple[list[str], np.ndarray]:
    try:
        names = [str(name) for name, _ in tiers]
        shares = np.array([float(share) for _, share in tiers])
    except (TypeError, ValueError):
        raise ValueError("tiers must be a sequence of (name, share) pairs") from None
    if not names:
        raise ValueError("tiers must name at least one tier")
    if len(set(names)) != len(names):
        raise ValueError(f"tier names must be unique, got {names}")
    if not np.all(np.isfinite(shares)) or np.any(shares <= 0):
        raise ValueError(f"tier shares must be > 0, got {shares.tolist()}")
    if abs(shares.sum() - 1.0) > 1e-9:
        raise ValueError(f"tier shares must sum to 1, they sum to {shares.sum():.6g}")
    return names, shares


def value_tiers(
    values: pd.Series,
    *,
    tiers: tuple[tuple[str, float], ...] = DEFAULT_TIERS,
    weights: pd.Series | np.ndarray | None = None,
) -> ValueTiers:
    """Split customers into value tiers (e.g. top 20% / middle 30% / low 50%).

    Customers are ranked by value, highest first, ties broken by customer id (ascending;
    order of appearance if the ids cannot be sorted), so the split is deterministic even with
    equal values at a boundary. Tier k takes the ranks up to round(n x cumulative share)
    (halves round up); every customer gets exactly one tier.

    Parameters
    ----------
    values
        One value per customer (e.g. CLV), indexed by unique customer id.
    tiers
        ``(name, share of customers)`` pairs from the highest-value tier down; shares must be
        > 0 and sum to 1.
    weights
        Optional: how many identical customers each entry stands for (pre-aggregated rows,
        non-negative whole numbers, aligned with ``values``). Shares and counts are then in
        customers: an entry covering ranks c - w + 1 .. c takes the tier of its middle rank
        (with every weight 1, exactly the unweighted split).

    Returns
    -------
    :class:`ValueTiers` ``(labels, summary)``. ``labels``: Series named ``tier`` indexed like
    ``values``, an ordered Categorical whose categories go from the lowest-value tier to the
    highest (so ``labels > "middle"`` selects the top tier with the default tiers).
    ``summary``: one row per tier in the order given, with ``customers``,
    ``share_of_customers``, ``total_value``, ``share_of_value``, ``mean_value``,
    ``min_value``, ``max_value`` (NaN statistics for an empty tier; NaN value shares when the
    total value is 0).
    """
    names, shares = _check_tiers(tiers)
    if not isinstance(values, pd.Series):
        raise TypeError(f"values must be a pandas Series, got {type(values).__name__}")
    name = str(values.name) if values.name is not None else "value"
    if len(values) == 0:
        raise ValidationError(f"{name}: there are no customers to tier")
    if not values.index.is_unique:
        dup = values.index[values.index.duplicated()].unique()[:5].tolist()
        raise ValidationError(f"{name}: customer ids are not unique, e.g. {dup}")
    numeric = pd.to_numeric(values, errors="coerce")
    frame = pd.DataFrame({name: values})
    fail_rows(frame, numeric.isna() & values.notna(), name, "values are not numbers")
    v = numeric.to_numpy(dtype=float)
    fail_rows(frame, ~np.isfinite(v), name, "missing or infinite values")

    w = _tier_weights(frame, weights)
    m = len(v)
    try:
        id_rank = pd.factorize(values.index, sort=True)[0]
    except TypeError:
        id_rank = np.arange(m)
    order = np.lexsort((id_rank, -v))  # value descending, then id ascending
    n = int(w.sum())
    rank = np.empty(m, dtype=float)  # each entry's middle customer rank, from 0
    rank[order] = np.cumsum(w[order]) - (w[order] + 1.0) / 2.0
    bounds = np.floor(np.cumsum(shares) * n + 0.5).astype(np.int64)
    bounds[-1] = n
    tier = np.searchsorted(bounds, rank, side="right")  # 0 = highest tier

    k = len(names)
    dtype = pd.CategoricalDtype(names[::-1], ordered=True)
    labels = pd.Series(
        pd.Categorical.from_codes(k - 1 - tier, dtype=dtype), index=values.index, name="tier"
    )

    counts = np.bincount(tier, weights=w, minlength=k).astype(np.int64)
    totals = np.bincount(tier, weights=v * w, minlength=k)
    empty = counts == 0
    filled = w > 0
    high = np.array([v[(tier == j) & filled].max() if c else np.nan
                     for j, c in enumerate(counts)])
    low = np.array([v[(tier == j) & filled].min() if c else np.nan
                    for j, c in enumerate(counts)])
    grand = float(np.dot(v, w))
    with np.errstate(invalid="ignore", divide="ignore"):
        summary = pd.DataFrame(
            {
                "customers": counts,
                "share_of_customers": counts / n,
                "total_value": totals,
                "share_of_value": totals / grand if grand != 0 else np.full(k, np.nan),
                "mean_value": np.where(empty, np.nan, totals / np.maximum(counts, 1)),
                "min_value": low,
                "max_value": high,
            },
            index=pd.CategoricalIndex(names, dtype=dtype, name="tier"),
        )
    return ValueTiers(labels=labels, summary=summary)


def _tier_weights(frame: pd.DataFrame, weights: pd.Series | np.ndarray | None) -> np.ndarray:
    """:func:`value_tiers`' weights as floats (ones without), checked: aligned, whole, >= 0."""
    if weights is None:
        return np.ones(len(frame))
    raw = np.asarray(weights)
    if raw.ndim != 1:
        raise ValidationError(f"weights: {raw.shape} entries for {len(frame)} values")
    w = pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=float)
    if w.shape != (len(frame),):
        raise ValidationError(f"weights: {w.shape[0] if w.ndim == 1 else w.shape} entries for "
                              f"{len(frame)} values")
    frame = frame.assign(weights=w)
    fail_rows(frame, ~np.isfinite(w) | (w < 0) | (w != np.round(w)), "weights",
              "weights must be whole numbers of customers >= 0")
    if not w.sum() > 0:
        raise ValidationError("weights: they count no customer (all zero)")
    return w


_KPI_ROWS: dict[str, tuple[str, str]] = {
    "customers": ("customers", "distinct customers"),
    "orders": ("orders", "orders (same-day purchases of a customer merged)"),
    "revenue": ("currency", "total amount"),
    "observation_years": ("years", "first to last transaction day, both counted"),
    "customer_years": (
        "years",
        "total exposure: each customer's first order to the last day of the data, both counted",
    ),
    "average_order_value": ("currency per order", "revenue / orders"),
    "orders_per_customer": ("orders per customer", "orders / customers"),
    "purchase_frequency_per_year": (
        "orders per customer-year",
        "orders / customer-years (each customer from their first order to the last day of the "
        "data; no floor)",
    ),
    "repeat_rate": ("share of customers", "customers with 2+ orders / customers"),
    "mean_monthly_retention": (
        "share",
        "mean over calendar months of retained / active in the previous month",
    ),
    "mean_monthly_churn": ("share", "1 - mean monthly retention"),
    "average_lifespan_years": ("years", "average customer lifespan"),
    "historic_clv": (
        "currency per customer",
        "AOV x purchases per year x lifespan x margin (undiscounted)",
    ),
}


def kpi_summary(
    transactions: Transactions,
    *,
    margin: float = 1.0,
    lifespan_method: LifespanMethod = "churn",
    lifespan_period: str = "Y",
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str = "amount",
    negative_amounts: NegativeAmounts = "raise",
) -> pd.DataFrame:
    """Headline KPIs for a report, one row per KPI (transactions are validated once).

    Rows: ``customers, orders, revenue, observation_years, customer_years,
    average_order_value, orders_per_customer, purchase_frequency_per_year, repeat_rate,
    mean_monthly_retention, mean_monthly_churn, average_lifespan_years, historic_clv``;
    columns ``value`` (float), ``unit`` and ``definition``. ``attrs`` records the first and
    last transaction day, the margin and the lifespan method. ``frame["value"].to_dict()``
    gives a plain dict. The arguments are those of :func:`historic_clv` (the overall figures
    here take no exposure floor: ``purchase_frequency_per_year`` is orders per customer-year
    observed, so it differs from ``orders_per_customer`` unless the customers were observed
    for a year on average).
    """
    m = _check_margin(margin)
    _check_lifespan_args(lifespan_method, lifespan_period)
    orders = _load_orders(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
        negative_amounts=negative_amounts,
    )
    orders.require_amounts("kpi_summary")
    freq = _overall_frequency(orders, orders.exposure_years(0.0))
    revenue = float(orders.revenue.sum())
    aov = revenue / freq["orders"]
    monthly = _retention(orders, "M")["retention_rate"].mean()
    years = _lifespan(orders, lifespan_method, lifespan_period)
    values = {
        "customers": freq["customers"],
        "orders": freq["orders"],
        "revenue": revenue,
        "observation_years": (orders.last_day - orders.first_day + 1) / _YEAR_DAYS,
        "customer_years": freq["exposure_years"],
        "average_order_value": aov,
        "orders_per_customer": freq["orders_per_customer"],
        "purchase_frequency_per_year": freq["orders_per_year"],
        "repeat_rate": float(np.mean(orders.n_orders >= 2)),
        "mean_monthly_retention": float(monthly),
        "mean_monthly_churn": float(1.0 - monthly),
        "average_lifespan_years": years,
        "historic_clv": aov * freq["orders_per_year"] * years * m,
    }
    lifespan_note = (
        f"1 / mean churn per {lifespan_period!r} period, in years"
        if lifespan_method == "churn"
        else "mean first-to-last purchase span"
    )
    out = pd.DataFrame(
        {
            "value": [float(values[k]) for k in _KPI_ROWS],
            "unit": [_KPI_ROWS[k][0] for k in _KPI_ROWS],
            "definition": [_KPI_ROWS[k][1] for k in _KPI_ROWS],
        },
        index=pd.Index(list(_KPI_ROWS), name="kpi"),
    )
    out.loc["average_lifespan_years", "definition"] = lifespan_note
    out.loc["historic_clv", "definition"] += f", margin {m:g}"
    out.attrs.update(
        first_day=str(pd.Timestamp(orders.first_day, unit="D").date()),
        last_day=str(pd.Timestamp(orders.last_day, unit="D").date()),
        margin=m,
        lifespan_method=lifespan_method,
        lifespan_period=lifespan_period,
    )
    return out
