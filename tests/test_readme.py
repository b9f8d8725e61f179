"""Every code block of the README runs verbatim, in order, in a fresh copy of the repository.

The copy holds the files a clone has (``git ls-files``, plus new files not yet committed) and
the project's ``.venv`` (linked, so ``make`` finds it installed and does not reinstall).
Blocks run in the README's order, as a reader would paste them: ``bash`` blocks with bash
(``-e -o pipefail``, the venv's ``bin`` first on ``PATH``), ``python`` blocks one after
another in one Python session. A block preceded by ``<!-- not-run: reason -->`` is not run,
and the reason is reported; a ``text`` block preceded by ``<!-- output-of: COMMAND -->`` must
appear in what the bash block running ``COMMAND`` printed (the README shows what the demo
prints). Any other block language fails the test: the README's blocks are either run or
explicitly not.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
VENV = ROOT / ".venv"

RUN_LANGUAGES = {"bash", "sh", "python"}
OUTPUT_LANGUAGES = {"text"}
_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"^<!--\s*(not-run|output-of):\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    """One fenced code block of the README."""

    language: str
    code: str
    line: int  # 1-based line of the opening fence
    not_run: str | None = None  # the reason, when marked <!-- not-run: ... -->
    output_of: str | None = None  # the command whose output this text block shows


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text`` with their markers (the comment line just above)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start = i
        language = match.group(1)
        body = []
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"README.md:{start + 1}: unclosed code block")
        block = Block(language, "\n".join(body) + "\n", start + 1)
        above = start - 1
        while above >= 0 and not lines[above].strip():
            above -= 1
        marker = _MARKER.match(lines[above]) if above >= 0 else None
        if marker:
            kind, value = marker.groups()
            if kind == "not-run":
                block.not_run = value
            else:
                block.output_of = value
        blocks.append(block)
        i += 1
    return blocks


def test_readme_blocks_are_parsed() -> None:
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "the README has no code blocks"
    for b in blocks:
        assert b.language in RUN_LANGUAGES | OUTPUT_LANGUAGES, (
            f"README.md:{b.line}: a ```{b.language or '(no language)'} block: use bash, "
            "python or text (program output)")
        if b.not_run is not None:
            assert b.not_run, f"README.md:{b.line}: <!-- not-run --> needs a reason"
        if b.language in OUTPUT_LANGUAGES:
            assert b.not_run is None
    # the README shows how to get a real file, and the Python and shell sides both
    assert any("clvmodels datasets cdnow" in b.code for b in blocks)
    assert {b.language for b in blocks if b.not_run is None} >= {"bash", "python"}


def _fresh_copy(dest: Path) -> None:
    """The files of a clone (tracked, and new files not ignored) under ``dest``, .venv linked."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if not source.is_file():
            continue  # deleted in the working tree
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    (dest / ".venv").symlink_to(VENV, target_is_directory=True)
    # make's stamp: the installed venv is newer than this pyproject.toml (no reinstall)
    os.utime(dest / "pyproject.toml", (0, 0))


_PYTHON_DRIVER = textwrap.dedent('''
    import sys, traceback
    namespace = {"__name__": "__main__"}
    for request in sys.stdin:
        path, label = request.rstrip("\\n").split("\\t")
        with open(path, encoding="utf-8") as f:
            source = f.read()
        try:
            exec(compile(source, label, "exec"), namespace)
        except BaseException:
            traceback.print_exc()
            print("@@BLOCK-FAILED@@", flush=True)
        else:
            print("@@BLOCK-DONE@@", flush=True)
        sys.stderr.flush()
''')


class PythonSession:
    """One Python process running the README's python blocks in a shared namespace."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.proc = subprocess.Popen(
            [str(VENV / "bin" / "python"), "-u", "-c", _PYTHON_DRIVER], cwd=cwd, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def run(self, block: Block) -> tuple[bool, str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        path = self.cwd / f".readme-block-{block.line}.py"
        path.write_text(block.code, encoding="utf-8")
        self.proc.stdin.write(f"{path}\tREADME.md:{block.line}\n")
        self.proc.stdin.flush()
        out = []
        for line in self.proc.stdout:
            if line.startswith("@@BLOCK-"):
                path.unlink()
                return line.startswith("@@BLOCK-DONE@@"), "".join(out)
            out.append(line)
        return False, "".join(out) + "\n(the Python session ended)"

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _normalise(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


@pytest.mark.slow
def test_readme_runs_verbatim(tmp_path: Path) -> None:
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    work = tmp_path / "clone"
    _fresh_copy(work)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(PATH=f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}", MPLBACKEND="Agg",
               COLUMNS="80", PYTHONDONTWRITEBYTECODE="1")
    session = PythonSession(work, env)
    outputs: dict[int, str] = {}
    not_run = []
    try:
        for block in blocks:
            if block.language in OUTPUT_LANGUAGES:
                continue
            if block.not_run is not None:
                not_run.append(f"README.md:{block.line} ({block.code.strip()}): {block.not_run}")
                continue
            started = time.perf_counter()
            if block.language == "python":
                ok, out = session.run(block)
            else:
                proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.code],
                                      cwd=work, env=env, capture_output=True, text=True,
                                      timeout=600)
                ok, out = proc.returncode == 0, proc.stdout + proc.stderr
                outputs[block.line] = proc.stdout
            assert ok, f"README.md:{block.line}: the {block.language} block failed:\n{out}"
            print(f"README.md:{block.line}: {block.language} block ran in "
                  f"{time.perf_counter() - started:.1f} s")
    finally:
        session.close()
    for reason in not_run:
        warnings.warn(f"not run: {reason}", stacklevel=1)
    # the output the README shows is the output of its command
    shown = [b for b in blocks if b.output_of is not None]
    assert shown, "the README shows no command output (<!-- output-of: ... -->)"
    by_line = {b.line: b for b in blocks}
    for b in shown:
        runs = [line for line in outputs if b.output_of in by_line[line].code]
        assert runs, f"README.md:{b.line}: no bash block ran {b.output_of!r}"
        printed = _normalise(outputs[runs[0]])
        for expected in _normalise(b.code):
            if expected in ("...", "…"):
                continue
            assert expected in printed, (
                f"README.md:{b.line} shows {expected!r}, which `{b.output_of}` does not "
                "print:\n" + "\n".join(printed))
    # the working copy holds what the blocks promised to write
    assert (work / "transactions.csv").is_file()
    assert (work / "reports" / "cdnow" / "report.html").is_file()
