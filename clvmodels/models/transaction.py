"""The public predictions of a transaction model fitted by maximum likelihood.

:class:`TransactionModel` implements :class:`clvmodels.models.protocol.TransactionPredictor`
for point estimates: it validates the data, calls the family module's broadcasting functions
through a handful of hooks and keeps the caller's index. The Bayesian variants implement the
same protocol over posterior draws (:mod:`clvmodels.models.posterior`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvmodels.models.base import check_counts, check_horizon, check_scalar_horizon
from clvmodels.models.spark_hooks import is_spark_frame, spark_predict

__all__ = ["TransactionModel"]


class TransactionModel:
    """Public predictions shared by every transaction model (BG/NBD, MBG/NBD, Pareto/NBD).

    A model supplies ``_probability_alive(p, x, tx, T)``, ``_expected_purchases(p, x, tx, T,
    t)``, ``_expected_new(p, t)`` and, where the formula exists, ``_pmf(p, n, t)`` — the
    module's broadcasting functions. These methods validate the input, keep its index and
    never mutate it.
    """

    def probability_alive(self, rfm: pd.DataFrame) -> pd.Series:
        """P(alive | frequency, recency, T) for each customer of ``rfm`` (a Spark summary:
        a Spark DataFrame, see :mod:`clvmodels.models.spark_hooks`)."""
        if is_spark_frame(rfm):
            return spark_predict(self, "probability_alive", rfm)
        x, tx, T, index = self._arrays(rfm)
        out = self._probability_alive(self._p(rfm), x, tx, T)
        return pd.Series(out, index=index, name="probability_alive")

    def expected_purchases(self, rfm: pd.DataFrame, t: float) -> pd.Series:
        """Expected repeat purchases in (T, T + t] given each customer's history.

        ``t`` is in the model's time unit: a scalar, or one value per customer (a Spark
        summary: a scalar; the result is a Spark DataFrame).
        """
        if is_spark_frame(rfm):
            return spark_predict(self, "expected_purchases", rfm, t=t)
        x, tx, T, index = self._arrays(rfm)
        t_arr = check_horizon(t)
        if t_arr.ndim > 0 and t_arr.shape != x.shape:
            raise ValueError("t must be a scalar or have one value per customer")
        out = self._expected_purchases(self._p(rfm), x, tx, T, t_arr)
        return pd.Series(out, index=index, name="expected_purchases")

    def cumulative_expected_purchases(self, rfm: pd.DataFrame, times: np.ndarray
                                      ) -> np.ndarray:
        """Expected purchases in (T, T + t] for every customer × every t: shape (n, k).

        One broadcast over all horizons (no loop); valuation differences these per period.
        """
        x, tx, T, _ = self._arrays(rfm)
        times = check_horizon(times, "times").reshape(-1)
        if self.has_covariates:  # per-customer parameters: the plain broadcast
            return TransactionModel._cumulative_expected(self, self._p(rfm, extra_axes=1),
                                                         x, tx, T, times)
        return self._cumulative_expected(self._p(), x, tx, T, times)

    def _cumulative_expected(self, p: dict[str, Any], x: np.ndarray, tx: np.ndarray,
                             T: np.ndarray, times: np.ndarray) -> np.ndarray:
        """(customers × times) expected purchases; models may override with a faster form."""
        return self._expected_purchases(p, x[:, None], tx[:, None], T[:, None], times[None, :])

    def expected_purchases_new_customer(self, t: float | np.ndarray, *,
                                        covariates: pd.DataFrame | None = None
                                        ) -> float | np.ndarray:
        """E[X(t)]: expected repeat purchases of a new customer in (0, t].

        A model with covariates needs ``covariates`` (a frame with the covariate columns,
        one row per customer profile): the result then has one row per profile, shape
        ``(len(covariates), *t.shape)``.
        """
        t_arr = check_horizon(t)
        out = self._expected_new(self._p(covariates, extra_axes=t_arr.ndim), t_arr)
        return float(out) if np.ndim(out) == 0 else np.asarray(out)

    def purchase_count_probability(self, n: int | np.ndarray, t: float, *,
                                   covariates: pd.DataFrame | None = None
                                   ) -> float | np.ndarray:
        """P(X(t) = n): probability that a new customer makes n repeat purchases in (0, t].

        With covariates (see :meth:`expected_purchases_new_customer`) one row per profile.
        """
        n_arr = np.asarray(n)
        if np.any(n_arr < 0) or np.any(n_arr != np.round(n_arr)):
            raise ValueError("n must be non-negative integers")
        t_arr = check_horizon(t)
        p = self._p(covariates, extra_axes=max(n_arr.ndim, t_arr.ndim))
        out = self._pmf(p, n_arr.astype(float), t_arr)
        return float(out) if np.ndim(out) == 0 else np.asarray(out)

    def expected_frequency_histogram(self, rfm: pd.DataFrame, max_frequency: int = 7
                                     ) -> pd.Series:
        """Expected number of customers with 0..max_frequency-1 and max_frequency+ repeat
        purchases in calibration, given each customer's own T (FHL 2005, Figure 1)."""
        _, _, T, _ = self._arrays(rfm)
        n = np.arange(max_frequency, dtype=float)
        if self.has_covariates:  # each customer's own parameters
            probs = self._pmf(self._p(rfm, extra_axes=1), n[None, :], T[:, None])
            expected = probs.sum(axis=0)
        else:
            uT, counts = np.unique(T, return_counts=True)
            probs = self._pmf(self._p(), n[None, :], uT[:, None])  # (unique T, k)
            expected = counts @ probs
        out = np.append(expected, len(T) - expected.sum())
        labels = [str(i) for i in range(max_frequency)] + [f"{max_frequency}+"]
        return pd.Series(out, index=labels, name="expected")

    def conditional_purchase_count_probability(self, data: pd.DataFrame, n: int | np.ndarray,
                                               t: float) -> pd.DataFrame:
        """P(Y(t) = n | history): each customer's probability of n repeat purchases in
        (T, T + t], one column per n (the conditional pmf holdout evaluation needs).

        Alive at T (probability :meth:`probability_alive`), a customer buys like a new one
        with the parameters updated by their own history; otherwise they buy nothing.
        """
        x, tx, T, index = self._arrays(data)
        n_arr = check_counts(n)
        t_arr = check_scalar_horizon(t)
        out = self._conditional_pmf(self._p(data, extra_axes=1), n_arr[None, :], x[:, None],
                                    tx[:, None], T[:, None], t_arr)
        return pd.DataFrame(out, index=index, columns=[int(v) for v in n_arr])

    def _pmf(self, p: dict[str, Any], n: Any, t: Any) -> np.ndarray:
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form purchase count distribution"
        )

    def _conditional_pmf(self, p: dict[str, Any], n: Any, x: Any, tx: Any, T: Any, t: Any
                         ) -> np.ndarray:
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form conditional count distribution"
        )
