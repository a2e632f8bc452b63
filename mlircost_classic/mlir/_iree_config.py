"""IREE codegen decisions as text: ``lowering_config`` and ``translation_info``.

After strategy selection (``iree-compile
--iree-hal-dump-executable-configurations-to``), each dispatch function of a
configured executable carries a ``translation_info`` (the codegen pipeline,
workgroup size, subgroup size) and its root op a ``lowering_config`` (tile
sizes per tiling level, and for matrix-core kernels the MMA intrinsic).
:func:`read_config` reads them into a :class:`CodegenConfig`;
:func:`write_config` puts an edited one back into the text, which
``iree-compile`` then compiles as is.

Both GPU (``#iree_gpu.lowering_config<{workgroup = [...], thread = [...],
reduction = [...], ...}>``) and CPU (``#iree_cpu.lowering_config<distribution
= [...], vector_common_parallel = [...], ...>``) spellings are read, as is the
older ``#iree_codegen.lowering_config<tile_sizes = [[...], ...]>`` (levels
named ``tile_sizes_0``, ``tile_sizes_1`` ...).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

__all__ = [
    "CodegenConfig",
    "mma_shape",
    "read_config",
    "root_op_header",
    "strip_config",
    "write_config",
]

_LOWERING = re.compile(
    r"lowering_config\s*=\s*#iree_(gpu|cpu|codegen)\.lowering_config<"
)
_TRANSLATION = re.compile(r"translation_info\s*=\s*#iree_codegen\.translation_info<")
_PIPELINE = re.compile(r"pipeline\s*=\s*(?:#iree_\w+\.pipeline<(\w+)>|(\w+))")
_WORKGROUP_SIZE = re.compile(r"workgroup_size\s*=\s*\[([\d,\s]*)\]")
_SUBGROUP_SIZE = re.compile(r"subgroup_size\s*=\s*(\d+)")
_INTS = re.compile(r"\[\s*-?\d+(?:\s*,\s*-?\d+)*\s*\]|\[\s*\]")
_BRACKET = re.compile(r'[<>\[\](){}"]')
_MMA = re.compile(r"(\d+)x(\d+)x(\d+)")
# Levels whose entries mean "tile this loop" and that mark the root op.
_ROOT_LEVELS = ("workgroup", "distribution", "tile_sizes_0")


@dataclass
class CodegenConfig:
    """The codegen decisions of one dispatch function.

    Attributes
    ----------
    backend : {"gpu", "cpu", "codegen"}
        The dialect of the ``lowering_config`` (``iree_gpu``, ``iree_cpu``,
        or the backend-neutral ``iree_codegen``).
    pipeline : str
        The codegen pipeline (``TileAndFuse``, ``DoubleTilingExpert`` ...).
    levels : dict
        Tiling level -> tile size per loop (0: not tiled at that level), in
        the order the text gives them.
    workgroup_size : list of int
        Threads per workgroup (x, y, z); empty on CPU.
    subgroup_size : int
        0 when the translation_info gives none.
    mma_kind : str
        The MMA intrinsic (``MFMA_F32_16x16x4_F32``), "" when none.
    flags : list of str
        Other ``lowering_config`` entries, as text (``promote_operands = [0,
        1]``, ``convert_acc_gemm``).
    """

    backend: str
    pipeline: str
    levels: dict[str, list[int]]
    workgroup_size: list[int] = field(default_factory=list)
    subgroup_size: int = 0
    mma_kind: str = ""
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain JSON-ready fields (what a variant record stores as ``config``)."""
        return {
            "backend": self.backend,
            "pipeline": self.pipeline,
            "levels": {k: list(v) for k, v in self.levels.items()},
            "workgroup_size": list(self.workgroup_size),
            "subgroup_size": self.subgroup_size,
            "mma_kind": self.mma_kind,
            "flags": list(self.flags),
        }


def mma_shape(mma_kind: str) -> tuple[int, int, int] | None:
    """(M, N, K) of an MMA intrinsic name such as ``NV_MMA_SYNC_F32_16x8x16_F16``."""
    m = _MMA.search(mma_kind)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def _closing(text: str, start: int) -> int:
    """Index just past the ``>`` that closes the ``<`` before ``start``."""
    depth = 1
    pos = start
    while True:
        m = _BRACKET.search(text, pos)
        if m is None:
            raise ValueError("unbalanced '<' in a codegen attribute")
        i, c = m.start(), m.group()
        pos = i + 1
        if c == '"':
            pos = text.index('"', pos) + 1
        elif c in "<[({":
            depth += 1
        elif not (c == ">" and text[i - 1] == "-"):  # '->' closes nothing
            depth -= 1
            if depth == 0:
                return pos


def _split_top(body: str) -> list[str]:
    """Comma-separated entries of an attribute body, at nesting depth 0."""
    items, depth, start = [], 0, 0
    for i, c in enumerate(body):
        if c in "<[({":
            depth += 1
        elif c in ">])}" and not (c == ">" and body[i - 1] == "-"):
            depth -= 1
        elif c == "," and depth == 0:
            items.append(body[start:i].strip())
            start = i + 1
    items.append(body[start:].strip())
    return [item for item in items if item]


def _ints(value: str) -> list[int]:
    return [int(v) for v in re.findall(r"-?\d+", value)]


# Cached: featurizing a candidate reads its config and its config-free text,
# and both need the spans.
@functools.lru_cache(maxsize=4096)
def _lowering_spans(text: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, dialect) of every ``lowering_config`` attribute value."""
    return tuple(
        (m.start() + m.group(0).index("#"), _closing(text, m.end()), m.group(1))
        for m in _LOWERING.finditer(text)
    )


@functools.lru_cache(maxsize=4096)
def _translation_spans(text: str) -> tuple[tuple[int, int], ...]:
    """(start, end) of every ``translation_info`` attribute value."""
    return tuple(
        (m.start() + m.group(0).index("#"), _closing(text, m.end()))
        for m in _TRANSLATION.finditer(text)
    )


def _entries(attr: str) -> list[str]:
    body = attr[attr.index("<") + 1 : -1].strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    return _split_top(body)


def _parse_lowering(attr: str) -> tuple[dict, str, list[str]]:
    levels: dict[str, list[int]] = {}
    mma, flags = "", []
    for entry in _entries(attr):
        key, _, value = (s.strip() for s in entry.partition("="))
        if key == "tile_sizes":
            for i, inner in enumerate(re.findall(r"\[[^\[\]]*\]", value[1:-1])):
                levels[f"tile_sizes_{i}"] = _ints(inner)
        elif key == "mma_kind":
            mma = re.sub(r".*<(\w+)>.*", r"\1", value)
            flags.append(entry)
        elif _INTS.fullmatch(value) and key not in ("promote_operands",):
            levels[key] = _ints(value)
        else:
            flags.append(entry)
    return levels, mma, flags


def _root_span(text: str) -> tuple[int, int, str, tuple]:
    """Span, dialect and parsed entries of the root op's ``lowering_config``."""
    spans = [(a, b, d, _parse_lowering(text[a:b])) for a, b, d in _lowering_spans(text)]
    if not spans:
        raise ValueError("no lowering_config in the text: not a configured executable")
    for span in spans:
        if any(level in span[3][0] for level in _ROOT_LEVELS):
            return span
    return max(spans, key=lambda span: len(span[3][0]))


def root_op_header(text: str) -> str:
    """The root op's text from the start of its line to its ``lowering_config``.

    For a ``linalg.generic`` this holds its ``indexing_maps``,
    ``iterator_types`` and the types of its ``ins`` and ``outs``: the loops
    the tile sizes apply to.

    Raises
    ------
    ValueError
        If the text has no ``lowering_config``.

    Examples
    --------
    >>> root_op_header(
    ...     "%0 = linalg.fill ins(%c : f32) outs(%e : tensor<4xf32>) "
    ...     "{lowering_config = #iree_gpu.lowering_config<{workgroup = [4]}>}"
    ... )
    '%0 = linalg.fill ins(%c : f32) outs(%e : tensor<4xf32>) {'
    """
    start = _root_span(text)[0]
    begin = text.rfind("\n", 0, start) + 1
    return text[begin : text.rfind("lowering_config", begin, start)]


def _translation_span(text: str) -> tuple[int, int]:
    spans = _translation_spans(text)
    if not spans:
        raise ValueError("no translation_info in the text: not a configured executable")
    return spans[0]


def read_config(text: str) -> CodegenConfig:
    """The root op's ``lowering_config`` and the ``translation_info`` of a
    configured executable.

    Parameters
    ----------
    text : str
        A configured executable (one dispatch function), as
        ``--iree-hal-dump-executable-configurations-to`` writes it.

    Returns
    -------
    CodegenConfig

    Raises
    ------
    ValueError
        If the text has no ``lowering_config`` or no ``translation_info``.

    Examples
    --------
    >>> text = (
    ...     "func.func @f() attributes {translation_info = "
    ...     "#iree_codegen.translation_info<pipeline = #iree_gpu.pipeline<TileAndFuse> "
    ...     "workgroup_size = [64, 1, 1] subgroup_size = 32>} { linalg.generic "
    ...     "{lowering_config = #iree_gpu.lowering_config<{thread = [1, 4], "
    ...     "workgroup = [4, 64]}>} }"
    ... )
    >>> read_config(text).levels
    {'thread': [1, 4], 'workgroup': [4, 64]}
    """
    _, _, dialect, (levels, mma, flags) = _root_span(text)
    t_start, t_end = _translation_span(text)
    info = text[t_start:t_end]
    pipeline = _PIPELINE.search(info)
    wg = _WORKGROUP_SIZE.search(info)
    sg = _SUBGROUP_SIZE.search(info)
    return CodegenConfig(
        backend=dialect,
        pipeline=(pipeline.group(1) or pipeline.group(2)) if pipeline else "",
        levels=levels,
        workgroup_size=_ints(wg.group(1)) if wg else [],
        subgroup_size=int(sg.group(1)) if sg else 0,
        mma_kind=mma,
        flags=flags,
    )


def _format_lowering(attr: str, dialect: str, config: CodegenConfig) -> str:
    out, nested = [], []
    flags = {entry.partition("=")[0].strip(): entry for entry in config.flags}
    for entry in _entries(attr):
        key = entry.partition("=")[0].strip()
        if key == "tile_sizes":
            nested = [
                f"[{', '.join(map(str, config.levels[f'tile_sizes_{i}']))}]"
                for i in range(sum(k.startswith("tile_sizes_") for k in config.levels))
            ]
            out.append(f"tile_sizes = [{', '.join(nested)}]")
        elif key in config.levels:
            out.append(f"{key} = [{', '.join(map(str, config.levels[key]))}]")
        else:
            out.append(flags.get(key, entry))
    body = ", ".join(out)
    if dialect == "gpu":
        body = "{" + body + "}"
    return f"#iree_{dialect}.lowering_config<{body}>"


def write_config(text: str, config: CodegenConfig) -> str:
    """``text`` with the root op's tile sizes and the workgroup size of
    ``config``.

    Only the numbers change: the levels and entries of the text are kept (a
    level or flag of ``config`` that the text lacks is ignored; a flag it has,
    such as ``subgroup_basis``, is written as ``config`` gives it), so the
    result is what the compiler would have written had it chosen these sizes.

    Raises
    ------
    ValueError
        If the text is not a configured executable, or a level changes its
        number of loops.
    """
    start, end, dialect, (old, _, _) = _root_span(text)
    for name, sizes in config.levels.items():
        if name in old and len(old[name]) != len(sizes):
            raise ValueError(
                f"level {name!r} has {len(old[name])} loops, got {len(sizes)} sizes"
            )
    text = (
        text[:start] + _format_lowering(text[start:end], dialect, config) + text[end:]
    )
    if config.workgroup_size:
        t_start, t_end = _translation_span(text)
        info = _WORKGROUP_SIZE.sub(
            f"workgroup_size = [{', '.join(map(str, config.workgroup_size))}]",
            text[t_start:t_end],
            count=1,
        )
        text = text[:t_start] + info + text[t_end:]
    return text


def strip_config(text: str) -> str:
    """``text`` with every ``lowering_config`` and ``translation_info`` value
    replaced by ``#config``: what candidates of one dispatch share."""
    spans = [(s, e) for s, e, _ in _lowering_spans(text)]
    spans += _translation_spans(text)
    out, last = [], 0
    for start, end in sorted(spans):
        out += [text[last:start], "#config"]
        last = end
    return "".join(out) + text[last:]
