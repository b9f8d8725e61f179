"""The models a comparison fits: names resolved through the registry, fits timed and their
warnings kept for the report.

Every comparison (:func:`~clvmodels.evaluation.compare_models` on continuous-time
transactions, :func:`~clvmodels.evaluation.compare_discrete` on discrete opportunities,
:func:`~clvmodels.evaluation.compare_contractual` on subscriptions) names its models the way
the registry does (``"bgnbd"``, ``"bayes-bgbb"``, ``"sbg"`` …) and accepts only the models of
its data kind; nothing here knows a family.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from clvmodels._validation import fail_rows, require_columns
from clvmodels.models import registry
from clvmodels.models.protocol import is_posterior

__all__ = [
    "DEFAULT_BAYES_KWARGS",
    "attach_covariates",
    "check_kind",
    "covariate_columns_of",
    "first_value",
    "fit_model",
    "instantiate",
    "is_fitted",
    "loo_or_nan",
    "recorded_fit_seconds",
    "resolve_models",
    "short_name",
]

#: Sampler settings for Bayesian models fitted here (small: a comparison, not a final fit).
DEFAULT_BAYES_KWARGS: dict[str, Any] = {"draws": 500, "tune": 500, "chains": 2,
                                        "random_seed": 0}

#: the comparison that takes each data kind (for the error naming the right one)
_COMPARISON_OF_KIND = {"continuous": "compare_models", "discrete": "compare_discrete",
                       "contractual": "compare_contractual", "spend": "spend_model="}


def short_name(model: Any) -> str:
    """A model object's registry name ("bgnbd", "bayes-sbg" …), else its class name."""
    name = getattr(model, "short_name", "") or getattr(model, "name", "") \
        or type(model).__name__
    return str(name).replace("_", "-")


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def instantiate(name: str, *, kinds: Collection[str], segment_col: str | None = None,
                penalizer: float = 0.0, extra_names: Sequence[str] = ()) -> Any:
    """A new, unfitted model of one of the data ``kinds`` for a registry name.

    Bayesian models get ``segment_col`` (hierarchical over it); maximum-likelihood models the
    L2 ``penalizer``. ``extra_names`` (e.g. baselines) are listed in the error for an
    unknown name.
    """
    try:
        cls = registry.get_model(_key(name))
    except ValueError:
        known = ", ".join((*registry.model_names(kind=list(kinds)), *extra_names))
        raise ValueError(f"unknown model {name!r}; use one of {known}") from None
    check_kind(cls, _key(name), kinds)
    if getattr(cls, "bayesian", False):
        return cls(segment_col=segment_col)
    return cls(penalizer=penalizer)


def check_kind(model: Any, name: str, kinds: Collection[str]) -> None:
    """Refuse a model (class or object) fitted on another data kind, naming the comparison
    that takes it."""
    kind = getattr(model, "data_kind", None)
    if kind in kinds:
        return
    where = _COMPARISON_OF_KIND.get(str(kind))
    hint = f": compare it with {where}" if where else ""
    raise ValueError(f"{name!r} is a model of {kind or 'unknown'} data, not of "
                     f"{' or '.join(sorted(kinds))} data{hint}")


def resolve_models(models: str | Sequence[Any] | Mapping[str, Any], *,
                   kinds: Collection[str], baselines: Collection[str] = (),
                   segment_col: str | None = None, penalizer: float = 0.0
                   ) -> tuple[dict[str, Any], list[str]]:
    """(name → model object, baseline names given in ``models``).

    ``models``: names, model objects (fitted or not), a comma-separated string, or a dict
    name → either. Objects are named by their registry name.
    """
    if isinstance(models, str):
        models = [m for m in models.split(",") if m.strip()]
    items: list[tuple[str, Any]]
    if isinstance(models, Mapping):
        items = [(str(k), v) for k, v in models.items()]
    else:
        items = [(m.strip() if isinstance(m, str) else short_name(m), m) for m in models]
    resolved: dict[str, Any] = {}
    named_baselines: list[str] = []
    for name, spec in items:
        if name in resolved or name in named_baselines:
            raise ValueError(f"model name {name!r} is given twice; pass a dict to name "
                             "models explicitly")
        if isinstance(spec, str) and _key(spec) in baselines:
            named_baselines.append(_key(spec))
            continue
        if isinstance(spec, str):
            model = instantiate(spec, kinds=kinds, segment_col=segment_col,
                                penalizer=penalizer, extra_names=tuple(baselines))
        else:
            model = spec
            check_kind(model, name, kinds)
        resolved[name] = model
    if not resolved and not named_baselines:
        raise ValueError("no models to compare")
    return resolved, named_baselines


def is_fitted(model: Any) -> bool:
    """Whether ``model`` has learned its parameters (``params_``, the fitted attribute)."""
    return hasattr(model, "params_")


def fit_model(model: Any, data: pd.DataFrame, bayes_kwargs: Mapping[str, Any], name: str,
              caught: list[tuple[str, str]]) -> tuple[Any, float]:
    """Fit ``model`` unless it is fitted already; (model, fit seconds).

    Bayesian models are sampled with :data:`DEFAULT_BAYES_KWARGS` updated by
    ``bayes_kwargs``. Every warning is passed on; those of the fit itself are also kept in
    ``caught`` as ``(name, message)`` for the report.
    """
    if is_fitted(model):
        return model, recorded_fit_seconds(model)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        if is_posterior(model):
            model.fit(data, **{**DEFAULT_BAYES_KWARGS, **dict(bayes_kwargs)})
        else:
            model.fit(data)
    elapsed = time.perf_counter() - started
    for w in seen:  # pass every warning on; keep the fit's own for the report
        if not issubclass(w.category, DeprecationWarning | FutureWarning):
            caught.append((name, str(w.message)))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    recorded = recorded_fit_seconds(model)
    return model, recorded if np.isfinite(recorded) else elapsed


def recorded_fit_seconds(model: Any) -> float:
    """The fit time a model recorded (``fit_seconds_`` or ``fit_timings_["total_s"]``)."""
    if hasattr(model, "fit_seconds_"):
        return float(model.fit_seconds_)
    timings = getattr(model, "fit_timings_", None)
    if isinstance(timings, Mapping) and "total_s" in timings:
        return float(timings["total_s"])
    return float("nan")


def loo_or_nan(model: Any, name: str, caught: list[tuple[str, str]]) -> float:
    """PSIS-LOO ELPD of a Bayesian model (NaN, with a note in ``caught``, if unavailable)."""
    try:
        return float(model.loo()["elpd_loo"])
    except (ValueError, RuntimeError) as exc:  # e.g. saved without its data
        caught.append((name, f"LOO unavailable: {exc}"))
        return float("nan")


def first_value(frame: pd.DataFrame, *, value_col: str, customer_id_col: str,
                order: pd.Series, what: str) -> pd.Series:
    """Each customer's ``value_col`` on their earliest row by ``order`` (e.g. the segment
    at acquisition); missing values are refused, naming the rows."""
    cols = list(dict.fromkeys([customer_id_col, value_col]))
    require_columns(frame, cols, what)
    sub = frame[cols]
    fail_rows(sub, sub[value_col].isna(), value_col, "missing segment labels", cols)
    first = (sub.assign(_order=order.to_numpy()).sort_values("_order", kind="stable")
             .drop_duplicates(customer_id_col, keep="first"))
    return first.set_index(customer_id_col)[value_col]


def covariate_columns_of(models: Iterable[Any]) -> list[str]:
    """Every covariate column the given models (transaction or spend) read, once each."""
    out: list[str] = []
    for model in models:
        if model is None or not getattr(model, "has_covariates", False):
            continue
        out += [c for c in model.covariate_columns if c not in out]
    return out


def read_customers(source: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """A customer-attribute table: a DataFrame as given, or a CSV / Parquet file."""
    if isinstance(source, pd.DataFrame):
        return source
    from clvmodels.rfm import read_transactions  # the same CSV / Parquet reader

    return read_transactions(source)


def attach_covariates(data: pd.DataFrame, columns: Sequence[str], *,
                      customers: pd.DataFrame | str | os.PathLike | None = None,
                      customers_id_col: str | None = None,
                      transactions: pd.DataFrame | None = None,
                      customer_id_col: str = "customer_id",
                      order: pd.Series | None = None) -> pd.DataFrame:
    """``data`` (one row per customer, indexed by id) with the covariate ``columns`` added.

    Each column comes from the attribute table ``customers`` (joined on the customer id with
    :func:`clvmodels.join_customers`: its index, or its column ``customers_id_col``), else
    from ``transactions`` (each customer's value on their first transaction by ``order``, as
    a segment is read), else it must already be in ``data``. A column found nowhere is
    refused, naming it. ``data`` is not modified; its ``attrs`` are kept.
    """
    from clvmodels._validation import ValidationError
    from clvmodels.covariates import join_customers

    wanted = [c for c in dict.fromkeys(columns) if c not in data.columns]
    if not wanted:
        return data
    out = data
    if customers is not None:
        table = read_customers(customers)
        if customers_id_col is None and customer_id_col in table.columns:
            customers_id_col = customer_id_col
        have = [c for c in wanted if c in table.columns]
        if have:
            out = join_customers(out, table, on=customers_id_col, columns=have)
        wanted = [c for c in wanted if c not in have]
    if wanted and transactions is not None:
        have = [c for c in wanted if c in transactions.columns]
        if have:
            out = out.copy()
            by = order if order is not None else pd.Series(np.arange(len(transactions)))
            for col in have:
                first = first_value(transactions, value_col=col,
                                    customer_id_col=customer_id_col, order=by,
                                    what="transactions")
                out[col] = first.reindex(out.index).to_numpy()
            wanted = [c for c in wanted if c not in have]
    if wanted:
        where = "the data" + (", the customer table" if customers is not None else "") + \
            (" or the transactions" if transactions is not None else "")
        raise ValidationError(f"covariate column(s) {wanted} not found in {where}; pass a "
                              "customer table with those columns (customers=, CLI "
                              "--customers FILE)")
    return out
