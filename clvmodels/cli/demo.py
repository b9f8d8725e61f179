"""``clvmodels demo``: the main job on the bundled CDNOW sample, step by step.

The steps live in :data:`DEMO_STEPS` (a status line and a function of the run), so a later
stage is added by appending a step. Every step writes under a staging directory; only when
all of them succeed are the files moved into ``--out`` — all of them, refusing to replace
existing files unless ``--force`` (:func:`clvmodels._io.staged_directory`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Group, RenderableType

from clvmodels._io import check_output_path, staged_directory, write_frame
from clvmodels.cli._app import app, command, stdout, step
from clvmodels.cli.tables import forecast_overview, metrics_table, params_table, rfm_overview

__all__ = ["DEMO_CALIBRATION_END", "DEMO_COMPARE_MODELS", "DEMO_FILES", "DEMO_HOLDOUT_END",
           "DEMO_STEPS", "DEMO_TIME_UNIT", "DemoRun", "demo"]

#: The papers' CDNOW conventions: calibration to 1997-09-30, holdout to 1998-06-30, weeks.
DEMO_CALIBRATION_END = "1997-09-30"
DEMO_HOLDOUT_END = "1998-06-30"
DEMO_TIME_UNIT = "W"

#: Models the demo compares (maximum likelihood only, so the demo stays quick).
DEMO_COMPARE_MODELS = ("bgnbd", "pnbd", "mbgnbd")

#: The files every demo run writes (checked before the work starts; the figures are
#: checked when the outputs move into place).
DEMO_FILES = ("rfm.parquet", "bgnbd.json", "gammagamma.json", "forecast.parquet",
              "report.html", "metrics.csv")


@dataclass
class DemoRun:
    """State shared by the demo steps; each step reads what earlier ones left here.

    Steps write to :meth:`path` (under the staging directory) and say what they wrote with
    :meth:`record`; ``outputs`` maps each description to its final path under ``out``.
    """

    out: Path
    stage: Path | None = None
    transactions: pd.DataFrame | None = None
    rfm: pd.DataFrame | None = None
    outputs: dict[str, Path] = field(default_factory=dict)

    def path(self, relative: str) -> Path:
        """Where a step writes ``relative`` now (the staging directory, else ``out``)."""
        return (self.stage if self.stage is not None else self.out) / relative

    def record(self, what: str, relative: str) -> None:
        """Note an output for the closing list (its final path under ``out``)."""
        self.outputs[what] = self.out / relative

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
    from clvmodels.rfm import calibration_holdout_split

    if run.transactions is None:
        raise RuntimeError("the load step must run before the RFM step")
    split = calibration_holdout_split(
        run.transactions, calibration_end=DEMO_CALIBRATION_END,
        observation_end=DEMO_HOLDOUT_END, time_unit=DEMO_TIME_UNIT)
    run.rfm = split
    write_frame(split, run.path("rfm.parquet"), force=True)
    run.record("RFM summary (calibration + holdout)", "rfm.parquet")
    return rfm_overview(split,
                        title=f"CDNOW sample, calibration to {DEMO_CALIBRATION_END} (weeks)")


def _demo_forecast(run: DemoRun) -> RenderableType:
    """Demo step: BG/NBD + Gamma-Gamma on the calibration period, 12-month CLV at 10 %."""
    from clvmodels.workflow import forecast as run_forecast

    if run.transactions is None:
        raise RuntimeError("the load step must run before the forecast step")
    result = run_forecast(run.transactions, horizon="12M", discount_rate=0.10, margin=1.0,
                          model="bgnbd", calibration_end=DEMO_CALIBRATION_END,
                          observation_end=DEMO_HOLDOUT_END, time_unit=DEMO_TIME_UNIT)
    result.transaction_model.save(run.path("bgnbd.json"))
    result.spend_model.save(run.path("gammagamma.json"))
    write_frame(result.forecast, run.path("forecast.parquet"), force=True)
    run.record("BG/NBD model", "bgnbd.json")
    run.record("Gamma-Gamma model", "gammagamma.json")
    run.record("Forecast (per customer CLV)", "forecast.parquet")
    return Group(params_table(result.transaction_model, "BG/NBD (calibration to 1997-09-30)"),
                 params_table(result.spend_model, "Gamma-Gamma"),
                 forecast_overview(result))


def _demo_compare(run: DemoRun) -> RenderableType:
    """Demo step: BG/NBD, Pareto/NBD, MBG/NBD and the baselines on the holdout; the report."""
    from clvmodels.cli.commands import COMPARE_COLUMNS
    from clvmodels.evaluation import compare_models
    from clvmodels.report import write_report

    if run.transactions is None:
        raise RuntimeError("the load step must run before the comparison step")
    result = compare_models(run.transactions, calibration_end=DEMO_CALIBRATION_END,
                            observation_end=DEMO_HOLDOUT_END, time_unit=DEMO_TIME_UNIT,
                            models=list(DEMO_COMPARE_MODELS))
    write_report(result, run.path(""), force=True, title="CLV model comparison: CDNOW sample")
    run.record("Model comparison metrics", "metrics.csv")
    run.record("Model comparison report", "report.html")
    return metrics_table(result, "Model comparison on the 39-week holdout (CDNOW sample)",
                         columns=COMPARE_COLUMNS)


#: The demo pipeline, in order. Later stages append steps here.
DEMO_STEPS: list[DemoStep] = [
    ("Loading the bundled CDNOW sample", _demo_load),
    ("Summarising RFM (calibration and holdout)", _demo_rfm),
    ("Fitting BG/NBD + Gamma-Gamma and valuing customers", _demo_forecast),
    ("Comparing models on the holdout and writing the report", _demo_compare),
]


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the outputs.")
                   ] = Path("reports/cdnow"),
    force: Annotated[bool, typer.Option(
        "--force", "-f", help="Replace the outputs of an earlier run.")] = False,
) -> None:
    """Run the main job on the bundled CDNOW sample and say where the outputs went."""
    console = stdout()
    run = DemoRun(out=out)
    with command():
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"--out {os.fspath(out)!r} exists and is not a directory")
        for name in DEMO_FILES:  # refuse at once, not after the work
            check_output_path(out / name, force=force)
        with staged_directory(out, force=force) as stage:
            run.stage = stage
            for description, run_step in DEMO_STEPS:
                with step(description):
                    result = run_step(run)
                if result is not None:
                    console.print(result)
        run.stage = None
    console.print("Outputs:")
    for what, path in run.outputs.items():
        console.print(f"  {what}: {path}")
    figures = out / "figures"
    if figures.is_dir():
        console.print(f"  Report figures: {figures}{os.sep}")
