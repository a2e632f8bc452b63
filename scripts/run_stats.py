"""Cost of a collection run: seconds per record by stage, and the share of new kernels.

Usage: python scripts/run_stats.py [--since DATE] RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a ``mlircost collect --out`` folder (``modules.jsonl`` and
``kernels.jsonl``). For each it prints the records, architectures and statuses,
the mean and median seconds of every stage the records measured (their
``seconds`` field, as the collector timed it on the host in their provenance),
the total per record, how many of the kernels the modules dispatch are not in
the bundled dataset yet, and the failures by stage. Timings depend on the
host's load: they are the run's, not the tools'. ``--since`` keeps the
records collected from that UTC date-time on (ISO 8601, as in their
provenance, e.g. ``2026-12-05T08:25``): the cost of a run after a change.
"""

from __future__ import annotations

import argparse
import collections
import statistics
from pathlib import Path

from mlircost_classic.datasets import iter_dataset, read_records

# Stages that hold others (``lower`` is the sum of ``lower:*``): the total
# per record adds only these.
_TOTALS = ("lower", "measure", "measure:cpu_timing")


def run_stats(run: Path, bundled: set[str], since: str = "") -> list[str]:
    """The lines printed for one run folder (empty when it has no modules
    collected from ``since`` on)."""
    modules = [
        m
        for m in read_records(run / "modules.jsonl")
        if m["provenance"].get("date", "") >= since
    ]
    if not modules:
        return []
    kernels = {r["id"] for r in read_records(run / "kernels.jsonl")}
    statuses = collections.Counter(m["status"] for m in modules)
    hosts = collections.Counter(m["provenance"].get("host_cpu", "?") for m in modules)
    lines = [
        f"== {run}: {len(modules)} modules, "
        f"{len({m['family'] for m in modules})} architectures, "
        f"status {dict(statuses)}, host {dict(hosts)}"
    ]
    stages = sorted({s for m in modules for s in m.get("seconds", {})})
    for stage in stages:
        values = [m["seconds"].get(stage, 0.0) for m in modules]
        lines.append(
            f"  {stage:24s} mean {statistics.mean(values):8.1f}  "
            f"median {statistics.median(values):8.1f}"
        )
    total = [sum(m["seconds"].get(s, 0.0) for s in _TOTALS) for m in modules]
    lines.append(
        f"  total per record: mean {statistics.mean(total):.1f} s, median "
        f"{statistics.median(total):.1f} s, sum {sum(total) / 3600:.2f} h"
    )
    dispatched = [k for m in modules for k in m.get("kernels", [])]
    distinct = set(dispatched)
    new = distinct - bundled
    lines.append(
        f"  kernels: {len(dispatched)} dispatches in the modules, {len(distinct)} "
        f"distinct, {len(new)} not in the bundled dataset "
        f"({len(new) / max(1, len(distinct)):.1%} new); {len(kernels & distinct)} "
        "of them with a kernel record in the run"
    )
    failures = collections.Counter(
        f["stage"] for m in modules for f in m.get("failures", [])
    )
    lines.append(f"  failures by stage: {dict(failures) or '-'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.strip().splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", type=Path)
    parser.add_argument(
        "--since",
        default="",
        metavar="DATE",
        help="only records collected from this UTC date-time on (ISO 8601)",
    )
    args = parser.parse_args(argv)
    bundled = {r["id"] for r in iter_dataset("kernels")}
    for run in args.runs:
        lines = run_stats(run, bundled, args.since)
        print("\n".join(lines) or f"== {run}: no modules")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
