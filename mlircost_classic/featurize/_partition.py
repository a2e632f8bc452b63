"""Split a linalg-on-tensors module into the dispatches IREE would form.

:func:`partition_dispatches` approximates IREE's dispatch formation
(``compiler/src/iree/compiler/DispatchCreation/FormDispatchRegions.cpp`` and the
elementwise fusion before it) on the project's MLIR reader, without MLIR's
libraries or a compiler:

- f64 is demoted to f32 (``--iree-input-demote-f64-to-f32``) and ops that
  then compute the same value are merged (CSE: the f64 and f32 means of a
  torch layer norm are one reduction), as are elementwise ops that apply
  the same body to the same values but for unit dims (``FoldUnitExtentDims``
  comes first: an upsampling's indices on 32 and on 32x1 rows);
- a ``linalg.batch_matmul`` whose right operand broadcasts a 2-D weight along
  the batch is a ``linalg.matmul`` over batch x rows
  (``ConvertBatchMatmulToMatmul``), the same executable as a
  ``torch.nn.Linear`` on the collapsed input;
- a named contraction or convolution whose init a linalg op other than a
  fill computes (torch-mlir's convolution starts from its broadcast bias)
  accumulates into a zero fill, and an elementwise add of the old init
  follows it (``DetachElementwiseFromNamedOps``): the bias fuses into the
  add, the add into the root's dispatch or the next one, and a dispatch
  binds the bias, not its broadcast;
- ops whose inputs are all constants are evaluated at compile time
  (``--iree-opt-const-eval``) and form no dispatch, except index arithmetic
  (from ``linalg.index``) that IREE's hoisting policy makes a global: a
  hoistable leaf (reads a tensor; no broadcast, transpose, bit-extend or i1
  result) that an op not hoisted reads, the ops decided in the order the
  const-expr analysis reaches them from the constants (along a chain of
  leaves every other op is a global: T5's relative-position buckets are
  nine; a bicubic upsampling's positions as floats are one alone); each is
  one initializer dispatch unless the JIT evaluates it
  (it reads a constant, or a global, and no global computed at run time: a
  position table gathered by positions) (a concat of them is a
  global written by a copy per input; a mask only when two ops read it and it
  depends on another such global); reshapes, ``tensor.empty``, fills and
  ``tensor.extract_slice`` are folded into the dispatches that read them (a
  slice, and a small constant, or a small copy of one, with its offsets or
  data, so executables that differ in them stay apart; a value computed from
  constants is a global, bound like an argument), but a
  slice of a computed tensor read through a reshape is copied out (reshapes
  are not cloneable into dispatches), and so is one read by a named
  contraction through reshapes of unit dims only when it, or a slice it
  reads, cuts a dim it keeps more than one element of (IREE cannot move the
  reshape above that slice, ``BubbleExpandThroughExtract``; a contraction
  keeps its unit dims): an SSM's per-step matrix-vector products are then
  one executable;
- reshapes and transposes that only add, drop or move unit dims are none
  (``FoldUnitExtentDims``; a ``linalg.transpose`` prints no result type: its
  ``outs`` type is read), and a reduction over unit loops only (a 1x1
  depthwise convolution too) is elementwise;
- a ``rotate_half`` (``concat(-x[..., h:], x[..., :h])``) is raised to one
  elementwise op reading ``x`` (``RaiseSpecialOps``), unless ``x`` is itself
  a slice of part of a tensor (a partial rotary embedding: the slices compose
  into slices of the whole, and the match fails);
- elementwise ops (all-parallel ``linalg.generic``, ``linalg.transpose`` /
  ``broadcast`` / ``map`` / ``copy``) fuse with an elementwise or reduction
  consumer when it is their only user, as IREE's elementwise op fusion does
  (an expand_shape between them bubbles up; no transpose crosses a
  collapse_shape but a ``linalg.transpose`` of one nothing else reads, which
  moves above it, ``BubbleTransposeThroughCollapseShape``, leaving a pad
  after it a copy, and a collapse of a ``linalg.transpose`` read by an
  elementwise op with identity maps, which folds into that op by expanding
  its loops: a Swin's window reverse and residual add), and a producer with several users fuses into the first
  when that is elementwise (not fused into a reduction) and all its users are
  in one group, or, in two rounds after that in which a consumer takes one
  producer at most (the one it reads first, with as many non-unit loops,
  that no other op reads before it, neither extending nor truncating), and
  none from a producer that has taken its own in the round
  (``FuseMultiUseElementwiseProducer``: an RWKV step is three dispatches;
  a value only returned is read by a barrier where it is written); a
  producer that narrows its elements (a truncate, as
  fused so far) fuses only into a truncate or an all-parallel op of one
  input, never into one that widens them, which its consumers below have
  already fused into (IREE fuses from the last op up: a transpose and an
  ``extf`` are one extend, and a copy read by two ops is two uses), and a
  root then takes it; nothing fuses into an op that only broadcasts its
  input (an LLM's repeated keys), unless an elementwise op below has taken
  the broadcast in first, or the producer writes i1, only copies, or reads
  none of its operands (a flip); an op reading
  a value with ``tensor.extract`` (a flip, a gather) fuses no producer of it;
  a pure broadcast, or a transpose of a contraction operand's two innermost
  dims, whose only user is a contraction folds into it (IREE's
  ``matmul_like`` dispatches) unless a reshape lies between them, and leaves
  its own producers behind; such a transpose of a root's result read through
  single-use elementwise ops moves past them into the contraction
  (``PropagateLinalgTranspose``);
- that fusion stops short of a fused op that would read 16 distinct values
  (``kIreeMaxOperandCount`` in ``ElementwiseOpFusion.cpp``: the producer's
  operands and the consumer's others; a value is seen through its reshapes,
  ``tensor.empty`` is one per type, a splat folds into the body, and an op
  that writes i1, only copies or reads none of its operands (an iota)
  fuses into each reader, whatever its uses, bringing its operands): where
  the ops one tree of such fusions joins read 16 values or more in all,
  MLIR's greedy driver is simulated (ops from the last up, each fusing its
  first fusable operand; then the fused op and the readers of the op it
  replaced; a fused producer is erased, its producers left with one use,
  only when popped; sweeps until none fuses): a bicubic upsampling's 16
  taps are 11 ops in 4 executables;
- a softmax (max reduction, subtract, exp, sum reduction, divide) is raised
  to one op (``RaiseSpecialOps``: a log-softmax is not);
- every root (contraction, convolution, pooling, reduction, softmax) is one
  dispatch and takes the elementwise group that is the only user of its
  result (first root in program order wins), unless that group has more
  non-unit loops than the root, the root reduces to a scalar, it reads the
  result through a slice, or a transpose would cross a reshape it cannot
  move past (``isFusableWithConsumer``, ``SinkReshapes``: an expand_shape
  moves past a transpose that keeps each expanded group of dims together, a
  collapse_shape always), nor a batch matmul of one row (M = 1 kept, batch
  and N not 1) an op whose result is read through an expand_shape of
  non-unit dims (``FoldUnitExtentDims`` puts a collapse after the batch
  matmul, ``BubbleUpExpandShapes`` moves the expand above the op), nor a
  group that reads the root's result through an expand_shape splitting a dim
  and reads a value IREE binds (computed at run time, or a constant or
  const-eval global that is no splat and over 256 bytes; not one it clones)
  along some but not all of the split dims (the reshape cannot sink below
  it: a batch-2 GPT-2's causal mask over batch x heads, a Swin's relative
  position bias over windows x heads); a scan /
  sort / gather takes no consumer; an elementwise group that only a softmax
  reads and that, with the extend between them, widens its elements is a
  bit-extend IREE clones into the softmax's dispatch;
- ``tensor.pad`` and ``tensor.insert_slice`` write into the producer's
  dispatch when the source is computed, read by nothing else and not
  reshaped (also by a collapse of a root's result that sinks below its
  consumer: a grouped convolution's); otherwise, and for every
  ``tensor.concat`` input, a copy that is not contiguous is one dispatch
  (IREE's ``slow_memcpy``, one executable per offset), but for a concat's
  leading inputs computed from constants (const-eval writes them into the
  empty concat at compile time: a batch-2 ViT's class token), as is a returned,
  padded or concatenated slice that is not (any stride other than 1, even
  over a unit dim, makes a copy; but a unit-stride slice that is the only
  use of a ``linalg.generic`` moves above it, which computes the slice
  only, ``BubbleUpExtract``); a bit-extend of a slice is
  cloned into its reader with the slice (an RNN's steps differ in offsets),
  and a small bit-extended constant is inlined by its own size;
- a splat constant is cloned into each dispatch that reads it, whatever its
  size (``isClonableIntoDispatchOp``), and a broadcast of a constant (no
  hoisted leaf) is inlined by the constant's size; one that no reader takes
  as an input (a gather's body captures it, a concat copies it) is a global
  an initializer dispatch computes (the JIT evaluates no lone broadcast);
- bit-extends are cloned into their readers, but an i1 producer fuses into
  its extend first, a scan takes no clone, and no producer fuses into an
  extend read by several ops; an op reading none of its operands (a flip) is
  cloned into each all-parallel reader (a transpose it reads with
  ``tensor.extract`` is none), and so is a copy (a transpose) that a concat,
  pad or insert_slice also reads, which is then a dispatch of its own (a copy
  fuses into any consumer, ``areFusableAsElementwiseOps``), and a transpose
  that nothing has fused into and that only all-parallel ops and reductions
  read, which forms none: its readers, reading its source through its map,
  are executables of their own (a MobileViT's unfold read by a layer norm and
  a residual add); a transpose read by a ``conv_2d_nchw_fchw`` only moves into
  the convolution's input map, through expands of its non-unit dims too
  (``BubbleUpExpandShapes``: a MobileViT's fold of 2x2 patches);
- a reduction over unit loops combining its element with its init's
  identity (``maximumf`` with -inf, ``mulf`` with 1), or a max pool over a
  one-element window with unit strides from -inf, is a copy, no dispatch;
  const-eval hoists no value more than 1 MiB larger than its constants;
- a gather whose body asserts its bounds (``cf.assert``) is not erased once
  fused into its reader, so its producers keep a second use and stay apart
  (a gather-like one is cloned in all the same); a root takes its consumers
  past a reader that only gathers from its group or a concat of an
  elementwise op of it (``FuseMultiUseElementwiseProducer`` runs first); a
  ``dense_resource`` constant reshaped across non-unit dims is bound, not
  inlined (no fold reshapes resource data); a transpose (not of a slice)
  read by a raised ``rotate_half`` and one elementwise op is none, both
  reading its source (``FuseTransposeWithLinalgOpConsumer``): a query's bias
  add, read by a gather, stays with its matmul; an iota a sort reads is a
  dispatch of its own (no hoistable leaf, and a sort takes no clone);
- identical regions are one executable (IREE's executable deduplication):
  :attr:`DispatchRegion.calls` counts them; regions that differ only in unit
  dims or in the reshapes between their ops are identical
  (``FoldUnitExtentDims`` drops unit dims before dispatches form: reductions
  too), and so are
  those whose elementwise ops that permute nothing differ only in shape, each
  operand read as many elements (``CollapseDimensions``: a bias added before
  or after the reshape of a matmul's result).

Each region's text is then written in the form IREE gives the dispatch's
executable source, the documents the kernels model learned from
(:mod:`._dispatch_form`: elementwise producers fused into their consumers'
payloads, unit dims folded and dims collapsed, convolutions and pools as
generics, a Linear's weight bound untransposed with the matmul's maps, a pad
written by its store, i1 bound as i8); the keys that tell executables apart
are taken before, from the module's own ops.

Measured against IREE's own dispatches (``benchmarks/partition_accuracy.py``):
the exact count on 2,261 of the 2,506 bundled linalg modules (90.2%; 916
dispatches off in all) and 26 of the OOD suite's 28 (92.9%) (2026-12-06);
:func:`~mlircost_classic.models.iree_regions` gives the compiler's own split
where IREE is installed.

Each region comes as an executable-source-like text (binding loads, the
region's ops, stores), the kind of document the kernels dataset holds, so the
kernels model reads it as it reads IREE's: written as IREE writes them, with a
softmax as one ``linalg.softmax``, transposes and broadcasts as
``linalg.generic``, f64 demoted to f32, and the reshapes between a region's ops
inside it.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from dataclasses import dataclass, fields

from ..mlir import MLIRSyntaxError, Op, ParsedModule, ShapedType, parse
from ._dispatch_form import (
    _ACCESS_RE,
    _SLICE_RE,
    _TENSOR_RE,
    _dispatch_form,
    _RegionReader,
)
from ._function import _Function, _functions, _iterators, _spans, _value
from ._rules import _attr, _parse_maps

__all__ = ["DispatchRegion", "dispatch_kind", "partition_dispatches"]

#: Small constants IREE inlines into a dispatch instead of binding them
#: (``--iree-flow-inline-constants-max-byte-length``).
INLINE_CONSTANT_BYTES = 256

_VIEW_OPS = frozenset(
    {
        "tensor.expand_shape",
        "tensor.collapse_shape",
        "tensor.cast",
        "tensor.reshape",
        "tensor.bitcast",
        "tensor.extract_slice",
    }
)
_FREE_OPS = frozenset(
    {"arith.constant", "tensor.empty", "func.return", "linalg.fill", "tensor.dim"}
)
_ELEMENTWISE_NAMED = frozenset(
    {"linalg.transpose", "linalg.broadcast", "linalg.map", "linalg.copy"}
)
#: How many bytes a hoisted global may exceed the constants it is computed
#: from by (``--iree-opt-const-expr-max-size-increase-threshold``).
HOIST_MAX_SIZE_INCREASE = 1 << 20

#: Rounds of multi-use producer fusion before dispatches form, one producer
#: per consumer a round (``FuseMultiUseElementwiseProducerPass``'s
#: ``numIterations``).
_SHARED_ROUNDS = 2
#: Distinct operands at which IREE's elementwise fusion stops fusing
#: (``kIreeMaxOperandCount``, the binding limit of the backends).
_MAX_OPERANDS = 16
_RESHAPES = frozenset({"tensor.expand_shape", "tensor.collapse_shape"})
# Ops copied into every dispatch that reads them.
_CLONED = frozenset({"tensor.empty", "linalg.fill", "tensor.extract_slice"})
# Named contractions and convolutions (their op interfaces: pooling ops are
# convolutions too). They take a bit-extend's source as their operand
# (``NamedImplicitCastOpConversion`` in RaiseSpecialOps: a
# ``matmul_..._f16xf16xf32`` dispatch), and an init other than a fill is
# detached from them (:func:`_detach_inits`).
_CAST_FOLDING = (
    "linalg.matmul",
    "linalg.batch_matmul",
    "linalg.matvec",
    "linalg.vecmat",
    "linalg.batch_matvec",
    "linalg.batch_vecmat",
    "linalg.dot",
    "linalg.conv_",
    "linalg.depthwise_conv_",
    "linalg.pooling_",
)
_MOVE_OPS = frozenset({"tensor.pad", "tensor.concat", "tensor.insert_slice"})
_ROOT_PREFIXES = (
    "linalg.matmul",
    "linalg.batch_matmul",
    "linalg.matvec",
    "linalg.vecmat",
    "linalg.batch_matvec",
    "linalg.dot",
    "linalg.conv",
    "linalg.depthwise_conv",
    "linalg.pooling",
    "linalg.reduce",
    "linalg.softmax",
    "linalg.contract",
    "linalg.batch_reduce_matmul",
    "tm_tensor.",
    "iree_linalg_ext.",
)
_CONTRACTIONS = (
    "linalg.matmul",
    "linalg.batch_matmul",
    "linalg.matvec",
    "linalg.vecmat",
)
_SSA_RE = re.compile(r"%[\w$.-]+(?:#\d+)?")
_SSA_SPLIT_RE = re.compile(f"({_SSA_RE.pattern})")
_IDENTITY_CAST_RE = re.compile(
    r"^(%[\w$.-]+) = arith\.(?:truncf|extf) (%[\w$.-]+) : (\w+) to \3$", re.M
)
_F64_RE = re.compile(r"f64(?!\d)")
_WIDTH_RE = re.compile(r"(?:bf|f|i|si|ui)(\d+)")
_EMPTY = re.compile(r"%[\w$.-]+ = tensor\.empty")
_RESHAPE_TEXT = ("tensor.expand_shape", "tensor.collapse_shape")
_BINDING_RE = re.compile(
    r"hal\.interface\.binding\.subspan|dispatch\.tensor\.(?:load|store)"
)
_EXTENDS = frozenset({"arith.extf", "arith.extsi", "arith.extui"})
_SPLAT_RE = re.compile(r"dense<[^\[\"<>]+>")
_DIMS_RE = re.compile(r"(?:permutation|dimensions)\s*=\s*\[([^\]]*)\]")
_PERMUTATION_RE = re.compile(r"permutation\s*=\s*\[([^\]]*)\]")
_REASSOCIATION_RE = re.compile(r"\[(\[[\d,\s\[\]]*\])\]")
_GROUP_RE = re.compile(r"\[([\d,\s]*)\]")

# The llvm-cpu target of the kernels dataset's executable sources.
_TARGET = (
    '<"llvm-cpu", "embedded-elf-x86_64", {cpu = "x86-64-v3", cpu_features = '
    '"+avx,+avx2,+bmi,+bmi2,+cmov,+crc32,+cx16,+cx8,+f16c,+fma,+fxsr,+lzcnt,+mmx,'
    '+movbe,+popcnt,+sahf,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+x87,+xsave", '
    'data_layout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-'
    'n8:16:32:64-S128", iree.encoding.resolver = #iree_cpu.cpu_encoding_resolver<>, '
    "max_stack_allocation_size = 32768 : i64, native_vector_size = 32 : i64, "
    'target_triple = "x86_64-unknown-unknown-eabi-elf"}>'
)


@dataclass(frozen=True)
class DispatchRegion:
    """One dispatch a module is predicted to run.

    Attributes
    ----------
    name : str
        IREE-style export name, ``main_dispatch_3_matmul``.
    kind : str
        What the dispatch's root is: ``"matmul"``, ``"conv"``, ``"pooling"``,
        ``"reduction"``, ``"softmax"``, ``"elementwise"``, ``"memcpy"`` or
        ``"other"``.
    text : str
        The region as an executable source (binding loads, its ops, stores),
        in the form IREE's passes give a dispatch before it writes one
        (elementwise producers fused into their consumers, unit dims folded
        and dims collapsed, convolutions as generics, i1 bound as i8:
        :func:`~mlircost_classic.featurize._dispatch_form.dispatch_form`),
        the documents the kernels dataset holds.
    calls : int
        How many identical regions the module has (one executable, run this
        many times).
    lines : tuple of int
        Lines, in the module text, of the ops of the region's first instance.
    """

    name: str
    kind: str
    text: str
    calls: int
    lines: tuple[int, ...]


# Words of IREE's export names -> DispatchRegion.kind, first match wins.
_EXPORT_KINDS = (
    ("softmax", "softmax"),
    ("matmul", "matmul"),
    ("matvec", "matmul"),
    ("conv", "conv"),
    ("pooling", "pooling"),
    ("reduction", "reduction"),
    ("memcpy", "memcpy"),
    ("elementwise", "elementwise"),
    ("transpose", "elementwise"),
    ("splat", "elementwise"),
)
_EXPORT_HEAD = re.compile(r"^.*?_dispatch_\d+_?")


def dispatch_kind(export: str) -> str:
    """The :attr:`DispatchRegion.kind` of an IREE export name.

    Parameters
    ----------
    export : str
        IREE's name of a dispatch function.

    Returns
    -------
    str

    Examples
    --------
    >>> dispatch_kind("main_dispatch_3_matmul_like_4x64x8x8x8_f32")
    'matmul'
    >>> dispatch_kind("main_dispatch_0_slow_memcpy")
    'memcpy'
    """
    tail = _EXPORT_HEAD.sub("", export)
    return next((kind for word, kind in _EXPORT_KINDS if word in tail), "other")


def _external(op: Op) -> bool:
    """A ``tm_tensor`` / ``iree_linalg_ext`` op (scan, sort, gather ...)."""
    return op.name.startswith(("tm_tensor.", "iree_linalg_ext."))


def _classify(op: Op, body: list[Op]) -> str:
    """``view``, ``free``, ``elementwise``, ``move``, ``root`` or ``other``."""
    name = op.name
    if name in _VIEW_OPS:
        return "view"
    if name in _FREE_OPS:
        return "free"
    if name in _ELEMENTWISE_NAMED:
        return "elementwise"
    if name in _MOVE_OPS:
        return "move"
    if name.startswith(_ROOT_PREFIXES):
        return "root"
    if name == "linalg.generic":
        if "reduction" in _iterators(op):
            return "root"
        payload = [b.name for b in body if b.name != "linalg.yield"]
        if len(op.operands) == 2 and len(payload) == 1 and payload[0] in _EXTENDS:
            return "view"  # IREE clones bit-extends into each consumer's dispatch
        return "elementwise"
    if op.result_types and all(t.kind != "tensor" for t in op.result_types):
        return "free"  # scalar arithmetic
    if name.startswith(("arith.", "math.", "linalg.")):
        return "elementwise"
    return "other"


def _slices_producer(fn: _Function, i: int, aliases: dict[str, str]) -> bool:
    """Whether ``tensor.extract_slice`` ``i`` moves above the
    ``linalg.generic`` it slices, which then computes the slice only
    (``BubbleUpExtract``: the generic's one use, unit strides, every indexing
    map a projected permutation)."""
    j = fn.defs.get(fn.uses[i][0]) if fn.uses[i] else None
    if j is None or fn.ops[j].name != "linalg.generic" or fn.users[j] != [i]:
        return False
    if len(fn.ops[j].results) != 1 or "reduction" in _iterators(fn.ops[j]):
        return False
    if _has_stride(fn.ops[i]):
        return False
    maps = _parse_maps(_attr(fn.ops[j], ("indexing_maps",)) or "", aliases)
    return bool(maps) and all(
        len(set(results)) == len(results) and all(r in dims for r in results)
        for dims, results in maps
    )


def _root_kind(op: Op, body: list[Op]) -> str:
    name = op.name
    if name.startswith(_CONTRACTIONS) or name.startswith("linalg.dot"):
        return "matmul"
    if name.startswith(("linalg.conv", "linalg.depthwise")):
        kernel = op.operand_types[1].shape if len(op.operand_types) > 1 else None
        pointwise = "depthwise" not in name and kernel and kernel[-2:] == (1, 1)
        return "matmul" if pointwise else "conv"
    if "pooling" in name:
        return "pooling"
    if name == "linalg.softmax":
        return "softmax"
    if name == "linalg.generic":
        payload = [b.name for b in body if b.name != "linalg.yield"]
        if (
            len(op.operands) >= 3
            and any(p.startswith("arith.mul") for p in payload)
            and any(p.startswith("arith.add") for p in payload)
            and len(payload) <= 4
        ):
            return "matmul"
        return "reduction"
    if name.startswith("linalg.reduce"):
        return "reduction"
    return "other"


def _bits(t: ShapedType) -> int | None:
    """Bit width of a tensor's elements, f64 read as the f32 IREE demotes it
    to (None for index, complex and unknown types)."""
    if t.element == "f64":
        return 32
    m = _WIDTH_RE.match(t.element or "")
    return int(m.group(1)) if m else None


def _reduces_nothing(op: Op) -> bool:
    """Whether a convolution's reduction loops (filter dims but the output
    channels) all have size 1: a 1x1 depthwise conv, or a 1x1 conv of one
    input channel, is elementwise once unit loops fold away."""
    name = op.name
    if not name.startswith(("linalg.conv", "linalg.depthwise_conv")):
        return False
    out = op.result_types[0].shape if op.result_types else None
    taps = _numel(op.operand_types[1]) if len(op.operand_types) > 1 else None
    if not out or len(out) < 3 or taps is None or None in out:
        return False
    if any(layout in name for layout in ("nhwc", "nwc", "ndhwc")):
        channels = out[-1]
    elif "ngc" in name:
        channels = out[1] * out[2]
    else:
        channels = out[1]
    return taps == channels


# Combiner -> the constants (as torch-mlir prints them) it folds away with
# (arith's folders: ``maximumf(x, -inf) -> x``, ``mulf(x, 1.0) -> x`` ...; an
# ``addf`` of +0.0 does not fold).
_IDENTITIES = {
    "arith.maximumf": {"0xFF800000", "0xFC00", "0xFF80"},
    "arith.maxnumf": {"0xFF800000", "0xFC00", "0xFF80"},
    "arith.minimumf": {"0x7F800000", "0x7C00", "0x7F80"},
    "arith.minnumf": {"0x7F800000", "0x7C00", "0x7F80"},
    "arith.mulf": {"1.000000e+00"},
    "arith.muli": {"1"},
    "arith.addi": {"0"},
}


def _identity_combine(fn: _Function, i: int) -> bool:
    """Whether reduction ``i`` (its reduction loops all of size 1) combines
    its one element with its init's identity, and only its first result is
    read: arith folds the combination (``maximumf(x, -inf)``,
    ``mulf(x, 1.0)``), leaving a copy that is no dispatch (a max over a unit
    dim, a product over a batch of one)."""
    op, body = fn.ops[i], fn.bodies[i]
    if len(op.results) > 1 and any(
        v in op.results[1:] for j in fn.users[i] for v in fn.ops[j].operands
    ):
        return False
    defined = {_value(r): b for b in body for r in b.results}
    yields = [b for b in body if b.name == "linalg.yield"]
    if not yields or not yields[-1].operands:
        return False
    combine = defined.get(_value(yields[-1].operands[0]))
    if (
        combine is None
        or combine.name not in _IDENTITIES
        or any(_value(v) in defined for v in combine.operands)
    ):
        return False
    inits = op.operands[len(op.operands) - len(op.results) :]
    return bool(inits) and _fill_value(fn, inits[0]) in _IDENTITIES[combine.name]


def _fill_value(fn: _Function, v: str) -> str | None:
    """The constant ``v`` is filled with (``linalg.fill`` of an
    ``arith.constant``), as printed; None for anything else."""
    fill = fn.defs.get(_value(v))
    if fill is None or fn.ops[fill].name != "linalg.fill":
        return None
    k = fn.defs.get(_value(fn.ops[fill].operands[0]))
    if k is None or fn.ops[k].name != "arith.constant":
        return None
    return fn.ops[k].text.split("arith.constant", 1)[-1].split(":")[0].strip()


# pooling kind -> the combiner its window folds with
_POOLING_COMBINERS = {"_max": "arith.maximumf", "_min": "arith.minimumf"}


def _identity_pooling(fn: _Function, i: int) -> bool:
    """Whether pooling ``i`` has a window of one element, unit strides and an
    init filled with its combiner's identity (a max pool from -inf): it
    folds to a copy, no dispatch (an adaptive max pool to the input's own
    size)."""
    op = fn.ops[i]
    combiner = next(
        (c for end, c in _POOLING_COMBINERS.items() if op.name.endswith(end)), None
    )
    if not op.name.startswith("linalg.pooling_") or combiner is None:
        return False
    if len(op.operand_types) < 3 or _numel(op.operand_types[1]) != 1:
        return False
    if not op.result_types or op.result_types[0].shape != op.operand_types[0].shape:
        return False  # strided: a subsample, no copy
    return _fill_value(fn, op.operands[2]) in _IDENTITIES[combiner]


def _storage_bytes(t: ShapedType) -> int:
    """Bytes a tensor takes in memory, each element rounded up to whole
    bytes (an i1 takes one)."""
    return (_numel(t) or 0) * (((_bits(t) or 8) + 7) // 8)


def _rank(op: Op) -> int | None:
    shape = op.result_types[0].shape if op.result_types else None
    return None if shape is None else len(shape)


def _unit_dims_mapped(
    dims: set[int] | None, src: ShapedType, dst: ShapedType
) -> set[int] | None:
    """``dims`` of shape ``src`` as dims of ``dst``, the same shape but for
    unit dims (a unit dim of ``src`` maps to none)."""
    if dims is None:
        return None
    a = [d for d, n in enumerate(src.shape) if n != 1]
    b = [d for d, n in enumerate(dst.shape) if n != 1]
    return {b[a.index(d)] for d in dims if d in a}


def _numel(t: ShapedType) -> int | None:
    if t.shape is None or any(d is None for d in t.shape):
        return None
    return math.prod(t.shape)


def _nonunit_dims(t: ShapedType) -> list[int | None] | None:
    return None if t.shape is None else [d for d in t.shape if d != 1]


def _nonunit(shape) -> int:
    return sum(d != 1 for d in shape or ())


def _loop_sizes(op: Op, aliases: dict[str, str]) -> dict[str, int | None] | None:
    """A ``linalg.generic``'s loop -> size (None where unknown), from its maps."""
    maps = _parse_maps(_attr(op, ("indexing_maps",)) or "", aliases)
    if not maps:
        return None
    sizes: dict[str, int | None] = dict.fromkeys(maps[0][0])
    for (_, results), t in zip(maps, op.operand_types, strict=False):
        if t.shape is not None and len(t.shape) == len(results):
            for expr, size in zip(results, t.shape, strict=True):
                if expr in sizes and sizes[expr] is None:
                    sizes[expr] = size
    return sizes


def _nonunit_loops(op: Op, aliases: dict[str, str]) -> int:
    """Loops of an op's iteration space that are not of size 1 (unknown sizes count).

    IREE's consumer fusion compares these between a dispatch's root and an
    elementwise consumer (``isFusableWithConsumer``).
    """
    name, types = op.name, op.operand_types
    out = op.result_types[0].shape if op.result_types else None
    if name == "linalg.generic":
        sizes = _loop_sizes(op, aliases)
        if sizes is not None:
            return sum(size != 1 for size in sizes.values())
        return _nonunit(out)
    if len(types) < 2 or name in _ELEMENTWISE_NAMED or name == "tensor.concat":
        return _nonunit(out)
    if "pooling" in name:
        reduced = _nonunit(types[1].shape)
    elif name.startswith(("linalg.conv", "linalg.depthwise")):
        # the filter's dims but the output channel (already in the output)
        reduced = max(_nonunit(types[1].shape) - 1, 0)
    else:
        shape = types[0].shape or ()
        reduced = _nonunit(shape[-1:])
    return _nonunit(out) + reduced


def _is_pure_view(op: Op, body: list[Op]) -> bool:
    """A transpose / broadcast / copy: the payload only yields an input."""
    if op.name in ("linalg.transpose", "linalg.broadcast", "linalg.copy"):
        return True
    return op.name == "linalg.generic" and [b.name for b in body] == ["linalg.yield"]


def _broadcasts(op: Op, body: list[Op], aliases: dict[str, str]) -> bool:
    """Whether an op only broadcasts its one input (``isBroadcastingOp`` in
    IREE's ``LinalgExt/Utils/Utils.cpp``): a ``linalg.broadcast``, or a
    ``linalg.generic`` whose payload yields its input, read with fewer dims
    than it writes."""
    if op.name == "linalg.broadcast":
        return True
    if not _is_pure_view(op, body) or op.name != "linalg.generic":
        return False
    maps = _parse_maps(_attr(op, ("indexing_maps",)) or "", aliases) or []
    return (
        len(maps) == 2
        and set(_iterators(op)) == {"parallel"}
        and maps[1][1] == maps[1][0]
        and len(maps[0][1]) < len(maps[1][1])
    )


def _moved_dims(op: Op, aliases: dict[str, str]) -> list[list[int]]:
    """Per operand, its non-unit dims in the order the op reads or writes them.

    Unit dims do not count: IREE drops them first (``FoldUnitExtentDims``), so
    a transpose that only moves 1s is a reshape.
    """
    if op.name == "linalg.transpose":
        m = _PERMUTATION_RE.search(op.text)
        shape = op.operand_types[0].shape if op.operand_types else None
        if m is None or shape is None:
            return [[1, 0]]
        perm = [int(x) for x in m.group(1).split(",") if x.strip()]
        return [[p for p in perm if p < len(shape) and shape[p] != 1]]
    if op.name != "linalg.generic":
        return []
    sizes = _loop_sizes(op, aliases) or {}
    return [
        [
            int(r[1:])
            for r in results
            if r.startswith("d") and r[1:].isdigit() and sizes.get(r) != 1
        ]
        for _, results in _parse_maps(_attr(op, ("indexing_maps",)) or "", aliases)
        or ()
    ]


def _permutes(moved: list[list[int]]) -> bool:
    """Whether an op reads or writes with permuted non-unit dimensions, from
    its :func:`_moved_dims`."""
    return any(dims != sorted(dims) for dims in moved)


def _transposes_inner(moved: list[list[int]]) -> bool:
    """Whether an op (its :func:`_moved_dims`) permutes at most its two
    innermost non-unit dims: a transpose a contraction absorbs
    (``matmul_transpose_b``, ``batch_matmul`` with a transposed operand); one
    that moves a batch dim stays a dispatch."""
    return all(dims[:-2] == sorted(dims)[:-2] for dims in moved)


def _read_order(op: Op, moved: list[list[int]]) -> list[int] | None:
    """For each non-unit output dim of a transpose, the non-unit input dim it
    reads (None where the op is no permutation of its first input); ``moved``
    is the op's :func:`_moved_dims`."""
    if op.name == "linalg.transpose":
        m = _PERMUTATION_RE.search(op.text)
        shape = op.operand_types[0].shape if op.operand_types else None
        if m is None or shape is None:
            return None
        rank = {p: k for k, p in enumerate(p for p, d in enumerate(shape) if d != 1)}
        perm = [int(x) for x in m.group(1).split(",") if x.strip()]
        return [rank[p] for p in perm if p in rank]
    if len(moved) < 2 or sorted(moved[0]) != sorted(moved[-1]):
        return None
    return [moved[0].index(d) for d in moved[-1]]


def _reassociation(op: Op) -> list[list[int]] | None:
    """A reshape's reassociation: its groups of dims (None if it has none)."""
    m = _REASSOCIATION_RE.search(op.text)
    if m is None:
        return None
    return [
        [int(x) for x in g.split(",") if x.strip()]
        for g in _GROUP_RE.findall(m.group(1))
    ]


def _expand_groups(op: Op) -> list[list[int]] | None:
    """A ``tensor.expand_shape``'s groups of non-unit result dims."""
    groups = _reassociation(op)
    shape = op.result_types[0].shape if op.result_types else None
    if groups is None or shape is None:
        return None
    rank = {p: k for k, p in enumerate(p for p, d in enumerate(shape) if d != 1)}
    return [[rank[p] for p in g if p in rank] for g in groups]


def _keeps_groups(order: list[int], groups: list[list[int]]) -> bool:
    """Whether a permutation reads each group's dims next to each other and
    in order, so that a reshape of those groups can move past it
    (``SinkReshapes``: the consumer's dims collapse)."""
    for group in groups:
        if len(group) < 2:
            continue
        if group[0] not in order:
            return False
        start = order.index(group[0])
        if order[start : start + len(group)] != group:
            return False
    return True


def _contiguous(shape: tuple, block: tuple) -> bool:
    """Whether a block of sizes ``block`` in a tensor of ``shape`` is one
    contiguous run: full in the dims after the last one it cuts, and of one
    element in the dims before."""
    cut = [
        d for d, (size, b) in enumerate(zip(shape, block, strict=False)) if size != b
    ]
    return not cut or all(b == 1 for b in block[: cut[-1]])


def _ints(text: str) -> list[int | None]:
    return [
        int(x) if x.strip().lstrip("-").isdigit() else None for x in text.split(",")
    ]


def _concat_dim(op: Op) -> int:
    m = re.search(r"dim\s*\(\s*(\d+)\s*\)|dim\s*=\s*(\d+)", op.text)
    return int(m.group(1) or m.group(2)) if m else 0


def _copies(op: Op, fn: _Function) -> list[str]:
    """Inputs of a pad / concat / insert_slice / extract_slice whose copy is
    not contiguous, or that are slices with a stride (no flow op reads one)."""
    inputs = [v for v in fn.uses[fn.index[id(op)]] if _is_tensor(fn, v)]
    out = op.result_types[0].shape if op.result_types else None
    if not inputs or out is None:
        return inputs
    source = fn.types.get(inputs[0])
    if op.name == "tensor.pad":
        if source is None or source.shape is None or _strided(fn, inputs[0]):
            return inputs[:1]  # a strided slice is copied into the pad
        return [] if _contiguous(out, source.shape) else inputs[:1]
    if op.name == "tensor.extract_slice":
        m = _SLICE_RE.search(op.text)
        if m is None or source is None or source.shape is None:
            return inputs[:1]
        contiguous = _contiguous(source.shape, _ints(m.group(2)))
        return [] if not _has_stride(op) and contiguous else inputs[:1]
    if op.name == "tensor.concat":
        dim = _concat_dim(op)
        block = tuple(1 if d == dim else size for d, size in enumerate(out))
        # an input read twice is copied to both offsets
        read = [_value(v) for v in op.operands if _is_tensor(fn, _value(v))]
        if _contiguous(out, block):
            return [v for v in read if _strided(fn, v)]  # a strided slice
        return read
    return inputs[:1]


def _has_stride(op: Op) -> bool:
    """Whether slice ``op`` has a stride other than 1 (unknown: it has)."""
    m = _SLICE_RE.search(op.text)
    return m is None or any(stride != 1 for stride in _ints(m.group(3)))


def _strided(fn: _Function, v: str) -> bool:
    """Whether ``v`` is a ``tensor.extract_slice`` with a stride other than 1
    (no flow op reads it: it is copied by a dispatch)."""
    j = fn.defs.get(v)
    return (
        j is not None
        and fn.ops[j].name == "tensor.extract_slice"
        and _has_stride(fn.ops[j])
    )


class _Groups:
    """Union-find over op indices."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, keep: int, other: int) -> bool:
        a, b = self.find(keep), self.find(other)
        if a != b:
            self.parent[b] = a
        return a != b


class _Grouping:
    """IREE-like dispatch formation over one function's ops, phase by phase.

    ``kinds`` classifies each op; ``const`` marks ops computed from constants
    only, ``iota`` those among them that IREE computes in an initializer
    dispatch (index arithmetic from ``linalg.index``). Ops are joined into
    groups (a union-find) by the fusion phases, in IREE's order.
    """

    def __init__(self, fn: _Function, aliases: dict[str, str]):
        self.fn = fn
        self.aliases = aliases
        self.copied_slices: set[int] = set()  # slices IREE copies out
        self.sunk: set[int] = set()  # transposes moved into a contraction
        self.shared_rounds = 0  # rounds of multi-use producer fusion run
        self.raised: dict[int, list[int]] = {}  # softmax's last op -> its ops
        self.cloned: set[int] = set()  # index-only ops cloned into readers
        self.transposes_in: set[int] = set()  # of them, transposes (copies)
        self.bubbled: set[int] = set()  # transposes moved above a collapse
        n = self.n = len(fn.ops)
        self.hoisted = [False] * n  # index arithmetic made a global
        self._runtime_globals: dict[int, list[int]] | None = None
        kinds = self.kinds = [
            "free"
            if i in fn.dead
            else "elementwise"
            if i in fn.raised
            else _classify(op, body)
            for i, (op, body) in enumerate(zip(fn.ops, fn.bodies, strict=True))
        ]
        moved = [
            _moved_dims(op, aliases) if kinds[i] in ("elementwise", "root") else []
            for i, op in enumerate(fn.ops)
        ]
        self.permuted = [_permutes(m) for m in moved]
        self.inner = [_transposes_inner(m) for m in moved]
        # per op (``permuted`` becomes per group as groups join)
        self.transposes = list(self.permuted)
        self.order = [
            _read_order(fn.ops[i], moved[i]) if self.permuted[i] else None
            for i in range(n)
        ]
        for i, op in enumerate(fn.ops):
            if (
                kinds[i] == "elementwise"
                and not self.permuted[i]
                and _is_pure_view(op, fn.bodies[i])
                and op.name != "linalg.broadcast"
                and op.operand_types
                and op.result_types
                and _nonunit_dims(op.operand_types[0])
                == _nonunit_dims(op.result_types[0])
            ):
                kinds[i] = "view"  # moves unit dims only: a reshape
        for i, op in enumerate(fn.ops):
            if kinds[i] == "root" and op.name == "linalg.generic":
                sizes = list((_loop_sizes(op, aliases) or {}).values())
                its = _iterators(op)
                if len(sizes) == len(its) and all(
                    size == 1
                    for size, it in zip(sizes, its, strict=True)
                    if it == "reduction"
                ):
                    # unit reduction loops fold away; combining the one
                    # element with the init's identity folds to a copy
                    kinds[i] = "view" if _identity_combine(fn, i) else "elementwise"
            elif kinds[i] == "root" and _reduces_nothing(op):
                kinds[i] = "elementwise"
            elif kinds[i] == "root" and _identity_pooling(fn, i):
                kinds[i] = "view"
        for i, op in enumerate(fn.ops):
            if kinds[i] == "view" and op.name == "linalg.generic":
                src = fn.defs.get(fn.uses[i][0]) if fn.uses[i] else None
                writes_i1 = (
                    src is not None
                    and kinds[src] == "elementwise"
                    and fn.ops[src].result_types
                    and fn.ops[src].result_types[0].element == "i1"
                )
                if writes_i1 or any(_external(fn.ops[u]) for u in fn.users[i]):
                    # an i1 producer fuses into the extend before any cloning
                    # (areFusableAsElementwiseOps), and a scan / sort takes
                    # no clone of it: the extend computes in a dispatch
                    kinds[i] = "elementwise"
        # slices IREE moves above their producer (BubbleUpExtract)
        self.bubbled_slices = {
            i
            for i, op in enumerate(fn.ops)
            if op.name == "tensor.extract_slice" and _slices_producer(fn, i, aliases)
        }
        const = self.const = [False] * n
        iota = self.iota = [False] * n  # constant, but computed by an initializer
        for i, op in enumerate(fn.ops):
            if op.name == "func.return":
                continue
            sources = [fn.defs.get(v) for v in fn.uses[i]]
            const[i] = all(j is not None and const[j] for j in sources)
            iota[i] = const[i] and (
                any(iota[j] for j in sources)
                or (
                    kinds[i] == "elementwise"
                    and _body_has(fn.bodies[i], "linalg.index")
                    and not any(
                        _is_tensor(fn, v)
                        and fn.ops[fn.defs[v]].name
                        not in ("tensor.empty", "linalg.fill")
                        for v in fn.uses[i]
                        if v in fn.defs
                    )
                )
            )
        self.computing = [
            i
            for i in range(n)
            if self.live(i) and kinds[i] in ("elementwise", "root", "move", "other")
        ]
        self.root_kinds = {
            i: _root_kind(fn.ops[i], fn.bodies[i])
            for i in self.computing
            if kinds[i] == "root"
        }
        self.groups = _Groups(n)
        self.fused = [[i] for i in range(n)]  # group -> its ops (at its root)
        self.has_root = [kinds[i] == "root" for i in range(n)]
        computing = set(self.computing)
        self.loops = [
            _nonunit_loops(fn.ops[i], aliases) if i in computing else 0
            for i in range(n)
        ]
        # root kinds of each group, to keep contractions out of reduction fusion
        self.group_roots = [
            {self.root_kinds[i]} if i in self.root_kinds else set() for i in range(n)
        ]

    def live(self, i: int) -> bool:
        return not self.const[i]

    def consumers(self, i: int) -> list[int]:
        """Ops reading ``i``'s results, looking through views.

        A slice of a computed tensor is no view here: IREE fuses no consumer
        across ``tensor.extract_slice`` (the slice is cloned into the
        consumer's dispatch and the producer's result is stored whole).
        """
        out, stack = [], list(self.fn.users[i])
        while stack:
            j = stack.pop()
            if self.kinds[j] == "view" and (
                self.fn.ops[j].name != "tensor.extract_slice"
                or j in self.bubbled_slices
            ):
                stack.extend(self.fn.users[j])
            elif j not in out:
                out.append(j)
        return out

    def reshaped(self, i: int, c: int, expand: bool = True) -> bool:
        """Whether ``c`` reads ``i`` through a reshape of its non-unit dims
        (with ``expand=False``: one that is not a ``tensor.expand_shape``).

        IREE folds unit dims away first (``FoldUnitExtentDims``), so a reshape
        that only adds or drops 1s is none.
        """
        fn, stack, seen = self.fn, [(j, False) for j in self.fn.users[i]], set()
        while stack:
            j, split = stack.pop()
            if j == c:
                if split:
                    return True
                continue
            if self.kinds[j] != "view" or (j, split) in seen:
                continue
            seen.add((j, split))
            op = fn.ops[j]
            if op.operand_types and op.result_types:
                before = [d for d in op.operand_types[0].shape or () if d != 1]
                after = [d for d in op.result_types[0].shape or () if d != 1]
                if expand or op.name != "tensor.expand_shape":
                    split = split or before != after
            stack += [(u, split) for u in fn.users[j]]
        return False

    def named_roots(self, i: int) -> set[int]:
        """The contractions / convolutions reading ``i`` that are named ops
        (not ``linalg.generic``)."""
        return {
            c
            for c in self.consumers(i)
            if self.kinds[c] == "root" and self.fn.ops[c].name != "linalg.generic"
        }

    def cuts_kept_dims(self, i: int) -> bool:
        """Whether slice ``i``, or a slice it reads, cuts a dim that ``i``
        keeps more than one element of.

        IREE moves a unit-dim expand_shape after a slice above it
        (``BubbleExpandThroughExtract``) unless the slice cuts the expanded
        dim; so moved, the slice reaches the contraction and is cloned into
        its dispatch, else the reshape stays between them.
        """
        fn, j = self.fn, i
        m = _SLICE_RE.search(fn.ops[i].text)
        if m is None:
            return False
        kept = [d for d, size in enumerate(_ints(m.group(2))) if size != 1]
        while j is not None and fn.ops[j].name == "tensor.extract_slice":
            m = _SLICE_RE.search(fn.ops[j].text)
            t = fn.types.get(fn.uses[j][0])
            if m is None or t is None or t.shape is None:
                return False
            sizes = _ints(m.group(2))
            if len(sizes) != len(t.shape):
                return False
            if any(d < len(sizes) and sizes[d] != t.shape[d] for d in kept):
                return True
            j = fn.defs.get(fn.uses[j][0])
        return False

    def views(self, j: int | None):
        """Op ``j`` and, while the last one is a view, the op computing the
        tensor it views, ending at the first op that is no view (or at a
        function argument)."""
        fn, kinds = self.fn, self.kinds
        while j is not None:
            yield j
            if kinds[j] != "view":
                return
            sources = [u for u in fn.uses[j] if _is_tensor(fn, u)]
            j = fn.defs.get(sources[0]) if sources else None

    def producer(self, v: str) -> int | None:
        """The op computing ``v``, looking through views; None for arguments."""
        return next(
            (j for j in self.views(self.fn.defs.get(v)) if self.kinds[j] != "view"),
            None,
        )

    def broadcast_constant(self, j: int) -> bool:
        """Whether op ``j`` broadcasts a constant: elementwise fusion takes it
        into its reader, which then reads the constant (a detached bias)."""
        op = self.fn.ops[j]
        return (
            self.const[j]
            and bool(op.operand_types)
            and _broadcasts(op, self.fn.bodies[j], self.aliases)
        )

    def first_operand_source(self, v: str) -> int | None:
        """The op computing ``v``, looking through views by their first
        operand, a scalar one too (unlike :meth:`producer`: a broadcast of a
        constant leads to the constant); a view that reads nothing is
        returned; None for arguments."""
        fn, kinds = self.fn, self.kinds
        j = fn.defs.get(v)
        while j is not None and kinds[j] == "view" and fn.uses[j]:
            j = fn.defs.get(fn.uses[j][0])
        return j

    def join(self, a: int, b: int) -> None:
        groups = self.groups
        ra, rb = groups.find(a), groups.find(b)
        if ra != rb:
            groups.union(ra, rb)
            r = groups.find(ra)
            self.has_root[r] = self.has_root[ra] or self.has_root[rb]
            self.permuted[r] = self.permuted[ra] or self.permuted[rb]
            self.group_roots[r] = self.group_roots[ra] | self.group_roots[rb]
            self.fused[r] = self.fused[ra] + self.fused[rb]

    def same_side(self, i: int, j: int) -> bool:
        return self.iota[i] == self.iota[j]

    def fuse_elementwise(self) -> None:
        """Elementwise fusion: a producer with one user fuses into it, unless
        the fused op would read too many operands (:meth:`over_operand_cap`):
        then the fusion runs again without the fusions IREE refuses."""
        saved = (
            list(self.groups.parent),
            list(self.has_root),
            list(self.permuted),
            [set(r) for r in self.group_roots],
            [list(f) for f in self.fused],
            set(self.bubbled),
        )
        refused = self.over_operand_cap(self.fuse_single_users(set()))
        if refused:
            parent, self.has_root, self.permuted, roots, fused, bubbled = saved
            self.groups.parent, self.group_roots = parent, roots
            self.fused, self.bubbled = fused, bubbled
            self.fuse_single_users(refused)

    def fuse_single_users(self, refused: set[int]) -> list[tuple[int, int]]:
        """Each producer with one user (not in ``refused``) fuses into it;
        returns the (producer, consumer) pairs elementwise fusion joined."""
        joined: list[tuple[int, int]] = []
        later: list[tuple[int, int]] = []
        for i in self.computing:
            if i in refused or self.kinds[i] != "elementwise":
                continue
            users = self.consumers(i)
            if (
                len(users) != 1
                or not self.same_side(i, users[0])
                or not self.live(users[0])
            ):
                continue
            if self.asserts(users[0]) and not self.always_fuses(i):
                later.append((i, users[0]))  # decided once the reader's fused
                continue
            self.fuse_single_user(i, users[0], joined)
        for i, c in reversed(later):  # a reader decided before its producers
            if self.gather_like(i) or not any(
                self.same_group(c, u) for u in self.consumers(c)
            ):
                self.fuse_single_user(i, c, joined)
        return joined

    def gather_like(self, i: int) -> bool:
        """Whether op ``i`` is a ``linalg.generic`` yielding what a
        ``tensor.extract`` reads (``isGatherlikeOp``): IREE clones it into
        its reader's dispatch (``isClonableIntoDispatchOp``), whatever
        elementwise fusion left."""
        body = self.fn.bodies[i]
        if self.fn.ops[i].name != "linalg.generic" or not body:
            return False
        extracted = {
            _value(r) for b in body if b.name == "tensor.extract" for r in b.results
        }
        last = body[-1]
        return (
            last.name == "linalg.yield"
            and len(last.operands) == 1
            and _value(last.operands[0]) in extracted
        )

    def asserts(self, c: int) -> bool:
        """Whether op ``c``'s body checks its indices (``cf.assert``, a
        gather's bounds): a side effect, so elementwise fusion does not erase
        ``c`` once it has fused into its consumer, and the values ``c`` reads
        keep a second use: their producers (through a bit-extend too, which
        then has two uses) stay apart (``areFusableAsElementwiseOps``), unless
        they write i1, only copy or read none of their operands."""
        return any(b.name == "cf.assert" for b in self.fn.bodies[c])

    def same_group(self, a: int, b: int) -> bool:
        return self.groups.find(a) == self.groups.find(b)

    def fuse_single_user(self, i: int, c: int, joined: list[tuple[int, int]]) -> None:
        """Fuses elementwise op ``i`` into ``c``, its only user, where IREE
        does; appends the (producer, consumer) pair to ``joined`` where
        elementwise fusion joined them."""
        kinds, groups = self.kinds, self.groups
        users = [c]
        if self.gathers(c, i) or self.keeps_truncate(i, c):
            return
        if kinds[c] == "elementwise" and self.takes_shared_mask(c):
            return
        if self.broadcasts(c) and not self.always_fuses(i):
            return
        if kinds[c] == "elementwise":
            if self.reshaped(i, c, expand=False) and (
                self.permuted[i] or self.permuted[c]
            ):
                # IREE bubbles an expand_shape up through an elementwise
                # producer, a linalg.transpose up through a collapse, and a
                # collapse of a transpose into its elementwise reader, but
                # moves no other transpose across a collapse
                if not (
                    self.bubbles_through_collapse(i, c) or self.expands_consumer(i, c)
                ):
                    return
                self.bubbled.add(c)
            if self.absorbed(c, self.consumers(c)):
                # the transpose moves into the contraction's operand map
                # and leaves its producer behind (PropagateLinalgTranspose)
                return
            if self.into_shared_extend(i, c):
                return
            self.join(c, i)
            joined.append((i, c))
        elif kinds[c] == "root":
            rk = self.root_kinds[c]
            if rk == "reduction" or self.absorbed(i, users):
                if not self.has_root[groups.find(i)]:
                    self.join(c, i)
                    if rk == "reduction":
                        joined.append((i, c))

    def inputs(self, i: int, inits: bool = False) -> list[str]:
        """Op ``i``'s input values (with ``inits``: its init values, the
        last operand per result)."""
        op = self.fn.ops[i]
        n = len(op.operands) - max(len(op.results), 1)
        return [_value(v) for v in (op.operands[n:] if inits else op.operands[:n])]

    def fuses_always(self, j: int) -> bool:
        """Whether IREE's elementwise fusion fuses op ``j`` into each reader,
        whatever its uses (``areFusableAsElementwiseOps``): it writes i1,
        only copies, or reads none of its operands (an iota)."""
        fn = self.fn
        if self.kinds[j] != "elementwise" or fn.ops[j].name != "linalg.generic":
            return False
        out = fn.ops[j].result_types
        return (
            bool(out and out[0].element == "i1")
            or _is_pure_view(fn.ops[j], fn.bodies[j])
            or (self.const[j] and self.index_only(j))
        )

    def operand_key(self, v: str) -> str:
        """What IREE's elementwise fusion sees as operand ``v``: the value
        before its reshapes (propagated away), one ``tensor.empty`` per type
        (CSE)."""
        fn = self.fn
        j = fn.defs.get(v)
        while (
            j is not None
            and fn.ops[j].name in _VIEW_OPS
            and fn.ops[j].name != "tensor.extract_slice"
            and fn.uses[j]
        ):
            v = fn.uses[j][0]
            j = fn.defs.get(v)
        if j is None:
            return v
        op = fn.ops[j]
        if op.name == "tensor.empty" and op.result_types:
            return f"empty {op.result_types[0].raw}"
        return v

    def over_operand_cap(self, joined: list[tuple[int, int]]) -> set[int]:
        """The producers of ``joined`` that IREE's elementwise fusion leaves
        unfused: it refuses a fusion after which the fused op would read
        ``_MAX_OPERANDS`` distinct values or more (the producer's operands
        and the consumer's others, ``kIreeMaxOperandCount`` in
        ``ElementwiseOpFusion.cpp``).

        The order decides which fusions are refused, so it is simulated as
        MLIR's greedy driver runs ``FuseElementwiseOps``: ops from the last
        up, a consumer fusing its first fusable operand, the fused op and the
        users of the replaced consumer queued next, a fused producer erased
        (and its producers queued again) only when popped, so that until then
        they have two uses and do not fuse. Only trees of joined ops that
        read at least ``_MAX_OPERANDS`` values in all are simulated."""
        consumer = dict(joined)
        top = {}
        for i in consumer:
            t = i
            while t in consumer:
                t = consumer[t]
            top[i] = t
        trees: dict[int, set[int]] = {}
        for i, t in top.items():
            trees.setdefault(t, {t}).add(i)
        refused: set[int] = set()
        for tree in trees.values():
            inputs: dict[int, list] = {}  # op -> its inputs' keys
            inits: dict[int, set[str]] = {}  # op -> its inits' keys
            for m in tree:
                keys = []
                for v in self.inputs(m):
                    j = self.producer(v)
                    if j in tree and consumer.get(j) == m:
                        keys.append(j)
                    elif j is not None and self.fuses_always(j):
                        keys.append(j)  # fused into every reader
                        inputs[j] = [self.operand_key(u) for u in self.inputs(j)]
                        inits[j] = {self.operand_key(u) for u in self.inputs(j, True)}
                    elif v not in self.fn.defs or not _splat_view(
                        self.fn, self.fn.defs[v]
                    ):  # a splat folds into the body (FoldScalarOrSplatConstant)
                        keys.append(self.operand_key(v))
                inputs[m] = list(dict.fromkeys(keys))
                inits[m] = {self.operand_key(u) for u in self.inputs(m, True)}
            every = [k for ks in (*inputs.values(), *inits.values()) for k in ks]
            if len(set(every)) < _MAX_OPERANDS:
                continue
            left = _greedy_fusion(sorted(tree), inputs, inits, consumer)
            refused |= {i for i in left if i in consumer}
        return refused

    def bubbles_through_collapse(self, i: int, c: int) -> bool:
        """Whether ``linalg.transpose`` ``c`` reads ``i`` through one
        ``tensor.collapse_shape`` that nothing else reads: the transpose
        moves above it, each collapsed group of dims as a unit
        (``BubbleTransposeThroughCollapseShape``), and fuses into ``i``."""
        fn = self.fn
        if fn.ops[c].name != "linalg.transpose" or not fn.uses[c]:
            return False
        j = fn.defs.get(fn.uses[c][0])
        return (
            j is not None
            and fn.ops[j].name == "tensor.collapse_shape"
            and fn.users[j] == [c]
            and self.producer(fn.uses[j][0]) == i
        )

    def expands_consumer(self, i: int, c: int) -> bool:
        """Whether ``c``, an elementwise op reading each operand whole (all
        its maps identities) and no transpose, reads ``linalg.transpose``
        ``i`` through collapses: IREE folds the collapse into ``c`` by
        expanding ``c``'s loops (``FoldWithProducerReshapeOpByExpansion``),
        and the transpose then fuses into it as an input map, whichever dims
        the collapse merged (a Swin's window reverse and its residual add:
        ``elementwise_transpose_4x4x4x4x32``)."""
        fn = self.fn
        if self.permuted[c] or fn.ops[i].name != "linalg.transpose":
            return False
        maps = _parse_maps(_attr(fn.ops[c], ("indexing_maps",)) or "", self.aliases)
        return bool(maps) and all(results == dims for dims, results in maps)

    def into_shared_extend(self, i: int, c: int) -> bool:
        """Whether ``c`` reads ``i`` through a bit-extend (cloned, a view
        here) that fuses into ``c`` first, the op they make (with the ops
        below it that it fuses with) still widening ``i``'s elements, without
        ``math`` ops, and read by several ops: IREE fuses no producer into a
        bit-extend with several uses (``areFusableAsElementwiseOps``: it is
        cloned into each of them, and the producer would be too)."""
        fn = self.fn
        if not any(
            self.kinds[j] == "view"
            and fn.ops[j].name == "linalg.generic"
            and c in fn.users[j]
            for j in fn.users[i]
        ):
            return False
        chain = self.fused_below(c)
        wide, narrow = fn.ops[chain[-1]].result_types, fn.ops[i].result_types
        if not wide or not narrow:
            return False
        before, after = _bits(narrow[0]), _bits(wide[0])
        return (
            before is not None
            and after is not None
            and before < after
            and not any(_body_has(fn.bodies[m], "math.") for m in chain)
            and len(set(self.consumers(chain[-1]))) > 1
        )

    def bit_change(self, members: list[int]) -> tuple[str | None, int]:
        """``"extend"`` or ``"truncate"`` when the op that elementwise fusion
        makes of ``members`` (the last writes the result) widens or narrows
        its elements, else None; and how many distinct values it reads.

        ``isBitExtendOrTruncateOp`` in IREE's ``LinalgExt/Utils/Utils.cpp``:
        all loops parallel, the widest of its highest-rank inputs narrower
        than the output (an extend, without ``math`` ops) or wider (a
        truncate, of the output's rank). Ranks count non-unit dims (IREE
        folds unit dims first).
        """
        fn, inside = self.fn, set(members)
        inputs: dict[str, ShapedType] = {}
        for m in members:
            op = fn.ops[m]
            n = len(op.results)
            for v in op.operands[: len(op.operands) - n] if n else op.operands:
                t = fn.types.get(_value(v))
                j = self.producer(_value(v))
                if j is not None and self.broadcast_constant(j):
                    t = fn.ops[j].operand_types[0]  # read as the constant
                if j not in inside and t is not None:
                    inputs[_value(v)] = t
        shaped = [t for t in inputs.values() if t.kind == "tensor" and t.shape]
        result = fn.ops[max(members)].result_types
        if (
            not shaped
            or not result
            or result[0].shape is None
            or any(self.kinds[m] == "root" for m in members)
        ):
            return None, len(inputs)
        rank = max(_nonunit(t.shape) for t in shaped)
        widths = [_bits(t) for t in shaped if _nonunit(t.shape) == rank]
        width = _bits(result[0])
        if None in widths or width is None:
            return None, len(inputs)
        if max(widths) < width:
            math_ops = any(_body_has(fn.bodies[m], "math.") for m in members)
            return (None if math_ops else "extend"), len(inputs)
        if max(widths) > width and rank == _nonunit(result[0].shape):
            return "truncate", len(inputs)
        return None, len(inputs)

    def fused_below(self, c: int) -> list[int]:
        """``c`` and the chain of single users it fuses with first: IREE's
        elementwise fusion rewrites from the last op up, so a consumer has
        taken its own consumers' place before its producers are asked."""
        fn, chain = self.fn, [c]
        while True:
            users, stack = [], list(fn.users[chain[-1]])
            while stack:  # through views but slices; an extend joins the chain
                j = stack.pop()
                if self.kinds[j] != "view" or fn.ops[j].name == "tensor.extract_slice":
                    users.append(j)
                elif fn.ops[j].name == "linalg.generic" and not _is_pure_view(
                    fn.ops[j], fn.bodies[j]
                ):
                    chain.append(j)
                    stack += fn.users[j]
                else:
                    stack += fn.users[j]
            if len(set(users)) != 1:
                return chain
            (u,) = set(users)
            if self.kinds[u] != "elementwise":
                return chain
            if self.bit_change([u])[0] == "truncate":
                return chain
            chain.append(u)

    def broadcasts(self, c: int) -> bool:
        """Whether consumer ``c``, as fused with the ops below it first, only
        broadcasts its input (``isBroadcastingOp``): IREE fuses no producer
        into such an op before forming dispatches (``fuseBroadcastOps`` is
        off), but a broadcast that an elementwise op below has taken in (a
        copy fuses into any consumer) is no broadcast any more."""
        fn = self.fn
        if not _is_pure_view(fn.ops[c], fn.bodies[c]):
            return False  # the usual case, without walking the ops below
        chain = self.fused_below(c)
        return all(_is_pure_view(fn.ops[m], fn.bodies[m]) for m in chain) and any(
            _broadcasts(fn.ops[m], fn.bodies[m], self.aliases) for m in chain
        )

    def always_fuses(self, i: int) -> bool:
        """Whether IREE's elementwise fusion takes producer ``i`` into any
        all-parallel consumer, before its other checks
        (``areFusableAsElementwiseOps``): it writes i1, only copies, or reads
        none of its operands (``linalg.index`` and ``tensor.extract`` only: a
        flip)."""
        fn, body = self.fn, self.fn.bodies[i]
        if fn.ops[i].result_types and fn.ops[i].result_types[0].element == "i1":
            return True
        if _is_pure_view(fn.ops[i], body):
            return True
        return self.index_only(i)

    def index_only(self, i: int) -> bool:
        """Whether op ``i`` reads none of its operands (``linalg.index`` and
        ``tensor.extract`` only: a flip). IREE's elementwise fusion clones
        such an op into each all-parallel reader, whatever its uses."""
        fn, body = self.fn, self.fn.bodies[i]
        inner = {_value(r) for b in body for r in b.results}
        return fn.ops[i].name == "linalg.generic" and all(
            _value(v) in inner or _value(v) in fn.defs or _value(v) in fn.args
            for b in body
            for v in b.operands
        )

    def takes_clone(self, c: int) -> bool:
        """Whether op ``c`` is a ``linalg.generic`` (or a named elementwise
        op) that elementwise fusion clones an index-only producer into."""
        kind, name = self.kinds[c], self.fn.ops[c].name
        return kind == "elementwise" or (kind == "root" and name == "linalg.generic")

    def keeps_truncate(self, i: int, c: int) -> bool:
        """Whether a truncating producer ``i`` (as fused so far) stays apart
        from its consumer ``c`` (``areFusableAsElementwiseOps`` in IREE's
        ``DispatchCreation/FusionUtils.cpp``, early truncate fusion off): it
        fuses into a truncate, or into an all-parallel op of one input, never
        into an extend (a root then takes it as its consumer); an i1 producer
        always fuses."""
        if self.always_fuses(i):
            return False
        find = self.groups.find
        if self.bit_change(self.fused[find(i)])[0] != "truncate":
            return False
        if self.kinds[c] != "elementwise":
            return True
        if _is_pure_view(self.fn.ops[c], self.fn.bodies[c]) and (
            len(self.consumers(c)) > 1
        ):
            return True  # a copy fuses into each of its users: several uses
        below = self.fused_below(c)
        first = [m for m in self.fused[find(c)] if m not in below]
        change, reads = self.bit_change(sorted(first) + below)
        if change == "truncate":
            return False
        return change == "extend" or reads != 1

    def takes_shared_mask(self, c: int) -> bool:
        """Whether op ``c`` is the first reader of index arithmetic that is
        not hoisted and that other ops read too (a mask every layer adds):
        IREE fuses the shared producer into that reader
        (``FuseMultiUseElementwiseProducer``), which then goes with its own
        consumers, not into the dispatch of the contraction it reads."""
        fn = self.fn
        if not fn.users[c] or any(
            self.payload(u) != ["arith.extf"] for u in fn.users[c]
        ):
            return False  # measured with a bit-extend after the reader only
        for v in fn.uses[c]:
            j = self.first_operand_source(v)
            if (
                j is not None
                and self.iota[j]
                and self.kinds[j] == "elementwise"
                and not self.index_only(j)
                and fn.ops[j].result_types
                and fn.ops[j].result_types[0].element != "i1"
            ):
                readers = [u for u in self.consumers(j) if self.live(u)]
                if (
                    len(readers) > 1
                    and min(readers) == c
                    and not self.hoistable(j)
                    and self.from_positions_only(j)
                ):
                    return True
        return False

    def from_positions_only(self, j: int) -> bool:
        """Whether the tensors op ``j`` is computed from are positions
        (``linalg.index``) only: a tensor computed from constants alone (a
        ``linalg.generic`` yielding a constant) makes the value one the JIT
        evaluates at compile time (``JitGlobals``), which every layer loads
        alike (measured: BERT-like masks that ``and`` such a tensor in)."""
        fn, seen, stack = self.fn, set(), [j]
        while stack:
            k = stack.pop()
            if k in seen:
                continue
            seen.add(k)
            if fn.ops[k].name.startswith("linalg.") and not self.iota[k]:
                return False
            stack += fn.producers(k)
        return True

    def gathers(self, c: int, i: int) -> bool:
        """Whether op ``c`` reads ``i``'s result with ``tensor.extract`` (a flip,
        a gather): no elementwise use, so no fusion (the value is captured)."""
        for b in self.fn.bodies[c]:
            if b.name == "tensor.extract" and b.operands:
                if self.producer(_value(b.operands[0])) == i:
                    return True
        return False

    def absorbed(self, i: int, users: list[int]) -> bool:
        """Whether elementwise op ``i``, read by ``users`` only, is a broadcast or
        a transpose of the two innermost dims that a contraction reading it
        takes into its operand's indexing map (no reshape between them)."""
        if len(users) != 1 or self.kinds[users[0]] != "root":
            return False
        (c,) = users
        fn = self.fn
        if (
            fn.ops[c].name.startswith("linalg.conv_2d_nchw")
            and self.permuted[i]
            and _is_pure_view(fn.ops[i], fn.bodies[i])
            and not self.reshaped(i, c, expand=False)
        ):
            # the convolution, generalized, reads its input through the
            # transpose's map (a ConvNeXt's NHWC -> NCHW before a downsample)
            return True
        if not (
            self.root_kinds[c] == "matmul"
            and _is_pure_view(fn.ops[i], fn.bodies[i])
            and self.inner[i]
            and not self.reshaped(i, c)  # no transpose across a reshape
        ):
            return False
        if self.permuted[i]:
            # of two transposed operands, only the right-hand one is taken
            lhs, rhs = ([self._input(c, k) for k in (0, 1)] + [None, None])[:2]
            if lhs == i and rhs is not None and self.kinds[rhs] == "elementwise":
                return not (
                    self.permuted[rhs]
                    and _is_pure_view(fn.ops[rhs], fn.bodies[rhs])
                    and self.inner[rhs]
                    and self.consumers(rhs) == [c]
                )
        return True

    def _inside(self, grouped: dict[int, list[int]], g: int) -> list[int]:
        return [m for m in grouped.get(g, ()) if self.groups.find(m) == g]

    def _outside_users(self, inside: list[int], g: int) -> set[int]:
        find = self.groups.find
        return {c for m in inside for c in self.consumers(m) if find(c) != g}

    def fuse_consumers(self, roots: list[int], grouped: dict[int, list[int]]) -> bool:
        """A root's dispatch takes the elementwise group that is the only user
        of its results."""
        changed, find = False, self.groups.find
        for r in roots:
            if _external(self.fn.ops[r]):
                continue  # a scan / sort / gather takes no consumer
            own = find(r)
            inside = self._inside(grouped, own)
            # a reader that only gathers from the group (tensor.extract), or
            # a concat of an elementwise op of it, fuses
            # into nothing: the dispatch stores the value it reads
            # (FuseMultiUseElementwiseProducer fuses a multi-use elementwise
            # producer into its first reader before dispatches form)
            users = [
                c
                for c in self._outside_users(inside, own)
                if not self.only_gathers(c, inside)
                and not self.moves_elementwise(c, inside)
            ]
            targets = {find(c) for c in users}
            if len(targets) != 1 or any(
                self.kinds[c] != "elementwise"
                or not self.live(c)
                or any(self.gathers(c, m) for m in inside)
                or self.takes_shared_mask(c)
                for c in users
            ):
                continue
            (g,) = targets
            if g == find(r) or self.has_root[g]:
                continue
            if self.permuted[g] and not self.sinks(inside, grouped[g]):
                continue  # IREE does not move a transpose across a reshape
            if max(self.loops[c] for c in grouped[g]) > self.loops[r]:
                continue  # a result broadcast into a larger consumer stays apart
            if self.split_after_unit_fold(r, grouped[g]):
                continue
            if self.broadcast_splits_expand(inside, grouped[g]):
                continue
            out = self.fn.ops[r].result_types
            if out and out[0].shape is not None and _nonunit(out[0].shape) == 0:
                continue  # a full reduction has no parallel loop to fuse along
            self.join(r, g)
            changed = True
        return changed

    def only_gathers(self, c: int, inside: list[int]) -> bool:
        """Whether op ``c`` reads the ops ``inside`` with ``tensor.extract``
        only (a gather of a group norm's scale), none as an operand."""
        if not any(self.gathers(c, m) for m in inside):
            return False
        return not any(self.producer(v) in inside for v in self.inputs(c))

    def moves_elementwise(self, c: int, inside: list[int]) -> bool:
        """Whether op ``c`` is a concat that reads the ops ``inside`` through
        elementwise ones only (an average pool's divide; a pool's own result
        has several uses and fuses nothing). A pad is none: the convolution
        reading it takes it into its own dispatch (a FocalNet's GELU stays
        apart from the depthwise convolution before it)."""
        if self.fn.ops[c].name != "tensor.concat":
            return False
        read = [j for j in map(self.producer, self.fn.uses[c]) if j in inside]
        return bool(read) and all(self.kinds[j] == "elementwise" for j in read)

    def split_after_unit_fold(self, r: int, group: list[int]) -> bool:
        """Whether batch matmul ``r`` of one row (M = 1, kept), reaches the
        consumer ``group`` only through a collapse and an expand: a
        ``linalg.generic`` of the group reads ``r``'s result and its own
        result is read through an ``expand_shape`` splitting a non-unit dim
        (by an op: one returned folds into the result).

        ``FoldUnitExtentDims`` drops the consumer's unit dims (a
        ``collapse_shape`` after the batch matmul, which keeps its own: a
        matmul's become a matvec's), then
        ``BubbleUpExpandShapes`` moves the expand above the consumer: root
        and consumer are no longer producer and consumer (a batch-2 decoder's
        ``batch_matmul`` of 8x1x65 and its truncation, read as 2x4x65).
        """
        fn = self.fn
        op = fn.ops[r]
        if not op.name.startswith("linalg.batch_matmul") or not op.result_types:
            return False
        shape = op.result_types[0].shape
        if not shape or len(shape) != 3 or shape[1] != 1 or 1 in (shape[0], shape[2]):
            return False  # a unit batch makes it a matmul, a unit N a batch_matvec
        members = set(group)
        for c in self.consumers(r):
            if c not in members or fn.ops[c].name != "linalg.generic":
                continue
            readers = {u for u in self.consumers(c) if fn.ops[u].name != "func.return"}
            paths = self.reshapes_into([c], readers).get(c, ())
            if any(fn.ops[j].name == "tensor.expand_shape" for j in paths):
                return True
        return False

    def broadcast_splits_expand(self, inside: list[int], group: list[int]) -> bool:
        """Whether an ``expand_shape`` between a root's ops ``inside`` and its
        consumer ``group`` cannot move below the group (``SinkReshapes``): an
        op of the group over the expanded shape reads a value computed at
        run time along some, not all, of the non-unit dims one source dim was
        split into, so the dims do not collapse back (a value IREE clones
        into the dispatch, a splat or a small constant, does not count; a
        global or a large constant does, :meth:`bound_constant`). Root and
        group stay apart: a batch-2
        GPT-2's batch matmul of 6x32x32 and its scaled scores read as
        2x3x32x32 with the causal mask, a 2x1x32x32 global its initializer
        computes (IREE: ``batch_matmul_6x32x32x64`` and
        ``elementwise_2x3x1024``); with a mask the JIT evaluates (BERT's), or
        at batch 1 (a split of unit dims), they fuse."""
        fn = self.fn
        found = self.reshapes_into(inside, set(group))
        for j in dict.fromkeys(j for js in found.values() for j in js):
            op = fn.ops[j]
            shape = op.result_types[0].shape if op.result_types else None
            groups = _reassociation(op)
            if op.name != "tensor.expand_shape" or shape is None or groups is None:
                continue
            splits = [g for g in groups if sum(shape[p] != 1 for p in g) > 1]
            if splits and any(self.reads_split(c, shape, splits) for c in group):
                return True
        return False

    def reads_split(self, c: int, shape: tuple, splits: list[list[int]]) -> bool:
        """Whether generic ``c`` over ``shape`` reads a value IREE binds (an
        argument, an op not computed from constants, a global of
        :meth:`runtime_globals`, or a :meth:`bound_constant`) along part of
        one group of ``splits`` (dims of ``shape``; their unit dims do not
        count)."""
        op = self.fn.ops[c]
        out = op.result_types[0].shape if op.result_types else None
        if op.name != "linalg.generic" or out != shape:
            return False
        maps = _parse_maps(_attr(op, ("indexing_maps",)) or "", self.aliases) or []
        if not maps or len(maps[-1][1]) != len(shape):
            return False
        loops = maps[-1][1]
        for group in splits:
            split = {loops[p] for p in group if shape[p] != 1}
            for operand, (_, results) in zip(op.operands, maps[:-1], strict=False):
                read = split & set(results)
                if not read or read == split:
                    continue
                j = self.producer(_value(operand))
                if (
                    j is None
                    or not self.const[j]
                    or any(j in tree for tree in self.runtime_globals().values())
                    or self.bound_constant(j)
                ):
                    return True
        return False

    def bound_constant(self, j: int) -> bool:
        """Whether value ``j``, computed from constants (or a constant), is
        one IREE binds rather than clones into the dispatch that reads it: a
        constant that is no splat and larger than
        :data:`INLINE_CONSTANT_BYTES`, or a value const-eval evaluates into
        such a global. A value computed from splat constants alone is taken
        for a splat (a ViT's mask of positions >= 0, all true, is one; a
        Swin's relative position bias, gathered from its table, is none);
        one of 256 bytes or less is inlined (a SwinV2's per-head logit
        scale). Copies (a transpose) are no hoisted leaves: a copy is read
        as the value it copies."""
        fn = self.fn
        while _is_pure_view(fn.ops[j], fn.bodies[j]) or self.kinds[j] == "view":
            operands = fn.ops[j].operands
            k = fn.defs.get(_value(operands[0])) if operands else None
            if k is None:
                return False
            j = k
        out = fn.ops[j].result_types[0] if fn.ops[j].result_types else None
        if out is not None and (out.nbytes or 0) <= INLINE_CONSTANT_BYTES:
            return False
        return any(
            not _SPLAT_RE.search(fn.ops[k].text) for k in _tensor_constants(fn, j)
        )

    def reshapes_into(
        self, sources: list[int], targets: set[int], units: bool = False
    ) -> dict[int, list[int]]:
        """Source op -> the reshapes of non-unit dims (views) on its paths to
        the target ops; sources without such a path are left out. With
        ``units``, a ``tensor.expand_shape`` / ``collapse_shape`` of unit dims
        only counts too (IREE folds unit dims of ``linalg.generic`` ops only:
        a named contraction keeps its operands' shapes)."""
        fn, kinds, found = self.fn, self.kinds, {}
        for m in sources:
            stack = [(u, ()) for u in fn.users[m]]
            while stack:
                j, path = stack.pop()
                if j in targets:
                    if path:
                        found.setdefault(m, []).extend(path)
                elif kinds[j] == "view" and j not in path:
                    op = fn.ops[j]
                    if (
                        op.operand_types
                        and op.result_types
                        and j not in self.sunk
                        and (
                            _nonunit_dims(op.operand_types[0])
                            != _nonunit_dims(op.result_types[0])
                            or (units and op.name in _RESHAPES)
                        )
                    ):
                        path = (*path, j)
                    stack += [(u, path) for u in fn.users[j]]
        return found

    def collapsible(self, reshapes: list[int], group: list[int]) -> bool:
        """Whether each reshape is an expand_shape that every transpose of the
        group keeps together (each expanded group of dims read next to each
        other and in order), so that IREE can move it past them."""
        fn = self.fn
        orders = [self.order[m] for m in sorted(group) if self.transposes[m]]
        for j in reshapes:
            if fn.ops[j].name == "tensor.collapse_shape":
                continue  # the consumer expands instead (fusion by expansion)
            groups = _expand_groups(fn.ops[j])
            if fn.ops[j].name != "tensor.expand_shape" or groups is None:
                return False
            for o in orders:  # a chain of transposes: each moves the groups
                if o is None or not _keeps_groups(o, groups):
                    return False
                groups = [
                    [o.index(d) for d in g] if all(d in o for d in g) else g
                    for g in groups
                ]
        return True

    def sinks(self, inside: list[int], group: list[int]) -> bool:
        """Whether the reshapes between a root's ops and a transposing consumer
        group (or inside that group, bubbled up by elementwise fusion) move
        past the group's transposes (``SinkReshapes``)."""
        found = self.reshapes_into([*inside, *group], set(group))
        return self.collapsible([j for js in found.values() for j in js], group)

    def expanded_inputs(self, members: list[int]) -> dict[int, set[int] | None]:
        """Ops of a group whose constant inputs IREE reshapes into new globals:
        op -> its result dims that stay expanded (None: all of them).

        Elementwise fusion bubbles an expand_shape between two of the group's
        ops up through the first; the dims whose expanded group a transpose
        splits cannot collapse back (``CollapseDimensions``), and constants
        over them are expanded at compile time into globals the dispatch
        loads.
        """
        fn = self.fn
        orders = [self.order[m] for m in members if self.transposes[m]]
        out: dict[int, set[int] | None] = {}
        for m, paths in self.reshapes_into(members, set(members)).items():
            js = list(dict.fromkeys(paths))  # one reshape read by two members
            groups = _expand_groups(fn.ops[js[0]])
            if len(js) != 1 or fn.ops[js[0]].name != "tensor.expand_shape":
                groups = None
            out[m] = (
                None
                if groups is None
                else {
                    k
                    for k, g in enumerate(groups)
                    if not all(o is not None and _keeps_groups(o, [g]) for o in orders)
                }
            )
        # the expand_shape bubbles up through the group's elementwise
        # producers of the same rank too (fused first), and through a reshape
        # of unit dims only between them (FoldUnitExtentDims drops it first)
        for p in sorted(members, reverse=True):
            if p in out or self.kinds[p] != "elementwise":
                continue
            for u in fn.users[p]:
                if u in out and _rank(fn.ops[u]) == _rank(fn.ops[p]):
                    out[p] = out[u]
                    break
                w = self.unit_reshaped_reader(p, u, out)
                if w is not None:
                    out[p] = _unit_dims_mapped(
                        out[w], fn.ops[w].result_types[0], fn.ops[p].result_types[0]
                    )
                    break
        return out

    def unit_reshaped_reader(
        self, p: int, u: int, out: dict[int, set[int] | None]
    ) -> int | None:
        """The op of ``out`` that reads ``p``'s result through view ``u``, a
        reshape that adds or drops unit dims only; None if none."""
        fn = self.fn
        if fn.ops[u].name not in _RESHAPES or len(fn.users[u]) != 1:
            return None
        (w,) = fn.users[u]
        if w not in out or not fn.ops[w].result_types or not fn.ops[p].result_types:
            return None
        a, b = fn.ops[w].result_types[0], fn.ops[p].result_types[0]
        if a.shape is None or b.shape is None or _nonunit_dims(a) != _nonunit_dims(b):
            return None
        return w

    def reads_dims(self, m: int, v: str, dims: set[int] | None) -> bool:
        """Whether op ``m`` reads ``v`` along any of its result dims ``dims``."""
        op = self.fn.ops[m]
        if dims is None or op.name != "linalg.generic":
            return dims is None or bool(dims)
        maps = _parse_maps(_attr(op, ("indexing_maps",)) or "", self.aliases) or []
        if not maps:
            return True
        out = maps[-1][1]
        for operand, (_, results) in zip(op.operands, maps, strict=False):
            if _value(operand) == v:
                return any(out.index(r) in dims for r in results if r in out)
        return False

    def payload(self, i: int) -> list[str]:
        return [b.name for b in self.fn.bodies[i] if b.name != "linalg.yield"]

    def _input(self, i: int, k: int) -> int | None:
        """The op computing ``i``'s ``k``-th tensor input, through views."""
        inputs = [v for v in self.fn.uses[i] if _is_tensor(self.fn, v)]
        return self.producer(inputs[k]) if k < len(inputs) else None

    def softmax(self, d: int) -> list[int] | None:
        """The ops of a softmax ending in ``d``, as IREE raises it to one op.

        ``RaiseSpecialOps.cpp`` (``matchSoftmax``): ``max = reduce_max(x)``,
        ``e = exp(x - max)``, ``s = reduce_add(e)``, then ``e / s`` or
        ``e * (1 / s)``; a log-softmax (no division) is not raised.
        """
        payload, take = self.payload, self._input
        body = payload(d)
        if self.kinds[d] != "elementwise" or body not in (
            ["arith.divf"],
            ["arith.mulf"],
        ):
            return None
        e, total = take(d, 0), take(d, 1)
        extra = []
        if body == ["arith.mulf"] and total is not None:
            if payload(total) != ["arith.divf"]:
                return None
            extra, total = [total], take(total, 0)
        if e is None or total is None or payload(e) != ["math.exp"]:
            return None
        if payload(total) != ["arith.addf"] or take(total, 0) != e:
            return None
        sub = take(e, 0)
        if sub is None or payload(sub) != ["arith.subf"]:
            return None
        top = take(sub, 1)
        if top is None or self.kinds[top] != "root":
            return None
        if not any(p in ("arith.maximumf", "arith.maxnumf") for p in payload(top)):
            return None
        inputs = [v for v in self.fn.uses[sub] if _is_tensor(self.fn, v)]
        if [v for v in self.fn.uses[top] if _is_tensor(self.fn, v)][:1] != inputs[:1]:
            return None
        return [top, sub, e, total, *extra, d]

    def fuse_shared_producers(self) -> bool:
        """A producer used several times fuses into its first user when all
        its users are in one group (elementwise fusion, until the first round
        below), or when that user is elementwise with as many non-unit loops
        (``FuseMultiUseElementwiseProducer.cpp``: two rounds, its
        ``numIterations``); later users read it from there.

        A round is IREE's: each fused op sits where its last op is, and a
        consumer (not a bit-extend) takes the producer of its first operand
        that it reads before any other op does, that no later consumer has
        taken and that neither extends nor truncates its elements; a consumer
        whose producer has itself fused one this round gets nothing (that
        producer is rewritten first, so no use of the old one is left)."""
        find, changed = self.groups.find, False
        offers: list[tuple[int, int]] = []  # (producer, its first user)
        for i in self.computing:
            if self.kinds[i] != "elementwise" or self.has_root[find(i)]:
                continue
            users = self.consumers(i)
            if not users or not all(self.live(c) for c in users):
                continue
            # cloned into each reader that takes it (see members): a copy
            # fuses into any consumer whatever its uses, and stays for a move
            if len(users) > 1 and self.copied_into_readers(i, users):
                self.transposes_in.add(i)
            if len(users) > 1 and (
                self.index_only(i)
                or (
                    _is_pure_view(self.fn.ops[i], self.fn.bodies[i])
                    and any(self.kinds[c] == "move" for c in users)
                )
                or i in self.transposes_in
            ):
                self.cloned.add(i)
                continue
            if (
                len({find(c) for c in users}) == 1
                and self.has_root[find(users[0])]
                and self.takes_shared_mask(i)
            ):
                # kept from the contraction it reads: it goes into the
                # dispatch of the reduction (a softmax) that reads it
                self.join(users[0], i)
                changed = True
                continue
            if self.shared_rounds == 0 and len(users) > 1:
                first = min(users)
                if (
                    len({find(c) for c in users}) == 1
                    and self.fusable_user(i, first)
                    and self.payload(i) != ["arith.truncf"]
                ):
                    self.join(first, i)
                    changed = True
                    continue
            outside = [
                c for c in users if find(c) != find(i) and self.kinds[c] != "free"
            ]
            if not outside or self.shared_rounds >= _SHARED_ROUNDS:
                continue
            first = min(outside, key=self.position)
            if (
                self.fusable_user(i, first)
                and self.loops[first] == self.loops[i]
                and self.first_user(find(i)) == find(first)
                and self.bit_change(self.fused[find(i)])[0] is None
                and self.bit_change(self.fused[find(first)])[0] != "extend"
                and not self.into_shared_extend(i, first)
                and not self.takes_shared_mask(first)
            ):
                offers.append((i, first))
        # consumers from the last up: each takes one producer, none taken twice
        picks: dict[int, int] = {}  # consumer group -> producer group
        taken: set[int] = set()
        for g in sorted({find(c) for _, c in offers}, key=self.position, reverse=True):
            order = self.operand_order(g)
            mine = [find(p) for p, c in offers if find(c) == g]
            for p in sorted(
                mine,
                key=lambda p: min(
                    (order.index(m) for m in self.fused[p] if m in order),
                    default=len(order),
                ),
            ):
                if p not in taken:
                    picks[g] = p
                    taken.add(p)
                    break
        fused: set[int] = set()  # consumers whose fusion happens, first first
        for g in sorted(picks, key=self.position):
            if picks[g] not in fused:
                fused.add(g)
        for g in fused:
            self.join(g, picks[g])
        self.shared_rounds += bool(picks)
        return changed or bool(picks)

    def copied_into_readers(self, i: int, users: list[int]) -> bool:
        """Whether ``i`` is a transpose, alone in its group, that each of
        ``users`` takes in: elementwise fusion fuses a copy into every
        all-parallel or reduction reader whatever its uses
        (``areFusableAsElementwiseOps``), so it forms no dispatch and its
        readers read its source through its map (a MobileViT's unfold read
        by the first layer norm and the residual add: executables of their
        own). Not through a bit-extend: IREE keeps apart a ConvNeXt's (and
        FocalNet's) f16 permute of a truncated convolution's result that its
        layer norm reads extended (measured on the bundle; iree-compile
        clones a plain f16 transpose through the extend into two readers,
        which this rule leaves apart)."""
        fn, stack = self.fn, list(self.fn.users[i])
        while stack:
            j = stack.pop()
            if self.kinds[j] == "view":
                if fn.ops[j].name == "linalg.generic" and not _demoted_identity(
                    fn.ops[j], fn.bodies[j]
                ):
                    return False
                stack += fn.users[j]
        return (
            self.permuted[i]
            and self.fused[self.groups.find(i)] == [i]
            and _is_pure_view(fn.ops[i], fn.bodies[i])
            and all(self.takes_clone(c) for c in users)
        )

    def fusable_user(self, i: int, c: int) -> bool:
        """Whether elementwise op ``c`` is all parallel (not fused into a
        reduction, nor a transpose a contraction takes into its operand's
        map) and reads producer ``i`` elementwise, on its side of the
        initializers."""
        return (
            self.kinds[c] == "elementwise"
            and not self.gathers(c, i)
            and self.groups.find(c) != self.groups.find(i)
            and self.same_side(i, c)
            and not self.into_reduction(c)
            and not self.absorbed(c, self.consumers(c))
        )

    def position(self, i: int) -> int:
        """Where the op that ``i`` is fused into sits: its group's last op
        (elementwise fusion replaces the consumer), or ``i`` in a root's."""
        g = self.groups.find(i)
        return i if self.has_root[g] else max(self.fused[g])

    def first_user(self, g: int) -> int | None:
        """The group of the first op, by position, that reads group ``g``;
        None when an op of it writes a result that only the function returns
        (``InsertTensorBarriers``: a ``compute_barrier.end`` reads it right
        where it is written)."""
        find, fn = self.groups.find, self.fn
        users: set[int] = set()
        for m in self.fused[g]:
            read = self.consumers(m)
            if read and all(fn.ops[c].name == "func.return" for c in read):
                return None
            users.update(c for c in read if find(c) != g and self.kinds[c] != "free")
        return find(min(users, key=self.position)) if users else None

    def operand_order(self, g: int) -> list[int]:
        """The producers of group ``g``'s fused ``linalg.generic`` in its
        operand order: elementwise fusion puts a producer's operands where the
        consumer read it (``linalg::fuseElementwiseOps``)."""
        find, order, seen = self.groups.find, [], set()
        inside = [m for m in self.computing if find(m) == g]

        def visit(op: int) -> None:
            seen.add(op)
            for v in self.fn.uses[op]:
                j = self.producer(v)
                if j is None or j in order:
                    continue
                if find(j) == g and j not in seen:
                    visit(j)
                elif find(j) != g:
                    order.append(j)

        for m in reversed(inside):  # from the last: the fused op's root
            if m not in seen:
                visit(m)
        return order

    def into_reduction(self, first: int) -> bool:
        """Whether elementwise op ``first`` fused into a reduction it feeds:
        IREE then sees that reduction as the consumer, and fuses no producer
        with several users into a consumer that is not all parallel
        (``FuseMultiUseElementwiseProducer``)."""
        group = self.groups.find(first)
        stack = [first]
        while stack:
            j = stack.pop()
            for c in self.consumers(j):
                if self.groups.find(c) != group:
                    continue
                if self.kinds[c] == "root" and self.root_kinds[c] == "reduction":
                    return True
                if self.kinds[c] == "elementwise":
                    stack.append(c)
        return False

    def sink_transposes(self) -> None:
        """A transpose of the two innermost dims of a root's result (through
        reshapes) read, through a chain of single-use elementwise ops, by a
        contraction moves past them into the contraction's operand
        (``PropagateLinalgTranspose``): a view here."""
        fn, kinds = self.fn, self.kinds
        for i in list(self.computing):
            if not (
                kinds[i] == "elementwise"
                and self.permuted[i]
                and self.inner[i]
                and _is_pure_view(fn.ops[i], fn.bodies[i])
            ):
                continue
            source = fn.defs.get(fn.uses[i][0]) if fn.uses[i] else None
            while source is not None and (
                fn.ops[source].name in _VIEW_OPS or kinds[source] == "elementwise"
            ):
                source = fn.defs.get(fn.uses[source][0]) if fn.uses[source] else None
            if source is None or kinds[source] != "root":
                continue  # measured: not past a bit-extend (cloned into users)
            j, users = i, self.consumers(i)
            while len(users) == 1 and not self.reshaped(j, users[0]):
                (c,) = users
                if kinds[c] == "elementwise" and not _is_pure_view(
                    fn.ops[c], fn.bodies[c]
                ):
                    j, users = c, self.consumers(c)
                    continue
                if j != i and kinds[c] == "root" and self.root_kinds[c] == "matmul":
                    kinds[i] = "view"
                    self.sunk.add(i)
                    self.permuted[i] = self.transposes[i] = False
                    self.computing.remove(i)
                break

    def raised_reader(self, i: int, users: list[int]) -> bool:
        """Whether transpose ``i`` is read by a raised ``rotate_half`` (which
        reads it with ``tensor.extract``) and by one elementwise
        ``linalg.generic`` besides, which takes it into its operand's indexing
        map (``FuseTransposeWithLinalgOpConsumer``); not one of a slice (a
        fused projection's heads), which it copies out."""
        fn = self.fn
        j = fn.defs.get(fn.uses[i][0]) if fn.uses[i] else None
        while j is not None and fn.ops[j].name in _RESHAPES:
            j = fn.defs.get(fn.uses[j][0]) if fn.uses[j] else None
        if j is None or fn.ops[j].name == "tensor.extract_slice":
            return False
        live = [u for u in users if u not in fn.dead]
        mapped = [u for u in live if u not in fn.raised]
        return (
            len(mapped) == 1
            and len(live) > 1
            and self.kinds[mapped[0]] == "elementwise"
            and fn.ops[mapped[0]].name == "linalg.generic"
        )

    def reads_reshape(self, i: int) -> bool:
        """Whether op ``i`` reads its first input through a reshape of
        non-unit dims."""
        fn = self.fn
        j = fn.defs.get(fn.uses[i][0]) if fn.uses[i] else None
        while j is not None and fn.ops[j].name in _RESHAPES:
            op = fn.ops[j]
            if (
                op.operand_types
                and op.result_types
                and _nonunit_dims(op.operand_types[0])
                != _nonunit_dims(op.result_types[0])
            ):
                return True
            j = fn.defs.get(fn.uses[j][0]) if fn.uses[j] else None
        return False

    def fuse(self) -> None:
        """The fusion phases, repeated until nothing joins."""
        self.sink_transposes()
        for i in list(self.computing):
            users = self.fn.users[i]
            if (
                self.kinds[i] == "elementwise"
                and self.permuted[i]
                and _is_pure_view(self.fn.ops[i], self.fn.bodies[i])
                and users
                and (
                    all(self.index_only(u) for u in users)
                    and not self.reads_reshape(i)
                    or self.raised_reader(i, users)
                )
            ):
                # read by tensor.extract only (a flip): the extracts read
                # the transpose's source at permuted indices
                self.kinds[i] = "view"
                self.computing.remove(i)
        for d in self.computing:
            ops = self.softmax(d)
            if ops and all(set(self.consumers(o)) <= set(ops) for o in ops[:-1]):
                self.raised[d] = ops
            for m in ops or ():
                self.join(d, m)
        self.fuse_elementwise()
        roots = [i for i in self.computing if self.kinds[i] == "root"]
        changed = True
        while changed:
            changed = self.fuse_consumers(roots, self.computing_groups())
            changed = self.fuse_shared_producers() or changed
        self.fuse_into_softmax()

    def computing_groups(self) -> dict[int, list[int]]:
        """The computing ops by their group's representative, in op order."""
        find, grouped = self.groups.find, {}
        for m in self.computing:
            grouped.setdefault(find(m), []).append(m)
        return grouped

    def fuse_into_softmax(self) -> None:
        """A raised softmax's dispatch takes the elementwise group that only
        it reads when the group, with the extend between them, widens its
        elements and no root took it as its consumer: elementwise fusion
        makes one op of them that IREE clones into its reader
        (``isBitExtendOp``: the widest input narrower than the result, no
        ``math`` op), a batch-2 decoder's scaled, masked f16 scores after a
        batch matmul that keeps them apart, extended to f32."""
        fn, find = self.fn, self.groups.find
        grouped = self.computing_groups()
        for d, ops in self.raised.items():
            own = find(d)
            sources = {self.producer(v) for o in ops for v in fn.uses[o]}
            for g in {find(p) for p in sources if p is not None}:
                members = grouped.get(g, ())
                if (
                    g == own
                    or not members
                    or self.has_root[g]
                    or any(self.kinds[m] != "elementwise" for m in members)
                    or not all(self.live(m) and self.same_side(m, d) for m in members)
                    or not self._outside_users(members, g) <= {*ops}
                ):
                    continue
                extends = [
                    u
                    for m in members
                    for u in fn.users[m]
                    if self.kinds[u] == "view" and fn.ops[u].name == "linalg.generic"
                ]
                if self.bit_change(sorted([*members, *extends]))[0] != "extend":
                    continue
                self.join(d, g)
                grouped[find(d)] = grouped.pop(own, []) + grouped.pop(g, [])
                own = find(d)

    def place_moves(self) -> list[tuple[int, str]]:
        """Data movement: into the producer's dispatch, or a copy dispatch."""
        fn, kinds, copies = self.fn, self.kinds, []
        for i in self.computing:
            if kinds[i] != "move":
                continue
            producers = []
            for v in fn.uses[i]:
                j = self.producer(v) if _is_tensor(fn, v) else None
                if (
                    j is not None
                    and self.live(j)
                    and kinds[j] in ("elementwise", "root", "other")
                    # a value others read too, or reshaped, is stored whole
                    # and then padded
                    and (
                        fn.ops[i].name != "tensor.pad"
                        or (
                            self.consumers(j) == [i]
                            and not self.reshaped(j, i)
                            and j not in self.bubbled
                            and not self.sinks_collapse(j)
                        )
                    )
                ):
                    producers.append(v)
            if fn.ops[i].name == "tensor.concat":
                # a concat's inserts go into an empty tensor: IREE fuses none,
                # and its leading constant inputs are written at compile time
                producers = self.folded_inserts(i)
            elif producers:
                self.join(self.producer(producers[0]), i)
            copies += [(i, v) for v in _copies(fn.ops[i], fn) if v not in producers]
        for i, op in enumerate(fn.ops):
            # a slice the function returns is copied out (flow.tensor.slice)
            if i in self.bubbled_slices:
                continue  # the producer computes the slice only
            if (
                op.name == "tensor.extract_slice"
                and self.live(i)
                and any(fn.ops[c].name == "func.return" for c in self.consumers(i))
            ):
                copies += [(i, v) for v in _copies(op, fn)]
            # a slice read through a reshape is not cloned into the reader's
            # dispatch (reshapes are not cloneable): IREE copies it out; a
            # named contraction keeps even a reshape of unit dims (an SSM's
            # per-step slice into a batch_matmul: one executable for all steps)
            elif (
                op.name == "tensor.extract_slice"
                and self.live(i)
                and (
                    self.reshapes_into([i], set(self.consumers(i)))
                    or (
                        self.cuts_kept_dims(i)
                        and self.reshapes_into([i], self.named_roots(i), units=True)
                    )
                )
            ):
                self.copied_slices.add(i)
                copies += [(i, v) for v in _copies(op, fn)]
        return copies

    def folded_inserts(self, i: int) -> list[str]:
        """The inputs of concat ``i`` that const-eval writes at compile time:
        IREE decomposes a concat into inserts into an empty tensor, in the
        order of its inputs, and an insert of a constant into a constant is
        itself constant (hoisted and evaluated by the JIT into a global the
        later inserts write into). So the leading inputs computed from
        constants alone (not index arithmetic an initializer computes) are
        no copies: a batch-2 ViT's class token broadcast over the batch,
        before its patches."""
        fn, folded = self.fn, []
        for operand in fn.ops[i].operands:
            v = _value(operand)
            j = fn.defs.get(v)
            if j is None or not self.const[j] or self.iota[j]:
                break
            folded.append(v)
        return folded

    def sinks_collapse(self, j: int) -> bool:
        """Whether ``j`` reads the root of its dispatch through a collapse of
        non-unit dims: the collapse sinks below ``j`` (``SinkReshapes``), so
        a pad of ``j`` reads a reshape (a grouped convolution's channels)."""
        fn, find = self.fn, self.groups.find
        return any(
            fn.ops[r].name != "linalg.generic"
            and self.kinds[r] == "root"
            and find(r) == find(j)
            and self.reshaped(r, j, expand=False)
            for r in self.fused[find(j)]
        )

    def members(self) -> tuple[dict[int, list[int]], dict[int, str]]:
        """Group -> member ops, and group -> dispatch kind."""
        kinds, find = self.kinds, self.groups.find
        members: dict[int, list[int]] = {}
        for i in self.computing:
            if kinds[i] == "move" and find(i) == i:
                continue  # a copy of arguments only: its dispatches are copies
            if (
                i in self.cloned
                and find(i) == i
                and all(self.takes_clone(c) for c in self.consumers(i))
            ):
                continue  # every reader computes it: no dispatch of its own
            members.setdefault(find(i), []).append(i)
        kind_of = {g: self._kind(ms) for g, ms in members.items()}
        return members, kind_of

    def _kind(self, ms: list[int]) -> str:
        heads = [m for m in ms if self.kinds[m] == "root"]
        reductions = [m for m in heads if self.root_kinds[m] == "reduction"]
        if len(reductions) >= 2 and any(
            _body_has(self.fn.bodies[m], "exp") for m in ms
        ):
            return "softmax"
        if heads:
            return self.root_kinds[heads[-1]]
        if any(self.kinds[m] == "elementwise" for m in ms):
            return "elementwise"
        return "other"

    def hoistable(self, f: int) -> bool:
        """Whether op ``f`` of index arithmetic is a leaf IREE may make a
        global (``isHoistableConstExprLeaf``,
        ``HoistableLinalgOpInterface::isHoistableLeafOp``): it reads a tensor
        (an op of only ``linalg.index`` is fused into its consumers), is no
        broadcast, transpose or copy (transposes are propagated into their
        producers before hoisting), no bit-extend (its widest input of the
        highest rank narrower than its result, ``isBitExtendOp``: cloned
        into its readers), writes no i1 (sub-byte values are never hoisted)
        and makes no global much larger than its constants. A bounds-checked
        gather is a leaf as any other op.

        A mask (an extend of i1) that two ops read and that depends on a
        global computed at run time is a leaf all the same: IREE hoists again
        just before dispatches form (``DispatchCreation``), when elementwise
        fusion has made one op of the mask's compare and select, which reads
        that global and is no extend; a mask read once fuses into its
        reader."""
        fn = self.fn
        if not self.iota[f] or self.kinds[f] not in ("elementwise", "root", "move"):
            return False
        if _is_pure_view(fn.ops[f], fn.bodies[f]):
            return False
        inputs = [
            fn.types[v]
            for v in fn.uses[f]
            if _is_tensor(fn, v)
            and v in fn.defs
            and fn.ops[fn.defs[v]].name not in ("tensor.empty", "linalg.fill")
        ]
        if not inputs or any(
            t.raw and t.raw.endswith("i1>") for t in fn.ops[f].result_types
        ):
            return False
        if self.kinds[f] == "elementwise" and self.bit_change([f])[0] == "extend":
            mask = any(t.raw and t.raw.endswith("i1>") for t in inputs)
            if not (mask and len(self.consumers(f)) > 1 and self.reads_global(f)):
                return False
        return not self.grows_too_much(f)

    def grows_too_much(self, f: int) -> bool:
        """Whether hoisting op ``f`` makes a global more than
        :data:`HOIST_MAX_SIZE_INCREASE` bytes larger than the constants it is
        computed from (``doesHoistingIncreaseSizeSignificantly``: a causal
        mask over 512 positions, 2 MiB of i64, is computed in the dispatch
        that reads it)."""
        fn = self.fn
        out = fn.ops[f].result_types[0] if fn.ops[f].result_types else None
        if out is None or _numel(out) is None or _bits(out) is None:
            return False
        roots = sum(
            _storage_bytes(fn.ops[k].result_types[0]) for k in _tensor_constants(fn, f)
        )
        return _storage_bytes(out) > roots + HOIST_MAX_SIZE_INCREASE

    def reads_global(self, f: int) -> bool:
        """Whether op ``f`` depends on index arithmetic IREE computes at run
        time (a scan, or a hoisted value that is no mask): the JIT evaluates
        no initializer that loads such a global (``JitGlobals``)."""
        fn, seen = self.fn, set()
        stack = fn.producers(f)
        while stack:
            j = stack.pop()
            if j in seen or not self.iota[j]:
                continue
            seen.add(j)
            if self.kinds[j] == "root" or (
                not any(
                    _is_tensor(fn, v) and fn.types[v].raw.endswith("i1>")
                    for v in fn.uses[j]
                )
                and self.hoistable(j)
            ):
                return True
            stack += fn.producers(j)
        return False

    def analysis_order(self) -> list[int]:
        """Ops in the order ``ConstExprAnalysis`` records them, which is the
        order ``ConstExprHoistingPolicy`` decides them in.

        The constants come first; then, constant by constant, each op reading
        one (a scalar read in a body included) and, depth first, the ops it
        reads that are not recorded yet (``expandToOp``: an op before its
        producers, the last producer first); then the worklist: an op whose
        producers are all constant expressions records the ops that read it
        that are not recorded yet. A reshape of a constant is one (IREE folds
        it). IREE visits the constants in its hash map's order (of their
        addresses), which the text does not give; the reverse of the text
        order stands in for it (on the bundled modules it comes closer than
        the text order: the upsample family's |error| 93 against 120, and
        T5's position buckets exact)."""
        fn = self.fn
        order: dict[int, None] = {}
        analyzed: set[int] = set()
        worklist: list[int] = []

        def expand(op: int) -> None:
            stack = [op]
            while stack:
                o = stack.pop()
                if o in analyzed:
                    continue
                order.setdefault(o, None)
                analyzed.add(o)
                producers = fn.producers(o)
                for p in producers:
                    order.setdefault(p, None)
                if self.const[o] and fn.ops[o].name != "func.return":
                    worklist.append(o)
                stack += [p for p in producers if p not in analyzed]

        roots = [
            i
            for i, op in enumerate(fn.ops)
            if op.name == "arith.constant"
            or (
                self.const[i]
                and not self.iota[i]
                and self.kinds[i] == "view"
                and op.name != "tensor.empty"
            )
        ]
        roots.reverse()
        for r in roots:
            order.setdefault(r, None)
            analyzed.add(r)
        for r in roots:
            for u in fn.users[r]:
                expand(u)
        done: set[int] = set(roots)
        progress = True
        while worklist and progress:
            pending, worklist, progress = worklist, [], False
            for o in pending:
                if o in done:
                    continue
                producers = fn.producers(o)
                if any(p not in done for p in producers):
                    worklist.append(o)
                    continue
                done.add(o)
                progress = True
                for u in fn.users[o]:
                    expand(u)
        return list(order)

    def add_initializers(
        self, members: dict, kind_of: dict, copies: list[tuple[int, str]]
    ) -> None:
        """Index arithmetic (from ``linalg.index``) IREE does not evaluate at
        compile time: a hoistable leaf read by an op that is not hoisted is a
        global (``ConstExprHoistingPolicy``: a legal escape), computed by one
        initializer from the globals it reads. The ops are decided once each,
        in :meth:`analysis_order`, an op read only by leaves not decided yet
        having no escape; a reshape or slice is no leaf, so an op it reads
        has one. Along a chain reached from the constant its last op reads
        every other op is a global (a T5 relative-position bucket is nine
        initializers); in a bicubic upsampling the positions as floats are a
        global alone (the fraction's clamp, decided before the ops reading
        it, is none; the fraction is; the scaled positions it reads are
        not). An initializer is one dispatch unless
        the JIT evaluates it (:meth:`runs_at_run_time`). A concat of such
        values is a global of its own whatever reads it (a rotary
        embedding's cos / sin tables read it), written by one copy per input
        that is no contiguous block (``slow_memcpy``) after the initializer
        that computes its inputs; its copies go to ``copies``."""
        fn, kinds, iota, hoisted = self.fn, self.kinds, self.iota, self.hoisted
        for f, tree in self.runtime_globals().items():
            tree = list(tree)
            if fn.ops[f].name == "tensor.concat":
                tree.remove(f)
                copies += [(f, v) for v in _copies(fn.ops[f], fn)]
            if tree:
                members[-1 - f] = tree
                kind_of[-1 - f] = "initializer"
        for f in range(self.n):
            if (
                iota[f]
                and not hoisted[f]
                and kinds[f] == "elementwise"
                and self.index_only(f)
                and any(_external(fn.ops[u]) for u in fn.users[f])
            ):
                # no hoistable leaf (no tensor input), and a sort / scan takes
                # no clone of it: computed in a dispatch of its own
                members[-1 - f] = [f]
                kind_of[-1 - f] = "initializer"
            elif self.hoisted_broadcast(f):
                members[-1 - f] = [f]
                kind_of[-1 - f] = "initializer"

    def hoisted_broadcast(self, f: int) -> bool:
        """Whether op ``f`` broadcasts a constant into a global that an
        initializer computes at run time: a broadcast is no hoistable leaf
        when its reader can fuse it (an input of a ``linalg`` op: it is
        inlined there), but one a reader takes otherwise (captured by a
        gather's body, copied by a concat or insert) escapes to a global,
        and the JIT does not evaluate an initializer that only broadcasts
        (iree-compile: ``elementwise_broadcast_2x514_i64`` in an initializer
        of a batch-2 RoBERTa, its position ids for the gather). A concat's
        leading constant inputs are written at compile time
        (:meth:`folded_inserts`)."""
        fn = self.fn
        if not self.const[f] or self.iota[f] or self.kinds[f] != "elementwise":
            return False
        if not _broadcasts(fn.ops[f], fn.bodies[f], self.aliases):
            return False
        v = _value(fn.ops[f].results[0])
        escapes = False
        for u in fn.users[f]:
            if self.const[u]:
                return False  # computed with its constant reader
            op = fn.ops[u]
            if op.name in _MOVE_OPS:
                folded = op.name == "tensor.concat" and v in self.folded_inserts(u)
                escapes = escapes or not folded
            elif op.name.startswith("linalg.") and v not in op.operands:
                escapes = True
            else:
                return False  # an input it fuses into
        return escapes and not self.grows_too_much(f)

    def runtime_globals(self) -> dict[int, list[int]]:
        """Global -> the ops of its initializer, for the globals of index
        arithmetic computed at run time (see :meth:`add_initializers`). Decided
        once per function, from the ops alone (it sets :attr:`hoisted`), so
        fusion can ask before the initializers are placed."""
        if self._runtime_globals is not None:
            return self._runtime_globals
        fn, kinds, iota = self.fn, self.kinds, self.iota
        hoisted = self.hoisted
        at_run_time: dict[int, bool] = {}
        decided: dict[int, bool] = {}
        for f in self.analysis_order():
            if not self.hoistable(f):
                continue
            decided[f] = hoisted[f] = fn.ops[f].name == "tensor.concat" or any(
                not self.hoistable(c) or decided.get(c) is False for c in fn.users[f]
            )
        found: dict[int, list[int]] = {}
        for f in range(self.n):
            if not hoisted[f]:
                continue
            tree, stack = [], [f]
            while stack:
                j = stack.pop()
                if (
                    j not in tree
                    and iota[j]
                    and kinds[j] in ("elementwise", "root", "move")
                    and (j == f or not hoisted[j])
                ):
                    tree.append(j)
                    stack += fn.producers(j)
            at_run_time[f] = self.runs_at_run_time(f, tree, at_run_time)
            if at_run_time[f]:
                found[f] = tree
        self._runtime_globals = found
        return found

    def runs_at_run_time(
        self, f: int, tree: list[int], at_run_time: dict[int, bool]
    ) -> bool:
        """Whether the initializer computing global ``f`` from the ops
        ``tree`` runs at run time: the JIT (``JitGlobals``) evaluates one
        whose ops the const-expr analysis reaches from a constant or a
        global it loads (a position table gathered by positions), unless it
        loads a global computed at run time. One that reads neither (``iota``
        and a subtraction) is left to run, and so is everything computed
        from it; and so is a mask hoisted before dispatches form, which no
        JIT follows (see :meth:`hoistable`)."""
        fn, kinds = self.fn, self.kinds
        if kinds[f] == "elementwise" and self.bit_change([f])[0] == "extend":
            return True
        inside, loads, roots = set(tree), [], False
        for j in tree:
            for v in fn.uses[j]:
                d = self.first_operand_source(v)
                if d is None or d in inside:
                    continue
                if self.hoisted[d]:
                    loads.append(d)
                roots = (
                    roots
                    or fn.ops[d].name == "arith.constant"
                    or (
                        self.const[d]
                        and not self.iota[d]
                        and kinds[d] in ("elementwise", "root", "move")
                    )
                )
        return any(at_run_time.get(d, True) for d in loads) or not (loads or roots)


def _greedy_fusion(
    order: list[int],
    inputs: dict[int, list],
    inits: dict[int, set[str]],
    consumer: dict[int, int],
) -> set[int]:
    """The producers that MLIR's greedy driver, running elementwise fusion
    with IREE's operand cap over the ops ``order`` (program order), leaves
    unfused. ``inputs[m]``: op ``m``'s distinct inputs, an int for the
    producer whose only user is ``m`` (``consumer``) or for an op outside
    ``order`` that reads none of its operands (it fuses into any reader),
    else a key; ``inputs[m]`` follows op ``m`` (its group) as it fuses, its
    inits (``inits[m]``) stay."""
    inputs = {m: list(ks) for m, ks in inputs.items()}
    users: dict[int, set[int]] = {}  # producer -> ops reading it, dead ones too
    for m, ks in inputs.items():
        for k in ks:
            if isinstance(k, int):
                users.setdefault(k, set()).add(m)
    dead: set[int] = set()  # fused away, erased when popped
    gone: set[int] = set()
    tree = set(order)
    work: list[int] = []  # a stack: the driver pops the last op queued
    queued: set[int] = set()

    def push(m: int) -> None:
        if m in tree and m not in queued and m not in gone:
            queued.add(m)
            work.append(m)

    swept = True
    while swept:  # the driver sweeps again while a sweep changes the IR
        swept = False
        for m in order:
            push(m)
        while work:
            m = work.pop()
            queued.discard(m)
            if m in dead:
                gone.add(m)
                for k in inputs[m]:
                    if isinstance(k, int):
                        users[k].discard(m)
                        push(k)
                continue
            ks = inputs[m]
            for n, p in enumerate(ks):
                if not isinstance(p, int) or p in dead:
                    continue
                if p in consumer and len(users[p]) != 1:
                    continue
                rest = ks[:n] + ks[n + 1 :]
                if len({*inputs[p], *inits[p], *rest, *inits[m]}) >= _MAX_OPERANDS:
                    continue
                inputs[m] = list(dict.fromkeys(ks[:n] + inputs[p] + ks[n + 1 :]))
                for k in inputs[p]:
                    if isinstance(k, int):
                        users[k].add(m)
                users[p].discard(m)
                if p in consumer:
                    dead.add(p)
                swept = True
                queued.add(m)
                work.append(m)
                for u in sorted(users.get(m, ())):
                    push(u)  # its operand replaced
                for k in ks:
                    if isinstance(k, int):
                        push(k)
                break
    return tree - dead


def _form_groups(fn: _Function, aliases: dict[str, str]):
    """Dispatch groups: group -> member ops, group -> kind, copy dispatches, and
    the grouping (op kinds, constants) they come from."""
    grouping = _Grouping(fn, aliases)
    grouping.fuse()
    copies = grouping.place_moves()
    members, kind_of = grouping.members()
    grouping.add_initializers(members, kind_of, copies)
    return members, kind_of, copies, grouping


def _is_tensor(fn: _Function, v: str) -> bool:
    t = fn.types.get(v)
    return t is not None and t.kind == "tensor"


def _body_has(body: list[Op], word: str) -> bool:
    return any(word in b.name for b in body)


def _offsets(types: list[ShapedType | None]) -> tuple[list[str], list[str]]:
    """Byte offsets of the bindings of ``types`` (their names) and the
    constants that define them.

    IREE binds each dispatch operand at its own offset in the program's
    buffers (of the 21,708 bundled kernels whose offsets are constants,
    18,091 have one offset value per binding, 12,388 exactly one of them 0),
    each an ``index`` constant at the top of the function. The region's
    bindings are laid out one after another from 0, each at a multiple of 64
    bytes (the bindings' alignment), so that the text has IREE's constants and
    ops, whatever the program's real layout."""
    names, lines, at = [], [], 0
    for t in types:
        name = f"%offset{at}"  # not %c<at>: the module's constants keep theirs
        if name not in names:
            lines.append(f"{name} = arith.constant {at} : index")
        names.append(name)
        size = t.nbytes if t is not None else None
        at += -(-int(size or 0) // 64) * 64 or 64
    return names, lines


def _binding(
    index: int,
    v: str,
    t: ShapedType | None,
    access: str,
    at: int = 0,
    dim: int = 0,
    offset: str = "%offset0",
) -> list[str]:
    """A binding of ``v`` (type ``t``) at byte ``offset`` (the name of an index
    constant) and its load or store, at element ``at`` along ``dim``. An
    ``i1`` tensor is held as ``i8`` (IREE's ``TypePropagation``): loaded and
    truncated, extended and stored."""
    raw = t.raw if t is not None and t.raw else "tensor<?xf32>"
    held = raw
    if t is not None and t.element == "i1" and raw.endswith("i1>"):
        held = raw[:-3] + "i8>"
    dims = t.shape if t is not None and t.shape is not None else (0,)
    zeros = ", ".join(str(at) if d == dim else "0" for d in range(len(dims)))
    sizes = ", ".join("?" if d is None else str(d) for d in dims)
    ones = ", ".join("1" for _ in dims)
    flags = "ReadOnly" if access == "readonly" else "Indirect"
    binding = f"%binding{index}"
    tensor = f"!iree_tensor_ext.dispatch.tensor<{access}:{held}>"
    subspan = (
        f"{binding} = hal.interface.binding.subspan layout(#pipeline_layout) "
        f"binding({index}) alignment(64) offset({offset}) flags({flags}) : {tensor}"
    )
    slots = f"offsets = [{zeros}], sizes = [{sizes}], strides = [{ones}]"
    if access == "readonly":
        if held == raw:
            access_line = (
                f"{v} = iree_tensor_ext.dispatch.tensor.load {binding}, {slots} : "
                f"{tensor} -> {raw}"
            )
        else:
            access_line = (
                f"%held{index} = iree_tensor_ext.dispatch.tensor.load {binding}, "
                f"{slots} : {tensor} -> {held}\n"
                f"{v} = arith.trunci %held{index} : {held} to {raw}"
            )
    else:
        stored = v
        access_line = ""
        if held != raw:
            stored = f"%held{index}"
            access_line = f"{stored} = arith.extui {v} : {raw} to {held}\n"
        access_line += (
            f"iree_tensor_ext.dispatch.tensor.store {stored}, {binding}, {slots} : "
            f"{held} -> {tensor}"
        )
    return [subspan, access_line]


def _view_of(fn: _Function, j: int, name: str) -> int | None:
    """The ``name`` op that op ``j`` is, or is a reshape of (None if none)."""
    while fn.ops[j].name in _VIEW_OPS and fn.ops[j].name != name:
        sources = [u for u in fn.uses[j] if u in fn.defs]
        if not sources:
            return None
        j = fn.defs[sources[0]]
    return j if fn.ops[j].name == name else None


def _tensor_constants(fn: _Function, j: int) -> list[int]:
    """The tensor ``arith.constant`` ops op ``j`` is computed from."""
    found, seen, stack = [], set(), [j]
    while stack:
        k = stack.pop()
        if k in seen:
            continue
        seen.add(k)
        op = fn.ops[k]
        if op.name == "arith.constant":
            t = op.result_types[0] if op.result_types else None
            if t is not None and t.kind == "tensor":
                found.append(k)
            continue
        stack += fn.producers(k)
    return found


def _constant_view(fn: _Function, j: int) -> bool:
    """Whether op ``j`` is a constant, or a reshape of one (IREE folds it)."""
    return _view_of(fn, j, "arith.constant") is not None


def _reshaped_resource(fn: _Function, j: int, kinds: list[str]) -> bool:
    """Whether op ``j`` reshapes a ``dense_resource`` constant (through
    copies: a transpose), splitting or merging non-unit dims: no fold
    reshapes a resource's data, so the reshape stays outside the dispatch
    and the reader binds its result (DeBERTa's per-head query bias is one
    executable for every layer)."""
    reshaped = False
    while True:
        op = fn.ops[j]
        if op.name == "arith.constant":
            return reshaped and "dense_resource<" in op.text
        if op.name in _RESHAPES and op.operand_types and op.result_types:
            before, after = op.operand_types[0], op.result_types[0]
            reshaped = reshaped or _nonunit_dims(before) != _nonunit_dims(after)
        elif not (kinds[j] == "view" or _is_pure_view(op, fn.bodies[j])):
            return False
        sources = [u for u in fn.uses[j] if u in fn.defs]
        if not sources:
            return False
        j = fn.defs[sources[0]]


def _splat_view(fn: _Function, j: int) -> bool:
    """Whether op ``j`` is a splat constant, or a reshape of one: IREE clones
    a splat into every dispatch that reads it, whatever its size
    (``isClonableIntoDispatchOp``)."""
    k = _view_of(fn, j, "arith.constant")
    return k is not None and _SPLAT_RE.search(fn.ops[k].text) is not None


def _region_body(
    grouping: _Grouping,
    members: list[int],
    spans: list[str],
    clone_extends: bool = False,
) -> tuple:
    """The function body of one region: constants, loads, ops, stores.

    Returns ``(lines, reshapes, at, swapped, extended)``: the body's lines,
    which of them are reshapes between its ops, the op each op line writes,
    the loads read transposed (:func:`_swapped_loads`), and whether the
    region loads a bit-extend's result that ``clone_extends`` would clone.
    IREE clones a bit-extend into each consumer's dispatch
    (``isClonableIntoDispatchOp``): the dispatch loads the narrow tensor and
    widens it itself, and a named contraction or convolution reads the
    narrow tensor as its operand (``NamedImplicitCastOpConversion``:
    ``matmul_..._f16xf16xf32``). With ``clone_extends`` the body does both;
    without it, the body loads the wide tensor, as the lines that tell
    executables apart read (the executables IREE makes were measured with
    them: cloned lines keep shapes the keys' collapsed op texts leave out).

    A small constant, or a small copy of one (a transposed weight), is
    inlined, so regions that differ only in such weights stay distinct
    executables; a value computed from constants (an RWKV's
    ``-exp(time_decay)``) is evaluated at compile time into a global
    (``HoistIntoGlobals``), which the region binds like an argument. A
    reshape between two of the region's ops is copied in (IREE moves it
    through the fused ops), so the value is neither stored nor loaded. Index
    arithmetic that is not hoisted (a mask from positions) is computed in
    each region that reads it, so layers with different masks are different
    executables.
    """
    fn, const, kinds, iota = grouping.fn, grouping.const, grouping.kinds, grouping.iota
    copied = grouping.copied_slices
    inside = set(members)
    cloned: list[int] = []  # constants, empties and fills copied in
    inner: list[int] = []  # reshapes between the region's ops
    loads: list[str] = []

    def source(j: int) -> int | None:
        return next((k for k in grouping.views(j) if kinds[k] != "view"), None)

    def viewed(j: int, name: str) -> int | None:
        """The first ``name`` op among view ``j`` and the views it reads."""
        return next(
            (
                k
                for k in grouping.views(j)
                if kinds[k] == "view" and fn.ops[k].name == name
            ),
            None,
        )

    def sliced(j: int) -> bool:
        """Whether view ``j`` (a bit-extend) reads a slice through views: the
        extend is cloned in with the slice, whose offsets tell executables
        apart (an RNN's steps)."""
        k = viewed(j, "tensor.extract_slice")
        return k is not None and k not in copied

    def reshaped_extend(j: int) -> bool:
        """Whether view ``j`` reshapes a bit-extend (through views): IREE
        moves the reshape above the extend (a BatchNorm's f16 constant,
        widened, then expanded), so the extend is cloned as any other."""
        return (
            fn.ops[j].name in _RESHAPE_TEXT and viewed(j, "linalg.generic") is not None
        )

    extended = False
    folded: dict[int, dict] = {}  # contraction -> extended value -> source, type

    def need(v: str, inline: bool = True, reader: int | None = None) -> None:
        nonlocal extended
        j = fn.defs.get(v)
        if j in inside or j in cloned or j in inner or v in loads:
            return
        if j is None:  # a function argument
            loads.append(v)
            return
        op = fn.ops[j]
        extend = op.name == "linalg.generic" and kinds[j] == "view"  # a bit-extend
        clonable = extend or reshaped_extend(j)  # by clone_extends
        if (
            extend
            and reader in inside
            and fn.ops[reader].name.startswith(_CAST_FOLDING)
        ):
            narrow = _cast_source(fn, j)
            if narrow is None:
                clonable = False
            elif clone_extends:  # the contraction reads the narrow source
                folded.setdefault(reader, {})[v] = (narrow, op.operand_types[0].raw)
                need(narrow, inline, reader)
                return
        t = fn.types.get(v)
        broadcast = grouping.broadcast_constant(j)
        if extend and op.operand_types:
            t = op.operand_types[0]  # a bit-extend is cloned: its input's size
        elif broadcast:
            # a broadcast is no hoisted leaf: it fuses into its reader with
            # the constant it broadcasts (inlined by that constant's size)
            t = op.operand_types[0]
        small = (
            t is None
            or t.kind != "tensor"
            or (inline and (t.nbytes or 0) <= INLINE_CONSTANT_BYTES)
        )
        # a value computed from constants (not only moved) is a global
        hoisted = kinds[j] == "elementwise" and not _is_pure_view(op, fn.bodies[j])
        if (
            (
                small
                and not hoisted
                and (const[j] or _constant_view(fn, j))
                and not _reshaped_resource(fn, j, kinds)
            )
            or (
                iota[j]
                and kinds[j] == "elementwise"
                and not grouping.hoisted[j]
                and not _body_has(fn.bodies[j], "cf.assert")
            )
            or _splat_view(fn, j)
            or op.name in _CLONED
            or (j in grouping.cloned and j not in inside)
            or (extend and sliced(j))
            or (clone_extends and clonable)
            # elementwise fusion takes a constant's broadcast into its
            # reader, which binds the constant (a detached bias)
            or (broadcast and reader in inside and kinds[reader] == "elementwise")
            # a view of a cloned transpose: the reader reads its source
            or (kinds[j] == "view" and source(j) in grouping.transposes_in)
            or _view_of(fn, j, "tensor.extract_slice") not in (None, *copied)
        ):
            cloned.append(j)
            for u in fn.uses[j]:
                need(u, reader=j)
        elif kinds[j] == "view" and source(j) in inside:
            inner.append(j)
            for u in fn.uses[j]:
                need(u)
        else:
            extended = extended or clonable
            loads.append(v)

    # a softmax is one op (RaiseSpecialOps): its ops but the last are left out
    raised = {o: d for d, ops in grouping.raised.items() if d in inside for o in ops}
    expanded = grouping.expanded_inputs(members)
    for m in members:
        uses = fn.uses[m]
        if m in raised:
            top = grouping.raised[raised[m]][0]
            uses = (
                [v for v in fn.uses[top] if _is_tensor(fn, v)][:1] if m == top else []
            )
        for v in uses:
            inline = m not in expanded or not grouping.reads_dims(m, v, expanded[m])
            need(v, inline, m)
    local = inside.union(inner)

    def leaves(m: int) -> bool:
        stack = list(fn.users[m])
        while stack:
            u = stack.pop()
            if u not in local:
                return True
            if u not in inside:
                stack += fn.users[u]
        return False

    stores = []
    for m in members:
        if leaves(m) and raised.get(m, m) == m:
            stores += [_value(r) for r in fn.ops[m].results if _value(r) not in stores]
    bindings = [(v, "readonly") for v in loads] + [(v, "writeonly") for v in stores]
    types = [fn.types.get(v) for v, _ in bindings]
    offsets, lines = _offsets(types)
    texts = [
        _binding(i, v, t, a, offset=o)
        for i, ((v, a), t, o) in enumerate(zip(bindings, types, offsets, strict=True))
    ]
    lines += [t[0] for t in texts]
    lines += [
        t[1] for t, (_, a) in zip(texts, bindings, strict=True) if a == "readonly"
    ]
    # empties first, then constants, fills of them, and the rest (slices,
    # extends, broadcasts) in op order, then each op followed by the
    # reshapes of its result: where the module defines what a region clones
    # (one empty for all layers, a fill merged with its twin) must not tell
    # regions apart
    lines += [
        _as_generic(fn.ops[j]) or spans[j]
        for j in sorted(cloned, key=lambda j: _clone_order(fn, spans, j))
    ]
    reshapes: list[int] = []
    at: dict[int, int] = {}  # line -> the op it writes
    for m in sorted(inside):
        if m in raised and raised[m] != m:
            continue
        if m in raised:
            lines.append(_softmax_line(grouping, m))
        else:
            line = _as_generic(fn.ops[m]) or spans[m]
            if m in folded:
                line = _fold_casts(line, folded[m])
            lines.append(line)
            at[len(lines) - 1] = m
        views = [u for u in fn.users[m] if u in local and u not in inside]
        while views:
            j = views.pop(0)
            lines.append(spans[j])
            reshapes.append(len(lines) - 1)
            views += [u for u in fn.users[j] if u in local and u not in inside]
    lines += [
        t[1] for t, (_, a) in zip(texts, bindings, strict=True) if a != "readonly"
    ]
    lines.append("return")
    return lines, reshapes, at, _swapped_loads(fn, loads, inside), extended


_CLONE_RANKS = {"tensor.empty": 0, "arith.constant": 1}


def _clone_order(fn: _Function, spans: list[str], j: int) -> tuple:
    """Where a cloned op's line goes among a region's cloned lines: empties
    and constants by their text (they read nothing), then fills of them and
    the rest in op order."""
    name = fn.ops[j].name
    if name in _CLONE_RANKS:  # by the text that tells executables apart
        text = _TENSOR_RE.sub(_flat, spans[j].split("=", 1)[-1])
        return _CLONE_RANKS[name], text, j
    if name == "linalg.fill" and all(
        fn.defs.get(v) is None or fn.ops[fn.defs[v]].name in _CLONE_RANKS
        for v in fn.uses[j]
    ):
        return 2, "", j
    return 3, "", j


def _cast_source(fn: _Function, j: int) -> str | None:
    """The value bit-extend ``j`` widens, where it keeps its shape (an
    elementwise extend a named contraction folds); None otherwise."""
    op = fn.ops[j]
    if not op.operands or not op.operand_types or not op.result_types:
        return None
    source = _value(op.operands[0])  # its input (its init is an empty)
    narrow, wide = op.operand_types[0], op.result_types[0]
    if source not in fn.uses[j] or narrow.shape is None or narrow.shape != wide.shape:
        return None
    return source


_INS_RE = re.compile(r"\bins\(([^:()]*):([^()]*)\)")
_LISTED_TYPE_RE = re.compile(r"tensor<[^>]*>|[^,\s]+")


def _fold_casts(line: str, casts: dict) -> str:
    """A named contraction's text reading the sources of bit-extends instead
    of their results (``casts``: result -> (source, its type)), as IREE's
    ``NamedImplicitCastOpConversion`` rewrites it."""
    m = _INS_RE.search(line)
    if m is None:
        return line
    names = [x.strip() for x in m.group(1).split(",")]
    types = _LISTED_TYPE_RE.findall(m.group(2))
    if len(types) != len(names):
        return line
    for k, name in enumerate(names):
        if name in casts:
            names[k], types[k] = casts[name]
    ins = f"ins({', '.join(names)} : {', '.join(types)})"
    return line[: m.start()] + ins + line[m.end() :]


def _swapped_loads(fn: _Function, loads: list[str], inside: set[int]) -> dict:
    """Loaded values that transpose their two innermost dims and that only
    the region's matmuls read, as their right operand: value -> the type of
    what they transpose. IREE moves such a transpose into the matmul's
    indexing maps (``PropagateLinalgTranspose``) and binds the untransposed
    tensor: a ``torch.nn.Linear``'s weight, read as ``[N, K]``."""
    out = {}
    for v in loads:
        j = fn.defs.get(v)
        if j is None or fn.ops[j].name != "linalg.transpose":
            continue
        m = _PERMUTATION_RE.search(fn.ops[j].text)
        order = _ints(m.group(1)) if m else []
        rank = len(order)
        if rank not in (2, 3) or order != [*range(rank - 2), rank - 1, rank - 2]:
            continue
        readers = [u for u in fn.users[j] if u in inside]
        want = "linalg.matmul" if rank == 2 else "linalg.batch_matmul"
        source = fn.ops[j].operand_types[:1]
        if (
            readers
            and source
            and all(
                fn.ops[u].name == want
                and len(fn.ops[u].operands) > 1
                and _value(fn.ops[u].operands[1]) == v
                and _value(fn.ops[u].operands[0]) != v
                for u in readers
            )
        ):
            out[v] = source[0]
    return out


def _as_generic(op: Op) -> str | None:
    """A ``linalg.transpose`` / ``broadcast`` written as the ``linalg.generic``
    IREE makes of it (``GeneralizeLinalgNamedOps``); None for other ops."""
    if op.name not in ("linalg.transpose", "linalg.broadcast"):
        return None
    m = _DIMS_RE.search(op.text)
    if m is None or len(op.operands) < 2 or len(op.operand_types) < 2:
        return None
    listed = [int(x) for x in m.group(1).split(",") if x.strip()]
    rank = len(op.operand_types[1].shape or ())
    loops = [f"d{i}" for i in range(rank)]
    if op.name == "linalg.transpose":
        reads = [loops[listed.index(j)] for j in range(rank)]
    else:
        reads = [d for i, d in enumerate(loops) if i not in listed]
    head = ", ".join(loops)
    maps = f"affine_map<({head}) -> ({', '.join(reads)})>, affine_map<({head}) -> ({head})>"
    (a, b), (ta, tb) = op.operands[:2], op.operand_types[:2]
    element = tb.element
    parallel = ", ".join(['"parallel"'] * rank)
    return (
        f"{_value(op.results[0])} = linalg.generic {{indexing_maps = [{maps}], "
        f"iterator_types = [{parallel}]}} "
        f"ins({a} : {ta.raw}) outs({b} : {tb.raw}) {{\n"
        f"^bb0(%in: {element}, %out: {element}):\nlinalg.yield %in : {element}\n"
        f"}} -> {tb.raw}"
    )


def _softmax_line(grouping: _Grouping, d: int) -> str:
    """The ``linalg.softmax`` IREE raises the softmax ending in op ``d`` to."""
    fn, top = grouping.fn, grouping.raised[d][0]
    x = next(v for v in fn.uses[top] if _is_tensor(fn, v))
    t = fn.types[x].raw
    dim = _iterators(fn.ops[top]).index("reduction")
    out = _value(fn.ops[d].results[0])
    return (
        f"%softmax_init = tensor.empty() : {t}\n{out} = linalg.softmax "
        f"dimension({dim}) ins({x} : {t}) outs(%softmax_init : {t}) -> {t}"
    )


def _copy_body(
    fn: _Function, i: int, v: str, spans: list[str], nth: int = 0
) -> list[str]:
    """A copy dispatch of ``v`` into the result of move op ``i`` (a slice
    copies with its offsets, so slices at different offsets stay apart); of a
    concat reading ``v`` several times, the copy of its ``nth`` read."""
    op = fn.ops[i]
    out = _value(op.results[0])
    sliced = op.name == "tensor.extract_slice"
    at = dim = 0
    if op.name == "tensor.concat":
        # each input is copied to its own offset: one executable per input
        dim = _concat_dim(op)
        for operand, t in zip(op.operands, op.operand_types, strict=False):
            if _value(operand) == v:
                if not nth:
                    break
                nth -= 1
            if t.shape is None or len(t.shape) <= dim:
                break
            at += t.shape[dim] or 0
    types = [fn.types.get(v), fn.types.get(out)]
    offsets, constants = _offsets(types)
    load = _binding(0, v, types[0], "readonly", offset=offsets[0])
    stored = out if sliced else v
    store = _binding(1, stored, types[1], "writeonly", at, dim, offset=offsets[1])
    return [
        *constants,
        load[0],
        store[0],
        load[1],
        *([spans[i]] if sliced else []),
        store[1],
        "return",
    ]


def _demoted_identity(op: Op, body: list[Op]) -> bool:
    """An ``f32 -> f64`` extension or ``f64 -> f32`` truncation: a copy once
    IREE demotes f64 to f32."""
    payload = [b.name for b in body if b.name != "linalg.yield"]
    if op.name != "linalg.generic" or payload not in (["arith.extf"], ["arith.truncf"]):
        return False
    kinds = {t.raw.rsplit("x", 1)[-1].rstrip(">") for t in op.operand_types if t.raw}
    return kinds == {"f32", "f64"}


def _value_key(fn: _Function, base: list[str], span: str, number: dict) -> str:
    """What an op computes: its text with operands numbered, locals renamed,
    its own results anonymous and f64 read as f32."""
    text = span.split("=", 1)[1] if "=" in span else span
    parts = _SSA_SPLIT_RE.split(text)
    local: dict[str, str] = {}
    for k in range(1, len(parts), 2):
        v = parts[k]
        b = _value(v)
        if b in base:
            parts[k] = "%r" + v[len(b) :]
        elif b in fn.defs or b in fn.args:
            parts[k] = number.get(b, b) + v[len(b) :]
        else:
            new = local.get(v)
            if new is None:
                new = local[v] = f"%l{len(local)}"
            parts[k] = new
    return _F64_RE.sub("f32", "".join(parts))


def _merge_duplicates(fn: _Function, spans: list[str]) -> None:
    """Merge ops that compute the same value once f64 is demoted to f32.

    IREE demotes f64 to f32 (``--iree-input-demote-f64-to-f32``, on by
    default), which makes an f64 copy of a computation (torch's layer norm
    takes its mean in both) equal to the f32 one; CSE then keeps one. A merged
    op's users read the op it duplicates; it is marked in ``fn.dead``. An op
    with a bounds check (a gather's ``cf.assert``) has a side effect: CSE
    keeps each copy.
    """
    number: dict[str, str] = {}  # value -> the value it equals
    seen: dict[str, int] = {}
    for i, op in enumerate(fn.ops):
        if op.name == "func.return" or not op.results:
            continue
        if _body_has(fn.bodies[i], "cf.assert"):
            continue  # a gather's bounds check is a side effect: CSE keeps both
        base = [_value(r) for r in op.results]
        if _demoted_identity(op, fn.bodies[i]):
            source = fn.uses[i][0] if fn.uses[i] else None
            if source is not None:
                number[base[0]] = number.get(source, source)
                continue
        key = _value_key(fn, base, spans[i], number)
        j = seen.setdefault(key, i)
        if j != i:
            first = _value(fn.ops[j].results[0])
            number[base[0]] = number.get(first, first)
            _merge_into(fn, spans, i, j)


def _merge_into(fn: _Function, spans: list[str], i: int, j: int) -> None:
    """Op ``i`` computes what op ``j`` does: its users read ``j``'s results,
    and it is marked in ``fn.dead``."""
    base = [_value(r) for r in fn.ops[i].results]
    for r in base:
        fn.defs[r] = j
    fn.users[j] += [u for u in fn.users[i] if u not in fn.users[j]]
    # users name the kept op, so a region reads as its twin's does: in their
    # text, in the values they use (what a region loads) and in their operands
    # (what the region key reads); the text alone left a region loading the
    # merged twin it no longer read
    renames = dict(zip(base, (_value(r) for r in fn.ops[j].results), strict=False))
    for u in fn.users[i]:
        for old, kept in renames.items():
            spans[u] = re.sub(re.escape(old) + r"(?![\w$.-])", kept, spans[u])
        fn.uses[u] = list(dict.fromkeys(renames.get(v, v) for v in fn.uses[u]))
        op = fn.ops[u]
        op.operands = tuple(
            renames.get(_value(v), _value(v)) + v[len(_value(v)) :] for v in op.operands
        )
    fn.users[i] = []
    for v in fn.uses[i]:
        producer = fn.defs.get(v)
        if producer is not None and i in fn.users[producer]:
            fn.users[producer].remove(i)
    fn.dead.add(i)


def _merge_unit_dim_twins(fn: _Function, spans: list[str], aliases) -> None:
    """Merge elementwise ops that apply the same body to the same values but
    for unit dims (an upsampling's index computed on 32 and on 32x1 rows):
    IREE drops unit dims (``FoldUnitExtentDims``) and CSE keeps one."""

    number: dict[str, str] = {}  # value of a merged op -> its twin's

    def source(v: str) -> str:
        j = fn.defs.get(v)
        while j is not None and fn.ops[j].name in _RESHAPES:
            op = fn.ops[j]
            if not op.operand_types or not op.result_types:
                break
            if _nonunit_dims(op.operand_types[0]) != _nonunit_dims(op.result_types[0]):
                break
            v = fn.uses[j][0]
            j = fn.defs.get(v)
        return number.get(v, v)

    def body(i: int) -> tuple[str, ...]:
        local: dict[str, str] = {}

        def rename(m: re.Match) -> str:
            v = m.group(0)
            if _value(v) in fn.defs or _value(v) in fn.args:
                return v
            return local.setdefault(v, f"%l{len(local)}")

        return tuple(_SSA_RE.sub(rename, b.text) for b in fn.bodies[i])

    # ops reading the same values into the same shape -> [op, its body]; a
    # body is renamed only once a second op shares the key (it rarely does)
    seen: dict[tuple, list[list]] = {}
    for i, op in enumerate(fn.ops):
        if op.name != "linalg.generic" or i in fn.dead or len(op.results) != 1:
            continue
        maps = _parse_maps(_attr(op, ("indexing_maps",)) or "", aliases)
        if not maps or any(results != dims for dims, results in maps):
            continue  # identity maps only: the same elements pair up
        if not op.result_types or not fn.bodies[i]:
            continue
        inputs = tuple(source(_value(v)) for v in op.operands[: -len(op.results)])
        out = op.result_types[0]
        key = (inputs, tuple(_nonunit_dims(out) or ()), out.element)
        twins = seen.setdefault(key, [])
        if not twins:
            twins.append([i, None])
            continue
        mine = body(i)
        for twin in twins:
            if twin[1] is None:
                twin[1] = body(twin[0])
            if twin[1] == mine:
                j = twin[0]
                number[_value(op.results[0])] = _value(fn.ops[j].results[0])
                _merge_into(fn, spans, i, j)
                break
        else:
            twins.append([i, mine])


def _raise_rotate_half(fn: _Function, spans: list[str]) -> None:
    """Raise a rotary embedding's ``rotate_half`` to one elementwise op.

    ``RaiseSpecialOps.cpp`` (``matchCatNegateAndSlice``): ``concat(-x[..., h:],
    x[..., :h])`` along the innermost dim, of the type of ``x``, becomes a
    ``linalg.generic`` that reads ``x`` (with ``tensor.extract``) and negates
    half of it; the slices and the negation, if nothing else reads them, go.
    """
    for i, op in enumerate(fn.ops):
        types = op.operand_types
        if (
            op.name != "tensor.concat"
            or len(op.operands) != 2
            or len(types) != 2
            or types[0].raw != types[1].raw
            or types[0].shape is None
            or _concat_dim(op) != len(types[0].shape) - 1
            or not op.result_types
        ):
            continue
        neg, top = (fn.defs.get(_value(v)) for v in op.operands)
        if neg is None or top is None or fn.ops[top].name != "tensor.extract_slice":
            continue
        payload = [b.name for b in fn.bodies[neg] if b.name != "linalg.yield"]
        if fn.ops[neg].name != "linalg.generic" or payload != ["arith.negf"]:
            continue
        bottom = fn.defs.get(fn.uses[neg][0]) if fn.uses[neg] else None
        if bottom is None or fn.ops[bottom].name != "tensor.extract_slice":
            continue
        source = fn.uses[top][0] if fn.uses[top] else None
        if source is None or fn.uses[bottom][:1] != [source]:
            continue
        if (
            fn.types.get(source) is None
            or fn.types[source].raw != op.result_types[0].raw
            or _slice_of_slice(fn, source)
        ):
            continue
        for j, read in ((neg, bottom), (top, None), (bottom, None)):
            if set(fn.users[j]) <= {i}:  # the slice the negation read: none
                fn.dead.add(j)
                fn.users[j] = []
                if read is not None and j in fn.users[read]:
                    fn.users[read].remove(j)
            elif i in fn.users[j]:
                fn.users[j].remove(i)
        fn.uses[i] = [source]
        if source in fn.defs and i not in fn.users[fn.defs[source]]:
            fn.users[fn.defs[source]].append(i)
        fn.raised.add(i)
        spans[i] = _rotate_half_line(_value(op.results[0]), source, op.result_types[0])


def _slice_of_slice(fn: _Function, v: str) -> bool:
    """Whether ``v`` is a ``tensor.extract_slice`` of part of a tensor: the
    canonicalizer composes the slices of it into slices of that tensor."""
    j = fn.defs.get(v)
    if j is None or fn.ops[j].name != "tensor.extract_slice":
        return False
    op = fn.ops[j]
    return bool(op.operand_types) and op.operand_types[0].raw != fn.types[v].raw


def _rotate_half_line(out: str, source: str, t: ShapedType) -> str:
    """The ``linalg.generic`` IREE raises a ``rotate_half`` concat to."""
    rank = len(t.shape or ())
    loops = ", ".join(f"d{k}" for k in range(rank))
    parallel = ", ".join(['"parallel"'] * rank)
    index = ", ".join(f"%i{k}" for k in range(rank))
    indices = "\n".join(f"%i{k} = linalg.index {k} : index" for k in range(rank))
    e = t.element
    return (
        f"%rotate_init = tensor.empty() : {t.raw}\n"
        f"{out} = linalg.generic {{indexing_maps = [affine_map<({loops}) -> "
        f"({loops})>], iterator_types = [{parallel}]}} outs(%rotate_init : "
        f"{t.raw}) {{\n^bb0(%out: {e}):\n{indices}\n"
        f"%x = tensor.extract {source}[{index}] : {t.raw}\n"
        f"%n = arith.negf %x : {e}\n"
        f"%c = arith.cmpi ult, %i{rank - 1}, %i{rank - 1} : index\n"
        f"%s = arith.select %c, %n, %x : {e}\nlinalg.yield %s : {e}\n}} -> {t.raw}"
    )


def _batch_broadcast_source(
    op: Op, body: list[Op], aliases: dict[str, str]
) -> Op | None:
    """``op`` if it broadcasts a 2-D value along dim 0 only, else None
    (``getOriginalBroadcastWeight`` in IREE's ``ConvertBatchMatmulToMatmul.cpp``:
    a ``linalg.broadcast`` of dimensions [0], or its generic form)."""
    if (
        len(op.operands) != 2
        or len(op.operand_types) != 2
        or len(op.operand_types[0].shape or ()) != 2
    ):
        return None
    if op.name == "linalg.broadcast":
        m = _DIMS_RE.search(op.text)
        return op if m is not None and _ints(m.group(1)) == [0] else None
    if op.name != "linalg.generic" or not _is_pure_view(op, body):
        return None
    maps = _parse_maps(_attr(op, ("indexing_maps",)) or "", aliases) or []
    if (
        len(maps) == 2
        and set(_iterators(op)) == {"parallel"}
        and maps[1][1] == maps[1][0]
        and maps[0][1] == maps[0][0][1:]
    ):
        return op
    return None


def _collapsed_batch_broadcast(
    collapse: Op, op: Op, body: list[Op], aliases: dict[str, str]
) -> Op | None:
    """``op`` if it broadcasts a weight of unit dims but its last two along
    one of the dims that ``collapse`` folds into the batch dim (a grouped-query
    attention's values, repeated over the heads), else None: IREE folds the
    unit dims away before ``ConvertBatchMatmulToMatmul`` and meets a
    broadcast of a 2-D weight along dim 0."""
    m = _REASSOCIATION_RE.search(collapse.text)
    out = op.result_types[0].shape if op.result_types else None
    if (
        m is None
        or op.name != "linalg.generic"
        or len(op.operands) != 2
        or len(op.operand_types) != 2
        or not out
        or not _is_pure_view(op, body)
        or set(_iterators(op)) != {"parallel"}
    ):
        return None
    rank = len(out)
    groups = [_ints(g) for g in _GROUP_RE.findall(m.group(1))]
    if groups != [list(range(rank - 2)), [rank - 2], [rank - 1]]:
        return None
    maps = _parse_maps(_attr(op, ("indexing_maps",)) or "", aliases) or []
    if len(maps) != 2 or maps[1][1] != maps[1][0]:
        return None
    dims = maps[1][0]
    missing = [d for d in dims if d not in maps[0][1]]
    if len(missing) != 1 or maps[0][1] != [d for d in dims if d != missing[0]]:
        return None
    batch = dims.index(missing[0])
    if batch >= rank - 2 or any(out[d] != 1 for d in range(rank - 2) if d != batch):
        return None
    return op


def _edited(
    lines: list[str],
    edits: dict[int, list[str]],
    dropped: frozenset | set = frozenset(),
) -> tuple[str, list[int]]:
    """The text of ``lines`` with line ``k`` (0-based) replaced by ``edits[k]``
    and the ``dropped`` ones left out, and per new line its 1-based line in
    the old text."""
    out: list[str] = []
    origin: list[int] = []
    for number, line in enumerate(lines):
        if number in dropped:
            continue
        replaced = edits.get(number, [line])
        out += replaced
        origin += [number + 1] * len(replaced)
    return "\n".join(out), origin


def _batch_matmul_to_matmul(
    text: str, module: ParsedModule
) -> tuple[str, list[int]] | None:
    """Rewrite each ``linalg.batch_matmul`` whose right operand broadcasts a 2-D
    weight along the batch into a ``linalg.matmul`` over batch x rows.

    IREE's global optimization does so before dispatch formation
    (``ConvertBatchMatmulToMatmul.cpp``): the left operand is collapsed, the
    result expanded back, a fill of an empty init is re-made at the collapsed
    shape (canonicalization folds the collapse into it), and the broadcast,
    read by nothing else, goes. Such a matmul is then the same executable as
    a ``torch.nn.Linear`` on the collapsed input. Returns the new text and, per
    new line, its line in ``text`` (None if nothing matched).
    """
    ops = module.ops
    defs = {_value(r): k for k, op in enumerate(ops) for r in op.results}
    lines = text.splitlines()
    edits: dict[int, list[str]] = {}  # 0-based line -> replacement lines
    dropped: set[int] = set()
    for op in ops:
        types = op.operand_types
        if (
            op.name != "linalg.batch_matmul"
            or "indexing_maps" in op.attributes
            or len(op.operands) != 3
            or len(types) != 3
            or any(len(t.shape or ()) != 3 for t in types)
            or None in (*types[0].shape, *types[2].shape)
            or not lines[op.line - 1].rstrip().endswith(f"-> {types[2].raw}")
        ):
            continue
        lhs, rhs, init = (_value(v) for v in op.operands)
        j = defs.get(rhs)
        if j is None:
            continue
        collapse = None
        if ops[j].name == "tensor.collapse_shape":
            collapse, j = ops[j], defs.get(_value(ops[j].operands[0]))
            if j is None:
                continue
        body = [b for b in ops[j + 1 : j + 4] if b.depth > ops[j].depth]
        if collapse is None:
            broadcast = _batch_broadcast_source(ops[j], body, module.attribute_aliases)
        else:
            broadcast = _collapsed_batch_broadcast(
                collapse, ops[j], body, module.attribute_aliases
            )
        if broadcast is None:
            continue
        (b, m, k), (_, _, n), e = types[0].shape, types[2].shape, types[2].element
        flat_lhs = f"tensor<{b * m}x{k}x{types[0].element}>"
        flat_out = f"tensor<{b * m}x{n}x{e}>"
        tag = f"%bmm{op.line}"
        new = [
            f"{tag}_lhs = tensor.collapse_shape {lhs} [[0, 1], [2]] : "
            f"{types[0].raw} into {flat_lhs}"
        ]
        f = defs.get(init)
        fill = ops[f] if f is not None else None
        if (
            fill is not None
            and fill.name == "linalg.fill"
            and len(fill.operands) == 2
            and ops[defs.get(_value(fill.operands[1]), f)].name == "tensor.empty"
        ):
            new += [
                f"{tag}_empty = tensor.empty() : {flat_out}",
                f"{tag}_init = linalg.fill ins({fill.operands[0]} : {e}) "
                f"outs({tag}_empty : {flat_out}) -> {flat_out}",
            ]
        else:
            new.append(
                f"{tag}_init = tensor.collapse_shape {init} [[0, 1], [2]] : "
                f"{types[2].raw} into {flat_out}"
            )
        weight, weight_type = (
            _value(broadcast.operands[0]),
            broadcast.operand_types[0].raw,
        )
        if collapse is not None:  # the unit dims of the weight collapse away
            rank = len(broadcast.operand_types[0].shape)
            groups = ", ".join(str(d) for d in range(rank - 1))
            weight_type = f"tensor<{k}x{n}x{broadcast.operand_types[0].element}>"
            src = defs.get(weight)
            if src is not None and ops[src].name == "tensor.extract_slice":
                # a slice of the weight drops the unit dims itself (a
                # rank-reducing slice: no copy, the matmul loads it)
                head = lines[ops[src].line - 1].split("=", 1)[1].rsplit(" to ", 1)[0]
                new.append(f"{tag}_rhs ={head} to {weight_type}")
            else:
                new.append(
                    f"{tag}_rhs = tensor.collapse_shape {weight} [[{groups}], "
                    f"[{rank - 1}]] : {broadcast.operand_types[0].raw} into "
                    f"{weight_type}"
                )
            weight = f"{tag}_rhs"
        new += [
            f"{tag}_mm = linalg.matmul ins({tag}_lhs, {weight} "
            f": {flat_lhs}, {weight_type}) "
            f"outs({tag}_init : {flat_out}) -> {flat_out}",
            f"{_value(op.results[0])} = tensor.expand_shape {tag}_mm [[0, 1], [2]] "
            f"output_shape [{b}, {m}, {n}] : {flat_out} into {types[2].raw}",
        ]
        line = lines[op.line - 1]
        indent = line[: len(line) - len(line.lstrip())]
        edits[op.line - 1] = [indent + x for x in new]
        if sum(_value(v) == rhs for o in ops for v in o.operands) != 1:
            continue  # the broadcast (and its collapse) stay
        if collapse is not None:
            dropped.add(collapse.line - 1)
            wide = _value(collapse.operands[0])
            if sum(_value(v) == wide for o in ops for v in o.operands) != 1:
                continue
        end = j + 1 + len(body)  # the broadcast is dead
        last = ops[end].line - 1 if end < len(ops) else broadcast.line
        dropped.update(range(broadcast.line - 1, last))
    return _edited(lines, edits, dropped) if edits else None


def _detach_inits(text: str, module: ParsedModule) -> tuple[str, list[int]] | None:
    """Detach the init of each named contraction / convolution that a linalg
    op other than a fill, or a non-splat constant, computes (torch-mlir's
    convolution starts from its broadcast bias).

    IREE's global optimization does so before dispatch formation
    (``DetachElementwiseFromNamedOps``): the op accumulates into a zero fill
    and an elementwise ``add`` of the old init follows it, under its result's
    name. The bias then fuses into the add (and the add into the root's
    dispatch, or into the next one where its consumer has more non-unit
    loops: a squeeze-and-excitation block's scale), so a dispatch binds the
    bias itself, not its broadcast. Returns the new text and, per new line,
    its line in ``text`` (None if nothing matched).
    """
    ops = module.ops
    defs = {_value(r): op for op in ops for r in op.results}
    lines = text.splitlines()
    edits: dict[int, list[str]] = {}  # 0-based line -> replacement lines
    for op in ops:
        types = op.operand_types
        if (
            not op.name.startswith(_CAST_FOLDING)
            or len(op.operands) < 3
            or len(types) != len(op.operands)
            or len(op.results) != 1
            or types[-1].shape is None
            or None in types[-1].shape
            or not types[-1].element
            or not types[-1].element.startswith(("f", "bf", "i"))
        ):
            continue
        init, t = _value(op.operands[-1]), types[-1]
        line = lines[op.line - 1]
        outs = f"outs({init} : {t.raw})"
        if line.count(outs) != 1 or not line.rstrip().endswith(f"-> {t.raw}"):
            continue  # an op over several lines, or one we do not read
        source = defs.get(init)
        if source is None:
            continue  # a function argument
        if source.name == "arith.constant":
            if _SPLAT_RE.search(source.text):
                continue  # a splat is filled (DetachSplatConstantOutsOperands)
        elif not source.name.startswith("linalg.") or source.name == "linalg.fill":
            continue
        tag, e, rank = f"%detach{op.line}", t.element, len(t.shape)
        result = _value(op.results[0])
        is_float = not e.startswith("i")
        zero = "0.000000e+00" if is_float else "0"
        loops = ", ".join(f"d{k}" for k in range(rank))
        same = f"affine_map<({loops}) -> ({loops})>"
        parallel = ", ".join(['"parallel"'] * rank)
        add = "arith.addf" if is_float else "arith.addi"
        indent = line[: len(line) - len(line.lstrip())]
        head = line.lstrip()
        head = head[head.index("=") + 1 :].replace(outs, f"outs({tag}_fill : {t.raw})")
        edits[op.line - 1] = [
            indent + x
            for x in (
                f"{tag}_empty = tensor.empty() : {t.raw}",
                f"{tag}_zero = arith.constant {zero} : {e}",
                f"{tag}_fill = linalg.fill ins({tag}_zero : {e}) "
                f"outs({tag}_empty : {t.raw}) -> {t.raw}",
                f"{tag}_acc ={head}",
                f"{result} = linalg.generic {{indexing_maps = [{same}, {same}, "
                f"{same}], iterator_types = [{parallel}]}} ins({tag}_acc, {init} "
                f": {t.raw}, {t.raw}) outs({tag}_fill : {t.raw}) {{",
                f"^bb0(%in: {e}, %in_0: {e}, %out: {e}):",
                f"  {tag}_sum = {add} %in, %in_0 : {e}",
                f"  linalg.yield {tag}_sum : {e}",
                f"}} -> {t.raw}",
            )
        ]
    return _edited(lines, edits) if edits else None


def _drop_identity_casts(span: str) -> str:
    """Drop ``arith.truncf`` / ``extf`` that cast a type to itself (f64 demoted
    to f32), their uses reading the source, as IREE's folding leaves them."""
    for m in reversed(list(_IDENTITY_CAST_RE.finditer(span))):
        result, source = m.group(1), m.group(2)
        head = span[: m.start()].rstrip("\n")
        tail = re.sub(re.escape(result) + r"(?![\w$.-])", source, span[m.end() :])
        span = head + tail if head else tail.lstrip("\n")
    return span


def _wrap(name: str, body: list[str], aliases: dict[str, str]) -> str:
    head = [f"{alias} = {value}" for alias, value in aliases.items()]
    head.append(_PIPELINE_LAYOUT)
    return "\n".join(
        [*head, *_wrapper(name), f"func.func @{name}() {{", *body, *_CLOSERS]
    )


_PIPELINE_LAYOUT = (
    "#pipeline_layout = #hal.pipeline.layout<bindings = "
    "[#hal.pipeline.binding<storage_buffer, ReadOnly>, "
    "#hal.pipeline.binding<storage_buffer, Indirect>], flags = Indirect>"
)
# the function's end and the wrapper's regions'
_CLOSERS = ("}", "}", "}", "}")
_FUNC_LINE_RE = re.compile(r"func\.func @([\w$.-]+)\(\) \{")


def _wrapper(name: str) -> list[str]:
    """The executable's lines between the aliases and the function ``name``."""
    executable = "_".join(name.split("_")[:3])
    return [
        f"hal.executable public @{executable} {{",
        f"hal.executable.variant public @embedded_elf_x86_64 target({_TARGET}) {{",
        f"hal.executable.export public @{name} ordinal(0) layout(#pipeline_layout) "
        "count(%arg0: !hal.device) -> (index, index, index) {",
        "%x, %y, %z = iree_tensor_ext.dispatch.workgroup_count_from_slice()",
        "hal.return %x, %y, %z : index, index, index",
        "}",
        "builtin.module {",
    ]


@functools.lru_cache(maxsize=1024)  # export names repeat from module to module
def _wrapper_module(name: str) -> ParsedModule:
    """The wrapper of the function ``name`` read alone (its regions closed)."""
    return parse("\n".join([*_wrapper(name), *_CLOSERS[1:]]))


def read_region(text: str) -> ParsedModule:
    """``parse(text)`` of a region's text, its wrapper not read again.

    A region's text (:attr:`DispatchRegion.text`) is the function IREE would
    compile in a fixed executable wrapper: the wrapper's ops, half the
    reading of a median module's regions, differ from region to region only
    in the export's name. They are read once per name; the aliases and the
    function are read, and the ops placed where the whole text has them (the
    function 3 regions deep, 7 lines down). The records are those of
    ``parse(text)``, equal field for field; a text of another shape (not
    written by the partitioner) is parsed whole.

    Parameters
    ----------
    text : str
        A region's text.

    Returns
    -------
    ParsedModule

    Raises
    ------
    MLIRSyntaxError
        If the text cannot be read.
    """
    lines = text.split("\n")
    n = 0
    while n < len(lines) and lines[n].startswith("#"):
        n += 1
    at = n + _WRAPPER_LINES
    m = _FUNC_LINE_RE.fullmatch(lines[at]) if at < len(lines) else None
    if (
        m is None
        or tuple(lines[-len(_CLOSERS) :]) != _CLOSERS
        or lines[n:at] != _wrapper(m.group(1))
    ):
        return parse(text)
    try:
        aliases = _aliases_module("\n".join(lines[:n]))
        function = parse("\n".join(lines[at : 1 - len(_CLOSERS)]))
    except MLIRSyntaxError:  # the whole text's error, where it has it
        return parse(text)
    if aliases.ops or aliases.type_aliases:  # not the aliases _wrap writes
        return parse(text)
    wrapper = _wrapper_module(m.group(1))
    ops = []
    for op in wrapper.ops:  # copies (dataclasses.replace takes 4x as long)
        ops.append(Op(*_OP_FIELDS(op)))
        ops[-1].line += n
        ops[-1].attributes = dict(op.attributes)
    for op in function.ops:
        op.line += at
        op.depth += _WRAPPER_DEPTH
    return ParsedModule(
        ops=ops + function.ops,
        functions=wrapper.functions + function.functions,
        num_regions=wrapper.num_regions + function.num_regions,
        # the block of builtin.module, which the wrapper read alone leaves empty
        num_blocks=wrapper.num_blocks + function.num_blocks + 1,
        max_depth=max(wrapper.max_depth, function.max_depth + _WRAPPER_DEPTH),
        num_splits=function.num_splits,
        attribute_aliases=dict(aliases.attribute_aliases),
        type_aliases={},
    )


@functools.lru_cache(maxsize=64)  # the same for all the regions of a module
def _aliases_module(text: str) -> ParsedModule:
    return parse(text)


_WRAPPER_LINES = len(_wrapper("main_dispatch_0"))
_OP_FIELDS = operator.attrgetter(*(f.name for f in fields(Op)))
_WRAPPER_DEPTH = 3  # executable, variant, builtin.module


def _canonical(lines: list[str]) -> str:
    """The lines with their SSA names numbered in order of appearance."""
    parts = _SSA_SPLIT_RE.split("\n".join(lines))
    names: dict[str, str] = {}
    for k in range(1, len(parts), 2):
        new = names.get(parts[k])
        if new is None:
            new = names[parts[k]] = f"%v{len(names)}"
        parts[k] = new
    return "".join(parts)


def _through_reshapes(fn: _Function, v: str, inner: set[str]) -> str:
    """The value that ``v`` reshapes, through the reshapes named ``inner``."""
    while v in inner and fn.uses[fn.defs[v]]:
        v = fn.uses[fn.defs[v]][0]
    return v


def _collapsed(
    fn: _Function, op: Op, span: str, aliases: dict[str, str], inner: set[str]
) -> str:
    """An all-parallel ``linalg.generic`` that permutes nothing, as IREE
    collapses it inside a dispatch (``CollapseDimensions``): its text for
    telling executables apart, each operand by its elements read, so that an
    op before or after a reshape inside the region (a bias added to the
    matmul's 2-D result or to its 3-D expansion) is one op."""
    if op.name != "linalg.generic":
        return span
    maps = _parse_maps(_attr(op, ("indexing_maps",)) or "", aliases)
    sizes = _loop_sizes(op, aliases)
    if not maps or sizes is None or None in sizes.values():
        return span
    loops = [d for d, size in sizes.items() if size != 1]
    reads = [[r for r in results if r in loops] for _, results in maps]
    if "reduction" in _iterators(op):
        names = [_through_reshapes(fn, _value(v), inner) for v in op.operands]
        return _unit_loops_dropped(op, span, maps[0][0], loops, reads, names)
    if any(r != sorted(r, key=loops.index) for r in reads):
        return span  # a transpose: its dims stay apart
    # an init that is an empty tensor only gives the shape
    read = [
        (_through_reshapes(fn, _value(v), inner), r, t)
        for v, r, t in zip(op.operands, reads, op.operand_types, strict=False)
        if fn.defs.get(_value(v)) is None
        or fn.ops[fn.defs[_value(v)]].name != "tensor.empty"
    ]
    head = " ".join(
        f"{v} {math.prod(sizes[d] for d in r)}:{t.element}" for v, r, t in read
    )
    body = span.split("\n")
    result = span.split("=", 1)[0].strip()
    return "\n".join([f"{result} = collapsed generic {head}", *body[1:-1]])


def _unit_loops_dropped(
    op: Op,
    span: str,
    dims: list[str],
    loops: list[str],
    reads: list[list[str]],
    names: list[str],
) -> str:
    """A reduction's text for telling executables apart, its unit loops
    dropped (``FoldUnitExtentDims``): a layer norm's sum over 1x32x64 rows
    and over 32x64 ones are one executable."""
    iterators = dict(zip(dims, _iterators(op), strict=False))
    kept = [iterators.get(d, "?") for d in loops]
    head = " ".join(
        f"{v} ({','.join(str(loops.index(r)) for r in rs)})"
        for v, rs in zip(names, reads, strict=False)
    )
    body = span.split("\n")
    result = span.split("=", 1)[0].strip()
    return "\n".join(
        [f"{result} = reduce generic {head} [{','.join(kept)}]", *body[1:-1]]
    )


def _key_lines(
    fn: _Function,
    body: list[str],
    reshapes: list[int],
    at: dict[int, int],
    aliases: dict[str, str],
) -> list[str]:
    """A region's lines as they tell executables apart: without the reshapes
    between its ops, its elementwise ops as IREE collapses them
    (:func:`_collapsed`), and its empty tensors by their sizes only."""
    inner = {body[k].split("=", 1)[0].strip() for k in reshapes}
    lines = [
        _collapsed(fn, fn.ops[at[k]], b, aliases, inner) if k in at else b
        for k, b in enumerate(body)
        if k not in reshapes
    ]
    # the region's dims collapse (CollapseDimensions) unless a transpose lies
    # between its ops: its bindings then hold the collapsed shapes
    flat = all(
        body[k].split("=", 1)[-1].lstrip().startswith(_RESHAPE_TEXT) for k in reshapes
    )
    return [
        _TENSOR_RE.sub(_flat, b)
        if _EMPTY.match(b) or (flat and _BINDING_RE.search(b))
        else b
        for b in lines
    ]


def _flat(m: re.Match) -> str:
    """``tensor<2x27x256xf32>`` -> ``tensor<13824xf32>`` (an empty tensor's
    shape is the collapsed op's business)."""
    *dims, element = m.group(1).split("x")
    if not all(d.isdigit() for d in dims):
        return m.group(0)
    return f"tensor<{math.prod(int(d) for d in dims)}x{element}>"


def _unit_free(key: str) -> str:
    """A region's text with its unit dims left out: IREE drops them before
    forming dispatches (``FoldUnitExtentDims``), so regions that differ in
    them only (a unit-dim transpose between them) are one executable."""
    key = _ACCESS_RE.sub("", key)
    return _TENSOR_RE.sub(
        lambda m: (
            "tensor<" + "x".join(d for d in m.group(1).split("x") if d != "1") + ">"
        ),
        key,
    )


def _producers_first(grouping: _Grouping, found: list[tuple]) -> list[tuple]:
    """The regions ``found`` (first op, kind, body, ops) in IREE's order:
    by their first op, but each after the regions it reads from. IREE moves
    the ops a fused consumer reads above its dispatch (a SwiGLU's ``up``
    matmul is dispatched before the ``gate`` matmul whose dispatch multiplies
    them)."""
    fn = grouping.fn
    holds: dict[int, list[int]] = {}  # op -> the regions computing it
    for k, (_, _, _, ms) in enumerate(found):
        for m in ms:
            holds.setdefault(m, []).append(k)
    first = sorted(range(len(found)), key=lambda k: found[k][0])
    rank = {k: r for r, k in enumerate(first)}
    reads: list[list[int]] = []
    for k, (_, kind, _, ms) in enumerate(found):
        sources = {
            r
            for m in ms
            for v in fn.uses[m]
            for r in holds.get(grouping.producer(v), ())
            if r != k and found[r][1] != "initializer"
        }
        # initializers keep their order (hoisting's, not the program's)
        reads.append([] if kind == "initializer" else sorted(sources, key=rank.get))
    order: list[int] = []
    placed: set[int] = set()
    for k in first:  # depth first, without recursion
        if k in placed:
            continue
        stack = [(k, iter(reads[k]))]
        placed.add(k)
        while stack:
            top, pending = stack[-1]
            nxt = next((r for r in pending if r not in placed), None)
            if nxt is None:
                stack.pop()
                order.append(top)
            else:
                placed.add(nxt)
                stack.append((nxt, iter(reads[nxt])))
    return [found[k] for k in order]


def partition_dispatches(text: str) -> list[DispatchRegion]:
    """Predict the dispatches IREE forms for a linalg-on-tensors module.

    Parameters
    ----------
    text : str
        MLIR text of the module (linalg on tensors, as ``torch-mlir`` prints
        it).

    Returns
    -------
    list of DispatchRegion
        One per distinct dispatch (identical regions are one executable with
        ``calls`` > 1), in program order of their first instance.

    Raises
    ------
    MLIRSyntaxError
        If the text cannot be read.

    Examples
    --------
    >>> regions = partition_dispatches('''
    ... func.func @main(%a: tensor<4x8xf32>, %b: tensor<8x2xf32>) -> tensor<4x2xf32> {
    ...   %cst = arith.constant 0.0 : f32
    ...   %e = tensor.empty() : tensor<4x2xf32>
    ...   %f = linalg.fill ins(%cst : f32) outs(%e : tensor<4x2xf32>) -> tensor<4x2xf32>
    ...   %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x2xf32>)
    ...          outs(%f : tensor<4x2xf32>) -> tensor<4x2xf32>
    ...   return %m : tensor<4x2xf32>
    ... }''')
    >>> [(r.kind, r.calls) for r in regions]
    [('matmul', 1)]
    """
    if not isinstance(text, str):
        raise TypeError(
            f"partition_dispatches takes MLIR text, got {type(text).__name__}"
        )
    module = parse(text)
    origin = None
    for rewrite, word in (
        (_batch_matmul_to_matmul, "linalg.batch_matmul"),
        (_detach_inits, "outs("),
    ):
        rewritten = rewrite(text, module) if word in text else None
        if rewritten is not None:
            text, lines = rewritten
            origin = lines if origin is None else [origin[k - 1] for k in lines]
            module = parse(text)
    text_lines = text.splitlines()
    regions: dict[str, list] = {}
    reader = _RegionReader(text)
    for fn in _functions(module):
        spans = _spans(fn, text_lines)
        reader.learn(fn.ops, spans)
        if "f64" in text:  # torch-mlir's output has no other duplicates
            _merge_duplicates(fn, spans)
            # the regions as IREE writes them, f64 demoted to f32
            spans = [_drop_identity_casts(_F64_RE.sub("f32", span)) for span in spans]
        aliases = module.attribute_aliases
        _merge_unit_dim_twins(fn, spans, aliases)
        if "tensor.concat" in text:
            _raise_rotate_half(fn, spans)
        members, kind_of, copies, grouping = _form_groups(fn, aliases)
        found = [
            (
                min(ms),
                kind_of[g],
                _region_body(grouping, sorted(ms), spans),
                sorted(ms),
            )
            for g, ms in members.items()
        ]
        found += [
            (
                i,
                "memcpy",
                (
                    _copy_body(fn, i, v, spans, copies[:k].count((i, v))),
                    [],
                    {},
                    {},
                    False,
                ),
                [i],
            )
            for k, (i, v) in enumerate(copies)
        ]
        for _, kind, (body, reshapes, at, swapped, extended), ms in _producers_first(
            grouping, found
        ):
            if "f64" in text:  # bindings of f64 values
                body = [_F64_RE.sub("f32", line) for line in body]
            key = _canonical(_key_lines(fn, body, reshapes, at, aliases))
            if kind != "memcpy":  # a copy's offsets tell its executables apart
                key = _unit_free(key)
            if key in regions:
                regions[key][1] += 1
            else:
                lines = [fn.ops[m].line for m in ms]
                if origin is not None:
                    lines = sorted({origin[line - 1] for line in lines})
                if extended:  # the text clones the extends it loaded
                    body, _, _, swapped, _ = _region_body(grouping, ms, spans, True)
                    if "f64" in text:
                        body = [_F64_RE.sub("f32", line) for line in body]
                regions[key] = [kind, 1, body, tuple(lines), swapped]
    out = []
    # every region's reader first: the reader parses their new lines at once
    reads = [reader.reader(body) for _, _, body, _, _ in regions.values()]
    for ordinal, (kind, calls, body, lines, swapped) in enumerate(regions.values()):
        name = f"main_dispatch_{ordinal}_{kind}"
        wrapped = _wrap(name, body, module.attribute_aliases)
        text_out = _dispatch_form(wrapped, swapped, reads[ordinal])
        out.append(DispatchRegion(name, kind, text_out, calls, lines))
    return out
