"""Seed a collection run folder with the bundled module records of a source.

Usage: python scripts/seed_run.py --source transformers|torchvision RUN_DIR [--retry STAGE_WORD ...]

A network run (``mlircost collect --source ... --resume --out RUN_DIR``) goes
through the same list of programs every time and skips those whose spec key
is in RUN_DIR. On a fresh machine, where the run folder of the last session is
gone, it would collect every bundled program again. This writes the bundled
module records of the source (as :func:`~mlircost_classic.datasets.iter_dataset`
loads them, amendments merged) to ``RUN_DIR/modules.jsonl``, so ``--resume``
starts where the bundle ends; ``mlircost dataset pack RUN_DIR`` later adds
only the new records (a seeded record is bundled already).

``--retry`` leaves out the failed records with a failure message containing
one of the words (e.g. ``"timed out"``), so that those programs are collected
again; a record collected again with more targets or levels replaces the
bundled one when packed. Refuses a folder that holds records already.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlircost_classic.datasets import append_records, iter_dataset


def seed(run: Path, source: str, retry: tuple[str, ...] = ()) -> tuple[int, int]:
    """Write the bundled records of ``source`` to ``run``; (written, left to retry)."""
    path = run / "modules.jsonl"
    if path.exists() and path.stat().st_size:
        raise SystemExit(f"{path} holds records already; seed an empty folder")
    run.mkdir(parents=True, exist_ok=True)
    keep, left = [], 0
    for rec in iter_dataset("modules"):
        if rec.get("source", "families") != source:
            continue
        messages = " ".join(f.get("message", "") for f in rec.get("failures", ()))
        if rec["status"] == "failed" and any(word in messages for word in retry):
            left += 1
            continue
        keep.append(rec)
    return append_records(path, keep), left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument(
        "--source", required=True, choices=("torchvision", "transformers")
    )
    parser.add_argument("--retry", nargs="*", default=())
    args = parser.parse_args()
    written, left = seed(args.run, args.source, tuple(args.retry))
    print(
        f"{args.run}: {written} bundled {args.source} module records; {left} left to retry"
    )


if __name__ == "__main__":
    main()
