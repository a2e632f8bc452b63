"""Append-only, compressed shards of the bundled dataset.

The bundled dataset lives in ``mlircost_classic/data/`` as files
``<kind>-<nnnnn>.jsonl.xz`` (``kind`` is ``modules``, ``kernels`` or
``variants``). Growing
the dataset adds shard files; a committed shard is never rewritten, so the
history of the data stays reviewable and a wheel built from an older commit
holds a prefix of the newer dataset. :func:`pack` turns a collection run's
JSON Lines files into new shards holding only records not bundled yet.

Shards are xz-compressed (:data:`SHARD_SUFFIX`): its 64 MiB window sees the
MLIR texts that records of one shard share, which gzip's 32 KiB window does
not, and makes shards 2-3x smaller for ~1.3x the time to read them. Shards
written as ``.jsonl.gz`` (by earlier versions, or in a user's data home) are
read as well; :func:`recompress` rewrites them as ``.jsonl.xz`` with the same
records.

Targets measured after a record was bundled (a GPU latency timed later on
another machine) do not rewrite it: they are *amendments* (see
``AMENDMENT_FIELDS``), kept in a run folder's ``amendments.jsonl`` and packed
into their own append-only shards ``amendments-<nnnnn>.jsonl.xz``.
:func:`iter_dataset` merges them into the records by id.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ._jsonl import _open, iter_records, read_records
from ._schema import (
    DEFAULT_SOURCE,
    amendment_key,
    canonical_json,
    validate_amendment,
    validate_record,
)

__all__ = [
    "AMENDMENTS",
    "COST_KINDS",
    "KINDS",
    "SUITES",
    "SUITE_SOURCES",
    "SHARD_SUFFIX",
    "PackResult",
    "apply_amendments",
    "get_data_home",
    "shard_digest",
    "shard_paths",
    "iter_amendments",
    "iter_dataset",
    "pack",
    "recompress",
]

#: Dataset kinds: the plural used in file names and ``load_dataset``.
KINDS = ("modules", "kernels", "variants")
#: The kinds a cost model predicts (variants are ranked within their group).
COST_KINDS = ("modules", "kernels")
#: File-name stem of amendment shards and of a run's amendments file.
AMENDMENTS = "amendments"
_RECORD_KIND = {"modules": "module", "kernels": "kernel", "variants": "variant"}
#: Suite -> its sub-folder of the data home. "main" holds the training
#: families; "ood" the evaluation-only records of third-party architectures
#: (the collector's ``ood_specs``), kept apart so that nothing trains on them.
SUITES = {"main": "", "ood": "ood"}
#: Suite -> the source of its records that have no ``source`` field (written
#: before the field existed): the families, or the OOD suite's architectures.
SUITE_SOURCES = {"main": DEFAULT_SOURCE, "ood": "transformers"}
#: File-name suffix of the shards :func:`pack` writes (xz, see the module
#: docstring); ``.jsonl.gz`` shards are read too.
SHARD_SUFFIX = ".jsonl.xz"
_READ_SUFFIXES = ("xz", "gz")
#: xz preset of new shards: level 9 with a 64 MiB dictionary, "extreme"
#: (slower to write, not to read; the same records give the same bytes).
_XZ_PRESET = 9 | lzma.PRESET_EXTREME


def get_data_home(
    data_home: str | os.PathLike | None = None, suite: str = "main"
) -> Path:
    """The folder holding a suite's shards: in ``data_home`` or the bundled one.

    Raises
    ------
    ValueError
        If ``suite`` is not one of :data:`SUITES`.
    """
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {tuple(SUITES)}, got {suite!r}")
    home = Path(__file__).resolve().parent.parent / "data"
    if data_home is not None:
        home = Path(data_home)
    return home / SUITES[suite]


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def shard_paths(kind: str, data_home: str | os.PathLike | None = None) -> list[Path]:
    """The shard files of one kind (or ``"amendments"``), in the order added.

    Raises
    ------
    ValueError
        If one shard number is there twice (``.jsonl.xz`` and ``.jsonl.gz``:
        a :func:`recompress` that was stopped between writing and removing).
    """
    if kind != AMENDMENTS:
        _check_kind(kind)
    suffixes = "|".join(_READ_SUFFIXES)
    pattern = re.compile(rf"{kind}-(\d{{5}})\.jsonl\.(?:{suffixes})")
    home = get_data_home(data_home)
    if not home.is_dir():
        return []
    numbered = {}
    for p in home.iterdir():
        match = pattern.fullmatch(p.name)
        if match is None:
            continue
        number = int(match.group(1))
        if number in numbered:
            raise ValueError(
                f"shard {kind}-{number:05d} is in {home} twice: "
                f"{numbered[number].name} and {p.name}; remove the .gz one"
            )
        numbered[number] = p
    return [numbered[n] for n in sorted(numbered)]


def shard_digest(path: str | os.PathLike) -> str:
    """sha256 (hex) of a shard's lines, decompressed: the same for the
    ``.jsonl.gz`` and ``.jsonl.xz`` file of the same records."""
    digest = hashlib.sha256()
    with _open(Path(path)) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def iter_dataset(
    kind: str,
    data_home: str | os.PathLike | None = None,
    problems: list[str] | None = None,
) -> Iterator[dict]:
    """Yield the records of one kind.

    Reads the shards of ``data_home``; a folder without shards but with a
    collection run's ``<kind>.jsonl`` (what :func:`~mlircost_classic.collect.collect`
    writes) is read instead, so a fresh run can be loaded before packing.
    The amendments of the same source (amendment shards, or the run's
    ``amendments.jsonl``) are merged in (:func:`apply_amendments`); those
    that match no record are reported in ``problems``.

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
            f"'{kind}-00000{SHARD_SUFFIX}' (made by mlircost_classic.datasets.pack) "
            f"or a collection run's '{kind}.jsonl'"
        )
    run = home / f"{kind}.jsonl"
    amendments = list(iter_amendments(home, problems, from_run=paths == [run]))
    records = (rec for path in paths for rec in iter_records(path, problems))
    yield from apply_amendments(records, amendments, _RECORD_KIND[kind], problems)


def iter_amendments(
    data_home: str | os.PathLike | None = None,
    problems: list[str] | None = None,
    *,
    from_run: bool = False,
) -> Iterator[dict]:
    """Yield the valid amendments of a shard folder, or of a run folder.

    Parameters
    ----------
    data_home : path-like, optional
        Shard folder (default the bundled one) or, with ``from_run``, a
        collection run folder (its ``amendments.jsonl``).
    problems : list of str, optional
        Receives a line per invalid or unreadable amendment (skipped).
    from_run : bool, default=False
        Read ``amendments.jsonl`` instead of the amendment shards.
    """
    home = get_data_home(data_home)
    run = home / f"{AMENDMENTS}.jsonl"
    paths = ([run] if run.is_file() else []) if from_run else None
    for path in shard_paths(AMENDMENTS, home) if paths is None else paths:
        for amendment in iter_records(path, problems):
            bad = validate_amendment(amendment)
            if not bad:
                yield amendment
            elif problems is not None:
                problems.append(
                    f"{path.name}: amendment {amendment.get('id')} skipped: "
                    + "; ".join(bad)
                )


def apply_amendments(
    records,
    amendments: list[dict],
    record_kind: str = "module",
    problems: list[str] | None = None,
) -> Iterator[dict]:
    """Yield ``records`` with the amendments of their ids merged in.

    A record with a ``superseded_by`` amendment is left out (another record
    of the same program replaces it). An amendment carrying a whole
    ``record`` replaces the record first (the last such one wins; its
    provenance is noted like the others). Then an
    amendment's ``drop_targets`` are removed from the record's targets,
    then its targets update them (in order: a later one wins), its
    ``kernel_calls`` update the module's, and its provenance, with the names
    of its targets, is appended to the record's ``provenance["amendments"]``. Failed records are not amended (a
    failed record has no targets). Amendments for ids not met, or for failed
    records, are reported in ``problems`` once the records are exhausted.
    """
    by_id: dict[str, list[dict]] = {}
    for a in amendments:
        if a.get("record_kind", "module") == record_kind:
            by_id.setdefault(a["id"], []).append(a)
    for rec in records:
        found = by_id.pop(rec.get("id"), None)
        if any("superseded_by" in a for a in found or ()):
            continue  # withdrawn: a record of the same program replaces it
        replacements = [a for a in found or () if "record" in a]
        if replacements:
            found = [a for a in found if "record" not in a]
            rec = _replaced(replacements[-1])
        if found and rec.get("status") == "failed":
            if problems is not None:
                problems.append(
                    f"{len(found)} amendment(s) of failed {record_kind} record "
                    f"{rec['id']} not applied"
                )
            found = None
        if found:
            rec = dict(rec)
            rec["targets"] = dict(rec["targets"])
            notes = list(rec.get("provenance", {}).get("amendments", []))
            for a in found:
                for name in a.get("drop_targets", ()):
                    rec["targets"].pop(name, None)
                rec["targets"].update(a["targets"])
                if "kernel_calls" in a:
                    rec["kernel_calls"] = {
                        **rec.get("kernel_calls", {}),
                        **a["kernel_calls"],
                    }
                note = {"targets": sorted(a["targets"]), **a["provenance"]}
                if a.get("drop_targets"):
                    note["dropped"] = sorted(a["drop_targets"])
                notes.append(note)
            rec["provenance"] = {**rec.get("provenance", {}), "amendments": notes}
        yield rec
    if problems is not None:
        problems += [
            f"{len(v)} amendment(s) of unknown {record_kind} record {k}, not applied"
            for k, v in by_id.items()
        ]


def _replaced(amendment: dict) -> dict:
    """The record an amendment's ``record`` replaces its bundled one with."""
    rec = dict(amendment["record"])
    note = {"targets": [], "replaced": True, **amendment["provenance"]}
    notes = [*rec.get("provenance", {}).get("amendments", []), note]
    rec["provenance"] = {**rec.get("provenance", {}), "amendments": notes}
    return rec


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
    amendments_added : int
        Amendments packed into a new shard.
    amendments_waiting : list of str
        Ids of amendments not packed because their record is not bundled
        (yet); a later pack adds them once it is.
    same_text : dict
        kind -> ids of module records skipped because a bundled module, or
        one packed before them, has the same compiled text (two specs, for
        example two architectures, that make one program).
    replaced : dict
        kind -> ids of bundled records that did not succeed and that a run
        record of the same program replaces (it has every target name and IR
        level of the bundled one, and more: collected again after a timeout,
        say): through an amendment carrying the whole record when the ids
        agree, else (a module whose lowering failed, so without the text its
        id is made of) by adding the new record and withdrawing the old one
        with a ``superseded_by`` amendment.
    """

    new_shards: list[Path] = field(default_factory=list)
    added: dict[str, int] = field(default_factory=dict)
    already_bundled: dict[str, int] = field(default_factory=dict)
    amendments_added: int = 0
    same_text: dict[str, list[str]] = field(default_factory=dict)
    amendments_waiting: list[str] = field(default_factory=list)
    replaced: dict[str, list[str]] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _write_shard(path: Path, records: list[dict]) -> None:
    data = "".join(canonical_json(r) + "\n" for r in records).encode("utf-8")
    _write_xz(path, data)


def _write_xz(path: Path, data: bytes) -> None:
    """Write ``data`` xz-compressed to a new file ``path``, atomically."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as raw:
            # xz has no time stamp or file name: the same records give the
            # same bytes.
            raw.write(lzma.compress(data, preset=_XZ_PRESET))
            raw.flush()
            os.fsync(raw.fileno())
        # mkstemp makes the file private; a shard is package data.
        os.chmod(tmp, 0o644)
        # link() fails if the name exists, so a committed shard is never
        # replaced even by two packers racing for the same number.
        os.link(tmp, path)
    finally:
        os.unlink(tmp)


def recompress(data_home: str | os.PathLike) -> list[Path]:
    """Rewrite a shard folder's ``.jsonl.gz`` shards as ``.jsonl.xz``.

    Each new shard holds the same lines, byte for byte (read back and
    compared before the ``.gz`` file is removed), under the same number, so
    record order, ids and :func:`iter_dataset` are unchanged. Sub-folders
    (the ``ood`` suite) are separate homes: call it on each.

    Returns
    -------
    list of Path
        The shards written.
    """
    home = Path(data_home)
    written = []
    for kind in (*KINDS, AMENDMENTS):
        for path in shard_paths(kind, home):
            if not path.name.endswith(".gz"):
                continue
            with _open(path) as fh:
                data = fh.read()
            new = path.with_name(path.name[: -len(".gz")] + ".xz")
            _write_xz(new, data)
            with _open(new) as fh:
                if fh.read() != data:  # pragma: no cover - an lzma defect
                    new.unlink()
                    raise OSError(f"{new}: the xz shard does not read back")
            path.unlink()
            written.append(new)
    return written


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
        Folder holding ``modules.jsonl`` and/or ``kernels.jsonl``, and
        possibly ``amendments.jsonl``.
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
    ids: dict[str, set] = {}
    replacements: list[dict] = []
    for kind in KINDS:
        bundled = ids[_RECORD_KIND[kind]] = set()
        texts = set()
        # id -> target names and IR levels of a bundled record that did not
        # succeed; for modules also spec key -> such a record's id (a failed
        # lowering has no text, so the program collected again has a new id)
        unsuccessful: dict[str, set] = {}
        unsuccessful_specs: dict[str, str] = {}
        for path in shard_paths(kind, home):
            for rec in iter_records(path):
                bundled.add(rec.get("id"))
                texts.add(_compiled_text_digest(rec))
                if rec.get("status") != "ok":
                    unsuccessful[rec.get("id")] = _outcomes(rec)
                    if rec.get("kind") == "module":
                        unsuccessful_specs[rec.get("key")] = rec.get("id")
        if unsuccessful:
            _as_loaded(kind, home, unsuccessful)
        fresh, skipped, same = [], 0, []
        for rec in read_records(Path(run_dir) / f"{kind}.jsonl", result.problems):
            problems = validate_record(rec)
            if not problems and rec["kind"] != _RECORD_KIND[kind]:
                problems = [f"a {rec['kind']} record in {kind}.jsonl"]
            if problems:
                result.invalid.append(f"{kind} {rec.get('id')}: {'; '.join(problems)}")
            elif rec["id"] in unsuccessful and (
                _outcomes(rec) > unsuccessful[rec["id"]]
            ):
                replacements.append(_replacement(rec, unsuccessful.pop(rec["id"])))
            elif rec["id"] in bundled:
                skipped += 1
            elif (digest := _compiled_text_digest(rec)) is not None and digest in texts:
                same.append(rec["id"])
            else:
                bundled.add(rec["id"])
                texts.add(digest)
                fresh.append(rec)
                old = unsuccessful_specs.get(rec["key"]) if kind == "modules" else None
                if old in unsuccessful and _outcomes(rec) > unsuccessful[old]:
                    replacements.append(_withdrawal(old, rec, unsuccessful.pop(old)))
        _write_shards(home, kind, fresh, shard_records, result)
        result.added[kind] = len(fresh)
        result.already_bundled[kind] = skipped
        result.same_text[kind] = same
    _pack_amendments(Path(run_dir), home, ids, shard_records, result, replacements)
    return result


def _as_loaded(kind: str, home: Path, unsuccessful: dict[str, set]) -> None:
    """Judge the bundled records that did not succeed as loading sees them.

    Their amendments count: a record already replaced by a successful one,
    or withdrawn, is dropped from ``unsuccessful``; the others hold the
    target names their amendments added (GPU latencies), so a run that holds
    the loaded record itself (for example a run folder seeded from
    :func:`iter_dataset`) replaces nothing.
    """
    loaded = {
        rec["id"]: rec
        for rec in iter_dataset(kind, home)
        if rec.get("id") in unsuccessful
    }
    for rid in list(unsuccessful):
        rec = loaded.get(rid)
        if rec is None or rec.get("status") == "ok":
            del unsuccessful[rid]
        else:
            unsuccessful[rid] = _outcomes(rec)


def _outcomes(rec: dict) -> set[str]:
    """What a record holds: its target names and its IR levels."""
    return {*rec.get("targets", ()), *(f"ir:{level}" for level in rec.get("ir", ()))}


def _withdrawal(old_id: str, rec: dict, previous: set) -> dict:
    """An amendment withdrawing bundled module ``old_id`` that did not succeed,
    superseded by ``rec``: the same spec collected again, with a new id."""
    return {
        "kind": "amendment",
        "id": old_id,
        "targets": {},
        "superseded_by": rec["id"],
        "provenance": _previously(previous),
    }


def _previously(previous: set) -> dict:
    """Provenance of a replacement: why, and what the bundled record held."""
    return {
        "reason": "collected again; the bundled record did not succeed",
        "targets_before": sum(not o.startswith("ir:") for o in previous),
        "levels_before": sorted(o[3:] for o in previous if o.startswith("ir:")),
    }


def _replacement(rec: dict, previous: set) -> dict:
    """An amendment replacing a bundled record that did not succeed by ``rec``.

    Deterministic (no date), so packing the same run again adds nothing.
    """
    return {
        "kind": "amendment",
        "record_kind": rec["kind"],
        "id": rec["id"],
        "targets": {},
        "record": rec,
        "provenance": _previously(previous),
    }


def program_digest(text: str) -> str:
    """Digest of a compiled module text: two specs with one digest make one
    program (see :attr:`PackResult.same_text`)."""
    return hashlib.sha256(text.encode()).hexdigest()


def _compiled_text_digest(rec: dict) -> str | None:
    """Digest of the program a module record's labels were compiled from.

    ``None`` for a record without that text and for kernels and variants,
    whose ids are their content already (text and hardware).
    """
    text = rec.get("ir", {}).get(rec.get("compiled_level"))
    if rec.get("kind") != "module" or text is None:
        return None
    return program_digest(text)


def bundled_programs(data_home: str | os.PathLike | None = None) -> dict:
    """The programs the bundled module records were compiled from.

    Parameters
    ----------
    data_home : path-like, optional
        Shard folder; default the package's main suite.

    Returns
    -------
    dict of str -> (str, str)
        :func:`program_digest` of each record's compiled text -> the record's
        spec ``key`` and its ``status`` as loaded (amendments merged). A
        collection that lowers a spec to one of these texts need not measure
        it: :func:`pack` would skip the record (same text, or the same record)
        unless it is the same spec's record that did not succeed.
    """
    return programs_of(iter_dataset("modules", get_data_home(data_home)))


def programs_of(records: Iterable[dict]) -> dict:
    """:func:`program_digest` -> (``key``, ``status``) of module records, the
    first record of each compiled text (see :func:`bundled_programs`)."""
    programs = {}
    for rec in records:
        digest = _compiled_text_digest(rec)
        if digest is not None:
            programs.setdefault(digest, (rec.get("key"), rec.get("status")))
    return programs


def _write_shards(
    home: Path, kind: str, fresh: list[dict], shard_records: int, result: PackResult
) -> None:
    existing = shard_paths(kind, home)
    number = 0
    if existing:
        number = int(existing[-1].name[len(kind) + 1 : len(kind) + 6]) + 1
    for start in range(0, len(fresh), shard_records):
        path = home / f"{kind}-{number:05d}{SHARD_SUFFIX}"
        _write_shard(path, fresh[start : start + shard_records])
        result.new_shards.append(path)
        number += 1


def _pack_amendments(
    run_dir: Path,
    home: Path,
    ids: dict[str, set],
    shard_records: int,
    result: PackResult,
    replacements: list[dict],
) -> None:
    """Pack ``replacements`` and the run's new amendments whose record is bundled."""
    bundled = {
        amendment_key(a)
        for path in shard_paths(AMENDMENTS, home)
        for a in iter_records(path)
    }
    fresh = []
    run_amendments = read_records(run_dir / f"{AMENDMENTS}.jsonl", result.problems)
    for a in [*replacements, *run_amendments]:
        problems = validate_amendment(a)
        key = None if problems else amendment_key(a)
        if problems:
            result.invalid.append(f"amendments {a.get('id')}: {'; '.join(problems)}")
        elif key in bundled:
            continue
        elif a["id"] not in ids[a.get("record_kind", "module")]:
            result.amendments_waiting.append(a["id"])
        else:
            bundled.add(key)
            fresh.append(a)
            if "record" in a or "superseded_by" in a:
                record_kind = a.get("record_kind", "module")
                kind = next(k for k, v in _RECORD_KIND.items() if v == record_kind)
                result.replaced.setdefault(kind, []).append(a["id"])
    _write_shards(home, AMENDMENTS, fresh, shard_records, result)
    result.amendments_added = len(fresh)
