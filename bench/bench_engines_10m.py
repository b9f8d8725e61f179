"""Benchmark (issue 12): RFM of 10M transactions / 2M customers with the DuckDB, pandas and
Spark engines, and the whole Spark batch job (RFM -> BG/NBD + Gamma-Gamma -> CLV -> Parquet).

Usage::

    .venv/bin/python bench/bench_engines_10m.py gen /tmp/e10m           # tx.parquet
    .venv/bin/python bench/bench_engines_10m.py run /tmp/e10m [--only duckdb pandas lifetimes
                                                               spark job]

``run`` starts each measurement in its own subprocess (``child STEP DIR``) and reads, from
``wait4``, the CPU seconds of the whole process tree that was waited for (the child, its
JVM and Python workers are reaped by the child, so their time is included only when they
exit before it; the sampled figure below covers them anyway) and the child's own peak RSS
(``ru_maxrss``, the Python driver); it also samples every 0.2 s (psutil) the RSS and CPU of
the child *and all its descendants* (for Spark: the JVM and the Python workers). Each
child prints a JSON line with its per-step wall times; ``pandas`` and ``job`` also write
the fitted BG/NBD and Gamma-Gamma parameters, compared to 1e-8 relative at the end.

``lifetimes`` (the tool we replace, too slow for all 10M rows) runs
``summary_data_from_transaction_data`` (``freq="D"``: its frequency is then the number of
repeat purchase days, as ours, which the child checks against the DuckDB engine on the
same slice; with ``freq="W"`` lifetimes counts repeat *weeks*) on a slice of whole
customers -- ids up to ``--lifetimes-customers`` (default 200,000 of 2M: about 1M rows), read
with pandas outside the clock -- and its time is extrapolated per row to the 10M rows
(linearly: a lower bound, as its group-bys grow a little faster than the rows).

Data (``gen``): DuckDB writes ``tx.parquet``: ``customer_id`` BIGINT (ids 1..2M, each buys
at least once; the other 8M rows go to hashed ids), ``date`` TIMESTAMP uniform over 548
days from 2023-01-01, ``amount`` DOUBLE lognormal (median about 20) rounded to cents.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GIB = 1024.0**3
MASTER = "local[2]"
HORIZON = "12M"
DISCOUNT = 0.10


def generate(out: Path, n_tx: int, n_customers: int) -> None:
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    path = out / "tx.parquet"
    con = duckdb.connect(config={"memory_limit": "2GB", "threads": 2})
    c = int(n_customers)
    con.execute("SET enable_progress_bar = false")
    con.execute(f"""COPY (
        SELECT CAST(CASE WHEN i < {c} THEN i ELSE hash(i, 3) % {c} END + 1 AS BIGINT)
                   AS customer_id,
               TIMESTAMP '2023-01-01' + to_microseconds(
                   CAST(hash(i, 5) % (548 * 86400000000) AS BIGINT)) AS date,
               round(exp(3.0 + 0.8 * sqrt(-2 * ln((hash(i, 7) % 1000000 + 1) / 1000001.0))
                         * cos(2 * pi() * (hash(i, 9) % 1000000) / 1000000.0)), 2) AS amount
        FROM range({int(n_tx)}) t(i)
    ) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)""")
    con.close()


# ------------------------------------------------------------------------------ children


def _fit_params(bg: object, gg: object) -> dict:
    return {"bgnbd": {k: float(v) for k, v in bg.params_.items()},  # type: ignore[attr-defined]
            "gammagamma": {k: float(v) for k, v in gg.params_.items()}}  # type: ignore[attr-defined]


def child(step: str, out: Path) -> None:
    import clvmodels

    tx = str(out / "tx.parquet")
    steps: dict[str, float] = {}
    t = time.perf_counter()
    info: dict = {"step": step}
    if step == "duckdb":
        rfm = clvmodels.rfm_summary(tx, engine="duckdb", threads=2)
        steps["rfm"] = time.perf_counter() - t
        info["customers"] = len(rfm)
    elif step == "pandas":
        rfm = clvmodels.rfm_summary(tx, engine="pandas")
        steps["rfm"] = time.perf_counter() - t
        info["customers"] = len(rfm)
        t = time.perf_counter()
        bg = clvmodels.BetaGeo().fit(rfm)
        steps["fit_bgnbd"] = time.perf_counter() - t
        t = time.perf_counter()
        gg = clvmodels.GammaGamma().fit(rfm)
        steps["fit_gammagamma"] = time.perf_counter() - t
        (out / "params_pandas.json").write_text(json.dumps(_fit_params(bg, gg)))
    elif step == "lifetimes":
        import pandas as pd
        from lifetimes.utils import summary_data_from_transaction_data

        n_customers = int(os.environ.get("CLV_BENCH_LIFETIMES_CUSTOMERS", "200000"))
        df = pd.read_parquet(tx, filters=[("customer_id", "<=", n_customers)])
        steps["read_slice"] = time.perf_counter() - t
        info["slice_rows"] = len(df)
        t, cpu = time.perf_counter(), time.process_time()
        summary = summary_data_from_transaction_data(
            df, "customer_id", "date", monetary_value_col="amount", freq="D")
        steps["rfm_slice"] = time.perf_counter() - t
        cpu = time.process_time() - cpu
        info["customers"] = len(summary)
        n_rows = int(os.environ.get("CLV_BENCH_ROWS", "10000000"))
        info["rfm_slice_cpu_s"] = round(cpu, 2)
        info["rfm_extrapolated_s"] = round(steps["rfm_slice"] * n_rows / len(df), 1)
        info["rfm_extrapolated_cpu_s"] = round(cpu * n_rows / len(df), 1)
        # the same slice with the DuckDB engine (outside the clock): the same frequencies
        ours = clvmodels.rfm_summary(df, engine="duckdb", threads=2)
        info["sum_frequency"] = [float(summary["frequency"].sum()), float(ours["frequency"].sum())]
    elif step in ("spark", "job"):
        from clvmodels.engines.spark import session

        spark = session(MASTER)
        steps["session"] = time.perf_counter() - t
        t = time.perf_counter()
        rfm = clvmodels.rfm_summary(tx, engine="spark")
        if step == "spark":
            rfm.write.mode("overwrite").parquet(str(out / "rfm_spark.parquet"))
            steps["rfm_to_parquet"] = time.perf_counter() - t
        else:
            rfm = rfm.cache()
            info["customers"] = rfm.count()
            steps["rfm_cached_count"] = time.perf_counter() - t
            t = time.perf_counter()
            bg = clvmodels.BetaGeo().fit(rfm)
            steps["fit_bgnbd"] = time.perf_counter() - t
            t = time.perf_counter()
            gg = clvmodels.GammaGamma().fit(rfm)
            steps["fit_gammagamma"] = time.perf_counter() - t
            (out / "params_spark.json").write_text(json.dumps(_fit_params(bg, gg)))
            t = time.perf_counter()
            clv = clvmodels.customer_lifetime_value(bg, gg, rfm, horizon=HORIZON,
                                                    discount_rate=DISCOUNT)
            clv.write.mode("overwrite").parquet(str(out / "clv_spark.parquet"))
            steps["clv_to_parquet"] = time.perf_counter() - t
        spark.stop()
    else:
        raise SystemExit(f"unknown step {step}")
    import resource

    info["steps_s"] = {k: round(v, 2) for k, v in steps.items()}
    info["driver_maxrss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB
    print("RESULT " + json.dumps(info), flush=True)


# ------------------------------------------------------------------------------ parent


def measure(step: str, out: Path, time_limit: float, extra_env: dict | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "child", step, str(out)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(extra_env or {}))
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=str(ROOT))
    me = psutil.Process(proc.pid)
    peak_tree, cpu_seen, timed_out = 0, {}, False
    status, usage = 0, None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            procs = [me, *me.children(recursive=True)]
            rss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                    ct = p.cpu_times()
                    cpu_seen[p.pid] = ct.user + ct.system
                except psutil.Error:
                    pass
            peak_tree = max(peak_tree, rss)
        except psutil.Error:
            pass
        if time.perf_counter() - t0 > time_limit and not timed_out:
            for p in me.children(recursive=True):
                p.kill()
            proc.kill()
            timed_out = True
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    out_s, err_s = proc.communicate()
    line = next((x for x in out_s.splitlines() if x.startswith("RESULT ")), None)
    res = json.loads(line[7:]) if line else {"error": err_s.strip().splitlines()[-3:]}
    res.update({
        "method": step, "rc": os.waitstatus_to_exitcode(status), "timed_out": timed_out,
        "wall_s": round(wall, 1),
        "cpu_tree_waited_s": round(usage.ru_utime + usage.ru_stime, 1) if usage else None,
        "cpu_tree_sampled_s": round(sum(cpu_seen.values()), 1),
        "peak_rss_tree_gib": round(peak_tree / GIB, 2),
        "peak_rss_driver_gib": round(usage.ru_maxrss * 1024 / GIB, 2) if usage else None,
        "load_before": [round(x, 2) for x in load0],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    })
    return res


def compare(out: Path) -> list[str]:
    a = json.loads((out / "params_pandas.json").read_text())
    b = json.loads((out / "params_spark.json").read_text())
    lines = []
    for model in a:
        for name, x in a[model].items():
            y = b[model][name]
            rel = abs(x - y) / max(abs(x), 1e-300)
            lines.append(f"| {model} | {name} | {x:.12g} | {y:.12g} | {rel:.2e} | "
                         f"{'yes' if rel <= 1e-8 else 'NO'} |")
    return lines


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2], Path(sys.argv[3]))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("action", choices=["gen", "run", "compare"])
    p.add_argument("dir")
    p.add_argument("--transactions", type=int, default=10_000_000)
    p.add_argument("--customers", type=int, default=2_000_000)
    p.add_argument("--only", nargs="*",
                   default=["duckdb", "pandas", "lifetimes", "spark", "job"])
    p.add_argument("--lifetimes-customers", type=int, default=200_000,
                   help="lifetimes runs on the customers with ids up to this (whole customers)")
    p.add_argument("--time-limit", type=float, default=600.0)
    args = p.parse_args()
    out = Path(args.dir)
    if args.action == "gen":
        t = time.perf_counter()
        generate(out, args.transactions, args.customers)
        print(f"generated in {time.perf_counter() - t:.1f} s, "
              f"{(out / 'tx.parquet').stat().st_size / GIB:.2f} GiB", flush=True)
    elif args.action == "run":
        extra = {"CLV_BENCH_LIFETIMES_CUSTOMERS": str(args.lifetimes_customers),
                 "CLV_BENCH_ROWS": str(args.transactions)}
        for step in args.only:
            print(json.dumps(measure(step, out, args.time_limit, extra)), flush=True)
    if args.action == "compare" or (args.action == "run" and
                                    (out / "params_spark.json").exists()
                                    and (out / "params_pandas.json").exists()):
        print("| model | parameter | pandas | spark | rel. diff | <= 1e-8 |")
        print("|---|---|---|---|---|---|")
        print("\n".join(compare(out)))


if __name__ == "__main__":
    main()
