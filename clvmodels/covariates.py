"""Customer covariates: from attribute columns to a numeric design matrix, learned once.

A covariate model reads each customer's attributes (acquisition channel, gender, first-order
size, plan type …) from columns of the frame it is fitted on. :class:`CovariateEncoding`
learns, at fit time, how every such column becomes numbers, and applies exactly that at
prediction time:

* **categorical** columns (strings, booleans, pandas ``category``) become one indicator column
  per level except the *reference level*, named ``column[level]``. The reference is the first
  category of a pandas ``Categorical`` and otherwise the smallest level in sorted order (R's
  ``factor`` convention, as in CLVTools), unless ``reference={"column": level}`` says
  otherwise. A coefficient is then the effect of that level *relative to the reference*.
* **numeric** columns are used as given (coefficients per unit of the column: the CLVTools
  convention), or standardised with ``standardize=True`` — centred on the fitting data's mean
  and divided by its standard deviation, so a coefficient is the effect of one standard
  deviation; the mean and deviation are stored and reapplied to new data.

With every design column zero (reference levels; numeric values 0, or the mean when
standardised) a covariate model is exactly the plain model.

Data are refused with the column and offending rows named: a missing column, missing values,
infinite numbers, text in a numeric column, and — at prediction time — a level not seen in
fitting (``unseen="reference"`` maps those to the reference level instead, on request).
:func:`join_customers` joins a customer-attribute table onto a summary by customer id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from clvmodels._validation import ValidationError

__all__ = ["CovariateEncoding", "UnseenLevels", "join_customers"]

UnseenLevels = Literal["raise", "reference"]

#: how many offending row labels an error message shows
_SHOW = 5


def _rows_text(index: pd.Index, mask: np.ndarray) -> str:
    bad = index[np.asarray(mask, dtype=bool)]
    shown = ", ".join(repr(v) for v in bad[:_SHOW].tolist())
    more = f" and {len(bad) - _SHOW:,} more" if len(bad) > _SHOW else ""
    return f"{len(bad):,} row(s): {shown}{more}"


def _native(value: Any) -> Any:
    """A level as a plain Python value (JSON-serialisable: str, int, float or bool)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _is_categorical(series: pd.Series) -> bool:
    dtype = series.dtype
    return bool(isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype)
                or pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype))


def _sorted_levels(values: pd.Series) -> list[Any]:
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna().unique().tolist())
        return [_native(c) for c in values.cat.categories if c in present]
    uniq = pd.unique(values.dropna())
    try:
        ordered = sorted(uniq.tolist())
    except TypeError:  # mixed types: order by text
        ordered = sorted(uniq.tolist(), key=str)
    return [_native(v) for v in ordered]


@dataclass(frozen=True)
class ColumnEncoding:
    """How one attribute column becomes design columns."""

    name: str
    kind: Literal["categorical", "numeric"]
    levels: tuple[Any, ...] = ()
    reference: Any = None
    center: float = 0.0
    scale: float = 1.0

    @property
    def design_names(self) -> list[str]:
        if self.kind == "numeric":
            return [self.name]
        return [f"{self.name}[{lvl}]" for lvl in self.levels if lvl != self.reference]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "categorical":
            out.update(levels=list(self.levels), reference=self.reference)
        else:
            out.update(center=self.center, scale=self.scale)
        return out


@dataclass(frozen=True)
class CovariateEncoding:
    """The learned encoding of a set of attribute columns (see the module docstring).

    Build with :meth:`learn`; :meth:`design` turns a frame into the design matrix
    ``(n_rows, len(design_names))``; :meth:`to_dict` / :meth:`from_dict` persist it.
    """

    columns: tuple[ColumnEncoding, ...]
    standardize: bool = False
    _positions: dict[str, list[int]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        pos, start = {}, 0
        for col in self.columns:
            k = len(col.design_names)
            pos[col.name] = list(range(start, start + k))
            start += k
        object.__setattr__(self, "_positions", pos)

    # ---- learning -------------------------------------------------------------------
    @classmethod
    def learn(cls, frame: pd.DataFrame, columns: Sequence[str], *,
              reference: Mapping[str, Any] | None = None, standardize: bool = False,
              what: str = "the data") -> CovariateEncoding:
        """Learn the encoding of ``columns`` from ``frame`` (the fitting data)."""
        reference = dict(reference or {})
        unknown = [c for c in reference if c not in columns]
        if unknown:
            raise ValueError(f"covariate_reference names columns that are not covariates: "
                             f"{unknown} (covariates: {list(columns)})")
        check_columns(frame, columns, what)
        out = []
        for name in columns:
            series = frame[name]
            if _is_categorical(series):
                levels = _sorted_levels(series)
                if name in reference:
                    ref = _native(reference[name])
                    if ref not in levels:
                        raise ValueError(f"covariate_reference: {ref!r} is not a level of "
                                         f"column {name!r} (levels: {levels[:20]})")
                else:
                    ref = levels[0] if levels else None
                out.append(ColumnEncoding(name, "categorical", tuple(levels), ref))
            else:
                values = series.to_numpy(dtype=float)
                if name in reference:
                    raise ValueError(f"covariate_reference: column {name!r} is numeric; a "
                                     "reference level applies to categorical columns only")
                center, scale = 0.0, 1.0
                if standardize:
                    center = float(np.mean(values)) if len(values) else 0.0
                    sd = float(np.std(values)) if len(values) else 0.0
                    scale = sd if sd > 0 else 1.0
                out.append(ColumnEncoding(name, "numeric", center=center, scale=scale))
        return cls(tuple(out), standardize=bool(standardize))

    # ---- applying -------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """The attribute columns, in order."""
        return [c.name for c in self.columns]

    @property
    def design_names(self) -> list[str]:
        """The design columns: ``column`` (numeric) or ``column[level]`` (indicators)."""
        return [n for c in self.columns for n in c.design_names]

    def positions(self, columns: Sequence[str]) -> list[int]:
        """Design-column positions of the attribute ``columns``."""
        return [j for c in columns for j in self._positions[c]]

    def design(self, frame: pd.DataFrame, *, unseen: UnseenLevels = "raise",
               what: str = "the data") -> np.ndarray:
        """The design matrix of ``frame``: float array ``(len(frame), n_design)``.

        Raises :class:`ValidationError` naming the column and rows for a missing column,
        missing or non-finite values, text in a numeric column, and levels not seen when the
        encoding was learned (``unseen="reference"``: such rows take the reference level).
        """
        return self.patterns(frame, unseen=unseen, what=what, codes=False)[0]

    def patterns(self, frame: pd.DataFrame, *, unseen: UnseenLevels = "raise",
                 what: str = "the data", codes: bool = True
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(design matrix, pattern code per row)``: rows with the same code have the same
        design row (codes are dense, 0..K-1, from the columns' level codes and distinct
        numbers — one hash pass, not a sort of the design's rows). ``codes=False`` skips the
        codes (None)."""
        if unseen not in ("raise", "reference"):
            raise ValueError("unseen must be 'raise' or 'reference'")
        check_columns(frame, self.names, what)
        n = len(frame)
        out = np.zeros((n, len(self.design_names)))
        key = np.zeros(n, dtype=np.int64) if codes else None
        radix = 1.0
        column_codes: list[np.ndarray] = []
        for col in self.columns:
            series = frame[col.name]
            pos = self._positions[col.name]
            if col.kind == "numeric":
                if _is_categorical(series) and not pd.api.types.is_bool_dtype(series.dtype):
                    raw = series.astype(object)
                    numbers = pd.to_numeric(raw, errors="coerce")
                    text = (numbers.isna() | raw.map(lambda v: isinstance(v, str))).to_numpy()
                    if text.any():
                        raise ValidationError(
                            f"covariate column {col.name!r} was numeric when the model was "
                            f"fitted but holds text in {_rows_text(frame.index, text)} of "
                            f"{what} (e.g. {series[text].iloc[0]!r})")
                    series = numbers
                values = series.to_numpy(dtype=float)
                out[:, pos[0]] = (values - col.center) / col.scale
                if codes:
                    level_codes, uniq = pd.factorize(values)
                    column_codes.append(level_codes.astype(np.int64))
                    radix *= max(len(uniq), 1)
                continue
            if not _is_categorical(series) and not pd.api.types.is_numeric_dtype(series.dtype):
                raise ValidationError(f"covariate column {col.name!r} has an unusable type "
                                      f"{series.dtype} in {what}")
            level_index = pd.Index(list(col.levels), dtype=object)
            if isinstance(series.dtype, pd.CategoricalDtype):
                # the categories' positions among the levels, then one gather by the codes
                cat_pos = level_index.get_indexer(
                    pd.Index(series.cat.categories.astype(object), dtype=object))
                lc = np.append(cat_pos, -1)[series.cat.codes.to_numpy()]
            else:
                lc = level_index.get_indexer(pd.Index(series.astype(object).to_numpy(),
                                                      dtype=object))
            unknown = lc < 0
            if unknown.any():
                if unseen == "raise":
                    seen = sorted({str(v) for v in series[unknown].iloc[:50]})[:_SHOW]
                    raise ValidationError(
                        f"covariate column {col.name!r} has level(s) not seen when the model "
                        f"was fitted ({', '.join(seen)}) in "
                        f"{_rows_text(frame.index, unknown)}; known levels: "
                        f"{list(col.levels)[:20]}. Set the model's unseen_levels='reference' to "
                        f"treat them as the reference level {col.reference!r}")
                lc = np.where(unknown, col.levels.index(col.reference), lc)
            non_ref = [i for i, lvl in enumerate(col.levels) if lvl != col.reference]
            for j, level_code in zip(pos, non_ref, strict=True):
                out[:, j] = lc == level_code
            if codes:
                column_codes.append(lc.astype(np.int64))
                radix *= max(len(col.levels), 1)
        if not codes:
            return out, None
        if radix < 2.0**62:
            for c, col in zip(column_codes, self.columns, strict=True):
                size = (len(col.levels) if col.kind == "categorical"
                        else int(c.max()) + 1 if len(c) else 1)
                key = key * max(size, 1) + c
        else:  # too many combinations for one int64: unique rows of the codes
            _, key = np.unique(np.column_stack(column_codes), axis=0, return_inverse=True)
        dense, _ = pd.factorize(key.reshape(-1))
        return out, dense.astype(np.int64)

    # ---- persistence ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"standardize": self.standardize,
                "columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> CovariateEncoding:
        """The encoding :meth:`to_dict` wrote (validated: raises ``ValueError`` if malformed)."""
        try:
            cols = []
            for c in payload["columns"]:
                kind = c["kind"]
                if kind == "categorical":
                    levels = tuple(c["levels"])
                    if c["reference"] not in levels or len(set(levels)) != len(levels):
                        raise ValueError(f"bad levels for {c['name']!r}")
                    cols.append(ColumnEncoding(str(c["name"]), "categorical", levels,
                                               c["reference"]))
                elif kind == "numeric":
                    center, scale = float(c["center"]), float(c["scale"])
                    if not (np.isfinite(center) and np.isfinite(scale) and scale > 0):
                        raise ValueError(f"bad scaling for {c['name']!r}")
                    cols.append(ColumnEncoding(str(c["name"]), "numeric", center=center,
                                               scale=scale))
                else:
                    raise ValueError(f"unknown covariate kind {kind!r}")
            names = [c.name for c in cols]
            if len(set(names)) != len(names):
                raise ValueError("a covariate column appears twice")
            return cls(tuple(cols), standardize=bool(payload.get("standardize", False)))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed covariate encoding: {exc!r}") from None


def check_columns(frame: pd.DataFrame, columns: Sequence[str], what: str = "the data") -> None:
    """Refuse missing covariate columns, missing values and non-finite numbers (naming the
    column and rows)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"covariate column(s) {missing} not found in {what} (columns: "
            f"{list(frame.columns)[:20]}); join the customer attributes first "
            "(clvmodels.join_customers)")
    for name in columns:
        series = frame[name]
        na = series.isna().to_numpy()
        if na.any():
            raise ValidationError(f"covariate column {name!r} has missing values in "
                                  f"{_rows_text(frame.index, na)} of {what}")
        if pd.api.types.is_numeric_dtype(series.dtype) and not \
                pd.api.types.is_bool_dtype(series.dtype):
            bad = ~np.isfinite(series.to_numpy(dtype=float))
            if bad.any():
                raise ValidationError(f"covariate column {name!r} has infinite values in "
                                      f"{_rows_text(frame.index, bad)} of {what}")


def join_customers(data: pd.DataFrame, customers: pd.DataFrame, *,
                   on: str | None = None, columns: Sequence[str] | None = None
                   ) -> pd.DataFrame:
    """``data`` (one row per customer, indexed by customer id — an RFM, discrete or contract
    summary) with attribute columns of ``customers`` joined on the customer id.

    ``customers`` is keyed by its index, or by its column ``on``. ``columns`` picks the
    attribute columns (default: all). Returns a new frame in ``data``'s order with its
    ``attrs`` (time unit …); neither input is changed. Refuses duplicate ids in
    ``customers``, customers of ``data`` without attributes, and column names already in
    ``data`` — each named.
    """
    if on is not None and on not in customers.columns:
        raise ValidationError(f"column {on!r} not found in the customer table")
    table = customers.set_index(on) if on is not None else customers
    cols = list(table.columns) if columns is None else list(columns)
    absent = [c for c in cols if c not in table.columns]
    if absent:
        raise ValidationError(f"column(s) {absent} not found in the customer table")
    clash = [c for c in cols if c in data.columns]
    if clash:
        raise ValidationError(f"column(s) {clash} are already in the data; drop or rename "
                              "them before joining")
    dup = table.index.duplicated(keep=False)
    if dup.any():
        raise ValidationError(f"the customer table has duplicate customer ids: "
                              f"{_rows_text(table.index, dup)}")
    keys = data.index
    try:
        pos = table.index.get_indexer(keys)
    except Exception as exc:  # incomparable id types
        raise ValidationError(f"customer ids of the data and the customer table cannot be "
                              f"matched: {exc}") from None
    if np.any(pos < 0) and keys.dtype != table.index.dtype:
        pos = table.index.astype(str).get_indexer(keys.astype(str))
    missing = pos < 0
    if missing.any():
        raise ValidationError(
            f"the customer table has no row for {_rows_text(keys, missing)} of the data "
            f"(matched on the customer id{'' if on is None else f' = column {on!r}'})")
    out = data.copy()
    for c in cols:
        out[c] = table[c].iloc[pos].set_axis(data.index)
    out.attrs = dict(data.attrs)
    return out
