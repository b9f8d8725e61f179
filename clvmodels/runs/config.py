"""The run configuration (``clvmodels run RUN.toml``): a typed schema and its loader.

The TOML file is read with :mod:`tomllib` and loaded into the frozen dataclasses below by one
generic walker (:func:`load_config`): every key is checked against its field's type (``str``,
``int``, ``float``, ``bool``, a ``Literal`` choice, a list, a nested table, a list of
tables), unknown keys are refused, required keys must be present, and every problem names
its key path (``models[1].method: expected 'mle' or 'bayes', got 'bayesian'``). All the
problems of a file are reported together, before anything is read or fitted. Checks that
need more than a type (a known model family, a readable date, a horizon such as ``12M``,
input files that exist) follow in :func:`check_config`, with the same key paths.

Relative paths (``input.path``, ``customers.path``, ``output.runs_dir``) are resolved
against the folder of the configuration file, so a scheduled job may run from anywhere.
The input files are read into one pandas frame (the comparison report and the tracking need
the transactions themselves); ``input.engine`` is the engine of the RFM summary.

Layout of a file (every table but ``input`` and ``models`` optional)::

    name = "cdnow"                 # the run's name: runs go to <runs_dir>/<name>/<run_id>/
    seed = 42                      # default seed of every sampler (a model's sampler.seed wins)

    [input]
    path = "../transactions.csv"   # a file or a glob (CSV / Parquet), read in sorted order
    engine = "pandas"              # or "duckdb": the engine of the RFM summary
    customer_id_col = "customer_id"
    datetime_col = "date"
    monetary_value_col = "amount"  # "" for none (then no spend model)
    date_format = "%Y-%m-%d"       # optional strftime layout of text dates
    time_unit = "W"                # D, W, M or Y
    observation_end = "1997-12-31" # or "latest": the day of the last transaction

    [customers]                    # optional attribute table for covariates / segments
    path = "customers.csv"
    id_col = "customer_id"

    [[models]]
    family = "bgnbd"               # bgnbd, mbgnbd, pnbd
    method = "mle"                 # or "bayes" (the family's Bayesian twin)
    name = "bgnbd"                 # optional label (default: the registry name)
    penalizer = 0.0                # MLE only
    purchase_covariates = []
    dropout_covariates = []
    segment_col = ""               # Bayesian only: hierarchical over this column
    priors = {}                    # Bayesian only: the model's prior specs
    [models.sampler]               # Bayesian only
    draws = 1000
    tune = 1000
    chains = 2
    target_accept = 0.0            # 0: the sampler's default
    seed = -1                      # -1: the run's seed

    [spend]
    family = "gammagamma"          # or "none": CLV counted in transactions
    method = "mle"

    [valuation]
    horizon = "12M"
    period = "M"
    discount_rate = 0.10
    margin = 1.0
    acquisition_cost = 0.0

    [report]                       # the comparison report (compare_models on a holdout)
    enabled = true
    holdout = "13W"                # calibration_end = observation_end - holdout
    baselines = true
    backtest_cutoffs = []          # dates: also a backtest at these cut-offs
    backtest_holdout = "13W"

    [output]
    runs_dir = "runs"
    run_id = ""                    # default: the observation end (YYYY-MM-DD)
    partition_rows = 1000000       # forecasts with more rows are written as parts
    save_models = true
"""

from __future__ import annotations

import dataclasses
import glob
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "ConfigError",
    "CustomersConfig",
    "InputConfig",
    "ModelConfig",
    "OutputConfig",
    "ReportConfig",
    "RunConfig",
    "SamplerConfig",
    "SpendConfig",
    "ValuationConfig",
    "check_config",
    "config_dict",
    "load_config",
]

#: Transaction-model families a run takes (continuous time; each has a Bayesian twin).
FAMILIES = ("bgnbd", "mbgnbd", "pnbd")


class ConfigError(ValueError):
    """The configuration file is unreadable or breaks the schema; the message lists every
    problem, one line each, each naming its key path."""


@dataclass(frozen=True)
class InputConfig:
    path: str
    engine: Literal["pandas", "duckdb"] = "pandas"
    customer_id_col: str = "customer_id"
    datetime_col: str = "date"
    monetary_value_col: str = "amount"
    date_format: str = ""
    time_unit: Literal["D", "W", "M", "Y"] = "W"
    observation_end: str = "latest"
    negative_amounts: Literal["raise", "drop"] = "raise"


@dataclass(frozen=True)
class CustomersConfig:
    path: str
    id_col: str = ""


@dataclass(frozen=True)
class SamplerConfig:
    draws: int = 1000
    tune: int = 1000
    chains: int = 2
    target_accept: float = 0.0
    seed: int = -1


@dataclass(frozen=True)
class ModelConfig:
    family: str
    method: Literal["mle", "bayes"] = "mle"
    name: str = ""
    penalizer: float = 0.0
    purchase_covariates: list[str] = field(default_factory=list)
    dropout_covariates: list[str] = field(default_factory=list)
    segment_col: str = ""
    priors: dict[str, Any] = field(default_factory=dict)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    @property
    def registry_name(self) -> str:
        """The registry's name of the model (``bayes-bgnbd`` for a Bayesian BG/NBD)."""
        return f"bayes-{self.family}" if self.method == "bayes" else self.family

    @property
    def label(self) -> str:
        """The name outputs use: ``name`` or the registry name."""
        return self.name or self.registry_name


@dataclass(frozen=True)
class SpendConfig:
    family: Literal["gammagamma", "none"] = "gammagamma"
    method: Literal["mle", "bayes"] = "mle"
    penalizer: float = 0.0
    spend_covariates: list[str] = field(default_factory=list)
    priors: dict[str, Any] = field(default_factory=dict)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    @property
    def registry_name(self) -> str | None:
        if self.family == "none":
            return None
        return f"bayes-{self.family}" if self.method == "bayes" else self.family


@dataclass(frozen=True)
class ValuationConfig:
    horizon: str = "12M"
    period: str = "M"
    discount_rate: float = 0.10
    margin: float = 1.0
    acquisition_cost: float = 0.0


@dataclass(frozen=True)
class ReportConfig:
    enabled: bool = True
    holdout: str = "13W"
    baselines: bool = True
    backtest_cutoffs: list[str] = field(default_factory=list)
    backtest_holdout: str = "13W"


@dataclass(frozen=True)
class OutputConfig:
    runs_dir: str = "runs"
    run_id: str = ""
    partition_rows: int = 1_000_000
    save_models: bool = True


@dataclass(frozen=True)
class RunConfig:
    name: str
    input: InputConfig
    models: list[ModelConfig]
    seed: int = 0
    customers: CustomersConfig | None = None
    spend: SpendConfig = field(default_factory=SpendConfig)
    valuation: ValuationConfig = field(default_factory=ValuationConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    #: the folder relative paths are resolved against (the configuration file's)
    base_dir: str = field(default=".", metadata={"internal": True})

    def resolve(self, path: str) -> Path:
        """``path`` as given when absolute, else under :attr:`base_dir`."""
        p = Path(os.path.expanduser(path))
        return Path(os.path.normpath(p if p.is_absolute() else Path(self.base_dir) / p))


# --------------------------------------------------------------------------------------
# the generic loader
# --------------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _expected(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = [repr(c) for c in typing.get_args(tp)]
        return " or ".join(choices) if len(choices) <= 2 else \
            ", ".join(choices[:-1]) + " or " + choices[-1]
    if origin is list:
        return "a list"
    if dataclasses.is_dataclass(tp) or origin is dict:
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, str(tp))


def _convert(tp: Any, value: Any, key: str, problems: list[str]) -> Any:
    """``value`` checked (and converted: a table to its dataclass) against ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(inner[0], value, key, problems)
    if origin is Literal:
        if value in typing.get_args(tp) and type(value) is type(typing.get_args(tp)[0]):
            return value
        problems.append(f"{key}: expected {_expected(tp)}, got {value!r}")
        return None
    if origin is list:
        if not isinstance(value, list):
            problems.append(f"{key}: expected a list, got {_type_name(value)} ({value!r})")
            return []
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{key}[{i}]", problems) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{key}: expected a table, got {_type_name(value)} ({value!r})")
            return {}
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            problems.append(f"{key}: expected a table, got {_type_name(value)} ({value!r})")
            return None
        return _load_table(tp, value, key, problems)  # type: ignore[arg-type]
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, tp):
        return value
    problems.append(f"{key}: expected {_expected(tp)}, got {_type_name(value)} ({value!r})")
    return None


def _load_table(cls: type, table: dict[str, Any], prefix: str, problems: list[str]) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    where = f"{prefix}." if prefix else ""
    for key in table:
        if key not in fields:
            problems.append(f"{where}{key}: unknown key (expected one of "
                            f"{', '.join(fields)})")
    values = {}
    for name, f in fields.items():
        if name in table:
            values[name] = _convert(hints[name], table[name], f"{where}{name}", problems)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.append(f"{where}{name}: required key missing")
    try:  # with problems, build what can be built: the caller raises them all anyway
        return cls(**{k: v for k, v in values.items() if v is not None})
    except TypeError:
        return None


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read and check ``path`` (TOML) against the schema; raise :class:`ConfigError` listing
    every problem with its key path, then :func:`check_config`'s checks."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no such configuration file: {os.fspath(p)}")
    try:
        table = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{os.fspath(p)}: not valid TOML: {exc}") from None
    problems: list[str] = []
    config = _load_table(RunConfig, table, "", problems)
    if problems or config is None:
        raise ConfigError(_message(p, problems or ["cannot be read"]))
    config = dataclasses.replace(config, base_dir=os.fspath(p.resolve().parent))
    problems = check_config(config)
    if problems:
        raise ConfigError(_message(p, problems))
    return config


def _message(path: Path, problems: list[str]) -> str:
    head = f"{os.fspath(path)}: {len(problems)} problem(s) in the configuration:"
    return "\n".join([head, *(f"  {q}" for q in problems)])


# --------------------------------------------------------------------------------------
# checks beyond types
# --------------------------------------------------------------------------------------


def _check_date(value: str, key: str, problems: list[str]) -> None:
    import pandas as pd

    try:
        pd.Timestamp(value)
    except (ValueError, TypeError):
        problems.append(f"{key}: expected a date such as 1997-12-31, got {value!r}")


def _check_horizon(value: str, key: str, problems: list[str]) -> None:
    from clvmodels.valuation import parse_horizon

    try:
        parse_horizon(value, "D")
    except ValueError as exc:
        problems.append(f"{key}: {exc}")


def input_files(config: RunConfig) -> list[Path]:
    """The input files: ``input.path`` itself, or every file its glob matches (sorted)."""
    pattern = os.fspath(config.resolve(config.input.path))
    if glob.has_magic(pattern):
        return [Path(p) for p in sorted(glob.glob(pattern, recursive=True))
                if Path(p).is_file()]
    return [Path(pattern)] if Path(pattern).is_file() else []


def check_config(config: RunConfig) -> list[str]:
    """The problems a well-typed configuration may still have, each naming its key."""
    problems: list[str] = []
    if not config.name or any(c in config.name for c in "/\\") or config.name.startswith("."):
        problems.append(f"name: expected a plain name (no slashes, not hidden), got "
                        f"{config.name!r}")
    if not input_files(config):
        problems.append(f"input.path: no input file matches {config.input.path!r} (relative "
                        f"to {config.base_dir})")
    if config.input.observation_end != "latest":
        _check_date(config.input.observation_end, "input.observation_end", problems)
    if config.customers is not None and not config.resolve(config.customers.path).is_file():
        problems.append(f"customers.path: no such file {config.customers.path!r}")
    if not config.models:
        problems.append("models: name at least one model ([[models]] with a family)")
    labels: set[str] = set()
    for i, m in enumerate(config.models):
        key = f"models[{i}]"
        if m.family not in FAMILIES:
            problems.append(f"{key}.family: expected one of {', '.join(FAMILIES)}, got "
                            f"{m.family!r}")
        if m.label in labels:
            problems.append(f"{key}.name: {m.label!r} is used twice (give each model a name)")
        labels.add(m.label)
        if any(ch in m.label for ch in "/\\") or m.label.startswith("."):
            problems.append(f"{key}.name: expected a plain name, got {m.label!r}")
        if m.method == "mle":
            for opt in ("segment_col", "priors"):
                if getattr(m, opt):
                    problems.append(f"{key}.{opt}: applies to method = 'bayes' only")
        elif m.penalizer:
            problems.append(f"{key}.penalizer: applies to method = 'mle' only (set priors)")
        if m.penalizer < 0:
            problems.append(f"{key}.penalizer: must be >= 0, got {m.penalizer}")
        _check_sampler(m.sampler, f"{key}.sampler", problems)
    if config.spend.family != "none" and not config.input.monetary_value_col:
        problems.append("spend.family: a spend model needs input.monetary_value_col "
                        "(or set spend.family = 'none')")
    _check_sampler(config.spend.sampler, "spend.sampler", problems)
    v = config.valuation
    _check_horizon(v.horizon, "valuation.horizon", problems)
    if v.period not in ("D", "W", "M", "Y"):
        _check_horizon(v.period, "valuation.period", problems)
    if not v.discount_rate >= 0:
        problems.append(f"valuation.discount_rate: must be >= 0, got {v.discount_rate}")
    if not 0 < v.margin <= 1:
        problems.append(f"valuation.margin: must be in (0, 1], got {v.margin}")
    if v.acquisition_cost < 0:
        problems.append(f"valuation.acquisition_cost: must be >= 0, got {v.acquisition_cost}")
    _check_horizon(config.report.holdout, "report.holdout", problems)
    if config.report.backtest_cutoffs:
        _check_horizon(config.report.backtest_holdout, "report.backtest_holdout", problems)
        for i, c in enumerate(config.report.backtest_cutoffs):
            _check_date(c, f"report.backtest_cutoffs[{i}]", problems)
    if config.output.partition_rows < 1:
        problems.append(f"output.partition_rows: must be >= 1, got "
                        f"{config.output.partition_rows}")
    rid = config.output.run_id
    if rid and (any(c in rid for c in "/\\") or rid.startswith(".")):
        problems.append(f"output.run_id: expected a plain name, got {rid!r}")
    return problems


def _check_sampler(s: SamplerConfig, key: str, problems: list[str]) -> None:
    for name in ("draws", "tune", "chains"):
        if getattr(s, name) < 1:
            problems.append(f"{key}.{name}: must be >= 1, got {getattr(s, name)}")
    if s.target_accept and not 0 < s.target_accept < 1:
        problems.append(f"{key}.target_accept: must be in (0, 1), got {s.target_accept}")
    if s.seed < -1:
        problems.append(f"{key}.seed: must be >= 0 (or -1: the run's seed), got {s.seed}")


def config_dict(config: RunConfig) -> dict[str, Any]:
    """The configuration as plain data (the manifest's ``config``)."""
    return dataclasses.asdict(config)
