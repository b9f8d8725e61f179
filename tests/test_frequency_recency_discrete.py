"""The frequency x recency grid of a discrete-time model (BG/BB): whole opportunities, only
possible cells, each cell equal to the model's own prediction for that customer."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels import diagnostics as dg
from clvmodels import plotting
from clvmodels.datasets import load_donations


@pytest.fixture(scope="module")
def fitted() -> tuple[clvmodels.BetaGeoBetaBinom, pd.DataFrame]:
    data = load_donations()
    return clvmodels.BetaGeoBetaBinom().fit(data, weights="weights"), data


@pytest.mark.parametrize("kind", ["expected_purchases", "probability_alive"])
def test_grid_cells_are_the_models_predictions(fitted, kind: str) -> None:
    model, data = fitted
    table = dg.frequency_recency_table(model, data, kind=kind, t=3)
    n = int(data["periods"].max())
    assert list(table.columns) == list(np.arange(n + 1, dtype=float))
    assert table.attrs["T"] == n
    for x in table.index:
        for tx in table.columns:
            value = table.loc[x, tx]
            possible = (x == 0) == (tx == 0) and x <= tx
            assert np.isnan(value) != possible, (x, tx)
            if possible:
                one = pd.DataFrame({"frequency": [x], "recency": [tx], "periods": [n]})
                expected = (model.probability_alive(one) if kind == "probability_alive"
                            else model.expected_purchases(one, 3))
                assert value == pytest.approx(float(expected.iloc[0]), rel=1e-12)


def test_grid_for_fewer_opportunities_and_refusals(fitted) -> None:
    model, data = fitted
    table = dg.frequency_recency_table(model, data, T=3, max_frequency=2)
    assert table.shape == (3, 4)
    with pytest.raises(ValueError, match="whole number"):
        dg.frequency_recency_table(model, data, T=2.5)
    with pytest.raises(ValueError, match="periods"):
        dg.frequency_recency_table(model, data.drop(columns="periods"))


def test_plot_of_a_discrete_grid(fitted) -> None:
    model, data = fitted
    ax = plotting.plot_probability_alive_matrix(model, data)
    assert ax.figure is not None
