"""The ``clvmodels`` command line: thin wrappers that parse, call the library, write files.

Commands
--------
``clvmodels datasets cdnow --out transactions.csv``
    Write a bundled data set (CDNOW transactions, the donations summary, the F&H 2007
    subscriptions) as a file the other commands read.
``clvmodels rfm INPUT --out rfm.parquet``
    Transactions (CSV or Parquet) → one RFM row per customer.
``clvmodels fit SUMMARY --model NAME --out model.json``
    Fit any registered model (BG/NBD, Pareto/NBD, MBG/NBD, BG/BB, sBG, their Bayesian
    variants; ``--weights`` for pre-aggregated rows) and save it.
``clvmodels forecast INPUT --out forecast.parquet``
    Per-customer discounted CLV from transactions, subscription records (``--model sbg``) or
    a discrete summary (``--model bgbb``).
``clvmodels compare INPUT --calibration-end DATE --observation-end DATE --out DIR``
    Fit models on the calibration period, score them on the holdout and write
    ``report.html``, ``metrics.csv`` and ``figures/*.png``.
``clvmodels score MODEL_FILE DATA --out scores.parquet``
    Value customers with a model saved by ``fit`` (JSON or netCDF), without refitting
    (:mod:`clvmodels.cli.scoring` documents the output columns).
``clvmodels run RUN.toml [--force] [--strict]``
    A declarative batch run (:mod:`clvmodels.runs`): one run directory with forecasts,
    models, the comparison report, forecast tracking and ``manifest.json``.
``clvmodels demo [--out reports/cdnow] [--force]``
    The main job on the bundled CDNOW sample (:data:`DEMO_STEPS`).
``clvmodels --version``

Exit codes: 0 done; 1 bad input (:class:`~clvmodels.ValidationError`, a missing file, an
existing output without ``--force``, data in another time unit than the model's, ...) with a
short message naming the problem; 2 a Bayesian fit whose sampler diagnostics fail (R-hat,
effective sample size, divergences) under ``--strict`` — also click's code for a mistyped
option; 130 Ctrl-C, with one line. Never a traceback; warnings (and each sampling problem)
print as one line.
Every command writes all of its outputs or none (see :mod:`clvmodels._io`). The model
choices come from :mod:`clvmodels.models.registry`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from clvmodels.cli import commands as _commands
from clvmodels.cli import run as _run  # noqa: F401  (registers the command)
from clvmodels.cli import score as _score  # noqa: F401  (registers the command)
from clvmodels.cli._app import (
    EXIT_BAD_INPUT,
    EXIT_CONVERGENCE,
    EXIT_INTERRUPTED,
    app,
    version_callback,
)
from clvmodels.cli.demo import DEMO_STEPS, DemoRun
from clvmodels.cli.tables import (
    forecast_overview,
    metrics_table,
    params_table,
    rfm_overview,
    tiers_table,
)

__all__ = ["DEMO_STEPS", "EXIT_BAD_INPUT", "EXIT_CONVERGENCE", "EXIT_INTERRUPTED", "DemoRun", "app",
           "forecast_overview", "metrics_table", "params_table", "rfm_overview",
           "tiers_table"]

COMPARE_COLUMNS = _commands.COMPARE_COLUMNS


@app.callback()
def main(
    version: Annotated[bool, typer.Option(
        "--version", help="Show the version and exit.", callback=version_callback,
        is_eager=True)] = False,
) -> None:
    """Probabilistic customer-lifetime-value models: RFM summaries, fits, forecasts."""
