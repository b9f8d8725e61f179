"""Benchmark: maximum-likelihood fits of clvmodels vs lifetimes 0.11.3, side by side.

Usage (defaults: BG/NBD on 1 million customers, Pareto/NBD on 100k, 5 repeats)::

    .venv/bin/python bench/bench_fit.py
    .venv/bin/python bench/bench_fit.py --customers 200000 --repeats 3 --profile

Data are drawn with :mod:`clvmodels.simulate` from CDNOW-like parameters (BG/NBD r=0.25,
alpha=4, a=0.8, b=2.5; Pareto/NBD r=0.55, alpha=10.5, s=0.6, beta=11.7), customers acquired
uniformly over a year, recency and T at daily resolution expressed in weeks (as an RFM
summary of dated transactions gives them). Methods, each timed from the RFM columns in
memory:

* ``clvmodels``: ``BetaGeo().fit(rfm)`` on the raw frame — our compression of identical rows
  counts in our time;
* ``lifetimes-grouped``: ``BetaGeoFitter().fit(x, t_x, T, weights=w)`` on the unique rows
  (the grouping itself is timed separately and not counted);
* ``lifetimes-raw``: ``BetaGeoFitter().fit(x, t_x, T)`` on one row per customer. When a
  pilot run says the full data would take longer than ``--lifetimes-budget-s``, it runs on a
  subsample of whole customers and its time is scaled per customer (the table says so);
* the same three for the Pareto/NBD (``ParetoNBD`` vs ``ParetoNBDFitter``) on
  ``--pareto-customers`` customers, when ``clvmodels.models.paretonbd`` exists.

Repeats are interleaved (one of each method per round) and medians reported, because shared
machines are noisy. Parameters of every lifetimes fit are compared with ours (max relative
difference). ``--profile`` adds a cProfile of one of our BG/NBD fits.

Results go to ``bench/results/bench_fit.json`` and ``bench/results/bench_fit.md``
(git-ignored), and the markdown table is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import importlib
import io
import json
import os
import platform
import pstats
import statistics
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

from clvmodels import compress_rfm  # noqa: E402
from clvmodels.simulate import (  # noqa: E402
    simulate_bgnbd,
    simulate_paretonbd,
    uniform_observation_lengths,
)

RESULTS_DIR = HERE / "results"
DAY = 1.0 / 7.0
BG_TRUTH = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
PNBD_TRUTH = {"r": 0.55, "alpha": 10.5, "s": 0.6, "beta": 11.7}
GOALS = {  # speed-up of clvmodels over lifetimes that the project aims for
    ("bgnbd", "lifetimes-raw"): 30.0,
    ("bgnbd", "lifetimes-grouped"): 2.0,
    ("paretonbd", "lifetimes-raw"): 20.0,
}


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _quiet() -> contextlib.ExitStack:
    """Silence warnings and lifetimes' prints (it prints the optimiser result on failure)."""
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    return stack


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def _lifetimes() -> Any:
    with _quiet():
        import lifetimes

    return lifetimes


def _simulate(model: str, n: int, seed: int) -> pd.DataFrame:
    T = uniform_observation_lengths(n, 52.0, resolution=DAY, random_seed=seed)
    if model == "bgnbd":
        return simulate_bgnbd(n, **BG_TRUTH, T=T, resolution=DAY, random_seed=seed + 1)
    return simulate_paretonbd(n, **PNBD_TRUTH, T=T, resolution=DAY, random_seed=seed + 1)


def _max_rel_diff(ours: pd.Series, theirs: pd.Series) -> float:
    names = list(ours.index)
    a = ours[names].to_numpy(float)
    b = pd.Series(theirs)[names].to_numpy(float)
    return float(np.max(np.abs(b / a - 1.0)))


class Method:
    """One timed method: a zero-argument callable returning a fitted object."""

    def __init__(self, name: str, fn: Callable[[], Any], n_customers: int, n_rows: int,
                 scale: float = 1.0, note: str = "") -> None:
        self.name, self.fn = name, fn
        self.n_customers, self.n_rows = n_customers, n_rows
        self.scale = scale  # multiply measured time by this to get full-data time
        self.note = note
        self.times: list[float] = []
        self.fitted: Any = None
        self.error: str | None = None

    def run_once(self) -> None:
        if self.error is not None:
            return
        try:
            with _quiet():
                elapsed, self.fitted = _timed(self.fn)
        except Exception as exc:  # lifetimes may fail to converge: record, carry on
            self.error = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
            return
        self.times.append(elapsed)

    def record(self) -> dict[str, Any]:
        med = statistics.median(self.times) if self.times else None
        return {
            "method": self.name,
            "n_customers": self.n_customers,
            "n_rows": self.n_rows,
            "times_s": self.times,
            "median_s": med,
            "min_s": min(self.times) if self.times else None,
            "scale_to_full": self.scale,
            "median_full_s": med * self.scale if med is not None else None,
            "note": self.note,
            "error": self.error,
        }


# --------------------------------------------------------------------------------------
# one model's comparison
# --------------------------------------------------------------------------------------


def compare(model: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Time ours vs lifetimes (grouped, raw) for ``model`` on ``n`` simulated customers."""
    lt = _lifetimes()
    if model == "bgnbd":
        from clvmodels.models.bgnbd import BetaGeo as Ours

        Theirs = lt.BetaGeoFitter
    else:
        Ours = importlib.import_module("clvmodels.models.paretonbd").ParetoNBD
        Theirs = lt.ParetoNBDFitter
    t_sim, rfm = _timed(lambda: _simulate(model, n, args.seed))
    t_group, c = _timed(lambda: compress_rfm(rfm))
    print(f"[{model}] simulated {n:,} customers in {t_sim:.2f}s; "
          f"{c.n_rows:,} unique rows (compress_rfm {t_group:.2f}s)", flush=True)
    x, tx, T = (rfm[col].to_numpy(float) for col in ("frequency", "recency", "T"))

    ours = Method("clvmodels", lambda: Ours().fit(rfm), n, c.n_rows)
    grouped = Method("lifetimes-grouped",
                     lambda: Theirs().fit(c.frequency, c.recency, c.T, weights=c.weights),
                     n, c.n_rows, note="grouping not counted")

    # lifetimes on raw rows: pilot on a slice to decide the size it can afford
    pilot_n = min(n, args.pilot_customers)
    pilot = Method("pilot", lambda: Theirs().fit(x[:pilot_n], tx[:pilot_n], T[:pilot_n]),
                   pilot_n, pilot_n)
    pilot.run_once()
    if pilot.error:
        raw = Method("lifetimes-raw", lambda: None, n, n)
        raw.error = f"pilot on {pilot_n:,} customers failed: {pilot.error}"
        estimate = None
    else:
        estimate = pilot.times[0] * n / pilot_n
        raw_n = n
        if estimate > args.lifetimes_budget_s:
            raw_n = max(pilot_n, int(n * args.lifetimes_budget_s / estimate) // 1000 * 1000)
        raw_n = min(raw_n, n)
        note = "" if raw_n == n else f"run on the first {raw_n:,} customers, scaled per customer"
        raw = Method("lifetimes-raw", lambda: Theirs().fit(x[:raw_n], tx[:raw_n], T[:raw_n]),
                     n, raw_n, scale=n / raw_n, note=note)
    print(f"[{model}] lifetimes pilot on {pilot_n:,} raw rows: "
          f"{pilot.times[0] if pilot.times else float('nan'):.2f}s "
          f"(full-size estimate {estimate if estimate else float('nan'):.1f}s)", flush=True)

    raw_repeats = args.repeats
    if estimate is not None:
        per_run = estimate / raw.scale
        raw_repeats = max(1, min(args.repeats, int(args.lifetimes_budget_s // max(per_run, 1e-9))))
    methods = [ours, grouped, raw]
    for i in range(args.repeats):
        for m in methods:
            if m is raw and i >= raw_repeats:
                continue
            m.run_once()
        print(f"[{model}] round {i + 1}/{args.repeats}: "
              + ", ".join(f"{m.name} {m.times[-1]:.2f}s" if m.times else f"{m.name} -"
                          for m in methods), flush=True)

    out: dict[str, Any] = {
        "model": model,
        "n_customers": n,
        "n_unique_rows": c.n_rows,
        "simulate_s": t_sim,
        "compress_rfm_s": t_group,
        "methods": [m.record() for m in methods],
        "pilot": pilot.record(),
    }
    if ours.fitted is not None:
        fitted = ours.fitted
        out["clvmodels_params"] = fitted.params_.to_dict()
        out["clvmodels_se"] = fitted.standard_errors_.to_dict()
        out["clvmodels_converged"] = bool(fitted.converged_)
        res = getattr(fitted, "_optimizer_result", None)
        if res is not None:
            out["clvmodels_optimizer"] = {"nfev": int(getattr(res, "nfev", -1)),
                                          "nit": int(getattr(res, "nit", -1)),
                                          "message": str(getattr(res, "message", ""))}
        agreement = {}
        for m in (grouped, raw):
            if m.fitted is not None:
                theirs = m.fitted.params_
                agreement[m.name] = {
                    "params": {k: float(v) for k, v in theirs.items()},
                    "max_rel_diff": _max_rel_diff(fitted.params_, theirs),
                    "on_customers": m.n_rows if m is raw else n,
                }
        out["agreement"] = agreement
        ours_med = statistics.median(ours.times)
        out["speedup"] = {
            m.name: (m.record()["median_full_s"] / ours_med) if m.times else None
            for m in (grouped, raw)
        }
    return out


def profile_ours(n: int, args: argparse.Namespace) -> str:
    """cProfile one of our BG/NBD fits; the top functions by cumulative and own time."""
    from clvmodels.models.bgnbd import BetaGeo

    rfm = _simulate("bgnbd", n, args.seed)
    prof = cProfile.Profile()
    with _quiet():
        prof.enable()
        BetaGeo().fit(rfm)
        prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(15)
    return buf.getvalue()


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    import scipy

    lt = _lifetimes()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "lifetimes": lt.__version__,
        "blas_threads": _blas_threads(),
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg")
        else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _blas_threads() -> str:
    """Threads of each BLAS/OpenMP pool loaded (threadpoolctl), e.g. "openblas 2, openblas 2"."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    return ", ".join(f"{i['internal_api']} {i['num_threads']}" for i in threadpool_info())


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        "# Fit benchmark: clvmodels vs lifetimes",
        "",
        f"{env['date']}; Python {env['python']}, numpy {env['numpy']}, scipy {env['scipy']}, "
        f"pandas {env['pandas']}, lifetimes {env['lifetimes']}; {env['affinity']} CPUs usable; "
        f"BLAS threads {env['blas_threads']}; load average before the run "
        f"{env['load_average']}. Median of up to {report['args']['repeats']} interleaved "
        "repeats.",
        "",
        "| model | method | customers | rows fitted | median s | times s | speed-up of ours "
        "| goal | params max rel. diff | note |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for res in report["results"]:
        if "skipped" in res:
            lines.append(f"| {res['model']} | — | — | — | — | — | — | — | — | "
                         f"skipped: {res['skipped']} |")
            continue
        for m in res["methods"]:
            speed = res.get("speedup", {}).get(m["method"])
            goal = GOALS.get((res["model"], m["method"]))
            agree = res.get("agreement", {}).get(m["method"], {}).get("max_rel_diff")
            med = m["median_full_s"]
            note = m["note"] or ""
            if m["error"]:
                note = (note + "; " if note else "") + f"error: {m['error']}"
            times = ", ".join(f"{t:.2f}" for t in m["times_s"])
            lines.append(
                f"| {res['model']} | {m['method']} | {m['n_customers']:,} | {m['n_rows']:,} | "
                f"{'' if med is None else f'{med:.3f}'} | {times} | "
                f"{'' if speed is None else f'{speed:.1f}×'} | "
                f"{'' if goal is None else f'≥{goal:g}×'} | "
                f"{'' if agree is None else f'{agree:.1e}'} | {note} |"
            )
    lines.append("")
    for res in report["results"]:
        if "clvmodels_params" in res:
            ps = ", ".join(f"{k}={v:.5g} (se {res['clvmodels_se'][k]:.2g})"
                           for k, v in res["clvmodels_params"].items())
            lines.append(f"- {res['model']}: {res['n_customers']:,} customers, "
                         f"{res['n_unique_rows']:,} unique rows (compress_rfm alone "
                         f"{res['compress_rfm_s']:.2f}s); our estimates {ps}; optimiser "
                         f"{res.get('clvmodels_optimizer')}")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=1_000_000, help="BG/NBD customers")
    p.add_argument("--pareto-customers", type=int, default=100_000,
                   help="Pareto/NBD customers (0 skips the Pareto/NBD)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--pilot-customers", type=int, default=100_000,
                   help="customers in the lifetimes raw-rows pilot run")
    p.add_argument("--lifetimes-budget-s", type=float, default=600.0,
                   help="longest one lifetimes raw-rows fit may take (else: subsample)")
    p.add_argument("--blas-threads", type=int, default=None,
                   help="limit BLAS/OpenMP threads (threadpoolctl) for the whole run, both "
                        "libraries alike; default: leave the libraries' defaults")
    p.add_argument("--profile", action="store_true", help="cProfile one of our BG/NBD fits")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # load every BLAS the run will use first: threadpoolctl limits only loaded libraries
    importlib.import_module("scipy.optimize")
    importlib.import_module("clvmodels.models.bgnbd")
    _lifetimes()
    with contextlib.ExitStack() as stack:
        if args.blas_threads is not None:
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=args.blas_threads))
        run(args)


def run(args: argparse.Namespace) -> None:
    """Run every comparison, write the JSON and markdown results, print the table."""
    report: dict[str, Any] = {"environment": environment(),
                              "args": {k: str(v) if isinstance(v, Path) else v
                                       for k, v in vars(args).items()},
                              "results": []}
    report["results"].append(compare("bgnbd", args.customers, args))
    if args.pareto_customers > 0:
        try:
            importlib.import_module("clvmodels.models.paretonbd")
        except ImportError as exc:
            report["results"].append({"model": "paretonbd", "skipped": str(exc)})
        else:
            report["results"].append(compare("paretonbd", args.pareto_customers, args))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    if args.profile:
        text = profile_ours(args.customers, args)
        (args.results_dir / "bench_fit_profile.txt").write_text(text, encoding="utf-8")
        report["profile_file"] = str(args.results_dir / "bench_fit_profile.txt")
        print(text)
    (args.results_dir / "bench_fit.json").write_text(json.dumps(report, indent=2),
                                                     encoding="utf-8")
    md = markdown(report)
    (args.results_dir / "bench_fit.md").write_text(md, encoding="utf-8")
    print(md)


if __name__ == "__main__":
    main()
