"""Held-out composed answers on IREE's own split against the partitioner's.

What costs the composed answer on held-out programs: the kernels model, or the
regions the Python partitioner gives it? Reads the cache of
``benchmarks/composed_ood.py`` (``--cache``: the folds and the partitioner's
held-out aggregates) and its folds' kernels models (``--models-cache``, kept
under a key that includes ``--jobs``), then composes each held-out module from
IREE's own dispatches (its record's ``kernels``,
:func:`composed_ood.iree_regions`) with the kernels model of the fold that
never saw its group, and prints the Spearman rank correlation of both
aggregates with the module labels, for the real networks and for all modules. Both are uncalibrated aggregates of the
same kernels models, so the difference is the partition and the region texts.
Run from the repository root after ``composed_ood.py`` with the same options::

    python benchmarks/composed_iree_split.py --cache C.npz --models-cache DIR [--jobs 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from composed_ood import GROUPINGS, NETWORKS, iree_regions, kernels_base, load_grouped
from ood_bootstrap import GOALS

import mlircost_classic as mc
from mlircost_classic.datasets import iter_dataset
from mlircost_classic.models import compose_regions, spearman
from mlircost_classic.models._composed import _kernels_model_without

#: The module targets issues 13 and 14 set goals for (``ood_bootstrap.GOALS``).
TARGETS = tuple(GOALS)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--models-cache", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=2, help="as composed_ood.py's")
    parser.add_argument(
        "--groups", choices=GROUPINGS, default="cluster", help="as composed_ood.py's"
    )
    args = parser.parse_args(argv)
    saved = dict(np.load(args.cache, allow_pickle=False))
    # composed_ood.py's module targets: the shipped modules model's
    names = list(mc.load_pretrained("modules", "linalg").target_names_)
    modules = load_grouped("modules", args.groups, level="linalg", targets=names)
    if not np.array_equal(np.asarray(modules.ids, dtype=str), saved["ids"]):
        raise SystemExit(f"{args.cache} holds other modules: run composed_ood.py again")
    folds, ours = saved["folds"], saved["raw"]
    records = {r["id"]: r for r in iter_dataset("modules")}
    texts = {k["id"]: k["ir"]["dispatch"] for k in iter_dataset("kernels")}
    kernels = load_grouped("kernels", args.groups)
    groups = np.asarray(modules.groups, dtype=object)
    iree = np.full(ours.shape, np.nan)
    for k in np.unique(folds):
        test = np.flatnonzero(folds == k)
        model, _ = _kernels_model_without(
            kernels_base(args.jobs), kernels, groups[test], args.models_cache
        )
        regions = [iree_regions(records[modules.ids[i]], texts) for i in test]
        iree[test] = compose_regions(model, regions, names)[0]
    sources = np.asarray(modules.sources, dtype=object)
    subsets = {
        "networks": np.isin(sources, NETWORKS),
        "all": np.ones(len(sources), bool),
    }
    print("| target | modules | partitioner | IREE's split |")
    print("|---|---|---:|---:|")
    for target in TARGETS:
        j = names.index(target)
        y = modules.target[:, j]
        for label, rows in subsets.items():
            ok = rows & ~np.isnan(y) & ~np.isnan(ours[:, j]) & ~np.isnan(iree[:, j])
            print(
                f"| {target} | {label} ({ok.sum()}) | {spearman(y[ok], ours[ok, j]):.3f} "
                f"| {spearman(y[ok], iree[ok, j]):.3f} |"
            )


if __name__ == "__main__":
    main()
