"""Prior specifications of the Bayesian models: plain, JSON-serialisable dicts.

A spec is ``{"dist": <PyMC distribution name>, <parameter>: <number>, ...}``, e.g.
``{"dist": "Gamma", "alpha": 2.0, "beta": 1.0}``. Specs are what a user passes, what a model
stores in ``priors_`` and what a netCDF file carries, so a saved posterior names the exact
priors it was sampled under. This module validates specs, turns one into a PyMC random
variable, and holds the small builders the models' default priors are written with.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "PriorSpec",
    "halfnormal",
    "hyperpriors",
    "lognormal",
    "normal",
    "prior_rv",
    "validate_priors",
]

PriorSpec = dict[str, Any]


def validate_priors(priors: Mapping[str, PriorSpec] | None, defaults: Mapping[str, PriorSpec]
                    ) -> dict[str, PriorSpec]:
    """Merge user prior specs over the defaults and check them.

    Keys must be among the defaults' (so a typo cannot silently leave the default in place);
    ``dist`` must name a PyMC distribution; values must be finite JSON numbers.
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


def prior_rv(name: str, spec: PriorSpec, **kwargs: Any) -> Any:
    """The PyMC random variable ``name`` distributed as ``spec`` (inside a model context)."""
    import pymc as pm

    params = {k: v for k, v in spec.items() if k != "dist"}
    return getattr(pm, spec["dist"])(name, **params, **kwargs)


def lognormal(mu: float, sigma: float) -> PriorSpec:
    """``LogNormal(mu, sigma)`` as a spec."""
    return {"dist": "LogNormal", "mu": float(mu), "sigma": float(sigma)}


def normal(mu: float, sigma: float) -> PriorSpec:
    """``Normal(mu, sigma)`` as a spec."""
    return {"dist": "Normal", "mu": float(mu), "sigma": float(sigma)}


def halfnormal(sigma: float) -> PriorSpec:
    """``HalfNormal(sigma)`` as a spec."""
    return {"dist": "HalfNormal", "sigma": float(sigma)}


def hyperpriors(latents: Sequence[str], mu_priors: Mapping[str, PriorSpec],
                sigma_scale: float) -> dict[str, PriorSpec]:
    """Hyperpriors of a hierarchical model: ``mu_<latent>`` from ``mu_priors`` (keyed by
    latent) and ``sigma_<latent> ~ HalfNormal(sigma_scale)`` for every latent."""
    out: dict[str, PriorSpec] = {}
    for u in latents:
        out[f"mu_{u}"] = dict(mu_priors[u])
        out[f"sigma_{u}"] = halfnormal(sigma_scale)
    return out
