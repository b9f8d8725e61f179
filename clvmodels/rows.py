"""Unique rows with integer weights: the one container every fitter, compression and valuation use.

Every likelihood in the package depends on a customer only through a few data columns —
``(frequency, recency, T)`` for the transaction models (continuous time or discrete
opportunities), ``(frequency, monetary_value)`` for spend, ``(periods, churned)`` for a
contract — plus, for hierarchical or covariate models, a segment code. Fitting on the *unique*
combinations of those columns, each weighted by how many customers share it, gives exactly the
log-likelihood of the full data at a fraction of the cost. :class:`UniqueRows` holds such rows;
``inverse`` maps every original customer to its row so per-row results expand back.

Columns are stored under the data frame's names and can also be read under the papers'
symbols (``x`` = frequency, ``tx`` = recency, ``m``/``mx`` = monetary value, ``n`` = periods,
``w`` = the weights), so a model's formula reads ``d.x, d.tx, d.T`` whatever the source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ALIASES", "UniqueRows", "compress_columns", "unique_rows"]

#: the papers' symbols for the data columns
ALIASES: dict[str, str] = {"x": "frequency", "tx": "recency", "m": "monetary_value",
                           "mx": "monetary_value", "n": "periods"}


def _dense_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, code of each element): a hash pass, then a sort of the
    distinct values only — much cheaper than sorting every element."""
    codes, uniques = pd.factorize(values, sort=False)
    uniques = np.asarray(uniques)
    order = np.argsort(uniques, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return uniques[order], rank[codes].astype(np.int64)


def unique_rows(columns: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Unique rows of equal-length 1-D columns: (unique columns, inverse, counts).

    Each column is reduced to dense integer codes, the codes are combined into one int64
    key per row, and the keys are made unique — far faster than ``np.unique(axis=0)``, which
    sorts rows as opaque byte strings. Rows come out in lexicographic order of the columns.
    """
    dense = [_dense_codes(np.asarray(col)) for col in columns]
    uniques = [u for u, _ in dense]
    if np.prod([float(max(len(u), 1)) for u in uniques]) >= 2.0**62:
        # too many combinations for one int64 key: unique rows of the code matrix instead
        ucodes, inverse, counts = np.unique(np.column_stack([c for _, c in dense]), axis=0,
                                            return_inverse=True, return_counts=True)
        return ([u[ucodes[:, j]] for j, u in enumerate(uniques)],
                inverse.reshape(-1).astype(np.int64), counts.astype(np.int64))
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for u, codes in dense:
        key = key * len(u) + codes
    ukey, inverse = _dense_codes(key)
    counts = np.bincount(inverse, minlength=len(ukey)).astype(np.int64)
    out = []
    for u in reversed(uniques):
        out.append(u[ukey % len(u)])
        ukey = ukey // len(u)
    return out[::-1], inverse, counts


@dataclass(frozen=True, eq=False)
class UniqueRows:
    """Unique rows of a model's data columns with integer weights.

    Attributes
    ----------
    columns
        One float array per data column (the frame's names: ``frequency``, ``recency``,
        ``T``, ``monetary_value``, ``periods``, ``churned``, ``segment`` …), all of length
        :attr:`n_rows`. Also readable as attributes, and under the papers' symbols
        (:data:`ALIASES`): ``rows.x`` is ``rows.columns["frequency"]``.
    weights
        How many customers share each row (integer counts held as float64).
    inverse
        For every original customer, the position of its row (``-1``: a customer the model
        does not use, e.g. a spend model skips customers without repeat purchases).
    index
        The original customers' index (``None`` for pre-aggregated data without one).
    time_unit
        The data's time unit (``"D"``, ``"W"``, ``"M"``, ``"Y"``) or None.
    extra
        Model-specific per-row arrays that are not likelihood columns (e.g. segment codes).
    """

    columns: Mapping[str, np.ndarray]
    weights: np.ndarray
    inverse: np.ndarray
    index: pd.Index | None = None
    time_unit: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        columns = self.__dict__.get("columns")
        if columns is not None:
            if name in columns:
                return columns[name]
            alias = ALIASES.get(name)
            if alias is not None and alias in columns:
                return columns[alias]
        raise AttributeError(f"{type(self).__name__} has no column or attribute {name!r}")

    @property
    def w(self) -> np.ndarray:
        """The weights (the papers' symbol)."""
        return self.weights

    @property
    def n_rows(self) -> int:
        return len(self.weights)

    @property
    def n_customers(self) -> int:
        return round(float(np.sum(self.weights)))

    def levels(self, *names: str) -> tuple[Any, np.ndarray, np.ndarray]:
        """Distinct values of one column (or distinct combinations of several), each row's
        position among them, and the summed weight per value; cached.

        With one name the first item is the array of distinct values; with several it is a
        list of arrays (one per column). Terms of a likelihood that depend on x alone are
        computed once per distinct x this way.
        """
        cache = self.__dict__.setdefault("_levels", {})
        if names not in cache:
            cols = [np.asarray(getattr(self, n)) for n in names]
            if len(cols) == 1:
                values, inverse = np.unique(cols[0], return_inverse=True)
                inverse = inverse.reshape(-1)
            else:
                values, inverse, _ = unique_rows(cols)
            sums = np.bincount(inverse, weights=self.weights,
                               minlength=len(values[0] if len(cols) > 1 else values))
            cache[names] = (values, inverse, sums)
        return cache[names]

    def to_frame(self) -> pd.DataFrame:
        """The unique rows as a DataFrame with a ``weight`` column."""
        out = pd.DataFrame(dict(self.columns))
        out["weight"] = self.weights
        out.attrs["time_unit"] = self.time_unit
        return out

    def expand(self, values: np.ndarray | pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
        """Per-row values → per-customer values, indexed like the original frame.

        Customers the rows do not cover (``inverse == -1``) get NaN.
        """
        index = self.index if self.index is not None else pd.RangeIndex(len(self.inverse))
        missing = self.inverse < 0
        take = np.where(missing, 0, self.inverse)
        if isinstance(values, pd.DataFrame):
            out = values.iloc[take].set_axis(index, axis=0)
            if missing.any():
                out = out.astype(float)
                out.iloc[missing] = np.nan
            return out
        arr = np.asarray(values)
        res = arr[take]
        if missing.any():
            res = res.astype(float)
            res[missing] = np.nan
        return pd.Series(res, index=index,
                         name=values.name if isinstance(values, pd.Series) else None)

    def decompress(self) -> pd.DataFrame:
        """Back to one row per customer (the data columns)."""
        out = self.expand(pd.DataFrame(dict(self.columns)))
        out.attrs["time_unit"] = self.time_unit
        return out

    # the RFM spellings of the historical CompressedRFM, kept for callers
    @property
    def frequency(self) -> np.ndarray:
        return self.columns["frequency"]

    @property
    def recency(self) -> np.ndarray:
        return self.columns["recency"]

    @property
    def T(self) -> np.ndarray:
        return self.columns["T"]


def compress_columns(
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    weights: np.ndarray | None = None,
    keep: np.ndarray | None = None,
    extra_codes: Mapping[str, np.ndarray] | None = None,
    time_unit: str | None = None,
) -> UniqueRows:
    """Compress ``frame[columns]`` to unique rows with weights.

    ``weights`` (one non-negative integer per row of ``frame``, default 1) are counts of
    identical customers — pre-aggregated data from SQL, Spark or a paper. ``keep`` (boolean
    per row) restricts the rows used (others get ``inverse == -1``). ``extra_codes`` are further
    integer key columns (e.g. segment codes) that become part of the unique-row key and are
    stored as columns too.
    """
    n = len(frame)
    mask = np.ones(n, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    names = list(columns) + list(extra_codes or {})
    arrays = [frame[c].to_numpy(dtype=float)[mask] for c in columns]
    arrays += [np.asarray(v, dtype=float)[mask] for v in (extra_codes or {}).values()]
    w_in = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if int(mask.sum()) == 0:
        uniq: list[np.ndarray] = [np.empty(0) for _ in names]
        inv_kept = np.empty(0, dtype=np.int64)
        counts = np.empty(0)
    else:
        uniq, inv_kept, _ = unique_rows(arrays)
        counts = np.bincount(inv_kept, weights=w_in[mask], minlength=len(uniq[0]))
    inverse = np.full(n, -1, dtype=np.int64)
    inverse[mask] = inv_kept
    if weights is not None and len(counts) and np.any(counts == 0):
        # rows whose customers all carry weight 0 add nothing to the likelihood
        used = counts > 0
        remap = np.cumsum(used) - 1
        uniq = [u[used] for u in uniq]
        counts = counts[used]
        inverse = np.where(inverse >= 0, np.where(used[np.maximum(inverse, 0)],
                                                  remap[np.maximum(inverse, 0)], -1), -1)
    return UniqueRows(columns=dict(zip(names, uniq, strict=True)),
                      weights=np.asarray(counts, dtype=float), inverse=inverse,
                      index=frame.index.copy(), time_unit=time_unit)
