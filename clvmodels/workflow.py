"""The batch forecast as one function: transactions → RFM → models → per-customer CLV.

The ``clvmodels forecast`` command and ``make demo`` both call :func:`forecast`, so the
command line stays a thin wrapper. Steps report progress through an optional callback.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clvmodels.models import registry
from clvmodels.rfm import calibration_holdout_split, rfm_summary
from clvmodels.valuation import parse_horizon  # re-exported: it has always been importable here

__all__ = ["ForecastResult", "forecast", "model_class", "parse_horizon"]

def __getattr__(name: str) -> Any:
    if name == "TRANSACTION_MODELS":  # computed: the registry may grow
        return tuple(registry.model_names(role="transaction", bayesian=False))
    raise AttributeError(f"module 'clvmodels.workflow' has no attribute {name!r}")


def model_class(name: str) -> type:
    """The model class registered under ``name`` ("bgnbd", "pnbd", "bgbb", "sbg",
    "gammagamma", "bayes-bgnbd" …; see :func:`clvmodels.models.registry.model_names`)."""
    return registry.get_model(name)


@dataclass
class ForecastResult:
    """What :func:`forecast` produced."""

    rfm: pd.DataFrame
    forecast: pd.DataFrame
    transaction_model: Any
    spend_model: Any
    tiers: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)


def forecast(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    horizon: str | float = "12M",
    discount_rate: float = 0.10,
    margin: float = 1.0,
    model: str = "bgnbd",
    spend: str | None = "gammagamma",
    time_unit: str = "W",
    period: str = "M",
    observation_end: object = None,
    calibration_end: object = None,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str = "amount",
    engine: str = "pandas",
    acquisition_cost: float | None = None,
    penalizer: float = 0.0,
    progress: Callable[[str], None] | None = None,
) -> ForecastResult:
    """From raw transactions to per-customer discounted CLV in one call.

    Summarises the transactions (up to ``calibration_end`` when given, keeping the holdout
    columns beside), fits the transaction model and the spend model by maximum likelihood,
    values every customer over ``horizon`` (e.g. "12M") at the **annual** ``discount_rate``
    and assigns value tiers (top 20 % / middle 30 % / low 50 % by CLV).

    Returns a :class:`ForecastResult` whose ``forecast`` frame has, per customer, the RFM
    columns, ``expected_purchases, probability_alive, expected_spend, clv`` and ``value_tier``.
    """
    from clvmodels.kpis import value_tiers
    from clvmodels.valuation import customer_lifetime_value

    say = progress or (lambda _msg: None)
    keywords = dict(customer_id_col=customer_id_col, datetime_col=datetime_col,
                    monetary_value_col=monetary_value_col if spend else None,
                    time_unit=time_unit, engine=engine)
    say("Summarising transactions")
    if calibration_end is not None:
        rfm = calibration_holdout_split(transactions, calibration_end=calibration_end,
                                        observation_end=observation_end, **keywords)
    else:
        rfm = rfm_summary(transactions, observation_end=observation_end, **keywords)
    h = parse_horizon(horizon, time_unit)
    say(f"Fitting {model} on {len(rfm):,} customers")
    tmodel = model_class(model)(penalizer=penalizer).fit(rfm)
    if spend:
        say(f"Fitting {spend}")
        smodel: Any = model_class(spend)(penalizer=penalizer).fit(rfm)
    else:
        smodel = 1.0
    say("Valuing customers")
    value = customer_lifetime_value(tmodel, smodel, rfm, horizon=h,
                                    discount_rate=discount_rate, margin=margin, period=period,
                                    acquisition_cost=acquisition_cost)
    labels, tiers = value_tiers(value["clv"])
    out = pd.concat([rfm, value], axis=1)
    out["value_tier"] = labels
    out.attrs = dict(rfm.attrs)
    out.attrs.update(value.attrs)
    settings = {
        "model": model, "spend": spend, "horizon": str(horizon), "horizon_units": h,
        "time_unit": time_unit, "discount_rate": discount_rate, "margin": margin,
        "period": period, "observation_end": rfm.attrs.get("observation_end"),
        "n_customers": len(rfm), "total_clv": float(np.sum(value["clv"])),
    }
    return ForecastResult(rfm=rfm, forecast=out, transaction_model=tmodel,
                          spend_model=smodel, tiers=tiers, settings=settings)
