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
* dates in text: ONE layout per column (:data:`DATE_LAYOUTS`, :func:`decide_date_layout`),
  inferred from the whole column or given by the user (``date_format`` / ``dayfirst``),
  never guessed row by row; :func:`parse_date_column` is the reference implementation
  (pandas / pyarrow, reusable by any summary), engines in SQL follow the same expressions;
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
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clvmodels._validation import DataWarning, ValidationError

__all__ = [
    "DATE_LAYOUTS",
    "DAY_COLUMNS",
    "EARLIEST_PLAUSIBLE_DAY",
    "FIRST_DAY",
    "HOLDOUT_DAY_COLUMNS",
    "ID_SPACE",
    "LAST_DAY",
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
    "parse_date_column",
    "period_end_problem",
    "plausible_window",
    "report_implausible",
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
    def unparseable_dates(layout: DateLayout | None, *, user_given: bool = False,
                          matched: bool = True) -> str:
        """Dates that do not fit the column's layout (or lie outside the years that can be
        summarised)."""
        years = f"{FIRST_DAY.year}-{LAST_DAY.year}"
        if layout is None:
            return Problem.UNPARSEABLE_DATES
        if not matched and not user_given:
            return (
                "dates that cannot be parsed: no known date format fits them (use ISO 8601, "
                "YYYY-MM-DD, or pass date_format=, e.g. '%d/%m/%Y')")
        if user_given:
            return (f"dates that cannot be parsed with {layout.name} (or lie outside the years "
                    f"{years})")
        return (
            f"dates that cannot be parsed as {layout.name}, the format most of the column has "
            f"(or lie outside the years {years}); a column must have one date format: fix "
            "these, or pass date_format= (e.g. '%d/%m/%Y') for another single format"
        )

    @staticmethod
    def ambiguous_dates(first: DateLayout, other: DateLayout) -> str:
        return (
            f"dates that read as different days as {first.name} and as {other.name}, and no "
            "date in the column tells which (no day above 12); pass dayfirst=True or "
            "dayfirst=False (or date_format=, e.g. '%d/%m/%Y')"
        )


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
# dates: one format per column
# --------------------------------------------------------------------------------------

#: spaces / tabs allowed around a date string
_EDGE = "[ \t]*"
#: an optional time of day (24- or 12-hour) and UTC offset after the date; the calendar day
#: is the one written (the offset is not applied), as for a tz-aware column
_TIME = (
    "(?:(?:T|[ \t]+)(?:[01]?[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.,][0-9]{1,9})?)?"
    "(?:[ \t]*(?i:[ap]\\.?m\\.?))?"
    "(?:[ \t]*(?:Z|(?i:utc|gmt)|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?))?)?"
)
_NUM2 = "[0-9]{1,2}"
_YEAR = "(?P<y>[0-9]{4})"
_MONTH_NAME = (
    "(?P<b>(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    "|sep(?:t|tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?))\\.?"
)
_REGEX_SPECIAL = set(".^$*+?()[]{}|\\")
#: month numbers by the first three letters of a month name (lower case)
MONTH_NUMBERS: dict[str, int] = {
    m: i + 1 for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])
}


@dataclass(frozen=True)
class DateLayout:
    """One way of writing dates: a regular expression that a whole string must match.

    The expression is written once for Python, pyarrow and DuckDB (all RE2-compatible) and
    names its groups: ``y`` (year), ``m`` (month number) or ``b`` (month name), ``d``
    (day). ``two_digit_year``: ``y`` has two digits (years 69-99 are 19xx, 00-68 are 20xx,
    as in C's and Python's ``strptime``). ``dayfirst`` is True for day-first layouts,
    False for month-first ones and None where the order is not in question.
    """

    name: str
    regex: str
    dayfirst: bool | None = None
    two_digit_year: bool = False

    @property
    def groups(self) -> tuple[str, ...]:
        """The group names in the order they appear (DuckDB extracts groups by position)."""
        index = re.compile(self.regex).groupindex
        return tuple(sorted(index, key=index.__getitem__))

    @property
    def full_regex(self) -> str:
        """The expression anchored at both ends (for engines that search, not match)."""
        return f"^(?:{self.regex})$"


def _numeric_layout(name: str, first: str, second: str, sep: str, *, year_first: bool,
                    dayfirst: bool | None) -> DateLayout:
    s = "\\" + sep if sep in _REGEX_SPECIAL else sep
    a, b = f"(?P<{first}>{_NUM2})", f"(?P<{second}>{_NUM2})"
    date = f"{_YEAR}{s}{a}{s}{b}" if year_first else f"{a}{s}{b}{s}{_YEAR}"
    return DateLayout(name, f"{_EDGE}{date}{_TIME}{_EDGE}", dayfirst)


#: The layouts tried when a column's format is inferred, in order of preference: ISO 8601
#: first. A column must fit ONE of them as a whole (every value, with or without a time).
DATE_LAYOUTS: tuple[DateLayout, ...] = (
    _numeric_layout("YYYY-MM-DD", "m", "d", "-", year_first=True, dayfirst=None),
    _numeric_layout("YYYY/MM/DD", "m", "d", "/", year_first=True, dayfirst=None),
    _numeric_layout("YYYY.MM.DD", "m", "d", ".", year_first=True, dayfirst=None),
    DateLayout("YYYYMMDD",
               f"{_EDGE}{_YEAR}(?P<m>[0-9]{{2}})(?P<d>[0-9]{{2}}){_TIME}{_EDGE}"),
    _numeric_layout("DD/MM/YYYY", "d", "m", "/", year_first=False, dayfirst=True),
    _numeric_layout("MM/DD/YYYY", "m", "d", "/", year_first=False, dayfirst=False),
    _numeric_layout("DD-MM-YYYY", "d", "m", "-", year_first=False, dayfirst=True),
    _numeric_layout("MM-DD-YYYY", "m", "d", "-", year_first=False, dayfirst=False),
    _numeric_layout("DD.MM.YYYY", "d", "m", ".", year_first=False, dayfirst=True),
    _numeric_layout("MM.DD.YYYY", "m", "d", ".", year_first=False, dayfirst=False),
    DateLayout("DD Mon YYYY", f"{_EDGE}(?P<d>{_NUM2})(?:[ \t]+|-){_MONTH_NAME}"
                              f"(?:[ \t]+|-|,[ \t]*){_YEAR}{_TIME}{_EDGE}"),
    DateLayout("Mon DD, YYYY", f"{_EDGE}{_MONTH_NAME}[ \t]+(?P<d>{_NUM2})(?:,?[ \t]+){_YEAR}"
                               f"{_TIME}{_EDGE}"),
)

#: strftime directives :func:`date_format_layout` understands, as regular expressions
_DIRECTIVES: dict[str, str] = {
    "Y": "(?P<y>[0-9]{4})",
    "y": "(?P<y>[0-9]{2})",
    "m": f"(?P<m>{_NUM2})",
    "d": f"(?P<d>{_NUM2})",
    "e": f"[ ]?(?P<d>{_NUM2})",
    "b": _MONTH_NAME,
    "B": _MONTH_NAME,
    "h": _MONTH_NAME,
    "H": "(?:[01]?[0-9]|2[0-3])",
    "I": "(?:0?[1-9]|1[0-2])",
    "M": "[0-5]?[0-9]",
    "S": "(?:[0-5]?[0-9]|60)",
    "f": "[0-9]{1,9}",
    "p": "(?i:[ap]\\.?m\\.?)",
    "a": "(?i:mon|tue|wed|thu|fri|sat|sun)[a-zA-Z]*",
    "A": "(?i:mon|tue|wed|thu|fri|sat|sun)[a-zA-Z]*",
    "z": "(?:Z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)",
    "Z": "(?i:utc|gmt|z|[a-z]{3,5})",
    "T": "(?:[01]?[0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]",
    "%": "%",
}


def date_format_layout(date_format: str) -> DateLayout:
    """The layout of a user's strftime ``date_format`` (e.g. ``"%d/%m/%Y %H:%M"``).

    The directives in :data:`_DIRECTIVES` are understood (%Y %y %m %d %e %b %B %H %I %M %S
    %f %p %a %A %z %Z %T %%); the format must name the year, the month and the day once
    each. An offset (%z) is allowed but not applied: the calendar day is the one written.
    Raises ``ValueError`` for anything else.
    """
    if not isinstance(date_format, str) or not date_format.strip():
        raise ValueError("date_format must be a strftime format string such as '%d/%m/%Y'")
    parts: list[str] = []
    seen: list[str] = []
    i = 0
    while i < len(date_format):
        c = date_format[i]
        if c == "%":
            code = date_format[i + 1] if i + 1 < len(date_format) else ""
            if code not in _DIRECTIVES:
                raise ValueError(
                    f"date_format={date_format!r}: unsupported directive %{code}; use "
                    + " ".join(f"%{k}" for k in _DIRECTIVES))
            if code in "YymdebBh":
                seen.append({"Y": "y", "e": "d", "B": "b", "h": "b"}.get(code, code))
            parts.append(_DIRECTIVES[code])
            i += 2
            continue
        parts.append(("\\" + c) if c in _REGEX_SPECIAL else c)
        i += 1
    fields = {"y": seen.count("y"), "month": seen.count("m") + seen.count("b"),
              "d": seen.count("d")}
    if any(n != 1 for n in fields.values()):
        raise ValueError(
            f"date_format={date_format!r} must name the year (%Y or %y), the month (%m or %b) "
            "and the day (%d) once each")
    return DateLayout(f"date_format={date_format!r}", f"{_EDGE}{''.join(parts)}{_EDGE}",
                      two_digit_year="%y" in date_format)


def check_date_options(date_format: str | None, dayfirst: bool | None) -> None:
    """Raise ``ValueError`` unless the options are valid and not both given."""
    if dayfirst is not None and not isinstance(dayfirst, (bool, np.bool_)):
        raise ValueError(f"dayfirst must be True, False or None, got {dayfirst!r}")
    if date_format is not None:
        date_format_layout(date_format)
        if dayfirst is not None:
            raise ValueError("pass date_format or dayfirst, not both (date_format already "
                             "says where the day is)")


def candidate_layouts(date_format: str | None = None,
                      dayfirst: bool | None = None) -> tuple[DateLayout, ...]:
    """The layouts a text column may have: the user's ``date_format``, or those of
    :data:`DATE_LAYOUTS` that agree with ``dayfirst`` (all of them when it is None)."""
    check_date_options(date_format, dayfirst)
    if date_format is not None:
        return (date_format_layout(date_format),)
    if dayfirst is None:
        return DATE_LAYOUTS
    return tuple(lay for lay in DATE_LAYOUTS if lay.dayfirst in (None, bool(dayfirst)))


class DateStats(Protocol):
    """What an engine counts over the non-missing text values of a date column."""

    n: int  #: non-missing (non-blank) text values

    def structural(self, layouts: Sequence[DateLayout]) -> list[int]:
        """Values whose text matches each layout's expression."""
        ...

    def valid(self, layouts: Sequence[DateLayout]) -> list[int]:
        """Values that are real calendar days under each layout."""
        ...

    def differ(self, a: DateLayout, b: DateLayout) -> int:
        """Values that are real days under both layouts but not the same day."""
        ...


@dataclass(frozen=True)
class DateDecision:
    """The layout a text column is read with; ``ambiguous_with``: another layout every
    value also fits, giving other days (the column cannot be read without the user's
    word)."""

    layout: DateLayout
    ambiguous_with: DateLayout | None = None
    #: False when not a single value fits ``layout`` (nor any other candidate)
    matched: bool = True


def decide_date_layout(stats: DateStats, candidates: Sequence[DateLayout]) -> DateDecision:
    """The one layout of a text date column, decided from the whole column.

    * the layouts every value fits (a real day under it): if one, it is the column's; if
      several (day-first and month-first when no day is above 12), the first, unless some
      value reads as another day under the other -- then the column is ambiguous;
    * if none fits every value: the layout most values match (ties: the earlier one), whose
      misfits the engine reports as unparseable.
    """
    if stats.n == 0:
        return DateDecision(candidates[0])
    structural = stats.structural(candidates)
    whole = [lay for lay, k in zip(candidates, structural, strict=True) if k == stats.n]
    valid = dict(zip(whole, stats.valid(whole), strict=True)) if whole else {}
    fits = [lay for lay in whole if valid[lay] == stats.n]
    if fits:
        for other in fits[1:]:
            if stats.differ(fits[0], other):
                return DateDecision(fits[0], ambiguous_with=other)
        return DateDecision(fits[0])
    order = {lay: i for i, lay in enumerate(candidates)}
    best = max(candidates, key=lambda lay: (structural[order[lay]], valid.get(lay, -1),
                                            -order[lay]))
    return DateDecision(best, matched=structural[order[best]] > 0)


def layout_days(text: pa.Array, layout: DateLayout) -> np.ndarray:
    """Day numbers (days since 1970-01-01) of strings read with ``layout``;
    :data:`NOT_A_DAY` where a string does not match or is not a real calendar day (matched
    by pyarrow's RE2, the regular-expression engine DuckDB uses too)."""
    parts = pc.extract_regex(text, layout.full_regex)
    n = len(text)

    def number(name: str) -> np.ndarray:
        field = pc.struct_field(parts, name)
        values = pc.cast(pc.if_else(pc.equal(field, ""), None, field), pa.float64())
        return values.to_numpy(zero_copy_only=False) if n else np.zeros(0)

    y = number("y")
    if layout.two_digit_year:
        y = np.where(y < 69, 2000 + y, 1900 + y)
    if "b" in layout.groups:
        names = pc.utf8_lower(pc.utf8_slice_codeunits(pc.struct_field(parts, "b"), 0, 3))
        index = pc.index_in(names, value_set=pa.array(list(MONTH_NUMBERS)))
        m = pc.cast(index, pa.float64()).to_numpy(zero_copy_only=False) + 1
    else:
        m = number("m")
    return civil_days(y, m, number("d"))


#: the day number :func:`civil_days` gives to values that are not real days
NOT_A_DAY = -(2**62)


def civil_days(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Day numbers of proleptic Gregorian dates ``y-m-d`` (NaN anywhere: not a day);
    :data:`NOT_A_DAY` where the month or day does not exist."""
    y, m, d = (np.asarray(v, dtype=float) for v in (y, m, d))
    ok = np.isfinite(y) & np.isfinite(m) & np.isfinite(d)
    ok &= (m >= 1) & (m <= 12) & (d >= 1) & (y >= 0) & (y <= 9999)
    months = np.where(ok, (y - 1970) * 12 + (m - 1), 0).astype(np.int64)
    start = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    end = (months + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    dd = np.where(ok, d, 1).astype(np.int64)
    ok &= dd <= end - start
    return np.where(ok, start + dd - 1, NOT_A_DAY)


def _day_range_numbers() -> tuple[int, int]:
    epoch = pd.Timestamp("1970-01-01")
    return (FIRST_DAY - epoch).days, (LAST_DAY - epoch).days


class _ArrowStats:
    """:class:`DateStats` over distinct strings and how many rows hold each."""

    def __init__(self, uniques: pa.Array, weights: np.ndarray) -> None:
        self.uniques = uniques
        self.weights = weights
        self.n = int(weights.sum())
        self._days: dict[DateLayout, np.ndarray] = {}

    def days(self, layout: DateLayout) -> np.ndarray:
        if layout not in self._days:
            self._days[layout] = layout_days(self.uniques, layout)
        return self._days[layout]

    def structural(self, layouts: Sequence[DateLayout]) -> list[int]:
        out = []
        for lay in layouts:
            hit = pc.match_substring_regex(self.uniques, lay.full_regex)
            mask = np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), bool)
            out.append(int(self.weights[mask].sum()))
        return out

    def valid(self, layouts: Sequence[DateLayout]) -> list[int]:
        return [int(self.weights[self.days(lay) != NOT_A_DAY].sum()) for lay in layouts]

    def differ(self, a: DateLayout, b: DateLayout) -> int:
        da, db = self.days(a), self.days(b)
        return int(self.weights[(da != NOT_A_DAY) & (db != NOT_A_DAY) & (da != db)].sum())


@dataclass
class ParsedDates:
    """A date column parsed by the rules: day numbers (days since 1970-01-01; 0 where
    missing or bad), the masks of missing and unparseable values, the problem wording for
    the latter, and, for an ambiguous text column, the mask of values that read as other
    days under the rival layout (with the wording)."""

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


def _blank_strings(text: pa.Array) -> np.ndarray:
    blank = pc.match_substring_regex(text, f"^{_EDGE}$")
    return np.asarray(pc.fill_null(blank, False).to_numpy(zero_copy_only=False), dtype=bool)


def _text_days(values: pd.Series, date_format: str | None, dayfirst: bool | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, np.ndarray | None, str]:
    """(days, missing, bad, bad problem, ambiguous mask, ambiguous problem) of text values
    (None for missing), read with ONE layout decided from the whole column."""
    candidates = candidate_layouts(date_format, dayfirst)
    n = len(values)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    arr = pa.array(np.asarray(uniques, dtype=object), type=pa.string())
    blank_u = _blank_strings(arr)
    missing = (codes < 0) | blank_u[np.maximum(codes, 0)] if n else np.zeros(0, bool)
    weights = np.bincount(codes[codes >= 0], minlength=len(arr)).astype(np.int64)
    weights[blank_u] = 0
    stats = _ArrowStats(arr, weights)
    decision = decide_date_layout(stats, candidates)
    days_u = stats.days(decision.layout)
    days = np.where(missing, NOT_A_DAY, days_u[np.maximum(codes, 0)] if n else days_u[:0])
    bad = ~missing & (days == NOT_A_DAY)
    problem = Problem.unparseable_dates(decision.layout, user_given=date_format is not None,
                                        matched=decision.matched)
    ambiguous = None
    ambiguous_problem = ""
    if decision.ambiguous_with is not None:
        other = stats.days(decision.ambiguous_with)[np.maximum(codes, 0)]
        ambiguous = ~missing & (days != NOT_A_DAY) & (other != NOT_A_DAY) & (days != other)
        ambiguous_problem = Problem.ambiguous_dates(decision.layout, decision.ambiguous_with)
    return days, missing, bad, problem, ambiguous, ambiguous_problem


def _yyyymmdd(values: np.ndarray) -> np.ndarray:
    """Day numbers of YYYYMMDD numbers (8 digits, whole); NOT_A_DAY otherwise."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v) & (v == np.floor(v)) & (v >= 10_000_000) & (v <= 99_999_999)
    w = np.where(ok, v, 19700101).astype(np.int64)
    days = civil_days(w // 10_000, w // 100 % 100, w % 100)
    return np.where(ok, days, NOT_A_DAY)


def parse_date_column(raw: pd.Series, *, date_format: str | None = None,
                      dayfirst: bool | None = None) -> ParsedDates:
    """Parse a transaction date column by the rules (the reference implementation).

    * datetime columns (numpy, tz-aware, Arrow timestamps or dates) keep their calendar day
      (a tz-aware time in its own zone); ``date_format`` / ``dayfirst`` do not apply;
    * integer (and whole float) columns are YYYYMMDD numbers, or text in ``date_format``;
    * text (and object columns holding anything else, each value read as its ``str``,
      as DuckDB reads them) is read with ONE layout for the whole column
      (:func:`decide_date_layout`): ``date_format`` if given, else the layout of
      :data:`DATE_LAYOUTS` (restricted by ``dayfirst``) that every value fits; blank
      strings are missing;
    * other columns (booleans, decimals, ...) are not dates.

    Days outside :data:`FIRST_DAY` .. :data:`LAST_DAY` are unparseable. Raises nothing for
    bad values: the caller reports the masks (missing first, then ambiguous, then bad).
    """
    check_date_options(date_format, dayfirst)
    n = len(raw)
    dtype = raw.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        raw = raw.astype(object)
        dtype = raw.dtype
    missing = np.asarray(raw.isna(), dtype=bool)
    bad_problem = Problem.UNPARSEABLE_DATES
    ambiguous: np.ndarray | None = None
    ambiguous_problem = ""
    if isinstance(dtype, pd.ArrowDtype):
        pa_type = dtype.pyarrow_dtype
        if pa.types.is_date(pa_type):
            raw = raw.astype("datetime64[s]")
        elif pa.types.is_timestamp(pa_type):
            if pa_type.tz is not None:
                raw = raw.dt.tz_localize(None)
            raw = raw.astype(f"datetime64[{pa_type.unit}]")
        elif pa.types.is_string(pa_type) or pa.types.is_large_string(pa_type):
            raw = raw.astype(object)
        dtype = raw.dtype
    is_object = pd.api.types.is_object_dtype(dtype)
    kind = pd.api.types.infer_dtype(raw, skipna=True) if is_object else ""
    if pd.api.types.is_datetime64_any_dtype(dtype) or kind in ("datetime64", "datetime",
                                                                 "date"):
        days = _datetime_days(raw)
        bad = ~missing & (days == NOT_A_DAY)
    elif (pd.api.types.is_bool_dtype(dtype) or kind == "boolean"):
        days = np.full(n, NOT_A_DAY)
        bad = ~missing
    elif (pd.api.types.is_numeric_dtype(dtype)
          or kind in ("integer", "floating", "mixed-integer-float")):
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        if date_format is None:
            days = _yyyymmdd(values)
            bad = ~missing & (days == NOT_A_DAY)
        else:
            whole = np.isfinite(values) & (values == np.floor(values))
            text = pd.Series(np.where(whole, values, 0).astype(np.int64).astype(str),
                             dtype=object).where(whole & ~missing, None)
            days, _, bad, bad_problem, ambiguous, ambiguous_problem = _text_days(
                text, date_format, dayfirst)
            bad = (bad | (~whole & ~missing))
    elif is_object or pd.api.types.is_string_dtype(dtype):
        values = raw.astype(object)
        if kind not in ("string", "empty"):
            values = values.map(lambda v: v if isinstance(v, str) or pd.isna(v) else str(v))
        text = values.where(~missing, None)
        days, missing, bad, bad_problem, ambiguous, ambiguous_problem = _text_days(
            text, date_format, dayfirst)
    else:
        days = np.full(n, NOT_A_DAY)
        bad = ~missing
    lo, hi = _day_range_numbers()
    out_of_range = ~missing & ~bad & ((days < lo) | (days > hi))
    bad = bad | out_of_range
    days = np.where(missing | bad, 0, days).astype(np.int64)
    return ParsedDates(days, missing, bad, bad_problem, ambiguous, ambiguous_problem)


def _datetime_days(raw: pd.Series) -> np.ndarray:
    """Calendar days of datetimes (tz-aware: in their own zone); NOT_A_DAY where missing."""
    if raw.dtype == object:
        try:
            raw = pd.to_datetime(raw, errors="coerce")
        except (ValueError, TypeError):  # e.g. several UTC offsets: each its own wall day
            days = [_object_day(v) for v in raw.to_numpy()]
            return np.array([NOT_A_DAY if d is None else d for d in days], dtype=np.int64)
    if getattr(raw.dt, "tz", None) is not None:
        raw = raw.dt.tz_localize(None)
    values = raw.to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT"))
    ok = ~np.isnat(values)
    return np.where(ok, values.astype("datetime64[D]").astype(np.int64), NOT_A_DAY)


def _object_day(value: object) -> int | None:
    import datetime as dt

    if isinstance(value, dt.datetime):  # includes pd.Timestamp; aware: its local wall date
        return (value.date() - dt.date(1970, 1, 1)).days
    if isinstance(value, dt.date):
        return (value - dt.date(1970, 1, 1)).days
    return None


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


def report_implausible(message: str, implausible_dates: str) -> None:
    """Raise the message as a :class:`ValidationError`, or warn with it (``"warn"``)."""
    if implausible_dates == "warn":
        warnings.warn(message, DataWarning, stacklevel=5)
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
