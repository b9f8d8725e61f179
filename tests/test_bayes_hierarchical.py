"""Hierarchical Bayesian BG/NBD and Gamma-Gamma across segments: recovery of known segment
parameters (a fast, single-simulation version of the coverage study in
``bench/bench_bayes.py``), borrowing strength for a small segment, per-segment predictions,
unseen segments, CLV and persistence.
"""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from clvmodels.models import bgnbd
from clvmodels.models.bayes import SamplingWarning
from clvmodels.models.bayes_bgnbd import BayesianBetaGeo
from clvmodels.models.bayes_gammagamma import BayesianGammaGamma
from clvmodels.models.bgnbd import BetaGeo
from clvmodels.models.persistence import load_model
from clvmodels.simulate import simulate_bgnbd, uniform_observation_lengths
from clvmodels.valuation import customer_lifetime_value

SIZES = {"north": 300, "south": 1500, "east": 2500, "west": 3500, "online": 5000}
SPEND = {"north": (6.0, 3.5, 15.0), "south": (6.0, 4.0, 15.0), "east": (6.0, 3.5, 18.0),
         "west": (6.0, 3.8, 14.0), "online": (6.0, 3.6, 16.0)}


def truth(k: int, n: int = len(SIZES)) -> dict[str, float]:
    g = np.linspace(-1, 1, n)[k]
    return {"r": 0.24 * math.exp(0.4 * g), "alpha": 4.4 * math.exp(-0.3 * g),
            "a": 0.79 * math.exp(0.3 * g), "b": 2.43 * math.exp(-0.2 * g)}


def simulate(seed: int = 11) -> pd.DataFrame:
    frames, start = [], 0
    for k, (name, size) in enumerate(SIZES.items()):
        T = uniform_observation_lengths(size, 52.0, resolution=1 / 7, random_seed=seed + k)
        f = simulate_bgnbd(size, **truth(k), T=T, holdout=52.0, resolution=1 / 7,
                           spend=SPEND[name], random_seed=seed + 20 + k)
        f.index = f.index + start
        f.index.name = "customer_id"
        f["segment"] = name
        frames.append(f)
        start += size
    out = pd.concat(frames)
    out.attrs["time_unit"] = "W"
    return out


@pytest.fixture(scope="module")
def hier() -> SimpleNamespace:
    rfm = simulate()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        bg = BayesianBetaGeo(segment_col="segment").fit(rfm, draws=300, tune=400, chains=2,
                                                        random_seed=3)
        gg = BayesianGammaGamma(segment_col="segment").fit(rfm, draws=300, tune=300,
                                                           chains=2, random_seed=4)
    return SimpleNamespace(rfm=rfm, bg=bg, gg=gg)


def test_segment_params_frame(hier) -> None:
    sp = hier.bg.segment_params_
    assert sp.index.tolist() == sorted(SIZES)
    assert sp.index.name == "segment"
    for p in ("r", "alpha", "a", "b"):
        assert {p, f"{p}_lower", f"{p}_upper"} <= set(sp.columns)
        assert (sp[f"{p}_lower"] < sp[p]).all() and (sp[p] < sp[f"{p}_upper"]).all()
    assert sp["n_customers"].to_dict() == SIZES
    gsp = hier.gg.segment_params_
    assert {"p", "q", "v", "v_lower", "v_upper"} <= set(gsp.columns)
    # the posterior holds per-segment (not per-customer) arrays only
    for var in hier.bg.idata_.posterior.data_vars.values():
        assert set(var.dims) <= {"chain", "draw", "segment"}
    s = hier.bg.summary()
    assert "mu_log_r" in s.index and "sigma_logit_phi" in s.index and "r[north]" in s.index


def test_segment_parameters_recovered(hier) -> None:
    sp = hier.bg.segment_params_
    post = hier.bg.idata_.posterior
    inside, total = 0, 0
    for k, name in enumerate(SIZES):
        for p, v in truth(k).items():
            inside += sp.loc[name, f"{p}_lower"] <= v <= sp.loc[name, f"{p}_upper"]
            total += 1
            sd = float(post[p].sel(segment=name).std())
            assert abs(sp.loc[name, p] - v) < 3 * sd, (name, p, sp.loc[name, p], v, sd)
    # nominal 90%: 20 intervals, allow sampling noise (the coverage study is in bench/)
    assert inside / total >= 0.75
    # the mean purchase rate r/alpha is well identified in every segment
    for k, name in enumerate(SIZES):
        t = truth(k)
        assert sp.loc[name, "r"] / sp.loc[name, "alpha"] == pytest.approx(
            t["r"] / t["alpha"], rel=0.25)


def test_small_segment_borrows_strength(hier) -> None:
    """On the holdout, the hierarchical forecast for the 300-customer segment is at least as
    good as a separate maximum-likelihood fit on that segment alone.

    One simulation is noisy (the two MAEs are within ~1% here); the repeated-simulation
    comparison, where the hierarchical model wins in most replications, is
    ``bench/bench_bayes.py --only coverage``.
    """
    small = hier.rfm[hier.rfm["segment"] == "north"]
    actual = small["frequency_holdout"].to_numpy()
    pred_h = hier.bg.expected_purchases(small, 52.0).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mle = BetaGeo().fit(small)
    pred_m = mle.expected_purchases(small, 52.0).to_numpy()
    mae_h = np.mean(np.abs(pred_h - actual))
    mae_m = np.mean(np.abs(pred_m - actual))
    assert mae_h < 1.02 * mae_m
    # and its intervals are narrower than the population spread would suggest
    sp = hier.bg.segment_params_
    width = sp["r_upper"] - sp["r_lower"]
    assert width["north"] == width.max()  # fewest customers, most uncertainty


def test_predictions_use_own_segment(hier) -> None:
    bg, rfm = hier.bg, hier.rfm
    frame = pd.concat([rfm[rfm["segment"] == s].head(20) for s in SIZES])
    out = bg.expected_purchases(frame, 26.0)
    post = bg.idata_.posterior
    for name in SIZES:
        part = frame[frame["segment"] == name]
        p = {k: post[k].sel(segment=name).to_numpy().reshape(-1, 1)
             for k in ("r", "alpha", "a", "b")}
        direct = bgnbd.expected_purchases(p["r"], p["alpha"], p["a"], p["b"],
                                          part["frequency"].to_numpy(),
                                          part["recency"].to_numpy(), part["T"].to_numpy(),
                                          26.0).mean(0)
        np.testing.assert_allclose(out.loc[part.index], direct, rtol=1e-12)
    new_n = bg.expected_purchases_new_customer(52.0, segment="north")
    new_o = bg.expected_purchases_new_customer(52.0, segment="online")
    assert new_n != new_o
    pop = bg.expected_purchases_new_customer(52.0, interval=0.9)
    assert pop.iloc[0, 1] < min(new_n, new_o) or pop.iloc[0, 2] > max(new_n, new_o)


def test_unseen_segment(hier) -> None:
    bg, rfm = hier.bg, hier.rfm
    frame = rfm.head(5).assign(segment="mars")
    with pytest.raises(ValueError, match=r"not seen when the model was fitted.*population"):
        bg.expected_purchases(frame, 10.0)
    with pytest.raises(ValueError, match="not seen"):
        hier.gg.expected_spend(frame)
    out = bg.expected_purchases(frame, 10.0, interval=0.9, unseen_segments="population")
    assert out.notna().all().all()
    known = bg.expected_purchases(rfm.head(5), 10.0, interval=0.9)
    # a new segment is more uncertain than a fitted one
    assert ((out.iloc[:, 2] - out.iloc[:, 1]) > (known.iloc[:, 2] - known.iloc[:, 1])).all()
    with pytest.raises(ValueError, match=r"segment_col|missing"):
        bg.expected_purchases(rfm.drop(columns="segment"), 10.0)


def test_hierarchical_clv_and_persistence(hier, tmp_path) -> None:
    bg, gg, rfm = hier.bg, hier.gg, hier.rfm
    frame = rfm.iloc[::10]
    out = customer_lifetime_value(bg, gg, frame, horizon=52, discount_rate=0.1)
    assert (out["clv_lower"] <= out["clv"]).all() and (out["clv"] <= out["clv_upper"]).all()
    assert out.attrs["total_clv_lower"] < out["clv"].sum() < out.attrs["total_clv_upper"]
    path = bg.save(tmp_path / "hier.nc")
    back = load_model(path)
    assert back.segment_labels_ == bg.segment_labels_ and back.segment_col == "segment"
    pd.testing.assert_frame_equal(back.segment_params_, bg.segment_params_)
    pd.testing.assert_frame_equal(back.centering_, bg.centering_)
    assert back.priors_ == bg.priors_ and set(back.priors_) == {
        f"{k}_{u}" for k in ("mu", "sigma") for u in bg.latents}
    pd.testing.assert_series_equal(back.expected_purchases(frame, 10.0),
                                   bg.expected_purchases(frame, 10.0))
    gback = load_model(gg.save(tmp_path / "hier_gg.nc"))
    pd.testing.assert_series_equal(gback.expected_spend(frame), gg.expected_spend(frame))


def test_auto_centring_follows_segment_information(hier) -> None:
    """parametrization="auto": weights in [0, 1], per segment and latent, larger for
    segments whose own data pin their parameters down (more customers)."""
    for model in (hier.bg, hier.gg):
        w = model.centering_
        assert list(w.columns) == list(model.latents)
        assert list(w.index) == [str(s) for s in model.segment_labels_]
        assert ((w >= 0) & (w <= 1)).all().all()
        sizes = pd.Series(model._segment_sizes(), index=w.index)
        # smallest vs largest segment: never more centred
        assert (w.loc[sizes.idxmin()] <= w.loc[sizes.idxmax()] + 1e-12).all()
    # BG/NBD on segments of 300..5000 customers: the well-separated rate latents are mostly
    # centred for the big segments, not for the 300-customer one
    w = hier.bg.centering_
    assert w.loc["online", "log_r"] > 0.5 and w.loc["north", "log_r"] < w.loc["online", "log_r"]
    for fixed, value in (("centered", 1.0), ("non_centered", 0.0)):
        m = BayesianBetaGeo(segment_col="segment", parametrization=fixed)
        m._segment_codes(hier.rfm, fitting=True)
        assert (m._choose_centering(hier.rfm) == value).all().all()
    with pytest.raises(ValueError, match="parametrization"):
        BayesianBetaGeo(segment_col="segment", parametrization="partial")


@pytest.mark.parametrize("weight", [0.0, 0.4, 1.0])
def test_partial_centring_is_the_same_prior(hier, weight) -> None:
    """Whatever the centring weight, each segment's parameters have the same prior: the
    prior draws of r_s under w = 0, 0.4 and 1 agree in distribution (two-sample KS)."""
    import pymc as pm
    from scipy import stats

    from clvmodels.models.bayes import validate_priors

    m = BayesianBetaGeo(segment_col="segment")
    rows = m._rows(hier.rfm.iloc[:2000], fitting=True)
    m.priors_ = validate_priors(None, m._default_hyperpriors(rows))
    m.time_unit_ = "W"
    m.centering_ = pd.DataFrame(weight, index=[str(s) for s in m.segment_labels_],
                                columns=list(m.latents))
    with m._build_model(rows, fused=False):  # the likelihood as an observed variable
        prior = pm.sample_prior_predictive(draws=4000, var_names=["r", "a"], random_seed=5)
    rng = np.random.default_rng(6)  # the reference: u ~ Normal(mu, sigma) drawn directly
    mu = rng.normal(0.0, 2.0, 4000)
    sigma = np.abs(rng.normal(0.0, 1.0, 4000))
    ref_r = np.exp(mu + sigma * rng.normal(size=4000))
    r = prior.prior["r"].to_numpy()[0, :, 0]
    assert stats.ks_2samp(np.log(r), np.log(ref_r)).pvalue > 0.001


def test_between_segment_variance_estimator() -> None:
    """DerSimonian-Laird: equal standard errors give var(est) - se^2; a wild estimate with a
    huge standard error (a tiny segment) does not inflate the spread."""
    from clvmodels.models.hierarchical import between_variance as _between_variance

    est = np.array([0.1, -0.3, 0.4, 0.0, 0.25])
    assert _between_variance(est, np.full(5, 0.1)) == pytest.approx(
        np.var(est, ddof=1) - 0.01)
    assert _between_variance(est, np.full(5, 10.0)) == 0.0
    # four precise segments agree; a small one is 2 standard errors away
    wild, se = np.array([0.0, 0.001, -0.001, 0.0005, 1.0]), np.array([0.01] * 4 + [0.5])
    assert _between_variance(wild, se) < 1e-4
    assert np.var(wild, ddof=1) - np.mean(se**2) > 0.1  # the naive estimate: 0.15
