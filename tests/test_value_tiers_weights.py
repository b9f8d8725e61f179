"""value_tiers with weights (pre-aggregated rows): shares counted in customers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvmodels._validation import ValidationError
from clvmodels.kpis import value_tiers


def test_unit_weights_are_the_unweighted_split() -> None:
    rng = np.random.default_rng(1)
    values = pd.Series(rng.gamma(0.5, 100.0, 53), index=[f"c{i:03d}" for i in range(53)])
    values.iloc[[3, 9, 20]] = values.iloc[4]  # ties broken by id either way
    plain = value_tiers(values)
    weighted = value_tiers(values, weights=np.ones(53))
    pd.testing.assert_series_equal(plain.labels, weighted.labels)
    pd.testing.assert_frame_equal(plain.summary, weighted.summary)


def test_a_row_takes_the_tier_of_its_middle_customer() -> None:
    """Rows cannot be split across a boundary: each row takes the tier its middle customer has
    when the rows are expanded into single customers; the summary counts those customers."""
    rng = np.random.default_rng(2)
    m = 40
    values = pd.Series(rng.permutation(m) * 3.0 + 1.0, index=np.arange(m))
    w = rng.integers(0, 9, m) * 2 + 1  # odd: one middle customer
    weighted = value_tiers(values, weights=w)
    expanded = pd.Series(np.repeat(values.to_numpy(), w), index=np.arange(int(w.sum())))
    per_customer = value_tiers(expanded)
    order = np.argsort(-values.to_numpy(), kind="stable")
    ranked = per_customer.labels.to_numpy()[np.argsort(-expanded.to_numpy(), kind="stable")]
    ends = np.cumsum(w[order])
    for row, end, wi in zip(order, ends, w[order], strict=True):
        assert weighted.labels.iloc[row] == ranked[end - (wi + 1) // 2]
    summary = weighted.summary
    for tier in summary.index:
        mask = (weighted.labels == tier).to_numpy()
        assert summary.loc[tier, "customers"] == w[mask].sum()
        assert summary.loc[tier, "total_value"] == pytest.approx(
            float(np.dot(values.to_numpy()[mask], w[mask])))
        assert summary.loc[tier, "max_value"] == values.to_numpy()[mask].max()
    nominal = per_customer.summary["customers"].to_numpy()
    assert np.abs(np.cumsum(summary["customers"].to_numpy()) - np.cumsum(nominal)).max() \
        <= w.max()


@pytest.mark.parametrize("weights, message", [
    (np.array([1, -1, 2]), "whole numbers"),
    (np.array([1, 0.5, 2]), "whole numbers"),
    (np.array([1, np.nan, 2]), "whole numbers"),
    (np.array([1, 2]), "entries for 3"),
    (np.zeros(3), "no customer"),
])
def test_bad_weights_are_refused(weights: np.ndarray, message: str) -> None:
    values = pd.Series([3.0, 2.0, 1.0], index=["a", "b", "c"])
    with pytest.raises(ValidationError, match=message):
        value_tiers(values, weights=weights)
