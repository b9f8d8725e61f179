"""One declarative run: config → a run directory, written whole or not at all.

:func:`execute` carries out a :class:`~clvmodels.runs.config.RunConfig` with the library's
public steps — :func:`~clvmodels.rfm_summary`, the registry's model classes and their
``fit``, :func:`~clvmodels.customer_lifetime_value`, :func:`~clvmodels.compare_models`,
:func:`~clvmodels.backtest`, :func:`~clvmodels.report.write_report` — and writes

``<runs_dir>/<name>/<run_id>/`` (``run_id``: ``output.run_id``, by default the observation
end as ``YYYY-MM-DD``, so a scheduled job makes one directory per as-of date and a rerun of
the same date clashes unless ``force``):

* ``forecasts/<model>.parquet`` — one row per customer: the summary the model was fitted
  on (RFM, discrete-time or contract summary, by ``input.kind``; :mod:`.inputs`), the
  valuation's columns and ``value_tier``; a forecast of more than ``output.partition_rows``
  rows is a folder ``forecasts/<model>/part-00000.parquet, ...`` instead (read it with
  ``pandas.read_parquet(folder)``). With ``input.engine = "spark"`` the forecast is valued,
  tiered and written by Spark: always a folder of ``ceil(customers / partition_rows)``
  parts (Spark's part names, ranged and sorted by customer id), the id a column;
* ``models/<model>.json`` (maximum likelihood) or ``.nc`` (Bayesian), and the spend model
  ``models/spend.<family>.json|.nc``;
* ``report/`` — :func:`~clvmodels.report.write_report` of the holdout comparison
  (``report.enabled``), and ``backtest/`` with ``report.backtest_cutoffs``;
* ``tracking.csv`` and ``figures/tracking.png`` when a previous run of the same name is
  found beside this one (:mod:`clvmodels.runs.tracking`; transactions only — a discrete
  summary or subscription records give a warning instead); its section is added to
  ``report/report.html``;
* ``manifest.json`` — the configuration as resolved, the input files (bytes, SHA-256), row
  counts, package versions, seeds, seconds per step, warnings and sampling problems.

Everything is written to a hidden sibling ``.<run_id>.partial-<random>`` and renamed into
place at the end; an error or Ctrl-C removes it, so no half-written run directory is ever
seen. With ``force`` an existing run directory is replaced (moved aside, the new one renamed
in, the old one deleted). The same configuration on the same input gives byte-identical
forecasts (every sampler is seeded; maximum-likelihood fits are deterministic) and the same
models (a maximum-likelihood model's JSON byte for byte; a Bayesian netCDF file holds the
same draws, differing only in its creation time and recorded fit timings).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clvmodels.models.sampling import convergence_lines
from clvmodels.runs.config import RunConfig, config_dict
from clvmodels.runs.inputs import file_sha256

__all__ = ["RunConvergenceError", "RunResult", "execute", "run_directory"]

#: Version of the manifest's layout (raised when a key changes meaning).
MANIFEST_VERSION = 1


class RunConvergenceError(Exception):
    """Sampling problems with ``strict``: nothing was written (the CLI exits with 2)."""


@dataclass
class RunResult:
    """What :func:`execute` produced: the run directory and its manifest."""

    run_dir: Path
    manifest: dict[str, Any]
    convergence: list[str] = field(default_factory=list)


def run_directory(config: RunConfig, observation_end: pd.Timestamp) -> Path:
    """``<runs_dir>/<name>/<run_id>``: ``output.run_id`` or the observation end's date."""
    run_id = config.output.run_id or str(observation_end.date())
    return config.resolve(config.output.runs_dir) / config.name / run_id


class _Clock:
    """Seconds per step, and the progress line that starts each step."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str, message: str) -> Iterator[None]:
        self.say(message)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0)
                                       + time.perf_counter() - started, 4)


def _sampler_kwargs(sampler: Any, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {"draws": sampler.draws, "tune": sampler.tune,
                           "chains": sampler.chains,
                           "random_seed": sampler.seed if sampler.seed >= 0 else seed}
    if sampler.target_accept:
        out["target_accept"] = sampler.target_accept
    return out


def build_models(config: RunConfig) -> tuple[dict[str, Any], Any]:
    """Unfitted transaction models by label and the unfitted spend model (or None): every
    option is checked by the model classes here, before any data are read."""
    from clvmodels.models import registry

    models: dict[str, Any] = {}
    for i, m in enumerate(config.models):
        cls = registry.get_model(m.registry_name)
        cov = {k: list(v) for k, v in (("purchase_covariates", m.purchase_covariates),
                                        ("dropout_covariates", m.dropout_covariates)) if v}
        try:
            if m.bayesian:
                models[m.label] = cls(priors=m.priors or None, segment_col=m.segment_col or None,
                                      **cov)
            else:
                models[m.label] = cls(penalizer=m.penalizer, **cov)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"models[{i}]: {exc}") from None
    spend = None
    s = config.spend
    if s.registry_name is not None:
        cls = registry.get_model(s.registry_name)
        cov = {"spend_covariates": list(s.spend_covariates)} if s.spend_covariates else {}
        try:
            spend = cls(priors=s.priors or None, **cov) if s.bayesian else \
                cls(penalizer=s.penalizer, **cov)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"spend: {exc}") from None
    return models, spend


def _write_forecast(frame: pd.DataFrame, dest: Path, partition_rows: int) -> list[str]:
    """``dest.parquet``, or ``dest/part-NNNNN.parquet`` past ``partition_rows`` rows."""
    if len(frame) <= partition_rows:
        path = dest.with_suffix(".parquet")
        frame.to_parquet(path)
        return [path.name]
    dest.mkdir(parents=True)
    names = []
    for k, start in enumerate(range(0, len(frame), partition_rows)):
        name = f"part-{k:05d}.parquet"
        frame.iloc[start:start + partition_rows].to_parquet(dest / name)
        names.append(f"{dest.name}/{name}")
    return names


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return str(value.date())
    return value


@contextlib.contextmanager
def _staging(run_dir: Path, *, force: bool) -> Iterator[Path]:
    """A hidden sibling of ``run_dir`` to write into; renamed onto ``run_dir`` when the body
    succeeds, removed (with any parent folders made for it) when it fails."""
    parent = run_dir.parent
    made = [p for p in (parent, *parent.parents) if not p.exists()]
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{run_dir.name}.partial-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    published = False
    try:
        yield tmp
        if run_dir.exists():
            if not force:
                raise FileExistsError(f"run directory {os.fspath(run_dir)!r} already exists; "
                                      "pass --force to replace it")
            old = parent / f".{run_dir.name}.old-{uuid.uuid4().hex[:12]}"
            os.rename(run_dir, old)
            os.rename(tmp, run_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, run_dir)
        published = True
    finally:
        if not published:
            shutil.rmtree(tmp, ignore_errors=True)
            for p in made:  # innermost first
                with contextlib.suppress(OSError):
                    p.rmdir()


def execute(config: RunConfig, *, force: bool = False, strict: bool = False,
            observation_end: str | None = None, config_path: str | os.PathLike | None = None,
            progress: Callable[[str], None] | None = None) -> RunResult:
    """Carry out ``config`` (module docstring) and return the run directory and manifest.

    ``observation_end`` overrides ``input.observation_end`` (a scheduled job's as-of date).
    ``strict``: sampling problems of any Bayesian fit raise :class:`RunConvergenceError`
    and nothing is written. Bad input raises :class:`ValueError` / :class:`OSError` with
    nothing written.
    """
    from clvmodels.runs.config import resolved
    from clvmodels.runs.inputs import load_input
    from clvmodels.runs.tracking import find_previous, write_tracking

    say = progress or (lambda _m: None)
    config = resolved(config)
    if observation_end is not None:
        inp = dataclasses.replace(config.input, observation_end=observation_end)
        config = dataclasses.replace(config, input=inp)
        from clvmodels.runs.config import ConfigError, check_config

        problems = check_config(config)
        if problems:
            raise ConfigError("--observation-end: " + "; ".join(problems))
    clock = _Clock(say)
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("default")
        with clock.step("check", "Checking the models"):
            models, spend = build_models(config)
        run = load_input(config, clock.step)
        obs_end = run.observation_end
        run_dir = run_directory(config, obs_end)
        if run_dir.exists() and not force:
            raise FileExistsError(f"run directory {os.fspath(run_dir)!r} already exists; pass "
                                  "--force to replace it")
        fitted, spend_fitted, convergence = _fit_all(config, models, spend, run, clock)
        _check_strict(convergence, strict)
        with _staging(run_dir, force=force) as tmp:
            outputs = _write_models_and_forecasts(config, fitted, spend_fitted, run, tmp,
                                                  clock)
            comparison_problems = _reports(config, run, obs_end, tmp, clock, outputs)
            convergence += comparison_problems
            _check_strict(comparison_problems, strict)
            previous = find_previous(run_dir, config.name, obs_end)
            if previous is not None and config.input.kind == "transactions":
                with clock.step("tracking", f"Tracking the forecast of {previous.name}"):
                    outputs["tracking"] = write_tracking(previous, tmp, run, config, obs_end)
            elif previous is not None:
                warnings.warn(f"tracking: the forecast of {previous.name} is not tracked: "
                              f"tracking compares transaction forecasts with the transactions "
                              f"since, and this input is {config.input.kind}", stacklevel=1)
            for w in records:
                message = " ".join(str(w.message).split())
                if message not in caught:
                    caught.append(message)
            manifest = _manifest(config, config_path, run_dir, obs_end, run, fitted, outputs,
                                 clock, caught, convergence, previous)
            (tmp / "manifest.json").write_text(json.dumps(_json_safe(manifest), indent=2)
                                               + "\n", encoding="utf-8")
        for frame in run.persisted:
            frame.unpersist()
    for message in caught:
        say(f"Warning: {message}")
    say(f"Wrote {run_dir}")
    return RunResult(run_dir=run_dir, manifest=manifest, convergence=convergence)


def _check_strict(lines: list[str], strict: bool) -> None:
    if strict and lines:
        raise RunConvergenceError(
            f"--strict: {len(lines)} sampling problem(s), nothing was written: "
            + "; ".join(lines))


def _fit_all(config: RunConfig, models: dict[str, Any], spend: Any, run: Any,
             clock: _Clock) -> tuple[dict[str, Any], Any, list[str]]:
    data = run.data
    what = f"{run.customers:,} customers"
    if run.weights is not None:
        what = f"{len(data):,} rows ({what})"
    weights = {"weights": config.input.weights_col} if config.input.weights_col else {}
    fitted = {}
    for m in config.models:
        kwargs = _sampler_kwargs(m.sampler, config.seed) if m.bayesian else {}
        with clock.step(f"fit:{m.label}", f"Fitting {m.label} on {what}"):
            fitted[m.label] = models[m.label].fit(data, **kwargs, **weights)
    spend_fitted = None
    if spend is not None:
        kwargs = (_sampler_kwargs(config.spend.sampler, config.seed)
                  if config.spend.bayesian else {})
        with clock.step("fit:spend", f"Fitting {config.spend.registry_name}"):
            spend_fitted = spend.fit(data, **kwargs)
    lines = convergence_lines({**fitted, "spend": spend_fitted})
    for line in lines:
        clock.say(f"Sampling problem: {line}")
    return fitted, spend_fitted, lines


def _value_period(config: RunConfig) -> str | None:
    """The discounting period: transactions ``valuation.period`` (default M); a discrete
    summary's (default: one opportunity); subscriptions: their contract period (None)."""
    if config.input.kind == "transactions":
        return config.valuation.period or "M"
    if config.input.kind == "discrete":
        return config.valuation.period
    return None


def _write_models_and_forecasts(config: RunConfig, fitted: dict[str, Any], spend: Any,
                                run: Any, tmp: Path, clock: _Clock) -> dict[str, Any]:
    from clvmodels.kpis import value_tiers
    from clvmodels.valuation import customer_lifetime_value

    v = config.valuation
    data = run.data
    outputs: dict[str, Any] = {"forecasts": {}, "models": {}}
    (tmp / "forecasts").mkdir()
    money: Any = run.revenue if config.input.kind == "subscriptions" else (
        spend if spend is not None else 1.0)
    for label, model in fitted.items():
        with clock.step(f"value:{label}", f"Valuing customers with {label}"):
            options = dict(horizon=v.horizon, discount_rate=v.discount_rate, margin=v.margin,
                           period=_value_period(config),
                           acquisition_cost=v.acquisition_cost or None)
            if run.is_spark:
                outputs["forecasts"][label] = _write_spark_forecast(
                    config, model, money, data, options, tmp / "forecasts" / label,
                    run.customers)
                continue
            value = customer_lifetime_value(model, money, data, **options)
            labels, _ = value_tiers(value["clv"])
            out = pd.concat([data, value], axis=1)
            out["value_tier"] = labels.astype(str) if hasattr(labels, "astype") else labels
            out.attrs = {}
            w = run.weights if run.weights is not None else np.ones(len(out))
            outputs["forecasts"][label] = {
                "files": [f"forecasts/{n}" for n in _write_forecast(
                    out, tmp / "forecasts" / label, config.output.partition_rows)],
                "rows": len(out),
                "total_clv": float(np.sum(w * value["clv"].to_numpy(dtype=float)))}
    if config.output.save_models:
        (tmp / "models").mkdir()
        with clock.step("save", "Saving the models"):
            for label, model in fitted.items():
                name = f"{label}{'.nc' if getattr(model, 'bayesian', False) else '.json'}"
                model.save(tmp / "models" / name)
                outputs["models"][label] = f"models/{name}"
            if spend is not None:
                name = (f"spend.{config.spend.family}"
                        f"{'.nc' if getattr(spend, 'bayesian', False) else '.json'}")
                spend.save(tmp / "models" / name)
                outputs["models"]["spend"] = f"models/{name}"
    return outputs


def _write_spark_forecast(config: RunConfig, model: Any, money: Any, summary: Any,
                          options: dict[str, Any], dest: Path, n: int) -> dict[str, Any]:
    """The Spark summary valued on the executors (its columns, then the valuation's:
    :func:`clvmodels.valuation.spark.spark_lifetime_value`), in value tiers by a distributed
    sort (:func:`clvmodels.engines.spark_tiers.value_tiers_spark`), written by Spark as
    ``dest/part-*.parquet``: ``ceil(n / output.partition_rows)`` parts, ranged and sorted by
    customer id. Nothing per customer comes to the driver."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from clvmodels.engines.spark_tiers import value_tiers_spark
    from clvmodels.valuation import customer_lifetime_value
    from clvmodels.valuation.spark import spark_lifetime_value

    id_col = summary.columns[0]
    clv = spark_lifetime_value(customer_lifetime_value, model, money, summary,
                               with_data=True, **options)
    clv = clv.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        tiers = value_tiers_spark(clv, "clv")
        try:
            parts = max(1, math.ceil(n / config.output.partition_rows))
            out = tiers.frame.repartitionByRange(parts, id_col).sortWithinPartitions(id_col)
            out.write.parquet(os.fspath(dest))
            total = tiers.frame.agg(F.sum("clv")).first()[0]
        finally:
            tiers.cached.unpersist()
    finally:
        clv.unpersist()
    for extra in dest.iterdir():  # Spark's markers and checksums: not outputs
        if not extra.name.endswith(".parquet"):
            extra.unlink()
    files = sorted(p.name for p in dest.glob("*.parquet"))
    return {"files": [f"forecasts/{dest.name}/{f}" for f in files], "rows": n,
            "total_clv": float(total or 0.0)}


def _segment_frame(config: RunConfig, frame: pd.DataFrame, segment: str | None
                   ) -> pd.DataFrame:
    """The transactions (or subscription records) with the segment column: from the customer
    table when they lack it (the comparisons read a segment from their input's rows)."""
    if segment is None or segment in frame.columns or config.customers is None:
        return frame
    from clvmodels.evaluation.fitting import read_customers

    table = read_customers(config.resolve(config.customers.path))
    id_col = config.customers.id_col or config.input.customer_id_col
    keyed = table.set_index(id_col) if id_col in table.columns else table
    if segment not in keyed.columns:
        return frame
    values = keyed[segment].reindex(frame[config.input.customer_id_col]).to_numpy()
    return frame.assign(**{segment: values})


def _reports(config: RunConfig, run: Any, obs_end: pd.Timestamp, tmp: Path,
             clock: _Clock, outputs: dict[str, Any]) -> list[str]:
    """The comparison report (and backtest); their Bayesian fits' sampling problems."""
    from clvmodels.report import write_report
    from clvmodels.valuation import parse_horizon

    r = config.report
    if not r.enabled:
        return []
    bayes = next((_sampler_kwargs(m.sampler, config.seed) for m in config.models
                  if m.bayesian), None)
    segment = next((m.segment_col for m in config.models if m.segment_col), None)
    cal_end = obs_end - pd.Timedelta(days=round(parse_horizon(r.holdout, "D")))

    def say(message: str) -> None:
        clock.say(f"  {message}")

    if config.input.kind == "discrete":
        comparison = _discrete_report(config, run, clock, bayes, segment)
        if comparison is None:
            return []
    elif config.input.kind == "subscriptions":
        from clvmodels.evaluation import compare_contractual
        from clvmodels.runs.inputs import attributes, record_columns

        inp = config.input
        with clock.step("report", f"Comparing the models ({cal_end.date()} to "
                                  f"{obs_end.date()})"):
            # the comparison reads records in pandas: with DuckDB, only the columns it needs
            table = _table_columns(config)
            source = _segment_frame(config, record_columns(
                config, run, [c for c in attributes(config) if c not in table]), segment)
            comparison = compare_contractual(
                source, calibration_end=cal_end, observation_end=obs_end,
                models=build_models(config)[0], period=inp.unit or "M",
                customer_id_col=inp.customer_id_col, start_col=inp.start_col,
                end_col=inp.end_col, segment_col=segment, baselines=r.baselines,
                bayes_kwargs=bayes, date_format=inp.date_format or None, engine=inp.engine,
                progress=say, **_customers_kw(config))
    else:
        return _transaction_reports(config, run, obs_end, cal_end, tmp, clock, outputs,
                                    bayes, segment)
    problems = [f"report {line}" for line in convergence_lines(comparison.models)]
    write_report(comparison, tmp / "report", title=f"{config.name}: model comparison")
    outputs["report"] = "report/report.html"
    if config.input.kind == "subscriptions":
        outputs["calibration_end"] = str(cal_end.date())
    return problems


def _table_columns(config: RunConfig) -> set[str]:
    """The columns of the ``[customers]`` table (none without one)."""
    if config.customers is None:
        return set()
    from clvmodels.evaluation.fitting import read_customers

    return set(read_customers(config.resolve(config.customers.path)).columns)


def _customers_kw(config: RunConfig) -> dict[str, Any]:
    """``customers=`` / ``customers_id_col=`` for a comparison: the attribute table when a
    model has covariates (the comparisons refuse a table no model reads)."""
    has_cov = any(m.purchase_covariates or m.dropout_covariates for m in config.models) \
        or bool(config.spend.spend_covariates)
    if config.customers is None or not has_cov:
        return {}
    return {"customers": config.resolve(config.customers.path),
            "customers_id_col": config.customers.id_col or None}


def _discrete_report(config: RunConfig, run: Any, clock: _Clock, bayes: Any,
                     segment: str | None) -> Any:
    """:func:`clvmodels.evaluation.compare_discrete` on the summary's own holdout columns
    (``frequency_holdout``, ``duration_holdout``); none (a warning) without them."""
    from clvmodels.evaluation import compare_discrete

    need = ["frequency_holdout", "duration_holdout"]
    if not set(need) <= set(run.data.columns):
        warnings.warn("report: no comparison: the discrete summary has no holdout columns "
                      f"({', '.join(need)}), which compare_discrete scores (set "
                      "report.enabled = false to silence this)", stacklevel=2)
        return None
    with clock.step("report", "Comparing the models on the summary's holdout"):
        return compare_discrete(
            run.data, models=build_models(config)[0], segment_col=segment,
            baselines=config.report.baselines, bayes_kwargs=bayes,
            progress=lambda m: clock.say(f"  {m}"), **_customers_kw(config))


def _transaction_reports(config: RunConfig, run: Any, obs_end: pd.Timestamp,
                         cal_end: pd.Timestamp, tmp: Path, clock: _Clock,
                         outputs: dict[str, Any], bayes: Any, segment: str | None
                         ) -> list[str]:
    """compare_models (and backtest) on the transactions in pandas: the whole frame with
    engine "pandas", else only the columns they read (id, date, amount, segment and
    covariate columns the customer table lacks)."""
    from clvmodels.evaluation import backtest, compare_models
    from clvmodels.report import write_report
    from clvmodels.runs.inputs import attributes, transaction_columns

    r = config.report
    inp = config.input
    table_cols = _table_columns(config)
    with clock.step("report", "Reading the transactions for the report"
                    if run.frame is None else "Preparing the report"):
        frame = transaction_columns(config, run,
                                    [c for c in attributes(config) if c not in table_cols])
        frame = _segment_frame(config, frame, segment)
    common: dict[str, Any] = dict(
        time_unit=inp.unit or "W", spend_model=config.spend.registry_name,
        baselines=r.baselines, customer_id_col=inp.customer_id_col,
        datetime_col=inp.datetime_col, monetary_value_col=inp.monetary_value_col or None,
        negative_amounts=inp.negative_amounts, bayes_kwargs=bayes,
        clv_horizon=config.valuation.horizon, discount_rate=config.valuation.discount_rate,
        margin=config.valuation.margin, segment_col=segment, **_customers_kw(config))
    problems: list[str] = []
    with clock.step("report", f"Comparing the models ({cal_end.date()} to {obs_end.date()})"):
        comparison = compare_models(frame, calibration_end=cal_end, observation_end=obs_end,
                                    models=build_models(config)[0],
                                    progress=lambda m: clock.say(f"  {m}"), **common)
        problems += [f"report {line}" for line in convergence_lines(comparison.models)]
        write_report(comparison, tmp / "report", title=f"{config.name}: model comparison")
        outputs["report"] = "report/report.html"
        outputs["calibration_end"] = str(cal_end.date())
    if r.backtest_cutoffs:
        with clock.step("backtest", f"Backtest at {len(r.backtest_cutoffs)} cut-offs"):
            result = backtest(frame, calibration_ends=list(r.backtest_cutoffs),
                              holdout=r.backtest_holdout, observation_end=obs_end,
                              models=build_models(config)[0],
                              progress=lambda m: clock.say(f"  {m}"), **common)
            write_report(result, tmp / "backtest", title=f"{config.name}: backtest")
            outputs["backtest"] = "backtest/report.html"
    return problems


def _manifest(config: RunConfig, config_path: str | os.PathLike | None, run_dir: Path,
              obs_end: pd.Timestamp, run: Any, fitted: dict[str, Any],
              outputs: dict[str, Any], clock: _Clock, caught: list[str],
              convergence: list[str], previous: Path | None) -> dict[str, Any]:
    from clvmodels.report.parts import versions

    resolved = config_dict(config)
    resolved["input"]["observation_end"] = str(obs_end.date())
    resolved["output"]["run_id"] = run_dir.name
    seeds = {m.label: (_sampler_kwargs(m.sampler, config.seed)["random_seed"]
                       if m.bayesian else None) for m in config.models}
    if config.spend.bayesian:
        seeds["spend"] = _sampler_kwargs(config.spend.sampler, config.seed)["random_seed"]
    config_file = None
    if config_path is not None:
        p = Path(config_path)
        config_file = {"path": os.fspath(p.resolve()), "sha256": file_sha256(p)}
    row_kind = {"transactions": "transactions", "discrete": "summary_rows",
                "subscriptions": "subscription_records"}[config.input.kind]
    counts: dict[str, Any] = {row_kind: run.rows}
    if run.frame is not None and config.input.kind == "transactions":
        counts["transactions_to_observation_end"] = int(
            (run.frame[config.input.datetime_col] <= obs_end).sum())
    counts["customers"] = run.customers
    counts.update({f"forecast:{k}": v["rows"] for k, v in outputs["forecasts"].items()})
    return {
        "manifest_version": MANIFEST_VERSION,
        "name": config.name,
        "run_id": run_dir.name,
        "observation_end": str(obs_end.date()),
        "time_unit": config.input.unit,
        "data_kind": config.input.data_kind,
        "engine": config.input.engine,
        "created": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "config_file": config_file,
        "config": resolved,
        "input": {"files": run.files, "rows": run.rows},
        "row_counts": counts,
        "models": {m.label: {"registry_name": m.registry_name,
                             "file": outputs["models"].get(m.label),
                             "forecast": outputs["forecasts"][m.label]["files"]}
                   for m in config.models},
        "spend_model": outputs["models"].get("spend"),
        "outputs": outputs,
        "seeds": {"run": config.seed, **seeds},
        "versions": {v["name"]: v["value"] for v in versions()["versions"]},
        "seconds": clock.seconds,
        "warnings": caught,
        "sampling_problems": convergence,
        "previous_run": os.fspath(previous) if previous is not None else None,
    }
