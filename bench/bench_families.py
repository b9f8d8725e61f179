"""Benchmarks and a simulation study of the discrete-time families: BG/BB (Fader, Hardie &
Shang 2010) and the shifted-beta-geometric (Fader & Hardie 2007, 2010).

Every measurement runs in its own subprocess (clean timings and peak memory); the driver
prints one table and writes ``bench/results/families_<task>.json`` (git-ignored) and
``bench/results/families_table.md``. The load average (what ``uptime`` prints) is recorded
before and after every task, because the development machine is shared. Usage::

    .venv/bin/python bench/bench_families.py                    # everything (~25 min)
    .venv/bin/python bench/bench_families.py --only bgbb sbg    # the MLE comparisons
    .venv/bin/python bench/bench_families.py --size 100000 --reps 5   # smaller
    CLV_BENCH_RESULTS=/tmp/x .venv/bin/python bench/bench_families.py --size 20000 \
        --repeats 1 --hier-repeats 1 --reps 2 --peer-mcmc-size 1000  # a smoke test (~3 min)

Tasks (``--only``):

* ``bgbb``: BG/BB MLE on ``--size`` simulated customers (known parameters, donation-like:
  alpha 1.2, beta 0.75, gamma 0.66, delta 2.78) with T uniform on 6..52 opportunities:
  simulation time, fit time (``BetaGeoBetaBinom().fit`` on one row per customer: our
  compression counts in our time; and on the grouped rows with ``weights=``), compression
  ratio, peak RSS, recovery (z = (estimate - truth) / SE). Side by side in the same process,
  lifetimes 0.11.3's ``BetaGeoBetaBinomFitter`` on the grouped rows with its ``weights``
  (grouping not counted); its per-row log-likelihood at our estimates is compared with
  ours (lifetimes adds 1e-15 to the sum over dropout opportunities, which swamps the true
  value for long histories). Because it does not converge on T up to 52, the same
  comparison is repeated on T uniform on 6..24 (``bgbb_short``), where it does: time ratio
  and parameter agreement. ``--repeats`` interleaved rounds, medians.
* ``sbg``: sBG MLE (``ShiftedBetaGeo().fit``) on ``--size`` customers in 24 monthly cohorts
  (``simulate_sbg_cohorts``, alpha 0.7, beta 1.2): fit time on raw and grouped rows,
  compression, recovery. Peer (no Python peer fits sBG with weights; PyMC-Marketing 0.19.2's
  ``ShiftedBetaGeoModel`` takes one row per customer and needs one T per cohort): on one
  cohort observed 12 periods, PyMC-Marketing's MAP (``method="map"``) on ``--size``
  customers vs our MLE, and its NUTS fit (nutpie, 2 chains x 500 + 500) vs our
  ``BayesianShiftedBetaGeo`` on ``--peer-mcmc-size`` customers. PyMC-Marketing is looked
  for in the venv and then in ``--pmm-path`` (install it there without touching the venv:
  ``pip install --no-deps --target /tmp/clv-bench-pmm pymc-marketing==0.19.2`` plus its
  missing dependencies, or ``pip install -e '.[bench]'``); without it these rows say so.
* ``hier``: hierarchical Bayesian sBG, 10 segments whose (logit mean churn, log
  concentration) are drawn from a normal hyperdistribution, ``--size`` customers (24
  cohorts per segment): ``BayesianShiftedBetaGeo(segment_col="segment").fit(data,
  chains=2, draws=500, tune=500)``, ``--hier-repeats`` times with different sampler seeds:
  wall and sampling time, worst bulk and tail ESS over every posterior variable
  (hyperparameters, latents, segment parameters), worst ESS per second of sampling,
  divergences, max R-hat, and how many of the 20 segment parameters' 90% central
  intervals cover the truth (and of the 4 hyperparameters).
* ``coverage``: repeated simulations (``--reps``) for the non-hierarchical
  ``BayesianBetaGeoBetaBinom`` (``--coverage-size`` customers, T uniform on 6..12: the
  sampler's cost grows with the longest history) and ``BayesianShiftedBetaGeo`` (the same
  number of customers in 12 cohorts), 2 chains x 300 + 300 draws each: the share of 90%
  central posterior intervals that cover the true parameters, per parameter and overall,
  with the binomial standard error sqrt(p (1 - p) / N) (the parameters of one replication
  are not independent, so the overall one is a lower bound). The MLE's 90% Wald intervals
  on the same data sets are the reference (``--coverage-sampler pymc`` samples with PyMC's
  NUTS instead of nutpie: the same posterior, a C compile cached between fits).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a source checkout without installing

RESULTS_DIR = Path(os.environ.get("CLV_BENCH_RESULTS", HERE / "results"))
BGBB_TRUTH = {"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.78}
SBG_TRUTH = {"alpha": 0.7, "beta": 1.2}
#: hyperdistribution of the hierarchical sBG's segments (the model's own latent scales)
HYPER_TRUTH = {"mu_logit_churn": -1.0, "sigma_logit_churn": 0.5,
               "mu_log_kappa": 0.8, "sigma_log_kappa": 0.4}
SBG_COHORTS = 24
COVERAGE_LEVEL = 0.9
DEFAULT_PMM_PATH = os.environ.get("CLV_BENCH_PMM", "/tmp/clv-bench-pmm")


# --------------------------------------------------------------------------------------
# helpers (run inside the task processes)
# --------------------------------------------------------------------------------------


def _quiet_logs() -> None:
    warnings.filterwarnings("ignore")
    import logging

    for name in ("pymc", "pytensor", "nutpie", "pymc_marketing", "arviz", "numba"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def _silenced() -> Any:
    """No warnings, no prints (lifetimes prints the optimiser result when it fails)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    """Current resident set size (Linux /proc; NaN elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _hwm_mb() -> float:
    """Peak resident set size since the last :func:`_reset_peak` (VmHWM)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _peak_rss_mb()


def _median(v: list[float]) -> float | None:
    return statistics.median(v) if v else None


def _max_rel_diff(ours: dict[str, float], theirs: dict[str, float]) -> float:
    return float(max(abs(theirs[k] / ours[k] - 1.0) for k in ours))


def _recovery(model: Any, truth: dict[str, float]) -> dict[str, Any]:
    est = model.params_.to_dict()
    se = model.standard_errors_.to_dict()
    z = {k: (est[k] - truth[k]) / se[k] for k in truth}
    return {"params": est, "se": se, "z": z, "max_abs_z": max(abs(v) for v in z.values()),
            "converged": bool(model.converged_)}


def _grouped(data: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return data.groupby(cols, sort=True).size().rename("weights").reset_index()


def _cohort_sizes(n: int, k: int) -> list[int]:
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def simulate_bgbb_data(n: int, t_max: int, seed: int, t_min: int = 6) -> pd.DataFrame:
    """n BG/BB customers with T uniform on t_min..t_max opportunities."""
    from clvmodels.models.bgbb import simulate_bgbb

    T = np.random.default_rng(seed).integers(t_min, t_max + 1, n)
    return simulate_bgbb(n, T, **BGBB_TRUTH, random_seed=seed + 1)


def simulate_sbg_data(n: int, seed: int, cohorts: int = SBG_COHORTS,
                      truth: dict[str, float] | None = None) -> pd.DataFrame:
    """n sBG customers in ``cohorts`` successive cohorts of (nearly) equal size."""
    from clvmodels.models.sbg import simulate_sbg_cohorts

    return simulate_sbg_cohorts(_cohort_sizes(n, cohorts), **(truth or SBG_TRUTH),
                                random_seed=seed)


def hier_segment_truth(segments: int, seed: int) -> pd.DataFrame:
    """Per-segment alpha, beta drawn from :data:`HYPER_TRUTH` (logit mean churn, log
    concentration ~ normal)."""
    from scipy.special import expit

    rng = np.random.default_rng(seed)
    h = HYPER_TRUTH
    phi = expit(rng.normal(h["mu_logit_churn"], h["sigma_logit_churn"], segments))
    kappa = np.exp(rng.normal(h["mu_log_kappa"], h["sigma_log_kappa"], segments))
    return pd.DataFrame({"alpha": phi * kappa, "beta": (1.0 - phi) * kappa},
                        index=[f"s{k}" for k in range(segments)])


def simulate_hier_data(n: int, segments: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    truth = hier_segment_truth(segments, seed)
    frames, start = [], 0
    for k, (label, row) in enumerate(truth.iterrows()):
        size = _cohort_sizes(n, segments)[k]
        f = simulate_sbg_data(size, seed + 100 + k, truth=row.to_dict())
        f.index = f.index + start
        f["segment"] = label
        frames.append(f)
        start += size
    return pd.concat(frames), truth


def _ess_rhat_all(idata: Any) -> dict[str, Any]:
    """Worst bulk/tail ESS and R-hat over every element of every posterior variable."""
    import arviz as az

    post = idata.posterior
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bulk, tail, rhat = (az.ess(post, method="bulk"), az.ess(post, method="tail"),
                            az.rhat(post))

    def worst(ds: Any, lowest: bool) -> tuple[float, str]:
        found: list[tuple[float, str]] = []
        for name in ds.data_vars:
            vals = np.ravel(ds[name].to_numpy())
            vals = vals[np.isfinite(vals)]
            if vals.size:
                found.append((float(vals.min() if lowest else vals.max()), str(name)))
        if not found:
            return float("nan"), ""
        return min(found) if lowest else max(found)

    b, bn = worst(bulk, True)
    t, tn = worst(tail, True)
    r, rn = worst(rhat, False)
    return {"min_ess_bulk": b, "min_ess_bulk_var": bn, "min_ess_tail": t,
            "min_ess_tail_var": tn, "max_rhat": r, "max_rhat_var": rn,
            "variables": list(post.data_vars)}


# --------------------------------------------------------------------------------------
# tasks (each in its own process)
# --------------------------------------------------------------------------------------


def task_bgbb(n: int, t_max: int, seed: int, repeats: int) -> dict[str, Any]:
    """Ours (raw rows, grouped + weights) vs lifetimes (grouped + weights), interleaved."""
    from clvmodels.models.bgbb import BetaGeoBetaBinom, log_likelihood

    with _silenced():  # warm-up on a few customers: imports and first-call costs
        BetaGeoBetaBinom().fit(simulate_bgbb_data(200, t_max, seed + 7))
    rss_start = _rss_mb()
    _reset_peak()
    t_sim, data = _timed(lambda: simulate_bgbb_data(n, t_max, seed))
    peak_sim = _hwm_mb()
    g = _grouped(data, ["frequency", "recency", "T"])
    rss_data = _rss_mb()
    out: dict[str, Any] = {"n_customers": n, "T_range": [6, t_max], "simulate_s": t_sim,
                           "truth": BGBB_TRUTH, "rss_after_warmup_mb": rss_start,
                           "peak_rss_simulate_mb": peak_sim, "rss_with_data_mb": rss_data}
    times: dict[str, list[float]] = {"ours_raw": [], "ours_grouped": [], "lifetimes": []}
    ours = grouped = theirs = None
    lt_error = None
    for i in range(repeats):
        if i == 0:
            _reset_peak()
        with _silenced():
            t, ours = _timed(lambda: BetaGeoBetaBinom().fit(data))
        times["ours_raw"].append(t)
        if i == 0:
            out["peak_rss_fit_mb"] = _hwm_mb()  # before lifetimes is imported
        with _silenced():
            t, grouped = _timed(lambda: BetaGeoBetaBinom().fit(g, weights="weights"))
        times["ours_grouped"].append(t)
        if lt_error is None:
            with _silenced():
                import lifetimes

                t0 = time.perf_counter()
                try:
                    theirs = lifetimes.BetaGeoBetaBinomFitter().fit(
                        g["frequency"], g["recency"], g["T"], weights=g["weights"])
                    times["lifetimes"].append(time.perf_counter() - t0)
                except Exception as exc:  # lifetimes fails to converge: record, go on
                    lt_error = (f"{type(exc).__name__} after {time.perf_counter() - t0:.1f}s: "
                                f"{str(exc).strip()[:200]}")
        print(f"  round {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()
                                               if len(v) > i), file=sys.stderr, flush=True)
    assert ours is not None and grouped is not None
    out["n_unique_rows"] = int(ours.data_summary_["n_unique_rows"])
    out["compression"] = n / out["n_unique_rows"]
    out["times_s"] = times
    out["median_s"] = {k: _median(v) for k, v in times.items()}
    out["ours"] = _recovery(ours, BGBB_TRUTH)
    out["grouped_equals_raw_max_rel"] = _max_rel_diff(ours.params_.to_dict(),
                                                      grouped.params_.to_dict())
    out["lifetimes_error"] = lt_error
    if theirs is not None:
        lt_params = {k: float(v) for k, v in theirs.params_.items()}
        out["lifetimes"] = {"params": lt_params,
                            "se": {k: float(v) for k, v in theirs.standard_errors_.items()},
                            "max_rel_diff": _max_rel_diff(ours.params_.to_dict(), lt_params)}
        out["speedup_vs_lifetimes"] = {
            k: out["median_s"]["lifetimes"] / out["median_s"][k]
            for k in ("ours_raw", "ours_grouped")}
    # lifetimes' per-row log-likelihood at our estimates vs ours (its 1e-15 floor)
    import lifetimes

    p = ours.params_
    x, tx, T = (g[c].to_numpy() for c in ("frequency", "recency", "T"))
    with _silenced():
        lt_ll = np.asarray(lifetimes.BetaGeoBetaBinomFitter._loglikelihood(
            p[["alpha", "beta", "gamma", "delta"]].to_numpy(), x, tx, T))
    our_ll = log_likelihood(*p[["alpha", "beta", "gamma", "delta"]].to_numpy(), x, tx, T)
    diff = np.abs(lt_ll - our_ll)
    w = g["weights"].to_numpy()
    out["lifetimes_ll_check"] = {
        "rows_off_by_1e-6": int((diff > 1e-6).sum()),
        "customers_off_by_1e-6": int(w[diff > 1e-6].sum()),
        "max_abs_diff": float(diff.max()),
        "total_ll_ours": float(w @ our_ll), "total_ll_lifetimes": float(w @ lt_ll)}
    return out


def task_sbg(n: int, seed: int, repeats: int) -> dict[str, Any]:
    """Our sBG MLE on 24 cohorts: raw rows and grouped rows with weights."""
    from clvmodels.models.sbg import ShiftedBetaGeo

    with _silenced():  # warm-up on a few customers: imports and first-call costs
        ShiftedBetaGeo().fit(simulate_sbg_data(200, seed + 7))
    rss_start = _rss_mb()
    _reset_peak()
    t_sim, data = _timed(lambda: simulate_sbg_data(n, seed))
    peak_sim = _hwm_mb()
    g = _grouped(data, ["periods", "churned"])
    out: dict[str, Any] = {"n_customers": n, "cohorts": SBG_COHORTS, "simulate_s": t_sim,
                           "truth": SBG_TRUTH, "rss_after_warmup_mb": rss_start,
                           "peak_rss_simulate_mb": peak_sim, "rss_with_data_mb": _rss_mb()}
    times: dict[str, list[float]] = {"ours_raw": [], "ours_grouped": []}
    ours = grouped = None
    for i in range(repeats):
        if i == 0:
            _reset_peak()
        with _silenced():
            t, ours = _timed(lambda: ShiftedBetaGeo().fit(data))
        times["ours_raw"].append(t)
        if i == 0:
            out["peak_rss_fit_mb"] = _hwm_mb()
        with _silenced():
            t, grouped = _timed(lambda: ShiftedBetaGeo().fit(g, weights="weights"))
        times["ours_grouped"].append(t)
    assert ours is not None and grouped is not None
    out["n_unique_rows"] = int(ours.data_summary_["n_unique_rows"])
    out["compression"] = n / out["n_unique_rows"]
    out["times_s"] = times
    out["median_s"] = {k: _median(v) for k, v in times.items()}
    out["ours"] = _recovery(ours, SBG_TRUTH)
    out["grouped_equals_raw_max_rel"] = _max_rel_diff(ours.params_.to_dict(),
                                                      grouped.params_.to_dict())
    return out


def _single_cohort(n: int, seed: int, periods: int = 12) -> pd.DataFrame:
    from clvmodels.models.sbg import simulate_sbg

    return simulate_sbg(n, **SBG_TRUTH, n_periods=periods, random_seed=seed)


def _pmm_frame(data: pd.DataFrame, periods: int = 12) -> pd.DataFrame:
    """PyMC-Marketing's layout: recency = periods paid (= T when active), T = periods seen."""
    return pd.DataFrame({"customer_id": np.arange(len(data)),
                         "recency": data["periods"].to_numpy(), "T": periods,
                         "cohort": "c0"})


def task_sbg_pmm_map(n: int, seed: int, repeats: int) -> dict[str, Any]:
    """One cohort, 12 periods: PyMC-Marketing MAP vs our MLE, interleaved."""
    from pymc_marketing.clv import ShiftedBetaGeoModel

    from clvmodels.models.sbg import ShiftedBetaGeo

    data = _single_cohort(n, seed)
    frame = _pmm_frame(data)
    times: dict[str, list[float]] = {"ours_raw": [], "pmm_map": []}
    ours = pmm = None
    for _ in range(repeats):
        with _silenced():
            t, ours = _timed(lambda: ShiftedBetaGeo().fit(data))
        times["ours_raw"].append(t)

        def pmm_fit() -> Any:
            m = ShiftedBetaGeoModel()
            m.fit(data=frame, method="map", progressbar=False)
            return m

        with _silenced():
            t, pmm = _timed(pmm_fit)
        times["pmm_map"].append(t)
    assert ours is not None and pmm is not None
    theirs = {k: float(pmm.idata.posterior[k].to_numpy().ravel()[0]) for k in SBG_TRUTH}
    med = {k: _median(v) for k, v in times.items()}
    return {"n_customers": n, "times_s": times, "median_s": med,
            "ratio": med["pmm_map"] / med["ours_raw"], "ours": _recovery(ours, SBG_TRUTH),
            "pmm_params": theirs,
            "max_rel_diff": _max_rel_diff(ours.params_.to_dict(), theirs)}


def task_sbg_bayes(n: int, seed: int, draws: int, tune: int, who: str) -> dict[str, Any]:
    """One cohort, 12 periods, NUTS (nutpie, 2 chains): ours or PyMC-Marketing's."""
    import arviz as az

    data = _single_cohort(n, seed)
    t0 = time.perf_counter()
    if who == "ours":
        from clvmodels.models.sbg import BayesianShiftedBetaGeo

        with _silenced():
            m = BayesianShiftedBetaGeo().fit(data, chains=2, draws=draws, tune=tune,
                                             random_seed=1, log_likelihood=False)
        idata, extra = m.idata_, {"fit_timings": m.fit_timings_}
    else:
        from pymc_marketing.clv import ShiftedBetaGeoModel

        with _silenced():
            pm_model = ShiftedBetaGeoModel()
            pm_model.fit(data=_pmm_frame(data), method="mcmc", nuts_sampler="nutpie",
                         draws=draws, tune=tune, chains=2, random_seed=1, progressbar=False)
        idata, extra = pm_model.idata, {}
    wall = time.perf_counter() - t0
    s = az.summary(idata, var_names=list(SBG_TRUTH), round_to="none")
    return {"who": who, "n_customers": n, "wall_s": wall, **extra,
            "mean": {k: float(s.loc[k, "mean"]) if k in s.index
                     else float(s.filter(like=k, axis=0)["mean"].iloc[0]) for k in SBG_TRUTH},
            "min_ess_bulk": float(s["ess_bulk"].min())}


def task_hier(n: int, segments: int, seed: int, draws: int, tune: int,
              sampler_seed: int) -> dict[str, Any]:
    from clvmodels.models.sbg import BayesianShiftedBetaGeo

    t_sim, (data, truth) = _timed(lambda: simulate_hier_data(n, segments, seed))
    t0 = time.perf_counter()
    with _silenced():
        model = BayesianShiftedBetaGeo(segment_col="segment").fit(
            data, chains=2, draws=draws, tune=tune, random_seed=sampler_seed,
            log_likelihood=False)
    wall = time.perf_counter() - t0
    allv = _ess_rhat_all(model.idata_)
    params, _ = model.parameter_draws()
    labels = [str(s) for s in model.segment_labels_]
    q = (1 - COVERAGE_LEVEL) / 2
    covered, missed = 0, []
    for p in ("alpha", "beta"):
        lo, hi = np.quantile(params[p], [q, 1 - q], axis=0)
        for j, label in enumerate(labels):
            ok = bool(lo[j] <= truth.loc[label, p] <= hi[j])
            covered += ok
            if not ok:
                missed.append(f"{p}[{label}]")
    post = model.idata_.posterior
    hyper_cov = {}
    for name, value in HYPER_TRUTH.items():
        v = post[name].to_numpy().ravel()
        lo, hi = np.quantile(v, [q, 1 - q])
        hyper_cov[name] = bool(lo <= value <= hi)
    sample_s = model.fit_timings_["sample_s"]
    worst = min(allv["min_ess_bulk"], allv["min_ess_tail"])
    return {"n_customers": n, "segments": segments, "simulate_s": t_sim, "wall_s": wall,
            **model.fit_timings_, "rows": model.n_unique_rows_, "draws": draws, "tune": tune,
            "sampler_seed": sampler_seed, "diagnostics_summary_vars": model.diagnostics_,
            **allv, "worst_ess_per_s": worst / sample_s,
            "min_ess_bulk_per_s": allv["min_ess_bulk"] / sample_s,
            "divergences": int(model.diagnostics_["divergences"]),
            "segments_covered_90": covered, "segment_params": 2 * segments,
            "segments_missed": missed, "hyper_covered_90": hyper_cov,
            "n_steps": float(model.idata_.sample_stats["n_steps"].mean())
            if "n_steps" in model.idata_.sample_stats else None,
            "truth": truth.to_dict(), "peak_rss_process_mb": _peak_rss_mb()}


def _coverage_design(family: str, n: int, seed: int
                     ) -> tuple[dict[str, float], Callable[[int], pd.DataFrame]]:
    """True parameters and replication r's data set (the same for every sampler and MLE)."""
    if family == "bgbb":
        return BGBB_TRUTH, lambda rep: simulate_bgbb_data(n, 12, seed + 1000 * rep)
    return SBG_TRUTH, lambda rep: simulate_sbg_data(n, seed + 1000 * rep, cohorts=12)


def _share(k: int, total: int) -> dict[str, float]:
    p = k / total
    return {"coverage": p, "se": math.sqrt(p * (1 - p) / total), "hits": k, "n": total}


def task_coverage_mle(family: str, reps: int, n: int, seed: int) -> dict[str, Any]:
    """The same data sets, maximum likelihood: coverage of the 90% Wald intervals (log
    scale, ``conf_int(0.10)``), the reference the Bayesian coverage is read against."""
    from clvmodels.models.bgbb import BetaGeoBetaBinom
    from clvmodels.models.sbg import ShiftedBetaGeo

    model_cls = BetaGeoBetaBinom if family == "bgbb" else ShiftedBetaGeo
    truth, simulate = _coverage_design(family, n, seed)
    hits = {p: 0 for p in truth}
    for rep in range(reps):
        with _silenced():
            ci = model_cls().fit(simulate(rep)).conf_int(1 - COVERAGE_LEVEL)
        for p, v in truth.items():
            hits[p] += bool(ci.loc[p, "lower"] <= v <= ci.loc[p, "upper"])
    return {"family": family, "reps": reps, "n_customers": n, "method": "MLE Wald (log scale)",
            "per_param": {p: _share(k, reps) for p, k in hits.items()},
            "overall": _share(sum(hits.values()), reps * len(truth))}


def task_coverage(family: str, reps: int, n: int, draws: int, tune: int, seed: int,
                  sampler: str = "nutpie") -> dict[str, Any]:
    """R simulated data sets from known parameters: 90% central interval coverage."""
    if family == "bgbb":
        from clvmodels.models.bgbb import BayesianBetaGeoBetaBinom as Model
    else:
        from clvmodels.models.sbg import BayesianShiftedBetaGeo as Model
    truth, simulate = _coverage_design(family, n, seed)
    q = (1 - COVERAGE_LEVEL) / 2
    hits = {p: 0 for p in truth}
    fits, divergences, rhats, min_ess, widths = [], [], [], [], {p: [] for p in truth}
    for rep in range(reps):
        data = simulate(rep)
        with _silenced():
            t, model = _timed(lambda data=data, rep=rep: Model().fit(
                data, chains=2, draws=draws, tune=tune, random_seed=rep,
                log_likelihood=False, sampler=sampler))
        fits.append(t)
        params, _ = model.parameter_draws()
        for p, v in truth.items():
            lo, hi = np.quantile(params[p][:, 0], [q, 1 - q])
            hits[p] += bool(lo <= v <= hi)
            widths[p].append(float(hi - lo))
        d = model.diagnostics_
        divergences.append(int(d["divergences"]))
        rhats.append(float(d["max_rhat"]))
        min_ess.append(float(min(d["min_ess_bulk"], d["min_ess_tail"])))
        print(f"  {family} rep {rep + 1}/{reps}: {t:.1f}s, hits so far {hits}",
              file=sys.stderr, flush=True)

    total = sum(hits.values())
    return {"family": family, "reps": reps, "n_customers": n, "draws": draws, "tune": tune,
            "sampler": sampler,
            "truth": truth, "per_param": {p: _share(k, reps) for p, k in hits.items()},
            "overall": _share(total, reps * len(truth)),
            "median_interval_width": {p: float(np.median(v)) for p, v in widths.items()},
            "fit_s": {"median": float(np.median(fits)), "total": float(np.sum(fits))},
            "divergences_total": int(np.sum(divergences)),
            "fits_with_divergences": int(np.sum(np.array(divergences) > 0)),
            "max_rhat": float(np.nanmax(rhats)), "min_ess": float(np.min(min_ess))}


TASKS: dict[str, Callable[..., dict[str, Any]]] = {
    "bgbb": task_bgbb, "sbg": task_sbg, "sbg_pmm_map": task_sbg_pmm_map,
    "sbg_bayes": task_sbg_bayes, "hier": task_hier, "coverage": task_coverage,
    "coverage_mle": task_coverage_mle}


# --------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def run_task(name: str, timeout: float | None = None, env_path: str | None = None,
             **kwargs: Any) -> dict[str, Any]:
    """Run a task in a fresh interpreter; its JSON result with the load around it."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--task", name,
           "--kwargs", json.dumps(kwargs)]
    env = dict(os.environ)
    if env_path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env_path, env.get("PYTHONPATH"))
                                            if p)
    load_before, t0 = _load(), time.perf_counter()
    print(f"[{name}] {kwargs} (load {load_before})", flush=True)
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True,
                              check=False, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout}s", "load_before": load_before,
                "load_after": _load()}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stdout[-1500:]}",
                "load_before": load_before, "load_after": _load()}
    res = json.loads(lines[-1][len("RESULT "):])
    res.update(process_s=time.perf_counter() - t0, load_before=load_before,
               load_after=_load())
    return res


def _pmm_env(args: argparse.Namespace) -> tuple[bool, str | None]:
    """Whether PyMC-Marketing imports, and the extra path it needs."""
    code = "import pymc_marketing.clv as c; c.ShiftedBetaGeoModel"
    for extra in (None, args.pmm_path):
        if extra is not None and not Path(extra).is_dir():
            continue
        env = dict(os.environ)
        if extra:
            env["PYTHONPATH"] = extra
        ok = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            check=False).returncode == 0
        if ok:
            return True, extra
    return False, None


def environment() -> dict[str, Any]:
    import scipy

    versions = {}
    for mod in ("pymc", "nutpie", "pytensor", "arviz", "lifetimes"):
        try:
            with _silenced():
                versions[mod] = __import__(mod).__version__
        except Exception:  # an optional peer
            versions[mod] = None
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "python": platform.python_version(),
            "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else None,
            "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__,
            **versions, "load_average": _load()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", help=argparse.SUPPRESS)
    ap.add_argument("--kwargs", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--only", nargs="*", choices=["bgbb", "sbg", "hier", "coverage"],
                    default=None, help="tasks to run (default: all)")
    ap.add_argument("--size", type=int, default=1_000_000,
                    help="customers for bgbb, sbg and hier (default 1,000,000)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved MLE rounds")
    ap.add_argument("--hier-repeats", type=int, default=3)
    ap.add_argument("--reps", type=int, default=40, help="coverage replications per family")
    ap.add_argument("--coverage-size", type=int, default=2000)
    ap.add_argument("--coverage-families", nargs="*", default=["sbg", "bgbb"],
                    choices=["sbg", "bgbb"])
    ap.add_argument("--coverage-sampler", default="nutpie", choices=["nutpie", "pymc"],
                    help="sampler of the coverage fits (the same posterior either way; "
                    "PyMC's compiled C is cached between fits, nutpie compiles every fit)")
    ap.add_argument("--coverage-methods", nargs="*", default=["bayes", "mle"],
                    choices=["bayes", "mle"])
    ap.add_argument("--peer-mcmc-size", type=int, default=10_000)
    ap.add_argument("--pmm-path", default=DEFAULT_PMM_PATH,
                    help="folder with pymc-marketing installed (--target), if not in the venv")
    ap.add_argument("--seed", type=int, default=2025)
    args = ap.parse_args(argv)
    if args.task:
        _quiet_logs()
        res = TASKS[args.task](**json.loads(args.kwargs))
        print("RESULT " + json.dumps(res, default=float))
        return
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    only = set(args.only or ["bgbb", "sbg", "hier", "coverage"])
    env = environment()
    print(f"environment: {json.dumps(env)}", flush=True)
    n = args.size
    results: dict[str, dict[str, Any]] = {}
    if "bgbb" in only:
        res = {"long": run_task("bgbb", n=n, t_max=52, seed=args.seed, repeats=args.repeats),
               "short": run_task("bgbb", n=n, t_max=24, seed=args.seed,
                                 repeats=args.repeats)}
        results["bgbb"] = res
    if "sbg" in only:
        res = {"cohorts": run_task("sbg", n=n, seed=args.seed, repeats=args.repeats)}
        ok, path = _pmm_env(args)
        if ok:
            res["pmm_map"] = run_task("sbg_pmm_map", env_path=path, n=n, seed=args.seed,
                                      repeats=args.repeats)
            m = args.peer_mcmc_size
            res["bayes_ours"] = run_task("sbg_bayes", n=m, seed=args.seed, draws=500,
                                         tune=500, who="ours")
            res["bayes_pmm"] = run_task("sbg_bayes", env_path=path, n=m, seed=args.seed,
                                        draws=500, tune=500, who="pmm")
        else:
            res["pmm"] = {"skipped": "pymc-marketing is not installed (see --pmm-path)"}
        results["sbg"] = res
    if "hier" in only:
        results["hier"] = {f"run{i}": run_task("hier", timeout=1800, n=n, segments=10,
                                               seed=args.seed, draws=500, tune=500,
                                               sampler_seed=i + 1)
                           for i in range(args.hier_repeats)}
    if "coverage" in only:
        cov: dict[str, Any] = {}
        for fam in args.coverage_families:
            key = fam if args.coverage_sampler == "nutpie" else f"{fam}-{args.coverage_sampler}"
            if "bayes" in args.coverage_methods:
                cov[key] = run_task("coverage", family=fam, reps=args.reps,
                                    n=args.coverage_size, draws=300, tune=300, seed=args.seed,
                                    sampler=args.coverage_sampler)
            if "mle" in args.coverage_methods:
                cov[f"{fam}-mle"] = run_task("coverage_mle", family=fam, reps=args.reps,
                                             n=args.coverage_size, seed=args.seed)
        results["coverage"] = cov
    for key, res in results.items():
        # merged with an earlier run's file: a task run in pieces (e.g. one coverage family
        # at a time) keeps the other pieces; each piece carries its own date and arguments
        path = RESULTS_DIR / f"families_{key}.json"
        merged = json.loads(path.read_text())["results"] if path.exists() else {}
        for piece in res.values():
            piece.update(date=env["date"], args=vars(args))
        merged.update(res)
        path.write_text(json.dumps({"environment": env, "results": merged}, indent=2,
                                   default=float))
        results[key] = merged
    for key in ("bgbb", "sbg", "hier", "coverage"):
        path = RESULTS_DIR / f"families_{key}.json"
        if key not in results and path.exists():
            results[key] = json.loads(path.read_text())["results"]
    text = report(results, env)
    (RESULTS_DIR / "families_table.md").write_text(text)
    print("\n" + text)


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


def _f(v: Any, fmt: str = ".2f") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def _loads(r: dict[str, Any]) -> str:
    when = f" ({r['date'][5:16]})" if "date" in r else ""
    return f"{r.get('load_before', ['?'])[0]}→{r.get('load_after', ['?'])[0]}{when}"


def report(results: dict[str, dict[str, Any]], env: dict[str, Any]) -> str:
    lines = [
        "# Discrete-time families: benchmarks",
        "",
        f"{env['date']}; Python {env['python']}, numpy {env['numpy']}, scipy {env['scipy']}, "
        f"pandas {env['pandas']}, pymc {env['pymc']}, nutpie {env['nutpie']}, lifetimes "
        f"{env['lifetimes']}; {env['affinity']} CPUs usable; load average at the start "
        f"{env['load_average']}. The last column: 1-min load average before→after each task "
        "(and when it ran; tables merge the latest run of each task).",
        "",
        "| task | measure | value | load |",
        "|---|---|---|---|",
    ]

    def row(task: str, what: str, value: str, r: dict[str, Any]) -> None:
        lines.append(f"| {task} | {what} | {value} | {_loads(r)} |")

    for key, r in results.get("bgbb", {}).items():
        lo, hi = r.get("T_range", (6, 52 if key == "long" else 24))
        task = f"BG/BB MLE, T {lo}..{hi}"
        if "error" in r:
            row(task, "error", r["error"][:200].replace("\n", " "), r)
            continue
        ms = r["median_s"]
        row(task, "customers / unique rows (compression)",
            f"{r['n_customers']:,} / {r['n_unique_rows']:,} ({r['compression']:.0f}×)", r)
        row(task, "simulate", f"{r['simulate_s']:.2f} s", r)
        row(task, "fit, raw rows (median of times)",
            f"{ms['ours_raw']:.2f} s ({', '.join(f'{t:.2f}' for t in r['times_s']['ours_raw'])})",
            r)
        row(task, "fit, grouped + weights", f"{ms['ours_grouped']:.2f} s; params equal to "
            f"raw within {r['grouped_equals_raw_max_rel']:.1e} (rel.)", r)
        row(task, "RSS: after imports / peak simulating / with data / peak fitting",
            f"{r['rss_after_warmup_mb']:.0f} / {r['peak_rss_simulate_mb']:.0f} / "
            f"{r['rss_with_data_mb']:.0f} / {r['peak_rss_fit_mb']:.0f} MB", r)
        z = r["ours"]["z"]
        row(task, "recovery z = (est - truth)/SE",
            ", ".join(f"{k} {v:+.2f}" for k, v in z.items()), r)
        if r.get("lifetimes_error"):
            row(task, "lifetimes BetaGeoBetaBinomFitter (grouped)",
                f"fails: {r['lifetimes_error'][:120]}", r)
        if r.get("lifetimes"):
            row(task, "lifetimes (grouped + weights)",
                f"{ms['lifetimes']:.2f} s; ours raw {r['speedup_vs_lifetimes']['ours_raw']:.1f}× "
                f"faster, ours grouped {r['speedup_vs_lifetimes']['ours_grouped']:.1f}×; "
                f"params max rel. diff {r['lifetimes']['max_rel_diff']:.1e}", r)
        c = r["lifetimes_ll_check"]
        row(task, "lifetimes' log-likelihood at our estimates",
            f"{c['rows_off_by_1e-6']:,} rows ({c['customers_off_by_1e-6']:,} customers) off by "
            f"> 1e-6, max {c['max_abs_diff']:.2g}; total {c['total_ll_lifetimes']:.6g} vs "
            f"ours {c['total_ll_ours']:.6g}", r)
    s = results.get("sbg", {})
    r = s.get("cohorts")
    if r:
        task = f"sBG MLE, {r.get('cohorts', '?')} cohorts"
        if "error" in r:
            row(task, "error", r["error"][:200].replace("\n", " "), r)
        else:
            ms = r["median_s"]
            row(task, "customers / unique rows (compression)",
                f"{r['n_customers']:,} / {r['n_unique_rows']:,} ({r['compression']:,.0f}×)", r)
            row(task, "simulate", f"{r['simulate_s']:.2f} s", r)
            row(task, "fit, raw rows (median of times)",
                f"{ms['ours_raw']:.3f} s "
                f"({', '.join(f'{t:.3f}' for t in r['times_s']['ours_raw'])})", r)
            row(task, "fit, grouped + weights", f"{ms['ours_grouped']:.4f} s; params equal to "
                f"raw within {r['grouped_equals_raw_max_rel']:.1e} (rel.)", r)
            row(task, "RSS: after imports / peak simulating / with data / peak fitting",
                f"{r['rss_after_warmup_mb']:.0f} / {r['peak_rss_simulate_mb']:.0f} / "
                f"{r['rss_with_data_mb']:.0f} / {r['peak_rss_fit_mb']:.0f} MB", r)
            row(task, "recovery z", ", ".join(f"{k} {v:+.2f}" for k, v in r["ours"]["z"].items()),
                r)
    r = s.get("pmm_map")
    if r:
        task = "sBG MLE vs PyMC-Marketing MAP, 1 cohort × 12 periods"
        if "error" in r:
            row(task, "error", r["error"][:200].replace("\n", " "), r)
        else:
            row(task, f"{r['n_customers']:,} customers: ours / PMM MAP (medians)",
                f"{r['median_s']['ours_raw']:.3f} s / {r['median_s']['pmm_map']:.2f} s "
                f"({r['ratio']:.0f}×); params max rel. diff {r['max_rel_diff']:.1e}", r)
    a, b = s.get("bayes_ours"), s.get("bayes_pmm")
    if a and b:
        task = "Bayesian sBG vs PyMC-Marketing NUTS, 1 cohort × 12 periods"
        if "error" in a or "error" in b:
            row(task, "error", (a.get("error") or b.get("error"))[:200].replace("\n", " "), b)
        else:
            ft = a.get("fit_timings", {})
            row(task, f"{a['n_customers']:,} customers, 2 chains × (500 + 500), nutpie",
                f"ours {a['wall_s']:.1f} s (compile {ft.get('compile_s', float('nan')):.1f}, "
                f"sample {ft.get('sample_s', float('nan')):.2f}), min ESS "
                f"{a['min_ess_bulk']:.0f}; PMM {b['wall_s']:.1f} s, min ESS "
                f"{b['min_ess_bulk']:.0f}; ratio {b['wall_s'] / a['wall_s']:.1f}×; means "
                + ", ".join(f"{k} {a['mean'][k]:.4f}/{b['mean'][k]:.4f}" for k in SBG_TRUTH),
                b)
    if "pmm" in s:
        row("sBG peers", "PyMC-Marketing", s["pmm"]["skipped"], {})
    runs = [r for r in results.get("hier", {}).values()]
    for i, r in enumerate(runs):
        task = "hier. Bayesian sBG, 10 segments"
        if "error" in r:
            row(task, f"run {i + 1} error", r["error"][:200].replace("\n", " "), r)
            continue
        row(task, f"run {i + 1}: {r['n_customers']:,} customers, {r['rows']} rows, 2 × "
            f"({r['tune']} + {r['draws']})",
            f"wall {r['wall_s']:.1f} s (prepare {r['prepare_s']:.1f}, compile "
            f"{r.get('compile_s', float('nan')):.1f}, sample {r['sample_s']:.2f}); "
            f"worst ESS bulk {r['min_ess_bulk']:.0f} ({r['min_ess_bulk_var']}), tail "
            f"{r['min_ess_tail']:.0f} ({r['min_ess_tail_var']}); worst ESS/s "
            f"{r['worst_ess_per_s']:.0f}; divergences {r['divergences']}; max R-hat "
            f"{r['max_rhat']:.3f}; 90% intervals cover {r['segments_covered_90']}/"
            f"{r['segment_params']} segment params"
            + (f" (missed {', '.join(r['segments_missed'])})" if r["segments_missed"] else "")
            + f", {sum(r['hyper_covered_90'].values())}/4 hyperparameters", r)
    ok = [r for r in runs if "error" not in r]
    if len(ok) > 1:
        row("hier. Bayesian sBG, 10 segments", f"median of {len(ok)} runs",
            f"wall {statistics.median(r['wall_s'] for r in ok):.1f} s, sample "
            f"{statistics.median(r['sample_s'] for r in ok):.2f} s, worst ESS/s "
            f"{statistics.median(r['worst_ess_per_s'] for r in ok):.0f}", ok[-1])
    for fam, r in results.get("coverage", {}).items():
        task = f"coverage, Bayesian {'BG/BB' if fam.startswith('bgbb') else 'sBG'}"
        if "error" in r:
            row(task, "error", r["error"][:200].replace("\n", " "), r)
            continue
        pp = ", ".join(f"{k} {v['coverage']:.2f}±{v['se']:.2f}"
                       for k, v in r["per_param"].items())
        o = r["overall"]
        if r.get("method"):  # the MLE reference on the same data sets
            row(task.replace("Bayesian", "MLE"), f"the same {r['reps']} data sets, "
                f"{r['method']}", f"90% intervals: overall {o['coverage']:.3f} ± {o['se']:.3f} "
                f"({o['hits']}/{o['n']}); {pp}", r)
            continue
        row(task, f"{r['reps']} reps × {r['n_customers']:,} customers, 2 × "
            f"({r['tune']} + {r['draws']}), {r.get('sampler', 'nutpie')}",
            f"90% intervals: overall {o['coverage']:.3f} ± {o['se']:.3f} ({o['hits']}/{o['n']}); "
            f"{pp}; fit median {r['fit_s']['median']:.1f} s (total "
            f"{r['fit_s']['total'] / 60:.1f} min); divergent fits {r['fits_with_divergences']}; "
            f"max R-hat {r['max_rhat']:.3f}", r)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
