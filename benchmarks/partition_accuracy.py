"""How close the Python dispatch partitioner comes to IREE's dispatches.

For every bundled linalg module (and the OOD suite's) with a measured
``cpu_x86_64_v3.dispatches``, compares :func:`partition_dispatches` with the
module's IREE kernels (its record's ``kernels`` list): exact dispatch-count
match rate (also over the real networks alone), the sum of absolute
dispatch-count errors, and agreement of the dispatch kinds (matmul, conv, reduction,
softmax, elementwise, memcpy ... read from IREE's export names), per family.

Run: ``python benchmarks/partition_accuracy.py [--family NAME] [--show N]
[--save FILE]``; ``--save`` writes each module's id, family, IREE's count and
ours (JSON Lines) to compare two versions of the partitioner module by module.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

from mlircost_classic.datasets import iter_dataset
from mlircost_classic.featurize import dispatch_kind, partition_dispatches

# IREE names a pooling dispatch conv_..., an initializer's by its ops.
_AS_IREE_NAMES = {"pooling": "conv", "initializer": "elementwise"}
# families of real networks (transformers, torchvision), not generated ones
_NETWORKS = ("hf_", "tv_")
OOD = Path(__file__).resolve().parent.parent / "mlircost_classic" / "data" / "ood"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", help="only this family")
    parser.add_argument("--show", type=int, default=0, help="print N mismatches")
    parser.add_argument(
        "--save", type=Path, help="write per-module counts (JSON Lines) to this file"
    )
    args = parser.parse_args()
    saved = []
    for suite, home in (("main", None), ("ood", OOD)):
        kernels = {k["id"]: k["name"] for k in iter_dataset("kernels", home)}
        stats = defaultdict(Counter)
        shown = 0
        seconds = []
        for rec in iter_dataset("modules", home):
            measured = rec["targets"].get("cpu_x86_64_v3.dispatches")
            text = rec["ir"].get("linalg")
            if measured is None or text is None:
                continue
            if args.family and rec["family"] != args.family:
                continue
            start = time.perf_counter()
            regions = partition_dispatches(text)
            seconds.append(time.perf_counter() - start)
            truth = Counter(
                dispatch_kind(kernels[k]) for k in rec["kernels"] if k in kernels
            )
            guess = Counter(_AS_IREE_NAMES.get(r.kind, r.kind) for r in regions)
            s = stats[rec["family"]]
            s["modules"] += 1
            s["exact"] += len(regions) == int(measured)
            s["abs_error"] += abs(len(regions) - int(measured))
            s["kinds_exact"] += truth == guess
            s["kinds_shared"] += sum((truth & guess).values())
            s["kinds_total"] += max(sum(truth.values()), sum(guess.values()))
            saved.append(
                {
                    "suite": suite,
                    "id": rec["id"],
                    "family": rec["family"],
                    "iree": int(measured),
                    "ours": len(regions),
                }
            )
            if len(regions) != int(measured) and shown < args.show:
                shown += 1
                print(f"-- {rec['family']} {rec['params']} iree={int(measured)}")
                print("   iree:", sorted(kernels.get(k, "?") for k in rec["kernels"]))
                print("   ours:", [(r.name, r.calls, r.lines) for r in regions])
        total = Counter()
        print(f"\n{suite}: family, modules, exact count, kinds exact, kind agreement")
        for family, s in sorted(stats.items()):
            total.update(s)
            print(
                f"  {family:14s} {s['modules']:5d} {s['exact'] / s['modules']:6.1%} "
                f"{s['kinds_exact'] / s['modules']:6.1%} "
                f"{s['kinds_shared'] / max(s['kinds_total'], 1):6.1%}"
            )
        networks = Counter()
        for family, s in stats.items():
            if family.startswith(_NETWORKS):
                networks.update(s)
        print(
            f"  real networks: {networks['exact']} of {networks['modules']} exact; "
            f"sum of |dispatch count error| {total['abs_error']}"
        )
        if total["modules"]:
            seconds.sort()
            print(
                f"  {'all':14s} {total['modules']:5d} "
                f"{total['exact'] / total['modules']:6.1%} "
                f"{total['kinds_exact'] / total['modules']:6.1%} "
                f"{total['kinds_shared'] / max(total['kinds_total'], 1):6.1%}  "
                f"median {1e3 * seconds[len(seconds) // 2]:.1f} ms per module"
            )
    if args.save:
        args.save.write_text("".join(json.dumps(row) + "\n" for row in saved))


if __name__ == "__main__":
    main()
