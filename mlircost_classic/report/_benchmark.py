"""The benchmark: every model on the same folds, written as tables and plots.

:func:`run_benchmark` cross-validates the classical models (xgboost and ridge
:class:`~mlircost_classic.models.CostModel`, and xgboost without its roofline
prior as an ablation), the fitted roofline and the
neural text baselines on the bundled dataset with
:func:`~mlircost_classic.models.evaluate` (by family — the headline — and
random), scores them on the out-of-distribution suite where it has records
(fitted on the whole dataset), and writes ``results.csv`` (every figure),
``results.md`` (tables and the goals of the models issue, with the date,
machine and dataset counts) and plots. :func:`update_readme` copies the
headline tables into the README's benchmark block.
"""

from __future__ import annotations

import csv
import datetime as _dt
import importlib.util
import math
import os
import platform
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import __version__
from ..datasets import iter_dataset, load_dataset
from ..models import (
    METRICS,
    ComposedCostModel,
    CostModel,
    NeuralTextRegressor,
    RooflineBaseline,
    evaluate,
)

__all__ = [
    "BENCHMARK_COLUMNS",
    "MODEL_NAMES",
    "benchmark_models",
    "run_benchmark",
    "update_readme",
]

#: Every model :func:`run_benchmark` knows, in table order.
MODEL_NAMES = (
    "xgboost",
    "xgboost-noprior",
    "ridge",
    "roofline",
    "transformer",
    "lstm",
    "cnn",
    "composed",
)
#: Models that predict modules only (skipped for kernels).
MODULES_ONLY = ("composed",)
#: What ``run_benchmark`` fits unless told: all but the CNN and the composed
#: model (whose kernels model saw every family: only its OOD figures are held
#: out; ``benchmarks/composed_ood.py`` compares it on the OOD suite).
DEFAULT_MODELS = tuple(name for name in MODEL_NAMES if name not in ("cnn", "composed"))
#: What each model is, for the results page.
MODEL_DESCRIPTIONS = {
    "xgboost": "`CostModel()`, the product: xgboost per target boosted from the "
    "target's roofline fit (`prior='roofline'`), log scale for skewed targets",
    "xgboost-noprior": "the same without the roofline prior (`prior=None`): the ablation",
    "ridge": "`CostModel(estimator=RidgeCV(...), prior=None)`: ridge on the same "
    "features, log scale for skewed targets",
    "roofline": "`RooflineBaseline()`: log1p(y) = a + b log1p(FLOPs) + c log1p(bytes), "
    "least squares",
    "transformer": "`NeuralTextRegressor('transformer')`: token sequence, small "
    "transformer encoder, all targets at once",
    "lstm": "`NeuralTextRegressor('lstm')`: token sequence, bidirectional LSTM",
    "cnn": "`NeuralTextRegressor('cnn')`: token sequence, 1-D CNN",
    "composed": "`ComposedCostModel()`: the shipped kernels model on the module's "
    "dispatch regions (Python partitioner), aggregated by the collector's rules, "
    "calibrated per target; its kernels model saw every bundled family's kernels, "
    "so only its OOD figures are held out",
}
KINDS = ("modules", "kernels")
PROTOCOLS = ("group", "template", "random")
# The op-template split groups IREE dispatches; a module's op sequence is its
# own, so for modules it would be a random split under another name.
_KINDS_OF_PROTOCOL = {"template": ("kernels",)}
NEURAL = ("transformer", "lstm", "cnn")
CLASSICAL = "xgboost"

#: Columns of ``results.csv``.
BENCHMARK_COLUMNS = ("kind", "protocol", "model", "target", "metric", "value", "n")

README_START = "<!-- benchmark:start -->"
README_END = "<!-- benchmark:end -->"

#: Records that must differ from a target's most common value for it to be
#: benchmarked.
MIN_VARIED = 10

# --quick: rows kept per family, folds, and the neural models' time budget.
_QUICK = {"modules": 8, "kernels": 12, "n_splits": 3, "neural_seconds": 6.0}


def benchmark_models(
    names: Sequence[str] = DEFAULT_MODELS,
    *,
    quick: bool = False,
    random_state: int = 0,
    neural_seconds: float | None = None,
    n_jobs: int | None = None,
) -> dict:
    """The unfitted models of the benchmark, by name.

    Parameters
    ----------
    names : sequence of str
        Names out of :data:`MODEL_NAMES`.
    quick : bool, default=False
        Small neural models and few epochs (for a smoke run).
    random_state : int, default=0
        Seed of every model.
    neural_seconds : float, optional
        Wall-clock budget of one neural fit (``max_seconds``).
    n_jobs : int, optional
        Targets fitted in parallel by the cost models, and torch threads of
        the neural models.

    Returns
    -------
    dict of str -> estimator
    """
    from sklearn.linear_model import RidgeCV

    unknown = sorted(set(names) - set(MODEL_NAMES))
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from {list(MODEL_NAMES)}")
    neural = [n for n in names if n in NEURAL]
    if neural and importlib.util.find_spec("torch") is None:
        raise ImportError(
            f"the neural baselines ({', '.join(neural)}) need torch: pip install "
            "'mlircost_classic[neural]', or leave them out of the models"
        )
    models = {}
    for name in names:
        if name == "xgboost":
            models[name] = CostModel(random_state=random_state, n_jobs=n_jobs)
        elif name == "xgboost-noprior":
            models[name] = CostModel(
                prior=None, random_state=random_state, n_jobs=n_jobs
            )
        elif name == "ridge":
            # Ridge on log1p of the skewed targets (the CostModel default),
            # alpha by efficient leave-one-out over a log grid; the plain
            # linear baseline, without the roofline prior.
            models[name] = CostModel(
                estimator=RidgeCV(alphas=np.logspace(-2, 4, 13)),
                prior=None,
                random_state=random_state,
                n_jobs=n_jobs,
            )
        elif name == "roofline":
            models[name] = RooflineBaseline()
        elif name == "composed":
            models[name] = ComposedCostModel(random_state=random_state)
        else:
            extra = {"max_epochs": 5, "max_len": 256, "patience": 2} if quick else {}
            models[name] = NeuralTextRegressor(
                arch=name,
                max_seconds=neural_seconds,
                n_threads=n_jobs,
                random_state=random_state,
                **extra,
            )
    return models


def _targets(Y: np.ndarray, names: Sequence[str]) -> tuple[list[int], dict]:
    """Columns to benchmark, and the others with their number of varied rows.

    A noise figure (``*_spread``) is no cost. A target where fewer than
    :data:`MIN_VARIED` records differ from its most common value (spills:
    mostly 0) has no ranking worth a Spearman figure: a handful of ranks
    among ties.
    """
    keep, skipped = [], {}
    for j, name in enumerate(names):
        if name.endswith("_spread"):
            continue
        y = Y[~np.isnan(Y[:, j]), j]
        varied = (
            int(y.size - np.unique(y, return_counts=True)[1].max()) if y.size else 0
        )
        if varied < MIN_VARIED:
            skipped[name] = varied
        else:
            keep.append(j)
    return keep, skipped


def _subsample(groups: np.ndarray, per_group: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = []
    for family in np.unique(groups):
        members = np.flatnonzero(groups == family)
        rows.extend(
            rng.choice(members, size=min(per_group, members.size), replace=False)
        )
    return np.sort(np.asarray(rows))


def _compile_measure_seconds(kind: str, data_home) -> float | None:
    """Median seconds to compile and measure one module of the dataset.

    A module record's ``seconds`` hold the wall time of its measuring steps
    (``measure``, ``measure:cpu_timing`` ...), each of which includes its
    compiles (``compile:llvm-cpu`` ...: sub-stages, not to be added again).
    Lowering from PyTorch comes before and is left out. Kernel records carry
    no timings (they are measured with their module).
    """
    if kind != "modules":
        return None
    totals = []
    for record in iter_dataset("modules", data_home=data_home):
        seconds = record.get("seconds") or {}
        if record.get("status") != "ok" or "measure" not in seconds:
            continue
        totals.append(
            sum(v for k, v in seconds.items() if k.split(":")[0] == "measure")
        )
    return float(np.median(totals)) if totals else None


def _host() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def _load_average() -> float | None:
    # Timings are wall clock: results.md says how busy the machine was.
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="run", desc="benchmark")


def _per_family(quick: bool, max_per_family) -> dict:
    if max_per_family is None:
        return {k: _QUICK[k] for k in KINDS} if quick else dict.fromkeys(KINDS)
    if isinstance(max_per_family, int):
        return dict.fromkeys(KINDS, max_per_family)
    return {k: max_per_family.get(k) for k in KINDS}


def _command(out, quick, kinds, protocols, models, neural_seconds, data_home) -> str:
    """The ``mlircost benchmark`` line that repeats this run."""
    words = ["mlircost benchmark", f"--out {out}"]
    if quick:
        words.append("--quick")
    if tuple(kinds) != KINDS:
        words.append("--kinds " + " ".join(kinds))
    if tuple(models) != DEFAULT_MODELS:
        words.append("--models " + " ".join(models))
    if tuple(protocols) != PROTOCOLS:
        words.append("--protocols " + " ".join(protocols))
    if neural_seconds is not None and not (
        quick and neural_seconds == _QUICK["neural_seconds"]
    ):
        words.append(f"--neural-seconds {neural_seconds:g}")
    if data_home is not None:
        words.append(f"--data-home {data_home}")
    return " ".join(words)


def run_benchmark(
    out: str | os.PathLike = "benchmarks",
    *,
    quick: bool = False,
    kinds: Sequence[str] = KINDS,
    protocols: Sequence[str] = PROTOCOLS,
    models: Sequence[str] = DEFAULT_MODELS,
    ood: bool = True,
    n_splits: int | None = None,
    max_per_family: int | dict | None = None,
    neural_seconds: float | None = None,
    n_jobs: int | None = None,
    random_state: int = 0,
    data_home: str | os.PathLike | None = None,
    plots: bool = True,
    progress: bool = False,
) -> list[dict]:
    """Compare the models on the same folds and write the results.

    Parameters
    ----------
    out : path-like, default="benchmarks"
        Folder for ``results.csv``, ``results.md`` and the plots.
    quick : bool, default=False
        A smoke run: a few records per family, 3 folds, small neural models
        with a few seconds each. Its figures are not the benchmark's.
    kinds : sequence of {"modules", "kernels"}
        Datasets to benchmark (modules at the linalg level, kernels at the
        dispatch level).
    protocols : sequence of {"group", "template", "random"}
        Cross-validation by family (``GroupKFold``, the headline), by op
        template (kernels only: ``GroupKFold`` by
        :func:`~mlircost_classic.models.op_templates`) and random (shuffled
        ``KFold``).
    models : sequence of str
        Names out of :data:`MODEL_NAMES`.
    ood : bool, default=True
        Also fit on the whole dataset and score the out-of-distribution suite
        (protocol ``"ood"``) where it has records; ``results.md`` says when
        it has none.
    n_splits : int, optional
        Folds (default 5, or 3 with ``quick``).
    max_per_family : int or dict of str -> int, optional
        Records kept per family (a random sample), for all kinds or per kind;
        default all, or 8 modules and 12 kernels with ``quick``.
    neural_seconds : float, optional
        Wall-clock budget of one neural fit (default: none, or a few seconds
        with ``quick``).
    n_jobs : int, optional
        Targets fitted in parallel by the cost models, and torch threads of
        the neural models.
    random_state : int, default=0
        Seed of the models, the random folds and the subsample.
    data_home : path-like, optional
        Dataset folder (default: the bundled dataset); the OOD suite is read
        from its ``ood`` folder.
    plots : bool, default=True
        Write the PNG plots (needs matplotlib).
    progress : bool, default=False
        Show a progress bar (tqdm) over the cross-validations.

    Returns
    -------
    list of dict
        The rows of ``results.csv`` (:data:`BENCHMARK_COLUMNS`).
    """
    for protocol in protocols:
        if protocol not in PROTOCOLS:
            raise ValueError(
                f"protocol must be one of {list(PROTOCOLS)}, got {protocol!r}"
            )
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    benchmark_models(models)  # unknown names fail now, not after an hour
    if plots and importlib.util.find_spec("matplotlib") is None:
        raise ImportError(
            "the benchmark plots need matplotlib: pip install "
            "'mlircost_classic[report]', or run with plots=False"
        )
    out = Path(out)
    n_splits = n_splits or (_QUICK["n_splits"] if quick else 5)
    if quick and neural_seconds is None:
        neural_seconds = _QUICK["neural_seconds"]
    per_family = _per_family(quick, max_per_family)
    started = time.time()
    rows: list[dict] = []
    predictions: dict = {}
    context: dict = {
        "kinds": {},
        "skipped": {},
        "compile_measure_s": {},
        "load": [_load_average()],
        "command": _command(
            out, quick, kinds, protocols, models, neural_seconds, data_home
        ),
    }
    datasets = {}
    for kind in kinds:
        bunch = load_dataset(kind, data_home=data_home)
        groups = np.asarray(bunch.groups)
        keep = np.arange(len(bunch.data))
        if per_family[kind]:
            keep = _subsample(groups, per_family[kind], random_state)
        # Constant targets are judged on the rows kept: a subsample can make one.
        columns, skipped = _targets(bunch.target[keep], bunch.target_names)
        texts = [bunch.data[i] for i in keep]
        Y = bunch.target[np.ix_(keep, columns)]
        names = [bunch.target_names[j] for j in columns]
        groups = groups[keep]
        datasets[kind] = (texts, Y, names, groups)
        context["kinds"][kind] = {
            "records": len(texts),
            "bundled": len(bunch.data),
            "families": len(np.unique(groups)),
            "targets": len(names),
        }
        context["skipped"][kind] = skipped
        context["compile_measure_s"][kind] = _compile_measure_seconds(kind, data_home)
    ood_sets = _ood_sets(kinds, data_home) if ood else {}
    out.mkdir(parents=True, exist_ok=True)

    def make(name):
        return benchmark_models(
            [name],
            quick=quick,
            random_state=random_state,
            neural_seconds=neural_seconds,
            n_jobs=n_jobs,
        )[name]

    runs = sum(
        len(_protocols_of(k, protocols)) + (k in ood_sets)
        for k in datasets
        for name in models
        if name not in MODULES_ONLY or k == "modules"
    )
    bar = _progress(runs, progress)
    for kind, (texts, Y, names, groups) in datasets.items():
        for name in models:
            if name in MODULES_ONLY and kind != "modules":
                continue
            for protocol in _protocols_of(kind, protocols):
                if bar is not None:
                    bar.set_postfix_str(f"{kind} {protocol} {name}")
                table, oof = evaluate(
                    {name: make(name)},
                    texts,
                    Y,
                    names,
                    groups,
                    cv=protocol,
                    n_splits=n_splits,
                    random_state=random_state,
                    latency_repeats=5 if quick else 20,
                    batch_size=32 if quick else 1000,
                    as_frame=False,
                    return_predictions=True,
                )
                rows.extend({"kind": kind, "protocol": protocol, **r} for r in table)
                predictions[(kind, protocol, name)] = oof[name]
                if bar is not None:
                    bar.update()
            if kind in ood_sets:
                if bar is not None:
                    bar.set_postfix_str(f"{kind} ood {name}")
                rows.extend(
                    _score_ood(kind, name, make(name), texts, Y, names, ood_sets[kind])
                )
                if bar is not None:
                    bar.update()
    if bar is not None:
        bar.close()
    context.update(
        seconds=time.time() - started,
        quick=quick,
        n_splits=n_splits,
        models=list(models),
        protocols=list(protocols),
        ood_requested=ood,
        ood={k: len(v.data) for k, v in ood_sets.items()},
        neural_seconds=neural_seconds,
    )
    _write_csv(out / "results.csv", rows)
    figures = []
    if plots:
        figures = _plots(out, datasets, predictions, rows, models)
    context["load"].append(_load_average())
    (out / "results.md").write_text(
        render_markdown(rows, context, figures), encoding="utf-8"
    )
    return rows


def _protocols_of(kind: str, protocols: Sequence[str]) -> list[str]:
    return [p for p in protocols if kind in _KINDS_OF_PROTOCOL.get(p, (kind,))]


def _ood_sets(kinds, data_home) -> dict:
    """kind -> the OOD suite's Bunch, for the kinds where it has records."""
    sets = {}
    for kind in kinds:
        try:
            bunch = load_dataset(kind, suite="ood", data_home=data_home)
        except FileNotFoundError:
            continue  # no OOD shards (yet) in this data home
        if len(bunch.data):
            sets[kind] = bunch
    return sets


def _score_ood(kind, name, model, texts, Y, names, bunch) -> list[dict]:
    """Fit on the whole dataset, score the OOD suite's targets."""
    index = {t: j for j, t in enumerate(bunch.target_names)}
    shared = [j for j, t in enumerate(names) if t in index]
    if not shared:
        return []
    Y_ood = bunch.target[:, [index[names[j]] for j in shared]]
    start = time.perf_counter()
    model.fit(texts, Y, target_names=names)
    fit_seconds = time.perf_counter() - start
    pred = np.asarray(model.predict(list(bunch.data))).reshape(len(bunch.data), -1)
    groups = np.asarray(bunch.groups)
    rows = []
    for col, j in enumerate(shared):
        measured = int((~np.isnan(Y_ood[:, col])).sum())
        if measured == 0:
            continue
        for metric, function in METRICS.items():
            value = function(Y_ood[:, col], pred[:, j], groups)
            rows.append(_row(kind, name, names[j], metric, value, measured))
    rows.append(_row(kind, name, "*", "fit_seconds", fit_seconds, 1))
    return rows


def _row(kind, model, target, metric, value, n, protocol="ood") -> dict:
    return {
        "kind": kind,
        "protocol": protocol,
        "model": model,
        "target": target,
        "metric": metric,
        "value": float(value),
        "n": int(n),
    }


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=BENCHMARK_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in BENCHMARK_COLUMNS})


# -- tables -----------------------------------------------------------------


def _lookup(rows):
    return {
        (r["kind"], r["protocol"], r["model"], r["target"], r["metric"]): r["value"]
        for r in rows
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _targets_of(rows, kind, protocol) -> list[str]:
    seen = []
    for r in rows:
        if (
            r["kind"] == kind
            and r["protocol"] == protocol
            and r["target"] != "*"
            and r["target"] not in seen
        ):
            seen.append(r["target"])
    return seen


def metric_table(rows, kind, protocol, metric="spearman", models=None) -> str:
    """A markdown table: one row per target, one column per model."""
    values = _lookup(rows)
    models = models or [m for m in MODEL_NAMES if any(r["model"] == m for r in rows)]
    higher = metric not in ("mape", "median_ape")
    lines = [
        "| target | n | " + " | ".join(models) + " |",
        "|---|---:|" + "---:|" * len(models),
    ]
    ns = {
        r["target"]: r["n"]
        for r in rows
        if r["kind"] == kind and r["protocol"] == protocol and r["metric"] == metric
    }
    for target in _targets_of(rows, kind, protocol):
        cells = [values.get((kind, protocol, m, target, metric)) for m in models]
        finite = [c for c in cells if c is not None and not math.isnan(c)]
        best = (max(finite) if higher else min(finite)) if finite else None
        text = [
            f"**{_fmt(c)}**" if c is not None and c == best else _fmt(c) for c in cells
        ]
        lines.append(f"| {target} | {ns.get(target, '')} | " + " | ".join(text) + " |")
    return "\n".join(lines)


def timing_table(rows, kind, protocol="group", models=None) -> str:
    """A markdown table of fit and prediction times, one row per model."""
    values = _lookup(rows)
    ns = {
        (r["model"], r["metric"]): r["n"]
        for r in rows
        if r["kind"] == kind and r["protocol"] == protocol and r["target"] == "*"
    }
    models = models or [m for m in MODEL_NAMES if any(r["model"] == m for r in rows)]
    unit = kind.removesuffix("s")
    batch = next(
        (n for (_, metric), n in ns.items() if metric == "latency_batch_ms"), 0
    )
    lines = [
        f"| model | fit s (mean per fold) | one {unit} ms (median) | "
        f"batch of {batch:,} ms (median) |",
        "|---|---:|---:|---:|",
    ]
    for m in models:
        fit = values.get((kind, protocol, m, "*", "fit_seconds"))
        if fit is None:
            continue
        one = values.get((kind, protocol, m, "*", "latency_one_ms"))
        many = values.get((kind, protocol, m, "*", "latency_batch_ms"))
        lines.append(f"| {m} | {_fmt(fit, 2)} | {_fmt(one, 2)} | {_fmt(many, 1)} |")
    return "\n".join(lines)


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def goals(rows, context) -> list[str]:
    """The models issue's goals, each with its measured status."""
    values = _lookup(rows)
    out = []
    models = context["models"]
    neural = [m for m in models if m in NEURAL]
    for kind in context["kinds"]:
        targets = _targets_of(rows, kind, "group")
        if not targets:
            continue

        def sp(model, target, kind=kind):
            return values.get((kind, "group", model, target, "spearman"), math.nan)

        if "roofline" in models and CLASSICAL in models:
            # A roofline with no ranking (constant prediction: NaN) is beaten by
            # any finite correlation; a NaN of xgboost's beats nothing.
            lost = [
                t
                for t in targets
                if not (sp(CLASSICAL, t) > sp("roofline", t))
                and not (np.isfinite(sp(CLASSICAL, t)) and np.isnan(sp("roofline", t)))
            ]
            out.append(
                f"- {kind}: xgboost beats the roofline in Spearman by family on every "
                f"target (goal): {len(targets) - len(lost)}/{len(targets)}, "
                + _met(not lost)
                + (f" (not on {', '.join(lost)})" if lost else "")
                + "."
            )
        if neural and CLASSICAL in models:
            best = {
                t: np.nanmax([sp(m, t) for m in neural] + [-np.inf]) for t in targets
            }
            matched = [t for t in targets if sp(CLASSICAL, t) >= best[t] - 0.01]
            share = len(matched) / len(targets)
            fit_x = values.get((kind, "group", CLASSICAL, "*", "fit_seconds"))
            fit_n = [
                f
                for m in neural
                if (f := values.get((kind, "group", m, "*", "fit_seconds")))
            ]
            ratio = min(fit_n) / fit_x if fit_x and fit_n else None
            capped = context.get("neural_seconds")
            out.append(
                f"- {kind}: xgboost matches (within 0.01) or beats the best neural "
                f"model in Spearman by family on 80% of targets (goal): "
                f"{len(matched)}/{len(targets)} ({share:.0%}), {_met(share >= 0.8)}."
            )
            out.append(
                f"- {kind}: a neural fit takes at least 20x the xgboost fit (goal): "
                f"the fastest takes {_fmt(ratio, 1)}x, "
                + _met(ratio is not None and ratio >= 20)
                + (
                    f" (neural fits were cut at {capped:g} s in this run: the ratio "
                    "says little)"
                    if capped
                    else ""
                )
                + "."
            )
        if CLASSICAL in models:
            key = [t for t in targets if re.search(r"instructions|registers|gprs", t)]
            if key:
                low = [t for t in key if not sp(CLASSICAL, t) >= 0.9]
                listing = ", ".join(f"{t} {_fmt(sp(CLASSICAL, t))}" for t in key)
                out.append(
                    f"- {kind}: xgboost Spearman by family >= 0.9 on instruction and "
                    f"register targets (goal): {len(key) - len(low)}/{len(key)}, "
                    f"{_met(not low)} ({listing})."
                )
            one = values.get((kind, "group", CLASSICAL, "*", "latency_one_ms"))
            cm = context["compile_measure_s"].get(kind)
            if one is not None:
                unit = kind.removesuffix("s")
                text = (
                    f"- {kind}: xgboost predicts one {unit} (all targets, from text) "
                    f"in under 1 ms (goal): {one:.2f} ms median, {_met(one < 1)}"
                )
                if cm:
                    speedup = cm / (one / 1e3)
                    text += (
                        f"; compiling and measuring one takes {cm:.1f} s median "
                        f"(the records' measuring steps, compiles included, lowering "
                        f"not), {speedup:,.0f}x longer (goal >= 1,000x: "
                        f"{_met(speedup >= 1000)})"
                    )
                out.append(text + ".")
    return out


_TITLES = {
    "group": "by family",
    "template": "by op template",
    "random": "random split",
    "ood": "out of distribution",
}


def _ood_line(kind, context) -> str | None:
    if not context["ood_requested"]:
        return None
    if kind in context["ood"]:
        return (
            f"Out of distribution: fitted on all {context['kinds'][kind]['records']} "
            f"records, scored on the {context['ood'][kind]} records of the OOD suite."
        )
    return (
        f"Out of distribution: skipped, the OOD suite has no {kind} "
        f'(`load_dataset({kind!r}, suite="ood")` found no records).'
    )


def render_markdown(rows, context, figures=()) -> str:
    """``results.md``: the tables, the goals and where they were measured."""
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    load = [f"{x:.1f}" for x in context.get("load", []) if x is not None]
    lines = [
        "# Benchmark results",
        "",
        f"Measured {date} on {_host()}, mlircost_classic {__version__}, "
        f"in {context['seconds'] / 60:.1f} min"
        + (f" (load average {' then '.join(load)})" if load else "")
        + (
            " — **quick smoke run on a subsample; not the benchmark's figures**"
            if context["quick"]
            else ""
        )
        + ".",
        "",
        f"Reproduce: `{context['command']}`. Every metric of every model, target and "
        "protocol is in `results.csv` (columns " + ", ".join(BENCHMARK_COLUMNS) + ").",
        "",
        f"Protocols: **by family** (GroupKFold, {context['n_splits']} folds: every "
        "test fold holds families never seen in training; the headline), **by op "
        "template** (kernels only; GroupKFold by `op_templates`, the dispatch's op "
        "sequence without shapes: no test template is seen in training, whatever "
        f"its family), **random** (shuffled KFold, {context['n_splits']} folds) and "
        "**out of distribution** "
        "(fitted on the whole dataset, scored on the OOD suite of real "
        "architectures, when it has records). Metrics are computed on the pooled "
        "out-of-fold predictions of each target's measured rows; n is that number "
        "of rows. Best value per row in bold.",
        "",
        "Models:",
        "",
        *[
            f"- **{name}**: {MODEL_DESCRIPTIONS[name]}"
            for name in MODEL_NAMES
            if name in context["models"]
        ],
        "",
    ]
    for kind, counts in context["kinds"].items():
        of = (
            f" (a sample of the {counts['bundled']})"
            if counts["records"] < counts["bundled"]
            else ""
        )
        skipped = context["skipped"].get(kind)
        lines += [
            f"## {kind}",
            "",
            f"{counts['records']} records{of}, {counts['families']} families, "
            f"{counts['targets']} targets"
            + (
                f"; not benchmarked, fewer than {MIN_VARIED} records differ from "
                "their most common value: "
                + ", ".join(f"{t} ({n})" for t, n in skipped.items())
                if skipped
                else ""
            )
            + ". Noise figures (`*_spread`) are not targets.",
            "",
        ]
        ood_line = _ood_line(kind, context)
        if ood_line:
            lines += [ood_line, ""]
        for protocol in [*context["protocols"], "ood"]:
            if any(r["kind"] == kind and r["protocol"] == protocol for r in rows):
                lines += [
                    f"### Spearman rank correlation, {_TITLES[protocol]}",
                    "",
                    metric_table(rows, kind, protocol, "spearman"),
                    "",
                ]
        headline = "group" if "group" in context["protocols"] else "random"
        lines += [
            f"### Median absolute percentage error, {_TITLES[headline]}",
            "",
            "As a fraction: 0.25 is 25%.",
            "",
            metric_table(rows, kind, headline, "median_ape"),
            "",
            f"### Time, {_TITLES[headline]}",
            "",
            timing_table(rows, kind, headline),
            "",
        ]
    lines += ["## Goals", ""] + goals(rows, context) + [""]
    if figures:
        lines += ["## Plots", ""] + [f"![{f}]({f})" for f in figures] + [""]
    return "\n".join(lines)


def update_readme(readme: str | os.PathLike, results_md: str | os.PathLike) -> bool:
    """Put the headline tables of ``results.md`` between the README's markers.

    The README keeps a block between ``<!-- benchmark:start -->`` and
    ``<!-- benchmark:end -->``; it is replaced by the line of ``results.md``
    that says when and where it was measured, the Spearman table by family of
    each kind, the goals and a link to ``results.md``. The rest of the README
    is left as it is.

    Returns
    -------
    bool
        Whether the README changed.
    """
    readme = Path(readme)
    results_md = Path(results_md)
    text = readme.read_text(encoding="utf-8")
    start = text.find(README_START)
    end = text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme} has no {README_START} ... {README_END} block")
    results = results_md.read_text(encoding="utf-8")
    measured = next(
        (line for line in results.splitlines() if line.startswith("Measured ")), None
    )
    if measured is None:
        raise ValueError(f"{results_md} is not a results.md of run_benchmark")
    keep = [measured]
    for section in re.split(r"^## ", results, flags=re.M)[1:]:
        title, _, body = section.partition("\n")
        title = title.strip()
        if title in KINDS:
            for part in re.split(r"^### ", body, flags=re.M)[1:]:
                heading, _, table = part.partition("\n")
                if heading.strip() == "Spearman rank correlation, by family":
                    keep.append(f"**{title}**: Spearman rank correlation, by family")
                    keep.append(table.strip())
        elif title == "Goals":
            keep += ["**Goals**", body.strip()]
    link = Path(os.path.relpath(results_md.resolve(), readme.resolve().parent))
    keep.append(f"All tables and plots: [{link.as_posix()}]({link.as_posix()}).")
    block = "\n\n".join(keep)
    new = text[: start + len(README_START)] + "\n" + block + "\n" + text[end:]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


# -- plots ------------------------------------------------------------------


def _axis_scale(y: np.ndarray) -> str:
    from ._plots import _scale_of

    scale = _scale_of(y)
    # Less than a decade and a half (occupancy, SGPRs): log ticks say less.
    if scale == "log" and y.max() < 30 * y.min():
        return "linear"
    return scale


def _plots(out: Path, datasets, predictions, rows, models) -> list[str]:
    """Predicted against measured, and errors by model, for each kind.

    Drawn on :class:`~matplotlib.figure.Figure` objects, never through pyplot:
    no backend is switched for the caller.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from ._plots import _limits, _linthresh, _save

    figures = []
    colours = {m: f"C{i}" for i, m in enumerate(MODEL_NAMES)}
    values = _lookup(rows)
    for kind, (_, Y, names, _) in datasets.items():
        every = [m for m in models if (kind, "group", m) in predictions]
        if not every:
            continue

        def mean_sp(m, kind=kind, names=names):
            sps = [values.get((kind, "group", m, t, "spearman"), np.nan) for t in names]
            return np.nanmean(sps) if not np.isnan(sps).all() else -np.inf

        # The best neural model only: more clouds on one panel hide each other.
        neural = [m for m in every if m in NEURAL]
        shown = [m for m in every if m not in NEURAL or m == max(neural, key=mean_sp)]
        ncols = min(4, len(names))
        nrows = math.ceil(len(names) / ncols)
        fig = Figure(figsize=(3.3 * ncols, 3.2 * nrows + 0.8), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
        off_axes = 0
        for ax, (j, target) in zip(axes.flat, enumerate(names), strict=False):
            y = Y[:, j]
            measured = ~np.isnan(y)
            scale = _axis_scale(y[measured])
            lo, hi = _limits(y[measured], scale)
            for m in shown:
                p = predictions[(kind, "group", m)][measured, j]
                inside = (p >= lo) & (p <= hi)
                off_axes += int((~inside).sum())
                ax.scatter(
                    y[measured],
                    np.clip(np.nan_to_num(p, nan=lo), lo, hi),
                    s=6,
                    alpha=0.45,
                    color=colours[m],
                    edgecolors="none",
                    rasterized=True,
                )
            ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
            if scale != "linear":
                kwargs = (
                    {"linthresh": _linthresh(y[measured])} if scale == "symlog" else {}
                )
                ax.set_xscale(scale, **kwargs)
                ax.set_yscale(scale, **kwargs)
            else:
                ax.locator_params(nbins=4)
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            ax.grid(True, alpha=0.3)
            sp = values.get((kind, "group", CLASSICAL, target, "spearman"))
            rho = "" if sp is None else f"\nxgboost Spearman {_fmt(sp, 2)}"
            ax.set_title(target + rho, fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in axes.flat[len(names) :]:
            ax.set_visible(False)
        fig.supxlabel("measured", fontsize=9)
        fig.supylabel("predicted, out of fold (by family)", fontsize=9)
        handles = [
            Line2D([], [], marker="o", ls="", color=colours[m], label=m) for m in shown
        ]
        handles.append(Line2D([], [], color="black", lw=0.8, label="y = x"))
        fig.legend(handles=handles, loc="outside upper center", ncol=len(handles))
        if off_axes:
            fig.text(
                0.99,
                0.005,
                f"{off_axes} prediction(s) beyond the measured range, drawn at the edge",
                ha="right",
                va="bottom",
                fontsize=7,
            )
        name = f"pred_vs_measured_{kind}.png"
        _save(fig, out / name)
        figures.append(name)

        # Error by model: |log10 ratio| over all targets, and Spearman per target.
        fig = Figure(
            figsize=(12, max(4.0, 0.3 * len(names) + 1.8)), layout="constrained"
        )
        left, right = fig.subplots(1, 2, width_ratios=(1, 1.3))
        errors = []
        for m in every:
            p = predictions[(kind, "group", m)]
            ok = ~np.isnan(Y) & ~np.isnan(p)
            with np.errstate(over="ignore", invalid="ignore"):
                ratio = np.log10(
                    (np.clip(p[ok], 0, np.finfo(float).max) + 1) / (Y[ok] + 1)
                )
            errors.append(np.abs(ratio))
        box = left.boxplot(
            errors,
            showfliers=False,
            patch_artist=True,
            medianprops={"color": "black"},
        )
        for patch, m in zip(box["boxes"], every, strict=True):
            patch.set_facecolor(colours[m])
            patch.set_alpha(0.6)
        left.set_xticks(range(1, len(every) + 1), every, rotation=30, ha="right")
        left.set_ylabel("|log10((predicted + 1) / (measured + 1))|")
        left.set_title(f"{kind}: error over all targets (by family)", fontsize=10)
        left.grid(True, axis="y", alpha=0.3)
        ypos = np.arange(len(names))
        for k, m in enumerate(every):
            sps = [values.get((kind, "group", m, t, "spearman"), np.nan) for t in names]
            right.scatter(
                sps,
                ypos + (k - (len(every) - 1) / 2) * 0.12,
                color=colours[m],
                label=m,
                s=18,
            )
        right.set_yticks(ypos, names, fontsize=7)
        right.set_ylim(len(names) - 0.5, -0.5)
        right.set_xlabel("Spearman (by family)")
        right.set_xlim(min(0.0, right.get_xlim()[0]), 1.0)
        right.axvline(0.9, color="grey", lw=0.6, ls="--")
        right.grid(True, axis="x", alpha=0.3)
        right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        right.set_title("rank correlation per target (dashed: 0.9)", fontsize=10)
        name = f"error_by_model_{kind}.png"
        _save(fig, out / name)
        figures.append(name)
    return figures
