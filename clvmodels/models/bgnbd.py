"""BG/NBD: Fader, Hardie & Lee (2005), "Counting your customers the easy way", Mktg Sci 24(2).

While alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after each *repeat*
purchase they drop out with probability p ~ Beta(a, b).

The functions here broadcast over parameter arrays (a point estimate, or a stack of
posterior draws shaped ``(draws, 1)`` against customers ``(n,)``). The MBG/NBD of Batislam,
Denizel & Filiztekin (2007) differs only in also allowing a drop-out right after the first
purchase, so the BG family's formulas take ``modified`` and :mod:`clvmodels.models.mbgnbd`
reuses them rather than repeating them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from clvmodels.models._math import NP
from clvmodels.models._special import log_hyp2f1, log_hyp2f1_grid
from clvmodels.models.links import declare_links
from clvmodels.models.mle import MLEModel
from clvmodels.models.transaction import TransactionModel
from clvmodels.simulate import simulate_bgnbd

__all__ = [
    "BetaGeo",
    "expected_purchases",
    "expected_purchases_new_customer",
    "log_likelihood",
    "probability_alive",
    "purchase_count_probability",
]


# --------------------------------------------------------------------------------------
# the BG family's math, written once
# --------------------------------------------------------------------------------------


def bg_family_log_likelihood(r: Any, alpha: Any, a: Any, b: Any, x: Any, tx: Any, T: Any,
                             *, modified: bool, m: Any = NP) -> Any:
    """Per-customer log-likelihood of the BG/NBD (FHL 2005, eq. 6) or MBG/NBD.

    Overflow-safe form (Hardie note 027), with s = b + x (BG) or b + x + 1 (MBG):

        LL = lnG(r+x) - lnG(r) + r ln(alpha) + lnG(a+b) + lnG(s) - lnG(b) - lnG(a+s)
             + ln[(alpha+T)^-(r+x) + D (a/(s-1)) (alpha+t_x)^-(r+x)]

    where D = 1{x>0} for the BG/NBD and D = 1 for the MBG/NBD. Written against the math
    namespace ``m`` so the pytensor (PyMC) version is this same function.
    """
    s = b + x + (1.0 if modified else 0.0)
    head = (m.gammaln(r + x) - m.gammaln(r) + r * m.log(alpha)
            + m.gammaln(a + b) + m.gammaln(s) - m.gammaln(b) - m.gammaln(a + s))
    log_c = -(r + x) * m.log(alpha + T)
    if modified:
        log_d = m.log(a) - m.log(s - 1.0) - (r + x) * m.log(alpha + tx)
        return head + m.logaddexp(log_c, log_d)
    present = x > 0
    safe = m.where(present, s - 1.0, 1.0)  # b - 1 may be <= 0 when x = 0: never used then
    log_d = m.log(a) - m.log(safe) - (r + x) * m.log(alpha + tx)
    return head + m.where(present, m.logaddexp(log_c, log_d), log_c)


def bg_family_log_likelihood_grad(r: float, alpha: float, a: float, b: float,
                                  x: np.ndarray, tx: np.ndarray, T: np.ndarray,
                                  *, modified: bool) -> np.ndarray:
    """Analytic gradient of :func:`bg_family_log_likelihood`, shape (4, n): d/d(r, alpha, a, b).

    With w_D the weight of the second bracket term (its share of the log-sum-exp):
    dLL/dr = psi(r+x) - psi(r) + ln alpha - (1-w_D) ln(alpha+T) - w_D ln(alpha+t_x), and so on.
    """
    s = b + x + (1.0 if modified else 0.0)
    present = np.ones_like(x, dtype=bool) if modified else x > 0
    s1 = np.where(present, s - 1.0, 1.0)
    lat, latx = np.log(alpha + T), np.log(alpha + tx)
    log_c = -(r + x) * lat
    log_d = np.log(a) - np.log(s1) - (r + x) * latx
    wd = np.where(present, special.expit(log_d - log_c), 0.0)
    wc = 1.0 - wd
    psi = special.digamma
    d_r = psi(r + x) - psi(r) + np.log(alpha) - wc * lat - wd * latx
    d_alpha = r / alpha - (r + x) * (wc / (alpha + T) + wd / (alpha + tx))
    d_a = psi(a + b) - psi(a + s) + wd / a
    d_b = psi(a + b) + psi(s) - psi(b) - psi(a + s) - wd / s1
    return np.vstack([d_r, d_alpha, d_a, d_b])


def _dot(u: np.ndarray, v: np.ndarray) -> float:
    """Single-threaded dot product of two vectors."""
    return float(np.einsum("i,i->", u, v))


def bg_family_value_and_grad(r: float, alpha: float, a: float, b: float, d: Any, *,
                             modified: bool) -> tuple[float, np.ndarray]:
    """Weighted total of :func:`bg_family_log_likelihood` over unique rows, and its gradient.

    The maximum-likelihood hot path. Same formula, organised for speed: the terms that depend
    on x alone are evaluated once per distinct x and those in T (or t_x) alone once per
    distinct value (``FitData.levels``); only the bracket's log-sum-exp is per row. Tests
    check it against the plain function and finite differences.
    """
    j = 1.0 if modified else 0.0
    ux, xi, wx = d.levels("x")
    uT, Ti, _ = d.levels("T")
    utx, txi, _ = d.levels("tx")
    psi, gl = special.digamma, special.gammaln
    s_u = b + ux + j
    # --- terms in x alone (FHL eq. 6's gamma functions)
    head = (gl(r + ux) - gl(r) + r * np.log(alpha) + gl(a + b) + gl(s_u) - gl(b)
            - gl(a + s_u))
    total = float(wx @ head)
    psi_as = psi(a + s_u)
    g = np.array([
        wx @ (psi(r + ux) - psi(r) + np.log(alpha)),
        d.n_customers * r / alpha,
        wx @ (psi(a + b) - psi_as),
        wx @ (psi(a + b) + psi(s_u) - psi(b) - psi_as),
    ])
    # --- the bracket ln[(alpha+T)^-(r+x) + D a/(s-1) (alpha+t_x)^-(r+x)], per row, using
    # only SIMD-fast ufuncs (exp, log, maximum; no logaddexp/log1p/expit/where)
    present_u = np.ones_like(ux, dtype=bool) if modified else ux > 0
    s1_u = np.where(present_u, s_u - 1.0, 1.0)
    # rows without the second term get log-weight -inf, so their share is exactly 0
    c_u = np.where(present_u, np.log(a) - np.log(s1_u), -np.inf)
    inv_s1_u = np.where(present_u, 1.0 / s1_u, 0.0)
    lat_u, latx_u = np.log(alpha + uT), np.log(alpha + utx)
    rx = r + d.x
    lat = lat_u[Ti]
    dl = latx_u[txi] - lat
    diff = c_u[xi] - rx * dl  # log of (second term / first term)
    m = np.maximum(diff, 0.0)
    softplus = m + np.log(np.exp(-m) + np.exp(diff - m))
    wd = 1.0 / (1.0 + np.exp(-diff))  # share of the second term
    w = d.w
    ww = w * wd
    inv_aT = (1.0 / (alpha + uT))[Ti]
    # reductions by einsum, not BLAS: BLAS threads stall badly on a busy machine
    total += float(_dot(w, softplus - rx * lat))
    g[0] += -_dot(w, lat) - _dot(ww, dl)
    g[1] -= _dot(w * rx, inv_aT) + _dot(ww * rx, (1.0 / (alpha + utx))[txi] - inv_aT)
    g[2] += ww.sum() / a
    g[3] -= _dot(ww, inv_s1_u[xi])
    return total, g


def bg_family_log_odds_dead(r: Any, alpha: Any, a: Any, b: Any, x: Any, tx: Any, T: Any,
                            *, modified: bool) -> np.ndarray:
    """log of the odds of being inactive: ln[D a/(s-1)] + (r+x) ln((alpha+T)/(alpha+t_x))."""
    x = np.asarray(x, dtype=float)
    s1 = b + x - (0.0 if modified else 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.log(a) - np.log(s1) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
    if not modified:
        lo = np.where(x > 0, lo, -np.inf)
    return lo


def bg_family_probability_alive(r: Any, alpha: Any, a: Any, b: Any, x: Any, tx: Any, T: Any,
                                *, modified: bool) -> np.ndarray:
    """P(alive | x, t_x, T) = 1 / (1 + D (a/(s-1)) ((alpha+T)/(alpha+t_x))^(r+x)) (FHL eq. 11)."""
    return special.expit(-bg_family_log_odds_dead(r, alpha, a, b, x, tx, T,
                                                  modified=modified))


def _bg_expectation_core(r: Any, alpha: Any, a: Any, b: Any, t: Any) -> np.ndarray:
    """((a+b-1)/(a-1)) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))].

    The BG/NBD expected number of purchases in (0, t] (FHL eq. 7) and, with updated
    parameters, the conditional expectation (eq. 10). With c = a+b-1, z = t/(alpha+t):

    * c > 1/4: evaluated as -c expm1(L) / (a-1), L the log of the product, so it stays
      accurate for small t and for a < 1 (where both factors change sign);
    * c <= 1/4 (possible only when x = 0 and a + b <= 5/4): 2F1 has a pole at c = 0 and
      changes sign for c < 0, so c 2F1(r, b; c; z) is rewritten with Gauss' contiguous
      relation [DLMF 15.5.18] in terms of 2F1(r, b; c+1; z) and 2F1(r, b; c+2; z), both
      positive; the factor c cancels and the removable singularity disappears.

    a within 1e-7 of 1 (another removable singularity) is evaluated as the mean of its two
    neighbours.

    When only ``t`` varies along the last axis (valuation: every period boundary for the same
    customer and draw) and c > 1/4, 2F1 comes from :func:`log_hyp2f1_grid`, which serves the
    whole last axis with one series per band of arguments.
    """
    grid = _horizon_grid(r, alpha, a, b, t)
    if grid is not None:
        return grid
    return _bg_expectation_general(r, alpha, a, b, t)


def _bg_expectation_general(r: Any, alpha: Any, a: Any, b: Any, t: Any) -> np.ndarray:
    """:func:`_bg_expectation_core` element by element (any broadcastable shapes)."""
    r, alpha, a, b, t = np.broadcast_arrays(*(np.asarray(v, dtype=float)
                                              for v in (r, alpha, a, b, t)))

    def value(a_: np.ndarray) -> np.ndarray:
        out = np.zeros(r.shape)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            z = t / (alpha + t)
            zc = alpha / (alpha + t)
            lzc = np.log(alpha) - np.log(alpha + t)
            c = a_ + b - 1.0
            direct = (c > 0.25) & (t > 0)
            if direct.any():
                i = direct
                out[i] = _expectation_direct(r[i], a_[i], c[i], lzc[i], log_hyp2f1(
                    r[i], b[i], c[i], z[i], zc=zc[i]))
            i = ~direct & (t > 0)
            if i.any():
                ri, bi, ci, zi, zci, li = r[i], b[i], c[i], z[i], zc[i], lzc[i]
                cp = ci + 1.0
                f1 = np.exp((ri - 1.0) * li + log_hyp2f1(ri, bi, cp, zi, zc=zci))
                f2 = np.exp((ri - 1.0) * li + log_hyp2f1(ri, bi, cp + 1.0, zi, zc=zci))
                term = (ci - (2.0 * cp - ri - bi - 1.0) * zi) * f1 + (
                    (cp - ri) * (cp - bi) * zi / cp) * f2
                out[i] = (ci - term) / (a_[i] - 1.0)
        return out

    near_one = np.abs(a - 1.0) < 1e-7
    if np.any(near_one):
        eps = 1e-5
        smooth = 0.5 * (value(np.where(near_one, 1.0 - eps, a))
                        + value(np.where(near_one, 1.0 + eps, a)))
        return np.where(near_one, smooth, value(np.where(near_one, 2.0, a)))
    return value(a)


def _expectation_direct(r: np.ndarray, a: np.ndarray, c: np.ndarray, lzc: np.ndarray,
                        log_f: np.ndarray) -> np.ndarray:
    """The c > 1/4 form of :func:`_bg_expectation_core`: -c expm1(L) / (a - 1) with
    L = r log(alpha / (alpha + t)) + log 2F1(r, b; c; t / (alpha + t)) (``lzc``, ``log_f``)."""
    return -c * np.expm1(r * lzc + log_f) / (a - 1.0)


def _horizon_grid(r: Any, alpha: Any, a: Any, b: Any, t: Any) -> np.ndarray | None:
    """:func:`_bg_expectation_core` for parameters constant along t's last axis, or None:
    :func:`_expectation_direct` with 2F1 from :func:`log_hyp2f1_grid`; rows outside that
    form's domain (c <= 1/4, a near 1) go to :func:`_bg_expectation_general`."""
    t = np.asarray(t, dtype=float)
    if t.ndim == 0 or t.shape[-1] < 2:
        return None
    params = [np.asarray(v, dtype=float) for v in (r, alpha, a, b)]
    if any(v.ndim and v.shape[-1] != 1 for v in params):
        return None
    k = t.shape[-1]
    lead = np.broadcast_shapes(t.shape[:-1], *(v.shape[:-1] for v in params if v.ndim))
    r, alpha, a, b = (np.broadcast_to(v, (*lead, 1)).reshape(-1, 1) for v in params)
    t = np.broadcast_to(t, (*lead, k)).reshape(-1, k)
    c = a + b - 1.0
    good = ((c > 0.25) & (np.abs(a - 1.0) >= 1e-7) & (alpha > 0))[:, 0] & np.all(t >= 0, axis=1)
    out = np.empty(t.shape)
    if good.any():
        i = good
        with np.errstate(divide="ignore"):
            lzc = np.log(alpha[i]) - np.log(alpha[i] + t[i])
        log_f = log_hyp2f1_grid(r[i], b[i], c[i], t[i] / (alpha[i] + t[i]))
        out[i] = np.where(t[i] > 0, _expectation_direct(r[i], a[i], c[i], lzc, log_f), 0.0)
    if not good.all():
        i = ~good
        out[i] = _bg_expectation_general(r[i], alpha[i], a[i], b[i], t[i])
    return out.reshape(*lead, k)


def bg_family_expected_new(r: Any, alpha: Any, a: Any, b: Any, t: Any, *,
                           modified: bool) -> np.ndarray:
    """E[X(t)] for a new customer: FHL eq. (7); MBG: (b/(a-1)) [1 - (..)^r 2F1(r, b+1; a+b; ..)]."""
    if modified:
        return np.asarray(b / (a + b)) * _bg_expectation_core(r, alpha, a, np.asarray(b) + 1.0, t)
    return _bg_expectation_core(r, alpha, a, b, t)


def bg_family_expected_purchases(r: Any, alpha: Any, a: Any, b: Any, x: Any, tx: Any, T: Any,
                                 t: Any, *, modified: bool) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: FHL eq. (10) (BG) or Batislam et al. (2007) eq. (9) (MBG).

    Given alive at T the customer behaves like a new one with updated parameters
    (r+x, alpha+T, a, s) with s = b+x (BG) or b+x+1 (MBG); times P(alive).
    """
    x = np.asarray(x, dtype=float)
    s = b + x + (1.0 if modified else 0.0)
    core = _bg_expectation_core(r + x, alpha + np.asarray(T, dtype=float), a, s, t)
    return core * bg_family_probability_alive(r, alpha, a, b, x, tx, T, modified=modified)


def bg_family_cumulative_expected(r: float, alpha: float, a: float, b: float, x: np.ndarray,
                                  tx: np.ndarray, T: np.ndarray, times: np.ndarray, *,
                                  modified: bool) -> np.ndarray:
    """E[Y(t) | x, t_x, T] for customers (n,) × horizons (k,): shape (n, k).

    The same formula as :func:`bg_family_expected_purchases`, organised for valuation: its
    hypergeometric part depends on a customer only through (x, T), so it is evaluated once
    per distinct (x, T) pair and horizon, then scaled by each customer's P(alive).
    """
    from clvmodels.rows import unique_rows

    (ux, uT), inverse, _ = unique_rows([np.asarray(x, float), np.asarray(T, float)])
    s = b + ux + (1.0 if modified else 0.0)
    core = _bg_expectation_core(r + ux[:, None], alpha + uT[:, None], a, s[:, None],
                                np.asarray(times, float)[None, :])
    alive = bg_family_probability_alive(r, alpha, a, b, x, tx, T, modified=modified)
    return core[inverse] * alive[:, None]


def bg_family_pmf(r: Any, alpha: Any, a: Any, b: Any, n: Any, t: Any, *,
                  modified: bool) -> np.ndarray:
    """P(X(t) = n) for a new customer: FHL eq. (8) (BG); the MBG analogue for ``modified``.

    BG:  B(a, b+n)/B(a,b) NB(n) + 1{n>0} B(a+1, b+n-1)/B(a,b) P(N(t) >= n)
    MBG: B(a, b+n+1)/B(a,b) NB(n) + B(a+1, b+n)/B(a,b) P(N(t) >= n)
    with NB the negative-binomial pmf of the Poisson-gamma count N(t) and
    P(N(t) >= n) = I_{t/(alpha+t)}(n, r), a regularised incomplete beta (1 for n = 0).
    """
    n = np.asarray(n, dtype=float)
    t = np.asarray(t, dtype=float)
    j = 1.0 if modified else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_nb = (special.gammaln(r + n) - special.gammaln(r) - special.gammaln(n + 1.0)
                  + r * (np.log(alpha) - np.log(alpha + t))
                  + special.xlogy(n, t) - n * np.log(alpha + t))
        first = np.exp(special.betaln(a, b + n + j) - special.betaln(a, b) + log_nb)
        tail = np.where(n > 0, special.betainc(np.maximum(n, 1.0), r, t / (alpha + t)), 1.0)
        second = np.exp(special.betaln(a + 1.0, b + n + j - 1.0) - special.betaln(a, b)) * tail
    if not modified:
        second = np.where(n > 0, second, 0.0)
    return first + second


# --------------------------------------------------------------------------------------
# BG/NBD public functions (broadcast over parameter arrays)
# --------------------------------------------------------------------------------------


def log_likelihood(r: Any, alpha: Any, a: Any, b: Any, x: Any, tx: Any, T: Any,
                   m: Any = NP) -> Any:
    """Per-customer BG/NBD log-likelihood (FHL 2005 eq. 6, Hardie note 027 form)."""
    return bg_family_log_likelihood(r, alpha, a, b, x, tx, T, modified=False, m=m)


def probability_alive(r: Any, alpha: Any, a: Any, b: Any, x: Any, tx: Any, T: Any
                      ) -> np.ndarray:
    """P(alive | x, t_x, T), FHL 2005 eq. (11)."""
    return bg_family_probability_alive(r, alpha, a, b, x, tx, T, modified=False)


def expected_purchases(r: Any, alpha: Any, a: Any, b: Any, x: Any, tx: Any, T: Any, t: Any
                       ) -> np.ndarray:
    """E[Y(t) | x, t_x, T], FHL 2005 eq. (10)."""
    return bg_family_expected_purchases(r, alpha, a, b, x, tx, T, t, modified=False)


def expected_purchases_new_customer(r: Any, alpha: Any, a: Any, b: Any, t: Any) -> np.ndarray:
    """E[X(t)], FHL 2005 eq. (7)."""
    return bg_family_expected_new(r, alpha, a, b, t, modified=False)


def purchase_count_probability(r: Any, alpha: Any, a: Any, b: Any, n: Any, t: Any
                               ) -> np.ndarray:
    """P(X(t) = n), FHL 2005 eq. (8)."""
    return bg_family_pmf(r, alpha, a, b, n, t, modified=False)


def bg_family_conditional_pmf(r: Any, alpha: Any, a: Any, b: Any, n: Any, x: Any, tx: Any,
                              T: Any, t: Any, *, modified: bool) -> np.ndarray:
    """P(Y(t) = n | x, t_x, T): repeat purchases in (T, T + t] given the history.

    Alive at T, a customer's purchase rate and drop-out probability have the posterior
    Gamma(r + x, alpha + T) and Beta(a, b + x) (MBG: b + x + 1) distributions, and from T on
    they buy like a new BG/NBD customer with those parameters (FHL 2005, eq. 8 with updated
    parameters); a dead customer buys nothing:
    ``P(alive) P_new(n; r + x, alpha + T, a, b + x, t) + (1 - P(alive)) 1{n = 0}``.
    """
    alive = bg_family_probability_alive(r, alpha, a, b, x, tx, T, modified=modified)
    # known to be alive at T, a customer can only drop out after future purchases — the
    # BG/NBD structure for both models — with the MBG's drop-out Beta updated by one more
    # survived opportunity
    new = bg_family_pmf(r + x, alpha + T, a, b + x + (1.0 if modified else 0.0), n, t,
                        modified=False)
    return alive * new + (1.0 - alive) * (np.asarray(n) == 0)


class _BGFamily(TransactionModel, MLEModel):
    param_names = ("r", "alpha", "a", "b")
    data_kind = "continuous"
    #: CLVTools' static-covariate BG/NBD: alpha_i = alpha exp(-g_p'z) (a positive purchase
    #: coefficient raises the purchase rate); a_i = a exp(g_d'z), b_i = b exp(g_d'z)
    covariate_links = declare_links(purchase=(("alpha", -1.0),), dropout=(("a", 1.0), ("b", 1.0)))
    _modified = False

    def _loglik(self, p: dict[str, Any], d: Any, m: Any = NP) -> Any:
        return bg_family_log_likelihood(p["r"], p["alpha"], p["a"], p["b"], d.x, d.tx, d.T,
                                        modified=self._modified, m=m)

    def _loglik_grad(self, p: dict[str, Any], d: Any) -> np.ndarray:
        return bg_family_log_likelihood_grad(p["r"], p["alpha"], p["a"], p["b"], d.x, d.tx,
                                             d.T, modified=self._modified)

    def _value_and_grad(self, p: dict[str, Any], d: Any) -> tuple[float, np.ndarray]:
        return bg_family_value_and_grad(p["r"], p["alpha"], p["a"], p["b"], d,
                                        modified=self._modified)

    def _initial_params(self, d: Any) -> np.ndarray:
        # alpha scales with time: start it at the mean T so any time unit starts well
        return np.array([1.0, max(float(np.average(d.T, weights=d.w)), 1e-3), 1.0, 1.0])

    def _probability_alive(self, p: dict[str, Any], x: Any, tx: Any, T: Any) -> np.ndarray:
        return bg_family_probability_alive(p["r"], p["alpha"], p["a"], p["b"], x, tx, T,
                                           modified=self._modified)

    def _expected_purchases(self, p: dict[str, Any], x: Any, tx: Any, T: Any, t: Any
                            ) -> np.ndarray:
        return bg_family_expected_purchases(p["r"], p["alpha"], p["a"], p["b"], x, tx, T, t,
                                            modified=self._modified)

    def _cumulative_expected(self, p: dict[str, Any], x: np.ndarray, tx: np.ndarray,
                             T: np.ndarray, times: np.ndarray) -> np.ndarray:
        return bg_family_cumulative_expected(p["r"], p["alpha"], p["a"], p["b"], x, tx, T,
                                             times, modified=self._modified)

    def _expected_new(self, p: dict[str, Any], t: Any) -> np.ndarray:
        return bg_family_expected_new(p["r"], p["alpha"], p["a"], p["b"], t,
                                      modified=self._modified)

    def _pmf(self, p: dict[str, Any], n: Any, t: Any) -> np.ndarray:
        return bg_family_pmf(p["r"], p["alpha"], p["a"], p["b"], n, t, modified=self._modified)

    def _conditional_pmf(self, p: dict[str, Any], n: Any, x: Any, tx: Any, T: Any, t: Any
                         ) -> np.ndarray:
        return bg_family_conditional_pmf(p["r"], p["alpha"], p["a"], p["b"], n, x, tx, T, t,
                                         modified=self._modified)


class BetaGeo(_BGFamily):
    """BG/NBD model (Fader, Hardie & Lee 2005), fitted by maximum likelihood.

    Parameters ``r, alpha`` (Gamma purchase rate, alpha in the data's time unit) and
    ``a, b`` (Beta dropout probability). See :class:`clvmodels.models.base.MLEModel` for
    fitting options and :class:`clvmodels.models.base.TransactionModel` for predictions.

    Examples
    --------
    >>> model = BetaGeo().fit(rfm)            # doctest: +SKIP
    >>> model.expected_purchases(rfm, t=39)   # doctest: +SKIP
    """

    name = "bgnbd"
    label = "BG/NBD"
    citation = ("Fader, Hardie & Lee (2005), Counting your customers the easy way, "
                "Marketing Science 24(2)")
    simulator = staticmethod(simulate_bgnbd)
