"""Spearman rank correlation of kernels models on the OOD suite's kernels.

Scores each given pretrained folder's kernels model (``kernels-dispatch``) on
the OOD suite's dispatch kernels whose text is not among the bundled training
kernels, for the issue's kernel targets; run from the repository root::

    python benchmarks/ood_kernels.py mlircost_classic/data/pretrained OTHER_DIR
"""

from __future__ import annotations

import argparse
import hashlib

import numpy as np
from goals import _NETWORK_GOALS
from scipy import stats

from mlircost_classic.datasets import load_dataset
from mlircost_classic.models import load_pretrained

#: The real-networks issue's kernel targets (benchmarks/goals.py).
TARGETS = list(_NETWORK_GOALS["kernels"])


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def unseen_ood_kernels(targets, bundled=None):
    """The OOD suite's kernel texts that are not bundled, their labels of
    ``targets``, the label columns' names and the suite's kernel count
    (``bundled``: the bundled kernel texts, read when not given)."""
    if bundled is None:
        bundled = load_dataset("kernels", level="dispatch").data
    seen = {_digest(t) for t in bundled}
    ood = load_dataset("kernels", level="dispatch", suite="ood", targets=targets)
    keep = [i for i, t in enumerate(ood.data) if _digest(t) not in seen]
    texts = [ood.data[i] for i in keep]
    return texts, ood.target[keep], list(ood.target_names), len(ood.data)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", help="folders holding kernels-dispatch.zip")
    args = parser.parse_args(argv)
    texts, y, names, total = unseen_ood_kernels(TARGETS)
    print(f"{len(texts)} OOD kernels not in the bundle (of {total})")
    print("model\t" + "\t".join(TARGETS))
    for folder in args.dirs:
        model = load_pretrained("kernels", "dispatch", path=folder)
        pred = np.asarray(model.predict(texts))
        row = []
        for target in TARGETS:
            truth = y[:, names.index(target)]
            guess = pred[:, list(model.target_names_).index(target)]
            ok = ~np.isnan(truth)
            row.append(f"{stats.spearmanr(truth[ok], guess[ok])[0]:.3f}")
        print(folder + "\t" + "\t".join(row))


if __name__ == "__main__":
    main()
