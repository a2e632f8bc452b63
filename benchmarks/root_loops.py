"""Do the heaviest op's loop extents help the kernels model? Held-out Spearman with and without.

Featurizes the bundled kernels once with ``MLIRFeaturizer()`` and once with
``default_featurizer("kernels")`` (``ShapeFeatures(root_loops=True)``), then
fits :func:`~mlircost_classic.models.default_estimator` on ``log1p`` of each
target on the same GroupKFold-by-family folds and prints the pooled and
fold-mean Spearman of both, and the median error on the top 5% of labels
(the kernels that set a module's maximum). The featurizers' vocabularies are
fitted on all kernels, the same in both arms. Run from the repository root::

    python benchmarks/root_loops.py [--targets nvidia_sm80.registers ...] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from joblib import Parallel, delayed
from scipy import stats
from sklearn.model_selection import GroupKFold

import mlircost_classic as mc
from mlircost_classic.featurize import MLIRFeaturizer
from mlircost_classic.models import default_estimator, default_featurizer
from mlircost_classic.models._pretrained import _host

TARGETS = ["nvidia_sm80.registers", "nvidia_sm90.registers"]


def _fit(X, y, train, test):
    train = train[~np.isnan(y[train])]
    est = default_estimator(len(train))
    est.fit(X[train], np.log1p(y[train]))
    return test, est.predict(X[test])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=TARGETS)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    start = time.time()
    data = mc.load_dataset("kernels", targets=args.targets)
    host = _host()
    print(
        f"{len(data.data)} kernels, {len(set(data.groups))} families; host "
        f"{host['cpu']}, {host['cores']} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    arms = {
        "default": MLIRFeaturizer().fit_transform(data.data).tocsr(),
        "root loops": default_featurizer("kernels").fit_transform(data.data).tocsr(),
    }
    folds = list(GroupKFold(args.folds).split(data.data, groups=data.groups))
    for j, name in enumerate(data.target_names):
        y = data.target[:, j]
        ok = ~np.isnan(y)
        top = ok & (y >= np.nanpercentile(y, 95))
        line = [f"{name:28s}"]
        for arm, X in arms.items():
            pred = np.full(len(y), np.nan)
            for test, p in Parallel(n_jobs=args.jobs)(
                delayed(_fit)(X, y, train, test) for train, test in folds
            ):
                pred[test] = p
            pooled = stats.spearmanr(y[ok], pred[ok])[0]
            by_fold = np.mean(
                [stats.spearmanr(y[t][ok[t]], pred[t][ok[t]])[0] for _, t in folds]
            )
            err = np.median(np.expm1(pred[top]) - y[top])
            line.append(f"{arm}: {pooled:.4f} (folds {by_fold:.4f}, top 5% {err:+.1f})")
        print("  ".join(line), flush=True)
    print(f"{(time.time() - start) / 60:.1f} min, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
