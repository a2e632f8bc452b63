"""JSON Lines files that survive a writer killed at any moment.

A record is appended as one whole line by a single ``write`` on a file opened
with ``O_APPEND``, under an ``fcntl`` lock (several processes may append to the
same file), and flushed to disk with ``fsync`` before the call returns. If a
writer dies in the middle of a line, the file ends with a *torn* line without
its newline: readers skip it and report it, and the next append starts on a
fresh line so that no good record is glued to the fragment.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import lzma
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from ._schema import canonical_json

__all__ = ["append_records", "iter_records", "read_records"]


def _open(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    if path.suffix == ".xz":
        return lzma.open(path, "rb")
    return open(path, "rb")


def append_records(path: str | os.PathLike, records: Iterable[Mapping]) -> int:
    """Append records to a JSON Lines file, each as one atomic line.

    Parameters
    ----------
    path : path-like
        The file; created when missing.
    records : iterable of mapping
        JSON-serialisable records (NaN and infinities are refused).

    Returns
    -------
    int
        Number of records written.
    """
    lines = [(canonical_json(rec) + "\n").encode("utf-8") for rec in records]
    if not lines:
        return 0
    # O_RDWR rather than O_WRONLY so that pread can look at the last byte.
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size > 0 and os.pread(fd, 1, size - 1) != b"\n":
            lines[0] = b"\n" + lines[0]
        for line in lines:
            _write_all(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(lines)


def _write_all(fd: int, data: bytes) -> None:
    # A regular-file write returns short only on a full disk or a signal;
    # finishing the line keeps it whole for readers.
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def iter_records(
    path: str | os.PathLike, problems: list[str] | None = None
) -> Iterator[dict]:
    """Yield the records of a JSON Lines file (plain, ``.gz`` or ``.xz``).

    Blank lines are ignored. A line that is not a JSON object (a torn last
    line, or damage) is skipped; a description of it is appended to
    ``problems`` when given.
    """
    path = Path(path)
    with _open(path) as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            complete = raw.endswith(b"\n")
            try:
                rec = json.loads(raw)
            except ValueError:
                rec = None
            if isinstance(rec, dict) and complete:
                yield rec
            elif problems is not None:
                what = "torn last line" if not complete else "not a JSON object"
                problems.append(f"{path}:{number}: {what}, skipped")


def read_records(
    path: str | os.PathLike, problems: list[str] | None = None
) -> list[dict]:
    """All records of a JSON Lines file; an absent file reads as empty."""
    if not Path(path).exists():
        return []
    return list(iter_records(path, problems))
