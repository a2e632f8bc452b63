"""Ranking candidate codegen configurations of one dispatch.

:class:`VariantRanker` learns, from variant records (one dispatch compiled
under several ``lowering_config`` candidates), to order the candidates of a
dispatch by a target: a pairwise ranking objective over the groups
(xgboost's ``rank:pairwise``, relevance = the candidate's rank in its group),
a regression on the log of the target, or both (their scores summed, each
over its spread on the training candidates). :func:`rank` orders candidates
with a model fitted on the bundled variants. :func:`group_metrics` and
:func:`evaluate_variants` make the decision benchmark: within-group Kendall
tau and pairwise accuracy, top-1 / top-3 regret against the best measured
candidate and how often the pick beats the compiler's own choice, on held-out
dispatch families; :func:`evaluate_spills` scores spill detection there (an
xgboost classifier against the thresholded regression of the spill metric).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from numbers import Integral, Real

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.model_selection import GroupKFold
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from xgboost import XGBClassifier, XGBRanker, XGBRegressor

from ..featurize import VariantFeaturizer
from ._base import TextInputMixin
from ._metrics import pairwise_ranking_accuracy, spill_classification

__all__ = [
    "HIGHER_IS_BETTER",
    "SpillClassifier",
    "VARIANT_TASKS",
    "VariantRanker",
    "evaluate_spills",
    "evaluate_variants",
    "group_metrics",
    "rank",
    "spill_labels",
]

#: Metrics where a larger value is the better candidate; for every other
#: target (registers, spills, instructions, latency) smaller is better.
HIGHER_IS_BETTER = ("occupancy", "compiles")

#: Hardware -> (the target its candidates are ranked by, its spill metric,
#: its stack / scratch metric): what the decision benchmark scores and what
#: the shipped variant models (``variants-<hardware>.zip``) are fitted on.
VARIANT_TASKS = {
    "nvidia_sm80": (
        "nvidia_sm80.registers",
        "nvidia_sm80.spill_bytes",
        "nvidia_sm80.stack_bytes",
    ),
    "nvidia_sm90": (
        "nvidia_sm90.registers",
        "nvidia_sm90.spill_bytes",
        "nvidia_sm90.stack_bytes",
    ),
    "amd_gfx942": ("amd_gfx942.vgprs", "amd_gfx942.spills", "amd_gfx942.scratch_bytes"),
    "cpu_x86_64_v3": ("cpu_x86_64_v3.instructions", None, None),
}


#: Objectives with a regression of the target (what ``predict_target`` reads).
_REGRESSION_OBJECTIVES = ("regression", "rank:pairwise+regression")

#: Pairs ``rank:pairwise`` samples for each candidate of a group
#: (``lambdarank_pair_method="mean"``): pairs from the whole group, the
#: question Kendall tau asks, where xgboost's default (``"topk"``) builds them
#: around the model's top candidates.
PAIRS_PER_CANDIDATE = 8


def _sign(target: str) -> float:
    """+1 when smaller is better for ``target``, -1 otherwise."""
    return -1.0 if target.rsplit(".", 1)[-1] in HIGHER_IS_BETTER else 1.0


def _group_ranks(y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Relevance for a ranker: within each group, 0 for the worst (largest)
    value up to the number of distinct values - 1 for the best."""
    rel = np.zeros(len(y), dtype=np.float64)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        dense = stats.rankdata(-y[rows], method="dense") - 1
        rel[rows] = dense
    return rel


class VariantRanker(TextInputMixin, RegressorMixin, BaseEstimator):
    """Orders candidates of a dispatch by a cost (smaller = better).

    ``predict`` returns a cost-like score: within a group, a smaller score is
    a better candidate. With ``objective="regression"`` the score estimates
    the target itself; with the ranking objectives it is only an order.

    Parameters
    ----------
    objective : {"rank:pairwise", "rank:ndcg", "regression", \
            "rank:pairwise+regression"}, default="rank:pairwise+regression"
        xgboost ranking objective over the groups, a regression on
        ``log1p(target)``, or both: the sum of the ranker's and the
        regression's scores, each divided by its standard deviation on the
        training candidates (on held-out families this ranks better than
        either alone, ``benchmarks/variants_results.md``).
    featurizer : transformer, default=None
        Turns candidate texts into features; None means
        :class:`~mlircost_classic.featurize.VariantFeaturizer`.
    n_estimators : int, default=300
        Passed to xgboost.
    max_depth : int, default=8
        Passed to xgboost (8 ranks better than 6 on held-out families:
        ``benchmarks/variants_results.md``, session 25).
    learning_rate : float, default=0.1
    random_state : int, default=0

    Examples
    --------
    >>> ranker = VariantRanker(objective="regression")  # doctest: +SKIP
    >>> ranker.fit(texts, registers, groups=dispatch_ids)  # doctest: +SKIP
    >>> np.argsort(ranker.predict(candidates))[0]  # best first  # doctest: +SKIP
    """

    _parameter_constraints: dict = {
        "objective": [
            StrOptions(
                {"rank:pairwise", "rank:ndcg", "regression", "rank:pairwise+regression"}
            )
        ],
        "featurizer": "no_validation",
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_depth": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "random_state": [Integral],
    }

    def __init__(
        self,
        *,
        objective: str = "rank:pairwise+regression",
        featurizer=None,
        n_estimators: int = 300,
        max_depth: int = 8,
        learning_rate: float = 0.1,
        random_state: int = 0,
    ):
        self.objective = objective
        self.featurizer = featurizer
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.random_state = random_state

    _multi_output = False

    def fit(self, X, y, groups=None):
        """Fit on candidate texts ``X`` and their measured ``y``.

        Parameters
        ----------
        X : sequence of str
            Configured executables.
        y : array-like of shape (n_samples,)
            The target (smaller = better); NaN rows are left out.
        groups : array-like of shape (n_samples,)
            The dispatch of each candidate; required by ranking objectives.

        Returns
        -------
        self
        """
        self._validate_params()
        texts = list(X)
        y = np.asarray(y, dtype=np.float64)
        if len(texts) != len(y):
            raise ValueError(f"X has {len(texts)} texts, y has {len(y)} values")
        keep = ~np.isnan(y)
        if self.objective != "regression":
            if groups is None:
                raise ValueError(f"objective {self.objective!r} needs groups")
            groups = np.asarray(groups, dtype=object)[keep]
            order = np.argsort(groups, kind="stable")
        else:
            order = np.arange(int(keep.sum()))
        texts = [t for t, k in zip(texts, keep, strict=True) if k]
        y = y[keep]
        featurizer = VariantFeaturizer() if self.featurizer is None else self.featurizer
        self.featurizer_ = clone(featurizer).fit(texts)
        F = self.featurizer_.transform(texts)[order]
        params = dict(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            random_state=self.random_state,
            n_jobs=1,
            tree_method="hist",
        )
        # Costs span orders of magnitude: a regression fits their log where
        # they have one (log_).
        self.log_ = bool(self.objective in _REGRESSION_OBJECTIVES and (y >= 0).all())
        if self.objective == "regression":
            self.estimator_ = XGBRegressor(**params).fit(
                F, np.log1p(y) if self.log_ else y[order]
            )
            return self
        g = groups[order]
        _, qid = np.unique(g, return_inverse=True)
        objective = self.objective.split("+")[0]
        pairs = (
            dict(
                lambdarank_pair_method="mean",
                lambdarank_num_pair_per_sample=PAIRS_PER_CANDIDATE,
            )
            if objective == "rank:pairwise"
            else {}
        )
        self.estimator_ = XGBRanker(objective=objective, **pairs, **params).fit(
            F, _group_ranks(y[order], g), qid=qid
        )
        if self.objective == "rank:pairwise+regression":
            self.regressor_ = XGBRegressor(**params).fit(
                F, np.log1p(y[order]) if self.log_ else y[order]
            )
            # Each score over its spread, the ranker's margin negated (a
            # larger margin is a better candidate, a smaller cost is).
            spread = [
                np.std(m.predict(F)) or 1.0 for m in (self.estimator_, self.regressor_)
            ]
            self.weights_ = (-1.0 / spread[0], 1.0 / spread[1])
        return self

    def predict(self, X) -> np.ndarray:
        """Cost-like score per candidate (smaller = better).

        Parameters
        ----------
        X : sequence of str

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "estimator_")
        return self._scores(self.featurizer_.transform(list(X)))

    def _scores(self, F) -> np.ndarray:
        """:meth:`predict` of featurized candidates."""
        raw = self.estimator_.predict(F)
        if self.objective == "regression":
            return np.expm1(raw) if self.log_ else raw
        if self.objective == "rank:pairwise+regression":
            return self.weights_[0] * raw + self.weights_[1] * self.regressor_.predict(
                F
            )
        return -raw

    def predict_target(self, X) -> np.ndarray:
        """The regression's estimate of the target itself, per candidate.

        What the ranking is read against: registers, VGPRs, instructions in
        their units (negated for a target fitted negated, as :func:`rank` fits
        the targets where more is better).

        Parameters
        ----------
        X : sequence of str

        Returns
        -------
        ndarray of shape (n_samples,)

        Raises
        ------
        ValueError
            For a ranking objective alone, which estimates no value.
        """
        check_is_fitted(self, "estimator_")
        if self.objective not in _REGRESSION_OBJECTIVES:
            raise ValueError(
                f"a VariantRanker with objective {self.objective!r} orders "
                "candidates without estimating the target"
            )
        return self._estimates(self.featurizer_.transform(list(X)))

    def _estimates(self, F) -> np.ndarray:
        """:meth:`predict_target` of featurized candidates."""
        regressor = (
            self.estimator_ if self.objective == "regression" else self.regressor_
        )
        raw = regressor.predict(F).astype(np.float64)
        return np.maximum(np.expm1(raw), 0.0) if self.log_ else raw


def spill_labels(target) -> np.ndarray:
    """1 where a spill metric (NVIDIA ``spill_bytes``, AMD ``spills``) is > 0.

    A 2-D ``target`` (several metrics, one column each: spills and stack
    bytes) gives 1 where any of them is > 0; NaN counts as 0.
    """
    values = np.nan_to_num(np.asarray(target, dtype=np.float64)) > 0
    return (values.any(axis=1) if values.ndim == 2 else values).astype(int)


def _regret(chosen: float, best: float) -> float:
    """Relative loss of a choice against the best: ``(chosen - best) / max(best, 1)``."""
    return (chosen - best) / max(abs(best), 1.0)


def group_metrics(
    y_true, y_pred, groups, is_default=None, *, higher_is_better: bool = False
) -> dict[str, float]:
    """Decision metrics of predictions within groups of candidates.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Measured target and predicted score (NaN rows are left out).
    groups : array-like
        The dispatch of each candidate.
    is_default : array-like of bool, optional
        The compiler's own choice of each group, for ``beats_default``.
    higher_is_better : bool, default=False
        Orientation of both ``y_true`` and ``y_pred``.

    Returns
    -------
    dict
        ``kendall_tau``: mean within-group Kendall tau-b over groups whose
        measured values differ (a group of constant predictions counts 0);
        ``pairwise_accuracy``; ``top1_regret`` / ``top3_regret``: mean over
        groups of the relative loss ``(chosen - best) / max(best, 1)`` of the
        predicted best (best of the three predicted best);
        ``beats_default`` / ``matches_default``: fraction of groups where the
        pick is strictly better than / equal to the compiler's choice;
        ``groups``: groups scored.

    Examples
    --------
    >>> m = group_metrics([1, 2, 3, 5, 4], [1, 2, 3, 1, 2], ["a"] * 3 + ["b"] * 2)
    >>> m["kendall_tau"], m["top1_regret"]
    (0.0, 0.125)
    """
    sign = -1.0 if higher_is_better else 1.0
    y_true = sign * np.asarray(y_true, dtype=np.float64)
    y_pred = sign * np.asarray(y_pred, dtype=np.float64)
    groups = np.asarray(groups, dtype=object)
    default = (
        np.zeros(len(y_true), bool) if is_default is None else np.asarray(is_default)
    )
    keep = ~(np.isnan(y_true) | np.isnan(y_pred))
    y_true, y_pred, groups, default = (
        a[keep] for a in (y_true, y_pred, groups, default)
    )
    taus, top1, top3, beats, matches = [], [], [], [], []
    for g in np.unique(groups):
        rows = groups == g
        t, p = y_true[rows], y_pred[rows]
        if len(np.unique(t)) < 2:
            continue
        tau = stats.kendalltau(t, p).statistic if len(np.unique(p)) > 1 else 0.0
        taus.append(tau)
        order = np.argsort(p, kind="stable")
        best = t.min()
        top1.append(_regret(t[order[0]], best))
        top3.append(_regret(t[order[:3]].min(), best))
        if default[rows].any():
            d = t[default[rows]][0]
            beats.append(t[order[0]] < d)
            matches.append(t[order[0]] == d)
    nan = float("nan")
    return {
        "kendall_tau": float(np.mean(taus)) if taus else nan,
        "pairwise_accuracy": pairwise_ranking_accuracy(y_true, y_pred, groups),
        "top1_regret": float(np.mean(top1)) if top1 else nan,
        "top3_regret": float(np.mean(top3)) if top3 else nan,
        "beats_default": float(np.mean(beats)) if beats else nan,
        "matches_default": float(np.mean(matches)) if matches else nan,
        "groups": float(len(taus)),
    }


def _compiler_choice(is_default: np.ndarray) -> np.ndarray:
    """The compiler's choice as a ranking: its candidate first, the rest tied."""
    return np.where(is_default, 0.0, 1.0)


def evaluate_variants(
    texts: Sequence[str],
    y,
    groups,
    families,
    is_default,
    models: Mapping[str, object],
    *,
    target: str,
    n_splits: int = 5,
) -> dict[str, dict[str, float]]:
    """The decision benchmark on held-out dispatch families (GroupKFold).

    Each model is fitted on the candidates of the training families and
    scored by :func:`group_metrics` on the candidates of the held-out ones;
    the metrics are computed on all out-of-fold predictions together. The
    compiler's choice is scored beside the models (``"compiler"``: its
    candidate first, the others tied).

    Parameters
    ----------
    texts, y, groups, families, is_default : sequences of one length
        Candidates, the target, their dispatch id, the dispatch family and
        whether the candidate is the compiler's choice.
    models : mapping
        Name -> unfitted estimator with ``fit(X, y, groups=...)``.
    target : str
        Target name (sets the orientation, :data:`HIGHER_IS_BETTER`).
    n_splits : int, default=5

    Returns
    -------
    dict
        Model name -> metrics, with ``fit_seconds`` (summed over folds).
    """
    texts = list(texts)
    y = np.asarray(y, dtype=np.float64)
    groups = np.asarray(groups, dtype=object)
    families = np.asarray(families, dtype=object)
    is_default = np.asarray(is_default, dtype=bool)
    sign = _sign(target)
    folds = _family_folds(texts, families, n_splits)
    out = {}
    for name, model in models.items():
        pred = np.full(len(y), np.nan)
        seconds = 0.0
        for train, test in folds:
            start = time.perf_counter()
            fitted = clone(model).fit(
                [texts[i] for i in train], sign * y[train], groups=groups[train]
            )
            seconds += time.perf_counter() - start
            pred[test] = sign * fitted.predict([texts[i] for i in test])
        metrics = group_metrics(y, pred, groups, is_default, higher_is_better=sign < 0)
        metrics["fit_seconds"] = seconds
        out[name] = metrics
    out["compiler"] = group_metrics(
        sign * y, _compiler_choice(is_default), groups, is_default
    )
    return out


def _family_folds(texts, families, n_splits: int) -> list:
    """GroupKFold by family: no dispatch's candidates on both sides."""
    n_splits = min(n_splits, len(np.unique(families)))
    return list(GroupKFold(n_splits=n_splits).split(texts, groups=families))


def evaluate_spills(
    texts: Sequence[str],
    spill_target,
    families,
    *,
    featurizer=None,
    n_splits: int = 5,
) -> dict[str, dict[str, float]]:
    """Spill detection on held-out dispatch families (GroupKFold).

    Two detectors on the same features and folds: an xgboost classifier
    (``binary:logistic``, the spilling class weighted by the square root of
    the training folds' non-spilling / spilling ratio; a spill where its
    probability reaches the threshold that maximizes the F1 of an inner
    GroupKFold by family on the training folds, :func:`_spill_classifier`)
    and an xgboost regression of ``log1p`` of the spill metric, read as a
    spill where its prediction is >= :data:`SPILL_THRESHOLD`. Both are scored
    by :func:`spill_classification` on all out-of-fold predictions together.

    Parameters
    ----------
    texts : sequence of str
        Candidates.
    spill_target : array-like of shape (n_samples,) or (n_samples, n_metrics)
        Spill metrics of the candidates (several columns: a candidate spills
        when any is > 0, see :func:`spill_labels`; the regression fits their
        sum).
    families : array-like
        The dispatch family of each candidate.
    featurizer : transformer, default=None
        None means :class:`~mlircost_classic.featurize.VariantFeaturizer`.
    n_splits : int, default=5

    Returns
    -------
    dict
        ``"classifier"`` and ``"regression"`` -> ``spill_precision``,
        ``spill_recall``, ``spill_f1``, ``spill_share``.
    """
    texts = list(texts)
    amount = np.nan_to_num(np.asarray(spill_target, dtype=np.float64))
    amount = amount.sum(axis=1) if amount.ndim == 2 else amount
    labels = spill_labels(spill_target)
    families = np.asarray(families, object)
    scores = {"classifier": np.zeros(len(texts)), "regression": np.zeros(len(texts))}
    for train, test in _family_folds(texts, families, n_splits):
        base = VariantFeaturizer() if featurizer is None else featurizer
        fitted = clone(base).fit([texts[i] for i in train])
        F_train = fitted.transform([texts[i] for i in train])
        F_test = fitted.transform([texts[i] for i in test])
        clf, threshold = _spill_classifier(F_train, labels[train], families[train])
        # Read as a spill where the score is >= 0.5: the probability moved by
        # the threshold chosen on the training folds.
        scores["classifier"][test] = (
            labels[train][0]
            if clf is None
            else (clf.predict_proba(F_test)[:, 1] >= threshold).astype(float)
        )
        reg = XGBRegressor(**_SPILL_PARAMS).fit(F_train, np.log1p(amount[train]))
        scores["regression"][test] = np.expm1(reg.predict(F_test))
    return {
        "classifier": spill_classification(labels, scores["classifier"], 0.5),
        "regression": spill_classification(amount, scores["regression"]),
    }


# Depth 8 as the ranker (spill F1 on held-out families, depth 6 -> 8: sm_80
# 0.907 -> 0.908, gfx942 0.852 -> 0.855; session 25).
_SPILL_PARAMS = dict(n_estimators=200, max_depth=8, n_jobs=1, random_state=0)
#: Decision thresholds the inner cross-validation of :func:`_spill_classifier`
#: chooses from.
SPILL_THRESHOLDS = np.round(np.linspace(0.05, 0.95, 19), 2)


def _spill_classifier(F, labels, families, n_splits: int = 4):
    """A spill classifier fitted on ``F`` and its decision threshold.

    The spilling class is weighted by ``sqrt(negatives / positives)``; the
    threshold is the one of :data:`SPILL_THRESHOLDS` with the best F1 on the
    out-of-fold probabilities of a GroupKFold by ``families`` within these
    rows (0.5 when fewer than two families or no spill reach it). Returns
    ``(None, nan)`` when ``labels`` hold one class.
    """
    if len(np.unique(labels)) < 2:
        return None, float("nan")
    weight = float(np.sqrt((labels == 0).sum() / labels.sum()))
    params = dict(_SPILL_PARAMS, scale_pos_weight=weight)
    threshold = 0.5
    if len(np.unique(families)) >= 2:
        proba = np.zeros(len(labels))
        for train, test in _family_folds(F, families, n_splits):
            if len(np.unique(labels[train])) < 2:
                proba[test] = labels[train][0]
                continue
            inner = XGBClassifier(**params).fit(F[train], labels[train])
            proba[test] = inner.predict_proba(F[test])[:, 1]
        f1 = [
            spill_classification(labels, proba, t)["spill_f1"] for t in SPILL_THRESHOLDS
        ]
        if not np.isnan(f1).all():
            threshold = float(SPILL_THRESHOLDS[int(np.nanargmax(f1))])
    return XGBClassifier(**params).fit(F, labels), threshold


class SpillClassifier(TextInputMixin, ClassifierMixin, BaseEstimator):
    """Does a candidate spill? An xgboost classifier of configured executables.

    The classifier of :func:`evaluate_spills` as an estimator: the spilling
    class weighted by ``sqrt(negatives / positives)``, and a spill read where
    the probability reaches :attr:`threshold_`, the one of
    :data:`SPILL_THRESHOLDS` with the best F1 on an inner GroupKFold by the
    ``groups`` (dispatch families) of the training candidates (0.5 without
    two groups).

    Parameters
    ----------
    featurizer : transformer, default=None
        Turns candidate texts into features; None means
        :class:`~mlircost_classic.featurize.VariantFeaturizer`.
    n_splits : int, default=4
        Inner folds that choose the threshold.

    Attributes
    ----------
    estimator_ : XGBClassifier or None
        None when the training labels held one class (:attr:`constant_`).
    threshold_ : float
    classes_ : ndarray, ``[0, 1]``

    Examples
    --------
    >>> clf = SpillClassifier().fit(texts, spill_bytes, groups=families)  # doctest: +SKIP
    >>> clf.predict_proba(candidates)[:, 1]  # doctest: +SKIP
    """

    _parameter_constraints: dict = {
        "featurizer": "no_validation",
        "n_splits": [Interval(Integral, 2, None, closed="left")],
    }
    _multi_output = False

    def __init__(self, *, featurizer=None, n_splits: int = 4):
        self.featurizer = featurizer
        self.n_splits = n_splits

    def fit(self, X, y, groups=None):
        """Fit on candidate texts and their spill metrics.

        Parameters
        ----------
        X : sequence of str
            Configured executables.
        y : array-like of shape (n_samples,) or (n_samples, n_metrics)
            Spill metrics (spill bytes, spill count; several columns: a
            candidate spills when any is > 0, :func:`spill_labels`).
        groups : array-like of shape (n_samples,), optional
            Dispatch family of each candidate, for the inner folds that
            choose the threshold.

        Returns
        -------
        self
        """
        self._validate_params()
        texts = list(X)
        labels = spill_labels(y)
        if len(texts) != len(labels):
            raise ValueError(f"X has {len(texts)} texts, y has {len(labels)} values")
        featurizer = VariantFeaturizer() if self.featurizer is None else self.featurizer
        self.featurizer_ = clone(featurizer).fit(texts)
        F = self.featurizer_.transform(texts)
        families = (
            np.zeros(len(texts), dtype=object)
            if groups is None
            else np.asarray(groups, dtype=object)
        )
        self.estimator_, self.threshold_ = _spill_classifier(
            F, labels, families, self.n_splits
        )
        if self.estimator_ is None:
            self.constant_ = float(labels[0])
            self.threshold_ = 0.5
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X) -> np.ndarray:
        """``[P(no spill), P(spill)]`` per candidate, shape (n_samples, 2)."""
        check_is_fitted(self, "threshold_")
        texts = list(X)
        if self.estimator_ is None:  # one class: nothing to featurize
            return self._proba(None, len(texts))
        return self._proba(self.featurizer_.transform(texts), len(texts))

    def _proba(self, F, n: int) -> np.ndarray:
        """:meth:`predict_proba` of ``n`` featurized candidates."""
        if self.estimator_ is None:
            p = np.full(n, self.constant_)
        else:
            p = self.estimator_.predict_proba(F)[:, 1]
        p = np.asarray(p, dtype=np.float64)
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """1 where a candidate is predicted to spill (probability >= threshold_)."""
        return (self.predict_proba(X)[:, 1] >= self.threshold_).astype(int)


@functools.lru_cache(maxsize=8)
def _bundled_ranker(target: str) -> VariantRanker:
    """The default ranker of ``target``: the shipped one of its hardware where
    it ranks by ``target``, else one fitted on the bundled variants."""
    from ..datasets import load_dataset
    from ._variant_models import shipped_hardware, variant_models

    hardware = shipped_hardware(target)
    if hardware is not None:
        return variant_models(hardware).ranker
    hardware = target.split(".", 1)[0]
    ds = load_dataset("variants", hardware=hardware, targets=target)
    if len(ds.data) == 0:
        raise ValueError(
            f"the bundled variants hold no candidate measured for {target}"
        )
    return VariantRanker().fit(
        ds.data, _sign(target) * ds.target[:, 0], groups=ds.groups
    )


def rank(
    texts: Sequence[str],
    *,
    target: str,
    model: VariantRanker | None = None,
    return_scores: bool = False,
):
    """Order candidate configurations of a dispatch, best first.

    Parameters
    ----------
    texts : sequence of str
        Configured executables (``--iree-hal-dump-executable-configurations-to``
        output, possibly edited), candidates of one dispatch.
    target : str
        What "better" means, e.g. ``"nvidia_sm80.registers"`` (fewer is
        better) or ``"amd_gfx942.occupancy"`` (more is better).
    model : VariantRanker, optional
        A fitted ranker whose scores are oriented for ``target``; default the
        shipped :class:`VariantRanker` of the target's hardware
        (:func:`~mlircost_classic.models.variant_models`) when it ranks by
        ``target``, else one with its default objective (ranker and
        regression) fitted on the bundled variants of that target (once per
        process).
    return_scores : bool, default=False
        Also return the score of each text (smaller = better).

    Returns
    -------
    order : ndarray of int
        Indices into ``texts``, best first.
    scores : ndarray, only with ``return_scores``

    Raises
    ------
    ValueError
        If ``texts`` is a single string or empty, or no bundled variant has
        ``target``.
    """
    if isinstance(texts, str):
        raise ValueError("texts must be a sequence of MLIR texts, not one str")
    texts = list(texts)
    if not texts:
        raise ValueError("no candidate to rank")
    ranker = model if model is not None else _bundled_ranker(target)
    scores = ranker.predict(texts)
    order = np.argsort(scores, kind="stable")
    return (order, scores) if return_scores else order
