"""``build_report``: what the cost models learned, per target, as one HTML page."""

from __future__ import annotations

import csv
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GroupShuffleSplit

from ..datasets import KERNEL_LEVEL, load_dataset
from ..mlir import parse
from ..models import (
    CostModel,
    default_featurizer,
    mape,
    median_ape,
    r2_log,
    readable_feature_names,
    spearman,
)
from ..models._unwrap import unwrap
from ._importance import (
    gain_importance,
    linear_coefficients,
    permutation_importances,
    shap_values,
)

__all__ = ["build_report", "IMPORTANCE_COLUMNS", "METRIC_COLUMNS"]

#: Columns of ``metrics.csv``: one row per target and model, on the held-out part.
METRIC_COLUMNS = (
    "target",
    "model",
    "log_target",
    "n_train",
    "n_test",
    "spearman",
    "mape",
    "median_ape",
    "r2_log",
)

#: Columns of ``importance.csv``: one row per target and feature.
IMPORTANCE_COLUMNS = (
    "target",
    "feature",
    "name",
    "gain",
    "gain_share",
    "permutation_mean",
    "permutation_std",
    "shap_mean_abs",
    "linear_coef",
)

_METRICS = {
    "spearman": spearman,
    "mape": mape,
    "median_ape": median_ape,
    "r2_log": r2_log,
}
_TABLE_ROWS = 10
_FINITE = np.finfo(float).max


def _parse_or_keep(text):
    try:
        return parse(text)
    except Exception:  # noqa: BLE001 - the featurizer reports it with its own policy
        return text


def _slug(target: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", target)


def _finite(pred: np.ndarray) -> np.ndarray:
    # A linear model on the log scale can overflow expm1; keep such a prediction
    # as the largest float, so the metrics count it as the miss it is.
    return np.nan_to_num(pred, nan=np.nan, posinf=_FINITE, neginf=-_FINITE)


def _cell(value) -> str:
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else format(float(value), ".6g")
    return str(value)


def _write_csv(path: Path, columns, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row[c]) for c in columns])


#: Draws of held-out families the report chooses its split from.
_SPLIT_DRAWS = 20


def _split(groups: np.ndarray, test_size: float, random_state) -> tuple:
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(
            f"the report splits by family and needs 2 families, got {n_groups}"
        )
    # Families differ in size (a family of one-dispatch programs holds a quarter
    # of the modules): of several draws of test families, keep the one whose
    # share of the records is nearest ``test_size``.
    splitter = GroupShuffleSplit(
        n_splits=_SPLIT_DRAWS, test_size=test_size, random_state=random_state
    )
    splits = splitter.split(np.zeros((len(groups), 1)), groups=groups)
    return min(splits, key=lambda split: abs(len(split[1]) / len(groups) - test_size))


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(
            "the report draws its figures with matplotlib: "
            "pip install 'mlircost_classic[report]'"
        ) from None


def build_report(
    out: str | os.PathLike,
    *,
    kind: str = "modules",
    level: str | None = None,
    targets=None,
    max_targets: int | None = None,
    max_rows: int | None = None,
    test_size: float = 0.25,
    n_repeats: int = 5,
    n_permutation_features: int = 30,
    top: int = 15,
    random_state: int = 0,
    n_jobs: int | None = None,
    data_home: str | os.PathLike | None = None,
    progress: bool = False,
) -> Path:
    """Write an HTML report of what the cost models learn and how well they predict.

    The dataset is split once by family (:class:`~sklearn.model_selection.GroupShuffleSplit`;
    of 20 draws of ``test_size`` of the families, the one holding the share of
    the records nearest ``test_size``, as families differ in size): the
    held-out part holds only families the models never saw, as in the
    headline evaluation. Two :class:`~mlircost_classic.models.CostModel` are
    fitted on the training part, the default xgboost one and a linear one
    (``RidgeCV`` on standardized features). For every target the report shows

    - held-out metrics of both models (Spearman, MAPE, median APE, R² on the
      log scale),
    - predicted against measured values of both models on log axes,
    - xgboost importance: total gain of each feature's splits, the drop of
      held-out R² when the feature is shuffled (permutation importance, on the
      ``log1p`` scale for log targets, for the top ``n_permutation_features``
      features by gain) and a SHAP summary (exact tree SHAP values of the
      held-out modules),
    - the linear model's coefficients per standard deviation of each feature.

    Feature names are written for people
    (:func:`~mlircost_classic.models.readable_feature_name`).

    Parameters
    ----------
    out : path-like
        Folder to write (created; files of an earlier report are replaced):
        ``index.html``, ``metrics.csv`` (columns :data:`METRIC_COLUMNS`),
        ``importance.csv`` (:data:`IMPORTANCE_COLUMNS`) and ``img/*.png``.
    kind : {"modules", "kernels"}, default="modules"
        Which records of the dataset.
    level : str, optional
        MLIR level of the texts (default: the dataset's, see
        :func:`~mlircost_classic.load_dataset`).
    targets : str or list of str, optional
        Target or hardware names; default all targets of the dataset.
    max_targets : int, optional
        Report on the first ``max_targets`` of them only.
    max_rows : int, optional
        Report on a random sample of that many records (a quick look).
    test_size : float, default=0.25
        Share of the families held out (and, as near as the families' sizes
        allow among 20 draws, of the records).
    n_repeats : int, default=5
        Shuffles per feature for the permutation importance.
    n_permutation_features : int, default=30
        Features (the top ones by gain) whose permutation importance is
        computed; the others' is left empty.
    top : int, default=15
        Features shown per figure.
    random_state : int, default=0
        Seeds the split, the sample, the models and the shuffles.
    n_jobs : int, optional
        Targets fitted in parallel (see :class:`CostModel`).
    data_home : path-like, optional
        A dataset folder or collection run instead of the bundled dataset.
    progress : bool, default=False
        Show a progress bar (on standard error).

    Returns
    -------
    Path
        The ``index.html`` written.

    Raises
    ------
    ImportError
        Without matplotlib (extra ``[report]``).
    ValueError
        For unknown targets, or when the data has fewer than 2 families.

    Examples
    --------
    >>> from mlircost_classic.report import build_report
    >>> page = build_report("report", targets=["cpu_x86_64_v3.instructions"],
    ...                     max_rows=120, n_repeats=2)  # doctest: +SKIP
    >>> page.name  # doctest: +SKIP
    'index.html'
    """
    _require_matplotlib()
    from tqdm import tqdm

    from .. import __version__
    from . import _plots
    from ._html import render_page

    start = time.perf_counter()
    data = load_dataset(kind, level, targets=targets, data_home=data_home)
    level = level or (KERNEL_LEVEL if kind == "kernels" else "linalg")
    names = list(data.target_names)[:max_targets]
    texts, Y, groups = data.data, data.target[:, : len(names)], np.asarray(data.groups)
    if max_rows is not None and max_rows < len(texts):
        rng = np.random.RandomState(random_state)
        keep = np.sort(rng.choice(len(texts), size=max_rows, replace=False))
        texts, Y, groups = [texts[i] for i in keep], Y[keep], groups[keep]
    train, test = _split(groups, test_size, random_state)
    out = Path(out)
    (out / "img").mkdir(parents=True, exist_ok=True)

    with tqdm(total=len(names) + 2, disable=not progress, unit="step") as bar:
        bar.set_description("reading MLIR")
        docs = [_parse_or_keep(t) for t in texts]
        train_docs, test_docs = [docs[i] for i in train], [docs[i] for i in test]
        fit_start = time.perf_counter()
        models = {}
        for model_name, estimator in (
            ("xgboost", None),
            ("linear", RidgeCV(alphas=np.logspace(-3, 3, 13))),
        ):
            bar.set_description(f"fitting {model_name}")
            models[model_name] = CostModel(
                featurizer=default_featurizer(kind),
                estimator=estimator,
                n_jobs=n_jobs,
                random_state=random_state,
            ).fit(train_docs, Y[train], target_names=names)
            bar.update(1)
        fit_seconds = time.perf_counter() - fit_start
        fitted = _Fitted.make(models, Y, train, test, groups, test_docs)
        options = _Options(
            out / "img", n_repeats, n_permutation_features, top, random_state
        )

        metric_rows, importance_rows, sections = [], [], []
        bar.set_description("explaining")
        for j, target in enumerate(names):
            bar.set_postfix_str(target)
            section = _target_section(j, target, fitted, options, _plots)
            metric_rows.extend(section["metrics"])
            importance_rows.extend(section.pop("importance"))
            sections.append(section)
            bar.update(1)

    _write_csv(out / "metrics.csv", METRIC_COLUMNS, metric_rows)
    _write_csv(out / "importance.csv", IMPORTANCE_COLUMNS, importance_rows)
    _plots.plot_overview(
        out / "img" / "overview.png",
        names,
        {m: [r["spearman"] for r in metric_rows if r["model"] == m] for m in models},
    )
    test_families = sorted(set(groups[test].tolist()))
    context = {
        "kind": kind,
        "level": level,
        "version": __version__,
        "n_rows": len(texts),
        "n_families": len(np.unique(groups)),
        "n_train": len(train),
        "n_test": len(test),
        "n_test_families": len(test_families),
        "test_families": test_families,
        "random_state": random_state,
        "test_size": test_size,
        "n_repeats": n_repeats,
        "n_permutation_features": n_permutation_features,
        "fit_seconds": fit_seconds,
        "total_seconds": time.perf_counter() - start,
        "overview": "img/overview.png",
        "metrics": metric_rows,
    }
    page = out / "index.html"
    page.write_text(render_page(context, sections), encoding="utf-8")
    return page


@dataclass(frozen=True)
class _Fitted:
    """The two fitted models and what every target's section reads from them."""

    xgb: CostModel
    linear: CostModel
    Y: np.ndarray
    train: np.ndarray
    test: np.ndarray
    groups: np.ndarray
    F_test: object
    predictions: dict
    features: list
    readable: list
    linear_to_xgb: tuple

    @classmethod
    def make(cls, models, Y, train, test, groups, test_docs) -> _Fitted:
        xgb, linear = models["xgboost"], models["linear"]
        features = [str(f) for f in xgb.featurizer_.get_feature_names_out()]
        column = {f: i for i, f in enumerate(features)}
        # Both featurizers saw the same documents, so their columns should agree;
        # the coefficients are matched by name all the same.
        pairs = [
            (k, column[str(f)])
            for k, f in enumerate(linear.featurizer_.get_feature_names_out())
            if str(f) in column
        ]
        return cls(
            xgb=xgb,
            linear=linear,
            Y=Y,
            train=train,
            test=test,
            groups=groups,
            F_test=xgb.featurizer_.transform(test_docs),
            predictions={
                m: _finite(model.predict(test_docs).reshape(len(test), -1))
                for m, model in models.items()
            },
            features=features,
            readable=readable_feature_names(xgb.featurizer_),
            linear_to_xgb=(
                np.array([k for k, _ in pairs], dtype=int),
                np.array([i for _, i in pairs], dtype=int),
            ),
        )


@dataclass(frozen=True)
class _Options:
    images: Path
    n_repeats: int
    n_permutation_features: int
    top: int
    random_state: int


def _metrics(j, target, fitted: _Fitted, measured, y) -> list[dict]:
    n_train = int((~np.isnan(fitted.Y[fitted.train, j])).sum())
    rows = []
    for model_name, pred in fitted.predictions.items():
        row = {
            "target": target,
            "model": model_name,
            "log_target": bool(fitted.xgb.log_targets_[j]),
            "n_train": n_train,
            "n_test": len(y),
        }
        for metric, function in _METRICS.items():
            row[metric] = function(y, pred[measured, j])
        rows.append(row)
    return rows


def _target_section(j, target, fitted: _Fitted, options: _Options, plots) -> dict:
    """Metrics, importance rows and figures of one target."""
    log = bool(fitted.xgb.log_targets_[j])
    measured = ~np.isnan(fitted.Y[fitted.test, j])
    y = fitted.Y[fitted.test, j][measured]
    metrics = _metrics(j, target, fitted, measured, y)
    section = {
        "target": target,
        "log": log,
        "metrics": metrics,
        "images": [],
        "features": [],
        "importance": [],
        "note": "",
    }
    estimator = fitted.xgb.estimators_[j]
    if estimator is None or len(y) == 0:
        section["note"] = (
            "no measured value in the training part: nothing was fitted"
            if estimator is None
            else "no measured value in the held-out families: nothing to show"
        )
        return section
    train_values = fitted.Y[fitted.train, j]
    train_values = train_values[~np.isnan(train_values)]
    if np.ptp(train_values) == 0:
        section["note"] = (
            f"every training value is {train_values[0]:g}: the models are constant, "
            "there is nothing to explain"
        )
        return section

    n_features = len(fitted.features)
    F = fitted.F_test[np.flatnonzero(measured)]
    gain = gain_importance(estimator, n_features)
    total = gain.sum()
    gain_share = gain / total if total > 0 else np.zeros(n_features)
    contributions, _ = shap_values(estimator, F)
    perm_mean = np.full(n_features, np.nan)
    perm_std = np.full(n_features, np.nan)
    candidates = [i for i in np.argsort(-gain, kind="stable") if gain[i] > 0]
    candidates = candidates[: options.n_permutation_features]
    prior = unwrap(estimator).prior
    if prior is not None:  # the roofline's columns act through the prior
        candidates += [int(c) for c in prior.columns if int(c) not in candidates]
    if candidates and np.ptp(y) > 0:
        perm_mean[candidates], perm_std[candidates] = permutation_importances(
            estimator,
            F,
            y,
            candidates,
            n_repeats=options.n_repeats,
            random_state=options.random_state,
        )
    coef = np.zeros(n_features)
    if fitted.linear.estimators_[j] is not None:
        from_linear, to_xgb = fitted.linear_to_xgb
        coef[to_xgb] = linear_coefficients(fitted.linear.estimators_[j])[from_linear]

    shap_mean_abs = np.abs(contributions).mean(axis=0)
    for i in np.lexsort((-np.abs(coef), -gain)):
        section["importance"].append(
            {
                "target": target,
                "feature": fitted.features[i],
                "name": fitted.readable[i],
                "gain": gain[i],
                "gain_share": gain_share[i],
                "permutation_mean": perm_mean[i],
                "permutation_std": perm_std[i],
                "shap_mean_abs": shap_mean_abs[i],
                "linear_coef": coef[i],
            }
        )
    section["features"] = [
        row for row in section["importance"][:_TABLE_ROWS] if row["gain"] > 0
    ]

    slug = _slug(target)
    files = {
        "predicted": (f"{slug}.predicted.png", "predicted against measured"),
        "importance": (f"{slug}.importance.png", "gain and permutation importance"),
        "shap": (f"{slug}.shap.png", "SHAP summary"),
        "coefficients": (f"{slug}.coefficients.png", "ridge coefficients"),
    }
    path = {key: options.images / name for key, (name, _) in files.items()}
    readable, top = fitted.readable, options.top
    plots.plot_predicted_vs_measured(
        path["predicted"],
        target,
        y,
        {m: pred[measured, j] for m, pred in fitted.predictions.items()},
        fitted.groups[fitted.test][measured],
        {m["model"]: m["spearman"] for m in metrics},
    )
    plots.plot_importance(
        path["importance"],
        target,
        readable,
        gain_share,
        perm_mean,
        perm_std,
        top=top,
        log=log,
    )
    dense = F.toarray() if hasattr(F, "toarray") else np.asarray(F)
    plots.plot_shap_summary(
        path["shap"], target, readable, contributions, dense, top=top, log=log
    )
    plots.plot_coefficients(
        path["coefficients"], target, readable, coef, top=top, log=log
    )
    section["images"] = [(f"img/{name}", alt) for name, alt in files.values()]
    return section
