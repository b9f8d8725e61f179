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

What a Spark result cannot carry: the pandas ``attrs`` of a Bayesian valuation
(``total_clv`` and its interval need every customer's draws at once: sum ``clv`` in Spark
for the total's mean), and a per-customer ``acquisition_cost`` Series (give a number, or
join the costs afterwards). The time unit of the frame must be the model's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from clvmodels.engines.spark_score import MAX_DRAWS, map_customers
from clvmodels.models.persistence import load_model

__all__ = ["spark_lifetime_value"]


def _value(value: Callable[..., Any], kwargs: dict[str, Any], models: dict[str, Any],
           batch: Any) -> Any:
    out = value(models["transaction"], models["spend"], batch, **kwargs)
    out.attrs = {}
    return out


def spark_lifetime_value(value: Callable[..., Any], transaction_model: Any, spend_model: Any,
                         data: Any, *, max_draws: int = MAX_DRAWS, **kwargs: Any) -> Any:
    """Per-customer CLV of the Spark summary ``data`` as a Spark DataFrame: ``value``
    (:func:`~clvmodels.customer_lifetime_value`, passed by its module) on every partition
    with ``kwargs``; ``max_draws`` caps the posterior draws broadcast for a Bayesian
    model."""
    cost = kwargs.get("acquisition_cost")
    if cost is not None and not isinstance(cost, int | float):
        raise TypeError("with a Spark frame, acquisition_cost must be a number (join "
                        "per-customer costs to the result instead)")
    if not isinstance(spend_model, int | float | str) and not hasattr(spend_model, "save"):
        raise TypeError("with a Spark frame, the spend model must be a fitted model, a "
                        "number or a column name")
    return map_customers(data, {"transaction": transaction_model, "spend": spend_model},
                         functools.partial(_value, value, kwargs), loader=load_model,
                         max_draws=max_draws)
