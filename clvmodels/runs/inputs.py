"""A run's input, by ``input.kind`` and ``input.engine``: the per-customer frame models are
fitted on, the observation end, and what the manifest records of the files.

=============== =========== ==============================================================
``input.kind``  engine      what is read, and by what
=============== =========== ==============================================================
transactions    pandas      every file into one pandas frame (dates parsed with
                            ``input.date_format``) → :func:`~clvmodels.rfm_summary`
transactions    duckdb      the files summarised by DuckDB (:func:`~clvmodels.rfm_summary`
                            with ``engine="duckdb"``): only the per-customer summary is
                            materialised in pandas
transactions    spark       the files summarised by Spark (a lazy, persisted Spark
                            DataFrame; :mod:`clvmodels.engines.spark`), covariates
                            joined from ``[customers]`` in Spark: nothing comes to the
                            driver but the unique rows the fits compress to
discrete        pandas      the summary file(s) (``frequency, recency, T`` or ``periods``
                            in opportunities [+ ``input.weights_col``]), validated as the
                            ``discrete`` data kind (:mod:`clvmodels.datakinds`)
subscriptions   pandas,     subscription records → :func:`~clvmodels.contract_summary`
                duckdb      (DuckDB reads the files itself)
=============== =========== ==============================================================

Covariate and segment columns come from the ``[customers]`` table, else from the input's
rows (each customer's value on their first row). With DuckDB only those columns (and the
id and date) are read into pandas, and only when the customer table lacks them;
:func:`transaction_columns` is the same reader, used by the comparison report (which works
on pandas transactions: :func:`clvmodels.compare_models`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clvmodels.runs.config import RunConfig, input_files

__all__ = ["RunInput", "attributes", "load_input", "record_columns", "transaction_columns"]


@dataclass
class RunInput:
    """What :func:`load_input` read: ``data`` is the per-customer frame the models are
    fitted on (pandas; a Spark DataFrame with ``input.engine = "spark"``)."""

    data: Any
    observation_end: pd.Timestamp
    files: list[dict[str, Any]]
    #: input rows (transactions, records or summary rows); None when no engine counted them
    rows: int | None
    customers: int
    #: the input's rows in pandas (engine "pandas"), else None
    frame: pd.DataFrame | None = None
    #: discrete summaries: the weight of each row (``input.weights_col``)
    weights: np.ndarray | None = None
    #: subscriptions: the revenue per period (a number, or a Series by customer)
    revenue: Any = None
    #: the transaction columns already read into pandas, by column tuple
    cache: dict[tuple[str, ...], pd.DataFrame] = field(default_factory=dict)
    #: Spark frames persisted for the run (unpersisted at its end)
    persisted: list[Any] = field(default_factory=list)

    @property
    def is_spark(self) -> bool:
        return not isinstance(self.data, pd.DataFrame)


def file_sha256(path: Path) -> str:
    """The file's sha256 (hex), read in 1 MiB chunks (the manifest's content hashes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq", ".parq")


def _count_rows(path: Path) -> int | None:
    """Rows of one input file without reading it into pandas: Parquet's metadata, or a
    DuckDB count of a CSV file (None if DuckDB cannot read it)."""
    if _is_parquet(path):
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    import duckdb

    try:
        con = duckdb.connect()
        try:
            row = con.execute("SELECT count(*) FROM read_csv(?, all_varchar = true)",
                              [os.fspath(path)]).fetchone()
        finally:
            con.close()
    except duckdb.Error:
        return None
    return int(row[0]) if row else None


def _columns_of(path: Path) -> list[str]:
    if _is_parquet(path):
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    return [str(c) for c in pd.read_csv(path, nrows=0).columns]


def _read(path: Path, columns: list[str] | None) -> pd.DataFrame:
    """One file (all columns, or ``columns`` only), CSV rows labelled by their line."""
    from clvmodels.rfm import read_transactions

    if columns is None:
        return read_transactions(path)
    if _is_parquet(path):
        return pd.read_parquet(path, columns=columns)
    frame = pd.read_csv(path, usecols=columns)[columns]
    frame.index = pd.RangeIndex(2, len(frame) + 2)
    frame.attrs["clvmodels_row_label"] = "line"
    return frame


def _read_files(config: RunConfig, columns: list[str] | None, needed: list[str],
                what: str) -> pd.DataFrame:
    """Every input file as one frame; ``needed`` columns are checked first, by name."""
    files = input_files(config)
    for p in files:
        have = _columns_of(p)
        missing = [c for c in needed if c not in have]
        if missing:
            raise ValueError(f"input: column(s) {', '.join(map(repr, missing))} not in "
                             f"{os.fspath(p)!r} (columns: {', '.join(have)}); set {what}")
    frames = [_read(p, columns) for p in files]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _parse_dates(frame: pd.DataFrame, col: str, date_format: str, key: str) -> pd.DataFrame:
    raw = frame[col]
    if pd.api.types.is_datetime64_any_dtype(raw):
        return frame
    parsed = pd.to_datetime(raw.astype("string"), format=date_format or None, errors="coerce")
    bad = parsed.isna() & raw.notna()
    if bad.any():
        rows = ", ".join(map(str, frame.index[bad.to_numpy()][:5]))
        raise ValueError(
            f"{key}: {int(bad.sum()):,} value(s) of column {col!r} are not dates"
            f"{' in the layout ' + repr(date_format) if date_format else ''} "
            f"(rows {rows}; first: {raw[bad].iloc[0]!r})")
    return frame.assign(**{col: parsed})


def attributes(config: RunConfig) -> list[str]:
    """The covariate and segment columns the models name, once each."""
    cols = [c for m in config.models for c in (*m.purchase_covariates, *m.dropout_covariates)]
    cols += [m.segment_col for m in config.models if m.segment_col]
    cols += list(config.spend.spend_covariates)
    return list(dict.fromkeys(cols))


def _tx_keys(config: RunConfig) -> list[str]:
    inp = config.input
    return [inp.customer_id_col, inp.datetime_col,
            *([inp.monetary_value_col] if inp.monetary_value_col else [])]


def transaction_columns(config: RunConfig, run: RunInput, extra: list[str]) -> pd.DataFrame:
    """The transactions' id, date (parsed), amount and ``extra`` columns in pandas: the
    whole frame with engine "pandas"; otherwise only these columns, read from the files."""
    cols = list(dict.fromkeys([*_tx_keys(config), *extra]))
    if run.frame is not None:
        return run.frame
    key = tuple(cols)
    if key not in run.cache:
        frame = _read_files(config, cols, cols,
                            "input.customer_id_col / datetime_col / monetary_value_col")
        run.cache[key] = _parse_dates(frame, config.input.datetime_col,
                                      config.input.date_format, "input.date_format")
    return run.cache[key]


def record_columns(config: RunConfig, run: RunInput, extra: list[str]) -> pd.DataFrame:
    """The subscription records' id, start, end and ``extra`` columns in pandas (the
    contractual comparison reads records in pandas): the whole frame with engine "pandas",
    otherwise only these columns, read from the files."""
    inp = config.input
    cols = list(dict.fromkeys([inp.customer_id_col, inp.start_col, inp.end_col, *extra]))
    if run.frame is not None:
        return run.frame
    key = tuple(cols)
    if key not in run.cache:
        run.cache[key] = _read_files(config, cols, cols,
                                     "input.customer_id_col / start_col / end_col")
    return run.cache[key]


def load_input(config: RunConfig, step: Any) -> RunInput:
    """Read and summarise the input as ``input.kind`` and ``input.engine`` say (module
    docstring), covariates attached. ``step(name, message)`` is a context manager timing
    each step (``read``, ``summary``)."""
    files = input_files(config)
    with step("read", f"Reading {config.input.path}"):
        info = [{"path": os.fspath(p), "bytes": p.stat().st_size, "sha256": file_sha256(p)}
                for p in files]
        frame = None
        if config.input.engine == "pandas" and config.input.kind == "transactions":
            frame = _read_files(config, None, _tx_keys(config),
                                "input.customer_id_col / datetime_col / monetary_value_col")
            frame = _parse_dates(frame, config.input.datetime_col, config.input.date_format,
                                 "input.date_format")
    kind = config.input.kind
    what = {"transactions": "Summarising transactions",
            "discrete": "Checking the discrete-time summary",
            "subscriptions": "Summarising subscriptions"}[kind]
    engine = "" if config.input.engine == "pandas" else f" with {config.input.engine}"
    with step("summary", f"{what}{engine}"):
        if kind == "discrete":
            run = _discrete(config)
        elif kind == "subscriptions":
            run = _subscriptions(config)
        elif frame is not None:
            run = _transactions_pandas(config, frame)
        else:
            run = _transactions_engine(config)
    run.files = info
    if run.rows is None:
        counts = [_count_rows(p) for p in files]
        run.rows = None if any(c is None for c in counts) else sum(counts)  # type: ignore[misc]
    wanted = attributes(config)
    if wanted:
        with step("summary", "Joining the customer attributes"):
            run.data = _attach_spark(config, run, wanted) if run.is_spark \
                else _attach(config, run, wanted)
    return run


def _attach_spark(config: RunConfig, run: RunInput, wanted: list[str]) -> Any:
    """The Spark summary with the ``[customers]`` table's columns joined in Spark
    (:mod:`clvmodels.engines.spark_covariates`; the configuration requires the table)."""
    from clvmodels.engines.spark_covariates import join_customers_spark, read_customers_spark

    assert config.customers is not None
    table = read_customers_spark(run.data.sparkSession,
                                 config.resolve(config.customers.path))
    joined = join_customers_spark(run.data, table, on=config.customers.id_col or None,
                                  columns=wanted).persist()
    run.persisted.append(joined)
    return joined


def _transactions_pandas(config: RunConfig, frame: pd.DataFrame) -> RunInput:
    from clvmodels.rfm import rfm_summary

    inp = config.input
    obs_end = (pd.Timestamp(frame[inp.datetime_col].max()).normalize()
               if inp.observation_end == "latest" else pd.Timestamp(inp.observation_end))
    data = rfm_summary(frame, customer_id_col=inp.customer_id_col,
                       datetime_col=inp.datetime_col,
                       monetary_value_col=inp.monetary_value_col or None,
                       observation_end=obs_end, time_unit=inp.unit or "W", engine="pandas",
                       negative_amounts=inp.negative_amounts)
    return RunInput(data=data, observation_end=obs_end.normalize(), files=[],
                    rows=len(frame), customers=len(data), frame=frame)


def _paths(config: RunConfig) -> str | list[str]:
    files = [os.fspath(p) for p in input_files(config)]
    return files[0] if len(files) == 1 else files


def _transactions_engine(config: RunConfig) -> RunInput:
    """DuckDB or Spark summarise the files themselves; no transaction frame in pandas."""
    from clvmodels.rfm import rfm_summary

    inp = config.input
    if inp.engine == "spark":
        from pyspark.sql import SparkSession

        from clvmodels.engines.spark import session

        conf: dict[str, Any] = {"spark.sql.session.timeZone": "UTC"}
        if SparkSession.getActiveSession() is None:  # a new session: no progress bars
            conf["spark.ui.showConsoleProgress"] = "false"
        session(inp.spark_master, {**conf, **inp.spark_conf}).sparkContext.setLogLevel("ERROR")
    data = rfm_summary(_paths(config), customer_id_col=inp.customer_id_col,
                       datetime_col=inp.datetime_col,
                       monetary_value_col=inp.monetary_value_col or None,
                       observation_end=None if inp.observation_end == "latest"
                       else inp.observation_end, time_unit=inp.unit or "W",
                       engine=inp.engine, negative_amounts=inp.negative_amounts,
                       date_format=inp.date_format or None)
    if inp.engine == "spark":
        from clvmodels.engines.spark import summary_attrs

        data = data.persist()
        attrs = summary_attrs(data)
        persisted = [data]
        n = int(data.count())
    else:
        attrs, n, persisted = data.attrs, len(data), []
    return RunInput(data=data, observation_end=pd.Timestamp(attrs["observation_end"]),
                    files=[], rows=None, customers=n, persisted=persisted)


def _discrete(config: RunConfig) -> RunInput:
    from clvmodels.datakinds import resolve_weights, validate_kind

    inp = config.input
    frame = _read_files(config, None, [], "")
    data = frame.copy()
    if inp.customer_id_col in data.columns:
        data = data.set_index(inp.customer_id_col)
    data.attrs = {"time_unit": inp.unit, "observation_end": inp.observation_end}
    validate_kind(data, "discrete", "the discrete-time summary")
    weights = resolve_weights(data, inp.weights_col or None)
    return RunInput(data=data, observation_end=pd.Timestamp(inp.observation_end), files=[],
                    rows=len(frame), customers=len(data) if weights is None
                    else round(float(weights.sum())), frame=frame, weights=weights)


def _subscriptions(config: RunConfig) -> RunInput:
    from clvmodels.contract import contract_summary

    inp = config.input
    obs_end = pd.Timestamp(inp.observation_end)
    keys = [inp.customer_id_col, inp.start_col, inp.end_col]
    frame = None
    if inp.engine == "pandas":
        frame = _read_files(config, None, keys, "input.customer_id_col / start_col / end_col")
        source: Any = frame
    else:
        source = _paths(config)
    data = contract_summary(source, customer_id_col=inp.customer_id_col,
                            start_col=inp.start_col, end_col=inp.end_col,
                            observation_end=obs_end, period=inp.unit or "M",
                            engine=inp.engine, date_format=inp.date_format or None)
    revenue: Any = config.valuation.revenue_per_period
    if inp.revenue_col:
        records = frame if frame is not None else _read_files(
            config, [inp.customer_id_col, inp.start_col, inp.revenue_col],
            [inp.revenue_col], "input.revenue_col")
        records = _parse_dates(records, inp.start_col, inp.date_format, "input.date_format")
        latest = (records[[inp.customer_id_col, inp.start_col, inp.revenue_col]]
                  .sort_values(inp.start_col, kind="stable")
                  .groupby(inp.customer_id_col, sort=False)[inp.revenue_col].last())
        latest.index.name = data.index.name
        revenue = latest.reindex(data.index).rename(inp.revenue_col)
        if revenue.isna().any():
            rows = ", ".join(map(str, revenue.index[revenue.isna().to_numpy()][:5]))
            raise ValueError(f"input.revenue_col: column {inp.revenue_col!r} is missing for "
                             f"customer(s) {rows} (their latest record)")
    return RunInput(data=data, observation_end=obs_end, files=[],
                    rows=len(frame) if frame is not None else None, customers=len(data),
                    frame=frame, revenue=revenue)


def _attach(config: RunConfig, run: RunInput, wanted: list[str]) -> pd.DataFrame:
    """``run.data`` with the covariate / segment columns: from the customer table, else the
    input rows (each customer's first, by date), else the summary itself (discrete)."""
    from clvmodels.evaluation.fitting import attach_covariates, read_customers

    inp = config.input
    customers: Any = None
    if config.customers is not None:
        customers = read_customers(config.resolve(config.customers.path))
    missing = [c for c in wanted if c not in run.data.columns
               and (customers is None or c not in customers.columns)]
    rows, order = None, None
    if missing and inp.kind == "transactions":
        rows = transaction_columns(config, run, missing)
        order = rows[inp.datetime_col]
    elif missing and inp.kind == "subscriptions":
        rows = run.frame if run.frame is not None else _read_files(
            config, [inp.customer_id_col, inp.start_col, *missing], missing,
            "the covariate columns or a [customers] table")
        order = _parse_dates(rows, inp.start_col, inp.date_format,
                             "input.date_format")[inp.start_col]
    return attach_covariates(
        run.data, wanted, customers=customers,
        customers_id_col=(config.customers.id_col or None) if config.customers else None,
        transactions=rows, customer_id_col=inp.customer_id_col, order=order)
