"""Composed module predictions on held-out families and the OOD suite, beside the module models.

Held-out families (``--cv-folds``, default 5): ``GroupKFold`` over the bundled
linalg modules' families / architectures; in each fold a kernels model
(``CostModel(featurizer=default_featurizer("kernels"), random_state=0)``, the
shipped kernels model's settings, without
intervals) is fitted on the kernels of the other folds' families only and
composes the held-out modules (:func:`~mlircost_classic.models.cross_val_compose`),
and the modules model (xgboost, ``CostModel(random_state=0)``) is fitted and
scored on the same folds. Spearman per target, for all modules, the real
networks (torchvision + transformers) and by source. This decides each
target's default: ``composed`` where it ranks the held-out real-network
modules better than the modules model (all held-out modules where fewer than
``MIN_NETWORKS`` networks are measured), else ``modules``
(``load_pretrained("auto")`` and ``mlircost predict`` follow it).

OOD suite: for each module target, the Spearman rank correlation of:
``composed`` (the shipped kernels model on the Python partitioner's regions,
aggregated by :data:`~mlircost_classic.models.AGGREGATION`, no calibration, so
no OOD label is used), ``iree-split`` (the same kernels model on IREE's own
dispatches of each module, the records' ``kernels`` lists, called as often as
``kernel_calls`` says: the ceiling of a perfect partitioner), and the shipped
modules model.
With ``--write-defaults``, also writes ``composed-linalg.json`` beside the
shipped models (these figures and the default of each target) and the folder
``composed-linalg/``: the composed model calibrated on the held-out aggregates
of the bundled linalg modules (per target a line, on the log scale for sums)
with 90% intervals cross-conformal over their families (each source's half-width,
the largest kept), and recalibrates the shipped stacked model's intervals the
same way on its held-out predictions, and the shipped linalg modules model on its
own; their coverage on the OOD suite (with the
shipped kernels model) is recorded in the JSON. Run from
the repository root (the held-out fits take ~15-30 min on 2 cores; ``--cache``
keeps the out-of-fold aggregates for a re-run, ``--models-cache`` the folds'
kernels models for a re-run with other partition rules)::

    python benchmarks/composed_ood.py [--write-defaults] [--cache composed_cv.npz]
        [--models-cache composed_folds/]
"""

import argparse
import datetime
import hashlib
import json
import os
from pathlib import Path

import numpy as np
from sklearn.model_selection import PredefinedSplit

import mlircost_classic as mc
from mlircost_classic.datasets import iter_dataset
from mlircost_classic.featurize import DispatchRegion, partition_dispatches
from mlircost_classic.models import (
    COMPOSED_NAME,
    MODULE_FIT_EXCLUDED_FAMILIES,
    PRETRAINED_DIR,
    ComposedCostModel,
    CostModel,
    StackedFeaturizer,
    compose_regions,
    cross_val_compose,
    default_featurizer,
    evaluate,
    interval_coverage,
    kernel_calls,
    pretrained_name,
    spearman,
)
from mlircost_classic.models._composed import _kernels_model_without, fit_settings
from mlircost_classic.models._cost_model import (
    DEEP_ROWS,
    _calibration_name,
    default_prior,
)
from mlircost_classic.models._pretrained import _dataset_version, _write_json

OOD = Path("mlircost_classic/data/ood")
NETWORKS = ("torchvision", "transformers")
#: Fewer measured held-out network modules than this: all modules decide.
MIN_NETWORKS = 30
#: The answers each target's default is chosen from, in the order ties go.
CANDIDATES = ("modules", "composed", "stacked")
#: How the held-out folds group the modules (``--groups``): ``cluster``
#: (default): architectures whose programs compile to the same dispatches are
#: one group (:func:`~mlircost_classic.datasets.architecture_clusters`), so
#: that no fold trains on a same-design twin of what it holds out;
#: ``architecture``: each family / architecture alone.
GROUPINGS = ("cluster", "architecture")
GROUP_WORDS = {
    "cluster": "cluster of same-design architectures (architecture_clusters)",
    "architecture": "family / architecture",
}


def load_grouped(kind: str, grouping: str, **kwargs):
    """``mc.load_dataset(kind, ...)`` whose ``groups`` follow ``grouping``;
    modules without the families the module-level fits leave out
    (``MODULE_FIT_EXCLUDED_FAMILIES``, as ``mlircost train`` does)."""
    groups = "cluster" if grouping == "cluster" else "family"
    if kind == "modules":
        kwargs.setdefault("exclude_families", MODULE_FIT_EXCLUDED_FAMILIES)
    return mc.load_dataset(kind, groups=groups, **kwargs)


def iree_regions(record: dict, texts: dict[str, str]) -> list[DispatchRegion]:
    """A module record's own IREE dispatches as regions, each called as often
    as :func:`~mlircost_classic.models.kernel_calls` says (``texts``: kernel
    id -> dispatch text)."""
    return [
        DispatchRegion(k, "other", texts[k], n, ())
        for k, n in kernel_calls(record).items()
        if k in texts
    ]


def ood_iree_regions() -> tuple[list[dict], list[list[DispatchRegion]]]:
    """The OOD suite's linalg module records and each one's own IREE
    dispatches as regions (:func:`iree_regions`)."""
    texts = {k["id"]: k["ir"]["dispatch"] for k in iter_dataset("kernels", OOD)}
    texts.update({k["id"]: k["ir"]["dispatch"] for k in iter_dataset("kernels")})
    records = [r for r in iter_dataset("modules", OOD) if r["ir"].get("linalg")]
    return records, [iree_regions(rec, texts) for rec in records]


def iree_split(names, kernels) -> np.ndarray:
    """Module targets from the kernels model on IREE's own dispatches."""
    return compose_regions(kernels, ood_iree_regions()[1], names)[0]


def rho(y: np.ndarray, p: np.ndarray) -> float | None:
    """Spearman of the measured rows (3 or more), None where it is undefined."""
    ok = ~np.isnan(y) & ~np.isnan(p)
    value = spearman(y, p) if ok.sum() >= 3 else float("nan")
    return None if np.isnan(value) else round(value, 3)


def kernels_base(jobs: int) -> CostModel:
    """The folds' kernels model, unfitted: the shipped one's settings.

    Its parameters are part of the key of the kept fold models
    (``--models-cache``): every script that reads them builds it here.
    """
    return CostModel(
        featurizer=default_featurizer("kernels"), random_state=0, n_jobs=jobs
    )


def held_out(
    names,
    folds_n: int,
    jobs: int,
    cache: Path | None,
    models: Path | None,
    grouping: str = "cluster",
    prior: str | None = "auto",
):
    """Out-of-family composed aggregates and modules-model predictions.

    ``cache`` keeps both for the same modules; the aggregates only for the same
    partition and kernels model too (a digest of every module's regions and the
    model's settings), so that a re-run with other partition rules composes
    again (quickly with ``models``) and reuses the modules model's predictions,
    which do not depend on the partition; those only for the same ``prior``
    (the modules and stacked models' ``CostModel(prior=...)``).
    """
    modules = load_grouped("modules", grouping, level="linalg", targets=names)
    ids = np.asarray(modules.ids, dtype=str)
    kernel_model = kernels_base(jobs)
    saved = regions = None
    if cache is not None:
        # The partition of every module and the kernels model's settings,
        # only to key the cached aggregates.
        digest = hashlib.sha256()
        params = fit_settings(kernel_model, DEEP_ROWS)
        digest.update(repr([p for p in params if p[0] != "n_jobs"]).encode())
        digest.update(repr(list(modules.groups)).encode())
        for text in modules.data:
            for region in partition_dispatches(text):
                digest.update(f"{region.calls}:{region.text}\0".encode())
        regions = digest.hexdigest()
    if cache is not None and cache.is_file():
        saved = dict(np.load(cache, allow_pickle=False))
        if not np.array_equal(saved["ids"], ids):
            saved = None
    same_prior = saved is not None and str(saved.get("prior", "auto")) == str(prior)
    if saved is not None and str(saved.get("regions")) == regions:
        print(f"held-out aggregates read from {cache}")
        raw, folds = saved["raw"], saved["folds"]
        if same_prior:
            return modules, raw, folds, saved["xgboost"]
    else:
        kernels = load_grouped("kernels", grouping)
        raw, folds = cross_val_compose(
            modules.data,
            modules.groups,
            kernels,
            names,
            kernel_model=kernel_model,
            n_splits=folds_n,
            models_dir=models,
        )
    if same_prior and np.array_equal(saved["folds"], folds):
        print(f"modules model's held-out predictions read from {cache}")
        xgb = saved["xgboost"]
    else:
        _, oof = evaluate(
            {"xgboost": CostModel(random_state=0, n_jobs=jobs, prior=prior)},
            modules.data,
            modules.target,
            names,
            modules.groups,
            cv=PredefinedSplit(folds),
            latency_repeats=1,
            batch_size=1,
            batch_repeats=1,
            as_frame=False,
            return_predictions=True,
        )
        xgb = oof["xgboost"]
    if cache is not None:
        np.savez(
            cache,
            ids=ids,
            raw=raw,
            folds=folds,
            xgboost=xgb,
            regions=regions,
            prior=str(prior),
        )
    return modules, raw, folds, xgb


def held_out_stacked(
    modules,
    names,
    raw,
    folds,
    jobs: int,
    cache: Path | None,
    models,
    grouping="cluster",
    prior: str | None = "auto",
):
    """Out-of-family predictions of the stacked model (text + composed columns).

    In each fold the :class:`StackedFeaturizer` composes with that fold's
    kernels model (fitted without the held-out groups' kernels, as in
    :func:`cross_val_compose`; ``models`` keeps them): the training modules'
    composed columns come from a kernels model fitted on their own kernels,
    as the shipped stacked model's do, the held-out ones' from one that never
    saw them, as a new program's will. Cached in ``cache`` (``stacked``) for
    the same modules, folds and composed aggregates (``raw``: the same
    partition and kernels models).
    """
    if cache is not None and cache.is_file():
        saved = dict(np.load(cache, allow_pickle=False))
        if (
            "stacked" in saved
            and str(saved.get("prior", "auto")) == str(prior)
            and np.array_equal(saved["folds"], folds)
            and np.array_equal(saved["raw"], raw, equal_nan=True)
        ):
            print(f"stacked model's held-out predictions read from {cache}")
            return saved["stacked"]
    kernels = load_grouped("kernels", grouping)
    groups = np.asarray(modules.groups, dtype=object)
    data = list(modules.data)
    out = np.full(modules.target.shape, np.nan)
    for k in np.unique(folds):
        test = np.flatnonzero(folds == k)
        train = np.flatnonzero(folds != k)
        fold_kernels, _ = _kernels_model_without(
            kernels_base(jobs), kernels, groups[test], models
        )
        model = CostModel(
            featurizer=StackedFeaturizer(kernel_model=fold_kernels),
            random_state=0,
            n_jobs=jobs,
            prior=prior,
        )
        model.fit([data[i] for i in train], modules.target[train], names)
        out[test] = model.predict([data[i] for i in test])
    if cache is not None:
        saved = dict(np.load(cache, allow_pickle=False))
        np.savez(cache, **saved, stacked=out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-defaults", action="store_true")
    parser.add_argument("--cv-folds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache", type=Path, help="npz of the held-out aggregates")
    parser.add_argument(
        "--models-cache",
        type=Path,
        help="folder keeping each fold's kernels model (reused by a re-run "
        "whose folds train on the same kernels: other partition rules)",
    )
    parser.add_argument(
        "--groups",
        choices=GROUPINGS,
        default="cluster",
        help="what a held-out fold holds out whole: clusters of architectures "
        "whose programs compile to the same dispatches (default), or single "
        "families / architectures",
    )
    parser.add_argument(
        "--prior",
        choices=["auto", "extensive"],
        default=default_prior("modules"),
        help="the modules and stacked models' CostModel(prior=...) in the "
        "held-out fits (default: the shipped ones', default_prior)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/composed_results.md")
    )
    args = parser.parse_args()
    ood = mc.load_dataset("modules", suite="ood")
    ood_names = list(ood.target_names)
    model = ComposedCostModel(calibrate=False).fit(ood.data, ood.target, ood_names)
    predictions = {
        "composed": model.predict(ood.data),
        "iree-split": iree_split(ood_names, model.kernel_model_),
    }
    # The shipped modules model (and the stacked one, where it is shipped):
    # the other answers of every target.
    modules_model = mc.load_pretrained("modules", "linalg")
    names = list(modules_model.target_names_)
    shipped = {"modules": modules_model.predict(ood.data)}
    try:
        shipped["stacked"] = mc.load_pretrained("stacked", "linalg").predict(ood.data)
    except FileNotFoundError:
        print("no shipped stacked model: its OOD column is left empty")
    ood_figures = {}
    for j, target in enumerate(ood_names):
        row = {n: rho(ood.target[:, j], p[:, j]) for n, p in predictions.items()}
        if target in names:
            for n, p in shipped.items():
                row[n] = rho(ood.target[:, j], p[:, names.index(target)])
        ood_figures[target] = {k: v for k, v in row.items() if v is not None}

    modules, raw, folds, xgb = held_out(
        names,
        args.cv_folds,
        args.jobs,
        args.cache,
        args.models_cache,
        args.groups,
        args.prior,
    )
    stacked = held_out_stacked(
        modules,
        names,
        raw,
        folds,
        args.jobs,
        args.cache,
        args.models_cache,
        args.groups,
        args.prior,
    )
    sources = np.asarray(modules.sources, dtype=object)
    subsets = {"all": np.ones(len(sources), bool)}
    subsets["networks"] = np.isin(sources, NETWORKS)
    subsets |= {src: sources == src for src in sorted(set(sources))}
    heldout, defaults, decided_on = {}, {}, {}
    for j, target in enumerate(names):
        y = modules.target[:, j]
        heldout[target] = {
            name: {
                "composed": rho(y[rows], raw[rows, j]),
                "modules": rho(y[rows], xgb[rows, j]),
                "stacked": rho(y[rows], stacked[rows, j]),
                "n": int((~np.isnan(y[rows])).sum()),
            }
            for name, rows in subsets.items()
        }
        # Real networks are what users compile: they decide where they are
        # measured enough; the families' programs decide elsewhere.
        on = "networks" if heldout[target]["networks"]["n"] >= MIN_NETWORKS else "all"
        # The modules model unless another one ranks them strictly better.
        best, best_rho = "modules", heldout[target][on]["modules"]
        for name in CANDIDATES[1:]:
            value = heldout[target][on][name]
            if value is not None and (best_rho is None or value > best_rho):
                best, best_rho = name, value
        defaults[target] = best
        decided_on[target] = on

    lines = [
        "# Composed module predictions: held-out families and the OOD suite",
        "",
        f"Held out: GroupKFold({args.cv_folds}) by {GROUP_WORDS[args.groups]} over "
        f"{len(modules.data)} bundled linalg modules ({len(set(modules.groups))} "
        "groups); each fold's kernels model is fitted without the held-out "
        "groups' kernels; the modules model is fitted on the same folds, and "
        "the stacked one (text and composed columns) with each fold's kernels "
        "model composing its training and held-out modules. "
        f"OOD: the suite's {len(ood.data)} modules, the shipped kernels and modules models. "
        "Spearman. **default**: the model that ranks the held-out real-network "
        f"modules (torchvision + transformers) better, where at least "
        f"{MIN_NETWORKS} are measured; all held-out modules elsewhere (*).",
        "",
        "| target | held out, networks: composed / modules / stacked | held out, "
        "all: composed / modules / stacked | default | OOD: composed | OOD: "
        "IREE's split | OOD: modules | OOD: stacked |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    cell = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    pair = lambda b: " / ".join(cell(b[n]) for n in ("composed", "modules", "stacked"))  # noqa: E731
    for target in names:
        h, o = heldout[target], ood_figures.get(target, {})
        star = "" if decided_on[target] == "networks" else " (*)"
        lines.append(
            f"| {target} | {pair(h['networks'])} | {pair(h['all'])} | "
            f"{defaults[target]}{star} | {cell(o.get('composed'))} | "
            f"{cell(o.get('iree-split'))} | {cell(o.get('modules'))} | "
            f"{cell(o.get('stacked'))} |"
        )
    lines += ["", "Held out, by source (composed / modules / stacked, n):", ""]
    srcs = sorted(set(sources))
    lines.append("| target | " + " | ".join(srcs) + " |")
    lines.append("|---|" + "---:|" * len(srcs))
    for target in names:
        cells = [
            f"{pair(heldout[target][s])} ({heldout[target][s]['n']})" for s in srcs
        ]
        lines.append(f"| {target} | " + " | ".join(cells) + " |")

    if args.write_defaults:
        calibrated = write_calibrated(modules, raw, ood)
        lines += calibrate_shipped("modules", modules, names, xgb, ood)
        if "stacked" in shipped:
            lines += calibrate_shipped("stacked", modules, names, stacked, ood)
        lines += [
            "",
            "90% intervals of the shipped composed model (calibrated on "
            "held-out families), coverage on the OOD suite:",
            "",
        ]
        lines += [
            f"- {t}: {v:.3f}"
            for t, v in calibrated["ood_coverage_90"].items()
            if v is not None
        ]
        now = datetime.datetime.now(datetime.timezone.utc)
        record = {
            "name": "composed-linalg",
            "kind": "composed",
            "date": now.isoformat(timespec="seconds"),
            "command": "python benchmarks/composed_ood.py --write-defaults "
            f"--groups {args.groups} --prior {args.prior}",
            "host_cpus": os.cpu_count(),
            "metric": (
                f"Spearman on held-out groups (GroupKFold {args.cv_folds} by "
                f"{GROUP_WORDS[args.groups]}, {len(modules.data)} bundled linalg "
                "modules) "
                f"decides the default: on the real-network modules where at least "
                f"{MIN_NETWORKS} are measured, on all elsewhere; Spearman on the "
                f"OOD suite ({len(ood.data)} modules, shipped models) beside it"
            ),
            "heldout_spearman": heldout,
            "ood_spearman": ood_figures,
            "default": defaults,
            "decided_on": decided_on,
            "calibrated": calibrated,
        }
        out = PRETRAINED_DIR / f"{COMPOSED_NAME}.json"
        _write_json(out, record)
        print(f"wrote {out}")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text, encoding="utf-8")


def save_recalibrated(model: CostModel, path: Path, how: str) -> None:
    """Save a shipped model whose intervals were calibrated again (``path``),
    and record in its JSON record how: ``calibration_``, then ``how``."""
    model.save(path, overwrite=True)
    info_path = path.with_suffix(".json")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info["model"]["calibration"] = f"{model.calibration_}: {how}"
    _write_json(info_path, info)


def calibrate_shipped(kind, modules, names, predicted, ood) -> list[str]:
    """A shipped modules or stacked model's intervals from its held-out predictions.

    Each source's 90% half-width of the held-out residuals (GroupKFold by
    family / architecture), the largest kept (``CostModel.calibrate(...,
    strata=sources)``), so that the three module answers are calibrated
    alike. The stacked model's own fit calibrates on held-out families whose
    composed columns came from a kernels model fitted on their kernels (too
    good); its held-out predictions here compose with kernels models that
    never saw them. Saves the model and returns lines of the intervals'
    coverage on the OOD suite.
    """
    path = PRETRAINED_DIR / f"{pretrained_name(kind, 'linalg')}.zip"
    model = CostModel.load(path)
    columns = [names.index(t) for t in model.target_names_]
    model.calibrate(
        y=modules.target[:, columns],
        predictions=predicted[:, columns],
        calibration=_calibration_name(modules.groups, modules.sources),
        strata=modules.sources,
    )
    composing = ", each fold's kernels model composing" if kind == "stacked" else ""
    save_recalibrated(
        model,
        path,
        "held-out predictions of benchmarks/composed_ood.py (GroupKFold by family "
        f"/ architecture{composing}), each source's 90% half-width, the largest kept",
    )
    lower, upper = model.predict_interval(ood.data)
    lines = [
        "",
        f"90% intervals of the shipped {kind} model, coverage on the OOD suite:",
        "",
    ]
    ood_names = list(ood.target_names)
    for j, target in enumerate(model.target_names_):
        if target in ood_names:
            y = ood.target[:, ood_names.index(target)]
            value = interval_coverage(y, lower[:, j], upper[:, j])
            if not np.isnan(value):
                lines.append(f"- {target}: {value:.3f}")
    return lines


def write_calibrated(modules, raw, ood) -> dict:
    """Fit the shipped composed model on the held-out aggregates, save it.

    The calibration lines are fitted on the bundled modules' out-of-family
    aggregates and the 90% intervals are cross-conformal over their families;
    the point predictions then use the shipped kernels model. Returns the
    record: the data version, the calibration and the intervals' coverage on
    the OOD suite.
    """
    names = list(modules.target_names)
    model = ComposedCostModel(intervals="conformal", random_state=0)
    model.fit(
        modules.data,
        modules.target,
        names,
        groups=modules.groups,
        raw=raw,
        strata=modules.sources,
    )
    model.save(PRETRAINED_DIR / COMPOSED_NAME, overwrite=True)
    lower, upper = model.predict_interval(ood.data)
    coverage = {}
    for j, target in enumerate(names):
        if target not in ood.target_names:
            continue
        y = ood.target[:, list(ood.target_names).index(target)]
        value = interval_coverage(y, lower[:, j], upper[:, j])
        coverage[target] = None if np.isnan(value) else round(float(value), 3)
    return {
        "folder": f"{COMPOSED_NAME}/",
        "fitted_on": "out-of-family aggregates of the bundled linalg modules "
        "(cross_val_compose), ComposedCostModel(intervals='conformal', "
        "random_state=0).fit(..., groups=families, raw=..., strata=sources)",
        "calibration": model.calibration_,
        "dataset": {**_dataset_version(None), "records": len(modules.data)},
        "ood_coverage_90": coverage,
    }


if __name__ == "__main__":
    main()
