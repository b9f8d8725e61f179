"""Pareto/NBD: Schmittlein, Morrison & Colombo (1987), "Counting your customers: who are they
and what will they do next?", Management Science 33(1); formulas as in Fader & Hardie (2005),
"A note on deriving the Pareto/NBD model and related expressions" (note 009).

While alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha); the lifetime is
exponential with death rate mu ~ Gamma(s, beta), independent of lambda.

The functions here broadcast over parameter arrays (a point estimate, or a stack of
posterior draws shaped ``(draws, 1)`` against customers ``(n,)``).

How the likelihood is computed
------------------------------
Note 009 (eqs. 22-23) writes the likelihood as

    L = G(r+x) alpha^r beta^s / G(r) * { (alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0 },

where A0 is a *difference* of two 2F1 terms, i.e. ``(r+s+x) I`` with
I = int_{t_x}^T (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau, the density of dying between the
last purchase and T. The difference cancels catastrophically when t_x is close to T. Writing
the first term as the integral of minus its derivative over (T, inf) and splitting the death
integral at T gives an identity with two *positive* terms and nothing to cancel:

    bracket = (r+x) K(r+x+1, s; T) + s K(r+x, s+1; t_x),
    K(p, q; t) = int_t^inf (alpha+tau)^-p (beta+tau)^-q dtau.              (*)

(Per customer, e^-(lambda+mu)T = int_T^inf (lambda+mu) e^-(lambda+mu)tau dtau: the first
term is its lambda part, the second its mu part joined to the death density on (t_x, T).)
With M = max(alpha, beta), m = min(alpha, beta), e the exponent on M's factor, g the one on
m's, c = p + q and z = (M - m)/(M + t), expanding
(m+tau)^-g = (M+tau)^-g (1 - (M-m)/(M+tau))^-g in powers of (M-m)/(M+tau) and integrating
term by term gives note 009's (M+t)^(1-c) 2F1(c-1, g; c; z)/(c-1); Euler's transformation
(DLMF 15.8.1) turns it into

    K = (M+t)^-e (m+t)^(1-g) / (c-1) * 2F1(1, e; c; z),   2F1(1, e; c; z) = sum_k (e)_k/(c)_k z^k,

a series whose terms are positive and each at most z times the previous one, whatever the
size of x. That makes it fast (at most 18 terms at z = 0.1, about CDNOW's value) and,
differentiated term by term, gives the exact gradient with respect to (r, alpha, s, beta) --
including through the 2F1 parameters.
For z > 0.9 (alpha and beta far apart and t small) K is split at the point where z = 0.9:
the far part is the same series, the near part the incomplete-beta-type integral
int y^-g (1-y)^(c-2) dy (y = (m+tau)/(M+tau)) computed by a binomial series on its low end
(integrated exactly, term by term) and Gauss-Legendre panels placed at explicit levels of
the integrand above it; both are again differentiated exactly under the integral sign.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import special

from clvmodels.models._math import NP
from clvmodels.models._special import (
    _GL_W,
    _GL_X,
    _TOL,
    _flat,
    log_hyperu,
    log_tail_integral,
    log_tail_integral_m,
)
from clvmodels.models.links import declare_links
from clvmodels.models.mle import MLEModel
from clvmodels.models.transaction import TransactionModel
from clvmodels.rfm import TIME_UNITS
from clvmodels.rows import UniqueRows
from clvmodels.simulate import simulate_paretonbd

__all__ = [
    "ParetoNBD",
    "annual_to_continuous_rate",
    "expected_discounted_transactions",
    "expected_purchases",
    "expected_purchases_new_customer",
    "log_likelihood",
    "log_likelihood_grad",
    "log_tail_integral",
    "probability_alive",
    "purchase_count_probability",
]

# --------------------------------------------------------------------------------------
# likelihood
# --------------------------------------------------------------------------------------


def _log_tail(p: Any, q: Any, alpha: Any, beta: Any, t: Any, *, grad: bool = False) -> Any:
    """:func:`log_tail_integral` (same arguments, same results but for rounding), by the
    compiled kernel :func:`clvmodels.models._pnbd_kernels.tail_integral` where its series
    converges fast (z = (M - m)/(M + t) <= 0.9) and by the reference for the other elements
    (and for everything where numba is missing).

    The kernel builds the series coefficients (e)_k/(c)_k once per run of elements with the
    same (e, c) — the likelihood's distinct (x, t) pairs come sorted by x — so each element
    costs a few multiply-adds per term, and it evaluates value and gradient in one pass
    without the reference's temporaries.
    """
    try:
        from clvmodels.models._pnbd_kernels import tail_integral
    except ImportError:  # pragma: no cover - numba comes with PyMC's pytensor
        return log_tail_integral(p, q, alpha, beta, t, grad=grad)
    args = [np.asarray(v, dtype=np.float64) for v in (p, q, alpha, beta, t)]
    shape = np.broadcast_shapes(*(v.shape for v in args))
    size = math.prod(shape)
    flat = [np.ascontiguousarray(v).reshape(-1) if v.size == 1 or v.shape == shape
            else np.ascontiguousarray(np.broadcast_to(v, shape)).reshape(-1) for v in args]
    out = np.empty(size)
    gout = np.empty((4, size))
    ok = np.empty(size, dtype=np.bool_)
    tail_integral(*flat, grad, out, gout, ok)
    if not ok.all():
        i = np.nonzero(~ok)[0]
        sub = [v if v.size == 1 else v[i] for v in flat]
        if grad:
            out[i], gout[:, i] = log_tail_integral(*sub, grad=True)
        else:
            out[i] = log_tail_integral(*sub)
    if not grad:
        return out.reshape(shape)
    return out.reshape(shape), gout.reshape((4, *shape))


def _log_tail_hess(p: Any, q: Any, alpha: Any, beta: Any, t: Any
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log K(p, q; t), its gradient (4, n) and Hessian (4, 4, n) w.r.t. (p, q, alpha, beta);
    the arguments are 1-D of one length n or scalars (the fit's distinct pairs at scalar
    parameters, or rows with their own parameters).

    Exact (the compiled :func:`clvmodels.models._pnbd_kernels.tail_integral_hess`) where
    z <= 0.9; elsewhere — alpha and beta an order of magnitude apart and t small, where the
    reference integrates by quadrature — value and gradient by the reference and the
    Hessian by central differences of its exact gradient (relative step 1e-5).
    """
    from clvmodels.models._pnbd_kernels import tail_integral_hess

    args = [np.ascontiguousarray(v, dtype=np.float64).reshape(-1)
            for v in (p, q, alpha, beta, t)]
    n = max(v.size for v in args)
    out, gout, hout = np.empty(n), np.empty((4, n)), np.empty((4, 4, n))
    ok = np.empty(n, dtype=np.bool_)
    tail_integral_hess(*args, out, gout, hout, ok)
    if not ok.all():
        i = np.nonzero(~ok)[0]
        sub = [np.broadcast_to(v, (n,))[i] for v in args]
        out[i], gout[:, i] = log_tail_integral(*sub, grad=True)
        for j in range(4):
            h = 1e-5 * np.abs(sub[j])
            up, dn = list(sub), list(sub)
            up[j] = sub[j] + h
            dn[j] = sub[j] - h
            hout[:, j, i] = ((log_tail_integral(*up, grad=True)[1]
                              - log_tail_integral(*dn, grad=True)[1]) / (2.0 * h))
        hout[:, :, i] = 0.5 * (hout[:, :, i] + hout[:, :, i].transpose(1, 0, 2))
    return out, gout, hout


def _log_bracket(r: Any, alpha: Any, s: Any, beta: Any, x: Any, tx: Any, T: Any,
                 m: Any = NP) -> Any:
    """log of note 009's bracket, as (r+x) K(r+x+1, s; T) + s K(r+x, s+1; t_x) (identity (*))."""
    if getattr(m, "name", None) == "numpy":
        k1 = _log_tail(r + x + 1.0, s, alpha, beta, T)
        k2 = _log_tail(r + x, s + 1.0, alpha, beta, tx)
    else:
        k1 = log_tail_integral_m(r + x + 1.0, s, alpha, beta, T, m)
        k2 = log_tail_integral_m(r + x, s + 1.0, alpha, beta, tx, m)
    return m.logaddexp(m.log(r + x) + k1, m.log(s) + k2)


def log_likelihood(r: Any, alpha: Any, s: Any, beta: Any, x: Any, tx: Any, T: Any,
                   m: Any = NP) -> Any:
    """Per-customer Pareto/NBD log-likelihood (note 009, eqs. 22-23).

        LL = lnG(r+x) - lnG(r) + r ln alpha + s ln beta
             + ln[(r+x) K(r+x+1, s; T) + s K(r+x, s+1; t_x)]

    where the bracket equals note 009's (alpha+T)^-(r+x) (beta+T)^-s + (s/(r+s+x)) A0 but
    has two positive terms, so t_x close to (or equal to) T loses nothing (see the module
    docstring); K is :func:`log_tail_integral`. Written against the math namespace ``m``:
    numpy uses the robust series, pytensor (PyMC) the same closed form through
    ``m.hyp2f1``.
    """
    head = m.gammaln(r + x) - m.gammaln(r) + r * m.log(alpha) + s * m.log(beta)
    return head + _log_bracket(r, alpha, s, beta, x, tx, T, m)


class _XTerms(NamedTuple):
    """Terms of the likelihood and its gradient that depend on a customer only through x."""

    lgamma: np.ndarray  # lnG(r+x) - lnG(r)
    digamma: np.ndarray  # psi(r+x) - psi(r)
    log_rx: np.ndarray  # ln(r+x)
    inv_rx: np.ndarray  # 1/(r+x)

    @classmethod
    def of(cls, r: Any, x: Any) -> _XTerms:
        rx = r + np.asarray(x, dtype=float)
        return cls(special.gammaln(rx) - special.gammaln(r),
                   special.digamma(rx) - special.digamma(r), np.log(rx), 1.0 / rx)

    def take(self, index: np.ndarray) -> _XTerms:
        return _XTerms(*(v[index] for v in self))


def _loglik_and_grad(r: Any, alpha: Any, s: Any, beta: Any, xt: _XTerms,
                     k1: tuple[np.ndarray, np.ndarray], k2: tuple[np.ndarray, np.ndarray]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Combine the two tail integrals (values, gradients) into LL and dLL/d(r, alpha, s, beta).

    With w1, w2 the shares of the bracket's two terms: dLL/dr = psi(r+x) - psi(r) + ln alpha
    + w1 (1/(r+x) + dlnK1/dp) + w2 dlnK2/dp, and likewise for alpha, s and beta.
    """
    (l1, g1), (l2, g2) = k1, k2
    a1 = xt.log_rx + l1
    a2 = np.log(s) + l2
    lb = np.logaddexp(a1, a2)
    w1 = np.exp(a1 - lb)
    w2 = 1.0 - w1
    ll = xt.lgamma + r * np.log(alpha) + s * np.log(beta) + lb
    shape = np.broadcast_shapes(np.shape(ll), np.shape(r), np.shape(alpha), np.shape(s),
                                np.shape(beta))
    grad = np.empty((4, *shape))
    grad[0] = xt.digamma + np.log(alpha) + w1 * (xt.inv_rx + g1[0]) + w2 * g2[0]
    grad[1] = r / alpha + w1 * g1[2] + w2 * g2[2]
    grad[2] = np.log(beta) + w1 * g1[1] + w2 * (1.0 / s + g2[1])
    grad[3] = s / beta + w1 * g1[3] + w2 * g2[3]
    return np.broadcast_to(ll, shape), grad


def _weighted_totals(key: tuple[float, float, float, float], pr: SimpleNamespace,
                     w: np.ndarray) -> tuple[float, np.ndarray]:
    """sum_i w_i LL_i and its gradient w.r.t. (r, alpha, s, beta) at scalar parameters, the
    rows' distinct x, (x, T) and (x, t_x) given by ``pr`` (:meth:`ParetoNBD._prepare`).

    The same sums as :func:`_loglik_and_grad` weighted over the rows, gathered differently:
    the x-only terms are weighted by the summed weight per x, and the tail integrals' log
    gradients by the bracket shares summed per distinct pair (compiled
    :func:`clvmodels.models._pnbd_kernels.combine_rows`), so no per-row arrays are built.
    numpy's per-row path where numba is missing.
    """
    r, alpha, s, beta = key
    l1, g1 = _log_tail(r + pr.x1 + 1.0, s, alpha, beta, pr.t1, grad=True)
    l2, g2 = _log_tail(r + pr.x2, s + 1.0, alpha, beta, pr.t2, grad=True)
    head = _XTerms.of(r, pr.ux)
    try:
        from clvmodels.models._pnbd_kernels import combine_rows
    except ImportError:  # pragma: no cover - numba comes with PyMC's pytensor
        ll, grad = _loglik_and_grad(r, alpha, s, beta, head.take(pr.inv_x),
                                    (l1[pr.inv1], g1[:, pr.inv1]), (l2[pr.inv2], g2[:, pr.inv2]))
        return float(np.einsum("i,i->", ll, w)), np.einsum("ki,i->k", grad, w)
    acc1, acc2, accx = np.empty(len(l1)), np.empty(len(l2)), np.empty(len(pr.ux))
    lb = combine_rows(l1, l2, pr.inv1, pr.inv2, pr.inv_x, head.log_rx, math.log(s),
                      np.ascontiguousarray(w, dtype=float), acc1, acc2, accx)
    wx = pr.wx
    total_w = float(wx.sum())
    la, lbeta = math.log(alpha), math.log(beta)
    ll = float(wx @ head.lgamma) + total_w * (r * la + s * lbeta) + lb
    # einsum rather than @ for the vectors: no BLAS call (its threads only add overhead)
    k1 = np.einsum("kj,j->k", g1, acc1)
    k2 = np.einsum("kj,j->k", g2, acc2)
    grad = np.array([
        float(wx @ head.digamma) + total_w * la + float(accx @ head.inv_rx) + k1[0] + k2[0],
        total_w * r / alpha + k1[2] + k2[2],
        total_w * lbeta + k1[1] + float(acc2.sum()) / s + k2[1],
        total_w * s / beta + k1[3] + k2[3]])
    return ll, grad


#: position in (r, alpha, s, beta) of each of log K's (p, q, alpha, beta)
_THETA_OF_PQAB = [0, 2, 1, 3]


def _weighted_totals_hess(key: tuple[float, float, float, float], pr: SimpleNamespace,
                          w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """:func:`_weighted_totals` with the exact Hessian of sum_i w_i LL_i w.r.t. (r, alpha,
    s, beta) (note 009, eqs. 22-23, in the two-term form of the module docstring).

    Per row, LL = lnG(r+x) - lnG(r) + r ln alpha + s ln beta + log(e^a1 + e^a2) with
    a1 = ln(r+x) + log K1, a2 = ln s + log K2, so its Hessian is the head's
    (trigamma(r+x) - trigamma(r), 1/alpha, -r/alpha^2, 1/beta, -s/beta^2) plus
    w1 H(a1) + w2 H(a2) + w1 w2 d d', d = grad a1 - grad a2, w1, w2 the bracket's shares.
    H(a1) is the Hessian of log K1 (:func:`_log_tail_hess`) less 1/(r+x)^2 in (r, r) and
    H(a2) that of log K2 less 1/s^2 in (s, s); the first two parts are summed over the
    distinct pairs with the shares accumulated per pair, the outer products over the rows
    (compiled :func:`clvmodels.models._pnbd_kernels.combine_rows_hess`).
    """
    from clvmodels.models._pnbd_kernels import combine_rows_hess

    r, alpha, s, beta = key
    l1, g1, h1 = _log_tail_hess(r + pr.x1 + 1.0, s, alpha, beta, pr.t1)
    l2, g2, h2 = _log_tail_hess(r + pr.x2, s + 1.0, alpha, beta, pr.t2)
    head = _XTerms.of(r, pr.ux)
    acc1, acc2, accx = np.empty(len(l1)), np.empty(len(l2)), np.empty(len(pr.ux))
    cross = np.empty((4, 4))
    lb = combine_rows_hess(l1, l2, g1, g2, pr.inv1, pr.inv2, pr.inv_x, head.log_rx,
                           head.inv_rx, math.log(s), 1.0 / s,
                           np.ascontiguousarray(w, dtype=float), acc1, acc2, accx, cross)
    wx = pr.wx
    total_w = float(wx.sum())
    la, lbeta = math.log(alpha), math.log(beta)
    ll = float(wx @ head.lgamma) + total_w * (r * la + s * lbeta) + lb
    k1 = np.einsum("kj,j->k", g1, acc1)
    k2 = np.einsum("kj,j->k", g2, acc2)
    sum2 = float(acc2.sum())
    grad = np.array([
        float(wx @ head.digamma) + total_w * la + float(accx @ head.inv_rx) + k1[0] + k2[0],
        total_w * r / alpha + k1[2] + k2[2],
        total_w * lbeta + k1[1] + sum2 / s + k2[1],
        total_w * s / beta + k1[3] + k2[3]])
    hk = np.einsum("uvj,j->uv", h1, acc1) + np.einsum("uvj,j->uv", h2, acc2)
    hess = np.empty((4, 4))
    idx = _THETA_OF_PQAB
    hess[np.ix_(idx, idx)] = hk
    hess += cross
    hess[0, 0] += (float(wx @ (special.polygamma(1, r + pr.ux) - special.polygamma(1, r)))
                   - float(accx @ head.inv_rx**2))
    hess[2, 2] -= sum2 / s**2
    hess[0, 1] += total_w / alpha
    hess[1, 0] += total_w / alpha
    hess[1, 1] -= total_w * r / alpha**2
    hess[2, 3] += total_w / beta
    hess[3, 2] += total_w / beta
    hess[3, 3] -= total_w * s / beta**2
    return ll, grad, hess


def _rows_value_grad_hess(r: Any, alpha: Any, s: Any, beta: Any, x: np.ndarray,
                          tx: np.ndarray, T: np.ndarray, *, hess: bool
                          ) -> tuple[np.ndarray, ...]:
    """Per-row LL, gradient (4, n) and, with ``hess``, Hessian (4, 4, n) w.r.t. (r, alpha,
    s, beta), the parameters scalars or one per row (1-D): the covariate fit's row mode.

    Value and gradient as :func:`_loglik_and_grad` (the tail integrals once, not once for
    the value and again for the gradient); the Hessian is that of
    :func:`_weighted_totals_hess` row by row: the head's, plus w1 H(a1) + w2 H(a2)
    + w1 w2 d d' (note 009, eqs. 22-23, in the two-term form).
    """
    r, alpha, s, beta = (np.asarray(v, dtype=float) for v in (r, alpha, s, beta))
    x = np.asarray(x, dtype=float)
    xt = _XTerms.of(r, x)
    if not hess:
        k1 = _log_tail(r + x + 1.0, s, alpha, beta, T, grad=True)
        k2 = _log_tail(r + x, s + 1.0, alpha, beta, tx, grad=True)
        return _loglik_and_grad(r, alpha, s, beta, xt, k1, k2)
    l1, g1, h1 = _log_tail_hess(r + x + 1.0, s, alpha, beta, T)
    l2, g2, h2 = _log_tail_hess(r + x, s + 1.0, alpha, beta, tx)
    ll, grad = _loglik_and_grad(r, alpha, s, beta, xt, (l1, g1), (l2, g2))
    a1 = xt.log_rx + l1
    a2 = np.log(s) + l2
    lb = np.logaddexp(a1, a2)
    w1, w2 = np.exp(a1 - lb), np.exp(a2 - lb)
    idx = _THETA_OF_PQAB
    ga1, ga2 = g1[idx], g2[idx]  # (p, q, alpha, beta) -> (r, alpha, s, beta)
    ga1[0] += xt.inv_rx
    ga2[2] += 1.0 / s
    dv = ga1 - ga2
    out = (w1 * h1[np.ix_(idx, idx)] + w2 * h2[np.ix_(idx, idx)]
           + (w1 * w2) * (dv[:, None, :] * dv[None, :, :]))  # symmetric to the bit
    out[0, 0] += (special.polygamma(1, r + x) - special.polygamma(1, r)
                  - w1 * xt.inv_rx**2)
    out[2, 2] -= w2 / s**2
    out[0, 1] += 1.0 / alpha
    out[1, 0] += 1.0 / alpha
    out[1, 1] -= r / alpha**2
    out[2, 3] += 1.0 / beta
    out[3, 2] += 1.0 / beta
    out[3, 3] -= s / beta**2
    return ll, grad, out


def log_likelihood_grad(r: Any, alpha: Any, s: Any, beta: Any, x: Any, tx: Any, T: Any
                        ) -> np.ndarray:
    """Exact gradient of :func:`log_likelihood` w.r.t. (r, alpha, s, beta): shape (4, ...).

    The derivatives of the two tail integrals come from :func:`log_tail_integral` (term by
    term through the 2F1 parameters); d/dr and d/ds of the head are digamma and log terms.
    """
    r, alpha, s, beta, x, tx, T = (np.asarray(v, dtype=float)
                                   for v in (r, alpha, s, beta, x, tx, T))
    k1 = _log_tail(r + x + 1.0, s, alpha, beta, T, grad=True)
    k2 = _log_tail(r + x, s + 1.0, alpha, beta, tx, grad=True)
    return _loglik_and_grad(r, alpha, s, beta, _XTerms.of(r, x), k1, k2)[1]


# --------------------------------------------------------------------------------------
# predictions
# --------------------------------------------------------------------------------------


def _log_probability_alive(r: Any, alpha: Any, s: Any, beta: Any, x: Any, tx: Any, T: Any
                           ) -> np.ndarray:
    x, T = np.asarray(x, dtype=float), np.asarray(T, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (-(r + x) * np.log(alpha + T) - s * np.log(beta + T)
               - _log_bracket(r, alpha, s, beta, x, tx, T))
    return np.minimum(out, 0.0)


def probability_alive(r: Any, alpha: Any, s: Any, beta: Any, x: Any, tx: Any, T: Any
                      ) -> np.ndarray:
    """P(alive | x, t_x, T) (note 009, section 5):

        P = (alpha+T)^-(r+x) (beta+T)^-s / bracket
          = 1 / (1 + (s/(r+s+x)) (alpha+T)^(r+x) (beta+T)^s A0),

    with the bracket of :func:`log_likelihood` (two positive terms), in log space.
    """
    return np.exp(_log_probability_alive(r, alpha, s, beta, x, tx, T))


def _expected_lifetime_factor(s: Any, b: Any, t: Any) -> np.ndarray:
    """b [1 - (b/(b+t))^(s-1)] / (s-1) = b L exprel(-(s-1) L), L = ln(1 + t/b).

    The factor shared by E[X(t)] and E[Y(t)|...]; the exprel form is exact at s = 1 (where
    it is b ln(1 + t/b)) and smooth through it. t = inf gives b/(s-1) for s > 1, else inf.
    """
    s, b, t = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (s, b, t)))
    fin = np.isfinite(t)
    tt = np.where(fin, t, 0.0)
    span = np.log1p(tt / b)
    with np.errstate(over="ignore"):
        out = b * span * special.exprel(-(s - 1.0) * span)
    with np.errstate(divide="ignore"):
        limit = np.where(s > 1, b / np.where(s > 1, s - 1.0, 1.0), np.inf)
    return np.where(fin, out, limit)


def expected_purchases_new_customer(r: Any, alpha: Any, s: Any, beta: Any, t: Any
                                    ) -> np.ndarray:
    """E[X(t)] = r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)] (note 009, section 4).

    Evaluated as (r/alpha) beta L exprel(-(s-1) L), L = ln(1 + t/beta), so s = 1 (the limit
    (r beta/alpha) ln(1 + t/beta)) and s near 1 are exact.
    """
    return np.asarray(r / np.asarray(alpha, dtype=float)
                      * _expected_lifetime_factor(s, beta, t))


def expected_purchases(r: Any, alpha: Any, s: Any, beta: Any, x: Any, tx: Any, T: Any, t: Any
                       ) -> np.ndarray:
    """E[Y(t) | x, t_x, T] (note 009, section 6):

        (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)] P(alive),

    i.e. a new customer's E[X(t)] with updated parameters (r+x, alpha+T, s, beta+T), times
    P(alive); the s -> 1 limit is handled as in :func:`expected_purchases_new_customer`.
    """
    x = np.asarray(x, dtype=float)
    T = np.asarray(T, dtype=float)
    rate = (r + x) / (alpha + T)
    return rate * _expected_lifetime_factor(s, beta + T, t) * probability_alive(
        r, alpha, s, beta, x, tx, T)


def expected_discounted_transactions(r: Any, alpha: Any, s: Any, beta: Any, x: Any, tx: Any,
                                     T: Any, delta: Any) -> np.ndarray:
    """DERT with a continuous discount rate ``delta`` per time unit (Fader, Hardie & Lee 2005,
    "RFM and CLV: using iso-value curves", JMR 42(4), eq. 2):

        DERT = alpha^r beta^s delta^(s-1) G(r+x+1) U(s, s; delta (beta+T))
               / (G(r) (alpha+T)^(r+x+1) L(r, alpha, s, beta | x, t_x, T)).

    With the likelihood's head cancelled this is
    (r+x) delta^(s-1) U(s, s; delta(beta+T)) / ((alpha+T)^(r+x+1) bracket), computed in log
    space with ``log_hyperu`` (Tricomi U). The paper's 15% a year in weeks is
    delta = ln(1.15)/52; :func:`annual_to_continuous_rate` converts an annual rate.
    """
    x = np.asarray(x, dtype=float)
    T = np.asarray(T, dtype=float)
    delta = np.asarray(delta, dtype=float)
    if np.any(delta <= 0):
        raise ValueError("delta (the continuous discount rate) must be positive")
    log_u = log_hyperu(s, s, delta * (beta + T))
    out = (np.log(r + x) + (s - 1.0) * np.log(delta) + log_u
           - (r + x + 1.0) * np.log(alpha + T) - _log_bracket(r, alpha, s, beta, x, tx, T))
    return np.exp(out)


def _log_death_integral_quadrature(r: np.ndarray, alpha: np.ndarray, s: np.ndarray,
                                   beta: np.ndarray, n: np.ndarray, t: np.ndarray
                                   ) -> np.ndarray:
    """log int_0^t u^n (alpha+u)^-(r+n) (beta+u)^-(s+1) du by Gauss-Legendre in ln u.

    With v = ln u the log integrand l(v) = (n+1) v - (r+n) ln(alpha+e^v) - (s+1) ln(beta+e^v)
    is concave (each log term is convex in v), with slope n+1 at -inf and -(r+s) at +inf.
    Its mode v* is found by bisection on l'(v) = 0 (clipped to ln t); panel edges are the
    points where l has fallen by e^-{0.25, 1, 2.5, 5, 9, 15, 23, 33, 45} on either side
    (bisection on each monotone side; the edges need only be roughly there), and each panel
    gets 16 Gauss-Legendre nodes. The fall beyond e^-45 is dropped.
    """
    col = [v[:, None] for v in (r, alpha, s, beta, n)]
    rc, ac, sc_, bc, nc = col
    lt = np.log(t)[:, None]

    def ell(v: np.ndarray) -> np.ndarray:
        return ((nc + 1.0) * v - (rc + nc) * np.logaddexp(np.log(ac), v)
                - (sc_ + 1.0) * np.logaddexp(np.log(bc), v))

    def slope(v: np.ndarray) -> np.ndarray:
        return ((nc + 1.0) - (rc + nc) * special.expit(v - np.log(ac))
                - (sc_ + 1.0) * special.expit(v - np.log(bc)))

    def bisect(f: Any, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        # f(lo) > 0 >= f(hi); panel edges need not be exact, so 30 halvings are plenty
        for _ in range(30):
            mid = 0.5 * (lo + hi)
            pos = f(mid) > 0
            lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
        return 0.5 * (lo + hi)

    centre = np.log(np.minimum(ac, bc))
    span = 60.0 + np.abs(np.log(ac) - np.log(bc))
    mode = bisect(slope, centre - span - 60.0 / (nc + 1.0), centre + span + 60.0)
    mode = np.minimum(mode, lt)
    top = ell(mode)
    levels = np.array([0.25, 1.0, 2.5, 5.0, 9.0, 15.0, 23.0, 33.0, 45.0])[None, :]
    # left side: l increases up to the mode; find l = top - level
    width = np.ones_like(mode)
    for _ in range(40):  # grow a bracket until l(mode - width) < top - 45
        low = ell(mode - width) > top - 46.0
        if not low.any():
            break
        width = np.where(low, 2.0 * width, width)
    left = bisect(lambda v: top - levels - ell(v), mode - width + 0.0 * levels,
                  mode + 0.0 * levels)
    right_end = ell(lt) < top - levels
    right = np.where(right_end, bisect(lambda v: ell(v) - (top - levels),
                                       mode + 0.0 * levels, lt + 0.0 * levels), lt)
    edges = np.sort(np.concatenate([left, mode, right], axis=1), axis=1)
    mid = 0.5 * (edges[:, 1:] + edges[:, :-1])
    half = 0.5 * (edges[:, 1:] - edges[:, :-1])
    v = (mid[:, :, None] + half[:, :, None] * _GL_X).reshape(len(r), -1)
    with np.errstate(divide="ignore"):
        logw = np.log((half[:, :, None] * _GL_W).reshape(len(r), -1))
    vals = ell(v) + logw - top
    return top[:, 0] + np.log(np.exp(vals).sum(axis=1))


def purchase_count_probability(r: Any, alpha: Any, s: Any, beta: Any, n: Any, t: Any,
                               *, max_terms: int = 1024) -> np.ndarray:
    """P(X(t) = n) for a new customer (Fader & Hardie 2006, note 012; SMC 1987, eq. 16).

    Conditioning on the death time tau (Pareto II, P(tau > u) = (beta/(beta+u))^s):

        P(X(t) = n) = NB(n; t) (beta/(beta+t))^s
                      + s beta^s alpha^r G(r+n)/(G(r) n!) int_0^t u^n (alpha+u)^-(r+n)
                        (beta+u)^-(s+1) du,

    NB the Poisson-gamma (NBD) pmf. With w = u/(alpha+u) the integral is
    int_0^{w_t} w^n (1-w)^(r+s-1) (beta + (alpha-beta) w)^-(s+1) dw (times alpha^(1-r)), and
    expanding the last factor as a binomial series with positive terms (in w when
    alpha < beta, in 1-w when alpha >= beta) leaves regularised incomplete beta functions:

        alpha <  beta: s (alpha/beta) G(r+n)/(G(r) n!) sum_k (s+1)_k/k! (1-alpha/beta)^k
                       B(n+k+1, r+s) I_{w_t}(n+k+1, r+s)
        alpha >= beta: s (beta/alpha)^s G(r+n)/(G(r) n!) sum_k (s+1)_k/k! (1-beta/alpha)^k
                       B(n+1, r+s+k) I_{w_t}(n+1, r+s+k)

    Every term is positive (nothing cancels, unlike the hypergeometric form of note 012).
    Where the series would need more than about ``max_terms`` terms (alpha and beta orders
    of magnitude apart) the integral is computed by quadrature instead
    (:func:`_log_death_integral_quadrature`).
    """
    shape, (r, alpha, s, beta, n, t) = _flat(r, alpha, s, beta, n, t)
    with np.errstate(divide="ignore", invalid="ignore"):
        lat = np.log(alpha + t)
        log_head = special.gammaln(r + n) - special.gammaln(r) - special.gammaln(n + 1.0)
        log_nb = log_head + r * (np.log(alpha) - lat) + special.xlogy(n, t) - n * lat
        fin = np.isfinite(t)
        term1 = np.where(fin, np.exp(log_nb + s * (np.log(beta) - np.log(beta + t))), 0.0)
        w = np.where(fin, t / (alpha + t), 1.0)
    swap = alpha < beta
    kappa = np.where(swap, 1.0 - alpha / beta, 1.0 - beta / alpha)
    base = np.where(swap, np.log(alpha) - np.log(beta), s * (np.log(beta) - np.log(alpha)))
    total = np.zeros(r.size)
    top = np.full(r.size, -np.inf)
    # the terms decay like k^s rho^k: estimate how many the series needs
    rho = np.where(swap, kappa * w, kappa)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = (39.0 - (2.0 * s + 1.0) * np.log1p(-rho)) / -np.log(rho)
    slow = (w > 0) & (rho > 0) & ~(est <= max_terms)
    active = np.nonzero((w > 0) & ~slow)[0]
    k0 = 0
    block = 64
    while active.size and k0 < 2 * max_terms:
        k = k0 + np.arange(block, dtype=float)[None, :]
        ra, sa, na, wa, ka, sw = (v[active, None] for v in (r, s, n, w, kappa, swap))
        with np.errstate(divide="ignore", invalid="ignore"):
            first = np.where(sw, na + k + 1.0, na + 1.0)
            second = np.where(sw, ra + sa, ra + sa + k)
            logs = (special.gammaln(sa + 1.0 + k) - special.gammaln(sa + 1.0)
                    - special.gammaln(k + 1.0) + special.xlogy(k, ka)
                    + special.betaln(first, second)
                    + np.log(special.betainc(first, second, wa)))
        logs = np.where(np.isnan(logs), -np.inf, logs)
        new_top = np.maximum(top[active], logs.max(axis=1))
        finite = np.isfinite(new_top)
        shift = np.where(finite, new_top, 0.0)
        total[active] = (total[active] * np.exp(np.where(finite, top[active] - shift, 0.0))
                         + np.exp(logs - shift[:, None]).sum(axis=1))
        top[active] = new_top
        with np.errstate(divide="ignore", invalid="ignore"):
            last = logs[:, -1]
            done = ((last < np.log(total[active]) + shift + math.log(_TOL))
                    & (logs[:, -1] <= logs[:, -2])) | ~finite | (ka[:, 0] == 0)
        active = active[~done]
        k0 += block
        block = min(block * 2, 1024)
    with np.errstate(divide="ignore"):
        log_term2 = np.log(s) + base + log_head + np.log(total) + top
    slow[active] = True  # not converged after all
    if slow.any():  # slowly converging series: quadrature of the death integral instead
        i = np.nonzero(slow)[0]
        log_int = _log_death_integral_quadrature(r[i], alpha[i], s[i], beta[i], n[i], t[i])
        log_term2[i] = (np.log(s[i]) + s[i] * np.log(beta[i]) + r[i] * np.log(alpha[i])
                        + log_head[i] + log_int)
        total[i] = 1.0
    term2 = np.where(total > 0, np.exp(log_term2), 0.0)
    return (term1 + term2).reshape(shape)


def conditional_purchase_count_probability(r: Any, alpha: Any, s: Any, beta: Any, n: Any,
                                           x: Any, tx: Any, T: Any, t: Any) -> np.ndarray:
    """P(Y(t) = n | x, t_x, T): repeat purchases in (T, T + t] given the history.

    Alive at T, the purchase and death rates have the posterior Gamma(r + x, alpha + T) and
    Gamma(s, beta + T) distributions (memorylessness), so the customer buys like a new one
    with those parameters (Fader, Hardie & Lee 2005 note, eq. 19 with updated parameters);
    a dead customer buys nothing: ``P(alive) P_new(n) + (1 - P(alive)) 1{n = 0}``.
    """
    alive = probability_alive(r, alpha, s, beta, x, tx, T)
    new = purchase_count_probability(r + x, alpha + T, s, beta + T, n, t)
    return alive * new + (1.0 - alive) * (np.asarray(n) == 0)


def annual_to_continuous_rate(discount_rate: float, time_unit: str) -> float:
    """Continuous discount rate per time unit for an annual rate d: ln(1 + d) / units per year.

    Units per year are 365.25 / (days per unit) from :data:`clvmodels.rfm.TIME_UNITS`, so a
    week gives 52.18 weeks a year, not the 52 used by Fader, Hardie & Lee (2005): 15% a year
    is delta = 0.0026785 per week here and ln(1.15)/52 = 0.0026877 in the paper. Pass delta
    to :func:`expected_discounted_transactions` directly to reproduce the paper's convention.
    """
    if not (isinstance(discount_rate, int | float) and discount_rate > -1):
        raise ValueError(f"discount_rate must be a number above -1, got {discount_rate!r}")
    if time_unit not in TIME_UNITS:
        raise ValueError(f"unknown time unit {time_unit!r}; expected one of {list(TIME_UNITS)}")
    return math.log1p(discount_rate) / (365.25 / TIME_UNITS[time_unit])


# --------------------------------------------------------------------------------------
# the model class
# --------------------------------------------------------------------------------------


class ParetoNBD(TransactionModel, MLEModel):
    """Pareto/NBD model (Schmittlein, Morrison & Colombo 1987), fitted by maximum likelihood.

    Parameters ``r, alpha`` (Gamma purchase rate) and ``s, beta`` (Gamma death rate);
    ``alpha`` and ``beta`` are in the data's time unit. The likelihood gradient is exact
    (term-by-term derivatives of the tail-integral series, see the module docstring), and
    the likelihood is evaluated once per distinct (x, T) and (x, t_x) pair. See
    :class:`clvmodels.models.base.MLEModel` for fitting options and
    :class:`clvmodels.models.base.TransactionModel` for predictions; this class adds
    :meth:`expected_discounted_transactions` (DERT).

    Examples
    --------
    >>> model = ParetoNBD().fit(rfm)                            # doctest: +SKIP
    >>> model.expected_discounted_transactions(rfm, 0.15)       # doctest: +SKIP
    """

    param_names = ("r", "alpha", "s", "beta")
    #: Fader & Hardie (2007) note 019 / CLVTools: alpha_i = alpha exp(-g_p'z),
    #: beta_i = beta exp(-g_d'z) — a positive coefficient raises the purchase (drop-out) rate
    covariate_links = declare_links(purchase=(("alpha", -1.0),), dropout=(("beta", -1.0),))
    name = "pnbd"
    label = "Pareto/NBD"
    data_kind = "continuous"
    citation = ("Schmittlein, Morrison & Colombo (1987), Counting your customers, Management "
                "Science 33(1); Fader & Hardie note 009")
    simulator = staticmethod(simulate_paretonbd)
    #: DERT discounts each purchase at the moment it is expected (FHL 2005 eq. 2)
    dert_discounting = "continuous"

    # ---- likelihood on compressed rows -------------------------------------------------
    @staticmethod
    def _prepare(d: UniqueRows) -> SimpleNamespace:
        """Distinct x, (x, T) and (x, t_x) of the rows and each row's position among them
        (cached on the rows), so per-x and per-pair work is done once."""
        ux, inv_x, wx = d.levels("x")
        (x1, t1), inv1, _ = d.levels("x", "T")
        (x2, t2), inv2, _ = d.levels("x", "tx")
        return SimpleNamespace(ux=ux, inv_x=inv_x, wx=wx, x1=x1, t1=t1, inv1=inv1, x2=x2,
                               t2=t2, inv2=inv2)

    def _rows(self, p: dict[str, Any], d: UniqueRows) -> tuple[np.ndarray, np.ndarray]:
        """Per-row log-likelihood and gradient (4, n_rows) at scalar parameters ``p``.

        The tail integrals are evaluated once per distinct (x, T) and (x, t_x) pair and the
        x-only terms once per distinct x. The last evaluation is kept (value and gradient
        are asked for separately at the same point).
        """
        key = tuple(float(p[k]) for k in self.param_names)
        last = getattr(self, "_last_rows", None)
        if last is not None and last[0] is d and last[1] == key:
            return last[2]
        pr = self._prepare(d)
        r, alpha, s, beta = key
        l1, g1 = _log_tail(r + pr.x1 + 1.0, s, alpha, beta, pr.t1, grad=True)
        l2, g2 = _log_tail(r + pr.x2, s + 1.0, alpha, beta, pr.t2, grad=True)
        head = _XTerms.of(r, pr.ux)
        out = _loglik_and_grad(r, alpha, s, beta, head.take(pr.inv_x),
                               (l1[pr.inv1], g1[:, pr.inv1]), (l2[pr.inv2], g2[:, pr.inv2]))
        self._last_rows = (d, key, out)
        return out

    def _value_and_grad(self, p: dict[str, Any], d: UniqueRows) -> tuple[float, np.ndarray]:
        """Weighted total log-likelihood and gradient (the fused hook of the MLE machinery).

        Totals of recent points are remembered: the Newton polish revisits its iterate.
        """
        key = tuple(float(p[k]) for k in self.param_names)
        memo = getattr(self, "_totals", None)
        if memo is None or memo[0] is not d:
            memo = (d, {})
            self._totals = memo
        if key not in memo[1]:
            memo[1][key] = _weighted_totals(key, self._prepare(d), d.w)
            if len(memo[1]) > 32:
                memo[1].pop(next(iter(memo[1])))
        total, grad = memo[1][key]
        return total, grad.copy()

    def _value_grad_hess(self, p: dict[str, Any], d: UniqueRows
                         ) -> tuple[float, np.ndarray, np.ndarray] | None:
        """Weighted total log-likelihood, gradient and exact Hessian w.r.t. (r, alpha, s,
        beta) (:func:`_weighted_totals_hess`): the MLE machinery's Newton steps and
        standard errors, and the covariate fit's per-pattern Hessians, use it instead of
        2 x 4 gradient passes of central differences. None where numba is missing."""
        try:
            import clvmodels.models._pnbd_kernels  # noqa: F401
        except ImportError:  # pragma: no cover - numba comes with PyMC's pytensor
            return None
        key = tuple(float(p[k]) for k in self.param_names)
        return _weighted_totals_hess(key, self._prepare(d), d.w)  # type: ignore[arg-type]

    def fit(self, rfm: pd.DataFrame, **kwargs: Any) -> ParetoNBD:
        """Fit by maximum likelihood (see :meth:`MLEModel.fit`); caches are dropped after."""
        try:
            super().fit(rfm, **kwargs)
        finally:
            self._last_rows = self._totals = None
        return self

    def _loglik(self, p: dict[str, Any], d: Any, m: Any = NP) -> Any:
        if getattr(m, "name", None) == "numpy" and isinstance(d, UniqueRows) and all(
                np.ndim(p[k]) == 0 for k in self.param_names):
            return self._rows(p, d)[0]
        return log_likelihood(p["r"], p["alpha"], p["s"], p["beta"], d.x, d.tx, d.T, m=m)

    def _loglik_grad(self, p: dict[str, Any], d: UniqueRows) -> np.ndarray:
        if all(np.ndim(p[k]) == 0 for k in self.param_names):
            return self._rows(p, d)[1]
        return log_likelihood_grad(p["r"], p["alpha"], p["s"], p["beta"], d.x, d.tx, d.T)

    def _loglik_value_grad(self, p: dict[str, Any], d: UniqueRows
                           ) -> tuple[np.ndarray, np.ndarray]:
        """Per-row log-likelihood and gradient (4, n) in one pass (the covariate fit's row
        mode, per-row parameters); :meth:`_loglik` and :meth:`_loglik_grad` together."""
        if all(np.ndim(p[k]) == 0 for k in self.param_names):
            return self._rows(p, d)
        ll, grad = _rows_value_grad_hess(p["r"], p["alpha"], p["s"], p["beta"], d.x, d.tx,
                                         d.T, hess=False)
        return ll, grad

    def _loglik_grad_hess(self, p: dict[str, Any], d: UniqueRows
                          ) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-row gradient (4, n) and exact Hessian (4, 4, n) w.r.t. (r, alpha, s, beta)
        at per-row parameters (:func:`_rows_value_grad_hess`), for the covariate fit's row
        mode; None where numba is missing (central differences of the gradient then)."""
        try:
            import clvmodels.models._pnbd_kernels  # noqa: F401
        except ImportError:  # pragma: no cover - numba comes with PyMC's pytensor
            return None
        out = _rows_value_grad_hess(p["r"], p["alpha"], p["s"], p["beta"], d.x, d.tx, d.T,
                                    hess=True)
        return out[1], out[2]

    def _initial_params(self, d: UniqueRows) -> np.ndarray:
        # alpha and beta scale with time: start both at the mean T so any time unit starts
        # well; r = s = 1 (exponential rates, mean purchase rate 1/mean T)
        scale = max(float(np.average(d.T, weights=d.w)), 1e-3)
        return np.array([1.0, scale, 1.0, scale])

    # ---- predictions (TransactionModel hooks) ------------------------------------------
    def _probability_alive(self, p: dict[str, Any], x: Any, tx: Any, T: Any) -> np.ndarray:
        return probability_alive(p["r"], p["alpha"], p["s"], p["beta"], x, tx, T)

    def _expected_purchases(self, p: dict[str, Any], x: Any, tx: Any, T: Any, t: Any
                            ) -> np.ndarray:
        return expected_purchases(p["r"], p["alpha"], p["s"], p["beta"], x, tx, T, t)

    def _expected_new(self, p: dict[str, Any], t: Any) -> np.ndarray:
        return expected_purchases_new_customer(p["r"], p["alpha"], p["s"], p["beta"], t)

    def _pmf(self, p: dict[str, Any], n: Any, t: Any) -> np.ndarray:
        return purchase_count_probability(p["r"], p["alpha"], p["s"], p["beta"], n, t)

    def _conditional_pmf(self, p: dict[str, Any], n: Any, x: Any, tx: Any, T: Any, t: Any
                         ) -> np.ndarray:
        return conditional_purchase_count_probability(p["r"], p["alpha"], p["s"], p["beta"],
                                                      n, x, tx, T, t)

    def expected_discounted_transactions(self, rfm: pd.DataFrame, discount_rate: float, *,
                                         time_unit: str | None = None) -> pd.Series:
        """DERT for each customer of ``rfm`` (FHL 2005, JMR, eq. 2), at an ANNUAL rate.

        ``discount_rate`` is an annual rate d (0.15 for 15%), converted to a continuous rate
        per time unit delta = ln(1 + d) / (time units per year) with 365.25 / (days per
        unit) units a year (:func:`annual_to_continuous_rate`; note the paper's weekly
        delta uses 52 weeks a year -- call the module function with delta to reproduce it).
        ``time_unit`` is needed only when the model does not know its own.
        """
        unit = self._unit_for(time_unit)
        if unit is None:
            raise ValueError("the model's time unit is unknown: pass time_unit "
                             f"(one of {list(TIME_UNITS)})")
        delta = annual_to_continuous_rate(discount_rate, unit)
        x, tx, T, index = self._arrays(rfm)
        p = self._p(rfm)
        out = expected_discounted_transactions(p["r"], p["alpha"], p["s"], p["beta"],
                                               x, tx, T, delta)
        return pd.Series(out, index=index, name="dert")
