"""Dates in Spark by the rules of :mod:`clvmodels._date_rules` (used by the Spark engines).

A transaction date column becomes a Spark ``DateType`` column of calendar days:

* ``DateType``: as it is; ``TimestampNTZType``: its day; ``TimestampType``: its day in the
  session time zone (``spark.sql.session.timeZone``) -- or, for a Parquet file whose column
  records a time zone, in that zone (``zone``), as the pandas and DuckDB engines read it;
* integer / decimal / whole float columns: ``YYYYMMDD`` numbers (or text in ``date_format``);
* text: ONE layout for the whole column, decided by
  :func:`clvmodels._date_rules.decide_date_layout` from counts computed here in Spark
  (:class:`SparkDateStats`), and read with the layout's expression (Java regular
  expressions: the layouts' RE2 syntax with ``(?P<name>`` written ``(?<name>``).

No Python UDF: every value is read by Spark SQL expressions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from clvmodels._date_rules import (
    BLANK_TEXT_REGEX,
    MONTH_NUMBERS,
    DateDecision,
    DateLayout,
    candidate_layouts,
    decide_date_layout,
)

__all__ = ["DateReading", "SparkDateStats", "read_dates"]

_US_PER_DAY = 86_400_000_000


def java_regex(layout: DateLayout) -> str:
    """A layout's whole-string expression for Java (``\\z``: no final line break allowed)."""
    return "^(?:" + layout.regex.replace("(?P<", "(?<") + ")\\z"


def blank(text: Column) -> Column:
    """Null or blank text (a missing date)."""
    return text.isNull() | text.rlike(BLANK_TEXT_REGEX.replace("$", "\\z"))


def layout_day(text: Column, layout: DateLayout) -> Column:
    """The day a string reads as under ``layout``; null where it does not match or is no
    real calendar day (the rule of :func:`clvmodels._date_rules.civil_days`)."""
    regex = java_regex(layout)
    groups = layout.groups
    matched = text.rlike(regex)

    def group(name: str) -> Column:
        return F.regexp_extract(text, regex, groups.index(name) + 1)

    y = group("y").try_cast("int")
    if layout.two_digit_year:
        y = F.when(y < 69, y + 2000).otherwise(y + 1900)
    if "b" in groups:
        names = F.lower(F.substring(group("b"), 1, 3))
        m = F.lit(None).cast("int")
        for name, number in MONTH_NUMBERS.items():
            m = F.when(names == name, F.lit(number)).otherwise(m)
    else:
        m = group("m").try_cast("int")
    d = group("d").try_cast("int")
    fields_ok = (matched & y.isNotNull() & m.isNotNull() & d.isNotNull()
                 & m.between(1, 12) & (d >= 1) & y.between(1, 9999))
    first = F.make_date(y, m, F.lit(1))
    return F.when(fields_ok, F.when(d <= F.dayofmonth(F.last_day(first)),
                                    F.date_add(first, d - 1)))


class SparkDateStats:
    """:class:`clvmodels._date_rules.DateStats` over a Spark text column, each count one
    Spark aggregation, asked lazily (a column fitting the first layout costs one job)."""

    def __init__(self, frame: DataFrame, column: str) -> None:
        self.frame = frame.select(F.col(column).alias("t")).where(~blank(F.col("t")))
        self._counts: dict[DateLayout, tuple[int, int]] = {}
        self.n = int(self.frame.count())

    def _count(self, layouts: Sequence[DateLayout]) -> None:
        todo = [lay for lay in layouts if lay not in self._counts]
        if not todo:
            return
        t = F.col("t")
        aggs = []
        for i, lay in enumerate(todo):
            aggs += [F.count_if(t.rlike(java_regex(lay))).alias(f"s{i}"),
                     F.count(layout_day(t, lay)).alias(f"v{i}")]
        row = self.frame.agg(*aggs).first()
        for i, lay in enumerate(todo):
            self._counts[lay] = (int(row[f"s{i}"] or 0), int(row[f"v{i}"] or 0))

    def structural(self, layouts: Sequence[DateLayout]) -> list[int]:
        self._count(layouts)
        return [self._counts[lay][0] for lay in layouts]

    def valid(self, layouts: Sequence[DateLayout]) -> list[int]:
        self._count(layouts)
        return [self._counts[lay][1] for lay in layouts]

    def differ(self, a: DateLayout, b: DateLayout) -> int:
        t = F.col("t")
        da, db = layout_day(t, a), layout_day(t, b)
        return int(self.frame.agg(F.count_if(da != db)).first()[0] or 0)


@dataclass
class DateReading:
    """A date column read by the rules: ``day`` (DateType, null where missing or bad),
    ``missing`` and ``bad`` conditions, the text ``decision`` (None for typed columns) and,
    for an ambiguous text column, the condition marking the rows read differently."""

    day: Column
    missing: Column
    bad: Column
    decision: DateDecision | None = None
    ambiguous: Column | None = None


def read_dates(frame: DataFrame, column: str, *, date_format: str | None,
               dayfirst: bool | None, zone: str | None = None,
               first_day: str, last_day: str) -> DateReading:
    """Read ``frame[column]`` as calendar days by the rules (see the module docstring);
    days outside ``first_day`` .. ``last_day`` (ISO strings) are bad."""
    raw = F.col(column)
    dtype = frame.schema[column].dataType
    decision = None
    ambiguous = None
    missing = raw.isNull()
    if isinstance(dtype, T.DateType):
        day = raw
    elif isinstance(dtype, T.TimestampNTZType):
        day = F.to_date(raw)
    elif isinstance(dtype, T.TimestampType):
        if zone is None:
            day = F.to_date(raw)
        else:  # the wall day in the file's own zone, whatever the session's zone
            micros = F.unix_micros(F.from_utc_timestamp(raw, zone))
            day = F.date_from_unix_date(F.floor(micros / _US_PER_DAY).cast("int"))
    elif isinstance(dtype, (T.IntegralType, T.DecimalType, T.FloatType, T.DoubleType)):
        if isinstance(dtype, (T.FloatType, T.DoubleType)):
            missing = raw.isNull() | F.isnan(raw)
        whole = F.when(~missing & (raw == F.floor(raw)), F.floor(raw).cast("long"))
        if date_format is None:
            ok = whole.between(10_000_000, 99_999_999)
            text = F.when(ok, F.format_string("%08d", whole))
            day = layout_day(text, DateLayout("YYYYMMDD",
                                              "(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})"))
        else:
            text = whole.cast("string")
            decision, day, ambiguous = _text_day(frame.select(text.alias("__t")), "__t",
                                                 text, date_format, dayfirst)
    elif isinstance(dtype, T.StringType):
        missing = blank(raw)
        decision, day, ambiguous = _text_day(frame, column, raw, date_format, dayfirst)
    else:  # booleans and the like are no dates
        day = F.lit(None).cast("date")
    lo, hi = F.lit(first_day).cast("date"), F.lit(last_day).cast("date")
    in_range = day.between(lo, hi)
    bad = ~missing & (day.isNull() | ~in_range)
    day = F.when(~missing & in_range, day)
    if ambiguous is not None:
        ambiguous = ~missing & ambiguous
    return DateReading(day, missing, bad, decision, ambiguous)


def _text_day(frame: DataFrame, column: str, text: Column, date_format: str | None,
              dayfirst: bool | None) -> tuple[DateDecision, Column, Column | None]:
    candidates = candidate_layouts(date_format, dayfirst)
    decision = decide_date_layout(SparkDateStats(frame, column), candidates)
    day = layout_day(text, decision.layout)
    ambiguous = None
    if decision.ambiguous_with is not None:
        other = layout_day(text, decision.ambiguous_with)
        ambiguous = F.coalesce(day != other, F.lit(False))
    return decision, day, ambiguous
