"""One declarative run: config → a run directory, written whole or not at all.

:func:`execute` carries out a :class:`~clvmodels.runs.config.RunConfig` with the library's
public steps — :func:`~clvmodels.rfm_summary`, the registry's model classes and their
``fit``, :func:`~clvmodels.customer_lifetime_value`, :func:`~clvmodels.compare_models`,
:func:`~clvmodels.backtest`, :func:`~clvmodels.report.write_report` — and writes

``<runs_dir>/<name>/<run_id>/`` (``run_id``: ``output.run_id``, by default the observation
end as ``YYYY-MM-DD``, so a scheduled job makes one directory per as-of date and a rerun of
the same date clashes unless ``force``):

* ``forecasts/<model>.parquet`` — one row per customer: the RFM summary, the valuation's
  columns and ``value_tier``; a forecast of more than ``output.partition_rows`` rows is a
  folder ``forecasts/<model>/part-00000.parquet, ...`` instead (read it with
  ``pandas.read_parquet(folder)``);
* ``models/<model>.json`` (maximum likelihood) or ``.nc`` (Bayesian), and the spend model
  ``models/spend.<family>.json|.nc``;
* ``report/`` — :func:`~clvmodels.report.write_report` of the holdout comparison
  (``report.enabled``), and ``backtest/`` with ``report.backtest_cutoffs``;
* ``tracking.csv`` and ``figures/tracking.png`` when a previous run of the same name is
  found beside this one (:mod:`clvmodels.runs.tracking`); its section is added to
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
import hashlib
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

from clvmodels.runs.config import RunConfig, config_dict, input_files

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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_input(config: RunConfig) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The transactions of every input file (in sorted order) as one frame, the date column
    parsed (``input.date_format`` when given), and each file's size and SHA-256."""
    from clvmodels.rfm import read_transactions

    files = input_files(config)
    info = [{"path": os.fspath(p), "bytes": p.stat().st_size, "sha256": _sha256(p)}
            for p in files]
    frames = [read_transactions(p) for p in files]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    inp = config.input
    needed = [inp.customer_id_col, inp.datetime_col,
              *([inp.monetary_value_col] if inp.monetary_value_col else [])]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"input: column(s) {', '.join(map(repr, missing))} not in "
                         f"{config.input.path!r} (columns: {', '.join(map(str, frame.columns))}); "
                         "set input.customer_id_col / datetime_col / monetary_value_col")
    raw = frame[inp.datetime_col]
    if not pd.api.types.is_datetime64_any_dtype(raw):
        parsed = pd.to_datetime(raw.astype("string"), format=inp.date_format or None,
                                errors="coerce")
        bad = parsed.isna() & raw.notna()
        if bad.any():
            rows = ", ".join(map(str, frame.index[bad.to_numpy()][:5]))
            raise ValueError(
                f"input.date_format: {int(bad.sum()):,} value(s) of column "
                f"{inp.datetime_col!r} are not dates"
                f"{' in the layout ' + repr(inp.date_format) if inp.date_format else ''} "
                f"(rows {rows}; first: {raw[bad].iloc[0]!r})")
        frame = frame.assign(**{inp.datetime_col: parsed})
    return frame, info


def _observation_end(config: RunConfig, frame: pd.DataFrame) -> pd.Timestamp:
    if config.input.observation_end == "latest":
        return pd.Timestamp(frame[config.input.datetime_col].max()).normalize()
    return pd.Timestamp(config.input.observation_end).normalize()


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
            if m.method == "bayes":
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
            spend = cls(priors=s.priors or None, **cov) if s.method == "bayes" else \
                cls(penalizer=s.penalizer, **cov)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"spend: {exc}") from None
    return models, spend


def _attributes(config: RunConfig) -> list[str]:
    cols = [c for m in config.models for c in (*m.purchase_covariates, *m.dropout_covariates)]
    cols += [m.segment_col for m in config.models if m.segment_col]
    cols += list(config.spend.spend_covariates)
    return list(dict.fromkeys(cols))


def _summary(config: RunConfig, frame: pd.DataFrame, obs_end: pd.Timestamp) -> pd.DataFrame:
    from clvmodels.evaluation.fitting import attach_covariates
    from clvmodels.rfm import rfm_summary

    inp = config.input
    data = rfm_summary(frame, customer_id_col=inp.customer_id_col,
                       datetime_col=inp.datetime_col,
                       monetary_value_col=inp.monetary_value_col or None,
                       observation_end=obs_end, time_unit=inp.time_unit, engine=inp.engine,
                       negative_amounts=inp.negative_amounts)
    wanted = _attributes(config)
    if wanted:
        customers = config.resolve(config.customers.path) if config.customers else None
        data = attach_covariates(
            data, wanted, customers=customers,
            customers_id_col=(config.customers.id_col or None) if config.customers else None,
            transactions=frame, customer_id_col=inp.customer_id_col)
    return data


def _convergence(models: dict[str, Any]) -> list[str]:
    from clvmodels.models.sampling import sampling_problems

    lines = []
    for name, model in models.items():
        diagnostics = getattr(model, "diagnostics_", None)
        if model is None or not getattr(model, "bayesian", False) or not diagnostics:
            continue
        lines += [f"{name}: {problem}" for problem in sampling_problems(diagnostics)]
    return lines


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
    from clvmodels.runs.tracking import find_previous, write_tracking

    say = progress or (lambda _m: None)
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
        with clock.step("read", f"Reading {config.input.path}"):
            frame, files = read_input(config)
            obs_end = _observation_end(config, frame)
        run_dir = run_directory(config, obs_end)
        if run_dir.exists() and not force:
            raise FileExistsError(f"run directory {os.fspath(run_dir)!r} already exists; pass "
                                  "--force to replace it")
        with clock.step("summary", "Summarising transactions"):
            data = _summary(config, frame, obs_end)
        fitted, spend_fitted, convergence = _fit_all(config, models, spend, data, clock)
        _check_strict(convergence, strict)
        with _staging(run_dir, force=force) as tmp:
            outputs = _write_models_and_forecasts(config, fitted, spend_fitted, data, tmp,
                                                  clock)
            comparison_problems = _reports(config, frame, obs_end, tmp, clock, outputs)
            convergence += comparison_problems
            _check_strict(comparison_problems, strict)
            previous = find_previous(run_dir, config.name, obs_end)
            if previous is not None:
                with clock.step("tracking", f"Tracking the forecast of {previous.name}"):
                    outputs["tracking"] = write_tracking(
                        previous, tmp, frame, config, obs_end)
            for w in records:
                message = " ".join(str(w.message).split())
                if message not in caught:
                    caught.append(message)
            manifest = _manifest(config, config_path, run_dir, obs_end, files, frame, data,
                                 fitted, outputs, clock, caught, convergence, previous)
            (tmp / "manifest.json").write_text(json.dumps(_json_safe(manifest), indent=2)
                                               + "\n", encoding="utf-8")
    for message in caught:
        say(f"Warning: {message}")
    say(f"Wrote {run_dir}")
    return RunResult(run_dir=run_dir, manifest=manifest, convergence=convergence)


def _check_strict(lines: list[str], strict: bool) -> None:
    if strict and lines:
        raise RunConvergenceError(
            f"--strict: {len(lines)} sampling problem(s), nothing was written: "
            + "; ".join(lines))


def _fit_all(config: RunConfig, models: dict[str, Any], spend: Any, data: pd.DataFrame,
             clock: _Clock) -> tuple[dict[str, Any], Any, list[str]]:
    fitted = {}
    for m in config.models:
        kwargs = _sampler_kwargs(m.sampler, config.seed) if m.method == "bayes" else {}
        with clock.step(f"fit:{m.label}", f"Fitting {m.label} on {len(data):,} customers"):
            fitted[m.label] = models[m.label].fit(data, **kwargs)
    spend_fitted = None
    if spend is not None:
        kwargs = (_sampler_kwargs(config.spend.sampler, config.seed)
                  if config.spend.method == "bayes" else {})
        with clock.step("fit:spend", f"Fitting {config.spend.registry_name}"):
            spend_fitted = spend.fit(data, **kwargs)
    lines = _convergence({**fitted, "spend": spend_fitted})
    for line in lines:
        clock.say(f"Sampling problem: {line}")
    return fitted, spend_fitted, lines


def _write_models_and_forecasts(config: RunConfig, fitted: dict[str, Any], spend: Any,
                                data: pd.DataFrame, tmp: Path, clock: _Clock
                                ) -> dict[str, Any]:
    from clvmodels.kpis import value_tiers
    from clvmodels.valuation import customer_lifetime_value

    v = config.valuation
    outputs: dict[str, Any] = {"forecasts": {}, "models": {}}
    (tmp / "forecasts").mkdir()
    for label, model in fitted.items():
        with clock.step(f"value:{label}", f"Valuing customers with {label}"):
            value = customer_lifetime_value(
                model, spend if spend is not None else 1.0, data, horizon=v.horizon,
                discount_rate=v.discount_rate, margin=v.margin, period=v.period,
                acquisition_cost=v.acquisition_cost or None)
            labels, _ = value_tiers(value["clv"])
            out = pd.concat([data, value], axis=1)
            out["value_tier"] = labels.astype(str) if hasattr(labels, "astype") else labels
            out.attrs = {}
            outputs["forecasts"][label] = {
                "files": [f"forecasts/{n}" for n in _write_forecast(
                    out, tmp / "forecasts" / label, config.output.partition_rows)],
                "rows": len(out), "total_clv": float(value["clv"].sum())}
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


def _reports(config: RunConfig, frame: pd.DataFrame, obs_end: pd.Timestamp, tmp: Path,
             clock: _Clock, outputs: dict[str, Any]) -> list[str]:
    """The comparison report (and backtest); their Bayesian fits' sampling problems."""
    from clvmodels.evaluation import backtest, compare_models
    from clvmodels.report import write_report
    from clvmodels.valuation import parse_horizon

    r = config.report
    if not r.enabled:
        return []
    inp = config.input
    days = parse_horizon(r.holdout, "D")
    cal_end = obs_end - pd.Timedelta(days=round(days))
    bayes = next((_sampler_kwargs(m.sampler, config.seed) for m in config.models
                  if m.method == "bayes"), None)
    segment = next((m.segment_col for m in config.models if m.segment_col), None)
    common: dict[str, Any] = dict(
        time_unit=inp.time_unit, spend_model=config.spend.registry_name,
        baselines=r.baselines, customer_id_col=inp.customer_id_col,
        datetime_col=inp.datetime_col, monetary_value_col=inp.monetary_value_col or None,
        negative_amounts=inp.negative_amounts, bayes_kwargs=bayes,
        clv_horizon=config.valuation.horizon, discount_rate=config.valuation.discount_rate,
        margin=config.valuation.margin, segment_col=segment,
        customers=config.resolve(config.customers.path) if config.customers else None,
        customers_id_col=(config.customers.id_col or None) if config.customers else None)
    problems: list[str] = []
    with clock.step("report", f"Comparing the models ({cal_end.date()} to {obs_end.date()})"):
        comparison = compare_models(frame, calibration_end=cal_end, observation_end=obs_end,
                                    models=build_models(config)[0],
                                    progress=lambda m: clock.say(f"  {m}"), **common)
        problems += [f"report {line}" for line in _convergence(comparison.models)]
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
              obs_end: pd.Timestamp, files: list[dict[str, Any]], frame: pd.DataFrame,
              data: pd.DataFrame, fitted: dict[str, Any], outputs: dict[str, Any],
              clock: _Clock, caught: list[str], convergence: list[str],
              previous: Path | None) -> dict[str, Any]:
    from clvmodels.report.parts import versions

    resolved = config_dict(config)
    resolved["input"]["observation_end"] = str(obs_end.date())
    resolved["output"]["run_id"] = run_dir.name
    seeds = {m.label: (_sampler_kwargs(m.sampler, config.seed)["random_seed"]
                       if m.method == "bayes" else None) for m in config.models}
    if config.spend.method == "bayes" and config.spend.registry_name:
        seeds["spend"] = _sampler_kwargs(config.spend.sampler, config.seed)["random_seed"]
    config_file = None
    if config_path is not None:
        p = Path(config_path)
        config_file = {"path": os.fspath(p.resolve()), "sha256": _sha256(p)}
    return {
        "manifest_version": MANIFEST_VERSION,
        "name": config.name,
        "run_id": run_dir.name,
        "observation_end": str(obs_end.date()),
        "time_unit": config.input.time_unit,
        "created": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "config_file": config_file,
        "config": resolved,
        "input": {"files": files, "rows": len(frame)},
        "row_counts": {"transactions": len(frame),
                       "transactions_to_observation_end": int(
                           (frame[config.input.datetime_col] <= obs_end).sum()),
                       "customers": len(data),
                       **{f"forecast:{k}": v["rows"]
                          for k, v in outputs["forecasts"].items()}},
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
