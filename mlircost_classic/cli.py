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
        for name, row in zip(names, X, strict=True):
            writer.writerow([name, *(f"{v:.6g}" for v in row)])
    elif args.format == "json":
        out = [
            {
                "file": name,
                "features": {
                    c: float(v) for c, v in zip(columns, row, strict=True) if v
                },
            }
            for name, row in zip(names, X, strict=True)
        ]
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for name, row in zip(names, X, strict=True):
            nonzero = [(c, v) for c, v in zip(columns, row, strict=True) if v]
            print(f"{name}: {len(nonzero)} non-zero of {len(columns)} features")
            for group, rows in _groups(nonzero):
                if group:
                    print(f"  [{group}]")
                shown = rows if args.all else rows[: args.top]
                width = max(len(c) for c, _ in shown)
                for c, v in shown:
                    print(f"    {c:<{width}}  {v:>14.6g}")
                if len(shown) < len(rows):
                    print(f"    ... {len(rows) - len(shown)} more (--all shows them)")
    return 0


def _cmd_collect(args: argparse.Namespace) -> int:
    from mlircost_classic.collect import collect, collect_files

    timeouts = dict(args.timeout or [])
    if args.variants is not None:
        return _collect_variants(args, timeouts)
    if args.input and args.suite == "ood":
        raise UserError("--input labels your files; it does not go with --suite ood")
    if args.source != "families" and (args.input or args.suite == "ood"):
        raise UserError("--source goes with neither --input nor --suite ood")
    if args.input:
        summary = collect_files(
            args.input,
            args.targets,
            args.out,
            level=args.level,
            resume=args.resume,
            n_jobs=args.jobs,
            timeouts=timeouts or None,
            progress=not args.quiet,
        )
    elif args.source != "families":
        import importlib.util

        from mlircost_classic.collect import collect_specs, network_specs

        specs = network_specs(args.source, args.families or None)
        if importlib.util.find_spec(args.source) is None:
            raise UserError(
                f"--source {args.source} builds {args.source} models: "
                "pip install 'mlircost_classic[collect,ood]'"
            )
        summary = collect_specs(
            specs[: args.count],
            args.targets,
            args.out,
            resume=args.resume,
            n_jobs=args.jobs,
            timeouts=timeouts or None,
            progress=not args.quiet,
        )
    elif args.suite == "ood":
        import importlib.util

        from mlircost_classic.collect import collect_specs, ood_specs

        specs = ood_specs(args.families or None)
        # Checked here: without it every program would be recorded as failed.
        if importlib.util.find_spec("transformers") is None:
            raise UserError(
                "--suite ood builds transformers models: "
                "pip install 'mlircost_classic[ood]'"
            )
        summary = collect_specs(
            specs,
            args.targets,
            args.out,
            resume=args.resume,
            n_jobs=args.jobs,
            timeouts=timeouts or None,
            progress=not args.quiet,
        )
    else:
        if args.count is None:
            raise UserError("give --count N (programs to sample) or --input FILE")
        summary = collect(
            args.families or None,
            args.count,
            args.seed,
            args.targets,
            args.out,
            resume=args.resume,
            n_jobs=args.jobs,
            timeouts=timeouts or None,
            progress=not args.quiet,
        )
    print(summary.to_text())
    return 0


def _collect_variants(args: argparse.Namespace, timeouts: dict) -> int:
    from mlircost_classic.collect import VARIANT_BACKENDS, collect_dataset_variants

    if args.count is None:
        raise UserError("--variants K needs --count N (dispatches of the dataset)")
    backends = [b for b, hw in VARIANT_BACKENDS.items() if set(hw) & set(args.targets)]
    if not backends:
        raise UserError(
            f"--variants measures {sorted(h for v in VARIANT_BACKENDS.values() for h in v)}"
        )
    counts = collect_dataset_variants(
        args.variants,
        args.count,
        args.out,
        backends=backends,
        families=args.families,
        seed=args.seed,
        timeouts=timeouts or None,
        log=None if args.quiet else print,
    )
    print(", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def _cmd_dataset(args: argparse.Namespace) -> int:
    from mlircost_classic import datasets

    if args.action == "info":
        print(datasets.dataset_info(args.data_home, suite=args.suite).to_text())
        return 0
    if args.action == "pack":
        result = datasets.pack(
            args.run_dir, datasets.get_data_home(args.data_home, args.suite)
        )
        added = (
            ", ".join(f"{n} {kind}" for kind, n in result.added.items()) or "nothing"
        )
        print(f"added {added} in {len(result.new_shards)} new shard(s)")
        for shard in result.new_shards:
            print(f"  {shard}")
        print(
            f"  amendments: {result.amendments_added} added, "
            f"{len(result.amendments_waiting)} waiting for their record"
        )
        for problem in [*result.invalid, *result.problems]:
            print(f"  skipped: {problem}")
        return 0
    if args.action == "gpu-export":
        from mlircost_classic.collect import export_gpu_batch

        m = export_gpu_batch(
            args.run_dir,
            args.out,
            max_bytes=int(args.max_mib * 2**20),
            limit=args.limit,
            seed=args.seed,
        )
        print(
            f"{len(m['modules'])} modules ({m['bytes'] / 2**20:.1f} MiB) in {args.out}; "
            f"{len(m['skipped'])} skipped, {len(m['deferred'])} left for a later batch"
        )
        for skipped in m["skipped"]:
            print(f"  skipped {skipped['id']}: {skipped['reason'][:200]}")
        print(
            "on the GPU host: python3 mlircost_classic/collect/_gpu_runner.py "
            f"{args.out} results.jsonl --benchmark-binary PATH/iree-benchmark-module"
        )
        return 0
    if args.action == "gpu-import":
        from mlircost_classic.collect import import_gpu_results

        r = import_gpu_results(args.results, args.run_dir, manifest=args.manifest)
        print(
            f"{r['written']} amendments written ({', '.join(r['targets']) or '-'}), "
            f"{r['already']} already there, {len(r['unknown'])} unknown ids, "
            f"{len(r['errors'])} runner errors"
        )
        return 0
    from mlircost_classic.collect import verify

    report = verify(args.data_home, sample=args.sample, seed=args.seed)
    print(report.to_text())
    return 0 if report.passed else 1


# What --quick reports on: one CPU and one GPU target, present for modules and kernels.
_QUICK_TARGETS = ("cpu_x86_64_v3.instructions", "nvidia_sm80.registers")


def _cmd_report(args: argparse.Namespace) -> int:
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


def _cmd_benchmark(args: argparse.Namespace) -> int:
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
            random_state=args.seed,
            data_home=args.data_home,
            progress=not args.quiet,
            **chosen,
        )
    except ImportError as exc:  # torch or matplotlib missing: say which extra
        raise UserError(str(exc)) from None
    results = Path(args.out) / "results.md"
    print(f"wrote {results} (tables, goals), results.csv and plots")
    if args.readme:
        changed = update_readme(args.readme, results)
        print(f"{args.readme}: benchmark block {'updated' if changed else 'unchanged'}")
    return 0


def _timeout(text: str) -> tuple[str, float]:
    stage, sep, seconds = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return stage, float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected STAGE=SECONDS (e.g. compile=300), got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    from mlircost_classic import __version__

    parser = argparse.ArgumentParser(
        prog="mlircost",
        description="Predict hardware costs of MLIR programs from their text.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
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

    from mlircost_classic._cli_predict import add_commands

    add_commands(sub)  # predict, explain, train
    from mlircost_classic._cli_rank import add_rank_command

    add_rank_command(sub)

    p = sub.add_parser(
        "collect",
        help="lower, compile and measure programs with real tools (extra [collect])",
        description="Sample programs from the model families (or read your own MLIR "
        "with --input), lower them with torch-mlir, compile them with IREE and "
        "measure them with valgrind, iree-benchmark-module and ptxas. Records are "
        "appended to OUT/modules.jsonl and OUT/kernels.jsonl as they finish.",
    )
    p.add_argument("--families", nargs="+", metavar="FAMILY", help="default: all")
    p.add_argument("--count", type=int, help="programs to sample")
    p.add_argument(
        "--suite",
        choices=["main", "ood"],
        default="main",
        help="main: sample the training families; ood: every size of the "
        "evaluation-only transformers architectures (hf_*; extra [ood]), "
        "--families selects among them and --count is not used",
    )
    p.add_argument(
        "--source",
        choices=["families", "torchvision", "transformers"],
        default="families",
        help="families: sample the program families; torchvision, transformers: "
        "every listed program of their architectures (tv_*, hf_*), the first "
        "program of each architecture first, then the second...; --families "
        "selects architectures and --count keeps the first N programs",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--input", nargs="+", metavar="FILE", help="label these MLIR files")
    p.add_argument(
        "--level",
        choices=["torch", "linalg", "stablehlo", "tosa"],
        help="level of the --input files (default: detected from their dialects)",
    )
    p.add_argument(
        "--targets",
        nargs="+",
        metavar="HARDWARE",
        default=["cpu_x86_64_v3", "nvidia_sm80", "nvidia_sm90", "amd_gfx942"],
        help="hardware to measure (default: the deterministic ones: cpu_x86_64_v3 "
        "nvidia_sm80 nvidia_sm90 amd_gfx942; add cpu_host for latency)",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--resume", action="store_true", help="skip programs already in OUT")
    p.add_argument("--jobs", type=int, default=1, help="parallel compiles")
    p.add_argument(
        "--timeout",
        type=_timeout,
        action="append",
        metavar="STAGE=SECONDS",
        help="per-stage timeout, repeatable (lower, compile, inspect, callgrind, "
        "benchmark, ptxas)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--variants",
        type=int,
        metavar="K",
        help="instead of programs: K candidate codegen configs of each of --count "
        "dispatches of the dataset, compiled and measured (OUT/variants.jsonl; "
        "rerun to resume)",
    )
    p.set_defaults(func=_cmd_collect)

    p = sub.add_parser("dataset", help="inspect, verify or grow the dataset")
    dsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    d = dsub.add_parser("info", help="summary of the bundled dataset")
    d.add_argument("--data-home", help="a dataset folder or a collection run folder")
    d.add_argument(
        "--suite",
        choices=["main", "ood"],
        default="main",
        help="ood: the evaluation-only suite, in the data home's ood/ folder",
    )
    d = dsub.add_parser(
        "verify",
        help="re-collect K module records and compare them and their kernels "
        "(deterministic targets must match)",
    )
    d.add_argument("--sample", type=int, default=3, metavar="K")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--data-home", help="a dataset folder or a collection run folder")
    d = dsub.add_parser("pack", help="add a collection run's new records as shards")
    d.add_argument("run_dir", metavar="RUN_DIR")
    d.add_argument("--data-home", help="where the shards go (default: the package's)")
    d.add_argument(
        "--suite",
        choices=["main", "ood"],
        default="main",
        help="ood: pack a 'collect --suite ood' run into the data home's ood/ folder",
    )
    d = dsub.add_parser(
        "gpu-export",
        help="compile a run's module records for CUDA into a batch to time on a GPU host",
    )
    d.add_argument("run_dir", metavar="RUN_DIR")
    d.add_argument(
        "--out", required=True, metavar="BATCH", help="batch folder (created)"
    )
    d.add_argument("--max-mib", type=float, default=60.0, help="batch size limit")
    d.add_argument("--limit", type=int, help="most modules in the batch")
    d.add_argument(
        "--seed", type=int, default=0, help="input data seed (0 = the CPU inputs)"
    )
    d = dsub.add_parser(
        "gpu-import", help="append a GPU batch's timings to RUN_DIR/amendments.jsonl"
    )
    d.add_argument("results", metavar="RESULTS_JSONL")
    d.add_argument("run_dir", metavar="RUN_DIR")
    d.add_argument("--manifest", help="the batch's manifest.json (compile provenance)")
    p.set_defaults(func=_cmd_dataset)

    p = sub.add_parser(
        "report",
        help="HTML report of feature importance and held-out accuracy per target",
        description="Split the dataset by family, fit the xgboost and linear cost "
        "models on the training part and write, per target, held-out metrics, "
        "predicted-vs-measured plots and feature importance (gain, permutation, "
        "SHAP values, coefficients) to OUT/index.html (needs matplotlib, extra "
        "[report]).",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--kind", choices=["modules", "kernels"], default="modules")
    p.add_argument("--level", help="MLIR level (default: linalg; kernels: dispatch)")
    p.add_argument(
        "--targets",
        nargs="+",
        metavar="TARGET",
        help="target or hardware names (default: all)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a quick look: 150 records, 2 targets unless --targets, 2 repeats",
    )
    p.add_argument("--max-rows", type=int, metavar="N", help="a random sample of N")
    p.add_argument("--repeats", type=int, default=5, help="permutation repeats")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, help="targets fitted in parallel")
    p.add_argument("--data-home", help="a dataset folder or a collection run folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "benchmark",
        help="compare the cost models and baselines on the same folds",
        description="Cross-validate xgboost (with and without its roofline prior) "
        "and ridge cost models, the fitted "
        "roofline and the neural text baselines on the bundled dataset (by family, "
        "by op template for kernels, and random; out of distribution when the OOD "
        "suite has records) and write "
        "OUT/results.csv, OUT/results.md (tables, goals, date and machine) and "
        "plots (needs matplotlib; the neural models need torch, extra [neural]).",
    )
    p.add_argument("--out", default="benchmarks", metavar="DIR")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 8 modules and 12 kernels per family, 3 folds, "
        "neural fits cut at 6 s (minutes, not hours; not the benchmark's figures)",
    )
    p.add_argument("--kinds", nargs="+", choices=["modules", "kernels"])
    # mlircost_classic.report._benchmark.MODEL_NAMES (a test checks they agree).
    p.add_argument(
        "--models",
        nargs="+",
        choices=[
            "xgboost",
            "xgboost-noprior",
            "ridge",
            "roofline",
            "transformer",
            "lstm",
            "cnn",
            "composed",
        ],
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-home", help="a dataset folder or a collection run folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_benchmark)
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
