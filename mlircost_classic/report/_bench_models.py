"""The models of the benchmark: names, descriptions and unfitted instances."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

import numpy as np

from ..models import (
    ComposedCostModel,
    CostModel,
    NeuralTextRegressor,
    RooflineBaseline,
    default_featurizer,
)

__all__ = [
    "DEFAULT_MODELS",
    "MODEL_DESCRIPTIONS",
    "MODEL_NAMES",
    "MODULES_ONLY",
    "benchmark_models",
]

#: Every model :func:`run_benchmark` knows, in table order.
MODEL_NAMES = (
    "xgboost",
    "xgboost-noprior",
    "ridge",
    "roofline",
    "transformer",
    "lstm",
    "cnn",
    "composed",
)
#: Models that predict modules only (skipped for kernels).
MODULES_ONLY = ("composed",)
#: What ``run_benchmark`` fits unless told: all but the CNN and the composed
#: model (whose kernels model saw every family: only its OOD figures are held
#: out; ``benchmarks/composed_ood.py`` compares it on the OOD suite).
DEFAULT_MODELS = tuple(name for name in MODEL_NAMES if name not in ("cnn", "composed"))
#: What each model is, for the results page.
MODEL_DESCRIPTIONS = {
    "xgboost": "`CostModel()`, the product: xgboost per target boosted from the "
    "target's roofline fit (`prior='roofline'`), log scale for skewed targets",
    "xgboost-noprior": "the same without the roofline prior (`prior=None`): the ablation",
    "ridge": "`CostModel(estimator=RidgeCV(...), prior=None)`: ridge on the same "
    "features, log scale for skewed targets",
    "roofline": "`RooflineBaseline()`: log1p(y) = a + b log1p(FLOPs) + c log1p(bytes), "
    "least squares",
    "transformer": "`NeuralTextRegressor('transformer')`: token sequence, small "
    "transformer encoder, all targets at once",
    "lstm": "`NeuralTextRegressor('lstm')`: token sequence, bidirectional LSTM",
    "cnn": "`NeuralTextRegressor('cnn')`: token sequence, 1-D CNN",
    "composed": "`ComposedCostModel()`: the shipped kernels model on the module's "
    "dispatch regions (Python partitioner), aggregated by the collector's rules, "
    "calibrated per target; its kernels model saw every bundled family's kernels, "
    "so only its OOD figures are held out",
}
NEURAL = ("transformer", "lstm", "cnn")
CLASSICAL = "xgboost"


def benchmark_models(
    names: Sequence[str] = DEFAULT_MODELS,
    *,
    quick: bool = False,
    random_state: int = 0,
    neural_seconds: float | None = None,
    n_jobs: int | None = None,
    kind: str = "modules",
) -> dict:
    """The unfitted models of the benchmark, by name.

    Parameters
    ----------
    names : sequence of str
        Names out of :data:`MODEL_NAMES`.
    quick : bool, default=False
        Small neural models and few epochs (for a smoke run).
    random_state : int, default=0
        Seed of every model.
    neural_seconds : float, optional
        Wall-clock budget of one neural fit (``max_seconds``).
    n_jobs : int, optional
        Targets fitted in parallel by the cost models, and torch threads of
        the neural models.
    kind : {"modules", "kernels", "variants"}, default="modules"
        The dataset: the cost models read it with the shipped models'
        featurizer of that kind (:func:`~mlircost_classic.models.default_featurizer`).

    Returns
    -------
    dict of str -> estimator
    """
    from sklearn.linear_model import RidgeCV

    unknown = sorted(set(names) - set(MODEL_NAMES))
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from {list(MODEL_NAMES)}")
    neural = [n for n in names if n in NEURAL]
    if neural and importlib.util.find_spec("torch") is None:
        raise ImportError(
            f"the neural baselines ({', '.join(neural)}) need torch: pip install "
            "'mlircost_classic[neural]', or leave them out of the models"
        )
    models = {}
    for name in names:
        if name == "xgboost":
            models[name] = CostModel(
                featurizer=default_featurizer(kind),
                random_state=random_state,
                n_jobs=n_jobs,
            )
        elif name == "xgboost-noprior":
            models[name] = CostModel(
                featurizer=default_featurizer(kind),
                prior=None,
                random_state=random_state,
                n_jobs=n_jobs,
            )
        elif name == "ridge":
            # Ridge on log1p of the skewed targets (the CostModel default),
            # alpha by efficient leave-one-out over a log grid; the plain
            # linear baseline, without the roofline prior.
            models[name] = CostModel(
                featurizer=default_featurizer(kind),
                estimator=RidgeCV(alphas=np.logspace(-2, 4, 13)),
                prior=None,
                random_state=random_state,
                n_jobs=n_jobs,
            )
        elif name == "roofline":
            models[name] = RooflineBaseline()
        elif name == "composed":
            models[name] = ComposedCostModel(random_state=random_state)
        else:
            extra = {"max_epochs": 5, "max_len": 256, "patience": 2} if quick else {}
            models[name] = NeuralTextRegressor(
                arch=name,
                max_seconds=neural_seconds,
                n_threads=n_jobs,
                random_state=random_state,
                **extra,
            )
    return models
