"""Refit the kernels model's recipe on a few targets and score it out of distribution.

What a change of the bundled kernels (a new family, another collection)
would do to the shipped kernels model, without refitting all of it: fits the
recipe of ``mlircost train --models kernels-dispatch`` (the default
featurizer, booster and prior; no intervals) on the bundled kernels for the
given targets (``--no-root-dims``: the featurizer without the heaviest op's
M, N and K columns, ``ShapeFeatures(root_loops=True)``, as before session 35),
then prints the Spearman rank correlation on

- the OOD suite's kernels whose text is not bundled
  (``ood_kernels.unseen_ood_kernels``, as ``benchmarks/ood_kernels.py`` scores
  saved models);
- the OOD suite's modules composed from their own IREE dispatches by the
  collector's aggregation rules (``composed_ood.ood_iree_regions``: the kernels
  model alone, no partitioner);
- with ``--hold-out FAMILY``, that family's kernels under a second fit
  without them (how far the rest of the bundle is from it);

and the OOD kernels with the largest labels of ``--show`` against their
predictions. With several ``--seeds`` it fits one booster per seed (their
row and column sampling) and prints each seed's module figures, then scores
their bag (the mean of the seeds' predictions in log1p space) as above. Run from
the repository root::

    python benchmarks/kernels_refit_ood.py --targets amd_gfx942.vgprs --hold-out skinny_gemm
"""

from __future__ import annotations

import argparse
import re

import numpy as np
from composed_ood import ood_iree_regions
from ood_kernels import unseen_ood_kernels

from mlircost_classic.datasets import load_dataset
from mlircost_classic.featurize import MLIRFeaturizer, ShapeFeatures
from mlircost_classic.models import CostModel, compose_regions, spearman
from mlircost_classic.models._cost_model import default_featurizer, default_prior
from mlircost_classic.models._pretrained import _host

_EXPORT = re.compile(r"@(\w+_dispatch_\d+\w*)\(")


def _fit(texts, y, names, jobs: int, seed: int, root_dims: bool = True) -> CostModel:
    featurizer = (
        default_featurizer("kernels")
        if root_dims
        else MLIRFeaturizer(shapes=ShapeFeatures(root_loops=True))
    )
    model = CostModel(
        featurizer=featurizer,
        prior=default_prior("kernels"),
        n_jobs=jobs,
        random_state=seed,
    )
    return model.fit(texts, y, target_names=names)


class _Bag:
    """Fitted models' mean prediction in log1p space (a composable kernels model)."""

    def __init__(self, models):
        self.models = models
        self.target_names_ = models[0].target_names_

    def predict(self, texts):
        logs = [
            np.log1p(np.maximum(np.asarray(m.predict(texts)), 0)) for m in self.models
        ]
        return np.expm1(np.mean(logs, axis=0))


def _module_scores(model, regions, records, names) -> list[str]:
    modules = compose_regions(model, regions, names)[0]
    cells = []
    for j, target in enumerate(names):
        labels = np.array([r["targets"].get(target, np.nan) for r in records], float)
        ok = ~np.isnan(labels) & ~np.isnan(modules[:, j])
        cells.append(f"{spearman(labels[ok], modules[ok, j]):.3f} ({ok.sum()})")
    return cells


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=["amd_gfx942.vgprs"])
    parser.add_argument("--hold-out", metavar="FAMILY")
    parser.add_argument("--show", metavar="TARGET", help="default: the first target")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="the boosters' (row and column sampling); several: their bag",
    )
    parser.add_argument(
        "--no-root-dims",
        dest="root_dims",
        action="store_false",
        help="the kernels featurizer before the root_dims columns: "
        "ShapeFeatures(root_loops=True) without root_dims=True",
    )
    args = parser.parse_args(argv)
    bunch = load_dataset("kernels", level="dispatch", targets=args.targets)
    names = list(bunch.target_names)
    print(f"host: {_host()}; {len(bunch.data)} bundled kernels")
    fits = [
        _fit(bunch.data, bunch.target, names, args.jobs, s, args.root_dims)
        for s in args.seeds
    ]
    model = fits[0] if len(fits) == 1 else _Bag(fits)

    texts, truth, ood_names, _ = unseen_ood_kernels(names, bunch.data)
    truth = truth[:, [ood_names.index(t) for t in names]]
    pred = np.asarray(model.predict(texts))
    records, regions = ood_iree_regions()
    if len(fits) > 1:
        print("\nOOD modules on IREE's split, seed by seed")
        for seed, fit in zip(args.seeds, fits, strict=True):
            cells = _module_scores(fit, regions, records, names)
            pairs = zip(names, cells, strict=True)
            print(f"  seed {seed}: " + ", ".join(f"{t} {c}" for t, c in pairs))
    modules = _module_scores(model, regions, records, names)
    print(f"\n| target | OOD kernels ({len(texts)}) | OOD modules on IREE's split |")
    print("|---|---:|---:|")
    for j, target in enumerate(names):
        ok = ~np.isnan(truth[:, j])
        kernels = spearman(truth[ok, j], pred[ok, j])
        print(f"| {target} | {kernels:.3f} | {modules[j]} |")

    show = names.index(args.show or names[0])
    order = np.argsort(-np.nan_to_num(truth[:, show], nan=-1))[: args.top]
    print(f"\nOOD kernels with the largest {names[show]}: label, prediction, export")
    for i in order:
        export = _EXPORT.search(texts[i])
        name = export.group(1) if export else "?"
        print(f"  {truth[i, show]:.0f}\t{pred[i, show]:.0f}\t{name}")

    if args.hold_out:
        held = np.array([g == args.hold_out for g in bunch.groups])
        if not held.any():
            raise SystemExit(f"no bundled kernels of family {args.hold_out!r}")
        rest = np.flatnonzero(~held)
        texts, y = [bunch.data[i] for i in rest], bunch.target[rest]
        without = [
            _fit(texts, y, names, args.jobs, s, args.root_dims) for s in args.seeds
        ]
        without = without[0] if len(without) == 1 else _Bag(without)
        rows = np.flatnonzero(held)
        guess = np.asarray(without.predict([bunch.data[i] for i in rows]))
        print(f"\n{args.hold_out} held out ({held.sum()} kernels):")
        for j, target in enumerate(names):
            y = bunch.target[rows, j]
            ok = ~np.isnan(y)
            print(f"  {target}: {spearman(y[ok], guess[ok, j]):.3f}")


if __name__ == "__main__":
    main()
