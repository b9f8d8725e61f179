"""The Spark batch job past the basics (issue 12): URIs handed to Spark's reader as they are,
covariates from a customer table joined in Spark, value tiers from a distributed sort, a
Bayesian model's totals with their interval from per-draw partial sums, and what the CLI
shows while it runs. Results equal the pandas path's (parameters to 1e-8, values to 1e-9
relative). One local Spark session (conftest); CDNOW's 2357 customers at most.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from test_engine_contract import as_pandas, good
from test_engines_duckdb import assert_same

import clvmodels
from clvmodels import ValidationError, customer_lifetime_value, rfm_summary
from clvmodels.kpis import value_tiers

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install "
                    "'clvmodels[spark]')")

from clvmodels.engines import spark as engine
from clvmodels.engines.spark_covariates import join_customers_spark, read_customers_spark
from clvmodels.engines.spark_score import thin_posterior
from clvmodels.engines.spark_tiers import TIER_COLUMN, value_tiers_spark
from clvmodels.valuation.spark import spark_value_totals

END = "1997-09-30"
TX_COLS = dict(customer_id_col="customer_id", datetime_col="date", monetary_value_col="amount")


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape and np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


@pytest.fixture(scope="module")
def cdnow(spark, _cdnow_transactions, tmp_path_factory):
    """CDNOW as files (transactions CSV; a customer table CSV with a text ``channel`` and a
    numeric ``age``) and its pandas and Spark RFM summaries (weeks)."""
    root = tmp_path_factory.mktemp("cdnow")
    tx = _cdnow_transactions
    tx.to_csv(root / "tx.csv", index=False)
    ids = np.sort(tx["customer_id"].unique()).astype(int)
    table = pd.DataFrame({"customer_id": ids[::-1],  # another order than the summary's
                          "channel": np.where(ids[::-1] % 3 == 0, "web", "store"),
                          "age": 20 + ids[::-1] % 7})
    table.to_csv(root / "customers.csv", index=False)
    prfm = rfm_summary(tx, observation_end=END, time_unit="W", **TX_COLS)
    srfm = rfm_summary(tx, observation_end=END, time_unit="W", engine="spark", **TX_COLS)
    return root, table, prfm, srfm.cache()


# --------------------------------------------------------------------------------------
# 1. URIs: to Spark's reader unchanged
# --------------------------------------------------------------------------------------


def test_uris_are_read_by_spark_as_given(spark, tmp_path, monkeypatch):
    df = good()
    expected = rfm_summary(df)
    parts, csvs = tmp_path / "parts", tmp_path / "csvs"
    parts.mkdir()
    csvs.mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(df)), 2)):
        df.iloc[rows].to_parquet(parts / f"part-{i}.parquet")
        df.iloc[rows].to_csv(csvs / f"tx-{i}.csv", index=False)
    for uri in (parts.as_uri(),                      # a directory: Parquet part files
                parts.as_uri() + "/part-*.parquet",  # a glob, listed by Spark
                csvs.as_uri() + "/*.csv"):
        assert engine.is_uri(uri)
        assert_same(expected, as_pandas(rfm_summary(uri, engine="spark")))
    # a missing file:// path: Spark's error, naming it
    with pytest.raises(FileNotFoundError, match=r"nothing at file:///nowhere/tx\.parquet"):
        rfm_summary("file:///nowhere/tx.parquet", engine="spark")
    # an object store without its connector: Spark's own error, wrapped with the path
    with pytest.raises(OSError, match=r"s3a://bucket/tx/.*no file system for s3a://"):
        rfm_summary("s3a://bucket/tx/", engine="spark")
    # the reader receives the URI as it is (no local resolution, no existence check)
    seen = []

    def reader(self, *paths):
        seen.append(paths)
        raise RuntimeError("stop")

    monkeypatch.setattr(type(spark.read), "parquet", reader)
    for uri in ("s3a://bucket/tx/dt=2024-*/", "abfss://c@a.dfs.core.windows.net/tx",
                "gs://b/tx.parquet", "hdfs://nn:8020/tx", "dbfs:/mnt/tx"):
        with pytest.raises(OSError, match="stop"):
            rfm_summary(uri, engine="spark")
        assert seen[-1] == (uri,)
    monkeypatch.undo()
    # the CLI passes a URI on as typed (a Path would fold "s3a://" into "s3a:/")
    from typer.testing import CliRunner

    from clvmodels.cli import app

    out = tmp_path / "rfm.parquet"
    res = CliRunner().invoke(app, ["rfm", parts.as_uri() + "/", "--out", str(out),
                                   "--engine", "spark"])
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(out).set_index("customer_id").sort_index()
    pd.testing.assert_frame_equal(table[expected.columns], expected.sort_index(),
                                  check_dtype=False, check_names=False)
    res = CliRunner().invoke(app, ["rfm", "s3a://bucket/tx/", "--out", str(tmp_path / "x"
                                                                         ".parquet"),
                                   "--engine", "spark"])
    assert res.exit_code == 1 and "Spark could not read s3a://bucket/tx/" in res.output
    # --out as a URI too: written by Spark; an existing one refused without --force
    uri = (tmp_path / "by-uri.parquet").as_uri()
    args = ["rfm", str(csvs / "tx-0.csv"), "--out", uri, "--engine", "spark"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0 and "Parquet part file" in res.output, res.output
    assert len(pd.read_parquet(tmp_path / "by-uri.parquet")) == len(
        rfm_summary(df.iloc[np.array_split(np.arange(len(df)), 2)[0]]))
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1 and f"output {uri!r} already exists" in res.output
    res = CliRunner().invoke(app, [*args[:3], "s3a://bucket/rfm.parquet", *args[4:]])
    assert res.exit_code == 1 and "Spark could not write s3a://bucket/rfm.parquet" in res.output
    assert not engine.is_uri("C:/data/tx.csv") and not engine.is_uri("tx.csv")
    assert engine.is_parquet_path("s3a://b/tx/") and not engine.is_parquet_path("gs://b/*.csv")


# --------------------------------------------------------------------------------------
# 2. value tiers and covariates
# --------------------------------------------------------------------------------------


def test_value_tiers_equal_pandas_with_ties_and_zeros(spark):
    rng = np.random.default_rng(2)
    n = 203
    values = rng.choice([0.0, -0.0, 1.5, 2.0, 7.25], n) + np.where(
        rng.random(n) < 0.3, rng.random(n), 0.0)
    ids = [f"c{i:03d}" for i in rng.permutation(n)]
    series = pd.Series(values, index=pd.Index(ids, name="customer_id"), name="clv")
    with engine.quiet_pandas_warnings():
        sdf = spark.createDataFrame(series.reset_index()).repartition(3)
    tiers = (("gold", 0.1), ("silver", 0.25), ("none", 0.001), ("rest", 0.649))
    want = value_tiers(series, tiers=tiers)
    got = value_tiers_spark(sdf, tiers=tiers)
    try:
        with engine.quiet_pandas_warnings():
            frame = got.frame.toPandas()
    finally:
        got.cached.unpersist()
    # sorted by value descending, then id
    assert frame["clv"].is_monotonic_decreasing
    labels = frame.set_index("customer_id")[TIER_COLUMN].reindex(series.index)
    assert (labels.to_numpy() == want.labels.astype(str).to_numpy()).all()
    pd.testing.assert_frame_equal(got.summary, want.summary, rtol=1e-12)
    assert got.summary.loc["none", "customers"] == 0  # an empty tier: NaN statistics
    bad = sdf.withColumn("clv", engine.F.when(engine.F.col("customer_id") == ids[4],
                                              float("nan")).otherwise(engine.F.col("clv")))
    with pytest.raises(ValidationError, match=rf"clv: missing or infinite values in 1 row\(s\): "
                                              rf"'{ids[4]}'"):
        value_tiers_spark(bad)


def test_covariates_joined_in_spark_fit_equal_pandas(spark, cdnow):
    root, table, prfm, srfm = cdnow
    customers = read_customers_spark(spark, root / "customers.csv")
    assert dict(customers.dtypes) == {"customer_id": "bigint", "channel": "string",
                                      "age": "bigint"}
    joined = join_customers_spark(srfm, customers, columns=["channel", "age"])
    assert joined.columns == [*srfm.columns, "channel", "age"]
    assert engine.summary_attrs(joined)["time_unit"] == "W"
    pdata = clvmodels.join_customers(prfm, table, on="customer_id", columns=["channel", "age"])
    kw = dict(purchase_covariates=["channel", "age"], dropout_covariates=["channel"])
    m_s, m_p = clvmodels.BetaGeo(**kw).fit(joined), clvmodels.BetaGeo(**kw).fit(pdata)
    assert list(m_s.params_.index) == list(m_p.params_.index)
    assert _rel(m_s.params_, m_p.params_) < 1e-8
    g_s = clvmodels.GammaGamma(spend_covariates=["channel"]).fit(joined)
    g_p = clvmodels.GammaGamma(spend_covariates=["channel"]).fit(pdata)
    assert _rel(g_s.params_, g_p.params_) < 1e-8
    # refusals, each naming ids: customers without attributes, duplicate ids, clashes
    with pytest.raises(ValidationError, match=r"no row for 2 row\(s\): 1, 2 of the data"):
        join_customers_spark(srfm, customers.where("customer_id > 2"), columns=["channel"])
    with pytest.raises(ValidationError, match=r"duplicate customer ids: 1 row\(s\): 7"):
        join_customers_spark(srfm, customers.union(customers.where("customer_id = 7")))
    with pytest.raises(ValidationError, match="already in the data"):
        join_customers_spark(srfm, customers.withColumnRenamed("age", "T"), columns=["T"])
    # ids as text in the table, numbers in the summary: matched as text, as pandas does
    text_ids = customers.withColumn("customer_id", engine.F.col("customer_id").cast("string"))
    assert join_customers_spark(srfm, text_ids, columns=["age"]).count() == len(prfm)


def test_cli_forecast_with_covariates_and_tiers_equal_pandas(cdnow, tmp_path):
    """``forecast --engine spark --customers``: the Parquet output has the pandas forecast's
    columns (summary, covariates, valuation, value_tier), values equal to 1e-9, the same
    tiers; stderr shows one line per step and no Spark log line."""
    from typer.testing import CliRunner

    from clvmodels.cli import app
    from clvmodels.workflow import forecast

    root, table, _, _ = cdnow
    out = tmp_path / "clv.parquet"
    args = ["forecast", str(root / "tx.csv"), "--out", str(out), "--engine", "spark",
            "--observation-end", END, "--purchase-covariates", "channel,age",
            "--dropout-covariates", "channel", "--spend-covariates", "channel",
            "--customers", str(root / "customers.csv"), "--spark-master", "local[2]"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    steps = ["Summarising", "Joining the customer attributes", "Fitting BG/NBD",
             "Fitting Gamma-Gamma", "Valuing 2,357 customers", "Ranking the customers",
             "Writing"]
    lines = res.stderr.splitlines()
    found = [next(i for i, line in enumerate(lines) if line.startswith(s)) for s in steps]
    assert found == sorted(found), lines
    assert not [line for line in lines if "WARN" in line or "[Stage" in line]
    assert "Value tiers (by CLV)" in res.stdout and "Wrote 2,357 customers" in res.stdout
    want = forecast(pd.read_csv(root / "tx.csv"), observation_end=END, spend="gammagamma",
                    purchase_covariates=["channel", "age"], dropout_covariates=["channel"],
                    spend_covariates=["channel"], customers=table).forecast
    got = pd.read_parquet(out)
    assert list(got.columns) == ["customer_id", *want.columns]
    assert got["clv"].is_monotonic_decreasing  # written by value, highest first
    got = got.set_index("customer_id").loc[want.index]
    for col in want.columns:
        if col in ("channel", "value_tier"):
            assert (got[col].astype(str) == want[col].astype(str)).all(), col
        else:
            assert _rel(got[col], want[col]) < 1e-9, col
    # and covariates without a customer table are refused before any Spark work
    res = CliRunner().invoke(app, [*args[:-4], "--force"])
    assert res.exit_code == 1 and "--customers table" in res.output


# --------------------------------------------------------------------------------------
# 3. a Bayesian model's totals
# --------------------------------------------------------------------------------------


def test_bayesian_totals_with_interval_equal_pandas(cdnow):
    _, _, prfm, srfm = cdnow
    srfm = srfm.where("CAST(customer_id AS INT) % 4 = 0")  # 589 customers: a quick fit
    prfm = prfm[prfm.index.astype(int) % 4 == 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short chain's R-hat / ESS warning
        model = clvmodels.BayesianBetaGeo().fit(prfm, draws=60, tune=60, chains=2,
                                                random_seed=4)
    gg = clvmodels.GammaGamma().fit(prfm)
    kw = dict(horizon="26W", discount_rate=0.1, interval=0.8)
    got = spark_value_totals(model, gg, srfm, max_draws=60, **kw)
    thinned = thin_posterior(model, 60)
    want = customer_lifetime_value(thinned, gg, prfm, **kw).attrs
    assert model.n_draws == 120 and got["n_draws"] == want["n_draws"] == 60
    assert got["interval"] == 0.8
    for key in ("total_clv", "total_clv_lower", "total_clv_upper"):
        assert _rel(got[key], want[key]) < 1e-9, key
    assert got["total_clv_lower"] < got["total_clv"] < got["total_clv_upper"]
    # expected purchases: a valuation with spend 1, no discounting
    purchases = customer_lifetime_value(thinned, 1.0, prfm, horizon="26W", discount_rate=0.0,
                                        interval=0.8).attrs
    for key in ("", "_lower", "_upper"):
        assert _rel(got[f"total_purchases{key}"], purchases[f"total_clv{key}"]) < 1e-9, key
    with pytest.raises(TypeError, match="Bayesian"):
        spark_value_totals(clvmodels.BetaGeo().fit(prfm), gg, srfm, **kw)


# --------------------------------------------------------------------------------------
# 4. what the CLI's Spark session is told
# --------------------------------------------------------------------------------------


def test_cli_session_settings_quiet_spark():
    from pathlib import Path
    from urllib.parse import urlparse

    from clvmodels.cli.spark_options import session_settings

    s = session_settings(["spark.executor.memory=8g"])
    assert s["spark.ui.showConsoleProgress"] == "false"
    assert s["spark.executor.memory"] == "8g" and s["spark.sql.session.timeZone"] == "UTC"
    option = s["spark.driver.extraJavaOptions"]
    assert option.startswith("-Dlog4j2.configurationFile=file:")
    text = Path(urlparse(option.split("=", 1)[1]).path).read_text()
    assert "appender.console.filter.threshold.level = error" in text
    mine = session_settings(["spark.driver.extraJavaOptions=-Dlog4j2.configurationFile=x",
                             "spark.ui.showConsoleProgress=true"])
    assert mine["spark.driver.extraJavaOptions"] == "-Dlog4j2.configurationFile=x"
    assert mine["spark.ui.showConsoleProgress"] == "true"


def test_spark_step_shows_the_running_tasks(spark):
    import contextlib
    import re
    from types import SimpleNamespace

    from clvmodels.cli.spark_options import spark_step

    seen: list[str] = []

    @contextlib.contextmanager
    def step(message):
        seen.append(message)
        yield SimpleNamespace(update=seen.append)

    with spark_step(step, spark, "Sleeping", every=0.05):  # 4 tasks of 2 x 0.3 s each
        spark.range(0, 8, numPartitions=4).selectExpr(
            "reflect('java.lang.Thread', 'sleep', CAST(300 AS BIGINT))").collect()
    assert seen[0] == "Sleeping"
    shown = [re.fullmatch(r"Sleeping \((\d+)/(\d+) tasks\)", m) for m in seen[1:]]
    assert shown and all(shown), seen
    assert {int(m.group(2)) for m in shown} == {4}


def test_cli_overview_shows_the_totals_interval():
    """What ``forecast --engine spark`` prints after a Bayesian fit: the totals with their
    interval, the tiers and the top customers (rendered without Spark)."""
    from rich.console import Console

    from clvmodels.cli.spark_options import SparkForecast, spark_overview

    values = pd.Series([5.0, 1.0, 3.0, 2.0], index=pd.Index(["a", "b", "c", "d"],
                                                            name="customer_id"), name="clv")
    top = pd.DataFrame({"frequency": [3, 1], "clv": [5.0, 3.0]},
                       index=pd.Index(["a", "c"], name="customer_id"))
    totals = {"total_clv": 11.0, "total_clv_lower": 9.5, "total_clv_upper": 12.25,
              "total_purchases": 4.0, "total_purchases_lower": 3.0,
              "total_purchases_upper": 5.0, "interval": 0.9, "n_draws": 500}
    result = SparkForecast(None, None, 4, 1, value_tiers(values).summary, totals, top,
                           {"horizon": "12M", "horizon_units": 52.18, "time_unit": "W",
                            "discount_rate": 0.1, "margin": 1.0})
    console = Console(width=160, record=True)
    console.print(spark_overview(result))
    text = console.export_text()
    assert "11.00 (90% interval 9.50 – 12.25)" in text
    assert "4.0 (90% interval 3.0 – 5.0)" in text and "2.75" in text  # mean CLV
    assert "Value tiers (by CLV)" in text and "Top 2 customers by CLV" in text
