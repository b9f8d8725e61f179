"""Plain business KPIs of the subscription (contractual) setting, beside the sBG model.

Every function takes a contract summary (:func:`clvmodels.contract.contract_summary`, or any
frame with ``periods`` -- periods paid, >= 1 -- and ``churned``; ``cohort`` where cohorts are
asked for), validates it and never modifies it. Everything is counted from the renewal
decisions each customer has been seen to make.

Definitions
-----------
renewal decision t
    At the end of their t-th paid period a customer renews (pays period t + 1) or leaves.
    A churned customer with ``periods`` = n renewed at decisions 1 .. n-1 and left at n; an
    active one with ``periods`` = n renewed at 1 .. n-1 and has not reached decision n.
at risk, renewed, churned (per decision t)
    Customers seen to make decision t; those who renewed; those who left.
retention rate r(t), churn rate 1 - r(t)
    renewed / at risk at decision t: the empirical counterpart of the sBG's
    r(t) = (beta+t-1)/(alpha+beta+t-1) [Fader & Hardie 2007, eq. 8]. Right-censoring is
    handled exactly (a customer counts only for the decisions they were seen to make), so the
    product of the rates is the Kaplan-Meier estimate of S(t), the share of a cohort still
    active after t renewals.
overall (pooled) churn rate
    All churns / all decisions at risk, over every t (and, with ``by="cohort"``, per
    cohort): one number per period, what "our monthly churn is 5%" means.
calendar periods
    A customer's decision t falls in the calendar period cohort + t (renewals follow calendar
    anniversaries), so the same counts can be laid out by calendar period (month, ...): the
    customers at risk in a month are the paying customers whose renewal came up in it.
ARPU
    Average revenue per user per period: revenue / customer-periods paid (sum of
    ``periods``).
naive LTV
    margin x ARPU / c, with c the pooled churn rate per period: the lifetime value of a
    customer who pays at the start of every period and leaves with the same probability c
    after each, sum_{t>=0} (1-c)^t = 1/c payments; with a discount rate d per period,
    margin x ARPU x (1+d)/(d+c). It ignores heterogeneity: in a cohort the high-churn
    customers leave first, so retention rises with tenure (the sorting effect) and a single
    rate misstates value -- Fader & Hardie (2010, "Customer-base valuation in a contractual
    setting: the perils of ignoring heterogeneity", Marketing Science 29(1)) show that for an
    existing customer base it understates the residual value, often by a wide margin. It is
    the baseline the sBG's DEL / DERL (:mod:`clvmodels.models.sbg`) is compared with.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clvmodels._contract_rules import PERIODS, cohort_labels
from clvmodels._validation import ValidationError, fail_rows, require_columns
from clvmodels.kpis import clv_to_cac

__all__ = [
    "arpu",
    "calendar_churn_table",
    "churn_rate",
    "cohort_retention_matrix",
    "ltv_to_cac",
    "naive_ltv",
    "renewal_table",
    "retention_rate",
]

_TABLE_COLUMNS = ["at_risk", "renewed", "churned", "retention_rate", "churn_rate", "survival"]


# --------------------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------------------


def _decisions(summary: pd.DataFrame, *, need_cohort: bool | str = False
               ) -> tuple[np.ndarray, np.ndarray]:
    """Validated (periods, churned) arrays: periods whole >= 1, churned boolean / 0-1.
    ``need_cohort``: True for the ``cohort`` column, or the name of a grouping column."""
    group = "cohort" if need_cohort is True else (need_cohort or None)
    cols = ["periods", "churned"] + ([group] if group else [])
    require_columns(summary, cols, "contract summary")
    if len(summary) == 0:
        raise ValidationError("contract summary is empty: there are no customers")
    periods = pd.to_numeric(summary["periods"], errors="coerce")
    values = periods.to_numpy(dtype=float)
    fail_rows(summary, periods.isna().to_numpy(), "periods", "missing or non-numeric periods")
    fail_rows(summary, (values < 1) | (values != np.round(values)) | ~np.isfinite(values),
              "periods", "periods must be whole numbers >= 1 (periods paid)")
    churned = summary["churned"]
    if churned.dtype != bool:
        as_num = pd.to_numeric(churned, errors="coerce")
        fail_rows(summary, (as_num.isna() | ~as_num.isin([0, 1])).to_numpy(), "churned",
                  "churned must be True/False (or 1/0)")
        churned = as_num == 1
    if group:
        fail_rows(summary, summary[group].isna().to_numpy(), group, f"missing {group} values")
    return values.astype(np.int64), churned.to_numpy(dtype=bool)


def _counts(periods: np.ndarray, churned: np.ndarray, n_max: int | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """(at risk, churned) at decisions t = 1 .. n_max (index t - 1)."""
    seen = np.where(churned, periods, periods - 1)  # decisions seen: 1 .. seen
    size = int(n_max if n_max is not None else max(int(seen.max(initial=0)), 1))
    at_risk = np.bincount(np.minimum(seen, size), minlength=size + 1)[::-1].cumsum()[::-1]
    lost = np.bincount(periods[churned], minlength=size + 1)[: size + 1]
    return at_risk[1:].astype(np.int64), lost[1:].astype(np.int64)


def _table(at_risk: np.ndarray, lost: np.ndarray, index: pd.Index) -> pd.DataFrame:
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(at_risk > 0, (at_risk - lost) / np.maximum(at_risk, 1), np.nan)
    return pd.DataFrame({"at_risk": at_risk, "renewed": at_risk - lost, "churned": lost,
                         "retention_rate": rate, "churn_rate": 1.0 - rate,
                         "survival": np.cumprod(rate)}, index=index)


# --------------------------------------------------------------------------------------
# retention and churn by renewal
# --------------------------------------------------------------------------------------


def renewal_table(summary: pd.DataFrame, *, by_cohort: bool = False) -> pd.DataFrame:
    """Retention and churn at each renewal decision t = 1, 2, ... (periods since acquisition).

    Returns a frame indexed by ``renewal`` (or by ``(cohort, renewal)`` with
    ``by_cohort=True``) with ``at_risk, renewed, churned, retention_rate, churn_rate,
    survival``: the rates as defined in the module docstring, ``survival`` their running
    product (Kaplan-Meier; the share of the cohort still active after t renewals). Rates are
    NaN where nobody was at risk (and survival from there on).
    """
    periods, churned = _decisions(summary, need_cohort=by_cohort)
    if not by_cohort:
        at_risk, lost = _counts(periods, churned)
        return _table(at_risk, lost, pd.RangeIndex(1, len(at_risk) + 1, name="renewal"))
    cohorts = summary["cohort"].to_numpy()
    n_max = max(int(np.where(churned, periods, periods - 1).max(initial=0)), 1)
    parts = []
    for cohort in sorted(pd.unique(cohorts)):
        sel = cohorts == cohort
        at_risk, lost = _counts(periods[sel], churned[sel], n_max)
        seen = int(np.flatnonzero(at_risk)[-1]) + 1 if at_risk.any() else 1
        index = pd.MultiIndex.from_product([[cohort], range(1, seen + 1)],
                                           names=["cohort", "renewal"])
        parts.append(_table(at_risk[:seen], lost[:seen], index))
    return pd.concat(parts)


def cohort_retention_matrix(summary: pd.DataFrame, *, value: str = "survival") -> pd.DataFrame:
    """Cohort x renewal table (the classic retention triangle) of one column of
    :func:`renewal_table` (``by_cohort=True``): ``"survival"`` (default; share of the cohort
    still active after t renewals), ``"retention_rate"``, ``"churn_rate"``, ``"at_risk"``,
    ``"renewed"`` or ``"churned"``. Rows: cohorts (sorted); columns: renewals 1, 2, ...;
    NaN where a cohort has not reached a renewal yet."""
    if value not in _TABLE_COLUMNS:
        raise ValueError(f"value must be one of {_TABLE_COLUMNS}, got {value!r}")
    long = renewal_table(summary, by_cohort=True)
    wide = long[value].unstack("renewal")
    wide.columns.name = "renewal"
    return wide


def churn_rate(summary: pd.DataFrame, *, by: str | None = None) -> float | pd.Series:
    """Pooled churn rate per period: all churns / all renewal decisions at risk.

    ``by=None``: one number; ``by="cohort"`` (or any column of ``summary``, e.g. a plan or an
    acquisition channel): a Series indexed by its values. NaN when no decision has been seen
    (every customer active in their first period).
    """
    if by is not None and not isinstance(by, str):
        raise ValueError("by must be None or a column name such as 'cohort'")
    periods, churned = _decisions(summary, need_cohort=by or False)
    seen = np.where(churned, periods, periods - 1)
    if by is None:
        total = int(seen.sum())
        return float(churned.sum() / total) if total else float("nan")
    frame = pd.DataFrame({by: summary[by].to_numpy(), "seen": seen,
                          "lost": churned.astype(np.int64)})
    sums = frame.groupby(by, sort=True)[["seen", "lost"]].sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = sums["lost"] / sums["seen"].where(sums["seen"] > 0)
    return out.rename("churn_rate")


def retention_rate(summary: pd.DataFrame, *, by: str | None = None) -> float | pd.Series:
    """1 - :func:`churn_rate` (pooled renewals / decisions at risk)."""
    rate = churn_rate(summary, by=by)
    if isinstance(rate, pd.Series):
        return (1.0 - rate).rename("retention_rate")
    return 1.0 - rate


# --------------------------------------------------------------------------------------
# by calendar period
# --------------------------------------------------------------------------------------


def _cohort_ordinals(cohort: pd.Series, period: str) -> np.ndarray:
    """Cohort labels -> integer period numbers (months, years, ISO weeks, days)."""
    text = cohort.astype(str)
    if period == "M":
        ok = text.str.fullmatch(r"[0-9]{4}-[0-9]{2}")
        y, m = (pd.to_numeric(text.str.slice(a, b), errors="coerce") for a, b in ((0, 4), (5, 7)))
        ok &= m.between(1, 12)
        values = y * 12 + m - 1
    elif period == "Y":
        ok = text.str.fullmatch(r"[0-9]{4}")
        values = pd.to_numeric(text, errors="coerce")
    elif period == "W":
        ok = text.str.fullmatch(r"[0-9]{4}-W[0-9]{2}")
        parsed = pd.to_datetime(text.where(ok, "1970-W01") + "-1", format="%G-W%V-%u",
                                errors="coerce")
        ok &= parsed.notna()
        values = (parsed - pd.Timestamp("1970-01-05")).dt.days // 7  # Monday-based weeks
    else:
        parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
        ok = parsed.notna()
        values = (parsed - pd.Timestamp("1970-01-01")).dt.days
    ok = ok.fillna(False).to_numpy(dtype=bool)
    frame = cohort.to_frame("cohort")
    fail_rows(frame, ~ok, "cohort",
              f"cohort labels that are not periods of type {period!r} (as contract_summary "
              "writes them)")
    return np.asarray(values, dtype=np.int64)


def _ordinal_labels(ordinals: np.ndarray, period: str) -> np.ndarray:
    """Integer period numbers -> labels in the cohort format."""
    if period == "M":
        first = (ordinals - 1970 * 12).astype("datetime64[M]").astype("datetime64[D]")
    elif period == "Y":
        first = (ordinals - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    elif period == "W":
        first = np.datetime64("1970-01-05") + ordinals * 7
    else:
        first = ordinals.astype("datetime64[D]")
    return cohort_labels(first.astype("datetime64[D]").astype(np.int64), period)


def calendar_churn_table(summary: pd.DataFrame, *, period: str | None = None) -> pd.DataFrame:
    """Renewals, churn and paying customers per calendar period.

    A customer's renewal decision t falls in calendar period cohort + t. Returns a frame
    indexed by calendar period (labels in the cohort format, e.g. "2024-03"; every period
    from the first cohort to the last decision seen) with

    * ``paying``: customers who paid for the period (its subscribers);
    * ``new``: customers whose first period it is;
    * ``at_risk``: customers whose renewal decision came up in the period and was seen;
    * ``churned``: those who left at it; ``renewed`` = at_risk - churned;
    * ``churn_rate`` = churned / at_risk and ``retention_rate`` = 1 - churn_rate (NaN
      without decisions).

    The period of the decisions is ``summary.attrs["period"]`` unless ``period`` is given.
    The period holding ``observation_end`` is only partly observed: its decisions after
    that day are not counted (neither at risk nor churned).
    """
    period = period or summary.attrs.get("period")
    if period not in PERIODS:
        raise ValueError(f"period must be one of {list(PERIODS)} (or in summary.attrs); got "
                         f"{period!r}")
    periods, churned = _decisions(summary, need_cohort=True)
    start = _cohort_ordinals(summary["cohort"], period)
    seen = np.where(churned, periods, periods - 1)
    first, last = int(start.min()), int((start + periods - 1).max())
    last = max(last, int((start + seen).max()))
    size = last - first + 2
    offset = start - first

    def spans(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """How many of the ranges [lo, hi] (offsets, inclusive; empty when hi < lo) cover
        each period."""
        keep = hi >= lo
        delta = np.zeros(size + 1, dtype=np.int64)
        np.add.at(delta, lo[keep], 1)
        np.add.at(delta, hi[keep] + 1, -1)
        return np.cumsum(delta)[: size - 1]

    paying = spans(offset, offset + periods - 1)
    at_risk = spans(offset + 1, offset + seen)
    lost = np.bincount(offset[churned] + periods[churned], minlength=size)[: size - 1]
    new = np.bincount(offset, minlength=size)[: size - 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(at_risk > 0, lost / np.maximum(at_risk, 1), np.nan)
    labels = _ordinal_labels(np.arange(first, first + size - 1), period)
    return pd.DataFrame({"paying": paying, "new": new, "at_risk": at_risk,
                         "renewed": at_risk - lost, "churned": lost, "churn_rate": rate,
                         "retention_rate": 1.0 - rate},
                        index=pd.Index(labels, name="period"))


# --------------------------------------------------------------------------------------
# money
# --------------------------------------------------------------------------------------


def _money(summary: pd.DataFrame, value: float | str | pd.Series, name: str
           ) -> float | pd.Series:
    """A number, or a column / Series of numbers aligned on the summary's customers."""
    if isinstance(value, str):
        require_columns(summary, [value], "contract summary")
        series = summary[value]
    elif isinstance(value, pd.Series):
        series = value
        if not series.index.equals(summary.index):
            missing = summary.index.difference(series.index)
            if len(missing) or not series.index.is_unique:
                raise ValidationError(
                    f"{name} must have one value per customer of the summary; "
                    f"{len(missing)} customer(s) missing (e.g. {missing[:5].tolist()})")
            series = series.reindex(summary.index)
    else:
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise TypeError(f"{name} must be a number, a column name or a Series")
        number = float(value)
        if not np.isfinite(number) or number < 0:
            raise ValidationError(f"{name} must be a finite number >= 0, got {value!r}")
        return number
    numbers = pd.to_numeric(series, errors="coerce")
    frame = series.to_frame(name)
    fail_rows(frame, numbers.isna().to_numpy(), name, "missing or non-numeric values")
    fail_rows(frame, (~np.isfinite(numbers.to_numpy(dtype=float))
                      | (numbers.to_numpy(dtype=float) < 0)), name,
              "values must be finite and >= 0")
    return numbers.astype(float).rename(name)


def arpu(summary: pd.DataFrame, revenue: float | str | pd.Series, *,
         per_customer: bool = False) -> float | pd.Series:
    """Average revenue per user per period = revenue / customer-periods paid.

    ``revenue``: the total revenue of the customers in ``summary`` over their paid periods
    (a number), or per customer (a column name of ``summary`` or a Series indexed like it).
    Overall ARPU = sum of revenue / sum of ``periods``; ``per_customer=True`` (per-customer
    revenue only) gives each customer's own revenue / their periods.
    """
    periods, _ = _decisions(summary)
    money = _money(summary, revenue, "revenue")
    if per_customer:
        if not isinstance(money, pd.Series):
            raise ValueError("per_customer=True needs revenue per customer (a column or Series)")
        return (money / periods).rename("arpu")
    total = float(money.sum()) if isinstance(money, pd.Series) else money
    return total / float(periods.sum())


def naive_ltv(summary: pd.DataFrame | None = None, *, arpu: float | str | pd.Series,
              margin: float = 1.0, churn: float | None = None,
              discount_rate: float = 0.0) -> float | pd.Series:
    """Naive (textbook) LTV = margin x ARPU / c, or margin x ARPU x (1+d)/(d+c) discounted.

    c is the pooled churn rate per period (:func:`churn_rate` of ``summary``) unless
    ``churn`` gives it; ``arpu`` is revenue per customer per period, a number, or per
    customer (a column of ``summary`` or a Series), giving one LTV per customer;
    ``discount_rate`` d is per period (payments at the start of each period, the first
    undiscounted). The formula and its bias (it ignores heterogeneity: Fader & Hardie 2010)
    are described in the module docstring. Returns ``inf`` when c = 0 and d = 0.
    """
    if not np.isfinite(margin) or margin <= 0 or margin > 1:
        raise ValueError(f"margin must be in (0, 1], got {margin!r}")
    if not np.isfinite(discount_rate) or discount_rate < 0:
        raise ValueError(f"discount_rate must be >= 0 (per period), got {discount_rate!r}")
    if churn is None:
        if summary is None:
            raise ValueError("give a contract summary or the churn rate")
        churn = churn_rate(summary)
    c = float(churn)
    if not 0 <= c <= 1:
        raise ValueError(f"the churn rate must be in [0, 1], got {churn!r}")
    if isinstance(arpu, str | pd.Series):
        if summary is None:
            raise ValueError("ARPU per customer needs the contract summary")
        money = _money(summary, arpu, "arpu")
    else:
        money = _money(pd.DataFrame(), arpu, "arpu")
    d = float(discount_rate)
    with np.errstate(divide="ignore"):
        factor = np.inf if d + c == 0 else (1.0 + d) / (d + c)
    value = margin * money * factor
    if isinstance(value, pd.Series):
        return value.rename("naive_ltv")
    return float(value)


def ltv_to_cac(ltv: float | pd.Series, acquisition_cost: float | pd.Series
               ) -> float | pd.Series:
    """LTV / customer acquisition cost (:func:`clvmodels.kpis.clv_to_cac`): numbers or
    Series indexed by customer id; errors for missing, non-finite or non-positive costs and
    for Series covering different customers."""
    ratio = clv_to_cac(ltv, acquisition_cost)
    if isinstance(ratio, pd.Series):
        return ratio.rename("ltv_to_cac")
    return ratio
