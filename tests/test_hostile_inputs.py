"""Hostile input to the RFM summary (issue 9, data layer): each category has one rule in
:mod:`clvmodels._summary_rules`, followed by both engines with the same answer.

1. dates: one format per text column, inferred from the whole column or given by the user
   (``date_format`` / ``dayfirst``); never guessed row by row;
2. implausible dates: typos far from the other transactions, dates before 1900, an
   observation end long after the last transaction (``implausible_dates="warn"`` keeps them);
3. impossible rows in a user's RFM frame (``validate_rfm``);
4. customer ids: mixed types refused, blank ids missing, ids differing only by spaces
   refused unless ``strip_ids=True``;
5. an interrupted DuckDB query surfaces as a plain ``KeyboardInterrupt``.

Errors name the column and the offending rows as the user sees them (index labels of a
frame, lines of a CSV file) and how many there are.
"""

from __future__ import annotations

import _thread
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clvmodels import TIME_UNITS, ValidationError, calibration_holdout_split, rfm_summary
from clvmodels._summary_rules import DATE_LAYOUTS, date_format_layout
from clvmodels._validation import DataWarning, validate_rfm
from clvmodels.datakinds import kind_rows
from clvmodels.engines import duckdb as duck_engine
from clvmodels.engines import duckdb_read as duck_read
from clvmodels.rfm import read_transactions

ENGINES = ("pandas", "duckdb")


def outcome(source: object, engine: str, fn=rfm_summary, **kwargs: object):
    """("ok", frame, warnings) or (error type, message)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frame = fn(source, engine=engine, **kwargs)
        notes = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
        return ("ok", frame, notes)
    except (ValueError, TypeError) as exc:
        return (type(exc).__name__, str(exc))


def same_outcome(make_source, fn=rfm_summary, **kwargs: object):
    """Run both engines (each on a fresh source); assert identical outcomes; return it."""
    got = {e: outcome(make_source(), e, fn, **kwargs) for e in ENGINES}
    a, b = got["pandas"], got["duckdb"]
    assert a[0] == b[0], f"pandas: {a}\nduckdb: {b}"
    if a[0] == "ok":
        pd.testing.assert_frame_equal(a[1], b[1], check_exact=False, rtol=1e-12)
        assert a[2] == b[2]
    else:
        assert a[1] == b[1], f"pandas:\n{a[1]}\nduckdb:\n{b[1]}"
    return a


def fails(make_source, fn=rfm_summary, **kwargs: object) -> str:
    """Both engines refuse with the same ValidationError; its message."""
    result = same_outcome(make_source, fn, **kwargs)
    assert result[0] == "ValidationError", result
    return result[1]


def shown_rows(message: str) -> list[str]:
    """The row labels of the table in a message (the first token of each table line)."""
    table = message.split("offending row(s):\n", 1)[1].splitlines()[1:]
    # skip the line naming the index (one word) and the "... and N more" line
    return [line.split()[0] for line in table
            if len(line.split()) > 1 and not line.startswith("...")]


def transactions(dates: list[object], ids: list[object] | None = None,
                 index: list[object] | None = None) -> pd.DataFrame:
    ids = ids if ids is not None else [f"c{i % 3}" for i in range(len(dates))]
    return pd.DataFrame({"customer_id": ids, "date": dates,
                         "amount": np.arange(1.0, len(dates) + 1)},
                        index=index if index is not None else range(100, 100 + len(dates)))


def days_of(rfm: pd.DataFrame) -> dict[str, tuple[int, float, float]]:
    return {k: (int(r.frequency), float(r.recency), float(r.T)) for k, r in rfm.iterrows()}


# --------------------------------------------------------------------------------------
# 1. one date format per column
# --------------------------------------------------------------------------------------

TRUTH = pd.to_datetime(["2024-03-15", "2024-03-01", "2024-02-07", "2024-04-30", "2024-01-02",
                        "2024-03-03"])


@pytest.mark.parametrize(
    ("fmt", "kwargs"),
    [
        ("%d/%m/%Y", {}),  # 15/03/2024 says day-first; 01/03/2024 is then March 1, not Jan 3
        ("%m/%d/%Y", {}),
        ("%Y-%m-%d", {}),
        ("%Y-%m-%dT%H:%M:%S+05:30", {}),
        ("%Y/%m/%d", {}),
        ("%Y%m%d", {}),
        ("%d.%m.%Y", {}),
        ("%d-%m-%Y %H:%M", {}),
        ("%m-%d-%Y", {}),
        ("%d %b %Y", {}),
        ("%b %d, %Y", {}),
        ("%d %B %Y", {}),
        ("%d/%m/%y", {"date_format": "%d/%m/%y"}),
        ("%Y.%d.%m", {"date_format": "%Y.%d.%m"}),
        ("%d/%m/%Y", {"dayfirst": True}),
        ("%m/%d/%Y", {"dayfirst": False}),
    ],
)
def test_one_format_for_the_whole_column(fmt: str, kwargs: dict) -> None:
    """Every row read with the column's one format; both engines alike."""
    text = TRUTH.strftime(fmt).tolist()
    result = same_outcome(lambda: transactions(text), time_unit="D", **kwargs)
    assert result[0] == "ok", result
    reference = rfm_summary(transactions(list(TRUTH)), time_unit="D")
    pd.testing.assert_frame_equal(result[1], reference)


def test_march_first_is_not_january_third() -> None:
    """The issue's example: 15/03/2024 and 01/03/2024 in one column."""
    tx = transactions(["15/03/2024", "01/03/2024"], ids=["a", "a"])
    rfm = same_outcome(lambda: tx.copy(), time_unit="D")[1]
    assert rfm.loc["a", "recency"] == 14.0  # March 1 to March 15, not January 3
    assert rfm.attrs["observation_end"] == "2024-03-15"


@pytest.mark.parametrize("seed", range(4))
def test_random_columns_recover_their_dates(seed: int) -> None:
    """Random dates written in a random layout (with at least one day above 12) come back
    exactly, in both engines."""
    rng = np.random.default_rng(seed)
    days = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 700, 60), unit="D")
    days = days.append(pd.DatetimeIndex(["2021-06-20"]))  # a day above 12
    fmt = ["%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y-%m-%d", "%b %d, %Y"][seed % 5]
    ids = [f"id{k}" for k in rng.integers(0, 15, len(days))]
    tx = transactions(days.strftime(fmt).tolist(), ids=ids)
    expected = rfm_summary(transactions(list(days), ids=ids), time_unit="D")
    result = same_outcome(lambda: tx.copy(), time_unit="D")
    assert result[0] == "ok", result
    pd.testing.assert_frame_equal(result[1], expected)


@pytest.mark.parametrize(
    ("values", "bad_rows", "fragment"),
    [
        # day-first and month-first dates mixed: the minority is named
        (["15/03/2024", "16/03/2024", "03/17/2024", "18/03/2024"], ["102"], "DD/MM/YYYY"),
        (["03/15/2024", "03/16/2024", "17/03/2024", "03/18/2024"], ["102"], "MM/DD/YYYY"),
        # ISO and day-first in one column: not one format
        (["2024-03-15", "2024-03-16", "2024-03-17", "18/03/2024"], ["103"], "YYYY-MM-DD"),
        # as many match day-first as month-first, but more are real days day-first
        (["15/03/2024", "02/03/2024", "2024-03-05", "16/03/2024"], ["102"], "DD/MM/YYYY"),
        # a tie: the message names both and asks which
        (["01/03/2024", "02/03/2024", "2024-03-05", "04/03/2024"], ["102"],
         "DD/MM/YYYY or MM/DD/YYYY"),
        # a time-of-day that is no time, an impossible calendar day
        (["2024-03-15", "2024-03-16 25:61", "2024-02-30", "2024-03-18"], ["101", "102"],
         "YYYY-MM-DD"),
        (["yesterday", "2024-03-16", "2024-03-17", "soon"], ["100", "103"], "YYYY-MM-DD"),
    ],
)
def test_column_without_one_format_is_refused(values: list[str], bad_rows: list[str],
                                              fragment: str) -> None:
    message = fails(lambda: transactions(values))
    assert message.startswith("column 'date': dates that cannot be parsed")
    assert fragment in message
    assert shown_rows(message) == bad_rows
    assert f"{len(bad_rows)} offending row(s)" in message


def test_nothing_fits_says_so() -> None:
    message = fails(lambda: transactions(["someday", "later", "never"]))
    assert "no known date format fits" in message and "date_format" in message
    assert shown_rows(message) == ["100", "101", "102"]


@pytest.mark.parametrize("values", [
    ["01/03/2024", "02/03/2024", "03/04/2024", "05/06/2024"],
    ["01.03.2024", "02.03.2024", "12.11.2024"],
    ["01-03-2024 10:00", "02-03-2024 11:00"],
])
def test_ambiguous_column_is_refused_until_the_user_says(values: list[str]) -> None:
    """Every date fits both day-first and month-first and reads differently: refused, with
    advice; dayfirst or date_format decide."""
    message = fails(lambda: transactions(values))
    assert "dayfirst=True or dayfirst=False" in message
    assert re.search(r"as DD.MM.YYYY and as MM.DD.YYYY", message)
    assert len(shown_rows(message)) == min(len(values), 5)
    sep = values[0][2]
    first = same_outcome(lambda: transactions(values), time_unit="D", dayfirst=True)[1]
    with_format = same_outcome(lambda: transactions(values), time_unit="D",
                               date_format=f"%d{sep}%m{sep}%Y" + (" %H:%M" if ":" in values[0]
                                                                  else ""))[1]
    pd.testing.assert_frame_equal(first, with_format)
    month = same_outcome(lambda: transactions(values), time_unit="D", dayfirst=False)[1]
    assert not first.equals(month)


def test_ambiguous_in_form_but_not_in_meaning_is_fine() -> None:
    """Days equal to months read the same either way: nothing to decide."""
    result = same_outcome(lambda: transactions(["01/01/2024", "02/02/2024", "03/03/2024"]),
                          time_unit="D")
    assert result[0] == "ok"
    assert result[1].attrs["observation_end"] == "2024-03-03"


def test_dayfirst_contradicted_by_the_data_is_refused() -> None:
    message = fails(lambda: transactions(["03/15/2024", "03/16/2024"]), dayfirst=True)
    assert "DD/MM/YYYY" in message and shown_rows(message) == ["100", "101"]


def test_date_format_mismatch_names_rows() -> None:
    message = fails(lambda: transactions(["15/03/2024", "2024-03-16", "17/03/2024"]),
                    date_format="%d/%m/%Y")
    assert "date_format='%d/%m/%Y'" in message and shown_rows(message) == ["101"]


def test_integer_dates_with_a_format() -> None:
    tx = transactions([15032024, 1032024, 20032024])  # DDMMYYYY numbers
    result = same_outcome(lambda: tx.copy(), time_unit="D", date_format="%d%m%Y")
    assert result[0] == "ok" and result[1].attrs["observation_end"] == "2024-03-20"
    message = fails(lambda: tx.copy())  # as YYYYMMDD they are not dates
    assert "cannot be parsed" in message


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"date_format": "%d/%m/%Y", "dayfirst": True}, "not both"),
    ({"date_format": "%d/%m"}, "year"),
    ({"date_format": "%Q-%m-%d"}, "unsupported directive"),
    ({"dayfirst": "yes"}, "dayfirst"),
])
def test_bad_date_options(kwargs: dict, fragment: str) -> None:
    for engine in ENGINES:
        with pytest.raises(ValueError, match=fragment):
            rfm_summary(transactions(["2024-03-01"]), engine=engine, **kwargs)


def test_blank_dates_are_missing() -> None:
    message = fails(lambda: transactions(["2024-03-01", "  ", "2024-03-03"]))
    assert message.startswith("column 'date': missing dates") and shown_rows(message) == ["101"]


def test_calibration_holdout_split_takes_the_date_options() -> None:
    text = ["01/03/2024", "02/04/2024", "03/05/2024", "04/06/2024", "05/07/2024", "06/08/2024"]
    tx = transactions(text)
    fails(lambda: tx.copy(), calibration_holdout_split, calibration_end="2024-05-01")
    split = same_outcome(lambda: tx.copy(), calibration_holdout_split,
                         calibration_end="2024-05-01", dayfirst=True, time_unit="D")[1]
    assert split.attrs["holdout_end"] == "2024-08-06"


@pytest.mark.parametrize("seed", range(16))
def test_engines_agree_on_random_hostile_columns(seed: int, monkeypatch) -> None:
    """Columns mixing layouts, junk, blanks and ambiguous dates at random: both engines give
    the same result or the same error, whichever rows the DuckDB engine guesses from."""
    monkeypatch.setattr(duck_read, "_GUESS_ROWS", 3)
    rng = np.random.default_rng(100 + seed)
    n = 25
    days = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 400, n), unit="D")
    small = rng.random() < 0.5  # only days <= 12: ambiguous unless something decides
    if small:
        days = pd.to_datetime({"year": days.year, "month": days.month,
                               "day": rng.integers(1, 13, n)})
    main = str(rng.choice(["%d/%m/%Y", "%m/%d/%Y", "%Y-%m-%d", "%d.%m.%Y"]))
    values = list(pd.DatetimeIndex(days).strftime(main))
    for i in rng.choice(n, size=int(rng.choice([0, 0, 0, 1, 2])), replace=False):
        values[i] = str(rng.choice(["", "  ", "n/a", "2022-02-30", "31/31/2022",
                                pd.Timestamp(days[i]).strftime("%m/%d/%Y"),
                                pd.Timestamp(days[i]).strftime("%Y-%m-%d %H:%M")]))
    ids = [f"c{k}" for k in rng.integers(0, 6, n)]
    kwargs = {} if rng.random() < 0.7 else {"dayfirst": bool(rng.random() < 0.5)}
    same_outcome(lambda: transactions(values, ids=ids), time_unit="D", **kwargs)


def test_duckdb_guess_from_the_first_rows_is_checked_on_every_row(monkeypatch) -> None:
    """The DuckDB engine guesses a text column's layout from its first rows and confirms it
    on all of them: a decisive date far down the column still decides."""
    monkeypatch.setattr(duck_read, "_GUESS_ROWS", 4)
    ambiguous_first = ["01/02/2024", "02/03/2024", "03/04/2024", "04/05/2024", "05/06/2024",
                       "06/07/2024", "07/08/2024", "08/09/2024", "09/10/2024", "02/13/2024"]
    result = same_outcome(lambda: transactions(ambiguous_first), time_unit="D")
    assert result[0] == "ok" and result[1].attrs["observation_end"] == "2024-09-10"
    iso_first = [f"2024-03-{d:02d}" for d in range(1, 10)] + ["10/03/2024"]
    message = fails(lambda: transactions(iso_first))
    assert "YYYY-MM-DD" in message and shown_rows(message) == ["109"]
    ambiguous_all = ambiguous_first[:-1]
    assert "dayfirst=True" in fails(lambda: transactions(ambiguous_all))


def test_layouts_of_different_shapes_never_fit_one_value() -> None:
    """What lets the rule count only same-shape rivals (see decide_date_layout)."""
    day = pd.Timestamp("2024-03-05 10:30")
    examples = {
        "YYYY-MM-DD": ["2024-03-05", "2024-3-5 10:30:00Z"], "YYYY/MM/DD": ["2024/03/05"],
        "YYYY.MM.DD": ["2024.03.05"], "YYYYMMDD": ["20240305", "20240305 10:30"],
        "DD/MM/YYYY": ["05/03/2024"], "MM/DD/YYYY": ["03/05/2024"],
        "DD-MM-YYYY": ["05-03-2024"], "MM-DD-YYYY": ["03-05-2024"],
        "DD.MM.YYYY": ["05.03.2024"], "MM.DD.YYYY": ["03.05.2024"],
        "DD Mon YYYY": [day.strftime("%d %b %Y"), "5-March-2024 10:30"],
        "Mon DD, YYYY": [day.strftime("%b %d, %Y %H:%M"), "Sept 5 2024"],
    }
    assert set(examples) == {lay.name for lay in DATE_LAYOUTS}
    for lay in DATE_LAYOUTS:
        for other in DATE_LAYOUTS:
            for value in examples[lay.name]:
                assert re.fullmatch(lay.full_regex, value), (lay.name, value)
                if other.shape != lay.shape:
                    assert not re.fullmatch(other.full_regex, value), (lay.name, other.name)


def test_warnings_point_at_the_caller() -> None:
    for engine in ENGINES:
        with pytest.warns(DataWarning) as caught:
            rfm_summary(month_of_transactions({4: "2099-03-04"}), engine=engine,
                        implausible_dates="warn")
        assert len(caught) == 1 and caught[0].filename == __file__


def test_date_format_layouts_are_shared_regular_expressions() -> None:
    """The layouts compile for Python (the pyarrow / DuckDB engines use RE2, tested above)."""
    for layout in [*DATE_LAYOUTS, date_format_layout("%A %d %B %Y %I:%M %p")]:
        re.compile(layout.full_regex)
        assert {"y", "d"} <= set(layout.groups)


# --------------------------------------------------------------------------------------
# files: rows named by their line, both engines
# --------------------------------------------------------------------------------------


def test_csv_errors_name_lines(tmp_path: Path) -> None:
    tx = transactions(["15/03/2024", "16/03/2024", "03/17/2024", "18/03/2024", "19/03/2024"])
    path = tmp_path / "tx.csv"
    tx.to_csv(path, index=False)
    for engine in ENGINES:
        with pytest.raises(ValidationError) as info:
            rfm_summary(path, engine=engine)
        message = str(info.value)
        assert "column 'date'" in message and "1 offending row(s)" in message
        # the header is line 1: the third data row is line 4
        assert re.search(r"^line", message, re.MULTILINE), message
        assert shown_rows(message) == ["4"], message
    frame = read_transactions(path)  # the CLI reads the file first: same lines
    with pytest.raises(ValidationError) as info:
        rfm_summary(frame)
    assert shown_rows(str(info.value)) == ["4"]


def test_csv_lines_across_several_files(tmp_path: Path) -> None:
    good = transactions([f"2024-03-{d:02d}" for d in range(1, 9)])
    good.to_csv(tmp_path / "a.csv", index=False)
    bad = good.copy()
    bad.loc[105, "date"] = "2024-13-01"
    bad.to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(ValidationError) as info:
        rfm_summary(str(tmp_path / "*.csv"), engine="duckdb")
    message = str(info.value)
    assert shown_rows(message) == ["7"] and "b.csv" in message


# --------------------------------------------------------------------------------------
# 2. implausible dates
# --------------------------------------------------------------------------------------


def month_of_transactions(extra: dict[int, str] | None = None) -> pd.DataFrame:
    dates = [f"2024-03-{d:02d}" for d in range(1, 29)]
    for i, value in (extra or {}).items():
        dates[i] = value
    return transactions(dates)


@pytest.mark.parametrize(("typo", "row", "direction"), [
    ("2099-03-04", "104", "after"),
    ("2034-03-04", "104", "after"),
    ("1899-12-31", "110", "before"),
    ("1924-03-04", "110", "before"),
    ("1970-01-01", "103", "before"),  # an epoch placeholder
])
def test_implausible_dates_are_refused(typo: str, row: str, direction: str) -> None:
    index = int(row) - 100
    message = fails(lambda: month_of_transactions({index: typo}))
    assert message.startswith("column 'date': implausible dates")
    assert shown_rows(message) == [row] and "1 offending row(s)" in message
    assert f"1 {direction} " in message and "implausible_dates='warn'" in message
    assert re.search(r"up to [\d,]+ days", message)  # by how much


def test_implausible_dates_kept_with_a_warning() -> None:
    result = same_outcome(lambda: month_of_transactions({4: "2099-03-04"}), time_unit="D",
                          implausible_dates="warn")
    assert result[0] == "ok" and len(result[2]) == 1
    assert "implausible dates" in result[2][0]
    assert result[1].attrs["observation_end"] == "2099-03-04"  # what the user asked for
    with pytest.warns(DataWarning, match="implausible"):
        rfm_summary(month_of_transactions({4: "2099-03-04"}), implausible_dates="warn")


def test_several_typos_are_all_counted() -> None:
    message = fails(lambda: month_of_transactions({2: "2099-01-01", 9: "2099-02-02",
                                                   20: "1901-01-01"}))
    assert "3 offending row(s)" in message and shown_rows(message) == ["102", "109", "120"]
    assert "2 after" in message and "1 before" in message


def test_typo_after_observation_end_is_ignored() -> None:
    """Transactions after observation_end are left out anyway: no harm, no error."""
    result = same_outcome(lambda: month_of_transactions({4: "2099-03-04"}),
                          observation_end="2024-03-28")
    assert result[0] == "ok"


def test_dense_and_seasonal_data_are_plausible() -> None:
    """Legitimate shapes: a long steady history, a seasonal gap, one busy day."""
    steady = pd.date_range("2015-01-01", "2024-12-31", freq="3D")
    seasonal = pd.date_range("2023-05-01", "2023-09-30").append(
        pd.date_range("2024-05-01", "2024-09-30"))
    launch = pd.DatetimeIndex(["2024-01-01"] * 50 + ["2024-02-15", "2024-03-20"])
    for dates in (steady, seasonal, launch):
        assert same_outcome(lambda d=dates: transactions(list(d)))[0] == "ok"


@pytest.mark.parametrize(("end", "ok"), [
    ("2024-03-28", True), ("2024-05-31", True), ("2024-07-01", False), ("2030-01-01", False),
])
def test_observation_end_long_after_the_data(end: str, ok: bool) -> None:
    result = same_outcome(lambda: month_of_transactions(), observation_end=end)
    if ok:
        assert result[0] == "ok"
        return
    assert result[0] == "ValidationError"
    assert f"observation_end={end}" in result[1] and "after the last transaction" in result[1]
    assert "2024-03-28" in result[1]  # the last transaction
    kept = same_outcome(lambda: month_of_transactions(), observation_end=end,
                        implausible_dates="warn")
    assert kept[0] == "ok" and "after the last transaction" in kept[2][0]


def test_observation_end_after_a_gap_the_data_know() -> None:
    """Seasonal data: a silence as long as the off-season is plausible."""
    seasonal = pd.date_range("2023-05-01", "2023-09-30").append(
        pd.date_range("2024-05-01", "2024-09-30"))
    result = same_outcome(lambda: transactions(list(seasonal)), observation_end="2025-04-30")
    assert result[0] == "ok"


def test_holdout_must_not_be_empty() -> None:
    message = fails(lambda: month_of_transactions(), calibration_holdout_split,
                    calibration_end="2024-03-28")
    assert "holdout period would be empty" in message
    for engine in ENGINES:
        with pytest.raises(ValueError, match="holdout period would be empty"):
            calibration_holdout_split(month_of_transactions(), engine=engine,
                                      calibration_end="2024-03-20",
                                      observation_end="2024-03-20")


def test_bad_implausible_dates_option() -> None:
    with pytest.raises(ValueError, match="implausible_dates"):
        rfm_summary(month_of_transactions(), implausible_dates="ignore")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# 3. impossible rows in a user's RFM frame
# --------------------------------------------------------------------------------------


def rfm_frame(unit: str | None = "D") -> pd.DataFrame:
    """A valid day-level RFM frame (times are whole days, expressed in ``unit``)."""
    days = TIME_UNITS[unit or "D"]
    frame = pd.DataFrame({"frequency": [0, 2, 5, 1],
                          "recency": np.array([0.0, 10.0, 30.0, 2.0]) / days,
                          "T": np.array([12.0, 20.0, 38.0, 2.0]) / days},
                         index=pd.Index(["c1", "c2", "c3", "c4"], name="customer_id"))
    if unit:
        frame.attrs["time_unit"] = unit
    return frame


def rfm_fails(frame: pd.DataFrame, **kwargs: object) -> str:
    before = frame.copy()
    with pytest.raises(ValidationError) as info:
        validate_rfm(frame, **kwargs)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(frame, before)
    return str(info.value)


@pytest.mark.parametrize("unit", ["D", "W", "M", "Y", None])
def test_repeat_buyers_with_recency_zero(unit: str | None) -> None:
    frame = rfm_frame(unit)
    frame.loc["c3", "recency"] = 0.0
    message = rfm_fails(frame)
    assert message.startswith("column 'recency': repeat buyers") and shown_rows(message) == ["c3"]


@pytest.mark.parametrize(("unit", "recency", "bad"), [
    ("D", 4.0, True),  # 5 repeat purchases in 4 days
    ("D", 5.0, False),
    ("W", 4 / 7, True),  # 4 days, in weeks
    ("W", 5 / 7, False),
    ("M", 4 / 30.4375, True),
    ("Y", 4 / 365.25, True),
])
def test_more_repeat_purchases_than_days(unit: str, recency: float, bad: bool) -> None:
    frame = rfm_frame(unit)
    frame.loc["c3", "recency"] = recency
    if not bad:
        validate_rfm(frame)
        return
    message = rfm_fails(frame)
    assert "more repeat purchases than days" in message and shown_rows(message) == ["c3"]
    # the time unit may come as an argument instead of attrs
    frame.attrs.clear()
    assert "more repeat purchases" in rfm_fails(frame, time_unit=unit)


def test_unknown_unit_refuses_only_what_no_unit_allows() -> None:
    frame = rfm_frame(None)
    frame.loc["c3", ["frequency", "recency"]] = [5, 4.0]  # 4 weeks or years: possible
    validate_rfm(frame)
    frame.loc["c3", ["frequency", "recency"]] = [800, 2.0]  # > 1 a day even in years
    assert "no time unit known" in rfm_fails(frame)


def test_continuous_time_data_are_exempt_from_the_per_day_rule() -> None:
    """Simulated continuous-time purchases may fall within one day."""
    frame = rfm_frame("W")
    frame.loc["c3", "recency"] = 0.3123  # 2.19 days, not a whole number: continuous time
    validate_rfm(frame)
    frame.loc["c3", "recency"] = 2 / 7  # day-level data: 5 repeat purchases in 2 days
    assert "more repeat purchases" in rfm_fails(frame)


@pytest.mark.parametrize(("column", "value", "fragment"), [
    ("frequency", -1, "negative"), ("recency", np.nan, "NaN"), ("T", np.inf, "not finite"),
    ("frequency", 1.5, "whole number"), ("recency", 50.0, "greater than T"),
    ("T", "soon", "not numeric"),
])
def test_other_impossible_values(column: str, value: object, fragment: str) -> None:
    frame = rfm_frame("D").astype({"frequency": float})
    if isinstance(value, str):
        frame[column] = frame[column].astype(object)
    frame.loc["c2", column] = value
    message = rfm_fails(frame)
    assert fragment in message and shown_rows(message) == ["c2"]


def test_model_fit_refuses_impossible_rows_by_its_time_unit() -> None:
    frame = rfm_frame(None)
    frame.loc["c3", "recency"] = 3.0
    kind_rows(frame, "continuous")  # unknown unit: 5 purchases in 3 weeks, say, is possible
    with pytest.raises(ValidationError, match="more repeat purchases"):
        kind_rows(frame, "continuous", time_unit="D")
    from clvmodels import BetaGeo

    zero = rfm_frame("W")
    zero.loc["c2", "recency"] = 0.0
    with pytest.raises(ValidationError, match="repeat buyers"):
        BetaGeo().fit(zero)


# --------------------------------------------------------------------------------------
# 4. customer ids
# --------------------------------------------------------------------------------------

DATES6 = ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04", "2024-03-05", "2024-03-06"]


@pytest.mark.parametrize(("ids", "bad"), [
    ([1, "1", 2, 2, 3, 3], ["101"]),
    (["a", "b", 7, "a", "b", 8.0], ["102", "105"]),
    ([1.0, 2, "x", True, 1, 2], ["102", "103"]),
])
def test_mixed_id_types_are_refused(ids: list[object], bad: list[str]) -> None:
    message = fails(lambda: transactions(DATES6, ids=pd.Series(ids, dtype=object).tolist()))
    assert message.startswith("column 'customer_id': customer ids of more than one type")
    assert shown_rows(message) == bad


def test_mixed_categorical_ids_are_refused() -> None:
    ids = pd.Categorical([1, "1", 2, 2, "1", 1])
    message = fails(lambda: transactions(DATES6).assign(customer_id=ids))
    assert "more than one type" in message


def test_one_type_of_number_is_fine() -> None:
    ids = pd.Series([1, 1.0, 2, 2, 3, 3], dtype=object).to_numpy()
    result = same_outcome(lambda: transactions(DATES6).assign(customer_id=ids))
    assert result[0] == "ok" and len(result[1]) == 3


@pytest.mark.parametrize("spaced", [" A ", "A ", "\tA", "A\u00a0", "A\n"])
def test_ids_differing_by_spaces(spaced: str) -> None:
    ids = [spaced, "A", "B", "B", "C", "C"]
    message = fails(lambda: transactions(DATES6, ids=ids))
    assert message.startswith("column 'customer_id': customer ids that differ only by spaces")
    assert repr(spaced) in message and "strip_ids=True" in message
    assert shown_rows(message) == ["100", "101"]
    merged = same_outcome(lambda: transactions(DATES6, ids=ids), strip_ids=True, time_unit="D")
    assert merged[0] == "ok"
    assert list(merged[1].index) == ["A", "B", "C"]
    assert merged[1].loc["A", "frequency"] == 1


def test_spaced_ids_without_a_twin_are_kept_as_written() -> None:
    ids = [" A", " A", "B", "B", "C ", "C "]
    result = same_outcome(lambda: transactions(DATES6, ids=ids))
    assert result[0] == "ok" and list(result[1].index) == [" A", "B", "C "]


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_blank_ids_are_missing(blank: str) -> None:
    ids = ["A", blank, "B", "B", "C", "C"]
    message = fails(lambda: transactions(DATES6, ids=ids))
    assert message.startswith("column 'customer_id': missing customer ids")
    assert "1 offending row(s)" in message
    assert "missing customer ids" in fails(lambda: transactions(DATES6, ids=[" ", *ids[1:]]),
                                           strip_ids=True)


def test_spaced_ids_in_csv_files(tmp_path: Path) -> None:
    transactions(DATES6, ids=[" A", "A", "B", "B", "C", "C"]).to_csv(tmp_path / "s.csv",
                                                                     index=False)
    for engine in ENGINES:
        with pytest.raises(ValidationError, match="differ only by spaces") as info:
            rfm_summary(tmp_path / "s.csv", engine=engine)
        assert shown_rows(str(info.value)) == ["2", "3"]
    a = rfm_summary(tmp_path / "s.csv", engine="pandas", strip_ids=True)
    b = rfm_summary(tmp_path / "s.csv", engine="duckdb", strip_ids=True)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.index) == ["A", "B", "C"]


def test_bad_strip_ids_option() -> None:
    with pytest.raises(ValueError, match="strip_ids"):
        rfm_summary(transactions(DATES6), strip_ids="yes")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# 5. an interrupted DuckDB query
# --------------------------------------------------------------------------------------

ENDLESS = "SELECT count(*) FROM range(1000000000000) t(i) WHERE i % 7 = 3"


def _endless(con, *args: object, **kwargs: object):
    con.execute(ENDLESS).fetchall()
    raise AssertionError("the endless query ended")


def test_ctrl_c_stops_the_query_and_raises_keyboard_interrupt(monkeypatch) -> None:
    """Ctrl-C in the main thread (simulated with interrupt_main) while DuckDB runs: the
    query stops at once and a plain KeyboardInterrupt comes out, nothing chained."""
    monkeypatch.setattr(duck_engine, "_summarise", _endless)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    start = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            rfm_summary(transactions(DATES6), engine="duckdb")
    finally:
        timer.cancel()
    assert time.perf_counter() - start < 10
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_an_interrupted_query_becomes_keyboard_interrupt(monkeypatch) -> None:
    """An interrupt reaching DuckDB itself (con.interrupt from another thread) too."""

    def interrupted(con, *args: object, **kwargs: object):
        threading.Timer(0.2, con.interrupt).start()
        return _endless(con)

    monkeypatch.setattr(duck_engine, "_summarise", interrupted)
    with pytest.raises(KeyboardInterrupt) as info:
        rfm_summary(transactions(DATES6), engine="duckdb")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_sigint_in_a_process(tmp_path: Path) -> None:
    """A real SIGINT during a DuckDB query: the process sees KeyboardInterrupt in about the
    time it takes to stop the query, and no DuckDB error."""
    script = tmp_path / "interrupt.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys, threading, time
        import pandas as pd
        from clvmodels import rfm_summary
        from clvmodels.engines import duckdb as engine

        def endless(con, *args, **kwargs):
            con.execute({ENDLESS!r}).fetchall()

        engine._summarise = endless
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        start = time.perf_counter()
        try:
            rfm_summary(pd.DataFrame({{"customer_id": [1], "date": ["2024-01-01"],
                                      "amount": [1.0]}}), engine="duckdb")
        except KeyboardInterrupt as exc:
            chained = exc.__cause__ is not None or not exc.__suppress_context__
            print(f"interrupted after {{time.perf_counter() - start:.1f}} s, chained={{chained}}")
            sys.exit(130)
    """))
    env = {**os.environ, "CLVMODELS_DUCKDB_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 130, done.stderr
    assert "chained=False" in done.stdout
    seconds = float(re.search(r"after ([\d.]+) s", done.stdout).group(1))
    assert seconds < 10
