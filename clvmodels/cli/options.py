"""Options the fitting commands share for Bayesian and hierarchical models.

``--method`` (mle / bayes: a family name becomes its Bayesian variant in the registry),
``--segment-col`` (a hierarchical Bayesian model over the segments of that column),
``--target-accept`` and ``--strict`` (sampling problems end the command with exit code 2,
:data:`clvmodels.cli._app.EXIT_CONVERGENCE`, and nothing is written). ``--draws``, ``--tune``,
``--chains`` and ``--seed`` are in :mod:`clvmodels.cli.commands`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

__all__ = ["Method", "MethodName", "SegmentCol", "Strict", "TargetAccept", "method_value"]


class MethodName(StrEnum):
    """Inference method: maximum likelihood or Bayesian (NUTS)."""

    mle = "mle"
    bayes = "bayes"


Method = Annotated[MethodName | None, typer.Option(
    "--method", help="mle or bayes: bayes fits the Bayesian variant of the named family "
                     "(bgnbd -> bayes-bgnbd; also --spend). Default: as the names say.")]
SegmentCol = Annotated[str | None, typer.Option(
    "--segment-col", help="Column with each customer's segment (in the data or the "
                          "--customers table): a hierarchical Bayesian model, partially "
                          "pooled across segments.")]
TargetAccept = Annotated[float | None, typer.Option(
    "--target-accept", help="Bayesian: NUTS target acceptance rate (default 0.8, "
                            "hierarchical 0.9).")]
Strict = Annotated[bool, typer.Option(
    "--strict", help="Bayesian: sampling problems (R-hat, effective sample size, divergent "
                     "transitions) end the command with exit code 2 and nothing written "
                     "(default: one warning line each).")]


def method_value(method: MethodName | None) -> str | None:
    """The option's value as text (None when not given)."""
    return None if method is None else method.value
