"""What a fitted Bayesian model reports: the posterior summary table and intervals, the
sampler's convergence diagnostics, the pointwise log-likelihood and PSIS-LOO.

:class:`BayesianSummaries` is a mixin of :class:`~clvmodels.models.bayes.BayesianModel`; it
reads ``idata_`` (posterior, sample stats, the unique rows in ``constant_data``), the model's
parameter names and, for LOO, its likelihood hook ``_loglik``.
"""

from __future__ import annotations

import logging
import warnings
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import special

from clvmodels.models._math import NP
from clvmodels.models.bayes_covariates import coefficient_labels, coefficient_var
from clvmodels.models.factored import Factored, RowSpace, factored_namespace
from clvmodels.models.links import row_params
from clvmodels.models.posterior import CHUNK_CELLS
from clvmodels.models.sampling import (
    SamplingWarning,
    arviz_numpy_kernels,
    convergence_diagnostics,
    sampling_problems,
)
from clvmodels.rows import UniqueRows

if TYPE_CHECKING:
    import arviz as az
    import pymc as pm

__all__ = ["BayesianSummaries"]


class BayesianSummaries:
    """Summary table, intervals, diagnostics, pointwise log-likelihood and LOO of a fitted
    Bayesian model (a mixin of :class:`~clvmodels.models.bayes.BayesianModel`)."""

    idata_: Any
    param_names: tuple[str, ...]

    def compute_log_likelihood(self) -> None:
        """Add the pointwise log-likelihood (``weight × LL`` per unique row) to ``idata_``.

        ``LL`` is the model module's own log-likelihood (the ``_loglik`` hook the PyMC model
        is built from), evaluated here with numpy over the posterior draws — on the distinct
        values of the data columns (:mod:`clvmodels.models.factored`), exactly as the PyMC
        graph factors it — so no PyMC function is compiled; memory is draws × unique rows,
        computed in blocks of draws. Equals PyMC's ``compute_log_likelihood`` of the fitted
        model to rounding (tests/test_bayes_compile_cache.py: 1e-10 relative).
        """
        self._check_fitted()
        import xarray as xr

        rows = getattr(self, "_fit_rows", None)
        if rows is None:
            rows = self._rows_from_idata()
        post = self.idata_.posterior
        chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
        S, n = chains * draws, rows.n_rows
        out = np.empty((S, n))
        step = max(1, CHUNK_CELLS // max(1, n))
        for start in range(0, S, step):
            sel = np.arange(start, min(S, start + step))
            out[sel] = self._row_log_likelihood(rows, sel)
        out *= rows.weights.astype(float)
        ll = xr.Dataset({"likelihood": (("chain", "draw", "row"),
                                        out.reshape(chains, draws, n))},
                        coords={"chain": post["chain"].to_numpy(),
                                "draw": post["draw"].to_numpy(), "row": np.arange(n)})
        if "log_likelihood" in self.idata_.groups():
            del self.idata_.log_likelihood
        self.idata_.add_groups(log_likelihood=ll)

    def _row_log_likelihood(self, rows: UniqueRows, draws: np.ndarray) -> np.ndarray:
        """``LL`` of every unique row at the posterior draws ``draws``: (len(draws), rows).

        The parameters are those the PyMC model's ``logp`` sees: the base parameters (per
        segment for a hierarchical model, gathered by segment code) times exp(sign * eta)
        of the covariate links (links eq. (1)), eta once per covariate pattern.
        """
        s, n = len(draws), rows.n_rows
        layout = getattr(self, "covariate_layout_", None)
        if not self.factored_data:  # plain columns, per-row parameters
            codes = rows.extra["codes"] if self.hierarchical else None
            p = self._row_params(codes, draws=draws, z=rows.extra.get("z"))
            d = SimpleNamespace(**{c: np.asarray(rows.columns[c], dtype=float)
                                   for c in self.data_columns})
            return np.broadcast_to(self._loglik(p, d, NP), (s, n))
        groups = list(layout.positions) if layout is not None else []
        space = RowSpace({**rows.columns,
                          **({"pattern": rows.extra["pattern"]} if groups else {})})
        fm = factored_namespace(NP)
        base = self._param_draws()
        p: dict[str, Any] = ({k: space.segment_values(base[k][draws]) for k in self.param_names}
                             if self.hierarchical
                             else {k: base[k][draws][:, None] for k in self.param_names})
        if groups:
            eta = self._eta(rows.extra["patterns"], self._coefficient_draws()[draws])
            p = row_params(p, self.covariate_links,
                           {g: Factored(eta[g], frozenset({"pattern"}), space) for g in groups},
                           exp=fm.exp)
        d = SimpleNamespace(**{c: space.variable(c) for c in self.data_columns})
        ll = self._loglik(p, d, fm)
        if isinstance(ll, Factored):
            ll = ll.rows()
        return np.broadcast_to(ll, (s, n))

    def _pymc_model(self) -> pm.Model:
        """The PyMC model of the fit with its pointwise likelihood as the observed variable
        ``likelihood`` (built again from ``constant_data`` after loading). Where sampling
        used the fused likelihood node (a potential: :mod:`clvmodels.models.bg_fused`) this
        is the same model with the factored likelihood graph."""
        model = getattr(self, "_model", None)
        if model is None or not model.observed_RVs:
            rows = getattr(self, "_fit_rows", None)
            if rows is None:
                rows = self._rows_from_idata()
            model = self._model = self._build_model(rows, fused=False)
        return model

    def _rows_from_idata(self) -> UniqueRows:
        if "constant_data" not in self.idata_.groups():
            raise ValueError("this model was saved without its data; refit it, or save with "
                             "save(path, include_data=True) to compute LOO after loading")
        const = self.idata_.constant_data
        columns = {c: (self.idata_.observed_data["likelihood"].to_numpy()
                       if c == self.observed_column else const[c].to_numpy())
                   for c in (*self.data_columns, *(("segment",) if self.hierarchical else ()))}
        weights = const["weight"].to_numpy()
        out = UniqueRows(columns, weights, np.arange(len(weights)), pd.RangeIndex(len(weights)),
                         self.time_unit_)
        out.extra["codes"] = (columns["segment"].astype(np.int64) if self.hierarchical
                              else np.zeros(len(weights), dtype=np.int64))
        if getattr(self, "covariate_layout_", None) is not None:
            self._set_row_design(out, const["covariate_design"].to_numpy())
        return out

    def _coefficient_vars(self) -> list[str]:
        layout = getattr(self, "covariate_layout_", None)
        return [] if layout is None else [coefficient_var(g) for g in layout.positions]

    def _relabel(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Coefficient rows named ``purchase:channel[web]`` rather than ArviZ's label."""
        layout = getattr(self, "covariate_layout_", None)
        return frame if layout is None else frame.rename(index=coefficient_labels(layout))

    def _summary_vars(self) -> list[str]:
        if self.hierarchical:
            return [*[f"mu_{u}" for u in self.latents], *[f"sigma_{u}" for u in self.latents],
                    *self.param_names, *self._coefficient_vars()]
        return [*self.param_names, *self._coefficient_vars()]

    def summary(self, hdi_prob: float = 0.94) -> pd.DataFrame:
        """Posterior table in the schema every model shares, plus the sampler's columns.

        The shared columns (as for maximum-likelihood models): ``estimate`` (posterior mean),
        ``se`` (posterior sd), ``lower 95%`` / ``upper 95%`` (central 95% interval); then
        ArviZ's mean, sd, HDI, MCSE, bulk/tail ESS and R-hat per parameter, and
        ``divergences`` (the fit's total). ``attrs`` carry the divergence count, number of
        chains and draws, timings and the time unit. For a hierarchical model the
        per-segment rows are labelled ``r[segment]``.
        """
        self._check_fitted()
        import arviz as az

        # one chain: ArviZ logs that R-hat's shape check failed (its R-hat is NaN, shown so),
        # through its own logger object (not registered with logging)
        arviz_log = getattr(az, "_log", None)
        if not isinstance(arviz_log, logging.Logger):
            arviz_log = logging.getLogger("arviz")
        level = arviz_log.level
        arviz_log.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings(), arviz_numpy_kernels():
                warnings.simplefilter("ignore")
                out = az.summary(self.idata_, var_names=self._summary_vars(),
                                 hdi_prob=hdi_prob, round_to="none")
        finally:
            arviz_log.setLevel(level)
        out = self._relabel(out)
        ci = self._interval_table(0.05, self._summary_vars())
        shared = pd.DataFrame({"estimate": out["mean"], "se": out["sd"],
                               "lower 95%": ci["lower"].reindex(out.index),
                               "upper 95%": ci["upper"].reindex(out.index)})
        out = pd.concat([shared, out], axis=1)
        out["divergences"] = self.diagnostics_.get("divergences", 0)
        out.attrs.update(self.diagnostics_)
        out.attrs["time_unit"] = self.time_unit_
        out.attrs["timings"] = dict(getattr(self, "fit_timings_", {}))
        return out

    def _interval_table(self, alpha: float, var_names: list[str]) -> pd.DataFrame:
        """Central 1 - alpha posterior intervals, rows labelled like ArviZ's summary."""
        post = self.idata_.posterior
        rows: dict[str, tuple[float, float]] = {}
        for name in var_names:
            values = post[name].to_numpy()
            flat = values.reshape(values.shape[0] * values.shape[1], -1)
            lo, hi = np.quantile(flat, [alpha / 2, 1 - alpha / 2], axis=0)
            extra = [d for d in post[name].dims if d not in ("chain", "draw")]
            labels = ([name] if not extra else
                      [f"{name}[{v}]" for v in post[name][extra[0]].to_numpy()])
            for label, a, b in zip(labels, lo, hi, strict=True):
                rows[label] = (float(a), float(b))
        return self._relabel(pd.DataFrame.from_dict(rows, orient="index",
                                                    columns=["lower", "upper"]))

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Central posterior intervals of probability 1 - ``alpha`` for the parameters
        (columns ``lower``, ``upper``; the same method name as the MLE models')."""
        self._check_fitted()
        if not (isinstance(alpha, int | float) and 0 < alpha < 1):
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        return self._interval_table(float(alpha),
                                    [*self.param_names, *self._coefficient_vars()])

    def summary_text(self) -> str:
        """The summary table with the sampling diagnostics, as text."""
        s = self.summary()
        d = self.diagnostics_
        head = (f"{type(self).__name__} (Bayesian, {d['chains']} chains × {d['draws']} draws), "
                f"{self.n_customers_:,} customers in {self.n_unique_rows_:,} unique rows, "
                f"time unit {self.time_unit_!r}\n"
                f"divergences {d['divergences']}   max R-hat {d['max_rhat']:.4f}   "
                f"min ESS bulk {d['min_ess_bulk']:.0f}   min ESS tail {d['min_ess_tail']:.0f}\n")
        return head + s.to_string(float_format=lambda v: f"{v:.6g}")

    def _diagnose(self, warn: bool = True) -> None:
        self.diagnostics_ = convergence_diagnostics(self.idata_, self._summary_vars())
        problems = sampling_problems(self.diagnostics_) if warn else []
        if problems:
            warnings.warn(
                f"{type(self).__name__}: " + "; ".join(problems) + ". The posterior may be "
                "unreliable: sample longer (more tune/draws), raise target_accept (e.g. "
                "0.95), use more chains, or tighten the priors.",
                SamplingWarning,
                stacklevel=3,
            )

    # ---- LOO -------------------------------------------------------------------------
    def loo(self, pointwise: bool = False) -> az.ELPDData:
        """PSIS-LOO expected log predictive density per *customer* (Vehtari et al. 2017).

        ``idata_.log_likelihood`` holds ``weight × LL`` per unique row; identical customers
        share every value, so the per-customer log-likelihood of a row is its value divided
        by its weight, and each of the row's customers gets the same Pareto-smoothed LOO
        value (PSIS is computed per observation from its own draws). Hence, with
        ``elpd_r`` the LOO value of row r and ``w_r`` its weight:

            elpd_loo = sum_r w_r elpd_r,   p_loo = sum_r w_r (lpd_r - elpd_r),
            se = sqrt(N var_w(elpd)),       N = sum_r w_r,

        exactly what :func:`arviz.loo` gives on the expanded per-customer log-likelihood
        (``var_w`` is the weighted population variance) — at the cost of the unique rows.
        ``pointwise=True`` adds ``loo_i`` and ``pareto_k`` per customer of the fit data (or
        per row, with its weight, after loading).
        """
        self._check_fitted()
        import arviz as az
        import xarray as xr

        if "log_likelihood" not in self.idata_.groups():
            self.compute_log_likelihood()
        weights = self.idata_.constant_data["weight"].to_numpy().astype(float)
        ll = self.idata_.log_likelihood["likelihood"] / xr.DataArray(weights, dims="row")
        per_row = az.InferenceData(posterior=self.idata_.posterior,
                                   log_likelihood=xr.Dataset({"likelihood": ll}))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = az.loo(per_row, pointwise=True)
        elpd_i = res["loo_i"].to_numpy()
        S = ll.sizes["chain"] * ll.sizes["draw"]
        lpd_i = special.logsumexp(ll.to_numpy().reshape(S, -1), axis=0) - np.log(S)
        N = weights.sum()
        elpd = float(np.dot(weights, elpd_i))
        mean = elpd / N
        se = float(np.sqrt(N * np.dot(weights, (elpd_i - mean) ** 2) / N))
        out = res.copy()
        out["elpd_loo"] = elpd
        out["se"] = se
        out["p_loo"] = float(np.dot(weights, lpd_i - elpd_i))
        out["n_data_points"] = int(N)
        k = res["pareto_k"].to_numpy()
        out["warning"] = bool(np.any(k > res.get("good_k", 0.7)))
        if pointwise:
            rows = getattr(self, "_fit_rows", None)
            if rows is not None and len(rows.inverse) == len(rows.index):
                used = rows.inverse >= 0
                idx = rows.index[used]
                out["loo_i"] = xr.DataArray(elpd_i[rows.inverse[used]], dims="customer_id",
                                            coords={"customer_id": idx.to_numpy()})
                out["pareto_k"] = xr.DataArray(k[rows.inverse[used]], dims="customer_id",
                                               coords={"customer_id": idx.to_numpy()})
            else:
                out["loo_i"] = xr.DataArray(elpd_i, dims="row")
                out["pareto_k"] = xr.DataArray(k, dims="row")
                out["weight"] = xr.DataArray(weights, dims="row")
        else:
            out = out.drop(["loo_i", "pareto_k"], errors="ignore")
        return out

