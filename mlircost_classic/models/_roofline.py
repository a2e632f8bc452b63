"""The roofline baseline: a cost as a power law of FLOPs and bytes moved."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_is_fitted

from ..featurize import ShapeFeatures
from ._base import PerTargetRegressor, log_wrapped

__all__ = ["RooflineBaseline"]


def _log_columns(F, columns):
    block = F[:, columns]
    if sparse.issparse(block):
        block = block.toarray()
    return np.log1p(np.clip(np.asarray(block, dtype=float), 0, None))


class RooflineBaseline(PerTargetRegressor):
    """The best a hand-written analytical model does: a fitted roofline.

    Each target is fitted, by ordinary least squares, as

    ``log1p(y) = a + b * log1p(FLOPs) + c * log1p(bytes)``

    i.e. ``y ~ e^a * FLOPs^b * bytes^c``, with FLOPs and bytes moved estimated
    by :class:`~mlircost_classic.featurize.ShapeFeatures` (columns
    ``FLOPs total`` and ``bytes moved total``). This log-linear form rather than
    the textbook ``max(FLOPs / P, bytes / B)`` because: it contains both limits
    (``b = 1, c = 0`` is compute-bound, ``b = 0, c = 1`` memory-bound); a whole
    module mixes compute- and memory-bound kernels, so its cost is closer to a
    weighted product than to one maximum; several targets (instructions, code
    size, registers) are not throughput times at all; and a three-coefficient
    least-squares fit in log space is convex and stable on a few dozen rows,
    where fitting the two peaks of a ``max`` is not. A target with negative
    values is fitted on its raw scale with the same two log features.

    Fitting, NaN handling and prediction follow :class:`CostModel`: one fit per
    target on the rows where it is measured, one prediction column per target.

    Parameters
    ----------
    featurizer : transformer, default=None
        Gives the FLOP and byte columns (by name, through
        ``get_feature_names_out``); None means ``ShapeFeatures(log_scale=False)``.
        Cloned at fit.
    flops_feature : str, default="FLOPs total"
        Name of the FLOP column.
    bytes_feature : str, default="bytes moved total"
        Name of the bytes-moved column.

    Attributes
    ----------
    featurizer_ : transformer
        The fitted featurizer.
    target_names_ : list of str
        Target names, in column order.
    log_targets_ : list of bool
        Whether each target is fitted on the log scale (all non-negative ones).
    estimators_ : list
        Fitted regressor of each target (None for a target without a row).
    coef_ : ndarray of shape (n_targets, 3)
        ``a``, ``b`` and ``c`` per target (NaN for a target without a row).

    Examples
    --------
    >>> from mlircost_classic.models import RooflineBaseline
    >>> texts = [f'''func.func @f(%a: tensor<{n}xf32>) -> tensor<{n}xf32> {{
    ...   %0 = arith.addf %a, %a : tensor<{n}xf32>
    ...   return %0 : tensor<{n}xf32>
    ... }}''' for n in (4, 8, 16, 32)]
    >>> roofline = RooflineBaseline().fit(texts, [3.0, 5.0, 9.0, 17.0])
    >>> roofline.coef_.shape
    (1, 3)
    """

    _parameter_constraints: dict = {
        "featurizer": [HasMethods(["fit_transform", "get_feature_names_out"]), None],
        "flops_feature": [str],
        "bytes_feature": [str],
    }

    def __init__(
        self,
        *,
        featurizer=None,
        flops_feature="FLOPs total",
        bytes_feature="bytes moved total",
    ):
        self.featurizer = featurizer
        self.flops_feature = flops_feature
        self.bytes_feature = bytes_feature

    def _make_featurizer(self):
        if self.featurizer is None:
            return ShapeFeatures(log_scale=False)
        return clone(self.featurizer)

    def _log_flags(self, Y: np.ndarray) -> list[bool]:
        return [bool(np.nanmin(Y[:, j], initial=0.0) >= 0) for j in range(Y.shape[1])]

    def _columns(self) -> list[int]:
        names = [str(n) for n in self.featurizer_.get_feature_names_out()]
        missing = [
            n for n in (self.flops_feature, self.bytes_feature) if n not in names
        ]
        if missing:
            raise ValueError(
                f"the featurizer has no column {missing[0]!r}; its columns are "
                f"{names[:20]}{' ...' if len(names) > 20 else ''}"
            )
        return [names.index(self.flops_feature), names.index(self.bytes_feature)]

    def _make_estimator(
        self, log: bool, seed: int | None, n_samples: int, target: str | None = None
    ):
        select = FunctionTransformer(_log_columns, kw_args={"columns": self._columns()})
        regressor = make_pipeline(select, LinearRegression())
        return log_wrapped(regressor) if log else regressor

    def fit(self, X, y, target_names=None):
        """Fit ``a``, ``b`` and ``c`` per target.

        Parameters
        ----------
        X : iterable of str or ParsedModule
            MLIR documents.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Measured costs; NaN where a document lacks a target.
        target_names : list of str, optional
            One name per target column.

        Returns
        -------
        self
        """
        super().fit(X, y, target_names=target_names)
        self.coef_ = np.full((len(self.target_names_), 3), np.nan)
        for j, estimator in enumerate(self.estimators_):
            if estimator is None:
                continue
            pipeline = estimator.regressor_ if self.log_targets_[j] else estimator
            linear = pipeline[-1]
            self.coef_[j] = [linear.intercept_, *linear.coef_]
        return self

    def predict(self, X) -> np.ndarray:
        """Predict every target from FLOPs and bytes.

        Parameters
        ----------
        X : iterable of str or ParsedModule
            MLIR documents.

        Returns
        -------
        ndarray of shape (n_samples, n_targets), or (n_samples,) when fitted on 1-D y
        """
        check_is_fitted(self, "coef_")
        return super().predict(X)
