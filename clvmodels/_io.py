"""Writing output files safely: an overwrite guard and atomic replacement.

Every file the command line writes goes through :func:`atomic_path`: the content is written
to a hidden temporary file in the destination's own directory and moved into place with
:func:`os.replace`, so a reader never sees a half-written file and a failure leaves the old
file (if any) untouched and no temporary file behind. Without ``force`` an existing file is
never replaced.

A command with several outputs writes all of them or none: :func:`write_files` writes each
file beside its destination first and moves them into place only when every one is
written; :func:`staged_directory` does the same for a whole directory of outputs (a report
and its figures). If anything fails or the user interrupts — while computing, writing or
moving — the files already moved are taken back and any file they replaced is restored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

__all__ = [
    "FRAME_FORMATS",
    "atomic_path",
    "check_output_path",
    "frame_format",
    "staged_directory",
    "write_files",
    "write_frame",
    "write_text",
    "write_with",
]

#: File extensions :func:`write_frame` understands, and the format each one means.
FRAME_FORMATS: dict[str, str] = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def frame_format(path: str | os.PathLike[str]) -> str:
    """Table format ("parquet" or "csv") named by the extension of ``path``.

    Raises :class:`ValueError` for any other extension.
    """
    suffix = Path(path).suffix.lower()
    try:
        return FRAME_FORMATS[suffix]
    except KeyError:
        raise ValueError(
            f"cannot tell the output format of {os.fspath(path)!r}: use one of the "
            f"extensions {', '.join(sorted(FRAME_FORMATS))}"
        ) from None


def check_output_path(path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Refuse early to overwrite ``path`` unless ``force``; return it as a :class:`Path`.

    Raises :class:`FileExistsError` when the file exists and ``force`` is false, and
    :class:`IsADirectoryError` when ``path`` is a directory. Call it before any long
    computation so the user learns of the clash at once.
    """
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"output {os.fspath(p)!r} is a directory, not a file")
    if p.exists() and not force:
        raise FileExistsError(
            f"output {os.fspath(p)!r} already exists; pass --force to overwrite it"
        )
    return p


def _temporary_sibling(path: Path) -> Path:
    """A hidden, unused file name next to ``path`` (same directory, so same file system).

    It keeps the extension of ``path`` so writers that infer the format from it still work.
    """
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")


def _publish(tmp: Path, path: Path, *, force: bool) -> None:
    """Move the finished temporary file onto ``path`` atomically."""
    if force:
        os.replace(tmp, path)
        return
    # No clobbering: a hard link fails atomically if ``path`` appeared meanwhile.
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(
            f"output {os.fspath(path)!r} already exists; pass --force to overwrite it"
        ) from None
    except OSError:
        # file system without hard links: check, then replace (a tiny race remains)
        check_output_path(path, force=False)
        os.replace(tmp, path)
    else:
        tmp.unlink()


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, force: bool = False, make_parents: bool = True
) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it atomically becomes ``path``.

    Parameters
    ----------
    path
        Final destination.
    force
        Replace an existing file. Without it :class:`FileExistsError` is raised (before
        anything is written, and again at the end if the file appeared in the meantime).
    make_parents
        Create missing parent directories.

    If the body raises, the temporary file is removed and ``path`` is left as it was.
    """
    final = check_output_path(path, force=force)
    if make_parents:
        final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(final)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"nothing was written to the temporary file for {final}")
        _publish(tmp, final, force=force)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_frame(
    frame: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    index: bool = True,
) -> Path:
    """Write ``frame`` atomically as Parquet or CSV, chosen by the extension of ``path``.

    Parquet keeps ``frame.attrs`` (such as the RFM ``time_unit``) in the file's metadata;
    CSV cannot. Returns the path written.
    """
    fmt = frame_format(path)
    with atomic_path(path, force=force) as tmp:
        if fmt == "parquet":
            frame.to_parquet(tmp, index=index)
        else:
            frame.to_csv(tmp, index=index)
    return Path(path)


def write_text(
    text: str,
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    encoding: str = "utf-8",
) -> Path:
    """Write ``text`` atomically (JSON parameters, HTML reports, ...). Returns the path."""
    with atomic_path(path, force=force) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def write_with(
    writer: Callable[[Path], object],
    path: str | os.PathLike[str],
    *,
    force: bool = False,
) -> Path:
    """Atomically write ``path`` with ``writer(tmp_path)`` (figures, netCDF, ...)."""
    with atomic_path(path, force=force) as tmp:
        writer(tmp)
    return Path(path)


def _publish_all(pairs: list[tuple[Path, Path]], *, force: bool) -> None:
    """Move each finished ``(temporary, final)`` file into place: all of them, or none.

    Every destination is checked first (:func:`check_output_path`). A destination that
    exists (only with ``force``) is first renamed to a hidden backup beside it; if any move
    fails — or the process is interrupted — the files already published are removed again,
    the replaced ones restored, and directories created here removed when left empty. The
    backups are deleted once every file is in place.
    """
    for _, final in pairs:
        check_output_path(final, force=force)
    done: list[tuple[Path, Path | None]] = []
    created: list[Path] = []
    try:
        for tmp, final in pairs:
            missing = [p for p in (final.parent, *final.parent.parents) if not p.exists()]
            final.parent.mkdir(parents=True, exist_ok=True)
            created.extend(reversed(missing))
            backup = None
            if force and final.exists():
                backup = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.bak")
                os.replace(final, backup)
            done.append((final, backup))
            _publish(tmp, final, force=force)
    except BaseException:
        for final, backup in reversed(done):
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, final)
                else:
                    final.unlink(missing_ok=True)
        for directory in reversed(created):
            with contextlib.suppress(OSError):
                directory.rmdir()  # only when empty
        raise
    for _, backup in done:
        if backup is not None:
            with contextlib.suppress(OSError):
                backup.unlink()


def write_files(
    writers: dict[Path, Callable[[Path], object]] | list[tuple[Path, Callable[[Path], object]]],
    *,
    force: bool = False,
) -> list[Path]:
    """Write several files together: all of them, or none.

    ``writers`` maps each destination to a function that writes the content to the path it
    is given (a temporary file beside the destination, with the same extension). Every
    destination is checked before anything is written; the files are moved into place only
    when all of them are written, and a failure (or Ctrl-C) at any point leaves every
    destination as it was. Returns the destinations, in order.
    """
    items = list(writers.items()) if isinstance(writers, dict) else list(writers)
    finals = [Path(p) for p, _ in items]
    if len(set(finals)) != len(finals):
        raise ValueError("the same output path is given twice")
    for final in finals:
        check_output_path(final, force=force)
    pairs: list[tuple[Path, Path]] = []
    created: list[Path] = []
    try:
        for final, (_, writer) in zip(finals, items, strict=True):
            missing = [p for p in (final.parent, *final.parent.parents) if not p.exists()]
            final.parent.mkdir(parents=True, exist_ok=True)
            created.extend(reversed(missing))
            tmp = _temporary_sibling(final)
            pairs.append((tmp, final))
            writer(tmp)
            if not tmp.exists():
                raise RuntimeError(f"nothing was written to the temporary file for {final}")
        _publish_all(pairs, force=force)
    except BaseException:
        for tmp, _ in pairs:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        for directory in reversed(created):
            with contextlib.suppress(OSError):
                directory.rmdir()  # only when empty
        raise
    return finals


@contextlib.contextmanager
def staged_directory(out_dir: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Yield an empty staging directory; on success its files move into ``out_dir``.

    Write every output of a command under the yielded directory (same relative paths as
    under ``out_dir``). When the body succeeds, each file is moved to ``out_dir`` — every
    destination checked first (an existing file is refused unless ``force``), and all moved
    or none (see :func:`write_files`). When the body fails or is interrupted nothing under
    ``out_dir`` changes. The staging directory is a hidden sibling of ``out_dir`` (same file
    system) and is always removed.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {os.fspath(out)!r} exists and is not a directory")
    missing = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    published = False
    try:
        yield stage
        pairs = [(p, out / p.relative_to(stage))
                 for p in sorted(stage.rglob("*")) if p.is_file()]
        _publish_all(pairs, force=force)
        published = True
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if not published:
            for directory in reversed(missing):  # parents created only for the staging
                with contextlib.suppress(OSError):
                    directory.rmdir()
