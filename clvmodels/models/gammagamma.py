"""Gamma-Gamma spend model: Fader, Hardie & Lee (2005, JMR 42(4)); Fader & Hardie (2013),
"The Gamma-Gamma model of monetary value".

Each repeat transaction's value is Gamma(p, nu) around a customer's mean p/nu, and
nu ~ Gamma(q, v) across customers. Fitted on repeat buyers (x > 0) from their mean repeat
spend m_x. The model assumes spend is independent of purchase frequency: check it with
:meth:`GammaGamma.frequency_spend_correlation`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from clvmodels._validation import ValidationError
from clvmodels.datakinds import KINDS, validate_spend
from clvmodels.models._math import NP
from clvmodels.models.links import declare_links
from clvmodels.models.mle import MLEModel
from clvmodels.rows import UniqueRows
from clvmodels.simulate import simulate_gammagamma

__all__ = ["GammaGamma", "expected_spend", "log_likelihood", "population_mean_spend",
           "value_grad_hess"]


def log_likelihood(p: Any, q: Any, v: Any, x: Any, mx: Any, m: Any = NP) -> Any:
    """Per-customer log-likelihood of the mean repeat spend (Fader & Hardie 2013, eq. 5).

    LL = lnG(px+q) - lnG(px) - lnG(q) + q ln v + (px-1) ln m_x + px ln x - (px+q) ln(v + m_x x)
    """
    px = p * x
    return (m.gammaln(px + q) - m.gammaln(px) - m.gammaln(q) + q * m.log(v)
            + (px - 1.0) * m.log(mx) + px * m.log(x) - (px + q) * m.log(v + mx * x))


def log_likelihood_grad(p: float, q: float, v: float, x: np.ndarray, mx: np.ndarray
                        ) -> np.ndarray:
    """Analytic gradient of :func:`log_likelihood` w.r.t. (p, q, v), shape (3, n)."""
    psi = special.digamma
    px = p * x
    lvm = np.log(v + mx * x)
    psi_a = psi(px + q)
    d_p = x * (psi_a - psi(px) + np.log(mx * x) - lvm)
    d_q = psi_a - psi(q) + np.log(v) - lvm
    d_v = q / v - (px + q) / (v + mx * x)
    return np.vstack([d_p, d_q, d_v])


def _spend_terms(d: Any) -> dict[str, Any]:
    """What the fused likelihood needs from the rows alone, computed once per rows (cached):
    the distinct x with their summed weights, s = m_x x per row, and the data-only sums
    sum w ln m_x, sum w x ln m_x and sum w x ln x."""
    cache = d.__dict__.get("_gg_terms")
    if cache is not None:
        return cache
    x = np.asarray(d.x, dtype=float)
    m = np.asarray(d.m, dtype=float)
    w = np.asarray(d.w, dtype=float)
    if len(x) and bool(np.all(x[1:] >= x[:-1])):
        # rows come sorted by x (unique_rows' lexicographic order): distinct x from the cuts
        starts = np.concatenate([[0], np.flatnonzero(x[1:] != x[:-1]) + 1])
        ux, wx = x[starts], np.add.reduceat(w, starts)
    else:
        ux, inv = np.unique(x, return_inverse=True)
        wx = np.bincount(inv.reshape(-1), weights=w, minlength=len(ux))
    unit = bool(np.all(w == 1.0))
    wxr = x if unit else w * x
    log_m = np.log(m)
    cache = {
        "ux": ux, "wx": wx, "n": float(w.sum()), "s": m * x, "w": None if unit else w,
        "wxr": wxr, "sum_logm": _dot(w, log_m), "sum_xlogm": _dot(wxr, log_m),
        "sum_xlogx": _dot(wx * ux, np.log(ux)) if len(ux) else 0.0,
        "buf": np.empty_like(m),
    }
    d.__dict__["_gg_terms"] = cache
    return cache


def _dot(u: np.ndarray, v: np.ndarray) -> float:
    """Single-threaded dot product (einsum, not BLAS: BLAS threads stall on a busy machine)."""
    return float(np.einsum("i,i->", u, v))


def value_grad_hess(p: float, q: float, v: float, d: Any, *, hessian: bool = True
                    ) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Weighted total of :func:`log_likelihood` over the rows ``d`` (Fader & Hardie 2013,
    eq. 5), its gradient and (``hessian=True``) its Hessian w.r.t. (p, q, v).

    The maximum-likelihood hot path; the same formula organised for speed. With s = m_x x,

        LL = sum_x w_x [lnG(px+q) - lnG(px)] - N lnG(q) + N q ln v + p sum w x (ln m_x + ln x)
             - sum w ln m_x - p sum w x ln(v+s) - q sum w ln(v+s)

    so the gamma-function terms are evaluated once per distinct x (frequency takes few
    values), the terms in the data alone once per fit (:func:`_spend_terms`), and per row and
    evaluation there is one log and one reciprocal (the Hessian adds a square). Scalar
    parameters only (per-row arrays: :func:`log_likelihood`). Tests check it against the
    per-row sums and finite differences.
    """
    c = _spend_terms(d)
    ux, wx, n, w, wxr = c["ux"], c["wx"], c["n"], c["w"], c["wxr"]
    pu = p * ux
    a_u = pu + q
    gl, psi = special.gammaln, special.digamma
    buf = c["buf"]
    np.add(c["s"], v, out=buf)
    inv = np.reciprocal(buf)
    log_t = np.log(buf, out=buf)  # ln(v + m_x x): the one log per row
    sum_l = float(log_t.sum()) if w is None else _dot(w, log_t)
    sum_xl = _dot(wxr, log_t)
    sum_i = float(inv.sum()) if w is None else _dot(w, inv)
    sum_xi = _dot(wxr, inv)
    log_v = math.log(v)
    total = (_dot(wx, gl(a_u) - gl(pu)) - n * float(gl(q)) + n * q * log_v
             + p * (c["sum_xlogm"] + c["sum_xlogx"]) - c["sum_logm"] - p * sum_xl - q * sum_l)
    psi_a = psi(a_u)
    grad = np.array([
        _dot(wx * ux, psi_a - psi(pu)) + c["sum_xlogm"] + c["sum_xlogx"] - sum_xl,
        _dot(wx, psi_a) - n * float(psi(q)) + n * log_v - sum_l,
        n * q / v - p * sum_xi - q * sum_i,
    ])
    if not hessian:
        return total, grad, None
    np.multiply(inv, inv, out=inv)
    sum_i2 = float(inv.sum()) if w is None else _dot(w, inv)
    sum_xi2 = _dot(wxr, inv)
    tri_a = special.polygamma(1, a_u)
    h_pp = _dot(wx * ux * ux, tri_a - special.polygamma(1, pu))
    h_pq = _dot(wx * ux, tri_a)
    h_qq = _dot(wx, tri_a) - n * float(special.polygamma(1, q))
    h_pv = -sum_xi
    h_qv = n / v - sum_i
    h_vv = -n * q / (v * v) + p * sum_xi2 + q * sum_i2
    hess = np.array([[h_pp, h_pq, h_pv], [h_pq, h_qq, h_qv], [h_pv, h_qv, h_vv]])
    return total, grad, hess


def _distinct_spend_rows(data: pd.DataFrame, extra_codes: dict[str, np.ndarray] | None
                         ) -> UniqueRows | None:
    """The unique rows of the repeat buyers when no two share a monetary value — the usual
    case, as mean spend is continuous — without the general compression's hashing of
    every column; None when some monetary values repeat (then the general path compresses).

    The result equals :func:`clvmodels.datakinds.kind_rows`'s (same validation; rows in the
    same lexicographic (frequency, monetary_value, covariates) order, weights 1, the same
    inverse). It keeps each row's rank in monetary value (``extra["monetary_rank"]``) for
    the Spearman correlation of the data summary.
    """
    spec = KINDS["spend"]
    frame = spec.conform(data)
    spec.validate(frame, "spend data", None)
    x_all = frame["frequency"].to_numpy(dtype=float)
    keep = x_all > 0
    x = x_all[keep]
    m = frame["monetary_value"].to_numpy(dtype=float)[keep]
    k = len(x)
    if k < 2:
        return None
    by_m = np.argsort(m)  # distinct values (checked next): any sort gives the same order
    m_sorted = m[by_m]
    if bool(np.any(m_sorted[1:] == m_sorted[:-1])):
        return None
    # then by frequency, stably: a radix sort on small whole numbers (gathered as 2 bytes)
    small = float(x.max()) < 2**15
    codes = x.astype(np.int16 if small else np.int64)[by_m]
    perm = np.argsort(codes, kind="stable")
    order = by_m[perm]
    if small:  # the sorted frequencies are their distinct values repeated: no gather
        counts = np.bincount(codes)
        x_rows = np.repeat(np.arange(len(counts), dtype=float), counts)
    else:
        x_rows = x[order]
    columns = {"frequency": x_rows, "monetary_value": m_sorted[perm]}
    for name, values in (extra_codes or {}).items():
        columns[name] = np.asarray(values, dtype=float)[keep][order]
    inverse = np.full(len(x_all), -1, dtype=np.int64)
    row_of = np.empty(k, dtype=np.int64)
    row_of[order] = np.arange(k)
    inverse[keep] = row_of
    # row r holds the customer of m-rank perm[r] (order = by_m[perm])
    return UniqueRows(columns=columns, weights=np.ones(k), inverse=inverse,
                      index=frame.index.copy(), time_unit=data.attrs.get("time_unit"),
                      extra={"monetary_rank": perm})


def _rows_correlation(d: UniqueRows) -> dict[str, float] | None:
    """:meth:`GammaGamma.frequency_spend_correlation` from rows of
    :func:`_distinct_spend_rows` (one customer each, sorted by frequency, monetary ranks
    known), in a few passes: Spearman's rho is Pearson's on the ranks, ties in frequency at
    their average rank (as scipy's ``rankdata``); frequency is constant within each run of
    rows, so every cross product is a sum per run."""
    x, m = d.x, d.m
    k = len(x)
    if k < 3 or x[0] == x[-1] or np.ptp(m) == 0:
        return {"pearson": float("nan"), "spearman": float("nan"), "n": k}
    starts = np.concatenate([[0], np.flatnonzero(x[1:] != x[:-1]) + 1])
    sizes = np.diff(np.append(starts, k)).astype(float)
    ux = x[starts]
    # Pearson: centred sums; x is constant per run
    mean_m = float(m.sum()) / k
    dm = m - mean_m
    dx_u = ux - _dot(sizes, ux) / k
    cov = _dot(dx_u, np.add.reduceat(dm, starts))
    pearson = cov / math.sqrt(_dot(sizes, dx_u * dx_u) * _dot(dm, dm))
    # Spearman: ranks 1..k of m (distinct), average ranks of x per run
    rank_sum = np.add.reduceat(d.extra["monetary_rank"].astype(float), starts) + sizes
    mean_rank = 0.5 * (k + 1.0)
    dr_u = starts + 0.5 * (sizes + 1.0) - mean_rank
    cov_r = _dot(dr_u, rank_sum - sizes * mean_rank)
    var_m = k * (k * k - 1.0) / 12.0
    spearman = cov_r / math.sqrt(_dot(sizes, dr_u * dr_u) * var_m)
    return {"pearson": float(pearson), "spearman": float(spearman), "n": k}


def expected_spend(p: Any, q: Any, v: Any, x: Any, mx: Any) -> np.ndarray:
    """E[M | x, m_x] = (v + m_x x) p / (p x + q - 1) (Fader & Hardie 2013, eq. 6).

    A weighted average of the population mean p v / (q - 1) and the customer's own mean m_x,
    with weight on m_x growing with x; x = 0 gives the population mean. Needs q > 1.
    """
    x = np.asarray(x, dtype=float)
    mx = np.where(x > 0, np.asarray(mx, dtype=float), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (v + mx * x) * p / (p * x + q - 1.0)
    return np.where(np.asarray(q) > 1.0, out, np.inf)


def population_mean_spend(p: Any, q: Any, v: Any) -> np.ndarray:
    """Mean spend per transaction in the population, p v / (q - 1) (infinite when q <= 1)."""
    with np.errstate(divide="ignore"):
        return np.where(np.asarray(q) > 1.0, p * v / (np.asarray(q) - 1.0), np.inf)


class GammaGamma(MLEModel):
    """Gamma-Gamma model of mean transaction value, fitted by maximum likelihood.

    ``fit(rfm)`` uses the customers with ``frequency > 0`` and their ``monetary_value`` (mean
    repeat spend). Parameters ``p, q, v``; ``q`` must exceed 1 for the mean to exist.
    """

    param_names = ("p", "q", "v")
    #: v_i = v exp(g_s'z): the expected spend p v_i / (q - 1) is multiplied by exp(g_s'z)
    covariate_links = declare_links(spend=(("v", 1.0),))
    name = "gammagamma"
    label = "Gamma-Gamma"
    data_kind = "spend"
    citation = ("Fader, Hardie & Lee (2005), RFM and CLV: using iso-value curves, JMR 42(4); "
                "Fader & Hardie (2013), The Gamma-Gamma model of monetary value")
    uses_monetary = True
    simulator = staticmethod(simulate_gammagamma)

    def _loglik(self, p: dict[str, Any], d: UniqueRows, m: Any = NP) -> Any:
        return log_likelihood(p["p"], p["q"], p["v"], d.x, d.m, m=m)

    def _loglik_grad(self, p: dict[str, Any], d: UniqueRows) -> np.ndarray:
        return log_likelihood_grad(p["p"], p["q"], p["v"], d.x, d.m)

    def _value_and_grad(self, p: dict[str, Any], d: UniqueRows
                        ) -> tuple[float, np.ndarray] | None:
        if any(np.ndim(p[k]) for k in self.param_names):
            return None  # per-row parameters (covariates by row): the broadcasting path
        total, grad, _ = value_grad_hess(p["p"], p["q"], p["v"], d, hessian=False)
        return total, grad

    def _value_grad_hess(self, p: dict[str, Any], d: UniqueRows
                         ) -> tuple[float, np.ndarray, np.ndarray] | None:
        if any(np.ndim(p[k]) for k in self.param_names):
            return None
        total, grad, hess = value_grad_hess(p["p"], p["q"], p["v"], d)
        return total, grad, hess

    def _initial_params(self, d: UniqueRows) -> np.ndarray:
        mean_spend = float(np.average(d.m, weights=d.w))
        return np.array([1.0, 2.0, max(mean_spend, 1e-6)])

    def _fit_data(self, data: pd.DataFrame, weights: str | np.ndarray | None = None,
                  extra_codes: dict[str, np.ndarray] | None = None) -> UniqueRows:
        d = None
        if weights is None:
            d = _distinct_spend_rows(data, extra_codes)
        if d is None:
            d = self._data_rows(data, weights=weights, extra_codes=extra_codes)
        if d.n_customers < 2:
            raise ValidationError(
                "column 'frequency': the Gamma-Gamma model needs at least 2 repeat buyers "
                f"(frequency > 0); found {d.n_customers}"
            )
        return d

    def _data_summary(self, rfm: pd.DataFrame, d: UniqueRows) -> dict[str, Any]:
        corr = _rows_correlation(d) if "monetary_rank" in d.extra else None
        if corr is None:
            corr = self.frequency_spend_correlation(rfm)
        return {
            "n_customers": int(d.n_customers),
            "n_unique_rows": d.n_rows,
            "observed_mean_spend": float(np.average(d.m, weights=d.w)),
            "pearson_frequency_spend": corr["pearson"],
            "spearman_frequency_spend": corr["spearman"],
        }

    def fit(self, rfm: pd.DataFrame, **kwargs: Any) -> GammaGamma:
        """Fit on repeat buyers; warns if frequency and spend look correlated (|r| > 0.3)."""
        super().fit(rfm, **kwargs)
        corr = self.data_summary_["pearson_frequency_spend"]
        if np.isfinite(corr) and abs(corr) > 0.3:
            warnings.warn(
                f"frequency and mean spend are correlated (Pearson {corr:.2f}); the "
                "Gamma-Gamma model assumes they are independent, so its spend forecasts may "
                "be biased",
                UserWarning,
                stacklevel=2,
            )
        if self.params_["q"] <= 1:
            warnings.warn("fitted q <= 1: the population mean spend is infinite",
                          UserWarning, stacklevel=2)
        return self

    @staticmethod
    def frequency_spend_correlation(rfm: pd.DataFrame) -> dict[str, float]:
        """Correlation of frequency and mean repeat spend among repeat buyers.

        The Gamma-Gamma model assumes none; values far from 0 mean its forecasts may be
        biased. Returns Pearson and Spearman coefficients and the number of customers used.
        """
        validate_spend(rfm)
        rep = rfm.loc[rfm["frequency"] > 0]
        if len(rep) < 3:
            return {"pearson": float("nan"), "spearman": float("nan"), "n": len(rep)}
        x = rep["frequency"].to_numpy(float)
        mx = rep["monetary_value"].to_numpy(float)
        if np.ptp(x) == 0 or np.ptp(mx) == 0:
            return {"pearson": float("nan"), "spearman": float("nan"), "n": len(rep)}
        return {
            "pearson": float(np.corrcoef(x, mx)[0, 1]),
            "spearman": float(stats.spearmanr(x, mx).statistic),
            "n": len(rep),
        }

    def expected_spend(self, rfm: pd.DataFrame) -> pd.Series:
        """E[mean transaction value | frequency, monetary_value] per customer.

        Customers with frequency 0 get the population mean p v / (q - 1).
        """
        self._check_fitted()
        validate_spend(rfm)
        p = self._p(rfm)
        out = expected_spend(p["p"], p["q"], p["v"], rfm["frequency"].to_numpy(float),
                             rfm["monetary_value"].to_numpy(float))
        return pd.Series(out, index=rfm.index, name="expected_spend")

    def population_mean_spend(self, *, covariates: pd.DataFrame | None = None
                              ) -> float | np.ndarray:
        """p v / (q - 1): the mean spend per transaction across the population.

        A model with covariates needs ``covariates`` (one row per customer profile): each
        profile's p v_i / (q - 1), v_i = v exp(g_s'z_i) (links equation (1)), one per row.
        """
        p = self._p(covariates)
        out = population_mean_spend(p["p"], p["q"], p["v"])
        return float(out) if np.ndim(out) == 0 else np.asarray(out, dtype=float)
