"""Covariate models through evaluation, valuation and the batch forecast (issue 11).

Data: two acquisition channels simulated separately with their own purchase rate (BG/NBD
transactions, ``store`` alpha 12, ``web`` alpha 4: web customers buy three times as often),
joined by a customer-attribute table. Every check compares the covariate path with an
independent computation (one customer at a time, or the model's own histogram).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels import workflow
from clvmodels._validation import ValidationError
from clvmodels.diagnostics import calibration_histogram_table, tracking_table
from clvmodels.evaluation import compare_models
from clvmodels.simulate import simulate_transactions

CAL_END = "2020-08-27"
OBS_END = "2020-12-25"


def simulate_channels(n_per: int = 250, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(transactions, customer table): one scalar-parameter simulation per channel."""
    rng = np.random.default_rng(seed)
    parts, tables = [], []
    for k, (channel, alpha) in enumerate([("store", 12.0), ("web", 4.0)]):
        tx = simulate_transactions(n_per, 0.8, alpha, 0.6, 2.5, acquisition_days=120,
                                   observation_days=240, holdout_days=120, spend=None,
                                   random_seed=seed + k)
        tx["customer_id"] = tx["customer_id"] + k * n_per
        tx["amount"] = rng.gamma(4.0, 10.0 * (1 + k), len(tx))
        parts.append(tx)
        tables.append(pd.DataFrame({"customer_id": np.arange(n_per) + k * n_per,
                                    "channel": channel}))
    return pd.concat(parts, ignore_index=True), pd.concat(tables, ignore_index=True)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return simulate_channels()


@pytest.fixture(scope="module")
def comparison(data: tuple[pd.DataFrame, pd.DataFrame]):
    tx, customers = data
    return compare_models(
        tx, calibration_end=CAL_END, observation_end=OBS_END,
        models={"pnbd": "pnbd",
                "pnbd+cov": clvmodels.ParetoNBD(purchase_covariates=["channel"]),
                "bgnbd+cov": clvmodels.BetaGeo(purchase_covariates=["channel"],
                                               dropout_covariates=["channel"])},
        customers=customers, spend_model=clvmodels.GammaGamma(spend_covariates=["channel"]),
        clv_horizon="6M")


def test_compare_models_with_covariate_models(comparison) -> None:
    m = comparison.metrics
    assert "channel" in comparison.rfm.columns
    assert comparison.rfm["channel"].value_counts().to_dict() == {"store": 250, "web": 250}
    for name in ("pnbd+cov", "bgnbd+cov"):
        row = m.loc[name]
        for col in ("log_likelihood", "chi_square", "mae", "tracking_error", "spearman_clv",
                    "interval_coverage"):
            assert np.isfinite(row[col]), (name, col)
    # the channel effect is real (web buys ~3x as often): the covariate fit is far better
    assert m.loc["pnbd+cov", "log_likelihood"] > m.loc["pnbd", "log_likelihood"] + 10
    coef = comparison.models["pnbd+cov"].params_["purchase:channel[web]"]
    assert 0.6 < coef < 1.6  # log 3 = 1.10
    assert comparison.settings["covariates"]["bgnbd+cov"] == {"purchase": ["channel"],
                                                              "dropout": ["channel"]}
    # valuations follow the channel: web customers are worth more on average
    value = comparison.valuations["pnbd+cov"]["clv"]
    by_channel = value.groupby(comparison.rfm["channel"]).mean()
    assert by_channel["web"] > 1.5 * by_channel["store"]


def test_histogram_uses_each_customers_covariates(comparison) -> None:
    model, rfm = comparison.models["bgnbd+cov"], comparison.rfm
    table = calibration_histogram_table(model, rfm)
    own = model.expected_frequency_histogram(rfm)  # the model's per-customer path
    np.testing.assert_allclose(table["expected"].to_numpy(), own.to_numpy(), rtol=1e-9)
    assert table.attrs["dof"] == len(table) - 1 - 4 - 2


def test_tracking_uses_each_customers_covariates(comparison, data) -> None:
    tx, _ = data
    model, rfm = comparison.models["pnbd+cov"], comparison.rfm
    track = tracking_table(model, tx, CAL_END, OBS_END, covariates=rfm)
    # independent: one customer at a time, E[X(calibration_end - first purchase)]
    days = pd.to_datetime(tx["date"]).dt.normalize()
    first = days.groupby(tx["customer_id"]).min()
    lags = (pd.Timestamp(CAL_END) - first).dt.days.to_numpy() / 7.0
    expected = sum(float(np.asarray(model.expected_purchases_new_customer(
        np.array([lag]), covariates=rfm.loc[[cid]]))[0, 0])
        for cid, lag in zip(first.index, lags, strict=True))
    assert track.attrs["calibration_expected"] == pytest.approx(expected, rel=1e-9)
    # read from the transactions when they carry the column
    tx2 = tx.merge(data[1], on="customer_id")
    again = tracking_table(model, tx2, CAL_END, OBS_END)
    np.testing.assert_allclose(again["expected"], track["expected"], rtol=1e-12)
    with pytest.raises(ValueError, match="covariates has no row"):
        tracking_table(model, tx, CAL_END, OBS_END, covariates=rfm.iloc[:10])


def test_valuation_compresses_by_profile(comparison) -> None:
    model, spend, rfm = (comparison.models["bgnbd+cov"], comparison.spend_model,
                         comparison.rfm.iloc[:40])
    together = clvmodels.customer_lifetime_value(model, spend, rfm, horizon=52,
                                                 discount_rate=0.1)
    alone = pd.concat([clvmodels.customer_lifetime_value(model, spend, rfm.iloc[[i]],
                                                         horizon=52, discount_rate=0.1)
                       for i in range(len(rfm))])
    np.testing.assert_allclose(together["clv"], alone["clv"], rtol=1e-10)
    np.testing.assert_allclose(together["expected_purchases"], alone["expected_purchases"],
                               rtol=1e-10)
    with pytest.raises(ValidationError, match="channel"):
        clvmodels.customer_lifetime_value(model, spend, rfm.drop(columns="channel"),
                                          horizon=52, discount_rate=0.1)


@pytest.mark.filterwarnings("ignore:discounted. the undiscounted:UserWarning")
def test_dert_closed_form_with_covariates(comparison) -> None:
    model, rfm = comparison.models["pnbd+cov"], comparison.rfm
    v = clvmodels.customer_lifetime_value(model, 1.0, rfm, horizon=np.inf, discount_rate=0.1,
                                          discounting="continuous")
    assert np.all(np.isfinite(v["clv"]))
    alone = clvmodels.customer_lifetime_value(model, 1.0, rfm.iloc[[0]], horizon=np.inf,
                                              discount_rate=0.1, discounting="continuous")
    assert v["clv"].iloc[0] == pytest.approx(alone["clv"].iloc[0], rel=1e-10)


def test_forecast_with_customer_table(data) -> None:
    tx, customers = data
    res = workflow.forecast(tx, model="pnbd", purchase_covariates=["channel"],
                            spend_covariates=["channel"], customers=customers,
                            observation_end=CAL_END, horizon="6M")
    assert "purchase:channel[web]" in res.transaction_model.params_.index
    assert "spend:channel[web]" in res.spend_model.params_.index
    by = res.forecast.groupby("channel")["clv"].mean()
    assert by["web"] > 1.5 * by["store"]
    # the same columns read from the transactions themselves
    res2 = workflow.forecast(tx.merge(customers, on="customer_id"), model="pnbd",
                             purchase_covariates=["channel"], spend_covariates=["channel"],
                             observation_end=CAL_END, horizon="6M")
    np.testing.assert_allclose(res2.forecast["clv"], res.forecast["clv"], rtol=1e-8)


def test_refusals(data) -> None:
    tx, customers = data
    with pytest.raises(ValidationError, match="gender"):
        workflow.forecast(tx, model="pnbd", purchase_covariates=["gender"],
                          customers=customers, observation_end=CAL_END)
    with pytest.raises(ValueError, match="customers="):
        workflow.forecast(tx, model="pnbd", customers=customers, observation_end=CAL_END)
    with pytest.raises(ValidationError, match="no row for"):
        compare_models(tx, calibration_end=CAL_END, observation_end=OBS_END,
                       models={"c": clvmodels.ParetoNBD(purchase_covariates=["channel"])},
                       customers=customers.iloc[:100], spend_model=None, baselines=False)
    with pytest.raises(ValueError, match="none of the models has covariates"):
        compare_models(tx, calibration_end=CAL_END, observation_end=OBS_END, models=["pnbd"],
                       customers=customers, spend_model=None, baselines=False)


def test_grid_tables_take_a_profile(comparison, data) -> None:
    from clvmodels.diagnostics import frequency_recency_table, probability_alive_history

    model, rfm = comparison.models["pnbd+cov"], comparison.rfm
    web = frequency_recency_table(model, rfm, covariates={"channel": "web"}, max_frequency=4)
    store = frequency_recency_table(model, rfm, covariates={"channel": "store"},
                                    max_frequency=4)
    # a frequent, recent buyer: a web customer (purchase rate x ~3) buys more
    assert web.iloc[-1, -1] > 1.2 * store.iloc[-1, -1]
    np.testing.assert_array_equal(web.isna().to_numpy(), store.isna().to_numpy())
    with pytest.raises(ValueError, match="pass covariates="):
        frequency_recency_table(model, rfm)
    with pytest.raises(ValueError, match="no value for column"):
        frequency_recency_table(model, rfm, covariates={"gender": "f"})
    with pytest.raises(ValueError, match="has no covariates"):
        frequency_recency_table(comparison.models["pnbd"], rfm, covariates={"channel": "web"})
    tx, _ = data
    hist = probability_alive_history(model, tx, OBS_END, customer_id=0,
                                     covariates={"channel": "store"})
    one = rfm.loc[[0]]
    assert hist["probability_alive"].iloc[-1] > 0
    assert np.isfinite(model.probability_alive(one).iloc[0])


def test_unavailable_diagnostic_is_a_note() -> None:
    from clvmodels.evaluation.comparison import unless_unavailable

    caught: list[tuple[str, str]] = []

    def missing() -> None:
        raise NotImplementedError("tracking of a Bayesian model with covariates")

    assert unless_unavailable(missing, "m", caught) is None
    assert caught == [("m", "not computed: tracking of a Bayesian model with covariates")]
    assert unless_unavailable(lambda: 3, "m", caught) == 3


def test_compare_discrete_with_covariates() -> None:
    from clvmodels.evaluation import compare_discrete
    from clvmodels.models.bgbb import simulate_bgbb

    parts = []
    for k, (channel, alpha) in enumerate([("a", 1.2), ("b", 0.4)]):
        d = simulate_bgbb(300, 6, alpha=alpha, beta=0.8, gamma=0.7, delta=2.5, holdout=5,
                          random_seed=k)
        d.index = d.index.astype(str) + channel
        d["channel"] = channel
        parts.append(d)
    data = pd.concat(parts)
    table = data[["channel"]].rename_axis("cid").reset_index()
    c = compare_discrete(data.drop(columns="channel"), customers=table, customers_id_col="cid",
                         models={"bgbb": "bgbb", "bgbb+cov": clvmodels.BetaGeoBetaBinom(
                             purchase_covariates=["channel"])})
    m = c.metrics
    assert m.loc["bgbb+cov", "log_likelihood"] > m.loc["bgbb", "log_likelihood"]
    assert np.isfinite(m.loc["bgbb+cov", ["chi_square", "tracking_error", "mae"]]).all()
    # tracking: the cohort's expected holdout transactions, one customer at a time
    model, rfm = c.models["bgbb+cov"], c.rfm
    T = rfm["T"].to_numpy(float)
    total = sum(float(np.asarray(model.expected_purchases_new_customer(
        np.array([t + 5.0, t]), covariates=rfm.iloc[[i]]))[0] @ [1.0, -1.0])
        for i, t in enumerate(T))
    actual = float(rfm["frequency_holdout"].sum())
    assert m.loc["bgbb+cov", "tracking_error"] == pytest.approx(total / actual - 1, rel=1e-9)
