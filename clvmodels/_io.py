"""Writing output files safely: an overwrite guard and atomic replacement.

Every file the command line writes goes through :func:`atomic_path`: the content is written
to a hidden temporary file in the destination's own directory and moved into place with
:func:`os.replace`, so a reader never sees a half-written file and a failure leaves the old
file (if any) untouched and no temporary file behind. Without ``force`` an existing file is
never replaced.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

__all__ = [
    "FRAME_FORMATS",
    "atomic_path",
    "check_output_path",
    "frame_format",
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
