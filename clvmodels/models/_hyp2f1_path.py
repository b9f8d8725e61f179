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
* F is kept as a logarithm plus a factor rescaled at every centre, so no overflow.

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
def hyp2f1_path(a: np.ndarray, b: np.ndarray, c: np.ndarray, z: np.ndarray,
                out: np.ndarray, ok: np.ndarray) -> None:  # pragma: no cover - compiled
    """out[m, k] = log 2F1(a[m], b[m]; c[m]; z[m, k]); ok[m, k] False where not computed."""
    n_rows, n_k = z.shape
    hs = np.empty(n_k + 1)
    acc = np.empty(n_k + 1)
    pw = np.empty(n_k + 1)
    bands = np.empty(n_k, dtype=np.int64)
    inv_nn = 1.0 / ((np.arange(MAX_TERMS) + 1.0) * (np.arange(MAX_TERMS) + 2.0))
    for m in range(n_rows):
        A, B, C = a[m], b[m], c[m]
        top = -1
        good = A > 0.0 and B > 0.0 and C > 0.0
        for k in range(n_k):
            zk = z[m, k]
            if not (zk >= 0.0 and zk <= 1.0 - 0.5 ** (MAX_BAND + 1)) or not good:
                bands[k] = -1
                ok[m, k] = False
                continue
            bands[k] = _band(zk)
            ok[m, k] = True
            if bands[k] > top:
                top = bands[k]
        if top < 0:
            continue
        # ---- band 0: Maclaurin series, at its arguments and (when needed) at 1/2 ----------
        npt = 0
        for k in range(n_k):
            if bands[k] == 0:
                hs[npt] = z[m, k]
                npt += 1
        need_next = top >= 1
        if need_next:
            hs[npt] = 0.5
        n_eval = npt + (1 if need_next else 0)
        for i in range(n_eval):
            acc[i] = 1.0
            pw[i] = 1.0
        d_next = 0.0  # F'(1/2)
        term = 1.0  # the coefficient (a)_n (b)_n / ((c)_n n!)
        converged = False
        for n in range(MAX_TERMS):
            term *= (A + n) * (B + n) / ((C + n) * (n + 1.0))
            small = True
            for i in range(n_eval):
                if i == npt:  # F'(1/2) = sum (n+1) a_(n+1) z^n: the power before the update
                    dt = (n + 1.0) * term * pw[i]
                    d_next += dt
                    small = small and dt <= _TOL * d_next
                pw[i] *= hs[i]
                t = term * pw[i]
                acc[i] += t
                small = small and t <= _TOL * acc[i]
            if small and n > 1:
                converged = True
                break
        if not converged or not math.isfinite(acc[n_eval - 1] + d_next):
            for k in range(n_k):
                ok[m, k] = False
            continue
        i = 0
        for k in range(n_k):
            if bands[k] == 0:
                out[m, k] = math.log(acc[i])
                i += 1
        if not need_next:
            continue
        log_f = math.log(acc[npt])  # log F at the centre
        ratio = d_next / acc[npt]  # F'/F at the centre
        # ---- bands 1..top: Taylor series about z_j = 1 - 2^-j ------------------------------
        for j in range(1, top + 1):
            z0 = 1.0 - 0.5 ** j
            npt = 0
            for k in range(n_k):
                if bands[k] == j:
                    hs[npt] = z[m, k] - z0
                    npt += 1
            need_next = j < top
            if need_next:
                hs[npt] = 0.5 ** (j + 1)  # the next centre
            n_eval = npt + (1 if need_next else 0)
            p0 = z0 * (1.0 - z0)
            p1 = 1.0 - 2.0 * z0
            q0 = C - (A + B + 1.0) * z0
            c_prev, c_cur = 1.0, ratio  # c_0, c_1 with F(z0) scaled to 1
            for i in range(n_eval):
                acc[i] = 1.0 + c_cur * hs[i]
                pw[i] = hs[i]
            d_next = c_cur  # derivative at the next centre: sum n c_n h^(n-1)
            converged = False
            inv_p0 = 1.0 / p0
            for n in range(MAX_TERMS):
                c_new = ((n + A) * (n + B) * c_prev
                         - (n + 1.0) * (p1 * n + q0) * c_cur) * (inv_p0 * inv_nn[n])
                small = True
                for i in range(n_eval):  # h > 0 and c_n > 0: every term is positive
                    if i == npt:
                        dt = (n + 2.0) * c_new * pw[i]
                        d_next += dt
                        small = small and dt <= _TOL * d_next
                    pw[i] *= hs[i]
                    t = c_new * pw[i]
                    acc[i] += t
                    small = small and t <= _TOL * acc[i]
                c_prev, c_cur = c_cur, c_new
                if small and n > 1:
                    converged = True
                    break
            if not converged:
                break
            i = 0
            for k in range(n_k):
                if bands[k] == j:
                    out[m, k] = log_f + math.log(acc[i]) if acc[i] > 0 else math.nan
                    i += 1
            if need_next:
                f_next = acc[npt]
                if not (f_next > 0 and math.isfinite(f_next) and math.isfinite(d_next)):
                    converged = False
                    break
                log_f += math.log(f_next)
                ratio = d_next / f_next
        if not converged:
            for k in range(n_k):
                if bands[k] >= 1:
                    ok[m, k] = False
        for k in range(n_k):
            if ok[m, k] and not math.isfinite(out[m, k]):
                ok[m, k] = False
