"""Amendments of issue 18 from ``relabel_kernels.py scan`` (see its docstring).

Per module record, from its own compiles:

* ``kernel_calls``: dispatch sites per kernel in the llvm-cpu flow IR;
* kernel ``cpu_x86_64_v3.instructions`` per call: the stored callgrind
  inclusive count (over every call in the module it was measured in, the
  record's ``module_id``) divided by that module's dispatch sites of it;
* ``nvidia_sm80/sm90.shared_bytes``: ptxas's static size (0 in every bundled
  record) plus the export's ``workgroup_local_memory``, and the occupancy
  derived again with it (same formula and limits, threads from the export's
  workgroup size, which reproduce every stored occupancy at zero shared
  memory);
* pairing: a kernel record's GPU labels are kept where the backend's
  dispatch of that name has the record's body (content key); where not, they
  belong to another computation and are dropped, and the labels of the
  backend's dispatch with the record's body take their place: the first
  collection stored each backend dispatch's labels on the record of the same
  name, so they are moved from there (records of this module's own compile
  only).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from mlircost_classic.collect._compile import dispatch_content_key
from mlircost_classic.collect._measure_gpu import nvidia_occupancy
from mlircost_classic.collect._toolchain import host_cpu, toolchain_versions
from mlircost_classic.datasets import iter_dataset

_ARCH = {"nvidia_sm80": "sm_80", "nvidia_sm90": "sm_90"}
_GPU = {"cuda": ("nvidia_sm80.", "nvidia_sm90."), "rocm": ("amd_gfx942.",)}
INSTRUCTIONS = "cpu_x86_64_v3.instructions"


_SSA = re.compile(r"%[\w$.-]+")


def _body_key(text: str) -> str:
    """Content key with SSA value names numbered in order of appearance."""
    seen: dict[str, str] = {}
    text = _SSA.sub(lambda m: seen.setdefault(m.group(0), f"%v{len(seen)}"), text)
    return dispatch_content_key(text)


def _rows(path: Path) -> dict[str, dict]:
    rows = {}
    if path.exists():
        for line in path.open(encoding="utf-8"):
            row = json.loads(line)
            rows[row["id"]] = row
    return rows


def mismatched(row: dict, names: dict[str, str]) -> dict[str, list[str]]:
    """Backend -> names of this module's kernels whose label source differs."""
    out = {}
    for backend in _GPU:
        keys = row.get(f"{backend}_keys")
        if keys is None:
            continue
        bad = [n for n, key in names.items() if n in keys and keys[n] != key]
        bad += [n for n, key in names.items() if n not in keys]
        if bad:
            out[backend] = sorted(bad)
    return out


def _shared(targets: dict, launch: dict) -> dict:
    """Shared memory and occupancy of one CUDA kernel with its launch size."""
    new = {}
    if "threads" not in launch:
        return new
    for hw, arch in _ARCH.items():
        if f"{hw}.registers" not in targets:
            continue
        shared = targets.get(f"{hw}.shared_bytes", 0) + launch["local_memory"]
        new[f"{hw}.shared_bytes"] = shared
        new[f"{hw}.occupancy"] = nvidia_occupancy(
            arch, targets[f"{hw}.registers"], shared, launch["threads"]
        )
    return new


def amend(suite: str, home: Path, out: Path) -> None:
    scan = _rows(out / f"scan-{suite}.jsonl")
    kernels = {k["id"]: k for k in iter_dataset("kernels", home)}
    modules = {m["id"]: m for m in iter_dataset("modules", home)}
    provenance = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host_cpu": host_cpu(),
        "tools": toolchain_versions(),
        "made_by": "scripts/relabel_kernels.py scan + scripts/relabel_amend.py",
        "text": "fill_missing_resources(ir[compiled_level]), as collected",
    }
    amendments, report = [], Counter()
    per_call_pairs: dict[str, list] = {}
    for mid, row in scan.items():
        module = modules[mid]
        names = {
            kernels[k]["name"]: dispatch_content_key(kernels[k]["ir"]["dispatch"])
            for k in module["kernels"]
            if k in kernels
        }
        ids = {kernels[k]["name"]: k for k in module["kernels"] if k in kernels}
        calls = row.get("calls", {})
        kernel_calls = {ids[n]: calls[n] for n in ids if calls.get(n)}
        report["modules"] += 1
        report["kernel links"] += len(ids)
        report["kernel links without calls"] += len(ids) - len(kernel_calls)
        report["kernel links called more than once"] += sum(
            1 for n in kernel_calls.values() if n > 1
        )
        bad = mismatched(row, names)
        for backend, bad_names in bad.items():
            report[f"{backend} mismatched links"] += len(bad_names)
            report[f"{backend} modules with a mismatch"] += 1
        launch = row.get("cuda_launch", {})
        # Labels each backend dispatch got in the first collection, by its name.
        own = {
            n: kernels[k]["targets"]
            for n, k in ids.items()
            if kernels[k]["module_id"] == mid and kernels[k]["status"] != "failed"
        }
        for name, kid in ids.items():
            rec = kernels[kid]
            if rec["module_id"] != mid or rec["status"] == "failed":
                continue  # its labels came from another module's compile
            old = rec["targets"]
            new, drop = {}, []
            n = calls.get(name)
            if INSTRUCTIONS in old and n:
                per_call_pairs.setdefault(_body_key(rec["ir"]["dispatch"]), []).append(
                    (round(old[INSTRUCTIONS] / n), n)
                )
                if n > 1:
                    new[INSTRUCTIONS] = round(old[INSTRUCTIONS] / n)
                    report["kernels: instructions divided by calls"] += 1
            for backend, prefixes in _GPU.items():
                if name not in bad.get(backend, ()):
                    continue
                stale = [t for t in old if t.startswith(prefixes)]
                drop += stale
                keys = row.get(f"{backend}_keys", {})
                same = [d for d, key in keys.items() if key == names[name]]
                fresh = {
                    t: v
                    for d in same[:1]
                    for t, v in own.get(d, {}).items()
                    if t.startswith(prefixes)
                }
                if fresh and backend == "cuda" and same[0] in launch:
                    fresh.update(_shared(fresh, launch[same[0]]))
                new.update(fresh)
                report[f"kernels: {backend} labels dropped"] += bool(stale)
                report[f"kernels: {backend} labels re-paired"] += bool(fresh)
            if name in launch and name not in bad.get("cuda", ()):
                shared = _shared(old, launch[name])
                if shared.get("nvidia_sm80.shared_bytes", 0) > 0:
                    report["kernels: dynamic shared memory > 0"] += 1
                new.update({t: v for t, v in shared.items() if old.get(t) != v})
            if new or drop:
                amendments.append(
                    {
                        "kind": "amendment",
                        "record_kind": "kernel",
                        "id": kid,
                        "targets": new,
                        **(
                            {"drop_targets": sorted(set(drop) - set(new))}
                            if drop
                            else {}
                        ),
                        "provenance": {**provenance, "commands": row.get("flags", {})},
                    }
                )
        targets = _module_targets(module, kernels, launch)
        if kernel_calls or targets:
            amendments.append(
                {
                    "kind": "amendment",
                    "record_kind": "module",
                    "id": mid,
                    "targets": targets,
                    "kernel_calls": kernel_calls,
                    "provenance": {**provenance, "commands": row.get("flags", {})},
                }
            )
    # Done-when check: same body (content key) -> same per-call label.
    spread, spread_before = [], []
    for values in per_call_pairs.values():
        counts = [v for v, _ in values]
        sums = [v * n for v, n in values]
        if len(counts) > 1 and len({n for _, n in values}) > 1:
            spread.append((max(counts) - min(counts)) / max(1, min(counts)))
            spread_before.append((max(sums) - min(sums)) / max(1, min(sums)))
    report["bodies (up to SSA names) measured with different call counts"] = len(spread)
    report["of those within 1%, per call"] = sum(s <= 0.01 for s in spread)
    report["of those within 1%, summed over calls (before)"] = sum(
        s <= 0.01 for s in spread_before
    )
    with (out / f"amendments-{suite}.jsonl").open("w", encoding="utf-8") as fh:
        for a in amendments:
            fh.write(json.dumps(a, sort_keys=True) + "\n")
    (out / f"report-{suite}.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


def _module_targets(module: dict, kernels: dict, launch: dict) -> dict:
    """Module shared memory (max) and occupancy (min) with the launch sizes."""
    old = module["targets"]
    if not launch or "nvidia_sm80.registers" not in old:
        return {}
    regs = {}
    for kid in module["kernels"]:
        if kid in kernels:
            regs[kernels[kid]["name"]] = kernels[kid]["targets"]
    new = {}
    for hw in _ARCH:
        if f"{hw}.registers" not in old:
            continue
        shared = [f["local_memory"] for f in launch.values()]
        new[f"{hw}.shared_bytes"] = old.get(f"{hw}.shared_bytes", 0) + max(shared)
        occupancy = [old[f"{hw}.occupancy"]] if f"{hw}.occupancy" in old else []
        for name, facts in launch.items():
            if name in regs:
                occupancy.append(_shared(regs[name], facts).get(f"{hw}.occupancy", 1.0))
        if occupancy:
            new[f"{hw}.occupancy"] = min(occupancy)
    return {t: v for t, v in new.items() if old.get(t) != v}
