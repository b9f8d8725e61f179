"""What the commands share for scoring with saved models and for Bayesian fits.

Importable by any command (``score``, ``fit``, ``forecast``, ``compare``, a scheduled
``run``): nothing here parses options or prints tables.

Scoring (:func:`load_models`, :func:`read_score_input`, :func:`score_frame`)
    A saved model (JSON for maximum likelihood, netCDF for Bayesian, read with
    :func:`clvmodels.load_model`) values customers in new data: transactions summarised with
    the **model's** time unit up to an explicit observation end, subscription records
    summarised with the model's contract period, or a summary file (RFM, discrete or
    contract) whose time unit must be the model's. Covariate and segment columns come from
    the data, an attribute table (joined with :func:`clvmodels.join_customers`) or the
    customers' first transactions (a subscriber's earliest record), and must be the ones the
    model was fitted with.

The output of :func:`score_frame` (one row per customer, in the data's order)
    ========================= ========= ===================================================
    column                    dtype     when
    ========================= ========= ===================================================
    ``customer_id``           as read   always (the data's customer id)
    ``frequency``             int64     transaction models: repeat purchases
    ``recency``               float64   transaction models (discrete: an opportunity)
    ``T``                     float64   transaction models (discrete: opportunities)
    ``monetary_value``        float64   transaction models with a spend model
    ``periods``               int64     contractual models: periods paid
    ``churned``               bool      contractual models
    ``expected_purchases``    float64   transaction models: over the horizon
    ``probability_alive``     float64   transaction models
    ``expected_spend``        float64   transaction models with a spend model
    ``expected_periods``      float64   contractual models: over the horizon
    ``probability_active``    float64   contractual models: pays the next period
    ``revenue_per_period``    float64   contractual models
    ``clv``                   float64   always: discounted value (posterior mean)
    ``clv_lower``             float64   Bayesian models: central credible interval
    ``clv_upper``             float64   Bayesian models
    ``weight``                int64     with ``--weights``: the customers a row stands for
    ``value_tier``            str       always: top 20% / middle 30% / low 50% by clv
                                        (of customers: a weighted row takes the tier of
                                        its middle customer)
    ========================= ========= ===================================================

    :func:`score_columns` gives the exact list for a kind of model; the columns never depend
    on the data (a test pins them). Without a spend model a transaction model's ``clv`` is
    margin x discounted expected purchases (one unit of value per purchase).

Bayesian fits on the command line (:func:`resolve_method`, :func:`bayes_options`,
:func:`convergence_lines`, :func:`check_convergence`)
    ``--method bayes`` turns a family name (``bgnbd``) into its Bayesian variant in the
    registry (``bayes-bgnbd``); sampling problems (R-hat, effective sample size, divergent
    transitions: :func:`clvmodels.models.sampling.sampling_problems`) become one line each,
    and with ``--strict`` a :class:`ConvergenceFailure` — exit code :data:`EXIT_CONVERGENCE`,
    nothing written.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clvmodels.cli._app import EXIT_CONVERGENCE, ConvergenceFailure
from clvmodels.models import registry
from clvmodels.models.sampling import convergence_lines

__all__ = [
    "EXIT_CONVERGENCE",
    "INPUT_LABELS",
    "ConvergenceFailure",
    "bayes_options",
    "check_convergence",
    "convergence_lines",
    "detect_input",
    "load_models",
    "quiet_sampling_warnings",
    "read_score_input",
    "required_columns",
    "resolve_method",
    "score_columns",
    "score_frame",
]

#: What each input kind is called in messages.
INPUT_LABELS = {
    "transactions": "transactions",
    "subscriptions": "subscription records",
    "rfm": "an RFM summary (frequency, recency, T)",
    "discrete": "a discrete-time summary (frequency, recency, T or periods)",
    "contract": "a contract summary (periods, churned)",
}

_UNIT_WORDS = {"D": "days", "W": "weeks", "M": "months", "Y": "years"}


def _unit(unit: object) -> str:
    return f"{_UNIT_WORDS.get(str(unit), str(unit))} ({unit})"


# --------------------------------------------------------------------------------------
# Bayesian options and convergence
# --------------------------------------------------------------------------------------


def resolve_method(name: str, method: str | None) -> str:
    """The registry name to fit: ``name`` itself, or with ``method="bayes"`` the Bayesian
    variant of the family ``name`` (the registered Bayesian class whose maximum-likelihood
    twin is ``name``'s class), with ``method="mle"`` the maximum-likelihood model.

    Refuses a family without a Bayesian variant, and a Bayesian name with ``method="mle"``
    (or the reverse), naming the choices.
    """
    cls = registry.get_model(name)
    bayesian = bool(getattr(cls, "bayesian", False))
    if method is None or method == ("bayes" if bayesian else "mle"):
        return _name_of(cls)
    if method == "mle":
        raise ValueError(f"--method mle: {name} is a Bayesian model; name its family "
                         f"({_name_of(getattr(cls, '_mle_class', None) or cls)}) instead")
    if method != "bayes":
        raise ValueError(f"--method must be mle or bayes, got {method!r}")
    for other in registry.models(bayesian=True):
        if getattr(other, "_mle_class", None) is cls:
            return _name_of(other)
    have = ", ".join(registry.model_names(bayesian=True))
    raise ValueError(f"--method bayes: {name} has no Bayesian variant (Bayesian models: "
                     f"{have})")


def _name_of(cls: type) -> str:
    return str(cls.name).strip().lower().replace("_", "-")  # type: ignore[attr-defined]


def bayes_options(*, draws: int, tune: int, chains: int, seed: int | None,
                  target_accept: float | None) -> dict[str, Any]:
    """The sampler settings a Bayesian model's ``fit`` takes (unset ones left out)."""
    if target_accept is not None and not 0 < target_accept < 1:
        raise ValueError(f"--target-accept must be between 0 and 1, got {target_accept}")
    out: dict[str, Any] = {"draws": draws, "tune": tune, "chains": chains}
    if seed is not None:
        out["random_seed"] = seed
    if target_accept is not None:
        out["target_accept"] = target_accept
    return out


@contextlib.contextmanager
def quiet_sampling_warnings() -> Iterator[None]:
    """Silence the sampler's combined ``SamplingWarning`` (the commands print one line per
    problem instead, from :func:`convergence_lines`) and the sampling libraries'
    deprecation notes."""
    from clvmodels.models.sampling import SamplingWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=SamplingWarning)
        # the sampling libraries' notes to developers (moved functions …), not to users
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category,
                                    module=r"(pytensor|pymc|nutpie|arviz|numba)(\.|$)")
            warnings.filterwarnings("ignore", category=category, message=r".*pytensor")
        yield


def check_convergence(lines: Iterable[str], *, strict: bool, say: Any) -> None:
    """Show each line (``say(line)``); with ``strict`` and any line, raise
    :class:`ConvergenceFailure` (the command then writes nothing and exits with 2)."""
    lines = list(lines)
    for line in lines:
        say(line)
    if strict and lines:
        raise ConvergenceFailure(
            f"--strict: {len(lines)} sampling problem(s), nothing was written; sample longer "
            "(--draws, --tune), raise --target-accept or use more --chains")


# --------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------


def load_models(model_file: Path, spend_file: Path | None) -> tuple[Any, Any]:
    """The saved transaction or contractual model and the optional spend model, checked to
    be of those roles."""
    from clvmodels.models.persistence import load_model

    model = load_model(model_file)
    kind = str(model.data_kind)
    if kind == "spend":
        raise ValueError(f"{os.fspath(model_file)} is a spend model ({registry.label_of(model)}):"
                         " give it with --spend-model and a transaction model as MODEL_FILE")
    spend = None
    if spend_file is not None:
        if kind == "contractual":
            raise ValueError(f"--spend-model: a contractual model ({registry.label_of(model)}) "
                             "has no spend model; use --revenue-per-period")
        spend = load_model(spend_file)
        if str(spend.data_kind) != "spend":
            raise ValueError(f"--spend-model {os.fspath(spend_file)} is not a spend model "
                             f"({registry.label_of(spend)})")
    return model, spend


def required_columns(*models: Any) -> list[str]:
    """Covariate and segment columns the fitted models read, once each, in order."""
    out: list[str] = []
    for m in models:
        if m is None:
            continue
        cols = [*getattr(m, "covariate_columns", []), getattr(m, "segment_col", None)]
        out += [c for c in cols if c and c not in out]
    return out


def detect_input(frame: pd.DataFrame, model_kind: str, *, customer_id: str, date: str,
                 start: str) -> str:
    """Which kind of input ``frame`` is, from its columns (a key of :data:`INPUT_LABELS`),
    checked against the model's data kind."""
    cols = set(frame.columns) | {frame.index.name}
    if {"periods", "churned"} <= cols:
        found = "contract"
    elif {"frequency", "recency"} <= cols and ({"T", "periods"} & cols):
        found = "discrete" if model_kind == "discrete" or "T" not in cols else "rfm"
    elif customer_id in cols and date in cols:
        found = "transactions"
    elif customer_id in cols and start in cols:
        found = "subscriptions"
    else:
        raise ValueError(
            f"cannot tell what the data are from their columns {sorted(map(str, cols))}: "
            f"expected transactions ({customer_id!r}, {date!r}), subscription records "
            f"({customer_id!r}, {start!r}), or a summary (frequency, recency, T; or periods, "
            "churned)")
    fits = {"continuous": ("transactions", "rfm"), "discrete": ("discrete",),
            "contractual": ("subscriptions", "contract")}[model_kind]
    if found not in fits:
        wanted = " or ".join(INPUT_LABELS[k] for k in fits)
        raise ValueError(f"the data look like {INPUT_LABELS[found]}, but a {model_kind} model "
                         f"scores {wanted}")
    return found


def _check_unit(data_unit: object, model: Any, what: str) -> None:
    unit = getattr(model, "time_unit_", None)
    if unit is not None and data_unit is not None and str(data_unit) != str(unit):
        raise ValueError(f"{what} is in {_unit(data_unit)} but the model was fitted in "
                         f"{_unit(unit)}: summarise the data with --time-unit {unit}")


def read_score_input(
    frame: pd.DataFrame,
    model: Any,
    spend: Any,
    *,
    source: str,
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str = "amount",
    start: str = "start",
    end: str = "end",
    time_unit: str | None = None,
    observation_end: str | None = None,
    customers: pd.DataFrame | None = None,
    customers_id: str | None = None,
    summary_options: Mapping[str, Any] | None = None,
    revenue_per_period: float | str | None = None,
) -> tuple[pd.DataFrame, str, Any]:
    """``(data, input kind, revenue)``: the customers to score in the model's time unit with
    the covariate and segment columns the models read.

    ``frame`` is what was read from ``source`` (a file name for messages). Transactions and
    subscription records are summarised up to ``observation_end`` (required); a summary must
    record (or be given, ``time_unit``) the model's time unit. ``revenue`` is the revenue per
    period of a contractual model (a number or per-customer Series; 1.0 when not given) and
    None for transaction models.
    """
    kind = str(model.data_kind)
    found = detect_input(frame, kind, customer_id=customer_id, date=date, start=start)
    model_unit = getattr(model, "time_unit_", None)
    if time_unit is not None:
        _check_unit(time_unit, model, f"--time-unit {time_unit}")
    revenue: Any = None
    if found in ("transactions", "subscriptions"):
        if observation_end is None:
            raise ValueError(f"--observation-end: {INPUT_LABELS[found]} are summarised up to "
                             "an explicit day (YYYY-MM-DD), the day the scores are as of")
        if model_unit is None:
            raise ValueError("the model does not record its time unit: score a summary in "
                             "its unit instead of raw data")
        if found == "transactions":
            from clvmodels.rfm import rfm_summary

            use_amount = spend is not None and amount in frame.columns
            if spend is not None and not use_amount:
                raise ValueError(f"--spend-model needs amounts: column {amount!r} not found in "
                                 f"{source}")
            data = rfm_summary(frame, customer_id_col=customer_id, datetime_col=date,
                               monetary_value_col=amount if use_amount else None,
                               time_unit=str(model_unit), observation_end=observation_end,
                               **dict(summary_options or {}))
        else:
            from clvmodels.contract import contract_summary

            data = contract_summary(frame, customer_id_col=customer_id, start_col=start,
                                    end_col=end, observation_end=observation_end,
                                    period=str(model_unit))
    else:
        data = frame
        if customer_id in data.columns and data.index.name != customer_id:
            data = data.set_index(customer_id)
        unit = frame.attrs.get("time_unit")
        if unit is not None and time_unit is not None and str(unit) != str(time_unit):
            raise ValueError(f"{source} records time unit {unit!r} but --time-unit "
                             f"{time_unit} was given")
        unit = unit or time_unit
        if unit is None:
            raise ValueError(f"{source} does not record its time unit (CSV files cannot): "
                             f"pass --time-unit (the model's is {model_unit})")
        _check_unit(unit, model, source)
        data = data.copy()
        data.attrs["time_unit"] = str(unit)
        if found == "contract" and data["churned"].dtype == object:
            text = data["churned"].astype(str).str.strip().str.lower()
            mapping = {"true": True, "false": False, "1": True, "0": False}
            if text.isin(list(mapping)).all():
                data["churned"] = text.map(mapping).astype(bool)
    if kind == "contractual":
        revenue = _revenue(revenue_per_period, data, frame if found == "subscriptions"
                           else None, customer_id=customer_id, start=start)
    wanted = required_columns(model, spend)
    if customers is not None and not wanted:
        raise ValueError("--customers: the model has no covariates or segments, so it reads "
                         "no customer attributes")
    if wanted:
        from clvmodels.evaluation.fitting import attach_covariates

        order = None
        if found == "subscriptions":  # each subscriber's earliest record
            from clvmodels._contract_rules import parse_days

            order = pd.Series(parse_days(frame[start], start).days)
        data = attach_covariates(data, wanted, customers=customers,
                                 customers_id_col=customers_id,
                                 transactions=frame if found in ("transactions",
                                                                 "subscriptions") else None,
                                 customer_id_col=customer_id, order=order)
    return data, found, revenue


def _revenue(value: float | str | None, data: pd.DataFrame, records: pd.DataFrame | None, *,
             customer_id: str, start: str) -> Any:
    """The revenue per period: 1.0, a number, or a column (of the summary, or each
    customer's latest subscription record)."""
    if value is None:
        return 1.0
    if not isinstance(value, str):
        return float(value)
    if value in data.columns:
        return data[value].astype(float)
    if records is not None and value in records.columns:
        latest = (records[[customer_id, start, value]].sort_values(start, kind="stable")
                  .groupby(customer_id, sort=False)[value].last())
        return latest.reindex(data.index).astype(float)
    raise ValueError(f"--revenue-per-period: column {value!r} not found in the data")


def score_columns(kind: str, *, bayesian: bool, spend: bool,
                  weights: bool = False) -> list[str]:
    """The exact output columns of :func:`score_frame` for a model of data ``kind``
    (``continuous``, ``discrete`` or ``contractual``), Bayesian or not, with or without a
    spend model, with or without a weights column (see the module docstring for their
    dtypes)."""
    if kind == "contractual":
        cols = ["customer_id", "periods", "churned", "expected_periods", "probability_active",
                "revenue_per_period", "clv"]
    else:
        cols = ["customer_id", "frequency", "recency", "T"]
        if spend:
            cols.append("monetary_value")
        cols += ["expected_purchases", "probability_alive"]
        if spend:
            cols.append("expected_spend")
        cols.append("clv")
    if bayesian:
        cols += ["clv_lower", "clv_upper"]
    if weights:
        cols.append("weight")
    return [*cols, "value_tier"]


#: dtypes of the output columns (``customer_id`` keeps the data's)
SCORE_DTYPES = {
    "frequency": "int64", "recency": "float64", "T": "float64", "monetary_value": "float64",
    "periods": "int64", "churned": "bool", "expected_purchases": "float64",
    "probability_alive": "float64", "expected_spend": "float64",
    "expected_periods": "float64", "probability_active": "float64",
    "revenue_per_period": "float64", "clv": "float64", "clv_lower": "float64",
    "clv_upper": "float64", "weight": "int64", "value_tier": "str",
}


def score_frame(model: Any, spend: Any, data: pd.DataFrame, *, horizon: str | float,
                discount_rate: float, margin: float, interval: float = 0.9,
                period: str | None = None, revenue: Any = None,
                weights: str | None = None) -> pd.DataFrame:
    """Value every customer of ``data`` with the fitted models: the columns of
    :func:`score_columns`, in that order, with their fixed dtypes.

    The valuation is :func:`clvmodels.customer_lifetime_value` (CLV = margin x expected spend
    x discounted expected purchases; contractual: margin x revenue per period x DERL, Fader &
    Hardie 2010 eq. 6); a Bayesian model's columns are posterior means with the central
    ``interval`` credible interval of ``clv``. ``attrs`` carry the settings and totals.

    ``weights`` names a column of a summary counting the identical customers each row stands
    for: it is kept as ``weight`` and the value tiers count customers
    (:func:`clvmodels.kpis.value_tiers` with weights); a Bayesian model's total-CLV interval
    is then left out of ``attrs`` (it was taken over rows).
    """
    from clvmodels.kpis import value_tiers
    from clvmodels.valuation import customer_lifetime_value

    kind = str(model.data_kind)
    bayesian = bool(getattr(model, "bayesian", False))
    if kind == "contractual":
        second: Any = revenue if revenue is not None else 1.0
    else:
        second = spend if spend is not None else 1.0
    options: dict[str, Any] = {"interval": interval} if bayesian or getattr(
        spend, "bayesian", False) else {}
    value = customer_lifetime_value(model, second, data, horizon=horizon,
                                    discount_rate=discount_rate, margin=margin,
                                    period=period, **options)
    w = _row_weights(data, weights)
    summary = data.rename(columns={"periods": "T"}) if kind == "discrete" else data
    out = pd.concat([summary, value], axis=1)
    if w is not None:
        out["weight"] = w
    labels, _ = value_tiers(value["clv"], weights=w)
    out["value_tier"] = np.asarray(labels, dtype=object).astype(str)
    out.index.name = "customer_id"
    out = out.reset_index()
    cols = score_columns(kind, bayesian=bayesian, spend=spend is not None,
                         weights=w is not None)
    missing = [c for c in cols if c not in out.columns]
    if missing:  # a library change, not bad input: fail loudly
        raise RuntimeError(f"the valuation did not give the column(s) {missing}")
    out = out[cols].copy()
    for col in cols[1:]:
        out[col] = out[col].astype(SCORE_DTYPES[col])
    out.attrs = {**data.attrs, **value.attrs}
    if w is not None:
        for key in ("total_clv_lower", "total_clv_upper"):
            out.attrs.pop(key, None)
    return out


def _row_weights(data: pd.DataFrame, column: str | None) -> np.ndarray | None:
    """The ``--weights`` column as whole non-negative numbers (rows named otherwise)."""
    if column is None:
        return None
    if column not in data.columns:
        raise ValueError(f"--weights: column {column!r} not found; the data have "
                         f"{list(map(str, data.columns))}")
    from clvmodels._validation import fail_rows

    w = pd.to_numeric(data[column], errors="coerce").to_numpy(dtype=float)
    fail_rows(data, ~np.isfinite(w) | (w < 0) | (w != np.round(w)), column,
              "weights must be whole numbers of customers >= 0")
    return w.astype(np.int64)
