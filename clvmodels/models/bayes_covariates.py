"""Covariates in the Bayesian models: coefficient priors, their PyMC declaration, the
covariate patterns of the unique rows and per-customer parameter draws.

The link is the maximum-likelihood twin's (:mod:`clvmodels.models.links`, equation (1)):

    theta_i = theta * exp(sign * z_i' gamma_group),

with ``theta`` the base parameter (a scalar, or the customer's segment's value when the model
is hierarchical) and ``gamma_group`` the group's coefficient vector, shared by every segment.

Priors. Each coefficient gets ``Normal(0, 1)`` by default: weakly informative on the scale
the design columns are on — an indicator's coefficient is the log of the factor by which the
level multiplies the linked parameter against the reference level (95% prior mass for
factors between 1/7 and 7), a standardised number's is the log factor per standard deviation
(``standardize_covariates=True``; a raw number's per unit, so rescale raw numbers or override
the prior). Overrides (``priors=``) take a coefficient's name, ``"purchase:channel[web]"``, or
a group's, ``"purchase"`` (every coefficient of the group; a coefficient's own key wins).
The resolved spec of every coefficient is in ``priors_`` and saved with the model.

In the PyMC model each group's coefficients are one vector ``coef_<group>`` with dims
``<group>_covariate`` (coords: the design names, e.g. ``channel[web]``); the linear
predictor is computed once per distinct covariate *pattern* of the unique rows (a handful
with categorical covariates; about one per row with continuous ones) and gathered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from clvmodels.models.links import GROUPS, CovariateLayout
from clvmodels.models.priors import PriorSpec, normal, prior_rv

__all__ = [
    "DEFAULT_COEFFICIENT_PRIOR",
    "coefficient_coords",
    "coefficient_labels",
    "coefficient_var",
    "declare_coefficients",
    "default_coefficient_priors",
    "expand_group_priors",
    "pattern_codes",
]

#: the default prior of every covariate coefficient (see the module docstring)
DEFAULT_COEFFICIENT_PRIOR: PriorSpec = normal(0.0, 1.0)


def coefficient_var(group: str) -> str:
    """Name of a group's coefficient vector in the posterior (``coef_purchase``)."""
    return f"coef_{group}"


def coefficient_dim(group: str) -> str:
    """Name of a group's coefficient dimension (``purchase_covariate``)."""
    return f"{group}_covariate"


def group_design_names(layout: CovariateLayout) -> dict[str, list[str]]:
    """Group -> the design names of its coefficients, in storage order."""
    names = layout.encoding.design_names
    return {g: [names[j] for j in pos] for g, pos in layout.positions.items()}


def coefficient_coords(layout: CovariateLayout) -> dict[str, list[str]]:
    """PyMC coords of the coefficient dimensions."""
    return {coefficient_dim(g): d for g, d in group_design_names(layout).items()}


def coefficient_labels(layout: CovariateLayout) -> dict[str, str]:
    """ArviZ's row label of each coefficient (``coef_purchase[channel[web]]``) -> its name
    (``purchase:channel[web]``)."""
    return {f"{coefficient_var(g)}[{d}]": f"{g}:{d}"
            for g, names in group_design_names(layout).items() for d in names}


def default_coefficient_priors(layout: CovariateLayout | None) -> dict[str, PriorSpec]:
    """``Normal(0, 1)`` for every coefficient (none without covariates)."""
    if layout is None:
        return {}
    return {name: dict(DEFAULT_COEFFICIENT_PRIOR) for name in layout.coefficient_names}


def expand_group_priors(priors: Mapping[str, PriorSpec] | None,
                        layout: CovariateLayout | None) -> dict[str, PriorSpec] | None:
    """User priors with a group key (``"purchase"``) replaced by one key per coefficient of
    the group; a coefficient's own key wins over its group's."""
    if priors is None:
        return None
    out = {k: v for k, v in priors.items() if k not in GROUPS}
    groups = {k: v for k, v in priors.items() if k in GROUPS}
    if not groups:
        return out
    if layout is None or any(g not in layout.groups for g in groups):
        have = list(layout.groups) if layout is not None else []
        bad = [g for g in groups if g not in have]
        raise ValueError(f"prior for covariate group(s) {bad}, but the model has "
                         f"{'covariate groups ' + str(have) if have else 'no covariates'}")
    for g, spec in groups.items():
        for d in group_design_names(layout)[g]:
            out.setdefault(f"{g}:{d}", spec)
    return out


def declare_coefficients(layout: CovariateLayout, priors: Mapping[str, PriorSpec]
                         ) -> dict[str, Any]:
    """Declare ``coef_<group>`` (dims ``<group>_covariate``) in the current PyMC model with
    each coefficient's prior; returns ``{group: vector}``.

    Coefficients of a group that share one distribution are one vector random variable
    (array parameters); otherwise each is its own scalar and the vector a Deterministic.
    """
    import pymc as pm
    import pytensor.tensor as pt

    out = {}
    for g, designs in group_design_names(layout).items():
        specs = [priors[f"{g}:{d}"] for d in designs]
        var, dim = coefficient_var(g), coefficient_dim(g)
        keys = {tuple(sorted(s)) for s in specs}
        if len({s["dist"] for s in specs}) == 1 and len(keys) == 1:
            params = {k: np.array([float(s[k]) for s in specs]) for k in specs[0]
                      if k != "dist"}
            out[g] = getattr(pm, specs[0]["dist"])(var, **params, dims=dim)
        else:
            parts = [prior_rv(f"{var}_{j}", s) for j, s in enumerate(specs)]
            out[g] = pm.Deterministic(var, pt.stack(parts), dims=dim)
    return out


def pattern_codes(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of the design matrix ``z`` (n, q) and each row's pattern code:
    ``(patterns (P, q), codes (n,))``."""
    if z.shape[0] == 0:
        return np.zeros((0, z.shape[1])), np.zeros(0, dtype=np.int64)
    patterns, codes = np.unique(z, axis=0, return_inverse=True)
    return patterns, codes.reshape(-1).astype(np.int64)
