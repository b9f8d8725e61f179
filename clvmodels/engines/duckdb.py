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

Money is summed exactly: each amount as a ``DECIMAL(15, k)``, ``k`` decided once for the
whole column, the sums as ``DECIMAL(38, k)``, returned as doubles (see
:mod:`.duckdb_read`); a column of amounts that are no such decimals is summed with ``fsum``.

The queries run in a worker thread, so that Ctrl-C (a ``KeyboardInterrupt`` in the main
thread) interrupts the running query at once and surfaces as a ``KeyboardInterrupt``
without a chained DuckDB traceback (:func:`run_interruptibly`).

Settings: ``memory_limit`` (default ``"2GB"``, or the ``CLVMODELS_DUCKDB_MEMORY_LIMIT``
environment variable), ``threads`` (default: all cores, or ``CLVMODELS_DUCKDB_THREADS``) and
``temp_directory``, the folder under which each call makes its private spill folder (default:
``CLVMODELS_DUCKDB_TEMP_DIRECTORY``, or the system's temporary folder). DuckDB keeps its memory
within ``memory_limit`` by spilling the aggregations there, so 100 million transactions of 20
million customers summarise in a process of under 3 GiB (``bench/duckdb_measurements.md``).
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

from clvmodels._date_rules import BLANK_TEXT_REGEX
from clvmodels._summary_rules import (
    DAY_COLUMNS,
    HOLDOUT_DAY_COLUMNS,
    ID_BLANK_REGEX,
    ID_EDGE_REGEX,
    ID_STRIP_REGEX,
    ImplausibleDates,
    NegativeAmounts,
    all_negative_error,
    check_date_options,
    check_holdout,
    check_negative_amounts_option,
    check_observation_end,
    empty_error,
    id_type_problem,
    period_end_problem,
    plausible_window,
    report_problem,
)
from clvmodels._validation import ValidationError, require_columns, rows_message
from clvmodels.engines.duckdb_read import (
    FLOAT_TYPES,
    TIMESTAMPTZ_TYPES,
    Check,
    ReadPlan,
    checks_for,
    choose_scale,
    date_literal,
    date_plan,
    guess_confirmed,
    guess_scale,
    half_limit,
    ident,
    is_text_type,
    list_literal,
    literal,
    money_sql,
    money_total_sql,
    one_row,
    parsed_view_sql,
    scale_counts_sql,
)
from clvmodels.engines.duckdb_read import SPACED_TABLE as _SPACED

__all__ = ["DEFAULT_MEMORY_LIMIT", "day_summary_duckdb", "run_interruptibly"]

T = TypeVar("T")

#: DuckDB memory limit used when neither the argument nor the environment variable is set.
DEFAULT_MEMORY_LIMIT = "2GB"
MEMORY_LIMIT_ENV = "CLVMODELS_DUCKDB_MEMORY_LIMIT"
THREADS_ENV = "CLVMODELS_DUCKDB_THREADS"
TEMP_DIRECTORY_ENV = "CLVMODELS_DUCKDB_TEMP_DIRECTORY"

_MAX_SHOWN = 5
_SOURCE = "__clv_source"
_PARSED = "__clv_parsed"
_FILE_COL = "__clv_file"
_LINE_COL = "__clv_line"
_DAILY = "__clv_daily"

# pandas.read_csv's default missing-value strings, so both engines read the same CSV alike
_CSV_NA_STRINGS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


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
    if columns.get(cols[1], "").upper() in TIMESTAMPTZ_TYPES:
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
    files = list_literal(paths)
    description = f"transactions in {paths[0] if len(paths) == 1 else paths}"
    if fmt == "parquet":
        sql = f"read_parquet({files}, union_by_name = true)"
        columns = _checked_columns(con, sql, cols, description)
        sample_sql = (
            f"read_parquet({files}, union_by_name = true, filename = {literal(_FILE_COL)}, "
            "file_row_number = true)"
        )
        extra = [(_FILE_COL, "file"), ("file_row_number", "row in file")]
        timezone = offset = None
        if columns[cols[1]].upper() in TIMESTAMPTZ_TYPES:
            timezone, offset = _tz_setting(_parquet_timezone(paths, cols[1]))
    else:
        options = f"header = true, union_by_name = true, nullstr = {list_literal(_CSV_NA_STRINGS)}"
        if full_sniff:
            options += ", sample_size = -1"
        columns = _checked_columns(con, f"read_csv({files}, {options})", cols, description)
        # dates and amounts are read as text and parsed / validated here, so a bad value far
        # down a file is reported like the pandas engine does instead of failing the reader
        text_cols = [c for c in cols[1:] if columns[c].upper() != "VARCHAR"]
        if text_cols:
            types = ", ".join(f"{literal(c)}: 'VARCHAR'" for c in text_cols)
            options += f", types = {{{types}}}"
            columns.update({c: "VARCHAR" for c in text_cols})
        sql = f"read_csv({files}, {options})"
        sample_sql = f"read_csv({files}, {options}, filename = {literal(_FILE_COL)})"
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


def _message(
    con: duckdb.DuckDBPyConnection,
    source: _Source,
    plan: ReadPlan,
    check: Check,
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
    plan: ReadPlan,
    check: Check,
    cols: list[str],
    monetary_value_col: str | None,
) -> pd.DataFrame:
    """The first offending rows of ``check`` (raw values, with their file and row / line)."""
    shown_as = dict(zip(["id_shown", "d_raw", "a_raw"], cols, strict=False))
    select = [f"{k} AS {ident(v)}" for k, v in shown_as.items()]
    select += [f"{ident(k)} AS {ident(v)}" for k, v in source.sample_extra]
    if source.csv_files is None:
        sample = con.execute(
            f"SELECT {', '.join(select)} FROM {_PARSED}_sample WHERE {check.condition} "
            f"LIMIT {_MAX_SHOWN}"
        ).df()
    else:
        # CSV files have no row numbers: number each file's rows in one thread (in file
        # order); the header is line 1. Only the files with offending rows are read again.
        files = [r[0] for r in con.execute(
            f"SELECT DISTINCT {ident(_FILE_COL)} FROM {_PARSED}_sample "
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
                        f"FROM {source.sample_sql} WHERE {ident(_FILE_COL)} = {literal(name)})")
            view = parsed_view_sql(numbered, source.columns, source.utc_offset, plan, cols,
                                   monetary_value_col, [_FILE_COL, _LINE_COL])
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
    plan: ReadPlan,
    check: Check,
    n_bad: int,
    cols: list[str],
    monetary_value_col: str | None,
) -> None:
    """Raise the ValidationError for ``check``, showing the first offending rows."""
    raise ValidationError(_message(con, source, plan, check, n_bad, cols, monetary_value_col))


# --------------------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------------------


def _temp_directory(temp_directory: str | os.PathLike | None) -> str | None:
    """The folder for the private spill folder of a call (None: the system's default)."""
    folder = os.fspath(temp_directory) if temp_directory is not None else (
        os.environ.get(TEMP_DIRECTORY_ENV) or None)
    if folder is not None and not os.path.isdir(folder):
        raise FileNotFoundError(f"temp_directory {folder!r} is not a folder")
    return folder


def _settings(memory_limit: str | None, threads: int | None) -> tuple[str, int]:
    limit = memory_limit or os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT
    if isinstance(threads, bool) or not isinstance(threads, (int, type(None))):
        raise TypeError(f"threads must be an integer, got {threads!r}")
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
            try:
                con.interrupt()
            except duckdb.Error:  # closed: the work is past its queries
                pass
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
    temp_directory: str | os.PathLike | None = None,
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
        ``CLVMODELS_DUCKDB_THREADS`` or every core. DuckDB stays within ``memory_limit``
        (plus the result) by spilling to disk; a malformed limit is refused by DuckDB.
    temp_directory
        The folder under which the call's private spill folder is made (and removed
        afterwards); default ``CLVMODELS_DUCKDB_TEMP_DIRECTORY`` or the system's temporary
        folder. Spilling 100 million transactions takes a few GB there.

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
    spill_parent = _temp_directory(temp_directory)
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
            temp_directory=spill_parent,
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
    temp_directory: str | None = None,
    full_sniff: bool = False,
) -> tuple[pd.DataFrame, pd.Timestamp]:
    with tempfile.TemporaryDirectory(prefix="clvmodels-duckdb-", dir=temp_directory) as spill:
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
                memory_limit=memory_limit,
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
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> tuple[pd.DataFrame, pd.Timestamp]:
    customer_id_col, datetime_col = cols[0], cols[1]
    negative_amounts = options.negative_amounts
    if isinstance(source_in, pd.DataFrame):
        source = _frame_source(con, source_in, cols)
    else:
        source = _file_source(con, source_in, cols, full_sniff=full_sniff)
    # tz-aware timestamps fall on the calendar day of their own time zone, as in pandas
    con.execute(f"SET TimeZone = {literal(source.timezone or 'UTC')}")
    # a text date column: its layout guessed from the first rows (the rule's decision on
    # them), confirmed on every row in pass 1; only when pass 1 refutes the guess is the
    # whole column scanned to decide (pass 0) and pass 1 run again with the decision
    plan = date_plan(con, source.sql, source.columns, datetime_col, options.date_format,
                     options.dayfirst, guess=True)
    plan.text_ids = is_text_type(source.columns[customer_id_col])
    plan.strip_ids = options.strip_ids and plan.text_ids
    if monetary_value_col is not None:  # the money column's DECIMAL scale, confirmed in pass 1
        plan.scale = guess_scale(con, source.sql, source.columns, monetary_value_col)
    # rows in the source when known without a scan (Parquet: metadata): see ``money_sql``
    n_source = len(source.frame) if source.frame is not None else None
    if source.frame is None and source.csv_files is None:
        n_source = int(one_row(con, f"SELECT count(*) FROM {source.sql}")[0])

    def create_views() -> None:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {_PARSED} AS "
            + parsed_view_sql(source.sql, source.columns, source.utc_offset, plan, cols,
                              monetary_value_col)
        )
        extra = [k for k, _ in source.sample_extra]
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {_PARSED}_sample AS "
            + parsed_view_sql(source.sample_sql, source.columns, source.utc_offset, plan, cols,
                              monetary_value_col, extra)
        )

    # pass 1 (the only full scan when the data are good): one row per (customer, day) with
    # its spend and the count of its rows; negative amounts to drop are left out here.
    # Validation adds almost no per-row work: a missing / NaN / blank id or a missing /
    # unreadable day is a group key (checked on the daily table, per group), and a bad
    # amount shows in the day's aggregates (``money_sql``). Only when some day is bad does
    # a second scan name the problem and its rows.
    bad_key = "id IS NULL OR day IS NULL"
    if source.columns[customer_id_col].upper() in FLOAT_TYPES:
        bad_key += " OR isnan(id)"

    def pass_one() -> tuple:
        create_views()
        confirm = []
        if plan.layout is not None:  # a text date column: confirm the guessed layout
            has_text = (f"__t IS NOT NULL AND NOT regexp_matches(__t, "
                        f"{literal(BLANK_TEXT_REGEX)})")
            confirm = [f"count(*) FILTER (WHERE {has_text} AND day0 IS NULL) AS n_nodate"]
            for j in range(len(plan.twins)):
                confirm += [
                    f"count(*) FILTER (WHERE {has_text} AND twin{j} IS NULL) AS n_nofit{j}",
                    f"count(*) FILTER (WHERE twin{j} <> day0) AS n_differ{j}",
                ]
        key = bad_key
        if plan.text_ids:
            key += f" OR regexp_matches(id, {literal(ID_BLANK_REGEX)})"
        money, relation, n_bad = money_sql(_PARSED, monetary_value_col, negative_amounts, key,
                                           plan.scale, n_source)
        con.execute("SET preserve_insertion_order = false")
        con.execute(f"DROP TABLE IF EXISTS {_DAILY}")
        con.execute(f"CREATE TEMP TABLE {_DAILY} AS SELECT id, day, {money}"
                    + "".join(f", {c}" for c in confirm) + f" FROM {relation} GROUP BY id, day")
        sums = "".join(f", COALESCE(sum({c.rsplit(' AS ', 1)[1]}), 0)" for c in confirm)
        row = one_row(con, f"SELECT count(*), {n_bad}, min(day), max(day){sums} FROM {_DAILY}")
        return tuple(row) + (0,) * (1 + 2 * len(plan.twins) - len(confirm))

    summary = pass_one()
    if not guess_confirmed(plan, summary[4:]):
        decided = date_plan(con, source.sql, source.columns, datetime_col,
                            options.date_format, options.dayfirst, guess=False)
        decided.text_ids, decided.strip_ids, decided.scale = (plan.text_ids, plan.strip_ids,
                                                              plan.scale)
        rerun = decided.layout != plan.layout or decided.rival is not None
        plan = decided
        if rerun:
            summary = pass_one()
    n_groups, n_bad_rows, first_day, last_day = summary[:4]
    if plan.text_ids and not plan.strip_ids:
        plan.spaced = _find_spaced_ids(con)
    if n_bad_rows or plan.spaced or plan.rival is not None:
        # something may be wrong: count every problem in the pandas engine's order (a
        # second scan, only on this path) and report the first one with its offending rows
        if plan.spaced:
            create_views()
        checks = checks_for(source.columns, plan, customer_id_col, datetime_col, monetary_value_col,
                         negative_amounts)
        con.execute("SET preserve_insertion_order = true")
        counts_sql = [f"count(*) FILTER (WHERE {c.condition})" for c in checks]
        if plan.scale is not None:  # in the same scan: the money scale, from every row
            counts_sql += scale_counts_sql("amt")
        counts = one_row(con, f"SELECT {', '.join(counts_sql)} FROM {_PARSED}")
        for check, n_bad in zip(checks, counts, strict=False):
            if n_bad:
                _fail(con, source, plan, check, int(n_bad), cols, monetary_value_col)
        if plan.scale is not None and choose_scale(counts[len(checks):]) != plan.scale:
            plan.scale = choose_scale(counts[len(checks):])  # the guess did not hold
            n_groups, n_bad_rows, first_day, last_day = pass_one()[:4]
    if n_groups == 0:
        if not one_row(con, f"SELECT count(*) FROM {source.sql}")[0]:
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
    in_cal = f" FILTER (WHERE day <= {date_literal(cut)})" if holdout else ""
    epoch = "DATE '1970-01-01'"
    total = money_total_sql(plan.scale)  # exact DECIMAL sums, returned as doubles
    fields = [
        f"count(*){in_cal} AS n_days",
        f"min(day){in_cal} - {epoch} AS first_day",
        f"max(day){in_cal} - {epoch} AS last_day",
        f"CAST({total}(amount){in_cal} AS DOUBLE) AS total",
        f"CAST(arg_min(amount, day){in_cal} AS DOUBLE) AS first_total",
    ]
    if holdout:
        not_cal = f" FILTER (WHERE day > {date_literal(cut)})"
        fields += [
            f"count(*){not_cal} AS n_days_holdout",
            f"COALESCE(CAST({total}(amount){not_cal} AS DOUBLE), 0.0) AS total_holdout",
        ]
    sql = (
        f"SELECT id, {', '.join(fields)} FROM {_DAILY} "
        f"WHERE day <= {date_literal(obs_end)} GROUP BY id"
        + (f" HAVING min(day) <= {date_literal(cut)}" if holdout else "")
        + " ORDER BY id"
    )
    # the result (about 50 bytes a customer) comes to Python beside DuckDB's own memory:
    # the last query gets half the limit, and DuckDB's memory is freed before pandas
    # builds the frame, so the process stays near memory_limit (+ the result)
    half = half_limit(memory_limit)
    if half is not None:
        con.execute(f"SET memory_limit = {literal(half)}")
    result = con.sql(sql).to_arrow_table()
    con.execute(f"DROP TABLE {_DAILY}")
    con.close()
    out = _to_day_frame(result, holdout)
    del result
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
    edge = literal(ID_EDGE_REGEX)
    if not one_row(con, f"SELECT count(*) FROM (SELECT DISTINCT id FROM {_DAILY} "
                         f"WHERE regexp_matches(id, {edge}))")[0]:
        return []
    strip = f"regexp_replace(id, {literal(ID_STRIP_REGEX)}, '', 'g')"
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
    plan: ReadPlan,
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
    end = date_literal(obs_end)
    epoch = "DATE '1970-01-01'"
    active = con.execute(
        f"SELECT DISTINCT day - {epoch} AS d FROM {_DAILY} WHERE day <= {end}"
    ).fetchnumpy()["d"]
    active = np.asarray(active, dtype=np.int64)
    window = plausible_window(active)
    lo = f"{epoch} + {window.low}"
    hi = f"{epoch} + {window.high}"
    n_early, n_late, first_out, last_out = one_row(
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
        check = Check(cols[1], window.problem(int(first_out), int(last_out), int(n_early),
                                               int(n_late)),
                       f"day <= {end} AND (day < {lo} OR day > {hi}){kept}")
        message = _message(con, source, plan, check, int(n_early) + int(n_late), cols,
                           monetary_value_col)
        report_problem(message, implausible_dates, notes)
    if observation_end_given:
        report_problem(period_end_problem(active, obs_end, "observation_end"),
                       implausible_dates, notes)


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
