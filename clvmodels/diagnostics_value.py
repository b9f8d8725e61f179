"""Value concentration tables: the Lorenz curve of customer value and the gains chart of a
predicted ranking against actual value (re-exported by :mod:`clvmodels.diagnostics`, drawn by
``plotting.plot_lorenz`` and ``plotting.plot_gains``; the report's Gini and top-decile
capture are read from them). Model-free: they take values, not models.

This module draws nothing and does not import matplotlib.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvmodels._validation import require_columns

__all__ = ["gains_table", "lorenz_table"]


def _values(values: Any, name: str = "values") -> np.ndarray:
    """A 1-D float array from a Series, array or CLV frame (its ``clv`` column)."""
    if isinstance(values, pd.DataFrame):
        require_columns(values, ["clv"], "CLV frame")
        values = values["clv"]
    arr = np.asarray(values, dtype=float).reshape(-1)
    if len(arr) == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains missing or infinite values")
    return arr


def _share_grid(n_points: int) -> np.ndarray:
    if not isinstance(n_points, int) or n_points < 2:
        raise ValueError(f"n_points must be an integer >= 2, got {n_points!r}")
    return np.linspace(0.0, 1.0, n_points)


def _cumulative_share(order_values: np.ndarray, weights: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Exact breakpoints (share of customers, share of total) of a ranked curve.

    ``order_values`` are the ranking keys in rank order; customers with equal keys form one
    group whose value is spread evenly along it (so ties have no arbitrary order).
    """
    n = len(order_values)
    ends = np.flatnonzero(np.r_[order_values[1:] != order_values[:-1], True]) + 1
    cum = np.r_[0.0, np.cumsum(weights)[ends - 1]]
    total = cum[-1]
    share_c = np.r_[0.0, ends / n]
    share_v = cum / total if total > 0 else np.full(len(cum), np.nan)
    return share_c, share_v


def lorenz_table(values: Any, *, n_points: int = 101) -> pd.DataFrame:
    """Concentration of value across customers: the Lorenz curve and its Gini coefficient.

    ``values`` (CLV, revenue ...; a Series, array, or a CLV frame's ``clv``) must be
    non-negative. On a grid of ``n_points`` shares of customers F, returns ``lorenz`` — the
    share of value held by the *least* valuable F (the Lorenz curve L(F)) — and ``top_share``
    — the share held by the *most* valuable F, 1 - L(1 - F), the "top 10% of customers hold
    x%" view. ``attrs``: ``gini`` = 1 - 2 ∫ L (exact, from every customer: 0 when all are
    equal, → 1 when one customer holds everything), ``top_10_share`` and ``top_20_share``,
    ``total`` and ``n_customers``.
    """
    arr = _values(values)
    if np.any(arr < 0):
        raise ValueError("values must be non-negative for a Lorenz curve")
    sorted_values = np.sort(arr)
    F, L = _cumulative_share(sorted_values, sorted_values)
    grid = _share_grid(n_points)
    lorenz = np.interp(grid, F, L)
    top = 1.0 - np.interp(1.0 - grid, F, L)
    gini = float(1.0 - np.sum(np.diff(F) * (L[1:] + L[:-1])))
    out = pd.DataFrame({"lorenz": lorenz, "top_share": top},
                       index=pd.Index(grid, name="share_of_customers"))
    out.attrs.update(gini=gini, top_10_share=float(1.0 - np.interp(0.9, F, L)),
                     top_20_share=float(1.0 - np.interp(0.8, F, L)), total=float(arr.sum()),
                     n_customers=len(arr))
    return out


def gains_table(predicted: Any, actual: Any, *, n_points: int = 101) -> pd.DataFrame:
    """Gains curve: share of the actual (e.g. holdout) value captured by the customers ranked
    highest by a prediction.

    Customers are ranked by ``predicted`` (highest first; tied predictions share their actual
    value evenly); ``actual`` must be non-negative. Two Series are aligned on their index;
    otherwise they must have the same length. On a grid of ``n_points`` shares of customers
    returns ``model`` (captured by the prediction's ranking), ``perfect`` (ranking by the
    actual values themselves) and ``random`` (the diagonal).

    ``attrs``: ``top_decile_capture`` (model's share at 10%), ``top_decile_capture_perfect``,
    ``gini`` = 2 × area between the model curve and the diagonal (1 - 1/n-ish for a perfect
    ranking, 0 for a random one), ``normalized_gini`` = gini / perfect gini, ``n_customers``.
    """
    if isinstance(predicted, pd.Series) and isinstance(actual, pd.Series):
        if not predicted.index.equals(actual.index):
            if set(predicted.index) != set(actual.index):
                raise ValueError("predicted and actual must have the same customers (index)")
            actual = actual.reindex(predicted.index)
    pred = _values(predicted, "predicted")
    act = _values(actual, "actual")
    if len(pred) != len(act):
        raise ValueError(f"predicted ({len(pred)}) and actual ({len(act)}) differ in length")
    if np.any(act < 0):
        raise ValueError("actual values must be non-negative for a gains curve")
    grid = _share_grid(n_points)

    def curve(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(-keys, kind="stable")
        return _cumulative_share(-keys[order], act[order])

    Fm, Gm = curve(pred)
    Fp, Gp = curve(act)

    def gini(F: np.ndarray, G: np.ndarray) -> float:
        return float(np.sum(np.diff(F) * (G[1:] + G[:-1])) - 1.0)

    g_model, g_perfect = gini(Fm, Gm), gini(Fp, Gp)
    out = pd.DataFrame({"model": np.interp(grid, Fm, Gm), "perfect": np.interp(grid, Fp, Gp),
                        "random": grid}, index=pd.Index(grid, name="share_of_customers"))
    out.attrs.update(
        top_decile_capture=float(np.interp(0.1, Fm, Gm)),
        top_decile_capture_perfect=float(np.interp(0.1, Fp, Gp)),
        gini=g_model,
        normalized_gini=g_model / g_perfect if g_perfect > 0 else float("nan"),
        n_customers=len(act),
    )
    return out
