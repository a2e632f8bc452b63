"""mlircost_classic: predict hardware costs of MLIR programs with classical ML.

The MLIR reader lives in :mod:`mlircost_classic.mlir`, the scikit-learn
transformers in :mod:`mlircost_classic.featurize`, the dataset and the target
table in :mod:`mlircost_classic.datasets` and the (optional) collector in
:mod:`mlircost_classic.collect`. The names most users need are re-exported
here, each imported on first use, so that ``import mlircost_classic.mlir``
loads neither scikit-learn nor xgboost.
"""

from ._lazy import lazy_exports
from ._version import __version__ as __version__

# Public name -> subpackage defining it.
_EXPORTS = {
    "dataset_info": "datasets",
    "load_dataset": "datasets",
    "select_targets": "datasets",
    "target_unit": "datasets",
    "MLIRFeaturizer": "featurize",
    "OpcodeCounter": "featurize",
    "OpNgramTfidf": "featurize",
    "ShapeFeatures": "featurize",
    "load_catalog": "featurize",
    "MLIRSyntaxError": "mlir",
    "detect_level": "mlir",
    "parse": "mlir",
    "CostModel": "models",
    "RooflineBaseline": "models",
    "evaluate": "models",
    "explain": "models",
    "load_pretrained": "models",
    "rank": "models",
}

__all__ = sorted([*_EXPORTS, "__version__"])


_SUBPACKAGES = ("cli", "collect", "datasets", "featurize", "mlir", "models", "report")

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), _SUBPACKAGES)
