"""``clvmodels run``: every registered family of the input's data kind, the Spark engine, and
covariates — each end to end on tiny data, each refusal naming its key.

The families a configuration takes come from the model registry and the input's kind
(``input.kind``: transactions → continuous families, a discrete summary → BG/BB-like, subscription
records → contractual), so the parametrised checks below follow the registry (a family
registered later is covered without a change here). End-to-end runs compare their outputs
with the library called directly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import clvmodels as cm
from clvmodels.cli import app
from clvmodels.models import registry
from clvmodels.runs.config import INPUT_KINDS, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
OBS_END = "1997-12-31"
CAL = "1997-06-30"  # the hierarchical run's end: tests/test_cli_bayes.py's data
KIND_OF = {kind: name for name, kind in INPUT_KINDS.items()}


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tx.csv (300 CDNOW customers, with a channel column), customers.csv (the channel),
    subs.csv (F&H subscriptions, with a price per year) and donations.csv (BG/BB)."""
    d = tmp_path_factory.mktemp("kinds")
    tx = cm.datasets.DATASETS["cdnow"][1]()
    ids = tx["customer_id"].unique()[:300]
    channel = pd.DataFrame({"customer_id": ids,
                            "channel": np.resize(["web", "shop", "app"], len(ids))})
    channel.to_csv(d / "customers.csv", index=False)
    tx = tx[tx["customer_id"].isin(ids)][["customer_id", "date", "amount"]]
    tx.merge(channel, on="customer_id").to_csv(d / "tx.csv", index=False)
    subs = cm.datasets.load_subscriptions()
    subs["price"] = np.where(subs["plan"] == "regular", 80.0, 120.0)
    subs.to_csv(d / "subs.csv", index=False)
    cm.datasets.load_donations().to_csv(d / "donations.csv", index=False)
    return d


def _config(ws: Path, name: str, text: str) -> Path:
    path = ws / f"{name}.toml"
    path.write_text(f'name = "{name}"\nseed = 5\n{text}\n[output]\nruns_dir = "runs"\n',
                    encoding="utf-8")
    return path


INPUTS = {
    "transactions": f'[input]\npath = "tx.csv"\nobservation_end = "{OBS_END}"\n',
    "discrete": '[input]\nkind = "discrete"\npath = "donations.csv"\ntime_unit = "Y"\n'
                'weights_col = "weights"\nobservation_end = "2001-12-31"\n',
    "subscriptions": '[input]\nkind = "subscriptions"\npath = "subs.csv"\ntime_unit = "Y"\n'
                     'observation_end = "2007-12-31"\n',
}


# --------------------------------------------------------------------------------------
# the registry decides: every family of the input's kind, by name or as a Bayesian twin
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in registry.model_names()
                                  if registry.get_model(n).data_kind != "spend"])
def test_every_registered_family_of_the_input_kind_is_accepted(ws: Path, name: str) -> None:
    cls = registry.get_model(name)
    kind = KIND_OF[cls.data_kind]
    spend = '[spend]\nfamily = "none"\n' if kind != "transactions" else ""
    config = load_config(_config(ws, "fam", INPUTS[kind] + f'[[models]]\nfamily = "{name}"\n'
                                 + spend))
    (m,) = config.models
    assert m.registry_name == name and m.label == name
    assert m.method == ("bayes" if getattr(cls, "bayesian", False) else "mle")  # resolved
    twins = [n for n in registry.model_names(bayesian=True)
             if getattr(registry.get_model(n), "_mle_class", None) is cls]
    for twin in twins:  # method = "bayes" names the family's Bayesian twin
        config = load_config(_config(ws, "twin", INPUTS[kind] + f'[[models]]\nfamily = '
                                     f'"{name}"\nmethod = "bayes"\n' + spend))
        assert config.models[0].registry_name == twin and config.models[0].bayesian


def test_spend_families_come_from_the_registry(ws: Path) -> None:
    for name in registry.model_names(role="spend"):
        config = load_config(_config(ws, "spend", INPUTS["transactions"]
                                     + f'[[models]]\nfamily = "bgnbd"\n[spend]\nfamily = '
                                     f'"{name}"\n'))
        assert config.spend.registry_name == name
    # the default: the registry's maximum-likelihood spend family, or none without amounts
    config = load_config(_config(ws, "spend", INPUTS["transactions"]
                                 + '[[models]]\nfamily = "bgnbd"\n'))
    assert config.spend.family == registry.model_names(role="spend", bayesian=False)[0]
    config = load_config(_config(ws, "spend", INPUTS["subscriptions"]
                                 + '[[models]]\nfamily = "sbg"\n'))
    assert config.spend.family == "none" and config.input.time_unit == "Y"


BAD = [
    ("transactions", '[[models]]\nfamily = "bgnbd"\n[[models]]\nfamily = "bgnbd"\nname = "b"\n'
     '[[models]]\nfamily = "sbg"\n',
     "models[2].family: 'sbg' needs a subscriptions input (input.kind = 'subscriptions'); "
     "this run's input.kind is 'transactions'"),
    ("transactions", '[[models]]\nfamily = "bgbb"\n',
     "models[0].family: 'bgbb' needs a discrete input (input.kind = 'discrete')"),
    ("subscriptions", '[[models]]\nfamily = "bgnbd"\n',
     "models[0].family: 'bgnbd' needs a transactions input"),
    ("transactions", '[[models]]\nfamily = "gammagamma"\n',
     "models[0].family: 'gammagamma' is a spend model: name it in [spend] (spend.family)"),
    ("transactions", '[[models]]\nfamily = "bgnbdd"\n',
     "models[0].family: expected one of bgnbd, mbgnbd"),
    ("transactions", '[[models]]\nfamily = "bayes-bgnbd"\nmethod = "mle"\n',
     "models[0].method: 'bayes-bgnbd' is a Bayesian family: set method = 'bayes'"),
    ("transactions", '[[models]]\nfamily = "bgnbd"\nsegment_col = "channel"\n',
     "models[0].segment_col: applies to Bayesian models only"),
    ("transactions", '[[models]]\nfamily = "bayes-bgnbd"\npenalizer = 0.1\n',
     "models[0].penalizer: applies to method = 'mle' only"),
    ("subscriptions", '[[models]]\nfamily = "sbg"\npurchase_covariates = ["plan"]\n',
     "models[0].purchase_covariates: 'sbg' has no purchase covariates (its covariate groups: "
     "dropout)"),
    ("transactions", '[[models]]\nfamily = "bgnbd"\n[spend]\nfamily = "pnbd"\n',
     "spend.family: expected one of gammagamma, bayes-gammagamma or 'none', got 'pnbd'"),
    ("discrete", '[[models]]\nfamily = "bgbb"\n[spend]\nfamily = "gammagamma"\n',
     "spend.family: a spend model is fitted on transactions (input.kind = 'transactions')"),
    ("subscriptions", '[[models]]\nfamily = "sbg"\n[valuation]\nperiod = "M"\n',
     "valuation.period: subscriptions are valued per contract period (input.time_unit = 'Y')"),
    ("transactions", '[[models]]\nfamily = "bgnbd"\n[valuation]\nrevenue_per_period = 5.0\n',
     "valuation.revenue_per_period: applies to input.kind = 'subscriptions'"),
    ("subscriptions", '[[models]]\nfamily = "sbg"\n[report]\nbacktest_cutoffs = ["2005-12-31"]\n',
     "report.backtest_cutoffs: backtests run on transactions"),
]


@pytest.mark.parametrize(("kind", "models", "message"), BAD)
def test_families_that_do_not_fit_are_refused_naming_the_key(ws: Path, kind: str, models: str,
                                                             message: str) -> None:
    path = _config(ws, "bad", INPUTS[kind] + models)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)
    result = _invoke("run", str(path))
    assert result.exit_code == 1 and message in result.stderr, result.output
    assert "Traceback" not in result.output and not (ws / "runs" / "bad").exists()


@pytest.mark.parametrize(("replace", "message"), [
    (('time_unit = "Y"\n', ''), "input.time_unit: a discrete summary needs the length of one"),
    (('time_unit = "Y"\n', 'time_unit = "Y"\nengine = "duckdb"\n'),
     "input.engine: a discrete summary is read with 'pandas'"),
    (('observation_end = "2001-12-31"', 'observation_end = "latest"'),
     "input.observation_end: a discrete summary has no dates"),
])
def test_discrete_input_refusals(ws: Path, replace: tuple[str, str], message: str) -> None:
    text = INPUTS["discrete"].replace(*replace) + '[[models]]\nfamily = "bgbb"\n'
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(_config(ws, "bad", text))


@pytest.mark.parametrize(("extra", "message"), [
    ('engine = "spark"\n', "input.engine: 'spark' summarises transactions; subscriptions take"),
    ('revenue_col = "nope"\nweights_col = "w"\n',
     "input.weights_col: applies to input.kind = 'discrete'"),
])
def test_subscription_input_refusals(ws: Path, extra: str, message: str) -> None:
    text = INPUTS["subscriptions"] + extra + '[[models]]\nfamily = "sbg"\n'
    with pytest.raises(ConfigError) as info:
        load_config(_config(ws, "bad", text))
    assert message in str(info.value)
    text = INPUTS["subscriptions"].replace('observation_end = "2007-12-31"',
                                           'observation_end = "latest"')
    with pytest.raises(ConfigError, match=r"input\.observation_end: subscription records need"):
        load_config(_config(ws, "bad", text + '[[models]]\nfamily = "sbg"\n'))


def test_a_family_without_a_bayesian_twin_is_refused(ws: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The twin is found in the registry (``_mle_class``), never by a name pattern."""
    for name in registry.model_names(kind="continuous", bayesian=True):
        monkeypatch.setattr(registry.get_model(name), "_mle_class", None)
    with pytest.raises(ConfigError) as info:
        load_config(_config(ws, "bad", INPUTS["transactions"]
                            + '[[models]]\nfamily = "bgnbd"\nmethod = "bayes"\n'))
    assert "models[0].method: 'bgnbd' has no Bayesian twin in the model registry" in \
        str(info.value)


# --------------------------------------------------------------------------------------
# end to end: subscriptions (sBG), a discrete summary (BG/BB), covariates
# --------------------------------------------------------------------------------------


def test_subscriptions_run_with_sbg_covariates_and_revenue_column(ws: Path) -> None:
    path = _config(ws, "subs", INPUTS["subscriptions"] + 'revenue_col = "price"\n'
                   '[[models]]\nfamily = "sbg"\n[[models]]\nfamily = "sbg"\nname = "sbg-plan"\n'
                   'dropout_covariates = ["plan"]\n[valuation]\nhorizon = "5Y"\n'
                   'margin = 0.5\n[report]\nholdout = "3Y"\n')
    result = _invoke("run", str(path))
    assert result.exit_code == 0, result.output
    d = ws / "runs" / "subs" / "2007-12-31"
    m = json.loads((d / "manifest.json").read_text())
    assert m["data_kind"] == "contractual" and m["time_unit"] == "Y"
    assert m["row_counts"]["subscription_records"] == 2000
    assert m["models"]["sbg"]["registry_name"] == "sbg"
    metrics = pd.read_csv(d / "report" / "metrics.csv", index_col=0)
    assert {"sbg", "sbg-plan", "constant-churn"} <= set(metrics.index)
    # the forecast equals the library's: contract summary -> sBG -> CLV with each
    # customer's latest price as the revenue per period
    subs = pd.read_csv(ws / "subs.csv")
    data = cm.contract_summary(subs, observation_end="2007-12-31", period="Y")
    price = subs.groupby("customer_id")["price"].last().reindex(data.index)
    want = cm.customer_lifetime_value(cm.ShiftedBetaGeo().fit(data), price, data,
                                      horizon="5Y", discount_rate=0.10, margin=0.5)
    got = pd.read_parquet(d / "forecasts" / "sbg.parquet")
    np.testing.assert_allclose(got["clv"].to_numpy(), want["clv"].reindex(got.index),
                               rtol=1e-9)
    assert set(got["revenue_per_period"]) == {80.0, 120.0}
    cov = pd.read_parquet(d / "forecasts" / "sbg-plan.parquet")
    assert "plan" in cov.columns and not np.allclose(cov["clv"], got["clv"])
    assert cm.load_model(d / "models" / "sbg-plan.json").has_covariates


def test_subscriptions_with_duckdb_equal_pandas(ws: Path) -> None:
    """DuckDB summarises the records; the revenue column and the plan (a covariate) are
    read from the records' own columns only; forecasts and report equal pandas'."""
    runs = {}
    for engine in ("pandas", "duckdb"):
        text = INPUTS["subscriptions"] + f'engine = "{engine}"\nrevenue_col = "price"\n' \
            '[[models]]\nfamily = "sbg"\nname = "sbg-plan"\ndropout_covariates = ["plan"]\n' \
            '[report]\nholdout = "3Y"\n'
        result = _invoke("run", str(_config(ws, f"subs-{engine}", text)))
        assert result.exit_code == 0, result.output
        runs[engine] = ws / "runs" / f"subs-{engine}" / "2007-12-31"
    a, b = (pd.read_parquet(r / "forecasts" / "sbg-plan.parquet") for r in runs.values())
    assert a["clv"].sum() > 0
    cols = ["periods", "churned", "plan", "expected_periods", "revenue_per_period", "clv"]
    pd.testing.assert_frame_equal(a[cols], b[cols].loc[a.index], check_exact=False,
                                  rtol=1e-9)
    ma, mb = (pd.read_csv(r / "report" / "metrics.csv", index_col=0) for r in runs.values())
    pd.testing.assert_frame_equal(ma.drop(columns=["fit_seconds"], errors="ignore"),
                                  mb.drop(columns=["fit_seconds"], errors="ignore"),
                                  check_exact=False, rtol=1e-9)


def test_the_subscriptions_example_runs(ws: Path) -> None:
    (ws / "examples").mkdir(exist_ok=True)
    shutil.copy(ROOT / "examples" / "subscriptions_run.toml", ws / "examples")
    shutil.copy(ws / "subs.csv", ws / "subscriptions.csv")
    result = _invoke("run", str(ws / "examples" / "subscriptions_run.toml"))
    assert result.exit_code == 0, result.output
    d = ws / "reports" / "runs" / "subscriptions" / "2007-12-31"
    assert result.stdout.strip() == str(d)
    for rel in ("forecasts/sbg.parquet", "forecasts/sbg-plan.parquet", "models/sbg.json",
                "report/report.html", "manifest.json"):
        assert (d / rel).is_file(), rel


def test_discrete_summary_run_with_bgbb(ws: Path) -> None:
    path = _config(ws, "donations", INPUTS["discrete"]
                   + '[[models]]\nfamily = "bgbb"\n[valuation]\nhorizon = "5Y"\n')
    result = _invoke("run", str(path))
    assert result.exit_code == 0, result.output
    assert "Fitting bgbb on 22 rows (11,104 customers)" in result.stderr
    d = ws / "runs" / "donations" / "2001-12-31"
    m = json.loads((d / "manifest.json").read_text())
    assert m["data_kind"] == "discrete" and m["row_counts"]["customers"] == 11104
    assert any("no holdout columns" in w for w in m["warnings"])  # no report: said so
    assert not (d / "report").exists()
    summary = pd.read_csv(ws / "donations.csv")
    summary.attrs["time_unit"] = "Y"
    model = cm.BetaGeoBetaBinom().fit(summary, weights="weights")
    want = cm.customer_lifetime_value(model, 1.0, summary, horizon="5Y", discount_rate=0.10)
    got = pd.read_parquet(d / "forecasts" / "bgbb.parquet")
    np.testing.assert_allclose(got["clv"].to_numpy(), want["clv"].to_numpy(), rtol=1e-9)
    total = float((summary["weights"] * want["clv"]).sum())
    assert m["outputs"]["forecasts"]["bgbb"]["total_clv"] == pytest.approx(total, rel=1e-9)


def test_discrete_summary_with_holdout_columns_is_compared(ws: Path) -> None:
    """A discrete summary carrying its holdout (``frequency_holdout``, ``duration_holdout``)
    gets the comparison report (compare_discrete), fitted on the calibration columns."""
    sim = registry.simulate("bgbb", 400, params={"alpha": 1.2, "beta": 0.75, "gamma": 0.66,
                                                 "delta": 2.78}, T=6, holdout=4,
                            random_seed=3)
    sim.reset_index().to_parquet(ws / "discrete.parquet", index=False)
    text = INPUTS["discrete"].replace('path = "donations.csv"', 'path = "discrete.parquet"') \
        .replace('weights_col = "weights"\n', '') + '[[models]]\nfamily = "bgbb"\n'
    result = _invoke("run", str(_config(ws, "disc-holdout", text)))
    assert result.exit_code == 0, result.output
    d = ws / "runs" / "disc-holdout" / "2001-12-31"
    metrics = pd.read_csv(d / "report" / "metrics.csv", index_col=0)
    assert {"bgbb", "calibration-rate"} <= set(metrics.index)
    fc = pd.read_parquet(d / "forecasts" / "bgbb.parquet")
    assert len(fc) == 400 and fc.index.name == "customer_id"
    data = sim.copy()
    data.attrs["time_unit"] = "Y"
    model = cm.BetaGeoBetaBinom().fit(data)
    np.testing.assert_allclose(cm.load_model(d / "models" / "bgbb.json").params_.to_numpy(),
                               model.params_.to_numpy(), rtol=1e-9)


def test_covariates_from_the_transactions_with_duckdb_equal_pandas(ws: Path) -> None:
    """The channel is read from each customer's first transaction: DuckDB summarises the
    file and only (id, date, amount, channel) come to pandas; the fits equal pandas'."""
    models = ('[[models]]\nfamily = "bgnbd"\nname = "bg-channel"\npurchase_covariates = '
              '["channel"]\ndropout_covariates = ["channel"]\n[spend]\nfamily = "gammagamma"\n'
              'spend_covariates = ["channel"]\n[report]\nenabled = false\n')
    runs = {}
    for engine in ("pandas", "duckdb"):
        text = INPUTS["transactions"] + f'engine = "{engine}"\n' + models
        result = _invoke("run", str(_config(ws, f"cov-{engine}", text)))
        assert result.exit_code == 0, result.output
        runs[engine] = ws / "runs" / f"cov-{engine}" / OBS_END
    a, b = (pd.read_parquet(r / "forecasts" / "bg-channel.parquet") for r in runs.values())
    assert set(a["channel"]) == {"web", "shop", "app"}
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-8)
    params = [cm.load_model(r / "models" / "bg-channel.json").params_ for r in runs.values()]
    pd.testing.assert_series_equal(params[0], params[1], rtol=1e-8)


def test_covariates_from_the_customer_table_reach_the_report(ws: Path) -> None:
    """[customers] feeds the fits and the comparison (each model with its attributes): the
    report compares the covariate model and writes its coefficients."""
    table = pd.read_csv(ws / "customers.csv")
    table["channel"] = table["channel"].map({"web": "online", "shop": "store", "app": "online"})
    table.rename(columns={"customer_id": "id"}).to_csv(ws / "attrs.csv", index=False)
    text = INPUTS["transactions"] + '[customers]\npath = "attrs.csv"\nid_col = "id"\n' \
        '[[models]]\nfamily = "bgnbd"\n[[models]]\nfamily = "pnbd"\nname = "pnbd-channel"\n' \
        'purchase_covariates = ["channel"]\n'
    result = _invoke("run", str(_config(ws, "cov-table", text)))
    assert result.exit_code == 0, result.output
    d = ws / "runs" / "cov-table" / OBS_END
    fc = pd.read_parquet(d / "forecasts" / "pnbd-channel.parquet")
    assert set(fc["channel"]) == {"online", "store"}  # the table's values, not tx.csv's
    metrics = pd.read_csv(d / "report" / "metrics.csv", index_col=0)
    assert {"bgnbd", "pnbd-channel"} <= set(metrics.index)
    coefs = pd.read_csv(d / "report" / "coefficients.csv")
    assert coefs.astype(str).apply(lambda c: c.str.contains("channel")).any().any()


def test_duckdb_tracking_equals_pandas(ws: Path) -> None:
    """Tracking with DuckDB reads the files with the engine (a per-customer frame only)."""
    got = {}
    for engine in ("pandas", "duckdb"):
        text = INPUTS["transactions"] + f'engine = "{engine}"\n[[models]]\nfamily = "bgnbd"\n' \
            '[report]\nenabled = false\n'
        path = _config(ws, f"track-{engine}", text)
        for end in (OBS_END, "1998-06-27"):
            result = _invoke("run", str(path), "--observation-end", end)
            assert result.exit_code == 0, result.output
        got[engine] = pd.read_csv(ws / "runs" / f"track-{engine}" / "1998-06-27" /
                                  "tracking.csv")
    a, b = got["pandas"], got["duckdb"]
    assert a["actual_purchases"].sum() > 0
    for col in ("model", "customer_id", "actual_purchases", "actual_revenue"):
        pd.testing.assert_series_equal(a[col], b[col], check_exact=False, rtol=1e-12)
    # the engines' spend fits agree to ~1e-8 (DuckDB sums money as exact decimals)
    for col in ("predicted_purchases", "predicted_revenue"):
        pd.testing.assert_series_equal(a[col], b[col], check_exact=False, rtol=1e-6)


# --------------------------------------------------------------------------------------
# Bayesian and hierarchical (tiny draws), Spark
# --------------------------------------------------------------------------------------


def test_bayesian_hierarchical_run_strict_then_written(ws: Path) -> None:
    """A hierarchical Bayesian BG/NBD over the customer table's channel, by its registry name
    (no method): 2 × 40 draws cannot reach an effective sample size of 200, so --strict
    exits 2 writing nothing; without it the run is written with the problems listed.

    The data are those of tests/test_cli_bayes.py's hierarchical fit (the first 200 CDNOW
    customers to 1997-06-30, the same channels), so in one test session the model's
    structure is compiled once (clvmodels.models.compiled)."""
    tx = pd.read_csv(ws / "tx.csv")
    tx[tx["customer_id"].isin(tx["customer_id"].unique()[:200])].to_csv(ws / "tx200.csv",
                                                                         index=False)
    text = INPUTS["transactions"].replace("tx.csv", "tx200.csv").replace(OBS_END, CAL)
    path = _config(ws, "hier", text + '[customers]\npath = "customers.csv"\n'
                   '[[models]]\nfamily = "bayes-bgnbd"\nsegment_col = "channel"\n'
                   '[models.sampler]\ndraws = 40\ntune = 40\nchains = 2\n'
                   '[report]\nenabled = false\n')
    strict = _invoke("run", str(path), "--strict")
    assert strict.exit_code == 2, strict.output
    lines = [ln for ln in strict.stderr.splitlines() if ln.startswith("Sampling problem:")]
    assert lines and all(ln.startswith("Sampling problem: bayes-bgnbd: ") for ln in lines)
    assert "effective sample size" in strict.stderr
    assert not (ws / "runs" / "hier").exists()
    result = _invoke("run", str(path))
    assert result.exit_code == 0, result.output
    d = ws / "runs" / "hier" / CAL
    m = json.loads((d / "manifest.json").read_text())
    assert m["config"]["models"][0]["method"] == "bayes"
    assert m["seeds"]["bayes-bgnbd"] == 5
    assert m["sampling_problems"] and all(p.startswith("bayes-bgnbd: ")
                                          for p in m["sampling_problems"])
    model = cm.load_model(d / "models" / "bayes-bgnbd.nc")
    assert model.hierarchical and sorted(map(str, model.segment_labels_)) == ["app", "shop",
                                                                              "web"]
    fc = pd.read_parquet(d / "forecasts" / "bayes-bgnbd.parquet")
    assert len(fc) == 200 and set(fc["channel"]) == {"web", "shop", "app"}
    assert (fc["clv_lower"] <= fc["clv"]).all() and (fc["clv"] <= fc["clv_upper"]).all()


def test_spark_engine_run_equals_pandas_and_tracks(ws: Path, spark: object) -> None:
    """engine = "spark": the summary, fits, valuation and value tiers in Spark, covariates
    joined from [customers] in Spark; the forecast is written by Spark in parts, equal to
    the pandas engine's; the report reads only the columns it needs into pandas; tracking
    collects only a per-customer frame."""
    models = '[customers]\npath = "customers.csv"\n[[models]]\nfamily = "bgnbd"\n' \
        '[[models]]\nfamily = "bgnbd"\nname = "bg-channel"\npurchase_covariates = ["channel"]\n'
    pandas_run = _config(ws, "eng-pandas", INPUTS["transactions"] + models)
    assert _invoke("run", str(pandas_run)).exit_code == 0
    path = _config(ws, "eng-spark", INPUTS["transactions"] + 'engine = "spark"\n' + models
                   ).read_text() + "partition_rows = 120\n"
    (ws / "eng-spark.toml").write_text(path, encoding="utf-8")
    result = _invoke("run", str(ws / "eng-spark.toml"))
    assert result.exit_code == 0, result.output
    assert "Summarising transactions with spark" in result.stderr
    d = ws / "runs" / "eng-spark" / OBS_END
    parts = sorted((d / "forecasts" / "bgnbd").glob("*.parquet"))
    assert len(parts) == 3  # 300 customers, 120 a part
    for label in ("bgnbd", "bg-channel"):
        got = pd.read_parquet(d / "forecasts" / label)
        got["customer_id"] = got["customer_id"].astype(int)
        got = got.set_index("customer_id").sort_index()
        want = pd.read_parquet(ws / "runs" / "eng-pandas" / OBS_END / "forecasts" /
                               f"{label}.parquet").sort_index()
        for col in ("frequency", "recency", "T", "expected_purchases", "probability_alive"):
            np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float),
                                       rtol=1e-8, err_msg=f"{label}: {col}")
        for col in ("expected_spend", "clv"):  # Spark sums money as exact decimals: ~1e-7
            np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float),
                                       rtol=1e-6, err_msg=f"{label}: {col}")
        assert (got["value_tier"] == want["value_tier"]).mean() > 0.99, label  # ties aside
    assert list(got["channel"]) == list(want["channel"])
    m = json.loads((d / "manifest.json").read_text())
    assert m["engine"] == "spark" and m["row_counts"]["customers"] == 300
    assert m["models"]["bgnbd"]["forecast"] == [f"forecasts/bgnbd/{p.name}" for p in parts]
    assert (d / "report" / "report.html").is_file()
    # a later run tracks the Spark forecast; the actuals come from Spark per customer
    result = _invoke("run", str(ws / "eng-spark.toml"), "--observation-end", "1998-06-27")
    assert result.exit_code == 0, result.output
    tracking = pd.read_csv(ws / "runs" / "eng-spark" / "1998-06-27" / "tracking.csv")
    assert set(tracking["model"]) == {"bgnbd", "bg-channel"} and len(tracking) == 600
    split = cm.calibration_holdout_split(ws / "tx.csv", calibration_end=OBS_END,
                                         observation_end="1998-06-27")
    bg = tracking[tracking["model"] == "bgnbd"].set_index("customer_id").sort_index()
    np.testing.assert_array_equal(bg["actual_purchases"].to_numpy(),
                                  split["frequency_holdout"].reindex(bg.index).to_numpy())


def test_spark_refuses_what_it_does_not_run_yet(ws: Path) -> None:
    text = INPUTS["transactions"] + 'engine = "spark"\n[[models]]\nfamily = "bgnbd"\n' \
        'purchase_covariates = ["channel"]\n[[models]]\nfamily = "bayes-bgnbd"\n' \
        'segment_col = "channel"\n'
    with pytest.raises(ConfigError) as info:
        load_config(_config(ws, "bad", text))
    text_ = str(info.value)
    assert "models[0].purchase_covariates: input.engine = 'spark' reads covariates from a " \
        "[customers] table" in text_
    assert "models[1].segment_col: input.engine = 'spark' fits no hierarchical model" in text_


def test_a_segment_in_the_customer_table_reaches_the_comparison(ws: Path) -> None:
    """The comparisons read a segment from their input's rows: one only in [customers] is
    joined onto the rows first (each row gets its customer's segment)."""
    import importlib

    execute = importlib.import_module("clvmodels.runs.execute")
    table = pd.read_csv(ws / "customers.csv").rename(columns={"customer_id": "id",
                                                              "channel": "tier"})
    table.to_csv(ws / "tiers.csv", index=False)
    config = load_config(_config(ws, "seg", INPUTS["transactions"]
                                 + '[customers]\npath = "tiers.csv"\nid_col = "id"\n'
                                 '[[models]]\nfamily = "bayes-bgnbd"\nsegment_col = "tier"\n'))
    rows = pd.read_csv(ws / "tx.csv")
    got = execute._segment_frame(config, rows, "tier")
    want = rows["customer_id"].map(table.set_index("id")["tier"])
    assert got["tier"].tolist() == want.tolist() and got["tier"].notna().all()
    assert execute._segment_frame(config, rows, "channel") is rows  # already a column
