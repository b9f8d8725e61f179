"""``clvmodels score``: customers valued with a saved model (fit once, score many times).

Maximum-likelihood models are fitted here (fast); non-hierarchical Bayesian models are made
from posterior draws near those estimates (``from_params``: no sampling) and saved as
netCDF, so nothing is sampled here. Scoring with a hierarchical model (segments that must
match) is in ``tests/test_cli_bayes.py``, beside the fit that makes one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import clvmodels as cm
from clvmodels.cli import app
from clvmodels.cli.scoring import score_columns
from clvmodels.datasets import DATASETS

runner = CliRunner()
OBS_END = "1997-09-30"
#: what pandas reads back a text column of a Parquet file as
TEXT = str(pd.Series(["a"]).astype(str).dtype)


def _as_posterior(model: cm.models.base.BaseModel, cls: type, n: int = 40) -> object:
    """A Bayesian model whose draws scatter around ``model``'s estimates, as if sampled
    elsewhere (``from_params``), with the sampler statistics a saved file carries."""
    import xarray as xr

    rng = np.random.default_rng(7)
    draws = {k: float(model.params_[k]) * np.exp(rng.normal(0.0, 0.05, n))
             for k in cls.param_names}
    bayes = cls.from_params(time_unit=model.time_unit_, **draws)
    bayes.idata_.add_groups(sample_stats=xr.Dataset(
        {"diverging": (("chain", "draw"), np.zeros((1, n), dtype=bool))},
        coords={"chain": [0], "draw": np.arange(n)}))
    bayes.sampler_ = "external draws"
    return bayes


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Data and saved models of every kind, written once."""
    d = tmp_path_factory.mktemp("score")
    tx = DATASETS["cdnow"][1]()
    ids = tx["customer_id"].unique()[:300]
    tx = tx[tx["customer_id"].isin(ids)].reset_index(drop=True)
    tx.to_csv(d / "tx.csv", index=False)
    channel = pd.DataFrame({"customer_id": ids, "channel": np.resize(["web", "shop", "app"],
                                                                     len(ids))})
    channel.to_csv(d / "customers.csv", index=False)
    odd = channel.copy()
    odd.loc[0, "channel"] = "phone"  # a level no model saw
    odd.to_csv(d / "customers_odd.csv", index=False)
    rfm = cm.rfm_summary(tx, time_unit="W", observation_end=OBS_END)
    rfm.to_parquet(d / "rfm.parquet")
    cm.rfm_summary(tx, time_unit="D", observation_end=OBS_END).to_parquet(d / "rfm_days.parquet")
    rfm.to_csv(d / "rfm.csv")
    bg = cm.BetaGeo().fit(rfm)
    gg = cm.GammaGamma().fit(rfm)
    bg.save(d / "bgnbd.json")
    cm.ParetoNBD().fit(rfm).save(d / "pnbd.json")
    cm.ModifiedBetaGeo().fit(rfm).save(d / "mbgnbd.json")
    gg.save(d / "gg.json")
    _as_posterior(bg, cm.BayesianBetaGeo).save(d / "bgnbd.nc")
    _as_posterior(gg, cm.BayesianGammaGamma).save(d / "gg.nc")
    with_channel = cm.join_customers(rfm, channel, on="customer_id")
    cm.BetaGeo(purchase_covariates=["channel"]).fit(with_channel).save(d / "bgnbd_cov.json")

    donations = DATASETS["donations"][1]()
    donations.to_csv(d / "donations.csv", index=False)
    bgbb = cm.BetaGeoBetaBinom().fit(donations.assign(T=donations["periods"]).drop(
        columns="periods").rename_axis("customer_id").pipe(_with_unit, "Y"), weights="weights")
    bgbb.save(d / "bgbb.json")
    _as_posterior(bgbb, cm.BayesianBetaGeoBetaBinom).save(d / "bgbb.nc")

    subs = DATASETS["subscriptions"][1]()
    subs.to_csv(d / "subs.csv", index=False)
    contracts = cm.contract_summary(subs, observation_end="2004-12-31", period="Y")
    sbg = cm.ShiftedBetaGeo().fit(contracts)
    sbg.save(d / "sbg.json")
    _as_posterior(sbg, cm.BayesianShiftedBetaGeo).save(d / "sbg.nc")
    return {p.name: p for p in d.iterdir()}


def _with_unit(frame: pd.DataFrame, unit: str) -> pd.DataFrame:
    frame.attrs["time_unit"] = unit
    return frame


def _score(files: dict[str, Path], tmp_path: Path, model: str, data: str, *extra: str,
           out: str = "scores.parquet") -> tuple[object, Path]:
    target = tmp_path / out
    result = runner.invoke(app, ["score", str(files.get(model, model)),
                                 str(files.get(data, data)), "--out",
                                 str(target), *extra])
    return result, target


# the exact columns and dtypes per kind of model: a change here is a change users see
TRANSACTION = {"frequency": "int64", "recency": "float64", "T": "float64"}
VALUE = {"expected_purchases": "float64", "probability_alive": "float64"}
CONTRACT = {"periods": "int64", "churned": "bool", "expected_periods": "float64",
            "probability_active": "float64", "revenue_per_period": "float64"}
INTERVAL = {"clv_lower": "float64", "clv_upper": "float64"}
SCHEMAS = {
    "mle-transactions": ("bgnbd.json", None, "tx.csv", "int64",
                         {**TRANSACTION, **VALUE, "clv": "float64"}),
    "mle-transactions-spend": ("bgnbd.json", "gg.json", "tx.csv", "int64",
                               {**TRANSACTION, "monetary_value": "float64", **VALUE,
                                "expected_spend": "float64", "clv": "float64"}),
    "mle-transactions-pnbd": ("pnbd.json", "gg.json", "rfm.parquet", "int64",
                              {**TRANSACTION, "monetary_value": "float64", **VALUE,
                               "expected_spend": "float64", "clv": "float64"}),
    "mle-transactions-mbgnbd": ("mbgnbd.json", None, "tx.csv", "int64",
                                {**TRANSACTION, **VALUE, "clv": "float64"}),
    "bayes-transactions": ("bgnbd.nc", None, "rfm.parquet", "int64",
                           {**TRANSACTION, **VALUE, "clv": "float64", **INTERVAL}),
    "bayes-transactions-spend": ("bgnbd.nc", "gg.nc", "tx.csv", "int64",
                                 {**TRANSACTION, "monetary_value": "float64", **VALUE,
                                  "expected_spend": "float64", "clv": "float64",
                                  **INTERVAL}),
    "mle-discrete": ("bgbb.json", None, "donations.csv", "int64",
                     {**TRANSACTION, **VALUE, "clv": "float64"}),
    "bayes-discrete": ("bgbb.nc", None, "donations.csv", "int64",
                       {**TRANSACTION, **VALUE, "clv": "float64", **INTERVAL}),
    "mle-contractual": ("sbg.json", None, "subs.csv", TEXT, {**CONTRACT, "clv": "float64"}),
    "bayes-contractual": ("sbg.nc", None, "subs.csv", TEXT,
                          {**CONTRACT, "clv": "float64", **INTERVAL}),
}


@pytest.mark.parametrize("case", list(SCHEMAS))
def test_output_schema_per_kind_of_model(files: dict[str, Path], tmp_path: Path,
                                         case: str) -> None:
    model, spend, data, id_dtype, columns = SCHEMAS[case]
    extra = ["--spend-model", str(files[spend])] if spend else []
    if data == "tx.csv":
        extra += ["--observation-end", OBS_END]
    elif data == "subs.csv":
        extra += ["--observation-end", "2004-12-31", "--revenue-per-period", "100"]
    elif data == "donations.csv":
        extra += ["--time-unit", "Y", "--horizon", "5Y"]
    result, out = _score(files, tmp_path, model, data, *extra, "--margin", "0.3")
    assert result.exit_code == 0, result.output
    written = pd.read_parquet(out)
    expected = {"customer_id": id_dtype, **columns, "value_tier": TEXT}
    assert {c: str(t) for c, t in written.dtypes.items()} == expected
    assert list(written.columns) == list(expected)  # and in this order
    kind = cm.load_model(files[model]).data_kind
    assert list(written.columns) == score_columns(kind, bayesian=model.endswith(".nc"),
                                                  spend=spend is not None)
    numbers = written.select_dtypes("number")
    assert np.isfinite(numbers.to_numpy(dtype=float)).all()
    assert (written["clv"] >= 0).all() and written["clv"].sum() > 0
    assert set(written["value_tier"]) <= {"top", "middle", "low"}
    if "clv_lower" in written:
        assert (written["clv_lower"] <= written["clv"]).all()
        assert (written["clv"] <= written["clv_upper"]).all()
        assert (written["clv_upper"] > written["clv_lower"]).any()
    # the input kind is named on stderr
    assert "Input: " in result.stderr


def test_transactions_and_their_summary_score_alike(files: dict[str, Path],
                                                    tmp_path: Path) -> None:
    raw, out_raw = _score(files, tmp_path, "bgnbd.json", "tx.csv", "--spend-model",
                          str(files["gg.json"]), "--observation-end", OBS_END, "--margin",
                          "0.3", out="raw.csv")
    assert raw.exit_code == 0, raw.output
    assert "Input: transactions" in raw.stderr
    summary, out_rfm = _score(files, tmp_path, "bgnbd.json", "rfm.parquet", "--spend-model",
                              str(files["gg.json"]), "--margin", "0.3", out="rfm.csv")
    assert summary.exit_code == 0, summary.output
    assert "Input: an RFM summary" in summary.stderr
    a, b = pd.read_csv(out_raw), pd.read_csv(out_rfm)
    pd.testing.assert_frame_equal(a, b)
    # the library's valuation of the same customers, to the cent
    rfm = pd.read_parquet(files["rfm.parquet"])
    value = cm.customer_lifetime_value(cm.load_model(files["bgnbd.json"]),
                                       cm.load_model(files["gg.json"]), rfm, horizon="12M",
                                       discount_rate=0.1, margin=0.3)
    np.testing.assert_allclose(a["clv"].to_numpy(), value["clv"].to_numpy(), rtol=1e-10)


@pytest.mark.parametrize(("args", "message"), [
    # data in days for a weekly model
    (["bgnbd.json", "rfm_days.parquet"], "in days (D) but the model was fitted in weeks (W)"),
    (["bgnbd.json", "rfm.csv", "--time-unit", "M"], "--time-unit M is in months (M)"),
    (["bgnbd.json", "rfm.csv"], "does not record its time unit"),
    (["bgnbd.json", "tx.csv"], "--observation-end"),
    (["gg.json", "rfm.parquet"], "is a spend model"),
    (["bgnbd.json", "rfm.parquet", "--spend-model", "bgnbd.json"], "is not a spend model"),
    (["sbg.json", "rfm.parquet"], "a contractual model scores"),
    (["bgbb.json", "tx.csv", "--observation-end", OBS_END], "a discrete model scores"),
    (["bgnbd.json", "rfm.parquet", "--customers", "customers.csv"], "no covariates"),
    # covariates: missing, and a level the model never saw
    (["bgnbd_cov.json", "rfm.parquet"], "'channel'"),
    (["bgnbd_cov.json", "rfm.parquet", "--customers", "customers_odd.csv"], "phone"),
])
def test_refusals_are_one_error_with_exit_1_and_nothing_written(
        files: dict[str, Path], tmp_path: Path, args: list[str], message: str) -> None:
    argv = [str(files.get(a, a)) for a in args]
    result, out = _score(files, tmp_path, argv[0], argv[1], *argv[2:])
    assert result.exit_code == 1, result.output
    assert message in " ".join(result.stderr.split())
    assert result.stderr.count("Error:") == 1 and "Traceback" not in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_covariates_from_the_customer_table(files: dict[str, Path], tmp_path: Path) -> None:
    result, out = _score(files, tmp_path, "bgnbd_cov.json", "tx.csv", "--observation-end",
                         OBS_END, "--customers", str(files["customers.csv"]))
    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(out)
    assert list(scored.columns) == ["customer_id", "frequency", "recency", "T",
                                    "expected_purchases", "probability_alive", "clv",
                                    "value_tier"]
    # each customer valued with their own channel: the library's figures
    model = cm.load_model(files["bgnbd_cov.json"])
    rfm = cm.join_customers(pd.read_parquet(files["rfm.parquet"]),
                            pd.read_csv(files["customers.csv"]), on="customer_id")
    value = cm.customer_lifetime_value(model, 1.0, rfm, horizon="12M", discount_rate=0.1)
    np.testing.assert_allclose(scored["clv"].to_numpy(), value["clv"].to_numpy(), rtol=1e-10)


def test_weighted_summary_rows_count_customers(files: dict[str, Path], tmp_path: Path) -> None:
    """--weights on a pre-aggregated summary: the column is kept as ``weight``, the value
    tiers and the printed totals count customers (11,104 donors in 22 rows), not rows."""
    donations = pd.read_csv(files["donations.csv"])
    result, out = _score(files, tmp_path, "bgbb.json", "donations.csv", "--time-unit", "Y",
                         "--horizon", "5Y", "--weights", "weights")
    assert result.exit_code == 0, result.output
    written = pd.read_parquet(out)
    assert list(written.columns) == score_columns("discrete", bayesian=False, spend=False,
                                                  weights=True)
    assert str(written["weight"].dtype) == "int64"
    np.testing.assert_array_equal(written["weight"], donations["weights"])
    n = int(donations["weights"].sum())
    customers = written.groupby("value_tier")["weight"].sum()
    # each tier holds about its share of the customers (a row is never split)
    for tier, share in (("top", 0.2), ("middle", 0.3), ("low", 0.5)):
        assert abs(customers.get(tier, 0) - share * n) <= donations["weights"].max()
    assert customers.sum() == n
    printed = " ".join(result.stdout.replace("│", " ").split())
    assert f"customers {n:,}" in printed and "distinct rows 22" in printed
    assert "Wrote 22 rows" in printed
    # refused: raw data, and a column that is not there
    tx, _ = _score(files, tmp_path, "bgnbd.json", "tx.csv", "--observation-end", OBS_END,
                   "--weights", "n", out="raw.parquet")
    assert tx.exit_code == 1 and "applies to a summary file" in " ".join(tx.stderr.split())
    missing, _ = _score(files, tmp_path, "bgbb.json", "donations.csv", "--time-unit", "Y",
                        "--weights", "count", out="other.parquet")
    assert missing.exit_code == 1 and "'count' not found" in " ".join(missing.stderr.split())
