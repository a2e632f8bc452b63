"""Variant models of a hardware: its candidate ranker and spill classifier, saved.

:func:`rank` and ``mlircost rank`` used to fit a :class:`VariantRanker` on the
bundled variants in every new process (20-60 s for a CUDA target here). The
shipped ``data/pretrained/variants-<hardware>.zip`` holds, per hardware of
:data:`VARIANT_TASKS`, the default ranker of its ranked target and (GPUs) a
:class:`SpillClassifier` of its spill metric, both fitted on every bundled
candidate: :func:`variant_models` loads them once per process, or fits them on
the bundled variants where a file is missing.

A file is a zip with ``manifest.json`` (plain JSON: format, versions, the
hardware, the target, the featurizer's parameters and state, the names digest
of its columns, the ranker's and the classifier's parameters and learned
numbers) and xgboost's own UBJSON boosters: loading runs no code from it
(no pickle), and refuses a file whose feature columns this release does not
reproduce. :func:`train_variant_models` (``mlircost train --models
variants-nvidia_sm80 ...``) writes them with a ``.json`` training record.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from xgboost import XGBClassifier, XGBRanker, XGBRegressor

from ..featurize import ConfigFeatures, VariantFeaturizer
from ._rank import VARIANT_TASKS, SpillClassifier, VariantRanker, _sign
from ._serialize import (
    MANIFEST,
    _check_features,
    _names_digest,
    _read_manifest,
    _reader,
    featurizer_from_dict,
    featurizer_to_dict,
)

__all__ = [
    "VariantModels",
    "shipped_hardware",
    "load_variant_models",
    "save_variant_models",
    "train_variant_models",
    "variant_models",
    "variant_models_name",
]

#: Identifies saved variant models in their manifest.
FORMAT = "mlircost_classic.VariantModels"
FORMAT_VERSION = 1


@dataclass
class VariantModels:
    """A hardware's fitted candidate ranker and spill classifier.

    Attributes
    ----------
    hardware : str
    target : str
        What the ranker orders by (smaller is better, or negated where more is
        better: see :data:`~mlircost_classic.models.HIGHER_IS_BETTER`).
    ranker : VariantRanker
    spills : SpillClassifier or None
        None for a hardware without a spill metric (CPUs).
    spill_metric : str or None
        The metric the classifier learned (``> 0`` is a spill).
    """

    hardware: str
    target: str
    ranker: VariantRanker
    spills: SpillClassifier | None = None
    spill_metric: str | None = None
    #: Candidates and dispatches fitted on (0 when loaded from a file).
    candidates: int = 0
    dispatches: int = 0

    def assess(self, texts) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Score, estimated target and P(spill) of each candidate, featurized once.

        What ``ranker.predict``, ``ranker.predict_target`` and
        ``spills.predict_proba(texts)[:, 1]`` give (None without a spill
        classifier), for a third of the featurization where the two models
        share their featurizer (as fitted and loaded ones do).
        """
        texts = list(texts)
        F = self.ranker.featurizer_.transform(texts)
        scores, estimates = self.ranker._scores(F), self.ranker._estimates(F)
        if self.spills is None:
            return scores, estimates, None
        if self.spills.featurizer_ is not self.ranker.featurizer_:
            return scores, estimates, self.spills.predict_proba(texts)[:, 1]
        return scores, estimates, self.spills._proba(F, len(texts))[:, 1]


def shipped_hardware(target: str) -> str | None:
    """The hardware whose shipped ranker ranks by ``target``, or None.

    >>> shipped_hardware("nvidia_sm80.registers"), shipped_hardware("nvidia_sm80.occupancy")
    ('nvidia_sm80', None)
    """
    hardware = target.split(".", 1)[0]
    if hardware in VARIANT_TASKS and VARIANT_TASKS[hardware][0] == target:
        return hardware
    return None


def variant_models_name(hardware: str) -> str:
    """File stem of a hardware's shipped variant models: ``variants-<hardware>``."""
    if hardware not in VARIANT_TASKS:
        raise ValueError(
            f"no variant models for {hardware!r}; known: {', '.join(VARIANT_TASKS)}"
        )
    return f"variants-{hardware}"


# -- fitting --------------------------------------------------------------------
def fit_variant_models(hardware: str, data_home=None) -> VariantModels:
    """Fit a hardware's default ranker and spill classifier on every candidate
    of the variants dataset (the bundled one by default)."""
    from ..datasets import load_dataset

    name = variant_models_name(hardware)
    target, spill, _ = VARIANT_TASKS[hardware]
    metrics = [m for m in (target, spill) if m]
    ds = load_dataset(
        "variants", hardware=hardware, targets=metrics, data_home=data_home
    )
    column = {m: ds.target[:, ds.target_names.index(m)] for m in metrics}
    y = column[target]
    keep = ~np.isnan(y)
    if not keep.any():
        raise ValueError(f"{name}: no candidate measured for {target}")
    texts = [t for t, k in zip(ds.data, keep, strict=True) if k]
    ranker = VariantRanker().fit(texts, _sign(target) * y[keep], groups=ds.groups[keep])
    classifier = None
    if spill is not None:
        classifier = SpillClassifier().fit(
            texts, column[spill][keep], groups=ds.families[keep]
        )
        # VariantFeaturizer learns nothing: the two fitted ones are alike, and
        # sharing one lets assess() featurize once (a saved file holds it once).
        classifier.featurizer_ = ranker.featurizer_
    return VariantModels(
        hardware,
        target,
        ranker,
        classifier,
        spill,
        candidates=len(texts),
        dispatches=len(set(ds.groups[keep])),
    )


# -- saving and loading ---------------------------------------------------------
def _featurizer_to_dict(featurizer: VariantFeaturizer) -> dict:
    if type(featurizer) is not VariantFeaturizer:
        raise TypeError(
            "only variant models with a VariantFeaturizer are written without "
            f"pickle, not a {type(featurizer).__name__}"
        )
    dispatch, param = featurizer.dispatch_, featurizer.dispatch
    return {
        "class": "VariantFeaturizer",
        # the parameter (None: ShapeFeatures(), "drop", or a featurizer), and
        # the fitted dispatch part
        "dispatch_param": param
        if param is None or isinstance(param, str)
        else featurizer_to_dict(param, fitted=False),
        "dispatch": None if dispatch is None else featurizer_to_dict(dispatch),
    }


def _featurizer_from_dict(data: dict) -> VariantFeaturizer:
    if data.get("class") != "VariantFeaturizer":
        raise ValueError(f"unknown variant featurizer {data.get('class')!r}")
    param, dispatch = data["dispatch_param"], data["dispatch"]
    if isinstance(param, dict):
        param = featurizer_from_dict(param)
    featurizer = VariantFeaturizer(dispatch=param)
    # ConfigFeatures learns nothing; the dispatch part restores its state.
    featurizer.config_ = ConfigFeatures().fit(["configured executable"])
    featurizer.dispatch_ = None if dispatch is None else featurizer_from_dict(dispatch)
    return featurizer


def _booster_bytes(model) -> bytes:
    return bytes(model.get_booster().save_raw("ubj"))


def save_variant_models(
    models: VariantModels, path, *, overwrite: bool = False
) -> None:
    """Write :class:`VariantModels` to a ``.zip`` (see the module description)."""
    from .. import __version__

    path = Path(path)
    if path.suffix != ".zip":
        raise ValueError(f"variant models are written to a .zip file, not {path}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    ranker = models.ranker
    if ranker.objective != "rank:pairwise+regression" or ranker.featurizer is not None:
        raise ValueError(
            "only the default VariantRanker (objective 'rank:pairwise+regression', "
            "default featurizer) is saved"
        )
    featurizer = ranker.featurizer_
    names = featurizer.get_feature_names_out()
    files = {
        "ranker.ubj": _booster_bytes(ranker.estimator_),
        "regressor.ubj": _booster_bytes(ranker.regressor_),
    }
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "hardware": models.hardware,
        "target": models.target,
        "featurizer": _featurizer_to_dict(featurizer),
        "n_features": len(names),
        "feature_names_sha256": _names_digest(names),
        "ranker": {
            # every parameter but the featurizer, which is the default one
            "params": {
                k: v for k, v in ranker.get_params().items() if k != "featurizer"
            },
            "weights": [float(w) for w in ranker.weights_],
            "log": bool(ranker.log_),
        },
        "spills": None,
    }
    if models.spills is not None:
        clf = models.spills
        manifest["spills"] = {
            "metric": models.spill_metric,
            "n_splits": clf.n_splits,
            "threshold": float(clf.threshold_),
            # a classifier fitted on one class is that class
            "constant": None if clf.estimator_ is not None else float(clf.constant_),
        }
        if clf.estimator_ is not None:
            files["spills.ubj"] = _booster_bytes(clf.estimator_)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=path.parent, suffix=".zip", delete=False
    ) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in files.items():
                zf.writestr(name, data)
            zf.writestr(MANIFEST, json.dumps(manifest, indent=1, allow_nan=False))
    os.chmod(tmp.name, 0o644)  # a temporary file is private to its owner
    os.replace(tmp.name, path)


def _booster(cls, data: bytes):
    model = cls()
    model.load_model(bytearray(data))
    return model


def load_variant_models(path) -> VariantModels:
    """Read variant models written by :func:`save_variant_models`.

    Raises
    ------
    ValueError
        If the file is not a variant models file of a version this release
        reads, or its feature columns are not this release's.
    """
    path = Path(path)
    read_bytes, close = _reader(path)
    try:
        manifest = _read_manifest(path, read_bytes, "saved variant models")
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(
                f"{path} does not hold saved mlircost_classic variant models"
            )
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path} holds variant models in format version "
                f"{manifest.get('format_version')!r} (this release reads "
                f"{FORMAT_VERSION}); fit them again with `mlircost train --models "
                f"variants-{manifest.get('hardware')}`"
            )
        featurizer = _featurizer_from_dict(manifest["featurizer"])
        _check_features(manifest, featurizer, path)
        spec = manifest["ranker"]
        ranker = VariantRanker(**spec["params"])
        ranker.featurizer_ = featurizer
        ranker.estimator_ = _booster(XGBRanker, read_bytes("ranker.ubj"))
        ranker.regressor_ = _booster(XGBRegressor, read_bytes("regressor.ubj"))
        ranker.weights_ = tuple(float(w) for w in spec["weights"])
        ranker.log_ = bool(spec["log"])
        spills, metric = None, None
        if manifest["spills"] is not None:
            entry = manifest["spills"]
            metric = entry["metric"]
            spills = SpillClassifier(n_splits=int(entry["n_splits"]))
            spills.featurizer_ = featurizer
            spills.threshold_ = float(entry["threshold"])
            spills.classes_ = np.array([0, 1])
            if entry["constant"] is None:
                spills.estimator_ = _booster(XGBClassifier, read_bytes("spills.ubj"))
            else:
                spills.estimator_ = None
                spills.constant_ = float(entry["constant"])
    finally:
        close()
    return VariantModels(
        manifest["hardware"], manifest["target"], ranker, spills, metric
    )


@functools.lru_cache(maxsize=8)
def _variant_models(hardware: str, folder: str | None) -> VariantModels:
    from ._pretrained import PRETRAINED_DIR

    name = variant_models_name(hardware)
    path = (PRETRAINED_DIR if folder is None else Path(folder)) / f"{name}.zip"
    if path.is_file():
        return load_variant_models(path)
    if folder is not None:
        raise FileNotFoundError(
            f"no {name}.zip in {folder}; build it with `mlircost train --out "
            f"{folder} --models {name}`"
        )
    return fit_variant_models(hardware)


def variant_models(hardware: str, *, path=None) -> VariantModels:
    """A hardware's default ranker and spill classifier, once per process.

    Parameters
    ----------
    hardware : str
        A key of :data:`~mlircost_classic.models.VARIANT_TASKS`.
    path : path-like, optional
        Folder written by ``mlircost train --out DIR --models variants-...``;
        default the shipped models (fitted on the bundled variants here when
        the package has no file for ``hardware``).

    Returns
    -------
    VariantModels
        Shared by every caller of the process: do not refit them.
    """
    folder = None if path is None else str(Path(path).resolve())
    return _variant_models(hardware, folder)


def train_variant_models(
    out,
    *,
    hardware: Sequence[str] = tuple(VARIANT_TASKS),
    data_home=None,
) -> list[dict]:
    """Fit and save each hardware's variant models (``mlircost train --models variants-...``).

    Writes ``variants-<hardware>.zip`` and a ``variants-<hardware>.json``
    training record (dataset version, candidates, dispatches, the spill
    threshold, seconds) into ``out``; returns the records.
    """
    from .. import __version__
    from ._pretrained import _dataset_version, _host, _write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    version = _dataset_version(data_home)
    written = []
    for hw in hardware:
        name = variant_models_name(hw)
        start = time.perf_counter()
        models = fit_variant_models(hw, data_home)
        save_variant_models(models, out / f"{name}.zip", overwrite=True)
        info = {
            "name": name,
            "kind": "variants",
            "hardware": hw,
            "package_version": __version__,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "host": _host(),
            "dataset": {
                **version,
                "candidates": models.candidates,
                "dispatches": models.dispatches,
            },
            "target": models.target,
            "model": {
                "ranker": "VariantRanker() (rank:pairwise + regression)",
                "spills": None
                if models.spills is None
                else {
                    "class": "SpillClassifier()",
                    "metric": models.spill_metric,
                    "threshold": models.spills.threshold_,
                },
            },
            "seconds": round(time.perf_counter() - start, 1),
        }
        _write_json(out / f"{name}.json", info)
        written.append(info)
    _variant_models.cache_clear()
    return written
