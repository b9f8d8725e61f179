"""BG/BB (Fader, Hardie & Shang 2010): the published donations numbers, lifetimes and mpmath
as numerical oracles, internal consistency, the pytensor likelihood, simulation recovery and
extreme inputs."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special

from clvmodels._validation import ValidationError
from clvmodels.datasets import load_donations
from clvmodels.models import bgbb

NAMES = ("alpha", "beta", "gamma", "delta")
#: The paper's MLE and log-likelihood (FHS 2010, section 4; also lifetimes' BG/BB test).
PAPER_MLE = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
PAPER_LL = -33225.6
#: The same MLE to four decimals, as pymc-marketing's BG/BB tests quote it
#: (tests/clv/models/test_beta_geo_beta_binom.py).
MLE_4DP = {"alpha": 1.2035, "beta": 0.7497, "gamma": 0.6567, "delta": 2.7834}


# --------------------------------------------------------------------------------------
# helpers: a weighted maximum-likelihood fit on log parameters, and random valid rows
# --------------------------------------------------------------------------------------


def _neg_ll_and_grad(log_p: np.ndarray, x: np.ndarray, tx: np.ndarray, n: np.ndarray,
                     w: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood per customer and its gradient in log parameters."""
    p = np.exp(log_p)
    ll = bgbb.log_likelihood(*p, x, tx, n)
    g = bgbb.log_likelihood_grad(*p, x, tx, n) @ w
    return -float(w @ ll) / w.sum(), -g * p / w.sum()


def _hessian(p: np.ndarray, x: np.ndarray, tx: np.ndarray, n: np.ndarray, w: np.ndarray
             ) -> np.ndarray:
    """Hessian of the weighted log-likelihood in the natural parameters, by central
    differences of the analytic gradient."""
    h = np.zeros((4, 4))
    for j in range(4):
        step = 1e-5 * p[j]
        up, down = p.copy(), p.copy()
        up[j] += step
        down[j] -= step
        h[:, j] = (bgbb.log_likelihood_grad(*up, x, tx, n) @ w
                   - bgbb.log_likelihood_grad(*down, x, tx, n) @ w) / (2 * step)
    return 0.5 * (h + h.T)


def _fit(x: np.ndarray, tx: np.ndarray, n: np.ndarray, w: np.ndarray
         ) -> tuple[np.ndarray, float, np.ndarray]:
    """(MLE, maximised log-likelihood, standard errors)."""
    res = optimize.minimize(_neg_ll_and_grad, np.zeros(4), args=(x, tx, n, w), jac=True,
                            method="BFGS", options={"gtol": 1e-7, "maxiter": 500})
    assert res.success, res.message
    p = np.exp(res.x)
    for _ in range(2):  # polish with Newton steps in the natural parameters
        p = p - np.linalg.solve(_hessian(p, x, tx, n, w), bgbb.log_likelihood_grad(*p, x, tx, n)
                                @ w)
    ll = float(w @ bgbb.log_likelihood(*p, x, tx, n))
    se = np.sqrt(np.diag(np.linalg.inv(-_hessian(p, x, tx, n, w))))
    return p, ll, se


def _rows(rng: np.random.Generator, size: int, n_max: int) -> tuple[np.ndarray, ...]:
    """Random valid (x, t_x, n): x <= t_x <= n, t_x = 0 exactly when x = 0."""
    n = rng.integers(1, n_max + 1, size).astype(float)
    tx = np.floor(rng.random(size) * (n + 1))
    x = np.where(tx > 0, 1 + np.floor(rng.random(size) * tx), 0.0)
    return x, tx, n


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    return load_donations()


@pytest.fixture(scope="module")
def fitted(donations: pd.DataFrame) -> tuple[np.ndarray, float, np.ndarray]:
    d = donations
    return _fit(*(d[c].to_numpy(float) for c in ("frequency", "recency", "periods",
                                                 "weights")))


def _columns(d: pd.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(d[c].to_numpy(float) for c in ("frequency", "recency", "periods", "weights"))


# --------------------------------------------------------------------------------------
# published numbers (donations data, 11,104 first-time donors of 1995, 6 opportunities)
# --------------------------------------------------------------------------------------


def test_donations_data(donations: pd.DataFrame) -> None:
    assert list(donations.columns) == ["frequency", "recency", "periods", "weights"]
    assert len(donations) == 22
    assert donations["weights"].sum() == 11104
    assert (donations["periods"] == 6).all()
    x, tx = donations["frequency"], donations["recency"]
    assert ((x <= tx) & (tx <= 6) & ((x == 0) == (tx == 0))).all()
    assert not donations.duplicated(["frequency", "recency"]).any()


def test_donations_mle_reproduces_the_paper(fitted: tuple, donations: pd.DataFrame) -> None:
    p, ll, se = fitted
    for name, value, published in zip(NAMES, p, PAPER_MLE.values(), strict=True):
        assert round(value, 3) == published, name
    for name, value, published in zip(NAMES, p, MLE_4DP.values(), strict=True):
        assert round(value, 4) == published, name
    assert round(ll, 1) == PAPER_LL
    # the optimum is a stationary point of the likelihood in the natural parameters
    x, tx, n, w = _columns(donations)
    grad = bgbb.log_likelihood_grad(*p, x, tx, n) @ w
    assert np.max(np.abs(grad)) < 1e-6
    assert np.all(se > 0) and np.all(se < p)


def test_table6_probability_alive(fitted: tuple) -> None:
    # FHS 2010 Table 6, P(alive in 2002) by recency and frequency; the cells (recency 1995,
    # x = 0) = 0.11, (1999, x = 2) = 0.59 and (2001, x = 6) = 0.93 as transcribed in
    # lifetimes' tests (test_prob_alive_is_close_to_Hardie_paper_table_6)
    p = fitted[0]
    got = bgbb.probability_alive(*p, np.array([0, 2, 6]), np.array([0, 4, 6]), 6)
    np.testing.assert_array_equal(np.round(got, 2), [0.11, 0.59, 0.93])
    # a donor who gave in 2001 is alive in 2001, whatever x: the column is constant
    last = bgbb.probability_alive(*p, np.arange(1, 7), 6, 6)
    np.testing.assert_allclose(last, (p[3] + 6) / (p[2] + p[3] + 6), rtol=1e-14)


def test_hardie_spreadsheet_conditional_expectations(fitted: tuple,
                                                     donations: pd.DataFrame) -> None:
    # Hardie's BG/BB spreadsheet (brucehardie.com/notes/010, BGBB_2011-01-20), sheet
    # "Conditional Expectations (II)": total expected donations 2002-2006 = 12,884.2
    # (column F, "Exp Tot"; quoted in lifetimes' tests)
    x, tx, n, w = _columns(donations)
    total = w @ bgbb.expected_purchases(*fitted[0], x, tx, n, 5)
    assert round(total, 1) == 12884.2


def test_hardie_spreadsheet_in_sample_fit(fitted: tuple) -> None:
    # the spreadsheet's "In-Sample Fit" sheet: expected donors with 0 and with 6 repeat
    # donations in 1996-2001, cells C18 and C24 (quoted in lifetimes' tests)
    expected = 11104 * bgbb.purchase_count_probability(*fitted[0], np.array([0, 6]), 6)
    np.testing.assert_array_equal(np.round(expected, 1), [3454.9, 1253.1])


def test_hardie_spreadsheet_tracking_plot(fitted: tuple) -> None:
    # the spreadsheet's "Tracking Plot" sheet, cells B7:B17: E[X(t)], t = 1..11 (quoted in
    # pymc-marketing's test_expected_purchases_new_customer)
    published = [0.4985, 0.9233, 1.2969, 1.6323, 1.9381, 2.2202, 2.4826, 2.7285, 2.9603,
                 3.1798, 3.3887]
    got = bgbb.expected_purchases_new_customer(*fitted[0], np.arange(1, 12))
    np.testing.assert_array_equal(np.round(got, 4), published)


# --------------------------------------------------------------------------------------
# oracles: lifetimes 0.11.3 and mpmath
# --------------------------------------------------------------------------------------


def test_lifetimes_oracle(donations: pd.DataFrame, fitted: tuple) -> None:
    lifetimes = pytest.importorskip("lifetimes")
    f = lifetimes.BetaGeoBetaBinomFitter().fit(
        donations["frequency"], donations["recency"], donations["periods"],
        weights=donations["weights"])
    np.testing.assert_allclose(f.params_[list(NAMES)].to_numpy(), fitted[0], rtol=2e-4)
    p = np.array(list(MLE_4DP.values()))
    f.params_ = pd.Series(dict(zip(NAMES, p, strict=True)))
    x, tx, n, _ = _columns(donations)
    # plus rows with up to 12 opportunities; lifetimes sums eq. (5)'s second part in linear
    # space with 1e-15 added, so it is an oracle only where that floor is negligible (short
    # n): the floor shifts its ln L by up to ~1e-15 / L (3e-11 at ln L = -10)
    xs, txs, ns = _rows(np.random.default_rng(5), 60, 12)
    x, tx, n = (np.r_[a, b] for a, b in ((x, xs), (tx, txs), (n, ns)))
    ll = bgbb.log_likelihood(*p, x, tx, n)
    tol = max(1e-12, 1e-14 * np.exp(-ll).max())
    np.testing.assert_allclose(ll, f._loglikelihood(p, x, tx, n), rtol=0, atol=tol)
    np.testing.assert_allclose(bgbb.probability_alive(*p, x, tx, n),
                               f.conditional_probability_alive(1, x, tx, n), rtol=tol)
    for t in (1, 5, 10):
        np.testing.assert_allclose(
            bgbb.expected_purchases(*p, x, tx, n, t),
            f.conditional_expected_number_of_purchases_up_to_time(t, x, tx, n), rtol=tol)
    # lifetimes' in-sample histogram is 11,104 P(X(6) = x) for the x in the data (0..6)
    hist = f.expected_number_of_transactions_in_first_n_periods(6)["model"]
    ours = 11104 * bgbb.purchase_count_probability(*p, hist.index.to_numpy(), 6)
    np.testing.assert_allclose(ours, hist.to_numpy(), rtol=1e-11)
    # and the mean of that pmf is E[X(6)], eq. (9)
    assert hist.to_numpy() @ hist.index.to_numpy() / 11104 == pytest.approx(
        float(bgbb.expected_purchases_new_customer(*p, 6)), rel=1e-11)


mp.mp.dps = 40


def _mp_lbeta(a: mp.mpf, b: mp.mpf) -> mp.mpf:
    return mp.loggamma(a) + mp.loggamma(b) - mp.loggamma(a + b)


def _mp_params(p: tuple[float, ...]) -> Iterator[mp.mpf]:
    return (mp.mpf(v) for v in p)


def _mp_likelihood(p: tuple[float, ...], x: int, tx: int, n: int) -> mp.mpf:
    """Eq. (5) term by term at 40 digits."""
    a, b, g, d = _mp_params(p)
    c = -_mp_lbeta(a, b) - _mp_lbeta(g, d)
    total = mp.exp(_mp_lbeta(a + x, b + n - x) + _mp_lbeta(g, d + n) + c)
    for i in range(n - tx):
        total += mp.exp(_mp_lbeta(a + x, b + tx - x + i) + _mp_lbeta(g + 1, d + tx + i) + c)
    return total


def _mp_purchase_rate(p: tuple[float, ...], x: int, n: int, s: int) -> mp.mpf:
    """Expected transactions at opportunity n+s times L: the integral of
    p (1-theta)^(n+s) p^x (1-p)^(n-x) against the two beta densities."""
    a, b, g, d = _mp_params(p)
    return mp.exp(_mp_lbeta(a + x + 1, b + n - x) - _mp_lbeta(a, b)
                  + _mp_lbeta(g, d + n + s) - _mp_lbeta(g, d))


def test_mpmath_oracle() -> None:
    rng = np.random.default_rng(11)
    params = [(1.2035, 0.7497, 0.6567, 2.7834), (0.3, 4.0, 2.5, 0.4), (8.0, 0.2, 0.05, 30.0)]
    x, tx, n = _rows(rng, 5, 60)
    t, disc = 7, 0.08
    for p in params:
        ll = bgbb.log_likelihood(*p, x, tx, n)
        alive = bgbb.probability_alive(*p, x, tx, n)
        cond = bgbb.expected_purchases(*p, x, tx, n, t)
        dert = bgbb.expected_discounted_transactions(*p, x, tx, n, disc)
        g, d = mp.mpf(p[2]), mp.mpf(p[3])
        for i, (xi, ti, ni) in enumerate(zip(x.astype(int), tx.astype(int), n.astype(int),
                                             strict=True)):
            lik = _mp_likelihood(p, xi, ti, ni)
            assert ll[i] == pytest.approx(float(mp.log(lik)), rel=1e-13, abs=1e-12)
            a, b = mp.mpf(p[0]), mp.mpf(p[1])
            first = mp.exp(_mp_lbeta(a + xi, b + ni - xi) - _mp_lbeta(a, b)
                           + _mp_lbeta(g, d + ni + 1) - _mp_lbeta(g, d))
            assert alive[i] == pytest.approx(float(first / lik), rel=1e-12)
            expect = sum(_mp_purchase_rate(p, xi, ni, s) for s in range(1, t + 1)) / lik
            assert cond[i] == pytest.approx(float(expect), rel=1e-12)
            ref = mp.nsum(lambda s, p=p, xi=xi, ni=ni: _mp_purchase_rate(p, xi, ni, int(s))
                          / (1 + disc) ** s, [1, mp.inf]) / lik
            assert dert[i] == pytest.approx(float(ref), rel=1e-10)
        # eq. (8) and eq. (9) for a new customer: the pmf by summing over the lifetime
        a, b = mp.mpf(p[0]), mp.mpf(p[1])
        m = 9
        for k in (0, 1, 4, 9):
            ref = mp.binomial(m, k) * mp.exp(_mp_lbeta(a + k, b + m - k) - _mp_lbeta(a, b)
                                             + _mp_lbeta(g, d + m) - _mp_lbeta(g, d))
            for i in range(k, m):
                ref += mp.binomial(i, k) * mp.exp(
                    _mp_lbeta(a + k, b + i - k) - _mp_lbeta(a, b)
                    + _mp_lbeta(g + 1, d + i) - _mp_lbeta(g, d))
            got = bgbb.purchase_count_probability(*p, k, m)
            assert float(got) == pytest.approx(float(ref), rel=1e-12)
        ref = a / (a + b) * sum(mp.exp(_mp_lbeta(g, d + s) - _mp_lbeta(g, d))
                                for s in range(1, m + 1))
        assert float(bgbb.expected_purchases_new_customer(*p, m)) == pytest.approx(
            float(ref), rel=1e-13)


# --------------------------------------------------------------------------------------
# internal consistency
# --------------------------------------------------------------------------------------

PARAM_SETS = [(1.2035, 0.7497, 0.6567, 2.7834), (0.05, 3.0, 1.0, 0.7), (6.0, 0.4, 3.0, 40.0),
              (0.9, 0.9, 0.9999999, 12.0)]


@pytest.mark.parametrize("p", PARAM_SETS)
def test_pmf_sums_to_one_and_has_eq9_mean(p: tuple[float, ...]) -> None:
    for t in (1, 6, 40, 250):
        k = np.arange(t + 1)
        pmf = bgbb.purchase_count_probability(*p, k, t)
        assert np.all(pmf >= 0)
        assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
        mean = float(bgbb.expected_purchases_new_customer(*p, t))
        assert k @ pmf == pytest.approx(mean, rel=1e-11)
    assert bgbb.purchase_count_probability(*p, np.array([-1, 7, 2.5]), 6).tolist() == [0, 0, 0]
    assert bgbb.purchase_count_probability(*p, 0, 0) == 1.0


@pytest.mark.parametrize("p", PARAM_SETS)
def test_conditional_pmf_sums_to_one_and_has_eq13_mean(p: tuple[float, ...]) -> None:
    x, tx, n = _rows(np.random.default_rng(2), 40, 30)
    x, tx, n = np.r_[x, 0, 30, 30], np.r_[tx, 0, 30, 30], np.r_[n, 30, 30, 31]
    for t in (1, 12):
        k = np.arange(t + 1)[:, None]
        pmf = bgbb.conditional_purchase_count_probability(*p, k, x, tx, n, t)
        assert pmf.shape == (t + 1, x.size) and np.all(pmf >= 0)
        np.testing.assert_allclose(pmf.sum(axis=0), 1.0, rtol=0, atol=1e-12)
        np.testing.assert_allclose((k * pmf).sum(axis=0),
                                   bgbb.expected_purchases(*p, x, tx, n, t), rtol=1e-11)
    # nobody alive buys nothing: P(0) >= 1 - P(alive at n+1); no opportunities, no purchases
    p0 = bgbb.conditional_purchase_count_probability(*p, 0, x, tx, n, 5)
    assert np.all(p0 >= 1 - bgbb.probability_alive(*p, x, tx, n) - 1e-12)
    np.testing.assert_allclose(
        bgbb.conditional_purchase_count_probability(*p, 0, x, tx, n, 0), 1.0, rtol=1e-13)


def test_probability_alive_bounds_and_shape() -> None:
    n = 20
    tx, x = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    ok = (x <= tx) & ((x == 0) == (tx == 0))
    x, tx = x[ok].astype(float), tx[ok].astype(float)
    for p in PARAM_SETS:
        alive = bgbb.probability_alive(*p, x, tx, n)
        assert np.all((alive >= 0) & (alive <= 1))
        # for fixed x, a later last transaction means more likely alive
        for xv in range(1, n + 1):
            sel = x == xv
            assert np.all(np.diff(alive[sel][np.argsort(tx[sel])]) > 0)
    # posterior draws broadcast: (S, 1) against rows equals one evaluation per draw
    draws = [np.array([[v], [1.3 * v], [0.7 * v]]) for v in PARAM_SETS[0]]
    stacked = bgbb.probability_alive(*draws, x, tx, n)
    assert stacked.shape == (3, x.size)
    for s in range(3):
        np.testing.assert_allclose(
            stacked[s], bgbb.probability_alive(*(d[s, 0] for d in draws), x, tx, n),
            rtol=1e-13)


@pytest.mark.parametrize("p", [PARAM_SETS[0], (2.0, 1.0, 2.5, 3.0), (0.4, 2.0, 0.3, 0.5)])
def test_dert_matches_a_direct_discounted_sum(p: tuple[float, ...]) -> None:
    x, tx, n = _rows(np.random.default_rng(4), 25, 20)
    horizon = np.arange(0, 1501)
    cum = bgbb.expected_purchases(*p, x[:, None], tx[:, None], n[:, None], horizon)
    per_opportunity = np.diff(cum, axis=1)  # expected transactions at n+1, n+2, ...
    assert np.all(per_opportunity >= 0)
    for d in (0.05, 0.2):
        direct = per_opportunity @ (1 + d) ** -horizon[1:]
        dert = bgbb.expected_discounted_transactions(*p, x, tx, n, d)
        # differencing cumulative expectations costs the reference ~1e-10 (test_mpmath_oracle
        # checks DERT itself to 1e-10 against the series at 40 digits)
        np.testing.assert_allclose(dert, direct, rtol=1e-9)
    undiscounted = bgbb.expected_discounted_transactions(*p, x, tx, n, 0.0)
    if p[2] > 1:  # gamma > 1: finite expected number of all future transactions
        far = bgbb.expected_purchases(*p, x, tx, n, 10**12)  # the tail is ~1e-15 of it
        np.testing.assert_allclose(undiscounted, far, rtol=1e-10)
    else:
        assert np.all(np.isinf(undiscounted))


def test_expected_purchases_new_customer_is_continuous_through_gamma_one() -> None:
    # eq. (9) has a removable singularity at gamma = 1, where it is
    # alpha/(alpha+beta) delta [psi(delta+1+t) - psi(delta+1)]; near it, compare with eq. (9)
    # at 40 digits (the cancellation there leaves ~28 of them)
    t = np.array([1, 6, 17, 400, 20000])
    a, b, d = 1.2, 0.75, 2.78
    at_one = a / (a + b) * d * (special.digamma(d + 1 + t) - special.digamma(d + 1))
    np.testing.assert_allclose(bgbb.expected_purchases_new_customer(a, b, 1.0, d, t), at_one,
                               rtol=1e-14)
    for g in (1 - 1e-12, 1 + 1e-12, 1 - 1e-7, 1 + 1e-7, 1 + 1e-3, 0.98):
        gm, dm = mp.mpf(g), mp.mpf(d)
        ref = [a / (a + b) * float(dm / (gm - 1) * -mp.expm1(
            mp.loggamma(gm + dm) - mp.loggamma(gm + dm + int(s)) + mp.loggamma(1 + dm + int(s))
            - mp.loggamma(1 + dm))) for s in t]
        got = bgbb.expected_purchases_new_customer(a, b, g, d, t)
        np.testing.assert_allclose(got, ref, rtol=1e-13)
    # and it is increasing in t and bounded by the expected purchases of a customer who
    # never dies
    e = bgbb.expected_purchases_new_customer(a, b, 0.6567, d, np.arange(0, 60))
    assert e[0] == 0 and np.all(np.diff(e) > 0) and np.all(e <= a / (a + b) * np.arange(60))


def test_numpy_blocks_do_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    x, tx, n = _rows(np.random.default_rng(8), 300, 200)
    p = PARAM_SETS[0]
    whole = bgbb.log_likelihood(*p, x, tx, n)
    grad = bgbb.log_likelihood_grad(*p, x, tx, n)
    pmf = bgbb.purchase_count_probability(*p, np.arange(41), 40)
    monkeypatch.setattr(bgbb, "_BLOCK_CELLS", 500)
    # (only the order of the float sums over padded cells changes)
    np.testing.assert_allclose(bgbb.log_likelihood(*p, x, tx, n), whole, rtol=1e-14)
    np.testing.assert_allclose(bgbb.log_likelihood_grad(*p, x, tx, n), grad, rtol=1e-12)
    np.testing.assert_allclose(bgbb.purchase_count_probability(*p, np.arange(41), 40), pmf,
                               rtol=1e-13)
    # per-row parameters (the cell-by-cell path) agree with the table path
    per_row = [np.full(x.size, v) for v in p]
    np.testing.assert_allclose(bgbb.log_likelihood(*per_row, x, tx, n), whole, rtol=1e-13)


def test_gradient_matches_finite_differences() -> None:
    x, tx, n = _rows(np.random.default_rng(9), 200, 50)
    for p in PARAM_SETS:
        grad = bgbb.log_likelihood_grad(*p, x, tx, n)
        assert grad.shape == (4, x.size)
        for j in range(4):
            h = 1e-6 * p[j]
            up, down = list(p), list(p)
            up[j] += h
            down[j] -= h
            fd = (bgbb.log_likelihood(*up, x, tx, n) - bgbb.log_likelihood(*down, x, tx, n))
            np.testing.assert_allclose(grad[j], fd / (2 * h), rtol=1e-5,
                                       atol=1e-6 * np.abs(grad[j]).max())


def test_pytensor_likelihood_equals_numpy() -> None:
    pytensor = pytest.importorskip("pytensor")
    import pytensor.tensor as pt

    from clvmodels.models._math import tensor_namespace

    m = tensor_namespace()
    x, tx, n = _rows(np.random.default_rng(6), 40, 25)
    p = PARAM_SETS[0]
    scalars = [pt.dscalar(name) for name in NAMES]
    ll = bgbb.log_likelihood(*scalars, x, tx, n, m=m)
    f = pytensor.function(scalars, [ll, *pt.grad(ll.sum(), scalars)])
    out = f(*p)
    np.testing.assert_allclose(out[0], bgbb.log_likelihood(*p, x, tx, n), rtol=1e-13)
    # autodiff through pytensor's digamma, which is accurate to ~1e-10 (the analytic
    # gradient matches a 40-digit one to ~1e-15)
    np.testing.assert_allclose(out[1:], bgbb.log_likelihood_grad(*p, x, tx, n).sum(axis=1),
                               rtol=1e-8)
    # parameters per row (hierarchical or covariate models) and stacks of draws (S, 1)
    vectors = [pt.dvector(name) for name in NAMES]
    fv = pytensor.function(vectors, bgbb.log_likelihood(*vectors, x, tx, n, m=m),
                           mode="FAST_COMPILE")
    rows = [np.linspace(0.5, 2.0, x.size) * v for v in p]
    np.testing.assert_allclose(fv(*rows), bgbb.log_likelihood(*rows, x, tx, n), rtol=1e-13)
    draws = [pt.tensor(name, dtype="float64", shape=(None, 1)) for name in NAMES]
    fd = pytensor.function(draws, bgbb.log_likelihood(*draws, x, tx, n, m=m),
                           mode="FAST_COMPILE")
    stack = [np.array([[v], [1.5 * v]]) for v in p]
    np.testing.assert_allclose(fd(*stack), bgbb.log_likelihood(*stack, x, tx, n), rtol=1e-13)


# --------------------------------------------------------------------------------------
# simulation
# --------------------------------------------------------------------------------------

TRUTH = {"alpha": 1.5, "beta": 0.8, "gamma": 0.6, "delta": 2.5}


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    T = np.random.default_rng(0).integers(6, 11, 40_000)
    return simulate_frame(T)


def simulate_frame(T: np.ndarray) -> pd.DataFrame:
    return bgbb.simulate_bgbb(T.size, T, **TRUTH, holdout=5, random_seed=123)


def test_simulation_contract(simulated: pd.DataFrame) -> None:
    s = simulated
    assert s.index.name == "customer_id" and list(s.index) == list(range(len(s)))
    assert list(s.columns) == ["frequency", "recency", "T", "frequency_holdout",
                               "duration_holdout"]
    assert all(s[c].dtype == np.int64 for c in s.columns)
    assert "time_unit" not in s.attrs
    x, tx, T, xh = (s[c].to_numpy() for c in ("frequency", "recency", "T",
                                                "frequency_holdout"))
    assert np.all((x <= tx) & (tx <= T) & ((x == 0) == (tx == 0)))
    assert np.all((xh >= 0) & (xh <= 5)) and (s["duration_holdout"] == 5).all()
    assert bgbb.simulate_bgbb(5, 4, **TRUTH).columns.tolist() == ["frequency", "recency", "T"]


def test_simulation_recovers_parameters(simulated: pd.DataFrame) -> None:
    rows = simulated.groupby(["frequency", "recency", "T"]).size().reset_index(name="w")
    p, _, se = _fit(*(rows[c].to_numpy(float) for c in ("frequency", "recency", "T", "w")))
    truth = np.array(list(TRUTH.values()))
    z = (p - truth) / se
    assert np.all(np.abs(z) < 3), dict(zip(NAMES, z.round(2), strict=True))
    assert np.all(se < 0.2 * truth)  # the sample is informative enough for the check to bite


def test_simulation_matches_the_model_distribution(simulated: pd.DataFrame) -> None:
    s = simulated
    # calibration counts of the T = 8 customers against eq. (8): chi-square, 9 cells
    eight = s[s["T"] == 8]
    observed = np.bincount(eight["frequency"], minlength=9)
    expected = len(eight) * bgbb.purchase_count_probability(**TRUTH, k=np.arange(9), t=8)
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert chi2 < 26.1  # 99.9% point of chi-square with 8 degrees of freedom
    # holdout totals against eq. (13) and its conditional pmf: total within 4 standard
    # deviations (sum of per-customer variances)
    args = (s["frequency"].to_numpy(), s["recency"].to_numpy(), s["T"].to_numpy())
    k = np.arange(6)[:, None]
    pmf = bgbb.conditional_purchase_count_probability(**TRUTH, k=k, x=args[0], tx=args[1],
                                                      T=args[2], t=5)
    mean = (k * pmf).sum(axis=0)
    var = (k**2 * pmf).sum(axis=0) - mean**2
    total = s["frequency_holdout"].sum()
    assert abs(total - mean.sum()) < 4 * np.sqrt(var.sum())
    np.testing.assert_allclose(mean, bgbb.expected_purchases(**TRUTH, x=args[0], tx=args[1],
                                                             T=args[2], t=5), rtol=1e-11)


def test_simulation_validates_its_arguments() -> None:
    good = dict(TRUTH)
    with pytest.raises(ValueError, match="n_customers"):
        bgbb.simulate_bgbb(0, 6, **good)
    with pytest.raises(ValueError, match="gamma"):
        bgbb.simulate_bgbb(10, 6, **{**good, "gamma": -1.0})
    with pytest.raises(ValueError, match="alpha"):
        bgbb.simulate_bgbb(10, 6, **{**good, "alpha": np.nan})
    for bad_T in (0, 2.5, [6, 7]):
        with pytest.raises(ValueError, match="T"):
            bgbb.simulate_bgbb(10, bad_T, **good)
    for bad_h in (-1, 1.5):
        with pytest.raises(ValueError, match="holdout"):
            bgbb.simulate_bgbb(10, 6, **good, holdout=bad_h)
    a = bgbb.simulate_bgbb(50, np.arange(1, 51), **good, holdout=3, random_seed=7)
    b = bgbb.simulate_bgbb(50, np.arange(1, 51), **good, holdout=3, random_seed=7)
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(a["T"], np.arange(1, 51))


# --------------------------------------------------------------------------------------
# extreme inputs and validation
# --------------------------------------------------------------------------------------


def test_extreme_inputs_are_finite_without_warnings() -> None:
    rows = np.array([[0, 0, 1], [1, 1, 1], [0, 0, 3000], [3000, 3000, 3000], [1, 1, 3000],
                     [2999, 3000, 3000], [10, 2000, 3000], [1500, 1500, 3000]], dtype=float)
    x, tx, n = rows.T
    values = (1e-6, 1.0, 1e6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for p in np.array(np.meshgrid(*[values] * 4)).reshape(4, -1).T:
            outputs = [
                bgbb.log_likelihood(*p, x, tx, n),
                bgbb.log_likelihood_grad(*p, x, tx, n),
                bgbb.expected_purchases(*p, x, tx, n, 25),
                bgbb.expected_discounted_transactions(*p, x, tx, n, 0.01),
                bgbb.expected_purchases_new_customer(*p, np.array([1, 40, 5000])),
                bgbb.purchase_count_probability(*p, np.array([0, 1, 20]), 20),
                bgbb.conditional_purchase_count_probability(*p, 2, x, tx, n, 4),
            ]
            for out in outputs:
                assert np.all(np.isfinite(out)), p
            alive = bgbb.probability_alive(*p, x, tx, n)
            assert np.all((alive >= 0) & (alive <= 1)), p
            assert np.all(outputs[0] <= 1e-8), p  # ln L <= 0 up to rounding
    # a thousand-opportunity likelihood agrees with the term-by-term sum at 40 digits
    p = (0.05, 30.0, 1e6, 1e-6)
    for r in rows[[2, 6, 7]]:
        ref = float(mp.log(_mp_likelihood(p, *r.astype(int))))
        assert float(bgbb.log_likelihood(*p, *r)) == pytest.approx(ref, rel=1e-12)


def test_large_n_many_rows_is_fast_enough() -> None:
    x, tx, n = _rows(np.random.default_rng(12), 4000, 600)
    ll = bgbb.log_likelihood(*PARAM_SETS[0], x, tx, n)
    assert ll.shape == (4000,) and np.all(np.isfinite(ll)) and np.all(ll < 0)
    # padding never leaks into a row: each row equals its own evaluation
    for i in (0, 1, 2):
        assert ll[i] == pytest.approx(float(bgbb.log_likelihood(*PARAM_SETS[0], x[i], tx[i],
                                                                  n[i])), rel=1e-13)


def test_bad_arguments_are_refused() -> None:
    p = PARAM_SETS[0]
    with pytest.raises(ValueError, match="beta"):
        bgbb.probability_alive(1.0, -1.0, 1.0, 1.0, 1, 1, 2)
    with pytest.raises(ValueError, match="t must be whole"):
        bgbb.expected_purchases(*p, 1, 1, 2, 1.5)
    with pytest.raises(ValueError, match="t must be whole"):
        bgbb.expected_purchases_new_customer(*p, -1)
    with pytest.raises(ValueError, match="discount_rate"):
        bgbb.expected_discounted_transactions(*p, 1, 1, 2, -0.1)
    # per-row parameters (covariates) are served row by row: each row as its scalar gradient
    rows = bgbb.log_likelihood_grad(np.array([1.0, 2.0]), 1.0, 1.0, 1.0, 1, 1, 2)
    for i, al in enumerate((1.0, 2.0)):
        np.testing.assert_allclose(rows[:, i],
                                   bgbb.log_likelihood_grad(al, 1.0, 1.0, 1.0, 1, 1, 2)[:, 0],
                                   rtol=1e-13)
    # impossible rows would index the grids out of range: refused, with their positions
    for x, tx, n in (([1, 3], [2, 2], [4, 4]), ([0, 1], [1, 1], [2, 2]), ([1, 1], [0, 1], [2, 2]),
                     ([1, 1], [2, 3], [2, 2]), ([1, 1.5], [2, 2], [3, 3])):
        with pytest.raises(ValidationError, match=r"positions \[1\]|positions \[0\]"):
            bgbb.log_likelihood(*p, np.array(x), np.array(tx), np.array(n))
        with pytest.raises(ValidationError):
            bgbb.probability_alive(*p, np.array(x), np.array(tx), np.array(n))
    empty = np.array([])
    assert bgbb.log_likelihood(*p, empty, empty, empty).shape == (0,)
    assert bgbb.expected_purchases(*p, empty, empty, empty, 3).shape == (0,)


@pytest.mark.parametrize("delta", [1e6, 1e12, 1e15, 1e17, 1e300])
def test_log_likelihood_stays_exact_when_nobody_drops_out(delta: float) -> None:
    """delta -> infinity: theta ~ Beta(gamma, delta) -> 0, every customer alive throughout, and
    the likelihood is the beta-binomial sequence probability B(alpha+x, beta+n-x) / B(alpha,
    beta). Differences of huge lnG values lost every digit here (at delta = 1e17 the
    log-likelihood came out +5.0); increments do not — in numpy and in PyTensor alike."""
    import pytensor
    import pytensor.tensor as pt
    from scipy.special import betaln

    from clvmodels.models._math import tensor_namespace
    from clvmodels.models.bgbb import log_likelihood

    x, tx, n = np.array([0.0, 1, 2, 5, 6]), np.array([0.0, 3, 5, 5, 6]), np.full(5, 6.0)
    limit = betaln(1.3 + x, 0.8 + n - x) - betaln(1.3, 0.8)
    got = log_likelihood(1.3, 0.8, 0.9, delta, x, tx, n)
    assert np.all(got < 0)
    np.testing.assert_allclose(got, limit, rtol=0, atol=max(1e-9, 50.0 / delta))
    rows = log_likelihood(*(np.full(5, v) for v in (1.3, 0.8, 0.9, delta)), x, tx, n)
    np.testing.assert_allclose(rows, got, rtol=1e-12, atol=1e-12)
    p = [pt.dvector(k) for k in "abgd"]
    f = pytensor.function(p, log_likelihood(*p, x, tx, n, m=tensor_namespace()))
    np.testing.assert_allclose(f(*(np.full(5, v) for v in (1.3, 0.8, 0.9, delta))), got,
                               rtol=0, atol=1e-10)


def test_log_likelihood_with_a_huge_beta_matches_the_increments() -> None:
    """beta = 1e15 (purchases almost never): the same log-likelihood from the scalar tables,
    per-row parameters and PyTensor, and below 0."""
    import pytensor
    import pytensor.tensor as pt

    from clvmodels.models._math import tensor_namespace
    from clvmodels.models.bgbb import log_likelihood

    x, tx, n = np.array([0.0, 1, 2]), np.array([0.0, 3, 5]), np.full(3, 6.0)
    got = log_likelihood(1.0, 1e15, 1.0, 2.0, x, tx, n)
    assert np.all(np.isfinite(got)) and np.all(got < 0)
    # x purchases at probability ~ alpha / beta each: ln L ~ x ln(1e-15) + O(1)
    assert np.all(np.abs(got - x * np.log(1e-15)) < 10)
    rows = log_likelihood(*(np.full(3, v) for v in (1.0, 1e15, 1.0, 2.0)), x, tx, n)
    np.testing.assert_allclose(rows, got, rtol=1e-12, atol=1e-12)
    p = [pt.dscalar(k) for k in "abgd"]
    f = pytensor.function(p, log_likelihood(*p, x, tx, n, m=tensor_namespace()))
    np.testing.assert_allclose(f(1.0, 1e15, 1.0, 2.0), got, rtol=1e-12, atol=1e-12)
