"""Gamma-Gamma: published CDNOW numbers, invariants, the independence check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvmodels import ValidationError
from clvmodels.models import gammagamma
from clvmodels.models.gammagamma import GammaGamma
from clvmodels.models.persistence import load_model


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
