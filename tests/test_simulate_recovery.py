"""Simulators (clvmodels.simulate): exactness, parameter recovery, agreement with lifetimes.

* The simulators follow the model definitions: the simulated mean frequency (and the
  holdout continuation) match the closed-form E[X(t)]; the frequency histogram matches
  P(X(t) = n); and the mean holdout count matches the mean of the model's *conditional*
  expectation E[Y(h) | x, t_x, T] by frequency group, which checks the joint law of
  (x, t_x, holdout) and so the simulated recency. All within 4 Monte-Carlo standard errors.
* Recovery: 200k customers drawn from known BG/NBD, MBG/NBD and Pareto/NBD parameters (and
  Gamma-Gamma spend), fitted by maximum likelihood; every estimate within 3 standard errors
  of the truth (fixed seeds). A simulated transaction log goes through the RFM summary to a
  fit and a holdout forecast.
* Agreement with lifetimes 0.11.3 (BetaGeoFitter, ModifiedBetaGeoFitter; its Pareto/NBD is
  tested elsewhere) on CDNOW and on 100k simulated customers: parameters and predictions to
  rtol 1e-4, and the formulas at identical parameters to 1e-9. Where lifetimes breaks
  (its MBG/NBD conditional expectation for heavy buyers) ours is checked to stay finite.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

from clvmodels import calibration_holdout_split, compress_rfm, rfm_summary
from clvmodels._validation import validate_rfm
from clvmodels.simulate import (
    simulate_bgnbd,
    simulate_gammagamma_spend,
    simulate_mbgnbd,
    simulate_paretonbd,
    simulate_transactions,
    uniform_observation_lengths,
)

DAY = 1.0 / 7.0  # one day in weeks
BG_TRUTH = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}  # CDNOW-like (FHL 2005)
PNBD_TRUTH = {"r": 0.55, "alpha": 10.5, "s": 0.6, "beta": 11.7}  # CDNOW-like (SMC 1987)
GG_TRUTH = {"p": 6.25, "q": 3.74, "v": 15.44}  # CDNOW (FHL 2005, JMR)
N_SANITY = 200_000
N_RECOVERY = 200_000
HOLDOUT = 13.0

SIMULATORS: dict[str, tuple[Callable[..., pd.DataFrame], dict[str, float]]] = {
    "bgnbd": (simulate_bgnbd, BG_TRUTH),
    "mbgnbd": (simulate_mbgnbd, BG_TRUTH),
    "paretonbd": (simulate_paretonbd, PNBD_TRUTH),
}


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _model_class(name: str) -> type:
    """The clvmodels class for a model name (skips the test when its module is missing)."""
    module, cls = {
        "bgnbd": ("clvmodels.models.bgnbd", "BetaGeo"),
        "mbgnbd": ("clvmodels.models.mbgnbd", "ModifiedBetaGeo"),
        "paretonbd": ("clvmodels.models.paretonbd", "ParetoNBD"),
        "gammagamma": ("clvmodels.models.gammagamma", "GammaGamma"),
    }[name]
    mod = pytest.importorskip(module)
    return getattr(mod, cls)


def _with_params(name: str, params: dict[str, float], time_unit: str = "W") -> Any:
    """A model of kind ``name`` with known parameters (no fit), built with ``from_dict``."""
    cls = _model_class(name)
    k = len(cls.param_names)
    return cls.from_dict({
        "params": {p: float(params[p]) for p in cls.param_names},
        "covariance": np.full((k, k), np.nan).tolist(),
        "time_unit": time_unit,
        "log_likelihood": math.nan,
        "aic": math.nan,
        "bic": math.nan,
        "n_customers": 0,
        "converged": True,
    })


def _within_se(observed: np.ndarray, expected: float, n_se: float = 4.0) -> None:
    """Assert the mean of ``observed`` is within ``n_se`` Monte-Carlo SEs of ``expected``."""
    se = observed.std(ddof=1) / math.sqrt(len(observed))
    z = (observed.mean() - expected) / se
    assert abs(z) < n_se, f"mean {observed.mean():.6g} vs {expected:.6g}: {z:+.2f} SE"


@pytest.fixture(scope="module")
def lifetimes() -> ModuleType:
    """lifetimes 0.11.3, the oracle (dev extra); its import warns under pandas 3."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("lifetimes")


# --------------------------------------------------------------------------------------
# the simulators' contract
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SIMULATORS))
def test_rfm_contract(name: str) -> None:
    simulate, truth = SIMULATORS[name]
    T = uniform_observation_lengths(2000, 52.0, resolution=DAY, random_seed=1)
    rfm = simulate(2000, *truth.values(), T=T, holdout=HOLDOUT, spend=tuple(GG_TRUTH.values()),
                   resolution=DAY, time_unit="W", random_seed=2)
    assert rfm.index.name == "customer_id"
    assert list(rfm.columns) == ["frequency", "recency", "T", "monetary_value",
                                 "frequency_holdout", "monetary_value_holdout",
                                 "duration_holdout"]
    assert rfm.attrs["time_unit"] == "W"
    validate_rfm(rfm, require_monetary=True)
    np.testing.assert_allclose(rfm["T"], T)
    # recency on the daily grid, never beyond T; spend 0 exactly where there are no purchases
    np.testing.assert_allclose(rfm["recency"] * 7, np.round(rfm["recency"] * 7), atol=1e-9)
    assert ((rfm["monetary_value"] > 0) == (rfm["frequency"] > 0)).all()
    assert ((rfm["monetary_value_holdout"] > 0) == (rfm["frequency_holdout"] > 0)).all()
    assert (rfm["duration_holdout"] == HOLDOUT).all()
    assert rfm["frequency"].dtype == np.int64


@pytest.mark.parametrize("name", sorted(SIMULATORS))
def test_reproducible_and_seedable(name: str) -> None:
    simulate, truth = SIMULATORS[name]
    one = simulate(500, *truth.values(), T=30.0, holdout=5.0, random_seed=7)
    two = simulate(500, *truth.values(), T=30.0, holdout=5.0,
                   random_seed=np.random.default_rng(7))
    pd.testing.assert_frame_equal(one, two)
    other = simulate(500, *truth.values(), T=30.0, holdout=5.0, random_seed=8)
    assert not one.equals(other)
    assert (one["recency"] <= 30.0).all()
    assert (one.loc[one["frequency"] == 0, "recency"] == 0).all()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="alpha"):
        simulate_bgnbd(10, 0.25, -1.0, 0.8, 2.5)
    with pytest.raises(ValueError, match="one value per customer"):
        simulate_bgnbd(10, 0.25, 4.0, 0.8, 2.5, T=np.ones(3))
    with pytest.raises(ValueError, match="n must be"):
        simulate_paretonbd(0, 0.55, 10.5, 0.6, 11.7)
    with pytest.raises(ValueError, match="time_unit"):
        simulate_mbgnbd(10, 0.25, 4.0, 0.8, 2.5, time_unit="fortnight")
    with pytest.raises(ValueError, match="holdout"):
        simulate_mbgnbd(10, 0.25, 4.0, 0.8, 2.5, holdout=-1.0)
    with pytest.raises(ValueError, match="frequency"):
        simulate_gammagamma_spend([1, -1], 6.25, 3.74, 15.44)


def test_extreme_parameters_stay_finite() -> None:
    # a tiny a gives drop-out probabilities that underflow: K must not overflow
    rfm = simulate_bgnbd(20_000, 5.0, 0.5, 0.02, 50.0, T=100.0, holdout=50.0, random_seed=3)
    assert np.isfinite(rfm.to_numpy(dtype=float)).all()
    validate_rfm(rfm)
    rfm = simulate_paretonbd(20_000, 5.0, 0.5, 0.02, 50.0, T=100.0, holdout=50.0,
                             random_seed=3)
    validate_rfm(rfm)


def test_gammagamma_spend() -> None:
    x = pd.Series(np.tile([0, 1, 3, 10], 50_000), index=pd.RangeIndex(200_000, name="id"))
    m = simulate_gammagamma_spend(x, **GG_TRUTH, random_seed=4)
    assert m.index.equals(x.index) and m.name == "monetary_value"
    assert (m[x == 0] == 0).all() and (m[x > 0] > 0).all()
    p, q, v = GG_TRUTH.values()
    # E[m_x | x] = p E[1/nu] = p v / (q - 1) for every x > 0
    for k in (1, 3, 10):
        _within_se(m[x == k].to_numpy(), p * v / (q - 1.0))
    # Var[m_x | nu] = p / (x nu^2): the spread shrinks with x
    assert m[x == 10].std() < m[x == 1].std()


# --------------------------------------------------------------------------------------
# exactness: closed forms of each model vs Monte Carlo
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sanity_frames() -> dict[str, pd.DataFrame]:
    T = uniform_observation_lengths(N_SANITY, 52.0, resolution=DAY, random_seed=100)
    return {
        name: simulate(N_SANITY, *truth.values(), T=T, holdout=HOLDOUT, random_seed=101 + i)
        for i, (name, (simulate, truth)) in enumerate(sorted(SIMULATORS.items()))
    }


@pytest.mark.parametrize("name", sorted(SIMULATORS))
def test_mean_frequency_matches_expected_purchases(
        name: str, sanity_frames: dict[str, pd.DataFrame]) -> None:
    rfm = sanity_frames[name]
    model = _with_params(name, SIMULATORS[name][1])
    T, inverse = np.unique(rfm["T"].to_numpy(), return_inverse=True)  # a daily grid
    x = rfm["frequency"].to_numpy(float)
    # E[X(T_i)] averaged over the customers' own T: the simulated mean must match
    expected = np.asarray(model.expected_purchases_new_customer(T))[inverse]
    _within_se(x, float(expected.mean()))
    # continuing the same customers through the holdout gives X(T + h)
    total = x + rfm["frequency_holdout"].to_numpy(float)
    expected = np.asarray(model.expected_purchases_new_customer(T + HOLDOUT))[inverse]
    _within_se(total, float(expected.mean()))


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd"])
def test_frequency_histogram_matches_pmf(name: str) -> None:
    simulate, truth = SIMULATORS[name]
    rfm = simulate(N_SANITY, *truth.values(), T=39.0, random_seed=200)
    model = _with_params(name, truth)
    counts = np.bincount(rfm["frequency"].to_numpy(), minlength=8)[:8]
    probs = np.asarray(model.purchase_count_probability(np.arange(8), 39.0))
    se = np.sqrt(N_SANITY * probs * (1 - probs))
    z = (counts - N_SANITY * probs) / se
    assert np.all(np.abs(z) < 4), z


@pytest.mark.parametrize("name", sorted(SIMULATORS))
def test_holdout_matches_conditional_expectation(
        name: str, sanity_frames: dict[str, pd.DataFrame]) -> None:
    """E[x_holdout] = E[E[Y(h) | x, t_x, T]] within every frequency group.

    The conditional expectation depends on recency through P(alive), so a wrong recency
    distribution (or a holdout not continuing the same process) shows up here.
    """
    rfm = sanity_frames[name]
    model = _with_params(name, SIMULATORS[name][1])
    predicted = model.expected_purchases(rfm, HOLDOUT).to_numpy()
    actual = rfm["frequency_holdout"].to_numpy(float)
    group = np.minimum(rfm["frequency"].to_numpy(), 6)
    for g in np.unique(group):
        sel = group == g
        _within_se(actual[sel] - predicted[sel], 0.0)
    _within_se(actual - predicted, 0.0)


# --------------------------------------------------------------------------------------
# recovery: simulate 200k customers, fit, every estimate within 3 SE of the truth
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "seed"), [("bgnbd", 301), ("mbgnbd", 302),
                                            ("paretonbd", 303)])
def test_mle_recovers_parameters(name: str, seed: int) -> None:
    cls = _model_class(name)
    simulate, truth = SIMULATORS[name]
    # acquisition over a year at daily resolution (T on the daily grid, exact recency): the
    # likelihood is exact, and the few hundred distinct T values keep the fit fast
    T = uniform_observation_lengths(N_RECOVERY, 52.0, resolution=DAY, random_seed=seed)
    rfm = simulate(N_RECOVERY, *truth.values(), T=T, random_seed=seed + 1000)
    model = cls().fit(rfm)
    assert model.converged_
    est, se = model.params_, model.standard_errors_
    z = (est - pd.Series(truth)) / se
    report = pd.DataFrame({"truth": pd.Series(truth), "estimate": est, "se": se, "z": z})
    assert (z.abs() < 3).all(), f"\n{report}"


def test_gammagamma_recovers_parameters() -> None:
    cls = _model_class("gammagamma")
    T = uniform_observation_lengths(N_RECOVERY, 52.0, random_seed=401)
    rfm = simulate_bgnbd(N_RECOVERY, *BG_TRUTH.values(), T=T,
                         spend=tuple(GG_TRUTH.values()), random_seed=402)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it may warn about the x = 0 customers it drops
        model = cls().fit(rfm)
    z = (model.params_ - pd.Series(GG_TRUTH)) / model.standard_errors_
    assert (z.abs() < 3).all(), f"\n{pd.DataFrame({'est': model.params_, 'z': z})}"


def test_transaction_log_round_trip() -> None:
    """Transactions → calibration/holdout RFM → BG/NBD fit → holdout forecast.

    Dates have daily resolution, so purchases on the same day merge (about 2% of them at
    these parameters): that biases the fit slightly (alpha by ~5%), so the tolerances
    here are relative, not in standard errors.
    """
    cls = _model_class("bgnbd")
    tx = simulate_transactions(60_000, *BG_TRUTH.values(), start_date="2021-01-04",
                               acquisition_days=182, observation_days=364, holdout_days=91,
                               random_seed=500)
    assert list(tx.columns) == ["customer_id", "date", "amount"]
    assert tx["customer_id"].nunique() == 60_000
    assert tx["date"].min() >= pd.Timestamp("2021-01-04")
    assert tx["date"].max() <= pd.Timestamp("2021-01-04") + pd.Timedelta(days=364 + 91 - 1)
    first = tx.groupby("customer_id")["date"].min()
    assert first.max() < pd.Timestamp("2021-01-04") + pd.Timedelta(days=182)
    calibration_end = pd.Timestamp("2021-01-04") + pd.Timedelta(days=363)
    split = calibration_holdout_split(tx, calibration_end=calibration_end, time_unit="W")
    rfm = rfm_summary(tx, observation_end=calibration_end, time_unit="W")
    pd.testing.assert_frame_equal(rfm, split[rfm.columns], check_like=True)
    assert split["T"].between(26.0, 52.0).all()
    model = cls().fit(split)
    np.testing.assert_allclose(model.params_[list(BG_TRUTH)], list(BG_TRUTH.values()),
                               rtol=0.1)
    forecast = model.expected_purchases(split, 13.0).sum()
    assert forecast / split["frequency_holdout"].sum() == pytest.approx(1.0, abs=0.05)


# --------------------------------------------------------------------------------------
# agreement with lifetimes 0.11.3 (BetaGeoFitter, ModifiedBetaGeoFitter)
# --------------------------------------------------------------------------------------

FITTERS = {"bgnbd": "BetaGeoFitter", "mbgnbd": "ModifiedBetaGeoFitter"}
HORIZONS = (1.0, 13.0, 39.0, 104.0)


def _lifetimes_fit(lifetimes: ModuleType, name: str, rfm: pd.DataFrame) -> Any:
    """lifetimes fitted on the unique rows with weights, with the tightest tolerance it takes.

    lifetimes raises ``ConvergenceError`` whenever BFGS reports "precision loss", which at
    tolerances below ~1e-8 it often does even at the optimum (gradient ~1e-9): so try tight
    tolerances first and loosen until it accepts (its own default is 1e-7).
    """
    c = compress_rfm(rfm)
    errors = []
    for tol in (1e-9, 1e-8, 1e-7):
        fitter = getattr(lifetimes, FITTERS[name])()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                return fitter.fit(c.frequency, c.recency, c.T, weights=c.weights, tol=tol)
        except lifetimes.utils.ConvergenceError as exc:  # it prints, then raises
            errors.append(f"tol={tol}: {exc}")
    pytest.fail("lifetimes did not converge at any tolerance:\n" + "\n".join(errors))


def _compare_predictions(ours: Any, theirs: Any, rfm: pd.DataFrame, rtol: float) -> None:
    x, tx, T = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(ours.probability_alive(rfm).to_numpy(),
                               theirs.conditional_probability_alive(x, tx, T), rtol=rtol)
    for t in HORIZONS:
        expected = theirs.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)
        np.testing.assert_allclose(ours.expected_purchases(rfm, t).to_numpy(),
                                   np.asarray(expected), rtol=rtol, err_msg=f"t={t}")
    np.testing.assert_allclose(ours.expected_purchases_new_customer(np.array(HORIZONS)),
                               theirs.expected_number_of_purchases_up_to_time(
                                   np.array(HORIZONS)), rtol=rtol)


def _check_against_lifetimes(lifetimes: ModuleType, name: str, rfm: pd.DataFrame) -> None:
    ours = _model_class(name)().fit(rfm)
    theirs = _lifetimes_fit(lifetimes, name, rfm)
    names = list(ours.param_names)
    np.testing.assert_allclose(ours.params_[names], theirs.params_[names], rtol=1e-4)
    at_theirs = _with_params(name, theirs.params_.to_dict())
    # predictions depend on a customer only through (x, t_x, T): compare on the unique rows
    unique = compress_rfm(rfm).to_frame().drop(columns="weight")
    # every prediction at each side's own estimates …
    _compare_predictions(ours, theirs, unique, rtol=1e-4)
    # … and the formulas themselves, at identical parameters
    _compare_predictions(at_theirs, theirs, unique, rtol=1e-9)


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd"])
def test_agrees_with_lifetimes_on_cdnow(lifetimes: ModuleType, name: str,
                                        cdnow_rfm: pd.DataFrame) -> None:
    _check_against_lifetimes(lifetimes, name, cdnow_rfm)


@pytest.mark.parametrize(("name", "seed"), [("bgnbd", 601), ("mbgnbd", 602)])
def test_agrees_with_lifetimes_on_simulated(lifetimes: ModuleType, name: str,
                                            seed: int) -> None:
    simulate, truth = SIMULATORS[name]
    T = uniform_observation_lengths(100_000, 52.0, resolution=DAY, random_seed=seed)
    rfm = simulate(100_000, *truth.values(), T=T, resolution=DAY, random_seed=seed + 1000)
    _check_against_lifetimes(lifetimes, name, rfm)


def test_extreme_histories_where_lifetimes_mbg_breaks(lifetimes: ModuleType) -> None:
    """Heavy buyers and long horizons: lifetimes' MBG/NBD conditional expectation is NaN.

    lifetimes 0.11.3 evaluates 2F1(r+x, b+x+1; a+b+x; z) with scipy directly (its BG/NBD
    has an Euler-transform fallback, its MBG/NBD has none), so it returns NaN for
    x in the thousands at t = 1000. Ours stays finite and agrees wherever lifetimes works.
    """
    params = {"r": 0.525, "alpha": 6.18, "a": 0.891, "b": 1.614}
    rfm = pd.DataFrame({"frequency": [2000.0, 2000.0, 200.0, 50.0, 10_000.0],
                        "recency": [300.0, 399.9, 399.0, 399.0, 3999.0],
                        "T": [400.0, 400.0, 400.0, 400.0, 4000.0]})
    rfm.attrs["time_unit"] = "W"
    fitter = lifetimes.ModifiedBetaGeoFitter()
    fitter.params_ = pd.Series(params)
    ours = _with_params("mbgnbd", params)
    x, tx, T = (rfm[c].to_numpy() for c in ("frequency", "recency", "T"))
    for t in (39.0, 1000.0):
        with np.errstate(all="ignore"):  # its NaNs come with RuntimeWarnings
            theirs = np.asarray(fitter.conditional_expected_number_of_purchases_up_to_time(
                t, x, tx, T))
        mine = ours.expected_purchases(rfm, t).to_numpy()
        assert np.all(np.isfinite(mine)) and np.all(mine >= 0)
        ok = np.isfinite(theirs)
        np.testing.assert_allclose(mine[ok], theirs[ok], rtol=1e-6)
