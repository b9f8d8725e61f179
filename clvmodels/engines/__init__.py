"""Out-of-core engines for the RFM summary.

Each engine computes the *day-level* summary of :func:`clvmodels.rfm.day_summary_pandas`
(``n_days, first_day, last_day, total, first_total`` [+ holdout columns], indexed and sorted
by customer id) with the same validation, and :func:`clvmodels.rfm._finalise` turns it into
time units, so every engine returns exactly the same RFM frame as the pandas one.

* :mod:`clvmodels.engines.duckdb`: DataFrames, or CSV / Parquet files and globs that need
  not fit in memory.
"""
