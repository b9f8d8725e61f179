"""Shifted-beta-geometric (sBG): the contractual (subscription) setting.

Fader & Hardie (2007), "How to project customer retention", J. Interactive Marketing 21(1)
[FH07]; Fader & Hardie (2010), "Customer-base valuation in a contractual setting: the perils
of ignoring heterogeneity", Marketing Science 29(1) [FH10].

A customer pays at the start of each period. At the end of every period they paid for, they
renew with probability 1 - theta and leave with probability theta; theta ~ Beta(alpha, beta)
across customers. T, the lifetime in *periods paid*, is then shifted-geometric given theta and
shifted-beta-geometric over the population [FH07 eqs. 2-5]:

    P(T = t) = B(alpha+1, beta+t-1) / B(alpha, beta),     t = 1, 2, ...
    S(t)     = P(T > t) = B(alpha, beta+t) / B(alpha, beta),   S(0) = 1
    r(t)     = S(t) / S(t-1) = (beta+t-1) / (alpha+beta+t-1)   (retention rate, t >= 1)

The data (:func:`clvmodels.contract.contract_summary`, :func:`simulate_sbg`) are per customer
``periods`` = number of periods paid (the initial one plus renewals, a period counting as paid
at its start) and ``churned``:

* churned after paying n periods: T = n, likelihood P(T = n);
* still active having paid n periods (right-censored): the n-th payment is known, the renewal
  at the end of period n is not yet, so T >= n, likelihood P(T >= n) = S(n - 1).

So in F&H's cohort data (% of a cohort still active at the start of years 0..7) a customer
lost during year t has ``periods = t``, and a survivor at the start of year 8 (7 renewals)
has ``periods = 8`` and contributes S(7) -- with this convention the published estimates are
reproduced (``tests/test_sbg.py``). Both cases are one expression,
ln B(alpha + c, beta + n - 1) - ln B(alpha, beta) with c = 1 for churned customers.

Valuation [FH10]: a customer who has paid n + 1 periods (made n renewals) and is still active
is valued at the moment of their next renewal decision, that payment (if made) undiscounted,
with a discount rate d *per period*:

    DERL = sum_{k>=0} S(n+1+k)/S(n) / (1+d)^k
         = (beta+n)/(alpha+beta+n) 2F1(1, beta+n+1; alpha+beta+n+1; 1/(1+d))   [FH10 eq. 6]

and a new customer, at acquisition (first payment undiscounted),
DEL = sum_{t>=0} S(t)/(1+d)^t = 2F1(1, beta; alpha+beta; 1/(1+d)) [FH10 eq. 4].
Contractual CLV = margin x revenue per period x DERL (or DEL).

Every function broadcasts over its arguments: parameters may be scalars (a point estimate) or
arrays of posterior draws shaped ``(S, 1)`` against per-customer rows ``(n,)``.
:func:`log_likelihood` is written against the math namespace ``m`` so the PyMC likelihood is
the same function evaluated with :func:`clvmodels.models._math.tensor_namespace`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import linalg, special

from clvmodels.models._math import NP
from clvmodels.models._special import log_hyp2f1, log_hyperu
from clvmodels.models.bayes import BayesianContractualModel
from clvmodels.models.contractual import ContractualModel
from clvmodels.models.links import declare_links
from clvmodels.models.mle import MLEModel
from clvmodels.models.priors import PriorSpec, lognormal, normal

__all__ = [
    "BayesianShiftedBetaGeo",
    "ShiftedBetaGeo",
    "churn_probability",
    "conditional_survival",
    "discounted_expected_lifetime",
    "discounted_expected_residual_lifetime",
    "discounted_residual_periods",
    "expected_lifetime",
    "expected_periods_new",
    "log_likelihood",
    "log_likelihood_grad",
    "log_survival",
    "retention_rate",
    "simulate_sbg",
    "simulate_sbg_cohorts",
    "survival",
]

SeedLike = int | np.random.Generator | np.random.SeedSequence | None

#: elements (rows x horizon) summed at once by the finite-horizon sums
_CHUNK_ELEMENTS = 2_000_000


# --------------------------------------------------------------------------------------
# checks (numpy functions only; the likelihood takes tensors and checks nothing)
# --------------------------------------------------------------------------------------


def _params(alpha: ArrayLike, beta: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(alpha, dtype=float)
    b = np.asarray(beta, dtype=float)
    for name, v in (("alpha", a), ("beta", b)):
        if not np.all(np.isfinite(v) & (v > 0)):
            raise ValueError(f"{name} must be finite and > 0")
    return a, b


def _periods(periods: ArrayLike, name: str = "periods", minimum: int = 1) -> np.ndarray:
    n = np.asarray(periods, dtype=float)
    if not np.all(np.isfinite(n) & (n >= minimum) & (n == np.round(n))):
        raise ValueError(f"{name} must be whole numbers >= {minimum}")
    return n


def _discount(discount_rate: ArrayLike) -> np.ndarray:
    d = np.asarray(discount_rate, dtype=float)
    if not np.all(np.isfinite(d) & (d >= 0)):
        raise ValueError("discount_rate must be finite and >= 0 (a rate per period)")
    return d


def _churned(churned: ArrayLike) -> np.ndarray:
    c = np.asarray(churned)
    if c.dtype != bool:
        values = np.asarray(c, dtype=float)
        if not np.all((values == 0) | (values == 1)):
            raise ValueError("churned must be boolean (or 0/1)")
        c = values == 1
    return c


# --------------------------------------------------------------------------------------
# likelihood
# --------------------------------------------------------------------------------------


def log_likelihood(alpha: Any, beta: Any, periods: Any, churned: Any, m: Any = NP) -> Any:
    """Per-customer log-likelihood of the sBG [FH07 eqs. 5 and 6].

    ``churned`` customers paid ``periods`` = n periods and left: ln P(T = n)
    = ln B(alpha+1, beta+n-1) - ln B(alpha, beta). Active customers (right-censored) have
    paid n periods so far: ln P(T >= n) = ln S(n-1) = ln B(alpha, beta+n-1) - ln B(alpha, beta)
    (0 for n = 1: a customer who has only made the first payment says nothing yet). One
    expression, ln B(alpha + c, beta + n - 1) - ln B(alpha, beta), c = 1 if churned.

    Written against the math namespace ``m`` (numpy by default; pytensor for PyMC), with no
    branches or loops over rows. ``periods`` >= 1 is not checked here (the data step does).
    """
    c = m.where(churned, 1.0, 0.0)
    return m.betaln(alpha + c, beta + (periods - 1.0)) - m.betaln(alpha, beta)


def log_likelihood_grad(alpha: ArrayLike, beta: ArrayLike, periods: ArrayLike,
                        churned: ArrayLike) -> np.ndarray:
    """Gradient of :func:`log_likelihood` with respect to (alpha, beta), shape (2, ...).

    With b' = beta + n - 1 and a' = alpha + c:
    d/d alpha = psi(a') - psi(a' + b') - psi(alpha) + psi(alpha + beta),
    d/d beta  = psi(b') - psi(a' + b') - psi(beta) + psi(alpha + beta).
    """
    a = np.asarray(alpha, dtype=float)
    b = np.asarray(beta, dtype=float)
    c = _churned(churned).astype(float)
    bp = b + np.asarray(periods, dtype=float) - 1.0
    ap = a + c
    psi = special.digamma
    common = psi(a + b) - psi(ap + bp)
    return np.stack(np.broadcast_arrays(psi(ap) - psi(a) + common,
                                        psi(bp) - psi(b) + common))


# --------------------------------------------------------------------------------------
# lifetime distribution
# --------------------------------------------------------------------------------------


def log_survival(alpha: ArrayLike, beta: ArrayLike, t: ArrayLike) -> np.ndarray:
    """ln S(t) = ln B(alpha, beta+t) - ln B(alpha, beta) [FH07 eq. 4]; t >= 0 (any real)."""
    a, b = _params(alpha, beta)
    t = np.asarray(t, dtype=float)
    if np.any(t < 0):
        raise ValueError("t must be >= 0")
    # <= 0 exactly (rounding of the two betaln could otherwise give S(t) a hair above 1)
    return np.asarray(np.minimum(special.betaln(a, b + t) - special.betaln(a, b), 0.0))


def survival(alpha: ArrayLike, beta: ArrayLike, t: ArrayLike) -> np.ndarray:
    """S(t) = P(T > t) = B(alpha, beta+t) / B(alpha, beta) [FH07 eq. 4].

    The share of a cohort still active after t renewal decisions (at the start of period
    t + 1, having paid t + 1 periods). S(0) = 1.
    """
    return np.exp(log_survival(alpha, beta, t))


def retention_rate(alpha: ArrayLike, beta: ArrayLike, t: ArrayLike) -> np.ndarray:
    """r(t) = S(t)/S(t-1) = (beta+t-1)/(alpha+beta+t-1), t >= 1 [FH07 eq. 8].

    The share of the customers active after t - 1 renewals who renew the t-th time; it
    increases with t as the customers with high theta leave first (sorting, not a change in
    anyone's behaviour).
    """
    a, b = _params(alpha, beta)
    t = np.asarray(t, dtype=float)
    if np.any(t < 1):
        raise ValueError("t must be >= 1")
    return np.asarray((b + (t - 1.0)) / (a + b + (t - 1.0)))


def churn_probability(alpha: ArrayLike, beta: ArrayLike, t: ArrayLike) -> np.ndarray:
    """P(T = t) = B(alpha+1, beta+t-1) / B(alpha, beta), t = 1, 2, ... [FH07 eq. 5].

    The probability that a new customer pays exactly t periods (leaves at the t-th renewal
    decision).
    """
    a, b = _params(alpha, beta)
    t = _periods(t, "t")
    # P(T = t) = S(t-1) (1 - r(t)) = S(t-1) alpha/(alpha+beta+t-1): exactly alpha/(alpha+beta)
    # at t = 1, never above S(t-1)
    return np.exp(log_survival(a, b, t - 1.0) + np.log(a) - np.log(a + b + (t - 1.0)))


def expected_lifetime(alpha: ArrayLike, beta: ArrayLike) -> np.ndarray:
    """E[T] = sum_{t>=0} S(t) = (alpha+beta-1)/(alpha-1): expected periods paid by a new customer.

    E[1/theta] is finite only for alpha > 1; for alpha <= 1 the expected lifetime is
    infinite (the sum of S(t) ~ t^-alpha diverges) and ``inf`` is returned. The discounted
    version (:func:`discounted_expected_lifetime`) is finite for any discount rate > 0.
    """
    a, b = _params(alpha, beta)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(a > 1.0, (a + b - 1.0) / (a - 1.0), np.inf)
    return np.asarray(out, dtype=float)


def conditional_survival(alpha: ArrayLike, beta: ArrayLike, periods: ArrayLike,
                         t: ArrayLike) -> np.ndarray:
    """P(an active customer who has paid ``periods`` pays ``t`` more), i.e. P(T >= n+t | T >= n).

    = S(n + t - 1) / S(n - 1) with n = ``periods``: the posterior of theta given n - 1
    renewals is Beta(alpha, beta + n - 1) [FH07 eq. 9], so this is the survival function of a
    new customer with beta + n - 1 in place of beta. What a holdout comparison needs: a
    customer active at the end of calibration with n periods paid is still active after t
    more renewal decisions (having paid n + t) with this probability. 1 for t = 0.
    """
    a, b = _params(alpha, beta)
    n = _periods(periods)
    t = np.asarray(t, dtype=float)
    if np.any(t < 0):
        raise ValueError("t must be >= 0")
    b_n = b + (n - 1.0)
    return np.exp(np.minimum(special.betaln(a, b_n + t) - special.betaln(a, b_n), 0.0))


# --------------------------------------------------------------------------------------
# valuation
# --------------------------------------------------------------------------------------


def _log_derl_core(a: np.ndarray, b_n: np.ndarray, d: np.ndarray) -> np.ndarray:
    """ln[ b_n/(a+b_n) 2F1(1, b_n+1; a+b_n+1; 1/(1+d)) ], b_n = beta + renewals (FH10 eq. 6).

    1 - z = d/(1+d) is passed to the 2F1 exactly. At d = 0 (z = 1) the Gauss sum gives the
    undiscounted b_n/(a-1) for a > 1; for a <= 1 it diverges and +inf is returned. Where the
    general 2F1 gives up (b_n beyond ~1e5 with d below ~1e-3) :func:`_log_derl_large_b`
    takes over.
    """
    a, b_n, d = np.broadcast_arrays(a, b_n, d)
    z = 1.0 / (1.0 + d)
    zc = d / (1.0 + d)
    with np.errstate(divide="ignore", invalid="ignore"):
        lead = np.log(b_n) - np.log(a + b_n)
        out = lead + log_hyp2f1(1.0, b_n + 1.0, a + b_n + 1.0, z, zc=zc)
    out = np.where((d == 0) & (a <= 1.0), np.inf, out)
    failed = np.isnan(out) & (d > 0) & (b_n >= _LARGE_B) & (b_n >= _LARGE_B_RATIO * a)
    if failed.any():
        out = np.array(out, dtype=float)
        out[failed] = _log_derl_large_b(a[failed], b_n[failed], d[failed])
    return np.asarray(out, dtype=float)


#: b_n from which :func:`_log_derl_large_b` may stand in for the general 2F1 (its quadrature
#: needs psi's scale b_n/a to be large: relative error < 1e-12 for b_n >= 500 a)
_LARGE_B = 1e4
_LARGE_B_RATIO = 500.0
_LAGUERRE_NODES = 48


def _laguerre_rule(alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Gauss-Laguerre nodes and weights for the weight s^alpha e^-s / Gamma(alpha+1)
    (weights summing to 1), by Golub-Welsch: the eigen-decomposition of the Jacobi matrix of
    the monic Laguerre recurrence (diagonal 2k+alpha+1, off-diagonal sqrt(k(k+alpha)))."""
    k = np.arange(_LAGUERRE_NODES, dtype=float)
    diag = 2.0 * k + alpha + 1.0
    off = np.sqrt(k[1:] * (k[1:] + alpha))
    nodes, vectors = linalg.eigh_tridiagonal(diag, off)
    return nodes, vectors[0] ** 2


def _log_derl_large_b(a: np.ndarray, b_n: np.ndarray, d: np.ndarray) -> np.ndarray:
    """ln DERL for large b_n = B, from its integral over theta ~ Beta(a, B).

    DERL = (1+d) E[(1-theta)/(theta+d)]; with theta = 1 - e^(-s/B), c = B ln(1+d) and
    phi(x) = x/(e^x - 1) this is

        DERL = (1+d) B Gamma(a+B)/(Gamma(B) B^a) [ T1 + int w(s) (psi(s) - psi(-c))/(s+c) ds ]

    with w(s) = s^(a-1) e^-s / Gamma(a), psi(s) = (-B expm1(-s/B)/s)^(a-1) phi((s+c)/B)
    (slowly varying: its scale is B/a), psi(-c) = (d/ln(1+d))^(a-1) and the singular part in
    closed form, T1 = psi(-c) c^(a-1) U(a, a, c) = (B d)^(a-1) U(a, a, c) [DLMF 13.4.4]. The
    remaining smooth integral is a generalised Gauss-Laguerre sum; the gamma ratio comes from
    Stirling's series [DLMF 5.11.1], exact to rounding for B >= 1e4.
    """
    lam = np.log1p(d)
    c = b_n * lam
    log_t1 = (a - 1.0) * np.log(b_n * d) + log_hyperu(a, a, c)
    log_psi_c = (a - 1.0) * (np.log(d) - np.log(lam))
    smooth = np.empty(a.shape)
    for value in np.unique(a):
        sel = a == value
        s, w = _laguerre_rule(float(value) - 1.0)
        bb, cc = b_n[sel, None], c[sel, None]
        x = (s + cc) / bb
        log_psi = ((value - 1.0) * np.log(-bb * np.expm1(-s / bb) / s)
                   + np.log(x) - np.log(np.expm1(x)))
        diff = np.exp(log_psi) - np.exp(log_psi_c[sel, None])
        smooth[sel] = (diff / (s + cc)) @ w
    total = np.exp(log_t1) + smooth
    # ln Gamma(a+B) - ln Gamma(B) - a ln B by Stirling's series, without cancellation
    ab, bb = a + b_n, b_n
    ratio = ((ab - 0.5) * np.log1p(a / bb) - a
             + (1.0 / ab - 1.0 / bb) / 12.0 - (ab ** -3 - bb ** -3) / 360.0
             + (ab ** -5 - bb ** -5) / 1260.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log1p(d) + np.log(b_n) + ratio + np.log(total)


def discounted_expected_lifetime(alpha: ArrayLike, beta: ArrayLike,
                                 discount_rate: ArrayLike) -> np.ndarray:
    """DEL = sum_{t>=0} S(t)/(1+d)^t = 2F1(1, beta; alpha+beta; 1/(1+d)) [FH10 eq. 4].

    Discounted expected number of payments of a new customer at acquisition (the first
    payment, at t = 0, undiscounted); ``discount_rate`` d is per period. d = 0 gives the
    undiscounted :func:`expected_lifetime` ((alpha+beta-1)/(alpha-1), or ``inf`` when
    alpha <= 1). Computed as 1 + DERL(one period paid)/(1+d), so it shares the guarded 2F1.
    """
    a, b = _params(alpha, beta)
    d = _discount(discount_rate)
    log_derl = _log_derl_core(a, b, d)
    return np.asarray(1.0 + np.exp(log_derl - np.log1p(d)))


def discounted_expected_residual_lifetime(alpha: ArrayLike, beta: ArrayLike,
                                          periods: ArrayLike, churned: ArrayLike,
                                          discount_rate: ArrayLike) -> np.ndarray:
    """DERL of a customer who has paid ``periods`` = n + 1 periods (n renewals) [FH10 eq. 6].

    DERL = (beta+n)/(alpha+beta+n) 2F1(1, beta+n+1; alpha+beta+n+1; 1/(1+d))
         = sum_{k>=0} P(T >= n+2+k | T >= n+1) / (1+d)^k,

    the discounted expected number of *future* payments, valued at the customer's next
    renewal decision (that payment, if made, undiscounted); ``discount_rate`` d is per period.
    Churned customers get 0. Multiply by margin x revenue per period for the residual CLV.

    The 2F1 is the guarded log-space one (:func:`clvmodels.models._special.log_hyp2f1`),
    accurate for n in the thousands, extreme alpha / beta and d -> 0. At d = 0 the value is
    the undiscounted expected residual lifetime (beta+n)/(alpha-1) when alpha > 1 and
    ``inf`` when alpha <= 1 (the sum diverges).
    """
    a, b = _params(alpha, beta)
    n = _periods(periods) - 1.0
    c = _churned(churned)
    d = _discount(discount_rate)
    a, b, n, d, c = np.broadcast_arrays(a, b, n, d, c)
    log_value = _log_derl_renewals(a.ravel(), b.ravel(), n.ravel(), d.ravel())
    if log_value is None:
        log_value = _log_derl_core(a, b + n, d)
    value = np.exp(np.reshape(log_value, a.shape))
    return np.asarray(np.where(c, 0.0, value), dtype=float)


#: most cells (parameter sets x renewals) and renewals per set of the renewal-grid path
_GRID_CELLS = 5_000_000
_GRID_SPAN = 20_000


def _log_derl_renewals(a: np.ndarray, b: np.ndarray, n: np.ndarray, d: np.ndarray
                       ) -> np.ndarray | None:
    """ln DERL for many renewal counts n per parameter set (a, b, d), or None.

    With r_j = (b+j)/(a+b+j) and z = 1/(1+d), DERL(n) = sum_{k>=0} z^k prod_{j=n}^{n+k} r_j
    satisfies DERL(n) = r_n (1 + z DERL(n+1)), a recurrence that contracts going down in n.
    So per parameter set the 2F1 is evaluated once, at the largest n needed (N), and the
    smaller n follow from the closed sum

        DERL(n) = z^-n P(n-1)^-1 [ sum_{m=n}^{N-1} z^m P(m) + z^N P(N-1) DERL(N) ],
        P(m) = prod_{j<=m} r_j,

    in logs (cumulative sums of log1p(-a/(a+b+j)), a reverse log-add-exp accumulation):
    the valuation case (posterior draws x customers' renewal counts) at the cost of one 2F1
    per draw. None when the renewal counts span too much for the grid to pay off.
    """
    if a.size < 64:
        return None
    keys = np.stack([a, b, d], axis=1)
    sets, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    count = len(sets)
    renewals = n.astype(np.int64)
    lo = np.full(count, np.iinfo(np.int64).max)
    hi = np.full(count, -1)
    np.minimum.at(lo, inverse, renewals)
    np.maximum.at(hi, inverse, renewals)
    span = int((hi - lo).max()) + 1
    if span > _GRID_SPAN or count * span > _GRID_CELLS or count * 4 > a.size:
        return None
    sa, sb, sd = (sets[:, i, None] for i in range(3))
    top = lo + span - 1
    log_top = _log_derl_core(sets[:, 0], sets[:, 1] + top, sets[:, 2])
    j = lo[:, None] + np.arange(span)  # renewal counts lo .. top
    log_p = np.cumsum(np.log1p(-sa / (sa + sb + j)), axis=1)  # ln P(m) / P(lo-1)
    log_z = -np.log1p(sd)
    log_p_top = log_p[:, -2] if span > 1 else np.zeros(count)  # ln P(N-1)
    tail = top * log_z[:, 0] + log_p_top + log_top
    terms = np.concatenate([j[:, :-1] * log_z + log_p[:, :-1], tail[:, None]], axis=1)
    with np.errstate(invalid="ignore"):
        acc = np.logaddexp.accumulate(terms[:, ::-1], axis=1)[:, ::-1]
    log_p_before = np.concatenate([np.zeros((count, 1)), log_p[:, :-1]], axis=1)
    grid = acc - j * log_z - log_p_before
    grid = np.where(np.isinf(log_top)[:, None], log_top[:, None], grid)
    return grid[inverse, renewals - lo[inverse]]


def _finite_sum(a: np.ndarray, b0: np.ndarray, log_z: np.ndarray,
                horizon: np.ndarray) -> np.ndarray:
    """sum_{k=0}^{K-1} z^k prod_{j=0}^{k} (b0+j)/(a+b0+j), exactly, K = ``horizon`` (per element).

    Each term is built from the cumulative sum of log1p(-a/(a+b0+j)) (no cancellation), in
    chunks of rows so that rows x horizon stays bounded; one pass per chunk, no loop over k.
    """
    a, b0, log_z, horizon = np.broadcast_arrays(a, b0, log_z, horizon)
    shape = a.shape
    a, b0, log_z, horizon = (np.ravel(v) for v in (a, b0, log_z, horizon))
    out = np.zeros(a.size)
    k_max = int(horizon.max(initial=0))
    if k_max == 0:
        return out.reshape(shape)
    step = max(1, _CHUNK_ELEMENTS // k_max)
    k = np.arange(k_max, dtype=float)
    for start in range(0, a.size, step):
        sl = slice(start, start + step)
        aa, bb = a[sl, None], b0[sl, None]
        log_terms = np.cumsum(np.log1p(-aa / (aa + bb + k)), axis=1) + log_z[sl, None] * k
        log_terms = np.where(k < horizon[sl, None], log_terms, -np.inf)
        out[sl] = np.exp(special.logsumexp(log_terms, axis=1))
    return out.reshape(shape)


def discounted_residual_periods(alpha: ArrayLike, beta: ArrayLike, periods: ArrayLike,
                                churned: ArrayLike, discount_rate: ArrayLike,
                                horizon_periods: ArrayLike) -> np.ndarray:
    """DERL over a finite horizon: the next ``horizon_periods`` = K renewal decisions only.

    sum_{k=0}^{K-1} P(T >= n+2+k | T >= n+1) / (1+d)^k for a customer who has paid
    ``periods`` = n + 1 periods, valued like :func:`discounted_expected_residual_lifetime`
    (which is the limit K -> inf): the expected discounted number of payments in the next K
    periods. Churned customers get 0; K = 0 gives 0. Computed as an exact sum (vectorised over
    the horizon, chunked over rows), with no cancellation, for any d >= 0.
    """
    a, b = _params(alpha, beta)
    n = _periods(periods) - 1.0
    c = _churned(churned)
    d = _discount(discount_rate)
    k = _periods(horizon_periods, "horizon_periods", minimum=0)
    value = _finite_sum(a, b + n, -np.log1p(d), k)
    return np.asarray(np.where(c, 0.0, value), dtype=float)


def expected_periods_new(alpha: ArrayLike, beta: ArrayLike, t: ArrayLike,
                         discount_rate: ArrayLike = 0.0) -> np.ndarray:
    """Expected (discounted) number of payments of a new customer in their first t periods.

    sum_{k=0}^{t-1} S(k)/(1+d)^k = E[min(T, t)] for d = 0 (the initial payment included,
    undiscounted); the finite-horizon counterpart of :func:`discounted_expected_lifetime`.
    Exact sum, like :func:`discounted_residual_periods`.
    """
    a, b = _params(alpha, beta)
    t = _periods(t, "t", minimum=0)
    d = _discount(discount_rate)
    log_z = -np.log1p(d)
    # the first payment (k = 0, S(0) = 1) plus the payments after each of the renewals
    later = _finite_sum(a, b, log_z, np.maximum(t - 1.0, 0.0))
    return np.asarray(np.where(t > 0, 1.0 + np.exp(log_z) * later, 0.0), dtype=float)


# --------------------------------------------------------------------------------------
# simulation
# --------------------------------------------------------------------------------------


def simulate_sbg(n_customers: int, *, alpha: float, beta: float,
                 n_periods: int | Sequence[int] | np.ndarray,
                 random_seed: SeedLike = None) -> pd.DataFrame:
    """Draw customers from the sBG and observe them for ``n_periods`` periods.

    theta_i ~ Beta(alpha, beta); T_i ~ shifted Geometric(theta_i) on {1, 2, ...} (periods
    paid); ``alpha`` and ``beta`` are numbers or one value per customer (each customer's
    own, e.g. with covariates: links equation (1)). ``n_periods`` (a scalar or one value per
    customer, >= 1) is how many periods have *started* for the customer by the end of
    observation, i.e. the most periods they can have paid: customers with T < n_periods
    churned (``periods = T``); the others are active with ``periods = n_periods`` (the
    renewal at the end of their current period is not yet known).
    F&H's cohort observed for 7 years (survivors counted at the start of year 8) is
    ``n_periods = 8``.

    Returns a frame indexed by ``customer_id`` (0, 1, ...) with ``periods`` (int64) and
    ``churned`` (bool), the contract of :func:`clvmodels.contract.contract_summary`.
    """
    if int(n_customers) != n_customers or n_customers < 1:
        raise ValueError("n_customers must be a whole number >= 1")
    a, b = _params(alpha, beta)
    n_customers = int(n_customers)
    if any(v.ndim and v.shape != (n_customers,) for v in (a, b)):
        raise ValueError("alpha and beta must be scalars or one value per customer")
    horizon = _periods(n_periods, "n_periods")
    if horizon.ndim and horizon.shape != (n_customers,):
        raise ValueError("n_periods must be a scalar or have one value per customer")
    rng = np.random.default_rng(random_seed)
    theta = (rng.beta(float(a), float(b), size=n_customers) if a.ndim == b.ndim == 0
             else rng.beta(a, b, size=n_customers))
    # theta can underflow to 0 for tiny alpha: such a customer never leaves
    theta = np.maximum(theta, np.finfo(float).tiny)
    lifetime = rng.geometric(theta).astype(float)  # support 1, 2, ... (int64 may saturate)
    horizon = np.broadcast_to(horizon, (n_customers,))
    churned = lifetime < horizon
    periods = np.where(churned, lifetime, horizon).astype(np.int64)
    return pd.DataFrame({"periods": periods, "churned": churned},
                        index=pd.RangeIndex(n_customers, name="customer_id"))


def simulate_sbg_cohorts(cohort_sizes: Sequence[int], *, alpha: float, beta: float,
                         random_seed: SeedLike = None) -> pd.DataFrame:
    """Cohorts acquired in successive periods, all observed to the same date (F&H's multi-cohort
    setting, Fader & Hardie 2007 section 5).

    Cohort c = 0, 1, ..., C-1 (oldest first) was acquired at the start of period c and has seen
    C - c periods start by the end of observation (``n_periods`` of :func:`simulate_sbg`). The
    result has :func:`simulate_sbg`'s columns plus ``cohort`` (int).
    """
    sizes = np.asarray(cohort_sizes)
    if sizes.ndim != 1 or sizes.size == 0 or np.any(sizes < 1) or np.any(sizes != np.round(sizes)):
        raise ValueError("cohort_sizes must be a non-empty sequence of whole numbers >= 1")
    sizes = sizes.astype(np.int64)
    cohort = np.repeat(np.arange(sizes.size), sizes)
    out = simulate_sbg(int(sizes.sum()), alpha=alpha, beta=beta,
                       n_periods=sizes.size - cohort, random_seed=random_seed)
    out["cohort"] = cohort
    return out


# --------------------------------------------------------------------------------------
# the model class
# --------------------------------------------------------------------------------------


class ShiftedBetaGeo(ContractualModel, MLEModel):
    """Shifted-beta-geometric model of contract renewals (Fader & Hardie 2007, 2010), fitted
    by maximum likelihood.

    Fitted on one row per customer with ``periods`` (periods paid: the first plus renewals)
    and ``churned`` (False: still active, right-censored) — e.g.
    :func:`clvmodels.contract_summary` output — or on cohort counts with ``weights=``. The
    parameters ``alpha, beta`` are those of the Beta distribution of the per-period churn
    probability [FH07 eq. 3]; the period length is the time unit (``contract_summary``'s
    ``period``), which converts annual discount rates to rates per period.

    Predictions (:class:`~clvmodels.models.contractual.ContractualModel`): ``survival``,
    ``retention_rate``, ``churn_probability``, ``expected_lifetime``,
    ``discounted_expected_lifetime`` (DEL, FH10 eq. 4), ``discounted_expected_residual_
    lifetime`` (DERL, FH10 eq. 6), ``conditional_survival`` and ``expected_renewals``.

    Examples
    --------
    >>> model = ShiftedBetaGeo().fit(contracts)                          # doctest: +SKIP
    >>> model.discounted_expected_residual_lifetime(contracts, 0.10)     # doctest: +SKIP
    """

    name = "sbg"
    label = "sBG"
    data_kind = "contractual"
    param_names = ("alpha", "beta")
    #: alpha_i = alpha exp(g_d'z): the odds of the mean churn probability are multiplied by
    #: exp(g_d'z) (a positive coefficient raises churn)
    covariate_links = declare_links(dropout=(("alpha", 1.0),))
    citation = ("Fader & Hardie (2007), How to project customer retention, J. Interactive "
                "Marketing 21(1); Fader & Hardie (2010), Customer-base valuation in a "
                "contractual setting, Marketing Science 29(1)")
    simulator = staticmethod(simulate_sbg)

    def _loglik(self, p: dict[str, Any], d: Any, m: Any = NP) -> Any:
        return log_likelihood(p["alpha"], p["beta"], d.periods, d.churned, m=m)

    def _loglik_grad(self, p: dict[str, Any], d: Any) -> np.ndarray:
        return log_likelihood_grad(p["alpha"], p["beta"], d.periods, d.churned)

    def _initial_params(self, d: Any) -> np.ndarray:
        return np.array([1.0, 1.0])

    # ---- ContractualModel hooks: this module's functions --------------------------------
    def _survival(self, p: dict[str, Any], t: Any) -> np.ndarray:
        return survival(p["alpha"], p["beta"], t)

    def _retention(self, p: dict[str, Any], t: Any) -> np.ndarray:
        return retention_rate(p["alpha"], p["beta"], t)

    def _churn(self, p: dict[str, Any], t: Any) -> np.ndarray:
        return churn_probability(p["alpha"], p["beta"], t)

    def _expected_lifetime(self, p: dict[str, Any]) -> np.ndarray:
        return expected_lifetime(p["alpha"], p["beta"])

    def _del(self, p: dict[str, Any], d: Any) -> np.ndarray:
        return discounted_expected_lifetime(p["alpha"], p["beta"], d)

    def _derl(self, p: dict[str, Any], periods: Any, churned: Any, d: Any) -> np.ndarray:
        return discounted_expected_residual_lifetime(p["alpha"], p["beta"], periods, churned, d)

    def _residual(self, p: dict[str, Any], periods: Any, churned: Any, d: Any,
                  horizon: Any) -> np.ndarray:
        return discounted_residual_periods(p["alpha"], p["beta"], periods, churned, d, horizon)

    def _conditional_survival(self, p: dict[str, Any], periods: Any, t: Any) -> np.ndarray:
        return conditional_survival(p["alpha"], p["beta"], periods, t)


class BayesianShiftedBetaGeo(BayesianContractualModel):
    """sBG fitted with PyMC (NUTS), optionally hierarchical across segments (plans,
    acquisition channels, cohorts).

    The likelihood [FH07 eqs. 5-6] and every prediction are this module's functions through
    the hooks :class:`ShiftedBetaGeo` uses, over posterior draws: ``survival``,
    ``retention_rate`` and ``churn_probability`` with intervals, DEL and each customer's DERL
    with intervals; sampling, summaries, LOO and netCDF persistence are shared.

    Default priors: ``alpha, beta ~ LogNormal(0, 2)``. Hierarchical (``segment_col``): per
    segment, the mean churn probability ``logit(alpha / (alpha + beta))`` and the
    concentration ``log(alpha + beta)``, each ``~ Normal(mu, sigma)``; hyperpriors
    ``mu_logit_churn ~ N(-1, 1.5)``, ``mu_log_kappa ~ N(1, 1.5)``, ``sigma ~ HalfNormal(1)``.

    Covariates (``dropout_covariates``; with or without segments): the MLE twin's link,
    ``alpha_i = alpha exp(g_d'z_i)`` (the odds of the mean churn probability times
    exp(g_d'z_i)), coefficients ``Normal(0, 1)`` by default
    (:mod:`clvmodels.models.bayes_covariates`).
    """

    name = "bayes-sbg"
    label = "Bayesian sBG"
    param_names = ("alpha", "beta")
    latents = ("logit_churn", "log_kappa")
    _mle_class = ShiftedBetaGeo
    factored_data = False

    _loglik = ShiftedBetaGeo._loglik
    _survival = ShiftedBetaGeo._survival
    _retention = ShiftedBetaGeo._retention
    _churn = ShiftedBetaGeo._churn
    _expected_lifetime = ShiftedBetaGeo._expected_lifetime
    _del = ShiftedBetaGeo._del
    _derl = ShiftedBetaGeo._derl
    _residual = ShiftedBetaGeo._residual
    _conditional_survival = ShiftedBetaGeo._conditional_survival

    def _default_priors(self, rows: Any) -> dict[str, PriorSpec]:
        return {"alpha": lognormal(0.0, 2.0), "beta": lognormal(0.0, 2.0)}

    def _default_mu_priors(self, rows: Any) -> dict[str, PriorSpec]:
        return {"logit_churn": normal(-1.0, 1.5), "log_kappa": normal(1.0, 1.5)}

    @staticmethod
    def _natural_from_latent(u: dict[str, Any], xp: Any) -> dict[str, Any]:
        """alpha = phi kappa, beta = (1 - phi) kappa (phi: mean churn probability)."""
        phi, kappa = xp.sigmoid(u["logit_churn"]), xp.exp(u["log_kappa"])
        return {"alpha": phi * kappa, "beta": (1.0 - phi) * kappa}

    @staticmethod
    def _latent_from_natural(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        a, b = (np.asarray(p[k], dtype=float) for k in ("alpha", "beta"))
        return {"logit_churn": np.log(a) - np.log(b), "log_kappa": np.log(a + b)}
