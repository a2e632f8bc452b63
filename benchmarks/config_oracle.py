"""How much of a kernel's registers does the compiler's own config choice explain?

An upper bound for features that predict IREE's strategy (pipeline, tiles,
MMA shape) from a dispatch's text: for the dispatches whose compiler-default
tuning candidate was collected (``kind="variants"``, ``is_default``), it
compares the kernels model's booster (``default_estimator(DEEP_ROWS)``)
fitted out of fold (GroupKFold(5) by family, on ``log1p``) on the kernels
featurizer's columns of the dispatch text, on
those plus :class:`~mlircost_classic.featurize.ConfigFeatures` of the
default configured text (the choice IREE made, which no text-only model
has), and on the config columns alone. Prints Spearman rank correlations
and, for the largest labels, the median prediction / label. Run from the
repository root::

    python benchmarks/config_oracle.py [--target amd_gfx942.vgprs --backend rocm]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import sparse
from sklearn.model_selection import GroupKFold

from mlircost_classic.datasets import iter_dataset
from mlircost_classic.featurize import ConfigFeatures
from mlircost_classic.models import spearman
from mlircost_classic.models._cost_model import (
    DEEP_ROWS,
    default_estimator,
    default_featurizer,
)
from mlircost_classic.models._pretrained import _host


def _rows(target: str, backend: str):
    """(dispatch text, default configured text, kernel label, family) per dispatch."""
    kernels = {}
    for k in iter_dataset("kernels"):
        if k["targets"].get(target) is not None:
            kernels[k["id"]] = (k["ir"]["dispatch"], k["targets"][target])
    for r in iter_dataset("variants"):
        if r.get("is_default") and r.get("backend") == backend:
            if r["dispatch_id"] in kernels and r["status"] == "ok":
                text, label = kernels[r["dispatch_id"]]
                yield text, r["ir"][r["compiled_level"]], label, r["family"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="amd_gfx942.vgprs")
    parser.add_argument(
        "--backend", default="rocm", choices=("rocm", "cuda", "llvm-cpu")
    )
    parser.add_argument(
        "--large", type=float, default=200, help="labels counted as large"
    )
    args = parser.parse_args(argv)
    texts, configured, y, families = map(
        list, zip(*_rows(args.target, args.backend), strict=True)
    )
    y, families = np.asarray(y, float), np.asarray(families)
    print(
        f"host: {_host()}; {len(y)} {args.backend} dispatches with a default candidate"
    )
    text_cols = sparse.csr_matrix(default_featurizer("kernels").fit_transform(texts))
    config_cols = sparse.csr_matrix(ConfigFeatures().fit_transform(configured))
    large = y >= args.large
    print(
        f"| columns | Spearman | median prediction / label ({large.sum()} labels >= {args.large:g}) |"
    )
    print("|---|---:|---:|")
    for name, X in (
        ("dispatch text", text_cols),
        ("text + default config", sparse.hstack([text_cols, config_cols]).tocsr()),
        ("default config only", config_cols),
    ):
        oof = np.zeros(len(y))
        for train, test in GroupKFold(5).split(X, groups=families):
            booster = default_estimator(DEEP_ROWS).set_params(random_state=0)
            booster.fit(X[train], np.log1p(y[train]))
            oof[test] = np.expm1(booster.predict(X[test]))
        ratio = np.median(oof[large] / y[large]) if large.any() else float("nan")
        print(f"| {name} | {spearman(y, oof):.3f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
