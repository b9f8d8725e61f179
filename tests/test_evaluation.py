"""Holdout evaluation: compare_models on CDNOW, the metric functions, the predictive pmf."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from clvmodels import BetaGeo, ParetoNBD, ValidationError
from clvmodels.evaluation import (
    BASELINES,
    METRIC_COLUMNS,
    ModelComparison,
    best_by_metric,
    compare_models,
    count_metrics,
    interval_coverage,
    predictive_count_pmf,
    value_metrics,
)
from clvmodels.plotting import calibration_histogram_table, tracking_table

CAL, HOLD = "1997-09-30", "1998-06-30"
MODELS = ["bgnbd", "pnbd", "mbgnbd"]


@pytest.fixture(scope="module")
def comparison(_cdnow_transactions: pd.DataFrame) -> ModelComparison:
    return compare_models(_cdnow_transactions, calibration_end=CAL, observation_end=HOLD,
                          time_unit="W", models=MODELS)


# --------------------------------------------------------------------------------------
# compare_models on CDNOW
# --------------------------------------------------------------------------------------


def test_metrics_table_shape(comparison: ModelComparison) -> None:
    m = comparison.metrics
    assert list(m.index) == [*MODELS, *BASELINES]
    assert list(m.columns) == list(METRIC_COLUMNS)
    for col in ("mae", "rmse", "correlation", "aggregate_bias", "spearman_clv", "gini_clv",
                "top_decile_capture", "fit_seconds"):
        assert m[col].notna().all(), col  # models and baselines alike
    for col in ("log_likelihood", "aic", "bic", "chi_square", "tracking_error",
                "interval_coverage"):
        assert m.loc[MODELS, col].notna().all() and m.loc[list(BASELINES), col].isna().all()
    assert m["elpd_loo"].isna().all()  # no Bayesian model here
    assert len(comparison.rfm) == 2357
    assert comparison.data_summary["repeat_transactions_holdout"] == 1882


def test_published_correlations_and_fit(comparison: ModelComparison) -> None:
    m = comparison.metrics
    # Fader, Hardie & Lee (2005): individual-level correlation over the 39-week holdout
    assert round(m.at["bgnbd", "correlation"], 3) == 0.626
    assert round(m.at["pnbd", "correlation"], 3) == 0.630
    assert m.at["bgnbd", "log_likelihood"] == pytest.approx(-9582.4292, abs=1e-3)
    assert m.at["pnbd", "log_likelihood"] == pytest.approx(-9594.98, abs=0.01)
    assert m.at["bgnbd", "aic"] == pytest.approx(2 * 4 + 2 * 9582.4292, abs=1e-2)


def test_holdout_metrics_match_predictions(comparison: ModelComparison) -> None:
    y = comparison.rfm["frequency_holdout"].to_numpy(float)
    for name, pred in comparison.predictions.items():
        yhat = pred["expected_purchases"].to_numpy()
        row = comparison.metrics.loc[name]
        bias = yhat.sum() / y.sum() - 1
        assert row["aggregate_bias"] == pytest.approx(bias)
        assert row["mae"] == pytest.approx(np.mean(np.abs(yhat - y)))
        assert row["correlation"] == pytest.approx(np.corrcoef(y, yhat)[0, 1])
    m = comparison.metrics
    # the models under-forecast the CDNOW holdout (1,653 of 1,882 for the BG/NBD) ...
    assert (m.loc[MODELS, "aggregate_bias"] < 0).all()
    assert comparison.predictions["bgnbd"]["expected_purchases"].sum() == pytest.approx(
        1653.4, abs=0.1)
    # ... while "each customer keeps their calibration rate" over-forecasts it
    assert m.at["calibration-rate", "aggregate_bias"] > 0
    x_over_T = comparison.rfm["frequency"] / comparison.rfm["T"]
    assert comparison.predictions["calibration-rate"]["expected_purchases"].sum() == (
        pytest.approx((x_over_T * 39).sum()))


def test_chi_square_and_tracking_come_from_the_plotting_tables(
        comparison: ModelComparison, cdnow_transactions: pd.DataFrame) -> None:
    rfm = comparison.rfm
    for name in MODELS:
        model = comparison.models[name]
        table = calibration_histogram_table(model, rfm, max_frequency=7)
        assert comparison.metrics.at[name, "chi_square"] == pytest.approx(
            table.attrs["chi_square"])
        track = tracking_table(model, cdnow_transactions, CAL, HOLD, period="W")
        # the holdout part of the cumulative curves: expected / actual - 1, the figure's
        # legend number (issue 9: the metric and the legend are one number)
        in_holdout = (track["expected_cumulative"].iloc[-1] - track.attrs["calibration_expected"])
        expected = in_holdout / (track["actual_cumulative"].iloc[-1] - 2457) - 1
        assert comparison.metrics.at[name, "tracking_error"] == pytest.approx(expected)
        assert 100 * comparison.metrics.at[name, "tracking_error"] == pytest.approx(
            track.attrs["holdout_percent_error"])
        # the unconditional forecast differs from the conditional one behind the bias
        assert comparison.metrics.at[name, "tracking_error"] != pytest.approx(
            comparison.metrics.at[name, "aggregate_bias"], abs=1e-4)
    # the published expected histogram of the BG/NBD (FHL 2005)
    hist = comparison.tables["bgnbd"]["calibration_histogram"]
    np.testing.assert_allclose(hist["expected"],
                               [1407.7, 460.3, 192.5, 101.2, 59.8, 38.1, 25.5, 71.9], atol=0.06)
    # cumulative actual at the end = calibration + holdout repeat transactions
    track = comparison.tables["bgnbd"]["tracking"]
    assert track["actual_cumulative"].iloc[-1] == 2457 + 1882


def test_value_metrics_use_undiscounted_holdout_value(comparison: ModelComparison) -> None:
    rfm = comparison.rfm
    actual = rfm["frequency_holdout"] * rfm["monetary_value_holdout"]
    assert actual.sum() == pytest.approx(comparison.data_summary["revenue_holdout"])
    pred = comparison.predictions["bgnbd"]
    spend = comparison.spend_model.expected_spend(rfm)
    np.testing.assert_allclose(pred["predicted_value"], pred["expected_purchases"] * spend,
                               rtol=1e-9)
    row = comparison.metrics.loc["bgnbd"]
    assert 0.3 < row["spearman_clv"] < 0.6 and 0.4 < row["top_decile_capture"] < 0.6
    assert 0 < row["gini_clv"] < 1


def test_valuation_and_best(comparison: ModelComparison) -> None:
    assert comparison.valuation_model == "bgnbd"
    value = comparison.valuations["bgnbd"]
    assert len(value) == 2357 and (value["clv"] >= 0).all()
    best = comparison.best
    assert best["correlation"] == ["pnbd"] and best["aic"] == ["mbgnbd"]
    assert "fit_seconds" not in best and "elpd_loo" not in best


def test_models_as_objects_fitted_or_not(cdnow_transactions: pd.DataFrame,
                                         cdnow_split: pd.DataFrame) -> None:
    fitted = BetaGeo().fit(cdnow_split)
    params = fitted.params_.copy()
    res = compare_models(cdnow_transactions, calibration_end=CAL, observation_end=HOLD,
                         models={"mine": fitted, "fresh": ParetoNBD()}, baselines=False,
                         spend_model=None)
    assert list(res.metrics.index) == ["mine", "fresh"]
    assert res.models["mine"] is fitted  # used as given, not refitted
    pd.testing.assert_series_equal(fitted.params_, params)
    assert round(res.metrics.at["fresh", "correlation"], 3) == 0.630
    assert res.metrics["spearman_clv"].isna().all() and res.valuations == {}
    # a plain list of objects is named by their short names
    listed = compare_models(cdnow_transactions, calibration_end=CAL, observation_end=HOLD,
                            models=[fitted], baselines=False, monetary_value_col=None)
    assert list(listed.metrics.index) == ["bgnbd"]


def test_segment_metrics(cdnow_transactions: pd.DataFrame) -> None:
    tx = cdnow_transactions
    first = tx.groupby("customer_id")["date"].transform("min")
    tx["cohort"] = np.where(first < "1997-02-01", "jan", "later")
    res = compare_models(tx, calibration_end=CAL, observation_end=HOLD, models=["bgnbd"],
                         segment_col="cohort", spend_model=None)
    seg = res.segment_metrics
    assert seg is not None
    assert set(seg.index.get_level_values("segment")) == {"jan", "later"}
    assert seg.loc["bgnbd", "customers"].sum() == 2357
    assert seg.loc["bgnbd", "actual"].sum() == 1882
    assert "cohort" in res.rfm.columns


def test_bad_input(cdnow_transactions: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        compare_models(cdnow_transactions, calibration_end=CAL, observation_end=HOLD,
                       models=["nope"])
    with pytest.raises(ValueError, match="given twice"):
        compare_models(cdnow_transactions, calibration_end=CAL, observation_end=HOLD,
                       models=["bgnbd", "bgnbd"])
    with pytest.raises(ValidationError, match="'region'"):
        compare_models(cdnow_transactions, calibration_end=CAL, observation_end=HOLD,
                       models=["bgnbd"], segment_col="region")
    with pytest.raises(ValidationError, match="'price'"):
        compare_models(cdnow_transactions, calibration_end=CAL, observation_end=HOLD,
                       models=["bgnbd"], monetary_value_col="price")


# --------------------------------------------------------------------------------------
# metric functions
# --------------------------------------------------------------------------------------


def test_count_metrics_by_hand() -> None:
    out = count_metrics(np.array([0, 2, 4]), np.array([1.0, 2.0, 3.0]))
    assert out["mae"] == pytest.approx(2 / 3)
    assert out["rmse"] == pytest.approx(np.sqrt(2 / 3))
    assert out["aggregate_bias"] == pytest.approx(0.0)
    assert out["correlation"] == pytest.approx(1.0)
    assert np.isnan(count_metrics(np.zeros(3), np.ones(3))["aggregate_bias"])
    assert np.isnan(count_metrics(np.array([1, 2, 3]), np.ones(3))["correlation"])


def test_value_metrics_rankings() -> None:
    actual = np.array([0.0, 0.0, 1.0, 3.0, 6.0, 10.0, 0.0, 2.0, 0.0, 0.0])
    perfect = value_metrics(actual, actual)
    assert perfect["gini_clv"] == pytest.approx(1.0)
    assert perfect["spearman_clv"] == pytest.approx(1.0)
    assert perfect["top_decile_capture"] == pytest.approx(10 / 22)  # the top 1 of 10
    reverse = value_metrics(-actual, actual)
    assert reverse["gini_clv"] == pytest.approx(-1.0)
    # all tied: a random order, no credit
    tied = value_metrics(np.ones(10), actual)
    assert tied["gini_clv"] == pytest.approx(0.0, abs=1e-12)
    assert tied["top_decile_capture"] == pytest.approx(0.1)
    assert np.isnan(tied["spearman_clv"])


def test_best_by_metric_directions() -> None:
    m = pd.DataFrame({"mae": [1.0, 0.5], "correlation": [0.2, 0.6],
                      "aggregate_bias": [-0.05, 0.10], "interval_coverage": [0.97, 0.88],
                      "fit_seconds": [1.0, 2.0], "elpd_loo": [np.nan, np.nan]},
                     index=["a", "b"])
    best = best_by_metric(m, interval=0.9)
    assert best == {"mae": ["b"], "correlation": ["b"], "aggregate_bias": ["a"],
                    "interval_coverage": ["b"]}


def test_interval_coverage_matches_quantiles() -> None:
    rng = np.random.default_rng(1)
    pmf = rng.dirichlet(np.ones(6), size=200)
    y = rng.integers(0, 6, size=200)
    covered = interval_coverage(pmf, y, 0.8)
    cdf = np.cumsum(pmf, axis=1)
    lower = (cdf >= 0.1).argmax(axis=1)
    upper = (cdf >= 0.9 - 1e-15).argmax(axis=1)
    np.testing.assert_array_equal(covered, (y >= lower) & (y <= upper))
    with pytest.raises(ValueError, match="cover"):
        interval_coverage(pmf[:, :2], np.full(200, 3))


@pytest.mark.parametrize("name", MODELS)
def test_predictive_pmf_sums_to_one_and_has_the_model_mean(
        comparison: ModelComparison, name: str) -> None:
    model = comparison.models[name]
    rfm = comparison.rfm.iloc[::12]  # ~200 customers, all frequencies
    pmf = predictive_count_pmf(model, rfm, 39.0, 80)
    assert pmf.shape == (len(rfm), 81)
    np.testing.assert_allclose(pmf.sum(axis=1), 1.0, atol=1e-8)
    mean = pmf @ np.arange(81)
    np.testing.assert_allclose(mean, model.expected_purchases(rfm, 39.0), rtol=1e-7,
                               atol=1e-9)
    # per-customer limits: entries above a customer's own count are not computed
    need = rfm["frequency_holdout"].to_numpy()
    part = predictive_count_pmf(model, rfm, 39.0, need)
    for i in range(len(rfm)):
        np.testing.assert_allclose(part[i, :need[i] + 1], pmf[i, :need[i] + 1], rtol=1e-12)
        assert np.isnan(part[i, need[i] + 1:]).all()


# --------------------------------------------------------------------------------------
# Bayesian rows (one small fit)
# --------------------------------------------------------------------------------------


def test_bayesian_row(cdnow_transactions: pd.DataFrame) -> None:
    """bayes-bgnbd on a third of CDNOW: ELPD, posterior-predictive coverage, report path."""
    from clvmodels.report import render_html

    tx = cdnow_transactions.loc[cdnow_transactions["customer_id"] % 3 == 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains: sampling diagnostics may complain
        res = compare_models(tx, calibration_end=CAL, observation_end=HOLD,
                             models=["bgnbd", "bayes-bgnbd"], baselines=False,
                             bayes_kwargs={"draws": 150, "tune": 150, "chains": 2})
    m = res.metrics
    row = m.loc["bayes-bgnbd"]
    assert np.isnan(row["log_likelihood"]) and np.isfinite(row["elpd_loo"])
    # LOO is a little below the in-sample log-likelihood of the MLE fit
    assert m.at["bgnbd", "log_likelihood"] - 25 < row["elpd_loo"] < m.at["bgnbd",
                                                                          "log_likelihood"]
    assert 0.85 < row["interval_coverage"] <= 1.0
    assert abs(row["correlation"] - m.at["bgnbd", "correlation"]) < 0.02
    assert row["fit_seconds"] > 0
    model = res.models["bayes-bgnbd"]
    rfm = res.rfm.iloc[::5]
    pmf = predictive_count_pmf(model, rfm, 39.0, 60)
    np.testing.assert_allclose(pmf @ np.arange(61), model.expected_purchases(rfm, 39.0),
                               rtol=1e-6)
    value = res.valuations["bayes-bgnbd"]
    assert {"clv_lower", "clv_upper"} <= set(value.columns)
    page = render_html(res, figures=[])  # the tables of a Bayesian row (figures: slow)
    assert "ELPD (LOO)" in page and "upper 94% HDI" in page and "R-hat" in page
