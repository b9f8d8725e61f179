"""Benchmark: 12-month discounted CLV (BG/NBD + Gamma-Gamma), clvmodels vs lifetimes.

Side by side in one run on the same simulated customers and the same fitted parameters:
``clvmodels.customer_lifetime_value`` against ``lifetimes.GammaGammaFitter
.customer_lifetime_value`` (which loops over months in Python, on every customer). Both use
lifetimes' conventions so the values must agree: months of 4.345 weeks, a monthly discount
rate of 1 % (our annual rate is set so one 4.345-week period discounts by exactly 1.01).

Usage: ``python bench/bench_clv.py [--customers 1000000] [--repeats 3]``; writes
``bench/results/bench_clv.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

from clvmodels import BetaGeo, GammaGamma, customer_lifetime_value
from clvmodels.simulate import simulate_bgnbd

MONTH_WEEKS = 4.345  # lifetimes' month, in weeks
MONTHLY_RATE = 0.01


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--results-dir", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    rng = np.random.default_rng(args.seed)
    n = args.customers
    rfm = simulate_bgnbd(n, 0.25, 4.0, 0.8, 2.5, T=rng.integers(1, 365, n) / 7,
                         resolution=1 / 7, spend=(6.25, 3.74, 15.44), random_seed=args.seed)
    bg, gg = BetaGeo().fit(rfm), GammaGamma().fit(rfm)
    lbg, lgg = BetaGeoFitter(), GammaGammaFitter()
    lbg.params_, lgg.params_ = bg.params_.copy(), gg.params_.copy()
    lbg.predict = lbg.conditional_expected_number_of_purchases_up_to_time
    annual = (1 + MONTHLY_RATE) ** (365.25 / (MONTH_WEEKS * 7)) - 1

    def ours() -> np.ndarray:
        out = customer_lifetime_value(bg, gg, rfm, horizon=12 * MONTH_WEEKS,
                                      discount_rate=annual, period=MONTH_WEEKS)
        return out["clv"].to_numpy()

    def theirs() -> np.ndarray:
        out = lgg.customer_lifetime_value(lbg, rfm["frequency"], rfm["recency"], rfm["T"],
                                          rfm["monetary_value"], time=12,
                                          discount_rate=MONTHLY_RATE, freq="W")
        return out.to_numpy()

    times: dict[str, list[float]] = {"clvmodels": [], "lifetimes": []}
    values: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, fn in (("clvmodels", ours), ("lifetimes", theirs)):
            start = time.perf_counter()
            values[name] = fn()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    ref = values["lifetimes"]
    rel = np.abs(values["clvmodels"] - ref) / np.maximum(np.abs(ref), 1e-12)
    result = {
        "customers": n,
        "median_s": med,
        "times_s": times,
        "speedup": med["lifetimes"] / med["clvmodels"],
        "max_rel_diff": float(rel.max()),
        "total_clv": {k: float(v.sum()) for k, v in values.items()},
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "bench_clv.json").write_text(json.dumps(result, indent=2))
    table = (
        "| method | customers | median s | times s |\n|---|---:|---:|---|\n"
        + "".join(f"| {k} | {n:,} | {med[k]:.3f} | "
                  f"{', '.join(f'{t:.2f}' for t in times[k])} |\n" for k in times)
        + f"\nspeed-up {result['speedup']:.1f}x (goal >= 20x); max relative difference of "
        f"per-customer CLV {result['max_rel_diff']:.1e}\n"
    )
    (args.results_dir / "bench_clv.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
