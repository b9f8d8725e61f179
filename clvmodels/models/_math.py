"""A tiny math namespace so each likelihood is written once.

Model modules write their log-likelihood as ``f(params..., data, m=NP)`` using only the
functions below. :data:`NP` evaluates with numpy/scipy (maximum likelihood, pointwise
log-likelihoods, tests); :func:`tensor_namespace` returns the same names backed by pytensor,
so PyMC builds its likelihood — and automatic gradients — from the very same function.
"""

from __future__ import annotations

from functools import cache
from types import SimpleNamespace

import numpy as np
from scipy import special

__all__ = ["NP", "tensor_namespace"]


def _where(cond, a, b):
    return np.where(cond, a, b)


NP = SimpleNamespace(
    name="numpy",
    gammaln=special.gammaln,
    betaln=special.betaln,
    digamma=special.digamma,
    log=np.log,
    log1p=np.log1p,
    exp=np.exp,
    expm1=np.expm1,
    logaddexp=np.logaddexp,
    where=_where,
    maximum=np.maximum,
    hyp2f1=special.hyp2f1,
    as_float=lambda v: np.asarray(v, dtype=float),
)


@cache
def tensor_namespace() -> SimpleNamespace:
    """The same functions as :data:`NP`, backed by pytensor (imported lazily)."""
    import pytensor.tensor as pt

    return SimpleNamespace(
        name="pytensor",
        gammaln=pt.gammaln,
        betaln=lambda a, b: pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(a + b),
        digamma=pt.digamma,
        log=pt.log,
        log1p=pt.log1p,
        exp=pt.exp,
        expm1=pt.expm1,
        logaddexp=pt.logaddexp,
        where=pt.where,
        maximum=pt.maximum,
        hyp2f1=pt.hyp2f1,
        as_float=pt.as_tensor_variable,
    )
