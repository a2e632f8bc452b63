"""Each target from the model that predicts it best: modules, composed or stacked.

On programs unlike the training families the composed predictions (kernels
model on the partitioner's dispatch regions, :class:`ComposedCostModel`) rank
some module targets better than the modules model (code bytes, dispatches),
and worse others; the stacked model (a :class:`CostModel` reading both, with a
:class:`StackedFeaturizer`) ranks most held-out real networks best.
:class:`PerTargetCostModel` answers each target from the model named for it;
:func:`~mlircost_classic.models.load_pretrained` with ``kind="auto"`` builds
one from the shipped models and the choice recorded in
``composed-linalg.json`` (``benchmarks/composed_ood.py --write-defaults``).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from ..featurize._base import _check_documents
from ._base import TextInputMixin
from ._composed import shared_compositions

__all__ = ["PerTargetCostModel"]


class PerTargetCostModel(TextInputMixin, RegressorMixin, BaseEstimator):
    """Predict each target with the model ``choice`` names for it.

    Parameters
    ----------
    models : dict of str -> estimator
        Named module cost models taking MLIR texts, each with ``fit(X, y,
        target_names)``, ``predict`` and ``target_names_`` once fitted
        (:class:`CostModel`, :class:`ComposedCostModel`).
    choice : dict of str -> str
        Target -> the name of the model that predicts it.
    default : str
        The model of targets ``choice`` does not name; its targets are the
        model's targets.

    Attributes
    ----------
    models_ : dict of str -> estimator
        The fitted models.
    target_names_ : list of str
        The targets of ``models_[default]``.
    chosen_ : list of str
        The model answering each target.

    Examples
    --------
    >>> import mlircost_classic as mc
    >>> model = mc.load_pretrained("auto", "linalg")
    >>> sorted(set(model.chosen_))
    ['composed', 'stacked']
    """

    def __init__(self, models, choice, default="modules"):
        self.models = models
        self.choice = choice
        self.default = default

    def _check_models(self) -> None:
        if self.default not in self.models:
            raise ValueError(f"default {self.default!r} is not one of the models")
        unknown = set(self.choice.values()) - set(self.models)
        if unknown:
            raise ValueError(f"choice names models that are not given: {unknown}")

    def _set_chosen(self) -> None:
        self.target_names_ = list(self.models_[self.default].target_names_)
        self.chosen_ = [self.choice.get(t, self.default) for t in self.target_names_]
        for target, name in zip(self.target_names_, self.chosen_, strict=True):
            if target not in self.models_[name].target_names_:
                raise ValueError(f"model {name!r} does not predict {target}")

    def fit(self, X, y, target_names=None):
        """Fit a clone of every model on the same documents and targets.

        Parameters
        ----------
        X : iterable of str
            Module texts.
        y : array-like of shape (n_samples, n_targets)
            Measured targets, NaN where missing.
        target_names : list of str, optional

        Returns
        -------
        self
        """
        self._check_models()
        X = _check_documents(X)
        self.models_ = {
            name: clone(model).fit(X, y, target_names=target_names)
            for name, model in self.models.items()
        }
        self._set_chosen()
        return self

    @classmethod
    def from_fitted(cls, models, choice, default="modules") -> PerTargetCostModel:
        """Combine models that are fitted already (used as they are).

        Parameters
        ----------
        models, choice, default
            As in the class parameters; every model is fitted.

        Returns
        -------
        PerTargetCostModel
        """
        model = cls(models, choice, default)
        model._check_models()
        for m in models.values():
            check_is_fitted(m, "target_names_")
        model.models_ = dict(models)
        model._set_chosen()
        return model

    @property
    def confidence(self) -> float | None:
        """The intervals' confidence (the default model's)."""
        return getattr(self.models_[self.default], "confidence", None)

    @property
    def conformal_quantiles_(self) -> list | None:
        """The default model's, where it has intervals (:meth:`predict_interval`)."""
        return getattr(self.models_[self.default], "conformal_quantiles_", None)

    def _columns(self, name: str) -> tuple[list[int], list[int]]:
        """Columns of ``self`` answered by model ``name``, and theirs in it."""
        mine = [j for j, c in enumerate(self.chosen_) if c == name]
        names = list(self.models_[name].target_names_)
        return mine, [names.index(self.target_names_[j]) for j in mine]

    def _gather(self, X, interval: bool) -> list[np.ndarray]:
        X = _check_documents(X)
        parts = 3 if interval else 1
        out = [np.full((len(X), len(self.target_names_)), np.nan) for _ in range(parts)]
        with shared_compositions():  # the composed and the stacked model: once
            self._fill(X, interval, out)
        return out

    def _fill(self, X, interval: bool, out: list[np.ndarray]) -> None:
        for name in dict.fromkeys(self.chosen_):
            mine, theirs = self._columns(name)
            model = self.models_[name]
            if interval and getattr(model, "conformal_quantiles_", None) is not None:
                got = model.predict_interval(X, return_prediction=True)
            else:
                got = (model.predict(X),)
            # Without intervals only the point is filled; the bounds stay NaN.
            for o, g in zip(out, got, strict=False):
                o[:, mine] = np.asarray(g).reshape(len(X), -1)[:, theirs]

    def predict(self, X) -> np.ndarray:
        """Every target, each from its chosen model.

        Parameters
        ----------
        X : iterable of str
            Module texts.

        Returns
        -------
        ndarray of shape (n_samples, n_targets)
        """
        check_is_fitted(self, "models_")
        return self._gather(X, interval=False)[0]

    def predict_interval(self, X, *, return_prediction: bool = False):
        """Each target's interval from its chosen model (NaN where it has none).

        Parameters
        ----------
        X : iterable of str
            Module texts.
        return_prediction : bool, default=False
            Also return the point prediction, first.

        Returns
        -------
        prediction : ndarray, only with ``return_prediction=True``
        lower, upper : ndarray of shape (n_samples, n_targets)
            NaN in the columns of a model fitted without intervals.
        """
        check_is_fitted(self, "models_")
        point, lower, upper = self._gather(X, interval=True)
        return (point, lower, upper) if return_prediction else (lower, upper)

    def novelty(self, X) -> list[list[str]]:
        """Every used model's reasons why a document is far from its training data.

        Parameters
        ----------
        X : iterable of str
            Module texts.

        Returns
        -------
        list of list of str
            One list per document, from the models that answer a target;
            reasons of the non-default models are prefixed with the model's
            name.
        """
        check_is_fitted(self, "models_")
        X = _check_documents(X)
        reasons: list[list[str]] = [[] for _ in X]
        for name in dict.fromkeys(self.chosen_):
            found = self.models_[name].novelty(X)
            prefix = "" if name == self.default else f"{name}: "
            for row, why in zip(reasons, found, strict=True):
                row.extend(prefix + w for w in why)
        return reasons
