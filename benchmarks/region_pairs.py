"""The partitioner's region texts against IREE's dispatch texts, pair by pair.

For every real-network module (torchvision, transformers) whose region count
matches its IREE dispatch count, pairs each region with IREE's dispatch at
the same position (IREE's ``_dispatch_<n>_`` order), then prints how many
pairs store the same tensors (``writeonly`` bindings: aligned) and, of those,
how many also load the same ones (the result types of their
``dispatch.tensor.load`` ops), and the shipped kernels model's Spearman on the
pairs' measured labels from our text and from IREE's (and the median
``|log ratio|`` between the two predictions). No rule is fitted: it measures
how far the texts the composed answer reads are from the ones the kernels
model learned from. Run from the repository root::

    python benchmarks/region_pairs.py
"""

from __future__ import annotations

import collections
import os
import re

import numpy as np
from scipy import stats

import mlircost_classic as mc
from mlircost_classic.datasets import iter_dataset
from mlircost_classic.featurize import partition_dispatches
from mlircost_classic.models._pretrained import _host

TARGETS = (
    "amd_gfx942.sgprs",
    "amd_gfx942.vgprs",
    "nvidia_sm80.registers",
    "cpu_x86_64_v3.code_bytes",
)
_NUMBER = re.compile(r"_dispatch_(\d+)_")
_LOADED = re.compile(r"dispatch\.tensor\.load .* -> (tensor<[^>]*>)")
_STORED = re.compile(r"writeonly:(tensor<[^>]*>)")


def pairs() -> list[tuple[str, str, dict]]:
    """(our region text, IREE's dispatch text, its targets) of each pair."""
    kernels = {k["id"]: k for k in iter_dataset("kernels")}
    out = []
    for rec in iter_dataset("modules"):
        if (
            rec.get("source") not in ("torchvision", "transformers")
            or "linalg" not in rec["ir"]
            or rec.get("status") == "failed"
        ):
            continue
        ks = [kernels[k] for k in rec.get("kernels", []) if k in kernels]
        if not all(_NUMBER.search(k["ir"]["dispatch"]) for k in ks):
            continue
        try:
            regions = partition_dispatches(rec["ir"]["linalg"])
        except Exception:  # noqa: BLE001 - a module we cannot read pairs nothing
            continue
        if len(regions) != len(ks):
            continue
        ks.sort(key=lambda k: int(_NUMBER.search(k["ir"]["dispatch"]).group(1)))
        out += [
            (r.text, k["ir"]["dispatch"], k["targets"])
            for r, k in zip(regions, ks, strict=True)
        ]
    return out


def main() -> None:
    host = _host()
    print(f"host {host['cpu']}, {host['cores']} CPUs, load {os.getloadavg()[0]:.1f}")
    found = pairs()
    aligned = [
        i
        for i, (ours, iree, _) in enumerate(found)
        if sorted(_STORED.findall(ours)) == sorted(_STORED.findall(iree))
    ]
    same = [
        i
        for i in aligned
        if collections.Counter(_LOADED.findall(found[i][0]))
        == collections.Counter(_LOADED.findall(found[i][1]))
    ]
    print(
        f"{len(found)} pairs; {len(aligned)} store what IREE's store, "
        f"{len(same)} of them load what IREE's load too"
    )
    model = mc.load_pretrained("kernels")
    names = list(model.target_names_)
    ours = model.predict([p[0] for p in found])
    iree = model.predict([p[1] for p in found])
    for target in TARGETS:
        j = names.index(target)
        y = np.array([p[2].get(target, np.nan) for p in found], dtype=float)
        for label, rows in (
            ("all", np.arange(len(found))),
            ("aligned", np.array(aligned)),
        ):
            ok = rows[~np.isnan(y[rows])]
            ratio = np.abs(np.log((ours[ok, j] + 1) / (iree[ok, j] + 1)))
            print(
                f"{target:26s} {label:8s} n={len(ok):5d} Spearman from our text "
                f"{stats.spearmanr(y[ok], ours[ok, j])[0]:.3f}, from IREE's "
                f"{stats.spearmanr(y[ok], iree[ok, j])[0]:.3f}; median |log ratio| "
                f"{np.median(ratio):.3f}"
            )


if __name__ == "__main__":
    main()
