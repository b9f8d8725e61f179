"""BG/BB: Fader, Hardie & Shang (2010), "Customer-base analysis in a discrete-time
noncontractual setting", Marketing Science 29(6), 1086-1108.

Transactions happen at discrete opportunities 1, 2, ... after a customer's first one (at 0).
While alive, a customer transacts at each opportunity with probability p, p ~ Beta(alpha,
beta); at the start of each opportunity an alive customer dies with probability theta,
theta ~ Beta(gamma, delta), so P(alive at opportunity t | theta) = (1 - theta)^t. Data per
customer: x = transactions in opportunities 1..n, t_x = the opportunity of the last one (0
when x = 0) and n = the number of opportunities (the ``T`` column).

The functions broadcast over parameter arrays (a point estimate, or a stack of posterior
draws shaped ``(draws, 1)`` against customers ``(n,)``). :func:`log_likelihood` is written
against a math namespace ``m`` (:data:`clvmodels.models._math.NP` or
:func:`clvmodels.models._math.tensor_namespace`), so the PyMC likelihood is the same
function; everything else is numpy.

Two identities carry most of the predictions (both follow from eq. 5's derivation):

* given alive at opportunity n, the posterior of (p, theta) is Beta(alpha+x, beta+n-x) x
  Beta(gamma, delta+n), so from then on the customer behaves like a new one with those
  parameters;
* P(alive at n | x, t_x, n) = A / L, with A = eq. 5's first term and L the likelihood.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from clvmodels._validation import ValidationError
from clvmodels.models._math import NP
from clvmodels.models._special import log_hyp2f1
from clvmodels.models.bayes import BayesianTransactionModel
from clvmodels.models.links import declare_links
from clvmodels.models.mle import MLEModel
from clvmodels.models.priors import PriorSpec, lognormal, normal
from clvmodels.models.transaction import TransactionModel

__all__ = [
    "BayesianBetaGeoBetaBinom",
    "BetaGeoBetaBinom",
    "conditional_purchase_count_probability",
    "expected_discounted_transactions",
    "expected_purchases",
    "expected_purchases_new_customer",
    "log_likelihood",
    "log_likelihood_grad",
    "probability_alive",
    "purchase_count_probability",
    "simulate_bgbb",
]

PARAM_NAMES = ("alpha", "beta", "gamma", "delta")

#: most grid cells (customers x terms of a sum) evaluated at once by the numpy paths
_BLOCK_CELLS = 1 << 20
#: horizons up to this many opportunities sum their harmonic-type sums term by term
_DIRECT_SUM_MAX = 16
_EPS = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------


def _ndim(v: Any) -> int:
    nd = getattr(v, "ndim", None)
    return int(nd) if nd is not None else int(np.ndim(v))


def _f(v: Any) -> np.ndarray:
    return np.asarray(v, dtype=float)


def _check_params(alpha: Any, beta: Any, gamma: Any, delta: Any) -> None:
    for name, value in zip(PARAM_NAMES, (alpha, beta, gamma, delta), strict=True):
        v = _f(value)
        if not np.all(np.isfinite(v) & (v > 0)):
            raise ValueError(f"BG/BB parameter {name} must be positive and finite, "
                             f"got {value!r}")


def _check_counts(name: str, value: Any) -> np.ndarray:
    v = _f(value)
    if not np.all(np.isfinite(v) & (v >= 0) & (v == np.round(v))):
        raise ValueError(f"{name} must be whole numbers of opportunities >= 0, got {value!r}")
    return v


def _check_data(x: np.ndarray, tx: np.ndarray, n: np.ndarray) -> None:
    """Whole numbers with 0 <= x <= t_x <= n and t_x = 0 exactly when x = 0 (the grids index
    with them, so a bad row would otherwise give a silently wrong value)."""
    bad = ~(np.isfinite(x) & np.isfinite(tx) & np.isfinite(n) & (x == np.round(x))
            & (tx == np.round(tx)) & (n == np.round(n)) & (x >= 0) & (x <= tx) & (tx <= n)
            & ((x == 0) == (tx == 0)))
    if bad.any():
        rows = np.flatnonzero(bad.ravel())
        raise ValidationError(
            f"BG/BB data need whole numbers with 0 <= frequency <= recency <= T and recency = 0 "
            f"exactly when frequency = 0; {rows.size} offending row(s), positions "
            f"{rows[:5].tolist()}{' ...' if rows.size > 5 else ''}")


def _blocks(width: np.ndarray) -> Iterator[tuple[np.ndarray, int]]:
    """Split elements into blocks of similar grid width with at most ``_BLOCK_CELLS`` cells.

    Elements are grouped by the power of two above their width (so padding wastes at most
    half a block), then cut into pieces; yields (element indices, block width).
    """
    w = np.maximum(np.asarray(width, dtype=np.int64), 1)
    if w.size == 0:
        return
    cls = np.ceil(np.log2(w)).astype(np.int64)
    order = np.argsort(cls, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(cls[order]) != 0])
    ends = np.r_[starts[1:], order.size]
    for s, e in zip(starts, ends, strict=True):
        idx = order[s:e]
        bw = int(w[idx].max())
        per = max(1, _BLOCK_CELLS // bw)
        for k in range(0, idx.size, per):
            yield idx[k:k + per], bw


# --------------------------------------------------------------------------------------
# likelihood (paper eq. 5), written once for numpy and pytensor
# --------------------------------------------------------------------------------------
#
# With c0 = lnG(alpha+x) - lnB(alpha,beta) + lnG(gamma+delta) - lnG(delta),
#   ln L = c0 + ln[exp(a) + sum_{j=t_x}^{n-1} exp(s_j)]
#   a   = lnG(beta+n-x) - lnG(alpha+beta+n) + lnG(delta+n) - lnG(gamma+delta+n)
#   s_j = lnG(beta+j-x) - lnG(alpha+beta+j) + lnG(delta+j) - lnG(gamma+delta+1+j) + ln gamma
# (j = t_x + i in eq. 5's sum). exp(a) is the chance of the data and being alive at n; the
# s_j are those of dying at the start of opportunity j+1. The s_j fall strictly with j
# (s_{j+1} - s_j = ln[(beta+j-x)/(alpha+beta+j)] + ln[(delta+j)/(gamma+delta+1+j)] < 0), so
# max(a, s_{t_x}) is the largest term and the log-sum-exp needs no reduction for its pivot.
# The sum is evaluated on a (rows, max(n - t_x)) grid built from the (numeric) data with a
# 0/1 mask; padded cells repeat one of the row's own terms, so nothing overflows, and their
# gradient is multiplied by an exact 0.


def _terms(alpha: Any, beta: Any, gamma: Any, delta: Any, x: np.ndarray, tx: np.ndarray,
           n: np.ndarray, m: Any) -> tuple[Any, Any, Any, Any, np.ndarray, dict]:
    """c0, a, s (grid), s at j = t_x, the grid's mask, and the integer indices used.

    Data are 1-D float arrays (rows,); parameters are scalars or broadcast against rows.
    Scalar parameters use tables of lnG over the integers 0..max(n)+1 (one gammaln per
    integer instead of four per cell); otherwise gammaln is evaluated per cell.
    """
    xi, txi, ni = (v.astype(np.int64) for v in (x, tx, n))
    nterms = ni - txi
    width = max(int(nterms.max(initial=0)), 1)
    off = np.arange(width)
    j = txi[:, None] + np.minimum(off[None, :], np.maximum(nterms - 1, 0)[:, None])
    mask = (off[None, :] < nterms[:, None]).astype(float)
    # every lnG enters as an increment lnG(y + t) - lnG(y) (the constant lnG(a+b) - lnG(b) +
    # lnG(g+d) - lnG(d) moved from c0 into a and s, which leaves c0 + lse and a - lse as
    # they were): a difference of two huge lnG values loses every digit once beta or delta
    # is large (1e15: the log-likelihood came out > 0), an increment does not
    c0 = _lgamma_inc(alpha, x, m)
    log_g = m.log(gamma)
    idx = {"xi": xi, "txi": txi, "ni": ni, "j": j}
    if all(_ndim(p) == 0 for p in (alpha, beta, gamma, delta)):
        top = int(ni.max(initial=0)) + 2
        k = np.arange(top, dtype=float)
        gb = _lgamma_inc(beta, k, m)
        gab = _lgamma_inc(alpha + beta, k, m)
        gd = _lgamma_inc(delta, k, m)
        ggd = _lgamma_inc(gamma + delta, k, m)
        h = gd[:-1] - gab[:-1] - ggd[1:]  # the part of s_j in j alone (j <= max n)
        a = gb[ni - xi] - gab[ni] + gd[ni] - ggd[ni]
        s = gb[j - xi[:, None]] + h[j] + log_g
        s0 = gb[txi - xi] + h[txi] + log_g
        return c0, a, s, s0, mask, idx
    a = (_lgamma_inc(beta, n - x, m) - _lgamma_inc(alpha + beta, n, m)
         + _lgamma_inc(delta, n, m) - _lgamma_inc(gamma + delta, n, m))

    def col(p: Any) -> Any:
        return m.as_float(p)[..., None]

    A, B, G, D = (col(p) for p in (alpha, beta, gamma, delta))
    jf = j.astype(float)
    s = (_lgamma_inc(B, jf - x[:, None], m) - _lgamma_inc(A + B, jf, m)
         + _lgamma_inc(D, jf, m) - _lgamma_inc(G + D, jf + 1.0, m) + m.log(G))
    s0 = (_lgamma_inc(beta, tx - x, m) - _lgamma_inc(alpha + beta, tx, m)
          + _lgamma_inc(delta, tx, m) - _lgamma_inc(gamma + delta, tx + 1.0, m) + log_g)
    return c0, a, s, s0, mask, idx


#: pytensor's increments switch to Stirling's series above this argument (below it the plain
#: difference of lnG values is good to ~1e-11 absolute; above it two series terms to 1e-23)
_TENSOR_STIRLING_MIN = 1e4


def _lgamma_inc(y: Any, t: Any, m: Any) -> Any:
    """lnG(y + t) - lnG(y) for y > 0, t >= 0 in namespace ``m``, without the cancellation of
    two large lnG values [DLMF 5.11.1]: numpy through :func:`_lgamma_increment`; pytensor by
    t ln y + (y+t-1/2) ln(1+t/y) - t + sum_j B_2j/(2j(2j-1)) [(y+t)^(1-2j) - y^(1-2j)] (two
    terms) where y >= 1e4, the plain difference below."""
    if getattr(m, "name", "") == "numpy":
        yb, tb = np.broadcast_arrays(np.asarray(y, dtype=float), np.asarray(t, dtype=float))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = _lgamma_increment(yb.ravel(), tb.ravel())
        return out.reshape(yb.shape)[()] if yb.ndim == 0 else out.reshape(yb.shape)
    big = m.maximum(y, _TENSOR_STIRLING_MIN)  # the series' branch never sees a small y
    series = (t * m.log(big) + (big + t - 0.5) * m.log1p(t / big) - t
              + ((big + t) ** -1.0 - big ** -1.0) / 12.0
              - ((big + t) ** -3.0 - big ** -3.0) / 360.0)
    small = m.where(y < _TENSOR_STIRLING_MIN, y, 1.0)  # the plain branch never sees a huge y
    plain = m.gammaln(small + t) - m.gammaln(small)
    return m.where(y < _TENSOR_STIRLING_MIN, plain, series)


def _lse(a: Any, s: Any, s0: Any, mask: np.ndarray, m: Any) -> Any:
    """ln[exp(a) + sum(mask * exp(s))], pivoted at max(a, s0) (the largest term)."""
    piv = m.maximum(a, s0)
    total = m.exp(a - piv) + (mask * m.exp(s - m.as_float(piv)[..., None])).sum(axis=-1)
    return piv + m.log(total)


def _ll_parts(alpha: Any, beta: Any, gamma: Any, delta: Any, x: Any, tx: Any, T: Any
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy: (c0, a, lse) of :func:`_terms` for any broadcastable inputs, in blocks of
    bounded memory; ln L = c0 + lse and ln P(alive at n | data) = a - lse."""
    params = [_f(p) for p in (alpha, beta, gamma, delta)]
    data = [_f(v) for v in (x, tx, T)]
    scalar = all(p.ndim == 0 for p in params)
    if scalar:
        shape = np.broadcast_shapes(*(v.shape for v in data))
    else:
        shape = np.broadcast_shapes(*(v.shape for v in params + data))
        params = [np.broadcast_to(p, shape).ravel() for p in params]
    data = [np.broadcast_to(v, shape).ravel() for v in data]
    _check_data(*data)
    size = int(np.prod(shape))
    out = [np.empty(size) for _ in range(3)]
    width = data[2] - data[1]
    with np.errstate(under="ignore"):
        for sel, _ in _blocks(width):
            ps = params if scalar else [p[sel] for p in params]
            c0, a, s, s0, mask, _ = _terms(*ps, *(v[sel] for v in data), m=NP)
            lse = _lse(a, s, s0, mask, NP)
            for o, v in zip(out, (c0, a, lse), strict=True):
                o[sel] = v
    c0, a, lse = (o.reshape(shape) for o in out)
    return c0, a, lse


def log_likelihood(alpha: Any, beta: Any, gamma: Any, delta: Any, x: Any, tx: Any, T: Any,
                   m: Any = NP) -> Any:
    """Per-customer BG/BB log-likelihood, FHS 2010 eq. (5), in log space.

    ``x, tx, T`` (frequency, recency, opportunities n) are numeric numpy data, checked to be
    whole numbers with 0 <= x <= t_x <= n and t_x = 0 exactly when x = 0. The parameters are
    numbers or arrays broadcasting against the data (e.g. posterior draws shaped ``(S, 1)``)
    or, with ``m = tensor_namespace()``, pytensor variables (scalars, vectors over the rows,
    or ``(S, 1)`` stacks) against 1-D data; the result is then symbolic. The sum's at most
    n - t_x terms are evaluated on a padded grid built from the data (numpy: in blocks of
    bounded memory; pytensor: one grid of rows x max(n - t_x) cells).
    """
    if getattr(m, "name", "") == "numpy":
        c0, _, lse = _ll_parts(alpha, beta, gamma, delta, x, tx, T)
        return c0 + lse
    x, tx, n = (np.atleast_1d(_f(v)) for v in (x, tx, T))
    x, tx, n = np.broadcast_arrays(x, tx, n)
    _check_data(x, tx, n)
    c0, a, s, s0, mask, _ = _terms(alpha, beta, gamma, delta, x, tx, n, m)
    return c0 + _lse(a, s, s0, mask, m)


def log_likelihood_grad(alpha: float, beta: float, gamma: float, delta: float, x: Any,
                        tx: Any, T: Any) -> np.ndarray:
    """Gradient of :func:`log_likelihood` (eq. 5) in (alpha, beta, gamma, delta): shape
    (4, rows), for scalar parameters (a point estimate) or parameters per row (arrays
    broadcasting against the 1-D data: each customer's own, with covariates).

    With w_a and w_j the shares of exp(a) and exp(s_j) in the likelihood (they sum to 1):
    d/d alpha = psi(alpha+x) - psi(alpha) + psi(alpha+beta) - w_a psi(alpha+beta+n)
    - sum_j w_j psi(alpha+beta+j), and likewise for the other parameters.
    """
    if any(np.ndim(p) for p in (alpha, beta, gamma, delta)):
        return _log_likelihood_grad_rows(alpha, beta, gamma, delta, x, tx, T)
    al, be, ga, de = (float(p) for p in (alpha, beta, gamma, delta))
    x, tx, n = np.broadcast_arrays(*(np.atleast_1d(_f(v)) for v in (x, tx, T)))
    x, tx, n = (v.ravel() for v in (x, tx, n))
    _check_data(x, tx, n)
    psi = special.digamma
    top = int(n.max(initial=0)) + 2
    k = np.arange(top, dtype=float)
    pb, pab, pd_, pgd = psi(be + k), psi(al + be + k), psi(de + k), psi(ga + de + k)
    out = np.empty((4, x.size))
    with np.errstate(under="ignore"):
        for sel, _ in _blocks(n - tx):
            _, a, s, s0, mask, ix = _terms(al, be, ga, de, x[sel], tx[sel], n[sel], NP)
            lse = _lse(a, s, s0, mask, NP)
            wa = np.exp(a - lse)
            ws = mask * np.exp(s - lse[:, None])
            xi, ni, j = ix["xi"], ix["ni"], ix["j"]
            wsum = ws.sum(axis=1)
            out[0, sel] = (psi(al + x[sel]) - psi(al) + psi(al + be) - wa * pab[ni]
                           - (ws * pab[j]).sum(axis=1))
            out[1, sel] = (psi(al + be) - psi(be) + wa * (pb[ni - xi] - pab[ni])
                           + (ws * (pb[j - xi[:, None]] - pab[j])).sum(axis=1))
            out[2, sel] = (psi(ga + de) - wa * pgd[ni] + wsum / ga
                           - (ws * pgd[j + 1]).sum(axis=1))
            out[3, sel] = (psi(ga + de) - psi(de) + wa * (pd_[ni] - pgd[ni])
                           + (ws * (pd_[j] - pgd[j + 1])).sum(axis=1))
    return out


def _log_likelihood_grad_rows(alpha: Any, beta: Any, gamma: Any, delta: Any, x: Any,
                              tx: Any, T: Any) -> np.ndarray:
    """:func:`log_likelihood_grad` for parameters that vary by row (each customer's own, e.g.
    with covariates): the same shares w_a, w_j, with digamma evaluated per grid cell rather
    than from one table over the integers. Shape (4, rows)."""
    params = [_f(p) for p in (alpha, beta, gamma, delta)]
    data = [np.atleast_1d(_f(v)) for v in (x, tx, T)]
    shape = np.broadcast_shapes(*(v.shape for v in params + data))
    params = [np.broadcast_to(p, shape).ravel() for p in params]
    x, tx, n = (np.broadcast_to(v, shape).ravel() for v in data)
    _check_data(x, tx, n)
    psi = special.digamma
    out = np.empty((4, x.size))
    with np.errstate(under="ignore"):
        for sel, _ in _blocks(n - tx):
            al, be, ga, de = (p[sel] for p in params)
            xs, ns = x[sel], n[sel]
            _, a, s, s0, mask, ix = _terms(al, be, ga, de, xs, tx[sel], ns, NP)
            lse = _lse(a, s, s0, mask, NP)
            wa = np.exp(a - lse)
            ws = mask * np.exp(s - lse[:, None])
            jf = ix["j"].astype(float)
            A, B, G, D = (v[:, None] for v in (al, be, ga, de))
            pab_j = psi(A + B + jf)
            pgd_j1 = psi(G + D + 1.0 + jf)
            pab_n, pgd_n = psi(al + be + ns), psi(ga + de + ns)
            out[0, sel] = (psi(al + xs) - psi(al) + psi(al + be) - wa * pab_n
                           - (ws * pab_j).sum(axis=1))
            out[1, sel] = (psi(al + be) - psi(be) + wa * (psi(be + ns - xs) - pab_n)
                           + (ws * (psi(B + (jf - xs[:, None])) - pab_j)).sum(axis=1))
            out[2, sel] = (psi(ga + de) - wa * pgd_n + ws.sum(axis=1) / ga
                           - (ws * pgd_j1).sum(axis=1))
            out[3, sel] = (psi(ga + de) - psi(de) + wa * (psi(de + ns) - pgd_n)
                           + (ws * (psi(D + jf) - pgd_j1)).sum(axis=1))
    return out


# --------------------------------------------------------------------------------------
# the dropout process: expected number of alive opportunities
# --------------------------------------------------------------------------------------


# Bernoulli numbers B_2, B_4, ..., B_16 for the Stirling series of lnG and psi [DLMF 5.11.1,
# 5.11.2]; for arguments >= 10 the omitted terms are below 1e-17 relative
_BERNOULLI = np.array([1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510])
_TWO_J = 2.0 * np.arange(1, _BERNOULLI.size + 1)
_STIRLING_MIN = 10.0


def _stirling_increments(y: np.ndarray, t: np.ndarray, power: np.ndarray) -> np.ndarray:
    """(y+t)^-p - y^-p for each p in ``power`` (last axis), without cancellation."""
    l1p = np.log1p(t / y)[..., None]
    return y[..., None] ** -power * np.expm1(-power * l1p)


def _lgamma_increment(y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """lnG(y+t) - lnG(y) for y > 0, t >= 0, accurate relative to its own size.

    For y >= 10 from Stirling's series [DLMF 5.11.1] written as
    t ln y + (y+t-1/2) ln(1+t/y) - t + sum_j B_2j/(2j(2j-1)) [(y+t)^(1-2j) - y^(1-2j)],
    so it does not lose the digits that the difference of two large lnG values loses.
    """
    out = special.gammaln(y + t) - special.gammaln(y)
    big = y >= _STIRLING_MIN
    if big.any():
        yb, tb = y[big], t[big]
        c = _BERNOULLI / (_TWO_J * (_TWO_J - 1.0))
        corr = _stirling_increments(yb, tb, _TWO_J - 1.0) @ c
        out[big] = tb * np.log(yb) + (yb + tb - 0.5) * np.log1p(tb / yb) - tb + corr
    return out


def _digamma_increment(z: np.ndarray, t: np.ndarray) -> np.ndarray:
    """psi(z+t) - psi(z) = sum_{i<t} 1/(z+i); for z >= 10 from the asymptotic series
    [DLMF 5.11.2] ln(1+t/z) + t/(2z(z+t)) - sum_j B_2j/(2j) [(z+t)^-2j - z^-2j]."""
    out = special.digamma(z + t) - special.digamma(z)
    big = z >= _STIRLING_MIN
    if big.any():
        zb, tb = z[big], t[big]
        corr = _stirling_increments(zb, tb, _TWO_J) @ (_BERNOULLI / _TWO_J)
        out[big] = np.log1p(tb / zb) + tb / (2.0 * zb * (zb + tb)) - corr
    return out


def _alive_opportunities(gamma: Any, delta: Any, t: Any) -> np.ndarray:
    """sum_{s=1}^t E[(1-theta)^s], theta ~ Beta(gamma, delta): the expected number of the
    next t opportunities a customer alive now is alive at; eq. (9) without alpha/(alpha+beta):

        delta/(gamma-1) {1 - G(gamma+delta) G(1+delta+t) / [G(gamma+delta+t) G(1+delta)]}.

    With e = gamma - 1 and z = gamma + delta the ratio is R = exp(f),
    f = sum_{i<t} ln(1 - e/(z+i)) = [lnG(1+delta+t) - lnG(1+delta)] - [lnG(z+t) - lnG(z)],
    and the value is delta (-expm1(f)/e). f comes from the two lnG increments where that
    difference keeps ~12 digits; elsewhere (gamma near 1, where eq. 9 has a removable
    singularity, or t large against |gamma - 1|) from the series
    f/e = -sum_{k>=1} e^(k-1)/k H_k, H_k = sum_{i<t} (z+i)^-k, which converges
    geometrically for |e| <= z/2.
    """
    g, d, t = np.broadcast_arrays(_f(gamma), _f(delta), _f(t))
    shape = g.shape
    g, d, t = (np.array(v, dtype=float).ravel() for v in (g, d, t))
    e, z = g - 1.0, g + d
    pos = t > 0
    q = np.zeros(g.size)  # f / e
    with np.errstate(all="ignore"):
        d1, d2 = _lgamma_increment(1.0 + d, t), _lgamma_increment(z, t)
        f = d1 - d2
        err = 8.0 * _EPS * (np.abs(d1) + np.abs(d2) + 1.0)
        series = pos & (err > 1e-12 * np.minimum(np.abs(f), 1.0)) & (np.abs(e) <= 0.5 * z)
        direct = pos & ~series
        q[direct] = f[direct] / e[direct]
        if series.any():
            q[series] = _log_ratio_over_e(e[series], z[series], t[series])
        y = e * q
        phi = np.where(y == 0.0, 1.0, np.expm1(y) / np.where(y == 0.0, 1.0, y))
        out = np.where(pos, d * (-q) * phi, 0.0)
    return out.reshape(shape)


def _log_ratio_over_e(e: np.ndarray, z: np.ndarray, t: np.ndarray) -> np.ndarray:
    """f/e = -sum_{k>=1} e^(k-1)/k H_k with H_k = sum_{i=0}^{t-1} (z+i)^-k, for |e| <= z/2.

    Summed as -sum_k u^(k-1)/k S_k with u = e/z and S_k = z^(k-1) H_k (no overflow):
    term by term for t <= 16; otherwise H_1 from :func:`_digamma_increment` and H_k from
    Hurwitz zeta differences [DLMF 25.11.1] (their cancellation when z >> t only touches
    terms already damped by u^(k-1)).
    """
    u = e / z
    r = np.abs(u)
    with np.errstate(divide="ignore"):
        need = np.where(r > 0, np.ceil(np.log(1e-18) / np.log(r)), 1.0)
    kmax = int(min(max(need.max(), 1.0), 64.0))
    small = t <= _DIRECT_SUM_MAX
    big = ~small
    off = np.arange(_DIRECT_SUM_MAX, dtype=float)
    zs = z[small, None]
    base = np.where(off < t[small, None], 1.0 / (zs + off), 0.0)  # 1/(z+i), masked
    ratio = zs / (zs + off)  # z/(z+i) <= 1
    zb, tb = z[big], t[big]
    log_zb = np.log(zb)
    out = np.zeros(e.size)
    uk = np.ones(e.size)  # u^(k-1)
    for k in range(1, kmax + 1):
        s_k = np.empty(e.size)
        s_k[small] = base.sum(axis=1)
        base = base * ratio
        if big.any():
            if k == 1:
                s_k[big] = _digamma_increment(zb, tb)
            else:
                diff = special.zeta(float(k), zb) - special.zeta(float(k), zb + tb)
                s_k[big] = np.where(diff > 0, np.exp((k - 1) * log_zb + np.log(diff)), 0.0)
        out -= uk * s_k / k
        uk = uk * u
    return out


# --------------------------------------------------------------------------------------
# public predictive functions (numpy)
# --------------------------------------------------------------------------------------


def _log_alive_at_n(alpha: Any, beta: Any, gamma: Any, delta: Any, x: Any, tx: Any, T: Any
                    ) -> np.ndarray:
    """ln P(alive at opportunity n | x, t_x, n) = ln A - ln L (eq. 5's first term over L)."""
    _, a, lse = _ll_parts(alpha, beta, gamma, delta, x, tx, T)
    return np.minimum(a - lse, 0.0)


def probability_alive(alpha: Any, beta: Any, gamma: Any, delta: Any, x: Any, tx: Any, T: Any
                      ) -> np.ndarray:
    """P(alive at opportunity n+1 | x, t_x, n), FHS 2010 eq. (11):

    B(alpha+x, beta+n-x)/B(alpha,beta) B(gamma, delta+n+1)/B(gamma,delta) / L, i.e.
    P(alive at n | data) (delta+n)/(gamma+delta+n). (The paper's Table 6 quantity.)
    """
    _check_params(alpha, beta, gamma, delta)
    n = _f(T)
    lp = _log_alive_at_n(alpha, beta, gamma, delta, x, tx, n)
    return np.exp(lp) * ((delta + n) / (gamma + delta + n))


def expected_purchases_new_customer(alpha: Any, beta: Any, gamma: Any, delta: Any, t: Any
                                    ) -> np.ndarray:
    """E[X(t)], expected transactions of a new customer in opportunities 1..t,
    FHS 2010 eq. (9): alpha/(alpha+beta) delta/(gamma-1) {1 - G(gamma+delta)/G(gamma+delta+t)
    G(1+delta+t)/G(1+delta)} (continuous through gamma = 1)."""
    _check_params(alpha, beta, gamma, delta)
    t = _check_counts("t", t)
    return _f(alpha) / (_f(alpha) + _f(beta)) * _alive_opportunities(gamma, delta, t)


def _pmf(alpha: Any, beta: Any, gamma: Any, delta: Any, k: Any, t: Any) -> np.ndarray:
    """Eq. (8) for broadcastable inputs, no validation (see purchase_count_probability)."""
    arrays = np.broadcast_arrays(*(_f(v) for v in (alpha, beta, gamma, delta, k, t)))
    shape = arrays[0].shape
    al, be, ga, de, k, t = (v.ravel() for v in arrays)
    out = np.zeros(al.size)
    valid = np.flatnonzero((k >= 0) & (k <= t) & (k == np.round(k)))
    if valid.size == 0:
        return out.reshape(shape)
    gl = special.gammaln
    with np.errstate(under="ignore"):
        for part, w in _blocks((t - k)[valid]):
            sel = valid[part]
            a_, b_, g_, d_, k_, t_ = (v[sel] for v in (al, be, ga, de, k, t))
            c = gl(a_ + k_) - gl(k_ + 1.0) - special.betaln(a_, b_) + gl(g_ + d_) - gl(d_)
            first = (gl(t_ + 1.0) - gl(t_ - k_ + 1.0) + gl(b_ + t_ - k_) - gl(a_ + b_ + t_)
                     + gl(d_ + t_) - gl(g_ + d_ + t_))
            off = np.arange(w, dtype=float)
            nterms = (t_ - k_)[:, None]
            i = k_[:, None] + np.minimum(off, np.maximum(nterms - 1.0, 0.0))
            kc, bc, gc, dc = k_[:, None], b_[:, None], g_[:, None], d_[:, None]
            cells = (gl(i + 1.0) - gl(i - kc + 1.0) + gl(bc + i - kc) - gl(a_[:, None] + bc + i)
                     + np.log(gc) + gl(dc + i) - gl(gc + dc + 1.0 + i))
            cells = np.where(off < nterms, cells, -np.inf)
            lse = special.logsumexp(np.concatenate([first[:, None], cells], axis=1), axis=1)
            out[sel] = np.exp(c + lse)
    return np.minimum(out, 1.0).reshape(shape)


def purchase_count_probability(alpha: Any, beta: Any, gamma: Any, delta: Any, k: Any, t: Any
                               ) -> np.ndarray:
    """P(X(t) = k) for a new customer (k transactions in opportunities 1..t),
    FHS 2010 eq. (8), evaluated in log space:

    C(t,k) B(alpha+k, beta+t-k)/B(alpha,beta) B(gamma, delta+t)/B(gamma,delta)
    + sum_{i=k}^{t-1} C(i,k) B(alpha+k, beta+i-k)/B(alpha,beta) B(gamma+1, delta+i)/B(gamma,delta).

    0 for k outside 0..t. All arguments broadcast together.
    """
    _check_params(alpha, beta, gamma, delta)
    _check_counts("t", t)
    return _pmf(alpha, beta, gamma, delta, k, t)


def expected_purchases(alpha: Any, beta: Any, gamma: Any, delta: Any, x: Any, tx: Any, T: Any,
                       t: Any) -> np.ndarray:
    """E[X(n, n+t) | x, t_x, n], expected transactions in the next t opportunities,
    FHS 2010 eq. (13): 1/L B(alpha+x+1, beta+n-x)/B(alpha,beta) delta/(gamma-1)
    G(gamma+delta)/G(1+delta) [G(1+delta+n)/G(gamma+delta+n)
    - G(1+delta+n+t)/G(gamma+delta+n+t)].

    Evaluated as P(alive at n | data) times eq. (9) with the updated parameters
    (alpha+x, beta+n-x, gamma, delta+n), which is the same expression.
    """
    _check_params(alpha, beta, gamma, delta)
    t = _check_counts("t", t)
    x, n = _f(x), _f(T)
    lp = _log_alive_at_n(alpha, beta, gamma, delta, x, tx, n)
    rate = (alpha + x) / (_f(alpha) + beta + n)
    return np.exp(lp) * rate * _alive_opportunities(gamma, _f(delta) + n, t)


def conditional_purchase_count_probability(alpha: Any, beta: Any, gamma: Any, delta: Any,
                                           k: Any, x: Any, tx: Any, T: Any, t: Any
                                           ) -> np.ndarray:
    """P(X(n, n+t) = k | x, t_x, n): the number of transactions in the next t opportunities.

    Alive at n (probability A/L, see eq. 11) the customer behaves like a new one with
    parameters (alpha+x, beta+n-x, gamma, delta+n), whose count is eq. (8); dead, the count
    is 0:  P = (A/L) P_new(X(t) = k) + (1 - A/L) 1{k = 0}. Its mean is eq. (13) and it sums
    to 1 over k = 0..t. All arguments broadcast together.
    """
    _check_params(alpha, beta, gamma, delta)
    _check_counts("t", t)
    x, n, k = _f(x), _f(T), _f(k)
    lp = _log_alive_at_n(alpha, beta, gamma, delta, x, tx, n)
    new = _pmf(_f(alpha) + x, _f(beta) + n - x, gamma, _f(delta) + n, k, t)
    return np.exp(lp) * new + np.where(k == 0, -np.expm1(lp), 0.0)


def expected_discounted_transactions(alpha: Any, beta: Any, gamma: Any, delta: Any, x: Any,
                                     tx: Any, T: Any, discount_rate: Any) -> np.ndarray:
    """DERT, discounted expected residual transactions, FHS 2010 eq. (14):

    B(alpha+x+1, beta+n-x)/B(alpha,beta) B(gamma, delta+n+1)/[B(gamma,delta) (1+d)]
    2F1(1, delta+n+1; gamma+delta+n+1; 1/(1+d)) / L,

    with d the discount rate per opportunity (the transaction at n+1 discounted by 1/(1+d)).
    d = 0 gives the expected number of all future transactions: finite (by Gauss' sum) when
    gamma > 1, ``inf`` otherwise.
    """
    _check_params(alpha, beta, gamma, delta)
    d = _f(discount_rate)
    if not np.all(np.isfinite(d) & (d >= 0)):
        raise ValueError(f"discount_rate must be finite and >= 0, got {discount_rate!r}")
    x, n, g = _f(x), _f(T), _f(gamma)
    dn = _f(delta) + n
    lp = _log_alive_at_n(alpha, beta, gamma, delta, x, tx, n)
    log_rate = np.log(alpha + x) - np.log(_f(alpha) + beta + n)
    with np.errstate(divide="ignore"):
        zc = d / (1.0 + d)
    z = 1.0 / (1.0 + d)
    with np.errstate(all="ignore"):
        lf = log_hyp2f1(1.0, dn + 1.0, g + dn + 1.0, z, zc=zc)
        log_alive_sum = np.log(dn) - np.log(g + dn) - np.log1p(d) + lf
        # d = 0: sum_{s>=1} E[(1-theta)^s] = (delta+n)/(gamma-1) when gamma > 1
        at_zero = np.where(g > 1.0, np.log(dn) - np.log(np.abs(g - 1.0)), np.inf)
    log_alive_sum = np.where(d == 0, at_zero, log_alive_sum)
    return np.exp(lp + log_rate + log_alive_sum)


# --------------------------------------------------------------------------------------
# simulation
# --------------------------------------------------------------------------------------


def simulate_bgbb(n_customers: int, T: Any, *, alpha: float, beta: float, gamma: float,
                  delta: float, holdout: int = 0, random_seed: Any = None) -> pd.DataFrame:
    """Draw customers from the BG/BB (FHS 2010, section 2; the process behind eq. 5).

    Per customer p ~ Beta(alpha, beta) and theta ~ Beta(gamma, delta); the number of
    opportunities alive at, K, has P(K >= t) = (1-theta)^t; at each of them a transaction
    happens with probability p. Exact and vectorised: the opportunities since the last
    transaction (counted back from the last alive one) are geometric, and the other x - 1
    transactions are Binomial(t_x - 1, p).

    Parameters
    ----------
    n_customers
        Number of customers.
    T
        Opportunities observed per customer (whole number >= 1): a scalar or one per customer.
    alpha, beta, gamma, delta
        The model's parameters (positive): numbers, or one value per customer (each
        customer's own parameters, e.g. with covariates: links equation (1)).
    holdout
        Extra opportunities after T (whole number >= 0); adds ``frequency_holdout``
        (transactions in opportunities T+1..T+holdout) and ``duration_holdout``.
    random_seed
        Anything :func:`numpy.random.default_rng` accepts.

    Returns
    -------
    DataFrame indexed by ``customer_id`` (0..n-1) with int64 ``frequency, recency, T``
    [+ ``frequency_holdout``, ``duration_holdout``]; time is counted in opportunities, so
    ``attrs["time_unit"]`` is left unset.
    """
    if (isinstance(n_customers, bool) or not isinstance(n_customers, int | np.integer)
            or n_customers < 1):
        raise ValueError(f"n_customers must be a positive integer, got {n_customers!r}")
    n = int(n_customers)
    for name, value in zip(PARAM_NAMES, (alpha, beta, gamma, delta), strict=True):
        if not np.isscalar(value):  # one value per customer (e.g. with covariates)
            arr = _f(value)
            if arr.shape != (n,) or not np.all(np.isfinite(arr) & (arr > 0)):
                raise ValueError(f"{name} must be a positive finite number or one per "
                                 f"customer ({n}), got shape {arr.shape}")
            continue
        if not (np.isreal(value) and np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    T_arr = _f(T)
    if T_arr.ndim == 0:
        T_arr = np.full(n, float(T_arr))
    if T_arr.shape != (n,):
        raise ValueError(f"T must be a scalar or have one value per customer ({n}), "
                         f"got shape {T_arr.shape}")
    if not np.all(np.isfinite(T_arr) & (T_arr >= 1) & (T_arr == np.round(T_arr))):
        raise ValueError("T must be whole numbers of opportunities >= 1")
    if (isinstance(holdout, bool) or not np.isscalar(holdout) or not np.isfinite(holdout)
            or holdout < 0 or float(holdout) != np.floor(float(holdout))):
        raise ValueError(f"holdout must be a whole number of opportunities >= 0, "
                         f"got {holdout!r}")
    rng = np.random.default_rng(random_seed)
    p = rng.beta(alpha, beta, n)
    theta = rng.beta(gamma, delta, n)
    k_alive = _geometric_failures(rng, theta)  # opportunities alive at: P(K >= t) = (1-theta)^t
    alive = np.minimum(k_alive, T_arr)
    back = _geometric_failures(rng, p)  # alive opportunities after the last transaction
    bought = back < alive
    tx = np.where(bought, alive - np.where(bought, back, 0.0), 0.0).astype(np.int64)
    x = np.where(bought, 1 + rng.binomial(np.maximum(tx - 1, 0), p), 0).astype(np.int64)
    out = pd.DataFrame({"frequency": x, "recency": tx, "T": T_arr.astype(np.int64)},
                       index=pd.RangeIndex(n, name="customer_id"))
    if holdout > 0:
        h = int(holdout)
        alive_h = np.clip(k_alive - T_arr, 0, h).astype(np.int64)
        out["frequency_holdout"] = rng.binomial(alive_h, p).astype(np.int64)
        out["duration_holdout"] = np.int64(h)
    return out


def _geometric_failures(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """Failures before the first success of Bernoulli(p) trials, as floats: P(G >= g) =
    (1-p)^g, so G = floor(ln U / ln(1-p)), U ~ (0, 1]; p = 0 gives ``inf``, p = 1 gives 0."""
    u = 1.0 - rng.random(p.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.floor(np.log(u) / np.log1p(-p))
    return np.where(np.isnan(g), 0.0, g)  # 0/-inf (u = 1, p = 1)


# --------------------------------------------------------------------------------------
# the model class
# --------------------------------------------------------------------------------------


class BetaGeoBetaBinom(TransactionModel, MLEModel):
    """BG/BB model of transactions at discrete opportunities (Fader, Hardie & Shang 2010),
    fitted by maximum likelihood.

    For businesses whose customers can transact only at discrete occasions (annual
    donations, yearly events, weekly newsletters). Fitted on ``frequency`` (transactions at
    opportunities 1..n), ``recency`` (the opportunity of the last one, 0 if none) and ``T``
    (n, the number of opportunities), whole numbers — or on the distinct rows with counts via
    ``weights=`` (the donations data: :func:`clvmodels.datasets.load_donations`). Parameters
    ``alpha, beta`` (transaction probability p ~ Beta(alpha, beta)) and ``gamma, delta``
    (drop-out probability theta ~ Beta(gamma, delta)), the paper's names; likelihood eq. (5).

    The time unit, when set (``data.attrs["time_unit"]``, e.g. ``"Y"`` for annual
    opportunities), is the length of one opportunity: it converts annual discount rates.
    Predictions (the transaction-model protocol): ``probability_alive`` = P(alive at
    opportunity n+1) (eq. 11, the paper's Table 6), ``expected_purchases(data, t)`` over the
    next t opportunities (eq. 13), ``expected_purchases_new_customer(t)`` (eq. 9),
    ``purchase_count_probability(k, t)`` (eq. 8), the conditional pmf, and
    :meth:`expected_discounted_transactions` (DERT, eq. 14), which
    ``customer_lifetime_value(..., horizon=np.inf)`` uses.

    Examples
    --------
    >>> donors = load_donations()                                       # doctest: +SKIP
    >>> model = BetaGeoBetaBinom().fit(donors, weights="weights")        # doctest: +SKIP
    """

    name = "bgbb"
    label = "BG/BB"
    data_kind = "discrete"
    param_names = PARAM_NAMES
    #: the first shape of each beta: alpha_i = alpha exp(g_p'z), gamma_i = gamma exp(g_d'z) —
    #: the odds of the mean purchase (drop-out) probability are multiplied by exp(g'z)
    covariate_links = declare_links(purchase=(("alpha", 1.0),), dropout=(("gamma", 1.0),))
    citation = ("Fader, Hardie & Shang (2010), Customer-base analysis in a discrete-time "
                "noncontractual setting, Marketing Science 29(6)")
    simulator = staticmethod(simulate_bgbb)
    #: DERT discounts each opportunity's transactions at its end (eq. 14)
    dert_discounting = "period"

    def _loglik(self, p: dict[str, Any], d: Any, m: Any = NP) -> Any:
        return log_likelihood(p["alpha"], p["beta"], p["gamma"], p["delta"], d.x, d.tx, d.T,
                              m=m)

    def _loglik_grad(self, p: dict[str, Any], d: Any) -> np.ndarray:
        return log_likelihood_grad(p["alpha"], p["beta"], p["gamma"], p["delta"], d.x, d.tx,
                                   d.T)

    def _initial_params(self, d: Any) -> np.ndarray:
        return np.ones(4)

    def _probability_alive(self, p: dict[str, Any], x: Any, tx: Any, T: Any) -> np.ndarray:
        return probability_alive(p["alpha"], p["beta"], p["gamma"], p["delta"], x, tx, T)

    def _expected_purchases(self, p: dict[str, Any], x: Any, tx: Any, T: Any, t: Any
                            ) -> np.ndarray:
        return expected_purchases(p["alpha"], p["beta"], p["gamma"], p["delta"], x, tx, T, t)

    def _expected_new(self, p: dict[str, Any], t: Any) -> np.ndarray:
        return expected_purchases_new_customer(p["alpha"], p["beta"], p["gamma"], p["delta"],
                                               t)

    def _pmf(self, p: dict[str, Any], n: Any, t: Any) -> np.ndarray:
        return purchase_count_probability(p["alpha"], p["beta"], p["gamma"], p["delta"], n, t)

    def _conditional_pmf(self, p: dict[str, Any], n: Any, x: Any, tx: Any, T: Any, t: Any
                         ) -> np.ndarray:
        return conditional_purchase_count_probability(p["alpha"], p["beta"], p["gamma"],
                                                      p["delta"], n, x, tx, T, t)

    def expected_discounted_transactions(self, data: pd.DataFrame, discount_rate: float, *,
                                         time_unit: str | None = None) -> pd.Series:
        """DERT per customer (eq. 14) at an ANNUAL ``discount_rate``: the transaction at
        opportunity n+1 is discounted by one opportunity's rate, (1 + d)^(opportunity in
        years) - 1. ``time_unit`` (the opportunity's length) is needed only when the model
        does not know its own; for a rate per opportunity call the module function."""
        from clvmodels.models.contractual import period_discount_rate

        d = period_discount_rate(discount_rate, self._unit_for(time_unit))
        x, tx, T, index = self._arrays(data)
        p = self._p(data)
        out = expected_discounted_transactions(p["alpha"], p["beta"], p["gamma"], p["delta"],
                                               x, tx, T, d)
        return pd.Series(out, index=index, name="dert")


class BayesianBetaGeoBetaBinom(BayesianTransactionModel):
    """BG/BB fitted with PyMC (NUTS), optionally hierarchical across segments.

    The likelihood (eq. 5) and every prediction are this module's functions, through the
    same hooks :class:`BetaGeoBetaBinom` uses, evaluated over posterior draws; sampling,
    summaries, intervals, LOO and netCDF persistence are the shared Bayesian machinery's.

    Default priors (weakly informative, overridable with ``priors=``, saved with the model):
    ``alpha, beta, gamma, delta ~ LogNormal(0, 2)``. Hierarchical (``segment_col``): per
    segment, on unconstrained scales, the mean and concentration of each Beta distribution,
    ``logit(alpha / (alpha + beta))``, ``log(alpha + beta)``, ``logit(gamma / (gamma +
    delta))``, ``log(gamma + delta)``, each ``~ Normal(mu, sigma)`` with hyperpriors
    ``mu_logit_* ~ N(0, 1.5)``, ``mu_log_* ~ N(1, 1.5)``, ``sigma ~ HalfNormal(1)``.

    Covariates (``purchase_covariates``, ``dropout_covariates``; with or without segments):
    the MLE twin's links, ``alpha_i = alpha exp(g_p'z_i)``, ``gamma_i = gamma exp(g_d'z_i)``,
    coefficients ``Normal(0, 1)`` by default (:mod:`clvmodels.models.bayes_covariates`).
    """

    name = "bayes-bgbb"
    label = "Bayesian BG/BB"
    param_names = PARAM_NAMES
    latents = ("logit_p", "log_kappa_p", "logit_theta", "log_kappa_theta")
    _mle_class = BetaGeoBetaBinom
    factored_data = False  # the likelihood builds its padded sum from the data

    _loglik = BetaGeoBetaBinom._loglik
    _probability_alive = BetaGeoBetaBinom._probability_alive
    _expected_purchases = BetaGeoBetaBinom._expected_purchases
    _expected_new = BetaGeoBetaBinom._expected_new
    _pmf = BetaGeoBetaBinom._pmf
    _conditional_pmf = BetaGeoBetaBinom._conditional_pmf

    def _default_priors(self, rows: Any) -> dict[str, PriorSpec]:
        return {n: lognormal(0.0, 2.0) for n in PARAM_NAMES}

    def _default_mu_priors(self, rows: Any) -> dict[str, PriorSpec]:
        return {"logit_p": normal(0.0, 1.5), "log_kappa_p": normal(1.0, 1.5),
                "logit_theta": normal(0.0, 1.5), "log_kappa_theta": normal(1.0, 1.5)}

    @staticmethod
    def _natural_from_latent(u: dict[str, Any], xp: Any) -> dict[str, Any]:
        """alpha = phi kappa, beta = (1 - phi) kappa for each of the two Betas."""
        phi_p, kappa_p = xp.sigmoid(u["logit_p"]), xp.exp(u["log_kappa_p"])
        phi_t, kappa_t = xp.sigmoid(u["logit_theta"]), xp.exp(u["log_kappa_theta"])
        return {"alpha": phi_p * kappa_p, "beta": (1.0 - phi_p) * kappa_p,
                "gamma": phi_t * kappa_t, "delta": (1.0 - phi_t) * kappa_t}

    @staticmethod
    def _latent_from_natural(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        a, b, g, d = (np.asarray(p[k], dtype=float) for k in PARAM_NAMES)
        return {"logit_p": np.log(a) - np.log(b), "log_kappa_p": np.log(a + b),
                "logit_theta": np.log(g) - np.log(d), "log_kappa_theta": np.log(g + d)}
