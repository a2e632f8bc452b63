"""The evaluation protocol: the same folds for every model, a tidy table out.

:func:`evaluate` cross-validates several models on the same splits (by family
with :class:`~sklearn.model_selection.GroupKFold` for the headline figure: a
compiler meets architectures it has never seen; by op template, see
:func:`op_templates`, so that no test kernel's op sequence is seen in training;
or random), computes every
metric of :data:`~mlircost_classic.models.METRICS` per target on the pooled
out-of-fold predictions, and times fitting and prediction.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, KFold
from sklearn.pipeline import Pipeline

from ..featurize import BaseMLIRFeaturizer
from ..mlir import ParsedModule, parse
from ._base import PerTargetRegressor, check_targets
from ._metrics import interval_coverage, target_scores

__all__ = ["evaluate", "op_templates"]

ALL_TARGETS = "*"

# Ops that bring a dispatch's operands in and its results out (buffers, offsets,
# loads, stores, empty tensors), not its computation: their number follows the
# shapes and offsets, and IREE orders the loads differently from one size to
# another.
_PLUMBING = frozenset(
    {
        "arith.constant",
        "arith.index_castui",
        "flow.dispatch.tensor.load",
        "flow.dispatch.tensor.store",
        "func.return",
        "hal.interface.binding.subspan",
        "hal.interface.constant.load",
        "iree_tensor_ext.dispatch.tensor.load",
        "iree_tensor_ext.dispatch.tensor.store",
        "return",
        "tensor.empty",
        "util.assume.int",
    }
)


def op_templates(X) -> np.ndarray:
    """The op template of each program: its computation's op names, in order.

    A template is the sequence of the names of the ops inside functions
    (nested regions included), without shapes, types or attributes, and
    without constants and the plumbing that loads and stores a dispatch's
    operands. Two dispatches of the same
    computation at other sizes share a template: ``evaluate(cv="template")``
    groups by it, so no test template is seen in training.

    Parameters
    ----------
    X : iterable of str or ParsedModule
        MLIR texts (typically kernels: IREE dispatches).

    Returns
    -------
    ndarray of str, shape (n_samples,)
        The template of each program, op names joined by spaces.

    Examples
    --------
    >>> op_templates(["func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {"
    ...               " %0 = math.exp %a : tensor<4xf32>"
    ...               " return %0 : tensor<4xf32> }"])
    array(['math.exp'], dtype=object)
    """
    templates = []
    for doc in X:
        module = doc if isinstance(doc, ParsedModule) else parse(doc)
        templates.append(
            " ".join(
                op.name
                for op in module.ops
                if op.function is not None and op.depth > 0 and op.name not in _PLUMBING
            )
        )
    return np.asarray(templates, dtype=object)


def _takes_parsed(model) -> bool:
    """Whether the model's featurizer reads :class:`ParsedModule` documents."""
    if isinstance(model, PerTargetRegressor):
        featurizer = model.featurizer
        return featurizer is None or isinstance(featurizer, BaseMLIRFeaturizer)
    if isinstance(model, Pipeline):
        return isinstance(model.steps[0][1], BaseMLIRFeaturizer)
    return False


def _fits_all_targets(model) -> bool:
    """Whether ``fit(X, Y, target_names=...)`` takes all targets, NaN and all."""
    return isinstance(model, PerTargetRegressor) or getattr(
        model, "_fits_all_targets", False
    )


def _parse_or_keep(text):
    try:
        return parse(text)
    except Exception:  # noqa: BLE001 - the model's featurizer applies its own policy
        return text


def _splits(cv, n_splits: int, groups, docs, random_state) -> list:
    dummy = np.zeros((len(docs), 1))
    if isinstance(cv, str):
        if cv in ("group", "template"):
            if cv == "group" and groups is None:
                raise ValueError("cv='group' needs groups (the family of each row)")
            by = groups if cv == "group" else op_templates(docs)
            n_groups = len(np.unique(by))
            if n_groups < 2:
                raise ValueError(f"cv={cv!r} needs at least 2 groups, got {n_groups}")
            splitter = GroupKFold(n_splits=min(n_splits, n_groups))
            return list(splitter.split(dummy, groups=by))
        if cv == "random":
            splitter = KFold(n_splits=n_splits, shuffle=True, random_state=random_state)
            return list(splitter.split(dummy))
    elif hasattr(cv, "split"):
        return list(cv.split(dummy, groups=groups))
    raise ValueError(
        f"cv must be 'group', 'template', 'random' or a CV splitter, got {cv!r}"
    )


def _takes_groups(model) -> bool:
    """Whether ``model.fit`` takes ``groups`` (a CostModel calibrates on them)."""
    return "groups" in inspect.signature(model.fit).parameters


def _fit_predict(model, X, Y, names, train, test, groups=None):
    """Fit a clone on ``train`` and predict ``test``.

    Returns the fitted model(s), the seconds fitting took, the predictions and
    the prediction intervals (None for a model without).
    """
    start = time.perf_counter()
    if _fits_all_targets(model):
        extra = {}
        if groups is not None and _takes_groups(model):
            extra["groups"] = groups[train]
        fitted = clone(model).fit(
            [X[i] for i in train], Y[train], target_names=names, **extra
        )
        seconds = time.perf_counter() - start
        test_docs = [X[i] for i in test]
        pred = fitted.predict(test_docs).reshape(len(test), -1)
        interval = None
        if getattr(fitted, "intervals", None) is not None:
            lower, upper = fitted.predict_interval(test_docs)
            interval = (lower.reshape(len(test), -1), upper.reshape(len(test), -1))
        return fitted, seconds, pred, interval
    # Any other regressor: one clone per target on that target's measured rows.
    fitted = []
    for j in range(Y.shape[1]):
        rows = train[~np.isnan(Y[train, j])]
        fitted.append(
            clone(model).fit([X[i] for i in rows], Y[rows, j]) if rows.size else None
        )
    seconds = time.perf_counter() - start
    test_docs = [X[i] for i in test]
    pred = np.full((len(test), Y.shape[1]), np.nan)
    for j, estimator in enumerate(fitted):
        if estimator is not None:
            pred[:, j] = np.asarray(estimator.predict(test_docs)).reshape(len(test))
    return fitted, seconds, pred, None


def _predict_texts(fitted, texts):
    if isinstance(fitted, list):
        return [est.predict(texts) for est in fitted if est is not None]
    return fitted.predict(texts)


def _median_seconds(function, repeats: int, warmup: int, clock=time.perf_counter):
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = clock()
        function()
        times.append(clock() - start)
    return float(np.median(times))


def evaluate(
    models: Mapping[str, object],
    X,
    Y,
    target_names=None,
    groups=None,
    *,
    cv="group",
    n_splits: int = 5,
    random_state=0,
    latency_repeats: int = 20,
    batch_size: int = 1000,
    batch_repeats: int = 3,
    as_frame="auto",
    return_predictions: bool = False,
):
    """Cross-validate models on the same folds; metrics per model and target.

    Every model is cloned and fitted on each training fold and predicts the
    test fold. :class:`CostModel`-like models (subclasses of
    :class:`~mlircost_classic.models.PerTargetRegressor`, and models that set
    ``_fits_all_targets = True`` such as the neural baselines) get all targets
    at once; any other regressor (e.g. a ``Pipeline`` of a featurizer and a
    regressor) is fitted once per target on the rows that have it. Metrics are
    computed per target on the out-of-fold predictions of all folds pooled,
    ignoring rows that lack the target. The MLIR texts are read once for all
    models and folds when a model's featurizer accepts parsed modules.

    Parameters
    ----------
    models : mapping of str -> regressor
        Name -> unfitted model taking MLIR documents.
    X : sequence of str
        MLIR texts.
    Y : array-like of shape (n_samples,) or (n_samples, n_targets)
        Measured targets, NaN where missing.
    target_names : list of str, optional
        Names of the target columns.
    groups : array-like of shape (n_samples,), optional
        Family of each row; needed by ``cv="group"``, used by the pairwise
        ranking accuracy (all pairs when None), and passed with the training
        rows to the ``fit`` of models that take ``groups`` (a
        :class:`CostModel` with intervals calibrates on held-out groups).
    cv : {"group", "template", "random"} or CV splitter, default="group"
        ``GroupKFold`` by ``groups`` (the headline protocol; at most one fold
        per group), ``GroupKFold`` by :func:`op_templates` (for kernels: a
        test template is never seen in training, whatever its family),
        shuffled ``KFold``, or any splitter.
    n_splits : int, default=5
        Number of folds.
    random_state : int, default=0
        Shuffling of ``cv="random"``.
    latency_repeats : int, default=20
        Timed predictions of one module (featurize + predict from text, after
        three warm-up calls); the median is reported.
    batch_size : int, default=1000
        Modules per batch for the batch latency (the texts repeated as needed).
    batch_repeats : int, default=3
        Timed batch predictions after one warm-up; the median is reported.
    as_frame : "auto" or bool, default="auto"
        Return a pandas DataFrame ("auto": when pandas is installed) or a list
        of dicts.
    return_predictions : bool, default=False
        Also return the out-of-fold predictions.

    Returns
    -------
    table : DataFrame or list of dict
        One row per model, target and metric with columns ``model``,
        ``target``, ``metric``, ``value`` and ``n``. Per-target metrics are
        those of :data:`METRICS` (``n``: rows measured), the spill scores of
        :func:`~mlircost_classic.models.spill_classification` for spill and
        stack targets (:func:`~mlircost_classic.models.is_spill_target`), and
        ``coverage`` of the prediction intervals for models fitted with
        intervals. Timings have
        target ``"*"``: ``fit_seconds`` (mean over folds, all targets; ``n``:
        folds), ``latency_one_ms`` (one module of median text length; ``n``:
        repeats) and ``latency_batch_ms`` (``n``: batch size), measured on the
        model of the last fold.
    predictions : dict of str -> ndarray of shape (n_samples, n_targets)
        Out-of-fold predictions per model; only with ``return_predictions``.
    """
    texts = list(X)
    if any(not isinstance(t, str) for t in texts):
        raise TypeError("evaluate takes MLIR texts (str)")
    Y, names, _ = check_targets(Y, target_names)
    if len(texts) != Y.shape[0]:
        raise ValueError(f"{len(texts)} texts but {Y.shape[0]} target rows")
    if groups is not None:
        groups = np.asarray(groups)
    parsed = None
    if any(_takes_parsed(model) for model in models.values()):
        parsed = [_parse_or_keep(t) for t in texts]
    folds = _splits(cv, n_splits, groups, parsed or texts, random_state)
    one = [texts[int(np.argsort([len(t) for t in texts])[len(texts) // 2])]]
    batch = [texts[i % len(texts)] for i in range(batch_size)]

    rows: list[dict] = []
    predictions = {}
    for model_name, model in models.items():
        docs = parsed if _takes_parsed(model) else texts
        oof = np.full(Y.shape, np.nan)
        lower = np.full(Y.shape, np.nan)
        upper = np.full(Y.shape, np.nan)
        fit_seconds = []
        fitted = None
        for train, test in folds:
            fitted, seconds, pred, interval = _fit_predict(
                model, docs, Y, names, train, test, groups
            )
            fit_seconds.append(seconds)
            oof[test] = pred
            if interval is not None:
                lower[test], upper[test] = interval
        predictions[model_name] = oof

        def add(target, metric, value, n, model_name=model_name):
            rows.append(
                {
                    "model": model_name,
                    "target": target,
                    "metric": metric,
                    "value": float(value),
                    "n": int(n),
                }
            )

        has_intervals = not np.isnan(lower).all()
        for j, target in enumerate(names):
            measured = int((~np.isnan(Y[:, j])).sum())
            scores = target_scores(target, Y[:, j], oof[:, j], groups)
            for metric, value in scores.items():
                add(target, metric, value, measured)
            if has_intervals:
                coverage = interval_coverage(Y[:, j], lower[:, j], upper[:, j])
                add(target, "coverage", coverage, measured)
        add(ALL_TARGETS, "fit_seconds", np.mean(fit_seconds), len(folds))
        one_s = _median_seconds(
            lambda f=fitted: _predict_texts(f, one), latency_repeats, warmup=3
        )
        add(ALL_TARGETS, "latency_one_ms", 1e3 * one_s, latency_repeats)
        batch_s = _median_seconds(
            lambda f=fitted: _predict_texts(f, batch), batch_repeats, warmup=1
        )
        add(ALL_TARGETS, "latency_batch_ms", 1e3 * batch_s, batch_size)

    table = rows
    if as_frame is True or as_frame == "auto":
        try:
            import pandas as pd
        except ImportError:
            if as_frame is True:
                raise ImportError("evaluate(as_frame=True) needs pandas") from None
        else:
            table = pd.DataFrame(
                rows, columns=["model", "target", "metric", "value", "n"]
            )
    if return_predictions:
        return table, predictions
    return table
