"""Input validation shared by every entry point.

Every error names the column at fault and shows (up to) the first offending rows, so the
caller can find them in their own data.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["ValidationError", "require_columns", "validate_rfm"]

_MAX_SHOWN = 5


class ValidationError(ValueError):
    """Bad input data: the message names the column and shows the offending rows."""


def _show(frame: pd.DataFrame, mask: np.ndarray | pd.Series, columns: Iterable[str]) -> str:
    mask = np.asarray(mask, dtype=bool)
    n_bad = int(mask.sum())
    shown = frame.loc[mask, list(columns)].head(_MAX_SHOWN)
    more = f"\n... and {n_bad - len(shown)} more" if n_bad > len(shown) else ""
    return f"{n_bad} offending row(s):\n{shown.to_string()}{more}"


def fail_rows(
    frame: pd.DataFrame,
    mask: np.ndarray | pd.Series,
    column: str,
    problem: str,
    show_columns: Iterable[str] | None = None,
) -> None:
    """Raise :class:`ValidationError` if any row of ``mask`` is true."""
    mask = np.asarray(mask, dtype=bool)
    if mask.any():
        cols = list(show_columns) if show_columns is not None else [column]
        raise ValidationError(f"column {column!r}: {problem}; {_show(frame, mask, cols)}")


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str = "input") -> None:
    """Raise if any of ``columns`` is missing from ``frame``."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"{what} is missing column(s) {missing}; it has {list(map(str, frame.columns))}"
        )


def validate_rfm(
    rfm: pd.DataFrame,
    *,
    require_monetary: bool = False,
    what: str = "RFM frame",
) -> None:
    """Check a user-supplied RFM frame (``frequency, recency, T`` [, ``monetary_value``]).

    Rules: no missing values; frequency is a non-negative integer; 0 <= recency <= T;
    recency is 0 when frequency is 0; monetary_value (if required) is positive for repeat
    buyers.
    """
    cols = ["frequency", "recency", "T"] + (["monetary_value"] if require_monetary else [])
    require_columns(rfm, cols, what)
    if len(rfm) == 0:
        raise ValidationError(f"{what} is empty: there are no customers")
    for c in cols:
        values = pd.to_numeric(rfm[c], errors="coerce")
        fail_rows(rfm, values.isna() & rfm[c].notna(), c, "values are not numeric")
        fail_rows(rfm, rfm[c].isna(), c, "missing values (NaN)")
        fail_rows(rfm, ~np.isfinite(values.to_numpy(dtype=float)), c, "values are not finite")
        fail_rows(rfm, values < 0, c, "negative values")
    x = rfm["frequency"].to_numpy(dtype=float)
    fail_rows(rfm, x != np.round(x), "frequency", "frequency must be a whole number of repeat "
              "transactions")
    tx = rfm["recency"].to_numpy(dtype=float)
    T = rfm["T"].to_numpy(dtype=float)
    # small tolerance: recency and T are often computed by different float divisions
    fail_rows(rfm, tx > T * (1 + 1e-12) + 1e-12, "recency", "recency is greater than T",
              ["frequency", "recency", "T"])
    fail_rows(rfm, (x == 0) & (tx > 0), "recency",
              "recency must be 0 for customers with frequency 0", ["frequency", "recency", "T"])
    if require_monetary:
        m = rfm["monetary_value"].to_numpy(dtype=float)
        fail_rows(rfm, (x > 0) & (m <= 0), "monetary_value",
                  "repeat buyers need a positive monetary_value", ["frequency", "monetary_value"])
