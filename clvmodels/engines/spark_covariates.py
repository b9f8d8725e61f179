"""Customer attributes for covariate models on Spark (issue 12): an attribute table read by
Spark and joined onto a Spark summary on the customer id, by the rules of
:func:`clvmodels.join_customers` -- without collecting either table.

:func:`read_customers_spark` reads a CSV / Parquet file, glob, directory or URI the way the
transactions are read (:mod:`clvmodels.engines.spark`): Parquet columns keep their types;
CSV columns are read as text and, as pandas infers them, a column whose values are all
integers becomes ``long``, all numbers ``double`` (a numeric covariate), anything else stays
text (a categorical covariate: its levels are part of the compression key of the fit,
:mod:`clvmodels.engines.spark_fit`). :func:`join_customers_spark` refuses, naming a few
offending ids and how many there are: a missing id or attribute column, attribute names
already in the summary, duplicate ids in the table and customers of the summary without a
row. Ids of different types (text in one, numbers in the other) are matched as text, as
pandas matches them. The summary's metadata (time unit ...) survives the join.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from clvmodels._validation import ValidationError
from clvmodels.engines.spark import (
    _CSV_NA_STRINGS,
    _read,
    _resolve,
    is_parquet_path,
)

__all__ = ["join_customers_spark", "read_customers_spark"]

_SHOWN = 5
_KEY = "__clv_customer_key"


def read_customers_spark(spark: SparkSession, path: str | os.PathLike) -> DataFrame:
    """The attribute table at ``path`` as a Spark DataFrame (module docstring)."""
    paths = _resolve(path)
    kinds = {is_parquet_path(p) for p in paths}
    if len(kinds) > 1:
        raise ValueError(f"mix of Parquet and CSV files: {paths}")
    if kinds.pop():
        return _read(lambda ps: spark.read.parquet(*ps), paths)
    sdf = _read(lambda ps: spark.read.option("header", "true")
                .option("inferSchema", "false").csv(ps), paths)
    na = F.lit(list(_CSV_NA_STRINGS))
    sdf = sdf.select(*[F.when(~F.array_contains(na, F.col(c)), F.col(c)).alias(c)
                       for c in sdf.columns])
    checks = []
    for i, c in enumerate(sdf.columns):
        col, present = F.col(c), F.col(c).isNotNull()
        checks += [F.count_if(present & ~col.rlike("^-?[0-9]{1,18}$")).alias(f"i{i}"),
                   F.count_if(present & col.try_cast("double").isNull()).alias(f"d{i}"),
                   F.count_if(present).alias(f"n{i}")]
    row = sdf.agg(*checks).first()
    out = []
    for i, c in enumerate(sdf.columns):
        if row[f"n{i}"] and row[f"i{i}"] == 0:
            out.append(F.col(c).try_cast("long").alias(c))
        elif row[f"n{i}"] and row[f"d{i}"] == 0:
            out.append(F.col(c).try_cast("double").alias(c))
        else:
            out.append(F.col(c))
    return sdf.select(*out)


def _ids(frame: DataFrame, column: str, n: int) -> str:
    shown = [r[0] for r in frame.select(column).limit(_SHOWN).collect()]
    more = f" and {n - len(shown):,} more" if n > len(shown) else ""
    return f"{n:,} row(s): {', '.join(repr(v) for v in shown)}{more}"


def join_customers_spark(data: DataFrame, customers: DataFrame, *, on: str | None = None,
                         columns: Sequence[str] | None = None) -> DataFrame:
    """``data`` (a Spark summary, ids in its first column) with the attribute ``columns``
    of ``customers`` (default: all but the id) joined on the customer id: ``customers``'s
    column ``on`` (default: the summary's id column name when the table has it, else the
    table's first column). One row per customer of ``data``, its columns first."""
    id_col = data.columns[0]
    on = on or (id_col if id_col in customers.columns else customers.columns[0])
    if on not in customers.columns:
        raise ValidationError(f"column {on!r} not found in the customer table "
                              f"(columns: {customers.columns})")
    cols = [c for c in customers.columns if c != on] if columns is None else list(columns)
    absent = [c for c in cols if c not in customers.columns]
    if absent:
        raise ValidationError(f"column(s) {absent} not found in the customer table "
                              f"(columns: {customers.columns})")
    clash = [c for c in cols if c in data.columns]
    if clash:
        raise ValidationError(f"column(s) {clash} are already in the data; drop or rename "
                              "them before joining")
    left_type = data.schema[id_col].dataType
    right_type = customers.schema[on].dataType
    key = F.col(on) if left_type == right_type else F.col(on).cast("string")
    table = customers.select(key.alias(_KEY), *[F.col(c) for c in cols])
    dups = table.groupBy(_KEY).count().where("count > 1")
    n_dup = dups.count()
    if n_dup:
        raise ValidationError("the customer table has duplicate customer ids: "
                              + _ids(dups.orderBy(_KEY), _KEY, n_dup))
    ident = F.col(id_col) if left_type == right_type else F.col(id_col).cast("string")
    keyed = data.withColumn(_KEY, ident)
    missing = keyed.join(table.select(_KEY), _KEY, "left_anti")
    n_missing = missing.count()
    if n_missing:
        raise ValidationError(
            f"the customer table has no row for {_ids(missing.orderBy(id_col), id_col, n_missing)}"
            f" of the data (matched on the customer id = column {on!r})")
    return keyed.join(table, _KEY, "inner").select(*data.columns, *cols)
