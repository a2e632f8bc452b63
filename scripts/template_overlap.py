"""How much a kernel split leaks: test kernels whose op template was trained on.

Usage: python scripts/template_overlap.py [DATA_HOME] [N_SPLITS]

For the family split (GroupKFold by family, as the benchmark's headline) and
the op-template split (GroupKFold by ``op_templates``), prints the share of
test kernels that have a training kernel of the same op template, and of the
same template with every dimension of its loaded and stored tensors within 2x.
DATA_HOME is a dataset folder (default: the bundled one); N_SPLITS defaults
to 5.
"""

from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np
from sklearn.model_selection import GroupKFold

from mlircost_classic.datasets import load_dataset
from mlircost_classic.mlir import parse
from mlircost_classic.models import op_templates

_MOVES = (
    "iree_tensor_ext.dispatch.tensor.load",
    "iree_tensor_ext.dispatch.tensor.store",
)


def tensor_dims(module) -> tuple[int, ...]:
    """The dimensions of the tensors a dispatch loads and stores, in order."""
    dims: list[int] = []
    for op in module.ops:
        if op.name == _MOVES[0]:
            types = op.result_types
        elif op.name == _MOVES[1]:
            types = op.operand_types[:1]
        else:
            continue
        for t in types:
            dims += [d or 1 for d in t.shape or ()]
    return tuple(dims)


def close(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Same rank and every dimension within a factor of 2."""
    if len(a) != len(b):
        return False
    x, y = np.maximum(a, 1), np.maximum(b, 1)
    return bool(np.all(np.maximum(x / y, y / x) <= 2))


def overlap(templates, dims, folds) -> tuple[float, float]:
    """Shares of test rows with a same-template (and close-dims) training row."""
    same = near = total = 0
    for train, test in folds:
        seen = defaultdict(list)
        for i in train:
            seen[templates[i]].append(dims[i])
        for i in test:
            total += 1
            if templates[i] in seen:
                same += 1
                near += any(close(dims[i], d) for d in seen[templates[i]])
    return same / total, near / total


def main(data_home=None, n_splits: int = 5) -> None:
    ds = load_dataset("kernels", data_home=data_home)
    modules = [parse(text) for text in ds.data]
    templates = op_templates(modules)
    dims = [tensor_dims(m) for m in modules]
    groups = np.asarray(ds.groups)
    print(
        f"{len(modules)} kernels, {len(set(templates))} op templates, "
        f"{len(set(groups))} families"
    )
    for name, by in (("family", groups), ("op template", templates)):
        folds = GroupKFold(n_splits=n_splits).split(np.zeros(len(by)), groups=by)
        same, near = overlap(templates, dims, folds)
        print(
            f"split by {name}: {same:.1%} of test kernels have a training kernel "
            f"of the same op template, {near:.1%} also with every dimension within 2x"
        )


if __name__ == "__main__":
    main(
        sys.argv[1] if len(sys.argv) > 1 else None,
        int(sys.argv[2]) if len(sys.argv) > 2 else 5,
    )
