"""Benchmarks of covariate fits (issue 11): MLE with categorical and continuous covariates on
1M simulated customers, and Bayesian BG/NBD with categorical covariates beside PyMC-Marketing.

Every measurement runs in its own subprocess (clean timings); the load average (what
``uptime`` prints) is recorded before and after each, because the development machine is
shared. The driver prints one table and writes ``bench/results/covariates_<task>.json``
(git-ignored) and ``bench/results/covariates_table.md``. Usage::

    .venv/bin/python bench/bench_covariates.py                      # MLE tasks at 1M
    .venv/bin/python bench/bench_covariates.py --only cat --size 200000 --repeats 2
    .venv/bin/python bench/bench_covariates.py --only bayes --bayes-size 100000 \
        --draws 1000 --tune 1000 --pmm-size 10000          # Bayesian, ours and PyMC-Marketing

Data: customers acquired uniformly over a 52-week window, recency and T on a daily grid in
weeks (``uniform_observation_lengths(..., resolution=1/7)``, as ``bench_fit.py``), BG/NBD
truth r 0.25, alpha 4, a 0.8, b 2.5 and Pareto/NBD r 0.55, alpha 10.5, s 0.6, beta 11.7
(CDNOW-like, as ``bench_fit.py``), with covariate effects through the links' equation (1)
(clvmodels.models.links): BG/NBD alpha_i = alpha exp(-g_p'z), a_i = a exp(g_d'z),
b_i = b exp(g_d'z); Pareto/NBD alpha_i = alpha exp(-g_p'z), beta_i = beta exp(-g_d'z).

Tasks (``--only``):

* ``cat``: two categorical covariates, ``channel`` and ``region``, 5 levels each (25
  patterns, customers drawn uniformly over them), both in the purchase and the drop-out
  group (16 coefficients). Data simulated pattern by pattern with scalar parameters. Fit
  ``BetaGeo`` / ``ParetoNBD(purchase_covariates=[...], dropout_covariates=[...]).fit(data)``
  on one row per customer (our compression counts in our time), median of ``--repeats``;
  customers vs unique rows, patterns, evaluation mode, recovery z = (est - truth) / SE.
* ``cont``: three standard-normal covariates x1..x3 in both groups (12 coefficients), each
  customer simulated with their own parameters (no compression possible: the row mode).
  Fit time; a cProfile of one fit (the top functions by cumulative time, and the number of
  calls of the family's per-row log-likelihood and gradient, which shows that the gradient
  is one vectorised pass per evaluation, not a loop over customers).
* ``bayes``: ``BayesianBetaGeo`` with ``channel`` and ``region`` (purchase and drop-out) on
  ``--bayes-size`` customers, nutpie, 2 chains x (``--tune`` + ``--draws``): wall time,
  compile and sampling time, worst bulk/tail ESS and ESS per second of sampling, R-hat;
  PyMC-Marketing 0.19.2's ``BetaGeoModel`` with ``purchase_covariate_cols`` /
  ``dropout_covariate_cols`` on ``--pmm-size`` customers of the same data (indicator
  columns against the same reference levels), nutpie, the same chains and draws, and ours
  on those same customers. PyMC-Marketing gives a and b separate drop-out coefficients (ours
  share one, as CLVTools) and stores alpha, a, b per customer and draw, so its memory grows
  with customers x draws. It is looked for in the venv and then in ``--pmm-path``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import math
import os
import platform
import pstats
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
DEFAULT_PMM_PATH = os.environ.get("CLV_BENCH_PMM", "/tmp/clv-bench-pmm")
DAY = 1.0 / 7.0
TRUTH = {"bgnbd": {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5},
         "pnbd": {"r": 0.55, "alpha": 10.5, "s": 0.6, "beta": 11.7}}
#: level effects (the first level is the reference, effect 0)
CHANNELS = ["A", "B", "C", "D", "E"]
REGIONS = ["r1", "r2", "r3", "r4", "r5"]
EFFECTS = {"purchase": {"channel": [0.0, 0.3, -0.2, 0.5, -0.4],
                        "region": [0.0, 0.1, -0.1, 0.2, 0.3]},
           "dropout": {"channel": [0.0, -0.3, 0.2, 0.1, 0.4],
                       "region": [0.0, 0.2, -0.2, 0.1, -0.1]}}
CONT_EFFECTS = {"purchase": [0.3, -0.2, 0.1], "dropout": [0.2, 0.1, -0.1]}


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
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _truth_coefficients(family: str) -> dict[str, float]:
    """True coefficients named as in ``params_`` (reference levels A and r1)."""
    out = {}
    for group, cols in EFFECTS.items():
        for col, levels in (("channel", CHANNELS), ("region", REGIONS)):
            for lvl, eff in zip(levels[1:], cols[col][1:], strict=True):
                out[f"{group}:{col}[{lvl}]"] = eff
    return out


def _linked(family: str, gp: float | np.ndarray, gd: float | np.ndarray) -> dict[str, Any]:
    """Per-pattern (or per-customer) parameters of links equation (1)."""
    t = TRUTH[family]
    if family == "bgnbd":
        return {"r": t["r"], "alpha": t["alpha"] * np.exp(-gp), "a": t["a"] * np.exp(gd),
                "b": t["b"] * np.exp(gd)}
    return {"r": t["r"], "alpha": t["alpha"] * np.exp(-gp), "s": t["s"],
            "beta": t["beta"] * np.exp(-gd)}


def _simulator(family: str) -> Callable[..., pd.DataFrame]:
    from clvmodels.simulate import simulate_bgnbd, simulate_paretonbd

    return simulate_bgnbd if family == "bgnbd" else simulate_paretonbd


def simulate_categorical(family: str, n: int, seed: int) -> pd.DataFrame:
    """n customers over the 25 (channel, region) patterns, simulated pattern by pattern."""
    from clvmodels.simulate import uniform_observation_lengths

    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(25, 1 / 25))
    sim = _simulator(family)
    frames = []
    for k, m in enumerate(counts):
        i, j = divmod(k, 5)
        gp = EFFECTS["purchase"]["channel"][i] + EFFECTS["purchase"]["region"][j]
        gd = EFFECTS["dropout"]["channel"][i] + EFFECTS["dropout"]["region"][j]
        T = uniform_observation_lengths(int(m), 52.0, resolution=DAY, random_seed=seed + 2 * k)
        part = sim(int(m), **_linked(family, gp, gd), T=T, resolution=DAY,
                   random_seed=seed + 2 * k + 1)
        part["channel"] = CHANNELS[i]
        part["region"] = REGIONS[j]
        frames.append(part)
    out = pd.concat(frames, ignore_index=True)
    out.attrs = dict(frames[0].attrs)
    out["channel"] = pd.Categorical(out["channel"], categories=CHANNELS)
    out["region"] = pd.Categorical(out["region"], categories=REGIONS)
    return out


def simulate_continuous(family: str, n: int, seed: int) -> pd.DataFrame:
    """n customers with standard-normal x1..x3, each simulated with their own parameters."""
    from clvmodels.simulate import uniform_observation_lengths

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    gp = x @ np.asarray(CONT_EFFECTS["purchase"])
    gd = x @ np.asarray(CONT_EFFECTS["dropout"])
    T = uniform_observation_lengths(n, 52.0, resolution=DAY, random_seed=seed + 1)
    out = _simulator(family)(n, **_linked(family, gp, gd), T=T, resolution=DAY,
                             random_seed=seed + 2)
    for j in range(3):
        out[f"x{j + 1}"] = x[:, j]
    return out


def _model(family: str, columns: list[str]) -> Any:
    from clvmodels import BetaGeo, ParetoNBD

    cls = BetaGeo if family == "bgnbd" else ParetoNBD
    return cls(purchase_covariates=columns, dropout_covariates=columns)


def _recovery(model: Any, truth: dict[str, float]) -> dict[str, Any]:
    z = {k: (float(model.params_[k]) - v) / float(model.standard_errors_[k])
         for k, v in truth.items()}
    return {"max_abs_z": max(abs(v) for v in z.values()), "z": z}


def _profile(fn: Callable[[], Any]) -> dict[str, Any]:
    """cProfile of one call: the top functions by cumulative and by own time, and the number
    of calls of the likelihood pieces (a loop over customers would show millions)."""
    prof = cProfile.Profile()
    with _silenced():
        prof.enable()
        fn()
        prof.disable()
    stats = pstats.Stats(prof)
    total = max(v[3] for v in stats.stats.values())  # type: ignore[attr-defined]
    rows = []
    calls = {}
    for (file, line, name), (_cc, nc, tt, ct, _) in stats.stats.items():  # type: ignore
        rows.append((ct, tt, nc, f"{Path(file).name}:{line}({name})"))
        if name in ("_loglik", "_loglik_grad", "_value_and_grad", "value_and_grad",
                    "chain_gradient", "row_params", "_hessian_log", "_plain_start", "f"):
            calls[f"{Path(file).name}:{name}"] = nc
    rows.sort(reverse=True)
    return {"profile_total_s": total,
            "profile_top": [{"cum_s": c, "own_s": t, "calls": k, "where": w}
                            for c, t, k, w in rows[:22]],
            "profile_own_top": [{"own_s": t, "calls": k, "where": w}
                                for c, t, k, w in sorted(rows, key=lambda r: -r[1])[:12]],
            "calls": calls}


def _plain_fit_s(family: str, data: pd.DataFrame) -> float:
    """One fit of the model without covariates on the same frame (the baseline)."""
    from clvmodels import BetaGeo, ParetoNBD

    cls = BetaGeo if family == "bgnbd" else ParetoNBD
    with _silenced():
        t, _ = _timed(lambda: cls().fit(data))
    return t


# --------------------------------------------------------------------------------------
# tasks (each in its own process)
# --------------------------------------------------------------------------------------


def task_cat(family: str, n: int, seed: int, repeats: int, profile: bool = False
             ) -> dict[str, Any]:
    t_sim, data = _timed(lambda: simulate_categorical(family, n, seed))
    times, cpu, loads, model = [], [], [], None
    for _ in range(repeats):
        loads.append(_load()[0])
        c0 = time.process_time()  # CPU seconds of this process: less noisy under load
        with _silenced():
            t, model = _timed(lambda: _model(family, ["channel", "region"]).fit(data))
        cpu.append(time.process_time() - c0)
        times.append(t)
    assert model is not None
    truth = {**TRUTH[family], **_truth_coefficients(family)}
    s = model.data_summary_
    out = {"family": family, "n_customers": n, "simulate_s": t_sim, "times_s": times,
            "median_s": statistics.median(times), "cpu_s": cpu,
            "median_cpu_s": statistics.median(cpu), "load_1min_before_each": loads,
            "n_unique_rows": s["n_unique_rows"],
            "n_patterns": s["n_covariate_patterns"], "mode": s["covariate_evaluation"],
            "n_coefficients": len(model.coefficient_names_), "converged": model.converged_,
            "nfev": int(getattr(model._optimizer_result, "nfev", -1)),
            "plain_fit_s": _plain_fit_s(family, data), "peak_rss_mb": _rss_mb(),
            **_recovery(model, truth)}
    if profile:
        out.update(_profile(lambda: _model(family, ["channel", "region"]).fit(data)))
    return out


def task_cont(family: str, n: int, seed: int, repeats: int, profile: bool) -> dict[str, Any]:
    t_sim, data = _timed(lambda: simulate_continuous(family, n, seed))
    cols = ["x1", "x2", "x3"]
    times, cpu, model = [], [], None
    for _ in range(repeats):
        c0 = time.process_time()
        with _silenced():
            t, model = _timed(lambda: _model(family, cols).fit(data))
        cpu.append(time.process_time() - c0)
        times.append(t)
    assert model is not None
    truth = dict(TRUTH[family])
    for g, eff in CONT_EFFECTS.items():
        truth.update({f"{g}:{c}": e for c, e in zip(cols, eff, strict=True)})
    s = model.data_summary_
    out: dict[str, Any] = {
        "family": family, "n_customers": n, "simulate_s": t_sim, "times_s": times,
        "median_s": statistics.median(times), "cpu_s": cpu,
        "median_cpu_s": statistics.median(cpu), "n_unique_rows": s["n_unique_rows"],
        "n_patterns": s["n_covariate_patterns"], "mode": s["covariate_evaluation"],
        "n_coefficients": len(model.coefficient_names_), "converged": model.converged_,
        "nfev": int(getattr(model._optimizer_result, "nfev", -1)),
        "plain_fit_s": _plain_fit_s(family, data), "peak_rss_mb": _rss_mb(),
        **_recovery(model, truth)}
    if profile:
        out.update(_profile(lambda: _model(family, cols).fit(data)))
    return out


def _ess(idata: Any, names: list[str]) -> dict[str, Any]:
    import arviz as az

    post = idata.posterior[[v for v in names if v in idata.posterior]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bulk, tail, rhat = (az.ess(post, method="bulk"), az.ess(post, method="tail"),
                            az.rhat(post))

    def worst(ds: Any, fn: Callable[[np.ndarray], float]) -> float:
        vals = [fn(np.ravel(ds[v].to_numpy())) for v in ds.data_vars]
        return float(fn(np.asarray(vals)))

    return {"min_ess_bulk": worst(bulk, np.min), "min_ess_tail": worst(tail, np.min),
            "max_rhat": worst(rhat, np.max), "variables": list(post.data_vars)}


def _pmm_frame(data: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """PyMC-Marketing's layout: customer_id, frequency, recency, T and indicator columns
    against the same reference levels as ours (A, r1)."""
    frame = pd.DataFrame({"customer_id": np.arange(len(data)),
                          "frequency": data["frequency"].to_numpy(),
                          "recency": data["recency"].to_numpy(), "T": data["T"].to_numpy()})
    cols = []
    for col, levels in (("channel", CHANNELS), ("region", REGIONS)):
        for lvl in levels[1:]:
            name = f"{col}_{lvl}"
            frame[name] = (data[col].astype(str).to_numpy() == lvl).astype(float)
            cols.append(name)
    return frame, cols


def task_bayes(who: str, n: int, seed: int, draws: int, tune: int) -> dict[str, Any]:
    data = simulate_categorical("bgnbd", n, seed)
    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    if who == "ours":
        from clvmodels import BayesianBetaGeo

        with _silenced():
            m = BayesianBetaGeo(purchase_covariates=["channel", "region"],
                                dropout_covariates=["channel", "region"]).fit(
                data, chains=2, draws=draws, tune=tune, random_seed=1, log_likelihood=False)
        idata = m.idata_
        extra["fit_timings"] = getattr(m, "fit_timings_", None)
        names = list(idata.posterior.data_vars)
    else:
        from pymc_marketing.clv import BetaGeoModel

        frame, cols = _pmm_frame(data)
        with _silenced():
            pm_model = BetaGeoModel(model_config={"purchase_covariate_cols": cols,
                                                  "dropout_covariate_cols": cols})
            pm_model.fit(data=frame, method="mcmc", nuts_sampler="nutpie", draws=draws,
                         tune=tune, chains=2, random_seed=1, progressbar=False)
        idata = pm_model.idata
        # the free parameters only (alpha, a, b are per-customer deterministics there)
        names = ["r", "alpha_scale", "a_scale", "b_scale", "purchase_coefficient_alpha",
                 "dropout_coefficient_a", "dropout_coefficient_b"]
    wall = time.perf_counter() - t0
    ess = _ess(idata, names)
    sampling = None
    timings = extra.get("fit_timings") or {}
    if isinstance(timings, dict):
        sampling = timings.get("sample_s") or timings.get("sampling_s")
    if sampling is None:
        stats = getattr(idata, "sample_stats", None)
        sampling = (float(stats.attrs["sampling_time"]) if stats is not None
                    and "sampling_time" in stats.attrs else None)
    means = {v: np.asarray(idata.posterior[v].mean(("chain", "draw"))).round(4).tolist()
             for v in ess["variables"]}
    return {"who": who, "n_customers": n, "draws": draws, "tune": tune, "chains": 2,
            "wall_s": wall, "sampling_s": sampling, **extra, **ess,
            "ess_per_s_wall": ess["min_ess_bulk"] / wall,
            "ess_per_s_sampling": (ess["min_ess_bulk"] / sampling) if sampling else None,
            "posterior_means": means, "peak_rss_mb": _rss_mb()}


TASKS: dict[str, Callable[..., dict[str, Any]]] = {
    "cat": task_cat, "cont": task_cont, "bayes": task_bayes}


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
                "load_after": _load(), **kwargs}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stdout[-1500:]}",
                "load_before": load_before, "load_after": _load(), **kwargs}
    res = json.loads(lines[-1][len("RESULT "):])
    res.update(process_s=time.perf_counter() - t0, load_before=load_before,
               load_after=_load())
    print(f"    -> {json.dumps({k: v for k, v in res.items() if 'profile' not in k})[:600]}",
          flush=True)
    return res


def _pmm_path(path: str) -> str | None:
    """"" when PyMC-Marketing imports from the venv, ``path`` when from there, else None."""
    code = "import pymc_marketing.clv as c; c.BetaGeoModel"
    for extra in ("", path):
        env = dict(os.environ)
        if extra:
            if not Path(extra).is_dir():
                continue
            env["PYTHONPATH"] = extra
        if subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          check=False).returncode == 0:
            return extra
    return None


def environment() -> dict[str, Any]:
    import scipy

    versions = {}
    for mod in ("pymc", "nutpie", "pytensor"):
        try:
            with _silenced():
                versions[mod] = __import__(mod).__version__
        except Exception:  # optional
            versions[mod] = None
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "python": platform.python_version(),
            "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__,
            **versions, "load_average": _load()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", help=argparse.SUPPRESS)
    ap.add_argument("--kwargs", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--only", nargs="*", choices=["cat", "cont", "bayes"], default=None,
                    help="tasks to run (default: cat and cont)")
    ap.add_argument("--families", nargs="*", choices=["bgnbd", "pnbd"],
                    default=["pnbd", "bgnbd"])
    ap.add_argument("--size", type=int, default=1_000_000, help="customers of the MLE tasks")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--bayes-size", type=int, default=1_000_000)
    ap.add_argument("--pmm-size", type=int, default=100_000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--bayes-who", nargs="*", default=["ours", "pmm", "ours-small"],
                    choices=["ours", "pmm", "ours-small"])
    ap.add_argument("--bayes-timeout", type=float, default=3600.0)
    ap.add_argument("--pmm-path", default=DEFAULT_PMM_PATH)
    ap.add_argument("--seed", type=int, default=2025)
    args = ap.parse_args(argv)
    if args.task:
        _quiet_logs()
        res = TASKS[args.task](**json.loads(args.kwargs))
        print("RESULT " + json.dumps(res, default=float))
        return
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    only = args.only or ["cat", "cont"]
    env = environment()
    print(f"environment: {json.dumps(env)}", flush=True)
    results: dict[str, dict[str, Any]] = {}
    if "cat" in only:
        results["cat"] = {f: run_task("cat", family=f, n=args.size, seed=args.seed,
                                      repeats=args.repeats, profile=not args.no_profile)
                          for f in args.families}
    if "cont" in only:
        results["cont"] = {f: run_task("cont", family=f, n=args.size, seed=args.seed,
                                       repeats=args.repeats, profile=not args.no_profile)
                           for f in args.families}
    if "bayes" in only:
        res: dict[str, Any] = {}
        common = {"seed": args.seed, "draws": args.draws, "tune": args.tune}
        if "ours" in args.bayes_who:
            res["ours"] = run_task("bayes", timeout=args.bayes_timeout, who="ours",
                                   n=args.bayes_size, **common)
        if "pmm" in args.bayes_who:
            path = _pmm_path(args.pmm_path)
            res["pmm"] = (run_task("bayes", timeout=args.bayes_timeout, env_path=path or None,
                                   who="pmm", n=args.pmm_size, **common) if path is not None
                          else {"skipped": "pymc-marketing not importable (see --pmm-path)"})
        if "ours-small" in args.bayes_who:
            res["ours_small"] = run_task("bayes", timeout=args.bayes_timeout, who="ours",
                                         n=args.pmm_size, **common)
        results["bayes"] = res
    for key, res in results.items():
        path = RESULTS_DIR / f"covariates_{key}.json"
        merged = json.loads(path.read_text())["results"] if path.exists() else {}
        for piece in res.values():
            piece.update(date=env["date"])
        merged.update(res)
        path.write_text(json.dumps({"environment": env, "results": merged}, indent=2,
                                   default=float))
        results[key] = merged
    text = report(results)
    (RESULTS_DIR / "covariates_table.md").write_text(text)
    print("\n" + text)


def _f(v: Any, fmt: str = ".2f") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def report(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| Task | Customers | Unique rows | Patterns | Mode | Median fit (s) | Runs (s) "
             "| max abs z | Load before→after |", "|---" * 9 + "|"]
    for key in ("cat", "cont"):
        for fam, r in results.get(key, {}).items():
            if "error" in r:
                lines.append(f"| {key} {fam} | error: {r['error'][:120]} |" + " |" * 7)
                continue
            lines.append(
                f"| {key} {fam} | {r['n_customers']:,} | {r['n_unique_rows']:,} | "
                f"{r['n_patterns']:,} | {r['mode']} | {_f(r['median_s'])}"
                + (f" (CPU {_f(r['median_cpu_s'])})" if "median_cpu_s" in r else "")
                + f" | {', '.join(_f(t) for t in r['times_s'])} | {_f(r['max_abs_z'])} | "
                f"{r['load_before'][0]}→{r['load_after'][0]} |")
    for who, r in results.get("bayes", {}).items():
        if "error" in r or "skipped" in r:
            lines.append(f"| bayes {who} | {r.get('error', r.get('skipped'))[:160]} |"
                         + " |" * 7)
            continue
        lines.append(
            f"| bayes {who} | {r['n_customers']:,} | 2 x ({r['tune']}+{r['draws']}) | — | "
            f"wall {_f(r['wall_s'], '.1f')} s, sampling {_f(r['sampling_s'], '.1f')} s | "
            f"min bulk ESS {_f(r['min_ess_bulk'], '.0f')} | ESS/s (sampling) "
            f"{_f(r['ess_per_s_sampling'], '.1f')} | R-hat {_f(r['max_rhat'], '.3f')} | "
            f"{r['load_before'][0]}→{r['load_after'][0]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
