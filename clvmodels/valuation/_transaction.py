"""Valuation of transaction models: discounted expected purchases × spend × margin, for
maximum-likelihood models (one pass over unique rows, or a closed form) and Bayesian ones
(posterior draws reduced chunk by chunk)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

import clvmodels.valuation._settings as _settings
from clvmodels.datakinds import kind_rows
from clvmodels.models.registry import label_of
from clvmodels.valuation._settings import _Grid

#: the key column of a customer's covariate profile among the compressed rows
_PROFILE = "__covariate_profile"


def _frame_of(rows: Any, profiles: pd.DataFrame | None = None) -> pd.DataFrame:
    """The unique rows as a frame; with ``profiles`` each row carries its covariate values
    (the profile named by its :data:`_PROFILE` code)."""
    frame = rows.to_frame().drop(columns="weight")
    if profiles is not None:
        codes = frame.pop(_PROFILE).to_numpy(dtype=np.int64)
        for col in profiles.columns:
            frame[col] = profiles[col].to_numpy()[codes]
    frame.attrs["time_unit"] = rows.time_unit
    return frame


def covariate_profiles(model: Any, data: pd.DataFrame
                       ) -> tuple[np.ndarray, pd.DataFrame] | None:
    """For a model with covariates: each customer's profile code and one row per distinct
    profile of the model's covariate columns (``(codes, profiles)``); None without covariates.

    Valuation compresses customers to unique rows of (history, profile), so customers who
    share their history *and* their attributes are computed once, each with their own
    attributes (links equation (1) in :mod:`clvmodels.models.links`).
    """
    if not getattr(model, "has_covariates", False):
        return None
    cols = list(model.covariate_columns)
    from clvmodels.covariates import check_columns

    check_columns(data, cols, "data")
    sub = data[cols]
    codes = sub.groupby(cols, sort=False, dropna=False, observed=True).ngroup().to_numpy()
    first = pd.Series(np.arange(len(sub))).groupby(codes).first().to_numpy()
    profiles = sub.iloc[first].reset_index(drop=True)
    return codes.astype(np.int64), profiles


def _mle_lifetime_value(model: Any, spend: Any, data: pd.DataFrame, *, kind: str,
                        grid: _Grid | None, rate: float, unit: str, margin: float,
                        acquisition_cost: Any, settings: dict[str, Any]) -> pd.DataFrame:
    """:func:`customer_lifetime_value` for a maximum-likelihood transaction model."""
    p_alive = model.probability_alive(data)  # also validates the data and their time unit
    if isinstance(spend, float):
        spend_values = np.full(len(data), spend)
    else:
        spend_values = spend.expected_spend(data).to_numpy(dtype=float)
    found = covariate_profiles(model, data)
    extra = None if found is None else {_PROFILE: found[0]}
    rows = kind_rows(data, kind, validate=False, time_unit=unit, extra_codes=extra)
    frame = _frame_of(rows, None if found is None else found[1])
    count = "undiscounted"
    if grid is None:
        dert = model.expected_discounted_transactions
        extra = {} if getattr(model, "time_unit_", None) else {"time_unit": unit}
        disc_rows = dert(frame, rate, **extra).to_numpy(dtype=float)
        if kind == "continuous":
            total_rows = model.cumulative_expected_purchases(frame, np.array([np.inf]))[:, 0]
        else:
            total_rows = dert(frame, 0.0, **extra).to_numpy(dtype=float)
        if not np.all(np.isfinite(total_rows)):
            total_rows, count = disc_rows, _divergent(label_of(model), "expected_purchases")
    else:
        disc_rows, total_rows = _discounted_purchases(model, frame, grid)
    out = pd.DataFrame(index=data.index)
    out["expected_purchases"] = np.asarray(total_rows)[rows.inverse]
    out["probability_alive"] = p_alive.to_numpy()
    out["expected_spend"] = spend_values
    out["clv"] = margin * spend_values * np.asarray(disc_rows)[rows.inverse]
    _add_cac(out, acquisition_cost)
    out.attrs.update(settings, expected_count=count)
    return out


def _divergent(label: str, column: str) -> str:
    note = (f"discounted: the undiscounted expected count over an infinite horizon diverges "
            f"for this {label} (customers who almost never leave), so {column} holds the "
            "discounted count")
    warnings.warn(note, UserWarning, stacklevel=4)
    return note


def _add_cac(out: pd.DataFrame, acquisition_cost: Any) -> None:
    if acquisition_cost is not None:
        from clvmodels.kpis import clv_to_cac

        out["clv_to_cac"] = clv_to_cac(out["clv"], acquisition_cost)


def _discounted_purchases(model: Any, rows: pd.DataFrame, grid: _Grid
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Per row: sum_k f_k (E(t_k) - E(t_{k-1})) and E(t_K), by Abel summation.

    Chunks of boundaries (running sums) × chunks of rows: at most :data:`_CHUNK_CELLS` cells
    of cumulative expectations at once, whatever the horizon.
    """
    n = len(rows)
    disc, total = np.zeros(n), np.empty(n)
    step = max(1, _settings._CHUNK_CELLS // min(grid.count, _settings._BOUNDARY_CHUNK))
    for times, coef in grid.chunks():
        for start in range(0, n, step):
            part = rows.iloc[start:start + step]
            cum = model.cumulative_expected_purchases(part, times)  # (rows, k)
            disc[start:start + step] += cum @ coef
            total[start:start + step] = cum[:, -1]
    return disc, total


# --------------------------------------------------------------------------------------
# Bayesian transaction models
# --------------------------------------------------------------------------------------


def _posterior_lifetime_value(model: Any, spend: Any, data: pd.DataFrame, *, grid: _Grid,
                              margin: float, acquisition_cost: Any, interval: float,
                              settings: dict[str, Any]) -> pd.DataFrame:
    """:func:`customer_lifetime_value` for a Bayesian transaction model (posterior draws)."""
    cols, total = _posterior_clv(model, spend, data, grid, margin=margin, interval=interval)
    out = pd.DataFrame(cols, index=data.index)
    _add_cac(out, acquisition_cost)
    _total_attrs(out, total, interval)
    out.attrs.update(settings, expected_count="undiscounted")
    return out


def _total_attrs(out: pd.DataFrame, total: np.ndarray, interval: float) -> None:
    q = (1 - interval) / 2
    lo, hi = np.quantile(total, [q, 1 - q])
    out.attrs.update(interval=interval, total_clv=float(total.mean()),
                     total_clv_lower=float(lo), total_clv_upper=float(hi),
                     n_draws=len(total))


def _even_draws(n: int, k: int) -> np.ndarray:
    """k evenly spaced indices out of n draws (all of them, in order, when k == n)."""
    return np.arange(n) if k == n else np.round(np.linspace(0, n - 1, k)).astype(np.int64)


@dataclass(frozen=True)
class _Part:
    """Customers (positions), their discounted draws (S, n) and posterior means."""

    customers: np.ndarray
    discounted: np.ndarray
    expected_purchases: np.ndarray
    probability_alive: np.ndarray


def _long_horizon_part(model: Any, data: pd.DataFrame, grid: _Grid, width: int, p0: int,
                       p1: int, draws: np.ndarray) -> Iterator[_Part]:
    """Customers p0..p1 over a horizon of many boundary chunks: running sums of each chunk's
    discounted draws (the last chunk's means are those at the horizon)."""
    sub = data.iloc[p0:p1]
    n = p1 - p0
    disc = np.zeros((len(draws), n))
    ep, pa = np.empty(n), np.empty(n)
    for times, coef in grid.chunks(width):
        chunks = model.discounted_purchase_chunks(sub, times, coef, draws=draws)
        for i in range(len(chunks)):
            for chunk in chunks.block(i):
                disc[:, chunk.customers] += chunk.discounted
                ep[chunk.customers] = chunk.expected_purchases
                pa[chunk.customers] = chunk.probability_alive
    yield _Part(np.arange(p0, p1), disc, ep, pa)


def _posterior_clv(
    transaction_model: Any,
    spend_model: Any,
    rfm: pd.DataFrame,
    grid: _Grid,
    *,
    margin: float,
    interval: float,
    n_jobs: int | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-customer CLV draws reduced on the fly: ``(columns, total CLV draws)``.

    For each posterior draw s and customer i,
    ``CLV_i^s = margin · E[M_i]^s · sum_k coef_k E[Y_i(t_k)]^s`` — the discounted sum of the
    cumulative expected purchases at the period boundaries by Abel summation — with the
    spend model's draws paired with the transaction model's (evenly thinned to the smaller
    number when they differ). The transaction model hands its draws over in chunks of
    customers (``discounted_purchase_chunks``), the spend model for the customers asked for
    (``spend_draws_by_customer``); each chunk is reduced to mean and central ``interval`` —
    never customers × draws × periods at once. A horizon of more boundaries than fit one
    chunk (draws × boundaries <= :data:`_CHUNK_CELLS`) is summed chunk by chunk over parts
    of the customers. ``n_jobs`` threads (default: one per CPU) process the blocks in
    parallel (numpy releases the GIL in the heavy loops).

    Returns the columns ``expected_purchases``, ``probability_alive`` and ``expected_spend``
    (posterior means), ``clv``, ``clv_lower``, ``clv_upper`` and the draws of the base's
    total CLV.
    """
    import os
    from functools import partial

    n = len(rfm)
    S_t = transaction_model.n_draws
    bayes_spend = hasattr(spend_model, "spend_draws_by_customer")
    S_s = spend_model.n_draws if bayes_spend else S_t
    S = min(S_t, S_s)
    draws = _even_draws(S_t, S)
    width = max(1, min(_settings._BOUNDARY_CHUNK, _settings._CHUNK_CELLS // S_t))
    blocks: list[Callable[[], Iterator[Any]]]
    if grid.count <= width:
        ((times, coef),) = grid.chunks(width)
        chunks = transaction_model.discounted_purchase_chunks(rfm, times, coef, draws=draws)
        blocks = [partial(chunks.block, i) for i in range(len(chunks))]
    else:
        size = max(1, _settings._CHUNK_CELLS // S)
        blocks = [partial(_long_horizon_part, transaction_model, rfm, grid, width, p0,
                          min(n, p0 + size), draws) for p0 in range(0, n, size)]
    spend_draws = None
    spend_fixed: np.ndarray | None = None
    if isinstance(spend_model, int | float):
        spend_fixed = np.full(n, float(spend_model))
    elif bayes_spend:
        spend_draws = spend_model.spend_draws_by_customer(rfm, draws=_even_draws(S_s, S))
    else:
        spend_fixed = spend_model.expected_spend(rfm).to_numpy(dtype=float)
    q = (1 - interval) / 2
    out = {name: np.empty(n) for name in ("expected_purchases", "probability_alive",
                                           "expected_spend", "clv", "clv_lower", "clv_upper")}

    def block(make: Callable[[], Iterator[Any]]) -> np.ndarray:
        part = np.zeros(S)
        for chunk in make():
            cust = chunk.customers
            if spend_draws is None:
                spend = spend_fixed[cust][None, :]  # type: ignore[index]
                out["expected_spend"][cust] = spend_fixed[cust]  # type: ignore[index]
            else:
                spend = spend_draws.take(cust)
                out["expected_spend"][cust] = spend.mean(axis=0)
            clv = margin * spend * chunk.discounted
            out["clv"][cust] = clv.mean(axis=0)
            lo, hi = np.quantile(clv, [q, 1 - q], axis=0)
            out["clv_lower"][cust], out["clv_upper"][cust] = lo, hi
            out["expected_purchases"][cust] = chunk.expected_purchases
            out["probability_alive"][cust] = chunk.probability_alive
            part += clv.sum(axis=1)
        return part

    # blocks write disjoint customers, so they run in threads without locks
    workers = max(1, min(n_jobs or (os.cpu_count() or 1), len(blocks)))
    if workers == 1:
        total = sum((block(b) for b in blocks), np.zeros(S))
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            total = sum(pool.map(block, blocks), np.zeros(S))
    return out, total
