"""Re-read the bundled records' compiles for issue 18's label fixes.

Three facts the first collections did not record, each from a real compile
of the record's own text (``fill_missing_resources(ir[compiled_level])``, as
the collector compiled it), with the collector's own backend flags:

* ``scan`` compiles every module three more times, each only as far as the
  fact needs, and writes one JSON line per module to ``runs/relabel/scan.jsonl``
  (resumable: modules already there are skipped):

  - llvm-cpu to ``flow``: dispatch sites per export (:func:`dispatch_calls`),
    i.e. how often each kernel runs in one invocation;
  - CUDA to ``executable-targets`` with the sources dumped: each export's
    ``workgroup_local_memory`` (the dynamic shared memory IREE launches it
    with) and workgroup size, and CUDA's own dispatch texts;
  - ROCm to ``executable-sources`` with the sources dumped: ROCm's texts.

* ``amend`` turns the scan into amendment records (``runs/relabel/amendments.jsonl``)
  and a report of what changed (``runs/relabel/report.json``).

Usage::

    python scripts/relabel_kernels.py scan --jobs 2 [--suite ood] [--limit N]
    python scripts/relabel_kernels.py amend [--suite ood]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from joblib import Parallel, delayed

from mlircost_classic.collect._compile import (
    compile_phase,
    dispatch_calls,
    dispatch_content_key,
)
from mlircost_classic.collect._measure_gpu import workgroup_memory
from mlircost_classic.collect._resources import fill_missing_resources
from mlircost_classic.collect._toolchain import ToolError, host_cpu
from mlircost_classic.datasets import iter_dataset

OUT = Path("runs/relabel")


def _data_home(suite: str) -> Path:
    import mlircost_classic

    root = Path(mlircost_classic.__file__).parent / "data"
    return root / "ood" if suite == "ood" else root


def _scan_one(rec: dict, cpu_keys: dict[str, str]) -> dict:
    """The three phase compiles of one module record.

    ``cpu_keys`` maps its kernel records' names to the content keys of their
    (llvm-cpu) texts; a GPU source is kept in the row only where it differs.
    """
    names = list(cpu_keys)
    level = rec["compiled_level"]
    text = fill_missing_resources(rec["ir"][level])
    hardware = set(rec["provenance"].get("hardware", []))
    row: dict = {"id": rec["id"], "names": names, "seconds": {}}
    with tempfile.TemporaryDirectory(prefix="relabel-") as tmp:
        source = Path(tmp) / "input.mlir"
        source.write_text(text, encoding="utf-8")
        steps = [("flow", "llvm-cpu", "flow", False)]
        if hardware & {"nvidia_sm80", "nvidia_sm90"}:
            steps.append(("cuda", "cuda", "executable-targets", True))
        if "amd_gfx942" in hardware:
            steps.append(("rocm", "rocm", "executable-sources", True))
        for key, backend, phase, dump in steps:
            start = time.perf_counter()
            try:
                ir, flags, sources = compile_phase(
                    source,
                    backend,
                    phase,
                    Path(tmp) / key,
                    input_level=level,
                    timeout=600,
                    dump_sources=dump,
                )
            except (ToolError, OSError) as exc:
                row.setdefault("errors", {})[key] = str(exc)[-2000:]
                continue
            finally:
                row["seconds"][key] = round(time.perf_counter() - start, 3)
            row.setdefault("flags", {})[key] = flags
            if key == "flow":
                row["calls"] = dispatch_calls(ir)
            else:
                keys = {n: dispatch_content_key(t) for n, t in sources.items()}
                row[f"{key}_keys"] = keys
                row[f"{key}_sources"] = {
                    n: t for n, t in sources.items() if cpu_keys.get(n) != keys[n]
                }
            if key == "cuda":
                row["cuda_launch"] = workgroup_memory(ir)
    return row


def scan(suite: str, jobs: int, limit: int | None) -> None:
    home = _data_home(suite)
    out = OUT / f"scan-{suite}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        for line in out.open(encoding="utf-8"):
            try:
                done.add(json.loads(line)["id"])
            except (ValueError, KeyError):
                continue
    kernels = {k["id"]: k for k in iter_dataset("kernels", home)}
    todo = []
    for rec in iter_dataset("modules", home):
        if rec["status"] == "failed" or rec["id"] in done:
            continue
        cpu_keys = {
            kernels[k]["name"]: dispatch_content_key(kernels[k]["ir"]["dispatch"])
            for k in rec["kernels"]
            if k in kernels
        }
        todo.append((rec, cpu_keys))
    if limit:
        todo = todo[:limit]
    print(f"{len(done)} done, {len(todo)} to scan, host {host_cpu()}", flush=True)
    start = time.time()
    with out.open("a", encoding="utf-8") as fh:
        rows = Parallel(n_jobs=jobs, return_as="generator_unordered")(
            delayed(_scan_one)(rec, keys) for rec, keys in todo
        )
        for i, row in enumerate(rows, 1):
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            if i % 50 == 0:
                rate = i / (time.time() - start)
                print(f"{i}/{len(todo)} ({rate:.2f}/s)", flush=True)
    print(f"scanned {len(todo)} in {time.time() - start:.0f} s", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("scan")
    p.add_argument("--suite", default="main", choices=["main", "ood"])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--limit", type=int)
    p = sub.add_parser("amend")
    p.add_argument("--suite", default="main", choices=["main", "ood"])
    args = parser.parse_args(argv)
    if args.command == "scan":
        scan(args.suite, args.jobs, args.limit)
    else:
        from relabel_amend import amend  # noqa: PLC0415

        amend(args.suite, _data_home(args.suite), OUT)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
