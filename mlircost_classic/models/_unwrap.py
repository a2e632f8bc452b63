"""What one fitted per-target estimator of a cost model is made of, and its SHAP values.

A per-target estimator of :class:`~mlircost_classic.models.CostModel` is a
regressor (xgboost, or a ``StandardScaler`` + linear pipeline), optionally
boosted from a roofline (:class:`~mlircost_classic.models.PriorRegressor`),
optionally fitted on ``log1p`` of the target (a ``TransformedTargetRegressor``).
:func:`unwrap` takes those layers apart once for everyone who needs them (the
compiled forest, saving, explanations, reports); :func:`shap_values` is the
one implementation of its per-feature contributions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.compose import TransformedTargetRegressor

from ._prior import PriorRegressor

__all__ = ["Unwrapped", "shap_values", "unwrap"]


@dataclass(frozen=True)
class Unwrapped:
    """The layers of a fitted per-target estimator.

    Attributes
    ----------
    fitted_scale : regressor
        What predicts on the scale the target was fitted on (``log1p(y)`` for a
        log target): the estimator without its log wrapper.
    log : bool
        Whether the target was fitted on ``log1p``.
    prior : PriorRegressor or None
        The roofline prior, if any.
    regressor : regressor
        The innermost regressor: xgboost, or a scaler + linear pipeline.
    """

    fitted_scale: object
    log: bool
    prior: PriorRegressor | None
    regressor: object


def unwrap(estimator) -> Unwrapped:
    """Take a fitted per-target estimator apart (see :class:`Unwrapped`).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from mlircost_classic.models._base import log_wrapped
    >>> est = log_wrapped(LinearRegression()).fit(np.eye(3), [1.0, 2.0, 3.0])
    >>> parts = unwrap(est)
    >>> parts.log, parts.prior, type(parts.regressor).__name__
    (True, None, 'LinearRegression')
    """
    log = isinstance(estimator, TransformedTargetRegressor)
    fitted_scale = estimator.regressor_ if log else estimator
    if isinstance(fitted_scale, PriorRegressor):
        return Unwrapped(fitted_scale, log, fitted_scale, fitted_scale.regressor_)
    return Unwrapped(fitted_scale, log, None, fitted_scale)


def booster_of(estimator):
    """The xgboost ``Booster`` inside a fitted per-target estimator.

    Raises
    ------
    TypeError
        If its regressor is not an xgboost model.
    """
    inner = unwrap(estimator).regressor
    if not hasattr(inner, "get_booster"):
        raise TypeError(f"expected an xgboost regressor, got {type(inner).__name__}")
    return inner.get_booster()


def shap_values(estimator, F) -> tuple[np.ndarray, np.ndarray]:
    """Exact tree SHAP values (xgboost ``pred_contribs=True``), prior included.

    Parameters
    ----------
    estimator : regressor
        A fitted per-target estimator whose regressor is xgboost.
    F : array-like or sparse matrix of shape (n_samples, n_features)
        Features, as the model's featurizer makes them. A sparse matrix is
        passed on as it is, so that its implicit zeros are read as xgboost
        read them in fit.

    Returns
    -------
    contributions : ndarray of shape (n_samples, n_features)
        Contribution of each feature to each prediction; with a roofline
        prior, its columns also carry the prior's exact (linear) SHAP values.
    bias : ndarray of shape (n_samples,)
        The expected value; ``bias + contributions.sum(axis=1)`` is the
        prediction on the fitted scale.

    Raises
    ------
    TypeError
        If the regressor is not an xgboost model.
    """
    from xgboost import DMatrix

    contribs = booster_of(estimator).predict(DMatrix(F), pred_contribs=True)
    values, bias = contribs[:, :-1].astype(float), contribs[:, -1].astype(float)
    prior = unwrap(estimator).prior
    if prior is not None:
        terms, intercept = prior.prior_contributions(F)
        values, bias = values + terms, bias + intercept
    return values, bias
