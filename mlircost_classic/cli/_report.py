"""``mlircost report`` and ``mlircost benchmark``: how well the models do, and why."""

from __future__ import annotations

import argparse

from ._common import UserError, positive_int

__all__ = ["add_commands"]

# What --quick reports on: one CPU and one GPU target, present for modules and kernels.
_QUICK_TARGETS = ("cpu_x86_64_v3.instructions", "nvidia_sm80.registers")
# mlircost_classic.report.MODEL_NAMES, written out so that parsing the command line
# imports no model (a test checks they agree).
_MODEL_NAMES = [
    "xgboost",
    "xgboost-noprior",
    "ridge",
    "roofline",
    "transformer",
    "lstm",
    "cnn",
    "composed",
]


def cmd_report(args: argparse.Namespace) -> int:
    try:
        from mlircost_classic.report import build_report

        page = build_report(
            args.out,
            kind=args.kind,
            level=args.level,
            targets=args.targets or (list(_QUICK_TARGETS) if args.quick else None),
            max_rows=args.max_rows or (150 if args.quick else None),
            n_repeats=2 if args.quick else args.repeats,
            random_state=args.seed,
            n_jobs=args.jobs,
            data_home=args.data_home,
            progress=not args.quiet,
        )
    except ImportError as exc:  # matplotlib missing: say which extra to install
        raise UserError(str(exc)) from None
    print(page)
    return 0


def cmd_benchmark(args: argparse.Namespace, goals=None) -> int:
    """Run the benchmark; ``goals`` (see ``run_benchmark``) adds a Goals section."""
    from pathlib import Path

    from mlircost_classic.report import run_benchmark, update_readme

    chosen = {
        name: value
        for name, value in (
            ("kinds", args.kinds),
            ("models", args.models),
            ("protocols", args.protocols),
        )
        if value
    }
    try:
        run_benchmark(
            args.out,
            quick=args.quick,
            n_jobs=args.jobs,
            neural_seconds=args.neural_seconds,
            max_per_family=args.max_per_family,
            random_state=args.seed,
            data_home=args.data_home,
            progress=not args.quiet,
            goals=goals,
            **chosen,
        )
    except ImportError as exc:  # torch or matplotlib missing: say which extra
        raise UserError(str(exc)) from None
    results = Path(args.out) / "results.md"
    print(f"wrote {results} (tables), results.csv and plots")
    if args.readme:
        changed = update_readme(args.readme, results)
        print(f"{args.readme}: benchmark block {'updated' if changed else 'unchanged'}")
    return 0


def add_commands(sub, parents: dict) -> None:
    """Add ``report`` and ``benchmark`` to the ``mlircost`` subcommands."""
    from mlircost_classic.datasets import COST_KINDS

    shared = [parents["seed"], parents["data_home"], parents["quiet"]]
    p = sub.add_parser(
        "report",
        parents=shared,
        help="HTML report of feature importance and held-out accuracy per target",
        description="Split the dataset by family, fit the xgboost and linear cost "
        "models on the training part and write, per target, held-out metrics, "
        "predicted-vs-measured plots and feature importance (gain, permutation, "
        "SHAP values, coefficients) to OUT/index.html (needs matplotlib, extra "
        "[report]).",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--kind", choices=COST_KINDS, default="modules")
    p.add_argument("--level", help="MLIR level (default: linalg; kernels: dispatch)")
    p.add_argument(
        "--targets",
        nargs="+",
        metavar="TARGET",
        help="target, hardware or metric names (default: all)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a quick look: 150 records, 2 targets unless --targets, 2 repeats",
    )
    p.add_argument("--max-rows", type=int, metavar="N", help="a random sample of N")
    p.add_argument("--repeats", type=int, default=5, help="permutation repeats")
    p.add_argument("--jobs", type=int, help="targets fitted in parallel")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "benchmark",
        parents=shared,
        help="compare the cost models and baselines on the same folds",
        description="Cross-validate xgboost (with and without its roofline prior) "
        "and ridge cost models, the fitted "
        "roofline and the neural text baselines on the bundled dataset (by family, "
        "by op template for kernels, and random; out of distribution when the OOD "
        "suite has records) and write "
        "OUT/results.csv, OUT/results.md (tables, date and machine) and "
        "plots (needs matplotlib; the neural models need torch, extra [neural]). "
        "The project's goals are checked by benchmarks/goals.py, which takes the "
        "same options.",
    )
    p.add_argument("--out", default="benchmarks", metavar="DIR")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 8 modules and 12 kernels per family, 3 folds, "
        "neural fits cut at 6 s (minutes, not hours; not the benchmark's figures)",
    )
    p.add_argument("--kinds", nargs="+", choices=COST_KINDS)
    p.add_argument(
        "--models",
        nargs="+",
        choices=_MODEL_NAMES,
        help="default: xgboost xgboost-noprior ridge roofline transformer lstm "
        "(composed: modules only)",
    )
    p.add_argument(
        "--protocols",
        nargs="+",
        choices=["group", "template", "random"],
        help="default: group template random (template: kernels only)",
    )
    p.add_argument(
        "--readme",
        metavar="README",
        help="also put the headline tables between the <!-- benchmark:start --> "
        "and <!-- benchmark:end --> markers of this file",
    )
    p.add_argument(
        "--jobs",
        type=int,
        help="targets fitted in parallel, and torch threads of the neural models",
    )
    p.add_argument(
        "--neural-seconds",
        type=float,
        metavar="S",
        help="wall-clock budget of one neural fit (default: none, 6 with --quick)",
    )
    p.add_argument(
        "--max-per-family",
        type=positive_int,
        metavar="N",
        help="records kept per family or architecture, a seeded random sample "
        "(default: all; 8 modules and 12 kernels with --quick); results.md says "
        "how many of the bundled records were used",
    )
    p.set_defaults(func=cmd_benchmark)
