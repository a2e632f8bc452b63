"""Cost models, baselines, metrics and the evaluation protocol.

:class:`CostModel` predicts every hardware target from MLIR text (one
regressor per target over :class:`~mlircost_classic.MLIRFeaturizer` features,
split-conformal intervals, saving without pickle); :class:`RooflineBaseline` is
the fitted analytical baseline; :func:`evaluate` compares models on the same
folds with the metrics of :data:`METRICS` (split by family, by
:func:`op_templates` or at random);
:class:`NeuralTextRegressor` is the neural text baseline (needs torch);
:func:`load_pretrained` reads the shipped default models (:func:`train_pretrained`
rebuilds them) and :func:`explain` splits a prediction into feature contributions.
:class:`ComposedCostModel` predicts modules from a kernels model applied to
their predicted dispatches; :class:`PerTargetCostModel` answers each target
from the model that predicts it best (``load_pretrained("auto")``).
:class:`VariantRanker` and :func:`rank` order candidate codegen configurations
of a dispatch and :class:`SpillClassifier` tells which will spill
(:func:`variant_models`: the shipped ones of a hardware); :func:`evaluate_variants`
is the decision benchmark and :func:`evaluate_spills` its spill detection.
"""

from ..datasets import resolve_target, target_unit
from ._base import PerTargetRegressor
from ._choice import PerTargetCostModel
from ._composed import (
    AGGREGATION,
    ComposedCostModel,
    compose_regions,
    cross_val_compose,
    iree_regions,
    kernel_calls,
)
from ._cost_model import (
    DEEP_ROWS,
    ROOFLINE_COLUMNS,
    SKEW_THRESHOLD,
    CostModel,
    default_estimator,
    default_featurizer,
    default_prior,
)
from ._evaluate import evaluate, op_templates
from ._explain import Contribution, Explanation, explain
from ._metrics import (
    METRICS,
    SPILL_METRICS,
    SPILL_THRESHOLD,
    interval_coverage,
    is_spill_target,
    kendall,
    mape,
    median_ape,
    pairwise_ranking_accuracy,
    r2_log,
    spearman,
    spill_classification,
    target_scores,
)
from ._names import readable_feature_name, readable_feature_names
from ._neural import NeuralTextRegressor
from ._novelty import NOVELTY_FEATURES
from ._pretrained import (
    COMPOSED_NAME,
    DEFAULT_MODELS,
    MODULE_FIT_EXCLUDED_FAMILIES,
    PRETRAINED_DIR,
    composed_choice,
    load_pretrained,
    pretrained_info,
    pretrained_name,
    train_pretrained,
)
from ._prior import PriorRegressor
from ._rank import (
    HIGHER_IS_BETTER,
    VARIANT_TASKS,
    SpillClassifier,
    VariantRanker,
    evaluate_spills,
    evaluate_variants,
    group_metrics,
    rank,
    spill_labels,
)
from ._roofline import RooflineBaseline
from ._serialize import FORMAT_VERSION, featurizer_from_dict, featurizer_to_dict
from ._stacked import StackedFeaturizer
from ._unwrap import Unwrapped, shap_values, unwrap
from ._variant_models import (
    VariantModels,
    load_variant_models,
    save_variant_models,
    train_variant_models,
    variant_models,
)

__all__ = [
    "AGGREGATION",
    "COMPOSED_NAME",
    "ComposedCostModel",
    "MODULE_FIT_EXCLUDED_FAMILIES",
    "PerTargetCostModel",
    "StackedFeaturizer",
    "composed_choice",
    "kernel_calls",
    "compose_regions",
    "cross_val_compose",
    "iree_regions",
    "Contribution",
    "DEFAULT_MODELS",
    "Explanation",
    "HIGHER_IS_BETTER",
    "VARIANT_TASKS",
    "SpillClassifier",
    "VariantModels",
    "VariantRanker",
    "load_variant_models",
    "save_variant_models",
    "train_variant_models",
    "variant_models",
    "evaluate_spills",
    "evaluate_variants",
    "group_metrics",
    "rank",
    "spill_labels",
    "PRETRAINED_DIR",
    "explain",
    "load_pretrained",
    "pretrained_info",
    "pretrained_name",
    "resolve_target",
    "target_unit",
    "train_pretrained",
    "FORMAT_VERSION",
    "METRICS",
    "NOVELTY_FEATURES",
    "DEEP_ROWS",
    "ROOFLINE_COLUMNS",
    "SPILL_METRICS",
    "SPILL_THRESHOLD",
    "SKEW_THRESHOLD",
    "PriorRegressor",
    "CostModel",
    "NeuralTextRegressor",
    "PerTargetRegressor",
    "RooflineBaseline",
    "default_estimator",
    "default_featurizer",
    "default_prior",
    "evaluate",
    "featurizer_from_dict",
    "featurizer_to_dict",
    "interval_coverage",
    "is_spill_target",
    "kendall",
    "mape",
    "median_ape",
    "op_templates",
    "pairwise_ranking_accuracy",
    "r2_log",
    "readable_feature_name",
    "readable_feature_names",
    "spearman",
    "spill_classification",
    "target_scores",
    "shap_values",
    "Unwrapped",
    "unwrap",
]
