"""``--engine spark`` for ``clvmodels rfm`` and ``clvmodels forecast``: the whole job in Spark.

``--spark-master`` (default ``local[*]``: every core of this machine; ``yarn``,
``spark://host:7077``, ``k8s://...`` on a cluster, or let ``spark-submit`` choose) and
``--spark-conf KEY=VALUE`` (repeatable: ``spark.executor.memory=8g``,
``spark.sql.shuffle.partitions=400`` ...) configure the session. Inputs are CSV / Parquet
files, globs or directories read by Spark; the output is a *directory* of Parquet part
files (``--out forecast.parquet``), one per partition, written by Spark's committer (an
existing one is refused unless ``--force``, which replaces it).

``forecast --engine spark``: transactions -> Spark RFM summary (cached) -> the transaction
model and the spend model fitted on the driver on the summary's unique rows with counts
(:mod:`clvmodels.engines.spark_fit`) -> every customer valued on the executors
(:mod:`clvmodels.valuation.spark`) -> ``<customer id>, expected_purchases,
probability_alive, expected_spend, clv`` [+ ``clv_lower, clv_upper`` for a Bayesian model,
from at most 500 thinned draws] in Parquet. Transaction models only; no covariates or
``--customers`` table yet (refused). Progress is shown one step at a time.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from clvmodels._io import frame_format

__all__ = ["SparkConf", "SparkMaster", "forecast_command", "forecast_spark", "parse_conf",
           "rfm_spark", "spark_session"]

SparkMaster = Annotated[str, typer.Option(
    "--spark-master", help="--engine spark: the Spark master (local[*], yarn, "
                           "spark://host:7077 ...).")]
SparkConf = Annotated[list[str] | None, typer.Option(
    "--spark-conf", help="--engine spark: a Spark setting KEY=VALUE (repeatable), e.g. "
                         "spark.executor.memory=8g.")]


def parse_conf(items: list[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` as a dict; an item without ``=`` or with an empty key is refused."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--spark-conf expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def spark_session(master: str, conf: list[str] | None) -> Any:
    """The Spark session the command runs on (an ImportError names the extra to install)."""
    try:
        from clvmodels.engines.spark import session
    except ImportError as exc:
        raise ImportError("--engine spark needs pyspark: pip install 'clvmodels[spark]' "
                          f"({exc})") from None
    settings: dict[str, object] = {"spark.sql.session.timeZone": "UTC"}
    settings.update(parse_conf(conf))
    spark = session(master, settings)
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def check_spark_output(out: Path, force: bool) -> None:
    """Refuse early: a non-Parquet output name, or an existing output without --force."""
    if frame_format(out) != "parquet":
        raise ValueError(f"--engine spark writes a Parquet directory: name --out with "
                         f".parquet, not {out.suffix!r}")
    if out.exists() and not force:
        raise FileExistsError(f"output {os.fspath(out)!r} already exists; pass --force to "
                              "overwrite it")


def write_spark(frame: Any, out: Path, force: bool) -> int:
    """Write ``frame`` as a Parquet directory at ``out``; the number of part files."""
    if out.exists() and force and not out.is_dir():
        out.unlink()
    frame.write.mode("overwrite" if force else "errorifexists").parquet(os.fspath(out))
    return len(list(out.glob("part-*")))


def rfm_spark(input: Path, out: Path, options: dict[str, Any], *, master: str,
              conf: list[str] | None, force: bool, step: Any) -> tuple[int, int]:
    """The RFM summary of ``input`` computed and written by Spark: (customers, files)."""
    from clvmodels.rfm import rfm_summary

    check_spark_output(out, force)
    spark_session(master, conf)
    with step(f"Summarising {input} with Spark"):
        summary = rfm_summary(os.fspath(input), engine="spark", **options)
    try:
        with step(f"Writing {out}"):
            files = write_spark(summary, out, force)
    except BaseException:
        remove_partial(out)
        raise
    return summary.sparkSession.read.parquet(os.fspath(out)).count(), files


def forecast_spark(input: Path, out: Path, *, model: str, spend: str | float | None,
                   summary_options: dict[str, Any], value_options: dict[str, Any],
                   fit_kwargs: dict[str, Any] | None, master: str, conf: list[str] | None,
                   force: bool, step: Any, check: Any = None) -> tuple[Any, Any, int, int]:
    """Transactions -> Spark RFM -> fits on the driver -> CLV on the executors -> Parquet:
    ``(transaction model, spend model or number, customers, files)``; ``check(models)``
    runs after the fits, before anything is written (it raises to stop the job)."""
    from clvmodels.models import registry
    from clvmodels.rfm import rfm_summary
    from clvmodels.valuation import customer_lifetime_value

    check_spark_output(out, force)
    cls = registry.get_model(model)
    if cls.data_kind != "continuous":
        raise ValueError(f"--engine spark: forecast runs transaction models (bgnbd, pnbd, "
                         f"mbgnbd and their Bayesian variants), not {model!r}")
    spark_session(master, conf)
    with step(f"Summarising {input} with Spark"):
        summary = rfm_summary(os.fspath(input), engine="spark", **summary_options)
        summary = summary.persist()
        n = summary.count()
    fit_options = dict(fit_kwargs or {}) if getattr(cls, "bayesian", False) else {}
    with step(f"Fitting {registry.label_of(cls)} on the unique rows"):
        tmodel = cls().fit(summary, **fit_options)
    smodel: Any = spend if spend is not None else "gammagamma"
    if isinstance(smodel, str):
        scls = registry.get_model(smodel)
        s_options = dict(fit_kwargs or {}) if getattr(scls, "bayesian", False) else {}
        with step(f"Fitting {registry.label_of(scls)} on the repeat buyers"):
            smodel = scls().fit(summary, **s_options)
    if check is not None:
        check({model: tmodel, str(spend or "gammagamma"): smodel})
    with step(f"Valuing {n:,} customers with Spark and writing {out}"):
        clv = customer_lifetime_value(tmodel, smodel, summary, **value_options)
        files = write_spark(clv, out, force)
    summary.unpersist()
    return tmodel, smodel, n, files


def remove_partial(out: Path) -> None:
    """Remove a Parquet directory a failed job left behind (Spark's own temporary files)."""
    if out.is_dir() and not (out / "_SUCCESS").exists():
        shutil.rmtree(out, ignore_errors=True)


def forecast_command(console: Any, input: Path, out: Path, *, name: str, spend: Any,
                     method: str | None, horizon: Any, discount_rate: float, margin: float,
                     period: str, time_unit: str, observation_end: str | None,
                     customer_id: str, date: str, amount: str,
                     acquisition_cost: float | None, bayes: dict[str, Any], covariates: bool,
                     master: str, conf: list[str] | None, force: bool, strict: bool,
                     allow_unconverged: bool) -> None:
    """``clvmodels forecast --engine spark``: run :func:`forecast_spark` and report."""
    from clvmodels.cli._app import plural, step, warning_line
    from clvmodels.cli.scoring import (
        bayes_options,
        check_convergence,
        convergence_lines,
        quiet_sampling_warnings,
        resolve_method,
    )
    from clvmodels.cli.tables import params_table
    from clvmodels.models import registry

    if covariates:
        raise ValueError("--engine spark: covariates and --customers are not supported yet; "
                         "use --engine pandas or duckdb")
    spend_name = None if spend is None else resolve_method(spend.value, method)
    fit_kwargs = bayes_options(**bayes)

    def check(models: dict[str, Any]) -> None:
        for m in models.values():
            if not (allow_unconverged or getattr(m, "converged_", True)):
                reason = getattr(m, "convergence_reason_", "") or "the optimiser did not converge"
                raise ValueError(f"{registry.label_of(m)}: the fit did not converge ({reason}); "
                                 "nothing was written. Pass --allow-unconverged to write it "
                                 "anyway")
        check_convergence(convergence_lines(models), strict=strict, say=warning_line)

    summary_options = dict(observation_end=observation_end, time_unit=time_unit,
                           customer_id_col=customer_id, datetime_col=date,
                           monetary_value_col=amount)
    value_options = dict(horizon=horizon, discount_rate=discount_rate, margin=margin,
                         period=period, acquisition_cost=acquisition_cost)
    try:
        with quiet_sampling_warnings():
            tmodel, _, n, files = forecast_spark(
                input, out, model=name, spend=spend_name, summary_options=summary_options,
                value_options=value_options, fit_kwargs=fit_kwargs, master=master, conf=conf,
                force=force, step=step, check=check)
    except BaseException:
        remove_partial(out)
        raise
    console.print(params_table(tmodel, f"{registry.label_of(tmodel)} parameters"))
    console.print(f"Wrote {plural(n, 'customer')} to {out} "
                  f"({plural(files, 'Parquet part file')})")
