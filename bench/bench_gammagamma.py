"""Benchmark: the Gamma-Gamma spend model at scale (issue 12, "The spend model at scale").

Side by side in one run, every measurement in its own subprocess (clean timings and memory),
in interleaved rounds (the order of the implementations rotates each round), medians
reported, the load average (``os.getloadavg``) recorded before every measurement because the
development machine is shared:

* ``mle``: maximum likelihood on ``--sizes`` simulated repeat buyers (Fader, Hardie & Lee
  2005's process with the CDNOW estimates p 6.25, q 3.74, v 15.44; frequency 1 + a geometric
  count with mean 3.3; every customer has a distinct mean spend, as real data do):
  ``clvmodels.GammaGamma().fit(frame)`` (this tree; the wall time of ``fit`` includes
  validation, compression and the data summary), the previous implementation (``--previous``,
  a git revision exported with ``git archive``; L-BFGS-B on per-row sums), and lifetimes
  0.11.3's ``GammaGammaFitter.fit(frequency, monetary_value)`` (BFGS with autograd) on sizes
  up to ``--lifetimes-max``. Reported: fit wall time, optimiser iterations and function
  evaluations, likelihood passes over the rows (ours: calls of the fused pass; previous: calls
  of the per-row gradient), estimates and their largest relative difference from the
  previous implementation's.
* ``bayes``: ``BayesianGammaGamma`` (nutpie, 2 chains) on ``--bayes-size`` repeat buyers
  beside PyMC-Marketing 0.19.2's ``GammaGammaModel`` (``nuts_sampler="nutpie"``, the same
  LogNormal priors) when it can be imported (from the venv or ``--pmm-path``, e.g. a
  ``pip install --target`` directory): wall time, worst bulk ESS, ESS per second of wall
  time, posterior means.

Usage::

    .venv/bin/python bench/bench_gammagamma.py                       # mle 341k/1M/10M + bayes
    .venv/bin/python bench/bench_gammagamma.py --only mle --sizes 341000 1000000 --repeats 5
    .venv/bin/python bench/bench_gammagamma.py --only bayes --bayes-size 1000000

Writes ``bench/results/gammagamma.json`` and ``bench/results/gammagamma_table.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TRUE = {"p": 6.25, "q": 3.74, "v": 15.44}


def simulate(n: int, seed: int = 12) -> pd.DataFrame:
    """``n`` repeat buyers: x = 1 + Geometric(0.3) - 1 repeat purchases, mean spend of x
    Gamma(p, nu) transactions with nu ~ Gamma(q, v) (plain numpy: the same data for every
    implementation and package version)."""
    rng = np.random.default_rng(seed)
    x = rng.geometric(0.3, n).astype(float)
    nu = rng.gamma(TRUE["q"], 1.0 / TRUE["v"], n)
    m = rng.gamma(TRUE["p"] * x, 1.0 / nu) / x
    return pd.DataFrame({"frequency": x, "monetary_value": m},
                        index=pd.RangeIndex(n, name="customer_id"))


# --------------------------------------------------------------------------------------
# tasks (each in its own process)
# --------------------------------------------------------------------------------------


def task_mle(impl: str, n: int) -> dict[str, Any]:
    import warnings

    warnings.simplefilter("ignore")
    rfm = simulate(n)
    if impl == "lifetimes":
        import lifetimes.fitters as lf
        from lifetimes import GammaGammaFitter

        seen: dict[str, Any] = {}
        minimize = lf.minimize

        def recording(*args: Any, **kwargs: Any) -> Any:
            seen["res"] = minimize(*args, **kwargs)
            return seen["res"]

        lf.minimize = recording
        t0 = time.perf_counter()
        fitter = GammaGammaFitter().fit(rfm["frequency"], rfm["monetary_value"])
        wall = time.perf_counter() - t0
        res = seen["res"]
        return {"fit_s": wall, "params": {k: float(v) for k, v in fitter.params_.items()},
                "nit": int(res.nit), "nfev": int(res.nfev), "passes": int(res.nfev),
                "ll": -float(fitter._negative_log_likelihood_) * n}
    from clvmodels.models import gammagamma
    from clvmodels.models.gammagamma import GammaGamma

    calls = {"n": 0}
    name = "value_grad_hess" if hasattr(gammagamma, "value_grad_hess") else None
    if name:  # this tree: count the fused passes
        fused = gammagamma.value_grad_hess

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            return fused(*args, **kwargs)

        gammagamma.value_grad_hess = counted
    else:  # the previous implementation: count the per-row gradient passes
        grad = gammagamma.log_likelihood_grad

        def counted_grad(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            return grad(*args, **kwargs)

        gammagamma.log_likelihood_grad = counted_grad
    t0 = time.perf_counter()
    model = GammaGamma().fit(rfm)
    wall = time.perf_counter() - t0
    res = model._optimizer_result
    return {"fit_s": wall, "params": {k: float(v) for k, v in model.params_.items()},
            "nit": int(res.nit), "nfev": int(res.nfev), "passes": calls["n"],
            "ll": float(model.log_likelihood_), "converged": bool(model.converged_),
            "module": gammagamma.__file__}


def task_bayes(impl: str, n: int, draws: int, tune: int) -> dict[str, Any]:
    import warnings

    import arviz as az

    warnings.simplefilter("ignore")
    from clvmodels.models.bayes_gammagamma import BayesianGammaGamma

    rfm = simulate(n)
    if impl == "pmm":
        from pymc_extras.prior import Prior
        from pymc_marketing.clv import GammaGammaModel

        pri = BayesianGammaGamma().default_priors(rfm)
        config = {k: Prior("LogNormal", mu=v["mu"], sigma=v["sigma"]) for k, v in pri.items()}
        data = pd.DataFrame({"customer_id": np.arange(n), "frequency": rfm["frequency"],
                             "monetary_value": rfm["monetary_value"]})
        t0 = time.perf_counter()
        model = GammaGammaModel(model_config=config)
        model.fit(data=data, method="mcmc", nuts_sampler="nutpie", draws=draws, tune=tune,
                  chains=2, random_seed=1, progressbar=False)
        wall = time.perf_counter() - t0
        idata = model.idata
    else:
        t0 = time.perf_counter()
        model = BayesianGammaGamma().fit(rfm, draws=draws, tune=tune, chains=2, random_seed=1,
                                         log_likelihood=False)
        wall = time.perf_counter() - t0
        idata = model.idata_
    s = az.summary(idata, var_names=["p", "q", "v"], round_to="none")
    ess = float(s["ess_bulk"].min())
    return {"wall_s": wall, "ess_bulk_min": ess, "ess_per_s": ess / wall,
            "mean": s["mean"].to_dict(), "sd": s["sd"].to_dict(),
            "r_hat_max": float(s["r_hat"].max())}


# --------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------


def _export_previous(rev: str, where: Path) -> Path:
    """The package at git revision ``rev`` (``git archive``), for the previous
    implementation's measurements."""
    target = where / f"previous_{rev}"
    if not (target / "clvmodels").exists():
        blob = subprocess.run(["git", "archive", "--format=tar", rev, "clvmodels"], cwd=ROOT,
                              check=True, capture_output=True).stdout
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=BytesIO(blob)) as tar:
            tar.extractall(target, filter="data")
    return target


def _run(args: list[str], pythonpath: str | None, timeout: float) -> dict[str, Any]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    load = os.getloadavg()[0]
    try:
        out = subprocess.run([sys.executable, __file__, "--task", *args], env=env,
                             capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "load1": load}
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed",
                "load1": load}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["load1"] = load
    return result


def _med(rows: list[dict[str, Any]], key: str) -> float:
    vals = [r[key] for r in rows if key in r]
    return statistics.median(vals) if vals else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--only", nargs="+", default=["mle", "bayes"])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[341_000, 1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lifetimes-max", type=int, default=1_000_000)
    parser.add_argument("--previous", default="aab89c9",
                        help="git revision of the previous implementation ('' to skip)")
    parser.add_argument("--bayes-size", type=int, default=1_000_000)
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--pmm-path", default="/tmp/clv-bench-pmm")
    parser.add_argument("--bayes-impls", nargs="+", default=["clvmodels", "pymc-marketing"])
    parser.add_argument("--timeout", type=float, default=1500)
    parser.add_argument("--results-dir", type=Path,
                        default=Path(os.environ.get("CLV_BENCH_RESULTS", ROOT / "bench/results")))
    args = parser.parse_args()
    if args.task:
        kind, *rest = args.task
        if kind == "mle":
            out = task_mle(rest[0], int(rest[1]))
        else:
            out = task_bayes(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))
        print(json.dumps(out))
        return

    args.results_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"),
                               "cpus": os.cpu_count(), "mle": {}, "bayes": {}}
    lines: list[str] = []
    if "mle" in args.only:
        impls = {"clvmodels": None}
        if args.previous:
            impls["previous"] = str(_export_previous(args.previous, args.results_dir))
        impls["lifetimes"] = None
        for n in args.sizes:
            names = [k for k in impls if k != "lifetimes" or n <= args.lifetimes_max]
            rows: dict[str, list[dict[str, Any]]] = {k: [] for k in names}
            for r in range(args.repeats):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    impl = "lifetimes" if name == "lifetimes" else "mle"
                    res = _run(["mle", impl, str(n)], impls[name], args.timeout)
                    rows[name].append(res)
                    print(n, name, r, {k: res.get(k) for k in ("fit_s", "nit", "passes",
                                                               "load1", "error")}, flush=True)
            results["mle"][str(n)] = rows
        lines += _mle_table(results["mle"], args)
    if "bayes" in args.only:
        n = args.bayes_size
        pmm = args.pmm_path if args.pmm_path and Path(args.pmm_path).exists() else None
        for name, path in (("clvmodels", None), ("pymc-marketing", pmm)):
            if name not in args.bayes_impls:
                continue
            if name == "pymc-marketing" and pmm is None:
                results["bayes"][name] = {"error": "PyMC-Marketing not found"}
                continue
            impl = "pmm" if name == "pymc-marketing" else "ours"
            res = _run(["bayes", impl, str(n), str(args.draws), str(args.tune)],
                       str(ROOT) + os.pathsep + path if path else None, args.timeout)
            results["bayes"][name] = res
            print(name, res, flush=True)
        lines += _bayes_table(results["bayes"], args)
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    (args.results_dir / "gammagamma.json").write_text(json.dumps(results, indent=2))
    (args.results_dir / "gammagamma_table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _mle_table(mle: dict[str, Any], args: argparse.Namespace) -> list[str]:
    out = [f"Gamma-Gamma MLE, median of {args.repeats} interleaved rounds "
           "(load1: 1-minute load average before each measurement, median)", "",
           "| customers | implementation | fit s (median) | vs lifetimes | vs previous | "
           "iterations | evaluations | row passes | max rel diff vs previous | load1 |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for n, rows in mle.items():
        ok = {k: [r for r in v if "error" not in r] for k, v in rows.items()}
        med = {k: _med(v, "fit_s") for k, v in ok.items()}
        prev = ok.get("previous", [])
        for name, runs in rows.items():
            good = ok[name]
            if not good:
                out.append(f"| {int(n):,} | {name} | {runs[0].get('error')} | | | | | | | |")
                continue
            diff = ""
            if prev:
                ref = prev[0]["params"]
                diff = "{:.1e}".format(max(abs(good[0]["params"][k] / ref[k] - 1)
                                           for k in ref))
            vs_l = (f"{med['lifetimes'] / med[name]:.1f}x" if "lifetimes" in med
                    and name != "lifetimes" else "")
            vs_p = (f"{med['previous'] / med[name]:.1f}x" if "previous" in med
                    and name == "clvmodels" else "")
            out.append(f"| {int(n):,} | {name} | {med[name]:.3f} | {vs_l} | {vs_p} | "
                       f"{good[0]['nit']} | {good[0]['nfev']} | {good[0]['passes']} | {diff} | "
                       f"{_med(runs, 'load1'):.1f} |")
    return out


def _bayes_table(bayes: dict[str, Any], args: argparse.Namespace) -> list[str]:
    out = ["", f"Bayesian Gamma-Gamma on {args.bayes_size:,} repeat buyers, nutpie, 2 chains x "
           f"({args.tune} tune + {args.draws} draws), one run each", "",
           "| implementation | wall s | worst bulk ESS | ESS/s | mean p, q, v | max R-hat | "
           "load1 |", "|---|---|---|---|---|---|---|"]
    for name, r in bayes.items():
        if "error" in r:
            out.append(f"| {name} | {r['error']} | | | | | |")
            continue
        mean = ", ".join(f"{r['mean'][k]:.3f}" for k in ("p", "q", "v"))
        out.append(f"| {name} | {r['wall_s']:.1f} | {r['ess_bulk_min']:.0f} | "
                   f"{r['ess_per_s']:.2f} | {mean} | {r['r_hat_max']:.3f} | "
                   f"{r.get('load1', float('nan')):.1f} |")
    return out


if __name__ == "__main__":
    main()
