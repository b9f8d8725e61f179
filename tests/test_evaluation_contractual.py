"""Contractual holdout comparison: a hand example, Fader & Hardie (2007)'s cohort as records,
simulated sBG subscriptions (sBG beats the constant churn rate), segments, bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from clvmodels import ValidationError
from clvmodels.contract import contract_summary
from clvmodels.evaluation import (
    CONTRACTUAL_METRIC_COLUMNS,
    ConstantChurn,
    ContractualComparison,
    compare_contractual,
    compare_models,
)
from clvmodels.models.sbg import ShiftedBetaGeo
from clvmodels.subscription_kpis import churn_rate

# Fader & Hardie (2007), Table 1: % of the regular cohort still active at the start of years
# 0..12 (../shared/REFERENCE.md); the paper fits years 1-7 and projects 8-12.
FH07_REGULAR = [100.0, 63.1, 46.8, 38.2, 32.6, 28.9, 26.2, 24.1, 22.3, 20.7, 19.4, 18.3, 17.3]


def simulate_subscriptions(n: int, alpha: float, beta: float, *, seed: int,
                           first: str = "2020-01-01", last_start: str = "2021-12-31",
                           observation_end: str = "2023-06-30", id_offset: int = 0
                           ) -> pd.DataFrame:
    """Monthly subscriptions from the sBG: theta ~ Beta(alpha, beta), lifetime ~ shifted
    geometric (periods paid); a customer who pays T periods stops on the T-th anniversary."""
    rng = np.random.default_rng(seed)
    lo, hi = pd.Timestamp(first), pd.Timestamp(last_start)
    start = lo + pd.to_timedelta(rng.integers(0, (hi - lo).days + 1, n), unit="D")
    life = rng.geometric(rng.beta(alpha, beta, n))
    end = pd.Series([s + pd.DateOffset(months=int(t)) for s, t in zip(start, life,
                                                                     strict=True)])
    return pd.DataFrame({"customer_id": np.arange(n) + id_offset, "start": start,
                         "end": end.where(end <= pd.Timestamp(observation_end))})


def fh07_records(percent: list[float]) -> pd.DataFrame:
    """1,000 customers starting 2000-01-01, yearly; those lost in year t stop on the t-th
    anniversary, the survivors of year 12 are active."""
    alive = np.round(np.asarray(percent) / 100 * 1000).astype(int)
    lost = alive[:-1] - alive[1:]
    years = np.repeat(np.arange(1, len(percent)), lost)
    end = [pd.Timestamp("2000-01-01") + pd.DateOffset(years=int(t)) for t in years]
    end += [pd.NaT] * int(alive[-1])
    return pd.DataFrame({"customer_id": np.arange(1000), "start": pd.Timestamp("2000-01-01"),
                         "end": pd.to_datetime(pd.Series(end))})


# --------------------------------------------------------------------------------------
# a hand example
# --------------------------------------------------------------------------------------


@pytest.fixture
def hand() -> pd.DataFrame:
    """Monthly plans, calibration to 2023-03-31, holdout to 2023-06-30.

    a: 2023-01-15, active      -> 3 paid by Mar 31; 3 holdout decisions (Apr-Jun 15), all made
    b: 2022-12-31, ends May 10 -> 4 paid (Dec 31, Jan 31, Feb 28, Mar 31); decisions Apr 30,
                                  May 31, Jun 30: renewed once (Apr 30) and left
    c: 2023-02-01, ends Feb 20 -> churned in calibration, not scored
    d: 2023-04-10, active      -> acquired in the holdout, not scored
    e: 2023-03-31, ends Jun 30 -> 1 paid; decisions Apr 30, May 31, Jun 30: renewed twice, left
    """
    return pd.DataFrame({
        "customer_id": list("abcde"),
        "start": ["2023-01-15", "2022-12-31", "2023-02-01", "2023-04-10", "2023-03-31"],
        "end": [None, "2023-05-10", "2023-02-20", None, "2023-06-30"],
    })


def test_hand_example(hand: pd.DataFrame) -> None:
    model = ShiftedBetaGeo.from_params(alpha=1.0, beta=2.0, time_unit="M")
    before = hand.copy()
    res = compare_contractual(hand, calibration_end="2023-03-31",
                              observation_end="2023-06-30", models={"known": model})
    pd.testing.assert_frame_equal(hand, before)  # the caller's frame is untouched
    assert isinstance(res, ContractualComparison) and res.kind == "contractual"
    assert res.models["known"] is model  # fitted: used as given
    assert list(res.calibration.index) == ["a", "b", "c", "e"]
    h = res.holdout
    assert list(h.index) == ["a", "b", "e"]
    assert h["periods"].tolist() == [3, 4, 1]
    assert h["decisions"].tolist() == [3, 3, 3]
    assert h["renewals"].tolist() == [3, 1, 2]
    assert h["paying_at_end"].tolist() == [True, False, False]
    # alpha = 1, beta = 2: S(t) = 2 / (2 + t), so c_n(j) = S(n + j - 1) / S(n - 1)
    # = (n + 1) / (n + 1 + j)
    c = {n: [(n + 1) / (n + 1 + j) for j in range(4)] for n in (1, 3, 4)}
    expected = [sum(c[3][1:]), sum(c[4][1:]), sum(c[1][1:])]
    pred = res.predictions["known"]
    np.testing.assert_allclose(pred["expected_renewals"], expected, rtol=1e-12)
    np.testing.assert_allclose(pred["probability"],
                               [c[3][3], c[4][1] - c[4][2], c[1][2] - c[1][3]], rtol=1e-12)
    row = res.metrics.loc["known"]
    assert row["holdout_log_likelihood"] == pytest.approx(
        math.log(4 / 7) + math.log(5 / 6 - 5 / 7) + math.log(0.5 - 0.4), rel=1e-12)
    assert row["aggregate_bias"] == pytest.approx(sum(expected) / 6 - 1, rel=1e-12)
    assert row["mae"] == pytest.approx(np.mean(np.abs(np.subtract(expected, [3, 1, 2]))))
    assert row["tracking_error"] == pytest.approx(4 / 7 + 5 / 8 + 2 / 5 - 1, rel=1e-12)
    table = res.tables["known"]["holdout_retention"]
    assert table["at_risk"].tolist() == [3, 3, 3, 3]
    assert table["actual"].tolist() == [3, 3, 2, 1]
    np.testing.assert_allclose(table["expected"], [3, 4 / 5 + 5 / 6 + 2 / 3,
                                                   4 / 6 + 5 / 7 + 2 / 4, 4 / 7 + 5 / 8 + 2 / 5])
    assert row["retention_mae"] == pytest.approx(table["error"].iloc[1:].abs().mean())
    assert np.isnan(row["log_likelihood"])  # known parameters: no fit statistics
    # the baseline: c = churns / decisions seen in calibration = 1 / (2 + 3 + 1 + 0)
    base = res.baselines["constant-churn"]
    assert base.params_["churn"] == pytest.approx(1 / 6)
    assert res.metrics.at["constant-churn", "log_likelihood"] == pytest.approx(
        5 * math.log(5 / 6) + math.log(1 / 6))
    q = 5 / 6
    np.testing.assert_allclose(res.predictions["constant-churn"]["expected_renewals"],
                               q + q**2 + q**3)
    s = res.data_summary
    assert (s["customers"], s["customers_acquired_later"], s["active_at_calibration_end"],
            s["renewals_holdout"], s["churned_in_holdout"]) == (4, 1, 3, 6, 2)


def test_expected_renewals_sum_the_conditional_survival(hand: pd.DataFrame) -> None:
    model = ShiftedBetaGeo.from_params(alpha=0.7, beta=1.8, time_unit="M")
    res = compare_contractual(hand, calibration_end="2023-03-31",
                              observation_end="2023-06-30", models=[model], baselines=False)
    assert list(res.metrics.index) == ["sbg"]
    active = res.calibration.loc[res.holdout.index]
    by_sum = sum(model.conditional_survival(active, j) for j in (1, 2, 3))
    np.testing.assert_allclose(res.predictions["sbg"]["expected_renewals"], by_sum,
                               rtol=1e-12)


# --------------------------------------------------------------------------------------
# Fader & Hardie (2007): years 1-7 calibrate, years 8-12 are the holdout
# --------------------------------------------------------------------------------------


def test_fh2007_cohort_as_subscription_records() -> None:
    records = fh07_records(FH07_REGULAR)
    res = compare_contractual(records, calibration_end="2007-01-01",
                              observation_end="2012-01-01", period="Y")
    model = res.models["sbg"]
    # the paper's estimates from the calibration years
    assert model.params_["alpha"] == pytest.approx(0.704, abs=6e-4)
    assert model.params_["beta"] == pytest.approx(1.182, abs=6e-4)
    assert res.metrics.at["sbg", "log_likelihood"] == pytest.approx(-1680.3, abs=0.05)
    # the 241 survivors of year 7 meet five renewal decisions
    assert len(res.holdout) == 241 and set(res.holdout["decisions"]) == {5}
    table = res.tables["sbg"]["holdout_retention"]
    assert table["actual"].tolist() == [241, 223, 207, 194, 183, 173]
    s = model.survival(np.arange(7, 13))
    np.testing.assert_allclose(table["expected"], 241 * s / s[0], rtol=1e-10)
    # the sBG projects within 1.7 points of the cohort, slightly low (F&H 2007, Figure 3) ...
    err = 100 * (table["expected_share"] - table["actual_share"]).iloc[1:] * 0.241
    assert np.all(err < 0.2) and np.all(err > -1.7)
    # ... and the F&H figure's table: observed survival through year 12, the projection of
    # the fit beyond year 7 (22.0, 20.4, 19.1, 18.0, 17.0; tests/test_sbg.py)
    surv = res.tables["sbg"]["survival"]
    np.testing.assert_allclose(surv["observed"], np.asarray(FH07_REGULAR) / 100, atol=1e-12)
    np.testing.assert_allclose(100 * surv["model"].iloc[8:], [22.0, 20.4, 19.1, 18.0, 17.0],
                               atol=0.05)
    assert surv.attrs["calibrated_through"] == 7
    assert not surv["in_calibration"].iloc[8:].any() and surv["in_calibration"].iloc[:8].all()
    # the constant churn rate loses the survivors far too fast
    m = res.metrics
    assert abs(m.at["constant-churn", "tracking_error"]) > 10 * abs(m.at["sbg",
                                                                         "tracking_error"])
    assert m.at["sbg", "aic"] < m.at["constant-churn", "aic"]
    assert res.best["holdout_log_likelihood"] == ["sbg"]


# --------------------------------------------------------------------------------------
# simulated subscriptions: the sBG recovers its parameters and beats the constant rate
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated() -> ContractualComparison:
    subs = simulate_subscriptions(3000, 0.8, 2.5, seed=0)
    return compare_contractual(subs, calibration_end="2022-06-30",
                               observation_end="2023-06-30")


def test_simulated_sbg_beats_constant_churn(simulated: ContractualComparison) -> None:
    m = simulated.metrics
    assert list(m.index) == ["sbg", "constant-churn"]
    assert list(m.columns) == list(CONTRACTUAL_METRIC_COLUMNS)
    params = simulated.models["sbg"].params_
    assert params["alpha"] == pytest.approx(0.8, rel=0.2)
    assert params["beta"] == pytest.approx(2.5, rel=0.2)
    sbg, naive = m.loc["sbg"], m.loc["constant-churn"]
    assert abs(sbg["aggregate_bias"]) < 0.1 < abs(naive["aggregate_bias"])
    assert sbg["mae"] < naive["mae"] and sbg["rmse"] < naive["rmse"]
    assert abs(sbg["tracking_error"]) < abs(naive["tracking_error"])
    assert sbg["retention_mae"] < naive["retention_mae"]
    assert sbg["holdout_log_likelihood"] > naive["holdout_log_likelihood"]
    assert sbg["aic"] < naive["aic"]
    # the naive rate under-forecasts: survivors churn less than the pool did
    assert naive["aggregate_bias"] < 0
    best = simulated.best
    assert best["mae"] == ["sbg"] and best["tracking_error"] == ["sbg"]
    assert "fit_seconds" not in best


def test_simulated_holdout_is_consistent(simulated: ContractualComparison) -> None:
    h = simulated.holdout
    calib = simulated.calibration
    assert (calib.loc[h.index, "churned"] == False).all()  # noqa: E712
    assert (h["renewals"] <= h["decisions"]).all() and (h["decisions"] == 12).all()
    # renewals = periods paid by observation_end - periods paid by calibration_end
    final = contract_summary(simulate_subscriptions(3000, 0.8, 2.5, seed=0),
                             observation_end="2023-06-30")
    np.testing.assert_array_equal(h["renewals"],
                                  final.loc[h.index, "periods"] - h["periods"])
    table = simulated.tables["sbg"]["holdout_retention"]
    assert table["actual"].iloc[-1] == h["paying_at_end"].sum()
    # the constant churn baseline is the pooled churn rate of the calibration summary
    assert simulated.baselines["constant-churn"].params_["churn"] == pytest.approx(
        churn_rate(calib))
    assert simulated.data_summary["churn_rate_holdout"] < simulated.data_summary[
        "churn_rate_calibration"]  # the sorting effect


def test_constant_churn_is_the_geometric_mle() -> None:
    data = pd.DataFrame({"periods": [1, 3, 2, 5, 4], "churned": [True, True, False, False,
                                                                 True]})
    model = ConstantChurn().fit(data)
    c = model.params_["churn"]
    assert c == pytest.approx(3 / (1 + 3 + 1 + 4 + 4))

    def ll(p: float) -> float:
        n, ch = data["periods"].to_numpy(), data["churned"].to_numpy()
        return float(np.sum((n - 1) * np.log1p(-p) + ch * np.log(p)))

    assert model.log_likelihood_ == pytest.approx(ll(c))
    assert ll(c) > max(ll(c * 0.99), ll(c * 1.01))
    np.testing.assert_allclose(model.survival(np.arange(4)), (1 - c) ** np.arange(4))
    assert model.expected_lifetime() == pytest.approx(1 / c)
    assert model.summary().loc["churn", "estimate"] == pytest.approx(c)


# --------------------------------------------------------------------------------------
# segments: a hierarchical Bayesian sBG
# --------------------------------------------------------------------------------------


def test_segments_with_hierarchical_bayesian_sbg() -> None:
    basic = simulate_subscriptions(500, 0.6, 3.0, seed=1).assign(plan="basic")
    pro = simulate_subscriptions(500, 1.5, 1.5, seed=2, id_offset=10_000).assign(plan="pro")
    subs = pd.concat([basic, pro], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains: sampling diagnostics may complain
        res = compare_contractual(subs, calibration_end="2022-06-30",
                                  observation_end="2023-06-30",
                                  models=["sbg", "bayes-sbg"], segment_col="plan",
                                  bayes_kwargs={"draws": 150, "tune": 150, "chains": 2})
    m = res.metrics
    assert np.isfinite(m.at["bayes-sbg", "elpd_loo"]) and np.isnan(m.at["bayes-sbg", "aic"])
    bayes = res.models["bayes-sbg"]
    assert bayes.segment_col == "plan" and list(bayes.segment_labels_) == ["basic", "pro"]
    seg = res.segment_metrics
    assert set(seg.index.get_level_values("segment")) == {"basic", "pro"}
    assert seg.loc["sbg", "customers"].sum() == len(res.holdout)
    assert seg.loc["bayes-sbg", "actual"].sum() == res.holdout["renewals"].sum()
    # each plan keeps its own churn: the pro plan (mean churn 0.5) above the basic (1/6)
    seg_params = bayes.segment_params_
    churn = seg_params["alpha"] / (seg_params["alpha"] + seg_params["beta"])
    assert churn["pro"] > 2 * churn["basic"]
    per_customer = seg.loc["bayes-sbg", "predicted"] / seg.loc["bayes-sbg", "customers"]
    assert per_customer["pro"] < per_customer["basic"]
    assert seg.loc["bayes-sbg", "predicted"].sum() == pytest.approx(
        res.predictions["bayes-sbg"]["expected_renewals"].sum())
    assert abs(seg.at[("bayes-sbg", "basic"), "aggregate_bias"]) < 0.1
    assert np.isfinite(seg["holdout_log_likelihood"]).all()
    assert "model_lower" in res.tables["bayes-sbg"]["survival"]
    # the report's tables of a Bayesian row (figures: slow)
    from clvmodels.report import render_html

    page = render_html(res, figures=[])
    for needle in ("ELPD (LOO)", "R-hat", "upper 94% HDI", 'id="segments"', "Bayesian sBG",
                   "segments <b>2 (plan)</b>"):
        assert needle in page, needle


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------


def test_bad_input(hand: pd.DataFrame) -> None:
    kw = dict(calibration_end="2023-03-31", observation_end="2023-06-30")
    with pytest.raises(ValueError, match="after calibration_end"):
        compare_contractual(hand, calibration_end="2023-03-31", observation_end="2023-03-31")
    with pytest.raises(ValueError, match=r"unknown model 'nope'.*sbg"):
        compare_contractual(hand, models=["nope"], **kw)
    with pytest.raises(ValueError, match=r"'bgnbd'.*compare_models"):
        compare_contractual(hand, models=["bgnbd"], **kw)
    with pytest.raises(ValidationError, match="'plan'"):
        compare_contractual(hand, segment_col="plan", **kw)
    with pytest.raises(ValueError, match="no renewal decision"):
        compare_contractual(hand, calibration_end="2023-03-31", observation_end="2023-04-05")
    with pytest.raises(ValidationError, match="nobody is active"):
        compare_contractual(hand.iloc[[2]], calibration_end="2023-03-31",
                            observation_end="2023-06-30", baselines=False)
    with pytest.raises(ValidationError, match="'end'"):
        bad = hand.assign(end=["2023-05-10", "2022-01-01", None, None, None])
        compare_contractual(bad, **kw)


def test_compare_models_refuses_other_kinds(cdnow_transactions: pd.DataFrame) -> None:
    kw = dict(calibration_end="1997-09-30", observation_end="1998-06-30")
    with pytest.raises(ValueError, match=r"'sbg'.*compare_contractual"):
        compare_models(cdnow_transactions, models=["sbg"], **kw)
    with pytest.raises(ValueError, match=r"'bgbb'.*compare_discrete"):
        compare_models(cdnow_transactions, models=["bgbb"], **kw)
