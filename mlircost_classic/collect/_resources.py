"""Remove and restore the weight blobs of MLIR text.

The dataset stores MLIR without weights: the ``{-# dialect_resources ... #-}``
section that holds them is stripped (:func:`strip_resources`) and large
inline constants are printed as ``dense_resource<__elided__>``. Such text
still names every constant and its type, so :func:`fill_missing_resources`
can give each one deterministic, non-splat data of the right element type and
size, which makes the text compilable again without letting constant folding
erase the work that real weights would cause.

Both functions work on text only (no MLIR libraries) and in linear time, so
they apply to a user's own file at any level (torch, linalg, stablehlo, tosa).
"""

from __future__ import annotations

import math
import re
import zlib

import numpy as np

__all__ = ["MAX_FILL_BYTES", "strip_resources", "fill_missing_resources"]

#: Most bytes of weights :func:`fill_missing_resources` makes for one text
#: (1 GiB). The filled text holds them twice over as hex, and compiling it
#: takes several times that: the collector's process reached 14-16 GB, past
#: the 24 GB host beside its other jobs, and was killed by the kernel (taking
#: the whole run with it) on torchvision's vit_l_16 (304 M parameters, 1.2 GB
#: of f32 weights); convnext_large's 0.8 GB compiled. Over the budget the
#: text gets a clear error, which the collector records as the program's
#: ``fill_resources`` failure.
MAX_FILL_BYTES = 1 << 30

# A resource key is a bare identifier (torch-mlir writes names such as
# ``torch_tensor_10_torch.float32``) or a quoted string.
_KEY = r'(?:[A-Za-z_][\w$.\-]*|"[^"\n]*")'
# ``dense_resource<KEY> : tensor<SHAPE>`` (ops such as arith.constant,
# stablehlo.constant, tosa.const, torch.vtensor.literal) ...
_REF_TENSOR = re.compile(
    r"dense_resource<(?P<key>"
    + _KEY
    + r")>\s*:\s*(?:tensor|vector)<(?P<shape>(?:[^<>]|<[^<>]*>)*)>"
)
# ... or ``: memref<SHAPE> = dense_resource<KEY>`` (memref.global, after
# bufferization).
_REF_MEMREF = re.compile(
    r":\s*memref<(?P<shape>(?:[^<>]|<[^<>]*>)*)>\s*=\s*dense_resource<(?P<key>"
    + _KEY
    + r")>"
)
_SHAPE = re.compile(r"(?P<dims>(?:[0-9?]+x)*)(?P<element>.*)")
_ELIDED = "__elided__"
_SPECIAL = re.compile(r'[{}"\\]')
# A blob entry ``KEY: "0x...`` starts its own line; anchoring keeps the search
# linear over long hex strings.
_BLOB_ENTRY = re.compile(r"^\s*(" + _KEY + r')\s*:\s*"0x', re.MULTILINE)

# Element type -> (numpy dtype of the stored bytes, kind of values to draw).
_FLOAT_TYPES = {"f16": np.float16, "f32": np.float32, "f64": np.float64}
_INT_TYPES = {
    "i1": np.uint8,  # MLIR stores one byte per i1 element in a resource blob
    "i8": np.int8,
    "i16": np.int16,
    "i32": np.int32,
    "i64": np.int64,
    "ui8": np.uint8,
    "ui16": np.uint16,
    "ui32": np.uint32,
    "ui64": np.uint64,
    "si8": np.int8,
    "si16": np.int16,
    "si32": np.int32,
    "si64": np.int64,
    "index": np.int64,
}


def _find_section(text: str) -> tuple[int, int] | None:
    """Span of the trailing ``{-# ... #-}`` metadata section, or None."""
    start = text.rfind("{-#")
    if start < 0:
        return None
    end = text.find("#-}", start)
    if end < 0:
        raise ValueError("MLIR text has '{-#' without a closing '#-}'")
    return start, end + 3


def _matching_brace(text: str, open_at: int) -> int:
    """Index just past the ``}`` that closes the ``{`` at ``open_at``."""
    depth = 0
    in_string = False
    escaped_at = -1
    # Only braces, quotes and backslashes matter; jumping between them keeps
    # megabyte-long hex blobs cheap.
    for m in _SPECIAL.finditer(text, open_at):
        i, c = m.start(), m.group()
        if i == escaped_at:
            continue
        if in_string:
            if c == "\\":
                escaped_at = i + 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError("unbalanced braces in the MLIR resource section")


def _entry_span(section: str, name: str) -> tuple[int, int, int] | None:
    """``(start, brace, end)`` of the ``name: {...}`` entry in a section."""
    m = re.search(r"\b" + name + r"\s*:\s*\{", section)
    if m is None:
        return None
    brace = m.end() - 1
    return m.start(), brace, _matching_brace(section, brace)


def strip_resources(text: str) -> str:
    """Drop the ``dialect_resources`` blobs (the weights) from MLIR text.

    Other entries of the ``{-# ... #-}`` section (``external_resources``) are
    kept; the section disappears when nothing else is left in it.

    Parameters
    ----------
    text : str
        MLIR text in the generic or custom assembly format.

    Returns
    -------
    str
        The text with ``dense_resource<...>`` references intact and no blobs.

    Examples
    --------
    >>> t = 'x\\n{-#\\n  dialect_resources: {builtin: {a: "0x04000000"}}\\n#-}\\n'
    >>> strip_resources(t)
    'x\\n'
    """
    span = _find_section(text)
    if span is None:
        return text
    start, end = span
    section = text[start:end]
    entry = _entry_span(section, "dialect_resources")
    if entry is None:
        if section[3:-3].strip():
            return text
        rest = ""
    else:
        e_start, _, e_end = entry
        rest = (section[3:e_start] + section[e_end:-3]).strip().strip(",").strip()
    if rest:
        kept = "{-#\n  " + rest + "\n#-}"
        return text[:start] + kept + text[end:]
    return text[:start].rstrip() + "\n" + text[end:].lstrip()


def _element_type(shape: str) -> tuple[int, str]:
    """Element count and element type of a ``4x8xf32`` shape string."""
    m = _SHAPE.match(shape.split(",")[0].strip())
    dims = m.group("dims").split("x")[:-1]
    if not all(d.isdigit() for d in dims):
        raise ValueError(f"dense_resource of dynamic shape: {shape!r}")
    return math.prod(int(d) for d in dims), m.group("element")


def _itemsize(element: str) -> int:
    """Bytes per element of a blob of ``element`` (bf16: 2); 0 if unknown
    (:func:`_blob` then raises)."""
    if element == "bf16":
        return 2
    dtype = _FLOAT_TYPES.get(element) or _INT_TYPES.get(element)
    return np.dtype(dtype).itemsize if dtype is not None else 0


def _blob(key: str, count: int, element: str, seed: int) -> str:
    """Hex blob (``0x`` + alignment word + data) of deterministic values."""
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    if element in _FLOAT_TYPES:
        # Small values in [-1, 1) keep activations finite through deep chains.
        data = rng.uniform(-1.0, 1.0, count).astype(_FLOAT_TYPES[element])
    elif element == "bf16":
        f32 = rng.uniform(-1.0, 1.0, count).astype(np.float32)
        data = (f32.view(np.uint32) >> 16).astype(np.uint16)
    elif element in _INT_TYPES:
        # 0 and 1 only: integer constants may serve as indices, which must
        # stay in bounds for the program to run.
        data = rng.integers(0, 2, count).astype(_INT_TYPES[element])
    else:
        raise ValueError(f"cannot fill a dense_resource of element type {element!r}")
    if data.dtype.kind in "iu" and count > 1 and np.all(data == data.flat[0]):
        data.flat[0] = 1 - data.flat[0]
    alignment = max(data.dtype.itemsize, 1)
    return (
        "0x"
        + alignment.to_bytes(4, "little").hex().upper()
        + data.tobytes().hex().upper()
    )


def fill_missing_resources(
    text: str, seed: int = 0, max_bytes: int | None = MAX_FILL_BYTES
) -> str:
    """Give every ``dense_resource`` reference without a blob deterministic data.

    Each ``dense_resource<__elided__>`` (what MLIR prints for an elided large
    constant) gets its own fresh name, so constants of different types do not
    share one blob; other references keep their names. Blobs already in the
    text are kept untouched.

    Parameters
    ----------
    text : str
        MLIR text (torch, linalg, stablehlo, tosa or bufferized) whose
        ``dense_resource`` references may lack their blobs.
    seed : int, default=0
        Seed of the generated data; with the resource name it fixes every value.
    max_bytes : int or None, default=MAX_FILL_BYTES
        Most bytes of data to make (1 GiB); None for no limit.

    Returns
    -------
    str
        Text whose ``dialect_resources`` section holds a blob for every
        reference: values uniform in [-1, 1) for floats, 0 or 1 for integers,
        never all equal, stored with the element size as alignment.

    Raises
    ------
    ValueError
        If a reference has a dynamic shape or an unsupported element type, if
        one name is used with two different types, or if the data would
        exceed ``max_bytes``.

    Examples
    --------
    >>> t = "%c = arith.constant dense_resource<w> : tensor<2xf32>\\n"
    >>> filled = fill_missing_resources(t)
    >>> "w: \\"0x04000000" in filled
    True
    """
    span = _find_section(text)
    body = text if span is None else text[: span[0]]
    section = "" if span is None else text[span[0] : span[1]]
    existing = set()
    if section:
        entry = _entry_span(section, "dialect_resources")
        if entry is not None:
            existing = {m.group(1) for m in _BLOB_ENTRY.finditer(section)}

    needed: dict[str, tuple[int, str]] = {}
    pieces: list[str] = []
    last = 0
    n_elided = 0
    matches = sorted(
        list(_REF_TENSOR.finditer(body)) + list(_REF_MEMREF.finditer(body)),
        key=lambda m: m.start(),
    )
    for m in matches:
        key = m.group("key")
        count, element = _element_type(m.group("shape"))
        if key == _ELIDED:
            while f"elided_{n_elided}" in existing:
                n_elided += 1
            new_key = f"elided_{n_elided}"
            n_elided += 1
            k0, k1 = m.span("key")
            pieces.append(body[last:k0])
            pieces.append(new_key)
            last = k1
            key = new_key
        if key in existing:
            continue
        if key in needed and needed[key] != (count, element):
            raise ValueError(
                f"dense_resource<{key}> is used with two types: "
                f"{needed[key]} and {(count, element)}"
            )
        needed[key] = (count, element)
    pieces.append(body[last:])
    body = "".join(pieces)
    if max_bytes is not None:
        total = sum(count * _itemsize(element) for count, element in needed.values())
        if total > max_bytes:
            raise ValueError(
                f"the weights to fill take {total / 1e9:.2f} GB, over the "
                f"{max_bytes / 1e9:.2f} GB budget (max_bytes): the filled text and "
                "its compile would not fit in memory"
            )
    if not needed:
        return body + section + ("" if span is None else text[span[1] :])

    entries = ",\n".join(
        f'      {key}: "{_blob(key, count, element, seed)}"'
        for key, (count, element) in needed.items()
    )
    if not section:
        return (
            body.rstrip()
            + "\n\n{-#\n  dialect_resources: {\n    builtin: {\n"
            + entries
            + "\n    }\n  }\n#-}\n"
        )
    tail = text[span[1] :]
    entry = _entry_span(section, "dialect_resources")
    if entry is None:
        inner = section[3:-3].strip()
        new = "dialect_resources: {\n    builtin: {\n" + entries + "\n    }\n  }"
        section = "{-#\n  " + (inner + ",\n  " if inner else "") + new + "\n#-}"
    else:
        d_start, d_brace, d_end = entry
        sub = section[d_brace:d_end]
        builtin = _entry_span(sub, "builtin")
        if builtin is None:
            insert = d_brace + 1
            add = "\n    builtin: {\n" + entries + "\n    },"
        else:
            insert = d_brace + builtin[1] + 1
            add = (
                "\n"
                + entries
                + ("," if sub[builtin[1] + 1 : builtin[2] - 1].strip() else "")
            )
        section = section[:insert] + add + section[insert:]
    return body + section + tail
