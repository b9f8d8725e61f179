"""The DuckDB engine gives the pandas engine's results, from DataFrames and from files.

Identical means: same index (values, order, dtype), same columns and dtypes, same ``attrs``;
integer columns exactly equal, float columns equal to 1e-9 relative, spend to the cent.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clvmodels import ValidationError, calibration_holdout_split, rfm_summary
from clvmodels.datasets import load_cdnow_transactions
from clvmodels.engines.duckdb import day_summary_duckdb
from clvmodels.rfm import day_summary_pandas, prepare_transactions

INTEGER_COLUMNS = {"frequency", "frequency_holdout"}
MONEY_COLUMNS = {"monetary_value", "monetary_value_holdout"}
COLS = dict(customer_id_col="customer_id", datetime_col="date", monetary_value_col="amount")


def assert_same(expected: pd.DataFrame, actual: pd.DataFrame) -> None:
    """``actual`` (DuckDB) equals ``expected`` (pandas) as the module docstring defines."""
    pd.testing.assert_index_equal(actual.index, expected.index, exact=True)
    assert list(actual.columns) == list(expected.columns)
    assert actual.attrs == expected.attrs
    for col in expected.columns:
        want, got = expected[col], actual[col]
        assert got.dtype == want.dtype, (col, got.dtype, want.dtype)
        if col in INTEGER_COLUMNS:
            np.testing.assert_array_equal(got.to_numpy(), want.to_numpy(), err_msg=col)
        else:
            np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=col)
        if col in MONEY_COLUMNS:
            assert np.max(np.abs(got.to_numpy() - want.to_numpy()), initial=0.0) < 0.005


def both(fn, source, pandas_source=None, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``fn`` with the pandas engine (on ``pandas_source`` if given) and the DuckDB one."""
    expected = fn(source if pandas_source is None else pandas_source, engine="pandas", **kwargs)
    actual = fn(source, engine="duckdb", **kwargs)
    return expected, actual


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow_transactions(sample=False)


ODD_IDS = [
    " leading space", "trailing space ", "two  spaces", "a", "aa", "a a", "A", "Z", "z",
    "c1", "c10", "c100", "c9", "ñandú", "Ünïcødé", "客户", "客户 7", "🛒 cart", "a,b", 'q"uote',
    "x" * 60, "0042", "-1",
]


def random_transactions(seed: int, n_customers: int = 400) -> pd.DataFrame:
    """Transactions with ties: same-day purchases, equal timestamps, equal and zero amounts.

    Ids are strings of mixed lengths, with spaces, punctuation and non-ASCII characters;
    datetimes are tz-naive with times of day.
    """
    rng = np.random.default_rng(seed)
    ids = ODD_IDS + [f"cust {i}" for i in range(n_customers - len(ODD_IDS))]
    rows = []
    start = pd.Timestamp("2019-03-01")
    for cid in ids:
        first = int(rng.integers(0, 300))
        n = int(rng.geometric(0.25))
        days = np.sort(first + rng.integers(0, 200, n))
        days[0] = first
        for d in days:
            for _ in range(int(rng.choice([1, 1, 1, 2, 3]))):  # same-day purchases
                second = int(rng.integers(0, 86_400))
                amount = float(rng.choice([0.0, 9.99, 10.0, round(rng.uniform(1, 300), 2)]))
                rows.append((cid, start + pd.Timedelta(days=int(d), seconds=second), amount))
    tx = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    dup = tx.sample(frac=0.05, random_state=seed)  # exact duplicate rows
    tx = pd.concat([tx, dup], ignore_index=True)
    return tx.sample(frac=1.0, random_state=seed + 1).reset_index(drop=True)  # any order


@pytest.fixture(scope="module")
def random_tx() -> pd.DataFrame:
    return random_transactions(7)


@pytest.fixture(scope="module")
def random_files(random_tx: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The random transactions as one CSV, one Parquet file and three Parquet parts."""
    root = tmp_path_factory.mktemp("tx")
    csv = root / "tx.csv"
    random_tx.to_csv(csv, index=False)
    pq = root / "tx.parquet"
    random_tx.to_parquet(pq)
    parts = root / "parts"
    parts.mkdir()
    for i, chunk in enumerate(np.array_split(np.arange(len(random_tx)), 3)):
        random_tx.iloc[chunk].to_parquet(parts / f"part-{i}.parquet")
    return {"csv": csv, "parquet": pq, "glob": str(parts / "part-*.parquet"), "dir": parts}


# --------------------------------------------------------------------------------------
# identical results
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("time_unit", ["D", "W", "M", "Y"])
@pytest.mark.parametrize("observation_end", [None, "1997-12-31", "1998-03-15 17:30"])
def test_cdnow_rfm_summary(cdnow, time_unit, observation_end):
    expected, actual = both(rfm_summary, cdnow, time_unit=time_unit,
                            observation_end=observation_end)
    assert len(actual) == 23_570
    assert_same(expected, actual)


@pytest.mark.parametrize(
    ("calibration_end", "observation_end", "time_unit"),
    [("1997-09-30", None, "W"), ("1997-06-30", "1998-01-31", "D"), ("1997-12-31", None, "M")],
)
def test_cdnow_calibration_holdout(cdnow, calibration_end, observation_end, time_unit):
    expected, actual = both(calibration_holdout_split, cdnow, calibration_end=calibration_end,
                            observation_end=observation_end, time_unit=time_unit)
    assert actual["frequency_holdout"].sum() > 0
    assert_same(expected, actual)


def test_cdnow_without_monetary(cdnow):
    expected, actual = both(rfm_summary, cdnow, monetary_value_col=None)
    assert "monetary_value" not in actual
    assert_same(expected, actual)


def test_cdnow_yyyymmdd_integer_dates(cdnow):
    raw = cdnow.assign(date=cdnow["date"].dt.strftime("%Y%m%d").astype("int64"))
    expected, actual = both(rfm_summary, raw)
    assert_same(expected, actual)
    assert_same(rfm_summary(cdnow), actual)


def test_day_summary_matches_pandas_engine(random_tx):
    """The engine's own contract: the pandas day-level frame and the observation end."""
    days, obs_end = day_summary_duckdb(random_tx, observation_end=None, calibration_end=None,
                                       negative_amounts="raise", **COLS)
    tx = prepare_transactions(random_tx, **COLS)
    assert obs_end == tx["day"].max()
    expected = day_summary_pandas(tx, observation_end=obs_end)
    pd.testing.assert_frame_equal(days, expected, check_exact=False, rtol=1e-12)


def test_cdnow_float_and_arrow_dates(cdnow):
    """YYYYMMDD as floats (an integer column with gaps) and pyarrow date32 columns."""
    expected = rfm_summary(cdnow)
    floats = cdnow.assign(date=cdnow["date"].dt.strftime("%Y%m%d").astype("float64"))
    arrow = cdnow.assign(date=cdnow["date"].astype("date32[pyarrow]"))
    for raw in (floats, arrow):
        pandas_result, actual = both(rfm_summary, raw)
        assert_same(expected, pandas_result)
        assert_same(expected, actual)


@pytest.mark.parametrize("time_unit", ["D", "W"])
@pytest.mark.parametrize("observation_end", [None, "2019-09-15"])
def test_random_odd_ids_from_dataframe(random_tx, time_unit, observation_end):
    expected, actual = both(rfm_summary, random_tx, time_unit=time_unit,
                            observation_end=observation_end)
    if observation_end is None:
        assert set(ODD_IDS) <= set(actual.index)
    assert actual.index.is_monotonic_increasing
    assert (actual["frequency"] > 0).any() and (actual["frequency"] == 0).any()
    assert_same(expected, actual)


def test_random_calibration_holdout(random_tx):
    expected, actual = both(calibration_holdout_split, random_tx, calibration_end="2019-08-01",
                            observation_end="2019-12-31", time_unit="D")
    assert_same(expected, actual)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_from_files(random_files, kind):
    path = random_files[kind]
    expected, actual = both(rfm_summary, path)  # the pandas engine reads the file whole
    assert_same(expected, actual)
    expected, actual = both(calibration_holdout_split, str(path), calibration_end="2019-08-01")
    assert_same(expected, actual)


def test_from_glob_directory_and_list_of_parquet_parts(random_tx, random_files):
    expected = rfm_summary(random_tx, engine="pandas")
    assert_same(expected, rfm_summary(random_files["glob"], engine="duckdb"))
    assert_same(expected, rfm_summary(random_files["dir"], engine="duckdb"))
    parts = sorted(Path(random_files["dir"]).glob("*.parquet"))  # a list of files is fine too
    assert_same(expected, rfm_summary(parts, engine="duckdb"))


def test_string_dates_in_dataframe(random_tx):
    iso = random_tx.assign(date=random_tx["date"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    expected, actual = both(rfm_summary, iso)
    assert_same(expected, actual)
    assert_same(rfm_summary(random_tx), actual)
    us = random_tx.assign(date=random_tx["date"].dt.strftime("%m/%d/%Y"))
    assert_same(*both(rfm_summary, us))


@pytest.mark.parametrize(
    "tz", ["America/New_York", dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.UTC]
)
def test_tz_aware_datetimes_use_their_own_calendar_day(random_tx, tmp_path, tz):
    # times of day all round the clock: the UTC day often differs from the local one
    local = random_tx.assign(date=random_tx["date"].dt.tz_localize(tz))
    expected, actual = both(rfm_summary, local, time_unit="D")
    assert_same(expected, actual)
    assert_same(rfm_summary(random_tx, time_unit="D"), actual)
    local.to_parquet(tmp_path / "tz.parquet")
    assert_same(*both(rfm_summary, tmp_path / "tz.parquet", time_unit="D"))


def test_strings_with_mixed_utc_offsets_keep_their_local_day(random_tx):
    """ISO strings with different offsets (a multi-region export): both engines take each
    purchase's local calendar day, as for a tz-aware column — not a bare pandas error, and
    not the UTC day; an offset-free date such as 2020-01-03 is not mistaken for one."""
    offsets = np.array(["+01:00", "-05:00", "Z", "+0530", "-03", ""])
    stamps = random_tx["date"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    tagged = stamps + offsets[np.arange(len(stamps)) % len(offsets)]
    tagged = tagged.where(np.arange(len(stamps)) % 7 != 0,
                          random_tx["date"].dt.strftime("%Y-%m-%d"))
    mixed = random_tx.assign(date=tagged)
    expected, actual = both(rfm_summary, mixed, time_unit="D")
    assert_same(expected, actual)
    assert_same(rfm_summary(random_tx, time_unit="D"), actual)


def test_integer_and_categorical_ids(cdnow):
    sub = cdnow.iloc[:5000]
    nullable = sub.assign(customer_id=sub["customer_id"].astype("Int64"))
    assert_same(*both(rfm_summary, nullable))
    cats = sub.assign(customer_id=pd.Categorical(
        "id" + sub["customer_id"].astype(str), categories=sorted(
            "id" + sub["customer_id"].astype(str).unique(), reverse=True)))
    expected, actual = both(rfm_summary, cats)
    assert actual.index.is_monotonic_increasing  # values sorted, not the category order
    assert_same(expected, actual)


def test_negative_amounts_dropped(random_tx):
    tx = random_tx.copy()
    tx.loc[tx.index[::17], "amount"] = -5.0
    expected, actual = both(rfm_summary, tx, negative_amounts="drop")
    assert_same(expected, actual)
    expected, actual = both(calibration_holdout_split, tx, negative_amounts="drop",
                            calibration_end="2019-08-01")
    assert_same(expected, actual)


def test_caller_frame_untouched_and_settings(random_tx, monkeypatch):
    before = random_tx.copy()
    expected = rfm_summary(random_tx, engine="pandas")
    monkeypatch.setenv("CLVMODELS_DUCKDB_MEMORY_LIMIT", "300MB")
    monkeypatch.setenv("CLVMODELS_DUCKDB_THREADS", "1")
    assert_same(expected, rfm_summary(random_tx, engine="duckdb"))
    days, _ = day_summary_duckdb(random_tx, observation_end=None, calibration_end=None,
                                 memory_limit="200MB", threads=2, **COLS)
    assert len(days) == len(expected)
    pd.testing.assert_frame_equal(random_tx, before)


def test_csv_with_late_values_that_break_type_sniffing(tmp_path):
    """A text id and a bad amount beyond DuckDB's sniffing sample are still handled."""
    n = 30_000
    tx = pd.DataFrame({
        "customer_id": np.arange(n) % 997,
        "date": pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(n) % 365, unit="D"),
        "amount": np.round(np.linspace(1, 50, n), 2),
    }).astype({"customer_id": str})
    tx.loc[n - 1, "customer_id"] = "late-text-id"
    path = tmp_path / "late.csv"
    tx.to_csv(path, index=False)
    assert_same(*both(rfm_summary, path))
    bad = tx.astype({"amount": object})
    bad.loc[n - 2, "amount"] = "twelve"
    bad.to_csv(path, index=False)
    with pytest.raises(ValidationError, match=r"column 'amount': amounts that are not numbers"):
        rfm_summary(path, engine="duckdb")


# --------------------------------------------------------------------------------------
# bad input: same errors as the pandas engine, naming the column
# --------------------------------------------------------------------------------------


def good() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["a", "b", "c", "a", "b", "d", "e", "f"],
        "date": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03", "2020-02-01",
                                "2020-03-01", "2020-03-02", "2020-03-03", "2020-03-04"]),
        "amount": [10.0, 20.0, 5.0, 7.5, 1.0, 2.0, 3.0, 4.0],
    })


def with_value(col: str, rows: list[int], value: object, dtype: object = None):
    def make() -> pd.DataFrame:
        df = good()
        if dtype is not None:
            df[col] = df[col].astype(dtype)
        for r in rows:
            df.loc[r, col] = value
        return df
    return make


BAD_FRAMES = {
    "missing column": (lambda: good().drop(columns="amount"), "amount",
                       "missing column"),
    "empty": (lambda: good().iloc[:0], None, "empty"),
    "missing ids": (with_value("customer_id", [1, 4], None), "customer_id",
                    "missing customer ids"),
    "missing dates": (with_value("date", [2], pd.NaT), "date", "missing dates"),
    "unparseable dates": (with_value("date", [0, 3], "not a date", object), "date",
                          "cannot be parsed"),
    "dates out of range": (with_value("date", [4], "2997-03-01", object), "date",
                           "cannot be parsed"),
    "non-numeric amounts": (with_value("amount", [5], "12,50", object), "amount",
                            "not numbers"),
    "missing amounts": (with_value("amount", [0, 1, 2, 3, 4, 5, 6], np.nan), "amount",
                        "missing amounts"),
    "infinite amounts": (with_value("amount", [3], np.inf), "amount", "not finite"),
    "negative amounts": (with_value("amount", [2], -5.0), "amount", "negative amounts"),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_bad_dataframe_same_error_as_pandas(case):
    make, column, fragment = BAD_FRAMES[case]
    with pytest.raises(ValidationError) as duck:
        rfm_summary(make(), engine="duckdb")
    message = str(duck.value)
    assert fragment in message
    if column is not None:
        assert repr(column) in message
    with pytest.raises(ValidationError) as pandas:
        rfm_summary(make(), engine="pandas")
    assert message == str(pandas.value)


def test_more_than_five_offending_rows_are_counted():
    with pytest.raises(ValidationError) as duck:
        rfm_summary(with_value("amount", list(range(7)), np.nan)(), engine="duckdb")
    assert "7 offending row(s)" in str(duck.value)
    assert "... and 2 more" in str(duck.value)


def test_every_amount_negative_with_drop():
    df = good().assign(amount=-1.0)
    with pytest.raises(ValidationError, match=r"column 'amount': every transaction has a negati"):
        rfm_summary(df, engine="duckdb", negative_amounts="drop")


def test_bad_negative_amounts_option():
    with pytest.raises(ValueError, match="negative_amounts"):
        rfm_summary(good(), engine="duckdb", negative_amounts="ignore")


def test_observation_end_before_every_transaction():
    with pytest.raises(ValidationError, match=r"observation_end=2019-12-31 is before every"):
        rfm_summary(good(), engine="duckdb", observation_end="2019-12-31")


def test_calibration_end_before_every_transaction():
    with pytest.raises(ValidationError, match=r"calibration_end=2019-06-30 is before every"):
        calibration_holdout_split(good(), engine="duckdb", calibration_end="2019-06-30")


def test_bad_csv_dates_name_column_and_file(tmp_path):
    df = good().astype({"date": object})
    df.loc[[1, 6], "date"] = "31/31/2020"
    df.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValidationError) as duck:
        rfm_summary(tmp_path / "bad.csv", engine="duckdb")
    message = str(duck.value)
    assert message.startswith("column 'date': dates that cannot be parsed")
    assert "2 offending row(s)" in message
    assert "31/31/2020" in message and "bad.csv" in message


def test_bad_parquet_amounts_show_file_and_row(tmp_path):
    df = good()
    df.loc[4, "amount"] = -3.0
    df.to_parquet(tmp_path / "neg.parquet")
    with pytest.raises(ValidationError) as duck:
        rfm_summary(tmp_path / "neg.parquet", engine="duckdb")
    message = str(duck.value)
    assert message.startswith("column 'amount': negative amounts")
    assert "neg.parquet" in message and "row in file" in message


def test_file_missing_column(tmp_path):
    good().rename(columns={"date": "when"}).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(ValidationError, match=r"missing column\(s\) \['date'\]"):
        rfm_summary(tmp_path / "x.parquet", engine="duckdb")


def test_empty_csv(tmp_path):
    (tmp_path / "empty.csv").write_text("customer_id,date,amount\n")
    with pytest.raises(ValidationError, match="empty"):
        rfm_summary(tmp_path / "empty.csv", engine="duckdb")


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        rfm_summary(tmp_path / "nope.parquet", engine="duckdb")
    with pytest.raises(FileNotFoundError):
        rfm_summary(str(tmp_path / "nope-*.parquet"), engine="duckdb")


def test_unsupported_source_type():
    with pytest.raises(TypeError, match="DataFrame or a path"):
        rfm_summary(good().to_dict(), engine="duckdb")
