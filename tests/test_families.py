"""The two new families through the seam: BG/BB (discrete time) and the contractual sBG, each
maximum likelihood, Bayesian and hierarchical — fitted, predicted, saved and loaded through the
same machinery as every other model. The math modules' own tests (test_bgbb.py, test_sbg.py)
check the formulas against the papers, lifetimes and mpmath; these check the classes."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels import (
    BayesianBetaGeoBetaBinom,
    BayesianShiftedBetaGeo,
    BetaGeoBetaBinom,
    ShiftedBetaGeo,
)
from clvmodels.datasets import load_donations
from clvmodels.models import registry
from clvmodels.models.persistence import load_model
from clvmodels.models.protocol import (
    ContractualPredictor,
    TransactionPredictor,
    is_posterior,
)
from clvmodels.models.sampling import SamplingWarning

SAMPLER = {"draws": 300, "tune": 300, "chains": 2, "random_seed": 3}
HIER_SAMPLER = {"draws": 1000, "tune": 1000, "chains": 2, "random_seed": 3}

# Fader & Hardie (2007), Table 1: % of the cohort active at the start of years 0..7
COHORTS = {"regular": [100.0, 63.1, 46.8, 38.2, 32.6, 28.9, 26.2, 24.1],
           "high end": [100.0, 86.9, 74.3, 65.3, 59.3, 55.1, 51.7, 49.1]}
# their estimates (the paper's, reproduced to the printed digits)
FH2007 = {"regular": (0.704, 1.182, -1680.3), "high end": (0.668, 3.806, -1611.2)}
OBSERVED_8_12 = {"regular": [22.3, 20.7, 19.4, 18.3, 17.3],
                 "high end": [46.8, 44.5, 42.7, 40.9, 39.4]}


def _cohort(name: str) -> pd.DataFrame:
    """1,000 customers: those lost in year t paid t periods; survivors of year 7 paid 8."""
    alive = np.array(COHORTS[name]) * 10
    lost = -np.diff(alive)
    out = pd.DataFrame({"periods": [*range(1, 8), 8], "churned": [True] * 7 + [False],
                        "customers": [*lost, alive[-1]]})
    out.attrs["time_unit"] = "Y"
    return out


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    return load_donations()


@pytest.fixture(scope="module")
def bgbb(donations: pd.DataFrame) -> BetaGeoBetaBinom:
    return BetaGeoBetaBinom().fit(donations, weights="weights")


# ---- registration --------------------------------------------------------------------


def test_the_families_are_registered_and_exported() -> None:
    for name, cls, kind in [("bgbb", BetaGeoBetaBinom, "discrete"),
                            ("bayes-bgbb", BayesianBetaGeoBetaBinom, "discrete"),
                            ("sbg", ShiftedBetaGeo, "contractual"),
                            ("bayes-sbg", BayesianShiftedBetaGeo, "contractual")]:
        assert registry.get_model(name) is cls
        assert cls.data_kind == kind
        assert getattr(clvmodels, cls.__name__) is cls
    assert "bgbb" in registry.model_names(role="transaction", bayesian=False)
    assert registry.model_names(role="contractual") == ["sbg", "bayes-sbg"]
    assert registry.label_of(BayesianShiftedBetaGeo) == "Bayesian sBG"


# ---- BG/BB ---------------------------------------------------------------------------


def test_bgbb_reproduces_the_paper_on_the_donations_counts(bgbb: BetaGeoBetaBinom,
                                                           donations: pd.DataFrame) -> None:
    # FHS 2010: alpha 1.204, beta 0.750, gamma 0.657, delta 2.783, LL -33,225.6
    np.testing.assert_allclose(bgbb.params_, [1.204, 0.750, 0.657, 2.783], atol=6e-4)
    assert bgbb.log_likelihood_ == pytest.approx(-33225.6, abs=0.05)
    assert bgbb.n_customers_ == 11_104 and bgbb.data_summary_["n_unique_rows"] == 22
    assert bgbb.converged_
    assert isinstance(bgbb, TransactionPredictor) and not is_posterior(bgbb)
    # Table 6 cells (recency 1995, x = 0), (1999, x = 2), (2001, x = 6), as transcribed in
    # lifetimes' tests: P(alive in 2002)
    cells = pd.DataFrame({"frequency": [0, 2, 6], "recency": [0, 4, 6], "T": [6, 6, 6]})
    np.testing.assert_allclose(bgbb.probability_alive(cells), [0.11, 0.59, 0.93], atol=0.005)
    # Hardie's spreadsheet: 12,884.2 expected donations over the next 5 years
    total = (bgbb.expected_purchases(donations, 5) * donations["weights"]).sum()
    assert total == pytest.approx(12884.2, abs=0.05)


def test_bgbb_expanded_data_give_the_same_fit(bgbb: BetaGeoBetaBinom,
                                              donations: pd.DataFrame) -> None:
    expanded = donations.loc[donations.index.repeat(donations["weights"])].drop(
        columns="weights").reset_index(drop=True)
    again = BetaGeoBetaBinom().fit(expanded)
    np.testing.assert_allclose(again.params_, bgbb.params_, rtol=1e-6)
    assert again.log_likelihood_ == pytest.approx(bgbb.log_likelihood_, rel=1e-10)


def test_bgbb_from_params_save_load_and_dert(bgbb: BetaGeoBetaBinom, donations: pd.DataFrame,
                                             tmp_path: Path) -> None:
    known = BetaGeoBetaBinom.from_params(time_unit="Y", **bgbb.params_.to_dict())
    pd.testing.assert_series_equal(known.probability_alive(donations),
                                   bgbb.probability_alive(donations))
    path = known.save(tmp_path / "bgbb.json")
    assert json.loads(path.read_text())["data_kind"] == "discrete"
    again = load_model(path)
    assert type(again) is BetaGeoBetaBinom and again.time_unit_ == "Y"
    # DERT at 10 % a year with yearly opportunities is the paper's d = 0.1 per opportunity
    from clvmodels.models.bgbb import expected_discounted_transactions

    dert = again.expected_discounted_transactions(donations, 0.10)
    p = bgbb.params_
    direct = expected_discounted_transactions(p["alpha"], p["beta"], p["gamma"], p["delta"],
                                              donations["frequency"], donations["recency"],
                                              donations["periods"], 0.10)
    np.testing.assert_allclose(dert, direct, rtol=1e-12)
    with pytest.raises(ValueError, match="time unit"):
        BetaGeoBetaBinom.from_params(**p.to_dict()).expected_discounted_transactions(
            donations, 0.1)


def test_bgbb_refuses_impossible_discrete_rows() -> None:
    bad = pd.DataFrame({"frequency": [2, 1, 3], "recency": [1, 2, 3], "T": [6, 6, 6]})
    with pytest.raises(clvmodels.ValidationError, match="frequency > recency"):
        BetaGeoBetaBinom().fit(bad)
    late = pd.DataFrame({"frequency": [1, 1, 3], "recency": [1, 2, 3], "T": [6, 6, 2]})
    with pytest.raises(clvmodels.ValidationError, match="recency is greater than T"):
        BetaGeoBetaBinom().fit(late)
    half = pd.DataFrame({"frequency": [1, 2], "recency": [1.5, 3], "T": [6, 6]})
    with pytest.raises(clvmodels.ValidationError, match="whole number"):
        BetaGeoBetaBinom().fit(half)


def test_bayesian_bgbb_agrees_with_the_mle(bgbb: BetaGeoBetaBinom, donations: pd.DataFrame,
                                           tmp_path: Path) -> None:
    model = BayesianBetaGeoBetaBinom().fit(donations, weights="weights", **SAMPLER)
    s = model.summary()
    for name in bgbb.param_names:
        assert abs(s.loc[name, "estimate"] - bgbb.params_[name]) < 2 * s.loc[name, "se"]
    assert {"estimate", "se", "lower 95%", "upper 95%", "r_hat", "ess_bulk",
            "divergences"} <= set(s.columns)
    assert model.n_customers_ == 11_104
    pa = model.probability_alive(donations, interval=0.9)
    assert ((pa["probability_alive_lower"] <= pa["probability_alive"])
            & (pa["probability_alive"] <= pa["probability_alive_upper"])).all()
    np.testing.assert_allclose(pa["probability_alive"], bgbb.probability_alive(donations),
                               atol=0.02)
    pmf = model.conditional_purchase_count_probability(donations, np.arange(6), 5)
    np.testing.assert_allclose(pmf.sum(axis=1), 1.0, atol=1e-9)
    loo = model.loo()
    assert np.isfinite(loo.elpd_loo)
    path = model.save(tmp_path / "bgbb.nc")
    again = load_model(path)
    assert type(again) is BayesianBetaGeoBetaBinom
    np.testing.assert_allclose(again.params_, model.params_)


# ---- sBG -----------------------------------------------------------------------------


@pytest.mark.parametrize("cohort", ["regular", "high end"])
def test_sbg_reproduces_fader_hardie_2007(cohort: str) -> None:
    model = ShiftedBetaGeo().fit(_cohort(cohort), weights="customers")
    alpha, beta, ll = FH2007[cohort]
    np.testing.assert_allclose(model.params_, [alpha, beta], atol=6e-4)
    assert model.log_likelihood_ == pytest.approx(ll, abs=0.05)
    assert model.time_unit_ == "Y" and model.n_customers_ == 1000
    assert isinstance(model, ContractualPredictor)
    projected = 100 * model.survival(np.arange(8, 13))
    # the paper's point: fitted on years 1-7, the projection tracks the observed years 8-12
    # (within 2 points; it runs slightly low for the high-end cohort, as in the paper)
    np.testing.assert_allclose(projected, OBSERVED_8_12[cohort], atol=2.0)
    assert np.all(projected <= np.array(OBSERVED_8_12[cohort]) + 0.5)
    r = model.retention_rate(np.arange(1, 13))
    assert np.all(np.diff(r) > 0)  # retention rises with tenure: heterogeneity


def test_sbg_derl_table_of_fader_hardie_2010() -> None:
    # F&H 2010 Table 3 (d = 10 %), alpha = 3.80, beta = 15.20; 0..4 renewals made
    model = ShiftedBetaGeo.from_params(alpha=3.80, beta=15.20, time_unit="Y")
    customers = pd.DataFrame({"periods": [1, 2, 3, 4, 5], "churned": [False] * 5})
    derl = model.discounted_expected_residual_lifetime(customers, 0.10)
    np.testing.assert_allclose(derl, [3.31, 3.45, 3.59, 3.72, 3.84], atol=0.005)
    churned = customers.assign(churned=True)
    assert (model.discounted_expected_residual_lifetime(churned, 0.10) == 0).all()
    # an annual rate with monthly periods: 10 % a year is (1.1)^(1/12) - 1 a month
    monthly = ShiftedBetaGeo.from_params(alpha=3.80, beta=15.20, time_unit="M")
    from clvmodels.models.sbg import discounted_expected_residual_lifetime as derl_fn

    np.testing.assert_allclose(
        monthly.discounted_expected_residual_lifetime(customers, 0.10),
        derl_fn(3.80, 15.20, customers["periods"], customers["churned"], 1.1 ** (1 / 12) - 1),
        rtol=1e-12)
    with pytest.raises(ValueError, match="period length"):
        ShiftedBetaGeo.from_params(alpha=1, beta=1).discounted_expected_residual_lifetime(
            customers, 0.1)


def test_sbg_expected_renewals_and_conditional_survival() -> None:
    model = ShiftedBetaGeo.from_params(alpha=0.704, beta=1.182, time_unit="Y")
    customers = pd.DataFrame({"periods": [1, 4, 8, 3], "churned": [False, False, False, True]})
    surv = model.conditional_survival(customers, 1)
    np.testing.assert_allclose(surv.iloc[:3], [model.survival(1) / model.survival(0),
                                               model.survival(4) / model.survival(3),
                                               model.survival(8) / model.survival(7)])
    assert surv.iloc[3] == 0
    renewals = model.expected_renewals(customers, 3)
    manual = sum(model.conditional_survival(customers, k) for k in (1, 2, 3))
    np.testing.assert_allclose(renewals, manual, rtol=1e-12)


def test_sbg_data_are_validated() -> None:
    bad = pd.DataFrame({"periods": [0, 2, 1.5], "churned": [True, "maybe", False]})
    with pytest.raises(clvmodels.ValidationError, match="periods"):
        ShiftedBetaGeo().fit(bad)
    nobody_left = pd.DataFrame({"periods": [3, 5, 8], "churned": [False] * 3})
    with pytest.raises(clvmodels.models.base.IdentificationError, match="no customer churned"):
        ShiftedBetaGeo().fit(nobody_left)


def test_bayesian_sbg_agrees_with_the_mle_and_saves(tmp_path: Path) -> None:
    data = _cohort("regular")
    mle = ShiftedBetaGeo().fit(data, weights="customers")
    model = BayesianShiftedBetaGeo().fit(data, weights="customers", **SAMPLER)
    s = model.summary()
    for name in ("alpha", "beta"):
        assert abs(s.loc[name, "estimate"] - mle.params_[name]) < 2 * s.loc[name, "se"]
    curve = model.survival(np.arange(8, 13), interval=0.9)
    inside = (curve["survival_lower"] * 100 <= np.array(OBSERVED_8_12["regular"]) + 1.5) & (
        np.array(OBSERVED_8_12["regular"]) - 1.5 <= curve["survival_upper"] * 100)
    assert inside.all()
    derl = model.discounted_expected_residual_lifetime(data, 0.10, interval=0.9)
    active = derl.iloc[-1]
    mle_derl = mle.discounted_expected_residual_lifetime(data, 0.10).iloc[-1]
    assert active["derl_lower"] < mle_derl < active["derl_upper"]
    assert (derl.iloc[:-1]["derl"] == 0).all()
    path = model.save(tmp_path / "sbg.nc")
    again = load_model(path)
    assert type(again) is BayesianShiftedBetaGeo and again.time_unit_ == "Y"
    np.testing.assert_allclose(
        again.discounted_expected_residual_lifetime(data, 0.10),
        model.discounted_expected_residual_lifetime(data, 0.10), rtol=1e-12)


def test_hierarchical_sbg_pools_plans() -> None:
    """Plans with different churn: the hierarchical posterior separates them."""
    parts = []
    plans = {"basic": (0.7, 1.2), "plus": (0.8, 2.0), "pro": (0.7, 2.6), "premium": (0.7, 3.8)}
    for plan, (a, b) in plans.items():
        sim = registry.simulate("sbg", 1500, params={"alpha": a, "beta": b}, n_periods=8,
                                random_seed=len(plan))
        parts.append(sim.assign(plan=plan))
    data = pd.concat(parts, ignore_index=True)
    data.attrs["time_unit"] = "M"
    with warnings.catch_warnings():
        warnings.simplefilter("error", SamplingWarning)  # it must sample cleanly
        model = BayesianShiftedBetaGeo(segment_col="plan").fit(data, target_accept=0.95,
                                                               **HIER_SAMPLER)
    seg = model.segment_params_
    churn = seg["alpha"] / (seg["alpha"] + seg["beta"])
    assert churn.loc["basic"] > churn.loc["premium"]
    surv = model.survival(np.arange(1, 4), segment="premium")
    assert np.all(np.diff(surv.to_numpy()) < 0)
    derl = model.discounted_expected_residual_lifetime(data.head(50), 0.10)
    assert np.isfinite(derl).all()


def test_hierarchical_bgbb_runs_on_segments() -> None:
    parts = []
    for seg, alpha in (("a", 1.2), ("b", 3.0)):
        sim = registry.simulate("bgbb", 1500, params={"alpha": alpha, "beta": 0.75,
                                                      "gamma": 0.66, "delta": 2.8},
                                T=6, random_seed=len(seg) + int(alpha))
        parts.append(sim.assign(seg=seg))
    data = pd.concat(parts, ignore_index=True)
    # with six opportunities per donor a segment's drop-out Beta is weakly identified: the
    # sampler may report a few divergences (the warning says so); the segments' transaction
    # probabilities, which the data pin down, must still come out ordered and converged
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        model = BayesianBetaGeoBetaBinom(segment_col="seg").fit(
            data, target_accept=0.95, draws=600, tune=600, chains=2, random_seed=3)
    summary = model.summary()
    assert summary.filter(like="alpha[", axis=0)["r_hat"].max() < 1.05
    p = model.segment_params_
    mean_p = p["alpha"] / (p["alpha"] + p["beta"])
    assert mean_p.loc["b"] > mean_p.loc["a"]
    assert np.isfinite(model.expected_purchases(data.head(20), 5)).all()
