"""Why a cost model predicts what it does for one program.

:func:`explain` splits one prediction of a fitted :class:`CostModel` into signed
per-feature contributions: xgboost's own SHAP values (``pred_contribs``) for a
boosted target, ``coefficient * standardized value`` for a linear one. The
contributions and the base value add up to the model's raw output, which is
``log1p`` of the prediction for targets fitted on the log scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ..datasets import resolve_target
from ._names import readable_feature_name
from ._unwrap import shap_values, unwrap

__all__ = ["Contribution", "Explanation", "explain"]


@dataclass(frozen=True)
class Contribution:
    """One feature's share of a prediction.

    Attributes
    ----------
    feature : str
        Column name of the featurizer (``shapes__FLOPs total``).
    name : str
        The same in words (``estimated FLOPs (total)``).
    value : float
        The feature's value for this program.
    contribution : float
        Signed contribution to the model's raw output (log scale for a log
        target: +0.69 doubles ``1 + prediction``).
    """

    feature: str
    name: str
    value: float
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """A prediction split into per-feature contributions (see :func:`explain`).

    Attributes
    ----------
    target : str
        Target name.
    prediction : float
        The model's prediction, in the target's units.
    log_scale : bool
        Whether contributions are on the ``log1p`` scale.
    base_value : float
        Raw output before any feature is known (xgboost's bias term, or the
        linear model's intercept).
    contributions : list of Contribution
        The ``top`` largest contributions by absolute value, largest first.
    rest : float
        Sum of the contributions not listed.
    n_features : int
        Number of features the model sees.
    method : str
        ``"xgboost pred_contribs (SHAP)"`` or ``"linear coefficients"``.
    """

    target: str
    prediction: float
    log_scale: bool
    base_value: float
    contributions: list[Contribution] = field(default_factory=list)
    rest: float = 0.0
    n_features: int = 0
    method: str = ""

    @property
    def raw_output(self) -> float:
        """Base value plus every contribution: the model's raw output."""
        return (
            self.base_value
            + sum(c.contribution for c in self.contributions)
            + (self.rest)
        )

    def to_dict(self) -> dict:
        """Plain JSON-ready data."""
        return {
            "target": self.target,
            "prediction": self.prediction,
            "scale": "log1p" if self.log_scale else "linear",
            "base_value": self.base_value,
            "raw_output": self.raw_output,
            "method": self.method,
            "n_features": self.n_features,
            "contributions": [
                {
                    "feature": c.feature,
                    "name": c.name,
                    "value": c.value,
                    "contribution": c.contribution,
                }
                for c in self.contributions
            ],
            "rest": self.rest,
        }

    def __str__(self) -> str:
        scale = "log(1 + prediction)" if self.log_scale else "the prediction"
        lines = [
            f"{self.target} = {self.prediction:.4g}",
            f"  contributions to {scale} ({self.method}):",
            f"  {'contribution':>12}  {'value':>11}  feature",
            f"  {self.base_value:>+12.4f}  {'':>11}  (base value)",
        ]
        for c in self.contributions:
            lines.append(f"  {c.contribution:>+12.4f}  {c.value:>11.4g}  {c.name}")
        others = self.n_features - len(self.contributions)
        lines.append(f"  {self.rest:>+12.4f}  {'':>11}  (the other {others} features)")
        lines.append(f"  {self.raw_output:>+12.4f}  {'':>11}  = {scale}")
        return "\n".join(lines)


def _linear_contributions(model, x: np.ndarray):
    scale = np.ones_like(x)
    if isinstance(model, Pipeline):
        *steps, (_, model) = model.steps
        for _, step in steps:
            if getattr(step, "scale_", None) is not None and getattr(
                step, "with_std", True
            ):
                scale = scale * np.where(step.scale_ == 0, 1.0, step.scale_)
            if getattr(step, "with_mean", False) and hasattr(step, "mean_"):
                raise TypeError("explain does not support centred scaling")
    coef = np.ravel(getattr(model, "coef_", None))
    if coef.shape != x.shape:
        raise TypeError(f"cannot explain a {type(model).__name__}")
    return coef * (x / scale), float(np.ravel(model.intercept_)[0])


def explain(model, text, target: str, *, top: int = 10) -> Explanation:
    """Split one prediction of a fitted :class:`CostModel` into contributions.

    Parameters
    ----------
    model : CostModel
        A fitted model with xgboost or ``sklearn.linear_model`` regressors.
    text : str or ParsedModule
        One MLIR program (its text for a model whose featurizer reads texts
        only, as :class:`~mlircost_classic.models.StackedFeaturizer` does).
    target : str
        Target name, or an unambiguous part of it (see :func:`resolve_target`).
    top : int, default=10
        Contributions listed; the rest are summed in ``rest``.

    Returns
    -------
    Explanation
        ``base_value + sum(contributions) + rest`` is the model's raw output:
        the prediction, or ``log1p`` of it for a log-scale target.

    Raises
    ------
    ValueError
        For an unknown or ambiguous target, or one the model has no regressor
        for.
    TypeError
        For a regressor that is neither xgboost nor linear.

    Examples
    --------
    >>> import mlircost_classic as mc
    >>> model = mc.load_pretrained()                          # doctest: +SKIP
    >>> print(mc.explain(model, text, "instructions", top=5))  # doctest: +SKIP
    """
    check_is_fitted(model, "estimators_")
    if top < 0:
        raise ValueError(f"top must be >= 0, got {top}")
    j = resolve_target(model.target_names_, target)
    estimator = model.estimators_[j]
    if estimator is None:
        raise ValueError(f"the model has no regressor for {model.target_names_[j]}")
    F = model.featurizer_.transform([text])
    columns = [str(c) for c in model.featurizer_.get_feature_names_out()]
    x = F.toarray()[0] if sparse.issparse(F) else np.asarray(F, dtype=float)[0]
    parts = unwrap(estimator)
    if hasattr(parts.regressor, "get_booster"):
        values, bias = shap_values(estimator, F)  # the prior's terms included
        contributions, base = values[0], float(bias[0])
        method = "xgboost pred_contribs (SHAP)"
    else:
        contributions, base = _linear_contributions(parts.regressor, x)
        method = "linear coefficients"
        if parts.prior is not None:
            # The roofline prior's terms: its coefficient times the column's value.
            terms, intercept = parts.prior.prior_contributions(x[None, :])
            contributions, base = contributions + terms[0], base + intercept
    if parts.prior is not None:
        method += " + roofline prior"
    order = np.argsort(-np.abs(contributions), kind="stable")[:top]
    order = [i for i in order if contributions[i] != 0]
    listed = [
        Contribution(
            feature=columns[i],
            name=readable_feature_name(columns[i]),
            value=float(x[i]),
            contribution=float(contributions[i]),
        )
        for i in order
    ]
    rest = float(contributions.sum() - sum(c.contribution for c in listed))
    prediction = float(model.predict([text]).reshape(1, -1)[0, j])
    return Explanation(
        target=model.target_names_[j],
        prediction=prediction,
        log_scale=bool(model.log_targets_[j]),
        base_value=base,
        contributions=listed,
        rest=rest,
        n_features=len(columns),
        method=method,
    )
