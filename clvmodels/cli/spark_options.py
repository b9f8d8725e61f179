"""``--engine spark`` for ``clvmodels rfm`` and ``clvmodels forecast``: the whole job in Spark.

``--spark-master`` (default ``local[*]``: every core of this machine; ``yarn``,
``spark://host:7077``, ``k8s://...`` on a cluster, or let ``spark-submit`` choose) and
``--spark-conf KEY=VALUE`` (repeatable: ``spark.executor.memory=8g``,
``spark.sql.shuffle.partitions=400`` ...) configure the session. Inputs are CSV / Parquet
files, globs, directories or URIs (``s3a://``, ``abfss://``, ``gs://``, ``hdfs://``,
``dbfs:/``, ``file://``: handed to Spark as typed) read by Spark; the output is a
*directory* of Parquet part files (``--out forecast.parquet``, or a URI), one per partition,
written by Spark's committer (an existing one is refused unless ``--force``, which replaces
it).

``forecast --engine spark``: transactions -> Spark RFM summary (cached) [-> the covariate
columns of ``--customers`` joined in Spark, :mod:`clvmodels.engines.spark_covariates`] ->
the transaction model and the spend model fitted on the driver on the summary's unique rows
with counts (:mod:`clvmodels.engines.spark_fit`) -> every customer valued on the executors
(:mod:`clvmodels.valuation.spark`) -> value tiers by a distributed sort
(:mod:`clvmodels.engines.spark_tiers`) [-> a Bayesian model's totals with their interval,
:func:`clvmodels.valuation.spark.spark_value_totals`] -> the pandas forecast's columns
(summary, covariates, ``expected_purchases, probability_alive, expected_spend, clv`` [+
``clv_lower, clv_upper``], ``value_tier``), highest CLV first, in Parquet.

What the user sees: one line per step on stderr with the running stages' task counts
(:func:`spark_step`); Spark's console bar off, its log errors only (:data:`QUIET_LOG4J2`),
the JVM's start-up output held back unless the start fails (:class:`_StartupOutput`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from clvmodels._io import frame_format

__all__ = ["OUT_HELP", "SparkConf", "SparkForecast", "SparkMaster", "forecast_command",
           "forecast_spark", "parse_conf", "rfm_spark", "session_settings", "spark_session",
           "spark_step"]

#: ``--out`` of ``rfm`` and ``forecast`` (kept as typed: a URI is not a local path)
OUT_HELP = ("Output file, .parquet or .csv (--engine spark: a Parquet directory, also a URI "
            "such as s3a://bucket/clv.parquet).")
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


#: Spark's log as the CLI shows it: errors only, one line each (no stack traces: the error
#: itself reaches the command, which reports it); warnings and info stay out of the way
QUIET_LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = Spark %p %c{1}: %m%n
appender.console.layout.alwaysWriteExceptions = false
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = error
"""
# (the root level is warn, as Spark sets a shell's, so that Spark does not announce a change
# of level; the console shows errors only)


def _quiet_log_option() -> str:
    """``-Dlog4j2.configurationFile=<file>`` of :data:`QUIET_LOG4J2` (written once to the
    temporary directory)."""
    import hashlib
    import tempfile

    digest = hashlib.sha256(QUIET_LOG4J2.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"clvmodels-spark-log4j2-{digest}.properties"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(QUIET_LOG4J2, encoding="utf-8")
        os.replace(tmp, path)
    return f"-Dlog4j2.configurationFile={path.as_uri()}"


def session_settings(conf: list[str] | None) -> dict[str, str]:
    """The settings of the CLI's Spark session: UTC, no console progress bar (the command
    shows its own step lines, which a bar would overwrite), cached plans' shuffles coalesced
    by adaptive execution, Spark's log quiet (errors only,
    :data:`QUIET_LOG4J2`, added to ``spark.driver.extraJavaOptions``) -- each overridden by
    a ``--spark-conf`` of the same key (a log4j option of yours replaces ours)."""
    settings = {"spark.sql.session.timeZone": "UTC", "spark.ui.showConsoleProgress": "false",
                # the job caches the summary and the values: let adaptive execution still
                # coalesce their shuffles (else 200 partitions -- and part files -- however
                # few the customers)
                "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning": "true"}
    given = parse_conf(conf)
    java = given.get("spark.driver.extraJavaOptions", "")
    if "log4j" not in java:
        given["spark.driver.extraJavaOptions"] = f"{java} {_quiet_log_option()}".strip()
    settings.update(given)
    return settings


class _StartupOutput:
    """The Spark JVM's stdout and stderr through a pipe: what it prints while it starts (a
    JVM notice about incubator modules, Ivy resolving ``--packages``) is held back and
    shown only if the start fails; what it prints later goes to stderr (never to stdout,
    which carries the results)."""

    def __init__(self) -> None:
        import threading

        self._read, self._write = os.pipe()
        self._stderr = os.dup(2)
        self._held: list[bytes] = []
        self._started = False
        self._lock = threading.Lock()
        threading.Thread(target=self._forward, name="clvmodels-spark-output",
                         daemon=True).start()

    def _forward(self) -> None:
        with os.fdopen(self._read, "rb") as pipe:
            for line in pipe:
                with self._lock:
                    if self._started:
                        os.write(self._stderr, line)
                    else:
                        self._held.append(line)

    @contextlib.contextmanager
    def launching(self) -> Iterator[None]:
        """Fds 1 and 2 are the pipe while the JVM is spawned (it inherits them)."""
        saved = os.dup(1), os.dup(2)
        for fd in (1, 2):
            os.dup2(self._write, fd)
        try:
            yield
        except BaseException:
            self._release(show=True)
            raise
        finally:
            for fd, old in zip((1, 2), saved, strict=True):
                os.dup2(old, fd)
                os.close(old)
            os.close(self._write)
        self._release(show=False)

    def _release(self, show: bool) -> None:
        with self._lock:
            if show:
                for line in self._held:
                    os.write(self._stderr, line)
            self._held = []
            self._started = True


def spark_session(master: str, conf: list[str] | None) -> Any:
    """The Spark session the command runs on (an ImportError names the extra to install).
    A new one starts quietly (:func:`session_settings`, :class:`_StartupOutput`)."""
    try:
        from clvmodels.engines.spark import session
    except ImportError as exc:
        raise ImportError("--engine spark needs pyspark: pip install 'clvmodels[spark]' "
                          f"({exc})") from None
    from pyspark.sql import SparkSession

    if SparkSession.getActiveSession() is not None:
        # a running session (a notebook, a test): only SQL settings can change
        spark = session(master, {"spark.sql.session.timeZone": "UTC", **parse_conf(conf)})
    else:
        settings = session_settings(conf)
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            with _StartupOutput().launching():
                spark = session(master, settings)
        except Exception as exc:  # the JVM's own words are shown above
            first = next((line for line in str(exc).splitlines() if line.strip()), "")
            raise OSError(f"Spark did not start (--spark-master {master}): "
                          f"{type(exc).__name__}: {first.strip()}") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextlib.contextmanager
def spark_step(step: Any, spark: Any, message: str, every: float | None = None
               ) -> Iterator[Any]:
    """``step(message)`` with the running Spark stages' tasks added as they complete
    (``... (37/200 tasks)``): every second on a terminal (the spinner's text), every 30
    seconds as a new plain line when stderr is not a terminal (a log stays short)."""
    import threading

    from clvmodels.cli._app import stderr

    if every is None:
        every = 1.0 if stderr().is_terminal else 30.0
    with step(message) as handle:
        stop = threading.Event()

        def poll() -> None:
            last = None
            while not stop.wait(every):
                try:
                    tracker = spark.sparkContext.statusTracker()
                    stages = [tracker.getStageInfo(i) for i in tracker.getActiveStageIds()]
                except Exception:  # the session is stopping, or no SparkContext (Connect)
                    return
                stages = [st for st in stages if st is not None]
                if not stages:
                    continue
                done = sum(st.numCompletedTasks for st in stages)
                total = sum(st.numTasks for st in stages)
                text = f"{message} ({done:,}/{total:,} tasks)"
                if text != last:
                    handle.update(text)
                    last = text

        thread = threading.Thread(target=poll, name="clvmodels-spark-progress", daemon=True)
        thread.start()
        try:
            yield handle
        finally:
            stop.set()
            thread.join()


def _is_uri(path: str | os.PathLike) -> bool:
    from clvmodels.engines.spark import is_uri

    return is_uri(os.fspath(path))


def check_spark_output(out: str | os.PathLike, force: bool) -> None:
    """Refuse early: a non-Parquet output name, or an existing local output without --force
    (a URI's existence is Spark's to check, when it writes)."""
    name = os.fspath(out)
    if frame_format(Path(name.rstrip("/"))) != "parquet":
        raise ValueError(f"--engine spark writes a Parquet directory: name --out with "
                         f".parquet, not {Path(name.rstrip('/')).suffix!r}")
    if not _is_uri(name) and Path(name).exists() and not force:
        raise FileExistsError(f"output {name!r} already exists; pass --force to "
                              "overwrite it")


def write_spark(frame: Any, out: str | os.PathLike, force: bool) -> int:
    """Write ``frame`` as a Parquet directory at ``out`` (a local path or a URI); the
    number of part files. An existing URI without ``force``: FileExistsError; another error
    of Spark's on a URI names it."""
    name = os.fspath(out)
    if not _is_uri(name):
        path = Path(name)
        if path.exists() and force and not path.is_dir():
            path.unlink()
        frame.write.mode("overwrite" if force else "errorifexists").parquet(name)
        return len(list(path.glob("part-*")))
    try:
        frame.write.mode("overwrite" if force else "errorifexists").parquet(name)
    except Exception as exc:  # AnalysisException, Py4JJavaError
        from clvmodels.engines.spark import read_error

        if "PATH_ALREADY_EXISTS" in str(exc) or "already exists" in str(exc):
            raise FileExistsError(f"output {name!r} already exists; pass --force to "
                                  "overwrite it") from None
        error = read_error([name], exc)
        raise OSError(str(error).replace("could not read", "could not write")) from None
    return len(frame.sparkSession.read.parquet(name).inputFiles())


def rfm_spark(input: str, out: str | os.PathLike, options: dict[str, Any], *, master: str,
              conf: list[str] | None, force: bool, step: Any) -> tuple[int, int]:
    """The RFM summary of ``input`` computed and written by Spark: (customers, files)."""
    from clvmodels.rfm import rfm_summary

    check_spark_output(out, force)
    spark = spark_session(master, conf)
    with spark_step(step, spark, f"Summarising {input} with Spark"):
        summary = rfm_summary(os.fspath(input), engine="spark", **options)
    try:
        with spark_step(step, spark, f"Writing {out}"):
            files = write_spark(summary, out, force)
    except BaseException:
        remove_partial(out)
        raise
    return summary.sparkSession.read.parquet(os.fspath(out)).count(), files


@dataclass
class SparkForecast:
    """What :func:`forecast_spark` did: the fitted models, how many customers, the part
    files written, the value tiers' summary, the totals (``total_clv``,
    ``total_purchases`` [+ ``_lower`` / ``_upper`` and ``interval`` for a Bayesian model]),
    the top customers (a small pandas frame) and the valuation settings."""

    transaction_model: Any
    spend_model: Any
    customers: int
    files: int
    tiers: Any
    totals: dict[str, Any]
    top: Any
    settings: dict[str, Any] = field(default_factory=dict)


def _with_covariates(summary: Any, customers: str | None, customers_id: str | None,
                     wanted: list[str], step: Any) -> Any:
    """The summary with the covariate columns of the --customers table joined (in Spark)."""
    from clvmodels.engines.spark_covariates import join_customers_spark, read_customers_spark

    if customers is None:
        raise ValueError("--engine spark: covariates come from a --customers table (a "
                         "column of the transactions, read from each customer's first "
                         "transaction, is supported by --engine pandas and duckdb only)")
    with step(f"Joining the customer attributes of {customers}"):
        table = read_customers_spark(summary.sparkSession, customers)
        joined = join_customers_spark(summary, table, on=customers_id, columns=wanted)
        return joined.persist()


def forecast_spark(input: str, out: str | os.PathLike, *, model: str, spend: str | float | None,
                   summary_options: dict[str, Any], value_options: dict[str, Any],
                   fit_kwargs: dict[str, Any] | None, master: str, conf: list[str] | None,
                   force: bool, step: Any, check: Any = None,
                   covariates: dict[str, list[str]] | None = None,
                   spend_covariates: dict[str, list[str]] | None = None,
                   customers: str | None = None, customers_id: str | None = None,
                   top: int = 10) -> SparkForecast:
    """Transactions -> Spark RFM [-> covariates joined from ``customers``] -> fits on the
    driver -> CLV on the executors -> value tiers (a distributed sort) [-> a Bayesian
    model's totals with their interval] -> Parquet. ``check(models)`` runs after the fits,
    before anything is written (it raises to stop the job)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from clvmodels.engines.spark import quiet_pandas_warnings
    from clvmodels.engines.spark_tiers import value_tiers_spark
    from clvmodels.models import registry
    from clvmodels.rfm import rfm_summary
    from clvmodels.valuation import customer_lifetime_value, value_settings
    from clvmodels.valuation.spark import spark_lifetime_value, spark_value_totals

    check_spark_output(out, force)
    cls = registry.get_model(model)
    if cls.data_kind != "continuous":
        raise ValueError(f"--engine spark: forecast runs transaction models (bgnbd, pnbd, "
                         f"mbgnbd and their Bayesian variants), not {model!r}")
    t_cov, s_cov = dict(covariates or {}), dict(spend_covariates or {})
    wanted = list(dict.fromkeys(c for g in (*t_cov.values(), *s_cov.values()) for c in g))
    if customers is not None and not wanted:
        raise ValueError("--customers is the attribute table for covariates: name the "
                         "columns with --purchase-covariates, --dropout-covariates or "
                         "--spend-covariates")
    settings_ = value_settings("continuous", summary_options.get("time_unit"),
                               **{k: v for k, v in value_options.items()
                                  if k != "acquisition_cost"})
    spark = spark_session(master, conf)
    step = functools.partial(spark_step, step, spark)
    cached: list[Any] = []
    try:
        with step(f"Summarising {input} with Spark"):
            summary = rfm_summary(os.fspath(input), engine="spark", **summary_options)
            summary = summary.persist()
            cached.append(summary)
            n = summary.count()
        if wanted:
            summary = _with_covariates(summary, customers, customers_id, wanted, step)
            cached.append(summary)
        fit_options = dict(fit_kwargs or {}) if getattr(cls, "bayesian", False) else {}
        with step(f"Fitting {registry.label_of(cls)} on the unique rows"):
            tmodel = cls(**t_cov).fit(summary, **fit_options)
        smodel: Any = spend if spend is not None else "gammagamma"
        if isinstance(smodel, str):
            scls = registry.get_model(smodel)
            s_options = dict(fit_kwargs or {}) if getattr(scls, "bayesian", False) else {}
            with step(f"Fitting {registry.label_of(scls)} on the repeat buyers"):
                smodel = scls(**s_cov).fit(summary, **s_options)
        elif s_cov:
            raise ValueError("--spend-covariates: name a spend model with --spend")
        if check is not None:
            check({model: tmodel, str(spend or "gammagamma"): smodel})
        with step(f"Valuing {n:,} customers with Spark"):
            clv = spark_lifetime_value(customer_lifetime_value, tmodel, smodel, summary,
                                       with_data=True, **value_options)
            clv = clv.persist(StorageLevel.MEMORY_AND_DISK)
            cached.append(clv)
            clv.count()
        with step("Ranking the customers into value tiers"):
            tiers = value_tiers_spark(clv, "clv")
            cached.append(tiers.cached)
            clv.unpersist()
            row = tiers.frame.agg(F.sum("clv").alias("clv"),
                                  F.sum("expected_purchases").alias("purchases")).first()
        totals: dict[str, Any] = {"total_clv": float(row["clv"]),
                                  "total_purchases": float(row["purchases"])}
        if getattr(tmodel, "bayesian", False):
            with step("Totals with their interval (per posterior draw)"):
                totals = spark_value_totals(
                    tmodel, smodel, summary,
                    **{k: v for k, v in value_options.items() if k != "acquisition_cost"})
        with step(f"Writing {out}"):
            files = write_spark(tiers.frame, out, force)
        with quiet_pandas_warnings():
            best = tiers.frame.limit(top).toPandas()
    finally:
        for frame in cached:
            frame.unpersist()
    settings = {"horizon": str(value_options.get("horizon")),
                "horizon_units": settings_.horizon, "time_unit": settings_.time_unit,
                "discount_rate": settings_.discount_rate, "margin": settings_.margin}
    return SparkForecast(tmodel, smodel, n, files, tiers.summary, totals,
                         best.set_index(best.columns[0]), settings)


def remove_partial(out: str | os.PathLike) -> None:
    """Remove a local Parquet directory a failed job left behind (Spark's own temporary
    files); on a URI, Spark's committer aborts the job's files itself."""
    if _is_uri(out):
        return
    path = Path(out)
    if path.is_dir() and not (path / "_SUCCESS").exists():
        shutil.rmtree(path, ignore_errors=True)


def spark_overview(result: SparkForecast) -> Any:
    """Totals (with their interval for a Bayesian model), value tiers and the top customers
    of a Spark forecast, as the pandas forecast shows them."""
    from rich.console import Group

    from clvmodels.cli.tables import (
        _TOP_COLUMNS,
        _settings_rows,
        fmt,
        new_table,
        table_of,
        tiers_table,
    )

    t = result.totals
    n = result.customers
    totals = new_table("Customer lifetime value", ["what", "value"], numeric=["value"],
                       show_header=False)
    _settings_rows(totals, result.settings)
    totals.add_row("customers", f"{n:,}")

    def shown(name: str, digits: int) -> str:
        text = f"{t[name]:,.{digits}f}"
        if f"{name}_lower" in t:
            text += (f" ({t['interval']:.0%} interval {t[name + '_lower']:,.{digits}f} – "
                     f"{t[name + '_upper']:,.{digits}f})")
        return text

    totals.add_row("total CLV", shown("total_clv", 2))
    totals.add_row("mean CLV", f"{t['total_clv'] / n:,.2f}" if n else "–")
    totals.add_row("expected purchases (total)", shown("total_purchases", 1))
    best = result.top
    cols = [c for c in _TOP_COLUMNS if c in best.columns]
    rows = [(str(cid), {c: fmt(best[c].iloc[i]) for c in cols})
            for i, cid in enumerate(best.index)]
    top = table_of(f"Top {len(best)} customers by CLV",
                   str(best.index.name or "customer").replace("_", " "), rows,
                   {c: _TOP_COLUMNS[c] for c in cols},
                   narrow=[c for c in cols if c not in ("recency", "T")])
    return Group(totals, tiers_table(result.tiers), top)


def forecast_command(console: Any, input: str, out: str, *, name: str, spend: Any,
                     method: str | None, horizon: Any, discount_rate: float, margin: float,
                     period: str, time_unit: str, observation_end: str | None,
                     customer_id: str, date: str, amount: str,
                     acquisition_cost: float | None, bayes: dict[str, Any],
                     covariates: dict[str, list[str]], spend_covariates: dict[str, list[str]],
                     customers: str | None, customers_id: str | None,
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
            result = forecast_spark(
                input, out, model=name, spend=spend_name, summary_options=summary_options,
                value_options=value_options, fit_kwargs=fit_kwargs, master=master, conf=conf,
                force=force, step=step, check=check, covariates=covariates,
                spend_covariates=spend_covariates, customers=customers,
                customers_id=customers_id)
    except BaseException:
        remove_partial(out)
        raise
    tmodel = result.transaction_model
    console.print(params_table(tmodel, f"{registry.label_of(tmodel)} parameters"))
    console.print(spark_overview(result))
    console.print(f"Wrote {plural(result.customers, 'customer')} to {out} "
                  f"({plural(result.files, 'Parquet part file')})")
