"""The likelihood-ratio test between nested maximum-likelihood fits (as CLVTools offers).

Under the null hypothesis that the restricted model is true, 2 (LL_full - LL_restricted) is
asymptotically chi-square with as many degrees of freedom as the full model has extra
parameters (Wilks 1938). Typical use: does adding covariates improve a fit?

    >>> plain = ParetoNBD().fit(rfm)                                       # doctest: +SKIP
    >>> full = ParetoNBD(purchase_covariates=["channel"]).fit(rfm)         # doctest: +SKIP
    >>> lr_test(plain, full)                                               # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["LRTestResult", "lr_test"]


@dataclass(frozen=True)
class LRTestResult:
    """Result of :func:`lr_test`."""

    statistic: float
    df: int
    p_value: float
    log_likelihood_restricted: float
    log_likelihood_full: float
    extra_parameters: tuple[str, ...]

    def to_frame(self) -> pd.DataFrame:
        """One-row table (what the report and the CLI print)."""
        return pd.DataFrame({"LL restricted": [self.log_likelihood_restricted],
                             "LL full": [self.log_likelihood_full],
                             "LR statistic": [self.statistic], "df": [self.df],
                             "p-value": [self.p_value]})

    def __str__(self) -> str:
        return (f"Likelihood-ratio test: LR = {self.statistic:.4f} on {self.df} df, "
                f"p = {self.p_value:.4g} (extra: {', '.join(self.extra_parameters)})")


#: summary figures that depend on the data alone (not on the model's covariates or rows)
_DATA_FIGURES = ("n_customers", "total_repeat_transactions", "share_zero_repeat", "mean_T",
                 "share_churned", "mean_periods", "observed_mean_spend")


def _check_same_data(restricted: object, full: object) -> None:
    """Refuse fits on different data: the customer count and every data-only summary figure
    both fits recorded (total repeat purchases, mean T, share churned ...) must agree."""
    n_r, n_f = restricted.n_customers_, full.n_customers_  # type: ignore[attr-defined]
    if n_r != n_f:
        raise ValueError(f"the models were fitted on different data ({n_r:,} and {n_f:,} "
                         "customers)")
    s_r = getattr(restricted, "data_summary_", None) or {}
    s_f = getattr(full, "data_summary_", None) or {}
    for key in _DATA_FIGURES:
        a, b = s_r.get(key), s_f.get(key)
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            continue
        if not np.isclose(float(a), float(b), rtol=1e-9, atol=1e-12):
            raise ValueError(f"the models were fitted on different data: the same number of "
                             f"customers ({n_r:,}) but {key} = {a:.6g} (restricted) and "
                             f"{b:.6g} (full)")


def lr_test(restricted: object, full: object) -> LRTestResult:
    """Likelihood-ratio test of ``restricted`` against ``full``, two fits of one family by
    maximum likelihood on the same customers, ``full`` with every parameter of
    ``restricted`` and more (e.g. covariates added).

    Returns the statistic 2 (LL_full - LL_restricted), its degrees of freedom and the
    chi-square p-value. Refuses models of different families or data, non-nested parameter
    sets, unfitted or Bayesian models and fits that did not converge.
    """
    for name, model in (("restricted", restricted), ("full", full)):
        if getattr(model, "bayesian", False):
            raise ValueError(f"lr_test compares maximum-likelihood fits; the {name} model is "
                             "Bayesian (compare Bayesian models with loo())")
        if not hasattr(model, "params_") or not hasattr(model, "log_likelihood_"):
            raise ValueError(f"the {name} model is not fitted")
        if not np.isfinite(model.log_likelihood_):  # type: ignore[attr-defined]
            raise ValueError(f"the {name} model has no log-likelihood (built from_params?)")
        if not getattr(model, "converged_", True):
            raise ValueError(f"the {name} model did not converge: "
                             f"{getattr(model, 'convergence_reason_', '')}")
    if type(restricted) is not type(full):
        raise ValueError(f"lr_test needs two fits of one family, got "
                         f"{type(restricted).__name__} and {type(full).__name__}")
    r_names = list(restricted.params_.index)  # type: ignore[attr-defined]
    f_names = list(full.params_.index)  # type: ignore[attr-defined]
    if not set(r_names) < set(f_names):
        raise ValueError("the models are not nested: the full model must have every parameter "
                         f"of the restricted one and more (restricted: {r_names}; full: "
                         f"{f_names})")
    _check_same_data(restricted, full)
    ll_r = float(restricted.log_likelihood_)  # type: ignore[attr-defined]
    ll_f = float(full.log_likelihood_)  # type: ignore[attr-defined]
    stat = 2.0 * (ll_f - ll_r)
    if stat < -1e-6 * max(1.0, abs(ll_r)):
        raise ValueError(f"the full model's log-likelihood ({ll_f:.4f}) is below the "
                         f"restricted one's ({ll_r:.4f}): the fits are not nested on the same "
                         "data, or the full fit stopped early")
    stat = max(stat, 0.0)
    extra = tuple(n for n in f_names if n not in r_names)
    df = len(extra)
    return LRTestResult(statistic=stat, df=df, p_value=float(stats.chi2.sf(stat, df)),
                        log_likelihood_restricted=ll_r, log_likelihood_full=ll_f,
                        extra_parameters=extra)
