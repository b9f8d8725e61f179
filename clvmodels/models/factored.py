"""Factored evaluation: a model module's formula computed on the distinct values of its data.

Every RFM likelihood depends on a customer only through a few data columns (``x, t_x, T`` —
or ``x, m_x`` for spend — and the segment). A Bayesian model hands the module's own
``log_likelihood(..., m=...)`` a *factored* math namespace (:func:`factored_namespace`): each
data column arrives as its distinct values (:class:`Factored`), and every operation is carried
out on the distinct values — or distinct combinations of the columns it involves — and only
gathered to rows when two operands need a finer grouping. Terms that depend on ``x`` alone
(the ``lnΓ`` terms) are thus computed once per distinct ``x``, ``ln(alpha + T)`` once per
distinct ``T``, and only the final log-sum-exp once per row. The same code serves numpy
(posterior draws on leading axes) and pytensor (the PyMC graph).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

import numpy as np

__all__ = ["ROWS", "Factored", "RowSpace", "factored_namespace", "lift"]

#: key of the finest grouping: one value per unique row
ROWS: frozenset[str] = frozenset({"__row__"})


class RowSpace:
    """Distinct values of each data column over the unique rows, and their combinations.

    ``columns`` maps a name (``"x"``, ``"tx"``, ``"T"``, ``"segment"`` …) to one value per
    row; together they identify the rows. A *key* is a set of column names; its *groups* are
    the distinct combinations of those columns that occur. A key holding every column is the
    rows themselves (:data:`ROWS`); any other key keeps its groups, however many there are.

    Which keys are kept is thus a matter of the columns' names, never of the data: two data
    sets with the same columns give the same gathers (of other lengths), so a PyMC model
    built on either has the same structure and one compiled sampler serves both
    (:mod:`clvmodels.models.compiled`). A key whose groups are nearly the rows costs one
    gather of row length more than computing per row — little beside the special functions
    computed once per group.
    """

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        self.n_rows = len(next(iter(columns.values())))
        self.uniques: dict[str, np.ndarray] = {}
        self.codes: dict[str, np.ndarray] = {}
        for name, values in columns.items():
            uniq, inverse = np.unique(np.asarray(values), return_inverse=True)
            self.uniques[name] = uniq
            self.codes[name] = inverse.reshape(-1).astype(np.int64)
        self._groups: dict[frozenset[str], tuple[frozenset[str], np.ndarray, np.ndarray]] = {}
        self._gathers: dict[tuple[frozenset[str], frozenset[str]], Any] = {}
        #: turns an index array into what the backend indexes with (e.g. a pytensor constant)
        self.index_constant: Callable[[np.ndarray], Any] = lambda idx: idx

    def groups(self, key: frozenset[str]) -> tuple[frozenset[str], np.ndarray, np.ndarray]:
        """``(effective key, group of each row, first row of each group)``."""
        if key in self._groups:
            return self._groups[key]
        if ROWS <= key:
            rows = np.arange(self.n_rows)
            out = (ROWS, rows, rows)
        elif key >= self.codes.keys():
            out = self.groups(ROWS)
        elif len(key) == 1:
            (name,) = key
            codes = self.codes[name]
            _, first = np.unique(codes, return_index=True)
            out = (key, codes, first)
        else:
            stacked = np.column_stack([self.codes[n] for n in sorted(key)])
            _, first, inverse = np.unique(stacked, axis=0, return_index=True,
                                          return_inverse=True)
            out = (key, inverse.reshape(-1), first)
        self._groups[key] = out
        return out

    def merge(self, *keys: frozenset[str]) -> frozenset[str]:
        """The effective key of the union of ``keys``."""
        return self.groups(frozenset().union(*keys))[0]

    def gather(self, src: frozenset[str], dst: frozenset[str]) -> Any:
        """Index taking values grouped by ``src`` to the (finer) groups of ``dst``."""
        pair = (src, dst)
        if pair not in self._gathers:
            _, src_of_row, _ = self.groups(src)
            _, _, dst_first = self.groups(dst)
            self._gathers[pair] = self.index_constant(src_of_row[dst_first])
        return self._gathers[pair]

    def variable(self, name: str, convert: Callable[[np.ndarray], Any] = lambda v: v
                 ) -> Factored:
        """Column ``name`` as a factored value (its distinct values, sorted)."""
        return Factored(convert(self.uniques[name].astype(float)), frozenset({name}), self)

    def segment_values(self, per_segment: Any, name: str = "segment") -> Factored:
        """Per-segment parameters (last axis = segment code) as a factored value."""
        codes = self.uniques[name].astype(np.int64)
        value = per_segment
        if not np.array_equal(codes, np.arange(len(codes))):
            value = _take(per_segment, self.index_constant(codes))
        return Factored(value, frozenset({name}), self)


def _take(value: Any, index: Any) -> Any:
    """``value[..., index]`` for numpy arrays and pytensor tensors."""
    if isinstance(value, np.ndarray | np.generic | float | int):
        return np.asarray(value)[..., index]
    if value.ndim <= 1:
        return value[index]
    import pytensor.tensor as pt

    return pt.take(value, index, axis=-1)


class Factored:
    """A per-row quantity stored once per group of rows that share the columns it uses.

    Arithmetic and the math namespace's functions act on the stored values; combining two
    factored values first gathers both to the groups of the union of their keys. ``rows()``
    gives the per-row values. Works with numpy arrays (posterior draws on leading axes) and
    pytensor tensors alike.
    """

    __array_ufunc__ = None  # make numpy defer to our reflected operators
    __slots__ = ("key", "space", "value")

    def __init__(self, value: Any, key: frozenset[str], space: RowSpace) -> None:
        self.value, self.key, self.space = value, key, space

    def at(self, key: frozenset[str]) -> Any:
        """The values gathered to the groups of ``key`` (a superset of this key)."""
        if key == self.key:
            return self.value
        return _take(self.value, self.space.gather(self.key, key))

    def rows(self) -> Any:
        """One value per row."""
        return self.at(ROWS)

    def __neg__(self) -> Factored:
        return lift(operator.neg, self)

    def __add__(self, other: Any) -> Factored:
        return lift(operator.add, self, other)

    def __radd__(self, other: Any) -> Factored:
        return lift(operator.add, other, self)

    def __sub__(self, other: Any) -> Factored:
        return lift(operator.sub, self, other)

    def __rsub__(self, other: Any) -> Factored:
        return lift(operator.sub, other, self)

    def __mul__(self, other: Any) -> Factored:
        return lift(operator.mul, self, other)

    def __rmul__(self, other: Any) -> Factored:
        return lift(operator.mul, other, self)

    def __truediv__(self, other: Any) -> Factored:
        return lift(operator.truediv, self, other)

    def __rtruediv__(self, other: Any) -> Factored:
        return lift(operator.truediv, other, self)

    def __pow__(self, other: Any) -> Factored:
        return lift(operator.pow, self, other)

    def __rpow__(self, other: Any) -> Factored:
        return lift(operator.pow, other, self)

    def __gt__(self, other: Any) -> Factored:
        return lift(operator.gt, self, other)

    def __ge__(self, other: Any) -> Factored:
        return lift(operator.ge, self, other)

    def __lt__(self, other: Any) -> Factored:
        return lift(operator.lt, self, other)

    def __le__(self, other: Any) -> Factored:
        return lift(operator.le, self, other)


def lift(fn: Callable[..., Any], *args: Any) -> Any:
    """Apply ``fn`` to arguments some of which are :class:`Factored` (on their common groups)."""
    factored = [a for a in args if isinstance(a, Factored)]
    if not factored:
        return fn(*args)
    space = factored[0].space
    key = space.merge(*(f.key for f in factored))
    values = [a.at(key) if isinstance(a, Factored) else a for a in args]
    return Factored(fn(*values), key, space)


def _pt_logaddexp(a: Any, b: Any) -> Any:
    """log(e^a + e^b) = max(a, b) + softplus(-|a - b|): stable, one exp and one log1p.

    ``pytensor.tensor.logaddexp`` is ``log(exp(a) + exp(b))`` (it relies on a graph rewrite
    for stability); this form also gives a cheaper gradient (a sigmoid).
    """
    import pytensor.tensor as pt

    return pt.maximum(a, b) + pt.softplus(-pt.abs(a - b))


def factored_namespace(m: SimpleNamespace) -> SimpleNamespace:
    """The math namespace ``m`` with every function lifted to accept :class:`Factored`."""
    funcs = dict(vars(m))
    if m.name == "pytensor":
        funcs["logaddexp"] = _pt_logaddexp
    out: dict[str, Any] = {}
    for name, f in funcs.items():
        if callable(f):
            out[name] = (lambda f_: lambda *args: lift(f_, *args))(f)
        else:
            out[name] = f
    out["name"] = f"{m.name}+factored"
    return SimpleNamespace(**out)

