"""MLIR type text -> :class:`ShapedType`, and the type lists that follow ops.

Everything here works on short strings (one type, or the text after an op's
trailing ``:``) and is cached, because the same type strings repeat thousands of
times in a module.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ._ir import ShapedType

__all__ = ["parse_type"]

_STRING = r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"'

# Brackets, plus the two-character tokens that contain '>' without closing one.
_BRACKET = re.compile(_STRING + r"|->|>=|[<(\[{]|[>)\]}]")
_BRACKET_OR_COMMA = re.compile(_STRING + r"|->|>=|[<(\[{]|[>)\]}]|,")

_SCALAR = re.compile(
    r"(?:[su]?i[1-9]\d*|f(?:16|32|64|80|128)|bf16|tf32|index|f[468]E\w+)\Z"
)
_TENSOR_DIMS = re.compile(r"(?:(?:\?|\d+)x)*")
_VECTOR_DIMS = re.compile(r"(?:(?:\[\d+\]|\d+)x)*")
_TORCH_TENSOR = ("!torch.vtensor", "!torch.tensor")

# One type: a dialect/builtin name optionally followed by '<' ... '>', or '('.
_TYPE_HEAD = re.compile(r"\s*(!?[A-Za-z_][\w$.]*|\()")
_COMMA = re.compile(r"\s*,")
_CONNECTIVE = re.compile(r"\s*(->|to\b|from\b|into\b)")
_ARROW = re.compile(r"\s*->")


def group_end(s: str, i: int) -> int:
    """Index just past the bracket group that opens at ``s[i]``; -1 if unclosed.

    ``->`` and ``>=`` do not close ``<``; string literals are skipped.
    """
    depth = 0
    for m in _BRACKET.finditer(s, i):
        tok = m.group()
        if len(tok) == 1:
            if tok in "<([{":
                depth += 1
            else:
                depth -= 1
                if depth == 0:
                    return m.end()
    return -1


def split_top(s: str, sep_first_only: bool = False) -> list[str]:
    """Split ``s`` at commas outside brackets and strings (pieces not stripped)."""
    pieces = []
    depth = 0
    start = 0
    for m in _BRACKET_OR_COMMA.finditer(s):
        tok = m.group()
        if len(tok) != 1:
            continue
        if tok == ",":
            if depth == 0:
                pieces.append(s[start : m.start()])
                start = m.end()
                if sep_first_only:
                    break
        elif tok in "<([{":
            depth += 1
        else:
            depth -= 1
    pieces.append(s[start:])
    return pieces


def _dim(d: str) -> int | None:
    d = d.strip()
    if d.lstrip("-").isdigit():
        value = int(d)
        return value if value >= 0 else None
    return None


def _builtin_shaped(kind: str, inner: str, raw: str) -> ShapedType:
    scalable: tuple[bool, ...] = ()
    if inner.startswith("*x"):
        shape = None
        rest = inner[2:]
    else:
        m = (_VECTOR_DIMS if kind == "vector" else _TENSOR_DIMS).match(inner)
        dims = m.group()[:-1].split("x") if m.end() else []
        shape = tuple(_dim(d.strip("[]")) for d in dims)
        if kind == "vector":
            scalable = tuple(d.startswith("[") for d in dims)
        rest = inner[m.end() :]
    pieces = split_top(rest, sep_first_only=True)
    element = pieces[0].strip()
    encoding = pieces[1].strip() if len(pieces) > 1 else None
    return ShapedType(kind, shape, element, scalable, encoding or None, raw)


def _torch_tensor(inner: str, raw: str) -> ShapedType:
    inner = inner.strip()
    if inner.startswith("["):
        close = inner.find("]")
        if close < 0:
            return ShapedType("vtensor", None, "", raw=raw)
        body = inner[1:close].strip()
        shape = tuple(_dim(d) for d in body.split(",")) if body else ()
        element = inner[close + 1 :].lstrip(" ,").strip()
        return ShapedType("vtensor", shape, element, raw=raw)
    # '*,f32' (unranked) or something this reader does not know
    element = inner.split(",", 1)[1].strip() if "," in inner else ""
    return ShapedType("vtensor", None, element, raw=raw)


@lru_cache(maxsize=1 << 16)
def parse_type(text: str) -> ShapedType:
    """Parse one MLIR type written as text.

    Parameters
    ----------
    text : str
        A type as it appears in MLIR, e.g. ``"tensor<4x?xf32>"``,
        ``"memref<8xi8, strided<[1], offset: ?>, 1>"``, ``"vector<[4]xf32>"``,
        ``"!torch.vtensor<[2,-1],f32>"``, ``"index"``. Type aliases are not
        resolved here (see :func:`mlircost_classic.mlir.parse`).

    Returns
    -------
    ShapedType
        Kind ``"other"`` with the text in ``raw`` for types it does not know.

    Examples
    --------
    >>> parse_type("tensor<4x?xf32>").shape
    (4, None)
    >>> parse_type("vector<2x[4]xbf16>").scalable
    (False, True)
    """
    t = text.strip()
    if _SCALAR.match(t):
        return ShapedType("scalar", (), t, raw=t)
    lt = t.find("<")
    if lt > 0 and t.endswith(">"):
        head = t[:lt]
        inner = t[lt + 1 : -1]
        if head in ("tensor", "memref", "vector"):
            return _builtin_shaped(head, inner, t)
        if head == "complex":
            return ShapedType("scalar", (), t, raw=t)
        if head in _TORCH_TENSOR:
            return _torch_tensor(inner, t)
    elif t in _TORCH_TENSOR:
        return ShapedType("vtensor", None, "", raw=t)
    return ShapedType("other", None, "", raw=t)


def _read_type(s: str, i: int) -> tuple[str | None, int]:
    """Extent of one type starting at ``s[i:]`` (leading spaces skipped)."""
    m = _TYPE_HEAD.match(s, i)
    if m is None:
        return None, i
    start = m.start(1)
    if m.group(1) == "(":
        end = group_end(s, start)
        if end < 0:
            return None, i
        arrow = _ARROW.match(s, end)
        if arrow is None:
            return None, i
        result, end = _read_list(s, arrow.end())
        if result is None:
            return None, i
        return s[start:end], end
    end = m.end(1)
    if end < len(s) and s[end] == "<":
        end = group_end(s, end)
        if end < 0:
            return None, i
    return s[start:end], end


def _read_list(s: str, i: int) -> tuple[tuple[str, ...] | None, int]:
    """A parenthesised or bare comma-separated list of types.

    A leading ``(`` is always a list here, so ``(A, B) -> C`` reads as the
    list ``(A, B)`` followed by ``-> C``; nested function types are items.
    """
    m = _TYPE_HEAD.match(s, i)
    if m is None:
        return None, i
    if m.group(1) == "(":
        end = group_end(s, m.start(1))
        if end < 0:
            return None, i
        items = []
        for piece in split_top(s[m.end(1) : end - 1]):
            t, _ = _read_type(piece, 0)
            if t is not None:
                items.append(t)
        return tuple(items), end
    items = []
    while True:
        t, j = _read_type(s, i)
        if t is None:
            break
        items.append(t)
        i = j
        comma = _COMMA.match(s, i)
        if comma is None:
            break
        i = comma.end()
    return (tuple(items) if items else None), i


@lru_cache(maxsize=1 << 14)
def split_signature(s: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """Read the types after an op's trailing ``:``.

    Returns ``(form, left, right)`` where ``form`` is ``"->"`` for
    ``(A, B) -> C`` and ``A, B -> C``, ``"to"``, ``"from"``, ``"into"`` for
    those keyword forms (``A to B``), or ``"list"`` for a plain ``A, B``; the
    type texts on each side are unparsed. Reading stops at the first thing that
    is not a type (a region, ``loc(...)``, ``attributes``, ``=``, a comment).
    """
    left, i = _read_list(s, 0)
    if left is None:
        return "list", (), ()
    m = _CONNECTIVE.match(s, i)
    if m is None:
        return "list", left, ()
    right, _ = _read_list(s, m.end())
    return m.group(1), left, right or ()


@lru_cache(maxsize=1 << 14)
def type_list(s: str) -> tuple[str, ...]:
    """The types at the start of ``s`` (``"(f32, i8) {..."`` -> ``("f32", "i8")``)."""
    items, _ = _read_list(s, 0)
    return items or ()


@lru_cache(maxsize=1 << 14)
def signature_types(s: str) -> tuple[str, ...]:
    """Argument types of a function signature body ``%a: T {attrs}, %b: U``.

    Declarations without argument names (``T, U``) work too.
    """
    types = []
    for piece in split_top(s):
        piece = piece.strip()
        if not piece:
            continue
        if piece.startswith("%"):
            colon = piece.find(":")
            if colon < 0:
                continue
            piece = piece[colon + 1 :]
        t, _ = _read_type(piece, 0)
        if t is not None:
            types.append(t)
    return tuple(types)
