"""Value tiers of a Spark frame of customers (issue 12): :func:`clvmodels.kpis.value_tiers`
without collecting the customers.

The pandas rule: customers ranked by value, highest first, ties broken by customer id
ascending; tier k takes the ranks below ``round(n x cumulative share)`` (halves up). Here
the ranks come from a distributed sort: the frame is range-partitioned by ``(value desc, id
asc)`` into as many partitions as it has and sorted within each (so partition p holds a
contiguous run of ranks, in order), cached,
and the number of rows of each partition -- one small row per partition -- comes to the
driver; a customer's rank is then its partition's offset plus its position in the
partition (``monotonically_increasing_id`` minus the partition's base), and its tier
follows from the tier bounds, which need only the number of customers. The per-tier
summary (customers, shares, total, mean, min and max value) is one aggregation of the
ranked frame: k rows. Nothing per customer reaches the driver.

Spark sorts ``-0.0`` with ``0.0`` and the ids by their natural order (numbers numerically,
text by code point, as pandas sorts them), so the labels equal the pandas engine's for the
same values. Missing or infinite values are refused with a few offending ids named; ids must
be unique (a summary's are).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from clvmodels._validation import ValidationError
from clvmodels.kpis import DEFAULT_TIERS, _check_tiers

__all__ = ["TIER_COLUMN", "SparkTiers", "value_tiers_spark"]

#: the column of each customer's tier in the result
TIER_COLUMN = "value_tier"
_RANK, _PART, _MID = "__clv_rank", "__clv_part", "__clv_mid"
_SHOWN = 5


class SparkTiers(NamedTuple):
    """What :func:`value_tiers_spark` returns."""

    #: the customers sorted by value (descending, then id) with :data:`TIER_COLUMN`
    frame: DataFrame
    #: one row per tier, as :func:`clvmodels.kpis.value_tiers`'s summary
    summary: pd.DataFrame
    #: the cached sorted frame ``frame`` reads from: ``cached.unpersist()`` when done
    cached: DataFrame


def value_tiers_spark(frame: DataFrame, value_col: str = "clv", *,
                      tiers: Sequence[tuple[str, float]] = DEFAULT_TIERS,
                      id_col: str | None = None) -> SparkTiers:
    """The customers of ``frame`` in value tiers (module docstring): :class:`SparkTiers`
    ``(frame, summary, cached)``. ``id_col``: the customer id column (default: the first).

    Spark evaluates ``frame`` twice for the sort (a sample for the range bounds, then the
    shuffle): cache it first when computing it is costly (a valuation). Two small jobs
    follow on the cached sorted rows (rows per partition; the per-tier aggregation).
    """
    names, shares = _check_tiers(tuple(tiers))
    id_col = id_col or frame.columns[0]
    for col in (id_col, value_col):
        if col not in frame.columns:
            raise ValidationError(f"value tiers: the frame has no column {col!r}")
    value = F.col(value_col).cast("double")
    bad = value.isNull() | F.isnan(value) | value.isin(float("inf"), float("-inf"))
    # -0.0 + 0.0 is 0.0: one key for both zeros, as pandas compares them
    order = [(value + F.lit(0.0)).desc(), F.col(id_col).asc()]
    cached = (frame.repartitionByRange(_partitions(frame), *order).sortWithinPartitions(*order)
              .withColumn(_PART, F.spark_partition_id())
              .withColumn(_MID, F.monotonically_increasing_id())
              .persist(StorageLevel.MEMORY_AND_DISK))
    try:
        parts = cached.groupBy(_PART).agg(F.count(F.lit(1)).alias("n"),
                                          F.min(_MID).alias("base"),
                                          F.count_if(bad).alias("bad")).collect()
        n_bad = sum(int(r["bad"]) for r in parts)
        if n_bad:
            ids = [r[0] for r in cached.where(bad).select(id_col).limit(_SHOWN).collect()]
            more = f" and {n_bad - len(ids):,} more" if n_bad > len(ids) else ""
            raise ValidationError(f"{value_col}: missing or infinite values in {n_bad:,} "
                                  f"row(s): {', '.join(repr(i) for i in ids)}{more}")
        n = sum(int(r["n"]) for r in parts)
        if n == 0:
            raise ValidationError(f"{value_col}: there are no customers to tier")
    except BaseException:
        cached.unpersist()
        raise
    # rank = rows of the partitions before + position in the partition
    shifts = [0] * (max(int(r[_PART]) for r in parts) + 1)
    start = 0
    for r in sorted(parts, key=lambda r: int(r[_PART])):
        shifts[int(r[_PART])] = start - int(r["base"])
        start += int(r["n"])
    shift = F.element_at(F.array(*[F.lit(x).cast("long") for x in shifts]), F.col(_PART) + 1)
    bounds = np.floor(np.cumsum(shares) * n + 0.5).astype(np.int64)
    bounds[-1] = n
    label: Any = F.lit(names[-1])
    for name, bound in reversed(list(zip(names[:-1], bounds[:-1], strict=True))):
        label = F.when(F.col(_RANK) < int(bound), F.lit(name)).otherwise(label)
    ranked = cached.withColumn(_RANK, F.col(_MID) + shift).withColumn(TIER_COLUMN, label)
    stats = {r[TIER_COLUMN]: r for r in ranked.groupBy(TIER_COLUMN).agg(
        F.sum(value_col).alias("total"), F.min(value_col).alias("lo"),
        F.max(value_col).alias("hi")).collect()}
    counts = np.diff(np.concatenate(([0], bounds)))
    totals = np.array([float(stats[m]["total"]) if m in stats else 0.0 for m in names])
    lo = np.array([float(stats[m]["lo"]) if m in stats else np.nan for m in names])
    hi = np.array([float(stats[m]["hi"]) if m in stats else np.nan for m in names])
    return SparkTiers(ranked.drop(_PART, _MID, _RANK),
                      _summary(names, counts, totals, lo, hi, n), cached)


def _partitions(frame: DataFrame) -> int:
    """As many range partitions as ``frame`` has partitions (so as many output files as an
    unsorted write would make; a cached plan's shuffle is not coalesced by adaptive
    execution, so ``spark.sql.shuffle.partitions`` -- 200 by default -- would be used)."""
    try:
        return max(1, frame.rdd.getNumPartitions())
    except Exception:  # Spark Connect: no RDD
        return max(1, int(frame.sparkSession.conf.get("spark.sql.shuffle.partitions") or 1))


def _summary(names: list[str], counts: np.ndarray, totals: np.ndarray, lo: np.ndarray,
             hi: np.ndarray, n: int) -> pd.DataFrame:
    """The summary frame of :func:`clvmodels.kpis.value_tiers` from the per-tier figures."""
    empty = counts == 0
    grand = float(totals.sum())
    dtype = pd.CategoricalDtype(names[::-1], ordered=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "customers": counts,
                "share_of_customers": counts / n,
                "total_value": totals,
                "share_of_value": totals / grand if grand != 0 else np.full(len(names), np.nan),
                "mean_value": np.where(empty, np.nan, totals / np.maximum(counts, 1)),
                "min_value": np.where(empty, np.nan, lo),
                "max_value": np.where(empty, np.nan, hi),
            },
            index=pd.CategoricalIndex(names, dtype=dtype, name="tier"),
        )
