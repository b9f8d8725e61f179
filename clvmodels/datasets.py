"""Bundled reference data sets (CDNOW, donations, F&H 2007 subscriptions).

``data/README.md`` gives the provenance. :func:`write_dataset` writes any of them as a
comma-separated (or Parquet) file the command line reads (``clvmodels datasets NAME --out
FILE``): the place a new user starts from.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "DATASETS",
    "FH2007_SURVIVORS",
    "data_path",
    "load_cdnow_transactions",
    "load_donations",
    "load_subscriptions",
    "write_dataset",
]


def data_path(name: str) -> Path:
    """Path of a bundled data file (inside the wheel, or ``data/`` in a source checkout)."""
    packaged = resources.files("clvmodels") / "data" / name
    if packaged.is_file():
        return Path(str(packaged))
    source = Path(__file__).resolve().parent.parent / "data" / name
    if source.is_file():
        return source
    raise FileNotFoundError(
        f"bundled data file {name!r} not found (looked in {packaged}, {source})"
    )


def load_cdnow_transactions(sample: bool = True) -> pd.DataFrame:
    """CDNOW transactions: ``customer_id, date (datetime64), quantity, amount``.

    ``sample=True`` gives the 1/10 sample of Fader, Hardie & Lee (2005): 6,919 transactions
    of 2,357 customers, ``customer_id`` being the sample's own id (1..2357) used by the
    published per-customer summaries. ``sample=False`` gives the master file (69,659
    transactions, 23,570 customers) keyed by the master id. Both files are whitespace
    separated with CRLF line ends; the master file has one header line.
    """
    if sample:
        names = ["master_id", "customer_id", "date", "quantity", "amount"]
        raw = pd.read_csv(data_path("CDNOW_sample.txt"), sep=r"\s+", header=None, names=names,
                          dtype={"date": str})
    else:
        names = ["customer_id", "date", "quantity", "amount"]
        raw = pd.read_csv(data_path("CDNOW_master.txt"), sep=r"\s+", header=None, skiprows=1,
                          names=names, dtype={"date": str})
    out = pd.DataFrame(
        {
            "customer_id": raw["customer_id"].astype("int64"),
            "date": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "quantity": raw["quantity"].astype("int64"),
            "amount": raw["amount"].astype("float64"),
        }
    )
    return out


def load_donations() -> pd.DataFrame:
    """Discrete-time donations data (Fader, Hardie & Shang 2010), already summarised.

    Columns ``frequency, recency, periods, weights``: 22 distinct rows covering 11,104 donors
    over 6 annual opportunities; ``weights`` counts the donors in each row.
    """
    return pd.read_csv(data_path("donations.csv")).astype("int64")


#: Fader & Hardie (2007), Table 1: customers of an initial cohort of 1,000 still active at
#: the start of years 0..12, for the "regular" and "high end" segments (the published
#: percentages x 10). The paper fits years 1-7 and checks its projection on years 8-12.
FH2007_SURVIVORS: dict[str, tuple[int, ...]] = {
    "regular": (1000, 631, 468, 382, 326, 289, 262, 241, 223, 207, 194, 183, 173),
    "high-end": (1000, 869, 743, 653, 593, 551, 517, 491, 468, 445, 427, 409, 394),
}

#: the day every F&H 2007 subscription starts in :func:`load_subscriptions` (the paper
#: gives no calendar dates: any day serves)
FH2007_START = "2000-01-01"


def load_subscriptions() -> pd.DataFrame:
    """The F&H 2007 cohorts as subscription records: one row per customer.

    Columns ``customer_id`` ("R0001".. for "regular", "H0001".. for "high-end"), ``plan``
    ("regular" or "high-end"), ``start`` (2000-01-01 for everyone: the paper's single
    cohort), ``end`` (the day the customer did not renew — the anniversary after the last
    paid year — or missing while still active at the start of year 12, 2012-01-01). The
    counts are Table 1 of Fader & Hardie (2007) (:data:`FH2007_SURVIVORS`); annual periods.
    ``clvmodels.contract_summary(subs, observation_end="2007-01-01", period="Y")`` gives
    the data of the paper's fit (years 1-7); observing to 2012-01-01 adds years 8-12.
    """
    start = pd.Timestamp(FH2007_START)
    frames = []
    for plan, survivors in FH2007_SURVIVORS.items():
        alive = np.asarray(survivors, dtype=np.int64)
        lost = alive[:-1] - alive[1:]  # lost[k]: paid k + 1 years, did not renew
        years = np.repeat(np.arange(1, len(alive)), lost)
        ends = [start + pd.DateOffset(years=int(k)) for k in years]
        ends += [pd.NaT] * int(alive[-1])
        n = len(ends)
        frames.append(pd.DataFrame({
            "customer_id": [f"{plan[0].upper()}{i:04d}" for i in range(1, n + 1)],
            "plan": plan,
            "start": start,
            "end": pd.to_datetime(pd.Series(ends, dtype="object")),
        }))
    return pd.concat(frames, ignore_index=True)


def _cdnow_csv(sample: bool) -> pd.DataFrame:
    """CDNOW as ``customer_id, date, amount`` (what the command line reads by default)."""
    return load_cdnow_transactions(sample=sample)[["customer_id", "date", "amount"]]


#: name -> (what it is, a function returning the frame written by :func:`write_dataset`)
DATASETS: dict[str, tuple[str, Callable[[], pd.DataFrame]]] = {
    "cdnow": ("CDNOW 1/10 sample transactions: customer_id, date, amount "
              "(6,919 rows, 2,357 customers)", lambda: _cdnow_csv(True)),
    "cdnow-master": ("CDNOW master transactions: customer_id, date, amount "
                     "(69,659 rows, 23,570 customers)", lambda: _cdnow_csv(False)),
    "donations": ("donations summary (BG/BB): frequency, recency, periods, weights "
                  "(22 rows, 11,104 donors, 6 annual opportunities)", load_donations),
    "subscriptions": ("F&H 2007 subscriptions (sBG): customer_id, plan, start, end "
                      "(2,000 customers, annual renewals 2000-2012)", load_subscriptions),
}


def write_dataset(name: str, path: str | os.PathLike, *, force: bool = False) -> pd.DataFrame:
    """Write the bundled data set ``name`` (see :data:`DATASETS`) to ``path``.

    CSV (comma-separated, ISO dates, no index) or Parquet by the extension; written
    atomically, refusing to replace an existing file unless ``force``. Returns the frame.
    """
    from clvmodels._io import write_frame

    try:
        _, load = DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; use one of {', '.join(DATASETS)}") \
            from None
    frame = load()
    write_frame(frame, path, force=force, index=False)
    return frame
