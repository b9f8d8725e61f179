"""The command line at its edges (issue 9): all outputs or none, Ctrl-C, warnings as one line,
80-column tables, progress lines when piped, and plain grammar."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

import clvmodels.report as report_module
import clvmodels.rfm as rfm_module
from clvmodels._io import staged_directory, write_files
from clvmodels.cli import app
from clvmodels.cli.tables import forecast_overview, metrics_table, params_table, rfm_overview
from clvmodels.evaluation import compare_models
from clvmodels.models.base import ConvergenceWarning
from clvmodels.workflow import forecast

runner = CliRunner()
CAL, HOLD = "1997-09-30", "1998-06-30"


def _files(directory: Path) -> list[str]:
    """Every file under ``directory`` (hidden ones too), relative."""
    if not directory.exists():
        return []
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


@pytest.fixture
def cdnow_csv(tmp_path: Path, cdnow_transactions: pd.DataFrame) -> Path:
    path = tmp_path / "tx.csv"
    cdnow_transactions[["customer_id", "date", "amount"]].to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------------------
# all outputs or none
# --------------------------------------------------------------------------------------


def test_fit_spend_without_amounts_writes_nothing(tmp_path: Path, cdnow_rfm) -> None:
    rfm_path = tmp_path / "rfm.parquet"
    cdnow_rfm.drop(columns="monetary_value").to_parquet(rfm_path)
    out = tmp_path / "models" / "model.json"
    res = runner.invoke(app, ["fit", str(rfm_path), "--spend", "gammagamma", "--out", str(out)])
    assert res.exit_code == 1
    assert "monetary_value" in res.stderr and "Traceback" not in res.output
    # the transaction model was fitted, but nothing was written: not model.json either
    assert _files(tmp_path) == ["rfm.parquet"]


def test_fit_failure_keeps_existing_files(tmp_path: Path, cdnow_rfm) -> None:
    rfm_path = tmp_path / "rfm.parquet"
    cdnow_rfm.to_parquet(rfm_path)
    out = tmp_path / "model.json"
    out.write_text("old model")
    bare = tmp_path / "bare.parquet"
    cdnow_rfm.drop(columns="monetary_value").to_parquet(bare)
    res = runner.invoke(app, ["fit", str(bare), "--spend", "gammagamma", "--out", str(out),
                              "--force"])
    assert res.exit_code == 1
    assert out.read_text() == "old model"
    assert _files(tmp_path) == ["bare.parquet", "model.json", "rfm.parquet"]


def test_write_files_all_or_none(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "sub" / "b.txt"

    def boom(path: Path) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_files({a: lambda p: p.write_text("A"), b: boom})
    assert _files(tmp_path) == []  # not a, not the directory made for b, no temporary file
    # an existing file named twice is refused before anything is written
    a.write_text("old")
    with pytest.raises(FileExistsError, match="--force"):
        write_files({b: lambda p: p.write_text("B"), a: lambda p: p.write_text("A")})
    assert _files(tmp_path) == ["a.txt"] and a.read_text() == "old"
    written = write_files({b: lambda p: p.write_text("B"), a: lambda p: p.write_text("A")},
                          force=True)
    assert written == [b, a] and a.read_text() == "A" and b.read_text() == "B"
    assert _files(tmp_path) == ["a.txt", "sub/b.txt"]


def test_write_files_interrupted_while_moving_restores(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import clvmodels._io as io

    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old a")
    real = io._publish
    calls = []

    def interrupted(tmp: Path, final: Path, *, force: bool) -> None:
        calls.append(final)
        if final == b:
            raise KeyboardInterrupt
        real(tmp, final, force=force)

    monkeypatch.setattr(io, "_publish", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_files({a: lambda p: p.write_text("new a"), b: lambda p: p.write_text("new b")},
                    force=True)
    assert calls == [a, b]
    assert a.read_text() == "old a"  # a was replaced, then restored
    assert _files(tmp_path) == ["a.txt"]


def test_staged_directory(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "run"
    with pytest.raises(RuntimeError), staged_directory(out) as stage:
        (stage / "figures").mkdir()
        (stage / "figures" / "one.png").write_bytes(b"png")
        raise RuntimeError("report failed")
    assert _files(tmp_path) == [] and not (tmp_path / "reports").exists()
    with staged_directory(out) as stage:
        (stage / "figures").mkdir()
        (stage / "figures" / "one.png").write_bytes(b"png")
        (stage / "report.html").write_text("<html>")
    assert _files(tmp_path) == ["reports/run/figures/one.png", "reports/run/report.html"]
    with pytest.raises(FileExistsError), staged_directory(out) as stage:
        (stage / "report.html").write_text("<html> again")
    assert (out / "report.html").read_text() == "<html>"
    assert _files(tmp_path / "reports") == ["run/figures/one.png", "run/report.html"]


def test_compare_interrupted_mid_write_leaves_nothing(
        cdnow_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = report_module.write_report

    def half_written(comparison, out_dir, **kwargs):
        figures = Path(out_dir) / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        (figures / "diagnostics-bgnbd.png").write_bytes(b"png")  # a figure, then Ctrl-C
        raise KeyboardInterrupt

    out = tmp_path / "report"
    args = ["compare", str(cdnow_csv), "--calibration-end", CAL, "--observation-end", HOLD,
            "--models", "bgnbd", "--no-baselines", "--out", str(out)]
    monkeypatch.setattr(report_module, "write_report", half_written)
    res = runner.invoke(app, args)
    assert res.exit_code == 130
    assert res.stderr.splitlines()[-1] == "Interrupted."
    assert not out.exists() and _files(tmp_path) == ["tx.csv"]
    # a complete report, then an interrupted --force run: the first report stays whole
    monkeypatch.setattr(report_module, "write_report", real)
    assert runner.invoke(app, args).exit_code == 0
    before = {name: (out / name).read_bytes() for name in _files(out)}
    assert "report.html" in before and "metrics.csv" in before
    monkeypatch.setattr(report_module, "write_report", half_written)
    assert runner.invoke(app, [*args, "--force"]).exit_code == 130
    assert {name: (out / name).read_bytes() for name in _files(out)} == before


# --------------------------------------------------------------------------------------
# Ctrl-C
# --------------------------------------------------------------------------------------


def test_interrupt_exits_130_with_one_line(cdnow_csv: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(rfm_module, "rfm_summary", interrupted)
    out = tmp_path / "rfm.parquet"
    res = runner.invoke(app, ["rfm", str(cdnow_csv), "--out", str(out)])
    assert res.exit_code == 130
    assert res.stderr.splitlines()[-1] == "Interrupted."
    assert [line for line in res.stderr.splitlines() if not line.endswith(" ...")] == \
        ["Interrupted."]
    assert "Traceback" not in res.output and not out.exists()


def test_duckdb_interrupt_error_counts_as_ctrl_c(cdnow_csv: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def duckdb_interrupted(*args, **kwargs):
        import duckdb  # noqa: F401  (the engine has imported it by then)

        raise RuntimeError("Query interrupted")  # what DuckDB 2 raises after a SIGINT

    monkeypatch.setattr(rfm_module, "rfm_summary", duckdb_interrupted)
    res = runner.invoke(app, ["rfm", str(cdnow_csv), "--out", str(tmp_path / "r.parquet"),
                              "--engine", "duckdb"])
    assert res.exit_code == 130 and res.stderr.splitlines()[-1] == "Interrupted."


_SIGINT_SCRIPT = """
import sys, time
import clvmodels.rfm

def long_step(*args, **kwargs):
    if kwargs.get("engine") == "duckdb":
        # a long query run the way the DuckDB engine runs its queries
        import duckdb
        from clvmodels.engines.duckdb import run_interruptibly
        con = duckdb.connect()
        print("READY", file=sys.stderr, flush=True)
        run_interruptibly(con, lambda: con.sql(
            "select count(*) from range(1000000000000) t(i) where i % 7 = 3").fetchall())
    else:
        print("READY", file=sys.stderr, flush=True)
        time.sleep(120)

clvmodels.rfm.rfm_summary = long_step
from clvmodels.cli import app
sys.argv = ["clvmodels", *sys.argv[1:]]
app()
"""


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
def test_real_sigint(cdnow_csv: Path, tmp_path: Path, engine: str) -> None:
    """A real SIGINT, delivered while pandas-side Python or a DuckDB query runs (the engine's
    queries run in a worker thread the main thread interrupts: see
    :func:`clvmodels.engines.duckdb.run_interruptibly`)."""
    out = tmp_path / "rfm.parquet"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_SIGINT_SCRIPT), "rfm", str(cdnow_csv),
         "--out", str(out), "--engine", engine],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("READY"):
            break
    assert lines and lines[-1] == "READY", lines
    time.sleep(0.5 if engine == "duckdb" else 0.1)
    proc.send_signal(signal.SIGINT)
    try:
        stdout, rest = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, rest = proc.communicate()
        pytest.fail(f"still running 60 s after Ctrl-C; stderr: {rest!r}")
    assert proc.returncode == 130, rest
    assert rest.splitlines() == ["Interrupted."], rest
    assert stdout == "" and not out.exists()


# --------------------------------------------------------------------------------------
# warnings
# --------------------------------------------------------------------------------------


def test_warnings_are_one_line(tmp_path: Path, cdnow_rfm,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    from clvmodels.models.bgnbd import BetaGeo

    real_fit = BetaGeo.fit

    def warning_fit(self, *args, **kwargs):
        warnings.warn("the optimiser stopped early:\n    max |gradient| 1e-3", ConvergenceWarning,
                      stacklevel=2)
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(BetaGeo, "fit", warning_fit)
    rfm_path = tmp_path / "rfm.parquet"
    cdnow_rfm.to_parquet(rfm_path)
    res = runner.invoke(app, ["fit", str(rfm_path), "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    shown = [line for line in res.stderr.splitlines() if "Warning" in line]
    assert shown == ["Warning: the optimiser stopped early: max |gradient| 1e-3"]
    assert ".py" not in res.stderr and "warnings.warn" not in res.stderr


# --------------------------------------------------------------------------------------
# 80 columns, progress lines, grammar
# --------------------------------------------------------------------------------------


def _render(renderable: object, width: int = 80) -> str:
    with open(os.devnull, "w") as sink:
        console = Console(width=width, record=True, file=sink, highlight=False)
        console.print(renderable)
        return console.export_text()


@pytest.fixture(scope="module")
def cdnow_comparison() -> object:
    from clvmodels.datasets import load_cdnow_transactions

    return compare_models(load_cdnow_transactions(), calibration_end=CAL,
                          observation_end=HOLD, time_unit="W",
                          models=["bgnbd", "pnbd", "mbgnbd"])


def test_tables_fit_80_columns(cdnow_transactions, cdnow_comparison) -> None:
    from clvmodels.cli.commands import COMPARE_COLUMNS

    result = forecast(cdnow_transactions, observation_end=CAL, calibration_end=None)
    tables = {
        "metrics": metrics_table(cdnow_comparison, columns=COMPARE_COLUMNS),
        "forecast": forecast_overview(result),
        "params": params_table(result.transaction_model, "BG/NBD"),
        "rfm": rfm_overview(result.rfm),
    }
    for name, table in tables.items():
        text = _render(table, 80)
        assert "…" not in text, (name, text)
        assert max(len(line) for line in text.splitlines()) <= 80, name
    # the metrics: every model and every value shown in full (transposed at 80 columns)
    narrow = _render(tables["metrics"], 80)
    for model in ("bgnbd", "pnbd", "mbgnbd", "historic-clv", "calibration-rate"):
        assert model in narrow
    assert "0.626" in narrow and "0.630" in narrow  # the published correlations
    # and one row per model when the console is wide enough
    wide = _render(tables["metrics"], 200)
    assert any(line.lstrip("│ ").startswith("bgnbd") for line in wide.splitlines())


def test_demo_at_80_columns(tmp_path: Path) -> None:
    res = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo")], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert "…" not in res.stdout
    assert max(len(line) for line in res.stdout.splitlines() if "/" not in line) <= 80
    # piped stderr: each long step says what it does
    for line in ("Loading the bundled CDNOW sample ...",
                 "Fitting BG/NBD + Gamma-Gamma and valuing customers ...",
                 "Comparing models on the holdout and writing the report ..."):
        assert line in res.stderr.splitlines()


def test_progress_lines_when_piped(tmp_path: Path, cdnow_rfm) -> None:
    rfm_path = tmp_path / "rfm.parquet"
    cdnow_rfm.to_parquet(rfm_path)
    res = runner.invoke(app, ["fit", str(rfm_path), "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    assert "Fitting bgnbd on 2,357 customers ..." in res.stderr.splitlines()
    assert res.stderr.splitlines()[0] == f"Reading {rfm_path} ..."


def test_one_customer_grammar(tmp_path: Path) -> None:
    tx = pd.DataFrame({"customer_id": ["a", "a"], "date": ["2020-01-01", "2020-01-05"],
                       "amount": [10.0, 12.0]})
    source = tmp_path / "one.csv"
    tx.to_csv(source, index=False)
    res = runner.invoke(app, ["rfm", str(source), "--out", str(tmp_path / "r.csv"),
                              "--time-unit", "D"])
    assert res.exit_code == 0, res.output
    assert f"Wrote 1 customer to {tmp_path / 'r.csv'}" in res.stdout.replace("\n", "")
    assert "1 customers" not in res.stdout


# --------------------------------------------------------------------------------------
# fits the data cannot identify, fits that do not converge; date formats
# --------------------------------------------------------------------------------------


def test_unidentified_fit_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    rfm = pd.DataFrame({"frequency": [0, 0, 0], "recency": [0.0, 0.0, 0.0],
                        "T": [10.0, 20.0, 30.0]},
                       index=pd.Index(["a", "b", "c"], name="customer_id"))
    rfm.attrs["time_unit"] = "W"
    path = tmp_path / "rfm.parquet"
    rfm.to_parquet(path)
    out = tmp_path / "m.json"
    res = runner.invoke(app, ["fit", str(path), "--out", str(out)])
    assert res.exit_code == 1
    assert "cannot be estimated" in res.stderr and "Traceback" not in res.output
    assert not out.exists()


def test_unconverged_fit_is_not_written_unless_asked(tmp_path: Path, cdnow_rfm,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from clvmodels.models.bgnbd import BetaGeo

    real_fit = BetaGeo.fit

    def boundary_fit(self, *args, **kwargs):
        fitted = real_fit(self, *args, **kwargs)
        fitted.converged_ = False
        fitted.convergence_reason_ = "b runs to infinity (nobody drops out)"
        return fitted

    monkeypatch.setattr(BetaGeo, "fit", boundary_fit)
    path = tmp_path / "rfm.parquet"
    cdnow_rfm.to_parquet(path)
    out = tmp_path / "m.json"
    res = runner.invoke(app, ["fit", str(path), "--spend", "gammagamma", "--out", str(out)])
    assert res.exit_code == 1
    assert "did not converge" in res.stderr and "b runs to infinity" in res.stderr
    assert "--allow-unconverged" in res.stderr
    assert _files(tmp_path) == ["rfm.parquet"]
    res = runner.invoke(app, ["fit", str(path), "--spend", "gammagamma", "--out", str(out),
                              "--allow-unconverged"])
    assert res.exit_code == 0, res.output
    assert _files(tmp_path) == ["m.gammagamma.json", "m.json", "rfm.parquet"]


def test_rfm_date_options(tmp_path: Path) -> None:
    tx = pd.DataFrame({"customer_id": ["a", "a", "b", "b"],
                       "date": ["01/03/2024", "15/03/2024", "02/03/2024", "05/04/2024"],
                       "amount": [1.0, 2.0, 3.0, 4.0]})
    source = tmp_path / "tx.csv"
    tx.to_csv(source, index=False)
    day_first = tmp_path / "dayfirst.parquet"
    res = runner.invoke(app, ["rfm", str(source), "--time-unit", "D", "--dayfirst",
                              "--out", str(day_first)])
    assert res.exit_code == 0, res.output
    rfm = pd.read_parquet(day_first)
    assert rfm.loc["a", "recency"] == 14  # 1 March -> 15 March, not 3 January
    by_format = tmp_path / "format.parquet"
    res = runner.invoke(app, ["rfm", str(source), "--time-unit", "D", "--date-format",
                              "%d/%m/%Y", "--out", str(by_format)])
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(pd.read_parquet(by_format), rfm)
    # month-first cannot read 15/03/2024: refused, naming the column, nothing written
    month_first = tmp_path / "monthfirst.parquet"
    res = runner.invoke(app, ["rfm", str(source), "--time-unit", "D", "--monthfirst",
                              "--out", str(month_first)])
    assert res.exit_code == 1 and "'date'" in res.stderr and not month_first.exists()
