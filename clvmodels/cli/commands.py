"""The commands ``rfm``, ``datasets``, ``fit``, ``forecast`` and ``compare``.

Each one parses, calls the library and writes its outputs all-or-nothing
(:func:`clvmodels._io.write_files`, :func:`clvmodels._io.staged_directory`): everything is
computed first, then every file is written, and a failure or Ctrl-C at any point leaves no
output behind. Model choices come from the registry (:func:`clvmodels.cli._app.choices`).
"""

from __future__ import annotations

import inspect
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer

from clvmodels._io import check_output_path, frame_format, staged_directory, write_files
from clvmodels.cli._app import (
    EngineName,
    NegativeAmounts,
    TimeUnit,
    app,
    choices,
    command,
    plural,
    stdout,
    step,
    warning_line,
)
from clvmodels.cli.options import Method, SegmentCol, Strict, TargetAccept, method_value
from clvmodels.cli.scoring import (
    bayes_options,
    check_convergence,
    convergence_lines,
    quiet_sampling_warnings,
    resolve_method,
)
from clvmodels.cli.spark_options import OUT_HELP, SparkConf, SparkMaster
from clvmodels.cli.tables import (
    contractual_overview,
    discrete_overview,
    forecast_overview,
    metrics_table,
    params_table,
    rfm_overview,
)
from clvmodels.datasets import DATASETS
from clvmodels.models import registry

__all__ = ["COMPARE_COLUMNS", "ModelName", "SpendName", "compare", "datasets", "fit",
           "forecast", "rfm"]

#: ``--model`` choices: every registered transaction and contractual model, maximum
#: likelihood first, then Bayesian
ModelName = choices("ModelName", [
    n for bayes in (False, True) for role in ("transaction", "contractual")
    for n in registry.model_names(role=role, bayesian=bayes)])
#: ``--spend`` choices: every registered spend model
SpendName = choices("SpendName", registry.model_names(role="spend"))
#: ``datasets`` choices: the bundled data sets
DatasetName = choices("DatasetName", list(DATASETS))

#: Columns of the metrics table printed by ``compare`` (the report shows them all).
COMPARE_COLUMNS = ("log_likelihood", "aic", "elpd_loo", "chi_square", "mae", "rmse",
                   "correlation", "aggregate_bias", "tracking_error", "spearman_clv",
                   "gini_clv", "top_decile_capture", "interval_coverage", "fit_seconds")


def _is_bayesian(name: str) -> bool:
    return bool(getattr(registry.get_model(name), "bayesian", False))


def _kind(name: str) -> str:
    return str(registry.get_model(name).data_kind)


def _model_suffix(name: str) -> str:
    """File extension a fitted model is saved with: JSON (MLE) or netCDF (Bayesian)."""
    return ".nc" if _is_bayesian(name) else ".json"


def _check_model_path(path: Path, name: str) -> None:
    want = _model_suffix(name)
    if path.suffix.lower() != want:
        what = "a Bayesian model is saved as netCDF" if want == ".nc" else \
            "a maximum-likelihood model is saved as JSON"
        raise ValueError(f"--out {os.fspath(path)!r}: {what}; use a name ending in {want}")


def _supported(function: Any, **options: Any) -> dict[str, Any]:
    """The options given (not None) — refused clearly when ``function`` does not take one."""
    given = {k: v for k, v in options.items() if v is not None}
    params = inspect.signature(function).parameters
    unknown = [k for k in given if k not in params]
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise ValueError(f"{flags}: not supported by this version of the library")
    return given


DateFormat = Annotated[str | None, typer.Option(
    "--date-format", help="strftime format of the date column, e.g. %d/%m/%Y (default: one "
                          "format inferred from the whole column).")]
DayFirst = Annotated[bool | None, typer.Option(
    "--dayfirst/--monthfirst", help="Text dates are day-first (15/03/2024) or month-first "
                                    "(default: inferred; an ambiguous column is refused).")]


class ImplausibleDates(StrEnum):
    """What to do with a date far from the others (a typo such as 2099) or a late
    observation end."""

    raise_ = "raise"
    warn = "warn"


# the summary rules' options, shared by every command that summarises transactions
NegativeAmountsOption = Annotated[NegativeAmounts, typer.Option(
    "--negative-amounts", help="Refuse (raise) or drop negative amounts.")]
StripIds = Annotated[bool, typer.Option(
    "--strip-ids", help="Treat ids differing only by spaces at their ends as one customer "
                        "(default: refuse them).")]
ImplausibleDatesOption = Annotated[ImplausibleDates, typer.Option(
    "--implausible-dates", help="Refuse (raise) or only warn about dates far from the others "
                                "and a late observation end.")]


# --------------------------------------------------------------------------------------
# clvmodels rfm
# --------------------------------------------------------------------------------------


@app.command()
def rfm(
    input: Annotated[str, typer.Argument(
        help="Transactions: a CSV or Parquet file (with --engine duckdb also a glob; with "
             "--engine spark also a directory or a URI: s3a://, abfss://, gs://, hdfs://, "
             "dbfs:/, file://).")],
    out: Annotated[str, typer.Option("--out", "-o", help=OUT_HELP)],
    customer_id: Annotated[str, typer.Option("--customer-id", help="Customer id column.")
                           ] = "customer_id",
    date: Annotated[str, typer.Option("--date", help="Transaction date column.")] = "date",
    amount: Annotated[str, typer.Option("--amount", help="Transaction amount column.")
                      ] = "amount",
    no_amount: Annotated[bool, typer.Option(
        "--no-amount", help="The data have no amounts: skip spend.")] = False,
    time_unit: Annotated[TimeUnit, typer.Option("--time-unit", help="Unit of recency and T.")
                         ] = TimeUnit.W,
    observation_end: Annotated[str | None, typer.Option(
        "--observation-end", help="Last day observed (YYYY-MM-DD); later transactions are "
                                  "ignored. Default: the last transaction.")] = None,
    engine: Annotated[EngineName, typer.Option(
        "--engine", help="pandas, duckdb for large files, or spark (writes a Parquet "
                         "directory).")] = EngineName.pandas,
    spark_master: SparkMaster = "local[*]",
    spark_conf: SparkConf = None,
    negative_amounts: NegativeAmountsOption = NegativeAmounts.raise_,
    date_format: DateFormat = None,
    dayfirst: DayFirst = None,
    strip_ids: StripIds = False,
    implausible_dates: ImplausibleDatesOption = ImplausibleDates.raise_,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output.")
                     ] = False,
) -> None:
    """Summarise transactions into one RFM row per customer (frequency, recency, T, spend)."""
    from clvmodels.rfm import read_transactions, rfm_summary

    console = stdout()
    with command():
        # fail before the long work: unknown output format or an existing file
        if engine is not EngineName.spark:
            frame_format(Path(out))
            check_output_path(Path(out), force=force)
        options = dict(
            customer_id_col=customer_id, datetime_col=date,
            monetary_value_col=None if no_amount else amount, observation_end=observation_end,
            time_unit=time_unit.value, negative_amounts=negative_amounts.value,
            **_supported(rfm_summary, date_format=date_format, dayfirst=dayfirst,
                         strip_ids=strip_ids or None,
                         implausible_dates=None if implausible_dates is
                         ImplausibleDates.raise_ else implausible_dates.value),
        )
        if engine is EngineName.spark:  # clvmodels/cli/spark_options.py
            from clvmodels.cli.spark_options import rfm_spark

            n, files = rfm_spark(input, out, options, master=spark_master, conf=spark_conf,
                                 force=force, step=step)
            console.print(f"Wrote {plural(n, 'customer')} to {out} "
                          f"({plural(files, 'Parquet part file')})")
            return
        if engine is EngineName.duckdb:
            with step(f"Summarising {input} with DuckDB"):
                result = rfm_summary(os.fspath(input), engine="duckdb", **options)
        else:
            with step(f"Reading {input}"):
                transactions = read_transactions(input)
            with step(f"Summarising {plural(len(transactions), 'transaction')}"):
                result = rfm_summary(transactions, engine="pandas", **options)
        with step(f"Writing {out}"):
            write_files({Path(out): lambda tmp: _write_frame(result, tmp)}, force=force)
    console.print(rfm_overview(result))
    console.print(f"Wrote {plural(len(result), 'customer')} to {out}")


def _write_frame(frame: pd.DataFrame, path: Path, *, index: bool = True) -> None:
    """Write ``frame`` to ``path`` as Parquet or CSV (the extension says which)."""
    if frame_format(path) == "parquet":
        frame.to_parquet(path, index=index)
    else:
        frame.to_csv(path, index=index)


# --------------------------------------------------------------------------------------
# clvmodels datasets
# --------------------------------------------------------------------------------------


@app.command()
def datasets(
    name: Annotated[DatasetName, typer.Argument(  # type: ignore[valid-type]
        help="Which bundled data set: cdnow (transactions), cdnow-master, donations (a "
             "BG/BB summary), subscriptions (F&H 2007 records, for sBG).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write, .csv or .parquet.")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing file.")
                     ] = False,
) -> None:
    """Write a bundled data set as a file the other commands read (a place to start)."""
    console = stdout()
    with command():
        frame_format(out)
        check_output_path(out, force=force)
        what, load = DATASETS[name.value]
        frame = load()
        write_files({out: lambda tmp: _write_frame(frame, tmp, index=False)}, force=force)
    console.print(f"Wrote {plural(len(frame), 'row')} of {what} to {out}")


# --------------------------------------------------------------------------------------
# clvmodels fit
# --------------------------------------------------------------------------------------


def _read_summary(path: Path, time_unit: str | None) -> pd.DataFrame:
    """A summary file (RFM, discrete or contractual) with its time unit."""
    from clvmodels.rfm import read_transactions

    frame = read_transactions(path)
    if "customer_id" in frame.columns and frame.index.name is None:
        frame = frame.set_index("customer_id")
    unit = frame.attrs.get("time_unit") or time_unit
    if unit is None:
        raise ValueError(
            f"{os.fspath(path)} does not record its time unit (CSV files cannot): pass "
            "--time-unit (for discrete or contractual data: the length of one opportunity "
            "or period, e.g. Y)")
    frame.attrs["time_unit"] = unit
    if "churned" in frame.columns and frame["churned"].dtype == object:
        # CSV files spell booleans as text
        text = frame["churned"].astype(str).str.strip().str.lower()
        mapping = {"true": True, "false": False, "1": True, "0": False}
        if text.isin(list(mapping)).all():
            frame["churned"] = text.map(mapping).astype(bool)
    return frame


def _check_converged(model: Any, allow: bool) -> None:
    """Refuse a maximum-likelihood fit that did not converge (a boundary or flat optimum),
    unless ``--allow-unconverged``: its parameters are not estimates."""
    if allow or getattr(model, "converged_", True):
        return
    reason = getattr(model, "convergence_reason_", "") or "the optimiser did not converge"
    raise ValueError(f"{registry.label_of(model)}: the fit did not converge ({reason}); nothing "
                     "was written. Pass --allow-unconverged to write it anyway")


AllowUnconverged = Annotated[bool, typer.Option(
    "--allow-unconverged", help="Write the outputs even when a maximum-likelihood fit did "
                                "not converge (refused by default).")]


def _fit_one(name: str, data: pd.DataFrame, *, weights: str | None, penalizer: float,
             bayes: dict[str, Any], covariates: dict[str, list[str]] | None = None,
             segment_col: str | None = None) -> Any:
    model = _build(name, penalizer=penalizer, covariates=covariates,
                   segment_col=segment_col if _is_bayesian(name) else None)
    if getattr(model, "bayesian", False):
        with quiet_sampling_warnings():  # one line per problem instead (_converged)
            return model.fit(data, weights=weights, **bayes)
    return model.fit(data, weights=weights)


def _converged(models: dict[str, Any], strict: bool) -> None:
    """Each sampling problem as one warning line; with ``--strict`` exit 2, nothing written."""
    check_convergence(convergence_lines(models), strict=strict, say=warning_line)


def _overview(data: pd.DataFrame, name: str, weights: str | None, source: Path) -> Any:
    w = (data[weights].to_numpy(dtype=float) if weights and weights in data.columns
         else np.ones(len(data)))
    kind = _kind(name)
    if kind == "contractual" and {"periods", "churned"} <= set(data.columns):
        return contractual_overview(data, w, f"Contractual summary: {source.name}")
    if kind == "discrete" and "frequency" in data.columns and (
            {"periods", "T"} & set(data.columns)):
        return discrete_overview(data, w, f"Discrete-time summary: {source.name}")
    return None


Draws = Annotated[int, typer.Option("--draws", help="Bayesian: draws per chain.")]
Tune = Annotated[int, typer.Option("--tune", help="Bayesian: tuning steps per chain.")]
Chains = Annotated[int, typer.Option("--chains", help="Bayesian: chains.")]
Seed = Annotated[int | None, typer.Option("--seed", help="Bayesian: random seed.")]
PurchaseCovariates = Annotated[str | None, typer.Option(
    "--purchase-covariates", help="Comma-separated attribute columns acting on the purchase "
                                  "rate (categorical: indicators against a reference level).")]
DropoutCovariates = Annotated[str | None, typer.Option(
    "--dropout-covariates", help="Comma-separated attribute columns acting on dropout.")]
SpendCovariates = Annotated[str | None, typer.Option(
    "--spend-covariates", help="Comma-separated attribute columns acting on the spend model's "
                               "scale (needs a spend model).")]
Customers = Annotated[str | None, typer.Option(
    "--customers", help="Customer attribute table (CSV or Parquet; with --engine spark also "
                        "a URI), one row per customer, joined on the customer id: where the "
                        "covariate columns come from.")]
CustomersId = Annotated[str | None, typer.Option(
    "--customers-id", help="Customer id column of --customers (default: the --customer-id "
                           "column when it has one, else its first column).")]


def _covariate_lists(purchase: str | None, dropout: str | None, spend: str | None
                     ) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(transaction model's, spend model's) covariate keyword arguments from the options."""
    def names(value: str | None, option: str) -> list[str]:
        if value is None:
            return []
        out = [part.strip() for part in value.split(",") if part.strip()]
        if not out:
            raise ValueError(f"{option}: name at least one column")
        dup = sorted({c for c in out if out.count(c) > 1})
        if dup:
            raise ValueError(f"{option}: column(s) {dup} named twice")
        return out

    t = {k: v for k, v in (("purchase_covariates", names(purchase, "--purchase-covariates")),
                           ("dropout_covariates", names(dropout, "--dropout-covariates")))
         if v}
    sp = names(spend, "--spend-covariates")
    return t, ({"spend_covariates": sp} if sp else {})


def _customer_table(path: str | os.PathLike | None, id_col: str | None, default_id: str
                    ) -> tuple[pd.DataFrame | None, str | None]:
    """The --customers table read (or None) and the column its ids are in."""
    if path is None:
        if id_col is not None:
            raise ValueError("--customers-id names the id column of --customers, which is "
                             "not given")
        return None, None
    from clvmodels.rfm import read_transactions

    with step(f"Reading {path}"):
        table = read_transactions(path)
    if id_col is None:
        id_col = default_id if default_id in table.columns else str(table.columns[0])
    if id_col not in table.columns:
        raise ValueError(f"--customers-id: column {id_col!r} not found in {os.fspath(path)} "
                         f"(columns: {list(table.columns)})")
    return table, id_col


def _build(name: str, *, penalizer: float = 0.0, segment_col: str | None = None,
           covariates: dict[str, list[str]] | None = None) -> Any:
    """A new model of the registry name, with the covariates given."""
    cls = registry.get_model(name)
    extra = dict(covariates or {})
    try:
        if getattr(cls, "bayesian", False):
            return cls(segment_col=segment_col, **extra) if segment_col else cls(**extra)
        return cls(penalizer=penalizer, **extra)
    except TypeError as exc:  # a family without that covariate group
        raise ValueError(f"{name} does not take "
                         f"{', '.join('--' + k.replace('_', '-') for k in extra)}: {exc}"
                         ) from None


@app.command()
def fit(
    summary_file: Annotated[Path, typer.Argument(
        help="Summary file (.parquet or .csv): RFM from `rfm` (frequency, recency, T), "
             "discrete (frequency, recency, periods) or contractual (periods, churned).")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Model file to write: .json (maximum likelihood) or .nc "
                            "(Bayesian).")],
    model: Annotated[ModelName, typer.Option(  # type: ignore[valid-type]
        "--model", help="Model (from the registry).")] = ModelName["bgnbd"],
    spend: Annotated[SpendName | None, typer.Option(  # type: ignore[valid-type]
        "--spend", help="Also fit a spend model; written beside --out as NAME.<spend>.json "
                        "(or .nc).")] = None,
    weights: Annotated[str | None, typer.Option(
        "--weights", help="Column counting the identical customers each row stands for "
                          "(pre-aggregated rows).")] = None,
    time_unit: Annotated[TimeUnit | None, typer.Option(
        "--time-unit", help="Time unit of a CSV summary (Parquet files from `rfm` record "
                            "it): one opportunity or period for BG/BB and sBG.")] = None,
    penalizer: Annotated[float, typer.Option(
        "--penalizer", help="L2 penalty strength (maximum likelihood).")] = 0.0,
    draws: Draws = 1000,
    tune: Tune = 1000,
    chains: Chains = 4,
    seed: Seed = None,
    method: Method = None,
    segment_col: SegmentCol = None,
    target_accept: TargetAccept = None,
    strict: Strict = False,
    allow_unconverged: AllowUnconverged = False,
    purchase_covariates: PurchaseCovariates = None,
    dropout_covariates: DropoutCovariates = None,
    spend_covariates: SpendCovariates = None,
    customers: Customers = None,
    customers_id: CustomersId = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing files.")
                     ] = False,
) -> None:
    """Fit a model to a summary file and save it (JSON, or netCDF for Bayesian models).

    --method bayes samples the posterior of the family's Bayesian variant (--draws, --tune,
    --chains, --seed, --target-accept); with --segment-col it is hierarchical over the
    segments. Sampling problems are shown one line each; --strict makes them exit code 2.

    With --purchase-covariates / --dropout-covariates / --spend-covariates the named
    attribute columns (of the summary, or of the --customers table joined on the customer
    id) enter the model; the saved model records their encoding and coefficients.
    """
    console = stdout()
    with command():
        name = resolve_method(getattr(model, "value", model), method_value(method))
        spend_name = getattr(spend, "value", spend)
        if spend_name is not None:
            spend_name = resolve_method(spend_name, method_value(method))
        if segment_col is not None and not _is_bayesian(name):
            raise ValueError(f"--segment-col: hierarchical models are Bayesian; {name} is "
                             "fitted by maximum likelihood (add --method bayes)")
        _check_model_path(out, name)
        check_output_path(out, force=force)
        spend_out = None
        if spend_name is not None:
            if _kind(name) == "contractual":
                raise ValueError(f"--spend: a contractual model ({name}) has no spend "
                                 "model; value it with a revenue per period (`forecast`)")
            spend_out = out.with_name(f"{out.stem}.{spend_name}{_model_suffix(spend_name)}")
            check_output_path(spend_out, force=force)
        t_cov, s_cov = _covariate_lists(purchase_covariates, dropout_covariates,
                                        spend_covariates)
        if s_cov and spend_name is None:
            raise ValueError("--spend-covariates: name a spend model with --spend")
        with step(f"Reading {summary_file}"):
            data = _read_summary(summary_file, time_unit.value if time_unit else None)
        table, id_col = _customer_table(customers, customers_id,
                                        data.index.name or "customer_id")
        wanted = [c for group in (*t_cov.values(), *s_cov.values()) for c in group]
        if segment_col is not None and segment_col not in wanted:
            wanted.append(segment_col)
        if table is not None and not wanted:
            raise ValueError("--customers is the attribute table for covariates: name the "
                             "columns with --purchase-covariates, --dropout-covariates or "
                             "--spend-covariates")
        if wanted:
            from clvmodels.evaluation.fitting import attach_covariates

            data = attach_covariates(data, wanted, customers=table, customers_id_col=id_col)
        bayes = bayes_options(draws=draws, tune=tune, chains=chains, seed=seed,
                              target_accept=target_accept)
        # fit everything first: a failing spend fit must not leave the transaction model
        counts = data[weights] if weights and weights in data.columns else None
        n_customers = int(counts.sum()) if counts is not None else len(data)
        with step(f"Fitting {name} on {plural(n_customers, 'customer')}"):
            fitted = _fit_one(name, data, weights=weights, penalizer=penalizer, bayes=bayes,
                              covariates=t_cov, segment_col=segment_col)
        spend_model = None
        if spend_name is not None:
            with step(f"Fitting {spend_name}"):
                spend_model = _fit_one(spend_name, data, weights=weights,
                                       penalizer=penalizer, bayes=bayes, covariates=s_cov,
                                       segment_col=segment_col)
        for m in (fitted, spend_model):
            _check_converged(m, allow_unconverged)
        _converged({name: fitted, str(spend_name): spend_model}, strict)
        writers = {out: lambda tmp: fitted.save(tmp)}
        if spend_out is not None and spend_model is not None:
            writers[spend_out] = lambda tmp: spend_model.save(tmp)
        with step("Writing"):
            write_files(writers, force=force)
    overview = _overview(data, name, weights, summary_file)
    if overview is not None:
        console.print(overview)
    console.print(params_table(fitted, f"{registry.label_of(fitted)} ({name})"))
    if spend_model is not None:
        console.print(params_table(spend_model, registry.label_of(spend_model)))
    console.print("Wrote " + ", ".join(os.fspath(p) for p in writers))


# --------------------------------------------------------------------------------------
# clvmodels forecast
# --------------------------------------------------------------------------------------


def _horizon(text: str) -> str | float:
    """``--horizon``: "12M", "52W" … or "inf" (the whole remaining lifetime)."""
    return float("inf") if text.strip().lower() in ("inf", "infinite", "lifetime") else text


def _revenue(value: str | None) -> float | str | None:
    """``--revenue-per-period``: a number, or the name of a column."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value.strip()


@app.command()
def forecast(
    input: Annotated[str, typer.Argument(
        help="Transactions (CSV or Parquet; with --engine spark also a directory or a URI: "
             "s3a://, abfss://, gs://, hdfs://, dbfs:/, file://); with --model sbg "
             "subscription records (customer, start, end); with --model bgbb a discrete "
             "summary file.")],
    out: Annotated[str, typer.Option("--out", "-o", help=OUT_HELP)],
    horizon: Annotated[str, typer.Option(
        "--horizon", help="How far ahead: 12M, 52W, 1Y ... (inf: the whole lifetime).")
    ] = "12M",
    discount_rate: Annotated[float, typer.Option(
        "--discount-rate", help="Annual discount rate, e.g. 0.10.")] = 0.10,
    margin: Annotated[float, typer.Option("--margin", help="Profit margin, 0..1.")] = 1.0,
    model: Annotated[ModelName, typer.Option(  # type: ignore[valid-type]
        "--model", help="Model (from the registry).")] = ModelName["bgnbd"],
    spend: Annotated[SpendName | None, typer.Option(  # type: ignore[valid-type]
        "--spend", help="Spend model for transaction models (default gammagamma).")] = None,
    time_unit: Annotated[TimeUnit | None, typer.Option(
        "--time-unit", help="Model time unit (transactions: default W; a CSV discrete "
                            "summary: one opportunity, e.g. Y).")] = None,
    period: Annotated[TimeUnit | None, typer.Option(
        "--period", help="Transactions: discount each period's purchases at its end "
                         "(default M). Subscriptions (sBG): the billing period (default M). "
                         "BG/BB: default one opportunity.")] = None,
    observation_end: Annotated[str | None, typer.Option(
        "--observation-end", help="Last day observed (default: the last transaction; "
                                  "required for subscriptions).")] = None,
    customer_id: Annotated[str, typer.Option("--customer-id")] = "customer_id",
    date: Annotated[str, typer.Option("--date")] = "date",
    amount: Annotated[str, typer.Option("--amount")] = "amount",
    start: Annotated[str, typer.Option(
        "--start", help="Subscriptions: start-date column.")] = "start",
    end: Annotated[str, typer.Option(
        "--end", help="Subscriptions: end-date column (empty while active).")] = "end",
    revenue_per_period: Annotated[str | None, typer.Option(
        "--revenue-per-period", help="Subscriptions: revenue per period, a number or a "
                                     "column name.")] = None,
    weights: Annotated[str | None, typer.Option(
        "--weights", help="Discrete summary: column counting identical customers.")] = None,
    engine: Annotated[EngineName, typer.Option(
        "--engine", help="pandas, duckdb, or spark (transactions: the whole job in Spark, "
                         "a Parquet directory out).")] = EngineName.pandas,
    spark_master: SparkMaster = "local[*]",
    spark_conf: SparkConf = None,
    acquisition_cost: Annotated[float | None, typer.Option(
        "--acquisition-cost", help="Cost to acquire a customer: adds clv_to_cac.")] = None,
    draws: Draws = 500,
    tune: Tune = 500,
    chains: Chains = 2,
    seed: Seed = None,
    method: Method = None,
    target_accept: TargetAccept = None,
    strict: Strict = False,
    allow_unconverged: AllowUnconverged = False,
    purchase_covariates: PurchaseCovariates = None,
    dropout_covariates: DropoutCovariates = None,
    spend_covariates: SpendCovariates = None,
    customers: Customers = None,
    customers_id: CustomersId = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite the output.")
                     ] = False,
) -> None:
    """Per-customer discounted CLV in one command, from transactions, subscriptions or a
    discrete summary.

    With covariates (--purchase-covariates …; columns of the --customers table, or of the
    input, each customer's value on their first row) every customer is fitted and valued
    with their own attributes.

    With --method bayes (or a bayes-* model) every column is a posterior mean and
    clv_lower / clv_upper give the 90% credible interval; sampling problems are shown one
    line each (--strict: exit code 2, nothing written).

    Transactions → RFM → transaction and spend models → CLV; subscription records
    (``--model sbg``) → contract summary → sBG → margin × revenue per period × DERL; a
    discrete summary (``--model bgbb``) → BG/BB → discounted expected transactions.
    """
    from clvmodels.rfm import read_transactions
    from clvmodels.workflow import forecast as run_forecast

    console = stdout()
    with command():
        name = resolve_method(getattr(model, "value", model), method_value(method))
        kind = _kind(name)
        if engine is EngineName.spark:  # clvmodels/cli/spark_options.py
            from clvmodels.cli.spark_options import forecast_command

            t_cov, s_cov = _covariate_lists(purchase_covariates, dropout_covariates,
                                            spend_covariates)
            forecast_command(
                console, input, out, name=name, spend=spend, method=method_value(method),
                horizon=_horizon(horizon), discount_rate=discount_rate, margin=margin,
                period=(period or TimeUnit.M).value, time_unit=(time_unit or TimeUnit.W).value,
                observation_end=observation_end, customer_id=customer_id, date=date,
                amount=amount, acquisition_cost=acquisition_cost,
                bayes=dict(draws=draws, tune=tune, chains=chains, seed=seed,
                           target_accept=target_accept),
                covariates=t_cov, spend_covariates=s_cov,
                customers=customers,
                customers_id=customers_id, master=spark_master, conf=spark_conf,
                force=force, strict=strict, allow_unconverged=allow_unconverged)
            return
        frame_format(Path(out))
        check_output_path(Path(out), force=force)
        options: dict[str, Any] = dict(
            horizon=_horizon(horizon), discount_rate=discount_rate, margin=margin, model=name,
            customer_id_col=customer_id, acquisition_cost=acquisition_cost)
        if _is_bayesian(name):
            options["fit_kwargs"] = bayes_options(draws=draws, tune=tune, chains=chains,
                                                  seed=seed, target_accept=target_accept)
        if kind == "contractual":
            if observation_end is None:
                raise ValueError("--observation-end: subscriptions need the day they were "
                                 "observed (renewals up to it are known)")
            options.update(start_col=start, end_col=end, period=(period or TimeUnit.M).value,
                           observation_end=observation_end, engine=engine.value,
                           revenue_per_period=_revenue(revenue_per_period))
            source: Any = os.fspath(input)
            if engine is EngineName.pandas:
                with step(f"Reading {input}"):
                    source = read_transactions(input)
        elif kind == "discrete":
            with step(f"Reading {input}"):
                source = _read_summary(Path(input), time_unit.value if time_unit else None)
            options.update(weights_col=weights, period=period.value if period else None,
                           time_unit=source.attrs["time_unit"],
                           spend=spend.value if spend is not None else None)
        else:
            options.update(time_unit=(time_unit or TimeUnit.W).value,
                           period=(period or TimeUnit.M).value,
                           observation_end=observation_end, datetime_col=date,
                           monetary_value_col=amount, engine=engine.value)
            if spend is not None:
                options["spend"] = resolve_method(spend.value, method_value(method))
                if _is_bayesian(options["spend"]) and "fit_kwargs" not in options:
                    options["fit_kwargs"] = bayes_options(
                        draws=draws, tune=tune, chains=chains, seed=seed,
                        target_accept=target_accept)
            source = os.fspath(input)
            if engine is EngineName.pandas:
                with step(f"Reading {input}"):
                    source = read_transactions(input)
        t_cov, s_cov = _covariate_lists(purchase_covariates, dropout_covariates,
                                        spend_covariates)
        table, id_col = _customer_table(customers, customers_id, customer_id)
        if t_cov or s_cov:
            options.update(t_cov, **s_cov)
            options.update(customers=table, customers_id_col=id_col)
        elif table is not None:
            raise ValueError("--customers is the attribute table for covariates: name the "
                             "columns with --purchase-covariates, --dropout-covariates or "
                             "--spend-covariates")
        _supported(run_forecast, **{k: v for k, v in options.items()
                                    if k in ("weights_col", "start_col", "end_col",
                                             "revenue_per_period", "fit_kwargs")})
        with step("Forecasting") as progress, quiet_sampling_warnings():
            result = run_forecast(source, progress=progress.update, **options)
        for m in (result.transaction_model, result.spend_model):
            _check_converged(m, allow_unconverged)
        _converged({name: result.transaction_model,
                    str(options.get("spend")): result.spend_model}, strict)
        with step(f"Writing {out}"):
            write_files({Path(out): lambda tmp: _write_frame(result.forecast, tmp)}, force=force)
    model_obj = result.transaction_model
    counts = (result.forecast[weights].to_numpy(dtype=float)
              if weights and weights in result.forecast.columns else None)
    console.print(params_table(model_obj, f"{registry.label_of(model_obj)} parameters"))
    console.print(forecast_overview(result, weights=counts))
    rows = len(result.forecast)
    what = plural(rows, "customer") if counts is None else \
        f"{plural(rows, 'row')} ({plural(round(counts.sum()), 'customer')})"
    console.print(f"Wrote {what} to {out}")


# --------------------------------------------------------------------------------------
# clvmodels compare
# --------------------------------------------------------------------------------------


def split_names(values: list[str] | None) -> list[str] | None:
    """``--models a,b --models c`` → ["a", "b", "c"] (None when not given)."""
    if not values:
        return None
    names = [part.strip() for value in values for part in value.split(",")]
    return [n for n in names if n]


def _models_help() -> str:
    transaction = ", ".join(registry.model_names(role="transaction"))
    contractual = ", ".join(registry.model_names(role="contractual"))
    return (f"Models to compare, comma-separated or repeated. On transactions: {transaction} "
            f"(default: bgnbd, pnbd, mbgnbd, bayes-bgnbd); on subscription records: "
            f"{contractual}.")


def _contractual_names(names: list[str]) -> bool:
    """True when every named model is contractual (subscriptions), False when none is."""
    kinds = set()
    for n in names:
        try:
            kinds.add(_kind(n) == "contractual")
        except ValueError:
            kinds.add(False)  # not a registered model: a baseline name or a typo
    if len(kinds) > 1:
        raise ValueError(f"--models {','.join(names)}: contractual models (subscriptions) and "
                         "transaction models cannot be compared on the same data")
    discrete = [n for n in names if n in registry.model_names(kind="discrete")]
    if discrete:
        raise ValueError(f"--models {','.join(discrete)}: discrete-time models are compared on "
                         "a summary with holdout columns, in Python: "
                         "clvmodels.evaluation.compare_discrete")
    return kinds == {True}


@app.command()
def compare(
    transactions: Annotated[Path, typer.Argument(
        help="Transactions (CSV or Parquet); subscription records with contractual models.")],
    calibration_end: Annotated[str, typer.Option(
        "--calibration-end", help="Last day of the calibration period (YYYY-MM-DD).")],
    observation_end: Annotated[str, typer.Option(
        "--observation-end", help="Last day of the holdout period (YYYY-MM-DD).")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Directory for report.html, metrics.csv and figures/.")],
    models: Annotated[list[str] | None, typer.Option("--models", help=_models_help())] = None,
    segment_col: Annotated[str | None, typer.Option(
        "--segment-col", help="Column with each customer's segment: Bayesian models become "
                              "hierarchical over it and metrics are shown per segment.")
    ] = None,
    spend: Annotated[str, typer.Option(
        "--spend", help="Spend model: " + ", ".join(registry.model_names(role="spend"))
                        + " or none.")] = "gammagamma",
    no_baselines: Annotated[bool, typer.Option(
        "--no-baselines", help="Leave out the baseline rows.")] = False,
    time_unit: Annotated[TimeUnit, typer.Option("--time-unit", help="Model time unit.")
                         ] = TimeUnit.W,
    period: Annotated[TimeUnit, typer.Option(
        "--period", help="Subscriptions: the billing period.")] = TimeUnit.M,
    customer_id: Annotated[str, typer.Option("--customer-id")] = "customer_id",
    date: Annotated[str, typer.Option("--date")] = "date",
    amount: Annotated[str, typer.Option("--amount")] = "amount",
    start: Annotated[str, typer.Option(
        "--start", help="Subscriptions: start-date column.")] = "start",
    end: Annotated[str, typer.Option(
        "--end", help="Subscriptions: end-date column (empty while active).")] = "end",
    draws: Draws = 500,
    tune: Tune = 500,
    chains: Chains = 2,
    seed: Seed = None,
    target_accept: TargetAccept = None,
    strict: Strict = False,
    title: Annotated[str | None, typer.Option("--title", help="Title of the report.")
                     ] = None,
    purchase_covariates: PurchaseCovariates = None,
    dropout_covariates: DropoutCovariates = None,
    spend_covariates: SpendCovariates = None,
    customers: Customers = None,
    customers_id: CustomersId = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")
                     ] = False,
) -> None:
    """Fit models on a calibration period, score them on the holdout, write the report.

    With --purchase-covariates / --dropout-covariates every named model is compared twice,
    without and with the covariates (NAME and NAME+cov), so the report shows whether they
    help: holdout metrics, the likelihood-ratio test and the coefficients. Contractual models
    (sbg, bayes-sbg) take --dropout-covariates only (the attributes acting on churn), from
    the --customers table or each subscriber's first record.
    Bayesian models (bayes-bgnbd …) are sampled with --draws/--tune/--chains/--seed, and are
    hierarchical with --segment-col; sampling problems are shown one line each (--strict:
    exit code 2, no report written).
    """
    from clvmodels.report import write_report
    from clvmodels.rfm import read_transactions

    console = stdout()
    with command():
        # fail before the long work: an output that exists, or a file where the folder goes
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"--out {os.fspath(out)!r} exists and is not a directory")
        for name in ("report.html", "metrics.csv"):
            check_output_path(out / name, force=force)
        names = split_names(models)
        contractual = bool(names) and _contractual_names(names)  # type: ignore[arg-type]
        spend_model = None if spend.strip().lower() in ("none", "") else spend.strip()
        bayes_kwargs = bayes_options(draws=draws, tune=tune, chains=chains, seed=seed,
                                     target_accept=target_accept)
        t_cov, s_cov = _covariate_lists(purchase_covariates, dropout_covariates,
                                        spend_covariates)
        if contractual and s_cov:
            raise ValueError("--spend-covariates: contractual models have no spend model")
        if contractual and "purchase_covariates" in t_cov:
            raise ValueError("--purchase-covariates: contractual models (sbg, bayes-sbg) have "
                             "no purchase process; name the attributes acting on churn with "
                             "--dropout-covariates")
        if (t_cov or s_cov) and (out / "coefficients.csv").exists():
            check_output_path(out / "coefficients.csv", force=force)
        with step(f"Reading {transactions}"):
            frame = read_transactions(transactions)
        table, id_col = _customer_table(customers, customers_id, customer_id)
        if table is not None and not (t_cov or s_cov):
            raise ValueError("--customers is the attribute table for covariates: name the "
                             "columns with --purchase-covariates, --dropout-covariates or "
                             "--spend-covariates")
        with step("Comparing models") as progress, quiet_sampling_warnings():
            if contractual:
                result = _compare_contractual(
                    frame, names=_with_covariate_twins(  # type: ignore[arg-type]
                        names, t_cov, segment_col, baselines=("constant-churn",))
                    if t_cov else names, calibration_end=calibration_end,
                    observation_end=observation_end, period=period.value,
                    segment_col=segment_col, baselines=not no_baselines,
                    customer_id_col=customer_id, start_col=start, end_col=end,
                    bayes_kwargs=bayes_kwargs, progress=progress.update,
                    customers=table, customers_id_col=id_col)
            else:
                from clvmodels.evaluation import DEFAULT_MODELS, compare_models

                chosen: Any = names or list(DEFAULT_MODELS)
                spend_arg: Any = spend_model
                if t_cov:
                    chosen = _with_covariate_twins(chosen, t_cov, segment_col)
                if s_cov:
                    if spend_model is None:
                        raise ValueError("--spend-covariates: name a spend model with --spend")
                    spend_arg = _build(spend_model, segment_col=segment_col, covariates=s_cov)
                result = compare_models(
                    frame, calibration_end=calibration_end, observation_end=observation_end,
                    time_unit=time_unit.value, models=chosen,
                    segment_col=segment_col, spend_model=spend_arg,
                    baselines=not no_baselines, customer_id_col=customer_id,
                    datetime_col=date, monetary_value_col=amount, bayes_kwargs=bayes_kwargs,
                    progress=progress.update, customers=table, customers_id_col=id_col)
        fitted = dict(getattr(result, "models", {}) or {})
        fitted["spend model"] = getattr(result, "spend_model", None)
        _converged(fitted, strict)
        with step("Writing the report"), staged_directory(out, force=force) as stage:
            written = write_report(result, stage, force=True,
                                   title=title or f"CLV model comparison: {transactions.name}")
    console.print(metrics_table(result, columns=None if contractual else COMPARE_COLUMNS))
    if t_cov or s_cov:
        from clvmodels.report.covariates import lr_tests

        for r in lr_tests(result):
            console.print(f"LR test {r['restricted']} vs {r['full']}: LR = {r['statistic']} on "
                          f"{r['df']} df, p = {r['p_value']}")
    n_figures = sum(1 for key in written if key.startswith("figure:"))
    console.print(f"Wrote {out / 'report.html'}, {out / 'metrics.csv'} and "
                  f"{plural(n_figures, 'figure')} in {out / 'figures'}")


def _with_covariate_twins(names: list[str], covariates: dict[str, list[str]],
                          segment_col: str | None, *, baselines: tuple[str, ...] | None = None
                          ) -> dict[str, Any]:
    """Each named model twice: as named and, with the covariates, as ``NAME+cov`` (baseline
    names — the transaction comparison's unless ``baselines`` — stay names)."""
    from clvmodels.evaluation import BASELINES

    out: dict[str, Any] = {}
    for name in names:
        out[name] = name
        if name.strip().lower() in (BASELINES if baselines is None else baselines):
            continue
        out[f"{name}+cov"] = _build(name, segment_col=segment_col, covariates=covariates)
    return out


def _compare_contractual(frame: pd.DataFrame, *, names: Any, **options: Any) -> Any:
    """The contractual comparison (:func:`clvmodels.evaluation.compare_contractual`)."""
    from clvmodels.evaluation import compare_contractual

    return compare_contractual(frame, models=names, **options)
