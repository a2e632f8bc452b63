"""Which level of the lowering pipeline a piece of MLIR text is at."""

from __future__ import annotations

import re
from collections import Counter

__all__ = ["detect_level"]

_OP = re.compile(r"\b(torch|stablehlo|chlo|mhlo|tosa|linalg|affine)\.[a-z_]")


def detect_level(text: str) -> str:
    """Guess the level of MLIR text from the dialects of its operations.

    torch (``torch.aten.*``, ``!torch.vtensor``) wins over stablehlo, then
    tosa, then affine loops; anything else (linalg, tensor, arith ...) is
    ``"linalg"``.

    Parameters
    ----------
    text : str
        MLIR text.

    Returns
    -------
    {"torch", "stablehlo", "tosa", "affine", "linalg"}

    Examples
    --------
    >>> detect_level("%0 = tosa.add %a, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>")
    'tosa'
    """
    found = Counter(m.group(1) for m in _OP.finditer(text))
    for dialect, level in (
        ("torch", "torch"),
        ("stablehlo", "stablehlo"),
        ("chlo", "stablehlo"),
        ("mhlo", "stablehlo"),
        ("tosa", "tosa"),
    ):
        if found[dialect]:
            return level
    if found["affine"] and not found["linalg"] and "tensor<" not in text:
        return "affine"
    return "linalg"
