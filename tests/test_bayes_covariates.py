"""Covariates in the Bayesian models (issue 11): the MLE twin's links over posterior draws.

Tiny fits (a few hundred customers, 2 chains × 200 draws): recovery of a known coefficient
(its 90% interval covers the truth, its posterior mean is near the MLE), hierarchical +
covariates together, Gamma-Gamma spend and sBG drop-out covariates, the netCDF round
trip and the refusals (no data, unseen level, missing column).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels._validation import ValidationError
from clvmodels.models.bayes_bgnbd import BayesianBetaGeo
from clvmodels.models.bayes_gammagamma import BayesianGammaGamma
from clvmodels.models.sbg import BayesianShiftedBetaGeo, ShiftedBetaGeo, simulate_sbg
from clvmodels.simulate import simulate_bgnbd, simulate_gammagamma_spend

DRAWS = {"draws": 200, "tune": 200, "chains": 2}
GAMMA_WEB = 0.8  # true purchase coefficient of channel[web]: web buyers buy e^0.8 times as often


def _bgnbd_data(n: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    channel = rng.choice(["store", "web"], n)
    alpha = 5.0 * np.exp(-GAMMA_WEB * (channel == "web"))  # links eq. (1), sign -1
    rfm = simulate_bgnbd(n, 0.9, alpha, 0.7, 2.5, T=np.round(rng.uniform(20, 52, n)),
                         random_seed=seed + 1)
    rfm["channel"] = channel
    rfm["region"] = rng.choice(["north", "south"], n)
    return rfm


@pytest.fixture(scope="module")
def bg() -> tuple[BayesianBetaGeo, pd.DataFrame]:
    rfm = _bgnbd_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BayesianBetaGeo(purchase_covariates=["channel"]).fit(rfm, random_seed=3,
                                                                    **DRAWS)
    return model, rfm


def test_bgnbd_coefficient_recovered_and_near_mle(bg):
    model, rfm = bg
    ci = model.conf_int(0.10).loc["purchase:channel[web]"]
    assert ci["lower"] < GAMMA_WEB < ci["upper"]
    mle = clvmodels.BetaGeo(purchase_covariates=["channel"]).fit(rfm)
    post = model.coefficient_draws()["purchase:channel[web]"]
    assert abs(post.mean() - mle.params_["purchase:channel[web]"]) < 0.5 * post.std()
    assert model.params_.index.tolist() == ["r", "alpha", "a", "b", "purchase:channel[web]"]
    s = model.summary()
    assert "purchase:channel[web]" in s.index
    assert s.loc["purchase:channel[web]", "r_hat"] < 1.05
    assert s.loc["purchase:channel[web]", "ess_bulk"] > 50
    assert model.priors_["purchase:channel[web]"] == {"dist": "Normal", "mu": 0.0,
                                                      "sigma": 1.0}
    # the categorical covariate costs little: unique rows (x, t_x, T, channel)
    assert model.n_unique_rows_ < len(rfm)


def test_bgnbd_predictions_use_each_customers_covariates(bg):
    model, rfm = bg
    web = rfm.assign(channel="web").head(20)
    store = rfm.assign(channel="store").head(20)
    ew, es = model.expected_purchases(web, 10), model.expected_purchases(store, 10)
    # same history, different channel: different forecasts (web buys more while alive)
    assert not np.allclose(ew, es)
    # the per-customer parameter draws are base × exp(-gamma z) (links eq. (1))
    params, groups = model.parameter_draws(rfm.head(50))
    coef = model.coefficient_draws()["purchase:channel[web]"].to_numpy()
    alpha = model.idata_.posterior["alpha"].to_numpy().reshape(-1)
    web_col = groups[(rfm.head(50)["channel"] == "web").to_numpy()][0]
    np.testing.assert_allclose(params["alpha"][:, web_col], alpha * np.exp(-coef))
    with pytest.raises(ValueError, match="covariates"):
        model.parameter_draws()
    with pytest.raises(ValueError, match="covariates"):
        model.expected_purchases_new_customer(10)
    profiles = pd.DataFrame({"channel": ["store", "web"]}, index=["store", "web"])
    new = model.expected_purchases_new_customer(np.array([5.0, 10.0]), covariates=profiles)
    assert new.shape == (2, 2) and np.all(new[1] > new[0])  # web buys more
    table = model.expected_purchases_new_customer(10.0, interval=0.9, covariates=profiles)
    np.testing.assert_allclose(table.iloc[:, 0], new[:, 1])
    out = model.expected_purchases(rfm.head(30), 10, interval=0.9)
    assert np.all(out["expected_purchases_lower"] <= out["expected_purchases"])
    assert np.all(np.isfinite(model.probability_alive(rfm)))


def test_bgnbd_save_load_round_trip_and_refusals(bg, tmp_path):
    model, rfm = bg
    path = model.save(tmp_path / "bg.nc")
    loaded = clvmodels.load_model(path)
    assert loaded.covariate_layout_.to_dict() == model.covariate_layout_.to_dict()
    np.testing.assert_allclose(loaded.expected_purchases(rfm, 12),
                               model.expected_purchases(rfm, 12))
    pd.testing.assert_series_equal(loaded.params_, model.params_)
    assert loaded.priors_ == model.priors_
    unseen = rfm.head(4).assign(channel=["web", "phone", "store", "phone"])
    with pytest.raises(ValidationError, match=r"'channel'.*phone"):
        loaded.probability_alive(unseen)
    with pytest.raises(ValidationError, match="channel"):
        loaded.probability_alive(rfm.drop(columns="channel"))
    loaded.unseen_levels = "reference"  # the fallback: unseen levels as the reference level
    np.testing.assert_allclose(loaded.probability_alive(unseen),
                               model.probability_alive(unseen.assign(
                                   channel=["web", "store", "store", "store"])))


def test_hierarchical_with_covariates_and_group_prior():
    rfm = _bgnbd_data(300, seed=5)
    prior = {"dist": "Normal", "mu": 0.0, "sigma": 2.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BayesianBetaGeo(segment_col="region", purchase_covariates=["channel"],
                                dropout_covariates=["channel"], priors={"purchase": prior},
                                parametrization="non_centered").fit(
            rfm, random_seed=1, draws=150, tune=150, chains=2)
    assert model.priors_["purchase:channel[web]"] == prior
    assert model.priors_["dropout:channel[web]"]["sigma"] == 1.0
    post = model.idata_.posterior
    assert post["coef_purchase"].dims[-1] == "purchase_covariate"
    assert list(post["purchase_covariate"].to_numpy()) == ["channel[web]"]
    assert list(model.segment_params_.index) == ["north", "south"]
    ep = model.expected_purchases(rfm, 10, interval=0.9)
    assert np.all(np.isfinite(ep.to_numpy()))
    assert {"purchase:channel[web]", "dropout:channel[web]", "mu_log_r"} <= set(
        model.summary().index)
    # unseen segment at population level, still with the customer's covariates
    new = rfm.head(3).assign(region="east")
    assert np.all(np.isfinite(model.probability_alive(new, unseen_segments="population")))


def test_gammagamma_spend_covariate():
    rng = np.random.default_rng(7)
    n = 400
    plan = rng.choice(["basic", "premium"], n)
    freq = pd.Series(rng.integers(1, 8, n))
    gamma = 0.6
    spend = np.empty(n)
    for level, factor in (("basic", 1.0), ("premium", np.exp(gamma))):
        sel = plan == level
        spend[sel] = simulate_gammagamma_spend(freq[sel], 6.0, 4.0, 15.0 * factor,
                                               random_seed=int(factor * 100))
    rfm = pd.DataFrame({"frequency": freq, "monetary_value": spend, "plan": plan})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BayesianGammaGamma(spend_covariates=["plan"]).fit(rfm, random_seed=2,
                                                                  **DRAWS)
    ci = model.conf_int(0.10).loc["spend:plan[premium]"]
    assert ci["lower"] < gamma < ci["upper"]
    es = model.expected_spend(rfm)
    premium = (plan == "premium")
    assert es[premium].mean() > es[~premium].mean()
    draws = model.spend_draws_by_customer(rfm).take(np.arange(5))
    assert draws.shape == (model.n_draws, 5) and np.all(draws > 0)
    with pytest.raises(ValueError, match="covariates"):
        model.population_mean_spend()


def test_sbg_dropout_covariate_and_round_trip(tmp_path):
    gamma = 0.9  # plan[monthly] multiplies alpha, hence the churn odds, by e^0.9
    parts = []
    for i, (plan, factor) in enumerate((("annual", 1.0), ("monthly", np.exp(gamma)))):
        part = simulate_sbg(600, alpha=0.8 * factor, beta=2.5, n_periods=8,
                            random_seed=10 + i)
        parts.append(part.assign(plan=plan))
    data = pd.concat(parts, ignore_index=True)
    data.attrs["time_unit"] = "M"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BayesianShiftedBetaGeo(dropout_covariates=["plan"]).fit(data, random_seed=4,
                                                                        **DRAWS)
    ci = model.conf_int(0.10).loc["dropout:plan[monthly]"]
    assert ci["lower"] < gamma < ci["upper"]
    mle = ShiftedBetaGeo(dropout_covariates=["plan"]).fit(data)
    post = model.coefficient_draws()["dropout:plan[monthly]"]
    assert abs(post.mean() - mle.params_["dropout:plan[monthly]"]) < 0.5 * post.std()
    derl = model.discounted_expected_residual_lifetime(data, 0.1)
    active = ~data["churned"].astype(bool)
    monthly = (data["plan"] == "monthly").to_numpy()
    assert derl[active & monthly].mean() < derl[active & ~monthly].mean()
    with pytest.raises(ValueError, match="covariates"):
        model.survival(3)
    loaded = clvmodels.load_model(model.save(tmp_path / "sbg.nc"))
    np.testing.assert_allclose(loaded.discounted_expected_residual_lifetime(data, 0.1), derl)


def test_constant_covariate_refused():
    rfm = _bgnbd_data(100).assign(channel="web")
    with pytest.raises(clvmodels.IdentificationError, match="channel"):
        BayesianBetaGeo(purchase_covariates=["channel"]).fit(rfm, **DRAWS)


def test_group_prior_for_missing_group_refused():
    rfm = _bgnbd_data(100)
    with pytest.raises(ValueError, match="dropout"):
        BayesianBetaGeo(purchase_covariates=["channel"],
                        priors={"dropout": {"dist": "Normal", "mu": 0, "sigma": 1}}
                        ).fit(rfm, **DRAWS)
