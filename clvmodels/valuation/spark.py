""":func:`clvmodels.customer_lifetime_value` on a Spark summary: every customer valued on the
executors, the result a Spark DataFrame (issue 12).

The models are broadcast as their saved files and each partition is valued by the pandas
:func:`~clvmodels.customer_lifetime_value` itself (:func:`clvmodels.engines.spark_score.
map_customers`), so each customer's row equals the pandas engine's: ``<customer id>,
expected_purchases, probability_alive, expected_spend, clv`` [+ ``clv_to_cac``] (a
contractual model: its columns). Bayesian models (and a Bayesian Gamma-Gamma) are thinned
to at most :data:`~clvmodels.engines.spark_score.MAX_DRAWS` evenly spaced posterior draws
first (:func:`~clvmodels.engines.spark_score.thin_posterior`), so their means and
``clv_lower`` / ``clv_upper`` are those of the pandas call on the thinned models.

The totals of a Bayesian valuation -- what pandas keeps in the result's ``attrs``
(``total_clv`` and its interval) -- need every customer's draws at once, which no Spark
row holds: :func:`spark_value_totals` computes them in one more distributed pass. Each
batch of customers returns, per posterior draw s, its partial sums ``sum_i CLV_i^s`` and
``sum_i E[Y_i(horizon)]^s`` (S rows, S <= ``max_draws``), Spark adds them up per draw and
only those S sums come to the driver, which takes their mean and central interval exactly as
the pandas valuation does with its per-draw totals (so they equal the pandas call on the
thinned models). What a Spark result cannot carry: a per-customer ``acquisition_cost``
Series (give a number, or join the costs afterwards). The time unit of the frame must be
the model's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from clvmodels.engines.spark_score import MAX_DRAWS, map_customers
from clvmodels.models.persistence import load_model

__all__ = ["spark_lifetime_value", "spark_value_totals"]


def _value(value: Callable[..., Any], kwargs: dict[str, Any], with_data: bool,
           models: dict[str, Any], batch: Any) -> Any:
    out = value(models["transaction"], models["spend"], batch, **kwargs)
    out.attrs = {}
    if with_data:
        out = pd.concat([batch, out], axis=1)
    return out


def _check_models(spend_model: Any, kwargs: dict[str, Any]) -> None:
    cost = kwargs.get("acquisition_cost")
    if cost is not None and not isinstance(cost, int | float):
        raise TypeError("with a Spark frame, acquisition_cost must be a number (join "
                        "per-customer costs to the result instead)")
    if not isinstance(spend_model, int | float | str) and not hasattr(spend_model, "save"):
        raise TypeError("with a Spark frame, the spend model must be a fitted model, a "
                        "number or a column name")


def spark_lifetime_value(value: Callable[..., Any], transaction_model: Any, spend_model: Any,
                         data: Any, *, max_draws: int = MAX_DRAWS, with_data: bool = False,
                         **kwargs: Any) -> Any:
    """Per-customer CLV of the Spark summary ``data`` as a Spark DataFrame: ``value``
    (:func:`~clvmodels.customer_lifetime_value`, passed by its module) on every partition
    with ``kwargs``; ``max_draws`` caps the posterior draws broadcast for a Bayesian
    model; ``with_data``: the summary's columns first, then the valuation's (the pandas
    forecast's layout)."""
    _check_models(spend_model, kwargs)
    return map_customers(data, {"transaction": transaction_model, "spend": spend_model},
                         functools.partial(_value, value, kwargs, with_data), loader=load_model,
                         max_draws=max_draws)


def _draw_totals(settings: Any, models: dict[str, Any], batch: pd.DataFrame) -> pd.DataFrame:
    """Per posterior draw, the batch's sums of CLV and of expected purchases over the
    horizon (:func:`clvmodels.valuation._transaction._posterior_clv`, the pandas code)."""
    from clvmodels.valuation._settings import _check_spend, _Grid
    from clvmodels.valuation._transaction import _posterior_clv

    model, spend = models["transaction"], _check_spend(models["spend"])
    _, clv = _posterior_clv(model, spend, batch, settings.grid(), margin=settings.margin,
                            interval=settings.interval)
    # one boundary at the horizon, no discounting, spend 1: E[Y_i(horizon)] per draw
    once = _Grid(horizon=settings.horizon, step=settings.horizon, count=1, discount_rate=0.0,
                 unit=settings.time_unit, midpoint=False)
    _, purchases = _posterior_clv(model, 1.0, batch, once, margin=1.0,
                                  interval=settings.interval)
    return pd.DataFrame({"draw": np.arange(len(clv), dtype=np.int64), "clv": clv,
                         "purchases": purchases})


def spark_value_totals(transaction_model: Any, spend_model: Any, data: Any, *,
                       horizon: float | str, discount_rate: float, margin: float = 1.0,
                       period: str | float | None = None, discounting: str = "period",
                       interval: float = 0.9, max_draws: int = MAX_DRAWS) -> dict[str, Any]:
    """The base's totals of a Bayesian (transaction) valuation of the Spark summary ``data``
    with their central ``interval``: ``total_clv``, ``total_clv_lower``,
    ``total_clv_upper``, ``total_purchases`` (expected purchases over the horizon, summed),
    ``total_purchases_lower``, ``total_purchases_upper``, ``interval``, ``n_draws``.

    Per draw s, ``total^s = sum_i margin E[M_i]^s sum_k c_k E[Y_i(t_k)]^s`` (the pandas
    valuation's per-draw total); executors return per-batch partial sums per draw, Spark sums
    them per draw, the driver takes the mean and the (1 +- interval) / 2 quantiles of the S
    totals -- equal to the pandas ``customer_lifetime_value(...).attrs`` of the models
    thinned to ``max_draws`` (:func:`~clvmodels.engines.spark_score.thin_posterior`). The
    purchases' draws are those of a valuation with spend 1, no discounting and margin 1.
    One more pass over the customers (the per-customer valuation is another).
    """
    from pyspark.sql import functions as F

    from clvmodels.engines.spark import quiet_pandas_warnings
    from clvmodels.valuation._settings import (
        _check_spend,
        _model_kind,
        _posterior,
        value_settings,
    )

    kind = _model_kind(transaction_model)
    if kind != "continuous" or not _posterior(transaction_model):
        raise TypeError("spark_value_totals values a Bayesian continuous-time transaction "
                        "model (BayesianBetaGeo, BayesianParetoNBD ...); an MLE model's "
                        "totals are sums of the per-customer columns (F.sum('clv'))")
    _check_spend(spend_model)
    unit = getattr(transaction_model, "time_unit_", None)
    settings = value_settings(kind, unit, horizon=horizon, discount_rate=discount_rate,
                              margin=margin, period=period, discounting=discounting,
                              interval=interval)
    if not np.isfinite(settings.horizon):
        raise ValueError("a Bayesian valuation needs a finite horizon")
    parts = map_customers(data, {"transaction": transaction_model, "spend": spend_model},
                          functools.partial(_draw_totals, settings), loader=load_model,
                          max_draws=max_draws, keyed=False)
    with quiet_pandas_warnings():
        sums = (parts.groupBy("draw").agg(F.sum("clv").alias("clv"),
                                          F.sum("purchases").alias("purchases"))
                .toPandas().sort_values("draw"))
    q = (1 - settings.interval) / 2
    out: dict[str, Any] = {"interval": settings.interval, "n_draws": len(sums)}
    for name, column in (("total_clv", "clv"), ("total_purchases", "purchases")):
        draws = sums[column].to_numpy(dtype=float)
        lo, hi = np.quantile(draws, [q, 1 - q])
        out.update({name: float(draws.mean()), f"{name}_lower": float(lo),
                    f"{name}_upper": float(hi)})
    return out
