"""One walk over a parsed module that computes the :class:`ShapeFeatures` columns.

The reader gives ops as a flat list in program order with their region depth;
the enclosing op of each op is recovered with a stack. Costs of ops inside loops
are multiplied by the loops' constant trip counts; ops inside the payload region
of a structured op (the body of ``linalg.generic``) are not costed on their own,
their work is part of the structured op's rule.
"""

from __future__ import annotations

import math
import operator
import re

import numpy as np

from ..mlir._ir import Op, ParsedModule
from ._catalog import FAMILIES, PAYLOAD_FAMILIES, Catalog
from ._rules import (
    OpContext,
    _element_bits,
    _maps,
    _maps_bounds,
    _output,
    _read_maps,
    conv_attributes,
    nbytes,
    op_bytes,
    op_flops,
)

__all__ = [
    "SHAPE_FEATURES",
    "LOG_FEATURES",
    "ROOT_LOOP_FEATURES",
    "ROOT_DIM_FEATURES",
    "analyze",
]

_FLOP_FAMILIES = (
    "matmul",
    "batch_matmul",
    "conv",
    "pool",
    "elementwise",
    "reduction",
    "generic",
    "data_movement",
    "memory",
    "other",
)
_BYTE_FAMILIES = _FLOP_FAMILIES + ("constant", "unknown")
_ELEMENT_CLASSES = (
    "f64",
    "f32",
    "f16",
    "bf16",
    "f8",
    "i64",
    "i32",
    "i16",
    "i8",
    "i1",
    "index",
    "complex",
    "other",
)

# Column names of the per-family and per-class blocks, in their dicts' key order.
_BYTES_BY_CLASS = tuple(f"bytes {c}" for c in _ELEMENT_CLASSES)
_OPS_BY_FAMILY = tuple(f"ops {f}" for f in FAMILIES)
_FLOPS_BY_FAMILY = tuple(f"{f} FLOPs" for f in _FLOP_FAMILIES)
_BYTES_MOVED_BY_FAMILY = tuple(f"bytes moved {f}" for f in _BYTE_FAMILIES)

SHAPE_FEATURES: tuple[str, ...] = (
    "ops",
    "functions",
    "regions",
    "blocks",
    "max region depth",
    "loops",
    "loop nest depth",
    "loops with constant trip count",
    "loop trip count max",
    "loop iterations max",
    "shaped values",
    "rank max",
    "rank mean",
    "dynamic dims",
    "dynamic values",
    "elements total",
    "largest tensor elements",
    "largest tensor bytes",
    "bytes total",
    *_BYTES_BY_CLASS,
    *_OPS_BY_FAMILY,
    "FLOPs total",
    *_FLOPS_BY_FAMILY,
    "bytes moved total",
    *_BYTES_MOVED_BY_FAMILY,
    "arithmetic intensity",
    "ops with unknown FLOPs",
    "conv stride max",
    "conv dilation max",
    "conv groups max",
    "strided convs",
    "dilated convs",
    "grouped convs",
    "compute ops",
    "FLOPs per output element max",
    "payload ops max",
    "reduction loops max",
    "heaviest op FLOPs share",
    "heaviest op FLOPs per output element",
    "heaviest op payload ops",
    "heaviest op loops",
    "heaviest op reduction loops",
    "heaviest op permuted operands",
    "heaviest op operands",
    "heaviest op output rank",
    "heaviest op output elements",
    "heaviest op innermost dim",
    "heaviest op innermost power of two",
    "heaviest op output bits",
    "heaviest op narrowest operand bits",
)
"""Names of the :class:`ShapeFeatures` columns before the log-scaled ones.

Value statistics (ranks, elements, ``bytes <element type>``) count every SSA
value once, with the type the text gives it. ``ops <family>`` counts all ops;
FLOPs and bytes moved are per execution, multiplied by constant loop trip
counts. ``arithmetic intensity`` is ``FLOPs total / bytes moved total``.

``compute ops`` counts the ops with a non-zero FLOPs estimate; ``FLOPs per
output element`` is an op's FLOPs over the element count of its output (twice
the reduction extent of a matmul, the window of a pooling op); ``payload ops
max`` and ``reduction loops max`` are the largest over those ops (see below).
The ``heaviest op`` columns describe the op with the most FLOPs (loop trip
counts included), the one a compiler makes the root of its kernel: the share of
all FLOPs it does, the scalar ops of its payload region, from its
``indexing_maps`` (when the text gives them) its loops, its reduction loops
(loops the output map leaves out) and its operands read through a permutation (a
map whose dimensions are not in increasing order), its operand count, its
output's rank, elements and innermost (last) dimension, ``innermost power of
two`` (``log2`` of the largest power of two dividing that dimension, at most 12:
how evenly it tiles), the bit width of its output element and of its narrowest
operand element. They are 0 when no op has FLOPs, or when a dimension is
dynamic.
"""

LOG_FEATURES: tuple[str, ...] = (
    "loop trip count max",
    "loop iterations max",
    "elements total",
    "largest tensor elements",
    "largest tensor bytes",
    "bytes total",
    "FLOPs total",
    *_FLOPS_BY_FAMILY,
    "bytes moved total",
    *_BYTES_MOVED_BY_FAMILY,
    "arithmetic intensity",
    "FLOPs per output element max",
    "heaviest op FLOPs per output element",
    "heaviest op output elements",
    "heaviest op innermost dim",
)
"""Heavy-tailed columns that also get a ``log1p <name>`` column."""

ROOT_LOOP_FEATURES: tuple[str, ...] = (
    "heaviest op outer parallel extent",
    "heaviest op second innermost dim",
    "heaviest op smallest parallel dim",
    "heaviest op batch extent",
    "heaviest op reduction extent",
    "heaviest op innermost reduction dim",
    "heaviest op outer power of two",
    "heaviest op second innermost power of two",
    "heaviest op reduction power of two",
)
"""Loop extents of the heaviest op: the optional columns of ``ShapeFeatures(root_loops=True)``.

A GPU compiler picks a kernel's tiles, and so its registers, from the root op's
loop extents one by one (IREE's contraction configs test the M, N and K
extents against its tile sizes), not from their product; the ``heaviest op``
columns of :data:`SHAPE_FEATURES` give only the output's elements and
innermost dimension. Read from the op's ``indexing_maps`` (a named
contraction without them, ``linalg.matmul``, ``batch_matmul`` and their
``transpose_a`` / ``transpose_b`` forms, ``matvec``, ``vecmat``, by its
definition) and its operands' static shapes: ``outer parallel extent``, the
product of the output's loops but its innermost (M, batch included);
``second innermost dim``, the output's second innermost loop (1 for a
vector); ``smallest parallel dim``, the smallest output loop over 1 (1 when
none); ``batch extent``, the product of the output loops every input reads
(a batched contraction's batch; 1 with one input); ``reduction extent``, the
product of the loops the output leaves out (K; 1 without); ``innermost
reduction dim``, the reduction loop innermost in the first input; and the
``power of two`` of the outer, second innermost and reduction extents
(``log2`` of the largest power of two dividing them, at most 12). All 0 when
there is no heaviest op, no maps, or a dynamic extent.
"""

ROOT_DIM_FEATURES: tuple[str, ...] = (
    "heaviest op M",
    "heaviest op N",
    "heaviest op smaller of M and N",
    "heaviest op largest parallel dim",
    "heaviest op last reduction loop",
    "heaviest op last parallel loop",
    "heaviest op M power of two",
    "heaviest op N power of two",
    "heaviest op last reduction loop power of two",
    "heaviest op last parallel loop power of two",
)
"""The heaviest op's loops as a contraction's M, N and K: the optional columns
of ``ShapeFeatures(root_dims=True)``, after :data:`ROOT_LOOP_FEATURES`.

IREE's GPU configuration picks a strategy from a contraction's M, N and K, not
from the output's outer and innermost extents: an MMA tile when M and N fill
its intrinsic, a subgroup reduction for a matrix-vector product whose K is a
multiple of the subgroup, a per-thread tile unrolled over K otherwise (a
4-row f32 product with K = 96 for gfx942: 472 VGPRs, with K = 128: 30).
``M`` is the product of the output loops the second input does not read
(a loop read inside a compound index such as a convolution's ``oh + kh``
counts as read), ``N`` of those the first input does not read; both 0 without
a reduction loop, with one input, or when every output loop is read by both
(an elementwise-like op). ``largest parallel dim``: the largest output loop;
``last reduction loop`` and ``last parallel loop``: the last loop of each kind
in the op's loop order (0 without one); ``power of two`` columns: ``log2`` of
the largest power of two dividing M, N and those two loops (at most 12; 0 for
0). With them, a dispatch without FLOPs takes as root its last ``linalg`` op
with maps or else the value it stores (a copy: IREE configures a copy over its
loops), and ``linalg.softmax`` counts as the reduction over its ``dimension``
that IREE decomposes it into; without them those stay zeros, as before.
"""

ROOT_DIM_LOG_FEATURES: tuple[str, ...] = ROOT_DIM_FEATURES[:6]
"""Of :data:`ROOT_DIM_FEATURES`, the extents that also get a ``log1p`` column."""

ROOT_LOOP_LOG_FEATURES: tuple[str, ...] = ROOT_LOOP_FEATURES[:6]
"""Of :data:`ROOT_LOOP_FEATURES`, the extents that also get a ``log1p`` column."""

# Named contractions' indexing maps (linalg's OpDSL definitions), for ops
# whose text leaves them out.
_NAMED_MAPS = {
    name: _read_maps(maps)
    for name, maps in {
        "linalg.matmul": "affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (k, n)>, "
        "affine_map<(m, n, k) -> (m, n)>",
        "linalg.matmul_transpose_a": "affine_map<(m, n, k) -> (k, m)>, "
        "affine_map<(m, n, k) -> (k, n)>, affine_map<(m, n, k) -> (m, n)>",
        "linalg.matmul_transpose_b": "affine_map<(m, n, k) -> (m, k)>, "
        "affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>",
        "linalg.batch_matmul": "affine_map<(b, m, n, k) -> (b, m, k)>, "
        "affine_map<(b, m, n, k) -> (b, k, n)>, affine_map<(b, m, n, k) -> (b, m, n)>",
        "linalg.batch_matmul_transpose_a": "affine_map<(b, m, n, k) -> (b, k, m)>, "
        "affine_map<(b, m, n, k) -> (b, k, n)>, affine_map<(b, m, n, k) -> (b, m, n)>",
        "linalg.batch_matmul_transpose_b": "affine_map<(b, m, n, k) -> (b, m, k)>, "
        "affine_map<(b, m, n, k) -> (b, n, k)>, affine_map<(b, m, n, k) -> (b, m, n)>",
        "linalg.matvec": "affine_map<(m, k) -> (m, k)>, affine_map<(m, k) -> (k)>, "
        "affine_map<(m, k) -> (m)>",
        "linalg.vecmat": "affine_map<(n, k) -> (k)>, affine_map<(n, k) -> (k, n)>, "
        "affine_map<(n, k) -> (n)>",
    }.items()
}

_LOOPS = frozenset(
    {
        "affine.for",
        "affine.parallel",
        "scf.for",
        "scf.forall",
        "scf.parallel",
        "scf.while",
    }
)
_FOR_RE = re.compile(
    r"=\s*(.+?)\s+to\s+(.+?)(?:\s+step\s+(\S+))?\s*(?:iter_args|:|\{|$)"
)
_TUPLE_RE = re.compile(r"=\s*\(([^)]*)\)\s+to\s+\(([^)]*)\)(?:\s+step\s+\(([^)]*)\))?")
_IN_RE = re.compile(r"\)\s+in\s+\(([^)]*)\)")
_CONST_RE = re.compile(r"(?:arith\.constant|torch\.constant\.int)\s+(-?\d+)(?![\w.])")


def _element_class(element: str) -> str:
    if element in (
        "f64",
        "f32",
        "f16",
        "bf16",
        "i64",
        "i32",
        "i16",
        "i8",
        "i1",
        "index",
    ):
        return element
    if element.startswith("f8"):
        return "f8"
    if element.startswith(("si", "ui")) and element[2:] in ("8", "16", "32", "64"):
        return "i" + element[2:]
    if element.startswith("complex"):
        return "complex"
    return "other"


# The ops _Resolver.add learns from (it ignores every other op).
_CONSTANT_OPS = frozenset(
    {"arith.constant", "torch.constant.int", "torch.prim.ListConstruct"}
)


class _Resolver:
    """Integer values of SSA names defined by constants, per function."""

    def __init__(self):
        self.values: dict[tuple[str | None, str], int | list[int]] = {}
        self.function: str | None = None

    def add(self, op: Op) -> None:
        if not op.results:
            return
        name = op.name
        if name in ("arith.constant", "torch.constant.int"):
            value = op.attributes.get("value")
            m = _CONST_RE.search(op.text) if value is None else None
            text = m.group(1) if m else (value or "").split(":")[0].strip()
            try:
                self.values[(op.function, op.results[0])] = int(text)
            except ValueError:
                pass
        elif name == "torch.prim.ListConstruct":
            items = [self.values.get((op.function, v)) for v in op.operands]
            if all(isinstance(v, int) for v in items):
                self.values[(op.function, op.results[0])] = items

    def __call__(self, name: str) -> int | list[int] | None:
        return self.values.get((self.function, name))

    def bound(self, token: str) -> int | None:
        token = token.strip()
        if token.lstrip("-").isdigit():
            return int(token)
        value = self(token)
        return value if isinstance(value, int) else None


def _trip_count(op: Op, resolve: _Resolver) -> int | None:
    """Constant trip count of a loop op (product over its induction variables)."""
    text = op.text
    if op.name == "scf.while":
        return None
    m = _IN_RE.search(text)
    if m and op.name == "scf.forall":
        ubs = [resolve.bound(t) for t in m.group(1).split(",")]
        return math.prod(ubs) if all(u is not None for u in ubs) else None
    m = _TUPLE_RE.search(text)
    if m:
        lbs, ubs = m.group(1).split(","), m.group(2).split(",")
        steps = m.group(3).split(",") if m.group(3) else ["1"] * len(lbs)
        if not (len(lbs) == len(ubs) == len(steps)):
            return None
        triple = list(zip(lbs, ubs, steps, strict=True))
    else:
        m = _FOR_RE.search(text)
        if not m:
            return None
        triple = [(m.group(1), m.group(2), m.group(3) or "1")]
    total = 1
    for lb, ub, step in triple:
        lo, hi, st = resolve.bound(lb), resolve.bound(ub), resolve.bound(step)
        if lo is None or hi is None or not st or st <= 0:
            return None
        total *= max(0, -(-(hi - lo) // st))
    return total


def _value_stats(t) -> tuple | None:
    """(rank, dynamic dims, elements, bytes, element class) of a shaped type."""
    shape = t.shape
    if shape is None or t.kind == "scalar":
        return None
    dyn = sum(d is None for d in shape)
    if dyn:
        return len(shape), dyn, None, None, None
    return len(shape), 0, math.prod(shape), nbytes(t), _element_class(t.element)


def _loop_columns(op: Op, ctx: OpContext) -> tuple[int, int, int]:
    """Loops, reduction loops and permuted operands from an op's indexing maps."""
    maps = _maps(op, ctx)
    if not maps:
        return (0, 0, 0)
    return ctx.memoized("loops", (maps,), _maps_loop_columns)


def _maps_loop_columns(maps) -> tuple[int, int, int]:
    dims = maps[0][0]
    output = set(maps[-1][1])
    permuted = 0
    for _, results in maps[:-1]:
        order = [dims.index(r) for r in results if r in dims]
        permuted += order != sorted(order)
    return (len(dims), sum(d not in output for d in dims), permuted)


# The columns _heaviest_op_columns fills: the last ones of SHAPE_FEATURES.
_HEAVIEST_OP_OWN = SHAPE_FEATURES[SHAPE_FEATURES.index("heaviest op operands") :]


def _heaviest_op_columns(op: Op | None) -> dict[str, float]:
    """The ``heaviest op`` columns read from the op itself (0 without one)."""
    if op is None:
        return dict.fromkeys(_HEAVIEST_OP_OWN, 0)
    out = _output(op)
    shape = out.shape if out is not None else None
    inner = shape[-1] if shape and shape[-1] is not None else 0
    bits = _element_bits(out.element) if out is not None and out.element else None
    operand_bits = [
        b
        for t in op.operand_types
        if t.element and (b := _element_bits(t.element)) is not None
    ]
    return {
        "heaviest op operands": len(op.operands),
        "heaviest op output rank": len(shape) if shape is not None else 0,
        "heaviest op output elements": float(
            (out.numel or 0) if out is not None else 0
        ),
        "heaviest op innermost dim": inner,
        "heaviest op innermost power of two": (
            min((inner & -inner).bit_length() - 1, 12) if inner > 0 else 0
        ),
        "heaviest op output bits": bits or 0,
        "heaviest op narrowest operand bits": min(operand_bits, default=0),
    }


def _power_of_two(value: int) -> int:
    """``log2`` of the largest power of two dividing ``value``, at most 12 (0 for 0)."""
    return min((value & -value).bit_length() - 1, 12) if value > 0 else 0


def _root_loop_columns(
    op: Op | None, ctx: OpContext, root_dims: bool = False
) -> list[float]:
    """The :data:`ROOT_LOOP_FEATURES` of the heaviest op (zeros when unknown),
    followed by its :data:`ROOT_DIM_FEATURES` when ``root_dims``."""
    width = len(ROOT_LOOP_FEATURES) + (len(ROOT_DIM_FEATURES) if root_dims else 0)
    zeros = [0.0] * width
    if op is None:
        return zeros
    if op.name.endswith("dispatch.tensor.store"):
        # a copy: IREE's root is a copy over the stored value's loops
        types = op.operand_types[:1] * 2
        rank = len(types[0].shape) if types and types[0].shape is not None else 0
        loops = [f"d{i}" for i in range(rank)]
        maps = [(loops, loops), (loops, loops)] if rank else None
    else:
        maps, types = _op_maps(op, ctx, root_dims), op.operand_types
    if not maps:
        return zeros
    dims = maps[0][0]
    if len(types) < len(maps):
        types = (*types, *op.result_types)
    bounds = _maps_bounds(maps, types)
    if bounds is None:
        return zeros
    output = [r for r in maps[-1][1] if r in dims]
    parallel = [bounds[d] for d in output]
    reduction = [d for d in dims if d not in output]
    inputs = maps[:-1]
    batch = 1
    if len(inputs) > 1:
        for d in output:
            if all(d in results for _, results in inputs):
                batch *= bounds[d]
    first = [r for r in inputs[0][1] if r in reduction] if inputs else []
    innermost_reduction = first[-1] if first else (reduction[-1] if reduction else None)
    outer = math.prod(parallel[:-1])
    second = parallel[-2] if len(parallel) > 1 else 1
    extent = math.prod(bounds[d] for d in reduction)
    row = [
        outer,
        second,
        min((p for p in parallel if p > 1), default=1),
        batch,
        extent,
        bounds[innermost_reduction] if innermost_reduction else 1,
        _power_of_two(outer),
        _power_of_two(second),
        _power_of_two(extent),
    ]
    if root_dims:
        row += _root_dim_columns(bounds, output, inputs, reduction)
    return row


_DIM_TOKEN = re.compile(r"[A-Za-z_]\w*")


def _root_dim_columns(bounds, output, inputs, reduction):
    """The :data:`ROOT_DIM_FEATURES` of an op's loops (see there)."""
    m = n = 0
    if reduction and len(inputs) > 1:
        read = [
            {t for r in results for t in _DIM_TOKEN.findall(r)}
            for _, results in inputs[:2]
        ]
        m = math.prod(bounds[d] for d in output if d not in read[1])
        n = math.prod(bounds[d] for d in output if d not in read[0])
        if m == 1 and n == 1:
            m = n = 0
    loops = list(bounds)
    last_reduction = next((bounds[d] for d in reversed(loops) if d in reduction), 0)
    last_parallel = next((bounds[d] for d in reversed(loops) if d not in reduction), 0)
    return [
        m,
        n,
        min(m, n),
        max((bounds[d] for d in output), default=0),
        last_reduction,
        last_parallel,
        _power_of_two(m),
        _power_of_two(n),
        _power_of_two(last_reduction),
        _power_of_two(last_parallel),
    ]


def _op_maps(op: Op, ctx: OpContext, root_dims: bool = False):
    """An op's indexing maps: from its text, else linalg's definition of a
    named contraction, else (with ``root_dims``) a softmax's reduction; None
    when none of them gives any."""
    maps = _maps(op, ctx) or _NAMED_MAPS.get(op.name)
    if maps is None and root_dims and op.name == "linalg.softmax":
        maps = _softmax_maps(op)
    return maps


_SOFTMAX_DIM = re.compile(r"dimension\s*\(\s*(\d+)\s*\)")


def _softmax_maps(op: Op):
    """``linalg.softmax`` as the reduction IREE decomposes it into: the input's
    loops, its ``dimension`` reduced (None when the text does not say)."""
    found = _SOFTMAX_DIM.search(op.text)
    shape = op.operand_types[0].shape if op.operand_types else None
    if found is None or shape is None or int(found.group(1)) >= len(shape):
        return None
    loops = [f"d{i}" for i in range(len(shape))]
    kept = [d for i, d in enumerate(loops) if i != int(found.group(1))]
    return [(loops, loops), (loops, kept)]


def _fallback_root(module: ParsedModule, ctx: OpContext) -> Op | None:
    """The root IREE gives a dispatch without FLOPs: its last ``linalg`` op
    with indexing maps (a transpose, a broadcast), else its last store of a
    dispatch tensor (a copy, which IREE's configuration makes a copy op)."""
    store = None
    for op in reversed(module.ops):
        if op.name.startswith("linalg.") and _op_maps(op, ctx):
            return op
        if store is None and op.name.endswith("dispatch.tensor.store"):
            store = op
    return store


def _nesting(ops: list[Op], specs: list) -> tuple[list[int], list[float]]:
    """Enclosing op of each op (-1 at top level) and scalar work of payload bodies."""
    n = len(ops)
    parent = [-1] * n
    stack: list[int] = []
    body_work = [0.0] * n
    for i, op in enumerate(ops):
        while stack and ops[stack[-1]].depth >= op.depth:
            stack.pop()
        if stack:
            parent[i] = stack[-1]
            spec = specs[i]
            if spec.flops.name == "elementwise":
                body_work[stack[-1]] += spec.flops.params.get("per_element", 1)
        if op.num_regions:
            stack.append(i)
    return parent, body_work


class _CostWalk:
    """Loops, FLOPs, bytes moved and convolution facts, in one walk over the ops.

    Costs of ops inside loops are multiplied by the loops' constant trip counts;
    ops inside a structured op's payload region are not costed on their own.
    """

    def __init__(self, module: ParsedModule, specs: list):
        self.ops = module.ops
        self.specs = specs
        self.parent, self.body_work = _nesting(module.ops, specs)
        self.resolver = _Resolver()
        self.ctx = OpContext(0.0, self.resolver, module.attribute_aliases)
        self.family_counts = dict.fromkeys(FAMILIES, 0)
        self.flops_by_family = dict.fromkeys(_FLOP_FAMILIES, 0.0)
        self.bytes_by_family = dict.fromkeys(_BYTE_FAMILIES, 0.0)
        self.flops_total = self.bytes_total = 0.0
        self.loops = self.const_loops = self.max_nest = self.unknown_flops = 0
        self.trip_max = self.iterations_max = 0.0
        self.stride_max = self.dilation_max = self.groups_max = 1
        self.strided = self.dilated = self.grouped = 0
        self.compute_ops = 0
        self.per_output_max = self.payload_max = 0.0
        self.reductions_max = 0
        self.heaviest, self.heaviest_flops, self.heaviest_per_output = None, 0.0, 0.0
        self.heaviest_payload = 0.0
        self.heaviest_loops = (0, 0, 0)

    def run(self) -> dict[str, float]:
        ops, specs, parent = self.ops, self.specs, self.parent
        n = len(ops)
        multiplier = [1.0] * n  # product of enclosing constant trip counts
        loop_depth = [0] * n  # loops enclosing op i, itself included
        in_payload = [False] * n
        resolver = self.resolver
        for i, op in enumerate(ops):
            spec = specs[i]
            family = spec.family
            self.family_counts[family] += 1
            p = parent[i]
            resolver.function = op.function
            if op.name in _CONSTANT_OPS:
                resolver.add(op)
            if p >= 0:
                multiplier[i] = multiplier[p]
                loop_depth[i] = loop_depth[p]
                in_payload[i] = in_payload[p] or specs[p].family in PAYLOAD_FAMILIES
            trips = None
            if op.name in _LOOPS:
                loop_depth[i] += 1
                trips = self._loop(op, loop_depth[i], multiplier[i])
            if in_payload[i]:
                continue
            if spec.flops.name != "none":
                self._flops(op, spec, self.body_work[i], multiplier[i])
            if spec.bytes.name != "none":
                moved = op_bytes(op, spec.bytes) * multiplier[i]
                self.bytes_total += moved
                if family in self.bytes_by_family:
                    self.bytes_by_family[family] += moved
            if family == "conv":
                self._conv(op, spec)
            if trips is not None:
                # The loop's own cost is paid once; its body runs `trips` times.
                multiplier[i] *= trips
        return self.columns()

    def _loop(self, op: Op, depth: int, multiplier: float) -> int | None:
        self.loops += 1
        self.max_nest = max(self.max_nest, depth)
        trips = _trip_count(op, self.resolver)
        if trips is not None:
            self.const_loops += 1
            self.trip_max = max(self.trip_max, trips)
            self.iterations_max = max(self.iterations_max, multiplier * trips)
        return trips

    def _flops(self, op: Op, spec, body_work: float, multiplier: float) -> None:
        ctx = self.ctx
        ctx.body_work = body_work
        flops = op_flops(op, spec.flops, ctx)
        if flops is None:
            self.unknown_flops += 1
            return
        if not flops:
            return
        self.compute_ops += 1
        out = _output(op)
        numel = out.numel if out is not None else None
        per_output = flops / numel if numel else 0.0
        if per_output > self.per_output_max:
            self.per_output_max = per_output
        if body_work > self.payload_max:
            self.payload_max = body_work
        loops_of = _loop_columns(op, ctx)
        if loops_of[1] > self.reductions_max:
            self.reductions_max = loops_of[1]
        flops *= multiplier
        if flops > self.heaviest_flops:
            self.heaviest, self.heaviest_flops = op, flops
            self.heaviest_per_output = per_output
            self.heaviest_payload = body_work
            self.heaviest_loops = loops_of
        self.flops_total += flops
        if spec.family in self.flops_by_family:
            self.flops_by_family[spec.family] += flops

    def _conv(self, op: Op, spec) -> None:
        stride, dilation, groups = conv_attributes(op, spec.flops, self.ctx)
        self.stride_max = max(self.stride_max, stride)
        self.dilation_max = max(self.dilation_max, dilation)
        self.groups_max = max(self.groups_max, groups)
        self.strided += stride > 1
        self.dilated += dilation > 1
        self.grouped += groups > 1 or "depthwise" in op.name

    def columns(self) -> dict[str, float]:
        conv = self.family_counts["conv"]
        flops_total, bytes_total = self.flops_total, self.bytes_total
        loops, reductions, permuted = self.heaviest_loops
        return {
            "loops": self.loops,
            "loop nest depth": self.max_nest,
            "loops with constant trip count": self.const_loops,
            "loop trip count max": self.trip_max,
            "loop iterations max": self.iterations_max,
            **dict(zip(_OPS_BY_FAMILY, self.family_counts.values(), strict=True)),
            "FLOPs total": flops_total,
            **dict(zip(_FLOPS_BY_FAMILY, self.flops_by_family.values(), strict=True)),
            "bytes moved total": bytes_total,
            **dict(
                zip(_BYTES_MOVED_BY_FAMILY, self.bytes_by_family.values(), strict=True)
            ),
            "arithmetic intensity": flops_total / bytes_total if bytes_total else 0.0,
            "ops with unknown FLOPs": self.unknown_flops,
            "conv stride max": self.stride_max if conv else 0,
            "conv dilation max": self.dilation_max if conv else 0,
            "conv groups max": self.groups_max if conv else 0,
            "strided convs": self.strided,
            "dilated convs": self.dilated,
            "grouped convs": self.grouped,
            "compute ops": self.compute_ops,
            "FLOPs per output element max": self.per_output_max,
            "payload ops max": self.payload_max,
            "reduction loops max": self.reductions_max,
            "heaviest op FLOPs share": (
                self.heaviest_flops / flops_total if flops_total else 0.0
            ),
            "heaviest op FLOPs per output element": self.heaviest_per_output,
            "heaviest op payload ops": self.heaviest_payload,
            "heaviest op loops": loops,
            "heaviest op reduction loops": reductions,
            "heaviest op permuted operands": permuted,
            **_heaviest_op_columns(self.heaviest),
        }


def _value_columns(ops: list[Op]) -> dict[str, float]:
    """Statistics over every SSA value, once, with the first type the text gives it."""
    values: dict = {}
    first = values.setdefault
    # zip without its keyword: zip(..., strict=False) takes the slow call path
    # (a keyword dict per call), a third of this loop's time
    for op in ops:
        fn = op.function
        if op.result_types:
            for name, t in zip(op.results, op.result_types):  # noqa: B905
                first((fn, name), t)
        if op.operand_types:
            for name, t in zip(op.operands, op.operand_types):  # noqa: B905
                first((fn, name), t)
    shaped = rank_sum = rank_max = 0
    dyn_dims = dyn_values = 0
    elements = largest_elems = largest_bytes = total_bytes = 0.0
    bytes_by_class = dict.fromkeys(_ELEMENT_CLASSES, 0.0)
    # Values share type objects (the reader caches them): work each out once.
    seen: dict[int, tuple | None] = {}
    for t in values.values():
        stats = seen.get(id(t), False)
        if stats is False:
            stats = seen[id(t)] = _value_stats(t)
        if stats is None:
            continue
        rank, dyn, numel, nb, element_class = stats
        shaped += 1
        rank_sum += rank
        if rank > rank_max:
            rank_max = rank
        dyn_dims += dyn
        dyn_values += dyn > 0
        if dyn:
            continue
        elements += numel
        largest_elems = max(largest_elems, numel)
        largest_bytes = max(largest_bytes, nb)
        total_bytes += nb
        bytes_by_class[element_class] += nb
    return {
        "shaped values": shaped,
        "rank max": rank_max,
        # == float(np.mean(ranks)): small integers sum exactly in any order
        "rank mean": rank_sum / shaped if shaped else 0.0,
        "dynamic dims": dyn_dims,
        "dynamic values": dyn_values,
        "elements total": elements,
        "largest tensor elements": largest_elems,
        "largest tensor bytes": largest_bytes,
        "bytes total": total_bytes,
        **dict(zip(_BYTES_BY_CLASS, bytes_by_class.values(), strict=True)),
    }


# The values of a by-name dict of columns, in SHAPE_FEATURES order.
_IN_COLUMN_ORDER = operator.itemgetter(*SHAPE_FEATURES)


def analyze(
    module: ParsedModule,
    catalog: Catalog,
    root_loops: bool = False,
    root_dims: bool = False,
) -> np.ndarray:
    """The :data:`SHAPE_FEATURES` row of one module (without log-scaled columns),
    followed by the :data:`ROOT_LOOP_FEATURES` when ``root_loops`` and the
    :data:`ROOT_DIM_FEATURES` after them when ``root_dims`` too."""
    walk = _walk(module, catalog)
    row = _IN_COLUMN_ORDER(_columns(module, walk))
    if root_loops:
        root = walk.heaviest
        if root is None and root_dims:
            root = _fallback_root(module, walk.ctx)
        row = (*row, *_root_loop_columns(root, walk.ctx, root_dims))
    return np.array(row, dtype=float)


def _walk(module: ParsedModule, catalog: Catalog) -> _CostWalk:
    lookup = catalog.lookup
    return _CostWalk(module, [lookup(op.name) for op in module.ops])


def _columns(module: ParsedModule, walk: _CostWalk) -> dict[str, float]:
    """The :data:`SHAPE_FEATURES` of one module, by name."""
    ops = module.ops
    return {
        "ops": len(ops),
        "functions": len(module.functions),
        "regions": module.num_regions,
        "blocks": module.num_blocks,
        "max region depth": module.max_depth,
        **_value_columns(ops),
        **walk.run(),
    }
