"""What every command shares: the typer app, consoles, errors, Ctrl-C, warnings, progress.

* Results go to stdout, progress and messages to stderr.
* :func:`command` wraps a command's body: bad input (:class:`ValueError`, :class:`OSError`,
  a missing optional engine, a DuckDB error) ends it with exit code 1 and one ``Error:``
  paragraph; Ctrl-C — wherever it lands, in pandas, in DuckDB (which reports it as its own
  error) or while files are written — ends it with exit code 130 and the one line
  ``Interrupted.``; Python warnings reach the user as one ``Warning: <message>`` line, never
  with a source path and code line.
* :func:`step` shows what a long step is doing: a spinner on a terminal, a plain line
  ("Fitting bgnbd on 2,357 customers ...") when stderr is piped or captured.
* Model choices come from :mod:`clvmodels.models.registry` (:func:`choices`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from clvmodels._version import __version__

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CONVERGENCE",
    "EXIT_INTERRUPTED",
    "ConvergenceFailure",
    "EngineName",
    "NegativeAmounts",
    "TimeUnit",
    "app",
    "choices",
    "command",
    "plural",
    "stderr",
    "stdout",
    "step",
]

app = typer.Typer(
    name="clvmodels",
    help="Probabilistic customer-lifetime-value models: RFM summaries, fits, forecasts.",
    epilog="Exit codes: 0 done; 1 bad input (nothing written); 2 sampling problems with "
           "--strict (nothing written), or a mistyped command line; 130 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

#: Exit code for bad input or a refused write (usage errors keep click's code 2).
EXIT_BAD_INPUT = 1
#: Exit code of a Bayesian fit whose sampler diagnostics fail, with ``--strict`` (click's usage
#: errors also end with 2: both mean "nothing was done").
EXIT_CONVERGENCE = 2
#: Exit code after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130

#: Width of results written to a pipe or file when ``COLUMNS`` does not say otherwise: wide
#: enough that tables keep one line per row (greppable).
PIPED_WIDTH = 160


class ConvergenceFailure(Exception):
    """Sampler diagnostics failed with ``--strict``: the command ends with
    :data:`EXIT_CONVERGENCE` and writes nothing."""


class TimeUnit(StrEnum):
    """Time units accepted on the command line (see :data:`clvmodels.TIME_UNITS`)."""

    D = "D"
    W = "W"
    M = "M"
    Y = "Y"


class EngineName(StrEnum):
    """Summary engines selectable from the command line."""

    pandas = "pandas"
    duckdb = "duckdb"
    spark = "spark"


class NegativeAmounts(StrEnum):
    """What to do with negative transaction amounts (returns)."""

    raise_ = "raise"
    drop = "drop"


def choices(enum_name: str, names: list[str]) -> type[StrEnum]:
    """An enum of ``names``, the choices of an option (typer shows and checks them).

    The commands pass the registry's names (``registry.model_names(role="spend")`` →
    gammagamma, bayes-gammagamma): the command line never lists models itself, so a new
    family appears in ``--help`` once it is registered.
    """
    return StrEnum(enum_name, [(n, n) for n in names])  # type: ignore[return-value]


def plural(n: int, word: str, words: str | None = None) -> str:
    """``"1 customer"``, ``"2,357 customers"``."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def _columns() -> int | None:
    """``COLUMNS`` from the environment, when it is a sensible width."""
    with contextlib.suppress(KeyError, ValueError):
        value = int(os.environ["COLUMNS"])
        if value >= 20:
            return value
    return None


def stdout() -> Console:
    """Console for results (stdout).

    On a terminal its width is the terminal's (tables wrap their cells to fit; see
    :mod:`clvmodels.cli.tables`); piped or captured it is ``COLUMNS`` when set, else
    :data:`PIPED_WIDTH`. Plain lines are not wrapped (``soft_wrap``), tables are.
    """
    width = None if sys.stdout.isatty() else (_columns() or PIPED_WIDTH)
    return Console(highlight=False, soft_wrap=True, width=width)


def stderr() -> Console:
    """Console for progress, warnings and errors (stderr), so stdout carries only results."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _one_line(message: object) -> str:
    """A message on one line (wrapped lines and indentation collapsed)."""
    return " ".join(str(message).split()) or "(no message)"


def _print_warning(message: Warning | str, category: type[Warning], filename: str,
                   lineno: int, file: Any = None, line: str | None = None) -> None:
    """``warnings.showwarning`` replacement: one ``Warning: <message>`` line on stderr."""
    text = Text("Warning: ", style="bold yellow")
    text.append(_one_line(message))
    stderr().print(text)


def warning_line(message: str) -> None:
    """Print ``Warning: <message>`` (one line) on stderr, as warnings are shown."""
    text = Text("Warning: ", style="bold yellow")
    text.append(_one_line(message))
    stderr().print(text)


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "bad input or environment", reported without a traceback."""
    # ValidationError is a ValueError; ImportError: an optional engine is not installed
    kinds: list[type[BaseException]] = [ValueError, OSError, ImportError]
    if "duckdb" in sys.modules:
        kinds.append(sys.modules["duckdb"].Error)
    return tuple(kinds)


def _is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C, however the library that was running reported it."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    duckdb = sys.modules.get("duckdb")
    interrupt = getattr(duckdb, "InterruptException", None) if duckdb else None
    if interrupt is not None and isinstance(exc, interrupt):
        return True
    # DuckDB 2 turns the interrupt into RuntimeError("Query interrupted")
    return (duckdb is not None and isinstance(exc, RuntimeError)
            and str(exc).strip().lower() == "query interrupted")


@contextlib.contextmanager
def _sigint_flag() -> Iterator[dict[str, bool]]:
    """Note every SIGINT while the body runs (and raise KeyboardInterrupt as Python does).

    A library that catches the KeyboardInterrupt and raises its own error (DuckDB does)
    cannot hide that the user pressed Ctrl-C.
    """
    state = {"interrupted": False}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum: int, frame: object) -> None:
        state["interrupted"] = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def command() -> Iterator[None]:
    """The body of a command: errors, Ctrl-C and warnings as one-line messages.

    * bad input → ``Error: <message>`` on stderr, exit code 1, no traceback;
    * a :class:`ConvergenceFailure` (``--strict``) → ``Error: <message>``, exit code 2;
    * Ctrl-C (``KeyboardInterrupt``, or an engine's own "interrupted" error after a SIGINT)
      → ``Interrupted.`` on stderr, exit code 130, no traceback;
    * each warning → ``Warning: <message>`` on stderr (no file path, no code line).

    Outputs are written all-or-nothing by the commands (:mod:`clvmodels._io`), so an error
    or an interrupt leaves no partial output behind.
    """
    with _sigint_flag() as sigint, warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _print_warning
        try:
            yield
        except typer.Exit:
            raise
        except BaseException as exc:
            if sigint["interrupted"] or _is_interrupt(exc):
                stderr().print(Text("Interrupted.", style="bold red"))
                raise typer.Exit(code=EXIT_INTERRUPTED) from None
            if isinstance(exc, (ConvergenceFailure, *_user_error_types())):
                message = str(exc).strip() or type(exc).__name__
                text = Text("Error: ", style="bold red")
                text.append(message)
                stderr().print(text)
                code = EXIT_CONVERGENCE if isinstance(exc, ConvergenceFailure) else \
                    EXIT_BAD_INPUT
                raise typer.Exit(code=code) from None
            raise


class _Step:
    """What :func:`step` yields: ``update(message)`` says what the step is doing now."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say

    def update(self, message: str) -> None:
        """Show ``message`` (a spinner's text on a terminal, else a new line)."""
        self._say(message if message.endswith("...") else f"{message} ...")


@contextlib.contextmanager
def step(message: str) -> Iterator[_Step]:
    """Show a long step on stderr: a spinner on a terminal, a plain line when piped."""
    console = stderr()
    text = message if message.endswith("...") else f"{message} ..."
    if console.is_terminal:
        with console.status(text) as status:
            yield _Step(lambda m: status.update(m))
    else:
        console.print(text)
        yield _Step(lambda m: console.print(m))


def version_callback(value: bool) -> None:
    """Print the version and stop (``--version``)."""
    if value:
        stdout().print(f"clvmodels {__version__}")
        raise typer.Exit()
