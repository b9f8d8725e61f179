"""Benchmark: transactions → RFM summary with the DuckDB engine, the pandas engine and lifetimes.

Usage (defaults: 10 million transactions of 2 million customers)::

    .venv/bin/python bench/bench_rfm.py
    .venv/bin/python bench/bench_rfm.py --transactions 1000000 --customers 200000 --rounds 5
    .venv/bin/python bench/bench_rfm.py --lifetimes-rows 2000000   # lifetimes on a slice

The synthetic transactions are written once as Parquet under ``bench/_data/`` (git-ignored)
and reused. Every measured method runs in its own subprocess, so its peak resident memory
(``ru_maxrss``) is its own:

* ``duckdb``: ``rfm_summary(<parquet path>, engine="duckdb")`` (reads the file itself);
* ``pandas``: ``rfm_summary(df, engine="pandas")`` from a DataFrame already in memory (the
  time to read the Parquet file is not counted, its memory is);
* ``lifetimes``: ``lifetimes.utils.summary_data_from_transaction_data`` on the same
  DataFrame, or, with ``--lifetimes-rows N``, on a slice of whole customers making up about
  N rows when it is too slow on all of them; ``duckdb-slice`` / ``pandas-slice`` then run the
  engines on that slice too, for a like-for-like comparison.

Methods run in ``--rounds`` interleaved rounds (each round a fresh process per method, with
``--repeats`` timed runs), so a change in the machine's load hits every method alike. Wall
times are medians over all runs; CPU times (all threads of the process) are reported too,
because the wall time on a shared machine depends on what else runs on it (the load average
is recorded).

Results go to ``bench/results/bench_rfm.json`` and ``bench/results/bench_rfm.md``
(git-ignored), and the markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "_data"
RESULTS_DIR = HERE / "results"
START = "2019-01-01"
N_DAYS = 730  # two years of transactions
METHODS = ["duckdb", "pandas", "lifetimes", "duckdb-slice", "pandas-slice"]
GIB = 1024.0**3


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------


def generate(n_transactions: int, n_customers: int, seed: int, path: Path) -> None:
    """Write ``n_transactions`` synthetic transactions of ``n_customers`` customers to Parquet.

    Every customer has a first purchase at a uniform time in the two years; the remaining
    transactions go to customers with Gamma(0.5)-distributed rates (a few heavy buyers, many
    one-off ones) at uniform times between the customer's first purchase and the end, with a
    time of day, so same-day purchases occur. Amounts are lognormal, in cents. Rows are in
    time order, as an export would be.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    if n_transactions < n_customers:
        raise SystemExit("--transactions must be at least --customers")
    rng = np.random.default_rng(seed)
    first = rng.uniform(0.0, N_DAYS, n_customers)
    rates = rng.gamma(0.5, 1.0, n_customers)
    repeat_of = rng.choice(n_customers, size=n_transactions - n_customers, p=rates / rates.sum())
    who = np.concatenate([np.arange(n_customers), repeat_of])
    start = first[who]
    when = np.where(
        np.arange(n_transactions) < n_customers,
        start,
        start + rng.uniform(0.0, 1.0, n_transactions) * (N_DAYS - start),
    )
    del start, repeat_of
    order = np.argsort(when, kind="stable")
    micros = (when[order] * 86_400e6).astype(np.int64)
    dates = np.datetime64(START, "us") + micros.astype("timedelta64[us]")
    amounts = np.round(rng.lognormal(3.0, 0.8, n_transactions), 2)
    table = pa.table(
        {
            "customer_id": pa.array(who[order].astype(np.int64) + 1),
            "date": pa.array(dates, type=pa.timestamp("us")),
            "amount": pa.array(amounts),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, row_group_size=1_000_000)
    tmp.replace(path)


def slice_customers(path: Path, n_rows: int, out: Path) -> None:
    """Whole customers (the lowest ids) making up about ``n_rows`` transactions."""
    import duckdb

    con = duckdb.connect(config={"memory_limit": "2GB"})
    try:
        n_total, n_cust = con.execute(
            "SELECT count(*), max(customer_id) FROM read_parquet(?)", [str(path)]
        ).fetchone()
        max_id = max(1, int(n_cust * n_rows / n_total))
        tmp = out.with_suffix(".tmp")
        con.execute(
            f"COPY (SELECT * FROM read_parquet('{path}') WHERE customer_id <= {max_id}) "
            f"TO '{tmp}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)"
        )
        tmp.replace(out)
    finally:
        con.close()


def ensure_data(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """Paths of the (cached) full data set and lifetimes slice."""
    stem = f"tx_{args.transactions}_{args.customers}_{args.seed}"
    full = DATA_DIR / f"{stem}.parquet"
    if not full.exists():
        print(f"generating {args.transactions:,} transactions → {full}", flush=True)
        t0 = time.perf_counter()
        generate(args.transactions, args.customers, args.seed, full)
        print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)
    if args.lifetimes_rows <= 0 or args.lifetimes_rows >= args.transactions:
        return full, None
    part = DATA_DIR / f"{stem}_slice{args.lifetimes_rows}.parquet"
    if not part.exists():
        slice_customers(full, args.lifetimes_rows, part)
    return full, part


# --------------------------------------------------------------------------------------
# one method, in its own process
# --------------------------------------------------------------------------------------


def _rss_now() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _peak_rss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB else


def _time_repeats(
    fn: Any, repeats: int, budget_s: float
) -> tuple[list[float], list[float], Any]:
    """Run ``fn`` up to ``repeats`` times, stopping early once ``budget_s`` is spent.

    Returns wall times, CPU times (all threads of this process) and the last result.
    """
    times: list[float] = []
    cpu: list[float] = []
    result = None
    while len(times) < repeats:
        c0 = time.process_time()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if sum(times) > budget_s:
            break
    return times, cpu, result


def worker(
    method: str, path: str, repeats: int, budget_s: float, memory_limit: str, check: bool
) -> dict:
    """Measure one method on one Parquet file; returns a JSON-able record."""
    import pandas as pd

    os.environ.setdefault("CLVMODELS_DUCKDB_MEMORY_LIMIT", memory_limit)
    from clvmodels import rfm_summary

    record: dict[str, Any] = {"method": method, "input": path, "rss_after_imports": _rss_now()}
    if method.startswith("duckdb"):
        record["input_kind"] = "Parquet path"

        def fn() -> Any:
            return rfm_summary(path, engine="duckdb", time_unit="D")

    else:
        df = pd.read_parquet(path)
        record["input_kind"] = "DataFrame in memory"
        record["rss_with_input"] = _rss_now()
        if method.startswith("pandas"):

            def fn() -> Any:
                return rfm_summary(df, engine="pandas", time_unit="D")

        else:
            from lifetimes.utils import summary_data_from_transaction_data

            def fn() -> Any:
                return summary_data_from_transaction_data(
                    df, "customer_id", "date", monetary_value_col="amount", freq="D"
                )

    record["load_before"] = os.getloadavg()[0]
    try:
        times, cpu, result = _time_repeats(fn, repeats, budget_s)
    except Exception as exc:  # report exactly what failed
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=-4)
        record["peak_rss"] = _peak_rss()
        if method == "lifetimes":
            _lifetimes_retry(record, df, repeats, budget_s)
        return record
    record["peak_rss"] = _peak_rss()  # before any checking below
    record["load_after"] = os.getloadavg()[0]
    record["times_s"] = times
    record["cpu_s"] = cpu
    record["n_customers"] = len(result)
    if method == "lifetimes" and check:
        record["agrees_with_clvmodels"] = _compare_with_clvmodels(result, path)
    return record


def _lifetimes_retry(record: dict, df: Any, repeats: int, budget_s: float) -> None:
    """If lifetimes fails as called, try the arguments differently (string dates, freq)."""
    from lifetimes.utils import summary_data_from_transaction_data

    attempts = {
        "freq='D', observation_period_end=str": lambda: summary_data_from_transaction_data(
            df, "customer_id", "date", monetary_value_col="amount", freq="D",
            observation_period_end=str(df["date"].max().date()),
        ),
        "dates as strings, datetime_format='%Y-%m-%d'": lambda: summary_data_from_transaction_data(
            df.assign(date=df["date"].dt.strftime("%Y-%m-%d")), "customer_id", "date",
            monetary_value_col="amount", datetime_format="%Y-%m-%d", freq="D",
        ),
    }
    record["retries"] = {}
    for name, fn in attempts.items():
        try:
            times, cpu, result = _time_repeats(fn, repeats, budget_s)
        except Exception as exc:
            record["retries"][name] = f"{type(exc).__name__}: {exc}"
            continue
        record["retries"][name] = "ok"
        record["times_s"] = times
        record["cpu_s"] = cpu
        record["n_customers"] = len(result)
        record["called_as"] = name
        record["peak_rss"] = _peak_rss()
        return


def _compare_with_clvmodels(lt: Any, path: str) -> dict:
    """lifetimes' daily summary against clvmodels' (DuckDB engine) on the same data."""
    import numpy as np

    from clvmodels import rfm_summary

    ours = rfm_summary(path, engine="duckdb", time_unit="D")
    lt = lt.reindex(ours.index)
    out = {"same_customers": bool(lt.notna().all().all() and len(lt) == len(ours))}
    for col in ["frequency", "recency", "T", "monetary_value"]:
        out[f"max_abs_diff_{col}"] = float(
            np.nanmax(np.abs(lt[col].to_numpy(float) - ours[col].to_numpy(float)))
        )
    return out


# --------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------


def run_method(method: str, path: Path, args: argparse.Namespace, check: bool) -> dict:
    """One round of ``method`` in a fresh subprocess."""
    cmd = [
        sys.executable, __file__, "--worker", method, "--input", str(path),
        "--repeats", str(args.repeats), "--budget", str(args.budget),
        "--memory-limit", args.memory_limit,
    ] + (["--check"] if check else [])
    env = dict(os.environ)
    if args.threads:
        env["CLVMODELS_DUCKDB_THREADS"] = str(args.threads)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"method": method, "input": str(path),
                "error": f"worker exited with {proc.returncode}: {proc.stderr[-2000:]}"}
    record = json.loads(lines[-1])
    record["process_wall_s"] = wall
    if proc.stderr.strip():
        record["stderr_tail"] = proc.stderr[-1500:]
    if "times_s" in record:
        print(f"  {method:<13} {', '.join(f'{t:.2f}' for t in record['times_s'])} s, "
              f"peak RSS {record['peak_rss'] / GIB:.2f} GiB, load {record['load_before']:.1f}",
              flush=True)
    else:
        print(f"  {method:<13} FAILED: {record.get('error')}", flush=True)
    return record


def merge_rounds(rounds: list[dict]) -> dict:
    """The rounds of one method → one record (all runs; the highest peak RSS)."""
    ok = [r for r in rounds if "times_s" in r]
    if not ok:
        return rounds[-1]
    merged = dict(ok[-1])
    merged["times_s"] = [t for r in ok for t in r["times_s"]]
    merged["cpu_s"] = [t for r in ok for t in r["cpu_s"]]
    merged["peak_rss"] = max(r["peak_rss"] for r in ok)
    merged["load_before"] = min(r["load_before"] for r in ok)
    merged["load_after"] = max(r["load_after"] for r in ok)
    merged["loads"] = [(r["load_before"], r["load_after"]) for r in ok]
    merged["rounds"] = len(ok)
    for r in ok:
        if "agrees_with_clvmodels" in r:
            merged["agrees_with_clvmodels"] = r["agrees_with_clvmodels"]
    if len(ok) < len(rounds):
        merged["failed_rounds"] = [r.get("error") for r in rounds if "times_s" not in r]
    return merged


def _n_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def summarise(records: list[dict], args: argparse.Namespace) -> dict:
    for r in records:
        r["n_rows"] = _n_rows(Path(r["input"]))
        if "times_s" in r:
            r["median_s"] = statistics.median(r["times_s"])
            r["min_s"] = min(r["times_s"])
            r["us_per_transaction"] = r["median_s"] / r["n_rows"] * 1e6
            r["median_cpu_s"] = statistics.median(r["cpu_s"])
            r["cpu_us_per_transaction"] = r["median_cpu_s"] / r["n_rows"] * 1e6
    by = {r["method"]: r for r in records}
    goals: dict[str, Any] = {}
    duck, lt = by.get("duckdb"), by.get("lifetimes")
    if duck and "us_per_transaction" in duck:
        goals["duckdb_peak_rss_gib"] = duck["peak_rss"] / GIB
        goals["duckdb_peak_rss_below_3gib"] = duck["peak_rss"] < 3 * GIB
        if lt and "us_per_transaction" in lt:
            ratio = lt["us_per_transaction"] / duck["us_per_transaction"]
            goals["lifetimes_over_duckdb_per_transaction"] = ratio
            goals["duckdb_10x_faster_than_lifetimes"] = ratio >= 10
            goals["lifetimes_over_duckdb_cpu_per_transaction"] = (
                lt["cpu_us_per_transaction"] / duck["cpu_us_per_transaction"]
            )
            same = by.get("duckdb-slice")
            if same and "us_per_transaction" in same:
                goals["lifetimes_over_duckdb_same_slice"] = (
                    lt["us_per_transaction"] / same["us_per_transaction"]
                )
    return {"config": dict(vars(args)), "environment": environment(), "results": records,
            "goals": goals}


def environment() -> dict:
    import duckdb
    import numpy as np
    import pandas as pd

    try:
        import lifetimes

        lifetimes_version = lifetimes.__version__
    except Exception as exc:  # lifetimes is a dev dependency and may not import
        lifetimes_version = f"unavailable ({type(exc).__name__}: {exc})"
    mem = None
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "python": platform.python_version(), "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "memory_gib": mem, "duckdb": duckdb.__version__,
        "pandas": pd.__version__, "numpy": np.__version__, "lifetimes": lifetimes_version,
    }


def markdown(report: dict) -> str:
    rows = [
        "| method | input | transactions | customers | runs | median wall (s) | min (s) "
        "| µs / transaction | CPU s (all threads) | CPU µs / transaction | peak RSS (GiB) "
        "| load avg |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        if "times_s" not in r:
            rows.append(f"| {r['method']} | {r.get('input_kind', '')} | {r['n_rows']:,} | | | "
                        f"FAILED: {r.get('error', '?')[:200]} | | | | | | |")
            continue
        rows.append(
            f"| {r['method']} | {r['input_kind']} | {r['n_rows']:,} | {r['n_customers']:,} "
            f"| {len(r['times_s'])} | {r['median_s']:.2f} | {r['min_s']:.2f} "
            f"| {r['us_per_transaction']:.3f} | {r['median_cpu_s']:.2f} "
            f"| {r['cpu_us_per_transaction']:.3f} | {r['peak_rss'] / GIB:.2f} "
            f"| {r['load_before']:.1f}–{r['load_after']:.1f} |"
        )
    g = report["goals"]
    env = report["environment"]
    lines = ["\n".join(rows), ""]
    if "lifetimes_over_duckdb_per_transaction" in g:
        lines.append(
            f"- DuckDB engine vs lifetimes, per transaction: "
            f"**{g['lifetimes_over_duckdb_per_transaction']:.1f}×** faster "
            f"(goal ≥ 10×: {'met' if g['duckdb_10x_faster_than_lifetimes'] else 'NOT met'})"
        )
    if "lifetimes_over_duckdb_cpu_per_transaction" in g:
        lines.append(f"- same, in CPU time per transaction: "
                     f"{g['lifetimes_over_duckdb_cpu_per_transaction']:.1f}×")
    if "lifetimes_over_duckdb_same_slice" in g:
        lines.append(f"- on the same slice as lifetimes: "
                     f"{g['lifetimes_over_duckdb_same_slice']:.1f}× faster")
    if "duckdb_peak_rss_gib" in g:
        lines.append(
            f"- DuckDB engine peak RSS: {g['duckdb_peak_rss_gib']:.2f} GiB (goal < 3 GiB: "
            f"{'met' if g['duckdb_peak_rss_below_3gib'] else 'NOT met'})"
        )
    lt = next((r for r in report["results"] if r["method"] == "lifetimes"), None)
    if lt and "agrees_with_clvmodels" in lt:
        lines.append(f"- lifetimes vs clvmodels on the same rows (daily units): "
                     f"{lt['agrees_with_clvmodels']}")
    lines.append(
        f"- {env['cpu_count']} CPU(s), {env['memory_gib']:.1f} GiB RAM, Python {env['python']}, "
        f"duckdb {env['duckdb']}, pandas {env['pandas']}, numpy {env['numpy']}, "
        f"lifetimes {env['lifetimes']}; DuckDB memory_limit "
        f"{report['config']['memory_limit']}"
    )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--transactions", type=int, default=10_000_000)
    p.add_argument("--customers", type=int, default=2_000_000)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--lifetimes-rows", type=int, default=0,
                   help="give lifetimes only about this many rows of whole customers, if it is "
                        "too slow on all of them (0, the default: all rows)")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds; each runs every method once more, in a fresh process")
    p.add_argument("--repeats", type=int, default=1,
                   help="timed runs per method and round (the median of all is reported)")
    p.add_argument("--budget", type=float, default=120.0,
                   help="stop repeating a method within a round after this many seconds")
    p.add_argument("--memory-limit", default="2GB", help="DuckDB memory_limit")
    p.add_argument("--threads", type=int, default=0,
                   help="DuckDB threads (0, the default: every core)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated subset of {METHODS}")
    p.add_argument("--out", type=Path, default=RESULTS_DIR)
    # internal: run one method in this process
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        record = worker(args.worker, args.input, args.repeats, args.budget, args.memory_limit,
                        args.check)
        print(json.dumps(record))
        return
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; choose from {METHODS}")
    full, part = ensure_data(args)
    plan = []
    for method in methods:
        if method.endswith("-slice"):
            if part is not None:
                plan.append((method, part))
        else:
            plan.append((method, part if (method == "lifetimes" and part is not None) else full))
    # rounds interleave the methods, so a change in the machine's load hits all of them
    runs: dict[str, list[dict]] = {m: [] for m, _ in plan}
    for k in range(args.rounds):
        print(f"round {k + 1} of {args.rounds}", flush=True)
        for method, path in plan:
            runs[method].append(run_method(method, path, args, check=k == args.rounds - 1))
    records = [merge_rounds(runs[m]) for m, _ in plan]
    report = summarise(records, args)
    report["config"]["out"] = str(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_rfm.json").write_text(json.dumps(report, indent=2, default=str))
    table = markdown(report)
    (args.out / "bench_rfm.md").write_text("# RFM summary benchmark\n\n" + table)
    print()
    print(table)


if __name__ == "__main__":
    main()
