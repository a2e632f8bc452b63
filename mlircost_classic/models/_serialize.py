"""Saving and loading cost models without pickle.

A saved :class:`CostModel` is a folder (or a zip of one) with ``manifest.json``
and one xgboost model per xgboost target in UBJSON (``target000.ubj``). The
manifest holds plain JSON only: format and package versions, targets, log
flags, conformal quantiles, the featurizer's parameters and learned state
(vocabularies, IDF weights, the op catalog) and the coefficients of linear
models. Loading reads JSON and xgboost's own format and instantiates only a
fixed list of classes, so a model file cannot run code.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import os
import re
import tempfile
import zipfile
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import sklearn.linear_model
from sklearn.base import clone
from sklearn.dummy import DummyRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBRegressor

from ..featurize import (
    Catalog,
    MLIRFeaturizer,
    OpcodeCounter,
    OpNgramTfidf,
    OpSpec,
    Rule,
    ShapeFeatures,
    op_ngrams,
)
from ..featurize._catalog import _Dialect
from ..featurize._ngram import _PASSTHROUGH
from ._base import log_wrapped
from ._prior import PriorRegressor
from ._unwrap import unwrap

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "featurizer_from_dict",
    "featurizer_to_dict",
    "load_cost_model",
    "save_cost_model",
]

#: Identifies a saved cost model in its manifest.
FORMAT = "mlircost_classic.CostModel"
#: Bumped whenever a change makes older readers misread the files.
#: 2: per-target roofline priors (``CostModel(prior=...)``).
#: 3: group calibration (``calibration_folds``, ``calibration``) and the
#: training ranges of :meth:`CostModel.novelty`.
FORMAT_VERSION = 3
#: Versions this release reads (a version-1 file is a model without priors; a
#: version-2 file one without training ranges, calibrated on a random split).
READABLE_VERSIONS = (1, 2, 3)
MANIFEST = "manifest.json"

_FEATURIZERS = {
    cls.__name__: cls
    for cls in (MLIRFeaturizer, OpcodeCounter, OpNgramTfidf, ShapeFeatures)
}
_PARTS = ("opcodes", "ngrams", "shapes")
_STACKED = "StackedFeaturizer"
_BOOSTER_FILE = re.compile(r"target\d{3,}\.ubj")
_DTYPES = {"float32": np.float32, "float64": np.float64}


# -- plain values -------------------------------------------------------------
def _plain(value, what: str):
    """``value`` as JSON-ready data, or a TypeError naming ``what``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        if not math.isfinite(value):
            raise TypeError(f"{what}: {value!r} cannot be written as JSON")
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v, what) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, what) for k, v in value.items()}
    raise TypeError(f"{what}: a {type(value).__name__} cannot be written as JSON")


def _same(a, b) -> bool:
    if (
        isinstance(a, float)
        and isinstance(b, float)
        and math.isnan(a)
        and math.isnan(b)
    ):
        return True
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - arrays and odd objects compare as different
        return False


def _changed_params(estimator) -> dict:
    """The parameters that differ from the class defaults, as JSON-ready data."""
    defaults = type(estimator)().get_params(deep=False)
    name = type(estimator).__name__
    return {
        key: _plain(value, f"{name} parameter {key!r}")
        for key, value in estimator.get_params(deep=False).items()
        if not _same(value, defaults.get(key))
    }


# -- featurizers ----------------------------------------------------------------
def _catalog_to_dict(catalog: Catalog) -> dict:
    def rule(r: Rule) -> dict:
        return {"rule": r.name, "params": _plain(dict(r.params), "catalog rule")}

    return {
        name: {
            "default_family": d.default_family,
            "source": d.source,
            "ops": {
                op: {"family": s.family, "flops": rule(s.flops), "bytes": rule(s.bytes)}
                for op, s in d.ops.items()
            },
        }
        for name, d in catalog.dialects.items()
    }


def _catalog_from_dict(data: dict) -> Catalog:
    def rule(r: dict) -> Rule:
        return Rule(r["rule"], dict(r["params"]))

    return Catalog(
        {
            name: _Dialect(
                name,
                d["default_family"],
                {
                    op: OpSpec(s["family"], rule(s["flops"]), rule(s["bytes"]))
                    for op, s in d["ops"].items()
                },
                d["source"],
            )
            for name, d in data.items()
        }
    )


def _featurizer_params(featurizer) -> dict:
    params = featurizer.get_params(deep=False)
    name = type(featurizer).__name__
    if isinstance(featurizer, OpNgramTfidf):
        params["dtype"] = np.dtype(params["dtype"]).name
    if isinstance(featurizer, MLIRFeaturizer):
        for part in _PARTS:
            value = params[part]
            if value is not None and not isinstance(value, str):
                params[part] = featurizer_to_dict(value, fitted=False)
    return {k: _plain(v, f"{name} parameter {k!r}") for k, v in params.items()}


def _featurizer_state(featurizer) -> dict:
    if isinstance(featurizer, MLIRFeaturizer):
        return {
            "parts": [
                {"name": name, "featurizer": featurizer_to_dict(part)}
                for name, part in featurizer.transformers_
            ]
        }
    if isinstance(featurizer, OpcodeCounter):
        return {
            "vocabulary": _plain(featurizer.vocabulary_, "vocabulary"),
            "dialects": list(featurizer.dialects_),
        }
    if isinstance(featurizer, OpNgramTfidf):
        vectorizer = featurizer.vectorizer_
        if vectorizer is None:
            return {"vocabulary": None, "idf": None}
        idf = vectorizer.idf_.tolist() if featurizer.use_idf else None
        return {"vocabulary": _plain(vectorizer.vocabulary_, "vocabulary"), "idf": idf}
    return {"catalog": _catalog_to_dict(featurizer.catalog_)}


def featurizer_to_dict(featurizer, *, fitted: bool = True) -> dict:
    """A featurizer of this package as plain JSON-ready data.

    Parameters
    ----------
    featurizer : MLIRFeaturizer, OpcodeCounter, OpNgramTfidf or ShapeFeatures
        The featurizer; its parameters are written, and its learned state when
        ``fitted``.
    fitted : bool, default=True
        Whether to write the learned state too.

    Returns
    -------
    dict

    Raises
    ------
    TypeError
        For another kind of featurizer, or a parameter JSON cannot hold.
    """
    name = type(featurizer).__name__
    if name == _STACKED and type(featurizer) is _stacked_class():
        return _stacked_to_dict(featurizer, fitted)
    if _FEATURIZERS.get(name) is not type(featurizer):
        raise TypeError(
            f"cannot save a {name} featurizer; only "
            f"{sorted([*_FEATURIZERS, _STACKED])} can be saved"
        )
    data = {"class": name, "params": _featurizer_params(featurizer)}
    if fitted:
        data["parse_error_column"] = bool(featurizer.parse_error_column_)
        data["state"] = _featurizer_state(featurizer)
    return data


def _restore_state(featurizer, state: dict) -> None:
    if isinstance(featurizer, MLIRFeaturizer):
        featurizer.transformers_ = [
            (part["name"], featurizer_from_dict(part["featurizer"]))
            for part in state["parts"]
        ]
    elif isinstance(featurizer, OpcodeCounter):
        featurizer.vocabulary_ = {
            str(k): int(v) for k, v in state["vocabulary"].items()
        }
        featurizer.dialects_ = [str(d) for d in state["dialects"]]
    elif isinstance(featurizer, OpNgramTfidf):
        if state["vocabulary"] is None:
            featurizer.vectorizer_ = None
            featurizer.vocabulary_ = {}
            return
        vectorizer = TfidfVectorizer(
            analyzer=functools.partial(
                op_ngrams,
                ngram_range=tuple(featurizer.ngram_range),
                type_classes=featurizer.type_classes,
            ),
            **{k: getattr(featurizer, k) for k in _PASSTHROUGH},
        )
        vectorizer.vocabulary_ = {
            str(k): int(v) for k, v in state["vocabulary"].items()
        }
        if state["idf"] is not None:
            vectorizer.idf_ = np.asarray(state["idf"], dtype=float)
        featurizer.vectorizer_ = vectorizer
        featurizer.vocabulary_ = vectorizer.vocabulary_
    else:
        featurizer.catalog_ = _catalog_from_dict(state["catalog"])


def featurizer_from_dict(data: dict):
    """Rebuild a featurizer written by :func:`featurizer_to_dict`.

    Parameters
    ----------
    data : dict
        What :func:`featurizer_to_dict` returned (after a JSON round trip).

    Returns
    -------
    MLIRFeaturizer, OpcodeCounter, OpNgramTfidf or ShapeFeatures
        Fitted when ``data`` holds a learned state.

    Raises
    ------
    ValueError
        For an unknown featurizer class.
    """
    if data.get("class") == _STACKED:
        return _stacked_from_dict(data)
    cls = _FEATURIZERS.get(data.get("class"))
    if cls is None:
        raise ValueError(
            f"unknown featurizer class {data.get('class')!r}; "
            f"expected one of {sorted([*_FEATURIZERS, _STACKED])}"
        )
    params = dict(data["params"])
    if cls is OpNgramTfidf:
        params["ngram_range"] = tuple(params["ngram_range"])
        params["dtype"] = _DTYPES[params["dtype"]]
    if cls is MLIRFeaturizer:
        for part in _PARTS:
            if isinstance(params[part], dict):
                params[part] = featurizer_from_dict(params[part])
    featurizer = cls(**params)
    if "state" in data:
        _restore_state(featurizer, data["state"])
        featurizer.parse_error_column_ = bool(data["parse_error_column"])
    return featurizer


def _stacked_class():
    from ._stacked import StackedFeaturizer  # noqa: PLC0415 - it imports CostModel

    return StackedFeaturizer


def _stacked_to_dict(featurizer, fitted: bool) -> dict:
    """A :class:`StackedFeaturizer`: its text featurizer, and the kernels model by name.

    Only the shipped kernels model (``kernel_model="pretrained"``) is saved,
    by name: a saved model names what it loads, it does not carry it.
    """
    if (
        not isinstance(featurizer.kernel_model, str)
        or featurizer.kernel_model != "pretrained"
    ):
        raise TypeError(
            "a StackedFeaturizer is saved with kernel_model='pretrained' only "
            f"(got {type(featurizer.kernel_model).__name__} {featurizer.kernel_model!r})"
        )
    inner = featurizer.featurizer
    params = {
        "featurizer": None
        if inner is None
        else featurizer_to_dict(inner, fitted=False),
        "kernel_model": "pretrained",
        "partitioner": str(featurizer.partitioner),
    }
    data = {"class": _STACKED, "params": params}
    if fitted:
        data["state"] = {
            "featurizer": featurizer_to_dict(featurizer.featurizer_),
            "composed_names": [str(t) for t in featurizer.composed_names_],
        }
    return data


def _stacked_from_dict(data: dict):
    params = dict(data["params"])
    if params["featurizer"] is not None:
        params["featurizer"] = featurizer_from_dict(params["featurizer"])
    featurizer = _stacked_class()(**params)
    if "state" in data:
        state = data["state"]
        featurizer.featurizer_ = featurizer_from_dict(state["featurizer"])
        featurizer.kernel_model_ = featurizer._load_kernels()
        from ._stacked import composed_columns  # noqa: PLC0415

        names = [str(t) for t in state["composed_names"]]
        if names != composed_columns(featurizer.kernel_model_.target_names_):
            raise ValueError(
                "the saved model's composed columns do not match the kernels "
                "model's targets: fit it again with this release"
            )
        featurizer.composed_names_ = names
    return featurizer


# -- estimators -----------------------------------------------------------------
def _linear_class(name: str):
    cls = getattr(sklearn.linear_model, name, None)
    if name not in sklearn.linear_model.__all__ or not isinstance(cls, type):
        raise ValueError(f"unknown linear model {name!r} in the manifest")
    return cls


def _estimator_spec(estimator) -> dict | None:
    """The ``estimator`` parameter of a CostModel as JSON (None for the default)."""
    if estimator is None:
        return None
    if not (
        isinstance(estimator, XGBRegressor)
        or type(estimator).__module__.startswith("sklearn.linear_model")
    ):
        raise TypeError(
            f"cannot save a CostModel whose estimator is a {type(estimator).__name__}: "
            "only XGBRegressor and sklearn.linear_model regressors (Ridge, "
            "HuberRegressor, ...) are written without pickle"
        )
    return {"class": type(estimator).__name__, "params": _changed_params(estimator)}


def _write_estimator(estimator, index: int, folder: Path) -> dict:
    parts = unwrap(estimator)
    entry: dict = {"log": parts.log, "prior": None}
    if parts.prior is not None:
        prior = parts.prior
        entry["prior"] = {
            "columns": [int(c) for c in prior.columns],
            "coef": np.asarray(prior.prior_.coef_, dtype=float).tolist(),
            "intercept": float(prior.prior_.intercept_),
            "mean": np.asarray(prior.prior_mean_, dtype=float).tolist(),
        }
    inner = parts.regressor
    entry["scale"] = None
    if isinstance(inner, Pipeline):
        steps = [step for _, step in inner.steps]
        if len(steps) != 2 or not isinstance(steps[0], StandardScaler):
            raise TypeError(f"cannot save the pipeline {inner!r}")
        entry["scale"] = steps[0].scale_.tolist()
        inner = steps[1]
    name = type(inner).__name__
    if isinstance(inner, XGBRegressor):
        entry.update(kind="xgboost", file=f"target{index:03d}.ubj")
        entry["params"] = _changed_params(inner)
        inner.save_model(folder / entry["file"])
    elif type(inner).__module__.startswith("sklearn.linear_model") and hasattr(
        inner, "coef_"
    ):
        coef = np.asarray(inner.coef_, dtype=float)
        if coef.ndim != 1:
            raise TypeError(f"cannot save a {name} with {coef.ndim}-D coefficients")
        entry.update(
            kind="linear",
            cls=name,
            params=_changed_params(inner),
            coef=coef.tolist(),
            intercept=float(inner.intercept_),
        )
    else:
        raise TypeError(
            f"cannot save a CostModel whose estimator is a {name}: only XGBRegressor "
            "and sklearn.linear_model regressors (Ridge, HuberRegressor, ...) are "
            "written without pickle"
        )
    return entry


def _read_estimator(entry: dict, n_features: int, read_bytes):
    if entry["kind"] == "xgboost":
        if not _BOOSTER_FILE.fullmatch(entry["file"]):
            raise ValueError(f"unexpected model file name {entry['file']!r}")
        inner = XGBRegressor(**entry["params"])
        inner.load_model(bytearray(read_bytes(entry["file"])))
    elif entry["kind"] == "linear":
        inner = _linear_class(entry["cls"])(**entry["params"])
        inner.coef_ = np.asarray(entry["coef"], dtype=float)
        inner.intercept_ = float(entry["intercept"])
        inner.n_features_in_ = n_features
    else:
        raise ValueError(f"unknown estimator kind {entry['kind']!r} in the manifest")
    if entry["scale"] is not None:
        scaler = StandardScaler(with_mean=False)
        scaler.scale_ = np.asarray(entry["scale"], dtype=float)
        scaler.mean_ = None
        scaler.var_ = scaler.scale_**2
        scaler.n_features_in_ = n_features
        inner = Pipeline(
            [("standardscaler", scaler), (type(inner).__name__.lower(), inner)]
        )
    if entry.get("prior") is not None:
        inner = _read_prior(entry["prior"], inner, n_features)
    if not entry["log"]:
        return inner
    # TransformedTargetRegressor has no "prefit" mode: fit its log transform on
    # a placeholder, then put the restored regressor in.
    wrapper = log_wrapped(DummyRegressor()).fit(np.zeros((2, 1)), [0.0, 1.0])
    wrapper.set_params(regressor=clone(inner))
    wrapper.regressor_ = inner
    return wrapper


def _read_prior(data: dict, inner, n_features: int) -> PriorRegressor:
    columns = [int(c) for c in data["columns"]]
    coef = np.asarray(data["coef"], dtype=float)
    if coef.shape != (len(columns),) or not all(0 <= c < n_features for c in columns):
        raise ValueError("a prior in the manifest does not fit the feature columns")
    prior = sklearn.linear_model.LinearRegression()
    prior.coef_ = coef
    prior.intercept_ = float(data["intercept"])
    prior.n_features_in_ = len(columns)
    wrapper = PriorRegressor(clone(inner), columns)
    wrapper.prior_ = prior
    mean = np.asarray(data.get("mean", [0.0] * len(columns)), dtype=float)
    if mean.shape != coef.shape:
        raise ValueError("a prior in the manifest does not fit the feature columns")
    wrapper.prior_mean_ = mean
    wrapper.regressor_ = inner
    wrapper.n_features_in_ = n_features
    return wrapper


# -- cost models ----------------------------------------------------------------
def _manifest(model, folder: Path) -> dict:
    from .. import __version__

    if model.featurizer is None:
        featurizer_param = None
    else:
        featurizer_param = featurizer_to_dict(model.featurizer, fitted=False)
    quantiles = getattr(model, "conformal_quantiles_", None)
    random_state = model.random_state
    estimator_param = _estimator_spec(model.estimator)
    estimators = [
        None if est is None else _write_estimator(est, j, folder)
        for j, est in enumerate(model.estimators_)
    ]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "params": {
            "featurizer": featurizer_param,
            "estimator": estimator_param,
            "log_target": model.log_target,
            "prior": model.prior,
            "intervals": model.intervals,
            "confidence": float(model.confidence),
            "calibration_size": float(model.calibration_size),
            "calibration_folds": int(model.calibration_folds),
            "n_jobs": model.n_jobs,
            "random_state": random_state
            if isinstance(random_state, Integral)
            else None,
        },
        "target_names": list(model.target_names_),
        "y_ndim": int(model._y_ndim),
        "n_features": int(model.n_features_),
        "feature_names_sha256": _names_digest(
            model.featurizer_.get_feature_names_out()
        ),
        "log_targets": [bool(f) for f in model.log_targets_],
        "conformal_quantiles": None
        if quantiles is None
        else [None if math.isinf(q) else float(q) for q in quantiles],
        "calibration": getattr(model, "calibration_", None),
        "training_ranges": _plain(model.training_ranges_, "training ranges"),
        "featurizer": featurizer_to_dict(model.featurizer_),
        "estimators": estimators,
    }


def _names_digest(names) -> str:
    """SHA-256 of a featurizer's output column names, one per line."""
    text = "\n".join(map(str, names))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_features(manifest, featurizer, path: Path) -> None:
    """Refuse a model whose columns this release's featurizer no longer gives."""
    n_features = manifest["n_features"]
    names = featurizer.get_feature_names_out()
    width = len(names)
    digest = manifest.get("feature_names_sha256")  # absent in older files
    if width == n_features and digest in (None, _names_digest(names)):
        return
    from .. import __version__

    raise ValueError(
        f"{path} was fitted on {n_features} feature columns that this release's "
        f"featurizer ({width} columns) does not reproduce: it was written by "
        f"mlircost_classic {manifest.get('package_version')}, and the features "
        f"changed since (this is {__version__}). Fit the model again with this "
        "release, or load it with the release that wrote it."
    )


def save_cost_model(model, path, *, overwrite: bool = False) -> None:
    """Write a fitted :class:`CostModel` (see :meth:`CostModel.save`)."""
    path = Path(path)
    as_zip = path.suffix == ".zip"
    if (
        path.exists()
        and not overwrite
        and (as_zip or path.is_file() or any(path.iterdir()))
    ):
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) if as_zip else path
        folder.mkdir(parents=True, exist_ok=True)
        manifest = _manifest(model, folder)
        text = json.dumps(manifest, indent=1, allow_nan=False)
        # The manifest comes last: a model folder without one is never half-read.
        (folder / MANIFEST).write_text(text, encoding="utf-8")
        if as_zip:
            path.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for item in sorted(folder.iterdir()):
                    zf.write(item, item.name)


def _reader(path: Path):
    """(read_bytes(name), close) for a model folder or zip file."""
    if path.is_dir():
        return (lambda name: (path / name).read_bytes()), (lambda: None)
    if zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)
        return archive.read, archive.close
    if path.exists():
        raise ValueError(f"{path} is neither a model folder nor a zip file")
    raise FileNotFoundError(f"{path}: no saved model there")


def _read_manifest(path: Path, read_bytes, what: str):
    """The parsed ``manifest.json`` of a model folder or zip (``_reader``)."""
    try:
        return json.load(io.BytesIO(read_bytes(MANIFEST)))
    except (KeyError, FileNotFoundError):
        raise ValueError(f"{path} has no {MANIFEST}; not {what}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: {MANIFEST} is not valid JSON ({exc})") from None


def _check_manifest(manifest, path: Path) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path} does not hold a saved mlircost_classic CostModel")
    version = manifest.get("format_version")
    if version not in READABLE_VERSIONS:
        from .. import __version__

        raise ValueError(
            f"{path} holds a cost model in format version {version!r}, written by "
            f"mlircost_classic {manifest.get('package_version')}; this release "
            f"({__version__}) reads format versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}. Load it with "
            "the release that wrote it, or fit the model again."
        )


def load_cost_model(cls, path):
    """Read a model written by :func:`save_cost_model` (see :meth:`CostModel.load`)."""
    path = Path(path)
    read_bytes, close = _reader(path)
    try:
        manifest = _read_manifest(path, read_bytes, "a saved model")
        _check_manifest(manifest, path)
        params = dict(manifest["params"])
        # Version-1 files predate priors: their regressors have none.
        params.setdefault("prior", None)
        if params["featurizer"] is not None:
            params["featurizer"] = featurizer_from_dict(params["featurizer"])
        n_features = manifest["n_features"]
        estimators = [
            None if entry is None else _read_estimator(entry, n_features, read_bytes)
            for entry in manifest["estimators"]
        ]
    finally:
        close()
    spec = params["estimator"]
    if spec is not None:
        if spec["class"] == "XGBRegressor":
            params["estimator"] = XGBRegressor(**spec["params"])
        else:
            params["estimator"] = _linear_class(spec["class"])(**spec["params"])
    model = cls(**params)
    model.featurizer_ = featurizer_from_dict(manifest["featurizer"])
    _check_features(manifest, model.featurizer_, path)
    model.target_names_ = list(manifest["target_names"])
    model._y_ndim = manifest["y_ndim"]
    model.n_features_ = n_features
    model.log_targets_ = list(manifest["log_targets"])
    model.estimators_ = estimators
    if manifest["conformal_quantiles"] is not None:
        model.conformal_quantiles_ = [
            math.inf if q is None else q for q in manifest["conformal_quantiles"]
        ]
        model.calibration_ = manifest.get("calibration") or "random"
    # Absent before format 3: such a model checks the ops only (novelty()).
    model.training_ranges_ = {
        str(k): [float(lo), float(hi)]
        for k, (lo, hi) in manifest.get("training_ranges", {}).items()
    }
    if len(estimators) != len(model.target_names_):
        raise ValueError(
            f"{path}: {MANIFEST} lists {len(estimators)} models for "
            f"{len(model.target_names_)} targets"
        )
    model._compile()
    return model
