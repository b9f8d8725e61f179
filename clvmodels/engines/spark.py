"""Spark engine for the RFM summary: the pandas engine's contract, as a Spark DataFrame.

NOTE for fitting and scoring on Spark frames (how the result carries what pandas keeps in
``attrs``): :func:`rfm_summary_spark` returns a lazy Spark DataFrame with the columns
``<customer_id_col>, frequency (long), recency (double), T (double)[, monetary_value
(double)]`` (+ ``frequency_holdout (long)[, monetary_value_holdout], duration_holdout
(double)`` for a calibration / holdout split), in no particular row order. What pandas keeps
in ``rfm.attrs`` (``time_unit``, ``observation_end``, ``calibration_end``, ``holdout_end``) is
stored in the *column metadata* of every column under the key :data:`META_KEY`
(``df.schema["T"].metadata["clvmodels"] == {"time_unit": "W", ...}``): read it with
:func:`summary_attrs`, which raises when a frame has none. Metadata survives ``select``,
``withColumn`` of other columns, filters and joins on these columns; a column recomputed
from an expression loses it (re-attach with :func:`with_summary_attrs`). The contract
summary's Spark engine (:mod:`clvmodels.engines.spark_contract`) does the same with
``<customer_id_col>, periods (long), churned (boolean), cohort (string), tenures (long)`` and
attrs ``period, time_unit, observation_end, data_kind``. A fitter can check a frame with
``summary_attrs(df)["time_unit"]`` and the schema's names / types before compressing with
``df.groupBy(<model columns>).count()``; ids are the first column (``df.columns[0]``).

The rules are those of :mod:`clvmodels._summary_rules` (and :mod:`clvmodels._date_rules`,
read in Spark SQL by :mod:`clvmodels.engines.spark_dates`), followed as the DuckDB engine
follows them: one pass aggregates the rows to one row per (customer, calendar day), counting
bad rows on the way; only when some are bad does a second pass count each problem (in the
pandas engine's order) and fetch the first offending rows (a few rows come to the driver,
never the data). Ids that differ only by spaces, implausible dates and an observation end
long after the data are decided from the daily table (only its distinct days come to the
driver). Money is summed as ``DECIMAL(38, 12)`` -- exact, whatever the order of the rows --
and divided once, in double, for the mean (``monetary_value``).

Sources: a Spark DataFrame; a pandas DataFrame (sent to Spark with Arrow; its offending rows
are named by the frame's index labels, exactly as the pandas engine does); a path, glob,
directory or list of CSV / Parquet files (read by Spark; CSV columns as text, parsed here;
offending rows shown with their file). A ``TimestampType`` column falls on its day in the
session time zone, except a Parquet column that records its own zone (read in that zone).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from clvmodels._summary_rules import (
    FIRST_DAY,
    ID_BLANK_REGEX,
    ID_EDGE_REGEX,
    ID_STRIP_REGEX,
    LAST_DAY,
    ImplausibleDates,
    NegativeAmounts,
    Problem,
    all_negative_error,
    check_date_options,
    check_holdout,
    check_negative_amounts_option,
    check_observation_end,
    empty_error,
    id_type_problem,
    numeric_object_ids,
    period_end_problem,
    plausible_window,
    report_problem,
    time_unit_days,
)
from clvmodels._validation import ValidationError, require_columns, rows_message
from clvmodels.engines.spark_dates import read_dates

__all__ = [
    "META_KEY",
    "MONEY_TYPE",
    "day_summary_spark",
    "finalise_day_summary_spark",
    "is_parquet_path",
    "is_uri",
    "quiet_pandas_warnings",
    "read_error",
    "session",
    "summary_attrs",
    "with_summary_attrs",
]

#: the column-metadata key under which a Spark summary records its ``attrs``
META_KEY = "clvmodels"
#: the exact type money is summed in (12 decimals, 26 digits before the point)
MONEY_TYPE = T.DecimalType(38, 12)

_MAX_SHOWN = 5
_ROW = "__clv_row"
_FILE = "__clv_file"
_EPOCH = pd.Timestamp("1970-01-01")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
# pandas.read_csv's default missing-value strings, so CSV files read alike in every engine
_CSV_NA_STRINGS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)


@contextlib.contextmanager
def quiet_pandas_warnings() -> Iterator[None]:
    """A context in which pyspark's warnings about pandas 3 (FutureWarning "does not yet
    fully support pandas >= 3.0.0" and the deprecated ``copy`` keyword) are not shown; what
    we use of the conversion (``createDataFrame`` / ``toPandas`` through Arrow) is tested on
    the pandas we install."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support pandas")
        warnings.filterwarnings("ignore", message=".*The copy keyword is deprecated")
        yield


def session(master: str = "local[*]", conf: Mapping[str, object] | None = None
            ) -> SparkSession:
    """The active Spark session, or a new one on ``master`` with ``conf`` (e.g.
    ``{"spark.sql.shuffle.partitions": 8}``; Arrow transfers to and from pandas are on
    unless ``conf`` says otherwise; on a ``local`` master the Python workers run this
    interpreter unless ``PYSPARK_PYTHON`` says otherwise). With a session already
    running, ``master`` is ignored (Spark has one session per process) and ``conf`` is
    set on it where Spark allows (SQL settings)."""
    active = SparkSession.getActiveSession()
    if active is not None:
        for key, value in (conf or {}).items():
            active.conf.set(key, str(value))
        return active
    if master.startswith("local"):
        # Python workers (scoring with mapInPandas) run this interpreter, not the first
        # python3 on PATH, which may lack the packages
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName("clvmodels")
    settings = {"spark.sql.execution.arrow.pyspark.enabled": "true", **(conf or {})}
    for key, value in settings.items():
        builder = builder.config(key, str(value))
    with quiet_pandas_warnings():  # pyspark warns about pandas 3 when the session starts
        return builder.getOrCreate()


# --------------------------------------------------------------------------------------
# attrs as column metadata
# --------------------------------------------------------------------------------------


def with_summary_attrs(frame: DataFrame, attrs: Mapping[str, str]) -> DataFrame:
    """``frame`` with ``attrs`` in every column's metadata (see the module docstring)."""
    meta = {META_KEY: dict(attrs)}
    return frame.select(*[F.col(c).alias(c, metadata={**frame.schema[c].metadata, **meta})
                          for c in frame.columns])


def summary_attrs(frame: DataFrame) -> dict[str, str]:
    """The ``attrs`` of a Spark summary (``time_unit``, ``observation_end``, ...), from its
    columns' metadata. Raises ``ValueError`` when no column carries them."""
    for field in frame.schema.fields:
        meta = field.metadata.get(META_KEY)
        if meta:
            return dict(meta)
    raise ValueError("this Spark DataFrame carries no clvmodels summary metadata (time unit, "
                     "observation end); make it with rfm_summary(..., engine='spark') or "
                     "attach them with clvmodels.engines.spark.with_summary_attrs")


# --------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------


@dataclass
class _Source:
    frame: DataFrame  # the caller's columns (+ _ROW / _FILE)
    pandas: pd.DataFrame | None = None  # the caller's pandas frame, for messages
    zone: str | None = None  # time zone recorded by a Parquet timestamp column
    extra: tuple[str, ...] = ()  # columns shown beside the offending rows


def _spark_of(transactions: object) -> SparkSession:
    if isinstance(transactions, DataFrame):
        return transactions.sparkSession
    return session()


def _pandas_source(spark: SparkSession, frame: pd.DataFrame, cols: list[str]) -> _Source:
    require_columns(frame, cols, "transactions")
    if len(frame) == 0:
        raise empty_error()
    mixed = id_type_problem(frame[cols[0]])
    if mixed is not None:  # Spark has one type per column: checked in pandas, as DuckDB does
        raise ValidationError(rows_message(frame[cols], mixed[0], cols[0], mixed[1], cols))
    data: dict[str, Any] = {}
    ids = frame[cols[0]]
    if isinstance(ids.dtype, pd.CategoricalDtype):
        ids = ids.astype(object)
    data[cols[0]] = numeric_object_ids(ids)
    data[cols[1]] = _plain_dates(frame[cols[1]])
    if len(cols) > 2:
        amount = frame[cols[2]]
        if pd.api.types.is_bool_dtype(amount.dtype):  # pandas reads True as 1.0
            amount = amount.astype(np.float64)
        elif not pd.api.types.is_numeric_dtype(amount.dtype):
            amount = amount.astype(object).map(lambda v: None if _is_na(v) else str(v))
        data[cols[2]] = amount
    data[_ROW] = np.arange(len(frame), dtype=np.int64)
    plain = pd.DataFrame({k: (v.to_numpy() if isinstance(v, pd.Series) else v)
                          for k, v in data.items()})
    with quiet_pandas_warnings():
        sdf = spark.createDataFrame(plain)
    if isinstance(data[cols[1]], _DayNumbers):  # back to calendar days, in Spark
        c = F.col(cols[1])
        sdf = sdf.withColumn(cols[1], F.when(~F.isnan(c), F.date_from_unix_date(c.cast("int"))))
    return _Source(sdf, pandas=frame)


class _DayNumbers(np.ndarray):
    """Calendar days of a datetime column as day numbers (float, NaN where missing): sent to
    Spark as numbers, so no time zone can move them, and made dates there."""


def _is_na(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _plain_dates(raw: pd.Series) -> object:
    """A pandas date column as Spark will read it by the rules: datetimes as their calendar
    day (a tz-aware one in its own zone), text as text, numbers as numbers."""
    if isinstance(raw.dtype, pd.CategoricalDtype):
        raw = raw.astype(object)
    if isinstance(raw.dtype, pd.ArrowDtype):
        from clvmodels._date_rules import plain_date_dtype

        raw = plain_date_dtype(raw)
    if pd.api.types.is_object_dtype(raw.dtype):
        kind = pd.api.types.infer_dtype(raw, skipna=True)
        if kind in ("datetime64", "datetime", "date"):
            days = [None if _is_na(v) else (v.date() if hasattr(v, "date") and callable(v.date)
                                            else v) for v in raw]
            return pd.Series(days, dtype=object)
        if kind in ("integer", "floating", "mixed-integer-float"):
            return pd.to_numeric(raw)
        return raw.map(lambda v: None if _is_na(v) else (v if isinstance(v, str) else str(v)))
    if pd.api.types.is_string_dtype(raw.dtype):
        return raw.astype(object).where(raw.notna(), None)
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        if getattr(raw.dt, "tz", None) is not None:
            raw = raw.dt.tz_localize(None)
        values = raw.to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT"))
        days = values.astype("datetime64[D]").astype(np.int64).astype(np.float64)
        days[np.isnat(values)] = np.nan
        return days.view(_DayNumbers)
    return raw


#: a path with a scheme (``s3://``, ``s3a://``, ``abfss://``, ``gs://``, ``hdfs://``,
#: ``dbfs:/``, ``file://`` ...): handed to Spark's reader as it is; two letters at least,
#: so a Windows drive (``C:/``) is a local path
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".txt", ".tsv")


def is_uri(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a file system by its scheme (``s3a://bucket/tx/``,
    ``dbfs:/mnt/tx``, ``file:///data/tx.csv``): Spark reads it, nothing checks it here."""
    return isinstance(path, str) and _URI.match(path) is not None


def is_parquet_path(path: str) -> bool:
    """Parquet or CSV, by the name: a Parquet suffix; for a URI also a directory or a glob
    without a CSV suffix (a lakehouse table is a directory of Parquet part files)."""
    name = path.rstrip("/").lower()
    if name.endswith(_PARQUET_SUFFIXES):
        return True
    return is_uri(path) and not name.endswith(_CSV_SUFFIXES)


def _resolve(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Local paths, globs and directories as the files they hold (checked here); URIs as
    they are (Spark lists and reads them: globs and directories included)."""
    import glob as globlib

    items = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [
        os.fspath(p) for p in paths]
    if not items:
        raise ValueError("no transaction files given")
    out = []
    for p in items:
        if is_uri(p):
            out.append(p)
        elif any(c in p for c in "*?["):
            found = sorted(globlib.glob(p, recursive=True))
            if not found:
                raise FileNotFoundError(f"no files match {p!r}")
            out += found
        elif os.path.isdir(p):
            found = sorted(globlib.glob(os.path.join(p, "**", "*.parquet"), recursive=True))
            if not found:
                raise FileNotFoundError(f"no Parquet files under {p}")
            out += found
        elif not os.path.exists(p):
            raise FileNotFoundError(f"no such file: {p}")
        else:
            out.append(p)
    return out


def read_error(paths: Sequence[str], exc: BaseException) -> OSError:
    """Spark's error reading ``paths`` as one line naming them (a missing path:
    FileNotFoundError; a scheme without its Hadoop connector: a hint)."""
    java = getattr(exc, "java_exception", None)
    reason = str(java.toString()) if java is not None else str(exc)
    reason = next((line.strip() for line in reason.splitlines() if line.strip()), "")
    where = paths[0] if len(paths) == 1 else list(paths)
    if "PATH_NOT_FOUND" in reason or "Path does not exist" in reason:
        return FileNotFoundError(f"Spark found nothing at {where}: {reason}")
    hint = ""
    if "No FileSystem for scheme" in reason or "ClassNotFoundException" in reason:
        scheme = paths[0].split(":", 1)[0]
        hint = (f" (this Spark has no file system for {scheme}:// -- add its Hadoop "
                "connector, e.g. --packages org.apache.hadoop:hadoop-aws:<hadoop version> "
                "for s3a://, or run on a cluster where it is configured)")
    return OSError(f"Spark could not read {where}: {reason}{hint}")


def _read(reader: Any, paths: list[str]) -> DataFrame:
    """``reader(paths)``; an error of Spark's on a URI named with the paths
    (:func:`read_error`)."""
    try:
        return reader(paths)
    except Exception as exc:  # AnalysisException, Py4JJavaError, IllegalArgumentException
        if not any(is_uri(p) for p in paths):
            raise
        raise read_error(paths, exc) from None


def _local_file(path: str) -> str | None:
    """A local file to look into for ``path`` (a file:// URI's, or a local path's); None
    for another scheme or nothing found."""
    import glob as globlib
    from urllib.parse import unquote, urlparse

    if is_uri(path):
        if not path.lower().startswith("file:"):
            return None
        path = unquote(urlparse(path).path)
    if any(c in path for c in "*?["):
        found = sorted(globlib.glob(path, recursive=True))
        path = found[0] if found else path
    if os.path.isdir(path):
        found = sorted(globlib.glob(os.path.join(path, "**", "*.parquet"), recursive=True))
        path = found[0] if found else path
    return path if os.path.isfile(path) else None


def _file_source(spark: SparkSession, paths: list[str], cols: list[str]) -> _Source:
    kinds = {is_parquet_path(p) for p in paths}
    if len(kinds) > 1:
        raise ValueError(f"mix of Parquet and CSV files: {paths}; summarise them separately")
    description = f"transactions in {paths[0] if len(paths) == 1 else paths}"
    zone = None
    if kinds.pop():
        sdf = _read(lambda ps: spark.read.option("mergeSchema", "true").parquet(*ps), paths)
        _check_columns(sdf, cols, description)
        local = _local_file(paths[0])
        zone = _parquet_zone(local, cols[1]) if local is not None else None
    else:  # every column as text (as read); ids that are all integers become numbers
        sdf = _read(lambda ps: spark.read.option("header", "true")
                    .option("inferSchema", "false").csv(ps), paths)
        _check_columns(sdf, cols, description)
        na = F.lit(list(_CSV_NA_STRINGS))
        sdf = sdf.select(*[F.when(~F.array_contains(na, F.col(c)), F.col(c)).alias(c)
                           for c in dict.fromkeys(cols)])
        sdf = _numeric_csv_ids(sdf, cols[0])
    sdf = sdf.select(*[F.col(c) for c in dict.fromkeys(cols)],
                     F.input_file_name().alias(_FILE))
    return _Source(sdf, zone=zone, extra=(_FILE,))


def _numeric_csv_ids(sdf: DataFrame, column: str) -> DataFrame:
    """Text ids of a CSV file that are all integers (or all numbers) as numbers, as pandas
    reads them (one aggregation over the id column)."""
    c = F.col(column)
    present = c.isNotNull()
    row = sdf.agg(F.count_if(present & ~c.rlike("^-?[0-9]{1,18}$")).alias("not_int"),
                  F.count_if(present & c.try_cast("double").isNull()).alias("not_num"),
                  F.count_if(present).alias("n")).first()
    if row["n"] and row["not_int"] == 0:
        return sdf.withColumn(column, c.try_cast("long"))
    if row["n"] and row["not_num"] == 0:
        return sdf.withColumn(column, c.try_cast("double"))
    return sdf


def _parquet_zone(path: str, column: str) -> str | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return None
    if column not in schema.names:
        return None
    typ = schema.field(column).type
    return getattr(typ, "tz", None) if pa.types.is_timestamp(typ) else None


def _check_columns(sdf: DataFrame, cols: list[str], description: str) -> None:
    missing = [c for c in dict.fromkeys(cols) if c not in sdf.columns]
    if missing:
        raise ValidationError(f"{description} is missing column(s) {missing}; it has "
                              f"{list(sdf.columns)}")


def _source(transactions: object, cols: list[str]) -> _Source:
    if isinstance(transactions, DataFrame):
        _check_columns(transactions, cols, "transactions")
        return _Source(transactions.select(*[F.col(c) for c in dict.fromkeys(cols)]))
    spark = _spark_of(transactions)
    if isinstance(transactions, pd.DataFrame):
        return _pandas_source(spark, transactions, cols)
    if isinstance(transactions, (str, os.PathLike, list, tuple)):
        return _file_source(spark, _resolve(transactions), cols)
    raise TypeError("transactions must be a Spark or pandas DataFrame or a path / glob / list "
                    f"of CSV or Parquet files, got {type(transactions).__name__}")


# --------------------------------------------------------------------------------------
# parsing and validation, in Spark SQL expressions
# --------------------------------------------------------------------------------------

_ID, _DAY, _AMT, _DEC, _BAD = "__clv_id", "__clv_day", "__clv_amt", "__clv_dec", "__clv_bad"


@dataclass
class _Check:
    column: str
    problem: str
    condition: Column


@dataclass
class _Parsed:
    frame: DataFrame  # the source's columns + _ID, _DAY, _AMT, _DEC, _BAD
    checks: list[_Check]  # row checks in the pandas engine's order (spaced ids: None here)
    text_ids: bool
    kept: Column  # rows summarised (negative amounts to drop are not)


def _parse(source: _Source, cols: list[str], monetary_value_col: str | None,
           negative_amounts: NegativeAmounts, date_format: str | None, dayfirst: bool | None,
           strip_ids: bool) -> _Parsed:
    frame = source.frame
    id_col, date_col = cols[0], cols[1]
    raw_id = F.col(id_col)
    id_type = frame.schema[id_col].dataType
    text_ids = isinstance(id_type, T.StringType)
    ident = raw_id
    missing_id = raw_id.isNull()
    if text_ids:
        if strip_ids:
            ident = F.regexp_replace(raw_id, ID_STRIP_REGEX, "")
        missing_id = missing_id | raw_id.rlike(ID_BLANK_REGEX)
    elif isinstance(id_type, (T.FloatType, T.DoubleType)):
        missing_id = missing_id | F.isnan(raw_id)
    reading = read_dates(frame, date_col, date_format=date_format, dayfirst=dayfirst,
                         zone=source.zone, first_day=str(FIRST_DAY.date()),
                         last_day=str(LAST_DAY.date()))
    checks = [_Check(id_col, Problem.MISSING_IDS, missing_id),
              _Check(date_col, Problem.MISSING_DATES, reading.missing)]
    if reading.ambiguous is not None and reading.decision is not None:
        checks.append(_Check(date_col, Problem.ambiguous_dates(
            reading.decision.layout, reading.decision.ambiguous_with), reading.ambiguous))
    checks.append(_Check(date_col, Problem.unparseable_dates(
        reading.decision, user_given=date_format is not None), reading.bad))
    bad = missing_id | reading.missing | reading.bad
    kept = F.lit(True)
    if monetary_value_col is not None:
        raw_amt = F.col(monetary_value_col)
        amt_type = frame.schema[monetary_value_col].dataType
        if isinstance(amt_type, T.StringType):
            amt = raw_amt.try_cast("double")
            not_number = raw_amt.isNotNull() & amt.isNull()
        elif isinstance(amt_type, T.NumericType):
            amt = raw_amt.cast("double")
            not_number = F.lit(False)
        else:  # booleans, dates, ...: not amounts
            amt = F.lit(None).cast("double")
            not_number = raw_amt.isNotNull()
        missing_amt = amt.isNull() | F.isnan(amt)
        infinite = amt.isin(float("inf"), float("-inf"))
        negative = F.coalesce(amt < 0, F.lit(False))
        checks += [_Check(monetary_value_col, Problem.AMOUNTS_NOT_NUMBERS, not_number),
                   _Check(monetary_value_col, Problem.MISSING_AMOUNTS, missing_amt),
                   _Check(monetary_value_col, Problem.AMOUNTS_NOT_FINITE, infinite)]
        bad = bad | not_number | missing_amt | infinite
        if negative_amounts == "raise":
            checks.append(_Check(monetary_value_col, Problem.NEGATIVE_AMOUNTS, negative))
            bad = bad | negative
        else:
            check_negative_amounts_option(negative_amounts)
            kept = ~negative
        exact = (raw_amt.try_cast(MONEY_TYPE) if isinstance(amt_type, T.DecimalType)
                 else amt.try_cast(MONEY_TYPE))
        money = F.when(~missing_amt & ~infinite, exact)
    else:
        amt = F.lit(0.0)
        money = F.lit(0).cast(MONEY_TYPE)
    parsed = frame.select("*", ident.alias(_ID), reading.day.alias(_DAY), amt.alias(_AMT),
                          money.alias(_DEC), bad.alias(_BAD))
    # conditions refer to the source's columns, which the parsed frame keeps
    return _Parsed(parsed, checks, text_ids, kept)


def _message(source: _Source, parsed: DataFrame, check: _Check, n_bad: int,
             cols: list[str]) -> str:
    """``column '<name>': <problem>; <n> offending row(s): ...``: for a pandas source by its
    index labels, exactly as the pandas engine; else the first rows with their file."""
    condition = F.coalesce(check.condition, F.lit(False))
    if source.pandas is not None:
        rows = parsed.where(condition).select(_ROW)
        with quiet_pandas_warnings():
            positions = rows.toPandas()[_ROW].to_numpy(dtype=np.int64)
        mask = np.zeros(len(source.pandas), dtype=bool)
        mask[positions] = True
        message = rows_message(source.pandas[cols], mask, check.column, check.problem, cols)
        if message is not None:
            return message
    shown = [F.col(c) for c in dict.fromkeys(cols)] + [
        F.col(c).alias("file") for c in source.extra if c == _FILE]
    with quiet_pandas_warnings():
        sample = parsed.where(condition).select(*shown).limit(_MAX_SHOWN).toPandas()
    more = f"\n... and {n_bad - len(sample)} more" if n_bad > len(sample) else ""
    return (f"column {check.column!r}: {check.problem}; {n_bad} offending row(s):\n"
            f"{sample.to_string(index=False)}{more}")


def _spaced_ids(daily: DataFrame) -> tuple[DataFrame | None, list[str]]:
    """The text ids that differ from another only by spaces at their ends (a frame of
    ``_ID``) and two of the group first in order; (None, []) when there are none."""
    ids = daily.where(F.col(_ID).isNotNull()).select(_ID).distinct()
    keys = ids.select(_ID, F.regexp_replace(_ID, ID_STRIP_REGEX, "").alias("k"),
                      F.col(_ID).rlike(ID_EDGE_REGEX).alias("spaced"))
    if keys.where("spaced").limit(1).count() == 0:
        return None, []
    clash = keys.groupBy("k").agg(F.count("*").alias("n"), F.bool_or("spaced").alias("s")) \
        .where("n > 1 AND s").select("k")
    spaced = keys.join(clash, "k").select(_ID, "k")
    first = spaced.agg(F.min("k")).first()[0]
    if first is None:
        return None, []
    examples = [r[0] for r in spaced.where(F.col("k") == first).orderBy(_ID)
                .select(_ID).limit(2).collect()]
    return spaced.select(_ID), [str(e) for e in examples]


# --------------------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------------------


def day_summary_spark(
    transactions: object,
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
) -> tuple[DataFrame, pd.Timestamp]:
    """The day-level summary (:data:`clvmodels._summary_rules.DAY_COLUMNS`, with the id in
    column ``id``; days as ``DateType``; ``total`` and ``first_total`` as
    :data:`MONEY_TYPE`) as a lazy Spark DataFrame, and the observation end used. Validates
    by the rules of :mod:`clvmodels._summary_rules`; the arguments are those of
    :data:`clvmodels.rfm.DaySummaryEngine`."""
    check_date_options(date_format, dayfirst)
    cols = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])
    with quiet_pandas_warnings():
        return _day_summary(transactions, cols=cols, observation_end=observation_end,
                            calibration_end=calibration_end,
                            monetary_value_col=monetary_value_col,
                            negative_amounts=negative_amounts, date_format=date_format,
                            dayfirst=dayfirst, strip_ids=strip_ids,
                            implausible_dates=implausible_dates, notes=notes)


def _day_summary(transactions: object, *, cols: list[str],
                 observation_end: pd.Timestamp | None, calibration_end: pd.Timestamp | None,
                 monetary_value_col: str | None, negative_amounts: NegativeAmounts,
                 date_format: str | None, dayfirst: bool | None, strip_ids: bool,
                 implausible_dates: ImplausibleDates, notes: list[str] | None,
                 ) -> tuple[DataFrame, pd.Timestamp]:
    source = _source(transactions, cols)
    parsed = _parse(source, cols, monetary_value_col, negative_amounts, date_format, dayfirst,
                    strip_ids)
    rows = parsed.frame.where(parsed.kept | F.col(_BAD))
    daily = rows.groupBy(_ID, _DAY).agg(F.sum(_DEC).alias("amount"),
                                        F.count("*").alias("n_rows"),
                                        F.count_if(F.col(_BAD)).alias("n_bad"))
    return _validate_and_summarise(
        source, parsed, daily, cols=cols, monetary_value_col=monetary_value_col,
        observation_end=observation_end, calibration_end=calibration_end,
        strip_ids=strip_ids, implausible_dates=implausible_dates,
        notes=notes if notes is not None else [])


def _validate_and_summarise(
    source: _Source, parsed: _Parsed, daily: DataFrame, *, cols: list[str],
    monetary_value_col: str | None, observation_end: pd.Timestamp | None,
    calibration_end: pd.Timestamp | None, strip_ids: bool,
    implausible_dates: ImplausibleDates, notes: list[str],
) -> tuple[DataFrame, pd.Timestamp]:
    # one job when the data are good: per calendar day, the (customer, day) groups, bad rows
    # and rows -- a few thousand rows to the driver whatever the data's size -- from which
    # the counts, the period and the plausible-dates rule are decided
    with quiet_pandas_warnings():
        per_day = daily.groupBy(_day_number(_DAY).alias("d")).agg(
            F.count("*").alias("groups"), F.sum("n_bad").alias("bad"),
            F.sum("n_rows").alias("rows")).toPandas()
    n_groups = int(per_day["groups"].sum())
    n_bad = int(per_day["bad"].sum())
    per_day = per_day.loc[per_day["d"].notna()]
    checks = list(parsed.checks)
    frame = parsed.frame
    spaced_examples: list[str] = []
    if parsed.text_ids and not strip_ids:
        spaced, spaced_examples = _spaced_ids(daily.where(F.col("n_bad") == 0))
        if spaced is not None:
            flagged = spaced.select(F.col(_ID).alias("__clv_sid"),
                                    F.lit(True).alias("__clv_spaced"))
            frame = frame.join(F.broadcast(flagged), frame[_ID] == flagged["__clv_sid"], "left")
            checks.insert(1, _Check(cols[0], Problem.spaced_ids(spaced_examples),
                                    F.coalesce(F.col("__clv_spaced"), F.lit(False))
                                    & parsed.kept))
    ambiguous = any(c.problem.startswith("dates that read as different days") for c in checks)
    if n_bad or spaced_examples or ambiguous:
        counts = frame.agg(*[F.count_if(F.coalesce(c.condition, F.lit(False))).alias(f"c{i}")
                             for i, c in enumerate(checks)]).first()
        for i, check in enumerate(checks):
            if counts[i]:
                raise ValidationError(_message(source, frame, check, int(counts[i]), cols))
    if n_groups == 0 or per_day.empty:
        if source.frame.limit(1).count() == 0:
            raise empty_error()
        raise all_negative_error(monetary_value_col)
    day_numbers = per_day["d"].to_numpy(dtype=np.int64)
    first = _EPOCH + pd.Timedelta(days=int(day_numbers.min()))
    last = _EPOCH + pd.Timedelta(days=int(day_numbers.max()))
    obs_end = last if observation_end is None else observation_end
    check_observation_end(first, obs_end)
    check_observation_end(first, calibration_end, "calibration_end")
    check_holdout(calibration_end, obs_end, last_day=last if observation_end is None else None)
    _check_plausible(source, parsed, day_numbers, per_day["rows"].to_numpy(dtype=np.int64),
                     cols, obs_end=obs_end, observation_end_given=observation_end is not None,
                     implausible_dates=implausible_dates, notes=notes)
    return _per_customer(daily, obs_end, calibration_end), obs_end


def _day_number(column: str) -> Column:
    return F.unix_date(F.col(column))


def _check_plausible(source: _Source, parsed: _Parsed, days: np.ndarray, rows: np.ndarray,
                     cols: list[str], *, obs_end: pd.Timestamp, observation_end_given: bool,
                     implausible_dates: ImplausibleDates, notes: list[str]) -> None:
    """The plausible-dates rules of :mod:`clvmodels._summary_rules`, from the rows per day
    with transactions (``days``: day numbers, ``rows``: rows summarised on each)."""
    in_period = days <= (obs_end - _EPOCH).days
    active = days[in_period]
    window = plausible_window(active)
    early = in_period & (days < window.low)
    late = in_period & (days > window.high)
    if early.any() or late.any():
        outliers = days[early | late]
        n_early, n_late = int(rows[early].sum()), int(rows[late].sum())
        problem = window.problem(int(outliers.min()), int(outliers.max()), n_early, n_late)
        number = _day_number(_DAY)
        end = F.lit(str(obs_end.date())).cast("date")
        condition = ((F.col(_DAY) <= end) & ((number < window.low) | (number > window.high))
                     & parsed.kept)
        check = _Check(cols[1], problem, condition)
        report_problem(_message(source, parsed.frame, check, n_early + n_late, cols),
                       implausible_dates, notes)
    if observation_end_given:
        report_problem(period_end_problem(active, obs_end, "observation_end"),
                       implausible_dates, notes)


def _per_customer(daily: DataFrame, obs_end: pd.Timestamp,
                  calibration_end: pd.Timestamp | None) -> DataFrame:
    holdout = calibration_end is not None
    cut = F.lit(str((calibration_end if holdout else obs_end).date())).cast("date")
    day = F.col(_DAY)
    in_cal = day <= cut
    fields = [
        F.count_if(in_cal).alias("n_days"),
        F.min(F.when(in_cal, day)).alias("first_day"),
        F.max(F.when(in_cal, day)).alias("last_day"),
        F.sum(F.when(in_cal, F.col("amount"))).alias("total"),
        F.min_by("amount", _DAY).alias("first_total"),
    ]
    if holdout:
        fields += [F.count_if(~in_cal).alias("n_days_holdout"),
                   F.coalesce(F.sum(F.when(~in_cal, F.col("amount"))),
                              F.lit(0).cast(MONEY_TYPE)).alias("total_holdout")]
    out = (daily.where(day <= F.lit(str(obs_end.date())).cast("date"))
           .groupBy(F.col(_ID).alias("id")).agg(*fields))
    if holdout:
        out = out.where(F.col("first_day").isNotNull())
    return out


def finalise_day_summary_spark(
    days: DataFrame,
    *,
    observation_end: pd.Timestamp,
    time_unit: str,
    customer_id_col: str,
    with_monetary: bool,
    calibration_end: pd.Timestamp | None = None,
) -> DataFrame:
    """:func:`clvmodels._summary_rules.finalise_day_summary` in Spark: the day-level summary
    → the RFM contract in ``time_unit`` (same formulas, same IEEE divisions), the ``attrs``
    in the columns' metadata (:func:`summary_attrs`)."""
    unit = time_unit_days(time_unit)
    cut = calibration_end if calibration_end is not None else observation_end
    n = F.col("n_days")
    first, last = F.col("first_day"), F.col("last_day")
    select = [F.col("id").alias(customer_id_col),
              (n - 1).cast("long").alias("frequency"),
              (F.datediff(last, first).cast("double") / unit).alias("recency"),
              (F.datediff(F.lit(str(cut.date())).cast("date"), first).cast("double") / unit)
              .alias("T")]
    if with_monetary:
        repeat = (F.col("total") - F.col("first_total")).cast("double")
        select.append(F.when(n > 1, repeat / (n - 1).cast("double")).otherwise(F.lit(0.0))
                      .alias("monetary_value"))
    attrs = {"time_unit": time_unit, "observation_end": str(cut.date())}
    if calibration_end is not None:
        nh = F.col("n_days_holdout")
        select.append(nh.cast("long").alias("frequency_holdout"))
        if with_monetary:
            select.append(F.when(nh > 0, F.col("total_holdout").cast("double")
                                 / nh.cast("double")).otherwise(F.lit(0.0))
                          .alias("monetary_value_holdout"))
        select.append(F.lit(float((observation_end - calibration_end).days) / unit)
                      .alias("duration_holdout"))
        attrs["calibration_end"] = str(calibration_end.date())
        attrs["holdout_end"] = str(observation_end.date())
    return with_summary_attrs(days.select(*select), attrs)
