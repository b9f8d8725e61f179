"""Numerically robust special functions in log space, vectorised with numpy broadcasting.

The buy-till-you-die models need the Gauss hypergeometric function 2F1 at arguments close
to 1 and with parameters in the thousands (BG/NBD conditional expectation, Pareto/NBD
likelihood) and Tricomi's confluent hypergeometric function U (Pareto/NBD discounted
expected residual transactions). Both overflow, underflow or silently lose accuracy in
:mod:`scipy.special` in parts of that range, so this module works with logarithms and picks,
per element, a method that is accurate there. The Pareto/NBD likelihood's tail integral, a
2F1(1, e; c; z) of positive terms, has its own series here, with an exact gradient.

Public functions (all broadcast their arguments and return ``float64`` arrays; a scalar
input gives a 0-d array):

* :func:`log1mexp`, :func:`logdiffexp` -- log(1 - e^x) and log(e^a - e^b).
* :func:`log_hyp2f1` -- log 2F1(a, b; c; z) where 2F1 > 0 (NaN where it is negative);
  :func:`log_abs_hyp2f1` -- (log|2F1|, sign); :func:`log_hyp2f1_grid` -- the same for many
  arguments per parameter set (valuation's period boundaries), much faster.
* :func:`log_expn` -- log of the generalised exponential integral E_p(z).
* :func:`log_hyperu` -- log U(a, b, z).
* :func:`log_tail_integral` -- log of the Pareto/NBD tail integral
  K(p, q; t) = int_t^inf (alpha+tau)^-p (beta+tau)^-q dtau, with its exact gradient;
  :func:`log_tail_integral_m` -- the same against a math namespace (pytensor for PyMC).

References (cited per identity below):

* [DLMF] NIST Digital Library of Mathematical Functions, https://dlmf.nist.gov
  (chapters 5, 8, 13 and 15).
* [AS] Abramowitz & Stegun (1964), Handbook of Mathematical Functions, ch. 15.
* [M12] Maechler (2012), "Accurately computing log(1 - exp(-|a|))", Rmpfr package vignette.
* [FH09] Fader & Hardie (2005), "A note on deriving the Pareto/NBD model and related
  expressions" (note 009).

How 2F1 is evaluated (:func:`log_abs_hyp2f1`), for real a, b, c and z < 1, per element:

1. z < 0 is mapped into (0, 1) by Pfaff's transformation [DLMF 15.8.1; AS 15.3.4].
2. Closed forms: z = 0, a = 0 or b = 0 give 1; c = b gives (1-z)^(-a) and c = a gives
   (1-z)^(-b) [DLMF 15.4.6].
3. A *form* is chosen: the series (a, b; c) itself or its Euler transform
   (1-z)^(c-a-b) 2F1(c-a, c-b; c; z) [DLMF 15.8.1; AS 15.3.3]. The preferred form has
   numerator parameters > -1 (its Maclaurin terms then keep one sign after the first, so
   summing them cannot cancel) and c - a - b >= 0 (its terms then decay like n^(a+b-c-1) z^n
   and it stays finite at z = 1). For the models' calls this is the "Euler trick":
   2F1(r+x, b+x; a+b+x-1; z) becomes (1-z)^(a-1-r-x) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose
   series converges in a handful of terms even at z = 1 - 1e-10 and x = 10,000, with the
   huge power kept as a logarithm.
4. Fast paths on the preferred form: (a) for z > 0.85 and parameters <= 10, the 1 - z
   connection formula [AS 15.3.6] with both series summed in plain floating point, accepted
   only if its error estimate (rounding amplified by cancellation, large when c - a - b is
   near an integer) is below 2e-10; (b) :func:`scipy.special.hyp2f1` for z <= 0.9,
   |a|, |b| <= 300 and c <= 1000, where it was found accurate to ~1e-13 against mpmath;
   results that are not finite, zero or beyond 1e+-300 are rejected.
5. The Maclaurin series [DLMF 15.2.1], in the preferred and then in the other form: in
   plain floating point (512 terms) and then in log space with signs (4096 terms), with a
   rigorous tail bound (the supremum of the term ratio over the remaining terms, from its
   critical points). A sum is accepted only if it converged and sum |t_n| / |sum t_n|
   <= 1e5 (at most ~5 digits lost to cancellation).
6. For z >= 0.5, the connection formula [AS 15.3.6] again with the series in log space:
   when |c - a - b| is large one of its terms is ~(1-z)^(c-a-b) times the other, and
   the error estimate decides as in 4(a).
7. Analytic continuation along the differential equation [DLMF 15.10.1]: the series is
   summed at a start point z0 (1 - z0 = 0.02, or 0.5 or 0.9 where that series is too long)
   together with its derivative [DLMF 15.5.1], and Taylor steps, with coefficients from
   the equation's three-term recurrence, carry log F, sign F and F'/F to z. Each step
   covers at most half the distance to the nearer singular point and a bounded number of
   e-folds of the two local solutions (so no step cancels by more than ~e^3; rejected
   steps are retried shorter). Unlike the connection formula this has no special cases when
   c - a - b is (near) an integer [AS 15.3.10-15.3.12], and moving toward the singular point
   is the stable direction for the wanted solution.
8. NaN where none of these met its accuracy test. On the domain validated against mpmath
   (see :func:`log_abs_hyp2f1`) that never happened; it does happen for z < 0 with large
   numerators and small c, where every form alternates and 2F1 is the tiny remainder of a
   huge cancellation, and for some combinations of parameters ~1e4 with c ~ 1 and
   1 - z ~ 1e-8.

scipy 1.17's ``hyp2f1`` (the Cephes algorithm for real arguments) is accurate for moderate
parameters and z <= 0.9, but returns silently wrong values (i) when c - a - b <= -1 and
c - a or c - b is large and negative -- its internal Euler transform then sums an
alternating series: hyp2f1(87.22, 8.966, 60.63, 0.9293) = 4.5e35 instead of 2.2e27, and
hyp2f1(0.121, 72.22, 36.36, 0.786) = -4.4e16 instead of 2.2e5; (ii) for z > 0.9 with
parameters above ~5 (relative errors up to 1e-7); and (iii) for z > 0.9 when c - a - b is
within ~1e-6 of an integer without being one exactly, including a rounding error away:
with a, b = 7.358, 2.993 and c = a + b (so c - a - b = -4.4e-16), hyp2f1(a, b, c,
1 - 3.95e-5) = -786.1 instead of 1751.4; with a, b = 6.862, 2.222 and c = a + b + 1 it is
NaN at z = 1 - 1.07e-10; with c - a - b = 1.4e-8 (a, b = 13.39, 0.9334) the relative error
is 1e-8. It overflows to inf where 2F1 exceeds 1e308. None of those regions reaches it here.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special as sc

__all__ = [
    "log1mexp",
    "log_abs_hyp2f1",
    "log_expn",
    "log_hyp2f1",
    "log_hyp2f1_grid",
    "log_hyperu",
    "log_tail_integral",
    "log_tail_integral_m",
    "logdiffexp",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

_LN2 = float(np.log(2.0))
_EULER_GAMMA = float(np.euler_gamma)
_TOL = 1e-17  # relative size at which series / Taylor tails are dropped
_EPS = float(np.finfo(np.float64).eps)
_MAX_ERR = 2e-10  # largest estimated relative error accepted from the connection formula

# fast-path region for scipy.special.hyp2f1 (applied to the chosen form)
_FAST_MAX_AB = 300.0
_FAST_MAX_C = 1000.0
_FAST_Z_MAX = 0.9
# region of the (self-checking) 1 - z connection formula
_CONN_Z_MIN = 0.85
_CONN_MAX_PARAM = 10.0
_CONN_MIN_INT_DIST = 0.01

# slow paths
_SERIES_BUDGET = 4096  # Maclaurin terms tried at z itself
_START_BUDGET = 65536  # Maclaurin terms allowed at the continuation's start point
_START_WS = (0.02, 0.5, 0.9)  # 1 - z0 of the continuation's start points, tried in turn
_MAX_STEPS = 1000  # continuation steps allowed per element
_TAYLOR_MAX_TERMS = 600
_MAX_COND = 1e5  # largest accepted cancellation factor sum|terms| / |sum|


# ----------------------------------------------------------------------------------------
# small log-space helpers
# ----------------------------------------------------------------------------------------


def _as_float_arrays(*args: ArrayLike) -> list[FloatArray]:
    """Broadcast the arguments against each other as float64 arrays (copies)."""
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in args))
    return [np.array(v, dtype=np.float64) for v in arrays]


def log1mexp(x: ArrayLike) -> FloatArray:
    """log(1 - exp(x)) for x <= 0, accurate near 0 and for very negative x.

    Uses log(-expm1(x)) for x > -ln 2 and log1p(-exp(x)) otherwise, the split recommended
    by [M12] (each branch avoids the cancellation of the other). Returns -inf at x = 0,
    0 at x = -inf and NaN for x > 0.
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(x > -_LN2, np.log(-np.expm1(x)), np.log1p(-np.exp(x)))
    return np.asarray(np.where(x > 0, np.nan, out), dtype=np.float64)


def logdiffexp(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """log(exp(a) - exp(b)) for a >= b, computed as a + log1mexp(b - a).

    -inf when a == b (including a = b = -inf), ``a`` when b = -inf, NaN when a < b or when
    a = b = +inf.
    """
    a_arr, b_arr = _as_float_arrays(a, b)
    with np.errstate(invalid="ignore"):
        diff = b_arr - a_arr
        out = a_arr + log1mexp(np.where(np.isnan(diff), 0.0, diff))
    out = np.where(b_arr == -np.inf, a_arr, out)
    out = np.where((a_arr == b_arr) & (a_arr < np.inf), -np.inf, out)
    out = np.where((a_arr < b_arr) | np.isnan(a_arr) | np.isnan(b_arr), np.nan, out)
    out = np.where((a_arr == np.inf) & (b_arr == np.inf), np.nan, out)
    return np.asarray(out, dtype=np.float64)


def _shrink_if_constant(*arrays: FloatArray) -> tuple[FloatArray, ...]:
    """Return length-1 views if every array is constant (parameters broadcast from scalars).

    Lets per-parameter work (gamma functions, term ratios) be done once instead of per
    element; the results broadcast back against the per-element argument.
    """
    if arrays[0].size > 1 and all(v.min() == v.max() for v in arrays):
        return tuple(v[:1] for v in arrays)
    return arrays


def _is_nonpos_int(x: FloatArray) -> BoolArray:
    """True where x is 0, -1, -2, ..."""
    return (x <= 0) & (x == np.round(x))


# ----------------------------------------------------------------------------------------
# Gauss hypergeometric function: Maclaurin series in log space
# ----------------------------------------------------------------------------------------


def _ratio_setup(a: FloatArray, b: FloatArray, c: FloatArray
                 ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Data for :func:`_ratio_sup`: the pole/zero-free index and the critical points of g.

    g(n) = (n+a)(n+b)/((n+c)(n+1)) is the ratio t_{n+1}/(z t_n) of consecutive terms of the
    series [DLMF 15.2.1]. Beyond n_free = max(-a, -b, -c, 0) it is positive and continuous,
    and its derivative has the sign of the quadratic (s2 - s1) n^2 + 2 (c - ab) n
    + (s1 c - ab s2), s1 = a+b, s2 = c+1 (d/dn of p/q for the monic quadratics p, q), whose
    real roots (NaN if none) are returned as the critical points.
    """
    s1 = a + b
    s2 = c + 1.0
    al = s2 - s1
    be = c - a * b
    ga = s1 * c - a * b * s2
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        disc = be * be - al * ga
        sq = np.where(disc >= 0, np.sqrt(disc), np.nan)
        r1 = np.where(al == 0, -ga / (2.0 * be), (-be + sq) / al)
        r2 = np.where(al == 0, np.nan, (-be - sq) / al)
    n_free = np.maximum(np.maximum(-a, -b), np.maximum(-c, 0.0))
    return n_free, r1, r2


def _ratio_sup(a: FloatArray, b: FloatArray, c: FloatArray, r1: FloatArray, r2: FloatArray,
               n: float | FloatArray) -> FloatArray:
    """sup over m >= n of g(m) (see :func:`_ratio_setup`), valid for n > n_free.

    A continuous function on [n, inf) with limit 1 attains its supremum at n, at a critical
    point, or in the limit: max(1, g(n), g(r1), g(r2)) over the critical points >= n.
    """
    def g(m: FloatArray | float) -> FloatArray:
        return np.abs((m + a) * (m + b) / ((m + c) * (m + 1.0)))

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        sup = np.maximum(1.0, g(n))
        sup = np.where(r1 >= n, np.fmax(sup, g(r1)), sup)
        sup = np.where(r2 >= n, np.fmax(sup, g(r2)), sup)
    return sup


def _peak_index(a: FloatArray, b: FloatArray, c: FloatArray, z: FloatArray) -> FloatArray:
    """Where the Maclaurin terms of 2F1 stop growing: the largest n with ratio = 1.

    The ratio z (n+a)(n+b)/((n+c)(n+1)) [DLMF 15.2.1] equals 1 at the roots of
    (1-z) n^2 + (c + 1 - z (a+b)) n + (c - z ab) = 0; 0 if there is no positive root.
    """
    qa = 1.0 - z
    qb = c + 1.0 - z * (a + b)
    qc = c - z * a * b
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        disc = qb * qb - 4.0 * qa * qc
        root = (-qb + np.sqrt(disc)) / (2.0 * qa)
    return np.where((disc >= 0) & (root > 0), root, 0.0)


class _SeriesResult:
    """Log-space Maclaurin sums: value, derivative sum and cancellation factor."""

    def __init__(self, m: int) -> None:
        self.log_abs = np.full(m, np.nan)
        self.sign = np.full(m, np.nan)
        self.log_abs_d = np.full(m, np.nan)  # log|sum n t_n|
        self.sign_d = np.full(m, np.nan)
        self.cond = np.full(m, np.nan)  # sum |t_n| / |sum t_n|
        self.converged = np.zeros(m, dtype=bool)


def _series(
    a: FloatArray, b: FloatArray, c: FloatArray, z: FloatArray, max_terms: int,
    *, deriv: bool = False,
) -> _SeriesResult:
    """Sum 2F1(a, b; c; z) = sum_n t_n, t_n = (a)_n (b)_n / ((c)_n n!) z^n [DLMF 15.2.1].

    Terms are carried as log|t_n| (cumulative sums of log|t_{n+1}/t_n|) and signs, and summed
    with a running maximum (log-sum-exp), so neither huge nor tiny values overflow. Work is
    vectorised over elements and over blocks of terms (the block doubles from 16 to 512
    terms); an element stops once the rigorous tail bound |t_N| rho / (1 - rho),
    rho = |z| sup_{n >= N} g(n) < 1 (:func:`_ratio_sup`, once N is past the zeros and poles
    of the term ratio), is below 1e-17 of the partial sum. With ``deriv`` the sum
    of n t_n (= z F'(z), [DLMF 15.5.1]) is accumulated as well and must also converge.
    """
    # parameters may come shrunk to one element (constant, _shrink_if_constant) for many z
    a, b, c, z = np.broadcast_arrays(a, b, c, z)
    m = a.size
    res = _SeriesResult(m)
    if m == 0:
        return res
    n_free, r1, r2 = _ratio_setup(a, b, c)
    log_t = np.zeros(m)  # log|t_N| of the last term summed
    sgn_t = np.ones(m)
    big = np.zeros(m)  # running scale (max log term)
    s0 = np.ones(m)  # sum t_n / exp(big)
    sabs = np.ones(m)  # sum |t_n| / exp(big)
    s1 = np.zeros(m)  # sum n t_n / exp(big)
    idx = np.arange(m)
    n0 = 0
    block = 16
    while idx.size and n0 < max_terms:
        k = n0 + np.arange(block, dtype=np.float64)[None, :]
        aa, bb, cc, zz = a[idx, None], b[idx, None], c[idx, None], z[idx, None]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ratio = (aa + k) * (bb + k) / ((cc + k) * (k + 1.0)) * zz
            lr = np.log(np.abs(ratio))
            # a terminated (polynomial) series stays terminated
            lr = np.where(np.isnan(lr), -np.inf, lr)
            logs = log_t[idx, None] + np.cumsum(lr, axis=1)
            logs = np.where(np.isnan(logs), -np.inf, logs)
            signs = sgn_t[idx, None] * np.cumprod(np.where(ratio < 0, -1.0, 1.0), axis=1)
            new_big = np.maximum(big[idx], logs.max(axis=1))
            shrink = np.exp(big[idx] - new_big)
            w = np.exp(logs - new_big[:, None])
            s0[idx] = s0[idx] * shrink + np.sum(signs * w, axis=1)
            sabs[idx] = sabs[idx] * shrink + np.sum(w, axis=1)
            if deriv:
                s1[idx] = s1[idx] * shrink + np.sum(signs * w * (k + 1.0), axis=1)
        big[idx] = new_big
        log_t[idx] = logs[:, -1]
        sgn_t[idx] = signs[:, -1]
        n_last = n0 + block
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.abs(zz[:, 0]) * _ratio_sup(aa[:, 0], bb[:, 0], cc[:, 0], r1[idx], r2[idx],
                                                float(n_last))
            log_tail = logs[:, -1] + np.log(rho) - np.log1p(-rho)
            log_sum = np.log(np.abs(s0[idx])) + new_big
            done = (rho < 1.0) & (log_tail < log_sum + np.log(_TOL)) & (n_last > n_free[idx])
            if deriv:
                # tail of sum n t_n <= |t_N| (N rho/(1-rho) + rho/(1-rho)^2)
                log_tail_d = logs[:, -1] + np.log(rho) - np.log1p(-rho) + np.log(
                    n_last + 1.0 / (1.0 - rho))
                log_sum_d = np.log(np.abs(s1[idx])) + new_big
                done &= (log_tail_d < log_sum_d + np.log(_TOL)) | (s1[idx] == 0)
            done |= logs[:, -1] == -np.inf
        res.converged[idx[done]] = True
        idx = idx[~done]
        n0 = n_last
        block = min(2 * block, 512)
    with np.errstate(divide="ignore", invalid="ignore"):
        res.log_abs = np.log(np.abs(s0)) + big
        res.sign = np.sign(s0)
        res.cond = sabs / np.abs(s0)
        if deriv:
            res.log_abs_d = np.log(np.abs(s1)) + big
            res.sign_d = np.sign(s1)
    return res


# ----------------------------------------------------------------------------------------
# Gauss hypergeometric function: analytic continuation along the ODE
# ----------------------------------------------------------------------------------------


def _step_limit(
    a: FloatArray, b: FloatArray, c: FloatArray, w: FloatArray, w_end: FloatArray,
) -> FloatArray:
    """Largest Taylor step h from z = 1 - w toward 1 - w_end (see :func:`_continue_ode`).

    h is at most half the distance to the nearer singular point (0 or 1), so the local Taylor
    series converges at least like 2^-j, and is limited by the local exponential rates of
    the two solutions, the roots lambda of z(1-z) lambda^2 + (c - (a+b+1) z) lambda - ab = 0
    (from inserting e^(lambda h) into [DLMF 15.10.1] with frozen coefficients): a solution
    decaying like e^(-|lambda| h) has alternating Taylor terms as large as e^(|lambda| h), so
    |lambda| h <= 3 for negative (or complex) roots keeps the cancellation below ~e^3; a
    growing one only costs terms, |lambda| h <= 64.
    """
    z = 1.0 - w
    p0 = z * w
    q0 = c - (a + b + 1.0) * z
    r0 = -a * b
    disc = q0 * q0 - 4.0 * p0 * r0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sq = np.sqrt(np.maximum(disc, 0.0))
        qq = -0.5 * (q0 + np.copysign(sq, q0))
        lam1 = qq / p0
        lam2 = np.where(qq != 0, r0 / qq, 0.0)
        modulus = np.sqrt(np.abs(r0) / p0)
        neg_rate = np.where(disc >= 0, np.maximum(np.maximum(-lam1, -lam2), 0.0), modulus)
        pos_rate = np.where(disc >= 0, np.maximum(np.maximum(lam1, lam2), 0.0), modulus)
        h = np.minimum(0.5 * np.minimum(w, z), np.minimum(3.0 / neg_rate, 64.0 / pos_rate))
    h = np.minimum(h, w - w_end)
    # do not leave a sliver: finish in one step if the remainder is tiny
    return np.where(w - h - w_end < 1e-3 * h, w - w_end, h)


def _count_steps(
    a: FloatArray, b: FloatArray, c: FloatArray, w_start: FloatArray, w_end: FloatArray,
    limit: int,
) -> NDArray[np.int64]:
    """Number of full-size steps from 1 - w_start to 1 - w_end (capped at limit + 1)."""
    w = w_start.copy()
    count = np.zeros(w.size, dtype=np.int64)
    act = np.flatnonzero(w > w_end)
    for _ in range(limit + 1):
        if act.size == 0:
            break
        h = _step_limit(a[act], b[act], c[act], w[act], w_end[act])
        w[act] = np.where(h == w[act] - w_end[act], w_end[act], w[act] - h)
        count[act] += 1
        act = act[w[act] > w_end[act]]
    count[act] = limit + 1
    return count


def _continue_ode(
    a: FloatArray, b: FloatArray, c: FloatArray,
    w_start: FloatArray, log_f: FloatArray, sign_f: FloatArray, q: FloatArray,
    w_end: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Continue F = 2F1(a, b; c; z) from z0 = 1 - w_start to z = 1 - w_end > z0.

    F solves z(1-z) F'' + [c - (a+b+1) z] F' - ab F = 0 [DLMF 15.10.1]. At a point z_k,
    writing F(z_k + h) = F(z_k) sum_j e_j with e_j = (F^(j)(z_k)/(j! F(z_k))) h^j, inserting
    into the equation and collecting powers of h gives the recurrence
        e_{j+2} = [(j+a)(j+b) h^2 e_j - ((1-2z_k) j + c - (a+b+1) z_k)(j+1) h e_{j+1}]
                  / (z_k (1-z_k) (j+2)(j+1)),   e_0 = 1, e_1 = q h,
    with q = F'(z_k)/F(z_k). Each step adds log|sum e_j| to log|F| and updates q from
    sum j e_j / h; the step size is :func:`_step_limit` times a per-element factor that is
    cut by 4 when a step is rejected (Taylor series not converged in 600 terms, or
    sum |e_j| / |sum e_j| > 1e3) and restored after accepted steps. Moving toward the
    singular point is the stable direction for F (errors excite the other solution, which
    is either subdominant there or has the same growth). The distance to 1 is carried as
    w = 1 - z exactly. Elements needing more than _MAX_STEPS steps are not attempted.
    Returns (log|F(z)|, sign F(z), largest accepted sum |e_j| / |sum e_j|); NaN where the
    continuation failed.
    """
    log_f = log_f.copy()
    sign_f = sign_f.copy()
    cond = np.ones(log_f.size)
    q = q.copy()
    w = w_start.copy()
    factor = np.ones(log_f.size)
    too_long = _count_steps(a, b, c, w_start, w_end, _MAX_STEPS) > _MAX_STEPS
    log_f[too_long] = np.nan
    for _ in range(4 * _MAX_STEPS):
        act = np.flatnonzero((w > w_end) & np.isfinite(log_f))
        if act.size == 0:
            break
        wk = w[act]
        zk = 1.0 - wk
        aa, bb, cc = a[act], b[act], c[act]
        h = _step_limit(aa, bb, cc, wk, w_end[act]) * factor[act]
        p0 = zk * wk
        p1 = wk - zk
        q0 = cc - (aa + bb + 1.0) * zk
        e0 = np.ones(act.size)
        e1 = q[act] * h
        val = e0 + e1
        vabs = e0 + np.abs(e1)
        dval = e1.copy()
        done = np.zeros(act.size, dtype=bool)
        small_run = np.zeros(act.size, dtype=np.int64)
        h2 = h * h
        with np.errstate(over="ignore", invalid="ignore"):
            for j in range(_TAYLOR_MAX_TERMS):
                e2 = ((j + aa) * (j + bb) * h2 * e0 - (p1 * j + q0) * (j + 1.0) * h * e1) / (
                    p0 * (j + 2.0) * (j + 1.0))
                e2 = np.where(done, 0.0, e2)
                val = val + e2
                vabs = vabs + np.abs(e2)
                dval = dval + (j + 2.0) * e2
                small = (np.abs(e2) <= _TOL * np.abs(val)) & (
                    (j + 2.0) * np.abs(e2) <= _TOL * np.abs(dval))
                small_run = np.where(small, small_run + 1, 0)
                done |= (small_run >= 2) & (j >= 2)
                if done.all():
                    break
                e0, e1 = e1, e2
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step_cond = vabs / np.abs(val)
            ok = done & np.isfinite(val) & (val != 0) & (step_cond <= 1e3)
            acc = act[ok]
            log_f[acc] += np.log(np.abs(val[ok]))
            sign_f[acc] *= np.sign(val[ok])
            q[acc] = dval[ok] / (h[ok] * val[ok])
            cond[acc] = np.maximum(cond[acc], step_cond[ok])
        w[acc] = np.where(h[ok] == wk[ok] - w_end[acc], w_end[acc], wk[ok] - h[ok])
        factor[acc] = np.minimum(1.0, 2.0 * factor[acc])
        rej = act[~ok]
        factor[rej] *= 0.25
        log_f[rej[factor[rej] < 1e-6]] = np.nan
    log_f[w > w_end] = np.nan
    return log_f, sign_f, cond


def _plain_series(
    a: FloatArray, b: FloatArray, c: FloatArray, z: FloatArray, max_terms: int,
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Maclaurin sum of 2F1(a, b; c; z) [DLMF 15.2.1] in plain floating point.

    One vectorised multiply per term, much cheaper than the log-space :func:`_series`; for
    use where no term overflows (small parameters, or a non-alternating series whose sum is
    representable -- each term is then bounded by the sum). ``a``, ``b``, ``c`` may have
    length 1 (constant parameters). Converged elements leave the working set every 16 terms;
    the convergence test is the rigorous tail bound of :func:`_series`. Returns
    (sum, sum of |terms|, converged); a sum that overflowed is inf or NaN.
    """
    m = z.size
    shared = a.size == 1 and m > 1
    n_free, r1, r2 = _ratio_setup(a, b, c)
    total = np.ones(m)
    total_abs = np.ones(m)
    conv = np.zeros(m, dtype=bool)
    idx = np.arange(m)
    term = np.ones(m)
    tot = np.ones(m)
    tot_abs = np.ones(m)
    zz = z.copy()
    aa, bb, cc, nf, q1, q2 = ((a, b, c, n_free, r1, r2) if shared
                              else tuple(v.copy() for v in (a, b, c, n_free, r1, r2)))
    absz = np.abs(zz)
    for n in range(max_terms):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ratio = (aa + n) * (bb + n) / ((cc + n) * (n + 1.0)) * zz
            term = term * ratio
            tot = tot + term
            tot_abs = tot_abs + np.abs(term)
        if n % 16 == 15 or n == max_terms - 1:
            with np.errstate(invalid="ignore", over="ignore"):
                rho = absz * _ratio_sup(aa, bb, cc, q1, q2, n + 1.0)
                done = (rho < 1.0) & (n + 1.0 > nf) & (
                    np.abs(term) * rho <= _TOL * (1.0 - rho) * np.abs(tot))
                done |= ~np.isfinite(tot) | (term == 0)
            if done.any():
                sel = idx[done]
                total[sel] = tot[done]
                total_abs[sel] = tot_abs[done]
                conv[sel] = np.isfinite(tot[done])
                keep = ~done
                idx, term, tot, tot_abs, zz, absz = (
                    v[keep] for v in (idx, term, tot, tot_abs, zz, absz))
                if not shared:
                    aa, bb, cc, nf, q1, q2 = (v[keep] for v in (aa, bb, cc, nf, q1, q2))
            if idx.size == 0:
                break
    total[idx] = tot
    total_abs[idx] = tot_abs
    return total, total_abs, conv


def _connection_near1(
    a: FloatArray, b: FloatArray, c: FloatArray, w: FloatArray, *, log_space: bool = False,
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """log|2F1(a, b; c; 1-w)| and sign by the 1 - z connection formula, with a validity flag.

    2F1(a,b;c;z) = G(c)G(c-a-b)/(G(c-a)G(c-b)) 2F1(a, b; a+b-c+1; 1-z)
                 + (1-z)^(c-a-b) G(c)G(a+b-c)/(G(a)G(b)) 2F1(c-a, c-b; c-a-b+1; 1-z)
    [AS 15.3.6; DLMF 15.8.4], for c - a - b not an integer; the two terms are combined in
    log space. With ``log_space=False`` the series are summed in plain floating point (for
    small parameters and w <= 1/4, ~20-35 terms); with ``log_space=True`` by :func:`_series`
    (large parameters, e.g. |c - a - b| in the thousands, where one term is ~w^(c-a-b) times
    the other). The flag is False where a series did not converge or where the estimated
    relative error exceeds 2e-10 (or 64 ulps of log|F|, if larger) -- rounding of the
    log-gamma values and of the series,
    amplified by cancellation between the two terms (c - a - b near an integer, or
    |a| (1-z) large): those elements are recomputed by the other methods.
    """
    a, b, c = _shrink_if_constant(a, b, c)
    d = c - a - b
    if log_space:
        r1 = _series(a, b, 1.0 - d, w, _START_BUDGET)
        r2 = _series(c - a, c - b, 1.0 + d, w, _START_BUDGET)
        ls1, sg_s1, cond1, ok1 = r1.log_abs, r1.sign, r1.cond, r1.converged
        ls2, sg_s2, cond2, ok2 = r2.log_abs, r2.sign, r2.cond, r2.converged
    else:
        s1, s1_abs, ok1 = _plain_series(a, b, 1.0 - d, w, 200)
        s2, s2_abs, ok2 = _plain_series(c - a, c - b, 1.0 + d, w, 200)
        with np.errstate(divide="ignore", invalid="ignore"):
            ls1, sg_s1, cond1 = np.log(np.abs(s1)), np.sign(s1), s1_abs / np.abs(s1)
            ls2, sg_s2, cond2 = np.log(np.abs(s2)), np.sign(s2), s2_abs / np.abs(s2)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lg = {k: sc.gammaln(v) for k, v in
              (("c", c), ("d", d), ("-d", -d), ("c-a", c - a), ("c-b", c - b), ("a", a),
               ("b", b))}
        sg = {k: sc.gammasgn(v) for k, v in
              (("c", c), ("d", d), ("-d", -d), ("c-a", c - a), ("c-b", c - b), ("a", a),
               ("b", b))}
        d_log_w = d * np.log(w)
        lg1 = lg["c"] + lg["d"] - lg["c-a"] - lg["c-b"]
        sg1 = sg["c"] * sg["d"] * sg["c-a"] * sg["c-b"]
        lg2 = lg["c"] + lg["-d"] - lg["a"] - lg["b"] + d_log_w
        sg2 = sg["c"] * sg["-d"] * sg["a"] * sg["b"]
        l1 = lg1 + ls1
        l2 = lg2 + ls2
        top = np.maximum(l1, l2)
        t1 = sg1 * sg_s1 * np.exp(l1 - top)
        t2 = sg2 * sg_s2 * np.exp(l2 - top)
        val = t1 + t2
        log_abs = top + np.log(np.abs(val))
        # error estimate: each log-gamma carries an absolute error ~eps |log Gamma|, each
        # series a relative error ~eps * (its cancellation); the sum of the two terms
        # amplifies both by |t1| + |t2| over |t1 + t2|
        mag1 = np.abs(lg["c"]) + np.abs(lg["d"]) + np.abs(lg["c-a"]) + np.abs(lg["c-b"]) + cond1
        mag2 = (np.abs(lg["c"]) + np.abs(lg["-d"]) + np.abs(lg["a"]) + np.abs(lg["b"])
                + np.abs(d_log_w) + cond2)
        err = 4.0 * _EPS * (np.abs(t1) * mag1 + np.abs(t2) * mag2) / np.abs(val)
    # accept 2e-10, or a few hundred ulps of log|F| itself where that is larger (|log F| in
    # the tens of thousands cannot be represented more accurately anyway)
    ok = ok1 & ok2 & np.isfinite(log_abs) & (err <= np.maximum(_MAX_ERR, 64 * _EPS * np.abs(
        log_abs)))
    return log_abs, np.sign(val), ok


# ----------------------------------------------------------------------------------------
# Gauss hypergeometric function: public entry points
# ----------------------------------------------------------------------------------------


class _Forms:
    """The direct form (a, b; c) and its Euler transform (c-a, c-b; c) [DLMF 15.8.1].

    ``fa, fb, pref`` is the preferred form and the log of its prefactor, ``oa, ob, opref``
    the other one; see item 3 of the module docstring for the preference.
    """

    def __init__(self, a: FloatArray, b: FloatArray, c: FloatArray, log_w: FloatArray,
                 c_pole: BoolArray) -> None:
        d = c - a - b
        ca, cb = c - a, c - b
        poly_d = _is_nonpos_int(a) | _is_nonpos_int(b)
        poly_e = (_is_nonpos_int(ca) | _is_nonpos_int(cb)) & ~c_pole
        good_d = (a > -1) & (b > -1)
        good_e = (ca > -1) & (cb > -1)
        score_d = 4 * poly_d + 2 * good_d + (d >= 0)
        score_e = 4 * poly_e + 2 * good_e + (d < 0)
        use_e = (score_e > score_d) & ~c_pole
        with np.errstate(invalid="ignore"):
            d_log_w = d * log_w
        self.d = d
        self.fa = np.where(use_e, ca, a)
        self.fb = np.where(use_e, cb, b)
        self.fd = np.where(use_e, -d, d)
        self.pref = np.where(use_e, d_log_w, 0.0)
        self.good = np.where(use_e, good_e, good_d)
        self.poly = np.where(use_e, poly_e, poly_d)
        self.oa = np.where(use_e, a, ca)
        self.ob = np.where(use_e, b, cb)
        self.opref = np.where(use_e, 0.0, d_log_w)
        # the Euler form of a terminating series whose c is a pole is not defined
        self.other_ok = ~c_pole
        self.any_param_pole = poly_d | _is_nonpos_int(ca) | _is_nonpos_int(cb)


def _hyp2f1_core(
    a: FloatArray, b: FloatArray, c: FloatArray, z: FloatArray, w: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """log|2F1(a, b; c; z)| and its sign for 1-D arrays with 0 <= z <= 1, w = 1 - z."""
    n = a.size
    out_log = np.full(n, np.nan)
    out_sign = np.full(n, np.nan)
    finite = np.isfinite(a) & np.isfinite(b) & np.isfinite(c)
    todo = finite & (z >= 0) & (z < 1) & (w > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_w = np.log(w)
        # z = 1: Gauss's sum G(c)G(c-a-b)/(G(c-a)G(c-b)) for c - a - b > 0 [DLMF 15.4.20]
        at1 = finite & ((z == 1) | (w == 0)) & (c - a - b > 0) & ~_is_nonpos_int(c)
        if at1.any():
            a1, b1, c1 = a[at1], b[at1], c[at1]
            out_log[at1] = (sc.gammaln(c1) + sc.gammaln(c1 - a1 - b1) - sc.gammaln(c1 - a1)
                            - sc.gammaln(c1 - b1))
            out_sign[at1] = sc.gammasgn(c1) * sc.gammasgn(c1 - a1) * sc.gammasgn(c1 - b1)

    # 2F1 = 1 at z = 0 or when a numerator parameter is 0 [DLMF 15.2.1]
    one = todo & ((z == 0) | (a == 0) | (b == 0))
    out_log[one], out_sign[one] = 0.0, 1.0
    todo &= ~one
    # 2F1(a, b; b; z) = (1 - z)^(-a) [DLMF 15.4.6], and symmetrically in a, b
    cb = todo & (c == b)
    out_log[cb], out_sign[cb] = -a[cb] * log_w[cb], 1.0
    ca = todo & (c == a) & ~cb
    out_log[ca], out_sign[ca] = -b[ca] * log_w[ca], 1.0
    todo &= ~(cb | ca)
    # c = 0, -1, -2, ...: undefined unless the series terminates first [DLMF 15.2.1]
    c_pole = _is_nonpos_int(c)
    terminates_first = (_is_nonpos_int(a) & (a >= c)) | (_is_nonpos_int(b) & (b >= c))
    todo &= ~(c_pole & ~terminates_first)
    if not todo.any():
        return out_log, out_sign

    forms = _Forms(a, b, c, log_w, c_pole)
    fa, fb, fd, pref = forms.fa, forms.fb, forms.fd, forms.pref

    # 1. fast paths on the preferred form
    big_ab = np.maximum(np.abs(fa), np.abs(fb))
    base = todo & forms.good & ~forms.poly & (c > 0) & (fd >= 0)
    # 1a. 1 - z connection formula for small parameters near z = 1 (checks itself)
    conn = (base & (z > _CONN_Z_MIN) & (big_ab <= _CONN_MAX_PARAM) & (c <= _CONN_MAX_PARAM)
            & (np.abs(fd - np.round(fd)) >= _CONN_MIN_INT_DIST))
    if conn.any():
        sel = np.flatnonzero(conn)
        lv, sv, ok = _connection_near1(fa[sel], fb[sel], c[sel], w[sel])
        _store(out_log, out_sign, todo, sel[ok], lv[ok] + pref[sel[ok]], sv[ok])
    # 1b. scipy, where it was found accurate
    fast = todo & base & (z <= _FAST_Z_MAX) & (big_ab <= _FAST_MAX_AB) & (c <= _FAST_MAX_C)
    if fast.any():
        sel = np.flatnonzero(fast)
        val = sc.hyp2f1(fa[sel], fb[sel], c[sel], z[sel])
        absval = np.abs(val)
        ok = np.isfinite(val) & (absval > 1e-300) & (absval < 1e300)
        with np.errstate(divide="ignore"):
            _store(out_log, out_sign, todo, sel[ok], np.log(absval[ok]) + pref[sel[ok]],
                   np.sign(val[ok]))

    # 2.-4. the slower methods, on the remaining elements only
    rest = np.flatnonzero(todo)
    if rest.size:
        out_log[rest], out_sign[rest] = _hyp2f1_slow(a[rest], b[rest], c[rest], z[rest],
                                                     w[rest], c_pole[rest])
    return out_log, out_sign


def _hyp2f1_slow(
    a: FloatArray, b: FloatArray, c: FloatArray, z: FloatArray, w: FloatArray,
    c_pole: BoolArray,
) -> tuple[FloatArray, FloatArray]:
    """Items 5-8 of the module docstring for elements the fast paths did not settle."""
    n = a.size
    out_log = np.full(n, np.nan)
    out_sign = np.full(n, np.nan)
    todo = np.ones(n, dtype=bool)
    log_w = np.log(w)
    forms = _Forms(a, b, c, log_w, c_pole)

    # 2. Maclaurin series at z, first in the preferred form, then in the other one; plain
    #    floating point where the sum is representable, else in log space. A result is
    #    kept only if the series converged and cancelled by at most _MAX_COND.
    for fa_, fb_, pref_, allowed in ((forms.fa, forms.fb, forms.pref, np.ones(n, dtype=bool)),
                                     (forms.oa, forms.ob, forms.opref, forms.other_ok)):
        # skip series that cannot converge within the budget: beyond its peak the n-th term
        # behaves like n^(a+b-c-1) z^n [DLMF 15.2.1 with 5.11.12]
        d_f = c - fa_ - fb_
        with np.errstate(over="ignore", divide="ignore"):
            n_needed = np.minimum(10.0 ** (17.0 / (np.maximum(d_f, 0.0) + 1.0)), 39.0 / w)
        allowed = allowed & (n_needed <= 4 * _SERIES_BUDGET)
        idx = np.flatnonzero(todo & allowed)
        if idx.size:
            tot, tot_abs, conv = _plain_series(fa_[idx], fb_[idx], c[idx], z[idx], 512)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                ok = (conv & (np.abs(tot) > 1e-300) & (tot_abs < 1e300)
                      & (tot_abs <= _MAX_COND * np.abs(tot)))
                _store(out_log, out_sign, todo, idx[ok],
                       np.log(np.abs(tot[ok])) + pref_[idx[ok]], np.sign(tot[ok]))
        idx = np.flatnonzero(todo & allowed)
        if idx.size:
            res = _series(fa_[idx], fb_[idx], c[idx], z[idx], _SERIES_BUDGET)
            ok = res.converged & np.isfinite(res.log_abs) & (res.cond <= _MAX_COND)
            _store(out_log, out_sign, todo, idx[ok], res.log_abs[ok] + pref_[idx[ok]],
                   res.sign[ok])
        # a series whose terms rise to a late peak but then fall at least like n^-21
        # (c - a - b >= 20) is worth a longer budget
        long = todo & allowed & (d_f >= 20) & (
            _peak_index(fa_, fb_, c, z) <= _START_BUDGET / 2)
        idx = np.flatnonzero(long)
        if idx.size:
            res = _series(fa_[idx], fb_[idx], c[idx], z[idx], _START_BUDGET)
            ok = res.converged & np.isfinite(res.log_abs) & (res.cond <= _MAX_COND)
            _store(out_log, out_sign, todo, idx[ok], res.log_abs[ok] + pref_[idx[ok]],
                   res.sign[ok])

    # 3. the 1 - z connection formula in log space (large |c - a - b| near z = 1)
    d = forms.d
    idx = np.flatnonzero(todo & (z >= 0.5) & (np.abs(d - np.round(d)) > 1e-6)
                         & ~forms.any_param_pole)
    if idx.size:
        lv, sv, ok = _connection_near1(a[idx], b[idx], c[idx], w[idx], log_space=True)
        _store(out_log, out_sign, todo, idx[ok], lv[ok], sv[ok])

    # 4. series at a start point z0, then analytic continuation along the ODE; the form
    #    with c - a - b >= 0 (finite at z = 1) first
    first = forms.fd >= 0
    ode_forms = [
        (np.where(first, forms.fa, forms.oa), np.where(first, forms.fb, forms.ob),
         np.where(first, forms.pref, forms.opref), np.ones(n, dtype=bool)),
        (np.where(first, forms.oa, forms.fa), np.where(first, forms.ob, forms.fb),
         np.where(first, forms.opref, forms.pref), forms.other_ok),
    ]
    for (fa_, fb_, pref_, allowed), w_min in itertools.product(ode_forms, _START_WS):
        # start near 1 (cheap continuation); where the series there has too many terms
        # (large parameters), start further from 1 and take more, shorter steps
        idx = np.flatnonzero(todo & allowed)
        if idx.size == 0:
            continue
        w_start = np.maximum(w[idx], w_min)
        z_start = 1.0 - w_start
        res = _series(fa_[idx], fb_[idx], c[idx], z_start, _START_BUDGET, deriv=True)
        ok = res.converged & np.isfinite(res.log_abs) & (res.cond <= _MAX_COND)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            q = res.sign * res.sign_d * np.exp(res.log_abs_d - res.log_abs) / z_start
        q = np.where(res.sign_d == 0, 0.0, q)
        log_f = np.where(ok, res.log_abs, np.nan)
        log_f, sign_f, cond = _continue_ode(fa_[idx], fb_[idx], c[idx], w_start, log_f,
                                            res.sign, q, w[idx])
        ok = np.isfinite(log_f) & (cond <= _MAX_COND)
        _store(out_log, out_sign, todo, idx[ok], log_f[ok] + pref_[idx[ok]], sign_f[ok])
    return out_log, out_sign


def _store(out_log: FloatArray, out_sign: FloatArray, todo: BoolArray, sel: NDArray[np.intp],
           log_abs: FloatArray, sign: FloatArray) -> None:
    """Write results for the elements ``sel`` and mark them done."""
    out_log[sel] = log_abs
    out_sign[sel] = sign
    todo[sel] = False


def log_abs_hyp2f1(
    a: ArrayLike, b: ArrayLike, c: ArrayLike, z: ArrayLike, *, zc: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:
    """log|2F1(a, b; c; z)| and the sign of 2F1, for real a, b, c and z < 1.

    Parameters
    ----------
    a, b, c, z
        Broadcastable real arrays. c must not be 0, -1, -2, ... (unless the series
        terminates first because a or b is a non-positive integer not below c).
    zc
        Optional 1 - z, computed accurately by the caller (for instance
        (alpha+T)/(alpha+T+t) rather than 1 - t/(alpha+T+t)). Where z is within 1e-10 of 1
        the value of 2F1 depends on 1 - z to relative precision, so passing it avoids the
        rounding of z. When given it is used wherever 1 - z enters.

    Returns
    -------
    (log_abs, sign)
        float64 arrays of the broadcast shape; sign is +1, -1 (or 0 with log_abs = -inf).
        NaN where the function is undefined (c a pole; z > 1; z = 1 unless c - a - b > 0,
        where Gauss's sum [DLMF 15.4.20] is returned; NaN input) or where no method met
        its accuracy test (module docstring, item 8).

    The method per element is described in the module docstring: Pfaff's transformation
    for z < 0 [DLMF 15.8.1], closed forms [DLMF 15.4.6], the Euler transformation
    [DLMF 15.8.1], the 1 - z connection formula [AS 15.3.6], scipy where it is reliable,
    the Maclaurin series [DLMF 15.2.1] and Taylor continuation along the differential
    equation [DLMF 15.10.1].

    Validated against mpmath at 50 digits (tests/test_special.py, plus ~10^4 random
    points): the error of log|2F1|, i.e. the relative error of 2F1, stayed below 1e-10
    (below 64 ulps of log|2F1| where |log 2F1| > 1e4) for the models' regimes -- BG/NBD
    with x <= 10^4, T and t <= 10^4, alpha >= 1e-6, a < 1 or a + b - 1 < 1 included,
    c - a - b integer, 1 - z down to 1e-10; Pareto/NBD with x <= 10^4, s <= 50 (integers
    included), z <= 0.999999 -- and for a, b in [0.01, 100], c in [0.01, 200], 1 - z down
    to 1e-10. For a, b up to 2e4 with c small and 1 - z ~ 1e-8 a few elements in a
    thousand come back NaN (never wrong).
    """
    if zc is None:
        a_, b_, c_, z_ = _as_float_arrays(a, b, c, z)
        with np.errstate(invalid="ignore"):
            w_ = 1.0 - z_
    else:
        a_, b_, c_, z_, w_ = _as_float_arrays(a, b, c, z, zc)
    shape = a_.shape
    a_, b_, c_, z_, w_ = (v.ravel() for v in (a_, b_, c_, z_, w_))
    pre = np.zeros(a_.size)
    neg = z_ < 0
    if neg.any():
        # Pfaff: 2F1(a,b;c;z) = (1-z)^(-a) 2F1(a, c-b; c; z/(z-1)) [DLMF 15.8.1]; keep the
        # numerator that leaves the new pair's numerators > -1 when possible
        keep_a = (c_ - b_ > -1) | ~(c_ - a_ > -1)
        wn = w_[neg]
        pre[neg] = -np.where(keep_a[neg], a_[neg], b_[neg]) * np.log(wn)
        new_b = np.where(keep_a, c_ - b_, b_)
        new_a = np.where(keep_a, a_, c_ - a_)
        a_ = np.where(neg, new_a, a_)
        b_ = np.where(neg, new_b, b_)
        z_ = np.where(neg, -z_ / np.where(neg, w_, 1.0), z_)  # z/(z-1) in (0, 1)
        w_ = np.where(neg, 1.0 / np.where(neg, w_, 1.0), w_)  # 1 - z/(z-1) = 1/(1-z)
    log_abs, sign = _hyp2f1_core(a_, b_, c_, z_, w_)
    return (log_abs + pre).reshape(shape), sign.reshape(shape)


def log_hyp2f1(
    a: ArrayLike, b: ArrayLike, c: ArrayLike, z: ArrayLike, *, zc: ArrayLike | None = None,
) -> FloatArray:
    """log 2F1(a, b; c; z) for real a, b, c and z < 1, where 2F1 > 0.

    Returns NaN where 2F1 < 0 (use :func:`log_abs_hyp2f1` for the sign), -inf where it is
    0, and NaN where it is undefined. See :func:`log_abs_hyp2f1` for ``zc``, the methods
    and the validated domain. In the models' uses (BG/NBD E[X(t)] and E[Y(t)|...],
    Pareto/NBD likelihood) 2F1 is positive.
    """
    log_abs, sign = log_abs_hyp2f1(a, b, c, z, zc=zc)
    out = np.where(sign > 0, log_abs, np.where(sign == 0, -np.inf, np.nan))
    return np.asarray(out, dtype=np.float64)


#: below this many values log_hyp2f1_grid uses log_hyp2f1 directly (no compiled kernel)
GRID_MIN_CELLS = 20_000


def log_hyp2f1_grid(a: ArrayLike, b: ArrayLike, c: ArrayLike, z: ArrayLike, *,
                    min_cells: int = GRID_MIN_CELLS) -> FloatArray:
    """log 2F1(a, b; c; z) when a, b, c are the same along the last axis of z.

    ``a, b, c`` broadcast to ``z.shape[:-1] + (1,)``; ``z`` has shape ``(..., K)`` — e.g. the
    K period boundaries of a valuation, z_k = t_k / (alpha + T + t_k). Equal to
    :func:`log_hyp2f1` (to ~1e-13); faster where a, b, c > 0 and 0 <= z < 1, because one
    power series per band of arguments serves all K of them
    (:mod:`clvmodels.models._hyp2f1_path`, compiled with numba); every other element, and
    everything when numba is missing or there are fewer than ``min_cells`` values, goes to
    :func:`log_hyp2f1`.
    """
    z_ = np.asarray(z, dtype=np.float64)
    if z_.ndim == 0 or z_.size < min_cells:
        return log_hyp2f1(a, b, c, z_)
    lead = z_.shape[:-1]
    params = [np.broadcast_to(np.asarray(v, dtype=np.float64), (*lead, 1)) for v in (a, b, c)]
    try:
        from clvmodels.models._hyp2f1_path import hyp2f1_path
    except ImportError:  # pragma: no cover - numba comes with PyMC's pytensor
        return log_hyp2f1(*params, z_)
    k = z_.shape[-1]
    flat = [np.ascontiguousarray(v.reshape(-1)) for v in params]
    zf = np.ascontiguousarray(z_.reshape(-1, k))
    out = np.empty(zf.shape)
    ok = np.empty(zf.shape, dtype=np.bool_)
    hyp2f1_path(*flat, zf, out, ok)
    if not ok.all():
        rows, cols = np.nonzero(~ok)
        out[rows, cols] = log_hyp2f1(*(v[rows] for v in flat), zf[rows, cols])
    return out.reshape(z_.shape)


# ----------------------------------------------------------------------------------------
# generalised exponential integral and Tricomi's U
# ----------------------------------------------------------------------------------------


# zeta(k) for k = 2..60, for the series of log Gamma(1 + e) [DLMF 5.7.3]
_ZETA = sc.zeta(np.arange(2.0, 61.0), 1.0)


def _lgamma1p_over(e: FloatArray) -> FloatArray:
    """log Gamma(1 + e) / e for |e| <= 1/2, as -gamma + sum_k (-1)^k zeta(k) e^(k-1) / k.

    [DLMF 5.7.3]; the series is summed directly, so the result keeps full relative accuracy
    as e -> 0 (where log Gamma(1 + e) / e -> -gamma).
    """
    k = np.arange(2.0, 61.0)
    terms = ((-1.0) ** k * _ZETA / k)[None, :] * e[:, None] ** (k - 1.0)[None, :]
    return -_EULER_GAMMA + terms[:, ::-1].sum(axis=1)


def _log_expn_series(p: FloatArray, z: FloatArray) -> FloatArray:
    """log E_p(z) for 0 < z <= 1 from the ascending series.

    For p not a positive integer [DLMF 8.19.10]:
        E_p(z) = z^(p-1) Gamma(1-p) - sum_{k>=0} (-z)^k / (k! (1-p+k)).
    Near p = n = 1, 2, ... the first term and the k = n-1 term of the sum both have poles;
    with e = n - p their combination is, by the reflection formula [DLMF 5.5.3],
        T = (-1)^(n-1) z^(n-1)/(n-1)! * expm1(e g) / e,
        g = -ln z + log Gamma(1+e)/e - sum_{j=1}^{n-1} log1p(-e/j)/e,
    which is smooth in e and reduces at e = 0 to (-z)^(n-1)/(n-1)! (psi(n) - ln z), the
    integer case [DLMF 8.19.8]. The remaining terms are alternating with |z| <= 1 and
    below 1e-18 after 20 terms.
    """
    n_int = np.round(p)
    eps = n_int - p
    # beyond n = 170 both members of the singular pair are below 1e-300 / |e|: dropped
    near = (n_int >= 1) & (n_int <= 170) & (np.abs(eps) <= 0.25)
    drop = (n_int > 170) & (np.abs(eps) <= 0.25)
    lz = np.log(z)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # the regular terms; z^k/k! < 1e-18 from k = 20 on, and no kept denominator
        # |1-p+k| is below 1/4
        rest = np.zeros_like(p)
        power = np.ones_like(p)  # (-z)^k / k!
        for k in range(24):
            if k:
                power = power * (-z / k)
            rest -= np.where(near & (n_int - 1.0 == k), 0.0, power / (1.0 - p + k))
        # the singular pair
        out = np.empty_like(p)
        far = ~near
        out[far] = rest[far] + np.where(
            drop[far], 0.0,
            sc.gammasgn(1.0 - p[far]) * np.exp((p[far] - 1.0) * lz[far] + sc.gammaln(1.0 - p[far])))
        if near.any():
            nn, ee, lzn = n_int[near], eps[near], lz[near]
            jmax = int(nn.max())
            j = np.arange(1.0, max(jmax, 2), dtype=np.float64)[None, :]
            lp = np.where(j < nn[:, None], np.log1p(-ee[:, None] / j), 0.0)
            safe_e = np.where(ee == 0, 1.0, ee)
            harm = np.where(ee == 0, np.sum(np.where(j < nn[:, None], 1.0 / j, 0.0), axis=1),
                            -np.sum(lp, axis=1) / safe_e)
            g = -lzn + _lgamma1p_over(ee) + harm
            factor = np.where(ee == 0, g, np.expm1(ee * g) / safe_e)
            pair = (-1.0) ** (nn - 1.0) * np.exp((nn - 1.0) * lzn - sc.gammaln(nn)) * factor
            out[near] = rest[near] + pair
    return np.log(out)


def _log_expn_cf(p: FloatArray, z: FloatArray) -> FloatArray:
    """log(e^z E_p(z)) for z >= 1 from Legendre's continued fraction.

    Gamma(a, z) = z^a e^(-z) / (z + (1-a)/(1 + 1/(z + (2-a)/(1 + 2/(z + ...))))) [DLMF 8.9.2]
    with E_p(z) = z^(p-1) Gamma(1-p, z) [DLMF 8.19.1], in its even contraction
    e^z E_p(z) = 1/(z+p - 1*p/(z+p+2 - 2(p+1)/(z+p+4 - ...))) (Press et al., Numerical
    Recipes, section 6.3), evaluated by the modified Lentz method. It converges for all z > 0
    and quickly for z >= 1. The factor e^(-z) is left out so that log U(a, a, z) does not
    suffer the cancellation z - z.
    """
    tiny = 1e-300
    bcoef = z + p
    cval = np.full_like(z, 1.0 / tiny)
    dval = 1.0 / bcoef
    hval = dval.copy()
    active = np.ones(z.size, dtype=bool)
    for i in range(1, 5000):
        an = -i * (p + i - 1.0)
        bcoef = bcoef + 2.0
        dval = an * dval + bcoef
        dval = np.where(np.abs(dval) < tiny, tiny, dval)
        cval = bcoef + an / cval
        cval = np.where(np.abs(cval) < tiny, tiny, cval)
        dval = 1.0 / dval
        delta = cval * dval
        hval = np.where(active, hval * delta, hval)
        active &= np.abs(delta - 1.0) > 1e-16
        if not active.any():
            break
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(active, np.nan, np.log(hval))


def log_expn(p: ArrayLike, z: ArrayLike) -> FloatArray:
    """log of the generalised exponential integral E_p(z) = int_1^inf e^(-zt) t^(-p) dt.

    [DLMF 8.19.3] For real p and z > 0: the ascending series for z <= 1 (with the poles at
    positive integer p cancelled analytically, see :func:`_log_expn_series`) and Legendre's
    continued fraction for z > 1 [DLMF 8.9.2, 8.19.1]. At z = 0: E_p(0) = 1/(p-1) for p > 1
    [DLMF 8.19.6], +inf otherwise. NaN for z < 0.
    """
    p_, z_ = _as_float_arrays(p, z)
    shape = p_.shape
    p_, z_ = p_.ravel(), z_.ravel()
    out = np.full(p_.size, np.nan)
    small = (z_ > 0) & (z_ <= 1.0) & np.isfinite(p_)
    large = (z_ > 1.0) & np.isfinite(p_) & np.isfinite(z_)
    if small.any():
        out[small] = _log_expn_series(p_[small], z_[small])
    if large.any():
        out[large] = _log_expn_cf(p_[large], z_[large]) - z_[large]
    zero = (z_ == 0) & np.isfinite(p_)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[zero] = np.where(p_[zero] > 1, -np.log(p_[zero] - 1.0), np.inf)
    out[z_ == np.inf] = -np.inf
    return out.reshape(shape)


def _log_u_equal(a: FloatArray, z: FloatArray) -> FloatArray:
    """log U(a, a, z) = z + (1-a) ln z + log E_a(z) for z > 0.

    By Kummer's transformation U(a, b, z) = z^(1-b) U(a-b+1, 2-b, z) [DLMF 13.2.40],
    U(a, a, z) = z^(1-a) U(1, 2-a, z), and by the integral representation [DLMF 13.4.4]
    U(1, 2-a, z) = int_0^inf e^(-zt) (1+t)^(-a) dt = e^z E_a(z) [DLMF 8.19.3]; equivalently
    U(a, a, z) = e^z Gamma(1-a, z) [DLMF 8.19.1]. Valid for every real a (integers included).
    """
    out = np.empty_like(a)
    small = z <= 1.0
    if small.any():
        out[small] = (z[small] + (1.0 - a[small]) * np.log(z[small])
                      + _log_expn_series(a[small], z[small]))
    large = ~small
    if large.any():
        out[large] = (1.0 - a[large]) * np.log(z[large]) + _log_expn_cf(a[large], z[large])
    return out


def _log_u_quadrature(a: FloatArray, b: FloatArray, z: FloatArray) -> FloatArray:
    """log U(a, b, z) for a > 0, z > 0 by quadrature of [DLMF 13.4.4].

    U(a, b, z) = 1/Gamma(a) int_0^inf e^(-zt) t^(a-1) (1+t)^(b-a-1) dt. With t = e^v the
    integrand is exp(phi(v)), phi(v) = a v - z e^v + (b-a-1) log(1 + e^v), which is unimodal
    (phi'' changes sign at most once, phi' -> a > 0 and -> -inf). Its maximum v* is found by
    bisection, v = v* + s sinh(u) with s = 1/sqrt(-phi''(v*)) makes both tails decay
    double-exponentially, and the trapezoidal rule in u is summed in log space. The rule
    converges exponentially in the number of nodes: starting from 160 nodes, the count is
    doubled (up to 5120) until two successive values agree to 1e-9, after which the finer
    one is accurate to ~1e-14. NaN where that does not happen.
    """
    bm = b - a - 1.0

    def dphi(v: FloatArray) -> FloatArray:
        return a - z * np.exp(v) + bm * sc.expit(v)

    with np.errstate(divide="ignore"):
        lo = np.minimum(np.log(a / (2.0 * z)), np.log(a / (2.0 * np.abs(bm)))) - 1.0
    hi = np.log((a + np.abs(bm) + 1.0) / z) + 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        pos = dphi(mid) > 0
        lo = np.where(pos, mid, lo)
        hi = np.where(pos, hi, mid)
        if np.all(hi - lo <= 1e-12 * np.maximum(1.0, np.abs(mid))):
            break
    vstar = 0.5 * (lo + hi)
    sig = sc.expit(vstar)
    curv = z * np.exp(vstar) - bm * sig * (1.0 - sig)
    scale = np.minimum(1.0 / np.sqrt(np.maximum(curv, 1e-3)), 50.0)
    # the left tail decays like e^(a v): reach a*L >= 60 below the peak; z e^v >= 60 above
    left = 60.0 / a
    right = np.log(60.0 / z + 1.0) - vstar + 5.0
    umax = np.arcsinh(np.maximum(left, np.maximum(right, 1.0)) / scale) + 0.5

    def trap(idx: NDArray[np.intp], m: int) -> FloatArray:
        u = np.linspace(-1.0, 1.0, 2 * m + 1)[None, :] * umax[idx, None]
        v = vstar[idx, None] + scale[idx, None] * np.sinh(u)
        with np.errstate(over="ignore"):
            logf = (a[idx, None] * v - z[idx, None] * np.exp(v)
                    + bm[idx, None] * np.logaddexp(0.0, v)
                    + np.log(scale[idx, None] * np.cosh(u)))
        top = logf.max(axis=1)
        return top + np.log(np.sum(np.exp(logf - top[:, None]), axis=1) * (umax[idx] / m))

    out = np.full(a.size, np.nan)
    idx = np.arange(a.size)
    prev = trap(idx, 80)
    nodes = 160
    while idx.size and nodes <= 5120:
        cur = trap(idx, nodes)
        ok = np.abs(cur - prev) <= 1e-9
        out[idx[ok]] = cur[ok]
        idx, prev = idx[~ok], cur[~ok]
        nodes *= 2
    return out - sc.gammaln(a)


def log_hyperu(a: ArrayLike, b: ArrayLike, z: ArrayLike) -> FloatArray:
    """log of Tricomi's confluent hypergeometric function U(a, b, z) for z > 0.

    * b = a (the Pareto/NBD DERT case U(s, s; delta(beta+T))): through the generalised
      exponential integral, U(a, a, z) = e^z z^(1-a) E_a(z) (see :func:`_log_u_equal`),
      valid for every real a, integers included.
    * b = a + 1: U(a, a+1, z) = z^(-a) (from [DLMF 13.4.4] for a > 0 and Kummer's
      transformation [DLMF 13.2.40] in general).
    * otherwise, for a > 0: quadrature of the integral representation [DLMF 13.4.4]
      (:func:`_log_u_quadrature`); for a <= 0 with a - b + 1 > 0 first Kummer's
      transformation U(a, b, z) = z^(1-b) U(a-b+1, 2-b, z) [DLMF 13.2.40].

    Returns NaN for z <= 0 and for a <= 0 with a - b + 1 <= 0 (where U can be negative or a
    polynomial; not needed by the models). Against mpmath at 50 digits the error of log U
    (the relative error of U) was below 6e-14 for b = a in (0, 50] (integers and
    near-integers included) and z in [1e-4, 200], and for a in [0.01, 60], b in [-10, 60],
    z in [1e-3, 100] (tests/test_special.py and ~1,800 random points).
    """
    a_, b_, z_ = _as_float_arrays(a, b, z)
    shape = a_.shape
    a_, b_, z_ = a_.ravel(), b_.ravel(), z_.ravel()
    out = np.full(a_.size, np.nan)
    ok = np.isfinite(a_) & np.isfinite(b_) & np.isfinite(z_) & (z_ > 0)
    eq = ok & (b_ == a_)
    if eq.any():
        out[eq] = _log_u_equal(a_[eq], z_[eq])
    plus1 = ok & ~eq & (b_ == a_ + 1.0)
    out[plus1] = -a_[plus1] * np.log(z_[plus1])
    rest = ok & ~eq & ~plus1
    kummer = rest & (a_ <= 0) & (a_ - b_ + 1.0 > 0)
    pref = np.zeros(a_.size)
    pref[kummer] = (1.0 - b_[kummer]) * np.log(z_[kummer])
    aa = np.where(kummer, a_ - b_ + 1.0, a_)
    bb = np.where(kummer, 2.0 - b_, b_)
    quad = rest & (aa > 0)
    if quad.any():
        out[quad] = _log_u_quadrature(aa[quad], bb[quad], z_[quad]) + pref[quad]
    return out.reshape(shape)


# ----------------------------------------------------------------------------------------
# the Pareto/NBD tail integral K(p, q; t) = int_t^inf (alpha+tau)^-p (beta+tau)^-q dtau
# ----------------------------------------------------------------------------------------
#
# The Pareto/NBD likelihood is written (see clvmodels.models.paretonbd) as two positive terms
# (r+x) K(r+x+1, s; T) + s K(r+x, s+1; t_x), with nothing to cancel. With M = max(alpha, beta),
# m = min(alpha, beta), e the exponent on M's factor, g the one on m's, c = p + q and
# z = (M - m)/(M + t), Fader & Hardie's note 009 (eqs. 22-23) after Euler's transformation
# (DLMF 15.8.1) gives K = (M+t)^-e (m+t)^(1-g) 2F1(1, e; c; z) / (c-1), a series of positive
# terms each at most z times the previous one; beyond z = 0.9 the integral is split and its
# near part computed by a binomial series and Gauss-Legendre panels. Every piece is
# differentiated exactly (term by term / under the integral sign) for the gradient.


#: largest z = (M - m)/(M + t) summed by the 2F1(1, e; c; z) series directly
_Z_SERIES = 0.9
_Y_SPLIT = 1.0 - _Z_SERIES
#: low-end binomial series in y runs up to y = _KAPPA / |c - 2| (|ratio| <= 0.25, no cancellation)
_KAPPA = 0.25
_BINOMIAL_TERMS = 32
_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)
#: panel edges: levels (drops of the log integrand) of the (1-y)^(c-2) and y^(1-g) factors
_CUT_LEVELS = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 24.0, 32.0, 40.0])
_POW_LEVELS = np.array([0.5, 1.5, 3.5, 7.5, 15.5, 23.5, 31.5, 40.0, 50.0])
_CUT_END = 50.0  # (1-y)^(c-2) below e^-50 of its value at the panel start is dropped


def _log_exprel(x: np.ndarray) -> np.ndarray:
    """log((e^x - 1)/x), finite for all real x (0 at x = 0)."""
    big = x > 0.5
    xb = np.where(big, x, 1.0)
    xs = np.where(big, 0.5, x)
    return np.where(big, xb + np.log(-np.expm1(-xb)) - np.log(xb),
                    np.log(sc.exprel(xs)))


def _dlog_exprel(x: np.ndarray) -> np.ndarray:
    """d/dx log((e^x - 1)/x) = 1/(1 - e^-x) - 1/x (Taylor series for |x| < 0.1)."""
    small = np.abs(x) < 0.1
    xs = np.where(small, x, 0.0)
    x2 = xs * xs
    taylor = 0.5 + xs * (1.0 / 12.0 + x2 * (-1.0 / 720.0 + x2 * (1.0 / 30240.0
                                                                 - x2 / 1209600.0)))
    xl = np.where(small, 1.0, x)
    with np.errstate(over="ignore"):
        general = np.where(xl > 0, 1.0 / -np.expm1(-np.abs(xl)),
                           np.exp(np.minimum(xl, 0.0)) / np.expm1(np.minimum(xl, -1e-300)))
    return np.where(small, taylor, general - 1.0 / xl)


def _flat(*args: Any) -> tuple[tuple[int, ...], list[np.ndarray]]:
    """Broadcast to a common shape; return that shape and flat float copies."""
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in args))
    return arrays[0].shape, [np.array(v, dtype=float).ravel() for v in arrays]


def _hyp_series(e: np.ndarray, c: np.ndarray, z: np.ndarray, grad: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_hyp_series_numpy` by the compiled kernel of :mod:`._pnbd_kernels` (equal to
    it but for rounding; ~10x faster) when numba imports, else by the numpy loop itself."""
    try:
        from clvmodels.models._pnbd_kernels import hyp_series
    except ImportError:  # pragma: no cover - numba comes with PyMC's pytensor
        return _hyp_series_numpy(e, c, z, grad)
    out = np.empty((4, e.size))
    flat = [np.ascontiguousarray(v, dtype=np.float64).reshape(-1) for v in (e, c, z)]
    hyp_series(*flat, grad, *out)
    return out[0], out[1], out[2], out[3]


def _hyp_series_numpy(e: np.ndarray, c: np.ndarray, z: np.ndarray, grad: bool
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """S = 2F1(1, e; c; z) = sum_k t_k, t_k = (e)_k/(c)_k z^k, for 0 <= z < 1, 0 < e < c.

    Returns log S and, with ``grad``, (dS/de)/S, (dS/dc)/S and (sum_k k t_k)/S = z S'(z)/S.
    The term ratio z (e+k)/(c+k) is below z and S >= 1, so N terms with z^(N+1)/(1-z) below
    1e-17 leave a negligible tail. The parameter derivatives accumulate
    d log t_k/de = sum_{j<k} 1/(e+j) and d log t_k/dc = -sum_{j<k} 1/(c+j). Rows are put in
    decreasing order of N (a radix sort of small integers), so the rows still summing at
    term k are a prefix and each row costs only its own N terms, without copies.
    """
    n = e.size
    with np.errstate(divide="ignore", invalid="ignore"):
        # z <= 0.9, so 1/(1-z) <= 10 is absorbed into the tolerance
        need = np.ceil(math.log(0.1 * _TOL) / np.log(z))
    need = np.where(z > 0, need, 0.0).astype(np.int16)
    order = np.argsort(-need, kind="stable")
    neg_sorted = -need[order]  # ascending
    e_k, c_k, zs = e[order], c[order], z[order]
    t, s = np.ones(n), np.ones(n)
    tmp = np.empty(n)
    if grad:
        a, b, se, sc, sk = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    for k in range(int(need.max(initial=0))):
        m = int(np.searchsorted(neg_sorted, -k, side="left"))  # rows with N > k
        w = tmp[:m]
        tt = t[:m]
        np.divide(e_k[:m], c_k[:m], out=w)
        np.multiply(w, zs[:m], out=w)
        np.multiply(tt, w, out=tt)              # t_{k+1}
        s[:m] += tt
        if grad:
            np.reciprocal(e_k[:m], out=w)
            a[:m] += w                          # sum_{j<=k} 1/(e+j)
            np.reciprocal(c_k[:m], out=w)
            b[:m] += w                          # sum_{j<=k} 1/(c+j)
            np.multiply(tt, a[:m], out=w)
            se[:m] += w
            np.multiply(tt, b[:m], out=w)
            sc[:m] += w
            np.multiply(tt, k + 1.0, out=w)
            sk[:m] += w
        e_k[:m] += 1.0
        c_k[:m] += 1.0
    log_s = np.empty(n)
    log_s[order] = np.log(s)
    if not grad:
        return log_s, np.zeros(n), np.zeros(n), np.zeros(n)
    out = np.empty((3, n))
    out[:, order] = np.stack([se, -sc, sk]) / s
    return log_s, out[0], out[1], out[2]


def _log_tail_beta(g: np.ndarray, c: np.ndarray, y0: np.ndarray, grad: bool
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log J, J = int_{y0}^1 y^-g (1-y)^(c-2) dy, for 0 < y0 < 0.1, g > 0, c > max(1, g).

    Returns log J and, with ``grad``, (dJ/dg)/J and (dJ/dc)/J (partials at fixed y0).
    J is split into three positive parts (derivatives are integrals of the integrand's
    derivatives over the same parts, so the split points do not enter them):

    * [0.1, 1]: J = 0.9^(c-1) 0.1^(1-g) 2F1(1, c-g; c; 0.9)/(c-1) (:func:`_hyp_series`);
    * [y0, ya], ya = min(0.1, 1/(4|c-2|)): (1-y)^(c-2) = sum_j (2-c)_j/j! y^j (|ratio| <=
      1/4, so no cancellation), each term integrated exactly:
      int y^(j-g) dy = y0^eps L exprel(eps L), eps = j+1-g, L = ln(ya/y0);
    * [ya, 0.1]: Gauss-Legendre (16 nodes) in ln y on panels whose edges are where
      (1-y)^(c-2) has dropped by e^-{0.5, 1, 2, ..., 40} from the panel start and, for g > 1,
      where y^(1-g) has; the integrand is dropped beyond a fall of e^-50.
    """
    n = g.size
    e = c - g
    # far part [Y, 1]
    ls, s_e, s_c, _ = _hyp_series(e, c, np.full(n, _Z_SERIES), grad)
    parts = [(c - 1.0) * math.log(_Z_SERIES) + (1.0 - g) * math.log(_Y_SPLIT)
             - np.log(c - 1.0) + ls]
    d_g = [-math.log(_Y_SPLIT) - s_e]
    d_c = [math.log(_Z_SERIES) - 1.0 / (c - 1.0) + s_e + s_c]
    # low end [y0, ya]: binomial series integrated exactly
    cm2 = c - 2.0
    with np.errstate(divide="ignore"):
        y2 = np.where(cm2 == 0, np.inf, _KAPPA / np.abs(cm2))
    ya = np.minimum(y2, _Y_SPLIT)
    low = y0 < ya
    ly0 = np.log(y0)
    span = np.where(low, np.log(np.where(low, ya, 1.0)) - ly0, 1.0)
    lspan = np.log(span)
    coef, dcoef = np.ones(n), np.zeros(n)
    acc, acc_g, acc_c = np.zeros(n), np.zeros(n), np.zeros(n)
    log_i0 = (1.0 - g) * ly0 + lspan + _log_exprel((1.0 - g) * span)
    for j in range(_BINOMIAL_TERMS):
        eps = j + 1.0 - g
        ratio = np.exp(eps * ly0 + lspan + _log_exprel(eps * span) - log_i0)
        acc += coef * ratio
        if grad:
            acc_g -= coef * ratio * (ly0 + span * _dlog_exprel(eps * span))
            acc_c += dcoef * ratio
        dcoef = (dcoef * (j - cm2) - coef) / (j + 1.0)
        coef = coef * (j - cm2) / (j + 1.0)
    safe = np.where(low, acc, 1.0)
    parts.append(np.where(low, log_i0 + np.log(safe), -np.inf))
    d_g.append(np.where(low, acc_g / safe, 0.0))
    d_c.append(np.where(low, acc_c / safe, 0.0))
    # middle [max(y0, ya), 0.1]: Gauss-Legendre panels at explicit levels
    left = np.maximum(y0, ya)
    pos = cm2 > 0
    cpos = np.where(pos, cm2, 1.0)
    level0 = -cpos * np.log1p(-left)
    right = np.where(pos, np.minimum(_Y_SPLIT, -np.expm1(-(level0 + _CUT_END) / cpos)),
                     _Y_SPLIT)
    mid = left < right
    if mid.any():
        i = np.nonzero(mid)[0]
        gi, ci, cp = g[i], c[i], cpos[i]
        el, er = np.log(left[i]), np.log(right[i])
        cut = np.log(-np.expm1(-(level0[i, None] + _CUT_LEVELS) / cp[:, None]))
        steep = gi[:, None] > 1.0
        pw = np.where(steep, el[:, None] + _POW_LEVELS / np.where(steep, gi[:, None] - 1.0, 1.0),
                      er[:, None])
        edges = np.sort(np.clip(np.concatenate([el[:, None], cut, pw, er[:, None]], axis=1),
                                el[:, None], er[:, None]), axis=1)
        centre = 0.5 * (edges[:, 1:] + edges[:, :-1])
        half = 0.5 * (edges[:, 1:] - edges[:, :-1])
        eta = (centre[:, :, None] + half[:, :, None] * _GL_X).reshape(len(i), -1)
        with np.errstate(divide="ignore"):
            lw = np.log((half[:, :, None] * _GL_W).reshape(len(i), -1))
        l1 = np.log1p(-np.exp(eta))
        ell = (1.0 - gi[:, None]) * eta + (ci[:, None] - 2.0) * l1 + lw
        top = ell.max(axis=1)
        wts = np.exp(ell - top[:, None])
        tot = wts.sum(axis=1)
        lm, gm, cmid = np.full(n, -np.inf), np.zeros(n), np.zeros(n)
        lm[i] = top + np.log(tot)
        if grad:
            gm[i] = -(wts * eta).sum(axis=1) / tot
            cmid[i] = (wts * l1).sum(axis=1) / tot
        parts.append(lm)
        d_g.append(gm)
        d_c.append(cmid)
    stacked = np.array(parts)
    top = stacked.max(axis=0)
    w = np.exp(stacked - top)
    tot = w.sum(axis=0)
    log_j = top + np.log(tot)
    if not grad:
        return log_j, np.zeros(n), np.zeros(n)
    w /= tot
    return log_j, (w * np.array(d_g)).sum(axis=0), (w * np.array(d_c)).sum(axis=0)


def _tail_core(e: np.ndarray, g: np.ndarray, big: Any, small: Any, t: np.ndarray,
               grad: bool) -> tuple[np.ndarray, ...]:
    """log K and its partials w.r.t. (e, g, M, m) on flat arrays (M, m may be scalars)."""
    c = e + g
    n = e.size
    bt, st = big + t, small + t
    diff = np.broadcast_to(big - small, (n,))
    z = diff / bt
    out = np.empty(n)
    d_e, d_g, d_big, d_small = (np.empty(n) for _ in range(4))
    ser = z <= _Z_SERIES
    everything = bool(ser.all())
    sel: Any = slice(None) if everything else np.nonzero(ser)[0]
    if everything or ser.any():
        es, cs, zs, gs, bts, sts = e[sel], c[sel], z[sel], g[sel], bt[sel], st[sel]
        lbt, lst = np.log(bts), np.log(sts)
        ls, s_e, s_c, s_k = _hyp_series(es, cs, zs, grad)
        out[sel] = -es * lbt + (1.0 - gs) * lst - np.log(cs - 1.0) + ls
        if grad:
            s_z = np.where(zs > 0, s_k / np.where(zs > 0, zs, 1.0), es / cs)  # S'(z)/S
            inv_c1 = 1.0 / (cs - 1.0)
            d_e[sel] = -lbt - inv_c1 + s_e + s_c
            d_g[sel] = -lst - inv_c1 + s_c
            d_big[sel] = -es / bts + s_z * sts / bts**2
            d_small[sel] = (1.0 - gs) / sts - s_z / bts
    if not everything:
        i = np.nonzero(~ser)[0]
        y0 = st[i] / bt[i]
        log_j, j_g, j_c = _log_tail_beta(g[i], c[i], y0, grad)
        ld = np.log(diff[i])
        out[i] = (1.0 - c[i]) * ld + log_j
        if grad:
            dc = j_c - ld
            d_e[i] = dc
            d_g[i] = j_g + dc
            j_y = -np.exp(-g[i] * np.log(y0) + (c[i] - 2.0) * np.log1p(-y0) - log_j)
            d_big[i] = (1.0 - c[i]) / diff[i] - j_y * y0 / bt[i]
            d_small[i] = (c[i] - 1.0) / diff[i] + j_y / bt[i]
    return out, d_e, d_g, d_big, d_small


def log_tail_integral(p: Any, q: Any, alpha: Any, beta: Any, t: Any, *, grad: bool = False
                      ) -> Any:
    """log K(p, q; t) = log int_t^inf (alpha+tau)^-p (beta+tau)^-q dtau, for p + q > 1.

    The building block (*) of :mod:`clvmodels.models.paretonbd`'s likelihood. With
    M = max(alpha, beta), m = min(alpha, beta), e (g) the exponent on M's (m's) factor,
    c = p + q and z = (M - m)/(M + t):

        K = (M+t)^-e (m+t)^(1-g) 2F1(1, e; c; z) / (c-1),

    (note 009, eq. 22-23, after Euler's transformation, DLMF 15.8.1) summed as a positive
    series for z <= 0.9 and, beyond, as (M - m)^(1-c) int_{y0}^1 y^-g (1-y)^(c-2) dy with
    y0 = (m+t)/(M+t) (:func:`_log_tail_beta`). alpha >= beta and alpha < beta are chosen
    elementwise. With ``grad`` also returns d log K / d(p, q, alpha, beta), shape
    ``(4,) + shape``, exact (term-by-term derivatives; no finite differences).
    """
    if np.ndim(alpha) == 0 and np.ndim(beta) == 0:
        # one parameter set (maximum likelihood): the branch is the same for every row
        alpha, beta = float(alpha), float(beta)
        swap = alpha < beta
        shape, (p, q, t) = _flat(p, q, t)
        e, g = (q, p) if swap else (p, q)
        out, d_e, d_g, d_big, d_small = _tail_core(e, g, max(alpha, beta), min(alpha, beta),
                                                   t, grad)
        if not grad:
            return out.reshape(shape)
        parts = (d_g, d_e, d_small, d_big) if swap else (d_e, d_g, d_big, d_small)
        return out.reshape(shape), np.stack(parts).reshape((4, *shape))
    shape, (p, q, alpha, beta, t) = _flat(p, q, alpha, beta, t)
    swap = alpha < beta
    out, d_e, d_g, d_big, d_small = _tail_core(
        np.where(swap, q, p), np.where(swap, p, q), np.where(swap, beta, alpha),
        np.where(swap, alpha, beta), t, grad)
    if not grad:
        return out.reshape(shape)
    gradient = np.stack([np.where(swap, d_g, d_e), np.where(swap, d_e, d_g),
                         np.where(swap, d_small, d_big), np.where(swap, d_big, d_small)])
    return out.reshape(shape), gradient.reshape((4, *shape))


def log_tail_integral_m(p: Any, q: Any, alpha: Any, beta: Any, t: Any, m: Any) -> Any:
    """:func:`log_tail_integral` written against a math namespace ``m`` (see
    :mod:`clvmodels.models._math`): the numpy series for the numpy namespace, and otherwise
    (pytensor, for PyMC) the same closed form with ``m.hyp2f1`` — which pytensor
    differentiates, including with respect to its parameters — in place of the series.

    The constant 1 is passed as a float64: as a Python float pytensor makes it float32, and
    its rewrite that drops the unused gradient of hyp2f1's first parameter then fails
    (logged as an error).
    """
    if getattr(m, "name", None) == "numpy":
        return log_tail_integral(p, q, alpha, beta, t)
    swap = alpha < beta
    big = m.where(swap, beta, alpha)
    small = m.where(swap, alpha, beta)
    e = m.where(swap, q, p)
    g = m.where(swap, p, q)
    c = p + q
    z = (big - small) / (big + t)
    return (-e * m.log(big + t) + (1.0 - g) * m.log(small + t) - m.log(c - 1.0)
            + m.log(m.hyp2f1(np.float64(1.0), e, c, z)))
