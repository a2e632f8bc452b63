"""The ``mlircost`` command: argument parsing only; each command calls the public API."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]


class UserError(Exception):
    """A mistake on the command line or in the user's files: printed without a traceback."""


def _read_inputs(paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """Return (names, texts) for the given paths; ``-`` reads standard input."""
    from mlircost_classic.mlir import read_source

    names, texts = [], []
    for path in paths:
        if path == "-":
            data = sys.stdin.buffer.read()
            names.append("<stdin>")
            texts.append(read_source(data, input="content"))
        else:
            names.append(path)
            texts.append(read_source(path, input="filename"))
    return names, texts


def _cmd_featurize(args: argparse.Namespace) -> int:
    import numpy as np

    from mlircost_classic.featurize import (
        MLIRFeaturizer,
        OpcodeCounter,
        OpNgramTfidf,
        ShapeFeatures,
    )

    names, texts = _read_inputs(args.files)
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
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(["file", *columns])
        for name, row in zip(names, X):
            writer.writerow([name, *(f"{v:.6g}" for v in row)])
    elif args.format == "json":
        out = [
            {"file": name, "features": {c: float(v) for c, v in zip(columns, row) if v}}
            for name, row in zip(names, X)
        ]
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for name, row in zip(names, X):
            nonzero = [(c, v) for c, v in zip(columns, row) if v]
            print(f"{name}: {len(nonzero)} non-zero of {len(columns)} features")
            width = max((len(c) for c, _ in nonzero), default=0)
            shown = nonzero if args.all else nonzero[: args.top]
            for c, v in shown:
                print(f"  {c:<{width}}  {v:>14.6g}")
            if len(shown) < len(nonzero):
                print(f"  ... {len(nonzero) - len(shown)} more (--all shows them)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from mlircost_classic import __version__

    parser = argparse.ArgumentParser(
        prog="mlircost",
        description="Predict hardware costs of MLIR programs from their text.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    p.set_defaults(func=_cmd_featurize)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, ValueError, OSError) as exc:
        # MLIRSyntaxError is a ValueError: the user's file, not our bug.
        print(f"mlircost {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlircost: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
