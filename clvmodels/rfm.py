"""Transactions → one row per customer (recency / frequency / monetary value).

The RFM contract (lifetimes' column names, Fader, Hardie & Lee 2005 notation in brackets):

* ``frequency`` [x]: number of *repeat* transactions, i.e. distinct purchase days minus one;
* ``recency`` [t_x]: time from the first to the last purchase (0 when frequency is 0);
* ``T``: time from the first purchase to ``observation_end``;
* ``monetary_value`` [m_x, "zbar"]: mean value of the repeat transactions (0 when frequency
  is 0) — the first purchase is excluded, as in the Gamma-Gamma papers.

Purchases on the same calendar day are one transaction (their amounts are summed). Times are
in ``time_unit`` with fixed day counts (:data:`TIME_UNITS`), and the unit travels with the
result in ``rfm.attrs["time_unit"]``.

This module knows nothing of models. It holds the pandas engine and dispatches to the others
(``clvmodels.engines``: DuckDB, ...) through a small table, :data:`ENGINES`. Every engine
returns the same *day-level* summary and follows the rules of
:mod:`clvmodels._summary_rules` (time units, validation messages, the range of dates), which
also turns the day-level summary into time units, so the conversion is written once. The
engines import those rules, never this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd

# the rules every engine shares (re-exported: TIME_UNITS, time_unit_days, NegativeAmounts and
# the day-level column names have always been importable from here)
from clvmodels._summary_rules import (
    DAY_COLUMNS,  # noqa: F401  (re-exported)
    FIRST_DAY,
    HOLDOUT_DAY_COLUMNS,  # noqa: F401  (re-exported)
    LAST_DAY,
    TIME_UNITS,
    NegativeAmounts,
    Problem,
    all_negative_error,
    as_day,
    check_negative_amounts_option,
    check_observation_end,
    empty_error,
    finalise_day_summary,
    time_unit_days,
)
from clvmodels._validation import fail_rows, require_columns, validate_rfm
from clvmodels.rows import UniqueRows, compress_columns

__all__ = [
    "TIME_UNITS",
    "CompressedRFM",
    "calibration_holdout_split",
    "compress_rfm",
    "rfm_summary",
    "time_unit_days",
]

Engine = Literal["pandas", "duckdb"]


# --------------------------------------------------------------------------------------
# pandas engine: validation + day-level summary
# --------------------------------------------------------------------------------------


def prepare_transactions(
    transactions: pd.DataFrame,
    *,
    customer_id_col: str,
    datetime_col: str,
    monetary_value_col: str | None,
    negative_amounts: NegativeAmounts = "raise",
) -> pd.DataFrame:
    """Validate raw transactions and return a new frame ``id, day, amount``.

    The caller's frame is never modified. Raises :class:`ValidationError` naming the column
    and showing offending rows for: missing columns, missing ids or dates, unparseable dates,
    missing / non-numeric / negative amounts (negative ones may be dropped instead with
    ``negative_amounts="drop"``), and empty input.
    """
    cols = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])
    require_columns(transactions, cols, "transactions")
    if len(transactions) == 0:
        raise empty_error()
    frame = transactions[cols]
    fail_rows(frame, frame[customer_id_col].isna(), customer_id_col, Problem.MISSING_IDS, cols)
    raw_dates = frame[datetime_col]
    fail_rows(frame, raw_dates.isna(), datetime_col, Problem.MISSING_DATES, cols)
    days = _parse_dates(raw_dates)
    fail_rows(frame, days.isna(), datetime_col, Problem.UNPARSEABLE_DATES, cols)
    out = pd.DataFrame({"id": frame[customer_id_col].to_numpy(), "day": days.to_numpy()})
    if monetary_value_col:
        amount = pd.to_numeric(frame[monetary_value_col], errors="coerce")
        fail_rows(frame, amount.isna() & frame[monetary_value_col].notna(), monetary_value_col,
                  Problem.AMOUNTS_NOT_NUMBERS, cols)
        fail_rows(frame, amount.isna(), monetary_value_col, Problem.MISSING_AMOUNTS, cols)
        fail_rows(frame, ~np.isfinite(amount.to_numpy(dtype=float)), monetary_value_col,
                  Problem.AMOUNTS_NOT_FINITE, cols)
        negative = amount.to_numpy(dtype=float) < 0
        if negative_amounts == "raise":
            fail_rows(frame, negative, monetary_value_col, Problem.NEGATIVE_AMOUNTS, cols)
        else:
            check_negative_amounts_option(negative_amounts)
        out["amount"] = amount.to_numpy(dtype=float)
        if negative.any():
            out = out.loc[~negative].reset_index(drop=True)
            if out.empty:
                raise all_negative_error(monetary_value_col)
    else:
        out["amount"] = 0.0
    return out


def _parse_dates(raw: pd.Series) -> pd.Series:
    """Parse to tz-naive datetime64 normalised to the calendar day (NaT where unparseable)."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw
        if isinstance(raw.dtype, pd.ArrowDtype):
            import pyarrow as pa

            if pa.types.is_date(raw.dtype.pyarrow_dtype):
                parsed = raw.astype("datetime64[s]")  # date32/64[pyarrow] have no .dt.tz
    elif pd.api.types.is_integer_dtype(raw):
        # YYYYMMDD integers, as in the CDNOW files
        parsed = pd.to_datetime(raw.astype("string"), format="%Y%m%d", errors="coerce")
    elif pd.api.types.is_float_dtype(raw):
        # YYYYMMDD read as floats (an integer column with gaps); pd.to_datetime would take
        # them as nanoseconds since 1970. Other numbers are not dates.
        whole = raw.where((raw == np.floor(raw)) & (raw.abs() < 1e9))
        parsed = pd.to_datetime(whole.astype("Int64").astype("string"), format="%Y%m%d",
                                errors="coerce")
    else:
        try:
            parsed = pd.to_datetime(raw, errors="coerce", format="mixed")
        except ValueError as err:
            if "Mixed timezones" not in str(err):
                raise
            # strings with different UTC offsets: each purchase keeps its own local calendar
            # day (the offset is dropped), as for a tz-aware column and in the DuckDB engine
            local = raw.astype("string").str.strip().str.replace(
                r"(\d{1,2}:\d{2}(?::\d{2}(?:\.\d*)?)?)\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$",
                r"\1", regex=True)
            parsed = pd.to_datetime(local, errors="coerce", format="mixed")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    parsed = parsed.dt.normalize()
    # pandas 3 parses to microseconds; dates outside the nanosecond range (typos such as
    # 1197 or 2997) become NaT and are reported as unparseable, instead of failing later
    # with a bare OutOfBoundsDatetime that names no column or row (see FIRST_DAY, LAST_DAY).
    in_range = parsed.between(FIRST_DAY, LAST_DAY)
    return parsed.where(in_range).astype("datetime64[ns]")


def day_summary_pandas(
    tx: pd.DataFrame,
    *,
    observation_end: pd.Timestamp,
    calibration_end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Per-customer day-level summary from validated transactions (``id, day, amount``).

    With ``calibration_end`` the RFM part covers days <= calibration_end and the holdout
    columns count transaction days in (calibration_end, observation_end].
    """
    cut = calibration_end if calibration_end is not None else observation_end
    tx = tx.loc[tx["day"] <= observation_end]
    daily = tx.groupby(["id", "day"], sort=True, observed=True)["amount"].sum().reset_index()
    cal = daily.loc[daily["day"] <= cut]
    g = cal.groupby("id", sort=True)
    first_rows = cal.drop_duplicates("id", keep="first").set_index("id")
    out = pd.DataFrame(
        {
            "n_days": g.size(),
            "first_day": g["day"].min(),
            "last_day": g["day"].max(),
            "total": g["amount"].sum(),
            "first_total": first_rows["amount"],
        }
    )
    if calibration_end is not None:
        hold = daily.loc[daily["day"] > cut].groupby("id")
        out["n_days_holdout"] = hold.size().reindex(out.index, fill_value=0)
        out["total_holdout"] = hold["amount"].sum().reindex(out.index, fill_value=0.0)
    return out


# --------------------------------------------------------------------------------------
# engines: name -> function computing the day-level summary
# --------------------------------------------------------------------------------------

#: An engine takes the transactions (a DataFrame, or whatever sources it reads), the period
#: ends as calendar days (``observation_end=None``: the last transaction day) and the column
#: keywords, validates the data by the rules of :mod:`clvmodels._summary_rules` and returns
#: ``(day-level summary, observation end used)``.
DaySummaryEngine = Callable[..., tuple[pd.DataFrame, pd.Timestamp]]


def _pandas_engine(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    observation_end: pd.Timestamp | None,
    calibration_end: pd.Timestamp | None,
    **keywords: Any,
) -> tuple[pd.DataFrame, pd.Timestamp]:
    if not isinstance(transactions, pd.DataFrame):
        transactions = read_transactions(transactions)
    tx = prepare_transactions(transactions, **keywords)
    first_date = tx["day"].min()
    obs_end = tx["day"].max() if observation_end is None else observation_end
    check_observation_end(first_date, obs_end)
    check_observation_end(first_date, calibration_end, "calibration_end")
    days = day_summary_pandas(tx, observation_end=obs_end, calibration_end=calibration_end)
    return days, obs_end


def _duckdb_engine(
    transactions: object, **keywords: Any
) -> tuple[pd.DataFrame, pd.Timestamp]:
    from clvmodels.engines.duckdb import day_summary_duckdb  # loads duckdb on first use

    return day_summary_duckdb(transactions, **keywords)


#: The summary engines by name (``engine=`` of :func:`rfm_summary`); each entry imports its
#: engine on first use. Adding an engine = one module under ``clvmodels/engines`` + one entry.
ENGINES: dict[str, DaySummaryEngine] = {
    "pandas": _pandas_engine,
    "duckdb": _duckdb_engine,
}


def _summarise(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    customer_id_col: str,
    datetime_col: str,
    monetary_value_col: str | None,
    observation_end: object,
    calibration_end: object,
    time_unit: str,
    engine: Engine,
    negative_amounts: NegativeAmounts,
) -> pd.DataFrame:
    time_unit_days(time_unit)  # fail fast on a bad unit
    obs_end = as_day(observation_end, "observation_end")
    cal_end = as_day(calibration_end, "calibration_end")
    if cal_end is not None and obs_end is not None and obs_end < cal_end:
        raise ValueError(
            f"observation_end ({obs_end.date()}) is before calibration_end ({cal_end.date()})"
        )
    try:
        day_summary = ENGINES[engine]
    except (KeyError, TypeError):
        raise ValueError(f"unknown engine {engine!r}; use {' or '.join(map(repr, ENGINES))} "
                         "(a Spark engine is planned but not built yet)") from None
    days, obs_end = day_summary(
        transactions,
        observation_end=obs_end,
        calibration_end=cal_end,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
        negative_amounts=negative_amounts,
    )
    return finalise_day_summary(
        days,
        observation_end=obs_end,
        time_unit=time_unit,
        customer_id_col=customer_id_col,
        with_monetary=monetary_value_col is not None,
        calibration_end=cal_end,
    )


def rfm_summary(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str | None = "amount",
    observation_end: object = None,
    time_unit: str = "W",
    engine: Engine = "pandas",
    negative_amounts: NegativeAmounts = "raise",
) -> pd.DataFrame:
    """Summarise transactions into one RFM row per customer.

    Parameters
    ----------
    transactions
        A DataFrame with one row per transaction, or (``engine="duckdb"``) a path or glob of
        CSV / Parquet files, which are never loaded into pandas whole.
    customer_id_col, datetime_col, monetary_value_col
        Column names. ``monetary_value_col=None`` skips spend.
    observation_end
        End of the observation period (inclusive, a calendar day). Later transactions are
        ignored and customers first seen after it are dropped. Default: the last transaction.
    time_unit
        "D", "W" (7 days), "M" (30.4375 days) or "Y" (365.25 days); see :data:`TIME_UNITS`.
    engine
        "pandas" (default) or "duckdb" (files larger than memory).
    negative_amounts
        "raise" (default) refuses negative amounts such as returns; "drop" ignores them.

    Returns
    -------
    DataFrame indexed by customer id with ``frequency, recency, T[, monetary_value]``;
    ``attrs["time_unit"]`` and ``attrs["observation_end"]`` record how it was made.
    """
    return _summarise(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
        observation_end=observation_end,
        calibration_end=None,
        time_unit=time_unit,
        engine=engine,
        negative_amounts=negative_amounts,
    )


def calibration_holdout_split(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    calibration_end: object,
    observation_end: object = None,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str | None = "amount",
    time_unit: str = "W",
    engine: Engine = "pandas",
    negative_amounts: NegativeAmounts = "raise",
) -> pd.DataFrame:
    """Calibration RFM (to ``calibration_end``) plus what each customer did in the holdout.

    Customers are those first seen by ``calibration_end``. The calibration columns have the
    same names as :func:`rfm_summary` (so the frame feeds a model directly); the holdout adds
    ``frequency_holdout`` (transaction days in (calibration_end, observation_end] — all of
    them are repeat purchases), ``monetary_value_holdout`` (their mean value) and
    ``duration_holdout`` (holdout length in ``time_unit``).
    """
    if calibration_end is None:
        raise ValueError("calibration_end is required")
    return _summarise(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
        observation_end=observation_end,
        calibration_end=calibration_end,
        time_unit=time_unit,
        engine=engine,
        negative_amounts=negative_amounts,
    )


def read_transactions(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV or Parquet file of transactions into pandas."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"no such file: {p}")
    if p.lower().endswith((".parquet", ".pq")):
        return pd.read_parquet(p)
    return pd.read_csv(p)


# --------------------------------------------------------------------------------------
# compression: identical (frequency, recency, T) rows → one row with a weight
# --------------------------------------------------------------------------------------


#: the historical name of the unique-rows container (one container for the package)
CompressedRFM = UniqueRows


def compress_rfm(rfm: pd.DataFrame, *, validate: bool = True) -> UniqueRows:
    """Collapse identical ``(frequency, recency, T)`` rows into unique rows with weights.

    For a million customers with daily dates that is ~180k rows; weekly, far fewer.
    """
    if validate:
        validate_rfm(rfm)
    return compress_columns(rfm, ("frequency", "recency", "T"),
                            time_unit=rfm.attrs.get("time_unit"))
