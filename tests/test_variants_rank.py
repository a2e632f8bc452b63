"""Config features, the variant ranker, the decision metrics and ``rank``."""

import copy
import itertools
import math

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlircost_classic.featurize import ConfigFeatures, ShapeFeatures, VariantFeaturizer
from mlircost_classic.mlir import read_config, write_config
from mlircost_classic.mlir._iree_config import strip_config
from mlircost_classic.models import (
    VariantRanker,
    evaluate_spills,
    evaluate_variants,
    group_metrics,
    rank,
    spill_labels,
)
from mlircost_classic.models._rank import (
    PAIRS_PER_CANDIDATE,
    SPILL_THRESHOLDS,
    _spill_classifier,
)
from tests.test_variants import CPU, GPU_MMA, GPU_THREAD


def _named(text: str) -> dict:
    f = ConfigFeatures().fit([text])
    return dict(zip(f.get_feature_names_out(), f.transform([text])[0], strict=True))


def test_config_features_of_thread_tiles():
    row = _named(GPU_THREAD)
    assert row["config read"] == 1
    assert row["pipeline TileAndFuse"] == 1
    assert row["threads"] == 256
    assert row["subgroups"] == 8
    assert row["thread volume"] == 16  # 1 x 16
    assert row["workgroup loops"] == 3
    assert row["tile per thread"] == 16
    assert row["reduction tile"] == 32
    assert row["element bytes"] == 4
    assert row["accumulator bytes per thread"] == 64
    # (32 x 128 output + 32 x (32 + 128) operands) x 4 bytes
    assert row["workgroup tile bytes"] == (32 * 128 * 1 + 32 * (128 + 1)) * 4


def test_config_features_set_tiles_against_the_root_op_loops():
    # 512 x 256 output, 1024 reduction; workgroup 32 x 128, thread 1 x 16,
    # reduction 32; 256 threads.
    row = _named(GPU_THREAD)
    assert (row["root op loops"], row["root op reduction loops"]) == (3, 1)
    assert row["parallel iterations"] == 512 * 256
    assert row["reduction iterations"] == 1024
    assert row["workgroups"] == (512 // 32) * (256 // 128)
    assert row["workgroup padding"] == 1
    assert row["workgroup tile in bounds"] == 32 * 128
    assert row["tile per thread in bounds"] == 16
    assert row["thread iterations"] == 32 * 128 / (256 * 16)
    assert (row["reduction tile in bounds"], row["reduction steps"]) == (32, 32)
    # A: 1 row x 32 of the reduction; B: 32 x 16 columns.
    assert row["operand elements per thread"] == 1 * 32 + 32 * 16
    assert row["largest operand elements per thread"] == 32 * 16
    assert row["operand elements per workgroup"] == 32 * 32 + 32 * 128
    assert (row["input bits"], row["output bits"]) == (32, 32)
    # Tiles larger than a 100 x 200 x 50 problem: two workgroups, padded.
    small = GPU_THREAD.replace("512x1024x", "100x50x").replace("1024x256x", "50x200x")
    small = small.replace("512x256x", "100x200x")
    row = _named(small)
    assert row["workgroups"] == math.ceil(100 / 32) * math.ceil(200 / 128)
    assert row["workgroup padding"] == pytest.approx(4 * 32 * 2 * 128 / (100 * 200))
    assert row["reduction steps"] == math.ceil(50 / 32)
    # The last workgroup's tiles are cut to the loop: min(tile, bound).
    cut = GPU_THREAD.replace("workgroup = [32, 128, 1]", "workgroup = [32, 512, 1]")
    assert _named(cut)["workgroup tile in bounds"] == 32 * 256


def _with_tiles(text=GPU_THREAD, *, shape=None, **levels) -> str:
    """GPU_THREAD with other tile sizes and, optionally, another M x N x K."""
    config = read_config(text)
    config.levels.update(levels)
    text = write_config(text, config)
    if shape is not None:
        m, n, k = shape
        text = text.replace("512x1024x", f"{m}x{k}x").replace("1024x256x", f"{k}x{n}x")
        text = text.replace("512x256x", f"{m}x{n}x")
    return text


def test_config_features_register_budget_follows_the_workgroup_size():
    # NVIDIA: .maxntid = the workgroup, 65,536 registers an SM, <= 255 a thread.
    assert _named(GPU_THREAD)["register budget bytes"] == 255 * 4  # 256 threads
    wide = GPU_THREAD.replace(
        "workgroup_size = [32, 8, 1]", "workgroup_size = [1024, 1, 1]"
    )
    assert _named(wide)["register budget bytes"] == 64 * 4
    # 40 threads are allocated as 2 warps of 32: 65536 / 64 = 1024 -> 255.
    odd = GPU_THREAD.replace(
        "workgroup_size = [32, 8, 1]", "workgroup_size = [40, 1, 1]"
    )
    assert _named(odd)["register budget bytes"] == 255 * 4
    # AMD CDNA: 512 VGPRs a lane; 1024 threads = 16 waves, 4 on each SIMD.
    amd = wide.replace("@main_dispatch_0 {", '@main_dispatch_0 { arch = "gfx942"', 1)
    assert _named(amd)["register budget bytes"] == 128 * 4
    assert _named(CPU)["register budget bytes"] == 16 * 32


def test_config_features_estimate_live_bytes_of_a_thread():
    row = _named(GPU_THREAD)
    # 1 x 16 accumulators + (1 x 32 + 32 x 16) operand elements, 4 bytes each.
    live = (16 + 32 + 32 * 16) * 4
    assert row["live bytes / register budget"] == pytest.approx(live / (255 * 4))
    wide = GPU_THREAD.replace(
        "workgroup_size = [32, 8, 1]", "workgroup_size = [1024, 1, 1]"
    )
    assert _named(wide)["live bytes / register budget"] == pytest.approx(live / 256)


def test_config_features_of_promoted_operands_and_register_limits():
    # 512 x 256 x 1024 matmul; workgroup 32 x 128, reduction 32, thread 1 x 16.
    config = "{reduction = [0, 0, 32], thread = [1, 16, 0], workgroup = [32, 128, 1]}"
    promoted = GPU_THREAD.replace(
        config,
        "{padding = [32, 128, 64], promote_operands = [0, 1], " + config[1:],
    ).replace("builtin.module {", "builtin.module { max_workgroup_memory_bytes = 65536")
    row = _named(promoted)
    # A: 32 rows x 32 of the reduction, B: 32 x 128 columns, 4 bytes each; the
    # padding level pads the reduction step to 64.
    assert row["promoted operand bytes"] == (32 * 32 + 32 * 128) * 4
    assert row["promoted operand bytes / shared memory"] == pytest.approx(
        (32 * 32 + 32 * 128) * 4 / 65536
    )
    assert row["padded promoted operand bytes"] == (32 * 64 + 64 * 128) * 4
    assert row["largest thread extent"] == 16
    assert row["thread loops over 1"] == 1
    assert row["reduction tile / reduction iterations"] == 32 / 1024
    # 1 x 16 accumulators, 1 x 32 + 32 x 16 operand elements: 32-bit registers.
    assert row["accumulator registers"] == 16
    assert row["operand registers"] == 32 + 32 * 16
    assert row["estimated registers / register limit"] == pytest.approx(
        (16 + 32 + 32 * 16) / 255
    )
    plain = _named(GPU_THREAD)
    assert (
        plain["promoted operand bytes"] == plain["padded promoted operand bytes"] == 0
    )
    # AMD CDNA: 512 VGPRs a lane.
    amd = GPU_THREAD.replace(
        "@main_dispatch_0 {", '@main_dispatch_0 { arch = "gfx942"', 1
    )
    assert _named(amd)["estimated registers / register limit"] == pytest.approx(
        (16 + 32 + 32 * 16) / 512
    )
    # f16 operands: two elements a register.
    half = _named(GPU_THREAD.replace("xf32>", "xf16>"))
    assert half["operand registers"] == (32 + 32 * 16) / 2


def test_config_features_of_padded_tiles_and_private_storage():
    # Tiles that divide a 512 x 256 x 1024 matmul: nothing padded, no private tile.
    row = _named(GPU_THREAD)
    assert row["reduction padding"] == row["thread padding"] == 1
    assert row["edge thread padding"] == 1
    assert row["private bytes per thread"] == 0
    # K = 1000 in steps of 32: 32 steps cover 1024.
    row = _named(_with_tiles(shape=(512, 256, 1000)))
    assert row["reduction padding"] == pytest.approx(1024 / 1000)
    assert row["private bytes per thread"] == 16 * 4
    # Thread tile 48 over a workgroup tile of 128: 3 tiles cover 144.
    row = _named(_with_tiles(thread=[1, 48, 0]))
    assert row["thread padding"] == pytest.approx(144 / 128)
    assert row["private bytes per thread"] == 48 * 4
    # N = 200: the last workgroup holds 72 columns, 5 thread tiles of 16 cover 80.
    row = _named(_with_tiles(shape=(512, 200, 1024)))
    assert (row["thread padding"], row["workgroup padding"]) == (1, 256 / 200)
    assert row["edge thread padding"] == pytest.approx(80 / 72)
    assert row["private bytes per thread"] == 16 * 4
    # A workgroup tile larger than the loop is the loop: no partial workgroup.
    row = _named(_with_tiles(shape=(512, 64, 1024)))
    assert row["edge thread padding"] == 1 and row["private bytes per thread"] == 0
    # A thread tile of 8 x 16 = 128 > 64 elements: split into a loop over a
    # private tile, though every tile divides.
    row = _named(_with_tiles(thread=[8, 16, 0], workgroup=[64, 128, 1]))
    assert row["thread padding"] == row["reduction padding"] == 1
    assert row["private bytes per thread"] == 8 * 16 * 4


_ELEMENTWISE = (
    "affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], "
    'iterator_types = ["parallel", "parallel"]} ins(%3 : tensor<512x288xf32>) '
    "outs(%6 : tensor<512x288xf32>)"
)


def _elementwise(thread, workgroup, n=288) -> str:
    """GPU_THREAD with an all-parallel 512 x ``n`` root op instead of its matmul."""
    head, rest = GPU_THREAD.split("indexing_maps = [", 1)
    _, tail = rest.split(" attrs =  ", 1)
    text = head + "indexing_maps = [" + _ELEMENTWISE + " attrs =  " + tail
    return text.replace("512x288", f"512x{n}").replace(
        "{reduction = [0, 0, 32], thread = [1, 16, 0], workgroup = [32, 128, 1]}",
        f"{{thread = {thread}, workgroup = {workgroup}}}",
    )


def test_config_features_of_the_slices_of_large_thread_tiles():
    # 1 x 16 thread tile, reduction 32: nothing to cut.
    row = _named(GPU_THREAD)
    assert (row["large tensor slices"], row["large tensor slice elements"]) == (1, 16)
    assert row["sliced accumulator bytes"] == 0
    assert row["thread tile x reduction tile"] == 16 * 32
    assert row["innermost thread extent"] == 16
    assert row["non-power-of-two thread extents"] == 0
    assert row["non-power-of-two reduction steps"] == 0
    # 4 x 64 of a matmul: the outer loop goes to 1, four slices of 64, and the
    # accumulator is carried over the reduction steps in a private buffer.
    row = _named(_with_tiles(thread=[4, 64, 0], workgroup=[64, 128, 1]))
    assert (row["large tensor slices"], row["large tensor slice elements"]) == (4, 64)
    assert row["sliced accumulator bytes"] == 4 * 64 * 4
    assert row["thread tile x reduction tile"] == 4 * 64 * 32
    # 1 x 128: the last parallel loop is not the op's last loop (the
    # reduction is), so it goes to 1 too: 128 scalar slices.
    row = _named(_with_tiles(thread=[1, 128, 0]))
    assert (row["large tensor slices"], row["large tensor slice elements"]) == (128, 1)
    # A thread tile of 48 in a workgroup tile of 128 is dynamically sized: to 1.
    row = _named(_with_tiles(thread=[1, 48, 0]))
    assert (row["large tensor slices"], row["large tensor slice elements"]) == (48, 1)
    assert row["non-power-of-two thread extents"] == 1
    assert row["sliced accumulator bytes"] == 48 * 4
    assert (
        _named(_with_tiles(reduction=[0, 0, 24]))["non-power-of-two reduction steps"]
        == 1
    )
    # All-parallel, last loop parallel: 2 x 48 -> the outer loop to 1, slices
    # of 48; 1 x 96 -> the largest factor of 96 up to 64; no accumulator.
    row = _named(_elementwise([2, 48], [64, 96]))
    assert (row["large tensor slices"], row["large tensor slice elements"]) == (2, 48)
    assert row["sliced accumulator bytes"] == 0
    assert row["thread tile x reduction tile"] == 96
    assert row["innermost thread extent"] == 48
    row = _named(_elementwise([1, 96], [64, 96]))
    assert (row["large tensor slices"], row["large tensor slice elements"]) == (2, 48)
    # 97 is prime: its only factor up to 64 is 1.
    row = _named(_elementwise([1, 97], [64, 97], n=291))
    assert (row["large tensor slices"], row["large tensor slice elements"]) == (97, 1)
    # A workgroup tile of 96 over 256 columns leaves a partial workgroup:
    # the column loop is dynamic, slices of the 2 rows.
    row = _named(_elementwise([2, 48], [64, 96], n=256))
    assert (row["large tensor slices"], row["large tensor slice elements"]) == (48, 2)
    # No thread level (MMA subgroups, CPU vector tiles): zeros.
    for text in (GPU_MMA, CPU):
        row = _named(text)
        assert row["large tensor slices"] == row["thread tile x reduction tile"] == 0


_REDUCTION = """func.func @f() attributes {translation_info = #iree_codegen.translation_info<pipeline = #iree_gpu.pipeline<VectorDistribute> workgroup_size = [192, 1, 1] subgroup_size = 64>} {
  %14 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>], iterator_types = ["parallel", "reduction"]} ins(%8 : tensor<32x768xf32>) outs(%13 : tensor<32xf32>) attrs =  {lowering_config = #iree_gpu.lowering_config<{lane_basis = [[1, 64], [0, 1]], partial_reduction = [0, 1536], subgroup_basis = [[1, 3], [0, 1]], thread = [0, 16], workgroup = [1, 0]}>} {
  } -> tensor<32xf32>
}
"""


def test_config_features_of_reduction_tiles_not_cut_to_their_loops():
    # A reduction step of 32 over a loop of 1,024, 256 threads, no thread
    # extent along the reduction (1 a thread).
    row = _named(GPU_THREAD)
    assert row["reduction tile / reduction loop"] == 32 / 1024
    assert row["reduction tile / threads"] == 32 / 256
    assert row["thread reduction extents / reduction tile"] == 256 / 32
    # A step of 64 over a loop of 50 is not cut to it (the in-bounds column is).
    row = _named(_with_tiles(reduction=[0, 0, 64], shape=(100, 200, 50)))
    assert row["reduction tile / reduction loop"] == 64 / 50
    assert row["reduction tile / reduction iterations"] == 1
    # A partial reduction tile of 1,536 over a loop of 768, 192 threads of 16
    # elements each: twice the loop, and the threads' vectors cover it twice
    # (in the bundled gfx942 variants this candidate spills, 512 VGPRs, and
    # the tile of 3,072 does not, 66 VGPRs).
    row = _named(_REDUCTION)
    assert row["reduction tile / reduction loop"] == 2
    assert row["reduction tile / threads"] == 1536 / 192
    assert row["thread reduction extents / reduction tile"] == 192 * 16 / 1536
    row = _named(
        _REDUCTION.replace(
            "partial_reduction = [0, 1536]", "partial_reduction = [0, 3072]"
        )
    )
    assert row["reduction tile / reduction loop"] == 4
    assert row["thread reduction extents / reduction tile"] == 1
    # All-parallel root ops, MMA subgroups (no thread level), CPU: zeros.
    for text in (_elementwise([2, 48], [64, 96]), GPU_MMA, CPU):
        row = _named(text)
        assert all(row[name] == 0 for name in _REDUCTION_TILES)


_REDUCTION_TILES = (
    "reduction tile / reduction loop",
    "reduction tile / threads",
    "thread reduction extents / reduction tile",
)


def _with_consumers(*ops: str) -> str:
    """GPU_THREAD with ``ops`` (one line each) after its root matmul ``%7``."""
    lines = "".join(f"      {op}\n      }} -> tensor<512x256xf32>\n" for op in ops)
    return GPU_THREAD.replace("      return\n", lines + "      return\n")


_ADD = (
    "{out} = linalg.generic {{indexing_maps = [{maps}], iterator_types = "
    "[{kinds}]}} ins({ins} : {types}) outs(%e : tensor<512x256xf32>) {{"
)
_ID = "affine_map<(d0, d1) -> (d0, d1)>"
_ROW = "affine_map<(d0, d1) -> (d1)>"


def test_config_features_of_fused_consumers():
    # No consumer: both columns 0.
    row = _named(GPU_THREAD)
    assert (row["fused consumers"], row["consumers writing into the root result"]) == (
        0,
        0,
    )
    parallel = '"parallel", "parallel"'
    full, bias = "tensor<512x256xf32>", "tensor<256xf32>"
    # (matmul + bias) + residual, the matmul first: it is the first input of
    # the output's type and map, the buffer the consumer writes into.
    first = _ADD.format(
        out="%8",
        maps=", ".join([_ID, _ROW, _ID, _ID]),
        kinds=parallel,
        ins="%7, %b, %r",
        types=f"{full}, {bias}, {full}",
    )
    row = _named(_with_consumers(first))
    assert row["fused consumers"] == 1
    assert row["consumers writing into the root result"] == 1
    # The same sum with the residual first: it takes the output's place.
    residual = _ADD.format(
        out="%8",
        maps=", ".join([_ID, _ID, _ROW, _ID]),
        kinds=parallel,
        ins="%r, %7, %b",
        types=f"{full}, {full}, {bias}",
    )
    row = _named(_with_consumers(residual))
    assert row["fused consumers"] == 1
    assert row["consumers writing into the root result"] == 0
    # A second consumer of the first one's result counts (the chain), one of
    # another value or with a reduction loop does not.
    chained = _ADD.format(
        out="%9", maps=f"{_ID}, {_ID}", kinds=parallel, ins="%8", types=full
    )
    other = _ADD.format(
        out="%10", maps=f"{_ID}, {_ID}", kinds=parallel, ins="%r", types=full
    )
    reduce = _ADD.format(
        out="%11",
        maps=f"{_ID}, {_ROW}",
        kinds='"parallel", "reduction"',
        ins="%9",
        types=full,
    )
    row = _named(_with_consumers(residual, chained, other, reduce))
    assert row["fused consumers"] == 2
    assert row["consumers writing into the root result"] == 1
    # A transposed output map: no input has the output's map.
    transposed = _ADD.format(
        out="%8",
        maps=f"{_ID}, affine_map<(d0, d1) -> (d1, d0)>",
        kinds=parallel,
        ins="%7",
        types=full,
    )
    row = _named(_with_consumers(transposed))
    assert row["fused consumers"] == 1
    assert row["consumers writing into the root result"] == 0


def test_config_features_count_the_ops_of_fused_consumers():
    # No consumer: no ops.
    row = _named(GPU_THREAD)
    assert row["fused consumer ops"] == row["fused consumer ops per thread"] == 0
    parallel = '"parallel", "parallel"'
    full = "tensor<512x256xf32>"
    body = "\n      ^bb0(%in: f32, %out: f32):\n{}        linalg.yield %y : f32"

    def generic(out, ins, *ops):
        header = _ADD.format(
            out=out, maps=f"{_ID}, {_ID}", kinds=parallel, ins=ins, types=full
        )
        return header + body.format("".join(f"        {op}\n" for op in ops))

    # The erf GELU of the bundled hf_falcon candidates: 5 ops, 1 of math.
    gelu = generic(
        "%8",
        "%7",
        "%d = arith.divf %in, %c1 : f32",
        "%e = math.erf %d : f32",
        "%a = arith.addf %e, %c2 : f32",
        "%m = arith.mulf %a, %c3 : f32",
        "%y = arith.mulf %in, %m : f32",
    )
    # A chained consumer counts; an op on another value does not.
    chained = generic("%9", "%8", "%y = math.exp %in : f32")
    other = generic("%10", "%r", "%x = math.tanh %in : f32", "%y = math.exp %x : f32")
    row = _named(_with_consumers(gelu, chained, other))
    assert (row["fused consumer ops"], row["fused consumer math ops"]) == (6, 2)
    # A thread computes 1 x 16 outputs of each.
    assert row["fused consumer ops per thread"] == 6 * 16
    assert row["fused consumer math ops per thread"] == 2 * 16
    wide = _with_tiles(
        _with_consumers(gelu, chained), thread=[2, 32, 0], workgroup=[64, 256, 1]
    )
    assert _named(wide)["fused consumer math ops per thread"] == 2 * 2 * 32


_CONV = """func.func @f() attributes {translation_info = #iree_codegen.translation_info<pipeline = #iree_gpu.pipeline<TileAndFuse> workgroup_size = [32, 1, 1] subgroup_size = 32>} {
  %9 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d0, d4, d2 * 2 + d5, d3 * 2 + d6)>, affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d1, d4, d5, d6)>, affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%4, %5 : tensor<4x8x34x34xf32>, tensor<8x8x3x3xf32>) outs(%8 : tensor<4x8x16x16xf32>) attrs =  {lowering_config = #iree_gpu.lowering_config<{reduction = [0, 0, 0, 0, 4, 6, 3], thread = [1, 1, 4, 4, 0, 0, 0], workgroup = [2, 2, 4, 32, 0, 0, 0]}>} {
  } -> tensor<4x8x16x16xf32>
}"""


def test_config_features_of_a_root_op_left_unvectorized():
    # A stride-2 3x3 convolution (a bundled resblock candidate): its input
    # map reads a window. Thread tile 1 x 1 x 4 x 4; reduction tile 4 x 3 x 3
    # in bounds (6 is cut to the 3 of the window).
    row = _named(_CONV)
    assert row["root op window maps"] == 1
    assert row["scalar tile per thread"] == 16
    assert row["scalar iterations per thread"] == 16 * 4 * 3 * 3
    # The tile's columns follow the thread tile.
    one = _CONV.replace("thread = [1, 1, 4, 4,", "thread = [1, 1, 1, 2,")
    assert _named(one)["scalar iterations per thread"] == 2 * 4 * 3 * 3
    # A matmul's maps are plain loops: all 0.
    row = _named(GPU_THREAD)
    assert row["root op window maps"] == row["scalar tile per thread"] == 0
    # On CPU (no GPU thread tiles) only the window column.
    cpu = _CONV.replace(
        "#iree_gpu.pipeline<TileAndFuse>", "#iree_cpu.pipeline<CPUDefault>"
    )
    cpu = cpu.replace(
        "#iree_gpu.lowering_config<{reduction = [0, 0, 0, 0, 4, 6, 3], "
        "thread = [1, 1, 4, 4, 0, 0, 0], workgroup = [2, 2, 4, 32, 0, 0, 0]}>",
        "#iree_cpu.lowering_config<distribution = [2, 2, 4, 32, 0, 0, 0], "
        "vector_common_parallel = [1, 1, 4, 4, 0, 0, 0]>",
    )
    row = _named(cpu)
    assert row["config read"] == 1 and row["gpu"] == 0
    assert (row["root op window maps"], row["scalar tile per thread"]) == (1, 0)


def _with_offsets(assume: str) -> str:
    """GPU_THREAD reading two bindings at the offsets ``assume`` assumes."""
    subspan = (
        "      %{n} = hal.interface.binding.subspan layout(#layout) binding({b}) "
        "alignment(64) offset({offset}) flags(ReadOnly) : memref<512x1024xf32, "
        "strided<[1024, 1], offset: ?>>\n"
    )
    lines = (
        f"      {assume}\n"
        + subspan.format(n=5, b=0, offset="%4#0")
        + subspan.format(n=6, b=1, offset="%4#1")
        + subspan.format(n=7, b=2, offset="%c0")
    )
    return GPU_THREAD.replace(
        "      %7 = linalg.generic", lines + "      %7 = linalg.generic"
    )


def test_config_features_of_buffer_offsets():
    # No offset assumptions: 0.
    assert _named(GPU_THREAD)["offsets of unknown low bits"] == 0
    # The divisor of an offset is the gcd of its assumptions' udiv (IREE's
    # getUnionedUnsignedDivisor): gcd(272896, 74752) = 512 and
    # gcd(271872, 73728) = 4608 = 512 x 9; only the second is no power of 2.
    two = (
        "%4:2 = util.assume.int\n"
        "  %2[<umin = 272896, umax = 272896, udiv = 272896>, "
        "<umin = 74752, umax = 74752, udiv = 74752>],\n"
        "  %3[<umin = 271872, umax = 271872, udiv = 271872>, "
        "<umin = 73728, umax = 73728, udiv = 73728>]\n"
        "  : index, index"
    )
    assert _named(_with_offsets(two))["offsets of unknown low bits"] == 1
    # The second offset's divisor made gcd(271872, 73216) = 512: none.
    pow2 = two.replace("umax = 73728, udiv = 73728", "umax = 73216, udiv = 73216")
    pow2 = pow2.replace("umin = 73728", "umin = 73216")
    assert _named(_with_offsets(pow2))["offsets of unknown low bits"] == 0
    # Both of 4608 (one assumption each): 2.
    both = (
        "%4:2 = util.assume.int %2<umin = 4608, umax = 4608, udiv = 4608>, "
        "%3<umin = 9216, umax = 9216, udiv = 4608> : index, index"
    )
    assert _named(_with_offsets(both))["offsets of unknown low bits"] == 2
    # An assumption of constant 0 divides by anything: gcd over the others;
    # one without udiv leaves the offset's divisor unknown: not counted.
    zero = both.replace(
        "%2<umin = 4608, umax = 4608, udiv = 4608>",
        ("%2[<umin = 0, umax = 0>, <umin = 4608, umax = 4608, udiv = 4608>]"),
    )
    assert _named(_with_offsets(zero))["offsets of unknown low bits"] == 2
    no_udiv = both.replace("umax = 9216, udiv = 4608", "umax = 9216")
    assert _named(_with_offsets(no_udiv))["offsets of unknown low bits"] == 1
    # An assumption that is not a binding's offset is not counted.
    assert (
        _named(
            GPU_THREAD.replace(
                "      %7 = linalg.generic",
                "      %4 = util.assume.int %2<umin = 0, umax = 4608, udiv = 4608> : index\n"
                "      %7 = linalg.generic",
            )
        )["offsets of unknown low bits"]
        == 0
    )


def test_config_features_of_a_tile_sizes_config_and_unknown_loops():
    text = GPU_THREAD.replace(
        "#iree_gpu.lowering_config<{reduction = [0, 0, 32], thread = [1, 16, 0], "
        "workgroup = [32, 128, 1]}>",
        "#iree_codegen.lowering_config<tile_sizes = [[4, 8, 0]]>",
    )
    row = _named(text)
    assert (row["tile_sizes_0 loops"], row["tile_sizes_0 volume"]) == (2, 32)
    assert row["workgroups"] == (512 // 4) * (256 // 8)
    assert row["tile per thread"] == 32 / 256
    # Without indexing maps (a named op) the loop columns are 0.
    assert _named(GPU_MMA)["root op loops"] == 0
    assert _named(GPU_MMA)["promote operands"] == 1


def test_config_features_of_mma_and_cpu_configs():
    mma = _named(GPU_MMA)
    assert (mma["mma"], mma["mma m"], mma["mma n"], mma["mma k"]) == (1, 16, 16, 4)
    # A subgroup holds 2 x 4 intrinsics of 16 x 16 over 64 lanes.
    assert mma["tile per thread"] == 2 * 16 * 4 * 16 / 64
    assert mma["reduction tile"] == 16 * 4
    cpu = _named(CPU)
    assert cpu["gpu"] == 0 and cpu["pipeline DoubleTilingExpert"] == 1
    assert cpu["tile per thread"] == 64  # the 8 x 8 vector tile


def test_mma_tile_per_thread_counts_every_subgroup_loop():
    """A subgroup tile over three loops (a batched or convolution MMA config,
    as in the bundled gfx942 variants): each loop's count multiplies the
    subgroup's intrinsics, the third one included."""
    text = GPU_MMA.replace("padding = [64, 128, 64], ", "").replace(
        "subgroup = [2, 4, 0], workgroup = [64, 128, 0]",
        "subgroup = [2, 2, 4, 0], workgroup = [4, 32, 64, 0]",
    )
    text = text.replace("reduction = [0, 0, 16]", "reduction = [0, 0, 0, 16]")
    assert _named(text)["tile per thread"] == 2 * 2 * 4 * 16 * 16 / 64


def test_config_features_of_a_zero_dimensional_root_op():
    """``iterator_types = []`` (a scalar generic, in the bundled CPU candidates)
    is an op without loops, not one loop of an unnamed kind."""
    text = """func.func @f() attributes {translation_info = #iree_codegen.translation_info<pipeline = #iree_cpu.pipeline<CPUDefault>>} {
  %9 = linalg.generic {indexing_maps = [affine_map<() -> ()>, affine_map<() -> ()>], iterator_types = []} ins(%7 : tensor<f32>) outs(%8 : tensor<f32>) attrs = {lowering_config = #iree_cpu.lowering_config<distribution = []>} {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<f32>
}"""
    row = _named(text)
    assert row["root op loops"] == 0 and row["workgroups"] == 1
    assert row["tile per thread"] == 1


def test_config_features_zero_row_for_unconfigured_text():
    row = _named("func.func @f() { return }")
    assert set(row.values()) == {0.0}


def test_config_features_are_stateless_and_refuse_a_bare_string():
    f = ConfigFeatures()
    np.testing.assert_array_equal(
        f.fit_transform([GPU_THREAD, CPU]),
        clone(f).fit([CPU]).transform([GPU_THREAD, CPU]),
    )
    with pytest.raises(ValueError, match="string object received"):
        f.fit(GPU_THREAD)
    pipe = make_pipeline(ConfigFeatures(), StandardScaler()).fit([GPU_THREAD, CPU])
    assert pipe.transform([GPU_MMA]).shape == (1, len(f.get_feature_names_out()))


def _thread_variants(text=GPU_THREAD):
    """Texts of every thread tile (a, b) with a, b in 1..8 and their volume."""
    base = read_config(text)
    texts, volumes = [], []
    for a, b in itertools.product([1, 2, 4, 8], [1, 2, 4, 8, 16]):
        c = copy.deepcopy(base)
        c.levels["thread"] = [a, b, 0]
        texts.append(write_config(text, c))
        volumes.append(a * b)
    return texts, np.array(volumes, dtype=float)


def test_strip_config_makes_candidates_of_one_dispatch_equal():
    texts, _ = _thread_variants()
    assert len({strip_config(t) for t in texts}) == 1
    assert strip_config(texts[0]) != strip_config(CPU)
    assert "lowering_config = #config" in strip_config(texts[0])


def test_variant_featurizer_reads_each_dispatch_once(monkeypatch):
    texts, _ = _thread_variants()
    f = VariantFeaturizer().fit(texts + [CPU])
    calls = []
    original = ShapeFeatures.transform
    monkeypatch.setattr(
        ShapeFeatures,
        "transform",
        lambda self, X: calls.append(len(X)) or original(self, X),
    )
    X = f.transform(texts + [CPU])
    assert calls == [2]  # two distinct dispatches
    names = f.get_feature_names_out()
    assert X.shape == (len(texts) + 1, len(names))
    assert names[0].startswith("config__") and names[-1].startswith("dispatch__")
    assert VariantFeaturizer(dispatch="drop").fit(texts).transform(texts).shape[
        1
    ] == len(ConfigFeatures().get_feature_names_out())


@pytest.mark.parametrize(
    "objective", ["rank:pairwise", "regression", "rank:pairwise+regression"]
)
def test_variant_ranker_orders_unseen_candidates(objective):
    texts, volume = _thread_variants()
    groups = np.array(["g"] * len(texts))
    train = np.arange(len(texts)) % 2 == 0
    model = VariantRanker(objective=objective, n_estimators=50).fit(
        [t for t, k in zip(texts, train, strict=True) if k],
        volume[train],
        groups=groups[train],
    )
    test = [t for t, k in zip(texts, train, strict=True) if not k]
    score = model.predict(test)
    m = group_metrics(volume[~train], score, groups[~train])
    assert m["kendall_tau"] > 0.8
    assert m["top1_regret"] == 0.0


def test_the_pairwise_ranker_draws_pairs_from_the_whole_group():
    texts, volume = _thread_variants()
    groups = np.array(["g"] * len(texts))
    pairwise = VariantRanker(objective="rank:pairwise", n_estimators=5)
    ndcg = VariantRanker(objective="rank:ndcg", n_estimators=5)
    params = pairwise.fit(texts, volume, groups=groups).estimator_.get_params()
    assert params["lambdarank_pair_method"] == "mean"
    assert params["lambdarank_num_pair_per_sample"] == PAIRS_PER_CANDIDATE
    # NDCG keeps xgboost's pairs around the top of the ranking.
    params = ndcg.fit(texts, volume, groups=groups).estimator_.get_params()
    assert params.get("lambdarank_pair_method") is None


def test_a_ranking_objective_needs_groups():
    texts, volume = _thread_variants()
    with pytest.raises(ValueError, match="needs groups"):
        VariantRanker().fit(texts, volume)


def test_group_metrics_by_hand():
    y = [10, 20, 30, 5, 5, 7]
    pred = [3, 2, 1, 1, 2, 3]
    groups = ["a", "a", "a", "b", "b", "b"]
    default = [False, True, False, False, False, True]
    m = group_metrics(y, pred, groups, default)
    # a: reversed order; b: tau-b of (5, 5, 7) vs (1, 2, 3) = 2 / sqrt(2 x 3).
    assert m["kendall_tau"] == pytest.approx((-1 + 2 / np.sqrt(6)) / 2)
    assert m["top1_regret"] == pytest.approx(((30 - 10) / 10 + 0) / 2)
    assert m["top3_regret"] == 0.0
    # a: picks 30, worse than the default 20; b: picks 5, better than 7.
    assert m["beats_default"] == 0.5 and m["matches_default"] == 0.0
    flipped = group_metrics(y, pred, groups, default, higher_is_better=True)
    assert flipped["kendall_tau"] == pytest.approx(m["kendall_tau"])
    # A group with one measured value cannot be ranked.
    assert np.isnan(group_metrics([1, 1], [1, 2], ["a", "a"])["kendall_tau"])


def test_spill_labels():
    np.testing.assert_array_equal(spill_labels([0, 4, np.nan, 1e3]), [0, 1, 0, 1])
    both = [[0, 0], [0, 8], [np.nan, 0], [4, 0]]
    np.testing.assert_array_equal(spill_labels(both), [0, 1, 0, 1])


def test_evaluate_variants_holds_out_families_and_scores_the_compiler():
    texts, volume = [], []
    for base in (GPU_THREAD, GPU_THREAD.replace("32, 128, 1", "64, 64, 1")):
        t, v = _thread_variants(base)
        texts += t
        volume += list(v)
    volume = np.array(volume)
    n = len(texts) // 2
    groups = np.repeat(["d1", "d2"], n)
    families = np.repeat(["f1", "f2"], n)
    default = np.tile(np.arange(n) == 3, 2)
    res = evaluate_variants(
        texts,
        volume,
        groups,
        families,
        default,
        {"ranker": VariantRanker(objective="regression", n_estimators=30)},
        target="nvidia_sm80.registers",
        n_splits=2,
    )
    assert set(res) == {"ranker", "compiler"}
    assert res["ranker"]["kendall_tau"] > 0.8
    assert res["compiler"]["matches_default"] == 1.0
    assert res["compiler"]["top1_regret"] > 0


def test_evaluate_spills_scores_the_classifier_and_the_regression():
    texts, volume = [], []
    for base in (GPU_THREAD, GPU_THREAD.replace("32, 128, 1", "64, 64, 1")):
        t, v = _thread_variants(base)
        texts += t
        volume += list(v)
    volume = np.array(volume)
    families = np.repeat(["f1", "f2"], len(texts) // 2)
    # Spill bytes and stack bytes of the big thread tiles.
    spills = np.column_stack(
        [np.where(volume > 20, volume * 8, 0), np.zeros_like(volume)]
    )
    res = evaluate_spills(
        texts, spills, families, featurizer=VariantFeaturizer(dispatch="drop")
    )
    assert set(res) == {"classifier", "regression"}
    for scores in res.values():
        assert scores["spill_share"] == pytest.approx((volume > 20).mean())
        assert scores["spill_f1"] > 0.8
    # No spill in the training folds: nothing is predicted to spill.
    quiet = evaluate_spills(texts, np.zeros(len(texts)), families, n_splits=2)
    assert math.isnan(quiet["classifier"]["spill_recall"])
    assert quiet["classifier"]["spill_share"] == 0


def test_spill_classifier_weights_spills_and_picks_its_threshold_on_inner_folds():
    # Candidates that look alike, 3 in 10 spilling, in 6 families: the
    # classifier can only say the (weighted) base rate, under 0.5. The F1 of
    # the inner folds is best calling every candidate a spill (2 x 0.3 / 1.3
    # against none), so that is what is predicted on held-out families.
    texts = [GPU_THREAD] * 60
    families = np.repeat([f"f{i}" for i in range(6)], 10)
    spills = np.tile(np.arange(10) < 3, 6) * 64.0
    res = evaluate_spills(
        texts, spills, families, featurizer=VariantFeaturizer(dispatch="drop")
    )["classifier"]
    assert res["spill_recall"] == 1.0
    assert res["spill_precision"] == pytest.approx(0.3)
    F = ConfigFeatures().fit(texts).transform(texts)
    clf, threshold = _spill_classifier(F, (spills > 0).astype(int), families)
    assert clf.get_params()["scale_pos_weight"] == pytest.approx(math.sqrt(7 / 3))
    assert threshold in SPILL_THRESHOLDS and threshold < 0.4
    # One class only: no classifier.
    assert _spill_classifier(F, np.zeros(60, int), families)[0] is None


def test_rank_with_a_model_puts_the_best_first():
    texts, volume = _thread_variants()
    model = VariantRanker(objective="regression", n_estimators=50).fit(texts, volume)
    order, scores = rank(
        texts, target="nvidia_sm80.registers", model=model, return_scores=True
    )
    assert volume[order[0]] == volume.min()
    assert scores[order[0]] == scores.min()
    with pytest.raises(ValueError, match="not one str"):
        rank(texts[0], target="nvidia_sm80.registers", model=model)


def test_cli_rank_orders_the_files_of_a_folder(tmp_path, capsys):
    from mlircost_classic.cli import main
    from mlircost_classic.datasets import load_dataset

    ds = load_dataset("variants", hardware="nvidia_sm80")
    group = ds.groups[0]
    texts = [t for t, g in zip(ds.data, ds.groups, strict=True) if g == group]
    for i, text in enumerate(texts):
        (tmp_path / f"c{i}.mlir").write_text(text)
    assert main(["rank", str(tmp_path), "--target", "nvidia_sm80.registers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["rank", "file", "score", "nvidia_sm80.registers"]
    assert lines[-1].startswith("P(spill): nvidia_sm80.spill_bytes > 0")
    rows = lines[1:-1]
    assert sorted(r.split()[1] for r in rows) == sorted(
        f"c{i}.mlir" for i in range(len(texts))
    )
    scores = [float(r.split()[2]) for r in rows]
    assert scores == sorted(scores)
    assert [int(r.split()[0]) for r in rows] == list(range(1, len(texts) + 1))
    # the estimate in registers and the spill probability of each candidate
    registers = [float(r.split()[3]) for r in rows]
    assert all(0 < v < 1000 for v in registers)
    spill = [float(r.split()[4].rstrip("*")) for r in rows]
    assert all(0 <= p <= 1 for p in spill)
    assert (
        main(["rank", str(tmp_path / "none"), "--target", "nvidia_sm80.registers"]) == 2
    )
    assert "no .mlir file" in capsys.readouterr().err
    # a file that is not MLIR is reported and left out; the others are ranked
    (tmp_path / "junk.mlir").write_bytes(b"\x00\x01 not mlir {")
    assert main(["rank", str(tmp_path), "--target", "nvidia_sm80.registers"]) == 1
    out, err = capsys.readouterr()
    assert "junk.mlir" in err and "left out" in err
    assert err.count(str(tmp_path / "junk.mlir")) == 1
    assert "junk.mlir" not in out
    assert len(out.splitlines()) == len(texts) + 2
