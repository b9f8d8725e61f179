"""DuckDB engine for the contract summary: DataFrames, or CSV / Parquet files larger than memory.

:func:`contract_summary_duckdb` returns exactly what the pandas engine of
:func:`clvmodels.contract.contract_summary` returns, following the same rules
(:mod:`clvmodels._contract_rules`) with the same validation messages, computed in SQL:

* a path, glob, directory (its Parquet files) or list of CSV / Parquet files is read by
  DuckDB (never loaded into pandas); CSV dates are read as text and parsed in SQL by the
  rules (ISO 8601, or ``date_format``), Parquet dates keep their type (a tz-aware timestamp
  falls on its calendar day in its own time zone, read from the file's schema);
* a DataFrame's date columns are parsed by the rules' own parser
  (:func:`clvmodels._contract_rules.parse_days`, which knows pandas' dtypes) and the frame is
  handed to DuckDB as day numbers.

Then, in SQL: the row checks (counted in one pass, in the rules' order; only when some row
is bad are the first offending rows fetched for the message), each customer's records merged
into tenures with window functions, and periods paid / churn / cohort computed from calendar
anniversaries. Each call uses a fresh in-memory connection whose spill files go to a private
temporary directory. Settings: ``memory_limit`` (default "2GB" or the environment variable
``CLVMODELS_DUCKDB_MEMORY_LIMIT``) and ``threads`` (default every core, or
``CLVMODELS_DUCKDB_THREADS``).
"""

from __future__ import annotations

import glob as globlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from clvmodels._contract_rules import (
    BLANK_REGEX,
    CSV_NA_STRINGS,
    EDGE_SPACE_REGEX,
    ISO_DATE_REGEX,
    MAX_DAY,
    MAX_DAY_NUMBER,
    MIN_DAY,
    PERIODS,
    ContractProblem,
    check_date_format,
    check_id_types,
    check_options,
    finalise_contract,
    not_dates_error,
    observation_end_day,
    parse_days,
)
from clvmodels._validation import ValidationError, fail_rows, require_columns

__all__ = ["contract_summary_duckdb"]

MEMORY_LIMIT_ENV = "CLVMODELS_DUCKDB_MEMORY_LIMIT"
THREADS_ENV = "CLVMODELS_DUCKDB_THREADS"
DEFAULT_MEMORY_LIMIT = "2GB"

_MAX_SHOWN = 5
_SOURCE = "__clv_contract_source"
_PARSED = "__clv_contract_parsed"
_ROWS = "__clv_contract_rows"
_TENURES = "__clv_contract_tenures"
_FILE = "__clv_file"
_N_SAME = "count(*) OVER (PARTITION BY __id, __s_day, __e_day) AS __n_same"
_OPEN = MAX_DAY_NUMBER + 1_000_000  # end of an open tenure, later than any real day
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_TIMESTAMP_TYPES = {"TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATETIME"}
_TIMESTAMPTZ_TYPES = {"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"}
_FLOAT_TYPES = {"FLOAT", "DOUBLE", "REAL"}


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _one_row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    rows = con.execute(sql).fetchall()
    if len(rows) != 1:  # pragma: no cover - aggregates return one row
        raise RuntimeError(f"expected one row from DuckDB, got {len(rows)}")
    return tuple(rows[0])


# --------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------


@dataclass
class _Source:
    """The records as the SQL relation ``_SOURCE`` with columns ``__id, __s_missing, __s_day,
    __e_missing, __e_day`` (day numbers; NULL where not a day), ``__row`` (frames: the row's
    position) and, for files, the raw columns shown in messages."""

    frame: pd.DataFrame | None = None  # the caller's columns (frames): messages use its rows
    shown: list[tuple[str, str]] = field(default_factory=list)  # files: (sql expr, shown as)
    id_type: str = ""


def _settings(memory_limit: str | None, threads: int | None) -> tuple[str, int]:
    limit = memory_limit or os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT
    if threads is None:
        env = os.environ.get(THREADS_ENV)
        threads = int(env) if env else (os.cpu_count() or 1)
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    return str(limit), int(threads)


def _frame_source(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, cols: list[str],
                  date_format: str | None) -> _Source:
    """Parse the frame's dates by the rules and register compact columns with DuckDB."""
    require_columns(frame, cols, "subscriptions")
    if len(frame) == 0:
        raise ValidationError("subscriptions are empty: there is nothing to summarise")
    id_col, start_col, end_col = cols[0], cols[1], cols[-1]
    shown = frame[cols]
    ids = shown[id_col]
    # DuckDB cannot see which rows mix types; the rules check that on the frame
    fail_rows(shown, ids.isna().to_numpy(), id_col, ContractProblem.MISSING_IDS, cols)
    check_id_types(shown, id_col, cols)
    start = parse_days(shown[start_col], start_col, date_format)
    end = parse_days(shown[end_col], end_col, date_format)
    id_values = np.asarray(ids.astype(object) if isinstance(ids.dtype, pd.CategoricalDtype)
                           else ids.to_numpy())
    registered = pd.DataFrame({
        "__row": np.arange(len(frame), dtype=np.int64),
        "__id": id_values,
        "__s_missing": start.missing,
        "__s_day": pd.array(np.where(start.missing | start.bad, None, start.days),
                            dtype="Int64"),
        "__e_missing": end.missing,
        "__e_day": pd.array(np.where(end.missing | end.bad, None, end.days), dtype="Int64"),
    })
    con.register(_SOURCE, registered)
    id_type = str(con.execute(f"DESCRIBE SELECT __id FROM {_SOURCE}").fetchall()[0][1])
    return _Source(frame=shown, id_type=id_type)


def _resolve_paths(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    items = ([os.fspath(source)] if isinstance(source, str | os.PathLike)
             else [os.fspath(p) for p in source])
    if not items:
        raise ValueError("no subscription files given")
    paths = []
    for p in items:
        if os.path.isdir(p):
            p = os.path.join(p, "**", "*.parquet")
        magic = any(c in p for c in "*?[")
        if not magic and not os.path.exists(p):
            raise FileNotFoundError(f"no such file: {p}")
        if magic and not globlib.glob(p, recursive=True):
            raise FileNotFoundError(f"no files match {p!r}")
        paths.append(p)
    return paths


def _parquet_timezone(paths: list[str], column: str) -> str | None:
    """Time zone of a tz-aware timestamp column of the (first) Parquet file (its schema)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = next(iter(sorted(globlib.glob(paths[0], recursive=True))), paths[0])
    try:
        schema = pq.read_schema(first)
    except (OSError, pa.ArrowException):  # pragma: no cover - DuckDB read it already
        return None
    if column not in schema.names:  # pragma: no cover
        return None
    typ = schema.field(column).type
    return getattr(typ, "tz", None) if pa.types.is_timestamp(typ) else None


def _tz_day(raw: str, tz: str | None) -> str:
    """SQL: the calendar day of a TIMESTAMPTZ in its own zone (a name or a fixed offset)."""
    if tz and tz[:1] in "+-" and ":" in tz:
        hours, minutes = tz[1:].split(":")
        offset = (-1 if tz[0] == "-" else 1) * (int(hours) * 60 + int(minutes))
        return f"CAST(timezone('UTC', {raw}) + INTERVAL ({offset}) MINUTE AS DATE)"
    return f"CAST(timezone({_literal(tz or 'UTC')}, {raw}) AS DATE)"


def _day_sql(con: duckdb.DuckDBPyConnection, raw: str, sql_type: str, column: str,
             source_sql: str, tz: str | None, date_format: str | None) -> tuple[str, str]:
    """SQL (missing, day number or NULL) for a raw date column of the given DuckDB type."""
    t = sql_type.upper()
    if t == "VARCHAR":
        missing = f"({raw} IS NULL OR regexp_full_match({raw}, {_literal(BLANK_REGEX)}))"
        if date_format is None:
            text = f"regexp_extract({raw}, {_literal('^' + ISO_DATE_REGEX)}, 1)"
            day = (f"CASE WHEN regexp_full_match({raw}, {_literal(ISO_DATE_REGEX)}) "
                   f"THEN TRY_CAST({text} AS DATE) END")
        else:
            text = f"regexp_replace({raw}, {_literal(EDGE_SPACE_REGEX)}, '', 'g')"
            day = f"CAST(try_strptime({text}, {_literal(date_format)}) AS DATE)"
    elif t == "DATE":
        missing, day = f"({raw} IS NULL)", raw
    elif t in _TIMESTAMP_TYPES:
        missing, day = f"({raw} IS NULL)", f"CAST({raw} AS DATE)"
    elif t in _TIMESTAMPTZ_TYPES:
        missing, day = f"({raw} IS NULL)", _tz_day(raw, tz)
    else:
        # not dates -- unless every value is missing (an end column with no end at all)
        if _one_row(con, f"SELECT count({raw}) FROM {source_sql}")[0]:
            raise not_dates_error(column, sql_type)
        return "true", "CAST(NULL AS BIGINT)"
    lo, hi = (f"DATE '{d.isoformat()}'" for d in (MIN_DAY, MAX_DAY))
    number = (f"CASE WHEN ({day}) BETWEEN {lo} AND {hi} "
              f"THEN CAST(({day}) - DATE '1970-01-01' AS BIGINT) END")
    return missing, number


def _file_source(con: duckdb.DuckDBPyConnection,
                 source: str | os.PathLike | Sequence[str | os.PathLike],
                 cols: list[str], date_format: str | None, full_sniff: bool) -> _Source:
    paths = _resolve_paths(source)
    kinds = {"parquet" if p.lower().endswith(_PARQUET_SUFFIXES) else "csv" for p in paths}
    if len(kinds) > 1:
        raise ValueError(f"mix of Parquet and CSV files: {paths}; summarise them separately")
    files = "[" + ", ".join(_literal(p) for p in paths) + "]"
    description = f"subscriptions in {paths[0] if len(paths) == 1 else paths}"
    if kinds == {"parquet"}:
        sql = (f"read_parquet({files}, union_by_name = true, filename = {_literal(_FILE)}, "
               "file_row_number = true)")
        extra = [(_ident(_FILE), "file"), ("file_row_number", "row in file")]
    else:
        na = "[" + ", ".join(_literal(s) for s in CSV_NA_STRINGS) + "]"
        options = f"header = true, union_by_name = true, nullstr = {na}"
        if full_sniff:
            options += ", sample_size = -1"
        described = _describe(con, f"read_csv({files}, {options})")
        _require(described, cols, description)
        # dates are text here, parsed by the rules (never by DuckDB's per-file sniffing)
        types = ", ".join(f"{_literal(c)}: 'VARCHAR'" for c in dict.fromkeys(cols[1:]))
        sql = (f"read_csv({files}, {options}, types = {{{types}}}, "
               f"filename = {_literal(_FILE)})")
        extra = [(_ident(_FILE), "file")]
    columns = _describe(con, sql)
    _require(columns, cols, description)
    con.execute(f"CREATE TEMP VIEW {_SOURCE}_raw AS SELECT * FROM {sql}")
    raw_sql = f"{_SOURCE}_raw"
    id_col, start_col, end_col = cols[0], cols[1], cols[-1]
    parts = {}
    for name, col in (("s", start_col), ("e", end_col)):
        tz = (_parquet_timezone(paths, col)
              if columns[col].upper() in _TIMESTAMPTZ_TYPES and kinds == {"parquet"} else None)
        parts[name] = _day_sql(con, _ident(col), columns[col], col, raw_sql, tz, date_format)
    shown = [(_ident(c), c) for c in dict.fromkeys(cols)] + extra
    raw_cols = ", ".join(f"{expr} AS __shown_{i}" for i, (expr, _) in enumerate(shown))
    con.execute(
        f"CREATE TEMP VIEW {_SOURCE} AS SELECT CAST(NULL AS BIGINT) AS __row, "
        f"{_ident(id_col)} AS __id, {parts['s'][0]} AS __s_missing, "
        f"{parts['s'][1]} AS __s_day, {parts['e'][0]} AS __e_missing, "
        f"{parts['e'][1]} AS __e_day, {raw_cols} FROM {raw_sql}"
    )
    shown = [(f"__shown_{i}", name) for i, (_, name) in enumerate(shown)]
    return _Source(shown=shown, id_type=columns[id_col])


def _describe(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, str]:
    return {str(r[0]): str(r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {sql}").fetchall()}


def _require(columns: dict[str, str], cols: list[str], description: str) -> None:
    missing = [c for c in dict.fromkeys(cols) if c not in columns]
    if missing:
        raise ValidationError(
            f"{description} is missing column(s) {missing}; it has {list(columns)}")


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------


@dataclass
class _Check:
    column: str
    problem: str
    condition: str  # SQL over the rows table, true for offending rows


def _checks(cols: list[str], id_type: str, observation_day: int, observation_end: pd.Timestamp,
            date_format: str | None) -> list[_Check]:
    """The pandas engine's row checks, in its order (the rules' order)."""
    id_col, start_col, end_col = cols[0], cols[1], cols[-1]
    missing_id = "__id IS NULL" + (" OR isnan(__id)" if id_type.upper() in _FLOAT_TYPES
                                   else "")
    bad = ContractProblem.bad_dates(date_format)
    return [
        _Check(id_col, ContractProblem.MISSING_IDS, missing_id),
        _Check(start_col, ContractProblem.MISSING_STARTS, "__s_missing"),
        _Check(start_col, bad, "NOT __s_missing AND __s_day IS NULL"),
        _Check(end_col, bad, "NOT __e_missing AND __e_day IS NULL"),
        _Check(end_col, ContractProblem.END_BEFORE_START, "__e_day < __s_day"),
        _Check(start_col, ContractProblem.start_after(observation_end),
               f"__s_day > {observation_day}"),
        _Check(id_col, ContractProblem.DUPLICATES, "__n_same > 1"),
    ]


def _fail(con: duckdb.DuckDBPyConnection, source: _Source, check: _Check, n_bad: int) -> None:
    """Raise the ValidationError for ``check``, showing the first offending rows: the
    caller's rows (with their labels) for a frame, the first ones found for files."""
    if source.frame is not None:
        rows = con.execute(
            f"SELECT __row FROM {_ROWS} WHERE {check.condition}").fetchnumpy()["__row"]
        mask = np.zeros(len(source.frame), dtype=bool)
        mask[np.asarray(rows, dtype=np.int64)] = True
        fail_rows(source.frame, mask, check.column, check.problem, list(source.frame.columns))
    # files: scan again (only on this path) for the raw values of the first offending rows
    select = ", ".join(f"{expr} AS {_ident(name)}" for expr, name in source.shown)
    sample = con.execute(
        f"SELECT {select} FROM (SELECT *, {_N_SAME} FROM {_SOURCE}) "
        f"WHERE {check.condition} LIMIT {_MAX_SHOWN}").df()
    if "file" in sample.columns:
        sample["file"] = sample["file"].map(os.path.basename)
    more = f"\n... and {n_bad - len(sample)} more" if n_bad > len(sample) else ""
    raise ValidationError(
        f"column {check.column!r}: {check.problem}; {n_bad} offending row(s):\n"
        f"{sample.to_string(index=False)}{more}")


# --------------------------------------------------------------------------------------
# tenures and periods, in SQL
# --------------------------------------------------------------------------------------


def _periods_sql(period: str, observation_day: int) -> str:
    """SQL for periods paid from ``s``, ``e`` (day numbers; e >= _OPEN: open) by the rules."""
    unit, length = PERIODS[period]
    churned = f"(e <= {observation_day})"
    ref = f"(CASE WHEN {churned} THEN e ELSE {observation_day} END)"
    if unit == "day":
        return (f"1 + (CASE WHEN {churned} THEN greatest({ref} - s - 1, 0) "
                f"ELSE {ref} - s END) // {length}")
    sd = "(DATE '1970-01-01' + CAST(s AS INTEGER))"
    rd = f"(DATE '1970-01-01' + CAST({ref} AS INTEGER))"
    month_diff = f"((year({rd}) * 12 + month({rd})) - (year({sd}) * 12 + month({sd})))"
    anniversary = f"least(day({sd}), day(last_day({rd})))"
    renewals = (f"(CASE WHEN {churned} THEN greatest({month_diff} - "
                f"CASE WHEN {anniversary} >= day({rd}) THEN 1 ELSE 0 END, 0) "
                f"ELSE {month_diff} - CASE WHEN {anniversary} > day({rd}) THEN 1 ELSE 0 END END)")
    return f"1 + {renewals} // {length}"


def _cohort_sql(period: str) -> str:
    sd = "(DATE '1970-01-01' + CAST(s AS INTEGER))"
    if period == "W":
        return f"printf('%04d-W%02d', isoyear({sd}), week({sd}))"
    if period == "Y":
        return f"printf('%04d', year({sd}))"
    if period == "M":
        return f"printf('%04d-%02d', year({sd}), month({sd}))"
    return f"printf('%04d-%02d-%02d', year({sd}), month({sd}), day({sd}))"


# --------------------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------------------


def contract_summary_duckdb(
    subscriptions: pd.DataFrame | str | os.PathLike | Sequence[str | os.PathLike],
    *,
    customer_id_col: str = "customer_id",
    start_col: str = "start",
    end_col: str = "end",
    observation_end: object,
    period: str = "M",
    date_format: str | None = None,
    max_gap_days: int = 0,
    reactivations: str = "first",
    memory_limit: str | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """:func:`clvmodels.contract.contract_summary` computed by DuckDB (same arguments, same
    result, same errors), plus the DuckDB settings ``memory_limit`` and ``threads``."""
    check_options(period, reactivations, max_gap_days)
    check_date_format(date_format)
    obs = observation_end_day(observation_end)
    if not isinstance(subscriptions, pd.DataFrame | str | os.PathLike | list | tuple):
        raise TypeError(
            "subscriptions must be a pandas DataFrame or a path / glob / list of CSV or "
            f"Parquet files, got {type(subscriptions).__name__}")
    limit, n_threads = _settings(memory_limit, threads)
    cols = list(dict.fromkeys([customer_id_col, start_col, end_col]))

    def attempt(full_sniff: bool) -> pd.DataFrame:
        with tempfile.TemporaryDirectory(prefix="clvmodels-duckdb-") as spill:
            con = duckdb.connect(":memory:", config={
                "memory_limit": limit, "threads": n_threads, "temp_directory": spill})
            try:
                return _run(con, subscriptions, cols=cols, observation_end=obs, period=period,
                            date_format=date_format, max_gap_days=int(max_gap_days),
                            reactivations=reactivations, full_sniff=full_sniff)
            finally:
                con.close()

    try:
        return attempt(False)
    except (duckdb.ConversionException, duckdb.InvalidInputException) as exc:
        if isinstance(subscriptions, pd.DataFrame):
            raise ValidationError(f"could not read the subscriptions: {exc}") from exc
        # DuckDB guessed a CSV column's type from a sample of rows and a later value does
        # not fit: guess again from every row, once
        try:
            return attempt(True)
        except (duckdb.ConversionException, duckdb.InvalidInputException) as exc2:
            raise ValidationError(f"could not read the subscriptions: {exc2}") from exc2


def _run(con: duckdb.DuckDBPyConnection,
         subscriptions: pd.DataFrame | str | os.PathLike | Sequence[str | os.PathLike], *,
         cols: list[str], observation_end: pd.Timestamp, period: str, date_format: str | None,
         max_gap_days: int, reactivations: str, full_sniff: bool = False) -> pd.DataFrame:
    if isinstance(subscriptions, pd.DataFrame):
        source = _frame_source(con, subscriptions, cols, date_format)
    else:
        source = _file_source(con, subscriptions, cols, date_format, full_sniff)
    obs = int((observation_end - pd.Timestamp("1970-01-01")).days)
    # one pass over the records: parsed rows with the count of identical records
    con.execute(
        f"CREATE TEMP TABLE {_ROWS} AS SELECT __row, __id, __s_missing, __s_day, "
        f"__e_missing, __e_day, {_N_SAME} FROM {_SOURCE}"
    )
    n_rows = _one_row(con, f"SELECT count(*) FROM {_ROWS}")[0]
    if not n_rows:
        raise ValidationError("subscriptions are empty: there is nothing to summarise")
    checks = _checks(cols, source.id_type, obs, observation_end, date_format)
    counts = _one_row(con, "SELECT " + ", ".join(
        f"count(*) FILTER (WHERE {c.condition})" for c in checks) + f" FROM {_ROWS}")
    for check, n_bad in zip(checks, counts, strict=True):
        if n_bad:
            _fail(con, source, check, int(n_bad))

    # tenures: a record starting after the latest end so far (+ max_gap_days) opens one
    con.execute(f"""
        CREATE TEMP TABLE {_TENURES} AS
        WITH r AS (
            SELECT __id AS id, __s_day AS s, COALESCE(__e_day, {_OPEN}) AS e FROM {_ROWS}
        ), w AS (
            SELECT id, s, e, max(e) OVER (PARTITION BY id ORDER BY s, e
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS previous_end
            FROM r
        ), t AS (
            SELECT id, s, e, sum(CASE WHEN previous_end IS NULL
                                      OR s > previous_end + {max_gap_days} THEN 1 ELSE 0 END)
                OVER (PARTITION BY id ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS tenure
            FROM w
        )
        SELECT id, min(s) FILTER (WHERE tenure = 1) AS s, max(e) FILTER (WHERE tenure = 1) AS e,
               CAST(max(tenure) AS BIGINT) AS tenures
        FROM t GROUP BY id
    """)
    if reactivations == "raise":
        again = f"__id IN (SELECT id FROM {_TENURES} WHERE tenures > 1)"
        n_bad = _one_row(con, f"SELECT count(*) FROM {_ROWS} WHERE {again}")[0]
        if n_bad:
            _fail(con, source, _Check(cols[0], ContractProblem.REACTIVATED, again), int(n_bad))
    result = con.sql(
        f"SELECT id, CAST({_periods_sql(period, obs)} AS BIGINT) AS periods, "
        f"e <= {obs} AS churned, {_cohort_sql(period)} AS cohort, tenures "
        f"FROM {_TENURES} ORDER BY id"
    ).to_arrow_table()
    return finalise_contract(
        result.column("id").to_numpy(zero_copy_only=False),
        periods=result.column("periods").to_numpy(),
        churned=result.column("churned").to_numpy(zero_copy_only=False),
        cohort=result.column("cohort").to_numpy(zero_copy_only=False),
        tenures=result.column("tenures").to_numpy(),
        customer_id_col=cols[0],
        period=period,
        observation_end=observation_end,
    )
