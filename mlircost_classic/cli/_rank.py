"""``mlircost rank``: order candidate configurations of a dispatch."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import UserError, read_one

__all__ = ["add_commands", "cmd_rank"]


def cmd_rank(args: argparse.Namespace) -> int:
    """Rank the ``*.mlir`` files of a folder and print them best first.

    Beside each score: the ranker's estimate of the target itself and, where
    the hardware has a spill classifier, the probability that the candidate
    spills (``*`` where it reads as a spill). A file that cannot be read as
    MLIR is reported and left out (exit status 1); the others are ranked.
    """
    import numpy as np

    from mlircost_classic.mlir import parse
    from mlircost_classic.models import rank, variant_models
    from mlircost_classic.models._rank import _sign
    from mlircost_classic.models._variant_models import shipped_hardware

    paths = sorted(Path(args.dir).glob("*.mlir"))
    if not paths:
        raise UserError(f"no .mlir file in {args.dir}")
    files, texts, failed = [], [], 0
    for path in paths:
        try:
            _, text = read_one(str(path))  # its message names the file
            try:
                parse(text)
            except ValueError as exc:  # MLIRSyntaxError
                raise UserError(f"{path}: {exc}") from None
        except UserError as exc:
            failed += 1
            print(f"mlircost rank: error: {exc}; left out", file=sys.stderr)
            continue
        files.append(path)
        texts.append(text)
    if not texts:
        raise UserError(f"no readable .mlir file in {args.dir}")
    hardware = shipped_hardware(args.target)
    width = max(len(f.name) for f in files)
    header = f"{'rank':>4}  {'file':<{width}}  {'score':>8}"
    estimate = spill = None
    if hardware is None:
        order, scores = rank(texts, target=args.target, return_scores=True)
    else:
        models = variant_models(hardware, path=args.model_dir)
        scores, estimate, spill = models.assess(texts)
        order = np.argsort(scores, kind="stable")  # as rank() orders
        estimate = _sign(args.target) * estimate
        header += f"  {args.target + ' (predicted)':>28}"
        if spill is not None:
            header += "  P(spill)"
    print(header + "   (smaller score is better)")
    for place, i in enumerate(order, start=1):
        line = f"{place:>4}  {files[i].name:<{width}}  {scores[i]:>8.4g}"
        if estimate is not None:
            line += f"  {estimate[i]:>28.4g}"
        if spill is not None:
            flag = "*" if spill[i] >= models.spills.threshold_ else ""
            line += f"  {spill[i]:>8.2f}{flag}"
        print(line)
    if spill is not None:
        print(
            f"P(spill): {models.spill_metric} > 0; * at or past the classifier's "
            f"threshold {models.spills.threshold_:.2f}"
        )
    return 1 if failed else 0


def add_commands(sub, parents: dict) -> None:
    """Add ``rank`` to the ``mlircost`` subcommands."""
    p = sub.add_parser(
        "rank",
        help="order candidate codegen configs of a dispatch, best first",
        description="Read the configured executables (*.mlir, as "
        "iree-compile --iree-hal-dump-executable-configurations-to writes them, "
        "possibly edited) in DIR and print them best first for TARGET, by the "
        "shipped ranking model of its hardware (fitted on the bundled variants), "
        "with its estimate of TARGET and, on GPUs, the probability that each "
        "candidate spills.",
    )
    p.add_argument("dir", metavar="DIR")
    p.add_argument(
        "--target",
        required=True,
        help="e.g. nvidia_sm80.registers or amd_gfx942.vgprs (fewer is better; "
        "occupancy: more is better)",
    )
    p.add_argument(
        "--model-dir",
        metavar="DIR",
        help="variant models written by `mlircost train --out DIR --models "
        "variants-<hardware>` (default: the shipped ones)",
    )
    p.set_defaults(func=cmd_rank)
