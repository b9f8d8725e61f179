"""Holdout evaluation: fit models on a calibration period and score them on what happened next.

One comparison per data kind, all built the same way (models named through the registry,
metrics from :mod:`clvmodels.evaluation.metrics`, the tables behind them from
:mod:`clvmodels.diagnostics`), each rendered by :func:`clvmodels.report.write_report`:

* :func:`compare_models` — transactions in continuous time (BG/NBD, MBG/NBD, Pareto/NBD,
  their Bayesian variants), :class:`ModelComparison`;
* :func:`compare_discrete` — transactions at discrete opportunities (BG/BB), a
  :class:`ModelComparison` of the same metrics;
* :func:`compare_contractual` — subscriptions (sBG against a constant churn rate),
  :class:`ContractualComparison`;
* :func:`backtest` — :func:`compare_models` at several calibration cut-offs (rolling
  origin), :class:`BacktestResult`.

This package never imports the report or the plots.
"""

from clvmodels.evaluation.backtest import BacktestResult, backtest, holdout_end
from clvmodels.evaluation.comparison import (
    BASELINES,
    DEFAULT_MODELS,
    ModelComparison,
    compare_models,
)
from clvmodels.evaluation.contractual import (
    CONTRACTUAL_BASELINES,
    CONTRACTUAL_METRIC_COLUMNS,
    CONTRACTUAL_METRIC_DIRECTIONS,
    DEFAULT_CONTRACTUAL_MODELS,
    ConstantChurn,
    ContractualComparison,
    compare_contractual,
)
from clvmodels.evaluation.discrete import (
    DEFAULT_DISCRETE_MODELS,
    DISCRETE_BASELINES,
    compare_discrete,
)
from clvmodels.evaluation.fitting import DEFAULT_BAYES_KWARGS
from clvmodels.evaluation.metrics import (
    METRIC_COLUMNS,
    METRIC_DIRECTIONS,
    best_by_metric,
    count_metrics,
    interval_coverage,
    predictive_count_pmf,
    tracking_error,
    value_metrics,
)

__all__ = [
    "BASELINES",
    "CONTRACTUAL_BASELINES",
    "CONTRACTUAL_METRIC_COLUMNS",
    "CONTRACTUAL_METRIC_DIRECTIONS",
    "DEFAULT_BAYES_KWARGS",
    "DEFAULT_CONTRACTUAL_MODELS",
    "DEFAULT_DISCRETE_MODELS",
    "DEFAULT_MODELS",
    "DISCRETE_BASELINES",
    "METRIC_COLUMNS",
    "METRIC_DIRECTIONS",
    "BacktestResult",
    "ConstantChurn",
    "ContractualComparison",
    "ModelComparison",
    "backtest",
    "best_by_metric",
    "compare_contractual",
    "compare_discrete",
    "compare_models",
    "count_metrics",
    "holdout_end",
    "interval_coverage",
    "predictive_count_pmf",
    "tracking_error",
    "value_metrics",
]
