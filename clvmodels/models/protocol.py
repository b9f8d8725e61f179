"""The protocols the rest of the package programs against.

Valuation, evaluation, plotting and the report use models only through these: no
``isinstance`` checks on concrete families, no private members. Every transaction model —
maximum likelihood or Bayesian, continuous time or discrete opportunities — is a
:class:`TransactionPredictor`; Bayesian models are also :class:`PosteriorModel`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

__all__ = [
    "ContractualPredictor",
    "PosteriorModel",
    "SpendPredictor",
    "TransactionPredictor",
    "is_posterior",
]


@runtime_checkable
class TransactionPredictor(Protocol):
    """Forecasts of a buy-till-you-die model for customers ``(frequency, recency, T)``."""

    data_kind: str

    def probability_alive(self, data: pd.DataFrame) -> pd.Series: ...

    def expected_purchases(self, data: pd.DataFrame, t: float) -> pd.Series: ...

    def cumulative_expected_purchases(self, data: pd.DataFrame, times: np.ndarray
                                      ) -> np.ndarray: ...

    def expected_purchases_new_customer(self, t: float | np.ndarray) -> Any: ...

    def purchase_count_probability(self, n: int | np.ndarray, t: float) -> Any: ...

    def conditional_purchase_count_probability(self, data: pd.DataFrame,
                                               n: int | np.ndarray, t: float) -> Any: ...


@runtime_checkable
class SpendPredictor(Protocol):
    """A spend model: expected mean transaction value per customer."""

    def expected_spend(self, data: pd.DataFrame) -> pd.Series: ...


@runtime_checkable
class ContractualPredictor(Protocol):
    """A contractual (subscription) model on ``(periods, churned)``."""

    def survival(self, t: float | np.ndarray) -> Any: ...

    def retention_rate(self, t: float | np.ndarray) -> Any: ...

    def discounted_expected_residual_lifetime(self, data: pd.DataFrame,
                                              discount_rate: float) -> pd.Series: ...


@runtime_checkable
class PosteriorModel(Protocol):
    """A model fitted by posterior sampling: predictions carry draws and intervals."""

    @property
    def n_draws(self) -> int: ...

    def parameter_draws(self, data: pd.DataFrame | None = None) -> Any: ...


def is_posterior(model: Any) -> bool:
    """Whether ``model`` holds posterior draws (the Bayesian variants)."""
    return bool(getattr(model, "bayesian", False))  # the class attribute, seen through proxies
