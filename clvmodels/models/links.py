"""Covariates in every family: one link per family, one mechanism for MLE and Bayes.

A family declares :attr:`CovariateLinks.covariate_links`: for each covariate *group*
(``"purchase"``, ``"dropout"``, ``"spend"``) the parameters its linear predictor scales and
with which sign. Customer i's parameter is

    theta_i = theta * exp(sign * z_i' gamma_group)                         (1)

summed over the groups that scale it, where z_i are the customer's design columns
(:class:`clvmodels.covariates.CovariateEncoding`: indicators against a reference level,
numbers as given or standardised) and gamma_group the group's coefficients. With every
z_i = 0 the model is exactly the plain model. The links chosen (see REFERENCE.md and each
family's docstring):

* Pareto/NBD — Fader & Hardie (2007) note 019 and CLVTools (Bachmann, Meierer & Naef 2021):
  ``alpha_i = alpha exp(-g_p'z)``, ``beta_i = beta exp(-g_d'z)``: a positive coefficient raises
  the purchase (drop-out) rate.
* BG/NBD and MBG/NBD — CLVTools' choice: ``alpha_i = alpha exp(-g_p'z)`` and both drop-out
  shapes ``a_i = a exp(g_d'z)``, ``b_i = b exp(g_d'z)``.
* Gamma-Gamma — the scale of the spend heterogeneity, ``v_i = v exp(g_s'z)``: the expected
  spend p v_i / (q - 1) is multiplied by exp(g_s'z).
* BG/BB — the first shape of each beta: ``alpha_i = alpha exp(g_p'z)``,
  ``gamma_i = gamma exp(g_d'z)``: the odds of the mean purchase (drop-out) probability are
  multiplied by exp(g'z).
* sBG — ``alpha_i = alpha exp(g_d'z)``: the odds of the mean churn probability are multiplied
  by exp(g_d'z).

This module holds the declaration (:class:`CovariateLinks`, a mixin of every model), the
arithmetic of (1) for numpy and pytensor (:func:`row_params`) and the chain rule that turns a
family's per-row gradient in its natural parameters into the gradient in
(log theta, gamma) (:func:`chain_gradient`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clvmodels.covariates import CovariateEncoding, UnseenLevels

__all__ = ["GROUPS", "CovariateLayout", "CovariateLinks", "chain_gradient", "declare_links",
           "row_params"]

#: the covariate groups, in the order their coefficients are stored
GROUPS: tuple[str, ...] = ("purchase", "dropout", "spend")


def declare_links(**groups: tuple[tuple[str, float], ...]
                  ) -> Mapping[str, tuple[tuple[str, float], ...]]:
    """A family's :attr:`CovariateLinks.covariate_links` (read-only): group -> ((parameter,
    sign), ...)."""
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown covariate group(s) {unknown}; use {list(GROUPS)}")
    return MappingProxyType(dict(groups))


@dataclass(frozen=True)
class CovariateLayout:
    """Where each group's coefficients sit: the design columns it uses and their names."""

    encoding: CovariateEncoding
    groups: dict[str, list[str]]  # group -> attribute columns

    @property
    def positions(self) -> dict[str, list[int]]:
        """Group -> positions of its design columns in the design matrix."""
        return {g: self.encoding.positions(cols) for g, cols in self.groups.items()}

    @property
    def coefficient_names(self) -> list[str]:
        """``group:design column`` for every coefficient, in storage order."""
        names = self.encoding.design_names
        return [f"{g}:{names[j]}" for g, pos in self.positions.items() for j in pos]

    def split(self, coefs: np.ndarray) -> dict[str, np.ndarray]:
        """A flat coefficient vector (last axis) -> per group."""
        out, start = {}, 0
        for g, pos in self.positions.items():
            out[g] = coefs[..., start:start + len(pos)]
            start += len(pos)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"groups": {g: list(c) for g, c in self.groups.items()},
                "encoding": self.encoding.to_dict()}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> CovariateLayout:
        try:
            encoding = CovariateEncoding.from_dict(payload["encoding"])
            groups = {str(g): [str(c) for c in cols] for g, cols in payload["groups"].items()}
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed covariate description: {exc!r}") from None
        for g, cols in groups.items():
            if g not in GROUPS or not set(cols) <= set(encoding.names):
                raise ValueError(f"covariate group {g!r} names unknown columns {cols}")
        return cls(encoding, groups)


def row_params(base: Mapping[str, Any], links: Mapping[str, Sequence[tuple[str, float]]],
               eta: Mapping[str, Any], exp: Any = np.exp) -> dict[str, Any]:
    """Equation (1): each linked parameter times exp(sign * eta_group).

    ``base`` maps parameter names to their population values (scalars, draws ``(S, 1)``,
    tensors…), ``eta`` maps each group present to its linear predictor z'gamma (shaped to
    broadcast against ``base``). Parameters no group scales are returned unchanged.
    """
    scale: dict[str, Any] = {}
    for group, value in eta.items():
        for name, sign in links[group]:
            term = value if sign > 0 else -value
            scale[name] = term if name not in scale else scale[name] + term
    return {n: (v * exp(scale[n]) if n in scale else v) for n, v in base.items()}


def chain_gradient(param_names: Sequence[str], links: Mapping[str, Sequence[tuple[str, float]]],
                   layout: CovariateLayout, p_rows: Mapping[str, Any], grad_rows: np.ndarray,
                   z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Gradient of sum_i w_i LL_i in (log theta, gamma) from the family's per-row gradient.

    ``grad_rows`` is dLL_i/dtheta_i, shape (P, n), at the per-row parameters ``p_rows``
    (arrays (n,) or scalars); ``z`` the design matrix (n, q). With (1),
    dtheta_i/dlog theta = theta_i and dtheta_i/dgamma_g = sign theta_i z_i[g].
    """
    n = grad_rows.shape[1]
    scaled = np.empty_like(grad_rows)  # w_i theta_i dLL_i/dtheta_i
    for j, name in enumerate(param_names):
        scaled[j] = grad_rows[j] * np.broadcast_to(p_rows[name], (n,)) * w
    out = [scaled.sum(axis=1)]
    index = {name: j for j, name in enumerate(param_names)}
    for group, pos in layout.positions.items():
        combined = np.zeros(n)
        for name, sign in links[group]:
            combined += sign * scaled[index[name]]
        out.append(np.einsum("i,ik->k", combined, z[:, pos]))
    return np.concatenate(out)


class CovariateLinks:
    """The covariate configuration every model shares (a mixin of ``BaseModel``).

    Configuration (``__init__`` keywords of every model, scikit-learn style):
    ``purchase_covariates``, ``dropout_covariates``, ``spend_covariates`` (column names; a
    family accepts the groups of its :attr:`covariate_links`), ``covariate_reference``
    (``{column: reference level}``) and ``standardize_covariates``. Learned at fit:
    ``covariate_layout_`` (the encoding and groups).
    """

    #: group -> ((parameter, sign), ...): which parameters a group's linear predictor scales
    covariate_links: ClassVar[Mapping[str, tuple[tuple[str, float], ...]]] = declare_links()

    purchase_covariates: list[str] | None
    dropout_covariates: list[str] | None
    spend_covariates: list[str] | None
    covariate_reference: dict[str, Any] | None
    standardize_covariates: bool

    def _init_covariates(self, purchase: Sequence[str] | None, dropout: Sequence[str] | None,
                         spend: Sequence[str] | None, reference: Mapping[str, Any] | None,
                         standardize: bool, unseen_levels: str = "raise") -> None:
        for group, cols in (("purchase", purchase), ("dropout", dropout), ("spend", spend)):
            if cols is not None:
                if isinstance(cols, str) or not all(isinstance(c, str) for c in cols):
                    raise ValueError(f"{group}_covariates must be a list of column names, "
                                     f"got {cols!r}")
                if len(set(cols)) != len(cols):
                    raise ValueError(f"{group}_covariates lists a column twice: {list(cols)}")
                if cols and group not in self.covariate_links:
                    offered = [f"{g}_covariates" for g in self.covariate_links] or ["none"]
                    raise ValueError(f"{type(self).__name__} takes no {group}_covariates "
                                     f"(it offers: {', '.join(offered)})")
            setattr(self, f"{group}_covariates", None if cols is None else list(cols))
        if reference is not None and not isinstance(reference, Mapping):
            raise ValueError("covariate_reference must be a dict {column: level} or None")
        self.covariate_reference = None if reference is None else dict(reference)
        self.standardize_covariates = bool(standardize)
        if unseen_levels not in ("raise", "reference"):
            raise ValueError("unseen_levels must be 'raise' or 'reference', got "
                             f"{unseen_levels!r}")
        self.unseen_levels: UnseenLevels = unseen_levels  # type: ignore[assignment]

    def _covariate_params(self) -> dict[str, Any]:
        """The covariate keywords, for ``get_params`` and copies."""
        return {f"{g}_covariates": getattr(self, f"{g}_covariates", None) for g in GROUPS} | {
            "covariate_reference": getattr(self, "covariate_reference", None),
            "standardize_covariates": getattr(self, "standardize_covariates", False),
            "unseen_levels": getattr(self, "unseen_levels", "raise")}

    @property
    def covariate_groups(self) -> dict[str, list[str]]:
        """Group -> attribute columns, for the groups that have any (in :data:`GROUPS` order)."""
        layout = getattr(self, "covariate_layout_", None)
        if layout is not None:
            return {g: list(c) for g, c in layout.groups.items()}
        return {g: list(getattr(self, f"{g}_covariates", None) or []) for g in GROUPS
                if getattr(self, f"{g}_covariates", None)}

    @property
    def has_covariates(self) -> bool:
        """Whether the model uses any covariate."""
        return bool(self.covariate_groups)

    @property
    def covariate_columns(self) -> list[str]:
        """Every attribute column the model reads, once each, in order."""
        out: list[str] = []
        for cols in self.covariate_groups.values():
            out += [c for c in cols if c not in out]
        return out

    def _learn_layout(self, frame: pd.DataFrame) -> CovariateLayout | None:
        if not self.has_covariates:
            return None
        encoding = CovariateEncoding.learn(frame, self.covariate_columns,
                                           reference=self.covariate_reference,
                                           standardize=self.standardize_covariates,
                                           what="the fitting data")
        return CovariateLayout(encoding, self.covariate_groups)

    def covariate_design(self, data: pd.DataFrame) -> pd.DataFrame:
        """The design columns the fitted model reads from ``data`` (one row per customer):
        indicators ``column[level]`` and numeric columns (scaled as when fitted)."""
        layout = self._layout()
        z = layout.encoding.design(data, unseen=getattr(self, "unseen_levels", "raise"))
        return pd.DataFrame(z, index=data.index, columns=layout.encoding.design_names)

    def _layout(self) -> CovariateLayout:
        layout = getattr(self, "covariate_layout_", None)
        if layout is None:
            raise ValueError(f"this {type(self).__name__} has no covariates")
        return layout

    def _eta(self, z: np.ndarray, coefs: np.ndarray) -> dict[str, np.ndarray]:
        """Linear predictor per group: (n,) for coefficients (k,), (S, n) for draws (S, k)."""
        layout = self._layout()
        out = {}
        for g, c in layout.split(np.asarray(coefs, dtype=float)).items():
            zg = z[:, layout.positions[g]]
            out[g] = zg @ c if c.ndim == 1 else c @ zg.T
        return out
