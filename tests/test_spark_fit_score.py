"""Fitting on a Spark summary (compressed in Spark, fitted on the driver) and scoring every
customer on the executors equal the pandas engine: parameters to 1e-8, per-customer values
to 1e-9 relative; Bayesian means and intervals from the same (thinned) draws; refusals; the
CLI's ``forecast --engine spark``. One local Spark session (conftest), CDNOW's 2357 customers.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels import ValidationError, customer_lifetime_value, rfm_summary

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install "
                    "'clvmodels[spark]')")

from clvmodels.engines import spark as engine
from clvmodels.engines.spark_fit import WEIGHT, compress_for_fit
from clvmodels.engines.spark_score import thin_posterior
from clvmodels.models.spark_hooks import spark_predict

END = "1997-09-30"
TX_COLS = dict(customer_id_col="customer_id", datetime_col="date", monetary_value_col="amount")


@pytest.fixture(scope="module")
def summaries(spark, _cdnow_transactions):
    """(pandas RFM, Spark RFM) of CDNOW in weeks, with a text ``channel`` per customer."""
    tx = _cdnow_transactions
    prfm = rfm_summary(tx, observation_end=END, time_unit="W", **TX_COLS)
    srfm = rfm_summary(tx, observation_end=END, time_unit="W", engine="spark", **TX_COLS)
    ids = prfm.index.to_numpy()
    channel = pd.DataFrame({"customer_id": ids,
                            "channel": np.where(ids.astype(int) % 3 == 0, "web", "store")})
    with engine.quiet_pandas_warnings():
        schannel = spark.createDataFrame(channel.astype({"customer_id": str}))
    srfm = srfm.cache()
    return prfm, srfm, channel.set_index("customer_id")["channel"], schannel


def _pandas(sdf, id_col: str = "customer_id") -> pd.DataFrame:
    with engine.quiet_pandas_warnings():
        out = sdf.toPandas()
    out[id_col] = out[id_col].astype(int)
    return out.set_index(id_col).sort_index()


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape and np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def test_fit_and_clv_equal_pandas(summaries):
    prfm, srfm, _, _ = summaries
    bg_p, gg_p = clvmodels.BetaGeo().fit(prfm), clvmodels.GammaGamma().fit(prfm)
    bg_s, gg_s = clvmodels.BetaGeo().fit(srfm), clvmodels.GammaGamma().fit(srfm)
    assert _rel(bg_s.params_, bg_p.params_) < 1e-8
    assert _rel(gg_s.params_, gg_p.params_) < 1e-8
    assert bg_s.n_customers_ == bg_p.n_customers_ == len(prfm)
    assert bg_s.data_summary_ == bg_p.data_summary_
    assert bg_s.time_unit_ == "W"
    # only the unique rows come to the driver, with their counts
    rows, weight = compress_for_fit(bg_s, srfm)
    assert weight == WEIGHT and rows[WEIGHT].sum() == len(prfm)
    assert len(rows) == bg_p.data_summary_["n_unique_rows"] < len(prfm) / 2
    # every customer valued on the executors: equal to the pandas valuation of the same models
    clv_s = customer_lifetime_value(bg_s, gg_s, srfm, horizon="12M", discount_rate=0.1)
    assert clv_s.columns == ["customer_id", "expected_purchases", "probability_alive",
                             "expected_spend", "clv"]
    assert engine.summary_attrs(clv_s)["time_unit"] == "W"
    got = _pandas(clv_s)
    want = customer_lifetime_value(bg_s, gg_s, prfm, horizon="12M", discount_rate=0.1)
    want.index = want.index.astype(int)
    want = want.sort_index()
    assert len(got) == len(want) == 2357
    for col in want.columns:
        assert _rel(got[col], want[col]) < 1e-9, col
    # the prediction methods too
    pa = _pandas(bg_s.probability_alive(srfm))["probability_alive"]
    assert _rel(pa, bg_s.probability_alive(prfm).sort_index().to_numpy()) < 1e-9
    ep = _pandas(bg_s.expected_purchases(srfm, 10.0))["expected_purchases"]
    assert _rel(ep, bg_s.expected_purchases(prfm, 10.0).sort_index().to_numpy()) < 1e-9


def test_covariate_fit_equal_pandas(summaries):
    prfm, srfm, channel, schannel = summaries
    pdata = prfm.join(channel)
    sdata = srfm.join(schannel, on="customer_id")
    kw = dict(purchase_covariates=["channel"], dropout_covariates=["channel"])
    m_p = clvmodels.BetaGeo(**kw).fit(pdata)
    m_s = clvmodels.BetaGeo(**kw).fit(sdata)
    assert list(m_s.params_.index) == list(m_p.params_.index)
    assert "purchase:channel[web]" in m_s.params_.index  # "store" is the reference
    assert _rel(m_s.params_, m_p.params_) < 1e-8
    # segments join the grouping key too: the unique rows of (columns, segment)
    rows, weight = compress_for_fit(clvmodels.BayesianBetaGeo(segment_col="channel"), sdata)
    assert list(rows.columns) == ["frequency", "recency", "T", "channel", weight]
    assert rows[weight].sum() == len(pdata)
    assert len(rows) == len(pdata[["frequency", "recency", "T", "channel"]].drop_duplicates())
    got = _pandas(m_s.probability_alive(sdata))["probability_alive"]
    want = m_s.probability_alive(pdata)
    want.index = want.index.astype(int)
    assert _rel(got, want.sort_index()) < 1e-9


def test_refusals(spark, summaries):
    prfm, srfm, _, _ = summaries
    bare = srfm.select(*[engine.F.col(c).alias(c, metadata={}) for c in srfm.columns])
    with pytest.raises(ValidationError, match="no clvmodels summary metadata"):
        clvmodels.BetaGeo().fit(bare)
    bg = clvmodels.BetaGeo().fit(prfm)
    daily = engine.with_summary_attrs(srfm, {**engine.summary_attrs(srfm), "time_unit": "D"})
    with pytest.raises(ValidationError, match=r"time unit 'D'.*fitted in 'W'"):
        bg.probability_alive(daily)
    with pytest.raises(ValidationError, match="lacks column"):
        clvmodels.BetaGeo().fit(srfm.drop("recency"))
    with pytest.raises(ValidationError, match="standardize_covariates"):
        clvmodels.BetaGeo(purchase_covariates=["T"], standardize_covariates=True).fit(srfm)
    with pytest.raises(ValidationError, match="name of a column"):
        clvmodels.BetaGeo().fit(srfm, weights=np.ones(3))
    with pytest.raises(TypeError, match="acquisition_cost must be a number"):
        customer_lifetime_value(bg, 10.0, srfm, horizon="12M", discount_rate=0.1,
                                acquisition_cost=pd.Series([1.0]))


def test_bayesian_fit_and_thinned_scoring(summaries):
    """A Bayesian fit on the Spark frame (compressed there); scoring on Spark with at most
    ``max_draws`` draws equals the pandas call on the thinned model, intervals included."""
    prfm, srfm, _, _ = summaries
    srfm = srfm.where("CAST(customer_id AS INT) % 4 = 0")  # 589 customers: a quick fit
    prfm = prfm[prfm.index.astype(int) % 4 == 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short chain's R-hat / ESS warning
        model = clvmodels.BayesianBetaGeo().fit(srfm, draws=100, tune=100, chains=2,
                                                random_seed=3)
    assert model.n_customers_ == len(prfm) == 589 and model.n_draws == 200
    thinned = thin_posterior(model, 60)
    assert thinned.n_draws == 60 and model.n_draws == 200
    got = _pandas(spark_predict(model, "probability_alive", srfm, interval=0.8,
                                max_draws=60))
    want = thinned.probability_alive(prfm, interval=0.8)
    want.index = want.index.astype(int)
    want = want.sort_index()
    assert list(got.columns) == [str(c) for c in want.columns]
    for col in want.columns:
        assert _rel(got[str(col)], want[col]) < 1e-9, col
    # CLV with a constant spend: 200 draws are under the cap, so all of them are used
    got = _pandas(customer_lifetime_value(model, 25.0, srfm, horizon="26W",
                                          discount_rate=0.1))
    want = customer_lifetime_value(model, 25.0, prfm, horizon="26W", discount_rate=0.1)
    want.index = want.index.astype(int)
    want = want.sort_index()
    assert {"clv", "clv_lower", "clv_upper"} <= set(got.columns)
    for col in ("clv", "clv_lower", "clv_upper", "probability_alive"):
        assert _rel(got[col], want[col]) < 1e-9, col


def test_cli_forecast_and_rfm_engine_spark(summaries, tmp_path, _cdnow_transactions):
    """``forecast --engine spark`` on a CSV: a Parquet directory of part files whose CLV
    equals the library's (pandas) valuation; ``rfm --engine spark`` likewise; a bad
    ``--spark-conf`` and an existing output are refused (exit 1)."""
    from typer.testing import CliRunner

    from clvmodels.cli import app

    prfm = summaries[0]
    csv = tmp_path / "tx.csv"
    _cdnow_transactions.to_csv(csv, index=False)
    out = tmp_path / "clv.parquet"
    args = ["forecast", str(csv), "--out", str(out), "--engine", "spark",
            "--observation-end", END, "--horizon", "12M", "--spark-master", "local[2]",
            "--spark-conf", "spark.sql.shuffle.partitions=2"]
    runner = CliRunner()
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "Wrote 2,357 customers" in res.output and out.is_dir()
    assert list(out.glob("part-*.parquet"))
    got = pd.read_parquet(out)
    got["customer_id"] = got["customer_id"].astype(int)
    got = got.set_index("customer_id").sort_index()
    bg, gg = clvmodels.BetaGeo().fit(prfm), clvmodels.GammaGamma().fit(prfm)
    want = customer_lifetime_value(bg, gg, prfm, horizon="12M", discount_rate=0.1)
    want.index = want.index.astype(int)
    want = want.sort_index()
    for col in want.columns:
        assert _rel(got[col], want[col]) < 1e-9, col
    # an existing output is refused before any work; a malformed setting too
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "already exists" in again.output
    bad = runner.invoke(app, [*args[:-2], "--spark-conf", "nonsense", "--force"])
    assert bad.exit_code == 1 and "KEY=VALUE" in bad.output
    rfm_out = tmp_path / "rfm.parquet"
    res = runner.invoke(app, ["rfm", str(csv), "--out", str(rfm_out), "--engine", "spark",
                              "--observation-end", END])
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(rfm_out)
    table["customer_id"] = table["customer_id"].astype(int)
    table = table.set_index("customer_id").sort_index()
    expected = prfm.copy()
    expected.index = expected.index.astype(int)
    pd.testing.assert_frame_equal(table[expected.columns], expected.sort_index(),
                                  check_dtype=False, check_names=False)


def test_contractual_fit_and_value_equal_pandas(spark):
    """sBG on the contract summary's Spark engine: ``periods, churned`` compressed in Spark;
    parameters and per-customer DERL values equal the pandas engine's."""
    from clvmodels import contract_summary

    rng = np.random.default_rng(5)
    n = 400
    start = np.datetime64("2021-01-01") + rng.integers(0, 3 * 365, n).astype("timedelta64[D]")
    length = rng.geometric(0.08, n) * 30
    end = (start + length.astype("timedelta64[D]")).astype(str).astype(object)
    end[rng.random(n) < 0.3] = None
    subs = pd.DataFrame({"customer_id": np.arange(n), "start": start.astype(str), "end": end})
    kw = dict(observation_end="2024-06-30", period="M")
    pdata = contract_summary(subs, **kw)
    sdata = contract_summary(subs, engine="spark", **kw)
    m_p, m_s = clvmodels.ShiftedBetaGeo().fit(pdata), clvmodels.ShiftedBetaGeo().fit(sdata)
    assert _rel(m_s.params_, m_p.params_) < 1e-8 and m_s.n_customers_ == n
    got = _pandas(customer_lifetime_value(m_s, 10.0, sdata, horizon="12M",
                                          discount_rate=0.1))
    want = customer_lifetime_value(m_s, 10.0, pdata, horizon="12M", discount_rate=0.1)
    want.index = want.index.astype(int)
    want = want.sort_index()
    assert len(got) == n
    for col in ("clv", "expected_periods"):
        assert _rel(got[col], want[col]) < 1e-9, col
