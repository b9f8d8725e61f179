"""Reading the raw columns in DuckDB SQL by the shared rules (for :mod:`.duckdb`).

* dates: typed columns keep their calendar day (a tz-aware time in its own zone), numbers
  are YYYYMMDD, and text is read with ONE layout per column (:mod:`clvmodels._date_rules`):
  the same regular expressions as the pandas engine (RE2 in both), the same calendar test;
* the layout of a text column is decided by the shared rule from counts made here
  (:class:`DuckDateStats`): guessed from the first rows, then confirmed on every row in
  the engine's first pass (:func:`guess_confirmed`) -- or decided from a scan of the whole
  column when the guess does not hold;
* money is summed exactly, as DECIMAL (:func:`money_sql`): each amount, read as a number
  as the pandas engine reads it (a double), becomes a ``DECIMAL(15, k)`` with ONE scale
  ``k`` for the whole column (:data:`SCALES`, :func:`choose_scale`), guessed from the first
  rows and confirmed on every row in the first pass, and the days' and customers' sums are
  ``DECIMAL(38, k)`` -- exact whatever the order of the rows. A column with no such scale
  (amounts that are no decimal numbers of 15 significant digits, e.g. the noise of float
  arithmetic such as 0.1 + 0.2 = 0.30000000000000004) is summed with ``fsum`` instead;
* :class:`ReadPlan`: how a summary reads its columns (date layout, ids, money scale), and
  small SQL helpers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from clvmodels._date_rules import BLANK_TEXT_REGEX, ISO_FAST_REGEX
from clvmodels._summary_rules import (
    DATE_LAYOUTS,
    FIRST_DAY,
    ID_BLANK_REGEX,
    ID_STRIP_REGEX,
    LAST_DAY,
    MONTH_NUMBERS,
    DateDecision,
    DateLayout,
    NegativeAmounts,
    Problem,
    candidate_layouts,
    decide_date_layout,
)

__all__ = ["SCALES", "Check", "ReadPlan", "checks_for", "choose_scale", "date_plan",
           "guess_confirmed", "guess_scale", "money_sql", "parsed_view_sql", "read_layout",
           "scale_counts_sql"]

#: the temporary table of ids that differ only by spaces at their ends (see the engine)
SPACED_TABLE = "__clv_spaced_ids"

INTEGER_TYPES = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
    "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
}
FLOAT_TYPES = {"FLOAT", "DOUBLE"}
TIMESTAMP_TYPES = {"TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATETIME"}
TIMESTAMPTZ_TYPES = {"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"}


def ident(name: str) -> str:
    """Quote an identifier for SQL."""
    return '"' + str(name).replace('"', '""') + '"'


def literal(text: str) -> str:
    """Quote a string literal for SQL."""
    return "'" + str(text).replace("'", "''") + "'"


def list_literal(items: Sequence[str]) -> str:
    return "[" + ", ".join(literal(s) for s in items) + "]"


def one_row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    """The single row of an aggregate query (fetched to the end, as DuckDB requires)."""
    rows = con.execute(sql).fetchall()
    if len(rows) != 1:
        raise RuntimeError(f"expected one row from DuckDB, got {len(rows)}")
    return tuple(rows[0])


def date_literal(day: pd.Timestamp) -> str:
    return f"DATE '{day.date().isoformat()}'"


def is_numeric_type(sql_type: str) -> bool:
    t = sql_type.upper()
    return t in INTEGER_TYPES or t in FLOAT_TYPES or t.startswith("DECIMAL") or t == "BOOLEAN"


def is_text_type(sql_type: str) -> bool:
    return sql_type.upper() == "VARCHAR"


def text_sql(raw: str, sql_type: str) -> str:
    """The date column as text, for a column read with a layout (text, or numbers with a
    ``date_format``: integers as their digits, whole floats likewise, others NULL)."""
    t = sql_type.upper()
    if t in INTEGER_TYPES:
        return f"CAST({raw} AS VARCHAR)"
    if t in FLOAT_TYPES or t.startswith("DECIMAL"):
        value = f"CAST({raw} AS DOUBLE)"
        return (f"CASE WHEN {value} = floor({value}) AND abs({value}) < 1e18 "
                f"THEN CAST(CAST({value} AS BIGINT) AS VARCHAR) END")
    return raw


def _layout_struct_sql(text: str, layout: DateLayout) -> str:
    """The named fields of ``layout`` in ``text`` (a struct; fields '' where no match)."""
    return (f"regexp_extract({text}, {literal(layout.full_regex)}, "
            f"{list_literal(layout.groups)})")


def _layout_day_sql(x: str, layout: DateLayout) -> str:
    """DATE from the struct ``x`` of :func:`_layout_struct_sql` (NULL: no match / no day)."""

    def number(name: str) -> str:
        return f"TRY_CAST(NULLIF({x}.{name}, '') AS BIGINT)"

    year = number("y")
    if layout.two_digit_year:
        year = f"(CASE WHEN {year} < 69 THEN 2000 + {year} ELSE 1900 + {year} END)"
    if "b" in layout.groups:
        whens = " ".join(f"WHEN {literal(k)} THEN {v}" for k, v in MONTH_NUMBERS.items())
        month = f"(CASE lower(left({x}.b, 3)) {whens} END)"
    else:
        month = number("m")
    return _make_date_sql(year, month, number("d"))


def _make_date_sql(y: str, m: str, d: str) -> str:
    """DATE y-m-d, NULL unless a real calendar day of the years 0-9999 (the same test as
    :func:`clvmodels._summary_rules.civil_days`; make_date itself would fail)."""
    leap = f"(({y}) % 4 = 0 AND (({y}) % 100 <> 0 OR ({y}) % 400 = 0))"
    month_days = (f"CASE WHEN ({m}) IN (4, 6, 9, 11) THEN 30 WHEN ({m}) = 2 THEN "
                  f"(CASE WHEN {leap} THEN 29 ELSE 28 END) ELSE 31 END")
    valid = (f"({y}) BETWEEN 0 AND 9999 AND ({m}) BETWEEN 1 AND 12 "
             f"AND ({d}) BETWEEN 1 AND {month_days}")
    return f"(CASE WHEN {valid} THEN make_date({y}, {m}, {d}) END)"


def read_layout(text: str, layout: DateLayout, name: str, guard: str | None = None
                 ) -> tuple[list[str], str]:
    """Reading ``text`` with ``layout``: the columns to compute in an inner SELECT (named
    after ``name``; only where ``guard`` holds, if given) and the DATE expression over them
    for the SELECT above (NULL: no match, or not a real day). ISO dates with two-digit
    months and days go through DuckDB's own date cast, the rest through the layout's
    regular expression (the same result, faster)."""
    struct = _layout_struct_sql(text, layout)
    if layout == DATE_LAYOUTS[0]:
        strict = f"regexp_full_match({text}, {literal(ISO_FAST_REGEX)})"
        fast = f"TRY_CAST(left({text}, 10) AS DATE)"
        when_fast = strict if guard is None else f"({guard}) AND {strict}"
        when_slow = f"NOT {strict}" if guard is None else f"({guard}) AND NOT {strict}"
        columns = [f"CASE WHEN {when_fast} THEN {fast} END AS {name}_fast",
                   f"CASE WHEN {when_slow} THEN {struct} END AS {name}_x"]
        return columns, f"COALESCE({name}_fast, {_layout_day_sql(f'{name}_x', layout)})"
    if guard is not None:
        struct = f"CASE WHEN {guard} THEN {struct} END"
    return [f"{struct} AS {name}_x"], _layout_day_sql(f"{name}_x", layout)


def day_expr(raw: str, sql_type: str, utc_offset: int | None = None) -> str:
    """SQL turning a typed date column into a DATE (NULL where it cannot be parsed); text
    columns are read with a layout (:func:`_parsed_view_sql`).

    A tz-aware timestamp falls on its calendar day in its own time zone, as in pandas: the
    session time zone is set to a named zone, and ``utc_offset`` minutes are added (to the
    UTC wall time) for a fixed offset.
    """
    t = sql_type.upper()
    if t == "DATE":
        return raw
    if t in TIMESTAMPTZ_TYPES and utc_offset is not None:
        return f"CAST(CAST({raw} AS TIMESTAMP) + INTERVAL ({utc_offset}) MINUTE AS DATE)"
    if t in TIMESTAMP_TYPES or t in TIMESTAMPTZ_TYPES:
        return f"CAST({raw} AS DATE)"
    if t in INTEGER_TYPES or t in FLOAT_TYPES or t.startswith("DECIMAL"):
        # YYYYMMDD numbers (8 digits, whole), as in the CDNOW files
        v = f"CAST({raw} AS DOUBLE)"
        w = f"CAST({v} AS BIGINT)"
        day = _make_date_sql(f"{w} // 10000", f"{w} // 100 % 100", f"{w} % 100")
        return f"CASE WHEN {v} = floor({v}) AND {v} BETWEEN 10000000 AND 99999999 THEN {day} END"
    return "CAST(NULL AS DATE)"  # other types (booleans, ...) are not dates


@dataclass
class ReadPlan:
    """How the columns are read: the date layout (text dates), its rival (an ambiguous
    column) and the id handling."""

    layout: DateLayout | None = None
    rival: DateLayout | None = None
    date_problem: str = Problem.UNPARSEABLE_DATES
    ambiguous_problem: str = ""
    text_ids: bool = False
    strip_ids: bool = False
    #: same-shape rivals of a layout guessed from a sample, counted in pass 1 to confirm it
    twins: list[DateLayout] = field(default_factory=list)
    spaced: list[str] = field(default_factory=list)  # ids that clash but for spaces
    #: the money column's scale: amounts are summed as DECIMAL(38, scale); None: ``fsum``
    scale: int | None = None


class DuckDateStats:
    """:class:`clvmodels._summary_rules.DateStats` of a text date column, counted in SQL
    (one scan for every layout at once; one more only to count an ambiguity); with
    ``limit``, of the first rows only (a guess, confirmed on every row in pass 1)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, source_sql: str,
                 columns: dict[str, str], column: str, candidates: Sequence[DateLayout],
                 limit: int | None = None) -> None:
        self.con = con
        self.candidates = list(candidates)
        text = text_sql(ident(column), columns[column])
        rows = f"SELECT {text} AS t FROM {source_sql}"
        self.from_sql = (f"({rows}) WHERE t IS NOT NULL AND NOT regexp_matches(t, "
                         f"{literal(BLANK_TEXT_REGEX)})")
        if limit is not None:
            self.from_sql = f"(SELECT t FROM {self.from_sql} LIMIT {int(limit)})"
        self._counts: dict[DateLayout, tuple[int, int]] = {}
        self.n = self._scan()

    def _scan(self) -> int:
        fields, aggregates = [], ["count(*)"]
        for i, lay in enumerate(self.candidates):
            match = f"regexp_full_match(t, {literal(lay.regex)})"
            columns, day = read_layout("t", lay, f"l{i}", guard=match)
            fields += [f"{match} AS m{i}", *columns]
            aggregates += [f"count(*) FILTER (WHERE m{i})", f"count({day})"]
        row = one_row(self.con, f"SELECT {', '.join(aggregates)} FROM "
                                 f"(SELECT {', '.join(fields)} FROM {self.from_sql})")
        self._counts = {lay: (int(row[1 + 2 * i]), int(row[2 + 2 * i]))
                        for i, lay in enumerate(self.candidates)}
        return int(row[0])

    def structural(self, layouts: Sequence[DateLayout]) -> list[int]:
        return [self._counts[lay][0] for lay in layouts]

    def valid(self, layouts: Sequence[DateLayout]) -> list[int]:
        return [self._counts[lay][1] for lay in layouts]

    def differ(self, a: DateLayout, b: DateLayout) -> int:
        cols_a, da = read_layout("t", a, "a")
        cols_b, db = read_layout("t", b, "b")
        return int(one_row(
            self.con,
            f"SELECT count(*) FROM (SELECT {da} AS da, {db} AS db FROM (SELECT "
            f"{', '.join(cols_a + cols_b)} FROM {self.from_sql})) "
            "WHERE da IS NOT NULL AND db IS NOT NULL AND da <> db")[0])


#: rows of a text date column from which the engine guesses its layout before pass 1 (the
#: guess is then confirmed, or refuted, on every row)
_GUESS_ROWS = 10_000


def date_plan(con: duckdb.DuckDBPyConnection, source_sql: str, columns: dict[str, str],
              column: str, date_format: str | None, dayfirst: bool | None, *, guess: bool
              ) -> ReadPlan:
    """The layout a date column is read with, decided by the shared rule from the whole
    column -- or, with ``guess``, from its first rows, plus the same-shape rivals whose
    counts in pass 1 confirm the guess (:func:`guess_confirmed`)."""
    sql_type = columns[column]
    text = is_text_type(sql_type)
    numeric_with_format = date_format is not None and (
        sql_type.upper() in INTEGER_TYPES or sql_type.upper() in FLOAT_TYPES
        or sql_type.upper().startswith("DECIMAL"))
    if not (text or numeric_with_format):
        return ReadPlan()
    candidates = candidate_layouts(date_format, dayfirst)
    stats = DuckDateStats(con, source_sql, columns, column, candidates,
                       limit=_GUESS_ROWS if guess and len(candidates) > 1 else None)
    decision: DateDecision = decide_date_layout(stats, candidates)
    plan = ReadPlan(
        layout=decision.layout,
        rival=None if guess else decision.ambiguous_with,
        date_problem=Problem.unparseable_dates(decision, user_given=date_format is not None),
        ambiguous_problem=(Problem.ambiguous_dates(decision.layout, decision.ambiguous_with)
                           if decision.ambiguous_with is not None else ""),
    )
    if guess and len(candidates) > 1:
        plan.twins = [c for c in candidates
                      if c != decision.layout and c.shape == decision.layout.shape]
    return plan


def guess_confirmed(plan: ReadPlan, counts: Sequence[int]) -> bool:
    """Whether pass 1's counts prove the guessed layout is the rule's decision for the whole
    column: every text value is a day under it (``counts[0]`` values are not), and no
    same-shape rival fits every value while reading some value as another day (``counts``
    then holds, per rival, the values it does not fit and those it reads differently).
    Layouts of other shapes cannot fit a value the guess fits, so they need no counting;
    a rival that fits everything and reads everything alike gives the same days."""
    if plan.layout is None or not plan.twins:
        return plan.layout is None or counts[0] == 0
    if counts[0]:
        return False
    for j in range(len(plan.twins)):
        no_fit, differ = counts[1 + 2 * j], counts[2 + 2 * j]
        if no_fit == 0 and differ > 0:
            return False
    return True




def amount_expr(raw: str, sql_type: str) -> str:
    if is_numeric_type(sql_type):
        return f"CAST({raw} AS DOUBLE)"
    return f"TRY_CAST({raw} AS DOUBLE)"


#: significant digits of one amount as an exact decimal: DECIMAL(15, k) (an int64). A double
#: keeps every decimal of 15 significant digits (DBL_DIG), so the decimal of a double, when
#: there is one at scale k, is unique and exactly the one its text was (0.1 is 0.1).
AMOUNT_DIGITS = 15
#: the scales tried for a money column, in order: cents first (a column whose first rows are
#: whole amounts needs no second look when cents come later), then finer, then coarser
SCALES: tuple[int, ...] = (*range(2, AMOUNT_DIGITS + 1), 0, 1)
#: rows of the money column from which the engine guesses its scale before pass 1
_GUESS_AMOUNTS = 10_000


def decimal_sql(amt: str, scale: int) -> str:
    """The DOUBLE ``amt`` as DECIMAL(15, scale), rounded to the scale (NULL: does not fit)."""
    return f"TRY_CAST({amt} AS DECIMAL({AMOUNT_DIGITS}, {int(scale)}))"


def scale_counts_sql(amt: str) -> list[str]:
    """Aggregates counting, per scale of :data:`SCALES`, the finite amounts that are not
    exactly a DECIMAL(15, scale) (rounded to it they read back as another double)."""
    return [f"count(*) FILTER (WHERE isfinite({amt}) AND CAST({decimal_sql(amt, k)} AS DOUBLE)"
            f" IS DISTINCT FROM {amt})" for k in SCALES]


def choose_scale(inexact: Sequence[int]) -> int | None:
    """The column's scale: the first of :data:`SCALES` at which no amount is inexact
    (``inexact``: the counts of :func:`scale_counts_sql`); None when there is none -- the
    amounts are then summed with ``fsum`` (compensated summation, as the pandas engine's
    sums: the same to the cent, exact but for the doubles' own rounding)."""
    return next((k for k, n in zip(SCALES, inexact, strict=True) if not n), None)


def guess_scale(con: duckdb.DuckDBPyConnection, source_sql: str, columns: dict[str, str],
                column: str) -> int | None:
    """The scale of the money column decided from its first rows: a guess that pass 1
    confirms on every row (a row inexact at it sends the engine to decide from the whole
    column). None (``fsum``) is final: more rows cannot make the amounts decimals again."""
    amt = amount_expr(ident(column), columns[column])
    return choose_scale(one_row(con, f"SELECT {', '.join(scale_counts_sql('a'))} FROM "
                                     f"(SELECT {amt} AS a FROM {source_sql} "
                                     f"LIMIT {_GUESS_AMOUNTS})"))


@dataclass
class Check:
    """A row check: the column it names, the problem, the SQL condition of its rows."""

    column: str
    problem: str
    condition: str  # SQL over the parsed view, true for offending rows


def checks_for(
    columns: dict[str, str],
    plan: ReadPlan,
    customer_id_col: str,
    datetime_col: str,
    monetary_value_col: str | None,
    negative_amounts: NegativeAmounts,
) -> list[Check]:
    """The pandas engine's checks, in its order, as SQL conditions on the parsed view."""
    id_type = columns[customer_id_col].upper()
    missing_id = "id IS NULL"
    if id_type in FLOAT_TYPES:
        missing_id += " OR isnan(id)"
    if plan.text_ids:
        missing_id += f" OR regexp_matches(id, {literal(ID_BLANK_REGEX)})"
    kept = ""
    if monetary_value_col is not None and negative_amounts == "drop":
        kept = " AND NOT COALESCE(amt < 0, false)"
    checks = [Check(customer_id_col, Problem.MISSING_IDS, missing_id)]
    if plan.spaced:
        checks.append(Check(customer_id_col, Problem.spaced_ids(plan.spaced),
                             f"id IN (SELECT id FROM {SPACED_TABLE}){kept}"))
    missing_date = "d_raw IS NULL"
    if is_text_type(columns[datetime_col]):
        missing_date += f" OR regexp_matches(d_raw, {literal(BLANK_TEXT_REGEX)})"
    checks.append(Check(datetime_col, Problem.MISSING_DATES, missing_date))
    if plan.rival is not None:
        checks.append(Check(datetime_col, plan.ambiguous_problem,
                             "day0 IS NOT NULL AND day_alt IS NOT NULL AND day0 <> day_alt"))
    checks.append(Check(datetime_col, plan.date_problem,
                         f"NOT ({missing_date}) AND day IS NULL"))
    if monetary_value_col is not None:
        col = monetary_value_col
        numeric = is_numeric_type(columns[col])
        # text "nan" is "not a number" for pandas.to_numeric; a float NaN is a missing amount
        not_number = "a_raw IS NOT NULL AND amt IS NULL"
        if not numeric:
            not_number = "a_raw IS NOT NULL AND (amt IS NULL OR isnan(amt))"
        checks += [
            Check(col, Problem.AMOUNTS_NOT_NUMBERS, not_number),
            Check(col, Problem.MISSING_AMOUNTS, "amt IS NULL OR isnan(amt)"),
            Check(col, Problem.AMOUNTS_NOT_FINITE, "isinf(amt)"),
        ]
        if negative_amounts == "raise":
            checks.append(Check(col, Problem.NEGATIVE_AMOUNTS, "amt < 0"))
    return checks


def parsed_view_sql(
    source_sql: str,
    columns: dict[str, str],
    utc_offset: int | None,
    plan: ReadPlan,
    cols: list[str],
    monetary_value_col: str | None,
    extra: Sequence[str] = (),
) -> str:
    """The parsed transactions: ``id`` (stripped if asked), ``id_shown`` (as written),
    ``d_raw``, ``day0`` (the date read), ``day_alt`` (read with the rival layout of an
    ambiguous column), ``day`` (day0 within the years that can be summarised), ``a_raw``,
    ``amt``."""
    customer_id_col, datetime_col = cols[0], cols[1]
    raw_id = ident(customer_id_col)
    d_raw = ident(datetime_col)
    date_type = columns[datetime_col]
    id_expr = raw_id
    if plan.strip_ids:
        id_expr = f"regexp_replace({raw_id}, {literal(ID_STRIP_REGEX)}, '', 'g')"
    inner = [f"{id_expr} AS id", f"{raw_id} AS id_shown", f"{d_raw} AS d_raw"]
    twin_days: list[str] = []
    if plan.layout is None:
        inner.append(f"{day_expr(d_raw, date_type, utc_offset)} AS day0")
        inner.append("CAST(NULL AS VARCHAR) AS __t")
        day0, day_alt = "day0", "CAST(NULL AS DATE)"
    else:
        text = text_sql(d_raw, date_type)
        inner.append(f"{text} AS __t")
        read, day0 = read_layout(text, plan.layout, "__d")
        inner += read
        day_alt = "CAST(NULL AS DATE)"
        if plan.rival is not None:
            read, day_alt = read_layout(text, plan.rival, "__alt")
            inner += read
        for j, twin in enumerate(plan.twins):
            read, twin_day = read_layout(text, twin, f"__tw{j}")
            inner += read
            twin_days.append(f"{twin_day} AS twin{j}")
    if monetary_value_col is not None:
        a_raw = ident(monetary_value_col)
        inner += [
            f"{a_raw} AS a_raw",
            f"{amount_expr(a_raw, columns[monetary_value_col])} AS amt",
        ]
    else:
        inner += ["CAST(NULL AS VARCHAR) AS a_raw", "CAST(0.0 AS DOUBLE) AS amt"]
    extras = "".join(f", {ident(c)}" for c in extra)
    twins = "".join(f", {t}" for t in twin_days)
    twin_names = "".join(f", twin{j}" for j in range(len(twin_days)))
    # the amount as the column's DECIMAL; NULL where it is not exactly that decimal
    scale = plan.scale if monetary_value_col is not None else None
    dec, exact = "", ""
    if scale is not None:
        dec = f", {decimal_sql('amt', scale)} AS __dec"
        exact = ", CASE WHEN CAST(__dec AS DOUBLE) = amt THEN __dec END AS dec"
    middle = (f"SELECT id, id_shown, d_raw, __t, {day0} AS day0, {day_alt} AS day_alt{twins}, "
              f"a_raw, amt{dec}{extras} FROM (SELECT {', '.join(inner)}{extras} "
              f"FROM {source_sql})")
    # like the pandas engine: days outside the range of datetime64[ns] are unparseable
    in_range = f"day0 BETWEEN {date_literal(FIRST_DAY)} AND {date_literal(LAST_DAY)}"
    return (
        f"SELECT id, id_shown, d_raw, __t, day0, day_alt{twin_names}, "
        f"CASE WHEN {in_range} THEN day0 END AS day, a_raw, amt{exact}{extras} "
        f"FROM ({middle})"
    )


def money_sql(
    parsed: str,
    monetary_value_col: str | None,
    negative_amounts: NegativeAmounts,
    bad_key: str,
    scale: int | None = None,
    n_source: int | None = None,
) -> tuple[str, str, str]:
    """Pass 1's money and row counts: (the aggregates, after ``id, day``; the relation they
    read, ``parsed`` plus the column ``v``; the SQL, over the daily table, of a count that is
    non-zero when some row is bad).

    ``v`` is the amount to sum -- with a ``scale``, ``dec`` of the parsed view (the amount as
    DECIMAL(15, scale)), summed exactly as DECIMAL(38, scale); without one the double, summed
    by ``fsum`` -- and NULL for a bad amount: missing, not a number, not finite, not exactly a
    decimal at the scale, or negative (refused). So the checks cost no aggregate of their
    own: with the number of source rows known (``n_source``: a DataFrame, Parquet metadata)
    and negatives refused, the day's ``count(v)`` is its row count, and the rows' total short
    of ``n_source`` counts the bad amounts. Otherwise (CSV; negatives dropped by the WHERE
    clause unless the row is bad otherwise, to be refused as the pandas engine does) the
    day also counts ``count(*)``. A missing id or day is a group key (``bad_key``, checked
    per group). When the count is non-zero the engine names the problem, or -- when none is
    found -- decides the scale again from every row.
    """
    if monetary_value_col is None:
        value, where = "0.0", ""
    else:
        good = "isfinite(amt)" if scale is None else "dec IS NOT NULL"
        where = ""
        if negative_amounts == "drop":
            where = f" WHERE NOT COALESCE(amt < 0, false) OR amt = '-inf' OR {bad_key}"
        else:
            good += " AND amt >= 0"
        value = f"CASE WHEN {good} THEN {'amt' if scale is None else 'dec'} END"
    total = money_total_sql(scale)
    keyed = f"COALESCE(sum(n_rows) FILTER (WHERE {bad_key}), 0)"
    relation = f"(SELECT *, {value} AS v FROM {parsed}{where})"
    if n_source is not None and not where:
        return (f"{total}(v) AS amount, count(v) AS n_rows", relation,
                f"{int(n_source)} - COALESCE(sum(n_rows), 0) + {keyed}")
    return (f"{total}(v) AS amount, count(*) AS n_rows, count(*) - count(v) AS n_bad",
            relation, f"COALESCE(sum(n_bad), 0) + {keyed}")


def money_total_sql(scale: int | None) -> str:
    """The aggregate summing the daily table's spend: exact ``sum`` of DECIMAL(38, scale), or
    ``fsum`` of doubles (no scale). Cast to DOUBLE for the result, the pandas engine's dtype:
    the double nearest the exact decimal sum (below 2**53 units of the scale)."""
    return "fsum" if scale is None else "sum"


_UNITS = {"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 2**10,
          "mib": 2**20, "gib": 2**30, "tib": 2**40}


def half_limit(memory_limit: str) -> str | None:
    """Half a DuckDB memory limit such as "2GB" (in bytes, as DuckDB reads "1000000000B"),
    or None for a limit this does not read (a percentage, ...): left to DuckDB."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(memory_limit))
    if m is None or m.group(2).lower() not in _UNITS:
        return None
    return f"{int(float(m.group(1)) * _UNITS[m.group(2).lower()] / 2)}B"
