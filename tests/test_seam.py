"""The model-family seam: registry, data kinds with weights, from_params, conf_int, the
conditional pmf of the protocol, identifiability, and validated loading."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels import BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD
from clvmodels._validation import ValidationError
from clvmodels.models import registry
from clvmodels.models._math import NP
from clvmodels.models.base import IdentificationError
from clvmodels.models.mle import MLEModel
from clvmodels.models.persistence import ModelFileError, load_model
from clvmodels.models.protocol import TransactionPredictor, is_posterior
from clvmodels.workflow import model_class

TRANSACTION = [BetaGeo, ModifiedBetaGeo, ParetoNBD]


def _rfm(x: Any, tx: Any, T: Any, unit: str = "W") -> pd.DataFrame:
    out = pd.DataFrame({"frequency": x, "recency": tx, "T": T})
    out.attrs["time_unit"] = unit
    return out


# ---- registry ------------------------------------------------------------------------


def test_registry_knows_every_model_and_its_declarations() -> None:
    names = registry.model_names()
    for expected in ("bgnbd", "mbgnbd", "pnbd", "gammagamma", "bayes-bgnbd", "bayes-mbgnbd",
                     "bayes-gammagamma"):
        assert expected in names
    for cls in registry.models():
        assert cls.data_kind in registry.DATA_KINDS
        assert cls.param_names and cls.label and cls.citation, cls.__name__
        assert registry.get_model(cls.name) is cls
        assert registry.get_model(cls.__name__) is cls
        assert getattr(clvmodels, cls.__name__) is cls  # exported by the package face
        assert cls.__name__ in clvmodels.__all__
    assert set(registry.model_names(role="transaction", bayesian=False)) >= {
        "bgnbd", "mbgnbd", "pnbd"}
    assert "gammagamma" not in registry.model_names(role="transaction")
    assert model_class("BGNBD") is BetaGeo and model_class("bayes_bgnbd").bayesian
    assert registry.label_of(BetaGeo()) == "BG/NBD"
    with pytest.raises(ValueError, match=r"unknown model 'nope'.*bgnbd"):
        registry.get_model("nope")


class _ToyGeometric(MLEModel):
    """A family defined outside the package: one class, nothing else edited."""

    name = "toy-geometric"
    label = "Toy geometric"
    data_kind = "contractual"
    param_names = ("odds",)
    citation = "test"

    def _loglik(self, p: dict[str, Any], d: Any, m: Any = NP) -> Any:
        # churn probability theta = odds / (1 + odds), the same for everyone
        log_theta = m.log(p["odds"]) - m.log1p(p["odds"])
        log_keep = -m.log1p(p["odds"])
        return d.churned * (log_theta + (d.periods - 1) * log_keep) + \
            (1 - d.churned) * d.periods * log_keep


def _unregister_toy() -> None:
    registry._BY_NAME.pop("toy-geometric", None)
    registry._BY_CLASS.pop("_ToyGeometric", None)


_unregister_toy()  # defining it registered it; the test below registers it again


@pytest.fixture
def toy_family() -> Any:
    registry.register(_ToyGeometric)
    yield _ToyGeometric
    _unregister_toy()


def test_a_new_family_is_picked_up_by_the_registry_fit_and_persistence(
        toy_family: Any, tmp_path: Path) -> None:
    assert "toy-geometric" in registry.model_names(kind="contractual")
    rng = np.random.default_rng(1)
    theta = 0.2
    life = rng.geometric(theta, 5000)
    periods = np.minimum(life, 8)
    data = pd.DataFrame({"periods": periods, "churned": life <= 8})
    model = model_class("toy-geometric")().fit(data)
    odds = model.params_["odds"]
    se = model.standard_errors_["odds"]
    assert abs(odds - theta / (1 - theta)) < 3 * se
    path = model.save(tmp_path / "toy.json")
    again = load_model(path)
    assert type(again) is toy_family
    assert again.params_["odds"] == pytest.approx(odds, rel=1e-14)


# ---- weights and data kinds ----------------------------------------------------------


def test_weights_give_the_fit_on_expanded_data(cdnow_rfm: pd.DataFrame) -> None:
    full = BetaGeo().fit(cdnow_rfm)
    grouped = (cdnow_rfm.groupby(["frequency", "recency", "T"]).size()
               .rename("n").reset_index())
    grouped.attrs["time_unit"] = "W"
    by_column = BetaGeo().fit(grouped, weights="n")
    by_array = BetaGeo().fit(grouped.drop(columns="n"), weights=grouped["n"].to_numpy())
    for m in (by_column, by_array):
        np.testing.assert_allclose(m.params_, full.params_, rtol=1e-7)
        assert m.log_likelihood_ == pytest.approx(full.log_likelihood_, rel=1e-12)
        assert m.n_customers_ == len(cdnow_rfm)
    assert len(grouped) < len(cdnow_rfm)


@pytest.mark.parametrize("bad, match", [
    ([-1, 2, 3], "non-negative"),
    ([1.5, 2, 3], "whole numbers"),
    ([1, 2], "one count per row"),
    ([0, 0, 0], "sum to 0"),
    ([np.nan, 1, 1], "finite"),
])
def test_bad_weights_are_refused(bad: list[float], match: str) -> None:
    data = _rfm([0, 1, 2], [0, 3, 5], [6, 6, 6])
    with pytest.raises(ValidationError, match=match):
        BetaGeo().fit(data, weights=np.array(bad, dtype=float))


def test_weights_column_name_is_reported() -> None:
    data = _rfm([0, 1, 2], [0, 3, 5], [6, 6, 6]).assign(count=[1, -2, 3])
    with pytest.raises(ValidationError, match="'count'"):
        BetaGeo().fit(data, weights="count")
    with pytest.raises(ValidationError, match="missing column"):
        BetaGeo().fit(data, weights="counts")


def test_gamma_gamma_fits_a_spend_table_without_recency(cdnow_rfm: pd.DataFrame) -> None:
    full = GammaGamma().fit(cdnow_rfm)
    spend = cdnow_rfm[["frequency", "monetary_value"]].copy()
    alone = GammaGamma().fit(spend)
    np.testing.assert_allclose(alone.params_, full.params_, rtol=1e-9)
    assert alone.expected_spend(spend).to_numpy() == pytest.approx(
        full.expected_spend(cdnow_rfm).to_numpy(), rel=1e-12)


# ---- from_params and conf_int --------------------------------------------------------


@pytest.mark.parametrize("cls", TRANSACTION)
def test_from_params_predicts_like_the_fitted_model(cls: type, cdnow_rfm: pd.DataFrame,
                                                    tmp_path: Path) -> None:
    fitted = cls().fit(cdnow_rfm)
    known = cls.from_params(time_unit="W", **fitted.params_.to_dict())
    for method in ("probability_alive",):
        pd.testing.assert_series_equal(getattr(known, method)(cdnow_rfm),
                                       getattr(fitted, method)(cdnow_rfm))
    pd.testing.assert_series_equal(known.expected_purchases(cdnow_rfm, 39),
                                   fitted.expected_purchases(cdnow_rfm, 39))
    assert np.isnan(known.standard_errors_).all()
    path = known.save(tmp_path / "known.json")
    json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    again = load_model(path)
    np.testing.assert_array_equal(again.params_, known.params_)
    assert again.time_unit_ == "W"


def test_from_params_validates() -> None:
    with pytest.raises(ValueError, match="missing \\['b'\\]"):
        BetaGeo.from_params(r=0.2, alpha=4.0, a=0.8)
    with pytest.raises(ValueError, match="unknown \\['s'\\]"):
        BetaGeo.from_params(r=0.2, alpha=4.0, a=0.8, b=2.0, s=1.0)
    with pytest.raises(ValueError, match="'a' must be a positive finite"):
        BetaGeo.from_params(r=0.2, alpha=4.0, a=-0.8, b=2.0)
    with pytest.raises(ValueError, match="unknown time_unit"):
        BetaGeo.from_params(r=0.2, alpha=4.0, a=0.8, b=2.0, time_unit="weeks")


def test_conf_int(cdnow_rfm: pd.DataFrame) -> None:
    model = BetaGeo().fit(cdnow_rfm)
    ci95 = model.conf_int()
    summary = model.summary()
    np.testing.assert_allclose(ci95["lower"], summary["lower 95%"], rtol=1e-12)
    np.testing.assert_allclose(ci95["upper"], summary["upper 95%"], rtol=1e-12)
    ci80 = model.conf_int(alpha=0.2)
    assert (ci80["lower"] > ci95["lower"]).all() and (ci80["upper"] < ci95["upper"]).all()
    assert ((ci80["lower"] < model.params_) & (model.params_ < ci80["upper"])).all()
    with pytest.raises(ValueError, match="alpha"):
        model.conf_int(alpha=1.5)


# ---- the conditional pmf of the protocol ---------------------------------------------


@pytest.mark.parametrize("cls", TRANSACTION)
def test_conditional_pmf_sums_to_one_and_has_the_expected_mean(
        cls: type, cdnow_rfm: pd.DataFrame) -> None:
    model = cls().fit(cdnow_rfm)
    assert isinstance(model, TransactionPredictor) and not is_posterior(model)
    sample = cdnow_rfm.iloc[::47]
    n = np.arange(0, 150)
    pmf = model.conditional_purchase_count_probability(sample, n, 39.0)
    assert pmf.shape == (len(sample), len(n))
    assert list(pmf.index) == list(sample.index)
    np.testing.assert_allclose(pmf.sum(axis=1), 1.0, atol=1e-8)
    mean = pmf.to_numpy() @ n
    np.testing.assert_allclose(mean, model.expected_purchases(sample, 39.0), rtol=1e-6,
                               atol=1e-9)


# ---- identifiability -----------------------------------------------------------------


@pytest.mark.parametrize("cls", TRANSACTION)
@pytest.mark.parametrize("data, why", [
    (_rfm([3], [10], [20]), "only 1 customer"),
    (_rfm([0] * 40, [0] * 40, np.linspace(1, 30, 40)), "no customer made a repeat"),
    (_rfm([0, 0, 0], [0, 0, 0], [0, 0, 0]), "no customer made a repeat"),
    (_rfm([250] + [0] * 99, [50] + [0] * 99, [52] * 100), "only one customer made repeat"),
])
def test_unidentifiable_data_raise(cls: type, data: pd.DataFrame, why: str) -> None:
    with pytest.raises(IdentificationError, match=why):
        cls().fit(data)


def test_spend_and_contract_identifiability() -> None:
    same = pd.DataFrame({"frequency": [1, 2, 3], "monetary_value": [10.0, 10.0, 10.0]})
    with pytest.raises(IdentificationError, match="same monetary_value"):
        GammaGamma().fit(same)


def test_boundary_estimates_are_flagged(cdnow_rfm: pd.DataFrame) -> None:
    # two repeat buyers with hundreds of purchases among customers who never return: the
    # drop-out process runs to the boundary
    data = _rfm([300, 280] + [0] * 200, [50, 51] + [0] * 200, [52] * 202)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        model = BetaGeo().fit(data)
    assert not model.converged_
    assert "boundary" in model.convergence_reason_ or "flat" in model.convergence_reason_
    assert any("did not converge" in str(w.message) for w in seen)
    assert model.summary().attrs["convergence_reason"] == model.convergence_reason_
    assert "NOT CONVERGED" in model.summary_text()
    good = BetaGeo().fit(cdnow_rfm)
    assert good.converged_ and good.convergence_reason_ == ""


# ---- validated loading ---------------------------------------------------------------


@pytest.fixture
def saved(cdnow_rfm: pd.DataFrame, tmp_path: Path) -> dict[str, Any]:
    path = BetaGeo().fit(cdnow_rfm).save(tmp_path / "bg.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize("change, match", [
    (lambda p: p["params"].update(a=-0.5), "'a' must be a positive"),
    (lambda p: p["params"].update(r=None), "'r' must be a number"),
    (lambda p: p["params"].pop("b"), "missing \\['b'\\]"),
    (lambda p: p.pop("time_unit"), "no time unit"),
    (lambda p: p.update(time_unit="weeks"), "unknown time unit"),
    (lambda p: p.update(model="Nope"), "unknown model type"),
    (lambda p: p.update(format_version=99), "format_version 99"),
    (lambda p: p.update(format="other"), "not a clvmodels model file"),
])
def test_load_model_refuses_invalid_content(saved: dict[str, Any], tmp_path: Path,
                                            change: Any, match: str) -> None:
    change(saved)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(saved))
    with pytest.raises(ModelFileError, match=match) as err:
        load_model(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("content, match", [
    (b'{"format": "clvmodels-model", "format_ver', "not valid JSON"),
    (b"PAR1\x00\x00\x00\x15\x04", "Parquet"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a text file"),
    (b"[1, 2, 3]", "expected a JSON object"),
])
def test_load_model_names_the_file_for_foreign_files(tmp_path: Path, content: bytes,
                                                     match: str) -> None:
    path = tmp_path / "model.json"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=match) as err:
        load_model(path)
    assert str(path) in str(err.value)


def test_load_model_names_a_json_file_saved_under_a_netcdf_suffix(saved: dict[str, Any],
                                                                   tmp_path: Path) -> None:
    path = tmp_path / "model.nc"
    path.write_text(json.dumps(saved))
    with pytest.raises(ModelFileError, match="JSON file, not netCDF") as err:
        load_model(path)
    assert str(path) in str(err.value)
