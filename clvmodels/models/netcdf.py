"""netCDF persistence of Bayesian posteriors (no pickle), validated on load.

A file holds the ``posterior`` and ``sample_stats`` groups (and, on request, the unique data
rows and the pointwise log-likelihood) of an :class:`arviz.InferenceData`; the posterior's
``clvmodels`` attribute is a JSON document naming the model class, the priors, segments,
the covariate layout (``CovariateLayout.to_dict()``: columns, levels, reference levels,
scaling — so prediction data whose covariates do not match are refused), time unit, package
version, diagnostics and timings. Loading checks the document and the
posterior's variables and finds the class in the model registry
(:mod:`clvmodels.models.registry`) by the class name the file gives.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clvmodels.models import registry
from clvmodels.models.bayes_covariates import coefficient_var
from clvmodels.models.links import CovariateLayout

if TYPE_CHECKING:
    import arviz as az

__all__ = ["FORMAT", "FORMAT_VERSION", "NetCDFPersistence", "load_netcdf_model",
           "read_posterior", "write_posterior"]

#: the ``format`` field of the JSON document
FORMAT = "clvmodels-bayes"
#: the newest version of the document this code reads (and the one it writes)
FORMAT_VERSION = 1

_GROUPS = ("posterior", "sample_stats")
_DATA_GROUPS = ("observed_data", "constant_data", "log_likelihood")


def write_posterior(idata: az.InferenceData, meta: dict[str, Any], path: str | os.PathLike,
                    *, include_data: bool = False, overwrite: bool = True) -> Path:
    """Write ``idata``'s posterior (and, with ``include_data``, its data groups) with the
    JSON document ``meta`` to ``path``, atomically (a temporary file, then a rename)."""
    import arviz as az

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    groups = {g: getattr(idata, g) for g in _GROUPS}
    if include_data:
        for g in _DATA_GROUPS:
            if g in idata.groups():
                groups[g] = getattr(idata, g)
    out = az.InferenceData(**groups)
    out.posterior.attrs["clvmodels"] = json.dumps(
        {"format": FORMAT, "format_version": FORMAT_VERSION, **meta})
    tmp = path.with_name(path.name + ".tmp")
    out.to_netcdf(str(tmp))
    os.replace(tmp, path)
    return path


def read_posterior(path: str | os.PathLike) -> tuple[az.InferenceData, dict[str, Any]]:
    """Read a file written by :func:`write_posterior`: ``(idata, meta)``, loaded in memory.

    Raises ``ValueError`` for a file that is not a clvmodels posterior, a newer format, or a
    document missing the model's name or priors.
    """
    import arviz as az

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such model file: {path}")
    idata = az.from_netcdf(str(path))
    if hasattr(idata, "load"):
        idata.load()
    raw = idata.posterior.attrs.get("clvmodels") if "posterior" in idata.groups() else None
    if raw is None:
        raise ValueError(f"{path} is not a clvmodels Bayesian model file")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: the model description is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a clvmodels Bayesian model file")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {version!r} is not supported by this "
                         f"version of clvmodels (reads up to {FORMAT_VERSION})")
    if not isinstance(meta.get("model"), str) or not isinstance(meta.get("priors"), dict):
        raise ValueError(f"{path}: the model description lacks the model class or priors")
    if "sample_stats" not in idata.groups():
        raise ValueError(f"{path}: no sample_stats group")
    return idata, meta


def load_netcdf_model(path: str | os.PathLike) -> Any:
    """Load a Bayesian model saved with ``model.save(path)`` (netCDF), validated."""
    from clvmodels.models.priors import validate_priors

    idata, meta = read_posterior(path)
    name = meta["model"]
    try:
        cls = registry.get_model(name)  # the class the file names, by class name
    except ValueError:
        cls = None
    if cls is None or cls.__name__ != name or not callable(getattr(cls, "_from_idata", None)):
        raise ValueError(f"{path}: unknown Bayesian model type {name!r}")
    missing = [v for v in cls.param_names if v not in idata.posterior]
    if missing:
        raise ValueError(f"{path}: the posterior lacks the {name} parameter(s) {missing}")
    validate_priors(meta["priors"], meta["priors"])  # distributions known, numbers finite
    return cls._from_idata(idata, meta)


class NetCDFPersistence:
    """``save`` and the loader's ``_from_idata`` of a Bayesian model (a mixin of
    :class:`clvmodels.models.bayes.BayesianModel`)."""

    # ---- persistence -----------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, include_data: bool = False,
             overwrite: bool = True) -> Path:
        """Save the posterior as netCDF (no pickle; :mod:`clvmodels.models.netcdf`).

        Stored: ``posterior`` and ``sample_stats``, and as attributes the model class, the
        priors (JSON), segment column and labels, time unit, package version, diagnostics and
        timings. The RFM data (unique rows, weights) and the pointwise log-likelihood are
        stored only with ``include_data=True``.
        """
        self._check_fitted()
        from clvmodels._version import __version__

        meta = {
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
            "covariates": (self.covariate_layout_.to_dict()
                           if getattr(self, "covariate_layout_", None) is not None else None),
            "unseen_levels": getattr(self, "unseen_levels", "raise"),
            "fit_info": {
                "n_customers": self.n_customers_,
                "n_unique_rows": self.n_unique_rows_,
                "sampler": self.sampler_,
                "timings": getattr(self, "fit_timings_", {}),
                "diagnostics": self.diagnostics_,
                "segment_sizes": (self._segment_sizes().tolist() if self.hierarchical
                                  else None),
            },
        }
        return write_posterior(self.idata_, meta, path, include_data=include_data,
                               overwrite=overwrite)

    @classmethod
    def _from_idata(cls, idata: az.InferenceData, meta: dict[str, Any]) -> Any:
        """The model a netCDF file describes (``meta``: its JSON document)."""
        layout = None
        if meta.get("covariates"):
            layout = CovariateLayout.from_dict(meta["covariates"])
            bad = [g for g in layout.groups if g not in cls.covariate_links]
            if bad:
                raise ValueError(f"{cls.__name__} takes no covariates of group(s) {bad}")
            missing = [coefficient_var(g) for g in layout.groups
                       if coefficient_var(g) not in idata.posterior]
            if missing:
                raise ValueError(f"the posterior lacks the coefficient vector(s) {missing}")
            for g, pos in layout.positions.items():
                size = idata.posterior[coefficient_var(g)].size // (
                    idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"])
                if size != len(pos):
                    raise ValueError(f"the posterior's {coefficient_var(g)} has {size} "
                                     f"coefficients; the covariate layout names {len(pos)}")
        groups = layout.groups if layout is not None else {}
        model = cls(priors=meta.get("user_priors"), segment_col=meta.get("segment_col"),
                    parametrization=meta.get("parametrization", "non_centered"),
                    purchase_covariates=groups.get("purchase"),
                    dropout_covariates=groups.get("dropout"),
                    spend_covariates=groups.get("spend"),
                    standardize_covariates=bool(layout is not None
                                                and layout.encoding.standardize),
                    unseen_levels=meta.get("unseen_levels", "raise"))
        model.covariate_layout_ = layout
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
        model._set_params()
        model._diagnose(warn=False)
        return model

