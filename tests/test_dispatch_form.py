"""Region texts in the form of IREE's executable sources (``_dispatch_form``).

Each expectation is the form iree-compile (3.13) gives the same dispatch in
the bundled kernels dataset: i1 tensors bound as i8, elementwise producers
fused into their consumer's payload, unit dims folded and collapsible dims
merged, convolutions as generics, a Linear's transposed weight bound
untransposed with the matmul's indexing maps, a pad written by the store.
"""

import re

import pytest

from mlircost_classic.featurize import _partition, partition_dispatches
from mlircost_classic.featurize._dispatch_form import (
    _read,
    _RegionReader,
    dispatch_form,
)
from mlircost_classic.mlir import parse

_MASK = """#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#map1 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, 0)>
func.func @main(%x: tensor<1x2x64x64xf32>) -> tensor<1x2x64x1xi1> {
  %true = arith.constant true
  %cst = arith.constant 0xFF800000 : f32
  %e = tensor.empty() : tensor<1x2x64x64xi1>
  %c = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x : tensor<1x2x64x64xf32>) outs(%e : tensor<1x2x64x64xi1>) {
  ^bb0(%in: f32, %out: i1):
    %0 = arith.cmpf oeq, %in, %cst : f32
    linalg.yield %0 : i1
  } -> tensor<1x2x64x64xi1>
  %e2 = tensor.empty() : tensor<1x2x64x1xi1>
  %f = linalg.fill ins(%true : i1) outs(%e2 : tensor<1x2x64x1xi1>) -> tensor<1x2x64x1xi1>
  %r = linalg.generic {indexing_maps = [#map, #map1], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%c : tensor<1x2x64x64xi1>) outs(%f : tensor<1x2x64x1xi1>) {
  ^bb0(%in: i1, %out: i1):
    %0 = arith.andi %in, %out : i1
    linalg.yield %0 : i1
  } -> tensor<1x2x64x1xi1>
  return %r : tensor<1x2x64x1xi1>
}"""


def _function(text: str) -> str:
    return text[text.index("func.func") :]


def _loads(text: str) -> list[str]:
    """The tensor types a region's function loads, in order."""
    return re.findall(r"dispatch\.tensor\.load .* -> (tensor<[^>]*>)", _function(text))


def test_an_i1_reduction_is_one_generic_over_collapsed_dims_stored_as_i8():
    """IREE's ``main_dispatch_9_reduction_128x64_f32xi1`` of BERT's mask."""
    (region,) = partition_dispatches(_MASK)
    body = _function(region.text)
    assert body.count("linalg.generic") == 1
    assert "arith.cmpf oeq" in body and "arith.andi" in body
    assert "readonly:tensor<128x64xf32>" in body
    assert "writeonly:tensor<128xi8>" in body
    assert re.search(r"arith\.extui %\S+ : tensor<128xi1> to tensor<128xi8>", body)
    assert '["parallel", "reduction"]' in body
    assert "1x2x64" not in body
    parse(region.text)  # still MLIR the reader takes


def test_an_i1_input_is_loaded_as_i8_and_truncated():
    text = """#map = affine_map<(d0) -> (d0)>
func.func @main(%m: tensor<64xi1>, %x: tensor<64xf32>) -> tensor<64xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<64xf32>
  %s = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%m, %x : tensor<64xi1>, tensor<64xf32>) outs(%e : tensor<64xf32>) {
  ^bb0(%a: i1, %b: f32, %out: f32):
    %0 = arith.select %a, %cst, %b : f32
    linalg.yield %0 : f32
  } -> tensor<64xf32>
  return %s : tensor<64xf32>
}"""
    (region,) = partition_dispatches(text)
    assert "readonly:tensor<64xi8>" in region.text
    assert re.search(
        r"arith\.trunci %\S+ : tensor<64xi8> to tensor<64xi1>", region.text
    )


def test_a_batch_one_convolution_is_a_generic_with_its_consumer_apart():
    """IREE's ``conv_32x32x32x3x7x7_f32`` of a ResNet stem: the batch dim
    folded, the window read as ``oh * stride + kh``, the padded result
    stored into the padded tensor at the pad's offsets."""
    text = """#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#map1 = affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>
func.func @main(%x: tensor<1x3x70x70xf32>, %w: tensor<32x3x7x7xf32>, %b: tensor<32xf32>) -> tensor<1x32x34x34xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %e = tensor.empty() : tensor<1x32x32x32xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<1x32x32x32xf32>) -> tensor<1x32x32x32xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x3x70x70xf32>, tensor<32x3x7x7xf32>) outs(%f : tensor<1x32x32x32xf32>) -> tensor<1x32x32x32xf32>
  %bx = tensor.expand_shape %b [[0, 1, 2]] output_shape [32, 1, 1] : tensor<32xf32> into tensor<32x1x1xf32>
  %r = linalg.generic {indexing_maps = [#map, #map1, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c, %bx : tensor<1x32x32x32xf32>, tensor<32x1x1xf32>) outs(%e : tensor<1x32x32x32xf32>) {
  ^bb0(%in: f32, %in_0: f32, %out: f32):
    %0 = arith.addf %in, %in_0 : f32
    %1 = arith.maximumf %0, %cst : f32
    linalg.yield %1 : f32
  } -> tensor<1x32x32x32xf32>
  %p = tensor.pad %r low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %ninf : f32
  } : tensor<1x32x32x32xf32> to tensor<1x32x34x34xf32>
  return %p : tensor<1x32x34x34xf32>
}"""
    (region,) = partition_dispatches(text)
    body = _function(region.text)
    assert "linalg.conv_2d_nchw_fchw" not in body
    assert "tensor.pad" not in body and "tensor.expand_shape" not in body
    assert "(d3, d1 * 2 + d4, d2 * 2 + d5)" in body  # the input, batch folded
    assert "(d0, d3, d4, d5)" in body  # the filter
    assert body.count("linalg.generic") == 2  # a root keeps its consumer apart
    assert "readwrite:tensor<32x34x34xf32>" in body
    assert "offsets = [0, 1, 1], sizes = [32, 32, 32]" in body
    parse(region.text)


def test_a_linear_binds_its_weight_untransposed_with_the_matmul_maps():
    """torch's ``x @ W.T``: IREE's ``linalg.matmul indexing_maps = [(d0, d2),
    (d1, d2), (d0, d1)]`` reading ``W`` as ``[N, K]``."""
    text = """func.func @main(%x: tensor<64x128xf32>) -> tensor<64x32xf32> {
  %w = arith.constant dense_resource<weight> : tensor<32x128xf32>
  %cst = arith.constant 0.000000e+00 : f32
  %e = tensor.empty() : tensor<128x32xf32>
  %t = linalg.transpose ins(%w : tensor<32x128xf32>) outs(%e : tensor<128x32xf32>) permutation = [1, 0]
  %e2 = tensor.empty() : tensor<64x32xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e2 : tensor<64x32xf32>) -> tensor<64x32xf32>
  %m = linalg.matmul ins(%x, %t : tensor<64x128xf32>, tensor<128x32xf32>) outs(%f : tensor<64x32xf32>) -> tensor<64x32xf32>
  return %m : tensor<64x32xf32>
}"""
    regions = partition_dispatches(text)
    (matmul,) = [r for r in regions if r.kind == "matmul"]
    body = _function(matmul.text)
    assert (
        "linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, "
        "affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>]"
    ) in body
    assert "readonly:tensor<32x128xf32>" in body  # the weight as torch holds it
    assert "tensor<64x128xf32>, tensor<32x128xf32>" in body
    parse(matmul.text)


def test_fusion_takes_producers_read_once_and_keeps_returned_ones():
    """A producer fuses when its consumer is its only reader (two reads by the
    same op are one, once identical inputs merge); one that is also stored
    stays a generic of its own (IREE's single-use elementwise fusion)."""
    ops = """  %e = tensor.empty() : tensor<64xf32>
  %a = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%x : tensor<64xf32>) outs(%e : tensor<64xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = math.exp %in : f32
    linalg.yield %0 : f32
  } -> tensor<64xf32>
  %b = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%a, %a : tensor<64xf32>, tensor<64xf32>) outs(%e : tensor<64xf32>) {
  ^bb0(%in: f32, %in_0: f32, %out: f32):
    %0 = arith.mulf %in, %in_0 : f32
    linalg.yield %0 : f32
  } -> tensor<64xf32>
"""
    head = "#map = affine_map<(d0) -> (d0)>\nfunc.func @main(%x: tensor<64xf32>)"
    once = f"{head} -> tensor<64xf32> {{\n{ops}  return %b : tensor<64xf32>\n}}"
    (region,) = partition_dispatches(once)
    body = _function(region.text)
    assert body.count("linalg.generic") == 1
    assert body.count("math.exp") == 1 and "arith.mulf" in body
    assert re.search(r"ins\(%x : tensor<64xf32>\)", body)  # one input left
    stored = (
        f"{head} -> (tensor<64xf32>, tensor<64xf32>) {{\n{ops}"
        "  return %b, %a : tensor<64xf32>, tensor<64xf32>\n}"
    )
    (region,) = partition_dispatches(stored)
    body = _function(region.text)
    assert body.count("linalg.generic") == 2
    assert body.count("math.exp") == 1


def test_a_copied_slice_is_read_by_the_load_itself():
    """IREE's ``slow_memcpy`` of GPT-BigCode's key slice: the load reads the
    slice (its offsets and sizes), rank-reduced; no extract_slice is left."""
    text = """func.func @main(%x: tensor<1x1x128x192xf32>) -> tensor<1x1x128x128xf32> {
  %s = tensor.extract_slice %x[0, 0, 0, 64] [1, 1, 128, 128] [1, 1, 1, 1] : tensor<1x1x128x192xf32> to tensor<1x1x128x128xf32>
  return %s : tensor<1x1x128x128xf32>
}"""
    (region,) = partition_dispatches(text)
    body = _function(region.text)
    assert region.kind == "memcpy" and "extract_slice" not in body
    assert "offsets = [0, 64], sizes = [128, 128]" in body
    assert "-> tensor<128x128xf32>" in body
    assert "writeonly:tensor<128x128xf32>" in body


def _names(body: str) -> tuple[set[str], list[str]]:
    """Values a function body reads that it does not define, and the loaded
    values it never reads."""
    defined = set(re.findall(r"(%[\w.$-]+)(?::\d+)? = ", body))
    defined |= set(re.findall(r"(%[\w.$-]+):", body))  # block arguments
    used = set(re.findall(r"%[\w.$-]+", body))
    loads = re.findall(r"(%[\w.$-]+) = iree_tensor_ext\.dispatch\.tensor\.load", body)
    unread = [
        v for v in loads if len(re.findall(re.escape(v) + r"(?![\w.$-])", body)) == 1
    ]
    return used - defined, unread


_SLICE_UNIT = """#id = affine_map<(d0, d1) -> (d0, d1)>
#col = affine_map<(d0, d1) -> (d1)>
func.func @main(%x: tensor<1x32x64xf32>, %b: tensor<64xf32>) -> (tensor<1x64xf32>, tensor<1x64xf32>) {
  %lo = arith.constant -1.0e+30 : f32
  %s = tensor.extract_slice %x[0, 0, 0] [1, 1, 64] [1, 1, 1] : tensor<1x32x64xf32> to tensor<1x1x64xf32>
  %c = tensor.collapse_shape %s [[0, 1], [2]] : tensor<1x1x64xf32> into tensor<1x64xf32>
  %e = tensor.empty() : tensor<1x64xf32>
  %a = linalg.generic {indexing_maps = [#id, #col, #id], iterator_types = ["parallel", "parallel"]} ins(%c, %b : tensor<1x64xf32>, tensor<64xf32>) outs(%e : tensor<1x64xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %v = arith.addf %p, %q : f32
    linalg.yield %v : f32
  } -> tensor<1x64xf32>
  %m = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a : tensor<1x64xf32>) outs(%e : tensor<1x64xf32>) {
  ^bb0(%p: f32, %o: f32):
    %v = arith.maximumf %p, %lo : f32
    linalg.yield %v : f32
  } -> tensor<1x64xf32>
  return %a, %m : tensor<1x64xf32>, tensor<1x64xf32>
}"""


def test_a_slice_read_through_a_unit_reshape_names_its_load():
    """RWKV's per-step slice: the load reads the slice, the unit-dim
    collapse folds away, and the generic reads the load (it read the
    slice's name, defined nowhere, and the load's value went unread)."""
    (region,) = partition_dispatches(_SLICE_UNIT)
    body = _function(region.text)
    assert "extract_slice" not in body and "collapse_shape" not in body
    assert _names(body) == (set(), [])
    assert "ins(%x, %b : tensor<64xf32>, tensor<64xf32>)" in body


_LAYER_NORM_F64 = """#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
#v = affine_map<(d0) -> (d0)>
func.func @main(%x: tensor<32x128xf32>) -> tensor<32x128xf32> {
  %c0 = arith.constant 0.0 : f32
  %c0d = arith.constant 0.0 : f64
  %n = arith.constant 128.0 : f32
  %nd = arith.constant 128.0 : f64
  %eps = arith.constant 1.0e-5 : f32
  %e64 = tensor.empty() : tensor<32x128xf64>
  %e32 = tensor.empty() : tensor<32x128xf32>
  %r64 = tensor.empty() : tensor<32xf64>
  %r32 = tensor.empty() : tensor<32xf32>
  %x64 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<32x128xf32>) outs(%e64 : tensor<32x128xf64>) {
  ^bb0(%a: f32, %o: f64):
    %v = arith.extf %a : f32 to f64
    linalg.yield %v : f64
  } -> tensor<32x128xf64>
  %f64 = linalg.fill ins(%c0d : f64) outs(%r64 : tensor<32xf64>) -> tensor<32xf64>
  %s64 = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]} ins(%x64 : tensor<32x128xf64>) outs(%f64 : tensor<32xf64>) {
  ^bb0(%a: f64, %o: f64):
    %v = arith.addf %a, %o : f64
    linalg.yield %v : f64
  } -> tensor<32xf64>
  %m64 = linalg.generic {indexing_maps = [#v, #v], iterator_types = ["parallel"]} ins(%s64 : tensor<32xf64>) outs(%r64 : tensor<32xf64>) {
  ^bb0(%a: f64, %o: f64):
    %v = arith.divf %a, %nd : f64
    linalg.yield %v : f64
  } -> tensor<32xf64>
  %c64 = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]} ins(%x64, %m64 : tensor<32x128xf64>, tensor<32xf64>) outs(%e64 : tensor<32x128xf64>) {
  ^bb0(%a: f64, %b: f64, %o: f64):
    %v = arith.subf %a, %b : f64
    linalg.yield %v : f64
  } -> tensor<32x128xf64>
  %sq = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%c64, %c64 : tensor<32x128xf64>, tensor<32x128xf64>) outs(%e64 : tensor<32x128xf64>) {
  ^bb0(%a: f64, %b: f64, %o: f64):
    %v = arith.mulf %a, %b : f64
    linalg.yield %v : f64
  } -> tensor<32x128xf64>
  %v64 = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]} ins(%sq : tensor<32x128xf64>) outs(%f64 : tensor<32xf64>) {
  ^bb0(%a: f64, %o: f64):
    %v = arith.addf %a, %o : f64
    linalg.yield %v : f64
  } -> tensor<32xf64>
  %var64 = linalg.generic {indexing_maps = [#v, #v], iterator_types = ["parallel"]} ins(%v64 : tensor<32xf64>) outs(%r64 : tensor<32xf64>) {
  ^bb0(%a: f64, %o: f64):
    %v = arith.divf %a, %nd : f64
    linalg.yield %v : f64
  } -> tensor<32xf64>
  %var32 = linalg.generic {indexing_maps = [#v, #v], iterator_types = ["parallel"]} ins(%var64 : tensor<32xf64>) outs(%r32 : tensor<32xf32>) {
  ^bb0(%a: f64, %o: f32):
    %v = arith.truncf %a : f64 to f32
    linalg.yield %v : f32
  } -> tensor<32xf32>
  %f32 = linalg.fill ins(%c0 : f32) outs(%r32 : tensor<32xf32>) -> tensor<32xf32>
  %s32 = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]} ins(%x : tensor<32x128xf32>) outs(%f32 : tensor<32xf32>) {
  ^bb0(%a: f32, %o: f32):
    %v = arith.addf %a, %o : f32
    linalg.yield %v : f32
  } -> tensor<32xf32>
  %m32 = linalg.generic {indexing_maps = [#v, #v], iterator_types = ["parallel"]} ins(%s32 : tensor<32xf32>) outs(%r32 : tensor<32xf32>) {
  ^bb0(%a: f32, %o: f32):
    %v = arith.divf %a, %n : f32
    linalg.yield %v : f32
  } -> tensor<32xf32>
  %rs = linalg.generic {indexing_maps = [#v, #v], iterator_types = ["parallel"]} ins(%var32 : tensor<32xf32>) outs(%r32 : tensor<32xf32>) {
  ^bb0(%a: f32, %o: f32):
    %v = arith.addf %a, %eps : f32
    %w = math.rsqrt %v : f32
    linalg.yield %w : f32
  } -> tensor<32xf32>
  %c32 = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]} ins(%x, %m32 : tensor<32x128xf32>, tensor<32xf32>) outs(%e32 : tensor<32x128xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %v = arith.subf %a, %b : f32
    linalg.yield %v : f32
  } -> tensor<32x128xf32>
  %y = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]} ins(%c32, %rs : tensor<32x128xf32>, tensor<32xf32>) outs(%e32 : tensor<32x128xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %v = arith.mulf %a, %b : f32
    linalg.yield %v : f32
  } -> tensor<32x128xf32>
  return %y : tensor<32x128xf32>
}"""


def test_a_merged_f64_twin_is_not_loaded():
    """torch writes a LayerNorm's centring ``x - mean`` in f64 and in f32;
    demoted to f32, CSE keeps one (both in IREE and in the partitioner).
    iree-compile 3.13 (``--compile-to=flow``): two dispatches, the second,
    ``reduction_32x128_f32``, loads one ``tensor<32x128xf32>``; the region
    also loaded the merged twin it no longer read."""
    regions = partition_dispatches(_LAYER_NORM_F64)
    assert len(regions) == 2
    for region in regions:
        assert _names(_function(region.text)) == (set(), [])
    assert _loads(regions[1].text) == ["tensor<32x128xf32>"]


_EXTENDED = """#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
func.func @main(%p: tensor<64x128xf16>, %q: tensor<64x128xf16>, %w: tensor<128x128xf16>) -> (tensor<64x128xf32>, tensor<64x128xf32>) {
  %c0 = arith.constant 0.0 : f32
  %n = arith.constant 128.0 : f32
  %e16 = tensor.empty() : tensor<64x128xf16>
  %e32 = tensor.empty() : tensor<64x128xf32>
  %r32 = tensor.empty() : tensor<64xf32>
  %x = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%p, %q : tensor<64x128xf16>, tensor<64x128xf16>) outs(%e16 : tensor<64x128xf16>) {
  ^bb0(%a: f16, %b: f16, %o: f16):
    %v = arith.addf %a, %b : f16
    linalg.yield %v : f16
  } -> tensor<64x128xf16>
  %xe = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<64x128xf16>) outs(%e32 : tensor<64x128xf32>) {
  ^bb0(%a: f16, %o: f32):
    %v = arith.extf %a : f16 to f32
    linalg.yield %v : f32
  } -> tensor<64x128xf32>
  %f = linalg.fill ins(%c0 : f32) outs(%r32 : tensor<64xf32>) -> tensor<64xf32>
  %s = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]} ins(%xe : tensor<64x128xf32>) outs(%f : tensor<64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %v = arith.addf %a, %o : f32
    linalg.yield %v : f32
  } -> tensor<64xf32>
  %y = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]} ins(%xe, %s : tensor<64x128xf32>, tensor<64xf32>) outs(%e32 : tensor<64x128xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %m = arith.divf %b, %n : f32
    %v = arith.subf %a, %m : f32
    linalg.yield %v : f32
  } -> tensor<64x128xf32>
  %ew = tensor.empty() : tensor<128x128xf32>
  %we = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%w : tensor<128x128xf16>) outs(%ew : tensor<128x128xf32>) {
  ^bb0(%a: f16, %o: f32):
    %v = arith.extf %a : f16 to f32
    linalg.yield %v : f32
  } -> tensor<128x128xf32>
  %fm = linalg.fill ins(%c0 : f32) outs(%e32 : tensor<64x128xf32>) -> tensor<64x128xf32>
  %mm = linalg.matmul ins(%xe, %we : tensor<64x128xf32>, tensor<128x128xf32>) outs(%fm : tensor<64x128xf32>) -> tensor<64x128xf32>
  return %y, %mm : tensor<64x128xf32>, tensor<64x128xf32>
}"""


def test_a_bit_extend_is_cloned_into_its_readers_region():
    """iree-compile 3.13 (``--compile-to=flow``) of the module: three
    dispatches; ``reduction_64x128_f32`` loads ``tensor<64x128xf16>`` and
    widens it itself (``isClonableIntoDispatchOp``: bit-extends are cloned),
    ``matmul_64x128x128_f16xf16xf32`` reads the f16 operands (the extends
    folded into the matmul, ``NamedImplicitCastOpConversion``). Both regions
    loaded the widened f32 tensors."""
    regions = partition_dispatches(_EXTENDED)
    assert [r.kind for r in regions] == ["elementwise", "reduction", "matmul"]
    reduction = _function(regions[1].text)
    assert _loads(reduction) == ["tensor<64x128xf16>"]
    assert "arith.extf" in reduction
    assert _names(reduction) == (set(), [])
    matmul = _function(regions[2].text)
    assert "arith.extf" not in matmul
    assert _loads(matmul) == ["tensor<64x128xf16>", "tensor<128x128xf16>"]
    assert "ins(%x, %w : tensor<64x128xf16>, tensor<128x128xf16>)" in matmul
    assert _names(matmul) == (set(), [])


_BIASED = """#id2 = affine_map<(d0, d1) -> (d0, d1)>
#id4 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @main(%x: tensor<49x32xf32>, %img: tensor<1x32x9x9xf32>) -> (tensor<49x128xf32>, tensor<1x128x7x7xf32>) {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense_resource<w_mm> : tensor<32x128xf32>
  %bias = arith.constant dense_resource<b_mm> : tensor<128xf32>
  %e = tensor.empty() : tensor<49x128xf32>
  %bb = linalg.broadcast ins(%bias : tensor<128xf32>) outs(%e : tensor<49x128xf32>) dimensions = [0]
  %mm = linalg.matmul ins(%x, %w : tensor<49x32xf32>, tensor<32x128xf32>) outs(%bb : tensor<49x128xf32>) -> tensor<49x128xf32>
  %r = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%mm : tensor<49x128xf32>) outs(%e : tensor<49x128xf32>) {
  ^bb0(%a: f32, %o: f32):
    %c = arith.cmpf ugt, %a, %zero : f32
    %s = arith.select %c, %a, %zero : f32
    linalg.yield %s : f32
  } -> tensor<49x128xf32>
  %cw = arith.constant dense_resource<w_cv> : tensor<128x32x3x3xf32>
  %cb = arith.constant dense_resource<b_cv> : tensor<128xf32>
  %e4 = tensor.empty() : tensor<1x128x7x7xf32>
  %cbb = linalg.broadcast ins(%cb : tensor<128xf32>) outs(%e4 : tensor<1x128x7x7xf32>) dimensions = [0, 2, 3]
  %cv = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%img, %cw : tensor<1x32x9x9xf32>, tensor<128x32x3x3xf32>) outs(%cbb : tensor<1x128x7x7xf32>) -> tensor<1x128x7x7xf32>
  %cr = linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%cv : tensor<1x128x7x7xf32>) outs(%e4 : tensor<1x128x7x7xf32>) {
  ^bb0(%a: f32, %o: f32):
    %c = arith.cmpf ugt, %a, %zero : f32
    %s = arith.select %c, %a, %zero : f32
    linalg.yield %s : f32
  } -> tensor<1x128x7x7xf32>
  return %r, %cr : tensor<49x128xf32>, tensor<1x128x7x7xf32>
}"""

_SQUEEZE_EXCITE = """#m4 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#m4b = affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, 0)>
func.func @main(%p: tensor<1x12x1x1xf32>, %x: tensor<1x96x4x4xf32>) -> tensor<1x96x4x4xf32> {
  %one = arith.constant 1.0 : f32
  %w = arith.constant dense_resource<w_fc> : tensor<96x12x1x1xf32>
  %bias = arith.constant dense_resource<b_fc> : tensor<96xf32>
  %e = tensor.empty() : tensor<1x96x1x1xf32>
  %bb = linalg.broadcast ins(%bias : tensor<96xf32>) outs(%e : tensor<1x96x1x1xf32>) dimensions = [0, 2, 3]
  %fc = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%p, %w : tensor<1x12x1x1xf32>, tensor<96x12x1x1xf32>) outs(%bb : tensor<1x96x1x1xf32>) -> tensor<1x96x1x1xf32>
  %sg = linalg.generic {indexing_maps = [#m4, #m4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%fc : tensor<1x96x1x1xf32>) outs(%e : tensor<1x96x1x1xf32>) {
  ^bb0(%s: f32, %o: f32):
    %n = arith.negf %s : f32
    %ex = math.exp %n : f32
    %d = arith.addf %ex, %one : f32
    %r = arith.divf %one, %d : f32
    linalg.yield %r : f32
  } -> tensor<1x96x1x1xf32>
  %e4 = tensor.empty() : tensor<1x96x4x4xf32>
  %y = linalg.generic {indexing_maps = [#m4, #m4b, #m4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x, %sg : tensor<1x96x4x4xf32>, tensor<1x96x1x1xf32>) outs(%e4 : tensor<1x96x4x4xf32>) {
  ^bb0(%a: f32, %s: f32, %o: f32):
    %v = arith.mulf %a, %s : f32
    linalg.yield %v : f32
  } -> tensor<1x96x4x4xf32>
  return %y : tensor<1x96x4x4xf32>
}"""


def test_a_broadcast_bias_init_is_detached_and_the_bias_bound():
    """iree-compile 3.13 (``--compile-to=flow``): ``matmul_49x128x32_f32``
    loads x, the weight and the bias ``tensor<128xf32>``, fills zero, and adds
    the bias in its ReLU's generic (``DetachElementwiseFromNamedOps``, then
    elementwise fusion); ``conv_128x7x7x32x3x3_f32`` the same. The regions
    loaded the broadcast bias (``tensor<49x128xf32>``) as the init."""
    regions = partition_dispatches(_BIASED)
    assert [r.kind for r in regions] == ["matmul", "conv"]
    matmul, conv = (_function(r.text) for r in regions)
    assert _loads(matmul) == [
        "tensor<49x32xf32>",
        "tensor<32x128xf32>",
        "tensor<128xf32>",
    ]
    assert _loads(conv) == [
        "tensor<32x9x9xf32>",
        "tensor<128x32x3x3xf32>",
        "tensor<128xf32>",
    ]
    for text in (matmul, conv):
        assert "linalg.fill" in text
        assert "linalg.broadcast" not in text
        assert text.count("linalg.generic") == 1 + (text is conv)
        assert _names(text) == (set(), [])
    assert "linalg.matmul" in matmul and "outs(%bb" not in matmul


def test_a_squeeze_excite_bias_moves_to_the_scaling_dispatch():
    """iree-compile 3.13: ``matvec_like_96x12_f32`` loads the input and the
    weight only; ``elementwise_96x16_f32`` loads x, the matvec's result and
    the bias ``tensor<96xf32>`` and computes bias, sigmoid and scale in one
    generic: the detached add's consumer reads it broadcast (more non-unit
    loops than the root), so it does not join the root's dispatch."""
    matvec, scale = partition_dispatches(_SQUEEZE_EXCITE)
    assert _loads(matvec.text) == ["tensor<12xf32>", "tensor<96x12xf32>"]
    assert sorted(_loads(scale.text)) == sorted(
        ["tensor<96x16xf32>", "tensor<96xf32>", "tensor<96xf32>"]
    )
    body = _function(scale.text)
    assert body.count("linalg.generic") == 1  # the sigmoid fused into the scale
    assert _names(body) == (set(), [])


_WIDENED_BN = """#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#map1 = affine_map<(d0) -> (d0)>
#map2 = affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>
func.func @main(%x: tensor<1x96x12x12xf16>, %mean: tensor<192xf16>) -> tensor<1x192x12x12xf16> {
  %w = arith.constant dense_resource<w> : tensor<192x96x1x1xf16>
  %m = arith.constant dense_resource<m> : tensor<192xf16>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x192x12x12xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x192x12x12xf32>) -> tensor<1x192x12x12xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x96x12x12xf16>, tensor<192x96x1x1xf16>) outs(%f : tensor<1x192x12x12xf32>) -> tensor<1x192x12x12xf32>
  %e1 = tensor.empty() : tensor<192xf32>
  %me = linalg.generic {indexing_maps = [#map1, #map1], iterator_types = ["parallel"]} ins(%m : tensor<192xf16>) outs(%e1 : tensor<192xf32>) {
  ^bb0(%in: f16, %out: f32):
    %v = arith.extf %in : f16 to f32
    linalg.yield %v : f32
  } -> tensor<192xf32>
  %ex = tensor.expand_shape %me [[0, 1, 2]] output_shape [192, 1, 1] : tensor<192xf32> into tensor<192x1x1xf32>
  %e2 = tensor.empty() : tensor<1x192x12x12xf16>
  %y = linalg.generic {indexing_maps = [#map, #map2, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c, %ex : tensor<1x192x12x12xf32>, tensor<192x1x1xf32>) outs(%e2 : tensor<1x192x12x12xf16>) {
  ^bb0(%in: f32, %in_0: f32, %out: f16):
    %s = arith.subf %in, %in_0 : f32
    %t = arith.truncf %s : f32 to f16
    linalg.yield %t : f16
  } -> tensor<1x192x12x12xf16>
  return %y : tensor<1x192x12x12xf16>
}"""


def test_an_extend_behind_a_reshape_is_cloned_and_fused():
    """A BatchNorm's f16 constant widened, then expanded to ``192x1x1``.
    iree-compile 3.13 (``--compile-to=flow``): one dispatch,
    ``matmul_like_192x144x96_f16xf16xf32``, loads the constant as
    ``tensor<192xf16>`` and widens it in the consumer's generic (the reshape
    propagated above the extend, the extend cloned and fused). The region
    loaded the widened ``tensor<192xf32>``."""
    (region,) = partition_dispatches(_WIDENED_BN)
    assert _loads(region.text) == [
        "tensor<96x144xf16>",
        "tensor<192x96xf16>",
        "tensor<192xf16>",
    ]
    body = _function(region.text)
    assert body.count("linalg.generic") == 2  # the extend fused into its reader
    assert "tensor.expand_shape" not in body
    assert _names(body) == (set(), [])


def test_dynamic_shapes_are_left_as_they_are():
    text = """#map = affine_map<(d0, d1) -> (d0, d1)>
func.func @main(%x: tensor<?x1xf32>) -> tensor<?x1xf32> {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?x1xf32>
  %e = tensor.empty(%n) : tensor<?x1xf32>
  %y = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<?x1xf32>) outs(%e : tensor<?x1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = math.exp %in : f32
    linalg.yield %0 : f32
  } -> tensor<?x1xf32>
  return %y : tensor<?x1xf32>
}"""
    regions = partition_dispatches(text)
    assert any("tensor<?x1xf32>" in r.text for r in regions)
    for r in regions:
        parse(r.text)


def test_torch_mlir_sorts_are_iree_linalg_ext_ones():
    text = """func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %s = tm_tensor.sort dimension(1) outs(%x : tensor<2x4xf32>) {
  ^bb0(%a: f32, %b: f32):
    %0 = arith.cmpf oge, %a, %b : f32
    tm_tensor.yield %0 : i1
  } -> tensor<2x4xf32>
  return %s : tensor<2x4xf32>
}"""
    (region,) = partition_dispatches(text)
    assert "tm_tensor" not in region.text
    assert "iree_linalg_ext.sort dimension(1)" in region.text
    assert "iree_linalg_ext.yield" in region.text


def test_text_it_cannot_read_comes_back_unchanged():
    text = "func.func @f() {\nreturn\n}"
    assert dispatch_form(text) == text
    assert dispatch_form("not mlir at all") == "not mlir at all"


_SORT_AND_EXP = """#map = affine_map<(d0, d1) -> (d0, d1)>
func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %s = tm_tensor.sort dimension(1) outs(%x : tensor<2x4xf32>) {
  ^bb0(%a: f32, %b: f32):
    %0 = arith.cmpf oge, %a, %b : f32
    tm_tensor.yield %0 : i1
  } -> tensor<2x4xf32>
  %e = tensor.empty() : tensor<2x4xf32>
  %y = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%s : tensor<2x4xf32>) outs(%e : tensor<2x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = math.exp %in : f32
    linalg.yield %0 : f32
  } -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}"""
# a type alias: the module's ops read it, a region's text does not define it
_ALIASED = """!t = tensor<64xf32>
#map = affine_map<(d0) -> (d0)>
func.func @main(%x: !t) -> !t {
  %e = tensor.empty() : !t
  %a = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%x : !t) outs(%e : !t) {
  ^bb0(%in: f32, %out: f32):
    %0 = math.exp %in : f32
    linalg.yield %0 : f32
  } -> !t
  return %a : !t
}"""


@pytest.mark.parametrize("text", [_MASK, _SORT_AND_EXP, _ALIASED])
def test_regions_read_from_the_module_ops_are_those_read_from_their_text(
    text, monkeypatch
):
    """The partitioner hands each region's function to the rewrite as the
    module's parse read it (its own ops' texts), parsing only the lines it
    wrote: the same ops, and the same text, as reading the region's text."""
    calls = []
    rewrite = _partition._dispatch_form

    def spy(wrapped, swapped, read):
        calls.append((wrapped, swapped, read))
        return rewrite(wrapped, swapped, read)

    monkeypatch.setattr(_partition, "_dispatch_form", spy)
    regions = partition_dispatches(text)
    assert len(calls) == len(regions)
    fields = ("name", "results", "operands", "operand_types", "result_types")
    fields += ("attributes", "text")
    reused = 0
    for region, (wrapped, swapped, read) in zip(regions, calls, strict=True):
        assert region.text == dispatch_form(wrapped, swapped)
        whole = wrapped.replace("tm_tensor.", "iree_linalg_ext.").split("\n")
        at = next(k for k, line in enumerate(whole) if line.startswith("func.func"))
        lines = [line for line in whole[:at] if line.startswith("#")]
        lines += whole[at : whole.index("return") + 2]
        (fn, starts, aliases), (fn2, starts2, aliases2) = read(lines), _read(lines)
        assert (starts, aliases) == (starts2, aliases2)
        for a, b in zip(fn.ops, fn2.ops, strict=True):
            assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]
        module_ops = read.func.__self__.known.values()
        reused += sum(any(a is op for op in module_ops) for a in fn.ops)
    assert (reused > 0) == (text is not _ALIASED)


def test_a_region_reads_alone_when_another_regions_lines_do_not_parse():
    reader = _RegionReader("")
    good = ["%c0 = arith.constant 0 : index", "return"]
    read = reader.reader(good)
    reader.reader(["%x = tensor.empty() : tensor<4xf32", "return"])  # no '>'
    lines = ["#m = affine_map<(d0) -> (d0)>", "func.func @f() {", *good, "}"]
    fn, starts, aliases = read(lines)
    assert [op.name for op in fn.ops] == ["arith.constant", "func.return"]
    assert starts == [3, 4] and aliases == {"#m": "affine_map<(d0) -> (d0)>"}


_DOWNSAMPLE = """func.func @main(%x: tensor<1x32x16x16xf32>, %w: tensor<64x32x1x1xf32>) -> tensor<1x64x8x8xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %e = tensor.empty() : tensor<1x64x8x8xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<1x64x8x8xf32>) -> tensor<1x64x8x8xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x32x16x16xf32>, tensor<64x32x1x1xf32>) outs(%f : tensor<1x64x8x8xf32>) -> tensor<1x64x8x8xf32>
  return %c : tensor<1x64x8x8xf32>
}"""


def test_a_strided_1x1_convolution_loads_a_strided_slice():
    """IREE's ``matmul_like_64x8x8x32_f32`` of a ResNet downsample: the input
    loaded as a ``32x8x8`` slice with strides ``[1, 2, 2]`` of the
    ``32x16x16`` tensor and read through the plain loops, not ``d1 * 2``."""
    (region,) = partition_dispatches(_DOWNSAMPLE)
    body = _function(region.text)
    assert "sizes = [32, 8, 8], strides = [1, 2, 2]" in body
    assert "readonly:tensor<32x16x16xf32>> -> tensor<32x8x8xf32>" in body
    assert "(d0, d1, d2, d3) -> (d3, d1, d2)" in body  # the input, plain loops
    assert "d1 * 2" not in body and "d2 * 2" not in body
    parse(region.text)
    # with stride 1 nothing is sliced: the 1x1 convolution reads its input whole
    (plain,) = partition_dispatches(
        _DOWNSAMPLE.replace("strides = dense<2>", "strides = dense<1>").replace(
            "1x64x8x8", "1x64x16x16"
        )
    )
    assert "strides = [1, 2" not in plain.text
    assert "-> tensor<32x256xf32>" in plain.text  # its spatial dims collapsed


def test_bindings_sit_at_offsets_of_their_own_as_in_iree():
    """IREE binds each operand at its own byte offset, an ``index`` constant
    each: the region lays its bindings out one after another from 0, at
    multiples of 64 bytes."""
    (region,) = partition_dispatches(_DOWNSAMPLE)
    body = _function(region.text)
    offsets = re.findall(r"binding\((\d)\) alignment\(64\) offset\((%\w+)\)", body)
    assert [b for b, _ in offsets] == ["0", "1", "2"]
    values = dict(re.findall(r"(%\w+) = arith\.constant (\d+) : index", body))
    at = [int(values[name]) for _, name in offsets]
    # input 32x16x16 f32, weight 64x32 f32 (the filter's unit dims folded), output
    assert at == [0, 32 * 16 * 16 * 4, 32 * 16 * 16 * 4 + 64 * 32 * 4]
    assert len(set(name for _, name in offsets)) == 3
