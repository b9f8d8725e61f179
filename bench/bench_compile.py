"""Compile once: Bayesian fits reusing compiled samplers (clvmodels.models.compiled).

Every item runs in its own interpreter (a "new process" is a real new process); medians
over repeats; the machine's load average is printed beside each run. Usage::

    python bench/bench_compile.py                    # everything (~16 min on 2 loaded cores)
    python bench/bench_compile.py --only session process
    python bench/bench_compile.py --pmm-path /tmp/clv-bench-pmm   # PyMC-Marketing 0.19.2

Items:

* ``session``: CDNOW (weeks), BayesianBetaGeo 2 chains x (1000 tune + 1000 draws): a first
  fit (empty cache directory), then refits in the same process on the same data and on a
  bootstrap resample (new data; session hit or miss reported).
* ``process``: the same fit in new processes after the on-disk cache is warm (fit() time,
  its components, and the whole process).
* ``series`` (not in the default set): new processes with a warm cache, each a first fit and
  3 refits — a short check to run when the machine is quiet.
* ``off``: the session and new-process fits with the cache off (CLVMODELS_COMPILE_CACHE=0).
* ``fit100k``: 100k simulated customers, 2 x (300 + 300), compile included, each in a new
  process: ours with every cache empty (ours, PyTensor's compile directory, numba's),
  interleaved with PyMC-Marketing BetaGeoModel + nutpie (same priors, same data, its own
  empty PyTensor and numba caches) — cold / PMM / cold (``--only fit100k --reps N``: N
  PyMC-Marketing runs, each between two cold runs of ours) — then ours warm.
* ``hier``: hierarchical BayesianBetaGeo (5 segments, 10k customers, 2 x (500 + 500)):
  refit in the session, and new processes with a warm cache.

Each fit reports ``fit_timings_``: prepare_s (validation, unique rows, PyMC import and model
build), compile_s, compile_cache_hit (session) / compile_disk_hit (loaded by the structure
key), sample_s and log_likelihood_s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
DEFAULT_PMM_PATH = os.environ.get("CLV_BENCH_PMM", "/tmp/clv-bench-pmm")


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    import logging

    for name in ("pymc", "pytensor", "nutpie", "pymc_marketing", "arviz"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _cdnow() -> Any:
    from clvmodels import rfm_summary
    from clvmodels.datasets import load_cdnow_transactions

    return rfm_summary(load_cdnow_transactions(), observation_end="1997-09-30", time_unit="W")


def _fit(rfm: Any, draws: int, tune: int, **kw: Any) -> dict[str, Any]:
    from clvmodels.models.bayes_bgnbd import BayesianBetaGeo

    t0 = time.perf_counter()
    model = BayesianBetaGeo(**kw).fit(rfm, draws=draws, tune=tune, chains=2, random_seed=1)
    wall = time.perf_counter() - t0
    return {"fit_s": wall, **{k: round(v, 3) for k, v in model.fit_timings_.items()},
            "rows": model.n_unique_rows_,
            "r": float(model.params_.iloc[0])}


# ---- tasks (each in its own process) ---------------------------------------------------
def task_session(reps: int) -> dict[str, Any]:
    rfm = _cdnow()
    first = _fit(rfm, 1000, 1000)
    same = [_fit(rfm, 1000, 1000) for _ in range(reps)]
    boot = rfm.sample(frac=1.0, replace=True, random_state=5).reset_index(drop=True)
    new = _fit(boot, 1000, 1000)
    return {"first": first, "refits": same, "new_data": new,
            "refit_median_s": statistics.median(r["fit_s"] for r in same)}


def task_process(hier: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    if hier:
        from bench_bayes import simulate

        rfm = simulate(10_000, segments=5)
        ready = time.perf_counter() - t0
        res = _fit(rfm, 500, 500, segment_col="segment")
    else:
        rfm = _cdnow()
        ready = time.perf_counter() - t0
        res = _fit(rfm, 1000, 1000)
    return {**res, "import_and_data_s": ready}


def task_series(reps: int) -> dict[str, Any]:
    """A new process (warm cache): one fit, then ``reps`` refits on the same data."""
    t0 = time.perf_counter()
    rfm = _cdnow()
    ready = time.perf_counter() - t0
    fits = [_fit(rfm, 1000, 1000) for _ in range(reps + 1)]
    return {"import_and_data_s": ready, "first": fits[0], "refits": fits[1:],
            "refit_median_s": statistics.median(r["fit_s"] for r in fits[1:])}


def task_hier_session(reps: int) -> dict[str, Any]:
    from bench_bayes import simulate

    rfm = simulate(10_000, segments=5)
    first = _fit(rfm, 500, 500, segment_col="segment")
    refits = [_fit(rfm, 500, 500, segment_col="segment") for _ in range(reps)]
    return {"first": first, "refits": refits,
            "refit_median_s": statistics.median(r["fit_s"] for r in refits)}


def task_fit100k_ours() -> dict[str, Any]:
    from bench_bayes import simulate

    rfm = simulate(100_000)
    from clvmodels.models.bayes_bgnbd import BayesianBetaGeo

    t0 = time.perf_counter()
    model = BayesianBetaGeo().fit(rfm, draws=300, tune=300, chains=2, random_seed=1,
                                  log_likelihood=False)
    return {"fit_s": time.perf_counter() - t0, **model.fit_timings_,
            "mean": model.params_.to_dict()}


def task_fit100k_pmm() -> dict[str, Any]:
    from bench_bayes import simulate
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import BetaGeoModel

    from clvmodels.models.bayes_bgnbd import BayesianBetaGeo

    rfm = simulate(100_000)
    data = rfm[["frequency", "recency", "T"]].reset_index()
    pri = BayesianBetaGeo().default_priors(rfm)
    config = {k: Prior(v["dist"], mu=v["mu"], sigma=v["sigma"]) for k, v in pri.items()}
    t0 = time.perf_counter()
    model = BetaGeoModel(model_config=config)
    model.fit(data=data, method="mcmc", nuts_sampler="nutpie", draws=300, tune=300,
              chains=2, random_seed=1, progressbar=False)
    post = model.idata.posterior
    return {"fit_s": time.perf_counter() - t0,
            "mean": {k: float(post[k].mean()) for k in ("r", "alpha", "a", "b")}}


TASKS = {"session": task_session, "process": task_process,
         "hier_session": task_hier_session, "series": task_series,
         "fit100k_ours": task_fit100k_ours,
         "fit100k_pmm": task_fit100k_pmm}


# ---- driver --------------------------------------------------------------------------
def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def run(name: str, env_extra: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
    env = dict(os.environ, **(env_extra or {}))
    cmd = [sys.executable, __file__, "--task", name, "--kwargs", json.dumps(kwargs)]
    load, t0 = _load(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        res: dict[str, Any] = {"error": proc.stderr[-1500:]}
    else:
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
        res = json.loads(line[len("RESULT "):])
    res.update(process_s=wall, load_before=load, load_after=_load())
    tag = {k: v for k, v in (env_extra or {}).items() if k != "CLVMODELS_CACHE_DIR"}
    print(f"[{name}{' ' + str(tag) if tag else ''}] {json.dumps(res, default=float)[:700]}",
          flush=True)
    return res


def _empty_caches(prefix: str) -> dict[str, str]:
    """Environment for a process whose every compile cache starts empty: ours
    (``CLVMODELS_CACHE_DIR``), PyTensor's compile directory (C code of the initial-point
    function, its own numba cache) and numba's ``cache=True`` functions of the installed
    packages (``NUMBA_CACHE_DIR``)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    flags = ",".join(f for f in (os.environ.get("PYTENSOR_FLAGS", ""),
                                 f"base_compiledir={root / 'pytensor'}") if f)
    return {"CLVMODELS_CACHE_DIR": str(root / "clvmodels"), "PYTENSOR_FLAGS": flags,
            "NUMBA_CACHE_DIR": str(root / "numba")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task")
    ap.add_argument("--kwargs", default="{}")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pmm-path", default=DEFAULT_PMM_PATH)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.task:
        _quiet()
        res = TASKS[args.task](**json.loads(args.kwargs))
        print("RESULT " + json.dumps(res, default=float))
        return
    only = set(args.only or ["session", "process", "off", "fit100k", "hier"])
    cache = tempfile.mkdtemp(prefix="clv-compile-cache-")
    on = {"CLVMODELS_CACHE_DIR": cache}
    off = {"CLVMODELS_COMPILE_CACHE": "0"}
    out: dict[str, Any] = {"cache_dir": cache}
    if "session" in only:
        out["session_on"] = run("session", on, reps=args.reps)
    if "process" in only:
        runs = [run("process", on) for _ in range(args.reps + 1)]  # the first warms it
        out["process_on"] = runs
        fits = [r["fit_s"] for r in runs[1:] if "fit_s" in r]
        out["process_on_median_fit_s"] = statistics.median(fits) if fits else None
        out["process_on_median_process_s"] = statistics.median(
            r["process_s"] for r in runs[1:])
    if "series" in only:  # after "session" (or with CLVMODELS_CACHE_DIR warm)
        where = on if "session" in only else {}
        out["series"] = [run("series", where, reps=3) for _ in range(args.reps)]
    if "off" in only:
        out["session_off"] = run("session", off, reps=1)
        out["process_off"] = run("process", off)
    if "fit100k" in only:
        # interleaved: ours cold / PyMC-Marketing / ours cold ... (``--reps`` PyMC-Marketing
        # runs, each between two cold runs of ours, every one with fresh empty caches),
        # then ours warm (the last cold run's caches)
        pmm_runs: list[dict[str, Any]] = []
        colds: list[dict[str, Any]] = []
        cold = _empty_caches("clv-compile-cold-")
        colds.append(run("fit100k_ours", cold))
        for _ in range(max(1, args.reps if args.only else 1)):
            pmm_env = _empty_caches("clv-compile-pmm-")
            if Path(args.pmm_path).is_dir():
                pmm_env["PYTHONPATH"] = args.pmm_path
            pmm_runs.append(run("fit100k_pmm", pmm_env))
            cold = _empty_caches("clv-compile-cold-")
            colds.append(run("fit100k_ours", cold))
        warm = [run("fit100k_ours", cold)]
        out.update(fit100k_ours_cold=colds, fit100k_pmm=pmm_runs, fit100k_ours_warm=warm)
        ratios_cold = [p["fit_s"] / statistics.median([colds[i]["fit_s"], colds[i + 1]["fit_s"]])
                       for i, p in enumerate(pmm_runs)
                       if "fit_s" in p and "fit_s" in colds[i] and "fit_s" in colds[i + 1]]
        out["fit100k_ratio_pmm_over_ours_cold"] = ratios_cold
        if pmm_runs and "fit_s" in pmm_runs[-1] and "fit_s" in warm[0]:
            out["fit100k_ratio_pmm_over_ours_warm"] = pmm_runs[-1]["fit_s"] / warm[0]["fit_s"]
        print(f"cold ratios (PyMC-Marketing / median of the two cold runs of ours beside it): "
              f"{[round(r, 1) for r in ratios_cold]}", flush=True)
    if "hier" in only:
        out["hier_session"] = run("hier_session", on, reps=2)
        out["hier_process"] = [run("process", on, hier=True) for _ in range(2)]
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
