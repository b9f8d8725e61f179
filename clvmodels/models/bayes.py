"""The Bayesian model class every Bayesian model shares: the PyMC model on compressed rows,
sampling, summaries and diagnostics, LOO and persistence.

A Bayesian model class (:class:`~clvmodels.models.bayes_bgnbd.BayesianBetaGeo`,
:class:`~clvmodels.models.bayes_gammagamma.BayesianGammaGamma`) names its parameters and
points at the *same* hooks its maximum-likelihood twin uses (``_loglik``, ``_probability_alive``
…), which call the model module's functions. Nothing here knows a model's formula.

How the likelihood stays fast and written once
----------------------------------------------
The PyMC model sees the *unique* rows of the likelihood's data columns with integer weights
(:class:`~clvmodels.rows.UniqueRows`), through a :class:`pymc.CustomDist` whose ``logp``
returns ``weight × LL(row)`` for each unique row (so ``idata.log_likelihood`` is pointwise per
row). ``LL`` is the model module's own ``log_likelihood(..., m=...)``, evaluated with the
factored math namespace of :mod:`clvmodels.models.factored`: terms that depend on ``x`` alone
are computed once per distinct ``x``, those on ``T`` once per distinct ``T``, and only the
final log-sum-exp once per row.

The shared machinery beside this class, one job per module: :mod:`~clvmodels.models.priors`
(prior specs), :mod:`~clvmodels.models.factored` (factored evaluation),
:mod:`~clvmodels.models.hierarchical` (segments, centring weights, the partially non-centred
parametrisation), :mod:`~clvmodels.models.sampling` (NUTS and convergence checks),
:mod:`~clvmodels.models.posterior` (draws and chunked predictions),
:mod:`~clvmodels.rows` (the unique rows), :mod:`~clvmodels.models.netcdf`
(files) and :mod:`~clvmodels.models.bayes_covariates` (covariate coefficients: priors, the
PyMC vectors, covariate patterns; the links are the MLE twin's, :mod:`clvmodels.models.links`):
the unique rows are then those of (segment, design, data), the pattern a factored column.
"""

from __future__ import annotations

import copy
import logging
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from scipy import special

from clvmodels._validation import ValidationError
from clvmodels.engines.spark_fit import fit_input
from clvmodels.models.base import BaseModel, NotFittedError
from clvmodels.models.bayes_covariates import (
    coefficient_coords,
    declare_coefficients,
    default_coefficient_priors,
    expand_group_priors,
    pattern_codes,
)
from clvmodels.models.bayes_summary import BayesianSummaries
from clvmodels.models.factored import Factored, RowSpace, factored_namespace
from clvmodels.models.hierarchical import (
    centring_weights,
    declare_segment_latents,
    segment_codes,
    segment_mle_latents,
)
from clvmodels.models.links import row_params
from clvmodels.models.netcdf import NetCDFPersistence, load_netcdf_model
from clvmodels.models.posterior import (
    CHUNK_CELLS,
    DEFAULT_INTERVAL,
    HEAVY_CELLS,
    PosteriorDraws,
    TransactionPredictions,
    UnseenSegments,
)
from clvmodels.models.posterior_contractual import ContractualPredictions
from clvmodels.models.priors import PriorSpec, hyperpriors, prior_rv, validate_priors
from clvmodels.models.sampling import (
    Sampler,
    SamplingWarning,
    sample,
)
from clvmodels.rows import UniqueRows, unique_rows

if TYPE_CHECKING:
    import pymc as pm

__all__ = [
    "CHUNK_CELLS",
    "DEFAULT_INTERVAL",
    "HEAVY_CELLS",
    "BayesianContractualModel",
    "BayesianModel",
    "BayesianTransactionModel",
    "Factored",
    "PriorSpec",
    "RowSpace",
    "SamplingWarning",
    "UniqueRows",
    "factored_namespace",
    "load_netcdf_model",
    "unique_rows",
    "validate_priors",
]

#: draws × unique rows up to which ``fit`` stores the pointwise log-likelihood (~200 MB)
LOG_LIKELIHOOD_CELLS = 25_000_000


class BayesianModel(BayesianSummaries, NetCDFPersistence, PosteriorDraws, BaseModel):
    """Everything a Bayesian model shares: priors, PyMC model, sampling, summaries,
    predictions over posterior draws, LOO and netCDF persistence.

    A subclass sets :attr:`param_names`, :attr:`data_columns` (the likelihood's data
    columns), :attr:`latents` (its unconstrained hierarchical parametrisation) and provides
    ``_loglik(p, d, m)`` — the MLE twin's hook, i.e. the model module's own
    log-likelihood — plus ``_default_priors``, ``_default_mu_priors``,
    ``_natural_from_latent``, ``_latent_from_natural`` and ``_rows``.

    Posterior draws are public through :attr:`n_draws`, :meth:`parameter_draws` and
    :meth:`segment_codes` (see :class:`~clvmodels.models.posterior.PosteriorDraws`).

    Parameters
    ----------
    priors
        Prior specs overriding the defaults (see :meth:`default_priors`), e.g.
        ``{"r": {"dist": "Gamma", "alpha": 2.0, "beta": 4.0}}``. For a hierarchical model the
        keys are the hyperpriors ``mu_<latent>`` and ``sigma_<latent>``.
    segment_col
        Column of the RFM frame holding each customer's segment (cohort, channel, country…):
        each segment gets its own parameters, partially pooled toward the population.
    parametrization
        Hierarchical models, how each segment latent ``u_s ~ Normal(mu, sigma)`` is sampled
        (the model is the same whatever the choice; only the sampler's geometry changes; see
        :mod:`clvmodels.models.hierarchical`):

        * ``"auto"`` (default): partially non-centred per segment and latent,
          ``u_s = mu + sigma^(1-w) (t_s - w mu)`` with ``t_s ~ Normal(w mu, sigma^w)``
          (Gorinova, Moore & Hoffman 2020, "Automatic reparameterisation of probabilistic
          programs"). The weight ``w = tau^2 / (tau^2 + se_s^2)`` compares how well the
          segment's own data pin ``u_s`` down (``se_s``, from a quick maximum-likelihood fit
          of the MLE twin on that segment alone) with the spread of the segments
          (``tau^2``, DerSimonian-Laird estimate from those fits): small or similar segments
          get ``w ≈ 0`` — the non-centred form ``u_s = mu + sigma z_s`` — and large, distinct
          ones ``w ≈ 1`` — the centred form. Stored in :attr:`centering_`.
        * ``"non_centered"``: ``w = 0`` everywhere (best when segments are small or similar);
        * ``"centered"``: ``w = 1`` everywhere (best when every segment has so much data
          that its parameters are pinned down by the likelihood).
    purchase_covariates, dropout_covariates, spend_covariates, covariate_reference, \
standardize_covariates, unseen_levels
        Customer attributes, as for the maximum-likelihood twin (same links, equation (1)
        of :mod:`clvmodels.models.links`); with ``segment_col`` too, the coefficients are
        shared by the segments. Coefficient priors ``Normal(0, 1)`` by default, overridable
        per coefficient (``priors={"purchase:channel[web]": {...}}``) or per group
        (``priors={"purchase": {...}}``); see :mod:`clvmodels.models.bayes_covariates`.
    """

    is_bayesian: ClassVar[bool] = True
    bayesian: ClassVar[bool] = True
    #: name of the data columns the likelihood reads, in ``UniqueRows.columns``
    data_columns: ClassVar[tuple[str, ...]] = ()
    #: name of the column used as the CustomDist's observed value
    observed_column: ClassVar[str] = ""
    #: the unconstrained latents of the hierarchical parametrisation
    latents: ClassVar[tuple[str, ...]] = ()
    #: whether the likelihood can take its data columns as factored distinct values (the
    #: BG family and Gamma-Gamma, written with elementwise operations); a likelihood that
    #: builds arrays from its data (BG/BB's padded sum) gets them as plain numpy columns
    factored_data: ClassVar[bool] = True

    def __init__(self, priors: Mapping[str, PriorSpec] | None = None,
                 segment_col: str | None = None,
                 parametrization: Literal["auto", "non_centered", "centered"] = "auto",
                 *, purchase_covariates: Sequence[str] | None = None,
                 dropout_covariates: Sequence[str] | None = None,
                 spend_covariates: Sequence[str] | None = None,
                 covariate_reference: dict[str, Any] | None = None,
                 standardize_covariates: bool = False,
                 unseen_levels: Literal["raise", "reference"] = "raise") -> None:
        if priors is not None and not isinstance(priors, Mapping):
            raise ValueError("priors must be a dict of prior specs or None")
        if segment_col is not None and not isinstance(segment_col, str):
            raise ValueError("segment_col must be a column name or None")
        if parametrization not in ("auto", "non_centered", "centered"):
            raise ValueError("parametrization must be 'auto', 'non_centered' or 'centered'")
        self.priors = None if priors is None else {k: dict(v) for k, v in priors.items()}
        self.segment_col = segment_col
        self.parametrization = parametrization
        self._init_covariates(purchase_covariates, dropout_covariates, spend_covariates,
                              covariate_reference, standardize_covariates, unseen_levels)

    def get_params(self) -> dict[str, Any]:
        """The constructor's keywords (scikit-learn style)."""
        return {"priors": self.priors, "segment_col": self.segment_col,
                "parametrization": self.parametrization, **self._covariate_params()}

    # ---- to be provided by the model -------------------------------------------------
    def _loglik(self, p: dict[str, Any], d: Any, m: Any) -> Any:
        raise NotImplementedError

    def _default_priors(self, rows: UniqueRows | None) -> dict[str, PriorSpec]:
        """Default priors for a non-hierarchical fit (natural parameters)."""
        raise NotImplementedError

    #: scale of the default HalfNormal hyperprior of every ``sigma_<latent>``
    _sigma_scale: ClassVar[float] = 1.0

    def _default_mu_priors(self, rows: UniqueRows | None) -> dict[str, PriorSpec]:
        """Default priors of the population means ``mu_<latent>``, keyed by latent."""
        raise NotImplementedError

    def _default_hyperpriors(self, rows: UniqueRows | None) -> dict[str, PriorSpec]:
        """Default hyperpriors ``mu_<latent>``, ``sigma_<latent>`` for a hierarchical fit."""
        return hyperpriors(self.latents, self._default_mu_priors(rows), self._sigma_scale)

    @staticmethod
    def _natural_from_latent(u: dict[str, Any], xp: Any) -> dict[str, Any]:
        """Natural parameters from the unconstrained latents (``xp``: exp, sigmoid)."""
        raise NotImplementedError

    @staticmethod
    def _latent_from_natural(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The inverse of :meth:`_natural_from_latent` (numpy; NaN where undefined)."""
        raise NotImplementedError

    #: the maximum-likelihood twin, fitted per segment by ``parametrization="auto"``
    _mle_class: ClassVar[type | None] = None

    def _rows(self, rfm: pd.DataFrame, *, fitting: bool,
              unseen: UnseenSegments = "raise", weights: Any = None) -> UniqueRows:
        """Validate ``rfm`` and compress it to the likelihood's unique rows (``weights``:
        counts of identical customers per row of ``rfm``, when fitting)."""
        raise NotImplementedError

    def _kind_rows(self, data: pd.DataFrame, *, fitting: bool, unseen: UnseenSegments,
                   weights: Any, sort_columns: tuple[str, ...], names: dict[str, str],
                   extra: np.ndarray | None = None) -> UniqueRows:
        """Unique rows of the data kind's columns (validated, in the model's time unit) and
        the segment code, in the order of ``sort_columns`` (frame names) with the segment
        first; ``names`` maps frame names to the likelihood's column names."""
        from clvmodels.datakinds import KINDS, resolve_weights
        from clvmodels.models.base import frame_arrays

        spec = KINDS[self.data_kind]
        data = spec.conform(data)
        cols, index = frame_arrays(data, self.data_kind,
                                   time_unit=None if fitting else self.time_unit_)
        by_name = dict(zip(spec.columns, cols, strict=True))
        w = resolve_weights(data, weights) if fitting else None
        codes = self._segment_codes(data, fitting=fitting, unseen=unseen)
        keep = spec.uses(data) if spec.uses is not None else np.ones(len(data), dtype=bool)
        z = self._design_for(data, fitting=fitting)
        q = 0 if z is None else z.shape[1]
        keys = ([codes.astype(float)[keep]] + [z[keep, j] for j in range(q)]
                + [by_name[c][keep] for c in sort_columns])
        if extra is not None:
            keys.append(np.asarray(extra, dtype=float)[keep])
        uniq, inv_kept, counts = unique_rows(keys) if keep.any() else (
            [np.empty(0) for _ in keys], np.empty(0, dtype=np.int64), np.empty(0))
        if w is not None and keep.any():
            counts = np.bincount(inv_kept, weights=w[keep], minlength=len(uniq[0]))
        inverse = np.full(len(data), -1, dtype=np.int64)
        inverse[keep] = inv_kept
        columns = {names[c]: uniq[1 + q + j] for j, c in enumerate(sort_columns)}
        if self.hierarchical:
            columns["segment"] = uniq[0]
        unit = data.attrs.get("time_unit") if fitting else self.time_unit_
        out = UniqueRows(columns, np.asarray(counts, dtype=np.int64), inverse, index, unit)
        out.extra["codes"] = uniq[0].astype(np.int64)
        if z is not None:
            self._set_row_design(out, np.column_stack(uniq[1:1 + q]) if q
                                 else np.zeros((len(uniq[0]), 0)))
        if extra is not None:
            out.extra["t"] = uniq[-1]
        if fitting:
            self._fit_weights = w
        return out

    def _design_for(self, data: pd.DataFrame, *, fitting: bool) -> np.ndarray | None:
        """The design matrix of ``data`` (None without covariates); ``fitting`` learns the
        encoding (:attr:`covariate_layout_`), otherwise the fitted one is applied
        (``unseen_levels`` decides about levels not seen in the fit)."""
        if not fitting and getattr(self, "covariate_layout_", None) is None:
            return None
        if fitting:
            self.covariate_layout_ = self._learn_layout(data)
            if self.covariate_layout_ is None:
                return None
            return self.covariate_layout_.encoding.design(data, what="the fitting data")
        return self.covariate_layout_.encoding.design(data, unseen=self.unseen_levels)

    @staticmethod
    def _set_row_design(rows: UniqueRows, z: np.ndarray) -> None:
        """Store the unique rows' design ``z`` and covariate pattern codes in ``extra``."""
        patterns, codes = pattern_codes(z)
        rows.extra.update(z=z, patterns=patterns, pattern=codes)

    def _no_covariates_error(self) -> ValueError:
        layout = self.covariate_layout_
        return ValueError(
            f"this {type(self).__name__} has covariates "
            f"({', '.join(layout.encoding.names)}): the prediction depends on each "
            "customer's attributes; pass data with those columns")

    # ---- helpers ---------------------------------------------------------------------
    @property
    def hierarchical(self) -> bool:
        return self.segment_col is not None

    def _check_fitted(self) -> None:
        if not hasattr(self, "idata_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet: call fit(rfm) first"
            )

    def default_priors(self, rfm: pd.DataFrame | None = None) -> dict[str, PriorSpec]:
        """The default prior specs (resolved against ``rfm``'s time unit / spend scale)."""
        probe = copy.copy(self)  # resolving against rfm must not set learned attributes
        rows = probe._rows(rfm, fitting=True) if rfm is not None else None
        out = (self._default_hyperpriors(rows) if self.hierarchical
               else self._default_priors(rows))
        out.update(default_coefficient_priors(getattr(probe, "covariate_layout_", None)))
        return out

    def _segment_codes(self, rfm: pd.DataFrame, *, fitting: bool,
                       unseen: UnseenSegments = "raise") -> np.ndarray:
        """Integer code of each customer's segment (``-1``: unseen, population level);
        ``fitting`` sets :attr:`segment_labels_` from the data."""
        if not self.hierarchical:
            return np.zeros(len(rfm), dtype=np.int64)
        codes, labels = segment_codes(rfm, self.segment_col, None if fitting
                                      else self.segment_labels_, unseen=unseen)
        if fitting:
            self.segment_labels_ = labels
        return codes

    # ---- hierarchical parametrisation ---------------------------------------------------
    def _choose_centering(self, rfm: pd.DataFrame) -> pd.DataFrame:
        """Centring weight w in [0, 1] per (segment, latent): see ``parametrization``."""
        labels = pd.Index([str(v) for v in self.segment_labels_], name=self.segment_col)
        shape = (len(labels), len(self.latents))
        if self.parametrization != "auto":
            w = np.full(shape, 1.0 if self.parametrization == "centered" else 0.0)
        else:
            est, se = segment_mle_latents(
                rfm, self._segment_codes(rfm, fitting=False), len(labels), self._mle_class,
                self.param_names, self.latents, self._latent_from_natural,
                weights=getattr(self, "_fit_weights", None))
            w = centring_weights(est, se)
        return pd.DataFrame(w, index=labels, columns=list(self.latents))

    # ---- building the PyMC model -----------------------------------------------------
    def _declare_params(self, inputs: Any = None) -> dict[str, Any]:
        """Declare the priors and return the natural parameters (scalars or per segment)."""
        import pymc as pm
        import pytensor.tensor as pt

        priors = self.priors_
        if not self.hierarchical:
            return {name: prior_rv(name, priors[name]) for name in self.param_names}
        latent = declare_segment_latents(self.latents, priors, self.centering_,
                                         None if inputs is None else inputs.add)
        xp = SimpleNamespace(exp=pt.exp, sigmoid=pt.sigmoid)
        natural = self._natural_from_latent(latent, xp)
        return {name: pm.Deterministic(name, natural[name], dims="segment")
                for name in self.param_names}

    def _fused_total(self, params: dict[str, Any], rows: UniqueRows, inputs: Any) -> Any:
        """The weighted log-likelihood total as one fused PyTensor node, or None (the
        factored graph is built). Not called for models with covariates."""
        return None

    def _build_model(self, rows: UniqueRows, *, fused: bool = True) -> pm.Model:
        """The PyMC model on ``rows``; ``fused=False`` builds the factored likelihood
        graph even where the class has a fused one (:meth:`_fused_total`)."""
        import pymc as pm
        import pytensor.tensor as pt

        from clvmodels.models._math import tensor_namespace
        from clvmodels.models.compiled import DataInputs

        inputs = DataInputs()  # the data enter as inputs: one compile per structure
        coords: dict[str, Any] = {"row": np.arange(rows.n_rows)}
        if self.hierarchical:
            coords["segment"] = [str(s) for s in self.segment_labels_]
        layout = getattr(self, "covariate_layout_", None)
        groups = list(layout.positions) if layout is not None else []
        if layout is not None:
            coords.update(coefficient_coords(layout))
            # the linear predictor, once per distinct covariate pattern (links eq. (1))
            zp = {g: inputs.add(rows.extra["patterns"][:, pos], "patterns")
                  for g, pos in layout.positions.items()}
            pcode = rows.extra["pattern"]
        space = RowSpace({**rows.columns, **({"pattern": pcode} if groups else {})})
        space.index_constant = inputs.index
        weights = inputs.add(rows.weights.astype(float), "weights")
        names = self.param_names
        hier = self.hierarchical
        factored = self.factored_data
        fm = factored_namespace(tensor_namespace()) if factored else tensor_namespace()
        plain = SimpleNamespace(**{c: np.asarray(rows.columns[c], dtype=float)
                                   for c in self.data_columns})
        seg = inputs.index(rows.extra["codes"]) if hier else None

        def linked(p: dict[str, Any], coefs: tuple[Any, ...]) -> dict[str, Any]:
            """Links eq. (1): per pattern (factored) or gathered to the rows."""
            if not groups:
                return p
            eta = {}
            for g, c in zip(groups, coefs, strict=True):
                per_pattern = pt.dot(zp[g], c[0])  # coefficients arrive as (1, k)
                eta[g] = (Factored(per_pattern, frozenset({"pattern"}), space) if factored
                          else per_pattern[inputs.index(pcode)])
            return row_params(p, self.covariate_links, eta, exp=fm.exp)

        def logp(value: Any, *args: Any) -> Any:
            params, coefs = args[:len(names)], args[len(names):]
            if not factored:  # plain columns; per-row parameters gathered by segment
                p = ({n: v[0][seg] for n, v in zip(names, params, strict=True)} if hier
                     else dict(zip(names, params, strict=True)))
                return weights * self._loglik(linked(p, coefs), plain, fm)
            if hier:  # params arrive as (1, n_segments): see the CustomDist signature
                p = {n: space.segment_values(v[0]) for n, v in zip(names, params, strict=True)}
            else:
                p = dict(zip(names, params, strict=True))
            p = linked(p, coefs)
            d = SimpleNamespace(**{c: space.variable(c, lambda v, c=c: inputs.add(v, c))
                                   for c in self.data_columns})
            ll = self._loglik(p, d, fm)
            if isinstance(ll, Factored):
                ll = ll.rows()
            return weights * ll

        with pm.Model(coords=coords) as model:
            params = self._declare_params(inputs)
            total = (self._fused_total(params, rows, inputs)
                     if fused and factored and not groups else None)
            if total is not None:  # one node: a fast first compile (bg_fused)
                pm.Potential("likelihood", total)
                inputs.register(model)
                return model
            args = [params[n] for n in names]
            if hier:
                args = [a[None, :] for a in args]
                signature = ",".join(["(s)"] * len(names))
            else:
                signature = ",".join(["()"] * len(names))
            if groups:
                coefs = declare_coefficients(layout, self.priors_)
                args += [coefs[g][None, :] for g in groups]
                signature += "".join(f",(k{j})" for j in range(len(groups)))
            signature += "->()"
            pm.CustomDist("likelihood", *args, logp=logp,
                          observed=inputs.add(rows.columns[self.observed_column], "observed"),
                          signature=signature, dims="row")
        inputs.register(model)
        return model

    # ---- fitting ---------------------------------------------------------------------
    def fit(
        self,
        rfm: pd.DataFrame,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        random_seed: int | None = None,
        sampler: Sampler = "nutpie",
        *,
        cores: int | None = None,
        target_accept: float | None = None,
        log_likelihood: bool | Literal["auto"] = "auto",
        progressbar: bool = False,
        weights: str | np.ndarray | None = None,
    ) -> BayesianModel:
        """Sample the posterior with NUTS on the unique rows of ``rfm`` (weighted).

        Parameters
        ----------
        weights
            A column name or one count per row: how many identical customers each row of
            ``rfm`` stands for (pre-aggregated data), as for the MLE models.
        draws, tune, chains
            Posterior draws kept per chain, tuning iterations per chain, number of chains.
        random_seed
            Seed for reproducible sampling.
        sampler
            ``"nutpie"`` (default: compiled with numba, with a low-rank mass matrix that
            adapts to the strong posterior correlations of these models — r with alpha, a
            with b — and so needs far fewer leapfrog steps per draw) or ``"pymc"`` (PyMC's
            NUTS with a full mass matrix, the fallback when nutpie is unavailable).
        cores
            Chains run in parallel (default: min(chains, CPU count)).
        target_accept
            NUTS's target acceptance rate (smaller steps when higher). Default 0.8, and 0.9
            for hierarchical models, whose hyper-scale funnels need the smaller steps (see
            ``bench/bayes_measurements.md``).
        log_likelihood
            Store the pointwise log-likelihood (per unique row) for :meth:`loo`; ``"auto"``
            stores it when draws × rows is at most :data:`LOG_LIKELIHOOD_CELLS`.

        Warns :class:`SamplingWarning` when R-hat > 1.01, the ESS is low or there are
        divergences.
        """
        if sampler not in ("nutpie", "pymc"):
            raise ValueError("sampler must be 'nutpie' or 'pymc'")
        if target_accept is None:
            target_accept = 0.9 if self.hierarchical else 0.8
        if not 0 < target_accept < 1:
            raise ValueError(f"target_accept must be in (0, 1), got {target_accept!r}")
        for name, value in (("draws", draws), ("tune", tune), ("chains", chains)):
            if not isinstance(value, int | np.integer) or value < (0 if name == "tune" else 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        started = time.perf_counter()
        rfm, weights = fit_input(self, rfm, weights)  # a Spark summary: unique rows, counts
        rows = self._rows(rfm, fitting=True, weights=weights)
        if rows.n_rows == 0:
            raise ValidationError("no customers to fit on")
        problem = self._identifiability_problem(rows)
        if problem:  # the MLE twin raises; a posterior exists, but it is the prior's
            from clvmodels.models.base import IdentificationWarning

            warnings.warn(f"{type(self).__name__}: the data cannot identify the parameters: "
                          f"{problem}. The posterior will be (mostly) the prior; the "
                          f"maximum-likelihood fit refuses such data.",
                          IdentificationWarning, stacklevel=2)
        layout = self.covariate_layout_
        if layout is not None:
            from clvmodels.models.base import IdentificationError
            from clvmodels.models.covariate_fit import design_problem

            problem = design_problem(rows.extra["z"], rows.weights.astype(float),
                                     layout.encoding.design_names)
            single = [c.name for c in layout.encoding.columns if not c.design_names]
            if single:
                problem = (f"covariate column(s) {single} take a single level in the fitting "
                           "data, so their effect cannot be told apart from the base "
                           "parameters (drop them, or fit on data where they vary)")
            if problem:
                raise IdentificationError(f"{type(self).__name__}: {problem}")
        defaults = (self._default_hyperpriors(rows) if self.hierarchical
                    else self._default_priors(rows))
        defaults.update(default_coefficient_priors(layout))
        self.priors_ = validate_priors(expand_group_priors(self.priors, layout), defaults)
        self.time_unit_ = rows.time_unit
        if self.hierarchical:
            self.centering_ = self._choose_centering(rfm)
        model = self._build_model(rows)
        cores = min(chains, os.cpu_count() or 1) if cores is None else int(cores)
        timings: dict[str, float] = {"prepare_s": time.perf_counter() - started}
        idata, sampler = sample(model, sampler, draws=draws, tune=tune, chains=chains,
                                cores=cores, random_seed=random_seed,
                                target_accept=target_accept, progressbar=progressbar,
                                timings=timings)
        keep = [g for g in ("posterior", "sample_stats") if g in idata.groups()]
        idata = idata.copy()
        for group in list(idata.groups()):
            if group not in keep:
                delattr(idata, group)
        self._model = model
        self._fit_rows = rows
        self._draws_cache = None
        self.idata_ = idata
        self._add_data_groups(rows)
        n_draws = chains * draws
        if log_likelihood is True or (log_likelihood == "auto"
                                      and n_draws * rows.n_rows <= LOG_LIKELIHOOD_CELLS):
            t0 = time.perf_counter()
            self.compute_log_likelihood()
            timings["log_likelihood_s"] = time.perf_counter() - t0
        self.n_customers_ = rows.n_customers
        self.n_unique_rows_ = rows.n_rows
        self.sampler_ = sampler
        timings["total_s"] = time.perf_counter() - started
        self.fit_timings_ = timings
        self._set_params()
        self._diagnose()
        return self

    def _add_data_groups(self, rows: UniqueRows) -> None:
        """The unique rows and weights as ``observed_data`` / ``constant_data``."""
        import xarray as xr

        coords = {"row": np.arange(rows.n_rows)}
        obs = xr.Dataset({"likelihood": ("row", rows.columns[self.observed_column])},
                         coords=coords)
        const = xr.Dataset({name: ("row", values) for name, values in rows.columns.items()
                            if name != self.observed_column}, coords=coords)
        const["weight"] = ("row", rows.weights.astype(np.int64))
        if "z" in rows.extra:
            const["covariate_design"] = (("row", "design_column"), rows.extra["z"])
            const = const.assign_coords(
                design_column=self.covariate_layout_.encoding.design_names)
        self.idata_.add_groups(observed_data=obs, constant_data=const)

    # ---- learned quantities, diagnostics -------------------------------------------------
    def _population_draws(self) -> dict[str, np.ndarray]:
        """Hierarchical: natural parameters of the *typical* segment (latents at mu)."""
        post = self.idata_.posterior
        u = {name: post[f"mu_{name}"].to_numpy() for name in self.latents}
        xp = SimpleNamespace(exp=np.exp, sigmoid=special.expit)
        return self._natural_from_latent(u, xp)

    def _set_params(self) -> None:
        post = self.idata_.posterior
        if self.hierarchical:
            pop = self._population_draws()
            self.params_ = pd.Series({n: float(np.mean(pop[n])) for n in self.param_names},
                                     name="posterior_mean")
            data: dict[str, Any] = {}
            q = (1 - DEFAULT_INTERVAL) / 2
            for n in self.param_names:
                v = post[n].to_numpy().reshape(-1, len(self.segment_labels_))
                data[n] = v.mean(axis=0)
                data[f"{n}_lower"] = np.quantile(v, q, axis=0)
                data[f"{n}_upper"] = np.quantile(v, 1 - q, axis=0)
            frame = pd.DataFrame(data, index=pd.Index(self.segment_labels_,
                                                      name=self.segment_col))
            frame.insert(0, "n_customers", self._segment_sizes())
            self.segment_params_ = frame
        else:
            self.params_ = pd.Series({n: float(post[n].mean()) for n in self.param_names},
                                     name="posterior_mean")
        layout = getattr(self, "covariate_layout_", None)
        if layout is not None:
            coefs = pd.Series(self._coefficient_draws().mean(axis=0),
                              index=layout.coefficient_names, name="posterior_mean")
            self.params_ = pd.concat([self.params_, coefs]).rename("posterior_mean")

    def _segment_sizes(self) -> np.ndarray:
        rows = getattr(self, "_fit_rows", None)
        if rows is None:
            return np.asarray(self.fit_info_.get("segment_sizes",
                                                 [0] * len(self.segment_labels_)))
        sizes = np.bincount(rows.columns["segment"].astype(np.int64), weights=rows.weights,
                            minlength=len(self.segment_labels_)).astype(np.int64)
        return sizes

    @classmethod
    def from_params(cls, *, time_unit: str | None = None, **params: Any) -> BayesianModel:
        """A fitted model from known parameters: each a number or a 1-D array of posterior
        draws (all the same length), e.g. draws kept in a database or from another tool.

        The model predicts with those draws (one chain); it has no data, so LOO and the
        sampler diagnostics are unavailable. Non-hierarchical only.
        """
        import arviz as az

        missing = [n for n in cls.param_names if n not in params]
        extra = [n for n in params if n not in cls.param_names]
        if missing or extra:
            raise ValueError(f"{cls.__name__} takes parameters {list(cls.param_names)}"
                             + (f"; missing {missing}" if missing else "")
                             + (f"; unknown {extra}" if extra else ""))
        arrays = {n: np.atleast_1d(np.asarray(params[n], dtype=float)) for n in cls.param_names}
        sizes = {len(v) for v in arrays.values() if v.ndim == 1}
        if any(v.ndim != 1 for v in arrays.values()) or len(sizes - {1}) > 1:
            raise ValueError("each parameter must be a number or a 1-D array of draws, all "
                             "arrays of the same length")
        n_draws = max(sizes)
        for n, v in arrays.items():
            if not np.all(np.isfinite(v) & (v > 0)):
                raise ValueError(f"parameter {n!r} must be positive and finite")
            arrays[n] = np.broadcast_to(v, (n_draws,)).copy()
        if time_unit is not None:
            from clvmodels._summary_rules import time_unit_days

            time_unit_days(time_unit)
        model = cls()
        logger = logging.getLogger("arviz")  # one chain is what the user gave: no warning
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            model.idata_ = az.from_dict(posterior={n: v[None, :] for n, v in arrays.items()})
        finally:
            logger.setLevel(level)
        model.time_unit_ = time_unit
        model.priors_ = {}
        model.n_customers_ = 0
        model.n_unique_rows_ = 0
        model._draws_cache = None
        model._set_params()
        model.diagnostics_ = {"chains": 1, "draws": n_draws, "divergences": 0,
                              "max_rhat": float("nan"), "min_ess_bulk": float("nan"),
                              "min_ess_tail": float("nan")}
        return model

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            ps = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            seg = f", {len(self.segment_labels_)} segments" if self.hierarchical else ""
            return f"{type(self).__name__}({ps}{seg}; posterior means)"
        return f"{type(self).__name__}(unfitted)"


class BayesianTransactionModel(TransactionPredictions, BayesianModel):
    """A Bayesian transaction model (BG/NBD family) on ``(frequency, recency, T)``: the data
    compression; the predictions are :class:`~clvmodels.models.posterior.TransactionPredictions`.
    """

    data_columns = ("x", "tx", "T")
    observed_column = "x"

    def _rows(self, rfm: pd.DataFrame, *, fitting: bool,
              unseen: UnseenSegments = "raise", extra: np.ndarray | None = None,
              weights: Any = None) -> UniqueRows:
        # sorted by (segment, x, T, t_x): rows sharing (segment, x, T) are adjacent
        return self._kind_rows(rfm, fitting=fitting, unseen=unseen, weights=weights,
                               sort_columns=("frequency", "T", "recency"),
                               names={"frequency": "x", "T": "T", "recency": "tx"},
                               extra=extra)


class BayesianContractualModel(ContractualPredictions, BayesianModel):
    """A Bayesian contractual model on ``(periods, churned)``: the data compression; the
    predictions are :class:`~clvmodels.models.posterior_contractual.ContractualPredictions`.
    """

    data_columns = ("periods", "churned")
    observed_column = "periods"

    def _rows(self, data: pd.DataFrame, *, fitting: bool,
              unseen: UnseenSegments = "raise", weights: Any = None) -> UniqueRows:
        return self._kind_rows(data, fitting=fitting, unseen=unseen, weights=weights,
                               sort_columns=("periods", "churned"),
                               names={"periods": "periods", "churned": "churned"})
