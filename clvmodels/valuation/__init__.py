"""Customer lifetime value: expected purchases (or paid periods) × spend × margin, discounted.

Knows nothing of how a model was fitted: it uses the models through their protocols
(:mod:`clvmodels.models.protocol`), their ``data_kind`` and :func:`is_posterior`.

* **Transaction models** (``data_kind`` ``"continuous"``: BG/NBD, MBG/NBD, Pareto/NBD;
  ``"discrete"``: BG/BB) with a spend model (Gamma-Gamma) or a constant spend:
  CLV = margin × expected spend × discounted expected purchases.
* **Contractual models** (``data_kind == "contractual"``: sBG) with a revenue per period:
  CLV = margin × revenue per period × DERL, the discounted expected residual lifetime
  (Fader & Hardie 2010, eq. 6), valued at each customer's next renewal decision.

How the future of a transaction model is discounted (``discount_rate`` is an **annual** rate d):

* ``"period"`` (default): purchases expected in each period of length ``period`` are
  discounted at the period's end, with factor (1 + d)^-(end in years);
* ``"continuous"``: each purchase is discounted at the moment it is expected, e^{-delta tau}
  with delta = ln(1 + d) per year, integrated numerically over a fine (daily) grid.

``horizon=np.inf`` uses the model's closed form where it has one: a class attribute
``dert_discounting`` names the discounting its ``expected_discounted_transactions`` (DERT)
implies — ``"continuous"`` (Pareto/NBD, FHL 2005 eq. 2) or ``"period"`` (BG/BB, FHS 2010 eq. 14:
one opportunity per period) — and the valuation must be asked for that discounting.

The cumulative expected purchases are evaluated at the period boundaries in one broadcast over
the *unique* data rows and differenced by Abel summation — no loop over periods — in chunks of
rows *and* of boundaries (running sums), so memory stays bounded whatever the horizon and the
number of customers. At most :data:`MAX_PERIODS` period boundaries are summed (a longer horizon
is refused with advice: a longer period, a shorter horizon, or ``np.inf``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import pandas as pd

from clvmodels.engines.spark_fit import is_spark_frame
from clvmodels.valuation._contract import _contract_value, _revenue
from clvmodels.valuation._settings import (
    MAX_PERIODS,
    ValueSettings,
    _check_acquisition_cost,
    _check_closed_form,
    _check_spend,
    _describe,
    _model_kind,
    _posterior,
    discount_factors,
    parse_horizon,
    period_length,
    value_settings,
)
from clvmodels.valuation._transaction import _mle_lifetime_value, _posterior_lifetime_value

__all__ = [
    "MAX_PERIODS",
    "ValueSettings",
    "customer_lifetime_value",
    "discount_factors",
    "parse_horizon",
    "period_length",
    "value_settings",
]


def customer_lifetime_value(
    transaction_model: Any,
    spend_model: Any,
    data: pd.DataFrame,
    *,
    horizon: float | str,
    discount_rate: float,
    margin: float = 1.0,
    period: str | float | None = None,
    discounting: Literal["period", "continuous"] = "period",
    acquisition_cost: float | pd.Series | None = None,
    interval: float = 0.9,
) -> pd.DataFrame:
    """Per-customer CLV: the present value of future margin.

    Parameters
    ----------
    transaction_model
        A fitted transaction model — continuous time (BG/NBD, MBG/NBD, Pareto/NBD) or
        discrete opportunities (BG/BB) — or a fitted contractual model (sBG); maximum
        likelihood or Bayesian.
    spend_model
        With a transaction model: a fitted spend model (:class:`~clvmodels.GammaGamma`,
        Bayesian or not) or a number (the same spend per transaction for everyone).
        With a contractual model: the **revenue per period** — a number, a Series on
        ``data``'s index (per-customer revenue) or the name of a column of ``data``.
    data
        Customers to value (a Spark summary: valued on the executors and returned as a
        Spark DataFrame, see :mod:`clvmodels.valuation.spark`), in the model's time unit:
        ``frequency, recency, T`` (discrete:
        ``T`` or ``periods`` = opportunities) [+ ``monetary_value``], or for a contractual
        model ``periods, churned`` (:func:`clvmodels.contract_summary`). Not modified.
    horizon
        How far ahead: a number of model time units (weeks for a weekly model; opportunities
        for BG/BB; periods for sBG), a string "12M", "52W", "90D", "2Y" (converted with the
        model's time unit; discrete and contractual models need it to be a whole number of
        opportunities / periods), or ``np.inf`` where a closed form exists: a transaction
        model's DERT (its ``dert_discounting`` says which discounting it implies: Pareto/NBD
        ``"continuous"``; BG/BB ``"period"`` with ``period`` = one opportunity), a contractual
        model's DERL (always). Maximum-likelihood models only for transaction DERT.
    discount_rate
        **Annual** discount rate in [0, 1), e.g. 0.10 (converted per period with the model's
        time unit). ``horizon=np.inf`` needs it > 0.
    margin
        Share of revenue that is profit, in [0, 1] (1.0 = value revenue).
    period
        Bucket length for ``discounting="period"``: "D", "W", "M" (30.4375 days), "Y", or a
        number of model time units. Default: a month for continuous-time models, one
        opportunity for BG/BB (a whole number of opportunities is required), one contract
        period for contractual models (nothing else is allowed: one payment per period).
    discounting
        "period" (discount at each period's end) or "continuous" (continuous-time
        transaction models only).
    acquisition_cost
        Optional cost to acquire each customer (number > 0 or Series on ``data``'s index);
        adds ``clv_to_cac``.
    interval
        Bayesian models only: probability of the central credible intervals ``clv_lower`` /
        ``clv_upper`` and of the base's total (default 0.9).

    Returns
    -------
    DataFrame on ``data``'s index. Transaction models: ``expected_purchases``
    (undiscounted, over the horizon), ``probability_alive``, ``expected_spend``, ``clv``
    [, ``clv_to_cac``]. Contractual models: ``expected_periods`` (undiscounted expected
    further payments over the horizon), ``probability_active`` (probability of paying the
    next period: 0 for churned customers), ``revenue_per_period``, ``clv``
    [, ``clv_to_cac``].

    With ``horizon=np.inf`` the undiscounted expected count can diverge (Pareto/NBD
    s <= 1, BG/BB gamma <= 1, sBG alpha <= 1: some customers almost never leave); then
    ``expected_purchases`` / ``expected_periods`` hold the *discounted* count (DERT / DERL)
    instead, ``attrs["expected_count"]`` says so and a ``UserWarning`` is issued — never a
    silent NaN or inf. Otherwise ``attrs["expected_count"] == "undiscounted"``.

    Contractual valuation follows Fader & Hardie (2010): each active customer is valued at
    their next renewal decision, that payment (if made) undiscounted, the later ones
    discounted per period; CLV = margin × revenue per period × DERL (eq. 6), over a finite
    horizon of K periods the next K renewal decisions only.

    With a Bayesian model every column is a posterior mean and ``clv_lower`` / ``clv_upper``
    are added; ``attrs`` then carry ``total_clv`` (posterior mean of the base's total) and
    ``total_clv_lower`` / ``total_clv_upper``. A Bayesian spend model's draws (a
    ``BayesianGammaGamma``) are paired with the transaction model's, so the interval
    includes spend uncertainty. The draws are processed in chunks of customers (the model's
    ``discounted_purchase_chunks``; contractual: ``residual_lifetime_draws`` on the unique
    rows), so memory stays bounded whatever the number of customers and draws.

    Raises
    ------
    TypeError
        An argument of the wrong kind: a spend model first or a transaction model second
        (swapped), a number or a DataFrame where a model belongs, a spend model with a
        contractual model.
    NotFittedError
        A model that is not fitted.
    ValueError
        A margin outside [0, 1] (``margin=30`` suggests 0.30), an annual discount rate
        outside [0, 1) (``discount_rate=10`` suggests 0.10), a horizon that is not positive,
        NaN, infinite without a closed form, not a whole number of periods (discrete /
        contractual), or longer than :data:`MAX_PERIODS` period boundaries; an unknown or
        non-positive period.
    """
    kind = _model_kind(transaction_model)
    if is_spark_frame(data):  # valued on the executors: a Spark DataFrame (valuation/spark.py)
        from clvmodels.valuation.spark import spark_lifetime_value

        return spark_lifetime_value(
            customer_lifetime_value, transaction_model, spend_model, data, horizon=horizon,
            discount_rate=discount_rate, margin=margin, period=period, discounting=discounting,
            acquisition_cost=acquisition_cost, interval=interval)
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data (the third argument) must be a pandas DataFrame of customers, "
                        f"got {_describe(data)}")
    unit = getattr(transaction_model, "time_unit_", None) or data.attrs.get("time_unit")
    s = value_settings(kind, unit, horizon=horizon, discount_rate=discount_rate, margin=margin,
                       period=period, discounting=discounting, interval=interval)
    _check_acquisition_cost(acquisition_cost, data)
    settings = dict(time_unit=s.time_unit, horizon=s.horizon, discount_rate=s.discount_rate,
                    margin=s.margin, period=s.period, discounting=s.discounting)
    if kind == "contractual":
        revenue = _revenue(spend_model, data)
        return _contract_value(transaction_model, revenue, data, horizon=s.horizon,
                               rate=s.discount_rate, acquisition_cost=acquisition_cost,
                               interval=s.interval, settings=settings)
    spend = _check_spend(spend_model)
    if math.isinf(s.horizon):
        _check_closed_form(transaction_model, s)
        grid = None
    else:
        grid = s.grid()
    if _posterior(transaction_model):
        assert grid is not None  # a posterior model has no closed form (checked above)
        return _posterior_lifetime_value(transaction_model, spend, data, grid=grid,
                                         margin=s.margin, acquisition_cost=acquisition_cost,
                                         interval=s.interval, settings=settings)
    return _mle_lifetime_value(transaction_model, spend, data, kind=kind, grid=grid,
                               rate=s.discount_rate, unit=s.time_unit, margin=s.margin,
                               acquisition_cost=acquisition_cost, settings=settings)
