"""Per-row costs of the Spark job on this machine, for docs/scaling.md (issue 12).

Each step runs in its own process (``python bench/bench_spark_scaling.py STEP ...``) on a
local Spark session, and prints one JSON line: wall seconds, CPU seconds of the whole
process tree (Python driver + its JVM + the Python workers of mapInPandas), the Python
driver's peak RSS and the JVM's peak RSS (VmHWM; in local mode the JVM is driver *and*
executors).

Steps:
  gen OUT_DIR N_CUSTOMERS N_TX_CUSTOMERS   simulated day-level RFM (BG/NBD + Gamma-Gamma) to
                                           OUT_DIR/rfm_<n>.parquet and a transaction log
                                           to OUT_DIR/tx.parquet
  fit RFM_PARQUET [--pandas]               BG/NBD and Gamma-Gamma on the Spark frame (or on
                                           pandas, to compare the driver's memory)
  summary TX_PARQUET                        Spark RFM summary of the transactions, written
                                           with the noop sink (all the work, no output)
  score RFM_PARQUET                         fits, then 12-month CLV for every customer
                                           (noop sink)
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

import psutil

MASTER = os.environ.get("SPARK_MASTER", "local[2]")


def _tree_cpu() -> float:
    me = psutil.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def _jvm_hwm_mb() -> float:
    for p in psutil.Process().children(recursive=True):
        try:
            if "java" in p.name():
                with open(f"/proc/{p.pid}/status") as fh:
                    for line in fh:
                        if line.startswith("VmHWM"):
                            return int(line.split()[1]) / 1024
        except (psutil.Error, OSError):
            pass
    return float("nan")


def _session():
    from clvmodels.engines.spark import session

    spark = session(MASTER, {"spark.sql.shuffle.partitions": 4, "spark.ui.enabled": "true",
                             "spark.sql.session.timeZone": "UTC",
                             "spark.ui.showConsoleProgress": "false",
                             "spark.driver.memory": os.environ.get("DRIVER_MEMORY", "2g")})
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _shuffle_mb() -> float:
    """Shuffle bytes written by every stage so far (Spark's REST API of this application)."""
    import urllib.request

    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None:
        return float("nan")
    url = spark.sparkContext.uiWebUrl
    app = spark.sparkContext.applicationId
    with urllib.request.urlopen(f"{url}/api/v1/applications/{app}/stages") as r:
        stages = json.load(r)
    return sum(st.get("shuffleWriteBytes", 0) for st in stages) / 2**20


def _report(step: str, started: float, cpu0: float, **extra: object) -> None:
    try:
        extra["shuffle_write_mb_total"] = round(_shuffle_mb(), 2)
    except Exception as exc:
        extra["shuffle_write_mb_total"] = str(exc)[:80]
    print(json.dumps({"step": step, "wall_s": round(time.perf_counter() - started, 2),
                      "cpu_s": round(_tree_cpu() - cpu0, 2),
                      "driver_python_peak_rss_mb":
                          round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "jvm_peak_rss_mb": round(_jvm_hwm_mb(), 1), **extra}), flush=True)


def gen(out: str, n: int, n_tx: int) -> None:
    from clvmodels.simulate import (
        simulate_bgnbd,
        simulate_transactions,
        uniform_observation_lengths,
    )

    os.makedirs(out, exist_ok=True)
    params = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)
    for size in (n // 10, n):
        T = uniform_observation_lengths(size, 78.0, resolution=1 / 7, random_seed=1)
        rfm = simulate_bgnbd(size, **params, T=T, resolution=1 / 7,
                             spend=(6.25, 3.74, 15.44), random_seed=2)
        rfm["monetary_value"] = rfm["monetary_value"].round(2)
        rfm = rfm.reset_index()
        rfm["customer_id"] = rfm["customer_id"].astype(str)
        rfm.to_parquet(os.path.join(out, f"rfm_{size}.parquet"), index=False)
    tx = simulate_transactions(n_tx, **params, random_seed=3)
    tx["customer_id"] = tx["customer_id"].astype(str)
    tx["date"] = tx["date"].astype("datetime64[us]")  # Spark reads no nanosecond stamps
    tx.to_parquet(os.path.join(out, "tx.parquet"), index=False)
    print(json.dumps({"customers": n, "tx_customers": n_tx, "transactions": len(tx)}))


def _rfm(spark, path: str):
    from clvmodels.engines.spark import with_summary_attrs

    return with_summary_attrs(spark.read.parquet(path), {"time_unit": "W"})


def fit(path: str, use_pandas: bool) -> None:
    import clvmodels

    if use_pandas:
        import pandas as pd

        cpu0, started = _tree_cpu(), time.perf_counter()
        rfm = pd.read_parquet(path).set_index("customer_id")
        rfm.attrs["time_unit"] = "W"
        bg = clvmodels.BetaGeo().fit(rfm)
        gg = clvmodels.GammaGamma().fit(rfm)
        _report("fit-pandas", started, cpu0, customers=len(rfm),
                unique_rows=bg.data_summary_["n_unique_rows"], params=bg.params_.tolist(),
                gg=gg.params_.tolist())
        return
    spark = _session()
    sdf = _rfm(spark, path)
    n = sdf.count()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu0, started = _tree_cpu(), time.perf_counter()
    bg = clvmodels.BetaGeo().fit(sdf)
    mid = time.perf_counter()
    gg = clvmodels.GammaGamma().fit(sdf)
    _report("fit-spark", started, cpu0, customers=n, bgnbd_s=round(mid - started, 2),
            unique_rows=bg.data_summary_["n_unique_rows"],
            gg_unique_rows=gg.data_summary_["n_unique_rows"],
            driver_python_rss_before_fit_mb=round(base_rss, 1),
            params=bg.params_.tolist(), gg=gg.params_.tolist())


def summary(path: str) -> None:
    from clvmodels import rfm_summary

    spark = _session()
    n_tx = spark.read.parquet(path).count()
    cpu0, started = _tree_cpu(), time.perf_counter()
    out = rfm_summary(path, engine="spark", time_unit="W", customer_id_col="customer_id",
                      datetime_col="date", monetary_value_col="amount")
    out.write.format("noop").mode("overwrite").save()
    _report("summary-spark", started, cpu0, transactions=n_tx)


def score(path: str) -> None:
    import clvmodels

    spark = _session()
    sdf = _rfm(spark, path).cache()
    n = sdf.count()
    bg = clvmodels.BetaGeo().fit(sdf)
    gg = clvmodels.GammaGamma().fit(sdf)
    cpu0, started = _tree_cpu(), time.perf_counter()
    clv = clvmodels.customer_lifetime_value(bg, gg, sdf, horizon="12M", discount_rate=0.1)
    clv.write.format("noop").mode("overwrite").save()
    _report("score-spark", started, cpu0, customers=n)


if __name__ == "__main__":
    step, *args = sys.argv[1:]
    if step == "gen":
        gen(args[0], int(args[1]), int(args[2]))
    elif step == "fit":
        fit(args[0], "--pandas" in args)
    elif step == "summary":
        summary(args[0])
    elif step == "score":
        score(args[0])
    else:
        raise SystemExit(__doc__)
