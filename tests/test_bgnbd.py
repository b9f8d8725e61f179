"""BG/NBD and MBG/NBD: published CDNOW numbers, numerical robustness, invariants."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvmodels.models import bgnbd, mbgnbd
from clvmodels.models.base import IdentificationError, NotFittedError
from clvmodels.models.bgnbd import BetaGeo
from clvmodels.models.mbgnbd import ModifiedBetaGeo
from clvmodels.models.persistence import load_model

PUBLISHED = {"r": 0.2425945, "alpha": 4.4136022, "a": 0.7929219, "b": 2.4259062}
ROUNDED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


@pytest.fixture(scope="module")
def bg(_cdnow_rfm: pd.DataFrame) -> BetaGeo:
    return BetaGeo().fit(_cdnow_rfm)


def test_cdnow_parameters_and_loglik(bg: BetaGeo) -> None:
    for name, value in PUBLISHED.items():
        assert bg.params_[name] == pytest.approx(value, rel=2e-5), name
    assert bg.log_likelihood_ == pytest.approx(-9582.4292, abs=1e-3)
    assert bg.converged_
    assert bg.n_customers_ == 2357
    assert bg.time_unit_ == "W"


def test_cdnow_standard_errors(bg: BetaGeo) -> None:
    expected = {"r": 0.0126, "alpha": 0.378, "a": 0.186, "b": 0.706}
    for name, se in expected.items():
        assert bg.standard_errors_[name] == pytest.approx(se, abs=0.0011 * max(1, se * 10))
    cov = bg.covariance_.to_numpy()
    np.testing.assert_allclose(cov, cov.T)
    ci = bg.confidence_intervals_
    assert (ci["lower 95%"] < bg.params_).all() and (ci["upper 95%"] > bg.params_).all()
    assert bg.aic_ == pytest.approx(2 * 4 + 2 * 9582.4292, abs=1e-2)
    assert bg.bic_ == pytest.approx(4 * np.log(2357) + 2 * 9582.4292, abs=1e-2)


def test_cdnow_worked_customer(bg: BetaGeo) -> None:
    c = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]}, index=["c"])
    assert bg.expected_purchases(c, 39).round(3).iloc[0] == 1.226
    assert bg.probability_alive(c).round(4).iloc[0] == 0.7266


def test_cdnow_expected_new_customer_published() -> None:
    # the paper's table was computed with the parameters rounded to 3 decimals
    got = bgnbd.expected_purchases_new_customer(**ROUNDED, t=np.array([39.0, 52.0, 78.0]))
    np.testing.assert_array_equal(np.round(got, 4), [1.1967, 1.4461, 1.8605])


def test_cdnow_expected_histogram(bg: BetaGeo, cdnow_rfm: pd.DataFrame) -> None:
    hist = bg.expected_frequency_histogram(cdnow_rfm, max_frequency=7)
    np.testing.assert_array_equal(
        hist.round(1).to_numpy(), [1407.7, 460.3, 192.5, 101.2, 59.8, 38.1, 25.5, 71.9]
    )
    assert hist.sum() == pytest.approx(2357)


def test_analytic_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 30, 50).astype(float)
    T = rng.uniform(1, 60, 50)
    tx = np.where(x > 0, T * rng.uniform(0, 1, 50), 0.0)
    for modified in (False, True):
        p = np.array([0.4, 3.0, 0.7, 1.6])
        g = bgnbd.bg_family_log_likelihood_grad(*p, x, tx, T, modified=modified)
        for k in range(4):
            h = 1e-6 * p[k]
            up, dn = p.copy(), p.copy()
            up[k] += h
            dn[k] -= h
            num = (bgnbd.bg_family_log_likelihood(*up, x, tx, T, modified=modified)
                   - bgnbd.bg_family_log_likelihood(*dn, x, tx, T, modified=modified)) / (2 * h)
            np.testing.assert_allclose(g[k], num, rtol=1e-5, atol=1e-7)


def test_likelihood_on_compressed_rows_equals_full_data(cdnow_rfm: pd.DataFrame, bg: BetaGeo
                                                       ) -> None:
    p = bg.params_
    full = bgnbd.log_likelihood(p.r, p.alpha, p.a, p.b, cdnow_rfm["frequency"].to_numpy(float),
                                cdnow_rfm["recency"].to_numpy(), cdnow_rfm["T"].to_numpy())
    assert full.sum() == pytest.approx(bg.log_likelihood_, rel=1e-12)


def test_penalizer_independent_of_compression(cdnow_rfm: pd.DataFrame) -> None:
    doubled = pd.concat([cdnow_rfm, cdnow_rfm.set_axis(cdnow_rfm.index + 10_000)])
    doubled.attrs = dict(cdnow_rfm.attrs)
    a = BetaGeo(penalizer=0.1).fit(cdnow_rfm).params_
    b = BetaGeo(penalizer=0.1).fit(doubled).params_
    np.testing.assert_allclose(a, b, rtol=1e-5)
    plain = BetaGeo().fit(cdnow_rfm).params_
    assert not np.allclose(a, plain, rtol=1e-3)  # the penalty does something


def test_predictions_keep_index_and_do_not_mutate(bg: BetaGeo, cdnow_rfm: pd.DataFrame) -> None:
    frame = cdnow_rfm.sample(50, random_state=0)
    before = frame.copy(deep=True)
    out = bg.expected_purchases(frame, 10)
    assert out.index.equals(frame.index)
    pd.testing.assert_frame_equal(frame, before)
    assert bg.probability_alive(frame).index.equals(frame.index)


def test_time_unit_mismatch_refused(bg: BetaGeo, cdnow_rfm: pd.DataFrame) -> None:
    days = cdnow_rfm.copy()
    days.attrs["time_unit"] = "D"
    with pytest.raises(ValueError, match="time unit"):
        bg.expected_purchases(days, 10)


def test_not_fitted() -> None:
    with pytest.raises(NotFittedError):
        BetaGeo().probability_alive(pd.DataFrame({"frequency": [1], "recency": [1], "T": [2]}))


def test_save_load_round_trip(bg: BetaGeo, cdnow_rfm: pd.DataFrame, tmp_path) -> None:
    path = bg.save(tmp_path / "bg.json")
    payload = json.loads(path.read_text())
    assert payload["model"] == "BetaGeo" and payload["time_unit"] == "W"
    assert "package_version" in payload and len(payload["covariance"]) == 4
    loaded = load_model(path)
    assert isinstance(loaded, BetaGeo)
    pd.testing.assert_series_equal(loaded.params_, bg.params_)
    pd.testing.assert_series_equal(loaded.expected_purchases(cdnow_rfm, 39),
                                   bg.expected_purchases(cdnow_rfm, 39))
    assert b"pickle" not in path.read_bytes()


def test_fit_refuses_when_unidentified() -> None:
    # nobody ever repeats: the dropout process is not identified — an error, not a warning
    # and the starting values (issue 9)
    rfm = pd.DataFrame({"frequency": [0] * 50, "recency": [0.0] * 50, "T": [10.0] * 50})
    rfm.attrs["time_unit"] = "W"
    with pytest.raises(IdentificationError, match="no customer made a repeat purchase"):
        BetaGeo().fit(rfm)


# ---------------------------------------------------------------- numerical robustness

EXTREME = pd.DataFrame(
    {
        "frequency": [0, 0, 1, 10_000, 10_000, 10_000, 5_000, 100, 3],
        # repeat buyers need a positive recency (validate_rfm refuses 0 since issue 9)
        "recency": [0.0, 0.0, 1e-6, 1e-6, 10_000, 9_999.9, 10_000, 10_000, 1e-6],
        "T": [1e-6, 10_000, 10_000, 10_000, 10_000, 10_000, 10_000, 10_000, 1e-6],
    }
)
EXTREME.attrs["time_unit"] = "W"
PARAM_SETS = [PUBLISHED, {"r": 2.0, "alpha": 0.5, "a": 3.0, "b": 0.4},
              {"r": 0.05, "alpha": 80.0, "a": 0.3, "b": 12.0},
              {"r": 1.0, "alpha": 1.0, "a": 1.0, "b": 1.0}]


@pytest.mark.parametrize("model_cls", [BetaGeo, ModifiedBetaGeo])
@pytest.mark.parametrize("params", PARAM_SETS)
def test_extreme_inputs_finite_and_monotone(model_cls, params) -> None:
    model = model_cls.from_dict({"params": params, "covariance": np.eye(4).tolist(),
                                 "time_unit": "W", "log_likelihood": 0.0, "aic": 0.0,
                                 "bic": 0.0, "n_customers": 1, "converged": True})
    pa = model.probability_alive(EXTREME)
    assert np.all(np.isfinite(pa)) and np.all((pa >= 0) & (pa <= 1))
    times = np.array([0.0, 1e-3, 1.0, 39.0, 1_000.0, 10_000.0])
    cum = model.cumulative_expected_purchases(EXTREME, times)
    assert np.all(np.isfinite(cum)), cum
    assert np.all(cum >= 0)
    assert np.all(np.diff(cum, axis=1) >= -1e-9 * np.abs(cum[:, 1:]))
    new = model.expected_purchases_new_customer(times)
    assert np.all(np.isfinite(new)) and np.all(np.diff(new) >= 0)


def test_mbg_reduces_probability_alive_for_one_timers() -> None:
    p = PUBLISHED
    pa_bg = bgnbd.probability_alive(**p, x=0.0, tx=0.0, T=30.0)
    pa_mbg = mbgnbd.probability_alive(**p, x=0.0, tx=0.0, T=30.0)
    assert pa_bg == 1.0 and 0 < pa_mbg < 1


@pytest.mark.parametrize("modified", [False, True])
def test_pmf_mean_matches_expectation(modified: bool) -> None:
    n = np.arange(0, 400, dtype=float)
    for t in (1.0, 39.0, 200.0):
        pmf = bgnbd.bg_family_pmf(**PUBLISHED, n=n, t=t, modified=modified)
        assert pmf.sum() == pytest.approx(1.0, abs=1e-6)
        mean = bgnbd.bg_family_expected_new(**PUBLISHED, t=t, modified=modified)
        assert (n * pmf).sum() == pytest.approx(float(mean), rel=1e-4)


params_st = st.fixed_dictionaries({
    "r": st.floats(0.05, 5), "alpha": st.floats(0.1, 50), "a": st.floats(0.1, 5),
    "b": st.floats(0.1, 10)})


@settings(max_examples=60, deadline=None)
@given(params_st, st.integers(0, 2000), st.floats(0, 1), st.floats(0.01, 2000),
       st.floats(0.01, 500), st.booleans())
def test_invariants(params, x, frac, T, t, modified) -> None:
    tx = frac * T if x > 0 else 0.0
    pa = bgnbd.bg_family_probability_alive(**params, x=x, tx=tx, T=T, modified=modified)
    assert 0.0 <= pa <= 1.0
    ts = np.array([t / 2, t])
    e = bgnbd.bg_family_expected_purchases(**params, x=x, tx=tx, T=T, t=ts, modified=modified)
    assert np.all(np.isfinite(e)) and np.all(e >= 0)
    assert e[1] >= e[0] * (1 - 1e-9)
    e_new = bgnbd.bg_family_expected_new(**params, t=ts, modified=modified)
    assert np.all(np.isfinite(e_new)) and e_new[1] >= e_new[0] * (1 - 1e-9)


@settings(max_examples=30, deadline=None)
@given(params_st, st.floats(0.1, 100), st.booleans())
def test_pmf_sums_to_one(params, t, modified) -> None:
    # enough terms for the count distribution's tail at these parameters
    n = np.arange(0, 20_000, dtype=float)
    pmf = bgnbd.bg_family_pmf(**params, n=n, t=t, modified=modified)
    assert np.all(pmf >= 0)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-6)


def test_mbg_fit_on_cdnow(cdnow_rfm: pd.DataFrame, bg: BetaGeo) -> None:
    mbg = ModifiedBetaGeo().fit(cdnow_rfm)
    assert mbg.converged_
    assert np.isfinite(mbg.log_likelihood_)
    # nested-ish alternative: within a few LL points of the BG/NBD on these data
    assert abs(mbg.log_likelihood_ - bg.log_likelihood_) < 50
    assert mbg.summary().shape == (4, 4)


@pytest.mark.parametrize("modified", [False, True])
def test_fused_value_and_gradient_match_plain_likelihood(modified: bool) -> None:
    from clvmodels.rows import UniqueRows

    rng = np.random.default_rng(5)
    n = 2000
    x = rng.integers(0, 40, n).astype(float)
    T = rng.uniform(0.5, 60, n)
    tx = np.where(x > 0, T * rng.uniform(0, 1, n), 0.0)
    w = rng.integers(1, 5, n).astype(float)
    p = (0.4, 3.0, 0.7, 0.6)  # b < 1: x = 0 rows must not touch log(b - 1)
    rows_ = UniqueRows({"frequency": x, "recency": tx, "T": T}, w, np.arange(n))
    total, grad = bgnbd.bg_family_value_and_grad(*p, rows_, modified=modified)
    plain = w @ bgnbd.bg_family_log_likelihood(*p, x, tx, T, modified=modified)
    rows = bgnbd.bg_family_log_likelihood_grad(*p, x, tx, T, modified=modified)
    assert total == pytest.approx(plain, rel=1e-12)
    np.testing.assert_allclose(grad, rows @ w, rtol=1e-10)


@pytest.mark.parametrize("a, b", [(0.3, 0.4), (0.5, 0.5), (0.5, 0.499), (0.9, 0.05)])
def test_expected_purchases_when_a_plus_b_at_most_one(a: float, b: float) -> None:
    # c = a + b - 1 <= 0: a pole of 2F1 at c = 0 that the full expression removes
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    for t in (1e-3, 1.0, 39.0, 1e4):
        bb = b + 1e-12 if a + b == 1 else b
        exact = float((a + bb - 1) / (a - 1) * (1 - mpmath.mpf(1.0 / (1 + t))
                      * mpmath.hyp2f1(1.0, bb, a + bb - 1, mpmath.mpf(t) / (1 + t))))
        got = bgnbd.expected_purchases_new_customer(1.0, 1.0, a, b, t)
        assert got == pytest.approx(exact, rel=1e-8)
