"""Exact money in the DuckDB engine: amounts summed as DECIMAL with one scale per column.

Each amount (read as a double, as the pandas engine reads it) becomes a ``DECIMAL(15, k)``
with ``k`` decided once for the column -- guessed from its first rows, confirmed on every
row -- and the days' and customers' sums are ``DECIMAL(38, k)``, returned as float64: the
double nearest the exact decimal sum. A column whose amounts are no such decimals (more
than 15 significant digits, e.g. the noise of float arithmetic) is summed with ``fsum``.
The results equal the pandas engine's to the cent (:func:`assert_same`), and bad amounts
are still refused with the pandas engine's message.
"""

from __future__ import annotations

import math
from decimal import Decimal

import duckdb
import numpy as np
import pandas as pd
import pytest
from test_engines_duckdb import assert_same

from clvmodels import ValidationError, calibration_holdout_split, rfm_summary
from clvmodels.engines.duckdb import day_summary_duckdb
from clvmodels.engines.duckdb_read import SCALES, choose_scale, scale_counts_sql

COLS = dict(customer_id_col="customer_id", datetime_col="date", monetary_value_col="amount")


def days(df: pd.DataFrame, **kwargs) -> pd.DataFrame:
    return day_summary_duckdb(df, observation_end=None, calibration_end=None, **COLS,
                              **kwargs)[0]


def exact_totals(df: pd.DataFrame) -> pd.Series:
    """Each customer's total as the double nearest the exact sum of the amounts' decimal
    texts (``repr``: the shortest text that reads back as the same double)."""
    return df.groupby("customer_id")["amount"].apply(
        lambda s: float(sum(Decimal(repr(float(v))) for v in s)))


def naive_totals(df: pd.DataFrame) -> pd.Series:
    """Left-to-right double sums: the drift that exact sums must not have."""
    return df.groupby("customer_id")["amount"].apply(lambda s: float(np.cumsum(s.to_numpy())[-1]))


def scale_of(amounts: list[float]) -> int | None:
    """The scale the engine's rule decides for a column of ``amounts``."""
    con = duckdb.connect()
    try:
        con.register("t", pd.DataFrame({"a": amounts}))
        return choose_scale(con.execute(
            f"SELECT {', '.join(scale_counts_sql('a'))} FROM t").fetchone())
    finally:
        con.close()


@pytest.fixture(scope="module")
def drifting() -> pd.DataFrame:
    """One customer with 0.1 a million times (over ten days), one with large and small
    amounts, one with cents that drift: left-to-right double sums are off for each."""
    n = 1_000_000
    tenth = pd.DataFrame({
        "customer_id": "tenth",
        "date": pd.Timestamp("2021-01-01") + pd.to_timedelta(np.arange(n) % 10, "D"),
        "amount": 0.1,
    })
    rng = np.random.default_rng(3)
    mixed_amounts = np.where(np.arange(20_000) % 2 == 0, 1e9, 0.01)
    mixed = pd.DataFrame({
        "customer_id": "mixed",
        "date": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 30, 20_000), "D"),
        "amount": mixed_amounts,
    })
    cents = pd.DataFrame({
        "customer_id": "cents",
        "date": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 30, 50_000), "D"),
        "amount": np.round(rng.uniform(0, 100, 50_000), 2),
    })
    return pd.concat([tenth, mixed, cents], ignore_index=True)


def test_float_drift_summed_exactly(drifting):
    ours = days(drifting)["total"]
    exact = exact_totals(drifting)
    assert exact["tenth"] == 100_000.0 and exact["mixed"] == 1e13 + 100.0
    # the data do drift when summed as doubles, so the equality below can fail
    drift = naive_totals(drifting)
    assert (drift != exact).all()
    np.testing.assert_array_equal(ours.to_numpy(), exact.reindex(ours.index).to_numpy())
    # the day sums too: each day of "tenth" is exactly 10,000
    one = days(drifting.loc[drifting["customer_id"] == "tenth"])
    assert one.loc["tenth", "first_total"] == 10_000.0
    assert_same(rfm_summary(drifting, engine="pandas", time_unit="D"),
                rfm_summary(drifting, engine="duckdb", time_unit="D"))


def test_result_is_float64_in_the_same_columns(drifting):
    ours = days(drifting)
    assert [str(ours[c].dtype) for c in ("total", "first_total")] == ["float64", "float64"]
    split = calibration_holdout_split(drifting, engine="duckdb", calibration_end="2021-01-05",
                                      time_unit="D")
    expected = calibration_holdout_split(drifting, engine="pandas",
                                         calibration_end="2021-01-05", time_unit="D")
    assert_same(expected, split)
    assert split["monetary_value_holdout"].dtype == np.float64


def test_scale_rule():
    assert SCALES[:2] == (2, 3) and set(SCALES) == set(range(16))
    assert scale_of([1.0, 20.0]) == 2  # cents first, whole amounts fit them
    assert scale_of([0.1, 19.99, 0.005]) == 3
    assert scale_of([1e14, 3.0]) == 0  # 15 digits: whole amounts only
    assert scale_of([1e14, 0.5]) is None  # 1e14 with a tenth needs 16 digits
    assert scale_of([0.1 + 0.2]) is None  # 0.30000000000000004: float noise
    assert scale_of([np.nan, np.inf, 2.5]) == 2  # bad values are refused elsewhere
    assert choose_scale([1] * len(SCALES)) is None


def test_scale_guess_from_first_rows_refuted_later():
    """The first 10,000 rows have cents, a later one a tenth of a cent: the column is read
    at scale 3 (exact), not rounded at the guessed 2."""
    n = 12_000
    amounts = np.full(n, 1.25)
    amounts[11_000] = 0.001
    df = pd.DataFrame({"customer_id": np.arange(n) % 7,
                       "date": pd.Timestamp("2022-03-01") + pd.to_timedelta(np.arange(n) % 40, "D"),
                       "amount": amounts})
    ours = days(df)["total"]
    exact = exact_totals(df)
    np.testing.assert_array_equal(ours.to_numpy(), exact.reindex(ours.index).to_numpy())
    assert ours[11_000 % 7] % 1 != 0  # the 0.001 was kept, not rounded away


def test_too_many_decimals_summed_with_fsum():
    """Amounts with float noise (17 significant digits) have no DECIMAL(15, k): the column is
    summed in double with compensation -- to the cent the pandas engine's sum, and within
    double rounding of the exact (math.fsum) sum. Noise far down the column too."""
    rng = np.random.default_rng(5)
    n = 15_000
    amounts = np.round(rng.uniform(1, 50, n), 2)
    amounts[-3:] = [0.1 + 0.2, 19.99 * 1.1, 1 / 3]
    df = pd.DataFrame({"customer_id": np.arange(n) % 5,
                       "date": pd.Timestamp("2022-01-01") + pd.to_timedelta(np.arange(n) % 90, "D"),
                       "amount": amounts})
    assert scale_of(list(amounts)) is None
    ours = days(df)["total"]
    best = df.groupby("customer_id")["amount"].apply(lambda s: math.fsum(s))
    np.testing.assert_allclose(ours.to_numpy(), best.reindex(ours.index).to_numpy(),
                               rtol=4e-16, atol=0)
    assert_same(rfm_summary(df, engine="pandas"), rfm_summary(df, engine="duckdb"))


def test_bad_amounts_still_refused_after_the_guess(tmp_path):
    """A missing amount after the rows the scale is guessed from, and a negative one, are
    refused with the pandas engine's message (DataFrame) or name the column, rows and
    count (Parquet: the row count from the file's metadata)."""
    n = 12_000
    df = pd.DataFrame({"customer_id": np.arange(n) % 9,
                       "date": pd.Timestamp("2022-03-01") + pd.to_timedelta(np.arange(n) % 40, "D"),
                       "amount": np.full(n, 2.5)})
    for bad in (np.nan, -1.0):
        broken = df.copy()
        broken.loc[[10_500, 11_999], "amount"] = bad
        with pytest.raises(ValidationError) as pandas_error:
            rfm_summary(broken, engine="pandas")
        with pytest.raises(ValidationError) as duckdb_error:
            rfm_summary(broken, engine="duckdb")
        assert str(duckdb_error.value) == str(pandas_error.value)
        path = tmp_path / f"tx_{bad}.parquet"
        broken.to_parquet(path)
        with pytest.raises(ValidationError) as file_error:
            rfm_summary(path, engine="duckdb")
        message = str(file_error.value)
        assert message.startswith("column 'amount': ") and "2 offending row(s)" in message
        assert "10500" in message and "11999" in message


def test_csv_and_parquet_text_amounts_exact(tmp_path, drifting):
    """From files: CSV amounts are text read as numbers (as pandas reads them), Parquet
    amounts doubles; both summed exactly, equal to the pandas engine to the cent."""
    small = drifting.groupby("customer_id").head(30_000).reset_index(drop=True)
    small.to_csv(tmp_path / "tx.csv", index=False)
    small.to_parquet(tmp_path / "tx.parquet")
    exact = exact_totals(small)
    for name in ("tx.csv", "tx.parquet"):
        path = tmp_path / name
        ours = day_summary_duckdb(path, observation_end=None, calibration_end=None,
                                  **COLS)[0]["total"]
        np.testing.assert_array_equal(ours.to_numpy(), exact.reindex(ours.index).to_numpy())
        assert_same(rfm_summary(path, engine="pandas"), rfm_summary(path, engine="duckdb"))


def test_negative_amounts_dropped_exact_sums():
    df = pd.DataFrame({"customer_id": ["a"] * 6 + ["b"] * 2,
                       "date": pd.to_datetime(["2020-01-01"] * 3 + ["2020-02-01"] * 3
                                              + ["2020-01-05", "2020-03-01"]),
                       "amount": [0.1, 0.2, -5.0, 0.7, 0.1, 0.2, 1.005, -2.0]})
    ours = days(df, negative_amounts="drop")
    assert ours.loc["a", "total"] == float(Decimal("0.1") + Decimal("0.2") + Decimal("0.7")
                                           + Decimal("0.1") + Decimal("0.2"))
    assert ours.loc["a", "first_total"] == 0.3 and ours.loc["b", "total"] == 1.005
    assert_same(rfm_summary(df, engine="pandas", negative_amounts="drop"),
                rfm_summary(df, engine="duckdb", negative_amounts="drop"))


def test_exact_where_compensated_summation_is_not():
    """Large and small cents: the sum of the doubles, even correctly rounded (math.fsum, or
    DuckDB's ``fsum``, the engine's sum before DECIMAL), ends in ...993.418, because each
    double is a little off its decimal; the sum of the decimals is ...993.42 -- DECIMAL's."""
    rng = np.random.default_rng(2)
    n = 100
    amounts = np.round(np.where(rng.random(n) < 0.5, rng.uniform(0, 1e12, n),
                                rng.uniform(0, 1, n)), 2)
    df = pd.DataFrame({"customer_id": 1, "date": pd.Timestamp("2020-05-05"), "amount": amounts})
    exact = exact_totals(df)[1]
    assert exact == 28167507103993.42 and math.fsum(amounts) == 28167507103993.418
    assert days(df).loc[1, "total"] == exact
