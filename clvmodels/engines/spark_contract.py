"""Spark engine for the contract summary: the pandas engine's contract, as a Spark DataFrame.

:func:`contract_summary_spark` follows the rules of :mod:`clvmodels._contract_rules` with the
same validation messages, computed with Spark DataFrame operations (no Python UDF):

* a pandas DataFrame's date columns are parsed by the rules' own parser
  (:func:`clvmodels._contract_rules.parse_days`, which knows pandas' dtypes), as the DuckDB
  engine does, and the frame goes to Spark as day numbers; its offending rows are named by
  the frame's index labels, exactly as the pandas engine names them;
* a Spark DataFrame, or CSV / Parquet files read by Spark: ``DateType`` / timestamp columns
  keep their day (a ``TimestampType`` in the session time zone), text is ISO 8601 (or
  ``date_format``) read with Spark SQL expressions; offending rows are shown with their file.

Then: the row checks (counted in one aggregation, in the rules' order; only when some row is
bad are a few offending rows fetched), each customer's records merged into tenures with
window functions, and periods paid / churn / cohort from calendar anniversaries. The result
is a lazy Spark DataFrame ``<customer_id_col>, periods (long), churned (boolean), cohort
(string), tenures (long)`` in no row order, whose ``attrs`` (``period``, ``time_unit``,
``observation_end``, ``data_kind``) are in the columns' metadata
(:func:`clvmodels.engines.spark.summary_attrs`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from clvmodels._contract_rules import (
    BLANK_REGEX,
    CSV_NA_STRINGS,
    ISO_DATE_REGEX,
    MAX_DAY_NUMBER,
    MIN_DAY_NUMBER,
    PERIODS,
    ContractProblem,
    check_id_types,
    not_dates_error,
    parse_days,
)
from clvmodels._date_rules import date_format_layout
from clvmodels._validation import ValidationError, require_columns, rows_message
from clvmodels.engines.spark import (
    _check_columns,
    _read,
    _resolve,
    _spark_of,
    is_parquet_path,
    quiet_pandas_warnings,
    with_summary_attrs,
)
from clvmodels.engines.spark_dates import layout_day

__all__ = ["contract_summary_spark"]

_MAX_SHOWN = 5
_ROW = "__clv_row"
_FILE = "__clv_file"
_OPEN = MAX_DAY_NUMBER + 1_000_000  # end of an open tenure, later than any real day


def _days_of_text(text: Column, date_format: str | None) -> tuple[Column, Column]:
    """(day number or null, missing) of a text date column by the contract's rules."""
    missing = text.isNull() | text.rlike(f"^{BLANK_REGEX}\\z")
    if date_format is None:
        regex = f"^{ISO_DATE_REGEX}\\z"
        iso = F.when(text.rlike(regex), F.regexp_extract(text, regex, 1))
        y = F.substring(iso, 1, 4).try_cast("int")
        m = F.substring(iso, 6, 2).try_cast("int")
        d = F.substring(iso, 9, 2).try_cast("int")
        ok = y.between(1, 9999) & m.between(1, 12) & (d >= 1)
        first = F.make_date(y, m, F.lit(1))
        day = F.when(ok, F.when(d <= F.dayofmonth(F.last_day(first)),
                                F.date_add(first, d - 1)))
    else:
        day = layout_day(F.trim(text), date_format_layout(date_format))
    return F.when(~missing, F.unix_date(day)), missing


def _spark_days(frame: DataFrame, column: str, date_format: str | None
                ) -> tuple[Column, Column, Column]:
    """(day number, missing, bad) of a Spark date column."""
    raw = F.col(column)
    dtype = frame.schema[column].dataType
    if isinstance(dtype, T.DateType):
        day = F.unix_date(raw)
        missing = raw.isNull()
    elif isinstance(dtype, (T.TimestampType, T.TimestampNTZType)):
        day = F.unix_date(F.to_date(raw))
        missing = raw.isNull()
    elif isinstance(dtype, T.StringType):
        day, missing = _days_of_text(raw, date_format)
    elif isinstance(dtype, T.NullType):
        day, missing = F.lit(None).cast("int"), F.lit(True)
    else:
        raise not_dates_error(column, dtype.simpleString())
    bad = ~missing & (day.isNull() | ~day.between(MIN_DAY_NUMBER, MAX_DAY_NUMBER))
    return F.when(~missing & ~bad, day), missing, bad


def _source(subscriptions: object, cols: list[str], date_format: str | None
            ) -> tuple[DataFrame, pd.DataFrame | None, bool]:
    """(Spark frame with ``__id, __s, __e, __s_missing, __s_bad, __e_bad`` beside the
    caller's columns, the caller's pandas frame if any, whether files were read)."""
    id_col, start_col, end_col = cols[0], cols[1], cols[-1]
    if isinstance(subscriptions, pd.DataFrame):
        require_columns(subscriptions, cols, "subscriptions")
        if len(subscriptions) == 0:
            raise ValidationError("subscriptions are empty: there is nothing to summarise")
        frame = subscriptions[cols]
        ids = frame[id_col]
        if ids.isna().any():
            from clvmodels._validation import fail_rows

            fail_rows(frame, ids.isna().to_numpy(), id_col, ContractProblem.MISSING_IDS, cols)
        check_id_types(frame, id_col, cols)
        start = parse_days(frame[start_col], start_col, date_format)
        end = parse_days(frame[end_col], end_col, date_format)
        if isinstance(ids.dtype, pd.CategoricalDtype) or ids.dtype == object:
            ids = ids.astype(object)
        plain = pd.DataFrame({
            "__id": ids.to_numpy(),
            "__s": np.where(start.missing | start.bad, 0, start.days),
            "__e": np.where(end.missing | end.bad, _OPEN, end.days),
            "__s_missing": start.missing, "__s_bad": start.bad, "__e_bad": end.bad,
            _ROW: np.arange(len(frame), dtype=np.int64)})
        spark = _spark_of(subscriptions)
        with quiet_pandas_warnings():
            sdf = spark.createDataFrame(plain)
        return sdf, frame, False
    files = False
    if isinstance(subscriptions, DataFrame):
        sdf = subscriptions
        _check_columns(sdf, cols, "subscriptions")
    elif isinstance(subscriptions, (str, os.PathLike, list, tuple)):
        paths = _resolve(subscriptions)
        spark = _spark_of(subscriptions)
        description = f"subscriptions in {paths[0] if len(paths) == 1 else paths}"
        if all(is_parquet_path(p) for p in paths):
            sdf = _read(lambda ps: spark.read.parquet(*ps), paths)
            _check_columns(sdf, cols, description)
        else:
            sdf = _read(lambda ps: spark.read.option("header", "true").csv(ps), paths)
            _check_columns(sdf, cols, description)
            na = F.lit(list(CSV_NA_STRINGS))
            sdf = sdf.select(*[F.when(~F.array_contains(na, F.col(c)), F.col(c)).alias(c)
                               for c in cols])
            ids = F.col(id_col)
            row = sdf.agg(F.count_if(ids.isNotNull() & ~ids.rlike("^-?[0-9]{1,18}$"))).first()
            if row[0] == 0:
                sdf = sdf.withColumn(id_col, ids.try_cast("long"))
        sdf = sdf.withColumn(_FILE, F.input_file_name())
        files = True
    else:
        raise TypeError("subscriptions must be a Spark or pandas DataFrame or a path / glob / "
                        f"list of CSV or Parquet files, got {type(subscriptions).__name__}")
    s, s_missing, s_bad = _spark_days(sdf, start_col, date_format)
    e, e_missing, e_bad = _spark_days(sdf, end_col, date_format)
    sdf = sdf.select("*", F.col(id_col).alias("__id"), F.coalesce(s, F.lit(0)).alias("__s"),
                     F.when(e_missing | e_bad, F.lit(_OPEN)).otherwise(e).alias("__e"),
                     s_missing.alias("__s_missing"), s_bad.alias("__s_bad"),
                     e_bad.alias("__e_bad"))
    return sdf, None, files


def _message(frame: DataFrame, pandas: pd.DataFrame | None, condition: Column, column: str,
             problem: str, n_bad: int, cols: list[str], files: bool) -> str:
    if pandas is not None:
        with quiet_pandas_warnings():
            positions = frame.where(condition).select(_ROW).toPandas()[_ROW].to_numpy()
        mask = np.zeros(len(pandas), dtype=bool)
        mask[positions.astype(np.int64)] = True
        message = rows_message(pandas, mask, column, problem, cols)
        if message is not None:
            return message
    shown = [F.col(c) for c in cols] + ([F.col(_FILE).alias("file")] if files else [])
    with quiet_pandas_warnings():
        sample = frame.where(condition).select(*shown).limit(_MAX_SHOWN).toPandas()
    more = f"\n... and {n_bad - len(sample)} more" if n_bad > len(sample) else ""
    return (f"column {column!r}: {problem}; {n_bad} offending row(s):\n"
            f"{sample.to_string(index=False)}{more}")


def contract_summary_spark(
    subscriptions: object,
    *,
    customer_id_col: str,
    start_col: str,
    end_col: str,
    observation_end: pd.Timestamp,
    period: str,
    date_format: str | None,
    max_gap_days: int,
    reactivations: str,
) -> DataFrame:
    """:func:`clvmodels.contract.contract_summary` computed by Spark (see the module
    docstring); the arguments are those of the pandas engine."""
    cols = list(dict.fromkeys([customer_id_col, start_col, end_col]))
    with quiet_pandas_warnings():
        return _summarise(subscriptions, cols, observation_end=observation_end, period=period,
                          date_format=date_format, max_gap_days=max_gap_days,
                          reactivations=reactivations)


def _summarise(subscriptions: object, cols: list[str], *, observation_end: pd.Timestamp,
               period: str, date_format: str | None, max_gap_days: int,
               reactivations: str) -> DataFrame:
    id_col, start_col, end_col = cols[0], cols[1], cols[-1]
    frame, pandas, files = _source(subscriptions, cols, date_format)
    obs = int((observation_end - pd.Timestamp("1970-01-01")).days)
    s, e = F.col("__s"), F.col("__e")
    ok_dates = ~F.col("__s_missing") & ~F.col("__s_bad") & ~F.col("__e_bad")
    same = Window.partitionBy("__id", "__s", "__e")
    frame = frame.withColumn("__n_same", F.count("*").over(same))
    checks: list[tuple[str, str, Column]] = [
        (id_col, ContractProblem.MISSING_IDS, F.col("__id").isNull()),
        (start_col, ContractProblem.MISSING_STARTS, F.col("__s_missing")),
        (start_col, ContractProblem.bad_dates(date_format), F.col("__s_bad")),
        (end_col, ContractProblem.bad_dates(date_format), F.col("__e_bad")),
        (end_col, ContractProblem.END_BEFORE_START, ok_dates & (e < s)),
        (start_col, ContractProblem.start_after(observation_end), ok_dates & (s > obs)),
        (id_col, ContractProblem.DUPLICATES, F.col("__n_same") > 1),
    ]
    row = frame.agg(F.count("*").alias("n"),
                    *[F.count_if(F.coalesce(c, F.lit(False))) for _, _, c in checks]).first()
    if row[0] == 0:
        raise ValidationError("subscriptions are empty: there is nothing to summarise")
    for i, (column, problem, condition) in enumerate(checks):
        if row[i + 1]:
            raise ValidationError(_message(frame, pandas, F.coalesce(condition, F.lit(False)),
                                           column, problem, int(row[i + 1]), cols, files))
    # tenures: records in order of start and end; one starting after the latest end so far
    # (+ max_gap_days) opens a new tenure
    order = Window.partitionBy("__id").orderBy("__s", "__e")
    before = order.rowsBetween(Window.unboundedPreceding, -1)
    so_far = order.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    previous_end = F.max(e).over(before)
    new = (previous_end.isNull() | (s > previous_end + max_gap_days)).cast("long")
    kept = [c for c in [*cols, _ROW, _FILE] if c in frame.columns and c not in ("__id",)]
    records = frame.select("__id", "__s", "__e", *kept, new.alias("__new"))
    records = records.withColumn("__tenure", F.sum("__new").over(so_far))
    tenures = Window.partitionBy("__id")
    records = records.withColumn("__tenures", F.sum("__new").over(tenures))
    if reactivations == "raise":
        again = F.col("__tenures") > 1
        n_again = records.agg(F.count_if(again)).first()[0]
        if n_again:
            raise ValidationError(_message(records, pandas, again, id_col,
                                           ContractProblem.REACTIVATED, int(n_again), cols,
                                           files))
    per_customer = records.groupBy("__id").agg(
        F.min("__s").alias("start"),
        F.max(F.when(F.col("__tenure") == 1, e)).alias("first_end"),
        F.first("__tenures").alias("tenures"))
    churned = F.col("first_end") <= obs
    ref = F.when(churned, F.col("first_end")).otherwise(F.lit(obs))
    out = per_customer.select(
        F.col("__id").alias(id_col),
        _paid_periods(F.col("start"), ref, churned, period).alias("periods"),
        churned.alias("churned"),
        _cohort(F.col("start"), period).alias("cohort"),
        F.col("tenures").cast("long").alias("tenures"))
    return with_summary_attrs(out, {"period": period, "time_unit": period,
                                    "observation_end": observation_end.date().isoformat(),
                                    "data_kind": "contractual"})


def _paid_periods(start: Column, ref: Column, churned: Column, period: str) -> Column:
    """:func:`clvmodels.contract.paid_periods` as a Spark expression (day numbers)."""
    unit, length = PERIODS[period]
    if unit == "day":
        diff = ref - start
        paid = F.when(churned, F.greatest(diff - 1, F.lit(0))).otherwise(diff)
        return (1 + F.floor(paid / length)).cast("long")
    s, r = F.date_from_unix_date(start), F.date_from_unix_date(ref)
    month_diff = (F.year(r) * 12 + F.month(r)) - (F.year(s) * 12 + F.month(s))
    r_day = F.dayofmonth(r)
    anniversary = F.least(F.dayofmonth(s), F.dayofmonth(F.last_day(r)))
    renewals = F.when(churned, F.greatest(month_diff - (anniversary >= r_day).cast("int"),
                                          F.lit(0))) \
        .otherwise(month_diff - (anniversary > r_day).cast("int"))
    return (1 + F.floor(renewals / length)).cast("long")


def _cohort(start: Column, period: str) -> Column:
    """:func:`clvmodels._contract_rules.cohort_labels` as a Spark expression."""
    def pad(value: Column, width: int) -> Column:
        return F.lpad(value.cast("string"), width, "0")

    if period == "W":  # the ISO week of a day is that of its Thursday
        thursday = F.date_from_unix_date(start - F.pmod(start + 3, F.lit(7)) + 3)
        year = F.year(thursday)
        week = F.floor(F.datediff(thursday, F.make_date(year, F.lit(1), F.lit(1))) / 7) + 1
        return F.concat(pad(year, 4), F.lit("-W"), pad(week.cast("int"), 2))
    day = F.date_from_unix_date(start)
    parts: Sequence[Column] = [pad(F.year(day), 4)]
    if period in ("M", "D"):
        parts = [*parts, F.lit("-"), pad(F.month(day), 2)]
    if period == "D":
        parts = [*parts, F.lit("-"), pad(F.dayofmonth(day), 2)]
    return F.concat(*parts)
