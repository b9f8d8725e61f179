"""Shared fixtures: the bundled CDNOW data, its published summaries, and tiny hand-made data.

Expensive things are computed once per session; the fixtures tests receive are copies, so a
test that modifies its frame cannot affect another test.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable

import pandas as pd
import pytest

from clvmodels import calibration_holdout_split, rfm_summary
from clvmodels.datasets import load_cdnow_transactions

#: The papers' CDNOW conventions (Fader, Hardie & Lee 2005).
CDNOW_CALIBRATION_END = "1997-09-30"
CDNOW_HOLDOUT_END = "1998-06-30"


@pytest.fixture(scope="session")
def _cdnow_transactions() -> pd.DataFrame:
    return load_cdnow_transactions(sample=True)


@pytest.fixture
def cdnow_transactions(_cdnow_transactions: pd.DataFrame) -> pd.DataFrame:
    """CDNOW 1/10 sample transactions (``customer_id, date, quantity, amount``), a copy."""
    return _cdnow_transactions.copy(deep=True)


@pytest.fixture(scope="session")
def _cdnow_rfm(_cdnow_transactions: pd.DataFrame) -> pd.DataFrame:
    return rfm_summary(
        _cdnow_transactions, observation_end=CDNOW_CALIBRATION_END, time_unit="W"
    )


@pytest.fixture
def cdnow_rfm(_cdnow_rfm: pd.DataFrame) -> pd.DataFrame:
    """CDNOW sample RFM in weeks, calibration to 1997-09-30 (the papers' setting), a copy."""
    return _cdnow_rfm.copy(deep=True)


@pytest.fixture(scope="session")
def _cdnow_split(_cdnow_transactions: pd.DataFrame) -> pd.DataFrame:
    return calibration_holdout_split(
        _cdnow_transactions,
        calibration_end=CDNOW_CALIBRATION_END,
        observation_end=CDNOW_HOLDOUT_END,
        time_unit="W",
    )


@pytest.fixture
def cdnow_split(_cdnow_split: pd.DataFrame) -> pd.DataFrame:
    """CDNOW sample calibration (to 1997-09-30) + holdout (to 1998-06-30) in weeks, a copy."""
    return _cdnow_split.copy(deep=True)


@pytest.fixture(scope="session")
def _cdnow_published() -> pd.DataFrame:
    with warnings.catch_warnings():
        # lifetimes 0.11.3 sets a pandas option that pandas 3 deprecates, at import time
        warnings.simplefilter("ignore")
        from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

        return load_cdnow_summary_data_with_monetary_value()


@pytest.fixture
def cdnow_published(_cdnow_published: pd.DataFrame) -> pd.DataFrame:
    """The published per-customer CDNOW summary (x, t_x, T, zbar to 2 decimals), as shipped
    by lifetimes: columns ``frequency, recency, T, monetary_value``, index customer id."""
    return _cdnow_published.copy(deep=True)


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the whole test run (``local[2]``, 2 shuffle partitions,
    UTC, no adaptive planning nor whole-stage code generation, quick JIT); tests using it are
    skipped when pyspark is not installed (the ``spark`` extra)."""
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install "
                        "'clvmodels[spark]'; the dev extra has it)")
    from clvmodels.engines.spark import quiet_pandas_warnings, session

    with quiet_pandas_warnings():
        import pyspark.testing.utils  # noqa: F401  (warns about pandas 3 once, when imported)
    spark = session("local[2]", {"spark.sql.shuffle.partitions": 2,
                                 "spark.default.parallelism": 2,
                                 "spark.sql.session.timeZone": "UTC",
                                 "spark.ui.enabled": "false",
                                 "spark.ui.showConsoleProgress": "false",
                                 # tiny data: planning and code generation cost more than
                                 # they save (halves the Spark tests' time)
                                 "spark.sql.adaptive.enabled": "false",
                                 "spark.sql.codegen.wholeStage": "false",
                                 # short runs: the quick JIT tier only, a serial GC
                                 "spark.driver.extraJavaOptions":
                                     "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"})
    spark.sparkContext.setLogLevel("ERROR")
    yield spark
    spark.stop()


@pytest.fixture
def tiny_transactions() -> pd.DataFrame:
    """Three customers, hand-checkable (dates as datetimes, amounts in dollars).

    * a: 2020-01-01 ($10), 2020-01-08 ($20 + $5 on the same day), 2020-01-29 ($30)
      → frequency 2, recency 28 days, monetary value (25 + 30) / 2 = 27.5
    * b: 2020-01-15 ($7) only → frequency 0
    * c: 2020-01-02 ($3), 2020-02-10 ($9, after a 2020-01-31 observation end)
    """
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "c", "c"],
            "date": pd.to_datetime(
                ["2020-01-01", "2020-01-08", "2020-01-08", "2020-01-29", "2020-01-15",
                 "2020-01-02", "2020-02-10"]
            ),
            "amount": [10.0, 20.0, 5.0, 30.0, 7.0, 3.0, 9.0],
        }
    )


def assert_names_rows(message: str, column: str, rows: Iterable[object]) -> None:
    """Assert an error message names ``column`` and shows each row label in ``rows``.

    The validation messages print offending rows with ``DataFrame.to_string()``, so each
    row appears on a line of its own that starts with its index label.
    """
    assert f"'{column}'" in message, f"column {column!r} not named in:\n{message}"
    for row in rows:
        pattern = rf"^\s*{re.escape(str(row))}\s"
        assert re.search(pattern, message, flags=re.MULTILINE), (
            f"row {row!r} not shown in:\n{message}"
        )


@pytest.fixture
def names_rows() -> Callable[[str, str, Iterable[object]], None]:
    """:func:`assert_names_rows` as a fixture (test modules cannot import conftest)."""
    return assert_names_rows
