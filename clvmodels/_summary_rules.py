"""The rules every RFM summary engine shares, in one low module that each engine imports.

An engine (the pandas implementation in :mod:`clvmodels.rfm`, :mod:`clvmodels.engines.duckdb`,
...) reads raw transactions, validates them and returns the *day-level* summary
(:data:`DAY_COLUMNS` [+ :data:`HOLDOUT_DAY_COLUMNS`], indexed and sorted by customer id);
:func:`finalise_day_summary` turns that into the RFM contract in a time unit, so the
conversion is written once. What must be identical across engines lives here:

* time units with fixed day counts (:data:`TIME_UNITS`, :func:`time_unit_days`);
* the day-level columns an engine returns;
* the range of calendar days a date may fall on (:data:`FIRST_DAY` .. :data:`LAST_DAY`) and
  the normalisation of date arguments to a calendar day (:func:`as_day`);
* the wording of each validation problem, so every engine reports bad rows alike, and the
  checks on the observation period (:func:`check_observation_end`, :func:`check_holdout`);
* dates in text: ONE layout per column, inferred from the whole column or given by the
  user (``date_format`` / ``dayfirst``), never guessed row by row -- the rule lives in
  :mod:`clvmodels._date_rules` (re-exported here); :func:`parse_date_column` reads a
  transaction date column by it within the years :data:`FIRST_DAY` .. :data:`LAST_DAY`;
* customer ids: one type per column (:func:`id_type_problem`), blank ids are missing, ids
  that differ only by spaces at their ends are refused unless ``strip_ids=True``;
* plausible dates (:func:`plausible_window`, :func:`period_end_problem`): transactions far
  outside the others (a typo such as 2099) or before 1900, and an observation end long
  after the last transaction, are refused unless ``implausible_dates="warn"``.

Each rule is decided here from numbers the engines compute the same way (counts, distinct
days), so the pandas and DuckDB engines give the same answer and the same message.

This module imports no engine and nothing of :mod:`clvmodels.rfm`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clvmodels._date_rules import (
    DATE_LAYOUTS,
    MONTH_NUMBERS,
    DateDecision,
    DateLayout,
    ambiguous_dates_problem,
    candidate_layouts,
    check_date_options,
    date_format_layout,
    decide_date_layout,
    layout_days,
    read_date_column,
    unparseable_dates_problem,
)
from clvmodels._validation import ValidationError

__all__ = [
    "DATE_LAYOUTS",
    "DAY_COLUMNS",
    "EARLIEST_PLAUSIBLE_DAY",
    "FIRST_DAY",
    "HOLDOUT_DAY_COLUMNS",
    "ID_SPACE",
    "LAST_DAY",
    "MONTH_NUMBERS",
    "TIME_UNITS",
    "DateDecision",
    "DateLayout",
    "ImplausibleDates",
    "NegativeAmounts",
    "ParsedDates",
    "Problem",
    "all_negative_error",
    "as_day",
    "candidate_layouts",
    "check_date_options",
    "check_holdout",
    "check_negative_amounts_option",
    "check_observation_end",
    "check_summary_options",
    "date_format_layout",
    "decide_date_layout",
    "empty_error",
    "finalise_day_summary",
    "id_type_problem",
    "layout_days",
    "numeric_object_ids",
    "parse_date_column",
    "period_end_problem",
    "plausible_window",
    "report_problem",
    "strip_text_ids",
    "text_id_masks",
    "time_unit_days",
]


#: Length of each supported time unit in days. "M" is an average Gregorian month
#: (365.25 / 12 days) and "Y" an average year, so a unit is always the same length.
TIME_UNITS: dict[str, float] = {"D": 1.0, "W": 7.0, "M": 365.25 / 12.0, "Y": 365.25}

NegativeAmounts = Literal["raise", "drop"]
#: what to do with implausible dates (see :func:`plausible_window`): refuse, or warn and go on
ImplausibleDates = Literal["raise", "warn"]

#: Day-level summary columns every engine returns (index: customer id, sorted).
DAY_COLUMNS = ["n_days", "first_day", "last_day", "total", "first_total"]
#: ... and, with a calibration end, the holdout columns after them.
HOLDOUT_DAY_COLUMNS = ["n_days_holdout", "total_holdout"]

#: First and last calendar day a transaction may fall on. The years 1677 and 2262, at the
#: edges of pandas' nanosecond timestamps, are excluded whole (numpy's ns -> day conversion
#: wraps around at the very edge); dates outside are reported as unparseable.
FIRST_DAY = pd.Timestamp("1678-01-01")
LAST_DAY = pd.Timestamp("2261-12-31")


class Problem:
    """The wording of each problem with raw transactions, shared by every engine (the
    message is ``column '<name>': <problem>; <n> offending row(s): ...``)."""

    MISSING_IDS = "missing customer ids"
    MISSING_DATES = "missing dates"
    UNPARSEABLE_DATES = (
        f"dates that cannot be parsed (or lie outside the years {FIRST_DAY.year}-{LAST_DAY.year})"
    )
    AMOUNTS_NOT_NUMBERS = "amounts that are not numbers"
    MISSING_AMOUNTS = "missing amounts (NaN)"
    AMOUNTS_NOT_FINITE = "amounts that are not finite"
    NEGATIVE_AMOUNTS = "negative amounts (returns?); pass negative_amounts='drop' to ignore them"

    @staticmethod
    def mixed_id_types(types: Sequence[str], main: str) -> str:
        return (
            f"customer ids of more than one type ({', '.join(types)}): the number 1 and the "
            "text '1' would count as two customers that print alike; make the column one "
            f"type, e.g. with .astype(str) (shown: the rows whose id is not {main})"
        )

    @staticmethod
    def spaced_ids(examples: Sequence[str]) -> str:
        shown = " and ".join(repr(e) for e in examples)
        return (
            f"customer ids that differ only by spaces at their ends (e.g. {shown}), which "
            "would count as different customers that print alike; pass strip_ids=True to "
            "remove the spaces"
        )

    @staticmethod
    def unparseable_dates(decision: DateDecision | None, *, user_given: bool = False) -> str:
        """Dates that do not fit the column's layout (``decision``; None for a typed
        column) or lie outside the years that can be summarised."""
        return unparseable_dates_problem(decision, f"{FIRST_DAY.year}-{LAST_DAY.year}",
                                         user_given=user_given)

    @staticmethod
    def ambiguous_dates(first: DateLayout, other: DateLayout) -> str:
        return ambiguous_dates_problem(first, other)


@dataclass
class ParsedDates:
    """A transaction date column read by the rules: day numbers (0 where missing or bad),
    the masks of missing and bad values with the wording for the latter, and, for an
    ambiguous text column, the rows that read as other days (with the wording)."""

    days: np.ndarray
    missing: np.ndarray
    bad: np.ndarray
    bad_problem: str
    ambiguous: np.ndarray | None = None
    ambiguous_problem: str = ""

    def as_datetime(self) -> pd.Series:
        """Days as datetime64[ns] (NaT where missing or bad), for the pandas engine."""
        ok = ~(self.missing | self.bad)
        return pd.Series(np.where(ok, self.days, 0).astype("datetime64[D]")
                         .astype("datetime64[ns]")).where(ok)


def parse_date_column(raw: pd.Series, *, date_format: str | None = None,
                      dayfirst: bool | None = None) -> ParsedDates:
    """Read a transaction date column by the rules of :mod:`clvmodels._date_rules`, days
    outside :data:`FIRST_DAY` .. :data:`LAST_DAY` being unparseable (the pandas engine's
    reader; the DuckDB engine computes the same in SQL)."""
    column = read_date_column(raw, date_format=date_format, dayfirst=dayfirst,
                              first_day=FIRST_DAY, last_day=LAST_DAY)
    decision = column.decision
    ambiguous_problem = ""
    if decision is not None and decision.ambiguous_with is not None:
        ambiguous_problem = Problem.ambiguous_dates(decision.layout, decision.ambiguous_with)
    return ParsedDates(column.days, column.missing, column.bad,
                       Problem.unparseable_dates(decision, user_given=date_format is not None),
                       column.ambiguous, ambiguous_problem)


def empty_error() -> ValidationError:
    """The error for transactions without a single row."""
    return ValidationError("transactions are empty: there is nothing to summarise")


def all_negative_error(monetary_value_col: str | None) -> ValidationError:
    """The error when ``negative_amounts="drop"`` leaves no transaction at all."""
    return ValidationError(
        f"column {monetary_value_col!r}: every transaction has a negative amount"
    )


def check_negative_amounts_option(negative_amounts: str) -> None:
    """Raise unless ``negative_amounts`` is "raise" or "drop"."""
    if negative_amounts not in ("raise", "drop"):
        raise ValueError("negative_amounts must be 'raise' or 'drop'")


def time_unit_days(time_unit: str) -> float:
    """Number of days in ``time_unit`` ("D", "W", "M" = 30.4375 days, "Y" = 365.25 days)."""
    try:
        return TIME_UNITS[time_unit]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown time_unit {time_unit!r}; use one of {sorted(TIME_UNITS)}"
        ) from None


def as_day(value: object, name: str) -> pd.Timestamp | None:
    """A date argument (``observation_end``, ``calibration_end``, ...) as a tz-naive calendar
    day; ``None`` stays ``None``. Raises ``ValueError`` naming the argument otherwise."""
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}={value!r} is not a date") from exc
    if ts is pd.NaT:
        raise ValueError(f"{name} is NaT")
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.normalize()


def check_observation_end(first_date: pd.Timestamp, observation_end: pd.Timestamp | None,
                          name: str = "observation_end") -> None:
    """Raise if the period ends before the first transaction (no customer would remain)."""
    if observation_end is not None and observation_end < first_date:
        raise ValidationError(
            f"{name}={observation_end.date()} is before every transaction "
            f"(the first is on {first_date.date()}): no customer would remain"
        )


def finalise_day_summary(
    days: pd.DataFrame,
    *,
    observation_end: pd.Timestamp,
    time_unit: str,
    customer_id_col: str,
    with_monetary: bool,
    calibration_end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Day-level summary (any engine's) → the RFM frame in ``time_unit``.

    ``frequency`` = transaction days - 1, ``recency`` = last - first day, ``T`` = end of the
    (calibration) period - first day, ``monetary_value`` = mean of the repeat days' totals
    (0 without repeats); with ``calibration_end`` the holdout columns
    ``frequency_holdout[, monetary_value_holdout], duration_holdout``. ``attrs`` record the
    time unit and the period ends.
    """
    unit = time_unit_days(time_unit)
    cut = calibration_end if calibration_end is not None else observation_end
    n = days["n_days"].to_numpy(dtype=np.int64)
    first = days["first_day"].to_numpy(dtype="datetime64[D]")
    last = days["last_day"].to_numpy(dtype="datetime64[D]")
    end = np.datetime64(cut.date(), "D")
    out = pd.DataFrame(index=pd.Index(days.index, name=customer_id_col))
    out["frequency"] = n - 1
    out["recency"] = (last - first).astype(np.int64) / unit
    out["T"] = (end - first).astype(np.int64) / unit
    if with_monetary:
        repeat_total = days["total"].to_numpy(dtype=float) - days["first_total"].to_numpy(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            mv = np.where(n > 1, repeat_total / np.maximum(n - 1, 1), 0.0)
        out["monetary_value"] = mv
    if calibration_end is not None:
        nh = days["n_days_holdout"].to_numpy(dtype=np.int64)
        out["frequency_holdout"] = nh
        if with_monetary:
            th = days["total_holdout"].to_numpy(dtype=float)
            out["monetary_value_holdout"] = np.where(nh > 0, th / np.maximum(nh, 1), 0.0)
        out["duration_holdout"] = float((observation_end - calibration_end).days) / unit
    out.attrs["time_unit"] = time_unit
    out.attrs["observation_end"] = str(cut.date())
    if calibration_end is not None:
        out.attrs["calibration_end"] = str(calibration_end.date())
        out.attrs["holdout_end"] = str(observation_end.date())
    return out


# --------------------------------------------------------------------------------------
# customer ids
# --------------------------------------------------------------------------------------

#: characters that make an id blank (a missing id) and that ``strip_ids=True`` removes
#: from both ends of text ids: space, tab, line breaks and the no-break space (U+00A0)
ID_SPACE = " \t\n\r\f\v\u00a0"
#: a text id that is blank (full match) ...
ID_BLANK_REGEX = f"^[{ID_SPACE}]*$"
#: ... or has spaces at either end (search)
ID_EDGE_REGEX = f"^[{ID_SPACE}]|[{ID_SPACE}]$"
#: what ``strip_ids=True`` removes (replace every match by "")
ID_STRIP_REGEX = f"^[{ID_SPACE}]+|[{ID_SPACE}]+$"


def _id_kind(value: object) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, (bool, np.bool_)):
        return "booleans"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "numbers"
    return type(value).__name__


def id_type_problem(ids: pd.Series) -> tuple[np.ndarray, str] | None:
    """``(mask, problem)`` when an id column mixes types (text and numbers, ...): the mask
    marks the rows of every type but the most common one; None when it has one type."""
    values = ids
    if isinstance(ids.dtype, pd.CategoricalDtype):
        categories = ids.cat.categories
        if pd.api.types.infer_dtype(categories, skipna=True) not in ("mixed", "mixed-integer"):
            return None
        values = ids.astype(object)
    elif not pd.api.types.is_object_dtype(ids.dtype):
        return None
    elif pd.api.types.infer_dtype(ids, skipna=True) not in ("mixed", "mixed-integer"):
        return None
    present = ~np.asarray(values.isna(), dtype=bool)
    kinds = values.map(_id_kind).to_numpy(dtype=object)
    names, counts = np.unique(kinds[present], return_counts=True)
    if len(names) < 2:
        return None
    order = np.argsort(-counts, kind="stable")
    main = names[order[0]]
    mask = present & (kinds != main)
    return mask, Problem.mixed_id_types([f"{names[i]}: {counts[i]:,} rows" for i in order],
                                        str(main))


def numeric_object_ids(ids: pd.Series) -> pd.Series:
    """Numbers held in an object column as one numeric dtype, as DuckDB reads them: int64
    for integers only, float64 when floats are among them (so 1 and 1.0 are one id)."""
    if not pd.api.types.is_object_dtype(ids.dtype):
        return ids
    kind = pd.api.types.infer_dtype(ids, skipna=True)
    if kind == "integer" and not ids.isna().any():
        try:
            return ids.astype(np.int64)
        except (OverflowError, TypeError, ValueError):
            return ids
    if kind in ("floating", "mixed-integer-float") or kind == "integer":
        return ids.astype(np.float64)
    return ids


def text_id_masks(ids: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """For a text id column: (blank, has spaces at an end) masks; None for other ids."""
    if not (pd.api.types.is_object_dtype(ids.dtype) or pd.api.types.is_string_dtype(ids.dtype)
            or isinstance(ids.dtype, pd.CategoricalDtype)):
        return None
    values = ids.astype(object)
    is_text = values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    if not is_text.any():
        return None
    codes, uniques = pd.factorize(values.where(is_text, None), use_na_sentinel=True)
    arr = pa.array(np.asarray(uniques, dtype=object), type=pa.string())

    def per_row(regex: str) -> np.ndarray:
        hit = np.asarray(pc.fill_null(pc.match_substring_regex(arr, regex), False)
                         .to_numpy(zero_copy_only=False), dtype=bool)
        return np.where(codes >= 0, hit[np.maximum(codes, 0)], False) if len(arr) else \
            np.zeros(len(codes), dtype=bool)

    return per_row(ID_BLANK_REGEX), per_row(ID_EDGE_REGEX)


def strip_text_ids(ids: pd.Series) -> pd.Series:
    """Text ids with :data:`ID_SPACE` removed from both ends (other values unchanged)."""
    values = ids.astype(object)
    is_text = values.map(lambda v: isinstance(v, str))
    if not is_text.any():
        return ids
    text = pa.array(values.where(is_text, None).to_numpy(dtype=object), type=pa.string())
    stripped = pc.replace_substring_regex(text, ID_STRIP_REGEX, "")
    out = values.copy()
    out[is_text.to_numpy()] = np.asarray(stripped.to_numpy(zero_copy_only=False),
                                         dtype=object)[is_text.to_numpy()]
    return out


# --------------------------------------------------------------------------------------
# plausible dates
# --------------------------------------------------------------------------------------

#: no transaction before this day is plausible (a placeholder such as 1900-01-01 or a typo)
EARLIEST_PLAUSIBLE_DAY = pd.Timestamp("1900-01-01")
#: transactions more than this many interquartile ranges of the days with transactions
#: before the first quartile or after the third (Tukey's "far out" fence) are implausible
OUTLIER_FENCE = 3.0
#: ... where the interquartile range counts as at least this many days
MIN_SPREAD_DAYS = 30
#: an observation end may follow the last transaction by this many days, or by the longest
#: gap between two days with transactions in the data if that is longer
MIN_END_GAP_DAYS = 90

_EPOCH = pd.Timestamp("1970-01-01")


def _date(day_number: float) -> str:
    return str((_EPOCH + pd.Timedelta(days=int(day_number))).date())


def _span(days: float) -> str:
    days = round(days)
    if days == 1:
        return "1 day"
    if days >= 730:
        return f"{days:,} days ({days / 365.25:.1f} years)"
    if days >= 60:
        return f"{days:,} days ({days / 30.4375:.1f} months)"
    return f"{days:,} days"


def check_summary_options(*, implausible_dates: str, strip_ids: object) -> None:
    """Raise ``ValueError`` for an unknown ``implausible_dates`` or a non-bool ``strip_ids``."""
    if implausible_dates not in ("raise", "warn"):
        raise ValueError(f"implausible_dates must be 'raise' or 'warn', got {implausible_dates!r}")
    if not isinstance(strip_ids, (bool, np.bool_)):
        raise ValueError(f"strip_ids must be True or False, got {strip_ids!r}")


@dataclass(frozen=True)
class PlausibleWindow:
    """The days a transaction may plausibly fall on, from the days that have transactions
    (day numbers since 1970-01-01, inclusive)."""

    low: int
    high: int
    q1: float
    q3: float

    def problem(self, first_outlier: int, last_outlier: int, n_early: int, n_late: int
                ) -> str:
        """The wording for transactions outside the window (a ``<problem>`` of
        :class:`Problem`'s kind)."""
        where = []
        if n_late:
            where.append(f"{n_late:,} after {_date(self.high)}, up to "
                         f"{_span(last_outlier - self.high)} after it")
        if n_early:
            where.append(f"{n_early:,} before {_date(self.low)}, up to "
                         f"{_span(self.low - first_outlier)} before it")
        return (
            f"implausible dates, far from all the others: {' and '.join(where)} (half of the "
            f"days with transactions fall between {_date(self.q1)} and {_date(self.q3)}; "
            f"plausible: {_date(self.low)} to {_date(self.high)}, and never before "
            f"{EARLIEST_PLAUSIBLE_DAY.year}). A typo would stretch the observation period, and "
            "T, by as much: fix or remove these rows, or pass implausible_dates='warn' to "
            "keep them"
        )


def plausible_window(active_days: np.ndarray) -> PlausibleWindow:
    """The plausible window of transaction days, from the distinct days with transactions
    (day numbers): beyond :data:`OUTLIER_FENCE` interquartile ranges (at least
    :data:`MIN_SPREAD_DAYS`) of the quartiles, or before :data:`EARLIEST_PLAUSIBLE_DAY`, a
    day is implausible. Distinct days, not transactions, so a busy period does not make a
    quiet one look implausible, and a typo on one day cannot move the quartiles."""
    days = np.unique(np.asarray(active_days, dtype=np.int64))
    q1, q3 = (float(v) for v in np.percentile(days, [25, 75]))
    spread = max(q3 - q1, float(MIN_SPREAD_DAYS))
    floor = (EARLIEST_PLAUSIBLE_DAY - _EPOCH).days
    low = max(math.floor(q1 - OUTLIER_FENCE * spread), floor)
    high = math.ceil(q3 + OUTLIER_FENCE * spread)
    return PlausibleWindow(low, high, q1, q3)


def period_end_problem(active_days: np.ndarray, end: pd.Timestamp, name: str) -> str | None:
    """The problem with a period end the user gave that lies long after the last transaction
    (None when plausible): longer than :data:`MIN_END_GAP_DAYS` and than any gap between
    days with transactions, so every customer's T would include a stretch the data do not
    cover."""
    days = np.unique(np.asarray(active_days, dtype=np.int64))
    end_day = (end - _EPOCH).days
    days = days[days <= end_day]
    if not len(days):
        return None
    silence = end_day - int(days[-1])
    longest = int(np.diff(days).max()) if len(days) > 1 else 0
    if silence <= max(MIN_END_GAP_DAYS, longest):
        return None
    return (
        f"{name}={end.date()} is {_span(silence)} after the last transaction "
        f"({_date(days[-1])}), longer than {MIN_END_GAP_DAYS} days and than any gap between "
        f"transactions in the data (the longest is {_span(longest)}): every customer's T "
        f"would include {_span(silence)} the data do not cover, and the forecasts would "
        f"shrink. Pass the day the data really end, or implausible_dates='warn' to keep it"
    )


def report_problem(message: str | None, implausible_dates: str, notes: list[str]) -> None:
    """An implausible-dates problem: raise it as a :class:`ValidationError`, or, with
    ``implausible_dates="warn"``, append it to ``notes`` (the summary warns with each, as a
    :class:`~clvmodels._validation.DataWarning`, once the engine is done)."""
    if message is None:
        return
    if implausible_dates == "warn":
        notes.append(message)
    else:
        raise ValidationError(message)


def check_holdout(calibration_end: pd.Timestamp | None, observation_end: pd.Timestamp,
                  *, last_day: pd.Timestamp | None = None) -> None:
    """Raise unless the holdout period (calibration_end, observation_end] has days in it.
    ``last_day``: the last transaction, when ``observation_end`` was taken from it."""
    if calibration_end is None or observation_end > calibration_end:
        return
    if last_day is not None:
        raise ValidationError(
            f"calibration_end={calibration_end.date()} is on or after the last transaction "
            f"({last_day.date()}): the holdout period would be empty; pass an earlier "
            "calibration_end, or an observation_end after it")
    raise ValueError(
        f"observation_end ({observation_end.date()}) is not after calibration_end "
        f"({calibration_end.date()}): the holdout period would be empty")
