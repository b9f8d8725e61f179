"""The model registry: every model class registers itself where it is defined.

A model class names itself with class attributes (``name``, ``label``, ``data_kind``,
``param_names``); :class:`clvmodels.models.base.BaseModel.__init_subclass__` calls
:func:`register`. Everything that lists models — the command line's choices,
``compare_models``' names, display labels, simulators, ``load_model`` — reads this registry, so
adding a model family means adding one module under ``clvmodels/models/`` (found by
:func:`discover`) and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from typing import Any

__all__ = [
    "DATA_KINDS",
    "covariate_row_params",
    "discover",
    "get_model",
    "label_of",
    "layout_from_coefficients",
    "model_names",
    "models",
    "register",
    "simulate",
]

#: data kinds a model can be fitted on (see :mod:`clvmodels.datakinds`)
DATA_KINDS = ("continuous", "discrete", "contractual", "spend")

_BY_NAME: dict[str, type] = {}
_BY_CLASS: dict[str, type] = {}
_DISCOVERED = False


def _key(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")


def register(cls: type) -> None:
    """Add a concrete model class (called by ``BaseModel.__init_subclass__``)."""
    name = getattr(cls, "name", "")
    if not name:
        return  # an abstract intermediate class
    kind = getattr(cls, "data_kind", "")
    if kind not in DATA_KINDS:
        raise TypeError(f"{cls.__name__}.data_kind must be one of {DATA_KINDS}, got {kind!r}")
    key = _key(name)
    other = _BY_NAME.get(key)
    if other is not None and other.__qualname__ != cls.__qualname__:
        raise TypeError(f"model name {key!r} is taken by {other.__name__}")
    _BY_NAME[key] = cls
    _BY_CLASS[cls.__name__] = cls


def discover() -> None:
    """Import every model module under ``clvmodels.models`` once, so all families register.

    Modules whose name starts with ``_`` (math, special functions) are skipped; family
    modules are cheap to import (PyMC loads only when a Bayesian model is fitted).
    """
    global _DISCOVERED
    if _DISCOVERED:
        return
    package = importlib.import_module("clvmodels.models")
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"clvmodels.models.{info.name}")
    _DISCOVERED = True


def models(*, kind: str | Iterable[str] | None = None, bayesian: bool | None = None,
           role: str | None = None) -> list[type]:
    """Registered model classes, in registration order, optionally filtered.

    ``kind``: data kind(s); ``bayesian``: True/False; ``role``: ``"transaction"`` (the buy-till-
    you-die models: continuous or discrete), ``"spend"`` or ``"contractual"``.
    """
    discover()
    kinds = {kind} if isinstance(kind, str) else (set(kind) if kind is not None else None)
    roles = {"transaction": {"continuous", "discrete"}, "spend": {"spend"},
             "contractual": {"contractual"}}
    if role is not None and role not in roles:
        raise ValueError(f"role must be one of {sorted(roles)}")
    out = []
    for cls in _BY_NAME.values():
        if kinds is not None and cls.data_kind not in kinds:
            continue
        if role is not None and cls.data_kind not in roles[role]:
            continue
        if bayesian is not None and bool(getattr(cls, "bayesian", False)) != bayesian:
            continue
        out.append(cls)
    return out


def model_names(**filters: Any) -> list[str]:
    """Registry names (``"bgnbd"``, ``"bayes-bgnbd"``, ``"bgbb"``, ``"sbg"`` …) of
    :func:`models`."""
    return [_key(cls.name) for cls in models(**filters)]


def get_model(name: str) -> type:
    """The model class registered under ``name`` (registry name or class name)."""
    discover()
    if isinstance(name, str):
        cls = _BY_NAME.get(_key(name)) or _BY_CLASS.get(name.strip())
        if cls is not None:
            return cls
    known = ", ".join(model_names())
    raise ValueError(f"unknown model {name!r}; use one of {known}")


def simulate(model: Any, n_customers: int, *, params: dict[str, float] | None = None,
             covariates: Any = None, **options: Any) -> Any:
    """Simulate customers from a model family: ``model`` is a registry name, a class or a
    fitted model (whose ``params_`` are used unless ``params`` is given). ``options`` go to
    the family's simulator (e.g. ``T=``, ``n_periods=``, ``random_seed=``).

    With covariates — a fitted covariate model, or ``params`` holding coefficients named as
    in ``params_`` (``"purchase:channel[web]"``, ``"dropout:age"``) — ``covariates`` is a
    frame with one row per customer holding the covariate columns: customer i is drawn with
    their own parameters theta_i = theta exp(sign z_i'gamma) (links equation (1)), z_i
    encoded as the fitted model's layout does (or, for ``params``, learned from
    ``covariates``: indicators against the level no coefficient names, numbers as given).
    The result carries the covariate columns. Without covariates the plain simulator runs
    unchanged (same random stream).
    """
    cls = get_model(model) if isinstance(model, str) else (
        model if isinstance(model, type) else type(model))
    twin = getattr(cls, "_mle_class", None) or cls
    simulator = getattr(twin, "simulator", None)
    if simulator is None:
        raise ValueError(f"{cls.__name__} has no simulator")
    layout = None
    if params is None:
        if isinstance(model, str | type) or not hasattr(model, "params_"):
            raise ValueError("give params= (or a fitted model) to simulate from")
        params = {k: float(v) for k, v in model.params_.items()}
        layout = getattr(model, "covariate_layout_", None)
    params = dict(params)
    names = list(twin.param_names)
    coef_names = [k for k in params if k not in names]
    if layout is None and not coef_names:
        if covariates is not None:
            raise ValueError("covariates= given, but the parameters have no covariate "
                             "coefficients (names like 'purchase:<column>')")
        return simulator(n_customers, **params, **options)
    if covariates is None:
        raise ValueError(f"the parameters have covariate coefficients ({coef_names}): give "
                         "covariates=<a frame with one row per customer>")
    import pandas as pd

    if not isinstance(covariates, pd.DataFrame) or len(covariates) != n_customers:
        raise ValueError(f"covariates must be a DataFrame with one row per customer "
                         f"({n_customers})")
    if layout is None:
        layout = layout_from_coefficients(twin, coef_names, covariates)
    missing = [c for c in layout.coefficient_names if c not in params]
    extra = [c for c in coef_names if c not in layout.coefficient_names]
    if missing or extra:
        raise ValueError(f"covariate coefficients do not match the covariates: missing "
                         f"{missing}, unknown {extra} (expected {layout.coefficient_names})")
    row = covariate_row_params(twin, layout, {n: params[n] for n in names},
                               [params[c] for c in layout.coefficient_names], covariates)
    out = simulator(n_customers, **row, **options)
    for col in layout.encoding.names:
        out[col] = covariates[col].to_numpy()
    return out


def covariate_row_params(cls: Any, layout: Any, base: dict[str, float], coefs: Any,
                         covariates: Any) -> dict[str, Any]:
    """Each row's parameters (links equation (1)): arrays (n,) for the linked parameters,
    the base value for the others."""
    import numpy as np

    from clvmodels.models.links import row_params

    z = layout.encoding.design(covariates, what="the covariates")
    c = np.asarray(coefs, dtype=float)
    eta = {g: z[:, layout.positions[g]] @ cg for g, cg in layout.split(c).items()}
    out = row_params({k: float(v) for k, v in base.items()}, cls.covariate_links, eta)
    return {k: (np.asarray(v, dtype=float) if np.ndim(v) else float(v))
            for k, v in out.items()}


def layout_from_coefficients(cls: Any, coef_names: list[str], frame: Any) -> Any:
    """The covariate layout that coefficient names ``group:column`` / ``group:column[level]``
    describe, encoded on ``frame`` (the reference level of a categorical column: the one
    level no coefficient names)."""
    import re

    from clvmodels.covariates import CovariateEncoding
    from clvmodels.models.links import CovariateLayout

    groups: dict[str, list[str]] = {}
    named: dict[str, set[str]] = {}
    for name in coef_names:
        group, sep, design = name.partition(":")
        if not sep or group not in cls.covariate_links:
            raise ValueError(f"{name!r} is not a parameter of {cls.__name__} "
                             f"({list(cls.param_names)}) nor a coefficient "
                             f"'<group>:<column>' of a group it offers "
                             f"{list(cls.covariate_links)}")
        match = re.fullmatch(r"(.*)\[(.*)\]", design)
        column = design if design in frame.columns or match is None else match.group(1)
        if column not in frame.columns:
            raise ValueError(f"coefficient {name!r}: covariates has no column {column!r}")
        cols = groups.setdefault(group, [])
        if column not in cols:
            cols.append(column)
        if match is not None and column != design:
            named.setdefault(column, set()).add(match.group(2))
    columns = list(dict.fromkeys(c for cols in groups.values() for c in cols))
    encoding = CovariateEncoding.learn(frame, columns, what="the covariates")
    reference = {}
    for col in encoding.columns:
        if col.kind == "categorical" and col.name in named:
            left = [lvl for lvl in col.levels if str(lvl) not in named[col.name]]
            if len(left) == 1:
                reference[col.name] = left[0]
    if reference:
        encoding = CovariateEncoding.learn(frame, columns, reference=reference,
                                           what="the covariates")
    return CovariateLayout(encoding, {g: groups[g] for g in ("purchase", "dropout", "spend")
                                      if g in groups})


def label_of(model: Any) -> str:
    """Display name of a model instance or class ("BG/NBD", "Bayesian BG/BB" …)."""
    cls = model if isinstance(model, type) else type(model)
    return str(getattr(cls, "label", "") or cls.__name__)
