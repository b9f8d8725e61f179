"""``clvmodels run RUN.toml``: examples/cdnow_run.toml end to end on the bundled CDNOW sample.

A run writes one directory (forecasts, models, comparison report, manifest) atomically;
the same config on the same input gives the same forecasts and models; ``--force`` replaces;
bad configurations exit 1 naming the key with nothing written; a failing step and Ctrl-C
leave nothing behind; a later run beside an earlier one tracks the earlier forecast against
what happened (tracking.csv, figure, report section), checked against the library.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from clvmodels import calibration_holdout_split, load_model
from clvmodels.cli import app
from clvmodels.runs.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cdnow_run.toml"
runner = CliRunner()
execute_module = importlib.import_module("clvmodels.runs.execute")


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out as the repository: examples/cdnow_run.toml and transactions.csv."""
    ws = tmp_path_factory.mktemp("runs")
    (ws / "examples").mkdir()
    shutil.copy(EXAMPLE, ws / "examples" / "cdnow_run.toml")
    result = _invoke("datasets", "cdnow", "--out", str(ws / "transactions.csv"))
    assert result.exit_code == 0, result.output
    return ws


@pytest.fixture(scope="module")
def first_run(workspace: Path) -> Path:
    result = _invoke("run", str(workspace / "examples" / "cdnow_run.toml"))
    assert result.exit_code == 0, result.output
    run_dir = workspace / "reports" / "runs" / "cdnow" / "1997-12-31"
    assert result.stdout.strip() == str(run_dir)
    # plain progress lines on a pipe, one per step, no spinner
    assert "Fitting bgnbd on 2,357 customers" in result.stderr
    assert "\r" not in result.stderr
    return run_dir


def _variant(workspace: Path, name: str, replace: dict[str, str]) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = workspace / "examples" / name
    path.write_text(text, encoding="utf-8")
    return path


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) \
        if folder.exists() else []


def test_run_writes_every_output_and_the_manifest(workspace: Path, first_run: Path) -> None:
    d = first_run
    for rel in ("forecasts/bgnbd.parquet", "forecasts/pnbd.parquet", "models/bgnbd.json",
                "models/pnbd.json", "models/spend.gammagamma.json", "report/report.html",
                "report/metrics.csv", "manifest.json"):
        assert (d / rel).is_file(), rel
    assert not (d / "tracking.csv").exists()  # no earlier run to track
    assert _leftovers(d.parent) == []
    forecast = pd.read_parquet(d / "forecasts" / "bgnbd.parquet")
    assert len(forecast) == 2357 and forecast.index.name == "customer_id"
    for col in ("frequency", "recency", "T", "expected_purchases", "probability_alive",
                "expected_spend", "clv", "value_tier"):
        assert col in forecast.columns
    assert forecast["clv"].notna().all() and (forecast["clv"] >= 0).all()
    metrics = pd.read_csv(d / "report" / "metrics.csv", index_col=0)
    assert {"bgnbd", "pnbd", "historic-clv"} <= set(metrics.index)

    m = json.loads((d / "manifest.json").read_text())
    assert m["name"] == "cdnow" and m["run_id"] == "1997-12-31"
    assert m["config"]["input"]["observation_end"] == "1997-12-31"
    assert m["config"]["valuation"]["margin"] == 0.3
    (info,) = m["input"]["files"]
    data = (workspace / "transactions.csv").read_bytes()
    assert info["sha256"] == hashlib.sha256(data).hexdigest() and info["bytes"] == len(data)
    assert m["input"]["rows"] == 6919
    # customers first seen by the observation end (all 2,357 joined in Q1 1997)
    assert m["row_counts"] == {"transactions": 6919, "transactions_to_observation_end": 5728,
                               "customers": 2357,
                               "forecast:bgnbd": 2357, "forecast:pnbd": 2357}
    assert m["seeds"]["run"] == 42
    assert "clvmodels" in m["versions"] and "pandas" in m["versions"]
    assert {"read", "summary", "fit:bgnbd", "fit:pnbd", "fit:spend", "report"} <= set(
        m["seconds"])
    assert m["outputs"]["calibration_end"] == "1997-10-01"  # 13 weeks before the end
    assert m["previous_run"] is None
    assert isinstance(m["warnings"], list)
    # the saved models load, in the run's time unit
    assert load_model(d / "models" / "bgnbd.json").params_ is not None
    assert m["models"]["bgnbd"]["file"] == "models/bgnbd.json"


def test_rerun_refused_then_forced_gives_identical_outputs(workspace: Path,
                                                          first_run: Path) -> None:
    config = workspace / "examples" / "cdnow_run.toml"
    before = {p.relative_to(first_run): p.read_bytes()
              for p in [*first_run.glob("forecasts/*"), *first_run.glob("models/*")]}
    manifest = (first_run / "manifest.json").read_bytes()
    result = _invoke("run", str(config))
    assert result.exit_code == 1
    assert "--force" in result.stderr and "already exists" in result.stderr
    assert (first_run / "manifest.json").read_bytes() == manifest  # untouched
    result = _invoke("run", str(config), "--force")
    assert result.exit_code == 0, result.output
    after = {p.relative_to(first_run): p.read_bytes()
             for p in [*first_run.glob("forecasts/*"), *first_run.glob("models/*")]}
    assert set(after) == set(before)
    for rel, content in before.items():
        assert after[rel] == content, f"{rel} differs between two runs of the same config"
    assert (first_run / "manifest.json").read_bytes() != manifest  # a new run (timings)
    assert _leftovers(first_run.parent) == []


@pytest.mark.parametrize(("replace", "message"), [
    ({'seed = 42': 'seed = 42\ncolour = "blue"'}, "colour: unknown key"),
    ({'margin = 0.3': 'margin = "high"'}, "valuation.margin: expected a number, got a string"),
    ({'family = "pnbd"\nmethod = "mle"': 'family = "pnbd"\nmethod = "bayesian"'},
     "models[1].method: expected 'mle' or 'bayes', got 'bayesian'"),
    ({'path = "../transactions.csv"': 'path = "../missing-*.csv"'},
     "input.path: no input file matches"),
    ({'family = "bgnbd"': 'family = "bgbnd"'}, "models[0].family: expected one of"),
    ({'observation_end = "1997-12-31"': 'observation_end = "end of 1997"'},
     "input.observation_end: expected a date"),
    ({'[input]\n': '[input]\nfoo = 1\n', 'horizon = "12M"': 'horizon = 12'},
     "input.foo: unknown key"),
])
def test_bad_configs_exit_1_naming_the_key(workspace: Path, replace: dict[str, str],
                                           message: str) -> None:
    replace = {**replace, '"../reports/runs"': '"../bad-runs"'}
    path = _variant(workspace, "bad.toml", replace)
    result = _invoke("run", str(path))
    assert result.exit_code == 1, result.output
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert not (workspace / "bad-runs").exists()  # nothing written
    with pytest.raises(ConfigError, match=message.split(":")[0].replace("[", r"\[")
                       .replace("]", r"\]")):
        load_config(path)


def test_every_problem_is_reported_at_once(workspace: Path) -> None:
    path = _variant(workspace, "bad2.toml", {'margin = 0.3': 'margin = "high"',
                                             'engine = "pandas"': 'engine = "sqlite"'})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert "input.engine: expected 'pandas', 'duckdb' or 'spark', got 'sqlite'" in text
    assert "valuation.margin" in text and "2 problem(s)" in text


def test_large_forecasts_are_partitioned(workspace: Path, first_run: Path) -> None:
    path = _variant(workspace, "parts.toml", {
        'partition_rows = 1000000': 'partition_rows = 1000',
        'holdout = "13W"': 'holdout = "13W"\nenabled = false',
        '"../reports/runs"': '"../part-runs"'})
    result = _invoke("run", str(path))
    assert result.exit_code == 0, result.output
    d = workspace / "part-runs" / "cdnow" / "1997-12-31"
    parts = sorted((d / "forecasts" / "bgnbd").glob("*.parquet"))
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet",
                                       "part-00002.parquet"]
    whole = pd.read_parquet(first_run / "forecasts" / "bgnbd.parquet")
    joined = pd.concat([pd.read_parquet(p) for p in parts])
    pd.testing.assert_frame_equal(joined, whole)
    assert not (d / "report").exists()
    m = json.loads((d / "manifest.json").read_text())
    assert m["models"]["bgnbd"]["forecast"] == [f"forecasts/bgnbd/{p.name}" for p in parts]


def test_a_failing_step_leaves_nothing(workspace: Path) -> None:
    # the comparison's holdout reaches back before the first transaction: the report step
    # fails after the forecasts were written to the hidden staging folder
    path = _variant(workspace, "fail.toml", {'holdout = "13W"': 'holdout = "200W"',
                                             '"../reports/runs"': '"../fail-runs"'})
    result = _invoke("run", str(path))
    assert result.exit_code == 1, result.output
    assert result.stderr.count("Error:") == 1
    assert not (workspace / "fail-runs").exists()


def test_interrupt_exits_130_leaving_nothing(workspace: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(execute_module, "_reports", interrupted)
    path = _variant(workspace, "stop.toml", {'"../reports/runs"': '"../stop-runs"'})
    result = _invoke("run", str(path))
    assert result.exit_code == 130
    assert "Interrupted." in result.stderr
    assert not (workspace / "stop-runs").exists()


def test_a_later_run_tracks_the_previous_forecast(workspace: Path, first_run: Path) -> None:
    config = workspace / "examples" / "cdnow_run.toml"
    result = _invoke("run", str(config), "--observation-end", "1998-06-30")
    assert result.exit_code == 0, result.output
    d = first_run.parent / "1998-06-30"
    assert "Tracking the forecast of 1997-12-31" in result.stderr
    m = json.loads((d / "manifest.json").read_text())
    assert m["previous_run"] == str(first_run)
    assert m["config"]["input"]["observation_end"] == "1998-06-30"
    tracking = pd.read_csv(d / "tracking.csv")
    assert list(tracking.columns) == ["model", "customer_id", "predicted_purchases",
                                      "actual_purchases", "predicted_revenue",
                                      "actual_revenue"]
    assert set(tracking["model"]) == {"bgnbd", "pnbd"}
    assert (tracking.groupby("model").size() == 2357).all()
    assert tracking.notna().all().all()

    # actuals: what the customers did in (1997-12-31, 1998-06-30], from the library
    split = calibration_holdout_split(workspace / "transactions.csv",
                                      calibration_end="1997-12-31",
                                      observation_end="1998-06-30")
    bg = tracking[tracking["model"] == "bgnbd"].set_index("customer_id")
    y = split["frequency_holdout"].reindex(bg.index)
    np.testing.assert_array_equal(bg["actual_purchases"].to_numpy(), y.to_numpy())
    revenue = (split["frequency_holdout"] * split["monetary_value_holdout"]).reindex(bg.index)
    np.testing.assert_allclose(bg["actual_revenue"].to_numpy(), revenue.to_numpy())
    assert bg["actual_purchases"].sum() > 0
    # predictions: the previous run's saved model over the 26 weeks since
    previous = pd.read_parquet(first_run / "forecasts" / "bgnbd.parquet")
    model = load_model(first_run / "models" / "bgnbd.json")
    weeks = (pd.Timestamp("1998-06-30") - pd.Timestamp("1997-12-31")).days / 7
    expected = np.asarray(model.expected_purchases(previous.loc[bg.index], weeks), dtype=float)
    np.testing.assert_allclose(bg["predicted_purchases"].to_numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(bg["predicted_revenue"].to_numpy(),
                               expected * previous.loc[bg.index, "expected_spend"].to_numpy())
    # totals in the manifest and the report section
    totals = {t["model"]: t for t in m["outputs"]["tracking"]["totals"]}
    assert totals["bgnbd"]["actual_purchases"] == pytest.approx(float(y.sum()))
    assert totals["bgnbd"]["purchases_error"] == pytest.approx(
        expected.sum() / y.sum() - 1)
    assert abs(totals["bgnbd"]["purchases_error"]) < 0.25  # BG/NBD tracks CDNOW closely
    html = (d / "report" / "report.html").read_text(encoding="utf-8")
    assert html.count('<section id="tracking">') == 1
    assert '<a href="#tracking">Forecast tracking</a>' in html
    assert html.index('id="tracking"') < html.index('<section id="configuration">')
    assert 'id="fig-tracking"' in html and "data:image/png;base64," in html
    png = (d / "figures" / "tracking.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    # the first run has no previous one, so stays untracked
    assert not (first_run / "tracking.csv").exists()


def test_a_glob_of_files_with_duckdb_gives_the_same_forecast(
        workspace: Path, first_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB summarises the files itself: the transactions are never read into pandas
    whole; the report reads only the columns it needs (id, date, amount)."""
    frame = pd.read_csv(workspace / "transactions.csv")
    parts = workspace / "parts"
    parts.mkdir()
    half = len(frame) // 2
    frame.iloc[:half].to_csv(parts / "a.csv", index=False)
    frame.iloc[half:].to_csv(parts / "b.csv", index=False)
    inputs = importlib.import_module("clvmodels.runs.inputs")
    reads: list[object] = []
    real = inputs._read
    monkeypatch.setattr(inputs, "_read", lambda p, cols: reads.append(cols) or real(p, cols))
    path = _variant(workspace, "glob.toml", {
        'path = "../transactions.csv"': 'path = "../parts/*.csv"',
        'engine = "pandas"': 'engine = "duckdb"',
        '"../reports/runs"': '"../glob-runs"'})
    result = _invoke("run", str(path))
    assert result.exit_code == 0, result.output
    assert "Summarising transactions with duckdb" in result.stderr
    assert reads == [["customer_id", "date", "amount"]] * 2  # the report's columns, per file
    d = workspace / "glob-runs" / "cdnow" / "1997-12-31"
    m = json.loads((d / "manifest.json").read_text())
    assert [Path(f["path"]).name for f in m["input"]["files"]] == ["a.csv", "b.csv"]
    assert m["input"]["rows"] == len(frame) and m["engine"] == "duckdb"
    assert m["row_counts"]["customers"] == 2357
    got = pd.read_parquet(d / "forecasts" / "bgnbd.parquet")
    want = pd.read_parquet(first_run / "forecasts" / "bgnbd.parquet")
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9)
    got_m = pd.read_csv(d / "report" / "metrics.csv", index_col=0)
    want_m = pd.read_csv(first_run / "report" / "metrics.csv", index_col=0)
    cols = ["mae", "rmse", "log_likelihood"]
    pd.testing.assert_frame_equal(got_m[cols], want_m[cols], rtol=1e-9)
    # a glob of CSV and Parquet files is refused up front for DuckDB (pandas reads both)
    frame.iloc[half:].to_parquet(parts / "b.parquet", index=False)
    mixed = _variant(workspace, "mixed.toml", {
        'path = "../transactions.csv"': 'path = "../parts/*"',
        'engine = "pandas"': 'engine = "duckdb"', '"../reports/runs"': '"../mixed-runs"'})
    with pytest.raises(ConfigError, match=r"input\.path: .* matches both CSV and Parquet"):
        load_config(mixed)


def test_strict_exits_2_on_sampling_problems_writing_nothing(
        workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a sampling problem reported by the fits' diagnostics (stood in for here: the MLE fits
    # have none, and a failing Bayesian fit takes minutes)
    monkeypatch.setattr(execute_module, "convergence_lines",
                        lambda models: ["bgnbd: R-hat up to 1.2 (> 1.01)"])
    path = _variant(workspace, "strict.toml", {'"../reports/runs"': '"../strict-runs"',
                                               'holdout = "13W"': 'enabled = false'})
    result = _invoke("run", str(path), "--strict")
    assert result.exit_code == 2, result.output
    assert "Sampling problem: bgnbd: R-hat up to 1.2" in result.stderr
    assert "--strict" in result.stderr and "nothing was written" in result.stderr
    assert not (workspace / "strict-runs").exists()
    # without --strict the problem is a line of the manifest
    result = _invoke("run", str(path))
    assert result.exit_code == 0, result.output
    m = json.loads((workspace / "strict-runs" / "cdnow" / "1997-12-31" / "manifest.json")
                   .read_text())
    assert m["sampling_problems"] == ["bgnbd: R-hat up to 1.2 (> 1.01)"]
