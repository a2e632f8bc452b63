"""Add the spill-prone gfx942 candidates to the bundled ROCm groups that lack them.

ROCm groups measured before ``spill_prone_configs`` existed hold only the
ordinary candidates. This runs :func:`~mlircost_classic.collect.collect_variants`
over the dispatches that have a ROCm group (families taking turns, in a seeded
order, so that a prefix of the run covers as many families as it can), with the
bundled candidates as ``known``: the ordinary candidates (same seed and K as
the bundled ones) are not compiled again, only the new ones. Resumable: run it
again with the same folder. Then ``mlircost dataset pack OUT``.

    python scripts/variants_spill_prone.py OUT [--k 8] [--seed 0] [--order-seed 24]
"""

import argparse
import itertools
import random

from mlircost_classic.collect._variants import collect_variants
from mlircost_classic.datasets import iter_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="candidate seed")
    parser.add_argument("--order-seed", type=int, default=24, help="dispatch order")
    parser.add_argument("--data-home")
    args = parser.parse_args()
    dispatches, known = set(), set()
    for rec in iter_dataset("variants", args.data_home):
        if rec["backend"] == "rocm":
            known.add(rec["id"])
            dispatches.add(rec["dispatch_id"])
    by_family: dict[str, list[dict]] = {}
    for rec in iter_dataset("kernels", args.data_home):
        if rec["id"] in dispatches and rec.get("status") != "failed":
            by_family.setdefault(rec["family"], []).append(rec)
    rng = random.Random(args.order_seed)
    queues = []
    for family in sorted(by_family):
        recs = sorted(by_family[family], key=lambda r: r["id"])
        rng.shuffle(recs)
        queues.append(recs)
    kernels = [r for turn in itertools.zip_longest(*queues) for r in turn if r]
    print(f"{len(kernels)} dispatches of {len(by_family)} families", flush=True)
    counts = collect_variants(
        kernels,
        args.k,
        args.out,
        backends=("rocm",),
        seed=args.seed,
        known=known,
        log=lambda line: print(line, flush=True),
    )
    print(counts)


if __name__ == "__main__":
    main()
