"""Accuracy and ranking metrics of cost predictions, per target.

Every metric takes 1-D ``y_true`` and ``y_pred`` and ignores rows where either
is NaN (a record that lacks the target, or a target a model could not fit), so
a column of the dataset's 2-D target can be passed as it is. A metric with no
row left is NaN.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats
from sklearn.metrics import r2_score

__all__ = [
    "METRICS",
    "SPILL_METRICS",
    "SPILL_THRESHOLD",
    "interval_coverage",
    "is_spill_target",
    "kendall",
    "mape",
    "median_ape",
    "pairwise_ranking_accuracy",
    "r2_log",
    "spearman",
    "spill_classification",
    "target_scores",
]

_LARGEST = np.finfo(float).max


def _paired(y_true, y_pred, *others) -> tuple[np.ndarray, ...]:
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise ValueError(
            "y_true and y_pred must be 1-D arrays of the same length, got shapes "
            f"{y_true.shape} and {y_pred.shape}"
        )
    # A model on the log scale can overflow expm1 to inf: the largest float keeps
    # such a prediction the miss it is, and every metric finite or NaN.
    y_pred = np.clip(y_pred, -_LARGEST, _LARGEST)
    keep = ~(np.isnan(y_true) | np.isnan(y_pred))
    rest = []
    for other in others:
        other = np.asarray(other)
        if other.shape[:1] != y_true.shape:
            raise ValueError(
                f"expected {len(y_true)} values per row, got an array of shape "
                f"{other.shape}"
            )
        rest.append(other[keep])
    return (y_true[keep], y_pred[keep], *rest)


def _relative_errors(y_true, y_pred) -> np.ndarray:
    y_true, y_pred = _paired(y_true, y_pred)
    # Relative error is undefined where the truth is 0 (a module with no spill);
    # sklearn would divide by machine epsilon and report ~1e15 instead.
    nonzero = y_true != 0
    with np.errstate(over="ignore"):
        return np.abs(y_pred[nonzero] - y_true[nonzero]) / np.abs(y_true[nonzero])


def mape(y_true, y_pred) -> float:
    """Mean absolute percentage error, as a fraction (0.1 is 10%).

    Rows whose true value is 0 are left out: their relative error is undefined.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Measured and predicted values; NaN rows are ignored.

    Returns
    -------
    float

    Examples
    --------
    >>> mape([100.0, 200.0, 0.0], [110.0, 150.0, 3.0])
    0.175
    """
    errors = _relative_errors(y_true, y_pred)
    return float(np.mean(errors)) if errors.size else float("nan")


def median_ape(y_true, y_pred) -> float:
    """Median absolute percentage error, as a fraction; rows with a true 0 left out.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Measured and predicted values; NaN rows are ignored.

    Returns
    -------
    float

    Examples
    --------
    >>> median_ape([100.0, 200.0, 50.0], [110.0, 150.0, 50.0])
    0.1
    """
    errors = _relative_errors(y_true, y_pred)
    return float(np.median(errors)) if errors.size else float("nan")


def _correlation(function, y_true, y_pred) -> float:
    y_true, y_pred = _paired(y_true, y_pred)
    if y_true.size < 2:
        return float("nan")
    with warnings.catch_warnings():
        # A constant column has no rank correlation: scipy warns and returns NaN.
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return float(function(y_true, y_pred).statistic)


def spearman(y_true, y_pred) -> float:
    """Spearman rank correlation (:func:`scipy.stats.spearmanr`).

    NaN when fewer than two rows are left or either side is constant.

    Examples
    --------
    >>> round(spearman([1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 40.0, 30.0]), 4)
    0.8
    """
    return _correlation(stats.spearmanr, y_true, y_pred)


def kendall(y_true, y_pred) -> float:
    """Kendall's tau-b rank correlation (:func:`scipy.stats.kendalltau`).

    Examples
    --------
    >>> round(kendall([1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 40.0, 30.0]), 4)
    0.6667
    """
    return _correlation(stats.kendalltau, y_true, y_pred)


def r2_log(y_true, y_pred) -> float:
    """Coefficient of determination of ``log1p(y_pred)`` against ``log1p(y_true)``.

    Costs span orders of magnitude; on the log scale every module weighs the
    same. Negative predictions (a linear model on the raw scale) are clipped to
    0 first. NaN when a true value is negative: the log scale does not apply to
    such a target.

    Examples
    --------
    >>> r2_log([0.0, 9.0, 99.0], [0.0, 9.0, 99.0])
    1.0
    """
    y_true, y_pred = _paired(y_true, y_pred)
    if y_true.size < 2 or (y_true < 0).any():
        return float("nan")
    return float(r2_score(np.log1p(y_true), np.log1p(np.clip(y_pred, 0, None))))


def pairwise_ranking_accuracy(y_true, y_pred, groups=None) -> float:
    """Fraction of pairs of modules ordered as measured, within each group.

    A compiler that chooses between variants of one model family needs the
    order, not the values. Over all pairs ``(i, j)`` in the same group whose
    true values differ, a pair counts 1 when the predictions order it the same
    way, 0.5 when the predictions tie, 0 otherwise.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Measured and predicted values; NaN rows are ignored.
    groups : array-like of shape (n_samples,), default=None
        Group of each row (the model family); None compares all pairs.

    Returns
    -------
    float
        NaN when no group holds a pair with different true values.

    Examples
    --------
    >>> groups = ["a", "a", "a", "b", "b"]
    >>> pairwise_ranking_accuracy([1, 2, 3, 1, 2], [1, 3, 2, 5, 6], groups)
    0.75
    """
    if groups is None:
        groups = np.zeros(len(np.asarray(y_true)), dtype=int)
    y_true, y_pred, groups = _paired(y_true, y_pred, groups)
    right = 0.0
    pairs = 0
    for group in np.unique(groups):
        t = y_true[groups == group]
        p = y_pred[groups == group]
        upper = np.triu_indices(len(t), k=1)
        true_sign = np.sign(t[:, None] - t[None, :])[upper]
        pred_sign = np.sign(p[:, None] - p[None, :])[upper]
        counted = true_sign != 0
        agree = np.where(pred_sign == 0, 0.5, (true_sign == pred_sign).astype(float))
        right += agree[counted].sum()
        pairs += int(counted.sum())
    return float(right / pairs) if pairs else float("nan")


def interval_coverage(y_true, lower, upper) -> float | np.ndarray:
    """Fraction of measured values inside their prediction interval.

    Parameters
    ----------
    y_true, lower, upper : array-like of shape (n_samples,) or (n_samples, n_targets)
        Measured values and the interval bounds
        (:meth:`CostModel.predict_interval`); NaN rows are ignored per column.

    Returns
    -------
    float or ndarray of shape (n_targets,)
        Coverage per column (one float for 1-D input); NaN for a column with no
        measured value.

    Examples
    --------
    >>> interval_coverage([1.0, 5.0, float("nan"), 9.0], [0, 0, 0, 0], [2, 4, 6, 10])
    0.6666666666666666
    """
    y_true = np.asarray(y_true, dtype=float)
    lower = np.asarray(lower, dtype=float)
    upper = np.asarray(upper, dtype=float)
    if not (y_true.shape == lower.shape == upper.shape):
        raise ValueError(
            f"y_true, lower and upper must have one shape, got {y_true.shape}, "
            f"{lower.shape} and {upper.shape}"
        )
    measured = ~np.isnan(y_true)
    inside = (lower <= y_true) & (y_true <= upper) & measured
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = inside.sum(axis=0) / measured.sum(axis=0)
    return float(coverage) if np.ndim(coverage) == 0 else coverage


#: The per-target metrics :func:`evaluate` reports, by name. Each takes
#: ``(y_true, y_pred, groups)``.
METRICS = {
    "mape": lambda t, p, g: mape(t, p),
    "median_ape": lambda t, p, g: median_ape(t, p),
    "spearman": lambda t, p, g: spearman(t, p),
    "kendall": lambda t, p, g: kendall(t, p),
    "r2_log": lambda t, p, g: r2_log(t, p),
    "pairwise_accuracy": pairwise_ranking_accuracy,
}


#: Metrics (the part of a target name after the hardware) that are 0 for most
#: programs: register spills and stack or scratch memory. A ratio error means
#: nothing at 0, so :func:`evaluate` also scores them as a classification.
SPILL_METRICS = ("spill_bytes", "stack_bytes", "spills", "scratch_bytes")

#: A prediction at or above this counts as "spills": it rounds to a count of at
#: least 1 (byte, spill), as every positive label is.
SPILL_THRESHOLD = 0.5


def is_spill_target(name: str) -> bool:
    """Whether a target (``nvidia_sm80.spill_bytes``) is one of :data:`SPILL_METRICS`.

    Examples
    --------
    >>> is_spill_target("amd_gfx942.scratch_bytes"), is_spill_target("amd_gfx942.vgprs")
    (True, False)
    """
    return name.rpartition(".")[2] in SPILL_METRICS


def spill_classification(
    y_true, y_pred, threshold: float = SPILL_THRESHOLD
) -> dict[str, float]:
    """Does this program spill: the cost prediction read as a yes / no answer.

    A row spills when its label is above 0; it is predicted to when its
    prediction is at least ``threshold`` (a fixed rule, not a threshold tuned
    on the evaluation's labels).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Measured and predicted values; NaN rows are ignored.
    threshold : float, default=SPILL_THRESHOLD
        Smallest prediction that counts as a spill.

    Returns
    -------
    dict
        ``spill_precision`` (share of the predicted spills that spill; NaN
        when none is predicted), ``spill_recall`` (share of the spills that
        are predicted; NaN when none spills), ``spill_f1`` (their harmonic
        mean, ``2 TP / (2 TP + FP + FN)``; NaN when no row spills or is
        predicted to) and ``spill_share`` (share of the rows that spill, the rate an
        F1 compares with: always answering yes scores ``2s / (1 + s)``).

    Examples
    --------
    >>> spill_classification([0, 0, 8, 16], [0.1, 4.0, 6.0, 0.2])
    {'spill_precision': 0.5, 'spill_recall': 0.5, 'spill_f1': 0.5, 'spill_share': 0.5}
    """
    y_true, y_pred = _paired(y_true, y_pred)
    truth, said = y_true > 0, y_pred >= threshold
    hits = int((truth & said).sum())

    def share(part: int, whole: int) -> float:
        return part / whole if whole else math.nan

    return {
        "spill_precision": share(hits, int(said.sum())),
        "spill_recall": share(hits, int(truth.sum())),
        # 2 TP / (2 TP + FP + FN): 0 when every answer is wrong, NaN only when
        # nothing spills and nothing is predicted to.
        "spill_f1": share(2 * hits, int(said.sum() + truth.sum())),
        "spill_share": share(int(truth.sum()), truth.size),
    }


def target_scores(target: str, y_true, y_pred, groups=None) -> dict[str, float]:
    """Every metric of :data:`METRICS` for one target, and the spill scores of a spill target.

    Parameters
    ----------
    target : str
        The target's name (decides whether :func:`spill_classification` applies).
    y_true, y_pred : array-like of shape (n_samples,)
        Measured and predicted values; NaN rows are ignored.
    groups : array-like of shape (n_samples,), optional
        Family of each row, for the pairwise ranking accuracy.

    Returns
    -------
    dict of str -> float
    """
    scores = {name: metric(y_true, y_pred, groups) for name, metric in METRICS.items()}
    if is_spill_target(target):
        scores.update(spill_classification(y_true, y_pred))
    return scores
