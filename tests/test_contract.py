"""contract_summary: the rules (calendar anniversaries, what is paid, tenures), both engines
on the same cases (frames and files), validation, and the link to the sBG's conventions."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clvmodels._validation import ValidationError
from clvmodels.contract import contract_summary, paid_periods
from clvmodels.models import sbg

#: how a case reaches an engine: (engine, None) for a DataFrame, (engine, "csv"/"parquet")
#: for a file written from it
HOW = [("pandas", None), ("duckdb", None), ("pandas", "csv"), ("duckdb", "csv"),
       ("pandas", "parquet"), ("duckdb", "parquet")]
HOW_IDS = [f"{e}-{f or 'frame'}" for e, f in HOW]


def run(frame: pd.DataFrame, how: tuple[str, str | None], tmp_path: Path, **kw: object
        ) -> pd.DataFrame:
    engine, fmt = how
    if fmt is None:
        return contract_summary(frame, engine=engine, **kw)
    path = tmp_path / f"subs.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return contract_summary(path, engine=engine, **kw)


def subs(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "start", "end"])


def expect(result: pd.DataFrame, expected: dict[object, tuple]) -> None:
    """expected: id -> (periods, churned[, tenures])."""
    assert list(result.index) == sorted(expected)
    for cid, values in expected.items():
        row = result.loc[cid]
        assert (row["periods"], bool(row["churned"])) == values[:2], cid
        if len(values) > 2:
            assert row["tenures"] == values[2], cid


# ------------------------------------------------------------------------------------------
# the rules, through every engine and input kind
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", HOW, ids=HOW_IDS)
def test_monthly_anniversaries_month_ends_and_leap_years(how, tmp_path: Path) -> None:
    frame = subs([
        # started on the 31st: renews Feb 29 (2024), Mar 31, Apr 30, ...
        ("jan31", "2024-01-31", "2024-04-30"),  # Feb 29, Mar 31 paid; Apr 30 is the end
        ("jan31b", "2024-01-31", "2024-05-01"),  # ... and Apr 30 paid: 4
        ("feb29", "2023-01-31", "2023-03-01"),  # 2023: Feb 28 paid, Mar 31 not reached: 2
        ("same_day", "2024-03-10", "2024-03-10"),  # stopped the day it started: 1
        ("at_renewal", "2024-01-15", "2024-02-15"),  # renewal on the end day is not paid: 1
        ("after_renewal", "2024-01-15", "2024-02-16"),  # 2
        ("open", "2023-06-30", None),  # Jul 30 ... 2024-06-30 = obs: 13
        ("blank", "2024-06-30", ""),  # started on observation_end: 1
        ("later_end", "2024-05-31", "2024-12-31"),  # active at obs: May 31, Jun 30: 2
        ("far_future", "2024-02-29", "9999-12-31"),  # open marker: Feb 29 .. Jun 29: 5
        ("obs_end", "2024-01-01", "2024-06-30"),  # ends on obs: churned, Jan..Jun: 6
    ])
    out = run(frame, how, tmp_path, observation_end="2024-06-30", period="M")
    expect(out, {
        "jan31": (3, True), "jan31b": (4, True), "feb29": (2, True), "same_day": (1, True),
        "at_renewal": (1, True), "after_renewal": (2, True), "open": (13, False),
        "blank": (1, False), "later_end": (2, False), "far_future": (5, False),
        "obs_end": (6, True),
    })
    assert out.loc["jan31", "cohort"] == "2024-01" and out.loc["open", "cohort"] == "2023-06"
    assert out.attrs == {"period": "M", "time_unit": "M", "observation_end": "2024-06-30",
                         "data_kind": "contractual"}
    assert out.index.name == "customer_id"
    assert list(out.columns) == ["periods", "churned", "cohort", "tenures"]
    assert out["periods"].dtype == np.int64 and out["churned"].dtype == bool
    assert out["tenures"].dtype == np.int64


@pytest.mark.parametrize("how", HOW, ids=HOW_IDS)
def test_yearly_from_february_29(how, tmp_path: Path) -> None:
    frame = subs([
        ("a", "2020-02-29", None),  # 2021-02-28, 2022-02-28, 2023-02-28, 2024-02-29 paid
        ("b", "2020-02-29", "2024-02-29"),  # the 2024 renewal is the end: 4
        ("c", "2020-02-29", "2023-02-28"),  # 2021, 2022 renewals paid: 3
        ("d", "2021-03-01", None),  # 2022, 2023, 2024-03-01 = obs paid: 4
    ])
    out = run(frame, how, tmp_path, observation_end="2024-03-01", period="Y")
    expect(out, {"a": (5, False), "b": (4, True), "c": (3, True), "d": (4, False)})
    assert list(out["cohort"]) == ["2020", "2020", "2020", "2021"]


@pytest.mark.parametrize("how", HOW, ids=HOW_IDS)
def test_weekly_and_daily_are_fixed_lengths(how, tmp_path: Path) -> None:
    frame = subs([
        ("a", "2021-01-03", "2021-01-17"),  # 14 days: weeks starting Jan 3, Jan 10 paid
        ("b", "2021-01-03", "2021-01-18"),  # Jan 17 paid too: 3
        ("c", "2021-01-04", None),  # Jan 4 .. Jan 31 (obs): 4 weekly starts, 28 days
    ])
    weekly = run(frame, how, tmp_path, observation_end="2021-01-31", period="W")
    expect(weekly, {"a": (2, True), "b": (3, True), "c": (4, False)})
    # ISO weeks: 2021-01-03 is a Sunday of 2020's week 53
    assert list(weekly["cohort"]) == ["2020-W53", "2020-W53", "2021-W01"]
    daily = run(frame, how, tmp_path, observation_end="2021-01-31", period="D")
    expect(daily, {"a": (14, True), "b": (15, True), "c": (28, False)})
    assert list(daily["cohort"]) == ["2021-01-03", "2021-01-03", "2021-01-04"]


@pytest.mark.parametrize("how", HOW, ids=HOW_IDS)
def test_several_records_merge_into_tenures(how, tmp_path: Path) -> None:
    frame = subs([
        ("touch", "2023-01-10", "2023-03-10"), ("touch", "2023-03-10", None),  # plan change
        ("overlap", "2023-01-10", "2023-05-01"), ("overlap", "2023-02-01", "2023-04-01"),
        ("overlap", "2023-04-15", "2023-06-10"),  # nested, then overlapping: one tenure
        ("gap", "2023-01-10", "2023-03-01"), ("gap", "2023-03-02", None),  # back a day later
        ("tie", "2023-01-10", "2023-02-20"), ("tie", "2023-01-10", None),  # same start
        ("open_first", "2023-01-10", None), ("open_first", "2023-05-01", "2023-06-01"),
    ])
    out = run(frame, how, tmp_path, observation_end="2023-12-31", period="M")
    expect(out, {
        "touch": (12, False, 1),
        "overlap": (5, True, 1),  # Jan 10 .. Jun 10 (end): Jan..May paid
        "gap": (2, True, 2),  # first tenure only: Jan 10, Feb 10 paid
        "tie": (12, False, 1),
        "open_first": (12, False, 1),
    })
    # a gap of one day is bridged with max_gap_days=1
    bridged = run(frame, how, tmp_path, observation_end="2023-12-31", period="M",
                  max_gap_days=1)
    assert bridged.loc["gap", "tenures"] == 1 and not bridged.loc["gap", "churned"]
    assert bridged.loc["gap", "periods"] == 12
    with pytest.raises(ValidationError, match=re.escape("came back after a gap")) as info:
        run(frame, how, tmp_path, observation_end="2023-12-31", reactivations="raise")
    assert "2 offending row(s)" in str(info.value) and "gap" in str(info.value)


@pytest.mark.parametrize("how", HOW, ids=HOW_IDS)
def test_odd_ids(how, tmp_path: Path) -> None:
    text = subs([("a b", "2023-01-01", None), ("é,\"q\"", "2023-01-01", "2023-02-15"),
                 ("010", "2023-01-01", None), ("Z", "2023-01-01", None)])
    out = run(text, how, tmp_path, observation_end="2023-03-31")
    assert list(out.index) == sorted(["a b", "é,\"q\"", "010", "Z"])
    expect(out, {"a b": (3, False), "é,\"q\"": (2, True), "010": (3, False), "Z": (3, False)})
    ints = subs([(-5, "2023-01-01", None), (2**62, "2023-01-01", "2023-02-15"),
                 (0, "2023-01-31", None)])
    out = run(ints, how, tmp_path, observation_end="2023-03-31")
    assert out.index.dtype == np.int64 and list(out.index) == [-5, 0, 2**62]
    expect(out, {-5: (3, False), 0: (3, False), 2**62: (2, True)})
    floats = subs([(1.5, "2023-01-01", None), (-0.25, "2023-01-01", None)])
    out = run(floats, how, tmp_path, observation_end="2023-03-31")
    assert out.index.dtype == np.float64 and list(out.index) == [-0.25, 1.5]


@pytest.mark.parametrize("how", HOW, ids=HOW_IDS)
def test_time_zones_keep_the_local_calendar_day(how, tmp_path: Path) -> None:
    # 23:30 in Paris on Jan 31 is Jan 31 there (Jan 31 22:30 UTC); 00:30 on Mar 1 in Paris is
    # Feb 29 in UTC but Mar 1 locally
    frame = pd.DataFrame({
        "customer_id": ["p", "q"],
        "start": pd.to_datetime(["2024-01-31 23:30", "2024-01-31 00:30"]).tz_localize(
            "Europe/Paris"),
        "end": pd.to_datetime(["2024-03-01 00:30", None]).tz_localize("Europe/Paris"),
    })
    out = run(frame, how, tmp_path, observation_end="2024-04-29")
    expect(out, {"p": (2, True), "q": (3, False)})  # q: Jan 31, Feb 29, Mar 31 paid
    fixed = frame.assign(start=frame["start"].dt.tz_convert("UTC").dt.tz_convert(
        dt.timezone(dt.timedelta(hours=-5))))  # New York winter time, as a fixed offset
    out = run(fixed, how, tmp_path, observation_end="2024-04-29")
    # p starts Jan 31 17:30 at UTC-5; q Jan 30 18:30 (renewals on the 30th: Feb 29, Mar 30)
    expect(out, {"p": (2, True), "q": (3, False)})
    assert out.loc["q", "cohort"] == "2024-01"
    # ISO strings with offsets: the day as written
    strings = subs([("s", "2024-01-31T23:30:00+01:00", "2024-03-01T00:30:00+01:00"),
                    ("t", "2024-01-31 00:30Z", "2024-02-29T23:59:59.5-08:00")])
    out = run(strings, how, tmp_path, observation_end="2024-04-29")
    expect(out, {"s": (2, True), "t": (1, True)})


@pytest.mark.parametrize("how", HOW, ids=HOW_IDS)
def test_date_format(how, tmp_path: Path) -> None:
    frame = subs([("a", "31/01/2024", "01/03/2024"), ("b", " 05/02/2024", None)])
    out = run(frame, how, tmp_path, observation_end="2024-04-30", date_format="%d/%m/%Y")
    expect(out, {"a": (2, True), "b": (3, False)})
    with pytest.raises(ValidationError, match="not ISO 8601"):
        run(frame, how, tmp_path, observation_end="2024-04-30")
    with pytest.raises(ValidationError, match=re.escape("date_format='%m/%d/%Y'")):
        run(frame, how, tmp_path, observation_end="2024-04-30", date_format="%m/%d/%Y")


def test_datetime_and_date_objects_and_mixed_object_columns() -> None:
    frame = pd.DataFrame({
        "customer_id": [1, 2, 3],
        "start": pd.Series([dt.date(2024, 1, 31), "2024-01-31", pd.Timestamp("2024-01-31 10:00")],
                           dtype=object),
        "end": pd.Series([None, dt.datetime(2024, 3, 1, 12), np.datetime64("2024-02-29")],
                         dtype=object),
    })
    for engine in ("pandas", "duckdb"):
        out = contract_summary(frame, observation_end="2024-04-30", engine=engine)
        expect(out, {1: (4, False), 2: (2, True), 3: (1, True)})


def test_pyarrow_dtypes() -> None:
    frame = pd.DataFrame({
        "customer_id": pd.array(["a", "b"], dtype="string[pyarrow]"),
        "start": pd.array([dt.date(2024, 1, 31), dt.date(2024, 2, 1)],
                          dtype="date32[pyarrow]"),
        "end": pd.array([None, pd.Timestamp("2024-03-05", tz="UTC")],
                        dtype="timestamp[us, tz=UTC][pyarrow]"),
    })
    for engine in ("pandas", "duckdb"):
        out = contract_summary(frame, observation_end="2024-04-30", engine=engine)
        expect(out, {"a": (4, False), "b": (2, True)})


@pytest.mark.parametrize("period", ["D", "W", "M", "Y"])
def test_engines_agree_on_random_subscriptions(period: str, tmp_path: Path) -> None:
    """Many customers, several records each (gaps, overlaps, open ends, month ends, leap
    days): every engine and input kind gives the same frame."""
    rng = np.random.default_rng(11)
    n = 600
    ids = rng.integers(0, 250, size=n)
    first = np.datetime64("2019-12-25")
    start = first + rng.integers(0, 5 * 365, size=n).astype("timedelta64[D]")
    # a fifth of the starts on a month end
    month_end = (start.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1
    start = np.where(rng.random(n) < 0.2, month_end, start)
    length = rng.integers(0, 900, size=n).astype("timedelta64[D]")
    end = (start + length).astype(object)
    end[rng.random(n) < 0.3] = None
    frame = pd.DataFrame({"customer_id": ids, "start": start.astype(str),
                          "end": [None if e is None else str(e) for e in end]})
    # customers coming back 1-10 days after an end (bridged by max_gap_days=7 or not)
    back = frame.dropna(subset=["end"]).sample(60, random_state=1)
    back = back.assign(start=(pd.to_datetime(back["end"])
                              + pd.to_timedelta(rng.integers(1, 11, len(back)), "D"))
                       .dt.strftime("%Y-%m-%d"), end=None)
    frame = pd.concat([frame, back], ignore_index=True)
    frame = frame.drop_duplicates(["customer_id", "start", "end"])
    obs = "2024-12-31"
    frame = frame[frame["start"] <= obs]
    ref = contract_summary(frame, observation_end=obs, period=period)
    assert len(ref) > 200 and ref["churned"].any() and (~ref["churned"]).any()
    assert (ref["tenures"] > 1).any()
    for how in HOW[1:]:
        got = run(frame, how, tmp_path, observation_end=obs, period=period)
        pd.testing.assert_frame_equal(got, ref, obj=str(how))
        assert got.attrs == ref.attrs
    # with a gap allowance: fewer tenures, same agreement
    ref7 = contract_summary(frame, observation_end=obs, period=period, max_gap_days=7)
    assert ref7["tenures"].sum() < ref["tenures"].sum()
    got7 = contract_summary(frame, observation_end=obs, period=period, max_gap_days=7,
                            engine="duckdb")
    pd.testing.assert_frame_equal(got7, ref7)


def test_duckdb_reads_lists_and_globs_of_files(tmp_path: Path) -> None:
    a = subs([("x", "2024-01-01", None), ("y", "2024-01-15", "2024-03-01")])
    b = subs([("z", "2024-02-29", None), ("y", "2024-03-01", None)])
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    ref = contract_summary(pd.concat([a, b]), observation_end="2024-04-30")
    for source in ([tmp_path / "a.csv", tmp_path / "b.csv"], str(tmp_path / "*.csv")):
        got = contract_summary(source, observation_end="2024-04-30", engine="duckdb")
        pd.testing.assert_frame_equal(got, ref)
    expect(ref, {"x": (4, False), "y": (4, False, 1), "z": (3, False)})


# ------------------------------------------------------------------------------------------
# conventions: the data step feeds the sBG
# ------------------------------------------------------------------------------------------


def test_paid_periods_match_the_sbg_lifetime() -> None:
    """A customer who pays T monthly periods stops at the T-th renewal date, start + T
    months: the summary gives periods = T, churned; one still paying at observation_end
    has paid the periods started by then, the sBG's censoring at n_periods."""
    sim = sbg.simulate_sbg(400, alpha=0.8, beta=2.0, n_periods=120, random_seed=5)
    lifetime = sim["periods"].to_numpy()  # 120 and active: still paying after 10 years
    rng = np.random.default_rng(6)
    start = pd.Timestamp("2015-01-31") + pd.to_timedelta(rng.integers(0, 600, 400), "D")
    end = [s + pd.DateOffset(months=int(t)) if c else None
           for s, t, c in zip(start, lifetime, sim["churned"], strict=True)]
    frame = pd.DataFrame({"customer_id": np.arange(400), "start": start, "end": end})
    obs = pd.Timestamp("2019-12-31")
    out = contract_summary(frame, observation_end=obs, period="M")
    stopped = np.array([e is not None and e <= obs for e in end])
    assert np.array_equal(out["churned"].to_numpy(), stopped)
    assert np.array_equal(out.loc[stopped, "periods"].to_numpy(), lifetime[stopped])
    # active: periods paid = renewal dates on or before obs, + 1 = the sBG's n_periods
    months_started = np.array([
        sum(s + pd.DateOffset(months=k) <= obs for k in range(0, 120)) for s in start])
    assert np.array_equal(out.loc[~stopped, "periods"].to_numpy(), months_started[~stopped])
    assert np.all(lifetime[~stopped] >= months_started[~stopped])


def test_paid_periods_by_brute_force() -> None:
    """paid_periods against counting the anniversaries one by one (pd.DateOffset)."""
    rng = np.random.default_rng(3)
    start = np.datetime64("2019-01-01") + rng.integers(0, 2000, 300)
    start[::7] = np.datetime64("2020-01-31")
    start[1::7] = np.datetime64("2020-02-29")
    ref = start + rng.integers(0, 1500, 300)
    churned = rng.random(300) < 0.5
    days = lambda v: v.astype("datetime64[D]").astype(np.int64)  # noqa: E731
    for period, months in (("M", 1), ("Y", 12)):
        got = paid_periods(days(start), days(ref), churned, period)
        for s, r, c, g in zip(start, ref, churned, got, strict=True):
            s_, r_ = pd.Timestamp(s), pd.Timestamp(r)
            k = 1
            while (s_ + pd.DateOffset(months=k * months) < r_ if c
                   else s_ + pd.DateOffset(months=k * months) <= r_):
                k += 1
            assert g == k, (period, s, r, c)


# ------------------------------------------------------------------------------------------
# validation: the same errors from both engines, naming the column and the rows
# ------------------------------------------------------------------------------------------


GOOD = subs([("a", "2024-01-01", None), ("b", "2024-01-05", "2024-02-01")])


def errors(frame: pd.DataFrame, **kw: object) -> str:
    """The message of both engines (which must agree) for a bad frame."""
    messages = []
    for engine in ("pandas", "duckdb"):
        with pytest.raises(ValidationError) as info:
            contract_summary(frame, observation_end="2024-06-30", engine=engine, **kw)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    return messages[0]


@pytest.mark.parametrize(("change", "column", "problem"), [
    (lambda f: f.assign(customer_id=[None, "b"]), "customer_id", "missing customer ids"),
    (lambda f: f.assign(customer_id=pd.Series(["a", 2], dtype=object)), "customer_id",
     "mixed types (str, int)"),
    (lambda f: f.assign(start=[None, "2024-01-05"]), "start", "missing start dates"),
    (lambda f: f.assign(start=["2024-02-30", "2024-01-05"]), "start", "not ISO 8601"),
    (lambda f: f.assign(start=["01/05/2024", "2024-01-05"]), "start", "not ISO 8601"),
    (lambda f: f.assign(end=[None, "2024-13-01"]), "end", "not ISO 8601"),
    (lambda f: f.assign(end=[None, "2023-12-31"]), "end", "end dates before the start"),
    (lambda f: f.assign(start=["2024-01-01", "2024-07-01"], end=None), "start",
     "start after observation_end (2024-06-30)"),
    (lambda f: pd.concat([f, f.iloc[[1]]]), "customer_id", "duplicated subscription records"),
])
def test_row_errors_name_column_and_rows(change, column: str, problem: str) -> None:
    frame = change(GOOD.copy())
    frame.index = [f"row{i}" for i in range(10, 10 + len(frame))]
    message = errors(frame)
    assert message.startswith(f"column {column!r}: ")
    assert problem in message
    assert "offending row(s)" in message and "row1" in message  # the caller's labels


def test_error_counts_and_truncates() -> None:
    frame = pd.DataFrame({"customer_id": range(12), "start": ["2024-02-30"] * 12,
                          "end": None})
    message = errors(frame)
    assert "12 offending row(s)" in message and "... and 7 more" in message


def test_file_errors_show_file_and_row(tmp_path: Path) -> None:
    frame = subs([("a", "2024-01-01", None), ("b", "2024-01-05", "2023-02-01")])
    frame.to_parquet(tmp_path / "s.parquet", index=False)
    frame.to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(ValidationError, match="end dates before the start") as info:
        contract_summary(tmp_path / "s.parquet", observation_end="2024-06-30", engine="duckdb")
    assert "s.parquet" in str(info.value) and "row in file" in str(info.value)
    with pytest.raises(ValidationError, match="end dates before the start") as info:
        contract_summary(tmp_path / "s.csv", observation_end="2024-06-30", engine="duckdb")
    assert "s.csv" in str(info.value) and "2023-02-01" in str(info.value)


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
def test_column_and_argument_errors(engine: str, tmp_path: Path) -> None:
    kw = {"observation_end": "2024-06-30", "engine": engine}
    with pytest.raises(ValidationError, match=re.escape("missing column(s) ['end']")):
        contract_summary(GOOD.drop(columns="end"), **kw)
    with pytest.raises(ValidationError, match="empty"):
        contract_summary(GOOD.iloc[:0], **kw)
    with pytest.raises(ValidationError, match="which are not dates"):
        contract_summary(GOOD.assign(start=[20240101, 20240105]), **kw)
    with pytest.raises(ValueError, match="unknown period"):
        contract_summary(GOOD, period="Q", **kw)
    with pytest.raises(ValueError, match="reactivations"):
        contract_summary(GOOD, reactivations="last", **kw)
    with pytest.raises(ValueError, match="max_gap_days"):
        contract_summary(GOOD, max_gap_days=-1, **kw)
    with pytest.raises(ValueError, match="%z"):
        contract_summary(GOOD, date_format="%Y-%m-%d%z", **kw)
    with pytest.raises(ValueError, match="observation_end is required"):
        contract_summary(GOOD, observation_end=None, engine=engine)
    with pytest.raises(ValueError, match="not a date"):
        contract_summary(GOOD, observation_end="soon", engine=engine)
    with pytest.raises(FileNotFoundError):
        contract_summary(tmp_path / "nope.csv", **kw)
    with pytest.raises(ValueError, match="unknown engine"):
        contract_summary(GOOD, observation_end="2024-06-30", engine="hadoop")
    # an end column with no end at all, of any dtype, is fine
    out = contract_summary(GOOD.assign(end=np.nan), **kw)
    assert not out["churned"].any()


def test_input_is_not_modified() -> None:
    frame = subs([("b", " 2024-01-05", ""), ("a", "2024-01-01", None),
                  ("a", "2024-01-01", "2024-03-01")])
    before = frame.copy(deep=True)
    for engine in ("pandas", "duckdb"):
        contract_summary(frame, observation_end="2024-06-30", engine=engine)
        pd.testing.assert_frame_equal(frame, before)


def test_duckdb_csv_type_guess_is_retried_on_every_row(tmp_path: Path) -> None:
    """Numeric-looking ids for DuckDB's sniffing sample, then a text id far down the file."""
    ids = [str(i) for i in range(25_000)] + ["x-last"]
    frame = pd.DataFrame({"customer_id": ids, "start": "2024-01-31", "end": None})
    frame.to_csv(tmp_path / "late.csv", index=False)
    got = contract_summary(tmp_path / "late.csv", observation_end="2024-03-01", engine="duckdb")
    ref = contract_summary(tmp_path / "late.csv", observation_end="2024-03-01")
    pd.testing.assert_frame_equal(got, ref)
    assert got.loc["x-last", "periods"] == 2
