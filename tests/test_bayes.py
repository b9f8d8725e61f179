"""Bayesian BG/NBD and Gamma-Gamma: CDNOW against the MLE, the factored likelihood against
the module's formula, LOO against ArviZ on expanded data, predictions, CLV, persistence.

Fits are small (2 chains × 300 draws) and shared per module, so the file runs in a couple of
minutes on two cores.
"""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from clvmodels.models import bgnbd, gammagamma
from clvmodels.models._math import NP, tensor_namespace
from clvmodels.models.bayes import (
    RowSpace,
    SamplingWarning,
    factored_namespace,
    unique_rows,
    validate_priors,
)
from clvmodels.models.bayes_bgnbd import BayesianBetaGeo
from clvmodels.models.bayes_gammagamma import BayesianGammaGamma
from clvmodels.models.bgnbd import BetaGeo
from clvmodels.models.gammagamma import GammaGamma
from clvmodels.models.persistence import load_model
from clvmodels.valuation import customer_lifetime_value

DRAWS = dict(draws=300, tune=300, chains=2)


@pytest.fixture(scope="module")
def fitted(_cdnow_rfm: pd.DataFrame) -> SimpleNamespace:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        bg = BayesianBetaGeo().fit(_cdnow_rfm, random_seed=1, **DRAWS)
        # the PyMC sampler (the fallback) on the spend model, one process
        gg = BayesianGammaGamma().fit(_cdnow_rfm, random_seed=2, sampler="pymc", cores=1,
                                      **DRAWS)
    return SimpleNamespace(bg=bg, gg=gg, mle_bg=BetaGeo().fit(_cdnow_rfm),
                           mle_gg=GammaGamma().fit(_cdnow_rfm))


# --------------------------------------------------------------------------------------
# the likelihood is the module's, evaluated on distinct values
# --------------------------------------------------------------------------------------


def _random_rows(n: int = 400, seed: int = 0, segments: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 8, n).astype(float)
    T = rng.integers(1, 60, n).astype(float)
    tx = np.where(x > 0, np.floor(rng.random(n) * T), 0.0)
    seg = rng.integers(0, segments, n).astype(float)
    (s, x, T, tx), _, _ = unique_rows([seg, x, T, tx])
    return {"x": x, "tx": tx, "T": T, "segment": s}


def test_factored_numpy_equals_plain_formula() -> None:
    d = _random_rows()
    space = RowSpace({k: d[k] for k in ("x", "tx", "T")})
    fm = factored_namespace(NP)
    draws = {"r": np.array([[0.24], [0.5]]), "alpha": np.array([[4.4], [2.0]]),
             "a": np.array([[0.79], [1.3]]), "b": np.array([[2.4], [0.6]])}
    fac = bgnbd.log_likelihood(*draws.values(), space.variable("x"), space.variable("tx"),
                               space.variable("T"), m=fm).rows()
    plain = bgnbd.log_likelihood(*draws.values(), d["x"], d["tx"], d["T"])
    np.testing.assert_allclose(fac, plain, rtol=1e-13)
    # fewer distinct values than rows is where the saving comes from
    assert len(space.uniques["x"]) < space.n_rows


def test_factored_pytensor_equals_plain_formula_hierarchical() -> None:
    import pytensor
    import pytensor.tensor as pt

    d = _random_rows(segments=3, seed=1)
    space = RowSpace(d)
    space.index_constant = pt.as_tensor_variable
    theta = pt.dmatrix("theta")  # (4 params, 3 segments)
    fm = factored_namespace(tensor_namespace())
    p = [space.segment_values(pt.exp(theta[i])) for i in range(4)]
    ll = bgnbd.log_likelihood(*p, *(space.variable(k, pt.as_tensor_variable)
                                     for k in ("x", "tx", "T")), m=fm).rows()
    f = pytensor.function([theta], ll)
    vals = np.log(np.array([[0.2, 0.3, 0.5], [4.0, 6.0, 2.0], [0.8, 1.2, 0.5],
                            [2.4, 3.0, 1.1]]))
    seg = d["segment"].astype(int)
    nat = np.exp(vals)
    expect = bgnbd.log_likelihood(*(nat[i][seg] for i in range(4)), d["x"], d["tx"], d["T"])
    np.testing.assert_allclose(f(vals), expect, rtol=1e-12)


def test_pointwise_log_likelihood_is_weight_times_module_ll(fitted) -> None:
    bg = fitted.bg
    ll = bg.idata_.log_likelihood["likelihood"]
    assert ll.dims == ("chain", "draw", "row")
    const = bg.idata_.constant_data
    x = bg.idata_.observed_data["likelihood"].to_numpy()
    post = bg.idata_.posterior
    p = {k: post[k].to_numpy()[..., None] for k in ("r", "alpha", "a", "b")}
    expect = const["weight"].to_numpy() * bgnbd.log_likelihood(
        p["r"], p["alpha"], p["a"], p["b"], x, const["tx"].to_numpy(), const["T"].to_numpy())
    np.testing.assert_allclose(ll.to_numpy(), expect, rtol=1e-9)
    assert int(const["weight"].sum()) == 2357
    assert ll.sizes["row"] < 2357  # compressed, not one term per customer


def test_loo_per_customer_matches_arviz_on_expanded_data(fitted, cdnow_rfm) -> None:
    """arviz.loo on the full customers × draws log-likelihood equals the weighted per-row
    computation: identical customers have identical pointwise values and PSIS results."""
    for model, frame in ((fitted.bg, cdnow_rfm),
                         (fitted.gg, cdnow_rfm[cdnow_rfm["frequency"] > 0])):
        res = model.loo(pointwise=True)
        w = model.idata_.constant_data["weight"].to_numpy()
        per_row = model.idata_.log_likelihood["likelihood"] / xr.DataArray(w, dims="row")
        inverse = model._fit_rows.inverse
        inverse = inverse[inverse >= 0]
        expanded = per_row.isel(row=xr.DataArray(inverse, dims="customer"))
        ref = az.loo(az.InferenceData(posterior=model.idata_.posterior,
                                      log_likelihood=xr.Dataset({"y": expanded})),
                     pointwise=True)
        assert res["n_data_points"] == len(frame) == ref["n_data_points"]
        for key in ("elpd_loo", "se", "p_loo"):
            assert res[key] == pytest.approx(ref[key], rel=1e-9), key
        np.testing.assert_allclose(res["loo_i"].to_numpy(), ref["loo_i"].to_numpy(),
                                   rtol=1e-10)
        np.testing.assert_allclose(res["pareto_k"].to_numpy(), ref["pareto_k"].to_numpy())


# --------------------------------------------------------------------------------------
# CDNOW: posterior against the MLE
# --------------------------------------------------------------------------------------


def test_cdnow_posterior_within_two_sd_of_mle(fitted) -> None:
    for model, mle in ((fitted.bg, fitted.mle_bg), (fitted.gg, fitted.mle_gg)):
        s = model.summary()
        for name in model.param_names:
            z = abs(s.loc[name, "mean"] - mle.params_[name]) / s.loc[name, "sd"]
            assert z < 2, (name, s.loc[name, "mean"], mle.params_[name])
        assert {"mean", "sd", "ess_bulk", "ess_tail", "r_hat"} <= set(s.columns)
        assert any(c.startswith("hdi_") for c in s.columns)
        assert s.attrs["divergences"] == 0
        assert model.params_.index.tolist() == list(model.param_names)
    # the posterior sd is close to the MLE's standard error (large-sample agreement)
    sd = fitted.bg.summary()["sd"]
    np.testing.assert_allclose(sd, fitted.mle_bg.standard_errors_, rtol=0.3)


def test_cdnow_predictions_agree_with_mle(fitted, cdnow_rfm) -> None:
    bg, mle = fitted.bg, fitted.mle_bg
    ep = bg.expected_purchases(cdnow_rfm, 39)
    ep_mle = mle.expected_purchases(cdnow_rfm, 39)
    assert ep.sum() == pytest.approx(ep_mle.sum(), rel=0.03)
    rel = (ep / ep_mle - 1).abs()
    assert rel.median() < 0.05 and rel.quantile(0.9) < 0.1
    pa = bg.probability_alive(cdnow_rfm)
    np.testing.assert_allclose(pa, mle.probability_alive(cdnow_rfm), atol=0.05)
    new = bg.expected_purchases_new_customer(np.array([39.0, 52.0, 78.0]))
    np.testing.assert_allclose(new, [1.1967, 1.4461, 1.8605], rtol=0.03)
    spend = fitted.gg.expected_spend(cdnow_rfm)
    np.testing.assert_allclose(spend, fitted.mle_gg.expected_spend(cdnow_rfm), rtol=0.03)
    assert fitted.gg.population_mean_spend() == pytest.approx(35.17, rel=0.03)


def test_intervals_and_draws(fitted, cdnow_rfm) -> None:
    bg = fitted.bg
    frame = cdnow_rfm.iloc[:50]
    before = frame.copy(deep=True)
    out = bg.expected_purchases(frame, 39, interval=0.9)
    assert list(out.columns) == ["expected_purchases", "expected_purchases_lower",
                                 "expected_purchases_upper"]
    assert out.index.equals(frame.index)
    assert (out.iloc[:, 1] <= out.iloc[:, 0]).all() and (out.iloc[:, 0] <= out.iloc[:, 2]).all()
    d = bg.expected_purchases_draws(frame, 39)
    assert d.dims == ("chain", "draw", "customer_id")
    assert d.shape == (2, 300, 50)
    np.testing.assert_allclose(d.mean(("chain", "draw")), out.iloc[:, 0], rtol=1e-12)
    np.testing.assert_allclose(d.quantile(0.05, ("chain", "draw")), out.iloc[:, 1],
                               rtol=1e-12)
    # the factored (x, T) evaluation equals the module's function evaluated directly
    p = bg._row_params(None)
    direct = bgnbd.expected_purchases(p["r"], p["alpha"], p["a"], p["b"],
                                      frame["frequency"].to_numpy(), frame["recency"].to_numpy(),
                                      frame["T"].to_numpy(), 39.0)
    np.testing.assert_allclose(d.to_numpy().reshape(600, 50), direct, rtol=1e-12)
    # per-customer horizons
    t = np.linspace(1, 50, 50)
    direct_t = bgnbd.expected_purchases(p["r"], p["alpha"], p["a"], p["b"],
                                        frame["frequency"].to_numpy(),
                                        frame["recency"].to_numpy(), frame["T"].to_numpy(), t)
    np.testing.assert_allclose(bg.expected_purchases(frame, t), direct_t.mean(0), rtol=1e-12)
    pa = bg.probability_alive_draws(frame)
    assert pa.dims == ("chain", "draw", "customer_id") and float(pa.max()) <= 1
    new = bg.expected_purchases_new_customer([39, 52], interval=0.9)
    assert list(new.index) == [39.0, 52.0] and (new.iloc[:, 1] < new.iloc[:, 2]).all()
    assert bg.expected_purchases_new_customer_draws(39).dims == ("chain", "draw")
    sd = fitted.gg.expected_spend_draws(frame)
    assert sd.dims == ("chain", "draw", "customer_id")
    pd.testing.assert_frame_equal(frame, before)
    with pytest.raises(ValueError, match="interval"):
        bg.probability_alive(frame, interval=1.5)


def test_no_per_customer_arrays_in_posterior(fitted) -> None:
    for model in (fitted.bg, fitted.gg):
        for var in model.idata_.posterior.data_vars.values():
            assert set(var.dims) <= {"chain", "draw"}


# --------------------------------------------------------------------------------------
# CLV with intervals
# --------------------------------------------------------------------------------------


def test_clv_with_intervals(fitted, cdnow_rfm) -> None:
    bg, gg = fitted.bg, fitted.gg
    out = customer_lifetime_value(bg, gg, cdnow_rfm, horizon=52, discount_rate=0.1,
                                  margin=0.3)
    assert list(out.columns) == ["expected_purchases", "probability_alive", "expected_spend",
                                 "clv", "clv_lower", "clv_upper"]
    assert (out["clv_lower"] <= out["clv"]).all() and (out["clv"] <= out["clv_upper"]).all()
    a = out.attrs
    assert a["total_clv_lower"] < a["total_clv"] < a["total_clv_upper"]
    assert a["total_clv"] == pytest.approx(out["clv"].sum(), rel=1e-10)
    mle = customer_lifetime_value(fitted.mle_bg, fitted.mle_gg, cdnow_rfm, horizon=52,
                                  discount_rate=0.1, margin=0.3)
    assert a["total_clv"] == pytest.approx(mle["clv"].sum(), rel=0.03)
    # no discounting: CLV draw = margin × spend draw × E[Y(52)] draw, exactly
    frame = cdnow_rfm.iloc[:40]
    zero = customer_lifetime_value(bg, gg, frame, horizon=52, discount_rate=0.0, margin=0.3)
    ep = bg.expected_purchases_draws(frame, 52)
    sp = gg.expected_spend_draws(frame)
    expect = (0.3 * ep * sp).mean(("chain", "draw"))
    np.testing.assert_allclose(zero["clv"], expect, rtol=1e-10)
    # the same discount weights as the MLE path: a constant spend and a one-draw posterior
    const = customer_lifetime_value(bg, 10.0, frame, horizon=26, discount_rate=0.2)
    assert (const["expected_spend"] == 10.0).all()
    with pytest.raises(ValueError, match="finite horizon"):
        customer_lifetime_value(bg, gg, frame, horizon=np.inf, discount_rate=0.1,
                                discounting="continuous")


# --------------------------------------------------------------------------------------
# priors, diagnostics, persistence
# --------------------------------------------------------------------------------------


def test_priors_defaults_overrides_and_validation(fitted, cdnow_rfm) -> None:
    bg = fitted.bg
    assert set(bg.priors_) == {"r", "alpha", "a", "b"}
    json.dumps(bg.priors_)
    month_w = 365.25 / 12 / 7
    assert bg.priors_["alpha"]["mu"] == pytest.approx(np.log(month_w))
    days = cdnow_rfm.copy()
    days[["recency", "T"]] *= 7
    days.attrs["time_unit"] = "D"
    assert BayesianBetaGeo().default_priors(days)["alpha"]["mu"] == pytest.approx(
        np.log(365.25 / 12))
    merged = validate_priors({"r": {"dist": "Gamma", "alpha": 2, "beta": 4}}, bg.priors_)
    assert merged["r"] == {"dist": "Gamma", "alpha": 2.0, "beta": 4.0}
    assert merged["a"] == bg.priors_["a"]
    with pytest.raises(ValueError, match="unknown prior"):
        validate_priors({"rr": {"dist": "Gamma"}}, bg.priors_)
    with pytest.raises(ValueError, match="not a PyMC distribution"):
        validate_priors({"r": {"dist": "Banana"}}, bg.priors_)
    with pytest.raises(ValueError, match="finite number"):
        validate_priors({"r": {"dist": "Gamma", "alpha": "x"}}, bg.priors_)
    assert fitted.gg.priors_["v"]["mu"] == pytest.approx(np.log(35.08), abs=0.01)


def test_diagnostic_warnings(fitted) -> None:
    bg = fitted.bg
    stats = bg.idata_.sample_stats
    saved = stats["diverging"].copy()
    try:
        stats["diverging"][:] = True
        with pytest.warns(SamplingWarning, match="divergent"):
            bg._diagnose()
    finally:
        stats["diverging"][:] = saved
        bg._diagnose(warn=False)
    assert bg.diagnostics_["divergences"] == 0
    text = bg.summary_text()
    assert "divergences 0" in text and "BayesianBetaGeo" in text


def test_save_load_roundtrip(fitted, cdnow_rfm, tmp_path) -> None:
    bg, gg = fitted.bg, fitted.gg
    path = bg.save(tmp_path / "bg.nc")
    back = load_model(path)
    assert isinstance(back, BayesianBetaGeo)
    pd.testing.assert_series_equal(back.params_, bg.params_)
    assert back.priors_ == bg.priors_ and back.time_unit_ == "W"
    assert "constant_data" not in back.idata_.groups()  # data not stored unless asked
    pd.testing.assert_series_equal(back.expected_purchases(cdnow_rfm, 10),
                                   bg.expected_purchases(cdnow_rfm, 10))
    with pytest.raises(ValueError, match="include_data"):
        back.loo()
    gpath = gg.save(tmp_path / "gg.nc", include_data=True)
    gback = load_model(gpath)
    assert gback.loo()["elpd_loo"] == pytest.approx(gg.loo()["elpd_loo"])
    with open(gpath, "rb") as fh:
        assert fh.read(4) == b"\x89HDF"  # netCDF4/HDF5, not a pickle
    in_days = cdnow_rfm.copy()
    in_days.attrs["time_unit"] = "D"
    with pytest.raises(ValueError, match="fitted in"):
        bg.expected_purchases(in_days, 10)


def test_validation_errors(cdnow_rfm) -> None:
    from clvmodels import ValidationError
    from clvmodels.models.base import NotFittedError

    with pytest.raises(NotFittedError):
        BayesianBetaGeo().expected_purchases(cdnow_rfm, 10)
    with pytest.raises(ValueError, match="sampler"):
        BayesianBetaGeo().fit(cdnow_rfm, sampler="stan")
    with pytest.raises(ValueError, match="target_accept"):
        BayesianBetaGeo().fit(cdnow_rfm, target_accept=1.5)
    with pytest.raises(ValidationError, match="repeat buyers"):
        BayesianGammaGamma().fit(cdnow_rfm[cdnow_rfm["frequency"] == 0])
    with pytest.raises(ValidationError):
        BayesianBetaGeo().fit(cdnow_rfm.assign(frequency=-1.0))


def test_gammagamma_likelihood_is_module_formula(fitted) -> None:
    gg = fitted.gg
    const = gg.idata_.constant_data
    m = gg.idata_.observed_data["likelihood"].to_numpy()
    post = gg.idata_.posterior
    p = {k: post[k].to_numpy()[..., None] for k in ("p", "q", "v")}
    expect = const["weight"].to_numpy() * gammagamma.log_likelihood(
        p["p"], p["q"], p["v"], const["x"].to_numpy(), m)
    np.testing.assert_allclose(gg.idata_.log_likelihood["likelihood"], expect, rtol=1e-9)


def test_modified_bgnbd_is_the_mbg_formula_and_agrees_with_mle(cdnow_rfm, tmp_path) -> None:
    """BayesianModifiedBetaGeo: Batislam et al.'s likelihood (eq. 6) and predictions, not
    the BG/NBD's — checked at the posterior draws, against the MLE ModifiedBetaGeo, and
    through a save/load round trip."""
    from clvmodels import BayesianModifiedBetaGeo, ModifiedBetaGeo
    from clvmodels.models import mbgnbd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        mbg = BayesianModifiedBetaGeo().fit(cdnow_rfm, random_seed=3, **DRAWS)
    mle = ModifiedBetaGeo().fit(cdnow_rfm)
    const = mbg.idata_.constant_data
    post = mbg.idata_.posterior
    p = {k: post[k].to_numpy()[..., None] for k in ("r", "alpha", "a", "b")}
    x = mbg.idata_.observed_data["likelihood"].to_numpy()
    args = (x, const["tx"].to_numpy(), const["T"].to_numpy())
    expect = const["weight"].to_numpy() * mbgnbd.log_likelihood(*p.values(), *args)
    np.testing.assert_allclose(mbg.idata_.log_likelihood["likelihood"], expect, rtol=1e-9)
    # and it is not the BG/NBD's likelihood (which differs for every x = 0 row)
    bg_ll = const["weight"].to_numpy() * bgnbd.log_likelihood(*p.values(), *args)
    assert np.abs(bg_ll - expect).max() > 1e-3
    s = mbg.summary()
    for name in mbg.param_names:
        z = abs(s.loc[name, "mean"] - mle.params_[name]) / s.loc[name, "sd"]
        assert z < 2, (name, s.loc[name, "mean"], mle.params_[name])
    ep, ep_mle = mbg.expected_purchases(cdnow_rfm, 39), mle.expected_purchases(cdnow_rfm, 39)
    assert ep.sum() == pytest.approx(ep_mle.sum(), rel=0.03)
    np.testing.assert_allclose(mbg.probability_alive(cdnow_rfm),
                               mle.probability_alive(cdnow_rfm), atol=0.05)
    back = load_model(mbg.save(tmp_path / "mbg.nc"))
    assert type(back) is BayesianModifiedBetaGeo
    pd.testing.assert_series_equal(back.probability_alive(cdnow_rfm),
                                   mbg.probability_alive(cdnow_rfm))
