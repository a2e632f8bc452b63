"""``mlircost predict``, ``explain`` and ``train``: the pretrained models' commands."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys

from ._common import UserError, read_one

__all__ = ["add_commands"]

# mlircost_classic.models.DEFAULT_MODELS, written out so that parsing the command
# line imports no model (a test checks they agree).
_MODEL_NAMES = [
    "modules-linalg",
    "modules-torch",
    "modules-stablehlo",
    "modules-tosa",
    "modules-affine",
    "kernels-dispatch",
    "stacked-linalg",
]
# mlircost_classic.models.VARIANT_TASKS, likewise: variants-<hardware>, each
# hardware's candidate ranker and spill classifier (train_variant_models).
_VARIANT_NAMES = [
    "variants-nvidia_sm80",
    "variants-nvidia_sm90",
    "variants-amd_gfx942",
    "variants-cpu_x86_64_v3",
]


class _FileError(Exception):
    """A file that could not be read or predicted: reported, the run goes on."""


def _choose_model(text: str, args):
    """(kind, level) for one text: --kind/--level, else its detected level."""
    from mlircost_classic.mlir import detect_level

    if args.kind == "kernels":
        return "kernels", "dispatch"
    if args.kind in ("composed", "stacked"):
        return args.kind, "linalg"
    return args.kind, args.level or detect_level(text)


def _load(kind: str, level: str, args):
    """(kind, model): the pretrained model; the composed one with ``--dispatches``.

    ``auto`` stays ``auto`` for a
    :class:`~mlircost_classic.models.PerTargetCostModel` (linalg: each target
    from the modules or the composed model, whichever ranked held-out real
    networks better), and is ``modules`` where it loads the modules model.
    """
    from mlircost_classic.models import ComposedCostModel, load_pretrained

    model = load_pretrained(kind, level, path=args.model_dir)
    if kind == "auto" and getattr(model, "chosen_", None) is None:
        return "modules", model
    if kind == "composed" and args.dispatches != model.partitioner:
        return kind, ComposedCostModel.from_kernels(
            model.target_names_, model.kernel_model_, partitioner=args.dispatches
        )
    return kind, model


def _model_names(model, kind: str, level: str) -> tuple[str, list[str] | None]:
    """The model's name for the header, and per target its source model, if several."""
    chosen = getattr(model, "chosen_", None)
    if chosen is None:
        return f"{kind}-{level}", None
    names = [f"{c}-{level}" for c in chosen]
    return " + ".join(dict.fromkeys(names)) + " (per target)", names


def _plain(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _predict_one(name: str, text: str, args, selected) -> dict:
    from mlircost_classic.datasets import select_targets, target_unit
    from mlircost_classic.mlir import parse

    kind, level = _choose_model(text, args)
    try:
        kind, model = _load(kind, level, args)
    except (FileNotFoundError, ValueError) as exc:
        raise _FileError(f"{name}: {exc}") from None
    try:
        parsed = parse(text)
    except ValueError as exc:  # MLIRSyntaxError
        raise _FileError(f"{name}: {exc}") from None
    # The composed model (alone or per target) partitions the text itself.
    doc = parsed if getattr(model, "featurizer_", None) is not None else text
    names = list(model.target_names_)
    try:
        chosen = set(select_targets(selected, names))
    except ValueError as exc:
        raise _FileError(str(exc)) from None
    lower = upper = None
    if getattr(model, "conformal_quantiles_", None) is not None:
        point, lo, hi = model.predict_interval([doc], return_prediction=True)
        lower, upper = lo.reshape(1, -1)[0], hi.reshape(1, -1)[0]
    else:
        try:
            point = model.predict([doc])
        except (ImportError, RuntimeError) as exc:  # --dispatches iree
            raise _FileError(f"{name}: {exc}") from None
    point = point.reshape(1, -1)[0]
    (novelty,) = model.novelty([doc])
    model_name, sources = _model_names(model, kind, level)
    rows = []
    # The model keeps predictions and bounds in each target's domain.
    for j, target in enumerate(names):
        if target not in chosen:
            continue
        rows.append(
            {
                "target": target,
                "prediction": _plain(point[j]),
                "lower": None if lower is None else _plain(lower[j]),
                "upper": None if upper is None else _plain(upper[j]),
                "unit": target_unit(target),
                "model": model_name if sources is None else sources[j],
            }
        )
    return {
        "file": name,
        "kind": "modules" if kind == "auto" else kind,  # what the text is
        "level": level,
        "model": model_name,
        "confidence": getattr(model, "confidence", None) if lower is not None else None,
        "predictions": rows,
        "novelty": novelty,
    }


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        return f"{value:.4g}"
    return f"{value:.3g}"


def _print_table(result: dict) -> None:
    confidence = result["confidence"]
    head = f"{result['file']}  (level {result['level']}, model {result['model']}"
    print(head + (f", {confidence:.0%} intervals)" if confidence else ")"))
    rows = result["predictions"]
    width = max(len("target"), *(len(r["target"]) for r in rows))
    interval = f"{confidence:.0%} interval" if confidence else "interval"
    # A model column only where the targets come from several models.
    several = len({r["model"] for r in rows}) > 1
    unit = max(len("unit"), *(len(r["unit"]) for r in rows)) if several else 0
    head = (
        f"  {'target':<{width}}  {'prediction':>10}  {interval:>21}  {'unit':<{unit}}"
    )
    print(f"{head}  model" if several else head)
    for r in rows:
        span = "-"
        if r["lower"] is not None:
            span = f"[{_number(r['lower'])}, {_number(r['upper'])}]"
        line = (
            f"  {r['target']:<{width}}  {_number(r['prediction']):>10}  "
            f"{span:>21}  {r['unit']:<{unit}}"
        )
        print(f"{line}  {r['model']}" if several else line)


def cmd_predict(args: argparse.Namespace) -> int:
    results, failed = [], 0
    for path in args.files:
        try:
            name, text = read_one(path, _FileError)
            results.append(_predict_one(name, text, args, args.targets))
        except _FileError as exc:
            failed += 1
            print(f"mlircost predict: error: {exc}", file=sys.stderr)
            results.append({"file": path, "error": str(exc)})
    ok = [r for r in results if "error" not in r]
    for r in ok:
        if r["novelty"]:
            print(
                f"mlircost predict: warning: {r['file']} is far from the training "
                f"data of {r['model']}, its predictions and intervals may not "
                f"hold: {'; '.join(r['novelty'])}",
                file=sys.stderr,
            )
    if args.format == "json":
        json.dump(results, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(
            ["file", "level", "target", "prediction", "lower", "upper", "unit"]
        )
        for r in ok:
            for p in r["predictions"]:
                writer.writerow(
                    [
                        r["file"],
                        r["level"],
                        p["target"],
                        "" if p["prediction"] is None else f"{p['prediction']:.6g}",
                        "" if p["lower"] is None else f"{p['lower']:.6g}",
                        "" if p["upper"] is None else f"{p['upper']:.6g}",
                        p["unit"],
                    ]
                )
    else:
        for i, r in enumerate(ok):
            if i:
                print()
            _print_table(r)
    return 2 if failed else 0


def cmd_explain(args: argparse.Namespace) -> int:
    from mlircost_classic.datasets import resolve_target, target_unit
    from mlircost_classic.mlir import parse
    from mlircost_classic.models import StackedFeaturizer, explain

    name, text = read_one(args.file)
    kind, level = _choose_model(text, args)
    try:
        kind, model = _load(kind, level, args)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    if kind == "auto":
        # Explain the target with the model that answers it.
        try:
            j = resolve_target(model.target_names_, args.target)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        kind = model.chosen_[j]
        model = model.models_[kind]
    if kind == "composed":
        return _explain_composed(name, text, model, args)
    try:
        parsed = parse(text)
    except ValueError as exc:
        raise UserError(f"{name}: {exc}") from None
    # a stacked model composes the module from its text (its regions are
    # printed from the text), the others read the parsed module
    stacked = isinstance(getattr(model, "featurizer_", None), StackedFeaturizer)
    result = explain(model, text if stacked else parsed, args.target, top=args.top)
    if args.format == "json":
        out = {"file": name, "level": level, "model": f"{kind}-{level}"}
        out.update(result.to_dict())
        out["unit"] = target_unit(result.target)
        json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    unit = target_unit(result.target)
    print(f"{name}  (level {level}, model {kind}-{level})")
    text = str(result).replace(
        f"{result.target} = {result.prediction:.4g}",
        f"{result.target} = {_number(result.prediction)} {unit}",
        1,
    )
    print(text)
    if result.log_scale:
        print(
            "  (a contribution c multiplies 1 + prediction by exp(c): "
            "+0.69 doubles it, -0.69 halves it)"
        )
    return 0


def _explain_composed(name: str, text: str, model, args) -> int:
    """The dispatches behind a composed prediction, largest share first."""
    from mlircost_classic.datasets import resolve_target, target_unit

    try:
        rows = model.explain_kernels(text, args.target)[: args.top]
    except (ImportError, RuntimeError, ValueError) as exc:
        raise UserError(f"{name}: {exc}") from None
    target = model.target_names_[resolve_target(model.target_names_, args.target)]
    if args.format == "json":
        out = {"file": name, "level": "linalg", "model": "composed", "target": target}
        out["dispatches"] = rows
        json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    print(f"{name}  (model composed, {args.dispatches} dispatches), {target}")
    print(
        f"  {'share':>6}  {'calls':>5}  {'per call':>10}  dispatch  ({target_unit(target)})"
    )
    for row in rows:
        print(
            f"  {row['share']:6.1%}  {row['calls']:5d}  {_number(row['value']):>10}"
            f"  {row['name']} ({row['kind']})"
        )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from mlircost_classic.models import (
        pretrained_name,
        train_pretrained,
        train_variant_models,
    )

    models, hardware = [], []
    for name in args.models or [*_MODEL_NAMES, *_VARIANT_NAMES]:
        kind, _, level = name.partition("-")
        if kind == "variants":
            hardware.append(level)
            continue
        pretrained_name(kind, level)  # a ValueError for an unknown name
        models.append((kind, level))
    # (called only when asked: it hashes the dataset's shards first)
    for info in (
        train_variant_models(args.out, hardware=hardware, data_home=args.data_home)
        if hardware
        else []
    ):
        spills = info["model"]["spills"]
        print(
            f"{info['name']}: {info['dataset']['candidates']} candidates of "
            f"{info['dataset']['dispatches']} dispatches, ranks by {info['target']}"
            + (f", spill threshold {spills['threshold']:.2f}" if spills else "")
            + f", {info['seconds']} s -> {args.out}/{info['name']}.zip"
        )
    if not models:
        return 0
    infos = train_pretrained(
        args.out,
        models=models,
        data_home=args.data_home,
        n_splits=args.cv_folds,
        max_rows=args.max_rows,
        random_state=args.seed,
        n_jobs=args.jobs,
        progress=not args.quiet,
    )
    for info in infos:
        if "skipped" in info:
            print(f"{info['name']}: skipped, {info['skipped']}")
            continue
        metrics = info["cv"]["metrics"]
        rhos = sorted(m["spearman"] for m in metrics.values() if m.get("spearman"))
        # --cv-folds 0 evaluates nothing: no summary.
        summary = (
            f", median held-out-family Spearman {rhos[len(rhos) // 2]:.3f}"
            if rhos
            else ""
        )
        print(
            f"{info['name']}: {info['dataset']['records']} records, "
            f"{len(info['targets'])} targets, {info['seconds']} s{summary}"
            f" -> {args.out}/{info['name']}.zip"
        )
    return 0


def _model_parser() -> argparse.ArgumentParser:
    """``--level``, ``--kind``, ``--model-dir``: which pretrained model reads a file."""
    p = argparse.ArgumentParser(add_help=False)
    from mlircost_classic.datasets import COST_KINDS, LEVELS

    p.add_argument(
        "--level",
        choices=LEVELS,
        help="level of the MLIR (default: detected from its dialects)",
    )
    p.add_argument(
        "--kind",
        choices=["auto", *COST_KINDS, "composed", "stacked"],
        default="auto",
        help="auto: a whole program, each target from the model that ranked "
        "held-out real networks better (for linalg, the modules or the composed "
        "model; composed-linalg.json); modules: the modules model only; kernels: the "
        "text is an IREE dispatch region; composed: a linalg module predicted "
        "from the kernels model on its dispatch regions; stacked: a linalg module "
        "predicted from its text features and those composed aggregates together",
    )
    p.add_argument(
        "--dispatches",
        choices=["python", "iree"],
        default="python",
        help="with --kind composed, where the regions come from: the Python "
        "partitioner, or iree-compile itself (the [collect] extra)",
    )
    p.add_argument(
        "--model-dir",
        metavar="DIR",
        help="models written by `mlircost train --out DIR` (default: the shipped ones)",
    )
    return p


def add_commands(sub, parents: dict) -> None:
    """Add predict, explain and train to the ``mlircost`` subcommands."""
    model = _model_parser()
    p = sub.add_parser(
        "predict",
        parents=[model],
        help="predict the costs of MLIR files with the pretrained models",
        description="Predict every hardware target of MLIR files with the "
        "pretrained cost models (or those of --model-dir): one table per file "
        "with the prediction, its split-conformal interval and the unit. The "
        "model is chosen by the file's level (torch, linalg, stablehlo, tosa, "
        "affine), detected from its dialects unless --level is given.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="MLIR file, or - for stdin")
    p.add_argument(
        "--targets",
        nargs="+",
        metavar="TARGET",
        help="only these targets: full names (nvidia_sm80.registers), hardware "
        "(nvidia_sm80) or metric names (instructions)",
    )
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "explain",
        parents=[model],
        help="why a pretrained model predicts what it does for one file",
        description="Split one prediction into signed per-feature contributions "
        "(xgboost pred_contribs: SHAP values) and show the largest, with "
        "readable feature names.",
    )
    p.add_argument("file", metavar="FILE", help="MLIR file, or - for stdin")
    p.add_argument(
        "--target",
        required=True,
        help="target name or an unambiguous part of it (e.g. instructions)",
    )
    p.add_argument("--top", type=int, default=10, help="contributions shown")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser(
        "train",
        parents=[parents["seed"], parents["data_home"], parents["quiet"]],
        help="fit the default cost models on the dataset and save them",
        description="Fit one xgboost CostModel (with 90%% split-conformal "
        "intervals) per level on the bundled dataset (or --data-home) and save "
        "it without pickle as OUT/<kind>-<level>.zip, with OUT/<kind>-<level>.json "
        "recording the dataset version, the settings and GroupKFold-by-family "
        "metrics; variants-<hardware>: the candidate ranker and spill classifier "
        "of `mlircost rank`, fitted on the bundled variants. The shipped "
        "defaults are built with `mlircost train --out "
        "mlircost_classic/data/pretrained`.",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument(
        "--models",
        nargs="+",
        choices=[*_MODEL_NAMES, *_VARIANT_NAMES],
        metavar="NAME",
        help=f"default: all of {', '.join([*_MODEL_NAMES, *_VARIANT_NAMES])}",
    )
    p.add_argument("--cv-folds", type=int, default=5, help="0 skips the evaluation")
    p.add_argument("--max-rows", type=int, metavar="N", help="a random sample of N")
    p.add_argument("--jobs", type=int, help="targets fitted in parallel")
    p.set_defaults(func=cmd_train)
