"""How close the Python partitioner's region texts come to IREE's own, as the kernels model reads them.

The composed answer runs the kernels model on the partitioner's region texts;
the kernels model learned from IREE's executable sources. For each module
(every 10th bundled families module, every 2nd network module, the whole OOD
suite) this composes the same kernels model twice, on the partitioner's
regions and on IREE's own dispatches of the module (its record's ``kernels``
list, called as often as ``kernel_calls`` says), and prints per target and
source the median and mean ``|log1p(python) - log1p(iree)|`` of the module
aggregates: 0 where the partitioner's texts read as IREE's. No label is used,
so it measures the texts, not the model. Run from the repository root::

    python benchmarks/partition_fidelity.py [--every 10] [--model DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

import mlircost_classic as mc
from mlircost_classic.datasets import iter_dataset
from mlircost_classic.featurize import DispatchRegion, partition_dispatches
from mlircost_classic.models import CostModel, compose_regions, kernel_calls
from mlircost_classic.models._pretrained import _host

OOD = Path("mlircost_classic/data/ood")
TARGETS = (
    "nvidia_sm80.registers",
    "nvidia_sm90.registers",
    "amd_gfx942.vgprs",
    "amd_gfx942.sgprs",
    "cpu_x86_64_v3.code_bytes",
    "cpu_x86_64_v3.instructions",
    "nvidia_sm80.shared_bytes",
    "amd_gfx942.lds_bytes",
)
GROUPS = ("families", "torchvision", "transformers", "ood")


def modules(every: int) -> list[tuple[str, dict]]:
    """(group, record) of the linalg modules compared: a sample of the bundle's, all OOD."""
    out = []
    for home, suite in ((None, "main"), (OOD, "ood")):
        for i, record in enumerate(iter_dataset("modules", home)):
            if not record["ir"].get("linalg"):
                continue
            source = record.get("source", "families")
            step = every if source == "families" else max(every // 5, 1)
            if suite == "main" and i % step:
                continue
            out.append(("ood" if suite == "ood" else source, record))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=10, help="families sample step")
    parser.add_argument("--model", help="a kernels model folder (default: shipped)")
    args = parser.parse_args()
    model = CostModel.load(args.model) if args.model else mc.load_pretrained("kernels")
    names = [t for t in TARGETS if t in model.target_names_]
    texts = {k["id"]: k["ir"]["dispatch"] for k in iter_dataset("kernels", OOD)}
    texts.update({k["id"]: k["ir"]["dispatch"] for k in iter_dataset("kernels")})
    rows = modules(args.every)
    iree = [
        [
            DispatchRegion(k, "other", texts[k], n, ())
            for k, n in kernel_calls(record).items()
            if k in texts
        ]
        for _, record in rows
    ]
    python = [partition_dispatches(record["ir"]["linalg"]) for _, record in rows]
    by_iree = compose_regions(model, iree, names)[0]
    by_python = compose_regions(model, python, names)[0]
    group = np.array([g for g, _ in rows])
    print(
        f"# {_host()['cpu']}, {os.cpu_count()} logical CPUs; "
        + ", ".join(f"{g} {int((group == g).sum())}" for g in GROUPS)
        + " modules"
    )
    print("| target | " + " | ".join(GROUPS) + " |")
    print("|---|" + "---:|" * len(GROUPS))
    for j, target in enumerate(names):
        gap = np.abs(
            np.log1p(np.clip(by_python[:, j], 0, None))
            - np.log1p(np.clip(by_iree[:, j], 0, None))
        )
        cells = [
            f"{np.nanmedian(gap[group == g]):.3f} / {np.nanmean(gap[group == g]):.3f}"
            for g in GROUPS
        ]
        print(f"| {target} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
