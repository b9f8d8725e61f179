"""Declarative batch runs: ``clvmodels run RUN.toml``.

:mod:`clvmodels.runs.config` reads and checks the TOML file (a typed schema);
:mod:`clvmodels.runs.execute` carries it out into one run directory, written atomically;
:mod:`clvmodels.runs.tracking` compares the previous run's forecast with what happened since.
"""

from clvmodels.runs.config import ConfigError, RunConfig, load_config
from clvmodels.runs.execute import RunConvergenceError, RunResult, execute

__all__ = ["ConfigError", "RunConfig", "RunConvergenceError", "RunResult", "execute",
           "load_config"]
