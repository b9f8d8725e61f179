"""The models' side of the Spark engine: a Spark summary in ``fit`` or a prediction.

A model's ``fit`` hands a Spark DataFrame to :func:`clvmodels.engines.spark_fit.compress_for_fit`
(the unique rows and their counts come to the driver); its predictions hand one to
:func:`spark_predict`, which scores every partition with the pandas code path
(:func:`clvmodels.engines.spark_score.map_customers`: the model broadcast as its saved file,
a Bayesian model thinned to at most ``max_draws`` posterior draws) and returns a Spark
DataFrame ``<customer id>, <prediction columns>``. Nothing here imports pyspark until a
Spark frame arrives.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from clvmodels.engines.spark_fit import is_spark_frame

__all__ = ["is_spark_frame", "load_as", "spark_predict"]


def load_as(cls: type, path: str) -> Any:
    """The model of class ``cls`` saved at ``path`` (``.json``: an MLE model's
    ``to_dict``; otherwise a Bayesian model's netCDF posterior)."""
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))  # type: ignore[attr-defined]
    from clvmodels.models.netcdf import read_posterior

    idata, meta = read_posterior(path)
    return cls._from_idata(idata, meta)  # type: ignore[attr-defined]


def _call(method: str, kwargs: dict[str, Any], models: dict[str, Any], batch: Any) -> Any:
    return getattr(models["model"], method)(batch, **kwargs)


def spark_predict(model: Any, method: str, frame: Any, **kwargs: Any) -> Any:
    """``model.<method>(frame, **kwargs)`` for a Spark summary ``frame``: a Spark DataFrame
    of the id column and the method's result column(s), computed on the executors.
    ``max_draws`` (Bayesian models; default
    :data:`clvmodels.engines.spark_score.MAX_DRAWS`) caps the draws broadcast."""
    from clvmodels.engines.spark_score import MAX_DRAWS, map_customers

    max_draws = kwargs.pop("max_draws", MAX_DRAWS)
    return map_customers(frame, {"model": model}, functools.partial(_call, method, kwargs),
                         loader=functools.partial(load_as, type(model)),
                         max_draws=max_draws)
