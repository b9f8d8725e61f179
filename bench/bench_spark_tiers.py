"""Cost of the Spark value tiers (a range-partitioned sort of the customers by CLV) per
customer, beside the cost of just writing the same frame: ``python bench/bench_spark_tiers.py
N`` (default 1,000,000 customers; ``SPARK_MASTER``, default ``local[2]``). Prints one JSON
line per step with wall and CPU seconds of the whole process tree (Python driver, JVM,
workers). The frame: an id and seven doubles per customer (a forecast's width), made in
Spark and cached before timing.
"""

from __future__ import annotations

import json
import os
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


def main(n: int) -> None:
    from pyspark.sql import functions as F

    from clvmodels.engines.spark import session
    from clvmodels.engines.spark_tiers import value_tiers_spark

    spark = session(MASTER, {"spark.sql.shuffle.partitions": 4,
                             "spark.ui.showConsoleProgress": "false",
                             "spark.driver.memory": "2g"})
    spark.sparkContext.setLogLevel("ERROR")
    frame = spark.range(0, n, numPartitions=4).select(
        F.col("id").alias("customer_id"),
        *[F.rand(seed=i).alias(f"c{i}") for i in range(6)],
        (F.floor(F.rand(seed=9) * 1000) / 10).alias("clv")).cache()  # ties: 10k values
    frame.count()
    for step in ("write", "tiers", "write", "tiers"):
        cpu0, t0 = _tree_cpu(), time.perf_counter()
        if step == "write":
            frame.write.format("noop").mode("overwrite").save()
        else:
            tiers = value_tiers_spark(frame, "clv")
            tiers.frame.write.format("noop").mode("overwrite").save()
            tiers.cached.unpersist()
        cpu = _tree_cpu() - cpu0
        print(json.dumps({"step": step, "customers": n, "wall_s": round(
            time.perf_counter() - t0, 2), "cpu_s": round(cpu, 2),
            "cpu_us_per_customer": round(cpu / n * 1e6, 2),
            "load1": os.getloadavg()[0]}), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
