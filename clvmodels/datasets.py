"""Bundled reference data sets (CDNOW, donations); see ``data/README.md`` for provenance."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

__all__ = ["data_path", "load_cdnow_transactions", "load_donations"]


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
