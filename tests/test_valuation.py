"""Discounted CLV: exact identities and a brute-force loop as the oracle."""

from __future__ import annotations

import re

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
    with pytest.warns(UserWarning, match="diverges"):  # s < 1: E[Y(inf)] is infinite
        inf = customer_lifetime_value(pnbd, gg, cdnow_rfm, horizon=np.inf, **kw)
    long = customer_lifetime_value(pnbd, gg, cdnow_rfm, horizon=52 * 60, **kw)
    assert inf["clv"].notna().all() and (inf["clv"] >= long["clv"]).all()
    assert inf["clv"].sum() == pytest.approx(long["clv"].sum(), rel=1e-4)


# --------------------------------------------------------------------------------------
# trustworthy at the edges: the argument rules (each with several variants)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("margin", "hint"), [(30, "0.30"), (30.0, "0.30"), (1.5, "0.015"),
                                               (45, "0.45"), (100, "1.00")])
def test_margin_above_one_is_refused_with_the_share(models, cdnow_rfm, margin, hint) -> None:
    bg, gg = models
    with pytest.raises(ValueError, match=rf"\[0, 1\].*margin={re.escape(hint)}"):
        customer_lifetime_value(bg, gg, cdnow_rfm, horizon=52, discount_rate=0.1, margin=margin)


def test_margin_other_bad_values(models, cdnow_rfm) -> None:
    bg, gg = models
    for bad, error in [(-0.1, ValueError), (np.nan, ValueError), (np.inf, ValueError),
                       (1000, ValueError), ("0.3", TypeError), (True, TypeError),
                       (None, TypeError)]:
        with pytest.raises(error, match="margin"):
            customer_lifetime_value(bg, gg, cdnow_rfm, horizon=52, discount_rate=0.1,
                                    margin=bad)
    for fine in (0, 0.0, 1, np.float64(0.3)):
        customer_lifetime_value(bg, gg, cdnow_rfm.iloc[:5], horizon=4, discount_rate=0.1,
                                margin=fine)


def test_models_in_the_wrong_places_are_named(models, cdnow_rfm) -> None:
    from clvmodels import ParetoNBD
    from clvmodels.models.base import NotFittedError

    bg, gg = models
    kw = dict(horizon=52, discount_rate=0.1)
    cases = [
        ((gg, bg), TypeError, "transaction_model is a spend model.*swap"),
        ((gg, gg), TypeError, "transaction_model is a spend model"),
        ((bg, bg), TypeError, "spend_model is a transaction model.*swap"),
        ((bg, ParetoNBD.from_params(r=1, alpha=1, s=1, beta=1)), TypeError,
         "spend_model is a transaction model"),
        ((10.0, gg), TypeError, "transaction_model .*first argument.*float 10.0"),
        ((None, gg), TypeError, "transaction_model .*first argument"),
        ((cdnow_rfm, gg), TypeError, "DataFrame"),
        ((bg, "monetary_value"), TypeError, "spend_model .*second argument.*str"),
        ((bg, cdnow_rfm), TypeError, "spend_model .*second argument.*DataFrame"),
        ((bg, -3.0), ValueError, "spend per transaction"),
        ((BetaGeo(), gg), NotFittedError, "transaction_model .*not fitted"),
        ((bg, GammaGamma()), NotFittedError, "spend_model .*not fitted"),
    ]
    for (first, second), error, pattern in cases:
        with pytest.raises(error, match=pattern):
            customer_lifetime_value(first, second, cdnow_rfm, **kw)
    with pytest.raises(TypeError, match=r"data .*third argument.*DataFrame"):
        customer_lifetime_value(bg, gg, cdnow_rfm.to_numpy(), **kw)


@pytest.mark.parametrize(("text", "weeks"), [("12M", 365.25 / 7), ("52W", 52.0),
                                              ("2Y", 2 * 365.25 / 7), ("90D", 90 / 7)])
def test_horizon_strings_like_the_cli(models, cdnow_rfm, text, weeks) -> None:
    bg, gg = models
    frame = cdnow_rfm.iloc[::11]
    by_text = customer_lifetime_value(bg, gg, frame, horizon=text, discount_rate=0.1)
    by_number = customer_lifetime_value(bg, gg, frame, horizon=weeks, discount_rate=0.1)
    pd.testing.assert_frame_equal(by_text, by_number)
    assert by_text.attrs["horizon"] == pytest.approx(weeks)


def test_bad_horizons(models, cdnow_rfm) -> None:
    bg, gg = models
    kw = dict(discount_rate=0.1)
    for bad, error, pattern in [
        (np.nan, ValueError, "NaN"), (-5, ValueError, "positive"), (0, ValueError, "positive"),
        (-np.inf, ValueError, "positive"), ("-12M", ValueError, "cannot read"),
        ("twelve months", ValueError, "cannot read"), ("0M", ValueError, "positive"),
        ("12Q", ValueError, "cannot read"), (True, TypeError, "horizon"),
        ([52], TypeError, "horizon"), (None, TypeError, "horizon"),
        (np.inf, ValueError, "closed form"),  # BG/NBD has none
    ]:
        with pytest.raises(error, match=pattern):
            customer_lifetime_value(bg, gg, cdnow_rfm, horizon=bad, **kw)


@pytest.mark.parametrize(("rate", "hint"), [(10, "0.10"), (12.5, "0.125"), (1, "0.01"),
                                             (1.0, "0.01")])
def test_discount_rate_in_percent_is_refused(models, cdnow_rfm, rate, hint) -> None:
    bg, gg = models
    with pytest.raises(ValueError, match=rf"annual.*discount_rate={re.escape(hint)}"):
        customer_lifetime_value(bg, gg, cdnow_rfm, horizon=52, discount_rate=rate)


def test_discount_rate_other_bad_values(models, cdnow_rfm) -> None:
    bg, gg = models
    for bad, error in [(-0.05, ValueError), (-2, ValueError), (np.nan, ValueError),
                       (np.inf, ValueError), (500, ValueError), ("0.1", TypeError),
                       (None, TypeError)]:
        with pytest.raises(error, match="discount_rate"):
            customer_lifetime_value(bg, gg, cdnow_rfm, horizon=52, discount_rate=bad)


def test_period_interval_discounting_and_cac_rules(models, cdnow_rfm) -> None:
    bg, gg = models
    kw = dict(horizon=52, discount_rate=0.1)
    for bad, error in [("Q", ValueError), ("month", ValueError), (0, ValueError),
                       (-4, ValueError), (np.nan, ValueError), (True, TypeError)]:
        with pytest.raises(error, match="period"):
            customer_lifetime_value(bg, gg, cdnow_rfm, period=bad, **kw)
    for bad in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match="interval"):
            customer_lifetime_value(bg, gg, cdnow_rfm, interval=bad, **kw)
    with pytest.raises(ValueError, match="discounting"):
        customer_lifetime_value(bg, gg, cdnow_rfm, discounting="daily", **kw)
    for bad in (0, -5.0):
        with pytest.raises(ValueError, match="acquisition_cost"):
            customer_lifetime_value(bg, gg, cdnow_rfm, acquisition_cost=bad, **kw)
    partial = pd.Series(10.0, index=cdnow_rfm.index[:-3])
    with pytest.raises(ValueError, match="same customer ids"):
        customer_lifetime_value(bg, gg, cdnow_rfm, acquisition_cost=partial, **kw)
    # a bare number is a count of model time units (weeks here)
    out = customer_lifetime_value(bg, gg, cdnow_rfm.iloc[:20], period=4, **kw)
    assert out.attrs["period"] == 4


def test_infinite_horizon_needs_the_closed_forms_discounting(cdnow_rfm) -> None:
    from clvmodels import ParetoNBD

    pnbd = ParetoNBD.from_params(r=0.553, alpha=10.578, s=0.606, beta=11.669, time_unit="W")
    with pytest.raises(ValueError, match="discounting='continuous'"):
        customer_lifetime_value(pnbd, 10.0, cdnow_rfm, horizon=np.inf, discount_rate=0.1)
    with pytest.raises(ValueError, match="positive discount_rate"):
        customer_lifetime_value(pnbd, 10.0, cdnow_rfm, horizon=np.inf, discount_rate=0.0,
                                discounting="continuous")


def test_a_very_long_horizon_is_refused_at_once(models, cdnow_rfm) -> None:
    """A million weeks: refused before any work (the message names MAX_PERIODS and what to
    do), monthly periods as well as continuous discounting's daily grid."""
    import time

    from clvmodels.valuation import MAX_PERIODS

    bg, gg = models
    for kw in ({}, {"discounting": "continuous"}, {"period": "D"}):
        started = time.perf_counter()
        with pytest.raises(ValueError, match=r"MAX_PERIODS.*shorter horizon"):
            customer_lifetime_value(bg, gg, cdnow_rfm, horizon=1_000_000, discount_rate=0.1,
                                    **kw)
        assert time.perf_counter() - started < 0.5
    # exactly MAX_PERIODS periods pass the checks, one more does not
    from clvmodels.valuation import value_settings

    month = 365.25 / 12 / 7
    ok = value_settings("continuous", "W", horizon=MAX_PERIODS * month, discount_rate=0.1)
    assert ok.grid().count == MAX_PERIODS
    with pytest.raises(ValueError, match="MAX_PERIODS"):
        customer_lifetime_value(bg, gg, cdnow_rfm, horizon=(MAX_PERIODS + 1) * month,
                                discount_rate=0.1)


def test_long_horizons_run_in_bounded_memory(cdnow_rfm) -> None:
    """91,000 daily periods for 300 customers: ~220 MB as one (rows x boundaries) array,
    summed in chunks of boundaries instead (running Abel sums); the peak stays small."""
    import tracemalloc

    bg = BetaGeo.from_params(r=0.2426, alpha=4.414, a=0.7929, b=2.426, time_unit="W")
    frame = cdnow_rfm.iloc[:300]
    kw = dict(discount_rate=0.1, period="D")
    customer_lifetime_value(bg, 10.0, frame, horizon=2, **kw)  # warm caches and imports
    tracemalloc.start()
    try:
        out = customer_lifetime_value(bg, 10.0, frame, horizon=13_000, **kw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64e6, f"peak {peak / 1e6:.0f} MB"
    assert np.isfinite(out["clv"]).all() and (out["clv"] > 0).all()
    # the running sums agree with the closed-form limit direction: more horizon, more value
    shorter = customer_lifetime_value(bg, 10.0, frame, horizon=13_000 - 52, **kw)
    assert (out["clv"] >= shorter["clv"]).all()


def test_boundary_chunks_give_the_single_pass_result(models, cdnow_rfm, monkeypatch) -> None:
    """Tiny chunks of boundaries and rows (running Abel sums across chunks) reproduce the
    one-pass valuation: period and continuous discounting, MLE and a Bayesian posterior."""
    import clvmodels.valuation._settings as valuation_settings
    from clvmodels import BayesianBetaGeo

    bg, gg = models
    frame = cdnow_rfm.iloc[::9]
    post = BayesianBetaGeo.from_params(
        r=bg.params_["r"] * np.array([0.9, 1.0, 1.1]), alpha=bg.params_["alpha"],
        a=bg.params_["a"], b=bg.params_["b"] * np.array([1.1, 1.0, 0.95]), time_unit="W")
    calls = [
        (bg, dict(horizon=40, period="W")),
        (bg, dict(horizon=9, discounting="continuous")),
        (post, dict(horizon=30, period="W")),
    ]
    single = [customer_lifetime_value(m, gg, frame, discount_rate=0.2, margin=0.4, **kw)
              for m, kw in calls]
    monkeypatch.setattr(valuation_settings, "_BOUNDARY_CHUNK", 7)
    monkeypatch.setattr(valuation_settings, "_CHUNK_CELLS", 50)
    for (m, kw), ref in zip(calls, single, strict=True):
        chunked = customer_lifetime_value(m, gg, frame, discount_rate=0.2, margin=0.4, **kw)
        pd.testing.assert_frame_equal(chunked, ref, rtol=1e-12)
        if "total_clv" in ref.attrs:
            assert chunked.attrs["total_clv"] == pytest.approx(ref.attrs["total_clv"],
                                                               rel=1e-12)


def test_value_settings_checks_without_a_model() -> None:
    from clvmodels.valuation import value_settings

    s = value_settings("continuous", "W", horizon="12M", discount_rate=0.1, margin=0.3)
    assert s.horizon == pytest.approx(365.25 / 7) and s.period == "M"
    assert s.step == pytest.approx(365.25 / 12 / 7)
    d = value_settings("discrete", "Y", horizon="24M", discount_rate=0.1)
    assert d.horizon == 2.0 and d.step == 1.0 and d.period == 1
    c = value_settings("contractual", "M", horizon=np.inf, discount_rate=0.1)
    assert np.isinf(c.horizon)
    with pytest.raises(ValueError, match="data_kind"):
        value_settings("spend", "W", horizon=4, discount_rate=0.1)
    with pytest.raises(ValueError, match="time unit"):
        value_settings("continuous", None, horizon=4, discount_rate=0.1)
    with pytest.raises(ValueError, match="unknown time unit"):
        value_settings("continuous", "fortnight", horizon=4, discount_rate=0.1)
