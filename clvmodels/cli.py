"""The ``clvmodels`` command line: thin wrappers that parse, call the library, write files.

Commands
--------
``clvmodels rfm INPUT --out rfm.parquet``
    Transactions (CSV or Parquet) → one RFM row per customer.
``clvmodels demo [--out reports/cdnow]``
    The main job on the bundled CDNOW sample; its steps live in :data:`DEMO_STEPS` so later
    stages (fit, forecast, report) are added by appending a step.
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

from clvmodels import __version__
from clvmodels._io import check_output_path, frame_format, write_frame
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
    return Console(highlight=False, soft_wrap=True)


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
