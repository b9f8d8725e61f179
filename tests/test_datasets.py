"""Bundled data: documented columns, dtypes and sizes of every loader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvmodels import rfm_summary
from clvmodels.datasets import data_path, load_cdnow_transactions, load_donations

CDNOW_COLUMNS = ["customer_id", "date", "quantity", "amount"]


def _check_cdnow(tx: pd.DataFrame, n_rows: int, n_customers: int) -> None:
    assert list(tx.columns) == CDNOW_COLUMNS
    assert len(tx) == n_rows
    assert tx["customer_id"].nunique() == n_customers
    assert tx["customer_id"].dtype == np.int64
    assert pd.api.types.is_datetime64_dtype(tx["date"])
    assert getattr(tx["date"].dt, "tz", None) is None
    assert tx["quantity"].dtype == np.int64
    assert tx["amount"].dtype == np.float64
    assert not tx.isna().any().any()
    # purchases from 1997-01-01 to 1998-06-30; every customer's first one in 1997 Q1
    assert tx["date"].min() == pd.Timestamp("1997-01-01")
    assert tx["date"].max() == pd.Timestamp("1998-06-30")
    assert tx.groupby("customer_id")["date"].min().max() <= pd.Timestamp("1997-03-31")
    assert (tx["quantity"] >= 1).all()
    assert (tx["amount"] >= 0).all()
    assert (tx["date"] == tx["date"].dt.normalize()).all()


def test_cdnow_sample() -> None:
    tx = load_cdnow_transactions(sample=True)
    _check_cdnow(tx, n_rows=6919, n_customers=2357)
    # the sample's own ids, 1..2357, as in the published per-customer summaries
    assert sorted(tx["customer_id"].unique().tolist()) == list(range(1, 2358))
    assert tx.index.equals(pd.RangeIndex(6919))
    first = tx.iloc[0]
    assert (first["customer_id"], first["date"], first["quantity"], first["amount"]) == (
        1, pd.Timestamp("1997-01-01"), 2, 29.33
    )
    # every field agrees with the raw file read independently, line by line
    raw = data_path("CDNOW_sample.txt").read_bytes().decode("ascii").split("\r\n")
    rows = [line.split() for line in raw if line.strip()]
    assert len(rows) == 6919
    assert tx["customer_id"].tolist() == [int(r[1]) for r in rows]
    assert tx["date"].dt.strftime("%Y%m%d").tolist() == [r[2] for r in rows]
    assert tx["quantity"].tolist() == [int(r[3]) for r in rows]
    assert tx["amount"].tolist() == [float(r[4]) for r in rows]


def test_cdnow_sample_is_the_default() -> None:
    pd.testing.assert_frame_equal(load_cdnow_transactions(), load_cdnow_transactions(True))


def test_cdnow_master() -> None:
    tx = load_cdnow_transactions(sample=False)
    _check_cdnow(tx, n_rows=69_659, n_customers=23_570)
    assert sorted(tx["customer_id"].unique().tolist()) == list(range(1, 23_571))


def test_cdnow_master_summarises() -> None:
    """The master file (ten times the sample) goes through the RFM summary cleanly."""
    tx = load_cdnow_transactions(sample=False)
    rfm = rfm_summary(tx, observation_end="1997-09-30", time_unit="W")
    assert len(rfm) == 23_570
    assert rfm["T"].between(26, 39).all()
    # the sample is a 1/10 sample: the share of one-time buyers is alike
    assert (rfm["frequency"] == 0).mean() == pytest.approx(1411 / 2357, abs=0.02)


def test_donations() -> None:
    d = load_donations()
    assert list(d.columns) == ["frequency", "recency", "periods", "weights"]
    assert len(d) == 22
    assert (d.dtypes == np.int64).all()
    assert d["weights"].sum() == 11_104
    assert (d["periods"] == 6).all()
    assert (d["frequency"] <= d["periods"]).all()
    assert (d["recency"] <= d["periods"]).all()
    # recency is 0 exactly when frequency is 0, and at least frequency otherwise
    assert ((d["recency"] == 0) == (d["frequency"] == 0)).all()
    assert (d["recency"] >= d["frequency"]).all()
    assert not d.duplicated(["frequency", "recency", "periods"]).any()
    assert d.iloc[0].tolist() == [0, 0, 6, 3464]


def test_data_path() -> None:
    assert data_path("CDNOW_sample.txt").is_file()
    assert data_path("donations.csv").name == "donations.csv"
    with pytest.raises(FileNotFoundError, match="no_such_file"):
        data_path("no_such_file.csv")
