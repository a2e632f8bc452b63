"""The record schema: what one line of a dataset file holds.

A dataset is two streams of JSON objects, *module* records (one per program)
and *kernel* records (one per IREE dispatch of a program). Both share one
layout, documented field by field in :data:`FIELDS`; :func:`validate_record`
lists what is wrong with a record and :func:`record_id` computes the content
hash that identifies it, so that the same content collected twice is stored
once.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence

__all__ = [
    "SCHEMA_VERSION",
    "LEVELS",
    "KERNEL_LEVEL",
    "STATUSES",
    "SOURCES",
    "DEFAULT_SOURCE",
    "record_source",
    "FIELDS",
    "record_id",
    "module_record_id",
    "kernel_record_id",
    "variant_record_id",
    "VARIANT_LEVEL",
    "canonical_json",
    "complete_record",
    "validate_record",
    "AMENDMENT_FIELDS",
    "amendment_key",
    "validate_amendment",
]

#: Version of the layout below; bumped when a field changes meaning.
SCHEMA_VERSION = 1

#: Program levels a module record may carry, from the framework down.
LEVELS = ("torch", "linalg", "stablehlo", "tosa", "affine")

#: The single level of a kernel record: an IREE executable source, the
#: dispatch region as IREE cuts it out of the program (linalg on tensors).
KERNEL_LEVEL = "dispatch"

#: The single level of a variant record: a configured executable, the
#: dispatch after IREE's strategy selection with its ``lowering_config`` and
#: ``translation_info`` (as edited for the candidate).
VARIANT_LEVEL = "configured"

#: ``ok``: every requested stage succeeded; ``partial``: some target was
#: measured but a stage failed; ``failed``: no target was measured.
STATUSES = ("ok", "partial", "failed")

#: Where a record's program came from: the project's program families, the
#: torchvision and Hugging Face transformers architectures, or a user's file.
SOURCES = ("families", "torchvision", "transformers", "user")

#: The source of a record without a ``source`` field: those collected before
#: the field existed came from the families, or in the OOD suite from its
#: transformers architectures (``_shards.SUITE_SOURCES``).
DEFAULT_SOURCE = "families"

#: Field name -> meaning. The datasheet (DATASET.md) quotes this table.
FIELDS = {
    "id": "sha256 hex digest of the record-defining content (see record_id): "
    "module = family + params + compiled level + IR text at that level; "
    "kernel = executable source text + hardware names measured.",
    "schema_version": "integer, the version of this layout (SCHEMA_VERSION).",
    "kind": '"module", "kernel" or "variant".',
    "key": "module: the key of the collected spec (canonical JSON of family and "
    "params, or 'file:<sha256>' for a user file); --resume skips keys already "
    "recorded. kernel: the key of the module it was first seen in.",
    "source": "optional, one of SOURCES: 'families', 'torchvision', "
    "'transformers' or 'user' (kernels: of their first module; variants: of "
    "their dispatch's kernel); absent means "
    "'families'. Not part of the id.",
    "family": "name of the model family, or the architecture for the torchvision "
    "('tv_resnet18') and transformers ('hf_mistral') sources (kernels: of their "
    "first module); 'user' for user files.",
    "params": "JSON object of the family parameters (kernels: of their first module).",
    "name": "kernel records only: the IREE dispatch (export) name.",
    "ir": "object level -> MLIR text. Modules: any of torch, linalg, stablehlo, "
    "tosa, affine (levels whose lowering succeeded); kernels: 'dispatch'. "
    "Weights are never stored: resource blobs are stripped.",
    "compiled_level": "the level whose text was compiled to produce the "
    "targets ('dispatch' for kernels); null when nothing was compiled.",
    "targets": "object '<hardware>.<metric>' -> finite number, each from a real "
    "tool run; a target absent here was not measured.",
    "kernels": "module records only: list of the ids of its kernel records, "
    "in dispatch order.",
    "kernel_calls": "module records only, optional: object kernel id -> how "
    "many times one invocation dispatches it (IREE keeps one executable for "
    "identical dispatches; its dispatch sites in the llvm-cpu flow IR). A "
    "kernel's cpu_x86_64_v3.instructions is per call.",
    "module_id": "kernel records only: id of the first module record it was "
    "seen in (a kernel shared by several modules is stored once).",
    "provenance": "object: package_version, schema_version, date (UTC ISO "
    "8601), host_cpu, seed, hardware (list), tool versions and exact flags "
    "per stage as the collector recorded them.",
    "status": "one of 'ok', 'partial', 'failed' (see STATUSES).",
    "failures": "list of {stage, message}: every stage that failed, e.g. "
    "{'stage': 'compile:nvidia_sm80', 'message': 'timed out after 120 s'}.",
    "seconds": "object stage -> wall seconds spent in it.",
    "dispatch_id": "variant records only: id of the kernel record whose "
    "dispatch was configured; the group of its candidates (with backend).",
    "backend": "variant records only: the IREE backend configured, 'cuda', "
    "'rocm' or 'llvm-cpu'.",
    "is_default": "variant records only: true for the compiler's own choice.",
    "config": "variant records only: the candidate's codegen decisions "
    "(CodegenConfig.to_dict: pipeline, tile sizes per level, workgroup and "
    "subgroup size, MMA intrinsic, other lowering_config entries). A "
    "candidate the compiler rejects has status 'partial', the targets "
    "'<hardware>.compiles' = 0 and the compiler's message in failures.",
}

#: Field name -> meaning of an *amendment*: targets measured later for a
#: record already collected (a GPU latency timed on another machine, say).
#: Amendments are stored beside the records and merged by ``id`` on loading.
AMENDMENT_FIELDS = {
    "kind": '"amendment".',
    "record_kind": '"module" (default), "kernel" or "variant": the kind of record '
    "amended.",
    "id": "the id of the record it amends.",
    "targets": "object '<hardware>.<metric>' -> finite number, each from a real "
    "tool run; merged into the record's targets (a later amendment wins).",
    "provenance": "object: how the targets were measured (device, driver, "
    "command, date, inputs); kept in the record's provenance['amendments'].",
    "kernel_calls": "optional, module amendments: object kernel id -> calls "
    "per invocation, merged into the record's kernel_calls.",
    "drop_targets": "optional: list of target names removed from the record "
    "before the amendment's targets are merged (labels found to belong to "
    "another computation).",
    "record": "optional: a whole record with the amended id and kind that "
    "replaces the bundled one before any target amendment is merged (a program "
    "collected again after a failure that was not its own, such as a timeout "
    "under load; :func:`pack` writes it when the new record has every target "
    "name and IR level of the bundled one, and more). Its ``targets`` may then "
    "be empty.",
    "superseded_by": "optional, module amendments: the id of a record of the "
    "same program (same key) that replaces the amended one, which did not "
    "succeed and is left out on loading (the program collected again after a "
    "failed lowering has a new id: its text is part of it).",
}

_COMMON = ("id", "schema_version", "kind", "key", "family", "params", "ir")
_COMMON += ("compiled_level", "targets", "provenance", "status", "failures")
_COMMON += ("seconds",)
_REQUIRED = {
    "module": (*_COMMON, "kernels"),
    "kernel": (*_COMMON, "name", "module_id"),
    "variant": (*_COMMON, "name", "dispatch_id", "backend", "is_default", "config"),
}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TARGET = re.compile(r"[a-z0-9_]+\.[A-Za-z0-9_]+")


def canonical_json(value) -> str:
    """Serialise ``value`` the one way used for hashing and storage.

    Keys sorted, no whitespace, UTF-8 kept as is; NaN and infinities are
    refused because JSON has no spelling for them.
    """
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def _sha256(obj) -> str:
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def module_record_id(
    family: str, params: Mapping, compiled_level: str | None, text: str | None
) -> str:
    """Content id of a module record.

    Parameters
    ----------
    family, params : str, mapping
        The program's family and parameters.
    compiled_level, text : str or None
        The level that was compiled and its MLIR text (None when lowering to
        it failed, so a failed spec still gets a stable id).
    """
    return _sha256(["module", family, dict(params), compiled_level, text])


def kernel_record_id(source: str, hardware: Sequence[str]) -> str:
    """Content id of a kernel record: its executable source and the hardware
    its metrics were measured for (order does not matter)."""
    return _sha256(["kernel", source, sorted(set(hardware))])


def variant_record_id(text: str, backend: str, hardware: Sequence[str]) -> str:
    """Content id of a variant record: its configured executable text, the
    backend and the hardware measured."""
    return _sha256(["variant", text, backend, sorted(set(hardware))])


def record_id(record: Mapping) -> str:
    """Recompute the content id of a (module, kernel or variant) record."""
    if record.get("kind") == "variant":
        hardware = record.get("provenance", {}).get("hardware", [])
        return variant_record_id(
            record["ir"][VARIANT_LEVEL], record["backend"], hardware
        )
    if record.get("kind") == "kernel":
        hardware = record.get("provenance", {}).get("hardware", [])
        return kernel_record_id(record["ir"][KERNEL_LEVEL], hardware)
    level = record.get("compiled_level")
    text = record.get("ir", {}).get(level) if level else None
    return module_record_id(record["family"], record["params"], level, text)


def complete_record(record: Mapping) -> dict:
    """A copy of ``record`` with ``schema_version`` and its content ``id`` set."""
    rec = dict(record)
    rec["schema_version"] = SCHEMA_VERSION
    rec["id"] = record_id(rec)
    return rec


def record_source(record: Mapping, default: str = DEFAULT_SOURCE) -> str:
    """The record's ``source``, ``default`` when it has none."""
    return record.get("source", default)


def _is_number(value) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _check_types(rec: Mapping, problems: list[str]) -> None:
    expected = {
        "id": str,
        "schema_version": int,
        "kind": str,
        "key": str,
        "source": str,
        "family": str,
        "params": dict,
        "ir": dict,
        "targets": dict,
        "provenance": dict,
        "status": str,
        "failures": list,
        "seconds": dict,
        "kernels": list,
        "module_id": str,
        "name": str,
        "dispatch_id": str,
        "backend": str,
        "is_default": bool,
        "config": dict,
    }
    for field, kind in expected.items():
        if field in rec and not isinstance(rec[field], kind):
            problems.append(
                f"{field}: expected {kind.__name__}, got {type(rec[field]).__name__}"
            )
    level = rec.get("compiled_level")
    if level is not None and not isinstance(level, str):
        problems.append("compiled_level: expected str or null")


def _check_content(rec: Mapping, problems: list[str]) -> None:
    kind = rec["kind"]
    levels = {"kernel": (KERNEL_LEVEL,), "variant": (VARIANT_LEVEL,)}.get(kind, LEVELS)
    for level, text in rec["ir"].items():
        if level not in levels:
            problems.append(f"ir: unknown level {level!r} for a {kind} record")
        elif not isinstance(text, str) or not text.strip():
            problems.append(f"ir[{level!r}]: expected non-empty MLIR text")
    level = rec["compiled_level"]
    if level is not None and level not in rec["ir"]:
        problems.append(f"compiled_level {level!r} has no text in ir")
    if level is None and rec["targets"]:
        problems.append("targets without a compiled_level")
    for name, value in rec["targets"].items():
        if not _TARGET.fullmatch(name):
            problems.append(f"targets: name {name!r} is not '<hardware>.<metric>'")
        if not _is_number(value):
            problems.append(f"targets[{name!r}]: expected a finite number")
    for name, value in rec["seconds"].items():
        if not _is_number(value) or value < 0:
            problems.append(f"seconds[{name!r}]: expected a non-negative number")
    for i, failure in enumerate(rec["failures"]):
        if not (
            isinstance(failure, dict)
            and isinstance(failure.get("stage"), str)
            and isinstance(failure.get("message"), str)
        ):
            problems.append(f"failures[{i}]: expected {{stage: str, message: str}}")
    if "source" in rec and rec["source"] not in SOURCES:
        problems.append(f"source: {rec['source']!r} is not one of {SOURCES}")
    status = rec["status"]
    if status not in STATUSES:
        problems.append(f"status: {status!r} is not one of {STATUSES}")
    elif status == "ok" and (rec["failures"] or not rec["targets"]):
        problems.append("status 'ok' needs targets and no failures")
    elif status == "partial" and not (rec["failures"] and rec["targets"]):
        problems.append("status 'partial' needs targets and failures")
    elif status == "failed" and (rec["targets"] or not rec["failures"]):
        problems.append("status 'failed' needs failures and no targets")
    _check_links(rec, problems)


def _check_links(rec: Mapping, problems: list[str]) -> None:
    """What links a record to others: kernel ids and calls, module or dispatch id."""
    kind = rec["kind"]
    if kind == "module":
        bad = [k for k in rec["kernels"] if not _HEX64.fullmatch(str(k))]
        if bad:
            problems.append(f"kernels: {len(bad)} entries are not record ids")
        if "kernel_calls" in rec:
            _check_kernel_calls(rec["kernel_calls"], problems, rec["kernels"])
    elif kind == "variant":
        if VARIANT_LEVEL not in rec["ir"]:
            problems.append(f"variant record without ir[{VARIANT_LEVEL!r}]")
        if not _HEX64.fullmatch(rec["dispatch_id"]):
            problems.append("dispatch_id: not a record id")
    else:
        if KERNEL_LEVEL not in rec["ir"]:
            problems.append(f"kernel record without ir[{KERNEL_LEVEL!r}]")
        if not _HEX64.fullmatch(rec["module_id"]):
            problems.append("module_id: not a record id")
        if not isinstance(rec["provenance"].get("hardware"), list):
            problems.append("provenance.hardware: a kernel record needs the list")


def _check_kernel_calls(calls, problems: list[str], kernels=None) -> None:
    if not isinstance(calls, Mapping):
        problems.append("kernel_calls: expected an object")
        return
    for kid, n in calls.items():
        if not _HEX64.fullmatch(str(kid)):
            problems.append(f"kernel_calls: {kid!r} is not a record id")
        elif kernels is not None and kid not in kernels:
            problems.append(f"kernel_calls: {kid[:12]}... is not one of its kernels")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            problems.append(f"kernel_calls[{str(kid)[:12]}...]: expected an int >= 1")


def validate_record(rec) -> list[str]:
    """List what is wrong with a record; an empty list means it is valid.

    Checks presence and types of every field of :data:`FIELDS` for the
    record's kind, the schema version, level and target names, that targets
    are finite numbers, that ``status`` agrees with ``targets`` and
    ``failures``, and that ``id`` is the content hash of the record.

    Examples
    --------
    >>> validate_record({"kind": "module"})[0]
    'missing field: id'
    """
    if not isinstance(rec, Mapping):
        return [f"a record is a JSON object, got {type(rec).__name__}"]
    kind = rec.get("kind")
    if kind not in _REQUIRED:
        return [f"kind: expected one of {tuple(_REQUIRED)}, got {kind!r}"]
    problems = [f"missing field: {f}" for f in _REQUIRED[kind] if f not in rec]
    if problems:
        return problems
    _check_types(rec, problems)
    if problems:
        return problems
    if rec["schema_version"] != SCHEMA_VERSION:
        problems.append(
            f"schema_version {rec['schema_version']} (this library reads "
            f"{SCHEMA_VERSION})"
        )
    _check_content(rec, problems)
    if not problems:
        try:
            expected = record_id(rec)
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"id: cannot be recomputed ({exc})")
        else:
            if rec["id"] != expected:
                problems.append("id: does not match the record content")
    return problems


def amendment_key(amendment: Mapping) -> str:
    """Content hash of an amendment (what :func:`pack` deduplicates on)."""
    return _sha256(["amendment", dict(amendment)])


def _check_replacement(amendment: Mapping, problems: list[str]) -> None:
    record = amendment["record"]
    bad = validate_record(record)
    if bad:
        problems.append("record: " + "; ".join(bad))
    elif record["id"] != amendment["id"]:
        problems.append("record: its id is not the amended id")
    elif record["kind"] != amendment.get("record_kind", "module"):
        problems.append("record: its kind is not the amendment's record_kind")


def validate_amendment(amendment) -> list[str]:
    """List what is wrong with an amendment; empty when it is valid.

    Examples
    --------
    >>> validate_amendment({"kind": "amendment"})[0]
    'missing field: id'
    """
    if not isinstance(amendment, Mapping):
        return [f"an amendment is a JSON object, got {type(amendment).__name__}"]
    if amendment.get("kind") != "amendment":
        return [f"kind: expected 'amendment', got {amendment.get('kind')!r}"]
    problems = [
        f"missing field: {f}"
        for f in ("id", "targets", "provenance")
        if f not in amendment
    ]
    if problems:
        return problems
    if amendment.get("record_kind", "module") not in _REQUIRED:
        problems.append(f"record_kind: expected one of {tuple(_REQUIRED)}")
    if not _HEX64.fullmatch(str(amendment["id"])):
        problems.append("id: not a record id")
    if not isinstance(amendment["provenance"], dict):
        problems.append("provenance: expected an object")
    if "kernel_calls" in amendment:
        _check_kernel_calls(amendment["kernel_calls"], problems)
    drop = amendment.get("drop_targets", [])
    if not isinstance(drop, list) or not all(
        isinstance(t, str) and _TARGET.fullmatch(t) for t in drop
    ):
        problems.append("drop_targets: expected a list of target names")
    if "record" in amendment:
        _check_replacement(amendment, problems)
    successor = amendment.get("superseded_by")
    if successor is not None and (
        not _HEX64.fullmatch(str(successor)) or successor == amendment["id"]
    ):
        problems.append("superseded_by: expected another record's id")
    targets = amendment["targets"]
    changes = (
        drop or amendment.get("kernel_calls") or amendment.get("record") or successor
    )
    if not isinstance(targets, dict) or not (targets or changes):
        return [*problems, "targets: expected a non-empty object"]
    for name, value in targets.items():
        if not _TARGET.fullmatch(name):
            problems.append(f"targets: name {name!r} is not '<hardware>.<metric>'")
        if not _is_number(value):
            problems.append(f"targets[{name!r}]: expected a finite number")
    return problems
