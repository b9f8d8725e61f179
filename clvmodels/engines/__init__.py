"""Out-of-core engines for the RFM summary.

Each engine computes the *day-level* summary of the pandas engine
(:func:`clvmodels.rfm.day_summary_pandas`: ``n_days, first_day, last_day, total, first_total``
[+ holdout columns], indexed and sorted by customer id) with the same validation, following the
rules of :mod:`clvmodels._summary_rules`, whose
:func:`~clvmodels._summary_rules.finalise_day_summary` turns it into time units, so every engine
returns exactly the same RFM frame as the pandas one. Engines import those rules, never
:mod:`clvmodels.rfm`, which dispatches to them through its table ``ENGINES``.

* :mod:`clvmodels.engines.duckdb`: DataFrames, or CSV / Parquet files and globs that need
  not fit in memory.
* :mod:`clvmodels.engines.spark` (the ``spark`` extra): Spark or pandas DataFrames, or files
  read by Spark; its day-level summary stays a Spark DataFrame and is finalised in Spark
  (the result is a lazy Spark DataFrame, its ``attrs`` in the columns' metadata);
  :mod:`clvmodels.engines.spark_contract` is the contract summary's Spark engine.
"""
