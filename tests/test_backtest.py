"""Backtests: compare_models at several calibration cut-offs on CDNOW, the tables, the wins,
the refusals, the plot and the report section (checked in headless Chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from clvmodels import BetaGeo, backtest
from clvmodels.evaluation import (
    METRIC_COLUMNS,
    METRIC_DIRECTIONS,
    BacktestResult,
    compare_models,
    holdout_end,
)
from clvmodels.evaluation.backtest import _wins
from clvmodels.evaluation.fitting import is_fitted

CUTS = ["1997-06-30", "1997-07-31", "1997-08-31", "1997-09-30"]
HOLDOUT = "39W"
MODELS = ["bgnbd", "pnbd", "mbgnbd"]
ROWS = [*MODELS, "historic-clv", "calibration-rate"]


@pytest.fixture(scope="module")
def result(_cdnow_transactions: pd.DataFrame) -> BacktestResult:
    lines: list[str] = []
    out = backtest(_cdnow_transactions, calibration_ends=CUTS, holdout=HOLDOUT, models=MODELS,
                   progress=lines.append)
    out.settings["_progress_lines"] = lines
    return out


# --------------------------------------------------------------------------------------
# the tables
# --------------------------------------------------------------------------------------


def test_table_shapes(result: BacktestResult) -> None:
    m = result.metrics
    assert list(m.columns) == ["calibration_end", "holdout_end", "model", "metric", "value"]
    assert len(m) == len(CUTS) * len(ROWS) * len(METRIC_COLUMNS)
    assert list(dict.fromkeys(m["calibration_end"])) == CUTS == result.cutoffs
    # a fixed holdout of 39 weeks = 273 days after every cut-off
    ends = pd.to_datetime(m.groupby("calibration_end", sort=False)["holdout_end"].first())
    assert ((ends - pd.to_datetime(CUTS)).dt.days == 273).all()
    assert list(dict.fromkeys(m["model"])) == ROWS
    assert set(result.summary.index.get_level_values("model")) == set(ROWS)
    assert list(result.summary.columns) == ["direction", "cutoffs", "mean", "sd", "min", "max"]
    # no model has an ELPD (MLE only): left out of the summary and of the wins
    assert "elpd_loo" not in set(result.summary.index.get_level_values("metric"))
    assert "elpd_loo" not in set(result.wins.index.get_level_values("metric"))
    assert "fit_seconds" not in set(result.wins.index.get_level_values("metric"))
    wide = result.table("mae")
    assert wide.shape == (len(CUTS), len(ROWS)) and wide.notna().all().all()
    assert list(result.comparisons) == CUTS
    assert result.last is result.comparisons[CUTS[-1]]
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        result.table("nope")


def test_each_cutoff_equals_a_direct_comparison(result: BacktestResult,
                                                _cdnow_transactions: pd.DataFrame) -> None:
    for cut in CUTS:
        end = str(holdout_end(cut, HOLDOUT).date())
        direct = compare_models(_cdnow_transactions, calibration_end=cut, observation_end=end,
                                models=MODELS)
        got = result.table  # the long table, back to one comparison's shape
        rows = result.metrics.loc[result.metrics["calibration_end"] == cut]
        wide = rows.pivot(index="model", columns="metric", values="value")
        wide = wide.reindex(index=direct.metrics.index, columns=list(METRIC_COLUMNS))
        wide.columns.name = None
        cols = [c for c in METRIC_COLUMNS if c != "fit_seconds"]  # wall time differs
        pd.testing.assert_frame_equal(wide[cols], direct.metrics[cols], rtol=1e-9)
        pd.testing.assert_frame_equal(result.comparisons[cut].metrics[cols],
                                      direct.metrics[cols], rtol=1e-9)
        assert got("mae").loc[cut, "bgnbd"] == pytest.approx(direct.metrics.at["bgnbd", "mae"])


def test_summary_is_the_distribution_across_cutoffs(result: BacktestResult) -> None:
    for model, metric in [("pnbd", "mae"), ("bgnbd", "aggregate_bias"),
                          ("calibration-rate", "spearman_clv")]:
        values = np.array([result.comparisons[c].metrics.at[model, metric] for c in CUTS])
        row = result.summary.loc[(model, metric)]
        assert row["cutoffs"] == len(CUTS)
        assert row["mean"] == pytest.approx(values.mean())
        assert row["sd"] == pytest.approx(values.std(ddof=1))
        assert (row["min"], row["max"]) == pytest.approx((values.min(), values.max()))
        assert row["direction"] == METRIC_DIRECTIONS[metric]


def _winners(metrics: pd.DataFrame, metric: str) -> list[str]:
    """The best rows by hand (not through best_by_metric)."""
    v = metrics[metric].dropna()
    score = {"min": v, "max": -v, "zero": v.abs(), "nominal": (v - 0.9).abs()}[
        METRIC_DIRECTIONS[metric]]  # type: ignore[index]
    return list(score.index[score == score.min()])


def test_wins_count_and_sum(result: BacktestResult) -> None:
    wins = result.wins
    for _, block in wins.groupby(level="metric"):
        ranked = int(block["ranked_cutoffs"].iloc[0])
        assert ranked == len(CUTS)
        assert block["wins"].sum() == pytest.approx(ranked)
        assert (block["outright"] + block["tied"] <= ranked).all()
        np.testing.assert_allclose(block["win_rate"], block["wins"] / ranked)
    for metric in ["mae", "correlation", "aggregate_bias", "interval_coverage", "aic"]:
        expected = {m: 0.0 for m in ROWS}
        for cut in CUTS:
            best = _winners(result.comparisons[cut].metrics, metric)
            for m in best:
                expected[m] += 1 / len(best)
        got = wins.xs(metric, level="metric")["wins"].to_dict()
        assert got == pytest.approx(expected), metric
    table = result.win_table()
    assert list(table.index) == ROWS
    assert table["total"].sum() == pytest.approx(len(CUTS) * (table.shape[1] - 1))
    # baselines have no fit metrics: they never win AIC
    assert table.loc[["historic-clv", "calibration-rate"], "aic"].sum() == 0


def test_ties_share_a_win() -> None:
    def comp(values: dict[str, list[float]]) -> SimpleNamespace:
        return SimpleNamespace(metrics=pd.DataFrame(values, index=["a", "b", "c"]))

    comps = {"c1": comp({"mae": [1.0, 1.0, 2.0], "correlation": [0.5, 0.4, np.nan]}),
             "c2": comp({"mae": [3.0, 2.0, 1.0], "correlation": [0.1, 0.1, 0.1]}),
             "c3": comp({"mae": [np.nan, np.nan, np.nan], "correlation": [0.2, 0.3, 0.1]})}
    wins = _wins(comps, 0.9)
    mae = wins.xs("mae", level="metric")
    assert mae["ranked_cutoffs"].tolist() == [2, 2, 2]  # c3 has no MAE: not ranked there
    assert mae["wins"].tolist() == pytest.approx([0.5, 0.5, 1.0])
    assert mae["outright"].tolist() == [0, 0, 1] and mae["tied"].tolist() == [1, 1, 0]
    corr = wins.xs("correlation", level="metric")
    assert corr["wins"].tolist() == pytest.approx([1 + 1 / 3, 1 + 1 / 3, 1 / 3])
    assert corr["wins"].sum() == pytest.approx(3)


def test_progress_one_plain_line_per_cutoff(result: BacktestResult) -> None:
    lines = result.settings["_progress_lines"]
    assert len(lines) == len(CUTS)
    for i, (line, cut) in enumerate(zip(lines, CUTS, strict=True), start=1):
        assert line.startswith(f"Backtest cut-off {i}/{len(CUTS)}: calibration to {cut}")
        assert "\r" not in line and "\x1b" not in line and "\n" not in line


# --------------------------------------------------------------------------------------
# compare_models(calibration_ends=...), model objects, holdout lengths
# --------------------------------------------------------------------------------------


def test_progress_lines_on_stderr(_cdnow_transactions: pd.DataFrame,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    cuts = ["1997-08-31", "1997-09-30"]
    out = backtest(_cdnow_transactions, calibration_ends=cuts, holdout="9M", models=["bgnbd"],
                   baselines=False, spend_model=None, progress=True)
    assert out.settings["holdout_ends"] == ["1998-05-31", "1998-06-30"]
    err = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in err] == ["Backtest cut-off 1/2",
                                                    "Backtest cut-off 2/2"]


def test_model_objects_are_fitted_afresh_at_every_cutoff(
        _cdnow_transactions: pd.DataFrame) -> None:
    spec = BetaGeo()
    out = backtest(_cdnow_transactions, calibration_ends=CUTS[-2:], holdout="39W",
                   models={"bg": spec}, baselines=False, spend_model=None)
    first, second = (out.comparisons[c].models["bg"] for c in CUTS[-2:])
    assert first is not second and first is not spec
    assert not is_fitted(spec)  # the given one untouched
    assert is_fitted(first) and is_fitted(second)
    assert not np.allclose(first.params_.to_numpy(float), second.params_.to_numpy(float))


def test_holdout_lengths() -> None:
    assert holdout_end("1997-09-30", "39W") == pd.Timestamp("1998-06-30")
    assert holdout_end("1997-09-30", "9M") == pd.Timestamp("1998-06-30")
    assert holdout_end("1997-06-30", "1M") == pd.Timestamp("1997-07-31")  # month end kept
    assert holdout_end("1997-06-15", "1M") == pd.Timestamp("1997-07-15")
    assert holdout_end("1997-02-28", "1Y") == pd.Timestamp("1998-02-28")
    assert holdout_end("1997-01-01", 2, "W") == pd.Timestamp("1997-01-15")
    assert holdout_end("1997-01-01", "90D") == pd.Timestamp("1997-04-01")
    assert holdout_end("1997-01-01", "0.5M") == pd.Timestamp("1997-01-16")  # 15.2 days
    for bad in ("39", "W", "-3W", "0W", "3Q", None, True, float("nan")):
        with pytest.raises(ValueError, match="holdout"):
            holdout_end("1997-01-01", bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# refusals
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"calibration_ends": ["1997-09-30", "1997-08-31"]},
     "increasing order: cut-off 1997-08-31 is listed after 1997-09-30"),
    ({"calibration_ends": ["1997-08-31", "1997-09-30", "1997-08-31"]},
     "cut-off 1997-08-31 is given twice"),
    ({"calibration_ends": ["1996-12-31", "1997-09-30"]},
     "cut-off 1996-12-31 leaves no calibration period: the first transaction is on "
     "1997-01-01"),
    ({"calibration_ends": ["1997-09-30", "1997-10-31"]},
     r"cut-off 1997-10-31: its holdout \('39W'\) runs to 1998-07-31, past the end of the "
     r"data \(the last transaction, 1998-06-30\)"),
    ({"calibration_ends": ["1997-09-30"], "observation_end": "1998-07-31",
      "holdout": "10M"}, None),  # allowed: the data run to observation_end
    ({"calibration_ends": ["1997-09-30"], "observation_end": "1998-12-31", "holdout": "1Y"},
     "cut-off 1997-09-30: observation_end=1998-09-30 is 92 days"),  # compare_models' rule
    ({"calibration_ends": ["1997-09-30"], "observation_end": "1998-03-31"},
     "observation_end 1998-03-31 is before the last transaction"),
    ({"calibration_ends": ["not a date"]}, "cannot read cut-off 'not a date'"),
    ({"calibration_ends": []}, "calibration_ends is empty"),
    ({"calibration_ends": "1997-09-30"}, "must be a list of dates"),
    ({"calibration_ends": ["1997-09-30"], "holdout": "soon"}, "cannot read holdout 'soon'"),
])
def test_refusals(_cdnow_transactions: pd.DataFrame, kwargs: dict, message: str | None
                  ) -> None:
    args = {"holdout": "39W", "models": ["bgnbd"], "baselines": False, "spend_model": None,
            **kwargs}
    if message is None:
        out = backtest(_cdnow_transactions, **args)
        assert out.settings["holdout_ends"] == ["1998-07-31"]
        return
    with pytest.raises(ValueError, match=message):
        backtest(_cdnow_transactions, **args)


def test_fitted_models_refused(_cdnow_transactions: pd.DataFrame,
                               cdnow_rfm: pd.DataFrame) -> None:
    fitted = BetaGeo().fit(cdnow_rfm)
    with pytest.raises(ValueError, match="model 'BetaGeo' is already fitted"):
        backtest(_cdnow_transactions, calibration_ends=CUTS, holdout="39W", models=[fitted])
    with pytest.raises(ValueError, match="model 'bg' is already fitted"):
        backtest(_cdnow_transactions, calibration_ends=CUTS, holdout="39W",
                 models={"bg": fitted})


def test_compare_models_points_to_backtest(_cdnow_transactions: pd.DataFrame) -> None:
    """compare_models compares at one cut-off: calibration_ends (the issue's spelling) says
    where the backtest is instead of running one (one return type; no import cycle)."""
    tx = _cdnow_transactions
    with pytest.raises(ValueError, match=r"for several, use clvmodels.backtest\("):
        compare_models(tx, calibration_ends=CUTS)
    with pytest.raises(ValueError, match="needs calibration_end and observation_end"):
        compare_models(tx, calibration_end="1997-09-30")


# --------------------------------------------------------------------------------------
# the plot and the report
# --------------------------------------------------------------------------------------


def test_plot_backtest(result: BacktestResult) -> None:
    import matplotlib.pyplot as plt

    from clvmodels.plotting import plot_backtest

    ax = plot_backtest(result, "mae")
    try:
        assert len(ax.lines) == len(ROWS)
        for line, name in zip(ax.lines, ROWS, strict=True):
            np.testing.assert_allclose(line.get_ydata(), result.table("mae")[name])
        assert "lower is better" in ax.get_ylabel()
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels == [*MODELS, "historic-clv (baseline)", "calibration-rate (baseline)"]
        ax = plot_backtest(result, "aggregate_bias", models=["pnbd"])
        assert len(ax.lines) == 2  # the model and the line at zero
        assert "closer to 0" in ax.get_ylabel()
        with pytest.raises(ValueError, match="no metric 'nope'"):
            plot_backtest(result, "nope")
        with pytest.raises(ValueError, match="no model 'nope'"):
            plot_backtest(result, "mae", models=["nope"])
        with pytest.raises(ValueError, match="no model has a value of 'elpd_loo'"):
            plot_backtest(result, "elpd_loo")
    finally:
        plt.close("all")


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def report(result: BacktestResult, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from clvmodels.report import write_report

    return write_report(result, tmp_path_factory.mktemp("backtest-report"))


def test_report_has_the_backtest_section(report: dict[str, Path],
                                         result: BacktestResult) -> None:
    for key in ("report", "metrics", "backtest_metrics", "backtest_summary", "backtest_wins",
                "figure:backtest"):
        assert report[key].exists() and report[key].stat().st_size > 0, key
    page = report["report"].read_text(encoding="utf-8")
    assert '<section id="backtest">' in page and 'href="#backtest"' in page
    fig = re.search(r'id="fig-backtest"><img src="data:image/png;base64,([A-Za-z0-9+/=]+)"',
                    page)
    assert fig is not None and len(fig.group(1)) > 10_000
    wins = page[page.index('id="backtest-wins"'):]
    wins = wins[:wins.index("</table>")]
    assert wins.count("<tr") == 1 + len(ROWS)
    for cut in CUTS:
        assert f"<td class=\"left\">{cut}</td>" in page
    long = pd.read_csv(report["backtest_metrics"])
    assert len(long) == len(result.metrics)
    shown = pd.read_csv(report["metrics"], index_col=0)
    assert list(shown.index) == ROWS  # the latest cut-off's table, as on the page


def test_report_figure_renders_in_headless_chromium(report: dict[str, Path],
                                                    tmp_path: Path) -> None:
    """Chromium decodes the backtest figure: a script records each image's natural size
    once the page has loaded, and the DOM Chromium dumps must show a non-empty backtest
    image (the images are embedded: nothing is fetched)."""
    chromium = _chromium()
    if chromium is None:
        pytest.skip("headless Chromium not installed (Debian: apt-get install chromium); the "
                    "report's HTML is checked without it in the test above")
    page = report["report"].read_text(encoding="utf-8")
    probe = ('<script>window.addEventListener("load", () => { for (const img of '
             'document.images) { img.setAttribute("data-natural", img.naturalWidth + "x" + '
             'img.naturalHeight); } });</script>')
    checked = tmp_path / "report.html"
    checked.write_text(page.replace("</body>", probe + "</body>"), encoding="utf-8")
    run = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--virtual-time-budget=10000", "--dump-dom", checked.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    match = re.search(r'<figure id="fig-backtest"><img [^>]*>', dom)
    assert match is not None, "the backtest figure is not in the rendered page"
    size = re.search(r'data-natural="(\d+)x(\d+)"', match.group(0))
    assert size is not None, "the page's load script did not run"
    width, height = int(size.group(1)), int(size.group(2))
    assert width > 500 and height > 500, f"the backtest image decoded as {width}x{height}"
