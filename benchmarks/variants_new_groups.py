"""The default ranker's held-out tau on the groups a collection added, and on the others.

When a pack adds dispatches, the decision benchmark (``variants_rank.py``) scores
a different set of groups; this separates what the new data did to the groups
scored before from how hard the new groups are. Out-of-fold predictions of the
default :class:`VariantRanker` (GroupKFold by family, 5 folds, as the
benchmark) trained on every candidate, scored within the old and the new
groups; then trained and scored on the old groups alone. Run from the
repository root after packing ``RUN_DIR``::

    OMP_NUM_THREADS=1 python benchmarks/variants_new_groups.py RUN_DIR \\
        [--hardware nvidia_sm80]
"""

import argparse

import numpy as np
from sklearn.base import clone
from variants_rank import TASKS

from mlircost_classic.datasets import iter_dataset, load_dataset
from mlircost_classic.models import VariantRanker
from mlircost_classic.models._rank import _family_folds, _sign, group_metrics

#: The target each hardware's candidates are ranked by (variants_rank.py's).
TARGETS = {hardware: task[0] for hardware, task in TASKS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="run folder whose variants are the new ones")
    parser.add_argument("--hardware", choices=sorted(TARGETS), default="nvidia_sm80")
    args = parser.parse_args()
    target = TARGETS[args.hardware]
    ds = load_dataset("variants", hardware=args.hardware, targets=[target])
    y = ds.target[:, 0]
    keep = ~np.isnan(y)
    texts = [t for t, k in zip(ds.data, keep, strict=True) if k]
    y, groups = y[keep], ds.groups[keep]
    families, is_default = ds.families[keep], ds.is_default[keep]
    added = {r["id"] for r in iter_dataset("variants", args.run_dir)}
    new = np.isin(np.asarray(ds.ids)[keep], list(added))
    sign = _sign(target)

    def held_out(rows):
        idx = np.flatnonzero(rows)
        pred = np.full(len(y), np.nan)
        for train, test in _family_folds([texts[i] for i in idx], families[idx], 5):
            tr, te = idx[train], idx[test]
            model = clone(VariantRanker()).fit(
                [texts[i] for i in tr], sign * y[tr], groups=groups[tr]
            )
            pred[te] = sign * model.predict([texts[i] for i in te])
        return pred

    def tau(pred, rows):
        metrics = group_metrics(
            np.where(rows, y, np.nan),
            np.where(rows, pred, np.nan),
            groups,
            is_default,
            higher_is_better=sign < 0,
        )
        return metrics["kendall_tau"]

    every = np.ones(len(y), bool)
    print(f"{target}: {len(y)} candidates, {int(new.sum())} from {args.run_dir}")
    pred = held_out(every)
    print(
        f"trained on all: tau {tau(pred, every):.4f}, old groups {tau(pred, ~new):.4f}, "
        f"new groups {tau(pred, new):.4f}"
    )
    print(f"trained on the old groups alone: tau {tau(held_out(~new), ~new):.4f}")


if __name__ == "__main__":
    main()
