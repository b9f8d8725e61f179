"""Pareto/NBD: published CDNOW numbers, agreement with lifetimes and mpmath, robustness,
invariants, DERT, exact gradient, persistence."""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvmodels.models import paretonbd as pn
from clvmodels.models._math import NP
from clvmodels.models._special import log_hyp2f1
from clvmodels.models.paretonbd import ParetoNBD
from clvmodels.models.persistence import load_model
from clvmodels.rows import UniqueRows

CDNOW = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}  # REFERENCE.md
PAPER_DELTA = math.log(1.15) / 52.0  # FHL (2005) JMR: 15% a year in weeks, 52 weeks a year

# parameter sets: alpha < beta (CDNOW-like), alpha > beta, alpha == beta, and extreme ratios
PARAM_SETS = [
    (0.553, 10.578, 0.606, 11.669),
    (0.8, 20.0, 1.3, 3.0),
    (1.2, 5.0, 0.9, 5.0),
    (0.5, 0.1, 2.0, 100.0),
    (2.0, 100.0, 0.5, 0.1),
    (0.3, 2.0, 1.0, 40.0),  # s = 1 exactly
]


@pytest.fixture(scope="module")
def pnbd(_cdnow_rfm: pd.DataFrame) -> ParetoNBD:
    return ParetoNBD().fit(_cdnow_rfm)


@pytest.fixture(scope="module")
def lifetimes_fit(_cdnow_rfm: pd.DataFrame) -> object:
    with warnings.catch_warnings():
        # lifetimes 0.11.3 sets a pandas option that pandas 3 deprecates, at import time
        warnings.simplefilter("ignore")
        from lifetimes import ParetoNBDFitter

        rfm = _cdnow_rfm
        return ParetoNBDFitter().fit(rfm["frequency"], rfm["recency"], rfm["T"])


def _mp_log_likelihood(r: float, alpha: float, s: float, beta: float, x: float, tx: float,
                       T: float, dps: int = 50) -> float:
    """Note 009's likelihood (the A0 difference form, eqs. 22-23) at high precision."""
    with mp.workdps(dps):
        r, alpha, s, beta, x, tx, T = (mp.mpf(v) for v in (r, alpha, s, beta, x, tx, T))
        a = r + s + x
        if alpha >= beta:
            b, base = s + 1, alpha
            z = lambda t: (alpha - beta) / (alpha + t)  # noqa: E731
        else:
            b, base = r + x, beta
            z = lambda t: (beta - alpha) / (beta + t)  # noqa: E731
        a0 = (mp.hyp2f1(a, b, a + 1, z(tx)) / (base + tx) ** a
              - mp.hyp2f1(a, b, a + 1, z(T)) / (base + T) ** a)
        bracket = (alpha + T) ** -(r + x) * (beta + T) ** -s + s / a * a0
        return float(mp.loggamma(r + x) - mp.loggamma(r) + r * mp.log(alpha)
                     + s * mp.log(beta) + mp.log(bracket))


# --------------------------------------------------------------------------------------
# (a) published CDNOW numbers
# --------------------------------------------------------------------------------------


def test_cdnow_published_parameters(pnbd: ParetoNBD) -> None:
    assert pnbd.params_.round(3).to_dict() == CDNOW
    assert round(pnbd.log_likelihood_, 1) == -9595.0
    assert pnbd.converged_
    assert pnbd.n_customers_ == 2357
    assert pnbd.time_unit_ == "W"
    assert np.all(np.isfinite(pnbd.standard_errors_))
    assert pnbd.short_name == "pnbd"


def test_cdnow_histogram_and_means(pnbd: ParetoNBD, cdnow_rfm: pd.DataFrame) -> None:
    hist = pnbd.expected_frequency_histogram(cdnow_rfm)
    assert hist.sum() == pytest.approx(len(cdnow_rfm))
    observed = np.bincount(np.minimum(cdnow_rfm["frequency"].to_numpy(int), 7), minlength=8)
    # the fitted model reproduces the calibration histogram closely (as in the paper)
    assert np.all(np.abs(hist.to_numpy() - observed) < 0.1 * observed + 25)
    # E[X(t)] is the mean of the pmf
    n = np.arange(4000)
    pmf = pnbd.purchase_count_probability(n, 39.0)
    assert (n * pmf).sum() == pytest.approx(pnbd.expected_purchases_new_customer(39.0),
                                            rel=1e-10)


# --------------------------------------------------------------------------------------
# (b) lifetimes agreement (lifetimes 0.11.3 works with this numpy/pandas/scipy)
# --------------------------------------------------------------------------------------


def test_lifetimes_parameters(pnbd: ParetoNBD, lifetimes_fit: object,
                              cdnow_rfm: pd.DataFrame) -> None:
    theirs = lifetimes_fit.params_[list(pnbd.param_names)].to_numpy()
    # lifetimes' Nelder-Mead stops earlier (the likelihood is flat along s and beta): the
    # parameters agree to ~1e-4 and our optimum is at least as good
    np.testing.assert_allclose(pnbd.params_.to_numpy(), theirs, rtol=5e-4)
    x, tx, T = (cdnow_rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    assert pnbd.log_likelihood_ >= pn.log_likelihood(*theirs, x, tx, T).sum() - 1e-9


def test_lifetimes_predictions_at_their_parameters(lifetimes_fit: object,
                                                   cdnow_rfm: pd.DataFrame) -> None:
    p = lifetimes_fit.params_[["r", "alpha", "s", "beta"]].to_numpy()
    x, tx, T = (cdnow_rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(
        pn.log_likelihood(*p, x, tx, T),
        lifetimes_fit._conditional_log_likelihood(tuple(p), x, tx, T), rtol=1e-12)
    np.testing.assert_allclose(pn.probability_alive(*p, x, tx, T),
                               lifetimes_fit.conditional_probability_alive(x, tx, T),
                               rtol=1e-10)
    for t in (1.0, 39.0, 100.0):
        np.testing.assert_allclose(
            pn.expected_purchases(*p, x, tx, T, t),
            lifetimes_fit.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T),
            rtol=1e-10)
    ts = np.array([0.5, 10.0, 39.0, 78.0, 1000.0])
    np.testing.assert_allclose(pn.expected_purchases_new_customer(*p, ts),
                               lifetimes_fit.expected_number_of_purchases_up_to_time(ts),
                               rtol=1e-12)


# --------------------------------------------------------------------------------------
# (c) numerical robustness, checked against mpmath
# --------------------------------------------------------------------------------------

X_GRID = np.array([0.0, 1.0, 10.0, 100.0, 1000.0, 10000.0])
T_GRID = np.array([0.5, 39.0, 1000.0, 10000.0])


def _grid_rows() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, T, frac = np.meshgrid(X_GRID, T_GRID, [0.0, 0.5, 1.0], indexing="ij")
    tx = np.where(x > 0, frac * T, 0.0)
    return x.ravel(), tx.ravel(), T.ravel()


@pytest.mark.parametrize("params", PARAM_SETS)
def test_extreme_inputs_finite_and_in_range(params: tuple[float, ...]) -> None:
    x, tx, T = _grid_rows()
    ll = pn.log_likelihood(*params, x, tx, T)
    assert np.all(np.isfinite(ll))  # a density in the purchase times: may exceed 0
    assert np.all(np.isfinite(pn.log_likelihood_grad(*params, x, tx, T)))
    pa = pn.probability_alive(*params, x, tx, T)
    assert np.all((pa >= 0) & (pa <= 1))
    assert np.all(pa[tx == T] == pytest.approx(1.0))  # purchased at T: certainly alive
    ts = np.array([0.0, 1.0, 10.0, 100.0, 1000.0, 10000.0])
    ey = pn.expected_purchases(*params, x[:, None], tx[:, None], T[:, None], ts[None, :])
    assert np.all(np.isfinite(ey)) and np.all(ey >= 0)
    assert np.all(ey[:, 0] == 0)
    assert np.all(np.diff(ey, axis=1) >= -1e-12 * ey[:, 1:])
    dert = pn.expected_discounted_transactions(*params, x, tx, T, PAPER_DELTA)
    assert np.all(np.isfinite(dert)) and np.all(dert >= 0)


@pytest.mark.parametrize("params", PARAM_SETS)
def test_log_likelihood_matches_mpmath(params: tuple[float, ...]) -> None:
    rows = [(0.0, 0.0, 0.5), (0.0, 0.0, 39.0), (1.0, 0.1, 39.0), (2.0, 30.43, 38.86),
            (10.0, 38.8599, 38.86), (10.0, 38.86 - 1e-9, 38.86), (10.0, 38.86, 38.86),
            (100.0, 500.0, 1000.0),
            (1000.0, 9000.0, 10000.0), (10000.0, 9999.0, 10000.0), (50.0, 1.0, 10000.0)]
    x, tx, T = (np.array(v) for v in zip(*rows, strict=True))
    ours = pn.log_likelihood(*params, x, tx, T)
    ref = np.array([_mp_log_likelihood(*params, *row) for row in rows])
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def test_tail_integral_matches_special_log_hyp2f1() -> None:
    # an independent evaluation of K = (M+t)^(1-c) 2F1(c-1, g; c; z)/(c-1) (note 009's form)
    rng = np.random.default_rng(3)
    p = 10 ** rng.uniform(-1, 3, 300) + 1.0
    q = 10 ** rng.uniform(-1.5, 2, 300)
    alpha, beta = 10 ** rng.uniform(-2, 3, 300), 10 ** rng.uniform(-2, 3, 300)
    t = np.where(rng.random(300) < 0.3, 0.0, 10 ** rng.uniform(-2, 4, 300))
    big, small = np.maximum(alpha, beta), np.minimum(alpha, beta)
    g = np.where(alpha >= beta, q, p)
    c = p + q
    z = (big - small) / (big + t)
    ref = (1 - c) * np.log(big + t) - np.log(c - 1) + log_hyp2f1(c - 1, g, c, z,
                                                                  zc=(small + t) / (big + t))
    ours = pn.log_tail_integral(p, q, alpha, beta, t)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)


def test_generic_namespace_formula_matches_numpy_path() -> None:
    # the m.* closed form (used with pytensor by PyMC) is the same function as the series
    scipy_ns = SimpleNamespace(**{**vars(NP), "name": "scipy"})
    x, tx, T = np.array([0.0, 1, 5, 20]), np.array([0.0, 3, 20, 38]), np.full(4, 38.86)
    for params in PARAM_SETS[:3]:
        np.testing.assert_allclose(pn.log_likelihood(*params, x, tx, T, m=scipy_ns),
                                   pn.log_likelihood(*params, x, tx, T), rtol=1e-12)


def test_zero_history_has_zero_loglik() -> None:
    # T = 0: nothing observed, likelihood 1
    assert pn.log_likelihood(0.5, 3.0, 0.7, 9.0, 0.0, 0.0, 0.0) == pytest.approx(0, abs=1e-14)


def test_parameter_arrays_broadcast(cdnow_rfm: pd.DataFrame) -> None:
    x, tx, T = (cdnow_rfm[c].to_numpy(float)[:50] for c in ("frequency", "recency", "T"))
    draws = np.array(PARAM_SETS[:4])
    cols = [draws[:, i : i + 1] for i in range(4)]
    ll = pn.log_likelihood(*cols, x, tx, T)
    ey = pn.expected_purchases(*cols, x, tx, T, 39.0)
    assert ll.shape == ey.shape == (4, 50)
    for i, params in enumerate(draws):
        np.testing.assert_allclose(ll[i], pn.log_likelihood(*params, x, tx, T), rtol=1e-14)
        np.testing.assert_allclose(ey[i], pn.expected_purchases(*params, x, tx, T, 39.0),
                                   rtol=1e-14)
    assert pn.log_likelihood_grad(*cols, x, tx, T).shape == (4, 4, 50)


def test_s_near_one_has_no_nan() -> None:
    t = np.array([0.0, 1.0, 39.0, 1e4])
    vals = [pn.expected_purchases_new_customer(0.5, 4.0, s, 9.0, t)
            for s in (1.0 - 1e-9, 1.0, 1.0 + 1e-9)]
    assert np.all(np.isfinite(vals))
    np.testing.assert_allclose(vals[0], vals[1], rtol=1e-8)
    np.testing.assert_allclose(vals[2], vals[1], rtol=1e-8)
    np.testing.assert_allclose(vals[1], 0.5 / 4.0 * 9.0 * np.log1p(t / 9.0), rtol=1e-14)
    ey = pn.expected_purchases(0.5, 4.0, 1.0, 9.0, 3.0, 20.0, 30.0, t)
    assert np.all(np.isfinite(ey))
    assert pn.expected_purchases_new_customer(0.5, 4.0, 1.5, 9.0, np.inf) == pytest.approx(
        0.5 / 4.0 * 9.0 / 0.5)


# --------------------------------------------------------------------------------------
# (d) properties
# --------------------------------------------------------------------------------------

positive = st.floats(min_value=0.05, max_value=20.0)
scale = st.floats(min_value=0.05, max_value=500.0)


@settings(max_examples=60, deadline=None)
@given(r=positive, alpha=scale, s=positive, beta=scale, x=st.integers(0, 2000),
       T=st.floats(0.01, 2000.0), frac=st.floats(0.0, 1.0), t1=st.floats(0.0, 1000.0),
       t2=st.floats(0.0, 1000.0))
def test_property_invariants(r: float, alpha: float, s: float, beta: float, x: int, T: float,
                             frac: float, t1: float, t2: float) -> None:
    tx = frac * T if x > 0 else 0.0
    pa = pn.probability_alive(r, alpha, s, beta, x, tx, T)
    assert 0.0 <= pa <= 1.0
    lo, hi = sorted((t1, t2))
    e_lo = pn.expected_purchases(r, alpha, s, beta, x, tx, T, lo)
    e_hi = pn.expected_purchases(r, alpha, s, beta, x, tx, T, hi)
    assert 0.0 <= e_lo <= e_hi * (1 + 1e-12)
    dert = pn.expected_discounted_transactions(r, alpha, s, beta, x, tx, T, PAPER_DELTA)
    assert np.isfinite(dert) and dert >= 0
    if pa > 1e-250:  # DERT = P(alive) x (positive factors): it underflows only with P(alive)
        assert dert > 0
    assert np.isfinite(pn.log_likelihood(r, alpha, s, beta, x, tx, T))


@settings(max_examples=30, deadline=None)
@given(r=st.floats(0.1, 5.0), alpha=st.floats(0.5, 50.0), s=st.floats(0.1, 5.0),
       beta=st.floats(0.5, 50.0), t=st.floats(0.0, 1.0))
def test_property_pmf_sums_to_one(r: float, alpha: float, s: float, beta: float,
                                  t: float) -> None:
    t = t * 10.0 * alpha  # t/(alpha+t) <= 0.91: the pmf's tail is negligible by n = 3000
    n = np.arange(3000)
    pmf = pn.purchase_count_probability(r, alpha, s, beta, n, t)
    assert np.all(pmf >= 0)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-10)
    assert (n * pmf).sum() == pytest.approx(
        pn.expected_purchases_new_customer(r, alpha, s, beta, t), rel=1e-8, abs=1e-12)


def test_pmf_matches_mpmath_integral() -> None:
    def reference(r: float, a: float, s: float, b: float, n: int, t: float) -> float:
        # term 1 plus the death integral in v = ln u, on unit subintervals (the integrand
        # decays like e^((n+1) v) to the left)
        with mp.workdps(40):
            r, a, s, b, t = (mp.mpf(v) for v in (r, a, s, b, t))
            head = mp.exp(mp.loggamma(r + n) - mp.loggamma(r) - mp.loggamma(n + 1))
            term1 = head * (a / (a + t)) ** r * (t / (a + t)) ** n * (b / (b + t)) ** s
            lt = mp.log(t)
            f = lambda v: mp.exp((n + 1) * v - (r + n) * mp.log(a + mp.exp(v))  # noqa: E731
                                 - (s + 1) * mp.log(b + mp.exp(v)))
            death = mp.quad(f, [lt - 80 + 2 * k for k in range(41)])
            return float(term1 + s * b**s * a**r * head * death)

    for params in PARAM_SETS[:4]:
        for n, t in ((0, 1.0), (2, 39.0), (7, 300.0)):
            assert pn.purchase_count_probability(*params, n, t) == pytest.approx(
                reference(*params, n, t), rel=1e-12)
    # the quadrature used where the series converges slowly agrees with the series
    n = np.arange(60)
    for params in PARAM_SETS[:3]:
        np.testing.assert_allclose(pn.purchase_count_probability(*params, n, 30.0, max_terms=0),
                                   pn.purchase_count_probability(*params, n, 30.0), rtol=1e-12)


# --------------------------------------------------------------------------------------
# (e) DERT
# --------------------------------------------------------------------------------------

DERT_ROWS = [(0.0, 0.0, 38.86), (1.0, 5.0, 30.0), (2.0, 30.43, 38.86), (10.0, 35.0, 38.86),
             (30.0, 38.0, 38.86)]


@pytest.mark.parametrize("params", [PARAM_SETS[0], PARAM_SETS[1], PARAM_SETS[5]])
def test_dert_matches_brute_force_integral(params: tuple[float, ...]) -> None:
    x, tx, T = (np.array(v) for v in zip(*DERT_ROWS, strict=True))
    delta = PAPER_DELTA
    ours = pn.expected_discounted_transactions(*params, x, tx, T, delta)
    # sum_i e^(-delta t_mid) (E[Y(t_i+1)] - E[Y(t_i)]) on a fine grid out to e^(-delta t) ~ 1e-40
    grid = np.concatenate([[0.0], np.geomspace(1e-4, 40.0 / delta, 150_000)])
    ey = pn.expected_purchases(*params, x[:, None], tx[:, None], T[:, None], grid[None, :])
    mid = 0.5 * (grid[1:] + grid[:-1])
    brute = (np.exp(-delta * mid) * np.diff(ey, axis=1)).sum(axis=1)
    np.testing.assert_allclose(ours, brute, rtol=1e-8)


def test_dert_matches_mpmath() -> None:
    r, alpha, s, beta = PARAM_SETS[0]
    for x, tx, T in DERT_ROWS:
        with mp.workdps(30):
            bracket = math.exp(_mp_log_likelihood(r, alpha, s, beta, x, tx, T) - (
                float(mp.loggamma(r + x) - mp.loggamma(r)) + r * math.log(alpha)
                + s * math.log(beta)))
            ref = float((r + x) * mp.mpf(PAPER_DELTA) ** (s - 1)
                        * mp.hyperu(s, s, PAPER_DELTA * (beta + T))
                        / ((alpha + T) ** (r + x + 1) * bracket))
        ours = pn.expected_discounted_transactions(r, alpha, s, beta, x, tx, T, PAPER_DELTA)
        assert ours == pytest.approx(ref, rel=1e-11)


def test_dert_annual_rate_conversion(pnbd: ParetoNBD, cdnow_rfm: pd.DataFrame) -> None:
    # the paper's convention (52 weeks a year) through the module function ...
    assert PAPER_DELTA == pytest.approx(0.0026877, abs=5e-8)
    # ... and ours: ln(1 + d) / (365.25 / 7) weeks a year
    ours_delta = pn.annual_to_continuous_rate(0.15, "W")
    assert ours_delta == pytest.approx(math.log(1.15) / (365.25 / 7.0), rel=1e-15)
    assert ours_delta == pytest.approx(0.0026785, abs=5e-8)
    assert pn.annual_to_continuous_rate(0.15, "D") * 365.25 == pytest.approx(math.log(1.15))
    dert = pnbd.expected_discounted_transactions(cdnow_rfm, 0.15)
    assert dert.name == "dert" and dert.index.equals(cdnow_rfm.index)
    p = pnbd.params_.to_numpy()
    x, tx, T = (cdnow_rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(dert, pn.expected_discounted_transactions(*p, x, tx, T,
                                                                         ours_delta))
    paper = pn.expected_discounted_transactions(*p, x, tx, T, PAPER_DELTA)
    assert np.all(paper < dert.to_numpy())  # a (slightly) higher weekly rate discounts more
    np.testing.assert_allclose(paper, dert, rtol=5e-3)
    with pytest.raises(ValueError, match="time unit"):
        pnbd.expected_discounted_transactions(cdnow_rfm, 0.15, time_unit="D")
    with pytest.raises(ValueError, match="delta"):
        pn.expected_discounted_transactions(*p, x, tx, T, 0.0)
    with pytest.raises(ValueError, match="discount_rate"):
        pn.annual_to_continuous_rate(-1.5, "W")
    # a model that does not know its time unit needs one to convert an annual rate
    unitless = ParetoNBD.from_dict({**pnbd.to_dict(), "time_unit": None})
    plain = cdnow_rfm.copy()
    plain.attrs = {}
    with pytest.raises(ValueError, match="time unit is unknown"):
        unitless.expected_discounted_transactions(plain, 0.15)
    np.testing.assert_allclose(
        unitless.expected_discounted_transactions(plain, 0.15, time_unit="W"), dert)


# --------------------------------------------------------------------------------------
# (f) exact gradient vs finite differences
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", PARAM_SETS)
def test_gradient_matches_finite_differences(params: tuple[float, ...]) -> None:
    x, tx, T = _grid_rows()
    keep = x <= 1000  # keep LL values moderate, so the differences resolve well
    x, tx, T = x[keep], tx[keep], T[keep]
    grad = pn.log_likelihood_grad(*params, x, tx, T)
    theta = np.array(params)
    for k in range(4):
        h = 1e-6 * theta[k]
        up, dn = theta.copy(), theta.copy()
        up[k] += h
        dn[k] -= h
        fd = (pn.log_likelihood(*up, x, tx, T) - pn.log_likelihood(*dn, x, tx, T)) / (2 * h)
        noise = 1e-9 * (np.abs(pn.log_likelihood(*theta, x, tx, T)) + 1.0) / h
        np.testing.assert_array_less(np.abs(grad[k] - fd), 1e-6 * np.abs(fd) + noise)


def test_model_gradient_on_compressed_rows(pnbd: ParetoNBD, cdnow_rfm: pd.DataFrame) -> None:
    d: UniqueRows = pnbd._fit_data(cdnow_rfm)
    assert d.n_rows < len(cdnow_rfm)
    p = {"r": 0.7, "alpha": 8.0, "s": 1.4, "beta": 5.0}
    rows = pnbd._loglik_grad(p, d)
    np.testing.assert_allclose(rows, pn.log_likelihood_grad(*p.values(), d.x, d.tx, d.T),
                               rtol=1e-12, atol=1e-12)
    total, grad = pnbd._value_and_grad(p, d)
    assert total == pytest.approx(float(d.w @ pn.log_likelihood(*p.values(), d.x, d.tx, d.T)),
                                  rel=1e-13)
    np.testing.assert_allclose(grad, rows @ d.w, rtol=1e-12)


# --------------------------------------------------------------------------------------
# (g) persistence and the model interface
# --------------------------------------------------------------------------------------


def test_save_load_round_trip(pnbd: ParetoNBD, cdnow_rfm: pd.DataFrame, tmp_path) -> None:
    path = pnbd.save(tmp_path / "pnbd.json")
    loaded = load_model(path)
    assert isinstance(loaded, ParetoNBD)
    pd.testing.assert_series_equal(loaded.params_, pnbd.params_)
    pd.testing.assert_frame_equal(loaded.covariance_, pnbd.covariance_)
    assert loaded.time_unit_ == "W"
    assert loaded.log_likelihood_ == pnbd.log_likelihood_
    pd.testing.assert_series_equal(loaded.expected_purchases(cdnow_rfm, 39),
                                   pnbd.expected_purchases(cdnow_rfm, 39))
    pd.testing.assert_series_equal(loaded.expected_discounted_transactions(cdnow_rfm, 0.15),
                                   pnbd.expected_discounted_transactions(cdnow_rfm, 0.15))


def test_predictions_keep_index_and_do_not_mutate(pnbd: ParetoNBD,
                                                  cdnow_rfm: pd.DataFrame) -> None:
    before = cdnow_rfm.copy(deep=True)
    pa = pnbd.probability_alive(cdnow_rfm)
    ey = pnbd.expected_purchases(cdnow_rfm, 39)
    pd.testing.assert_frame_equal(cdnow_rfm, before)
    assert pa.index.equals(cdnow_rfm.index) and ey.index.equals(cdnow_rfm.index)
    assert pa.between(0, 1).all() and (ey >= 0).all()
    cum = pnbd.cumulative_expected_purchases(cdnow_rfm.iloc[:20], np.array([0.0, 13, 39]))
    np.testing.assert_allclose(cum[:, 2], ey.iloc[:20])


def test_fit_in_days_matches_weeks(cdnow_transactions: pd.DataFrame,
                                   pnbd: ParetoNBD) -> None:
    from clvmodels import rfm_summary

    days = rfm_summary(cdnow_transactions, observation_end="1997-09-30", time_unit="D")
    m = ParetoNBD().fit(days)
    assert m.time_unit_ == "D"
    # alpha and beta are rates per time unit: 7x in days; r and s unchanged
    np.testing.assert_allclose(m.params_[["r", "s"]], pnbd.params_[["r", "s"]], rtol=1e-4)
    np.testing.assert_allclose(m.params_[["alpha", "beta"]] / 7.0,
                               pnbd.params_[["alpha", "beta"]], rtol=1e-4)
