"""Feature importance of one fitted per-target estimator of a :class:`CostModel`.

Each function takes one entry of ``CostModel.estimators_`` (an ``XGBRegressor``
or a linear pipeline, wrapped in a ``TransformedTargetRegressor`` when the
target is fitted on ``log1p``) and the feature matrix the model's featurizer
made, and answers on the scale the estimator was fitted on: ``log1p`` of the
target for log targets, the target itself otherwise. SHAP values are
:func:`mlircost_classic.models.shap_values`, re-exported here.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.inspection import permutation_importance
from sklearn.metrics import r2_score
from sklearn.pipeline import Pipeline

from ..models._unwrap import booster_of, shap_values, unwrap

__all__ = [
    "gain_importance",
    "linear_coefficients",
    "permutation_importances",
    "shap_values",
]


def gain_importance(estimator, n_features: int) -> np.ndarray:
    """Total gain of the splits on each feature (xgboost ``total_gain``).

    With a roofline prior (:class:`~mlircost_classic.models.PriorRegressor`),
    the gain is the trees' only: what the features add to the roofline.

    Parameters
    ----------
    estimator : XGBRegressor or TransformedTargetRegressor of one
        A fitted per-target estimator.
    n_features : int
        Columns of the feature matrix it was fitted on.

    Returns
    -------
    ndarray of shape (n_features,)
        Gain per column, 0 for a column no split uses.
    """
    booster = booster_of(estimator)
    scores = booster.get_score(importance_type="total_gain")
    names = booster.feature_names
    column = (
        {name: i for i, name in enumerate(names)}
        if names is not None
        else {f"f{i}": i for i in range(n_features)}
    )
    gain = np.zeros(n_features)
    for name, value in scores.items():
        gain[column[name]] = value
    return gain


def linear_coefficients(estimator) -> np.ndarray:
    """Coefficients of a linear per-target model, per standard deviation of each feature.

    :class:`CostModel` puts a ``StandardScaler(with_mean=False)`` in front of
    linear models, so the coefficients of the fitted regressor are the change
    of the prediction (on the fitted scale) for one standard deviation more of
    the feature: comparable across features of different units. With a
    roofline prior these are the coefficients of the model of its residuals;
    the prior's own (per unit of ``log1p`` FLOPs and bytes) are in
    ``PriorRegressor.prior_``.

    Parameters
    ----------
    estimator : Pipeline or TransformedTargetRegressor of one
        A fitted per-target linear estimator (anything whose last step has
        ``coef_``).

    Returns
    -------
    ndarray of shape (n_features,)
    """
    inner = unwrap(estimator).regressor
    last = inner.steps[-1][1] if isinstance(inner, Pipeline) else inner
    if not hasattr(last, "coef_"):
        raise TypeError(f"expected a linear regressor, got {type(last).__name__}")
    return np.ravel(last.coef_).astype(float)


class _OnColumns:
    """Predict from a few columns put back into a fixed feature matrix.

    ``permutation_importance`` shuffles every column it is given and cannot take
    a sparse matrix; this shows it only the candidate columns, dense, and
    rebuilds the model's own input (sparse again where it was) to predict.
    """

    def __init__(self, regressor, F, columns):
        self.regressor = regressor
        self.sparse = sparse.issparse(F)
        self.F = F.toarray() if self.sparse else np.array(F, dtype=float)
        self.columns = np.asarray(columns)

    def fit(self, X, y=None):  # permutation_importance checks for it; never called
        return self

    def predict(self, X_columns):
        F = self.F.copy()
        F[:, self.columns] = X_columns
        # csr_matrix drops the zeros, as the featurizer's sparse output does.
        return self.regressor.predict(sparse.csr_matrix(F) if self.sparse else F)


def _r2(model, X, y) -> float:
    return r2_score(y, model.predict(X))


def permutation_importances(
    estimator,
    F,
    y,
    columns,
    *,
    n_repeats: int = 5,
    random_state=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Drop of R² when one feature is shuffled, on held-out rows.

    R² is computed on the scale the estimator was fitted on (``log1p`` for a
    log target: every module weighs the same), and only the given columns are
    shuffled: the n-gram block is wide and mostly unused.

    Parameters
    ----------
    estimator : regressor
        A fitted per-target estimator of a :class:`CostModel`.
    F : array-like or sparse matrix of shape (n_samples, n_features)
        Features of the held-out rows.
    y : array-like of shape (n_samples,)
        Measured target of those rows (on its own scale; no NaN).
    columns : array-like of int
        Columns to shuffle.
    n_repeats : int, default=5
        Shuffles per column.
    random_state : int, RandomState or None, default=None
        Seeds the shuffles.

    Returns
    -------
    mean, std : ndarray of shape (len(columns),)
        Mean and standard deviation over the repeats of the R² drop.
    """
    parts = unwrap(estimator)
    y = np.asarray(y, dtype=float)
    if parts.log:
        y = np.log1p(y)
    columns = np.asarray(columns, dtype=int)
    model = _OnColumns(parts.fitted_scale, F, columns)
    result = permutation_importance(
        model,
        model.F[:, columns],
        y,
        scoring=_r2,
        n_repeats=n_repeats,
        random_state=random_state,
    )
    return result.importances_mean, result.importances_std
