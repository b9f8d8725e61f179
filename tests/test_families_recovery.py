"""Recovery of the discrete-time families from simulated data, through the model classes.

* BG/BB (Fader, Hardie & Shang 2010, likelihood eq. 5) and sBG (Fader & Hardie 2007,
  eqs. 5-6): maximum-likelihood estimates on 20,000 simulated customers lie within 3
  standard errors of the true parameters; the same customers as grouped rows with
  ``weights=`` (a column name or an array) give the identical fit (same unique rows, same
  log-likelihood, same standard errors).
* The registry seam: ``from_params`` builds a model from known parameters, the family's
  ``simulator`` (``registry.get_model(name).simulator``) draws customers from that model's
  ``params_``, and a fit of the same class recovers them; the simulated frame satisfies the
  family's data-kind contract.
* One small Bayesian fit per family (seeded, so deterministic): the 99% central posterior
  intervals contain the true parameters and the sampler converged.

The simulators' distributional exactness and the families' formulas are tested in
``tests/test_bgbb.py`` and ``tests/test_sbg.py``; interval coverage over many replications
is a benchmark (``bench/bench_families.py --only coverage``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from clvmodels.datakinds import validate_kind
from clvmodels.models import registry
from clvmodels.models.bgbb import BayesianBetaGeoBetaBinom, BetaGeoBetaBinom, simulate_bgbb
from clvmodels.models.sbg import BayesianShiftedBetaGeo, ShiftedBetaGeo, simulate_sbg_cohorts

BGBB_TRUTH = {"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.78}  # donation-like
SBG_TRUTH = {"alpha": 0.7, "beta": 1.2}  # F&H 2007's "regular" cohort, rounded
N = 20_000


def _bgbb_data(n: int, seed: int, t_min: int = 6, t_max: int = 20) -> pd.DataFrame:
    T = np.random.default_rng(seed).integers(t_min, t_max + 1, n)
    return simulate_bgbb(n, T, **BGBB_TRUTH, random_seed=seed + 1)


def _sbg_data(n: int, seed: int, cohorts: int = 12) -> pd.DataFrame:
    sizes = [n // cohorts + (i < n % cohorts) for i in range(cohorts)]
    return simulate_sbg_cohorts(sizes, **SBG_TRUTH, random_seed=seed)


def _grouped(data: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    # shuffled, so that the grouped fit cannot lean on the raw rows' order
    g = data.groupby(cols).size().rename("n_customers").reset_index()
    return g.sample(frac=1.0, random_state=3).reset_index(drop=True)


def _assert_within_3_se(model: Any, truth: dict[str, float]) -> None:
    assert model.converged_, model.convergence_reason_
    se = model.standard_errors_
    assert np.all(np.isfinite(se.to_numpy())) and np.all(se.to_numpy() > 0)
    z = (model.params_ - pd.Series(truth)) / se
    assert (z.abs() < 3).all(), f"estimates off by more than 3 SE: z = {z.to_dict()}"


def _assert_same_fit(a: Any, b: Any) -> None:
    pd.testing.assert_series_equal(a.params_, b.params_, rtol=1e-9, check_names=False)
    pd.testing.assert_series_equal(a.standard_errors_, b.standard_errors_, rtol=1e-6,
                                   check_names=False)
    assert a.log_likelihood_ == pytest.approx(b.log_likelihood_, rel=1e-12)
    assert a.n_customers_ == b.n_customers_
    assert a.data_summary_["n_unique_rows"] == b.data_summary_["n_unique_rows"]


# --------------------------------------------------------------------------------------
# maximum likelihood: recovery, and grouped rows with weights
# --------------------------------------------------------------------------------------


def test_bgbb_mle_recovers_parameters_and_weights_give_the_same_fit() -> None:
    data = _bgbb_data(N, seed=11)
    raw = BetaGeoBetaBinom().fit(data)
    _assert_within_3_se(raw, BGBB_TRUTH)
    assert raw.data_summary_["n_customers"] == N
    assert raw.data_summary_["n_unique_rows"] < N / 5  # the compression does its job

    g = _grouped(data, ["frequency", "recency", "T"])
    before = g.copy(deep=True)
    by_name = BetaGeoBetaBinom().fit(g, weights="n_customers")
    by_array = BetaGeoBetaBinom().fit(g[["frequency", "recency", "T"]],
                                      weights=g["n_customers"].to_numpy())
    pd.testing.assert_frame_equal(g, before)  # the caller's data are not touched
    _assert_same_fit(raw, by_name)
    _assert_same_fit(raw, by_array)
    # the predictions follow the parameters: the same for the raw and grouped fits
    np.testing.assert_allclose(raw.expected_purchases(g, 5).to_numpy(),
                               by_name.expected_purchases(g, 5).to_numpy(), rtol=1e-9)


def test_sbg_mle_recovers_parameters_and_weights_give_the_same_fit() -> None:
    data = _sbg_data(N, seed=12)
    raw = ShiftedBetaGeo().fit(data)
    _assert_within_3_se(raw, SBG_TRUTH)
    assert raw.data_summary_["n_customers"] == N
    assert raw.data_summary_["n_unique_rows"] <= 2 * 12  # (periods, churned) pairs

    g = _grouped(data, ["periods", "churned"])
    by_name = ShiftedBetaGeo().fit(g, weights="n_customers")
    by_array = ShiftedBetaGeo().fit(g[["periods", "churned"]],
                                    weights=g["n_customers"].to_numpy())
    _assert_same_fit(raw, by_name)
    _assert_same_fit(raw, by_array)
    np.testing.assert_allclose(raw.survival(np.arange(1, 13)), by_name.survival(np.arange(1, 13)),
                               rtol=1e-9)


def test_weights_count_customers_not_rows() -> None:
    """Doubling every weight is fitting every customer twice: the same estimates, standard
    errors shrunk by sqrt(2), twice the log-likelihood."""
    g = _grouped(_sbg_data(5_000, seed=13), ["periods", "churned"])
    once = ShiftedBetaGeo().fit(g, weights="n_customers")
    twice = ShiftedBetaGeo().fit(g, weights=2 * g["n_customers"].to_numpy())
    pd.testing.assert_series_equal(once.params_, twice.params_, rtol=1e-7, check_names=False)
    np.testing.assert_allclose(once.standard_errors_ / twice.standard_errors_, np.sqrt(2),
                               rtol=1e-4)
    assert twice.log_likelihood_ == pytest.approx(2 * once.log_likelihood_, rel=1e-10)


# --------------------------------------------------------------------------------------
# the registry seam: from_params -> simulator -> fit
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "truth", "options"), [
    ("bgbb", BGBB_TRUTH, {"T": np.random.default_rng(5).integers(6, 21, N)}),
    ("sbg", SBG_TRUTH, {"n_periods": np.random.default_rng(6).integers(1, 13, N)}),
])
def test_registry_round_trip(name: str, truth: dict[str, float],
                             options: dict[str, Any]) -> None:
    cls = registry.get_model(name)
    known = cls.from_params(**truth)
    assert list(known.params_.index) == list(cls.param_names)
    data = cls.simulator(N, **known.params_.to_dict(), **options, random_seed=21)
    assert len(data) == N
    validate_kind(data, cls.data_kind)  # the simulator speaks the family's data kind
    fitted = cls().fit(data)
    _assert_within_3_se(fitted, known.params_.to_dict())
    # the Bayesian twin is registered with the same parameters and data kind
    twin = registry.get_model(f"bayes-{name}")
    assert tuple(twin.param_names) == tuple(cls.param_names)
    assert twin.data_kind == cls.data_kind


def test_simulator_is_reproducible_through_the_registry() -> None:
    cls = registry.get_model("bgbb")
    a = cls.simulator(500, **BGBB_TRUTH, T=8, random_seed=4)
    b = cls.simulator(500, **BGBB_TRUTH, T=8, random_seed=4)
    c = cls.simulator(500, **BGBB_TRUTH, T=8, random_seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


# --------------------------------------------------------------------------------------
# one small Bayesian fit per family
# --------------------------------------------------------------------------------------


def _bayes_check(model: Any, truth: dict[str, float]) -> None:
    params, _ = model.parameter_draws()
    d = model.diagnostics_
    assert d["divergences"] == 0
    assert d["max_rhat"] < 1.05
    for name, value in truth.items():
        draws = params[name][:, 0]
        assert np.all(np.isfinite(draws)) and np.all(draws > 0)
        lo, hi = np.quantile(draws, [0.005, 0.995])
        assert lo <= value <= hi, f"{name}: truth {value} outside the 99% interval " \
                                  f"[{lo:.4g}, {hi:.4g}]"


@pytest.mark.slow
def test_bayesian_bgbb_intervals_contain_the_truth() -> None:
    # 6 opportunities each (as in the donations data): few unique rows, a quick sampler
    data = _bgbb_data(3_000, seed=31, t_min=6, t_max=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BayesianBetaGeoBetaBinom().fit(data, chains=2, draws=300, tune=300,
                                               random_seed=7, log_likelihood=False)
    _bayes_check(model, BGBB_TRUTH)


@pytest.mark.slow
def test_bayesian_sbg_intervals_contain_the_truth() -> None:
    data = _sbg_data(3_000, seed=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BayesianShiftedBetaGeo().fit(data, chains=2, draws=300, tune=300,
                                             random_seed=8, log_likelihood=False)
    _bayes_check(model, SBG_TRUTH)
