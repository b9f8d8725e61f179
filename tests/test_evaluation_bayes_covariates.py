"""A Bayesian model with covariates through compare_models, the diagnostics and the report
(tiny sampler settings: 2 chains x 100 draws, 500 customers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_evaluation_covariates import CAL_END, OBS_END, simulate_channels

from clvmodels.diagnostics import calibration_histogram_table, tracking_table
from clvmodels.diagnostics_covariates import coefficient_table
from clvmodels.evaluation import compare_models
from clvmodels.models import registry
from clvmodels.report import coefficients_frame


@pytest.fixture(scope="module")
def run():
    tx, customers = simulate_channels()
    bayes = registry.get_model("bayes-bgnbd")(purchase_covariates=["channel"])
    comparison = compare_models(
        tx, calibration_end=CAL_END, observation_end=OBS_END, models={"bayes+cov": bayes},
        customers=customers, spend_model=None, baselines=False,
        bayes_kwargs={"draws": 100, "tune": 100, "chains": 2, "random_seed": 1})
    return comparison, tx


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_bayesian_covariate_model_is_compared(run) -> None:
    comparison, tx = run
    row = comparison.metrics.loc["bayes+cov"]
    for col in ("elpd_loo", "chi_square", "mae", "tracking_error", "interval_coverage"):
        assert np.isfinite(row[col]), col
    model, rfm = comparison.models["bayes+cov"], comparison.rfm
    # tracking: the posterior mean of E[X], one customer at a time
    track = tracking_table(model, tx, CAL_END, OBS_END, covariates=rfm)
    assert "expected_lower" not in track  # the mean only, no pretended band
    days = pd.to_datetime(tx["date"]).dt.normalize()
    first = days.groupby(tx["customer_id"]).min()
    lags = (pd.Timestamp(CAL_END) - first).dt.days.to_numpy() / 7.0
    total = sum(float(np.asarray(model.expected_purchases_new_customer(
        np.array([lag]), covariates=rfm.loc[[cid]])).reshape(-1)[0])
        for cid, lag in zip(first.index, lags, strict=True))
    assert track.attrs["calibration_expected"] == pytest.approx(total, rel=1e-6)
    # histogram: per (covariate pattern, T) over the posterior draws
    hist = calibration_histogram_table(model, rfm)
    assert hist["expected"].sum() == pytest.approx(len(rfm), rel=1e-6)
    assert {"expected_lower", "expected_upper"} <= set(hist.columns)


def test_bayesian_coefficient_table(run) -> None:
    comparison, _ = run
    model = comparison.models["bayes+cov"]
    table = coefficient_table(model, interval=0.9)
    draws = model.coefficient_draws()
    assert list(table.index) == list(draws.columns) == ["purchase:channel[web]"]
    np.testing.assert_allclose(table["estimate"], draws.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(table["lower"], draws.quantile(0.05), rtol=1e-10)
    assert 0.5 < table["estimate"].iloc[0] < 1.7  # log 3 = 1.10
    frame = coefficients_frame(comparison)
    assert frame.loc[("bayes+cov", "purchase:channel[web]"), "estimate"] == pytest.approx(
        table["estimate"].iloc[0])
