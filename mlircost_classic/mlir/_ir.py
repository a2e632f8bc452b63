"""Plain data records produced by the MLIR reader.

The reader (:func:`mlircost_classic.mlir.parse`) turns MLIR text into a
:class:`ParsedModule`: a flat list of :class:`Op` in program order plus a few
structural counts. Nothing here depends on MLIR's own libraries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["MLIRSyntaxError", "ShapedType", "Op", "ParsedModule"]


class MLIRSyntaxError(ValueError):
    """MLIR text that cannot be read.

    Attributes
    ----------
    line, column : int
        1-based position of the problem in the text.
    """

    def __init__(self, message: str, line: int = 0, column: int = 0):
        self.message = message
        self.line = line
        self.column = column
        where = f"line {line}, column {column}: " if line else ""
        super().__init__(f"{where}{message}")

    def __reduce__(self):
        return (type(self), (self.message, self.line, self.column))


# Bit widths of MLIR builtin element types that are not iN / uiN / siN / fN.
_SPECIAL_BITS = {
    "index": 64,
    "bf16": 16,
    "tf32": 32,
    "f8E4M3FN": 8,
    "f8E5M2": 8,
    "f8E4M3": 8,
    "f8E4M3FNUZ": 8,
    "f8E5M2FNUZ": 8,
    "f8E4M3B11FNUZ": 8,
    "f8E3M4": 8,
    "f8E8M0FNU": 8,
    "f6E2M3FN": 6,
    "f6E3M2FN": 6,
    "f4E2M1FN": 4,
}


def element_bits(element: str) -> int | None:
    """Bit width of an element type name (``f32`` -> 32, ``complex<f16>`` -> 32).

    Returns None when the width is unknown (dialect types such as ``!torch.int``).
    """
    if element in _SPECIAL_BITS:
        return _SPECIAL_BITS[element]
    if element.startswith("complex<") and element.endswith(">"):
        inner = element_bits(element[8:-1])
        return None if inner is None else 2 * inner
    for prefix in ("si", "ui", "i", "f"):
        if element.startswith(prefix) and element[len(prefix) :].isdigit():
            return int(element[len(prefix) :])
    return None


@dataclass(frozen=True, slots=True)
class ShapedType:
    """A type as the featurizers see it.

    Parameters
    ----------
    kind : str
        ``"tensor"``, ``"memref"``, ``"vector"``, ``"vtensor"`` (torch's
        ``!torch.vtensor`` / ``!torch.tensor``), ``"scalar"`` (a builtin element
        type used on its own: ``f32``, ``i1``, ``index``, ``complex<f32>``) or
        ``"other"`` (any other dialect or builtin type, kept in ``raw``).
    shape : tuple of (int or None), or None
        Dimensions; ``None`` entries are dynamic (``?``). ``None`` for an
        unranked or non-shaped type. Scalars have shape ``()``.
    element : str
        Element type name as written (``"f32"``, ``"bf16"``, ``"complex<f32>"``,
        ``"i8"``); ``""`` if unknown.
    scalable : tuple of bool
        Per-dimension scalable flags for vectors (``vector<[4]xf32>``); empty otherwise.
    encoding : str or None
        Tensor encoding / memref layout / memory space text, if any.
    raw : str
        The type text as written (aliases already resolved where possible).
    """

    kind: str
    shape: tuple[int | None, ...] | None
    element: str
    scalable: tuple[bool, ...] = ()
    encoding: str | None = None
    raw: str = ""

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def is_dynamic(self) -> bool:
        return self.shape is None or any(d is None for d in self.shape)

    @property
    def numel(self) -> int | None:
        """Number of elements, None if unranked or any dim is dynamic."""
        shape = self.shape
        if shape is None or None in shape:
            return None
        return math.prod(shape)  # type: ignore[arg-type]

    @property
    def bits(self) -> int | None:
        return element_bits(self.element)

    @property
    def nbytes(self) -> float | None:
        """Static size in bytes (numel * element bits / 8), None when unknown."""
        n, b = self.numel, self.bits
        if n is None or b is None:
            return None
        return n * b / 8


@dataclass(slots=True)
class Op:
    """One operation, in program order.

    Parameters
    ----------
    name : str
        Full op name, ``"linalg.matmul"``; for generic syntax the quoted name.
    dialect : str
        Text before the first dot (``"linalg"``); ``"builtin"`` for ``module``.
    results, operands : tuple of str
        SSA value names defined / used (``"%0"``, ``"%arg1"``, ``"%5#1"``).
    result_types, operand_types : tuple of ShapedType
        Types as far as the text states them (custom syntax often omits some).
    attributes : dict of str -> str
        Attribute name -> raw value text (``""`` for unit attributes), from the
        ``{...}`` dictionary, generic ``<{...}>`` properties and well-known inline
        keywords the reader recognises.
    text : str
        The op's own text without its regions (capped in length), for rules
        that need custom syntax such as ``affine.for %i = 0 to 128 step 4``.
    depth : int
        Region nesting depth (0 for top-level ops in the file).
    function : str or None
        Symbol name of the enclosing function (``"main"``), if any.
    num_regions : int
        Regions attached to this op.
    line : int
        1-based line where the op starts.
    generic : bool
        True when written in generic ``"dialect.op"(...)`` form.
    symbol : str or None
        The op's own symbol name (``"main"`` for ``func.func @main``), if any.
    """

    name: str
    dialect: str
    results: tuple[str, ...] = ()
    operands: tuple[str, ...] = ()
    result_types: tuple[ShapedType, ...] = ()
    operand_types: tuple[ShapedType, ...] = ()
    attributes: dict[str, str] = field(default_factory=dict)
    text: str = ""
    depth: int = 0
    function: str | None = None
    num_regions: int = 0
    line: int = 0
    generic: bool = False
    symbol: str | None = None


@dataclass(slots=True)
class ParsedModule:
    """The reader's output for one MLIR text (all ``// -----`` splits together)."""

    ops: list[Op]
    functions: list[str] = field(default_factory=list)
    num_regions: int = 0
    num_blocks: int = 0
    max_depth: int = 0
    num_splits: int = 1
    attribute_aliases: dict[str, str] = field(default_factory=dict)
    type_aliases: dict[str, str] = field(default_factory=dict)
