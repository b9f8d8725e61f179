"""The command line with covariates: --purchase-covariates, --dropout-covariates,
--spend-covariates and the --customers attribute table on fit, forecast and compare."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from test_evaluation_covariates import CAL_END, OBS_END, simulate_channels
from typer.testing import CliRunner

import clvmodels
from clvmodels.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Transactions, the customer table (id column ``cid``) and an RFM summary, on disk."""
    root = tmp_path_factory.mktemp("cli_cov")
    tx, customers = simulate_channels()
    customers = customers.rename(columns={"customer_id": "cid"})
    customers["region"] = ["north", "south"] * (len(customers) // 2)
    paths = {"tx": root / "tx.csv", "customers": root / "customers.csv",
             "customers_pq": root / "customers.parquet", "rfm": root / "rfm.parquet"}
    tx.to_csv(paths["tx"], index=False)
    customers.to_csv(paths["customers"], index=False)
    customers.to_parquet(paths["customers_pq"], index=False)
    rfm = clvmodels.rfm_summary(tx, observation_end=CAL_END)
    rfm.to_parquet(paths["rfm"])
    return paths


def _ok(result) -> None:
    assert result.exit_code == 0, result.output + repr(result.exception)


def test_fit_with_covariates(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "pnbd.json"
    result = runner.invoke(app, [
        "fit", str(files["rfm"]), "--out", str(out), "--model", "pnbd",
        "--purchase-covariates", "channel", "--dropout-covariates", "channel",
        "--spend", "gammagamma", "--spend-covariates", "channel",
        "--customers", str(files["customers"]), "--customers-id", "cid"])
    _ok(result)
    assert "purchase:channel[web]" in result.output
    model = clvmodels.load_model(out)
    assert list(model.coefficient_names_) == ["purchase:channel[web]", "dropout:channel[web]"]
    assert 0.5 < model.params_["purchase:channel[web]"] < 1.7  # log 3 = 1.10
    saved = json.loads(out.read_text())
    assert "covariates" in json.dumps(saved)
    spend = clvmodels.load_model(tmp_path / "pnbd.gammagamma.json")
    assert "spend:channel[web]" in spend.params_.index


def test_forecast_with_covariates(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "forecast.csv"
    result = runner.invoke(app, [
        "forecast", str(files["tx"]), "--out", str(out), "--model", "bgnbd",
        "--observation-end", CAL_END, "--horizon", "6M",
        "--purchase-covariates", "channel,region", "--customers", str(files["customers_pq"]),
        "--customers-id", "cid"])
    _ok(result)
    frame = pd.read_csv(out)
    assert {"channel", "region", "clv"} <= set(frame.columns)
    by = frame.groupby("channel")["clv"].mean()
    assert by["web"] > 1.5 * by["store"]
    assert "purchase:region[south]" in result.output


def test_compare_with_covariates(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = runner.invoke(app, [
        "compare", str(files["tx"]), "--calibration-end", CAL_END,
        "--observation-end", OBS_END, "--out", str(out), "--models", "pnbd",
        "--purchase-covariates", "channel", "--spend", "gammagamma",
        "--spend-covariates", "channel", "--customers", str(files["customers"]),
        "--customers-id", "cid", "--no-baselines"])
    _ok(result)
    metrics = pd.read_csv(out / "metrics.csv", index_col=0)
    assert list(metrics.index) == ["pnbd", "pnbd+cov"]
    assert metrics.loc["pnbd+cov", "log_likelihood"] > metrics.loc["pnbd", "log_likelihood"]
    coefs = pd.read_csv(out / "coefficients.csv")
    assert set(coefs["model"]) == {"pnbd+cov", "spend model"}
    assert (out / "figures" / "coefficients.png").is_file()
    page = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="covariates"' in page and "Likelihood-ratio tests" in page
    assert "LR test pnbd vs pnbd+cov" in result.output


@pytest.mark.parametrize(("extra", "message"), [
    (["--purchase-covariates", "gender"], "gender"),
    (["--purchase-covariates", "channel", "--customers-id", "nope"], "nope"),
    (["--purchase-covariates", "channel,channel"], "named twice"),
    (["--spend-covariates", "channel"], "--spend"),
    ([], "--customers is the attribute table"),
])
def test_fit_refusals_write_nothing(files: dict[str, Path], tmp_path: Path,
                                    extra: list[str], message: str) -> None:
    out = tmp_path / "m.json"
    result = runner.invoke(app, ["fit", str(files["rfm"]), "--out", str(out), "--model",
                                 "bgnbd", "--customers", str(files["customers"]), *extra])
    assert result.exit_code == 1, result.output
    assert message in " ".join(result.output.split())
    assert list(tmp_path.iterdir()) == []


def test_missing_customers_and_levels(files: dict[str, Path], tmp_path: Path) -> None:
    partial = tmp_path / "partial.csv"
    pd.read_csv(files["customers"]).iloc[:100].to_csv(partial, index=False)
    out = tmp_path / "f.csv"
    result = runner.invoke(app, [
        "forecast", str(files["tx"]), "--out", str(out), "--model", "pnbd",
        "--observation-end", CAL_END, "--purchase-covariates", "channel",
        "--customers", str(partial), "--customers-id", "cid"])
    assert result.exit_code == 1 and "no row for" in " ".join(result.output.split())
    assert not out.exists()
    # a single level cannot be estimated against itself
    one = tmp_path / "one.csv"
    pd.read_csv(files["customers"]).assign(channel="web").to_csv(one, index=False)
    result = runner.invoke(app, [
        "forecast", str(files["tx"]), "--out", str(out), "--model", "pnbd",
        "--observation-end", CAL_END, "--purchase-covariates", "channel",
        "--customers", str(one), "--customers-id", "cid"])
    assert result.exit_code == 1 and "channel" in result.output
    assert not out.exists()
    # compare: the contractual comparison does not take covariates from the CLI
    result = runner.invoke(app, [
        "compare", str(files["tx"]), "--calibration-end", CAL_END,
        "--observation-end", OBS_END, "--out", str(tmp_path / "r"), "--models", "sbg",
        "--purchase-covariates", "channel"])
    assert result.exit_code == 1 and not (tmp_path / "r").exists()
