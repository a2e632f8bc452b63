"""Evaluation of the catalog's named FLOP and byte rules on one op.

The vocabulary itself (names, parameters, formulas) is documented in
:mod:`mlircost_classic.featurize._catalog`. Every rule returns ``None`` when the
text does not state the shapes it needs, so that callers can count such ops
instead of silently treating them as free.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..mlir._ir import Op, ShapedType, element_bits
from ._catalog import Rule

__all__ = [
    "OpContext",
    "conv_attributes",
    "nbytes",
    "op_bytes",
    "op_flops",
    "parse_ints",
]


@dataclass
class OpContext:
    """What a rule may need beyond the op itself.

    Parameters
    ----------
    body_work : float
        Scalar work of one execution of the op's payload region (sum of the
        per-element costs of the elementwise ops in its body).
    resolve : callable
        SSA value name -> integer or list of integers it is known to hold
        (``arith.constant``, ``torch.constant.int``, ``torch.prim.ListConstruct``),
        or None.
    aliases : mapping
        Attribute aliases of the module (``#map`` -> ``affine_map<...>``).
    """

    body_work: float = 0.0
    resolve: Callable[[str], int | list[int] | None] = field(default=lambda name: None)
    aliases: Mapping[str, str] = field(default_factory=dict)
    # indexing_maps text -> parsed maps, for the module these aliases belong to
    maps_cache: dict = field(default_factory=dict, repr=False)
    # (op, its indexing_maps text, parsed maps) of the last op asked: a rule and
    # the walk ask for the same op's maps up to three times in a row
    last_maps: tuple = field(default=(None, None, None), repr=False)
    # results derived from objects the module's ops share (parsed maps, type
    # tuples), keyed by their ids; each entry holds the objects, so that an id
    # cannot be reused while its entry exists
    memo: dict = field(default_factory=dict, repr=False)

    def memoized(self, name: str, shared: tuple, compute):
        """``compute(*shared)``, once per module for the same shared objects
        (by identity; the entry keeps them alive, so an id is not reused)."""
        key = (name, *map(id, shared))
        known = self.memo.get(key)
        if known is None:
            known = self.memo[key] = (shared, compute(*shared))
        return known[1]


_INT_RE = re.compile(r"-?\d+")


def parse_ints(text: str | None) -> list[int] | None:
    """Integers of an attribute value (``dense<[2, 2]> : tensor<2xi64>``, ``array<i64: 2, 2>``, ``[2, 2]``, ``2 : i64``)."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("array<"):
        text = text[text.find(":") + 1 :]
    else:
        # Drop a trailing type (": tensor<2xi64>") whose digits are not values.
        depth = 0
        for i, ch in enumerate(text):
            if ch in "<[({":
                depth += 1
            elif ch in ">])}":
                depth -= 1
            elif ch == ":" and depth == 0:
                text = text[:i]
                break
    values = [int(v) for v in _INT_RE.findall(text)]
    return values or None


# The characters _balanced_value acts on; the text between them is skipped in C.
_VALUE_TOKEN = re.compile(r"[\[<({>\])},]")


def _nested_value(depth: int) -> str:
    """Text with groups nested ``depth`` deep; any closer closes any opener, as
    in _balanced_value, and the ``>`` of ``->`` is text."""
    plain = r"[^\[\]<>(){},\-]++|->?"
    inner = plain + "|,"
    for _ in range(depth):
        inner = plain + rf"|,|[\[<({{](?:{inner})*+[>\])}}]"
    return rf"(?:{plain}|[\[<({{](?:{inner})*+[>\])}}])*+"


# Most values in one match; one that ends elsewhere than at a top-level ',', a
# closer or the end (nested deeper, or never closed) is read token by token.
_VALUE = re.compile(_nested_value(4))


def _balanced_value(text: str, start: int) -> str:
    """The attribute value starting at ``text[start]``, up to a top-level ``,`` or ``}``.

    The ``>`` of an arrow (``affine_map<(d0, d1) -> (d1)>``) closes nothing.
    """
    end = _VALUE.match(text, start).end()
    if end == len(text) or text[end] in ",>])}":
        return text[start:end].strip()
    depth = 0
    end = len(text)
    for m in _VALUE_TOKEN.finditer(text, start):
        ch = m.group()
        if ch in "[<({":
            depth += 1
            continue
        i = m.start()
        if ch == ">" and i > start and text[i - 1] == "-":
            continue
        if depth == 0:
            end = i
            break
        if ch != ",":
            depth -= 1
    return text[start:end].strip()


@functools.lru_cache(maxsize=256)
def _assignment(name: str) -> re.Pattern:
    """Where the op text assigns attribute ``name`` (``name = ``)."""
    return re.compile(rf"(?<![\w.]){re.escape(name)}\s*=\s*")


def _attr(op: Op, names: tuple[str, ...]) -> str | None:
    """Raw value of the first attribute in ``names``, from the dictionary or the op text."""
    for name in names:
        value = op.attributes.get(name)
        if value is not None:
            return value
    for name in names:
        if name not in op.text:  # cheaper than the search, and most ops miss
            continue
        m = _assignment(name).search(op.text)
        if m:
            return _balanced_value(op.text, m.end())
    return None


def _output(op: Op) -> ShapedType | None:
    """The op's output: its first shaped result, else its last (destination) operand."""
    for t in op.result_types:
        if t.shape is not None:
            return t
    if op.operand_types and op.operand_types[-1].shape is not None:
        return op.operand_types[-1]
    return None


def _numel(t: ShapedType | None) -> int | None:
    return None if t is None else t.numel


def _operand(op: Op, index: int) -> ShapedType | None:
    try:
        return op.operand_types[index]
    except IndexError:
        return None


def _dims(t: ShapedType | None, dims) -> int | None:
    """Product of ``t.shape[d]`` for ``d`` in dims; None if unknown."""
    if t is None or t.shape is None:
        return None
    total = 1
    for d in dims:
        try:
            size = t.shape[d]
        except IndexError:
            return None
        if size is None:
            return None
        total *= size
    return total


def _mul(*values) -> float | None:
    if None in values:
        return None
    return float(math.prod(values))


def _elementwise(op, p, ctx):
    return _mul(p.get("per_element", 1), _numel(_output(op)))


def _reduction(op, p, ctx):
    return _mul(p.get("per_element", 1), _numel(_operand(op, p.get("operand", 0))))


def _matmul(op, p, ctx):
    if _indexing_maps(op, ctx)[1] is not None:
        return _generic(op, {"per_iteration": p.get("per_mac", 2)}, ctx)
    k = _dims(_operand(op, p.get("k_operand", 0)), p.get("k_dims", [-1]))
    return _mul(p.get("per_mac", 2), _numel(_output(op)), k)


_CONTRACT_RE = re.compile(
    r"(?:lhs_contracting_dimensions|contracting_dims)\s*=\s*\[([^\]]*)\]"
)


def _dot_general(op, p, ctx):
    text = " ".join(op.attributes.values()) + " " + op.text
    m = _CONTRACT_RE.search(text)
    dims = [int(v) for v in _INT_RE.findall(m.group(1))] if m else [-1]
    return _mul(p.get("per_mac", 2), _numel(_output(op)), _dims(_operand(op, 0), dims))


def _conv_macs(op, filter_operand, out_dims, per_mac):
    filt = _operand(op, filter_operand)
    total = _dims(filt, range(filt.rank or 0)) if filt is not None else None
    outs = _dims(filt, out_dims)
    if total is None or not outs:
        return None
    return _mul(per_mac, _numel(_output(op)), total / outs)


def _conv(op, p, ctx):
    return _conv_macs(
        op, p.get("filter_operand", 1), p["filter_out_dims"], p.get("per_mac", 2)
    )


_KERNEL_LAYOUT_RE = re.compile(r"\]\s*x\s*\[([^\]]*)\]")
_KERNEL_OUT_RE = re.compile(r"kernel_output_feature_dimension\s*=\s*(\d+)")


def _conv_dim_numbers(op, p, ctx):
    text = " ".join(op.attributes.values()) + " " + op.text
    m = _KERNEL_OUT_RE.search(text)
    if m:
        out_dim = int(m.group(1))
    else:
        m = _KERNEL_LAYOUT_RE.search(text)
        layout = [s.strip() for s in m.group(1).split(",")] if m else []
        out_dim = layout.index("o") if "o" in layout else -1
    return _conv_macs(op, 1, [out_dim], p.get("per_mac", 2))


def _transpose_conv(op, p, ctx):
    filt = _operand(op, p.get("filter_operand", 1))
    total = _dims(filt, range(filt.rank or 0)) if filt is not None else None
    ins = _dims(filt, p["filter_in_dims"])
    if total is None or not ins:
        return None
    return _mul(p.get("per_mac", 2), _numel(_operand(op, 0)), total / ins)


def _pool(op, p, ctx):
    window = None
    if "window_operand" in p:
        window = _numel(_operand(op, p["window_operand"]))
    elif "window_attr" in p:
        values = parse_ints(_attr(op, (p["window_attr"],)))
        window = math.prod(values) if values else None
    elif "window_list_operand" in p and len(op.operands) > p["window_list_operand"]:
        values = ctx.resolve(op.operands[p["window_list_operand"]])
        if isinstance(values, list):
            window = math.prod(values)
    return _mul(p.get("per_element", 1), _numel(_output(op)), window)


_MAP_RE = re.compile(r"affine_map<\s*\(([^)]*)\)(?:\[[^\]]*\])?\s*->\s*\((.*?)\)\s*>")


def _indexing_maps(op: Op, ctx: OpContext) -> tuple:
    """``(op, its indexing_maps text or None, the parsed maps or None)``."""
    last = ctx.last_maps
    if last[0] is op:
        return last
    raw = _attr(op, ("indexing_maps",))
    maps = None
    if raw is not None:
        cache = ctx.maps_cache
        maps = cache.get(raw, False)
        if maps is False:
            maps = cache[raw] = _parse_maps(raw, ctx.aliases)
    last = ctx.last_maps = (op, raw, maps)
    return last


def _maps(op: Op, ctx: OpContext) -> list[tuple[list[str], list[str]]] | None:
    return _indexing_maps(op, ctx)[2]


_ALIAS_RE = re.compile(r"#[\w.$-]+")
# resolved indexing_maps text -> parsed maps, shared by all modules
_PARSED_MAPS: dict = {}
_PARSED_MAPS_CAP = 1 << 12


# The aliases last resolved (a copy) and raw maps text -> resolved text under
# them: a module's passes ask for the maps of the same ops again and again.
# Replaced whole, never changed in place but for its texts, so that a thread
# reads a pair that belong together.
_RESOLVED: tuple[dict, dict] = ({}, {})


def _parse_maps(raw: str, aliases: Mapping[str, str]):
    global _RESOLVED
    if "#" in raw:
        known, resolved = _RESOLVED
        if known != aliases:
            known, resolved = _RESOLVED = (dict(aliases), {})
        text = resolved.get(raw)
        if text is None:
            if len(resolved) >= _PARSED_MAPS_CAP:
                resolved.clear()
            text = resolved[raw] = _ALIAS_RE.sub(
                lambda m: aliases.get(m.group(0), m.group(0)), raw
            )
        raw = text
    maps = _PARSED_MAPS.get(raw)
    if maps is None:
        if len(_PARSED_MAPS) >= _PARSED_MAPS_CAP:
            _PARSED_MAPS.clear()
        maps = _PARSED_MAPS[raw] = _read_maps(raw)
    return maps or None


def _read_maps(raw: str) -> list[tuple[list[str], list[str]]]:
    maps = []
    for m in _MAP_RE.finditer(raw):
        dims = [d.strip() for d in m.group(1).split(",") if d.strip()]
        results = (
            [r.strip() for r in m.group(2).split(",")] if m.group(2).strip() else []
        )
        maps.append((dims, results))
    return maps


def _domain(op: Op, ctx: OpContext) -> int | None:
    """Iteration-domain size of a structured op, from indexing maps and operand shapes."""
    maps = _maps(op, ctx)
    if maps is None:
        return None
    return ctx.memoized("domain", (maps, op.operand_types), _maps_domain)


def _maps_domain(maps, operand_types) -> int | None:
    sizes = _maps_bounds(maps, operand_types)
    return None if sizes is None else math.prod(sizes.values())


def _maps_bounds(maps, operand_types) -> dict[str, int] | None:
    """Each loop's bound (in the maps' dim order), read from the first operand
    whose map names it as a whole result and whose shape gives it; None when
    one stays unknown (dynamic)."""
    dims = maps[0][0]
    sizes: dict[str, int] = {}
    for (_, results), t in zip(maps, operand_types, strict=False):
        if t.shape is None or len(t.shape) != len(results):
            continue
        for expr, size in zip(results, t.shape, strict=True):
            if size is not None and expr in dims:
                sizes.setdefault(expr, size)
    if any(d not in sizes for d in dims):
        return None
    return {d: sizes[d] for d in dims}


def _generic(op, p, ctx):
    work = p.get("per_iteration", max(ctx.body_work, 1.0))
    domain = _domain(op, ctx)
    if domain is None:
        sizes = [t.numel for t in (*op.operand_types, *op.result_types)]
        known = [s for s in sizes if s is not None]
        domain = max(known) if known else None
    return _mul(work, domain)


def _attention(op, p, ctx):
    key = _operand(op, 1)
    s = _dims(key, [-2])
    q, out = _numel(_operand(op, 0)), _numel(_output(op))
    if s is None or q is None or out is None:
        return None
    return float(p.get("per_mac", 2) * s * (q + out))


_FLOPS: dict[str, Callable] = {
    "none": lambda op, p, ctx: 0.0,
    "elementwise": _elementwise,
    "reduction": _reduction,
    "matmul": _matmul,
    "dot_general": _dot_general,
    "conv": _conv,
    "conv_dim_numbers": _conv_dim_numbers,
    "transpose_conv": _transpose_conv,
    "pool": _pool,
    "generic": _generic,
    "attention": _attention,
}


def op_flops(op: Op, rule: Rule, ctx: OpContext) -> float | None:
    """FLOPs of one execution of ``op`` under ``rule``; None when shapes are unknown."""
    return _FLOPS[rule.name](op, rule.params, ctx)


_element_bits = functools.lru_cache(maxsize=None)(element_bits)


def nbytes(t: ShapedType) -> float:
    """Static size of ``t`` in bytes, 0 when unknown (a faster ``ShapedType.nbytes``)."""
    shape = t.shape
    if shape is None or None in shape:
        return 0.0
    bits = _element_bits(t.element)
    return math.prod(shape) * bits / 8 if bits is not None else 0.0


def _sum_bytes(types) -> float:
    return float(sum(map(nbytes, types)))


def op_bytes(op: Op, rule: Rule) -> float:
    """Bytes read and written by one execution of ``op`` (static sizes only)."""
    name = rule.name
    if name == "none":
        return 0.0
    if name == "operands_results":
        return _sum_bytes(op.operand_types) + _sum_bytes(op.result_types)
    if name == "results":
        return _sum_bytes(op.result_types)
    if name == "operands":
        return _sum_bytes(op.operand_types)
    t = _operand(op, rule.params.get("index", 0))
    return nbytes(t) if t is not None else 0.0


_STRIDES = ("strides", "stride", "window_strides")
_DILATIONS = ("dilations", "dilation", "rhs_dilation", "rhs_dilate")
_GROUPS = ("groups", "feature_group_count", "group")


def _max_int(op, names, operand, ctx) -> int:
    values = None
    if operand is not None and len(op.operands) > operand:
        resolved = ctx.resolve(op.operands[operand])
        values = [resolved] if isinstance(resolved, int) else resolved
    if values is None:
        values = parse_ints(_attr(op, names))
    return max(values) if values else 1


def conv_attributes(op: Op, rule: Rule, ctx: OpContext) -> tuple[int, int, int]:
    """Largest stride, largest dilation and group count of a convolution (1 when absent)."""
    p = rule.params
    return (
        _max_int(op, _STRIDES, p.get("stride_operand"), ctx),
        _max_int(op, _DILATIONS, p.get("dilation_operand"), ctx),
        _max_int(op, _GROUPS, p.get("groups_operand"), ctx),
    )
