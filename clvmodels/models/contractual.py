"""The public predictions of a contractual (subscription) model fitted by maximum likelihood.

:class:`ContractualModel` implements :class:`clvmodels.models.protocol.ContractualPredictor`
for point estimates: survival and retention curves of a new customer, the expected remaining
periods of each active customer, and their discounted values (DEL, DERL) — all through a few
hooks that a family module points at its broadcasting functions (``sbg.py``). The data are one
row per customer with ``periods`` (periods paid: the first plus renewals) and ``churned``.

Discount rates are **annual**, as everywhere in the package; a period's rate follows from the
model's time unit (the period length): ``(1 + d)^(period in years) - 1``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from clvmodels._summary_rules import TIME_UNITS

__all__ = ["ContractualModel", "period_discount_rate"]


def period_discount_rate(discount_rate: float, time_unit: str | None) -> float:
    """The discount rate per period of length ``time_unit`` for an annual rate d."""
    if not (isinstance(discount_rate, int | float) and discount_rate > -1):
        raise ValueError(f"discount_rate must be an annual rate > -1, got {discount_rate!r}")
    if time_unit is None:
        raise ValueError(
            "the model's period length (time unit) is unknown, so an annual discount rate "
            "cannot be converted to a rate per period: fit on contract_summary() output "
            "(it records the period), set data.attrs['time_unit'], or pass time_unit= to "
            "from_params")
    if time_unit not in TIME_UNITS:
        raise ValueError(f"unknown time unit {time_unit!r}; use one of {list(TIME_UNITS)}")
    years = TIME_UNITS[time_unit] / TIME_UNITS["Y"]
    return math.expm1(years * math.log1p(float(discount_rate)))


def _periods_arg(t: Any, name: str = "t") -> np.ndarray:
    arr = np.asarray(t, dtype=float)
    if np.any(~np.isfinite(arr)) or np.any(arr < 0) or np.any(arr != np.round(arr)):
        raise ValueError(f"{name} must be whole numbers of periods >= 0, got {t!r}")
    return arr


def _scalar(out: Any) -> Any:
    return float(out) if np.ndim(out) == 0 else np.asarray(out)


class ContractualModel:
    """Predictions of a contractual model (MLE), over the family's hooks.

    A family supplies ``_survival(p, t)``, ``_retention(p, t)``, ``_churn(p, t)``,
    ``_expected_lifetime(p)``, ``_del(p, d)``, ``_derl(p, periods, churned, d)``,
    ``_residual(p, periods, churned, d, horizon)`` and ``_conditional_survival(p, periods,
    t)``, where ``p`` is a dict of parameters and ``d`` a rate per period.
    """

    def survival(self, t: float | np.ndarray, *, covariates: pd.DataFrame | None = None
                 ) -> float | np.ndarray:
        """S(t): share of a new cohort still paying after t renewal decisions (S(0) = 1).

        A model with covariates needs ``covariates`` (a frame with the covariate columns, one
        row per customer profile): the result then has one row per profile, shape
        ``(len(covariates), *t.shape)`` (each profile's own parameters, links equation (1)).
        """
        t_arr = _periods_arg(t)
        return _scalar(self._survival(self._p(covariates, extra_axes=t_arr.ndim), t_arr))

    def retention_rate(self, t: float | np.ndarray, *,
                       covariates: pd.DataFrame | None = None) -> float | np.ndarray:
        """r(t) = S(t) / S(t - 1), t >= 1: the share of period t-1's customers who renew
        (with covariates: one row per profile, as :meth:`survival`)."""
        t_arr = _periods_arg(t)
        if np.any(t_arr < 1):
            raise ValueError("retention_rate needs t >= 1")
        return _scalar(self._retention(self._p(covariates, extra_axes=t_arr.ndim), t_arr))

    def churn_probability(self, t: float | np.ndarray, *,
                          covariates: pd.DataFrame | None = None) -> float | np.ndarray:
        """P(T = t): the probability that a new customer pays exactly t periods (t >= 1)
        (with covariates: one row per profile, as :meth:`survival`)."""
        t_arr = _periods_arg(t)
        if np.any(t_arr < 1):
            raise ValueError("churn_probability needs t >= 1")
        return _scalar(self._churn(self._p(covariates, extra_axes=t_arr.ndim), t_arr))

    def expected_lifetime(self, *, covariates: pd.DataFrame | None = None
                          ) -> float | np.ndarray:
        """E[T], the expected number of periods a new customer pays (inf when it diverges);
        with covariates one value per row of ``covariates`` (each profile's parameters)."""
        return _scalar(self._expected_lifetime(self._p(covariates)))

    def discounted_expected_lifetime(self, discount_rate: float, *,
                                     covariates: pd.DataFrame | None = None
                                     ) -> float | np.ndarray:
        """DEL: discounted expected payments of a new customer at acquisition (annual rate);
        with covariates one value per row of ``covariates`` (each profile's parameters)."""
        d = period_discount_rate(discount_rate, self._unit())
        return _scalar(self._del(self._p(covariates), d))

    def discounted_expected_residual_lifetime(self, data: pd.DataFrame, discount_rate: float,
                                              *, horizon: float = np.inf) -> pd.Series:
        """DERL per customer: discounted expected future payments, valued at the next renewal
        decision (that payment, if made, undiscounted); 0 for churned customers.

        ``discount_rate`` is annual; ``horizon`` (periods) limits the future payments counted
        (np.inf: all of them, the closed form).
        """
        periods, churned, index = self._arrays(data)
        d = period_discount_rate(discount_rate, self._unit())
        p = self._p(data)
        if math.isinf(horizon):
            out = self._derl(p, periods, churned, d)
        else:
            out = self._residual(p, periods, churned, d, _periods_arg(horizon, "horizon"))
        return pd.Series(np.asarray(out, dtype=float), index=index, name="derl")

    def conditional_survival(self, data: pd.DataFrame, t: float) -> pd.Series:
        """P(each customer pays t more periods): for an active customer who has paid n
        periods, S(n + t - 1) / S(n - 1) under the posterior of their churn probability; 0
        for churned customers (t >= 1)."""
        periods, churned, index = self._arrays(data)
        t_arr = _periods_arg(t)
        out = self._conditional_survival(self._p(data), periods, t_arr)
        out = np.where(churned.astype(bool) & (t_arr > 0), 0.0, out)
        return pd.Series(np.asarray(out, dtype=float), index=index, name="conditional_survival")

    def expected_renewals(self, data: pd.DataFrame, t: int) -> pd.Series:
        """Expected further periods each customer pays in the next ``t`` renewal decisions
        (0 for churned customers): what a holdout of later renewal periods is scored on."""
        periods, churned, index = self._arrays(data)
        k = np.arange(1, int(_periods_arg(t)) + 1, dtype=float)
        out = np.zeros(len(periods))
        if len(k):
            p = self._p(data, extra_axes=1)
            step = max(1, 4_000_000 // len(k))
            for i in range(0, len(periods), step):
                sl = slice(i, i + step)
                p_sl = {n: (v[sl] if np.ndim(v) else v) for n, v in p.items()}
                out[sl] = self._conditional_survival(p_sl, periods[sl, None],
                                                     k[None, :]).sum(1)
        out = np.where(churned.astype(bool), 0.0, out)
        return pd.Series(out, index=index, name="expected_renewals")

    def _unit(self) -> str | None:
        self._check_fitted()
        return getattr(self, "time_unit_", None)
