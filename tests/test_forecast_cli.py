"""The batch forecast: workflow.forecast, `clvmodels fit`, `clvmodels forecast`, the demo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from clvmodels.cli import app
from clvmodels.models.bgnbd import BetaGeo
from clvmodels.models.persistence import load_model
from clvmodels.workflow import forecast, parse_horizon

runner = CliRunner()


def test_parse_horizon() -> None:
    assert parse_horizon("12M", "W") == pytest.approx(365.25 / 7)
    assert parse_horizon("52W", "W") == 52
    assert parse_horizon("1Y", "D") == 365.25
    assert parse_horizon(10, "W") == 10
    with pytest.raises(ValueError, match="horizon"):
        parse_horizon("twelve months", "W")


def test_workflow_forecast_matches_manual_pipeline(cdnow_transactions, cdnow_rfm) -> None:
    result = forecast(cdnow_transactions, horizon="52W", discount_rate=0.1, margin=0.3,
                      observation_end="1997-09-30")
    fc = result.forecast
    assert len(fc) == 2357 and fc.index.name == "customer_id"
    manual = BetaGeo().fit(cdnow_rfm)
    np.testing.assert_allclose(result.transaction_model.params_, manual.params_)
    assert set(fc["value_tier"].astype(str)) == {"top", "middle", "low"}
    top = fc.loc[fc["value_tier"] == "top", "clv"]
    assert top.min() >= fc.loc[fc["value_tier"] != "top", "clv"].max()
    assert result.settings["total_clv"] == pytest.approx(fc["clv"].sum())
    assert fc[["clv", "expected_purchases", "probability_alive"]].notna().all().all()


def test_cli_fit_and_forecast(tmp_path: Path, cdnow_transactions, cdnow_rfm) -> None:
    rfm_path = tmp_path / "rfm.parquet"
    cdnow_rfm.to_parquet(rfm_path)
    model_path = tmp_path / "model.json"
    res = runner.invoke(app, ["fit", str(rfm_path), "--model", "bgnbd", "--spend",
                              "gammagamma", "--out", str(model_path)])
    assert res.exit_code == 0, res.output
    assert "0.2426" in res.stdout and "4.414" in res.stdout  # CDNOW parameters
    model = load_model(model_path)
    spend = load_model(tmp_path / "model.gammagamma.json")
    assert type(model).__name__ == "BetaGeo" and type(spend).__name__ == "GammaGamma"
    assert json.loads(model_path.read_text())["time_unit"] == "W"
    # refused without --force, accepted with it
    again = runner.invoke(app, ["fit", str(rfm_path), "--out", str(model_path)])
    assert again.exit_code == 1 and "--force" in again.output
    forced = runner.invoke(app, ["fit", str(rfm_path), "--out", str(model_path), "--force"])
    assert forced.exit_code == 0, forced.output

    tx_path = tmp_path / "tx.csv"
    cdnow_transactions.to_csv(tx_path, index=False)
    out = tmp_path / "forecast.parquet"
    res = runner.invoke(app, ["forecast", str(tx_path), "--horizon", "12M", "--discount-rate",
                              "0.10", "--margin", "0.3", "--observation-end", "1997-09-30",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    fc = pd.read_parquet(out)
    assert len(fc) == 2357
    assert {"clv", "expected_purchases", "probability_alive", "expected_spend",
            "value_tier"} <= set(fc.columns)
    assert "Top 10 customers" in res.stdout and "total CLV" in res.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_forecast_bad_input(tmp_path: Path, cdnow_transactions) -> None:
    bad = cdnow_transactions.copy()
    bad.loc[5, "amount"] = np.nan
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    out = tmp_path / "fc.parquet"
    res = runner.invoke(app, ["forecast", str(path), "--out", str(out)])
    assert res.exit_code == 1
    assert "'amount'" in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_cli_fit_csv_needs_time_unit(tmp_path: Path, cdnow_rfm) -> None:
    path = tmp_path / "rfm.csv"
    cdnow_rfm.to_csv(path)
    res = runner.invoke(app, ["fit", str(path), "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 1 and "--time-unit" in res.output
    res = runner.invoke(app, ["fit", str(path), "--time-unit", "W", "--out",
                              str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output


def test_demo_writes_forecast(tmp_path: Path) -> None:
    out = tmp_path / "cdnow"
    res = runner.invoke(app, ["demo", "--out", str(out)])
    assert res.exit_code == 0, res.output
    for name in ("rfm.parquet", "bgnbd.json", "gammagamma.json", "forecast.parquet"):
        assert (out / name).exists(), name
    fc = pd.read_parquet(out / "forecast.parquet")
    assert len(fc) == 2357 and fc["clv"].gt(0).all()
    assert "Top 10 customers by CLV" in res.stdout and "Value tiers" in res.stdout
