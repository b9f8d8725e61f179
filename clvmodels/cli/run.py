"""The ``run`` command: carry out a declarative run configuration (``RUN.toml``).

The work is in :mod:`clvmodels.runs` (the schema in :mod:`clvmodels.runs.config`, the run
directory in :mod:`clvmodels.runs.execute`); this wrapper parses the command line, shows
progress (plain lines when stderr is not a terminal) and maps errors to exit codes: 0 done;
1 bad configuration or input (every problem named by its key path, nothing written);
2 sampling problems with ``--strict`` (nothing written); 130 interrupted (nothing written).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from clvmodels.cli._app import ConvergenceFailure, app, command, stderr, stdout

__all__ = ["run"]


@app.command(epilog="Exit codes: 0 done; 1 bad configuration or input (nothing written); "
                    "2 sampling problems with --strict (nothing written); 130 interrupted.")
def run(
    config_file: Annotated[Path, typer.Argument(
        help="The run configuration (TOML): input, models, valuation, report, output.")],
    force: Annotated[bool, typer.Option(
        "--force", help="Replace an existing run directory of the same run id.")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit with code 2, writing nothing, on any sampling problem of a "
                         "Bayesian fit (R-hat, effective sample size, divergences).")] = False,
    observation_end: Annotated[str | None, typer.Option(
        "--observation-end", help="Override input.observation_end (a date or 'latest'): "
                                  "the as-of date of a scheduled run.")] = None,
) -> None:
    """Fit, value, compare and track as RUN.toml says, into one run directory
    (<runs_dir>/<name>/<run_id>/) written whole or not at all."""
    from clvmodels.runs import RunConvergenceError, execute, load_config

    with command(), contextlib.ExitStack() as stack:
        config = load_config(config_file)
        console = stderr()
        if console.is_terminal:
            status = stack.enter_context(console.status("Starting ..."))

            def say(message: str) -> None:
                status.update(message)
                if message.startswith(("Warning", "Sampling problem")):
                    console.print(message, markup=False)
        else:
            def say(message: str) -> None:
                console.print(message, markup=False)
        try:
            result = execute(config, force=force, strict=strict,
                             observation_end=observation_end, config_path=config_file,
                             progress=say)
        except RunConvergenceError as exc:
            raise ConvergenceFailure(str(exc)) from None
    stdout().print(str(result.run_dir), markup=False)
