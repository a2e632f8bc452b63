"""Reports on fitted cost models: importance, explanations, plots.

:func:`build_report` fits the cost models on part of the dataset and writes,
per target, held-out metrics, predicted-against-measured plots, feature
importance (xgboost gain, permutation importance, SHAP values, linear
coefficients) and one HTML page tying them together. The figures need
matplotlib (extra ``[report]``); the importance functions do not.
"""

from ._importance import (
    gain_importance,
    linear_coefficients,
    permutation_importances,
    shap_values,
)
from ._report import IMPORTANCE_COLUMNS, METRIC_COLUMNS, build_report

__all__ = [
    "IMPORTANCE_COLUMNS",
    "METRIC_COLUMNS",
    "build_report",
    "gain_importance",
    "linear_coefficients",
    "permutation_importances",
    "shap_values",
]
