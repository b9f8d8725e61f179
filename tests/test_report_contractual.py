"""The contractual and discrete-time reports: the same self-contained page style, their own
content, dispatched by the comparison's kind; the transaction page keeps its sections."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clvmodels.evaluation import ContractualComparison, compare_contractual, compare_discrete
from clvmodels.models.bgbb import simulate_bgbb
from clvmodels.report import (
    CONTRACTUAL_METRIC_INFO,
    build_figures,
    format_metric,
    metric_info,
    render_html,
    write_report,
)
from clvmodels.report.parts import template


def _subscriptions(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Monthly subscriptions from the sBG (alpha 0.8, beta 2.5), started in 2020-2021."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 730, n), unit="D")
    life = rng.geometric(rng.beta(0.8, 2.5, n))
    end = pd.Series([s + pd.DateOffset(months=int(t)) for s, t in zip(start, life,
                                                                     strict=True)])
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "start": start,
                         "end": end.where(end <= pd.Timestamp("2023-06-30"))})


@pytest.fixture(scope="module")
def comparison() -> ContractualComparison:
    return compare_contractual(_subscriptions(), calibration_end="2022-06-30",
                               observation_end="2023-06-30")


@pytest.fixture(scope="module")
def written(comparison: ContractualComparison, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[Path, dict[str, Path]]:
    out = tmp_path_factory.mktemp("contractual") / "report"
    return out, write_report(comparison, out, title="Subscriptions")


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_contractual_report_files(written: tuple[Path, dict[str, Path]],
                                  comparison: ContractualComparison) -> None:
    out, paths = written
    figures = sorted((out / "figures").glob("*.png"))
    assert {p.stem for p in figures} == {"holdout-retention", "survival", "projection"}
    for png in figures:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = pd.read_csv(paths["metrics"], index_col="model")
    pd.testing.assert_frame_equal(metrics, comparison.metrics, check_names=False)
    page = paths["report"].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    images = re.findall(r"<img[^>]*src=\"([^\"]+)\"", page)
    assert len(images) == 3 and all(s.startswith("data:image/png;base64,") for s in images)
    for target in re.findall(r'href="#([^"]+)"', page):
        assert f'id="{target}"' in page


def test_contractual_report_content(written: tuple[Path, dict[str, Path]],
                                    comparison: ContractualComparison) -> None:
    page = written[1]["report"].read_text(encoding="utf-8")
    text = _text(page)
    d = comparison.data_summary
    for needle in ("Subscriptions", "Model comparison", "Parameters", "Retention",
                   "Configuration", "Holdout LL", "Retention MAE", "constant-churn",
                   "constant churn rate", "sBG", "Still paying after each holdout renewal",
                   "Retention curves: observed vs model", f"{d['customers']:,}",
                   f"{d['active_at_calibration_end']:,}", "Churn per renewal", "alpha", "beta",
                   "churn", "lower 95%", "expected lifetime", "renewal decision"):
        assert needle in text, needle
    # the holdout runs from the day after the calibration end (issue 9)
    cal = pd.Timestamp(d["calibration_end"])
    first = str((cal + pd.Timedelta(days=1)).date())
    assert f"{first} – {d['observation_end']}" in text
    assert f"{d['calibration_end']} – {d['observation_end']}" not in text
    # the metric values as formatted, the best of each column marked
    m = comparison.metrics
    for column in ("mae", "holdout_log_likelihood", "retention_mae", "tracking_error"):
        value = format_metric(column, m.at["sbg", column])
        assert f'<td class="best">{value}</td>' in page, column
        assert comparison.best[column] == ["sbg"]
    assert format_metric("retention_mae", 0.0234) == "2.3 pts"
    # the holdout table: decision 12, the customers still paying and each model's forecast
    table = comparison.tables["sbg"]["holdout_retention"]
    assert f"{table.at[12, 'actual']:,.0f}" in text
    assert f"{table.at[12, 'expected']:,.1f}" in text
    # the transaction page's style sheet, shared
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    transaction_style = re.search(r"<style>(.*?)</style>", template("report.html.j2").render(
        **_empty_transaction_context()), re.S).group(1)
    assert style == transaction_style and "td.best" in style


def _empty_transaction_context() -> dict[str, object]:
    """The least context the transaction template renders with (StrictUndefined)."""
    return {"version": "x", "title": "t", "subtitle": "s", "generated": "g", "sections": [],
            "findings": [], "data": {"cards": [], "histogram": [], "kpis": []},
            "metrics": {"groups": [], "columns": [], "rows": []}, "interval": "90%",
            "holdout_errors": [], "words": {"count": "c", "calibration": "k",
                                            "diagnostics": "d"},
            "params": [], "figures": {}, "segments": None, "valuation": None,
            "backtest": None,
            "warnings": [], "config": {"settings": [], "versions": [], "platform": "p"}}


def test_report_dispatch_and_metric_info(comparison: ContractualComparison) -> None:
    assert metric_info(comparison) == CONTRACTUAL_METRIC_INFO
    assert set(CONTRACTUAL_METRIC_INFO) == set(comparison.metrics.columns)

    class Other:
        kind = "spreadsheet"

    with pytest.raises(TypeError, match="spreadsheet"):
        build_figures(Other())
    page = render_html(comparison, figures=[], title="No figures")
    assert "<img" not in page and "No figures" in page


def test_contractual_report_with_segments_and_warnings() -> None:
    subs = _subscriptions(600, seed=4)
    subs["plan"] = np.where(np.arange(len(subs)) % 2 == 0, "basic", "pro")
    res = compare_contractual(subs, calibration_end="2022-06-30",
                              observation_end="2023-06-30", segment_col="plan")
    res.fit_warnings.append(("sbg", "a warning & more"))
    page = render_html(res, figures=[])
    text = _text(page)
    assert 'id="segments"' in page and "basic" in text and "pro" in text
    assert 'id="warnings"' in page and "a warning &amp; more" in page


def test_discrete_comparison_renders_in_the_transaction_style(tmp_path: Path) -> None:
    donors = simulate_bgbb(1500, 6, alpha=1.204, beta=0.750, gamma=0.657, delta=2.783,
                           holdout=5, random_seed=3)
    res = compare_discrete(donors)
    paths = write_report(res, tmp_path / "discrete")
    assert {p.stem for p in (tmp_path / "discrete" / "figures").glob("*.png")} == {
        "diagnostics-bgbb"}
    page = paths["report"].read_text(encoding="utf-8")
    text = _text(page)
    for needle in ("6 calibration and 5 holdout opportunities", "1,500 customers",
                   "Opportunities", "calibration-rate", "BG/BB", "Coverage", "χ²",
                   "discrete-time summary"):
        assert needle in text, needle
    assert 'id="valuation"' not in page  # no spend, no valuation
    # transactions at opportunities, not repeat purchases (issue 9), on the page and in the
    # metric definitions
    assert "Customers by transactions in the calibration opportunities" in text
    assert "repeat purchase" not in text.lower() and "repeat transaction" not in text.lower()
    value = format_metric("mae", res.metrics.at["bgbb", "mae"])
    assert f'<td class="best">{value}</td>' in page
