"""What only the Spark engine has: Spark DataFrames in and out, files read by Spark, the
attrs in column metadata, exact DECIMAL sums, no Python UDF in the plan.

The contract itself (identical results and refusals) is tested on every engine in
tests/test_engine_contract.py. These tests share one local Spark session (conftest).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from test_engine_contract import as_pandas, good
from test_engines_duckdb import assert_same, random_transactions

from clvmodels import ValidationError, calibration_holdout_split, rfm_summary

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install "
                    "'clvmodels[spark]')")

from pyspark.sql import types as T

from clvmodels.engines import spark as engine


@pytest.fixture(scope="module")
def tx() -> pd.DataFrame:
    return random_transactions(5, n_customers=120)


def test_spark_frame_in_and_out_with_attrs(spark, tx):
    """A Spark DataFrame (TimestampType in the session's UTC) gives a Spark DataFrame whose
    columns carry the attrs; equal to the pandas engine's result."""
    with engine.quiet_pandas_warnings():
        sdf = spark.createDataFrame(tx, schema="customer_id string, date timestamp, "
                                               "amount double")
    out = calibration_holdout_split(sdf, calibration_end="2019-08-01", time_unit="D",
                                    engine="spark")
    assert out.columns == ["customer_id", "frequency", "recency", "T", "monetary_value",
                           "frequency_holdout", "monetary_value_holdout", "duration_holdout"]
    types = {f.name: f.dataType for f in out.schema.fields}
    assert isinstance(types["frequency"], T.LongType) and isinstance(types["T"], T.DoubleType)
    attrs = engine.summary_attrs(out)
    assert attrs == {"time_unit": "D", "observation_end": "2019-08-01",
                     "calibration_end": "2019-08-01",
                     "holdout_end": str(tx["date"].max().date())}
    # the metadata survives a projection and a filter
    assert engine.summary_attrs(out.select("customer_id", "T").where("T > 1")) == attrs
    expected = calibration_holdout_split(tx, calibration_end="2019-08-01", time_unit="D")
    assert_same(expected, as_pandas(out))


def test_no_python_udf_and_exact_decimal_sums(spark, tx):
    days, _ = engine.day_summary_spark(
        tx, observation_end=None, calibration_end=None, customer_id_col="customer_id",
        datetime_col="date", monetary_value_col="amount")
    types = {f.name: f.dataType for f in days.schema.fields}
    assert types["total"] == engine.MONEY_TYPE and types["first_total"] == engine.MONEY_TYPE
    assert isinstance(types["first_day"], T.DateType)
    plan = days._jdf.queryExecution().executedPlan().toString()
    assert "Python" not in plan and "ArrowEval" not in plan


def test_summary_attrs_refuses_a_plain_frame(spark):
    with pytest.raises(ValueError, match="no clvmodels summary metadata"):
        engine.summary_attrs(spark.createDataFrame([(1,)], "x long"))


def test_parquet_with_time_zone(spark, tmp_path):
    """A Parquet column recording its zone falls on its own wall day (as in pandas)."""
    df = pd.DataFrame({
        "customer_id": [7, 7, 7, 8],
        "date": pd.to_datetime(["2021-05-01 23:30", "2021-05-02 00:30", "2021-06-01 01:00",
                                "2021-05-03 12:00"]).tz_localize("Asia/Tokyo"),
        "amount": [1.25, 2.5, 4.0, 3.0]})
    path = tmp_path / "tz.parquet"
    df.to_parquet(path)
    expected = rfm_summary(df, time_unit="D")
    assert expected.loc[7, "frequency"] == 2
    assert_same(expected, as_pandas(rfm_summary(path, time_unit="D", engine="spark")))


def test_csv_file_and_bad_parquet_rows_named_with_their_file(spark, tmp_path):
    df = good()
    df.to_csv(tmp_path / "ok.csv", index=False)
    assert_same(rfm_summary(df), as_pandas(rfm_summary(tmp_path / "ok.csv", engine="spark")))
    df.loc[[1, 6], "amount"] = -3.0
    df.to_parquet(tmp_path / "neg.parquet")
    with pytest.raises(ValidationError) as err:
        rfm_summary(tmp_path / "neg.parquet", engine="spark")
    message = str(err.value)
    assert message.startswith("column 'amount': negative amounts")
    assert "2 offending row(s)" in message and "neg.parquet" in message


def test_many_offending_rows_counted_not_collected(spark):
    rows = [("c", dt.date(2020, 1, 1), float("nan") if i % 2 else 1.0) for i in range(40)]
    sdf = spark.createDataFrame(rows, "customer_id string, date date, amount double")
    with pytest.raises(ValidationError) as err:
        rfm_summary(sdf, engine="spark")
    message = str(err.value)
    assert message.startswith("column 'amount': missing amounts (NaN); 20 offending row(s)")
    assert "... and 15 more" in message


def test_missing_column_and_bad_source(spark):
    with pytest.raises(ValidationError, match=r"missing column\(s\) \['amount'\]"):
        rfm_summary(good().drop(columns="amount"), engine="spark")
    with pytest.raises(TypeError, match="Spark or pandas DataFrame or a path"):
        rfm_summary({"a": 1}, engine="spark")


def test_session_helper_returns_the_running_session(spark):
    assert engine.session() is spark
    assert engine.session(conf={"spark.sql.shuffle.partitions": 2}) is spark
    assert np.isclose(float(spark.conf.get("spark.sql.shuffle.partitions")), 2)


def test_contract_from_files_and_spark_frames(spark, tmp_path):
    from test_engine_contract import assert_same_contract, random_subscriptions

    from clvmodels.contract import contract_summary

    subs = random_subscriptions(4, n_customers=60)
    subs = subs.loc[subs["customer_id"].map(lambda v: isinstance(v, str))]
    kw = dict(observation_end="2023-06-30", period="M")
    expected = contract_summary(subs, **kw)
    subs.to_csv(tmp_path / "s.csv", index=False)  # dates as ISO text
    subs.to_parquet(tmp_path / "s.parquet", index=False)  # timestamps
    for source in (tmp_path / "s.csv", tmp_path / "s.parquet",  # and as URIs, read by Spark
                   (tmp_path / "s.csv").as_uri(), tmp_path.as_uri() + "/s.parq*"):
        out = contract_summary(source, engine="spark", **kw)
        assert engine.summary_attrs(out)["data_kind"] == "contractual"
        assert_same_contract(expected, as_pandas(out))
    bad = subs.astype({"end": object})
    bad.iloc[2, 2] = "2023-13-01"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValidationError) as err:
        contract_summary(tmp_path / "bad.csv", engine="spark", **kw)
    assert str(err.value).startswith("column 'end': dates that are not ISO 8601")
    assert "2023-13-01" in str(err.value) and "bad.csv" in str(err.value)


def test_directory_and_glob_of_parquet_parts(spark, tmp_path):
    df = good()
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(df)), 3)):
        df.iloc[rows].to_parquet(parts / f"part-{i}.parquet")
    expected = rfm_summary(df)
    assert_same(expected, as_pandas(rfm_summary(parts, engine="spark")))
    assert_same(expected, as_pandas(rfm_summary(str(parts / "part-*.parquet"), engine="spark")))
    with pytest.raises(FileNotFoundError):
        rfm_summary(str(tmp_path / "nope-*.parquet"), engine="spark")
