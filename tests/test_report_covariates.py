"""Covariates in the report: coefficient tables, the forest plot, likelihood-ratio tests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from test_evaluation_covariates import CAL_END, OBS_END, simulate_channels

import clvmodels
from clvmodels.diagnostics_covariates import coefficient_table
from clvmodels.evaluation import compare_models
from clvmodels.plotting import plot_coefficients
from clvmodels.report import coefficients_frame, write_report


@pytest.fixture(scope="module")
def comparison():
    tx, customers = simulate_channels()
    return compare_models(
        tx, calibration_end=CAL_END, observation_end=OBS_END,
        models={"pnbd": "pnbd", "bgnbd": "bgnbd",
                "pnbd+cov": clvmodels.ParetoNBD(purchase_covariates=["channel"]),
                "bgnbd+cov": clvmodels.BetaGeo(purchase_covariates=["channel"],
                                               dropout_covariates=["channel"])},
        customers=customers, spend_model=clvmodels.GammaGamma(spend_covariates=["channel"]),
        baselines=False, clv_horizon="6M")


@pytest.fixture(scope="module")
def written(comparison, tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    out = tmp_path_factory.mktemp("report") / "cov"
    return out, write_report(comparison, out)


def _text(page: str, section: str) -> str:
    start = page.index(f'<section id="{section}">')
    body = page[start:page.index("</section>", start)]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def test_coefficient_table_matches_the_summary(comparison) -> None:
    model = comparison.models["bgnbd+cov"]
    table = coefficient_table(model)
    assert list(table.index) == ["purchase:channel[web]", "dropout:channel[web]"]
    assert list(table["group"]) == ["purchase", "dropout"]
    summary = model.summary().loc[table.index]
    np.testing.assert_allclose(table["estimate"], summary["estimate"])
    np.testing.assert_allclose(table["lower"], summary["lower 95%"], rtol=1e-6)
    np.testing.assert_allclose(table["upper"], summary["upper 95%"], rtol=1e-6)
    narrow = coefficient_table(model, interval=0.5)
    assert np.all(narrow["upper"] - narrow["lower"] < table["upper"] - table["lower"])
    assert coefficient_table(comparison.models["pnbd"]).empty


def test_coefficient_table_of_a_posterior() -> None:
    import xarray as xr

    rng = np.random.default_rng(0)
    draws = rng.normal([0.5, -1.0], 0.1, size=(2, 400, 2))

    class Posterior:  # what a Bayesian covariate model exposes (coef_<group> over dims)
        bayesian = True
        has_covariates = True
        covariate_groups: ClassVar[dict[str, list[str]]] = {"purchase": ["channel", "age"]}
        idata_ = type("I", (), {"posterior": xr.Dataset({"coef_purchase": xr.DataArray(
            draws, dims=("chain", "draw", "purchase_covariate"),
            coords={"purchase_covariate": ["channel[web]", "age"]})})})()

    table = coefficient_table(Posterior(), interval=0.9)
    assert list(table.index) == ["purchase:channel[web]", "purchase:age"]
    np.testing.assert_allclose(table["estimate"], draws.reshape(-1, 2).mean(axis=0))
    np.testing.assert_allclose(table["lower"], np.quantile(draws.reshape(-1, 2), 0.05, axis=0))
    assert "se" not in table and "sd" in table


def test_plot_coefficients(comparison) -> None:
    import matplotlib.pyplot as plt

    models = {n: comparison.models[n] for n in ("pnbd", "pnbd+cov", "bgnbd+cov")}
    ax = plot_coefficients(models)
    try:
        assert len(ax.containers) == 2  # the plain model is skipped
        assert [t.get_text() for t in ax.get_yticklabels()] == ["channel[web]"] * 2
        assert any(np.allclose(line.get_xdata(), 0) for line in ax.get_lines())
        groups = {t.get_text() for t in ax.texts}
        assert groups == {"purchase", "dropout"}
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels == ["pnbd+cov", "bgnbd+cov"]
    finally:
        plt.close(ax.figure)
    ax = plot_coefficients(comparison.models["bgnbd+cov"])
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="no model with covariates"):
        plot_coefficients(comparison.models["pnbd"])


def test_report_covariates_section(comparison, written) -> None:
    out, paths = written
    assert paths["figure:coefficients"].is_file()
    assert paths["coefficients"] == out / "coefficients.csv"
    coefs = pd.read_csv(paths["coefficients"], index_col=[0, 1])
    assert set(coefs.index.get_level_values("model")) == {"pnbd+cov", "bgnbd+cov",
                                                         "spend model"}
    model = comparison.models["pnbd+cov"]
    assert coefs.loc[("pnbd+cov", "purchase:channel[web]"), "estimate"] == pytest.approx(
        model.params_["purchase:channel[web]"])
    page = (out / "report.html").read_text(encoding="utf-8")
    assert '<a href="#covariates"' in page or 'href="#covariates"' in page
    text = _text(page, "covariates")
    assert "Likelihood-ratio tests" in text
    lr = clvmodels.lr_test(comparison.models["pnbd"], model)
    assert f"pnbd pnbd+cov {lr.log_likelihood_restricted:,.2f}" in text
    assert f"{lr.statistic:,.2f} 1" in text
    lr2 = clvmodels.lr_test(comparison.models["bgnbd"], comparison.models["bgnbd+cov"])
    assert f"{lr2.statistic:,.2f} 2" in text
    assert "dropout channel[web]" in text and "spend channel[web]" in text


def test_no_covariates_no_section(comparison) -> None:
    from clvmodels.report import render_html

    plain = type(comparison)(**{**comparison.__dict__,
                                "models": {"pnbd": comparison.models["pnbd"]},
                                "spend_model": None})
    assert coefficients_frame(plain) is None
    page = render_html(plain, figures=[])
    assert 'id="covariates"' not in page
