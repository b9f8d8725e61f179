"""Gamma-Gamma spend model: Fader, Hardie & Lee (2005, JMR 42(4)); Fader & Hardie (2013),
"The Gamma-Gamma model of monetary value".

Each repeat transaction's value is Gamma(p, nu) around a customer's mean p/nu, and
nu ~ Gamma(q, v) across customers. Fitted on repeat buyers (x > 0) from their mean repeat
spend m_x. The model assumes spend is independent of purchase frequency: check it with
:meth:`GammaGamma.frequency_spend_correlation`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from clvmodels._validation import ValidationError
from clvmodels.datakinds import validate_spend
from clvmodels.models._math import NP
from clvmodels.models.links import declare_links
from clvmodels.models.mle import MLEModel
from clvmodels.rows import UniqueRows
from clvmodels.simulate import simulate_gammagamma

__all__ = ["GammaGamma", "expected_spend", "log_likelihood", "population_mean_spend"]


def log_likelihood(p: Any, q: Any, v: Any, x: Any, mx: Any, m: Any = NP) -> Any:
    """Per-customer log-likelihood of the mean repeat spend (Fader & Hardie 2013, eq. 5).

    LL = lnG(px+q) - lnG(px) - lnG(q) + q ln v + (px-1) ln m_x + px ln x - (px+q) ln(v + m_x x)
    """
    px = p * x
    return (m.gammaln(px + q) - m.gammaln(px) - m.gammaln(q) + q * m.log(v)
            + (px - 1.0) * m.log(mx) + px * m.log(x) - (px + q) * m.log(v + mx * x))


def log_likelihood_grad(p: float, q: float, v: float, x: np.ndarray, mx: np.ndarray
                        ) -> np.ndarray:
    """Analytic gradient of :func:`log_likelihood` w.r.t. (p, q, v), shape (3, n)."""
    psi = special.digamma
    px = p * x
    lvm = np.log(v + mx * x)
    d_p = x * (psi(px + q) - psi(px) + np.log(mx) + np.log(x) - lvm)
    d_q = psi(px + q) - psi(q) + np.log(v) - lvm
    d_v = q / v - (px + q) / (v + mx * x)
    return np.vstack([d_p, d_q, d_v])


def expected_spend(p: Any, q: Any, v: Any, x: Any, mx: Any) -> np.ndarray:
    """E[M | x, m_x] = (v + m_x x) p / (p x + q - 1) (Fader & Hardie 2013, eq. 6).

    A weighted average of the population mean p v / (q - 1) and the customer's own mean m_x,
    with weight on m_x growing with x; x = 0 gives the population mean. Needs q > 1.
    """
    x = np.asarray(x, dtype=float)
    mx = np.where(x > 0, np.asarray(mx, dtype=float), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (v + mx * x) * p / (p * x + q - 1.0)
    return np.where(np.asarray(q) > 1.0, out, np.inf)


def population_mean_spend(p: Any, q: Any, v: Any) -> np.ndarray:
    """Mean spend per transaction in the population, p v / (q - 1) (infinite when q <= 1)."""
    with np.errstate(divide="ignore"):
        return np.where(np.asarray(q) > 1.0, p * v / (np.asarray(q) - 1.0), np.inf)


class GammaGamma(MLEModel):
    """Gamma-Gamma model of mean transaction value, fitted by maximum likelihood.

    ``fit(rfm)`` uses the customers with ``frequency > 0`` and their ``monetary_value`` (mean
    repeat spend). Parameters ``p, q, v``; ``q`` must exceed 1 for the mean to exist.
    """

    param_names = ("p", "q", "v")
    #: v_i = v exp(g_s'z): the expected spend p v_i / (q - 1) is multiplied by exp(g_s'z)
    covariate_links = declare_links(spend=(("v", 1.0),))
    name = "gammagamma"
    label = "Gamma-Gamma"
    data_kind = "spend"
    citation = ("Fader, Hardie & Lee (2005), RFM and CLV: using iso-value curves, JMR 42(4); "
                "Fader & Hardie (2013), The Gamma-Gamma model of monetary value")
    uses_monetary = True
    simulator = staticmethod(simulate_gammagamma)

    def _loglik(self, p: dict[str, Any], d: UniqueRows, m: Any = NP) -> Any:
        return log_likelihood(p["p"], p["q"], p["v"], d.x, d.m, m=m)

    def _loglik_grad(self, p: dict[str, Any], d: UniqueRows) -> np.ndarray:
        return log_likelihood_grad(p["p"], p["q"], p["v"], d.x, d.m)

    def _initial_params(self, d: UniqueRows) -> np.ndarray:
        mean_spend = float(np.average(d.m, weights=d.w))
        return np.array([1.0, 2.0, max(mean_spend, 1e-6)])

    def _fit_data(self, data: pd.DataFrame, weights: str | np.ndarray | None = None,
                  extra_codes: dict[str, np.ndarray] | None = None) -> UniqueRows:
        d = self._data_rows(data, weights=weights, extra_codes=extra_codes)
        if d.n_customers < 2:
            raise ValidationError(
                "column 'frequency': the Gamma-Gamma model needs at least 2 repeat buyers "
                f"(frequency > 0); found {d.n_customers}"
            )
        return d

    def _data_summary(self, rfm: pd.DataFrame, d: UniqueRows) -> dict[str, Any]:
        corr = self.frequency_spend_correlation(rfm)
        return {
            "n_customers": int(d.n_customers),
            "n_unique_rows": d.n_rows,
            "observed_mean_spend": float(np.average(d.m, weights=d.w)),
            "pearson_frequency_spend": corr["pearson"],
            "spearman_frequency_spend": corr["spearman"],
        }

    def fit(self, rfm: pd.DataFrame, **kwargs: Any) -> GammaGamma:
        """Fit on repeat buyers; warns if frequency and spend look correlated (|r| > 0.3)."""
        super().fit(rfm, **kwargs)
        corr = self.data_summary_["pearson_frequency_spend"]
        if np.isfinite(corr) and abs(corr) > 0.3:
            warnings.warn(
                f"frequency and mean spend are correlated (Pearson {corr:.2f}); the "
                "Gamma-Gamma model assumes they are independent, so its spend forecasts may "
                "be biased",
                UserWarning,
                stacklevel=2,
            )
        if self.params_["q"] <= 1:
            warnings.warn("fitted q <= 1: the population mean spend is infinite",
                          UserWarning, stacklevel=2)
        return self

    @staticmethod
    def frequency_spend_correlation(rfm: pd.DataFrame) -> dict[str, float]:
        """Correlation of frequency and mean repeat spend among repeat buyers.

        The Gamma-Gamma model assumes none; values far from 0 mean its forecasts may be
        biased. Returns Pearson and Spearman coefficients and the number of customers used.
        """
        validate_spend(rfm)
        rep = rfm.loc[rfm["frequency"] > 0]
        if len(rep) < 3:
            return {"pearson": float("nan"), "spearman": float("nan"), "n": len(rep)}
        x = rep["frequency"].to_numpy(float)
        mx = rep["monetary_value"].to_numpy(float)
        if np.ptp(x) == 0 or np.ptp(mx) == 0:
            return {"pearson": float("nan"), "spearman": float("nan"), "n": len(rep)}
        return {
            "pearson": float(np.corrcoef(x, mx)[0, 1]),
            "spearman": float(stats.spearmanr(x, mx).statistic),
            "n": len(rep),
        }

    def expected_spend(self, rfm: pd.DataFrame) -> pd.Series:
        """E[mean transaction value | frequency, monetary_value] per customer.

        Customers with frequency 0 get the population mean p v / (q - 1).
        """
        self._check_fitted()
        validate_spend(rfm)
        p = self._p(rfm)
        out = expected_spend(p["p"], p["q"], p["v"], rfm["frequency"].to_numpy(float),
                             rfm["monetary_value"].to_numpy(float))
        return pd.Series(out, index=rfm.index, name="expected_spend")

    def population_mean_spend(self, *, covariates: pd.DataFrame | None = None
                              ) -> float | np.ndarray:
        """p v / (q - 1): the mean spend per transaction across the population.

        A model with covariates needs ``covariates`` (one row per customer profile): each
        profile's p v_i / (q - 1), v_i = v exp(g_s'z_i) (links equation (1)), one per row.
        """
        p = self._p(covariates)
        out = population_mean_spend(p["p"], p["q"], p["v"])
        return float(out) if np.ndim(out) == 0 else np.asarray(out, dtype=float)
