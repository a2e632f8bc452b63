"""GPU latency in batches: compile here, time on a machine with the GPU.

A host with an NVIDIA GPU is not always the host that collects. The records
of a run can get their ``nvidia_*.latency_us`` later, in three steps:

1. :func:`export_gpu_batch` compiles each module record's filled text
   (:func:`~._resources.fill_missing_resources`, as the runner does) for CUDA
   with the collector's own flags (``BACKEND_FLAGS["cuda"]``: sm_80 PTX, which
   the driver JIT-compiles for the GPU found), and writes ``<id>.vmfb``, the
   inputs, and ``manifest.json`` to a batch folder;
2. the standalone script ``_gpu_runner.py`` (Python standard library only, so
   it runs on a bare GPU machine) times each module there with the real
   ``iree-benchmark-module --device=cuda`` and writes one JSON line per
   module;
3. :func:`import_gpu_results` turns those lines into *amendment* records,
   appended to ``<run_dir>/amendments.jsonl``, which
   :func:`~mlircost_classic.datasets.pack` bundles and
   :func:`~mlircost_classic.datasets.load_dataset` merges by record id.

Inputs are those of the collector's CPU measurements
(:func:`~._measure_cpu.write_inputs` with seed 0: standard-normal floats,
integers in {0, 1}, valid indices for any gather), so a program's CPU and GPU
latencies are timed on the same data.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

from ..datasets import append_records, iter_records

__all__ = [
    "AMENDMENTS_FILE",
    "MANIFEST",
    "export_gpu_batch",
    "gpu_hardware_name",
    "import_gpu_results",
]

#: Name of a batch's manifest file.
MANIFEST = "manifest.json"
#: Where a run folder keeps the amendments to its records.
AMENDMENTS_FILE = "amendments.jsonl"

_BACKEND = "cuda"
# Record kinds a GPU batch is exported from -> the amended record's kind.
_AMENDED = {"modules": "module", "variants": "variant"}
_LATENCY = re.compile(r"nvidia_\w+\.latency_us")
_GPU_MODEL = re.compile(
    r"NVIDIA\s+(?:(?:GeForce|Tesla|Quadro|RTX)\s+)*([A-Za-z]*\d+\w*)"
)


def _records(source) -> tuple[list[dict], Path | None]:
    if isinstance(source, str | os.PathLike):
        run_dir = Path(source)
        return list(iter_records(run_dir / "modules.jsonl")), run_dir
    return list(source), None


def _amended_latency(run_dir: Path | None) -> set[str]:
    """Ids that an amendment of ``run_dir`` already gave a GPU latency."""
    path = None if run_dir is None else run_dir / AMENDMENTS_FILE
    if path is None or not path.is_file():
        return set()
    return {a["id"] for a in iter_records(path) if has_gpu_latency(a)}


def has_gpu_latency(rec: Mapping) -> bool:
    """Whether a record has an NVIDIA GPU latency target (``nvidia_*.latency_us``)."""
    return any(_LATENCY.fullmatch(t) for t in rec.get("targets", {}))


def _wants_latency(rec: Mapping, done: set[str]) -> bool:
    return (
        rec.get("kind") == "module"
        and rec.get("status") in ("ok", "partial")
        and rec.get("compiled_level") in rec.get("ir", {})
        and rec["id"] not in done
        and not has_gpu_latency(rec)
    )


def export_gpu_batch(
    run_dir_or_records: str | os.PathLike | Iterable[Mapping],
    out_dir: str | os.PathLike,
    *,
    max_bytes: int = 60 * 2**20,
    limit: int | None = None,
    seed: int = 0,
    timeout: float = 600.0,
) -> dict:
    """Compile module records for CUDA into a batch for ``_gpu_runner.py``.

    Parameters
    ----------
    run_dir_or_records : path-like or iterable of mapping
        A collection run folder (its ``modules.jsonl``; ids already given a
        GPU latency by its ``amendments.jsonl`` are skipped) or records.
    out_dir : path-like
        The batch folder (created): ``<id>.vmfb``, ``inputs/<id>/``,
        ``manifest.json``.
    max_bytes : int, default 60 MiB
        Most bytes of modules and inputs in the batch (a device transfer
        limit): a module that does not fit is deferred to a later batch, one
        larger than this alone is skipped.
    limit : int, optional
        Most modules to export.
    seed : int, default 0
        Seed of the input data (0 is the collector's, see the module docstring).
    timeout : float, default 600
        Seconds allowed per ``iree-compile`` and ``iree-dump-module``.

    Returns
    -------
    dict
        The manifest: ``modules`` (id, family, function, inputs, vmfb, bytes),
        ``skipped`` (id, reason) for records that could not be compiled,
        given inputs or fit in ``max_bytes``, ``deferred`` (ids left for a
        later batch: no room), ``stopped`` (why the batch ended early, or None),
        ``provenance`` (tool versions, flags, inputs, date).
    """
    from ._compile import BACKEND_FLAGS, compile_mlir
    from ._measure_cpu import entry_function, write_inputs
    from ._resources import fill_missing_resources
    from ._toolchain import ToolError, toolchain_versions

    records, run_dir = _records(run_dir_or_records)
    done = _amended_latency(run_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    modules, skipped, deferred, stopped, total, flags = [], [], [], None, 0, None
    for rec in records:
        if not _wants_latency(rec, done):
            continue
        if limit is not None and len(modules) >= limit:
            stopped = f"limit of {limit} modules reached"
            break
        rid, level = rec["id"], rec["compiled_level"]
        with tempfile.TemporaryDirectory(prefix="mlircost-gpu-") as tmp:
            work = Path(tmp)
            source = work / "input.mlir"
            try:
                text = fill_missing_resources(rec["ir"][level])
                source.write_text(text, encoding="utf-8")
                compiled = compile_mlir(
                    source, _BACKEND, work / "cuda", input_level=level, timeout=timeout
                )
                name, types = entry_function(compiled.vmfb, text, timeout=timeout)
                inputs = write_inputs(types, work / "inputs", seed)
            except (ToolError, OSError, ValueError) as exc:
                skipped.append({"id": rid, "reason": f"{type(exc).__name__}: {exc}"})
                continue
            files = [compiled.vmfb, *sorted((work / "inputs").glob("input*.bin"))]
            size = sum(p.stat().st_size for p in files)
            if size > max_bytes:
                reason = f"{size} bytes of module and inputs exceed max_bytes"
                skipped.append({"id": rid, "reason": reason})
                continue
            if total + size > max_bytes:
                # Smaller modules may still fit; this one waits for a batch.
                deferred.append(rid)
                continue
            shutil.copyfile(compiled.vmfb, out / f"{rid}.vmfb")
            folder = out / "inputs" / rid
            if files[1:]:
                folder.mkdir(parents=True, exist_ok=True)
            for path in files[1:]:
                shutil.copyfile(path, folder / path.name)
            total += size
            flags = compiled.flags
        modules.append(
            {
                "id": rid,
                "family": rec.get("family"),
                "function": name,
                "types": types,
                # Relative to the batch folder, where the runner works.
                "inputs": [v.replace("=@", f"=@inputs/{rid}/", 1) for v in inputs],
                "vmfb": f"{rid}.vmfb",
                "bytes": size,
            }
        )
    manifest = {
        "modules": modules,
        "skipped": skipped,
        "deferred": deferred,
        "stopped": stopped,
        "bytes": total,
        "provenance": {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tools": toolchain_versions(),
            "compile_flags": flags or list(BACKEND_FLAGS[_BACKEND]),
            "weights": "fill_missing_resources(ir[compiled_level]), as collected",
            "inputs": {
                "seed": seed,
                "data": "write_inputs: standard normal floats, integers in {0, 1}, "
                "raw binary files (the collector's CPU inputs when seed is 0)",
            },
        },
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def gpu_hardware_name(gpu: str) -> str:
    """Target prefix for a GPU as ``nvidia-smi`` names it.

    Examples
    --------
    >>> gpu_hardware_name("NVIDIA H100 80GB HBM3")
    'nvidia_h100'
    >>> gpu_hardware_name("NVIDIA A100-SXM4-80GB")
    'nvidia_a100'
    """
    m = _GPU_MODEL.search(gpu)
    if not m:
        raise ValueError(f"cannot name the NVIDIA GPU {gpu!r}")
    return "nvidia_" + m.group(1).lower()


def import_gpu_results(
    results_jsonl: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    manifest: str | os.PathLike | None = None,
    kind: str = "modules",
) -> dict:
    """Append the runner's measurements to ``run_dir/amendments.jsonl``.

    Parameters
    ----------
    results_jsonl : path-like
        What ``_gpu_runner.py`` wrote.
    run_dir : path-like
        The collection run the batch was exported from.
    manifest : path-like, optional
        The batch's ``manifest.json``; its provenance (compile flags, tool
        versions, inputs) goes into each amendment.
    kind : {"modules", "variants"}, default "modules"
        The records the batch was exported from (``<kind>.jsonl`` of the
        run): programs, or candidates of ``export_variant_gpu_batch``.

    Returns
    -------
    dict
        ``written`` (amendments appended), ``already`` (same id and target
        already amended), ``unknown`` (ids not in ``<kind>.jsonl``),
        ``errors`` (id -> runner error), ``targets`` (names written).
    """
    run = Path(run_dir)
    if kind not in _AMENDED:
        raise ValueError(f"kind must be one of {list(_AMENDED)}, got {kind!r}")
    known = {r["id"] for r in iter_records(run / f"{kind}.jsonl")}
    path = run / AMENDMENTS_FILE
    existing = (
        {(a["id"], t) for a in iter_records(path) for t in a.get("targets", {})}
        if path.is_file()
        else set()
    )
    batch = {}
    if manifest is not None:
        batch = json.loads(Path(manifest).read_text(encoding="utf-8"))["provenance"]
    report = {"written": 0, "already": 0, "unknown": [], "errors": {}, "targets": []}
    fresh = []
    for res in iter_records(results_jsonl):
        rid = res.get("id")
        if res.get("error") or res.get("latency_us") is None:
            report["errors"][rid] = res.get("error", "no latency")
            continue
        if rid not in known:
            report["unknown"].append(rid)
            continue
        hw = gpu_hardware_name(res["gpu"])
        targets = {
            f"{hw}.latency_us": res["latency_us"],
            f"{hw}.latency_us_spread": res["spread"],
        }
        if (rid, f"{hw}.latency_us") in existing:
            report["already"] += 1
            continue
        existing.add((rid, f"{hw}.latency_us"))
        fresh.append(
            {
                "kind": "amendment",
                "record_kind": _AMENDED[kind],
                "id": rid,
                "targets": targets,
                "provenance": {
                    "gpu": res["gpu"],
                    "driver": res.get("driver"),
                    "cuda_driver": res.get("cuda_driver"),
                    "gpu_memory": res.get("memory"),
                    "command": res["command"],
                    "date": res["date"],
                    "repetitions": res["repetitions"],
                    "samples_us": res["samples_us"],
                    "latency_us": "median over iree-benchmark-module repetitions",
                    "latency_us_spread": "(75th - 25th percentile) / median",
                    "function": res.get("function"),
                    **{k: v for k, v in batch.items() if k != "date"},
                    "compiled": batch.get("date"),
                },
            }
        )
        for name in targets:
            if name not in report["targets"]:
                report["targets"].append(name)
    report["written"] = append_records(path, fresh)
    return report
