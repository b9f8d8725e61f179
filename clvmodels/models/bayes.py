"""Bayesian fitting shared by every model: priors, the PyMC model on compressed rows, sampling,
diagnostics, draw-chunked predictions, LOO, netCDF persistence and hierarchical segments.

A Bayesian model class (:class:`~clvmodels.models.bayes_bgnbd.BayesianBetaGeo`,
:class:`~clvmodels.models.bayes_gammagamma.BayesianGammaGamma`) names its parameters and
points at the *same* hooks its maximum-likelihood twin uses (``_loglik``, ``_probability_alive``
…), which call the model module's functions. Nothing here knows a model's formula.

How the likelihood stays fast and written once
----------------------------------------------
Every RFM likelihood depends on a customer only through a few data columns (``x, t_x, T`` —
or ``x, m_x`` for spend — and the segment), so the PyMC model sees the *unique* rows with
integer weights, through a :class:`pymc.CustomDist` whose ``logp`` returns
``weight × LL(row)`` for each unique row (so ``idata.log_likelihood`` is pointwise per row).
``LL`` is the model module's own ``log_likelihood(..., m=...)``, evaluated with a *factored*
math namespace (:func:`factored_namespace`): each data column is handed to it as its
distinct values (:class:`Factored`), and every operation is carried out on the distinct
values — or distinct combinations of the columns it involves — and only gathered to rows
when two operands need a finer grouping. Terms that depend on ``x`` alone (the ``lnΓ``
terms) are thus computed once per distinct ``x`` (tens of values), ``ln(alpha + T)`` once per
distinct ``T``, and only the final log-sum-exp once per row: at a million customers
(~180k unique rows) a gradient costs about a third of the plain per-row graph.

Hierarchical models
-------------------
With ``segment_col`` every segment ``s`` has its own parameters, partially pooled on
unconstrained scales: for each latent ``u`` (e.g. ``log r``), ``u_s ~ Normal(mu_u, sigma_u)``,
sampled non-centred (``u_s = mu_u + sigma_u z_{u,s}``, ``z_{u,s} ~ Normal(0, 1)``) where a
segment's own data say little and centred where they pin ``u_s`` down — by default partially,
with a weight per segment and latent chosen from quick per-segment maximum-likelihood fits
(``parametrization="auto"``; measured on 200k customers in 10 segments, all at
target_accept 0.8: 8.6 leapfrog steps per draw and 3.7 worst-parameter ESS/s, against 23 steps
/ 0.6 ESS/s non-centred and 21 steps / 1.1 ESS/s centred; hierarchical fits now default to
target_accept 0.9, which tripled that figure again). The segment of a
row is one more factored column, so per-segment terms are computed once per
(segment, x) pair and so on.
"""

from __future__ import annotations

import json
import math
import operator
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from scipy import special

from clvmodels._validation import ValidationError, validate_rfm
from clvmodels.models.base import _REGISTRY, BaseModel, NotFittedError, check_horizon
from clvmodels.rfm import unique_rows

if TYPE_CHECKING:
    import arviz as az
    import pymc as pm
    import xarray as xr

__all__ = [
    "CHUNK_CELLS",
    "DEFAULT_INTERVAL",
    "HEAVY_CELLS",
    "BayesianModel",
    "Factored",
    "RowSpace",
    "SamplingWarning",
    "factored_namespace",
    "load_netcdf_model",
    "unique_rows",
]

#: Default probability mass of the central credible intervals of predictions.
DEFAULT_INTERVAL = 0.9
#: draws × rows × horizons evaluated at once by the chunked predictions (~16 MB of float64)
CHUNK_CELLS = 2_000_000
#: draws × groups × horizons handed at once to a closed-form prediction that needs special
#: functions (2F1 takes ~50 temporaries of its input's size: ~100 MB at this budget)
HEAVY_CELLS = 250_000
#: draws × unique rows up to which ``fit`` stores the pointwise log-likelihood (~200 MB)
LOG_LIKELIHOOD_CELLS = 25_000_000
#: segments smaller than this are not fitted alone by ``parametrization="auto"`` (their
#: latents are sampled non-centred: the population dominates their posterior anyway)
MIN_SEGMENT_FOR_MLE = 50
#: minimum bulk / tail ESS per chain before a warning
MIN_ESS_PER_CHAIN = 100
#: largest acceptable R-hat
MAX_RHAT = 1.01

Sampler = Literal["nutpie", "pymc"]


class SamplingWarning(UserWarning):
    """The sampler's diagnostics (R-hat, ESS, divergences) suggest an unreliable posterior."""


# --------------------------------------------------------------------------------------
# priors: plain, JSON-serialisable specs
# --------------------------------------------------------------------------------------

PriorSpec = dict[str, Any]


def validate_priors(priors: Mapping[str, PriorSpec] | None, defaults: Mapping[str, PriorSpec]
                    ) -> dict[str, PriorSpec]:
    """Merge user prior specs over the defaults and check them.

    A spec is ``{"dist": <PyMC distribution name>, <parameter>: <number>, ...}``, e.g.
    ``{"dist": "Gamma", "alpha": 2.0, "beta": 1.0}``. Keys must be among the defaults' (so a
    typo cannot silently leave the default in place); values must be JSON numbers.
    """
    import pymc as pm

    out = {k: dict(v) for k, v in defaults.items()}
    for name, spec in (priors or {}).items():
        if name not in defaults:
            raise ValueError(f"unknown prior {name!r}; this model has priors for "
                             f"{sorted(defaults)}")
        if not isinstance(spec, Mapping) or "dist" not in spec:
            raise ValueError(f"prior {name!r} must be a dict with a 'dist' key, e.g. "
                             "{'dist': 'Gamma', 'alpha': 2.0, 'beta': 1.0}")
        dist = spec["dist"]
        cls = getattr(pm, str(dist), None)
        if not (isinstance(cls, type) and issubclass(cls, pm.Distribution)):
            raise ValueError(f"prior {name!r}: {dist!r} is not a PyMC distribution")
        for key, value in spec.items():
            if key != "dist" and not (isinstance(value, int | float)
                                      and not isinstance(value, bool)
                                      and math.isfinite(value)):
                raise ValueError(f"prior {name!r}: parameter {key!r} must be a finite "
                                 f"number, got {value!r}")
        out[name] = {"dist": str(dist), **{k: float(v) for k, v in spec.items()
                                           if k != "dist"}}
    json.dumps(out)  # guaranteed serialisable
    return out


def _prior_rv(name: str, spec: PriorSpec, **kwargs: Any) -> Any:
    import pymc as pm

    params = {k: v for k, v in spec.items() if k != "dist"}
    return getattr(pm, spec["dist"])(name, **params, **kwargs)


def _lognormal(mu: float, sigma: float) -> PriorSpec:
    return {"dist": "LogNormal", "mu": float(mu), "sigma": float(sigma)}


def _normal(mu: float, sigma: float) -> PriorSpec:
    return {"dist": "Normal", "mu": float(mu), "sigma": float(sigma)}


def _halfnormal(sigma: float) -> PriorSpec:
    return {"dist": "HalfNormal", "sigma": float(sigma)}


# --------------------------------------------------------------------------------------
# factored evaluation: the module's formula, computed on distinct values
# --------------------------------------------------------------------------------------

#: key of the finest grouping: one value per unique row
ROWS: frozenset[str] = frozenset({"__row__"})


class RowSpace:
    """Distinct values of each data column over the unique rows, and their combinations.

    ``columns`` maps a name (``"x"``, ``"tx"``, ``"T"``, ``"segment"`` …) to one value per
    row. A *key* is a set of column names; its *groups* are the distinct combinations of those
    columns that occur. Groups finer than ``dense_fraction`` of the rows are promoted to the
    rows themselves (gathering would not save anything).
    """

    def __init__(self, columns: Mapping[str, np.ndarray], *, dense_fraction: float = 0.5
                 ) -> None:
        self.n_rows = len(next(iter(columns.values())))
        self.dense_fraction = dense_fraction
        self.uniques: dict[str, np.ndarray] = {}
        self.codes: dict[str, np.ndarray] = {}
        for name, values in columns.items():
            uniq, inverse = np.unique(np.asarray(values), return_inverse=True)
            self.uniques[name] = uniq
            self.codes[name] = inverse.reshape(-1).astype(np.int64)
        self._groups: dict[frozenset[str], tuple[frozenset[str], np.ndarray, np.ndarray]] = {}
        self._gathers: dict[tuple[frozenset[str], frozenset[str]], Any] = {}
        #: turns an index array into what the backend indexes with (e.g. a pytensor constant)
        self.index_constant: Callable[[np.ndarray], Any] = lambda idx: idx

    def groups(self, key: frozenset[str]) -> tuple[frozenset[str], np.ndarray, np.ndarray]:
        """``(effective key, group of each row, first row of each group)``."""
        if key in self._groups:
            return self._groups[key]
        if ROWS <= key:
            rows = np.arange(self.n_rows)
            out = (ROWS, rows, rows)
        elif len(key) == 1:
            (name,) = key
            codes = self.codes[name]
            _, first = np.unique(codes, return_index=True)
            out = (key, codes, first)
        else:
            stacked = np.column_stack([self.codes[n] for n in sorted(key)])
            _, first, inverse = np.unique(stacked, axis=0, return_index=True,
                                          return_inverse=True)
            out = (key, inverse.reshape(-1), first)
            if len(first) > self.dense_fraction * self.n_rows:
                out = self.groups(ROWS)
        self._groups[key] = out
        return out

    def merge(self, *keys: frozenset[str]) -> frozenset[str]:
        """The effective key of the union of ``keys``."""
        return self.groups(frozenset().union(*keys))[0]

    def gather(self, src: frozenset[str], dst: frozenset[str]) -> Any:
        """Index taking values grouped by ``src`` to the (finer) groups of ``dst``."""
        pair = (src, dst)
        if pair not in self._gathers:
            _, src_of_row, _ = self.groups(src)
            _, _, dst_first = self.groups(dst)
            self._gathers[pair] = self.index_constant(src_of_row[dst_first])
        return self._gathers[pair]

    def variable(self, name: str, convert: Callable[[np.ndarray], Any] = lambda v: v
                 ) -> Factored:
        """Column ``name`` as a factored value (its distinct values, sorted)."""
        return Factored(convert(self.uniques[name].astype(float)), frozenset({name}), self)

    def segment_values(self, per_segment: Any, name: str = "segment") -> Factored:
        """Per-segment parameters (last axis = segment code) as a factored value."""
        codes = self.uniques[name].astype(np.int64)
        value = per_segment
        if not np.array_equal(codes, np.arange(len(codes))):
            value = _take(per_segment, self.index_constant(codes))
        return Factored(value, frozenset({name}), self)


def _take(value: Any, index: Any) -> Any:
    """``value[..., index]`` for numpy arrays and pytensor tensors."""
    if isinstance(value, np.ndarray | np.generic | float | int):
        return np.asarray(value)[..., index]
    if value.ndim <= 1:
        return value[index]
    import pytensor.tensor as pt

    return pt.take(value, index, axis=-1)


class Factored:
    """A per-row quantity stored once per group of rows that share the columns it uses.

    Arithmetic and the math namespace's functions act on the stored values; combining two
    factored values first gathers both to the groups of the union of their keys. ``rows()``
    gives the per-row values. Works with numpy arrays (posterior draws on leading axes) and
    pytensor tensors alike.
    """

    __array_ufunc__ = None  # make numpy defer to our reflected operators
    __slots__ = ("key", "space", "value")

    def __init__(self, value: Any, key: frozenset[str], space: RowSpace) -> None:
        self.value, self.key, self.space = value, key, space

    def at(self, key: frozenset[str]) -> Any:
        """The values gathered to the groups of ``key`` (a superset of this key)."""
        if key == self.key:
            return self.value
        return _take(self.value, self.space.gather(self.key, key))

    def rows(self) -> Any:
        """One value per row."""
        return self.at(ROWS)

    def __neg__(self) -> Factored:
        return lift(operator.neg, self)

    def __add__(self, other: Any) -> Factored:
        return lift(operator.add, self, other)

    def __radd__(self, other: Any) -> Factored:
        return lift(operator.add, other, self)

    def __sub__(self, other: Any) -> Factored:
        return lift(operator.sub, self, other)

    def __rsub__(self, other: Any) -> Factored:
        return lift(operator.sub, other, self)

    def __mul__(self, other: Any) -> Factored:
        return lift(operator.mul, self, other)

    def __rmul__(self, other: Any) -> Factored:
        return lift(operator.mul, other, self)

    def __truediv__(self, other: Any) -> Factored:
        return lift(operator.truediv, self, other)

    def __rtruediv__(self, other: Any) -> Factored:
        return lift(operator.truediv, other, self)

    def __pow__(self, other: Any) -> Factored:
        return lift(operator.pow, self, other)

    def __rpow__(self, other: Any) -> Factored:
        return lift(operator.pow, other, self)

    def __gt__(self, other: Any) -> Factored:
        return lift(operator.gt, self, other)

    def __ge__(self, other: Any) -> Factored:
        return lift(operator.ge, self, other)

    def __lt__(self, other: Any) -> Factored:
        return lift(operator.lt, self, other)

    def __le__(self, other: Any) -> Factored:
        return lift(operator.le, self, other)


def lift(fn: Callable[..., Any], *args: Any) -> Any:
    """Apply ``fn`` to arguments some of which are :class:`Factored` (on their common groups)."""
    factored = [a for a in args if isinstance(a, Factored)]
    if not factored:
        return fn(*args)
    space = factored[0].space
    key = space.merge(*(f.key for f in factored))
    values = [a.at(key) if isinstance(a, Factored) else a for a in args]
    return Factored(fn(*values), key, space)


def _pt_logaddexp(a: Any, b: Any) -> Any:
    """log(e^a + e^b) = max(a, b) + softplus(-|a - b|): stable, one exp and one log1p.

    ``pytensor.tensor.logaddexp`` is ``log(exp(a) + exp(b))`` (it relies on a graph rewrite
    for stability); this form also gives a cheaper gradient (a sigmoid).
    """
    import pytensor.tensor as pt

    return pt.maximum(a, b) + pt.softplus(-pt.abs(a - b))


def factored_namespace(m: SimpleNamespace) -> SimpleNamespace:
    """The math namespace ``m`` with every function lifted to accept :class:`Factored`."""
    funcs = dict(vars(m))
    if m.name == "pytensor":
        funcs["logaddexp"] = _pt_logaddexp
    out: dict[str, Any] = {}
    for name, f in funcs.items():
        if callable(f):
            out[name] = (lambda f_: lambda *args: lift(f_, *args))(f)
        else:
            out[name] = f
    out["name"] = f"{m.name}+factored"
    return SimpleNamespace(**out)


# --------------------------------------------------------------------------------------
# compression with segments
# --------------------------------------------------------------------------------------


@dataclass
class Rows:
    """Unique rows of the columns a model's likelihood reads, with weights.

    ``columns`` holds one array per data column (``x, tx, T`` or ``x, mx``) and, for a
    hierarchical model, ``segment`` (integer codes as floats). ``inverse`` maps each customer
    of ``index`` to its row (``-1`` for customers the model does not use, e.g. spend models
    skip ``x = 0``).
    """

    columns: dict[str, np.ndarray]
    weights: np.ndarray
    inverse: np.ndarray
    index: pd.Index
    time_unit: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return len(self.weights)

    @property
    def n_customers(self) -> int:
        return int(self.weights.sum())


# --------------------------------------------------------------------------------------
# the shared Bayesian model
# --------------------------------------------------------------------------------------


class _HierLatent(SimpleNamespace):
    """One unconstrained latent of the hierarchical parametrisation (name, default priors)."""


def _between_variance(est: np.ndarray, se: np.ndarray) -> float:
    """Between-segment variance tau^2 of estimates with standard errors ``se``: the
    DerSimonian-Laird (1986) moment estimator, max(0, (Q - (k-1)) / (S1 - S2 / S1)) with
    precision weights w = 1/se^2, Q = sum w (est - weighted mean)^2, S1 = sum w,
    S2 = sum w^2. Unlike the plain variance of the estimates minus their mean squared error,
    a noisy small segment does not inflate it."""
    w = 1.0 / se**2
    s1 = w.sum()
    mean = float(np.sum(w * est) / s1)
    q = float(np.sum(w * (est - mean) ** 2))
    denom = s1 - float(np.sum(w**2)) / s1
    return max(0.0, (q - (len(est) - 1)) / denom) if denom > 0 else 0.0


class BayesianModel(BaseModel):
    """Everything a Bayesian model shares: priors, PyMC model, sampling, summaries,
    predictions over posterior draws, LOO and netCDF persistence.

    A subclass sets :attr:`param_names`, :attr:`data_columns` (the likelihood's data
    columns), :attr:`latents` (its unconstrained hierarchical parametrisation) and provides
    ``_loglik(p, d, m)`` — the MLE twin's hook, i.e. the model module's own
    log-likelihood — plus ``_default_priors``, ``_natural_from_latent`` and ``_rows``.

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
        (the model is the same whatever the choice; only the sampler's geometry changes):

        * ``"auto"`` (default): partially non-centred per segment and latent,
          ``u_s = mu + sigma^(1-w) (t_s - w mu)`` with ``t_s ~ Normal(w mu, sigma^w)``
          (Gorinova, Moore & Hoffman 2020, "Automatic reparameterisation of probabilistic
          programs"). The weight ``w = tau^2 / (tau^2 + se_s^2)`` compares how well the
          segment's own data pin ``u_s`` down (``se_s``, from a quick maximum-likelihood fit
          of the MLE twin on that segment alone) with the spread of the segments
          (``tau^2``, moment estimate from those fits): small or similar segments get
          ``w ≈ 0`` — the non-centred form ``u_s = mu + sigma z_s`` — and large, distinct ones
          ``w ≈ 1`` — the centred form. Stored in :attr:`centering_`.
        * ``"non_centered"``: ``w = 0`` everywhere (best when segments are small or similar);
        * ``"centered"``: ``w = 1`` everywhere (best when every segment has so much data
          that its parameters are pinned down by the likelihood).
    """

    is_bayesian: ClassVar[bool] = True
    bayesian: ClassVar[bool] = True
    #: name of the data columns the likelihood reads, in ``Rows.columns``
    data_columns: ClassVar[tuple[str, ...]] = ()
    #: name of the column used as the CustomDist's observed value
    observed_column: ClassVar[str] = ""
    #: the hierarchical latents: ``(name, default mu prior builder, default sigma prior)``
    latents: ClassVar[tuple[str, ...]] = ()

    def __init__(self, priors: Mapping[str, PriorSpec] | None = None,
                 segment_col: str | None = None,
                 parametrization: Literal["auto", "non_centered", "centered"] = "auto"
                 ) -> None:
        if priors is not None and not isinstance(priors, Mapping):
            raise ValueError("priors must be a dict of prior specs or None")
        if segment_col is not None and not isinstance(segment_col, str):
            raise ValueError("segment_col must be a column name or None")
        if parametrization not in ("auto", "non_centered", "centered"):
            raise ValueError("parametrization must be 'auto', 'non_centered' or 'centered'")
        self.priors = None if priors is None else {k: dict(v) for k, v in priors.items()}
        self.segment_col = segment_col
        self.parametrization = parametrization

    # ---- to be provided by the model -------------------------------------------------
    def _loglik(self, p: dict[str, Any], d: Any, m: Any) -> Any:
        raise NotImplementedError

    def _default_priors(self, rows: Rows) -> dict[str, PriorSpec]:
        """Default priors for a non-hierarchical fit (natural parameters)."""
        raise NotImplementedError

    #: scale of the default HalfNormal hyperprior of every ``sigma_<latent>``
    _sigma_scale: ClassVar[float] = 1.0

    def _default_mu_priors(self, rows: Rows | None) -> dict[str, PriorSpec]:
        """Default priors of the population means ``mu_<latent>``, keyed by latent."""
        raise NotImplementedError

    def _default_hyperpriors(self, rows: Rows | None) -> dict[str, PriorSpec]:
        """Default hyperpriors ``mu_<latent>``, ``sigma_<latent>`` for a hierarchical fit."""
        mus = self._default_mu_priors(rows)
        out: dict[str, PriorSpec] = {}
        for u in self.latents:
            out[f"mu_{u}"] = mus[u]
            out[f"sigma_{u}"] = _halfnormal(self._sigma_scale)
        return out

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

    def _rows(self, rfm: pd.DataFrame, *, fitting: bool) -> Rows:
        """Validate ``rfm`` and compress it to the likelihood's unique rows."""
        raise NotImplementedError

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
        import copy

        probe = copy.copy(self)  # resolving against rfm must not set learned attributes
        rows = probe._rows(rfm, fitting=True) if rfm is not None else None
        if self.hierarchical:
            return self._default_hyperpriors(rows)  # type: ignore[arg-type]
        return self._default_priors(rows)  # type: ignore[arg-type]

    def _segment_codes(self, rfm: pd.DataFrame, *, fitting: bool,
                       unseen: Literal["raise", "population"] = "raise") -> np.ndarray:
        """Integer code of each customer's segment (``-1``: unseen, population level)."""
        if not self.hierarchical:
            return np.zeros(len(rfm), dtype=np.int64)
        col = self.segment_col
        if col not in rfm.columns:
            raise ValidationError(f"column {col!r} (segment_col) is missing from the RFM frame")
        values = rfm[col]
        if values.isna().any():
            bad = rfm.loc[values.isna(), [col]].head(5)
            raise ValidationError(f"column {col!r}: missing segment labels in rows\n"
                                  f"{bad.to_string()}")
        if fitting:
            labels = pd.Index(pd.unique(values)).sort_values()
            self.segment_labels_ = [_plain(v) for v in labels]
        labels = pd.Index(self.segment_labels_)
        codes = labels.get_indexer(values.map(_plain))
        if np.any(codes < 0):
            unseen_labels = sorted({str(v) for v in values[codes < 0].unique()})
            if unseen == "population":
                return codes
            raise ValueError(
                f"segment(s) {unseen_labels[:10]} in column {col!r} were not seen when the "
                f"model was fitted (known: {[str(s) for s in self.segment_labels_][:20]}); "
                "pass unseen_segments='population' to predict them from the population "
                "level (a new segment drawn from the fitted hyperdistribution)"
            )
        return codes.astype(np.int64)

    # ---- hierarchical parametrisation ---------------------------------------------------
    def _choose_centering(self, rfm: pd.DataFrame) -> pd.DataFrame:
        """Centring weight w in [0, 1] per (segment, latent): see ``parametrization``."""
        labels = pd.Index([str(v) for v in self.segment_labels_], name=self.segment_col)
        shape = (len(labels), len(self.latents))
        if self.parametrization != "auto":
            w = np.full(shape, 1.0 if self.parametrization == "centered" else 0.0)
            return pd.DataFrame(w, index=labels, columns=list(self.latents))
        est, se = self._segment_mle_latents(rfm)
        ok = np.isfinite(est) & np.isfinite(se)
        w = np.zeros(shape)
        for j in range(shape[1]):
            k = ok[:, j] & (se[:, j] > 0)
            if k.sum() < 2:
                continue  # the spread of the segments cannot be estimated: non-centred
            tau2 = _between_variance(est[k, j], se[k, j])
            w[k, j] = tau2 / (tau2 + se[k, j] ** 2) if tau2 > 0 else 0.0
        w = np.where(w > 0.99, 1.0, np.where(w < 0.01, 0.0, np.round(w, 3)))
        return pd.DataFrame(w, index=labels, columns=list(self.latents))

    def _segment_mle_latents(self, rfm: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Per segment: the MLE twin's latents and their standard errors (delta method on
        the MLE's covariance of log-parameters); NaN where a segment's fit fails."""
        n_seg, n_lat = len(self.segment_labels_), len(self.latents)
        est, se = np.full((n_seg, n_lat), np.nan), np.full((n_seg, n_lat), np.nan)
        codes = self._segment_codes(rfm, fitting=False)
        names = list(self.param_names)

        def latents(log_theta: np.ndarray) -> np.ndarray:
            nat = dict(zip(names, np.exp(log_theta), strict=True))
            lat = self._latent_from_natural(nat)
            return np.array([float(lat[u]) for u in self.latents])

        for s_ in range(n_seg):
            part = rfm[codes == s_]
            if len(part) < MIN_SEGMENT_FOR_MLE:
                continue
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    mle = self._mle_class().fit(part)  # type: ignore[misc]
            except (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError):
                continue  # no usable fit: this segment is sampled non-centred
            if not getattr(mle, "converged_", False):
                continue
            theta = mle.params_[names].to_numpy(float)
            cov = mle.covariance_.loc[names, names].to_numpy(float) / np.outer(theta, theta)
            lt = np.log(theta)
            with np.errstate(all="ignore"):
                g0 = latents(lt)
                h = 1e-6
                jac = np.empty((n_lat, len(names)))
                for i in range(len(names)):
                    step = np.zeros(len(names))
                    step[i] = h
                    jac[:, i] = (latents(lt + step) - latents(lt - step)) / (2 * h)
                var = np.einsum("ij,jk,ik->i", jac, cov, jac)
            est[s_] = g0
            se[s_] = np.where(var >= 0, np.sqrt(np.abs(var)), np.nan)
        return est, se

    # ---- building the PyMC model -----------------------------------------------------
    def _declare_params(self, n_segments: int) -> dict[str, Any]:
        """Declare the priors and return the natural parameters (scalars or per segment)."""
        import pymc as pm
        import pytensor.tensor as pt

        priors = self.priors_
        if not self.hierarchical:
            return {name: _prior_rv(name, priors[name]) for name in self.param_names}
        latent = {}
        for u in self.latents:
            mu = _prior_rv(f"mu_{u}", priors[f"mu_{u}"])
            sigma = _prior_rv(f"sigma_{u}", priors[f"sigma_{u}"])
            w = self.centering_[u].to_numpy(float)
            if np.all(w == 1.0):  # centred
                latent[u] = pm.Normal(u, mu, sigma, dims="segment")
            elif np.all(w == 0.0):  # non-centred
                z = pm.Normal(f"z_{u}", 0.0, 1.0, dims="segment")
                latent[u] = mu + sigma * z
            else:  # partially centred: u_s = mu + sigma^(1-w) (t_s - w mu) ~ Normal(mu, sigma)
                t = pm.Normal(f"t_{u}", w * mu, sigma ** w, dims="segment")
                latent[u] = mu + sigma ** (1.0 - w) * (t - w * mu)
        xp = SimpleNamespace(exp=pt.exp, sigmoid=pt.sigmoid)
        natural = self._natural_from_latent(latent, xp)
        return {name: pm.Deterministic(name, natural[name], dims="segment")
                for name in self.param_names}

    def _build_model(self, rows: Rows) -> pm.Model:
        import pymc as pm
        import pytensor.tensor as pt

        from clvmodels.models._math import tensor_namespace

        coords: dict[str, Any] = {"row": np.arange(rows.n_rows)}
        if self.hierarchical:
            coords["segment"] = [str(s) for s in self.segment_labels_]
        space = RowSpace(rows.columns)
        space.index_constant = pt.as_tensor_variable
        fm = factored_namespace(tensor_namespace())
        weights = pt.as_tensor_variable(rows.weights.astype(float))
        names = self.param_names
        hier = self.hierarchical

        def logp(value: Any, *params: Any) -> Any:
            if hier:  # params arrive as (1, n_segments): see the CustomDist signature
                p = {n: space.segment_values(v[0]) for n, v in zip(names, params, strict=True)}
            else:
                p = dict(zip(names, params, strict=True))
            d = SimpleNamespace(**{c: space.variable(c, pt.as_tensor_variable)
                                   for c in self.data_columns})
            ll = self._loglik(p, d, fm)
            if isinstance(ll, Factored):
                ll = ll.rows()
            return weights * ll

        with pm.Model(coords=coords) as model:
            params = self._declare_params(len(coords.get("segment", ())))
            args = [params[n] for n in names]
            if hier:
                args = [a[None, :] for a in args]
                signature = ",".join(["(s)"] * len(names)) + "->()"
            else:
                signature = ",".join(["()"] * len(names)) + "->()"
            pm.CustomDist("likelihood", *args, logp=logp,
                          observed=rows.columns[self.observed_column],
                          signature=signature, dims="row")
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
    ) -> BayesianModel:
        """Sample the posterior with NUTS on the unique rows of ``rfm`` (weighted).

        Parameters
        ----------
        draws, tune, chains
            Posterior draws kept per chain, tuning iterations per chain, number of chains.
        random_seed
            Seed for reproducible sampling.
        sampler
            ``"nutpie"`` (default: compiled with numba, with a low-rank mass matrix that
            adapts to the strong posterior correlations of these models — r with alpha, a
            with b — so it needs ~3 leapfrog steps per draw instead of ~10) or ``"pymc"``
            (PyMC's NUTS with a full mass matrix, the fallback when nutpie is unavailable).
        cores
            Chains run in parallel (default: min(chains, CPU count)).
        target_accept
            NUTS's target acceptance rate (smaller steps when higher). Default 0.8, and 0.9
            for hierarchical models, whose hyper-scale funnels need the smaller steps: on
            200k customers in 10 segments 0.9 gave 3x the worst-parameter ESS per second of
            0.8 (and 0.95 less than 0.9).
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
        rows = self._rows(rfm, fitting=True)
        if rows.n_rows == 0:
            raise ValidationError("no customers to fit on")
        defaults = (self._default_hyperpriors(rows) if self.hierarchical
                    else self._default_priors(rows))
        self.priors_ = validate_priors(self.priors, defaults)
        self.time_unit_ = rows.time_unit
        if self.hierarchical:
            self.centering_ = self._choose_centering(rfm)
        model = self._build_model(rows)
        cores = min(chains, os.cpu_count() or 1) if cores is None else int(cores)
        timings: dict[str, float] = {"prepare_s": time.perf_counter() - started}
        if sampler == "nutpie":
            try:
                import nutpie  # noqa: F401
            except ImportError:
                warnings.warn("nutpie is not installed: sampling with PyMC instead",
                              UserWarning, stacklevel=2)
                sampler = "pymc"
        if sampler == "nutpie":
            idata = self._sample_nutpie(model, draws, tune, chains, cores, random_seed,
                                        target_accept, progressbar, timings)
        else:
            idata = self._sample_pymc(model, draws, tune, chains, cores, random_seed,
                                      target_accept, progressbar, timings)
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

    def _sample_nutpie(self, model: pm.Model, draws: int, tune: int, chains: int, cores: int,
                       seed: int | None, target_accept: float, progressbar: bool,
                       timings: dict[str, float]) -> az.InferenceData:
        import nutpie

        t0 = time.perf_counter()
        compiled = nutpie.compile_pymc_model(model, backend="numba")
        timings["compile_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=cores,
                              seed=seed, progress_bar=progressbar, save_warmup=False,
                              low_rank_modified_mass_matrix=True,
                              target_accept=target_accept)
        timings["sample_s"] = time.perf_counter() - t0
        return idata

    def _sample_pymc(self, model: pm.Model, draws: int, tune: int, chains: int, cores: int,
                     seed: int | None, target_accept: float, progressbar: bool,
                     timings: dict[str, float]) -> az.InferenceData:
        import logging

        import pymc as pm

        t0 = time.perf_counter()
        logger = logging.getLogger("pymc")
        level = logger.level
        if not progressbar:
            logger.setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*QuadPotentialFullAdapt.*")
            try:
                idata = pm.sample(model=model, draws=draws, tune=tune, chains=chains,
                                  cores=cores, random_seed=seed, progressbar=progressbar,
                                  init="jitter+adapt_full", target_accept=target_accept,
                                  compute_convergence_checks=False,
                                  idata_kwargs={"log_likelihood": False})
            finally:
                logger.setLevel(level)
        # pymc compiles inside pm.sample: its compile time is part of this figure
        timings["sample_s"] = time.perf_counter() - t0
        return idata

    def _add_data_groups(self, rows: Rows) -> None:
        """The unique rows and weights as ``observed_data`` / ``constant_data``."""
        import xarray as xr

        coords = {"row": np.arange(rows.n_rows)}
        obs = xr.Dataset({"likelihood": ("row", rows.columns[self.observed_column])},
                         coords=coords)
        const = xr.Dataset({name: ("row", values) for name, values in rows.columns.items()
                            if name != self.observed_column}, coords=coords)
        const["weight"] = ("row", rows.weights.astype(np.int64))
        self.idata_.add_groups(observed_data=obs, constant_data=const)

    def compute_log_likelihood(self) -> None:
        """Add the pointwise log-likelihood (``weight × LL`` per unique row) to ``idata_``.

        Evaluated by PyMC from the model's own ``logp``; memory is draws × unique rows.
        """
        self._check_fitted()
        import pymc as pm

        model = self._pymc_model()
        ll = pm.compute_log_likelihood(self.idata_, model=model, var_names=["likelihood"],
                                       extend_inferencedata=False, progressbar=False)
        if "log_likelihood" in self.idata_.groups():
            del self.idata_.log_likelihood
        if hasattr(ll, "groups"):  # an InferenceData (older PyMC) or the Dataset itself
            ll = ll.log_likelihood
        self.idata_.add_groups(log_likelihood=ll)

    def _pymc_model(self) -> pm.Model:
        model = getattr(self, "_model", None)
        if model is None:
            rows = self._rows_from_idata()
            model = self._model = self._build_model(rows)
        return model

    def _rows_from_idata(self) -> Rows:
        if "constant_data" not in self.idata_.groups():
            raise ValueError("this model was saved without its data; refit it, or save with "
                             "save(path, include_data=True) to compute LOO after loading")
        const = self.idata_.constant_data
        columns = {c: (self.idata_.observed_data["likelihood"].to_numpy()
                       if c == self.observed_column else const[c].to_numpy())
                   for c in (*self.data_columns, *(("segment",) if self.hierarchical else ()))}
        weights = const["weight"].to_numpy()
        return Rows(columns, weights, np.arange(len(weights)), pd.RangeIndex(len(weights)),
                    self.time_unit_)

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

    def _segment_sizes(self) -> np.ndarray:
        rows = getattr(self, "_fit_rows", None)
        if rows is None:
            return np.asarray(self.fit_info_.get("segment_sizes",
                                                 [0] * len(self.segment_labels_)))
        sizes = np.bincount(rows.columns["segment"].astype(np.int64), weights=rows.weights,
                            minlength=len(self.segment_labels_)).astype(np.int64)
        return sizes

    def _summary_vars(self) -> list[str]:
        if self.hierarchical:
            return [*[f"mu_{u}" for u in self.latents], *[f"sigma_{u}" for u in self.latents],
                    *self.param_names]
        return list(self.param_names)

    def summary(self, hdi_prob: float = 0.94) -> pd.DataFrame:
        """Posterior table: mean, sd, HDI, MCSE, bulk/tail ESS and R-hat per parameter.

        ``attrs`` carry the divergence count, number of chains and draws, timings and the
        time unit. For a hierarchical model the per-segment rows are labelled
        ``r[segment]``.
        """
        self._check_fitted()
        import arviz as az

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = az.summary(self.idata_, var_names=self._summary_vars(), hdi_prob=hdi_prob,
                             round_to="none")
        out.attrs.update(self.diagnostics_)
        out.attrs["time_unit"] = self.time_unit_
        out.attrs["timings"] = dict(getattr(self, "fit_timings_", {}))
        return out

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
        import arviz as az

        post = self.idata_.posterior
        chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
        stats = self.idata_.sample_stats
        div_name = "diverging" if "diverging" in stats else None
        divergences = int(stats[div_name].sum()) if div_name else 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = post[self._summary_vars()]
            rhat = az.rhat(ds) if chains > 1 else None
            ess_b = az.ess(ds, method="bulk")
            ess_t = az.ess(ds, method="tail")

        def extreme(d: Any, fn: Callable[..., Any]) -> float:
            vals = np.concatenate([np.ravel(d[v].to_numpy()) for v in d.data_vars])
            vals = vals[np.isfinite(vals)]
            return float(fn(vals)) if len(vals) else float("nan")

        self.diagnostics_ = {
            "chains": chains,
            "draws": draws,
            "divergences": divergences,
            "max_rhat": extreme(rhat, np.max) if rhat is not None else float("nan"),
            "min_ess_bulk": extreme(ess_b, np.min),
            "min_ess_tail": extreme(ess_t, np.min),
        }
        if not warn:
            return
        problems = []
        d = self.diagnostics_
        if d["max_rhat"] > MAX_RHAT:
            problems.append(f"R-hat up to {d['max_rhat']:.3f} (> {MAX_RHAT})")
        low = MIN_ESS_PER_CHAIN * chains
        if min(d["min_ess_bulk"], d["min_ess_tail"]) < low:
            problems.append(f"effective sample size as low as "
                            f"{min(d['min_ess_bulk'], d['min_ess_tail']):.0f} (< {low})")
        if divergences:
            problems.append(f"{divergences} divergent transitions")
        if problems:
            warnings.warn(
                f"{type(self).__name__}: " + "; ".join(problems) + ". The posterior may be "
                "unreliable: sample longer (more tune/draws), raise target_accept (e.g. "
                "0.95), use more chains, or tighten the priors.",
                SamplingWarning,
                stacklevel=3,
            )

    # ---- posterior draws -------------------------------------------------------------
    @property
    def _n_draws(self) -> int:
        post = self.idata_.posterior
        return int(post.sizes["chain"] * post.sizes["draw"])

    def _param_draws(self) -> dict[str, np.ndarray]:
        """Flattened draws: ``(S,)`` per parameter, or ``(S, n_segments)`` hierarchical."""
        cache = getattr(self, "_draws_cache", None)
        if cache is None:
            post = self.idata_.posterior
            S = self._n_draws
            cache = {n: np.ascontiguousarray(post[n].to_numpy().reshape(S, -1)).squeeze(-1)
                     if not self.hierarchical
                     else np.ascontiguousarray(post[n].to_numpy().reshape(S, -1))
                     for n in self.param_names}
            self._draws_cache = cache
        return cache

    def _new_segment_draws(self, random_seed: int | None = 0) -> dict[str, np.ndarray]:
        """One draw of a new, unseen segment's parameters per posterior draw, shape (S,)."""
        post = self.idata_.posterior
        S = self._n_draws
        rng = np.random.default_rng(random_seed)
        u = {}
        for name in self.latents:
            mu = post[f"mu_{name}"].to_numpy().reshape(S)
            sigma = post[f"sigma_{name}"].to_numpy().reshape(S)
            u[name] = mu + sigma * rng.standard_normal(S)
        xp = SimpleNamespace(exp=np.exp, sigmoid=special.expit)
        return self._natural_from_latent(u, xp)

    def _row_params(self, codes: np.ndarray | None, extra_axes: int = 0) -> dict[str, np.ndarray]:
        """Parameter draws broadcastable against customers: ``(S, 1)`` or ``(S, n)``.

        ``codes`` are segment codes per customer (``-1``: a new segment, population level).
        ``extra_axes`` trailing singleton axes are appended (for horizons).
        """
        draws = self._param_draws()
        tail = (1,) * extra_axes
        if not self.hierarchical or codes is None:
            return {n: v.reshape(-1, 1, *tail) for n, v in draws.items()}
        out = {}
        new = None
        if np.any(codes < 0):
            new = self._new_segment_draws()
        for n, v in draws.items():
            if new is not None:
                v = np.concatenate([v, new[n][:, None]], axis=1)
            idx = np.where(codes < 0, v.shape[1] - 1, codes)
            out[n] = v[:, idx].reshape(v.shape[0], len(codes), *tail)
        return out

    # ---- prediction engine -----------------------------------------------------------
    def _chunks(self, n: int, per_item: int) -> Iterator[slice]:
        step = max(1, CHUNK_CELLS // max(1, self._n_draws * per_item))
        for start in range(0, n, step):
            yield slice(start, min(n, start + step))

    def _reduce(self, compute: Callable[[slice], np.ndarray], n: int, name: str,
                interval: float | None, index: pd.Index, per_item: int = 1
                ) -> pd.Series | pd.DataFrame:
        """Posterior mean (and central interval) of ``compute(chunk) -> (S, chunk)``."""
        if interval is not None and not 0 < interval < 1:
            raise ValueError(f"interval must be in (0, 1), got {interval!r}")
        mean = np.empty(n)
        lower = np.empty(n) if interval else None
        upper = np.empty(n) if interval else None
        for sl in self._chunks(n, per_item):
            vals = compute(sl)
            mean[sl] = vals.mean(axis=0)
            if interval:
                q = (1 - interval) / 2
                lo, hi = np.quantile(vals, [q, 1 - q], axis=0)
                lower[sl], upper[sl] = lo, hi  # type: ignore[index]
        if not interval:
            return pd.Series(mean, index=index, name=name)
        return pd.DataFrame({name: mean, f"{name}_lower": lower, f"{name}_upper": upper},
                            index=index)

    def _draws_array(self, compute: Callable[[slice], np.ndarray], n: int, index: pd.Index,
                     name: str, per_item: int = 1) -> xr.DataArray:
        """All draws of ``compute`` as a DataArray (chain, draw, customer_id)."""
        import xarray as xr

        post = self.idata_.posterior
        chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
        out = np.empty((chains * draws, n))
        for sl in self._chunks(n, per_item):
            out[:, sl] = compute(sl)
        dim = index.name or "customer_id"
        return xr.DataArray(out.reshape(chains, draws, n), dims=("chain", "draw", "customer_id"),
                            coords={"chain": post["chain"].to_numpy(),
                                    "draw": post["draw"].to_numpy(),
                                    "customer_id": index.to_numpy()},
                            name=name, attrs={"index_name": str(dim)})

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

    # ---- persistence -----------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, include_data: bool = False,
             overwrite: bool = True) -> Path:
        """Save the posterior as netCDF (no pickle).

        Stored: ``posterior`` and ``sample_stats``, and as attributes the model class, the
        priors (JSON), segment column and labels, time unit, package version, diagnostics and
        timings. The RFM data (unique rows, weights) and the pointwise log-likelihood are
        stored only with ``include_data=True``.
        """
        self._check_fitted()
        import arviz as az

        from clvmodels import __version__

        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
        groups = {"posterior": self.idata_.posterior, "sample_stats": self.idata_.sample_stats}
        if include_data:
            for g in ("observed_data", "constant_data", "log_likelihood"):
                if g in self.idata_.groups():
                    groups[g] = getattr(self.idata_, g)
        idata = az.InferenceData(**groups)
        meta = {
            "format": "clvmodels-bayes",
            "format_version": 1,
            "model": type(self).__name__,
            "package_version": __version__,
            "time_unit": self.time_unit_,
            "priors": self.priors_,
            "user_priors": self.priors,
            "segment_col": self.segment_col,
            "parametrization": self.parametrization,
            "segment_labels": getattr(self, "segment_labels_", None),
            "centering": (self.centering_.to_numpy().tolist() if self.hierarchical
                          else None),
            "fit_info": {
                "n_customers": self.n_customers_,
                "n_unique_rows": self.n_unique_rows_,
                "sampler": self.sampler_,
                "timings": getattr(self, "fit_timings_", {}),
                "diagnostics": self.diagnostics_,
                "segment_sizes": (self._segment_sizes().tolist() if self.hierarchical
                                  else None),
                **self._extra_fit_info(),
            },
        }
        idata.posterior.attrs["clvmodels"] = json.dumps(meta)
        tmp = path.with_name(path.name + ".tmp")
        idata.to_netcdf(str(tmp))
        os.replace(tmp, path)
        return path

    def _extra_fit_info(self) -> dict[str, Any]:
        return {}

    @classmethod
    def _from_idata(cls, idata: az.InferenceData, meta: dict[str, Any]) -> BayesianModel:
        model = cls(priors=meta.get("user_priors"), segment_col=meta.get("segment_col"),
                    parametrization=meta.get("parametrization", "non_centered"))
        model.priors_ = meta["priors"]
        model.time_unit_ = meta.get("time_unit")
        if meta.get("segment_labels") is not None:
            model.segment_labels_ = list(meta["segment_labels"])
            w = meta.get("centering")
            if w is None:  # written before partial centring existed
                w = np.full((len(model.segment_labels_), len(cls.latents)),
                            1.0 if model.parametrization == "centered" else 0.0)
            model.centering_ = pd.DataFrame(
                w, columns=list(cls.latents),
                index=pd.Index([str(v) for v in model.segment_labels_],
                               name=model.segment_col))
        info = meta.get("fit_info", {})
        model.fit_info_ = info
        model.n_customers_ = info.get("n_customers")
        model.n_unique_rows_ = info.get("n_unique_rows")
        model.sampler_ = info.get("sampler")
        model.fit_timings_ = info.get("timings", {})
        model.idata_ = idata
        model._draws_cache = None
        model._load_extra_fit_info(info)
        model._set_params()
        model._diagnose(warn=False)
        return model

    def _load_extra_fit_info(self, info: dict[str, Any]) -> None:
        return None

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            ps = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            seg = f", {len(self.segment_labels_)} segments" if self.hierarchical else ""
            return f"{type(self).__name__}({ps}{seg}; posterior means)"
        return f"{type(self).__name__}(unfitted)"


def _plain(value: Any) -> Any:
    """A segment label as a JSON-friendly Python scalar."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def load_netcdf_model(path: str | os.PathLike) -> BayesianModel:
    """Load a Bayesian model saved with ``model.save(path)`` (netCDF)."""
    import arviz as az

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such model file: {path}")
    idata = az.from_netcdf(str(path))
    idata.load() if hasattr(idata, "load") else None
    raw = idata.posterior.attrs.get("clvmodels") if "posterior" in idata.groups() else None
    if raw is None:
        raise ValueError(f"{path} is not a clvmodels Bayesian model file")
    meta = json.loads(raw)
    name = meta.get("model")
    # make sure the Bayesian model classes are registered
    import clvmodels.models.bayes_bgnbd
    import clvmodels.models.bayes_gammagamma  # noqa: F401

    cls = _REGISTRY.get(name)
    if cls is None or not issubclass(cls, BayesianModel):
        raise ValueError(f"{path}: unknown Bayesian model type {name!r}")
    return cls._from_idata(idata, meta)


def check_new_customer_horizon(t: float | np.ndarray) -> np.ndarray:
    """Validate a horizon for new-customer predictions (non-negative)."""
    return check_horizon(t)


# --------------------------------------------------------------------------------------
# transaction models: compressed rows and posterior predictions
# --------------------------------------------------------------------------------------

UnseenSegments = Literal["raise", "population"]


class BayesianTransactionModel(BayesianModel):
    """Posterior predictions shared by the Bayesian transaction models (BG/NBD family).

    The model supplies the same hooks as its MLE twin — ``_probability_alive(p, x, tx, T)``,
    ``_expected_purchases(p, x, tx, T, t)``, ``_expected_new(p, t)`` — and they are evaluated
    with parameter draws shaped ``(S, n[, k])`` against customers, in chunks of unique
    customer rows so memory stays bounded (:data:`CHUNK_CELLS`). Each prediction returns the
    posterior mean; ``interval=0.9`` adds the central 90% credible interval as
    ``<name>_lower`` / ``<name>_upper`` columns; ``*_draws`` returns every draw as a
    DataArray ``(chain, draw, customer_id)``. With a hierarchical model each customer uses
    its own segment's parameters.
    """

    data_columns = ("x", "tx", "T")
    observed_column = "x"

    # ---- data ------------------------------------------------------------------------
    def _rows(self, rfm: pd.DataFrame, *, fitting: bool,
              unseen: UnseenSegments = "raise", extra: np.ndarray | None = None) -> Rows:
        from clvmodels.models.base import rfm_arrays

        x, tx, T, index = rfm_arrays(rfm, time_unit=None if fitting else self.time_unit_)
        codes = self._segment_codes(rfm, fitting=fitting, unseen=unseen)
        # sorted by (segment, x, T, t_x): rows sharing (segment, x, T) are adjacent
        cols = [codes.astype(float), x, T, tx] + ([extra] if extra is not None else [])
        uniq, inverse, counts = unique_rows(cols)
        columns = {"x": uniq[1], "tx": uniq[3], "T": uniq[2]}
        if self.hierarchical:
            columns["segment"] = uniq[0]
        out = Rows(columns, counts.astype(np.int64), inverse, index,
                   rfm.attrs.get("time_unit") if fitting else self.time_unit_)
        out.extra["codes"] = uniq[0].astype(np.int64)
        if extra is not None:
            out.extra["t"] = uniq[4]
        return out

    # ---- per-row kernels (S, chunk[, k]) -------------------------------------------------
    def _params_for(self, rows: Rows, sl: slice, extra_axes: int = 0) -> dict[str, np.ndarray]:
        codes = rows.extra["codes"][sl] if self.hierarchical else None
        return self._row_params(codes, extra_axes)

    def _palive_rows(self, rows: Rows, sl: slice) -> np.ndarray:
        c = rows.columns
        p = self._params_for(rows, sl)
        return np.broadcast_to(self._probability_alive(p, c["x"][sl], c["tx"][sl], c["T"][sl]),
                               (self._n_draws, sl.stop - sl.start))

    def _purchases_rows(self, rows: Rows, sl: slice, times: np.ndarray) -> np.ndarray:
        """Cumulative expected purchases at ``times``: shape (S, chunk, k)."""
        c = rows.columns
        p = self._params_for(rows, sl, extra_axes=1)
        x, tx, T = (c[n][sl, None] for n in ("x", "tx", "T"))
        out = self._expected_purchases(p, x, tx, T, times[None, :])
        return np.broadcast_to(out, (self._n_draws, sl.stop - sl.start, len(times)))

    # ---- public predictions ----------------------------------------------------------
    def probability_alive(self, rfm: pd.DataFrame, interval: float | None = None, *,
                          unseen_segments: UnseenSegments = "raise"
                          ) -> pd.Series | pd.DataFrame:
        """Posterior mean of P(alive | frequency, recency, T) per customer [+ interval]."""
        self._check_fitted()
        rows = self._rows(rfm, fitting=False, unseen=unseen_segments)
        res = self._reduce(lambda sl: self._palive_rows(rows, sl), rows.n_rows,
                           "probability_alive", interval, pd.RangeIndex(rows.n_rows))
        return _expand(res, rows)

    def probability_alive_draws(self, rfm: pd.DataFrame, *,
                                unseen_segments: UnseenSegments = "raise") -> xr.DataArray:
        """Every posterior draw of P(alive): DataArray (chain, draw, customer_id)."""
        self._check_fitted()
        rows = self._rows(rfm, fitting=False, unseen=unseen_segments)
        return self._expanded_draws(lambda sl: self._palive_rows(rows, sl), rows,
                                    "probability_alive")

    def _horizon_rows(self, rfm: pd.DataFrame, t: float | np.ndarray,
                      unseen: UnseenSegments) -> tuple[Rows, np.ndarray | None]:
        t_arr = check_horizon(t)
        if t_arr.ndim == 0:
            return self._rows(rfm, fitting=False, unseen=unseen), t_arr.reshape(1)
        if t_arr.shape != (len(rfm),):
            raise ValueError("t must be a scalar or have one value per customer")
        return self._rows(rfm, fitting=False, unseen=unseen, extra=t_arr), None

    def _purchases_at(self, rows: Rows, times: np.ndarray | None, sl: slice) -> np.ndarray:
        if times is not None:
            return self._purchases_rows(rows, sl, times)[..., 0]
        # one horizon per row: evaluate the rows' distinct horizons, keep each row's own
        t_rows = rows.extra["t"][sl]
        uniq, pos = np.unique(t_rows, return_inverse=True)
        vals = self._purchases_rows(rows, sl, uniq)
        return np.take_along_axis(vals, pos.reshape(1, -1, 1), axis=2)[..., 0]

    def expected_purchases(self, rfm: pd.DataFrame, t: float | np.ndarray,
                           interval: float | None = None, *,
                           unseen_segments: UnseenSegments = "raise"
                           ) -> pd.Series | pd.DataFrame:
        """Posterior mean of the expected repeat purchases in (T, T + t] [+ interval].

        ``t`` is in the model's time unit: a scalar, or one value per customer.
        """
        self._check_fitted()
        rows, times = self._horizon_rows(rfm, t, unseen_segments)
        res = self._reduce(lambda sl: self._purchases_at(rows, times, sl), rows.n_rows,
                           "expected_purchases", interval, pd.RangeIndex(rows.n_rows))
        return _expand(res, rows)

    def expected_purchases_draws(self, rfm: pd.DataFrame, t: float | np.ndarray, *,
                                 unseen_segments: UnseenSegments = "raise") -> xr.DataArray:
        """Every posterior draw of the expected purchases in (T, T + t]."""
        self._check_fitted()
        rows, times = self._horizon_rows(rfm, t, unseen_segments)
        return self._expanded_draws(lambda sl: self._purchases_at(rows, times, sl), rows,
                                    "expected_purchases")

    def _new_customer_draws(self, t: float | np.ndarray, segment: Any) -> np.ndarray:
        t_arr = check_horizon(t)
        if self.hierarchical:
            if segment is None:
                draws = self._new_segment_draws()
            else:
                labels = pd.Index(self.segment_labels_)
                if _plain(segment) not in labels:
                    raise ValueError(f"segment {segment!r} was not seen when the model was "
                                     f"fitted (known: {[str(s) for s in labels][:20]})")
                code = labels.get_loc(_plain(segment))
                draws = {n: v[:, code] for n, v in self._param_draws().items()}
        else:
            draws = self._param_draws()
        tail = (1,) * t_arr.ndim
        p = {n: v.reshape(-1, *tail) for n, v in draws.items()}
        return np.broadcast_to(self._expected_new(p, t_arr[None, ...]),
                               (self._n_draws, *t_arr.shape))

    def expected_purchases_new_customer(self, t: float | np.ndarray,
                                        interval: float | None = None, *,
                                        segment: Any = None
                                        ) -> float | np.ndarray | pd.DataFrame:
        """Posterior mean of E[X(t)], the repeat purchases of a new customer in (0, t].

        Hierarchical models: ``segment`` picks a fitted segment; ``None`` gives the
        population level (a new segment drawn from the hyperdistribution). With
        ``interval`` a DataFrame indexed by ``t`` with mean, lower and upper columns.
        """
        self._check_fitted()
        vals = self._new_customer_draws(t, segment)
        mean = vals.mean(axis=0)
        if interval is None:
            return float(mean) if np.ndim(mean) == 0 else np.asarray(mean)
        if not 0 < interval < 1:
            raise ValueError(f"interval must be in (0, 1), got {interval!r}")
        q = (1 - interval) / 2
        lo, hi = np.quantile(vals, [q, 1 - q], axis=0)
        name = "expected_purchases_new_customer"
        return pd.DataFrame({name: np.atleast_1d(mean), f"{name}_lower": np.atleast_1d(lo),
                             f"{name}_upper": np.atleast_1d(hi)},
                            index=pd.Index(np.atleast_1d(np.asarray(t, dtype=float)),
                                           name="t"))

    def expected_purchases_new_customer_draws(self, t: float | np.ndarray, *,
                                              segment: Any = None) -> xr.DataArray:
        """Every posterior draw of E[X(t)]: DataArray (chain, draw[, t])."""
        self._check_fitted()
        import xarray as xr

        post = self.idata_.posterior
        vals = self._new_customer_draws(t, segment)
        shape = (int(post.sizes["chain"]), int(post.sizes["draw"]), *vals.shape[1:])
        dims = ("chain", "draw") + (("t",) if vals.ndim > 1 else ())
        coords = {"chain": post["chain"].to_numpy(), "draw": post["draw"].to_numpy()}
        if vals.ndim > 1:
            coords["t"] = np.asarray(t, dtype=float)
        return xr.DataArray(vals.reshape(shape), dims=dims, coords=coords,
                            name="expected_purchases_new_customer")

    def _expanded_draws(self, compute: Callable[[slice], np.ndarray], rows: Rows,
                        name: str) -> xr.DataArray:
        unique = self._draws_array(compute, rows.n_rows, pd.RangeIndex(rows.n_rows), name)
        out = unique.isel(customer_id=rows.inverse)
        out = out.assign_coords(customer_id=rows.index.to_numpy())
        return out


def _expand(res: pd.Series | pd.DataFrame, rows: Rows) -> pd.Series | pd.DataFrame:
    """Per-unique-row results → per customer, on the customers' index."""
    if isinstance(res, pd.DataFrame):
        return pd.DataFrame(res.to_numpy()[rows.inverse], index=rows.index, columns=res.columns)
    return pd.Series(res.to_numpy()[rows.inverse], index=rows.index, name=res.name)


# --------------------------------------------------------------------------------------
# CLV over posterior draws (called by clvmodels.valuation)
# --------------------------------------------------------------------------------------


def _even_draws(n: int, k: int) -> np.ndarray:
    """k evenly spaced indices out of n (all of them when k == n)."""
    return np.arange(n) if k == n else np.round(np.linspace(0, n - 1, k)).astype(np.int64)


def posterior_clv(
    transaction_model: BayesianTransactionModel,
    spend_model: Any,
    rfm: pd.DataFrame,
    times: np.ndarray,
    coef: np.ndarray,
    *,
    margin: float,
    interval: float = DEFAULT_INTERVAL,
    unseen_segments: UnseenSegments = "raise",
    n_jobs: int | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-customer CLV draws reduced on the fly: ``(columns, total CLV draws)``.

    For each posterior draw s and customer i,
    ``CLV_i^s = margin · E[M_i]^s · sum_k coef_k E[Y_i(t_k)]^s`` — the discounted sum of the
    cumulative expected purchases at the period boundaries ``times`` by Abel summation
    (``coef`` from :mod:`clvmodels.valuation`) — with the spend model's draws paired with the
    transaction model's (evenly thinned to the smaller number when they differ). The
    cumulative purchases are computed per chunk of unique (segment, x, T, t_x) rows
    (:meth:`BayesianTransactionModel._purchases_rows`), then each chunk's customers are
    reduced to mean and central ``interval`` — never customers × draws × periods at once.

    ``n_jobs`` threads (default: one per CPU) process chunks in parallel.

    Returns the columns ``expected_purchases``, ``probability_alive`` and ``expected_spend``
    (posterior means), ``clv``, ``clv_lower``, ``clv_upper`` and the draws of the base's
    total CLV.
    """
    if not 0 < interval < 1:
        raise ValueError(f"interval must be in (0, 1), got {interval!r}")
    tm = transaction_model
    rows = tm._rows(rfm, fitting=False, unseen=unseen_segments)
    n = len(rfm)
    S_t = tm._n_draws
    x = rfm["frequency"].to_numpy(float)
    spend_fixed: np.ndarray | None = None
    sm_codes: np.ndarray | None = None
    if isinstance(spend_model, int | float):
        spend_fixed = np.full(n, float(spend_model))
        S_s = S_t
    elif getattr(spend_model, "is_bayesian", False):
        validate_rfm(rfm, require_monetary=True)
        sm_codes = spend_model._segment_codes(rfm, fitting=False, unseen=unseen_segments)
        mx = np.where(x > 0, rfm["monetary_value"].to_numpy(float), 0.0)
        S_s = spend_model._n_draws
    else:
        spend_fixed = spend_model.expected_spend(rfm).to_numpy(dtype=float)
        S_s = S_t
    S = min(S_t, S_s)
    take_t, take_s = _even_draws(S_t, S), _even_draws(S_s, S)
    q = (1 - interval) / 2

    order = np.argsort(rows.inverse, kind="stable")
    starts = np.searchsorted(rows.inverse[order], np.arange(rows.n_rows + 1))
    K = len(times)
    row_step = max(1, CHUNK_CELLS // (S_t * K))
    cust_step = max(1, CHUNK_CELLS // S)
    out = {name: np.empty(n) for name in ("expected_purchases", "probability_alive",
                                           "expected_spend", "clv", "clv_lower", "clv_upper")}
    def chunk(r0: int) -> np.ndarray:
        r1 = min(rows.n_rows, r0 + row_step)
        sl = slice(r0, r1)
        red = tm._purchases_rows(rows, sl, times, coef)  # (S_t, c, 2): discounted, last
        disc = red[take_t, :, 0]  # (S, c)
        ep_mean = red[..., 1].mean(axis=0)
        pa_mean = tm._palive_rows(rows, sl).mean(axis=0)
        del red
        part = np.zeros(S)
        for c0 in range(starts[r0], starts[r1], cust_step):
            cust = order[c0:min(starts[r1], c0 + cust_step)]
            local = rows.inverse[cust] - r0
            if spend_fixed is not None:
                spend = spend_fixed[cust][None, :]
                out["expected_spend"][cust] = spend_fixed[cust]
            else:
                spend = spend_model._spend_customers(x[cust], mx[cust], sm_codes[cust]
                                                     if spend_model.hierarchical else None)
                spend = spend[take_s]
                out["expected_spend"][cust] = spend.mean(axis=0)
            clv = margin * spend * disc[:, local]
            out["clv"][cust] = clv.mean(axis=0)
            lo, hi = np.quantile(clv, [q, 1 - q], axis=0)
            out["clv_lower"][cust], out["clv_upper"][cust] = lo, hi
            out["expected_purchases"][cust] = ep_mean[local]
            out["probability_alive"][cust] = pa_mean[local]
            part += clv.sum(axis=1)
        return part

    # chunks write disjoint customers; numpy releases the GIL in the heavy loops (2F1,
    # quantiles), so a thread per core gives a near-linear speed-up
    starts_r = range(0, rows.n_rows, row_step)
    workers = max(1, min(n_jobs or (os.cpu_count() or 1), len(starts_r)))
    if workers == 1:
        total = sum((chunk(r0) for r0 in starts_r), np.zeros(S))
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            total = sum(pool.map(chunk, starts_r), np.zeros(S))
    return out, total
