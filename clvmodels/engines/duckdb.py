"""DuckDB engine for the RFM summary: DataFrames, or CSV / Parquet files larger than memory.

:func:`day_summary_duckdb` returns exactly what the pandas engine of :mod:`clvmodels.rfm`
returns (the day-level summary), with the same validation and error messages — the rules
both follow are in :mod:`clvmodels._summary_rules`, the one module of the package this engine
builds on besides :mod:`clvmodels._validation` — but computed by DuckDB:

* a DataFrame is registered with DuckDB (scanned in place, never copied);
* a path, glob, directory or list of paths of CSV or Parquet files is read by DuckDB's
  ``read_csv`` / ``read_parquet`` (with auto-detection); nothing is ever loaded into pandas
  whole, and the aggregations spill to disk when they do not fit in ``memory_limit``.

When the data are good, one streaming pass reads them: it aggregates to one row per
(customer, calendar day) in a temporary table, counting bad rows on the way, and the
per-customer summary is then computed from that table. A text date column is first scanned
once more (that column only) to decide its one format from the whole column
(:func:`clvmodels._summary_rules.decide_date_layout`, from counts computed here in SQL).
The checks that need the whole data -- ids that differ only by spaces, implausible dates,
an observation end long after the last transaction -- are computed from the daily table,
never by collecting rows to Python. Only when something is wrong does a second scan count
each kind of problem (in the pandas engine's order) and fetch the first offending rows for
the message: index labels for a DataFrame, the file and its line (CSV) or row (Parquet) for
files. Each call uses a fresh in-memory connection, closed afterwards, whose spill files go
to a private temporary directory.

The queries run in a worker thread, so that Ctrl-C (a ``KeyboardInterrupt`` in the main
thread) interrupts the running query at once and surfaces as a ``KeyboardInterrupt``
without a chained DuckDB traceback (:func:`run_interruptibly`).

Settings: ``memory_limit`` (default ``"2GB"``, or the ``CLVMODELS_DUCKDB_MEMORY_LIMIT``
environment variable) and ``threads`` (default: all cores, or ``CLVMODELS_DUCKDB_THREADS``).
"""

from __future__ import annotations

import datetime as dt
import glob as globlib
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from clvmodels._summary_rules import (
    DATE_LAYOUTS,
    DAY_COLUMNS,
    FIRST_DAY,
    HOLDOUT_DAY_COLUMNS,
    ID_BLANK_REGEX,
    ID_EDGE_REGEX,
    ID_STRIP_REGEX,
    LAST_DAY,
    MONTH_NUMBERS,
    DateDecision,
    DateLayout,
    ImplausibleDates,
    NegativeAmounts,
    Problem,
    all_negative_error,
    candidate_layouts,
    check_date_options,
    check_holdout,
    check_negative_amounts_option,
    check_observation_end,
    decide_date_layout,
    empty_error,
    id_type_problem,
    period_end_problem,
    plausible_window,
)
from clvmodels._validation import ValidationError, require_columns, rows_message

__all__ = ["DEFAULT_MEMORY_LIMIT", "day_summary_duckdb", "run_interruptibly"]

T = TypeVar("T")

#: DuckDB memory limit used when neither the argument nor the environment variable is set.
DEFAULT_MEMORY_LIMIT = "2GB"
MEMORY_LIMIT_ENV = "CLVMODELS_DUCKDB_MEMORY_LIMIT"
THREADS_ENV = "CLVMODELS_DUCKDB_THREADS"

_MAX_SHOWN = 5
_SOURCE = "__clv_source"
_PARSED = "__clv_parsed"
_FILE_COL = "__clv_file"
_LINE_COL = "__clv_line"
_DAILY = "__clv_daily"
_SPACED = "__clv_spaced_ids"
#: a text value that counts as missing (a blank date)
_BLANK_TEXT = "^[ \t]*$"

# pandas.read_csv's default missing-value strings, so both engines read the same CSV alike
_CSV_NA_STRINGS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)
_INTEGER_TYPES = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
    "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
}
_FLOAT_TYPES = {"FLOAT", "DOUBLE"}
_TIMESTAMP_TYPES = {"TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATETIME"}
_TIMESTAMPTZ_TYPES = {"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"}
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


# --------------------------------------------------------------------------------------
# small SQL helpers
# --------------------------------------------------------------------------------------


def _ident(name: str) -> str:
    """Quote an identifier for SQL."""
    return '"' + str(name).replace('"', '""') + '"'


def _literal(text: str) -> str:
    """Quote a string literal for SQL."""
    return "'" + str(text).replace("'", "''") + "'"


def _list_literal(items: Sequence[str]) -> str:
    return "[" + ", ".join(_literal(s) for s in items) + "]"


def _one_row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    """The single row of an aggregate query (fetched to the end, as DuckDB requires)."""
    rows = con.execute(sql).fetchall()
    if len(rows) != 1:
        raise RuntimeError(f"expected one row from DuckDB, got {len(rows)}")
    return tuple(rows[0])


def _date_literal(day: pd.Timestamp) -> str:
    return f"DATE '{day.date().isoformat()}'"


def _is_numeric_type(sql_type: str) -> bool:
    t = sql_type.upper()
    return t in _INTEGER_TYPES or t in _FLOAT_TYPES or t.startswith("DECIMAL") or t == "BOOLEAN"


# --------------------------------------------------------------------------------------
# sources: a registered DataFrame, or CSV / Parquet files
# --------------------------------------------------------------------------------------


@dataclass
class _Source:
    """Where the transactions come from, as SQL."""

    sql: str  # FROM-clause expression for the streaming passes
    columns: dict[str, str]  # column name -> DuckDB type
    sample_sql: str  # like sql, plus the columns of sample_extra
    frame: pd.DataFrame | None = None  # the registered DataFrame, if any
    sample_extra: list[tuple[str, str]] = field(default_factory=list)  # (sql col, shown as)
    timezone: str | None = None  # named time zone of a tz-aware datetime column
    utc_offset: int | None = None  # or its fixed UTC offset, in minutes
    description: str = "transactions"
    csv_files: list[str] | None = None  # CSV files (globs expanded): rows shown by line


def _has_magic(path: str) -> bool:
    return any(c in path for c in "*?[")


def _resolve_paths(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Paths / globs to read; directories stand for the Parquet files below them."""
    if isinstance(source, (str, os.PathLike)):
        items = [os.fspath(source)]
    else:
        items = [os.fspath(p) for p in source]
        if not items:
            raise ValueError("no transaction files given")
    paths = []
    for p in items:
        if os.path.isdir(p):
            p = os.path.join(p, "**", "*.parquet")
        elif not _has_magic(p) and not os.path.exists(p):
            raise FileNotFoundError(f"no such file: {p}")
        if _has_magic(p) and not globlib.glob(p, recursive=True):
            raise FileNotFoundError(f"no files match {p!r}")
        paths.append(p)
    return paths


def _file_format(paths: list[str]) -> str:
    kinds = {"parquet" if p.lower().endswith(_PARQUET_SUFFIXES) else "csv" for p in paths}
    if len(kinds) > 1:
        raise ValueError(f"mix of Parquet and CSV files: {paths}; summarise them separately")
    return kinds.pop()


def _parquet_timezone(paths: list[str], column: str) -> str | None:
    """Time zone of a tz-aware timestamp column of the (first) Parquet file (metadata only)."""
    import pyarrow.parquet as pq

    first = next(iter(sorted(globlib.glob(paths[0], recursive=True))), paths[0])
    try:
        schema = pq.read_schema(first)
    except (OSError, pa.ArrowException):
        return None
    if column not in schema.names:
        return None
    typ = schema.field(column).type
    return getattr(typ, "tz", None) if pa.types.is_timestamp(typ) else None


def _describe(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, str]:
    rows = con.execute(f"DESCRIBE SELECT * FROM {sql}").fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def _frame_source(
    con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, cols: list[str]
) -> _Source:
    require_columns(frame, cols, "transactions")
    if len(frame) == 0:
        raise empty_error()
    mixed = id_type_problem(frame[cols[0]])
    if mixed is not None:  # DuckDB would read 1 and "1" as the same text: check in pandas
        _raise(rows_message(frame[cols], mixed[0], cols[0], mixed[1], cols))
    registered = frame
    categorical = [c for c in cols if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if categorical:
        # DuckDB would sort categories in category order (ENUM); pandas sorts the values.
        # Only the columns used are passed on; only categorical ones are materialised.
        registered = pd.DataFrame(
            {c: (np.asarray(frame[c]) if c in categorical else frame[c]) for c in cols},
            copy=False,
        )
    con.register(_SOURCE, registered)
    columns = _describe(con, _SOURCE)
    timezone = offset = None
    if columns.get(cols[1], "").upper() in _TIMESTAMPTZ_TYPES:
        timezone, offset = _tz_setting(getattr(frame[cols[1]].dtype, "tz", None))
    return _Source(sql=_SOURCE, columns=columns, frame=frame, sample_sql=_SOURCE,
                   timezone=timezone, utc_offset=offset)


def _tz_setting(tz: object) -> tuple[str | None, int | None]:
    """(time zone name, None) for a named zone, (None, minutes) for a fixed UTC offset.

    ``tz`` is a tzinfo or an Arrow time zone string ('Europe/Paris', '+05:30'). DuckDB's
    ``TimeZone`` setting knows named zones only, so fixed offsets are applied in SQL.
    """
    if tz is None:
        return None, None
    if isinstance(tz, str):
        if tz[:1] in "+-" and ":" in tz:
            hours, minutes = tz[1:].split(":")
            sign = -1 if tz[0] == "-" else 1
            return None, sign * (int(hours) * 60 + int(minutes))
        return tz, None
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)  # zoneinfo / pytz
    if key:
        return str(key), None
    offset = tz.utcoffset(None) if isinstance(tz, dt.tzinfo) else None
    if isinstance(offset, dt.timedelta):  # datetime.timezone, fixed offsets
        return None, int(offset.total_seconds() // 60)
    return str(tz), None


def _file_source(
    con: duckdb.DuckDBPyConnection,
    source: str | os.PathLike | Sequence[str | os.PathLike],
    cols: list[str],
    *,
    full_sniff: bool = False,
) -> _Source:
    paths = _resolve_paths(source)
    fmt = _file_format(paths)
    files = _list_literal(paths)
    description = f"transactions in {paths[0] if len(paths) == 1 else paths}"
    if fmt == "parquet":
        sql = f"read_parquet({files}, union_by_name = true)"
        columns = _checked_columns(con, sql, cols, description)
        sample_sql = (
            f"read_parquet({files}, union_by_name = true, filename = {_literal(_FILE_COL)}, "
            "file_row_number = true)"
        )
        extra = [(_FILE_COL, "file"), ("file_row_number", "row in file")]
        timezone = offset = None
        if columns[cols[1]].upper() in _TIMESTAMPTZ_TYPES:
            timezone, offset = _tz_setting(_parquet_timezone(paths, cols[1]))
    else:
        options = f"header = true, union_by_name = true, nullstr = {_list_literal(_CSV_NA_STRINGS)}"
        if full_sniff:
            options += ", sample_size = -1"
        columns = _checked_columns(con, f"read_csv({files}, {options})", cols, description)
        # dates and amounts are read as text and parsed / validated here, so a bad value far
        # down a file is reported like the pandas engine does instead of failing the reader
        text_cols = [c for c in cols[1:] if columns[c].upper() != "VARCHAR"]
        if text_cols:
            types = ", ".join(f"{_literal(c)}: 'VARCHAR'" for c in text_cols)
            options += f", types = {{{types}}}"
            columns.update({c: "VARCHAR" for c in text_cols})
        sql = f"read_csv({files}, {options})"
        sample_sql = f"read_csv({files}, {options}, filename = {_literal(_FILE_COL)})"
        extra = [(_FILE_COL, "file")]
        timezone = offset = None
        csv_files = [f for p in paths
                     for f in (sorted(globlib.glob(p, recursive=True)) if _has_magic(p) else [p])]
        return _Source(sql=sql, columns=columns, sample_sql=sample_sql, sample_extra=extra,
                       description=description, csv_files=csv_files)
    return _Source(sql=sql, columns=columns, sample_sql=sample_sql, sample_extra=extra,
                   timezone=timezone, utc_offset=offset, description=description)


def _checked_columns(
    con: duckdb.DuckDBPyConnection, sql: str, cols: list[str], description: str
) -> dict[str, str]:
    columns = _describe(con, sql)
    missing = [c for c in dict.fromkeys(cols) if c not in columns]
    if missing:
        raise ValidationError(
            f"{description} is missing column(s) {missing}; it has {list(columns)}"
        )
    return columns


# --------------------------------------------------------------------------------------
# parsing and validation, in SQL
# --------------------------------------------------------------------------------------


def _raise(message: str | None) -> None:
    if message is not None:
        raise ValidationError(message)


def _is_text_type(sql_type: str) -> bool:
    return sql_type.upper() == "VARCHAR"


#: ISO dates with two-digit months and days, which DuckDB's own cast reads fast (the
#: general path extracts the fields with a regular expression)
_ISO_STRICT = DateLayout(
    "YYYY-MM-DD (2-digit)",
    "[ \t]*[0-9]{4}-[0-9]{2}-[0-9]{2}"
    + "(?:(?:T|[ \t]+)(?:[01]?[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.,][0-9]{1,9})?)?"
    "(?:[ \t]*(?i:[ap]\\.?m\\.?))?"
    "(?:[ \t]*(?:Z|(?i:utc|gmt)|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?))?)?[ \t]*",
)


def _text_sql(raw: str, sql_type: str) -> str:
    """The date column as text, for a column read with a layout (text, or numbers with a
    ``date_format``: integers as their digits, whole floats likewise, others NULL)."""
    t = sql_type.upper()
    if t in _INTEGER_TYPES:
        return f"CAST({raw} AS VARCHAR)"
    if t in _FLOAT_TYPES or t.startswith("DECIMAL"):
        value = f"CAST({raw} AS DOUBLE)"
        return (f"CASE WHEN {value} = floor({value}) AND abs({value}) < 1e18 "
                f"THEN CAST(CAST({value} AS BIGINT) AS VARCHAR) END")
    return raw


def _layout_struct_sql(text: str, layout: DateLayout) -> str:
    """The named fields of ``layout`` in ``text`` (a struct; fields '' where no match)."""
    return (f"regexp_extract({text}, {_literal(layout.full_regex)}, "
            f"{_list_literal(layout.groups)})")


def _layout_day_sql(x: str, layout: DateLayout) -> str:
    """DATE from the struct ``x`` of :func:`_layout_struct_sql` (NULL: no match / no day)."""

    def number(name: str) -> str:
        return f"TRY_CAST(NULLIF({x}.{name}, '') AS BIGINT)"

    year = number("y")
    if layout.two_digit_year:
        year = f"(CASE WHEN {year} < 69 THEN 2000 + {year} ELSE 1900 + {year} END)"
    if "b" in layout.groups:
        whens = " ".join(f"WHEN {_literal(k)} THEN {v}" for k, v in MONTH_NUMBERS.items())
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


def _day_expr(raw: str, sql_type: str, utc_offset: int | None = None) -> str:
    """SQL turning a typed date column into a DATE (NULL where it cannot be parsed); text
    columns are read with a layout (:func:`_parsed_view_sql`).

    A tz-aware timestamp falls on its calendar day in its own time zone, as in pandas: the
    session time zone is set to a named zone, and ``utc_offset`` minutes are added (to the
    UTC wall time) for a fixed offset.
    """
    t = sql_type.upper()
    if t == "DATE":
        return raw
    if t in _TIMESTAMPTZ_TYPES and utc_offset is not None:
        return f"CAST(CAST({raw} AS TIMESTAMP) + INTERVAL ({utc_offset}) MINUTE AS DATE)"
    if t in _TIMESTAMP_TYPES or t in _TIMESTAMPTZ_TYPES:
        return f"CAST({raw} AS DATE)"
    if t in _INTEGER_TYPES or t in _FLOAT_TYPES or t.startswith("DECIMAL"):
        # YYYYMMDD numbers (8 digits, whole), as in the CDNOW files
        v = f"CAST({raw} AS DOUBLE)"
        w = f"CAST({v} AS BIGINT)"
        day = _make_date_sql(f"{w} // 10000", f"{w} // 100 % 100", f"{w} % 100")
        return f"CASE WHEN {v} = floor({v}) AND {v} BETWEEN 10000000 AND 99999999 THEN {day} END"
    return "CAST(NULL AS DATE)"  # other types (booleans, ...) are not dates


def _amount_expr(raw: str, sql_type: str) -> str:
    if _is_numeric_type(sql_type):
        return f"CAST({raw} AS DOUBLE)"
    return f"TRY_CAST({raw} AS DOUBLE)"


@dataclass
class _Check:
    column: str
    problem: str
    condition: str  # SQL over the parsed view, true for offending rows


@dataclass
class _Plan:
    """How the columns are read: the date layout (text dates), its rival (an ambiguous
    column) and the id handling."""

    layout: DateLayout | None = None
    rival: DateLayout | None = None
    date_problem: str = Problem.UNPARSEABLE_DATES
    ambiguous_problem: str = ""
    text_ids: bool = False
    strip_ids: bool = False
    spaced: list[str] = field(default_factory=list)  # ids that clash but for spaces


def _checks(
    source: _Source,
    plan: _Plan,
    customer_id_col: str,
    datetime_col: str,
    monetary_value_col: str | None,
    negative_amounts: NegativeAmounts,
) -> list[_Check]:
    """The pandas engine's checks, in its order, as SQL conditions on the parsed view."""
    id_type = source.columns[customer_id_col].upper()
    missing_id = "id IS NULL"
    if id_type in _FLOAT_TYPES:
        missing_id += " OR isnan(id)"
    if plan.text_ids:
        missing_id += f" OR regexp_matches(id, {_literal(ID_BLANK_REGEX)})"
    kept = ""
    if monetary_value_col is not None and negative_amounts == "drop":
        kept = " AND NOT COALESCE(amt < 0, false)"
    checks = [_Check(customer_id_col, Problem.MISSING_IDS, missing_id)]
    if plan.spaced:
        checks.append(_Check(customer_id_col, Problem.spaced_ids(plan.spaced),
                             f"id IN (SELECT id FROM {_SPACED}){kept}"))
    missing_date = "d_raw IS NULL"
    if _is_text_type(source.columns[datetime_col]):
        missing_date += f" OR regexp_matches(d_raw, {_literal(_BLANK_TEXT)})"
    checks.append(_Check(datetime_col, Problem.MISSING_DATES, missing_date))
    if plan.rival is not None:
        checks.append(_Check(datetime_col, plan.ambiguous_problem,
                             "day0 IS NOT NULL AND day_alt IS NOT NULL AND day0 <> day_alt"))
    checks.append(_Check(datetime_col, plan.date_problem,
                         f"NOT ({missing_date}) AND day IS NULL"))
    if monetary_value_col is not None:
        col = monetary_value_col
        numeric = _is_numeric_type(source.columns[col])
        # text "nan" is "not a number" for pandas.to_numeric; a float NaN is a missing amount
        not_number = "a_raw IS NOT NULL AND amt IS NULL"
        if not numeric:
            not_number = "a_raw IS NOT NULL AND (amt IS NULL OR isnan(amt))"
        checks += [
            _Check(col, Problem.AMOUNTS_NOT_NUMBERS, not_number),
            _Check(col, Problem.MISSING_AMOUNTS, "amt IS NULL OR isnan(amt)"),
            _Check(col, Problem.AMOUNTS_NOT_FINITE, "isinf(amt)"),
        ]
        if negative_amounts == "raise":
            checks.append(_Check(col, Problem.NEGATIVE_AMOUNTS, "amt < 0"))
    return checks


def _message(
    con: duckdb.DuckDBPyConnection,
    source: _Source,
    plan: _Plan,
    check: _Check,
    n_bad: int,
    cols: list[str],
    monetary_value_col: str | None,
) -> str:
    """The message for ``check``, showing the first offending rows: by the caller's index
    labels for a DataFrame (exactly as the pandas engine), else by file and line / row."""
    con.execute("SET preserve_insertion_order = true")
    if source.frame is not None:
        # the row mask comes back in row order (DuckDB preserves insertion order)
        mask = con.execute(
            f"SELECT COALESCE({check.condition}, false) AS m FROM {_PARSED}"
        ).fetchnumpy()["m"]
        message = rows_message(source.frame[cols], np.asarray(mask, dtype=bool), check.column,
                               check.problem, cols)
        if message is not None:
            return message
    sample = _sample_rows(con, source, plan, check, cols, monetary_value_col)
    more = f"\n... and {n_bad - len(sample)} more" if n_bad > len(sample) else ""
    shown = sample.to_string(index="line" in sample.index.names)
    return (f"column {check.column!r}: {check.problem}; {n_bad} offending row(s):\n"
            f"{shown}{more}")


def _sample_rows(
    con: duckdb.DuckDBPyConnection,
    source: _Source,
    plan: _Plan,
    check: _Check,
    cols: list[str],
    monetary_value_col: str | None,
) -> pd.DataFrame:
    """The first offending rows of ``check`` (raw values, with their file and row / line)."""
    shown_as = dict(zip(["id_shown", "d_raw", "a_raw"], cols, strict=False))
    select = [f"{k} AS {_ident(v)}" for k, v in shown_as.items()]
    select += [f"{_ident(k)} AS {_ident(v)}" for k, v in source.sample_extra]
    if source.csv_files is None:
        sample = con.execute(
            f"SELECT {', '.join(select)} FROM {_PARSED}_sample WHERE {check.condition} "
            f"LIMIT {_MAX_SHOWN}"
        ).df()
    else:
        # CSV files have no row numbers: number each file's rows in one thread (in file
        # order); the header is line 1. Only the files with offending rows are read again.
        files = [r[0] for r in con.execute(
            f"SELECT DISTINCT {_ident(_FILE_COL)} FROM {_PARSED}_sample "
            f"WHERE {check.condition}").fetchall()]
        order = {f: i for i, f in enumerate(source.csv_files)}
        files.sort(key=lambda f: (order.get(f, len(order)), f))
        con.execute("SET threads = 1")
        parts = []
        left = _MAX_SHOWN
        for name in files:
            if left <= 0:
                break
            numbered = (f"(SELECT *, row_number() OVER () + 1 AS {_LINE_COL} "
                        f"FROM {source.sample_sql} WHERE {_ident(_FILE_COL)} = {_literal(name)})")
            view = _parsed_view_sql(numbered, source, plan, cols, monetary_value_col,
                                    [_FILE_COL, _LINE_COL])
            part = con.execute(
                f"SELECT {', '.join(select)}, {_LINE_COL} AS line FROM ({view}) "
                f"WHERE {check.condition} LIMIT {left}").df()
            parts.append(part)
            left -= len(part)
        sample = pd.concat(parts, ignore_index=True).set_index("line")
    if _FILE_COL in [k for k, _ in source.sample_extra]:
        sample["file"] = sample["file"].map(os.path.basename)
    return sample


def _fail(
    con: duckdb.DuckDBPyConnection,
    source: _Source,
    plan: _Plan,
    check: _Check,
    n_bad: int,
    cols: list[str],
    monetary_value_col: str | None,
) -> None:
    """Raise the ValidationError for ``check``, showing the first offending rows."""
    raise ValidationError(_message(con, source, plan, check, n_bad, cols, monetary_value_col))


def _parsed_view_sql(
    source_sql: str,
    source: _Source,
    plan: _Plan,
    cols: list[str],
    monetary_value_col: str | None,
    extra: Sequence[str] = (),
) -> str:
    """The parsed transactions: ``id`` (stripped if asked), ``id_shown`` (as written),
    ``d_raw``, ``day0`` (the date read), ``day_alt`` (read with the rival layout of an
    ambiguous column), ``day`` (day0 within the years that can be summarised), ``a_raw``,
    ``amt``."""
    customer_id_col, datetime_col = cols[0], cols[1]
    raw_id = _ident(customer_id_col)
    d_raw = _ident(datetime_col)
    date_type = source.columns[datetime_col]
    id_expr = raw_id
    if plan.strip_ids:
        id_expr = f"regexp_replace({raw_id}, {_literal(ID_STRIP_REGEX)}, '', 'g')"
    inner = [f"{id_expr} AS id", f"{raw_id} AS id_shown", f"{d_raw} AS d_raw"]
    if plan.layout is None:
        inner.append(f"{_day_expr(d_raw, date_type, source.utc_offset)} AS day0")
        day0, day_alt = "day0", "CAST(NULL AS DATE)"
    else:
        text = _text_sql(d_raw, date_type)
        fast = plan.layout == DATE_LAYOUTS[0]
        if fast:
            strict = f"regexp_full_match({text}, {_literal(_ISO_STRICT.regex)})"
            inner.append(f"CASE WHEN {strict} THEN TRY_CAST(substr(ltrim({text}, ' \t'), 1, 10)"
                         f" AS DATE) END AS __fast")
            inner.append(f"CASE WHEN NOT {strict} THEN "
                         f"{_layout_struct_sql(text, plan.layout)} END AS __dx")
            day0 = f"COALESCE(__fast, {_layout_day_sql('__dx', plan.layout)})"
        else:
            inner.append(f"{_layout_struct_sql(text, plan.layout)} AS __dx")
            day0 = _layout_day_sql("__dx", plan.layout)
        day_alt = "CAST(NULL AS DATE)"
        if plan.rival is not None:
            inner.append(f"{_layout_struct_sql(text, plan.rival)} AS __dx_alt")
            day_alt = _layout_day_sql("__dx_alt", plan.rival)
    if monetary_value_col is not None:
        a_raw = _ident(monetary_value_col)
        inner += [
            f"{a_raw} AS a_raw",
            f"{_amount_expr(a_raw, source.columns[monetary_value_col])} AS amt",
        ]
    else:
        inner += ["CAST(NULL AS VARCHAR) AS a_raw", "CAST(0.0 AS DOUBLE) AS amt"]
    extras = "".join(f", {_ident(c)}" for c in extra)
    middle = (f"SELECT id, id_shown, d_raw, {day0} AS day0, {day_alt} AS day_alt, a_raw, amt"
              f"{extras} FROM (SELECT {', '.join(inner)}{extras} FROM {source_sql})")
    # like the pandas engine: days outside the range of datetime64[ns] are unparseable
    in_range = f"day0 BETWEEN {_date_literal(FIRST_DAY)} AND {_date_literal(LAST_DAY)}"
    return (
        f"SELECT id, id_shown, d_raw, day0, day_alt, CASE WHEN {in_range} THEN day0 END AS day, "
        f"a_raw, amt{extras} FROM ({middle})"
    )


class _DuckStats:
    """:class:`clvmodels._summary_rules.DateStats` of a text date column, counted in SQL
    over every row (one scan for every layout at once; one more only for an ambiguity)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, source: _Source, column: str,
                 candidates: Sequence[DateLayout]) -> None:
        self.con = con
        self.candidates = list(candidates)
        self.text = _text_sql(_ident(column), source.columns[column])
        self.from_sql = (f"(SELECT {self.text} AS t FROM {source.sql}) "
                         f"WHERE t IS NOT NULL AND NOT regexp_matches(t, "
                         f"{_literal(_BLANK_TEXT)})")
        self._counts: dict[DateLayout, tuple[int, int]] | None = None
        self.n = self._scan()

    def _scan(self) -> int:
        fields, aggregates = [], ["count(*)"]
        for i, lay in enumerate(self.candidates):
            fields.append(f"CASE WHEN regexp_full_match(t, {_literal(lay.regex)}) "
                          f"THEN {_layout_struct_sql('t', lay)} END AS x{i}")
            aggregates += [f"count(x{i})", f"count({_layout_day_sql(f'x{i}', lay)})"]
        row = _one_row(self.con, f"SELECT {', '.join(aggregates)} FROM "
                                 f"(SELECT {', '.join(fields)} FROM {self.from_sql})")
        self._counts = {lay: (int(row[1 + 2 * i]), int(row[2 + 2 * i]))
                        for i, lay in enumerate(self.candidates)}
        return int(row[0])

    def structural(self, layouts: Sequence[DateLayout]) -> list[int]:
        assert self._counts is not None
        return [self._counts[lay][0] for lay in layouts]

    def valid(self, layouts: Sequence[DateLayout]) -> list[int]:
        assert self._counts is not None
        return [self._counts[lay][1] for lay in layouts]

    def differ(self, a: DateLayout, b: DateLayout) -> int:
        da = _layout_day_sql("xa", a)
        db = _layout_day_sql("xb", b)
        return int(_one_row(
            self.con,
            f"SELECT count(*) FROM (SELECT {da} AS da, {db} AS db FROM (SELECT "
            f"{_layout_struct_sql('t', a)} AS xa, {_layout_struct_sql('t', b)} AS xb "
            f"FROM {self.from_sql})) WHERE da IS NOT NULL AND db IS NOT NULL AND da <> db")[0])


def _date_plan(con: duckdb.DuckDBPyConnection, source: _Source, column: str,
               date_format: str | None, dayfirst: bool | None) -> _Plan:
    """The layout a date column is read with, decided by the shared rule."""
    sql_type = source.columns[column]
    text = _is_text_type(sql_type)
    numeric_with_format = date_format is not None and (
        sql_type.upper() in _INTEGER_TYPES or sql_type.upper() in _FLOAT_TYPES
        or sql_type.upper().startswith("DECIMAL"))
    if not (text or numeric_with_format):
        return _Plan()
    candidates = candidate_layouts(date_format, dayfirst)
    decision: DateDecision = decide_date_layout(_DuckStats(con, source, column, candidates),
                                                candidates)
    return _Plan(
        layout=decision.layout,
        rival=decision.ambiguous_with,
        date_problem=Problem.unparseable_dates(decision.layout,
                                               user_given=date_format is not None,
                                               matched=decision.matched),
        ambiguous_problem=(Problem.ambiguous_dates(decision.layout, decision.ambiguous_with)
                           if decision.ambiguous_with is not None else ""),
    )


# --------------------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------------------


def _settings(memory_limit: str | None, threads: int | None) -> tuple[str, int]:
    limit = memory_limit or os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT
    if threads is None:
        env = os.environ.get(THREADS_ENV)
        threads = int(env) if env else (os.cpu_count() or 1)
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    return str(limit), int(threads)


def run_interruptibly(con: duckdb.DuckDBPyConnection, work: Callable[[], T]) -> T:
    """Run ``work()`` (queries on ``con``) in a worker thread and wait for it.

    A query running in DuckDB does not see Ctrl-C (Python raises ``KeyboardInterrupt`` in
    the main thread only between bytecodes, and DuckDB does not check for it). Waiting in
    the main thread keeps it responsive: on ``KeyboardInterrupt`` the running query is
    interrupted (``con.interrupt()``), the worker is awaited, and a plain
    ``KeyboardInterrupt`` is raised -- no DuckDB error or traceback chained to it -- so a
    command line can exit with status 130 and one line. A DuckDB ``InterruptException``
    from the work itself (an interrupt from elsewhere) becomes a ``KeyboardInterrupt`` too.
    """
    result: dict[str, object] = {}
    done = threading.Event()  # not Thread.join: an interrupted join may report a live
    # thread as stopped (CPython's bpo-45274 handling), and the query would go on

    def target() -> None:
        try:
            result["value"] = work()
        except BaseException as exc:  # handed to the main thread
            result["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=target, name="clvmodels-duckdb", daemon=True)
    worker.start()
    try:
        while not done.wait(0.05):
            pass
    except KeyboardInterrupt:
        while not done.is_set():  # interrupt whichever query runs until the work stops
            con.interrupt()
            done.wait(0.05)
        raise KeyboardInterrupt("interrupted: the DuckDB summary was stopped") from None
    error = result.get("error")
    if isinstance(error, duckdb.InterruptException):
        raise KeyboardInterrupt("interrupted: the DuckDB summary was stopped") from None
    if isinstance(error, BaseException):
        raise error
    return result["value"]  # type: ignore[return-value]


def day_summary_duckdb(
    source: pd.DataFrame | str | os.PathLike | Sequence[str | os.PathLike],
    *,
    observation_end: pd.Timestamp | None,
    calibration_end: pd.Timestamp | None,
    customer_id_col: str,
    datetime_col: str,
    monetary_value_col: str | None,
    negative_amounts: NegativeAmounts = "raise",
    date_format: str | None = None,
    dayfirst: bool | None = None,
    strip_ids: bool = False,
    implausible_dates: ImplausibleDates = "raise",
    notes: list[str] | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Validate transactions and compute the per-customer day-level summary in DuckDB.

    Parameters
    ----------
    source
        A DataFrame (registered with DuckDB and scanned in place), or a path, glob, directory
        (its Parquet files) or list of paths of CSV or Parquet files; ``.parquet`` / ``.pq``
        files are Parquet, anything else CSV (with a header row, delimiter auto-detected).
    observation_end, calibration_end
        Normalised days (``None``: observation_end is the last transaction day; no holdout).
    customer_id_col, datetime_col, monetary_value_col
        Column names; ``monetary_value_col=None`` skips spend (amounts are then 0).
    negative_amounts
        "raise" refuses negative amounts, "drop" ignores those transactions.
    date_format, dayfirst, strip_ids, implausible_dates
        The rules' options (see :func:`clvmodels.rfm.rfm_summary`); problems kept with
        ``implausible_dates="warn"`` are appended to ``notes``.
    memory_limit, threads
        DuckDB settings; default ``CLVMODELS_DUCKDB_MEMORY_LIMIT`` or "2GB", and
        ``CLVMODELS_DUCKDB_THREADS`` or every core.

    Returns
    -------
    The same frame as the pandas engine (:func:`clvmodels.rfm.day_summary_pandas`):
    ``n_days, first_day, last_day, total, first_total`` [+ ``n_days_holdout,
    total_holdout``], index ``id`` sorted; and the observation end actually used.

    Raises
    ------
    ValidationError
        Bad data, by the rules of :mod:`clvmodels._summary_rules` and in the pandas engine's
        order; the message names the column and shows the first offending rows with their
        count.
    KeyboardInterrupt
        Ctrl-C while a query runs (the query is stopped first).
    """
    if monetary_value_col is not None:
        check_negative_amounts_option(negative_amounts)
    check_date_options(date_format, dayfirst)
    limit, n_threads = _settings(memory_limit, threads)
    cols = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])
    options = _Options(negative_amounts=negative_amounts, date_format=date_format,
                       dayfirst=dayfirst, strip_ids=bool(strip_ids),
                       implausible_dates=implausible_dates,
                       notes=notes if notes is not None else [])

    def attempt(full_sniff: bool = False) -> tuple[pd.DataFrame, pd.Timestamp]:
        return _run(
            source,
            observation_end=observation_end,
            calibration_end=calibration_end,
            cols=cols,
            monetary_value_col=monetary_value_col,
            options=options,
            memory_limit=limit,
            threads=n_threads,
            full_sniff=full_sniff,
        )

    if isinstance(source, pd.DataFrame):
        return attempt()
    if not isinstance(source, (str, os.PathLike, list, tuple)):
        raise TypeError(
            "transactions must be a pandas DataFrame or a path / glob / list of CSV or Parquet "
            f"files, got {type(source).__name__}"
        )
    try:
        return attempt()
    except (duckdb.ConversionException, duckdb.InvalidInputException) as exc:
        # DuckDB guesses CSV column types from a sample of rows; a value further down that
        # does not fit the guess fails the read. Guess again from every row, once.
        if _file_format(_resolve_paths(source)) != "csv":
            raise ValidationError(f"could not read the transactions: {exc}") from exc
        try:
            return attempt(full_sniff=True)
        except (duckdb.ConversionException, duckdb.InvalidInputException) as exc2:
            raise ValidationError(f"could not read the transactions: {exc2}") from exc2


@dataclass
class _Options:
    negative_amounts: NegativeAmounts
    date_format: str | None
    dayfirst: bool | None
    strip_ids: bool
    implausible_dates: ImplausibleDates
    notes: list[str]


def _run(
    source: pd.DataFrame | str | os.PathLike | Sequence[str | os.PathLike],
    *,
    observation_end: pd.Timestamp | None,
    calibration_end: pd.Timestamp | None,
    cols: list[str],
    monetary_value_col: str | None,
    options: _Options,
    memory_limit: str,
    threads: int,
    full_sniff: bool = False,
) -> tuple[pd.DataFrame, pd.Timestamp]:
    with tempfile.TemporaryDirectory(prefix="clvmodels-duckdb-") as spill:
        con = duckdb.connect(
            ":memory:",
            config={"memory_limit": memory_limit, "threads": threads, "temp_directory": spill},
        )
        try:
            con.execute("SET enable_progress_bar = false")  # the caller shows its own
            return run_interruptibly(con, lambda: _summarise(
                con,
                source,
                observation_end=observation_end,
                calibration_end=calibration_end,
                cols=cols,
                monetary_value_col=monetary_value_col,
                options=options,
                threads=threads,
                full_sniff=full_sniff,
            ))
        finally:
            con.close()


def _summarise(
    con: duckdb.DuckDBPyConnection,
    source_in: pd.DataFrame | str | os.PathLike | Sequence[str | os.PathLike],
    *,
    observation_end: pd.Timestamp | None,
    calibration_end: pd.Timestamp | None,
    cols: list[str],
    monetary_value_col: str | None,
    options: _Options,
    threads: int,
    full_sniff: bool,
) -> tuple[pd.DataFrame, pd.Timestamp]:
    customer_id_col, datetime_col = cols[0], cols[1]
    negative_amounts = options.negative_amounts
    if isinstance(source_in, pd.DataFrame):
        source = _frame_source(con, source_in, cols)
    else:
        source = _file_source(con, source_in, cols, full_sniff=full_sniff)
    # tz-aware timestamps fall on the calendar day of their own time zone, as in pandas
    con.execute(f"SET TimeZone = {_literal(source.timezone or 'UTC')}")
    # pass 0, for a text date column only: its one layout, from the whole column
    plan = _date_plan(con, source, datetime_col, options.date_format, options.dayfirst)
    plan.text_ids = _is_text_type(source.columns[customer_id_col])
    plan.strip_ids = options.strip_ids and plan.text_ids

    def create_views() -> None:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {_PARSED} AS "
            + _parsed_view_sql(source.sql, source, plan, cols, monetary_value_col)
        )
        extra = [k for k, _ in source.sample_extra]
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {_PARSED}_sample AS "
            + _parsed_view_sql(source.sample_sql, source, plan, cols, monetary_value_col,
                               extra)
        )

    create_views()

    # pass 1 (the only full scan when the data are good): one row per (customer, day) with
    # the count of rows and of bad rows in it; negative amounts to drop are left out here
    # true when one of the row checks is (a NULL date or amount, raw or parsed, makes the
    # parsed value NULL), but cheaper to evaluate on every row
    any_bad = "id IS NULL OR day IS NULL"
    if source.columns[customer_id_col].upper() in _FLOAT_TYPES:
        any_bad += " OR isnan(id)"
    if plan.text_ids:
        any_bad += f" OR regexp_matches(id, {_literal(ID_BLANK_REGEX)})"
    if monetary_value_col is not None:
        any_bad += " OR amt IS NULL OR NOT isfinite(amt)"
        if negative_amounts == "raise":
            any_bad += " OR amt < 0"
    where = ""
    if monetary_value_col is not None and negative_amounts == "drop":
        where = f"WHERE NOT COALESCE(amt < 0, false) OR ({any_bad})"
    con.execute("SET preserve_insertion_order = false")
    con.execute(
        f"CREATE TEMP TABLE {_DAILY} AS "
        f"SELECT id, day, fsum(amt) AS amount, count(*) AS n_rows, "
        f"count(*) FILTER (WHERE {any_bad}) AS n_bad "
        f"FROM {_PARSED} {where} GROUP BY id, day"
    )
    n_groups, n_bad_rows, first_day, last_day = _one_row(
        con, f"SELECT count(*), COALESCE(sum(n_bad), 0), min(day), max(day) FROM {_DAILY}"
    )
    if plan.text_ids and not plan.strip_ids:
        plan.spaced = _find_spaced_ids(con)
    if n_bad_rows or plan.spaced or plan.rival is not None:
        # something is wrong: count every problem in the pandas engine's order (a second
        # scan, only on this path) and report the first one with its offending rows
        if plan.spaced:
            create_views()
        checks = _checks(source, plan, customer_id_col, datetime_col, monetary_value_col,
                         negative_amounts)
        con.execute("SET preserve_insertion_order = true")
        counts_sql = ", ".join(f"count(*) FILTER (WHERE {c.condition})" for c in checks)
        counts = _one_row(con, f"SELECT {counts_sql} FROM {_PARSED}")
        for check, n_bad in zip(checks, counts, strict=True):
            if n_bad:
                _fail(con, source, plan, check, int(n_bad), cols, monetary_value_col)
    if n_groups == 0:
        if not _one_row(con, f"SELECT count(*) FROM {source.sql}")[0]:
            raise empty_error()
        raise all_negative_error(monetary_value_col)
    first = pd.Timestamp(first_day)
    last = pd.Timestamp(last_day)
    obs_end = last if observation_end is None else observation_end
    check_observation_end(first, obs_end)
    check_observation_end(first, calibration_end, "calibration_end")
    check_holdout(calibration_end, obs_end, last_day=last if observation_end is None else None)
    _check_plausible(con, source, plan, cols, monetary_value_col, negative_amounts,
                     obs_end=obs_end, observation_end_given=observation_end is not None,
                     implausible_dates=options.implausible_dates, notes=options.notes)
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = false")

    # pass 2: per customer, from the (much smaller) daily table
    holdout = calibration_end is not None
    cut = calibration_end if holdout else obs_end
    # without a holdout every kept day is in the calibration period: no FILTER needed
    in_cal = f" FILTER (WHERE day <= {_date_literal(cut)})" if holdout else ""
    epoch = "DATE '1970-01-01'"
    fields = [
        f"count(*){in_cal} AS n_days",
        f"min(day){in_cal} - {epoch} AS first_day",
        f"max(day){in_cal} - {epoch} AS last_day",
        f"fsum(amount){in_cal} AS total",
        f"arg_min(amount, day){in_cal} AS first_total",
    ]
    if holdout:
        not_cal = f" FILTER (WHERE day > {_date_literal(cut)})"
        fields += [
            f"count(*){not_cal} AS n_days_holdout",
            f"COALESCE(fsum(amount){not_cal}, 0.0) AS total_holdout",
        ]
    sql = (
        f"SELECT id, {', '.join(fields)} FROM {_DAILY} "
        f"WHERE day <= {_date_literal(obs_end)} GROUP BY id"
        + (f" HAVING min(day) <= {_date_literal(cut)}" if holdout else "")
        + " ORDER BY id"
    )
    result = con.sql(sql).to_arrow_table()
    out = _to_day_frame(result, holdout)
    if source.frame is not None and source.frame[customer_id_col].dtype == object:
        # numbers in an object column: DuckDB picks the narrowest type, pandas 64 bits
        kind = out.index.dtype.kind
        if kind in "iu":
            out.index = out.index.astype(np.int64)
        elif kind == "f":
            out.index = out.index.astype(np.float64)
    return out, obs_end


def _find_spaced_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Two ids (of the group first in order) when some text ids differ only by spaces at
    their ends; the temp table :data:`_SPACED` then lists every id of such a group (from
    the daily table: distinct ids). Empty when there are none."""
    edge = _literal(ID_EDGE_REGEX)
    if not _one_row(con, f"SELECT count(*) FROM (SELECT DISTINCT id FROM {_DAILY} "
                         f"WHERE regexp_matches(id, {edge}))")[0]:
        return []
    strip = f"regexp_replace(id, {_literal(ID_STRIP_REGEX)}, '', 'g')"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_SPACED} AS "
        f"WITH ids AS (SELECT DISTINCT id FROM {_DAILY} WHERE id IS NOT NULL), "
        f"keys AS (SELECT id, {strip} AS k, regexp_matches(id, {edge}) AS spaced FROM ids), "
        "clash AS (SELECT k FROM keys GROUP BY k HAVING count(*) > 1 AND bool_or(spaced)) "
        "SELECT id, k FROM keys WHERE k IN (SELECT k FROM clash)"
    )
    rows = con.execute(f"SELECT id FROM {_SPACED} WHERE k = (SELECT min(k) FROM {_SPACED}) "
                       "ORDER BY id LIMIT 2").fetchall()
    return [str(r[0]) for r in rows]


def _check_plausible(
    con: duckdb.DuckDBPyConnection,
    source: _Source,
    plan: _Plan,
    cols: list[str],
    monetary_value_col: str | None,
    negative_amounts: NegativeAmounts,
    *,
    obs_end: pd.Timestamp,
    observation_end_given: bool,
    implausible_dates: ImplausibleDates,
    notes: list[str],
) -> None:
    """The plausible-dates rules of :mod:`clvmodels._summary_rules`, from the daily table
    (only its distinct days come to Python)."""
    end = _date_literal(obs_end)
    epoch = "DATE '1970-01-01'"
    active = con.execute(
        f"SELECT DISTINCT day - {epoch} AS d FROM {_DAILY} WHERE day <= {end}"
    ).fetchnumpy()["d"]
    active = np.asarray(active, dtype=np.int64)
    window = plausible_window(active)
    lo = f"{epoch} + {window.low}"
    hi = f"{epoch} + {window.high}"
    n_early, n_late, first_out, last_out = _one_row(
        con,
        f"SELECT COALESCE(sum(n_rows) FILTER (WHERE day < {lo}), 0), "
        f"COALESCE(sum(n_rows) FILTER (WHERE day > {hi}), 0), "
        f"min(day - {epoch}) FILTER (WHERE day < {lo} OR day > {hi}), "
        f"max(day - {epoch}) FILTER (WHERE day < {lo} OR day > {hi}) "
        f"FROM {_DAILY} WHERE day <= {end} AND day IS NOT NULL")
    if n_early or n_late:
        kept = ""
        if monetary_value_col is not None and negative_amounts == "drop":
            kept = " AND NOT COALESCE(amt < 0, false)"
        check = _Check(cols[1], window.problem(int(first_out), int(last_out), int(n_early),
                                               int(n_late)),
                       f"day <= {end} AND (day < {lo} OR day > {hi}){kept}")
        message = _message(con, source, plan, check, int(n_early) + int(n_late), cols,
                           monetary_value_col)
        _report(message, implausible_dates, notes)
    if observation_end_given:
        _report(period_end_problem(active, obs_end, "observation_end"), implausible_dates,
                notes)


def _report(message: str | None, implausible_dates: str, notes: list[str]) -> None:
    if message is None:
        return
    if implausible_dates == "warn":
        notes.append(message)
    else:
        raise ValidationError(message)


def _to_day_frame(result: pa.Table, holdout: bool) -> pd.DataFrame:
    """DuckDB's result → the pandas engine's frame (column order, dtypes, index)."""

    def days(name: str) -> np.ndarray:  # days since 1970-01-01 → datetime64[ns]
        values = result.column(name).to_numpy().astype(np.int64)
        return values.astype("datetime64[D]").astype("datetime64[ns]")

    def numbers(name: str, dtype: type) -> np.ndarray:
        return np.asarray(result.column(name).to_numpy(), dtype=dtype)

    # like the pandas engine, whose ids come from ``Series.to_numpy()``
    index = pd.Index(result.column("id").to_numpy(zero_copy_only=False), name="id")
    data = {
        "n_days": numbers("n_days", np.int64),
        "first_day": days("first_day"),
        "last_day": days("last_day"),
        "total": numbers("total", np.float64),
        "first_total": numbers("first_total", np.float64),
    }
    if holdout:
        data["n_days_holdout"] = numbers("n_days_holdout", np.int64)
        data["total_holdout"] = numbers("total_holdout", np.float64)
    if not index.is_monotonic_increasing:  # safety net: a collation unlike Python's
        order = np.argsort(index.to_numpy(), kind="stable")
        index = index[order]
        data = {k: v[order] for k, v in data.items()}
    return pd.DataFrame(data, index=index)[DAY_COLUMNS + (HOLDOUT_DAY_COLUMNS if holdout else [])]
