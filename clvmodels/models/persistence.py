"""Loading saved models: JSON for point estimates, netCDF for posteriors — validated.

A saved file names its model class; the registry (:mod:`clvmodels.models.registry`) resolves
it, so a new family loads without any change here. Every check names the file: its format
(JSON or netCDF, not a Parquet file or an image), the schema (format marker, version, model,
parameters), the parameter domain (positive, finite) and the time unit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from clvmodels.models import registry
from clvmodels.models.base import BaseModel

__all__ = ["ModelFileError", "load_model"]

_NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".h5")
_SUPPORTED_VERSIONS = (1, 2)
_TIME_UNITS = ("D", "W", "M", "Y")


class ModelFileError(ValueError):
    """A model file that cannot be loaded (wrong format, damaged, or invalid content)."""


def _fail(path: Path, problem: str) -> ModelFileError:
    return ModelFileError(f"{path}: {problem}")


def _read_json(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    if raw[:4] == b"PAR1":
        raise _fail(path, "this is a Parquet file, not a saved model (models are .json or .nc)")
    if raw[:8] == b"\x89HDF\r\n\x1a\n" or raw[:3] == b"CDF":
        raise _fail(path, "this is a netCDF/HDF5 file: give it a .nc suffix to load a "
                          "Bayesian model")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(path, "not a text file (a saved model is JSON, or netCDF with a .nc "
                          "suffix)") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        raise _fail(path, f"not valid JSON (truncated or damaged?): {err.msg} at line "
                          f"{err.lineno}, column {err.colno}") from None
    if not isinstance(payload, dict):
        raise _fail(path, "not a clvmodels model file (expected a JSON object)")
    return payload


def _check_payload(path: Path, payload: dict[str, Any]) -> type[BaseModel]:
    if payload.get("format") != "clvmodels-model":
        raise _fail(path, "not a clvmodels model file (no 'format': 'clvmodels-model')")
    version = payload.get("format_version")
    if version not in _SUPPORTED_VERSIONS:
        raise _fail(path, f"format_version {version!r} is not supported by this clvmodels "
                          f"(supported: {list(_SUPPORTED_VERSIONS)}); upgrade clvmodels")
    name = payload.get("model")
    try:
        cls = registry.get_model(str(name))
    except ValueError:
        raise _fail(path, f"unknown model type {name!r}") from None
    if getattr(cls, "bayesian", False):
        raise _fail(path, f"{name} is a Bayesian model: it is saved as netCDF (.nc)")
    params = payload.get("params")
    if not isinstance(params, dict):
        raise _fail(path, "missing 'params'")
    try:
        cls._check_params({k: v for k, v in params.items() if ":" not in str(k)})
    except ValueError as err:
        raise _fail(path, f"invalid parameters: {err}") from None
    if "covariance" not in payload:
        raise _fail(path, "missing 'covariance'")
    unit = payload.get("time_unit")
    if cls.data_kind == "continuous" and unit is None:
        raise _fail(path, "no time unit: the parameters' time scale is unknown, so the "
                          "model cannot be applied safely; refit and save it again")
    if unit is not None and unit not in _TIME_UNITS:
        raise _fail(path, f"unknown time unit {unit!r}; expected one of {list(_TIME_UNITS)}")
    return cls


def load_model(path: str | os.PathLike) -> BaseModel:
    """Load a model saved with ``model.save(path)`` (JSON for MLE models; netCDF for Bayes).

    The file is validated (format, schema version, model type, parameter domain, time unit);
    every error names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such model file: {path}")
    if path.is_dir():
        raise _fail(path, "is a directory, not a model file")
    if path.suffix.lower() in _NETCDF_SUFFIXES:
        from clvmodels.models.bayes import load_netcdf_model  # lazy: arviz is heavy

        with path.open("rb") as handle:
            head = handle.read(8)
        if head.lstrip()[:1] == b"{":
            raise _fail(path, "this is a JSON file, not netCDF: maximum-likelihood models are "
                              "saved as .json — rename it to .json")

        try:
            return load_netcdf_model(path)
        except (OSError, ValueError, KeyError) as err:
            if str(path) in str(err):
                raise
            raise _fail(path, f"cannot be read as a saved Bayesian model: {err}") from None
    payload = _read_json(path)
    cls = _check_payload(path, payload)
    try:
        return cls.from_dict(payload)  # type: ignore[attr-defined]
    except (KeyError, TypeError, ValueError) as err:
        raise _fail(path, f"invalid model file: {err}") from None
