"""Features of IREE codegen decisions: tile sizes, workgroup shape, pipeline.

:class:`ConfigFeatures` reads the root op's ``lowering_config`` and the
``translation_info`` of a configured executable
(:func:`~mlircost_classic.mlir.read_config`) into named columns: per tiling
level the number of tiled loops, the tile volume and the largest tile; the
workgroup, subgroup and MMA shape; the pipeline; and derived figures that say
how much state one thread holds against what the hardware offers.

Derived columns
    ``threads``: product of the workgroup size. ``tile per thread``: elements
    of the output tile one thread computes (thread tiles; for MMA configs the
    subgroup's output tile over the subgroup size; on CPU the vector tile).
    ``reduction tile``: elements of the reduction loops per step.
    ``accumulator bytes per thread``: tile per thread x the widest element.
    ``operand bytes per thread``: per reduction step, the reduction tile times
    the per-thread extents of the two operands (sum of the per-thread tiles of
    the parallel loops), x the widest element. ``workgroup tile bytes``: the
    workgroup's output tile plus its operand slices for one reduction step.
    Ratios put these against the target: ``... / register file`` (NVIDIA 255
    registers x 4 bytes per thread, AMD CDNA 512 VGPRs x 4 bytes per lane;
    AVX2: 16 x 32-byte vector registers), ``workgroup tile bytes / shared
    memory`` (``max_workgroup_memory_bytes`` of the text's target; CPU: a
    32 KiB L1 data cache). ``register budget bytes``: the registers one
    thread may hold, x 4 bytes. NVIDIA: IREE gives the kernel ``.maxntid`` =
    the workgroup size, so ptxas fits a workgroup in the SM's 65,536
    registers (at most 255 a thread, allocated 8 at a time for each warp of
    32); AMD CDNA: 512 VGPRs a lane shared by the waves (of 64) each of the
    4 SIMDs holds; CPU: the 16 AVX2 registers.

Columns of the root op's loops
    When the root op gives ``indexing_maps`` and static shapes (every
    ``linalg.generic``), its loop bounds are read and the tiles are set
    against them (a tile larger than its loop counts as the loop):
    ``parallel iterations`` / ``reduction iterations`` (products of the
    bounds); ``workgroups`` (product of ``ceil(bound / tile)`` over the tiled
    parallel loops) and ``workgroup padding`` (the tiled volume over the
    iterations, 1 when the tiles divide the loops); ``workgroup tile in
    bounds``, ``tile per thread in bounds`` and ``reduction tile in bounds``;
    ``thread iterations`` (the workgroup tile over threads x the tile per
    thread: > 1 when each thread loops over several tiles); ``reduction
    steps``; ``operand elements per thread`` / ``per workgroup`` (summed
    over the root op's inputs: the product of the thread, workgroup and
    reduction tiles along the loops each input is indexed by) and
    ``largest operand elements per thread``; ``input bits`` / ``output
    bits`` (widest element of the root op's inputs / outputs). Without them
    these columns are 0.

Columns of shared memory and register limits
    Also from the root op's loops (0 without them): ``promoted operand
    bytes``, the workgroup's slices of one reduction step of the inputs that
    ``promote_operands`` stages in shared memory (tiles in bounds), also over
    ``max_workgroup_memory_bytes``, and ``padded promoted operand bytes``
    with the ``padding`` level's tile sizes where it gives them (0 without
    that level); ``largest thread extent`` and ``thread loops over 1`` (the
    per-thread extents of the parallel loops); ``reduction tile / reduction
    iterations``; ``accumulator registers`` and ``operand registers`` (the
    thread's output tile and its operand elements of one reduction step, in
    32-bit registers: two f16 a register) and ``estimated registers /
    register limit``, their sum over 255 (NVIDIA), 512 (AMD CDNA VGPRs) or
    128 (AVX2: 16 registers of 8 lanes).

Columns of per-thread private storage
    What IREE's GPU TileAndFuse pipeline does with a thread's tiles decides
    whether they stay in registers or become private arrays in local memory
    (ptxas stack frame and spills). Tiles that do not divide their loops
    leave dynamically sized tiles that are vectorized with masks and
    bufferized as statically bounded private allocations:
    ``reduction padding`` (the reduction loops' stepped volume over their
    iterations), ``thread padding`` (the thread tiles against the workgroup
    tile) and ``edge thread padding`` (against the remainder a last, partial
    workgroup holds), each 1 when the tiles divide. Ops whose thread tile
    has more than 64 elements are split by ``TileLargeTensors`` into loops
    over slices of a tile that then lives in a private buffer.
    ``private bytes per thread``: the thread's output tile in bytes when
    either happens (tile per thread in bounds > 64, a partial last
    workgroup, or thread or reduction padding > 1), else 0 (a workgroup tile
    larger than its loop is the loop, static). ``live bytes / register budget``: the thread's output tile plus
    its operand elements of one reduction step, in bytes, over the
    ``register budget bytes``.

Columns of a thread's vectors
    For GPU root ops tiled to threads (a ``thread`` level; 0 otherwise), from
    the per-thread extents in bounds. IREE's ``TileLargeTensors`` cuts a
    thread's op into a loop over slices of at most 64 elements of its
    parallel loops: dynamically sized loops (a thread tile that does not
    divide its workgroup tile, a workgroup tile that does not divide its
    loop) go to 1, then, while more than 64 elements are left, each parallel
    loop but the op's last loop, outermost first; the last parallel loop then
    takes the largest factor of what is left up to 64 (a thread tile of 1 x
    128 of a matmul, whose last loop is the reduction, becomes 128 scalar
    slices; 4 x 64 becomes 4 slices of 64). ``large tensor slices`` (the
    loop's trips, 1 when nothing is cut) and ``large tensor slice elements``;
    ``sliced accumulator bytes``: the thread's output tile in bytes when a
    root op with reduction loops is cut, so that its accumulator is carried
    across the reduction steps in a private buffer, else 0. ``thread tile x
    reduction tile``: the multiply-adds of one reduction step unrolled in a
    thread. ``non-power-of-two thread extents`` / ``reduction steps``: loops
    whose thread extent / reduction step is above 1 and not a power of two.
    ``innermost thread extent``: the thread extent of the last parallel loop.
    In the bundled sm_80 TileAndFuse matmuls with a fused consumer, thread
    tiles over 64 elements have a ptxas stack frame or spills in 90% of the
    candidates (many at 32 registers), those of 16 or fewer in 15-22%.

Columns of the fused consumers
    The all-parallel ``linalg.generic`` ops after the root op that read its
    result (directly or through another such op) are tiled and fused into
    the root op's thread loops. ``fused consumers``: their number.
    ``consumers writing into the root result``: how many of them take the
    root op's result (or a consumer's) as the first input with the output's
    type and indexing map. IREE's ``ConvertToDestinationPassingStyle``
    (``AdaptLinalgInputOperandToOutputOperand``) picks the output buffer of
    an all-parallel op whose init is a ``tensor.empty`` among its inputs of
    the output's type and indexing map, in operand order (skipping read-only
    ones and, in some versions, a vectorizable producer's result), so the
    operand order can change what the consumer writes into. In the bundled
    variants, ``(mm + bias) + residual`` after a 32x64x64 matmul, written
    with the matmul first or with the residual first, compiles under one
    config to 37 or 84 registers (sm_80), though the arithmetic is the same.
    ``fused consumer ops`` / ``fused consumer math ops``: the ops of these
    consumers' bodies, all and those of the ``math`` dialect (``erf``,
    ``tanh``, ``exp``, ``rsqrt`` ...: an instruction sequence each on the GPU,
    not one instruction); ``... per thread``: those times the output elements
    of a thread (``tile per thread in bounds``), as each thread computes the
    consumers on its own tile after the reduction. Measured (sm_80, ``ptxas
    -v``): the 32x256x64 f32 matmul + erf GELU of hf_falcon uses 155, 197 and
    153 registers with thread tiles 1x16, 2x16 and 1x16 (reduction 64), and
    101, 127 and 89 with the ``math.erf`` replaced by an ``arith.mulf``; 40
    either way with a 1x4 tile; 32 registers and 42,312 spill bytes with a
    1x64 tile, 255 and 24 with the ``mulf``.
Columns of the buffer offsets
    ``offsets of unknown low bits``: the bindings whose byte offset is a
    ``util.assume.int`` value with a divisor (the gcd of its assumptions'
    ``udiv``, IREE's ``getUnionedUnsignedDivisor``) above 1 that is not a
    power of two. IREE's LLVMGPU ``ConvertToLLVM`` lowers each such
    assumption to ``llvm.assume(urem(offset, divisor) == 0)``; LLVM keeps a
    power-of-two one as known low zero bits (an ``and``, then ``lshr exact``
    for the element offset); in the optimized IR of the candidate below the
    assumption of 4608 is gone and the element offset's shift is not
    ``exact``, so an offset known to be a multiple of 4608 ends up less known
    than one known to be a multiple of 512. Measured (sm_80, ``ptxas -v``):
    a 32x256x64 f32 matmul candidate of hf_ibert, identical but for these
    offsets to one of hf_deberta_v2, uses 255 registers (3,296 spill bytes)
    with an offset divisor of 4608 and 32 registers (43,820 spill bytes)
    with that divisor changed to 512.

Columns of a root op left unvectorized
    ``root op window maps``: 1 when an indexing map of the root op reads a
    window (a result such as ``d2 * 2 + d5``, a convolution or pooling
    generic), which IREE's ``GenericVectorization`` leaves as a scalar
    ``linalg.generic`` in the GPU TileAndFuse pipeline: the thread's
    accumulator tile is bufferized as a private ``alloca`` that LLVM keeps in
    registers only when it unrolls the scalar loops over it fully. For those
    root ops with thread tiles: ``scalar tile per thread`` (``tile per thread
    in bounds``) and ``scalar iterations per thread`` (that times the
    ``reduction tile in bounds``, the scalar loop nest of one reduction step);
    0 otherwise. Seen in the bundled sm_80 variants: such candidates have a
    ptxas stack frame in 0 of 189 with a 1-element thread tile, 17 of 110
    with 2, 83 of 146 with 4, 71 of 97 with 8 and 82 of 100 with 16 to 64
    elements (the frame is the tile's bytes: 16, 8 and 64 f32 accumulators,
    64, 32 and 256 bytes, in the 4x8x16x16 stride-2 convolution of the
    bundled ``resblock`` dispatch ``e25cb0c8af``; its final LLVM IR holds
    ``alloca [16 x float]`` and the scalar loop nest).

Columns of reduction tiles not cut to their loops
    For GPU root ops with reduction loops tiled to threads (a ``thread``
    level: TileAndFuse thread tiles, VectorDistribute partial reductions; 0
    otherwise), from the ``reduction`` (or ``partial_reduction``) level's
    tile, the loop's bound where it leaves a loop whole, *not* cut to the
    loops (``reduction tile in bounds`` is): ``reduction tile / reduction
    loop`` (> 1: the tile overhangs the loop, padded, masked work), ``reduction
    tile / threads`` (elements of one step for each thread of the workgroup)
    and ``thread reduction extents / reduction tile`` (the threads times the
    ``thread`` level's extents along the reduction loops, 1 where it has
    none, over the tile: 1 when the threads' vectors cover the tile once, < 1
    when each thread loops over it, > 1 when they overhang it). In the
    bundled VectorDistribute candidates, a reduction tile over its loop
    spills or has scratch memory in 118 of 810 (gfx942) and 78 of 737
    (sm_80, spills or a stack frame), one within it in 16 of 873 and 7 of
    1,071: the 32 x 768 f32 reduction of 192 threads of 16 elements uses 512
    VGPRs and spills with a tile of 1,536, 66 VGPRs with 3,072; the
    2,048-element one spills with every tile of 4,096 or more, 10-11 VGPRs
    with 2,048.
"""

from __future__ import annotations

import math
import re

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted

from ..mlir import element_bits, read_config
from ..mlir._iree_config import CodegenConfig, mma_shape, root_op_header, strip_config
from ._base import _check_documents
from ._rules import _read_maps
from ._shape import ShapeFeatures

__all__ = ["CONFIG_LEVELS", "CONFIG_PIPELINES", "ConfigFeatures", "VariantFeaturizer"]

#: Tiling levels that get their own columns (others are ignored).
CONFIG_LEVELS = (
    "workgroup",
    "thread",
    "subgroup",
    "reduction",
    "partial_reduction",
    "padding",
    "tile_sizes_0",
    "distribution",
    "cache_parallel",
    "cache_reduction",
    "vector_common_parallel",
    "vector_reduction",
    "vector_inner_parallel",
)
#: Pipelines with an indicator column; any other sets ``pipeline other``.
CONFIG_PIPELINES = (
    "TileAndFuse",
    "VectorDistribute",
    "WarpReduction",
    "Distribute",
    "DoubleTilingExpert",
    "CPUDefault",
    "Mmt4dTilingExpert",
    "ConvTileAndDecomposeExpert",
    "CPUBufferOpsTileAndVectorize",
)
_DERIVED = (
    "threads",
    "subgroup size",
    "subgroups",
    "mma",
    "mma m",
    "mma n",
    "mma k",
    "tile per thread",
    "reduction tile",
    "element bytes",
    "accumulator bytes per thread",
    "operand bytes per thread",
    "workgroup tile bytes",
    "accumulator bytes / register file",
    "operand bytes / register file",
    "workgroup tile bytes / shared memory",
    "register budget bytes",
    "gpu",
    "config read",
    "promote operands",
    "convert accumulator",
)
_LOOPS = (
    "root op loops",
    "root op reduction loops",
    "parallel iterations",
    "reduction iterations",
    "workgroups",
    "workgroup padding",
    "workgroup tile in bounds",
    "tile per thread in bounds",
    "thread iterations",
    "reduction tile in bounds",
    "reduction steps",
    "operand elements per thread",
    "largest operand elements per thread",
    "operand elements per workgroup",
    "input bits",
    "output bits",
    "reduction padding",
    "thread padding",
    "edge thread padding",
    "private bytes per thread",
    "live bytes / register budget",
)
_LIMITS = (
    "promoted operand bytes",
    "promoted operand bytes / shared memory",
    "padded promoted operand bytes",
    "largest thread extent",
    "thread loops over 1",
    "reduction tile / reduction iterations",
    "accumulator registers",
    "operand registers",
    "estimated registers / register limit",
)
_VECTORS = (
    "large tensor slices",
    "large tensor slice elements",
    "sliced accumulator bytes",
    "thread tile x reduction tile",
    "non-power-of-two thread extents",
    "non-power-of-two reduction steps",
    "innermost thread extent",
)
_CONSUMERS = (
    "fused consumers",
    "consumers writing into the root result",
    "fused consumer ops",
    "fused consumer math ops",
    "fused consumer ops per thread",
    "fused consumer math ops per thread",
)
_OFFSETS = ("offsets of unknown low bits",)
_SCALAR = (
    "root op window maps",
    "scalar tile per thread",
    "scalar iterations per thread",
)
_REDUCTION_TILES = (
    "reduction tile / reduction loop",
    "reduction tile / threads",
    "thread reduction extents / reduction tile",
)
_NAMES = [
    *(
        f"{level} {what}"
        for level in CONFIG_LEVELS
        for what in ("loops", "volume", "max")
    ),
    *(f"pipeline {p}" for p in CONFIG_PIPELINES),
    "pipeline other",
    *_DERIVED,
    *_LOOPS,
    *_LIMITS,
    *_VECTORS,
    *_CONSUMERS,
    *_OFFSETS,
    *_SCALAR,
    *_REDUCTION_TILES,
]
_SHARED = re.compile(r"max_workgroup_memory_bytes\s*=\s*(\d+)")
_ELEMENT = re.compile(r"tensor<(?:[\d?]+x)*([a-z]\w*)")
_SHAPED = re.compile(r"(?:tensor|memref)<((?:[\d?]+x)*)([a-z]\w*)")
_ITERATORS = re.compile(r"iterator_types\s*=\s*\[([^\]]*)\]")
_INS_OUTS = re.compile(r"(?:\bins\((.*)\)\s*)?\bouts\((.*)\)")
_GENERIC = re.compile(
    r"^\s*(%[\w]+)(?::\d+)? = linalg\.generic \{indexing_maps = \[(.*?)\], "
    r"iterator_types = \[(.*?)\]\} ins\((.*?)\) outs\((.*?)\)",
    re.MULTILINE,
)
# One type of an ``ins`` / ``outs`` type list (tensor types hold no comma).
_TYPE = re.compile(r"tensor<[^>]*>|[^,\s]+")
# An indexing map result that is one loop or a constant (``d2``, ``0``); any
# other (``d2 * 2 + d5``) reads a window.
_PLAIN_RESULT = re.compile(r"d\d+|\d+")
# The dialect of each op of a region body (``%x = math.erf %in : f32``).
_BODY_OP = re.compile(r"^\s*%[\w:#]+\s*=\s*([a-z_]+)\.\w+", re.MULTILINE)
_ASSUME = re.compile(
    r"(%\w+)(?::\d+)? = util\.assume\.int\s+(.*?)\s*:\s*(?:index|i\d+)\b", re.S
)
# One operand of a ``util.assume.int``: its assumption or list of them.
_ASSUMED = re.compile(r"%[\w#]+\s*(\[[^\]]*\]|<[^>]*>)")
_OFFSET = re.compile(r"hal\.interface\.binding\.subspan\b[^\n]*?\boffset\((%[\w#]+)\)")
_REGISTER_FILE = {"nvidia": 255 * 4, "amd": 512 * 4, "cpu": 16 * 32}
_PROMOTED = re.compile(r"promote_operands\s*=\s*\[([^\]]*)\]")
_L1_BYTES = 32768
# Largest thread tile IREE's TileLargeTensors pass leaves whole (its
# ``max-vector-size`` default).
_MAX_VECTOR = 64


def _product(sizes) -> int:
    return math.prod(v for v in sizes if v > 0)


def _target(text: str, config: CodegenConfig) -> str:
    if config.backend == "cpu":
        return "cpu"
    return "amd" if 'arch = "gfx' in text else "nvidia"


def _per_thread(config: CodegenConfig) -> tuple[float, list[int]]:
    """Output elements per thread and the per-thread extent of each loop."""
    levels = config.levels
    shape = mma_shape(config.mma_kind)
    if shape and "subgroup" in levels:
        # Subgroup tiles count intrinsics: every tiled loop multiplies the
        # subgroup's M x N output tile, not only the first two.
        sub = levels["subgroup"]
        extents = [v * shape[0] for v in sub if v > 0][:1]
        extents += [v * shape[1] for v in sub if v > 0][1:2]
        tile = _product(sub) * shape[0] * shape[1] / max(config.subgroup_size, 1)
        return tile, extents
    for name in ("thread", "vector_common_parallel"):
        if name in levels:
            return float(_product(levels[name])), [v for v in levels[name] if v > 0]
    wg = _workgroup_level(config)
    threads = math.prod(config.workgroup_size) if config.workgroup_size else 1
    return _product(wg) / max(threads, 1), [v for v in wg if v > 0]


def _register_budget(target: str, threads: int) -> float:
    """Bytes of registers one thread of a ``threads``-wide workgroup may use."""
    if target == "nvidia":
        warps = math.ceil(max(threads, 1) / 32)
        return min(255, 65536 // (warps * 32) // 8 * 8) * 4.0
    if target == "amd":
        waves_per_simd = math.ceil(max(threads, 1) / (64 * 4))
        return 512 // waves_per_simd // 8 * 8 * 4.0
    return float(_REGISTER_FILE["cpu"])


def _padding(bound: int, tile: int) -> float:
    """Covered extent over ``bound`` when ``tile`` steps over it (1: divides)."""
    return math.ceil(bound / tile) * tile / bound


def _workgroup_level(config: CodegenConfig) -> list[int]:
    """Workgroup tiles: GPU ``workgroup``, CPU ``distribution`` or the first
    level of the backend-neutral ``tile_sizes``."""
    for name in ("workgroup", "distribution", "tile_sizes_0"):
        if name in config.levels:
            return config.levels[name]
    return []


def _root_loops(text: str):
    """Loop bounds, iterator kinds, loops of each input, and the element bits
    of the inputs and outputs of the root op; None when its text does not
    give them (a named op without ``indexing_maps``, dynamic shapes)."""
    header = root_op_header(text)
    maps, kinds = _read_maps(header), _ITERATORS.search(header)
    io = _INS_OUTS.search(header)
    if not maps or kinds is None or io is None:
        return None
    ins, outs = (
        _SHAPED.findall((part or "").partition(":")[2]) for part in io.groups()
    )
    dims = maps[0][0]
    bounds = dict.fromkeys(dims, 0)
    for (_, results), (shape, _) in zip(maps, ins + outs, strict=False):
        sizes = shape.split("x")[:-1]
        if len(sizes) != len(results):
            return None
        for expr, size in zip(results, sizes, strict=True):
            if expr in bounds and size.isdigit():
                bounds[expr] = bounds[expr] or int(size)
    if not all(bounds.values()):
        return None
    inputs = [[dims.index(r) for r in res if r in dims] for _, res in maps[: len(ins)]]
    bits = [
        max((element_bits(e) or 32 for _, e in side), default=32)
        for side in (ins, outs)
    ]
    # A 0-d op (``iterator_types = []``) has no loops, not one unnamed loop.
    iterators = [k.strip().strip('"') for k in kinds.group(1).split(",")]
    iterators = [k for k in iterators if k]
    if len(iterators) != len(bounds):
        return None
    return list(bounds.values()), iterators, inputs, bits


def _in_bounds(sizes: list[int], i: int, bound: int, untiled: int) -> int:
    """Tile of loop ``i`` (``untiled`` where the level leaves it whole), at
    most its bound."""
    tile = sizes[i] if i < len(sizes) and sizes[i] > 0 else untiled
    return min(tile, bound)


def _loop_columns(
    loops, text: str, config: CodegenConfig, threads: int, budget: float
) -> list[float]:
    """The ``_LOOPS``, ``_LIMITS`` then ``_VECTORS`` columns (zeros when the
    root op's loops are unknown); ``budget``: the register budget bytes of a
    thread; ``loops``: :func:`_root_loops` of ``text``."""
    if loops is None:
        return [0.0] * (len(_LOOPS) + len(_LIMITS) + len(_VECTORS))
    bounds, iterators, inputs, (in_bits, out_bits) = loops
    levels = config.levels
    wg = _workgroup_level(config)
    thread = levels.get("thread") or levels.get("vector_common_parallel")
    reduction = (
        levels.get("reduction")
        or levels.get("partial_reduction")
        or levels.get("vector_reduction")
        or []
    )
    shape = mma_shape(config.mma_kind)
    mma = bool(shape) and "subgroup" in levels and thread is None
    k = shape[2] if shape else 1
    # Per loop: its workgroup tile, its extent in one thread (one subgroup for
    # MMA kernels) and its reduction step, each at most the loop's bound.
    per_wg, per_thread, per_step, mma_dims = [], [], [], 0
    for i, (bound, kind) in enumerate(zip(bounds, iterators, strict=False)):
        if kind == "reduction":
            step = _in_bounds(reduction, i, bound, bound)
            if mma and i < len(reduction) and reduction[i] > 0:
                step = min(reduction[i] * k, bound)
            per_wg.append(step)
            per_thread.append(step)
            per_step.append(step)
            continue
        per_wg.append(_in_bounds(wg, i, bound, bound))
        per_step.append(1)
        if mma:
            sub = levels["subgroup"]
            tiled = i < len(sub) and sub[i] > 0 and mma_dims < 2
            extent = sub[i] * shape[mma_dims] if tiled else 1
            mma_dims += tiled
            per_thread.append(min(extent, bound))
        else:
            per_thread.append(_in_bounds(thread or [], i, bound, 1))
    parallel = [i for i, kind in enumerate(iterators) if kind != "reduction"]
    reduce = [i for i, kind in enumerate(iterators) if kind == "reduction"]
    tiled = [i for i in parallel if i < len(wg) and wg[i] > 0]
    groups = [math.ceil(bounds[i] / wg[i]) for i in tiled]
    wg_tile = math.prod(per_wg[i] for i in parallel)
    lanes = config.subgroup_size if mma and config.subgroup_size else 1
    if thread is None and not mma:
        tile = wg_tile / max(threads, 1)
    else:
        tile = math.prod(per_thread[i] for i in parallel) / lanes
    operands = [math.prod(per_thread[i] for i in dims) / lanes for dims in inputs]
    padded = math.prod(
        g * wg[i] / bounds[i] for g, i in zip(groups, tiled, strict=True)
    )
    # Padding of the thread tiles against the workgroup tile and against the
    # remainder of a partial last workgroup (its tiles are dynamically sized).
    thread_pad = edge_pad = 1.0
    partial = False
    for i in parallel:
        thread_pad *= _padding(per_wg[i], per_thread[i])
        if bounds[i] % per_wg[i]:
            partial = True
            edge_pad *= _padding(bounds[i] % per_wg[i], per_thread[i])
    reduce_pad = math.prod(_padding(bounds[i], per_step[i]) for i in reduce)
    private = tile > _MAX_VECTOR or partial or max(thread_pad, reduce_pad) > 1
    live = (tile * out_bits + sum(operands) * in_bits) / 8
    return [
        float(len(bounds)),
        float(len(reduce)),
        float(math.prod(bounds[i] for i in parallel)),
        float(math.prod(bounds[i] for i in reduce)),
        float(math.prod(groups)),
        padded,
        float(wg_tile),
        float(tile),
        wg_tile / max(threads * tile, 1e-9),
        float(math.prod(per_step[i] for i in reduce)),
        float(math.prod(math.ceil(bounds[i] / per_step[i]) for i in reduce)),
        float(sum(operands)),
        float(max(operands, default=0.0)),
        float(sum(math.prod(per_wg[i] for i in dims) for dims in inputs)),
        float(in_bits),
        float(out_bits),
        reduce_pad,
        thread_pad,
        edge_pad,
        tile * out_bits / 8 if private else 0.0,
        live / budget,
        *_limit_columns(
            text,
            config,
            (bounds, iterators, inputs),
            (per_wg, per_thread, per_step),
            (tile * out_bits / 32, sum(operands) * in_bits / 32, in_bits),
        ),
        *(
            _vector_columns(bounds, iterators, (per_wg, per_thread, per_step), out_bits)
            if config.backend == "gpu" and "thread" in levels and not mma
            else [0.0] * len(_VECTORS)
        ),
    ]


def _limit_columns(text, config, loops, tiles, registers) -> list[float]:
    """The ``_LIMITS`` columns. ``loops``: the root op's bounds, iterator
    kinds and loops of each input; ``tiles``: per loop its workgroup tile, its
    extent in one thread and its reduction step, in bounds; ``registers``:
    the 32-bit registers of a thread's output tile and of its operand
    elements of one reduction step, and the inputs' element bits."""
    bounds, iterators, inputs = loops
    per_wg, per_thread, per_step = tiles
    acc, operands, in_bits = registers
    promoted = _PROMOTED.search(" ".join(config.flags))
    indices = (
        [int(v) for v in promoted.group(1).split(",") if v.strip()] if promoted else []
    )
    indices = [i for i in indices if i < len(inputs)]
    # IREE pads a promoted operand's tile to the ``padding`` level's sizes.
    padding = config.levels.get("padding")
    padded = [
        padding[i] if padding and i < len(padding) and padding[i] > 0 else tile
        for i, tile in enumerate(per_wg)
    ]

    def promoted_bytes(extents):
        elements = sum(math.prod(extents[j] for j in inputs[i]) for i in indices)
        return elements * in_bits / 8

    shared = _SHARED.search(text)
    parallel = [
        per_thread[i] for i, kind in enumerate(iterators) if kind != "reduction"
    ]
    reduce = [i for i, kind in enumerate(iterators) if kind == "reduction"]
    limit = _REGISTER_FILE[_target(text, config)] / 4
    staged = promoted_bytes(per_wg)
    return [
        staged,
        staged / (int(shared.group(1)) if shared else _L1_BYTES),
        promoted_bytes(padded) if padding else 0.0,
        float(max(parallel, default=0)),
        float(sum(e > 1 for e in parallel)),
        math.prod(per_step[i] for i in reduce) / math.prod(bounds[i] for i in reduce),
        acc,
        operands,
        (acc + operands) / limit,
    ]


def _largest_factor(value: int, bound: int) -> int:
    """The largest divisor of ``value`` that is at most ``bound`` (IREE's
    ``getLargestFactorLessThan``)."""
    for i in range(1, math.isqrt(value) + 1):
        if value % i == 0 and value // i <= bound:
            return value // i
    return 1


def _large_tensor_slice(sizes: list[int], iterators: list[str]) -> int:
    """Elements of the slices IREE's ``TileLargeTensors`` cuts a thread's op
    into: with static loop sizes ``sizes`` (0: dynamic), dynamic parallel
    loops go to 1; while the parallel elements exceed :data:`_MAX_VECTOR`,
    each parallel loop but the last loop goes to 1, outermost first; then the
    last parallel loop takes the largest factor of what is left that is at
    most :data:`_MAX_VECTOR`. Reduction loops stay whole."""
    parallel = [i for i, kind in enumerate(iterators) if kind != "reduction"]
    sizes = [max(v, 1) if i in parallel else v for i, v in enumerate(sizes)]
    left = math.prod(sizes[i] for i in parallel)
    for i in parallel:
        if i == len(sizes) - 1 or left <= _MAX_VECTOR:
            continue
        left //= sizes[i]
        sizes[i] = 1
    if left > _MAX_VECTOR and parallel:
        sizes[parallel[-1]] = _largest_factor(left, _MAX_VECTOR)
    return math.prod(sizes[i] for i in parallel)


def _vector_columns(bounds, iterators, tiles, out_bits) -> list[float]:
    """The ``_VECTORS`` columns of a thread-tiled GPU root op. ``tiles``: per
    loop its workgroup tile, its extent in one thread and its reduction step,
    in bounds."""
    per_wg, per_thread, per_step = tiles
    parallel = [i for i, kind in enumerate(iterators) if kind != "reduction"]
    reduce = [i for i, kind in enumerate(iterators) if kind == "reduction"]
    # A thread tile that does not divide its workgroup tile, or a workgroup
    # tile that does not divide its loop, leaves a dynamically sized loop.
    static = [
        0 if i in parallel and (per_wg[i] % size or bounds[i] % per_wg[i]) else size
        for i, size in enumerate(per_thread)
    ]
    tile = math.prod(per_thread[i] for i in parallel)
    slice_ = _large_tensor_slice(static, iterators)
    slices = tile / slice_
    steps = math.prod(per_step[i] for i in reduce)
    return [
        slices,
        float(slice_),
        tile * out_bits / 8 if slices > 1 and reduce else 0.0,
        float(tile * steps),
        float(sum(_odd(per_thread[i]) for i in parallel)),
        float(sum(_odd(per_step[i]) for i in reduce)),
        float(per_thread[parallel[-1]]) if parallel else 0.0,
    ]


def _odd(size: int) -> bool:
    """A size above 1 that is not a power of two."""
    return size > 1 and bool(size & (size - 1))


def _consumer_columns(text: str, tile: float) -> list[float]:
    """The ``_CONSUMERS`` columns: all-parallel ``linalg.generic`` ops after
    the root op that read its result, those of them whose first input of the
    output's type and indexing map is that result, the ops of their bodies
    (all, and ``math`` ones), and those times ``tile``, the output elements
    of a thread."""
    root = _GENERIC.match(text, text.find(root_op_header(text)))
    if root is None:
        return [0.0] * len(_CONSUMERS)
    chain, consumers, into_root = {root.group(1)}, 0, 0
    ops: list[str] = []
    for op in _GENERIC.finditer(text, root.end()):
        names, _, types = op.group(4).partition(" : ")
        names = [n.strip() for n in names.split(",")]
        kinds = {k.strip().strip('"') for k in op.group(3).split(",")}
        maps = [results for _, results in _read_maps(op.group(2))]
        if (
            kinds != {"parallel"}
            or not chain.intersection(names)
            or len(maps) <= len(names)
        ):
            continue
        out = (_TYPE.findall(op.group(5).partition(" : ")[2])[:1], maps[len(names)])
        first = next(
            (
                name
                for name, kind, m in zip(
                    names, _TYPE.findall(types), maps, strict=False
                )
                if ([kind], m) == out
            ),
            None,
        )
        consumers += 1
        into_root += first in chain
        chain.add(op.group(1))
        end = text.find("linalg.yield", op.end())
        ops += _BODY_OP.findall(text, op.end(), end) if end >= 0 else []
    math_ops = ops.count("math")
    return [
        float(consumers),
        float(into_root),
        float(len(ops)),
        float(math_ops),
        len(ops) * tile,
        math_ops * tile,
    ]


def _offset_divisors(text: str) -> dict[str, int]:
    """``util.assume.int`` result -> the gcd of its assumptions' ``udiv``
    (an assumption of constant 0 divides by anything; one without ``udiv``
    leaves the result out)."""
    divisors = {}
    for result, body in _ASSUME.findall(text):
        operands = _ASSUMED.findall(body)
        for i, assumptions in enumerate(operands):
            divisor = 0
            for assumption in re.findall(r"<([^>]*)>", assumptions):
                fields = dict(
                    part.strip().split(" = ") for part in assumption.split(",")
                )
                if "udiv" in fields:
                    divisor = math.gcd(divisor, int(fields["udiv"]))
                elif fields.get("umax") != "0":
                    break
            else:
                divisors[f"{result}#{i}" if len(operands) > 1 else result] = divisor
    return divisors


def _offset_columns(text: str) -> list[float]:
    """The ``_OFFSETS`` column: binding offsets whose assumed divisor is
    above 1 and not a power of two."""
    divisors = _offset_divisors(text)
    unknown = 0
    for offset in _OFFSET.findall(text):
        divisor = divisors.get(offset, 0)
        unknown += divisor > 1 and bool(divisor & (divisor - 1))
    return [float(unknown)]


def _scalar_columns(
    text: str, config: CodegenConfig, loops: list[float]
) -> list[float]:
    """The ``_SCALAR`` columns; ``loops``: the ``_LOOPS`` columns."""
    header = root_op_header(text)
    window = any(
        not _PLAIN_RESULT.fullmatch(r)
        for _, results in _read_maps(header)
        for r in results
    )
    if not (window and config.backend == "gpu" and "thread" in config.levels):
        return [float(window), 0.0, 0.0]
    tile = loops[_LOOPS.index("tile per thread in bounds")]
    return [1.0, tile, tile * loops[_LOOPS.index("reduction tile in bounds")]]


def _reduction_tile_columns(loops, config: CodegenConfig, threads: int) -> list[float]:
    """The ``_REDUCTION_TILES`` columns of a thread-tiled GPU root op;
    ``loops``: :func:`_root_loops` of its text (zeros without them, without
    reduction loops or without a ``thread`` level)."""
    levels = config.levels
    if loops is None or config.backend != "gpu" or "thread" not in levels:
        return [0.0] * len(_REDUCTION_TILES)
    bounds, iterators, _, _ = loops
    thread = levels["thread"]
    reduction = levels.get("reduction") or levels.get("partial_reduction") or []
    reduce = [i for i, kind in enumerate(iterators) if kind == "reduction"]
    if not reduce:
        return [0.0] * len(_REDUCTION_TILES)
    # Not cut to the loops: a tile over its loop is padded (masked) work.
    tile = math.prod(
        reduction[i] if i < len(reduction) and reduction[i] > 0 else bounds[i]
        for i in reduce
    )
    extents = math.prod(
        thread[i] if i < len(thread) and thread[i] > 0 else 1 for i in reduce
    )
    return [
        tile / math.prod(bounds[i] for i in reduce),
        tile / threads,
        threads * extents / tile,
    ]


def _row(text: str) -> list[float]:
    try:
        config = read_config(text)
    except ValueError:
        return [0.0] * len(_NAMES)
    row: list[float] = []
    for name in CONFIG_LEVELS:
        sizes = config.levels.get(name, [])
        tiled = [v for v in sizes if v > 0]
        row += [
            len(tiled),
            float(math.prod(tiled)) if tiled else 0.0,
            max(tiled, default=0),
        ]
    row += [float(config.pipeline == p) for p in CONFIG_PIPELINES]
    row.append(float(config.pipeline not in CONFIG_PIPELINES))
    target = _target(text, config)
    threads = math.prod(config.workgroup_size) if config.workgroup_size else 1
    shape = mma_shape(config.mma_kind) or (0, 0, 0)
    tile, extents = _per_thread(config)
    reduction = config.levels.get("reduction") or config.levels.get(
        "vector_reduction", []
    )
    red = float(_product(reduction)) if any(v > 0 for v in reduction) else 1.0
    if shape[2]:
        red *= shape[2]
    bits = [b for e in set(_ELEMENT.findall(text)) if (b := element_bits(e))]
    elem = max(bits, default=32) / 8
    acc = tile * elem
    operands = red * sum(extents) * elem
    wg = [v for v in _workgroup_level(config) if v > 0]
    wg_bytes = (math.prod(wg) + red * sum(wg[-2:])) * elem if wg else 0.0
    shared = _SHARED.search(text)
    shared_bytes = int(shared.group(1)) if shared else _L1_BYTES
    register_file = _REGISTER_FILE[target]
    budget = _register_budget(target, threads)
    row += [
        float(threads),
        float(config.subgroup_size),
        threads / config.subgroup_size if config.subgroup_size else 0.0,
        float(bool(config.mma_kind)),
        *map(float, shape),
        tile,
        red,
        elem,
        acc,
        operands,
        wg_bytes,
        acc / register_file,
        operands / register_file,
        wg_bytes / shared_bytes,
        budget,
        float(target != "cpu"),
        1.0,
        float(any(f.startswith("promote_operands") for f in config.flags)),
        float("convert_acc_gemm" in config.flags),
    ]
    root = _root_loops(text)
    loops = _loop_columns(root, text, config, threads, budget)
    # Output elements of a thread: in the root op's bounds where they are known.
    in_bounds = loops[_LOOPS.index("tile per thread in bounds")] or tile
    return [
        *row,
        *loops,
        *_consumer_columns(text, in_bounds),
        *_offset_columns(text),
        *_scalar_columns(text, config, loops),
        *_reduction_tile_columns(root, config, threads),
    ]


class ConfigFeatures(TransformerMixin, BaseEstimator):
    """Named columns of a configured executable's codegen decisions.

    Stateless: ``fit`` only checks the input. A text without a
    ``lowering_config`` (an unconfigured dispatch, a whole program) gets a row
    of zeros with ``config read`` = 0, so the transformer composes with the
    other MLIR featurizers in a :class:`~sklearn.pipeline.FeatureUnion` on any
    text.

    Examples
    --------
    >>> from mlircost_classic.featurize import ConfigFeatures
    >>> text = (
    ...     "func.func @f() attributes {translation_info = "
    ...     "#iree_codegen.translation_info<pipeline = #iree_gpu.pipeline<TileAndFuse> "
    ...     "workgroup_size = [64, 1, 1] subgroup_size = 32>} { linalg.generic "
    ...     "{lowering_config = #iree_gpu.lowering_config<{thread = [1, 4], "
    ...     "workgroup = [4, 64]}>} }"
    ... )
    >>> f = ConfigFeatures().fit([text])
    >>> dict(zip(f.get_feature_names_out(), f.transform([text])[0]))["threads"]
    np.float64(64.0)
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags

    def fit(self, X, y=None):
        """Check ``X``; nothing is learned.

        Parameters
        ----------
        X : iterable of str
            Configured executables (MLIR text).
        y : ignored

        Returns
        -------
        self
        """
        _check_documents(X)
        self.n_features_out_ = len(_NAMES)
        return self

    def transform(self, X) -> np.ndarray:
        """One row of :meth:`get_feature_names_out` columns per text.

        Parameters
        ----------
        X : iterable of str

        Returns
        -------
        ndarray of shape (n_texts, n_features)
        """
        docs = _check_documents(X)
        bad = [type(d).__name__ for d in docs if not isinstance(d, str)]
        if bad:
            raise TypeError(f"each document must be MLIR text (str), got {bad[0]}")
        return np.array([_row(d) for d in docs], dtype=np.float64).reshape(
            len(docs), len(_NAMES)
        )

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Column names, in order."""
        return np.array(_NAMES, dtype=object)


class VariantFeaturizer(TransformerMixin, BaseEstimator):
    """Candidates of dispatches: :class:`ConfigFeatures` beside the features of
    the dispatch itself.

    The dispatch part (default :class:`ShapeFeatures`) sees each distinct
    dispatch once: texts that differ only in their ``lowering_config`` and
    ``translation_info`` (:func:`~mlircost_classic.mlir.strip_config`) share
    its row, so ranking many candidates of one dispatch reads the MLIR once.

    Parameters
    ----------
    dispatch : transformer or "drop", default=None
        Featurizer of the dispatch text; None means ``ShapeFeatures()``,
        ``"drop"`` keeps the config columns only.

    Examples
    --------
    >>> from mlircost_classic.featurize import VariantFeaturizer
    >>> VariantFeaturizer(dispatch="drop").fit(["x"]).get_feature_names_out()[0]
    'config__workgroup loops'
    """

    def __init__(self, *, dispatch=None):
        self.dispatch = dispatch

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags

    def _unique(self, docs: list) -> tuple[list[str], np.ndarray]:
        keys: dict[str, int] = {}
        firsts, index = [], []
        for doc in docs:
            key = strip_config(doc)
            if key not in keys:
                keys[key] = len(firsts)
                firsts.append(doc)
            index.append(keys[key])
        return firsts, np.array(index, dtype=np.intp)

    def fit(self, X, y=None):
        """Fit the dispatch featurizer on the distinct dispatches of ``X``.

        Parameters
        ----------
        X : iterable of str
        y : ignored

        Returns
        -------
        self
        """
        docs = _check_documents(X)
        self.config_ = ConfigFeatures().fit(docs)
        self.dispatch_ = None
        if self.dispatch != "drop":
            part = ShapeFeatures() if self.dispatch is None else clone(self.dispatch)
            self.dispatch_ = part.fit(self._unique(docs)[0])
        return self

    def transform(self, X) -> np.ndarray:
        """Config columns, then the dispatch's columns.

        Parameters
        ----------
        X : iterable of str

        Returns
        -------
        ndarray of shape (n_texts, n_features)
        """
        check_is_fitted(self, "config_")
        docs = _check_documents(X)
        blocks = [self.config_.transform(docs)]
        if self.dispatch_ is not None:
            firsts, index = self._unique(docs)
            rows = self.dispatch_.transform(firsts)
            rows = rows.toarray() if sparse.issparse(rows) else np.asarray(rows)
            blocks.append(rows[index])
        return np.hstack(blocks)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``config__...`` then ``dispatch__...`` names."""
        check_is_fitted(self, "config_")
        names = [f"config__{n}" for n in self.config_.get_feature_names_out()]
        if self.dispatch_ is not None:
            names += [f"dispatch__{n}" for n in self.dispatch_.get_feature_names_out()]
        return np.array(names, dtype=object)
