"""Elementwise fusion rules of the dispatch partitioner, each checked against
iree-compile (3.13) on the module it tests.

The rules come from IREE's ``DispatchCreation/FusionUtils.cpp``
(``areFusableAsElementwiseOps``) and ``LinalgExt/Utils/Utils.cpp``
(``isBitExtendOrTruncateOp``); the counts and groupings in the docstrings are
iree-compile's.
"""

import struct

import pytest

from mlircost_classic.featurize import partition_dispatches

_TRUNCATE_THEN_EXTEND = """#map = affine_map<(d0, d1) -> (d0, d1)>
#map3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @main(%a: tensor<8x64xf16>, %w: tensor<64x64xf16>) -> tensor<2x8x32xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %e = tensor.empty() : tensor<8x64xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<8x64xf32>) -> tensor<8x64xf32>
  %m = linalg.matmul ins(%a, %w : tensor<8x64xf16>, tensor<64x64xf16>) outs(%f : tensor<8x64xf32>) -> tensor<8x64xf32>
  %e2 = tensor.empty() : tensor<8x64xf16>
  %t = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%m : tensor<8x64xf32>) outs(%e2 : tensor<8x64xf16>) {
  ^bb0(%in: f32, %out: f16):
    %0 = arith.truncf %in : f32 to f16
    linalg.yield %0 : f16
  } -> tensor<8x64xf16>
  %x = tensor.expand_shape %t [[0], [1, 2]] output_shape [8, 2, 32] : tensor<8x64xf16> into tensor<8x2x32xf16>
  %e3 = tensor.empty() : tensor<2x8x32xf16>
  %p = linalg.transpose ins(%x : tensor<8x2x32xf16>) outs(%e3 : tensor<2x8x32xf16>) permutation = [1, 0, 2]
  %e4 = tensor.empty() : tensor<2x8x32xf32>
  %g = linalg.generic {indexing_maps = [#map3, #map3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%p : tensor<2x8x32xf16>) outs(%e4 : tensor<2x8x32xf32>) {
  ^bb0(%in: f16, %out: f32):
    %0 = arith.extf %in : f16 to f32
    linalg.yield %0 : f32
  } -> tensor<2x8x32xf32>
  %h = linalg.generic {indexing_maps = [#map3, #map3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%g : tensor<2x8x32xf32>) outs(%e4 : tensor<2x8x32xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = PAYLOAD
    linalg.yield %0 : f32
  } -> tensor<2x8x32xf32>
  return %h : tensor<2x8x32xf32>
}
"""


@pytest.mark.parametrize(
    ("payload", "matmul_lines"),
    [
        # transpose, extend and mulf fuse into an extend: the truncate stays
        # out of it, and the matmul's dispatch takes it as its consumer
        ("arith.mulf %in, %in : f32", (7, 9)),
        # with math.exp the fused op is no extend: the truncate, a producer
        # of one input, fuses into it
        ("math.exp %in : f32", (7,)),
    ],
)
def test_a_truncate_never_fuses_into_an_extend(payload, matmul_lines):
    """``areFusableAsElementwiseOps``: a bit-truncating producer fuses only
    into a truncate or an all-parallel op of one input, never into a
    bit-extend; IREE fuses consumers from the last op up, so the transpose
    and the extend below the truncate are one op by then, an extend unless a
    ``math`` op joins them. iree-compile: two dispatches either way, the
    truncf in the matmul's (mulf) or in the elementwise one (exp)."""
    regions = partition_dispatches(_TRUNCATE_THEN_EXTEND.replace("PAYLOAD", payload))
    assert [r.kind for r in regions] == ["matmul", "elementwise"]
    assert regions[0].lines == matmul_lines
    assert ("arith.truncf" in regions[0].text) == (len(matmul_lines) == 2)


def test_a_batch_matmul_of_an_f16_weight_keeps_its_input_type():
    """``ConvertBatchMatmulToMatmul`` collapses the left operand in its own
    element type: an f16 ``batch_matmul`` accumulating in f32 over a broadcast
    weight is the same executable as the f16 matmul on the collapsed input
    (iree-compile: one executable, ``matmul_8x8x16_f16xf16xf32``)."""
    text = """func.func @main(%arg0: tensor<2x4x16xf16>, %arg1: tensor<16x8xf16>) -> (tensor<8x8xf32>, tensor<2x4x8xf32>) {
  %cst = arith.constant 0.000000e+00 : f32
  %c = tensor.collapse_shape %arg0 [[0, 1], [2]] : tensor<2x4x16xf16> into tensor<8x16xf16>
  %e = tensor.empty() : tensor<8x8xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<8x8xf32>) -> tensor<8x8xf32>
  %m = linalg.matmul ins(%c, %arg1 : tensor<8x16xf16>, tensor<16x8xf16>) outs(%f : tensor<8x8xf32>) -> tensor<8x8xf32>
  %e3 = tensor.empty() : tensor<2x16x8xf16>
  %bw = linalg.broadcast ins(%arg1 : tensor<16x8xf16>) outs(%e3 : tensor<2x16x8xf16>) dimensions = [0]
  %eb = tensor.empty() : tensor<2x4x8xf32>
  %fb = linalg.fill ins(%cst : f32) outs(%eb : tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  %b = linalg.batch_matmul ins(%arg0, %bw : tensor<2x4x16xf16>, tensor<2x16x8xf16>) outs(%fb : tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  return %m, %b : tensor<8x8xf32>, tensor<2x4x8xf32>
}
"""
    (region,) = partition_dispatches(text)
    assert (region.kind, region.calls) == ("matmul", 2)
    assert "tensor<8x16xf16>" in region.text


def test_a_truncate_read_by_a_copy_of_two_users_stays_with_its_root():
    """A copy fuses into each of its users (``areFusableAsElementwiseOps``
    always fuses a producer that only copies), so a truncate a transpose of
    two users reads has two uses and fuses into neither: the matmul's
    dispatch takes it (iree-compile: three dispatches, the truncf in the
    matmul's)."""
    two_users = _TRUNCATE_THEN_EXTEND.split("  %e4 = ")[0].replace(
        "-> tensor<2x8x32xf32> {", "-> (tensor<2x8x32xf16>, tensor<2x8x32xf16>) {"
    )
    for name, fn in (("%g", "exp"), ("%h", "sin")):
        two_users += (
            f"  {name} = linalg.generic {{indexing_maps = [#map3, #map3], "
            'iterator_types = ["parallel", "parallel", "parallel"]} '
            "ins(%p : tensor<2x8x32xf16>) outs(%e3 : tensor<2x8x32xf16>) {\n"
            "  ^bb0(%in: f16, %out: f16):\n"
            f"    %0 = math.{fn} %in : f16\n"
            "    linalg.yield %0 : f16\n"
            "  } -> tensor<2x8x32xf16>\n"
        )
    two_users += "  return %g, %h : tensor<2x8x32xf16>, tensor<2x8x32xf16>\n}\n"
    regions = partition_dispatches(two_users)
    assert [r.kind for r in regions] == ["matmul", "elementwise", "elementwise"]
    assert regions[0].lines == (7, 9)


_BROADCAST_THEN = """#map = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#bin = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>
#bout = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @main(%k: tensor<2x64x32xf32>, %c: tensor<2x64x32xf32>, %w: tensor<4x32x64xf32>) -> tensor<4x64x64xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %e = tensor.empty() : tensor<2x64x32xf32>
  %r = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel", "parallel"]} ins(%k, %c : tensor<2x64x32xf32>, tensor<2x64x32xf32>) outs(%e : tensor<2x64x32xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %0 = arith.mulf %a, %b : f32
    linalg.yield %0 : f32
  } -> tensor<2x64x32xf32>
  %e2 = tensor.empty() : tensor<2x2x64x32xf32>
  %rep = linalg.generic {indexing_maps = [#bin, #bout], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%r : tensor<2x64x32xf32>) outs(%e2 : tensor<2x2x64x32xf32>) {
  ^bb0(%a: f32, %o: f32):
    linalg.yield %a : f32
  } -> tensor<2x2x64x32xf32>
  %col = tensor.collapse_shape %rep [[0, 1], [2], [3]] : tensor<2x2x64x32xf32> into tensor<4x64x32xf32>
  %e3 = tensor.empty() : tensor<4x64x32xf32>
  %t = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel"]} ins(%col : tensor<4x64x32xf32>) outs(%e3 : tensor<4x64x32xf32>) {
  ^bb0(%a: f32, %o: f32):
    PAYLOAD
  } -> tensor<4x64x32xf32>
  %e4 = tensor.empty() : tensor<4x64x64xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e4 : tensor<4x64x64xf32>) -> tensor<4x64x64xf32>
  %m = linalg.batch_matmul ins(%t, %w : tensor<4x64x32xf32>, tensor<4x32x64xf32>) outs(%f : tensor<4x64x64xf32>) -> tensor<4x64x64xf32>
  return %m : tensor<4x64x64xf32>
}
"""


@pytest.mark.parametrize(
    ("payload", "groups"),
    [
        # the repeat (a GQA repeat_kv) stays a broadcast: %r is its own dispatch
        ("linalg.yield %a : f32", [(7,), (13,), (25,)]),
        # the mulf below takes the repeat in first: no broadcast any more
        (
            "%s = arith.mulf %a, %a : f32\n    linalg.yield %s : f32",
            [(7, 13, 19), (26,)],
        ),
    ],
)
def test_no_producer_fuses_into_a_broadcast(payload, groups):
    """``areFusableAsElementwiseOps`` with ``fuseBroadcastOps`` off: nothing
    fuses into an op that only broadcasts its input (``isBroadcastingOp``),
    as an LLM's repeated keys are; but IREE fuses from the last op up, and a
    copy into any consumer, so a broadcast an elementwise op below has taken
    in is none (iree-compile: three dispatches, and two)."""
    regions = partition_dispatches(_BROADCAST_THEN.replace("PAYLOAD", payload))
    assert [r.lines for r in regions] == groups


def test_a_flip_fuses_into_a_broadcast():
    """A producer that reads none of its operands (a flip: ``linalg.index``
    and ``tensor.extract`` only) fuses into any all-parallel consumer, a
    broadcast too, before the broadcast check (a bundled data-movement
    module's program, one dispatch in iree-compile)."""
    text = """#map = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#map1 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
#map2 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @main(%arg0: tensor<128x16x16xf32>) -> tensor<128x16x3x16xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %c15 = arith.constant 15 : index
  %0 = tensor.empty() : tensor<128x16x16xf32>
  %1 = linalg.fill ins(%cst : f32) outs(%0 : tensor<128x16x16xf32>) -> tensor<128x16x16xf32>
  %2 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel"]} ins(%arg0 : tensor<128x16x16xf32>) outs(%1 : tensor<128x16x16xf32>) {
  ^bb0(%in: f32, %out: f32):
    %5 = linalg.index 0 : index
    %6 = linalg.index 1 : index
    %7 = linalg.index 2 : index
    %8 = arith.subi %c15, %7 : index
    %extracted = tensor.extract %arg0[%5, %6, %8] : tensor<128x16x16xf32>
    linalg.yield %extracted : f32
  } -> tensor<128x16x16xf32>
  %3 = tensor.empty() : tensor<128x16x3x16xf32>
  %4 = linalg.generic {indexing_maps = [#map1, #map2], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%2 : tensor<128x16x16xf32>) outs(%3 : tensor<128x16x3x16xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<128x16x3x16xf32>
  return %4 : tensor<128x16x3x16xf32>
}
"""
    (region,) = partition_dispatches(text)
    assert region.lines == (9, 19)


_LINEAR_TWICE = """#m2 = affine_map<(d0, d1) -> (d0, d1)>
#b2 = affine_map<(d0, d1) -> (d1)>
#m3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#b3 = affine_map<(d0, d1, d2) -> (d2)>
#w3 = affine_map<(d0, d1, d2) -> (d1, d2)>
func.func @main(%x: tensor<2x8x64xf32>, %r: tensor<2x8x64xf32>, %w1: tensor<64x64xf32>, %b1: tensor<64xf32>, %w2: tensor<64x64xf32>, %b2: tensor<64xf32>, %x2: tensor<2x8x64xf32>, %r2: tensor<2x8x64xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x64xf32>) {
  %cst = arith.constant 0.000000e+00 : f32
  %e3 = tensor.empty() : tensor<2x8x64xf32>
  %c = tensor.collapse_shape %x [[0, 1], [2]] : tensor<2x8x64xf32> into tensor<16x64xf32>
  %e = tensor.empty() : tensor<16x64xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<16x64xf32>) -> tensor<16x64xf32>
  %m = linalg.matmul ins(%c, %w1 : tensor<16x64xf32>, tensor<64x64xf32>) outs(%f : tensor<16x64xf32>) -> tensor<16x64xf32>
  %a = linalg.generic {indexing_maps = [#m2, #b2, #m2], iterator_types = ["parallel", "parallel"]} ins(%m, %b1 : tensor<16x64xf32>, tensor<64xf32>) outs(%e : tensor<16x64xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %0 = arith.addf %i, %j : f32
    linalg.yield %0 : f32
  } -> tensor<16x64xf32>
  %ax = tensor.expand_shape %a [[0, 1], [2]] output_shape [2, 8, 64] : tensor<16x64xf32> into tensor<2x8x64xf32>
  %y = linalg.generic {indexing_maps = [#m3, #m3, #m3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%r, %ax : tensor<2x8x64xf32>, tensor<2x8x64xf32>) outs(%e3 : tensor<2x8x64xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %0 = arith.addf %i, %j : f32
    linalg.yield %0 : f32
  } -> tensor<2x8x64xf32>
  %eb = tensor.empty() : tensor<2x64x64xf32>
  %bw = linalg.generic {indexing_maps = [#w3, #m3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%w2 : tensor<64x64xf32>) outs(%eb : tensor<2x64x64xf32>) {
  ^bb0(%i: f32, %o: f32):
    linalg.yield %i : f32
  } -> tensor<2x64x64xf32>
  %f3 = linalg.fill ins(%cst : f32) outs(%e3 : tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  %bm = linalg.batch_matmul ins(%x2, %bw : tensor<2x8x64xf32>, tensor<2x64x64xf32>) outs(%f3 : tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  %a2 = linalg.generic {indexing_maps = [#m3, #b3, #m3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%bm, %b2 : tensor<2x8x64xf32>, tensor<64xf32>) outs(%e3 : tensor<2x8x64xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %0 = arith.addf %i, %j : f32
    linalg.yield %0 : f32
  } -> tensor<2x8x64xf32>
  %y2 = linalg.generic {indexing_maps = [#m3, #m3, #m3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%r2, %a2 : tensor<2x8x64xf32>, tensor<2x8x64xf32>) outs(%e3 : tensor<2x8x64xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %0 = arith.addf %i, %j : f32
    linalg.yield %0 : f32
  } -> tensor<2x8x64xf32>
  return %y, %y2 : tensor<2x8x64xf32>, tensor<2x8x64xf32>
}
"""


def test_a_bias_before_or_after_the_reshape_is_one_executable():
    """IREE collapses a dispatch's elementwise ops (``CollapseDimensions``):
    a matmul whose bias is added to its 2-D result before the 3-D residual,
    and one made of a ``batch_matmul`` over a broadcast weight whose bias is
    added after the expansion, are one executable (iree-compile: one, run
    twice); their regions differ only in where the reshape sits."""
    (region,) = partition_dispatches(_LINEAR_TWICE)
    assert (region.kind, region.calls, region.lines) == ("matmul", 2, (12, 13, 19))


_SCALED_TWICE = """#m = affine_map<(d0, d1) -> (d0, d1)>
#v = affine_map<(d0, d1) -> (d1)>
#e = affine_map<(d0) -> (d0)>
func.func @main(%a: tensor<4x32xf32>, %b: tensor<4x32xf32>) -> (tensor<4x32xf32>, tensor<4x32xf32>) {
  %w1 = arith.constant dense<[0.5, 0.25, 0.125, 1.5, 0.5, 0.25, 0.125, 1.5, 0.5, 0.25, 0.125, 1.5, 0.5, 0.25, 0.125, 1.5, 0.5, 0.25, 0.125, 1.5, 0.5, 0.25, 0.125, 1.5, 0.5, 0.25, 0.125, 1.5, 0.5, 0.25, 0.125, 1.5]> : tensor<32xf32>
  %w2 = arith.constant dense<[1.5, 0.75, 0.125, 2.5, 1.5, 0.75, 0.125, 2.5, 1.5, 0.75, 0.125, 2.5, 1.5, 0.75, 0.125, 2.5, 1.5, 0.75, 0.125, 2.5, 1.5, 0.75, 0.125, 2.5, 1.5, 0.75, 0.125, 2.5, 1.5, 0.75, 0.125, 2.5]> : tensor<32xf32>
  %e = tensor.empty() : tensor<32xf32>
  %x1 = linalg.generic {indexing_maps = [#e, #e], iterator_types = ["parallel"]} ins(%w1 : tensor<32xf32>) outs(%e : tensor<32xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = math.exp %in : f32
    linalg.yield %0 : f32
  } -> tensor<32xf32>
  %x2 = linalg.generic {indexing_maps = [#e, #e], iterator_types = ["parallel"]} ins(%w2 : tensor<32xf32>) outs(%e : tensor<32xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = math.exp %in : f32
    linalg.yield %0 : f32
  } -> tensor<32xf32>
  %e2 = tensor.empty() : tensor<4x32xf32>
  %r1 = linalg.generic {indexing_maps = [#m, #v, #m], iterator_types = ["parallel", "parallel"]} ins(%a, %S1 : tensor<4x32xf32>, tensor<32xf32>) outs(%e2 : tensor<4x32xf32>) {
  ^bb0(%in: f32, %in_0: f32, %out: f32):
    %0 = arith.mulf %in, %in_0 : f32
    linalg.yield %0 : f32
  } -> tensor<4x32xf32>
  %r2 = linalg.generic {indexing_maps = [#m, #v, #m], iterator_types = ["parallel", "parallel"]} ins(%b, %S2 : tensor<4x32xf32>, tensor<32xf32>) outs(%e2 : tensor<4x32xf32>) {
  ^bb0(%in: f32, %in_0: f32, %out: f32):
    %0 = arith.mulf %in, %in_0 : f32
    linalg.yield %0 : f32
  } -> tensor<4x32xf32>
  return %r1, %r2 : tensor<4x32xf32>, tensor<4x32xf32>
}
"""


@pytest.mark.parametrize(
    ("scale", "calls"),
    [
        # exp of the weight: computed from a constant, a global bound like
        # an argument
        ("x", [2]),
        # the weight itself: a constant of 128 bytes, inlined
        ("w", [1, 1]),
    ],
)
def test_a_weight_computed_from_constants_is_a_global(scale, calls):
    """IREE evaluates a value computed from constants at compile time into a
    global (``HoistIntoGlobals``, const-eval), which a dispatch reads through
    a binding: two layers that scale by ``exp`` of their own 32-float weight
    are one executable run twice (iree-compile: ``elementwise_4x32_f32``, two
    dispatch sites; an RWKV's ``-exp(time_decay)``), where the weights read
    as they are are inlined (at most 256 bytes) and tell the executables
    apart (iree-compile: two executables)."""
    text = _SCALED_TWICE.replace("%S", "%" + scale)
    assert [r.calls for r in partition_dispatches(text)] == calls


_RECURRENCE_STEP = """#m = affine_map<(d0) -> (d0)>
func.func @main(%p: tensor<64xf32>, %w: tensor<64xf32>, %k: tensor<64xf32>, %v: tensor<64xf32>, %num: tensor<64xf32>, %den: tensor<64xf32>) -> (tensor<64xf32>, tensor<64xf32>, tensor<64xf32>) {
  %e = tensor.empty() : tensor<64xf32>
  %a = linalg.generic {indexing_maps = [#m, #m, #m], iterator_types = ["parallel"]} ins(%p, %w : tensor<64xf32>, tensor<64xf32>) outs(%e : tensor<64xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %0 = arith.addf %x, %y : f32
    linalg.yield %0 : f32
  } -> tensor<64xf32>
  %mx = linalg.generic {indexing_maps = [#m, #m, #m], iterator_types = ["parallel"]} ins(%a, %k : tensor<64xf32>, tensor<64xf32>) outs(%e : tensor<64xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %0 = arith.maximumf %x, %y : f32
    linalg.yield %0 : f32
  } -> tensor<64xf32>
  %d1 = linalg.generic {indexing_maps = [#m, #m, #m], iterator_types = ["parallel"]} ins(%a, %mx : tensor<64xf32>, tensor<64xf32>) outs(%e : tensor<64xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %0 = arith.subf %x, %y : f32
    %1 = math.exp %0 : f32
    linalg.yield %1 : f32
  } -> tensor<64xf32>
  %d2 = linalg.generic {indexing_maps = [#m, #m, #m], iterator_types = ["parallel"]} ins(%k, %mx : tensor<64xf32>, tensor<64xf32>) outs(%e : tensor<64xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %0 = arith.subf %x, %y : f32
    %1 = math.exp %0 : f32
    linalg.yield %1 : f32
  } -> tensor<64xf32>
  %n = linalg.generic {indexing_maps = [#m, #m, #m, #m, #m], iterator_types = ["parallel"]} ins(%d1, %num, %d2, %v : tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>) outs(%e : tensor<64xf32>) {
  ^bb0(%x: f32, %y: f32, %z: f32, %u: f32, %o: f32):
    %0 = arith.mulf %x, %y : f32
    %1 = arith.mulf %z, %u : f32
    %2 = arith.addf %0, %1 : f32
    linalg.yield %2 : f32
  } -> tensor<64xf32>
  %dn = linalg.generic {indexing_maps = [#m, #m, #m, #m], iterator_types = ["parallel"]} ins(%d1, %den, %d2 : tensor<64xf32>, tensor<64xf32>, tensor<64xf32>) outs(%e : tensor<64xf32>) {
  ^bb0(%x: f32, %y: f32, %z: f32, %o: f32):
    %0 = arith.mulf %x, %y : f32
    %1 = arith.addf %0, %z : f32
    linalg.yield %1 : f32
  } -> tensor<64xf32>
  return %mx, %n, %dn : tensor<64xf32>, tensor<64xf32>, tensor<64xf32>
}
"""


def test_multi_use_producers_fuse_as_iree_rewrites_them():
    """``FuseMultiUseElementwiseProducer`` (two rounds): each fused op sits
    where its last op is; a consumer takes the producer of its first operand
    that it reads before any other op does, but gets nothing when that
    producer has itself taken one in the round (rewritten first, no use of
    the old op is left); a value only the function returns is read by a
    barrier right where it is written. An RWKV step: the running maximum with
    ``exp(k - max)`` is one dispatch, ``exp(a - max)`` with the numerator
    another, the denominator a third (iree-compile: three dispatches, these
    ops)."""
    regions = partition_dispatches(_RECURRENCE_STEP)
    assert [r.lines for r in regions] == [(4, 9, 20), (14, 26), (33,)]


_LINEAR_F16 = """#m = affine_map<(d0, d1) -> (d0, d1)>
#m3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#b = affine_map<(d0, d1, d2) -> (d1, d2)>
func.func @main(%a: tensor<2x4x64xf16>, %w: tensor<64x64xf16>, %w2: tensor<64x64xf16>) -> (tensor<8x64xf16>, tensor<2x4x64xf16>) {
  %cst = arith.constant 0.000000e+00 : f32
  %c = tensor.collapse_shape %a [[0, 1], [2]] : tensor<2x4x64xf16> into tensor<8x64xf16>
  %e = tensor.empty() : tensor<8x64xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<8x64xf32>) -> tensor<8x64xf32>
  %m = linalg.matmul ins(%c, %w : tensor<8x64xf16>, tensor<64x64xf16>) outs(%f : tensor<8x64xf32>) -> tensor<8x64xf32>
  %e2 = tensor.empty() : tensor<8x64xf16>
  %t = linalg.generic {indexing_maps = [#m, #m], iterator_types = ["parallel", "parallel"]} ins(%m : tensor<8x64xf32>) outs(%e2 : tensor<8x64xf16>) {
  ^bb0(%in: f32, %out: f16):
    %0 = arith.truncf %in : f32 to f16
    linalg.yield %0 : f16
  } -> tensor<8x64xf16>
  %eb = tensor.empty() : tensor<2x64x64xf16>
  %wb = linalg.generic {indexing_maps = [#b, #m3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%w2 : tensor<64x64xf16>) outs(%eb : tensor<2x64x64xf16>) {
  ^bb0(%in: f16, %out: f16):
    linalg.yield %in : f16
  } -> tensor<2x64x64xf16>
  %e3 = tensor.empty() : tensor<2x4x64xf32>
  %f3 = linalg.fill ins(%cst : f32) outs(%e3 : tensor<2x4x64xf32>) -> tensor<2x4x64xf32>
  %bm = linalg.batch_matmul ins(%a, %wb : tensor<2x4x64xf16>, tensor<2x64x64xf16>) outs(%f3 : tensor<2x4x64xf32>) -> tensor<2x4x64xf32>
  %e4 = tensor.empty() : tensor<2x4x64xf16>
  %t2 = linalg.generic {indexing_maps = [#m3, #m3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%bm : tensor<2x4x64xf32>) outs(%e4 : tensor<2x4x64xf16>) {
  ^bb0(%in: f32, %out: f16):
    %0 = arith.truncf %in : f32 to f16
    linalg.yield %0 : f16
  } -> tensor<2x4x64xf16>
  return %t, %t2 : tensor<8x64xf16>, tensor<2x4x64xf16>
}
"""


def test_a_truncated_matmul_stores_its_collapsed_shape():
    """IREE collapses a dispatch's dims (``CollapseDimensions``) and moves the
    reshape out of it, so its result binding has the collapsed shape: an
    f16 Linear (matmul, then truncf) and the same Linear made of a
    ``batch_matmul`` over a broadcast weight, whose truncf reads the 3-D
    expansion, are one executable (iree-compile: ``matmul_8x64x64``, two
    dispatch sites); the attention output projection of an f16 ``mha``."""
    (region,) = partition_dispatches(_LINEAR_F16)
    assert (region.kind, region.calls, region.lines) == ("matmul", 2, (9, 11))


_UNIT_REDUCTIONS = """#m = affine_map<(d0, d1) -> (d0, d1)>
#r = affine_map<(d0, d1) -> (d1)>
func.func @main(%a: tensor<1x64xf32>) -> (tensor<64xf32>, tensor<64xf32>, tensor<64xf32>) {
  %ninf = arith.constant 0xFF800000 : f32
  %one = arith.constant 1.000000e+00 : f32
  %zero = arith.constant 0.000000e+00 : f32
  %e = tensor.empty() : tensor<64xf32>
  %fmax = linalg.fill ins(%ninf : f32) outs(%e : tensor<64xf32>) -> tensor<64xf32>
  %max = linalg.generic {indexing_maps = [#m, #r], iterator_types = ["reduction", "parallel"]} ins(%a : tensor<1x64xf32>) outs(%fmax : tensor<64xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = arith.maximumf %in, %out : f32
    linalg.yield %0 : f32
  } -> tensor<64xf32>
  %fone = linalg.fill ins(%one : f32) outs(%e : tensor<64xf32>) -> tensor<64xf32>
  %prod = linalg.generic {indexing_maps = [#m, #r], iterator_types = ["reduction", "parallel"]} ins(%a : tensor<1x64xf32>) outs(%fone : tensor<64xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = arith.mulf %in, %out : f32
    linalg.yield %0 : f32
  } -> tensor<64xf32>
  %fzero = linalg.fill ins(%zero : f32) outs(%e : tensor<64xf32>) -> tensor<64xf32>
  %sum = linalg.generic {indexing_maps = [#m, #r], iterator_types = ["reduction", "parallel"]} ins(%a : tensor<1x64xf32>) outs(%fzero : tensor<64xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = arith.addf %in, %out : f32
    linalg.yield %0 : f32
  } -> tensor<64xf32>
  return %max, %prod, %sum : tensor<64xf32>, tensor<64xf32>, tensor<64xf32>
}
"""


def test_a_unit_reduction_with_the_identity_init_is_a_copy():
    """A reduction over a unit dim combines its one element with the init:
    arith folds ``maximumf(x, -inf)`` and ``mulf(x, 1.0)`` to ``x``, a copy
    that forms no dispatch, but not ``addf(x, +0.0)`` (iree-compile: one
    dispatch, ``elementwise_64_f32``, the sum's ``addf``)."""
    (region,) = partition_dispatches(_UNIT_REDUCTIONS)
    assert (region.kind, region.lines) == ("elementwise", (21,))


# RoBERTa position ids from the input ids (create_position_ids_from_input_ids),
# then the word, token-type and position embeddings
_POSITION_IDS = """#map = affine_map<(d0, d1) -> (d0, d1)>
#map1 = affine_map<(d0, d1, d2) -> (d0, d1)>
#map2 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @main(%arg0: tensor<1x64xi64>, %cst_41: tensor<514x128xf32>, %cst_42: tensor<2x128xf32>, %cst_43: tensor<1024x128xf32>, %cst_48: tensor<1x514xi64>) -> tensor<1x64x128xf32> {
    %c1_i64 = arith.constant 1 : i64
    %c514 = arith.constant 514 : index
    %c1024 = arith.constant 1024 : index
    %c2 = arith.constant 2 : index
    %c0 = arith.constant 0 : index
    %c0_i64 = arith.constant 0 : i64
    %0 = tensor.empty() : tensor<1x64xi1>
    %1 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%arg0 : tensor<1x64xi64>) outs(%0 : tensor<1x64xi1>) {
    ^bb0(%in: i64, %out: i1):
      %180 = arith.cmpi ne, %in, %c1_i64 : i64
      linalg.yield %180 : i1
    } -> tensor<1x64xi1>
    %2 = tensor.empty() : tensor<1x64xi32>
    %3 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%1 : tensor<1x64xi1>) outs(%2 : tensor<1x64xi32>) {
    ^bb0(%in: i1, %out: i32):
      %180 = arith.extui %in : i1 to i32
      linalg.yield %180 : i32
    } -> tensor<1x64xi32>
    %4 = tensor.empty() : tensor<1x64xi64>
    %5 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%3 : tensor<1x64xi32>) outs(%4 : tensor<1x64xi64>) {
    ^bb0(%in: i32, %out: i64):
      %180 = arith.extsi %in : i32 to i64
      linalg.yield %180 : i64
    } -> tensor<1x64xi64>
    %6 = linalg.fill ins(%c0_i64 : i64) outs(%4 : tensor<1x64xi64>) -> tensor<1x64xi64>
    %7 = tensor.empty() : tensor<1xi64>
    %8 = linalg.fill ins(%c0_i64 : i64) outs(%7 : tensor<1xi64>) -> tensor<1xi64>
    %9:2 = tm_tensor.scan dimension(1) inclusive(true) ins(%5 : tensor<1x64xi64>) outs(%6, %8 : tensor<1x64xi64>, tensor<1xi64>) {
    ^bb0(%arg1: i64, %arg2: i64):
      %180 = arith.addi %arg1, %arg2 : i64
      tm_tensor.yield %180 : i64
    } -> tensor<1x64xi64>, tensor<1xi64>
    %10 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%9#0 : tensor<1x64xi64>) outs(%2 : tensor<1x64xi32>) {
    ^bb0(%in: i64, %out: i32):
      %180 = arith.trunci %in : i64 to i32
      linalg.yield %180 : i32
    } -> tensor<1x64xi32>
    %11 = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel"]} ins(%10, %3 : tensor<1x64xi32>, tensor<1x64xi32>) outs(%2 : tensor<1x64xi32>) {
    ^bb0(%in: i32, %in_102: i32, %out: i32):
      %180 = arith.muli %in, %in_102 : i32
      linalg.yield %180 : i32
    } -> tensor<1x64xi32>
    %12 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%11 : tensor<1x64xi32>) outs(%4 : tensor<1x64xi64>) {
    ^bb0(%in: i32, %out: i64):
      %180 = arith.extsi %in : i32 to i64
      linalg.yield %180 : i64
    } -> tensor<1x64xi64>
    %13 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%12 : tensor<1x64xi64>) outs(%4 : tensor<1x64xi64>) {
    ^bb0(%in: i64, %out: i64):
      %180 = arith.addi %in, %c1_i64 : i64
      linalg.yield %180 : i64
    } -> tensor<1x64xi64>
    %14 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%13 : tensor<1x64xi64>) outs(%6 : tensor<1x64xi64>) {
    ^bb0(%in: i64, %out: i64):
      %180 = arith.index_cast %in : i64 to index
      %181 = arith.cmpi slt, %180, %c514 : index
      cf.assert %181, "index must be smaller than dim size"
      %182 = arith.cmpi sge, %in, %c0_i64 : i64
      cf.assert %182, "index must be larger or equal to 0"
      %extracted = tensor.extract %cst_48[%c0, %180] : tensor<1x514xi64>
      linalg.yield %extracted : i64
    } -> tensor<1x64xi64>
    %15 = tensor.empty() : tensor<1x64x128xf32>
    %16 = linalg.generic {indexing_maps = [#map1, #map2], iterator_types = ["parallel", "parallel", "parallel"]} ins(%arg0 : tensor<1x64xi64>) outs(%15 : tensor<1x64x128xf32>) {
    ^bb0(%in: i64, %out: f32):
      %180 = arith.index_cast %in : i64 to index
      %181 = linalg.index 2 : index
      %182 = arith.cmpi slt, %180, %c1024 : index
      cf.assert %182, "index must be smaller than dim size"
      %183 = arith.cmpi sge, %in, %c0_i64 : i64
      cf.assert %183, "index must be larger or equal to 0"
      %extracted = tensor.extract %cst_43[%180, %181] : tensor<1024x128xf32>
      linalg.yield %extracted : f32
    } -> tensor<1x64x128xf32>
    %17 = linalg.generic {indexing_maps = [#map1, #map2], iterator_types = ["parallel", "parallel", "parallel"]} ins(%14 : tensor<1x64xi64>) outs(%15 : tensor<1x64x128xf32>) {
    ^bb0(%in: i64, %out: f32):
      %180 = arith.index_cast %in : i64 to index
      %181 = linalg.index 2 : index
      %182 = arith.cmpi slt, %180, %c2 : index
      cf.assert %182, "index must be smaller than dim size"
      %183 = arith.cmpi sge, %in, %c0_i64 : i64
      cf.assert %183, "index must be larger or equal to 0"
      %extracted = tensor.extract %cst_42[%180, %181] : tensor<2x128xf32>
      linalg.yield %extracted : f32
    } -> tensor<1x64x128xf32>
    %18 = linalg.generic {indexing_maps = [#map2, #map2, #map2], iterator_types = ["parallel", "parallel", "parallel"]} ins(%16, %17 : tensor<1x64x128xf32>, tensor<1x64x128xf32>) outs(%15 : tensor<1x64x128xf32>) {
    ^bb0(%in: f32, %in_102: f32, %out: f32):
      %180 = arith.addf %in, %in_102 : f32
      linalg.yield %180 : f32
    } -> tensor<1x64x128xf32>
    %19 = linalg.generic {indexing_maps = [#map1, #map2], iterator_types = ["parallel", "parallel", "parallel"]} ins(%13 : tensor<1x64xi64>) outs(%15 : tensor<1x64x128xf32>) {
    ^bb0(%in: i64, %out: f32):
      %180 = arith.index_cast %in : i64 to index
      %181 = linalg.index 2 : index
      %182 = arith.cmpi slt, %180, %c514 : index
      cf.assert %182, "index must be smaller than dim size"
      %183 = arith.cmpi sge, %in, %c0_i64 : i64
      cf.assert %183, "index must be larger or equal to 0"
      %extracted = tensor.extract %cst_41[%180, %181] : tensor<514x128xf32>
      linalg.yield %extracted : f32
    } -> tensor<1x64x128xf32>
    %20 = linalg.generic {indexing_maps = [#map2, #map2, #map2], iterator_types = ["parallel", "parallel", "parallel"]} ins(%18, %19 : tensor<1x64x128xf32>, tensor<1x64x128xf32>) outs(%15 : tensor<1x64x128xf32>) {
    ^bb0(%in: f32, %in_102: f32, %out: f32):
      %180 = arith.addf %in, %in_102 : f32
      linalg.yield %180 : f32
    } -> tensor<1x64x128xf32>
    return %20 : tensor<1x64x128xf32>
}
"""


def test_extends_fuse_and_clone_as_iree_rewrites_them():
    """Bit-extends are cloned into their readers' dispatches, but: an i1
    producer fuses into its extend first (``cmpi`` + ``extui``, stored as
    i32 for its two readers); a scan takes no clone (the ``extsi`` before
    the cumulative sum is its own dispatch); and no producer fuses into a
    bit-extend read by several ops (the ``muli`` before ``extsi`` + ``addi``,
    read by two gathers). iree-compile: six dispatches, these ops
    (``elementwise_64_i64xi32``, ``elementwise_64_i32xi64``, ``scan``,
    ``elementwise_64_i64xi32``, ``elementwise_64_i32``,
    ``elementwise_broadcast_64x128``)."""
    regions = partition_dispatches(_POSITION_IDS)
    assert [r.lines for r in regions] == [
        (12, 18),
        (24,),
        (32,),
        (37,),
        (42,),
        (52, 57, 68, 79, 90, 95, 106),
    ]


_NORM_TRANSPOSE_CONV = """#x = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#r = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
func.func @main(%a: tensor<1x8x8x16xf32>, %b: tensor<1x8x8x16xf32>, %w: tensor<32x16x2x2xf32>) -> (tensor<1x8x8x16xf32>, tensor<1x32x4x4xf32>) {
  %zero = arith.constant 0.000000e+00 : f32
  %er = tensor.empty() : tensor<1x8x8xf32>
  %fr = linalg.fill ins(%zero : f32) outs(%er : tensor<1x8x8xf32>) -> tensor<1x8x8xf32>
  %e = tensor.empty() : tensor<1x8x8x16xf32>
  %s1 = linalg.generic {indexing_maps = [#x, #r], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%a : tensor<1x8x8x16xf32>) outs(%fr : tensor<1x8x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = arith.addf %in, %out : f32
    linalg.yield %0 : f32
  } -> tensor<1x8x8xf32>
  %n1 = linalg.generic {indexing_maps = [#x, #r, #x], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%a, %s1 : tensor<1x8x8x16xf32>, tensor<1x8x8xf32>) outs(%e : tensor<1x8x8x16xf32>) {
  ^bb0(%in: f32, %m: f32, %out: f32):
    %0 = arith.subf %in, %m : f32
    linalg.yield %0 : f32
  } -> tensor<1x8x8x16xf32>
  %s2 = linalg.generic {indexing_maps = [#x, #r], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%b : tensor<1x8x8x16xf32>) outs(%fr : tensor<1x8x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = arith.addf %in, %out : f32
    linalg.yield %0 : f32
  } -> tensor<1x8x8xf32>
  %n2 = linalg.generic {indexing_maps = [#x, #r, #x], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%b, %s2 : tensor<1x8x8x16xf32>, tensor<1x8x8xf32>) outs(%e : tensor<1x8x8x16xf32>) {
  ^bb0(%in: f32, %m: f32, %out: f32):
    %0 = arith.subf %in, %m : f32
    linalg.yield %0 : f32
  } -> tensor<1x8x8x16xf32>
  %et = tensor.empty() : tensor<1x16x8x8xf32>
  %t = linalg.transpose ins(%n2 : tensor<1x8x8x16xf32>) outs(%et : tensor<1x16x8x8xf32>) permutation = [0, 3, 1, 2]
  %ec = tensor.empty() : tensor<1x32x4x4xf32>
  %fc = linalg.fill ins(%zero : f32) outs(%ec : tensor<1x32x4x4xf32>) -> tensor<1x32x4x4xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%t, %w : tensor<1x16x8x8xf32>, tensor<32x16x2x2xf32>) outs(%fc : tensor<1x32x4x4xf32>) -> tensor<1x32x4x4xf32>
  return %n1, %c : tensor<1x8x8x16xf32>, tensor<1x32x4x4xf32>
}
"""


def test_a_transpose_read_by_a_nchw_convolution_moves_into_it():
    """A transpose (NHWC -> NCHW) whose one reader is a ``conv_2d_nchw_fchw``
    is folded into the generalized convolution's input map (IREE's conv
    dispatch loads the NHWC tensor), so the normalization before it is the
    same executable as one without the transpose (iree-compile: two
    executables, ``reduction_64x16`` run twice and ``conv_32x4x4x16x2x2``;
    a ConvNeXt's last LayerNorm of a stage before the downsample)."""
    regions = partition_dispatches(_NORM_TRANSPOSE_CONV)
    assert [(r.kind, r.calls, r.lines) for r in regions] == [
        ("reduction", 2, (8, 13)),
        ("conv", 1, (29, 32)),
    ]


_BIASED_CONVS = """
func.func @main(%a: tensor<1x16x8x8xf32>, %b: tensor<1x16x8x8xf32>, %w: tensor<16x3x3xf32>) -> (tensor<1x16x6x6xf32>, tensor<1x16x6x6xf32>) {
  %b1 = arith.constant dense<[0.5, 0.25, 0.125, 1.5, 0.5, 0.25, 0.125, 1.5, 0.5, 0.25, 0.125, 1.5, 0.5, 0.25, 0.125, 1.5]> : tensor<16xf32>
  %b2 = arith.constant dense<[1.5, 0.75, 0.125, 2.5, 1.5, 0.75, 0.125, 2.5, 1.5, 0.75, 0.125, 2.5, 1.5, 0.75, 0.125, 2.5]> : tensor<16xf32>
  %e = tensor.empty() : tensor<1x16x6x6xf32>
  %i1 = linalg.broadcast ins(%b1 : tensor<16xf32>) outs(%e : tensor<1x16x6x6xf32>) dimensions = [0, 2, 3]
  %c1 = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%a, %w : tensor<1x16x8x8xf32>, tensor<16x3x3xf32>) outs(%i1 : tensor<1x16x6x6xf32>) -> tensor<1x16x6x6xf32>
  %i2 = linalg.broadcast ins(%b2 : tensor<16xf32>) outs(%e : tensor<1x16x6x6xf32>) dimensions = [0, 2, 3]
  %c2 = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%b, %w : tensor<1x16x8x8xf32>, tensor<16x3x3xf32>) outs(%i2 : tensor<1x16x6x6xf32>) -> tensor<1x16x6x6xf32>
  return %c1, %c2 : tensor<1x16x6x6xf32>, tensor<1x16x6x6xf32>
}
"""


def test_a_broadcast_constant_init_is_inlined_by_the_constant_size():
    """A broadcast is no hoisted leaf (const-eval leaves it to fuse into its
    reader): a convolution's bias broadcast into its init is in the
    convolution's dispatch, the 16-float bias inlined (64 bytes), so two
    depthwise convolutions with their own biases are two executables
    (iree-compile: ``conv_6x6x16x3x3`` twice, two executables)."""
    regions = partition_dispatches(_BIASED_CONVS)
    assert [(r.kind, r.calls) for r in regions] == [("conv", 1), ("conv", 1)]


_MATMUL_TRANSPOSED_BACK = """#x = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#c = affine_map<(d0, d1, d2, d3) -> (d3)>
func.func @main(%a: tensor<16x32xf32>, %w: tensor<32x8xf32>, %g: tensor<8xf32>, %r: tensor<1x8x4x4xf32>) -> tensor<1x4x4x8xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %e = tensor.empty() : tensor<16x8xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<16x8xf32>) -> tensor<16x8xf32>
  %m = linalg.matmul ins(%a, %w : tensor<16x32xf32>, tensor<32x8xf32>) outs(%f : tensor<16x8xf32>) -> tensor<16x8xf32>
  %x = tensor.expand_shape %m [[0, 1, 2], [3]] output_shape [1, 4, 4, 8] : tensor<16x8xf32> into tensor<1x4x4x8xf32>
  %e2 = tensor.empty() : tensor<1x4x4x8xf32>
  %s = linalg.generic {indexing_maps = [#x, #c, #x], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x, %g : tensor<1x4x4x8xf32>, tensor<8xf32>) outs(%e2 : tensor<1x4x4x8xf32>) {
  ^bb0(%in: f32, %gi: f32, %out: f32):
    %0 = arith.mulf %in, %gi : f32
    linalg.yield %0 : f32
  } -> tensor<1x4x4x8xf32>
  %e3 = tensor.empty() : tensor<1x8x4x4xf32>
  %t = linalg.transpose ins(%s : tensor<1x4x4x8xf32>) outs(%e3 : tensor<1x8x4x4xf32>) permutation = [0, 3, 1, 2]
  %y = linalg.generic {indexing_maps = [#x, #x, #x], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%r, %t : tensor<1x8x4x4xf32>, tensor<1x8x4x4xf32>) outs(%e3 : tensor<1x8x4x4xf32>) {
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %0 = arith.addf %in, %in2 : f32
    linalg.yield %0 : f32
  } -> tensor<1x8x4x4xf32>
  %t2 = linalg.transpose ins(%y : tensor<1x8x4x4xf32>) outs(%e2 : tensor<1x4x4x8xf32>) permutation = [0, 2, 3, 1]
  return %t2 : tensor<1x4x4x8xf32>
}
"""


def test_a_reshape_sinks_past_a_chain_of_transposes():
    """``SinkReshapes`` moves the matmul's expand_shape past every transpose
    that keeps each expanded group of dims together, each transpose seen in
    the layout the one before it wrote: a ConvNeXt block's layer scale
    (NHWC), transpose to NCHW, residual add and transpose back are the
    matmul's consumers (iree-compile: one dispatch, ``matmul_16x8x32``)."""
    (region,) = partition_dispatches(_MATMUL_TRANSPOSED_BACK)
    assert (region.kind, region.lines) == ("matmul", (7, 10, 16, 17, 22))


_FLIP_READ_TWICE = """#m = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @main(%a: tensor<2x8x16xf32>) -> tensor<4x8x16xf32> {
  %c1 = arith.constant 1 : index
  %two = arith.constant 2.000000e+00 : f32
  %e = tensor.empty() : tensor<2x8x16xf32>
  %flip = linalg.generic {indexing_maps = [#m], iterator_types = ["parallel", "parallel", "parallel"]} outs(%e : tensor<2x8x16xf32>) {
  ^bb0(%out: f32):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %k = linalg.index 2 : index
    %r = arith.subi %c1, %i : index
    %x = tensor.extract %a[%r, %j, %k] : tensor<2x8x16xf32>
    linalg.yield %x : f32
  } -> tensor<2x8x16xf32>
  %d = linalg.generic {indexing_maps = [#m, #m], iterator_types = ["parallel", "parallel", "parallel"]} ins(%flip : tensor<2x8x16xf32>) outs(%e : tensor<2x8x16xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = arith.mulf %in, %two : f32
    linalg.yield %0 : f32
  } -> tensor<2x8x16xf32>
  %cat = tensor.concat dim(0) %flip, %d : (tensor<2x8x16xf32>, tensor<2x8x16xf32>) -> tensor<4x8x16xf32>
  return %cat : tensor<4x8x16xf32>
}
"""

_FLIP_OF_A_TRANSPOSE = """#m = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @main(%a: tensor<4x16x3xf32>, %b: tensor<4x3x16xf32>) -> tensor<4x3x16xf32> {
  %c15 = arith.constant 15 : index
  %e = tensor.empty() : tensor<4x3x16xf32>
  %t = linalg.transpose ins(%a : tensor<4x16x3xf32>) outs(%e : tensor<4x3x16xf32>) permutation = [0, 2, 1]
  %flip = linalg.generic {indexing_maps = [#m, #m], iterator_types = ["parallel", "parallel", "parallel"]} ins(%b : tensor<4x3x16xf32>) outs(%e : tensor<4x3x16xf32>) {
  ^bb0(%in: f32, %out: f32):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %k = linalg.index 2 : index
    %r = arith.subi %c15, %k : index
    %x = tensor.extract %t[%i, %j, %r] : tensor<4x3x16xf32>
    linalg.yield %x : f32
  } -> tensor<4x3x16xf32>
  return %flip : tensor<4x3x16xf32>
}
"""


def test_an_index_only_op_is_cloned_into_each_reader():
    """An op that reads none of its operands (a flip: ``linalg.index`` and
    ``tensor.extract``) is cloned by elementwise fusion into each
    all-parallel reader, whatever its uses; a concat reading it keeps a
    dispatch of its own that writes it (iree-compile: two executables, the
    flip and the flip with its ``mulf``)."""
    regions = partition_dispatches(_FLIP_READ_TWICE)
    assert [r.lines for r in regions] == [(6,), (15,)]
    assert "tensor.extract" in regions[1].text  # the clone computes it again


def test_a_transpose_read_by_extracts_only_is_none():
    """A transpose whose readers read it with ``tensor.extract`` only (a flip)
    forms no dispatch: the extracts read its source at permuted indices
    (iree-compile: one dispatch, ``elementwise_broadcast_192``)."""
    (region,) = partition_dispatches(_FLIP_OF_A_TRANSPOSE)
    assert region.lines == (6,)


_CAUSAL_MASK = """#m = affine_map<(d0, d1) -> (d0, d1)>
#r = affine_map<(d0, d1) -> (0, d1)>
#c = affine_map<(d0, d1) -> (d0, 0)>
#s = affine_map<(d0, d1) -> ()>
#v = affine_map<(d0) -> (d0)>
#b4 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#m4 = affine_map<(d0, d1, d2) -> (d1, d2)>
func.func @main(%x: tensor<2xNxNxf32>) -> tensor<2xNxNxf32> {
  %c0_i64 = arith.constant 0 : i64
  %cst_3 = arith.constant dense<0.000000e+00> : tensor<f32>
  %cst_4 = arith.constant dense<0xFF800000> : tensor<f32>
  %cst_5 = arith.constant dense<true> : tensor<NxNxi1>
  %11 = tensor.empty() : tensor<Nxi64>
  %12 = linalg.generic {indexing_maps = [#v], iterator_types = ["parallel"]} outs(%11 : tensor<Nxi64>) {
  ^bb0(%out: i64):
    %103 = linalg.index 0 : index
    %104 = arith.index_cast %103 : index to i64
    linalg.yield %104 : i64
  } -> tensor<Nxi64>
  %expanded_33 = tensor.expand_shape %12 [[0, 1]] output_shape [1, N] : tensor<Nxi64> into tensor<1xNxi64>
  %expanded_34 = tensor.expand_shape %12 [[0, 1]] output_shape [N, 1] : tensor<Nxi64> into tensor<Nx1xi64>
  %13 = tensor.empty() : tensor<NxNxi64>
  %14 = linalg.generic {indexing_maps = [#r, #c, #m], iterator_types = ["parallel", "parallel"]} ins(%expanded_33, %expanded_34 : tensor<1xNxi64>, tensor<Nx1xi64>) outs(%13 : tensor<NxNxi64>) {
  ^bb0(%in: i64, %in_52: i64, %out: i64):
    %103 = arith.subi %in, %in_52 : i64
    linalg.yield %103 : i64
  } -> tensor<NxNxi64>
  %15 = tensor.empty() : tensor<NxNxi1>
  %16 = linalg.generic {indexing_maps = [#m, #m], iterator_types = ["parallel", "parallel"]} ins(%14 : tensor<NxNxi64>) outs(%15 : tensor<NxNxi1>) {
  ^bb0(%in: i64, %out: i1):
    %103 = arith.cmpi sle, %in, %c0_i64 : i64
    linalg.yield %103 : i1
  } -> tensor<NxNxi1>
  %17 = linalg.generic {indexing_maps = [#m, #m, #m], iterator_types = ["parallel", "parallel"]} ins(%16, %cst_5 : tensor<NxNxi1>, tensor<NxNxi1>) outs(%15 : tensor<NxNxi1>) {
  ^bb0(%in: i1, %in_52: i1, %out: i1):
    %103 = arith.andi %in, %in_52 : i1
    linalg.yield %103 : i1
  } -> tensor<NxNxi1>
  %18 = tensor.empty() : tensor<NxNxf32>
  %19 = linalg.generic {indexing_maps = [#m, #s, #s, #m], iterator_types = ["parallel", "parallel"]} ins(%17, %cst_3, %cst_4 : tensor<NxNxi1>, tensor<f32>, tensor<f32>) outs(%18 : tensor<NxNxf32>) {
  ^bb0(%in: i1, %in_52: f32, %in_53: f32, %out: f32):
    %103 = arith.select %in, %in_52, %in_53 : f32
    linalg.yield %103 : f32
  } -> tensor<NxNxf32>
  %e = tensor.empty() : tensor<2xNxNxf32>
  %y = linalg.generic {indexing_maps = [#b4, #m4, #b4], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x, %19 : tensor<2xNxNxf32>, tensor<NxNxf32>) outs(%e : tensor<2xNxNxf32>) {
  ^bb0(%a: f32, %b: f32, %out: f32):
    %0 = arith.addf %a, %b : f32
    linalg.yield %0 : f32
  } -> tensor<2xNxNxf32>
  return %y : tensor<2xNxNxf32>
}
"""


@pytest.mark.parametrize(
    ("n", "kinds"), [(64, ["initializer", "elementwise"]), (512, ["elementwise"])]
)
def test_a_global_much_larger_than_its_constants_is_not_hoisted(n, kinds):
    """Const-eval hoists no value more than 1 MiB larger than the constants
    it is computed from (``doesHoistingIncreaseSizeSignificantly``): a
    causal mask's position differences over 64 positions (32 KiB of i64)
    are a global computed by an initializer, over 512 (2 MiB) they are
    computed in the dispatch that reads them (iree-compile: two
    executables, ``_initializer_0_..._elementwise_broadcast_4096_i64`` and
    the add, and one)."""
    regions = partition_dispatches(_CAUSAL_MASK.replace("N", str(n)))
    assert [r.kind for r in regions] == kinds


_TRANSPOSE_READ_TWICE = """#map = affine_map<(d0, d1) -> (d0, d1)>
func.func @main(%a: tensor<8x16xf32>) -> tensor<16xWxf32> {
  %cst = arith.constant 2.000000e+00 : f32
  %e = tensor.empty() : tensor<16x8xf32>
  %t = linalg.transpose ins(%a : tensor<8x16xf32>) outs(%e : tensor<16x8xf32>) permutation = [1, 0]
  %m = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%t : tensor<16x8xf32>) outs(%e : tensor<16x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = arith.mulf %in, %cst : f32
    linalg.yield %0 : f32
  } -> tensor<16x8xf32>
  SECOND_READER
}
"""


@pytest.mark.parametrize(
    ("width", "second_reader", "kinds"),
    [
        # a concat copies the transpose: it is computed in a dispatch of its
        # own, and cloned into the mulf's
        (
            16,
            "%c = tensor.concat dim(1) %t, %m : (tensor<16x8xf32>, "
            "tensor<16x8xf32>) -> tensor<16x16xf32>\n"
            "  return %c : tensor<16x16xf32>",
            ["elementwise", "elementwise", "memcpy", "memcpy"],
        ),
        # read by two elementwise ops only: cloned into both, no dispatch
        (
            8,
            "%e2 = tensor.empty() : tensor<16x8xf32>\n"
            "  %s = linalg.generic {indexing_maps = [#map, #map, #map], "
            'iterator_types = ["parallel", "parallel"]} ins(%t, %m : '
            "tensor<16x8xf32>, tensor<16x8xf32>) outs(%e2 : tensor<16x8xf32>) {\n"
            "  ^bb0(%x: f32, %y: f32, %o: f32):\n"
            "    %1 = arith.addf %x, %y : f32\n"
            "    linalg.yield %1 : f32\n"
            "  } -> tensor<16x8xf32>\n"
            "  return %s : tensor<16x8xf32>",
            ["elementwise"],
        ),
    ],
)
def test_a_copy_read_by_a_concat_is_cloned_into_its_elementwise_readers(
    width, second_reader, kinds
):
    """``areFusableAsElementwiseOps`` fuses a producer that only copies (a
    transpose) into any consumer, whatever its other uses; elementwise
    fusion keeps the producer for the uses it does not replace, so a
    transpose that a ``tensor.concat`` also reads is a dispatch of its own
    (iree-compile: ``transpose_8x16_f32``, ``elementwise_transpose_16x8_f32``
    and two ``slow_memcpy``; with two elementwise readers, one
    ``elementwise_transpose_16x8_f32``)."""
    text = _TRANSPOSE_READ_TWICE.replace("SECOND_READER", second_reader)
    regions = partition_dispatches(text.replace("W", str(width)))
    assert [r.kind for r in regions] == kinds


_BROADCAST_COLLAPSE_TRANSPOSE = """#map = affine_map<(d0, d1, d2) -> (d1, d2)>
#map1 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @main(%arg0: tensor<25x9xf32>) -> RESULT {
  %cst = arith.constant 0.000000e+00 : f32
  %1 = tensor.empty() : tensor<2x25x9xf32>
  %2 = linalg.generic {indexing_maps = [#map, #map1], iterator_types = ["parallel", "parallel", "parallel"]} ins(%arg0 : tensor<25x9xf32>) outs(%1 : tensor<2x25x9xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<2x25x9xf32>
  %collapsed = tensor.collapse_shape %2 [[0, 1], [2]] : tensor<2x25x9xf32> into tensor<50x9xf32>
  %3 = tensor.empty() : tensor<9x50xf32>
  %t = linalg.transpose ins(%collapsed : tensor<50x9xf32>) outs(%3 : tensor<9x50xf32>) permutation = [1, 0]
  TAIL
}
"""


@pytest.mark.parametrize(
    ("result", "tail", "kinds"),
    [
        ("tensor<9x50xf32>", "return %t : tensor<9x50xf32>", ["elementwise"]),
        # the pad then reads a collapse of the fused op: a copy
        (
            "tensor<9x56xf32>",
            "%p = tensor.pad %t low[0, 4] high[0, 2] {\n"
            "  ^bb0(%a: index, %b: index):\n"
            "    tensor.yield %cst : f32\n"
            "  } : tensor<9x50xf32> to tensor<9x56xf32>\n"
            "  return %p : tensor<9x56xf32>",
            ["elementwise", "memcpy"],
        ),
    ],
)
def test_a_transpose_moves_above_a_collapse_into_its_producer(result, tail, kinds):
    """``BubbleTransposeThroughCollapseShape``: a ``linalg.transpose`` of a
    collapse_shape that nothing else reads moves above it (each collapsed
    group of dims moves as a unit) and fuses into the producer, a repeat's
    broadcast (iree-compile: one ``elementwise_broadcast_9x2x25_f32``; with
    a pad after the transpose, that and a ``slow_memcpy``)."""
    text = _BROADCAST_COLLAPSE_TRANSPOSE.replace("RESULT", result)
    regions = partition_dispatches(text.replace("TAIL", tail))
    assert [r.kind for r in regions] == kinds


_SLICE_OF_EXP = """#map = affine_map<(d0, d1) -> (d0, d1)>
func.func @main(%a: tensor<16x32xf32>) -> tensor<16x8xf32> {
  %e = tensor.empty() : tensor<16x32xf32>
  %m = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%a : tensor<16x32xf32>) outs(%e : tensor<16x32xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = math.exp %in : f32
    linalg.yield %0 : f32
  } -> tensor<16x32xf32>
  %s = tensor.extract_slice %m[0, 4] [16, 8] [1, STRIDE] : tensor<16x32xf32> to tensor<16x8xf32>
  return %s : tensor<16x8xf32>
}
"""


@pytest.mark.parametrize(
    ("stride", "kinds"), [(1, ["elementwise"]), (2, ["elementwise", "memcpy"])]
)
def test_a_unit_stride_slice_moves_above_its_only_producer(stride, kinds):
    """``BubbleUpExtract``: a unit-stride ``tensor.extract_slice`` that is
    the only use of a ``linalg.generic`` (projected-permutation maps) moves
    above it, and the generic computes the slice: no copy of a returned
    slice (iree-compile: one ``elementwise_16x8_f32``; with stride 2,
    ``elementwise_512_f32`` and a ``slow_memcpy``)."""
    regions = partition_dispatches(_SLICE_OF_EXP.replace("STRIDE", str(stride)))
    assert [r.kind for r in regions] == kinds


_WHOLE_SLICE = """#map = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @main(%a: tensor<16x1x8xf32>) -> tensor<16x1x8xf32> {
  %e = tensor.empty() : tensor<16x1x8xf32>
  %m = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel"]} ins(%a : tensor<16x1x8xf32>) outs(%e : tensor<16x1x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = math.exp %in : f32
    linalg.yield %0 : f32
  } -> tensor<16x1x8xf32>
  %s = tensor.extract_slice %m[0, 0, 0] [16, 1, 8] [1, STRIDE, 1] : tensor<16x1x8xf32> to tensor<16x1x8xf32>
  return %s : tensor<16x1x8xf32>
}
"""


@pytest.mark.parametrize(
    ("stride", "kinds"), [(1, ["elementwise"]), (2, ["elementwise", "memcpy"])]
)
def test_a_returned_slice_with_a_stride_over_a_unit_dim_is_copied(stride, kinds):
    """A slice of the whole tensor folds away only with unit strides: a
    stride of 2 over a unit dim keeps it, and a returned slice with a
    stride is copied out (iree-compile: ``elementwise_128_f32``, and with
    stride 2 a ``slow_memcpy`` too)."""
    regions = partition_dispatches(_WHOLE_SLICE.replace("STRIDE", str(stride)))
    assert [r.kind for r in regions] == kinds


_GROUPED_CONVOLUTIONS = """#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @main(%arg0: tensor<1x4x16x16xf32>, %w1: tensor<2x4x2x3x3xf32>, %w2: tensor<2x4x4x3x3xf32>) -> tensor<1x8x16x16xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %padded = tensor.pad %arg0 low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%a: index, %b: index, %c: index, %d: index):
    tensor.yield %cst : f32
  } : tensor<1x4x16x16xf32> to tensor<1x4x18x18xf32>
  %0 = tensor.empty() : tensor<1x8x16x16xf32>
  %expanded = tensor.expand_shape %padded [[0], [1, 2], [3], [4]] output_shape [1, 2, 2, 18, 18] : tensor<1x4x18x18xf32> into tensor<1x2x2x18x18xf32>
  %expanded_3 = tensor.expand_shape %0 [[0], [1, 2], [3], [4]] output_shape [1, 2, 4, 16, 16] : tensor<1x8x16x16xf32> into tensor<1x2x4x16x16xf32>
  %1 = linalg.fill ins(%cst : f32) outs(%expanded_3 : tensor<1x2x4x16x16xf32>) -> tensor<1x2x4x16x16xf32>
  %2 = linalg.conv_2d_ngchw_gfchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%expanded, %w1 : tensor<1x2x2x18x18xf32>, tensor<2x4x2x3x3xf32>) outs(%1 : tensor<1x2x4x16x16xf32>) -> tensor<1x2x4x16x16xf32>
  %collapsed = tensor.collapse_shape %2 [[0], [1, 2], [3], [4]] : tensor<1x2x4x16x16xf32> into tensor<1x8x16x16xf32>
  %3 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%collapsed : tensor<1x8x16x16xf32>) outs(%0 : tensor<1x8x16x16xf32>) {
  ^bb0(%in: f32, %out: f32):
    %8 = arith.maximumf %in, %cst : f32
    linalg.yield %8 : f32
  } -> tensor<1x8x16x16xf32>
  %padded_4 = tensor.pad %3 low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%a: index, %b: index, %c: index, %d: index):
    tensor.yield %cst : f32
  } : tensor<1x8x16x16xf32> to tensor<1x8x18x18xf32>
  %expanded_5 = tensor.expand_shape %padded_4 [[0], [1, 2], [3], [4]] output_shape [1, 2, 4, 18, 18] : tensor<1x8x18x18xf32> into tensor<1x2x4x18x18xf32>
  %5 = linalg.fill ins(%cst : f32) outs(%expanded_3 : tensor<1x2x4x16x16xf32>) -> tensor<1x2x4x16x16xf32>
  %6 = linalg.conv_2d_ngchw_gfchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%expanded_5, %w2 : tensor<1x2x4x18x18xf32>, tensor<2x4x4x3x3xf32>) outs(%5 : tensor<1x2x4x16x16xf32>) -> tensor<1x2x4x16x16xf32>
  %collapsed_8 = tensor.collapse_shape %6 [[0], [1, 2], [3], [4]] : tensor<1x2x4x16x16xf32> into tensor<1x8x16x16xf32>
  return %collapsed_8 : tensor<1x8x16x16xf32>
}
"""


def test_a_pad_after_a_grouped_convolution_is_a_copy():
    """A grouped convolution's result is collapsed (groups x channels) before
    its activation; the collapse sinks below the activation, which fuses
    into the convolution's dispatch, so the pad that follows reads a
    reshape and is a copy of its own, like the input's (iree-compile:
    ``slow_memcpy``, ``conv_2x4x16x16x2x3x3_f32``, ``slow_memcpy``,
    ``conv_2x4x16x16x4x3x3_f32``)."""
    regions = partition_dispatches(_GROUPED_CONVOLUTIONS)
    assert [r.kind for r in regions] == ["memcpy", "conv", "memcpy", "conv"]


_MAX_POOL = """func.func @main(%arg0: tensor<4x3x4x4xf16>) -> tensor<4x3xOUTxf16> {
  %cst = arith.constant 0xFC00 : f16
  %0 = tensor.empty() : tensor<4x3xOUTxf16>
  %1 = linalg.fill ins(%cst : f16) outs(%0 : tensor<4x3xOUTxf16>) -> tensor<4x3xOUTxf16>
  %2 = tensor.empty() : tensor<WINxf16>
  %3 = linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<STRIDE> : vector<2xi64>} ins(%arg0, %2 : tensor<4x3x4x4xf16>, tensor<WINxf16>) outs(%1 : tensor<4x3xOUTxf16>) -> tensor<4x3xOUTxf16>
  return %3 : tensor<4x3xOUTxf16>
}
"""


@pytest.mark.parametrize(
    ("window", "stride", "out", "kinds"),
    [
        ("1x1", 1, "4x4", []),
        ("2x2", 1, "3x3", ["pooling"]),
        ("1x1", 2, "2x2", ["pooling"]),
    ],
)
def test_a_max_pool_over_one_element_from_minus_infinity_is_no_dispatch(
    window, stride, out, kinds
):
    """A max pool whose window is one element, with unit strides and an init
    of -inf, folds to its input (an adaptive max pool to the input's own
    size; iree-compile: no executable); a 2x2 window, or a stride of 2 (a
    subsample), is one (``conv_4x3x3x3x2x2_f16``, ``generic_4x3x2x2_f16``)."""
    text = _MAX_POOL.replace("WIN", window).replace("STRIDE", str(stride))
    regions = partition_dispatches(text.replace("OUT", out))
    assert [r.kind for r in regions] == kinds


_PADDED_SLICE = """#map = affine_map<(d0, d1) -> (d0, d1)>
func.func @main(%a: tensor<1x16xf32>) -> tensor<1x20xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %e = tensor.empty() : tensor<1x16xf32>
  %m = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%a : tensor<1x16xf32>) outs(%e : tensor<1x16xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = math.exp %in : f32
    linalg.yield %0 : f32
  } -> tensor<1x16xf32>
  %c = tensor.concat dim(1) %a, %m : (tensor<1x16xf32>, tensor<1x16xf32>) -> tensor<1x32xf32>
  %s = tensor.extract_slice %c[0, 0] [1, 16] [STRIDE, 1] : tensor<1x32xf32> to tensor<1x16xf32>
  %p = tensor.pad %s low[0, 1] high[0, 3] {
  ^bb0(%i: index, %j: index):
    tensor.yield %cst : f32
  } : tensor<1x16xf32> to tensor<1x20xf32>
  return %p : tensor<1x20xf32>
}
"""


@pytest.mark.parametrize(
    ("stride", "kinds"), [(1, ["elementwise"]), (2, ["elementwise", "memcpy"])]
)
def test_a_pad_of_a_strided_slice_is_a_copy(stride, kinds):
    """A pad writing one contiguous block is no dispatch, but not when its
    source is a slice with a stride other than 1 (even over a unit dim): the
    slice is copied into the padded tensor by a dispatch (iree-compile:
    ``elementwise_16_f32``; with stride 2, and a ``slow_memcpy``)."""
    regions = partition_dispatches(_PADDED_SLICE.replace("STRIDE", str(stride)))
    assert [r.kind for r in regions] == kinds


_CONCAT_OF_SLICE = """#map = affine_map<(d0, d1) -> (d0, d1)>
func.func @main(%a: tensor<16x8xf32>) -> tensor<16x8xf32> {
  %e = tensor.empty() : tensor<16x8xf32>
  %m = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%a : tensor<16x8xf32>) outs(%e : tensor<16x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = math.exp %in : f32
    linalg.yield %0 : f32
  } -> tensor<16x8xf32>
  %s = tensor.extract_slice %m[0, 0] [8, 8] [STRIDE, 1] : tensor<16x8xf32> to tensor<8x8xf32>
  %e2 = tensor.empty() : tensor<8x8xf32>
  %n = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%s : tensor<8x8xf32>) outs(%e2 : tensor<8x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = arith.negf %in : f32
    linalg.yield %0 : f32
  } -> tensor<8x8xf32>
  %c = tensor.concat dim(0) %s, %n : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<16x8xf32>
  return %c : tensor<16x8xf32>
}
"""


@pytest.mark.parametrize(
    ("stride", "kinds"),
    [(1, ["elementwise"]), (2, ["elementwise", "elementwise", "memcpy"])],
)
def test_a_concat_copies_a_strided_slice_in_a_dispatch(stride, kinds):
    """A concat along its outer dim writes each input as one contiguous
    block, with no dispatch, except a slice with a stride: that is copied by
    a dispatch (iree-compile: one ``elementwise_64_f32``; with stride 2,
    ``elementwise_128_f32``, ``elementwise_8x8_f32`` and a ``slow_memcpy``)."""
    regions = partition_dispatches(_CONCAT_OF_SLICE.replace("STRIDE", str(stride)))
    assert [r.kind for r in regions] == kinds


_UNIT_DIM_TWINS = """#map = affine_map<(d0) -> (d0)>
#map2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @main(%x: tensor<32xf32>) -> (tensor<32xf32>, tensor<32x1xf32>) {
  %e = tensor.empty() : tensor<32xf32>
  %a = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%x : tensor<32xf32>) outs(%e : tensor<32xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = math.exp %in : f32
    linalg.yield %0 : f32
  } -> tensor<32xf32>
  %x2 = tensor.expand_shape %x [[0, 1]] output_shape [32, 1] : tensor<32xf32> into tensor<32x1xf32>
  %e2 = tensor.empty() : tensor<32x1xf32>
  %b = linalg.generic {indexing_maps = [#map2, #map2], iterator_types = ["parallel", "parallel"]} ins(%x2 : tensor<32x1xf32>) outs(%e2 : tensor<32x1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = math.exp %in : f32
    linalg.yield %0 : f32
  } -> tensor<32x1xf32>
  return %a, %b : tensor<32xf32>, tensor<32x1xf32>
}
"""


def test_ops_equal_but_for_unit_dims_are_computed_once():
    """IREE drops unit dims (``FoldUnitExtentDims``) before CSE, so an
    elementwise op on 32 values and its twin on the same values as 32x1 are
    one op (iree-compile: one ``elementwise_32_f32``, dispatched once)."""
    regions = partition_dispatches(_UNIT_DIM_TWINS)
    assert [(r.kind, r.calls) for r in regions] == [("elementwise", 1)]


_GQA_VALUES = """#map14 = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d3, d4)>
#map15 = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>
func.func @main(%p: tensor<2x32x32xf32>, ARG, %w: tensor<64x64xf32>) -> tensor<32x64xf32> {
  %cst = arith.constant 0.000000e+00 : f32
SLICE  %e = tensor.empty() : tensor<1x1x2x32x32xf32>
  %b = linalg.generic {indexing_maps = [#map14, #map15], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%v : tensor<1x1x32x32xf32>) outs(%e : tensor<1x1x2x32x32xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x1x2x32x32xf32>
  %c = tensor.collapse_shape %b [[0, 1, 2], [3], [4]] : tensor<1x1x2x32x32xf32> into tensor<2x32x32xf32>
  %e1 = tensor.empty() : tensor<2x32x32xf32>
  %f1 = linalg.fill ins(%cst : f32) outs(%e1 : tensor<2x32x32xf32>) -> tensor<2x32x32xf32>
  %m = linalg.batch_matmul ins(%p, %c : tensor<2x32x32xf32>, tensor<2x32x32xf32>) outs(%f1 : tensor<2x32x32xf32>) -> tensor<2x32x32xf32>
  %x = tensor.expand_shape %m [[0, 1], [2], [3]] output_shape [1, 2, 32, 32] : tensor<2x32x32xf32> into tensor<1x2x32x32xf32>
  %e2 = tensor.empty() : tensor<1x32x2x32xf32>
  %t = linalg.transpose ins(%x : tensor<1x2x32x32xf32>) outs(%e2 : tensor<1x32x2x32xf32>) permutation = [0, 2, 1, 3]
  %y = tensor.collapse_shape %t [[0, 1], [2, 3]] : tensor<1x32x2x32xf32> into tensor<32x64xf32>
  %e3 = tensor.empty() : tensor<32x64xf32>
  %f3 = linalg.fill ins(%cst : f32) outs(%e3 : tensor<32x64xf32>) -> tensor<32x64xf32>
  %r = linalg.matmul ins(%y, %w : tensor<32x64xf32>, tensor<64x64xf32>) outs(%f3 : tensor<32x64xf32>) -> tensor<32x64xf32>
  return %r : tensor<32x64xf32>
}
"""


@pytest.mark.parametrize(
    ("arg", "line"),
    [
        ("%v: tensor<1x1x32x32xf32>", ""),
        # the values are a slice of a fused key-value projection
        (
            "%kv: tensor<1x1x32x64xf32>",
            "  %v = tensor.extract_slice %kv[0, 0, 0, 32] [1, 1, 32, 32] [1, 1, 1, 1]"
            " : tensor<1x1x32x64xf32> to tensor<1x1x32x32xf32>\n",
        ),
    ],
)
def test_a_batch_matmul_of_values_repeated_over_heads_is_a_matmul(arg, line):
    """Grouped-query attention repeats one head's values over the heads
    (a broadcast along a dim that a collapse folds into the batch): IREE
    folds the unit dims, ``ConvertBatchMatmulToMatmul`` makes a matmul over
    heads x rows, and the transpose of its result is a dispatch of its own;
    a slice of the values is loaded by the matmul, not copied (iree-compile
    3.13, both variants: ``matmul_64x32x32``, ``transpose_2x32x32``,
    ``matmul_32x64x64``)."""
    regions = partition_dispatches(
        _GQA_VALUES.replace("ARG", arg).replace("SLICE", line)
    )
    assert [(r.kind, r.calls) for r in regions] == [
        ("matmul", 1),
        ("elementwise", 1),
        ("matmul", 1),
    ]


_TWO_MASKS = """#id = affine_map<(d0, d1) -> (d0, d1)>
#r = affine_map<(d0, d1) -> (d0)>
#c = affine_map<(d0, d1) -> (d1)>
#s = affine_map<(d0, d1) -> ()>
#one = affine_map<(d0) -> (d0)>
func.func @main(%a: tensor<32x16xf32>, %w: tensor<16x32xf32>, %w2: tensor<16x32xf32>) -> (tensor<32x32xf32>, tensor<32x32xf32>) {
  %cst = arith.constant 0.0 : f32
  %zero = arith.constant dense<0.0> : tensor<f32>
  %ninf = arith.constant dense<-3.40282347E+38> : tensor<f32>
  %e8 = tensor.empty() : tensor<32xi64>
  %iota = linalg.generic {indexing_maps = [#one], iterator_types = ["parallel"]} outs(%e8 : tensor<32xi64>) {
  ^bb0(%out: i64):
    %k = linalg.index 0 : index
    %kk = arith.index_cast %k : index to i64
    linalg.yield %kk : i64
  } -> tensor<32xi64>
  %eb = tensor.empty() : tensor<32x32xi1>
  %ef = tensor.empty() : tensor<32x32xf32>
  %b1 = linalg.generic {indexing_maps = [#c, #r, #id], iterator_types = ["parallel", "parallel"]} ins(%iota, %iota : tensor<32xi64>, tensor<32xi64>) outs(%eb : tensor<32x32xi1>) {
  ^bb0(%x: i64, %y: i64, %out: i1):
    %t = arith.cmpi sle, %x, %y : i64
    linalg.yield %t : i1
  } -> tensor<32x32xi1>
  %m1 = linalg.generic {indexing_maps = [#id, #s, #s, #id], iterator_types = ["parallel", "parallel"]} ins(%b1, %zero, %ninf : tensor<32x32xi1>, tensor<f32>, tensor<f32>) outs(%ef : tensor<32x32xf32>) {
  ^bb0(%x: i1, %y: f32, %z: f32, %out: f32):
    %t = arith.select %x, %y, %z : f32
    linalg.yield %t : f32
  } -> tensor<32x32xf32>
  %b2 = linalg.generic {indexing_maps = [#c, #r, #id], iterator_types = ["parallel", "parallel"]} ins(%iota, %iota : tensor<32xi64>, tensor<32xi64>) outs(%eb : tensor<32x32xi1>) {
  ^bb0(%x: i64, %y: i64, %out: i1):
    %t = arith.cmpi sge, %x, %y : i64
    linalg.yield %t : i1
  } -> tensor<32x32xi1>
  %m2 = linalg.generic {indexing_maps = [#id, #s, #s, #id], iterator_types = ["parallel", "parallel"]} ins(%b2, %zero, %ninf : tensor<32x32xi1>, tensor<f32>, tensor<f32>) outs(%ef : tensor<32x32xf32>) {
  ^bb0(%x: i1, %y: f32, %z: f32, %out: f32):
    %t = arith.select %x, %y, %z : f32
    linalg.yield %t : f32
  } -> tensor<32x32xf32>
  %f = linalg.fill ins(%cst : f32) outs(%ef : tensor<32x32xf32>) -> tensor<32x32xf32>
  %mm1 = linalg.matmul ins(%a, %w : tensor<32x16xf32>, tensor<16x32xf32>) outs(%f : tensor<32x32xf32>) -> tensor<32x32xf32>
  %o1 = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%mm1, %m1 : tensor<32x32xf32>, tensor<32x32xf32>) outs(%ef : tensor<32x32xf32>) {
  ^bb0(%x: f32, %y: f32, %out: f32):
    %t = arith.addf %x, %y : f32
    linalg.yield %t : f32
  } -> tensor<32x32xf32>
  %mm2 = linalg.matmul ins(%a, %w2 : tensor<32x16xf32>, tensor<16x32xf32>) outs(%f : tensor<32x32xf32>) -> tensor<32x32xf32>
  %o2 = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%mm2, %m2 : tensor<32x32xf32>, tensor<32x32xf32>) outs(%ef : tensor<32x32xf32>) {
  ^bb0(%x: f32, %y: f32, %out: f32):
    %t = arith.addf %x, %y : f32
    linalg.yield %t : f32
  } -> tensor<32x32xf32>
  return %o1, %o2 : tensor<32x32xf32>, tensor<32x32xf32>
}
"""


def test_masks_computed_from_positions_are_computed_in_their_readers():
    """A mask computed from positions (``linalg.index``) that IREE does not
    hoist (it writes i1, or reads an i1 once) is computed in the dispatch that
    reads it, so two matmuls adding different masks are two executables
    (iree-compile 3.13: ``matmul_32x32x16`` twice)."""
    regions = partition_dispatches(_TWO_MASKS)
    assert [(r.kind, r.calls) for r in regions] == [("matmul", 1), ("matmul", 1)]


# a token embedding: a gather with a bounds check, plus positions, scaled
_EMBED = """  %t{n} = linalg.generic {{indexing_maps = [#m2, #m3], iterator_types = ["parallel", "parallel", "parallel"]}} ins(%ids : tensor<1x8xi64>) outs(%e3 : tensor<1x8x16xf32>) {{
  ^bb0(%in: i64, %out: f32):
    %i = arith.index_cast %in : i64 to index
    %j = linalg.index 2 : index
    %ok = arith.cmpi slt, %i, %c64 : index
    cf.assert %ok, "index must be smaller than dim size"
    %x = tensor.extract %tok[%i, %j] : tensor<64x16xf32>
    linalg.yield %x : f32
  }} -> tensor<1x8x16xf32>
  %a{n} = linalg.generic {{indexing_maps = [#m3, #m4, #m3], iterator_types = ["parallel", "parallel", "parallel"]}} ins(%t{n}, %q{n} : tensor<1x8x16xf32>, tensor<8x16xf32>) outs(%e3 : tensor<1x8x16xf32>) {{
  ^bb0(%x: f32, %y: f32, %out: f32):
    %h = arith.truncf %half : f64 to f32
    %s = arith.addf %x, %y : f32
    %r = arith.mulf %s, %h : f32
    linalg.yield %r : f32
  }} -> tensor<1x8x16xf32>
"""

_TWO_GATHERS = (
    """#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
#one = affine_map<(d0) -> (d0)>
#m2 = affine_map<(d0, d1, d2) -> (d0, d1)>
#m3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#m4 = affine_map<(d0, d1, d2) -> (d1, d2)>
func.func @main(%ids: tensor<1x8xi64>, %tok: tensor<64x16xf32>, %w: tensor<16x16xf32>, %q1: tensor<8x16xf32>, %q2: tensor<8x16xf32>) -> (tensor<1x8x16xf32>, tensor<1x8x16xf32>) {
  %c64 = arith.constant 64 : index
  %half = arith.constant 5.000000e-01 : f64
  %e = tensor.empty() : tensor<8x16xf32>
  %e3 = tensor.empty() : tensor<1x8x16xf32>
  %e8 = tensor.empty() : tensor<8xi64>
"""
    + _EMBED.format(n=1)
    + """  %c = tensor.collapse_shape %a1 [[0, 1], [2]] : tensor<1x8x16xf32> into tensor<8x16xf32>
  %cst = arith.constant 0.0 : f32
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<8x16xf32>) -> tensor<8x16xf32>
  %mm = linalg.matmul ins(%c, %w : tensor<8x16xf32>, tensor<16x16xf32>) outs(%f : tensor<8x16xf32>) -> tensor<8x16xf32>
  %mx = tensor.expand_shape %mm [[0, 1], [2]] output_shape [1, 8, 16] : tensor<8x16xf32> into tensor<1x8x16xf32>
"""
    + _EMBED.format(n=2)
    + """  return %mx, %a2 : tensor<1x8x16xf32>, tensor<1x8x16xf32>
}
"""
)


def test_gathers_with_bounds_checks_are_not_merged():
    """Two equal gathers with bounds checks (``cf.assert``, a side effect)
    are not merged by CSE, even where the partitioner merges the duplicates
    f64 demotion makes: each fuses into its reader, one executable run
    twice (iree-compile 3.13: ``elementwise_8x16_i64xf32xf32``,
    ``matmul_8x16x16``)."""
    regions = partition_dispatches(_TWO_GATHERS)
    assert [(r.kind, r.calls) for r in regions] == [("elementwise", 2), ("matmul", 1)]


# one layer: scores in f16, scaled, the mask added, a softmax in f32
_MASKED_LAYER = """  %mm{n} = linalg.matmul ins(%q{n}, %k{n} : tensor<8x16xf16>, tensor<16x8xf16>) outs(%f : tensor<8x8xf32>) -> tensor<8x8xf32>
  %t{n} = linalg.generic {{indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}} ins(%mm{n} : tensor<8x8xf32>) outs(%eh : tensor<8x8xf16>) {{
  ^bb0(%x: f32, %out: f16):
    %y = arith.truncf %x : f32 to f16
    linalg.yield %y : f16
  }} -> tensor<8x8xf16>
  %s{n} = linalg.generic {{indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}} ins(%t{n} : tensor<8x8xf16>) outs(%eh : tensor<8x8xf16>) {{
  ^bb0(%x: f16, %out: f16):
    %y = arith.mulf %x, %scale : f16
    linalg.yield %y : f16
  }} -> tensor<8x8xf16>
  %a{n} = linalg.generic {{indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}} ins(%s{n}, %mask : tensor<8x8xf16>, tensor<8x8xf16>) outs(%eh : tensor<8x8xf16>) {{
  ^bb0(%x: f16, %y: f16, %out: f16):
    %z = arith.addf %x, %y : f16
    linalg.yield %z : f16
  }} -> tensor<8x8xf16>
  %x{n} = linalg.generic {{indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}} ins(%a{n} : tensor<8x8xf16>) outs(%ef : tensor<8x8xf32>) {{
  ^bb0(%x: f16, %out: f32):
    %y = arith.extf %x : f16 to f32
    linalg.yield %y : f32
  }} -> tensor<8x8xf32>
  %m{n} = linalg.generic {{indexing_maps = [#id, #r], iterator_types = ["parallel", "reduction"]}} ins(%x{n} : tensor<8x8xf32>) outs(%fmin : tensor<8xf32>) {{
  ^bb0(%x: f32, %out: f32):
    %y = arith.maximumf %x, %out : f32
    linalg.yield %y : f32
  }} -> tensor<8xf32>
  %d{n} = linalg.generic {{indexing_maps = [#id, #r, #id], iterator_types = ["parallel", "parallel"]}} ins(%x{n}, %m{n} : tensor<8x8xf32>, tensor<8xf32>) outs(%ef : tensor<8x8xf32>) {{
  ^bb0(%x: f32, %y: f32, %out: f32):
    %z = arith.subf %x, %y : f32
    linalg.yield %z : f32
  }} -> tensor<8x8xf32>
  %p{n} = linalg.generic {{indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}} ins(%d{n} : tensor<8x8xf32>) outs(%ef : tensor<8x8xf32>) {{
  ^bb0(%x: f32, %out: f32):
    %y = math.exp %x : f32
    linalg.yield %y : f32
  }} -> tensor<8x8xf32>
  %u{n} = linalg.generic {{indexing_maps = [#id, #r], iterator_types = ["parallel", "reduction"]}} ins(%p{n} : tensor<8x8xf32>) outs(%fz : tensor<8xf32>) {{
  ^bb0(%x: f32, %out: f32):
    %y = arith.addf %x, %out : f32
    linalg.yield %y : f32
  }} -> tensor<8xf32>
  %o{n} = linalg.generic {{indexing_maps = [#id, #r, #id], iterator_types = ["parallel", "parallel"]}} ins(%p{n}, %u{n} : tensor<8x8xf32>, tensor<8xf32>) outs(%ef : tensor<8x8xf32>) {{
  ^bb0(%x: f32, %y: f32, %out: f32):
    %z = arith.divf %x, %y : f32
    linalg.yield %z : f32
  }} -> tensor<8x8xf32>
"""

_SHARED_MASK = (
    """#id = affine_map<(d0, d1) -> (d0, d1)>
#r = affine_map<(d0, d1) -> (d0)>
#c = affine_map<(d0, d1) -> (d1)>
#one = affine_map<(d0) -> (d0)>
func.func @main(%q1: tensor<8x16xf16>, %k1: tensor<16x8xf16>, %q2: tensor<8x16xf16>, %k2: tensor<16x8xf16>) -> (tensor<8x8xf32>, tensor<8x8xf32>) {
  %cst = arith.constant 0.0 : f32
  %lowest = arith.constant -3.40282347E+38 : f32
  %scale = arith.constant 2.500000e-01 : f16
  %zero = arith.constant 0.0 : f16
  %ninf = arith.constant -6.550400e+04 : f16
  %c0 = arith.constant 0 : i64
  %e8 = tensor.empty() : tensor<8xi64>
  %iota = linalg.generic {indexing_maps = [#one], iterator_types = ["parallel"]} outs(%e8 : tensor<8xi64>) {
  ^bb0(%out: i64):
    %i = linalg.index 0 : index
    %j = arith.index_cast %i : index to i64
    linalg.yield %j : i64
  } -> tensor<8xi64>
  %eb = tensor.empty() : tensor<8xi1>
  %ok = linalg.generic {indexing_maps = [#one, #one], iterator_types = ["parallel"]} ins(%iota : tensor<8xi64>) outs(%eb : tensor<8xi1>) {
  ^bb0(%x: i64, %out: i1):
    %y = arith.cmpi sge, %x, %c0 : i64
    linalg.yield %y : i1
  } -> tensor<8xi1>
  %eh = tensor.empty() : tensor<8x8xf16>
  %mask = linalg.generic {indexing_maps = [#r, #id], iterator_types = ["parallel", "parallel"]} ins(%ok : tensor<8xi1>) outs(%eh : tensor<8x8xf16>) {
  ^bb0(%x: i1, %out: f16):
    %y = arith.select %x, %zero, %ninf : f16
    linalg.yield %y : f16
  } -> tensor<8x8xf16>
  %ef = tensor.empty() : tensor<8x8xf32>
  %f = linalg.fill ins(%cst : f32) outs(%ef : tensor<8x8xf32>) -> tensor<8x8xf32>
  %e1 = tensor.empty() : tensor<8xf32>
  %fmin = linalg.fill ins(%lowest : f32) outs(%e1 : tensor<8xf32>) -> tensor<8xf32>
  %fz = linalg.fill ins(%cst : f32) outs(%e1 : tensor<8xf32>) -> tensor<8xf32>
"""
    + _MASKED_LAYER.format(n=1)
    + _MASKED_LAYER.format(n=2)
    + """  return %o1, %o2 : tensor<8x8xf32>, tensor<8x8xf32>
}
"""
)


def test_the_first_layer_adding_a_shared_mask_adds_it_in_the_softmax():
    """A mask computed from positions and added by two layers (f16 scores,
    extended to f32 for the softmax): IREE fuses the shared mask into the
    first layer's add, which then goes into the softmax's dispatch instead of
    the matmul's; the second layer adds it in the matmul's dispatch, so the
    layers are four executables (iree-compile 3.13: ``matmul_8x8x16``,
    ``softmax_8x8``, ``matmul_8x8x16``, ``softmax_8x8``)."""
    regions = partition_dispatches(_SHARED_MASK)
    assert [(r.kind, r.calls) for r in regions] == [
        ("matmul", 1),
        ("softmax", 1),
        ("matmul", 1),
        ("softmax", 1),
    ]


# T5's relative-position buckets (``_relative_position_bucket``), 8 positions,
# 2 heads: integer and float arithmetic on position differences, then a
# gather from the bucket table
_POSITION_BUCKETS = """#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (0, d1)>
#col = affine_map<(d0, d1) -> (d0, 0)>
#one = affine_map<(d0) -> (d0)>
#pq = affine_map<(d0, d1, d2) -> (d1, d2)>
#hpq = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @main(%scores: tensor<2x8x8xf32>) -> tensor<2x8x8xf32> {
  %c0 = arith.constant 0 : i64
  %c8 = arith.constant 8 : i64
  %c16 = arith.constant 16 : i64
  %c32 = arith.constant 32 : index
  %eight = arith.constant 8.000000e+00 : f32
  %ln16 = arith.constant 2.77258849 : f32
  %fifteen = arith.constant dense<15> : tensor<8x8xi64>
  %table = arith.constant dense<TABLE> : tensor<32x2xf32>
  %e8 = tensor.empty() : tensor<8xi64>
  %pos = linalg.generic {indexing_maps = [#one], iterator_types = ["parallel"]} outs(%e8 : tensor<8xi64>) {
  ^bb0(%out: i64):
    %i = linalg.index 0 : index
    %j = arith.index_cast %i : index to i64
    linalg.yield %j : i64
  } -> tensor<8xi64>
  %r = tensor.expand_shape %pos [[0, 1]] output_shape [1, 8] : tensor<8xi64> into tensor<1x8xi64>
  %c = tensor.expand_shape %pos [[0, 1]] output_shape [8, 1] : tensor<8xi64> into tensor<8x1xi64>
  %ei = tensor.empty() : tensor<8x8xi64>
  %eb = tensor.empty() : tensor<8x8xi1>
  %ef = tensor.empty() : tensor<8x8xf32>
  %rel = linalg.generic {indexing_maps = [#row, #col, #id], iterator_types = ["parallel", "parallel"]} ins(%r, %c : tensor<1x8xi64>, tensor<8x1xi64>) outs(%ei : tensor<8x8xi64>) {
  ^bb0(%a: i64, %b: i64, %out: i64):
    %0 = arith.subi %a, %b : i64
    linalg.yield %0 : i64
  } -> tensor<8x8xi64>
  %pos_gt = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%rel : tensor<8x8xi64>) outs(%eb : tensor<8x8xi1>) {
  ^bb0(%a: i64, %out: i1):
    %0 = arith.cmpi sgt, %a, %c0 : i64
    linalg.yield %0 : i1
  } -> tensor<8x8xi1>
  %pos_i = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%pos_gt : tensor<8x8xi1>) outs(%ei : tensor<8x8xi64>) {
  ^bb0(%a: i1, %out: i64):
    %0 = arith.extui %a : i1 to i64
    linalg.yield %0 : i64
  } -> tensor<8x8xi64>
  %half = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%pos_i : tensor<8x8xi64>) outs(%ei : tensor<8x8xi64>) {
  ^bb0(%a: i64, %out: i64):
    %0 = arith.muli %a, %c16 : i64
    linalg.yield %0 : i64
  } -> tensor<8x8xi64>
  %abs = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%rel : tensor<8x8xi64>) outs(%ei : tensor<8x8xi64>) {
  ^bb0(%a: i64, %out: i64):
    %0 = math.absi %a : i64
    linalg.yield %0 : i64
  } -> tensor<8x8xi64>
  %small = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%abs : tensor<8x8xi64>) outs(%eb : tensor<8x8xi1>) {
  ^bb0(%a: i64, %out: i1):
    %0 = arith.cmpi slt, %a, %c8 : i64
    linalg.yield %0 : i1
  } -> tensor<8x8xi1>
  %f = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%abs : tensor<8x8xi64>) outs(%ef : tensor<8x8xf32>) {
  ^bb0(%a: i64, %out: f32):
    %0 = arith.sitofp %a : i64 to f32
    linalg.yield %0 : f32
  } -> tensor<8x8xf32>
  %d = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%f : tensor<8x8xf32>) outs(%ef : tensor<8x8xf32>) {
  ^bb0(%a: f32, %out: f32):
    %0 = arith.divf %a, %eight : f32
    linalg.yield %0 : f32
  } -> tensor<8x8xf32>
  %lg = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%d : tensor<8x8xf32>) outs(%ef : tensor<8x8xf32>) {
  ^bb0(%a: f32, %out: f32):
    %0 = math.log %a : f32
    linalg.yield %0 : f32
  } -> tensor<8x8xf32>
  %d2 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%lg : tensor<8x8xf32>) outs(%ef : tensor<8x8xf32>) {
  ^bb0(%a: f32, %out: f32):
    %0 = arith.divf %a, %ln16 : f32
    linalg.yield %0 : f32
  } -> tensor<8x8xf32>
  %m = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%d2 : tensor<8x8xf32>) outs(%ef : tensor<8x8xf32>) {
  ^bb0(%a: f32, %out: f32):
    %0 = arith.mulf %a, %eight : f32
    linalg.yield %0 : f32
  } -> tensor<8x8xf32>
  %mi = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%m : tensor<8x8xf32>) outs(%ei : tensor<8x8xi64>) {
  ^bb0(%a: f32, %out: i64):
    %0 = arith.fptosi %a : f32 to i64
    linalg.yield %0 : i64
  } -> tensor<8x8xi64>
  %large = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%mi : tensor<8x8xi64>) outs(%ei : tensor<8x8xi64>) {
  ^bb0(%a: i64, %out: i64):
    %0 = arith.addi %a, %c8 : i64
    linalg.yield %0 : i64
  } -> tensor<8x8xi64>
  %cap = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%large, %fifteen : tensor<8x8xi64>, tensor<8x8xi64>) outs(%ei : tensor<8x8xi64>) {
  ^bb0(%a: i64, %b: i64, %out: i64):
    %0 = arith.minsi %a, %b : i64
    linalg.yield %0 : i64
  } -> tensor<8x8xi64>
  %sel = linalg.generic {indexing_maps = [#id, #id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%small, %abs, %cap : tensor<8x8xi1>, tensor<8x8xi64>, tensor<8x8xi64>) outs(%ei : tensor<8x8xi64>) {
  ^bb0(%s: i1, %a: i64, %b: i64, %out: i64):
    %0 = arith.select %s, %a, %b : i64
    linalg.yield %0 : i64
  } -> tensor<8x8xi64>
  %bucket = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%half, %sel : tensor<8x8xi64>, tensor<8x8xi64>) outs(%ei : tensor<8x8xi64>) {
  ^bb0(%a: i64, %b: i64, %out: i64):
    %0 = arith.addi %a, %b : i64
    linalg.yield %0 : i64
  } -> tensor<8x8xi64>
  %eh = tensor.empty() : tensor<2x8x8xf32>
  %bias = linalg.generic {indexing_maps = [#pq, #hpq], iterator_types = ["parallel", "parallel", "parallel"]} ins(%bucket : tensor<8x8xi64>) outs(%eh : tensor<2x8x8xf32>) {
  ^bb0(%b: i64, %out: f32):
    %i = arith.index_cast %b : i64 to index
    %h = linalg.index 0 : index
    %ok = arith.cmpi slt, %i, %c32 : index
    cf.assert %ok, "index must be smaller than dim size"
    %x = tensor.extract %table[%i, %h] : tensor<32x2xf32>
    linalg.yield %x : f32
  } -> tensor<2x8x8xf32>
  %y = linalg.generic {indexing_maps = [#hpq, #hpq, #hpq], iterator_types = ["parallel", "parallel", "parallel"]} ins(%scores, %bias : tensor<2x8x8xf32>, tensor<2x8x8xf32>) outs(%eh : tensor<2x8x8xf32>) {
  ^bb0(%a: f32, %b: f32, %out: f32):
    %0 = arith.addf %a, %b : f32
    linalg.yield %0 : f32
  } -> tensor<2x8x8xf32>
  return %y : tensor<2x8x8xf32>
}
"""
_BUCKET_TABLE = "[" + ", ".join(f"[{0.5 + i}, {-0.25 * i}]" for i in range(32)) + "]"


def test_a_chain_of_position_arithmetic_is_every_other_op_a_global():
    """``ConstExprHoistingPolicy`` decides an op's consumers before the op
    (the analysis reaches the chain from the bucket table its gather reads),
    and makes an op a global when a consumer is none: along a chain of
    leaves every other op is hoisted, and each op that an i1 compare, a
    bit-extend or the gather's reader reads. None of these initializers is
    evaluated at compile time (the first computes the positions' differences
    from ``linalg.index`` alone; the others load it), so each is a dispatch
    (iree-compile 3.13, ``--compile-to=flow``: ten executables,
    ``_initializer_0_dispatch_0_elementwise_broadcast_64_i64`` ...
    ``_initializer_8_dispatch_0_elementwise_broadcast_2x64_i64xi64xf32`` and
    ``main_dispatch_0_elementwise_128_f32``)."""
    regions = partition_dispatches(_POSITION_BUCKETS.replace("TABLE", _BUCKET_TABLE))
    assert [r.kind for r in regions] == ["initializer"] * 9 + ["elementwise"]
    # the gather is hoisted with the add it reads; the select with the
    # compare and the min it reads
    assert regions[-2].lines == (103, 109)
    assert regions[3].lines == (53, 93, 98)


# A bicubic upsampling of a 4x128 image's rows to 384 columns (torch's
# ``interpolate(mode="bicubic", align_corners=True)`` along one dim, as
# torch-mlir lowers it): positions to floats, scaled, floor and fraction,
# the fraction's cubic weights (two concats of 2x384), four clamped indices,
# four gathers. Written after the upsample family's modules.
_BICUBIC_ROWS = """
#map = affine_map<(d0) -> (d0)>
#map1 = affine_map<(d0, d1) -> (d0, d1)>
#map2 = affine_map<(d0) -> ()>
#map10 = affine_map<(d0, d1) -> (d1)>
module {
  func.func @main(%arg0: tensor<4x128xf32>) -> tensor<4x384xf32> {
    %c29_i64 = arith.constant 29 : i64
    %c127_i64 = arith.constant 127 : i64
    %c2_i64 = arith.constant 2 : i64
    %c4_i64 = arith.constant 4 : i64
    %c0_i64 = arith.constant 0 : i64
    %c1_i64 = arith.constant 1 : i64
    %c5_i64 = arith.constant 5 : i64
    %c128_i64 = arith.constant 128 : i64
    %cst = arith.constant dense<2.000000e+00> : tensor<f32>
    %cst_0 = arith.constant dense<1.000000e+00> : tensor<f32>
    %cst_1 = arith.constant 0.2857142857142857 : f64
    %cst_2 = arith.constant 0.33159268929503916 : f64
    %cst_3 = arith.constant 0.000000e+00 : f32
    %cst_4 = arith.constant 1.000000e+00 : f32
    %cst_5 = arith.constant -7.500000e-01 : f32
    %cst_6 = arith.constant -3.750000e+00 : f32
    %cst_7 = arith.constant -6.000000e+00 : f32
    %cst_8 = arith.constant -3.000000e+00 : f32
    %cst_9 = arith.constant 1.250000e+00 : f32
    %cst_10 = arith.constant 2.250000e+00 : f32
    %4 = tensor.empty() : tensor<384xi64>
    %5 = linalg.generic {indexing_maps = [#map], iterator_types = ["parallel"]} outs(%4 : tensor<384xi64>) {
    ^bb0(%out: i64):
      %120 = linalg.index 0 : index
      %121 = arith.index_cast %120 : index to i64
      linalg.yield %121 : i64
    } -> tensor<384xi64>
    %6 = tensor.empty() : tensor<384xf32>
    %7 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%5 : tensor<384xi64>) outs(%6 : tensor<384xf32>) {
    ^bb0(%in: i64, %out: f32):
      %120 = arith.sitofp %in : i64 to f32
      linalg.yield %120 : f32
    } -> tensor<384xf32>
    %8 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%7 : tensor<384xf32>) outs(%6 : tensor<384xf32>) {
    ^bb0(%in: f32, %out: f32):
      %120 = arith.truncf %cst_2 : f64 to f32
      %121 = arith.mulf %in, %120 : f32
      linalg.yield %121 : f32
    } -> tensor<384xf32>
    %10 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%8 : tensor<384xf32>) outs(%6 : tensor<384xf32>) {
    ^bb0(%in: f32, %out: f32):
      %120 = math.floor %in : f32
      linalg.yield %120 : f32
    } -> tensor<384xf32>
    %15 = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%8, %10 : tensor<384xf32>, tensor<384xf32>) outs(%6 : tensor<384xf32>) {
    ^bb0(%in: f32, %in_34: f32, %out: f32):
      %120 = arith.subf %in, %in_34 : f32
      linalg.yield %120 : f32
    } -> tensor<384xf32>
    %16 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%15 : tensor<384xf32>) outs(%6 : tensor<384xf32>) {
    ^bb0(%in: f32, %out: f32):
      %120 = arith.cmpf ult, %in, %cst_3 : f32
      %121 = arith.select %120, %cst_3, %in : f32
      %122 = arith.cmpf ugt, %121, %cst_4 : f32
      %123 = arith.select %122, %cst_4, %121 : f32
      linalg.yield %123 : f32
    } -> tensor<384xf32>
    %17 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%10 : tensor<384xf32>) outs(%4 : tensor<384xi64>) {
    ^bb0(%in: f32, %out: i64):
      %120 = arith.fptosi %in : f32 to i64
      linalg.yield %120 : i64
    } -> tensor<384xi64>
    %23 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%17 : tensor<384xi64>) outs(%4 : tensor<384xi64>) {
    ^bb0(%in: i64, %out: i64):
      %120 = arith.subi %in, %c1_i64 : i64
      linalg.yield %120 : i64
    } -> tensor<384xi64>
    %24 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%17 : tensor<384xi64>) outs(%4 : tensor<384xi64>) {
    ^bb0(%in: i64, %out: i64):
      %120 = arith.addi %in, %c1_i64 : i64
      linalg.yield %120 : i64
    } -> tensor<384xi64>
    %25 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%17 : tensor<384xi64>) outs(%4 : tensor<384xi64>) {
    ^bb0(%in: i64, %out: i64):
      %120 = arith.addi %in, %c2_i64 : i64
      linalg.yield %120 : i64
    } -> tensor<384xi64>
    %26 = linalg.generic {indexing_maps = [#map2, #map, #map], iterator_types = ["parallel"]} ins(%cst_0, %16 : tensor<f32>, tensor<384xf32>) outs(%6 : tensor<384xf32>) {
    ^bb0(%in: f32, %in_34: f32, %out: f32):
      %120 = arith.subf %in, %in_34 : f32
      linalg.yield %120 : f32
    } -> tensor<384xf32>
    %concat = tensor.concat dim(0) %16, %26 : (tensor<384xf32>, tensor<384xf32>) -> tensor<768xf32>
    %expanded_11 = tensor.expand_shape %concat [[0, 1]] output_shape [2, 384] : tensor<768xf32> into tensor<2x384xf32>
    %27 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%16 : tensor<384xf32>) outs(%6 : tensor<384xf32>) {
    ^bb0(%in: f32, %out: f32):
      %120 = arith.addf %in, %cst_4 : f32
      linalg.yield %120 : f32
    } -> tensor<384xf32>
    %28 = linalg.generic {indexing_maps = [#map2, #map, #map], iterator_types = ["parallel"]} ins(%cst, %16 : tensor<f32>, tensor<384xf32>) outs(%6 : tensor<384xf32>) {
    ^bb0(%in: f32, %in_34: f32, %out: f32):
      %120 = arith.subf %in, %in_34 : f32
      linalg.yield %120 : f32
    } -> tensor<384xf32>
    %concat_12 = tensor.concat dim(0) %27, %28 : (tensor<384xf32>, tensor<384xf32>) -> tensor<768xf32>
    %expanded_13 = tensor.expand_shape %concat_12 [[0, 1]] output_shape [2, 384] : tensor<768xf32> into tensor<2x384xf32>
    %29 = tensor.empty() : tensor<2x384xf32>
    %30 = linalg.generic {indexing_maps = [#map1, #map1], iterator_types = ["parallel", "parallel"]} ins(%expanded_13 : tensor<2x384xf32>) outs(%29 : tensor<2x384xf32>) {
    ^bb0(%in: f32, %out: f32):
      %120 = arith.mulf %in, %cst_5 : f32
      linalg.yield %120 : f32
    } -> tensor<2x384xf32>
    %31 = linalg.generic {indexing_maps = [#map1, #map1], iterator_types = ["parallel", "parallel"]} ins(%30 : tensor<2x384xf32>) outs(%29 : tensor<2x384xf32>) {
    ^bb0(%in: f32, %out: f32):
      %120 = arith.subf %in, %cst_6 : f32
      linalg.yield %120 : f32
    } -> tensor<2x384xf32>
    %32 = linalg.generic {indexing_maps = [#map1, #map1, #map1], iterator_types = ["parallel", "parallel"]} ins(%31, %expanded_13 : tensor<2x384xf32>, tensor<2x384xf32>) outs(%29 : tensor<2x384xf32>) {
    ^bb0(%in: f32, %in_34: f32, %out: f32):
      %120 = arith.mulf %in, %in_34 : f32
      linalg.yield %120 : f32
    } -> tensor<2x384xf32>
    %33 = linalg.generic {indexing_maps = [#map1, #map1], iterator_types = ["parallel", "parallel"]} ins(%32 : tensor<2x384xf32>) outs(%29 : tensor<2x384xf32>) {
    ^bb0(%in: f32, %out: f32):
      %120 = arith.addf %in, %cst_7 : f32
      linalg.yield %120 : f32
    } -> tensor<2x384xf32>
    %34 = linalg.generic {indexing_maps = [#map1, #map1, #map1], iterator_types = ["parallel", "parallel"]} ins(%33, %expanded_13 : tensor<2x384xf32>, tensor<2x384xf32>) outs(%29 : tensor<2x384xf32>) {
    ^bb0(%in: f32, %in_34: f32, %out: f32):
      %120 = arith.mulf %in, %in_34 : f32
      linalg.yield %120 : f32
    } -> tensor<2x384xf32>
    %35 = linalg.generic {indexing_maps = [#map1, #map1], iterator_types = ["parallel", "parallel"]} ins(%34 : tensor<2x384xf32>) outs(%29 : tensor<2x384xf32>) {
    ^bb0(%in: f32, %out: f32):
      %120 = arith.subf %in, %cst_8 : f32
      linalg.yield %120 : f32
    } -> tensor<2x384xf32>
    %36 = linalg.generic {indexing_maps = [#map1, #map1], iterator_types = ["parallel", "parallel"]} ins(%expanded_11 : tensor<2x384xf32>) outs(%29 : tensor<2x384xf32>) {
    ^bb0(%in: f32, %out: f32):
      %120 = arith.mulf %in, %cst_9 : f32
      linalg.yield %120 : f32
    } -> tensor<2x384xf32>
    %37 = linalg.generic {indexing_maps = [#map1, #map1], iterator_types = ["parallel", "parallel"]} ins(%36 : tensor<2x384xf32>) outs(%29 : tensor<2x384xf32>) {
    ^bb0(%in: f32, %out: f32):
      %120 = arith.subf %in, %cst_10 : f32
      linalg.yield %120 : f32
    } -> tensor<2x384xf32>
    %38 = linalg.generic {indexing_maps = [#map1, #map1, #map1], iterator_types = ["parallel", "parallel"]} ins(%37, %expanded_11 : tensor<2x384xf32>, tensor<2x384xf32>) outs(%29 : tensor<2x384xf32>) {
    ^bb0(%in: f32, %in_34: f32, %out: f32):
      %120 = arith.mulf %in, %in_34 : f32
      linalg.yield %120 : f32
    } -> tensor<2x384xf32>
    %39 = linalg.generic {indexing_maps = [#map1, #map1, #map1], iterator_types = ["parallel", "parallel"]} ins(%38, %expanded_11 : tensor<2x384xf32>, tensor<2x384xf32>) outs(%29 : tensor<2x384xf32>) {
    ^bb0(%in: f32, %in_34: f32, %out: f32):
      %120 = arith.mulf %in, %in_34 : f32
      linalg.yield %120 : f32
    } -> tensor<2x384xf32>
    %40 = linalg.generic {indexing_maps = [#map1, #map1], iterator_types = ["parallel", "parallel"]} ins(%39 : tensor<2x384xf32>) outs(%29 : tensor<2x384xf32>) {
    ^bb0(%in: f32, %out: f32):
      %120 = arith.addf %in, %cst_4 : f32
      linalg.yield %120 : f32
    } -> tensor<2x384xf32>
    %extracted_slice = tensor.extract_slice %35[0, 0] [1, 384] [1, 1] : tensor<2x384xf32> to tensor<1x384xf32>
    %extracted_slice_14 = tensor.extract_slice %35[1, 0] [1, 384] [1, 1] : tensor<2x384xf32> to tensor<1x384xf32>
    %collapsed = tensor.collapse_shape %extracted_slice [[0, 1]] : tensor<1x384xf32> into tensor<384xf32>
    %collapsed_15 = tensor.collapse_shape %extracted_slice_14 [[0, 1]] : tensor<1x384xf32> into tensor<384xf32>
    %extracted_slice_16 = tensor.extract_slice %40[0, 0] [1, 384] [1, 1] : tensor<2x384xf32> to tensor<1x384xf32>
    %extracted_slice_17 = tensor.extract_slice %40[1, 0] [1, 384] [1, 1] : tensor<2x384xf32> to tensor<1x384xf32>
    %collapsed_18 = tensor.collapse_shape %extracted_slice_16 [[0, 1]] : tensor<1x384xf32> into tensor<384xf32>
    %collapsed_19 = tensor.collapse_shape %extracted_slice_17 [[0, 1]] : tensor<1x384xf32> into tensor<384xf32>
    %57 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%23 : tensor<384xi64>) outs(%4 : tensor<384xi64>) {
    ^bb0(%in: i64, %out: i64):
      %120 = arith.maxsi %in, %c0_i64 : i64
      %121 = arith.minsi %120, %c127_i64 : i64
      linalg.yield %121 : i64
    } -> tensor<384xi64>
    %64 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%17 : tensor<384xi64>) outs(%4 : tensor<384xi64>) {
    ^bb0(%in: i64, %out: i64):
      %120 = arith.maxsi %in, %c0_i64 : i64
      %121 = arith.minsi %120, %c127_i64 : i64
      linalg.yield %121 : i64
    } -> tensor<384xi64>
    %66 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%24 : tensor<384xi64>) outs(%4 : tensor<384xi64>) {
    ^bb0(%in: i64, %out: i64):
      %120 = arith.maxsi %in, %c0_i64 : i64
      %121 = arith.minsi %120, %c127_i64 : i64
      linalg.yield %121 : i64
    } -> tensor<384xi64>
    %68 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%25 : tensor<384xi64>) outs(%4 : tensor<384xi64>) {
    ^bb0(%in: i64, %out: i64):
      %120 = arith.maxsi %in, %c0_i64 : i64
      %121 = arith.minsi %120, %c127_i64 : i64
      linalg.yield %121 : i64
    } -> tensor<384xi64>
    %o = tensor.empty() : tensor<4x384xf32>
    %g0 = linalg.generic {indexing_maps = [#map10, #map10, #map1], iterator_types = ["parallel", "parallel"]} ins(%57, %collapsed : tensor<384xi64>, tensor<384xf32>) outs(%o : tensor<4x384xf32>) {
    ^bb0(%in: i64, %in_1: f32, %out: f32):
      %200 = linalg.index 0 : index
      %201 = arith.index_cast %in : i64 to index
      %extracted = tensor.extract %arg0[%200, %201] : tensor<4x128xf32>
      %202 = arith.mulf %extracted, %in_1 : f32
      linalg.yield %202 : f32
    } -> tensor<4x384xf32>
    %g1 = linalg.generic {indexing_maps = [#map10, #map10, #map1], iterator_types = ["parallel", "parallel"]} ins(%64, %collapsed_18 : tensor<384xi64>, tensor<384xf32>) outs(%o : tensor<4x384xf32>) {
    ^bb0(%in: i64, %in_1: f32, %out: f32):
      %200 = linalg.index 0 : index
      %201 = arith.index_cast %in : i64 to index
      %extracted = tensor.extract %arg0[%200, %201] : tensor<4x128xf32>
      %202 = arith.mulf %extracted, %in_1 : f32
      linalg.yield %202 : f32
    } -> tensor<4x384xf32>
    %g2 = linalg.generic {indexing_maps = [#map10, #map10, #map1], iterator_types = ["parallel", "parallel"]} ins(%66, %collapsed_19 : tensor<384xi64>, tensor<384xf32>) outs(%o : tensor<4x384xf32>) {
    ^bb0(%in: i64, %in_1: f32, %out: f32):
      %200 = linalg.index 0 : index
      %201 = arith.index_cast %in : i64 to index
      %extracted = tensor.extract %arg0[%200, %201] : tensor<4x128xf32>
      %202 = arith.mulf %extracted, %in_1 : f32
      linalg.yield %202 : f32
    } -> tensor<4x384xf32>
    %g3 = linalg.generic {indexing_maps = [#map10, #map10, #map1], iterator_types = ["parallel", "parallel"]} ins(%68, %collapsed_15 : tensor<384xi64>, tensor<384xf32>) outs(%o : tensor<4x384xf32>) {
    ^bb0(%in: i64, %in_1: f32, %out: f32):
      %200 = linalg.index 0 : index
      %201 = arith.index_cast %in : i64 to index
      %extracted = tensor.extract %arg0[%200, %201] : tensor<4x128xf32>
      %202 = arith.mulf %extracted, %in_1 : f32
      linalg.yield %202 : f32
    } -> tensor<4x384xf32>
    %s1 = linalg.generic {indexing_maps = [#map1, #map1, #map1], iterator_types = ["parallel", "parallel"]} ins(%g0, %g1 : tensor<4x384xf32>, tensor<4x384xf32>) outs(%o : tensor<4x384xf32>) {
    ^bb0(%in: f32, %in_1: f32, %out: f32):
      %200 = arith.addf %in, %in_1 : f32
      linalg.yield %200 : f32
    } -> tensor<4x384xf32>
    %s2 = linalg.generic {indexing_maps = [#map1, #map1, #map1], iterator_types = ["parallel", "parallel"]} ins(%s1, %g2 : tensor<4x384xf32>, tensor<4x384xf32>) outs(%o : tensor<4x384xf32>) {
    ^bb0(%in: f32, %in_1: f32, %out: f32):
      %200 = arith.addf %in, %in_1 : f32
      linalg.yield %200 : f32
    } -> tensor<4x384xf32>
    %s3 = linalg.generic {indexing_maps = [#map1, #map1, #map1], iterator_types = ["parallel", "parallel"]} ins(%s2, %g3 : tensor<4x384xf32>, tensor<4x384xf32>) outs(%o : tensor<4x384xf32>) {
    ^bb0(%in: f32, %in_1: f32, %out: f32):
      %200 = arith.addf %in, %in_1 : f32
      linalg.yield %200 : f32
    } -> tensor<4x384xf32>
    return %s3 : tensor<4x384xf32>
  }
}
"""


def test_a_bicubic_upsampling_hoists_the_positions_as_floats_alone():
    """``ConstExprAnalysis`` records the ops it reaches from a constant
    before their producers, and ``ConstExprHoistingPolicy`` decides them in
    that order: the fraction's clamp, reached from its bounds before the ops
    that read it are decided, is no global, the fraction is, the scale is
    not, and the positions as floats (``sitofp`` of ``linalg.index``) are a
    global of their own. That initializer reads no constant, so the JIT
    leaves it to run, and with it every initializer that loads it
    (iree-compile 3.13, ``--compile-to=flow``: sixteen executables, fifteen
    ``_initializer_*`` and ``main_dispatch_0``). Deciding consumers first
    instead hoists the scale with the positions: a compile-time initializer,
    one dispatch in all."""
    regions = partition_dispatches(_BICUBIC_ROWS)
    assert len(regions) == 16
    assert [r.kind for r in regions].count("initializer") == 15


def _decoder_scores(batch: int, softmax: bool) -> str:
    """A decoder's attention scores for one new token: ``batch`` x 4 heads
    as one batch matmul of 1 x 65 rows, truncated to f16, reshaped to
    batch x heads, scaled and masked (then extended to f32 and a softmax)."""
    n = 4 * batch
    out = f"tensor<{batch}x4x65xf32>" if softmax else f"tensor<{batch}x4x65xf16>"
    text = f"""#map1 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#map2 = affine_map<(d0, d1, d2) -> (d0, 0, d2)>
#map3 = affine_map<(d0, d1, d2) -> (d0, d1, 0)>
func.func @main(%q: tensor<{n}x1x32xf16>, %k: tensor<{n}x32x65xf16>, %mask: tensor<{batch}x1x65xf16>) -> {out} {{
  %zero = arith.constant 0.000000e+00 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %scale = arith.constant 1.250000e-01 : f16
  %e0 = tensor.empty() : tensor<{n}x1x65xf32>
  %f0 = linalg.fill ins(%zero : f32) outs(%e0 : tensor<{n}x1x65xf32>) -> tensor<{n}x1x65xf32>
  %s = linalg.batch_matmul ins(%q, %k : tensor<{n}x1x32xf16>, tensor<{n}x32x65xf16>) outs(%f0 : tensor<{n}x1x65xf32>) -> tensor<{n}x1x65xf32>
  %e1 = tensor.empty() : tensor<{n}x1x65xf16>
  %t = linalg.generic {{indexing_maps = [#map1, #map1], iterator_types = ["parallel", "parallel", "parallel"]}} ins(%s : tensor<{n}x1x65xf32>) outs(%e1 : tensor<{n}x1x65xf16>) {{
  ^bb0(%in: f32, %out: f16):
    %0 = arith.truncf %in : f32 to f16
    linalg.yield %0 : f16
  }} -> tensor<{n}x1x65xf16>
  %c = tensor.collapse_shape %t [[0, 1], [2]] : tensor<{n}x1x65xf16> into tensor<{n}x65xf16>
  %x = tensor.expand_shape %c [[0, 1], [2]] output_shape [{batch}, 4, 65] : tensor<{n}x65xf16> into tensor<{batch}x4x65xf16>
  %e2 = tensor.empty() : tensor<{batch}x4x65xf16>
  %m = linalg.generic {{indexing_maps = [#map1, #map2, #map1], iterator_types = ["parallel", "parallel", "parallel"]}} ins(%x, %mask : tensor<{batch}x4x65xf16>, tensor<{batch}x1x65xf16>) outs(%e2 : tensor<{batch}x4x65xf16>) {{
  ^bb0(%in: f16, %in_0: f16, %out: f16):
    %0 = arith.mulf %in, %scale : f16
    %1 = arith.addf %0, %in_0 : f16
    linalg.yield %1 : f16
  }} -> tensor<{batch}x4x65xf16>
"""
    if not softmax:
        return text + f"  return %m : {out}\n}}\n"
    rows = f"tensor<{batch}x4x65xf32>"
    sums = f"tensor<{batch}x4x1xf32>"
    return (
        text
        + f"""  %e3 = tensor.empty() : {rows}
  %w = linalg.generic {{indexing_maps = [#map1, #map1], iterator_types = ["parallel", "parallel", "parallel"]}} ins(%m : tensor<{batch}x4x65xf16>) outs(%e3 : {rows}) {{
  ^bb0(%in: f16, %out: f32):
    %0 = arith.extf %in : f16 to f32
    linalg.yield %0 : f32
  }} -> {rows}
  %e4 = tensor.empty() : {sums}
  %f4 = linalg.fill ins(%ninf : f32) outs(%e4 : {sums}) -> {sums}
  %mx = linalg.generic {{indexing_maps = [#map1, #map3], iterator_types = ["parallel", "parallel", "reduction"]}} ins(%w : {rows}) outs(%f4 : {sums}) {{
  ^bb0(%in: f32, %out: f32):
    %0 = arith.maximumf %in, %out : f32
    linalg.yield %0 : f32
  }} -> {sums}
  %sub = linalg.generic {{indexing_maps = [#map1, #map3, #map1], iterator_types = ["parallel", "parallel", "parallel"]}} ins(%w, %mx : {rows}, {sums}) outs(%e3 : {rows}) {{
  ^bb0(%in: f32, %in_0: f32, %out: f32):
    %0 = arith.subf %in, %in_0 : f32
    linalg.yield %0 : f32
  }} -> {rows}
  %ex = linalg.generic {{indexing_maps = [#map1, #map1], iterator_types = ["parallel", "parallel", "parallel"]}} ins(%sub : {rows}) outs(%e3 : {rows}) {{
  ^bb0(%in: f32, %out: f32):
    %0 = math.exp %in : f32
    linalg.yield %0 : f32
  }} -> {rows}
  %f5 = linalg.fill ins(%zero : f32) outs(%e4 : {sums}) -> {sums}
  %sm = linalg.generic {{indexing_maps = [#map1, #map3], iterator_types = ["parallel", "parallel", "reduction"]}} ins(%ex : {rows}) outs(%f5 : {sums}) {{
  ^bb0(%in: f32, %out: f32):
    %0 = arith.addf %in, %out : f32
    linalg.yield %0 : f32
  }} -> {sums}
  %r = linalg.generic {{indexing_maps = [#map1, #map3, #map1], iterator_types = ["parallel", "parallel", "parallel"]}} ins(%ex, %sm : {rows}, {sums}) outs(%e3 : {rows}) {{
  ^bb0(%in: f32, %in_0: f32, %out: f32):
    %0 = arith.divf %in, %in_0 : f32
    linalg.yield %0 : f32
  }} -> {rows}
  return %r : {out}
}}
"""
    )


@pytest.mark.parametrize(
    ("batch", "kinds"),
    [
        # 4x1x65 -> 1x4x65 adds a unit dim only: the batch matmul's dispatch
        # takes the truncation, the scale and the mask
        (1, ["matmul"]),
        # 8x1x65 -> 2x4x65: unit-dim folding puts a collapse after the batch
        # matmul, the expand bubbles above the truncation: three dispatches
        (2, ["matmul", "elementwise", "elementwise"]),
    ],
)
def test_a_one_row_batch_matmul_keeps_apart_a_consumer_read_split(batch, kinds):
    """``FoldUnitExtentDims`` drops the truncation's unit dim (a
    ``collapse_shape`` after the batch matmul, a named op that keeps its
    M = 1), then ``BubbleUpExpandShapes`` moves the batch x heads
    ``expand_shape`` above the truncation: the batch matmul and its consumer
    are apart, and the truncate, fusing into no op of two inputs, is a
    dispatch alone (iree-compile 3.13, ``--compile-to=flow``:
    ``batch_matmul_4x1x65x32`` alone for batch 1; ``batch_matmul_8x1x65x32``,
    ``elementwise_520_f32xf16``, ``elementwise_2x4x65_f16`` for batch 2)."""
    regions = partition_dispatches(_decoder_scores(batch, softmax=False))
    assert [r.kind for r in regions] == kinds


@pytest.mark.parametrize(
    ("batch", "kinds"),
    [
        (1, ["matmul", "softmax"]),
        (2, ["matmul", "elementwise", "softmax"]),
    ],
)
def test_a_softmax_takes_the_scores_it_extends(batch, kinds):
    """The scaled, masked f16 scores and their extension to f32 are one op
    after elementwise fusion, a bit-extend (``isBitExtendOp``: no ``math``
    op, a narrower input), which IREE clones into the softmax reading it:
    with the batch matmul apart (batch 2), the scores compute in the
    softmax's dispatch (iree-compile 3.13, ``--compile-to=flow``:
    ``batch_matmul_4x1x65x32`` and ``softmax_4x65xf32`` for batch 1;
    ``batch_matmul_8x1x65x32``, ``elementwise_520_f32xf16`` and
    ``softmax_2x4x65xf32`` for batch 2)."""
    regions = partition_dispatches(_decoder_scores(batch, softmax=True))
    assert [r.kind for r in regions] == kinds
    assert len(regions[-1].lines) == (5 if batch == 1 else 6)


def _sum_tree(n: int) -> str:
    """A balanced tree of additions over ``n`` arguments, pairs first."""
    args = ", ".join(f"%a{i}: tensor<64xf32>" for i in range(n))
    lines = [f"func.func @main({args}) -> tensor<64xf32> {{"]
    lines.append("  %e = tensor.empty() : tensor<64xf32>")
    level, k = [f"%a{i}" for i in range(n)], 0
    while len(level) > 1:
        pairs, level = list(zip(level[::2], level[1::2], strict=True)), []
        for x, y in pairs:
            k += 1
            lines.append(
                f"  %v{k} = linalg.generic {{indexing_maps = [#map, #map, #map], "
                f'iterator_types = ["parallel"]}} ins({x}, {y} : tensor<64xf32>, '
                "tensor<64xf32>) outs(%e : tensor<64xf32>) {\n"
                "  ^bb0(%x: f32, %y: f32, %o: f32):\n"
                "    %s = arith.addf %x, %y : f32\n"
                "    linalg.yield %s : f32\n"
                "  } -> tensor<64xf32>"
            )
            level.append(f"%v{k}")
    lines.append(f"  return {level[0]} : tensor<64xf32>\n}}")
    return "#map = affine_map<(d0) -> (d0)>\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("n", "calls"),
    [
        (16, [1]),  # 16 arguments and the init: one fused op
        (32, [1, 10, 2]),  # the fusion stops at 16 operands
    ],
)
def test_elementwise_fusion_stops_at_sixteen_operands(n, calls):
    """IREE's elementwise fusion refuses a fusion whose fused op would read
    16 distinct values or more (``kIreeMaxOperandCount``), in the order its
    greedy driver fuses: from the last op up, the fused op and the readers
    of the replaced one first. iree-compile: the sum of 16 arguments is one
    dispatch; of 32, 3 executables in 13 dispatches: 10 sums of 2 arguments
    (one addition), 2 of 4 (three) and the root (fifteen)."""
    regions = partition_dispatches(_sum_tree(n))
    assert sorted(r.calls for r in regions) == sorted(calls)
    adds = {r.calls: r.text.count("arith.addf") for r in regions}
    assert adds == ({1: 15} if n == 16 else {1: 15, 10: 1, 2: 3})


# A transpose read by a reduction (through a unit-dim reshape) and by an
# elementwise op; an identical reduction reads an argument.
_SHARED_TRANSPOSE = """#map = affine_map<(d0, d1) -> (d0, d1)>
#map3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#map4 = affine_map<(d0, d1, d2) -> (d0, d1)>
func.func @main(%x: tensor<16x8xf32>, %b: tensor<8x16xf32>) -> (tensor<1x8xf32>, tensor<8x16xf32>, tensor<1x8xf32>) {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<8x16xf32>
  %t = linalg.transpose ins(%x : tensor<16x8xf32>) outs(%e : tensor<8x16xf32>) permutation = [1, 0]
  %e1 = tensor.empty() : tensor<1x8xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e1 : tensor<1x8xf32>) -> tensor<1x8xf32>
  %te = tensor.expand_shape %t [[0, 1], [2]] output_shape [1, 8, 16] : tensor<8x16xf32> into tensor<1x8x16xf32>
  %r = linalg.generic {indexing_maps = [#map3, #map4], iterator_types = ["parallel", "parallel", "reduction"]} ins(%te : tensor<1x8x16xf32>) outs(%f : tensor<1x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %out : f32
    linalg.yield %s : f32
  } -> tensor<1x8xf32>
  %y = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel"]} ins(%t, %b : tensor<8x16xf32>, tensor<8x16xf32>) outs(%e : tensor<8x16xf32>) {
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %s = arith.mulf %in, %in2 : f32
    linalg.yield %s : f32
  } -> tensor<8x16xf32>
  %be = tensor.expand_shape %b [[0, 1], [2]] output_shape [1, 8, 16] : tensor<8x16xf32> into tensor<1x8x16xf32>
  %r2 = linalg.generic {indexing_maps = [#map3, #map4], iterator_types = ["parallel", "parallel", "reduction"]} ins(%be : tensor<1x8x16xf32>) outs(%f : tensor<1x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %out : f32
    linalg.yield %s : f32
  } -> tensor<1x8xf32>
  return %r, %y, %r2 : tensor<1x8xf32>, tensor<8x16xf32>, tensor<1x8xf32>
}
"""


def test_a_transpose_read_twice_is_cloned_into_each_reader():
    """A transpose (a copy) fuses into every all-parallel or reduction reader,
    whatever its uses (``areFusableAsElementwiseOps``: "just copy"), and
    forms no dispatch; the reduction that reads it through its permuted map
    is another executable than the one reading an argument (iree-compile:
    ``reduction_8x16``, ``elementwise_transpose_8x16``, ``reduction_8x16``,
    three executables; a MobileViT's unfold before its first layer norm)."""
    regions = partition_dispatches(_SHARED_TRANSPOSE)
    assert [(r.kind, r.calls) for r in regions] == [
        ("reduction", 1),
        ("elementwise", 1),
        ("reduction", 1),
    ]


# A layer norm's centring whose result a transpose and an expand of its
# non-unit dims give a 1x1 convolution; an identical centring of an argument.
_TRANSPOSE_EXPANDED_INTO_CONV = """#map = affine_map<(d0, d1) -> (d0, d1)>
#map1 = affine_map<(d0, d1) -> (d0)>
func.func @main(%x: tensor<4x96xf32>, %z: tensor<4x96xf32>, %w: tensor<80x96x1x1xf32>) -> (tensor<1x80x2x2xf32>, tensor<4x96xf32>) {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x96xf32>
  %e1 = tensor.empty() : tensor<4xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e1 : tensor<4xf32>) -> tensor<4xf32>
  %r = linalg.generic {indexing_maps = [#map, #map1], iterator_types = ["parallel", "reduction"]} ins(%x : tensor<4x96xf32>) outs(%f : tensor<4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %out : f32
    linalg.yield %s : f32
  } -> tensor<4xf32>
  %n = linalg.generic {indexing_maps = [#map, #map1, #map], iterator_types = ["parallel", "parallel"]} ins(%x, %r : tensor<4x96xf32>, tensor<4xf32>) outs(%e : tensor<4x96xf32>) {
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %s = arith.subf %in, %in2 : f32
    linalg.yield %s : f32
  } -> tensor<4x96xf32>
  %et = tensor.empty() : tensor<96x4xf32>
  %t = linalg.transpose ins(%n : tensor<4x96xf32>) outs(%et : tensor<96x4xf32>) permutation = [1, 0]
  %te = tensor.expand_shape %t [[0, 1], [2, 3]] output_shape [1, 96, 2, 2] : tensor<96x4xf32> into tensor<1x96x2x2xf32>
  %ec = tensor.empty() : tensor<1x80x2x2xf32>
  %fc = linalg.fill ins(%cst : f32) outs(%ec : tensor<1x80x2x2xf32>) -> tensor<1x80x2x2xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%te, %w : tensor<1x96x2x2xf32>, tensor<80x96x1x1xf32>) outs(%fc : tensor<1x80x2x2xf32>) -> tensor<1x80x2x2xf32>
  %r2 = linalg.generic {indexing_maps = [#map, #map1], iterator_types = ["parallel", "reduction"]} ins(%z : tensor<4x96xf32>) outs(%f : tensor<4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %out : f32
    linalg.yield %s : f32
  } -> tensor<4xf32>
  %n2 = linalg.generic {indexing_maps = [#map, #map1, #map], iterator_types = ["parallel", "parallel"]} ins(%z, %r2 : tensor<4x96xf32>, tensor<4xf32>) outs(%e : tensor<4x96xf32>) {
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %s = arith.subf %in, %in2 : f32
    linalg.yield %s : f32
  } -> tensor<4x96xf32>
  return %c, %n2 : tensor<1x80x2x2xf32>, tensor<4x96xf32>
}
"""


def test_a_transpose_moves_into_a_convolution_through_an_expand():
    """An expand_shape moves above the transpose (``BubbleUpExpandShapes``),
    so a transpose read by a ``conv_2d_nchw_fchw`` through expands of its
    non-unit dims only moves into the convolution's input map all the same:
    the two centrings are one executable (iree-compile: ``reduction_4x96``,
    dispatched twice, and ``matmul_like_80x4x96``; a MobileViT's fold of 2x2
    patches)."""
    regions = partition_dispatches(_TRANSPOSE_EXPANDED_INTO_CONV)
    assert [(r.kind, r.calls) for r in regions] == [("reduction", 2), ("matmul", 1)]


_GATHER_CHECKED = """#map = affine_map<(d0, d1) -> (d0, d1)>
#map1 = affine_map<(d0, d1, d2) -> (d0, d1)>
#map2 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @main(%a: tensor<1x32xi32>, %b: tensor<1x32xi32>, %t: tensor<512x64xf32>, %u: tensor<1x32x64xf32>) -> tensor<1x32x64xf32> {
  %c512 = arith.constant 512 : index
  %e = tensor.empty() : tensor<1x32xi32>
  %e64 = tensor.empty() : tensor<1x32xi64>
  %m = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel"]} ins(%a, %b : tensor<1x32xi32>, tensor<1x32xi32>) outs(%e : tensor<1x32xi32>) {
  ^bb0(%in: i32, %in2: i32, %out: i32):
    %0 = arith.muli %in, %in2 : i32
    linalg.yield %0 : i32
  } -> tensor<1x32xi32>
  %x = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%m : tensor<1x32xi32>) outs(%e64 : tensor<1x32xi64>) {
  ^bb0(%in: i32, %out: i64):
    %0 = arith.extsi %in : i32 to i64
    linalg.yield %0 : i64
  } -> tensor<1x32xi64>
  %eg = tensor.empty() : tensor<1x32x64xf32>
  %g = linalg.generic {indexing_maps = [#map1, #map2], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x : tensor<1x32xi64>) outs(%eg : tensor<1x32x64xf32>) {
  ^bb0(%in: i64, %out: f32):
    %0 = arith.index_cast %in : i64 to index
    %1 = linalg.index 2 : index
    %2 = arith.cmpi slt, %0, %c512 : index
    CHECK
    %3 = tensor.extract %t[%0, %1] : tensor<512x64xf32>
    linalg.yield %3 : f32
  } -> tensor<1x32x64xf32>
  %s = linalg.generic {indexing_maps = [#map2, #map2, #map2], iterator_types = ["parallel", "parallel", "parallel"]} ins(%u, %g : tensor<1x32x64xf32>, tensor<1x32x64xf32>) outs(%eg : tensor<1x32x64xf32>) {
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %0 = arith.addf %in, %in2 : f32
    linalg.yield %0 : f32
  } -> tensor<1x32x64xf32>
  return %s : tensor<1x32x64xf32>
}
"""


@pytest.mark.parametrize(
    "check, dispatches",
    [('cf.assert %2, "index must be smaller than dim size"', 2), ("", 1)],
)
def test_a_checked_gather_keeps_its_producers_apart(check, dispatches):
    """A gather whose body asserts its bounds (``cf.assert``, a side effect)
    is not erased when it fuses into the add reading it, so the bit-extend it
    reads keeps two uses and takes no producer: the multiply is a dispatch of
    its own (iree-compile: ``elementwise_32_i32`` and
    ``elementwise_32x64_f32xi64xf32``; ESM's and I-BERT's positions from the
    padding mask); without the check all is one dispatch."""
    regions = partition_dispatches(_GATHER_CHECKED.replace("CHECK", check))
    assert len(regions) == dispatches


_UNIT_DIM_REDUCTIONS = """#map = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#map1 = affine_map<(d0, d1, d2) -> (d0, d1, 0)>
#map2 = affine_map<(d0, d1) -> (d0, d1)>
#map3 = affine_map<(d0, d1) -> (d0, 0)>
func.func @main(%x: tensor<1x32x64xf32>, %y: tensor<32x64xf32>) -> (tensor<1x32x64xf32>, tensor<32x64xf32>) {
  %cst = arith.constant 0.000000e+00 : f32
  %n = arith.constant 6.400000e+01 : f32
  %e1 = tensor.empty() : tensor<1x32x1xf32>
  %f1 = linalg.fill ins(%cst : f32) outs(%e1 : tensor<1x32x1xf32>) -> tensor<1x32x1xf32>
  %r1 = linalg.generic {indexing_maps = [#map, #map1], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x : tensor<1x32x64xf32>) outs(%f1 : tensor<1x32x1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = arith.addf %in, %out : f32
    linalg.yield %0 : f32
  } -> tensor<1x32x1xf32>
  %e3 = tensor.empty() : tensor<1x32x64xf32>
  %d1 = linalg.generic {indexing_maps = [#map, #map1, #map], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x, %r1 : tensor<1x32x64xf32>, tensor<1x32x1xf32>) outs(%e3 : tensor<1x32x64xf32>) {
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %0 = arith.divf %in2, %n : f32
    %1 = arith.subf %in, %0 : f32
    linalg.yield %1 : f32
  } -> tensor<1x32x64xf32>
  %e2 = tensor.empty() : tensor<32x1xf32>
  %f2 = linalg.fill ins(%cst : f32) outs(%e2 : tensor<32x1xf32>) -> tensor<32x1xf32>
  %r2 = linalg.generic {indexing_maps = [#map2, #map3], iterator_types = ["parallel", "reduction"]} ins(%y : tensor<32x64xf32>) outs(%f2 : tensor<32x1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = arith.addf %in, %out : f32
    linalg.yield %0 : f32
  } -> tensor<32x1xf32>
  %e4 = tensor.empty() : tensor<32x64xf32>
  %d2 = linalg.generic {indexing_maps = [#map2, #map3, #map2], iterator_types = ["parallel", "parallel"]} ins(%y, %r2 : tensor<32x64xf32>, tensor<32x1xf32>) outs(%e4 : tensor<32x64xf32>) {
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %0 = arith.divf %in2, %n : f32
    %1 = arith.subf %in, %0 : f32
    linalg.yield %1 : f32
  } -> tensor<32x64xf32>
  return %d1, %d2 : tensor<1x32x64xf32>, tensor<32x64xf32>
}
"""


def test_reductions_that_differ_in_unit_dims_are_one_executable():
    """A layer norm's mean over 1x32x64 rows and over 32x64 ones differ only
    in a unit dim, which IREE drops before forming dispatches
    (``FoldUnitExtentDims``): one executable dispatched twice (iree-compile:
    ``reduction_32x64`` alone; OPT's layer norms)."""
    regions = partition_dispatches(_UNIT_DIM_REDUCTIONS)
    assert [(r.kind, r.calls) for r in regions] == [("reduction", 2)]


def _scaled_queries(layers: int) -> str:
    """``layers`` query projections as OPT writes them: a bias added to the
    matmul's 2-D result, a unit-dim expand, a scale, the heads split and
    transposed; each layer's bias a ``dense_resource`` of its own."""
    blobs, body = [], []
    for k in range(layers):
        words = [struct.pack("<f", (k + 1) * 0.5 + i * 0.25).hex() for i in range(64)]
        blobs.append(f'      bias{k}: "0x04000000{"".join(words).upper()}"')
        body.append(
            f"""  %b{k} = arith.constant dense_resource<bias{k}> : tensor<64xf32>
  %m{k} = linalg.matmul ins(%x, %w : tensor<32x64xf32>, tensor<64x64xf32>) outs(%f : tensor<32x64xf32>) -> tensor<32x64xf32>
  %a{k} = linalg.generic {{indexing_maps = [#map, #map1, #map], iterator_types = ["parallel", "parallel"]}} ins(%m{k}, %b{k} : tensor<32x64xf32>, tensor<64xf32>) outs(%e : tensor<32x64xf32>) {{
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %0 = arith.addf %in, %in2 : f32
    linalg.yield %0 : f32
  }} -> tensor<32x64xf32>
  %u{k} = tensor.expand_shape %a{k} [[0, 1], [2]] output_shape [1, 32, 64] : tensor<32x64xf32> into tensor<1x32x64xf32>
  %q{k} = linalg.generic {{indexing_maps = [#map3, #map3], iterator_types = ["parallel", "parallel", "parallel"]}} ins(%u{k} : tensor<1x32x64xf32>) outs(%e3 : tensor<1x32x64xf32>) {{
  ^bb0(%in: f32, %out: f32):
    %0 = arith.mulf %in, %s : f32
    linalg.yield %0 : f32
  }} -> tensor<1x32x64xf32>
  %h{k} = tensor.expand_shape %q{k} [[0], [1], [2, 3]] output_shape [1, 32, 2, 32] : tensor<1x32x64xf32> into tensor<1x32x2x32xf32>
  %t{k} = linalg.transpose ins(%h{k} : tensor<1x32x2x32xf32>) outs(%et : tensor<1x2x32x32xf32>) permutation = [0, 2, 1, 3]
"""
        )
    results = ", ".join(["tensor<1x2x32x32xf32>"] * layers)
    values = ", ".join(f"%t{k}" for k in range(layers))
    return (
        f"""#map = affine_map<(d0, d1) -> (d0, d1)>
#map1 = affine_map<(d0, d1) -> (d1)>
#map3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @main(%x: tensor<32x64xf32>, %w: tensor<64x64xf32>) -> ({results}) {{
  %cst = arith.constant 0.000000e+00 : f32
  %s = arith.constant 1.250000e-01 : f32
  %e = tensor.empty() : tensor<32x64xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<32x64xf32>) -> tensor<32x64xf32>
  %e3 = tensor.empty() : tensor<1x32x64xf32>
  %et = tensor.empty() : tensor<1x2x32x32xf32>
"""
        + "".join(body)
        + f"  return {values} : {results}\n}}\n"
        + "{-#\n  dialect_resources: {\n    builtin: {\n"
        + ",\n".join(blobs)
        + "\n    }\n  }\n#-}\n"
    )


def test_a_bias_expanded_through_a_unit_reshape_is_bound():
    """The heads' expand_shape bubbles up through the scale and, past a
    unit-dim expand, through the bias add too, so each layer's bias (a
    ``dense_resource``, which no fold reshapes) is expanded outside the
    dispatch and bound, not inlined: the layers' transposes are one
    executable (iree-compile: ``matmul_32x64x64`` and
    ``elementwise_transpose_32x2x32``; OPT's and XGLM's queries)."""
    regions = partition_dispatches(_scaled_queries(2))
    assert [(r.kind, r.calls) for r in regions] == [
        ("matmul", 2),
        ("elementwise", 2),
    ]


_GATHERED_SCALE = """#map = affine_map<(d0, d1) -> (d0, d1)>
#map1 = affine_map<(d0, d1) -> (d0)>
#map2 = affine_map<(d0) -> (d0)>
func.func @main(%x: tensor<512x799xf32>, %w: tensor<512xf32>, %idx: tensor<512xi64>) -> (tensor<512xf32>, tensor<512xf32>) {
  %cst = arith.constant 0.000000e+00 : f32
  %one = arith.constant 1.000000e+00 : f32
  %e = tensor.empty() : tensor<512xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<512xf32>) -> tensor<512xf32>
  %r = linalg.generic {indexing_maps = [#map, #map1], iterator_types = ["parallel", "reduction"]} ins(%x : tensor<512x799xf32>) outs(%f : tensor<512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = arith.addf %in, %out : f32
    linalg.yield %0 : f32
  } -> tensor<512xf32>
  %s = linalg.generic {indexing_maps = [#map2, #map2, #map2], iterator_types = ["parallel"]} ins(%r, %w : tensor<512xf32>, tensor<512xf32>) outs(%e : tensor<512xf32>) {
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %0 = math.rsqrt %in : f32
    %1 = arith.mulf %0, %in2 : f32
    linalg.yield %1 : f32
  } -> tensor<512xf32>
  %t = linalg.generic {indexing_maps = [#map2, #map2], iterator_types = ["parallel"]} ins(%s : tensor<512xf32>) outs(%e : tensor<512xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = arith.addf %in, %one : f32
    linalg.yield %0 : f32
  } -> tensor<512xf32>
  %g = linalg.generic {indexing_maps = [#map2, #map2], iterator_types = ["parallel"]} ins(%idx : tensor<512xi64>) outs(%e : tensor<512xf32>) {
  ^bb0(%in: i64, %out: f32):
    %0 = arith.index_cast %in : i64 to index
    %1 = tensor.extract %s[%0] : tensor<512xf32>
    linalg.yield %1 : f32
  } -> tensor<512xf32>
  return %t, %g : tensor<512xf32>, tensor<512xf32>
}
"""


def test_a_root_takes_consumers_past_a_gather_of_its_result():
    """A group norm's scale, computed in the reduction's dispatch, is read by
    a gather (``tensor.extract``) and by an elementwise op: the gather fuses
    into nothing, so the reduction's dispatch still takes the elementwise
    op and stores the scale for the gather (iree-compile:
    ``reduction_512x799`` and ``elementwise_512_i64xf32``; wav2vec2's and
    SEW's feature-extractor group norm)."""
    regions = partition_dispatches(_GATHERED_SCALE)
    assert [r.kind for r in regions] == ["reduction", "elementwise"]


_POOLED_AND_CONCATENATED = """#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @main(%x: tensor<1x8x16x16xf32>, %y: tensor<1x4x8x8xf32>) -> (tensor<1x8x8x8xf32>, tensor<1x12x8x8xf32>) {
  %cst = arith.constant 0.000000e+00 : f32
  %four = arith.constant 4.000000e+00 : f32
  %half = arith.constant 5.000000e-01 : f32
  %e = tensor.empty() : tensor<1x8x8x8xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32>
  %k = tensor.empty() : tensor<2x2xf32>
  %p = linalg.pooling_nchw_sum {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %k : tensor<1x8x16x16xf32>, tensor<2x2xf32>) outs(%f : tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32>
  %d = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%p : tensor<1x8x8x8xf32>) outs(%e : tensor<1x8x8x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = arith.divf %in, %four : f32
    linalg.yield %0 : f32
  } -> tensor<1x8x8x8xf32>
  %b = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%d : tensor<1x8x8x8xf32>) outs(%e : tensor<1x8x8x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = arith.mulf %in, %half : f32
    %1 = arith.maximumf %0, %cst : f32
    linalg.yield %1 : f32
  } -> tensor<1x8x8x8xf32>
  %c = tensor.concat dim(1) %d, %y : (tensor<1x8x8x8xf32>, tensor<1x4x8x8xf32>) -> tensor<1x12x8x8xf32>
  return %b, %c : tensor<1x8x8x8xf32>, tensor<1x12x8x8xf32>
}
"""


def test_a_pool_takes_its_consumers_past_a_concat_of_its_divide():
    """An average pool's divide is read by the batch norm after it and by
    a concat: IREE fuses the divide into its first reader
    (``FuseMultiUseElementwiseProducer``), and the pool's dispatch takes
    both, storing the divide's result for the concat (iree-compile: one
    ``conv_8x8x8x2x2``; DenseNet's transitions)."""
    regions = partition_dispatches(_POOLED_AND_CONCATENATED)
    assert [(r.kind, r.calls) for r in regions] == [("pooling", 1)]


_RESHAPED_BIASES = """#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#map1 = affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, d3)>
func.func @main(%q0: tensor<1x4x64x32xf16>, %q1: tensor<1x4x64x32xf16>) -> (tensor<1x4x64x32xf16>, tensor<1x4x64x32xf16>) {
  %b0 = arith.constant dense_resource<bias0> : tensor<128xf16>
  %b1 = arith.constant dense_resource<bias1> : tensor<128xf16>
  %e = tensor.empty() : tensor<1x4x1x32xf16>
  %o = tensor.empty() : tensor<1x4x64x32xf16>
  %x0 = tensor.expand_shape %b0 [[0, 1, 2, 3]] output_shape [1, 1, 4, 32] : tensor<128xf16> into tensor<1x1x4x32xf16>
  %t0 = linalg.transpose ins(%x0 : tensor<1x1x4x32xf16>) outs(%e : tensor<1x4x1x32xf16>) permutation = [0, 2, 1, 3]
  %a0 = linalg.generic {indexing_maps = [#map, #map1, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%q0, %t0 : tensor<1x4x64x32xf16>, tensor<1x4x1x32xf16>) outs(%o : tensor<1x4x64x32xf16>) {
  ^bb0(%in: f16, %in2: f16, %out: f16):
    %0 = arith.addf %in, %in2 : f16
    linalg.yield %0 : f16
  } -> tensor<1x4x64x32xf16>
  %x1 = tensor.expand_shape %b1 [[0, 1, 2, 3]] output_shape [1, 1, 4, 32] : tensor<128xf16> into tensor<1x1x4x32xf16>
  %t1 = linalg.transpose ins(%x1 : tensor<1x1x4x32xf16>) outs(%e : tensor<1x4x1x32xf16>) permutation = [0, 2, 1, 3]
  %a1 = linalg.generic {indexing_maps = [#map, #map1, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%q1, %t1 : tensor<1x4x64x32xf16>, tensor<1x4x1x32xf16>) outs(%o : tensor<1x4x64x32xf16>) {
  ^bb0(%in: f16, %in2: f16, %out: f16):
    %0 = arith.addf %in, %in2 : f16
    linalg.yield %0 : f16
  } -> tensor<1x4x64x32xf16>
  return %a0, %a1 : tensor<1x4x64x32xf16>, tensor<1x4x64x32xf16>
}
{-#
  dialect_resources: {
    builtin: {
      bias0: "0x020000000038143829383D38523866387B388F38A438B838CD38E138F6380A391F39333948395C39713985399A39AE39C339D739EC39003A143A293A3D3A523A663A7B3A8F3AA43AB83ACD3AE13AF63A0A3B1F3B333B483B5C3B713B853B9A3BAE3BC33BD73BEC3B003C0A3C143C1F3C293C333C3D3C483C523C5C3C663C713C7B3C853C8F3C9A3CA43CAE3CB83CC33CCD3CD73CE13CEC3CF63C003D0A3D143D1F3D293D333D3D3D483D523D5C3D663D713D7B3D853D8F3D9A3DA43DAE3DB83DC33DCD3DD73DE13DEC3DF63D003E0A3E143E1F3E293E333E3D3E483E523E5C3E663E713E7B3E853E8F3E9A3EA43EAE3EB83EC33ECD3ED73EE13EEC3EF63E003F0A3F143F",
      bias1: "0x02000000003C0A3C143C1F3C293C333C3D3C483C523C5C3C663C713C7B3C853C8F3C9A3CA43CAE3CB83CC33CCD3CD73CE13CEC3CF63C003D0A3D143D1F3D293D333D3D3D483D523D5C3D663D713D7B3D853D8F3D9A3DA43DAE3DB83DC33DCD3DD73DE13DEC3DF63D003E0A3E143E1F3E293E333E3D3E483E523E5C3E663E713E7B3E853E8F3E9A3EA43EAE3EB83EC33ECD3ED73EE13EEC3EF63E003F0A3F143F1F3F293F333F3D3F483F523F5C3F663F713F7B3F853F8F3F9A3FA43FAE3FB83FC33FCD3FD73FE13FEC3FF63F004005400A400F4014401A401F40244029402E40334038403D40434048404D40524057405C40614066406C40714076407B40804085408A40"
    }
  }
#-}
"""


def test_a_reshaped_resource_constant_is_bound():
    """A per-head query bias, a ``dense_resource`` of 256 bytes expanded to
    heads and transposed, is not inlined: no fold reshapes a resource's data,
    so the reshape stays outside the dispatch, which binds it, and the two
    layers' bias adds are one executable (iree-compile:
    ``elementwise_4x64x32_f16`` alone; DeBERTa's query and value biases)."""
    regions = partition_dispatches(_RESHAPED_BIASES)
    assert [(r.kind, r.calls) for r in regions] == [("elementwise", 2)]


_ROTARY_QUERY = """#map = affine_map<(d0, d1) -> (d0, d1)>
#map1 = affine_map<(d0, d1) -> (d1)>
#map4 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#map5 = affine_map<(d0, d1, d2) -> (d1, d2)>
func.func @main(%x: tensor<32x64xf32>, %w: tensor<64x64xf32>, %b: tensor<64xf32>, %cos: tensor<32x32xf32>, %sin: tensor<32x32xf32>) -> tensor<2x32x32xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %e = tensor.empty() : tensor<32x64xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<32x64xf32>) -> tensor<32x64xf32>
  %m = linalg.matmul ins(%x, %w : tensor<32x64xf32>, tensor<64x64xf32>) outs(%f : tensor<32x64xf32>) -> tensor<32x64xf32>
  %a = linalg.generic {indexing_maps = [#map, #map1, #map], iterator_types = ["parallel", "parallel"]} ins(%m, %b : tensor<32x64xf32>, tensor<64xf32>) outs(%e : tensor<32x64xf32>) {
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %0 = arith.addf %in, %in2 : f32
    linalg.yield %0 : f32
  } -> tensor<32x64xf32>
  %h = tensor.expand_shape %a [[0], [1, 2]] output_shape [32, 2, 32] : tensor<32x64xf32> into tensor<32x2x32xf32>
  %et = tensor.empty() : tensor<2x32x32xf32>
  %t = linalg.transpose ins(%h : tensor<32x2x32xf32>) outs(%et : tensor<2x32x32xf32>) permutation = [1, 0, 2]
  %c = linalg.generic {indexing_maps = [#map4, #map5, #map4], iterator_types = ["parallel", "parallel", "parallel"]} ins(%t, %cos : tensor<2x32x32xf32>, tensor<32x32xf32>) outs(%et : tensor<2x32x32xf32>) {
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %0 = arith.mulf %in, %in2 : f32
    linalg.yield %0 : f32
  } -> tensor<2x32x32xf32>
  %lo = tensor.extract_slice %t[0, 0, 0] [2, 32, 16] [1, 1, 1] : tensor<2x32x32xf32> to tensor<2x32x16xf32>
  %hi = tensor.extract_slice %t[0, 0, 16] [2, 32, 16] [1, 1, 1] : tensor<2x32x32xf32> to tensor<2x32x16xf32>
  %eh = tensor.empty() : tensor<2x32x16xf32>
  %n = linalg.generic {indexing_maps = [#map4, #map4], iterator_types = ["parallel", "parallel", "parallel"]} ins(%hi : tensor<2x32x16xf32>) outs(%eh : tensor<2x32x16xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = arith.negf %in : f32
    linalg.yield %0 : f32
  } -> tensor<2x32x16xf32>
  %r = tensor.concat dim(2) %n, %lo : (tensor<2x32x16xf32>, tensor<2x32x16xf32>) -> tensor<2x32x32xf32>
  %s = linalg.generic {indexing_maps = [#map4, #map5, #map4], iterator_types = ["parallel", "parallel", "parallel"]} ins(%r, %sin : tensor<2x32x32xf32>, tensor<32x32xf32>) outs(%et : tensor<2x32x32xf32>) {
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %0 = arith.mulf %in, %in2 : f32
    linalg.yield %0 : f32
  } -> tensor<2x32x32xf32>
  %o = linalg.generic {indexing_maps = [#map4, #map4, #map4], iterator_types = ["parallel", "parallel", "parallel"]} ins(%c, %s : tensor<2x32x32xf32>, tensor<2x32x32xf32>) outs(%et : tensor<2x32x32xf32>) {
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %0 = arith.addf %in, %in2 : f32
    linalg.yield %0 : f32
  } -> tensor<2x32x32xf32>
  return %o : tensor<2x32x32xf32>
}
"""


def test_a_rotary_transpose_leaves_the_bias_with_its_matmul():
    """A query's bias add, its heads split and transposed, read by the
    rotary's multiply and by a raised ``rotate_half`` (which reads it with
    ``tensor.extract``): the transpose goes into both readers (the multiply's
    indexing map, the extract's indices), so the bias add has two readers,
    one a gather, and stays with the matmul (iree-compile: ``matmul`` with
    the ``addf``, then one elementwise dispatch reading the untransposed
    result; Qwen2's, OLMo2's and StarCoder2's queries)."""
    regions = partition_dispatches(_ROTARY_QUERY)
    assert [(r.kind, len(r.lines)) for r in regions] == [
        ("matmul", 2),
        ("elementwise", 4),
    ]


_SORTED_IOTA = """#map = affine_map<(d0, d1) -> (d0, d1)>
func.func @main(%x: tensor<96x4xf32>) -> (tensor<96x4xf32>, tensor<96x4xi64>) {
  %e = tensor.empty() : tensor<96x4xi64>
  %i = linalg.generic {indexing_maps = [#map], iterator_types = ["parallel", "parallel"]} outs(%e : tensor<96x4xi64>) {
  ^bb0(%out: i64):
    %0 = linalg.index 1 : index
    %1 = arith.index_cast %0 : index to i64
    linalg.yield %1 : i64
  } -> tensor<96x4xi64>
  %s:2 = tm_tensor.sort dimension(1) outs(%x, %i : tensor<96x4xf32>, tensor<96x4xi64>) {
  ^bb0(%a: f32, %b: f32, %c: i64, %d: i64):
    %2 = arith.cmpf oge, %a, %b : f32
    tm_tensor.yield %2 : i1
  } -> tensor<96x4xf32>, tensor<96x4xi64>
  return %s#0, %s#1 : tensor<96x4xf32>, tensor<96x4xi64>
}
"""


def test_an_iota_a_sort_reads_is_a_dispatch_of_its_own():
    """A top-k's expert indices (an iota of ``linalg.index``, no tensor input)
    sorted with the router's scores: no hoistable leaf, and a sort takes no
    clone of it, so it is computed in a dispatch of its own (iree-compile:
    ``elementwise_broadcast_384_i64`` and ``sort_96x4xf32``; an initializer
    in the MoE networks: OLMoE, Qwen2-MoE, Jamba)."""
    regions = partition_dispatches(_SORTED_IOTA)
    assert [r.kind for r in regions] == ["initializer", "other"]


def _table(n: int) -> str:
    """A dense literal of ``n`` distinct floats (one dim; reshaped by the
    caller's type)."""
    return "[" + ", ".join(f"{k / n:.4f}" for k in range(n)) + "]"


def _split_scores(batch: int, mask: str) -> str:
    """A batch matmul of ``batch`` x 3 heads, its scores read as batch x heads
    and added to a mask broadcast over the heads: an argument or a constant."""
    bh, scores = 3 * batch, f"tensor<{batch}x3x32x32xf32>"
    mask_type = f"tensor<{batch}x1x32x32xf32>"
    args, const = f", %m: {mask_type}", ""
    if mask == "constant":
        args, const = "", f"  %m = arith.constant dense<-1.0> : {mask_type}\n"
    elif mask.startswith("computed"):
        # exp of a constant: const-eval evaluates it into a global
        n = batch * 32 * 32
        values = "-1.0" if mask == "computed splat" else _table(n)
        args, const = (
            "",
            (
                f"  %flat = arith.constant dense<{values}> : tensor<{n}xf32>\n"
                f"  %m0 = tensor.expand_shape %flat [[0, 1, 2, 3]] output_shape "
                f"[{batch}, 1, 32, 32] : tensor<{n}xf32> into {mask_type}\n"
                f"  %e0 = tensor.empty() : {mask_type}\n"
                f"  %m = linalg.generic {{indexing_maps = [#map, #map], iterator_types = "
                f'["parallel", "parallel", "parallel", "parallel"]}} ins(%m0 : {mask_type}) '
                f"outs(%e0 : {mask_type}) {{\n"
                f"  ^bb0(%in: f32, %out: f32):\n"
                f"    %x = math.exp %in : f32\n"
                f"    linalg.yield %x : f32\n"
                f"  }} -> {mask_type}\n"
            ),
        )
    batch_dim = "d0" if batch != 1 else "0"
    return f"""#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#mask = affine_map<(d0, d1, d2, d3) -> ({batch_dim}, 0, d2, d3)>
func.func @main(%q: tensor<{bh}x32x64xf32>, %k: tensor<{bh}x64x32xf32>{args}) -> {scores} {{
{const}  %cst = arith.constant 0.000000e+00 : f32
  %e = tensor.empty() : tensor<{bh}x32x32xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<{bh}x32x32xf32>) -> tensor<{bh}x32x32xf32>
  %s = linalg.batch_matmul ins(%q, %k : tensor<{bh}x32x64xf32>, tensor<{bh}x64x32xf32>) outs(%f : tensor<{bh}x32x32xf32>) -> tensor<{bh}x32x32xf32>
  %x = tensor.expand_shape %s [[0, 1], [2], [3]] output_shape [{batch}, 3, 32, 32] : tensor<{bh}x32x32xf32> into {scores}
  %e2 = tensor.empty() : {scores}
  %a = linalg.generic {{indexing_maps = [#map, #mask, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}} ins(%x, %m : {scores}, {mask_type}) outs(%e2 : {scores}) {{
  ^bb0(%in: f32, %in_0: f32, %out: f32):
    %0 = arith.addf %in, %in_0 : f32
    linalg.yield %0 : f32
  }} -> {scores}
  return %a : {scores}
}}
"""


@pytest.mark.parametrize(
    ("batch", "mask", "kinds"),
    [
        # batch 2: the mask, known only at run time, reads the batch dim but
        # not the heads of the 6 -> 2x3 split: the expand cannot sink below
        # the add, which stays a dispatch of its own
        (2, "argument", ["matmul", "elementwise"]),
        # a constant mask is reshaped at compile time: one dispatch
        (2, "constant", ["matmul"]),
        # batch 1: 3 -> 1x3 splits off a unit dim only
        (1, "argument", ["matmul"]),
        (1, "constant", ["matmul"]),
    ],
)
def test_a_mask_broadcast_over_split_heads_keeps_the_batch_matmul_apart(
    batch, mask, kinds
):
    """``SinkReshapes`` moves a batch x heads ``expand_shape`` below an
    elementwise consumer only when the consumer's dims collapse back: an
    input read along the batch but not the heads, computed at run time, keeps
    them apart (a batch-2 GPT-2's scores and its causal mask, a global its
    initializer computes). iree-compile 3.13 (``--compile-to=flow``):
    ``batch_matmul_6x32x32x64`` and ``elementwise_2x3x1024`` with the mask an
    argument, ``batch_matmul_6x32x32x64`` alone with it a constant,
    ``batch_matmul_3x32x32x64`` alone at batch 1."""
    regions = partition_dispatches(_split_scores(batch, mask))
    assert [r.kind for r in regions] == kinds


def _class_token_concat(batch: int, token_first: bool) -> str:
    """A ViT's embeddings: a constant class token broadcast over the batch,
    concatenated with the patches (an argument) and added to a constant
    position table."""
    out, tok, x = (f"tensor<{batch}x{n}x8xf32>" for n in (5, 1, 4))
    (a, ta), (b, tb) = ("%t", tok), ("%x", x)
    if not token_first:
        (a, ta), (b, tb) = (b, tb), (a, ta)
    row = "1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0"
    table = ", ".join(f"[{k}.5, {row}]" for k in range(5))
    return f"""#bc = affine_map<(d0, d1, d2) -> (d1, d2)>
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#pos = affine_map<(d0, d1, d2) -> (0, d1, d2)>
func.func @main(%x: {x}) -> {out} {{
  %cls = arith.constant dense<[[0.0, {row}]]> : tensor<1x8xf32>
  %p = arith.constant dense<[[{table}]]> : tensor<1x5x8xf32>
  %e = tensor.empty() : {tok}
  %t = linalg.generic {{indexing_maps = [#bc, #id], iterator_types = ["parallel", "parallel", "parallel"]}} ins(%cls : tensor<1x8xf32>) outs(%e : {tok}) {{
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }} -> {tok}
  %c = tensor.concat dim(1) {a}, {b} : ({ta}, {tb}) -> {out}
  %e2 = tensor.empty() : {out}
  %r = linalg.generic {{indexing_maps = [#id, #pos, #id], iterator_types = ["parallel", "parallel", "parallel"]}} ins(%c, %p : {out}, tensor<1x5x8xf32>) outs(%e2 : {out}) {{
  ^bb0(%in: f32, %in_0: f32, %out: f32):
    %0 = arith.addf %in, %in_0 : f32
    linalg.yield %0 : f32
  }} -> {out}
  return %r : {out}
}}
"""


@pytest.mark.parametrize(
    ("batch", "token_first", "kinds"),
    [
        # batch 2: the token's insert into the empty concat is constant, and
        # const-eval writes it at compile time; the patches are copied in
        (2, True, ["memcpy", "elementwise"]),
        # the token last: its broadcast escapes to a global an initializer
        # computes (the JIT evaluates no lone broadcast), and both are copied
        (2, False, ["initializer", "memcpy", "memcpy", "elementwise"]),
        # batch 1: both inputs are contiguous blocks (flow.tensor.update)
        (1, True, ["elementwise"]),
        (1, False, ["elementwise"]),
    ],
)
def test_a_constant_leading_a_concat_is_written_at_compile_time(
    batch, token_first, kinds
):
    """IREE decomposes a concat into inserts into an empty tensor, in the
    order of its inputs: a constant first input makes the first insert a
    constant, which const-eval evaluates into a global, so only the inputs
    after it are copies (a batch-2 ViT's class token and patches: one
    ``slow_memcpy``, not two). iree-compile 3.13 (``--compile-to=flow``):
    ``slow_memcpy`` and ``elementwise_2x5x8`` at batch 2; only
    ``elementwise_1x5x8`` (and ``flow.tensor.update``) at batch 1; with the
    token last at batch 2, ``elementwise_broadcast_2x8`` in an initializer,
    two ``slow_memcpy`` and ``elementwise_2x5x8``."""
    regions = partition_dispatches(_class_token_concat(batch, token_first))
    assert [r.kind for r in regions] == kinds


def _gathered_positions(batch: int) -> str:
    """A constant table of positions broadcast over the batch and gathered
    by the ids (a RoBERTa's position ids)."""
    table = ", ".join(str(k) for k in range(16))
    ids, bc = f"tensor<{batch}x4xi64>", f"tensor<{batch}x16xi64>"
    return f"""#row = affine_map<(d0, d1) -> (d1)>
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @main(%ids: {ids}) -> {ids} {{
  %c16 = arith.constant 16 : index
  %t = arith.constant dense<[[{table}]]> : tensor<1x16xi64>
  %flat = tensor.collapse_shape %t [[0, 1]] : tensor<1x16xi64> into tensor<16xi64>
  %e = tensor.empty() : {bc}
  %b = linalg.generic {{indexing_maps = [#row, #id], iterator_types = ["parallel", "parallel"]}} ins(%flat : tensor<16xi64>) outs(%e : {bc}) {{
  ^bb0(%in: i64, %out: i64):
    linalg.yield %in : i64
  }} -> {bc}
  %e2 = tensor.empty() : {ids}
  %g = linalg.generic {{indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}} ins(%ids : {ids}) outs(%e2 : {ids}) {{
  ^bb0(%in: i64, %out: i64):
    %0 = linalg.index 0 : index
    %1 = arith.index_cast %in : i64 to index
    %2 = arith.cmpi slt, %1, %c16 : index
    cf.assert %2, "index must be smaller than dim size"
    %3 = tensor.extract %b[%0, %1] : {bc}
    linalg.yield %3 : i64
  }} -> {ids}
  return %g : {ids}
}}
"""


@pytest.mark.parametrize(
    ("batch", "kinds"),
    [(2, ["initializer", "elementwise"]), (1, ["elementwise"])],
)
def test_a_broadcast_constant_a_gather_captures_is_an_initializer(batch, kinds):
    """A broadcast is no hoistable leaf where its reader fuses it, but a
    gather's body captures it: it escapes to a global, and the JIT does not
    evaluate an initializer that only broadcasts, so it is a dispatch of its
    own. iree-compile 3.13 (``--compile-to=flow``): at batch 2
    ``elementwise_broadcast_2x16_i64`` in an initializer and
    ``elementwise_8_i64``; at batch 1 (no broadcast, a reshape)
    ``elementwise_4_i64`` only."""
    regions = partition_dispatches(_gathered_positions(batch))
    assert [r.kind for r in regions] == kinds


def _window_scores(bias: str) -> str:
    """A Swin's window attention scores: a batch matmul of 2 windows x 3
    heads, its scores read as 2x3x32x32 and added to a relative position
    bias over the heads, broadcast over the windows: a table gathered by
    constant indices and transposed, or the same values as a constant."""
    table = ", ".join(f"[{k}.25, {k}.5, {k}.75]" for k in range(16))
    index = ", ".join(str(k % 16) for k in range(1024))
    if bias == "gathered":
        make = f"""  %table = arith.constant dense<[{table}]> : tensor<16x3xf32>
  %index = arith.constant dense<[{index}]> : tensor<1024xi64>
  %e0 = tensor.empty() : tensor<1024x3xf32>
  %g = linalg.generic {{indexing_maps = [#row, #id2], iterator_types = ["parallel", "parallel"]}} ins(%index : tensor<1024xi64>) outs(%e0 : tensor<1024x3xf32>) {{
  ^bb0(%in: i64, %out: f32):
    %i = arith.index_cast %in : i64 to index
    %h = linalg.index 1 : index
    %v = tensor.extract %table[%i, %h] : tensor<16x3xf32>
    linalg.yield %v : f32
  }} -> tensor<1024x3xf32>
  %g3 = tensor.expand_shape %g [[0, 1], [2]] output_shape [32, 32, 3] : tensor<1024x3xf32> into tensor<32x32x3xf32>
  %e1 = tensor.empty() : tensor<3x32x32xf32>
  %t = linalg.transpose ins(%g3 : tensor<32x32x3xf32>) outs(%e1 : tensor<3x32x32xf32>) permutation = [2, 0, 1]
"""
    else:
        rows = ", ".join(
            "["
            + ", ".join(
                "["
                + ", ".join(f"{(32 * r + c) % 16}.{25 * (h + 1)}" for c in range(32))
                + "]"
                for r in range(32)
            )
            + "]"
            for h in range(3)
        )
        make = f"  %t = arith.constant dense<[{rows}]> : tensor<3x32x32xf32>\n"
    return f"""#row = affine_map<(d0, d1) -> (d0)>
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#bias = affine_map<(d0, d1, d2, d3) -> (0, d1, d2, d3)>
func.func @main(%q: tensor<6x32x64xf32>, %k: tensor<6x64x32xf32>) -> tensor<2x3x32x32xf32> {{
{make}  %b = tensor.expand_shape %t [[0, 1], [2], [3]] output_shape [1, 3, 32, 32] : tensor<3x32x32xf32> into tensor<1x3x32x32xf32>
  %cst = arith.constant 0.000000e+00 : f32
  %e = tensor.empty() : tensor<6x32x32xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<6x32x32xf32>) -> tensor<6x32x32xf32>
  %s = linalg.batch_matmul ins(%q, %k : tensor<6x32x64xf32>, tensor<6x64x32xf32>) outs(%f : tensor<6x32x32xf32>) -> tensor<6x32x32xf32>
  %x = tensor.expand_shape %s [[0, 1], [2], [3]] output_shape [2, 3, 32, 32] : tensor<6x32x32xf32> into tensor<2x3x32x32xf32>
  %e2 = tensor.empty() : tensor<2x3x32x32xf32>
  %a = linalg.generic {{indexing_maps = [#map, #bias, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}} ins(%x, %b : tensor<2x3x32x32xf32>, tensor<1x3x32x32xf32>) outs(%e2 : tensor<2x3x32x32xf32>) {{
  ^bb0(%in: f32, %in_0: f32, %out: f32):
    %0 = arith.addf %in, %in_0 : f32
    linalg.yield %0 : f32
  }} -> tensor<2x3x32x32xf32>
  return %a : tensor<2x3x32x32xf32>
}}
"""


@pytest.mark.parametrize("bias", ["gathered", "constant"])
def test_a_bound_bias_over_split_windows_keeps_the_batch_matmul_apart(bias):
    """A relative position bias over the heads, broadcast over the windows of
    a 6 -> 2x3 split, is a global IREE binds, not a constant it reshapes: a
    table gathered by constant indices is evaluated into one by const-eval,
    and a constant larger than 256 bytes that is no splat is bound as it is.
    The expand cannot sink below the add, which stays a dispatch of its own
    (a Swin's and a T5's scores; a splat mask is cloned and fuses, see
    ``test_a_mask_broadcast_over_split_heads_keeps_the_batch_matmul_apart``).
    iree-compile 3.13 (``--compile-to=flow``), both: ``batch_matmul_6x32x32x64``
    and ``elementwise_2x3072``."""
    regions = partition_dispatches(_window_scores(bias))
    assert [r.kind for r in regions] == ["matmul", "elementwise"]


def _transposed_then_collapsed(windows: bool, reader: str) -> str:
    """A matmul and its bias add, expanded and transposed, collapsed back and
    read by an elementwise op: a residual add of an argument (``"add"``),
    ``math.exp`` (``"exp"``) or nothing (``"none"``). With ``windows``, a
    Swin's window reverse (4 -> 2x2 x 2x2 rows, the middle pair swapped,
    collapsed whole); else 2 x 8 rows swapped with the next dim and
    collapsed with the last (dims apart in the source)."""
    if windows:
        mid, expand, perm, collapse = (
            "1x2x2x2x2x8",
            "[[0, 1, 2, 3, 4], [5]] output_shape [1, 2, 2, 2, 2, 8]",
            "[0, 1, 3, 2, 4, 5]",
            "[[0], [1, 2, 3, 4], [5]]",
        )
        out, shape = "tensor<1x16x8xf32>", "#id3"
        transposed = "tensor<1x2x2x2x2x8xf32>"
    else:
        mid, expand, perm, collapse = (
            "2x8x8",
            "[[0, 1], [2]] output_shape [2, 8, 8]",
            "[1, 0, 2]",
            "[[0], [1, 2]]",
        )
        out, shape = "tensor<8x16xf32>", "#id2"
        transposed = "tensor<8x2x8xf32>"
    iterators = ", ".join(['"parallel"'] * (3 if windows else 2))
    args = f"%r: {out}, " if reader == "add" else ""
    if reader == "none":
        tail = f"  return %c : {out}"
    else:
        ins = f"%r, %c : {out}, {out}" if reader == "add" else f"%c : {out}"
        maps = ", ".join([shape] * (3 if reader == "add" else 2))
        block = "%in: f32, %in_0: f32" if reader == "add" else "%in: f32"
        body = "arith.addf %in, %in_0" if reader == "add" else "math.exp %in"
        tail = f"""  %e4 = tensor.empty() : {out}
  %a = linalg.generic {{indexing_maps = [{maps}], iterator_types = [{iterators}]}} ins({ins}) outs(%e4 : {out}) {{
  ^bb0({block}, %out: f32):
    %0 = {body} : f32
    linalg.yield %0 : f32
  }} -> {out}
  return %a : {out}"""
    return f"""#id2 = affine_map<(d0, d1) -> (d0, d1)>
#col = affine_map<(d0, d1) -> (d1)>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @main({args}%x: tensor<16x8xf32>, %w: tensor<8x8xf32>) -> {out} {{
  %bias = arith.constant dense<[0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5]> : tensor<8xf32>
  %cst = arith.constant 0.000000e+00 : f32
  %e = tensor.empty() : tensor<16x8xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<16x8xf32>) -> tensor<16x8xf32>
  %m = linalg.matmul ins(%x, %w : tensor<16x8xf32>, tensor<8x8xf32>) outs(%f : tensor<16x8xf32>) -> tensor<16x8xf32>
  %b = linalg.generic {{indexing_maps = [#id2, #col, #id2], iterator_types = ["parallel", "parallel"]}} ins(%m, %bias : tensor<16x8xf32>, tensor<8xf32>) outs(%e : tensor<16x8xf32>) {{
  ^bb0(%in: f32, %in_0: f32, %out: f32):
    %0 = arith.addf %in, %in_0 : f32
    linalg.yield %0 : f32
  }} -> tensor<16x8xf32>
  %x6 = tensor.expand_shape %b {expand} : tensor<16x8xf32> into tensor<{mid}xf32>
  %e6 = tensor.empty() : {transposed}
  %t = linalg.transpose ins(%x6 : tensor<{mid}xf32>) outs(%e6 : {transposed}) permutation = {perm}
  %c = tensor.collapse_shape %t {collapse} : {transposed} into {out}
{tail}
}}
"""


@pytest.mark.parametrize(
    ("windows", "reader"),
    [(True, "add"), (True, "none"), (False, "add"), (False, "exp")],
)
def test_a_collapsed_transpose_fuses_into_its_elementwise_reader(windows, reader):
    """IREE folds the collapse of a transpose into its elementwise reader by
    expanding the reader's loops, and the transpose fuses into it as an
    input map: the bias add, the transpose and the reader are one dispatch
    (a Swin's window reverse and residual add), whichever dims the collapse
    merges. iree-compile 3.13 (``--compile-to=flow``), all four:
    ``matmul_16x8x8`` and one ``elementwise_transpose`` dispatch."""
    regions = partition_dispatches(_transposed_then_collapsed(windows, reader))
    assert [r.kind for r in regions] == ["matmul", "elementwise"]


def _rotate_half(partial: bool) -> str:
    """A rotary embedding's ``rotate_half`` (``concat(-x[..., 4:], x[...,
    :4])``) times a cosine table; with ``partial``, of the first 8 of 32
    channels only (GPT-NeoX, StableLM, Phi: ``x`` is itself a slice)."""
    width = 32 if partial else 8
    src = "%rot" if partial else "%q"
    head = (
        "  %rot = tensor.extract_slice %q[0, 0, 0] [4, 16, 8] [1, 1, 1] : "
        "tensor<4x16x32xf32> to tensor<4x16x8xf32>\n"
        if partial
        else ""
    )
    half = "tensor<4x16x4xf32>"
    return f"""#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @main(%q: tensor<4x16x{width}xf32>, %c: tensor<4x16x8xf32>) -> tensor<4x16x8xf32> {{
{head}  %lo = tensor.extract_slice {src}[0, 0, 0] [4, 16, 4] [1, 1, 1] : tensor<4x16x8xf32> to {half}
  %hi = tensor.extract_slice {src}[0, 0, 4] [4, 16, 4] [1, 1, 1] : tensor<4x16x8xf32> to {half}
  %e = tensor.empty() : {half}
  %n = linalg.generic {{indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]}} ins(%hi : {half}) outs(%e : {half}) {{
  ^bb0(%in: f32, %out: f32):
    %0 = arith.negf %in : f32
    linalg.yield %0 : f32
  }} -> {half}
  %r = tensor.concat dim(2) %n, %lo : ({half}, {half}) -> tensor<4x16x8xf32>
  %e2 = tensor.empty() : tensor<4x16x8xf32>
  %m = linalg.generic {{indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel", "parallel"]}} ins(%r, %c : tensor<4x16x8xf32>, tensor<4x16x8xf32>) outs(%e2 : tensor<4x16x8xf32>) {{
  ^bb0(%in: f32, %in_0: f32, %out: f32):
    %0 = arith.mulf %in, %in_0 : f32
    linalg.yield %0 : f32
  }} -> tensor<4x16x8xf32>
  return %m : tensor<4x16x8xf32>
}}
"""


@pytest.mark.parametrize(
    ("partial", "kinds"),
    [
        (False, ["elementwise"]),
        (True, ["elementwise", "memcpy", "memcpy", "elementwise"]),
    ],
)
def test_a_rotate_half_of_a_slice_is_not_raised(partial, kinds):
    """IREE raises ``concat(-x[..., h:], x[..., :h])`` to one elementwise op
    only when the halves are slices of a tensor 2h wide; the canonicalizer
    composes slices of a slice into slices of the whole tensor, so a partial
    rotary embedding's halves are slices of the 32-channel queries and stay
    a negation and a concat (two ``slow_memcpy``). iree-compile 3.13
    (``--compile-to=flow``): ``elementwise_512`` alone for the full rotation;
    ``elementwise_64x4``, two ``slow_memcpy`` and ``elementwise_512`` for the
    partial one."""
    regions = partition_dispatches(_rotate_half(partial))
    assert [r.kind for r in regions] == kinds
