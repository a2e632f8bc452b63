"""Decision benchmark: ranking candidate codegen configs of held-out dispatches.

For each hardware, on the bundled variants (or ``--data-home``), fits on the
candidates of the training families and scores on the held-out ones
(GroupKFold by family): a ``rank:pairwise`` ranker, a log regression, the
two summed (the default ``VariantRanker``, what :func:`rank` uses), a
config-blind regression (the dispatch's ShapeFeatures only: every candidate
of a dispatch looks the same to it) and the compiler's own choice. Spill
detection on the same folds: an xgboost classifier (spilling class weighted,
threshold chosen on inner folds of the training families) against the
thresholded regression of the spill metric, for spills alone and for spills
or stack / scratch memory. Then times
ranking 1,000 candidates of one dispatch on one core against compiling and
measuring them (seconds per candidate from the records' provenance). Run from
the repository root (one core: ``OMP_NUM_THREADS=1 taskset -c 0``)::

    python benchmarks/variants_rank.py [--data-home DIR] [--out FILE.md] \
        [--hardware nvidia_sm80 ...] [--models NAME ...] [--no-speed]

``--hardware`` scores only the named hardware (default: all four),
``--models`` only the named rankers (default: all; ``--models default`` is
the shipped ``VariantRanker``), ``--no-speed`` leaves out the timing. Each
candidate is featurized once per hardware (:class:`VariantFeaturizer` and
:class:`ShapeFeatures` learn nothing from their data: fitting them on the
training folds alone gives the same rows), and every model and fold reads
those rows.
"""

import argparse
import copy
import os
import time

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from mlircost_classic.collect._variants import candidate_configs
from mlircost_classic.datasets import iter_dataset, load_dataset
from mlircost_classic.featurize import ShapeFeatures, VariantFeaturizer
from mlircost_classic.mlir import read_config, write_config
from mlircost_classic.models import (
    VARIANT_TASKS,
    VariantRanker,
    evaluate_spills,
    evaluate_variants,
)

# Hardware -> (ranked target, spill metric, stack / scratch metric).
TASKS = VARIANT_TASKS
COLUMNS = (
    "kendall_tau",
    "pairwise_accuracy",
    "top1_regret",
    "top3_regret",
    "beats_default",
    "matches_default",
    "groups",
    "fit_seconds",
)
SPILL_COLUMNS = ("spill_precision", "spill_recall", "spill_f1", "spill_share")


DEFAULT = "xgboost rank:pairwise + regression"
MODELS = (
    "xgboost rank:pairwise",
    "xgboost regression",
    DEFAULT,
    "config-blind regression",
)


class _Rows(TransformerMixin, BaseEstimator):
    """Rows featurized once: a document is the index of its row, as a str."""

    def __init__(self, *, rows=None):
        self.rows = rows

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return self.rows[[int(i) for i in X]]


def models(features, blind, names=MODELS) -> dict:
    """The benchmark's rankers on precomputed rows (``features``: the
    :class:`VariantFeaturizer` rows, ``blind``: :class:`ShapeFeatures`)."""
    every = {
        "xgboost rank:pairwise": VariantRanker(
            objective="rank:pairwise", featurizer=_Rows(rows=features)
        ),
        "xgboost regression": VariantRanker(
            objective="regression", featurizer=_Rows(rows=features)
        ),
        DEFAULT: VariantRanker(featurizer=_Rows(rows=features)),
        "config-blind regression": VariantRanker(
            objective="regression", featurizer=_Rows(rows=blind)
        ),
    }
    return {name: every[name] for name in names}


def host() -> str:
    cpu = "unknown CPU"
    if os.path.exists("/proc/cpuinfo"):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} logical CPUs, load {os.getloadavg()}"


def _cell(value: float) -> str:
    return "-" if value != value else f"{value:.3f}"


def evaluate(
    data_home, lines: list[str], hardware=tuple(TASKS), rankers=MODELS
) -> None:
    for hw in hardware:
        target, spill, stack = TASKS[hw]
        try:
            names = [n for n in (target, spill, stack) if n]
            ds = load_dataset(
                "variants", hardware=hw, targets=names, data_home=data_home
            )
        except ValueError as exc:
            lines.append(f"\n{hw}: skipped ({exc})")
            continue
        # load_dataset orders the targets by name, not as asked.
        column = {name: ds.target[:, ds.target_names.index(name)] for name in names}
        y = column[target]
        keep = ~np.isnan(y)
        lines.append(
            f"\n### {target} ({int(keep.sum())} measured candidates, "
            f"{len(set(ds.groups[keep]))} dispatches, {len(set(ds.families))} "
            "families; GroupKFold by family)\n"
        )
        lines.append("| model | " + " | ".join(COLUMNS) + " |")
        lines.append("|---" * (len(COLUMNS) + 1) + "|")
        kept = [t for t, k in zip(ds.data, keep, strict=True) if k]
        features = VariantFeaturizer().fit(kept).transform(kept)
        blind = None
        if "config-blind regression" in rankers:
            blind = ShapeFeatures().fit(kept).transform(kept)
        ids = [str(i) for i in range(len(kept))]
        res = evaluate_variants(
            ids,
            y[keep],
            ds.groups[keep],
            ds.families[keep],
            ds.is_default[keep],
            models(features, blind, rankers),
            target=target,
        )
        for name, m in res.items():
            cells = [_cell(m.get(c, float("nan"))) for c in COLUMNS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        print("\n".join(lines[-len(res) - 3 :]), flush=True)
        if spill:
            spills(ids, features, keep, ds.families, column, spill, stack, lines)


def spills(ids, features, keep, families, column, spill, stack, lines) -> None:
    """Spill detection: classifier vs thresholded regression, two labels."""
    lines.append("\n| spill label | detector | " + " | ".join(SPILL_COLUMNS) + " |")
    lines.append("|---" * (len(SPILL_COLUMNS) + 2) + "|")
    for label, metrics in ((spill, [spill]), (f"{spill} or {stack}", [spill, stack])):
        target = np.column_stack([column[m][keep] for m in metrics])
        res = evaluate_spills(
            ids, target, families[keep], featurizer=_Rows(rows=features)
        )
        for detector, m in res.items():
            cells = [_cell(m[c]) for c in SPILL_COLUMNS]
            lines.append(f"| {label} | {detector} | " + " | ".join(cells) + " |")
    print("\n".join(lines[-6:]), flush=True)


def speed(data_home, lines: list[str], n: int = 1000) -> None:
    ds = load_dataset("variants", hardware="nvidia_sm80", data_home=data_home)
    target = ds.target_names.index("nvidia_sm80.registers")
    keep = ~np.isnan(ds.target[:, target])
    model = VariantRanker().fit(
        [t for t, k in zip(ds.data, keep, strict=True) if k],
        ds.target[keep, target],
        groups=ds.groups[keep],
    )
    # The largest dispatch's default config, and n candidates of it.
    default = max(
        (t for t, d in zip(ds.data, ds.is_default, strict=True) if d), key=len
    )
    configs = candidate_configs(read_config(default), n, seed=0, tries=20 * n)
    # n distinct texts: the candidates, cycled, each with its own workgroup
    # size (the ranker reads every text; none is a cache hit of another).
    texts = []
    for i in range(n):
        config = copy.deepcopy(configs[i % len(configs)])
        config.workgroup_size = [i + 1, 1, 1]
        texts.append(write_config(default, config))
    model.predict(texts[:10])  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    model.predict(texts)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    per_stage: dict[str, list[float]] = {}
    for rec in iter_dataset("variants", data_home):
        for stage, s in rec["seconds"].items():
            per_stage.setdefault(f"{rec['backend']} {stage.split(':')[0]}", []).append(
                s
            )
    cuda = [
        sum(r["seconds"].values())
        for r in iter_dataset("variants", data_home)
        if r["backend"] == "cuda"
    ]
    lines.append(
        f"\nRanking {n} distinct candidates of one dispatch ({len(default)} "
        f"chars each): {seconds:.3f} s wall, {cpu:.3f} s CPU on one core "
        f"({cpu / n * 1e3:.2f} ms per candidate); compiling and measuring a "
        f"CUDA candidate here: {np.mean(cuda):.2f} s (mean over {len(cuda)}), "
        f"{np.mean(cuda) * n / cpu:.0f}x slower.\n"
    )
    lines.append("| backend stage | candidates | mean s | median s |")
    lines.append("|---|---|---|---|")
    for stage, values in sorted(per_stage.items()):
        lines.append(
            f"| {stage} | {len(values)} | {np.mean(values):.3f} | "
            f"{np.median(values):.3f} |"
        )
    print("\n".join(lines[-len(per_stage) - 3 :]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home")
    parser.add_argument("--out")
    parser.add_argument(
        "--hardware", nargs="+", choices=tuple(TASKS), default=tuple(TASKS)
    )
    parser.add_argument(
        "--models",
        nargs="+",
        choices=(*MODELS, "default"),
        default=MODELS,
        help="rankers to score (default: all; 'default' is the shipped one)",
    )
    parser.add_argument("--no-speed", action="store_true", help="skip the timing")
    args = parser.parse_args()
    names = [DEFAULT if n == "default" else n for n in args.models]
    lines = [f"# Variants decision benchmark\n\nhost: {host()}"]
    print(lines[-1], flush=True)
    evaluate(args.data_home, lines, args.hardware, tuple(dict.fromkeys(names)))
    if not args.no_speed:
        speed(args.data_home, lines)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
