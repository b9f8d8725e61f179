"""The HTML comparison report and the `clvmodels compare` command."""

from __future__ import annotations

import html
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from clvmodels.cli import DEMO_STEPS, app
from clvmodels.evaluation import ModelComparison, compare_models
from clvmodels.report import format_metric, render_html, write_html, write_report

CAL, HOLD = "1997-09-30", "1998-06-30"
runner = CliRunner()


@pytest.fixture(scope="module")
def comparison(_cdnow_transactions: pd.DataFrame) -> ModelComparison:
    return compare_models(_cdnow_transactions, calibration_end=CAL, observation_end=HOLD,
                          models=["bgnbd"])


@pytest.fixture(scope="module")
def written(comparison: ModelComparison, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[Path, dict[str, Path]]:
    out = tmp_path_factory.mktemp("report") / "cdnow"
    return out, write_report(comparison, out)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if p.is_file())


def test_template_ships_with_the_package() -> None:
    assert (resources.files("clvmodels") / "templates" / "report.html.j2").is_file()


def test_report_files(written: tuple[Path, dict[str, Path]],
                      comparison: ModelComparison) -> None:
    out, paths = written
    assert paths["report"] == out / "report.html" and paths["metrics"] == out / "metrics.csv"
    figures = sorted((out / "figures").glob("*.png"))
    assert {p.stem for p in figures} >= {"diagnostics-bgnbd", "gains", "clv", "spend"}
    assert sorted(v for k, v in paths.items() if k.startswith("figure:")) == figures
    for png in figures:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = pd.read_csv(out / "metrics.csv", index_col="model")
    pd.testing.assert_frame_equal(metrics, comparison.metrics, check_names=False)
    assert _leftovers(out) == []  # atomic writes leave no temporary files


def test_report_is_self_contained(written: tuple[Path, dict[str, Path]]) -> None:
    out, _ = written
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # nothing is fetched: no remote (or protocol-relative) src / href, no external CSS / JS
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "<link" not in page and "<script" not in page and "@import" not in page
    images = re.findall(r"<img[^>]*src=\"([^\"]+)\"", page)
    assert len(images) == len(list((out / "figures").glob("*.png")))
    assert all(src.startswith("data:image/png;base64,") for src in images)
    # every internal link of the table of contents points at a section
    for target in re.findall(r'href="#([^"]+)"', page):
        assert f'id="{target}"' in page


def test_report_content(written: tuple[Path, dict[str, Path]],
                        comparison: ModelComparison) -> None:
    page = (written[0] / "report.html").read_text(encoding="utf-8")
    for text in ("Model comparison", "Parameters", "Diagnostics", "Valuation",
                 "Configuration", "2,357", "1,882", "0.626", "historic-clv",
                 "calibration-rate", "Value tiers", "Top customers by CLV", "numpy",
                 "lower 95%"):
        assert text in page, text
    # the best value of each ranked column is highlighted
    m = comparison.metrics
    best = comparison.best
    for col in ("mae", "correlation", "spearman_clv"):
        cell = format_metric(col, m.at[best[col][0], col])
        assert f'<td class="best">{cell}</td>' in page, col
    assert page.count('<td class="best') >= len(best)


def test_report_refuses_to_overwrite(written: tuple[Path, dict[str, Path]],
                                     comparison: ModelComparison) -> None:
    out, _ = written
    before = (out / "report.html").stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="--force"):
        write_report(comparison, out)
    assert (out / "report.html").stat().st_mtime_ns == before


def test_nothing_written_when_rendering_fails(comparison: ModelComparison, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import clvmodels.report as report

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(report, "build_figures", lambda comparison: [])
    monkeypatch.setattr(report, "render_html", broken)
    with pytest.raises(RuntimeError, match="boom"):
        write_report(comparison, tmp_path / "out")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").rglob("*")) == []


def test_write_html_single_file(comparison: ModelComparison, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    import clvmodels.report as report

    monkeypatch.setattr(report, "build_figures", lambda comparison: [])  # tables only
    path = write_html(comparison, tmp_path / "r.html")
    assert path.read_text(encoding="utf-8").rstrip().endswith("</html>")
    with pytest.raises(FileExistsError):
        write_html(comparison, path)
    assert write_html(comparison, path, force=True) == path
    assert "CDNOW" in render_html(comparison, [], title="CDNOW check")


# --------------------------------------------------------------------------------------
# what the page says (issue 9: the first hour)
# --------------------------------------------------------------------------------------


def _page_text(page: str) -> str:
    text = re.sub(r"<img[^>]*>", " ", page)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)))


def test_holdout_errors_are_defined_and_agree(written: tuple[Path, dict[str, Path]],
                                              comparison: ModelComparison,
                                              _cdnow_transactions: pd.DataFrame) -> None:
    """The tracking figure's legend, the metrics table's Tracking column and the caption
    quote one number; Bias (a different forecast) is defined beside it."""
    import matplotlib.pyplot as plt

    from clvmodels.plotting import plot_tracking

    page = (written[0] / "report.html").read_text(encoding="utf-8")
    text = _page_text(page)
    tracking = comparison.metrics.at["bgnbd", "tracking_error"]
    bias = comparison.metrics.at["bgnbd", "aggregate_bias"]
    shown = format_metric("tracking_error", tracking)
    ax = plot_tracking(comparison.models["bgnbd"], _cdnow_transactions, CAL, HOLD)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(ax.figure)
    assert any(t.endswith(f"holdout tracking error {shown}") for t in legend), legend
    assert f"<td>{shown}</td>" in page or f'<td class="best">{shown}</td>' in page
    assert f"Tracking column ({shown} here)" in text  # the figure's caption
    # the conditional bias is a different number, and both are defined beside the table
    assert format_metric("aggregate_bias", bias) != shown
    block = re.search(r'<dl class="glossary defs" id="holdout-errors">(.*?)</dl>', page, re.S)
    assert block is not None
    defs = _page_text(block.group(1))
    assert "Bias" in defs and "given their own calibration history" in defs
    assert "Tracking" in defs and "unconditional forecast" in defs and "legends" in defs


def test_holdout_card_and_frequency_per_year(written: tuple[Path, dict[str, Path]],
                                             comparison: ModelComparison) -> None:
    text = _page_text((written[0] / "report.html").read_text(encoding="utf-8"))
    # the holdout is (1997-09-30, 1998-06-30]: it starts on October 1st
    assert "Holdout 1997-10-01 – 1998-06-30" in text
    assert "1997-09-30 – 1998-06-30" not in text
    assert comparison.data_summary["holdout_start"] == "1997-10-01"
    # 39 calibration weeks: orders per customer-year is not orders per customer
    kpis = comparison.kpis["value"]
    per_year, per_customer = kpis["purchase_frequency_per_year"], kpis["orders_per_customer"]
    assert per_year > 1.3 * per_customer
    assert per_year == pytest.approx(kpis["orders"] / kpis["customer_years"])
    row = re.search(r"purchase frequency per year ([0-9.,]+) (.*?) repeat rate", text)
    assert row is not None and row.group(1) == f"{per_year:,.2f}"
    assert "customer-years" in row.group(2) and "no floor" in row.group(2)
    assert f"{kpis['customer_years']:,.1f} customer-years observed here" in row.group(2)


def test_gains_chart_keeps_every_model_visible(comparison: ModelComparison) -> None:
    """Two models with the very same predictions: the first one's line still shows (the
    later line is thinner, patterned and drawn on top), in pixels of the rendered chart."""
    import dataclasses

    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb

    from clvmodels.report.parts import PALETTE
    from clvmodels.report.transaction import _gains_figure, _gains_style

    twin = dataclasses.replace(comparison, predictions={
        "bgnbd": comparison.predictions["bgnbd"], "bgnbd-again": comparison.predictions["bgnbd"],
        **{k: v for k, v in comparison.predictions.items() if k != "bgnbd"}})
    fig = _gains_figure(twin)
    ax = fig.axes[0]
    lines = {line.get_label().split(" (")[0]: line for line in ax.get_lines()}
    first, again = lines["bgnbd"], lines["bgnbd-again"]
    np.testing.assert_array_equal(first.get_ydata(), again.get_ydata())
    assert again.get_linewidth() < first.get_linewidth()
    assert again.get_zorder() > first.get_zorder()
    assert (first.get_color(), first.get_marker()) != (again.get_color(), again.get_marker())
    ax.get_legend().remove()  # count the curves' pixels, not the legend swatches
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float) / 255
    plt.close(fig)
    for colour in PALETTE[:2]:
        near = np.linalg.norm(image - np.array(to_rgb(colour)), axis=-1) < 0.12
        assert near.sum() > 300, colour
    # every style of the first seven models (four baselines) is its own
    models = [_gains_style(i) for i in range(7)]
    keys = {(m["color"], str(m["linestyle"]), m["marker"]) for m in models}
    assert len(keys) == 7 and len({str(m["linestyle"]) for m in models}) == 7
    baselines = [str(_gains_style(i, baseline=True)["linestyle"]) for i in range(4)]
    assert len(set(baselines)) == 4


# --------------------------------------------------------------------------------------
# clvmodels compare
# --------------------------------------------------------------------------------------


@pytest.fixture
def cdnow_csv(tmp_path: Path, cdnow_transactions: pd.DataFrame) -> Path:
    path = tmp_path / "cdnow.csv"
    cdnow_transactions.to_csv(path, index=False)
    return path


def _compare_args(csv: Path, out: Path, *extra: str) -> list[str]:
    return ["compare", str(csv), "--calibration-end", CAL, "--observation-end", HOLD,
            "--models", "bgnbd", "--out", str(out), *extra]


def test_compare_command(cdnow_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "cdnow"
    res = runner.invoke(app, _compare_args(cdnow_csv, out))
    assert res.exit_code == 0, res.output
    assert (out / "report.html").is_file() and (out / "metrics.csv").is_file()
    assert (out / "figures" / "diagnostics-bgnbd.png").is_file()
    assert "0.626" in res.stdout and "historic-clv" in res.stdout
    assert str(out / "report.html") in res.stdout.replace("\n", "")
    metrics = pd.read_csv(out / "metrics.csv", index_col=0)
    assert list(metrics.index) == ["bgnbd", "historic-clv", "calibration-rate"]
    # an existing report is not replaced without --force
    before = (out / "report.html").read_bytes()
    again = runner.invoke(app, _compare_args(cdnow_csv, out))
    assert again.exit_code == 1 and "--force" in again.output
    assert (out / "report.html").read_bytes() == before
    forced = runner.invoke(app, _compare_args(cdnow_csv, out, "--force", "--no-baselines"))
    assert forced.exit_code == 0, forced.output
    assert list(pd.read_csv(out / "metrics.csv", index_col=0).index) == ["bgnbd"]
    assert _leftovers(out) == []


def test_compare_bad_input(cdnow_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = runner.invoke(app, _compare_args(cdnow_csv, out, "--amount", "price"))
    assert res.exit_code == 1 and "'price'" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(app, _compare_args(cdnow_csv, out, "--segment-col", "region"))
    assert res.exit_code == 1 and "'region'" in res.output
    res = runner.invoke(app, _compare_args(tmp_path / "missing.csv", out))
    assert res.exit_code == 1 and "missing.csv" in res.output
    res = runner.invoke(app, [*_compare_args(cdnow_csv, out)[:-4], "--models", "nope",
                              "--out", str(out)])
    assert res.exit_code == 1 and "nope" in res.output
    assert not out.exists()
    # usage errors keep click's exit code 2
    assert runner.invoke(app, ["compare", str(cdnow_csv), "--out", str(out)]).exit_code == 2


def test_demo_writes_the_report() -> None:
    descriptions = [d for d, _ in DEMO_STEPS]
    assert any("report" in d for d in descriptions)
