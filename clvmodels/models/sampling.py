"""NUTS sampling of a built PyMC model and the convergence checks of its draws.

:func:`sample` runs nutpie (compiled with numba, with a low-rank modified mass matrix that
adapts to the strong posterior correlations of the buy-till-you-die models) or PyMC's own
NUTS (a full mass matrix; the fallback when nutpie is missing), recording compile and
sampling times; the compiled sampler is reused for every fit of the same structure
(:mod:`clvmodels.models.compiled`). :func:`convergence_diagnostics` summarises R-hat
(Vehtari et al. 2021, rank normalised), bulk and tail effective sample sizes and
divergences; :func:`sampling_problems` says which of them fail the thresholds
:data:`MAX_RHAT` and :data:`MIN_ESS_PER_CHAIN`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import arviz as az
    import pymc as pm

__all__ = [
    "MAX_RHAT",
    "MIN_ESS_PER_CHAIN",
    "Sampler",
    "SamplingWarning",
    "arviz_numpy_kernels",
    "convergence_diagnostics",
    "convergence_lines",
    "sample",
    "sampling_problems",
]

#: minimum bulk / tail ESS per chain before a warning
MIN_ESS_PER_CHAIN = 100
#: largest acceptable R-hat
MAX_RHAT = 1.01

Sampler = Literal["nutpie", "pymc"]


class SamplingWarning(UserWarning):
    """The sampler's diagnostics (R-hat, ESS, divergences) suggest an unreliable posterior."""


def sample(model: pm.Model, sampler: Sampler, *, draws: int, tune: int, chains: int,
           cores: int, random_seed: int | None, target_accept: float, progressbar: bool,
           timings: dict[str, float]) -> tuple[az.InferenceData, Sampler]:
    """Sample ``model`` with NUTS: ``(idata, the sampler used)``.

    ``sampler="nutpie"`` falls back to PyMC, with a warning, when nutpie is not installed.
    ``timings`` receives ``compile_s``, ``compile_cache_hit`` (1.0 when this session's
    compiled sampler of the same structure was reused; nutpie), ``compile_disk_hit`` (1.0
    when it was loaded from the on-disk cache) and ``sample_s``.
    """
    if sampler == "nutpie":
        try:
            import nutpie  # noqa: F401
        except ImportError:
            warnings.warn("nutpie is not installed: sampling with PyMC instead",
                          UserWarning, stacklevel=3)
            sampler = "pymc"
    run = _sample_nutpie if sampler == "nutpie" else _sample_pymc
    idata = run(model, draws, tune, chains, cores, random_seed, target_accept, progressbar,
                timings)
    return idata, sampler


def _sample_nutpie(model: pm.Model, draws: int, tune: int, chains: int, cores: int,
                   seed: int | None, target_accept: float, progressbar: bool,
                   timings: dict[str, float]) -> az.InferenceData:
    import nutpie

    from clvmodels.models.compiled import compile_nutpie

    t0 = time.perf_counter()
    compiled, cache = compile_nutpie(model)
    timings["compile_s"] = time.perf_counter() - t0
    timings["compile_cache_hit"] = float(cache == "hit")
    timings["compile_disk_hit"] = float(cache == "disk")
    t0 = time.perf_counter()
    idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=cores,
                          seed=seed, progress_bar=progressbar, save_warmup=False,
                          low_rank_modified_mass_matrix=True,
                          target_accept=target_accept)
    timings["sample_s"] = time.perf_counter() - t0
    return idata


def _sample_pymc(model: pm.Model, draws: int, tune: int, chains: int, cores: int,
                 seed: int | None, target_accept: float, progressbar: bool,
                 timings: dict[str, float]) -> az.InferenceData:
    import pymc as pm

    t0 = time.perf_counter()
    logger = logging.getLogger("pymc")
    level = logger.level
    if not progressbar:
        logger.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*QuadPotentialFullAdapt.*")
        try:
            idata = pm.sample(model=model, draws=draws, tune=tune, chains=chains,
                              cores=cores, random_seed=seed, progressbar=progressbar,
                              init="jitter+adapt_full", target_accept=target_accept,
                              compute_convergence_checks=False,
                              idata_kwargs={"log_likelihood": False})
        finally:
            logger.setLevel(level)
    # pymc compiles inside pm.sample: its compile time is part of this figure
    timings["sample_s"] = time.perf_counter() - t0
    return idata


_ARVIZ_LOCK = threading.Lock()


@contextlib.contextmanager
def arviz_numpy_kernels() -> Iterator[None]:
    """ArviZ's statistics with its numpy kernels inside the block (R-hat, ESS, summary).

    ArviZ compiles its numba kernels (the per-chain variance) on first use in every
    process — 0.15 s on an idle machine, 0.8 s at load 8 — far longer than the numpy path
    takes on a few thousand draws, and each new process that fits a model pays it. The
    values agree to rounding (numpy's two-pass variance). ArviZ's switch is a class
    attribute; it is restored on exit.
    """
    try:
        from arviz.utils import Numba
    except ImportError:  # pragma: no cover - arviz comes with PyMC
        yield
        return
    with _ARVIZ_LOCK:
        old = Numba.numba_flag
        Numba.numba_flag = False
        try:
            yield
        finally:
            Numba.numba_flag = old


def convergence_diagnostics(idata: az.InferenceData, var_names: Sequence[str]
                            ) -> dict[str, Any]:
    """Chains, draws per chain, divergences, the largest R-hat and the smallest bulk and
    tail ESS over every element of ``var_names`` (R-hat NaN with a single chain)."""
    import arviz as az

    post = idata.posterior
    chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    stats = idata.sample_stats
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    with warnings.catch_warnings(), arviz_numpy_kernels():
        warnings.simplefilter("ignore")
        ds = post[list(var_names)]
        rhat = az.rhat(ds) if chains > 1 else None
        ess_b = az.ess(ds, method="bulk")
        ess_t = az.ess(ds, method="tail")

    def extreme(d: Any, fn: Callable[..., Any]) -> float:
        vals = np.concatenate([np.ravel(d[v].to_numpy()) for v in d.data_vars])
        vals = vals[np.isfinite(vals)]
        return float(fn(vals)) if len(vals) else float("nan")

    return {
        "chains": chains,
        "draws": draws,
        "divergences": divergences,
        "max_rhat": extreme(rhat, np.max) if rhat is not None else float("nan"),
        "min_ess_bulk": extreme(ess_b, np.min),
        "min_ess_tail": extreme(ess_t, np.min),
    }


def sampling_problems(diagnostics: dict[str, Any]) -> list[str]:
    """What fails in :func:`convergence_diagnostics`' result, in words (empty when fine)."""
    d = diagnostics
    problems = []
    if d["max_rhat"] > MAX_RHAT:
        problems.append(f"R-hat up to {d['max_rhat']:.3f} (> {MAX_RHAT})")
    low = MIN_ESS_PER_CHAIN * d["chains"]
    if min(d["min_ess_bulk"], d["min_ess_tail"]) < low:
        problems.append(f"effective sample size as low as "
                        f"{min(d['min_ess_bulk'], d['min_ess_tail']):.0f} (< {low})")
    if d["divergences"]:
        problems.append(f"{d['divergences']} divergent transitions")
    return problems


def convergence_lines(models: Mapping[str, Any]) -> list[str]:
    """One line per sampling problem of each fitted Bayesian model (``name: problem``, from
    :func:`sampling_problems`): R-hat above :data:`MAX_RHAT`, an effective sample size below
    :data:`MIN_ESS_PER_CHAIN` per chain, divergent transitions. Maximum-likelihood models,
    ``None`` and models without diagnostics give none."""
    lines = []
    for name, model in models.items():
        diagnostics = getattr(model, "diagnostics_", None)
        if model is None or not getattr(model, "bayesian", False) or not diagnostics:
            continue
        lines += [f"{name}: {problem}" for problem in sampling_problems(diagnostics)]
    return lines
