"""Benchmarks of the Bayesian BG/NBD, Gamma-Gamma and posterior CLV, side by side with
PyMC-Marketing 0.19 (``pip install pymc-marketing==0.19.2``).

Every measurement runs in its own subprocess (clean timings and peak memory); the driver
prints one table. Usage::

    python bench/bench_bayes.py                 # everything below (tens of minutes)
    python bench/bench_bayes.py --only fit100k clv
    python bench/bench_bayes.py --quick         # small sizes, to check the script works

Items (issue "Bayesian BG/NBD and Gamma-Gamma …", section Benchmarks):

* ``cdnow``: compile and sampling times of nutpie and PyMC on CDNOW.
* ``fit100k``: 100k customers simulated from the BG/NBD (daily dates, weekly unit), 2 chains ×
  (1000 tune + 1000 draws): BayesianBetaGeo (nutpie) vs PyMC-Marketing ``BetaGeoModel``
  (``nuts_sampler="nutpie"``) with the same priors; posterior means compared in units of
  their combined Monte-Carlo standard error.
* ``fit1m``: the same fit on 1M customers.
* ``clv``: 12-month discounted CLV with 90% intervals for 100k customers × 2,000 draws
  (BayesianBetaGeo + BayesianGammaGamma), peak memory; PyMC-Marketing's
  ``customer_lifetime_value`` given the *same* posterior draws and point spend, on a subset
  of customers (its cost is linear in customers × draws × months; the full size would need
  tens of GB), extrapolated linearly and reported as such.
* ``hier``: hierarchical BG/NBD, 10 segments, 1M customers: time and ESS per second.
* ``coverage``: repeated simulations from known segment parameters (6 segments, one of 300
  customers): coverage of the 90% intervals of the segment parameters, and the holdout MAE
  of the smallest segment, hierarchical vs a separate MLE fit on that segment alone.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TRUE = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.43}
SPEND = (6.25, 3.74, 15.44)
WORK = Path(os.environ.get("CLV_BENCH_DIR", "/tmp/clvmodels-bench-bayes"))
MONTH_W = 365.25 / 12 / 7


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    import logging

    for name in ("pymc", "pytensor", "nutpie", "pymc_marketing"):
        logging.getLogger(name).setLevel(logging.ERROR)


def simulate(n: int, seed: int = 2024, segments: int = 0) -> pd.DataFrame:
    """n BG/NBD customers acquired uniformly over a year, daily resolution, in weeks."""
    from clvmodels.simulate import simulate_bgnbd, uniform_observation_lengths

    T = uniform_observation_lengths(n, 52.0, resolution=1 / 7, random_seed=seed)
    if not segments:
        return simulate_bgnbd(n, **TRUE, T=T, resolution=1 / 7, spend=SPEND,
                              random_seed=seed + 1)
    rng = np.random.default_rng(seed)
    sizes = rng.multinomial(n, np.full(segments, 1 / segments))
    starts = np.concatenate([[0], np.cumsum(sizes)])
    return simulate_segments(
        sizes, lambda s, size: {"T": T[starts[s]:starts[s] + size],
                                "random_seed": seed + 10 + s})


def simulate_segments(sizes: Any, per_segment: Any, **common: Any) -> pd.DataFrame:
    """Segments "s0", "s1", ... of BG/NBD customers with :func:`segment_params`, consecutive
    customer ids, in weeks at daily resolution; ``per_segment(s, size)`` gives each
    segment's own ``simulate_bgnbd`` arguments (T, seed)."""
    from clvmodels.simulate import simulate_bgnbd

    frames, start = [], 0
    for s, size in enumerate(sizes):
        f = simulate_bgnbd(int(size), **segment_params(s, len(sizes)), resolution=1 / 7,
                           **per_segment(s, int(size)), **common)
        f.index = f.index + start
        f["segment"] = f"s{s}"
        frames.append(f)
        start += int(size)
    out = pd.concat(frames)
    out.attrs["time_unit"] = "W"
    return out


def segment_params(s: int, k: int) -> dict[str, float]:
    """Known per-segment BG/NBD parameters spread around the CDNOW values."""
    g = np.linspace(-1, 1, k)[s]
    return {"r": 0.24 * math.exp(0.4 * g), "alpha": 4.4 * math.exp(-0.3 * g),
            "a": 0.79 * math.exp(0.3 * g), "b": 2.43 * math.exp(-0.2 * g)}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------
# tasks (each in its own process)
# --------------------------------------------------------------------------------------


def task_fit_ours(n: int, draws: int, tune: int, save: str | None) -> dict[str, Any]:
    from clvmodels.models.bayes_bgnbd import BayesianBetaGeo
    from clvmodels.models.bayes_gammagamma import BayesianGammaGamma

    rfm = simulate(n)
    t0 = time.perf_counter()
    model = BayesianBetaGeo().fit(rfm, draws=draws, tune=tune, chains=2, random_seed=1,
                                  log_likelihood=False)
    wall = time.perf_counter() - t0
    s = model.summary()
    out = {"wall_s": wall, **model.fit_timings_, "rows": model.n_unique_rows_,
           "mean": s["mean"].to_dict(), "sd": s["sd"].to_dict(),
           "mcse": s["mcse_mean"].to_dict(), "ess_bulk": s["ess_bulk"].to_dict(),
           "divergences": model.diagnostics_["divergences"],
           "n_steps": float(model.idata_.sample_stats["n_steps"].mean())
           if "n_steps" in model.idata_.sample_stats else None}
    if save:
        model.save(save)
        gg = BayesianGammaGamma().fit(rfm, draws=draws, tune=tune, chains=2, random_seed=2,
                                      log_likelihood=False)
        gg.save(save.replace(".nc", "_gg.nc"))
        out["gg_fit_s"] = gg.fit_timings_["total_s"]
    return out


def task_fit_pmm(n: int, draws: int, tune: int) -> dict[str, Any]:
    import arviz as az
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import BetaGeoModel

    from clvmodels.models.bayes_bgnbd import BayesianBetaGeo

    rfm = simulate(n)
    data = rfm[["frequency", "recency", "T"]].reset_index()
    # the same priors as BayesianBetaGeo's defaults (weeks)
    pri = BayesianBetaGeo().default_priors(rfm)
    config = {k: Prior(v["dist"], mu=v["mu"], sigma=v["sigma"]) for k, v in pri.items()}
    t0 = time.perf_counter()
    model = BetaGeoModel(model_config=config)
    model.fit(data=data, method="mcmc", nuts_sampler="nutpie", draws=draws, tune=tune,
              chains=2, random_seed=1, progressbar=False)
    wall = time.perf_counter() - t0
    s = az.summary(model.idata, var_names=["r", "alpha", "a", "b"], round_to="none")
    model.idata.posterior[["r", "alpha", "a", "b"]].to_netcdf(str(WORK / f"pmm_{n}.nc"))
    return {"wall_s": wall, "mean": s["mean"].to_dict(), "sd": s["sd"].to_dict(),
            "mcse": s["mcse_mean"].to_dict(), "ess_bulk": s["ess_bulk"].to_dict()}


def task_clv_ours(n: int, model_path: str) -> dict[str, Any]:
    from clvmodels.models.persistence import load_model
    from clvmodels.valuation import customer_lifetime_value

    rfm = simulate(n)
    bg = load_model(model_path)
    gg = load_model(model_path.replace(".nc", "_gg.nc"))
    base_rss = _peak_rss_mb()
    tracemalloc.start()
    t0 = time.perf_counter()
    out = customer_lifetime_value(bg, gg, rfm, horizon=12 * MONTH_W, discount_rate=0.10,
                                  period="M")
    wall = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"wall_s": wall, "draws": bg.n_draws, "customers": n,
            "peak_rss_mb": _peak_rss_mb(), "rss_before_mb": base_rss,
            "tracemalloc_peak_mb": peak / 2**20, "total_clv": out.attrs["total_clv"],
            "total_clv_interval": [out.attrs["total_clv_lower"], out.attrs["total_clv_upper"]],
            "sum_clv_first": float(out["clv"].iloc[:n].sum())}


def task_clv_pmm(n: int, model_path: str) -> dict[str, Any]:
    import arviz as az
    from pymc_marketing.clv import BetaGeoModel
    from pymc_marketing.clv.utils import customer_lifetime_value as pmm_clv

    from clvmodels.models.persistence import load_model

    rfm = simulate(n)
    bg = load_model(model_path)
    gg = load_model(model_path.replace(".nc", "_gg.nc"))
    data = rfm[["frequency", "recency", "T"]].reset_index()
    data["future_spend"] = gg.expected_spend(rfm).to_numpy()
    model = BetaGeoModel()
    model.build_model(data=data)
    model.idata = az.InferenceData(posterior=bg.idata_.posterior[["r", "alpha", "a", "b"]])
    monthly = 1.10 ** (1 / 12) - 1
    base_rss = _peak_rss_mb()
    t0 = time.perf_counter()
    out = pmm_clv(model, data, future_t=12, discount_rate=monthly, time_unit="W")
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "draws": bg.n_draws, "customers": n,
            "peak_rss_mb": _peak_rss_mb(), "rss_before_mb": base_rss,
            "total_clv": float(out.mean(("chain", "draw")).sum())}


def task_hier(n: int, segments: int, draws: int, tune: int,
              parametrization: str = "auto") -> dict[str, Any]:
    from clvmodels.models.bayes_bgnbd import BayesianBetaGeo

    rfm = simulate(n, segments=segments)
    t0 = time.perf_counter()
    model = BayesianBetaGeo(segment_col="segment", parametrization=parametrization).fit(
        rfm, draws=draws, tune=tune, chains=2, random_seed=1, log_likelihood=False)
    wall = time.perf_counter() - t0
    s = model.summary()
    ess = float(s["ess_bulk"].min())
    truth = pd.DataFrame([segment_params(i, segments) for i in range(segments)],
                         index=[f"s{i}" for i in range(segments)])
    sp = model.segment_params_
    cover = float(np.mean([(sp[f"{p}_lower"] <= truth[p]) & (truth[p] <= sp[f"{p}_upper"])
                           for p in truth.columns]))
    return {"wall_s": wall, **model.fit_timings_, "rows": model.n_unique_rows_,
            "min_ess_bulk": ess, "median_ess_bulk": float(s["ess_bulk"].median()),
            "ess_per_s_min": ess / model.fit_timings_["sample_s"],
            "divergences": model.diagnostics_["divergences"],
            "max_rhat": model.diagnostics_["max_rhat"], "coverage_90": cover,
            "n_steps": float(model.idata_.sample_stats["n_steps"].mean()),
            "draws": draws, "tune": tune, "parametrization": parametrization}


def task_coverage(reps: int, draws: int, tune: int, seed: int) -> dict[str, Any]:
    """Repeated simulations: 90% interval coverage and small-segment holdout MAE."""
    from clvmodels.models.bayes_bgnbd import BayesianBetaGeo
    from clvmodels.models.bgnbd import BetaGeo
    from clvmodels.simulate import uniform_observation_lengths

    sizes = [300, 1500, 2500, 3500, 4500, 6000]
    k = len(sizes)
    hits, total, mae_h, mae_m, fits, divergences = 0, 0, [], [], [], []
    per_param = {p: 0 for p in TRUE}
    for rep in range(reps):
        base = seed + 100 * rep
        rfm = simulate_segments(
            sizes, lambda s, size, base=base: {
                "T": uniform_observation_lengths(size, 52.0, resolution=1 / 7,
                                                 random_seed=base + s),
                "random_seed": base + 50 + s},
            holdout=52.0)
        t0 = time.perf_counter()
        model = BayesianBetaGeo(segment_col="segment").fit(
            rfm, draws=draws, tune=tune, chains=2, random_seed=rep, log_likelihood=False)
        fits.append(time.perf_counter() - t0)
        divergences.append(int(model.diagnostics_["divergences"]))
        sp = model.segment_params_
        for s in range(k):
            for p, v in segment_params(s, k).items():
                ok = sp.loc[f"s{s}", f"{p}_lower"] <= v <= sp.loc[f"s{s}", f"{p}_upper"]
                hits += ok
                per_param[p] += ok
                total += 1
        small = rfm[rfm["segment"] == "s0"]
        actual = small["frequency_holdout"].to_numpy()
        pred_h = model.expected_purchases(small, 52.0).to_numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mle = BetaGeo().fit(small)
        pred_m = mle.expected_purchases(small, 52.0).to_numpy()
        mae_h.append(float(np.mean(np.abs(pred_h - actual))))
        mae_m.append(float(np.mean(np.abs(pred_m - actual))))
    n_per_param = reps * k
    return {"reps": reps, "coverage_90": hits / total, "n_intervals": total,
            "coverage_per_param": {p: v / n_per_param for p, v in per_param.items()},
            "mae_small_hier": float(np.mean(mae_h)), "mae_small_mle": float(np.mean(mae_m)),
            "hier_better_share": float(np.mean(np.array(mae_h) < np.array(mae_m))),
            "fit_s_mean": float(np.mean(fits)), "divergences": divergences}


def task_cdnow(sampler: str, draws: int, tune: int) -> dict[str, Any]:
    """CDNOW (2,357 customers): compile and sampling time of one sampler."""
    from clvmodels import rfm_summary
    from clvmodels.datasets import load_cdnow_transactions
    from clvmodels.models.bayes_bgnbd import BayesianBetaGeo

    rfm = rfm_summary(load_cdnow_transactions(), observation_end="1997-09-30", time_unit="W")
    model = BayesianBetaGeo().fit(rfm, draws=draws, tune=tune, chains=2, random_seed=1,
                                  sampler=sampler)
    s = model.summary()
    return {**model.fit_timings_, "min_ess_bulk": float(s["ess_bulk"].min()),
            "mean": s["mean"].to_dict()}


TASKS = {"cdnow": task_cdnow, "fit_ours": task_fit_ours, "fit_pmm": task_fit_pmm,
         "clv_ours": task_clv_ours, "clv_pmm": task_clv_pmm, "hier": task_hier,
         "coverage": task_coverage}


def run_task(name: str, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run a task in a fresh interpreter and return its JSON result."""
    cmd = [sys.executable, __file__, "--task", name, "--kwargs", json.dumps(kwargs)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout}s", "process_s": timeout}
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:], "process_s": time.perf_counter() - t0}
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    res = json.loads(line[len("RESULT "):])
    res["process_s"] = time.perf_counter() - t0
    print(f"  {name} {kwargs}: {json.dumps(res)[:400]}", flush=True)
    return res


def _mc_z(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    return {p: abs(a["mean"][p] - b["mean"][p]) / math.hypot(a["mcse"][p], b["mcse"][p])
            for p in TRUE}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task")
    ap.add_argument("--kwargs", default="{}")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--clv-pmm-n", type=int, default=10_000)
    ap.add_argument("--hier-parametrizations", nargs="*",
                    default=["auto", "centered", "non_centered"])
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    if args.task:
        _quiet()
        res = TASKS[args.task](**json.loads(args.kwargs))
        print("RESULT " + json.dumps(res, default=float))
        return
    WORK.mkdir(parents=True, exist_ok=True)
    q = args.quick
    n100k, n1m = (5_000, 20_000) if q else (100_000, 1_000_000)
    dr = 200 if q else 1000
    only = set(args.only or ["cdnow", "fit100k", "fit1m", "clv", "hier", "coverage"])
    res: dict[str, Any] = {}
    model_path = str(WORK / f"bg_{n100k}.nc")
    if "cdnow" in only:
        print("CDNOW samplers", flush=True)
        for sampler in ("nutpie", "pymc"):
            res[f"cdnow_{sampler}"] = run_task("cdnow", sampler=sampler, draws=dr, tune=dr)
    if "fit100k" in only or "clv" in only:
        print("fit 100k", flush=True)
        res["fit_ours_100k"] = run_task("fit_ours", n=n100k, draws=dr, tune=dr,
                                        save=model_path)
    if "fit100k" in only:
        res["fit_pmm_100k"] = run_task("fit_pmm", n=n100k, draws=dr, tune=dr)
    if "fit1m" in only:
        print("fit 1M", flush=True)
        res["fit_ours_1m"] = run_task("fit_ours", n=n1m, draws=dr, tune=dr, save=None)
    if "clv" in only:
        print("CLV", flush=True)
        res["clv_ours_full"] = run_task("clv_ours", n=n100k, model_path=model_path)
        sub = min(args.clv_pmm_n, n100k)
        res["clv_ours_sub"] = (res["clv_ours_full"] if sub == n100k else
                               run_task("clv_ours", n=sub, model_path=model_path))
        res["clv_pmm_sub"] = run_task("clv_pmm", n=sub, model_path=model_path)
    if "hier" in only:
        print("hierarchical", flush=True)
        # ESS per second is a rate: fewer draws keep the runs within their time limits.
        # With ~100k customers per segment every segment's parameters are pinned by the data,
        # the regime where the centred form samples well and the non-centred one poorly.
        for key, par, limit in (("hier_1m", "auto", 1200), ("hier_1m_c", "centered", 1200),
                                ("hier_1m_nc", "non_centered", 600)):
            if par not in args.hier_parametrizations:
                continue
            res[key] = run_task("hier", timeout=limit, n=n1m, segments=10, draws=dr // 2,
                                tune=dr // 2, parametrization=par)
    if "coverage" in only:
        print("coverage", flush=True)
        res["coverage"] = run_task("coverage", reps=2 if q else args.reps, draws=dr // 2,
                                   tune=dr // 2, seed=7)
    report(res)
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2, default=float))


def report(res: dict[str, Any]) -> None:
    """Print the closing tables."""
    print("\n=== results ===")
    for sampler in ("nutpie", "pymc"):
        r = res.get(f"cdnow_{sampler}")
        if r and "error" not in r:
            print(f"CDNOW, {sampler}: compile {r.get('compile_s', float('nan')):.1f}s, sample "
                  f"{r['sample_s']:.1f}s (pymc: compile included), total {r['total_s']:.1f}s, "
                  f"min ESS {r['min_ess_bulk']:.0f}")
    a, b = res.get("fit_ours_100k"), res.get("fit_pmm_100k")
    if a and b and "error" not in a and "error" not in b:
        print("fit, 100k customers, 2 chains x (1000 tune + 1000 draws)")
        print(f"  clvmodels  wall {a['wall_s']:.1f}s (prepare {a['prepare_s']:.1f}, compile "
              f"{a.get('compile_s', float('nan')):.1f}, sample {a['sample_s']:.1f}), "
              f"{a['rows']} unique rows, {a['n_steps']:.1f} leapfrog steps/draw")
        print(f"  PyMC-Mkt   wall {b['wall_s']:.1f}s   speed-up x{b['wall_s'] / a['wall_s']:.1f}"
              f" (sampling only, excluding our compile: "
              f"x{b['wall_s'] / max(a['sample_s'], 1e-9):.1f})")
        z = _mc_z(a, b)
        for p in TRUE:
            print(f"    {p:6s} ours {a['mean'][p]:.5f} ± {a['mcse'][p]:.5f}   PMM "
                  f"{b['mean'][p]:.5f} ± {b['mcse'][p]:.5f}   |diff|/MCSE {z[p]:.2f}   "
                  f"ESS ours {a['ess_bulk'][p]:.0f} PMM {b['ess_bulk'][p]:.0f}")
    m = res.get("fit_ours_1m")
    if m and "error" not in m:
        print(f"fit, 1M customers: wall {m['wall_s']:.1f}s (prepare {m['prepare_s']:.1f}, "
              f"compile {m['compile_s']:.1f}, sample {m['sample_s']:.1f}), {m['rows']} rows, "
              f"min ESS {min(m['ess_bulk'].values()):.0f}")
    c, cs, cp = res.get("clv_ours_full"), res.get("clv_ours_sub"), res.get("clv_pmm_sub")
    if c and "error" not in c:
        print(f"CLV 12 months, {c['customers']} customers x {c['draws']} draws: "
              f"{c['wall_s']:.1f}s, peak RSS {c['peak_rss_mb']:.0f} MB (before "
              f"{c['rss_before_mb']:.0f} MB), tracemalloc peak {c['tracemalloc_peak_mb']:.0f} "
              f"MB; total {c['total_clv']:.0f} [{c['total_clv_interval'][0]:.0f}, "
              f"{c['total_clv_interval'][1]:.0f}]")
    if cs and cp and "error" not in cs and "error" not in cp:
        ratio = cp["wall_s"] / cs["wall_s"]
        print(f"  subset {cs['customers']} customers: ours {cs['wall_s']:.2f}s, PMM "
              f"{cp['wall_s']:.1f}s (peak RSS {cp['peak_rss_mb']:.0f} MB) -> x{ratio:.1f}")
        if c and "error" not in c and c["customers"] != cp["customers"]:
            extrap = cp["wall_s"] * c["customers"] / cp["customers"]
            print(f"  PMM extrapolated to {c['customers']}: {extrap:.0f}s -> "
                  f"x{extrap / c['wall_s']:.1f} vs ours on the full set")
    for h in (res.get("hier_1m"), res.get("hier_1m_c"), res.get("hier_1m_nc")):
        if not h or "error" in h:
            continue
        print(f"hierarchical, 10 segments, 1M, 2 chains x ({h['tune']} tune + {h['draws']} "
              f"draws), {h['parametrization']}, {h['n_steps']:.0f} leapfrog steps/draw: "
              f"wall {h['wall_s']:.1f}s (compile "
              f"{h['compile_s']:.1f}, sample {h['sample_s']:.1f}), {h['rows']} rows, min ESS "
              f"{h['min_ess_bulk']:.0f} ({h['ess_per_s_min']:.1f}/s of sampling), "
              f"divergences {h['divergences']}, max R-hat {h['max_rhat']:.3f}, "
              f"90% coverage of the 40 segment parameters {h['coverage_90']:.2f}")
    cv = res.get("coverage")
    if cv and "error" not in cv:
        print(f"coverage over {cv['reps']} simulations: {cv['coverage_90']:.3f} of "
              f"{cv['n_intervals']} 90% intervals ({cv['coverage_per_param']}); smallest "
              f"segment (300) holdout MAE hierarchical {cv['mae_small_hier']:.4f} vs MLE "
              f"{cv['mae_small_mle']:.4f} (hier better in {cv['hier_better_share']:.0%}); "
              f"divergences per fit {cv.get('divergences')}")
    for k, v in res.items():
        if "error" in v:
            print(f"{k} FAILED:\n{v['error']}")


if __name__ == "__main__":
    main()
