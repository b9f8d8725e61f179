"""Predictions of a Bayesian contractual model over its posterior draws.

The same questions as :class:`clvmodels.models.contractual.ContractualModel` answers for a
point estimate — survival and retention of a new customer, each active customer's
discounted expected residual lifetime (DERL) — answered per posterior draw through the same
family hooks (``_survival``, ``_derl`` …, the family module's broadcasting functions), and
reduced to posterior means and central intervals. A contract depends on a customer only
through ``(segment, periods, churned)``, so every per-customer quantity is computed on the
unique rows (a handful) and expanded.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from clvmodels.models.contractual import _periods_arg, period_discount_rate
from clvmodels.models.posterior import UnseenSegments
from clvmodels.rows import UniqueRows

__all__ = ["ContractualPredictions"]


def _summarise(draws: np.ndarray, name: str, interval: float | None, index: Any
               ) -> pd.Series | pd.DataFrame:
    """Posterior mean over axis 0 [+ central interval columns]."""
    mean = draws.mean(axis=0)
    if interval is None:
        return pd.Series(mean, index=index, name=name)
    if not 0 < interval < 1:
        raise ValueError(f"interval must be in (0, 1), got {interval!r}")
    q = (1 - interval) / 2
    lo, hi = np.quantile(draws, [q, 1 - q], axis=0)
    return pd.DataFrame({name: mean, f"{name}_lower": lo, f"{name}_upper": hi}, index=index)


class ContractualPredictions:
    """Posterior predictions of a contractual model (survival, retention, DEL, DERL)."""

    # ---- the population (a new customer) ---------------------------------------------
    def _population_params(self, segment: Any = None,
                           covariates: pd.DataFrame | None = None) -> dict[str, np.ndarray]:
        """Draws (S, 1) of a new customer's parameters: the fitted model's, a fitted
        segment's (``segment``), or — hierarchical, no segment — a new segment's.

        With covariates, draws (S, P) for the P rows (customer profiles) of ``covariates``:
        each draw's base parameters times exp(sign * gamma_draw' z_p) (links equation (1)).
        A model with covariates refuses without ``covariates`` (naming its columns); one
        without refuses ``covariates``.
        """
        self._check_fitted()
        layout = getattr(self, "covariate_layout_", None)
        if covariates is None or layout is None:
            if covariates is not None:
                raise ValueError(f"{type(self).__name__} has no covariates: covariates= does "
                                 "not apply")
            draws = self._segment_draws(segment)  # a covariate model refuses here
            return {n: np.asarray(v, dtype=float).reshape(-1, 1) for n, v in draws.items()}
        return self._profile_params(segment, covariates)

    def _curve(self, hook: str, t: Any, name: str, interval: float | None, segment: Any,
               minimum: int = 0, covariates: pd.DataFrame | None = None
               ) -> pd.Series | pd.DataFrame:
        t_arr = np.atleast_1d(_periods_arg(t))
        if np.any(t_arr < minimum):
            raise ValueError(f"{name} needs t >= {minimum}")
        p = self._population_params(segment, covariates)
        index = pd.Index(t_arr.astype(int), name="t")
        if covariates is None:
            draws = np.broadcast_to(getattr(self, hook)(p, t_arr[None, :]),
                                    (self.n_draws, len(t_arr)))
            return _summarise(draws, name, interval, index)
        P = len(covariates)
        draws = np.broadcast_to(getattr(self, hook)({n: v[..., None] for n, v in p.items()},
                                                    t_arr[None, None, :]),
                                (self.n_draws, P, len(t_arr)))
        return _summarise(draws.reshape(self.n_draws, -1), name, interval,
                          pd.MultiIndex.from_product([covariates.index, index]))

    def survival(self, t: Any, interval: float | None = None, *, segment: Any = None,
                 covariates: pd.DataFrame | None = None) -> pd.Series | pd.DataFrame:
        """Posterior mean of S(t) for each t [+ interval] (a fitted segment's with
        ``segment=``; hierarchical without one: a new segment's).

        A model with covariates needs ``covariates`` (a frame with the covariate columns, one
        row per customer profile); the result is then indexed by (profile, ``t``).
        """
        return self._curve("_survival", t, "survival", interval, segment,
                           covariates=covariates)

    def retention_rate(self, t: Any, interval: float | None = None, *, segment: Any = None,
                       covariates: pd.DataFrame | None = None) -> pd.Series | pd.DataFrame:
        """Posterior mean of r(t) = S(t)/S(t-1), t >= 1 [+ interval] (``covariates`` as in
        :meth:`survival`)."""
        return self._curve("_retention", t, "retention_rate", interval, segment, minimum=1,
                           covariates=covariates)

    def churn_probability(self, t: Any, interval: float | None = None, *, segment: Any = None,
                          covariates: pd.DataFrame | None = None) -> pd.Series | pd.DataFrame:
        """Posterior mean of P(T = t), t >= 1 [+ interval] (``covariates`` as in
        :meth:`survival`)."""
        return self._curve("_churn", t, "churn_probability", interval, segment, minimum=1,
                           covariates=covariates)

    def expected_lifetime(self, *, segment: Any = None,
                          covariates: pd.DataFrame | None = None) -> float | np.ndarray:
        """Posterior mean of E[T] (inf when it diverges in some draws); with ``covariates``
        one value per row (profile)."""
        draws = self._expected_lifetime(self._population_params(segment, covariates))
        if covariates is None:
            return float(np.mean(draws))
        return np.broadcast_to(draws, (self.n_draws, len(covariates))).mean(axis=0)

    def discounted_expected_lifetime(self, discount_rate: float, interval: float | None = None,
                                     *, segment: Any = None,
                                     covariates: pd.DataFrame | None = None
                                     ) -> float | np.ndarray | pd.Series | pd.DataFrame:
        """DEL of a new customer at an annual ``discount_rate``: the posterior mean, or
        with ``interval`` a Series (``del``, ``del_lower``, ``del_upper``). With
        ``covariates``: one value (row of the interval frame) per profile."""
        d = period_discount_rate(discount_rate, self.time_unit_)
        p = self._population_params(segment, covariates)
        if covariates is not None:
            draws = np.broadcast_to(self._del(p, d), (self.n_draws, len(covariates)))
            if interval is None:
                return draws.mean(axis=0)
            return _summarise(draws, "del", interval, covariates.index)
        draws = np.asarray(self._del(p, d)).reshape(-1)
        if interval is None:
            return float(draws.mean())
        return _summarise(draws[:, None], "del", interval, [0]).iloc[0]

    # ---- customers ---------------------------------------------------------------------
    def _contract_rows(self, data: pd.DataFrame, unseen: UnseenSegments) -> UniqueRows:
        self._check_fitted()
        return self._rows(data, fitting=False, unseen=unseen)

    def _row_draws(self, rows: UniqueRows, compute: Any) -> np.ndarray:
        """``compute(params (S, rows), periods, churned) -> (S, rows)`` on the unique rows."""
        codes = rows.extra["codes"] if self.hierarchical else None
        p = self._row_params(codes, z=rows.extra.get("z"))
        periods, churned = rows.columns["periods"], rows.columns["churned"]
        return np.broadcast_to(compute(p, periods, churned), (self.n_draws, rows.n_rows))

    def residual_lifetime_draws(self, data: pd.DataFrame, discount_rate: float, *,
                                horizon: float = np.inf,
                                unseen_segments: UnseenSegments = "raise"
                                ) -> tuple[np.ndarray, UniqueRows]:
        """Draws of DERL per unique row ``(S, rows)`` and the rows (``rows.inverse`` maps
        customers to them): what valuation pairs with revenue to get CLV intervals."""
        rows = self._contract_rows(data, unseen_segments)
        d = period_discount_rate(discount_rate, self.time_unit_)
        if math.isinf(horizon):
            draws = self._row_draws(rows, lambda p, n, c: self._derl(p, n, c, d))
        else:
            k = _periods_arg(horizon, "horizon")
            draws = self._row_draws(rows, lambda p, n, c: self._residual(p, n, c, d, k))
        return np.asarray(draws, dtype=float), rows

    def discounted_expected_residual_lifetime(self, data: pd.DataFrame, discount_rate: float,
                                              *, horizon: float = np.inf,
                                              interval: float | None = None,
                                              unseen_segments: UnseenSegments = "raise"
                                              ) -> pd.Series | pd.DataFrame:
        """Posterior mean of each customer's DERL at an annual ``discount_rate`` [+ interval
        columns ``derl_lower``, ``derl_upper``]; 0 for churned customers."""
        draws, rows = self.residual_lifetime_draws(data, discount_rate, horizon=horizon,
                                                   unseen_segments=unseen_segments)
        return rows.expand(_summarise(draws, "derl", interval, pd.RangeIndex(rows.n_rows)))

    def conditional_survival(self, data: pd.DataFrame, t: float, *,
                             unseen_segments: UnseenSegments = "raise") -> pd.Series:
        """Posterior mean of P(each customer pays t more periods); 0 for churned customers."""
        rows = self._contract_rows(data, unseen_segments)
        t_arr = _periods_arg(t)
        draws = self._row_draws(rows, lambda p, n, c: np.where(
            c.astype(bool) & (t_arr > 0), 0.0, self._conditional_survival(p, n, t_arr)))
        return rows.expand(pd.Series(draws.mean(axis=0), name="conditional_survival"))

    def expected_renewals(self, data: pd.DataFrame, t: int, *,
                          unseen_segments: UnseenSegments = "raise") -> pd.Series:
        """Posterior mean of the further periods each customer pays in the next ``t``
        renewal decisions (0 for churned customers)."""
        rows = self._contract_rows(data, unseen_segments)
        k = np.arange(1, int(_periods_arg(t)) + 1, dtype=float)
        codes = rows.extra["codes"] if self.hierarchical else None
        p = self._row_params(codes, extra_axes=1, z=rows.extra.get("z"))
        n = rows.columns["periods"][:, None]
        total = np.zeros((self.n_draws, rows.n_rows))
        if len(k):
            total = np.broadcast_to(self._conditional_survival(p, n, k[None, :]).sum(-1),
                                    total.shape)
        total = np.where(rows.columns["churned"].astype(bool), 0.0, total)
        return rows.expand(pd.Series(total.mean(axis=0), name="expected_renewals"))
