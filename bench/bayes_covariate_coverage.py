"""Interval coverage of the Bayesian covariate coefficients (issue 11, "90% intervals covering
at about the nominal rate").

Replicates: simulate a BG/NBD population (or an sBG one) whose parameters depend on a
categorical covariate through the links of :mod:`clvmodels.models.links` (equation (1)),
fit the Bayesian model with that covariate, and record whether each coefficient's central
90% posterior interval covers the truth; optionally with ``--segments`` (hierarchical +
covariates). Prints one line per replicate and the coverage with its binomial standard
error, the mean posterior mean minus truth, and the worst R-hat.

    python bench/bayes_covariate_coverage.py --replicates 20 --customers 500
    python bench/bayes_covariate_coverage.py --family sbg --replicates 20
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from clvmodels.models.bayes_bgnbd import BayesianBetaGeo
from clvmodels.models.sbg import BayesianShiftedBetaGeo, simulate_sbg
from clvmodels.simulate import simulate_bgnbd

TRUTH_BG = {"purchase:channel[web]": 0.6, "dropout:channel[web]": -0.4}
TRUTH_SBG = {"dropout:plan[monthly]": 0.7}


def bgnbd_data(n: int, seed: int, segments: bool) -> pd.DataFrame:
    """BG/NBD customers, alpha_i = alpha e^(-g_p z), a_i, b_i = a, b e^(g_d z)."""
    rng = np.random.default_rng(seed)
    web = rng.random(n) < 0.5
    gp, gd = TRUTH_BG["purchase:channel[web]"], TRUTH_BG["dropout:channel[web]"]
    r = np.full(n, 0.8)
    if segments:  # two segments with different r (partially pooled)
        seg = rng.choice(["s1", "s2"], n)
        r = np.where(seg == "s1", 0.6, 1.0)
    rfm = simulate_bgnbd(n, r, 4.0 * np.exp(-gp * web), 0.8 * np.exp(gd * web),
                         2.5 * np.exp(gd * web), T=np.round(rng.uniform(26, 52, n)),
                         random_seed=seed + 10_000)
    rfm["channel"] = np.where(web, "web", "store")
    if segments:
        rfm["segment"] = seg
    return rfm


def sbg_data(n: int, seed: int) -> pd.DataFrame:
    """sBG customers, alpha_i = alpha e^(g_d z), per plan."""
    g = TRUTH_SBG["dropout:plan[monthly]"]
    parts = [simulate_sbg(n // 2, alpha=0.8 * f, beta=2.5, n_periods=8,
                          random_seed=seed * 2 + i).assign(plan=plan)
             for i, (plan, f) in enumerate((("annual", 1.0), ("monthly", np.exp(g))))]
    out = pd.concat(parts, ignore_index=True)
    out.attrs["time_unit"] = "M"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", choices=["bgnbd", "sbg"], default="bgnbd")
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("--customers", type=int, default=500)
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--tune", type=int, default=300)
    ap.add_argument("--sampler", choices=["nutpie", "pymc"], default="nutpie")
    ap.add_argument("--segments", action="store_true", help="hierarchical + covariates")
    ap.add_argument("--level", type=float, default=0.9)
    args = ap.parse_args()

    truth = TRUTH_BG if args.family == "bgnbd" else TRUTH_SBG
    hits = {k: [] for k in truth}
    errors = {k: [] for k in truth}
    rhat, started = [], time.perf_counter()
    for rep in range(args.replicates):
        t0 = time.perf_counter()
        if args.family == "bgnbd":
            data = bgnbd_data(args.customers, rep, args.segments)
            model = BayesianBetaGeo(purchase_covariates=["channel"],
                                    dropout_covariates=["channel"],
                                    segment_col="segment" if args.segments else None)
        else:
            data = sbg_data(args.customers, rep)
            model = BayesianShiftedBetaGeo(dropout_covariates=["plan"],
                                           segment_col=None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(data, draws=args.draws, tune=args.tune, chains=2, random_seed=rep,
                      sampler=args.sampler, log_likelihood=False)
        ci = model.conf_int(1 - args.level)
        mean = model.coefficient_draws().mean()
        for k, v in truth.items():
            hits[k].append(bool(ci.loc[k, "lower"] < v < ci.loc[k, "upper"]))
            errors[k].append(float(mean[k] - v))
        rhat.append(model.diagnostics_["max_rhat"])
        print(f"rep {rep:3d}  " + "  ".join(
            f"{k}={mean[k]:+.3f} [{ci.loc[k, 'lower']:+.3f}, {ci.loc[k, 'upper']:+.3f}]"
            for k in truth) + f"  max R-hat {rhat[-1]:.3f}  {time.perf_counter() - t0:.1f}s",
            flush=True)
    n = args.replicates
    print(f"\n{args.family}{' + segments' if args.segments else ''}: {n} replicates of "
          f"{args.customers} customers, {args.draws}+{args.tune} draws x 2 chains, "
          f"{args.sampler}, {time.perf_counter() - started:.0f}s in all")
    for k in truth:
        cov = float(np.mean(hits[k]))
        se = float(np.sqrt(cov * (1 - cov) / n)) if n > 1 else float("nan")
        print(f"  {k:26s} truth {truth[k]:+.2f}  {args.level:.0%} coverage {cov:.2f} "
              f"(se {se:.2f})  mean error {np.mean(errors[k]):+.3f}  "
              f"rmse {np.sqrt(np.mean(np.square(errors[k]))):.3f}")
    print(f"  worst R-hat {max(rhat):.3f}")


if __name__ == "__main__":
    main()
