"""Dates written as text: ONE layout per column, never guessed row by row.

A layout (:class:`DateLayout`) is a regular expression a whole string must match, with
named fields (year, month or month name, day), written once for Python, pyarrow and DuckDB
(all RE2-compatible), so every engine reads a string alike. A column's layout is the
user's ``date_format``, or decided from the whole column (:func:`decide_date_layout`): the
first of :data:`DATE_LAYOUTS` (restricted by ``dayfirst``) that every value fits; a column
that fits none is refused naming the misfits, and one whose every value fits both day-first
and month-first -- with some value read as another day -- is refused until the user says
which. :func:`read_date_column` is the pandas / pyarrow implementation; an engine in SQL
computes the same counts (:class:`DateStats`) and reads with the same expressions.

Used by the RFM summary rules (:mod:`clvmodels._summary_rules`), and reusable by any
summary reading dates (the contract summary's rules could adopt it for ``date_format``).
This module imports nothing of the package.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "BLANK_TEXT_REGEX",
    "DATE_LAYOUTS",
    "ISO_FAST_REGEX",
    "MONTH_NUMBERS",
    "NOT_A_DAY",
    "DateColumn",
    "DateDecision",
    "DateLayout",
    "DateStats",
    "ambiguous_dates_problem",
    "candidate_layouts",
    "check_date_options",
    "civil_days",
    "date_format_layout",
    "decide_date_layout",
    "layout_days",
    "read_date_column",
    "unparseable_dates_problem",
]

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
    def shape(self) -> str:
        """The expression without its group names: layouts of one shape (day-first and
        month-first) match the same strings and differ only in what the fields mean."""
        return re.sub(r"\(\?P<\w+>", "(", self.regex)

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
    #: when no layout fits every value: a same-shape layout that fits as many as ``layout``
    #: (the column would be ambiguous once its misfits are fixed)
    tied_with: DateLayout | None = None


def decide_date_layout(stats: DateStats, candidates: Sequence[DateLayout]) -> DateDecision:
    """The one layout of a text date column, decided from the whole column.

    * the first layout (in the order of ``candidates``) that every value fits -- a real
      day under it -- is the column's, unless another layout of the same shape (day-first
      and month-first, when no day is above 12) fits every value too and reads some value
      as another day: then the column is ambiguous. (Layouts of different shapes never both
      fit a value, so only same-shape rivals need counting.)
    * if no layout fits every value: the layout most values match, then most read as real
      days (ties: the earlier one), whose misfits the engine reports as unparseable.

    ``stats`` are asked lazily, layout by layout, so a column that fits the first layout
    costs one layout's work.
    """
    n = stats.n
    if n == 0:
        return DateDecision(candidates[0])

    def fits(layout: DateLayout) -> bool:
        return stats.structural([layout])[0] == n and stats.valid([layout])[0] == n

    for i, layout in enumerate(candidates):
        if fits(layout):
            for other in candidates[i + 1:]:
                if other.shape == layout.shape and fits(other) and stats.differ(layout, other):
                    return DateDecision(layout, ambiguous_with=other)
            return DateDecision(layout)
    structural = stats.structural(candidates)
    order = {lay: i for i, lay in enumerate(candidates)}
    matched = [lay for lay, k in zip(candidates, structural, strict=True) if k > 0]
    valid = dict(zip(matched, stats.valid(matched), strict=True)) if matched else {}
    def key(lay: DateLayout) -> tuple[int, int]:
        return structural[order[lay]], valid.get(lay, -1)

    best = max(candidates, key=lambda lay: (*key(lay), -order[lay]))
    tied = next((lay for lay in candidates
                 if lay != best and lay.shape == best.shape and key(lay) == key(best)), None)
    return DateDecision(best, matched=structural[order[best]] > 0, tied_with=tied)


#: ISO dates with two-digit months and days and nothing before them (matched whole): their
#: first ten characters are the date, read without extracting fields (the common case,
#: made fast in every engine; the result is the layout's own)
ISO_FAST_REGEX = f"[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}{_TIME}{_EDGE}"


def _match(text: pa.Array, regex: str) -> np.ndarray:
    hit = pc.match_substring_regex(text, regex)
    return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)


def _days_of_keys(keys: pa.Array, layout: DateLayout, sep: str) -> np.ndarray:
    """Day numbers of keys ``y<sep>month<sep>d`` (month a number, or a name for layouts
    with one); each distinct key is read once."""
    encoded = pc.dictionary_encode(keys)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    parts = [str(k).split(sep) for k in encoded.dictionary.to_pylist()]

    def number(text: str) -> float:
        return float(text) if text.isdigit() else np.nan

    y = np.array([number(p[0]) for p in parts], dtype=float)
    if layout.two_digit_year:
        y = np.where(y < 69, 2000 + y, 1900 + y)
    if "b" in layout.groups:
        m = np.array([MONTH_NUMBERS.get(p[1][:3].lower(), np.nan) for p in parts], dtype=float)
    else:
        m = np.array([number(p[1]) for p in parts], dtype=float)
    d = np.array([number(p[2]) for p in parts], dtype=float)
    days = np.append(civil_days(y, m, d), NOT_A_DAY)
    codes = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False),
                       dtype=np.int64)
    return days[codes]  # -1 (null key): NOT_A_DAY


def layout_days(text: pa.Array, layout: DateLayout, matched: np.ndarray | None = None
                ) -> np.ndarray:
    """Day numbers (days since 1970-01-01) of strings read with ``layout``;
    :data:`NOT_A_DAY` where a string does not match or is not a real calendar day (matched
    by pyarrow's RE2, the regular-expression engine DuckDB uses too). ``matched``: the
    strings known to match ``layout`` (saves matching again). Each distinct date is read
    once, so a long column of timestamps costs little more than matching it."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if matched is None:
        matched = _match(text, layout.full_regex)
    out = np.full(len(text), NOT_A_DAY, dtype=np.int64)
    rows = matched.copy()
    if layout == DATE_LAYOUTS[0] and rows.any():
        fast = rows & _match(text, f"^(?:{ISO_FAST_REGEX})$")
        if fast.any():
            index = np.flatnonzero(fast)
            keys = pc.utf8_slice_codeunits(text.take(pa.array(index)), 0, 10)
            out[index] = _days_of_keys(keys, layout, "-")
            rows &= ~fast
    if rows.any():
        index = np.flatnonzero(rows)
        parts = pc.extract_regex(text.take(pa.array(index)), layout.full_regex)
        month = "b" if "b" in layout.groups else "m"
        keys = pc.binary_join_element_wise(*(pc.struct_field(parts, g) for g in
                                             ("y", month, "d")), "|")
        out[index] = _days_of_keys(keys, layout, "|")
    return out


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


class _RowStats:
    """:class:`DateStats` over the rows of a text column (``missing``: null or blank),
    computed lazily, layout by layout, and kept."""

    def __init__(self, text: pa.Array, missing: np.ndarray) -> None:
        self.text = text
        self.present = ~missing
        self.n = int(self.present.sum())
        self._matched: dict[DateLayout, np.ndarray] = {}
        self._days: dict[DateLayout, np.ndarray] = {}

    def matched(self, layout: DateLayout) -> np.ndarray:
        if layout not in self._matched:
            self._matched[layout] = _match(self.text, layout.full_regex) & self.present
        return self._matched[layout]

    def days(self, layout: DateLayout) -> np.ndarray:
        if layout not in self._days:
            self._days[layout] = layout_days(self.text, layout, self.matched(layout))
        return self._days[layout]

    def structural(self, layouts: Sequence[DateLayout]) -> list[int]:
        return [int(self.matched(lay).sum()) for lay in layouts]

    def valid(self, layouts: Sequence[DateLayout]) -> list[int]:
        return [int((self.days(lay) != NOT_A_DAY).sum()) for lay in layouts]

    def differ(self, a: DateLayout, b: DateLayout) -> int:
        da, db = self.days(a), self.days(b)
        return int(((da != NOT_A_DAY) & (db != NOT_A_DAY) & (da != db)).sum())


@dataclass
class DateColumn:
    """A date column read by the rules: day numbers (days since 1970-01-01; 0 where missing
    or bad), the masks of missing values (null, NaT, blank strings) and of bad ones (not a
    day in the column's layout, or outside the years asked for), and for text the
    ``decision`` (its layout; ``decision.ambiguous_with``: the column reads as other days
    under that rival, the rows in ``ambiguous``)."""

    days: np.ndarray
    missing: np.ndarray
    bad: np.ndarray
    decision: DateDecision | None = None
    ambiguous: np.ndarray | None = None

    def as_datetime(self) -> pd.Series:
        """Days as datetime64[ns] (NaT where missing or bad)."""
        ok = ~(self.missing | self.bad)
        return pd.Series(np.where(ok, self.days, 0).astype("datetime64[D]")
                         .astype("datetime64[ns]")).where(ok)


#: a text value that counts as missing: empty, or spaces / tabs only
BLANK_TEXT_REGEX = f"^{_EDGE}$"


def _blank_strings(text: pa.Array) -> np.ndarray:
    return _match(text, BLANK_TEXT_REGEX)


def _text_days(text: pa.Array, date_format: str | None, dayfirst: bool | None
               ) -> tuple[np.ndarray, np.ndarray, DateDecision, np.ndarray | None]:
    """(days, missing, decision, ambiguous mask) of strings (null: missing), read with ONE
    layout decided from the whole column."""
    candidates = candidate_layouts(date_format, dayfirst)
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    missing = np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    missing = missing | _blank_strings(text)
    stats = _RowStats(text, missing)
    decision = decide_date_layout(stats, candidates)
    days = np.where(missing, NOT_A_DAY, stats.days(decision.layout))
    ambiguous = None
    if decision.ambiguous_with is not None:
        other = stats.days(decision.ambiguous_with)
        ambiguous = ~missing & (days != NOT_A_DAY) & (other != NOT_A_DAY) & (days != other)
    return days, missing, decision, ambiguous


def _as_arrow_text(values: pd.Series) -> pa.Array:
    """Strings (anything else null) as a pyarrow string array, without a Python loop for a
    column that holds strings only."""
    array = values.array
    if isinstance(array, pd.arrays.ArrowStringArray) or isinstance(values.dtype,
                                                                      pd.ArrowDtype):
        out = pa.array(array)
        return out.cast(pa.string()) if out.type != pa.string() else out
    return pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=True)


def _yyyymmdd(values: np.ndarray) -> np.ndarray:
    """Day numbers of YYYYMMDD numbers (8 digits, whole); NOT_A_DAY otherwise."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v) & (v == np.floor(v)) & (v >= 10_000_000) & (v <= 99_999_999)
    w = np.where(ok, v, 19700101).astype(np.int64)
    days = civil_days(w // 10_000, w // 100 % 100, w % 100)
    return np.where(ok, days, NOT_A_DAY)


def plain_date_dtype(raw: pd.Series) -> pd.Series:
    """Categorical and Arrow-backed columns as numpy ones: Arrow dates and timestamps as
    datetime64 (a zone dropped, its wall time kept), Arrow strings and categories as object;
    anything else as it is (the caller decides whether it holds dates)."""
    if isinstance(raw.dtype, pd.CategoricalDtype):
        return raw.astype(object)
    if isinstance(raw.dtype, pd.ArrowDtype):
        pa_type = raw.dtype.pyarrow_dtype
        if pa.types.is_date(pa_type):
            return raw.astype("datetime64[s]")
        if pa.types.is_timestamp(pa_type):
            if pa_type.tz is not None:
                raw = raw.dt.tz_localize(None)
            return raw.astype(f"datetime64[{pa_type.unit}]")
        if pa.types.is_string(pa_type) or pa.types.is_large_string(pa_type):
            return raw.astype(object)
    return raw


def read_date_column(raw: pd.Series, *, date_format: str | None = None,
                     dayfirst: bool | None = None,
                     first_day: dt.date = dt.date(1, 1, 1),
                     last_day: dt.date = dt.date(9999, 12, 31)) -> DateColumn:
    """Read a date column by the rules (the pandas / pyarrow implementation).

    * datetime columns (numpy, tz-aware, Arrow timestamps or dates; object columns of
      datetimes / dates) keep their calendar day (a tz-aware time in its own zone);
      ``date_format`` / ``dayfirst`` do not apply;
    * integer (and whole float) columns are YYYYMMDD numbers, or text in ``date_format``;
    * text -- and object columns holding anything else, each value read as its ``str``, as
      DuckDB reads such a column -- is read with ONE layout for the whole column
      (:func:`decide_date_layout`); blank strings are missing;
    * other columns (booleans, ...) are not dates.

    Days outside ``first_day`` .. ``last_day`` are bad. Raises nothing for bad values (only
    ``ValueError`` for bad options): the caller reports the masks, missing first, then
    ambiguous, then bad.
    """
    check_date_options(date_format, dayfirst)
    n = len(raw)
    raw = plain_date_dtype(raw)
    dtype = raw.dtype
    missing = np.asarray(raw.isna(), dtype=bool)
    decision: DateDecision | None = None
    ambiguous: np.ndarray | None = None
    is_object = pd.api.types.is_object_dtype(dtype)
    kind = pd.api.types.infer_dtype(raw, skipna=True) if is_object else ""
    if pd.api.types.is_datetime64_any_dtype(dtype) or kind in ("datetime64", "datetime",
                                                                 "date"):
        days = _datetime_days(raw)
        bad = ~missing & (days == NOT_A_DAY)
    elif pd.api.types.is_bool_dtype(dtype) or kind == "boolean":
        days = np.full(n, NOT_A_DAY)
        bad = ~missing
    elif (pd.api.types.is_numeric_dtype(dtype)
          or kind in ("integer", "floating", "mixed-integer-float", "decimal")):
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        if date_format is None:
            days = _yyyymmdd(values)
            bad = ~missing & (days == NOT_A_DAY)
        else:
            whole = np.isfinite(values) & (values == np.floor(values))
            digits = np.where(whole, values, 0).astype(np.int64).astype(str).astype(object)
            text = pa.array(np.where(whole & ~missing, digits, None), type=pa.string())
            days, _, decision, ambiguous = _text_days(text, date_format, dayfirst)
            bad = ~missing & (days == NOT_A_DAY)
    elif is_object or pd.api.types.is_string_dtype(dtype):
        values = raw
        if is_object and kind not in ("string", "empty"):
            # anything but strings is read as its text, as DuckDB reads such a column
            values = raw.map(lambda v: v if isinstance(v, str) or pd.isna(v) else str(v))
        days, missing, decision, ambiguous = _text_days(_as_arrow_text(values), date_format,
                                                        dayfirst)
        bad = ~missing & (days == NOT_A_DAY)
    else:
        days = np.full(n, NOT_A_DAY)
        bad = ~missing
    epoch = dt.date(1970, 1, 1)
    lo = (_as_date(first_day) - epoch).days
    hi = (_as_date(last_day) - epoch).days
    bad = bad | (~missing & ~bad & ((days < lo) | (days > hi)))
    days = np.where(missing | bad, 0, days).astype(np.int64)
    return DateColumn(days, missing, bad, decision, ambiguous)


def unparseable_dates_problem(decision: DateDecision | None, years: str, *,
                              user_given: bool = False) -> str:
    """The wording for dates that do not fit the column's layout (or lie outside
    ``years``, e.g. "1678-2261"), for a message ``column '<name>': <problem>; ...``."""
    if decision is None:
        return f"dates that cannot be parsed (or lie outside the years {years})"
    layout = decision.layout
    if user_given:
        return f"dates that cannot be parsed with {layout.name} (or lie outside the years {years})"
    if not decision.matched:
        return ("dates that cannot be parsed: no known date format fits them (use ISO 8601, "
                "YYYY-MM-DD, or pass date_format=, e.g. '%d/%m/%Y')")
    if decision.tied_with is not None:
        return (
            f"dates that cannot be parsed as {layout.name} or {decision.tied_with.name}, the "
            f"formats the rest of the column fits (or lie outside the years {years}); a "
            "column must have one date format: fix these, and pass dayfirst=True or "
            "dayfirst=False (or date_format=, e.g. '%d/%m/%Y') to say which")
    return (
        f"dates that cannot be parsed as {layout.name}, the format most of the column has "
        f"(or lie outside the years {years}); a column must have one date format: fix "
        "these, or pass date_format= (e.g. '%d/%m/%Y') for another single format"
    )


def ambiguous_dates_problem(first: DateLayout, other: DateLayout) -> str:
    """The wording for a column every value of which fits two layouts, read differently."""
    return (
        f"dates that read as different days as {first.name} and as {other.name}, and no "
        "date in the column tells which (no day above 12); pass dayfirst=True or "
        "dayfirst=False (or date_format=, e.g. '%d/%m/%Y')"
    )


def _as_date(value: dt.date) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


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
    if isinstance(value, dt.datetime):  # includes pd.Timestamp; aware: its local wall date
        return (value.date() - dt.date(1970, 1, 1)).days
    if isinstance(value, dt.date):
        return (value - dt.date(1970, 1, 1)).days
    return None


