"""The DuckDB engine's settings (memory limit, threads, spill folder), and refusals that its
first pass sees only in the day-level aggregates (a bad amount among good ones on one day,
infinities cancelling, bad ids on dropped rows) worded as the pandas engine's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_engines_duckdb import assert_same, random_transactions

from clvmodels import ValidationError, calibration_holdout_split, rfm_summary
from clvmodels.engines.duckdb import TEMP_DIRECTORY_ENV, day_summary_duckdb

COLS = dict(customer_id_col="customer_id", datetime_col="date", monetary_value_col="amount")


@pytest.fixture(scope="module")
def tx() -> pd.DataFrame:
    return random_transactions(3, n_customers=300)


def test_memory_limit_and_threads_through_rfm_summary(tx):
    expected = rfm_summary(tx, engine="pandas")
    actual = rfm_summary(tx, engine="duckdb", memory_limit="64MB", threads=1)
    assert_same(expected, actual)
    split = dict(calibration_end=tx["date"].quantile(0.6).normalize())
    assert_same(calibration_holdout_split(tx, engine="pandas", **split),
                calibration_holdout_split(tx, engine="duckdb", threads=2, **split))


def test_settings_refused_for_other_engines_and_when_malformed(tx):
    with pytest.raises(ValueError, match="engine='duckdb'"):
        rfm_summary(tx, engine="pandas", memory_limit="1GB")
    with pytest.raises(ValueError, match="at least 1"):
        rfm_summary(tx, engine="duckdb", threads=0)
    with pytest.raises(TypeError, match="integer"):
        day_summary_duckdb(tx, observation_end=None, calibration_end=None, threads="2",
                           **COLS)


def test_spill_folder_is_private_and_removed(tx, tmp_path, monkeypatch):
    before = list(tmp_path.iterdir())
    days, _ = day_summary_duckdb(tx, observation_end=None, calibration_end=None,
                                 memory_limit="64MB", threads=1, temp_directory=tmp_path,
                                 **COLS)
    assert len(days) == tx["customer_id"].nunique()
    assert list(tmp_path.iterdir()) == before  # nothing left behind
    with pytest.raises(FileNotFoundError, match="temp_directory"):
        day_summary_duckdb(tx, observation_end=None, calibration_end=None,
                           temp_directory=tmp_path / "missing", **COLS)
    monkeypatch.setenv(TEMP_DIRECTORY_ENV, str(tmp_path / "also-missing"))
    with pytest.raises(FileNotFoundError, match="also-missing"):
        day_summary_duckdb(tx, observation_end=None, calibration_end=None, **COLS)


def _frame(ids, days, amounts) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ids, "date": pd.to_datetime(days),
                         "amount": np.asarray(amounts, dtype=float)})


def _same_refusal(df: pd.DataFrame, fragment: str, **kwargs) -> None:
    messages = []
    for engine in ("pandas", "duckdb"):
        with pytest.raises(ValidationError) as err:
            rfm_summary(df, engine=engine, **kwargs)
        messages.append(str(err.value))
    assert fragment in messages[0]
    assert messages[0] == messages[1]


def test_infinities_cancelling_on_one_day_are_refused():
    """+inf and -inf on one day sum to NaN (not to a finite total): still refused, named."""
    df = _frame(["a", "a", "a", "b"], ["2020-01-01", "2020-01-01", "2020-02-01", "2020-01-02"],
                [np.inf, -np.inf, 2.0, 3.0])
    _same_refusal(df, "not finite", negative_amounts="drop")
    _same_refusal(df, "not finite")


def test_missing_id_on_a_dropped_negative_amount_is_refused():
    """Dropping negative amounts comes after the id checks: a NaN or blank id on a negative
    amount is refused, not dropped."""
    nan_id = pd.DataFrame({"customer_id": [1.0, np.nan, 2.0, 2.0],
                           "date": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03",
                                                   "2020-02-03"]),
                           "amount": [1.0, -4.0, 2.0, 3.0]})
    _same_refusal(nan_id, "missing customer ids", negative_amounts="drop")
    blank_id = nan_id.assign(customer_id=["a", "  ", "b", "b"])
    _same_refusal(blank_id, "missing customer ids", negative_amounts="drop")


def test_negative_infinity_refused_even_when_negatives_are_dropped():
    df = _frame(["a", "a", "b", "b"], ["2020-01-01", "2020-02-01", "2020-01-03", "2020-02-03"],
                [1.0, -np.inf, 2.0, -3.0])
    messages = []
    for engine in ("pandas", "duckdb"):
        with pytest.raises(ValidationError) as err:
            rfm_summary(df, engine=engine, negative_amounts="drop")
        messages.append(str(err.value))
    assert "not finite" in messages[0]
    assert messages[0] == messages[1]


def test_bad_amount_on_a_day_with_good_ones_is_found():
    """The day-level pass sees a bad amount only as a day with fewer exact amounts than
    rows: a NaN among good amounts of the same customer and day is still refused, named."""
    df = _frame(["a", "a", "a", "b"], ["2020-01-01", "2020-01-01", "2020-01-01", "2020-01-02"],
                [1.0, np.nan, 2.0, 3.0])
    with pytest.raises(ValidationError, match="missing amounts") as err:
        rfm_summary(df, engine="duckdb")
    with pytest.raises(ValidationError) as theirs:
        rfm_summary(df, engine="pandas")
    assert str(err.value) == str(theirs.value)
