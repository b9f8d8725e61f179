"""Covariates in every maximum-likelihood family, proved by simulation (issue 11).

Customers are drawn with their own parameters theta_i = theta exp(sign z_i'gamma)
(:mod:`clvmodels.models.links`, equation (1)) by ``registry.simulate(..., covariates=)``,
with one categorical covariate (3 levels) and one numeric covariate on every group the family
offers. Then, per family:

* every coefficient (and base parameter) is recovered within 3 standard errors;
* the two exact evaluation modes of :mod:`clvmodels.models.covariate_fit` (by pattern, by
  row) give the same fit, and the analytic gradient matches finite differences in both;
* empty covariate lists are the plain model; a reference-level customer with numeric
  covariate 0 is predicted exactly as the plain model with the base parameters;
* every prediction uses each customer's own parameters (equal to the plain model built from
  that customer's theta_i), in the direction the coefficient says.
"""

from __future__ import annotations

import copy
import functools
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from clvmodels.models import covariate_fit, registry
from clvmodels.models.covariate_fit import PATTERN, CovariatePlan

LEVELS = ["a", "b", "c"]  # "a" is the reference level (first in order)


def _coefs(group: str, b: float, c: float, age: float) -> dict[str, float]:
    return {f"{group}:channel[b]": b, f"{group}:channel[c]": c, f"{group}:age": age}


#: family -> (base parameters, true coefficients, simulator options, customers)
CASES: dict[str, tuple[dict[str, float], dict[str, float], dict[str, Any], int]] = {
    "bgnbd": (dict(r=0.8, alpha=4.0, a=0.8, b=2.5),
              {**_coefs("purchase", 0.4, -0.3, 0.2), **_coefs("dropout", 0.5, -0.4, 0.3)},
              {"T": 52.0}, 15_000),
    "mbgnbd": (dict(r=0.8, alpha=4.0, a=0.8, b=2.5),
               {**_coefs("purchase", 0.4, -0.3, 0.2), **_coefs("dropout", 0.5, -0.4, 0.3)},
               {"T": 52.0}, 15_000),
    "pnbd": (dict(r=0.7, alpha=5.0, s=0.8, beta=10.0),
             {**_coefs("purchase", 0.4, -0.3, 0.2), **_coefs("dropout", 0.5, -0.4, 0.3)},
             {"T": 52.0}, 8_000),
    "bgbb": (dict(alpha=1.2, beta=0.8, gamma=0.6, delta=2.5),
             {**_coefs("purchase", 0.4, -0.3, 0.2), **_coefs("dropout", 0.5, -0.4, 0.3)},
             {"T": 10}, 8_000),
    "sbg": (dict(alpha=0.7, beta=1.5), _coefs("dropout", 0.5, -0.4, 0.3), {}, 8_000),
    "gammagamma": (dict(p=6.0, q=3.5, v=15.0), _coefs("spend", 0.4, -0.3, 0.2), {}, 4_000),
}
FAMILIES = list(CASES)


def _covariates(n: int, seed: int, numeric: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = pd.DataFrame({"channel": rng.choice(LEVELS, n)})
    if numeric:
        out["age"] = rng.normal(0.0, 1.0, n)
    return out


def _options(name: str, n: int, seed: int) -> dict[str, Any]:
    opts = dict(CASES[name][2])
    rng = np.random.default_rng(seed + 7)
    if name == "sbg":
        opts["n_periods"] = rng.integers(1, 13, n)
    if name == "gammagamma":
        opts["frequency"] = rng.integers(1, 8, n)
    return opts


@functools.cache
def _data(name: str, numeric: bool = True, seed: int = 11) -> pd.DataFrame:
    base, coefs, _, n = CASES[name]
    if not numeric:
        coefs = {k: v for k, v in coefs.items() if not k.endswith(":age")}
    cov = _covariates(n, seed, numeric)
    return registry.simulate(name, n, params={**base, **coefs}, covariates=cov,
                             random_seed=seed + 1, **_options(name, n, seed))


def _groups(name: str, numeric: bool = True) -> dict[str, list[str]]:
    cols = ["channel", "age"] if numeric else ["channel"]
    groups = {k.partition(":")[0] for k in CASES[name][1]}
    return {f"{g}_covariates": cols for g in groups}


def _fit(name: str, numeric: bool = True, **kwargs: Any) -> Any:
    cls = registry.get_model(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Gamma-Gamma's correlation notice
        return cls(**_groups(name, numeric), **kwargs).fit(_data(name, numeric))


@functools.cache
def _fitted(name: str) -> Any:
    return _fit(name)


# --------------------------------------------------------------------------------------
# recovery: every parameter within 3 standard errors of the truth
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_simulation_recovers_every_coefficient(name: str) -> None:
    base, coefs, _, _ = CASES[name]
    model = _fitted(name)
    assert model.converged_
    assert model.data_summary_["covariate_evaluation"] == "row"  # a continuous covariate
    assert model.coefficient_names_ == list(coefs)
    truth = {**base, **coefs}
    est, se = model.params_, model.standard_errors_
    assert np.all(np.isfinite(se)) and np.all(se > 0)
    z = {k: (est[k] - v) / se[k] for k, v in truth.items()}
    assert all(abs(v) < 3.0 for v in z.values()), z
    # the coefficients are informative: each truly non-zero one is told apart from 0
    assert all(abs(est[k]) / se[k] > 2.0 for k in coefs), (est, se)
    # the simulated frame carries the covariates
    assert {"channel", "age"} <= set(_data(name).columns)


def test_simulate_with_covariates_checks_its_input() -> None:
    base, coefs, opts, _ = CASES["bgnbd"]
    cov = _covariates(50, 1)
    with pytest.raises(ValueError, match="covariates="):
        registry.simulate("bgnbd", 50, params={**base, **coefs}, **opts)
    with pytest.raises(ValueError, match="one row per customer"):
        registry.simulate("bgnbd", 40, params={**base, **coefs}, covariates=cov, **opts)
    partial = {k: v for k, v in coefs.items() if k != "dropout:channel[c]"}
    with pytest.raises(ValueError, match=r"missing \['dropout:channel\[c\]'\]"):
        registry.simulate("bgnbd", 50, params={**base, **partial}, covariates=cov, **opts)
    with pytest.raises(ValueError, match="spend"):
        registry.simulate("bgnbd", 50, params={**base, "spend:age": 1.0}, covariates=cov,
                          **opts)
    # a fitted covariate model simulates from its own layout and coefficients
    again = registry.simulate(_fitted("bgnbd"), 50, covariates=cov, random_seed=3, **opts)
    assert len(again) == 50 and list(again["channel"]) == list(cov["channel"])
    # all coefficients 0: exactly the plain simulator's draws (same stream)
    zero = {k: 0.0 for k in coefs}
    with_zero = registry.simulate("bgnbd", 50, params={**base, **zero}, covariates=cov,
                                  random_seed=5, **opts)
    plain = registry.simulate("bgnbd", 50, params=base, random_seed=5, **opts)
    pd.testing.assert_frame_equal(with_zero[plain.columns], plain)


# --------------------------------------------------------------------------------------
# the two evaluation modes, and the analytic gradient
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_pattern_and_row_modes_give_the_same_fit(name: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    by_pattern = _fit(name, numeric=False)
    assert by_pattern.data_summary_["covariate_evaluation"] == "pattern"
    monkeypatch.setattr(covariate_fit, "MAX_PATTERNS", 0)
    by_row = _fit(name, numeric=False)
    assert by_row.data_summary_["covariate_evaluation"] == "row"
    assert by_row.log_likelihood_ == pytest.approx(by_pattern.log_likelihood_, rel=1e-6)
    np.testing.assert_allclose(by_row.params_, by_pattern.params_, rtol=1e-6, atol=1e-6)
    # the categorical-only fit recovers its coefficients too
    coefs = {k: v for k, v in CASES[name][1].items() if not k.endswith(":age")}
    z = (by_pattern.params_[list(coefs)] - pd.Series(coefs)) / by_pattern.standard_errors_
    assert np.all(np.abs(z[list(coefs)]) < 3.0), z


def _objective(name: str, numeric: bool) -> tuple[Any, np.ndarray, str]:
    """The fit's objective (mean negative LL in (log theta, gamma)) and a point near the
    optimum, on this family's data."""
    model = registry.get_model(name)(**_groups(name, numeric))
    data = _data(name, numeric)
    layout = model._learn_layout(data)
    z, codes = layout.encoding.patterns(data)
    patterns = np.zeros((codes.max() + 1, z.shape[1]))
    patterns[codes] = z
    d = model._fit_data(data, None, {PATTERN: codes})
    plan = CovariatePlan(model, d, layout, patterns)
    base, coefs, _, _ = CASES[name]
    names = [k for k in coefs if numeric or not k.endswith(":age")]
    u = np.concatenate([np.log(list(base.values())), [coefs[k] for k in names]])
    u = u + np.random.default_rng(3).normal(0.0, 0.05, u.size)
    return model._objective(d, plan), u, plan.mode


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("mode", ["pattern", "row"])
def test_analytic_gradient_matches_finite_differences(name: str, mode: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if mode == "row":
        monkeypatch.setattr(covariate_fit, "MAX_PATTERNS", 0)
    f, u, got = _objective(name, numeric=False)
    assert got == mode
    value, grad = f(u)
    assert np.isfinite(value)
    h = 1e-6
    fd = np.array([(f(u + h * e)[0] - f(u - h * e)[0]) / (2 * h) for e in np.eye(u.size)])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("mode", ["pattern", "row"])
def test_plan_hessian_matches_finite_differences(name: str, mode: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan's Hessian in (log theta, gamma) — sum_i w_i B_i' h_i B_i — equals central
    differences of the exact gradient of the whole objective."""
    if mode == "row":
        monkeypatch.setattr(covariate_fit, "MAX_PATTERNS", 0)
    f, u, got = _objective(name, numeric=mode == "row")
    assert got == mode
    model = registry.get_model(name)(**_groups(name, mode == "row"))
    data = _data(name, mode == "row")
    layout = model._learn_layout(data)
    z, codes = layout.encoding.patterns(data)
    patterns = np.zeros((codes.max() + 1, z.shape[1]))
    patterns[codes] = z
    d = model._fit_data(data, None, {PATTERN: codes})
    plan = CovariatePlan(model, d, layout, patterns)
    h = covariate_fit.objective_hessian(model, plan, u, d.n_customers)
    eps = 1e-5
    fd = np.empty_like(h)
    for j in range(len(u)):
        up, dn = u.copy(), u.copy()
        up[j] += eps
        dn[j] -= eps
        fd[:, j] = (f(up)[1] - f(dn)[1]) / (2 * eps)
    np.testing.assert_allclose(h, 0.5 * (fd + fd.T), rtol=1e-4, atol=1e-7)



@pytest.mark.parametrize("name", FAMILIES)
def test_row_gradient_with_a_continuous_covariate(name: str) -> None:
    f, u, mode = _objective(name, numeric=True)
    assert mode == "row"
    _, grad = f(u)
    h = 1e-6
    fd = np.array([(f(u + h * e)[0] - f(u - h * e)[0]) / (2 * h) for e in np.eye(u.size)])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------------------
# no covariates = the plain model; a reference customer = the plain model
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_empty_covariate_lists_are_the_plain_model(name: str) -> None:
    cls = registry.get_model(name)
    data = _data(name, numeric=False)
    empty = {k: [] for k in _groups(name)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plain = cls().fit(data)
        none = cls(**empty).fit(data)
    assert not none.has_covariates and none.coefficient_names_ == []
    assert none.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-8)
    np.testing.assert_allclose(none.params_, plain.params_, rtol=1e-8)


def _reference_rows(name: str) -> pd.DataFrame:
    """Three customers of the family's data, made reference-level with age 0."""
    rows = _data(name).iloc[:3].copy()
    rows["channel"] = "a"
    rows["age"] = 0.0
    return rows


def _predictions(model: Any, rows: pd.DataFrame, covariates: pd.DataFrame | None
                 ) -> dict[str, np.ndarray]:
    """Every prediction of the family for ``rows`` (new-customer ones for ``covariates``)."""
    kw = {} if covariates is None else {"covariates": covariates}
    out: dict[str, Any] = {}
    kind = model.data_kind
    if kind in ("continuous", "discrete"):
        out["alive"] = model.probability_alive(rows)
        out["expected"] = model.expected_purchases(rows, 6)
        out["cumulative"] = model.cumulative_expected_purchases(rows, np.array([1.0, 4.0, 9.0]))
        out["new"] = model.expected_purchases_new_customer(np.array([2.0, 5.0]), **kw)
        out["pmf"] = model.purchase_count_probability(np.arange(4), 5.0, **kw)
        out["conditional_pmf"] = model.conditional_purchase_count_probability(
            rows, np.arange(3), 5.0)
        out["histogram"] = model.expected_frequency_histogram(rows, 3)
        if hasattr(model, "expected_discounted_transactions"):
            out["dert"] = model.expected_discounted_transactions(rows, 0.1)
    elif kind == "spend":
        out["spend"] = model.expected_spend(rows)
        out["population"] = model.population_mean_spend(**kw)
    else:
        t = np.arange(1, 5)
        out["survival"] = model.survival(t, **kw)
        out["retention"] = model.retention_rate(t, **kw)
        out["churn"] = model.churn_probability(t, **kw)
        out["del"] = model.discounted_expected_lifetime(0.1, **kw)
        out["derl"] = model.discounted_expected_residual_lifetime(rows, 0.1)
        out["derl_horizon"] = model.discounted_expected_residual_lifetime(rows, 0.1,
                                                                          horizon=6)
        out["conditional_survival"] = model.conditional_survival(rows, 3)
        out["renewals"] = model.expected_renewals(rows, 4)
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def _known_unit(model: Any) -> Any:
    if getattr(model, "time_unit_", None) is None:  # discrete / contractual: name a period
        model = copy.copy(model)
        model.time_unit_ = "Y"
    return model


@pytest.mark.parametrize("name", FAMILIES)
def test_reference_customer_is_predicted_as_the_plain_model(name: str) -> None:
    model = _known_unit(_fitted(name))
    cls = type(model)
    base = {k: float(model.params_[k]) for k in cls.param_names}
    plain = cls.from_params(time_unit=model.time_unit_, **base)
    rows = _reference_rows(name)
    got = _predictions(model, rows, rows)
    want = _predictions(plain, rows, None)
    for key, value in want.items():
        if key in ("new", "pmf", "population", "survival", "retention", "churn", "del"):
            value = np.broadcast_to(value, got[key].shape)  # one row per profile
        np.testing.assert_allclose(got[key], value, rtol=1e-10, atol=1e-14, err_msg=key)
    with pytest.raises(ValueError, match="covariates"):
        _predictions(model, rows, None)  # a new customer's prediction needs a profile


# --------------------------------------------------------------------------------------
# predictions use each customer's own parameters
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_predictions_use_each_customers_own_parameters(name: str) -> None:
    model = _known_unit(_fitted(name))
    cls = type(model)
    rows = _data(name).iloc[:5]
    got = _predictions(model, rows, rows)
    own = model._p(rows)
    for i in range(len(rows)):
        theta = {k: float(np.ravel(v)[i]) if np.ndim(v) else float(v) for k, v in own.items()}
        plain = cls.from_params(time_unit=model.time_unit_, **theta)
        want = _predictions(plain, rows.iloc[[i]], None)
        for key, value in want.items():
            mine = got[key][i] if key != "histogram" else None
            if mine is None:
                continue
            np.testing.assert_allclose(mine, np.reshape(value, np.shape(mine)), rtol=1e-10,
                                       atol=1e-14, err_msg=f"{key}, customer {i}")
    # the histogram sums the customers' own expectations
    hist = sum(_predictions(cls.from_params(time_unit=model.time_unit_, **{
        k: float(np.ravel(v)[i]) if np.ndim(v) else float(v) for k, v in own.items()}),
        rows.iloc[[i]], None).get("histogram", np.zeros(1)) for i in range(len(rows)))
    if "histogram" in got:
        np.testing.assert_allclose(got["histogram"], hist, rtol=1e-10)


def _only(model: Any, group: str) -> Any:
    """A copy of ``model`` with every coefficient outside ``group`` set to 0."""
    out = copy.deepcopy(model)
    params = out.params_.copy()
    for k in out.coefficient_names_:
        if not k.startswith(f"{group}:"):
            params[k] = 0.0
    out.params_ = params
    return out


def _twins(name: str, recent: bool = False) -> pd.DataFrame:
    """Two customers with the same history: channel b (positive true coefficients) and c
    (negative), same age. ``recent``: the last purchase at T (surely alive in the Pareto/NBD,
    so only the purchase rate matters), else well before T."""
    row = _data(name).iloc[[0]]
    hist = {"continuous": {"frequency": 3, "recency": 52.0 if recent else 20.0, "T": 52.0},
            "discrete": {"frequency": 3, "recency": 10 if recent else 6, "T": 10},
            "contractual": {"periods": 3, "churned": False},
            "spend": {"frequency": 3, "monetary_value": 40.0}}[registry.get_model(name).data_kind]
    out = pd.concat([row, row])
    for k, v in hist.items():
        out[k] = v
    out["channel"] = ["b", "c"]
    out["age"] = 0.5
    out.index = pd.Index(["b", "c"], name=row.index.name)
    return out


@pytest.mark.parametrize("name", FAMILIES)
def test_covariates_move_predictions_in_the_coefficients_direction(name: str) -> None:
    model = _known_unit(_fitted(name))
    twins, recent = _twins(name), _twins(name, recent=True)
    kind = model.data_kind
    if kind in ("continuous", "discrete"):
        # a higher purchase rate (channel b > c): more expected purchases, higher DERT
        buy = _only(model, "purchase")
        assert buy.params_["purchase:channel[b]"] > 0 > buy.params_["purchase:channel[c]"]
        e = buy.expected_purchases(recent, 10)
        assert e["b"] > e["c"]
        new = buy.expected_purchases_new_customer(10.0, covariates=twins)
        assert new[0] > new[1]
        if hasattr(buy, "expected_discounted_transactions"):
            dert = buy.expected_discounted_transactions(recent, 0.1)
            assert dert["b"] > dert["c"]
        # a higher drop-out (channel b > c): lower P(alive), fewer expected purchases
        leave = _only(model, "dropout")
        assert leave.params_["dropout:channel[b]"] > 0 > leave.params_["dropout:channel[c]"]
        alive = leave.probability_alive(twins)
        assert alive["b"] < alive["c"]
        assert leave.expected_purchases(twins, 10)["b"] < leave.expected_purchases(twins,
                                                                                     10)["c"]
    elif kind == "spend":
        spend = model.expected_spend(twins)
        assert spend["b"] > spend["c"]
        pop = model.population_mean_spend(covariates=twins)
        assert pop[0] > pop[1]
    else:
        derl = model.discounted_expected_residual_lifetime(twins, 0.1)
        assert derl["b"] < derl["c"]  # more churn, shorter residual lifetime
        s = model.survival(np.array([2, 5]), covariates=twins)
        assert np.all(s[0] < s[1])
        life = model.discounted_expected_lifetime(0.1, covariates=twins)
        assert life[0] < life[1]


def test_from_params_builds_a_covariate_model() -> None:
    fitted = _fitted("pnbd")
    cls = type(fitted)
    params = fitted.params_.to_dict()
    rows = _data("pnbd").iloc[:20]
    by_frame = cls.from_params(time_unit="W", covariates=_covariates(30, 2), **params)
    by_layout = cls.from_params(time_unit="W", covariates=fitted.covariate_layout_, **params)
    for known in (by_frame, by_layout):
        assert known.coefficient_names_ == fitted.coefficient_names_
        assert known.has_covariates and known.covariate_columns == ["channel", "age"]
        pd.testing.assert_series_equal(known.probability_alive(rows),
                                       fitted.probability_alive(rows), rtol=1e-14)
        assert known.standard_errors_.isna().all()
    # simulating from the built model is simulating from its parameters
    cov, opts = _covariates(40, 4), CASES["pnbd"][2]
    pd.testing.assert_frame_equal(
        registry.simulate(by_frame, 40, covariates=cov, random_seed=9, **opts),
        registry.simulate("pnbd", 40, params=params, covariates=cov, random_seed=9, **opts))
    with pytest.raises(ValueError, match="covariates="):
        cls.from_params(**params)
    partial = {k: v for k, v in params.items() if k != "purchase:age"}
    with pytest.raises(ValueError, match="do not match"):
        cls.from_params(covariates=fitted.covariate_layout_, **partial)
    # plain from_params is untouched
    plain = cls.from_params(**{k: params[k] for k in cls.param_names})
    assert not plain.has_covariates and list(plain.params_.index) == list(cls.param_names)
