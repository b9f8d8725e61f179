"""Valuation of contractual models: margin × revenue per period × DERL (Fader & Hardie 2010),
maximum likelihood or Bayesian (draws on the unique contract rows)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import pandas as pd

from clvmodels._validation import ValidationError, fail_rows
from clvmodels.models.registry import label_of
from clvmodels.valuation._settings import _describe, _posterior
from clvmodels.valuation._transaction import _add_cac, _divergent, _total_attrs


def _revenue(revenue: Any, data: pd.DataFrame) -> np.ndarray:
    """Revenue per period per customer from a number, a Series on the index or a column."""
    if isinstance(revenue, numbers.Real) and not isinstance(revenue, bool):
        value = float(revenue)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"revenue_per_period must be a finite number >= 0, got {revenue!r}")
        return np.full(len(data), value)
    if isinstance(revenue, str):
        if revenue not in data.columns:
            raise ValidationError(
                f"revenue_per_period {revenue!r} is not a column of the data; it has "
                f"{list(map(str, data.columns))}")
        name, values, frame = revenue, data[revenue], data
    elif isinstance(revenue, pd.Series):
        name = str(revenue.name) if revenue.name is not None else "revenue_per_period"
        if not revenue.index.is_unique:
            dup = revenue.index[revenue.index.duplicated()].unique()
            raise ValidationError(f"revenue_per_period has duplicated customer ids, e.g. "
                                  f"{dup[:5].tolist()}")
        missing = data.index.difference(revenue.index)
        if len(missing):
            raise ValidationError(
                f"revenue_per_period has no value for {len(missing)} customer(s) of the data, "
                f"e.g. {missing[:5].tolist()}: give a Series on the data's index")
        values = revenue.reindex(data.index)
        frame = values.to_frame(name)
    else:
        kind = None if isinstance(revenue, bool | pd.DataFrame | np.ndarray) \
            else getattr(revenue, "data_kind", None)
        got = f"a {label_of(revenue)} model" if kind is not None else _describe(revenue)
        raise TypeError(
            "with a contractual model the second argument is the revenue per period: a "
            f"number, a Series on the data's index or a column name; got {got}")
    numeric = pd.to_numeric(values, errors="coerce")
    v = numeric.to_numpy(dtype=float)
    fail_rows(frame, np.isnan(v), name, "revenue per period is missing or not numeric")
    fail_rows(frame, ~np.isfinite(v), name, "revenue per period is not finite")
    fail_rows(frame, v < 0, name, "revenue per period must be >= 0")
    return v


def _contract_value(model: Any, revenue: np.ndarray, data: pd.DataFrame, *, horizon: float,
                    rate: float, acquisition_cost: Any, interval: float,
                    settings: dict[str, Any]) -> pd.DataFrame:
    """:func:`customer_lifetime_value` for a contractual model: margin × revenue × DERL."""
    margin = settings["margin"]
    kw = {} if math.isinf(horizon) else {"horizon": horizon}
    active = model.conditional_survival(data, 1)  # also validates the data
    out = pd.DataFrame(index=data.index)
    bayes = _posterior(model)
    if bayes:
        draws, rows = model.residual_lifetime_draws(data, rate, **kw)  # (S, unique rows)
        plain, _ = model.residual_lifetime_draws(data, 0.0, **kw)
        inverse = np.asarray(rows.inverse)
        with np.errstate(invalid="ignore"):
            plain_rows = plain.mean(axis=0)
        derl_rows = draws.mean(axis=0)
    else:
        derl = model.discounted_expected_residual_lifetime(data, rate, **kw)
        plain_rows = model.discounted_expected_residual_lifetime(data, 0.0, **kw).to_numpy()
        derl_rows = derl.to_numpy(dtype=float)
        inverse = np.arange(len(data))
    count = "undiscounted"
    if not np.all(np.isfinite(plain_rows)):
        plain_rows, count = derl_rows, _divergent(label_of(model), "expected_periods")
    value = margin * revenue
    out["expected_periods"] = np.asarray(plain_rows, dtype=float)[inverse]
    out["probability_active"] = np.asarray(active, dtype=float)
    out["revenue_per_period"] = revenue
    out["clv"] = value * derl_rows[inverse]
    if bayes:
        q = (1 - interval) / 2
        lo, hi = np.quantile(draws, [q, 1 - q], axis=0)
        # a non-negative scale commutes with quantiles: per-customer intervals per row
        out["clv_lower"] = value * lo[inverse]
        out["clv_upper"] = value * hi[inverse]
        total = draws @ np.bincount(inverse, weights=value, minlength=draws.shape[1])
        _total_attrs(out, total, interval)
    _add_cac(out, acquisition_cost)
    out.attrs.update(settings, expected_count=count, valued_at="next renewal decision")
    return out
