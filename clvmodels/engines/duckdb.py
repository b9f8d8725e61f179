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
per-customer summary is then computed from that table. Only when some rows are bad does a
second scan count each kind of problem (in the pandas engine's order) and fetch the first
offending rows for the message. Each call uses a fresh in-memory connection, closed
afterwards, whose spill files go to a private temporary directory.

Settings: ``memory_limit`` (default ``"2GB"``, or the ``CLVMODELS_DUCKDB_MEMORY_LIMIT``
environment variable) and ``threads`` (default: all cores, or ``CLVMODELS_DUCKDB_THREADS``).
"""

from __future__ import annotations

import datetime as dt
import glob as globlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from clvmodels._summary_rules import (
    DAY_COLUMNS,
    FIRST_DAY,
    HOLDOUT_DAY_COLUMNS,
    LAST_DAY,
    NegativeAmounts,
    Problem,
    all_negative_error,
    check_negative_amounts_option,
    check_observation_end,
    empty_error,
)
from clvmodels._validation import ValidationError, fail_rows, require_columns

__all__ = ["DEFAULT_MEMORY_LIMIT", "day_summary_duckdb"]

#: DuckDB memory limit used when neither the argument nor the environment variable is set.
DEFAULT_MEMORY_LIMIT = "2GB"
MEMORY_LIMIT_ENV = "CLVMODELS_DUCKDB_MEMORY_LIMIT"
THREADS_ENV = "CLVMODELS_DUCKDB_THREADS"

_MAX_SHOWN = 5
_SOURCE = "__clv_source"
_PARSED = "__clv_parsed"
_FILE_COL = "__clv_file"
_DAILY = "__clv_daily"

# pandas.read_csv's default missing-value strings, so both engines read the same CSV alike
_CSV_NA_STRINGS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)
# string formats tried (in order) after DuckDB's ISO-8601 cast; like pandas' "mixed" parser,
# month/day/year is preferred to day/month/year and the latter used when the former fails
_DATE_FORMATS = (
    "%Y/%m/%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
    "%m/%d/%Y", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
    "%d/%m/%Y", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M",
    "%m-%d-%Y", "%d.%m.%Y", "%d.%m.%Y %H:%M:%S",
    "%b %d %Y", "%b %d, %Y", "%B %d %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y",
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


def _day_expr(raw: str, sql_type: str, utc_offset: int | None = None) -> str:
    """SQL turning the raw date column into a DATE (NULL where it cannot be parsed).

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
    if t in _INTEGER_TYPES:
        # YYYYMMDD integers, as in the CDNOW files
        return f"CAST(try_strptime(CAST({raw} AS VARCHAR), '%Y%m%d') AS DATE)"
    if t in _FLOAT_TYPES:
        # YYYYMMDD read as floats (an integer column with gaps); other numbers are not dates
        text = f"CAST(CAST({raw} AS BIGINT) AS VARCHAR)"
        return (f"CASE WHEN {raw} = floor({raw}) AND abs({raw}) < 1e9 "
                f"THEN CAST(try_strptime({text}, '%Y%m%d') AS DATE) END")
    if t == "VARCHAR":
        text = f"trim({raw})"
        return (
            "CAST(COALESCE("
            f"TRY_CAST({text} AS TIMESTAMP), "
            f"CASE WHEN regexp_full_match({text}, '[0-9]{{8}}') "
            f"THEN try_strptime({text}, '%Y%m%d') END, "
            f"try_strptime({text}, {_list_literal(_DATE_FORMATS)})"
            ") AS DATE)"
        )
    return "CAST(NULL AS DATE)"  # other types (booleans, decimals, ...) are not dates


def _amount_expr(raw: str, sql_type: str) -> str:
    if _is_numeric_type(sql_type):
        return f"CAST({raw} AS DOUBLE)"
    return f"TRY_CAST({raw} AS DOUBLE)"


@dataclass
class _Check:
    column: str
    problem: str
    condition: str  # SQL over the parsed view, true for offending rows


def _checks(
    source: _Source,
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
    checks = [
        _Check(customer_id_col, Problem.MISSING_IDS, missing_id),
        _Check(datetime_col, Problem.MISSING_DATES, "d_raw IS NULL"),
        _Check(datetime_col, Problem.UNPARSEABLE_DATES, "d_raw IS NOT NULL AND day IS NULL"),
    ]
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


def _fail(
    con: duckdb.DuckDBPyConnection,
    source: _Source,
    check: _Check,
    n_bad: int,
    cols: list[str],
) -> None:
    """Raise the ValidationError for ``check``, showing the first offending rows."""
    if source.frame is not None:
        # same message as the pandas engine, with the caller's index labels: the row mask
        # comes back in row order (DuckDB preserves insertion order)
        mask = con.execute(
            f"SELECT COALESCE({check.condition}, false) AS m FROM {_PARSED}"
        ).fetchnumpy()["m"]
        fail_rows(source.frame, np.asarray(mask, dtype=bool), check.column, check.problem, cols)
    # files (or, should the mask above disagree, anything): the first rows DuckDB finds
    shown_as = dict(zip(["id", "d_raw", "a_raw"], cols, strict=False))
    select = [f"{k} AS {_ident(v)}" for k, v in shown_as.items()]
    select += [f"{_ident(k)} AS {_ident(v)}" for k, v in source.sample_extra]
    sample = con.execute(
        f"SELECT {', '.join(select)} FROM {_PARSED}_sample WHERE {check.condition} "
        f"LIMIT {_MAX_SHOWN}"
    ).df()
    if _FILE_COL in [k for k, _ in source.sample_extra]:
        sample["file"] = sample["file"].map(os.path.basename)
    more = f"\n... and {n_bad - len(sample)} more" if n_bad > len(sample) else ""
    raise ValidationError(
        f"column {check.column!r}: {check.problem}; {n_bad} offending row(s):\n"
        f"{sample.to_string(index=False)}{more}"
    )


def _parsed_view_sql(
    source_sql: str,
    source: _Source,
    cols: list[str],
    monetary_value_col: str | None,
    extra: Sequence[str] = (),
) -> str:
    customer_id_col, datetime_col = cols[0], cols[1]
    d_raw = _ident(datetime_col)
    select = [
        f"{_ident(customer_id_col)} AS id",
        f"{d_raw} AS d_raw",
        f"{_day_expr(d_raw, source.columns[datetime_col], source.utc_offset)} AS day0",
    ]
    if monetary_value_col is not None:
        a_raw = _ident(monetary_value_col)
        select += [
            f"{a_raw} AS a_raw",
            f"{_amount_expr(a_raw, source.columns[monetary_value_col])} AS amt",
        ]
    else:
        select += ["CAST(NULL AS VARCHAR) AS a_raw", "CAST(0.0 AS DOUBLE) AS amt"]
    extras = "".join(f", {_ident(c)}" for c in extra)
    # like the pandas engine: days outside the range of datetime64[ns] are unparseable
    in_range = f"day0 BETWEEN {_date_literal(FIRST_DAY)} AND {_date_literal(LAST_DAY)}"
    return (
        f"SELECT id, d_raw, CASE WHEN {in_range} THEN day0 END AS day, a_raw, amt{extras} "
        f"FROM (SELECT {', '.join(select)}{extras} FROM {source_sql})"
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


def day_summary_duckdb(
    source: pd.DataFrame | str | os.PathLike | Sequence[str | os.PathLike],
    *,
    observation_end: pd.Timestamp | None,
    calibration_end: pd.Timestamp | None,
    customer_id_col: str,
    datetime_col: str,
    monetary_value_col: str | None,
    negative_amounts: NegativeAmounts = "raise",
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
        Bad data (missing columns, empty input, missing ids / dates / amounts, unparseable
        dates, non-numeric / non-finite / negative amounts, observation_end or
        calibration_end before every transaction); the message names the column and shows
        the first offending rows with their count.
    """
    if monetary_value_col is not None:
        check_negative_amounts_option(negative_amounts)
    limit, n_threads = _settings(memory_limit, threads)
    cols = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])

    def attempt(full_sniff: bool = False) -> tuple[pd.DataFrame, pd.Timestamp]:
        return _run(
            source,
            observation_end=observation_end,
            calibration_end=calibration_end,
            cols=cols,
            monetary_value_col=monetary_value_col,
            negative_amounts=negative_amounts,
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


def _run(
    source: pd.DataFrame | str | os.PathLike | Sequence[str | os.PathLike],
    *,
    observation_end: pd.Timestamp | None,
    calibration_end: pd.Timestamp | None,
    cols: list[str],
    monetary_value_col: str | None,
    negative_amounts: NegativeAmounts,
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
            return _summarise(
                con,
                source,
                observation_end=observation_end,
                calibration_end=calibration_end,
                cols=cols,
                monetary_value_col=monetary_value_col,
                negative_amounts=negative_amounts,
                full_sniff=full_sniff,
            )
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
    negative_amounts: NegativeAmounts,
    full_sniff: bool,
) -> tuple[pd.DataFrame, pd.Timestamp]:
    customer_id_col, datetime_col = cols[0], cols[1]
    if isinstance(source_in, pd.DataFrame):
        source = _frame_source(con, source_in, cols)
    else:
        source = _file_source(con, source_in, cols, full_sniff=full_sniff)
    # tz-aware timestamps fall on the calendar day of their own time zone, as in pandas
    con.execute(f"SET TimeZone = {_literal(source.timezone or 'UTC')}")
    con.execute(
        f"CREATE TEMP VIEW {_PARSED} AS "
        + _parsed_view_sql(source.sql, source, cols, monetary_value_col)
    )
    extra = [k for k, _ in source.sample_extra]
    con.execute(
        f"CREATE TEMP VIEW {_PARSED}_sample AS "
        + _parsed_view_sql(source.sample_sql, source, cols, monetary_value_col, extra)
    )

    # pass 1 (the only full scan when the data are good): one row per (customer, day) with
    # the count of bad rows in it; negative amounts to drop are left out here
    checks = _checks(source, customer_id_col, datetime_col, monetary_value_col, negative_amounts)
    # true exactly when one of the checks is (a NULL date or amount, raw or parsed, makes the
    # parsed value NULL), but cheaper to evaluate on every row
    any_bad = "id IS NULL OR day IS NULL"
    if source.columns[customer_id_col].upper() in _FLOAT_TYPES:
        any_bad += " OR isnan(id)"
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
        f"SELECT id, day, fsum(amt) AS amount, count(*) FILTER (WHERE {any_bad}) AS n_bad "
        f"FROM {_PARSED} {where} GROUP BY id, day"
    )
    n_groups, n_bad_rows, first_day, last_day = _one_row(
        con, f"SELECT count(*), COALESCE(sum(n_bad), 0), min(day), max(day) FROM {_DAILY}"
    )
    if n_bad_rows:
        # something is wrong: count every problem in the pandas engine's order (a second
        # scan, only on this path) and report the first one with its offending rows
        con.execute("SET preserve_insertion_order = true")
        counts_sql = ", ".join(f"count(*) FILTER (WHERE {c.condition})" for c in checks)
        counts = _one_row(con, f"SELECT {counts_sql} FROM {_PARSED}")
        for check, n_bad in zip(checks, counts, strict=True):
            if n_bad:
                _fail(con, source, check, int(n_bad), cols)
    if n_groups == 0:
        if not _one_row(con, f"SELECT count(*) FROM {source.sql}")[0]:
            raise empty_error()
        raise all_negative_error(monetary_value_col)
    first = pd.Timestamp(first_day)
    obs_end = pd.Timestamp(last_day) if observation_end is None else observation_end
    check_observation_end(first, obs_end)
    check_observation_end(first, calibration_end, "calibration_end")

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
