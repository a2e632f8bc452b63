"""Scikit-learn transformers that turn MLIR texts into feature matrices.

:class:`OpcodeCounter`, :class:`OpNgramTfidf` and :class:`ShapeFeatures` each
read MLIR documents with :mod:`mlircost_classic.mlir`; :class:`MLIRFeaturizer`
is their union, reading each document once. The op catalog (families, FLOP and
byte rules) is loaded with :func:`load_catalog`. :func:`partition_dispatches`
splits a module into the dispatch regions IREE would form. :class:`ConfigFeatures`
reads the codegen decisions (``lowering_config``, ``translation_info``) of
configured executables, for ranking candidates of one dispatch.
"""

from ._analysis import (
    LOG_FEATURES,
    ROOT_DIM_FEATURES,
    ROOT_LOOP_FEATURES,
    SHAPE_FEATURES,
)
from ._base import BaseMLIRFeaturizer, MLIRReadWarning
from ._catalog import (
    BYTE_RULES,
    FAMILIES,
    FLOP_RULES,
    Catalog,
    CatalogError,
    OpSpec,
    Rule,
    load_catalog,
)
from ._config import (
    CONFIG_LEVELS,
    CONFIG_PIPELINES,
    ConfigFeatures,
    VariantFeaturizer,
)
from ._ngram import OpNgramTfidf, op_ngrams
from ._opcode import OpcodeCounter
from ._partition import DispatchRegion, dispatch_kind, partition_dispatches
from ._shape import ShapeFeatures
from ._union import MLIRFeaturizer

__all__ = [
    "BYTE_RULES",
    "CONFIG_LEVELS",
    "CONFIG_PIPELINES",
    "FAMILIES",
    "FLOP_RULES",
    "LOG_FEATURES",
    "ROOT_LOOP_FEATURES",
    "ROOT_DIM_FEATURES",
    "SHAPE_FEATURES",
    "BaseMLIRFeaturizer",
    "Catalog",
    "DispatchRegion",
    "dispatch_kind",
    "CatalogError",
    "ConfigFeatures",
    "MLIRFeaturizer",
    "MLIRReadWarning",
    "OpNgramTfidf",
    "OpSpec",
    "OpcodeCounter",
    "Rule",
    "ShapeFeatures",
    "VariantFeaturizer",
    "load_catalog",
    "op_ngrams",
    "partition_dispatches",
]
