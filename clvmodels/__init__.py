"""clvmodels: probabilistic customer-lifetime-value models.

Transactions → RFM summary (:func:`rfm_summary`) → buy-till-you-die model (:class:`BetaGeo`,
:class:`ParetoNBD`, :class:`ModifiedBetaGeo`) and spend model (:class:`GammaGamma`) →
per-customer forecasts → CLV discounted to present value (:func:`customer_lifetime_value`).
Every model class of every family (maximum likelihood and Bayesian) is registered where it is
defined (:mod:`clvmodels.models.registry`) and exported here; the Bayesian ones import PyMC
only when they are fitted.
"""

from clvmodels._validation import ValidationError
from clvmodels._version import __version__
from clvmodels.contract import contract_summary
from clvmodels.covariates import join_customers
from clvmodels.evaluation import BacktestResult, ModelComparison, backtest, compare_models
from clvmodels.models import registry as _registry
from clvmodels.models.base import (
    ConvergenceWarning,
    IdentificationError,
    IdentificationWarning,
    NotFittedError,
)
from clvmodels.models.lr_test import lr_test
from clvmodels.models.persistence import ModelFileError, load_model
from clvmodels.rfm import (
    TIME_UNITS,
    CompressedRFM,
    calibration_holdout_split,
    compress_rfm,
    rfm_summary,
)
from clvmodels.valuation import customer_lifetime_value

# every model class of every family module, found through the registry (no hand-kept list)
_MODEL_CLASSES = {cls.__name__: cls for cls in _registry.models()}
globals().update(_MODEL_CLASSES)

__all__ = [
    "TIME_UNITS",
    "BacktestResult",
    "CompressedRFM",
    "ConvergenceWarning",
    "IdentificationError",
    "IdentificationWarning",
    "ModelComparison",
    "ModelFileError",
    "NotFittedError",
    "ValidationError",
    "__version__",
    "backtest",
    "calibration_holdout_split",
    "compare_models",
    "compress_rfm",
    "contract_summary",
    "customer_lifetime_value",
    "join_customers",
    "load_model",
    "lr_test",
    "rfm_summary",
    *sorted(_MODEL_CLASSES),
]
