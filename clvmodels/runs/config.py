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

Which models a run takes is decided by the model registry
(:mod:`clvmodels.models.registry`) and the input's data kind (:mod:`clvmodels.datakinds`),
never by a list here: ``input.kind`` names the input, and every registered family of the
matching data kind is accepted, maximum likelihood or Bayesian (a family registered later,
e.g. a new ``bayes-*`` model, is accepted without a change here):

================= ======================================= ===============================
``input.kind``    the input                               ``models[].family`` (data kind)
================= ======================================= ===============================
``transactions``  transaction rows (CSV / Parquet, glob)  continuous: bgnbd, pnbd, ...
``discrete``      a discrete-time summary: ``frequency,   discrete: bgbb, ...
                  recency, T`` (or ``periods``) counted
                  in opportunities [+ weights column]
``subscriptions`` subscription records (customer, start,  contractual: sbg, ...
                  end; end empty while active)
================= ======================================= ===============================

``[spend]`` takes the registered spend families (gammagamma, bayes-gammagamma) for
transactions. ``input.engine`` is the engine of the summary: "pandas", "duckdb" (the files
are summarised by DuckDB and never read into pandas whole) or "spark" (transactions only:
summary, fits, valuation and value tiers by :mod:`clvmodels.engines.spark`; covariates
from a ``[customers]`` table joined in Spark; no hierarchical model yet). The
comparison report works on pandas frames: with "duckdb" or "spark" it reads the columns it
needs (id, date, amount, segment/covariate columns) of the input into pandas; tracking
materialises only a per-customer frame.

Layout of a file (every table but ``input`` and ``models`` optional)::

    name = "cdnow"                 # the run's name: runs go to <runs_dir>/<name>/<run_id>/
    seed = 42                      # default seed of every sampler (a model's sampler.seed wins)

    [input]
    kind = "transactions"          # or "discrete" (a summary) or "subscriptions"
    path = "../transactions.csv"   # a file or a glob (CSV / Parquet), read in sorted order
    engine = "pandas"              # or "duckdb", "spark": the engine of the summary
    customer_id_col = "customer_id"
    datetime_col = "date"          # transactions
    monetary_value_col = "amount"  # transactions; "" for none (then no spend model)
    date_format = "%Y-%m-%d"       # optional strftime layout of text dates
    time_unit = "W"                # D, W, M or Y; default W (transactions), M (the contract
                                   # period of subscriptions); discrete: one opportunity
    observation_end = "1997-12-31" # or "latest" (transactions): the day of the last one
    start_col = "start"            # subscriptions: start and end dates
    end_col = "end"
    revenue_col = ""               # subscriptions: revenue per period (latest record)
    weights_col = ""               # discrete: a column counting identical customers
    spark_master = "local[*]"      # engine "spark": the master (ignored when a session runs)
    spark_conf = {}                # and settings, e.g. {"spark.sql.shuffle.partitions" = 8}

    [customers]                    # optional attribute table for covariates / segments
    path = "customers.csv"
    id_col = "customer_id"

    [[models]]
    family = "bgnbd"               # any registered family of the input's data kind
    method = "mle"                 # or "bayes" (the family's Bayesian twin); a Bayesian
                                   # family (family = "bayes-bgnbd") needs no method
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

    [spend]                        # transactions only
    family = "gammagamma"          # a registered spend family, or "none": CLV counted in
                                   # transactions (default: gammagamma with an amount column)
    method = "mle"
    spend_covariates = []

    [valuation]
    horizon = "12M"
    period = "M"                   # discounting period (transactions; discrete: one
                                   # opportunity by default; subscriptions: input.time_unit)
    discount_rate = 0.10
    margin = 1.0
    acquisition_cost = 0.0
    revenue_per_period = 1.0       # subscriptions without input.revenue_col

    [report]                       # the comparison report on a holdout
    enabled = true
    holdout = "13W"                # calibration_end = observation_end - holdout
    baselines = true               # (discrete: the summary's holdout columns instead)
    backtest_cutoffs = []          # transactions: also a backtest at these cut-offs
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
    "resolve_family",
    "resolved",
]

#: ``input.kind`` -> the data kind (:data:`clvmodels.datakinds.KINDS`) of its models
INPUT_KINDS = {"transactions": "continuous", "discrete": "discrete",
               "subscriptions": "contractual"}


class ConfigError(ValueError):
    """The configuration file is unreadable or breaks the schema; the message lists every
    problem, one line each, each naming its key path."""


@dataclass(frozen=True)
class InputConfig:
    path: str
    kind: Literal["transactions", "discrete", "subscriptions"] = "transactions"
    engine: Literal["pandas", "duckdb", "spark"] = "pandas"
    customer_id_col: str = "customer_id"
    datetime_col: str = "date"
    monetary_value_col: str = "amount"
    date_format: str = ""
    #: None: W for transactions, M (the contract period) for subscriptions; discrete: the
    #: length of one opportunity, required
    time_unit: Literal["D", "W", "M", "Y"] | None = None
    observation_end: str = "latest"
    negative_amounts: Literal["raise", "drop"] = "raise"
    start_col: str = "start"
    end_col: str = "end"
    revenue_col: str = ""
    weights_col: str = ""
    spark_master: str = "local[*]"
    spark_conf: dict[str, Any] = field(default_factory=dict)

    @property
    def data_kind(self) -> str:
        """The data kind of the models this input feeds (``continuous`` for transactions)."""
        return INPUT_KINDS[self.kind]

    @property
    def unit(self) -> str | None:
        """The model time unit: ``time_unit`` or the kind's default (None: not given for a
        discrete summary)."""
        return self.time_unit or {"transactions": "W", "subscriptions": "M"}.get(self.kind)


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
    #: None: maximum likelihood, unless ``family`` is a Bayesian registry name
    method: Literal["mle", "bayes"] | None = None
    name: str = ""
    penalizer: float = 0.0
    purchase_covariates: list[str] = field(default_factory=list)
    dropout_covariates: list[str] = field(default_factory=list)
    segment_col: str = ""
    priors: dict[str, Any] = field(default_factory=dict)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    @property
    def registry_name(self) -> str:
        """The registry's name of the model (``bayes-bgnbd`` for ``family = "bgnbd"``,
        ``method = "bayes"``): :func:`resolve_family`; ValueError when there is none."""
        return resolve_family(self.family, self.method)[0]

    @property
    def bayesian(self) -> bool:
        """Whether the model is Bayesian (its registry class says)."""
        return bool(getattr(_registry().get_model(self.registry_name), "bayesian", False))

    @property
    def label(self) -> str:
        """The name outputs use: ``name`` or the registry name."""
        if self.name:
            return self.name
        try:
            return self.registry_name
        except ValueError:
            return self.family


@dataclass(frozen=True)
class SpendConfig:
    #: a registered spend family, "none", or "" (default): the registry's maximum-likelihood
    #: spend family for transactions with an amount column, else none
    family: str = ""
    method: Literal["mle", "bayes"] | None = None
    penalizer: float = 0.0
    spend_covariates: list[str] = field(default_factory=list)
    priors: dict[str, Any] = field(default_factory=dict)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    @property
    def registry_name(self) -> str | None:
        """The spend model's registry name (None: no spend model); ``family`` "" must have
        been resolved by :func:`load_config` (:func:`resolve_spend`)."""
        if self.family in ("none", ""):
            return None
        return resolve_family(self.family, self.method)[0]

    @property
    def bayesian(self) -> bool:
        name = self.registry_name
        return name is not None and bool(getattr(_registry().get_model(name), "bayesian",
                                                 False))


@dataclass(frozen=True)
class ValuationConfig:
    horizon: str = "12M"
    #: None: M for transactions, one opportunity for a discrete summary; subscriptions are
    #: valued per contract period (input.time_unit)
    period: str | None = None
    discount_rate: float = 0.10
    margin: float = 1.0
    acquisition_cost: float = 0.0
    revenue_per_period: float = 1.0


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
    return resolved(config)


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


def _registry() -> Any:
    from clvmodels.models import registry

    return registry


def _names(**filters: Any) -> dict[type, str]:
    """Registered classes -> their registry names (``registry.models(**filters)``)."""
    reg = _registry()
    return dict(zip(reg.models(**filters), reg.model_names(**filters), strict=True))


#: a data kind -> the ``input.kind`` that feeds it
_INPUT_OF = {kind: name for name, kind in INPUT_KINDS.items()}


def _resolve(family: str, method: str | None) -> tuple[str | None, type | None, str, str]:
    """``(registry name, class, key, problem)``: the registered model ``family`` and
    ``method`` name (a Bayesian family: itself; an MLE family with ``method = "bayes"``: its
    Bayesian twin, the registered class whose ``_mle_class`` it is), or the key (``family``
    or ``method``) and problem that prevent it."""
    names = _names()
    try:
        cls = _registry().get_model(family)
    except ValueError:
        return None, None, "family", "unknown"
    name = names[cls]
    if getattr(cls, "bayesian", False):
        if method == "mle":
            return None, cls, "method", (f"{name!r} is a Bayesian family: set method = "
                                         "'bayes' or leave method out")
        return name, cls, "", ""
    if method == "bayes":
        twins = [c for c in names if getattr(c, "bayesian", False)
                 and getattr(c, "_mle_class", None) is cls]
        if not twins:
            others = [n for c, n in names.items() if getattr(c, "bayesian", False)
                      and c.data_kind == cls.data_kind]
            return None, cls, "method", (f"{name!r} has no Bayesian twin in the model "
                                         f"registry (Bayesian {cls.data_kind} families: "
                                         f"{', '.join(others) or 'none'})")
        return names[twins[0]], twins[0], "", ""
    return name, cls, "", ""


def resolve_family(family: str, method: str | None) -> tuple[str, type]:
    """The registry name and class of ``family`` with ``method`` (:func:`_resolve`);
    ValueError naming the problem when there is none."""
    name, cls, _, problem = _resolve(family, method)
    if name is None or cls is None:
        raise ValueError(f"family {family!r}: {problem}")
    return name, cls


def _spend_family(config: RunConfig) -> str:
    """``spend.family`` with its default resolved: the registry's first maximum-likelihood
    spend family for transactions with an amount column, else "none"."""
    family = config.spend.family
    if family:
        return family
    if config.input.kind == "transactions" and config.input.monetary_value_col:
        return _registry().model_names(role="spend", bayesian=False)[0]
    return "none"


def resolved(config: RunConfig) -> RunConfig:
    """``config`` with its defaults decided (a well-formed config, :func:`check_config`):
    every model's and the spend model's method, the spend family and the time unit — what
    the manifest records as the configuration."""
    models = [dataclasses.replace(m, method="bayes" if m.bayesian else "mle")
              for m in config.models]
    spend = dataclasses.replace(config.spend, family=_spend_family(config))
    spend = dataclasses.replace(spend, method=(
        "bayes" if spend.bayesian else "mle") if spend.family != "none" else spend.method)
    inp = dataclasses.replace(config.input, time_unit=config.input.unit)
    return dataclasses.replace(config, models=models, spend=spend, input=inp)


def check_config(config: RunConfig) -> list[str]:
    """The problems a well-typed configuration may still have, each naming its key."""
    problems: list[str] = []
    if not config.name or any(c in config.name for c in "/\\") or config.name.startswith("."):
        problems.append(f"name: expected a plain name (no slashes, not hidden), got "
                        f"{config.name!r}")
    _check_input(config, problems)
    if not config.models:
        problems.append("models: name at least one model ([[models]] with a family)")
    labels: set[str] = set()
    for i, m in enumerate(config.models):
        _check_model(config, i, m, problems)
        key = f"models[{i}]"
        if m.label in labels:
            problems.append(f"{key}.name: {m.label!r} is used twice (give each model a name)")
        labels.add(m.label)
        if any(ch in m.label for ch in "/\\") or m.label.startswith("."):
            problems.append(f"{key}.name: expected a plain name, got {m.label!r}")
    _check_spend(config, problems)
    _check_valuation(config, problems)
    _check_horizon(config.report.holdout, "report.holdout", problems)
    if config.report.backtest_cutoffs:
        if config.input.kind != "transactions":
            problems.append(f"report.backtest_cutoffs: backtests run on transactions "
                            f"(input.kind = 'transactions'), not {config.input.kind}")
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


def _check_input(config: RunConfig, problems: list[str]) -> None:
    inp = config.input
    files = input_files(config)
    if not files:
        problems.append(f"input.path: no input file matches {inp.path!r} (relative "
                        f"to {config.base_dir})")
    formats = {p.suffix.lower() in (".parquet", ".pq", ".parq") for p in files}
    if inp.engine != "pandas" and len(formats) > 1:
        problems.append(f"input.path: {inp.path!r} matches both CSV and Parquet files; "
                        f"engine {inp.engine!r} reads one format at a time (convert them, "
                        "or use engine 'pandas')")
    if inp.observation_end != "latest":
        _check_date(inp.observation_end, "input.observation_end", problems)
    elif inp.kind == "subscriptions":
        problems.append("input.observation_end: subscription records need the day they were "
                        "observed (renewals are known up to it); 'latest' applies to "
                        "transactions")
    elif inp.kind == "discrete":
        problems.append("input.observation_end: a discrete summary has no dates: give the "
                        "day it describes (it names the run)")
    if inp.kind == "discrete":
        if inp.engine != "pandas":
            problems.append(f"input.engine: a discrete summary is read with 'pandas' (the "
                            f"engines summarise transactions and subscriptions), got "
                            f"{inp.engine!r}")
        if inp.time_unit is None:
            problems.append("input.time_unit: a discrete summary needs the length of one "
                            "transaction opportunity (e.g. 'Y' for yearly opportunities)")
    if inp.kind == "subscriptions" and inp.engine == "spark":
        problems.append("input.engine: 'spark' summarises transactions; subscriptions take "
                        "'pandas' or 'duckdb'")
    for opt, kind in (("revenue_col", "subscriptions"), ("weights_col", "discrete")):
        if getattr(inp, opt) and inp.kind != kind:
            problems.append(f"input.{opt}: applies to input.kind = {kind!r}, not "
                            f"{inp.kind!r}")
    if config.customers is not None and not config.resolve(config.customers.path).is_file():
        problems.append(f"customers.path: no such file {config.customers.path!r}")


def _check_model(config: RunConfig, i: int, m: ModelConfig, problems: list[str]) -> None:
    key = f"models[{i}]"
    kind = config.input.data_kind
    name, cls, where, problem = _resolve(m.family, m.method)
    if problem == "unknown":
        fits = _registry().model_names(kind=kind)
        problems.append(f"{key}.family: expected one of {', '.join(fits)} (the registered "
                        f"{kind} families, for input.kind = {config.input.kind!r}), got "
                        f"{m.family!r}")
        return
    assert cls is not None
    if cls.data_kind == "spend":
        problems.append(f"{key}.family: {m.family!r} is a spend model: name it in [spend] "
                        "(spend.family)")
        return
    if cls.data_kind != kind:
        want = _INPUT_OF[cls.data_kind]
        problems.append(f"{key}.family: {m.family!r} needs a {want} input (input.kind = "
                        f"{want!r}); this run's input.kind is {config.input.kind!r}")
        return
    if problem:
        problems.append(f"{key}.{where}: {problem}")
        return
    bayesian = bool(getattr(cls, "bayesian", False))
    if not bayesian:
        for opt in ("segment_col", "priors"):
            if getattr(m, opt):
                problems.append(f"{key}.{opt}: applies to Bayesian models only (method = "
                                f"'bayes'); {name!r} is fitted by maximum likelihood")
    elif m.penalizer:
        problems.append(f"{key}.penalizer: applies to method = 'mle' only (set priors)")
    if m.penalizer < 0:
        problems.append(f"{key}.penalizer: must be >= 0, got {m.penalizer}")
    links = getattr(cls, "covariate_links", {}) or {}
    for group in ("purchase", "dropout"):
        cols = getattr(m, f"{group}_covariates")
        if cols and group not in links:
            problems.append(f"{key}.{group}_covariates: {name!r} has no {group} covariates "
                            f"(its covariate groups: {', '.join(links) or 'none'})")
        elif cols and config.input.engine == "spark" and config.customers is None:
            problems.append(f"{key}.{group}_covariates: input.engine = 'spark' reads "
                            "covariates from a [customers] table (each customer's first "
                            "transaction is read by 'pandas' and 'duckdb' only)")
    if m.segment_col and config.input.engine == "spark":
        problems.append(f"{key}.segment_col: input.engine = 'spark' fits no hierarchical "
                        "model yet (use 'pandas' or 'duckdb')")
    _check_sampler(m.sampler, f"{key}.sampler", problems)


def _check_spend(config: RunConfig, problems: list[str]) -> None:
    s = config.spend
    family = _spend_family(config)
    if family != "none":
        if config.input.kind != "transactions":
            problems.append(f"spend.family: a spend model is fitted on transactions "
                            f"(input.kind = 'transactions'), not {config.input.kind}"
                            + ("; subscriptions are valued with input.revenue_col or "
                               "valuation.revenue_per_period"
                               if config.input.kind == "subscriptions" else "")
                            + " (set spend.family = 'none')")
        elif not config.input.monetary_value_col:
            problems.append("spend.family: a spend model needs input.monetary_value_col "
                            "(or set spend.family = 'none')")
        else:
            _, cls, where, problem = _resolve(family, s.method)
            spend_names = ", ".join(_registry().model_names(role="spend"))
            if problem == "unknown" or (cls is not None and cls.data_kind != "spend"):
                problems.append(f"spend.family: expected one of {spend_names} or 'none', got "
                                f"{family!r}")
            elif problem:
                problems.append(f"spend.{where}: {problem}")
            elif s.spend_covariates and config.input.engine == "spark" \
                    and config.customers is None:
                problems.append("spend.spend_covariates: input.engine = 'spark' reads "
                                "covariates from a [customers] table (each customer's first "
                                "transaction is read by 'pandas' and 'duckdb' only)")
    elif s.spend_covariates:
        problems.append("spend.spend_covariates: need a spend model (spend.family)")
    _check_sampler(s.sampler, "spend.sampler", problems)


def _check_valuation(config: RunConfig, problems: list[str]) -> None:
    v = config.valuation
    _check_horizon(v.horizon, "valuation.horizon", problems)
    if v.period is not None:
        if config.input.kind == "subscriptions":
            if v.period != config.input.unit:
                problems.append(f"valuation.period: subscriptions are valued per contract "
                                f"period (input.time_unit = {config.input.unit!r}); leave "
                                f"valuation.period out, got {v.period!r}")
        elif v.period not in ("D", "W", "M", "Y"):
            _check_horizon(v.period, "valuation.period", problems)
    if not v.discount_rate >= 0:
        problems.append(f"valuation.discount_rate: must be >= 0, got {v.discount_rate}")
    if not 0 < v.margin <= 1:
        problems.append(f"valuation.margin: must be in (0, 1], got {v.margin}")
    if v.acquisition_cost < 0:
        problems.append(f"valuation.acquisition_cost: must be >= 0, got {v.acquisition_cost}")
    if not v.revenue_per_period > 0:
        problems.append(f"valuation.revenue_per_period: must be > 0, got "
                        f"{v.revenue_per_period}")
    elif v.revenue_per_period != 1.0 and config.input.kind != "subscriptions":
        problems.append("valuation.revenue_per_period: applies to input.kind = "
                        "'subscriptions' (transactions are valued with a spend model)")


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
