"""RFM summaries: published CDNOW numbers, the lifetimes oracle, units, edge cases, compression."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal

from clvmodels import (
    TIME_UNITS,
    CompressedRFM,
    calibration_holdout_split,
    compress_rfm,
    rfm_summary,
)
from clvmodels.rfm import read_transactions, time_unit_days

CAL_END = "1997-09-30"
HOLDOUT_END = "1998-06-30"
RFM_COLUMNS = ["frequency", "recency", "T", "monetary_value"]


# --------------------------------------------------------------------------------------
# CDNOW: the published numbers (REFERENCE.md)
# --------------------------------------------------------------------------------------


def test_cdnow_published_totals(cdnow_rfm: pd.DataFrame) -> None:
    x = cdnow_rfm["frequency"]
    assert len(cdnow_rfm) == 2357
    assert x.sum() == 2457
    assert (x == 0).sum() == 1411
    assert (x > 0).sum() == 946
    histogram = np.bincount(np.minimum(x.to_numpy(), 7), minlength=8)
    assert histogram.tolist() == [1411, 439, 214, 100, 62, 38, 29, 64]


def test_cdnow_contract(cdnow_rfm: pd.DataFrame) -> None:
    assert list(cdnow_rfm.columns) == RFM_COLUMNS
    assert cdnow_rfm.index.name == "customer_id"
    assert cdnow_rfm.index.is_unique
    assert cdnow_rfm.index.tolist() == list(range(1, 2358))
    assert pd.api.types.is_integer_dtype(cdnow_rfm["frequency"])
    for c in ["recency", "T", "monetary_value"]:
        assert cdnow_rfm[c].dtype == np.float64
    assert cdnow_rfm.attrs["time_unit"] == "W"
    assert cdnow_rfm.attrs["observation_end"] == CAL_END
    assert (cdnow_rfm["recency"] <= cdnow_rfm["T"]).all()
    one_timers = cdnow_rfm["frequency"] == 0
    assert (cdnow_rfm.loc[one_timers, ["recency", "monetary_value"]] == 0).all().all()
    assert (cdnow_rfm.loc[~one_timers, "monetary_value"] > 0).all()
    # every CDNOW customer made the first purchase in 1997 Q1: T between 26 and 39 weeks
    assert cdnow_rfm["T"].between(26, 39).all()


def test_cdnow_every_customer_matches_published_summary(
    cdnow_rfm: pd.DataFrame, cdnow_published: pd.DataFrame
) -> None:
    """x, t_x, T, zbar of all 2,357 customers equal the published summary to 2 decimals."""
    assert len(cdnow_published) == 2357
    assert cdnow_published.index.tolist() == cdnow_rfm.index.tolist()
    assert (cdnow_rfm["frequency"].to_numpy() == cdnow_published["frequency"].to_numpy()).all()
    tol = 0.005 + 1e-9  # published values are rounded half-up to 2 decimals
    for column in ["recency", "T", "monetary_value"]:
        diff = (cdnow_rfm[column] - cdnow_published[column]).abs()
        bad = diff[diff > tol]
        assert bad.empty, f"{column}: {len(bad)} customers differ, e.g.\n{bad.head()}"


def test_cdnow_calibration_holdout_split(
    cdnow_split: pd.DataFrame, cdnow_rfm: pd.DataFrame
) -> None:
    assert len(cdnow_split) == 2357
    assert cdnow_split["frequency_holdout"].sum() == 1882
    assert (cdnow_split["duration_holdout"] == 39.0).all()
    assert list(cdnow_split.columns[:4]) == RFM_COLUMNS
    assert set(cdnow_split.columns[4:]) == {
        "frequency_holdout", "monetary_value_holdout", "duration_holdout"
    }
    # the calibration part is exactly what rfm_summary gives at calibration_end
    assert_frame_equal(cdnow_split[RFM_COLUMNS], cdnow_rfm)
    assert cdnow_split.attrs["time_unit"] == "W"
    assert cdnow_split.attrs["calibration_end"] == CAL_END
    assert cdnow_split.attrs["holdout_end"] == HOLDOUT_END
    has_holdout = cdnow_split["frequency_holdout"] > 0
    assert (cdnow_split.loc[has_holdout, "monetary_value_holdout"] > 0).all()
    assert (cdnow_split.loc[~has_holdout, "monetary_value_holdout"] == 0).all()


def test_cdnow_split_default_observation_end_is_last_transaction(
    cdnow_transactions: pd.DataFrame, cdnow_split: pd.DataFrame
) -> None:
    split = calibration_holdout_split(cdnow_transactions, calibration_end=CAL_END)
    assert split.attrs["holdout_end"] == HOLDOUT_END
    assert_frame_equal(split, cdnow_split)


# --------------------------------------------------------------------------------------
# lifetimes 0.11.3 as an oracle
# --------------------------------------------------------------------------------------


def _lifetimes_utils() -> ModuleType:
    """``lifetimes.utils``, imported quietly (lifetimes sets a pandas option that pandas 3
    deprecates, and will break at import on pandas 4, where that option is removed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import utils

    return utils


@pytest.mark.parametrize(("time_unit", "multiplier"), [("D", 1), ("W", 7)])
def test_agrees_with_lifetimes_summary(
    cdnow_transactions: pd.DataFrame, time_unit: str, multiplier: int
) -> None:
    """lifetimes' freq="W" counts pandas weekly *periods* (calendar weeks), not days / 7, so
    the exact comparison is with freq="D" and freq_multiplier=7 (days divided by 7)."""
    utils = _lifetimes_utils()
    theirs = utils.summary_data_from_transaction_data(
        cdnow_transactions, "customer_id", "date", monetary_value_col="amount",
        observation_period_end=CAL_END, freq="D", freq_multiplier=multiplier,
    )
    ours = rfm_summary(cdnow_transactions, observation_end=CAL_END, time_unit=time_unit)
    assert ours.index.tolist() == theirs.index.tolist()
    assert_frame_equal(ours[RFM_COLUMNS], theirs[RFM_COLUMNS], check_dtype=False,
                       check_names=False, rtol=1e-12, atol=1e-9)


def test_agrees_with_lifetimes_calibration_and_holdout(cdnow_transactions: pd.DataFrame) -> None:
    """Exact agreement with ``lifetimes.utils.calibration_and_holdout_data``.

    lifetimes averages the holdout spend over raw transaction *rows*, whereas every other
    spend figure (and ours) is per purchase *day*; the CDNOW sample has same-day purchases in
    the holdout, so the comparison is made on transactions already merged by day.
    """
    utils = _lifetimes_utils()
    daily = cdnow_transactions.groupby(["customer_id", "date"], as_index=False)["amount"].sum()
    theirs = utils.calibration_and_holdout_data(
        daily, "customer_id", "date", calibration_period_end=CAL_END,
        observation_period_end=HOLDOUT_END, freq="D", freq_multiplier=7,
        monetary_value_col="amount",
    )
    ours = calibration_holdout_split(
        cdnow_transactions, calibration_end=CAL_END, observation_end=HOLDOUT_END,
        time_unit="W",
    )
    renamed = theirs.rename(columns=lambda c: c.removesuffix("_cal"))
    assert ours.index.tolist() == renamed.index.tolist()
    assert_frame_equal(ours, renamed[ours.columns], check_dtype=False, check_names=False,
                       rtol=1e-12, atol=1e-9)


# --------------------------------------------------------------------------------------
# hand-checked small cases
# --------------------------------------------------------------------------------------


def test_tiny_by_hand(tiny_transactions: pd.DataFrame) -> None:
    rfm = rfm_summary(tiny_transactions, observation_end="2020-01-31", time_unit="D")
    assert rfm.index.tolist() == ["a", "b", "c"]
    assert rfm.loc["a"].tolist() == [2, 28.0, 30.0, 27.5]
    assert rfm.loc["b"].tolist() == [0, 0.0, 16.0, 0.0]
    # c's second purchase is after observation_end: ignored
    assert rfm.loc["c"].tolist() == [0, 0.0, 29.0, 0.0]


def test_same_day_purchases_are_one_transaction(tiny_transactions: pd.DataFrame) -> None:
    rfm = rfm_summary(tiny_transactions, observation_end="2020-01-31", time_unit="D")
    # a bought 4 times on 3 distinct days: 2 repeat transactions, $20 + $5 summed to $25
    assert rfm.loc["a", "frequency"] == 2
    assert rfm.loc["a", "monetary_value"] == pytest.approx((25.0 + 30.0) / 2)
    # times of day do not split a day
    timed = tiny_transactions.copy()
    timed.loc[2, "date"] = pd.Timestamp("2020-01-08 23:59:59")
    timed.loc[1, "date"] = pd.Timestamp("2020-01-08 00:00:01")
    assert_frame_equal(rfm_summary(timed, observation_end="2020-01-31", time_unit="D"), rfm)


def test_monetary_value_excludes_first_purchase() -> None:
    tx = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2],
            "date": pd.to_datetime(
                ["2021-03-01", "2021-03-05", "2021-03-09", "2021-03-01", "2021-03-02"]
            ),
            "amount": [1000.0, 10.0, 20.0, 5.0, 8.0],
        }
    )
    rfm = rfm_summary(tx, time_unit="D")
    assert rfm.loc[1, "monetary_value"] == pytest.approx(15.0)  # not (1000+10+20)/3
    assert rfm.loc[2, "monetary_value"] == pytest.approx(8.0)


def test_observation_end_filters_transactions_and_customers() -> None:
    tx = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 3],
            "date": pd.to_datetime(
                ["2021-01-01", "2021-01-10", "2021-02-01", "2021-01-05", "2021-01-20"]
            ),
            "amount": [1.0, 2.0, 4.0, 8.0, 16.0],
        }
    )
    rfm = rfm_summary(tx, observation_end="2021-01-15", time_unit="D")
    assert rfm.index.tolist() == [1, 2]  # 3 is first seen after observation_end
    assert rfm.loc[1].tolist() == [1, 9.0, 14.0, 2.0]  # the February purchase is ignored
    assert rfm.attrs["observation_end"] == "2021-01-15"
    # observation_end is inclusive: a purchase on that very day counts
    on_the_day = rfm_summary(tx, observation_end="2021-01-20", time_unit="D")
    assert on_the_day.loc[3].tolist() == [0, 0.0, 0.0, 0.0]
    # default: the last transaction
    default = rfm_summary(tx, time_unit="D")
    assert default.attrs["observation_end"] == "2021-02-01"
    assert default.loc[1].tolist() == [2, 31.0, 31.0, 3.0]


def test_observation_end_accepts_timestamps_and_times_of_day(
    tiny_transactions: pd.DataFrame,
) -> None:
    reference = rfm_summary(tiny_transactions, observation_end="2020-01-31", time_unit="D")
    for end in [pd.Timestamp("2020-01-31"), pd.Timestamp("2020-01-31 18:30"),
                np.datetime64("2020-01-31"), "2020-01-31T23:59:59"]:
        assert_frame_equal(
            rfm_summary(tiny_transactions, observation_end=end, time_unit="D"), reference
        )


def test_calibration_holdout_by_hand() -> None:
    tx = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 1, 2, 3, 4],
            "date": pd.to_datetime(
                ["2021-01-01", "2021-01-03", "2021-01-12", "2021-01-12", "2021-01-20",
                 "2021-01-02", "2021-01-15", "2021-02-15"]
            ),
            "amount": [5.0, 7.0, 1.0, 2.0, 9.0, 4.0, 6.0, 100.0],
        }
    )
    split = calibration_holdout_split(
        tx, calibration_end="2021-01-10", observation_end="2021-01-31", time_unit="D"
    )
    # 3 (first seen in the holdout) and 4 (after observation_end) are not customers yet
    assert split.index.tolist() == [1, 2]
    assert split.loc[1, RFM_COLUMNS].tolist() == [1, 2.0, 9.0, 7.0]
    assert split.loc[1, "frequency_holdout"] == 2  # 01-12 (two rows, one day) and 01-20
    assert split.loc[1, "monetary_value_holdout"] == pytest.approx((3.0 + 9.0) / 2)
    assert split.loc[2, ["frequency_holdout", "monetary_value_holdout"]].tolist() == [0, 0.0]
    assert (split["duration_holdout"] == 21.0).all()


def test_calibration_holdout_requires_calibration_end(tiny_transactions: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="calibration_end"):
        calibration_holdout_split(tiny_transactions, calibration_end=None)
    with pytest.raises(ValueError, match="before calibration_end"):
        calibration_holdout_split(
            tiny_transactions, calibration_end="2020-01-20", observation_end="2020-01-10"
        )


def test_without_monetary_value(tiny_transactions: pd.DataFrame) -> None:
    no_amount = tiny_transactions.drop(columns="amount")
    rfm = rfm_summary(no_amount, monetary_value_col=None, observation_end="2020-01-31")
    assert list(rfm.columns) == ["frequency", "recency", "T"]
    with_amount = rfm_summary(tiny_transactions, observation_end="2020-01-31")
    assert_frame_equal(rfm, with_amount[["frequency", "recency", "T"]])


def test_custom_column_names(tiny_transactions: pd.DataFrame) -> None:
    renamed = tiny_transactions.rename(
        columns={"customer_id": "cust", "date": "ts", "amount": "value"}
    )
    rfm = rfm_summary(renamed, customer_id_col="cust", datetime_col="ts",
                      monetary_value_col="value", observation_end="2020-01-31")
    reference = rfm_summary(tiny_transactions, observation_end="2020-01-31")
    assert rfm.index.name == "cust"
    assert_frame_equal(rfm, reference.rename_axis("cust"))


# --------------------------------------------------------------------------------------
# time units
# --------------------------------------------------------------------------------------


def test_time_units_are_consistent(cdnow_transactions: pd.DataFrame) -> None:
    by_unit = {
        unit: rfm_summary(cdnow_transactions, observation_end=CAL_END, time_unit=unit)
        for unit in ["D", "W", "M", "Y"]
    }
    days = by_unit["D"]
    for unit, rfm in by_unit.items():
        assert rfm.attrs["time_unit"] == unit
        assert_series_equal(rfm["frequency"], days["frequency"])
        assert_series_equal(rfm["monetary_value"], days["monetary_value"])
        for column in ["recency", "T"]:
            np.testing.assert_allclose(rfm[column] * TIME_UNITS[unit], days[column],
                                       rtol=1e-12)
    np.testing.assert_allclose(days["T"], 7 * by_unit["W"]["T"], rtol=1e-12)
    # whole days in "D"
    assert (days["T"] == np.round(days["T"])).all()
    assert (days["recency"] == np.round(days["recency"])).all()


def test_time_unit_lengths() -> None:
    assert time_unit_days("D") == 1.0
    assert time_unit_days("W") == 7.0
    assert time_unit_days("M") == pytest.approx(365.25 / 12)
    assert time_unit_days("Y") == 365.25
    for bad in ["w", "weeks", "H", None]:
        with pytest.raises(ValueError, match="time_unit"):
            time_unit_days(bad)  # type: ignore[arg-type]


def test_unknown_time_unit_fails_fast(tiny_transactions: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="unknown time_unit"):
        rfm_summary(tiny_transactions, time_unit="fortnight")


# --------------------------------------------------------------------------------------
# input forms and the caller's frame
# --------------------------------------------------------------------------------------


def test_date_forms_agree(tiny_transactions: pd.DataFrame) -> None:
    reference = rfm_summary(tiny_transactions, observation_end="2020-01-31")
    as_text = tiny_transactions.assign(date=tiny_transactions["date"].dt.strftime("%Y-%m-%d"))
    as_int = tiny_transactions.assign(
        date=tiny_transactions["date"].dt.strftime("%Y%m%d").astype("int64")
    )
    as_tz = tiny_transactions.assign(
        date=tiny_transactions["date"].dt.tz_localize("Europe/Berlin") + pd.Timedelta("1h")
    )
    for frame in [as_text, as_int, as_tz]:
        assert_frame_equal(rfm_summary(frame, observation_end="2020-01-31"), reference)


def test_caller_frame_not_mutated(cdnow_transactions: pd.DataFrame) -> None:
    original = cdnow_transactions.copy(deep=True)
    rfm_summary(cdnow_transactions, observation_end=CAL_END)
    calibration_holdout_split(cdnow_transactions, calibration_end=CAL_END)
    compress_rfm(rfm_summary(cdnow_transactions))
    assert_frame_equal(cdnow_transactions, original)
    assert cdnow_transactions.attrs == original.attrs


def test_caller_frame_not_mutated_with_dropped_negatives(tiny_transactions: pd.DataFrame) -> None:
    tx = tiny_transactions.copy()
    tx.loc[3, "amount"] = -30.0
    tx["date"] = tx["date"].dt.strftime("%Y-%m-%d")  # a column that needs parsing
    original = tx.copy(deep=True)
    rfm_summary(tx, negative_amounts="drop")
    assert_frame_equal(tx, original)


def test_read_transactions_csv_and_parquet(
    tmp_path: Path, tiny_transactions: pd.DataFrame
) -> None:
    reference = rfm_summary(tiny_transactions, observation_end="2020-01-31")
    csv = tmp_path / "tx.csv"
    parquet = tmp_path / "tx.parquet"
    tiny_transactions.to_csv(csv, index=False)
    tiny_transactions.to_parquet(parquet, index=False)
    for path in [csv, parquet, str(csv)]:
        frame = read_transactions(path)
        assert len(frame) == len(tiny_transactions)
        assert_frame_equal(rfm_summary(frame, observation_end="2020-01-31"), reference)
        # rfm_summary also takes the path itself
        assert_frame_equal(rfm_summary(path, observation_end="2020-01-31"), reference)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_transactions(tmp_path / "missing.csv")


# --------------------------------------------------------------------------------------
# compression
# --------------------------------------------------------------------------------------


def test_compress_round_trip(cdnow_rfm: pd.DataFrame) -> None:
    c = compress_rfm(cdnow_rfm)
    assert isinstance(c, CompressedRFM)
    assert c.n_customers == len(cdnow_rfm) == int(c.weights.sum())
    assert c.n_rows < len(cdnow_rfm)
    assert (c.weights >= 1).all()
    assert c.time_unit == "W"
    back = c.decompress()
    assert back.attrs["time_unit"] == "W"
    assert_frame_equal(back, cdnow_rfm[["frequency", "recency", "T"]], check_dtype=False)
    # the unique rows are unique, and the frame view carries the weights
    frame = c.to_frame()
    assert not frame.duplicated(["frequency", "recency", "T"]).any()
    assert frame["weight"].sum() == len(cdnow_rfm)


def test_compress_weights_count_identical_rows() -> None:
    rfm = pd.DataFrame(
        {"frequency": [0, 2, 0, 2, 1], "recency": [0.0, 3.0, 0.0, 3.0, 1.0],
         "T": [5.0, 6.0, 5.0, 6.0, 6.0]},
        index=pd.Index([10, 11, 12, 13, 14], name="customer_id"),
    )
    c = compress_rfm(rfm)
    table = c.to_frame().set_index(["frequency", "recency", "T"])["weight"]
    assert table.to_dict() == {(0.0, 0.0, 5.0): 2, (1.0, 1.0, 6.0): 1, (2.0, 3.0, 6.0): 2}


def test_compress_expand_restores_original_order(cdnow_rfm: pd.DataFrame) -> None:
    shuffled = cdnow_rfm.sample(frac=1.0, random_state=7)
    c = compress_rfm(shuffled)
    # a per-unique-row value that identifies the row: expand must give back each
    # customer's own value, in the caller's (shuffled) order and index
    per_row = c.frequency * 1e6 + c.recency * 1e3 + c.T
    expanded = c.expand(per_row)
    assert isinstance(expanded, pd.Series)
    assert expanded.index.equals(shuffled.index)
    expected = shuffled["frequency"] * 1e6 + shuffled["recency"] * 1e3 + shuffled["T"]
    np.testing.assert_allclose(expanded.to_numpy(), expected.to_numpy(), rtol=1e-12)
    # a DataFrame of per-row values expands the same way
    frame = c.expand(pd.DataFrame({"T": c.T, "weight": c.weights}))
    assert isinstance(frame, pd.DataFrame)
    assert frame.index.equals(shuffled.index)
    np.testing.assert_array_equal(frame["T"].to_numpy(), shuffled["T"].to_numpy())
    assert_frame_equal(c.decompress(), shuffled[["frequency", "recency", "T"]],
                       check_dtype=False)


def test_compress_validates(names_rows: Callable[..., None]) -> None:
    from clvmodels import ValidationError

    bad = pd.DataFrame({"frequency": [1, 0], "recency": [9.0, 0.0], "T": [5.0, 5.0]})
    with pytest.raises(ValidationError) as info:
        compress_rfm(bad)
    names_rows(str(info.value), "recency", [0])
    assert compress_rfm(bad, validate=False).n_customers == 2
