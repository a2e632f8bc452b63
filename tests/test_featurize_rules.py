"""FLOP / byte rules and shape features on hand-built modules with hand-computed counts."""

import numpy as np
import pytest

from mlircost_classic.featurize import (
    ROOT_DIM_FEATURES,
    ROOT_LOOP_FEATURES,
    SHAPE_FEATURES,
    ShapeFeatures,
)
from mlircost_classic.featurize._rules import parse_ints
from mlircost_classic.mlir._ir import Op, ParsedModule, ShapedType


def t(*shape, element="f32", kind="tensor"):
    return ShapedType(kind, tuple(shape), element)


def op(name, operands=(), results=(), attributes=None, text="", depth=1, regions=0):
    return Op(
        name,
        name.split(".")[0],
        results=tuple(f"%r{i}_{id(results)}" for i in range(len(results))),
        operands=tuple(f"%o{i}_{id(operands)}" for i in range(len(operands))),
        result_types=tuple(results),
        operand_types=tuple(operands),
        attributes=attributes or {},
        text=text,
        depth=depth,
        function="f",
        num_regions=regions,
    )


def features(*ops, **module_kw):
    module = ParsedModule(ops=list(ops), **module_kw)
    shapes = ShapeFeatures(log_scale=False).fit([module])
    row = shapes.transform([module])[0]
    return dict(zip(shapes.get_feature_names_out(), row, strict=True))


def test_linalg_matmul_is_2mnk():
    mm = op("linalg.matmul", [t(8, 4), t(4, 16), t(8, 16)], [t(8, 16)])
    f = features(mm)
    assert f["matmul FLOPs"] == 2 * 8 * 16 * 4
    assert f["bytes moved matmul"] == 4 * (8 * 4 + 4 * 16 + 8 * 16 + 8 * 16)
    assert f["arithmetic intensity"] == f["FLOPs total"] / f["bytes moved total"]


def test_matmul_without_result_type_uses_destination_operand():
    mm = op("linalg.matmul", [t(8, 4), t(4, 16), t(8, 16)], [])
    assert features(mm)["matmul FLOPs"] == 2 * 8 * 16 * 4


def test_transposed_and_batched_matmuls():
    ta = op("linalg.matmul_transpose_a", [t(4, 8), t(4, 16), t(8, 16)], [t(8, 16)])
    assert features(ta)["matmul FLOPs"] == 2 * 8 * 16 * 4
    bmm = op(
        "linalg.batch_matmul", [t(3, 8, 4), t(3, 4, 16), t(3, 8, 16)], [t(3, 8, 16)]
    )
    assert features(bmm)["batch_matmul FLOPs"] == 2 * 3 * 8 * 16 * 4
    brm = op(
        "linalg.batch_reduce_matmul", [t(3, 8, 4), t(3, 4, 16), t(8, 16)], [t(8, 16)]
    )
    assert features(brm)["batch_matmul FLOPs"] == 2 * 3 * 8 * 16 * 4
    aten = op("torch.aten.mm", [t(8, 4, kind="vtensor"), t(4, 16, kind="vtensor")],
              [t(8, 16, kind="vtensor")])  # fmt: skip
    assert features(aten)["matmul FLOPs"] == 2 * 8 * 16 * 4
    addmm = op("torch.aten.addmm", [t(16), t(8, 4), t(4, 16)], [t(8, 16)])
    assert features(addmm)["matmul FLOPs"] == 2 * 8 * 16 * 4


def test_matmul_with_indexing_maps_uses_iteration_domain():
    maps = (
        "[affine_map<(d0, d1, d2) -> (d2, d0)>, affine_map<(d0, d1, d2) -> (d2, d1)>,"
        " affine_map<(d0, d1, d2) -> (d0, d1)>]"
    )
    mm = op("linalg.matmul", [t(4, 8), t(4, 16), t(8, 16)], [t(8, 16)],
            attributes={"indexing_maps": maps})  # fmt: skip
    assert features(mm)["matmul FLOPs"] == 2 * 8 * 16 * 4


def test_stablehlo_dot_general_reads_contracting_dims():
    dot = op("stablehlo.dot_general", [t(2, 5, 8), t(2, 8, 3)], [t(2, 5, 3)],
             text="stablehlo.dot_general %a, %b, batching_dims = [0] x [0], "
                  "contracting_dims = [2] x [1]")  # fmt: skip
    assert features(dot)["matmul FLOPs"] == 2 * 2 * 5 * 3 * 8
    generic = op("stablehlo.dot_general", [t(5, 8), t(8, 3)], [t(5, 3)],
                 attributes={"dot_dimension_numbers": "#stablehlo.dot<"
                             "lhs_contracting_dimensions = [1], "
                             "rhs_contracting_dimensions = [0]>"})  # fmt: skip
    assert features(generic)["matmul FLOPs"] == 2 * 5 * 3 * 8


def test_conv_with_stride_counts_output_positions():
    # 32x32 input, 3x3 kernel, stride 2 -> 15x15 outputs, each C*KH*KW = 27 MACs.
    conv = op("linalg.conv_2d_nchw_fchw",
              [t(1, 3, 32, 32), t(8, 3, 3, 3), t(1, 8, 15, 15)], [t(1, 8, 15, 15)],
              attributes={"strides": "dense<2> : tensor<2xi64>",
                          "dilations": "dense<[1, 1]> : tensor<2xi64>"})  # fmt: skip
    f = features(conv)
    assert f["conv FLOPs"] == 2 * 8 * 15 * 15 * 3 * 3 * 3
    assert f["conv stride max"] == 2
    assert f["conv dilation max"] == 1
    assert f["strided convs"] == 1
    assert f["dilated convs"] == 0


def test_conv_with_dilation_nhwc():
    # 3x3 kernel dilated by 2 on 16x16 -> 12x12 outputs; MACs per output unchanged.
    conv = op("linalg.conv_2d_nhwc_hwcf",
              [t(1, 16, 16, 4), t(3, 3, 4, 6), t(1, 12, 12, 6)], [t(1, 12, 12, 6)],
              attributes={"strides": "dense<1> : tensor<2xi64>",
                          "dilations": "dense<2> : tensor<2xi64>"})  # fmt: skip
    f = features(conv)
    assert f["conv FLOPs"] == 2 * 12 * 12 * 6 * 3 * 3 * 4
    assert f["conv dilation max"] == 2
    assert f["dilated convs"] == 1


def test_grouped_and_depthwise_convs():
    grouped = op("linalg.conv_2d_ngchw_fgchw",
                 [t(1, 2, 4, 10, 10), t(3, 2, 4, 3, 3), t(1, 2, 3, 8, 8)],
                 [t(1, 2, 3, 8, 8)])  # fmt: skip
    assert features(grouped)["conv FLOPs"] == 2 * (2 * 3 * 8 * 8) * (4 * 3 * 3)
    dw = op("linalg.depthwise_conv_2d_nhwc_hwc",
            [t(1, 10, 10, 5), t(3, 3, 5), t(1, 8, 8, 5)], [t(1, 8, 8, 5)])  # fmt: skip
    f = features(dw)
    assert f["conv FLOPs"] == 2 * 8 * 8 * 5 * 3 * 3
    assert f["grouped convs"] == 1


def test_torch_convolution_reads_groups_stride_from_constants():
    def const(name, value):
        o = Op("torch.constant.int", "torch", results=(name,),
               text=f"{name} = torch.constant.int {value}", depth=1, function="f")  # fmt: skip
        return o

    ops = [
        const("%int2", 2),
        const("%int1", 1),
        const("%int4", 4),
        Op("torch.prim.ListConstruct", "torch", results=("%stride",),
           operands=("%int2", "%int2"), depth=1, function="f"),
        Op("torch.prim.ListConstruct", "torch", results=("%dil",),
           operands=("%int1", "%int1"), depth=1, function="f"),
        # weight [Cout=8, Cin/groups=2, 3, 3]; groups=4 -> Cin=8.
        Op("torch.aten.convolution", "torch", results=("%y",),
           operands=("%x", "%w", "%none", "%stride", "%pad", "%dil", "%false",
                     "%opad", "%int4"),
           operand_types=(t(1, 8, 16, 16, kind="vtensor"), t(8, 2, 3, 3, kind="vtensor")),
           result_types=(t(1, 8, 7, 7, kind="vtensor"),), depth=1, function="f"),
    ]  # fmt: skip
    f = features(*ops)
    assert f["conv FLOPs"] == 2 * 8 * 7 * 7 * 2 * 3 * 3
    assert f["conv stride max"] == 2
    assert f["conv groups max"] == 4
    assert f["grouped convs"] == 1


def test_tosa_and_stablehlo_convs():
    tosa = op("tosa.conv2d", [t(1, 10, 10, 3), t(8, 3, 3, 3), t(8)], [t(1, 4, 4, 8)],
              attributes={"stride": "array<i64: 2, 2>", "dilation": "array<i64: 1, 1>"})  # fmt: skip
    f = features(tosa)
    assert f["conv FLOPs"] == 2 * 4 * 4 * 8 * 3 * 3 * 3
    assert f["conv stride max"] == 2
    hlo = op("stablehlo.convolution", [t(1, 10, 10, 3), t(3, 3, 3, 8)], [t(1, 8, 8, 8)],
             text="stablehlo.convolution(%a, %b) dim_numbers = [b, 0, 1, f]x[0, 1, i, o]"
                  "->[b, 0, 1, f], window = {stride = [1, 1], rhs_dilate = [1, 1]}")  # fmt: skip
    assert features(hlo)["conv FLOPs"] == 2 * 8 * 8 * 8 * 3 * 3 * 3


def test_pooling_window():
    pool = op("linalg.pooling_nhwc_max", [t(1, 8, 8, 4), t(2, 2), t(1, 4, 4, 4)],
              [t(1, 4, 4, 4)])  # fmt: skip
    assert features(pool)["pool FLOPs"] == 4 * 4 * 4 * 4
    tosa = op("tosa.max_pool2d", [t(1, 8, 8, 4)], [t(1, 2, 2, 4)],
              attributes={"kernel": "array<i64: 3, 3>"})  # fmt: skip
    assert features(tosa)["pool FLOPs"] == 2 * 2 * 4 * 9


def test_elementwise_and_reduction():
    add = op("arith.addf", [t(4, 8), t(4, 8)], [t(4, 8)])
    exp = op("math.exp", [t(4, 8)], [t(4, 8)])
    red = op("tosa.reduce_sum", [t(4, 8)], [t(1, 8)])
    f = features(add, exp, red)
    assert f["elementwise FLOPs"] == 32 + 4 * 32
    assert f["reduction FLOPs"] == 32


def test_generic_uses_iteration_domain_and_body_ops():
    maps = "[#map, #map1]"
    aliases = {
        "#map": "affine_map<(d0, d1) -> (d0, d1)>",
        "#map1": "affine_map<(d0, d1) -> (d0)>",
    }
    generic = op("linalg.generic", [t(6, 10), t(6)], [t(6)], regions=1,
                 attributes={"indexing_maps": maps,
                             "iterator_types": '["parallel", "reduction"]'})  # fmt: skip
    body = [
        op(
            "arith.mulf",
            [t(element="f32", kind="scalar")] * 2,
            [t(kind="scalar")],
            depth=2,
        ),
        op("arith.addf", [t(kind="scalar")] * 2, [t(kind="scalar")], depth=2),
        op("linalg.yield", [t(kind="scalar")], depth=2),
    ]
    f = features(generic, *body, attribute_aliases=aliases)
    # 6 * 10 iterations, 2 arithmetic ops each; the body ops are not counted again.
    assert f["generic FLOPs"] == 2 * 60
    assert f["elementwise FLOPs"] == 0


def test_affine_loop_trip_counts_multiply_body_costs():
    s = t(kind="scalar")
    ops = [
        op("affine.for", text="affine.for %i = 0 to 128 step 4", depth=1, regions=1),
        op("affine.for", text="affine.for %j = 0 to 10", depth=2, regions=1),
        op("affine.load", [t(128, 10, kind="memref")], [s], depth=3),
        op("arith.addf", [s, s], [s], depth=3),
        op("affine.store", [s, t(128, 10, kind="memref")], depth=3),
    ]
    f = features(*ops)
    assert f["loops"] == 2
    assert f["loop nest depth"] == 2
    assert f["loop trip count max"] == 32
    assert f["loop iterations max"] == 320
    assert f["loops with constant trip count"] == 2
    assert f["elementwise FLOPs"] == 320
    assert f["bytes moved memory"] == 2 * 4 * 320


def test_scf_for_bounds_from_arith_constants():
    s = t(kind="scalar")
    idx = ShapedType("scalar", (), "index")
    ops = [
        Op("arith.constant", "arith", results=("%c0",), result_types=(idx,),
           attributes={"value": "0 : index"}, depth=1, function="f"),
        Op("arith.constant", "arith", results=("%c64",), result_types=(idx,),
           text="%c64 = arith.constant 64 : index", depth=1, function="f"),
        Op("arith.constant", "arith", results=("%c8",), result_types=(idx,),
           text="%c8 = arith.constant 8 : index", depth=1, function="f"),
        Op("scf.for", "scf", text="scf.for %i = %c0 to %c64 step %c8",
           depth=1, num_regions=1, function="f"),
        op("arith.mulf", [s, s], [s], depth=2),
        Op("scf.for", "scf", text="scf.for %j = %c0 to %n step %c8",
           depth=1, num_regions=1, function="f"),
    ]  # fmt: skip
    f = features(*ops)
    assert f["loops"] == 2
    assert f["loops with constant trip count"] == 1
    assert f["loop trip count max"] == 8
    assert f["elementwise FLOPs"] == 8


def test_unknown_shapes_are_counted_not_guessed():
    dyn = ShapedType("tensor", (None, 4), "f32")
    mm = op("linalg.matmul", [dyn, t(4, 4), dyn], [dyn])
    f = features(mm)
    assert f["matmul FLOPs"] == 0
    assert f["ops with unknown FLOPs"] == 1
    # Three distinct values (lhs, init, result) with one dynamic dim each.
    assert f["dynamic dims"] == 3
    assert f["dynamic values"] == 3


def test_value_statistics():
    a = op(
        "arith.addf", [t(2, 3), t(2, 3, element="f16")], [t(4, 5, 6, element="bf16")]
    )
    f = features(a)
    assert f["rank max"] == 3
    assert f["bytes f32"] == 24
    assert f["bytes f16"] == 12
    assert f["bytes bf16"] == 240
    assert f["largest tensor elements"] == 120
    assert f["elements total"] == 6 + 6 + 120


@pytest.mark.parametrize(
    "text, expected",
    [
        ("dense<[2, 2]> : tensor<2xi64>", [2, 2]),
        ("dense<3> : tensor<2xi64>", [3]),
        ("array<i64: 1, 2, 3>", [1, 2, 3]),
        ("[2, 2]", [2, 2]),
        ("4 : i64", [4]),
        ("", None),
    ],
)
def test_parse_ints(text, expected):
    assert parse_ints(text) == expected


def test_indexing_maps_written_inline_are_read_whole():
    # The '>' of each map's '->' must not end the attribute value early: with only
    # the first map read, d1 had no size and the FLOPs fell back to an operand size.
    text = """func.func @f(%a: tensor<16x512xf16>, %b: tensor<64x512xf16>,
                   %c: tensor<16x64xf32>) -> tensor<16x64xf32> {
      %0 = linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>] ins(%a, %b : tensor<16x512xf16>, tensor<64x512xf16>) outs(%c : tensor<16x64xf32>) -> tensor<16x64xf32>
      return %0 : tensor<16x64xf32>
    }"""
    shapes = ShapeFeatures(log_scale=False).fit([text])
    f = dict(
        zip(shapes.get_feature_names_out(), shapes.transform([text])[0], strict=True)
    )
    assert f["matmul FLOPs"] == 2 * 16 * 64 * 512
    assert f["heaviest op loops"] == 3 and f["heaviest op reduction loops"] == 1
    assert f["heaviest op FLOPs per output element"] == 2 * 512


def test_heaviest_op_columns():
    maps = "[affine_map<(d0, d1) -> (d1, d0)>, affine_map<(d0, d1) -> (d0)>]"
    reduce = op("linalg.generic", [t(24, 6, element="f16"), t(6)], [t(6)],
                regions=1, attributes={"indexing_maps": maps})  # fmt: skip
    body = [
        op("arith.mulf", [t(kind="scalar")] * 2, [t(kind="scalar")], depth=2),
        op("arith.addf", [t(kind="scalar")] * 2, [t(kind="scalar")], depth=2),
        op("arith.maxnumf", [t(kind="scalar")] * 2, [t(kind="scalar")], depth=2),
        op("linalg.yield", [t(kind="scalar")], depth=2),
    ]
    mm = op("linalg.matmul", [t(8, 4), t(4, 48), t(8, 48)], [t(8, 48)])
    f = features(reduce, *body, mm)
    # matmul 2 * 8 * 48 * 4 = 3072 FLOPs; the reduction 3 * 24 * 6 = 432.
    assert f["compute ops"] == 2
    assert f["heaviest op FLOPs share"] == pytest.approx(3072 / (3072 + 432))
    assert f["heaviest op FLOPs per output element"] == 2 * 4
    assert f["FLOPs per output element max"] == 432 / 6
    assert f["heaviest op output rank"] == 2
    assert f["heaviest op output elements"] == 8 * 48
    assert f["heaviest op innermost dim"] == 48
    assert f["heaviest op innermost power of two"] == 4  # 48 = 16 * 3
    assert f["heaviest op operands"] == 3
    assert f["heaviest op output bits"] == 32
    # No indexing maps in the matmul's text: loops unknown (0).
    assert f["heaviest op loops"] == 0 and f["heaviest op payload ops"] == 0
    # The reduction's maps and body still count in the module-wide maxima.
    assert f["payload ops max"] == 3 and f["reduction loops max"] == 1
    # Without the matmul the reduction is the heaviest op: f16 input, permuted map.
    g = features(reduce, *body)
    assert g["heaviest op narrowest operand bits"] == 16
    assert g["heaviest op permuted operands"] == 1
    assert g["heaviest op loops"] == 2 and g["heaviest op reduction loops"] == 1
    assert g["heaviest op payload ops"] == 3


def test_heaviest_op_columns_are_zero_without_flops():
    f = features(op("tensor.empty", [], [t(4, 4)]))
    assert f["compute ops"] == 0
    assert all(v == 0 for k, v in f.items() if k.startswith("heaviest op"))


@pytest.mark.parametrize("with_flops", [True, False])
def test_analysis_names_every_column_once(with_flops):
    # analyze() fills columns by name: every SHAPE_FEATURES name, no other.
    from mlircost_classic.featurize._analysis import _columns, _walk
    from mlircost_classic.featurize._catalog import load_catalog

    mm = op("linalg.matmul", [t(8, 4), t(4, 48), t(8, 48)], [t(8, 48)])
    empty = op("tensor.empty", [], [t(4, 4)])
    module = ParsedModule(ops=[mm if with_flops else empty])
    assert sorted(_columns(module, _walk(module, load_catalog()))) == sorted(
        SHAPE_FEATURES
    )
    assert len(set(SHAPE_FEATURES)) == len(SHAPE_FEATURES)


def root_loops(*ops, dims=False):
    module = ParsedModule(ops=list(ops))
    shapes = ShapeFeatures(root_loops=True, root_dims=dims).fit([module])
    row = shapes.transform([module])[0]
    return dict(zip(shapes.get_feature_names_out(), row, strict=True))


def batch_matmul():
    # batch 4, M 128, N 64, K 96: linalg's batch_matmul maps, no indexing_maps in the text
    return op(
        "linalg.batch_matmul",
        [t(4, 128, 96), t(4, 96, 64), t(4, 128, 64)],
        [t(4, 128, 64)],
    )


def test_root_loops_of_a_named_batch_matmul():
    bmm = batch_matmul()
    f = root_loops(bmm)
    assert f["heaviest op outer parallel extent"] == 4 * 128
    assert f["heaviest op second innermost dim"] == 128
    assert f["heaviest op smallest parallel dim"] == 4
    assert f["heaviest op batch extent"] == 4
    assert f["heaviest op reduction extent"] == 96
    assert f["heaviest op innermost reduction dim"] == 96
    assert f["heaviest op outer power of two"] == 9  # 512
    assert f["heaviest op reduction power of two"] == 5  # 96 = 3 * 32
    assert f["log1p heaviest op reduction extent"] == pytest.approx(np.log1p(96))
    # the default columns are the same with or without root_loops
    plain = features(bmm)
    assert all(f[k] == v for k, v in plain.items())


def test_root_loops_read_a_generics_maps():
    # IREE's form of a Linear: the weight read transposed, (d0, d2) x (d1, d2);
    # a 3-d reduction over d2 and d3 (innermost in the first input: d3)
    maps = (
        "[affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>, "
        "affine_map<(d0, d1, d2, d3) -> (d1, d2, d3)>, "
        "affine_map<(d0, d1, d2, d3) -> (d0, d1)>]"
    )
    g = op(
        "linalg.generic",
        [t(16, 6, 10), t(1536, 6, 10), t(16, 1536)],
        [t(16, 1536)],
        attributes={
            "indexing_maps": maps,
            "iterator_types": '["parallel", "parallel", "reduction", "reduction"]',
        },
        regions=1,
    )
    body = [
        op("arith.mulf", [t(), t()], [t()], depth=2),
        op("arith.addf", [t(), t()], [t()], depth=2),
    ]
    f = root_loops(g, *body)
    assert f["heaviest op outer parallel extent"] == 16
    assert f["heaviest op batch extent"] == 1
    assert f["heaviest op reduction extent"] == 60
    assert f["heaviest op innermost reduction dim"] == 10
    assert f["heaviest op reduction power of two"] == 2


def test_root_loops_are_zero_without_static_extents():
    dyn = op("linalg.matmul", [t(None, 4), t(4, 16), t(None, 16)], [t(None, 16)])
    f = root_loops(dyn)
    assert all(f[name] == 0 for name in ROOT_LOOP_FEATURES)


def root_dims(*ops):
    return root_loops(*ops, dims=True)


def test_root_dims_name_a_contractions_m_n_and_k():
    bmm = batch_matmul()
    f = root_dims(bmm)
    assert f["heaviest op M"] == 128
    assert f["heaviest op N"] == 64
    assert f["heaviest op smaller of M and N"] == 64
    assert f["heaviest op largest parallel dim"] == 128
    assert f["heaviest op last reduction loop"] == 96
    assert f["heaviest op last parallel loop"] == 64
    assert f["heaviest op M power of two"] == 7
    assert f["heaviest op N power of two"] == 6
    assert f["heaviest op last reduction loop power of two"] == 5
    assert f["log1p heaviest op N"] == pytest.approx(np.log1p(64))
    # the other columns are those of root_loops alone, in the same order
    before = root_loops(bmm)
    names = list(f)
    assert [n for n in names if n not in before] == list(ROOT_DIM_FEATURES) + [
        f"log1p {n}" for n in ROOT_DIM_FEATURES[:6]
    ]
    assert all(f[k] == v for k, v in before.items())


def test_root_dims_of_a_skinny_linear_and_a_convolution():
    # IREE's Linear, weight transposed: M = 4 rows, N = 192, K = 96 (the
    # MobileViT product that IREE's gfx942 config unrolls over K)
    maps = (
        "[affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, "
        "affine_map<(d0, d1, d2) -> (d0, d1)>]"
    )
    body = [
        op("arith.mulf", [t(), t()], [t()], depth=2),
        op("arith.addf", [t(), t()], [t()], depth=2),
    ]
    linear = op(
        "linalg.generic",
        [t(4, 96), t(192, 96), t(4, 192)],
        [t(4, 192)],
        attributes={
            "indexing_maps": maps,
            "iterator_types": '["parallel", "parallel", "reduction"]',
        },
        regions=1,
    )
    f = root_dims(linear, *body)
    assert (f["heaviest op M"], f["heaviest op N"]) == (4, 192)
    assert f["heaviest op last reduction loop"] == 96
    assert f["heaviest op last reduction loop power of two"] == 5  # not 64's 6
    # NHWC x HWCF: the image reads oh and ow through oh + kh, ow + kw, so
    # M = n * oh * ow and N = f, as IREE's implicit GEMM sees them
    conv_maps = (
        "[affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d0, d1 + d4, d2 + d5, d6)>, "
        "affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d4, d5, d6, d3)>, "
        "affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d0, d1, d2, d3)>]"
    )
    conv = op(
        "linalg.generic",
        [t(2, 10, 10, 8), t(3, 3, 8, 16), t(2, 8, 8, 16)],
        [t(2, 8, 8, 16)],
        attributes={
            "indexing_maps": conv_maps,
            "iterator_types": '["parallel", "parallel", "parallel", "parallel", '
            '"reduction", "reduction", "reduction"]',
        },
        regions=1,
    )
    f = root_dims(conv, *body)
    assert (f["heaviest op M"], f["heaviest op N"]) == (2 * 8 * 8, 16)
    assert f["heaviest op last reduction loop"] == 8


def test_root_dims_take_a_copy_by_its_stored_value_and_softmax_as_a_reduction():
    store = op(
        "iree_tensor_ext.dispatch.tensor.store",
        [t(216, 4, 5, 8), t(216, 4, 5, 16, kind="dispatch.tensor")],
    )
    load = op(
        "iree_tensor_ext.dispatch.tensor.load", [t(216, 4, 5, 8)], [t(216, 4, 5, 8)]
    )
    f = root_dims(load, store)
    assert f["heaviest op outer parallel extent"] == 216 * 4 * 5
    assert f["heaviest op last parallel loop"] == 8
    assert f["heaviest op M"] == f["heaviest op N"] == 0  # not a contraction
    assert all(root_loops(load, store)[n] == 0 for n in ROOT_LOOP_FEATURES)
    softmax = op(
        "linalg.softmax",
        [t(8, 128, 96), t(8, 128, 96)],
        [t(8, 128, 96)],
        text="%0 = linalg.softmax dimension(2) ins(%a : tensor<8x128x96xf32>) "
        "outs(%e : tensor<8x128x96xf32>) -> tensor<8x128x96xf32>",
    )
    f = root_dims(softmax)
    assert f["heaviest op reduction extent"] == 96
    assert f["heaviest op last parallel loop"] == 128
    assert f["heaviest op outer parallel extent"] == 8


def test_root_dims_need_root_loops():
    with pytest.raises(ValueError, match="root_loops"):
        ShapeFeatures(root_dims=True).fit(["func.func @f() { return }"])
