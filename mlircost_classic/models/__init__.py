"""Cost models, baselines, metrics and the evaluation protocol.

:class:`CostModel` predicts every hardware target from MLIR text (one
regressor per target over :class:`~mlircost_classic.MLIRFeaturizer` features,
split-conformal intervals, saving without pickle); :class:`RooflineBaseline` is
the fitted analytical baseline; :func:`evaluate` compares models on the same
folds with the metrics of :data:`METRICS`.
"""

from ._base import PerTargetRegressor
from ._cost_model import SKEW_THRESHOLD, CostModel, default_estimator
from ._evaluate import evaluate
from ._metrics import (
    METRICS,
    interval_coverage,
    kendall,
    mape,
    median_ape,
    pairwise_ranking_accuracy,
    r2_log,
    spearman,
)
from ._roofline import RooflineBaseline
from ._serialize import FORMAT_VERSION, featurizer_from_dict, featurizer_to_dict

__all__ = [
    "FORMAT_VERSION",
    "METRICS",
    "SKEW_THRESHOLD",
    "CostModel",
    "PerTargetRegressor",
    "RooflineBaseline",
    "default_estimator",
    "evaluate",
    "featurizer_from_dict",
    "featurizer_to_dict",
    "interval_coverage",
    "kendall",
    "mape",
    "median_ape",
    "pairwise_ranking_accuracy",
    "r2_log",
    "spearman",
]
