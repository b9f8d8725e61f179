"""Input validation shared by every entry point.

Every error names the column at fault and shows (up to) the first offending rows, so the
caller can find them in their own data.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = [
    "ROW_LABEL_ATTR",
    "DataWarning",
    "ValidationError",
    "fail_rows",
    "require_columns",
    "rows_message",
    "validate_rfm",
]

_MAX_SHOWN = 5

#: ``frame.attrs`` key naming what a frame's index labels are, when they are not plain row
#: labels: :func:`clvmodels.rfm.read_transactions` labels the rows of a CSV file with their
#: line in the file ("line"), and messages show that name above the labels
ROW_LABEL_ATTR = "clvmodels_row_label"


class ValidationError(ValueError):
    """Bad input data: the message names the column and shows the offending rows."""


class DataWarning(UserWarning):
    """Data accepted although it looks wrong (the user asked to go on): the message says
    what, where and by how much."""


def _show(frame: pd.DataFrame, mask: np.ndarray | pd.Series, columns: Iterable[str]) -> str:
    mask = np.asarray(mask, dtype=bool)
    n_bad = int(mask.sum())
    shown = frame.loc[mask, list(columns)].head(_MAX_SHOWN)
    label = frame.attrs.get(ROW_LABEL_ATTR)
    if isinstance(label, str) and shown.index.name is None:
        shown = shown.rename_axis(label)
    more = f"\n... and {n_bad - len(shown)} more" if n_bad > len(shown) else ""
    return f"{n_bad} offending row(s):\n{shown.to_string()}{more}"


def rows_message(
    frame: pd.DataFrame,
    mask: np.ndarray | pd.Series,
    column: str,
    problem: str,
    show_columns: Iterable[str] | None = None,
) -> str | None:
    """The message :func:`fail_rows` raises (None when no row of ``mask`` is true)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    cols = list(show_columns) if show_columns is not None else [column]
    return f"column {column!r}: {problem}; {_show(frame, mask, cols)}"


def fail_rows(
    frame: pd.DataFrame,
    mask: np.ndarray | pd.Series,
    column: str,
    problem: str,
    show_columns: Iterable[str] | None = None,
) -> None:
    """Raise :class:`ValidationError` if any row of ``mask`` is true: the message names the
    column, the problem and how many rows, and shows the first rows by their index labels
    (lines of the file for a frame read by :func:`clvmodels.rfm.read_transactions`)."""
    message = rows_message(frame, mask, column, problem, show_columns)
    if message is not None:
        raise ValidationError(message)


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str = "input") -> None:
    """Raise if any of ``columns`` is missing from ``frame``."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"{what} is missing column(s) {missing}; it has {list(map(str, frame.columns))}"
        )


def check_numeric_columns(frame: pd.DataFrame, cols: list[str], what: str) -> None:
    """The columns exist, the frame has rows, and every value is a finite number >= 0."""
    require_columns(frame, cols, what)
    if len(frame) == 0:
        raise ValidationError(f"{what} is empty: there are no customers")
    for c in cols:
        values = pd.to_numeric(frame[c], errors="coerce")
        fail_rows(frame, values.isna() & frame[c].notna(), c, "values are not numeric")
        fail_rows(frame, frame[c].isna(), c, "missing values (NaN)")
        fail_rows(frame, ~np.isfinite(values.to_numpy(dtype=float)), c, "values are not finite")
        fail_rows(frame, values < 0, c, "negative values")


def validate_rfm(
    rfm: pd.DataFrame,
    *,
    require_monetary: bool = False,
    what: str = "RFM frame",
    time_unit: str | None = None,
) -> None:
    """Check a user-supplied RFM frame (``frequency, recency, T`` [, ``monetary_value``]).

    Rules (each refusal names the column and the offending rows):

    * no missing, non-numeric, infinite or negative values; frequency is a whole number;
    * 0 <= recency <= T; recency is 0 when frequency is 0;
    * repeat buyers (frequency > 0) have a positive recency: repeat purchases come after
      the first one (a recency of 0 also breaks the likelihoods);
    * at most one repeat purchase per day after the first purchase: frequency <= recency in
      days (``recency * days per time unit``), as purchases on one day are one transaction.
      The time unit is ``time_unit``, else ``rfm.attrs["time_unit"]``. The rule applies to
      day-level data, whose recency is a whole number of days (as :func:`rfm_summary`
      makes them); continuous-time data (e.g. simulated) are exempt. Without a known time
      unit the longest one (a year) is assumed, so only rows impossible in every unit fail;
    * monetary_value (if required) is positive for repeat buyers.
    """
    cols = ["frequency", "recency", "T"] + (["monetary_value"] if require_monetary else [])
    check_numeric_columns(rfm, cols, what)
    x = rfm["frequency"].to_numpy(dtype=float)
    fail_rows(rfm, x != np.round(x), "frequency", "frequency must be a whole number of repeat "
              "transactions")
    tx = rfm["recency"].to_numpy(dtype=float)
    T = rfm["T"].to_numpy(dtype=float)
    shown = ["frequency", "recency", "T"]
    # small tolerance: recency and T are often computed by different float divisions
    fail_rows(rfm, tx > T * (1 + 1e-12) + 1e-12, "recency", "recency is greater than T", shown)
    fail_rows(rfm, (x == 0) & (tx > 0), "recency",
              "recency must be 0 for customers with frequency 0", shown)
    fail_rows(rfm, (x > 0) & (tx == 0), "recency",
              "repeat buyers (frequency > 0) with recency 0: repeat purchases come after the "
              "first one, so their recency must be positive", shown)
    _check_purchases_per_day(rfm, x, tx, time_unit or rfm.attrs.get("time_unit"), shown)
    if require_monetary:
        m = rfm["monetary_value"].to_numpy(dtype=float)
        fail_rows(rfm, (x > 0) & (m <= 0), "monetary_value",
                  "repeat buyers need a positive monetary_value", ["frequency", "monetary_value"])


#: days in each time unit (as :data:`clvmodels._summary_rules.TIME_UNITS`, which this low
#: module cannot import)
_UNIT_DAYS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12.0, "Y": 365.25}


def _check_purchases_per_day(rfm: pd.DataFrame, x: np.ndarray, tx: np.ndarray,
                             time_unit: object, shown: list[str]) -> None:
    """frequency <= recency in days, for day-level data (see :func:`validate_rfm`)."""
    known = isinstance(time_unit, str) and time_unit in _UNIT_DAYS
    unit = _UNIT_DAYS[time_unit] if known else _UNIT_DAYS["Y"]
    days = tx * unit
    whole = np.abs(days - np.round(days)) <= 1e-6 * np.maximum(1.0, days)
    if known and not whole.all():
        return  # continuous-time data: several purchases may fall within one day
    limit = np.round(days) if known else days
    unit_text = (f"recency * {unit:g} days per {time_unit!r}" if known
                 else "recency in days even if the time unit were a year: no time unit known")
    fail_rows(rfm, x > limit + 1e-9, "frequency",
              "more repeat purchases than days between the first and the last purchase "
              f"(frequency > {unit_text}); purchases on one day are one transaction", shown)
