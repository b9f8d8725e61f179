"""The ``clvmodels`` command line (typer), and the atomic-write helpers it uses."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from typer.testing import CliRunner

from clvmodels import __version__, rfm_summary
from clvmodels._io import atomic_path, frame_format, write_frame, write_text
from clvmodels.cli import DEMO_STEPS, app

runner = CliRunner()


def _leftovers(directory: Path) -> list[str]:
    """Temporary files left behind by an atomic write (hidden ``*.tmp*`` files)."""
    return sorted(p.name for p in directory.iterdir() if ".tmp" in p.name)


@pytest.fixture
def tx_files(tmp_path: Path, cdnow_transactions: pd.DataFrame) -> dict[str, Path]:
    """The CDNOW sample as a CSV file and as a Parquet file."""
    csv = tmp_path / "tx.csv"
    parquet = tmp_path / "tx.parquet"
    cdnow_transactions.to_csv(csv, index=False)
    cdnow_transactions.to_parquet(parquet, index=False)
    return {"csv": csv, "parquet": parquet}


@pytest.fixture
def bad_csv(tmp_path: Path, tiny_transactions: pd.DataFrame) -> Path:
    """Transactions whose amount is missing on one row (row label 3)."""
    tx = tiny_transactions.copy()
    tx.loc[3, "amount"] = None
    path = tmp_path / "bad.csv"
    tx.to_csv(path, index=False)
    return path


def _read(path: Path) -> pd.DataFrame:
    """Read an RFM file written by the command line (CSV or Parquet)."""
    if path.suffix == ".csv":
        return pd.read_csv(path, index_col="customer_id")
    return pd.read_parquet(path)


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"clvmodels {__version__}"


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "rfm" in result.stdout and "demo" in result.stdout


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
@pytest.mark.parametrize("source", ["csv", "parquet"])
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_rfm_command(
    tmp_path: Path, tx_files: dict[str, Path], cdnow_rfm: pd.DataFrame,
    engine: str, source: str, suffix: str,
) -> None:
    out = tmp_path / "out" / f"rfm{suffix}"
    result = runner.invoke(
        app,
        ["rfm", str(tx_files[source]), "--out", str(out), "--observation-end", "1997-09-30",
         "--time-unit", "W", "--engine", engine],
    )
    assert result.exit_code == 0, result.output
    assert out.is_file()
    assert _leftovers(out.parent) == []
    written = _read(out)
    assert_frame_equal(written, cdnow_rfm, check_dtype=False, atol=1e-12)
    if suffix == ".parquet":
        assert written.attrs.get("time_unit") == "W"  # the unit travels with the file
    assert "2,357" in result.stdout  # customers
    assert "2,457" in result.stdout  # repeat transactions
    assert str(out) in result.stdout.replace("\n", "")


def test_rfm_command_options(tmp_path: Path, tiny_transactions: pd.DataFrame) -> None:
    renamed = tiny_transactions.rename(
        columns={"customer_id": "cust", "date": "ts", "amount": "value"}
    )
    renamed.loc[3, "value"] = -30.0
    source = tmp_path / "tx.csv"
    renamed.to_csv(source, index=False)
    out = tmp_path / "rfm.parquet"
    args = ["rfm", str(source), "--out", str(out), "--customer-id", "cust", "--date", "ts",
            "--amount", "value", "--time-unit", "D", "--observation-end", "2020-01-31"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1
    assert "'value'" in refused.output and "negative" in refused.output
    assert not out.exists()
    result = runner.invoke(app, [*args, "--negative-amounts", "drop"])
    assert result.exit_code == 0, result.output
    expected = rfm_summary(renamed, customer_id_col="cust", datetime_col="ts",
                           monetary_value_col="value", time_unit="D",
                           observation_end="2020-01-31", negative_amounts="drop")
    assert_frame_equal(pd.read_parquet(out), expected, check_dtype=False)
    no_amount = tmp_path / "no_amount.parquet"
    result = runner.invoke(app, [*args[:-8], "--no-amount", "--out", str(no_amount),
                                 "--customer-id", "cust", "--date", "ts"])
    assert result.exit_code == 0, result.output
    assert list(pd.read_parquet(no_amount).columns) == ["frequency", "recency", "T"]


def test_rfm_refuses_to_overwrite(tmp_path: Path, tx_files: dict[str, Path]) -> None:
    out = tmp_path / "rfm.parquet"
    out.write_bytes(b"precious")
    args = ["rfm", str(tx_files["csv"]), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "already exists" in result.output and "--force" in result.output
    assert "Traceback" not in result.output
    assert out.read_bytes() == b"precious"
    assert _leftovers(tmp_path) == []
    result = runner.invoke(app, [*args, "--force"])
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(out)) == 2357
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
def test_rfm_bad_input(tmp_path: Path, bad_csv: Path, engine: str) -> None:
    out = tmp_path / "rfm.parquet"
    result = runner.invoke(app, ["rfm", str(bad_csv), "--out", str(out), "--engine", engine])
    assert result.exit_code == 1
    assert "'amount'" in result.stderr  # the column, on stderr
    # the offending row (a's purchase of 2020-01-29) is shown; engines label it differently
    # (pandas: the row's index; duckdb: the file), so look for its contents
    assert re.search(r"^.*\ba\b.*2020-01-29.*$", result.stderr, flags=re.MULTILINE)
    assert "1 offending row" in result.stderr
    assert "Traceback" not in result.output
    # piped stderr: plain progress lines, then the error paragraph
    lines = result.stderr.splitlines()
    error_at = next(i for i, line in enumerate(lines) if line.startswith("Error:"))
    assert error_at >= 1 and all(line.endswith(" ...") for line in lines[:error_at])
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_rfm_missing_column(tmp_path: Path, tx_files: dict[str, Path]) -> None:
    out = tmp_path / "rfm.csv"
    result = runner.invoke(app, ["rfm", str(tx_files["csv"]), "--out", str(out),
                                 "--date", "purchase_date"])
    assert result.exit_code == 1
    assert "'purchase_date'" in result.output
    assert not out.exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--observation-end", "someday"], "observation_end"),
        (["--observation-end", "1990-01-01"], "before every transaction"),
    ],
)
def test_rfm_bad_options(
    tmp_path: Path, tx_files: dict[str, Path], extra: list[str], expected: str
) -> None:
    out = tmp_path / "rfm.parquet"
    result = runner.invoke(app, ["rfm", str(tx_files["parquet"]), "--out", str(out), *extra])
    assert result.exit_code == 1
    assert expected in result.output
    assert not out.exists()


def test_rfm_missing_input(tmp_path: Path) -> None:
    out = tmp_path / "rfm.parquet"
    result = runner.invoke(app, ["rfm", str(tmp_path / "nope.csv"), "--out", str(out)])
    assert result.exit_code == 1
    assert "nope.csv" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_rfm_unknown_output_format(tmp_path: Path, tx_files: dict[str, Path]) -> None:
    out = tmp_path / "rfm.xlsx"
    result = runner.invoke(app, ["rfm", str(tx_files["csv"]), "--out", str(out)])
    assert result.exit_code == 1
    assert ".parquet" in result.output
    assert not out.exists()


def test_rfm_usage_errors() -> None:
    assert runner.invoke(app, ["rfm", "x.csv"]).exit_code == 2  # --out is required
    result = runner.invoke(app, ["rfm", "x.csv", "--out", "o.csv", "--time-unit", "H"])
    assert result.exit_code == 2


def test_demo(tmp_path: Path, cdnow_split: pd.DataFrame) -> None:
    out = tmp_path / "reports" / "cdnow"
    result = runner.invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = pd.read_parquet(out / "rfm.parquet")
    assert_frame_equal(written, cdnow_split)
    assert written.attrs["time_unit"] == "W"
    text = result.stdout
    for number in ["2,357", "2,457", "1,411", "59.9%", "1,882"]:
        assert number in text
    for count in ["439", "214", "100", "62", "38", "29", "64"]:  # the histogram
        assert count in text
    assert str(out / "rfm.parquet") in text.replace("\n", "")
    # running it again refuses to replace the outputs without --force, like every command
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = runner.invoke(app, ["demo", "--out", str(out)])
    assert again.exit_code == 1
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    forced = runner.invoke(app, ["demo", "--out", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert _leftovers(out) == [] and _leftovers(out.parent) == []


def test_demo_out_is_a_file(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.write_text("not a directory")
    result = runner.invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 1
    assert "not a directory" in result.output


def test_demo_steps_are_extensible() -> None:
    assert [callable(step) for _, step in DEMO_STEPS] == [True] * len(DEMO_STEPS)
    assert all(isinstance(description, str) for description, _ in DEMO_STEPS)


# --------------------------------------------------------------------------------------
# clvmodels._io
# --------------------------------------------------------------------------------------


def test_atomic_path_success_and_failure(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent
        assert tmp.suffix == ".txt"  # writers that infer the format still work
        tmp.write_text("one")
        assert not target.exists()  # nothing visible until the block succeeds
    assert target.read_text() == "one"
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target, force=True) as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("boom")
    assert target.read_text() == "one"
    assert _leftovers(target.parent) == []


def test_atomic_path_overwrite_guard(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    write_text("old", target)
    with pytest.raises(FileExistsError, match="--force"):
        write_text("new", target)
    assert target.read_text() == "old"
    write_text("new", target, force=True)
    assert target.read_text() == "new"
    # a file that appears while the content is being written is not clobbered either
    late = tmp_path / "late.txt"
    with pytest.raises(FileExistsError), atomic_path(late) as tmp:
        tmp.write_text("mine")
        late.write_text("theirs")
    assert late.read_text() == "theirs"
    assert _leftovers(tmp_path) == []
    with pytest.raises(IsADirectoryError):
        write_text("x", tmp_path)


def test_write_frame_formats(tmp_path: Path, cdnow_rfm: pd.DataFrame) -> None:
    assert frame_format("a.PARQUET") == "parquet"
    assert frame_format("a.csv") == "csv"
    with pytest.raises(ValueError, match="extension"):
        frame_format("a.json")
    write_frame(cdnow_rfm, tmp_path / "r.parquet")
    assert_frame_equal(pd.read_parquet(tmp_path / "r.parquet"), cdnow_rfm)
    write_frame(cdnow_rfm, tmp_path / "r.csv")
    assert_frame_equal(pd.read_csv(tmp_path / "r.csv", index_col="customer_id"), cdnow_rfm,
                       check_dtype=False, atol=1e-12)
    with pytest.raises(ValueError, match="extension"):
        write_frame(cdnow_rfm, tmp_path / "r.txt")
    assert not (tmp_path / "r.txt").exists()
    assert _leftovers(tmp_path) == []
