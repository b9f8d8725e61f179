"""MBG/NBD: Batislam, Denizel & Filiztekin (2007), "Empirical validation and comparison of
models for customer base analysis", IJRM 24(3).

As the BG/NBD, but a customer may also drop out right after the first purchase, so the
likelihood's bracket always carries its second term, with a/(b+x) in place of a/(b+x-1).
The formulas are the BG family's (:mod:`clvmodels.models.bgnbd`) with ``modified=True``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clvmodels.models._math import NP
from clvmodels.models.bgnbd import (
    _BGFamily,
    bg_family_expected_new,
    bg_family_expected_purchases,
    bg_family_log_likelihood,
    bg_family_pmf,
    bg_family_probability_alive,
)
from clvmodels.simulate import simulate_mbgnbd

__all__ = [
    "ModifiedBetaGeo",
    "expected_purchases",
    "expected_purchases_new_customer",
    "log_likelihood",
    "probability_alive",
    "purchase_count_probability",
]


def log_likelihood(r: Any, alpha: Any, a: Any, b: Any, x: Any, tx: Any, T: Any,
                   m: Any = NP) -> Any:
    """Per-customer MBG/NBD log-likelihood (Batislam et al. 2007, eq. 6)."""
    return bg_family_log_likelihood(r, alpha, a, b, x, tx, T, modified=True, m=m)


def probability_alive(r: Any, alpha: Any, a: Any, b: Any, x: Any, tx: Any, T: Any
                      ) -> np.ndarray:
    """P(alive) = 1 / (1 + (a/(b+x)) ((alpha+T)/(alpha+t_x))^(r+x)) (Batislam eq. 8)."""
    return bg_family_probability_alive(r, alpha, a, b, x, tx, T, modified=True)


def expected_purchases(r: Any, alpha: Any, a: Any, b: Any, x: Any, tx: Any, T: Any, t: Any
                       ) -> np.ndarray:
    """E[Y(t) | x, t_x, T] (Batislam eq. 9)."""
    return bg_family_expected_purchases(r, alpha, a, b, x, tx, T, t, modified=True)


def expected_purchases_new_customer(r: Any, alpha: Any, a: Any, b: Any, t: Any) -> np.ndarray:
    """E[X(t)] = (b/(a-1)) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))] (eq. 7)."""
    return bg_family_expected_new(r, alpha, a, b, t, modified=True)


def purchase_count_probability(r: Any, alpha: Any, a: Any, b: Any, n: Any, t: Any
                               ) -> np.ndarray:
    """P(X(t) = n) for a new customer (the BG/NBD eq. 8 argument with drop-out at 0)."""
    return bg_family_pmf(r, alpha, a, b, n, t, modified=True)


class ModifiedBetaGeo(_BGFamily):
    """MBG/NBD model (Batislam et al. 2007), fitted by maximum likelihood.

    Parameters ``r, alpha, a, b`` as in :class:`clvmodels.BetaGeo`.
    """

    name = "mbgnbd"
    label = "MBG/NBD"
    citation = ("Batislam, Denizel & Filiztekin (2007), Empirical validation and comparison "
                "of models for customer base analysis, IJRM 24(3)")
    simulator = staticmethod(simulate_mbgnbd)
    _modified = True
