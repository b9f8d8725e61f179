"""Fitting a model on a Spark summary: compress in Spark, fit on the driver (issue 12).

A model depends on a customer only through a handful of columns -- its data kind's
(:data:`clvmodels.datakinds.KINDS`: ``frequency, recency, T``; ``frequency,
monetary_value``; ``periods, churned``), plus the segment column of a hierarchical model
and the covariate columns of a covariate model. :func:`compress_for_fit` groups a Spark
summary by exactly those columns in Spark (``groupBy(...).count()``, or the sum of a
``weights`` column), collects only the *unique rows* with their counts as a small pandas
frame, and the model fits that frame with ``weights=`` -- the same likelihood as the
customer-level fit (each unique row's log-likelihood times its count), so the estimates
equal the pandas engine's. Driver memory grows with the number of unique rows, not with
the number of customers (``bench``/``docs/scaling.md`` give the measured figures).

Categorical covariates and segments are part of the grouping key (their levels come back
as text, so a reference level is the smallest level in sorted order, as for a text column
in pandas); numeric covariates are too (each distinct value is a key: fine for ages or
counts, costly for a continuous amount). ``standardize_covariates=True`` with a numeric
covariate is refused: its mean and deviation would be those of the unique rows, not of
the customers (standardise the column in Spark first).

Validation discipline: the frame must carry the summary's metadata
(:func:`clvmodels.engines.spark.summary_attrs`, written by ``rfm_summary(...,
engine="spark")``), in the model's time unit when the model has one; the unique rows are
then validated by the model's own rules on the driver: an offending row is named by its
position among the collected unique rows, with its values (so the message says how many
*distinct* bad rows there are, not how many customers; filter the Spark frame on those
values to find the customers).

This module imports pyspark only inside its functions: :func:`is_spark_frame` answers
without it, so the models can call it on any input.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from clvmodels._validation import ValidationError
from clvmodels.datakinds import KINDS

__all__ = ["WEIGHT", "compress_for_fit", "fit_columns", "fit_input", "frame_time_unit",
           "is_spark_frame"]

#: the column of the collected unique rows holding how many customers each row stands for
WEIGHT = "__customers"


def is_spark_frame(obj: object) -> bool:
    """Whether ``obj`` is a Spark DataFrame (classic or Spark Connect), decided by the
    module of its type, so pyspark need not be installed (or imported) to ask."""
    module = type(obj).__module__ or ""
    return module.startswith("pyspark.sql") and type(obj).__name__ == "DataFrame"


def frame_time_unit(frame: Any, model_unit: str | None, what: str = "the Spark frame"
                    ) -> dict[str, str]:
    """The summary attrs of a Spark frame, refusing one without them or in a time unit
    other than ``model_unit`` (when given)."""
    from clvmodels.engines.spark import summary_attrs

    try:
        attrs = summary_attrs(frame)
    except ValueError as exc:
        raise ValidationError(f"{what}: {exc}") from None
    unit = attrs.get("time_unit")
    if not unit:
        raise ValidationError(f"{what}: its summary metadata records no time unit ({attrs})")
    if model_unit is not None and unit is not None and unit != model_unit:
        raise ValidationError(
            f"{what} is in time unit {unit!r} but the model was fitted in {model_unit!r}; "
            "summarise the transactions again with the model's time_unit")
    return attrs


def fit_columns(model: Any, columns: list[str]) -> list[str]:
    """The grouping key of ``model``'s fit: its data kind's columns (an alternative name
    where the frame uses it, e.g. ``periods`` for a discrete model's ``T``), the segment
    column, then the covariate columns."""
    spec = KINDS[model.data_kind]
    key = []
    for col in spec.columns:
        alt = (spec.alternatives or {}).get(col)
        key.append(alt if col not in columns and alt is not None and alt in columns else col)
    segment = getattr(model, "segment_col", None)
    if segment is not None:
        key.append(segment)
    if getattr(model, "has_covariates", False):
        key += [c for c in model.covariate_columns if c not in key]
    missing = [c for c in key if c not in columns]
    if missing:
        raise ValidationError(
            f"the Spark frame lacks column(s) {missing} that {type(model).__name__} needs "
            f"(it has {list(columns)})")
    return key


def fit_input(model: Any, data: Any, weights: Any) -> tuple[Any, Any]:
    """``(data, weights)`` as ``model.fit`` receives them, except a Spark summary: its
    unique rows and their counts (:func:`compress_for_fit`)."""
    if is_spark_frame(data):
        return compress_for_fit(model, data, weights)
    return data, weights


def compress_for_fit(model: Any, frame: Any, weights: Any = None
                     ) -> tuple[pd.DataFrame, str]:
    """``(unique rows, weight column)``: ``frame`` (a Spark summary) grouped by the model's
    columns (:func:`fit_columns`) with the number of customers per row, collected as a
    pandas frame whose ``attrs`` are the summary's. ``weights``: None (count the rows) or
    the name of a column of per-row counts (summed)."""
    from pyspark.sql import functions as F

    from clvmodels.engines.spark import quiet_pandas_warnings

    attrs = frame_time_unit(frame, None)
    if weights is not None and not isinstance(weights, str):
        raise ValidationError("with a Spark frame, weights must be the name of a column of "
                              "per-row counts (or None)")
    if weights is not None and weights not in frame.columns:
        raise ValidationError(f"weights: the Spark frame has no column {weights!r}")
    layout_numeric = _numeric_standardized(model, frame)
    if layout_numeric:
        raise ValidationError(
            f"standardize_covariates=True with numeric covariate(s) {layout_numeric} is not "
            "supported on a Spark frame (the mean and deviation would be the unique rows', "
            "not the customers'): standardise the column(s) in Spark and fit without it")
    key = fit_columns(model, frame.columns)
    sdf = frame
    if model.data_kind == "spend":
        # Gamma-Gamma uses repeat buyers only (KINDS["spend"].uses): the others never reach
        # the driver; a missing frequency stays, to be refused by name
        sdf = sdf.where(F.col("frequency").isNull() | (F.col("frequency") != 0))
    count = F.count(F.lit(1)) if weights is None else F.sum(F.col(weights))
    grouped = sdf.groupBy(*key).agg(count.alias(WEIGHT))
    with quiet_pandas_warnings():
        rows = grouped.toPandas()
    rows = rows.sort_values(key, kind="stable", ignore_index=True) if len(rows) else rows
    rows[WEIGHT] = rows[WEIGHT].fillna(0).astype("int64")
    rows.attrs = dict(attrs)
    return rows, WEIGHT


def _numeric_standardized(model: Any, frame: Any) -> list[str]:
    if not (getattr(model, "has_covariates", False)
            and getattr(model, "standardize_covariates", False)):
        return []
    from pyspark.sql import types as T

    numeric = (T.NumericType,)
    return [c for c in model.covariate_columns
            if c in frame.columns and isinstance(frame.schema[c].dataType, numeric)]
