"""What every model shares, MLE or Bayesian: identity, data kind, parameters, data handling.

A model family is one module (``bgnbd.py``, ``bgbb.py``, ``sbg.py`` …): its math as functions
that broadcast over parameter arrays, plus short classes declaring

* ``name`` (the registry name: ``"bgnbd"``, ``"bayes-bgbb"`` …), ``label`` (display name),
* ``data_kind`` (``"continuous"``, ``"discrete"``, ``"contractual"`` or ``"spend"``, see
  :mod:`clvmodels.datakinds`), ``param_names`` and ``citation``,
* ``simulator`` (the module's simulation function) where the family has one,

and pointing the shared machinery's hooks at the module's functions. Defining the class
registers it (:mod:`clvmodels.models.registry`); nothing else in the package is edited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clvmodels._validation import ValidationError
from clvmodels.datakinds import KINDS, kind_rows
from clvmodels.models import registry
from clvmodels.models.links import CovariateLinks
from clvmodels.rows import UniqueRows

__all__ = [
    "BaseModel",
    "ConvergenceWarning",
    "IdentificationError",
    "IdentificationWarning",
    "NotFittedError",
    "check_counts",
    "check_horizon",
    "check_scalar_horizon",
    "frame_arrays",
]


class NotFittedError(RuntimeError):
    """A prediction was asked of a model that has not been fitted."""


class ConvergenceWarning(UserWarning):
    """The optimiser stopped without meeting its convergence criteria."""


class IdentificationError(ValidationError):
    """The data cannot identify the model's parameters (e.g. nobody ever repeated)."""


class IdentificationWarning(UserWarning):
    """A Bayesian fit on data that cannot identify the parameters: the posterior is
    (mostly) the prior (the maximum-likelihood twin raises :class:`IdentificationError`)."""


#: every registered model class by class name (``load_model`` reads the class a file names)
_REGISTRY = registry._BY_CLASS


def check_horizon(t: float | np.ndarray, name: str = "t") -> np.ndarray:
    """Validate a forecast horizon (non-negative; NaN refused)."""
    arr = np.asarray(t, dtype=float)
    if np.any(np.isnan(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got {t!r}")
    return arr


def check_counts(n: Any) -> np.ndarray:
    """Validate purchase counts (non-negative whole numbers), as a 1-D float array."""
    arr = np.atleast_1d(np.asarray(n))
    if arr.ndim != 1 or np.any(arr < 0) or np.any(arr != np.round(arr)):
        raise ValueError(f"n must be non-negative integers, got {n!r}")
    return arr.astype(float)


def check_scalar_horizon(t: Any) -> np.ndarray:
    """A single non-negative horizon (0-d array)."""
    t_arr = check_horizon(t)
    if t_arr.ndim > 0:
        raise ValueError(f"t must be a scalar, got {t!r}")
    return t_arr


def frame_arrays(frame: pd.DataFrame, kind: str, *, time_unit: str | None = None,
                 what: str | None = None) -> tuple[list[np.ndarray], pd.Index]:
    """Validate ``frame`` as data of ``kind`` and return its columns as float arrays.

    ``time_unit`` is the model's unit: a frame whose ``attrs["time_unit"]`` says otherwise
    is refused, because every prediction silently depends on it.
    """
    spec = KINDS[kind]
    frame = spec.conform(frame)
    spec.validate(frame, what or ("RFM frame" if kind == "continuous" else f"{kind} data"))
    check_time_unit(frame, time_unit, what or "the data")
    return [frame[c].astype(float).to_numpy(dtype=float) for c in spec.columns], frame.index


def check_time_unit(frame: pd.DataFrame, time_unit: str | None, what: str = "the data") -> None:
    """Refuse a frame summarised in another time unit than the model's."""
    unit = frame.attrs.get("time_unit") if hasattr(frame, "attrs") else None
    if time_unit is not None and unit is not None and unit != time_unit:
        raise ValueError(
            f"{what} is in time unit {unit!r} but the model was fitted in {time_unit!r}; "
            "summarise the transactions again with the model's time_unit"
        )


class BaseModel(CovariateLinks):
    """Identity, registration and data handling shared by every model (MLE or Bayesian)."""

    #: registry name ("bgnbd", "bayes-bgnbd", "bgbb", "sbg" …); empty for abstract classes
    name: ClassVar[str] = ""
    #: display name ("BG/NBD", "Bayesian BG/BB" …)
    label: ClassVar[str] = ""
    #: the data the model is fitted on: one of :data:`clvmodels.datakinds.KINDS`
    data_kind: ClassVar[str] = "continuous"
    param_names: ClassVar[tuple[str, ...]] = ()
    #: the paper the model's equations come from
    citation: ClassVar[str] = ""
    #: fitted by posterior sampling (the Bayesian variants)
    bayesian: ClassVar[bool] = False
    #: the family's simulator: ``simulator(n_customers, **params, **options) -> frame``
    simulator: ClassVar[Callable[..., pd.DataFrame] | None] = None
    #: historical spelling of :attr:`name`, kept for callers
    short_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            cls.short_name = cls.__dict__["name"]
            twin = getattr(cls, "_mle_class", None)  # a Bayesian variant's MLE twin
            if twin is not None:
                if "citation" not in cls.__dict__:
                    cls.citation = twin.citation
                if "data_kind" not in cls.__dict__:
                    cls.data_kind = twin.data_kind
                if "covariate_links" not in cls.__dict__:
                    cls.covariate_links = twin.covariate_links
            registry.register(cls)

    params_: pd.Series
    time_unit_: str | None

    @property
    def is_bayesian(self) -> bool:
        """Whether the model holds a posterior (kept for callers; prefer ``bayesian``)."""
        return self.bayesian

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet: call fit(data) first"
            )

    def _data_rows(self, data: pd.DataFrame, *, weights: str | np.ndarray | None = None,
                   extra_codes: dict[str, np.ndarray] | None = None,
                   time_unit: str | None = None) -> UniqueRows:
        """Validate ``data`` for this model's data kind and compress it with weights."""
        check_time_unit(data, time_unit)
        return kind_rows(data, self.data_kind, weights=weights, extra_codes=extra_codes,
                         time_unit=data.attrs.get("time_unit") or time_unit)

    @classmethod
    def _check_params(cls, params: dict[str, Any]) -> dict[str, float]:
        """Known parameters, validated: every name given once, positive and finite."""
        missing = [n for n in cls.param_names if n not in params]
        extra = [n for n in params if n not in cls.param_names]
        if missing or extra:
            raise ValueError(
                f"{cls.__name__} takes parameters {list(cls.param_names)}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unknown {extra}" if extra else ""))
        out = {}
        for n in cls.param_names:
            try:
                value = float(params[n])
            except (TypeError, ValueError):
                raise ValueError(f"parameter {n!r} must be a number, got {params[n]!r}") \
                    from None
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"parameter {n!r} must be a positive finite number, "
                                 f"got {params[n]!r}")
            out[n] = value
        return out

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            ps = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            return f"{type(self).__name__}({ps})"
        return f"{type(self).__name__}(unfitted)"

    def _identifiability_problem(self, d: UniqueRows) -> str:
        """Why the data cannot identify the parameters ("" when they can). Families add
        their own rules by overriding and calling this."""
        if d.n_customers < 2:
            return f"only {d.n_customers} customer(s); at least 2 are needed"
        if self.data_kind in ("continuous", "discrete"):
            if float(np.dot(d.w, d.x)) == 0:
                return ("no customer made a repeat purchase (every frequency is 0), so the "
                        "purchase and drop-out processes cannot be told apart")
            if np.all(d.T == 0):
                return "every customer has T = 0: no time was observed after a first purchase"
            repeaters = float(np.sum(d.w[d.x > 0]))
            if repeaters < 2:
                return ("only one customer made repeat purchases: a single customer cannot "
                        "tell the spread of purchase rates and drop-out across customers")
        if self.data_kind == "contractual" and float(np.dot(d.w, d.churned)) == 0:
            return ("no customer churned, so the churn distribution cannot be estimated "
                    "(every fit would push the churn probability to 0)")
        if self.data_kind == "spend" and np.ptp(d.m) == 0:  # one value (no sort needed)
            return "every repeat buyer has the same monetary_value: no spread to estimate"
        return ""


def rfm_arrays(
    rfm: pd.DataFrame,
    *,
    time_unit: str | None = None,
    require_monetary: bool = False,
    what: str = "rfm",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Index]:
    """Validate an RFM frame and return float arrays ``x, t_x, T`` and its index."""
    from clvmodels._validation import validate_rfm

    validate_rfm(rfm, require_monetary=require_monetary, what=what)
    check_time_unit(rfm, time_unit, what)
    return (rfm["frequency"].to_numpy(dtype=float), rfm["recency"].to_numpy(dtype=float),
            rfm["T"].to_numpy(dtype=float), rfm.index)
