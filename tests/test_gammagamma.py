"""Gamma-Gamma: published CDNOW numbers, invariants, the independence check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvmodels import ValidationError
from clvmodels.datakinds import kind_rows
from clvmodels.models import gammagamma
from clvmodels.models.gammagamma import GammaGamma
from clvmodels.models.mle import MLEModel
from clvmodels.models.persistence import load_model
from clvmodels.rows import UniqueRows
from clvmodels.simulate import simulate_gammagamma


@pytest.fixture(scope="module")
def gg(_cdnow_rfm: pd.DataFrame) -> GammaGamma:
    return GammaGamma().fit(_cdnow_rfm)


def test_cdnow_published(gg: GammaGamma, cdnow_rfm: pd.DataFrame) -> None:
    assert round(gg.params_["p"], 2) == 6.25
    assert round(gg.params_["q"], 2) == 3.74
    assert round(gg.params_["v"], 2) == 15.44
    assert round(gg.log_likelihood_, 2) == -4055.92
    assert gg.n_customers_ == 946
    assert round(gg.data_summary_["observed_mean_spend"], 2) == 35.08
    assert round(gg.population_mean_spend(), 2) == 35.17


def test_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(1, 20, 40).astype(float)
    mx = rng.gamma(3, 10, 40)
    p = np.array([5.0, 3.0, 12.0])
    g = gammagamma.log_likelihood_grad(*p, x, mx)
    for k in range(3):
        h = 1e-6 * p[k]
        up, dn = p.copy(), p.copy()
        up[k] += h
        dn[k] -= h
        num = (gammagamma.log_likelihood(*up, x, mx) - gammagamma.log_likelihood(*dn, x, mx)) / (
            2 * h)
        np.testing.assert_allclose(g[k], num, rtol=1e-5)


def test_expected_spend_one_timers_get_population_mean(gg: GammaGamma, cdnow_rfm) -> None:
    spend = gg.expected_spend(cdnow_rfm)
    zero = cdnow_rfm["frequency"] == 0
    np.testing.assert_allclose(spend[zero], gg.population_mean_spend())
    assert spend.index.equals(cdnow_rfm.index)


@settings(max_examples=80, deadline=None)
@given(st.floats(0.5, 20), st.floats(1.05, 20), st.floats(0.5, 100), st.integers(1, 10_000),
       st.floats(0.01, 10_000))
def test_spend_between_own_mean_and_population_mean(p, q, v, x, mx) -> None:
    e = gammagamma.expected_spend(p, q, v, x, mx)
    pop = gammagamma.population_mean_spend(p, q, v)
    lo, hi = min(mx, pop), max(mx, pop)
    assert lo * (1 - 1e-9) <= e <= hi * (1 + 1e-9)


def test_correlation_check_reported(gg: GammaGamma, cdnow_rfm) -> None:
    corr = GammaGamma.frequency_spend_correlation(cdnow_rfm)
    assert corr["n"] == 946
    assert -1 < corr["pearson"] < 1
    assert corr["pearson"] == pytest.approx(gg.data_summary_["pearson_frequency_spend"])


def test_correlated_data_warns() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(1, 30, 500)
    rfm = pd.DataFrame({"frequency": x, "recency": 1.0, "T": 2.0,
                        "monetary_value": x * 3.0 + rng.gamma(2, 1, 500)})
    with pytest.warns(UserWarning, match="correlated"):
        GammaGamma().fit(rfm)


def test_needs_monetary_and_repeat_buyers(cdnow_rfm) -> None:
    with pytest.raises(ValidationError, match="monetary_value"):
        GammaGamma().fit(cdnow_rfm.drop(columns="monetary_value"))
    with pytest.raises(ValidationError, match="repeat buyers"):
        GammaGamma().fit(cdnow_rfm[cdnow_rfm["frequency"] == 0])


def test_save_load(gg: GammaGamma, tmp_path, cdnow_rfm) -> None:
    loaded = load_model(gg.save(tmp_path / "gg.json"))
    pd.testing.assert_series_equal(loaded.expected_spend(cdnow_rfm), gg.expected_spend(cdnow_rfm))


# ---- the fused likelihood, the analytic Hessian and the fast data path (issue 12) ----------

def _rows(x: np.ndarray, mx: np.ndarray, w: np.ndarray | None = None) -> UniqueRows:
    w = np.ones(len(x)) if w is None else w
    return UniqueRows(columns={"frequency": x, "monetary_value": mx}, weights=w,
                      inverse=np.arange(len(x)))


@pytest.mark.parametrize("layout", ["sorted", "unsorted-weighted"])
def test_fused_value_grad_hess_equal_plain_sums_and_finite_differences(layout: str) -> None:
    rng = np.random.default_rng(4)
    x = rng.integers(1, 25, 400).astype(float)
    mx = rng.gamma(3, 10, 400)
    w = None
    if layout == "sorted":
        order = np.lexsort((mx, x))
        x, mx = x[order], mx[order]
    else:
        w = rng.integers(1, 6, 400).astype(float)
    d = _rows(x, mx, w)
    wt = d.w
    theta = np.array([4.0, 2.5, 9.0])
    total, grad, hess = gammagamma.value_grad_hess(*theta, d)
    plain = gammagamma.log_likelihood(*theta, x, mx)
    np.testing.assert_allclose(total, np.dot(wt, plain), rtol=1e-12)
    np.testing.assert_allclose(grad, gammagamma.log_likelihood_grad(*theta, x, mx) @ wt,
                               rtol=1e-10)
    # the model's hooks return the same; the Hessian is symmetric
    gg = GammaGamma()
    p = dict(zip(gg.param_names, theta, strict=True))
    t2, g2 = gg._value_and_grad(p, d)
    assert t2 == total and np.array_equal(g2, grad)
    np.testing.assert_array_equal(hess, hess.T)
    for k in range(3):
        h = 1e-6 * theta[k]
        up, dn = theta.copy(), theta.copy()
        up[k] += h
        dn[k] -= h
        v_up, g_up, _ = gammagamma.value_grad_hess(*up, d)
        v_dn, g_dn, _ = gammagamma.value_grad_hess(*dn, d)
        np.testing.assert_allclose(grad[k], (v_up - v_dn) / (2 * h), rtol=1e-6)
        np.testing.assert_allclose(hess[:, k], (g_up - g_dn) / (2 * h), rtol=1e-6)


def test_fused_hook_declines_per_row_parameters() -> None:
    """Covariates by row pass each row's v: the fused hooks answer None and the broadcasting
    per-row likelihood (which the row mode uses) serves instead."""
    rng = np.random.default_rng(5)
    x = rng.integers(1, 9, 50).astype(float)
    mx = rng.gamma(3, 10, 50)
    d = _rows(x, mx)
    v_rows = rng.uniform(5, 20, 50)
    p = {"p": 4.0, "q": 2.5, "v": v_rows}
    gg = GammaGamma()
    assert gg._value_and_grad(p, d) is None
    assert gg._value_grad_hess(p, d) is None
    per_row = gg._loglik(p, d)
    expected = [gammagamma.log_likelihood(4.0, 2.5, v, xi, mi)
                for v, xi, mi in zip(v_rows, x, mx, strict=True)]
    np.testing.assert_allclose(per_row, expected, rtol=1e-12)


#: the previous implementation's CDNOW estimates (L-BFGS-B on per-row sums, Newton polish on
#: finite-difference Hessians; commit aab89c9), full precision
_PREVIOUS_CDNOW = {"p": 6.2495722713069926, "q": 3.7442246671343864, "v": 15.44352096264402}
_PREVIOUS_LL = -4055.917694801874
_PREVIOUS_PENALISED = {"p": 4.109223044955302, "q": 0.9683928187226404, "v": 3.780768258142398}


def test_estimates_equal_previous_implementation(gg: GammaGamma, cdnow_rfm) -> None:
    for name, value in _PREVIOUS_CDNOW.items():
        assert gg.params_[name] == pytest.approx(value, rel=1e-8)
    assert gg.log_likelihood_ == pytest.approx(_PREVIOUS_LL, rel=1e-12)
    assert gg.converged_
    with pytest.warns(UserWarning, match="q <= 1"):
        pen = GammaGamma(penalizer=0.01).fit(cdnow_rfm)
    for name, value in _PREVIOUS_PENALISED.items():
        assert pen.params_[name] == pytest.approx(value, rel=1e-8)


def test_newton_and_analytic_hessian_match_lbfgs_and_finite_differences(
        gg: GammaGamma, cdnow_rfm, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the Hessian hook the fit takes the generic path (L-BFGS-B, finite-difference
    Hessian): same estimates; standard errors agree to the differences' accuracy; Newton
    needs far fewer likelihood passes."""
    assert gg._optimizer_result.nit <= 15
    d = GammaGamma()._fit_data(cdnow_rfm)
    u = np.log(gg.params_.to_numpy())
    model = GammaGamma(penalizer=0.05)
    analytic = model._analytic_hessian_log(d, u)
    numeric = model._hessian_log(model._objective(d), u)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-9)
    monkeypatch.setattr(GammaGamma, "_value_grad_hess", MLEModel._value_grad_hess)
    generic = GammaGamma().fit(cdnow_rfm)
    assert generic._optimizer_result.nit > gg._optimizer_result.nit
    np.testing.assert_allclose(gg.params_, generic.params_, rtol=1e-8)
    np.testing.assert_allclose(gg.standard_errors_, generic.standard_errors_, rtol=1e-4)
    np.testing.assert_allclose(gg.covariance_, generic.covariance_, rtol=1e-4)


def test_fast_rows_equal_general_compression() -> None:
    """Distinct spends: the rows (order, weights, inverse, covariate columns) are exactly
    those of the general compression, and the correlations those of the frame."""
    rng = np.random.default_rng(6)
    n = 3000
    rfm = pd.DataFrame({"frequency": rng.geometric(0.4, n) - 1,
                        "monetary_value": rng.gamma(3, 10, n),
                        "z": rng.normal(size=n)}, index=pd.Index(rng.permutation(n) + 7))
    rfm.loc[rfm["frequency"] == 0, "monetary_value"] = 0.0
    extra = {"__z0": rfm["z"].to_numpy()}
    fast = gammagamma._distinct_spend_rows(rfm, extra)
    general = kind_rows(rfm, "spend", extra_codes=extra)
    assert fast is not None
    assert list(fast.columns) == list(general.columns)
    for name in general.columns:
        np.testing.assert_array_equal(fast.columns[name], general.columns[name])
    np.testing.assert_array_equal(fast.weights, general.weights)
    np.testing.assert_array_equal(fast.inverse, general.inverse)
    assert fast.index.equals(general.index)
    corr = gammagamma._rows_correlation(fast)
    ref = GammaGamma.frequency_spend_correlation(rfm)
    assert corr["n"] == ref["n"]
    assert corr["pearson"] == pytest.approx(ref["pearson"], rel=1e-12)
    assert corr["spearman"] == pytest.approx(ref["spearman"], rel=1e-12)
    # a repeated spend: the general path compresses (and the fit agrees either way)
    rfm.iloc[[1, 2], rfm.columns.get_loc("monetary_value")] = 12.5
    rfm.iloc[[1, 2], rfm.columns.get_loc("frequency")] = 3
    assert gammagamma._distinct_spend_rows(rfm, None) is None
    fit = GammaGamma().fit(rfm)
    weighted = GammaGamma().fit(rfm.assign(w=1), weights="w")
    np.testing.assert_allclose(fit.params_, weighted.params_, rtol=1e-8)
    assert fit.data_summary_["n_unique_rows"] == fit.n_customers_ - 1


def test_fast_path_refuses_bad_rows_like_the_general_path() -> None:
    rfm = pd.DataFrame({"frequency": [1, 2, 3], "monetary_value": [10.0, -1.0, 4.0]},
                       index=["a", "b", "c"])
    with pytest.raises(ValidationError, match="monetary_value"):
        GammaGamma().fit(rfm)


def test_spend_covariates_by_pattern_equal_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """A categorical spend covariate is fitted pattern by pattern (the fused pass on each
    level's rows, scalar parameters) or, forced, row by row (per-row v through the
    broadcasting likelihood): the same estimates, and close to the truth."""
    from clvmodels.models import covariate_fit

    rng = np.random.default_rng(8)
    n = 6000
    channel = rng.choice(["shop", "web", "app"], n)
    effect = {"app": 0.0, "shop": 0.4, "web": -0.3}
    v = 15.0 * np.exp(np.array([effect[c] for c in channel]))
    rfm = simulate_gammagamma(n, 6.0, 3.5, v, frequency=rng.geometric(0.3, n), random_seed=9)
    rfm["channel"] = channel
    by_pattern = GammaGamma(spend_covariates=["channel"]).fit(rfm)
    assert by_pattern.data_summary_["covariate_evaluation"] == "pattern"
    monkeypatch.setattr(covariate_fit, "MAX_PATTERNS", 0)
    by_row = GammaGamma(spend_covariates=["channel"]).fit(rfm)
    assert by_row.data_summary_["covariate_evaluation"] == "row"
    np.testing.assert_allclose(by_pattern.params_, by_row.params_, rtol=1e-7)
    assert by_pattern.log_likelihood_ == pytest.approx(by_row.log_likelihood_, rel=1e-12)
    z = (by_pattern.params_["spend:channel[shop]"] - 0.4) / by_pattern.standard_errors_[
        "spend:channel[shop]"]
    assert abs(z) < 4
