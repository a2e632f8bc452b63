"""A module's own features beside its composed aggregates (stacking).

The modules model reads the whole text; the composed model
(:class:`~mlircost_classic.models.ComposedCostModel`) aggregates the kernels
model's predictions on the module's dispatch regions. Each is right where the
other is wrong: on held-out real networks the modules model ranks CUDA
registers better, the composed one code bytes and dispatches.
:class:`StackedFeaturizer` gives a :class:`~mlircost_classic.models.CostModel`
both: the columns of an :class:`~mlircost_classic.featurize.MLIRFeaturizer`
followed by ``log1p`` of the module's composed aggregates (one column per
kernel target, by the collector's rule, and the number of dispatches), so that
the trees learn when to trust which.
"""

from __future__ import annotations

import os

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from ..featurize import MLIRFeaturizer
from ..featurize._base import _check_documents
from ._composed import _PARTITIONERS, _compose_texts, _kernels_model
from ._cost_model import CostModel

__all__ = ["COMPOSED_PREFIX", "StackedFeaturizer"]

#: Prefix of the composed columns' names.
COMPOSED_PREFIX = "composed "
_DISPATCHES = "cpu_x86_64_v3.dispatches"


def composed_columns(kernel_names) -> list[str]:
    """The module targets a kernels model composes: its own targets and the dispatch count."""
    return [*kernel_names, _DISPATCHES]


class StackedFeaturizer(TransformerMixin, BaseEstimator):
    """An MLIR featurizer's columns, then the module's composed aggregates.

    The composed columns are ``log1p`` of what
    :func:`~mlircost_classic.models.compose_regions` gives for each of the
    kernels model's targets (aggregated over the module's dispatch regions by
    the collector's rule: sum, calls x per call, max, min) and for the number
    of dispatches; 0 where nothing is composed (a module without regions).
    Zeros are stored as the sparse matrix's absent entries, as the text
    featurizer's are: missing values to the trees.

    Fitting learns only the text featurizer; the kernels model is fitted
    already. So a model fitted on modules whose kernels the kernels model was
    fitted on sees better composed columns in training than it will on new
    programs; score such a model on folds whose kernels model left out the
    held-out groups (``benchmarks/composed_ood.py``).

    Parameters
    ----------
    featurizer : transformer, default=None
        The text featurizer; None means ``MLIRFeaturizer()``. Cloned at fit.
    kernel_model : "pretrained", path-like or CostModel, default="pretrained"
        The fitted kernels model (as in :class:`ComposedCostModel`).
    partitioner : {"python", "iree"}, default="python"
        Where the dispatch regions come from (as in :class:`ComposedCostModel`).

    Attributes
    ----------
    featurizer_ : transformer
        The fitted text featurizer.
    kernel_model_ : CostModel
        The kernels model used.
    composed_names_ : list of str
        The module targets of the composed columns, in order.
    """

    _parameter_constraints: dict = {
        "featurizer": "no_validation",
        "kernel_model": [StrOptions({"pretrained"}), str, os.PathLike, CostModel],
        "partitioner": [StrOptions(set(_PARTITIONERS))],
    }

    def __init__(
        self, featurizer=None, kernel_model="pretrained", partitioner="python"
    ):
        self.featurizer = featurizer
        self.kernel_model = kernel_model
        self.partitioner = partitioner

    def __sklearn_clone__(self):
        # The kernels model is a fitted model used as is, never refitted: a
        # clone shares it (sklearn's clone would return it unfitted).
        featurizer = None if self.featurizer is None else clone(self.featurizer)
        return type(self)(
            featurizer=featurizer,
            kernel_model=self.kernel_model,
            partitioner=self.partitioner,
        )

    def _load_kernels(self) -> CostModel:
        return _kernels_model(self.kernel_model)

    def _start(self) -> None:
        self._validate_params()
        self.featurizer_ = (
            MLIRFeaturizer() if self.featurizer is None else clone(self.featurizer)
        )
        self.kernel_model_ = self._load_kernels()
        self.composed_names_ = composed_columns(self.kernel_model_.target_names_)

    def fit(self, X, y=None):
        """Fit the text featurizer and load the kernels model.

        Parameters
        ----------
        X : iterable of str
            Module texts.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        self._start()
        self.featurizer_.fit(_check_documents(X))
        return self

    def fit_transform(self, X, y=None):
        """Fit, then the rows of :meth:`transform` (each text read once by the featurizer)."""
        self._start()
        docs = _check_documents(X)
        text = self.featurizer_.fit_transform(docs)
        return self._stack(text, self._composed(docs))

    def transform(self, X):
        """The text featurizer's columns, then the composed ones.

        Parameters
        ----------
        X : iterable of str
            Module texts.

        Returns
        -------
        sparse matrix (CSR) or ndarray of shape (n_documents, n_features)
            Sparse when the text featurizer's output is.
        """
        check_is_fitted(self, "composed_names_")
        docs = _check_documents(X)
        return self._stack(self.featurizer_.transform(docs), self._composed(docs))

    def _composed(self, docs: list) -> np.ndarray:
        if any(not isinstance(d, str) for d in docs):
            raise TypeError("StackedFeaturizer reads MLIR texts (str), one per module")
        raw = _compose_texts(
            self.kernel_model_, docs, self.partitioner, self.composed_names_
        )[0]
        with np.errstate(invalid="ignore"):
            return np.nan_to_num(np.log1p(np.maximum(raw, 0.0)), nan=0.0)

    @staticmethod
    def _stack(text, composed: np.ndarray):
        if sparse.issparse(text):
            block = sparse.csr_matrix(composed.astype(text.dtype, copy=False))
            return sparse.hstack([text, block], format="csr")
        return np.hstack([text, composed.astype(text.dtype, copy=False)])

    @property
    def _sparse(self) -> bool:
        return getattr(getattr(self, "featurizer_", None), "_sparse", False) is True

    def _dense_rows(self, X) -> np.ndarray:
        """``transform(X).toarray()`` in float64 (the model's few-documents path)."""
        check_is_fitted(self, "composed_names_")
        docs = _check_documents(X)
        return np.hstack([self.featurizer_._dense_rows(docs), self._composed(docs)])

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """The text featurizer's names, then ``composed <target>``."""
        check_is_fitted(self, "composed_names_")
        names = [str(n) for n in self.featurizer_.get_feature_names_out()]
        names += [f"{COMPOSED_PREFIX}{t}" for t in self.composed_names_]
        return np.asarray(names, dtype=object)
