"""``mlircost rank``: order candidate configurations of a dispatch."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import UserError

__all__ = ["add_commands", "cmd_rank"]


def cmd_rank(args: argparse.Namespace) -> int:
    """Rank the ``*.mlir`` files of a folder and print them best first."""
    from mlircost_classic.models import rank

    files = sorted(Path(args.dir).glob("*.mlir"))
    if not files:
        raise UserError(f"no .mlir file in {args.dir}")
    texts = [f.read_text(encoding="utf-8") for f in files]
    order, scores = rank(texts, target=args.target, return_scores=True)
    width = max(len(f.name) for f in files)
    print(f"{'rank':>4}  {'file':<{width}}  score (smaller is better)")
    for place, i in enumerate(order, start=1):
        print(f"{place:>4}  {files[i].name:<{width}}  {scores[i]:.4g}")
    return 0


def add_commands(sub, parents: dict) -> None:
    """Add ``rank`` to the ``mlircost`` subcommands."""
    p = sub.add_parser(
        "rank",
        help="order candidate codegen configs of a dispatch, best first",
        description="Read the configured executables (*.mlir, as "
        "iree-compile --iree-hal-dump-executable-configurations-to writes them, "
        "possibly edited) in DIR and print them best first for TARGET, by a "
        "ranking model fitted on the bundled variants.",
    )
    p.add_argument("dir", metavar="DIR")
    p.add_argument(
        "--target",
        required=True,
        help="e.g. nvidia_sm80.registers or amd_gfx942.vgprs (fewer is better; "
        "occupancy: more is better)",
    )
    p.set_defaults(func=cmd_rank)
