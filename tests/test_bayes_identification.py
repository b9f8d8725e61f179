"""A Bayesian fit on data that cannot identify the parameters warns (IdentificationWarning,
naming why) where its maximum-likelihood twin raises IdentificationError: the same rules,
one implementation (BaseModel._identifiability_problem)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pymc")

from clvmodels import IdentificationError, IdentificationWarning
from clvmodels.models.bayes_bgnbd import BayesianBetaGeo, BayesianModifiedBetaGeo
from clvmodels.models.bayes_gammagamma import BayesianGammaGamma
from clvmodels.models.sbg import BayesianShiftedBetaGeo, simulate_sbg
from clvmodels.simulate import simulate_gammagamma


def _no_repeaters(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame({"frequency": np.zeros(n), "recency": np.zeros(n),
                         "T": np.linspace(5.0, 40.0, n)})


def _nobody_churned() -> pd.DataFrame:
    data = simulate_sbg(60, alpha=1.0, beta=2.0, n_periods=6, random_seed=1)
    return data.assign(churned=False, periods=6)


def _one_spend() -> pd.DataFrame:
    data = simulate_gammagamma(30, 6.0, 4.0, 15.0, frequency=np.arange(1, 31), random_seed=2)
    return data.assign(monetary_value=25.0)


CASES = [(BayesianBetaGeo, _no_repeaters, "no customer made a repeat purchase"),
         (BayesianModifiedBetaGeo, _no_repeaters, "no customer made a repeat purchase"),
         (BayesianShiftedBetaGeo, _nobody_churned, "no customer churned"),
         (BayesianGammaGamma, _one_spend, "the same monetary_value")]


@pytest.mark.parametrize(("cls", "make", "why"), CASES)
def test_same_rule_as_the_mle_twin(cls: type, make: object, why: str) -> None:
    """The Bayesian class finds the problem its MLE twin refuses the data for."""
    data = make()
    model = cls()
    rows = model._rows(data, fitting=True)
    assert why in model._identifiability_problem(rows)
    with pytest.raises(IdentificationError, match=why):
        cls._mle_class().fit(data)


def test_bayesian_fit_warns_and_names_the_reason() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = BayesianBetaGeo().fit(_no_repeaters(), draws=60, tune=60, chains=1,
                                      random_seed=1, log_likelihood=False)
    found = [w for w in caught if issubclass(w.category, IdentificationWarning)]
    assert len(found) == 1
    text = str(found[0].message)
    assert "no customer made a repeat purchase" in text and "prior" in text
    assert np.all(np.isfinite(model.params_.to_numpy()))
    # one chain: the summary's R-hat is NaN, and ArviZ's shape-check log line is kept quiet
    import logging

    import arviz as az

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    az_log = az._log
    az_log.addHandler(handler)
    az_log.cache.clear()
    try:
        summary = model.summary()
    finally:
        az_log.removeHandler(handler)
    assert records == [] and summary["r_hat"].isna().all()


def test_identifiable_data_do_not_warn() -> None:
    data = _no_repeaters().assign(frequency=[0.0, 2.0, 1.0, 3.0] * 10,
                                  recency=[0.0, 4.0, 3.0, 4.5] * 10)
    model = BayesianBetaGeo()
    assert model._identifiability_problem(model._rows(data, fitting=True)) == ""
