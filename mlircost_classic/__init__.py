"""mlircost_classic: predict hardware costs of MLIR programs with classical ML.

The MLIR reader lives in :mod:`mlircost_classic.mlir`, the scikit-learn
transformers in :mod:`mlircost_classic.featurize`, the dataset in
:mod:`mlircost_classic.datasets` and the (optional) collector in
:mod:`mlircost_classic.collect`. The names most users need are re-exported here.
"""

from .datasets import dataset_info, load_dataset
from .featurize import (
    MLIRFeaturizer,
    OpcodeCounter,
    OpNgramTfidf,
    ShapeFeatures,
    load_catalog,
)
from .mlir import MLIRSyntaxError, detect_level, parse
from .models import (
    CostModel,
    RooflineBaseline,
    evaluate,
    explain,
    load_pretrained,
    rank,
    target_unit,
)

__version__ = "0.2.0.dev0"

__all__ = [
    "CostModel",
    "RooflineBaseline",
    "evaluate",
    "detect_level",
    "explain",
    "load_pretrained",
    "rank",
    "target_unit",
    "MLIRFeaturizer",
    "MLIRSyntaxError",
    "OpNgramTfidf",
    "OpcodeCounter",
    "ShapeFeatures",
    "__version__",
    "dataset_info",
    "load_dataset",
    "load_catalog",
    "parse",
]
