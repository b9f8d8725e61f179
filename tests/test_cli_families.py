"""The command line and the model registry (issue 10): every model choice comes from the
registry; BG/BB and sBG through `fit`, `forecast` and `compare`; the `datasets` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from clvmodels.cli import app
from clvmodels.cli.commands import ModelName, SpendName
from clvmodels.contract import contract_summary
from clvmodels.datasets import FH2007_SURVIVORS, load_donations, load_subscriptions
from clvmodels.models import registry
from clvmodels.models.bgbb import BetaGeoBetaBinom
from clvmodels.models.persistence import load_model
from clvmodels.models.sbg import ShiftedBetaGeo

runner = CliRunner()


# --------------------------------------------------------------------------------------
# choices from the registry
# --------------------------------------------------------------------------------------


def test_model_choices_are_the_registry() -> None:
    expected = set(registry.model_names(role="transaction")) | set(
        registry.model_names(role="contractual"))
    assert {m.value for m in ModelName} == expected
    assert {"bgnbd", "pnbd", "mbgnbd", "bgbb", "sbg", "bayes-bgnbd", "bayes-bgbb",
            "bayes-sbg"} <= expected
    assert {m.value for m in SpendName} == set(registry.model_names(role="spend"))
    # maximum likelihood first, then Bayesian
    names = [m.value for m in ModelName]
    assert max(names.index(n) for n in registry.model_names(bayesian=False) if n in names) < \
        min(names.index(n) for n in registry.model_names(bayesian=True) if n in names)


@pytest.mark.parametrize("command", ["fit", "forecast"])
def test_help_lists_every_registered_model(command: str) -> None:
    res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "300"})
    assert res.exit_code == 0
    flat = "".join(res.stdout.split())
    for name in (m.value for m in ModelName):
        assert name in flat, name


def test_unknown_model_is_a_usage_error(tmp_path: Path) -> None:
    res = runner.invoke(app, ["fit", "x.csv", "--model", "nbd", "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 2
    assert "bgbb" in res.output and "sbg" in res.output  # the choices shown are the registry's
    res = runner.invoke(app, ["fit", "x.csv", "--spend", "bgnbd", "--out", str(tmp_path / "m")])
    assert res.exit_code == 2


# --------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------


def test_datasets_cdnow_is_a_csv_the_cli_reads(tmp_path: Path, cdnow_rfm) -> None:
    out = tmp_path / "transactions.csv"
    res = runner.invoke(app, ["datasets", "cdnow", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "6,919 rows" in res.stdout
    assert out.read_text().splitlines()[:2] == ["customer_id,date,amount", "1,1997-01-01,29.33"]
    frame = pd.read_csv(out)
    assert len(frame) == 6919 and frame["customer_id"].nunique() == 2357
    rfm_out = tmp_path / "rfm.parquet"
    res = runner.invoke(app, ["rfm", str(out), "--observation-end", "1997-09-30",
                              "--out", str(rfm_out)])
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(pd.read_parquet(rfm_out), cdnow_rfm, check_dtype=False,
                                  atol=1e-12)
    again = runner.invoke(app, ["datasets", "cdnow", "--out", str(out)])
    assert again.exit_code == 1 and "--force" in again.stderr


def test_subscriptions_reproduce_fh2007() -> None:
    """The records rebuild F&H 2007's cohorts: contract_summary + sBG give the paper's fits."""
    subs = load_subscriptions()
    assert len(subs) == 2000 and subs["customer_id"].is_unique
    summary = contract_summary(subs, observation_end="2007-01-01", period="Y")
    plan = subs.set_index("customer_id")["plan"]
    for name, survivors in FH2007_SURVIVORS.items():
        part = summary[plan.reindex(summary.index) == name]
        # active at the start of year 7: the survivors of Table 1
        assert int((~part["churned"]).sum()) == survivors[7]
        fitted = ShiftedBetaGeo().fit(part)
        expected = {"regular": (0.704, 1.182), "high-end": (0.668, 3.806)}[name]
        assert tuple(fitted.params_.round(3)) == expected
    full = contract_summary(subs, observation_end="2012-01-01", period="Y")
    assert int((~full["churned"]).sum()) == 173 + 394


# --------------------------------------------------------------------------------------
# fit: BG/BB and sBG from summary files, with weights
# --------------------------------------------------------------------------------------


def test_fit_bgbb_on_weighted_donations(tmp_path: Path) -> None:
    csv = tmp_path / "donations.csv"
    assert runner.invoke(app, ["datasets", "donations", "--out", str(csv)]).exit_code == 0
    out = tmp_path / "bgbb.json"
    args = ["fit", str(csv), "--model", "bgbb", "--weights", "weights", "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "--time-unit" in res.stderr and not out.exists()
    res = runner.invoke(app, [*args, "--time-unit", "Y"])
    assert res.exit_code == 0, res.output
    assert "Fitting bgbb on 11,104 customers ..." in res.stderr.splitlines()
    model = load_model(out)
    assert isinstance(model, BetaGeoBetaBinom) and model.time_unit_ == "Y"
    direct = BetaGeoBetaBinom().fit(load_donations(), weights="weights")
    np.testing.assert_allclose(model.params_, direct.params_, rtol=1e-8)
    for value in direct.params_:
        assert f"{value:.4g}" in res.stdout
    assert "11,104" in res.stdout and "22" in res.stdout  # donors and distinct rows


def test_fit_sbg_on_contract_summary(tmp_path: Path) -> None:
    subs = load_subscriptions()
    summary = contract_summary(subs[subs["plan"] == "regular"], observation_end="2007-01-01",
                               period="Y")
    per_customer = tmp_path / "regular.parquet"
    summary.to_parquet(per_customer)  # records its time unit (Y)
    out = tmp_path / "sbg.json"
    res = runner.invoke(app, ["fit", str(per_customer), "--model", "sbg", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "0.704" in res.stdout and "1.182" in res.stdout  # F&H 2007, regular
    assert json.loads(out.read_text())["time_unit"] == "Y"
    # the same cohort as counts (a paper's table, a SQL GROUP BY) in a CSV file
    counts = (summary.groupby(["periods", "churned"]).size().rename("customers")
              .reset_index())
    counts_csv = tmp_path / "counts.csv"
    counts.to_csv(counts_csv, index=False)
    out2 = tmp_path / "sbg-counts.json"
    res = runner.invoke(app, ["fit", str(counts_csv), "--model", "sbg", "--weights",
                              "customers", "--time-unit", "Y", "--out", str(out2)])
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(load_model(out2).params_, load_model(out).params_, rtol=1e-8)
    assert "1,000 customers" in res.stdout.replace("\n", " ")


def test_fit_bayesian_needs_netcdf_and_writes_it(tmp_path: Path) -> None:
    subs = load_subscriptions()
    summary = contract_summary(subs, observation_end="2007-01-01", period="Y")
    path = tmp_path / "summary.parquet"
    summary.to_parquet(path)
    res = runner.invoke(app, ["fit", str(path), "--model", "bayes-sbg", "--out",
                              str(tmp_path / "m.json")])
    assert res.exit_code == 1 and ".nc" in res.stderr
    out = tmp_path / "m.nc"
    res = runner.invoke(app, ["fit", str(path), "--model", "bayes-sbg", "--out", str(out),
                              "--draws", "200", "--tune", "200", "--chains", "2", "--seed", "1"])
    assert res.exit_code == 0, res.output
    model = load_model(out)
    assert type(model).__name__ == "BayesianShiftedBetaGeo"
    mle = ShiftedBetaGeo().fit(summary)
    posterior = model.summary()
    for name in ("alpha", "beta"):
        gap = abs(posterior.loc[name, "estimate"] - mle.params_[name])
        assert gap < 3 * mle.standard_errors_[name]
    assert "R-hat" in res.stdout


def test_spend_with_contractual_model_refused(tmp_path: Path) -> None:
    res = runner.invoke(app, ["fit", "x.csv", "--model", "sbg", "--spend", "gammagamma",
                              "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 1 and "revenue per period" in res.stderr


# --------------------------------------------------------------------------------------
# forecast
# --------------------------------------------------------------------------------------


@pytest.fixture
def subs_csv(tmp_path: Path) -> Path:
    path = tmp_path / "subscriptions.csv"
    assert runner.invoke(app, ["datasets", "subscriptions", "--out", str(path)]).exit_code == 0
    return path


def test_forecast_sbg_from_subscription_records(tmp_path: Path, subs_csv: Path) -> None:
    out = tmp_path / "sbg.csv"
    args = ["forecast", str(subs_csv), "--model", "sbg", "--period", "Y",
            "--revenue-per-period", "100", "--horizon", "inf", "--discount-rate", "0.1",
            "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "--observation-end" in res.stderr and not out.exists()
    res = runner.invoke(app, [*args, "--observation-end", "2007-01-01"])
    assert res.exit_code == 0, res.output
    fc = pd.read_csv(out, index_col="customer_id")
    assert len(fc) == 2000 and {"periods", "churned", "clv"} <= set(fc.columns)
    # CLV = revenue x DERL of the pooled sBG fit; churned customers are worth nothing
    summary = contract_summary(load_subscriptions(), observation_end="2007-01-01", period="Y")
    model = ShiftedBetaGeo().fit(summary)
    derl = model.discounted_expected_residual_lifetime(summary, 0.1)
    np.testing.assert_allclose(fc["clv"].reindex(summary.index), 100 * derl, rtol=1e-8)
    assert (fc.loc[fc["churned"], "clv"] == 0).all()
    assert f"{100 * derl.sum():,.2f}" in res.stdout  # the total CLV
    assert "2,000 customers" in res.stdout.replace("\n", " ")


def test_forecast_sbg_revenue_column(tmp_path: Path) -> None:
    subs = load_subscriptions()
    subs["fee"] = np.where(subs["plan"] == "regular", 100.0, 250.0)
    path = tmp_path / "subs.parquet"
    subs.to_parquet(path)
    out = tmp_path / "fc.parquet"
    res = runner.invoke(app, ["forecast", str(path), "--model", "sbg", "--period", "Y",
                              "--observation-end", "2007-01-01", "--revenue-per-period", "fee",
                              "--horizon", "10Y", "--out", str(out)])
    assert res.exit_code == 0, res.output
    fc = pd.read_parquet(out)
    plan = subs.set_index("customer_id")["plan"].reindex(fc.index)
    assert set(fc.loc[plan == "high-end", "revenue_per_period"]) == {250.0}
    active = ~fc["churned"]
    ratio = fc.loc[active & (plan == "high-end"), "clv"].iloc[0] / \
        fc.loc[active & (plan == "regular"), "clv"].iloc[0]
    assert ratio == pytest.approx(2.5)  # same periods paid, same model: the fee decides
    res = runner.invoke(app, ["forecast", str(path), "--model", "sbg", "--period", "Y",
                              "--observation-end", "2007-01-01", "--revenue-per-period",
                              "price", "--out", str(tmp_path / "x.parquet")])
    assert res.exit_code == 1 and "'price'" in res.stderr


def test_forecast_bgbb_from_weighted_summary(tmp_path: Path) -> None:
    csv = tmp_path / "donations.csv"
    load_donations().to_csv(csv, index=False)
    out = tmp_path / "fc.csv"
    res = runner.invoke(app, ["forecast", str(csv), "--model", "bgbb", "--weights", "weights",
                              "--time-unit", "Y", "--horizon", "5Y", "--out", str(out)])
    assert res.exit_code == 0, res.output
    fc = pd.read_csv(out)
    assert len(fc) == 22
    model = BetaGeoBetaBinom().fit(load_donations(), weights="weights")
    d = load_donations()
    d.attrs["time_unit"] = "Y"
    expected = model.expected_purchases(d, 5)
    np.testing.assert_allclose(fc["expected_purchases"], expected, rtol=1e-8)
    total = float((fc["expected_purchases"] * fc["weights"]).sum())
    assert f"{total:,.1f}" in res.stdout  # weighted by the donors each row stands for
    assert "Wrote 22 rows (11,104 customers)" in res.stdout.replace("\n", " ")


# --------------------------------------------------------------------------------------
# compare on subscriptions
# --------------------------------------------------------------------------------------


def test_compare_sbg_on_subscriptions(tmp_path: Path, subs_csv: Path) -> None:
    out = tmp_path / "report"
    args = ["compare", str(subs_csv), "--models", "sbg", "--calibration-end", "2007-01-01",
            "--observation-end", "2012-01-01", "--period", "Y", "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (out / "report.html").is_file() and (out / "metrics.csv").is_file()
    assert list((out / "figures").glob("*.png"))
    metrics = pd.read_csv(out / "metrics.csv", index_col=0)
    assert "sbg" in metrics.index and len(metrics.index) >= 2  # the model and a baseline
    for name in metrics.index:
        assert name in res.stdout
    mixed = runner.invoke(app, [*args[:-2], "--models", "sbg,bgnbd", "--out",
                                str(tmp_path / "mixed")])
    assert mixed.exit_code == 1 and "cannot be compared" in mixed.stderr
    assert not (tmp_path / "mixed").exists()
