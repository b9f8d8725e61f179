"""The RFM summary contract, one set of cases run on every engine (pandas, DuckDB, Spark).

Each case summarises the same input with ``engine="pandas"`` and with the engine under test
and asserts the results identical (as :func:`test_engines_duckdb.assert_same` defines: same
ids, columns, dtypes and ``attrs``; counts exact, times to 1e-9 relative, money to the cent),
or, for bad input, the same refusal word for word. A Spark result (a Spark DataFrame) is
brought back to pandas here -- ids as the index, sorted, ``attrs`` from the column metadata
-- so the comparison is the same for every engine. Another engine joins by adding its name
to :data:`ENGINES`; a case that an engine cannot take yet says so with :func:`skip_on`.

The Spark engine runs on one session per test run (the ``spark`` fixture of conftest: local[2],
2 shuffle partitions); its cases are skipped when pyspark is not installed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_engines_duckdb import ODD_IDS, assert_same, random_transactions

from clvmodels import ValidationError, calibration_holdout_split, rfm_summary
from clvmodels.datasets import load_cdnow_transactions

ENGINES = ["pandas", "duckdb", "spark"]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each engine's name; "spark" starts (once) the session-wide Spark fixture."""
    if request.param == "spark":
        request.getfixturevalue("spark")
    return request.param


def as_pandas(result: object) -> pd.DataFrame:
    """An engine's result as the pandas engine returns it (Spark: collected, ids as the
    sorted index, ``attrs`` from the column metadata)."""
    if isinstance(result, pd.DataFrame):
        return result
    from clvmodels.engines.spark import quiet_pandas_warnings, summary_attrs

    with quiet_pandas_warnings():
        frame = result.toPandas()
    name = frame.columns[0]
    frame = frame.sort_values(name, kind="stable")
    frame.index = pd.Index(frame.pop(name).to_numpy(), name=name)
    frame.attrs = summary_attrs(result)
    return frame


def summarise(fn, source, engine: str, **kwargs) -> pd.DataFrame:
    return as_pandas(fn(source, engine=engine, **kwargs))


def same_as_pandas(fn, source, engine: str, pandas_source=None, **kwargs) -> pd.DataFrame:
    expected = fn(source if pandas_source is None else pandas_source, engine="pandas",
                  **kwargs)
    actual = summarise(fn, source, engine, **kwargs)
    assert_same(expected, actual)
    return actual


def same_refusal(make, engine: str, fn=rfm_summary, error=ValidationError, **kwargs) -> str:
    with pytest.raises(error) as theirs:
        fn(make(), engine=engine, **kwargs)
    with pytest.raises(error) as ours:
        fn(make(), engine="pandas", **kwargs)
    assert str(theirs.value) == str(ours.value)
    return str(ours.value)


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow_transactions(sample=False)


@pytest.fixture(scope="module")
def random_tx() -> pd.DataFrame:
    return random_transactions(11, n_customers=250)


def good() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["a", "b", "c", "a", "b", "d", "e", "f"],
        "date": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03", "2020-02-01",
                                "2020-03-01", "2020-03-02", "2020-03-03", "2020-03-04"]),
        "amount": [10.0, 20.0, 5.0, 7.5, 1.0, 2.0, 3.0, 4.0],
    })


def changed(col: str, rows: list[int], value: object, dtype: object = None):
    def make() -> pd.DataFrame:
        df = good()
        if dtype is not None:
            df[col] = df[col].astype(dtype)
        for r in rows:
            df.loc[r, col] = value
        return df
    return make


# --------------------------------------------------------------------------------------
# identical results
# --------------------------------------------------------------------------------------


def test_cdnow_master_to_the_cent(cdnow, engine):
    actual = same_as_pandas(rfm_summary, cdnow, engine, observation_end="1997-12-31")
    assert len(actual) == 23_570 and actual.attrs["time_unit"] == "W"
    actual = same_as_pandas(calibration_holdout_split, cdnow, engine,
                            calibration_end="1997-09-30", time_unit="D")
    assert actual["frequency_holdout"].sum() > 0


def test_random_ties_same_day_and_odd_ids(random_tx, engine):
    actual = same_as_pandas(rfm_summary, random_tx, engine, time_unit="D")
    assert set(ODD_IDS) <= set(actual.index)
    assert (actual["frequency"] > 0).any() and (actual["frequency"] == 0).any()
    same_as_pandas(calibration_holdout_split, random_tx, engine, calibration_end="2019-08-01",
                   observation_end="2019-12-31", time_unit="W")


def test_time_zones_fall_on_their_own_day(engine):
    """Times just before and after midnight in their own zone (Tokyo, a fixed offset)."""
    stamps = ["2021-03-01 00:30", "2021-03-01 23:30", "2021-03-02 00:10", "2021-03-10 23:59",
              "2021-03-11 00:01", "2021-04-01 12:00"]
    base = pd.DataFrame({"customer_id": [1, 1, 1, 2, 2, 2],
                         "date": pd.to_datetime(stamps), "amount": [1.0, 2, 3, 4, 5, 6]})
    for zone in ("Asia/Tokyo", "-05:00"):
        df = base.assign(date=base["date"].dt.tz_localize(zone))
        actual = same_as_pandas(rfm_summary, df, engine, time_unit="D")
        assert actual.loc[1, "frequency"] == 1 and actual.loc[2, "frequency"] == 2


def test_text_dates_and_yyyymmdd_numbers(engine):
    df = good()
    texts = df.assign(date=df["date"].dt.strftime("%d/%m/%Y 10:15"))
    expected = rfm_summary(df)
    assert_same(expected, summarise(rfm_summary, texts, engine, dayfirst=True))
    numbers = df.assign(date=df["date"].dt.strftime("%Y%m%d").astype("int64"))
    assert_same(expected, summarise(rfm_summary, numbers, engine))


def test_drop_negative_amounts_and_no_monetary(engine):
    df = good()
    df.loc[[3, 6], "amount"] = -1.0
    same_as_pandas(rfm_summary, df, engine, negative_amounts="drop", time_unit="D")
    same_as_pandas(rfm_summary, good(), engine, monetary_value_col=None)


def test_strip_ids_and_implausible_dates_kept_with_a_warning(engine):
    from clvmodels._validation import DataWarning

    spaced = good()
    spaced.loc[[3, 4], "customer_id"] = [" a", "b\t"]
    same_as_pandas(rfm_summary, spaced, engine, strip_ids=True)
    late = good()
    late.loc[5, "date"] = pd.Timestamp("2099-03-02")
    with pytest.warns(DataWarning) as ours:
        expected = rfm_summary(late, implausible_dates="warn")
    with pytest.warns(DataWarning) as theirs:
        actual = summarise(rfm_summary, late, engine, implausible_dates="warn")
    assert_same(expected, actual)
    assert [str(w.message) for w in theirs if w.category is DataWarning] == \
        [str(w.message) for w in ours if w.category is DataWarning]


def test_money_sums_exact(engine):
    """Many cents on one day: the sum is exact (DECIMAL in DuckDB / Spark), the mean equal
    to the pandas engine's to the cent."""
    n = 1000
    df = pd.DataFrame({"customer_id": ["m"] * (n + 1),
                       "date": pd.to_datetime(["2020-01-01"] + ["2020-02-01"] * n),
                       "amount": [5.0] + [0.1] * n})
    actual = same_as_pandas(rfm_summary, df, engine)
    assert actual.loc["m", "monetary_value"] == pytest.approx(100.0, abs=1e-9)


# --------------------------------------------------------------------------------------
# the same refusals, word for word
# --------------------------------------------------------------------------------------

BAD = {
    "missing ids": (changed("customer_id", [1, 4], None), "missing customer ids"),
    "blank ids": (changed("customer_id", [2], "  "), "missing customer ids"),
    "spaced ids": (changed("customer_id", [3], "a "), "differ only by spaces"),
    "missing dates": (changed("date", [2], pd.NaT), "missing dates"),
    "unparseable dates": (changed("date", [0, 3], "not a date", object), "cannot be parsed"),
    "non-numeric amounts": (changed("amount", [5], "12,50", object), "not numbers"),
    "missing amounts": (changed("amount", list(range(7)), np.nan), "missing amounts"),
    "infinite amounts": (changed("amount", [3], np.inf), "not finite"),
    "negative amounts": (changed("amount", [2], -5.0), "negative amounts"),
    "implausible date": (changed("date", [5], pd.Timestamp("2099-03-02")), "implausible"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_same_refusal(case, engine):
    make, fragment = BAD[case]
    assert fragment in same_refusal(make, engine)


def test_ambiguous_text_dates(engine):
    df = good().assign(date=["01/02/2020", "02/01/2020", "03/01/2020", "01/03/2020",
                             "02/03/2020", "03/03/2020", "04/03/2020", "05/03/2020"])
    assert "dayfirst" in same_refusal(lambda: df, engine)


def test_period_refusals(engine):
    same_refusal(good, engine, observation_end="2019-12-31")
    same_refusal(good, engine, fn=calibration_holdout_split, calibration_end="2020-03-04")
    same_refusal(lambda: good().assign(amount=-1.0), engine, negative_amounts="drop")
    same_refusal(lambda: good().iloc[:0], engine)


# --------------------------------------------------------------------------------------
# the contract summary (subscriptions), on every engine
# --------------------------------------------------------------------------------------


def random_subscriptions(seed: int, n_customers: int = 150) -> pd.DataFrame:
    """1-3 records per customer: renewals on month ends and leap days, overlapping records,
    gaps (reactivations), open and future ends; no duplicate records."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_customers):
        cid = f"s{i:03d}" if i % 3 else i  # text and numbers in separate frames below
        start = pd.Timestamp("2019-01-31") + pd.Timedelta(days=int(rng.integers(0, 1500)))
        for _ in range(int(rng.integers(1, 4))):
            length = int(rng.integers(1, 700))
            end = start + pd.Timedelta(days=length)
            rows.append((cid, start, None if rng.random() < 0.3 else end))
            start = end + pd.Timedelta(days=int(rng.integers(-20, 90)))
            if start > pd.Timestamp("2023-06-30"):
                break
    frame = pd.DataFrame(rows, columns=["customer_id", "start", "end"])
    frame["end"] = pd.to_datetime(frame["end"])
    return frame.drop_duplicates(["customer_id", "start", "end"]).reset_index(drop=True)


def assert_same_contract(expected: pd.DataFrame, actual: pd.DataFrame) -> None:
    assert list(actual.index) == list(expected.index)
    assert actual.index.name == expected.index.name
    assert actual.attrs == expected.attrs
    for col in ("periods", "tenures"):
        np.testing.assert_array_equal(actual[col].to_numpy(np.int64),
                                      expected[col].to_numpy(np.int64), err_msg=col)
    np.testing.assert_array_equal(actual["churned"].to_numpy(bool),
                                  expected["churned"].to_numpy(bool))
    assert list(actual["cohort"]) == list(expected["cohort"])


@pytest.mark.parametrize("period", ["M", "Y", "W", "D"])
def test_contract_random_subscriptions(engine, period):
    from clvmodels.contract import contract_summary

    subs = random_subscriptions(3)
    numbers = subs.loc[subs["customer_id"].map(lambda v: isinstance(v, int))].astype(
        {"customer_id": "int64"})
    texts = subs.loc[subs["customer_id"].map(lambda v: isinstance(v, str))]
    for frame, gap in ((texts, 0), (numbers, 30)):
        kw = dict(observation_end="2023-06-30", period=period, max_gap_days=gap)
        expected = contract_summary(frame, engine="pandas", **kw)
        assert (expected["tenures"] > 1).any() and expected["churned"].any()
        assert_same_contract(expected, as_pandas(contract_summary(frame, engine=engine, **kw)))


def test_contract_same_refusals(engine):
    from clvmodels.contract import contract_summary

    good_subs = pd.DataFrame({"customer_id": ["a", "b", "c", "c"],
                              "start": ["2023-01-31", "2023-02-15", "2023-01-01", "2023-05-01"],
                              "end": [None, "2023-04-01", "2023-02-01", None]})
    cases = {
        "missing ids": good_subs.assign(customer_id=["a", None, "c", "c"]),
        "bad dates": good_subs.assign(end=[None, "2023-02-30", "2023-02-01", None]),
        "end before start": good_subs.assign(end=[None, "2023-01-01", "2023-02-01", None]),
        "start after": good_subs.assign(start=["2023-01-31", "2023-02-15", "2023-01-01",
                                               "2024-05-01"]),
        "duplicates": pd.concat([good_subs, good_subs.iloc[[1]]], ignore_index=True),
    }
    for name, frame in cases.items():
        msg = same_refusal(lambda f=frame: f, engine, fn=contract_summary,
                           observation_end="2023-12-31")
        assert "offending row" in msg, name
    msg = same_refusal(lambda: good_subs, engine, fn=contract_summary,
                       observation_end="2023-12-31", reactivations="raise")
    assert "came back after a gap" in msg
