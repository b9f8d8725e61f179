"""Discrete-time diagnostics: the tables behind the retention, survival and P(alive) plots
(Fader & Hardie 2007's cohort, Fader, Hardie & Shang 2010's Table 6), and the figures draw
(headless), for maximum-likelihood and Bayesian models."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

from clvmodels import ValidationError
from clvmodels.datasets import load_donations
from clvmodels.diagnostics_discrete import (
    observed_survival,
    probability_alive_table,
    retention_curve_table,
    survival_projection_table,
)
from clvmodels.evaluation import compare_contractual
from clvmodels.models import sbg
from clvmodels.models.bgbb import BetaGeoBetaBinom
from clvmodels.models.sbg import BayesianShiftedBetaGeo, ShiftedBetaGeo
from clvmodels.plotting_discrete import (
    plot_holdout_retention,
    plot_probability_alive_table,
    plot_retention_curve,
    plot_survival_projection,
)

matplotlib.use("Agg")

# Fader & Hardie (2007), Table 1 (../shared/REFERENCE.md): % of the regular cohort active at
# the start of years 0..12
FH07_REGULAR = [100.0, 63.1, 46.8, 38.2, 32.6, 28.9, 26.2, 24.1, 22.3, 20.7, 19.4, 18.3, 17.3]
#: Fader, Hardie & Shang (2010)'s MLE on the donations data
PAPER_MLE = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def _cohort_rows(percent: list[float], years: int = 7) -> pd.DataFrame:
    """The cohort's first ``years`` years as weighted (periods, churned) rows: lost in year t
    -> t periods paid; survivors of year ``years`` -> years + 1 periods, active."""
    alive = np.round(np.asarray(percent[: years + 1]) / 100 * 1000).astype(int)
    frame = pd.DataFrame({"periods": np.r_[np.arange(1, years + 1), years + 1],
                          "churned": np.r_[np.ones(years, dtype=bool), False],
                          "weight": np.r_[alive[:-1] - alive[1:], alive[-1]]})
    frame.attrs["time_unit"] = "Y"
    return frame


@pytest.fixture(scope="module")
def models() -> SimpleNamespace:
    rows = _cohort_rows(FH07_REGULAR)
    mle = ShiftedBetaGeo().fit(rows, weights="weight")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains: sampling diagnostics may complain
        bayes = BayesianShiftedBetaGeo().fit(rows, weights="weight", draws=150, tune=150,
                                             chains=2, random_seed=1)
    return SimpleNamespace(rows=rows, mle=mle, bayes=bayes,
                           bgbb=BetaGeoBetaBinom.from_params(**PAPER_MLE, time_unit="Y"))


# --------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------


def test_retention_curve_reproduces_fh2007(models: SimpleNamespace) -> None:
    mle = models.mle
    assert mle.params_["alpha"] == pytest.approx(0.704, abs=6e-4)
    table = retention_curve_table(mle, FH07_REGULAR, calibrated_through=7)
    assert list(table.index) == list(range(13))
    np.testing.assert_allclose(table["observed"], np.asarray(FH07_REGULAR) / 100)
    np.testing.assert_allclose(table["model"], mle.survival(np.arange(13)), rtol=1e-14)
    # the paper's projection of years 8-12 (F&H 2007, Figure 3; tests/test_sbg.py)
    np.testing.assert_allclose(100 * table["model"].iloc[8:], [22.0, 20.4, 19.1, 18.0, 17.0],
                               atol=0.05)
    assert table["in_calibration"].tolist() == [True] * 8 + [False] * 5
    a = table.attrs
    assert a["projection_mae"] == pytest.approx(table["error"].iloc[8:].abs().mean())
    assert a["calibration_mae"] == pytest.approx(table["error"].iloc[1:8].abs().mean())
    assert a["projection_mae"] < 0.017 and a["time_unit"] == "Y"
    # shares and a Series indexed by t give the same table; a horizon extends the model only
    shares = pd.Series(np.asarray(FH07_REGULAR[:8]) / 100)
    longer = retention_curve_table(mle, shares, horizon=12, calibrated_through=7)
    np.testing.assert_allclose(longer["model"], table["model"])
    assert longer["observed"].iloc[8:].isna().all() and np.isnan(longer.attrs["projection_mae"])


def test_observed_survival_from_a_summary(models: SimpleNamespace) -> None:
    rows = models.rows
    customers = rows.loc[rows.index.repeat(rows["weight"])].drop(columns="weight")
    obs = observed_survival(customers)
    np.testing.assert_allclose(obs["observed"], np.asarray(FH07_REGULAR[:8]) / 100)
    assert obs["at_risk"].iloc[0] == 1000 and obs["at_risk"].iloc[1] == 1000
    table = retention_curve_table(models.mle, customers)
    assert table["at_risk"].iloc[7] == 262  # those who reached the 7th renewal decision
    with pytest.raises(ValidationError, match="shares"):
        observed_survival([1.0, 1.2, 0.5])
    with pytest.raises(ValidationError, match="whole periods"):
        observed_survival(pd.Series([1.0, 0.5], index=[0, 0.5]))


def test_survival_projection_table(models: SimpleNamespace) -> None:
    mle = models.mle
    a, b = mle.params_["alpha"], mle.params_["beta"]
    table = survival_projection_table(mle, 12)
    t = np.arange(13)
    np.testing.assert_allclose(table["survival"], sbg.survival(a, b, t), rtol=1e-14)
    # r(t) = (beta + t - 1) / (alpha + beta + t - 1), F&H 2007 eq. 8: rising with tenure
    np.testing.assert_allclose(table["retention_rate"].iloc[1:],
                               (b + t[1:] - 1) / (a + b + t[1:] - 1), rtol=1e-12)
    assert np.isnan(table["retention_rate"].iloc[0])
    assert np.all(np.diff(table["retention_rate"].iloc[1:]) > 0)
    np.testing.assert_allclose(table["churn_probability"].iloc[1:],
                               -np.diff(table["survival"]), rtol=1e-10)
    assert table.attrs["expected_lifetime"] == mle.expected_lifetime()
    with pytest.raises(ValueError, match="horizon"):
        survival_projection_table(mle, 0)


def test_bayesian_tables_have_bands(models: SimpleNamespace) -> None:
    bayes = models.bayes
    table = survival_projection_table(bayes, 12, interval=0.9)
    for name in ("survival", "retention_rate", "churn_probability"):
        inner = table[[name, f"{name}_lower", f"{name}_upper"]].iloc[1:]
        assert (inner[f"{name}_lower"] <= inner[name]).all()
        assert (inner[name] <= inner[f"{name}_upper"]).all()
    # the posterior mean sits near the maximum-likelihood curve on 1,000 customers
    np.testing.assert_allclose(table["survival"], models.mle.survival(np.arange(13)),
                               atol=0.02)
    curve = retention_curve_table(bayes, FH07_REGULAR, calibrated_through=7)
    assert {"model_lower", "model_upper"} <= set(curve.columns)
    assert curve.attrs["projection_mae"] < 0.03


def test_probability_alive_table_is_fhs2010_table_6(models: SimpleNamespace) -> None:
    donors = load_donations()
    table = probability_alive_table(models.bgbb, 6, data=donors, weights="weights")
    # Table 6 cells (recency 1995 / x = 0, 1999 / x = 2, 2001 / x = 6), tests/test_bgbb.py
    assert round(table.at[0, 0], 2) == 0.11
    assert round(table.at[4, 2], 2) == 0.59
    assert round(table.at[6, 6], 2) == 0.93
    # 22 possible histories after 6 opportunities, the donations' 22 distinct rows
    assert int(table.notna().to_numpy().sum()) == 22 == len(donors)
    assert np.isnan(table.at[2, 3]) and np.isnan(table.at[3, 0])
    counts = table.attrs["customers"]
    assert counts.to_numpy().sum() == 11_104
    assert counts.at[0, 0] == 3464 and counts.at[6, 6] == 1203
    cells = donors.assign(p=models.bgbb.probability_alive(donors).to_numpy())
    for row in cells.itertuples():
        assert table.at[row.recency, row.frequency] == pytest.approx(row.p, rel=1e-12)


# --------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------


def test_retention_and_survival_plots_draw(models: SimpleNamespace) -> None:
    ax = plot_retention_curve(models.mle, FH07_REGULAR, calibrated_through=7)
    assert isinstance(ax, Axes) and len(ax.get_lines()) >= 3  # observed, model, the line
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "Observed" and "projected" in labels[1]
    _, given = plt.subplots()
    assert plot_survival_projection(models.mle, 20, ax=given) is given
    assert len(given.figure.axes) == 2  # the retention-rate axis
    band = plot_survival_projection(models.bayes, 12, retention=False)
    assert len(band.collections) >= 1 and len(band.figure.axes) == 1
    bayes = plot_retention_curve(models.bayes, FH07_REGULAR, calibrated_through=7)
    assert any("credible" in t.get_text() for t in bayes.get_legend().get_texts())


def test_retention_by_cohort_and_holdout_plots_draw() -> None:
    subs = pd.DataFrame({
        "customer_id": range(8),
        "start": pd.to_datetime(["2021-01-05", "2021-01-20", "2021-02-03", "2021-02-11",
                                 "2021-03-02", "2021-03-15", "2021-01-09", "2021-02-25"]),
        "end": pd.to_datetime(["2021-03-05", None, "2021-06-03", None, "2021-04-02", None,
                               "2021-11-09", "2022-01-25"]),
    })
    res = compare_contractual(subs, calibration_end="2021-08-31",
                              observation_end="2022-02-28")
    summary = res.final
    ax = plot_retention_curve(res.models["sbg"], summary, by_cohort=True,
                              calibrated_through=res.settings["calibrated_through"])
    assert any(t.get_text() == "Cohorts" for t in ax.get_legend().get_texts())
    with pytest.raises(ValueError, match="cohort"):
        plot_retention_curve(res.models["sbg"], FH07_REGULAR, by_cohort=True)
    tables = {n: t["holdout_retention"] for n, t in res.tables.items()}
    ax = plot_holdout_retention(tables, baselines=["constant-churn"], unit="M")
    assert len(ax.get_lines()) == 1 + len(tables)
    assert "months" in ax.get_xlabel()


def test_probability_alive_heat_map_draws(models: SimpleNamespace) -> None:
    ax = plot_probability_alive_table(models.bgbb, 6, data=load_donations(),
                                      weights="weights")
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 22 and "0.93\n(1,203)" in texts
    plain = plot_probability_alive_table(models.bgbb, 4, annotate=False)
    assert len(plain.texts) == 0 and len(plain.images) == 1
