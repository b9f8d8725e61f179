"""Diagnostics of models with covariates: each customer with their own attributes.

The tables of :mod:`clvmodels.diagnostics` (calibration histogram, tracking) sum
new-customer quantities over customers. With covariates every customer has their own
parameters (links equation (1) of :mod:`clvmodels.models.links`:
``theta_i = theta * exp(sign * z_i' gamma_group)``), so these quantities are evaluated per
distinct covariate *profile* (one with categorical covariates per combination of levels;
about one per customer with continuous ones), in chunks, and gathered per customer.
:func:`coefficient_table` lists a model's covariate coefficients with their intervals (what
the report's table and :func:`clvmodels.plotting.plot_coefficients` show).

This module draws nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from clvmodels.models.protocol import is_posterior
from clvmodels.valuation._transaction import covariate_profiles

__all__ = [
    "coefficient_table",
    "expected_cumulative_profiles",
    "has_covariates",
    "n_parameters",
    "posterior_groups",
    "profile_count_probabilities",
    "tracked_with_covariates",
    "with_profile",
]

#: profiles × points evaluated at once (~16 MB of float64)
_CHUNK_CELLS = 2_000_000


def has_covariates(model: Any) -> bool:
    return bool(getattr(model, "has_covariates", False))


def n_parameters(model: Any) -> int:
    """Free parameters: the family's and, with covariates, the coefficients."""
    return len(model.param_names) + len(getattr(model, "coefficient_names_", None) or [])


def posterior_groups(model: Any, data: pd.DataFrame
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """For a Bayesian model with covariates: each row's group and the groups' parameter
    draws ``{name: (S, G)}`` (the model's ``parameter_draws(data)``: one group per distinct
    segment and covariate pattern); None for any other model."""
    if not (is_posterior(model) and has_covariates(model)):
        return None
    params, groups = model.parameter_draws(data)
    return np.asarray(groups, dtype=np.int64), params


def profile_count_probabilities(model: Any, codes: np.ndarray, profiles: pd.DataFrame,
                                 T: np.ndarray, n: np.ndarray) -> np.ndarray:
    """P(X(T_g) = n) for groups g of (covariate profile ``codes[g]``, ``T[g]``): (G, k).

    Each profile's own parameters (links equation (1)); evaluated once per (profile, distinct
    T) in chunks of profiles, then gathered per group.
    """
    uT, t_idx = np.unique(T, return_inverse=True)
    out = np.empty((len(codes), len(n)))
    step = max(1, _CHUNK_CELLS // max(1, len(uT) * len(n)))
    for c0 in range(0, len(profiles), step):
        part = profiles.iloc[c0:c0 + step]
        probs = np.asarray(model.purchase_count_probability(n[None, :], uT[:, None],
                                                            covariates=part), dtype=float)
        sel = np.flatnonzero((codes >= c0) & (codes < c0 + len(part)))
        out[sel] = probs[codes[sel] - c0, t_idx[sel]]
    return out


def expected_cumulative_profiles(model: Any, first_offsets: np.ndarray, codes: np.ndarray,
                                  profiles: pd.DataFrame, boundaries: np.ndarray,
                                  unit_days: float) -> np.ndarray:
    """sum_i E[X(b - first_i)] at each boundary ``b`` (shape (1, B)), each customer's E[X]
    with their own covariate profile (``codes`` per customer, one row of ``profiles`` per code).

    E[X(lag)] is evaluated on every whole-day lag for a chunk of profiles at once
    (``expected_purchases_new_customer(t, covariates=...)``: profiles × lags) and gathered
    for the distinct (profile, first-purchase day) pairs, weighted by their customers.
    """
    pairs = pd.DataFrame({"c": codes, "f": first_offsets}).value_counts(sort=False)
    p_code = pairs.index.get_level_values("c").to_numpy(np.int64)
    p_first = pairs.index.get_level_values("f").to_numpy(np.int64)
    weight = pairs.to_numpy(dtype=float)
    days = np.arange(int(max(boundaries.max(), 0)) + 1)
    t = days / unit_days
    out = np.zeros(len(boundaries))
    step = max(1, _CHUNK_CELLS // len(days))
    for c0 in range(0, len(profiles), step):
        part = profiles.iloc[c0:c0 + step]
        E = np.asarray(model.expected_purchases_new_customer(t, covariates=part), float)
        sel = np.flatnonzero((p_code >= c0) & (p_code < c0 + len(part)))
        inner = max(1, _CHUNK_CELLS // len(boundaries))
        for j in range(0, len(sel), inner):
            s_ = sel[j:j + inner]
            lag = np.maximum(boundaries[:, None] - p_first[None, s_], 0)  # (B, m) days
            out += E[p_code[s_][None, :] - c0, lag] @ weight[s_]
    return out[None, :]


def tracked_with_covariates(model: Any, covariates: pd.DataFrame | None,
                            transactions: pd.DataFrame, customer_id_col: str,
                            ids: np.ndarray, first_offsets: np.ndarray,
                            boundaries: np.ndarray, unit_days: float) -> np.ndarray:
    """The tracking table's expected cumulative repeat purchases (1, B) for a covariate
    model: customers ``ids`` (first purchases at ``first_offsets`` days) with their
    attributes from ``covariates`` (indexed by customer id), else from the first row of each
    customer in ``transactions``. A Bayesian model contributes its posterior mean of E[X(t)]
    per profile (``expected_purchases_new_customer(t, covariates=...)``; a hierarchical one
    at the population level), so the table has no interval columns then."""
    frame = covariates
    if frame is None:
        cols = [c for c in model.covariate_columns if c in transactions.columns]
        raw = transactions.loc[:, [customer_id_col, *cols]]
        frame = raw.drop_duplicates(customer_id_col).set_index(customer_id_col)
    found = covariate_profiles(model, frame)
    assert found is not None
    pos = frame.index.get_indexer(ids)
    if np.any(pos < 0):
        raise ValueError(f"covariates has no row for customer(s) {ids[pos < 0][:5].tolist()}")
    return expected_cumulative_profiles(model, first_offsets, found[0][pos], found[1],
                                        boundaries, unit_days)


def with_profile(model: Any, frame: pd.DataFrame, covariates: Any) -> None:
    """Put one covariate profile (a mapping column → value, e.g. ``{"channel": "web"}``) on
    every row of a constructed frame (a grid of histories), in place. A model with
    covariates needs one; a model without refuses one."""
    if not has_covariates(model):
        if covariates is not None:
            raise ValueError(f"{type(model).__name__} has no covariates: covariates= does not "
                             "apply")
        return
    cols = list(model.covariate_columns)
    if covariates is None:
        raise ValueError(f"{type(model).__name__} has covariates ({', '.join(cols)}): pass "
                         "covariates={column: value, ...}, the profile of the customers shown")
    profile = dict(covariates)
    missing = [c for c in cols if c not in profile]
    if missing:
        raise ValueError(f"covariates has no value for column(s) {missing}")
    for col in cols:
        frame[col] = [profile[col]] * len(frame)


def _group_of(name: str) -> tuple[str, str]:
    group, _, covariate = str(name).partition(":")
    return group, covariate


def coefficient_table(model: Any, interval: float = 0.95) -> pd.DataFrame:
    """The covariate coefficients of a fitted model, one row each, in the model's order.

    Columns: ``group`` (purchase / dropout / spend), ``covariate`` (the design column,
    ``channel[web]``), ``estimate``, ``lower``, ``upper`` and, by maximum likelihood, ``se``
    and the Wald ``z`` and two-sided ``p_value``. Maximum likelihood: estimate -/+ z_q se
    (Wald, the coefficient on its own scale; ``interval`` 0.95 gives the 95% interval of
    ``summary()``). Bayesian: the posterior mean and the central ``interval`` of the draws
    of each coefficient (the model's ``coefficient_draws()``, else the posterior variables
    ``coef_<group>`` over ``<group>_covariate``).
    A coefficient is the change in the log of the linked parameter's *rate* effect: a
    positive purchase (dropout) coefficient raises the purchase (dropout) rate (links
    equation (1)). Index: the coefficient names (``purchase:channel[web]``). Empty for a
    model without covariates. ``attrs["interval"]`` holds ``interval``.
    """
    if not 0 < interval < 1:
        raise ValueError(f"interval must be in (0, 1), got {interval!r}")
    columns = ["group", "covariate", "estimate", "lower", "upper"]
    if not has_covariates(model):
        out = pd.DataFrame(columns=columns)
        out.attrs["interval"] = interval
        return out
    if is_posterior(model):
        rows = _posterior_coefficients(model, interval)
    else:
        names = list(getattr(model, "coefficient_names_", None) or [])
        est = model.params_[names].to_numpy(dtype=float)
        se = model.standard_errors_[names].to_numpy(dtype=float)
        zq = float(stats.norm.ppf(0.5 + interval / 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = est / se
        rows = pd.DataFrame({"estimate": est, "se": se, "lower": est - zq * se,
                             "upper": est + zq * se, "z": z,
                             "p_value": 2 * stats.norm.sf(np.abs(z))}, index=names)
    groups = [_group_of(n) for n in rows.index]
    rows.insert(0, "covariate", [c for _, c in groups])
    rows.insert(0, "group", [g for g, _ in groups])
    rows.index.name = "coefficient"
    rows.attrs["interval"] = interval
    return rows


def _posterior_coefficients(model: Any, interval: float) -> pd.DataFrame:
    q = (1 - interval) / 2
    if hasattr(model, "coefficient_draws"):  # the public draws: one column per coefficient
        draws = model.coefficient_draws()
        values = draws.to_numpy(dtype=float)
        lo, hi = np.quantile(values, [q, 1 - q], axis=0)
        return pd.DataFrame({"estimate": values.mean(axis=0),
                             "sd": values.std(axis=0, ddof=1), "lower": lo, "upper": hi},
                            index=pd.Index([str(c) for c in draws.columns]))
    post = model.idata_.posterior
    records = []
    for group in model.covariate_groups:
        var = f"coef_{group}"
        if var not in post:
            continue
        da = post[var]
        dim = f"{group}_covariate"
        labels = [str(v) for v in da[dim].to_numpy()] if dim in da.coords \
            else [str(i) for i in range(da.sizes.get(dim, 1))]
        values = da.transpose("chain", "draw", ...).to_numpy().reshape(-1, len(labels))
        lo, hi = np.quantile(values, [q, 1 - q], axis=0)
        for j, label in enumerate(labels):
            records.append({"name": f"{group}:{label}", "estimate": float(values[:, j].mean()),
                            "sd": float(values[:, j].std(ddof=1)), "lower": float(lo[j]),
                            "upper": float(hi[j])})
    if not records:
        raise ValueError(f"{type(model).__name__} has covariates but its posterior holds no "
                         "coefficient draws (coef_<group>)")
    return pd.DataFrame.from_records(records).set_index("name")
