"""Reading MLIR text: op records, types, shapes, regions and attributes.

:func:`parse` reads MLIR text (any dialect, custom or generic syntax) into a
:class:`ParsedModule` of :class:`Op` records; :func:`read_source` is the shared
input handling (text, bytes or a file name) with clear errors; :func:`parse_type`
reads one type into a :class:`ShapedType`; :func:`read_config` and
:func:`write_config` read and edit IREE's codegen decisions (``lowering_config``,
``translation_info``) of a configured executable; :func:`detect_level` tells the level
(torch, linalg, stablehlo, tosa, affine) from the dialects used. Nothing here
needs MLIR's own libraries.
"""

from ._ir import MLIRSyntaxError, Op, ParsedModule, ShapedType, element_bits
from ._iree_config import CodegenConfig, read_config, write_config
from ._level import detect_level
from ._reader import parse, read_source
from ._types import parse_type

__all__ = [
    "CodegenConfig",
    "MLIRSyntaxError",
    "Op",
    "ParsedModule",
    "ShapedType",
    "detect_level",
    "element_bits",
    "parse",
    "parse_type",
    "read_config",
    "read_source",
    "write_config",
]
