"""Compiled kernel: log 2F1(a, b; c; z_k) at many arguments z_k for the same (a, b, c).

Used by :func:`clvmodels.models._special.log_hyp2f1_grid` (imported on first use, because it
needs numba — installed with PyMC's pytensor). Valuation evaluates the BG/NBD conditional
expectation at every period boundary t_1 < ... < t_K for the same parameters, i.e. 2F1 at
K arguments z_k = t_k / (alpha + T + t_k); one power series per *band* of arguments serves
all of them, instead of K independent evaluations.

Method, for a, b, c > 0 and 0 <= z < 1 (every Taylor coefficient of 2F1 about any point of
[0, 1) is then positive):

* band 0, z <= 1/2: the Maclaurin series [DLMF 15.2.1], which also gives F and F' at 1/2;
* band j >= 1, centre z_j = 1 - 2^-j (1/2, 3/4, 7/8, ...), arguments in (z_j, z_j +
  2^-(j+1)]: the Taylor series about z_j, its coefficients from the three-term recurrence of the
  hypergeometric differential equation [DLMF 15.10.1],

      z0 (1 - z0) (n+1)(n+2) c_{n+2}
          = (n+a)(n+b) c_n - (n+1) ((1 - 2 z0) n + c - (a+b+1) z0) c_{n+1},

  started from c_0 = F(z_j), c_1 = F'(z_j); the same series evaluated at z_{j+1} carries F
  and F' to the next centre. Each argument lies within half the convergence radius
  (1 - z_j for z_j >= 1/2), and for z0 >= 1/2 the wanted solution dominates the recurrence
  (its characteristic roots are 1/(1 - z0) and -1/z0), so the recursion is stable. Only
  forward steps (h > 0) are taken: every term is then positive and the sums cannot cancel
  (a backward step from 1/2 to 0.3 cancels ~7 digits when x ~ 20);
* F is kept as a logarithm plus a factor rescaled at every centre, so no overflow;
* the coefficients of each band depend on (a, b, c) only, so they are kept while consecutive
  rows share (a, b, c) — valuation's rows are sorted by (draw, x, T), and every T of the
  same draw and x shares them — and each argument then costs one Horner evaluation. A band's
  series is truncated where its terms at the band's farthest argument fall below 1e-17 of
  the sum; nearer arguments converge faster.

A result is flagged (``ok = False``) — and the caller evaluates it with the general
:func:`~clvmodels.models._special.log_hyp2f1` instead — when a parameter is not positive,
z is outside [0, 1 - 2^-14], a series needs more than :data:`MAX_TERMS` terms (large
parameters: the terms grow before they decay) or a value is not finite.
"""

from __future__ import annotations

import math

import numba
import numpy as np

MAX_TERMS = 400
MAX_BAND = 13  # centres up to 1 - 2^-13; arguments up to 1 - 2^-14
_TOL = 1e-17


@numba.njit(cache=True, nogil=True)
def _band(z: float) -> int:
    if z <= 0.5:
        return 0
    j = 1
    while j <= MAX_BAND and z > 1.0 - 0.5 ** (j + 1):
        j += 1
    return j


@numba.njit(cache=True, nogil=True)
def _build_band(j: int, a: float, b: float, c: float, coef: np.ndarray, ncoef: np.ndarray,
                log_f: np.ndarray, ratio: np.ndarray, inv_nn: np.ndarray
                ) -> bool:  # pragma: no cover - compiled
    """Coefficients of band j; sets log F and F'/F at the next centre. False if it failed."""
    if j == 0:  # Maclaurin: a_(n+1) = a_n (a+n)(b+n) / ((c+n)(n+1)), converged at z = 1/2
        h = 0.5
        coef[0, 0] = 1.0
        term, pw, total, deriv = 1.0, 1.0, 1.0, 0.0
        for n in range(MAX_TERMS):
            term *= (a + n) * (b + n) / ((c + n) * (n + 1.0))
            coef[0, n + 1] = term
            dt = (n + 1.0) * term * pw
            pw *= h
            t = term * pw
            total += t
            deriv += dt
            if n > 1 and t <= _TOL * total and dt <= _TOL * deriv:
                if not (math.isfinite(total) and math.isfinite(deriv) and total > 0):
                    return False
                ncoef[0] = n + 2
                log_f[1] = math.log(total)
                ratio[1] = deriv / total
                return True
        return False
    # Taylor about z0 = 1 - 2^-j, F(z0) scaled to 1, converged at h = 2^-(j+1)
    z0 = 1.0 - 0.5 ** j
    h = 0.5 ** (j + 1)
    p1 = 1.0 - 2.0 * z0
    q0 = c - (a + b + 1.0) * z0
    inv_p0 = 1.0 / (z0 * (1.0 - z0))
    c_prev, c_cur = 1.0, ratio[j]
    coef[j, 0], coef[j, 1] = 1.0, c_cur
    total, deriv, pw = 1.0 + c_cur * h, c_cur, h
    for n in range(MAX_TERMS):
        c_new = ((n + a) * (n + b) * c_prev
                 - (n + 1.0) * (p1 * n + q0) * c_cur) * (inv_p0 * inv_nn[n])
        coef[j, n + 2] = c_new
        dt = (n + 2.0) * c_new * pw
        pw *= h
        t = c_new * pw
        total += t
        deriv += dt
        c_prev, c_cur = c_cur, c_new
        if n > 1 and abs(t) <= _TOL * total and abs(dt) <= _TOL * deriv:
            if not (math.isfinite(total) and math.isfinite(deriv) and total > 0):
                return False
            ncoef[j] = n + 3
            if j < MAX_BAND:
                log_f[j + 1] = log_f[j] + math.log(total)
                ratio[j + 1] = deriv / total
            return True
    return False


@numba.njit(cache=True, nogil=True)
def hyp2f1_path(a: np.ndarray, b: np.ndarray, c: np.ndarray, z: np.ndarray,
                out: np.ndarray, ok: np.ndarray) -> None:  # pragma: no cover - compiled
    """out[m, k] = log 2F1(a[m], b[m]; c[m]; z[m, k]); ok[m, k] False where not computed."""
    n_rows, n_k = z.shape
    n_band = MAX_BAND + 1
    coef = np.empty((n_band, MAX_TERMS + 3))
    ncoef = np.zeros(n_band, dtype=np.int64)
    log_f = np.zeros(n_band + 1)  # log F at each centre (band 0: F(0) = 1)
    ratio = np.zeros(n_band + 1)  # F'/F at each centre
    inv_nn = 1.0 / ((np.arange(MAX_TERMS) + 1.0) * (np.arange(MAX_TERMS) + 2.0))
    bands = np.empty(n_k, dtype=np.int64)
    pick = np.empty(n_k, dtype=np.int64)
    hv = np.empty(n_k)
    vals = np.empty(n_k)
    ca, cb, cc = math.nan, math.nan, math.nan  # the cached (a, b, c)
    built = -1  # bands 0..built hold coefficients for (ca, cb, cc)
    failed = n_band  # first band that could not be built for them
    for m in range(n_rows):
        A, B, C = a[m], b[m], c[m]
        if not (A == ca and B == cb and C == cc):
            ca, cb, cc = A, B, C
            built, failed = -1, n_band
        good = A > 0.0 and B > 0.0 and C > 0.0
        top = -1
        for k in range(n_k):
            zk = z[m, k]
            if good and zk >= 0.0 and zk <= 1.0 - 0.5 ** (MAX_BAND + 1):
                bands[k] = _band(zk)
                top = max(top, bands[k])
            else:
                bands[k] = -1
        while built < top and built + 1 < failed:
            if _build_band(built + 1, A, B, C, coef, ncoef, log_f, ratio, inv_nn):
                built += 1
            else:
                failed = built + 1
        for k in range(n_k):
            ok[m, k] = False
        # Horner, the arguments of one band side by side (independent chains)
        for j in range(min(top, built) + 1):
            npt = 0
            for k in range(n_k):
                if bands[k] == j:
                    pick[npt] = k
                    hv[npt] = z[m, k] - (1.0 - 0.5 ** j if j > 0 else 0.0)
                    npt += 1
            if npt == 0:
                continue
            n = ncoef[j]
            for q in range(npt):
                vals[q] = coef[j, n - 1]
            for i in range(n - 2, -1, -1):
                ci = coef[j, i]
                for q in range(npt):
                    vals[q] = vals[q] * hv[q] + ci
            for q in range(npt):
                if vals[q] > 0 and math.isfinite(vals[q]):
                    out[m, pick[q]] = log_f[j] + math.log(vals[q])
                    ok[m, pick[q]] = True
