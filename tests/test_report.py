"""The HTML comparison report and the `clvmodels compare` command."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

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
