"""Bayesian Pareto/NBD (issue 11: every family by maximum likelihood and Bayesian).

The PyMC likelihood is one PyTensor Op around the maximum-likelihood fit's numpy
log-likelihood and exact gradient: checked against the module's formula (values and
gradients, alpha < beta and alpha > beta, x = 0 rows, per-row parameters) and through the
whole PyMC model (weights, covariate patterns, segments). Then small fits (2 chains × ≤ 200
draws): CDNOW against the published MLE, a categorical covariate recovered from simulated
data, hierarchical + covariates, predictions finite on extreme rows, the netCDF round trip,
the registry.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels.models import paretonbd, registry
from clvmodels.models.bayes_paretonbd import BayesianParetoNBD, _op_rows, loglik_and_grad_rows
from clvmodels.models.persistence import load_model
from clvmodels.models.priors import validate_priors
from clvmodels.valuation import customer_lifetime_value

DRAWS = {"draws": 200, "tune": 200, "chains": 2}
#: published CDNOW MLE in weeks (Fader, Hardie & Lee 2005; REFERENCE.md)
PUBLISHED = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
GAMMA_P, GAMMA_D = 0.7, -0.6  # true coefficients of channel[web] (purchase, drop-out)


def _rows(n: int = 300, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 12, n).astype(float)
    x[: n // 4] = 0.0
    T = rng.uniform(1.0, 80.0, n)
    tx = np.where(x > 0, rng.uniform(0.0, 1.0, n) * T, 0.0)
    tx[n // 4: n // 4 + 5] = T[n // 4: n // 4 + 5]  # t_x = T
    return {"x": x, "tx": tx, "T": T}


# --------------------------------------------------------------------------------------
# the likelihood is the MLE's
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [(0.55, 10.6, 0.6, 11.7),   # alpha < beta (CDNOW)
                                    (1.3, 40.0, 0.4, 3.0),     # alpha > beta
                                    (0.8, 2.0, 2.5, 300.0)])   # z > 0.9 at t = 0
def test_rows_equal_module_log_likelihood_and_gradient(params):
    d = _rows()
    ll, grad = loglik_and_grad_rows(*params, d["x"], d["tx"], d["T"])
    ref = paretonbd.log_likelihood(*params, d["x"], d["tx"], d["T"])
    ref_grad = paretonbd.log_likelihood_grad(*params, d["x"], d["tx"], d["T"])
    np.testing.assert_allclose(ll, ref, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-8, atol=1e-10)
    # per-row parameters (the covariate / segment path): alpha_i < beta_i and > mixed
    n = len(d["x"])
    rng = np.random.default_rng(1)
    per_row = [np.full(n, v) * np.exp(rng.normal(0, 0.8, n)) for v in params]
    ll2, grad2 = loglik_and_grad_rows(*per_row, d["x"], d["tx"], d["T"])
    np.testing.assert_allclose(ll2, paretonbd.log_likelihood(*per_row, d["x"], d["tx"],
                                                             d["T"]), rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(grad2, paretonbd.log_likelihood_grad(
        *per_row, d["x"], d["tx"], d["T"]), rtol=1e-8, atol=1e-10)
    # central differences agree with the analytic gradient the sampler uses
    h = 1e-6
    for k in range(4):
        up, dn = list(params), list(params)
        up[k] *= 1 + h
        dn[k] *= 1 - h
        fd = (paretonbd.log_likelihood(*up, d["x"], d["tx"], d["T"])
              - paretonbd.log_likelihood(*dn, d["x"], d["tx"], d["T"])) / (2 * h * params[k])
        np.testing.assert_allclose(grad[k], fd, rtol=1e-5, atol=1e-6)


def _model_logp(model, rows, point: dict[str, float]) -> float:
    pm_model = model._build_model(rows)
    f = pm_model.compile_logp(vars=[pm_model["likelihood"]], sum=True)
    ip = pm_model.initial_point()
    values = {}
    for v in pm_model.value_vars:
        name = v.name.replace("_log__", "")
        values[v.name] = (np.log(point[name]) if v.name.endswith("_log__")
                          else np.asarray(point[name], dtype=float).reshape(ip[v.name].shape))
    return float(f(values))


def test_pymc_logp_equals_weighted_numpy_log_likelihood():
    rfm = registry.simulate("pnbd", 400, params={"r": 0.7, "alpha": 6.0, "s": 0.8,
                                                   "beta": 20.0}, T=40.0, random_seed=4)
    rfm["channel"] = np.random.default_rng(5).choice(["store", "web"], len(rfm))
    p = {"r": 0.7, "alpha": 6.0, "s": 0.8, "beta": 3.0}  # alpha > beta
    model = BayesianParetoNBD(purchase_covariates=["channel"],
                              dropout_covariates=["channel"])
    rows = model._rows(rfm, fitting=True)
    model.priors_ = validate_priors(None, model.default_priors(rfm))
    point = {**p, "coef_purchase": [0.4], "coef_dropout": [-0.9]}
    got = _model_logp(model, rows, point)
    web = (rfm["channel"] == "web").to_numpy()
    alpha_i = p["alpha"] * np.exp(-0.4 * web)
    beta_i = p["beta"] * np.exp(0.9 * web)
    ref = paretonbd.log_likelihood(p["r"], alpha_i, p["s"], beta_i, rfm["frequency"],
                                   rfm["recency"], rfm["T"]).sum()
    assert got == pytest.approx(ref, rel=1e-11)


def test_pymc_gradient_matches_finite_differences_hierarchical_covariates():
    """The Op's gradient reaches the sampler's variables through the per-row gathers
    (segments, covariate patterns) and the latents' transforms: dlogp against central
    differences of logp at a random point of the whole model."""
    rfm = registry.simulate("pnbd", 300, params={"r": 0.7, "alpha": 6.0, "s": 0.8,
                                                  "beta": 20.0}, T=40.0, random_seed=6)
    rng = np.random.default_rng(7)
    rfm["channel"] = rng.choice(["store", "web"], len(rfm))
    rfm["region"] = rng.choice(["north", "south", "east"], len(rfm))
    model = BayesianParetoNBD(segment_col="region", parametrization="non_centered",
                              purchase_covariates=["channel"], dropout_covariates=["channel"])
    rows = model._rows(rfm, fitting=True)
    model.priors_ = validate_priors(None, model.default_priors(rfm))
    model.centering_ = model._choose_centering(rfm)
    pm_model = model._build_model(rows)
    ip = pm_model.initial_point()
    point = {k: np.array(np.asarray(v, dtype=float) + rng.normal(0, 0.3, np.shape(v)))
             for k, v in ip.items()}
    logp = pm_model.compile_logp()
    dlogp = pm_model.compile_dlogp()
    grad = dlogp(point)
    flat, h = [], 1e-6
    for v in pm_model.value_vars:
        for j in range(np.size(point[v.name])):
            up = {k: a.copy() for k, a in point.items()}
            dn = {k: a.copy() for k, a in point.items()}
            up[v.name].flat[j] += h
            dn[v.name].flat[j] -= h
            flat.append((logp(up) - logp(dn)) / (2 * h))
    np.testing.assert_allclose(grad, flat, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------
# CDNOW
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow(_cdnow_rfm: pd.DataFrame) -> BayesianParetoNBD:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BayesianParetoNBD().fit(_cdnow_rfm, random_seed=1, **DRAWS)


def test_cdnow_posterior_near_published_mle(cdnow):
    post = cdnow.params_
    # the purchase side is pinned down by the data: posterior means at the MLE
    assert post["r"] == pytest.approx(PUBLISHED["r"], rel=0.1)
    assert post["alpha"] == pytest.approx(PUBLISHED["alpha"], rel=0.1)
    # s and beta lie on a long ridge (the drop-out side is weakly identified on 39 weeks):
    # the MLE sits inside the central 90% intervals, and the posterior medians near it
    ci = cdnow.conf_int(0.10)
    draws = cdnow.parameter_draws()[0]
    for name in ("r", "alpha", "s", "beta"):
        assert ci.loc[name, "lower"] < PUBLISHED[name] < ci.loc[name, "upper"], name
    assert np.median(draws["s"]) == pytest.approx(PUBLISHED["s"], rel=0.35)
    assert np.median(draws["beta"]) == pytest.approx(PUBLISHED["beta"], rel=0.5)
    s = cdnow.summary()
    assert s.loc["r", "r_hat"] < 1.05 and s.loc["alpha", "r_hat"] < 1.05
    assert cdnow.diagnostics_["divergences"] <= 0.02 * 400


def test_cdnow_predictions_near_mle_and_finite_on_extreme_rows(cdnow, cdnow_rfm):
    mle = clvmodels.ParetoNBD().fit(cdnow_rfm)
    pa = cdnow.probability_alive(cdnow_rfm, interval=0.9)
    np.testing.assert_allclose(pa["probability_alive"], mle.probability_alive(cdnow_rfm),
                               atol=0.08)
    assert (pa["probability_alive_lower"] <= pa["probability_alive"]).all()
    ep = cdnow.expected_purchases(cdnow_rfm, 39.0)
    np.testing.assert_allclose(ep.sum(), mle.expected_purchases(cdnow_rfm, 39.0).sum(),
                               rtol=0.05)
    # the family's _purchases_rows (P(alive) once per draw and row) equals the generic one
    rows = cdnow._rows(cdnow_rfm.head(50), fitting=False)
    times = np.array([1.0, 13.0, 39.0])
    fast = cdnow._purchases_rows(rows, slice(0, rows.n_rows), times)
    generic = clvmodels.models.posterior.TransactionPredictions._purchases_rows(
        cdnow, rows, slice(0, rows.n_rows), times)
    np.testing.assert_allclose(fast, generic, rtol=1e-12)
    coef = np.array([0.5, 0.3, 0.2])
    both = cdnow._purchases_rows(rows, slice(0, rows.n_rows), times, coef)
    np.testing.assert_allclose(both[..., 0], generic @ coef, rtol=1e-12)
    # extreme customers: no purchase in a very long history, many purchases, t_x = T
    extreme = pd.DataFrame({"frequency": [0, 0, 250, 40], "recency": [0.0, 0.0, 51.9, 30.0],
                            "T": [5000.0, 0.5, 52.0, 30.0]},
                           index=pd.Index(["old", "new", "heavy", "tx=T"],
                                          name="customer_id"))
    extreme.attrs.update(cdnow_rfm.attrs)
    outs = [cdnow.probability_alive(extreme, interval=0.9),
            cdnow.expected_purchases(extreme, 52.0, interval=0.9),
            cdnow.conditional_purchase_count_probability(extreme, [0, 1, 5], 52.0)]
    for out in outs:
        assert np.isfinite(out.to_numpy()).all()
    assert outs[0].loc["old", "probability_alive"] < 0.05
    assert outs[1].loc["heavy", "expected_purchases"] > 50
    new = cdnow.expected_purchases_new_customer(np.array([1.0, 52.0]))
    assert np.isfinite(new).all() and new[1] > new[0] > 0


def test_cdnow_clv_save_load_and_registry(cdnow, cdnow_rfm, tmp_path):
    spend = cdnow_rfm.assign(monetary_value=cdnow_rfm["monetary_value"].clip(lower=1.0))
    gg = clvmodels.GammaGamma().fit(spend[spend["frequency"] > 0])
    clv = customer_lifetime_value(cdnow, gg, spend.head(200), horizon=52, discount_rate=0.1,
                                  margin=0.3)
    assert np.isfinite(clv.select_dtypes("number").to_numpy()).all()
    assert (clv["clv"] >= 0).all()
    path = tmp_path / "pnbd.nc"
    cdnow.save(path)
    loaded = load_model(path)
    assert isinstance(loaded, BayesianParetoNBD)
    assert isinstance(clvmodels.load_model(path), BayesianParetoNBD)
    np.testing.assert_allclose(loaded.probability_alive(cdnow_rfm),
                               cdnow.probability_alive(cdnow_rfm), rtol=1e-12)
    assert loaded.priors_ == cdnow.priors_
    assert registry.get_model("bayes-pnbd") is BayesianParetoNBD
    assert registry.label_of(cdnow) == "Bayesian Pareto/NBD"
    assert clvmodels.BayesianParetoNBD is BayesianParetoNBD
    assert "bayes-pnbd" in registry.model_names(bayesian=True)


# --------------------------------------------------------------------------------------
# covariates, hierarchical
# --------------------------------------------------------------------------------------


def _covariate_data(n: int = 800, seed: int = 0, weeks: tuple[float, float] = (30, 78)
                    ) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cov = pd.DataFrame({"channel": rng.choice(["store", "web"], n),
                        "region": rng.choice(["north", "south"], n)})
    rfm = registry.simulate("pnbd", n, params={"r": 0.9, "alpha": 8.0, "s": 0.9,
                                                "beta": 25.0,
                                                "purchase:channel[web]": GAMMA_P,
                                                "dropout:channel[web]": GAMMA_D},
                             covariates=cov, T=np.round(rng.uniform(*weeks, n)),
                             random_seed=seed + 1)
    rfm["region"] = cov["region"].to_numpy()
    return rfm


def test_categorical_covariate_recovered():
    rfm = _covariate_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BayesianParetoNBD(purchase_covariates=["channel"],
                                  dropout_covariates=["channel"]).fit(rfm, random_seed=2,
                                                                      **DRAWS)
    ci = model.conf_int(0.10)
    assert ci.loc["purchase:channel[web]", "lower"] < GAMMA_P < ci.loc[
        "purchase:channel[web]", "upper"]
    assert ci.loc["dropout:channel[web]", "lower"] < GAMMA_D < ci.loc[
        "dropout:channel[web]", "upper"]
    assert ci.loc["purchase:channel[web]", "lower"] > 0  # the effect is detected
    assert model.params_.index.tolist() == ["r", "alpha", "s", "beta",
                                            "purchase:channel[web]", "dropout:channel[web]"]
    mle = clvmodels.ParetoNBD(purchase_covariates=["channel"],
                              dropout_covariates=["channel"]).fit(rfm)
    post = model.coefficient_draws()["purchase:channel[web]"]
    assert abs(post.mean() - mle.params_["purchase:channel[web]"]) < 0.5 * post.std()
    # predictions use each customer's own channel
    two = rfm.iloc[:2].copy()
    two["frequency"], two["recency"], two["T"] = 2, 20.0, 40.0
    two["channel"] = ["store", "web"]
    ep = model.expected_purchases(two, 52.0)
    assert ep.iloc[1] > ep.iloc[0]
    with pytest.raises(ValueError, match="channel"):
        model.probability_alive(rfm.drop(columns="channel"))


def test_hierarchical_with_covariates_fits_and_predicts(tmp_path):
    # two years of history: the drop-out side is better identified, the sampler quicker
    rfm = _covariate_data(n=300, seed=7, weeks=(52, 104))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BayesianParetoNBD(segment_col="region", purchase_covariates=["channel"]
                                  ).fit(rfm, random_seed=3, draws=100, tune=100, chains=2)
    assert list(model.segment_params_.index) == ["north", "south"]
    assert {"mu_log_r", "mu_log_rate", "mu_log_s", "mu_log_death"} <= set(
        model.idata_.posterior.data_vars)
    pa = model.probability_alive(rfm, interval=0.9)
    assert np.isfinite(pa.to_numpy()).all() and len(pa) == len(rfm)
    ep = model.expected_purchases(rfm, 26.0)
    assert np.isfinite(ep).all() and (ep >= 0).all()
    path = tmp_path / "hier.nc"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_allclose(loaded.expected_purchases(rfm, 26.0), ep, rtol=1e-12)


def test_latents_round_trip():
    p = {"r": np.array([0.5, 2.0]), "alpha": np.array([10.0, 0.3]),
         "s": np.array([0.6, 4.0]), "beta": np.array([12.0, 900.0])}
    u = BayesianParetoNBD._latent_from_natural(p)
    back = BayesianParetoNBD._natural_from_latent(u, np)
    for k, v in p.items():
        np.testing.assert_allclose(back[k], v, rtol=1e-13)


def test_sampler_guard_never_returns_nan():
    """Far outside any posterior (warm-up's first steps can land there) a row the numerics
    cannot represent is rejected (-inf, zero gradient) rather than NaN or an exception."""
    d = _rows(60)
    for params in [(0.27, 4.05, 3.2e-16, 747.0), (1.3e-4, 9.9e4, 3.8e15, 1.0e-11),
                   (0.55, 10.6, 0.6, 11.7)]:
        ll, grad = _op_rows(*(np.full(60, v) for v in params), d["x"], d["tx"], d["T"])
        assert not np.isnan(ll).any() and not np.isnan(grad).any()
        rejected = ~np.isfinite(ll)
        assert (ll[rejected] == -np.inf).all() and (grad[:, rejected] == 0).all()
        assert np.isfinite(grad).all()
    assert np.isfinite(ll).all()  # the CDNOW point: every row finite
