"""Subscription records -> one row per customer for the contractual (sBG) models.

:func:`contract_summary` turns subscription records (customer id, start date, end date or
nothing while active) into the contractual data kind: per customer ``periods`` (periods paid:
the first plus renewals), ``churned`` (False: still active at ``observation_end``,
right-censored), ``cohort`` (the calendar period of the start) and ``tenures`` (how many
separate tenures the customer had; the first one is summarised).

The rules -- date formats, calendar anniversaries ("M", "Y") and fixed periods ("D", "W"),
what counts as paid, how several records of a customer merge into tenures, the cohort
labels and the validation messages -- are written once in :mod:`clvmodels._contract_rules`
and followed by every engine: the pandas implementation here and DuckDB
(:mod:`clvmodels.engines.duckdb_contract`, for CSV / Parquet files that need not fit in
memory), reached through the table :data:`ENGINES`. Both give identical results.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from clvmodels._contract_rules import (
    MAX_DAY_NUMBER,
    PERIODS,
    ContractProblem,
    Reactivations,
    check_date_format,
    check_id_types,
    check_options,
    cohort_labels,
    finalise_contract,
    observation_end_day,
    parse_days,
)
from clvmodels._validation import ValidationError, fail_rows, require_columns

__all__ = ["ENGINES", "contract_summary", "paid_periods"]

ContractEngine = Literal["pandas", "duckdb", "spark"]
Subscriptions = pd.DataFrame | str | os.PathLike | Sequence[str | os.PathLike]

#: end of an open tenure, later than any real day
_OPEN = MAX_DAY_NUMBER + 1_000_000


# --------------------------------------------------------------------------------------
# period arithmetic (the rules of clvmodels._contract_rules, in numpy)
# --------------------------------------------------------------------------------------


def paid_periods(start_days: np.ndarray, ref_days: np.ndarray, churned: np.ndarray,
                 period: str) -> np.ndarray:
    """Periods paid between a start and a reference day (day numbers, days since 1970-01-01).

    Active (``churned`` False): the periods starting on or before ``ref`` (observation_end);
    churned: those starting before ``ref`` (the end date), at least one. "M" / "Y": period k
    starts k (12k) calendar months after the start, on the start's day of the month or the
    last day of a shorter month; "D" / "W": every 1 / 7 days.
    """
    unit, length = PERIODS[period]
    start = np.asarray(start_days, dtype=np.int64)
    ref = np.asarray(ref_days, dtype=np.int64)
    churned = np.asarray(churned, dtype=bool)
    if unit == "day":
        diff = ref - start
        return 1 + np.where(churned, np.maximum(diff - 1, 0), diff) // length
    s = start.astype("datetime64[D]")
    r = ref.astype("datetime64[D]")
    s_month = s.astype("datetime64[M]")
    r_month = r.astype("datetime64[M]")
    month_diff = (r_month - s_month).astype(np.int64)
    s_day = (s - s_month.astype("datetime64[D]")).astype(np.int64) + 1
    r_day = (r - r_month.astype("datetime64[D]")).astype(np.int64) + 1
    r_month_len = ((r_month + 1).astype("datetime64[D]")
                   - r_month.astype("datetime64[D]")).astype(np.int64)
    anniversary = np.minimum(s_day, r_month_len)  # the renewal day in ref's month
    renewals = np.where(churned,
                        np.maximum(month_diff - (anniversary >= r_day), 0),
                        month_diff - (anniversary > r_day))
    return 1 + renewals // length


# --------------------------------------------------------------------------------------
# the pandas engine
# --------------------------------------------------------------------------------------


def _read(path: str | os.PathLike, start_col: str, end_col: str) -> pd.DataFrame:
    """A CSV or Parquet file into pandas; CSV dates are read as text (parsed by the rules)."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            "the pandas engine takes a DataFrame or one CSV / Parquet path; pass "
            f"engine='duckdb' for globs or lists of files (got {type(path).__name__})")
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"no such file: {p}")
    if p.lower().endswith((".parquet", ".pq", ".parq")):
        return pd.read_parquet(p)
    header = pd.read_csv(p, nrows=0).columns
    text = {c: "string" for c in (start_col, end_col) if c in header}
    return pd.read_csv(p, dtype=text)


def _summarise_pandas(
    subscriptions: Subscriptions,
    *,
    customer_id_col: str,
    start_col: str,
    end_col: str,
    observation_end: pd.Timestamp,
    period: str,
    date_format: str | None,
    max_gap_days: int,
    reactivations: Reactivations,
) -> pd.DataFrame:
    if not isinstance(subscriptions, pd.DataFrame):
        subscriptions = _read(subscriptions, start_col, end_col)  # type: ignore[arg-type]
    cols = list(dict.fromkeys([customer_id_col, start_col, end_col]))
    require_columns(subscriptions, cols, "subscriptions")
    if len(subscriptions) == 0:
        raise ValidationError("subscriptions are empty: there is nothing to summarise")
    frame = subscriptions[cols]
    ids = frame[customer_id_col]
    fail_rows(frame, ids.isna().to_numpy(), customer_id_col, ContractProblem.MISSING_IDS, cols)
    check_id_types(frame, customer_id_col, cols)
    start = parse_days(frame[start_col], start_col, date_format)
    end = parse_days(frame[end_col], end_col, date_format)
    fail_rows(frame, start.missing, start_col, ContractProblem.MISSING_STARTS, cols)
    fail_rows(frame, start.bad, start_col, ContractProblem.bad_dates(date_format), cols)
    fail_rows(frame, end.bad, end_col, ContractProblem.bad_dates(date_format), cols)
    s = start.days
    e = np.where(end.missing, _OPEN, end.days)
    fail_rows(frame, e < s, end_col, ContractProblem.END_BEFORE_START, cols)
    obs = int((observation_end - pd.Timestamp("1970-01-01")).days)
    fail_rows(frame, s > obs, start_col, ContractProblem.start_after(observation_end), cols)
    codes, uniques = pd.factorize(ids, sort=True)
    dup = pd.DataFrame({"c": codes, "s": s, "e": e}).duplicated(keep=False).to_numpy()
    fail_rows(frame, dup, customer_id_col, ContractProblem.DUPLICATES, cols)

    # tenures: records sorted by customer, start, end; a record starting after the latest
    # end so far (+ max_gap_days) opens a new tenure
    order = np.lexsort((e, s, codes))
    c_o, s_o, e_o = codes[order], s[order], e[order]
    first_row = np.r_[True, c_o[1:] != c_o[:-1]]
    running_end = pd.Series(e_o).groupby(c_o).cummax().to_numpy()
    previous_end = np.r_[0, running_end[:-1]]
    new_tenure = first_row | (s_o > previous_end + max_gap_days)
    tenure_no = np.cumsum(new_tenure)
    group_first = np.flatnonzero(first_row)
    n_customers = len(group_first)
    in_first = tenure_no == np.repeat(tenure_no[group_first], np.diff(np.r_[group_first,
                                                                            len(c_o)]))
    tenures = np.bincount(c_o, weights=new_tenure, minlength=n_customers).astype(np.int64)
    if reactivations == "raise":
        again = np.zeros(len(s), dtype=bool)
        again[order] = tenures[c_o] > 1
        fail_rows(frame, again, customer_id_col, ContractProblem.REACTIVATED, cols)
    first_start = s_o[group_first]
    first_end = np.full(n_customers, np.iinfo(np.int64).min)
    np.maximum.at(first_end, c_o[in_first], e_o[in_first])
    churned = first_end <= obs
    ref = np.where(churned, first_end, obs)
    return finalise_contract(
        np.asarray(uniques),
        periods=paid_periods(first_start, ref, churned, period),
        churned=churned,
        cohort=cohort_labels(first_start, period),
        tenures=tenures,
        customer_id_col=customer_id_col,
        period=period,
        observation_end=observation_end,
    )


def _summarise_duckdb(subscriptions: Subscriptions, **keywords: Any) -> pd.DataFrame:
    from clvmodels.engines.duckdb_contract import contract_summary_duckdb

    return contract_summary_duckdb(subscriptions, **keywords)


def _summarise_spark(subscriptions: Any, **keywords: Any) -> Any:
    try:
        from clvmodels.engines.spark_contract import contract_summary_spark
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError("engine='spark' needs pyspark: pip install 'clvmodels[spark]'"
                          ) from exc
    return contract_summary_spark(subscriptions, **keywords)


#: engine name -> implementation; each follows :mod:`clvmodels._contract_rules` ("spark"
#: returns a lazy Spark DataFrame, its attrs in the columns' metadata)
ENGINES: dict[str, Callable[..., pd.DataFrame]] = {
    "pandas": _summarise_pandas,
    "duckdb": _summarise_duckdb,
    "spark": _summarise_spark,
}


def contract_summary(
    subscriptions: Subscriptions,
    *,
    customer_id_col: str = "customer_id",
    start_col: str = "start",
    end_col: str = "end",
    observation_end: object,
    period: str = "M",
    engine: ContractEngine = "pandas",
    date_format: str | None = None,
    max_gap_days: int = 0,
    reactivations: Reactivations = "first",
) -> pd.DataFrame:
    """Summarise subscription records into one contractual row per customer.

    Parameters
    ----------
    subscriptions
        One row per subscription record: a DataFrame, or a CSV / Parquet path (with
        ``engine="duckdb"`` also a glob, a directory of Parquet files or a list of paths,
        never loaded into pandas whole). The caller's frame is never modified.
    customer_id_col, start_col, end_col
        Column names. ``start``: the day the subscription started (its first period was paid
        then). ``end``: the day it stopped, empty while active; an end after
        ``observation_end`` counts as active at ``observation_end``.
    observation_end
        The day of observation (inclusive, required): renewals up to it are known.
    period
        "M" (default) or "Y": calendar anniversaries of the start (a plan started on the
        31st renews on the last day of shorter months); "W" / "D": every 7 / 1 days.
    engine
        "pandas" (default), "duckdb" or "spark" (``pip install clvmodels[spark]``; also a
        Spark DataFrame; returns a lazy Spark DataFrame, the id its first column, the attrs
        in the columns' metadata: :func:`clvmodels.engines.spark.summary_attrs`).
    date_format
        A strftime format for string dates (one for both date columns); default ISO 8601.
        Datetime columns need none. Nothing is guessed per row.
    max_gap_days
        Records of a customer separated by at most this many days form one tenure (default 0:
        a record must start on or before the day the previous one stopped).
    reactivations
        "first" (default): a customer who came back after a gap is summarised by their first
        tenure (``tenures`` counts them all); "raise": refuse such customers.

    Returns
    -------
    DataFrame indexed by customer id, sorted, with ``periods`` (int64 >= 1), ``churned``
    (bool), ``cohort`` (str: "2023-01" for "M", "2023" for "Y", "2023-W05" for "W",
    "2023-01-31" for "D") and ``tenures`` (int64); ``attrs``: ``period`` (and ``time_unit``),
    ``observation_end``, ``data_kind`` = "contractual". The rules in full:
    :mod:`clvmodels._contract_rules`.

    Raises
    ------
    ValidationError
        Missing columns; empty input; missing customer ids or ids of mixed types; missing or
        unparseable start dates; unparseable end dates; ends before starts; starts after
        ``observation_end``; duplicated records; customers with several tenures when
        ``reactivations="raise"``. The message names the column and shows the first
        offending rows (with their labels) and how many there are.
    """
    check_options(period, reactivations, max_gap_days)
    check_date_format(date_format)
    obs = observation_end_day(observation_end)
    try:
        run = ENGINES[engine]
    except (KeyError, TypeError):
        raise ValueError(f"unknown engine {engine!r}; use one of {list(ENGINES)}") from None
    return run(
        subscriptions,
        customer_id_col=customer_id_col,
        start_col=start_col,
        end_col=end_col,
        observation_end=obs,
        period=period,
        date_format=date_format,
        max_gap_days=int(max_gap_days),
        reactivations=reactivations,
    )
