"""``mlircost featurize``: print the features of MLIR files."""

from __future__ import annotations

import argparse
import json
import sys

from ._common import read_inputs

__all__ = ["add_commands"]

# The union's parts, in the order a reader wants them: costs first.
_GROUP_ORDER = ("shapes", "opcodes", "ngrams")


def _groups(
    named: list[tuple[str, float]],
) -> list[tuple[str, list[tuple[str, float]]]]:
    """Split ``part__feature`` names of a feature union into per-part lists."""
    groups: dict[str, list[tuple[str, float]]] = {}
    for column, value in named:
        part, sep, feature = column.partition("__")
        if not sep:
            part, feature = "", column
        groups.setdefault(part, []).append((feature, value))
    rank = {part: i for i, part in enumerate(_GROUP_ORDER)}
    return sorted(groups.items(), key=lambda item: rank.get(item[0], len(rank)))


def _print_csv(names, columns, X) -> None:
    import csv

    writer = csv.writer(sys.stdout)
    writer.writerow(["file", *columns])
    for name, row in zip(names, X, strict=True):
        writer.writerow([name, *(f"{v:.6g}" for v in row)])


def _print_json(names, columns, X) -> None:
    out = [
        {
            "file": name,
            "features": {c: float(v) for c, v in zip(columns, row, strict=True) if v},
        }
        for name, row in zip(names, X, strict=True)
    ]
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _print_table(names, columns, X, top: int | None) -> None:
    for name, row in zip(names, X, strict=True):
        nonzero = [(c, v) for c, v in zip(columns, row, strict=True) if v]
        print(f"{name}: {len(nonzero)} non-zero of {len(columns)} features")
        for group, rows in _groups(nonzero):
            if group:
                print(f"  [{group}]")
            shown = rows if top is None else rows[:top]
            width = max(len(c) for c, _ in shown)
            for c, v in shown:
                print(f"    {c:<{width}}  {v:>14.6g}")
            if len(shown) < len(rows):
                print(f"    ... {len(rows) - len(shown)} more (--all shows them)")


def cmd_featurize(args: argparse.Namespace) -> int:
    import numpy as np

    from mlircost_classic.featurize import (
        MLIRFeaturizer,
        OpcodeCounter,
        OpNgramTfidf,
        ShapeFeatures,
    )

    names, texts = read_inputs(args.files)
    featurizer = {
        "all": MLIRFeaturizer,
        "opcode": OpcodeCounter,
        "ngram": OpNgramTfidf,
        "shape": ShapeFeatures,
    }[args.features](on_error=args.on_error)
    X = featurizer.fit_transform(texts)
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    columns = [str(c) for c in featurizer.get_feature_names_out()]
    if args.format == "csv":
        _print_csv(names, columns, X)
    elif args.format == "json":
        _print_json(names, columns, X)
    else:
        _print_table(names, columns, X, None if args.all else args.top)
    return 0


def add_commands(sub, parents: dict) -> None:
    """Add ``featurize`` to the ``mlircost`` subcommands."""
    p = sub.add_parser(
        "featurize",
        help="print the features of MLIR files",
        description="Read MLIR files and print bag-of-opcodes, op n-gram TF-IDF and "
        "shape features (the vocabulary is learned on the given files).",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="MLIR file, or - for stdin")
    p.add_argument(
        "--features", choices=["all", "opcode", "ngram", "shape"], default="all"
    )
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument(
        "--on-error",
        choices=["raise", "warn", "ignore"],
        default="raise",
        help="what to do with text that cannot be read (default: raise)",
    )
    p.add_argument("--top", type=int, default=25, help="rows per file in the table")
    p.add_argument("--all", action="store_true", help="show every non-zero feature")
    p.set_defaults(func=cmd_featurize)
