"""Drop the targets whose meaning changed from variant records collected before
the collector's issue-18 labels (CUDA shared memory with IREE's dynamic
workgroup memory, CPU instructions per call).

A CUDA candidate collected before had ``nvidia_*.shared_bytes`` from ptxas alone
(static shared memory) and an occupancy derived from it; a CPU candidate had
its dispatch's instructions summed over every call. Those targets are removed
(registers, spills, stack, VGPRs ... keep their meaning and stay) and the
record's provenance says which and why. Records are recognised by their
commands: the new CUDA compile prints the IR before serialization, the new CPU
measurement has a ``calls`` step. Rewrites a run's ``variants.jsonl`` in place
(stop the collector first)::

    python scripts/variants_drop_stale.py RUN_DIR
"""

import json
import sys
from pathlib import Path

from mlircost_classic.datasets import canonical_json, complete_record, iter_records

REASON = (
    "collected before the issue-18 labels: CUDA shared memory without IREE's "
    "dynamic workgroup memory (and occupancy from it), CPU instructions summed "
    "over calls; dropped rather than mixed with the new meaning"
)


def stale_targets(rec: dict) -> list[str]:
    commands = rec["provenance"].get("commands", {})
    if rec["backend"] == "cuda":
        flags = commands.get("compile:cuda", [])
        if not any(f.startswith("--mlir-print-ir-before=") for f in flags):
            return [
                t for t in rec["targets"] if t.endswith((".shared_bytes", ".occupancy"))
            ]
    if rec["backend"] == "llvm-cpu" and "calls" not in commands:
        return [t for t in rec["targets"] if t.endswith(".instructions")]
    return []


def main(run_dir: str) -> None:
    path = Path(run_dir) / "variants.jsonl"
    out, dropped = [], 0
    for rec in iter_records(path):
        stale = stale_targets(rec)
        if stale:
            rec = dict(rec)
            rec["targets"] = {k: v for k, v in rec["targets"].items() if k not in stale}
            rec["provenance"] = {
                **rec["provenance"],
                "dropped": {"targets": stale, "reason": REASON},
            }
            dropped += 1
        out.append(complete_record(rec))
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(canonical_json(r) + "\n" for r in out), encoding="utf-8")
    tmp.replace(path)
    print(json.dumps({"records": len(out), "with_targets_dropped": dropped}))


if __name__ == "__main__":
    main(sys.argv[1])
