"""Discounted CLV: exact identities and a brute-force loop as the oracle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvmodels.models.bgnbd import BetaGeo
from clvmodels.models.gammagamma import GammaGamma
from clvmodels.valuation import customer_lifetime_value, discount_factors, period_length


@pytest.fixture(scope="module")
def models(_cdnow_rfm: pd.DataFrame) -> tuple[BetaGeo, GammaGamma]:
    return BetaGeo().fit(_cdnow_rfm), GammaGamma().fit(_cdnow_rfm)


def test_zero_discount_equals_undiscounted_exactly(models, cdnow_rfm) -> None:
    bg, gg = models
    out = customer_lifetime_value(bg, gg, cdnow_rfm, horizon=52, discount_rate=0.0, margin=0.3)
    # Abel summation with every factor 1 telescopes exactly to E[Y(horizon)]
    np.testing.assert_array_equal(
        out["clv"].to_numpy(),
        0.3 * out["expected_spend"].to_numpy() * out["expected_purchases"].to_numpy())
    # and that is the model's expected_purchases (the valuation path evaluates 2F1 over
    # all period boundaries at once: equal to rounding)
    expected = 0.3 * gg.expected_spend(cdnow_rfm) * bg.expected_purchases(cdnow_rfm, 52)
    np.testing.assert_allclose(out["clv"].to_numpy(), expected.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(out["expected_purchases"].to_numpy(),
                               bg.expected_purchases(cdnow_rfm, 52).to_numpy(), rtol=1e-12)


def test_matches_brute_force_monthly_loop(models, cdnow_rfm) -> None:
    bg, gg = models
    rate, horizon = 0.12, 52.0
    out = customer_lifetime_value(bg, gg, cdnow_rfm, horizon=horizon, discount_rate=rate,
                                  margin=0.5, period="M")
    month = 365.25 / 12 / 7  # weeks
    spend = gg.expected_spend(cdnow_rfm)
    total = pd.Series(0.0, index=cdnow_rfm.index)
    start = 0.0
    while start < horizon - 1e-9:
        end = min(start + month, horizon)
        bought = bg.expected_purchases(cdnow_rfm, end) - bg.expected_purchases(cdnow_rfm, start)
        total += bought / (1 + rate) ** (end * 7 / 365.25)
        start = end
    np.testing.assert_allclose(out["clv"], 0.5 * spend * total, rtol=1e-10)


def test_discounting_orders(models, cdnow_rfm) -> None:
    bg, gg = models
    kw = dict(horizon=104, margin=1.0)
    none = customer_lifetime_value(bg, gg, cdnow_rfm, discount_rate=0.0, **kw)["clv"]
    low = customer_lifetime_value(bg, gg, cdnow_rfm, discount_rate=0.05, **kw)["clv"]
    high = customer_lifetime_value(bg, gg, cdnow_rfm, discount_rate=0.30, **kw)["clv"]
    assert (low <= none).all() and (high <= low).all() and high.sum() < low.sum() < none.sum()
    cont = customer_lifetime_value(bg, gg, cdnow_rfm, discount_rate=0.30,
                                   discounting="continuous", **kw)["clv"]
    # discounting mid-day instead of at month end values purchases a little more
    assert (cont >= high).all()
    assert cont.sum() == pytest.approx(high.sum(), rel=0.02)
    daily = customer_lifetime_value(bg, gg, cdnow_rfm, discount_rate=0.30, period="D",
                                    **kw)["clv"]
    assert cont.sum() == pytest.approx(daily.sum(), rel=1e-3)


def test_output_shape_cac_and_no_mutation(models, cdnow_rfm) -> None:
    bg, gg = models
    frame = cdnow_rfm.iloc[::7]
    before = frame.copy(deep=True)
    out = customer_lifetime_value(bg, gg, frame, horizon=26, discount_rate=0.1,
                                  acquisition_cost=20.0)
    pd.testing.assert_frame_equal(frame, before)
    assert out.index.equals(frame.index)
    assert list(out.columns) == ["expected_purchases", "probability_alive", "expected_spend",
                                 "clv", "clv_to_cac"]
    np.testing.assert_allclose(out["clv_to_cac"], out["clv"] / 20.0)
    assert out.notna().all().all()


def test_constant_spend_and_errors(models, cdnow_rfm) -> None:
    bg, _ = models
    out = customer_lifetime_value(bg, 10.0, cdnow_rfm, horizon=10, discount_rate=0.0)
    np.testing.assert_allclose(out["clv"], 10 * bg.expected_purchases(cdnow_rfm, 10))
    with pytest.raises(ValueError, match="closed form"):
        customer_lifetime_value(bg, 10.0, cdnow_rfm, horizon=np.inf, discount_rate=0.1)
    with pytest.raises(ValueError, match="annual"):
        customer_lifetime_value(bg, 10.0, cdnow_rfm, horizon=10, discount_rate=-2)
    with pytest.raises(ValueError, match="horizon"):
        customer_lifetime_value(bg, 10.0, cdnow_rfm, horizon=0, discount_rate=0.1)


def test_helpers() -> None:
    assert period_length("M", "W") == pytest.approx(365.25 / 12 / 7)
    assert period_length(4.0, "W") == 4.0
    np.testing.assert_allclose(discount_factors(np.array([365.25]), 0.1, "D"), [1 / 1.1])


@pytest.mark.parametrize("model_cls", ["BetaGeo", "ModifiedBetaGeo"])
def test_cumulative_fast_path_equals_direct_formula(model_cls, cdnow_rfm) -> None:
    import clvmodels

    model = getattr(clvmodels, model_cls)().fit(cdnow_rfm)
    times = np.array([0.5, 4.0, 39.0, 104.0])
    fast = model.cumulative_expected_purchases(cdnow_rfm, times)
    direct = np.column_stack([model.expected_purchases(cdnow_rfm, t) for t in times])
    np.testing.assert_allclose(fast, direct, rtol=1e-12)


def test_agrees_with_lifetimes_clv(models, cdnow_rfm) -> None:
    """lifetimes as oracle: its months are 4.345 weeks and its rate is per month."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter, GammaGammaFitter
    bg, gg = models
    lbg, lgg = BetaGeoFitter(), GammaGammaFitter()
    lbg.params_, lgg.params_ = bg.params_.copy(), gg.params_.copy()
    lbg.predict = lbg.conditional_expected_number_of_purchases_up_to_time
    theirs = lgg.customer_lifetime_value(lbg, cdnow_rfm["frequency"], cdnow_rfm["recency"],
                                         cdnow_rfm["T"], cdnow_rfm["monetary_value"], time=12,
                                         discount_rate=0.01, freq="W")
    ours = customer_lifetime_value(bg, gg, cdnow_rfm, horizon=12 * 4.345, period=4.345,
                                   discount_rate=1.01 ** (365.25 / (4.345 * 7)) - 1)
    np.testing.assert_allclose(ours["clv"].to_numpy(), theirs.to_numpy(), rtol=1e-9)


def test_infinite_horizon_dert_matches_long_numerical_horizon(cdnow_rfm) -> None:
    """Pareto/NBD, horizon=inf: the closed form (DERT, FHL 2005 JMR eq. 2) against the
    numerically discounted 60-year horizon (the tail beyond is negligible at 15 %/year)."""
    from clvmodels import ParetoNBD

    pnbd, gg = ParetoNBD().fit(cdnow_rfm), GammaGamma().fit(cdnow_rfm)
    kw = dict(discount_rate=0.15, discounting="continuous")
    inf = customer_lifetime_value(pnbd, gg, cdnow_rfm, horizon=np.inf, **kw)
    long = customer_lifetime_value(pnbd, gg, cdnow_rfm, horizon=52 * 60, **kw)
    assert inf["clv"].notna().all() and (inf["clv"] >= long["clv"]).all()
    assert inf["clv"].sum() == pytest.approx(long["clv"].sum(), rel=1e-4)
