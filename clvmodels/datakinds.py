"""The data kinds models are fitted on, their column contracts, validation and compression.

=============== ========================================= ===================================
kind            columns (one row per customer)            models
=============== ========================================= ===================================
``continuous``  ``frequency, recency, T`` (time units)    BG/NBD, MBG/NBD, Pareto/NBD
``discrete``    ``frequency, recency, T`` (T = number of  BG/BB
                opportunities, recency = the opportunity
                of the last transaction, all integers)
``spend``       ``frequency, monetary_value``             Gamma-Gamma (repeat buyers only)
``contractual`` ``periods, churned`` (periods paid: the   shifted-beta-geometric
                first plus renewals; churned: False =
                still active, right-censored)
=============== ========================================= ===================================

:func:`kind_rows` validates a frame against its kind and compresses it to
:class:`~clvmodels.rows.UniqueRows`, optionally with per-row ``weights`` (counts of identical
customers: pre-aggregated data from SQL, Spark or a paper) and extra key columns (segments).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clvmodels._validation import (
    ValidationError,
    check_numeric_columns,
    fail_rows,
    require_columns,
    validate_rfm,
)
from clvmodels.rows import UniqueRows, compress_columns

__all__ = ["KINDS", "DataKind", "kind_rows", "resolve_weights", "validate_kind"]




def _whole(frame: pd.DataFrame, col: str, problem: str) -> None:
    v = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
    fail_rows(frame, v != np.round(v), col, problem)


def validate_discrete(frame: pd.DataFrame, what: str = "discrete-time frame",
                      time_unit: str | None = None) -> None:
    """``frequency, recency, T`` counted in transaction opportunities (BG/BB).

    Rules: whole numbers; T >= 1; recency <= T; frequency <= recency (x transactions need x
    opportunities up to the last one); recency is 0 exactly when frequency is 0.
    """
    cols = ["frequency", "recency", "T"]
    check_numeric_columns(frame, cols, what)
    for c in cols:
        _whole(frame, c, "must be a whole number of transaction opportunities")
    x, tx, T = (frame[c].to_numpy(dtype=float) for c in cols)
    fail_rows(frame, T < 1, "T", "T (the number of opportunities) must be at least 1", cols)
    fail_rows(frame, tx > T, "recency", "recency is greater than T", cols)
    fail_rows(frame, x > tx, "frequency",
              "more transactions than opportunities up to the last one (frequency > recency)",
              cols)
    fail_rows(frame, (x == 0) & (tx > 0), "recency",
              "recency must be 0 for customers with frequency 0", cols)


def validate_spend(frame: pd.DataFrame, what: str = "spend frame",
                   time_unit: str | None = None) -> None:
    """``frequency, monetary_value``: monetary_value positive for repeat buyers."""
    cols = ["frequency", "monetary_value"]
    check_numeric_columns(frame, cols, what)
    _whole(frame, "frequency", "frequency must be a whole number of repeat transactions")
    x = frame["frequency"].to_numpy(dtype=float)
    m = frame["monetary_value"].to_numpy(dtype=float)
    fail_rows(frame, (x > 0) & (m <= 0), "monetary_value",
              "repeat buyers need a positive monetary_value", cols)


def validate_contract(frame: pd.DataFrame, what: str = "contract frame",
                      time_unit: str | None = None) -> None:
    """``periods, churned``: periods a whole number >= 1; churned boolean (or 0/1)."""
    require_columns(frame, ["periods", "churned"], what)
    if len(frame) == 0:
        raise ValidationError(f"{what} is empty: there are no customers")
    check_numeric_columns(frame, ["periods"], what)
    _whole(frame, "periods", "periods must be a whole number of periods paid")
    fail_rows(frame, frame["periods"].to_numpy(dtype=float) < 1, "periods",
              "periods must be at least 1 (the first period is always paid)")
    churned = frame["churned"]
    if churned.dtype != bool:
        as_num = pd.to_numeric(churned, errors="coerce")
        bad = as_num.isna() | ~as_num.isin([0, 1])
        fail_rows(frame, bad.to_numpy(), "churned", "churned must be True/False (or 1/0)")


def validate_continuous(frame: pd.DataFrame, what: str = "RFM frame",
                        time_unit: str | None = None) -> None:
    """``frequency, recency, T`` in time units (see :func:`clvmodels._validation.validate_rfm`:
    among its rules, repeat buyers have a positive recency and, for day-level data, at most
    one repeat purchase per day of recency -- which needs ``time_unit`` or
    ``frame.attrs["time_unit"]``)."""
    validate_rfm(frame, what=what, time_unit=time_unit)


@dataclass(frozen=True)
class DataKind:
    """A data kind: its likelihood columns, its validation and which customers it uses."""

    name: str
    columns: tuple[str, ...]
    #: ``validate(frame, what, time_unit)``; raises ValidationError naming column and rows
    validate: Callable[[pd.DataFrame, str, str | None], None]
    #: customers the kind's models use (e.g. spend: repeat buyers); None = all
    uses: Callable[[pd.DataFrame], np.ndarray] | None = None
    #: other accepted names of a column (discrete data often call the opportunities periods)
    alternatives: Mapping[str, str] | None = None

    def conform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with an alternative column name mapped to the contract's (a renamed
        copy; the caller's frame is not touched)."""
        if not self.alternatives:
            return frame
        renames = {alt: col for col, alt in self.alternatives.items()
                   if col not in frame.columns and alt in frame.columns}
        if not renames:
            return frame
        out = frame.rename(columns=renames)
        out.attrs = dict(frame.attrs)
        return out


KINDS: dict[str, DataKind] = {
    "continuous": DataKind("continuous", ("frequency", "recency", "T"), validate_continuous),
    "discrete": DataKind("discrete", ("frequency", "recency", "T"), validate_discrete,
                         alternatives={"T": "periods"}),
    "spend": DataKind("spend", ("frequency", "monetary_value"), validate_spend,
                      uses=lambda f: f["frequency"].to_numpy(dtype=float) > 0),
    "contractual": DataKind("contractual", ("periods", "churned"), validate_contract),
}


def validate_kind(frame: pd.DataFrame, kind: str, what: str | None = None,
                  time_unit: str | None = None) -> None:
    """Validate ``frame`` against the column contract of ``kind`` (``time_unit``: the unit
    of its times, when ``frame.attrs`` does not record it)."""
    spec = KINDS[kind]
    spec.validate(spec.conform(frame), what or f"{kind} data", time_unit)


def resolve_weights(frame: pd.DataFrame, weights: str | np.ndarray | pd.Series | None
                    ) -> np.ndarray | None:
    """Per-row counts of identical customers from a column name or an array (validated:
    whole numbers >= 0, one per row); None when not given."""
    if weights is None:
        return None
    if isinstance(weights, str):
        require_columns(frame, [weights], "data")
        values = pd.to_numeric(frame[weights], errors="coerce")
        name = weights
        show = frame
    else:
        arr = np.asarray(weights)
        if arr.ndim != 1 or len(arr) != len(frame):
            raise ValidationError(
                f"weights must be a column name or one count per row ({len(frame)} rows); "
                f"got shape {arr.shape}")
        values = pd.to_numeric(pd.Series(arr, index=frame.index), errors="coerce")
        name = "weights"
        show = values.to_frame(name)
    v = values.to_numpy(dtype=float)
    fail_rows(show, ~np.isfinite(v), name, "weights must be finite numbers")
    fail_rows(show, v < 0, name, "weights must be non-negative counts")
    fail_rows(show, v != np.round(v), name, "weights must be whole numbers (counts of customers)")
    if v.sum() <= 0:
        raise ValidationError(f"column {name!r}: the weights sum to 0: there are no customers")
    return v


def kind_rows(frame: pd.DataFrame, kind: str, *, weights: str | np.ndarray | None = None,
              extra_codes: Mapping[str, np.ndarray] | None = None,
              time_unit: str | None = None, validate: bool = True,
              what: str | None = None) -> UniqueRows:
    """Validate ``frame`` as ``kind`` and compress it to unique rows with weights."""
    spec = KINDS[kind]
    frame = spec.conform(frame)
    if validate:
        spec.validate(frame, what or f"{kind} data", time_unit)
    w = resolve_weights(frame, weights)
    keep = spec.uses(frame) if spec.uses is not None else None
    if spec.name == "contractual":
        frame = pd.DataFrame({"periods": frame["periods"].to_numpy(dtype=float),
                              "churned": frame["churned"].astype(float).to_numpy()},
                             index=frame.index)
    return compress_columns(frame, spec.columns, weights=w, keep=keep,
                            extra_codes=extra_codes,
                            time_unit=time_unit)
