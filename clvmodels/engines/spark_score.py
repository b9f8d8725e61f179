"""Scoring every customer of a Spark summary with a fitted model, in parallel (issue 12).

The driver holds the fitted model; the customers stay in Spark. :func:`map_customers`
ships each model to the executors *as its saved file* -- an MLE model's JSON
(``to_dict``: parameters, covariate layout, time unit), a Bayesian model's netCDF posterior
-- in one Spark broadcast, and runs the pandas code path on every partition with
``mapInPandas`` (on Spark Connect, which has no broadcast, the files ride in the task
closure; Arrow batches of ``spark.sql.execution.arrow.maxRecordsPerBatch`` rows):
each batch becomes a pandas frame indexed by customer id, carrying the summary's attrs,
and is scored by exactly the function the pandas engine calls, so per-customer results are
those of the pandas path. Nothing is collected: the result is a lazy Spark DataFrame
``<customer id>, <result columns>`` carrying the summary's metadata.

Bayesian models are thinned first (:func:`thin_posterior`): at most ``max_draws``
(default :data:`MAX_DRAWS` = 500) posterior draws, the same evenly spaced number from each
chain. Means and central intervals then come from those draws -- Monte Carlo error of a
500-draw mean is about sd/sqrt(ESS) with ESS <= 500 -- and equal those of the pandas call
on ``thin_posterior(model)``. The broadcast is then ~``max_draws x parameters x 8`` bytes
(a hierarchical model: x segments), whatever the number of customers.

The model's own checks run on the driver first, on the first rows (:data:`PROBE_ROWS`):
a frame in another time unit, without the summary's metadata or lacking a column is refused
before any Spark job; rows further on that break the model's rules fail the job with the
same message (in Spark's Python error). This module imports no model code: the caller
passes ``loader`` (:func:`clvmodels.load_model`) that reads a saved model file.
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clvmodels.engines.spark_fit import frame_time_unit

__all__ = ["MAX_DRAWS", "PROBE_ROWS", "ShippedModel", "map_customers", "thin_posterior"]

#: posterior draws broadcast to the executors for a Bayesian model (at most)
MAX_DRAWS = 500
#: rows scored on the driver first, to fix the output schema and refuse bad input early
PROBE_ROWS = 50


@dataclass(frozen=True)
class ShippedModel:
    """A fitted model as the bytes of its saved file (``suffix``: ``.json`` / ``.nc``)."""

    suffix: str
    data: bytes

    @property
    def key(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @classmethod
    def of(cls, model: Any) -> ShippedModel:
        suffix = ".nc" if getattr(model, "bayesian", False) else ".json"
        with tempfile.TemporaryDirectory(prefix="clvmodels-ship-") as tmp:
            path = os.path.join(tmp, "model" + suffix)
            model.save(path)
            with open(path, "rb") as handle:
                return cls(suffix, handle.read())

    def load(self, loader: Callable[[str], Any]) -> Any:
        with tempfile.TemporaryDirectory(prefix="clvmodels-ship-") as tmp:
            path = os.path.join(tmp, "model" + self.suffix)
            with open(path, "wb") as handle:
                handle.write(self.data)
            return loader(path)


def thin_posterior(model: Any, max_draws: int = MAX_DRAWS) -> Any:
    """A Bayesian model keeping at most ``max_draws`` posterior draws: per chain the same
    number of evenly spaced draws (``max_draws // chains``, at least one). A model with no
    more draws than that, or a maximum-likelihood model, is returned as it is."""
    if not getattr(model, "bayesian", False):
        return model
    if int(max_draws) < 1:
        raise ValueError(f"max_draws must be at least 1, got {max_draws!r}")
    post = model.idata_.posterior
    chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    if chains * draws <= max_draws:
        return model
    per_chain = max(1, int(max_draws) // chains)
    keep = np.unique(np.linspace(0, draws - 1, per_chain).round().astype(np.int64))
    thinned = copy.copy(model)
    thinned.idata_ = model.idata_.isel(draw=keep)
    thinned.__dict__.pop("_draws_cache", None)
    return thinned


@dataclass(frozen=True)
class _Inline:
    """The models shipped with the task's closure (where no broadcast is available)."""

    value: dict[str, Any]


_LOADED: dict[str, Any] = {}


def _loaded(shipped: ShippedModel, loader: Callable[[str], Any]) -> Any:
    """The model of ``shipped``, loaded once per Python worker."""
    key = shipped.key
    if key not in _LOADED:
        if len(_LOADED) >= 8:
            _LOADED.clear()
        _LOADED[key] = shipped.load(loader)
    return _LOADED[key]


def _as_frame(result: pd.Series | pd.DataFrame) -> pd.DataFrame:
    return result.to_frame() if isinstance(result, pd.Series) else result


def _batch(pdf: pd.DataFrame, id_col: str, attrs: Mapping[str, str]) -> pd.DataFrame:
    pdf = pdf.set_index(id_col)
    pdf.attrs = dict(attrs)
    return pdf


def _spark_type(dtype: Any) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "long"
    if pd.api.types.is_float_dtype(dtype):
        return "double"
    return "string"


def map_customers(frame: Any, models: Mapping[str, Any],
                  compute: Callable[[dict[str, Any], pd.DataFrame], pd.Series | pd.DataFrame],
                  *, loader: Callable[[str], Any], max_draws: int = MAX_DRAWS,
                  keyed: bool = True) -> Any:
    """``compute(models, batch)`` on every batch of customers of the Spark summary
    ``frame``, as a Spark DataFrame ``<id column>, <compute's columns>``.

    ``models`` maps names to fitted models (or to anything else, passed as it is: a number,
    a string); a Bayesian model is thinned to ``max_draws`` draws (:func:`thin_posterior`)
    and ``compute`` receives the thinned one. ``compute`` gets a pandas frame indexed by
    customer id with the summary's attrs and returns a Series or frame on that index.
    ``frame`` must carry the summary metadata in each model's time unit.

    ``keyed=False``: ``compute`` returns a frame of its own rows (not one per customer, e.g.
    per-draw partial sums of the batch); the result is those rows, without the id column.
    """
    from clvmodels.engines.spark import quiet_pandas_warnings, with_summary_attrs

    unit = next((m.time_unit_ for m in models.values()
                 if getattr(m, "time_unit_", None) is not None), None)
    attrs = frame_time_unit(frame, unit, "the customers' Spark frame")
    id_col = frame.columns[0]
    local = {n: thin_posterior(m, max_draws) if hasattr(m, "save") else m
             for n, m in models.items()}
    with quiet_pandas_warnings():
        probe = frame.limit(PROBE_ROWS).toPandas()
    sample = _as_frame(compute(local, _batch(probe, id_col, attrs)))
    columns = [str(c) for c in sample.columns]
    key = [f"`{id_col}` {frame.schema[id_col].dataType.simpleString()}"] if keyed else []
    schema = ", ".join(key + [f"`{c}` {_spark_type(sample[c].dtype)}" for c in columns])
    shipped = {n: ShippedModel.of(m) if hasattr(m, "save") else m for n, m in local.items()}
    try:
        bc: Any = frame.sparkSession.sparkContext.broadcast(shipped)
    except Exception:  # Spark Connect has no SparkContext: the models ride in the closure
        bc = _Inline(shipped)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        fitted = {n: _loaded(s, loader) if isinstance(s, ShippedModel) else s
                  for n, s in bc.value.items()}
        for pdf in batches:
            if len(pdf) == 0:
                continue
            out = _as_frame(compute(fitted, _batch(pdf, id_col, attrs)))
            out.columns = [str(c) for c in out.columns]
            out = out[columns]
            if not keyed:
                yield out.reset_index(drop=True)
                continue
            out.index.name = id_col
            yield out.reset_index()

    with quiet_pandas_warnings():
        return with_summary_attrs(frame.mapInPandas(run, schema), attrs)
