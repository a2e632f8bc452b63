"""What every per-target cost model shares: targets, featurizing once, NaN rows.

:class:`PerTargetRegressor` is the template of :class:`CostModel` and
:class:`RooflineBaseline`: it checks the targets, fits the featurizer once on
all documents, then fits one regressor per target column on the rows where that
target is measured. Subclasses say which featurizer, which regressor per target
and which targets go on the log scale.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.compose import TransformedTargetRegressor
from sklearn.metrics import r2_score
from sklearn.utils import check_random_state, get_tags
from sklearn.utils.validation import check_is_fitted

from ..datasets import clip_to_domain
from ..featurize._base import _check_documents, _read_document
from ._novelty import feature_ranges, novelty_reasons

__all__ = ["PerTargetRegressor", "check_targets", "log_wrapped"]


def check_targets(y, target_names=None) -> tuple[np.ndarray, list[str], int]:
    """Targets as a 2-D float array with their names and the input's ``ndim``.

    A DataFrame or named Series gives the names when ``target_names`` is None;
    otherwise they are ``target0``, ``target1`` ... NaN marks a missing value;
    infinities are refused.
    """
    if target_names is None:
        if hasattr(y, "columns"):
            target_names = [str(c) for c in y.columns]
        elif getattr(y, "name", None) is not None:
            target_names = [str(y.name)]
    Y = np.asarray(y, dtype=float)
    ndim = Y.ndim
    if ndim == 1:
        Y = Y[:, None]
    elif ndim != 2:
        raise ValueError(f"y must be 1-D or 2-D, got an array of shape {Y.shape}")
    if np.isinf(Y).any():
        raise ValueError("y holds infinite values; mark a missing target with NaN")
    if target_names is None:
        target_names = [f"target{j}" for j in range(Y.shape[1])]
    target_names = [str(name) for name in target_names]
    if len(target_names) != Y.shape[1]:
        raise ValueError(
            f"{len(target_names)} target names for {Y.shape[1]} target columns"
        )
    if len(set(target_names)) != len(target_names):
        raise ValueError(f"target names are not unique: {target_names}")
    return Y, target_names, ndim


def log_wrapped(regressor) -> TransformedTargetRegressor:
    """``regressor`` fitted on ``log1p(y)``, predicting ``expm1`` of its output."""
    return TransformedTargetRegressor(
        regressor=regressor, func=np.log1p, inverse_func=np.expm1, check_inverse=False
    )


class TextInputMixin:
    """Mixin for estimators whose ``X`` is a sequence of MLIR texts.

    Sets the sklearn tags of such an estimator: string input, not a 2-D
    array, and (unless ``_multi_output`` is False) 2-D targets, one column
    per target.
    """

    _multi_output = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        if self._multi_output:
            tags.target_tags.multi_output = True
            tags.target_tags.two_d_labels = True
        return tags


def _per_document(values, name: str, n: int):
    """``values`` as an array of one entry per document (None stays None)."""
    if values is None:
        return None
    values = np.asarray(values)
    if values.shape != (n,):
        raise ValueError(
            f"{name} must hold one value per document ({n}), got "
            f"an array of shape {values.shape}"
        )
    return values


class PerTargetRegressor(TextInputMixin, RegressorMixin, BaseEstimator):
    """Base of the per-target cost models (template method).

    Subclasses implement ``_make_featurizer()`` (a fresh, unfitted transformer),
    ``_log_flags(Y)`` (one bool per target column) and
    ``_make_estimator(log, seed, n_samples, target=None)`` (a fresh regressor
    for one target, named ``target``, of ``n_samples`` measured rows), and may
    override ``_fit_target`` to change how one target is fitted (the default fits
    on all its rows). ``_make_estimator`` runs after the featurizer is fitted, so
    it may read ``featurizer_``. Parameters ``n_jobs`` and ``random_state`` are
    used when the subclass has them; ``_parameter_constraints`` validates the
    parameters at fit.

    Fitted attributes: ``featurizer_``, ``target_names_``, ``log_targets_``,
    ``estimators_`` (one per target, None for a target without a measured row),
    ``n_features_`` and ``training_ranges_`` (the range of the novelty features
    over the training documents, see :meth:`novelty`); what ``_fit_target`` returns besides the estimator is kept
    per target in ``_target_states`` for the subclass.
    """

    # -- hooks ------------------------------------------------------------------
    def _make_featurizer(self):
        raise NotImplementedError

    def _log_flags(self, Y: np.ndarray) -> list[bool]:
        raise NotImplementedError

    def _make_estimator(
        self, log: bool, seed: int | None, n_samples: int, target: str | None = None
    ):
        raise NotImplementedError

    def _fit_target(self, estimator, F, y, rng, groups=None, strata=None):
        """Fit ``estimator`` on one target's rows; returns (fitted, extra state).

        ``groups`` and ``strata`` hold the group and stratum of each of those
        rows, or None.
        """
        return estimator.fit(F, y), None

    # -- template ---------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, target_names=None, groups=None, strata=None):
        """Featurize the documents once and fit one regressor per target.

        Parameters
        ----------
        X : iterable of str or ParsedModule
            MLIR documents.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Measured costs; NaN where a document lacks a target. Each target is
            fitted on its own measured rows.
        target_names : list of str, optional
            One name per target column (default: the DataFrame's columns, else
            ``target0``, ``target1``, ...).
        groups : array-like of shape (n_samples,), optional
            Group of each document (its family or architecture), for
            subclasses that calibrate on held-out groups.
        strata : array-like of shape (n_samples,), optional
            Stratum of each document (its source), for subclasses that
            calibrate each stratum on its own.

        Returns
        -------
        self
        """
        Y, names, ndim = check_targets(y, target_names)
        self.featurizer_ = self._make_featurizer()
        F = _fit_transform(self.featurizer_, X, getattr(self, "n_jobs", None))
        if F.shape[0] != Y.shape[0]:
            raise ValueError(
                f"X has {F.shape[0]} documents but y has {Y.shape[0]} rows"
            )
        groups, strata = (
            _per_document(values, name, Y.shape[0])
            for values, name in ((groups, "groups"), (strata, "strata"))
        )
        self.target_names_ = names
        self._y_ndim = ndim
        self.n_features_ = F.shape[1]
        self.training_ranges_ = feature_ranges(F, self.featurizer_)
        self.log_targets_ = [bool(flag) for flag in self._log_flags(Y)]
        random_state = getattr(self, "random_state", None)
        rng = check_random_state(random_state)
        seeds = rng.randint(np.iinfo(np.int32).max, size=Y.shape[1])
        inputs = _Inputs(F)
        tasks = []
        for j, name in enumerate(names):
            rows = ~np.isnan(Y[:, j])
            if not rows.any():
                warnings.warn(
                    f"target {name!r} has no measured row; its predictions are NaN",
                    UserWarning,
                    stacklevel=2,
                )
                continue
            seed = int(seeds[j]) if random_state is not None else None
            estimator = self._make_estimator(
                self.log_targets_[j], seed, int(rows.sum()), target=name
            )
            tasks.append((j, estimator, rows))
        # A generator, so that joblib slices the rows of one target at a time.
        fitted = Parallel(n_jobs=getattr(self, "n_jobs", None))(
            delayed(self._fit_target)(
                est,
                inputs.for_estimator(est)[rows],
                Y[rows, j],
                np.random.RandomState(seeds[j]),
                None if groups is None else groups[rows],
                None if strata is None else strata[rows],
            )
            for j, est, rows in tasks
        )
        self.estimators_ = [None] * len(names)
        self._target_states = [None] * len(names)
        for (j, *_), (estimator, state) in zip(tasks, fitted, strict=True):
            self.estimators_[j] = estimator
            self._target_states[j] = state
        return self

    def _predict_features(self, F) -> np.ndarray:
        out = np.full((F.shape[0], len(self.target_names_)), np.nan)
        inputs = _Inputs(F)
        fitted = [(j, est) for j, est in enumerate(self.estimators_) if est is not None]
        # Targets in threads: xgboost releases the GIL while it predicts. The
        # inputs are made in this thread, as joblib consumes the generator here.
        columns = Parallel(n_jobs=getattr(self, "n_jobs", None), prefer="threads")(
            delayed(est.predict)(inputs.for_estimator(est)) for _, est in fitted
        )
        for (j, _), column in zip(fitted, columns, strict=True):
            out[:, j] = column
        return out

    def _shaped(self, out: np.ndarray) -> np.ndarray:
        return out[:, 0] if self._y_ndim == 1 else out

    def predict(self, X) -> np.ndarray:
        """Predict every target.

        Parameters
        ----------
        X : iterable of str or ParsedModule
            MLIR documents.

        Returns
        -------
        ndarray of shape (n_samples, n_targets), or (n_samples,) when fitted on 1-D y
            Columns in the order of ``target_names_``; NaN for a target that had
            no measured row in fit. A target of the target table
            (:data:`~mlircost_classic.datasets.TARGETS`) is clipped to its
            domain: counts are never below 0, occupancy never above 1.
        """
        check_is_fitted(self, "estimators_")
        out = self._predict_features(self.featurizer_.transform(X))
        return self._shaped(clip_to_domain(out, self.target_names_))

    def novelty(self, X) -> list[list[str]]:
        """Why each document is far from the training data, if it is.

        A document is flagged when it holds ops the model has no column for
        (ops never seen in training, with the default featurizer), or when one
        of its size features (:data:`~mlircost_classic.models.NOVELTY_FEATURES`:
        ops, rank, tensor elements, FLOPs, bytes moved) lies outside the range
        of the training documents. Its predictions are then extrapolations,
        and its intervals may not hold. A model saved before training ranges
        were recorded checks the ops only.

        Parameters
        ----------
        X : iterable of str or ParsedModule
            MLIR documents.

        Returns
        -------
        list of list of str
            One list per document, of readable reasons; empty when the
            document is within the training data. A document that cannot be
            read has that as its reason.

        Examples
        --------
        >>> from sklearn.linear_model import Ridge
        >>> from mlircost_classic.models import CostModel
        >>> def text(n, op="arith.addf"):
        ...     return f'''func.func @f(%a: tensor<{n}xf32>) -> tensor<{n}xf32> {{
        ...   %0 = {op} %a, %a : tensor<{n}xf32>
        ...   return %0 : tensor<{n}xf32>
        ... }}'''
        >>> model = CostModel(estimator=Ridge()).fit([text(4), text(8)], [4.0, 8.0])
        >>> model.novelty([text(8)])
        [[]]
        >>> model.novelty([text(8, "arith.mulf")])[0]
        ['ops never seen in training: arith.mulf']
        """
        check_is_fitted(self, "estimators_")
        # A StackedFeaturizer's text featurizer makes the columns checked here
        # (named as in the model's matrix), from the documents read once.
        featurizer = getattr(self.featurizer_, "featurizer_", self.featurizer_)
        reader = getattr(featurizer, "input", "content")
        modules, reasons = [], []
        for doc in _check_documents(X):
            try:
                modules.append(_read_document(doc, reader))
                reasons.append([])
            except Exception as exc:  # noqa: BLE001 - reported, as the reason
                modules.append(None)
                reasons.append([f"could not be read ({type(exc).__name__}: {exc})"])
        read = [i for i, m in enumerate(modules) if m is not None]
        if read:
            kept = [modules[i] for i in read]
            found = novelty_reasons(
                kept,
                featurizer.transform(kept),
                featurizer,
                getattr(self, "training_ranges_", {}),
            )
            for i, why in zip(read, found, strict=True):
                reasons[i] = why
        return reasons

    def score(self, X, y, sample_weight=None) -> float:
        """R² per target on the rows where it is measured, averaged over targets.

        NaN in ``y`` marks a missing value, as in :meth:`fit`, so the score can
        be computed on any fold of a dataset with missing targets (as
        ``cross_val_score`` and ``GridSearchCV`` do). Targets with fewer than
        two measured rows, or that the model cannot predict (no measured row
        in fit), are left out.

        Parameters
        ----------
        X : iterable of str or ParsedModule
            MLIR documents.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Measured costs, NaN where missing.
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        float
            The mean R²; NaN when no target is left.
        """
        Y, _, _ = check_targets(y)
        P = np.asarray(self.predict(X), dtype=float).reshape(Y.shape)
        weight = None if sample_weight is None else np.asarray(sample_weight, float)
        scores = []
        for j in range(Y.shape[1]):
            rows = ~np.isnan(Y[:, j])
            if rows.sum() < 2 or np.isnan(P[rows, j]).any():
                continue
            scores.append(
                r2_score(
                    Y[rows, j],
                    P[rows, j],
                    sample_weight=None if weight is None else weight[rows],
                )
            )
        return float(np.mean(scores)) if scores else math.nan


def _accepts_sparse(estimator) -> bool:
    try:
        return get_tags(estimator).input_tags.sparse
    except Exception:  # noqa: BLE001 - a third-party estimator without tags
        return False


def _fit_transform(featurizer, X, n_jobs):
    """``featurizer.fit_transform(X)``, its documents read in ``n_jobs`` workers
    when the featurizer takes ``n_jobs`` and has none of its own.

    The featurizer's parameters are left as they were (a saved model keeps
    the featurizer it was given).
    """
    params = (
        featurizer.get_params(deep=False) if hasattr(featurizer, "get_params") else {}
    )
    own = params.get("n_jobs", 1)
    if own is not None or n_jobs in (None, 1):
        return featurizer.fit_transform(X)
    featurizer.set_params(n_jobs=n_jobs)
    try:
        return featurizer.fit_transform(X)
    finally:
        featurizer.set_params(n_jobs=None)


class _Inputs:
    """The feature matrix, densified once for the estimators that need it."""

    def __init__(self, F):
        self.F = F
        self._dense = None

    def for_estimator(self, estimator):
        if sparse.issparse(self.F) and not _accepts_sparse(estimator):
            if self._dense is None:
                self._dense = self.F.toarray()
            return self._dense
        return self.F
