"""One test per bad-input case: a ValidationError that names the column and shows the rows.

Every case also checks that the caller's frame is left exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from clvmodels import ValidationError, calibration_holdout_split, rfm_summary
from clvmodels._validation import DataWarning, require_columns, validate_rfm

NamesRows = Callable[..., None]


@pytest.fixture
def tx() -> pd.DataFrame:
    """Valid transactions with a non-default index, so row labels are recognisable."""
    return pd.DataFrame(
        {
            "customer_id": ["ann", "ann", "bob", "bob", "cat", "cat"],
            "date": ["2022-03-01", "2022-03-04", "2022-03-02", "2022-03-09", "2022-03-03",
                     "2022-03-05"],
            "amount": [10.0, 12.5, 8.0, 9.0, 4.0, 6.0],
        },
        index=pd.Index([101, 102, 103, 104, 105, 106]),
    )


def _fails(frame: pd.DataFrame, **kwargs: object) -> str:
    """Run rfm_summary on ``frame``, expect a ValidationError, check nothing was mutated."""
    before = frame.copy(deep=True)
    with pytest.raises(ValidationError) as info:
        rfm_summary(frame, **kwargs)  # type: ignore[arg-type]
    assert_frame_equal(frame, before)
    return str(info.value)


# --------------------------------------------------------------------------------------
# transactions
# --------------------------------------------------------------------------------------


def test_missing_column(tx: pd.DataFrame) -> None:
    message = _fails(tx.drop(columns="amount"))
    assert "'amount'" in message
    assert "missing column" in message
    message = _fails(tx, customer_id_col="client")
    assert "'client'" in message
    # the columns that are there are listed, to spot a typo
    assert "'customer_id'" in message


def test_unparseable_dates(tx: pd.DataFrame, names_rows: NamesRows) -> None:
    tx.loc[104, "date"] = "2022-13-45"
    tx.loc[106, "date"] = "yesterday"
    message = _fails(tx)
    names_rows(message, "date", [104, 106])
    assert "2022-13-45" in message and "yesterday" in message
    assert "2 offending row(s)" in message
    assert "parse" in message


def test_unparseable_integer_dates(tx: pd.DataFrame, names_rows: NamesRows) -> None:
    tx["date"] = [20220301, 20220304, 20220302, 20221399, 20220303, 20220305]
    message = _fails(tx)
    names_rows(message, "date", [104])
    assert "20221399" in message


@pytest.mark.parametrize("typo", ["1197-03-04", "2997-03-04", 11970304])
def test_out_of_range_dates(tx: pd.DataFrame, names_rows: NamesRows, typo: object) -> None:
    """Typos in the year parse (pandas 3 keeps microseconds) but cannot be summarised in
    nanoseconds: they are reported like unparseable dates, not as a bare overflow."""
    if isinstance(typo, int):
        tx["date"] = [20220301, 20220304, 20220302, 20220309, 20220303, 20220305]
    tx.loc[102, "date"] = typo
    message = _fails(tx)
    names_rows(message, "date", [102])
    assert str(typo) in message


def test_dates_far_apart_do_not_overflow(tx: pd.DataFrame) -> None:
    tx.loc[101, "date"] = "1678-01-01"  # more than 292 years (the int64-nanosecond span)
    # implausible (issue 9): refused unless the user keeps it, with a warning
    assert "implausible dates" in _fails(tx, time_unit="D")
    with pytest.warns(DataWarning, match="implausible dates"):
        rfm = rfm_summary(tx, time_unit="D", implausible_dates="warn")
    first = pd.Timestamp("1678-01-01")
    # ann's last purchase is on 2022-03-04; the observation ends with bob's, on 2022-03-09
    assert rfm.loc["ann", "recency"] == (pd.Timestamp("2022-03-04") - first).days
    assert rfm.loc["ann", "T"] == (pd.Timestamp("2022-03-09") - first).days


def test_missing_customer_ids(tx: pd.DataFrame, names_rows: NamesRows) -> None:
    tx.loc[103, "customer_id"] = None
    message = _fails(tx)
    names_rows(message, "customer_id", [103])
    assert "missing customer ids" in message
    assert "1 offending row(s)" in message


def test_missing_dates(tx: pd.DataFrame, names_rows: NamesRows) -> None:
    tx["date"] = pd.to_datetime(tx["date"])
    tx.loc[105, "date"] = pd.NaT
    message = _fails(tx)
    names_rows(message, "date", [105])
    assert "missing dates" in message


def test_nan_amounts(tx: pd.DataFrame, names_rows: NamesRows) -> None:
    tx.loc[102, "amount"] = np.nan
    message = _fails(tx)
    names_rows(message, "amount", [102])
    assert "NaN" in message


def test_non_numeric_amounts(tx: pd.DataFrame, names_rows: NamesRows) -> None:
    tx["amount"] = ["10.0", "12.5", "eight", "9", "4", "6"]
    message = _fails(tx)
    names_rows(message, "amount", [103])
    assert "eight" in message
    assert "not numbers" in message


def test_infinite_amounts(tx: pd.DataFrame, names_rows: NamesRows) -> None:
    tx.loc[106, "amount"] = np.inf
    names_rows(_fails(tx), "amount", [106])


def test_negative_amounts_raise(tx: pd.DataFrame, names_rows: NamesRows) -> None:
    tx.loc[102, "amount"] = -12.5
    message = _fails(tx)
    names_rows(message, "amount", [102])
    assert "negative" in message
    assert "negative_amounts='drop'" in message  # says how to get past it


def test_negative_amounts_drop(tx: pd.DataFrame) -> None:
    tx.loc[104, "amount"] = -9.0
    before = tx.copy(deep=True)
    dropped = rfm_summary(tx, negative_amounts="drop", time_unit="D")
    assert_frame_equal(tx, before)
    expected = rfm_summary(tx.drop(index=104), time_unit="D")
    assert_frame_equal(dropped, expected)
    assert dropped.loc["bob", "frequency"] == 0  # bob's return no longer counts as a purchase


def test_negative_amounts_drop_everything(tx: pd.DataFrame) -> None:
    tx["amount"] = -1.0
    message = _fails(tx, negative_amounts="drop")
    assert "'amount'" in message
    assert "negative" in message


def test_negative_amounts_bad_option(tx: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="negative_amounts"):
        rfm_summary(tx, negative_amounts="ignore")  # type: ignore[arg-type]


def test_many_offending_rows_are_abbreviated(tx: pd.DataFrame, names_rows: NamesRows) -> None:
    big = pd.concat([tx] * 5, ignore_index=True)
    big["amount"] = np.nan
    message = _fails(big)
    assert "30 offending row(s)" in message
    names_rows(message, "amount", [0, 1, 2, 3, 4])
    assert "... and 25 more" in message
    assert len(message.splitlines()) < 12


def test_observation_end_before_all_transactions(tx: pd.DataFrame) -> None:
    message = _fails(tx, observation_end="2022-02-28")
    assert "observation_end" in message
    assert "2022-02-28" in message
    assert "2022-03-01" in message  # the first transaction, for orientation


def test_calibration_end_before_all_transactions(tx: pd.DataFrame) -> None:
    before = tx.copy(deep=True)
    with pytest.raises(ValidationError, match="calibration_end") as info:
        calibration_holdout_split(tx, calibration_end="2022-01-01")
    assert "2022-03-01" in str(info.value)
    assert_frame_equal(tx, before)


def test_unparseable_observation_end(tx: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="observation_end"):
        rfm_summary(tx, observation_end="the end of march")


def test_empty_input(tx: pd.DataFrame) -> None:
    message = _fails(tx.iloc[:0])
    assert "empty" in message


def test_empty_input_missing_columns_reported_first() -> None:
    message = _fails(pd.DataFrame())
    assert "'customer_id'" in message


def test_not_a_dataframe() -> None:
    with pytest.raises(TypeError, match="DataFrame"):
        require_columns([1, 2, 3], ["a"])  # type: ignore[arg-type]


def test_unknown_engine(tx: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="engine"):
        rfm_summary(tx, engine="polars")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# user-supplied RFM frames
# --------------------------------------------------------------------------------------


@pytest.fixture
def rfm() -> pd.DataFrame:
    """A valid RFM frame indexed by customer id."""
    return pd.DataFrame(
        {
            "frequency": [0, 2, 5, 1],
            "recency": [0.0, 10.0, 30.0, 2.0],
            "T": [12.0, 20.0, 38.0, 2.0],
            "monetary_value": [0.0, 25.0, 14.5, 3.0],
        },
        index=pd.Index(["c1", "c2", "c3", "c4"], name="customer_id"),
    )


def _rfm_fails(frame: pd.DataFrame, **kwargs: object) -> str:
    before = frame.copy(deep=True)
    with pytest.raises(ValidationError) as info:
        validate_rfm(frame, **kwargs)  # type: ignore[arg-type]
    assert_frame_equal(frame, before)
    return str(info.value)


def test_valid_rfm_passes(rfm: pd.DataFrame, cdnow_rfm: pd.DataFrame) -> None:
    validate_rfm(rfm)
    validate_rfm(rfm, require_monetary=True)
    validate_rfm(cdnow_rfm, require_monetary=True)


def test_rfm_recency_greater_than_T(rfm: pd.DataFrame, names_rows: NamesRows) -> None:
    rfm.loc["c3", "recency"] = 40.0
    message = _rfm_fails(rfm)
    names_rows(message, "recency", ["c3"])
    assert "greater than T" in message


def test_rfm_recency_equal_to_T_is_fine(rfm: pd.DataFrame) -> None:
    rfm.loc["c3", "recency"] = 38.0
    validate_rfm(rfm)


@pytest.mark.parametrize("column", ["frequency", "recency", "T", "monetary_value"])
def test_rfm_negative_values(rfm: pd.DataFrame, names_rows: NamesRows, column: str) -> None:
    rfm.loc["c2", column] = -1
    message = _rfm_fails(rfm, require_monetary=True)
    names_rows(message, column, ["c2"])
    assert "negative" in message


def test_rfm_non_integer_frequency(rfm: pd.DataFrame, names_rows: NamesRows) -> None:
    rfm["frequency"] = rfm["frequency"].astype(float)
    validate_rfm(rfm)  # whole numbers stored as floats are fine
    rfm.loc["c4", "frequency"] = 1.5
    message = _rfm_fails(rfm)
    names_rows(message, "frequency", ["c4"])
    assert "whole number" in message


def test_rfm_missing_values(rfm: pd.DataFrame, names_rows: NamesRows) -> None:
    rfm.loc["c1", "T"] = np.nan
    message = _rfm_fails(rfm)
    names_rows(message, "T", ["c1"])
    assert "NaN" in message


def test_rfm_non_numeric(rfm: pd.DataFrame, names_rows: NamesRows) -> None:
    rfm["T"] = ["12", "20", "long ago", "2"]
    message = _rfm_fails(rfm)
    names_rows(message, "T", ["c3"])
    assert "not numeric" in message


def test_rfm_recency_without_repeat_purchases(rfm: pd.DataFrame, names_rows: NamesRows) -> None:
    rfm.loc["c1", "recency"] = 3.0
    message = _rfm_fails(rfm)
    names_rows(message, "recency", ["c1"])
    assert "frequency 0" in message


def test_rfm_missing_column(rfm: pd.DataFrame) -> None:
    message = _rfm_fails(rfm.drop(columns="T"))
    assert "'T'" in message
    message = _rfm_fails(rfm.drop(columns="monetary_value"), require_monetary=True)
    assert "'monetary_value'" in message
    validate_rfm(rfm.drop(columns="monetary_value"))  # only checked when required


def test_rfm_non_positive_spend_of_repeat_buyers(rfm: pd.DataFrame, names_rows: NamesRows) -> None:
    rfm.loc["c3", "monetary_value"] = 0.0
    validate_rfm(rfm)
    message = _rfm_fails(rfm, require_monetary=True)
    names_rows(message, "monetary_value", ["c3"])


def test_rfm_empty(rfm: pd.DataFrame) -> None:
    assert "empty" in _rfm_fails(rfm.iloc[:0])
