"""Coverage of the shipped kernels model's 90% intervals: held-out architectures and OOD.

Issue 13's interval goal: the 90% intervals cover >= 88% of the labels on
held-out architectures and on the OOD suite. The shipped kernels model's
half-widths (``conformal_quantiles_``, cross-conformal over GroupKFold by
family at its fit) are applied to

- held out: each bundled kernel's residual under a kernels model fitted
  without its group (the folds of :func:`~mlircost_classic.models.cross_val_compose`,
  GroupKFold 5 over the linalg modules' families / architectures, the
  shipped model's settings), by source;
- OOD: the shipped model's own intervals on the suite's kernels.

Residuals are on the scale each target is fitted on (``log1p`` for log
targets), as the intervals are. The folds' kernels models are the ones
``benchmarks/composed_ood.py --models-cache DIR`` keeps (fitted here when
missing: about 7 minutes each on two idle cores). Run from the repository
root::

    python benchmarks/kernel_intervals.py --models-cache composed_folds/
"""

import argparse
import os

import numpy as np
from composed_ood import kernels_base
from sklearn.model_selection import GroupKFold

import mlircost_classic as mc
from mlircost_classic.models import interval_coverage
from mlircost_classic.models._composed import _kernels_model_without
from mlircost_classic.models._pretrained import _host


def held_out_predictions(kernels, models_dir, jobs: int) -> np.ndarray:
    """Each kernel's prediction by a kernels model that never saw its group."""
    names = list(mc.load_pretrained("modules", "linalg").target_names_)
    modules = mc.load_dataset("modules", level="linalg", targets=names)
    groups = np.asarray(modules.groups, dtype=object)
    out = np.full(np.shape(kernels.target), np.nan)
    for _, test in GroupKFold(n_splits=5).split(modules.data, groups=groups):
        model, held = _kernels_model_without(
            kernels_base(jobs), kernels, groups[test], models_dir
        )
        rows = np.flatnonzero(held)
        out[rows] = model.predict([kernels.data[i] for i in rows])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-cache", help="folder of the folds' kernels models")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    shipped = mc.load_pretrained("kernels")
    names = list(shipped.target_names_)
    kernels = mc.load_dataset("kernels")
    if list(kernels.target_names) != names:
        raise SystemExit("the bundled kernels' targets differ from the shipped model's")
    predicted = held_out_predictions(kernels, args.models_cache, args.jobs)
    ood = mc.load_dataset("kernels", suite="ood")
    lower, upper = shipped.predict_interval(ood.data)
    sources = np.asarray(kernels.sources, dtype=object)
    order = sorted(set(sources))
    load = os.getloadavg()[0]
    print(
        f"# {_host()['cpu']}, {os.cpu_count()} logical CPUs, load {load:.1f}; "
        f"{len(kernels.data)} bundled kernels, {len(ood.data)} OOD kernels"
    )
    print(
        "| target | half-width | held out: " + " / ".join(order) + " | OOD |",
        "|---|---:|---:|---:|",
        sep="\n",
    )
    for j, target in enumerate(names):
        scale = np.log1p if shipped.log_targets_[j] else (lambda v: v)
        y, p = kernels.target[:, j], predicted[:, j]
        measured = ~np.isnan(y) & ~np.isnan(p)
        q = shipped.conformal_quantiles_[j]
        residual = np.abs(scale(np.clip(y, 0, None)) - scale(np.clip(p, 0, None)))
        cells = []
        for source in order:
            rows = measured & (sources == source)
            cells.append(f"{(residual[rows] <= q).mean():.3f}" if rows.any() else "-")
        k = list(ood.target_names).index(target)
        cover = interval_coverage(ood.target[:, k], lower[:, j], upper[:, j])
        print(f"| {target} | {q:.3f} | {' / '.join(cells)} | {cover:.3f} |")


if __name__ == "__main__":
    main()
