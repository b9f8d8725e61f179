"""The rules every engine of the contract summary shares (subscriptions -> one row per customer).

:func:`clvmodels.contract.contract_summary` dispatches to an engine (pandas in
:mod:`clvmodels.contract`, DuckDB in :mod:`clvmodels.engines.duckdb_contract`); each engine
validates the subscription records, merges each customer's records into tenures and computes
``periods, churned, cohort, tenures`` itself, following the rules written here once:

Dates
    A date column holds datetimes (naive or tz-aware: a tz-aware time falls on its calendar
    day in its own time zone), ``datetime.date`` objects, or strings in ONE format: ISO 8601
    (``YYYY-MM-DD``, optionally followed by ``T``/space and a time and a UTC offset or ``Z``;
    the calendar day is the one written, the offset is not applied) unless ``date_format``
    names another strftime format. Nothing is guessed per row. Numbers and booleans are not
    dates. Days lie in 0001-01-01 .. 9999-12-31 (a far-future end such as 9999-12-31, a
    common "open" marker, is accepted). A missing or blank ``end`` means "still active".
Periods (:data:`PERIODS`)
    ``"M"`` and ``"Y"`` follow calendar anniversaries of the start date: period k starts
    ``k`` months (12k for "Y") after the start, on the same day of the month, or on the last
    day of a shorter month (a monthly plan started on Jan 31 renews on Feb 28 -- Feb 29 in
    leap years --, Mar 31, Apr 30, ...; one started on Feb 29 renews yearly on Feb 28 and on
    Feb 29 in leap years). Anniversaries are always counted from the start, never from the
    previous (clipped) renewal. ``"D"`` and ``"W"`` have fixed lengths of 1 and 7 days.
Periods paid
    A period counts as paid at its start: the first at the start date, period k at its k-th
    renewal date. A churned customer has paid the periods that started *before* ``end`` (a
    renewal falling on the end date is not paid: ``end`` is the day the subscription
    stopped), and at least one. An active customer has paid the periods that started on or
    before ``observation_end``.
Active or churned
    A tenure is churned when its end is on or before ``observation_end``; one that is open
    (no end) or ends later is active at ``observation_end`` (right-censored).
Several records per customer (plan changes, renewals stored as rows, gaps)
    A customer's records are sorted by start; a record that starts on or before the latest
    end so far plus ``max_gap_days`` (default 0: on or before the day the previous tenure
    stopped) continues the same tenure, otherwise it opens a new one (the customer came
    back). The model describes the first tenure: with ``reactivations="first"`` (default)
    each customer's first tenure is summarised and the later ones are counted in
    ``tenures``; ``reactivations="raise"`` refuses such customers instead.
Cohort
    The calendar period of the first start, as a string: ``"2023-01"`` ("M"), ``"2023"``
    ("Y"), ``"2023-W05"`` (ISO week, "W"), ``"2023-01-31"`` ("D"). Strings sort in time order
    and travel unchanged through CSV, Parquet and SQL; ``pd.Period(cohort, "M")`` converts.
Result
    One row per customer, indexed by customer id (``customer_id_col`` as the index name) and
    sorted by it, with :data:`RESULT_COLUMNS`: ``periods`` (int64 >= 1), ``churned`` (bool),
    ``cohort`` (str), ``tenures`` (int64 >= 1); ``attrs`` record ``period`` (also as
    ``time_unit``, as RFM frames record theirs), ``observation_end`` (ISO date) and
    ``data_kind`` = ``"contractual"``.

This module imports no engine and nothing of :mod:`clvmodels.contract`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from clvmodels._date_rules import plain_date_dtype
from clvmodels._validation import ValidationError, fail_rows

__all__ = [
    "BLANK_REGEX",
    "COHORT_LABELS",
    "CSV_NA_STRINGS",
    "EDGE_SPACE_REGEX",
    "ISO_DATE_REGEX",
    "MAX_DAY",
    "MIN_DAY",
    "PERIODS",
    "RESULT_COLUMNS",
    "ContractProblem",
    "ParsedDays",
    "Reactivations",
    "check_id_types",
    "check_options",
    "finalise_contract",
    "not_dates_error",
    "observation_end_day",
    "parse_days",
]

Reactivations = Literal["first", "raise"]

#: period -> (calendar unit, length): "D"/"W" are fixed numbers of days, "M"/"Y" calendar
#: months counted from the start date's anniversaries.
PERIODS: dict[str, tuple[str, int]] = {"D": ("day", 1), "W": ("day", 7), "M": ("month", 1),
                                       "Y": ("month", 12)}
#: cohort labels: the calendar period of the first start (year zero-padded to 4 digits)
COHORT_LABELS: dict[str, str] = {"D": "YYYY-MM-DD", "W": "YYYY-Www (ISO year and week)",
                                 "M": "YYYY-MM", "Y": "YYYY"}

RESULT_COLUMNS = ["periods", "churned", "cohort", "tenures"]

#: the range of calendar days accepted
MIN_DAY = dt.date(1, 1, 1)
MAX_DAY = dt.date(9999, 12, 31)

#: ISO 8601 date with an optional time and UTC offset; group 1 is the calendar day as
#: written. The same pattern for Python's ``re`` and DuckDB's RE2 (full match): ASCII digits
#: and only spaces / tabs around, as both engines read them alike.
ISO_DATE_REGEX = (
    r"[ \t]*([0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.,][0-9]+)?)?)?"
    r"[ \t]*(?:Z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?[ \t]*"
)
#: a string that counts as missing: empty or spaces / tabs only
BLANK_REGEX = r"[ \t]*"
#: leading and trailing spaces / tabs, removed before parsing with ``date_format``
EDGE_SPACE_REGEX = r"^[ \t]+|[ \t]+$"

# pandas.read_csv's default missing-value strings, so every engine reads a CSV alike
CSV_NA_STRINGS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)


class ContractProblem:
    """The wording of each problem with subscription records, in the order every engine
    checks them (the message is ``column '<name>': <problem>; <n> offending row(s): ...``)."""

    MISSING_IDS = "missing customer ids"
    MISSING_STARTS = "missing start dates"
    END_BEFORE_START = "end dates before the start date"
    DUPLICATES = "duplicated subscription records (same customer, start and end)"
    REACTIVATED = ("customers who came back after a gap (more than one tenure); pass "
                   "reactivations='first' to summarise each customer's first tenure")

    @staticmethod
    def bad_dates(date_format: str | None) -> str:
        if date_format is None:
            return ("dates that are not ISO 8601 (YYYY-MM-DD, optionally with a time and UTC "
                    "offset) or not real calendar days in the years 1-9999; pass date_format "
                    "for another single format")
        return (f"dates that do not match date_format={date_format!r} or are not real "
                "calendar days in the years 1-9999")

    @staticmethod
    def start_after(observation_end: pd.Timestamp) -> str:
        return (f"subscriptions that start after observation_end ({observation_end.date()}); "
                "leave them out (or choose a later observation_end)")


def not_dates_error(column: str, dtype: object) -> ValidationError:
    """A whole column of a type that is not a date."""
    return ValidationError(
        f"column {column!r} holds {dtype} values, which are not dates: use datetimes or "
        "ISO 8601 strings (YYYY-MM-DD), or strings in one format given as date_format"
    )


def check_options(period: str, reactivations: str, max_gap_days: int) -> None:
    """Raise ``ValueError`` for an unknown period or option."""
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}; use one of {list(PERIODS)}")
    if reactivations not in ("first", "raise"):
        raise ValueError("reactivations must be 'first' or 'raise'")
    if isinstance(max_gap_days, bool) or not isinstance(max_gap_days, int | np.integer) \
            or max_gap_days < 0:
        raise ValueError(f"max_gap_days must be a whole number of days >= 0, got "
                         f"{max_gap_days!r}")


def observation_end_day(value: object) -> pd.Timestamp:
    """``observation_end`` as a tz-naive calendar day (required)."""
    if value is None:
        raise ValueError("observation_end is required: the date at which subscriptions "
                         "without an end (or ending later) count as active")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"observation_end={value!r} is not a date") from exc
    if ts is pd.NaT:
        raise ValueError("observation_end is NaT")
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.normalize()


def check_id_types(frame: pd.DataFrame, column: str, columns: Sequence[str]) -> None:
    """Refuse an id column mixing Python types (e.g. 17 and "17", which would be two
    customers): shows the rows of the less common types. Only object columns can mix."""
    ids = frame[column]
    if ids.dtype != object:
        return
    present = ids.notna().to_numpy()
    kinds = ids.map(lambda v: "int" if isinstance(v, int | np.integer) and not isinstance(
        v, bool | np.bool_) else type(v).__name__)
    counts = kinds[present].value_counts()
    if len(counts) > 1:
        main = counts.index[0]
        fail_rows(frame, present & (kinds != main).to_numpy(), column,
                  f"customer ids of mixed types ({', '.join(map(str, counts.index))}); make "
                  "them one type (e.g. all strings)", columns)


def _canonical_ids(ids: np.ndarray | pd.Index | pd.Series) -> pd.Index:
    """Ids as an Index with one dtype whatever the engine (int64, float64, str, ...)."""
    values = np.asarray(ids)
    if values.dtype == object:
        return pd.Index(values.tolist())
    if values.dtype.kind in "iu":
        return pd.Index(values.astype(np.int64))
    if values.dtype.kind == "f":
        return pd.Index(values.astype(np.float64))
    if values.dtype.kind in "US":
        return pd.Index(values.astype(str).tolist())
    return pd.Index(values)


def finalise_contract(
    ids: np.ndarray | pd.Index | pd.Series,
    *,
    periods: np.ndarray,
    churned: np.ndarray,
    cohort: np.ndarray | Sequence[str],
    tenures: np.ndarray,
    customer_id_col: str,
    period: str,
    observation_end: pd.Timestamp,
) -> pd.DataFrame:
    """Assemble an engine's per-customer arrays into the result frame (dtypes, order, attrs)."""
    index = _canonical_ids(ids).rename(customer_id_col)
    out = pd.DataFrame(
        {
            "periods": np.asarray(periods, dtype=np.int64),
            "churned": np.asarray(churned, dtype=bool),
            "cohort": pd.array(np.asarray(cohort, dtype=object), dtype="str"),
            "tenures": np.asarray(tenures, dtype=np.int64),
        },
        index=index,
    )
    if not out.index.is_monotonic_increasing:
        out = out.sort_index(kind="stable")
    out.attrs["period"] = period
    out.attrs["time_unit"] = period
    out.attrs["observation_end"] = observation_end.date().isoformat()
    out.attrs["data_kind"] = "contractual"
    return out


# --------------------------------------------------------------------------------------
# dates in pandas (the pandas engine; the DuckDB engine for in-memory frames)
# --------------------------------------------------------------------------------------

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
#: day numbers (days since 1970-01-01) of MIN_DAY and MAX_DAY
MIN_DAY_NUMBER = MIN_DAY.toordinal() - _EPOCH_ORDINAL
MAX_DAY_NUMBER = MAX_DAY.toordinal() - _EPOCH_ORDINAL


def check_date_format(date_format: str | None) -> None:
    """``date_format`` is one strftime format without a UTC offset (%z / %Z): the calendar
    day must be the one written, which an offset-aware parser would move."""
    if date_format is None:
        return
    if not isinstance(date_format, str) or not date_format.strip():
        raise ValueError("date_format must be a strftime format string such as '%d/%m/%Y'")
    if "%z" in date_format or "%Z" in date_format:
        raise ValueError("date_format must not contain %z or %Z: the calendar day is the one "
                         "written; drop the offset from the format (ISO 8601 strings with "
                         "offsets are read without date_format)")


class ParsedDays:
    """A date column as day numbers (days since 1970-01-01, int64; 0 where not a day) with
    the masks of missing (NaN, None, NaT, blank) and unparseable values."""

    __slots__ = ("bad", "days", "missing")

    def __init__(self, days: np.ndarray, missing: np.ndarray, bad: np.ndarray) -> None:
        self.days = days
        self.missing = missing
        self.bad = bad


def _civil_days(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(day numbers, valid) of proleptic Gregorian dates y-m-d (vectorised, any year)."""
    y = y.astype(np.int64)
    m = m.astype(np.int64)
    d = d.astype(np.int64)
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    month_len = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    valid_month = (m >= 1) & (m <= 12)
    mm = np.clip(m, 1, 12)
    dim = month_len[mm - 1] + ((mm == 2) & leap)
    valid = valid_month & (d >= 1) & (d <= dim) & (y >= MIN_DAY.year) & (y <= MAX_DAY.year)
    # days from civil (H. Hinnant's algorithm): March-based years, 400-year eras
    yy = y - (mm <= 2)
    era = np.floor_divide(yy, 400)
    yoe = yy - era * 400
    doy = (153 * ((mm + 9) % 12) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return np.where(valid, era * 146097 + doe - 719468, 0), valid


def _string_days(text: pd.Series, date_format: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(day numbers, valid) of non-blank strings."""
    if date_format is None:
        ok = text.str.fullmatch(ISO_DATE_REGEX).to_numpy(dtype=bool)
        head = text.str.extract(f"^{ISO_DATE_REGEX}", expand=False).where(ok, "0000-00-00")
        parts = [pd.to_numeric(head.str.slice(a, b), errors="coerce").fillna(0)
                 .to_numpy(dtype=np.int64) for a, b in ((0, 4), (5, 7), (8, 10))]
        days, valid = _civil_days(*parts)
        return days, ok & valid
    stripped = text.str.replace(EDGE_SPACE_REGEX, "", regex=True)
    parsed = pd.to_datetime(stripped, format=date_format, errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:  # pragma: no cover - %z is refused
        parsed = parsed.dt.tz_localize(None)
    ok = parsed.notna().to_numpy()
    days = np.where(ok, parsed.to_numpy().astype("datetime64[D]").astype(np.int64), 0)
    return days, ok & (days >= MIN_DAY_NUMBER) & (days <= MAX_DAY_NUMBER)


def _object_day(value: object) -> int | None:
    """Day number of a date-like Python object (its calendar day in its own time zone)."""
    if isinstance(value, dt.datetime):  # includes pd.Timestamp; aware: its local wall date
        return value.date().toordinal() - _EPOCH_ORDINAL
    if isinstance(value, dt.date):
        return value.toordinal() - _EPOCH_ORDINAL
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[D]").astype(np.int64))
    return None


def parse_days(raw: pd.Series, column: str, date_format: str | None = None) -> ParsedDays:
    """Parse a date column to day numbers by the module's rules (one format, nothing guessed).

    Datetime columns (numpy, tz-aware or Arrow) keep their calendar day (a tz-aware time in
    its own zone); string columns are ISO 8601 (or ``date_format``); object columns may mix
    strings with date / datetime objects. A column of numbers or booleans raises
    :func:`not_dates_error`.
    """
    n = len(raw)
    if isinstance(raw.dtype, pd.ArrowDtype):
        converted = plain_date_dtype(raw)
        if isinstance(converted.dtype, pd.ArrowDtype):  # an Arrow type that is not a date
            raise not_dates_error(column, raw.dtype)
        raw = converted
    raw = plain_date_dtype(raw)
    dtype = raw.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        values = raw.dt.tz_localize(None) if getattr(raw.dt, "tz", None) is not None else raw
        missing = values.isna().to_numpy()
        days = values.to_numpy().astype("datetime64[D]").astype(np.int64)
        days = np.where(missing, 0, days)
        return ParsedDays(days, missing, np.zeros(n, dtype=bool))
    if not pd.api.types.is_object_dtype(dtype) and not pd.api.types.is_string_dtype(dtype):
        if raw.isna().all():  # e.g. an all-empty float column: every end missing
            return ParsedDays(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool),
                              np.zeros(n, dtype=bool))
        raise not_dates_error(column, dtype)
    values = raw if pd.api.types.is_object_dtype(dtype) else raw.astype(object)
    is_str = values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    missing = values.isna().to_numpy().copy()
    days = np.zeros(n, dtype=np.int64)
    bad = np.zeros(n, dtype=bool)
    if is_str.any():
        text = values[is_str].astype(str)
        blank = text.str.fullmatch(BLANK_REGEX).to_numpy(dtype=bool)
        sel = np.flatnonzero(is_str)
        missing[sel[blank]] = True
        keep = sel[~blank]
        d, ok = _string_days(text[~blank], date_format)
        days[keep] = d
        bad[keep] = ~ok
    other = ~is_str & ~missing
    if other.any():
        sel = np.flatnonzero(other)
        converted = [_object_day(v) for v in values.to_numpy()[sel]]
        ok = np.array([v is not None for v in converted], dtype=bool)
        d = np.array([v if v is not None else 0 for v in converted], dtype=np.int64)
        ok &= (d >= MIN_DAY_NUMBER) & (d <= MAX_DAY_NUMBER)
        days[sel] = np.where(ok, d, 0)
        bad[sel] = ~ok
    return ParsedDays(days, missing, bad)


def cohort_labels(start_days: np.ndarray, period: str) -> np.ndarray:
    """The cohort label of each first start (day numbers), by :data:`COHORT_LABELS`."""
    days = np.asarray(start_days, dtype=np.int64)
    dates = days.astype("datetime64[D]")
    if period == "W":
        # the ISO week of a day is the one of its Thursday (1970-01-01 was a Thursday)
        weekday = (days + 3) % 7  # Monday = 0
        thursday = (days - weekday + 3).astype("datetime64[D]")
        year = thursday.astype("datetime64[Y]")
        week = (thursday - year.astype("datetime64[D]")).astype(np.int64) // 7 + 1
        y = year.astype(np.int64) + 1970
        return (_zfill(y, 4) + "-W" + _zfill(week, 2)).to_numpy(dtype=object)
    year = dates.astype("datetime64[Y]")
    y = _zfill(year.astype(np.int64) + 1970, 4)
    if period == "Y":
        return y.to_numpy(dtype=object)
    month = dates.astype("datetime64[M]")
    m = _zfill(month.astype(np.int64) % 12 + 1, 2)
    if period == "M":
        return (y + "-" + m).to_numpy(dtype=object)
    d = _zfill((dates - month.astype("datetime64[D]")).astype(np.int64) + 1, 2)
    return (y + "-" + m + "-" + d).to_numpy(dtype=object)


def _zfill(values: np.ndarray, width: int) -> pd.Series:
    return pd.Series(values, dtype=np.int64).astype(str).str.zfill(width)
