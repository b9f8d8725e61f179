"""clvmodels: probabilistic customer-lifetime-value models.

Transactions → RFM summary (:func:`rfm_summary`) → buy-till-you-die model → per-customer
forecasts → CLV discounted to present value.
"""

from clvmodels._validation import ValidationError
from clvmodels.rfm import (
    TIME_UNITS,
    CompressedRFM,
    calibration_holdout_split,
    compress_rfm,
    rfm_summary,
)

__version__ = "0.1.0"

__all__ = [
    "TIME_UNITS",
    "CompressedRFM",
    "ValidationError",
    "__version__",
    "calibration_holdout_split",
    "compress_rfm",
    "rfm_summary",
]
