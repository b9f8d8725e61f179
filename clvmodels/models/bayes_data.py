"""The data a Bayesian model sees: the unique rows of its likelihood's columns, with weights.

A model compresses a frame to :class:`Rows` (its ``_rows`` method); the PyMC model, the
pointwise log-likelihood and every draw-chunked prediction work on the unique rows, and
:func:`expand` takes per-row results back to the frame's customers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Rows", "expand"]


@dataclass
class Rows:
    """Unique rows of the columns a model's likelihood reads, with weights.

    ``columns`` holds one array per data column (``x, tx, T`` or ``x, m``) and, for a
    hierarchical model, ``segment`` (integer codes as floats). ``inverse`` maps each customer
    of ``index`` to its row (``-1`` for customers the model does not use, e.g. spend models
    skip ``x = 0``). ``extra`` carries what a model needs alongside (``codes``: each row's
    segment code as integers; ``t``: each row's own horizon).
    """

    columns: dict[str, np.ndarray]
    weights: np.ndarray
    inverse: np.ndarray
    index: pd.Index
    time_unit: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return len(self.weights)

    @property
    def n_customers(self) -> int:
        return int(self.weights.sum())


def expand(res: pd.Series | pd.DataFrame, rows: Rows) -> pd.Series | pd.DataFrame:
    """Per-unique-row results → per customer, on the customers' index."""
    if isinstance(res, pd.DataFrame):
        return pd.DataFrame(res.to_numpy()[rows.inverse], index=rows.index, columns=res.columns)
    return pd.Series(res.to_numpy()[rows.inverse], index=rows.index, name=res.name)
