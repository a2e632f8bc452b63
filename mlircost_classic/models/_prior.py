"""Boosting from a prior: a least-squares fit on a few columns, a regressor on the rest.

Trees do not extrapolate: a module twice as large as any of its family's
training modules gets the largest leaf the trees have, not a larger cost. The
roofline (``log1p(cost) = a + b log1p(FLOPs) + c log1p(bytes)``) extrapolates
but misses everything that is not FLOPs or bytes. :class:`PriorRegressor`
fits the roofline first and the regressor (xgboost by default in
:class:`~mlircost_classic.models.CostModel`) on what it leaves, and predicts
their sum: the trees correct the physics instead of replacing it.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.linear_model import LinearRegression
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["PriorRegressor"]


def _matrix(X):
    return X if sparse.issparse(X) else np.asarray(X, dtype=float)


def _columns_of(X, columns) -> np.ndarray:
    block = _matrix(X)[:, columns]
    if sparse.issparse(block):
        block = block.toarray()
    return np.asarray(block, dtype=float)


class PriorRegressor(RegressorMixin, BaseEstimator):
    """``regressor`` fitted on the residual of a linear fit on a few columns.

    Fit: ordinary least squares of ``y`` on ``X[:, columns]`` (the prior), then
    ``regressor`` on ``y - prior(X)`` with all of ``X``. Predict: the sum of
    the two. :class:`~mlircost_classic.models.CostModel` puts it around every
    per-target regressor with ``prior="roofline"`` (the columns are
    ``log1p FLOPs total`` and ``log1p bytes moved total``, and for log targets
    the fit is on ``log1p(y)``: the :class:`RooflineBaseline` of that target).

    Parameters
    ----------
    regressor : regressor
        Fitted on the residuals (cloned).
    columns : sequence of int
        Columns of ``X`` the prior is fitted on.

    Attributes
    ----------
    prior_ : LinearRegression
        The fitted prior (``coef_`` per column of ``columns``, ``intercept_``).
    prior_mean_ : ndarray of shape (len(columns),)
        Training means of the prior's columns (the reference of its SHAP values).
    regressor_ : regressor
        The fitted residual regressor.
    n_features_in_ : int
        Width of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> X = np.arange(20.0).reshape(10, 2)
    >>> y = 3 * X[:, 0] + 1
    >>> model = PriorRegressor(DecisionTreeRegressor(max_depth=1), columns=[0]).fit(X, y)
    >>> round(float(model.predict([[40.0, 41.0]])[0]), 6)  # extrapolates, unlike the tree
    121.0
    """

    _parameter_constraints: dict = {
        "regressor": [HasMethods(["fit", "predict"])],
        "columns": ["array-like"],
    }

    def __init__(self, regressor, columns):
        self.regressor = regressor
        self.columns = columns

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            tags.input_tags.sparse = get_tags(self.regressor).input_tags.sparse
        except Exception:  # noqa: BLE001 - a regressor without sklearn tags
            tags.input_tags.sparse = False
        return tags

    def _prior_input(self, X) -> np.ndarray:
        return _columns_of(X, list(self.columns))

    def fit(self, X, y):
        """Fit the prior, then the regressor on its residuals.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        self._validate_params()
        X, y = validate_data(self, X, y, y_numeric=True, **self._input_rules())
        outside = [c for c in self.columns if not 0 <= c < X.shape[1]]
        if outside:
            raise ValueError(
                f"prior columns {outside} are outside X, which has "
                f"{X.shape[1]} feature(s)"
            )
        y = np.asarray(y, dtype=float)
        P = self._prior_input(X)
        self.prior_ = LinearRegression().fit(P, y)
        self.prior_mean_ = P.mean(axis=0)
        residual = y - self.prior_.predict(P)
        self.regressor_ = clone(self.regressor).fit(X, residual)
        return self

    def _input_rules(self) -> dict:
        """What ``validate_data`` accepts: sparse input if the regressor does.

        NaN is refused whatever the regressor: the least-squares prior cannot
        fit it.
        """
        sparse_ok = self.__sklearn_tags__().input_tags.sparse
        return {"accept_sparse": ("csr", "csc") if sparse_ok else False}

    def _validated(self, X):
        check_is_fitted(self, "prior_")
        return validate_data(self, X, reset=False, **self._input_rules())

    def predict_prior(self, X) -> np.ndarray:
        """The prior's part of the prediction."""
        return self.prior_.predict(self._prior_input(self._validated(X)))

    def predict(self, X) -> np.ndarray:
        """Prior plus residual regressor.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        X = self._validated(X)
        return self.prior_.predict(self._prior_input(X)) + self.regressor_.predict(X)

    def prior_contributions(self, X) -> tuple[np.ndarray, float]:
        """The prior's SHAP values: per-column contributions and the base value.

        For a linear term the exact SHAP value of a column is its coefficient
        times the column's distance from its training mean; the base value is
        the prior at the training means. Contributions plus base value give
        :meth:`predict_prior`.

        Returns
        -------
        contributions : ndarray of shape (n_samples, n_features)
            Zero outside ``columns``.
        base : float
        """
        check_is_fitted(self, "prior_")
        X = _matrix(X)
        coef = np.asarray(self.prior_.coef_, dtype=float)
        mean = np.asarray(
            getattr(self, "prior_mean_", np.zeros(coef.size)), dtype=float
        )
        out = np.zeros((X.shape[0], X.shape[1]))
        out[:, list(self.columns)] = (self._prior_input(X) - mean) * coef
        return out, float(self.prior_.intercept_ + coef @ mean)
