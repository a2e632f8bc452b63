"""Coverage of the shipped kernels model's 90% intervals: held-out architectures and OOD.

Issue 13's interval goal: the 90% intervals cover >= 88% of the labels on
held-out architectures and on the OOD suite. The shipped kernels model's
half-widths (``conformal_quantiles_``, cross-conformal over GroupKFold by
family at its fit) are applied to

- held out: each bundled kernel's residual under a kernels model fitted
  without its group (the folds of :func:`~mlircost_classic.models.cross_val_compose`,
  GroupKFold 5 over the linalg modules' groups, the shipped model's
  settings; ``--groups``: clusters of same-design architectures by default,
  as ``composed_ood.py``'s), by source, with the Spearman of the kernel goals'
  targets;
- OOD: the shipped model's own intervals on the suite's kernels.

Three half-widths per target: the shipped model's, the held-out residuals'
pooled 90% quantile, and the largest of the sources' own quantiles
(``CostModel.calibrate(..., strata=sources)``: pooled, the many easy network
kernels hide the families' hard ones and the OOD suite's). ``--write`` saves
the shipped kernels model with the last (``calibration_`` "group, largest of
the strata"); the point predictions do not change.

Residuals are on the scale each target is fitted on (``log1p`` for log
targets), as the intervals are. The folds' kernels models are the ones
``benchmarks/composed_ood.py --models-cache DIR`` keeps (fitted here when
missing: about 7 minutes each on two idle cores). Run from the repository
root::

    python benchmarks/kernel_intervals.py --models-cache composed_folds/ [--write]
        [--groups cluster|architecture]
"""

import argparse
import copy
import os

import numpy as np
from composed_ood import GROUPINGS, kernels_base, load_grouped, rho, save_recalibrated
from goals import _NETWORK_GOALS
from sklearn.model_selection import GroupKFold

import mlircost_classic as mc
from mlircost_classic.models import interval_coverage
from mlircost_classic.models._composed import _kernels_model_without
from mlircost_classic.models._cost_model import _calibration_name
from mlircost_classic.models._pretrained import PRETRAINED_DIR, _host, pretrained_name


def held_out_predictions(
    kernels, models_dir, jobs: int, grouping: str = "cluster"
) -> np.ndarray:
    """Each kernel's prediction by a kernels model that never saw its group
    (``kernels.groups``, grouped as ``grouping`` says: as ``composed_ood.py``'s
    folds)."""
    names = list(mc.load_pretrained("modules", "linalg").target_names_)
    modules = load_grouped("modules", grouping, level="linalg", targets=names)
    groups = np.asarray(modules.groups, dtype=object)
    out = np.full(np.shape(kernels.target), np.nan)
    for _, test in GroupKFold(n_splits=5).split(modules.data, groups=groups):
        model, held = _kernels_model_without(
            kernels_base(jobs), kernels, groups[test], models_dir
        )
        rows = np.flatnonzero(held)
        out[rows] = model.predict([kernels.data[i] for i in rows])
    return out


def _quantiles(model, kernels, predicted, strata) -> list[float]:
    """Half-widths of ``model``'s targets from the held-out predictions."""
    model.calibrate(y=kernels.target, predictions=predicted, strata=strata)
    return list(model.conformal_quantiles_)


def write_calibrated(shipped, kernels, predicted, sources) -> None:
    """Save the shipped kernels model with the sources' largest half-widths."""
    path = PRETRAINED_DIR / f"{pretrained_name('kernels')}.zip"
    shipped.calibrate(
        y=kernels.target,
        predictions=predicted,
        strata=sources,
        calibration=_calibration_name(kernels.groups, sources),
    )
    save_recalibrated(
        shipped,
        path,
        "held-out predictions of benchmarks/kernel_intervals.py (each kernel "
        "under the fold kernels model of benchmarks/composed_ood.py that never "
        "saw its group), each source's 90% half-width, the "
        "largest kept",
    )
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-cache", help="folder of the folds' kernels models")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--groups",
        choices=GROUPINGS,
        default="cluster",
        help="as composed_ood.py's (its --models-cache holds the folds of one)",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="recalibrate the shipped kernels model (the sources' largest "
        "half-widths of the held-out predictions) and save it",
    )
    args = parser.parse_args()
    shipped = mc.load_pretrained("kernels")
    names = list(shipped.target_names_)
    kernels = load_grouped("kernels", args.groups)
    if list(kernels.target_names) != names:
        raise SystemExit("the bundled kernels' targets differ from the shipped model's")
    predicted = held_out_predictions(kernels, args.models_cache, args.jobs, args.groups)
    ood = mc.load_dataset("kernels", suite="ood")
    sources = np.asarray(kernels.sources, dtype=object)
    order = sorted(set(sources))
    candidates = {"shipped": list(shipped.conformal_quantiles_)}
    probe = copy.deepcopy(shipped)
    candidates["pooled"] = _quantiles(probe, kernels, predicted, None)
    candidates["sources"] = _quantiles(probe, kernels, predicted, sources)
    load = os.getloadavg()[0]
    print(
        f"# {_host()['cpu']}, {os.cpu_count()} logical CPUs, load {load:.1f}; "
        f"{len(kernels.data)} bundled kernels, {len(ood.data)} OOD kernels"
    )
    print(
        "\nCoverage of 90% intervals by half-width: the shipped model's, the "
        "held-out predictions' pooled, and the largest of the sources' "
        "(held out: " + " / ".join(order) + ")\n"
    )
    print(
        "| target | half-width shipped / pooled / sources | held out, shipped "
        "| held out, sources | OOD shipped / pooled / sources |",
        "|---|---:|---:|---:|---:|",
        sep="\n",
    )
    ood_names = list(ood.target_names)
    bounds = {}
    for key, quantiles in candidates.items():
        probe.conformal_quantiles_ = quantiles
        bounds[key] = probe.predict_interval(ood.data)
    for j, target in enumerate(names):
        scale = np.log1p if shipped.log_targets_[j] else (lambda v: v)
        y, p = kernels.target[:, j], predicted[:, j]
        measured = ~np.isnan(y) & ~np.isnan(p)
        residual = np.abs(scale(np.clip(y, 0, None)) - scale(np.clip(p, 0, None)))
        held = []
        for key in ("shipped", "sources"):
            q = candidates[key][j]
            cells = []
            for source in order:
                rows = measured & (sources == source)
                cells.append(
                    f"{(residual[rows] <= q).mean():.3f}" if rows.any() else "-"
                )
            held.append(" / ".join(cells))
        yo = ood.target[:, ood_names.index(target)]
        widths = " / ".join(f"{candidates[k][j]:.3f}" for k in candidates)
        covers = " / ".join(
            f"{interval_coverage(yo, lower[:, j], upper[:, j]):.3f}"
            for lower, upper in bounds.values()
        )
        print(f"| {target} | {widths} | {held[0]} | {held[1]} | {covers} |")
    print(
        f"\nSpearman of the held-out predictions (groups: {args.groups}), by "
        "source, for the kernel goals' targets\n",
        "| target (goal) | all | " + " | ".join(order) + " |",
        "|---|---:|" + "---:|" * len(order),
        sep="\n",
    )
    for target, goal in _NETWORK_GOALS["kernels"].items():
        j = names.index(target)
        y, p = kernels.target[:, j], predicted[:, j]
        cells = []
        for rows in [np.ones(len(y), bool)] + [sources == s for s in order]:
            value = rho(y[rows], p[rows])
            cells.append("-" if value is None else f"{value:.3f}")
        print(f"| {target} ({goal:g}) | " + " | ".join(cells) + " |")
    if args.write:
        write_calibrated(shipped, kernels, predicted, sources)


if __name__ == "__main__":
    main()
