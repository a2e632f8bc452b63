"""The benchmark's runs: every model on the same folds, then results written.

:func:`run_benchmark` cross-validates the models of :mod:`._bench_models` on
the bundled dataset with :func:`~mlircost_classic.models.evaluate` (by family
— the headline —, by op template for kernels, and random), scores them on the out-of-distribution suite
where it has records (fitted on the whole dataset), and writes
``results.csv`` (every figure), ``results.md`` (:mod:`._bench_render`) and
plots. Project goals are not the package's: a caller passes them
(``benchmarks/goals.py``).
"""

from __future__ import annotations

import csv
import importlib.util
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..datasets import COST_KINDS, iter_dataset, load_dataset
from ..models import evaluate, target_scores
from ._bench_models import DEFAULT_MODELS, MODULES_ONLY, benchmark_models
from ._bench_render import BENCHMARK_COLUMNS, draw_plots, render_markdown

__all__ = ["MIN_VARIED", "PROTOCOLS", "run_benchmark"]

PROTOCOLS = ("group", "template", "random")
# The op-template split groups IREE dispatches; a module's op sequence is its
# own, so for modules it would be a random split under another name.
_KINDS_OF_PROTOCOL = {"template": ("kernels",)}

#: Records that must differ from a target's most common value for it to be
#: benchmarked.
MIN_VARIED = 10

# --quick: rows kept per family, folds, and the neural models' time budget.
_QUICK = {"modules": 8, "kernels": 12, "n_splits": 3, "neural_seconds": 6.0}


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
        return (
            {k: _QUICK[k] for k in COST_KINDS} if quick else dict.fromkeys(COST_KINDS)
        )
    if isinstance(max_per_family, int):
        return dict.fromkeys(COST_KINDS, max_per_family)
    return {k: max_per_family.get(k) for k in COST_KINDS}


def _command(
    out, quick, kinds, protocols, models, neural_seconds, data_home, max_per_family
) -> str:
    """The ``mlircost benchmark`` line that repeats this run.

    ``max_per_family`` given per kind (a dict) has no command-line spelling:
    the line then says so.
    """
    words = ["mlircost benchmark", f"--out {out}"]
    if quick:
        words.append("--quick")
    if tuple(kinds) != COST_KINDS:
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
    if isinstance(max_per_family, int):
        words.append(f"--max-per-family {max_per_family}")
    elif max_per_family is not None:
        words.append(f"(max_per_family={max_per_family} from Python)")
    return " ".join(words)


def run_benchmark(
    out: str | os.PathLike = "benchmarks",
    *,
    quick: bool = False,
    kinds: Sequence[str] = COST_KINDS,
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
    goals: Callable[[list[dict], dict], list[str]] | None = None,
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
    goals : callable, optional
        ``goals(rows, context)`` returns markdown lines, written as the
        "Goals" section of ``results.md`` (the project's goals are in
        ``benchmarks/goals.py``); no such section without it.

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
        if kind not in COST_KINDS:
            raise ValueError(f"kind must be one of {list(COST_KINDS)}, got {kind!r}")
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
        "min_varied": MIN_VARIED,
        "command": _command(
            out,
            quick,
            kinds,
            protocols,
            models,
            neural_seconds,
            data_home,
            max_per_family,
        ),
    }
    datasets = {}
    sources: dict[str, np.ndarray] = {}
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
        sources[kind] = np.asarray(bunch.sources, dtype=object)[keep]
        datasets[kind] = (texts, Y, names, groups)
        context["kinds"][kind] = {
            "records": len(texts),
            "bundled": len(bunch.data),
            "families": len(np.unique(groups)),
            "sources": {
                str(s): int(n)
                for s, n in zip(
                    *np.unique(sources[kind], return_counts=True), strict=True
                )
            },
            "targets": len(names),
        }
        context["skipped"][kind] = skipped
        context["compile_measure_s"][kind] = _compile_measure_seconds(kind, data_home)
    ood_sets = _ood_sets(kinds, data_home) if ood else {}
    out.mkdir(parents=True, exist_ok=True)

    def make(name, kind):
        return benchmark_models(
            [name],
            quick=quick,
            random_state=random_state,
            neural_seconds=neural_seconds,
            n_jobs=n_jobs,
            kind=kind,
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
                    {name: make(name, kind)},
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
                if protocol == "group":
                    rows.extend(
                        _score_by_source(
                            kind, name, Y, oof[name], names, groups, sources[kind]
                        )
                    )
                if bar is not None:
                    bar.update()
            if kind in ood_sets:
                if bar is not None:
                    bar.set_postfix_str(f"{kind} ood {name}")
                rows.extend(
                    _score_ood(
                        kind, name, make(name, kind), texts, Y, names, ood_sets[kind]
                    )
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
        figures = draw_plots(out, datasets, predictions, rows, models)
    context["load"].append(_load_average())
    (out / "results.md").write_text(
        render_markdown(rows, context, figures, goals=goals), encoding="utf-8"
    )
    return rows


def _protocols_of(kind: str, protocols: Sequence[str]) -> list[str]:
    return [p for p in protocols if kind in _KINDS_OF_PROTOCOL.get(p, (kind,))]


def _score_by_source(kind, name, Y, pred, names, groups, sources) -> list[dict]:
    """The by-family figures again, on each source's rows alone.

    Protocol ``"group:SOURCE"``: the same out-of-fold predictions, scored on
    the rows of one source (families, torchvision, transformers), when the
    dataset has more than one source; targets with fewer than
    :data:`MIN_VARIED` measured rows of a source are left out.
    """
    rows = []
    present = np.unique(sources)
    if len(present) < 2:
        return rows
    for source in present:
        mask = sources == source
        for j, target in enumerate(names):
            y = Y[mask, j]
            measured = int((~np.isnan(y)).sum())
            if measured < MIN_VARIED:
                continue
            scores = target_scores(target, y, pred[mask, j], groups[mask])
            rows.extend(
                _row(kind, name, target, metric, value, measured, f"group:{source}")
                for metric, value in scores.items()
            )
    return rows


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
        scores = target_scores(names[j], Y_ood[:, col], pred[:, j], groups)
        for metric, value in scores.items():
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
