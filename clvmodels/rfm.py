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

Hostile input is refused by rules written once in :mod:`clvmodels._summary_rules` (and
:mod:`clvmodels._date_rules`) and followed by every engine, each refusal naming the column,
the offending rows (index labels; lines of a CSV file) and how many: a text date column has
ONE format (inferred from the whole column, or ``date_format`` / ``dayfirst``); dates far
from all the others, before 1900, or an ``observation_end`` long after the last transaction
are refused unless ``implausible_dates="warn"``; customer ids of mixed types, blank ids, and
ids that differ only by spaces at their ends (unless ``strip_ids=True``) are refused.

This module knows nothing of models. It holds the pandas engine and dispatches to the others
(``clvmodels.engines``: DuckDB, ...) through a small table, :data:`ENGINES`. Every engine
returns the same *day-level* summary and follows the rules of
:mod:`clvmodels._summary_rules` (time units, validation messages, the range of dates), which
also turns the day-level summary into time units, so the conversion is written once. The
engines import those rules, never this module.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd

# the rules every engine shares (re-exported: TIME_UNITS, time_unit_days, NegativeAmounts and
# the day-level column names have always been importable from here)
from clvmodels._summary_rules import (
    DAY_COLUMNS,  # noqa: F401  (re-exported)
    FIRST_DAY,  # noqa: F401  (re-exported)
    HOLDOUT_DAY_COLUMNS,  # noqa: F401  (re-exported)
    LAST_DAY,  # noqa: F401  (re-exported)
    TIME_UNITS,
    ImplausibleDates,
    NegativeAmounts,
    Problem,
    all_negative_error,
    as_day,
    check_date_options,
    check_holdout,
    check_negative_amounts_option,
    check_observation_end,
    check_summary_options,
    empty_error,
    finalise_day_summary,
    id_type_problem,
    numeric_object_ids,
    parse_date_column,
    period_end_problem,
    plausible_window,
    report_problem,
    strip_text_ids,
    text_id_masks,
    time_unit_days,
)
from clvmodels._validation import (
    ROW_LABEL_ATTR,
    DataWarning,
    fail_rows,
    require_columns,
    rows_message,
    validate_rfm,
)
from clvmodels.rows import UniqueRows, compress_columns

__all__ = [
    "TIME_UNITS",
    "CompressedRFM",
    "calibration_holdout_split",
    "compress_rfm",
    "rfm_summary",
    "time_unit_days",
]

Engine = Literal["pandas", "duckdb", "spark"]


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
    date_format: str | None = None,
    dayfirst: bool | None = None,
    strip_ids: bool = False,
) -> pd.DataFrame:
    """Validate raw transactions and return a new frame ``id, day, amount``.

    The caller's frame is never modified. Raises :class:`ValidationError` naming the column
    and showing offending rows (by index label; by line for a CSV file read with
    :func:`read_transactions`), in this order, for: missing columns, empty input; customer
    ids of mixed types, missing or blank ids, ids that differ only by spaces at their ends
    (unless ``strip_ids``); missing dates, a text date column that reads as other days
    day-first and month-first (pass ``dayfirst`` or ``date_format``), dates that do not fit
    the column's one format; missing / non-numeric / non-finite / negative amounts
    (negative ones may be dropped instead with ``negative_amounts="drop"``). The rules are
    those of :mod:`clvmodels._summary_rules`, which the DuckDB engine follows too.
    """
    return _prepare(transactions, customer_id_col=customer_id_col, datetime_col=datetime_col,
                    monetary_value_col=monetary_value_col, negative_amounts=negative_amounts,
                    date_format=date_format, dayfirst=dayfirst, strip_ids=strip_ids)[0]


def _prepare(
    transactions: pd.DataFrame,
    *,
    customer_id_col: str,
    datetime_col: str,
    monetary_value_col: str | None,
    negative_amounts: NegativeAmounts,
    date_format: str | None,
    dayfirst: bool | None,
    strip_ids: bool,
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """:func:`prepare_transactions`, also returning the checked frame (the caller's columns,
    for messages) and the positions in it of the rows kept."""
    check_date_options(date_format, dayfirst)
    cols = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])
    require_columns(transactions, cols, "transactions")
    if len(transactions) == 0:
        raise empty_error()
    frame = transactions[cols]
    if ROW_LABEL_ATTR in transactions.attrs:
        frame.attrs[ROW_LABEL_ATTR] = transactions.attrs[ROW_LABEL_ATTR]
    raw_ids = frame[customer_id_col]
    mixed = id_type_problem(raw_ids)
    if mixed is not None:
        fail_rows(frame, mixed[0], customer_id_col, mixed[1], cols)
    raw_ids = numeric_object_ids(raw_ids)
    ids = strip_text_ids(raw_ids) if strip_ids else raw_ids
    text_masks = text_id_masks(ids)
    missing_ids = np.array(ids.isna(), dtype=bool)
    if text_masks is not None:
        missing_ids = missing_ids | text_masks[0]
    fail_rows(frame, missing_ids, customer_id_col, Problem.MISSING_IDS, cols)
    amount = (pd.to_numeric(frame[monetary_value_col], errors="coerce")
              if monetary_value_col else None)
    negative = (amount.to_numpy(dtype=float, na_value=np.nan) < 0 if amount is not None
                else np.zeros(len(frame), dtype=bool))
    dropped = negative if negative_amounts == "drop" else np.zeros(len(frame), dtype=bool)
    if text_masks is not None and not strip_ids and text_masks[1].any():
        rows, examples = _spaced_id_rows(ids, text_masks[1], ~dropped)
        fail_rows(frame, rows, customer_id_col, Problem.spaced_ids(examples), cols)
    parsed = parse_date_column(frame[datetime_col], date_format=date_format, dayfirst=dayfirst)
    fail_rows(frame, parsed.missing, datetime_col, Problem.MISSING_DATES, cols)
    if parsed.ambiguous is not None:
        fail_rows(frame, parsed.ambiguous, datetime_col, parsed.ambiguous_problem, cols)
    fail_rows(frame, parsed.bad, datetime_col, parsed.bad_problem, cols)
    out = pd.DataFrame({"id": ids.to_numpy(),
                        "day": parsed.days.astype("datetime64[D]").astype("datetime64[ns]")})
    if monetary_value_col and amount is not None:
        fail_rows(frame, amount.isna() & frame[monetary_value_col].notna(), monetary_value_col,
                  Problem.AMOUNTS_NOT_NUMBERS, cols)
        fail_rows(frame, amount.isna(), monetary_value_col, Problem.MISSING_AMOUNTS, cols)
        fail_rows(frame, ~np.isfinite(amount.to_numpy(dtype=float)), monetary_value_col,
                  Problem.AMOUNTS_NOT_FINITE, cols)
        if negative_amounts == "raise":
            fail_rows(frame, negative, monetary_value_col, Problem.NEGATIVE_AMOUNTS, cols)
        else:
            check_negative_amounts_option(negative_amounts)
        out["amount"] = amount.to_numpy(dtype=float)
    else:
        out["amount"] = 0.0
    positions = np.arange(len(frame))
    if negative.any():
        out = out.loc[~negative].reset_index(drop=True)
        positions = positions[~negative]
        if out.empty:
            raise all_negative_error(monetary_value_col)
    return out, frame, positions


def _spaced_id_rows(ids: pd.Series, spaced: np.ndarray, considered: np.ndarray
                    ) -> tuple[np.ndarray, list[str]]:
    """Rows whose id differs from another id of the considered rows only by spaces at the
    ends (every id of such a group), and two such ids (of the group first in order)."""
    values = ids.astype(object)
    stripped = strip_text_ids(values)
    is_text = values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool) & considered
    pairs = pd.DataFrame({"raw": values[is_text], "key": stripped[is_text]}).drop_duplicates()
    spaced_keys = set(stripped[spaced & considered])
    pairs = pairs.loc[pairs["key"].isin(spaced_keys)]
    clashing = pairs.loc[pairs["key"].duplicated(keep=False)]
    if clashing.empty:
        return np.zeros(len(values), dtype=bool), []
    first = min(clashing["key"])
    examples = sorted(clashing.loc[clashing["key"] == first, "raw"])[:2]
    return is_text & stripped.isin(set(clashing["key"])).to_numpy(dtype=bool), examples


def _parse_dates(raw: pd.Series, *, date_format: str | None = None,
                 dayfirst: bool | None = None) -> pd.Series:
    """A date column as tz-naive datetime64[ns] calendar days (NaT where missing or not a
    date), by the summary's rules (one format for the whole column)."""
    parsed = parse_date_column(raw, date_format=date_format, dayfirst=dayfirst)
    out = parsed.as_datetime()
    out.index = raw.index
    return out


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


def _check_plausible(
    frame: pd.DataFrame,
    tx: pd.DataFrame,
    positions: np.ndarray,
    *,
    obs_end: pd.Timestamp,
    observation_end_given: bool,
    datetime_col: str,
    implausible_dates: ImplausibleDates,
    notes: list[str],
) -> None:
    """The plausible-dates rules of :mod:`clvmodels._summary_rules` on the pandas engine."""
    day = tx["day"].to_numpy().astype("datetime64[D]").astype(np.int64)
    in_period = tx["day"].to_numpy() <= np.datetime64(obs_end)
    active = np.unique(day[in_period])
    window = plausible_window(active)
    early = in_period & (day < window.low)
    late = in_period & (day > window.high)
    if early.any() or late.any():
        outliers = day[early | late]
        mask = np.zeros(len(frame), dtype=bool)
        mask[positions[early | late]] = True
        problem = window.problem(int(outliers.min()), int(outliers.max()),
                                 int(early.sum()), int(late.sum()))
        message = rows_message(frame, mask, datetime_col, problem, list(frame.columns))
        report_problem(message, implausible_dates, notes)
    if observation_end_given:
        message = period_end_problem(active, obs_end, "observation_end")
        if message is not None:
            report_problem(message, implausible_dates, notes)


# --------------------------------------------------------------------------------------
# engines: name -> function computing the day-level summary
# --------------------------------------------------------------------------------------

#: An engine takes the transactions (a DataFrame, or whatever sources it reads), the period
#: ends as calendar days (``observation_end=None``: the last transaction day), the column
#: keywords and the rule options (``negative_amounts``, ``date_format``, ``dayfirst``,
#: ``strip_ids``, ``implausible_dates``), validates the data by the rules of
#: :mod:`clvmodels._summary_rules` and returns ``(day-level summary, observation end used)``.
#: Problems kept with ``implausible_dates="warn"`` are appended to ``notes`` (the caller
#: warns), so every engine warns alike.
DaySummaryEngine = Callable[..., tuple[pd.DataFrame, pd.Timestamp]]


def _pandas_engine(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    observation_end: pd.Timestamp | None,
    calibration_end: pd.Timestamp | None,
    implausible_dates: ImplausibleDates = "raise",
    notes: list[str] | None = None,
    **keywords: Any,
) -> tuple[pd.DataFrame, pd.Timestamp]:
    if not isinstance(transactions, pd.DataFrame):
        transactions = read_transactions(transactions)
    tx, frame, positions = _prepare(transactions, **keywords)
    first_date = tx["day"].min()
    last_date = tx["day"].max()
    obs_end = last_date if observation_end is None else observation_end
    check_observation_end(first_date, obs_end)
    check_observation_end(first_date, calibration_end, "calibration_end")
    check_holdout(calibration_end, obs_end,
                  last_day=last_date if observation_end is None else None)
    _check_plausible(frame, tx, positions, obs_end=obs_end,
                     observation_end_given=observation_end is not None,
                     datetime_col=keywords["datetime_col"],
                     implausible_dates=implausible_dates,
                     notes=notes if notes is not None else [])
    days = day_summary_pandas(tx, observation_end=obs_end, calibration_end=calibration_end)
    return days, obs_end


def _duckdb_engine(
    transactions: object, **keywords: Any
) -> tuple[pd.DataFrame, pd.Timestamp]:
    from clvmodels.engines.duckdb import day_summary_duckdb  # loads duckdb on first use

    return day_summary_duckdb(transactions, **keywords)


def _spark_engine(
    transactions: object, **keywords: Any
) -> tuple[Any, pd.Timestamp]:
    try:
        from clvmodels.engines.spark import day_summary_spark  # loads pyspark on first use
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError("engine='spark' needs pyspark: pip install 'clvmodels[spark]'"
                          ) from exc
    return day_summary_spark(transactions, **keywords)


def _finalise_spark(days: Any, **keywords: Any) -> Any:
    from clvmodels.engines.spark import finalise_day_summary_spark

    return finalise_day_summary_spark(days, **keywords)


#: The summary engines by name (``engine=`` of :func:`rfm_summary`); each entry imports its
#: engine on first use. Adding an engine = one module under ``clvmodels/engines`` + one entry.
#: The Spark engine's day-level summary is a Spark DataFrame, finalised in Spark
#: (:data:`_FINALISERS`), so the result stays distributed.
ENGINES: dict[str, DaySummaryEngine] = {
    "pandas": _pandas_engine,
    "duckdb": _duckdb_engine,
    "spark": _spark_engine,
}
#: engines whose day-level summary is not a pandas frame -> their finalise_day_summary
_FINALISERS: dict[str, Callable[..., Any]] = {"spark": _finalise_spark}


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
    date_format: str | None,
    dayfirst: bool | None,
    strip_ids: bool,
    implausible_dates: ImplausibleDates,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    time_unit_days(time_unit)  # fail fast on a bad unit
    check_date_options(date_format, dayfirst)
    check_summary_options(implausible_dates=implausible_dates, strip_ids=strip_ids)
    obs_end = as_day(observation_end, "observation_end")
    cal_end = as_day(calibration_end, "calibration_end")
    if cal_end is not None and obs_end is not None and obs_end < cal_end:
        raise ValueError(
            f"observation_end ({obs_end.date()}) is before calibration_end ({cal_end.date()})"
        )
    if obs_end is not None:
        check_holdout(cal_end, obs_end)
    try:
        day_summary = ENGINES[engine]
    except (KeyError, TypeError):
        raise ValueError(f"unknown engine {engine!r}; use {' or '.join(map(repr, ENGINES))}"
                         ) from None
    settings = {k: v for k, v in (("memory_limit", memory_limit), ("threads", threads))
                if v is not None}
    if settings and engine != "duckdb":
        raise ValueError(f"{' and '.join(settings)} apply to engine='duckdb' only")
    notes: list[str] = []
    days, obs_end = day_summary(
        transactions,
        observation_end=obs_end,
        calibration_end=cal_end,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
        negative_amounts=negative_amounts,
        date_format=date_format,
        dayfirst=dayfirst,
        strip_ids=strip_ids,
        implausible_dates=implausible_dates,
        notes=notes,
        **settings,
    )
    for note in notes:
        warnings.warn(note, DataWarning, stacklevel=3)
    finalise = _FINALISERS.get(engine, finalise_day_summary)
    return finalise(
        days,
        observation_end=obs_end,
        time_unit=time_unit,
        customer_id_col=customer_id_col,
        with_monetary=monetary_value_col is not None,
        calibration_end=cal_end,
    )


_RULE_OPTIONS_DOC = """date_format
        The strftime format of a text date column (e.g. ``"%d/%m/%Y"``), for the whole
        column. Default: inferred from the whole column -- ISO 8601 (``YYYY-MM-DD``, with or
        without a time and UTC offset; the day written is the day) first, then
        ``YYYY/MM/DD``, ``YYYYMMDD``, ``DD/MM/YYYY``, ``MM/DD/YYYY`` (also with ``-`` or
        ``.``), ``15 Mar 2024``, ``Mar 15, 2024``: the one layout every date fits. Never
        guessed row by row: a column fitting no single layout is refused, naming the rows
        that do not fit; one whose every date fits both day-first and month-first, with
        some date read differently, is refused until ``dayfirst`` or ``date_format`` says.
    dayfirst
        True: numeric dates are day-first (``DD/MM/YYYY``); False: month-first; None
        (default): inferred as above. Not together with ``date_format``.
    strip_ids
        Remove spaces (also tabs, line breaks, no-break spaces) from both ends of text
        customer ids. Default False: ids are kept as written, but ids differing only by
        such spaces (``" A "`` and ``"A"``) are refused, as they would count as two
        customers that print alike. Ids of mixed types (``1`` and ``"1"``) are always
        refused; blank ids are missing ids.
    implausible_dates
        "raise" (default) refuses implausible dates: transactions far from all the others
        (beyond 3 interquartile ranges of the days with transactions, e.g. a typo such as
        2099) or before 1900, and an ``observation_end`` more than 90 days (and more than
        any gap in the data) after the last transaction. "warn" keeps them with a
        :class:`~clvmodels._validation.DataWarning` saying what, where and by how much."""


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
    date_format: str | None = None,
    dayfirst: bool | None = None,
    strip_ids: bool = False,
    implausible_dates: ImplausibleDates = "raise",
    memory_limit: str | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """Summarise transactions into one RFM row per customer.

    Parameters
    ----------
    transactions
        A DataFrame with one row per transaction, or a path to a CSV / Parquet file
        (``engine="duckdb"``: also a glob, directory or list of files, which are never
        loaded into pandas whole). Bad rows of a CSV file are named by their line.
    customer_id_col, datetime_col, monetary_value_col
        Column names. ``monetary_value_col=None`` skips spend.
    observation_end
        End of the observation period (inclusive, a calendar day). Later transactions are
        ignored and customers first seen after it are dropped. Default: the last transaction.
    time_unit
        "D", "W" (7 days), "M" (30.4375 days) or "Y" (365.25 days); see :data:`TIME_UNITS`.
    engine
        "pandas" (default) or "duckdb" (files larger than memory); same results, same errors.
        "spark" (``pip install clvmodels[spark]``): also a Spark DataFrame; the result is a
        lazy Spark DataFrame (never collected; rows in no order) whose columns carry the
        ``attrs`` in their metadata (:func:`clvmodels.engines.spark.summary_attrs`).
    negative_amounts
        "raise" (default) refuses negative amounts such as returns; "drop" ignores them.
    memory_limit, threads
        ``engine="duckdb"`` only: DuckDB's memory limit (e.g. ``"2GB"``, the default, or
        ``CLVMODELS_DUCKDB_MEMORY_LIMIT``; beyond it DuckDB spills to disk, under
        ``CLVMODELS_DUCKDB_TEMP_DIRECTORY`` or the system's temporary folder) and threads
        (default every core, or ``CLVMODELS_DUCKDB_THREADS``).
    {rules}

    Returns
    -------
    DataFrame indexed by customer id with ``frequency, recency, T[, monetary_value]``;
    ``attrs["time_unit"]`` and ``attrs["observation_end"]`` record how it was made. With
    ``engine="spark"``: a Spark DataFrame with the id as its first column.
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
        date_format=date_format,
        dayfirst=dayfirst,
        strip_ids=strip_ids,
        implausible_dates=implausible_dates,
        memory_limit=memory_limit,
        threads=threads,
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
    date_format: str | None = None,
    dayfirst: bool | None = None,
    strip_ids: bool = False,
    implausible_dates: ImplausibleDates = "raise",
    memory_limit: str | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """Calibration RFM (to ``calibration_end``) plus what each customer did in the holdout.

    Customers are those first seen by ``calibration_end``. The calibration columns have the
    same names as :func:`rfm_summary` (so the frame feeds a model directly); the holdout adds
    ``frequency_holdout`` (transaction days in (calibration_end, observation_end] — all of
    them are repeat purchases), ``monetary_value_holdout`` (their mean value) and
    ``duration_holdout`` (holdout length in ``time_unit``). The holdout must not be empty:
    ``observation_end`` (default: the last transaction) after ``calibration_end``. The other
    keywords are those of :func:`rfm_summary`, with the same rules.
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
        date_format=date_format,
        dayfirst=dayfirst,
        strip_ids=strip_ids,
        implausible_dates=implausible_dates,
        memory_limit=memory_limit,
        threads=threads,
    )


if rfm_summary.__doc__:  # not under python -OO
    rfm_summary.__doc__ = rfm_summary.__doc__.replace("{rules}", _RULE_OPTIONS_DOC)


def read_transactions(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV or Parquet file of transactions into pandas.

    The rows of a CSV file are labelled with their line in the file (the header is line 1,
    so the first row is line 2; blank lines are skipped, as when reading) and
    ``attrs["clvmodels_row_label"] = "line"``, so error messages point at the lines a user
    sees in an editor. A Parquet file keeps its stored index, or rows counted from 0.
    """
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"no such file: {p}")
    if p.lower().endswith((".parquet", ".pq")):
        return pd.read_parquet(p)
    frame = pd.read_csv(p)
    if isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0:
        frame.index = pd.RangeIndex(2, len(frame) + 2)
        frame.attrs[ROW_LABEL_ATTR] = "line"
    return frame


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
