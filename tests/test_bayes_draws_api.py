"""The public posterior-draws API of the Bayesian models, and that valuation and the
diagnostics tables need nothing else: ``n_draws``, ``parameter_draws``, ``segment_codes``,
``discounted_purchase_chunks``, ``spend_draws_by_customer``, ``purchase_count_probability_at``;
the netCDF loader's validation.

Each quantity is checked against the model module's own function evaluated directly at the
posterior draws, or against the model's other public predictions. One small hierarchical fit
per model (2 chains × 150 draws on 1,500 simulated customers) keeps the file fast.
"""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from clvmodels.models import bgnbd, gammagamma, posterior
from clvmodels.models.bayes import SamplingWarning
from clvmodels.models.bayes_bgnbd import BayesianBetaGeo
from clvmodels.models.bayes_gammagamma import BayesianGammaGamma
from clvmodels.models.netcdf import load_netcdf_model, write_posterior
from clvmodels.simulate import simulate_bgnbd, uniform_observation_lengths
from clvmodels.valuation import customer_lifetime_value

SEGMENTS = ("north", "south", "west")
DRAWS = dict(draws=150, tune=150, chains=2)


@pytest.fixture(scope="module")
def fitted() -> SimpleNamespace:
    frames = []
    for k, name in enumerate(SEGMENTS):
        T = uniform_observation_lengths(500, 52.0, resolution=1 / 7, random_seed=k)
        f = simulate_bgnbd(500, r=0.24 * (1 + 0.3 * k), alpha=4.4, a=0.79, b=2.4, T=T,
                           resolution=1 / 7, spend=(6.0, 3.8, 15.0), random_seed=10 + k)
        f.index = f.index + 500 * k
        f["segment"] = name
        frames.append(f)
    rfm = pd.concat(frames)
    rfm.index.name = "customer_id"
    rfm.attrs["time_unit"] = "W"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        bg = BayesianBetaGeo(segment_col="segment").fit(rfm, random_seed=1, **DRAWS)
        gg = BayesianGammaGamma(segment_col="segment").fit(rfm, random_seed=2, **DRAWS)
    return SimpleNamespace(rfm=rfm, bg=bg, gg=gg)


class PublicOnly:
    """A model seen through its public members only: a private one raises."""

    def __init__(self, model: Any) -> None:
        object.__setattr__(self, "_model", model)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(f"private member {name!r} used from outside the model")
        return getattr(self._model, name)


def test_parameter_draws_are_the_posterior(fitted) -> None:
    bg = fitted.bg
    post = bg.idata_.posterior
    S = post.sizes["chain"] * post.sizes["draw"]
    assert bg.n_draws == S == 300
    params, groups = bg.parameter_draws()
    assert list(params) == list(bg.param_names) and len(groups) == 0
    for name, values in params.items():
        np.testing.assert_array_equal(values, post[name].to_numpy().reshape(S, len(SEGMENTS)))
        with pytest.raises(ValueError):
            values[0, 0] = 1.0  # read-only: the model's cache cannot be changed by a caller
    frame = fitted.rfm.iloc[::97]
    _, groups = bg.parameter_draws(frame)
    expect = pd.Index(bg.segment_labels_).get_indexer(frame["segment"])
    np.testing.assert_array_equal(groups, expect)
    np.testing.assert_array_equal(bg.segment_codes(frame), expect)


def test_parameter_draws_unseen_segment(fitted) -> None:
    bg = fitted.bg
    frame = fitted.rfm.iloc[:6].copy()
    frame.loc[frame.index[:2], "segment"] = "east"
    with pytest.raises(ValueError, match="not seen"):
        bg.parameter_draws(frame)
    params, groups = bg.parameter_draws(frame, unseen_segments="population")
    assert all(v.shape == (300, len(SEGMENTS) + 1) for v in params.values())
    assert list(groups[:2]) == [len(SEGMENTS)] * 2
    # the population column is the one the predictions use for an unseen segment
    pa = bg.probability_alive(frame, unseen_segments="population")
    p = {k: v[:, groups] for k, v in params.items()}
    x, tx, T = (frame[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    direct = bgnbd.probability_alive(p["r"], p["alpha"], p["a"], p["b"], x, tx, T)
    np.testing.assert_allclose(pa.to_numpy(), direct.mean(axis=0), rtol=1e-12)


def test_discounted_purchase_chunks(fitted, monkeypatch) -> None:
    bg = fitted.bg
    frame = fitted.rfm.iloc[::7]
    times = np.array([4.0, 13.0, 26.0, 52.0])
    coef = np.array([0.5, 0.25, 0.125, 0.1])
    # a small budget: many blocks and several chunks per block
    monkeypatch.setattr(posterior, "CHUNK_CELLS", 3_000)
    chunks = bg.discounted_purchase_chunks(frame, times, coef)
    assert len(chunks) > 3 and chunks.n_draws == 300
    seen = np.zeros(len(frame), dtype=np.int64)
    disc = np.empty((300, len(frame)))
    ep, pa = np.empty(len(frame)), np.empty(len(frame))
    sizes = []
    for i in range(len(chunks)):
        for chunk in chunks.block(i):
            seen[chunk.customers] += 1
            disc[:, chunk.customers] = chunk.discounted
            ep[chunk.customers] = chunk.expected_purchases
            pa[chunk.customers] = chunk.probability_alive
            sizes.append(chunk.discounted.size)
    assert (seen == 1).all()  # every customer exactly once
    assert max(sizes) <= 3_000
    params, groups = bg.parameter_draws(frame)
    p = {k: v[:, groups, None] for k, v in params.items()}
    x, tx, T = (frame[c].to_numpy(float)[:, None] for c in ("frequency", "recency", "T"))
    cum = bgnbd.expected_purchases(p["r"], p["alpha"], p["a"], p["b"], x, tx, T,
                                   times[None, :])  # (S, n, K)
    # the chunks take 2F1 from the horizon-grid series, the module function from the
    # per-element one: equal to ~1e-10 relative (an arbitrary draw can sit at a band edge)
    np.testing.assert_allclose(disc, cum @ coef, rtol=1e-9)
    np.testing.assert_allclose(ep, bg.expected_purchases(frame, 52.0), rtol=1e-10)
    np.testing.assert_allclose(pa, bg.probability_alive(frame), rtol=1e-12)
    # selected draws: the same values for those draws
    take = np.array([0, 7, 299])
    sub = bg.discounted_purchase_chunks(frame, times, coef, draws=take)
    assert sub.n_draws == 3
    for i in range(len(sub)):
        for chunk in sub.block(i):
            np.testing.assert_allclose(chunk.discounted, disc[take][:, chunk.customers],
                                       rtol=1e-12)
    for bad in (np.array([300]), np.array([], dtype=int), np.array([0.5])):
        with pytest.raises(ValueError, match="draws"):
            bg.discounted_purchase_chunks(frame, times, coef, draws=bad)
    with pytest.raises(ValueError, match="same"):
        bg.discounted_purchase_chunks(frame, times, coef[:2])


def test_spend_draws_by_customer(fitted) -> None:
    gg = fitted.gg
    frame = fitted.rfm.iloc[::11]
    every = gg.expected_spend_draws(frame).to_numpy().reshape(gg.n_draws, -1)
    draws = gg.spend_draws_by_customer(frame)
    cust = np.array([5, 0, 3, len(frame) - 1])
    np.testing.assert_allclose(draws.take(cust), every[:, cust], rtol=1e-12)
    take = np.arange(0, 300, 3)
    thinned = gg.spend_draws_by_customer(frame, draws=take)
    assert thinned.n_draws == 100 and thinned.n_customers == len(frame)
    np.testing.assert_allclose(thinned.take(cust), every[take][:, cust], rtol=1e-12)
    # the module's formula at the parameter draws
    params, groups = gg.parameter_draws(frame)
    x = frame["frequency"].to_numpy(float)
    mx = np.where(x > 0, frame["monetary_value"].to_numpy(float), 0.0)
    direct = gammagamma.expected_spend(params["p"][:, groups], params["q"][:, groups],
                                       params["v"][:, groups], x, mx)
    np.testing.assert_allclose(draws.take(np.arange(len(frame))), direct, rtol=1e-12)


def test_purchase_count_probability_at(fitted) -> None:
    bg = fitted.bg
    params, _ = bg.parameter_draws()
    p = {k: v[:, :, None] for k, v in params.items()}
    n = np.arange(6.0)[None, None, :]
    got = bg.purchase_count_probability_at(p, n, 39.0)
    expect = bgnbd.purchase_count_probability(p["r"], p["alpha"], p["a"], p["b"], n, 39.0)
    np.testing.assert_allclose(got, expect, rtol=1e-12)
    assert got.shape == (300, len(SEGMENTS), 6)


def test_valuation_and_diagnostics_use_public_members_only(fitted) -> None:
    from clvmodels.diagnostics import calibration_histogram_table

    frame = fitted.rfm.iloc[::5]
    kwargs = dict(horizon=26, discount_rate=0.1, margin=0.3)
    ref = customer_lifetime_value(fitted.bg, fitted.gg, frame, **kwargs)
    seen = customer_lifetime_value(PublicOnly(fitted.bg), PublicOnly(fitted.gg), frame,
                                   **kwargs)
    pd.testing.assert_frame_equal(seen, ref)
    assert seen.attrs["total_clv"] == ref.attrs["total_clv"]
    hist = calibration_histogram_table(PublicOnly(fitted.bg), frame)
    np.testing.assert_allclose(hist["expected"],
                               calibration_histogram_table(fitted.bg, frame)["expected"])


def _rewrite(src: Any, dst: Any, change: Any, drop: str | None = None) -> Any:
    """Copy a saved model, changing its JSON document (and dropping a posterior variable)."""
    import arviz as az

    idata = az.from_netcdf(str(src))
    idata.load()
    meta = json.loads(idata.posterior.attrs["clvmodels"])
    if drop is not None:
        idata.posterior = idata.posterior.drop_vars(drop)
    idata.posterior.attrs["clvmodels"] = json.dumps(change(meta))
    idata.to_netcdf(str(dst))
    return dst


def test_netcdf_loader_validates(fitted, tmp_path) -> None:
    bg = fitted.bg
    good = bg.save(tmp_path / "bg.nc")
    back = load_netcdf_model(good)
    assert type(back) is BayesianBetaGeo and back.segment_labels_ == bg.segment_labels_
    np.testing.assert_array_equal(back.parameter_draws()[0]["r"], bg.parameter_draws()[0]["r"])
    cases = {
        "unknown Bayesian model type": lambda m: {**m, "model": "BetaGeo"},
        "format version": lambda m: {**m, "format_version": 99},
        "not a clvmodels Bayesian model file": lambda m: {**m, "format": "other"},
        "lacks the model class or priors": lambda m: {k: v for k, v in m.items()
                                                      if k != "priors"},
        "not a PyMC distribution": lambda m: {**m, "priors": {**m["priors"],
                                                              "mu_log_r": {"dist": "Banana"}}},
    }
    for k, (message, change) in enumerate(cases.items()):
        with pytest.raises(ValueError, match=message):
            load_netcdf_model(_rewrite(good, tmp_path / f"bad{k}.nc", change))
    with pytest.raises(ValueError, match="lacks the BayesianBetaGeo parameter"):
        load_netcdf_model(_rewrite(good, tmp_path / "thin.nc", lambda m: m, drop="alpha"))
    # the writer stamps the format itself
    write_posterior(bg.idata_, {"model": "BayesianBetaGeo", "priors": bg.priors_,
                                "segment_col": "segment", "segment_labels": list(SEGMENTS),
                                "time_unit": "W"}, tmp_path / "min.nc")
    assert type(load_netcdf_model(tmp_path / "min.nc")) is BayesianBetaGeo
