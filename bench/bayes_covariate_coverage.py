"""Interval coverage of the Bayesian covariate coefficients (issue 11, "90% intervals covering
at about the nominal rate").

Replicates: simulate a population of one family (BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma,
BG/BB or sBG) whose parameters depend on a categorical covariate through the family's links
(:mod:`clvmodels.models.links` equation (1), applied per customer before simulating),
fit the Bayesian model with that covariate, and record whether each coefficient's central
90% posterior interval covers the truth; optionally with ``--segments`` (hierarchical +
covariates). Prints one line per replicate and the coverage with its binomial standard
error, the mean posterior mean minus truth, and the worst R-hat.

    python bench/bayes_covariate_coverage.py --replicates 20 --customers 500
    python bench/bayes_covariate_coverage.py --family sbg --replicates 20
    python bench/bayes_covariate_coverage.py --family mbgnbd|pnbd|gg|bgbb --customers 400
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd

from clvmodels.models.bayes_bgnbd import BayesianBetaGeo, BayesianModifiedBetaGeo
from clvmodels.models.bayes_gammagamma import BayesianGammaGamma
from clvmodels.models.bayes_paretonbd import BayesianParetoNBD
from clvmodels.models.bgbb import BayesianBetaGeoBetaBinom, simulate_bgbb
from clvmodels.models.priors import lognormal
from clvmodels.models.sbg import BayesianShiftedBetaGeo, simulate_sbg
from clvmodels.simulate import (
    simulate_bgnbd,
    simulate_gammagamma,
    simulate_mbgnbd,
    simulate_paretonbd,
)

TRUTH_BG = {"purchase:channel[web]": 0.6, "dropout:channel[web]": -0.4}
TRUTH_SBG = {"dropout:plan[monthly]": 0.7}
TRUTH_PNBD = {"purchase:channel[web]": 0.6, "dropout:channel[web]": 0.5}
TRUTH_GG = {"spend:channel[web]": 0.4}
TRUTH_BGBB = {"purchase:channel[web]": 0.5, "dropout:channel[web]": -0.5}
TRUTHS = {"bgnbd": TRUTH_BG, "mbgnbd": TRUTH_BG, "pnbd": TRUTH_PNBD, "gg": TRUTH_GG,
          "bgbb": TRUTH_BGBB, "sbg": TRUTH_SBG}
# Gamma-Gamma: one fixed prior on v (the default's form, LogNormal(ln mean spend, 2.5), with
# the population mean spend p v / (q - 1) of the simulation instead of each replicate's
# sample mean) so that every replicate has the same model structure (compiled once)
GG_P, GG_Q, GG_V = 6.0, 4.0, 15.0
GG_PRIORS = {"p": lognormal(0.0, 2.0), "q": lognormal(1.0, 1.5),
             "v": lognormal(float(np.log(GG_P * GG_V / (GG_Q - 1))), 2.5)}


def bgnbd_data(n: int, seed: int, segments: bool, modified: bool = False) -> pd.DataFrame:
    """BG/NBD (or MBG/NBD) customers, alpha_i = alpha e^(-g_p z), a_i, b_i = a, b e^(g_d z)."""
    rng = np.random.default_rng(seed)
    web = rng.random(n) < 0.5
    gp, gd = TRUTH_BG["purchase:channel[web]"], TRUTH_BG["dropout:channel[web]"]
    r = np.full(n, 0.8)
    if segments:  # two segments with different r (partially pooled)
        seg = rng.choice(["s1", "s2"], n)
        r = np.where(seg == "s1", 0.6, 1.0)
    simulate = simulate_mbgnbd if modified else simulate_bgnbd
    rfm = simulate(n, r, 4.0 * np.exp(-gp * web), 0.8 * np.exp(gd * web),
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


def pnbd_data(n: int, seed: int) -> pd.DataFrame:
    """Pareto/NBD customers, alpha_i = alpha e^(-g_p z), beta_i = beta e^(-g_d z)."""
    rng = np.random.default_rng(seed)
    web = rng.random(n) < 0.5
    gp, gd = TRUTH_PNBD["purchase:channel[web]"], TRUTH_PNBD["dropout:channel[web]"]
    rfm = simulate_paretonbd(n, 0.8, 4.0 * np.exp(-gp * web), 1.0, 30.0 * np.exp(-gd * web),
                             T=np.round(rng.uniform(26, 52, n)), random_seed=seed + 10_000)
    rfm["channel"] = np.where(web, "web", "store")
    return rfm


def gg_data(n: int, seed: int) -> pd.DataFrame:
    """Gamma-Gamma repeat buyers (1..8 repeat purchases), v_i = v e^(g_s z)."""
    rng = np.random.default_rng(seed)
    web = rng.random(n) < 0.5
    g = TRUTH_GG["spend:channel[web]"]
    out = simulate_gammagamma(n, GG_P, GG_Q, GG_V * np.exp(g * web),
                              frequency=rng.integers(1, 9, n), random_seed=seed + 10_000)
    out["channel"] = np.where(web, "web", "store")
    return out


def bgbb_data(n: int, seed: int) -> pd.DataFrame:
    """BG/BB customers over 8 opportunities, alpha_i = alpha e^(g_p z), gamma_i = gamma
    e^(g_d z)."""
    rng = np.random.default_rng(seed)
    web = rng.random(n) < 0.5
    gp, gd = TRUTH_BGBB["purchase:channel[web]"], TRUTH_BGBB["dropout:channel[web]"]
    out = simulate_bgbb(n, 8, alpha=1.2 * np.exp(gp * web), beta=0.75,
                        gamma=0.66 * np.exp(gd * web), delta=2.8, random_seed=seed + 10_000)
    out["channel"] = np.where(web, "web", "store")
    return out


def replicate(family: str, n: int, rep: int, segments: bool) -> tuple[pd.DataFrame, object]:
    """Replicate ``rep``'s data and unfitted model."""
    both = {"purchase_covariates": ["channel"], "dropout_covariates": ["channel"]}
    if family in ("bgnbd", "mbgnbd"):
        cls = BayesianModifiedBetaGeo if family == "mbgnbd" else BayesianBetaGeo
        return (bgnbd_data(n, rep, segments, modified=family == "mbgnbd"),
                cls(**both, segment_col="segment" if segments else None))
    if segments:
        raise SystemExit("--segments is only measured for bgnbd/mbgnbd")
    if family == "pnbd":
        return pnbd_data(n, rep), BayesianParetoNBD(**both)
    if family == "gg":
        return gg_data(n, rep), BayesianGammaGamma(priors=GG_PRIORS,
                                                   spend_covariates=["channel"])
    if family == "bgbb":
        return bgbb_data(n, rep), BayesianBetaGeoBetaBinom(**both)
    return sbg_data(n, rep), BayesianShiftedBetaGeo(dropout_covariates=["plan"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", choices=list(TRUTHS), default="bgnbd")
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("--customers", type=int, default=500)
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--tune", type=int, default=300)
    ap.add_argument("--sampler", choices=["nutpie", "pymc"], default="nutpie")
    ap.add_argument("--segments", action="store_true", help="hierarchical + covariates")
    ap.add_argument("--level", type=float, default=0.9)
    ap.add_argument("--max-rhat", type=float, default=1.05,
                    help="also report the figures without replicates above this R-hat")
    ap.add_argument("--first", type=int, default=0, help="first replicate's seed")
    args = ap.parse_args()

    truth = TRUTHS[args.family]
    hits = {k: [] for k in truth}
    errors = {k: [] for k in truth}
    rhat, started = [], time.perf_counter()
    for rep in range(args.first, args.first + args.replicates):
        t0 = time.perf_counter()
        data, model = replicate(args.family, args.customers, rep, args.segments)
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
    print(f"  worst R-hat {max(rhat):.3f}  load {os.getloadavg()[0]:.2f}")
    ok = np.asarray(rhat) <= args.max_rhat
    if not ok.all():  # the same figures over the replicates whose chains agree
        print(f"  {int((~ok).sum())} replicate(s) with R-hat > {args.max_rhat}; without them "
              f"({int(ok.sum())}):")
        for k in truth:
            cov = float(np.mean(np.asarray(hits[k])[ok]))
            se = float(np.sqrt(cov * (1 - cov) / ok.sum())) if ok.sum() > 1 else float("nan")
            err = np.asarray(errors[k])[ok]
            print(f"  {k:26s} coverage {cov:.2f} (se {se:.2f})  mean error {err.mean():+.3f}  "
                  f"rmse {np.sqrt(np.mean(err ** 2)):.3f}")


if __name__ == "__main__":
    main()
