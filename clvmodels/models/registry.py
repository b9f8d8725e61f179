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
    "discover",
    "get_model",
    "label_of",
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
             **options: Any) -> Any:
    """Simulate customers from a model family: ``model`` is a registry name, a class or a
    fitted model (whose ``params_`` are used unless ``params`` is given). ``options`` go to
    the family's simulator (e.g. ``T=``, ``n_periods=``, ``random_seed=``)."""
    cls = get_model(model) if isinstance(model, str) else (
        model if isinstance(model, type) else type(model))
    twin = getattr(cls, "_mle_class", None) or cls
    simulator = getattr(twin, "simulator", None)
    if simulator is None:
        raise ValueError(f"{cls.__name__} has no simulator")
    if params is None:
        if isinstance(model, str | type) or not hasattr(model, "params_"):
            raise ValueError("give params= (or a fitted model) to simulate from")
        params = {k: float(v) for k, v in model.params_.items()}
    return simulator(n_customers, **params, **options)


def label_of(model: Any) -> str:
    """Display name of a model instance or class ("BG/NBD", "Bayesian BG/BB" …)."""
    cls = model if isinstance(model, type) else type(model)
    return str(getattr(cls, "label", "") or cls.__name__)
