"""Covariates seam (issue 11): the encoding of attribute columns, hostile inputs to covariate
fits and predictions, persistence, the likelihood-ratio test and ``join_customers``.

Data are simulated per covariate pattern from the BG/NBD with the links' equation (1):
alpha_i = alpha exp(-gamma_purchase' z_i) (clvmodels.models.links), so the truth is known.
Maximum likelihood only (no sampling here).
"""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels import (
    BetaGeo,
    ConvergenceWarning,
    IdentificationError,
    ModelFileError,
    ParetoNBD,
    ValidationError,
    join_customers,
    load_model,
    lr_test,
)
from clvmodels.covariates import CovariateEncoding
from clvmodels.simulate import simulate_bgnbd

BASE = {"r": 0.5, "alpha": 4.0, "a": 0.8, "b": 2.5}


def simulate(levels: dict[str, float], n_per: int, seed: int = 1, column: str = "channel",
             T: float = 52.0) -> pd.DataFrame:
    """BG/NBD customers, ``n_per`` per level of ``column``; a level with purchase effect g
    has alpha * exp(-g) (a positive g raises the purchase rate)."""
    frames = []
    for k, (level, g) in enumerate(levels.items()):
        part = simulate_bgnbd(n_per, r=BASE["r"], alpha=BASE["alpha"] * np.exp(-g),
                              a=BASE["a"], b=BASE["b"], T=T, random_seed=seed + k)
        part[column] = level
        frames.append(part)
    out = pd.concat(frames)
    out.index = pd.Index([f"c{i}" for i in range(len(out))], name="customer_id")
    out.attrs = dict(frames[0].attrs)
    return out


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    out = simulate({"web": 0.0, "store": 0.7, "phone": -0.4}, 1500, seed=11)
    out["age"] = np.random.default_rng(5).normal(40.0, 10.0, len(out))
    return out


@pytest.fixture(scope="module")
def fitted(data: pd.DataFrame) -> BetaGeo:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return BetaGeo(purchase_covariates=["channel"]).fit(data)


@pytest.fixture(scope="module")
def fitted_numeric(data: pd.DataFrame) -> BetaGeo:
    return BetaGeo(purchase_covariates=["age"], dropout_covariates=["channel"]).fit(data)


# ---------------------------------------------------------------------------------------
# CovariateEncoding
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["object", "string", "category"])
def test_text_dtypes_are_categorical_with_smallest_level_as_reference(dtype: str) -> None:
    frame = pd.DataFrame({"ch": pd.Series(["web", "app", "store", "app"], dtype=dtype)})
    enc = CovariateEncoding.learn(frame, ["ch"])
    col = enc.columns[0]
    assert col.kind == "categorical"
    assert col.reference == "app"
    assert enc.design_names == ["ch[store]", "ch[web]"]
    np.testing.assert_array_equal(enc.design(frame),
                                  [[0, 1], [0, 0], [1, 0], [0, 0]])


def test_bool_is_categorical_with_false_as_reference() -> None:
    frame = pd.DataFrame({"vip": [True, False, True]})
    enc = CovariateEncoding.learn(frame, ["vip"])
    assert enc.columns[0].kind == "categorical"
    assert enc.columns[0].reference is False
    assert enc.design_names == ["vip[True]"]
    np.testing.assert_array_equal(enc.design(frame)[:, 0], [1, 0, 1])


def test_categorical_reference_is_its_first_category_not_the_smallest() -> None:
    cat = pd.Categorical(["a", "z", "m"], categories=["z", "a", "m"])
    enc = CovariateEncoding.learn(pd.DataFrame({"ch": cat}), ["ch"])
    assert enc.columns[0].reference == "z"
    assert enc.design_names == ["ch[a]", "ch[m]"]


def test_reference_override_and_its_refusals() -> None:
    frame = pd.DataFrame({"ch": ["web", "app", "store"], "age": [20.0, 30.0, 40.0]})
    enc = CovariateEncoding.learn(frame, ["ch"], reference={"ch": "web"})
    assert enc.columns[0].reference == "web"
    assert enc.design_names == ["ch[app]", "ch[store]"]
    with pytest.raises(ValueError, match="'mail' is not a level of column 'ch'"):
        CovariateEncoding.learn(frame, ["ch"], reference={"ch": "mail"})
    with pytest.raises(ValueError, match="'age' is numeric"):
        CovariateEncoding.learn(frame, ["ch", "age"], reference={"age": 30.0})
    with pytest.raises(ValueError, match="not covariates"):
        CovariateEncoding.learn(frame, ["ch"], reference={"gender": "f"})
    with pytest.raises(ValueError, match="not a level"):
        BetaGeo(purchase_covariates=["ch"], covariate_reference={"ch": "mail"}).fit(
            simulate({"web": 0.0, "app": 0.3}, 50, column="ch"))


def test_numeric_as_given_and_standardised() -> None:
    fit_frame = pd.DataFrame({"age": [20.0, 30.0, 40.0, 50.0]})
    raw = CovariateEncoding.learn(fit_frame, ["age"])
    assert raw.columns[0].kind == "numeric"
    assert raw.design_names == ["age"]
    new = pd.DataFrame({"age": [35.0, 60.0]})
    np.testing.assert_array_equal(raw.design(new)[:, 0], [35.0, 60.0])

    std = CovariateEncoding.learn(fit_frame, ["age"], standardize=True)
    mean, sd = 35.0, float(np.std([20.0, 30.0, 40.0, 50.0]))
    assert std.columns[0].center == pytest.approx(mean)
    assert std.columns[0].scale == pytest.approx(sd)
    # the fitting data's mean and deviation are reapplied to new data, not relearned
    np.testing.assert_allclose(std.design(new)[:, 0], [(35.0 - mean) / sd, (60.0 - mean) / sd])
    back = CovariateEncoding.from_dict(json.loads(json.dumps(std.to_dict())))
    np.testing.assert_allclose(back.design(new), std.design(new))


def test_design_names_and_positions_of_several_columns() -> None:
    frame = pd.DataFrame({"ch": ["b", "a", "c"], "age": [1.0, 2.0, 3.0],
                          "g": pd.Categorical(["f", "m", "f"])})
    enc = CovariateEncoding.learn(frame, ["ch", "age", "g"])
    assert enc.design_names == ["ch[b]", "ch[c]", "age", "g[m]"]
    assert enc.positions(["g", "ch"]) == [3, 0, 1]
    np.testing.assert_array_equal(enc.design(frame),
                                  [[1, 0, 1, 0], [0, 0, 2, 1], [0, 1, 3, 0]])


def test_encoding_round_trip() -> None:
    frame = pd.DataFrame({"ch": ["b", "a", "c"], "age": [1.0, 2.0, 4.0], "vip": [True, False,
                                                                                 False]})
    enc = CovariateEncoding.learn(frame, ["ch", "age", "vip"], reference={"ch": "c"},
                                  standardize=True)
    back = CovariateEncoding.from_dict(json.loads(json.dumps(enc.to_dict())))
    assert back == enc
    assert back.design_names == enc.design_names
    np.testing.assert_array_equal(back.design(frame), enc.design(frame))


@pytest.mark.parametrize("payload", [
    {},
    {"columns": [{"name": "ch", "kind": "categorical", "levels": ["a", "b"]}]},
    {"columns": [{"name": "ch", "kind": "categorical", "levels": ["a", "b"],
                  "reference": "z"}]},
    {"columns": [{"name": "ch", "kind": "categorical", "levels": ["a", "a"],
                  "reference": "a"}]},
    {"columns": [{"name": "x", "kind": "numeric", "center": 0.0, "scale": 0.0}]},
    {"columns": [{"name": "x", "kind": "numeric", "center": float("nan"), "scale": 1.0}]},
    {"columns": [{"name": "x", "kind": "ordinal"}]},
    {"columns": [{"name": "x", "kind": "numeric", "center": 0.0, "scale": 1.0},
                 {"name": "x", "kind": "numeric", "center": 0.0, "scale": 1.0}]},
    {"columns": "x"},
])
def test_encoding_refuses_malformed_payloads(payload: dict) -> None:
    with pytest.raises(ValueError):
        CovariateEncoding.from_dict(payload)


# ---------------------------------------------------------------------------------------
# hostile inputs
# ---------------------------------------------------------------------------------------


def test_fit_recovers_the_effects_and_names_the_coefficients(fitted: BetaGeo) -> None:
    names = ["purchase:channel[store]", "purchase:channel[web]"]
    assert fitted.coefficient_names_ == names
    assert list(fitted.params_.index) == ["r", "alpha", "a", "b", *names]
    # truth relative to the reference "phone" (-0.4): store +1.1, web +0.4
    est, se = fitted.params_[names], fitted.standard_errors_[names]
    assert abs(est.iloc[0] - 1.1) < 4 * se.iloc[0]
    assert abs(est.iloc[1] - 0.4) < 4 * se.iloc[1]
    assert fitted.data_summary_["covariate_evaluation"] == "pattern"
    assert fitted.data_summary_["n_covariate_patterns"] == 3


def test_missing_column_at_fit_and_at_predict(data: pd.DataFrame, fitted: BetaGeo) -> None:
    with pytest.raises(ValidationError, match=r"\['gender'\] not found in the fitting data"):
        BetaGeo(purchase_covariates=["gender"]).fit(data)
    with pytest.raises(ValidationError, match=r"\['channel'\] not found"):
        fitted.probability_alive(data.drop(columns="channel"))
    with pytest.raises(ValidationError, match=r"\['channel'\] not found"):
        fitted.expected_purchases(data.drop(columns="channel").head(3), 10.0)


@pytest.mark.parametrize("missing", [np.nan, None])
def test_missing_values_name_column_and_rows(data: pd.DataFrame, fitted: BetaGeo,
                                             missing: object) -> None:
    bad = data.copy()
    bad["channel"] = bad["channel"].astype(object)
    bad.loc[["c7", "c42"], "channel"] = missing
    with pytest.raises(ValidationError, match=r"'channel' has missing values in 2 row\(s\): "
                                              r"'c7', 'c42'"):
        BetaGeo(purchase_covariates=["channel"]).fit(bad)
    with pytest.raises(ValidationError, match=r"'channel' has missing values .*'c7', 'c42'"):
        fitted.probability_alive(bad)
    num = data.copy()
    num.loc["c3", "age"] = np.nan
    with pytest.raises(ValidationError, match=r"'age' has missing values in 1 row\(s\): 'c3'"):
        BetaGeo(purchase_covariates=["age"]).fit(num)


def test_infinite_numbers_name_column_and_rows(data: pd.DataFrame,
                                               fitted_numeric: BetaGeo) -> None:
    bad = data.copy()
    bad.loc[["c5", "c9"], "age"] = [np.inf, -np.inf]
    with pytest.raises(ValidationError, match=r"'age' has infinite values in 2 row\(s\): "
                                              r"'c5', 'c9'"):
        BetaGeo(purchase_covariates=["age"]).fit(bad)
    with pytest.raises(ValidationError, match=r"'age' has infinite values .*'c5', 'c9'"):
        fitted_numeric.probability_alive(bad)


def test_text_in_a_column_that_was_numeric(data: pd.DataFrame, fitted_numeric: BetaGeo) -> None:
    bad = data.head(6).copy()
    bad["age"] = bad["age"].astype(object)
    bad.loc["c2", "age"] = "forty"
    with pytest.raises(ValidationError, match="'age' was numeric when the model was fitted"):
        fitted_numeric.probability_alive(bad)
    as_text = data.head(6).copy()
    as_text["age"] = as_text["age"].astype(str)
    with pytest.raises(ValidationError, match="'age' was numeric"):
        fitted_numeric.expected_purchases(as_text, 5.0)


def test_text_in_a_numeric_column_names_the_rows(data: pd.DataFrame,
                                                 fitted_numeric: BetaGeo) -> None:
    bad = data.head(6).copy()
    bad["age"] = bad["age"].astype(object)
    bad.loc["c2", "age"] = "forty"
    with pytest.raises(ValidationError, match="'c2'"):
        fitted_numeric.probability_alive(bad)


def test_unseen_level_raises_or_maps_to_the_reference(data: pd.DataFrame,
                                                      fitted: BetaGeo) -> None:
    new = data.head(4).copy()
    new["channel"] = new["channel"].astype(object)
    new.loc[["c1", "c3"], "channel"] = "tiktok"
    with pytest.raises(ValidationError, match=r"'channel' has level\(s\) not seen .*tiktok.*"
                                              r"2 row\(s\): 'c1', 'c3'.*unseen_levels"):
        fitted.probability_alive(new)

    lenient = copy.copy(fitted)
    lenient.unseen_levels = "reference"
    as_reference = new.copy()
    as_reference.loc[["c1", "c3"], "channel"] = "phone"  # the reference level
    for method in ("probability_alive", "expected_purchases"):
        args = (10.0,) if method == "expected_purchases" else ()
        got = getattr(lenient, method)(new, *args)
        want = getattr(fitted, method)(as_reference, *args)
        pd.testing.assert_series_equal(got, want)
        # and the mapping is not a no-op: the unseen rows differ from their own levels
        assert not np.allclose(got.to_numpy(), getattr(fitted, method)(data.head(4),
                                                                       *args).to_numpy())


def test_unseen_levels_option_at_construction(data: pd.DataFrame) -> None:
    m = BetaGeo(purchase_covariates=["channel"], unseen_levels="reference").fit(data)
    new = data.head(2).copy()
    new["channel"] = ["mail", "phone"]
    p = m.probability_alive(new)
    assert p.iloc[0] == pytest.approx(
        m.probability_alive(new.assign(channel=["phone", "phone"])).iloc[0], rel=1e-12)


def test_constant_covariates_are_not_identified(data: pd.DataFrame) -> None:
    const = data.assign(region="north", score=2.5)
    with pytest.raises(IdentificationError, match=r"'score' takes the single value 2\.5"):
        BetaGeo(purchase_covariates=["score"]).fit(const)
    with pytest.raises(IdentificationError, match="'region' takes the single level 'north'"):
        BetaGeo(purchase_covariates=["region"]).fit(const)
    # beside a covariate that does vary, the constant one is not silently dropped
    with pytest.raises(IdentificationError, match="'region'"):
        BetaGeo(purchase_covariates=["channel", "region"]).fit(const)


def test_collinear_covariates_are_not_identified(data: pd.DataFrame) -> None:
    two = data.assign(age_months=data["age"] * 12.0 + 3.0)
    with pytest.raises(IdentificationError, match="'age', 'age_months' are collinear"):
        BetaGeo(purchase_covariates=["age", "age_months"]).fit(two)
    dup = data.assign(channel2=data["channel"])
    with pytest.raises(IdentificationError, match="collinear"):
        ParetoNBD(dropout_covariates=["channel", "channel2"]).fit(dup)


@pytest.mark.parametrize(("levels", "n_per", "seed"), [
    ({"web": 0.0, "store": 0.7, "phone": -0.4}, 1500, 11),
    ({"web": 0.0, "store": 0.7, "phone": -0.4}, 500, 1),
    ({"a": 0.0, "b": 0.7}, 500, 1),
])
def test_a_level_only_non_repeaters_have_is_not_a_silent_finite_number(
        levels: dict[str, float], n_per: int, seed: int) -> None:
    bad = simulate(levels, n_per, seed=seed)
    lonely = (bad["frequency"] == 0).to_numpy() & (np.arange(len(bad)) % 3 == 0)
    bad.loc[lonely, "channel"] = "zz"  # not the reference level
    with pytest.warns(ConvergenceWarning, match="zz"):
        m = BetaGeo(purchase_covariates=["channel"]).fit(bad)
    assert not m.converged_
    assert "purchase:channel[zz]" in m.convergence_reason_


def test_fit_and_predict_leave_the_callers_frame_alone(data: pd.DataFrame) -> None:
    frame = data.iloc[::8].copy()
    frame["channel"] = pd.Categorical(frame["channel"])
    frame["age"] = frame["age"].round(0)
    before = copy.deepcopy(frame)
    m = BetaGeo(purchase_covariates=["channel"], dropout_covariates=["age"],
                standardize_covariates=True).fit(frame)
    m.probability_alive(frame)
    m.expected_purchases(frame, 12.0)
    m.covariate_design(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert frame.attrs == before.attrs


def test_covariate_model_refuses_to_predict_without_data(fitted: BetaGeo) -> None:
    with pytest.raises(ValueError, match="covariates"):
        fitted.expected_purchases_new_customer(5.0)
    profiles = pd.DataFrame({"channel": ["phone", "store"]})
    out = fitted.expected_purchases_new_customer(5.0, covariates=profiles)
    assert len(out) == 2 and out[1] > out[0]  # store buys more than phone


# ---------------------------------------------------------------------------------------
# persistence
# ---------------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path, data: pd.DataFrame,
                                  fitted_numeric: BetaGeo) -> None:
    path = fitted_numeric.save(tmp_path / "m.json")
    back = load_model(path)
    assert isinstance(back, BetaGeo)
    pd.testing.assert_series_equal(back.params_, fitted_numeric.params_)
    pd.testing.assert_frame_equal(back.covariance_, fitted_numeric.covariance_)
    assert back.coefficient_names_ == fitted_numeric.coefficient_names_
    sample = data.iloc[::97]
    pd.testing.assert_series_equal(back.probability_alive(sample),
                                   fitted_numeric.probability_alive(sample))
    pd.testing.assert_series_equal(back.expected_purchases(sample, 26.0),
                                   fitted_numeric.expected_purchases(sample, 26.0))


def test_standardised_model_round_trip_reapplies_the_scaling(tmp_path,
                                                             data: pd.DataFrame) -> None:
    m = BetaGeo(purchase_covariates=["age"], standardize_covariates=True).fit(data)
    back = load_model(m.save(tmp_path / "s.json"))
    new = data.head(5).assign(age=[10.0, 20.0, 40.0, 70.0, 90.0])
    pd.testing.assert_series_equal(back.expected_purchases(new, 8.0),
                                   m.expected_purchases(new, 8.0))


def test_round_trip_keeps_the_unseen_levels_option(tmp_path, data: pd.DataFrame) -> None:
    m = BetaGeo(purchase_covariates=["channel"], unseen_levels="reference",
                covariate_reference={"channel": "web"}).fit(data)
    back = load_model(m.save(tmp_path / "u.json"))
    assert back.get_params() == m.get_params()
    new = data.head(2).assign(channel=["mail", "web"])
    pd.testing.assert_series_equal(back.probability_alive(new), m.probability_alive(new))


def _edited(tmp_path, model: BetaGeo, edit) -> object:
    payload = json.loads(model.save(tmp_path / "orig.json").read_text())
    edit(payload)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(payload))
    return path


def test_load_refuses_hand_edited_covariate_files(tmp_path, fitted: BetaGeo) -> None:
    name = "purchase:channel[web]"

    def drop(p: dict) -> None:
        del p["params"][name]

    def infinite(p: dict) -> None:
        p["params"][name] = float("inf")

    def text(p: dict) -> None:
        p["params"][name] = "big"

    def unknown_group(p: dict) -> None:
        p["covariates"]["groups"]["spend"] = ["channel"]

    def unknown_column(p: dict) -> None:
        p["covariates"]["groups"]["purchase"] = ["gender"]

    for edit, message in ((drop, "lacks the coefficient"), (infinite, "finite"),
                          (text, "numbers"), (unknown_group, "spend"),
                          (unknown_column, "gender")):
        with pytest.raises(ModelFileError, match=message):
            load_model(_edited(tmp_path, fitted, edit))


# ---------------------------------------------------------------------------------------
# likelihood-ratio test
# ---------------------------------------------------------------------------------------


def test_lr_test_detects_a_real_effect(data: pd.DataFrame, fitted: BetaGeo) -> None:
    plain = BetaGeo().fit(data)
    res = lr_test(plain, fitted)
    assert res.df == 2
    assert res.extra_parameters == ("purchase:channel[store]", "purchase:channel[web]")
    assert res.statistic == pytest.approx(2 * (fitted.log_likelihood_ - plain.log_likelihood_))
    assert res.p_value < 1e-20
    assert "LR =" in str(res) and list(res.to_frame().columns)[-1] == "p-value"


def test_lr_test_without_an_effect_does_not_reject() -> None:
    null = simulate({"a": 0.0, "b": 0.0, "c": 0.0}, 800, seed=3)
    res = lr_test(BetaGeo().fit(null), BetaGeo(purchase_covariates=["channel"]).fit(null))
    assert res.df == 2
    assert res.p_value > 0.001


def test_lr_test_refusals(data: pd.DataFrame, fitted: BetaGeo) -> None:
    plain = BetaGeo().fit(data)
    with pytest.raises(ValueError, match="one family"):
        lr_test(ParetoNBD().fit(data), fitted)
    other = BetaGeo(dropout_covariates=["channel"]).fit(data)
    with pytest.raises(ValueError, match="not nested"):
        lr_test(other, fitted)
    with pytest.raises(ValueError, match="not nested"):
        lr_test(fitted, plain)  # the wrong way round
    with pytest.raises(ValueError, match="different data"):
        lr_test(BetaGeo().fit(data.iloc[:3000]), fitted)
    # the same number of customers, other purchases: the data-only summary figures differ
    changed = data.copy()
    changed["frequency"] = np.where(changed["frequency"] > 0, changed["frequency"] + 1, 0)
    with pytest.raises(ValueError, match="total_repeat_transactions"):
        lr_test(BetaGeo().fit(changed), fitted)
    with pytest.raises(ValueError, match="Bayesian"):
        lr_test(clvmodels.BayesianBetaGeo(), fitted)
    with pytest.raises(ValueError, match="not fitted"):
        lr_test(BetaGeo(), fitted)


# ---------------------------------------------------------------------------------------
# join_customers
# ---------------------------------------------------------------------------------------


@pytest.fixture()
def rfm() -> pd.DataFrame:
    out = pd.DataFrame({"frequency": [1, 0, 3], "recency": [2.0, 0.0, 5.0],
                        "T": [6.0, 6.0, 6.0]},
                       index=pd.Index(["a", "b", "c"], name="customer_id"))
    out.attrs["time_unit"] = "W"
    return out


def test_join_by_index_and_by_column(rfm: pd.DataFrame) -> None:
    attrs = pd.DataFrame({"channel": pd.Categorical(["web", "store", "web", "app"]),
                          "age": [30.0, 40.0, 50.0, 60.0]},
                         index=pd.Index(["c", "a", "b", "zz"], name="customer_id"))
    rfm_before, attrs_before = copy.deepcopy(rfm), copy.deepcopy(attrs)
    out = join_customers(rfm, attrs)
    assert list(out.index) == ["a", "b", "c"]  # the data's order; the extra customer ignored
    assert out["channel"].tolist() == ["store", "web", "web"]
    assert out["age"].tolist() == [40.0, 50.0, 30.0]
    assert isinstance(out["channel"].dtype, pd.CategoricalDtype)
    assert out.attrs["time_unit"] == "W"
    pd.testing.assert_frame_equal(rfm, rfm_before)
    pd.testing.assert_frame_equal(attrs, attrs_before)

    by_col = join_customers(rfm, attrs.reset_index(), on="customer_id", columns=["age"])
    assert list(by_col.columns) == ["frequency", "recency", "T", "age"]
    assert by_col["age"].tolist() == [40.0, 50.0, 30.0]


def test_join_refusals(rfm: pd.DataFrame) -> None:
    dup = pd.DataFrame({"g": ["f", "m", "f", "m"]}, index=["a", "b", "c", "a"])
    with pytest.raises(ValidationError, match=r"duplicate customer ids: 2 row\(s\): 'a', 'a'"):
        join_customers(rfm, dup)
    short = pd.DataFrame({"g": ["f"]}, index=["b"])
    with pytest.raises(ValidationError, match=r"no row for 2 row\(s\): 'a', 'c'"):
        join_customers(rfm, short)
    clash = pd.DataFrame({"T": [1, 2, 3]}, index=["a", "b", "c"])
    with pytest.raises(ValidationError, match=r"\['T'\] are already in the data"):
        join_customers(rfm, clash)
    with pytest.raises(ValidationError, match="'id' not found"):
        join_customers(rfm, short, on="id")
    with pytest.raises(ValidationError, match=r"\['h'\] not found"):
        join_customers(rfm, short, columns=["h"])


def test_joined_frame_fits_a_covariate_model(data: pd.DataFrame) -> None:
    base = data[["frequency", "recency", "T"]].copy()
    base.attrs = dict(data.attrs)
    table = data[["channel"]].iloc[::-1].reset_index()  # another order, id as a column
    joined = join_customers(base, table, on="customer_id")
    m = BetaGeo(purchase_covariates=["channel"]).fit(joined)
    direct = BetaGeo(purchase_covariates=["channel"]).fit(data)
    np.testing.assert_allclose(m.params_.to_numpy(), direct.params_.to_numpy(), rtol=1e-10)
