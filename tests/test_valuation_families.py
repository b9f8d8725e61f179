"""CLV for the new model families through the protocols: BG/BB (discrete opportunities) and the
contractual sBG, maximum likelihood and Bayesian; and the batch forecast's new input paths.

Oracles: the closed forms (BG/BB DERT, FHS 2010 eq. 14; sBG DERL, F&H 2010 eq. 6 and its
published table), brute-force sums over opportunities / renewal decisions built from the
models' own single-horizon predictions, and a posterior whose draws are valued one by one.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from clvmodels import (
    BayesianBetaGeoBetaBinom,
    BayesianShiftedBetaGeo,
    BetaGeoBetaBinom,
    GammaGamma,
    ShiftedBetaGeo,
    ValidationError,
)
from clvmodels.datasets import load_donations
from clvmodels.models import sbg as sbg_math
from clvmodels.valuation import customer_lifetime_value
from clvmodels.workflow import forecast

# Fader & Hardie (2007), Table 1, the regular cohort: % active at the start of years 0..7
REGULAR = [100.0, 63.1, 46.8, 38.2, 32.6, 28.9, 26.2, 24.1]
SAMPLER = {"draws": 200, "tune": 200, "chains": 2, "random_seed": 11}


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    d = load_donations()
    d.attrs["time_unit"] = "Y"  # one opportunity a year
    return d


@pytest.fixture(scope="module")
def bgbb(donations: pd.DataFrame) -> BetaGeoBetaBinom:
    return BetaGeoBetaBinom().fit(donations, weights="weights")


def _contracts(periods: list[int], churned: list[bool], unit: str = "Y") -> pd.DataFrame:
    out = pd.DataFrame({"periods": periods, "churned": churned},
                       index=pd.Index([f"c{i}" for i in range(len(periods))],
                                      name="customer_id"))
    out.attrs["time_unit"] = unit
    return out


def _regular_cohort() -> pd.DataFrame:
    alive = np.array(REGULAR) * 10
    out = pd.DataFrame({"periods": [*range(1, 8), 8], "churned": [True] * 7 + [False],
                        "customers": [*(-np.diff(alive)), alive[-1]]})
    out.attrs["time_unit"] = "Y"
    return out


# --------------------------------------------------------------------------------------
# BG/BB: discrete opportunities
# --------------------------------------------------------------------------------------


def test_bgbb_finite_horizon_is_the_sum_over_opportunities(bgbb, donations) -> None:
    """A finite horizon goes through cumulative_expected_purchases like the continuous
    models: against a loop over opportunities of the model's own E[X(n, n+k)] (eq. 13),
    each opportunity's purchases discounted at its end, (1 + d)^-k a year apart."""
    rate, margin, spend = 0.10, 0.4, 30.0
    out = customer_lifetime_value(bgbb, spend, donations, horizon=7, discount_rate=rate,
                                  margin=margin)
    brute = pd.Series(0.0, index=donations.index)
    for k in range(1, 8):
        bought = bgbb.expected_purchases(donations, k) - bgbb.expected_purchases(donations, k - 1)
        brute += bought / (1 + rate) ** k
    np.testing.assert_allclose(out["clv"], margin * spend * brute, rtol=1e-10)
    np.testing.assert_allclose(out["expected_purchases"], bgbb.expected_purchases(donations, 7),
                               rtol=1e-12)
    np.testing.assert_allclose(out["probability_alive"], bgbb.probability_alive(donations))
    assert list(out.columns) == ["expected_purchases", "probability_alive", "expected_spend",
                                 "clv"]
    # the same horizon written as a string; a period of several opportunities
    again = customer_lifetime_value(bgbb, spend, donations, horizon="7Y", discount_rate=rate,
                                    margin=margin)
    pd.testing.assert_frame_equal(again, out)
    two = customer_lifetime_value(bgbb, spend, donations, horizon=7, discount_rate=rate,
                                  margin=margin, period=2)
    brute2 = pd.Series(0.0, index=donations.index)
    for start, end in [(0, 2), (2, 4), (4, 6), (6, 7)]:
        bought = (bgbb.expected_purchases(donations, end)
                  - bgbb.expected_purchases(donations, start))
        brute2 += bought / (1 + rate) ** end
    np.testing.assert_allclose(two["clv"], margin * spend * brute2, rtol=1e-10)


def test_bgbb_infinite_horizon_is_dert_and_the_long_horizon_limit(bgbb, donations) -> None:
    """horizon=np.inf uses the closed form, DERT (eq. 14): it equals margin x spend x DERT
    and the discounted sum over 2,000 opportunities (the tail is below (1.1)^-2000)."""
    kw = dict(discount_rate=0.10, margin=0.3)
    with pytest.warns(UserWarning, match="diverges"):  # gamma < 1 for the donors
        inf = customer_lifetime_value(bgbb, 50.0, donations, horizon=np.inf, **kw)
    long = customer_lifetime_value(bgbb, 50.0, donations, horizon=2000, **kw)
    dert = bgbb.expected_discounted_transactions(donations, 0.10)
    np.testing.assert_allclose(inf["clv"], 0.3 * 50.0 * dert, rtol=1e-12)
    np.testing.assert_allclose(inf["clv"], long["clv"], rtol=1e-6, atol=1e-9)
    assert (inf["clv"] > 0).all() and np.isfinite(inf.to_numpy()).all()
    # gamma < 1: the undiscounted count diverges; the column holds DERT and says so
    assert bgbb.params_["gamma"] < 1
    np.testing.assert_allclose(inf["expected_purchases"], dert, rtol=1e-12)
    assert inf.attrs["expected_count"].startswith("discounted")


def test_bgbb_undiscounted_count_when_it_converges(donations) -> None:
    """gamma > 1: expected_purchases over an infinite horizon is DERT at rate 0 (finite),
    the limit of E[X(n, n+t)] as t grows."""
    model = BetaGeoBetaBinom.from_params(alpha=1.2, beta=0.75, gamma=3.0, delta=2.0,
                                         time_unit="Y")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divergence warning here
        out = customer_lifetime_value(model, 1.0, donations, horizon=np.inf, discount_rate=0.05)
    assert out.attrs["expected_count"] == "undiscounted"
    far = model.expected_purchases(donations, 20_000)
    np.testing.assert_allclose(out["expected_purchases"], far, rtol=1e-3)
    assert (out["expected_purchases"] >= far).all()


def test_bgbb_refusals(bgbb, donations) -> None:
    kw = dict(discount_rate=0.1)
    for horizon in ("18M", 2.5, "52W"):
        with pytest.raises(ValueError, match="whole"):
            customer_lifetime_value(bgbb, 1.0, donations, horizon=horizon, **kw)
    for period in ("M", 0.5, 1.5):
        with pytest.raises(ValueError, match="opportunit"):
            customer_lifetime_value(bgbb, 1.0, donations, horizon=5, period=period, **kw)
    with pytest.raises(ValueError, match="discounting='period'"):
        customer_lifetime_value(bgbb, 1.0, donations, horizon=5, discounting="continuous", **kw)
    # DERT discounts per opportunity: the period must be one opportunity
    with pytest.raises(ValueError, match="one year"):
        customer_lifetime_value(bgbb, 1.0, donations, horizon=np.inf, period=2, **kw)
    with pytest.raises(ValueError, match="positive discount_rate"):
        customer_lifetime_value(bgbb, 1.0, donations, horizon=np.inf, discount_rate=0.0)
    # a model without a time unit cannot convert the annual rate
    plain = load_donations()
    unfit_unit = BetaGeoBetaBinom().fit(plain, weights="weights")
    with pytest.raises(ValueError, match="time unit"):
        customer_lifetime_value(unfit_unit, 1.0, plain, horizon=5, **kw)


def test_bayesian_bgbb_values_every_draw(bgbb, donations) -> None:
    """A posterior of five parameter sets: the CLV's mean is the mean of the five MLE CLVs
    (each set valued by the maximum-likelihood path), its interval spans them."""
    rng = np.random.default_rng(4)
    base = bgbb.params_
    draws = {k: base[k] * np.exp(rng.normal(0, 0.05, 5)) for k in base.index}
    post = BayesianBetaGeoBetaBinom.from_params(time_unit="Y", **draws)
    kw = dict(horizon="6Y", discount_rate=0.1, margin=0.5, interval=0.999)
    out = customer_lifetime_value(post, 20.0, donations, **kw)
    each = np.column_stack([
        customer_lifetime_value(
            BetaGeoBetaBinom.from_params(time_unit="Y", **{k: v[s] for k, v in draws.items()}),
            20.0, donations, **kw)["clv"] for s in range(5)])
    np.testing.assert_allclose(out["clv"], each.mean(axis=1), rtol=1e-10)
    lo, hi = np.quantile(each, [0.0005, 0.9995], axis=1)
    np.testing.assert_allclose(out["clv_lower"], lo, rtol=1e-10)
    np.testing.assert_allclose(out["clv_upper"], hi, rtol=1e-10)
    assert out.attrs["total_clv"] == pytest.approx(each.sum(axis=0).mean(), rel=1e-10)
    with pytest.raises(ValueError, match="finite horizon"):
        customer_lifetime_value(post, 20.0, donations, horizon=np.inf, discount_rate=0.1)


# --------------------------------------------------------------------------------------
# sBG: contractual
# --------------------------------------------------------------------------------------


def test_sbg_clv_reproduces_fader_hardie_2010_derl() -> None:
    """F&H 2010: alpha = 3.80, beta = 15.20, d = 10 %: DERL 3.31, 3.45, 3.59, 3.72, 3.84 for
    customers who have made 0..4 renewals (paid 1..5 periods); CLV = margin x revenue x DERL.
    Churned customers are worth nothing."""
    model = ShiftedBetaGeo.from_params(alpha=3.80, beta=15.20, time_unit="Y")
    data = _contracts([1, 2, 3, 4, 5, 3], [False] * 5 + [True])
    out = customer_lifetime_value(model, 100.0, data, horizon=np.inf, discount_rate=0.10,
                                  margin=0.5)
    assert list(out.columns) == ["expected_periods", "probability_active",
                                 "revenue_per_period", "clv"]
    derl = out["clv"].to_numpy() / (0.5 * 100.0)
    np.testing.assert_array_equal(np.round(derl[:5], 2), [3.31, 3.45, 3.59, 3.72, 3.84])
    assert out["clv"].iloc[5] == 0 and out["probability_active"].iloc[5] == 0
    np.testing.assert_allclose(out["clv"], 50.0 * model.discounted_expected_residual_lifetime(
        data, 0.10), rtol=1e-14)
    # retention at the next renewal, (beta + n - 1) / (alpha + beta + n - 1), n = periods
    n = np.arange(1, 6)
    np.testing.assert_allclose(out["probability_active"].iloc[:5],
                               (15.2 + n - 1) / (19.0 + n - 1), rtol=1e-12)
    # alpha > 1: the undiscounted expected further payments (beta + n - 1) / (alpha - 1)
    np.testing.assert_allclose(out["expected_periods"].iloc[:5], (15.2 + n - 1) / 2.8,
                               rtol=1e-10)
    assert out.attrs["expected_count"] == "undiscounted"
    assert out.attrs["valued_at"] == "next renewal decision"


def test_sbg_finite_horizon_against_renewal_sums() -> None:
    """K renewal decisions: CLV = margin x revenue x sum_{k<K} P(pay k+1 more) / (1+d)^k
    (the model's own conditional survival), expected_periods = expected_renewals(K); 2,000
    periods reach the closed form."""
    model = ShiftedBetaGeo.from_params(alpha=3.80, beta=15.20, time_unit="Y")
    data = _contracts([1, 2, 5, 9, 4], [False, False, False, False, True])
    out = customer_lifetime_value(model, 80.0, data, horizon=6, discount_rate=0.08, margin=0.25)
    brute = sum(model.conditional_survival(data, k + 1) / 1.08 ** k for k in range(6))
    np.testing.assert_allclose(out["clv"], 0.25 * 80.0 * brute, rtol=1e-12)
    np.testing.assert_allclose(out["expected_periods"], model.expected_renewals(data, 6),
                               rtol=1e-12)
    assert (out["expected_periods"] <= 6).all()
    # "6Y" is six yearly periods; with monthly periods "12M" is twelve
    again = customer_lifetime_value(model, 80.0, data, horizon="6Y", discount_rate=0.08,
                                    margin=0.25)
    pd.testing.assert_frame_equal(again, out)
    long = customer_lifetime_value(model, 80.0, data, horizon=2000, discount_rate=0.08)
    inf = customer_lifetime_value(model, 80.0, data, horizon=np.inf, discount_rate=0.08)
    np.testing.assert_allclose(long["clv"], inf["clv"], rtol=1e-9)
    monthly = ShiftedBetaGeo.from_params(alpha=3.80, beta=15.20, time_unit="M")
    m = _contracts([1, 2, 5], [False] * 3, unit="M")
    a = customer_lifetime_value(monthly, 9.0, m, horizon="12M", discount_rate=0.1)
    b = customer_lifetime_value(monthly, 9.0, m, horizon=12, discount_rate=0.1)
    pd.testing.assert_frame_equal(a, b)
    # the annual rate is converted to a monthly one: 1.1^(1/12) - 1
    d = 1.1 ** (1 / 12) - 1
    brute_m = sum(monthly.conditional_survival(m, k + 1) / (1 + d) ** k for k in range(12))
    np.testing.assert_allclose(a["clv"], 9.0 * brute_m, rtol=1e-10)


def test_sbg_revenue_per_customer_and_cac() -> None:
    model = ShiftedBetaGeo.from_params(alpha=0.704, beta=1.182, time_unit="M")
    data = _contracts([1, 3, 12, 2], [False, False, False, True], unit="M")
    revenue = pd.Series([10.0, 20.0, 5.0, 99.0], index=data.index[::-1], name="price")[::-1]
    derl = model.discounted_expected_residual_lifetime(data, 0.1, horizon=24)
    out = customer_lifetime_value(model, revenue, data, horizon="24M", discount_rate=0.1,
                                  margin=0.6, acquisition_cost=30.0)
    np.testing.assert_allclose(out["clv"], 0.6 * revenue.loc[data.index] * derl, rtol=1e-12)
    np.testing.assert_allclose(out["revenue_per_period"], revenue.loc[data.index])
    np.testing.assert_allclose(out["clv_to_cac"], out["clv"] / 30.0)
    # a column of the data; a Series in another order gives the same
    with_col = data.assign(price=revenue)
    by_col = customer_lifetime_value(model, "price", with_col, horizon=24, discount_rate=0.1,
                                     margin=0.6)
    np.testing.assert_allclose(by_col["clv"], out["clv"], rtol=1e-14)
    before = with_col.copy(deep=True)
    customer_lifetime_value(model, "price", with_col, horizon=24, discount_rate=0.1)
    pd.testing.assert_frame_equal(with_col, before)
    # revenue errors name the column and the rows
    with pytest.raises(ValidationError, match=r"'price'.*>= 0"):
        customer_lifetime_value(model, "price", with_col.assign(price=[1.0, -2.0, 3.0, 4.0]),
                                horizon=24, discount_rate=0.1)
    with pytest.raises(ValidationError, match=r"'price'.*missing"):
        customer_lifetime_value(model, "price", with_col.assign(price=[1.0, np.nan, 3, 4]),
                                horizon=24, discount_rate=0.1)
    with pytest.raises(ValidationError, match="not a column"):
        customer_lifetime_value(model, "fee", with_col, horizon=24, discount_rate=0.1)
    with pytest.raises(ValidationError, match="no value for 1 customer"):
        customer_lifetime_value(model, revenue.iloc[:3], data, horizon=24, discount_rate=0.1)
    for bad in (-5.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="revenue_per_period"):
            customer_lifetime_value(model, bad, data, horizon=24, discount_rate=0.1)


def test_sbg_divergent_undiscounted_count_is_reported_discounted() -> None:
    """alpha <= 1: the expected number of further payments is infinite; expected_periods then
    holds DERL (the discounted count), attrs say so and a warning is issued — no inf, no NaN."""
    model = ShiftedBetaGeo.from_params(alpha=0.704, beta=1.182, time_unit="Y")
    data = _contracts([1, 4, 8, 2], [False, False, False, True])
    with pytest.warns(UserWarning, match="expected_periods holds the discounted count"):
        out = customer_lifetime_value(model, 1.0, data, horizon=np.inf, discount_rate=0.1)
    np.testing.assert_allclose(out["expected_periods"], out["clv"], rtol=1e-14)
    assert out.attrs["expected_count"].startswith("discounted")
    assert np.isfinite(out.to_numpy(dtype=float)).all()
    # a finite horizon keeps the undiscounted count
    finite = customer_lifetime_value(model, 1.0, data, horizon=30, discount_rate=0.1)
    assert finite.attrs["expected_count"] == "undiscounted"
    assert (finite["expected_periods"] > finite["clv"]).iloc[:3].all()


def test_sbg_refusals() -> None:
    model = ShiftedBetaGeo.from_params(alpha=3.8, beta=15.2, time_unit="M")
    data = _contracts([1, 2], [False, True], unit="M")
    kw = dict(discount_rate=0.1)
    for horizon in (2.5, "52W", "10D"):
        with pytest.raises(ValueError, match="whole"):
            customer_lifetime_value(model, 1.0, data, horizon=horizon, **kw)
    for period in ("W", "Y", 2):
        with pytest.raises(ValueError, match="contract period"):
            customer_lifetime_value(model, 1.0, data, horizon=12, period=period, **kw)
    with pytest.raises(ValueError, match="once a period"):
        customer_lifetime_value(model, 1.0, data, horizon=12, discounting="continuous", **kw)
    gg = GammaGamma.from_params(p=6.25, q=3.74, v=15.44, time_unit="W")
    with pytest.raises(TypeError, match="revenue per period"):
        customer_lifetime_value(model, gg, data, horizon=12, **kw)
    with pytest.raises(TypeError, match="Did you swap them"):
        customer_lifetime_value(gg, model, data, horizon=12, **kw)
    bg = BetaGeoBetaBinom.from_params(alpha=1, beta=1, gamma=1, delta=1, time_unit="M")
    with pytest.raises(TypeError, match="contractual model goes first"):
        customer_lifetime_value(bg, model, data, horizon=12, **kw)
    with pytest.raises(ValidationError, match="periods"):
        customer_lifetime_value(model, 1.0, data.assign(periods=[0, 2]), horizon=12, **kw)


@pytest.mark.filterwarnings("ignore::clvmodels.models.sampling.SamplingWarning")
def test_bayesian_sbg_intervals_contain_the_mle() -> None:
    """Fitted on F&H 2007's regular cohort (small draws): the 90 % intervals of the active
    customers' CLV contain the MLE's, churned customers are worth 0, and the base's total
    (the draws of sum_i margin revenue_i DERL_i) brackets the posterior-mean total."""
    data = _regular_cohort()
    mle = ShiftedBetaGeo().fit(data, weights="customers")
    post = BayesianShiftedBetaGeo().fit(data, weights="customers", **SAMPLER)
    kw = dict(horizon=np.inf, discount_rate=0.10, margin=0.5)
    with pytest.warns(UserWarning, match="diverges"):  # alpha < 1 (0.704)
        ref = customer_lifetime_value(mle, 40.0, data, **kw)
        out = customer_lifetime_value(post, 40.0, data, **kw)
    assert list(out.columns) == ["expected_periods", "probability_active",
                                 "revenue_per_period", "clv", "clv_lower", "clv_upper"]
    active = ~data["churned"]
    assert (out.loc[active, "clv_lower"] < ref.loc[active, "clv"]).all()
    assert (ref.loc[active, "clv"] < out.loc[active, "clv_upper"]).all()
    assert (out.loc[~active, ["clv", "clv_lower", "clv_upper"]] == 0).all().all()
    a = out.attrs
    assert a["total_clv_lower"] < a["total_clv"] < a["total_clv_upper"]
    assert a["total_clv"] == pytest.approx(out["clv"].sum(), rel=1e-12)
    # posterior means agree with the model's own DERL summary
    derl = post.discounted_expected_residual_lifetime(data, 0.10, interval=0.9)
    np.testing.assert_allclose(out["clv"], 20.0 * derl["derl"], rtol=1e-12)
    np.testing.assert_allclose(out["clv_lower"], 20.0 * derl["derl_lower"], rtol=1e-12)
    # a finite horizon: the interval still holds the MLE value
    fin = customer_lifetime_value(post, 40.0, data, horizon=5, discount_rate=0.1, margin=0.5)
    fin_mle = customer_lifetime_value(mle, 40.0, data, horizon=5, discount_rate=0.1, margin=0.5)
    assert (fin.loc[active, "clv_lower"] < fin_mle.loc[active, "clv"]).all()
    assert (fin_mle.loc[active, "clv"] < fin.loc[active, "clv_upper"]).all()
    assert (fin["expected_periods"] <= 5).all()


def test_bayesian_sbg_with_per_customer_revenue_equals_draw_by_draw() -> None:
    """Per-customer revenue with a three-draw posterior: each customer's CLV draws are
    margin x revenue_i x DERL draw (module formula), their mean and quantiles reported."""
    alphas, betas = np.array([0.8, 1.4, 2.5]), np.array([1.5, 3.0, 6.0])
    post = BayesianShiftedBetaGeo.from_params(alpha=alphas, beta=betas, time_unit="M")
    data = _contracts([1, 1, 6, 6, 3], [False, False, False, False, True], unit="M")
    revenue = pd.Series([10.0, 30.0, 10.0, 0.0, 50.0], index=data.index)
    out = customer_lifetime_value(post, revenue, data, horizon=18, discount_rate=0.12,
                                  margin=0.5, interval=0.8)
    d = 1.12 ** (1 / 12) - 1
    per_draw = np.stack([sbg_math.discounted_residual_periods(
        a, b, data["periods"], data["churned"], d, 18) for a, b in zip(alphas, betas,
                                                                         strict=True)])
    clv = 0.5 * revenue.to_numpy() * per_draw
    np.testing.assert_allclose(out["clv"], clv.mean(axis=0), rtol=1e-12)
    lo, hi = np.quantile(clv, [0.1, 0.9], axis=0)
    np.testing.assert_allclose(out["clv_lower"], lo, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out["clv_upper"], hi, rtol=1e-12, atol=1e-12)
    totals = clv.sum(axis=1)
    assert out.attrs["total_clv"] == pytest.approx(totals.mean(), rel=1e-12)
    assert out.attrs["total_clv_lower"] == pytest.approx(np.quantile(totals, 0.1), rel=1e-12)


# --------------------------------------------------------------------------------------
# the batch forecast's new paths
# --------------------------------------------------------------------------------------


def _subscriptions(n: int = 300) -> pd.DataFrame:
    sim = sbg_math.simulate_sbg(n, alpha=0.8, beta=2.0, n_periods=120, random_seed=5)
    rng = np.random.default_rng(6)
    start = pd.Timestamp("2015-01-31") + pd.to_timedelta(rng.integers(0, 600, n), "D")
    end = [s + pd.DateOffset(months=int(t)) if c else None
           for s, t, c in zip(start, sim["periods"], sim["churned"], strict=True)]
    return pd.DataFrame({"id": np.arange(n), "began": start, "ended": end,
                         "price": rng.choice([10.0, 20.0], n)})


def test_forecast_bgbb_from_a_discrete_summary_file(tmp_path, donations) -> None:
    path = tmp_path / "donations.csv"
    load_donations().to_csv(path, index=False)
    res = forecast(path, model="bgbb", time_unit="Y", weights_col="weights", spend=25.0,
                   horizon="5Y", discount_rate=0.1, margin=0.5)
    model = BetaGeoBetaBinom().fit(donations, weights="weights")
    np.testing.assert_allclose(res.transaction_model.params_, model.params_, rtol=1e-8)
    manual = customer_lifetime_value(model, 25.0, donations, horizon=5, discount_rate=0.1,
                                     margin=0.5)
    fc = res.forecast
    np.testing.assert_allclose(fc["clv"], manual["clv"], rtol=1e-8)
    assert {"frequency", "recency", "periods", "weights", "expected_purchases",
            "probability_alive", "expected_spend", "clv", "value_tier"} <= set(fc.columns)
    assert res.settings["n_customers"] == 11_104  # the rows' weights
    assert res.settings["total_clv"] == pytest.approx(float(
        (manual["clv"] * donations["weights"]).sum()), rel=1e-8)
    assert res.settings["data_kind"] == "discrete"
    # a frame that knows its unit, with customer ids: the ids become the index
    frame = load_donations().assign(customer_id=lambda f: [f"g{i}" for i in range(len(f))])
    frame.attrs["time_unit"] = "Y"
    before = frame.copy(deep=True)
    by_frame = forecast(frame, model="bgbb", weights_col="weights", spend=25.0, horizon=5,
                        discount_rate=0.1, margin=0.5)
    pd.testing.assert_frame_equal(frame, before)
    assert by_frame.forecast.index[0] == "g0" and by_frame.settings["time_unit"] == "Y"
    np.testing.assert_allclose(by_frame.forecast["clv"], manual["clv"], rtol=1e-8)
    with pytest.raises(ValueError, match="time unit is 'Y'"):
        forecast(frame, model="bgbb", time_unit="W", weights_col="weights", spend=None)
    with pytest.raises(ValueError, match="time_unit"):
        forecast(path, model="bgbb", weights_col="weights", spend=None)
    with pytest.raises(ValueError, match="whole"):  # checked before fitting
        forecast(path, model="bgbb", time_unit="Y", weights_col="weights", horizon="18M")
    with pytest.raises(ValueError, match="monetary_value"):
        forecast(path, model="bgbb", time_unit="Y", weights_col="weights")


def test_forecast_sbg_from_subscription_records() -> None:
    from clvmodels import contract_summary

    records = _subscriptions()
    before = records.copy(deep=True)
    res = forecast(records, model="sbg", observation_end="2017-12-31", customer_id_col="id",
                   start_col="began", end_col="ended", period="M", revenue_per_period="price",
                   horizon="24M", discount_rate=0.1, margin=0.8)
    pd.testing.assert_frame_equal(records, before)
    summary = contract_summary(records, customer_id_col="id", start_col="began",
                               end_col="ended", observation_end="2017-12-31", period="M")
    model = ShiftedBetaGeo().fit(summary)
    np.testing.assert_allclose(res.transaction_model.params_, model.params_, rtol=1e-8)
    price = records.set_index("id")["price"]
    manual = customer_lifetime_value(model, price, summary, horizon=24, discount_rate=0.1,
                                     margin=0.8)
    fc = res.forecast
    np.testing.assert_allclose(fc["clv"], manual["clv"], rtol=1e-8)
    assert {"periods", "churned", "expected_periods", "probability_active",
            "revenue_per_period", "clv", "value_tier"} <= set(fc.columns)
    assert (fc.loc[fc["churned"], "clv"] == 0).all() and (fc.loc[~fc["churned"], "clv"] > 0).all()
    assert res.settings["time_unit"] == "M" and res.settings["horizon_units"] == 24
    # a constant revenue; the observation day is required; a weekly horizon is refused
    const = forecast(records, model="sbg", observation_end="2017-12-31", customer_id_col="id",
                     start_col="began", end_col="ended", revenue_per_period=15.0, horizon=24)
    np.testing.assert_allclose(const.forecast["clv"],
                               manual["clv"] / (0.8 * manual["revenue_per_period"]) * 15.0,
                               rtol=1e-8)
    with pytest.raises(ValueError, match="observation_end"):
        forecast(records, model="sbg", customer_id_col="id", start_col="began",
                 end_col="ended")
    with pytest.raises(ValueError, match="whole"):
        forecast(records, model="sbg", observation_end="2017-12-31", customer_id_col="id",
                 start_col="began", end_col="ended", horizon="10W")


@pytest.mark.filterwarnings("ignore::clvmodels.models.sampling.SamplingWarning")
def test_forecast_bayesian_names_take_fit_kwargs() -> None:
    records = _subscriptions(200)
    res = forecast(records, model="bayes-sbg", observation_end="2017-12-31",
                   customer_id_col="id", start_col="began", end_col="ended",
                   revenue_per_period=12.0, horizon=36, fit_kwargs=SAMPLER)
    assert type(res.transaction_model).__name__ == "BayesianShiftedBetaGeo"
    assert res.transaction_model.n_draws == SAMPLER["draws"] * SAMPLER["chains"]
    fc = res.forecast
    assert {"clv_lower", "clv_upper"} <= set(fc.columns)
    assert (fc["clv_lower"] <= fc["clv"]).all() and (fc["clv"] <= fc["clv_upper"]).all()
    s = res.settings
    assert s["total_clv_lower"] < s["total_clv"] < s["total_clv_upper"]
    with pytest.raises(ValueError, match="penalizer"):
        forecast(records, model="bayes-sbg", observation_end="2017-12-31",
                 customer_id_col="id", start_col="began", end_col="ended", penalizer=0.1)


def test_unfitted_models_of_every_kind_are_named() -> None:
    from clvmodels import BayesianBetaGeo
    from clvmodels.models.base import NotFittedError

    contracts = _contracts([1, 2], [False, True], unit="M")
    rfm = pd.DataFrame({"frequency": [1.0], "recency": [2.0], "T": [3.0]})
    rfm.attrs["time_unit"] = "W"
    for model, data in [(BayesianBetaGeo(), rfm), (BetaGeoBetaBinom(), rfm),
                        (ShiftedBetaGeo(), contracts), (BayesianShiftedBetaGeo(), contracts)]:
        with pytest.raises(NotFittedError, match=r"transaction_model .* is not fitted"):
            customer_lifetime_value(model, 1.0, data, horizon=4, discount_rate=0.1)
