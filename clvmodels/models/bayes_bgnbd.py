"""Bayesian BG/NBD (Fader, Hardie & Lee 2005) in PyMC, optionally hierarchical over segments.

The likelihood and every prediction are the BG/NBD functions of :mod:`clvmodels.models.bgnbd`
(reached through the same hooks the maximum-likelihood :class:`~clvmodels.BetaGeo` uses),
evaluated over posterior draws; the sampling, summaries, predictions, LOO and persistence
are :mod:`clvmodels.models.bayes`'s and :mod:`clvmodels.models.posterior`'s.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from clvmodels.models.bayes import BayesianTransactionModel
from clvmodels.models.bgnbd import BetaGeo, _BGFamily
from clvmodels.models.mbgnbd import ModifiedBetaGeo
from clvmodels.models.posterior import HEAVY_CELLS
from clvmodels.models.priors import PriorSpec, lognormal, normal
from clvmodels.rfm import TIME_UNITS
from clvmodels.rows import UniqueRows, unique_rows

__all__ = ["BayesianBetaGeo", "BayesianModifiedBetaGeo"]


def _month_in(unit: str | None) -> float:
    """One average month expressed in ``unit`` (1 when the unit is unknown)."""
    if unit is None or unit not in TIME_UNITS:
        return 1.0
    return TIME_UNITS["M"] / TIME_UNITS[unit]


class BayesianBetaGeo(BayesianTransactionModel):
    """BG/NBD model fitted with PyMC (NUTS), optionally hierarchical across segments.

    Parameters ``r, alpha`` (purchase rate lambda ~ Gamma(r, alpha), alpha in the data's time
    unit) and ``a, b`` (drop-out probability p ~ Beta(a, b)); likelihood FHL (2005) eq. (6).

    Default priors (weakly informative, overridable with ``priors=``, saved with the model)::

        r     ~ LogNormal(0, 2)                  # 95%: 0.02 .. 50
        alpha ~ LogNormal(ln(1 month in unit), 2.5)
        a     ~ LogNormal(0, 2)
        b     ~ LogNormal(0, 2)

    alpha's prior is centred on one month in the model's time unit (alpha / r is the mean
    time between purchases for a typical customer), so the default means the same in days,
    weeks or months.

    Hierarchical (``segment_col``): per segment s, on unconstrained scales, ``log r_s``, ``log
    rate_s`` with ``rate = r / alpha`` (the mean purchase rate while alive), ``logit phi_s``
    with ``phi = a / (a + b)`` (mean drop-out probability) and ``log kappa_s`` with ``kappa = a
    + b`` (its concentration), each ``u_s ~ Normal(mu_u, sigma_u)`` — sampled non-centred, ``u_s
    = mu_u + sigma_u z_{u,s}``, where a segment's data are weak and (partially) centred where
    they are strong: see ``parametrization`` in :class:`~clvmodels.models.bayes.BayesianModel`.
    The data pin down the mean rate far better than r and alpha separately, so pooling ``log(r /
    alpha)`` instead of ``log alpha`` removes the strong r-alpha posterior correlation (and
    with it most of the sampler's leapfrog steps). Default hyperpriors: ``mu_log_r ~ N(0,
    2)``, ``mu_log_rate ~ N(-ln month, 2.5)``, ``mu_logit_phi ~ N(0, 1.5)``, ``mu_log_kappa ~
    N(1, 1.5)``, every ``sigma_u ~ HalfNormal(1)``. ``params_`` then holds the typical
    segment's parameters (latents at their means) and ``segment_params_`` each segment's.

    Covariates (``purchase_covariates``, ``dropout_covariates``; with or without segments):
    the MLE twin's links (CLVTools'), ``alpha_i = alpha exp(-g_p'z_i)``,
    ``a_i = a exp(g_d'z_i)``, ``b_i = b exp(g_d'z_i)``; each coefficient ``~ Normal(0, 1)``
    by default (:mod:`clvmodels.models.bayes_covariates`); ``params_`` ends with their
    posterior means (``purchase:channel[web]``).

    Examples
    --------
    >>> model = BayesianBetaGeo().fit(rfm, chains=2)                  # doctest: +SKIP
    >>> model.expected_purchases(rfm, t=52, interval=0.9)             # doctest: +SKIP
    >>> BayesianBetaGeo(segment_col="cohort").fit(rfm).segment_params_  # doctest: +SKIP
    """

    param_names = ("r", "alpha", "a", "b")
    name = "bayes-bgnbd"
    label = "Bayesian BG/NBD"
    data_kind = "continuous"
    latents = ("log_r", "log_rate", "logit_phi", "log_kappa")
    _modified = False
    _mle_class = BetaGeo

    # the BG/NBD math, through the MLE twin's hooks (bgnbd.log_likelihood, eqs. 6-11)
    _loglik = _BGFamily._loglik
    _probability_alive = _BGFamily._probability_alive
    _expected_purchases = _BGFamily._expected_purchases
    _expected_new = _BGFamily._expected_new
    _pmf = _BGFamily._pmf
    _conditional_pmf = _BGFamily._conditional_pmf

    def _fused_total(self, params: dict[str, Any], rows: UniqueRows, inputs: Any) -> Any:
        """FHL (2005) eq. (6) summed over the rows as one compiled node, with one parameter
        set per segment when hierarchical (:mod:`clvmodels.models.bg_fused`): a fraction of
        the factored graph to compile."""
        import pymc as pm

        from clvmodels.models.bg_fused import fused_total

        return fused_total(params, rows.columns, rows.weights, inputs,
                           modified=self._modified,
                           segment=rows.extra["codes"] if self.hierarchical else None,
                           priors=self.priors_, model=pm.modelcontext(None))

    def _default_priors(self, rows: UniqueRows | None) -> dict[str, PriorSpec]:
        month = _month_in(rows.time_unit if rows is not None else None)
        return {"r": lognormal(0.0, 2.0), "alpha": lognormal(math.log(month), 2.5),
                "a": lognormal(0.0, 2.0), "b": lognormal(0.0, 2.0)}

    def _default_mu_priors(self, rows: UniqueRows | None) -> dict[str, PriorSpec]:
        month = _month_in(rows.time_unit if rows is not None else None)
        return {"log_r": normal(0.0, 2.0), "log_rate": normal(-math.log(month), 2.5),
                "logit_phi": normal(0.0, 1.5), "log_kappa": normal(1.0, 1.5)}

    @staticmethod
    def _natural_from_latent(u: dict[str, Any], xp: Any) -> dict[str, Any]:
        """r = e^{log r}, alpha = r e^{-log rate}, a = phi kappa, b = (1 - phi) kappa."""
        phi = xp.sigmoid(u["logit_phi"])
        kappa = xp.exp(u["log_kappa"])
        r = xp.exp(u["log_r"])
        return {"r": r, "alpha": r * xp.exp(-u["log_rate"]),
                "a": phi * kappa, "b": (1.0 - phi) * kappa}

    @staticmethod
    def _latent_from_natural(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        r, alpha, a, b = (np.asarray(p[k], dtype=float) for k in ("r", "alpha", "a", "b"))
        return {"log_r": np.log(r), "log_rate": np.log(r) - np.log(alpha),
                "logit_phi": np.log(a) - np.log(b), "log_kappa": np.log(a + b)}

    def _purchases_rows(self, rows: UniqueRows, sl: slice, times: np.ndarray,
                        coef: np.ndarray | None = None) -> np.ndarray:
        """Cumulative E[Y(t) | x, t_x, T] at ``times`` for a chunk of rows: (S, chunk, k).

        With ``coef`` (k,), the reductions valuation needs instead, stacked on a last axis
        of 2: ``sum_k coef_k E[Y(t_k)]`` and ``E[Y(t_k)]`` at the last time, (S, chunk, 2) —
        taken per distinct (segment, x, T) before the rows are expanded, so the
        (S, chunk, k) array is never formed.

        FHL (2005) eq. (10) is a product C(x, T, t) · P(alive | x, t_x, T) whose first factor
        does not involve t_x. The costly factor (a 2F1 per draw and horizon) is therefore
        evaluated once per distinct (segment, covariate pattern, x, T) — as E[Y | x, t_x = T, T] /
        P(alive | x, t_x = T, T), both from the module's own functions, with P(alive) there
        bounded away from 0 — and multiplied by each row's P(alive). UniqueRows are sorted by
        (segment, x, T, t_x), so a chunk holds few distinct (segment, x, T).
        """
        c = rows.columns
        x, tx, T = c["x"][sl], c["tx"][sl], c["T"][sl]
        codes = rows.extra["codes"][sl]
        covariates = "z" in rows.extra  # the covariate pattern changes the parameters too
        pattern = rows.extra["pattern"][sl] if covariates else np.zeros(len(codes))
        (ucodes, upattern, ux, uT), inverse, _ = unique_rows([codes, pattern, x, T])
        S, K = self.n_draws, len(times)
        core = np.empty((S, len(ux), K))
        # the 2F1 evaluation needs many temporaries of its input's size: bound its input
        step = max(1, HEAVY_CELLS // (S * K))
        for u0 in range(0, len(ux), step):
            us = slice(u0, u0 + step)
            zu = (rows.extra["patterns"][upattern[us].astype(np.int64)] if covariates
                  else None)
            pu = self._row_params(ucodes[us].astype(np.int64) if self.hierarchical else None,
                                  1, z=zu)
            xu, Tu = ux[us, None], uT[us, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                core[:, us, :] = (self._expected_purchases(pu, xu, Tu, Tu, times[None, :])
                                  / self._probability_alive(pu, xu, Tu, Tu))
        prow = self._params_for(rows, sl, extra_axes=1)
        alive = self._probability_alive(prow, x[:, None], tx[:, None], T[:, None])
        if coef is not None:
            core = np.stack([core @ coef, core[..., -1]], axis=-1)
        return core[:, inverse, :] * alive


class BayesianModifiedBetaGeo(BayesianBetaGeo):
    """MBG/NBD (Batislam, Denizel & Filiztekin 2007) fitted with PyMC.

    As :class:`BayesianBetaGeo` — same parameters, priors, hierarchical option and
    predictions — with the MBG/NBD likelihood (Batislam et al. eq. 6), P(alive) (eq. 8) and
    expectations (eqs. 7, 9): a customer may also drop out right after the first purchase.
    Every formula is :mod:`clvmodels.models.mbgnbd`'s (the BG family with ``modified=True``).
    """

    name = "bayes-mbgnbd"
    label = "Bayesian MBG/NBD"
    _modified = True
    _mle_class = ModifiedBetaGeo
