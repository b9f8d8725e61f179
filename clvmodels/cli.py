"""The ``clvmodels`` command line: thin wrappers that parse, call the library, write files.

Commands
--------
``clvmodels rfm INPUT --out rfm.parquet``
    Transactions (CSV or Parquet) → one RFM row per customer.
``clvmodels demo [--out reports/cdnow]``
    The main job on the bundled CDNOW sample; its steps live in :data:`DEMO_STEPS` so later
    stages (fit, forecast, report) are added by appending a step.
``clvmodels compare TRANSACTIONS --calibration-end DATE --observation-end DATE --out DIR``
    Fit models on the calibration period, score them on the holdout
    (:func:`clvmodels.evaluation.compare_models`) and write ``report.html``, ``metrics.csv``
    and ``figures/*.png`` (:mod:`clvmodels.report`).
``clvmodels --version``

Bad input (:class:`~clvmodels.ValidationError`, a missing file, an existing output without
``--force``, ...) ends the command with exit code 1 and a short message naming the problem,
never a traceback. Every output is written atomically (see :mod:`clvmodels._io`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from clvmodels._io import check_output_path, frame_format, write_frame
from clvmodels._version import __version__
from clvmodels.rfm import calibration_holdout_split, read_transactions, rfm_summary

__all__ = ["DEMO_STEPS", "DemoRun", "app", "rfm_overview"]

app = typer.Typer(
    name="clvmodels",
    help="Probabilistic customer-lifetime-value models: RFM summaries, fits, forecasts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

#: Exit code for bad input or a refused write (usage errors keep click's code 2).
EXIT_BAD_INPUT = 1


class TimeUnit(StrEnum):
    """Time units accepted on the command line (see :data:`clvmodels.TIME_UNITS`)."""

    D = "D"
    W = "W"
    M = "M"
    Y = "Y"


class EngineName(StrEnum):
    """RFM engines selectable from the command line."""

    pandas = "pandas"
    duckdb = "duckdb"


class NegativeAmounts(StrEnum):
    """What to do with negative transaction amounts (returns)."""

    raise_ = "raise"
    drop = "drop"


def _stdout() -> Console:
    """Console for results (stdout); long lines are not wrapped, so tables stay greppable."""
    import sys

    # piped or captured output: do not squeeze tables into 80 columns
    width = None if sys.stdout.isatty() else 160
    return Console(highlight=False, soft_wrap=True, width=width)


def _stderr() -> Console:
    """Console for progress and errors (stderr), so stdout carries only results."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _user_error_types(engine: str | None = None) -> tuple[type[BaseException], ...]:
    """Exceptions that mean "bad input or environment", reported without a traceback."""
    # ValidationError is a ValueError; ImportError: an optional engine is not installed
    kinds: list[type[BaseException]] = [ValueError, OSError, ImportError]
    if engine == "duckdb":
        with contextlib.suppress(ImportError):
            import duckdb

            kinds.append(duckdb.Error)
    return tuple(kinds)


@contextlib.contextmanager
def _report_user_errors(engine: str | None = None) -> Iterator[None]:
    """Turn bad-input exceptions into a one-paragraph message on stderr and exit code 1."""
    try:
        yield
    except _user_error_types(engine) as exc:
        message = str(exc).strip() or type(exc).__name__
        text = Text("Error: ", style="bold red")
        text.append(message)
        _stderr().print(text)
        raise typer.Exit(code=EXIT_BAD_INPUT) from None


def _version_callback(value: bool) -> None:
    """Print the version and stop (``--version``)."""
    if value:
        _stdout().print(f"clvmodels {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Show the version and exit.",
            callback=_version_callback,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Probabilistic customer-lifetime-value models: RFM summaries, fits, forecasts."""


# --------------------------------------------------------------------------------------
# summaries printed by several commands
# --------------------------------------------------------------------------------------


def rfm_overview(rfm: pd.DataFrame, title: str = "RFM summary") -> Group:
    """Rich tables: customers, repeat transactions, one-time buyers, and the histogram of x."""
    x = rfm["frequency"].to_numpy(dtype=np.int64)
    n = len(x)
    unit = rfm.attrs.get("time_unit", "?")
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("customers", f"{n:,}")
    table.add_row("repeat transactions", f"{int(x.sum()):,}")
    share = float((x == 0).mean()) if n else float("nan")
    table.add_row("one-time buyers (frequency 0)", f"{int((x == 0).sum()):,} ({share:.1%})")
    if "observation_end" in rfm.attrs:
        table.add_row("observation end", str(rfm.attrs["observation_end"]))
    table.add_row("time unit", str(unit))
    if "frequency_holdout" in rfm.columns:
        table.add_row("holdout repeat transactions", f"{int(rfm['frequency_holdout'].sum()):,}")
        if "duration_holdout" in rfm.columns and n:
            table.add_row("holdout length", f"{float(rfm['duration_holdout'].iloc[0]):g} {unit}")
    counts = np.bincount(np.minimum(x, 7), minlength=8) if n else np.zeros(8, dtype=np.int64)
    histogram = Table(title="customers by frequency (repeat transactions)",
                      title_justify="left")
    for label in [*map(str, range(7)), "7+"]:
        histogram.add_column(label, justify="right")
    histogram.add_row(*(f"{int(c):,}" for c in counts))
    return Group(table, histogram)


# --------------------------------------------------------------------------------------
# clvmodels rfm
# --------------------------------------------------------------------------------------


@app.command()
def rfm(
    input: Annotated[
        Path,
        typer.Argument(
            help="Transactions: a CSV or Parquet file (with --engine duckdb also a glob)."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output file, .parquet or .csv.")
    ],
    customer_id: Annotated[
        str, typer.Option("--customer-id", help="Customer id column.")
    ] = "customer_id",
    date: Annotated[str, typer.Option("--date", help="Transaction date column.")] = "date",
    amount: Annotated[
        str, typer.Option("--amount", help="Transaction amount column.")
    ] = "amount",
    no_amount: Annotated[
        bool, typer.Option("--no-amount", help="The data have no amounts: skip spend.")
    ] = False,
    time_unit: Annotated[
        TimeUnit, typer.Option("--time-unit", help="Unit of recency and T.")
    ] = TimeUnit.W,
    observation_end: Annotated[
        str | None,
        typer.Option(
            "--observation-end",
            help="Last day observed (YYYY-MM-DD); later transactions are ignored. "
            "Default: the last transaction.",
        ),
    ] = None,
    engine: Annotated[
        EngineName, typer.Option("--engine", help="pandas, or duckdb for large files.")
    ] = EngineName.pandas,
    negative_amounts: Annotated[
        NegativeAmounts,
        typer.Option("--negative-amounts", help="Refuse (raise) or drop negative amounts."),
    ] = NegativeAmounts.raise_,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Overwrite an existing output file.")
    ] = False,
) -> None:
    """Summarise transactions into one RFM row per customer (frequency, recency, T, spend)."""
    console = _stdout()
    status = _stderr()
    with _report_user_errors(engine.value):
        # fail before the long work: unknown output format or an existing file
        frame_format(out)
        check_output_path(out, force=force)
        options = dict(
            customer_id_col=customer_id,
            datetime_col=date,
            monetary_value_col=None if no_amount else amount,
            observation_end=observation_end,
            time_unit=time_unit.value,
            negative_amounts=negative_amounts.value,
        )
        if engine is EngineName.duckdb:
            with status.status(f"Summarising {input} with DuckDB ..."):
                result = rfm_summary(os.fspath(input), engine="duckdb", **options)
        else:
            with status.status(f"Reading {input} ..."):
                transactions = read_transactions(input)
            with status.status(f"Summarising {len(transactions):,} transactions ..."):
                result = rfm_summary(transactions, engine="pandas", **options)
        with status.status(f"Writing {out} ..."):
            write_frame(result, out, force=force)
    console.print(rfm_overview(result))
    console.print(f"Wrote {len(result):,} customers to {out}")


# --------------------------------------------------------------------------------------
# clvmodels demo
# --------------------------------------------------------------------------------------

#: The papers' CDNOW conventions: calibration to 1997-09-30, holdout to 1998-06-30, weeks.
DEMO_CALIBRATION_END = "1997-09-30"
DEMO_HOLDOUT_END = "1998-06-30"
DEMO_TIME_UNIT = "W"


@dataclass
class DemoRun:
    """State shared by the demo steps; each step reads what earlier ones left here."""

    out: Path
    transactions: pd.DataFrame | None = None
    rfm: pd.DataFrame | None = None
    outputs: dict[str, Path] = field(default_factory=dict)

    def require_rfm(self) -> pd.DataFrame:
        """The calibration/holdout RFM frame (raises if the RFM step has not run)."""
        if self.rfm is None:
            raise RuntimeError("the RFM step must run before this one")
        return self.rfm


#: A demo step: a status line shown while it runs, and a function of the run that may
#: return something to print once it is done.
DemoStep = tuple[str, Callable[[DemoRun], RenderableType | None]]


def _demo_load(run: DemoRun) -> None:
    """Demo step: the bundled CDNOW 1/10 sample."""
    from clvmodels.datasets import load_cdnow_transactions

    run.transactions = load_cdnow_transactions(sample=True)


def _demo_rfm(run: DemoRun) -> RenderableType:
    """Demo step: calibration/holdout RFM in weeks, written to ``rfm.parquet``."""
    if run.transactions is None:
        raise RuntimeError("the load step must run before the RFM step")
    split = calibration_holdout_split(
        run.transactions,
        calibration_end=DEMO_CALIBRATION_END,
        observation_end=DEMO_HOLDOUT_END,
        time_unit=DEMO_TIME_UNIT,
    )
    run.rfm = split
    run.outputs["RFM summary (calibration + holdout)"] = write_frame(
        split, run.out / "rfm.parquet", force=True
    )
    return rfm_overview(
        split, title=f"CDNOW sample, calibration to {DEMO_CALIBRATION_END} (weeks)"
    )


#: The demo pipeline, in order. Later stages (fit, forecast, report) append steps here.
DEMO_STEPS: list[DemoStep] = [
    ("Loading the bundled CDNOW sample ...", _demo_load),
    ("Summarising RFM (calibration and holdout) ...", _demo_rfm),
]


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for the outputs.")
    ] = Path("reports/cdnow"),
) -> None:
    """Run the main job on the bundled CDNOW sample and say where the outputs went."""
    console = _stdout()
    status = _stderr()
    run = DemoRun(out=out)
    with _report_user_errors():
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"--out {os.fspath(out)!r} exists and is not a directory")
        out.mkdir(parents=True, exist_ok=True)
        for description, step in DEMO_STEPS:
            with status.status(description):
                shown = step(run)
            if shown is not None:
                console.print(shown)
    console.print("Outputs:")
    for what, path in run.outputs.items():
        console.print(f"  {what}: {path}")


# --------------------------------------------------------------------------------------
# clvmodels fit / forecast
# --------------------------------------------------------------------------------------


class ModelName(StrEnum):
    """Transaction models selectable from the command line."""

    bgnbd = "bgnbd"
    pnbd = "pnbd"
    mbgnbd = "mbgnbd"


class SpendName(StrEnum):
    """Spend models selectable from the command line."""

    gammagamma = "gammagamma"


def params_table(model: object, title: str) -> Table:
    """A fitted model's parameters with standard errors and 95% intervals."""
    summary = model.summary()  # type: ignore[attr-defined]
    table = Table(title=title, title_justify="left")
    for col in ("parameter", "estimate", "se", "lower 95%", "upper 95%"):
        table.add_column(col, justify="right" if col != "parameter" else "left")
    for name, row in summary.iterrows():
        table.add_row(str(name), *(f"{row[c]:.4g}" for c in ("estimate", "se", "lower 95%",
                                                             "upper 95%")))
    a = summary.attrs
    table.caption = (f"log-likelihood {a['log_likelihood']:.2f}, AIC {a['aic']:.1f}, "
                     f"{a['n_customers']:,} customers, time unit {a['time_unit']}")
    return table


def _read_rfm(path: Path, time_unit: str | None) -> pd.DataFrame:
    frame = read_transactions(path)
    if "customer_id" in frame.columns and frame.index.name is None:
        frame = frame.set_index("customer_id")
    unit = frame.attrs.get("time_unit") or time_unit
    if unit is None:
        raise ValueError(
            f"{os.fspath(path)} does not record its time unit (CSV files cannot): pass "
            "--time-unit"
        )
    frame.attrs["time_unit"] = unit
    return frame


@app.command()
def fit(
    rfm_file: Annotated[Path, typer.Argument(help="RFM file (.parquet or .csv) from `rfm`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file to write (.json).")],
    model: Annotated[ModelName, typer.Option("--model", help="Transaction model.")
                     ] = ModelName.bgnbd,
    spend: Annotated[SpendName | None, typer.Option(
        "--spend", help="Also fit a spend model; written beside --out as NAME.<spend>.json")
    ] = None,
    time_unit: Annotated[TimeUnit | None, typer.Option(
        "--time-unit", help="Time unit of a CSV RFM file (Parquet files record it).")] = None,
    penalizer: Annotated[float, typer.Option("--penalizer", help="L2 penalty strength.")
                         ] = 0.0,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing files.")
                     ] = False,
) -> None:
    """Fit a model to an RFM file by maximum likelihood and save it as JSON."""
    from clvmodels.workflow import model_class

    console, status = _stdout(), _stderr()
    with _report_user_errors():
        check_output_path(out, force=force)
        spend_out = out.with_name(f"{out.stem}.{spend.value}.json") if spend else None
        if spend_out is not None:
            check_output_path(spend_out, force=force)
        with status.status(f"Reading {rfm_file} ..."):
            rfm_frame = _read_rfm(rfm_file, time_unit.value if time_unit else None)
        with status.status(f"Fitting {model.value} on {len(rfm_frame):,} customers ..."):
            fitted = model_class(model.value)(penalizer=penalizer).fit(rfm_frame)
        fitted.save(out, overwrite=force)
        console.print(params_table(fitted, f"{type(fitted).__name__} ({model.value})"))
        console.print(f"Wrote {out}")
        if spend is not None and spend_out is not None:
            with status.status(f"Fitting {spend.value} ..."):
                spend_model = model_class(spend.value)(penalizer=penalizer).fit(rfm_frame)
            spend_model.save(spend_out, overwrite=force)
            console.print(params_table(spend_model, f"{type(spend_model).__name__}"))
            console.print(f"Wrote {spend_out}")


def tiers_table(tiers: pd.DataFrame, title: str = "Value tiers (by CLV)") -> Table:
    """The value-tier summary as a rich table."""
    table = Table(title=title, title_justify="left")
    table.add_column("tier")
    for col in tiers.columns:
        table.add_column(str(col), justify="right")
    for i, name in enumerate(tiers.index):
        table.add_row(str(name), *(_fmt(tiers[c].iloc[i]) for c in tiers.columns))
    return table


def _fmt(value: object) -> str:
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return f"{float(value):,.4g}" if abs(float(value)) < 10 else f"{float(value):,.2f}"
    return str(value)


def forecast_overview(result: object, top: int = 10) -> Group:
    """Totals, tiers and the top customers of a :class:`clvmodels.workflow.ForecastResult`."""
    fc = result.forecast  # type: ignore[attr-defined]
    s = result.settings  # type: ignore[attr-defined]
    totals = Table(title="Customer lifetime value", show_header=False, title_justify="left")
    totals.add_column("what")
    totals.add_column("value", justify="right")
    totals.add_row("horizon", f"{s['horizon']} ({s['horizon_units']:.4g} {s['time_unit']})")
    totals.add_row("discount rate (annual)", f"{s['discount_rate']:.1%}")
    totals.add_row("margin", f"{s['margin']:.0%}")
    totals.add_row("customers", f"{len(fc):,}")
    totals.add_row("total CLV", f"{fc['clv'].sum():,.2f}")
    totals.add_row("mean CLV", f"{fc['clv'].mean():,.2f}")
    totals.add_row("expected purchases (total)", f"{fc['expected_purchases'].sum():,.1f}")
    cols = ["frequency", "recency", "T", "probability_alive", "expected_purchases",
            "expected_spend", "clv"]
    best = fc.nlargest(top, "clv")[cols]
    top_table = Table(title=f"Top {top} customers by CLV", title_justify="left")
    top_table.add_column(str(fc.index.name or "customer"))
    for col in cols:
        top_table.add_column(col, justify="right")
    for i, cid in enumerate(best.index):
        top_table.add_row(str(cid), *(_fmt(best[c].iloc[i]) for c in cols))
    return Group(totals, tiers_table(result.tiers), top_table)  # type: ignore[attr-defined]


@app.command()
def forecast(
    input: Annotated[Path, typer.Argument(help="Transactions: a CSV or Parquet file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file, .parquet or .csv.")],
    horizon: Annotated[str, typer.Option("--horizon", help="How far ahead: 12M, 52W, 1Y ...")
                       ] = "12M",
    discount_rate: Annotated[float, typer.Option(
        "--discount-rate", help="Annual discount rate, e.g. 0.10.")] = 0.10,
    margin: Annotated[float, typer.Option("--margin", help="Profit margin, 0..1.")] = 1.0,
    model: Annotated[ModelName, typer.Option("--model", help="Transaction model.")
                     ] = ModelName.bgnbd,
    time_unit: Annotated[TimeUnit, typer.Option("--time-unit", help="Model time unit.")
                         ] = TimeUnit.W,
    period: Annotated[TimeUnit, typer.Option(
        "--period", help="Discount each period's purchases at its end.")] = TimeUnit.M,
    observation_end: Annotated[str | None, typer.Option(
        "--observation-end", help="Last day observed (default: the last transaction).")
    ] = None,
    customer_id: Annotated[str, typer.Option("--customer-id")] = "customer_id",
    date: Annotated[str, typer.Option("--date")] = "date",
    amount: Annotated[str, typer.Option("--amount")] = "amount",
    engine: Annotated[EngineName, typer.Option("--engine")] = EngineName.pandas,
    acquisition_cost: Annotated[float | None, typer.Option(
        "--acquisition-cost", help="Cost to acquire a customer: adds clv_to_cac.")] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite the output.")
                     ] = False,
) -> None:
    """From raw transactions to per-customer discounted CLV in one command."""
    from clvmodels.workflow import forecast as run_forecast

    console, status = _stdout(), _stderr()
    with _report_user_errors(engine.value):
        frame_format(out)
        check_output_path(out, force=force)
        source: object = os.fspath(input)
        if engine is EngineName.pandas:
            with status.status(f"Reading {input} ..."):
                source = read_transactions(input)
        with status.status("Forecasting ...") as spinner:
            result = run_forecast(
                source, horizon=horizon, discount_rate=discount_rate, margin=margin,
                model=model.value, time_unit=time_unit.value, period=period.value,
                observation_end=observation_end, customer_id_col=customer_id,
                datetime_col=date, monetary_value_col=amount, engine=engine.value,
                acquisition_cost=acquisition_cost,
                progress=lambda msg: spinner.update(f"{msg} ..."),
            )
        with status.status(f"Writing {out} ..."):
            write_frame(result.forecast, out, force=force)
    console.print(params_table(result.transaction_model, f"{model.value} parameters"))
    console.print(forecast_overview(result))
    console.print(f"Wrote {len(result.forecast):,} customers to {out}")


def _demo_forecast(run: DemoRun) -> RenderableType:
    """Demo step: BG/NBD + Gamma-Gamma on the calibration period, 12-month CLV at 10 %."""
    from clvmodels.workflow import forecast as run_forecast

    if run.transactions is None:
        raise RuntimeError("the load step must run before the forecast step")
    result = run_forecast(run.transactions, horizon="12M", discount_rate=0.10, margin=1.0,
                          model="bgnbd", calibration_end=DEMO_CALIBRATION_END,
                          observation_end=DEMO_HOLDOUT_END, time_unit=DEMO_TIME_UNIT)
    run.outputs["BG/NBD model"] = result.transaction_model.save(run.out / "bgnbd.json")
    run.outputs["Gamma-Gamma model"] = result.spend_model.save(run.out / "gammagamma.json")
    run.outputs["Forecast (per customer CLV)"] = write_frame(
        result.forecast, run.out / "forecast.parquet", force=True)
    return Group(params_table(result.transaction_model, "BG/NBD (calibration to 1997-09-30)"),
                 params_table(result.spend_model, "Gamma-Gamma"),
                 forecast_overview(result))


DEMO_STEPS.append(("Fitting BG/NBD + Gamma-Gamma and valuing customers ...", _demo_forecast))


# --------------------------------------------------------------------------------------
# clvmodels compare
# --------------------------------------------------------------------------------------

#: Columns of the metrics table printed by ``compare`` (the report shows them all).
COMPARE_COLUMNS = ("log_likelihood", "aic", "elpd_loo", "chi_square", "mae", "rmse",
                   "correlation", "aggregate_bias", "tracking_error", "spearman_clv",
                   "gini_clv", "top_decile_capture", "interval_coverage", "fit_seconds")

#: Models the demo compares (maximum likelihood only, so the demo stays quick).
DEMO_COMPARE_MODELS = ("bgnbd", "pnbd", "mbgnbd")


def _split_names(values: list[str] | None) -> list[str] | None:
    """``--models a,b --models c`` → ["a", "b", "c"] (None when not given)."""
    if not values:
        return None
    names = [part.strip() for value in values for part in value.split(",")]
    return [n for n in names if n]


def metrics_table(comparison: object, title: str = "Model comparison on the holdout") -> Table:
    """The comparison's metrics as a rich table, the best value of each column in bold."""
    from clvmodels.report import METRIC_INFO, format_metric

    metrics = comparison.metrics  # type: ignore[attr-defined]
    best = comparison.best  # type: ignore[attr-defined]
    cols = [c for c in COMPARE_COLUMNS if c in metrics.columns and metrics[c].notna().any()]
    table = Table(title=title, title_justify="left")
    table.add_column("model")
    for c in cols:
        table.add_column(METRIC_INFO[c][0], justify="right")
    for name in metrics.index:
        cells = []
        for c in cols:
            text = format_metric(c, metrics.at[name, c])
            cells.append(f"[bold green]{text}[/]" if str(name) in best.get(c, []) else text)
        table.add_row(str(name), *cells)
    table.caption = "bold: best in the column (see the report for definitions)"
    return table


@app.command()
def compare(
    transactions: Annotated[Path, typer.Argument(
        help="Transactions: a CSV or Parquet file.")],
    calibration_end: Annotated[str, typer.Option(
        "--calibration-end", help="Last day of the calibration period (YYYY-MM-DD).")],
    observation_end: Annotated[str, typer.Option(
        "--observation-end", help="Last day of the holdout period (YYYY-MM-DD).")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Directory for report.html, metrics.csv and figures/.")],
    models: Annotated[list[str] | None, typer.Option(
        "--models", help="Models to compare, comma-separated or repeated: bgnbd, pnbd, "
                         "mbgnbd, bayes-bgnbd (default: all four).")] = None,
    segment_col: Annotated[str | None, typer.Option(
        "--segment-col", help="Column with each customer's segment: Bayesian models become "
                              "hierarchical over it and metrics are shown per segment.")
    ] = None,
    spend: Annotated[str, typer.Option(
        "--spend", help="Spend model: gammagamma, bayes-gammagamma or none.")
    ] = "gammagamma",
    no_baselines: Annotated[bool, typer.Option(
        "--no-baselines", help="Leave out the historic-CLV and calibration-rate rows.")
    ] = False,
    time_unit: Annotated[TimeUnit, typer.Option("--time-unit", help="Model time unit.")
                         ] = TimeUnit.W,
    customer_id: Annotated[str, typer.Option("--customer-id")] = "customer_id",
    date: Annotated[str, typer.Option("--date")] = "date",
    amount: Annotated[str, typer.Option("--amount")] = "amount",
    draws: Annotated[int, typer.Option("--draws", help="Bayesian: draws per chain.")] = 500,
    tune: Annotated[int, typer.Option("--tune", help="Bayesian: tuning steps per chain.")
                    ] = 500,
    chains: Annotated[int, typer.Option("--chains", help="Bayesian: chains.")] = 2,
    title: Annotated[str | None, typer.Option("--title", help="Title of the report.")
                     ] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")
                     ] = False,
) -> None:
    """Fit models on a calibration period, score them on the holdout, write the report."""
    from clvmodels.evaluation import DEFAULT_MODELS, compare_models
    from clvmodels.report import write_report

    console, status = _stdout(), _stderr()
    with _report_user_errors():
        # fail before the long work: an output that exists, or a file where the folder goes
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"--out {os.fspath(out)!r} exists and is not a directory")
        for name in ("report.html", "metrics.csv"):
            check_output_path(out / name, force=force)
        names = _split_names(models) or list(DEFAULT_MODELS)
        spend_model = None if spend.strip().lower() in ("none", "") else spend.strip()
        with status.status(f"Reading {transactions} ..."):
            frame = read_transactions(transactions)
        with status.status("Comparing models ...") as spinner:
            result = compare_models(
                frame, calibration_end=calibration_end, observation_end=observation_end,
                time_unit=time_unit.value, models=names, segment_col=segment_col,
                spend_model=spend_model, baselines=not no_baselines,
                customer_id_col=customer_id, datetime_col=date, monetary_value_col=amount,
                bayes_kwargs={"draws": draws, "tune": tune, "chains": chains},
                progress=lambda msg: spinner.update(f"{msg} ..."),
            )
        with status.status("Writing the report ..."):
            written = write_report(result, out, force=force,
                                   title=title or f"CLV model comparison: {transactions.name}")
    console.print(metrics_table(result))
    n_figures = sum(1 for key in written if key.startswith("figure:"))
    console.print(f"Wrote {written['report']}, {written['metrics']} and {n_figures} figures "
                  f"in {out / 'figures'}")


def _demo_compare(run: DemoRun) -> RenderableType:
    """Demo step: BG/NBD, Pareto/NBD, MBG/NBD and the baselines on the holdout; the report."""
    from clvmodels.evaluation import compare_models
    from clvmodels.report import write_report

    if run.transactions is None:
        raise RuntimeError("the load step must run before the comparison step")
    result = compare_models(run.transactions, calibration_end=DEMO_CALIBRATION_END,
                            observation_end=DEMO_HOLDOUT_END, time_unit=DEMO_TIME_UNIT,
                            models=list(DEMO_COMPARE_MODELS))
    written = write_report(result, run.out, force=True,
                           title="CLV model comparison: CDNOW sample")
    run.outputs["Model comparison metrics"] = written["metrics"]
    run.outputs["Model comparison report"] = written["report"]
    return metrics_table(result, "Model comparison on the 39-week holdout (CDNOW sample)")


DEMO_STEPS.append(("Comparing models on the holdout and writing the report ...",
                   _demo_compare))
