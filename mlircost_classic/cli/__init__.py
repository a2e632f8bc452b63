"""The ``mlircost`` command: argument parsing only; each command calls the public API.

One module per command group (:mod:`._featurize`; :mod:`._predict`: predict,
explain, train; :mod:`._rank`: rank; :mod:`._collect`: collect, dataset;
:mod:`._report`: report, benchmark), each adding its subcommands with the parent parsers of
:mod:`._common`. Parsing imports no model: each command imports what it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import _collect, _featurize, _predict, _rank, _report
from ._common import (
    UserError,
    data_home_parser,
    quiet_parser,
    seed_parser,
    suite_parser,
)

__all__ = ["UserError", "build_parser", "main"]

_GROUPS = (_featurize, _predict, _rank, _collect, _report)


def build_parser() -> argparse.ArgumentParser:
    """The ``mlircost`` argument parser, with every subcommand."""
    from mlircost_classic._version import __version__

    parser = argparse.ArgumentParser(
        prog="mlircost",
        description="Predict hardware costs of MLIR programs from their text.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parents = {
        "data_home": data_home_parser(),
        "seed": seed_parser(),
        "quiet": quiet_parser(),
        "suite": suite_parser,
    }
    for group in _GROUPS:
        group.add_commands(sub, parents)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mlircost`` with ``argv`` (default: the command line); the exit status."""
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
