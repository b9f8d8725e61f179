"""Bayesian Gamma-Gamma spend model (Fader, Hardie & Lee 2005; Fader & Hardie 2013) in PyMC.

The likelihood is :func:`clvmodels.models.gammagamma.log_likelihood` (through the hook the
maximum-likelihood :class:`~clvmodels.GammaGamma` uses) on the unique (segment, x, m_x) rows of
the repeat buyers; predictions are :func:`~clvmodels.models.gammagamma.expected_spend` over
posterior draws.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clvmodels._validation import ValidationError
from clvmodels.datakinds import resolve_weights, validate_spend
from clvmodels.models.bayes import BayesianModel
from clvmodels.models.gammagamma import GammaGamma, expected_spend, population_mean_spend
from clvmodels.models.posterior import CustomerDraws, UnseenSegments, check_draws
from clvmodels.models.priors import PriorSpec, lognormal, normal
from clvmodels.rows import UniqueRows, unique_rows

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["BayesianGammaGamma"]


class BayesianGammaGamma(BayesianModel):
    """Gamma-Gamma model of mean transaction value fitted with PyMC, optionally hierarchical.

    Fitted on repeat buyers (``frequency > 0``) from their mean repeat spend
    (``monetary_value``); likelihood Fader & Hardie (2013) eq. (5); ``E[M | x, m_x]`` eq. (6).

    Default priors (weakly informative, overridable, saved with the model)::

        p ~ LogNormal(0, 2)
        q ~ LogNormal(1, 1.5)        # q > 1 is needed for a finite mean spend
        v ~ LogNormal(ln(mean m_x), 2.5)

    v is in money units, so its prior is centred on the observed mean repeat spend (scaled to
    the data, as rstanarm's autoscaled priors are); the resolved numbers are in ``priors_``.

    Covariates (``spend_covariates=[...]``): the MLE twin's link, ``v_i = v exp(g_s'z_i)``,
    so a customer's expected mean spend p v_i / (q - 1) is multiplied by exp(g_s'z_i);
    coefficients ``Normal(0, 1)`` by default (:mod:`clvmodels.models.bayes_covariates`).

    Hierarchical (``segment_col``): on unconstrained scales, per segment s, ``log p_s``, ``log
    (q_s - 1)`` and ``log mu_s`` with ``mu = p v / (q - 1)`` the segment's mean spend per
    transaction (so ``v = mu (q - 1) / p``), each ``~ Normal(mu_u, sigma_u)`` (non-centred or
    partially centred per segment, see ``parametrization``). The mean spend is what the data pin
    down well, and q and v are nearly collinear given it, so pooling on (p, q - 1, mean) keeps
    the posterior close to uncorrelated; ``q > 1`` holds by construction. Hyperpriors:
    ``mu_log_p ~ N(0, 2)``, ``mu_log_qm1 ~ N(0.5, 1.5)``, ``mu_log_mean ~ N(ln mean m_x, 1)``,
    every ``sigma_u ~ HalfNormal(0.5)``. Segments are taken from *all* customers of the fitted
    frame, so a segment without repeat buyers still gets (pooled) parameters.
    """

    param_names = ("p", "q", "v")
    name = "bayes-gammagamma"
    label = "Bayesian Gamma-Gamma"
    data_kind = "spend"
    latents = ("log_p", "log_qm1", "log_mean")
    _mle_class = GammaGamma
    data_columns = ("x", "m")
    observed_column = "m"

    # Fader & Hardie (2013) eq. (5), through the MLE twin's hook
    _loglik = GammaGamma._loglik

    def _rows(self, rfm: pd.DataFrame, *, fitting: bool, unseen: UnseenSegments = "raise",
              repeat_only: bool = True, weights: Any = None) -> UniqueRows:
        validate_spend(rfm)
        w = resolve_weights(rfm, weights) if fitting else None
        codes = self._segment_codes(rfm, fitting=fitting, unseen=unseen)
        x = rfm["frequency"].to_numpy(float)
        mx = np.where(x > 0, rfm["monetary_value"].to_numpy(float), 0.0)
        use = x > 0 if repeat_only else np.ones(len(x), dtype=bool)
        n_use = int(use.sum()) if w is None else int(w[use].sum())
        if fitting and n_use < 2:
            raise ValidationError(
                "column 'frequency': the Gamma-Gamma model needs at least 2 repeat buyers "
                f"(frequency > 0); found {n_use}"
            )
        z = self._design_for(rfm, fitting=fitting)
        q = 0 if z is None else z.shape[1]
        uniq, inv, counts = unique_rows([codes[use].astype(float),
                                         *(z[use, j] for j in range(q)), x[use], mx[use]])
        ucodes, ux, um = uniq[0], uniq[-2], uniq[-1]
        if w is not None:
            counts = np.bincount(inv, weights=w[use], minlength=len(ux)).astype(np.int64)
            self._fit_weights = w
        inverse = np.full(len(x), -1, dtype=np.int64)
        inverse[use] = inv
        columns = {"x": ux, "m": um}
        if self.hierarchical:
            columns["segment"] = ucodes
        out = UniqueRows(columns, counts.astype(np.int64), inverse, rfm.index,
                   rfm.attrs.get("time_unit"))
        out.extra["codes"] = ucodes.astype(np.int64)
        if z is not None:
            self._set_row_design(out, np.column_stack(uniq[1:1 + q]) if q
                                 else np.zeros((len(ux), 0)))
        if fitting:
            out.extra["mean_spend"] = float(np.average(um, weights=counts))
        return out

    def _default_priors(self, rows: UniqueRows | None) -> dict[str, PriorSpec]:
        scale = math.log(rows.extra["mean_spend"]) if rows is not None else 0.0
        return {"p": lognormal(0.0, 2.0), "q": lognormal(1.0, 1.5),
                "v": lognormal(scale, 2.5)}

    _sigma_scale = 0.5

    def _default_mu_priors(self, rows: UniqueRows | None) -> dict[str, PriorSpec]:
        scale = math.log(rows.extra["mean_spend"]) if rows is not None else 0.0
        return {"log_p": normal(0.0, 2.0), "log_qm1": normal(0.5, 1.5),
                "log_mean": normal(scale, 1.0)}

    @staticmethod
    def _latent_from_natural(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pp, q, v = (np.asarray(p[k], dtype=float) for k in ("p", "q", "v"))
        with np.errstate(invalid="ignore", divide="ignore"):  # q <= 1: no mean, NaN
            return {"log_p": np.log(pp), "log_qm1": np.log(q - 1.0),
                    "log_mean": np.log(pp * v / (q - 1.0))}

    @staticmethod
    def _natural_from_latent(u: dict[str, Any], xp: Any) -> dict[str, Any]:
        """p = e^{log p}, q = 1 + e^{log(q-1)}, v = mean (q - 1) / p."""
        p = xp.exp(u["log_p"])
        qm1 = xp.exp(u["log_qm1"])
        return {"p": p, "q": 1.0 + qm1, "v": xp.exp(u["log_mean"]) * qm1 / p}

    def fit(self, rfm: pd.DataFrame, **kwargs: Any) -> BayesianGammaGamma:
        """Sample the posterior (see :meth:`BayesianModel.fit`); warns, like the MLE model,
        when frequency and mean spend look correlated (|Pearson| > 0.3)."""
        super().fit(rfm, **kwargs)
        corr = GammaGamma.frequency_spend_correlation(rfm)
        self.frequency_spend_correlation_ = corr
        if np.isfinite(corr["pearson"]) and abs(corr["pearson"]) > 0.3:
            warnings.warn(
                f"frequency and mean spend are correlated (Pearson {corr['pearson']:.2f}); "
                "the Gamma-Gamma model assumes they are independent, so its spend forecasts "
                "may be biased", UserWarning, stacklevel=2)
        return self

    # ---- predictions -----------------------------------------------------------------
    def _spend_rows(self, rows: UniqueRows, sl: slice) -> np.ndarray:
        codes = rows.extra["codes"][sl] if self.hierarchical else None
        p = self._row_params(codes, z=rows.extra["z"][sl] if "z" in rows.extra else None)
        x, mx = rows.columns["x"][sl], rows.columns["m"][sl]
        out = expected_spend(p["p"], p["q"], p["v"], x, mx)
        return np.broadcast_to(out, (self.n_draws, sl.stop - sl.start))

    def spend_draws_by_customer(self, rfm: pd.DataFrame, *, draws: np.ndarray | None = None,
                                unseen_segments: UnseenSegments = "raise") -> CustomerDraws:
        """Draws of E[M | x, m_x] (FH 2013 eq. 6) for any customers of ``rfm``, on demand.

        Returns a :class:`~clvmodels.models.posterior.CustomerDraws`: ``take(customers)``
        evaluates the selected posterior ``draws`` (indices; all by default) for the
        customers at those positions of ``rfm`` only, shape ``(S, len(customers))`` — what
        valuation pairs, draw by draw, with a transaction model's draws without holding
        draws × customers at once. Customers with frequency 0 get the population mean
        p v / (q - 1) per draw.
        """
        self._check_fitted()
        validate_spend(rfm)
        codes = self._segment_codes(rfm, fitting=False, unseen=unseen_segments)
        x = rfm["frequency"].to_numpy(float)
        mx = np.where(x > 0, rfm["monetary_value"].to_numpy(float), 0.0)
        draws = check_draws(draws, self.n_draws)
        z = self._design_for(rfm, fitting=False)

        def compute(customers: np.ndarray) -> np.ndarray:
            p = self._row_params(codes[customers] if self.hierarchical else None,
                                 draws=draws, z=None if z is None else z[customers])
            return expected_spend(p["p"], p["q"], p["v"], x[customers], mx[customers])

        return CustomerDraws(compute, self.n_draws if draws is None else len(draws), len(x))

    def expected_spend(self, rfm: pd.DataFrame, interval: float | None = None, *,
                       unseen_segments: UnseenSegments = "raise") -> pd.Series | pd.DataFrame:
        """Posterior mean of E[mean transaction value | frequency, monetary_value] [+ interval].

        Customers with frequency 0 get the population mean p v / (q - 1) (per draw).
        """
        self._check_fitted()
        rows = self._rows(rfm, fitting=False, unseen=unseen_segments, repeat_only=False)
        res = self._reduce(lambda sl: self._spend_rows(rows, sl), rows.n_rows,
                           "expected_spend", interval, pd.RangeIndex(rows.n_rows))
        return rows.expand(res)

    def expected_spend_draws(self, rfm: pd.DataFrame, *,
                             unseen_segments: UnseenSegments = "raise") -> xr.DataArray:
        """Every posterior draw of the expected spend: DataArray (chain, draw, customer_id)."""
        self._check_fitted()
        rows = self._rows(rfm, fitting=False, unseen=unseen_segments, repeat_only=False)
        unique = self._draws_array(lambda sl: self._spend_rows(rows, sl), rows.n_rows,
                                   pd.RangeIndex(rows.n_rows), "expected_spend")
        return unique.isel(customer_id=rows.inverse).assign_coords(
            customer_id=rows.index.to_numpy())

    def population_mean_spend(self, interval: float | None = None, *, segment: Any = None,
                              covariates: pd.DataFrame | None = None
                              ) -> float | np.ndarray | pd.Series | pd.DataFrame:
        """Posterior mean of p v / (q - 1) [with ``interval``: a Series mean/lower/upper].

        Hierarchical: ``segment`` picks a segment; ``None`` is the population level (a new
        segment drawn from the hyperdistribution). A model with covariates needs
        ``covariates`` (one row per customer profile): each profile's p v_i / (q - 1),
        v_i = v exp(g_s'z_i) (links equation (1)) — an array, or with ``interval`` a frame
        indexed like ``covariates``.
        """
        self._check_fitted()
        if covariates is not None and getattr(self, "covariate_layout_", None) is None:
            raise ValueError(f"{type(self).__name__} has no covariates: covariates= does not "
                             "apply")
        d = (self._segment_draws(segment) if covariates is None  # a covariate model refuses
             else self._profile_params(segment, covariates))
        vals = population_mean_spend(d["p"], d["q"], d["v"])
        q = (1 - (interval or 0.5)) / 2
        if covariates is not None:
            vals = np.broadcast_to(vals, (self.n_draws, len(covariates)))
            if interval is None:
                return vals.mean(axis=0)
            lo, hi = np.quantile(vals, [q, 1 - q], axis=0)
            return pd.DataFrame({"population_mean_spend": vals.mean(axis=0), "lower": lo,
                                 "upper": hi}, index=covariates.index)
        if interval is None:
            return float(np.mean(vals))
        lo, hi = np.quantile(vals, [q, 1 - q])
        return pd.Series({"population_mean_spend": float(np.mean(vals)),
                          "lower": float(lo), "upper": float(hi)})
