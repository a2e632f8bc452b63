"""Append-only, gzip-compressed shards of the bundled dataset.

The bundled dataset lives in ``mlircost_classic/data/`` as files
``<kind>-<nnnnn>.jsonl.gz`` (``kind`` is ``modules`` or ``kernels``). Growing
the dataset adds shard files; a committed shard is never rewritten, so the
history of the data stays reviewable and a wheel built from an older commit
holds a prefix of the newer dataset. :func:`pack` turns a collection run's
JSON Lines files into new shards holding only records not bundled yet.
"""

from __future__ import annotations

import gzip
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ._jsonl import iter_records, read_records
from ._schema import canonical_json, validate_record

__all__ = [
    "KINDS",
    "PackResult",
    "get_data_home",
    "shard_paths",
    "iter_dataset",
    "pack",
]

#: Dataset kinds: the plural used in file names and ``load_dataset``.
KINDS = ("modules", "kernels")
_RECORD_KIND = {"modules": "module", "kernels": "kernel"}


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """The folder holding the shards: ``data_home`` or the bundled one."""
    if data_home is not None:
        return Path(data_home)
    return Path(__file__).resolve().parent.parent / "data"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def shard_paths(kind: str, data_home: str | os.PathLike | None = None) -> list[Path]:
    """The shard files of one kind, in the order they were added."""
    _check_kind(kind)
    pattern = re.compile(rf"{kind}-(\d{{5}})\.jsonl\.gz")
    home = get_data_home(data_home)
    if not home.is_dir():
        return []
    found = [p for p in home.iterdir() if pattern.fullmatch(p.name)]
    return sorted(found, key=lambda p: int(pattern.fullmatch(p.name).group(1)))


def iter_dataset(
    kind: str,
    data_home: str | os.PathLike | None = None,
    problems: list[str] | None = None,
) -> Iterator[dict]:
    """Yield the records of one kind.

    Reads the shards of ``data_home``; a folder without shards but with a
    collection run's ``<kind>.jsonl`` (what :func:`~mlircost_classic.collect.collect`
    writes) is read instead, so a fresh run can be loaded before packing.

    Raises
    ------
    FileNotFoundError
        When there is neither.
    """
    paths = shard_paths(kind, data_home)
    home = get_data_home(data_home)
    if not paths and (home / f"{kind}.jsonl").is_file():
        paths = [home / f"{kind}.jsonl"]
    if not paths:
        raise FileNotFoundError(
            f"no {kind} dataset in {home}: expected shard files "
            f"'{kind}-00000.jsonl.gz' (made by mlircost_classic.datasets.pack) "
            f"or a collection run's '{kind}.jsonl'"
        )
    for path in paths:
        yield from iter_records(path, problems)


@dataclass
class PackResult:
    """What :func:`pack` did.

    Attributes
    ----------
    new_shards : list of Path
        Shard files written (empty when there was nothing new).
    added : dict
        kind -> number of records added.
    already_bundled : dict
        kind -> records skipped because their id is in the bundle already.
    invalid : list of str
        Records refused by :func:`validate_record`, with the reason.
    problems : list of str
        Unreadable lines of the input (torn last line ...), skipped.
    """

    new_shards: list[Path] = field(default_factory=list)
    added: dict[str, int] = field(default_factory=dict)
    already_bundled: dict[str, int] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _write_shard(path: Path, records: list[dict]) -> None:
    data = "".join(canonical_json(r) + "\n" for r in records).encode("utf-8")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as raw:
            # mtime=0 and no file name: the same records give the same bytes.
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
                gz.write(data)
            raw.flush()
            os.fsync(raw.fileno())
        # link() fails if the name exists, so a committed shard is never
        # replaced even by two packers racing for the same number.
        os.link(tmp, path)
    finally:
        os.unlink(tmp)


def pack(
    run_dir: str | os.PathLike,
    data_home: str | os.PathLike | None = None,
    *,
    shard_records: int = 2000,
) -> PackResult:
    """Add a collection run's new records to the bundled dataset as new shards.

    Parameters
    ----------
    run_dir : path-like
        Folder holding ``modules.jsonl`` and/or ``kernels.jsonl``.
    data_home : path-like, optional
        Shard folder; default the package's ``data/`` folder.
    shard_records : int, default=2000
        Most records per new shard file.

    Returns
    -------
    PackResult
        Packing twice adds nothing the second time; existing shards are
        left untouched byte for byte.
    """
    if shard_records < 1:
        raise ValueError(f"shard_records must be >= 1, got {shard_records}")
    home = get_data_home(data_home)
    home.mkdir(parents=True, exist_ok=True)
    result = PackResult()
    for kind in KINDS:
        bundled = set()
        for path in shard_paths(kind, home):
            bundled.update(rec.get("id") for rec in iter_records(path))
        fresh, skipped = [], 0
        for rec in read_records(Path(run_dir) / f"{kind}.jsonl", result.problems):
            problems = validate_record(rec)
            if not problems and rec["kind"] != _RECORD_KIND[kind]:
                problems = [f"a {rec['kind']} record in {kind}.jsonl"]
            if problems:
                result.invalid.append(f"{kind} {rec.get('id')}: {'; '.join(problems)}")
            elif rec["id"] in bundled:
                skipped += 1
            else:
                bundled.add(rec["id"])
                fresh.append(rec)
        existing = shard_paths(kind, home)
        number = 0
        if existing:
            number = int(existing[-1].name[len(kind) + 1 : len(kind) + 6]) + 1
        for start in range(0, len(fresh), shard_records):
            path = home / f"{kind}-{number:05d}.jsonl.gz"
            _write_shard(path, fresh[start : start + shard_records])
            result.new_shards.append(path)
            number += 1
        result.added[kind] = len(fresh)
        result.already_bundled[kind] = skipped
    return result
