"""The rules every RFM summary engine shares, in one low module that each engine imports.

An engine (the pandas implementation in :mod:`clvmodels.rfm`, :mod:`clvmodels.engines.duckdb`,
...) reads raw transactions, validates them and returns the *day-level* summary
(:data:`DAY_COLUMNS` [+ :data:`HOLDOUT_DAY_COLUMNS`], indexed and sorted by customer id);
:func:`finalise_day_summary` turns that into the RFM contract in a time unit, so the
conversion is written once. What must be identical across engines lives here:

* time units with fixed day counts (:data:`TIME_UNITS`, :func:`time_unit_days`);
* the day-level columns an engine returns;
* the range of calendar days a date may fall on (:data:`FIRST_DAY` .. :data:`LAST_DAY`) and
  the normalisation of date arguments to a calendar day (:func:`as_day`);
* the wording of each validation problem, so every engine reports bad rows alike, and the
  checks on the observation period (:func:`check_observation_end`).

This module imports no engine and nothing of :mod:`clvmodels.rfm`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from clvmodels._validation import ValidationError

__all__ = [
    "DAY_COLUMNS",
    "FIRST_DAY",
    "HOLDOUT_DAY_COLUMNS",
    "LAST_DAY",
    "TIME_UNITS",
    "NegativeAmounts",
    "Problem",
    "all_negative_error",
    "as_day",
    "check_negative_amounts_option",
    "check_observation_end",
    "empty_error",
    "finalise_day_summary",
    "time_unit_days",
]

#: Length of each supported time unit in days. "M" is an average Gregorian month
#: (365.25 / 12 days) and "Y" an average year, so a unit is always the same length.
TIME_UNITS: dict[str, float] = {"D": 1.0, "W": 7.0, "M": 365.25 / 12.0, "Y": 365.25}

NegativeAmounts = Literal["raise", "drop"]

#: Day-level summary columns every engine returns (index: customer id, sorted).
DAY_COLUMNS = ["n_days", "first_day", "last_day", "total", "first_total"]
#: ... and, with a calibration end, the holdout columns after them.
HOLDOUT_DAY_COLUMNS = ["n_days_holdout", "total_holdout"]

#: First and last calendar day a transaction may fall on. The years 1677 and 2262, at the
#: edges of pandas' nanosecond timestamps, are excluded whole (numpy's ns -> day conversion
#: wraps around at the very edge); dates outside are reported as unparseable.
FIRST_DAY = pd.Timestamp("1678-01-01")
LAST_DAY = pd.Timestamp("2261-12-31")


class Problem:
    """The wording of each problem with raw transactions, shared by every engine (the
    message is ``column '<name>': <problem>; <n> offending row(s): ...``)."""

    MISSING_IDS = "missing customer ids"
    MISSING_DATES = "missing dates"
    UNPARSEABLE_DATES = (
        f"dates that cannot be parsed (or lie outside the years {FIRST_DAY.year}-{LAST_DAY.year})"
    )
    AMOUNTS_NOT_NUMBERS = "amounts that are not numbers"
    MISSING_AMOUNTS = "missing amounts (NaN)"
    AMOUNTS_NOT_FINITE = "amounts that are not finite"
    NEGATIVE_AMOUNTS = "negative amounts (returns?); pass negative_amounts='drop' to ignore them"


def empty_error() -> ValidationError:
    """The error for transactions without a single row."""
    return ValidationError("transactions are empty: there is nothing to summarise")


def all_negative_error(monetary_value_col: str | None) -> ValidationError:
    """The error when ``negative_amounts="drop"`` leaves no transaction at all."""
    return ValidationError(
        f"column {monetary_value_col!r}: every transaction has a negative amount"
    )


def check_negative_amounts_option(negative_amounts: str) -> None:
    """Raise unless ``negative_amounts`` is "raise" or "drop"."""
    if negative_amounts not in ("raise", "drop"):
        raise ValueError("negative_amounts must be 'raise' or 'drop'")


def time_unit_days(time_unit: str) -> float:
    """Number of days in ``time_unit`` ("D", "W", "M" = 30.4375 days, "Y" = 365.25 days)."""
    try:
        return TIME_UNITS[time_unit]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown time_unit {time_unit!r}; use one of {sorted(TIME_UNITS)}"
        ) from None


def as_day(value: object, name: str) -> pd.Timestamp | None:
    """A date argument (``observation_end``, ``calibration_end``, ...) as a tz-naive calendar
    day; ``None`` stays ``None``. Raises ``ValueError`` naming the argument otherwise."""
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}={value!r} is not a date") from exc
    if ts is pd.NaT:
        raise ValueError(f"{name} is NaT")
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.normalize()


def check_observation_end(first_date: pd.Timestamp, observation_end: pd.Timestamp | None,
                          name: str = "observation_end") -> None:
    """Raise if the period ends before the first transaction (no customer would remain)."""
    if observation_end is not None and observation_end < first_date:
        raise ValidationError(
            f"{name}={observation_end.date()} is before every transaction "
            f"(the first is on {first_date.date()}): no customer would remain"
        )


def finalise_day_summary(
    days: pd.DataFrame,
    *,
    observation_end: pd.Timestamp,
    time_unit: str,
    customer_id_col: str,
    with_monetary: bool,
    calibration_end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Day-level summary (any engine's) → the RFM frame in ``time_unit``.

    ``frequency`` = transaction days - 1, ``recency`` = last - first day, ``T`` = end of the
    (calibration) period - first day, ``monetary_value`` = mean of the repeat days' totals
    (0 without repeats); with ``calibration_end`` the holdout columns
    ``frequency_holdout[, monetary_value_holdout], duration_holdout``. ``attrs`` record the
    time unit and the period ends.
    """
    unit = time_unit_days(time_unit)
    cut = calibration_end if calibration_end is not None else observation_end
    n = days["n_days"].to_numpy(dtype=np.int64)
    first = days["first_day"].to_numpy(dtype="datetime64[D]")
    last = days["last_day"].to_numpy(dtype="datetime64[D]")
    end = np.datetime64(cut.date(), "D")
    out = pd.DataFrame(index=pd.Index(days.index, name=customer_id_col))
    out["frequency"] = n - 1
    out["recency"] = (last - first).astype(np.int64) / unit
    out["T"] = (end - first).astype(np.int64) / unit
    if with_monetary:
        repeat_total = days["total"].to_numpy(dtype=float) - days["first_total"].to_numpy(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            mv = np.where(n > 1, repeat_total / np.maximum(n - 1, 1), 0.0)
        out["monetary_value"] = mv
    if calibration_end is not None:
        nh = days["n_days_holdout"].to_numpy(dtype=np.int64)
        out["frequency_holdout"] = nh
        if with_monetary:
            th = days["total_holdout"].to_numpy(dtype=float)
            out["monetary_value_holdout"] = np.where(nh > 0, th / np.maximum(nh, 1), 0.0)
        out["duration_holdout"] = float((observation_end - calibration_end).days) / unit
    out.attrs["time_unit"] = time_unit
    out.attrs["observation_end"] = str(cut.date())
    if calibration_end is not None:
        out.attrs["calibration_end"] = str(calibration_end.date())
        out.attrs["holdout_end"] = str(observation_end.date())
    return out
