"""The batch forecast as one function: data → summary → models → per-customer CLV.

The ``clvmodels forecast`` command and ``make demo`` both call :func:`forecast`, so the
command line stays a thin wrapper. The input is handled by the model's data kind (read from
the registry, never from its name):

* ``continuous`` (BG/NBD, MBG/NBD, Pareto/NBD and their Bayesian variants): raw transactions
  → :func:`~clvmodels.rfm_summary` (or a calibration/holdout split);
* ``discrete`` (BG/BB): an already summarised discrete-time frame or file — ``frequency,
  recency`` and ``T`` (or ``periods``) counted in opportunities [+ a weights column];
* ``contractual`` (sBG): subscription records → :func:`~clvmodels.contract_summary`.

Steps report progress through an optional callback.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clvmodels.models import registry
from clvmodels.rfm import calibration_holdout_split, read_transactions, rfm_summary
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
    """What :func:`forecast` produced.

    ``rfm`` is the summary the model was fitted on (an RFM frame, a discrete-time frame or a
    contract summary, by the model's data kind); ``spend_model`` is the spend model, the
    constant spend per transaction, or — for a contractual model — the revenue per period
    (a number or a per-customer Series).
    """

    rfm: pd.DataFrame
    forecast: pd.DataFrame
    transaction_model: Any
    spend_model: Any
    tiers: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)


def _build(cls: type, penalizer: float, covariates: Mapping[str, Any] | None = None) -> Any:
    """A new model: MLE classes take the penalizer, Bayesian ones their priors' defaults;
    both take the covariate lists given (``{"purchase_covariates": [...], ...}``)."""
    extra = {k: list(v) for k, v in (covariates or {}).items() if v}
    if getattr(cls, "bayesian", False):
        if penalizer:
            raise ValueError(f"penalizer applies to maximum-likelihood models, not to "
                             f"{registry.label_of(cls)} (set its priors instead)")
        return cls(**extra)
    return cls(penalizer=penalizer, **extra)


def _frame(source: pd.DataFrame | str | os.PathLike, what: str) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, str | os.PathLike):
        return read_transactions(source)
    raise TypeError(f"{what} must be a DataFrame or a CSV / Parquet path, got "
                    f"{type(source).__name__}")


def forecast(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    horizon: str | float = "12M",
    discount_rate: float = 0.10,
    margin: float = 1.0,
    model: str = "bgnbd",
    spend: str | float | None = "gammagamma",
    time_unit: str | None = None,
    period: str | None = None,
    observation_end: object = None,
    calibration_end: object = None,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str = "amount",
    engine: str = "pandas",
    acquisition_cost: float | None = None,
    penalizer: float = 0.0,
    progress: Callable[[str], None] | None = None,
    weights_col: str | None = None,
    start_col: str = "start",
    end_col: str = "end",
    revenue_per_period: float | str | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    purchase_covariates: Sequence[str] | None = None,
    dropout_covariates: Sequence[str] | None = None,
    spend_covariates: Sequence[str] | None = None,
    customers: pd.DataFrame | str | os.PathLike | None = None,
    customers_id_col: str | None = None,
) -> ForecastResult:
    """From raw data to per-customer discounted CLV in one call.

    Summarises the input as the model's data kind needs (see the module docstring), fits the
    model (``model``: any registry name — "bgnbd", "pnbd", "bgbb", "sbg", "bayes-bgnbd",
    "bayes-sbg" …; ``fit_kwargs`` go to its ``fit``, e.g. the sampler settings ``{"draws":
    500, "tune": 500, "chains": 2, "random_seed": 1}`` of a Bayesian model), values every
    customer over ``horizon`` (e.g. "12M") at the **annual** ``discount_rate`` with
    :func:`~clvmodels.customer_lifetime_value`, and assigns value tiers (top 20 % / middle
    30 % / low 50 % by CLV).

    Transaction models (continuous and discrete)
        ``spend``: a spend model's registry name ("gammagamma", "bayes-gammagamma"), fitted
        on the same summary (it needs ``monetary_value``), a number (the same spend per
        transaction for everyone) or None (1.0: CLV counted in transactions).
        ``time_unit``: the model's unit — for continuous models the RFM summary's (default
        "W"), for BG/BB the length of one opportunity (e.g. "Y" for annual donations; default:
        the frame's ``attrs["time_unit"]``). ``period``: the discounting period (default "M";
        BG/BB: one opportunity).
    Discrete-time models (BG/BB)
        ``transactions`` is the summary itself (a frame or a CSV / Parquet file) with
        ``frequency, recency`` and ``T`` or ``periods``; ``weights_col`` names a column of
        counts when each row stands for that many identical customers (then
        ``settings["total_clv"]`` and ``n_customers`` are weighted; the forecast stays one row
        per input row, each with one customer's CLV). A ``customer_id_col`` column becomes
        the index. ``calibration_end`` does not apply.
    Contractual models (sBG)
        ``transactions`` are subscription records (one row per subscription, columns
        ``customer_id_col``, ``start_col``, ``end_col``; a frame or a file) summarised by
        :func:`~clvmodels.contract_summary` up to ``observation_end`` (required) with contract
        period ``period`` (default "M"; it is also the model's time unit).
        ``revenue_per_period``: a number, or the name of a column of the records (each
        customer's value in their latest record), or None (1.0: CLV counted in discounted
        payments). Valuation at each customer's next renewal decision (Fader & Hardie 2010).

    Returns a :class:`ForecastResult` whose ``forecast`` frame has, per customer, the summary
    columns, the valuation's columns (transaction models: ``expected_purchases,
    probability_alive, expected_spend, clv``; contractual: ``expected_periods,
    probability_active, revenue_per_period, clv``; Bayesian: also ``clv_lower, clv_upper``)
    and ``value_tier``.

    Covariates
        ``purchase_covariates`` / ``dropout_covariates`` (transaction or contractual model)
        and ``spend_covariates`` (the spend model) name attribute columns; every customer is
        then fitted and valued with their own attributes (links equation (1) of
        :mod:`clvmodels.models.links`). The columns come from ``customers`` (an attribute
        table, a frame or a CSV / Parquet file, keyed by its index or its column
        ``customers_id_col``, default ``customer_id_col`` when present; joined with
        :func:`clvmodels.join_customers`), else from the transactions or subscription
        records given as a frame (each customer's value on their first transaction, or on
        their earliest-starting record), else from the summary itself (discrete data). A
        covariate group the family does not take (purchase covariates on the sBG) is refused
        before any data are read for it.
    """
    from clvmodels.evaluation.fitting import attach_covariates
    from clvmodels.kpis import value_tiers
    from clvmodels.valuation import customer_lifetime_value, value_settings

    say = progress or (lambda _msg: None)
    cls = model_class(model)
    kind = cls.data_kind
    if kind not in ("continuous", "discrete", "contractual"):
        raise ValueError(f"model {model!r} is a {kind} model: forecast needs a transaction "
                         "model (bgnbd, pnbd, bgbb …) or a contractual one (sbg)")
    fit_options = dict(fit_kwargs or {})
    weights: np.ndarray | None = None
    t_cov = {"purchase_covariates": purchase_covariates,
             "dropout_covariates": dropout_covariates}
    tmodel = _build(cls, penalizer, t_cov)  # refuses a covariate group the family lacks
    # the period discounts a transaction model's purchases; for a contract it is the
    # contract period, which is also the model's time unit
    value_period = {"continuous": period or "M", "discrete": period}.get(kind)

    def check(unit: str | None) -> Any:  # every valuation argument, before the work
        return value_settings(kind, unit, horizon=horizon, discount_rate=discount_rate,
                              margin=margin, period=value_period)

    if kind == "contractual":
        if time_unit is not None and time_unit != (period or "M"):
            raise ValueError(f"a contractual model's time unit is its contract period "
                             f"(period={period or 'M'!r}); time_unit={time_unit!r} "
                             "contradicts it")
        settings_ = check(period or "M")
        data, revenue = _contract_input(
            transactions, customer_id_col=customer_id_col, start_col=start_col,
            end_col=end_col, observation_end=observation_end, period=period or "M",
            engine=engine, revenue_per_period=revenue_per_period, say=say)
    elif kind == "discrete":
        if calibration_end is not None:
            raise ValueError("calibration_end applies to raw transactions (continuous-time "
                             "models); a discrete-time model is fitted on a summary")
        data, weights = _discrete_input(transactions, time_unit=time_unit,
                                        weights_col=weights_col,
                                        customer_id_col=customer_id_col)
        settings_ = check(data.attrs["time_unit"])
        if weights_col is not None:
            fit_options.setdefault("weights", weights_col)
    else:
        settings_ = check(time_unit or "W")
        keywords = dict(customer_id_col=customer_id_col, datetime_col=datetime_col,
                        monetary_value_col=monetary_value_col
                        if isinstance(spend, str) and spend else None,
                        time_unit=settings_.time_unit, engine=engine)
        say("Summarising transactions")
        if calibration_end is not None:
            data = calibration_holdout_split(transactions, calibration_end=calibration_end,
                                             observation_end=observation_end, **keywords)
        else:
            data = rfm_summary(transactions, observation_end=observation_end, **keywords)
    unit, h = settings_.time_unit, settings_.horizon
    s_cov = {"spend_covariates": spend_covariates}
    wanted = [c for group in (*t_cov.values(), *s_cov.values()) for c in (group or [])]
    if wanted:
        source = transactions if isinstance(transactions, pd.DataFrame) else None
        order = None
        if source is not None and kind == "contractual" and start_col in source.columns:
            from clvmodels._contract_rules import parse_days

            order = pd.Series(parse_days(source[start_col], start_col).days)
        data = attach_covariates(data, wanted, customers=customers,
                                 customers_id_col=customers_id_col,
                                 transactions=source if kind != "discrete" else None,
                                 customer_id_col=customer_id_col, order=order)
    elif customers is not None:
        raise ValueError("customers= is an attribute table for covariates: name the columns "
                         "to use (purchase_covariates=, dropout_covariates=, "
                         "spend_covariates=)")
    say(f"Fitting {model} on {len(data):,} " + ("rows" if weights is not None else "customers"))
    tmodel = tmodel.fit(data, **fit_options)
    smodel: Any
    if kind == "contractual":
        smodel = revenue
    elif isinstance(spend, str) and spend:
        if "monetary_value" not in data.columns:
            raise ValueError(f"the {spend} spend model needs a monetary_value column, which "
                             "the data do not have: pass spend=None (CLV in transactions) or "
                             "spend=<amount per transaction>")
        say(f"Fitting {spend}")
        spend_cls = model_class(spend)
        spend_options = {"weights": weights_col} if weights_col is not None else {}
        if getattr(spend_cls, "bayesian", False):
            spend_options.update({k: v for k, v in fit_options.items() if k != "weights"})
        smodel = _build(spend_cls, penalizer, s_cov).fit(data, **spend_options)
    else:
        if spend_covariates:
            raise ValueError("spend_covariates need a spend model (spend='gammagamma' …)")
        smodel = 1.0 if spend is None or spend == "" else float(spend)
    say("Valuing customers")
    value = customer_lifetime_value(
        tmodel, smodel, data, horizon=h, discount_rate=discount_rate,
        margin=margin, period=value_period,
        acquisition_cost=acquisition_cost)
    labels, tiers = value_tiers(value["clv"], weights=weights)  # in customers
    out = pd.concat([data, value], axis=1)
    out["value_tier"] = labels
    out.attrs = dict(data.attrs)
    out.attrs.update(value.attrs)
    w = np.ones(len(data)) if weights is None else weights
    settings = {
        "model": model, "data_kind": kind,
        "spend": spend if kind != "contractual" else None, "horizon": str(horizon),
        "horizon_units": h, "time_unit": unit, "discount_rate": discount_rate,
        "margin": margin, "period": value.attrs.get("period"),
        "observation_end": data.attrs.get("observation_end"),
        "n_customers": round(float(w.sum())),
        "total_clv": float(np.sum(w * value["clv"].to_numpy(dtype=float))),
    }
    if kind == "contractual":
        settings["revenue_per_period"] = (revenue_per_period if revenue_per_period is not None
                                          else 1.0)
    if "total_clv_lower" in value.attrs and weights is None:
        settings["total_clv_lower"] = value.attrs["total_clv_lower"]
        settings["total_clv_upper"] = value.attrs["total_clv_upper"]
    return ForecastResult(rfm=data, forecast=out, transaction_model=tmodel,
                          spend_model=smodel, tiers=tiers, settings=settings)


def _discrete_input(source: pd.DataFrame | str | os.PathLike, *, time_unit: str | None,
                    weights_col: str | None, customer_id_col: str
                    ) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The discrete-time summary (a copy, validated), its time unit set, and its weights."""
    from clvmodels.datakinds import resolve_weights, validate_kind

    frame = _frame(source, "the discrete-time summary").copy()
    unit = frame.attrs.get("time_unit")
    if customer_id_col in frame.columns:
        frame = frame.set_index(customer_id_col)
    if time_unit is not None and unit is not None and time_unit != unit:
        raise ValueError(f"the data's time unit is {unit!r} but time_unit={time_unit!r} was "
                         "given")
    unit = time_unit or unit
    if unit is None:
        raise ValueError("give time_unit= for a discrete-time model: the length of one "
                         "transaction opportunity (e.g. 'Y' for annual donations), which "
                         "converts the annual discount rate and the horizon")
    frame.attrs["time_unit"] = unit
    validate_kind(frame, "discrete", "the discrete-time summary")
    return frame, resolve_weights(frame, weights_col)


def _contract_input(source: pd.DataFrame | str | os.PathLike, *, customer_id_col: str,
                    start_col: str, end_col: str, observation_end: object, period: str,
                    engine: str, revenue_per_period: float | str | None,
                    say: Callable[[str], None]) -> tuple[pd.DataFrame, Any]:
    """Subscription records → contract summary, and the revenue per period."""
    from clvmodels.contract import contract_summary

    if observation_end is None:
        raise ValueError("observation_end is required for subscription records: the day up to "
                         "which renewals are known")
    records: Any = source
    if isinstance(revenue_per_period, str) and not isinstance(source, pd.DataFrame):
        records = _frame(source, "the subscription records")
    say("Summarising subscriptions")
    data = contract_summary(records, customer_id_col=customer_id_col, start_col=start_col,
                            end_col=end_col, observation_end=observation_end, period=period,
                            engine=engine)
    if revenue_per_period is None:
        return data, 1.0
    if not isinstance(revenue_per_period, str):
        return data, revenue_per_period
    from clvmodels._validation import require_columns

    require_columns(records, [revenue_per_period, customer_id_col, start_col],
                    "the subscription records")
    latest = (records[[customer_id_col, start_col, revenue_per_period]]
              .sort_values(start_col, kind="stable")
              .groupby(customer_id_col, sort=False)[revenue_per_period].last())
    latest.index.name = data.index.name
    return data, latest.rename(revenue_per_period)
