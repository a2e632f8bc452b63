"""Pretrained default cost models: shipped in the package, rebuilt by one command.

:func:`train_pretrained` (``mlircost train --out DIR``) fits one
:class:`CostModel` (xgboost, 90% conformal intervals calibrated on held-out
families) per program level
of the bundled dataset (modules at the torch, linalg, stablehlo, tosa and affine
levels; kernels at IREE's dispatch level) on every module-level target except
the repeat spreads, and writes beside each model a ``training.json`` with the
dataset version (a hash of the shard files), the command's settings and the
model's cross-validated metrics (GroupKFold by family). :func:`load_pretrained`
reads the shipped ones, from ``mlircost_classic/data/pretrained/``, without
running code from the files (xgboost UBJSON and plain JSON, see
:meth:`CostModel.save`).
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..datasets import target_unit

__all__ = [
    "COMPOSED_NAME",
    "DEFAULT_MODELS",
    "MODULE_FIT_EXCLUDED_FAMILIES",
    "PRETRAINED_DIR",
    "composed_choice",
    "load_pretrained",
    "pretrained_info",
    "pretrained_name",
    "train_pretrained",
]

#: Folder of the shipped models (``<kind>-<level>.zip`` + ``.json``).
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "data" / "pretrained"

#: (kind, level) of every default model, in the order they are trained.
DEFAULT_MODELS = (
    ("modules", "linalg"),
    ("modules", "torch"),
    ("modules", "stablehlo"),
    ("modules", "tosa"),
    ("modules", "affine"),
    ("kernels", "dispatch"),
    ("stacked", "linalg"),
)

#: Families the module-level fits (``modules`` and ``stacked``, and their
#: held-out folds in ``benchmarks/composed_ood.py``) leave out: ``skinny_gemm``
#: was drawn for its kernels (IREE's strategies for products of 1-16 rows) and
#: is a quarter of the bundled modules, one or two dispatches each; the
#: kernels model learns from its kernels.
MODULE_FIT_EXCLUDED_FAMILIES = ("skinny_gemm",)

#: Stem of the composed model's files: ``composed-linalg.json`` (its OOD
#: figures and the per-target choice of ``kind="auto"``) and the folder
#: ``composed-linalg/`` (the calibrated :class:`ComposedCostModel`).
COMPOSED_NAME = "composed-linalg"

_CONFIDENCE = 0.9
_MIN_ROWS = 20


def pretrained_name(kind: str = "modules", level: str | None = None) -> str:
    """File stem of a default model: ``modules-linalg``, ``kernels-dispatch`` ..."""
    if kind == "kernels":
        level = level or "dispatch"
    elif kind not in ("modules", "stacked"):
        raise ValueError(
            f"kind must be 'modules', 'kernels' or 'stacked', got {kind!r}"
        )
    level = level or "linalg"
    if (kind, level) not in DEFAULT_MODELS:
        known = ", ".join(f"{k}-{lv}" for k, lv in DEFAULT_MODELS)
        raise ValueError(
            f"no default model for {kind} at level {level!r}; known: {known}"
        )
    return f"{kind}-{level}"


def _model_path(name: str, path) -> Path:
    folder = PRETRAINED_DIR if path is None else Path(path)
    for candidate in (folder / f"{name}.zip", folder / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"no pretrained model {name!r} in {folder}; build it with "
        f"`mlircost train --out {folder}`"
    )


@functools.lru_cache(maxsize=16)
def _load(name: str, path: str | None):
    from ._cost_model import CostModel

    return CostModel.load(_model_path(name, path))


def load_pretrained(
    kind: str = "modules",
    level: str | None = None,
    *,
    path: str | os.PathLike | None = None,
):
    """A default :class:`CostModel`, fitted on the bundled dataset.

    Parameters
    ----------
    kind : {"modules", "kernels", "composed", "stacked", "auto"}, default="modules"
        Whole programs, or IREE dispatch regions (``level="dispatch"``), or
        linalg modules predicted from the kernels model on their dispatch
        regions (a :class:`~mlircost_classic.models.ComposedCostModel`,
        calibrated on held-out families), or linalg modules predicted from
        their text features and their composed aggregates together
        (``stacked``: a :class:`CostModel` with a
        :class:`~mlircost_classic.models.StackedFeaturizer`), or each target
        from whichever of them ranked held-out real networks best (``auto``: a
        :class:`~mlircost_classic.models.PerTargetCostModel` for linalg, per
        :func:`composed_choice`; the modules model at other levels).
    level : str, optional
        Program level (``torch``, ``linalg``, ``stablehlo``, ``tosa``,
        ``affine``; default ``linalg``). :func:`~mlircost_classic.mlir.detect_level`
        tells it from a text.
    path : path-like, optional
        Folder written by ``mlircost train --out``; default the shipped models.

    Returns
    -------
    CostModel, ComposedCostModel or PerTargetCostModel
        Fitted with ``intervals="conformal"`` (90%). Loaded once per process
        and shared: do not refit it.

    Raises
    ------
    FileNotFoundError
        If the model file is missing.
    """
    folder = None if path is None else str(Path(path).resolve())
    if kind == "composed":
        return _composed(folder)
    if kind == "auto":
        return _auto(level or "linalg", folder)
    name = pretrained_name(kind, level)  # "stacked": a CostModel whose
    # StackedFeaturizer composes with the shipped kernels model
    return _load(name, folder)


@functools.lru_cache(maxsize=4)
def _composed(path: str | None):
    """The calibrated composed model where one is saved, else the raw aggregates."""
    from ._composed import ComposedCostModel

    kernels = _load(pretrained_name("kernels"), path)
    saved = (PRETRAINED_DIR if path is None else Path(path)) / COMPOSED_NAME
    if (saved / "manifest.json").is_file():
        return ComposedCostModel.load(saved, kernel_model=kernels)
    modules = _load(pretrained_name("modules", "linalg"), path)
    return ComposedCostModel.from_kernels(modules.target_names_, kernel_model=kernels)


def composed_choice(path: str | os.PathLike | None = None) -> dict[str, str]:
    """Target -> ``"modules"``, ``"composed"`` or ``"stacked"``: which ranked held-out networks best.

    Read from ``composed-linalg.json`` (``benchmarks/composed_ood.py
    --write-defaults``: GroupKFold by family / architecture over the bundled
    linalg modules, the real-network modules deciding); empty when the folder
    has none.
    """
    record = (PRETRAINED_DIR if path is None else Path(path)) / f"{COMPOSED_NAME}.json"
    if not record.is_file():
        return {}
    with open(record, encoding="utf-8") as f:
        return dict(json.load(f).get("default", {}))


@functools.lru_cache(maxsize=8)
def _auto(level: str, path: str | None):
    modules = _load(pretrained_name("modules", level), path)
    choice = composed_choice(path) if level == "linalg" else {}
    chosen = set(choice.values()) - {"modules"}
    if not chosen:
        return modules
    from ._choice import PerTargetCostModel

    models = {"modules": modules}
    if "composed" in chosen:
        models["composed"] = _composed(path)
    if "stacked" in chosen:
        models["stacked"] = _load(pretrained_name("stacked", level), path)
    return PerTargetCostModel.from_fitted(models, choice, default="modules")


def pretrained_info(
    kind: str = "modules",
    level: str | None = None,
    *,
    path: str | os.PathLike | None = None,
) -> dict:
    """The ``training.json`` of a default model: data version, settings, metrics."""
    name = pretrained_name(kind, level)
    folder = PRETRAINED_DIR if path is None else Path(path)
    with open(folder / f"{name}.json", encoding="utf-8") as f:
        return json.load(f)


def _dataset_version(data_home) -> dict:
    """The shard files a model is trained on and a hash of their records.

    The hash covers each shard's name without its compression suffix and its
    decompressed lines (:func:`~mlircost_classic.datasets.shard_digest`), so
    the same records hash alike as ``.jsonl.gz`` or ``.jsonl.xz``.
    """
    from ..datasets import KINDS, get_data_home, shard_digest, shard_paths

    digest = hashlib.sha256()
    files = []
    for kind in (*KINDS, "amendments"):
        for p in shard_paths(kind, data_home):
            digest.update(p.name.rsplit(".", 1)[0].encode())
            digest.update(bytes.fromhex(shard_digest(p)))
            files.append(p.name)
    return {
        "data_home": "bundled" if data_home is None else str(get_data_home(data_home)),
        "files": files,
        "sha256": digest.hexdigest(),
    }


def _host() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(
                (
                    ln.split(":", 1)[1].strip()
                    for ln in f
                    if ln.startswith("model name")
                ),
                cpu,
            )
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def _write_json(path: Path, info: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1, ensure_ascii=False)
        f.write("\n")


def _targets_to_fit(bunch) -> list[int]:
    keep = []
    for j, name in enumerate(bunch.target_names):
        measured = int(np.isfinite(bunch.target[:, j]).sum())
        if not name.endswith("_spread") and measured >= _MIN_ROWS:
            keep.append(j)
    return keep


def _cv_metrics(model, X, Y, names, groups, n_splits: int) -> dict:
    from ._evaluate import evaluate

    n_groups = len(set(groups))
    if n_splits < 2 or n_groups < 2:
        return {}
    table = evaluate(
        {"model": model},
        X,
        Y,
        target_names=names,
        groups=groups,
        cv="group",
        n_splits=min(n_splits, n_groups),
        latency_repeats=5,
        batch_size=100,
        batch_repeats=1,
        as_frame=False,
    )
    out: dict = {}
    for row in table:
        value = row["value"]
        out.setdefault(row["target"], {})[row["metric"]] = (
            None if not np.isfinite(value) else round(value, 6)
        )
    return out


def train_pretrained(
    out: str | os.PathLike,
    *,
    models: Sequence[tuple[str, str]] = DEFAULT_MODELS,
    data_home: str | os.PathLike | None = None,
    estimator=None,
    n_splits: int = 5,
    max_rows: int | None = None,
    random_state: int = 0,
    n_jobs: int | None = None,
    progress: bool = False,
) -> list[dict]:
    """Fit and save the default models (what ``mlircost train`` runs).

    Parameters
    ----------
    out : path-like
        Folder to write ``<kind>-<level>.zip`` and ``<kind>-<level>.json`` to.
    models : sequence of (kind, level), default=DEFAULT_MODELS
        Which models.
    data_home : path-like, optional
        Dataset folder (default the bundled one).
    estimator : regressor, optional
        Per-target regressor (xgboost or ``sklearn.linear_model``, so that the
        model can be saved); default :func:`default_estimator`.
    n_splits : int, default=5
        Folds of the GroupKFold-by-family evaluation recorded in the JSON;
        0 skips it.
    max_rows : int, optional
        Fit on a random sample of this many records (for a quick try).
    random_state : int, default=0
        Seeds the sample, the calibration split and the boosters.
    n_jobs : int, optional
        Targets fitted in parallel.
    progress : bool, default=False
        A progress bar over the models, on stderr.

    Returns
    -------
    list of dict
        The ``training.json`` contents, one per model. A level with no
        records is skipped with a note in its entry (``"skipped"``).
    """
    from tqdm import tqdm

    from .. import __version__
    from ..datasets import load_dataset
    from ._cost_model import CostModel, default_featurizer, default_prior

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    version = _dataset_version(data_home)
    written = []
    bar = tqdm(list(models), disable=not progress, unit="model", desc="train")
    for kind, level in bar:
        name = pretrained_name(kind, level)
        bar.set_postfix_str(name)
        start = time.perf_counter()
        # The stacked model learns the modules' labels (its kernels model is
        # the shipped one, whose own folds would not hold the modules out).
        stacked = kind == "stacked"
        bunch = load_dataset(
            "modules" if stacked else kind,
            level=level,
            data_home=data_home,
            exclude_families=None
            if kind == "kernels"
            else MODULE_FIT_EXCLUDED_FAMILIES,
        )
        index = np.arange(len(bunch.data))
        if max_rows is not None and len(index) > max_rows:
            rng = np.random.default_rng(random_state)
            index = np.sort(rng.choice(index, max_rows, replace=False))
        keep = _targets_to_fit(bunch) if len(index) else []
        info = {
            "name": name,
            "kind": kind,
            "level": level,
            "package_version": __version__,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "host": _host(),
            "dataset": {**version, "records": int(len(index))},
        }
        if not keep:
            info["skipped"] = f"fewer than {_MIN_ROWS} records with a target"
            _write_json(out / f"{name}.json", info)
            written.append(info)
            continue
        X = [bunch.data[i] for i in index]
        Y = bunch.target[np.ix_(index, keep)]
        names = [bunch.target_names[j] for j in keep]
        groups = np.asarray(bunch.groups)[index]
        sources = np.asarray(bunch.sources, dtype=object)[index]
        model = CostModel(
            featurizer=default_featurizer(kind),
            estimator=estimator,
            intervals="conformal",
            confidence=_CONFIDENCE,
            n_jobs=n_jobs,
            random_state=random_state,
            prior=default_prior(kind),
        )
        metrics = {} if stacked else _cv_metrics(model, X, Y, names, groups, n_splits)
        # Intervals calibrated on held-out families, the largest of the
        # sources' half-widths: what holds for a new program of any of them.
        fitted = model.fit(X, Y, target_names=names, groups=groups, strata=sources)
        fitted.save(out / f"{name}.zip", overwrite=True)
        info.update(
            {
                "model": {
                    "class": "CostModel",
                    "featurizer": f"default_featurizer({kind!r})",
                    "estimator": "default_estimator(n_samples)"
                    if estimator is None
                    else repr(estimator),
                    "prior": fitted.prior,
                    "intervals": "conformal",
                    "calibration": fitted.calibration_,
                    "confidence": _CONFIDENCE,
                    "random_state": random_state,
                },
                "families": sorted(set(groups.tolist())),
                "targets": {
                    t: {
                        "unit": target_unit(t),
                        "rows": int(np.isfinite(Y[:, j]).sum()),
                        "log_scale": bool(fitted.log_targets_[j]),
                    }
                    for j, t in enumerate(names)
                },
                "cv": {
                    "protocol": f"GroupKFold by family, {n_splits} folds"
                    if metrics
                    else (
                        "none (held out by benchmarks/composed_ood.py: each "
                        "fold's kernels model without the held-out families)"
                        if stacked
                        else "none"
                    ),
                    "metrics": metrics,
                },
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        _write_json(out / f"{name}.json", info)
        written.append(info)
    bar.close()
    # Every cache that holds loaded models: a composed or auto model kept from
    # before would pair its kernels model with a stacked model's new one (two
    # objects of one file: each module composed twice).
    for cache in (_load, _composed, _auto):
        cache.cache_clear()
    return written
