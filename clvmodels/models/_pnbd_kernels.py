"""Compiled kernel: the Pareto/NBD tail-integral series 2F1(1, e; c; z) with its gradient.

Used by :func:`clvmodels.models._special._hyp_series` (imported on first use, because it needs
numba — installed with PyMC's pytensor); the numpy loop there is the reference it must equal.
The Pareto/NBD likelihood (Fader & Hardie note 009, eqs. 22-23, in the two-positive-term form
of :mod:`clvmodels.models.paretonbd`) needs, per distinct (x, t) pair,

    S = 2F1(1, e; c; z) = sum_k a_k z^k,   a_k = (e)_k / (c)_k       [DLMF 15.2.1]

with e = r + x + 1 or r + x (or s, s + 1 when alpha < beta), c = r + s + x + 1 and
z = (M - m)/(M + t), together with (dS/de)/S, (dS/dc)/S and (sum_k k a_k z^k)/S. Every term
is positive and a_{k+1}/a_k = (e+k)/(c+k) < 1 for e < c, so N terms with z^N <= 1e-18
leave a negligible tail (the same N as the reference).

What makes it cheap: the coefficients depend on (e, c) only — on x and the shared r, s, not
on the customer's times nor on the covariate pattern's alpha_i, beta_i — so they are built
once per run of consecutive elements with the same (e, c) (the likelihood's rows are sorted
by x), in tables

    A0_k = a_k,  A1_k = a_k sum_{j<k} 1/(e+j),  A2_k = a_k sum_{j<k} 1/(c+j),  A3_k = k a_k

(d log a_k / de and -d log a_k / dc are the harmonic-type sums), and each element then costs
N multiply-adds per sum and no division. Two table sets are kept, so rows alternating
between two (e, c) — alpha_i < beta_i for some covariate patterns and not for others — do
not rebuild them. The sums run in increasing k like the reference; they differ from it only
by rounding (each term is a product of the same factors in another order: relative
differences of a few 1e-16 per term, all terms positive).
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: z <= 0.9 needs at most ceil(log(1e-18) / log(0.9)) = 394 terms
MAX_TERMS = 400
_LOG_TOL = math.log(0.1 * 1e-17)  # the reference's stopping rule, to the last bit


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _fill(tab: np.ndarray, slot: int, e: float, c: float, start: int, stop: int,
          state: np.ndarray) -> None:  # pragma: no cover - compiled
    """Extend table ``slot`` from term ``start`` to ``stop`` (state: a_k, H^e_k, H^c_k)."""
    a, he, hc = state[slot, 0], state[slot, 1], state[slot, 2]
    for k in range(start, stop):
        ek = e + k
        ck = c + k
        a = a * (ek / ck)
        he += 1.0 / ek
        hc += 1.0 / ck
        tab[slot, 0, k] = a
        tab[slot, 1, k] = a * he
        tab[slot, 2, k] = a * hc
        tab[slot, 3, k] = a * (k + 1.0)
    state[slot, 0], state[slot, 1], state[slot, 2] = a, he, hc


@numba.njit(cache=True, nogil=True, error_model="numpy")
def hyp_series(e: np.ndarray, c: np.ndarray, z: np.ndarray, grad: bool, log_s: np.ndarray,
               d_e: np.ndarray, d_c: np.ndarray, d_k: np.ndarray) -> None:  # pragma: no cover
    """log S, (dS/de)/S, (dS/dc)/S and (sum_k k t_k)/S per element (see the module docstring).

    ``z`` must lie in [0, 0.9]; z = 0 (or NaN) gives S = 1 and zero derivatives, as the
    reference does. The outputs are written in place.
    """
    n = e.size
    tab = np.empty((2, 4, MAX_TERMS))
    state = np.empty((2, 3))
    key_e = np.full(2, np.nan)
    key_c = np.full(2, np.nan)
    built = np.zeros(2, dtype=np.int64)
    last = 0  # the slot used last (the other is replaced on a miss)
    for i in range(n):
        zi = z[i]
        need = 0
        if zi > 0.0:
            need = math.ceil(_LOG_TOL / math.log(zi))
            need = min(need, MAX_TERMS)
        ei, ci = e[i], c[i]
        if ei == key_e[last] and ci == key_c[last]:
            slot = last
        elif ei == key_e[1 - last] and ci == key_c[1 - last]:
            slot = 1 - last
        else:
            slot = 1 - last
            key_e[slot], key_c[slot] = ei, ci
            built[slot] = 0
            state[slot, 0], state[slot, 1], state[slot, 2] = 1.0, 0.0, 0.0
        last = slot
        if built[slot] < need:
            _fill(tab, slot, ei, ci, built[slot], need, state)
            built[slot] = need
        s, se, sc, sk, zp = 1.0, 0.0, 0.0, 0.0, 1.0
        if grad:
            for k in range(need):
                zp *= zi
                s += tab[slot, 0, k] * zp
                se += tab[slot, 1, k] * zp
                sc += tab[slot, 2, k] * zp
                sk += tab[slot, 3, k] * zp
            log_s[i] = math.log(s)
            d_e[i] = se / s
            d_c[i] = -sc / s
            d_k[i] = sk / s
        else:
            for k in range(need):
                zp *= zi
                s += tab[slot, 0, k] * zp
            log_s[i] = math.log(s)
            d_e[i] = 0.0
            d_c[i] = 0.0
            d_k[i] = 0.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def combine_rows(l1: np.ndarray, l2: np.ndarray, inv1: np.ndarray, inv2: np.ndarray,
                 inv_x: np.ndarray, log_rx: np.ndarray, log_s: float, w: np.ndarray,
                 acc1: np.ndarray, acc2: np.ndarray, accx: np.ndarray
                 ) -> float:  # pragma: no cover - compiled
    """Weighted sum over rows of log bracket, and the weights the gradient needs.

    Row i's bracket (:func:`clvmodels.models.paretonbd.log_likelihood`) is
    (r+x) K1 + s K2 with log (r+x) K1 = a1 = log_rx[inv_x[i]] + l1[inv1[i]] and
    log s K2 = a2 = log_s + l2[inv2[i]]; with w1, w2 = the two terms' shares of it, this adds
    w_i w1 to ``acc1[inv1[i]]`` and ``accx[inv_x[i]]`` and w_i w2 to ``acc2[inv2[i]]``
    (zeroed first) and returns sum_i w_i log bracket_i — so the gradient is
    sum_j acc1_j dlog K1_j + ... over the distinct pairs instead of over the rows. The
    shares are computed as 1/(1+u) and u/(1+u), u = exp(-|a1 - a2|), so the smaller keeps
    its relative accuracy.
    """
    acc1[:] = 0.0
    acc2[:] = 0.0
    accx[:] = 0.0
    total = 0.0
    for i in range(w.size):
        j1, j2, jx = inv1[i], inv2[i], inv_x[i]
        a1 = log_rx[jx] + l1[j1]
        a2 = log_s + l2[j2]
        if a1 >= a2:
            u = math.exp(a2 - a1)
            lb = a1 + math.log1p(u)
            s1 = 1.0 / (1.0 + u)
            s2 = u * s1
        else:
            u = math.exp(a1 - a2)
            lb = a2 + math.log1p(u)
            s2 = 1.0 / (1.0 + u)
            s1 = u * s2
        wi = w[i]
        total += wi * lb
        acc1[j1] += wi * s1
        accx[jx] += wi * s1
        acc2[j2] += wi * s2
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def tail_integral(p: np.ndarray, q: np.ndarray, alpha: np.ndarray, beta: np.ndarray,
                  t: np.ndarray, grad: bool, out: np.ndarray, gout: np.ndarray,
                  ok: np.ndarray) -> None:  # pragma: no cover - compiled
    """log K(p, q; t) and d log K / d(p, q, alpha, beta) where z <= 0.9 (``ok``).

    The series branch of :func:`clvmodels.models._special.log_tail_integral` element by
    element (its ``_tail_core``): with M = max(alpha, beta), m = min, e (g) the exponent on
    M's (m's) factor, c = e + g and z = (M - m)/(M + t),

        log K = -e log(M+t) + (1-g) log(m+t) - log(c-1) + log S,  S = 2F1(1, e; c; z)

    (note 009, eqs. 22-23, after Euler's transformation, DLMF 15.8.1), S and its log
    derivatives from the tables of :func:`hyp_series`, and the chain rule through z. Each
    argument array has the elements' length or length 1 (one value for all). Elements with
    z > 0.9 (or not finite) get ``ok = False`` and are left for the caller (the quadrature
    branch of the reference).
    """
    n = out.size
    sp, sq, sa, sb, st = p.size > 1, q.size > 1, alpha.size > 1, beta.size > 1, t.size > 1
    tab = np.empty((2, 4, MAX_TERMS))
    state = np.empty((2, 3))
    key_e = np.full(2, np.nan)
    key_c = np.full(2, np.nan)
    built = np.zeros(2, dtype=np.int64)
    last = 0
    for i in range(n):
        pi = p[i if sp else 0]
        qi = q[i if sq else 0]
        ai = alpha[i if sa else 0]
        bi = beta[i if sb else 0]
        ti = t[i if st else 0]
        swap = ai < bi
        if swap:
            e, g, big, small = qi, pi, bi, ai
        else:
            e, g, big, small = pi, qi, ai, bi
        c = e + g
        bt = big + ti
        smt = small + ti
        zi = (big - small) / bt
        if not (zi <= 0.9 and zi >= 0.0):
            ok[i] = False
            continue
        ok[i] = True
        need = 0
        if zi > 0.0:
            need = min(math.ceil(_LOG_TOL / math.log(zi)), MAX_TERMS)
        if e == key_e[last] and c == key_c[last]:
            slot = last
        elif e == key_e[1 - last] and c == key_c[1 - last]:
            slot = 1 - last
        else:
            slot = 1 - last
            key_e[slot], key_c[slot] = e, c
            built[slot] = 0
            state[slot, 0], state[slot, 1], state[slot, 2] = 1.0, 0.0, 0.0
        last = slot
        if built[slot] < need:
            _fill(tab, slot, e, c, built[slot], need, state)
            built[slot] = need
        s, se, sc, sk, zp = 1.0, 0.0, 0.0, 0.0, 1.0
        lbt = math.log(bt)
        lst = math.log(smt)
        if not grad:
            for k in range(need):
                zp *= zi
                s += tab[slot, 0, k] * zp
            out[i] = -e * lbt + (1.0 - g) * lst - math.log(c - 1.0) + math.log(s)
            continue
        for k in range(need):
            zp *= zi
            s += tab[slot, 0, k] * zp
            se += tab[slot, 1, k] * zp
            sc += tab[slot, 2, k] * zp
            sk += tab[slot, 3, k] * zp
        out[i] = -e * lbt + (1.0 - g) * lst - math.log(c - 1.0) + math.log(s)
        s_e, s_c = se / s, -sc / s
        s_z = sk / s / zi if zi > 0.0 else e / c  # S'(z)/S
        inv_c1 = 1.0 / (c - 1.0)
        d_e = -lbt - inv_c1 + s_e + s_c
        d_g = -lst - inv_c1 + s_c
        d_big = -e / bt + s_z * smt / (bt * bt)
        d_small = (1.0 - g) / smt - s_z / bt
        if swap:
            gout[0, i], gout[1, i], gout[2, i], gout[3, i] = d_g, d_e, d_small, d_big
        else:
            gout[0, i], gout[1, i], gout[2, i], gout[3, i] = d_e, d_g, d_big, d_small


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _fill2(tab: np.ndarray, slot: int, e: float, c: float, start: int, stop: int,
           state: np.ndarray) -> None:  # pragma: no cover - compiled
    """:func:`_fill` for second derivatives: table ``slot`` of term k+1's
    a, a A, a C, a (A^2 - A2), a A C, a (C^2 + C2), with A = sum_{j<=k} 1/(e+j),
    A2 = sum 1/(e+j)^2, C, C2 likewise in c (so d a/de = a A, d a/dc = -a C,
    d2 a/de2 = a (A^2 - A2), d2 a/de dc = -a A C, d2 a/dc2 = a (C^2 + C2))."""
    a, ha, hc, ha2, hc2 = (state[slot, 0], state[slot, 1], state[slot, 2], state[slot, 3],
                           state[slot, 4])
    for k in range(start, stop):
        ek = e + k
        ck = c + k
        a = a * (ek / ck)
        ie, ic = 1.0 / ek, 1.0 / ck
        ha += ie
        hc += ic
        ha2 += ie * ie
        hc2 += ic * ic
        tab[slot, 0, k] = a
        tab[slot, 1, k] = a * ha
        tab[slot, 2, k] = a * hc
        tab[slot, 3, k] = a * (ha * ha - ha2)
        tab[slot, 4, k] = a * ha * hc
        tab[slot, 5, k] = a * (hc * hc + hc2)
    state[slot, 0], state[slot, 1], state[slot, 2] = a, ha, hc
    state[slot, 3], state[slot, 4] = ha2, hc2


@numba.njit(cache=True, nogil=True, error_model="numpy")
def tail_integral_hess(p: np.ndarray, q: np.ndarray, alpha: np.ndarray, beta: np.ndarray,
                       t: np.ndarray, out: np.ndarray, gout: np.ndarray, hout: np.ndarray,
                       ok: np.ndarray) -> None:  # pragma: no cover - compiled
    """:func:`tail_integral` with the Hessian of log K w.r.t. (p, q, alpha, beta) as well
    (``hout``, shape (4, 4, n)), where z <= 0.9 (``ok``).

    With S = sum_k a_k z^k, the sums S_e, S_c, S_ee, S_ec, S_cc and the z-derivatives
    S_z = sum k a_k z^(k-1), S_zz, S_ez, S_cz are built from the term tables of
    :func:`_fill2`; l = log S has l_uv = S_uv/S - l_u l_v. Then, for
    log K = -e log(M+t) + (1-g) log(m+t) - log(c-1) + l(e, e+g, z), z = (M-m)/(M+t):
    z_M = (m+t)/(M+t)^2, z_m = -1/(M+t), z_MM = -2 (m+t)/(M+t)^3, z_Mm = 1/(M+t)^2,
    z_mm = 0, and the second derivatives follow by the chain rule (exact: no differences).
    At least two terms are summed so that the z-derivatives are right at z = 0
    (alpha = beta), where S_z = e/c.
    """
    n = out.size
    sp, sq, sa, sb, st = p.size > 1, q.size > 1, alpha.size > 1, beta.size > 1, t.size > 1
    tab = np.empty((2, 6, MAX_TERMS))
    state = np.empty((2, 5))
    key_e = np.full(2, np.nan)
    key_c = np.full(2, np.nan)
    built = np.zeros(2, dtype=np.int64)
    last = 0
    L = np.empty((4, 4))
    for i in range(n):
        pi = p[i if sp else 0]
        qi = q[i if sq else 0]
        ai = alpha[i if sa else 0]
        bi = beta[i if sb else 0]
        ti = t[i if st else 0]
        swap = ai < bi
        if swap:
            e, g, big, small = qi, pi, bi, ai
        else:
            e, g, big, small = pi, qi, ai, bi
        c = e + g
        bt = big + ti
        smt = small + ti
        zi = (big - small) / bt
        if not (zi <= 0.9 and zi >= 0.0):
            ok[i] = False
            continue
        ok[i] = True
        need = 2
        if zi > 0.0:
            need = max(min(math.ceil(_LOG_TOL / math.log(zi)), MAX_TERMS), 2)
        if e == key_e[last] and c == key_c[last]:
            slot = last
        elif e == key_e[1 - last] and c == key_c[1 - last]:
            slot = 1 - last
        else:
            slot = 1 - last
            key_e[slot], key_c[slot] = e, c
            built[slot] = 0
            for j in range(5):
                state[slot, j] = 0.0
            state[slot, 0] = 1.0
        last = slot
        if built[slot] < need:
            _fill2(tab, slot, e, c, built[slot], need, state)
            built[slot] = need
        # sums over k = 1..need of the tables times z^k (values) and k z^(k-1), k(k-1) z^(k-2)
        s, se, sc, see, sec, scc = 1.0, 0.0, 0.0, 0.0, 0.0, 0.0
        sz, szz, sez, scz = 0.0, 0.0, 0.0, 0.0
        zk2, zk1, zk = 0.0, 0.0, 1.0  # z^(k-2), z^(k-1), z^k for k = 0
        for k in range(need):
            kk = k + 1.0
            zk2, zk1, zk = zk1, zk, zk * zi
            if k == 0:
                zk2 = 0.0
            t0, t1, t2 = tab[slot, 0, k], tab[slot, 1, k], tab[slot, 2, k]
            s += t0 * zk
            se += t1 * zk
            sc += t2 * zk
            see += tab[slot, 3, k] * zk
            sec += tab[slot, 4, k] * zk
            scc += tab[slot, 5, k] * zk
            sz += kk * t0 * zk1
            szz += kk * (kk - 1.0) * t0 * zk2
            sez += kk * t1 * zk1
            scz += kk * t2 * zk1
        # k = 1 has z^(k-2) = z^-1 times k(k-1) = 0: the zk2 = 0 start makes it 0
        l_e, l_c, l_z = se / s, -sc / s, sz / s
        l_ee = see / s - l_e * l_e
        l_ec = -sec / s - l_e * l_c
        l_cc = scc / s - l_c * l_c
        l_ez = sez / s - l_e * l_z
        l_cz = -scz / s - l_c * l_z
        l_zz = szz / s - l_z * l_z
        lbt = math.log(bt)
        lst = math.log(smt)
        ic1 = 1.0 / (c - 1.0)
        out[i] = -e * lbt + (1.0 - g) * lst - math.log(c - 1.0) + math.log(s)
        z_big = smt / (bt * bt)
        z_small = -1.0 / bt
        z_bb = -2.0 * smt / (bt * bt * bt)
        z_bs = 1.0 / (bt * bt)
        d = (-lbt - ic1 + l_e + l_c, -lst - ic1 + l_c, -e / bt + l_z * z_big,
             (1.0 - g) / smt + l_z * z_small)
        ic2 = ic1 * ic1
        L[0, 0] = ic2 + l_ee + 2.0 * l_ec + l_cc
        L[0, 1] = ic2 + l_ec + l_cc
        L[1, 1] = ic2 + l_cc
        L[0, 2] = -1.0 / bt + (l_ez + l_cz) * z_big
        L[0, 3] = (l_ez + l_cz) * z_small
        L[1, 2] = l_cz * z_big
        L[1, 3] = -1.0 / smt + l_cz * z_small
        L[2, 2] = e / (bt * bt) + l_zz * z_big * z_big + l_z * z_bb
        L[2, 3] = l_zz * z_big * z_small + l_z * z_bs
        L[3, 3] = -(1.0 - g) / (smt * smt) + l_zz * z_small * z_small
        for u in range(4):
            for v in range(u):
                L[u, v] = L[v, u]
        # (p, q, alpha, beta) from (e, g, M, m): swapped when alpha < beta
        for u in range(4):
            pu = (u ^ 1) if swap else u
            gout[u, i] = d[pu]
            for v in range(4):
                pv = (v ^ 1) if swap else v
                hout[u, v, i] = L[pu, pv]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def combine_rows_hess(l1: np.ndarray, l2: np.ndarray, g1: np.ndarray, g2: np.ndarray,
                      inv1: np.ndarray, inv2: np.ndarray, inv_x: np.ndarray,
                      log_rx: np.ndarray, inv_rx: np.ndarray, log_s: float, inv_s: float,
                      w: np.ndarray, acc1: np.ndarray, acc2: np.ndarray, accx: np.ndarray,
                      cross: np.ndarray) -> float:  # pragma: no cover - compiled
    """:func:`combine_rows`, and sum_i w_i w1 w2 d_i d_i' in ``cross`` (4, 4), where
    d_i = grad a1 - grad a2 w.r.t. (r, alpha, s, beta): the outer-product part of the
    Hessian of log(e^a1 + e^a2) = w1 H(a1) + w2 H(a2) + w1 w2 d d'. With
    a1 = log(r+x) + log K(r+x+1, s), a2 = log s + log K(r+x, s+1) (``g1``, ``g2`` the log K
    gradients w.r.t. (p, q, alpha, beta)):
    d = (1/(r+x) + g1_p - g2_p, g1_alpha - g2_alpha, g1_q - 1/s - g2_q, g1_beta - g2_beta).
    """
    acc1[:] = 0.0
    acc2[:] = 0.0
    accx[:] = 0.0
    cross[:, :] = 0.0
    total = 0.0
    dv = np.empty(4)
    for i in range(w.size):
        j1, j2, jx = inv1[i], inv2[i], inv_x[i]
        a1 = log_rx[jx] + l1[j1]
        a2 = log_s + l2[j2]
        if a1 >= a2:
            u = math.exp(a2 - a1)
            lb = a1 + math.log1p(u)
            s1 = 1.0 / (1.0 + u)
            s2 = u * s1
        else:
            u = math.exp(a1 - a2)
            lb = a2 + math.log1p(u)
            s2 = 1.0 / (1.0 + u)
            s1 = u * s2
        wi = w[i]
        total += wi * lb
        acc1[j1] += wi * s1
        accx[jx] += wi * s1
        acc2[j2] += wi * s2
        dv[0] = inv_rx[jx] + g1[0, j1] - g2[0, j2]
        dv[1] = g1[2, j1] - g2[2, j2]
        dv[2] = g1[1, j1] - inv_s - g2[1, j2]
        dv[3] = g1[3, j1] - g2[3, j2]
        f = wi * s1 * s2
        for u_ in range(4):
            fu = f * dv[u_]
            for v_ in range(u_, 4):
                cross[u_, v_] += fu * dv[v_]
    for u_ in range(4):
        for v_ in range(u_):
            cross[u_, v_] = cross[v_, u_]
    return total
