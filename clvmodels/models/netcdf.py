"""netCDF persistence of Bayesian posteriors (no pickle), validated on load.

A file holds the ``posterior`` and ``sample_stats`` groups (and, on request, the unique data
rows and the pointwise log-likelihood) of an :class:`arviz.InferenceData`; the posterior's
``clvmodels`` attribute is a JSON document naming the model class, the priors, segments,
time unit, package version, diagnostics and timings. Loading checks the document and the
posterior's variables and finds the class in the model registry
(:mod:`clvmodels.models.registry`) by the class name the file gives.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clvmodels.models import registry

if TYPE_CHECKING:
    import arviz as az

__all__ = ["FORMAT", "FORMAT_VERSION", "load_netcdf_model", "read_posterior", "write_posterior"]

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
