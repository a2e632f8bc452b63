"""``mlircost collect`` and ``mlircost dataset``: label programs, inspect and grow the dataset."""

from __future__ import annotations

import argparse
import sys

from ._common import UserError

__all__ = ["add_commands"]

#: What ``collect`` measures unless told: the deterministic hardware.
DEFAULT_HARDWARE = ("cpu_x86_64_v3", "nvidia_sm80", "nvidia_sm90", "amd_gfx942")


def _collect_kwargs(args: argparse.Namespace) -> dict:
    return {
        "resume": args.resume,
        "n_jobs": args.jobs,
        "timeouts": dict(args.timeout or []) or None,
        "progress": not args.quiet,
    }


def _collect_ood(args: argparse.Namespace):
    import importlib.util

    from mlircost_classic.collect import collect_specs, ood_specs

    specs = ood_specs(args.families or None)
    # Checked here: without it every program would be recorded as failed.
    if importlib.util.find_spec("transformers") is None:
        raise UserError(
            "--suite ood builds transformers models: pip install 'mlircost_classic[ood]'"
        )
    known = None
    if not args.measure_known:
        specs, known = _unbundled_specs(specs, "ood", quiet=args.quiet)
    return collect_specs(
        specs, args.hardware, args.out, known_programs=known, **_collect_kwargs(args)
    )


#: A bundled record that failed with one of these words in a message is
#: collected again (a larger ``--timeout`` may let it through).
RETRY_WORDS = ("timed out",)


def _unbundled_specs(specs: list, suite: str, quiet: bool) -> tuple[list, dict]:
    """``specs`` less those the bundled ``suite`` holds, and its programs.

    A spec with a bundled record is not built again (a source grows by new
    programs; lowering a spec only to find its program bundled costs as much
    as a compile, tens of seconds for a torchvision network), whatever its
    status: ``partial`` and ``failed`` records failed at a level or a
    hardware, the same way on every run, unless a failure timed out
    (:data:`RETRY_WORDS`). The programs are for ``known_programs``: a new spec
    that lowers to a bundled program is not measured either.
    """
    from mlircost_classic.datasets import get_data_home, iter_dataset, programs_of

    # the shards read once: bundled_programs(home) would read them again
    records = list(iter_dataset("modules", get_data_home(suite=suite)))
    known = programs_of(records)
    done = set()
    for rec in records:
        messages = " ".join(f.get("message", "") for f in rec.get("failures", ()))
        if rec.get("status") != "failed" or not any(w in messages for w in RETRY_WORDS):
            done.add(rec["key"])
    kept = [s for s in specs if s.key() not in done]
    if len(kept) < len(specs) and not quiet:
        what = "OOD programs" if suite == "ood" else "programs"
        print(
            f"{len(specs) - len(kept)} of {len(specs)} {what} are bundled "
            "already and not collected again (--measure-known collects them)"
        )
    return kept, known


def _collect_source(args: argparse.Namespace):
    import importlib.util

    from mlircost_classic.collect import collect_specs, network_specs

    specs = network_specs(args.source, args.families or None)
    if importlib.util.find_spec(args.source) is None:
        raise UserError(
            f"--source {args.source} builds {args.source} models: "
            "pip install 'mlircost_classic[collect,ood]'"
        )
    specs, known = specs[: args.count], None
    if not args.measure_known:
        specs, known = _unbundled_specs(specs, "main", quiet=args.quiet)
    return collect_specs(
        specs, args.hardware, args.out, known_programs=known, **_collect_kwargs(args)
    )


def _collect_variants(args: argparse.Namespace) -> int:
    from mlircost_classic.collect import VARIANT_BACKENDS, collect_dataset_variants

    if args.count is None:
        raise UserError("--variants K needs --count N (dispatches of the dataset)")
    backends = [b for b, hw in VARIANT_BACKENDS.items() if set(hw) & set(args.hardware)]
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
        timeouts=dict(args.timeout or []) or None,
        log=None if args.quiet else print,
    )
    print(", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from mlircost_classic.collect import collect, collect_files

    if args.variants is not None:
        return _collect_variants(args)
    if args.input and args.suite == "ood":
        raise UserError("--input labels your files; it does not go with --suite ood")
    if args.source != "families" and (args.input or args.suite == "ood"):
        raise UserError("--source goes with neither --input nor --suite ood")
    if args.input:
        summary = collect_files(
            args.input,
            args.hardware,
            args.out,
            level=args.level,
            **_collect_kwargs(args),
        )
    elif args.source != "families":
        summary = _collect_source(args)
    elif args.suite == "ood":
        summary = _collect_ood(args)
    else:
        if args.count is None:
            raise UserError("give --count N (programs to sample) or --input FILE")
        summary = collect(
            args.families or None,
            args.count,
            args.seed,
            args.hardware,
            args.out,
            **_collect_kwargs(args),
        )
    print(summary.to_text())
    return 0


def _pack(args: argparse.Namespace) -> int:
    from mlircost_classic import datasets

    result = datasets.pack(
        args.run_dir, datasets.get_data_home(args.data_home, args.suite)
    )
    added = ", ".join(f"{n} {kind}" for kind, n in result.added.items()) or "nothing"
    print(f"added {added} in {len(result.new_shards)} new shard(s)")
    for shard in result.new_shards:
        print(f"  {shard}")
    print(
        f"  amendments: {result.amendments_added} added, "
        f"{len(result.amendments_waiting)} waiting for their record"
    )
    for kind, replaced in result.replaced.items():
        for rec_id in replaced:
            print(f"  replaced: {kind} {rec_id}: collected again with more targets")
    for kind, same in result.same_text.items():
        for rec_id in same:
            print(f"  skipped: {kind} {rec_id}: its compiled text is bundled already")
    for problem in [*result.invalid, *result.problems]:
        print(f"  skipped: {problem}")
    return 0


def _recompress(args: argparse.Namespace) -> int:
    from mlircost_classic import datasets

    home = datasets.get_data_home(args.data_home, args.suite)
    written = datasets.recompress(home)
    print(f"{len(written)} shard(s) of {home} rewritten as {datasets.SHARD_SUFFIX}")
    return 0


def _gpu_export(args: argparse.Namespace) -> int:
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


def _gpu_import(args: argparse.Namespace) -> int:
    from mlircost_classic.collect import import_gpu_results

    r = import_gpu_results(args.results, args.run_dir, manifest=args.manifest)
    print(
        f"{r['written']} amendments written ({', '.join(r['targets']) or '-'}), "
        f"{r['already']} already there, {len(r['unknown'])} unknown ids, "
        f"{len(r['errors'])} runner errors"
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    from mlircost_classic import datasets

    print(datasets.dataset_info(args.data_home, suite=args.suite).to_text())
    return 0


def _verify(args: argparse.Namespace) -> int:
    from mlircost_classic.collect import verify

    report = verify(args.data_home, sample=args.sample, seed=args.seed)
    print(report.to_text())
    return 0 if report.passed else 1


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


class _DeprecatedTargets(argparse.Action):
    """``collect --targets``: the old name of ``--hardware``, with a warning."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(
            "mlircost collect: --targets is deprecated, use --hardware "
            "(--targets names target words in predict and report)",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def _add_collect(sub, parents: dict) -> None:
    from mlircost_classic.collect._toolchain import WALL_FACTOR
    from mlircost_classic.datasets import HARDWARE

    p = sub.add_parser(
        "collect",
        parents=[parents["seed"], parents["quiet"]],
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
    p.add_argument("--input", nargs="+", metavar="FILE", help="label these MLIR files")
    p.add_argument(
        "--level",
        choices=["torch", "linalg", "stablehlo", "tosa"],
        help="level of the --input files (default: detected from their dialects)",
    )
    p.add_argument(
        "--hardware",
        nargs="+",
        metavar="HARDWARE",
        choices=list(HARDWARE),
        default=list(DEFAULT_HARDWARE),
        help=f"hardware to measure, of {', '.join(HARDWARE)} (default: the "
        f"deterministic ones: {' '.join(DEFAULT_HARDWARE)}; add cpu_host for latency)",
    )
    p.add_argument(
        "--targets",
        dest="hardware",
        nargs="+",
        metavar="HARDWARE",
        choices=list(HARDWARE),
        action=_DeprecatedTargets,
        help="deprecated name of --hardware",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--resume", action="store_true", help="skip programs already in OUT")
    p.add_argument(
        "--measure-known",
        action="store_true",
        help="with --source or --suite ood: measure every program, also those "
        "that lower to a program bundled already or recorded earlier in OUT (by "
        "default they are listed in OUT/same_program.jsonl and not measured: "
        "dataset pack would skip them; specs whose record is bundled are not "
        "even built, unless it failed and a failure timed out)",
    )
    p.add_argument("--jobs", type=int, default=1, help="parallel compiles")
    p.add_argument(
        "--timeout",
        type=_timeout,
        action="append",
        metavar="STAGE=SECONDS",
        help="per-stage timeout in CPU seconds of the stage's processes (also "
        f"stopped after {WALL_FACTOR:g}x that in wall-clock time neither running "
        "nor waiting to run: a hung tool), "
        "repeatable (lower, compile, inspect, callgrind, benchmark, ptxas)",
    )
    p.add_argument(
        "--variants",
        type=int,
        metavar="K",
        help="instead of programs: K candidate codegen configs of each of --count "
        "dispatches of the dataset, compiled and measured (OUT/variants.jsonl; "
        "rerun to resume)",
    )
    p.set_defaults(func=cmd_collect)


def _add_dataset(sub, parents: dict) -> None:
    data_home, seed = parents["data_home"], parents["seed"]
    p = sub.add_parser("dataset", help="inspect, verify or grow the dataset")
    dsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    d = dsub.add_parser(
        "info",
        parents=[
            data_home,
            parents["suite"](
                "ood: the evaluation-only suite, in the data home's ood/ folder"
            ),
        ],
        help="summary of the bundled dataset",
    )
    d.set_defaults(func=_info)
    d = dsub.add_parser(
        "verify",
        parents=[seed, data_home],
        help="re-collect K module records and compare them and their kernels "
        "(deterministic targets must match)",
    )
    d.add_argument("--sample", type=int, default=3, metavar="K")
    d.set_defaults(func=_verify)
    d = dsub.add_parser(
        "pack",
        parents=[
            parents["suite"](
                "ood: pack a 'collect --suite ood' run into the data home's ood/ folder"
            )
        ],
        help="add a collection run's new records as shards",
    )
    d.add_argument("run_dir", metavar="RUN_DIR")
    d.add_argument("--data-home", help="where the shards go (default: the package's)")
    d.set_defaults(func=_pack)
    d = dsub.add_parser(
        "recompress",
        parents=[
            parents["suite"]("ood: the data home's ood/ folder"),
        ],
        help="rewrite a data home's .jsonl.gz shards (as packed before xz shards) "
        "as .jsonl.xz holding the same records",
    )
    d.add_argument("--data-home", help="the shard folder (default: the package's)")
    d.set_defaults(func=_recompress)
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
    d.set_defaults(func=_gpu_export)
    d = dsub.add_parser(
        "gpu-import", help="append a GPU batch's timings to RUN_DIR/amendments.jsonl"
    )
    d.add_argument("results", metavar="RESULTS_JSONL")
    d.add_argument("run_dir", metavar="RUN_DIR")
    d.add_argument("--manifest", help="the batch's manifest.json (compile provenance)")
    d.set_defaults(func=_gpu_import)


def add_commands(sub, parents: dict) -> None:
    """Add ``collect`` and ``dataset`` to the ``mlircost`` subcommands."""
    _add_collect(sub, parents)
    _add_dataset(sub, parents)
