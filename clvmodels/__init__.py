"""clvmodels: probabilistic customer-lifetime-value models.

Transactions → RFM summary (:func:`rfm_summary`) → buy-till-you-die model (:class:`BetaGeo`,
:class:`ParetoNBD`, :class:`ModifiedBetaGeo`) and spend model (:class:`GammaGamma`) →
per-customer forecasts → CLV discounted to present value (:func:`customer_lifetime_value`).
The Bayesian models (:class:`BayesianBetaGeo`, :class:`BayesianModifiedBetaGeo`,
:class:`BayesianGammaGamma`) import PyMC, so
they load on first use.
"""

from typing import Any

from clvmodels._validation import ValidationError
from clvmodels._version import __version__
from clvmodels.evaluation import ModelComparison, compare_models
from clvmodels.models.base import ConvergenceWarning, NotFittedError, load_model
from clvmodels.models.bgnbd import BetaGeo
from clvmodels.models.gammagamma import GammaGamma
from clvmodels.models.mbgnbd import ModifiedBetaGeo
from clvmodels.models.paretonbd import ParetoNBD
from clvmodels.rfm import (
    TIME_UNITS,
    CompressedRFM,
    calibration_holdout_split,
    compress_rfm,
    rfm_summary,
)
from clvmodels.valuation import customer_lifetime_value

_LAZY = {
    "BayesianBetaGeo": "clvmodels.models.bayes_bgnbd",
    "BayesianGammaGamma": "clvmodels.models.bayes_gammagamma",
    "BayesianModifiedBetaGeo": "clvmodels.models.bayes_bgnbd",
}

__all__ = [
    "TIME_UNITS",
    "BayesianBetaGeo",
    "BayesianGammaGamma",
    "BayesianModifiedBetaGeo",
    "BetaGeo",
    "CompressedRFM",
    "ConvergenceWarning",
    "GammaGamma",
    "ModelComparison",
    "ModifiedBetaGeo",
    "NotFittedError",
    "ParetoNBD",
    "ValidationError",
    "__version__",
    "calibration_holdout_split",
    "compare_models",
    "compress_rfm",
    "customer_lifetime_value",
    "load_model",
    "rfm_summary",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'clvmodels' has no attribute {name!r}")
